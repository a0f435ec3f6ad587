//! A C-locale `strtof` work-alike: finds how much of the input glibc's strtof would
//! consume and what it would return, so `[0x1p3]`, `[1.e5]` or `[1e]` (→ "1" + junk)
//! behave exactly as in pgvector, whose `vector_in` is built on strtof.
//!
//! Decimal conversion is delegated to Rust's correctly rounded `f32::from_str` (same
//! result as glibc's correctly rounded strtof); hexadecimal floats are rounded here.

/// Result of scanning one number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Scanned {
    pub value: f32,
    /// Bytes consumed (> 0).
    pub len: usize,
    /// A finite literal that rounded to ±infinity (strtof: ERANGE with HUGE_VALF).
    pub overflow: bool,
}

fn starts_with_ci(s: &[u8], pat: &[u8]) -> bool {
    s.len() >= pat.len() && s[..pat.len()].eq_ignore_ascii_case(pat)
}

fn count(s: &[u8], from: usize, pred: impl Fn(u8) -> bool) -> usize {
    s[from.min(s.len())..]
        .iter()
        .take_while(|&&c| pred(c))
        .count()
}

/// Length of an exponent part (`e`/`p` marker, sign, ≥1 digit) at `at`, or 0 if the
/// text there is not a complete exponent (strtof then stops before the marker).
fn exponent_len(s: &[u8], at: usize, marker: u8) -> usize {
    if s.get(at).map(|c| c.to_ascii_lowercase()) != Some(marker) {
        return 0;
    }
    let mut j = at + 1;
    if matches!(s.get(j), Some(b'+' | b'-')) {
        j += 1;
    }
    let digits = count(s, j, |c| c.is_ascii_digit());
    if digits == 0 {
        0
    } else {
        j + digits - at
    }
}

/// Scans a number at the start of `s` (no leading whitespace expected: the caller has
/// already skipped it). `None` if strtof would consume nothing.
pub(super) fn scan(s: &[u8]) -> Option<Scanned> {
    let sign_len = usize::from(matches!(s.first(), Some(b'+' | b'-')));
    let negative = s.first() == Some(&b'-');
    let body = &s[sign_len..];
    let signed = |x: f32| if negative { -x } else { x };

    if starts_with_ci(body, b"inf") {
        let len = if starts_with_ci(body, b"infinity") {
            8
        } else {
            3
        };
        return Some(Scanned {
            value: signed(f32::INFINITY),
            len: sign_len + len,
            overflow: false,
        });
    }
    if starts_with_ci(body, b"nan") {
        // Optional "(n-char-sequence)", consumed only if closed.
        let mut len = 3;
        if body.get(3) == Some(&b'(') {
            let inner = count(body, 4, |c| c.is_ascii_alphanumeric() || c == b'_');
            if body.get(4 + inner) == Some(&b')') {
                len = 5 + inner;
            }
        }
        return Some(Scanned {
            value: f32::NAN,
            len: sign_len + len,
            overflow: false,
        });
    }
    if body.len() > 2 && body[0] == b'0' && (body[1] | 0x20) == b'x' {
        if let Some((mag, len)) = scan_hex(&body[2..]) {
            return Some(Scanned {
                value: signed(mag),
                len: sign_len + 2 + len,
                overflow: mag.is_infinite(),
            });
        }
        // "0x" without hex digits: strtof reads just the "0".
    }

    let int = count(body, 0, |c| c.is_ascii_digit());
    let mut len = int;
    let mut frac = 0;
    if body.get(len) == Some(&b'.') {
        frac = count(body, len + 1, |c| c.is_ascii_digit());
        if int + frac > 0 {
            len += 1 + frac;
        }
    }
    if int + frac == 0 {
        return None;
    }
    len += exponent_len(body, len, b'e');
    let len = sign_len + len;
    // The slice is pure ASCII in Rust's float grammar, so this parse cannot fail;
    // `ok()?` keeps the function panic-free regardless.
    let text = std::str::from_utf8(&s[..len]).ok()?;
    let value: f32 = text.parse().ok()?;
    Some(Scanned {
        value,
        len,
        overflow: value.is_infinite(),
    })
}

/// Hexadecimal significand `h[.h]` with optional binary exponent `p[±]d`, after "0x".
/// Returns the magnitude correctly rounded to nearest-even and the bytes consumed.
fn scan_hex(s: &[u8]) -> Option<(f32, usize)> {
    let mut mant: u64 = 0;
    let mut sticky = false; // any nonzero bit dropped beyond mant's 64 bits
    let mut exp: i64 = 0; // value = mant * 2^exp
    let mut digits = 0;
    let mut i = 0;
    let mut seen_point = false;
    while let Some(&c) = s.get(i) {
        if c == b'.' && !seen_point {
            seen_point = true;
            i += 1;
            continue;
        }
        let Some(d) = (c as char).to_digit(16) else {
            break;
        };
        digits += 1;
        if mant >> 60 == 0 {
            mant = (mant << 4) | d as u64;
            if seen_point {
                exp -= 4;
            }
        } else {
            // Mantissa full: drop the digit but remember it was nonzero.
            sticky |= d != 0;
            if !seen_point {
                exp += 4;
            }
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    let elen = exponent_len(s, i, b'p');
    if elen > 0 {
        let mut j = i + 1;
        let neg = s[j] == b'-';
        if matches!(s[j], b'+' | b'-') {
            j += 1;
        }
        // Saturate: anything beyond ±1e6 is already far outside f32's range.
        let mut e: i64 = 0;
        for &c in &s[j..i + elen] {
            e = (e * 10 + (c - b'0') as i64).min(1_000_000);
        }
        exp += if neg { -e } else { e };
    }
    Some((round_to_f32(mant, sticky, exp), i + elen))
}

/// mant·2^exp (plus a sticky fraction below mant's last bit) rounded to nearest-even f32.
fn round_to_f32(mant: u64, sticky: bool, exp: i64) -> f32 {
    if mant == 0 {
        return 0.0;
    }
    let lz = mant.leading_zeros() as i64;
    let m = mant << lz; // top bit set: value = m / 2^63 * 2^e
    let e = exp - lz + 63;
    if e > 127 {
        return f32::INFINITY;
    }
    // Significant bits available at this exponent: 24 for normals, fewer below 2^-126.
    let keep = if e >= -126 { 24 } else { e + 150 };
    if keep <= 0 {
        // Below half the smallest subnormal (2^-150) → 0; exactly at it: ties-to-even
        // gives 0 unless something nonzero lies beyond.
        let above_half = keep == 0 && (m << 1 != 0 || sticky);
        return if above_half { f32::from_bits(1) } else { 0.0 };
    }
    let shift = (64 - keep) as u32;
    let mut q = m >> shift;
    let rem = m & ((1u64 << shift) - 1);
    let half = 1u64 << (shift - 1);
    if rem > half || (rem == half && (sticky || q & 1 == 1)) {
        q += 1;
    }
    // q ≤ 2^24 and 2^scale (scale in -149..=104) is an exact f64, so the product is
    // exact and already an f32 value; a carry past f32::MAX becomes infinity in `as`.
    let scale = e - keep + 1;
    (q as f64 * f64::from_bits(((1023 + scale) as u64) << 52)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sc(s: &str) -> Option<(f32, usize, bool)> {
        scan(s.as_bytes()).map(|r| (r.value, r.len, r.overflow))
    }

    #[test]
    fn extents() {
        assert_eq!(sc("1e"), Some((1.0, 1, false)));
        assert_eq!(sc("1e+"), Some((1.0, 1, false)));
        assert_eq!(sc("1.e2x"), Some((100.0, 4, false)));
        assert_eq!(sc(".5]"), Some((0.5, 2, false)));
        assert_eq!(sc("-.5e-1,"), Some((-0.05, 6, false)));
        assert_eq!(sc("."), None);
        assert_eq!(sc("-"), None);
        assert_eq!(sc("e5"), None);
        assert_eq!(sc("0x"), Some((0.0, 1, false)));
        assert_eq!(sc("0xg"), Some((0.0, 1, false)));
        assert_eq!(sc("0x1p3"), Some((8.0, 5, false)));
        assert_eq!(sc("0x.8"), Some((0.5, 4, false)));
        assert_eq!(sc("-0X1.8P+1"), Some((-3.0, 9, false)));
        assert_eq!(sc("0x1p"), Some((1.0, 3, false)));
        assert_eq!(sc("1e999"), Some((f32::INFINITY, 5, true)));
        assert_eq!(sc("-infinityx"), Some((f32::NEG_INFINITY, 9, false)));
        assert_eq!(sc("INFx"), Some((f32::INFINITY, 3, false)));
        let n = scan(b"nan(abc_1)x").unwrap();
        assert!(n.value.is_nan() && n.len == 10);
        assert_eq!(scan(b"nan(ab").unwrap().len, 3);
    }

    #[test]
    fn hex_rounding() {
        let h = |s: &str| scan(s.as_bytes()).unwrap().value;
        assert_eq!(h("0x1p-149"), f32::from_bits(1));
        assert_eq!(h("0x1p-150"), 0.0); // tie → even (0)
        assert_eq!(h("0x1.0000000001p-150"), f32::from_bits(1));
        assert_eq!(h("0x3p-150"), f32::from_bits(2)); // 1.5 ulp tie → even (2)
        assert_eq!(h("0x1.fffffep127"), f32::MAX);
        assert!(h("0x1.ffffffp127").is_infinite()); // tie rounds up to 2^128
        assert_eq!(h("0x1.fffffefp127"), f32::MAX);
        assert_eq!(h("0x1.000001p0"), 1.0); // tie → even
        assert_eq!(h("0x1.000003p0"), 1.0 + 2.0 * f32::EPSILON);
        assert_eq!(h("0x1.0000010000000000000000001p0"), 1.0 + f32::EPSILON); // sticky
        assert_eq!(h("0x1p-126"), f32::MIN_POSITIVE);
        assert_eq!(h("0x0.fffffep-126"), f32::from_bits(0x007f_ffff));
        assert_eq!(h("0x0.ffffffp-126"), f32::MIN_POSITIVE); // subnormal rounds up to normal
        assert_eq!(h("0x00000000000000000000000001p0"), 1.0);
        assert_eq!(h("0x1p99999999999999999999"), f32::INFINITY);
        assert_eq!(h("0x1p-99999999999999999999"), 0.0);
    }
}
