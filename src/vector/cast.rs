//! Casts between `vector` and `real[]`, `double precision[]`, `integer[]`, `numeric[]`.

use super::{check_typmod, new_vector, VectorArg};
use crate::fmgr::{arg, arg_i32, error, finfo, OrRaise};
use pgrx::pg_guard;
use pgrx::pg_sys::{self, Datum, FunctionCallInfo, Oid};
use pgrx::PgSqlErrorCode;
use vsag_core::vector::{check_dims, check_finite};

finfo!(array_to_vector, vector_to_float4, vector_to_float8, vector_to_int4, vector_to_numeric);

unsafe fn call1(f: unsafe fn(FunctionCallInfo) -> Datum, d: Datum) -> Datum {
    // These builtins never return NULL for a non-NULL argument.
    pgrx::fcinfo::direct_function_call_as_datum(f, &[Some(d)]).unwrap_or(Datum::from(0usize))
}

/// Element of a numeric array as f32. Conversion errors (numeric overflow) come from Postgres.
unsafe fn element_to_f32(elemtype: Oid, d: Datum) -> f32 {
    match elemtype {
        pg_sys::INT4OID => d.value() as i32 as f32,
        pg_sys::FLOAT4OID => f32::from_bits(d.value() as u32),
        pg_sys::FLOAT8OID => {
            let x = f64::from_bits(d.value() as u64);
            let y = x as f32;
            // A finite double beyond f32's range would silently become infinity.
            if x.is_finite() && y.is_infinite() {
                error(PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, "value out of range: overflow");
            }
            y
        }
        pg_sys::NUMERICOID => f32::from_bits(call1(pg_sys::numeric_float4, d).value() as u32),
        _ => error(
            PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
            "unsupported array element type for vector (use real[], double precision[], integer[] or numeric[])",
        ),
    }
}

/// `array_to_vector(arr, typmod, explicit)`, shared by all four array casts.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn array_to_vector(fcinfo: FunctionCallInfo) -> Datum {
    let arr = pg_sys::pg_detoast_datum(arg(fcinfo, 0).cast_mut_ptr()) as *mut pg_sys::ArrayType;
    let typmod = arg_i32(fcinfo, 1);
    if (*arr).ndim > 1 {
        error(PgSqlErrorCode::ERRCODE_DATA_EXCEPTION, "array must be 1-D");
    }
    let elemtype = (*arr).elemtype;
    let (mut len, mut byval, mut align) = (0i16, false, 0 as std::ffi::c_char);
    pg_sys::get_typlenbyvalalign(elemtype, &mut len, &mut byval, &mut align);
    let mut elems: *mut Datum = std::ptr::null_mut();
    let mut nulls: *mut bool = std::ptr::null_mut();
    let mut n: i32 = 0;
    pg_sys::deconstruct_array(arr, elemtype, len as i32, byval, align, &mut elems, &mut nulls, &mut n);
    let n = n.max(0) as usize;
    check_dims(n).or_raise();
    let nulls = std::slice::from_raw_parts(nulls, n);
    if nulls.iter().any(|&x| x) {
        error(PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED, "array must not contain nulls");
    }
    let elems = std::slice::from_raw_parts(elems, n);
    let values: Vec<f32> = elems.iter().map(|&d| element_to_f32(elemtype, d)).collect();
    check_finite(&values).or_raise();
    check_typmod(n, typmod);
    new_vector(n, |out| out.copy_from_slice(&values))
}

unsafe fn to_array(fcinfo: FunctionCallInfo, elemtype: Oid, conv: impl Fn(f32) -> Datum) -> Datum {
    let v = VectorArg::arg(fcinfo, 0);
    let mut datums: Vec<Datum> = v.as_slice().iter().map(|&x| conv(x)).collect();
    let (mut len, mut byval, mut align) = (0i16, false, 0 as std::ffi::c_char);
    pg_sys::get_typlenbyvalalign(elemtype, &mut len, &mut byval, &mut align);
    let arr = pg_sys::construct_array(
        datums.as_mut_ptr(),
        datums.len() as i32,
        elemtype,
        len as i32,
        byval,
        align,
    );
    Datum::from(arr)
}

#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn vector_to_float4(fcinfo: FunctionCallInfo) -> Datum {
    to_array(fcinfo, pg_sys::FLOAT4OID, |x| Datum::from(x.to_bits()))
}

#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn vector_to_float8(fcinfo: FunctionCallInfo) -> Datum {
    to_array(fcinfo, pg_sys::FLOAT8OID, |x| Datum::from((x as f64).to_bits()))
}

#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn vector_to_int4(fcinfo: FunctionCallInfo) -> Datum {
    // ftoi4 rounds like a float4 -> integer cast and raises "integer out of range".
    to_array(fcinfo, pg_sys::INT4OID, |x| call1(pg_sys::ftoi4, Datum::from(x.to_bits())))
}

#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn vector_to_numeric(fcinfo: FunctionCallInfo) -> Datum {
    to_array(fcinfo, pg_sys::NUMERICOID, |x| call1(pg_sys::float4_numeric, Datum::from(x.to_bits())))
}

