//! Recent-buffer hints for the search's page reads (issue 9: no second buffer-table lookup,
//! CPU prefetch of tuple memory). Per backend and index, a small direct-mapped table remembers
//! which shared buffer last held each block, so that
//! - a read pins it with `ReadRecentBuffer` (a check of that one buffer's tag) instead of
//!   hashing into the shared buffer table under a partition lock, and
//! - a prefetch can pull a node's tuple into the CPU cache before the search expands it,
//!   without pinning anything.
//! A hint is only a guess: a stale one costs a failed tag check and the ordinary lookup, and a
//! prefetch of the wrong memory costs nothing but bandwidth (prefetches never fault).

use pgrx::pg_sys::{self, BlockNumber, Buffer, Relation};
use vsag_core::page::MAXALIGN;

/// Upper bound on slots (8 bytes each): 512 kB per backend and index at most.
const MAX_SLOTS: usize = 1 << 16;
const LINE: usize = 64;
/// Lines of a tuple prefetched from its start: the search reads a node's neighbour list and
/// inline codes front to back, and once it runs the hardware prefetcher streams the rest
/// (all of a 2 kB tuple was slower than the first 768 bytes on minilm-100k, 1-bit codes).
const HEAD_LINES: usize = 12;

#[derive(Default)]
pub struct RecentBuffers {
    /// (block + 1, buffer); 0 = empty. Allocated on first use.
    slots: Vec<(u32, Buffer)>,
}

impl RecentBuffers {
    fn get(&self, block: BlockNumber) -> Option<Buffer> {
        let s = *self.slots.get(block as usize & self.slots.len().wrapping_sub(1))?;
        (s.0 == block.wrapping_add(1)).then_some(s.1)
    }

    fn set(&mut self, block: BlockNumber, buf: Buffer) {
        if self.slots.is_empty() {
            // As many slots as shared buffers (an index cannot have more pages resident),
            // within [1k, MAX_SLOTS].
            let n = unsafe { pg_sys::NBuffers }.max(1) as usize;
            let n = n.next_power_of_two().clamp(1 << 10, MAX_SLOTS);
            if self.slots.try_reserve_exact(n).is_err() {
                return;
            }
            self.slots.resize(n, (0, 0));
        }
        let i = block as usize & (self.slots.len() - 1);
        self.slots[i] = (block.wrapping_add(1), buf);
    }
}

#[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15"))]
unsafe fn locator(index: Relation) -> pg_sys::RelFileNode {
    (*index).rd_node
}
#[cfg(not(any(feature = "pg13", feature = "pg14", feature = "pg15")))]
unsafe fn locator(index: Relation) -> pg_sys::RelFileLocator {
    (*index).rd_locator
}

/// Pins main-fork `block` (as `ReadBuffer` does), through the hint when it is still right.
pub unsafe fn read(index: Relation, block: BlockNumber, hints: &std::cell::RefCell<RecentBuffers>) -> Buffer {
    #[cfg(not(feature = "pg13"))]
    if let Some(b) = hints.borrow().get(block) {
        if pg_sys::ReadRecentBuffer(locator(index), pg_sys::ForkNumber::MAIN_FORKNUM, block, b) {
            return b;
        }
    }
    let b = super::pages::read_buffer(index, block);
    // Local (temporary-table) buffers are negative: not hinted.
    if b > 0 {
        hints.borrow_mut().set(block, b);
    }
    b
}

/// Gets node tuple (`block`, `offset`) of `size` bytes on its way to the CPU cache. Without a
/// hint for its block, `PrefetchBuffer` starts the read of a page not in shared buffers (and
/// tells where a resident one is). A stale hint skips that: the page is then read on demand.
pub unsafe fn prefetch(index: Relation, block: BlockNumber, offset: u16, size: usize, hints: &std::cell::RefCell<RecentBuffers>) {
    let hinted = hints.borrow().get(block);
    let buf = match hinted {
        Some(b) => b,
        None => {
            let r = pg_sys::PrefetchBuffer(index, pg_sys::ForkNumber::MAIN_FORKNUM, block);
            if r.recent_buffer > 0 {
                hints.borrow_mut().set(block, r.recent_buffer);
            }
            r.recent_buffer
        }
    };
    if buf > 0 {
        prefetch_node(pg_sys::BufferGetBlock(buf) as *const u8, offset, size);
    }
}

/// Prefetches the page header, the special space and the first `HEAD_LINES` of node tuple
/// `offset`. Where it lies follows from the page format without reading the (unpinned)
/// page: node pages hold only tuples of one size, added in offset order below the special
/// space and overwritten in place, never moved. A wrong guess only wastes the prefetches.
unsafe fn prefetch_node(page: *const u8, offset: u16, size: usize) {
    let special = pg_sys::BLCKSZ as usize - std::mem::size_of::<super::pages::Special>().next_multiple_of(MAXALIGN);
    let Some(start) = special.checked_sub(offset as usize * size.next_multiple_of(MAXALIGN)) else { return };
    prefetch_line(page);
    let mut at = start & !(LINE - 1);
    while at < start + size.min(HEAD_LINES * LINE) {
        prefetch_line(page.add(at));
        at += LINE;
    }
    prefetch_line(page.add(pg_sys::BLCKSZ as usize - LINE));
}
#[inline(always)]
fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
