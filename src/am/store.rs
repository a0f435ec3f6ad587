//! `SearchStore` over index pages: expanding a node reads its one tuple, which carries the
//! codes of its neighbours inline (PRS), so those neighbours are scored without touching
//! their pages. A non-inline neighbour costs one more page read; all of an expansion's are
//! prefetched together. Exact distances come from the tuple's own vector (`storage = full`)
//! or, for `storage = codes`, from the heap row (`heap::HeapFetch`, scans only).

use super::heap::HeapFetch;
use super::index::IndexState;
use super::pages;
use super::recent;
use pgrx::pg_sys::Relation;
use std::collections::VecDeque;
use std::rc::Rc;
use vsag_core::graph::{Own, Score, SearchStore};
use vsag_core::page::{ItemPointer, NodeRef};
use vsag_core::quant::{index_distance, PreparedQuery};

pub struct PgStore {
    pub index: Relation,
    pub st: Rc<IndexState>,
    /// Re-rank source for `storage = codes` (None: exact falls back to the code estimate).
    pub heap: Option<HeapFetch>,
    pub page_reads: u64,
    /// Neighbours followed per node (0 = all): the selection-order prefix (`vsag.search_m`).
    pub search_m: usize,
    /// `HIDDEN_ROW` as it was when the scan (re)started: that row's node is not expanded.
    pub hidden_row: Option<ItemPointer>,
    scratch: Vec<f32>,
}

/// A node's heap rows as the search payload: first heap TID (48 bits) and the TID count
/// (top 16 bits). Most nodes hold one row, so returning or re-ranking one never needs its
/// tuple again; the few with more are re-read.
pub fn pack_tids(node: &NodeRef<'_>) -> Option<u64> {
    if node.is_deleted() {
        return None;
    }
    let first = node.heap_tids().next()?;
    Some(first.to_u64() | (node.n_heap_tids() as u64) << 48)
}

thread_local! {
    /// `vsag_tune` only, around one sample query: the heap row the query vector came from.
    /// Its node is not expanded, so the search cannot take the shortcut of the query's own
    /// neighbour list, which no unseen query has (self-queries otherwise overrate small
    /// beams badly: clustered 64-d data, SQ8, ef_search 10: sample 0.98, held-out 0.88).
    pub static HIDDEN_ROW: std::cell::Cell<Option<ItemPointer>> = const { std::cell::Cell::new(None) };
}

fn unpack_tids(p: u64) -> (ItemPointer, usize) {
    (ItemPointer::from_u64(p & ((1 << 48) - 1)), (p >> 48) as usize)
}

impl PgStore {
    pub fn new(index: Relation, st: Rc<IndexState>, heap: Option<HeapFetch>) -> Self {
        PgStore { index, st, heap, page_reads: 0, search_m: 0, hidden_row: None, scratch: Vec::new() }
    }

    /// Runs `f` on node `id` (under a share lock).
    pub fn with_node<R>(&mut self, id: u64, f: impl FnOnce(NodeRef<'_>) -> R) -> Option<R> {
        self.page_reads += 1;
        let layout = &self.st.layout;
        let ptr = ItemPointer::from_u64(id);
        unsafe {
            let buf = recent::read(self.index, ptr.block, &self.st.recent);
            pages::with_pinned_item(buf, ptr.offset, |b| {
                (b.len() >= layout.tuple_size).then(|| f(NodeRef::new(layout, b)))
            })
            .flatten()
        }
    }

    /// Appends the live heap TIDs of a returned node (payload from the search) to `out`.
    pub fn push_tids(&mut self, id: u64, payload: Option<u64>, out: &mut VecDeque<ItemPointer>) {
        match payload.map(unpack_tids) {
            Some((t, 1)) => out.push_back(t),
            _ => {
                self.with_node(id, |n| {
                    if !n.is_deleted() {
                        out.extend(n.heap_tids())
                    }
                });
            }
        }
    }

    /// The node's vector for pruning on insert: exact if stored, else decoded from its code.
    pub fn node_vector_and_code(&mut self, id: u64) -> Option<(Vec<f32>, Vec<u8>)> {
        let st = self.st.clone();
        self.with_node(id, |n| {
            let (code, v) = match (n.vector(), n.own_code()) {
                (Some(v), _) => (st.quantizer.encode_vec(&v), v.into_owned()),
                (None, Some(own)) => {
                    let mut v = vec![0f32; st.layout.dim];
                    st.own_quantizer().decode(own, &mut v);
                    (st.nav_code(own), v)
                }
                (None, None) => return None,
            };
            Some((v, code))
        })
        .flatten()
    }

    /// Exact distance from the heap rows of node `id` (codes storage).
    fn exact_from_heap(&mut self, id: u64, payload: Option<u64>, q: &PreparedQuery) -> Option<f32> {
        let heap = self.heap.as_mut()?;
        if let Some((t, 1)) = payload.map(unpack_tids) {
            return unsafe { heap.distance(std::iter::once(t), q) };
        }
        let mut tids = [ItemPointer::INVALID; vsag_core::page::MAX_HEAP_TIDS];
        let n = self
            .with_node(id, |n| {
                if n.is_deleted() {
                    return 0;
                }
                let mut k = 0;
                for (slot, t) in tids.iter_mut().zip(n.heap_tids()) {
                    *slot = t;
                    k += 1;
                }
                k
            })
            .unwrap_or(0);
        let heap = self.heap.as_mut()?;
        unsafe { heap.distance(tids[..n].iter().copied(), q) }
    }
}

impl SearchStore for PgStore {
    fn neighbours(
        &mut self,
        id: u64,
        q: &PreparedQuery,
        is_new: &mut dyn FnMut(u64) -> bool,
        out: &mut Vec<(u64, Option<f32>)>,
    ) -> Own {
        let mut limit = if self.search_m > 0 { self.search_m } else { usize::MAX };
        let hidden = self.hidden_row;
        self.with_node(id, |node| {
            if hidden.is_some_and(|h| node.heap_tids().any(|t| t == h)) {
                limit = 0;
            }
            for i in 0..node.degree().min(limit) {
                let nb = node.neighbour(i);
                if nb.is_valid() && is_new(nb.to_u64()) {
                    out.push((nb.to_u64(), node.inline_code(i).map(|c| q.estimate(c))));
                }
            }
            let payload = pack_tids(&node);
            let fine = q.fine().zip(node.own_code()).map(|(fq, c)| fq.estimate(c));
            Own { exact: payload.and_then(|_| node.vector().map(|v| q.exact(&v))), fine, payload }
        })
        .unwrap_or_default()
    }

    fn estimate(&mut self, id: u64, q: &PreparedQuery) -> Option<(Score, Option<u64>)> {
        self.with_node(id, |node| {
            let payload = pack_tids(&node);
            let s = match (node.vector(), node.own_code()) {
                (Some(v), _) if payload.is_some() => Score::Exact(q.exact(&v)),
                (Some(v), _) => Score::Estimate(q.exact(&v)),
                (None, Some(code)) => Score::Estimate(q.fine().unwrap_or(q).estimate(code)),
                (None, None) => Score::Estimate(f32::INFINITY),
            };
            (s, payload)
        })
    }

    fn estimate_batch(&mut self, ids: &[u64], q: &PreparedQuery, out: &mut [Option<(Score, Option<u64>)>]) {
        // Ask for every tuple first, so cold reads and cache misses overlap instead of queueing.
        if ids.len() > 1 {
            for &id in ids {
                self.prefetch(id);
            }
        }
        for (o, &id) in out.iter_mut().zip(ids) {
            *o = self.estimate(id, q);
        }
    }

    fn prefetch(&mut self, id: u64) {
        // An OS read for a page not in shared buffers; the tuple into the CPU cache otherwise.
        let ptr = ItemPointer::from_u64(id);
        unsafe { recent::prefetch(self.index, ptr.block, ptr.offset, self.st.layout.tuple_size, &self.st.recent) }
    }

    fn exact(&mut self, id: u64, payload: Option<u64>, q: &PreparedQuery) -> Option<f32> {
        if self.st.layout.store_vector {
            return self
                .with_node(id, |node| {
                    pack_tids(&node)?;
                    node.vector().map(|v| q.exact(&v))
                })
                .flatten();
        }
        if self.heap.is_some() {
            return self.exact_from_heap(id, payload, q);
        }
        // Insert path on a codes-only index: the decoded code is the best we have.
        let st = self.st.clone();
        let mut v = std::mem::take(&mut self.scratch);
        let r = self.with_node(id, |node| {
            let code = node.own_code()?;
            pack_tids(&node)?;
            v.resize(st.layout.dim, 0.0);
            st.own_quantizer().decode(code, &mut v);
            Some(index_distance(st.metric, q.query(), &v))
        });
        self.scratch = v;
        r.flatten()
    }
}
