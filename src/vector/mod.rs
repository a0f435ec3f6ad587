//! The `vector` SQL type: a varlena laid out exactly like pgvector's
//! (int32 varlena header, int16 dim, int16 unused, float4 values) so dumps, binary COPY and
//! client libraries interoperate.

pub mod agg;
pub mod cast;
pub mod io;
pub mod ops;

use crate::fmgr::{error, OrRaise};
use pgrx::pg_sys;
use pgrx::PgSqlErrorCode;

/// Bytes before the first element: varlena header + dim + unused.
pub const HEADER: usize = 8;

/// A detoasted `vector` argument. The slice borrows the detoasted copy (or the tuple), which
/// lives in the current memory context for the rest of the call.
pub struct VectorArg {
    ptr: *const u8,
    dim: usize,
}

impl VectorArg {
    /// Detoast a datum known to be a `vector`, checking the stored header is consistent so a
    /// corrupt value errors instead of reading out of bounds.
    pub unsafe fn from_datum(d: pg_sys::Datum) -> Self {
        let v = pg_sys::pg_detoast_datum(d.cast_mut_ptr::<pg_sys::varlena>());
        let total = pgrx::varlena::varsize_any(v);
        let ptr = v as *const u8;
        let dim = if total >= HEADER { i16::from_ne_bytes([*ptr.add(4), *ptr.add(5)]) } else { -1 };
        if dim < 0 || total != HEADER + 4 * dim as usize {
            error(PgSqlErrorCode::ERRCODE_DATA_CORRUPTED, "corrupt vector value: size does not match dimensions");
        }
        // Every constructor enforces 1..=MAX_DIM; anything else was stored by a bug or by hand.
        if dim == 0 || dim as usize > vsag_core::vector::MAX_DIM {
            error(
                PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
                format!("corrupt vector value: {dim} dimensions (must be 1 to {})", vsag_core::vector::MAX_DIM),
            );
        }
        VectorArg { ptr, dim: dim as usize }
    }

    pub unsafe fn arg(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> Self {
        Self::from_datum(crate::fmgr::arg(fcinfo, n))
    }

    #[inline]
    pub fn dim(&self) -> usize {
        self.dim
    }

    #[inline]
    pub fn as_slice(&self) -> &[f32] {
        // SAFETY: the header check above guarantees `dim` floats follow; varlena data of a
        // type with int4 alignment starts 4-byte aligned, so offset 8 is aligned for f32.
        unsafe { std::slice::from_raw_parts(self.ptr.add(HEADER) as *const f32, self.dim) }
    }
}

/// Allocate a `vector` of `dim` elements in the current memory context and let `fill` write them.
pub fn new_vector(dim: usize, fill: impl FnOnce(&mut [f32])) -> pg_sys::Datum {
    // The int16 header cannot hold more; callers validate first, this keeps a bug from
    // writing a value that only fails when read back.
    vsag_core::vector::check_dims(dim).or_raise();
    let size = HEADER + 4 * dim;
    unsafe {
        let p = pg_sys::palloc0(size) as *mut u8;
        pgrx::varlena::set_varsize_4b(p as *mut pg_sys::varlena, size as i32);
        (p.add(4) as *mut i16).write(dim as i16);
        let data = std::slice::from_raw_parts_mut(p.add(HEADER) as *mut f32, dim);
        fill(data);
        pg_sys::Datum::from(p)
    }
}

pub fn vector_from_slice(v: &[f32]) -> pg_sys::Datum {
    new_vector(v.len(), |out| out.copy_from_slice(v))
}

/// Both operands of a binary operator must have the same number of dimensions.
pub fn check_same_dims(a: &VectorArg, b: &VectorArg) {
    if a.dim() != b.dim() {
        error(
            PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
            format!("different vector dimensions {} and {}", a.dim(), b.dim()),
        );
    }
}

/// Enforce a column's declared dimension (`vector(384)`); -1 means unconstrained.
pub fn check_typmod(dim: usize, typmod: i32) {
    if typmod != -1 && dim as i32 != typmod {
        error(
            PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
            format!("expected {typmod} dimensions, not {dim}"),
        );
    }
}
