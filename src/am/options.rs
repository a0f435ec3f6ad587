//! Index options (`WITH (m = 32, ...)`) and query-time GUCs (`SET vsag.ef_search = 100`).
//! Postgres validates ranges itself and reports e.g.
//! `value 1 out of bounds for option "m"` with the valid range in DETAIL.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use std::ffi::CStr;

pub const M_DEFAULT: i32 = 32;
pub const EF_CONSTRUCTION_DEFAULT: i32 = 128;
pub const ALPHA_DEFAULT: f64 = 1.2;
/// Fraction of neighbour slots whose codes are stored inline (PRS). Chosen by measurement,
/// see BENCHMARKS.md.
pub const REDUNDANCY_DEFAULT: f64 = 0.5;

pub static EF_SEARCH: GucSetting<i32> = GucSetting::<i32>::new(40);
pub static MAX_SCAN_TUPLES: GucSetting<i32> = GucSetting::<i32>::new(20_000);

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
}

impl Default for VsagOptions {
    fn default() -> Self {
        VsagOptions {
            vl_len_: 0,
            m: M_DEFAULT,
            ef_construction: EF_CONSTRUCTION_DEFAULT,
            alpha: ALPHA_DEFAULT,
            redundancy: REDUNDANCY_DEFAULT,
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
    pg_sys::relopt_parse_elt { optname: name.as_ptr(), opttype: ty, offset: offset as i32 }
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
