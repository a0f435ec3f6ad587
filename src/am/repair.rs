//! Graph repair at the end of VACUUM, run only when the metapage counts pending events
//! (nodes that lost their last row, edges inserts could not place). Memory is bounded by
//! the tombstones and a budgeted vector cache, plus one bit per node slot for reachability.
//!
//! 1. Consolidation: every live node that links to a tombstone keeps its live neighbours
//!    and fills the freed slots from the tombstones' live neighbours (alpha pruning). A
//!    full re-prune over both (FreshDiskANN) changes more edges on approximate distances
//!    and measurably lost more rows (tests/pgvector/inserts.py).
//! 2. Entry point: the live node nearest to the live nodes' centroid (found by a search),
//!    so the entry follows the data as it drifts and never stays on a tombstone.
//! 3. Tombstones no live node links to any more are marked free and put in the free space
//!    map; inserts reuse their slots, so the index does not grow under churn.
//! 4. Reachability: a walk from the entry that does not pass through free slots; each live
//!    node it misses is linked from the nearest reachable node a search finds.

use super::index::{self, read_meta, write_meta};
use super::links;
use super::pages::{self, node_items, Wal};
use super::store::PgStore;
use super::vacuum::delay_point;
use pgrx::pg_sys::{self, Relation};
use std::collections::{HashMap, HashSet};
use vsag_core::graph::{fill_prune, SearchState};
use vsag_core::page::{ItemPointer, NodeLayout, NodeMut, NodeRef};
use vsag_core::quant::index_distance;

#[derive(Default, Debug)]
pub struct Repaired {
    pub repruned: u64,
    pub relinked: u64,
    pub freed: u64,
    pub live_rows: u64,
    /// The entry point was deleted and replaced.
    pub entry_moved: bool,
}

/// Node vectors (decoded own codes, or the stored vector) and navigation codes, cached up
/// to a byte budget (`maintenance_work_mem`), then dropped and refilled.
struct VectorCache {
    map: HashMap<u64, (Vec<f32>, Vec<u8>)>,
    bytes: usize,
    budget: usize,
}

impl VectorCache {
    fn get(&mut self, store: &mut PgStore, id: u64) -> Option<&(Vec<f32>, Vec<u8>)> {
        if !self.map.contains_key(&id) {
            let d = store.node_vector_and_code(id)?;
            let size = d.0.len() * 4 + d.1.len() + 64;
            if self.bytes + size > self.budget {
                self.map.clear();
                self.bytes = 0;
            }
            self.bytes += size;
            self.map.insert(id, d);
        }
        self.map.get(&id)
    }
}

/// One bit per possible node slot (block, offset).
pub(super) struct SlotBits {
    bits: Vec<u64>,
    per_page: usize,
}

impl SlotBits {
    fn new(nblocks: u32, per_page: usize) -> Self {
        SlotBits { bits: vec![0; (nblocks as usize * per_page).div_ceil(64)], per_page }
    }
    /// Every slot `index` has now, for nodes of `layout`.
    pub(super) unsafe fn for_index(index: Relation, layout: &NodeLayout) -> Self {
        SlotBits::new(pages::nblocks(index), pgrx::pg_sys::BLCKSZ as usize / layout.tuple_size.max(1) + 1)
    }
    fn slot(&self, id: u64) -> Option<usize> {
        let p = ItemPointer::from_u64(id);
        let off = p.offset as usize;
        (off >= 1 && off <= self.per_page).then(|| p.block as usize * self.per_page + off - 1)
    }
    /// Sets the bit; false if it was set already (or the slot is out of range).
    pub(super) fn insert(&mut self, id: u64) -> bool {
        let Some(s) = self.slot(id) else { return false };
        let Some(w) = self.bits.get_mut(s / 64) else { return false };
        let was = *w & (1 << (s % 64)) != 0;
        *w |= 1 << (s % 64);
        !was
    }
    pub(super) fn contains(&self, id: u64) -> bool {
        self.slot(id).and_then(|s| self.bits.get(s / 64).map(|w| w & (1 << (s % 64)) != 0)).unwrap_or(false)
    }
}

pub unsafe fn repair(index: Relation, strategy: pg_sys::BufferAccessStrategy) -> Repaired {
    let st = index::state(index);
    let layout = st.layout;
    let pending = read_meta(index).pending_repair;
    let mut out = Repaired::default();
    let mut store = PgStore::new(index, st.clone(), None);
    let budget = (pg_sys::maintenance_work_mem as usize).saturating_mul(1024).max(1 << 20);
    let mut cache = VectorCache { map: HashMap::new(), bytes: 0, budget };

    // Pass 1: tombstones with their lists, free slots, live rows, centroid.
    let mut dead: HashMap<u64, Vec<u64>> = HashMap::new();
    let mut free: HashSet<u64> = HashSet::new();
    let mut sum = vec![0f64; layout.dim];
    let mut n_live = 0u64;
    let mut scratch = vec![0f32; layout.dim];
    pages::for_each_node_page(index, strategy, pg_sys::BUFFER_LOCK_SHARE, |block, buf| {
        for (off, b) in node_items(pg_sys::BufferGetPage(buf), &layout) {
            let n = NodeRef::new(&layout, b);
            let id = ItemPointer::new(block, off).to_u64();
            if n.is_free() {
                free.insert(id);
            } else if n.is_deleted() {
                dead.insert(id, n.neighbours().map(|p| p.to_u64()).collect());
            } else {
                out.live_rows += n.n_heap_tids() as u64;
                n_live += 1;
                match (n.vector(), n.own_code()) {
                    (Some(v), _) => sum.iter_mut().zip(v.iter()).for_each(|(s, x)| *s += *x as f64),
                    (None, Some(c)) => {
                        st.own_quantizer().decode(c, &mut scratch);
                        sum.iter_mut().zip(&scratch).for_each(|(s, x)| *s += *x as f64);
                    }
                    _ => {}
                }
            }
        }
        delay_point();
    });
    let gone = |id: &u64| dead.contains_key(id) || free.contains(id);

    // Step 1: consolidation, one page at a time (ids collected under the lock, edited after).
    let mut still_linked: HashSet<u64> = HashSet::new();
    if !dead.is_empty() {
        for block in 0..pages::nblocks(index) {
            delay_point();
            let mut affected: Vec<(u64, Vec<u64>, u16)> = Vec::new();
            let buf = pages::read_buffer_strategy(index, block, strategy);
            pg_sys::LockBuffer(buf, pg_sys::BUFFER_LOCK_SHARE as i32);
            if pages::page_type(pg_sys::BufferGetPage(buf)) == pages::PAGE_NODE {
                for (off, b) in node_items(pg_sys::BufferGetPage(buf), &layout) {
                    let n = NodeRef::new(&layout, b);
                    if !n.is_deleted() && n.neighbours().any(|p| gone(&p.to_u64())) {
                        let list = n.neighbours().map(|p| p.to_u64()).collect();
                        affected.push((ItemPointer::new(block, off).to_u64(), list, n.header().version));
                    }
                }
            }
            pg_sys::UnlockReleaseBuffer(buf);
            for (id, list, version) in affected {
                if fill_holes(&mut store, &mut cache, id, &list, version, &dead, &gone) {
                    out.repruned += 1;
                } else {
                    // A concurrent insert changed the list: its tombstones stay linked.
                    still_linked.extend(list.iter().filter(|x| dead.contains_key(x)));
                }
                pgrx::check_for_interrupts!();
            }
        }
    }

    // Step 2: a deleted entry point is replaced by its first live neighbour (lists are in
    // prune-selection order, nearest kept edge first), which keeps searches starting where
    // the graph was built to be entered; only without one, by the live node nearest the
    // live centroid. A centroid pick is worse after drift: the centroid of two modes lies
    // between them and the node nearest it can be poorly linked to both
    // (tests/pgvector/inserts.py, drift: 160 of 3,200 rows unfound at ef_search 200 after
    // VACUUM with the centroid pick).
    let Some(old_entry) = read_meta(index).entry().map(|e| e.to_u64()) else { return finish(index, pending, out) };
    let mut entry = old_entry;
    if n_live > 0 && gone(&old_entry) {
        let neighbour = dead.get(&old_entry).and_then(|l| l.iter().find(|x| !gone(x)).copied());
        if let Some(nb) = neighbour {
            entry = nb;
        } else {
            let centroid: Vec<f32> = sum.iter().map(|s| (*s / n_live as f64) as f32).collect();
            let mut search = SearchState::new(st.prepare(&centroid), old_entry);
            search.run(&mut store, st.ef_construction);
            if let Some((best, _)) = search.next_batch(&mut store, st.ef_construction).into_iter().find(|(id, _)| !gone(id)) {
                entry = best;
            }
        }
    }
    if entry != old_entry {
        write_meta(index, |m| m.set_entry(Some(ItemPointer::from_u64(entry))));
        out.entry_moved = true;
    }
    still_linked.insert(entry);

    // Step 3 (decided here, written with pass 2): tombstones nothing live links to any more.
    let to_free: HashSet<u64> = dead.keys().filter(|id| !still_linked.contains(id)).copied().collect();

    // Step 4: walk from the entry, never through free or to-be-freed slots.
    let mut seen = SlotBits::for_index(index, &layout);
    let blocked = |id: &u64| free.contains(id) || to_free.contains(id);
    seen.insert(entry);
    walk(&mut store, &mut seen, vec![entry], &blocked);

    // Pass 2: mark free, tell the free space map, list unreachable live nodes.
    let mut orphans = Vec::new();
    pages::for_each_node_page(index, strategy, pg_sys::BUFFER_LOCK_EXCLUSIVE, |block, buf| {
        delay_point();
        let state = pg_sys::GenericXLogStart(index);
        let page = pg_sys::GenericXLogRegisterBuffer(state, buf, 0);
        let (mut changed, mut slots) = (false, 0usize);
        for (off, b) in node_items(page, &layout) {
            let id = ItemPointer::new(block, off).to_u64();
            let mut n = NodeMut::new(&layout, b);
            if to_free.contains(&id) && n.set_free() {
                changed = true;
                out.freed += 1;
            }
            if n.as_ref().is_free() {
                slots += 1;
            } else if !n.as_ref().is_deleted() && !seen.contains(id) {
                orphans.push(id);
            }
        }
        if changed {
            pg_sys::GenericXLogFinish(state);
        } else {
            pg_sys::GenericXLogAbort(state);
        }
        if slots > 0 {
            pages::record_free_slots(index, &layout, block, slots);
        }
    });
    pg_sys::FreeSpaceMapVacuum(index);

    out.relinked = relink_orphans(&mut store, entry, orphans, &mut seen, &blocked, Wal::Logged);
    finish(index, pending, out)
}

/// Links each of `orphans` that is still outside `seen` from the nearest node in `seen` a
/// search from `entry` finds, then marks all it reaches (so one link per unreachable
/// part). Returns how many links were made.
pub(super) unsafe fn relink_orphans(
    store: &mut PgStore,
    entry: u64,
    orphans: Vec<u64>,
    seen: &mut SlotBits,
    blocked: &impl Fn(&u64) -> bool,
    wal: Wal,
) -> u64 {
    let st = store.st.clone();
    let mut relinked = 0;
    for u in orphans {
        if seen.contains(u) {
            continue;
        }
        let Some((v, code)) = store.node_vector_and_code(u) else { continue };
        let mut search = SearchState::new(st.prepare(&v), entry);
        search.run(store, st.ef_construction);
        let from = search.next_batch(store, st.ef_construction).into_iter().find(|(id, _)| *id != u && seen.contains(*id));
        if let Some((from, _)) = from {
            links::link(store, ItemPointer::from_u64(from), ItemPointer::from_u64(u), &code, wal);
            relinked += 1;
            seen.insert(u);
            walk(store, seen, vec![u], blocked);
        }
        pgrx::check_for_interrupts!();
    }
    relinked
}

fn finish(index: Relation, pending: u64, out: Repaired) -> Repaired {
    // Events recorded while this repair ran stay pending for the next VACUUM.
    unsafe { write_meta(index, |m| m.pending_repair = m.pending_repair.saturating_sub(pending)) };
    out
}

/// Marks everything reachable from `stack` in `seen`, not expanding `blocked` nodes.
pub(super) fn walk(store: &mut PgStore, seen: &mut SlotBits, mut stack: Vec<u64>, blocked: &impl Fn(&u64) -> bool) {
    let mut popped = 0u32;
    while let Some(id) = stack.pop() {
        popped = popped.wrapping_add(1);
        if popped % 4096 == 0 {
            pgrx::check_for_interrupts!();
        }
        if blocked(&id) {
            continue;
        }
        let Some(list) = store.with_node(id, |n| n.neighbours().map(|p| p.to_u64()).collect::<Vec<_>>()) else { continue };
        for nb in list {
            if !blocked(&nb) && seen.insert(nb) {
                stack.push(nb);
            }
        }
    }
}

/// Fills the holes tombstones leave in live node `id`'s list (`list` at `version`): its live
/// neighbours stay, the tombstones' live neighbours compete for the free slots (alpha
/// pruning). False if the list changed meanwhile.
unsafe fn fill_holes(
    store: &mut PgStore,
    cache: &mut VectorCache,
    id: u64,
    list: &[u64],
    version: u16,
    dead: &HashMap<u64, Vec<u64>>,
    gone: &impl Fn(&u64) -> bool,
) -> bool {
    let st = store.st.clone();
    let mut seen = HashSet::from([id]);
    let kept_ids: Vec<u64> = list.iter().filter(|x| !gone(x) && seen.insert(**x)).copied().collect();
    let mut cands: Vec<u64> = Vec::new();
    for x in list.iter().filter_map(|x| dead.get(x)) {
        cands.extend(x.iter().filter(|y| !gone(y) && seen.insert(**y)));
    }
    let Some((me, _)) = cache.get(store, id).cloned() else { return true };
    let mut data: HashMap<u64, (Vec<f32>, Vec<u8>)> = HashMap::with_capacity(kept_ids.len() + cands.len());
    for c in kept_ids.iter().chain(&cands) {
        if let Some(d) = cache.get(store, *c) {
            data.insert(*c, d.clone());
        }
    }
    let score = |c: &u64| data.get(c).map(|d| (*c, index_distance(st.metric, &me, &d.0)));
    let kept: Vec<(u64, f32)> = kept_ids.iter().filter_map(score).collect();
    let mut scored: Vec<(u64, f32)> = cands.iter().filter_map(score).collect();
    scored.sort_by_key(|c| c.0); // deterministic tie order
    let chosen = fill_prune(&kept, &mut scored, st.alpha, st.layout.m, |a, b| index_distance(st.metric, &data[&a].0, &data[&b].0));
    let refs: Vec<(ItemPointer, Option<&[u8]>)> =
        chosen.iter().map(|(c, _)| (ItemPointer::from_u64(*c), Some(data[c].1.as_slice()))).collect();
    let layout = st.layout;
    pages::modify_item(store.index, ItemPointer::from_u64(id), |b| {
        let mut n = NodeMut::new(&layout, b);
        if n.header().version != version {
            return false;
        }
        n.set_neighbours(&refs);
        true
    })
}
