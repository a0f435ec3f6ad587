//! `amgettuple`: quantized-first beam search with selective exact re-ranking.
//!
//! The search navigates on codes with a beam of `vsag.ef_search`. Rows come back in
//! batches of `ef_search / vsag.rerank_factor` (at least 10, the common LIMIT, and at most
//! `ef_search`), each chosen among the best `ef_search` candidates and sorted by exact
//! distance; with `vsag.rerank = on` a candidate only gets an
//! exact distance if its estimate minus the quantizer's error bound (times
//! `vsag.rerank_error_scale`) could still enter the batch (VSAG's precision filter). When
//! the beam is used up (LIMIT above ef_search, or a WHERE clause rejecting rows) the search
//! widens and continues, never returning a node twice, until `vsag.max_scan_tuples` rows
//! were returned or the graph is exhausted. A NULL query returns indexed rows in index order.

use super::heap::HeapFetch;
use super::index::{self, read_meta, to_index_space};
use super::options::{RERANK, RERANK_ERROR_SCALE, RERANK_FACTOR, TYPICAL_LIMIT};
use super::scan_settings::{IterativeScan, ScanSettings};
use super::pages::{self, PAGE_NODE};
use super::store::{PgStore, HIDDEN_ROW};
use crate::fmgr::error;
use crate::vector::VectorArg;
use pgrx::pg_guard;
use pgrx::pg_sys::{self, IndexScanDesc, Relation};
use pgrx::PgSqlErrorCode;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use vsag_core::graph::{Hit, SearchState, SearchStats};
use vsag_core::page::{ItemPointer, NodeRef};

/// Counters of the last finished (or current) scan in this backend: `vsag_last_scan_stats()`.
#[derive(Clone, Copy, Default)]
pub struct ScanCounters {
    pub search: SearchStats,
    pub page_reads: u64,
    pub heap_fetches: u64,
    pub rows: u64,
}

thread_local! {
    pub static LAST_SCAN: Cell<ScanCounters> = Cell::new(ScanCounters::default());
    /// A finished scan's search state, for the next scan of this backend: its arrays and
    /// visited set are already grown, so a warm query allocates nothing for the search.
    static SPARE: RefCell<Option<SearchState>> = const { RefCell::new(None) };
}

enum Mode {
    Idle,
    /// A quantized-first search in `ScanState::search`.
    Search,
    /// NULL query: walk node pages in order.
    Walk { block: u32, offset: u16, nblocks: u32 },
    Done,
}

struct ScanState {
    index: Relation,
    mode: Mode,
    /// Kept across rescans (a nested loop rescans once per outer row): buffers, visited set
    /// and the heap-fetch handle are set up once per scan.
    store: Option<PgStore>,
    search: Option<SearchState>,
    hits: Vec<Hit>,
    /// Heap TIDs ready to return (a node may hold several rows).
    out: VecDeque<ItemPointer>,
    returned: usize,
    cfg: ScanSettings,
    /// Distance of the last row handed out (strict_order never goes below it).
    last_dist: f32,
}

impl ScanState {
    fn publish(&self) {
        if let (Mode::Search, Some(store), Some(search)) = (&self.mode, &self.store, &self.search) {
            LAST_SCAN.with(|c| {
                c.set(ScanCounters {
                    search: search.stats(),
                    page_reads: store.page_reads,
                    heap_fetches: store.heap.as_ref().map_or(0, |h| h.fetched),
                    rows: self.returned as u64,
                })
            });
        }
    }

    /// Error path: Postgres already released buffer pins and is freeing the scan's memory,
    /// so the heap-fetch handles must not be closed again; everything else is plain Rust.
    fn abandon(mut self) {
        if let Some(h) = self.store.as_mut().and_then(|s| s.heap.take()) {
            std::mem::forget(h);
        }
    }
}

/// Owner of the Rust state, kept in the scan's memory context; a reset callback disposes
/// of the state if the scan is abandoned by an error (amendscan is then never called).
#[repr(C)]
struct Holder {
    cb: pg_sys::MemoryContextCallback,
    state: *mut ScanState,
}

unsafe extern "C-unwind" fn abandon_holder(arg: *mut std::ffi::c_void) {
    let h = arg as *mut Holder;
    if !(*h).state.is_null() {
        Box::from_raw((*h).state).abandon();
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
    (*h).state = Box::into_raw(Box::new(ScanState {
        index,
        mode: Mode::Idle,
        store: None,
        search: None,
        hits: Vec::new(),
        out: VecDeque::new(),
        returned: 0,
        cfg: ScanSettings::resolve(index),
        last_dist: f32::NEG_INFINITY,
    }));
    (*h).cb.func = Some(abandon_holder);
    (*h).cb.arg = h as *mut std::ffi::c_void;
    pg_sys::MemoryContextRegisterResetCallback(pg_sys::CurrentMemoryContext, &mut (*h).cb);
    (*scan).opaque = h as *mut std::ffi::c_void;
    scan
}

/// `pgstat_count_index_scan` (a C macro): one scan in pg_stat_user_indexes.idx_scan.
unsafe fn count_index_scan(rel: Relation) {
    if (*rel).pgstat_info.is_null() {
        if !(*rel).pgstat_enabled {
            return;
        }
        pg_sys::pgstat_assoc_relation(rel);
    }
    let info = (*rel).pgstat_info;
    if info.is_null() {
        return;
    }
    #[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15"))]
    {
        (*info).t_counts.t_numscans += 1;
    }
    #[cfg(not(any(feature = "pg13", feature = "pg14", feature = "pg15")))]
    {
        (*info).counts.numscans += 1;
    }
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
    index::require_mvcc_snapshot((*scan).xs_snapshot);
    let s = state_of(scan);
    s.publish();
    s.returned = 0;
    s.last_dist = f32::NEG_INFINITY;
    s.cfg = ScanSettings::resolve(s.index);
    s.out.clear();
    s.mode = Mode::Done;
    let index = s.index;
    let key = if norderbys > 0 { Some(&*(*scan).orderByData) } else { None };
    let query = match key {
        Some(k) if k.sk_flags & pg_sys::SK_ISNULL as i32 == 0 => Some(VectorArg::from_datum(k.sk_argument)),
        _ => None,
    };
    let st = index::state(index);
    count_index_scan(index);
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
    let q = st.prepare(&v);
    if s.store.is_none() {
        let heap = (!st.layout.store_vector && !(*scan).heapRelation.is_null())
            .then(|| HeapFetch::new((*scan).heapRelation, index, (*scan).xs_snapshot, st.metric));
        s.store = Some(PgStore::new(index, st, heap));
    }
    let store = s.store.as_mut().expect("set above");
    store.page_reads = 0;
    store.search_m = s.cfg.search_m;
    // Read once per query, not per expansion (set by vsag_tune around its sample queries).
    store.hidden_row = HIDDEN_ROW.with(|h| h.get());
    if let Some(h) = store.heap.as_mut() {
        h.fetched = 0;
    }
    if s.search.is_none() {
        s.search = SPARE.with(|c| c.borrow_mut().take());
    }
    let search = match s.search.as_mut() {
        Some(search) => {
            search.reset(q, entry.to_u64());
            search
        }
        None => s.search.insert(SearchState::new(q, entry.to_u64())),
    };
    search.set_prefetch_depth(s.cfg.prefetch_depth);
    search.set_early_stop(TYPICAL_LIMIT, s.cfg.early_stop);
    s.mode = Mode::Search;
}

unsafe fn set_tid(scan: IndexScanDesc, tid: ItemPointer) {
    pgrx::itemptr::item_pointer_set_all(&mut (*scan).xs_heaptid, tid.block, tid.offset);
    (*scan).xs_recheck = false;
    (*scan).xs_recheckorderby = false;
}

/// The next batch of rows, in exact-distance order; false when the search is exhausted
/// (or, continuing, over its memory limit).
fn refill(s: &mut ScanState) -> bool {
    let (Some(store), Some(search)) = (s.store.as_mut(), s.search.as_mut()) else { return false };
    let (hits, out, cfg) = (&mut s.hits, &mut s.out, s.cfg);
    if s.returned > 0 && search.footprint() > cfg.mem_limit {
        return false;
    }
    let ef = cfg.ef_search;
    let factor = RERANK_FACTOR.get() as f32;
    let (bound, fine_bound) = if RERANK.get() {
        let scale = RERANK_ERROR_SCALE.get() as f32;
        (store.st.error_bound * scale, store.st.fine_error_bound * scale)
    } else {
        (f32::INFINITY, f32::INFINITY)
    };
    // After an early stop the beam holds only what the search expanded: batches follow it,
    // and a continuation widens it step by step.
    if search.ef() < ef && !search.stopped_early() {
        search.run(store, ef);
    }
    let k = ((search.ef() as f32 / factor).ceil() as usize).max(TYPICAL_LIMIT.min(ef)).max(1);
    loop {
        search.next_batch_selective(store, k, factor, bound, fine_bound, hits);
        if hits.is_empty() {
            return false;
        }
        for h in hits.iter() {
            if cfg.mode == IterativeScan::StrictOrder {
                if h.dist < s.last_dist {
                    continue; // found late, closer than a row already returned
                }
                s.last_dist = h.dist;
            }
            store.push_tids(h.id, h.payload, out);
        }
        if !out.is_empty() {
            return true;
        }
    }
}

#[pg_guard]
pub unsafe extern "C-unwind" fn amgettuple(scan: IndexScanDesc, _dir: pg_sys::ScanDirection::Type) -> bool {
    let s = state_of(scan);
    if s.returned >= s.cfg.max_tuples {
        return false;
    }
    if s.out.is_empty() {
        let more = match &mut s.mode {
            Mode::Idle | Mode::Done => false,
            Mode::Search => refill(s),
            Mode::Walk { block, offset, nblocks } => walk_next(s.index, block, offset, *nblocks, &mut s.out),
        };
        if !more {
            s.publish();
            return false;
        }
    }
    let tid = s.out.pop_front().expect("refilled");
    set_tid(scan, tid);
    s.returned += 1;
    true
}

/// Next live node in physical order, for NULL queries.
unsafe fn walk_next(index: Relation, block: &mut u32, offset: &mut u16, nblocks: u32, out: &mut VecDeque<ItemPointer>) -> bool {
    let st = index::state(index);
    while *block < nblocks {
        let buf = pages::read_buffer(index, *block);
        pg_sys::LockBuffer(buf, pg_sys::BUFFER_LOCK_SHARE as i32);
        let page = pg_sys::BufferGetPage(buf);
        if pages::page_type(page) == PAGE_NODE {
            let max = pg_sys::PageGetMaxOffsetNumber(page);
            while out.is_empty() && *offset <= max {
                if let Some(b) = pages::item(page, *offset) {
                    let node = NodeRef::new(&st.layout, b);
                    if !node.is_deleted() {
                        out.extend(node.heap_tids());
                    }
                }
                *offset += 1;
            }
        }
        pg_sys::UnlockReleaseBuffer(buf);
        if !out.is_empty() {
            return true;
        }
        *block += 1;
        *offset = 1;
    }
    false
}

#[pg_guard]
pub unsafe extern "C-unwind" fn amendscan(scan: IndexScanDesc) {
    let h = (*scan).opaque as *mut Holder;
    if !h.is_null() && !(*h).state.is_null() {
        let mut s = Box::from_raw((*h).state);
        (*h).state = std::ptr::null_mut();
        s.publish();
        // Keep it unless a long continuation made it big.
        if let Some(search) = s.search.take().filter(|x| x.footprint() <= 4 << 20) {
            SPARE.with(|c| *c.borrow_mut() = Some(search));
        }
        drop(s);
    }
}

#[pgrx::pg_extern(sql = false)]
fn vsag_last_scan_stats() -> pgrx::iter::TableIterator<
    'static,
    (
        pgrx::name!(expanded, i64),
        pgrx::name!(inline_estimates, i64),
        pgrx::name!(fetched_estimates, i64),
        pgrx::name!(exact_distances, i64),
        pgrx::name!(exact_on_expand, i64),
        pgrx::name!(rerank_skipped, i64),
        pgrx::name!(page_reads, i64),
        pgrx::name!(heap_fetches, i64),
        pgrx::name!(rows, i64),
    ),
> {
    let c = LAST_SCAN.with(|c| c.get());
    let s = c.search;
    pgrx::iter::TableIterator::once((
        s.expanded as i64,
        s.inline_estimates as i64,
        s.fetched_estimates as i64,
        s.exact as i64,
        (s.exact_on_expand + s.fetched_exact) as i64,
        s.filtered as i64,
        c.page_reads as i64,
        c.heap_fetches as i64,
        c.rows as i64,
    ))
}
