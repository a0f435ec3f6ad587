//! Resumable quantized-first search over any graph storage.
//!
//! The beam runs on inline-code estimates and on whatever a node's own tuple gives (exact
//! with full-vector storage, see [`Score`]); exact distances are otherwise only computed to
//! re-rank the candidates about to be returned, and come free whenever the store read a
//! tuple holding the full vector (expansion, or scoring a non-inline neighbour). The state can keep going after
//! returning rows: when the current beam is used up, `next_batch` doubles `ef` and expands
//! further, never returning an id twice, until the reachable graph is exhausted.
//!
//! `next_batch_selective` is VSAG's precision filter: of the candidates it re-ranks, one
//! whose estimate minus the quantizer's error bound cannot beat the k-th best exact
//! distance found so far is not worth an exact distance (a heap or page read).

use super::build::Dist;
use super::visited::VisitedSet;
use crate::quant::PreparedQuery;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A node's distance as scored from its own tuple: exact when the tuple carries the full
/// vector, else estimated from its code.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Score {
    /// From a code; the true distance may differ by the quantizer's error.
    Estimate(f32),
    /// The exact distance of a **live** node: the search returns it without `exact()`.
    /// Dead nodes must be reported as `Estimate` (any value) so they are never returned.
    Exact(f32),
}

impl Score {
    pub fn value(self) -> f32 {
        match self {
            Score::Estimate(d) | Score::Exact(d) => d,
        }
    }
    pub fn exact(self) -> Option<f32> {
        match self {
            Score::Exact(d) => Some(d),
            Score::Estimate(_) => None,
        }
    }
}

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
    /// Scores a node from its own tuple (the entry and non-inline neighbours): exact if
    /// the tuple has the full vector and the node is live, else from its code. `None` if the
    /// node no longer exists (it is then not traversed).
    fn estimate(&mut self, id: u64, q: &PreparedQuery) -> Option<Score>;
    /// `estimate` for all of one expansion's non-inline neighbours at once (`out[i]` for
    /// `ids[i]`), so a store can prefetch them all first (e.g. `PrefetchBuffer`).
    fn estimate_batch(&mut self, ids: &[u64], q: &PreparedQuery, out: &mut [Option<Score>]) {
        for (o, &id) in out.iter_mut().zip(ids) {
            *o = self.estimate(id, q);
        }
    }
    /// Exact distance for re-ranking; `None` if the node is dead (it is skipped).
    fn exact(&mut self, id: u64, q: &PreparedQuery) -> Option<f32>;
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Nodes whose tuple was read to follow their edges.
    pub expanded: u64,
    /// Estimates computed from inline codes (no extra read).
    pub inline_estimates: u64,
    /// Scores that needed the node's own tuple (`SearchStore::estimate` calls).
    pub fetched_estimates: u64,
    /// Those of them that were exact (full vector in the tuple).
    pub fetched_exact: u64,
    /// `SearchStore::exact` calls: exact distances computed for re-ranking.
    pub exact: u64,
    /// Exact distances obtained while expanding.
    pub exact_on_expand: u64,
    /// Candidates `next_batch_selective` did not re-rank because of the error bound (counted
    /// per batch: a candidate skipped twice counts twice).
    pub filtered: u64,
    /// Ids handed out by the batch calls (including dead ones dropped).
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
    missing: Vec<u64>,
    fetched: Vec<Option<Score>>,
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
            missing: Vec::new(),
            fetched: Vec::new(),
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

    /// Every node discovered so far: (id, approximate distance, exact distance if known).
    /// For the insert path: after `run(ef_construction)`, the nodes with an exact distance
    /// (expanded nodes, when the store reports it) are the candidates for `robust_prune`.
    pub fn discovered(&self) -> impl Iterator<Item = (u64, f32, Option<f32>)> + '_ {
        self.nodes
            .iter()
            .map(|c| (c.id, c.approx, (!c.exact.is_nan()).then_some(c.exact)))
    }

    fn push(&mut self, id: u64, s: Score) {
        let idx = self.nodes.len() as u32;
        let d = s.value();
        self.nodes.push(Cand {
            id,
            approx: d,
            exact: s.exact().unwrap_or(f32::NAN),
        });
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
            if let Some(s) = store.estimate(self.entry, &self.q) {
                self.stats.fetched_exact += matches!(s, Score::Exact(_)) as u64;
                self.push(self.entry, s);
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
        let mut missing = std::mem::take(&mut self.missing);
        missing.clear();
        missing.extend(out.iter().filter(|e| e.1.is_none()).map(|e| e.0));
        let mut fetched = std::mem::take(&mut self.fetched);
        fetched.clear();
        fetched.resize(missing.len(), None);
        if !missing.is_empty() {
            store.estimate_batch(&missing, &self.q, &mut fetched);
            self.stats.fetched_estimates += missing.len() as u64;
        }
        let mut next_fetched = fetched.iter();
        for &(nb, est) in &out {
            let s = match est {
                Some(d) => {
                    self.stats.inline_estimates += 1;
                    Some(Score::Estimate(d))
                }
                None => {
                    let s = *next_fetched.next().unwrap();
                    self.stats.fetched_exact += matches!(s, Some(Score::Exact(_))) as u64;
                    s
                }
            };
            if let Some(s) = s {
                self.push(nb, s);
            }
        }
        self.missing = missing;
        self.fetched = fetched;
        self.out = out;
    }

    /// Pops up to `n` not-yet-returned candidates within the beam, nearest estimate
    /// first. When none is left in the beam, doubles `ef` (to at least `k`) and expands
    /// further; empty only when the reachable graph is exhausted.
    fn pick(&mut self, store: &mut dyn SearchStore, n: usize, k: usize) -> Vec<u32> {
        loop {
            let bound = if self.frontier.is_empty() || self.top.len() < self.ef {
                Dist(f32::INFINITY)
            } else {
                *self.top.peek().unwrap()
            };
            let mut picked = Vec::with_capacity(n.min(self.pool.len()));
            while picked.len() < n {
                match self.pool.peek() {
                    Some(&Reverse((d, idx))) if d <= bound => {
                        self.pool.pop();
                        picked.push(idx);
                    }
                    _ => break,
                }
            }
            if !picked.is_empty() || self.frontier.is_empty() {
                return picked;
            }
            let ef = self.ef.saturating_mul(2).max(k);
            self.run(store, ef);
        }
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
            let picked = self.pick(store, k, k);
            if picked.is_empty() {
                return Vec::new();
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

    /// Returns the (at most) `k` nearest by exact distance, sorted, among the best
    /// `ceil(k·rerank_factor)` (at least `k`) not-yet-returned candidates within the beam,
    /// skipping the exact distance of any candidate whose `estimate − error_bound` is no
    /// better than the k-th best exact distance found so far. Known exact distances
    /// (expanded nodes, full-vector tuples) are used first and never filtered. Candidates
    /// not returned, skipped or not, go back to the pool for later batches. Continuation,
    /// widening and "never twice" work as in [`next_batch`](Self::next_batch);
    /// `error_bound = INFINITY` re-ranks every picked candidate.
    pub fn next_batch_selective(
        &mut self,
        store: &mut dyn SearchStore,
        k: usize,
        rerank_factor: f32,
        error_bound: f32,
    ) -> Vec<(u64, f32)> {
        if k == 0 {
            return Vec::new();
        }
        if !self.started {
            self.run(store, self.ef.max(k));
        }
        // `as` saturates (NaN → 0), so odd factors fall back to plain top-k.
        let budget = ((k as f32 * rerank_factor).ceil() as usize).max(k);
        loop {
            let picked = self.pick(store, budget, k);
            if picked.is_empty() {
                return Vec::new();
            }
            // Max-heap of the k best (exact, pick position, node); on equal distances the
            // earlier pick wins, like `next_batch`'s stable sort.
            let mut best: BinaryHeap<(Dist, usize, u32)> = BinaryHeap::with_capacity(k + 1);
            let mut back = Vec::new();
            let offer = |best: &mut BinaryHeap<_>, back: &mut Vec<u32>, e: f32, pos, idx| {
                best.push((Dist(e), pos, idx));
                if best.len() > k {
                    back.push(best.pop().unwrap().2);
                }
            };
            // Free exact distances first: they tighten the k-th bound before any is paid for.
            for (pos, &idx) in picked.iter().enumerate() {
                let e = self.nodes[idx as usize].exact;
                if !e.is_nan() {
                    offer(&mut best, &mut back, e, pos, idx);
                }
            }
            let mut dead = 0;
            for (pos, &idx) in picked.iter().enumerate() {
                let c = &self.nodes[idx as usize];
                if !c.exact.is_nan() {
                    continue;
                }
                // Estimates rise along `picked`, so once this holds it holds for the rest
                // of the unknown ones too; testing each is as cheap as breaking out.
                if best.len() >= k && c.approx - error_bound >= best.peek().unwrap().0 .0 {
                    self.stats.filtered += 1;
                    back.push(idx);
                    continue;
                }
                self.stats.exact += 1;
                match store.exact(c.id, &self.q) {
                    Some(e) => {
                        self.nodes[idx as usize].exact = e;
                        offer(&mut best, &mut back, e, pos, idx);
                    }
                    None => dead += 1,
                }
            }
            for idx in back {
                let d = Dist(self.nodes[idx as usize].approx);
                self.pool.push(Reverse((d, idx)));
            }
            self.stats.returned += (best.len() + dead) as u64;
            if best.is_empty() {
                continue; // all dead
            }
            return best
                .into_sorted_vec()
                .into_iter()
                .map(|(d, _, idx)| (self.nodes[idx as usize].id, d.0))
                .collect();
        }
    }
}
