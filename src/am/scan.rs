//! `amgettuple`: quantized-first beam search with exact re-ranking.
//!
//! The first call searches with a beam of `vsag.ef_search` on inline codes, re-ranks the
//! best candidates with exact distances and returns them in exact order. When they run out
//! (LIMIT above ef_search, or a WHERE clause rejecting rows) the search resumes with a wider
//! beam, never returning a node twice, until `vsag.max_scan_tuples` rows were returned or
//! the graph is exhausted. A NULL query vector returns every indexed row in index order.

use super::index::{self, read_meta, to_index_space};
use super::options::{EF_SEARCH, MAX_SCAN_TUPLES};
use super::pages::{self, PAGE_NODE};
use super::store::PgStore;
use crate::fmgr::error;
use crate::vector::VectorArg;
use pgrx::pg_guard;
use pgrx::pg_sys::{self, IndexScanDesc, Relation};
use pgrx::PgSqlErrorCode;
use std::collections::VecDeque;
use vsag_core::graph::SearchState;
use vsag_core::page::{ItemPointer, NodeRef};

enum Mode {
    /// rescan not yet called
    Idle,
    Search { store: PgStore, search: SearchState, batch: VecDeque<(u64, f32)> },
    /// NULL query: walk node pages in order.
    Walk { block: u32, offset: u16, nblocks: u32 },
    Done,
}

struct ScanState {
    index: Relation,
    mode: Mode,
    returned: usize,
}

/// Owner of the Rust state, kept in the scan's memory context; a reset callback drops the
/// state if the scan is abandoned by an error (amendscan is then never called).
#[repr(C)]
struct Holder {
    cb: pg_sys::MemoryContextCallback,
    state: *mut ScanState,
}

unsafe extern "C-unwind" fn drop_holder(arg: *mut std::ffi::c_void) {
    let h = arg as *mut Holder;
    if !(*h).state.is_null() {
        drop(Box::from_raw((*h).state));
        (*h).state = std::ptr::null_mut();
    }
}

unsafe fn state_of<'a>(scan: IndexScanDesc) -> &'a mut ScanState {
    let h = (*scan).opaque as *mut Holder;
    &mut *(*h).state
}

#[pg_guard]
pub unsafe extern "C-unwind" fn ambeginscan(index: Relation, nkeys: i32, norderbys: i32) -> IndexScanDesc {
    let scan = pg_sys::RelationGetIndexScan(index, nkeys, norderbys);
    let h = pg_sys::palloc0(std::mem::size_of::<Holder>()) as *mut Holder;
    (*h).state = Box::into_raw(Box::new(ScanState { index, mode: Mode::Idle, returned: 0 }));
    (*h).cb.func = Some(drop_holder);
    (*h).cb.arg = h as *mut std::ffi::c_void;
    pg_sys::MemoryContextRegisterResetCallback(pg_sys::CurrentMemoryContext, &mut (*h).cb);
    (*scan).opaque = h as *mut std::ffi::c_void;
    scan
}

#[pg_guard]
pub unsafe extern "C-unwind" fn amrescan(
    scan: IndexScanDesc,
    _keys: pg_sys::ScanKey,
    _nkeys: i32,
    orderbys: pg_sys::ScanKey,
    norderbys: i32,
) {
    if !orderbys.is_null() && norderbys > 0 {
        std::ptr::copy(orderbys, (*scan).orderByData, norderbys as usize);
    }
    let s = state_of(scan);
    s.returned = 0;
    s.mode = Mode::Done;
    let index = s.index;
    let key = if norderbys > 0 { Some(&*(*scan).orderByData) } else { None };
    let query = match key {
        Some(k) if k.sk_flags & pg_sys::SK_ISNULL as i32 == 0 => Some(VectorArg::from_datum(k.sk_argument)),
        _ => None,
    };
    let st = index::state(index);
    let Some(query) = query else {
        s.mode = Mode::Walk { block: 0, offset: 1, nblocks: pages::nblocks(index) };
        return;
    };
    if query.dim() != st.layout.dim {
        error(
            PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
            format!("different vector dimensions {} and {}", st.layout.dim, query.dim()),
        );
    }
    let Some(entry) = read_meta(index).entry() else { return };
    let v = to_index_space(st.metric, query.as_slice());
    let q = st.quantizer.prepare(st.metric, &v);
    s.mode = Mode::Search {
        store: PgStore::new(index, st),
        search: SearchState::new(q, entry.to_u64()),
        batch: VecDeque::new(),
    };
}

unsafe fn set_tid(scan: IndexScanDesc, tid: ItemPointer) {
    pgrx::itemptr::item_pointer_set_all(&mut (*scan).xs_heaptid, tid.block, tid.offset);
    (*scan).xs_recheck = false;
    (*scan).xs_recheckorderby = false;
}

#[pg_guard]
pub unsafe extern "C-unwind" fn amgettuple(scan: IndexScanDesc, _dir: pg_sys::ScanDirection::Type) -> bool {
    let s = state_of(scan);
    if s.returned >= MAX_SCAN_TUPLES.get() as usize {
        return false;
    }
    let found = match &mut s.mode {
        Mode::Idle | Mode::Done => None,
        Mode::Search { store, search, batch } => loop {
            if let Some((id, _)) = batch.pop_front() {
                if let Some(tid) = store.tids.remove(&id) {
                    break Some(tid);
                }
                continue;
            }
            let next = search.next_batch(store, EF_SEARCH.get() as usize);
            if next.is_empty() {
                break None;
            }
            batch.extend(next);
        },
        Mode::Walk { block, offset, nblocks } => walk_next(s.index, block, offset, *nblocks),
    };
    match found {
        Some(tid) => {
            set_tid(scan, tid);
            s.returned += 1;
            true
        }
        None => {
            s.mode = Mode::Done;
            false
        }
    }
}

/// Next live node in physical order, for NULL queries.
unsafe fn walk_next(index: Relation, block: &mut u32, offset: &mut u16, nblocks: u32) -> Option<ItemPointer> {
    let st = index::state(index);
    while *block < nblocks {
        let buf = pages::read_buffer(index, *block);
        pg_sys::LockBuffer(buf, pg_sys::BUFFER_LOCK_SHARE as i32);
        let page = pg_sys::BufferGetPage(buf);
        let mut found = None;
        if pages::page_type(page) == PAGE_NODE {
            let max = pg_sys::PageGetMaxOffsetNumber(page);
            while found.is_none() && *offset <= max {
                if let Some(b) = pages::item(page, *offset) {
                    let node = NodeRef::new(&st.layout, b);
                    if !node.is_deleted() {
                        found = Some(node.heap_tid());
                    }
                }
                *offset += 1;
            }
        }
        pg_sys::UnlockReleaseBuffer(buf);
        if found.is_some() {
            return found;
        }
        *block += 1;
        *offset = 1;
    }
    None
}

#[pg_guard]
pub unsafe extern "C-unwind" fn amendscan(scan: IndexScanDesc) {
    let h = (*scan).opaque as *mut Holder;
    if !h.is_null() {
        drop_holder(h as *mut std::ffi::c_void);
    }
}
