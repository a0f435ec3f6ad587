//! Resumable quantized-first search over any graph storage.
//!
//! A classic bounded beam: the `ef` best candidates by estimate, kept sorted in one array;
//! a candidate enters only if it beats the beam's worst, everything else waits in a spill
//! list that only a continuation (LIMIT past the beam, rows rejected by a WHERE clause)
//! ever looks at. Exact distances are computed only to re-rank the candidates about to be
//! returned, and come free whenever the store read a tuple holding the full vector. The
//! state can keep going after returning rows: when the beam is used up, `next_batch`
//! doubles `ef` and expands further, never returning an id twice, until the reachable
//! graph is exhausted. One state serves many queries ([`SearchState::reset`]): its arrays
//! and visited set are reused, so a search allocates nothing once warm.
//!
//! `next_batch_selective` is VSAG's precision filter: of the candidates it re-ranks, one
//! whose estimate minus the quantizer's error bound cannot beat the k-th best exact
//! distance found so far is not worth an exact distance (a heap or page read).

use super::visited::VisitedSet;
use crate::quant::PreparedQuery;

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

/// What reading a node's own tuple told: its exact distance (live node, full vector at
/// hand), a finer estimate than the inline code that found it (the tuple's own
/// higher-precision code, VSAG's second precision), and a store-defined payload (e.g. its
/// heap TIDs) that later `exact` calls and the caller get back, so the tuple need not be
/// read again.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Own {
    pub exact: Option<f32>,
    pub fine: Option<f32>,
    pub payload: Option<u64>,
}

/// Access to a stored graph. Ids are opaque (Postgres packs block/offset into a u64).
pub trait SearchStore {
    /// Reads node `id` once. For each neighbour with `is_new(nb) == true` (the call marks it
    /// visited) pushes `(nb, Some(estimate))` when its code is inline in this tuple, else
    /// `(nb, None)`. Returns what the tuple says of the node itself (see [`Own`]).
    fn neighbours(
        &mut self,
        id: u64,
        q: &PreparedQuery,
        is_new: &mut dyn FnMut(u64) -> bool,
        out: &mut Vec<(u64, Option<f32>)>,
    ) -> Own;
    /// Scores a node from its own tuple (the entry and non-inline neighbours): exact if
    /// the tuple has the full vector and the node is live, else from its code; with the
    /// node's payload when it is live. `None` if the node no longer exists (it is then
    /// not traversed).
    fn estimate(&mut self, id: u64, q: &PreparedQuery) -> Option<(Score, Option<u64>)>;
    /// `estimate` for all of one expansion's non-inline neighbours at once (`out[i]` for
    /// `ids[i]`), so a store can prefetch them all first (e.g. `PrefetchBuffer`).
    fn estimate_batch(&mut self, ids: &[u64], q: &PreparedQuery, out: &mut [Option<(Score, Option<u64>)>]) {
        for (o, &id) in out.iter_mut().zip(ids) {
            *o = self.estimate(id, q);
        }
    }
    /// Exact distance for re-ranking; `None` if the node is dead (it is skipped). `payload`
    /// is what an earlier read of the node returned, if any.
    fn exact(&mut self, id: u64, payload: Option<u64>, q: &PreparedQuery) -> Option<f32>;
    /// Hint: node `id` is likely to be expanded soon (e.g. start reading its page).
    fn prefetch(&mut self, _id: u64) {}
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
    /// 1 when adaptive termination ended the first run before the beam was used up.
    pub stopped_early: u64,
}

/// One returned row: node id, exact distance, payload from the store (if it read one).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    pub id: u64,
    pub dist: f32,
    pub payload: Option<u64>,
}

const EXPANDED: u8 = 1;
const RETURNED: u8 = 2;
/// `approx` is the node's own fine estimate (error `fine_bound`), not an inline code's.
const FINE: u8 = 4;
/// `SearchStore::prefetch` was called for it.
const PREFETCHED: u8 = 8;
const NO_PAYLOAD: u64 = u64::MAX;

struct Cand {
    id: u64,
    /// The best distance known short of the exact one: the beam's key.
    approx: f32,
    /// NaN until known.
    exact: f32,
    payload: u64,
    flags: u8,
}

/// The `cap` best candidates by estimate, ascending; ties by discovery order.
#[derive(Default)]
struct Beam {
    items: Vec<(f32, u32)>,
    cap: usize,
    /// No unexpanded entry before this position.
    cursor: usize,
}

impl Beam {
    /// Inserts (d, idx); returns the candidate that does not fit (itself or the evicted).
    #[inline]
    fn insert(&mut self, d: f32, idx: u32) -> Option<u32> {
        let n = self.items.len();
        if n >= self.cap && n > 0 && d >= self.items[n - 1].0 {
            return Some(idx);
        }
        let pos = self.items.partition_point(|&(e, i)| e < d || (e == d && i < idx));
        self.items.insert(pos, (d, idx));
        self.cursor = self.cursor.min(pos);
        if self.items.len() > self.cap {
            return self.items.pop().map(|e| e.1);
        }
        None
    }

    /// Moves `idx` (an expanded entry) to its place for the better-known distance `d`.
    fn rekey(&mut self, idx: u32, d: f32) {
        if let Some(pos) = self.items.iter().position(|e| e.1 == idx) {
            self.items.remove(pos);
            if pos < self.cursor {
                self.cursor -= 1;
            }
            let at = self.items.partition_point(|&(e, i)| e < d || (e == d && i < idx));
            self.items.insert(at, (d, idx));
        }
    }
}

pub struct SearchState {
    q: PreparedQuery,
    entry: u64,
    started: bool,
    visited: VisitedSet,
    nodes: Vec<Cand>,
    beam: Beam,
    /// Discovered candidates outside the beam (never expanded, or evicted): continuation only.
    spill: Vec<u32>,
    out: Vec<(u64, Option<f32>)>,
    missing: Vec<u64>,
    fetched: Vec<Option<(Score, Option<u64>)>>,
    picked: Vec<u32>,
    best: Vec<(f32, usize, u32)>,
    /// How many of the next unexpanded beam candidates to prefetch before each expansion.
    prefetch_depth: usize,
    /// Adaptive termination: `(k, patience)`, see [`set_early_stop`](Self::set_early_stop).
    early_stop: Option<(usize, usize)>,
    /// Expansions since the beam's k-th best distance last improved.
    stall: usize,
    stats: SearchStats,
}

impl SearchState {
    pub fn new(q: PreparedQuery, entry: u64) -> Self {
        SearchState {
            q,
            entry,
            started: false,
            visited: VisitedSet::default(),
            nodes: Vec::new(),
            beam: Beam::default(),
            spill: Vec::new(),
            out: Vec::new(),
            missing: Vec::new(),
            fetched: Vec::new(),
            picked: Vec::new(),
            best: Vec::new(),
            prefetch_depth: 0,
            early_stop: None,
            stall: 0,
            stats: SearchStats::default(),
        }
    }
    /// Deterministic-access prefetch: before expanding the nearest unexpanded candidate, ask
    /// the store to start fetching the next `depth` ones (the beam's order is the order in
    /// which they will most likely be read). 0 turns it off.
    pub fn set_prefetch_depth(&mut self, depth: usize) {
        self.prefetch_depth = depth;
    }
    /// Query-level adaptive termination (QLP): the first `run` stops once `patience`
    /// expansions in a row have not improved the beam's `k`-th best distance. An easy query
    /// (its neighbourhood found early) stops long before the beam is used up; a hard one keeps
    /// improving and runs on up to `ef`. A continuation (`run` with a larger `ef`) always
    /// runs to the end. `patience` 0 turns it off; kept across `reset`.
    pub fn set_early_stop(&mut self, k: usize, patience: usize) {
        self.early_stop = (patience > 0).then_some((k.max(1), patience));
    }
    /// Starts a new search, keeping every buffer (O(1) for the visited set).
    pub fn reset(&mut self, q: PreparedQuery, entry: u64) {
        self.q = q;
        self.entry = entry;
        self.started = false;
        self.stall = 0;
        self.visited.clear();
        self.nodes.clear();
        self.beam.items.clear();
        self.beam.cap = 0;
        self.beam.cursor = 0;
        self.spill.clear();
        self.stats = SearchStats::default();
    }
    /// Approximate heap bytes held (to decide whether keeping the state for reuse is cheap).
    pub fn footprint(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Cand>()
            + self.visited.capacity() * 12
            + (self.beam.items.capacity() + self.spill.capacity() + self.picked.capacity()) * 8
    }
    pub fn query(&self) -> &PreparedQuery {
        &self.q
    }
    pub fn stats(&self) -> SearchStats {
        self.stats
    }
    pub fn ef(&self) -> usize {
        self.beam.cap
    }
    /// Every reachable node has been expanded and returned.
    pub fn exhausted(&self) -> bool {
        self.started
            && self.spill.is_empty()
            && self.beam.items.iter().all(|&(_, i)| self.nodes[i as usize].flags & (EXPANDED | RETURNED) == EXPANDED | RETURNED)
    }

    /// Every node discovered so far: (id, approximate distance, exact distance if known).
    /// For the insert path: after `run(ef_construction)`, the nodes with an exact distance
    /// (expanded nodes, when the store reports it) are the candidates for `robust_prune`.
    pub fn discovered(&self) -> impl Iterator<Item = (u64, f32, Option<f32>)> + '_ {
        self.nodes
            .iter()
            .map(|c| (c.id, c.approx, (!c.exact.is_nan()).then_some(c.exact)))
    }

    fn push(&mut self, id: u64, s: Score, payload: Option<u64>) {
        let idx = self.nodes.len() as u32;
        let d = s.value();
        self.nodes.push(Cand {
            id,
            approx: d,
            exact: s.exact().unwrap_or(f32::NAN),
            payload: payload.unwrap_or(NO_PAYLOAD),
            flags: 0,
        });
        if let Some(out) = self.beam.insert(d, idx) {
            self.spill.push(out);
        }
    }

    fn set_ef(&mut self, ef: usize) {
        if ef == self.beam.cap {
            return;
        }
        // Rebuild over everything discovered (returned nodes included, so a resumed run with
        // ef' behaves like a fresh search with ef').
        self.beam.cap = ef;
        let mut all = std::mem::take(&mut self.spill);
        all.extend(self.beam.items.drain(..).map(|e| e.1));
        self.beam.cursor = 0;
        for idx in all {
            if let Some(out) = self.beam.insert(self.nodes[idx as usize].approx, idx) {
                self.spill.push(out);
            }
        }
    }

    /// Expands every candidate of the `ef`-wide beam (the nearest unexpanded first) until
    /// none is left unexpanded. May be called again with a larger `ef`.
    pub fn run(&mut self, store: &mut dyn SearchStore, ef: usize) {
        // Early stopping serves the first batch; a continuation wants the wider beam.
        let early = self.early_stop.filter(|_| !self.started);
        self.set_ef(ef.max(1));
        if !self.started {
            self.started = true;
            self.visited.insert(self.entry);
            self.stats.fetched_estimates += 1;
            if let Some((s, p)) = store.estimate(self.entry, &self.q) {
                self.stats.fetched_exact += matches!(s, Score::Exact(_)) as u64;
                self.push(self.entry, s, p);
            }
        }
        loop {
            let beam = &mut self.beam;
            while beam.cursor < beam.items.len() && self.nodes[beam.items[beam.cursor].1 as usize].flags & EXPANDED != 0 {
                beam.cursor += 1;
            }
            let Some(&(_, idx)) = beam.items.get(beam.cursor) else { break };
            if self.prefetch_depth > 0 {
                self.prefetch_ahead(store);
            }
            let Some((k, patience)) = early else {
                self.expand(store, idx);
                continue;
            };
            if self.stall >= patience {
                self.stats.stopped_early = 1;
                self.keep_expanded();
                break;
            }
            let kth = |b: &Beam| b.items.get(k - 1).map_or(f32::INFINITY, |e| e.0);
            let before = kth(&self.beam);
            self.expand(store, idx);
            self.stall = if kth(&self.beam) < before { 0 } else { self.stall + 1 };
        }
    }

    /// After an early stop: the beam keeps only its expanded candidates (those scored from
    /// their own tuple), the rest wait in `spill` for a continuation. So the batches that
    /// follow re-rank among what the search examined, as a fixed `ef` equal to their number
    /// would, not among a wide beam of barely estimated candidates.
    fn keep_expanded(&mut self) {
        let nodes = &self.nodes;
        let spill = &mut self.spill;
        self.beam.items.retain(|&(_, i)| {
            let keep = nodes[i as usize].flags & EXPANDED != 0;
            if !keep {
                spill.push(i);
            }
            keep
        });
        self.beam.cap = self.beam.items.len().max(1);
        self.beam.cursor = self.beam.items.len();
    }

    /// Whether adaptive termination ended the first run (see `set_early_stop`).
    pub fn stopped_early(&self) -> bool {
        self.stats.stopped_early != 0
    }

    fn prefetch_ahead(&mut self, store: &mut dyn SearchStore) {
        let mut left = self.prefetch_depth;
        for &(_, i) in &self.beam.items[self.beam.cursor + 1..] {
            if left == 0 {
                break;
            }
            let c = &mut self.nodes[i as usize];
            if c.flags & EXPANDED == 0 {
                left -= 1;
                if c.flags & PREFETCHED == 0 {
                    c.flags |= PREFETCHED;
                    store.prefetch(c.id);
                }
            }
        }
    }

    fn expand(&mut self, store: &mut dyn SearchStore, idx: u32) {
        let c = &mut self.nodes[idx as usize];
        c.flags |= EXPANDED;
        let id = c.id;
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let visited = &mut self.visited;
        let own = store.neighbours(id, &self.q, &mut |nb| visited.insert(nb), &mut out);
        self.stats.expanded += 1;
        let c = &mut self.nodes[idx as usize];
        if let Some(e) = own.exact {
            c.exact = e;
            self.stats.exact_on_expand += 1;
        }
        if let Some(p) = own.payload {
            c.payload = p;
        }
        // Re-rank the beam by what the node's own tuple says: navigation then converges on
        // precise distances while inline codes only decide what to look at.
        if let Some(d) = own.exact.or(own.fine) {
            if own.exact.is_none() {
                c.flags |= FINE;
            }
            if d != c.approx {
                c.approx = d;
                self.beam.rekey(idx, d);
            }
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
            match est {
                Some(d) => {
                    self.stats.inline_estimates += 1;
                    self.push(nb, Score::Estimate(d), None);
                }
                None => {
                    if let Some((s, p)) = *next_fetched.next().unwrap() {
                        self.stats.fetched_exact += matches!(s, Score::Exact(_)) as u64;
                        self.push(nb, s, p);
                    }
                }
            }
        }
        self.missing = missing;
        self.fetched = fetched;
        self.out = out;
    }

    /// Fills `picked` with up to `n` not-yet-returned beam candidates, nearest estimate
    /// first. When none is left in the beam, doubles `ef` (to at least `k`) and expands
    /// further; empty only when the reachable graph is exhausted.
    fn pick(&mut self, store: &mut dyn SearchStore, n: usize, k: usize) {
        loop {
            self.picked.clear();
            for &(_, idx) in &self.beam.items {
                if self.picked.len() >= n {
                    break;
                }
                if self.nodes[idx as usize].flags & RETURNED == 0 {
                    self.picked.push(idx);
                }
            }
            if !self.picked.is_empty() || self.spill.is_empty() {
                return;
            }
            let ef = self.beam.cap.saturating_mul(2).max(k);
            self.run(store, ef);
        }
    }

    /// Re-ranks up to `k` of the best not-yet-returned candidates within the current beam
    /// and returns them sorted by exact distance (dead nodes dropped). When the beam is used
    /// up it doubles `ef` and continues; an empty result means the graph is exhausted.
    /// Rows of one batch are exactly ordered; across batches order is approximate.
    pub fn next_batch(&mut self, store: &mut dyn SearchStore, k: usize) -> Vec<(u64, f32)> {
        let mut out = Vec::new();
        self.next_batch_selective(store, k, 1.0, f32::INFINITY, f32::INFINITY, &mut out);
        out.into_iter().map(|h| (h.id, h.dist)).collect()
    }

    /// Puts into `out` (cleared first) the (at most) `k` nearest by exact distance, sorted,
    /// among the best `ceil(k·rerank_factor)` (at least `k`) not-yet-returned candidates
    /// within the beam, skipping the exact distance of any candidate whose
    /// `estimate − error_bound` is no better than the k-th best exact distance found so far
    /// (`fine_bound` for estimates from a node's own fine code).
    /// Known exact distances (expanded nodes, full-vector tuples) are used first and never
    /// filtered. Candidates not returned, skipped or not, stay for later batches.
    /// Continuation, widening and "never twice" work as in [`next_batch`](Self::next_batch);
    /// `error_bound = INFINITY` re-ranks every picked candidate.
    pub fn next_batch_selective(
        &mut self,
        store: &mut dyn SearchStore,
        k: usize,
        rerank_factor: f32,
        error_bound: f32,
        fine_bound: f32,
        out: &mut Vec<Hit>,
    ) {
        out.clear();
        if k == 0 {
            return;
        }
        if !self.started {
            self.run(store, self.beam.cap.max(k));
        }
        // `as` saturates (NaN → 0), so odd factors fall back to plain top-k.
        let budget = ((k as f32 * rerank_factor).ceil() as usize).max(k);
        loop {
            self.pick(store, budget, k);
            if self.picked.is_empty() {
                return;
            }
            // The k best so far as (exact, pick position, node), sorted; on equal distances
            // the earlier pick wins.
            let mut best = std::mem::take(&mut self.best);
            best.clear();
            let offer = |best: &mut Vec<(f32, usize, u32)>, e: f32, pos: usize, idx: u32| {
                if best.len() >= k && (e, pos) >= (best[k - 1].0, best[k - 1].1) {
                    return;
                }
                let at = best.partition_point(|b| (b.0, b.1) < (e, pos));
                best.insert(at, (e, pos, idx));
                best.truncate(k);
            };
            // Free exact distances first: they tighten the k-th bound before any is paid for.
            for (pos, &idx) in self.picked.iter().enumerate() {
                let e = self.nodes[idx as usize].exact;
                if !e.is_nan() {
                    offer(&mut best, e, pos, idx);
                }
            }
            let mut dead = 0;
            for pos in 0..self.picked.len() {
                let idx = self.picked[pos];
                let c = &self.nodes[idx as usize];
                if !c.exact.is_nan() {
                    continue;
                }
                let bound = if c.flags & FINE != 0 { fine_bound } else { error_bound };
                if best.len() >= k && c.approx - bound >= best[k - 1].0 {
                    self.stats.filtered += 1;
                    continue;
                }
                self.stats.exact += 1;
                let payload = (c.payload != NO_PAYLOAD).then_some(c.payload);
                match store.exact(c.id, payload, &self.q) {
                    Some(e) => {
                        self.nodes[idx as usize].exact = e;
                        offer(&mut best, e, pos, idx);
                    }
                    None => {
                        self.nodes[idx as usize].flags |= RETURNED;
                        dead += 1;
                    }
                }
            }
            self.stats.returned += (best.len() + dead) as u64;
            for &(d, _, idx) in &best {
                let c = &mut self.nodes[idx as usize];
                c.flags |= RETURNED;
                out.push(Hit { id: c.id, dist: d, payload: (c.payload != NO_PAYLOAD).then_some(c.payload) });
            }
            self.best = best;
            if !out.is_empty() {
                return;
            }
        }
    }
}
