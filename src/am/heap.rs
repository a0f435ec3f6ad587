//! Re-ranking from the table for `storage = codes` indexes: the index keeps only codes, so
//! the exact vector comes from the heap tuple the node points to (fetched with the scan's
//! snapshot, following HOT chains). An invisible tuple yields None: the executor would drop
//! that row anyway. HOT updates never change an indexed column, so any visible member of
//! the chain carries the indexed vector; a non-HOT update makes a new index entry.

use super::index::to_index_space;
use crate::vector::VectorArg;
use pgrx::pg_sys::{self, Relation};
use vsag_core::distance::Metric;
use vsag_core::page::ItemPointer;
use vsag_core::quant::PreparedQuery;

pub struct HeapFetch {
    fetch: *mut pg_sys::IndexFetchTableData,
    slot: *mut pg_sys::TupleTableSlot,
    snapshot: pg_sys::Snapshot,
    attno: i32,
    metric: Metric,
    /// Heap tuples fetched, for the scan's counters.
    pub fetched: u64,
}

impl HeapFetch {
    /// `index`'s first key column must be a plain column (checked at build for codes storage).
    pub unsafe fn new(heap: Relation, index: Relation, snapshot: pg_sys::Snapshot, metric: Metric) -> Self {
        let attno = (*(*index).rd_index).indkey.values.as_slice(1)[0] as i32;
        HeapFetch {
            fetch: pg_sys::table_index_fetch_begin(heap),
            slot: pg_sys::table_slot_create(heap, std::ptr::null_mut()),
            snapshot,
            attno,
            metric,
            fetched: 0,
        }
    }

    /// The exact index distance from `q` to the first visible row among `tids`.
    pub unsafe fn distance(&mut self, tids: impl IntoIterator<Item = ItemPointer>, q: &PreparedQuery) -> Option<f32> {
        self.with_vector(tids, |v| q.exact_raw(v))
    }

    /// The indexed vector of the first visible row among `tids`, in index space.
    pub unsafe fn vector(&mut self, tids: impl IntoIterator<Item = ItemPointer>) -> Option<Vec<f32>> {
        let metric = self.metric;
        self.with_vector(tids, |v| to_index_space(metric, v))
    }

    /// `f` on the stored vector of the first visible row among `tids`.
    unsafe fn with_vector<R>(&mut self, tids: impl IntoIterator<Item = ItemPointer>, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
        let mut f = Some(f);
        for tid in tids {
            let mut t: pg_sys::ItemPointerData = std::mem::zeroed();
            pgrx::itemptr::item_pointer_set_all(&mut t, tid.block, tid.offset);
            let (mut call_again, mut all_dead) = (false, false);
            self.fetched += 1;
            let found =
                pg_sys::table_index_fetch_tuple(self.fetch, &mut t, self.snapshot, self.slot, &mut call_again, &mut all_dead);
            if !found {
                continue;
            }
            let mut isnull = false;
            let d = pg_sys::slot_getattr(self.slot, self.attno, &mut isnull);
            let v = (!isnull).then(|| (f.take().expect("called once"))(VectorArg::from_datum(d).as_slice()));
            pg_sys::ExecClearTuple(self.slot);
            if v.is_some() {
                return v;
            }
        }
        None
    }
}

impl Drop for HeapFetch {
    fn drop(&mut self) {
        unsafe {
            pg_sys::ExecDropSingleTupleTableSlot(self.slot);
            pg_sys::table_index_fetch_end(self.fetch);
        }
    }
}
