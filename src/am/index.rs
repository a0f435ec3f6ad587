//! Per-index state shared by the callbacks: the metapage, node layout, quantizer and metric.
//!
//! Everything but the entry point is fixed when the index is built, so it is cached per
//! backend, keyed by the relation's physical file (REINDEX/TRUNCATE get a new file and so a
//! new entry). The entry point and counters are read from the metapage when needed.

use super::pages::{self, META_BLOCK};
use super::recent::RecentBuffers;
use pgrx::pg_sys::{self, Relation};
use pgrx::PgSqlErrorCode;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use vsag_core::distance::Metric;
use vsag_core::page::{ItemPointer, MetaPage, NodeLayout};
use vsag_core::quant::{PreparedQuery, Quantizer};

use crate::fmgr::error;

pub struct IndexState {
    pub layout: NodeLayout,
    pub metric: Metric,
    /// Navigation codes (inline neighbour codes; own codes too unless `fine` is set).
    pub quantizer: Quantizer,
    /// Own codes of a two-precision index: each tuple's finer code for its own distance.
    pub fine: Option<Quantizer>,
    pub alpha: f32,
    pub ef_construction: usize,
    /// Quantization error bound for the selective re-rank (distance units).
    pub error_bound: f32,
    /// The same for estimates from `fine` own codes.
    pub fine_error_bound: f32,
    /// Which shared buffer last held each block (this backend's read hints).
    pub recent: RefCell<RecentBuffers>,
}

impl IndexState {
    /// The quantizer of the tuples' own codes.
    pub fn own_quantizer(&self) -> &Quantizer {
        self.fine.as_ref().unwrap_or(&self.quantizer)
    }
    /// A query (already in index space) prepared for both precisions.
    pub fn prepare(&self, v: &[f32]) -> PreparedQuery {
        let q = self.quantizer.prepare(self.metric, v);
        match &self.fine {
            Some(f) => q.with_fine(f.prepare(self.metric, v)),
            None => q,
        }
    }
    /// The navigation (inline) code of a node whose own code is `own`.
    pub fn nav_code(&self, own: &[u8]) -> Vec<u8> {
        match &self.fine {
            Some(f) => {
                let mut v = vec![0f32; self.layout.dim];
                f.decode(own, &mut v);
                self.quantizer.encode_vec(&v)
            }
            None => own.to_vec(),
        }
    }
}

fn bound(b: f32) -> f32 {
    if b.is_finite() && b >= 0.0 {
        b
    } else {
        f32::INFINITY
    }
}

thread_local! {
    static CACHE: RefCell<HashMap<(u32, u32, u32), Rc<IndexState>>> = RefCell::new(HashMap::new());
}

pub unsafe fn relfile_key(index: Relation) -> (u32, u32, u32) {
    #[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15"))]
    {
        let n = (*index).rd_node;
        (n.spcNode.into(), n.dbNode.into(), n.relNode.into())
    }
    #[cfg(not(any(feature = "pg13", feature = "pg14", feature = "pg15")))]
    {
        let n = (*index).rd_locator;
        (n.spcOid.into(), n.dbOid.into(), n.relNumber.into())
    }
}

/// The metric of the index's operator class, from its distance support function.
pub unsafe fn opclass_metric(index: Relation) -> Metric {
    let proc_oid = pg_sys::index_getprocid(index, 1, 1);
    let name = pg_sys::get_func_name(proc_oid);
    let name = if name.is_null() { "" } else { std::ffi::CStr::from_ptr(name).to_str().unwrap_or("") };
    match name {
        "vector_l2_squared_distance" => Metric::L2,
        "vector_negative_inner_product" => Metric::InnerProduct,
        "cosine_distance" => Metric::Cosine,
        "l1_distance" => Metric::L1,
        other => error(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("vsag: unsupported distance support function \"{other}\""),
        ),
    }
}

pub unsafe fn read_meta(index: Relation) -> MetaPage {
    let meta = pages::with_item(index, ItemPointer::new(META_BLOCK, 1), |b| MetaPage::from_bytes(b));
    match meta {
        Some(Ok(m)) => m,
        Some(Err(e)) => error(PgSqlErrorCode::ERRCODE_INDEX_CORRUPTED, format!("vsag: {e}")),
        None => error(PgSqlErrorCode::ERRCODE_INDEX_CORRUPTED, "vsag: index has no metapage"),
    }
}

/// Overwrite the metapage item (WAL-logged).
pub unsafe fn write_meta(index: Relation, f: impl FnOnce(&mut MetaPage)) {
    pages::modify_item(index, ItemPointer::new(META_BLOCK, 1), |b| {
        let mut m = MetaPage::from_bytes(b).expect("metapage validated by read_meta");
        f(&mut m);
        b[..MetaPage::SIZE].copy_from_slice(m.as_bytes());
        true
    });
}

pub unsafe fn state(index: Relation) -> Rc<IndexState> {
    let key = relfile_key(index);
    if let Some(s) = CACHE.with(|c| c.borrow().get(&key).cloned()) {
        return s;
    }
    let meta = read_meta(index);
    let mut params = Vec::with_capacity(meta.param_len as usize);
    for i in 0..meta.param_npages {
        let ptr = meta.param_item(i);
        match pages::with_item(index, ptr, |b| params.extend_from_slice(b)) {
            Some(()) => {}
            None => error(PgSqlErrorCode::ERRCODE_INDEX_CORRUPTED, "vsag: missing quantizer parameter page"),
        }
    }
    params.truncate(meta.param_len as usize);
    let (nav, fine) = match meta.fine_quantizer {
        0 => (&params[..], None),
        _ => {
            let (a, b) = params.split_at(meta.nav_param_len as usize);
            (a, Some(b))
        }
    };
    let corrupt = |e: vsag_core::quant::QuantError| -> Quantizer {
        error(PgSqlErrorCode::ERRCODE_INDEX_CORRUPTED, format!("vsag: {e}"))
    };
    let quantizer = Quantizer::from_bytes(nav).unwrap_or_else(corrupt);
    let fine = fine.map(|b| Quantizer::from_bytes(b).unwrap_or_else(corrupt));
    let layout = NodeLayout::two_precision(
        meta.dim as usize,
        meta.m as usize,
        meta.inline_cap as f32 / meta.m as f32,
        meta.storage == vsag_core::page::StorageKind::Full as u8,
        quantizer.code_size(),
        fine.as_ref().unwrap_or(&quantizer).code_size(),
    )
    .unwrap_or_else(|e| error(PgSqlErrorCode::ERRCODE_INDEX_CORRUPTED, format!("vsag: {e}")));
    if layout.tuple_size != meta.tuple_size as usize || layout.inline_cap != meta.inline_cap as usize {
        error(PgSqlErrorCode::ERRCODE_INDEX_CORRUPTED, "vsag: metapage layout does not match its parameters");
    }
    let s = Rc::new(IndexState {
        layout,
        metric: meta.metric(),
        quantizer,
        fine,
        alpha: meta.alpha,
        ef_construction: meta.ef_construction as usize,
        error_bound: bound(meta.error_bound),
        fine_error_bound: if meta.fine_quantizer != 0 { bound(meta.fine_error_bound) } else { f32::INFINITY },
        recent: RefCell::default(),
    });
    CACHE.with(|c| c.borrow_mut().insert(key, s.clone()));
    s
}

/// Drop the cached state of an index whose file is being rewritten in place (build).
pub unsafe fn forget(index: Relation) {
    let key = relfile_key(index);
    CACHE.with(|c| c.borrow_mut().remove(&key));
}

/// The query/insert vector in index space: cosine indexes work on unit vectors.
pub fn to_index_space(metric: Metric, v: &[f32]) -> Vec<f32> {
    let mut v = v.to_vec();
    if metric == Metric::Cosine {
        vsag_core::quant::normalize(&mut v);
    }
    v
}

/// Scans return heap TIDs collected earlier without keeping the index pages pinned, so
/// VACUUM may remove those rows (and a new row may reuse the slot) before the executor
/// fetches them; only an MVCC snapshot then sees the right row or none. Non-MVCC
/// snapshots (SnapshotAny, SnapshotDirty, ...) must not scan this index, as in pgvector.
/// Called from `amrescan`, where `xs_snapshot` is set.
pub unsafe fn require_mvcc_snapshot(snapshot: pg_sys::Snapshot) {
    let mvcc = !snapshot.is_null()
        && matches!(
            (*snapshot).snapshot_type,
            pg_sys::SnapshotType::SNAPSHOT_MVCC | pg_sys::SnapshotType::SNAPSHOT_HISTORIC_MVCC
        );
    if !mvcc {
        error(PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED, "non-MVCC snapshots are not supported with vsag");
    }
}
