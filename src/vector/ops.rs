//! Distance functions/operators, element-wise arithmetic, comparisons (for the btree
//! opclass) and the small utility functions (`vector_dims`, `vector_norm`, `l2_normalize`).

use super::{check_same_dims, new_vector, VectorArg};
use crate::fmgr::{error, finfo};
use pgrx::pg_guard;
use pgrx::pg_sys::{Datum, FunctionCallInfo};
use pgrx::PgSqlErrorCode;
use std::cmp::Ordering;
use vsag_core::distance;

finfo!(
    vector_l2_distance, vector_l2_squared_distance, vector_inner_product,
    vector_negative_inner_product, vector_cosine_distance, vector_l1_distance,
    vector_dims, vector_norm, vector_l2_normalize, vector_add, vector_sub, vector_mul,
    vector_lt, vector_le, vector_eq, vector_ne, vector_ge, vector_gt, vector_cmp,
);

unsafe fn two(fcinfo: FunctionCallInfo) -> (VectorArg, VectorArg) {
    let a = VectorArg::arg(fcinfo, 0);
    let b = VectorArg::arg(fcinfo, 1);
    check_same_dims(&a, &b);
    (a, b)
}

fn f8(x: f64) -> Datum {
    Datum::from(x.to_bits())
}

macro_rules! distance_fn {
    ($name:ident, |$a:ident, $b:ident| $e:expr) => {
        #[pg_guard]
        #[no_mangle]
        pub unsafe extern "C-unwind" fn $name(fcinfo: FunctionCallInfo) -> Datum {
            let (va, vb) = two(fcinfo);
            let ($a, $b) = (va.as_slice(), vb.as_slice());
            f8($e)
        }
    };
}

distance_fn!(vector_l2_distance, |a, b| (distance::l2_squared(a, b) as f64).sqrt());
distance_fn!(vector_l2_squared_distance, |a, b| distance::l2_squared(a, b) as f64);
distance_fn!(vector_inner_product, |a, b| distance::dot(a, b) as f64);
distance_fn!(vector_negative_inner_product, |a, b| -(distance::dot(a, b) as f64));
distance_fn!(vector_cosine_distance, |a, b| distance::cosine_distance(a, b));
distance_fn!(vector_l1_distance, |a, b| distance::l1(a, b) as f64);

#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn vector_dims(fcinfo: FunctionCallInfo) -> Datum {
    Datum::from(VectorArg::arg(fcinfo, 0).dim() as i32)
}

fn norm_f64(v: &[f32]) -> f64 {
    // Accumulate in double: vector_norm is a user-facing number, not a hot-path kernel.
    v.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>().sqrt()
}

#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn vector_norm(fcinfo: FunctionCallInfo) -> Datum {
    f8(norm_f64(VectorArg::arg(fcinfo, 0).as_slice()))
}

#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn vector_l2_normalize(fcinfo: FunctionCallInfo) -> Datum {
    let v = VectorArg::arg(fcinfo, 0);
    let norm = norm_f64(v.as_slice());
    new_vector(v.dim(), |out| {
        // A zero vector has no direction; it stays zero rather than becoming NaN.
        if norm > 0.0 {
            for (o, &x) in out.iter_mut().zip(v.as_slice()) {
                *o = (x as f64 / norm) as f32;
            }
        }
    })
}

/// Element-wise arithmetic; overflow to infinity (or underflow of a product) is an error,
/// because vectors never hold non-finite values.
unsafe fn elementwise(fcinfo: FunctionCallInfo, op: fn(f32, f32) -> f32, is_mul: bool) -> Datum {
    let (a, b) = two(fcinfo);
    new_vector(a.dim(), |out| {
        for ((o, &x), &y) in out.iter_mut().zip(a.as_slice()).zip(b.as_slice()) {
            let r = op(x, y);
            if r.is_infinite() {
                error(PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, "value out of range: overflow");
            }
            if is_mul && r == 0.0 && x != 0.0 && y != 0.0 {
                error(PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, "value out of range: underflow");
            }
            *o = r;
        }
    })
}

#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn vector_add(fcinfo: FunctionCallInfo) -> Datum {
    elementwise(fcinfo, |x, y| x + y, false)
}

#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn vector_sub(fcinfo: FunctionCallInfo) -> Datum {
    elementwise(fcinfo, |x, y| x - y, false)
}

#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn vector_mul(fcinfo: FunctionCallInfo) -> Datum {
    elementwise(fcinfo, |x, y| x * y, true)
}

/// Total order for btree: element by element, then shorter first (as pgvector does).
/// Elements are finite, so partial_cmp never fails.
pub fn compare(a: &[f32], b: &[f32]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        match x.partial_cmp(y).unwrap_or(Ordering::Equal) {
            Ordering::Equal => continue,
            o => return o,
        }
    }
    a.len().cmp(&b.len())
}

unsafe fn cmp_args(fcinfo: FunctionCallInfo) -> Ordering {
    let a = VectorArg::arg(fcinfo, 0);
    let b = VectorArg::arg(fcinfo, 1);
    compare(a.as_slice(), b.as_slice())
}

macro_rules! cmp_fn {
    ($name:ident, $pred:expr) => {
        #[pg_guard]
        #[no_mangle]
        pub unsafe extern "C-unwind" fn $name(fcinfo: FunctionCallInfo) -> Datum {
            let pred: fn(Ordering) -> bool = $pred;
            Datum::from(pred(cmp_args(fcinfo)))
        }
    };
}

cmp_fn!(vector_lt, |o| o == Ordering::Less);
cmp_fn!(vector_le, |o| o != Ordering::Greater);
cmp_fn!(vector_eq, |o| o == Ordering::Equal);
cmp_fn!(vector_ne, |o| o != Ordering::Equal);
cmp_fn!(vector_ge, |o| o != Ordering::Less);
cmp_fn!(vector_gt, |o| o == Ordering::Greater);

#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn vector_cmp(fcinfo: FunctionCallInfo) -> Datum {
    Datum::from(cmp_args(fcinfo) as i32)
}
