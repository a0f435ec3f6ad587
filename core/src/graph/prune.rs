//! Robust (alpha) pruning, shared by the in-memory build and the Postgres insert path.
//!
//! Candidates are taken nearest first; a candidate `c` is dropped when an already selected
//! neighbour `r` is much closer to it than the new node `p` is: `d(r,c) < d(p,c)/alpha`
//! (for negative inner-product distances the threshold becomes `d(p,c)·alpha`, which is
//! likewise stricter than `d(p,c)`). As in DiskANN, alpha is relaxed progressively
//! (1, 1.2, … up to `alpha`) so the nearest diverse neighbours are chosen before long
//! edges fill the remaining slots.
//!
//! Exact duplicates: the comparison is strict, so copies of `p` do not occlude the other
//! candidates, and a copy of `p` may occlude another copy only once `m/2` copies have been
//! selected. This keeps groups of identical vectors internally connected without letting
//! them crowd out every outward edge.

/// `alpha` at which `r` (at distance `d_rc` from `c`) starts occluding `c` (at `d_pc` from
/// `p`): `c` is occluded for every alpha below the returned factor.
#[inline]
fn occlusion_factor(d_pc: f32, d_rc: f32) -> f32 {
    if d_pc > 0.0 {
        if d_rc > 0.0 {
            d_pc / d_rc
        } else {
            f32::INFINITY
        }
    } else if d_pc < 0.0 {
        // d_rc < d_pc·alpha  ⟺  d_rc / d_pc > alpha   (d_pc negative)
        d_rc / d_pc
    } else if d_rc < 0.0 {
        f32::INFINITY
    } else {
        0.0
    }
}

/// Chooses at most `m` neighbours for a node `p` from `candidates` = (id, distance to p).
/// `p` itself must not be among them; repeated ids are ignored. `dist(a, b)` gives the
/// distance between two candidates. Candidates with equal distance keep their given
/// order (stable sort), so callers control tie-breaking. Returns (id, distance to p) in
/// **selection order**: the first `m'` entries are exactly what this prune bounded at `m'`
/// keeps, so a list stored in this order carries its own smaller-degree subgraphs
/// (`vsag.search_m`). Cost: at most `m · candidates.len()` calls of `dist`.
pub fn robust_prune<I: Copy + PartialEq>(
    candidates: &mut [(I, f32)],
    alpha: f32,
    m: usize,
    mut dist: impl FnMut(I, I) -> f32,
) -> Vec<(I, f32)> {
    candidates.sort_by(|a, b| a.1.total_cmp(&b.1));
    let n = candidates.len();
    let alpha = if alpha.is_finite() && alpha >= 1.0 {
        alpha
    } else {
        1.0
    };
    let max_dups = (m / 2).max(1);
    const PENDING: u8 = 0;
    const SELECTED: u8 = 1;
    const GONE: u8 = 2;
    let mut state = vec![PENDING; n];
    let mut factor = vec![0f32; n];
    let mut tie = vec![false; n];
    let mut selected = 0usize;
    let mut order: Vec<usize> = Vec::with_capacity(m.min(n));
    let mut dups = 0usize;
    let mut cur = 1.0f32;
    'passes: loop {
        for i in 0..n {
            if selected >= m {
                break 'passes;
            }
            if state[i] != PENDING || factor[i] > cur || (tie[i] && dups >= max_dups) {
                continue;
            }
            state[i] = SELECTED;
            order.push(i);
            selected += 1;
            dups += tie[i] as usize;
            let (r, d_pr) = candidates[i];
            for j in i + 1..n {
                if state[j] != PENDING || factor[j] > alpha {
                    continue; // already decided for every pass: skip the distance
                }
                let (c, d_pc) = candidates[j];
                if c == r {
                    state[j] = GONE;
                    continue;
                }
                let d_rc = dist(r, c);
                factor[j] = factor[j].max(occlusion_factor(d_pc, d_rc));
                if d_rc == d_pc && d_pr == d_pc {
                    tie[j] = true;
                }
            }
        }
        if cur >= alpha {
            break;
        }
        cur = (cur * 1.2).min(alpha);
    }
    order.into_iter().map(|i| candidates[i]).collect()
}

/// Fills a list that lost some neighbours: keeps every entry of `kept` (id, distance to
/// `p`) and adds `candidates` nearest first while the list has fewer than `m` entries,
/// skipping any that a listed neighbour occludes at `alpha` (see `robust_prune`). Returns
/// `kept` in its order followed by the additions (selection order, as `robust_prune`). Used where the old list is still good and only holes need
/// filling (VACUUM around deleted nodes): fewer edges change, so fewer routes break.
pub fn fill_prune<I: Copy + PartialEq>(
    kept: &[(I, f32)],
    candidates: &mut [(I, f32)],
    alpha: f32,
    m: usize,
    mut dist: impl FnMut(I, I) -> f32,
) -> Vec<(I, f32)> {
    let alpha = if alpha.is_finite() && alpha >= 1.0 { alpha } else { 1.0 };
    candidates.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut out: Vec<(I, f32)> = kept.to_vec();
    for &(c, d_pc) in candidates.iter() {
        if out.len() >= m {
            break;
        }
        if out.iter().any(|&(r, _)| r == c) {
            continue;
        }
        if out.iter().all(|&(r, _)| occlusion_factor(d_pc, dist(r, c)) <= alpha) {
            out.push((c, d_pc));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l2(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
    }

    #[test]
    fn keeps_diverse_directions() {
        // p at origin; a cluster to the east and one point to the north.
        let pts: Vec<[f32; 2]> = vec![[1.0, 0.0], [1.1, 0.1], [1.2, -0.1], [0.0, 2.0]];
        let mut c: Vec<(usize, f32)> = pts
            .iter()
            .enumerate()
            .map(|(i, q)| (i, l2(q, &[0.0, 0.0])))
            .collect();
        let got: Vec<usize> = robust_prune(&mut c, 1.0, 4, |a, b| l2(&pts[a], &pts[b]))
            .into_iter()
            .map(|x| x.0)
            .collect();
        assert_eq!(got, vec![0, 3]);
        // A larger alpha keeps more of the cluster (alpha applies to squared distances).
        let got = robust_prune(&mut c, 100.0, 4, |a, b| l2(&pts[a], &pts[b]));
        assert!(got.len() > 2);
        // Selection order: each prefix is what a prune bounded at its length keeps.
        for k in 1..=got.len() {
            let bounded = robust_prune(&mut c.clone(), 100.0, k, |a, b| l2(&pts[a], &pts[b]));
            assert_eq!(bounded[..], got[..k]);
        }
        // Degree bound and repeated ids.
        let mut c2 = c.clone();
        c2.extend(c.clone());
        let got = robust_prune(&mut c2, 100.0, 3, |a, b| l2(&pts[a], &pts[b]));
        assert_eq!(got.len(), 3);
        assert!(got[0].0 != got[1].0 && got[1].0 != got[2].0 && got[0].0 != got[2].0);
        assert!(robust_prune::<u64>(&mut [], 1.2, 8, |_, _| 0.0).is_empty());
    }

    #[test]
    fn duplicates_do_not_starve_outward_edges() {
        // p = origin with 10 exact copies, plus 3 points in different directions.
        let mut pts: Vec<[f32; 2]> = vec![[0.0, 0.0]; 10];
        pts.extend([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]);
        let mut c: Vec<(usize, f32)> = pts
            .iter()
            .enumerate()
            .map(|(i, q)| (i, l2(q, &[0.0, 0.0])))
            .collect();
        let got: Vec<usize> = robust_prune(&mut c, 1.2, 8, |a, b| l2(&pts[a], &pts[b]))
            .into_iter()
            .map(|x| x.0)
            .collect();
        let copies = got.iter().filter(|&&i| i < 10).count();
        assert_eq!(copies, 5, "{got:?}"); // m/2 copies + the first
        assert!(
            got.contains(&10) && got.contains(&11) && got.contains(&12),
            "{got:?}"
        );
    }

    #[test]
    fn fill_keeps_old_neighbours_and_fills_holes() {
        // p at origin; kept neighbour to the east; candidates: one next to it (occluded),
        // one to the north, one to the west.
        let pts: Vec<[f32; 2]> = vec![[1.0, 0.0], [1.1, 0.05], [0.0, 1.0], [-1.0, 0.0]];
        let d0 = |i: usize| l2(&pts[i], &[0.0, 0.0]);
        let kept = [(0usize, d0(0))];
        let mut c: Vec<(usize, f32)> = (1..4).map(|i| (i, d0(i))).collect();
        let got: Vec<usize> = fill_prune(&kept, &mut c, 1.2, 3, |a, b| l2(&pts[a], &pts[b]))
            .into_iter()
            .map(|x| x.0)
            .collect();
        assert_eq!(got, vec![0, 2, 3]);
        // Never more than m, and the kept ones stay even past m's worth of candidates.
        let got = fill_prune(&kept, &mut c, 100.0, 2, |a, b| l2(&pts[a], &pts[b]));
        assert_eq!(got.len(), 2);
        assert!(got.iter().any(|x| x.0 == 0));
    }

    #[test]
    fn negative_distances() {
        // Inner product: distances are -dot and may be negative.
        let pts: Vec<[f32; 2]> = vec![[3.0, 0.0], [2.9, 0.2], [0.0, 2.0]];
        let dist = |a: &[f32; 2], b: &[f32; 2]| -(a[0] * b[0] + a[1] * b[1]);
        let p = [1.0f32, 1.0];
        let mut c: Vec<(usize, f32)> = pts
            .iter()
            .enumerate()
            .map(|(i, q)| (i, dist(q, &p)))
            .collect();
        let got = robust_prune(&mut c, 1.2, 3, |a, b| dist(&pts[a], &pts[b]));
        // 1 is nearest; 0 is far "behind" it (huge dot with 1), 2 is another direction.
        let ids: Vec<usize> = got.iter().map(|x| x.0).collect();
        assert_eq!(ids, vec![1, 2]);
    }
}
