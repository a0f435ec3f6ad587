//! Resumable quantized-first search over any graph storage.
//!
//! The beam runs on approximate distances (codes); exact distances are only computed to
//! re-rank the candidates about to be returned, and come free for expanded nodes when the
//! store has the full vector in the tuple it already read. The state can keep going after
//! returning rows: when the current beam is used up, `next_batch` doubles `ef` and expands
//! further, never returning an id twice, until the reachable graph is exhausted.

use super::build::Dist;
use super::visited::VisitedSet;
use crate::quant::PreparedQuery;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Access to a stored graph. Ids are opaque (Postgres packs block/offset into a u64).
pub trait SearchStore {
    /// Reads node `id` once. For each neighbour with `is_new(nb) == true` (the call marks it
    /// visited) pushes `(nb, Some(estimate))` when its code is inline in this tuple, else
    /// `(nb, None)`. Returns the node's own exact distance if it is live and its full vector
    /// is at hand (saves a re-rank read), else `None`.
    fn neighbours(
        &mut self,
        id: u64,
        q: &PreparedQuery,
        is_new: &mut dyn FnMut(u64) -> bool,
        out: &mut Vec<(u64, Option<f32>)>,
    ) -> Option<f32>;
    /// Approximate distance from the node's own code; `None` if the node no longer exists
    /// (it is then not traversed). Used for the entry and non-inline neighbours.
    fn estimate(&mut self, id: u64, q: &PreparedQuery) -> Option<f32>;
    /// Exact distance for re-ranking; `None` if the node is dead (it is skipped).
    fn exact(&mut self, id: u64, q: &PreparedQuery) -> Option<f32>;
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Nodes whose tuple was read to follow their edges.
    pub expanded: u64,
    /// Estimates computed from inline codes (no extra read).
    pub inline_estimates: u64,
    /// Estimates that needed the neighbour's own tuple (`SearchStore::estimate`).
    pub fetched_estimates: u64,
    /// `SearchStore::exact` calls (re-ranking of nodes not expanded).
    pub exact: u64,
    /// Exact distances obtained while expanding.
    pub exact_on_expand: u64,
    /// Ids handed out by `next_batch` (including dead ones skipped).
    pub returned: u64,
}

struct Cand {
    id: u64,
    approx: f32,
    /// NaN until known.
    exact: f32,
}

pub struct SearchState {
    q: PreparedQuery,
    entry: u64,
    started: bool,
    ef: usize,
    visited: VisitedSet,
    nodes: Vec<Cand>,
    /// Unexpanded nodes, nearest approximate first.
    frontier: BinaryHeap<Reverse<(Dist, u32)>>,
    /// Not yet returned nodes, nearest approximate first.
    pool: BinaryHeap<Reverse<(Dist, u32)>>,
    /// The `ef` smallest approximate distances seen (max-heap): the beam's bound.
    top: BinaryHeap<Dist>,
    out: Vec<(u64, Option<f32>)>,
    stats: SearchStats,
}

impl SearchState {
    pub fn new(q: PreparedQuery, entry: u64) -> Self {
        SearchState {
            q,
            entry,
            started: false,
            ef: 0,
            visited: VisitedSet::default(),
            nodes: Vec::new(),
            frontier: BinaryHeap::new(),
            pool: BinaryHeap::new(),
            top: BinaryHeap::new(),
            out: Vec::new(),
            stats: SearchStats::default(),
        }
    }
    pub fn query(&self) -> &PreparedQuery {
        &self.q
    }
    pub fn stats(&self) -> SearchStats {
        self.stats
    }
    pub fn ef(&self) -> usize {
        self.ef
    }
    /// Every reachable node has been expanded and returned.
    pub fn exhausted(&self) -> bool {
        self.started && self.frontier.is_empty() && self.pool.is_empty()
    }

    fn push(&mut self, id: u64, d: f32) {
        let idx = self.nodes.len() as u32;
        self.nodes.push(Cand { id, approx: d, exact: f32::NAN });
        self.frontier.push(Reverse((Dist(d), idx)));
        self.pool.push(Reverse((Dist(d), idx)));
        self.top.push(Dist(d));
        if self.top.len() > self.ef {
            self.top.pop();
        }
    }

    /// Expands until the nearest unexpanded candidate is no better than the `ef`-th best
    /// approximate distance found (or nothing is left). May be called again with a larger `ef`.
    pub fn run(&mut self, store: &mut dyn SearchStore, ef: usize) {
        let ef = ef.max(1);
        if ef != self.ef {
            self.ef = ef;
            // Rebuild the bound over everything discovered (returned nodes included, so a
            // resumed run with ef' behaves like a fresh search with ef').
            let mut all: Vec<Dist> = self.nodes.iter().map(|c| Dist(c.approx)).collect();
            if all.len() > ef {
                all.select_nth_unstable(ef - 1);
                all.truncate(ef);
            }
            self.top = all.into();
        }
        if !self.started {
            self.started = true;
            self.visited.insert(self.entry);
            self.stats.fetched_estimates += 1;
            if let Some(d) = store.estimate(self.entry, &self.q) {
                self.push(self.entry, d);
            }
        }
        while let Some(&Reverse((d, idx))) = self.frontier.peek() {
            if self.top.len() >= self.ef && d >= *self.top.peek().unwrap() {
                break;
            }
            self.frontier.pop();
            self.expand(store, idx);
        }
    }

    fn expand(&mut self, store: &mut dyn SearchStore, idx: u32) {
        let id = self.nodes[idx as usize].id;
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let visited = &mut self.visited;
        let own = store.neighbours(id, &self.q, &mut |nb| visited.insert(nb), &mut out);
        self.stats.expanded += 1;
        if let Some(e) = own {
            self.nodes[idx as usize].exact = e;
            self.stats.exact_on_expand += 1;
        }
        for &(nb, est) in &out {
            let d = match est {
                Some(d) => {
                    self.stats.inline_estimates += 1;
                    d
                }
                None => {
                    self.stats.fetched_estimates += 1;
                    match store.estimate(nb, &self.q) {
                        Some(d) => d,
                        None => continue,
                    }
                }
            };
            self.push(nb, d);
        }
        self.out = out;
    }

    /// Re-ranks up to `k` of the best not-yet-returned candidates within the current beam
    /// and returns them sorted by exact distance (dead nodes dropped). When the beam is used
    /// up it doubles `ef` and continues; an empty result means the graph is exhausted.
    /// Rows of one batch are exactly ordered; across batches order is approximate.
    pub fn next_batch(&mut self, store: &mut dyn SearchStore, k: usize) -> Vec<(u64, f32)> {
        if k == 0 {
            return Vec::new();
        }
        if !self.started {
            self.run(store, self.ef.max(k));
        }
        loop {
            let bound = if self.frontier.is_empty() || self.top.len() < self.ef {
                Dist(f32::INFINITY)
            } else {
                *self.top.peek().unwrap()
            };
            let mut picked = Vec::with_capacity(k);
            while picked.len() < k {
                match self.pool.peek() {
                    Some(&Reverse((d, idx))) if d <= bound => {
                        self.pool.pop();
                        picked.push(idx);
                    }
                    _ => break,
                }
            }
            if picked.is_empty() {
                if self.frontier.is_empty() {
                    return Vec::new();
                }
                let ef = self.ef.saturating_mul(2).max(k);
                self.run(store, ef);
                continue;
            }
            self.stats.returned += picked.len() as u64;
            let mut res = Vec::with_capacity(picked.len());
            for idx in picked {
                let c = &self.nodes[idx as usize];
                let e = if c.exact.is_nan() {
                    self.stats.exact += 1;
                    match store.exact(c.id, &self.q) {
                        Some(e) => e,
                        None => continue,
                    }
                } else {
                    c.exact
                };
                res.push((c.id, e));
            }
            if res.is_empty() {
                continue;
            }
            res.sort_by(|a, b| a.1.total_cmp(&b.1));
            return res;
        }
    }
}
