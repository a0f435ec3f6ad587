//! `vsag_verify(regclass, sample, ef_search)`: walks an index and reports problems as rows
//! instead of failing: bad page headers/types, a bad metapage, tuples of the wrong size,
//! degree or inline counts over the limit, neighbour pointers to missing tuples, heap TIDs
//! pointing past the table or to unused line pointers ('error' rows), and live nodes
//! unreachable from the entry point ('warning': lost in-edges degrade recall, VACUUM relinks
//! them). With `sample > 0` it then runs a self-query for that many indexed rows
//! (`verify_selfquery`) and warns about each row the index does not find. Ends with an
//! 'info' row. The page walk takes only share locks, one buffer at a time.

use super::index;
use super::verify_selfquery::{self_query_check, MAX_EF_SEARCH};
use super::pages::{self, PAGE_META, PAGE_NODE, PAGE_PARAM};
use pgrx::pg_sys::{self, Relation};
use pgrx::prelude::*;
use std::collections::{HashMap, HashSet};
use super::options::kind_name;
use vsag_core::page::{ItemPointer, MetaPage, NodeRef, StorageKind};
use vsag_core::quant::QuantizerKind;

pub type Row = (String, Option<i64>, Option<i32>, String);

struct Report {
    rows: Vec<Row>,
}

impl Report {
    fn error(&mut self, block: Option<u32>, item: Option<u16>, msg: String) {
        self.rows.push(("error".into(), block.map(i64::from), item.map(i32::from), msg));
    }
    /// Graph quality rather than corruption: VACUUM repairs it.
    fn warning(&mut self, block: Option<u32>, item: Option<u16>, msg: String) {
        self.rows.push(("warning".into(), block.map(i64::from), item.map(i32::from), msg));
    }
}

#[pg_extern(sql = false)]
fn vsag_verify(
    index_oid: pg_sys::Oid,
    sample: i32,
    ef_search: i32,
) -> TableIterator<'static, (name!(severity, String), name!(block, Option<i64>), name!(item, Option<i32>), name!(message, String))> {
    if sample < 0 {
        error!("vsag_verify: sample must be 0 or more, not {sample}");
    }
    if !(1..=MAX_EF_SEARCH).contains(&ef_search) {
        error!("vsag_verify: ef_search must be between 1 and {MAX_EF_SEARCH}, not {ef_search}");
    }
    let (mut rows, rows_to_sample) = unsafe {
        let index = pg_sys::index_open(index_oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        require_owner(index_oid);
        let am_ok = (*(*index).rd_rel).relkind == pg_sys::RELKIND_INDEX as std::ffi::c_char
            && (*(*index).rd_rel).relam == pg_sys::get_am_oid(c"vsag".as_ptr(), true);
        let result = if am_ok {
            let heap = pg_sys::relation_open((*(*index).rd_index).indrelid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            let (rows, indexed) = check(index, heap, sample > 0);
            pg_sys::relation_close(heap, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            (rows, Some(indexed))
        } else {
            (vec![("error".to_string(), None, None, "not a vsag index".to_string())], None)
        };
        pg_sys::index_close(index, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        result
    };
    // rows_to_sample is None when the structural check could not run (not a vsag index).
    if let (true, Some(rows_to_sample)) = (sample > 0, rows_to_sample) {
        // Keep the closing summary last.
        let summary = rows.pop();
        rows.extend(self_query_check(index_oid, &rows_to_sample, sample as usize, ef_search));
        rows.extend(summary);
    }
    TableIterator::new(rows)
}

/// Verifying reads every page of the index and its table's rows: the index owner or a
/// superuser only (EXECUTE is also revoked from PUBLIC in the extension script).
pub(super) unsafe fn require_owner(index_oid: pg_sys::Oid) {
    #[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15"))]
    let owner = pg_sys::pg_class_ownercheck(index_oid, pg_sys::GetUserId());
    #[cfg(not(any(feature = "pg13", feature = "pg14", feature = "pg15")))]
    let owner = pg_sys::object_ownercheck(pg_sys::RelationRelationId, index_oid, pg_sys::GetUserId());
    if !owner {
        pg_sys::aclcheck_error(pg_sys::AclResult::ACLCHECK_NOT_OWNER, pg_sys::ObjectType::OBJECT_INDEX, pg_sys::get_rel_name(index_oid));
    }
}

unsafe fn heap_tid_ok(heap: Relation, heap_blocks: u32, tid: ItemPointer, cache: &mut HashMap<u32, u16>) -> Result<(), String> {
    if tid.block >= heap_blocks {
        return Err(format!("heap TID ({},{}) is past the end of the table ({} blocks)", tid.block, tid.offset, heap_blocks));
    }
    let max = *cache.entry(tid.block).or_insert_with(|| {
        let buf = pg_sys::ReadBufferExtended(heap, pg_sys::ForkNumber::MAIN_FORKNUM, tid.block, pg_sys::ReadBufferMode::RBM_NORMAL, std::ptr::null_mut());
        pg_sys::LockBuffer(buf, pg_sys::BUFFER_LOCK_SHARE as i32);
        let page = pg_sys::BufferGetPage(buf);
        let max = if pg_sys::PageIsNew(page) { 0 } else { pg_sys::PageGetMaxOffsetNumber(page) };
        pg_sys::UnlockReleaseBuffer(buf);
        max
    });
    if tid.offset == 0 || tid.offset > max {
        return Err(format!("heap TID ({},{}) points to no line pointer (page has {max})", tid.block, tid.offset));
    }
    Ok(())
}

/// A live row of the index: (heap TID, the node holding it).
pub type IndexedRow = (ItemPointer, ItemPointer);

/// The structural check; with `collect_rows` also every live (heap TID, node) pair, for the
/// sampled self-query check.
unsafe fn check(index: Relation, heap: Relation, collect_rows: bool) -> (Vec<Row>, Vec<IndexedRow>) {
    let mut rep = Report { rows: Vec::new() };
    let mut indexed = Vec::new();
    let nblocks = pages::nblocks(index);
    if nblocks == 0 {
        rep.error(None, None, "index has no pages".into());
        return (rep.rows, indexed);
    }
    // Metapage first: without it nothing else can be interpreted.
    let meta = pages::with_item(index, ItemPointer::new(0, 1), |b| MetaPage::from_bytes(b));
    let meta = match meta {
        Some(Ok(m)) => m,
        Some(Err(e)) => {
            rep.error(Some(0), Some(1), format!("bad metapage: {e}"));
            return (rep.rows, indexed);
        }
        None => {
            rep.error(Some(0), None, "block 0 is not a vsag metapage".into());
            return (rep.rows, indexed);
        }
    };
    let st = index::state(index);
    let layout = st.layout;
    let heap_blocks = pg_sys::RelationGetNumberOfBlocksInFork(heap, pg_sys::ForkNumber::MAIN_FORKNUM);
    let mut heap_cache = HashMap::new();
    let mut nodes: HashMap<u64, (Vec<ItemPointer>, bool)> = HashMap::new();
    let mut live = 0u64;
    let mut deleted = 0u64;
    let mut free = 0u64;
    for block in 0..nblocks {
        let buf = pages::read_buffer(index, block);
        pg_sys::LockBuffer(buf, pg_sys::BUFFER_LOCK_SHARE as i32);
        let page = pg_sys::BufferGetPage(buf);
        let ty = pages::page_type(page);
        let expected = if block == 0 {
            PAGE_META
        } else if block >= meta.param_first_block && block < meta.param_first_block + meta.param_npages {
            PAGE_PARAM
        } else {
            PAGE_NODE
        };
        if pg_sys::PageIsNew(page) {
            // an extension interrupted by a crash leaves an all-zero page: harmless, unused
        } else if ty != expected {
            rep.error(Some(block), None, format!("page type {ty}, expected {expected}"));
        } else if ty == PAGE_NODE {
            for off in 1..=pg_sys::PageGetMaxOffsetNumber(page) {
                let Some(bytes) = pages::item(page, off) else { continue };
                if bytes.len() != layout.tuple_size {
                    rep.error(Some(block), Some(off), format!("tuple of {} bytes, expected {}", bytes.len(), layout.tuple_size));
                    continue;
                }
                let node = NodeRef::new(&layout, bytes);
                let h = node.header();
                if h.degree as usize > layout.m {
                    rep.error(Some(block), Some(off), format!("degree {} over the limit m = {}", h.degree, layout.m));
                }
                if h.n_inline as usize > layout.inline_cap {
                    rep.error(Some(block), Some(off), format!("{} inline codes, capacity {}", h.n_inline, layout.inline_cap));
                }
                let is_deleted = node.is_deleted();
                if node.is_free() {
                    // A freed slot is about to hold another node: it routes nothing.
                    free += 1;
                    deleted += 1;
                    nodes.insert(ItemPointer::new(block, off).to_u64(), (Vec::new(), true));
                    continue;
                }
                if is_deleted {
                    deleted += 1;
                } else {
                    live += 1;
                    if node.n_heap_tids() == 0 {
                        rep.error(Some(block), Some(off), "live node without heap TIDs".into());
                    }
                    for tid in node.heap_tids() {
                        if let Err(e) = heap_tid_ok(heap, heap_blocks, tid, &mut heap_cache) {
                            rep.error(Some(block), Some(off), e);
                        } else if collect_rows {
                            indexed.push((tid, ItemPointer::new(block, off)));
                        }
                    }
                }
                nodes.insert(ItemPointer::new(block, off).to_u64(), (node.neighbours().collect(), is_deleted));
            }
        }
        pg_sys::UnlockReleaseBuffer(buf);
        pgrx::check_for_interrupts!();
    }
    // Edges and reachability.
    for (&id, (nbs, _)) in &nodes {
        for nb in nbs {
            if !nodes.contains_key(&nb.to_u64()) {
                let p = ItemPointer::from_u64(id);
                rep.error(Some(p.block), Some(p.offset), format!("neighbour ({},{}) is not a node tuple", nb.block, nb.offset));
            }
        }
    }
    let mut seen = HashSet::new();
    if let Some(entry) = meta.entry() {
        if nodes.contains_key(&entry.to_u64()) {
            let mut stack = vec![entry.to_u64()];
            seen.insert(entry.to_u64());
            while let Some(id) = stack.pop() {
                for nb in &nodes[&id].0 {
                    let k = nb.to_u64();
                    if nodes.contains_key(&k) && seen.insert(k) {
                        stack.push(k);
                    }
                }
            }
        } else {
            rep.error(Some(entry.block), Some(entry.offset), "entry point is not a node tuple".into());
        }
    } else if !nodes.is_empty() {
        rep.error(Some(0), Some(1), format!("no entry point but {} nodes", nodes.len()));
    }
    let mut unreachable = 0u64;
    for (&id, (_, is_deleted)) in &nodes {
        if !is_deleted && !seen.contains(&id) {
            unreachable += 1;
            if unreachable <= 20 {
                let p = ItemPointer::from_u64(id);
                rep.warning(Some(p.block), Some(p.offset), "live node unreachable from the entry point (VACUUM relinks it)".into());
            }
        }
    }
    if unreachable > 20 {
        rep.warning(None, None, format!("{unreachable} live nodes unreachable in all"));
    }
    let errors = rep.rows.iter().filter(|r| r.0 == "error").count();
    let free = if free > 0 { format!(", {free} of them free") } else { String::new() };
    let pending = match meta.pending_repair {
        0 => String::new(),
        n => format!(", {n} repair events pending for VACUUM"),
    };
    rep.rows.push(("info".into(), None, None, codes_summary(&meta, nodes.len())));
    rep.rows.push((
        "info".into(),
        None,
        None,
        format!("{nblocks} pages, {} nodes ({live} live, {deleted} deleted{free}), {unreachable} unreachable, {errors} problems{pending}", nodes.len()),
    ));
    (rep.rows, indexed)
}

/// Which codes the index holds (`quantizer = auto` decides at build time, by measurement).
fn codes_summary(meta: &MetaPage, nodes: usize) -> String {
    let name = |k: u8| QuantizerKind::from_u8(k).map_or("none", kind_name).trim_matches('\'');
    let own = match meta.fine_quantizer {
        0 => String::new(),
        k => format!(", own codes {}", name(k)),
    };
    let vectors = if meta.storage == StorageKind::Full as u8 { "in the index" } else { "in the table" };
    // Codes are trained once, at CREATE INDEX: an index created on an empty table keeps
    // untrained codes (default ranges) until it is rebuilt.
    let trained = match meta.trained_rows {
        0 if nodes > 0 => "; codes not trained on this table's rows (REINDEX trains them)".to_string(),
        0 => String::new(),
        n => format!("; trained on {n} rows"),
    };
    format!(
        "codes: navigation {} (inline for {} of {} neighbours){own}; vectors {vectors}{trained}",
        name(meta.quantizer),
        meta.inline_cap,
        meta.m
    )
}
