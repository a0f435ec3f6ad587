//! Parallel in-memory Vamana build.
//!
//! Points are inserted in random order in batches (sizes doubling from 1 up to a cap, as in
//! ParlayANN). Within a batch every point searches the graph as it stood before the batch
//! and chooses its out-edges in parallel; reverse edges are then grouped by target and each
//! overflowing target re-pruned, also in parallel. Each task writes only its own result, so
//! no locks are needed and the graph is the same whatever the thread count. Between batches
//! control returns to the calling thread, which is the only place `progress` runs.
//!
//! The points are float vectors or compact codes ([`BuildInput`]); an `abort` flag, checked
//! per point, stops the build within one point's work on every thread.

use super::points::{BuildInput, Points, Scorer};
use super::visited::VisitedSet;
use super::{BuildParams, Graph};
use crate::distance::Metric;
use rayon::prelude::*;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, Ordering};

/// The build was stopped through its abort flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aborted;

/// f32 with a total order, for heaps.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) struct Dist(pub f32);
impl Eq for Dist {}
impl PartialOrd for Dist {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Dist {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// Per-thread search buffers, reused across the points a worker handles.
#[derive(Default)]
pub(crate) struct Scratch {
    visited: VisitedSet,
    frontier: BinaryHeap<Reverse<(Dist, u32)>>,
    best: BinaryHeap<(Dist, u32)>,
    /// Expanded nodes with their distance to the query: the pruning candidates.
    pub expanded: Vec<(u32, f32)>,
    fresh: Vec<u32>,
    /// Decoded query and pruning candidates (code builds).
    query: Vec<f32>,
    pub decoded: Vec<f32>,
}

/// Greedy beam search from `entry` for the point `q` scores against; fills `s.expanded`.
pub(crate) fn beam_search(
    g: &[Vec<u32>],
    pts: &Points,
    entry: u32,
    q: &Scorer,
    ef: usize,
    s: &mut Scratch,
) {
    s.visited.clear();
    s.frontier.clear();
    s.best.clear();
    s.expanded.clear();
    let d0 = pts.score(q, entry);
    s.visited.insert(entry as u64);
    s.frontier.push(Reverse((Dist(d0), entry)));
    s.best.push((Dist(d0), entry));
    while let Some(Reverse((d, u))) = s.frontier.pop() {
        if s.best.len() >= ef && d >= s.best.peek().unwrap().0 && !s.expanded.is_empty() {
            break;
        }
        s.expanded.push((u, d.0));
        // Gather the unvisited neighbours and prefetch their vectors before computing any
        // distance: at 100k × 384 floats the vectors are far from cache, and overlapping the
        // misses roughly halves build time.
        s.fresh.clear();
        for &v in &g[u as usize] {
            if s.visited.insert(v as u64) {
                s.fresh.push(v);
                pts.prefetch(v);
            }
        }
        for &v in &s.fresh {
            let dv = pts.score(q, v);
            if s.best.len() < ef || dv < s.best.peek().unwrap().0 .0 {
                s.frontier.push(Reverse((Dist(dv), v)));
                s.best.push((Dist(dv), v));
                if s.best.len() > ef {
                    s.best.pop();
                }
            }
        }
    }
}

/// Deterministic pseudo-random mixing (splitmix64): permutation and tie-breaking.
#[inline]
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Sorts by distance, breaking exact ties pseudo-randomly (per owner node) so groups of
/// identical vectors do not all link to the same lowest ids.
fn sort_candidates(owner: u32, c: &mut [(u32, f32)]) {
    let key = |id: u32| mix(((owner as u64) << 32) | id as u64);
    c.sort_unstable_by(|a, b| a.1.total_cmp(&b.1).then_with(|| key(a.0).cmp(&key(b.0))));
}

/// Point nearest the centroid (L2, whatever the metric): a central start for every search.
fn medoid(pts: &Points, n: usize) -> u32 {
    let dim = pts.dim;
    let ids: Vec<u32> = (0..n as u32).collect();
    let sum = ids
        .par_chunks(1024)
        .map(|block| {
            let (mut s, mut buf) = (vec![0f64; dim], Vec::new());
            for &i in block {
                let row = pts.vector(i, &mut buf);
                s.iter_mut().zip(row).for_each(|(a, &x)| *a += x as f64);
            }
            s
        })
        .reduce(
            || vec![0f64; dim],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        );
    let centroid: Vec<f32> = sum.iter().map(|&x| (x / n as f64) as f32).collect();
    let c = pts.scorer(&centroid, Metric::L2);
    (0..n as u32)
        .into_par_iter()
        .map(|i| (Dist(pts.score(&c, i)), i))
        .min()
        .map(|x| x.1)
        .unwrap_or(0)
}

/// Builds the graph over `vectors` (row-major `n × dim`; unit length for cosine) on the
/// current rayon pool (use `ThreadPool::install` to bound the threads). `progress(done,
/// total)` runs only on the calling thread, between batches, when no parallel work is in
/// flight — it may panic/unwind (e.g. a Postgres interrupt) without leaving anything behind.
/// `total` is `n` (or `2n` with `two_pass`). Deterministic for given inputs and seed,
/// whatever the thread count.
pub fn build(
    vectors: &[f32],
    dim: usize,
    params: &BuildParams,
    progress: &mut dyn FnMut(usize, usize),
) -> Graph {
    assert!(
        dim > 0 && vectors.len().is_multiple_of(dim),
        "vectors must be n × dim"
    );
    let never = AtomicBool::new(false);
    build_with(BuildInput::F32(vectors), dim, params, &never, progress).expect("never aborted")
}

/// [`build`] over floats or codes, stoppable: when `abort` becomes true every thread stops
/// after its current point and the result is `Err(Aborted)`.
pub fn build_with(
    input: BuildInput,
    dim: usize,
    params: &BuildParams,
    abort: &AtomicBool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Graph, Aborted> {
    assert!(dim > 0, "dimension must be positive");
    let pts = Points::new(input, dim, params.metric);
    let n = pts.len();
    assert!(
        n <= u32::MAX as usize,
        "too many vectors for one in-memory build"
    );
    let stopped = || abort.load(Ordering::Relaxed);
    let m = params.m.max(1);
    let ef = params.ef_construction.max(m);
    let mut g: Vec<Vec<u32>> = vec![Vec::new(); n];
    if n == 0 {
        progress(0, 0);
        return Ok(Graph {
            neighbours: g,
            entry: 0,
        });
    }
    let entry = medoid(&pts, n);
    let mut order: Vec<u32> = (0..n as u32).filter(|&i| i != entry).collect();
    order.sort_by_key(|&i| mix(i as u64 ^ params.seed));
    order.insert(0, entry);

    let alphas: Vec<f32> = if params.two_pass {
        vec![1.0, params.alpha]
    } else {
        vec![params.alpha]
    };
    let total = n * alphas.len();
    let max_batch = params.max_batch.unwrap_or_else(|| (n / 50).clamp(64, 4096));
    let mut done = 0;
    progress(0, total);
    for &alpha in &alphas {
        let mut start = 0;
        let mut size = 1;
        while start < n {
            let batch = &order[start..(start + size).min(n)];
            insert_batch(&mut g, &pts, entry, batch, m, ef, alpha, abort);
            if stopped() {
                return Err(Aborted);
            }
            start += batch.len();
            done += batch.len();
            size = (size * 2).min(max_batch);
            progress(done, total);
        }
    }
    // Lists still inside their reverse-edge slack go down to the real degree bound.
    let last_alpha = *alphas.last().unwrap();
    g.par_iter_mut()
        .enumerate()
        .filter(|(_, l)| l.len() > m)
        .for_each_init(Scratch::default, |s, (j, list)| {
            if !stopped() {
                *list = prune_to(&pts, j as u32, list, m, last_alpha, s);
            }
        });
    if stopped() {
        return Err(Aborted);
    }
    ensure_connected(&mut g, &pts, entry, m, ef, abort)?;
    // Robust-prune selection order, the order insert and VACUUM keep too: a list's first m'
    // entries are what a prune bounded at m' keeps (the degree-m' subgraph `search_m`
    // follows), and under partial redundancy the inline codes go to the edges chosen first.
    // Every list is put in it (reverse edges were appended, `ensure_connected` may have
    // replaced a slot), edges the prune would drop last.
    g.par_iter_mut()
        .enumerate()
        .for_each_init(Scratch::default, |s, (i, list)| {
            if stopped() {
                return;
            }
            if list.len() > 1 {
                let sel = prune_to(&pts, i as u32, list, list.len(), last_alpha, s);
                let q = pts.vector(i as u32, &mut s.query);
                let sc = pts.scorer(q, pts.metric);
                let mut rest: Vec<u32> = list.iter().copied().filter(|v| !sel.contains(v)).collect();
                rest.sort_by_cached_key(|&v| (Dist(pts.score(&sc, v)), v));
                *list = sel;
                list.extend(rest);
            }
            // Give back the reverse-edge slack: the caller allocates codes next.
            list.shrink_to_fit();
        });
    if stopped() {
        return Err(Aborted);
    }
    Ok(Graph {
        neighbours: g,
        entry,
    })
}

/// Reverse edges may overfill a list up to this length before it is pruned back to `m`
/// (DiskANN's slack factor 1.3): each prune then absorbs several reverse edges instead of
/// one, which cuts reverse-edge pruning work several-fold.
fn slack_cap(m: usize) -> usize {
    m + (3 * m).div_ceil(10)
}

/// Robust-prunes `list` (candidate neighbours of `j`) down to `m`.
fn prune_to(pts: &Points, j: u32, list: &[u32], m: usize, alpha: f32, s: &mut Scratch) -> Vec<u32> {
    list.iter().for_each(|&v| pts.prefetch(v));
    let q = pts.vector(j, &mut s.query);
    let sc = pts.scorer(q, pts.metric);
    let mut cands: Vec<(u32, f32)> = list.iter().map(|&v| (v, pts.score(&sc, v))).collect();
    sort_candidates(j, &mut cands);
    pts.prune(&mut cands, alpha, m, &mut s.decoded)
}

#[allow(clippy::too_many_arguments)]
fn insert_batch(
    g: &mut [Vec<u32>],
    pts: &Points,
    entry: u32,
    batch: &[u32],
    m: usize,
    ef: usize,
    alpha: f32,
    abort: &AtomicBool,
) {
    let gr: &[Vec<u32>] = g;
    let lists: Vec<Vec<u32>> = batch
        .par_iter()
        .map_init(Scratch::default, |s, &p| {
            if abort.load(Ordering::Relaxed) {
                return Vec::new();
            }
            let mut qbuf = std::mem::take(&mut s.query);
            let q = pts.vector(p, &mut qbuf);
            let sc = pts.scorer(q, pts.metric);
            beam_search(gr, pts, entry, &sc, ef, s);
            let mut cands: Vec<(u32, f32)> = s
                .expanded
                .iter()
                .copied()
                .filter(|&(v, _)| v != p)
                .collect();
            for &v in &gr[p as usize] {
                if !s.visited.contains(v as u64) {
                    cands.push((v, pts.score(&sc, v)));
                }
            }
            drop(sc);
            s.query = qbuf;
            sort_candidates(p, &mut cands);
            pts.prune(&mut cands, alpha, m, &mut s.decoded)
        })
        .collect();
    if abort.load(Ordering::Relaxed) {
        return;
    }
    for (&p, list) in batch.iter().zip(lists) {
        g[p as usize] = list;
    }

    // Reverse edges, grouped by target so each target is updated by exactly one task.
    let mut pairs: Vec<(u32, u32)> = batch
        .iter()
        .flat_map(|&p| g[p as usize].iter().map(move |&j| (j, p)))
        .collect();
    pairs.par_sort_unstable();
    let groups: Vec<&[(u32, u32)]> = pairs.chunk_by(|a, b| a.0 == b.0).collect();
    let gr: &[Vec<u32>] = g;
    let updates: Vec<(u32, Vec<u32>)> = groups
        .par_iter()
        .map_init(Scratch::default, |s, grp| {
            let j = grp[0].0;
            let cur = &gr[j as usize];
            let mut merged = Vec::with_capacity(cur.len() + grp.len());
            merged.extend_from_slice(cur);
            for &(_, p) in grp.iter() {
                if p != j && !merged.contains(&p) {
                    merged.push(p);
                }
            }
            if merged.len() == cur.len() || abort.load(Ordering::Relaxed) {
                return None;
            }
            if merged.len() <= slack_cap(m) {
                return Some((j, merged));
            }
            let list = prune_to(pts, j, &merged, m, alpha, s);
            Some((j, list))
        })
        .flatten()
        .collect();
    for (j, list) in updates {
        g[j as usize] = list;
    }
}

/// Marks everything reachable from `start` (itself already linked from `parent[start]`,
/// or the entry), recording the DFS-tree parent of every newly reached node.
fn reach_from(
    g: &[Vec<u32>],
    start: u32,
    reached: &mut [bool],
    parent: &mut [u32],
    stack: &mut Vec<u32>,
) {
    if reached[start as usize] {
        return;
    }
    reached[start as usize] = true;
    stack.push(start);
    while let Some(u) = stack.pop() {
        for &v in &g[u as usize] {
            if !reached[v as usize] {
                reached[v as usize] = true;
                parent[v as usize] = u;
                stack.push(v);
            }
        }
    }
}

/// Makes every node reachable from the entry. Pruning can orphan nodes (large groups of
/// identical vectors, whose searches stop early on equal distances; low-norm points under
/// inner product; very small m). Each orphan `u` gets an in-edge from a reachable host,
/// preferably one of its nearest: into a free slot, else replacing an edge that is not in
/// the spanning tree of the reachability walk — dropping a non-tree edge cannot disconnect
/// anything, so one round suffices unless every reachable edge is a tree edge.
pub(crate) fn ensure_connected(
    g: &mut [Vec<u32>],
    pts: &Points,
    entry: u32,
    m: usize,
    ef: usize,
    abort: &AtomicBool,
) -> Result<(), Aborted> {
    let n = g.len();
    let mut stack = Vec::new();
    let mut scratch = Scratch::default();
    for _round in 0..4 {
        let mut reached = vec![false; n];
        let mut parent = vec![u32::MAX; n];
        reach_from(g, entry, &mut reached, &mut parent, &mut stack);
        if reached.iter().all(|&r| r) {
            return Ok(());
        }
        let free = |g: &[Vec<u32>], v: u32| g[v as usize].len() < m;
        // Farthest neighbour of v whose edge from v is not a tree edge.
        let spare = |g: &[Vec<u32>], parent: &[u32], v: u32| -> Option<usize> {
            let list = &g[v as usize];
            (0..list.len())
                .filter(|&i| parent[list[i] as usize] != v)
                .max_by_key(|&i| Dist(pts.d(v, list[i])))
        };
        let mut cursor = 0usize;
        for u in 0..n as u32 {
            if reached[u as usize] {
                continue;
            }
            if abort.load(Ordering::Relaxed) {
                return Err(Aborted);
            }
            let mut qbuf = std::mem::take(&mut scratch.query);
            let sc = pts.scorer(pts.vector(u, &mut qbuf), pts.metric);
            beam_search(g, pts, entry, &sc, ef, &mut scratch);
            drop(sc);
            scratch.query = qbuf;
            let mut near: Vec<u32> = scratch
                .expanded
                .iter()
                .map(|x| x.0)
                .filter(|&v| v != u)
                .collect();
            near.sort_by_cached_key(|&v| Dist(pts.d(u, v)));
            near.truncate(16);
            // Near hosts first, then any reachable node (rotating scan, amortised O(n)).
            let mut pick: Option<(u32, Option<usize>)> =
                near.iter().find(|&&v| free(g, v)).map(|&v| (v, None));
            pick = pick.or_else(|| {
                near.iter()
                    .find_map(|&v| spare(g, &parent, v).map(|i| (v, Some(i))))
            });
            for _ in 0..n {
                if pick.is_some() {
                    break;
                }
                let v = (cursor % n) as u32;
                cursor += 1;
                if reached[v as usize] && v != u {
                    pick = if free(g, v) {
                        Some((v, None))
                    } else {
                        spare(g, &parent, v).map(|i| (v, Some(i)))
                    };
                }
            }
            let Some((v, slot)) = pick else { continue };
            match slot {
                Some(i) => g[v as usize][i] = u,
                None => g[v as usize].push(u),
            }
            parent[u as usize] = v;
            reach_from(g, u, &mut reached, &mut parent, &mut stack);
        }
    }
    Ok(())
}
