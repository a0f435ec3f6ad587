//! `avg(vector)`: the transition state is a `double precision[]` of `[count, sum_1..sum_d]`
//! (summing in double keeps long averages accurate). `sum(vector)` needs no state type: it
//! folds with `vector_add`. Both are parallel-safe through their combine functions.

use super::{new_vector, VectorArg};
use crate::fmgr::{arg, error, finfo, OrRaise};
use vsag_core::vector::check_dims;
use pgrx::pg_guard;
use pgrx::pg_sys::{self, Datum, FunctionCallInfo};
use pgrx::PgSqlErrorCode;

finfo!(vector_accum, vector_combine, vector_avg);

/// The transition state, validated: the aggregate itself only builds `{0}` (no row yet) or
/// `{count, sum_1..sum_d}`, but all three functions are callable from SQL with any array.
unsafe fn read_state(d: Datum) -> Vec<f64> {
    let arr = pg_sys::pg_detoast_datum(d.cast_mut_ptr()) as *mut pg_sys::ArrayType;
    if (*arr).elemtype != pg_sys::FLOAT8OID || (*arr).ndim > 1 {
        error(PgSqlErrorCode::ERRCODE_DATA_EXCEPTION, "vector aggregate state must be a 1-D double precision[]");
    }
    let mut elems: *mut Datum = std::ptr::null_mut();
    let mut nulls: *mut bool = std::ptr::null_mut();
    let mut n: i32 = 0;
    pg_sys::deconstruct_array(arr, pg_sys::FLOAT8OID, 8, true, b'd' as std::ffi::c_char, &mut elems, &mut nulls, &mut n);
    let n = n.max(0) as usize;
    if n > 0 && std::slice::from_raw_parts(nulls, n).iter().any(|&x| x) {
        error(PgSqlErrorCode::ERRCODE_DATA_EXCEPTION, "vector aggregate state must not contain nulls");
    }
    let state: Vec<f64> =
        if n == 0 { Vec::new() } else { std::slice::from_raw_parts(elems, n).iter().map(|d| f64::from_bits(d.value() as u64)).collect() };
    check_state(&state);
    state
}

fn bad_state(why: &str) -> ! {
    error(PgSqlErrorCode::ERRCODE_DATA_EXCEPTION, format!("invalid vector aggregate state: {why}"))
}

fn check_state(state: &[f64]) {
    match state {
        [] => bad_state("empty array (expected {count, sum_1, ..., sum_n})"),
        [count] if *count != 0.0 => bad_state("a one-element state must be {0} (no rows yet)"),
        [_] => {}
        [count, sums @ ..] => {
            if !(count.is_finite() && *count >= 1.0 && count.fract() == 0.0) {
                bad_state("the row count must be a positive integer");
            }
            check_dims(sums.len()).or_raise();
            if sums.iter().any(|s| !s.is_finite()) {
                bad_state("sums must be finite");
            }
        }
    }
}

/// Sums of finite f32 rows stay far inside f64's range, but a crafted state can start anywhere.
fn check_sums_finite(state: &[f64]) {
    if state.iter().any(|s| !s.is_finite()) {
        error(PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, "value out of range: overflow");
    }
}

unsafe fn write_state(state: &[f64]) -> Datum {
    let mut datums: Vec<Datum> = state.iter().map(|x| Datum::from(x.to_bits())).collect();
    let arr = pg_sys::construct_array(
        datums.as_mut_ptr(),
        datums.len() as i32,
        pg_sys::FLOAT8OID,
        8,
        true,
        b'd' as std::ffi::c_char,
    );
    Datum::from(arr)
}

fn state_dims_error(a: usize, b: usize) -> ! {
    error(PgSqlErrorCode::ERRCODE_DATA_EXCEPTION, format!("different vector dimensions {a} and {b}"))
}

#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn vector_accum(fcinfo: FunctionCallInfo) -> Datum {
    let mut state = read_state(arg(fcinfo, 0));
    let v = VectorArg::arg(fcinfo, 1);
    // INITCOND '{0}' means "no vector seen yet": size the state on the first row.
    if state.len() <= 1 {
        state = vec![0.0; v.dim() + 1];
    } else if state.len() - 1 != v.dim() {
        state_dims_error(state.len() - 1, v.dim());
    }
    state[0] += 1.0;
    for (s, &x) in state[1..].iter_mut().zip(v.as_slice()) {
        *s += x as f64;
    }
    check_sums_finite(&state);
    write_state(&state)
}

#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn vector_combine(fcinfo: FunctionCallInfo) -> Datum {
    let a = read_state(arg(fcinfo, 0));
    let b = read_state(arg(fcinfo, 1));
    if a.len() <= 1 {
        return write_state(&b);
    }
    if b.len() <= 1 {
        return write_state(&a);
    }
    if a.len() != b.len() {
        state_dims_error(a.len() - 1, b.len() - 1);
    }
    let sum: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    check_sums_finite(&sum);
    write_state(&sum)
}

#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn vector_avg(fcinfo: FunctionCallInfo) -> Datum {
    let state = read_state(arg(fcinfo, 0));
    // `{0}`: no rows were aggregated (validated above: a longer state has count >= 1).
    if state.len() == 1 {
        return pgrx::fcinfo::pg_return_null(fcinfo);
    }
    let n = state[0];
    new_vector(state.len() - 1, |out| {
        for (o, &s) in out.iter_mut().zip(&state[1..]) {
            let m = (s / n) as f32;
            if !m.is_finite() {
                error(PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, "value out of range: overflow");
            }
            *o = m;
        }
    })
}
