//! Text form `[x,y,...]`: pgvector `vector_in` parsing and Postgres `float4out`
//! (extra_float_digits ≥ 1, i.e. shortest round-trip) element formatting.

use super::shortest::shortest;
use super::{check_element, strtof, VectorError, MAX_DIM};
use std::fmt::Write;

/// pgvector's vector_isspace (the C-locale isspace set).
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Parses pgvector text input. Checks happen in `vector_in`'s order so the first error
/// reported for a bad literal is the one pgvector would report.
pub fn parse_text(s: &str) -> Result<Vec<f32>, VectorError> {
    let b = s.as_bytes();
    let syntax = |detail| VectorError::InvalidSyntax {
        input: s.to_owned(),
        detail,
    };
    let skip = |mut i: usize| {
        while b.get(i).copied().is_some_and(is_space) {
            i += 1;
        }
        i
    };

    let mut i = skip(0);
    if b.get(i) != Some(&b'[') {
        return Err(syntax(Some("Vector contents must start with \"[\".")));
    }
    i = skip(i + 1);
    if b.get(i) == Some(&b']') {
        return Err(VectorError::NoDimensions);
    }
    // Grows geometrically; bounded by MAX_DIM and by the input length.
    let mut v = Vec::new();
    loop {
        if v.len() == MAX_DIM {
            return Err(VectorError::TooManyDimensions);
        }
        i = skip(i);
        let Some(num) = strtof::scan(&b[i..]) else {
            return Err(syntax(None)); // also covers end of input and empty elements
        };
        if num.overflow {
            // The scanned bytes are ASCII, so these are char boundaries.
            return Err(VectorError::OutOfRange {
                literal: s[i..i + num.len].to_owned(),
            });
        }
        check_element(num.value)?;
        v.push(num.value);
        i = skip(i + num.len);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b']') => {
                i += 1;
                break;
            }
            _ => return Err(syntax(None)),
        }
    }
    if skip(i) != b.len() {
        return Err(syntax(Some("Junk after closing right brace.")));
    }
    Ok(v)
}

/// `[1,2.5,-0.03]`.
pub fn format_text(v: &[f32]) -> String {
    // Most elements print in ≤ 12 bytes; the worst case is 15 ("-1.2345678e-38").
    let mut out = String::with_capacity(2 + 13 * v.len());
    out.push('[');
    for (i, &x) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_f32(&mut out, x);
    }
    out.push(']');
    out
}

/// One element as Postgres' float4out prints it.
pub fn format_f32(x: f32) -> String {
    let mut s = String::new();
    write_f32(&mut s, x);
    s
}

/// Appends `x` formatted like Postgres' float4out (`float_to_shortest_decimal_bufn`):
/// the shortest digits that round-trip (see `shortest`), printed in fixed notation when
/// the decimal exponent of the leading digit is in -4..=5 (the printf %g thresholds
/// f2s.c chose), otherwise as `d[.ddd]e±XX` with a signed, at-least-two-digit exponent.
pub fn write_f32(out: &mut String, x: f32) {
    if x.is_nan() {
        out.push_str("NaN");
        return;
    }
    if x.is_sign_negative() {
        out.push('-'); // includes -0, which Postgres prints as "-0"
    }
    if x.is_infinite() {
        out.push_str("Infinity");
        return;
    }
    if x == 0.0 {
        out.push('0');
        return;
    }
    let (digits, exp10) = shortest(x);
    let mut buf = [0u8; 20];
    let olen = {
        let mut n = digits;
        let mut len = 0;
        while n > 0 || len == 0 {
            buf[len] = b'0' + (n % 10) as u8;
            n /= 10;
            len += 1;
        }
        buf[..len].reverse();
        len
    };
    let d = |range: std::ops::Range<usize>| std::str::from_utf8(&buf[range]).unwrap_or("");
    // Decimal exponent of the leading digit.
    let exp = exp10 + olen as i32 - 1;
    if (-4..6).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if olen <= int_len {
                out.push_str(d(0..olen));
                out.extend(std::iter::repeat_n('0', int_len - olen));
            } else {
                out.push_str(d(0..int_len));
                out.push('.');
                out.push_str(d(int_len..olen));
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(d(0..olen));
        }
    } else {
        out.push_str(d(0..1));
        if olen > 1 {
            out.push('.');
            out.push_str(d(1..olen));
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        );
    }
}
