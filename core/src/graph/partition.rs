//! Partition–build–merge for tables whose graph does not fit in memory (after DiskANN):
//! k-means clusters from a sample (several per partition), packed into balanced
//! partitions; every point joins the partition of its nearest cluster and the next
//! partition along its ranking of clusters that has room; one in-memory graph per
//! partition, and each point's final list joined from its two partitions' lists. The
//! overlap is what joins the partitions into one graph: a point in two partitions links
//! into both.

use super::{build_with, BuildInput, BuildParams, Graph};
use crate::distance::l2_squared;
use crate::quant::{Quantizer, QuantizerKind};
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// Partitions each point joins.
pub const PARTITIONS_PER_POINT: usize = 2;
/// k-means clusters per partition (so the packing can balance the partitions).
pub const CLUSTERS_PER_PARTITION: usize = 4;
/// Lloyd iterations for the clusters (the sample is small; balance comes from the packing
/// and the capacity-bounded second assignment, not from converged centroids).
pub const KMEANS_ITERS: usize = 8;

/// Clusters for `parts` partitions from a sample of `sample_rows` (at least 16 rows each).
pub fn cluster_count(parts: usize, sample_rows: usize) -> usize {
    (parts * CLUSTERS_PER_PARTITION).min(sample_rows / 16).max(parts)
}

/// How a point's two lists are made and joined: each partition's graph has degree
/// `part_m`, and the joined list takes `primary_per_secondary` entries of the list from the
/// point's own (nearest cluster's) partition for each one of the other's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinPolicy {
    pub part_m: usize,
    pub primary_per_secondary: usize,
}

impl JoinPolicy {
    /// Two thirds of the degree per partition, joined two of the own partition's entries
    /// per one of the other's: the own list fills two thirds of `m`, the other's the rest
    /// (its first entries: the nearest across the boundary, and the routes between
    /// partitions). Core `eval --partitions 8` on 100k × 128-d clusters, m 40: recall@10 at
    /// ef_search 10 / 40 0.758 / 0.976, against 0.689 / 0.958 with half the degree each,
    /// alternately, and 0.806 / 0.986 unpartitioned; build 18.5 s against 15.2 s.
    pub fn for_m(m: usize) -> JoinPolicy {
        JoinPolicy { part_m: (2 * m).div_ceil(3), primary_per_secondary: 2 }
    }

    /// Build parameters of one partition's graph.
    pub fn params(&self, params: &BuildParams) -> BuildParams {
        BuildParams { m: self.part_m.min(params.m), ..params.clone() }
    }

    /// A point's list after one more partition's `new` list (`new_is_primary`: from the
    /// point's own partition): `new` if it has none yet, else the two joined.
    pub fn merge<T: PartialEq + Copy>(&self, old: &[T], new: &[T], new_is_primary: bool, m: usize, own: T) -> Vec<T> {
        if old.is_empty() {
            return new.iter().copied().filter(|&x| x != own).take(m).collect();
        }
        let (p, s) = if new_is_primary { (new, old) } else { (old, new) };
        interleave(p, s, self.primary_per_secondary, m, own)
    }
}

/// `k` centroids (row-major) of `sample` (row-major, `dim` wide) by Lloyd's k-means over
/// squared L2 from k-means++ seeds; an empty cluster takes the sample row farthest from
/// its centroid. Deterministic; runs on the current rayon pool. Stops early (with the
/// centroids so far) once `abort` is set.
pub fn kmeans(sample: &[f32], dim: usize, k: usize, iters: usize, abort: &AtomicBool) -> Vec<f32> {
    let n = sample.len() / dim;
    assert!(n > 0 && k > 0, "k-means needs points and centroids");
    let k = k.min(n);
    let mut centroids = seeds(sample, dim, k, abort);
    for _ in 0..iters {
        if abort.load(Ordering::Relaxed) {
            break;
        }
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
fn seeds(sample: &[f32], dim: usize, k: usize, abort: &AtomicBool) -> Vec<f32> {
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
        if abort.load(Ordering::Relaxed) {
            break;
        }
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

/// Packs clusters of `sizes` points into `bins` partitions, largest first into the
/// emptiest (LPT): returns each cluster's partition.
pub fn pack(sizes: &[u32], bins: usize) -> Vec<u32> {
    let bins = bins.max(1);
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&c| (std::cmp::Reverse(sizes[c]), c));
    let mut load = vec![0u64; bins];
    let mut bin_of = vec![0u32; sizes.len()];
    for c in order {
        let b = (0..bins).min_by_key(|&b| (load[b], b)).unwrap_or(0);
        load[b] += sizes[c] as u64;
        bin_of[c] = b as u32;
    }
    bin_of
}

/// A point's partitions from its clusters ranked nearest first: always its nearest
/// cluster's (`bin_of`; `sizes` already counts every point there), then the next
/// different partition along the ranking with fewer than `cap` points (its neighbours
/// across the nearest cluster boundary), counted in `sizes`. The second equals the first
/// when no other partition has room.
pub fn assign(ranked: &[u32], bin_of: &[u32], sizes: &mut [u32], cap: u32) -> [u32; PARTITIONS_PER_POINT] {
    let first = bin_of[ranked[0] as usize];
    for &c in &ranked[1..] {
        let b = bin_of[c as usize];
        if b != first && sizes[b as usize] < cap {
            sizes[b as usize] += 1;
            return [first, b];
        }
    }
    [first, first]
}

/// Points per partition when every point is in its nearest cluster's partition only.
pub fn primary_sizes(cluster_sizes: &[u32], bin_of: &[u32], bins: usize) -> Vec<u32> {
    let mut sizes = vec![0u32; bins];
    for (c, &n) in cluster_sizes.iter().enumerate() {
        sizes[bin_of[c] as usize] += n;
    }
    sizes
}

/// A point's list from two partitions' lists (each in selection order, nearest first):
/// `per` entries of `a`, then one of `b`, and so on (the rest of either once the other
/// runs out), duplicates and `own` dropped, at most `m`.
pub fn interleave<T: PartialEq + Copy>(a: &[T], b: &[T], per: usize, m: usize, own: T) -> Vec<T> {
    let per = per.max(1);
    let mut out = Vec::with_capacity(m.min(a.len() + b.len()));
    let (mut i, mut j) = (0, 0);
    while out.len() < m && (i < a.len() || j < b.len()) {
        let take_a = i < a.len() && (j >= b.len() || i < (j + 1) * per);
        let next = if take_a {
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
/// quarter's slack so the capacity-bounded assignment finds room near each point.
pub fn partition_count(n: usize, cap: usize) -> usize {
    (n * PARTITIONS_PER_POINT * 5).div_ceil(cap.max(1) * 4).max(2)
}

/// Partition–build–merge in memory, as the database build does it streaming from a
/// temporary file: `parts` partitions, graphs over SQ8 codes trained on `sample`. The
/// reference for measuring what partitioning costs in recall (core `eval --partitions`);
/// unreachable nodes are left as they are (the database relinks them).
pub fn build_in_partitions(base: &[f32], dim: usize, sample: &[f32], parts: usize, params: &BuildParams, policy: JoinPolicy) -> Graph {
    let n = base.len() / dim;
    let q = Quantizer::train(QuantizerKind::Sq8, dim, sample).expect("a sample to train on");
    let never = AtomicBool::new(false);
    let clusters = kmeans(sample, dim, cluster_count(parts, sample.len() / dim), KMEANS_ITERS, &never);
    let ranks: Vec<Vec<u32>> = base.par_chunks(dim).map(|v| ranked_centroids(v, &clusters, dim)).collect();
    let mut counts = vec![0u32; clusters.len() / dim];
    ranks.iter().for_each(|r| counts[r[0] as usize] += 1);
    let bin_of = pack(&counts, parts);
    let mut sizes = primary_sizes(&counts, &bin_of, parts);
    let cap = (n * PARTITIONS_PER_POINT * 5).div_ceil(parts * 4) as u32;
    let assigned: Vec<[u32; 2]> = ranks.iter().map(|r| assign(r, &bin_of, &mut sizes, cap)).collect();
    let part_params = policy.params(params);
    let mut lists: Vec<Vec<u32>> = vec![Vec::new(); n];
    for p in 0..parts as u32 {
        let members: Vec<u32> = (0..n as u32).filter(|&u| assigned[u as usize].contains(&p)).collect();
        let codes: Vec<u8> = members.iter().flat_map(|&u| q.encode_vec(&base[u as usize * dim..(u as usize + 1) * dim])).collect();
        let g = build_with(BuildInput::Codes { codes: &codes, quantizer: &q }, dim, &part_params, &never, &mut |_, _| {})
            .expect("never aborted");
        for (i, &u) in members.iter().enumerate() {
            let new: Vec<u32> = g.neighbours[i].iter().map(|&j| members[j as usize]).collect();
            let primary = assigned[u as usize][0] == p;
            lists[u as usize] = policy.merge(&lists[u as usize], &new, primary, params.m, u);
        }
    }
    let mut mean = vec![0f64; dim];
    sample.chunks_exact(dim).for_each(|r| mean.iter_mut().zip(r).for_each(|(s, &x)| *s += x as f64));
    let mean: Vec<f32> = mean.iter().map(|&s| (s / (sample.len() / dim).max(1) as f64) as f32).collect();
    let entry = base
        .chunks_exact(dim)
        .enumerate()
        .min_by(|a, b| l2_squared(a.1, &mean).total_cmp(&l2_squared(b.1, &mean)))
        .map_or(0, |(i, _)| i as u32);
    Graph { neighbours: lists, entry }
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
        let cs = kmeans(&s, dim, 3, 10, &AtomicBool::new(false));
        let mut xs: Vec<f32> = cs.chunks(2).map(|c| c[0]).collect();
        xs.sort_by(|a, b| a.total_cmp(b));
        for (x, want) in xs.iter().zip([0.0, 100.0, 200.0]) {
            assert!((x - want).abs() < 2.0, "centroid {x} not near {want}");
        }
    }

    #[test]
    fn kmeans_handles_more_centroids_than_points_and_duplicates() {
        let s = vec![1.0f32; 8]; // 4 identical 2-d points
        let cs = kmeans(&s, 2, 10, 3, &AtomicBool::new(false));
        assert_eq!(cs.len(), 4 * 2);
        assert!(cs.iter().all(|&x| x == 1.0));
    }

    #[test]
    fn assign_keeps_the_nearest_and_adds_one_with_room() {
        // Clusters 0, 1 in partition 0; cluster 2 in partition 1; cluster 3 in partition 2.
        let bin_of = [0, 0, 1, 2];
        let mut sizes = primary_sizes(&[1, 1, 0, 0], &bin_of, 3);
        assert_eq!(sizes, vec![2, 0, 0]);
        assert_eq!(assign(&[0, 1, 2, 3], &bin_of, &mut sizes, 1), [0, 1]);
        // Partition 1 is full: the next one along the ranking.
        assert_eq!(assign(&[1, 0, 2, 3], &bin_of, &mut sizes, 1), [0, 2]);
        assert_eq!(assign(&[1, 0, 2, 3], &bin_of, &mut sizes, 1), [0, 0]);
        // Nothing else has room: the nearest partition only.
        assert_eq!(assign(&[3, 0], &bin_of, &mut sizes, 1), [2, 2]);
        assert_eq!(sizes, vec![2, 1, 1]);
        // Room is counted for the second partition only.
        assert_eq!(assign(&[3, 0], &bin_of, &mut sizes, 3), [2, 0]);
        assert_eq!(sizes, vec![3, 1, 1]);
    }

    #[test]
    fn pack_balances_largest_first() {
        let bin_of = pack(&[10, 1, 9, 2, 8], 2);
        let mut load = [0u32; 2];
        for (c, &b) in bin_of.iter().enumerate() {
            load[b as usize] += [10, 1, 9, 2, 8][c];
        }
        // LPT is within 4/3 - 1/6 of the best split (15 / 15).
        assert_eq!(load[0] + load[1], 30);
        assert!(load.iter().all(|&l| l <= 17), "{load:?}");
    }

    #[test]
    fn interleave_alternates_dedups_and_caps() {
        assert_eq!(interleave(&[1, 2, 3], &[4, 2, 5], 1, 10, 0), vec![1, 4, 2, 3, 5]);
        assert_eq!(interleave(&[1, 2, 3], &[4, 5, 6], 1, 3, 0), vec![1, 4, 2]);
        assert_eq!(interleave(&[1, 2, 3, 4], &[7, 8], 2, 10, 0), vec![1, 2, 7, 3, 4, 8]);
        assert_eq!(interleave(&[7, 1], &[], 1, 5, 7), vec![1]);
        assert_eq!(interleave::<u32>(&[], &[], 1, 5, 0), Vec::<u32>::new());
    }

    #[test]
    fn partitioned_graph_links_mostly_within_clusters() {
        // 4,000 points in 8 separated clusters (16-d), 4 partitions: every point has a list
        // of at most m, mostly inside its own cluster.
        let dim = 16;
        let mut base = Vec::new();
        for i in 0..4000u32 {
            let c = (i % 8) as f32;
            base.extend((0..dim).map(|d| c * 3.0 + ((i * 31 + d as u32 * 17) % 97) as f32 / 97.0));
        }
        let params = BuildParams { m: 16, ef_construction: 64, ..BuildParams::default() };
        let g = build_in_partitions(&base, dim, &base, 4, &params, JoinPolicy::for_m(16));
        assert_eq!(g.neighbours.len(), 4000);
        assert!(g.neighbours.iter().all(|l| !l.is_empty() && l.len() <= 16));
        let same: usize = g.neighbours.iter().enumerate().flat_map(|(u, l)| l.iter().map(move |&v| (u as u32 % 8 == v % 8) as usize)).sum();
        let total: usize = g.neighbours.iter().map(|l| l.len()).sum();
        assert!(same * 2 >= total, "{same} of {total} edges within a cluster");
    }

    #[test]
    fn merge_takes_new_whole_first_then_joins_primary_first() {
        let p = JoinPolicy { part_m: 8, primary_per_secondary: 2 };
        assert_eq!(p.merge(&[], &[3, 1, 2], false, 2, 1), vec![3, 2]);
        // old [5, 6, 7] is the primary list: two of it per one of new's.
        assert_eq!(p.merge(&[5, 6, 7], &[3, 4], false, 5, 0), vec![5, 6, 3, 7, 4]);
        assert_eq!(p.merge(&[5, 6, 7], &[3, 4], true, 5, 0), vec![3, 4, 5, 6, 7]);
        assert_eq!(JoinPolicy::for_m(16).merge(&[5], &[3, 5], false, 4, 0), vec![5, 3]);
    }

    #[test]
    fn partition_count_covers_every_point_twice() {
        assert_eq!(partition_count(10, 100), 2);
        let k = partition_count(1_000_000, 100_000);
        assert!(k * 100_000 >= 2 * 1_000_000, "{k}");
    }
}
