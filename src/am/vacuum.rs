//! VACUUM: dead heap rows are removed from their nodes; a node left with none is flagged
//! deleted. They stay in the graph as
//! waypoints (their edges still route searches) but are never returned, so a heap TID that
//! VACUUM frees and a later row reuses can never be confused with the old node. The graph
//! repair (`repair`) then unlinks them and frees their slots, but only when something is
//! pending: an insert-only table's VACUUM reads no index page.

use super::index;
use super::links::note_pending_repair;
use super::pages::{self, node_items};
use super::repair::repair;
use pgrx::pg_guard;
use pgrx::pg_sys::{self, IndexBulkDeleteResult, IndexVacuumInfo};
use vsag_core::page::{NodeMut, NodeRef};

/// Lets VACUUM's cost-based delay and interrupts act between pages.
pub(super) unsafe fn delay_point() {
    #[cfg(feature = "pg18")]
    pg_sys::vacuum_delay_point(false);
    #[cfg(not(feature = "pg18"))]
    pg_sys::vacuum_delay_point();
}

unsafe fn stats_or_new(stats: *mut IndexBulkDeleteResult) -> *mut IndexBulkDeleteResult {
    if stats.is_null() {
        pg_sys::palloc0(std::mem::size_of::<IndexBulkDeleteResult>()) as *mut IndexBulkDeleteResult
    } else {
        stats
    }
}

#[pg_guard]
pub unsafe extern "C-unwind" fn ambulkdelete(
    info: *mut IndexVacuumInfo,
    stats: *mut IndexBulkDeleteResult,
    callback: pg_sys::IndexBulkDeleteCallback,
    callback_state: *mut std::ffi::c_void,
) -> *mut IndexBulkDeleteResult {
    let index = (*info).index;
    let stats = stats_or_new(stats);
    let st = index::state(index);
    let layout = st.layout;
    let Some(callback) = callback else { return stats };
    let (mut live, mut tombstones) = (0f64, 0u64);
    pages::for_each_node_page(index, (*info).strategy, pg_sys::BUFFER_LOCK_EXCLUSIVE, |_, buf| {
        delay_point();
        let state = pg_sys::GenericXLogStart(index);
        let page = pg_sys::GenericXLogRegisterBuffer(state, buf, 0);
        let mut changed = false;
        for (_, bytes) in node_items(page, &layout) {
            if NodeRef::new(&layout, bytes).is_deleted() {
                continue;
            }
            // Drop the dead rows of this node; with none left it becomes a tombstone that
            // still routes searches but is never returned.
            let (removed, remaining) = NodeMut::new(&layout, bytes).retain_heap_tids(|tid| {
                let mut heap_tid: pg_sys::ItemPointerData = std::mem::zeroed();
                pgrx::itemptr::item_pointer_set_all(&mut heap_tid, tid.block, tid.offset);
                !callback(&mut heap_tid, callback_state)
            });
            if removed > 0 {
                (*stats).tuples_removed += removed as f64;
                changed = true;
                tombstones += (remaining == 0) as u64;
            }
            live += remaining as f64;
        }
        if changed {
            pg_sys::GenericXLogFinish(state);
        } else {
            pg_sys::GenericXLogAbort(state);
        }
    });
    note_pending_repair(index, tombstones);
    (*stats).num_pages = pages::nblocks(index);
    (*stats).num_index_tuples = live;
    stats
}

#[pg_guard]
pub unsafe extern "C-unwind" fn amvacuumcleanup(
    info: *mut IndexVacuumInfo,
    stats: *mut IndexBulkDeleteResult,
) -> *mut IndexBulkDeleteResult {
    if (*info).analyze_only {
        return stats;
    }
    let index = (*info).index;
    if index::read_meta(index).pending_repair == 0 {
        // Nothing lost its last row and every insert placed its edges: no repair, and
        // without a bulk delete no statistics to report either (NULL keeps the old ones).
        return stats;
    }
    let r = repair(index, (*info).strategy);
    pgrx::debug1!(
        "vsag: re-pruned {} nodes around deleted ones, freed {} slots, relinked {} unreachable nodes{}",
        r.repruned,
        r.freed,
        r.relinked,
        if r.entry_moved { "; replaced the deleted entry point" } else { "" }
    );
    if !stats.is_null() {
        return stats;
    }
    let stats = stats_or_new(stats);
    (*stats).num_pages = pages::nblocks(index);
    (*stats).num_index_tuples = r.live_rows as f64;
    stats
}
