//! What one index scan may do, resolved at `amrescan` from the session's settings and the
//! index's own defaults: beam width, how far a scan continues past the first beam
//! (`vsag.iterative_scan`, as pgvector defines its modes) and how much memory it may use.

use super::options::{VsagOptions, EF_SEARCH, EF_SEARCH_DEFAULT, MAX_SCAN_TUPLES};
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting, PostgresGucEnum};
use pgrx::pg_sys;

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
}

#[derive(Clone, Copy, Debug)]
pub struct ScanSettings {
    pub ef_search: usize,
    pub mode: IterativeScan,
    pub max_tuples: usize,
    pub mem_limit: usize,
}

impl ScanSettings {
    /// The session's settings, except that `vsag.ef_search` left at its default yields to
    /// the index's `ef_search` option (0 = not set).
    pub unsafe fn resolve(index: pg_sys::Relation) -> ScanSettings {
        let guc = EF_SEARCH.get();
        let own = VsagOptions::of(index).ef_search;
        let ef_search = if guc == EF_SEARCH_DEFAULT && own > 0 { own } else { guc };
        let mode = ITERATIVE_SCAN.get();
        ScanSettings {
            ef_search: ef_search as usize,
            mode,
            max_tuples: match mode {
                IterativeScan::Off => ef_search as usize,
                _ => MAX_SCAN_TUPLES.get() as usize,
            },
            mem_limit: (SCAN_MEM_MULTIPLIER.get() * pg_sys::work_mem as f64 * 1024.0) as usize,
        }
    }
}
