//! `aminsert`: link a new row into the graph.
//!
//! Search from the entry point with `ef_construction`, alpha-prune the candidates into the
//! new node's neighbour list, append the node tuple, then add back-links: a neighbour with a
//! free slot gets the new node appended in place; a full neighbour is re-pruned over its
//! old list plus the new node (vectors read without holding any lock), and the result is
//! written only if its list did not change meanwhile (version check), else retried.
//! At most one buffer lock is held at any time, so concurrent inserts cannot deadlock.

use super::build::index_value;
use super::index::{self, read_meta, write_meta, IndexState};
use super::pages;
use super::store::PgStore;
use pgrx::pg_guard;
use pgrx::pg_sys::{self, Relation};
use std::collections::HashMap;
use std::rc::Rc;
use vsag_core::graph::{robust_prune, SearchState};
use vsag_core::page::{ItemPointer, NodeMut};
use vsag_core::quant::index_distance;

#[pg_guard]
pub unsafe extern "C-unwind" fn aminsert(
    index: Relation,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    heap_tid: pg_sys::ItemPointer,
    _heap: Relation,
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
    insert_vector(index, &st, tid, &v);
    false
}

/// A node's full vector and own code, read for pruning.
type NodeData = (Vec<f32>, Vec<u8>);

fn read_node_data(store: &mut PgStore, id: u64) -> Option<NodeData> {
    store
        .with_node(id, |n| n.vector().map(|v| (v.into_owned(), n.own_code().to_vec())))
        .flatten()
}

/// Neighbour list for a vector `v` that is (or will be) node `self_id`.
unsafe fn choose_neighbours(
    store: &mut PgStore,
    entry: ItemPointer,
    v: &[f32],
    self_id: Option<u64>,
    data: &mut HashMap<u64, NodeData>,
) -> Vec<(u64, f32)> {
    let st = store.st.clone();
    let q = st.quantizer.prepare(st.metric, v);
    let mut search = SearchState::new(q, entry.to_u64());
    search.run(store, st.ef_construction);
    let mut cands: Vec<(u64, f32)> = search.next_batch(store, st.ef_construction);
    cands.retain(|(id, _)| Some(*id) != self_id);
    cands.retain(|(id, _)| match read_node_data(store, *id) {
        Some(d) => {
            data.insert(*id, d);
            true
        }
        None => false,
    });
    robust_prune(&mut cands, st.alpha, st.layout.m, |a, b| index_distance(st.metric, &data[&a].0, &data[&b].0))
}

pub unsafe fn insert_vector(index: Relation, st: &Rc<IndexState>, tid: ItemPointer, v: &[f32]) {
    let layout = st.layout;
    let meta = read_meta(index);
    let code = st.quantizer.encode_vec(v);
    let mut store = PgStore::new(index, st.clone());
    let mut data = HashMap::new();
    let chosen = match meta.entry() {
        Some(entry) => choose_neighbours(&mut store, entry, v, None, &mut data),
        None => Vec::new(),
    };
    let mut tuple = vec![0u8; layout.tuple_size];
    let mut node = NodeMut::init(&layout, &mut tuple, tid, Some(v), &code);
    let list: Vec<(ItemPointer, Option<&[u8]>)> =
        chosen.iter().map(|(id, _)| (ItemPointer::from_u64(*id), Some(data[id].1.as_slice()))).collect();
    node.set_neighbours(&list);
    let (ptr, extended) = pages::append_node(index, meta.insert_block, &tuple);

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
            let chosen = choose_neighbours(&mut store, e, v, Some(ptr.to_u64()), &mut data);
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
    for (nb, _) in chosen {
        add_backlink(&mut store, ItemPointer::from_u64(nb), ptr, v, &code);
    }
}

unsafe fn add_backlink(store: &mut PgStore, nb: ItemPointer, new: ItemPointer, v: &[f32], code: &[u8]) {
    let st = store.st.clone();
    let layout = st.layout;
    for _attempt in 0..3 {
        let mut seen_version = None;
        let appended = pages::modify_item(store.index, nb, |b| {
            let mut node = NodeMut::new(&layout, b);
            let h = node.header();
            if node.as_ref().neighbours().any(|p| p == new) {
                return false;
            }
            if (h.degree as usize) < layout.m {
                node.set_neighbour(h.degree as usize, new, Some(code));
                true
            } else {
                seen_version = Some(h.version);
                false
            }
        });
        let Some(version) = seen_version else { return };
        if appended {
            return;
        }
        // Full: re-prune its neighbourhood plus the new node, reading without locks held.
        let Some((nb_vec, _)) = read_node_data(store, nb.to_u64()) else { return };
        let Some(list) = store.with_node(nb.to_u64(), |n| n.neighbours().collect::<Vec<_>>()) else { return };
        let mut data: HashMap<u64, Vec<f32>> = HashMap::new();
        let mut codes: HashMap<u64, Vec<u8>> = HashMap::new();
        data.insert(new.to_u64(), v.to_vec());
        codes.insert(new.to_u64(), code.to_vec());
        for p in &list {
            if let Some((pv, pc)) = read_node_data(store, p.to_u64()) {
                data.insert(p.to_u64(), pv);
                codes.insert(p.to_u64(), pc);
            }
        }
        let mut cands: Vec<(u64, f32)> =
            data.iter().map(|(id, x)| (*id, index_distance(st.metric, &nb_vec, x))).collect();
        cands.sort_by_key(|c| c.0); // deterministic tie order
        let chosen = robust_prune(&mut cands, st.alpha, layout.m, |a, b| index_distance(st.metric, &data[&a], &data[&b]));
        if !chosen.iter().any(|(id, _)| *id == new.to_u64()) {
            return; // the new node does not improve this neighbourhood
        }
        let written = pages::modify_item(store.index, nb, |b| {
            let mut node = NodeMut::new(&layout, b);
            if node.header().version != version {
                return false;
            }
            let refs: Vec<(ItemPointer, Option<&[u8]>)> =
                chosen.iter().map(|(id, _)| (ItemPointer::from_u64(*id), Some(codes[id].as_slice()))).collect();
            node.set_neighbours(&refs);
            true
        });
        if written {
            return;
        }
    }
}
