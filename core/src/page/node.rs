//! The node tuple: one per distinct indexed vector, fixed size per index so that neighbour
//! and heap-TID updates are in-place overwrites (no page reorganisation, simple WAL).
//!
//! ```text
//! offset 0            NodeHeader (12 bytes)
//! 12                  MAX_HEAP_TIDS heap TID slots, 6 bytes each (block u32, offset u16)
//! 12 + 6·T            m neighbour slots, 6 bytes each (same encoding, native endian)
//! align4(..)          vector: dim × f32            (only if store_vector)
//! ...                 own code: own_code_size bytes (only if !store_vector; a finer
//!                     quantizer's code in a two-precision index, else the inline one's)
//! ...                 inline codes: inline_cap × code_size, slot i = code of neighbour i
//! ```
//! Heap TIDs `0..n_heap_tids` are valid and compact: rows whose index vectors are
//! bitwise identical share one node (like pgvector), so duplicates neither crowd each
//! other's neighbour lists nor end up without in-edges.
//! Neighbour slots `0..degree` are valid and compact. Inline codes are valid for slots
//! `0..n_inline` (`n_inline <= min(degree, inline_cap)`), i.e. the first neighbours.
//! Lists are kept in robust-prune selection order everywhere (build, insert, VACUUM): the
//! first m' slots are the degree-m' subgraph (`vsag.search_m`), and under partial
//! redundancy the inline codes go to the edges chosen first.
//! With the full vector stored there is no own code: whoever reads this tuple to score it
//! can compute the exact distance for the same page read.
//! Because tuples start MAXALIGNed and the vector offset is a multiple of 4, `vector()` is
//! zero-copy on real pages; on misaligned buffers it falls back to a copy.

use super::{ItemPointer, MAX_TUPLE};
use bytemuck::{Pod, Zeroable};
use std::borrow::Cow;

/// `NodeHeader::flags` bit: no live heap row is left; keep traversing, never return.
pub const NODE_DELETED: u16 = 1;
/// `NodeHeader::flags` bit (always with `NODE_DELETED`): VACUUM removed every live node's
/// edge to this tombstone, so an insert may overwrite the slot with a new node. Until then
/// it still routes searches that reach it through a stale edge.
pub const NODE_FREE: u16 = 2;

/// Heap rows one node can stand for (pgvector's HNSW uses 10 too). More identical rows
/// get further nodes. At m = 32 this costs 60 bytes per tuple.
pub const MAX_HEAP_TIDS: usize = 10;

const SLOT: usize = 6;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct NodeHeader {
    pub flags: u16,
    /// Valid neighbour slots.
    pub degree: u16,
    /// Valid inline codes (prefix of the slots).
    pub n_inline: u16,
    /// Bumped by the writer on each neighbour rewrite (lets readers detect change).
    pub version: u16,
    /// Valid heap TID slots (prefix).
    pub n_heap_tids: u16,
    pub _pad: u16,
}
const HEADER: usize = std::mem::size_of::<NodeHeader>();
const TIDS_OFF: usize = HEADER;
const SLOTS_OFF: usize = TIDS_OFF + SLOT * MAX_HEAP_TIDS;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayoutError {
    Invalid(String),
    /// Even without inline codes the tuple exceeds a page.
    TooLarge {
        dim: usize,
        m: usize,
        needed: usize,
        limit: usize,
        max_dim: usize,
    },
}
impl std::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayoutError::Invalid(s) => write!(f, "{s}"),
            LayoutError::TooLarge {
                dim,
                m,
                needed,
                limit,
                max_dim,
            } => write!(
                f,
                "a vsag node tuple for {dim} dimensions with m = {m} needs {needed} bytes, \
                 but at most {limit} bytes fit on a page (maximum dimension for this m and \
                 storage is {max_dim})"
            ),
        }
    }
}
impl std::error::Error for LayoutError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeLayout {
    pub dim: usize,
    pub m: usize,
    pub inline_cap: usize,
    pub store_vector: bool,
    /// Bytes of one inline code (and of the own code, unless `own_code_size` differs).
    pub code_size: usize,
    /// Bytes of the node's own code (0 with `store_vector`).
    pub own_code_size: usize,
    /// Exact tuple length to hand to `PageAddItem` (it occupies `maxalign(tuple_size)`).
    pub tuple_size: usize,
    vec_off: usize,
    code_off: usize,
    inline_off: usize,
}

impl NodeLayout {
    /// `redundancy` in 0..=1 asks for `round(redundancy·m)` inline codes; fewer are used
    /// when the tuple would not fit in `MAX_TUPLE`. With `store_vector` the tuple has no
    /// own code (see the module docs); `code_size` then only sizes the inline codes.
    pub fn new(
        dim: usize,
        m: usize,
        redundancy: f32,
        store_vector: bool,
        code_size: usize,
    ) -> Result<NodeLayout, LayoutError> {
        Self::two_precision(dim, m, redundancy, store_vector, code_size, code_size)
    }

    /// [`new`](Self::new) with an own code of `own_code_size` bytes (a finer quantizer than
    /// the inline codes'; ignored with `store_vector`).
    pub fn two_precision(
        dim: usize,
        m: usize,
        redundancy: f32,
        store_vector: bool,
        code_size: usize,
        own_code_size: usize,
    ) -> Result<NodeLayout, LayoutError> {
        if dim == 0 {
            return Err(LayoutError::Invalid(
                "vsag: dimension must be at least 1".into(),
            ));
        }
        if m == 0 || m > 1024 {
            return Err(LayoutError::Invalid(format!(
                "vsag: m must be between 1 and 1024, got {m}"
            )));
        }
        if !(0.0..=1.0).contains(&redundancy) {
            return Err(LayoutError::Invalid(format!(
                "vsag: redundancy must be between 0 and 1, got {redundancy}"
            )));
        }
        let base = Self::with_cap(dim, m, 0, store_vector, code_size, own_code_size);
        if base.tuple_size > MAX_TUPLE {
            let max_dim = Self::max_dim(m, store_vector, |d| code_size_scaled(own_code_size, dim, d));
            return Err(LayoutError::TooLarge {
                dim,
                m,
                needed: base.tuple_size,
                limit: MAX_TUPLE,
                max_dim,
            });
        }
        let want = (redundancy * m as f32).round() as usize;
        let fit = (MAX_TUPLE - base.tuple_size)
            .checked_div(code_size)
            .unwrap_or(want);
        Ok(Self::with_cap(
            dim,
            m,
            want.min(fit).min(m),
            store_vector,
            code_size,
            own_code_size,
        ))
    }

    fn with_cap(
        dim: usize,
        m: usize,
        inline_cap: usize,
        store_vector: bool,
        code_size: usize,
        own_code_size: usize,
    ) -> NodeLayout {
        let own_code_size = if store_vector { 0 } else { own_code_size };
        let vec_off = (SLOTS_OFF + SLOT * m + 3) & !3;
        let code_off = vec_off + if store_vector { 4 * dim } else { 0 };
        let inline_off = code_off + own_code_size;
        let tuple_size = inline_off + inline_cap * code_size;
        NodeLayout {
            dim,
            m,
            inline_cap,
            store_vector,
            code_size,
            own_code_size,
            tuple_size,
            vec_off,
            code_off,
            inline_off,
        }
    }

    /// Largest dimension whose tuple (without inline codes) fits, for error messages and
    /// option validation. `code_size_of` maps a dimension to the quantizer's code size.
    pub fn max_dim(m: usize, store_vector: bool, code_size_of: impl Fn(usize) -> usize) -> usize {
        let fits = |d: usize| {
            let c = code_size_of(d);
            Self::with_cap(d, m, 0, store_vector, c, c).tuple_size <= MAX_TUPLE
        };
        let (mut lo, mut hi) = (0usize, 16 * MAX_TUPLE); // fits(lo) (vacuously for 0), !fits(hi): codes take < 1 byte per dimension
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if fits(mid) {
                lo = mid
            } else {
                hi = mid
            }
        }
        lo
    }

    pub fn tuples_per_page(&self) -> usize {
        super::tuples_per_page(self.tuple_size)
    }

    /// Whether tuples carry the node's own code (only without the full vector).
    pub fn has_own_code(&self) -> bool {
        !self.store_vector
    }

    fn check(&self, len: usize) {
        assert!(
            len >= self.tuple_size,
            "vsag: node tuple of {len} bytes, expected {}",
            self.tuple_size
        );
    }
}

/// Code size at dimension `d` assuming it grows like the given one (per-dim bytes + trailer
/// is all we have in `NodeLayout::new`); used only for the error message's `max_dim`.
fn code_size_scaled(code_size: usize, dim: usize, d: usize) -> usize {
    let trailer = code_size.saturating_sub(dim);
    if code_size >= dim {
        d + trailer
    } else {
        // plus room for a trailer of per-code scalars, so the stated maximum is safe
        (code_size * d).div_ceil(dim.max(1)) + 16
    }
}

/// Reads the 6-byte TID at byte offset `o`.
fn read_ptr(data: &[u8], o: usize) -> ItemPointer {
    let b = &data[o..o + SLOT];
    ItemPointer {
        block: u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
        offset: u16::from_ne_bytes([b[4], b[5]]),
    }
}

/// Read-only view of a node tuple.
#[derive(Clone, Copy)]
pub struct NodeRef<'a> {
    layout: &'a NodeLayout,
    data: &'a [u8],
}

impl<'a> NodeRef<'a> {
    pub fn new(layout: &'a NodeLayout, data: &'a [u8]) -> Self {
        layout.check(data.len());
        NodeRef { layout, data }
    }
    pub fn header(&self) -> NodeHeader {
        bytemuck::pod_read_unaligned(&self.data[..HEADER])
    }
    /// Number of live heap rows this node stands for (0 once VACUUM removed them all).
    pub fn n_heap_tids(&self) -> usize {
        (self.header().n_heap_tids as usize).min(MAX_HEAP_TIDS)
    }
    /// The live heap rows, all with this node's vector.
    pub fn heap_tids(&self) -> impl Iterator<Item = ItemPointer> + 'a {
        let data = self.data;
        (0..self.n_heap_tids()).map(move |i| read_ptr(data, TIDS_OFF + SLOT * i))
    }
    pub fn is_deleted(&self) -> bool {
        self.header().flags & NODE_DELETED != 0
    }
    pub fn is_free(&self) -> bool {
        self.header().flags & NODE_FREE != 0
    }
    pub fn degree(&self) -> usize {
        (self.header().degree as usize).min(self.layout.m)
    }
    pub fn n_inline(&self) -> usize {
        let h = self.header();
        (h.n_inline as usize)
            .min(self.layout.inline_cap)
            .min(h.degree as usize)
    }
    pub fn neighbour(&self, i: usize) -> ItemPointer {
        assert!(i < self.layout.m);
        read_ptr(self.data, SLOTS_OFF + SLOT * i)
    }
    pub fn neighbours(&self) -> impl Iterator<Item = ItemPointer> + 'a {
        let data = self.data;
        (0..self.degree()).map(move |i| read_ptr(data, SLOTS_OFF + SLOT * i))
    }
    /// The full-precision vector, if stored; borrowed when 4-byte aligned.
    pub fn vector(&self) -> Option<Cow<'a, [f32]>> {
        let l = self.layout;
        if !l.store_vector {
            return None;
        }
        let bytes = &self.data[l.vec_off..l.vec_off + 4 * l.dim];
        Some(match bytemuck::try_cast_slice::<u8, f32>(bytes) {
            Ok(v) => Cow::Borrowed(v),
            Err(_) => Cow::Owned(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            ),
        })
    }
    /// The node's own code; `None` when the layout stores the full vector instead.
    pub fn own_code(&self) -> Option<&'a [u8]> {
        let l = self.layout;
        l.has_own_code()
            .then(|| &self.data[l.code_off..l.code_off + l.own_code_size])
    }
    /// Code of neighbour `i`, if stored inline.
    pub fn inline_code(&self, i: usize) -> Option<&'a [u8]> {
        if i >= self.n_inline() {
            return None;
        }
        let l = self.layout;
        let o = l.inline_off + i * l.code_size;
        Some(&self.data[o..o + l.code_size])
    }
}

/// Mutable view of a node tuple (for building tuples and in-place neighbour updates).
pub struct NodeMut<'a> {
    layout: &'a NodeLayout,
    data: &'a mut [u8],
}

impl<'a> NodeMut<'a> {
    pub fn new(layout: &'a NodeLayout, data: &'a mut [u8]) -> Self {
        layout.check(data.len());
        NodeMut { layout, data }
    }
    /// Writes a fresh tuple: header, one heap TID, all other slots invalid, vector
    /// (required iff `store_vector`) and own code. `own_code` is the node's code either way
    /// (callers have it for inline codes anyway) but is stored only if the layout
    /// `has_own_code`. Bytes past `tuple_size` are left alone.
    pub fn init(
        layout: &'a NodeLayout,
        data: &'a mut [u8],
        first_tid: ItemPointer,
        vector: Option<&[f32]>,
        own_code: &[u8],
    ) -> Self {
        layout.check(data.len());
        assert_eq!(
            vector.is_some(),
            layout.store_vector,
            "vector presence must match layout"
        );
        assert!(!layout.has_own_code() || own_code.len() == layout.own_code_size, "own code size");
        assert!(first_tid.is_valid(), "invalid heap TID");
        data[..layout.tuple_size].fill(0);
        let mut n = NodeMut { layout, data };
        n.set_header(NodeHeader {
            n_heap_tids: 1,
            ..Default::default()
        });
        n.write_ptr(TIDS_OFF, first_tid);
        for i in 1..MAX_HEAP_TIDS {
            n.write_ptr(TIDS_OFF + SLOT * i, ItemPointer::INVALID);
        }
        for i in 0..layout.m {
            n.write_slot(i, ItemPointer::INVALID);
        }
        if let Some(v) = vector {
            assert_eq!(v.len(), layout.dim, "vector dimension");
            n.data[layout.vec_off..layout.vec_off + 4 * layout.dim]
                .copy_from_slice(bytemuck::cast_slice(v));
        }
        if layout.has_own_code() {
            n.data[layout.code_off..layout.code_off + layout.own_code_size].copy_from_slice(own_code);
        }
        n
    }
    pub fn as_ref(&self) -> NodeRef<'_> {
        NodeRef {
            layout: self.layout,
            data: self.data,
        }
    }
    pub fn header(&self) -> NodeHeader {
        self.as_ref().header()
    }
    pub fn set_header(&mut self, h: NodeHeader) {
        self.data[..HEADER].copy_from_slice(bytemuck::bytes_of(&h));
    }
    pub fn set_deleted(&mut self, deleted: bool) {
        let mut h = self.header();
        h.flags = if deleted {
            h.flags | NODE_DELETED
        } else {
            h.flags & !NODE_DELETED
        };
        self.set_header(h);
    }
    /// Marks a tombstone reusable (see `NODE_FREE`). Returns false for a live node.
    pub fn set_free(&mut self) -> bool {
        let mut h = self.header();
        if h.flags & NODE_DELETED == 0 {
            return false;
        }
        h.flags |= NODE_FREE;
        self.set_header(h);
        true
    }
    /// Adds a heap row with this node's (bitwise identical) vector. Returns false, changing
    /// nothing, when the node is full or deleted (a deleted node is a tombstone: reviving it
    /// would race with VACUUM's view of it). Does not check for a repeated TID.
    pub fn add_heap_tid(&mut self, tid: ItemPointer) -> bool {
        assert!(tid.is_valid(), "invalid heap TID");
        let mut h = self.header();
        let n = (h.n_heap_tids as usize).min(MAX_HEAP_TIDS);
        if n >= MAX_HEAP_TIDS || h.flags & NODE_DELETED != 0 {
            return false;
        }
        self.write_ptr(TIDS_OFF + SLOT * n, tid);
        h.n_heap_tids = n as u16 + 1;
        self.set_header(h);
        true
    }
    /// VACUUM: keeps the heap TIDs for which `keep` is true (compacting them, order kept)
    /// and flags the node deleted when none remain. Returns (removed, remaining).
    pub fn retain_heap_tids(
        &mut self,
        mut keep: impl FnMut(ItemPointer) -> bool,
    ) -> (usize, usize) {
        let mut h = self.header();
        let n = (h.n_heap_tids as usize).min(MAX_HEAP_TIDS);
        let mut kept = 0;
        for i in 0..n {
            let t = read_ptr(self.data, TIDS_OFF + SLOT * i);
            if keep(t) {
                self.write_ptr(TIDS_OFF + SLOT * kept, t);
                kept += 1;
            }
        }
        for i in kept..n {
            self.write_ptr(TIDS_OFF + SLOT * i, ItemPointer::INVALID);
        }
        h.n_heap_tids = kept as u16;
        if kept == 0 {
            h.flags |= NODE_DELETED;
        }
        self.set_header(h);
        (n - kept, kept)
    }
    fn write_ptr(&mut self, o: usize, p: ItemPointer) {
        self.data[o..o + 4].copy_from_slice(&p.block.to_ne_bytes());
        self.data[o + 4..o + 6].copy_from_slice(&p.offset.to_ne_bytes());
    }
    fn write_slot(&mut self, i: usize, p: ItemPointer) {
        self.write_ptr(SLOTS_OFF + SLOT * i, p);
    }
    fn write_inline(&mut self, i: usize, code: &[u8]) {
        let l = self.layout;
        assert_eq!(code.len(), l.code_size, "inline code size");
        let o = l.inline_off + i * l.code_size;
        self.data[o..o + l.code_size].copy_from_slice(code);
    }
    /// Replaces the whole neighbour list (at most `m`, in inline-priority order). Codes are stored for
    /// the leading entries up to `inline_cap`; the inline prefix stops at the first `None`.
    pub fn set_neighbours(&mut self, list: &[(ItemPointer, Option<&[u8]>)]) {
        let l = *self.layout;
        assert!(list.len() <= l.m, "more than m neighbours");
        let mut n_inline = 0;
        for (i, &(p, code)) in list.iter().enumerate() {
            self.write_slot(i, p);
            if i == n_inline && i < l.inline_cap {
                if let Some(c) = code {
                    self.write_inline(i, c);
                    n_inline += 1;
                }
            }
        }
        for i in list.len()..l.m {
            self.write_slot(i, ItemPointer::INVALID);
        }
        let mut h = self.header();
        h.degree = list.len() as u16;
        h.n_inline = n_inline as u16;
        h.version = h.version.wrapping_add(1);
        self.set_header(h);
    }
    /// Overwrites slot `i` (`i <= degree`; `i == degree` appends). Giving a code for slot
    /// `n_inline` extends the inline prefix; omitting one inside it truncates the prefix.
    pub fn set_neighbour(&mut self, i: usize, p: ItemPointer, code: Option<&[u8]>) {
        let l = *self.layout;
        let mut h = self.header();
        let degree = h.degree as usize;
        assert!(
            i < l.m && i <= degree,
            "slot {i} out of range (degree {degree}, m {})",
            l.m
        );
        self.write_slot(i, p);
        let mut n_inline = h.n_inline as usize;
        match code {
            Some(c) if i < l.inline_cap && i <= n_inline => {
                self.write_inline(i, c);
                n_inline = n_inline.max(i + 1);
            }
            _ if i < n_inline => n_inline = i,
            _ => {}
        }
        h.degree = degree.max(i + 1) as u16;
        h.n_inline = n_inline as u16;
        h.version = h.version.wrapping_add(1);
        self.set_header(h);
    }
}
