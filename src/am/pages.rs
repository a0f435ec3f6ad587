//! Buffers, locks and WAL for vsag pages. The byte formats belong to `vsag_core::page`;
//! this module only moves those bytes in and out of shared buffers.
//!
//! Locking rule (no deadlocks by construction): a backend holds at most one buffer content
//! lock at a time, except while extending the relation, where the relation extension lock
//! is taken first and released before the new buffer is locked.
//! Every change to an existing page goes through generic WAL (`GenericXLog*`); bulk-built
//! pages are WAL-logged as full page images by the build.

use pgrx::pg_sys::{self, Buffer, BlockNumber, Page, Relation};
use vsag_core::page::{ItemPointer, NodeLayout, NodeMut, NodeRef, MAXALIGN};

/// Page types, stored in the special space so a page can be recognised (vsag_verify).
pub const PAGE_META: u16 = 1;
pub const PAGE_PARAM: u16 = 2;
pub const PAGE_NODE: u16 = 3;
pub const META_BLOCK: BlockNumber = 0;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Special {
    pub page_type: u16,
    pub flags: u16,
    pub _reserved: u32,
}

pub unsafe fn init_page(page: Page, page_type: u16) {
    pg_sys::PageInit(page, pg_sys::BLCKSZ as usize, std::mem::size_of::<Special>());
    let sp = pg_sys::PageGetSpecialPointer(page) as *mut Special;
    sp.write(Special { page_type, flags: 0, _reserved: 0 });
}

pub unsafe fn page_type(page: Page) -> u16 {
    if pg_sys::PageIsNew(page) || (*(page as *const pg_sys::PageHeaderData)).pd_special as usize
        != pg_sys::BLCKSZ as usize - std::mem::size_of::<Special>()
    {
        return 0;
    }
    (*(pg_sys::PageGetSpecialPointer(page) as *const Special)).page_type
}

pub unsafe fn read_buffer(index: Relation, block: BlockNumber) -> Buffer {
    read_buffer_fork(index, pg_sys::ForkNumber::MAIN_FORKNUM, block)
}

pub unsafe fn read_buffer_fork(index: Relation, fork: pg_sys::ForkNumber::Type, block: BlockNumber) -> Buffer {
    pg_sys::ReadBufferExtended(index, fork, block, pg_sys::ReadBufferMode::RBM_NORMAL, std::ptr::null_mut())
}

/// A main-fork page read through a buffer access strategy (VACUUM's ring buffer).
pub unsafe fn read_buffer_strategy(index: Relation, block: BlockNumber, strategy: pg_sys::BufferAccessStrategy) -> Buffer {
    pg_sys::ReadBufferExtended(index, pg_sys::ForkNumber::MAIN_FORKNUM, block, pg_sys::ReadBufferMode::RBM_NORMAL, strategy)
}

/// Number of blocks in the main fork.
pub unsafe fn nblocks(index: Relation) -> BlockNumber {
    pg_sys::RelationGetNumberOfBlocksInFork(index, pg_sys::ForkNumber::MAIN_FORKNUM)
}

/// Bytes of item `off` on `page`, or None if the offset is not a used item.
pub unsafe fn item<'a>(page: Page, off: u16) -> Option<&'a mut [u8]> {
    let max = pg_sys::PageGetMaxOffsetNumber(page);
    if off == 0 || off > max {
        return None;
    }
    let id = pg_sys::PageGetItemId(page, off);
    if (*id).lp_flags() != pg_sys::LP_NORMAL {
        return None;
    }
    let len = (*id).lp_len() as usize;
    let p = pg_sys::PageGetItem(page, id) as *mut u8;
    Some(std::slice::from_raw_parts_mut(p, len))
}

/// Run `f` on item `ptr` under a share lock. None if the item does not exist.
/// (A pointer past the end of the relation raises Postgres' own "could not read block"
/// ERROR; checking the size first would cost a system call on every read.)
pub unsafe fn with_item<R>(index: Relation, ptr: ItemPointer, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    with_pinned_item(read_buffer(index, ptr.block), ptr.offset, f)
}

/// `with_item` on an already pinned buffer (e.g. from `recent::read`); releases the pin.
pub unsafe fn with_pinned_item<R>(buf: Buffer, offset: u16, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    pg_sys::LockBuffer(buf, pg_sys::BUFFER_LOCK_SHARE as i32);
    let page = pg_sys::BufferGetPage(buf);
    let r = match page_type(page) {
        PAGE_NODE | PAGE_META | PAGE_PARAM => item(page, offset).map(|b| f(b)),
        _ => None,
    };
    pg_sys::UnlockReleaseBuffer(buf);
    r
}

/// Change item `ptr` in place under an exclusive lock, WAL-logged as a generic record.
/// `f` returns whether it changed anything (nothing is logged otherwise).
pub unsafe fn modify_item(index: Relation, ptr: ItemPointer, f: impl FnOnce(&mut [u8]) -> bool) -> bool {
    let buf = read_buffer(index, ptr.block);
    pg_sys::LockBuffer(buf, pg_sys::BUFFER_LOCK_EXCLUSIVE as i32);
    let state = pg_sys::GenericXLogStart(index);
    let page = pg_sys::GenericXLogRegisterBuffer(state, buf, 0);
    let changed = match item(page, ptr.offset) {
        Some(bytes) => guarded(state, || f(bytes)),
        None => false,
    };
    if changed {
        pg_sys::GenericXLogFinish(state);
    } else {
        pg_sys::GenericXLogAbort(state);
    }
    pg_sys::UnlockReleaseBuffer(buf);
    changed
}

/// Whether an in-place change is WAL-logged: always, except in a build, which WAL-logs
/// every page of the new index afterwards.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Wal {
    Logged,
    Unlogged,
}

/// [`modify_item`], or (`Wal::Unlogged`) the same change only marked dirty.
pub unsafe fn modify_item_as(index: Relation, ptr: ItemPointer, wal: Wal, f: impl FnOnce(&mut [u8]) -> bool) -> bool {
    if wal == Wal::Logged {
        return modify_item(index, ptr, f);
    }
    let buf = read_buffer(index, ptr.block);
    pg_sys::LockBuffer(buf, pg_sys::BUFFER_LOCK_EXCLUSIVE as i32);
    let changed = item(pg_sys::BufferGetPage(buf), ptr.offset).is_some_and(f);
    if changed {
        pg_sys::MarkBufferDirty(buf);
    }
    pg_sys::UnlockReleaseBuffer(buf);
    changed
}

/// Runs `f`; if it panics (a Rust bug or a Postgres ERROR raised inside), the generic WAL
/// record is abandoned before unwinding so no half-built record is ever finished.
pub unsafe fn guarded<R>(state: *mut pg_sys::GenericXLogState, f: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(e) => {
            pg_sys::GenericXLogAbort(state);
            std::panic::resume_unwind(e)
        }
    }
}

unsafe fn add_item(page: Page, bytes: &[u8]) -> u16 {
    let off = pg_sys::PageAddItemExtended(
        page,
        bytes.as_ptr() as pg_sys::Item,
        bytes.len(),
        pg_sys::InvalidOffsetNumber,
        0,
    );
    if off == pg_sys::InvalidOffsetNumber {
        pgrx::error!("vsag: failed to add a {} byte item to an index page", bytes.len());
    }
    off
}

/// `free` is `PageGetFreeSpace`, which already reserves the new line pointer.
pub fn fits(free: usize, len: usize) -> bool {
    free >= len.next_multiple_of(MAXALIGN)
}

/// Appends a node tuple: tries block `hint` first, else extends the relation.
/// Returns where it went and whether a new block was added.
pub unsafe fn append_node(index: Relation, hint: BlockNumber, bytes: &[u8]) -> (ItemPointer, bool) {
    if hint != META_BLOCK && hint != pg_sys::InvalidBlockNumber && hint < nblocks(index) {
        let buf = read_buffer(index, hint);
        pg_sys::LockBuffer(buf, pg_sys::BUFFER_LOCK_EXCLUSIVE as i32);
        let raw = pg_sys::BufferGetPage(buf);
        if page_type(raw) == PAGE_NODE && fits(pg_sys::PageGetFreeSpace(raw), bytes.len()) {
            let state = pg_sys::GenericXLogStart(index);
            let page = pg_sys::GenericXLogRegisterBuffer(state, buf, 0);
            let off = guarded(state, || add_item(page, bytes));
            pg_sys::GenericXLogFinish(state);
            pg_sys::UnlockReleaseBuffer(buf);
            return (ItemPointer::new(hint, off), false);
        }
        pg_sys::UnlockReleaseBuffer(buf);
    }
    let buf = new_buffer(index, pg_sys::ForkNumber::MAIN_FORKNUM);
    let block = pg_sys::BufferGetBlockNumber(buf);
    let state = pg_sys::GenericXLogStart(index);
    let page = pg_sys::GenericXLogRegisterBuffer(state, buf, pg_sys::GENERIC_XLOG_FULL_IMAGE as i32);
    let off = guarded(state, || {
        init_page(page, PAGE_NODE);
        add_item(page, bytes)
    });
    pg_sys::GenericXLogFinish(state);
    pg_sys::UnlockReleaseBuffer(buf);
    (ItemPointer::new(block, off), true)
}

/// Puts a new node tuple where VACUUM freed a slot (pages found through the free space
/// map, see `record_free_slots`), else appends it like `append_node`. The reused slot's
/// version counter keeps counting so a writer that read the old tuple sees a change.
pub unsafe fn place_node(index: Relation, layout: &NodeLayout, hint: BlockNumber, bytes: &[u8]) -> (ItemPointer, bool) {
    for _ in 0..4 {
        let block = pg_sys::GetPageWithFreeSpace(index, layout.tuple_size);
        if block == pg_sys::InvalidBlockNumber || block == META_BLOCK || block >= nblocks(index) {
            break;
        }
        let buf = read_buffer(index, block);
        pg_sys::LockBuffer(buf, pg_sys::BUFFER_LOCK_EXCLUSIVE as i32);
        let raw = pg_sys::BufferGetPage(buf);
        let free: Vec<u16> = match page_type(raw) {
            PAGE_NODE => node_items(raw, layout).filter(|(_, b)| NodeRef::new(layout, b).is_free()).map(|(off, _)| off).collect(),
            _ => Vec::new(),
        };
        if let Some(&off) = free.first() {
            let state = pg_sys::GenericXLogStart(index);
            let page = pg_sys::GenericXLogRegisterBuffer(state, buf, 0);
            guarded(state, || {
                let dst = item(page, off).expect("free slot");
                let version = NodeRef::new(layout, dst).header().version;
                dst[..layout.tuple_size].copy_from_slice(&bytes[..layout.tuple_size]);
                let mut node = NodeMut::new(layout, dst);
                let mut h = node.header();
                h.version = version.wrapping_add(1);
                node.set_header(h);
            });
            pg_sys::GenericXLogFinish(state);
            pg_sys::UnlockReleaseBuffer(buf);
            record_free_slots(index, layout, block, free.len() - 1);
            return (ItemPointer::new(block, off), false);
        }
        pg_sys::UnlockReleaseBuffer(buf);
        // Stale map entry (another insert took the slots): forget it and look again.
        pg_sys::RecordPageWithFreeSpace(index, block, 0);
    }
    append_node(index, hint, bytes)
}

/// Tells the free space map that `block` has `slots` free node slots. The map keeps space
/// in steps of BLCKSZ/256, rounding what is recorded down and what is asked for up: one
/// step more makes a page with a single free slot match a request for one tuple.
pub unsafe fn record_free_slots(index: Relation, layout: &NodeLayout, block: BlockNumber, slots: usize) {
    let step = pg_sys::BLCKSZ as usize / 256;
    let space = if slots == 0 { 0 } else { (slots * layout.tuple_size + step).min(pg_sys::BLCKSZ as usize - 1) };
    pg_sys::RecordPageWithFreeSpace(index, block, space);
}

/// Calls `f(block, buffer)` for every node page in block order, the buffer locked in
/// `lock` mode (read through `strategy` if given); interrupts are checked between pages.
pub unsafe fn for_each_node_page(
    index: Relation,
    strategy: pg_sys::BufferAccessStrategy,
    lock: u32,
    mut f: impl FnMut(BlockNumber, Buffer),
) {
    for block in 0..nblocks(index) {
        pgrx::check_for_interrupts!();
        let buf = read_buffer_strategy(index, block, strategy);
        pg_sys::LockBuffer(buf, lock as i32);
        if page_type(pg_sys::BufferGetPage(buf)) == PAGE_NODE {
            f(block, buf);
        }
        pg_sys::UnlockReleaseBuffer(buf);
    }
}

/// The node tuples of a page: (offset, bytes), skipping anything shorter than a node.
pub unsafe fn node_items<'a>(page: Page, layout: &'a NodeLayout) -> impl Iterator<Item = (u16, &'a mut [u8])> + 'a {
    let max = if pg_sys::PageIsNew(page) { 0 } else { pg_sys::PageGetMaxOffsetNumber(page) };
    (1..=max).filter_map(move |off| item(page, off).filter(|b| b.len() >= layout.tuple_size).map(|b| (off, b)))
}

/// A new, exclusively locked block at the end of `fork`.
pub unsafe fn new_buffer(index: Relation, fork: pg_sys::ForkNumber::Type) -> Buffer {
    pg_sys::LockRelationForExtension(index, pg_sys::ExclusiveLock as pg_sys::LOCKMODE);
    let buf = read_buffer_fork(index, fork, pg_sys::InvalidBlockNumber);
    pg_sys::UnlockRelationForExtension(index, pg_sys::ExclusiveLock as pg_sys::LOCKMODE);
    pg_sys::LockBuffer(buf, pg_sys::BUFFER_LOCK_EXCLUSIVE as i32);
    buf
}

/// Bulk writer used by the build: fills pages in order without WAL; the caller logs the
/// whole range with `log_newpage_range` afterwards.
pub struct BulkWriter {
    index: Relation,
    fork: pg_sys::ForkNumber::Type,
    buf: Buffer,
    page_type: u16,
}

impl BulkWriter {
    pub fn new(index: Relation, fork: pg_sys::ForkNumber::Type) -> Self {
        BulkWriter { index, fork, buf: pg_sys::InvalidBuffer as Buffer, page_type: 0 }
    }

    /// Start a fresh page of `page_type`; returns its block number.
    pub unsafe fn new_page(&mut self, page_type: u16) -> BlockNumber {
        self.finish_page();
        self.buf = new_buffer(self.index, self.fork);
        init_page(pg_sys::BufferGetPage(self.buf), page_type);
        self.page_type = page_type;
        pg_sys::BufferGetBlockNumber(self.buf)
    }

    /// Adds an item, starting a new page of the same type when it does not fit.
    pub unsafe fn add(&mut self, page_type: u16, bytes: &[u8]) -> ItemPointer {
        if self.buf == pg_sys::InvalidBuffer as Buffer
            || self.page_type != page_type
            || !fits(pg_sys::PageGetFreeSpace(pg_sys::BufferGetPage(self.buf)), bytes.len())
        {
            self.new_page(page_type);
        }
        let off = add_item(pg_sys::BufferGetPage(self.buf), bytes);
        ItemPointer::new(pg_sys::BufferGetBlockNumber(self.buf), off)
    }

    pub unsafe fn finish_page(&mut self) {
        if self.buf != pg_sys::InvalidBuffer as Buffer {
            pg_sys::MarkBufferDirty(self.buf);
            pg_sys::UnlockReleaseBuffer(self.buf);
            self.buf = pg_sys::InvalidBuffer as Buffer;
        }
    }
}
