//! Type I/O: text in/out, binary send/recv (pgvector's wire layout), typmod input and the
//! length-coercion function used by `vector(n)` columns.

use super::{check_typmod, vector_from_slice, VectorArg};
use crate::fmgr::{arg, arg_i32, error, finfo, OrRaise};
use pgrx::pg_guard;
use pgrx::pg_sys::{self, Datum, FunctionCallInfo};
use pgrx::PgSqlErrorCode;
use std::ffi::CStr;
use vsag_core::vector::{decode_binary, encode_binary, format_text, parse_text, MAX_DIM};

finfo!(vector_in, vector_out, vector_typmod_in, vector_recv, vector_send, vector_coerce);

#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn vector_in(fcinfo: FunctionCallInfo) -> Datum {
    let cstr = CStr::from_ptr(arg(fcinfo, 0).cast_mut_ptr::<std::ffi::c_char>());
    let typmod = arg_i32(fcinfo, 2);
    let text = match cstr.to_str() {
        Ok(s) => s,
        Err(_) => error(
            PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
            "invalid input syntax for type vector: not valid UTF-8",
        ),
    };
    let v = parse_text(text).or_raise();
    check_typmod(v.len(), typmod);
    vector_from_slice(&v)
}

#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn vector_out(fcinfo: FunctionCallInfo) -> Datum {
    let v = VectorArg::arg(fcinfo, 0);
    let s = format_text(v.as_slice());
    let p = pg_sys::palloc(s.len() + 1) as *mut u8;
    std::ptr::copy_nonoverlapping(s.as_ptr(), p, s.len());
    *p.add(s.len()) = 0;
    Datum::from(p)
}

#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn vector_typmod_in(fcinfo: FunctionCallInfo) -> Datum {
    let arr = pg_sys::pg_detoast_datum(arg(fcinfo, 0).cast_mut_ptr()) as *mut pg_sys::ArrayType;
    let mut n: i32 = 0;
    let mods = pg_sys::ArrayGetIntegerTypmods(arr, &mut n);
    if n != 1 {
        error(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, "invalid type modifier");
    }
    let dim = *mods;
    if dim < 1 {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "dimensions for type vector must be at least 1",
        );
    }
    if dim as usize > MAX_DIM {
        error(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("dimensions for type vector cannot exceed {MAX_DIM}"),
        );
    }
    Datum::from(dim)
}

#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn vector_recv(fcinfo: FunctionCallInfo) -> Datum {
    let buf = arg(fcinfo, 0).cast_mut_ptr::<pg_sys::StringInfoData>();
    let typmod = arg_i32(fcinfo, 2);
    let start = (*buf).cursor.max(0) as usize;
    let len = (*buf).len.max(0) as usize;
    let bytes: &[u8] = if len > start {
        std::slice::from_raw_parts(((*buf).data as *const u8).add(start), len - start)
    } else {
        &[]
    };
    let v = decode_binary(bytes).or_raise();
    // The whole field is ours: mark it consumed so the caller's end-of-message check passes.
    (*buf).cursor = (*buf).len;
    check_typmod(v.len(), typmod);
    vector_from_slice(&v)
}

#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn vector_send(fcinfo: FunctionCallInfo) -> Datum {
    let v = VectorArg::arg(fcinfo, 0);
    let bytes = encode_binary(v.as_slice());
    let size = bytes.len() + pg_sys::VARHDRSZ;
    let p = pg_sys::palloc(size) as *mut u8;
    pgrx::varlena::set_varsize_4b(p as *mut pg_sys::varlena, size as i32);
    std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.add(pg_sys::VARHDRSZ), bytes.len());
    Datum::from(p)
}

/// `vector(vector, typmod, explicit)`: the length coercion applied when storing into `vector(n)`.
#[pg_guard]
#[no_mangle]
pub unsafe extern "C-unwind" fn vector_coerce(fcinfo: FunctionCallInfo) -> Datum {
    let d = arg(fcinfo, 0);
    let v = VectorArg::from_datum(d);
    check_typmod(v.dim(), arg_i32(fcinfo, 1));
    d
}
