//! `aminsert`: link a new row into the graph.
//!
//! Search from the entry point with `ef_construction`, alpha-prune the candidates into the
//! new node's neighbour list, append the node tuple, then add back-links: a neighbour with a
//! free slot gets the new node appended in place; a full neighbour is re-pruned over its
//! old list plus the new node (vectors read without holding any lock), and the result is
//! written only if its list did not change meanwhile (version check), else retried.
//! An edge the re-prune would drop goes only if one of the kept neighbours nearest to its
//! target links there too, so no node loses its only in-edge. What still fails (a back-link
//! after repeated conflicts, a forced link that cost another edge) is counted in the
//! metapage for VACUUM to repair.
//! The node goes into a slot VACUUM freed when there is one (`pages::place_node`).
//! A row whose vector is bitwise identical to an existing node's joins that node (up to
//! MAX_HEAP_TIDS rows per node) instead of adding a copy pruning could not keep connected.
//! At most one buffer lock is held at any time, so concurrent inserts cannot deadlock.

use super::build::index_value;
use super::index::{self, read_meta, write_meta, IndexState};
use super::links::{self, Linked};
use super::pages::{self, Wal};
use super::store::PgStore;
use pgrx::pg_guard;
use pgrx::pg_sys::{self, Relation};
use std::collections::HashMap;
use std::rc::Rc;
use vsag_core::graph::{robust_prune, SearchState};
use super::heap::HeapFetch;
use vsag_core::page::{ItemPointer, NodeMut, NodeRef};
use vsag_core::quant::index_distance;

/// A one-row insert searches at least this many candidates, whatever `ef_construction`: a
/// bulk build links every row in batches and revisits lists as later rows arrive, an insert
/// gets one search. 3,000 64-d Gaussian rows inserted one by one into an empty index (the
/// gauss64 scenario of tests/pgvector/inserts.py): 8 rows missed by their own self-query at
/// ef_search 200 with 64 candidates, 5 with 96, 3 with 128 (pgvector HNSW: 1).
const INSERT_EF_MIN: usize = 128;

#[pg_guard]
pub unsafe extern "C-unwind" fn aminsert(
    index: Relation,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    heap_tid: pg_sys::ItemPointer,
    heap: Relation,
    _check_unique: pg_sys::IndexUniqueCheck::Type,
    _index_unchanged: bool,
    _index_info: *mut pg_sys::IndexInfo,
) -> bool {
    let st = index::state(index);
    let Some(v) = index_value(st.layout.dim, st.metric, *values, *isnull) else { return false };
    let tid = ItemPointer::new(
        pgrx::itemptr::item_pointer_get_block_number(heap_tid),
        pgrx::itemptr::item_pointer_get_offset_number(heap_tid),
    );
    insert_vector(index, &st, tid, &v, Some(heap));
    false
}

/// A node's vector (exact, or decoded for codes storage) and its code, read for pruning.
type NodeData = (Vec<f32>, Vec<u8>);

fn read_node_data(store: &mut PgStore, id: u64) -> Option<NodeData> {
    store.node_vector_and_code(id)
}

/// Adds `tid` to node `id` if the node holds exactly this vector and has room. Codes-only
/// nodes are checked against one of their table rows (any version: rows of a node share it).
unsafe fn join_identical(store: &PgStore, id: u64, v: &[f32], tid: ItemPointer, heap: Option<Relation>) -> bool {
    let layout = store.st.layout;
    let same = |x: &[f32]| x.len() == v.len() && x.iter().zip(v).all(|(a, b)| a.to_bits() == b.to_bits());
    let mut confirmed_from_heap = false;
    if !layout.store_vector {
        let Some(heap) = heap else { return false };
        let Some(first) = pages::with_item(store.index, ItemPointer::from_u64(id), |b| {
            NodeRef::new(&layout, b).heap_tids().next()
        })
        .flatten() else {
            return false;
        };
        let mut fetch = HeapFetch::new(heap, store.index, std::ptr::addr_of_mut!(pg_sys::SnapshotAnyData), store.st.metric);
        confirmed_from_heap = fetch.vector([first]).is_some_and(|x| same(&x));
        if !confirmed_from_heap {
            return false;
        }
    }
    pages::modify_item(store.index, ItemPointer::from_u64(id), |b| {
        let mut node = NodeMut::new(&layout, b);
        let ok = confirmed_from_heap || node.as_ref().vector().is_some_and(|x| same(&x));
        ok && node.add_heap_tid(tid)
    })
}

/// Neighbour list for a vector `v` that is (or will be) node `self_id`.
unsafe fn choose_neighbours(
    store: &mut PgStore,
    entry: ItemPointer,
    v: &[f32],
    self_id: Option<u64>,
    data: &mut HashMap<u64, NodeData>,
    identical: &mut Vec<u64>,
) -> Vec<(u64, f32)> {
    let st = store.st.clone();
    let q = st.prepare(v);
    let mut search = SearchState::new(q, entry.to_u64());
    let ef = st.ef_construction.max(INSERT_EF_MIN);
    search.run(store, ef);
    let mut cands: Vec<(u64, f32)> = search.next_batch(store, ef);
    cands.retain(|(id, _)| Some(*id) != self_id);
    data.clear();
    cands.retain(|(id, _)| match read_node_data(store, *id) {
        Some(d) => {
            data.insert(*id, d);
            true
        }
        None => false,
    });
    // Distances from the exact new vector (the search scored codes).
    for c in cands.iter_mut() {
        c.1 = index_distance(st.metric, v, &data[&c.0].0);
    }
    // Exact-copy candidates: full storage compares the stored vectors bit for bit; codes
    // storage pre-selects equal codes and `join_identical` confirms from the table.
    identical.clear();
    let same = |x: &[f32], y: &[f32]| x.len() == y.len() && x.iter().zip(y).all(|(a, b)| a.to_bits() == b.to_bits());
    if st.layout.store_vector {
        identical.extend(cands.iter().filter(|c| same(&data[&c.0].0, v)).map(|c| c.0));
    } else {
        // Equal own codes (compared decoded, as `read_node_data` has them) pre-select;
        // `join_identical` confirms from the table.
        let own = st.own_quantizer();
        let mut probe = vec![0f32; v.len()];
        own.decode(&own.encode_vec(v), &mut probe);
        identical.extend(cands.iter().filter(|c| same(&data[&c.0].0, &probe)).map(|c| c.0));
    }
    robust_prune(&mut cands, st.alpha, st.layout.m, |a, b| index_distance(st.metric, &data[&a].0, &data[&b].0))
}

/// `heap` (when known) lets a codes-only index confirm an exact duplicate from the table.
pub unsafe fn insert_vector(index: Relation, st: &Rc<IndexState>, tid: ItemPointer, v: &[f32], heap: Option<Relation>) {
    let layout = st.layout;
    let meta = read_meta(index);
    let code = st.quantizer.encode_vec(v);
    let own_code = match &st.fine {
        Some(f) => f.encode_vec(v),
        None => code.clone(),
    };
    let mut store = PgStore::new(index, st.clone(), None);
    let mut data = HashMap::new();
    let mut identical = Vec::new();
    let chosen = match meta.entry() {
        Some(entry) => choose_neighbours(&mut store, entry, v, None, &mut data, &mut identical),
        None => Vec::new(),
    };
    // An exact duplicate of an existing node joins it (full storage: vectors comparable).
    if identical.iter().any(|&id| join_identical(&store, id, v, tid, heap)) {
        return;
    }
    let mut tuple = vec![0u8; layout.tuple_size];
    let mut node = NodeMut::init(&layout, &mut tuple, tid, layout.store_vector.then_some(v), &own_code);
    let list: Vec<(ItemPointer, Option<&[u8]>)> =
        chosen.iter().map(|(id, _)| (ItemPointer::from_u64(*id), Some(data[id].1.as_slice()))).collect();
    node.set_neighbours(&list);
    let (ptr, extended) = pages::place_node(index, &layout, meta.insert_block, &tuple);

    let mut became_entry = false;
    let mut raced_entry = None;
    if extended || meta.entry().is_none() {
        write_meta(index, |m| {
            if extended {
                m.insert_block = ptr.block;
            }
            match m.entry() {
                None => {
                    m.set_entry(Some(ptr));
                    became_entry = true;
                }
                Some(e) if meta.entry().is_none() => raced_entry = Some(e),
                Some(_) => {}
            }
        });
    }
    if became_entry {
        return;
    }
    let chosen = match raced_entry {
        // Another backend made the first node while we were appending ours: link to it now.
        Some(e) => {
            let chosen = choose_neighbours(&mut store, e, v, Some(ptr.to_u64()), &mut data, &mut identical);
            let list: Vec<(ItemPointer, Option<Vec<u8>>)> =
                chosen.iter().map(|(id, _)| (ItemPointer::from_u64(*id), Some(data[id].1.clone()))).collect();
            pages::modify_item(index, ptr, |b| {
                let refs: Vec<(ItemPointer, Option<&[u8]>)> = list.iter().map(|(p, c)| (*p, c.as_deref())).collect();
                NodeMut::new(&layout, b).set_neighbours(&refs);
                true
            });
            chosen
        }
        None => chosen,
    };
    let (mut lost, mut in_edges) = (0u64, 0usize);
    let first = chosen.first().map(|c| c.0);
    for (nb, _) in chosen {
        match add_backlink(&mut store, ItemPointer::from_u64(nb), ptr, v, &code) {
            Some(linked) => in_edges += linked as usize,
            None => lost += 1,
        }
    }
    // No neighbour took a back-link: the nearest one must, or nothing reaches the node.
    if let (0, Some(nearest)) = (in_edges, first) {
        if let Linked::HandedOver(Some(_)) = links::link(&mut store, ItemPointer::from_u64(nearest), ptr, &code, Wal::Logged) {
            lost += 1;
        }
    }
    // A copy of full duplicate nodes: pruning keeps few copies in any list, so make sure one
    // of them links to it, or later copies (which join it) would be unreachable too.
    if let Some(&dup) = identical.first() {
        if let Linked::HandedOver(Some(_)) = links::link(&mut store, ItemPointer::from_u64(dup), ptr, &code, Wal::Logged) {
            lost += 1;
        }
    }
    links::note_pending_repair(index, lost);
}

/// Links `nb` → `new`. A full `nb` is re-pruned over its list plus `new`. An old neighbour
/// the prune drops must still be reached: through one of the kept neighbours nearest to it
/// if one links there, else through `new`, which adopts it while it has room, else it stays
/// in nb's list; with too many of those, `new` takes the slot of the farthest droppable
/// one, or, if none, no back-link is made. Returns whether nb now
/// links to new; None when the list kept changing under us (counted for VACUUM).
unsafe fn add_backlink(store: &mut PgStore, nb: ItemPointer, new: ItemPointer, v: &[f32], code: &[u8]) -> Option<bool> {
    let st = store.st.clone();
    let layout = st.layout;
    for _attempt in 0..5 {
        let mut seen_version = None;
        let mut linked = false;
        pages::modify_item(store.index, nb, |b| {
            let mut node = NodeMut::new(&layout, b);
            let h = node.header();
            // A tombstone never needs new edges (VACUUM is about to unlink it).
            if node.as_ref().is_deleted() || node.as_ref().neighbours().any(|p| p == new) {
                return false;
            }
            if (h.degree as usize) < layout.m {
                node.set_neighbour(h.degree as usize, new, Some(code));
                linked = true;
                true
            } else {
                seen_version = Some(h.version);
                false
            }
        });
        let Some(version) = seen_version else { return Some(linked) };
        // Full: re-prune its neighbourhood plus the new node, reading without locks held.
        let Some((nb_vec, _)) = read_node_data(store, nb.to_u64()) else { return Some(false) };
        let Some(list) = store.with_node(nb.to_u64(), |n| n.neighbours().map(|p| p.to_u64()).collect::<Vec<_>>()) else {
            return Some(false);
        };
        let mut data: HashMap<u64, (Vec<f32>, Vec<u8>)> = HashMap::new();
        data.insert(new.to_u64(), (v.to_vec(), code.to_vec()));
        for &p in &list {
            if let Some(d) = read_node_data(store, p) {
                data.insert(p, d);
            }
        }
        let dist_nb = |id: &u64| index_distance(st.metric, &nb_vec, &data[id].0);
        let mut cands: Vec<(u64, f32)> = data.keys().map(|id| (*id, dist_nb(id))).collect();
        cands.sort_by_key(|c| c.0); // deterministic tie order
        let chosen = robust_prune(&mut cands, st.alpha, layout.m, |a, b| index_distance(st.metric, &data[&a].0, &data[&b].0));
        if !chosen.iter().any(|(id, _)| *id == new.to_u64()) {
            return Some(false); // the new node does not improve this neighbourhood
        }
        // Old neighbours the prune drops: droppable only if still reached through nb.
        let (mut keep, mut droppable): (Vec<u64>, Vec<u64>) = (Vec::new(), Vec::new());
        for &x in list.iter().filter(|x| data.contains_key(x) && !chosen.iter().any(|(id, _)| id == *x)) {
            let mut near: Vec<(f32, u64)> = chosen
                .iter()
                .filter(|(id, _)| *id != new.to_u64())
                .map(|(id, _)| (index_distance(st.metric, &data[&x].0, &data[id].0), *id))
                .collect();
            near.sort_by(|a, b| a.0.total_cmp(&b.0));
            let reached = near.iter().take(3).any(|&(_, r)| store.with_node(r, |n| n.neighbours().any(|p| p.to_u64() == x)).unwrap_or(false));
            if reached { droppable.push(x) } else { keep.push(x) }
        }
        // The new node adopts those it has room for (nb → new → x); the rest stay in nb.
        if !keep.is_empty() {
            let offered: Vec<(u64, Vec<u8>)> = keep.iter().map(|x| (*x, data[x].1.clone())).collect();
            let rest = adopt(store, new, &offered);
            keep.retain(|x| rest.iter().any(|(r, _)| r == x));
        }
        let mut out: Vec<(u64, f32)> = chosen.clone();
        out.extend(keep.iter().map(|x| (*x, dist_nb(x))));
        if out.len() > layout.m {
            // Not enough room for the new edge and every needed old one.
            let Some(&victim) = droppable.iter().max_by(|a, b| dist_nb(a).total_cmp(&dist_nb(b))) else {
                return Some(false);
            };
            out = list.iter().filter(|x| **x != victim && data.contains_key(x)).map(|x| (*x, dist_nb(x))).collect();
            out.push((new.to_u64(), dist_nb(&new.to_u64())));
            out.truncate(layout.m);
        }
        let written = pages::modify_item(store.index, nb, |b| {
            let mut node = NodeMut::new(&layout, b);
            if node.header().version != version {
                return false;
            }
            let refs: Vec<(ItemPointer, Option<&[u8]>)> =
                out.iter().map(|(id, _)| (ItemPointer::from_u64(*id), Some(data[id].1.as_slice()))).collect();
            node.set_neighbours(&refs);
            true
        });
        if written {
            return Some(true);
        }
    }
    None
}

/// Appends handed-over neighbours to node `at` while it has free slots; returns the ones
/// that did not fit (all of them if `at` cannot be read).
unsafe fn adopt(store: &PgStore, at: ItemPointer, orphans: &[(u64, Vec<u8>)]) -> Vec<(u64, Vec<u8>)> {
    let layout = store.st.layout;
    let mut rest = orphans.to_vec();
    pages::modify_item(store.index, at, |b| {
        let mut node = NodeMut::new(&layout, b);
        rest.clear();
        let mut changed = false;
        for (id, code) in orphans {
            let p = ItemPointer::from_u64(*id);
            if p == at || node.as_ref().neighbours().any(|q| q == p) {
                continue;
            }
            let deg = node.header().degree as usize;
            if deg >= layout.m {
                rest.push((*id, code.clone()));
                continue;
            }
            node.set_neighbour(deg, p, Some(code));
            changed = true;
        }
        changed
    });
    rest
}
