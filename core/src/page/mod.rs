//! On-disk format of the vsag index: page-fit arithmetic, the metapage, parameter pages and
//! the fixed-size node tuple (in `node`). This module owns every byte offset; the Postgres
//! shell only copies these bytes into buffers with `PageAddItem` and friends.
//!
//! Block 0 is the metapage. The quantizer parameters follow in `param_npages` consecutive
//! blocks starting at `param_first_block`, one item of at most `MAX_TUPLE` bytes per page
//! (see [`param_chunks`]); concatenating the items in block order gives the bytes for
//! `Quantizer::from_bytes`. Parameters of at most `META_PARAM_ROOM` bytes are instead the
//! metapage's second item (`param_first_block` 0, see [`MetaPage::param_item`]), which saves
//! the index a page. Node tuples live on the remaining pages.
//!
//! Multi-byte fields are native-endian (Postgres pages are never portable across
//! architectures); the quantizer's own parameter bytes are little-endian.

pub mod node;

pub use node::{
    LayoutError, NodeHeader, NodeLayout, NodeMut, NodeRef, MAX_HEAP_TIDS, NODE_DELETED,
};

use crate::distance::Metric;
use crate::quant::QuantizerKind;
use bytemuck::{Pod, Zeroable};

pub const BLCKSZ: usize = 8192;
/// `SizeOfPageHeaderData`.
pub const PAGE_HEADER_SIZE: usize = 24;
/// `sizeof(ItemIdData)`: one line pointer per item.
pub const ITEM_ID_SIZE: usize = 4;
pub const MAXALIGN: usize = 8;
/// Special space the index reserves on every page (e.g. a page-type tag and flags).
pub const SPECIAL_SIZE: usize = 8;

pub const fn maxalign(n: usize) -> usize {
    (n + MAXALIGN - 1) & !(MAXALIGN - 1)
}

/// Largest tuple `PageAddItem` accepts on an empty page with our special space: the free
/// space is `BLCKSZ - header - special - one line pointer`, and the tuple occupies its
/// MAXALIGNed size. 8152 bytes with the constants above.
pub const MAX_TUPLE: usize =
    (BLCKSZ - PAGE_HEADER_SIZE - maxalign(SPECIAL_SIZE) - ITEM_ID_SIZE) & !(MAXALIGN - 1);

/// How many tuples of `tuple_size` bytes fit on one empty page.
pub const fn tuples_per_page(tuple_size: usize) -> usize {
    (BLCKSZ - PAGE_HEADER_SIZE - maxalign(SPECIAL_SIZE)) / (maxalign(tuple_size) + ITEM_ID_SIZE)
}

/// Where node `i` lands when a bulk build writes fixed-size node tuples densely, `per_page`
/// (= `NodeLayout::tuples_per_page`) to a page from `first_block`: lets the build know
/// every node's TID before writing any neighbour list.
pub const fn sequential_tid(first_block: u32, per_page: usize, i: usize) -> ItemPointer {
    ItemPointer {
        block: first_block + (i / per_page) as u32,
        offset: (i % per_page) as u16 + 1,
    }
}

/// A heap or index tuple address (Postgres `ItemPointerData`). Offsets are 1-based in
/// Postgres; `INVALID` (block `u32::MAX`) marks an empty neighbour slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemPointer {
    pub block: u32,
    pub offset: u16,
}

impl ItemPointer {
    pub const INVALID: ItemPointer = ItemPointer {
        block: u32::MAX,
        offset: 0,
    };

    pub const fn new(block: u32, offset: u16) -> Self {
        ItemPointer { block, offset }
    }
    pub const fn is_valid(self) -> bool {
        self.block != u32::MAX
    }
    /// Packs into the opaque u64 node id used by `graph` (`block << 16 | offset`), which
    /// orders like the pointer itself.
    pub const fn to_u64(self) -> u64 {
        ((self.block as u64) << 16) | self.offset as u64
    }
    pub const fn from_u64(v: u64) -> Self {
        ItemPointer {
            block: (v >> 16) as u32,
            offset: v as u16,
        }
    }
}

/// Metric codes stored in the metapage.
pub fn metric_to_u8(m: Metric) -> u8 {
    match m {
        Metric::L2 => 1,
        Metric::InnerProduct => 2,
        Metric::Cosine => 3,
        Metric::L1 => 4,
    }
}
pub fn metric_from_u8(v: u8) -> Option<Metric> {
    match v {
        1 => Some(Metric::L2),
        2 => Some(Metric::InnerProduct),
        3 => Some(Metric::Cosine),
        4 => Some(Metric::L1),
        _ => None,
    }
}

/// Whether node tuples carry the full-precision vector (exact re-ranking without the heap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum StorageKind {
    CodesOnly = 0,
    Full = 1,
}
impl StorageKind {
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(StorageKind::CodesOnly),
            1 => Some(StorageKind::Full),
            _ => None,
        }
    }
}

pub const META_MAGIC: u32 = 0x5653_4147; // "VSAG"
/// 2: heap TID array per node (`MAX_HEAP_TIDS`), no own code with full vectors.
/// 3: optional fine quantizer for own codes (version 2 pages read as "none").
pub const META_VERSION: u32 = 3;

/// Contents of the metapage's single item (96 bytes). `repr(C)` with explicit padding so
/// it is `Pod`; read it with [`MetaPage::from_bytes`] (copies, so page alignment is moot).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct MetaPage {
    pub magic: u32,
    pub version: u32,
    pub dim: u32,
    /// [`metric_to_u8`].
    pub metric: u8,
    /// `QuantizerKind as u8`.
    pub quantizer: u8,
    /// `StorageKind as u8`.
    pub storage: u8,
    /// `QuantizerKind as u8` of the own codes of a two-precision index; 0 = none (own codes,
    /// if any, use `quantizer`).
    pub fine_quantizer: u8,
    pub m: u16,
    pub ef_construction: u16,
    pub inline_cap: u16,
    pub _pad1: u16,
    pub alpha: f32,
    /// `NodeLayout::tuple_size`, checked against a layout recomputed from the fields above.
    pub tuple_size: u32,
    /// Entry point; `entry_block == u32::MAX` while the index is empty.
    pub entry_block: u32,
    pub entry_offset: u16,
    pub _pad2: u16,
    pub param_first_block: u32,
    pub param_npages: u32,
    /// Byte length of the serialised quantizer parameters.
    pub param_len: u32,
    /// Hint: last block that had room for a node tuple (inserts try it first).
    pub insert_block: u32,
    pub node_count: u64,
    /// Quantization error bound (distance units) learned at build time: the selective
    /// re-rank skips candidates whose estimate minus this cannot enter the top results.
    pub error_bound: f32,
    /// Rows the quantizers were trained on (0: an empty table, or an index written before
    /// this was recorded, when it was padding).
    pub trained_rows: u32,
    /// With `fine_quantizer`: the first `nav_param_len` parameter bytes are `quantizer`'s,
    /// the rest the fine quantizer's.
    pub nav_param_len: u32,
    /// `error_bound` of the fine quantizer's estimates.
    pub fine_error_bound: f32,
    /// Events since the last graph repair that may have left the graph worse (nodes that
    /// lost their last row, back-links an insert could not write). VACUUM repairs only
    /// when it is non-zero. Zero in indexes written before it existed (was reserved).
    pub pending_repair: u64,
    pub reserved: [u64; 1],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaError {
    Short(usize),
    BadMagic(u32),
    BadVersion(u32),
    BadField(&'static str),
}
impl std::fmt::Display for MetaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetaError::Short(n) => write!(f, "vsag metapage item too short ({n} bytes)"),
            MetaError::BadMagic(m) => write!(f, "not a vsag index (magic {m:#x})"),
            MetaError::BadVersion(v) => write!(f, "unsupported vsag index format version {v}"),
            MetaError::BadField(what) => write!(f, "corrupt vsag metapage: {what}"),
        }
    }
}
impl std::error::Error for MetaError {}

impl MetaPage {
    pub const SIZE: usize = std::mem::size_of::<MetaPage>();

    /// Fills the format fields; the caller sets `ef_construction`, `alpha`, the parameter
    /// page location, entry point, counts and `error_bound` (default: infinite).
    pub fn new(metric: Metric, quantizer: QuantizerKind, layout: &NodeLayout) -> MetaPage {
        MetaPage {
            magic: META_MAGIC,
            version: META_VERSION,
            dim: layout.dim as u32,
            metric: metric_to_u8(metric),
            quantizer: quantizer as u8,
            storage: if layout.store_vector {
                StorageKind::Full
            } else {
                StorageKind::CodesOnly
            } as u8,
            m: layout.m as u16,
            inline_cap: layout.inline_cap as u16,
            tuple_size: layout.tuple_size as u32,
            entry_block: u32::MAX,
            // Filter off until the build measures a bound (0 would skip nearly everything).
            error_bound: f32::INFINITY,
            ..Zeroable::zeroed()
        }
    }
    pub fn as_bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
    /// Copies out of a (possibly unaligned) page item and checks magic, version and enums.
    pub fn from_bytes(b: &[u8]) -> Result<MetaPage, MetaError> {
        if b.len() < Self::SIZE {
            return Err(MetaError::Short(b.len()));
        }
        let m: MetaPage = bytemuck::pod_read_unaligned(&b[..Self::SIZE]);
        if m.magic != META_MAGIC {
            return Err(MetaError::BadMagic(m.magic));
        }
        if m.version != META_VERSION && m.version != 2 {
            return Err(MetaError::BadVersion(m.version));
        }
        if metric_from_u8(m.metric).is_none() {
            return Err(MetaError::BadField("metric"));
        }
        if QuantizerKind::from_u8(m.quantizer).is_none() {
            return Err(MetaError::BadField("quantizer"));
        }
        if m.fine_quantizer != 0 && (QuantizerKind::from_u8(m.fine_quantizer).is_none() || m.nav_param_len > m.param_len) {
            return Err(MetaError::BadField("fine quantizer"));
        }
        if StorageKind::from_u8(m.storage).is_none() {
            return Err(MetaError::BadField("storage"));
        }
        if m.dim == 0 || m.m == 0 {
            return Err(MetaError::BadField("dim/m"));
        }
        Ok(m)
    }
    pub fn metric(&self) -> Metric {
        metric_from_u8(self.metric).expect("validated metric")
    }
    pub fn entry(&self) -> Option<ItemPointer> {
        let p = ItemPointer::new(self.entry_block, self.entry_offset);
        p.is_valid().then_some(p)
    }
    pub fn set_entry(&mut self, p: Option<ItemPointer>) {
        let p = p.unwrap_or(ItemPointer::INVALID);
        self.entry_block = p.block;
        self.entry_offset = p.offset;
    }
}

/// Parameters up to this size share block 0 with the metapage item (both MAXALIGNed, two
/// line pointers).
pub const META_PARAM_ROOM: usize = (BLCKSZ - PAGE_HEADER_SIZE - maxalign(SPECIAL_SIZE) - 2 * ITEM_ID_SIZE
    - maxalign(MetaPage::SIZE))
    & !(MAXALIGN - 1);

impl MetaPage {
    /// Decides where `len` parameter bytes go: on the metapage when they fit there, else on
    /// pages of their own from block 1.
    pub fn place_params(&mut self, len: usize) {
        self.param_len = len as u32;
        (self.param_first_block, self.param_npages) = match len {
            1..=META_PARAM_ROOM => (0, 1),
            _ => (1, param_pages_needed(len) as u32),
        };
    }
    /// Where parameter item `i` is (the items concatenate to the parameter bytes).
    pub fn param_item(&self, i: u32) -> ItemPointer {
        match self.param_first_block {
            0 => ItemPointer { block: 0, offset: 2 + i as u16 },
            b => ItemPointer { block: b + i, offset: 1 },
        }
    }
    /// The first block after the metapage and the parameter pages: where a bulk build
    /// starts writing nodes.
    pub fn first_node_block(&self) -> u32 {
        match self.param_first_block {
            0 => 1,
            b => b + self.param_npages,
        }
    }
}

/// Number of parameter pages needed for `len` bytes of quantizer parameters.
pub const fn param_pages_needed(len: usize) -> usize {
    len.div_ceil(MAX_TUPLE)
}

/// The items to write, one per parameter page, in block order.
pub fn param_chunks(bytes: &[u8]) -> std::slice::Chunks<'_, u8> {
    bytes.chunks(MAX_TUPLE)
}

#[cfg(test)]
mod tests;
