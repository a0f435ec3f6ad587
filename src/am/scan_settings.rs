//! What one index scan may do, resolved at `amrescan` from the session's settings and the
//! index's own defaults: beam width, how far a scan continues past the first beam
//! (`vsag.iterative_scan`, as pgvector defines its modes) and how much memory it may use.
//!
//! Precedence of the query-time knobs an index can store (`ef_search`, `search_m`,
//! `prefetch_depth`, `early_stop` reloptions, written by `vsag_tune`): a GUC set anywhere (postgresql.conf,
//! ALTER DATABASE/ROLE, SET, a function's SET clause) wins, even when set to its default
//! value; a GUC at its built-in default yields to the index's own value when it has one.

use super::options::{VsagOptions, EARLY_STOP, EF_SEARCH, MAX_SCAN_TUPLES, PREFETCH_DEPTH};
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting, PostgresGucEnum};
use pgrx::pg_sys;
use std::cell::Cell;
use std::ffi::CStr;
use std::thread::LocalKey;

#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum IterativeScan {
    /// At most `ef_search` rows: the first beam only.
    #[name = c"off"]
    Off,
    /// Continue past the beam; rows of one batch are exactly ordered, batches overlap a little.
    #[name = c"relaxed_order"]
    RelaxedOrder,
    /// Continue, but never return a row closer than one already returned.
    #[name = c"strict_order"]
    StrictOrder,
}

pub static ITERATIVE_SCAN: GucSetting<IterativeScan> = GucSetting::<IterativeScan>::new(IterativeScan::RelaxedOrder);
pub static SCAN_MEM_MULTIPLIER: GucSetting<f64> = GucSetting::<f64>::new(1.0);
/// Neighbours of each node a search follows (0 = all): neighbour lists are stored nearest
/// first, so the first `search_m` entries form a smaller-degree subgraph (issue 13, ILP).
pub static SEARCH_M: GucSetting<i32> = GucSetting::<i32>::new(0);

thread_local! {
    /// The GUC table entries, found once per backend (their addresses do not change).
    static EF_SEARCH_ENTRY: Cell<*mut pg_sys::config_generic> = const { Cell::new(std::ptr::null_mut()) };
    static SEARCH_M_ENTRY: Cell<*mut pg_sys::config_generic> = const { Cell::new(std::ptr::null_mut()) };
    static PREFETCH_ENTRY: Cell<*mut pg_sys::config_generic> = const { Cell::new(std::ptr::null_mut()) };
    static EARLY_STOP_ENTRY: Cell<*mut pg_sys::config_generic> = const { Cell::new(std::ptr::null_mut()) };
}

#[cfg(not(any(feature = "pg13", feature = "pg14", feature = "pg15")))]
unsafe fn find_guc(name: &CStr) -> *mut pg_sys::config_generic {
    pg_sys::find_option(name.as_ptr(), false, true, pg_sys::DEBUG1 as i32)
}

/// Before 16 `find_option` is static; scan the table instead (once per backend and name).
#[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15"))]
unsafe fn find_guc(name: &CStr) -> *mut pg_sys::config_generic {
    let vars = pg_sys::get_guc_variables();
    for i in 0..pg_sys::GetNumConfigOptions() as usize {
        let g = *vars.add(i);
        if !g.is_null() && CStr::from_ptr((*g).name) == name {
            return g;
        }
    }
    std::ptr::null_mut()
}

/// Whether GUC `name` is at its built-in default (set nowhere), read from its source.
fn guc_is_default(name: &CStr, entry: &'static LocalKey<Cell<*mut pg_sys::config_generic>>) -> bool {
    entry.with(|e| unsafe {
        if e.get().is_null() {
            e.set(find_guc(name));
        }
        let g = e.get();
        g.is_null() || (*g).source == pg_sys::GucSource::PGC_S_DEFAULT
    })
}

pub unsafe fn init() {
    GucRegistry::define_enum_guc(
        c"vsag.iterative_scan",
        c"Whether a vsag scan continues past the first ef_search candidates",
        c"off: at most ef_search rows; relaxed_order: continue (each batch in exact order); strict_order: continue, never returning a row closer than an earlier one.",
        &ITERATIVE_SCAN,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_float_guc(
        c"vsag.scan_mem_multiplier",
        c"Memory a vsag scan may use, as a multiple of work_mem",
        c"A continuing scan stops when its candidate lists and visited set exceed this many times work_mem.",
        &SCAN_MEM_MULTIPLIER,
        1.0,
        1000.0,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"vsag.search_m",
        c"Neighbours per node a vsag search follows (0: all)",
        c"Neighbour lists are stored in pruning selection order; a search following only the first search_m of each list searches a smaller-degree graph without a rebuild. An index's search_m option replaces the default.",
        &SEARCH_M,
        0,
        100,
        GucContext::Userset,
        GucFlags::default(),
    );
}

#[derive(Clone, Copy, Debug)]
pub struct ScanSettings {
    pub ef_search: usize,
    pub mode: IterativeScan,
    pub max_tuples: usize,
    pub mem_limit: usize,
    /// Neighbours followed per node (0 = all).
    pub search_m: usize,
    pub prefetch_depth: usize,
    /// Adaptive termination's patience (0 = off).
    pub early_stop: usize,
}

impl ScanSettings {
    /// The session's settings, except that `vsag.ef_search`, `vsag.search_m`,
    /// `vsag.prefetch_depth` and `vsag.early_stop` set nowhere yield to the index's options of the same names.
    pub unsafe fn resolve(index: pg_sys::Relation) -> ScanSettings {
        let opts = VsagOptions::of(index);
        let ef_search = match EF_SEARCH.get() {
            _ if opts.ef_search > 0 && guc_is_default(c"vsag.ef_search", &EF_SEARCH_ENTRY) => opts.ef_search,
            guc => guc,
        };
        let search_m = match SEARCH_M.get() {
            _ if opts.search_m > 0 && guc_is_default(c"vsag.search_m", &SEARCH_M_ENTRY) => opts.search_m,
            guc => guc,
        };
        let prefetch_depth = match PREFETCH_DEPTH.get() {
            _ if opts.prefetch_depth >= 0 && guc_is_default(c"vsag.prefetch_depth", &PREFETCH_ENTRY) => {
                opts.prefetch_depth
            }
            guc => guc,
        };
        let early_stop = match EARLY_STOP.get() {
            _ if opts.early_stop >= 0 && guc_is_default(c"vsag.early_stop", &EARLY_STOP_ENTRY) => opts.early_stop,
            guc => guc,
        };
        let mode = ITERATIVE_SCAN.get();
        ScanSettings {
            ef_search: ef_search as usize,
            mode,
            max_tuples: match mode {
                IterativeScan::Off => ef_search as usize,
                _ => MAX_SCAN_TUPLES.get() as usize,
            },
            mem_limit: (SCAN_MEM_MULTIPLIER.get() * pg_sys::work_mem as f64 * 1024.0) as usize,
            search_m: search_m as usize,
            prefetch_depth: prefetch_depth as usize,
            early_stop: early_stop as usize,
        }
    }
}
