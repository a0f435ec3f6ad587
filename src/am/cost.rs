//! Planner integration: the index is only useful for `ORDER BY col <op> const LIMIT k`.
//! Without an ORDER BY on the index the cost is infinite, so the planner never picks it for
//! plain scans; with one, a search touches roughly `ef_search` neighbourhoods no matter how
//! large the table is, which is what makes it cheaper than a sort.

use super::options::EF_SEARCH;
use pgrx::pg_guard;
use pgrx::pg_sys;

#[pg_guard]
pub unsafe extern "C-unwind" fn amcostestimate(
    root: *mut pg_sys::PlannerInfo,
    path: *mut pg_sys::IndexPath,
    loop_count: f64,
    startup: *mut pg_sys::Cost,
    total: *mut pg_sys::Cost,
    selectivity: *mut pg_sys::Selectivity,
    correlation: *mut f64,
    pages: *mut f64,
) {
    if (*path).indexorderbys.is_null() {
        *startup = pg_sys::get_float8_infinity();
        *total = pg_sys::get_float8_infinity();
        *selectivity = 0.0;
        *correlation = 0.0;
        *pages = 0.0;
        return;
    }
    let index = (*path).indexinfo;
    let tuples = (*index).tuples.max(1.0);
    // Nodes expanded by one search: about ef_search times a small log factor.
    let ef = EF_SEARCH.get() as f64;
    let visited = (ef * (2.0 + tuples.log2().max(1.0) / 2.0)).min(tuples);

    let mut costs: pg_sys::GenericCosts = std::mem::zeroed();
    costs.numIndexTuples = visited;
    pg_sys::genericcostestimate(root, path, loop_count, &mut costs);
    // genericcostestimate charges one page per visited node's share of the index (PRS: an
    // expansion reads one page). All that work happens before the first tuple comes back.
    *startup = costs.indexTotalCost;
    *total = costs.indexTotalCost;
    *selectivity = costs.indexSelectivity;
    *correlation = 0.0;
    *pages = costs.numIndexPages;
}

#[pg_guard]
pub unsafe extern "C-unwind" fn amvalidate(_opclassoid: pg_sys::Oid) -> bool {
    true
}
