//! `SearchStore` over index pages: expanding a node reads its one tuple, which carries the
//! codes of its neighbours inline (PRS), so those neighbours are scored without touching
//! their pages. A non-inline neighbour costs one more page read; all of an expansion's are
//! prefetched together. Exact distances come from the tuple's own vector (`storage = full`)
//! or, for `storage = codes`, from the heap row (`heap::HeapFetch`, scans only).

use super::heap::HeapFetch;
use super::index::IndexState;
use super::pages;
use pgrx::pg_sys::{self, Relation};
use std::collections::HashMap;
use std::rc::Rc;
use vsag_core::graph::{Score, SearchStore};
use vsag_core::page::{ItemPointer, NodeRef};
use vsag_core::quant::{index_distance, PreparedQuery};

pub struct PgStore {
    pub index: Relation,
    pub st: Rc<IndexState>,
    /// First heap TID and TID count of nodes seen live (most nodes hold one row; the few
    /// with more are re-read when returned), for the scan to return.
    pub tids: HashMap<u64, (ItemPointer, u16)>,
    /// Re-rank source for `storage = codes` (None: exact falls back to the code estimate).
    pub heap: Option<HeapFetch>,
    pub page_reads: u64,
    scratch: Vec<f32>,
}

impl PgStore {
    pub fn new(index: Relation, st: Rc<IndexState>, heap: Option<HeapFetch>) -> Self {
        PgStore { index, st, tids: HashMap::new(), heap, page_reads: 0, scratch: Vec::new() }
    }

    /// Runs `f` on node `id` (under a share lock).
    pub fn with_node<R>(&mut self, id: u64, f: impl FnOnce(NodeRef<'_>) -> R) -> Option<R> {
        self.page_reads += 1;
        let layout = &self.st.layout;
        unsafe {
            pages::with_item(self.index, ItemPointer::from_u64(id), |b| {
                (b.len() >= layout.tuple_size).then(|| f(NodeRef::new(layout, b)))
            })
            .flatten()
        }
    }

    fn remember(&mut self, id: u64, first: Option<(ItemPointer, u16)>) {
        if let Some(t) = first {
            self.tids.insert(id, t);
        }
    }

    /// All live heap TIDs of a node returned by the search.
    pub fn take_tids(&mut self, id: u64) -> Vec<ItemPointer> {
        match self.tids.remove(&id) {
            Some((t, 1)) => vec![t],
            Some(_) => self.with_node(id, |n| n.heap_tids().collect()).unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// The node's vector for pruning on insert: exact if stored, else decoded from its code.
    pub fn node_vector_and_code(&mut self, id: u64) -> Option<(Vec<f32>, Vec<u8>)> {
        let st = self.st.clone();
        self.with_node(id, |n| {
            let code = match n.own_code() {
                Some(c) => c.to_vec(),
                None => st.quantizer.encode_vec(&n.vector()?),
            };
            let v = match n.vector() {
                Some(v) => v.into_owned(),
                None => {
                    let mut v = vec![0f32; st.layout.dim];
                    st.quantizer.decode(&code, &mut v);
                    v
                }
            };
            Some((v, code))
        })
        .flatten()
    }

    /// Exact distance from the heap rows of node `id` (codes storage).
    fn exact_from_heap(&mut self, id: u64, q: &PreparedQuery) -> Option<f32> {
        let tids = self.with_node(id, |n| (!n.is_deleted()).then(|| n.heap_tids().collect::<Vec<_>>())).flatten()?;
        let heap = self.heap.as_mut()?;
        let v = unsafe { heap.vector(tids.iter().copied())? };
        self.remember(id, first_tid(tids.iter().copied(), tids.len()));
        Some(q.exact(&v))
    }
}

fn first_tid(mut tids: impl Iterator<Item = ItemPointer>, n: usize) -> Option<(ItemPointer, u16)> {
    tids.next().map(|t| (t, n as u16))
}

impl SearchStore for PgStore {
    fn neighbours(
        &mut self,
        id: u64,
        q: &PreparedQuery,
        is_new: &mut dyn FnMut(u64) -> bool,
        out: &mut Vec<(u64, Option<f32>)>,
    ) -> Option<f32> {
        let r = self.with_node(id, |node| {
            for i in 0..node.degree() {
                let nb = node.neighbour(i);
                if nb.is_valid() && is_new(nb.to_u64()) {
                    out.push((nb.to_u64(), node.inline_code(i).map(|c| q.estimate(c))));
                }
            }
            if node.is_deleted() {
                return None;
            }
            node.vector().map(|v| (q.exact(&v), first_tid(node.heap_tids(), node.n_heap_tids())))
        });
        let (d, tids) = r.flatten()?;
        self.remember(id, tids);
        Some(d)
    }

    fn estimate(&mut self, id: u64, q: &PreparedQuery) -> Option<Score> {
        let r = self.with_node(id, |node| match (node.vector(), node.own_code()) {
            (Some(v), _) if !node.is_deleted() => (Score::Exact(q.exact(&v)), first_tid(node.heap_tids(), node.n_heap_tids())),
            (Some(v), _) => (Score::Estimate(q.exact(&v)), None),
            (None, Some(code)) => (Score::Estimate(q.estimate(code)), None),
            (None, None) => (Score::Estimate(f32::INFINITY), None),
        })?;
        self.remember(id, r.1);
        Some(r.0)
    }

    fn estimate_batch(&mut self, ids: &[u64], q: &PreparedQuery, out: &mut [Option<Score>]) {
        // Ask the OS for every page first, so cold reads overlap instead of queueing.
        if ids.len() > 1 {
            for &id in ids {
                unsafe {
                    pg_sys::PrefetchBuffer(self.index, pg_sys::ForkNumber::MAIN_FORKNUM, ItemPointer::from_u64(id).block);
                }
            }
        }
        for (o, &id) in out.iter_mut().zip(ids) {
            *o = self.estimate(id, q);
        }
    }

    fn exact(&mut self, id: u64, q: &PreparedQuery) -> Option<f32> {
        if self.st.layout.store_vector {
            let r = self.with_node(id, |node| {
                if node.is_deleted() {
                    return None;
                }
                node.vector().map(|v| (q.exact(&v), first_tid(node.heap_tids(), node.n_heap_tids())))
            });
            let (d, tids) = r.flatten()?;
            self.remember(id, tids);
            return Some(d);
        }
        if self.heap.is_some() {
            return self.exact_from_heap(id, q);
        }
        // Insert path on a codes-only index: the decoded code is the best we have.
        let st = self.st.clone();
        let mut v = std::mem::take(&mut self.scratch);
        let r = self.with_node(id, |node| {
            let code = node.own_code()?;
            if node.is_deleted() {
                return None;
            }
            v.resize(st.layout.dim, 0.0);
            st.quantizer.decode(code, &mut v);
            Some((index_distance(st.metric, q.query(), &v), first_tid(node.heap_tids(), node.n_heap_tids())))
        });
        self.scratch = v;
        let (d, tids) = r.flatten()?;
        self.remember(id, tids);
        Some(d)
    }
}
