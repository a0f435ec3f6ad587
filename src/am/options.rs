//! Index options (`WITH (m = 32, ...)`) and query-time GUCs (`SET vsag.ef_search = 100`).
//! Postgres validates ranges itself and reports e.g.
//! `value 1 out of bounds for option "m"` with the valid range in DETAIL.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use std::ffi::CStr;
use vsag_core::distance::Metric;
use vsag_core::quant::QuantizerKind;

use crate::fmgr::error;
use pgrx::PgSqlErrorCode;

/// The `m` option when not given: the build picks M_DEFAULT, or M_SQ8 when `quantizer =
/// auto` settles on SQ8 codes.
pub const M_AUTO: i32 = 0;
/// 26 with the default codes (1-bit inline, SQ4 own code) keeps four 384-d nodes per page,
/// pgvector HNSW's size (BENCHMARKS.md).
pub const M_DEFAULT: i32 = 26;
/// m when `quantizer = auto` falls back to SQ8 codes (data 1-bit codes rank badly, such as
/// clusters). Those nodes carry no inline codes, so each neighbour costs a few bytes and
/// a wider list finds more per expansion. 100k x 128-d clusters, exact re-rank, recall@10 at
/// ef_search 10 / 20 (ef_construction 64, built over SQ8 codes): m 32 0.75 / 0.90, 40
/// 0.81 / 0.93 (pgvector m=16: 0.73 / 0.86), at about the same tuple reads per query for a
/// given recall, and 18 nodes per page instead of 20.
pub const M_SQ8: i32 = 40;
/// pgvector's default too. Measured with core `eval` (BENCHMARKS.md): on minilm-100k, 128
/// instead of 64 builds 1.7x slower for recall@10 0.979 instead of 0.978 at ef_search 40
/// (0.993 / 0.992 at 80); on 100k x 128-d clusters the recall is the same.
pub const EF_CONSTRUCTION_DEFAULT: i32 = 64;
pub const ALPHA_DEFAULT: f64 = 1.2;
/// Fraction of neighbour slots whose codes are stored inline (PRS). Chosen by measurement
/// (BENCHMARKS.md): every neighbour's 1-bit code inline, so expanding a node scores all
/// of its neighbours from the one page read.
pub const REDUNDANCY_DEFAULT: f64 = 1.0;

pub const EF_SEARCH_DEFAULT: i32 = 40;
pub static EF_SEARCH: GucSetting<i32> = GucSetting::<i32>::new(EF_SEARCH_DEFAULT);
/// Beam candidates whose tuples are prefetched ahead of their expansion (0 = off). One
/// candidate ahead: its tuple's first lines reach the CPU cache while the current node's
/// neighbours are scored (minilm-100k, ef_search 24, warm, both with the buffer hints of
/// `recent`: +4% QPS over depth 0; +16% over the session-4 path, no hints and depth 0; 2 and 4
/// were no faster warm).
pub const DEFAULT_PREFETCH_DEPTH: i32 = 1;
pub static PREFETCH_DEPTH: GucSetting<i32> = GucSetting::<i32>::new(DEFAULT_PREFETCH_DEPTH);
pub static MAX_SCAN_TUPLES: GucSetting<i32> = GucSetting::<i32>::new(20_000);
/// Query-level adaptive termination (QLP): a search stops once this many expansions in a
/// row have not improved its 10th best distance (0 = off: every search uses its whole beam).
pub static EARLY_STOP: GucSetting<i32> = GucSetting::<i32>::new(0);
pub const MAX_EARLY_STOP: i32 = 10_000;
/// The row count most queries ask for (`LIMIT 10`): adaptive termination watches this
/// distance rank, and a scan batch holds at least this many rows (at most ef_search), so such
/// a query is answered by one batch. Batches of ef_search / rerank_factor alone meant two or
/// three batches below ef_search 40, each re-ranking against a weaker k-th bound (minilm-100k,
/// ef_search 30: 19.6 exact distances per query against 12.9 at ef_search 40, and lower QPS).
pub const TYPICAL_LIMIT: usize = 10;
pub static RERANK: GucSetting<bool> = GucSetting::<bool>::new(true);
pub static RERANK_FACTOR: GucSetting<f64> = GucSetting::<f64>::new(4.0);
pub static RERANK_ERROR_SCALE: GucSetting<f64> = GucSetting::<f64>::new(1.0);

/// `quantizer` option values (stored as the enum's int in rd_options).
pub const QUANTIZER_SQ8: i32 = 1;
pub const QUANTIZER_SQ4: i32 = 2;
pub const QUANTIZER_BIT: i32 = 3;
/// `auto`: 1-bit navigation codes with an SQ4 own code per node (`fine_quantizer = auto`)
/// from 64 dimensions on, if the build finds that they rank the table's nearest neighbours
/// well, else SQ8 codes (`BuildConfig::settle_quantizer`); below 64 dimensions, one bit per
/// dimension says too little and SQ8 is small.
pub const QUANTIZER_AUTO: i32 = 0;
pub const QUANTIZER_DEFAULT: i32 = QUANTIZER_AUTO;
pub const BIT_MIN_DIM: usize = 64;
/// `storage` option values; auto = codes for a plain column, full for an expression (whose
/// value cannot be re-read from the table row).
pub const STORAGE_AUTO: i32 = 0;
pub const STORAGE_FULL: i32 = 1;
pub const STORAGE_CODES: i32 = 2;
/// `fine_quantizer` option values: the own code of each node in a codes-only index.
/// auto = sq4 under 1-bit navigation codes (the two-precision default), else none.
pub const FINE_AUTO: i32 = 0;
pub const FINE_NONE: i32 = 4;

struct EnumTable<const N: usize>([pg_sys::relopt_enum_elt_def; N]);
// SAFETY: immutable static data (C string pointers to 'static literals).
unsafe impl<const N: usize> Sync for EnumTable<N> {}

static QUANTIZER_VALUES: EnumTable<5> = EnumTable([
    pg_sys::relopt_enum_elt_def { string_val: c"auto".as_ptr(), symbol_val: QUANTIZER_AUTO },
    pg_sys::relopt_enum_elt_def { string_val: c"sq8".as_ptr(), symbol_val: QUANTIZER_SQ8 },
    pg_sys::relopt_enum_elt_def { string_val: c"sq4".as_ptr(), symbol_val: QUANTIZER_SQ4 },
    pg_sys::relopt_enum_elt_def { string_val: c"bit".as_ptr(), symbol_val: QUANTIZER_BIT },
    pg_sys::relopt_enum_elt_def { string_val: std::ptr::null(), symbol_val: 0 },
]);
static STORAGE_VALUES: EnumTable<4> = EnumTable([
    pg_sys::relopt_enum_elt_def { string_val: c"auto".as_ptr(), symbol_val: STORAGE_AUTO },
    pg_sys::relopt_enum_elt_def { string_val: c"full".as_ptr(), symbol_val: STORAGE_FULL },
    pg_sys::relopt_enum_elt_def { string_val: c"codes".as_ptr(), symbol_val: STORAGE_CODES },
    pg_sys::relopt_enum_elt_def { string_val: std::ptr::null(), symbol_val: 0 },
]);

static FINE_VALUES: EnumTable<5> = EnumTable([
    pg_sys::relopt_enum_elt_def { string_val: c"auto".as_ptr(), symbol_val: FINE_AUTO },
    pg_sys::relopt_enum_elt_def { string_val: c"none".as_ptr(), symbol_val: FINE_NONE },
    pg_sys::relopt_enum_elt_def { string_val: c"sq8".as_ptr(), symbol_val: QUANTIZER_SQ8 },
    pg_sys::relopt_enum_elt_def { string_val: c"sq4".as_ptr(), symbol_val: QUANTIZER_SQ4 },
    pg_sys::relopt_enum_elt_def { string_val: std::ptr::null(), symbol_val: 0 },
]);

static mut RELOPT_KIND: pg_sys::relopt_kind::Type = 0;

/// The parsed `rd_options` of a vsag index (layout filled by `build_reloptions`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct VsagOptions {
    vl_len_: i32,
    pub m: i32,
    pub ef_construction: i32,
    pub alpha: f64,
    pub redundancy: f64,
    pub quantizer: i32,
    pub storage: i32,
    pub fine_quantizer: i32,
    /// The index's default for `vsag.ef_search` (0 = none): used while the session's
    /// setting is at its default.
    pub ef_search: i32,
    /// The index's default for `vsag.search_m` (0 = all neighbours), set by `vsag_tune`.
    pub search_m: i32,
    /// The index's default for `vsag.prefetch_depth` (-1 = none), set by `vsag_tune`.
    pub prefetch_depth: i32,
    /// The index's default for `vsag.early_stop` (-1 = none), set by `vsag_tune`.
    pub early_stop: i32,
}

impl Default for VsagOptions {
    fn default() -> Self {
        VsagOptions {
            vl_len_: 0,
            m: M_AUTO,
            ef_construction: EF_CONSTRUCTION_DEFAULT,
            alpha: ALPHA_DEFAULT,
            redundancy: REDUNDANCY_DEFAULT,
            quantizer: QUANTIZER_DEFAULT,
            storage: STORAGE_AUTO,
            fine_quantizer: FINE_AUTO,
            ef_search: 0,
            search_m: 0,
            prefetch_depth: -1,
            early_stop: -1,
        }
    }
}

impl VsagOptions {
    pub unsafe fn of(index: pg_sys::Relation) -> VsagOptions {
        let p = (*index).rd_options as *const VsagOptions;
        if p.is_null() {
            VsagOptions::default()
        } else {
            *p
        }
    }
}

/// The navigation quantizer of an index of `metric` over `dim` dimensions: `auto` (the
/// default) takes 1-bit codes from BIT_MIN_DIM dimensions on (the build may still switch to
/// sq8 after measuring them), else sq8. When the metric
/// cannot use that choice (1-bit codes have no L1 estimate), `auto` falls back to sq8 and
/// an explicit quantizer is an ERROR naming the alternatives.
pub fn choose_quantizer(opts: &VsagOptions, metric: Metric, dim: usize) -> QuantizerKind {
    let kind = match opts.quantizer {
        QUANTIZER_AUTO if dim >= BIT_MIN_DIM => QuantizerKind::Bit,
        QUANTIZER_AUTO => QuantizerKind::Sq8,
        q => QuantizerKind::from_u8(q as u8)
            .unwrap_or_else(|| error(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, "vsag: unknown quantizer")),
    };
    if kind.supports_metric(metric) {
        return kind;
    }
    if opts.quantizer != QUANTIZER_AUTO {
        error(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!(
                "vsag: quantizer {} does not support {} distance (use auto, sq8 or sq4)",
                kind_name(kind),
                metric_name(metric)
            ),
        );
    }
    QuantizerKind::Sq8
}

pub fn kind_name(kind: QuantizerKind) -> &'static str {
    match kind {
        QuantizerKind::Sq8 => "sq8",
        QuantizerKind::Sq4 => "sq4",
        QuantizerKind::Bit => "'bit'",
    }
}

fn metric_name(metric: Metric) -> &'static str {
    match metric {
        Metric::L2 => "L2",
        Metric::InnerProduct => "inner product",
        Metric::Cosine => "cosine",
        Metric::L1 => "L1",
    }
}

pub unsafe fn init() {
    RELOPT_KIND = pg_sys::add_reloption_kind();
    let lock = pg_sys::AccessExclusiveLock as pg_sys::LOCKMODE;
    pg_sys::add_int_reloption(
        RELOPT_KIND,
        c"m".as_ptr(),
        c"Maximum number of neighbours per graph node (default 26, or 32 when quantizer auto takes sq8 codes)".as_ptr(),
        M_AUTO,
        4,
        100,
        lock,
    );
    pg_sys::add_int_reloption(
        RELOPT_KIND,
        c"ef_construction".as_ptr(),
        c"Size of the candidate list while building the graph".as_ptr(),
        EF_CONSTRUCTION_DEFAULT,
        8,
        1000,
        lock,
    );
    pg_sys::add_int_reloption(
        RELOPT_KIND,
        c"ef_search".as_ptr(),
        c"This index's default for vsag.ef_search (0: none), used while the session leaves vsag.ef_search at its default".as_ptr(),
        0,
        0,
        10_000,
        pg_sys::ShareUpdateExclusiveLock as pg_sys::LOCKMODE,
    );
    // Query-time defaults that vsag_tune stores (src/am/tune.rs); no rebuild needed.
    pg_sys::add_int_reloption(
        RELOPT_KIND,
        c"search_m".as_ptr(),
        c"This index's default for vsag.search_m (0: all neighbours), used while the session leaves vsag.search_m at its default".as_ptr(),
        0,
        0,
        100,
        pg_sys::ShareUpdateExclusiveLock as pg_sys::LOCKMODE,
    );
    pg_sys::add_int_reloption(
        RELOPT_KIND,
        c"prefetch_depth".as_ptr(),
        c"This index's default for vsag.prefetch_depth (-1: none), used while the session leaves vsag.prefetch_depth at its default".as_ptr(),
        -1,
        -1,
        64,
        pg_sys::ShareUpdateExclusiveLock as pg_sys::LOCKMODE,
    );
    pg_sys::add_int_reloption(
        RELOPT_KIND,
        c"early_stop".as_ptr(),
        c"This index's default for vsag.early_stop (-1: none), used while the session leaves vsag.early_stop at its default".as_ptr(),
        -1,
        -1,
        MAX_EARLY_STOP,
        pg_sys::ShareUpdateExclusiveLock as pg_sys::LOCKMODE,
    );
    pg_sys::add_real_reloption(
        RELOPT_KIND,
        c"alpha".as_ptr(),
        c"Pruning slack of the graph (1 = strict, larger keeps more long edges)".as_ptr(),
        ALPHA_DEFAULT,
        1.0,
        2.0,
        lock,
    );
    pg_sys::add_real_reloption(
        RELOPT_KIND,
        c"redundancy".as_ptr(),
        c"Fraction of neighbours whose codes are stored inline in a node (0 to 1)".as_ptr(),
        REDUNDANCY_DEFAULT,
        0.0,
        1.0,
        lock,
    );

    pg_sys::add_enum_reloption(
        RELOPT_KIND,
        c"quantizer".as_ptr(),
        c"Codes used to navigate the graph (inline in node tuples)".as_ptr(),
        QUANTIZER_VALUES.0.as_ptr() as *mut _,
        QUANTIZER_DEFAULT,
        c"Valid values are \"auto\", \"sq8\", \"sq4\" and \"bit\".".as_ptr(),
        lock,
    );
    pg_sys::add_enum_reloption(
        RELOPT_KIND,
        c"storage".as_ptr(),
        c"full: keep float vectors in the index; codes: only codes, re-rank from the table row; auto: codes unless the key is an expression".as_ptr(),
        STORAGE_VALUES.0.as_ptr() as *mut _,
        STORAGE_AUTO,
        c"Valid values are \"auto\", \"full\" and \"codes\".".as_ptr(),
        lock,
    );
    pg_sys::add_enum_reloption(
        RELOPT_KIND,
        c"fine_quantizer".as_ptr(),
        c"Each node's own higher-precision code (codes storage): ranks the search beam and filters exact re-ranking".as_ptr(),
        FINE_VALUES.0.as_ptr() as *mut _,
        FINE_AUTO,
        c"Valid values are \"auto\", \"none\", \"sq8\" and \"sq4\".".as_ptr(),
        lock,
    );

    GucRegistry::define_bool_guc(
        c"vsag.rerank",
        c"Skip exact re-ranking of candidates that cannot enter the top results",
        c"When on, a candidate gets an exact distance only if its estimate minus the quantizer's error bound could still place it among the best rows; off re-ranks every eligible candidate.",
        &RERANK,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_float_guc(
        c"vsag.rerank_factor",
        c"Candidates eligible for exact re-ranking, as a multiple of the rows each batch returns",
        c"Each scan batch returns ef_search / rerank_factor rows (at least 10, at most ef_search) chosen among ef_search candidates.",
        &RERANK_FACTOR,
        1.0,
        100.0,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_float_guc(
        c"vsag.rerank_error_scale",
        c"Multiplier on the quantization error bound used by the re-rank filter",
        c"Larger is safer (more exact distances), 0 trusts the estimates completely.",
        &RERANK_ERROR_SCALE,
        0.0,
        100.0,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"vsag.ef_search",
        c"Size of the candidate list during a vsag index scan",
        c"Larger values improve recall and cost speed.",
        &EF_SEARCH,
        1,
        10_000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"vsag.prefetch_depth",
        c"Beam candidates whose index tuples are prefetched ahead of their expansion",
        c"Before expanding a node the scan prefetches the next this many candidates: into the CPU cache if this backend knows which shared buffer holds their page, else from disk (PrefetchBuffer); 0 turns it off.",
        &PREFETCH_DEPTH,
        0,
        64,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"vsag.early_stop",
        c"Expansions without a better 10th-best distance after which a vsag search stops (0: off)",
        c"Adaptive termination: easy queries stop before their ef_search beam is used up, hard ones keep going; pair it with a larger ef_search (vsag_tune chooses both). An index's early_stop option replaces the default.",
        &EARLY_STOP,
        0,
        MAX_EARLY_STOP,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"vsag.max_scan_tuples",
        c"Maximum number of tuples one vsag index scan returns",
        c"Scans continue past ef_search (large LIMIT, selective WHERE) up to this many tuples.",
        &MAX_SCAN_TUPLES,
        1,
        i32::MAX,
        GucContext::Userset,
        GucFlags::default(),
    );
    super::scan_settings::init();
    pg_sys::MarkGUCPrefixReserved(c"vsag".as_ptr());
}

fn elt(name: &'static CStr, ty: pg_sys::relopt_type::Type, offset: usize) -> pg_sys::relopt_parse_elt {
    pg_sys::relopt_parse_elt {
        optname: name.as_ptr(),
        opttype: ty,
        offset: offset as i32,
        // PostgreSQL 18 can also record whether an option was given; 0 = not wanted.
        #[cfg(feature = "pg18")]
        isset_offset: 0,
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amoptions(reloptions: pg_sys::Datum, validate: bool) -> *mut pg_sys::bytea {
    let tab = [
        elt(c"m", pg_sys::relopt_type::RELOPT_TYPE_INT, std::mem::offset_of!(VsagOptions, m)),
        elt(
            c"ef_construction",
            pg_sys::relopt_type::RELOPT_TYPE_INT,
            std::mem::offset_of!(VsagOptions, ef_construction),
        ),
        elt(c"alpha", pg_sys::relopt_type::RELOPT_TYPE_REAL, std::mem::offset_of!(VsagOptions, alpha)),
        elt(
            c"redundancy",
            pg_sys::relopt_type::RELOPT_TYPE_REAL,
            std::mem::offset_of!(VsagOptions, redundancy),
        ),
        elt(c"quantizer", pg_sys::relopt_type::RELOPT_TYPE_ENUM, std::mem::offset_of!(VsagOptions, quantizer)),
        elt(c"storage", pg_sys::relopt_type::RELOPT_TYPE_ENUM, std::mem::offset_of!(VsagOptions, storage)),
        elt(c"ef_search", pg_sys::relopt_type::RELOPT_TYPE_INT, std::mem::offset_of!(VsagOptions, ef_search)),
        elt(c"search_m", pg_sys::relopt_type::RELOPT_TYPE_INT, std::mem::offset_of!(VsagOptions, search_m)),
        elt(
            c"prefetch_depth",
            pg_sys::relopt_type::RELOPT_TYPE_INT,
            std::mem::offset_of!(VsagOptions, prefetch_depth),
        ),
        elt(c"early_stop", pg_sys::relopt_type::RELOPT_TYPE_INT, std::mem::offset_of!(VsagOptions, early_stop)),
        elt(
            c"fine_quantizer",
            pg_sys::relopt_type::RELOPT_TYPE_ENUM,
            std::mem::offset_of!(VsagOptions, fine_quantizer),
        ),
    ];
    pg_sys::build_reloptions(
        reloptions,
        validate,
        RELOPT_KIND,
        std::mem::size_of::<VsagOptions>(),
        tab.as_ptr(),
        tab.len() as i32,
    ) as *mut pg_sys::bytea
}
