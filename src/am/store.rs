//! `SearchStore` over index pages: expanding a node reads its one tuple, which carries the
//! codes of its nearest neighbours inline (PRS), so those neighbours are scored without
//! touching their pages.

use super::index::IndexState;
use super::pages;
use pgrx::pg_sys::Relation;
use std::collections::HashMap;
use std::rc::Rc;
use vsag_core::graph::SearchStore;
use vsag_core::page::{ItemPointer, NodeRef};
use vsag_core::quant::PreparedQuery;

pub struct PgStore {
    pub index: Relation,
    pub st: Rc<IndexState>,
    /// Heap TIDs of nodes whose exact distance was computed, for the scan to return.
    pub tids: HashMap<u64, ItemPointer>,
    /// Page reads, for the scan's counters.
    pub reads: u64,
}

impl PgStore {
    pub fn new(index: Relation, st: Rc<IndexState>) -> Self {
        PgStore { index, st, tids: HashMap::new(), reads: 0 }
    }

    /// Runs `f` on node `id` (under a share lock).
    pub fn with_node<R>(&mut self, id: u64, f: impl FnOnce(NodeRef<'_>) -> R) -> Option<R> {
        self.reads += 1;
        let layout = &self.st.layout;
        unsafe {
            pages::with_item(self.index, ItemPointer::from_u64(id), |b| {
                (b.len() >= layout.tuple_size).then(|| f(NodeRef::new(layout, b)))
            })
            .flatten()
        }
    }
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
            node.vector().map(|v| (q.exact(&v), node.heap_tid()))
        });
        let (d, tid) = r.flatten()?;
        self.tids.insert(id, tid);
        Some(d)
    }

    fn estimate(&mut self, id: u64, q: &PreparedQuery) -> Option<f32> {
        self.with_node(id, |node| q.estimate(node.own_code()))
    }

    fn exact(&mut self, id: u64, q: &PreparedQuery) -> Option<f32> {
        let r = self.with_node(id, |node| {
            if node.is_deleted() {
                return None;
            }
            node.vector().map(|v| (q.exact(&v), node.heap_tid()))
        });
        let (d, tid) = r.flatten()?;
        self.tids.insert(id, tid);
        Some(d)
    }
}
