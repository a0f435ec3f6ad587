//! The `vsag` index access method: a proximity graph in Postgres pages whose node tuples
//! carry their neighbours' codes inline (partial redundant storage).
//!
//! One file per AM callback (build, insert, scan, vacuum, cost); `pages` adapts buffers,
//! locking and WAL to the page codec in `vsag_core::page`; `index` holds the per-index state
//! (metapage, quantizer, metric) that every callback needs.

pub mod build;
mod build_parts;
mod build_rows;
mod build_run;
mod build_spill;
mod build_write;
pub mod cost;
pub mod heap;
pub mod index;
pub mod insert;
pub mod links;
pub mod options;
pub mod pages;
pub mod recent;
pub mod repair;
pub mod scan;
pub mod scan_settings;
pub mod store;
pub mod tune;
pub mod tune_trials;
pub mod vacuum;
pub mod verify;
pub mod verify_selfquery;

use crate::fmgr::finfo;
use pgrx::pg_sys::{self, Datum, FunctionCallInfo};
use pgrx::{pg_guard, PgBox};

finfo!(vsag_amhandler);

#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn vsag_amhandler(_fcinfo: FunctionCallInfo) -> Datum {
    let mut am = PgBox::<pg_sys::IndexAmRoutine>::alloc_node(pg_sys::NodeTag::T_IndexAmRoutine);
    // Ordering operators only: no search strategies, one support function (the distance,
    // which also tells us the metric).
    am.amstrategies = 0;
    am.amsupport = 1;
    am.amoptsprocnum = 0;
    am.amcanorder = false;
    am.amcanorderbyop = true;
    am.amcanbackward = false;
    am.amcanunique = false;
    am.amcanmulticol = false;
    am.amoptionalkey = true;
    am.amsearcharray = false;
    am.amsearchnulls = false;
    am.amstorage = false;
    am.amclusterable = false;
    am.ampredlocks = false;
    am.amcanparallel = false;
    am.amcaninclude = false;
    am.amusemaintenanceworkmem = false;
    am.amparallelvacuumoptions = pg_sys::VACUUM_OPTION_PARALLEL_BULKDEL as u8;
    am.amkeytype = pg_sys::InvalidOid;

    am.ambuild = Some(build::ambuild);
    am.ambuildempty = Some(build::ambuildempty);
    am.aminsert = Some(insert::aminsert);
    am.ambulkdelete = Some(vacuum::ambulkdelete);
    am.amvacuumcleanup = Some(vacuum::amvacuumcleanup);
    am.amcanreturn = None;
    am.amcostestimate = Some(cost::amcostestimate);
    am.amoptions = Some(options::amoptions);
    am.amproperty = None;
    am.ambuildphasename = Some(build::ambuildphasename);
    am.amvalidate = Some(cost::amvalidate);
    am.amadjustmembers = None;
    am.ambeginscan = Some(scan::ambeginscan);
    am.amrescan = Some(scan::amrescan);
    am.amgettuple = Some(scan::amgettuple);
    am.amgetbitmap = None;
    am.amendscan = Some(scan::amendscan);
    am.ammarkpos = None;
    am.amrestrpos = None;
    am.amestimateparallelscan = None;
    am.aminitparallelscan = None;
    am.amparallelrescan = None;
    Datum::from(am.into_pg())
}
