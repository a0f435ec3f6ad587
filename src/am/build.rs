//! `ambuild`: collect the table's vectors, build the graph in memory (in parallel on a pool
//! bounded by `max_parallel_maintenance_workers`, in the pure core), then write metapage,
//! quantizer parameter pages and node pages in one pass, WAL-logging them afterwards as full
//! page images (see `build_write`). The graph of a large table is built over SQ8 codes (¼ of
//! the floats' size). Float vectors that outgrow `maintenance_work_mem` go to a temporary
//! file; once the table is read they come back as codes trained on the whole table, or,
//! when even the codes and graph do not fit, the graph is built in overlapping partitions
//! (`build_parts`). No row goes through the one-row insert path.

use super::build_rows::Rows;
use super::build_run::{build_pool, progress, PROGRESS_CREATE_IDX_SUBPHASE};
use super::build_write::{write_header_pages, write_index, Quantizers};
use super::index::{opclass_metric, to_index_space};
use super::build_parts::build_spilled;
use super::build_spill::SpillFile;
use super::options::{choose_quantizer, VsagOptions, FINE_AUTO, FINE_NONE, M_AUTO, M_DEFAULT, M_SQ8, QUANTIZER_AUTO, STORAGE_AUTO, STORAGE_CODES};
use super::pages::BulkWriter;
use crate::fmgr::error;
use crate::vector::VectorArg;
use pgrx::pg_sys::{self, Relation};
use pgrx::{pg_guard, PgMemoryContexts, PgSqlErrorCode};
use vsag_core::distance::{norm_squared, Metric};
use vsag_core::graph::{build_memory_estimate_for, BuildParams};
use vsag_core::page::{ItemPointer, NodeLayout};
use vsag_core::quant::{Quantizer, QuantizerKind};

/// From this many rows on, the graph is linked over SQ8 codes even when the floats fit
/// `maintenance_work_mem` (unless nodes store their vectors, which the write phase would then
/// read back from the table): a distance over a quarter of the bytes moves less memory, and
/// SQ8's error hardly changes which neighbours a prune keeps. Measured with core `eval
/// --build-codes`, ef_construction 64: minilm-100k 19.8 s instead of 29.6 s for recall@10
/// 0.9775 instead of 0.9782 at ef_search 40; 100k x 128-d clusters 13.3 s instead of 16.8 s,
/// same recall. Smaller tables build fast either way and keep exact links.
const BUILD_OVER_CODES_MIN_ROWS: usize = 10_000;

pub const PHASE_LOAD: i64 = 2;
pub const PHASE_GRAPH: i64 = 3;
pub const PHASE_WRITE: i64 = 4;
pub const PHASE_GROUP: i64 = 5;
pub const PHASE_ENCODE: i64 = 6;
pub const PHASE_PARTITION: i64 = 8;

#[pg_guard]
pub unsafe extern "C-unwind" fn ambuildphasename(phase: i64) -> *mut std::ffi::c_char {
    let name: &'static std::ffi::CStr = match phase {
        1 => c"initializing",
        PHASE_PARTITION => c"building partitions",
        PHASE_LOAD => c"loading tuples",
        PHASE_GROUP => c"grouping duplicates",
        PHASE_GRAPH => c"building graph",
        PHASE_ENCODE => c"encoding codes",
        PHASE_WRITE => c"writing pages",
        _ => return std::ptr::null_mut(),
    };
    name.as_ptr() as *mut _
}

/// Everything fixed at CREATE INDEX time.
pub struct BuildConfig {
    pub dim: usize,
    pub metric: Metric,
    pub kind: QuantizerKind,
    /// Quantizer of the own codes of a two-precision index.
    pub fine: Option<QuantizerKind>,
    pub layout: NodeLayout,
    pub params: BuildParams,
    /// `quantizer = auto` took 1-bit codes on trust: [`settle_quantizer`](Self::settle_quantizer)
    /// checks them on the table's sample before the graph is built.
    pub auto_bit: bool,
    /// The `m` option was not given: [`settle_quantizer`](Self::settle_quantizer) may widen it.
    pub m_auto: bool,
    opts: VsagOptions,
    store_vector: bool,
}

/// `quantizer = auto` keeps 1-bit navigation codes only if they rank a sample's nearest
/// neighbours this well (recall@RANK_K within the top RANK_DEPTH estimates). Measured
/// (BENCHMARKS.md): 0.98 on MiniLM sentence embeddings, where 1-bit search reaches recall
/// 0.97; 0.32-0.37 on clustered Gaussian data, where it reaches 0.40 and SQ8 0.96.
pub const AUTO_BIT_MIN_RANKING: f64 = 0.9;
/// Queries and base rows of that measurement (about 0.1-0.4 s at 384 dimensions).
const AUTO_RANKING_QUERIES: usize = 100;
const AUTO_RANKING_BASE: usize = 20_000;

pub unsafe fn build_config(index: Relation) -> BuildConfig {
    let opts = VsagOptions::of(index);
    let metric = opclass_metric(index);
    // Through pgrx: PostgreSQL 18 changed how a tuple descriptor lays out its attributes.
    let dim = pgrx::PgTupleDesc::from_pg_unchecked((*index).rd_att).get(0).map_or(-1, |a| a.atttypmod);
    if dim < 1 {
        error(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, "column does not have dimensions (use vector(n) to index it with vsag)");
    }
    let m_auto = opts.m == M_AUTO;
    let m = if m_auto { M_DEFAULT } else { opts.m };
    if opts.ef_construction < m {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("ef_construction ({}) must be greater than or equal to m ({m})", opts.ef_construction),
        );
    }
    let dim = dim as usize;
    let kind = choose_quantizer(&opts, metric, dim);
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
    let params = BuildParams {
        m: m as usize,
        ef_construction: opts.ef_construction as usize,
        alpha: opts.alpha as f32,
        metric,
        ..BuildParams::default()
    };
    let auto_bit = opts.quantizer == QUANTIZER_AUTO && kind == QuantizerKind::Bit;
    let (fine, layout) = codes_layout(&opts, store_vector, dim, kind, params.m, opts.redundancy);
    BuildConfig { dim, metric, kind, fine, layout, params, auto_bit, m_auto, opts, store_vector }
}

/// The own-code quantizer and node layout that go with navigation quantizer `kind`.
fn codes_layout(
    opts: &VsagOptions,
    store_vector: bool,
    dim: usize,
    kind: QuantizerKind,
    m: usize,
    redundancy: f64,
) -> (Option<QuantizerKind>, NodeLayout) {
    let fine = match opts.fine_quantizer {
        FINE_NONE => None,
        FINE_AUTO => (kind == QuantizerKind::Bit).then_some(QuantizerKind::Sq4),
        f => QuantizerKind::from_u8(f as u8),
    }
    .filter(|_| !store_vector);
    let own_size = fine.unwrap_or(kind).code_size(dim);
    let layout = NodeLayout::two_precision(dim, m, redundancy as f32, store_vector, kind.code_size(dim), own_size)
        .unwrap_or_else(|e| error(PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED, e.to_string()));
    (fine, layout)
}

impl BuildConfig {
    /// The largest m the graph may get (settle_quantizer may still widen an auto m).
    pub fn m_upper(&self) -> usize {
        match self.auto_bit && self.m_auto {
            true => self.params.m.max(M_SQ8 as usize),
            false => self.params.m,
        }
    }
    /// `quantizer = auto`: keeps 1-bit codes if they rank `sample`'s (row-major, in index
    /// space) nearest neighbours well enough, else switches to SQ8 (see
    /// AUTO_BIT_MIN_RANKING). An empty or tiny sample cannot tell, and keeps 1-bit.
    /// The SQ8 layout is never larger than the 1-bit one would have been.
    pub fn settle_quantizer(&mut self, sample: &[f32]) {
        if !self.auto_bit {
            return;
        }
        self.auto_bit = false;
        let bit = Quantizer::train(QuantizerKind::Bit, self.dim, sample)
            .unwrap_or_else(|e| error(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("vsag: {e}")));
        let ranking = bit.ranking_recall(self.metric, sample, AUTO_RANKING_QUERIES, AUTO_RANKING_BASE);
        if ranking >= AUTO_BIT_MIN_RANKING {
            pgrx::debug1!("vsag: quantizer auto keeps 1-bit codes (they rank the sample's neighbours at recall {ranking:.3})");
            return;
        }
        pgrx::debug1!("vsag: quantizer auto takes sq8 codes (1-bit codes rank the sample's neighbours at recall {ranking:.3} only)");
        // SQ8, not SQ4: the beam keeps the candidates their estimates rank best, and on such
        // data SQ4's error already reorders near neighbours (100k 128-d clusters, ef_search
        // 10/40: recall@10 0.51/0.92 with SQ4 codes, 0.68/0.96 with SQ8, 0.68/0.96 exact).
        // Every code inline if that keeps the 1-bit layout's nodes per page, else none:
        // partial redundancy costs size without the speed (the neighbours without an inline
        // code still need their own page read). Measured with SQ4 on 100k 128-d clusters
        // (bench/results/synthetic-128d-auto): half the codes inline, 1.41x pgvector's
        // size; none, 0.36x at the same QPS.
        // Without inline codes, and with m not given, lists widen to M_SQ8 as long as that
        // keeps the page count too.
        let kind = QuantizerKind::Sq8;
        let per_page = self.layout.tuples_per_page();
        let m = self.params.m;
        let full = codes_layout(&self.opts, self.store_vector, self.dim, kind, m, self.opts.redundancy);
        let (fine, layout, m) = if full.1.tuples_per_page() >= per_page {
            (full.0, full.1, m)
        } else {
            let wide = (M_SQ8 as usize).min(self.params.ef_construction);
            match codes_layout(&self.opts, self.store_vector, self.dim, kind, wide, 0.0) {
                (f, l) if self.m_auto && l.tuples_per_page() >= per_page => (f, l, wide),
                _ => {
                    let (f, l) = codes_layout(&self.opts, self.store_vector, self.dim, kind, m, 0.0);
                    (f, l, m)
                }
            }
        };
        (self.kind, self.fine, self.layout, self.params.m) = (kind, fine, layout, m);
    }
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
    cfg: BuildConfig,
    rows: Rows,
    pool: rayon::ThreadPool,
    budget: usize,
    /// Set once the float vectors outgrew the budget: every row goes there (see build_spilled).
    spill: Option<SpillFile>,
    /// Reset after every row (see build_callback).
    row_cxt: PgMemoryContexts,
    indexed: f64,
}

impl BuildState {
    fn over_budget(&self) -> bool {
        let n = self.rows.len() + 1;
        // The navigation codes, allocated after the graph, fit in the slack the graph's
        // lists give back (`build_with` shrinks them), so they are not counted here.
        let sample = self.rows.sample.len() * 4;
        build_memory_estimate_for(n, self.rows.row_bytes(), self.cfg.m_upper(), self.pool.current_num_threads()) + sample
            > self.budget
    }
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
    // A short-lived context per row (as pgvector's build): a toasted vector is detoasted
    // into it, and the one-row insert path allocates there; otherwise both would pile up in
    // the statement's context for the whole table.
    let (dim, metric) = (bs.cfg.dim, bs.cfg.metric);
    let v = bs.row_cxt.switch_to(|_| index_value(dim, metric, *values, *isnull));
    bs.row_cxt.reset();
    let Some(v) = v else { return };
    let tid = ItemPointer::new(
        pgrx::itemptr::item_pointer_get_block_number(tid),
        pgrx::itemptr::item_pointer_get_offset_number(tid),
    );
    bs.indexed += 1.0;
    if let Some(file) = bs.spill.as_mut() {
        file.push(tid, &v);
        return;
    }
    bs.rows.push(tid, &v);
    if !bs.over_budget() {
        return;
    }
    pgrx::notice!(
        "vsag: the vectors no longer fit into maintenance_work_mem after {} tuples; \
         writing them to a temporary file, to build the graph from 8-bit codes once the table is read. \
         Increase maintenance_work_mem to build faster.",
        bs.rows.len()
    );
    let rows = std::mem::replace(&mut bs.rows, Rows::new(bs.cfg.dim));
    bs.spill = Some(rows.spill());
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
    let dim = cfg.dim;
    let mut bs = BuildState {
        cfg,
        rows: Rows::new(dim),
        pool: build_pool(),
        budget: pg_sys::maintenance_work_mem as usize * 1024,
        spill: None,
        row_cxt: PgMemoryContexts::new("vsag build row"),
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
    match bs.spill.take() {
        Some(file) => build_spilled(heap, index, &mut bs.cfg, &bs.pool, file, bs.budget),
        None => {
            let mut rows = std::mem::replace(&mut bs.rows, Rows::new(dim));
            if rows.can_compress() && !bs.cfg.layout.store_vector && rows.len() >= BUILD_OVER_CODES_MIN_ROWS {
                rows.compress(bs.budget);
            }
            write_index(heap, index, &mut bs.cfg, &bs.pool, rows);
        }
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
    let (meta, params) = Quantizers::train(&cfg, &[]).meta(&cfg);
    let mut w = BulkWriter::new(index, pg_sys::ForkNumber::INIT_FORKNUM);
    write_header_pages(&mut w, &meta, &params);
    w.finish_page();
    // The init fork must survive a crash whatever the table's persistence.
    let n = pg_sys::RelationGetNumberOfBlocksInFork(index, pg_sys::ForkNumber::INIT_FORKNUM);
    pg_sys::log_newpage_range(index, pg_sys::ForkNumber::INIT_FORKNUM, 0, n, true);
}
