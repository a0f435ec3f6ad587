//! Partition–build–merge for tables whose graph does not fit in memory (DiskANN's recipe):
//! k-means centroids from a sample, every point assigned to its two nearest partitions that
//! still have room, one in-memory graph per partition, and each point's final list
//! interleaved from the lists of its two partitions. The overlap is what joins the
//! partitions into one graph: a point in two partitions links into both.

use crate::distance::l2_squared;
use rayon::prelude::*;

/// Partitions each point joins.
pub const PARTITIONS_PER_POINT: usize = 2;

/// `k` centroids (row-major) of `sample` (row-major, `dim` wide) by Lloyd's k-means over
/// squared L2 from k-means++ seeds; an empty cluster takes the sample row farthest from
/// its centroid. Deterministic; runs on the current rayon pool.
pub fn kmeans(sample: &[f32], dim: usize, k: usize, iters: usize) -> Vec<f32> {
    let n = sample.len() / dim;
    assert!(n > 0 && k > 0, "k-means needs points and centroids");
    let k = k.min(n);
    let mut centroids = seeds(sample, dim, k);
    for _ in 0..iters {
        let near: Vec<(u32, f32)> = sample.par_chunks(dim).map(|p| nearest(p, &centroids, dim)).collect();
        let mut sum = vec![0f64; k * dim];
        let mut count = vec![0usize; k];
        for (p, &(c, _)) in sample.chunks_exact(dim).zip(&near) {
            let c = c as usize;
            count[c] += 1;
            sum[c * dim..(c + 1) * dim].iter_mut().zip(p).for_each(|(s, &x)| *s += x as f64);
        }
        let mut far: Vec<(f32, usize)> = near.iter().enumerate().map(|(i, &(_, d))| (d, i)).collect();
        far.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let mut far = far.into_iter();
        for c in 0..k {
            let dst = &mut centroids[c * dim..(c + 1) * dim];
            if count[c] == 0 {
                if let Some((_, i)) = far.next() {
                    dst.copy_from_slice(&sample[i * dim..(i + 1) * dim]);
                }
                continue;
            }
            dst.iter_mut().zip(&sum[c * dim..(c + 1) * dim]).for_each(|(x, &s)| *x = (s / count[c] as f64) as f32);
        }
    }
    centroids
}

/// k-means++ seeding (each next seed drawn with probability proportional to its squared
/// distance from the seeds so far), from a fixed-seed generator so builds repeat.
fn seeds(sample: &[f32], dim: usize, k: usize) -> Vec<f32> {
    let n = sample.len() / dim;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f64 / (1u64 << 53) as f64
    };
    let row = |i: usize| &sample[i * dim..(i + 1) * dim];
    let mut out = row(0).to_vec();
    let mut d: Vec<f32> = sample.par_chunks(dim).map(|p| l2_squared(p, row(0))).collect();
    for _ in 1..k {
        let total: f64 = d.iter().map(|&x| x as f64).sum();
        let pick = if total > 0.0 {
            let mut at = next() * total;
            d.iter().position(|&x| {
                at -= x as f64;
                at < 0.0
            })
            .unwrap_or(n - 1)
        } else {
            0
        };
        out.extend_from_slice(row(pick));
        let c = row(pick);
        d.par_iter_mut().zip(sample.par_chunks(dim)).for_each(|(x, p)| *x = x.min(l2_squared(p, c)));
    }
    out
}

fn nearest(p: &[f32], centroids: &[f32], dim: usize) -> (u32, f32) {
    centroids
        .chunks_exact(dim)
        .enumerate()
        .map(|(c, x)| (c as u32, l2_squared(p, x)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, f32::INFINITY))
}

/// The centroids ranked nearest first (ids only).
pub fn ranked_centroids(p: &[f32], centroids: &[f32], dim: usize) -> Vec<u32> {
    let mut d: Vec<(f32, u32)> = centroids.chunks_exact(dim).enumerate().map(|(c, x)| (l2_squared(p, x), c as u32)).collect();
    d.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    d.into_iter().map(|(_, c)| c).collect()
}

/// Capacity-bounded assignment: the first `PARTITIONS_PER_POINT` partitions of `ranked`
/// (nearest first) with fewer than `cap` points, counted in `sizes`. Returns them (the
/// second equals the first when only one partition exists); None if none has room.
pub fn assign(ranked: &[u32], sizes: &mut [u32], cap: u32) -> Option<[u32; PARTITIONS_PER_POINT]> {
    let mut out = [u32::MAX; PARTITIONS_PER_POINT];
    let mut n = 0;
    for &c in ranked {
        if sizes[c as usize] < cap {
            out[n] = c;
            n += 1;
            if n == PARTITIONS_PER_POINT {
                break;
            }
        }
    }
    if n == 0 {
        return None;
    }
    for slot in n..PARTITIONS_PER_POINT {
        out[slot] = out[0];
    }
    for &c in &out[..n] {
        sizes[c as usize] += 1;
    }
    Some(out)
}

/// A point's list from two partitions' lists (each in selection order, nearest first):
/// alternately one entry of each, duplicates and `own` dropped, at most `m`.
pub fn interleave<T: PartialEq + Copy>(a: &[T], b: &[T], m: usize, own: T) -> Vec<T> {
    let mut out = Vec::with_capacity(m.min(a.len() + b.len()));
    let (mut i, mut j) = (0, 0);
    while out.len() < m && (i < a.len() || j < b.len()) {
        let next = if (i <= j && i < a.len()) || j >= b.len() {
            i += 1;
            a[i - 1]
        } else {
            j += 1;
            b[j - 1]
        };
        if next != own && !out.contains(&next) {
            out.push(next);
        }
    }
    out
}

/// Partitions for `n` points when one partition may hold `cap`: every point twice, with a
/// quarter's slack so the capacity-bounded assignment always finds room near each point.
pub fn partition_count(n: usize, cap: usize) -> usize {
    (n * PARTITIONS_PER_POINT * 5).div_ceil(cap.max(1) * 4).max(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmeans_finds_separated_clusters() {
        // Three tight clusters on a line, 30 points each.
        let dim = 2;
        let mut s = Vec::new();
        for i in 0..90 {
            let c = (i % 3) as f32 * 100.0;
            s.extend_from_slice(&[c + (i as f32 * 0.37).sin(), (i as f32 * 0.11).cos()]);
        }
        let cs = kmeans(&s, dim, 3, 10);
        let mut xs: Vec<f32> = cs.chunks(2).map(|c| c[0]).collect();
        xs.sort_by(|a, b| a.total_cmp(b));
        for (x, want) in xs.iter().zip([0.0, 100.0, 200.0]) {
            assert!((x - want).abs() < 2.0, "centroid {x} not near {want}");
        }
    }

    #[test]
    fn kmeans_handles_more_centroids_than_points_and_duplicates() {
        let s = vec![1.0f32; 8]; // 4 identical 2-d points
        let cs = kmeans(&s, 2, 10, 3);
        assert_eq!(cs.len(), 4 * 2);
        assert!(cs.iter().all(|&x| x == 1.0));
    }

    #[test]
    fn assign_respects_capacity_and_takes_two() {
        let mut sizes = vec![0u32; 3];
        assert_eq!(assign(&[2, 0, 1], &mut sizes, 1), Some([2, 0]));
        assert_eq!(assign(&[2, 0, 1], &mut sizes, 1), Some([1, 1]));
        assert_eq!(sizes, vec![1, 1, 1]);
        assert_eq!(assign(&[2, 0, 1], &mut sizes, 1), None);
        let mut one = vec![0u32; 1];
        assert_eq!(assign(&[0], &mut one, 5), Some([0, 0]));
        assert_eq!(one, vec![1]);
    }

    #[test]
    fn interleave_alternates_dedups_and_caps() {
        assert_eq!(interleave(&[1, 2, 3], &[4, 2, 5], 10, 0), vec![1, 4, 2, 3, 5]);
        assert_eq!(interleave(&[1, 2, 3], &[4, 5, 6], 3, 0), vec![1, 4, 2]);
        assert_eq!(interleave(&[7, 1], &[], 5, 7), vec![1]);
        assert_eq!(interleave::<u32>(&[], &[], 5, 0), Vec::<u32>::new());
    }

    #[test]
    fn partition_count_covers_every_point_twice() {
        assert_eq!(partition_count(10, 100), 2);
        let k = partition_count(1_000_000, 100_000);
        assert!(k * 100_000 >= 2 * 1_000_000, "{k}");
    }
}
