//! `vector` value codecs, wire-compatible with pgvector.
//!
//! Text: `[1,2.5,-0.03]` (parsing follows pgvector's `vector_in`, which uses C `strtof`;
//! output follows Postgres' `float4out` shortest round-trip formatting). Binary: the
//! `vector_send`/`vector_recv` layout: int16 dim, int16 unused (0), dim × float4, all
//! big-endian. Error messages and their order of detection mirror pgvector so clients
//! see the same errors.

mod shortest;
mod strtof;
mod text;

pub use text::{format_f32, format_text, parse_text, write_f32};

/// Largest dimension count a `vector` may have (pgvector's VECTOR_MAX_DIM).
pub const MAX_DIM: usize = 16000;

/// Error class; the pgrx layer turns it into a SQLSTATE (see [`ErrorKind::sqlstate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    InvalidTextRepresentation,
    DataException,
    ProgramLimitExceeded,
    NumericValueOutOfRange,
    InvalidBinaryRepresentation,
    /// Postgres' `pq_getmsg*` raise this for a truncated message.
    ProtocolViolation,
    /// pgvector uses it for bad `vector(n)` type modifiers.
    InvalidParameterValue,
}

impl ErrorKind {
    /// The five-character SQLSTATE Postgres/pgvector use for this class.
    pub fn sqlstate(self) -> &'static str {
        match self {
            ErrorKind::InvalidTextRepresentation => "22P02",
            ErrorKind::DataException => "22000",
            ErrorKind::ProgramLimitExceeded => "54000",
            ErrorKind::NumericValueOutOfRange => "22003",
            ErrorKind::InvalidBinaryRepresentation => "22P03",
            ErrorKind::ProtocolViolation => "08P01",
            ErrorKind::InvalidParameterValue => "22023",
        }
    }
}

/// Every way a vector value can be rejected. `Display` gives the exact Postgres message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VectorError {
    /// Malformed text; `input` is the whole literal (Postgres quotes it in the message).
    InvalidSyntax {
        input: String,
        detail: Option<&'static str>,
    },
    NoDimensions,
    TooManyDimensions,
    NaN,
    Infinite,
    /// A finite-looking literal that overflows f32; holds the literal as written.
    OutOfRange {
        literal: String,
    },
    /// Binary input ended early.
    InsufficientData,
    /// Binary input had bytes after the last element.
    IncorrectBinaryFormat,
    /// Binary `unused` header field was not 0.
    UnusedNotZero(i16),
    /// Value does not match the column's declared `vector(n)`.
    ExpectedDim {
        expected: usize,
        got: usize,
    },
    /// Binary operator/distance on vectors of different lengths.
    DifferentDims(usize, usize),
    /// `vector(a, b)`: more than one type modifier.
    InvalidTypmod,
    TypmodTooSmall,
    TypmodTooLarge,
}

impl VectorError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            VectorError::InvalidSyntax { .. } => ErrorKind::InvalidTextRepresentation,
            VectorError::NoDimensions | VectorError::NaN | VectorError::Infinite => {
                ErrorKind::DataException
            }
            VectorError::TooManyDimensions => ErrorKind::ProgramLimitExceeded,
            VectorError::OutOfRange { .. } => ErrorKind::NumericValueOutOfRange,
            VectorError::InsufficientData => ErrorKind::ProtocolViolation,
            VectorError::IncorrectBinaryFormat => ErrorKind::InvalidBinaryRepresentation,
            VectorError::InvalidTypmod
            | VectorError::TypmodTooSmall
            | VectorError::TypmodTooLarge => ErrorKind::InvalidParameterValue,
            VectorError::ExpectedDim { .. }
            | VectorError::DifferentDims(..)
            | VectorError::UnusedNotZero(_) => ErrorKind::DataException,
        }
    }

    /// Optional DETAIL line, as pgvector reports it.
    pub fn detail(&self) -> Option<&'static str> {
        match self {
            VectorError::InvalidSyntax { detail, .. } => *detail,
            _ => None,
        }
    }
}

impl std::fmt::Display for VectorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VectorError::InvalidSyntax { input, .. } => {
                write!(f, "invalid input syntax for type vector: \"{input}\"")
            }
            VectorError::NoDimensions => f.write_str("vector must have at least 1 dimension"),
            VectorError::TooManyDimensions => {
                write!(f, "vector cannot have more than {MAX_DIM} dimensions")
            }
            VectorError::NaN => f.write_str("NaN not allowed in vector"),
            VectorError::Infinite => f.write_str("infinite value not allowed in vector"),
            VectorError::OutOfRange { literal } => {
                write!(f, "\"{literal}\" is out of range for type vector")
            }
            VectorError::InsufficientData => f.write_str("insufficient data left in message"),
            VectorError::IncorrectBinaryFormat => f.write_str("incorrect binary data format"),
            VectorError::UnusedNotZero(u) => write!(f, "expected unused to be 0, not {u}"),
            VectorError::ExpectedDim { expected, got } => {
                write!(f, "expected {expected} dimensions, not {got}")
            }
            VectorError::DifferentDims(a, b) => {
                write!(f, "different vector dimensions {a} and {b}")
            }
            VectorError::InvalidTypmod => f.write_str("invalid type modifier"),
            VectorError::TypmodTooSmall => {
                f.write_str("dimensions for type vector must be at least 1")
            }
            VectorError::TypmodTooLarge => {
                write!(f, "dimensions for type vector cannot exceed {MAX_DIM}")
            }
        }
    }
}

impl std::error::Error for VectorError {}

/// One element's check (pgvector's CheckElement).
#[inline]
pub fn check_element(x: f32) -> Result<(), VectorError> {
    if x.is_nan() {
        Err(VectorError::NaN)
    } else if x.is_infinite() {
        Err(VectorError::Infinite)
    } else {
        Ok(())
    }
}

/// Every element finite; reports the first offender like pgvector does.
pub fn check_finite(v: &[f32]) -> Result<(), VectorError> {
    // Fast path: one branch-free pass (non-finite values are rare).
    if v.iter().all(|x| x.is_finite()) {
        return Ok(());
    }
    v.iter().try_for_each(|&x| check_element(x))
}

/// Dimension count within 1..=MAX_DIM (pgvector's CheckDim).
pub fn check_dims(n: usize) -> Result<(), VectorError> {
    if n < 1 {
        Err(VectorError::NoDimensions)
    } else if n > MAX_DIM {
        Err(VectorError::TooManyDimensions)
    } else {
        Ok(())
    }
}

/// Value length against a declared `vector(n)` (pgvector's CheckExpectedDim);
/// `expected` is None for an unconstrained column (typmod -1).
pub fn check_expected_dim(expected: Option<usize>, got: usize) -> Result<(), VectorError> {
    match expected {
        Some(e) if e != got => Err(VectorError::ExpectedDim { expected: e, got }),
        _ => Ok(()),
    }
}

/// Operands of a binary operator must have equal lengths (pgvector's CheckDims).
pub fn check_same_dims(a: usize, b: usize) -> Result<(), VectorError> {
    if a == b {
        Ok(())
    } else {
        Err(VectorError::DifferentDims(a, b))
    }
}

/// `vector(n)` type modifier input (pgvector's vector_typmod_in): exactly one modifier
/// in 1..=MAX_DIM; returns it as the typmod to store.
pub fn check_typmod(mods: &[i32]) -> Result<i32, VectorError> {
    match mods {
        [n] if *n < 1 => Err(VectorError::TypmodTooSmall),
        [n] if *n as usize > MAX_DIM => Err(VectorError::TypmodTooLarge),
        [n] => Ok(*n),
        _ => Err(VectorError::InvalidTypmod),
    }
}

/// Binary send format: int16 dim, int16 unused = 0, dim big-endian float4.
/// Panics if `v.len()` does not fit the int16 header (values are always ≤ MAX_DIM).
pub fn encode_binary(v: &[f32]) -> Vec<u8> {
    let dim = i16::try_from(v.len()).expect("vector dimension exceeds int16");
    let mut out = Vec::with_capacity(4 + 4 * v.len());
    out.extend_from_slice(&dim.to_be_bytes());
    out.extend_from_slice(&0i16.to_be_bytes());
    for x in v {
        out.extend_from_slice(&x.to_bits().to_be_bytes());
    }
    out
}

/// Binary receive; the whole buffer must be exactly one value.
pub fn decode_binary(b: &[u8]) -> Result<Vec<f32>, VectorError> {
    decode_binary_typmod(b, None)
}

/// [`decode_binary`] that also enforces a declared `vector(n)` at the point pgvector's
/// vector_recv does (after the dimension check, before `unused` and the elements).
pub fn decode_binary_typmod(b: &[u8], expected: Option<usize>) -> Result<Vec<f32>, VectorError> {
    let (v, used) = decode_binary_prefix(b, expected)?;
    if used != b.len() {
        return Err(VectorError::IncorrectBinaryFormat);
    }
    Ok(v)
}

/// Binary receive of a value at the start of `b`; returns it and the bytes consumed.
/// (A recv function consumes from a StringInfo and Postgres itself rejects leftovers;
/// this lets the pgrx layer advance the cursor exactly like pgvector's vector_recv.)
/// Checks run in vector_recv's order: header, dims, typmod, unused, then per element.
pub fn decode_binary_prefix(
    b: &[u8],
    expected: Option<usize>,
) -> Result<(Vec<f32>, usize), VectorError> {
    let be16 = |at: usize| -> Result<i16, VectorError> {
        b.get(at..at + 2)
            .map(|s| i16::from_be_bytes([s[0], s[1]]))
            .ok_or(VectorError::InsufficientData)
    };
    let dim = be16(0)?;
    let unused = be16(2)?;
    // A negative int16 is < 1, so it fails as "at least 1 dimension" like pgvector.
    check_dims(usize::try_from(dim).unwrap_or(0))?;
    check_expected_dim(expected, dim as usize)?;
    if unused != 0 {
        return Err(VectorError::UnusedNotZero(unused));
    }
    let dim = dim as usize;
    let mut v = Vec::with_capacity(dim);
    for i in 0..dim {
        let at = 4 + 4 * i;
        let s = b.get(at..at + 4).ok_or(VectorError::InsufficientData)?;
        let x = f32::from_bits(u32::from_be_bytes([s[0], s[1], s[2], s[3]]));
        check_element(x)?;
        v.push(x);
    }
    Ok((v, 4 + 4 * dim))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_layout() {
        let b = encode_binary(&[1.0, -2.5]);
        assert_eq!(b, [0, 2, 0, 0, 0x3f, 0x80, 0, 0, 0xc0, 0x20, 0, 0]);
        assert_eq!(decode_binary(&b).unwrap(), vec![1.0, -2.5]);
        let longer = [b.as_slice(), &[9]].concat();
        assert_eq!(decode_binary_prefix(&longer, None).unwrap().1, 12);
        let e = decode_binary_typmod(&b, Some(3)).unwrap_err();
        assert_eq!(e.to_string(), "expected 3 dimensions, not 2");
        // typmod is checked before `unused`, as in vector_recv.
        let bad_unused = [&[0, 2, 0, 1][..], &b[4..]].concat();
        assert_eq!(decode_binary_typmod(&bad_unused, Some(3)).unwrap_err(), e);
    }

    #[test]
    fn dimension_checks() {
        assert_eq!(check_expected_dim(None, 5), Ok(()));
        assert_eq!(check_expected_dim(Some(5), 5), Ok(()));
        let e = check_expected_dim(Some(3), 2).unwrap_err();
        assert_eq!(e.to_string(), "expected 3 dimensions, not 2");
        assert_eq!(e.kind(), ErrorKind::DataException);
        let e = check_same_dims(3, 2).unwrap_err();
        assert_eq!(e.to_string(), "different vector dimensions 3 and 2");
        assert_eq!(check_typmod(&[3]), Ok(3));
        assert_eq!(check_typmod(&[16000]), Ok(16000));
        let msg = |m: &[i32]| check_typmod(m).unwrap_err().to_string();
        assert_eq!(msg(&[0]), "dimensions for type vector must be at least 1");
        assert_eq!(msg(&[-5]), "dimensions for type vector must be at least 1");
        assert_eq!(
            msg(&[16001]),
            "dimensions for type vector cannot exceed 16000"
        );
        assert_eq!(msg(&[1, 2]), "invalid type modifier");
        assert_eq!(msg(&[]), "invalid type modifier");
    }

    #[test]
    fn sqlstates_distinct() {
        use ErrorKind::*;
        let all = [
            InvalidTextRepresentation,
            DataException,
            ProgramLimitExceeded,
            NumericValueOutOfRange,
            InvalidBinaryRepresentation,
            ProtocolViolation,
            InvalidParameterValue,
        ];
        let codes: std::collections::HashSet<_> = all.iter().map(|k| k.sqlstate()).collect();
        assert_eq!(codes.len(), all.len());
    }
}
