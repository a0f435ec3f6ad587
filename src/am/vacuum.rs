//! VACUUM: dead heap rows are removed from their nodes; a node left with none is flagged
//! deleted. They stay in the graph as
//! waypoints (their edges still route searches) but are never returned, so a heap TID that
//! VACUUM frees and a later row reuses can never be confused with the old node.

use super::index;
use super::pages::{self, PAGE_NODE};
use pgrx::pg_guard;
use pgrx::pg_sys::{self, IndexBulkDeleteResult, IndexVacuumInfo};
use vsag_core::page::{NodeMut, NodeRef};

/// Lets VACUUM's cost-based delay and interrupts act between pages.
unsafe fn delay_point() {
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
    let nblocks = pages::nblocks(index);
    let mut live = 0f64;
    for block in 0..nblocks {
        delay_point();
        let buf = pages::read_buffer_strategy(index, block, (*info).strategy);
        pg_sys::LockBuffer(buf, pg_sys::BUFFER_LOCK_EXCLUSIVE as i32);
        if pages::page_type(pg_sys::BufferGetPage(buf)) != PAGE_NODE {
            pg_sys::UnlockReleaseBuffer(buf);
            continue;
        }
        let state = pg_sys::GenericXLogStart(index);
        let page = pg_sys::GenericXLogRegisterBuffer(state, buf, 0);
        let max = pg_sys::PageGetMaxOffsetNumber(page);
        let mut changed = false;
        for off in 1..=max {
            let Some(bytes) = pages::item(page, off) else { continue };
            if bytes.len() < layout.tuple_size || NodeRef::new(&layout, bytes).is_deleted() {
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
            }
            live += remaining as f64;
        }
        if changed {
            pg_sys::GenericXLogFinish(state);
        } else {
            pg_sys::GenericXLogAbort(state);
        }
        pg_sys::UnlockReleaseBuffer(buf);
    }
    (*stats).num_pages = nblocks;
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
    // Repair runs even without deletions: inserts can still leave a node without in-edges
    // (tests/durability counts them), and this is where they are relinked.
    let (repruned, relinked, live_rows) = repair(index, (*info).strategy);
    if repruned + relinked > 0 {
        pgrx::debug1!("vsag: re-pruned {repruned} nodes around deleted ones, relinked {relinked} unreachable nodes");
    }
    if !stats.is_null() {
        return stats;
    }
    // No bulk delete ran (nothing to remove): report the rows repair's page pass counted.
    let stats = stats_or_new(stats);
    (*stats).num_pages = pages::nblocks(index);
    (*stats).num_index_tuples = live_rows as f64;
    stats
}

/// Graph repair after VACUUM, in two steps.
/// 1. Consolidation (FreshDiskANN-style): every live node with deleted neighbours gets its
///    list re-pruned over its live neighbours plus the deleted ones' live neighbours, so
///    searches stop wasting beam slots on tombstones and recall does not decay under churn.
///    Distances come from the nodes' codes (all loaded in one pass over the pages).
/// 2. Reachability: a live node no other node reaches (in-edges pruned away by later
///    inserts) is linked from the nearest reachable node found by a search; a deleted entry
///    point moves to a live node.
/// Returns (nodes re-pruned, nodes relinked, live heap rows in the index).
unsafe fn repair(index: pg_sys::Relation, strategy: pg_sys::BufferAccessStrategy) -> (u64, u64, u64) {
    use super::store::PgStore;
    use std::collections::{HashMap, HashSet};
    use vsag_core::graph::{robust_prune, SearchState};
    use vsag_core::page::ItemPointer;
    use vsag_core::quant::index_distance;

    struct Node {
        nbrs: Vec<u64>,
        deleted: bool,
        version: u16,
        rows: u16,
        code: Vec<u8>,
    }
    let st = index::state(index);
    let layout = st.layout;
    let load = || {
        let mut nodes: HashMap<u64, Node> = HashMap::new();
        for block in 0..pages::nblocks(index) {
            delay_point();
            let buf = pages::read_buffer_strategy(index, block, strategy);
            pg_sys::LockBuffer(buf, pg_sys::BUFFER_LOCK_SHARE as i32);
            let page = pg_sys::BufferGetPage(buf);
            if pages::page_type(page) == PAGE_NODE {
                for off in 1..=pg_sys::PageGetMaxOffsetNumber(page) {
                    if let Some(b) = pages::item(page, off).filter(|b| b.len() >= layout.tuple_size) {
                        let n = NodeRef::new(&layout, b);
                        // Own code (decoded for pruning; `nav_code` converts it for inline use).
                        let code = match (n.own_code(), n.vector()) {
                            (Some(c), _) => c.to_vec(),
                            (None, Some(v)) => st.quantizer.encode_vec(&v),
                            (None, None) => continue,
                        };
                        nodes.insert(
                            ItemPointer::new(block, off).to_u64(),
                            Node { nbrs: n.neighbours().map(|p| p.to_u64()).collect(), deleted: n.is_deleted(), version: n.header().version, rows: n.n_heap_tids() as u16, code },
                        );
                    }
                }
            }
            pg_sys::UnlockReleaseBuffer(buf);
            pgrx::check_for_interrupts!();
        }
        nodes
    };

    // Step 1: consolidation.
    let mut nodes = load();
    let live_rows: u64 = nodes.values().filter(|n| !n.deleted).map(|n| n.rows as u64).sum();
    let decode = |code: &[u8]| {
        let mut v = vec![0f32; layout.dim];
        // `code` is the tuple's own code, or a navigation code made from a full vector.
        match layout.has_own_code() {
            true => st.own_quantizer().decode(code, &mut v),
            false => st.quantizer.decode(code, &mut v),
        }
        v
    };
    let inline_code = |code: &[u8]| if layout.has_own_code() { st.nav_code(code) } else { code.to_vec() };
    let affected: Vec<u64> = {
        let mut a: Vec<u64> = nodes
            .iter()
            .filter(|(_, n)| !n.deleted && n.nbrs.iter().any(|x| nodes.get(x).is_some_and(|m| m.deleted)))
            .map(|(id, _)| *id)
            .collect();
        a.sort_unstable();
        a
    };
    let mut repruned = 0u64;
    for id in affected {
        let node = &nodes[&id];
        let mut cands: Vec<u64> = Vec::new();
        let mut seen = HashSet::new();
        seen.insert(id);
        for x in &node.nbrs {
            let Some(n) = nodes.get(x) else { continue };
            if n.deleted {
                for y in &n.nbrs {
                    if nodes.get(y).is_some_and(|m| !m.deleted) && seen.insert(*y) {
                        cands.push(*y);
                    }
                }
            } else if seen.insert(*x) {
                cands.push(*x);
            }
        }
        let vecs: HashMap<u64, Vec<f32>> = cands.iter().map(|c| (*c, decode(&nodes[c].code))).collect();
        let me = decode(&node.code);
        let mut scored: Vec<(u64, f32)> = cands.iter().map(|c| (*c, index_distance(st.metric, &me, &vecs[c]))).collect();
        let chosen = robust_prune(&mut scored, st.alpha, layout.m, |a, b| index_distance(st.metric, &vecs[&a], &vecs[&b]));
        let version = node.version;
        let codes: Vec<Vec<u8>> = chosen.iter().map(|(c, _)| inline_code(&nodes[c].code)).collect();
        let list: Vec<(ItemPointer, Option<&[u8]>)> =
            chosen.iter().zip(&codes).map(|((c, _), code)| (ItemPointer::from_u64(*c), Some(code.as_slice()))).collect();
        let written = pages::modify_item(index, ItemPointer::from_u64(id), |b| {
            let mut n = NodeMut::new(&layout, b);
            // a concurrent insert changed this list meanwhile: leave it, next VACUUM retries
            if n.header().version != version {
                return false;
            }
            n.set_neighbours(&list);
            true
        });
        if written {
            repruned += 1;
            let new_nbrs = chosen.iter().map(|(c, _)| *c).collect();
            nodes.get_mut(&id).expect("affected node").nbrs = new_nbrs;
        }
        pgrx::check_for_interrupts!();
    }

    // Step 2: reachability.
    let mut relinked = 0;
    for pass in 0..3 {
        if pass > 0 {
            nodes = load();
        }
        let Some(mut entry) = index::read_meta(index).entry().map(|e| e.to_u64()) else { return (repruned, relinked, live_rows) };
        if nodes.get(&entry).is_none_or(|n| n.deleted) {
            // Entry deleted: any live node will do.
            let Some((&live, _)) = nodes.iter().filter(|(_, n)| !n.deleted).min_by_key(|(id, _)| **id) else {
                return (repruned, relinked, live_rows);
            };
            index::write_meta(index, |m| m.set_entry(Some(ItemPointer::from_u64(live))));
            entry = live;
        }
        let mut seen = HashSet::new();
        let mut stack = vec![entry];
        seen.insert(entry);
        let walk = |stack: &mut Vec<u64>, seen: &mut HashSet<u64>| {
            while let Some(id) = stack.pop() {
                for nb in nodes.get(&id).map(|n| n.nbrs.as_slice()).unwrap_or(&[]) {
                    if nodes.contains_key(nb) && seen.insert(*nb) {
                        stack.push(*nb);
                    }
                }
            }
        };
        walk(&mut stack, &mut seen);
        let mut orphans: Vec<u64> = nodes.iter().filter(|(id, n)| !n.deleted && !seen.contains(id)).map(|(id, _)| *id).collect();
        if orphans.is_empty() {
            return (repruned, relinked, live_rows);
        }
        orphans.sort_unstable();
        let mut store = PgStore::new(index, st.clone(), None);
        for u in orphans {
            if seen.contains(&u) {
                continue;
            }
            let Some((v, code)) = store.node_vector_and_code(u) else { continue };
            let mut search = SearchState::new(st.prepare(&v), entry);
            search.run(&mut store, st.ef_construction);
            let best = search.next_batch(&mut store, st.ef_construction).into_iter().find(|(id, _)| *id != u && seen.contains(id));
            if let Some((from, _)) = best {
                super::insert::force_link(&store, ItemPointer::from_u64(from), ItemPointer::from_u64(u), &code, &[]);
                relinked += 1;
                seen.insert(u);
                stack.push(u);
                walk(&mut stack, &mut seen);
            }
            pgrx::check_for_interrupts!();
        }
    }
    (repruned, relinked, live_rows)
}
