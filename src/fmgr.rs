//! Glue for hand-declared V1 C functions: the `pg_finfo_*` records, argument access and the
//! mapping of core errors onto SQLSTATEs.

use pgrx::pg_sys;
use pgrx::PgSqlErrorCode;
use vsag_core::vector::{ErrorKind, VectorError};

/// Declares `pg_finfo_<name>` so Postgres treats `<name>` as a version-1 function.
macro_rules! finfo {
    ($($name:ident),+ $(,)?) => {
        $(
            ::paste::paste! {
                #[no_mangle]
                #[doc(hidden)]
                pub extern "C" fn [<pg_finfo_ $name>]() -> &'static ::pgrx::pg_sys::Pg_finfo_record {
                    const V1: ::pgrx::pg_sys::Pg_finfo_record =
                        ::pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
                    &V1
                }
            }
        )+
    };
}
pub(crate) use finfo;

/// Raw argument `n` (caller knows it is not NULL: functions are STRICT unless noted).
#[inline]
pub unsafe fn arg(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> pg_sys::Datum {
    pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, n)
}

#[inline]
pub unsafe fn arg_i32(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> i32 {
    arg(fcinfo, n).value() as i32
}

pub fn errcode(kind: ErrorKind) -> PgSqlErrorCode {
    match kind {
        ErrorKind::InvalidTextRepresentation => PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
        ErrorKind::DataException => PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
        ErrorKind::ProgramLimitExceeded => PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        ErrorKind::NumericValueOutOfRange => PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
        ErrorKind::InvalidBinaryRepresentation => {
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION
        }
        ErrorKind::ProtocolViolation => PgSqlErrorCode::ERRCODE_PROTOCOL_VIOLATION,
        ErrorKind::InvalidParameterValue => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
    }
}

/// Raise a core error as a Postgres ERROR.
pub fn raise(e: VectorError) -> ! {
    let code = errcode(e.kind());
    if let Some(detail) = e.detail() {
        pgrx::ereport!(ERROR, code, e.to_string(), detail);
    }
    pgrx::ereport!(ERROR, code, e.to_string());
}

pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T, VectorError> {
    #[inline]
    fn or_raise(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => raise(e),
        }
    }
}

pub fn error(code: PgSqlErrorCode, msg: impl Into<String>) -> ! {
    let msg: String = msg.into();
    pgrx::ereport!(ERROR, code, msg);
}
