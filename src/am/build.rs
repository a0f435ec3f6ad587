//! `ambuild`: collect the table's vectors, build the graph in memory (in parallel, in the
//! pure core), then write metapage, quantizer parameter pages and node pages in one pass,
//! WAL-logging them afterwards as full page images. When the vectors outgrow
//! `maintenance_work_mem`, the graph built so far is written and the remaining rows are
//! inserted one by one through the insert path (slower, bounded memory).

use super::index::{self, opclass_metric, to_index_space};
use super::insert::insert_vector;
use super::options::{VsagOptions, STORAGE_AUTO, STORAGE_CODES};
use super::pages::{BulkWriter, PAGE_META, PAGE_NODE, PAGE_PARAM};
use crate::fmgr::error;
use crate::vector::VectorArg;
use pgrx::pg_sys::{self, Relation};
use pgrx::{pg_guard, PgSqlErrorCode, PgTupleDesc};
use rayon::prelude::*;
use vsag_core::distance::{norm_squared, Metric};
use vsag_core::graph::{build_memory_estimate, group_identical, BuildParams};
use vsag_core::page::{param_chunks, sequential_tid, ItemPointer, MetaPage, NodeLayout, NodeMut, MAX_HEAP_TIDS};
use vsag_core::quant::{Quantizer, QuantizerKind};

// commands/progress.h (not in pgrx's bindings)
const PROGRESS_CREATE_IDX_SUBPHASE: i32 = 10;
const PROGRESS_CREATE_IDX_TUPLES_TOTAL: i32 = 11;
const PROGRESS_CREATE_IDX_TUPLES_DONE: i32 = 12;
const PHASE_LOAD: i64 = 2;
const PHASE_GRAPH: i64 = 3;
const PHASE_WRITE: i64 = 4;

#[pg_guard]
pub unsafe extern "C-unwind" fn ambuildphasename(phase: i64) -> *mut std::ffi::c_char {
    let name: &'static std::ffi::CStr = match phase {
        1 => c"initializing",
        PHASE_LOAD => c"loading tuples",
        PHASE_GRAPH => c"building graph",
        PHASE_WRITE => c"writing pages",
        _ => return std::ptr::null_mut(),
    };
    name.as_ptr() as *mut _
}

fn progress(param: i32, value: i64) {
    unsafe { pg_sys::pgstat_progress_update_param(param, value) }
}

/// Everything fixed at CREATE INDEX time.
pub struct BuildConfig {
    pub dim: usize,
    pub metric: Metric,
    pub kind: QuantizerKind,
    pub layout: NodeLayout,
    pub params: BuildParams,
}

pub unsafe fn build_config(index: Relation) -> BuildConfig {
    let opts = VsagOptions::of(index);
    let metric = opclass_metric(index);
    // PgTupleDesc reads the attribute on every PostgreSQL version (18 moved `attrs`)
    let dim = PgTupleDesc::from_pg_unchecked((*index).rd_att).get(0).map_or(-1, |a| a.atttypmod);
    if dim < 1 {
        error(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, "column does not have dimensions (use vector(n) to index it with vsag)");
    }
    if opts.ef_construction < opts.m {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("ef_construction ({}) must be greater than or equal to m ({})", opts.ef_construction, opts.m),
        );
    }
    let dim = dim as usize;
    let kind = QuantizerKind::from_u8(opts.quantizer as u8)
        .unwrap_or_else(|| error(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, "vsag: unknown quantizer"));
    let expression = (*(*index).rd_index).indkey.values.as_slice(1)[0] == 0;
    let store_vector = match opts.storage {
        STORAGE_CODES => false,
        STORAGE_AUTO => expression,
        _ => true,
    };
    if !store_vector && expression {
        // Re-ranking reads the vector back from the table column; an expression has none.
        error(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            "vsag: storage = codes needs a plain column, not an expression (use storage = full)",
        );
    }
    let layout = NodeLayout::new(dim, opts.m as usize, opts.redundancy as f32, store_vector, kind.code_size(dim))
        .unwrap_or_else(|e| error(PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED, e.to_string()));
    let params = BuildParams {
        m: opts.m as usize,
        ef_construction: opts.ef_construction as usize,
        alpha: opts.alpha as f32,
        metric,
        ..BuildParams::default()
    };
    BuildConfig { dim, metric, kind, layout, params }
}

/// Checks and converts one indexed value; None means "not indexed" (NULL, or a zero vector
/// under cosine, whose distance to anything is undefined).
pub unsafe fn index_value(cfg_dim: usize, metric: Metric, value: pg_sys::Datum, isnull: bool) -> Option<Vec<f32>> {
    if isnull {
        return None;
    }
    let v = VectorArg::from_datum(value);
    if v.dim() != cfg_dim {
        error(
            PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
            format!("expected {} dimensions, not {}", cfg_dim, v.dim()),
        );
    }
    if metric == Metric::Cosine && norm_squared(v.as_slice()) == 0.0 {
        return None;
    }
    Some(to_index_space(metric, v.as_slice()))
}

struct BuildState {
    heap: Relation,
    index: Relation,
    cfg: BuildConfig,
    vectors: Vec<f32>,
    tids: Vec<ItemPointer>,
    budget: usize,
    /// Set once the in-memory part has been written; later rows go through the insert path.
    spilled: bool,
    indexed: f64,
}

#[pg_guard]
unsafe extern "C-unwind" fn build_callback(
    _index: Relation,
    tid: pg_sys::ItemPointer,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    _alive: bool,
    state: *mut std::ffi::c_void,
) {
    let bs = &mut *(state as *mut BuildState);
    let Some(v) = index_value(bs.cfg.dim, bs.cfg.metric, *values, *isnull) else { return };
    let tid = ItemPointer::new(
        pgrx::itemptr::item_pointer_get_block_number(tid),
        pgrx::itemptr::item_pointer_get_offset_number(tid),
    );
    bs.indexed += 1.0;
    if bs.spilled {
        let st = index::state(bs.index);
        insert_vector(bs.index, &st, tid, &v, Some(bs.heap));
        return;
    }
    bs.vectors.extend_from_slice(&v);
    bs.tids.push(tid);
    let n = bs.tids.len();
    if build_memory_estimate(n + 1, bs.cfg.dim, bs.cfg.params.m) > bs.budget {
        pgrx::notice!(
            "vsag graph no longer fits into maintenance_work_mem after {n} tuples; \
             the remaining tuples are inserted one by one (slower). \
             Increase maintenance_work_mem to speed up builds."
        );
        write_index(bs.index, &bs.cfg, std::mem::take(&mut bs.vectors), std::mem::take(&mut bs.tids));
        bs.spilled = true;
    }
}

/// Builds the graph over `vectors` and writes the whole index (also used for empty tables).
/// Rows with bitwise identical vectors share one node (up to MAX_HEAP_TIDS rows each): a
/// clique of copies could not stay connected under pruning.
unsafe fn write_index(index: Relation, cfg: &BuildConfig, mut vectors: Vec<f32>, tids: Vec<ItemPointer>) {
    let dim = cfg.dim;
    let layout = &cfg.layout;
    progress(PROGRESS_CREATE_IDX_SUBPHASE, PHASE_GRAPH);
    let groups = group_identical(&vectors, dim, MAX_HEAP_TIDS);
    let n = groups.len();
    // Compact to one vector per group (first rows increase, so in-place is safe).
    for (g, rows) in groups.iter().enumerate() {
        let r = rows[0] as usize;
        if r != g {
            vectors.copy_within(r * dim..(r + 1) * dim, g * dim);
        }
    }
    vectors.truncate(n * dim);
    progress(PROGRESS_CREATE_IDX_TUPLES_TOTAL, n as i64);
    // Train on an even sample: enough for per-dimension ranges, cheap at any size.
    let step = (n / 20_000).max(1);
    let sample: Vec<f32> = (0..n).step_by(step).flat_map(|i| vectors[i * dim..(i + 1) * dim].iter().copied()).collect();
    let quantizer = Quantizer::train(cfg.kind, dim, &sample)
        .unwrap_or_else(|e| error(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("vsag: {e}")));
    let error_bound = if n >= 2 { quantizer.estimate_error_bound(cfg.metric, &sample, 0.999) } else { f32::INFINITY };
    let graph = vsag_core::graph::build(&vectors, dim, &cfg.params, &mut |done, _total| {
        // Called on this (the backend) thread between parallel batches.
        progress(PROGRESS_CREATE_IDX_TUPLES_DONE, done as i64);
        pgrx::check_for_interrupts!();
    });
    let code_size = quantizer.code_size();
    let mut codes = vec![0u8; n * code_size];
    codes
        .par_chunks_mut(code_size.max(1))
        .zip(vectors.par_chunks(dim))
        .for_each(|(c, v)| quantizer.encode(v, c));

    progress(PROGRESS_CREATE_IDX_SUBPHASE, PHASE_WRITE);
    let params = quantizer.to_bytes();
    let nparam = param_chunks(&params).count() as u32;
    let per_page = layout.tuples_per_page();
    let pos = |i: usize| sequential_tid(1 + nparam, per_page, i);

    let mut meta = MetaPage::new(cfg.metric, cfg.kind, layout);
    meta.ef_construction = cfg.params.ef_construction as u16;
    meta.alpha = cfg.params.alpha;
    meta.param_first_block = 1;
    meta.param_npages = nparam;
    meta.param_len = params.len() as u32;
    meta.node_count = n as u64;
    meta.error_bound = error_bound;
    if n > 0 {
        meta.set_entry(Some(pos(graph.entry as usize)));
        meta.insert_block = pos(n - 1).block;
    }

    let mut w = BulkWriter::new(index, pg_sys::ForkNumber::MAIN_FORKNUM);
    write_header_pages(&mut w, &meta, &params);
    let mut tuple = vec![0u8; layout.tuple_size];
    let code = |i: usize| &codes[i * code_size..(i + 1) * code_size];
    for (i, rows) in groups.iter().enumerate() {
        let vector = layout.store_vector.then(|| &vectors[i * dim..(i + 1) * dim]);
        let mut node = NodeMut::init(layout, &mut tuple, tids[rows[0] as usize], vector, code(i));
        for &r in &rows[1..] {
            node.add_heap_tid(tids[r as usize]);
        }
        let list: Vec<(ItemPointer, Option<&[u8]>)> =
            graph.neighbours[i].iter().map(|&j| (pos(j as usize), Some(code(j as usize)))).collect();
        node.set_neighbours(&list);
        let at = w.add(PAGE_NODE, &tuple);
        if at != pos(i) {
            error(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("vsag: node {i} written at {at:?}, expected {:?}", pos(i)));
        }
        if i % 1024 == 0 {
            pgrx::check_for_interrupts!();
        }
    }
    w.finish_page();
    index::forget(index);
}

/// Block 0: the metapage; blocks 1..: the quantizer parameters, one item per page.
unsafe fn write_header_pages(w: &mut BulkWriter, meta: &MetaPage, params: &[u8]) {
    w.new_page(PAGE_META);
    w.add(PAGE_META, meta.as_bytes());
    for chunk in param_chunks(params) {
        w.new_page(PAGE_PARAM);
        w.add(PAGE_PARAM, chunk);
    }
}

unsafe fn wal_log_all(index: Relation) {
    if (*(*index).rd_rel).relpersistence == pg_sys::RELPERSISTENCE_PERMANENT as std::ffi::c_char {
        let n = super::pages::nblocks(index);
        pg_sys::log_newpage_range(index, pg_sys::ForkNumber::MAIN_FORKNUM, 0, n, true);
    }
}

#[pg_guard]
pub unsafe extern "C-unwind" fn ambuild(
    heap: Relation,
    index: Relation,
    index_info: *mut pg_sys::IndexInfo,
) -> *mut pg_sys::IndexBuildResult {
    let cfg = build_config(index);
    let mut bs = BuildState {
        heap,
        index,
        cfg,
        vectors: Vec::new(),
        tids: Vec::new(),
        budget: pg_sys::maintenance_work_mem as usize * 1024,
        spilled: false,
        indexed: 0.0,
    };
    progress(PROGRESS_CREATE_IDX_SUBPHASE, PHASE_LOAD);
    let heap_tuples = pg_sys::table_index_build_scan(
        heap,
        index,
        index_info,
        true,
        true,
        Some(build_callback),
        &mut bs as *mut BuildState as *mut std::ffi::c_void,
        std::ptr::null_mut(),
    );
    if !bs.spilled {
        write_index(index, &bs.cfg, std::mem::take(&mut bs.vectors), std::mem::take(&mut bs.tids));
    }
    wal_log_all(index);
    let mut result = pgrx::PgBox::<pg_sys::IndexBuildResult>::alloc0();
    result.heap_tuples = heap_tuples;
    result.index_tuples = bs.indexed;
    result.into_pg()
}

/// Unlogged tables: the init fork holds an empty index (metapage + parameter pages).
#[pg_guard]
pub unsafe extern "C-unwind" fn ambuildempty(index: Relation) {
    let cfg = build_config(index);
    let quantizer = Quantizer::train(cfg.kind, cfg.dim, &[])
        .unwrap_or_else(|e| error(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("vsag: {e}")));
    let params = quantizer.to_bytes();
    let mut meta = MetaPage::new(cfg.metric, cfg.kind, &cfg.layout);
    meta.error_bound = f32::INFINITY;
    meta.ef_construction = cfg.params.ef_construction as u16;
    meta.alpha = cfg.params.alpha;
    meta.param_first_block = 1;
    meta.param_npages = param_chunks(&params).count() as u32;
    meta.param_len = params.len() as u32;
    let mut w = BulkWriter::new(index, pg_sys::ForkNumber::INIT_FORKNUM);
    write_header_pages(&mut w, &meta, &params);
    w.finish_page();
    // The init fork must survive a crash whatever the table's persistence.
    let n = pg_sys::RelationGetNumberOfBlocksInFork(index, pg_sys::ForkNumber::INIT_FORKNUM);
    pg_sys::log_newpage_range(index, pg_sys::ForkNumber::INIT_FORKNUM, 0, n, true);
}
