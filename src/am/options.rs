//! Index options (`WITH (m = 32, ...)`) and query-time GUCs (`SET vsag.ef_search = 100`).
//! Postgres validates ranges itself and reports e.g.
//! `value 1 out of bounds for option "m"` with the valid range in DETAIL.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use std::ffi::CStr;

pub const M_DEFAULT: i32 = 32;
pub const EF_CONSTRUCTION_DEFAULT: i32 = 128;
pub const ALPHA_DEFAULT: f64 = 1.2;
/// Fraction of neighbour slots whose codes are stored inline (PRS). Chosen by measurement
/// (BENCHMARKS.md): with the default sq4 codes-only storage, 0 gives the smallest index (a
/// quarter of pgvector's HNSW) and more QPS than partial redundancy; full redundancy pays
/// with 1-bit codes (quantizer = 'bit', redundancy = 1: fastest, 1.3x pgvector's size).
pub const REDUNDANCY_DEFAULT: f64 = 0.0;

pub static EF_SEARCH: GucSetting<i32> = GucSetting::<i32>::new(40);
pub static MAX_SCAN_TUPLES: GucSetting<i32> = GucSetting::<i32>::new(20_000);
pub static RERANK: GucSetting<bool> = GucSetting::<bool>::new(true);
pub static RERANK_FACTOR: GucSetting<f64> = GucSetting::<f64>::new(4.0);
pub static RERANK_ERROR_SCALE: GucSetting<f64> = GucSetting::<f64>::new(1.0);

/// `quantizer` option values (stored as the enum's int in rd_options).
pub const QUANTIZER_SQ8: i32 = 1;
pub const QUANTIZER_SQ4: i32 = 2;
pub const QUANTIZER_BIT: i32 = 3;
/// `storage` option values; auto = codes for a plain column, full for an expression (whose
/// value cannot be re-read from the table row).
pub const STORAGE_AUTO: i32 = 0;
pub const STORAGE_FULL: i32 = 1;
pub const STORAGE_CODES: i32 = 2;

struct EnumTable([pg_sys::relopt_enum_elt_def; 4]);
// SAFETY: immutable static data (C string pointers to 'static literals).
unsafe impl Sync for EnumTable {}

static QUANTIZER_VALUES: EnumTable = EnumTable([
    pg_sys::relopt_enum_elt_def { string_val: c"sq8".as_ptr(), symbol_val: QUANTIZER_SQ8 },
    pg_sys::relopt_enum_elt_def { string_val: c"sq4".as_ptr(), symbol_val: QUANTIZER_SQ4 },
    pg_sys::relopt_enum_elt_def { string_val: c"bit".as_ptr(), symbol_val: QUANTIZER_BIT },
    pg_sys::relopt_enum_elt_def { string_val: std::ptr::null(), symbol_val: 0 },
]);
static STORAGE_VALUES: EnumTable = EnumTable([
    pg_sys::relopt_enum_elt_def { string_val: c"auto".as_ptr(), symbol_val: STORAGE_AUTO },
    pg_sys::relopt_enum_elt_def { string_val: c"full".as_ptr(), symbol_val: STORAGE_FULL },
    pg_sys::relopt_enum_elt_def { string_val: c"codes".as_ptr(), symbol_val: STORAGE_CODES },
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
}

impl Default for VsagOptions {
    fn default() -> Self {
        VsagOptions {
            vl_len_: 0,
            m: M_DEFAULT,
            ef_construction: EF_CONSTRUCTION_DEFAULT,
            alpha: ALPHA_DEFAULT,
            redundancy: REDUNDANCY_DEFAULT,
            quantizer: QUANTIZER_SQ4,
            storage: STORAGE_AUTO,
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

pub unsafe fn init() {
    RELOPT_KIND = pg_sys::add_reloption_kind();
    let lock = pg_sys::AccessExclusiveLock as pg_sys::LOCKMODE;
    pg_sys::add_int_reloption(
        RELOPT_KIND,
        c"m".as_ptr(),
        c"Maximum number of neighbours per graph node".as_ptr(),
        M_DEFAULT,
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
        QUANTIZER_SQ4,
        c"Valid values are \"sq8\", \"sq4\" and \"bit\".".as_ptr(),
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
        c"Each scan batch returns ef_search / rerank_factor rows chosen among ef_search candidates.",
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
        c"vsag.max_scan_tuples",
        c"Maximum number of tuples one vsag index scan returns",
        c"Scans continue past ef_search (large LIMIT, selective WHERE) up to this many tuples.",
        &MAX_SCAN_TUPLES,
        1,
        i32::MAX,
        GucContext::Userset,
        GucFlags::default(),
    );
    pg_sys::MarkGUCPrefixReserved(c"vsag".as_ptr());
}

fn elt(name: &'static CStr, ty: pg_sys::relopt_type::Type, offset: usize) -> pg_sys::relopt_parse_elt {
    pg_sys::relopt_parse_elt {
        optname: name.as_ptr(),
        opttype: ty,
        offset: offset as i32,
        #[cfg(feature = "pg18")]
        isset_offset: 0, // PostgreSQL 18: 0 = do not record whether the option was set
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
