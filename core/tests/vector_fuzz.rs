//! Property/fuzz tests for the `vector` codecs: no input may panic, accepted values obey
//! the type's invariants, and valid vectors survive both codecs bit-for-bit.

use proptest::prelude::*;
use vsag_core::vector::{
    decode_binary, decode_binary_prefix, encode_binary, format_text, parse_text, VectorError,
    MAX_DIM,
};

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Invariants of any successfully decoded value, plus a round trip through both codecs.
fn check_ok(v: &[f32]) {
    assert!((1..=MAX_DIM).contains(&v.len()));
    assert!(v.iter().all(|x| x.is_finite()));
    assert_eq!(bits(&parse_text(&format_text(v)).unwrap()), bits(v));
    assert_eq!(bits(&decode_binary(&encode_binary(v)).unwrap()), bits(v));
}

/// Fragments of the text grammar (and near misses) to build mostly-plausible inputs.
const TOKENS: &[&str] = &[
    "[",
    "]",
    ",",
    "0",
    "1",
    "7",
    "9",
    ".",
    "e",
    "E",
    "-",
    "+",
    " ",
    "\t",
    "\n",
    "x",
    "p",
    "a",
    "n",
    "i",
    "f",
    "inf",
    "nan",
    "Infinity",
    "0x",
    "1e38",
    "3.5e38",
    "1e999",
    "1e-46",
    "123456789",
    "0.000001",
    "\u{e9}",
    "\0",
];

fn token_string() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..24).prop_map(|t| t.concat())
}

/// Mostly well-formed vector text with optional damage, so both paths get exercised.
fn vectorish_string() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(token_string(), 0..6),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(elems, open, close)| {
            format!(
                "{}{}{}",
                if open { "[" } else { "" },
                elems.join(","),
                if close { "]" } else { "" }
            )
        })
}

fn finite_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<u32>()
            .prop_map(f32::from_bits)
            .prop_filter("finite", |x| x.is_finite()),
        (any::<u32>()).prop_map(|b| f32::from_bits(b & 0x807f_ffff)), // subnormals and ±0
        -1e3f32..1e3f32,
        Just(f32::MAX),
        Just(f32::MIN),
        Just(f32::MIN_POSITIVE),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn parse_random_bytes(raw in prop::collection::vec(any::<u8>(), 0..64)) {
        let s = String::from_utf8_lossy(&raw);
        if let Ok(v) = parse_text(&s) {
            check_ok(&v);
        }
    }

    #[test]
    fn parse_grammar_regex(s in "[\\[\\],0-9.eE+\\- \tanifxp]{0,40}") {
        if let Ok(v) = parse_text(&s) {
            check_ok(&v);
        }
    }

    #[test]
    fn parse_token_soup(s in vectorish_string()) {
        match parse_text(&s) {
            Ok(v) => check_ok(&v),
            // Syntax errors quote the whole input, as Postgres does.
            Err(VectorError::InvalidSyntax { input, .. }) => prop_assert_eq!(input, s),
            Err(_) => {}
        }
    }

    #[test]
    fn decode_random_bytes(raw in prop::collection::vec(any::<u8>(), 0..80)) {
        if let Ok(v) = decode_binary(&raw) {
            check_ok(&v);
            prop_assert_eq!(encode_binary(&v), raw);
        }
    }

    /// Plausible headers with random payloads: the result must match a direct model of
    /// pgvector's vector_recv.
    #[test]
    fn decode_model(dim in -3i16..40, unused in prop_oneof![Just(0i16), any::<i16>()],
                    payload in prop::collection::vec(any::<u32>(), 0..40), extra in 0usize..3) {
        let mut b = [dim.to_be_bytes(), unused.to_be_bytes()].concat();
        for p in &payload {
            b.extend_from_slice(&p.to_be_bytes());
        }
        b.extend(std::iter::repeat_n(0xAB, extra));
        let got = decode_binary(&b);
        let want = if dim < 1 {
            Err(VectorError::NoDimensions)
        } else if unused != 0 {
            Err(VectorError::UnusedNotZero(unused))
        } else {
            let mut out = Ok(());
            let mut v = Vec::new();
            for i in 0..dim as usize {
                match payload.get(i).map(|&p| f32::from_bits(p)) {
                    None => { out = Err(VectorError::InsufficientData); break; }
                    Some(x) if x.is_nan() => { out = Err(VectorError::NaN); break; }
                    Some(x) if x.is_infinite() => { out = Err(VectorError::Infinite); break; }
                    Some(x) => v.push(x),
                }
            }
            match out {
                Err(e) => Err(e),
                Ok(()) if b.len() != 4 + 4 * dim as usize => Err(VectorError::IncorrectBinaryFormat),
                Ok(()) => Ok(v),
            }
        };
        match (&got, &want) {
            (Ok(g), Ok(w)) => prop_assert_eq!(bits(g), bits(w)),
            _ => prop_assert_eq!(got, want),
        }
    }

    #[test]
    fn valid_vectors_round_trip(v in prop::collection::vec(finite_f32(), 1..48)) {
        check_ok(&v);
        let text = format_text(&v);
        // Output grammar: no whitespace, no NaN/Infinity spellings, one '[' ... ']'.
        prop_assert!(text.starts_with('[') && text.ends_with(']'));
        prop_assert!(text.bytes().all(|c| b"[],.-+e0123456789".contains(&c)), "{}", text);
        let b = encode_binary(&v);
        prop_assert_eq!(decode_binary_prefix(&b, None).unwrap().1, b.len());
    }

    /// Whitespace anywhere the grammar allows it does not change the value.
    #[test]
    fn whitespace_insensitive(v in prop::collection::vec(finite_f32(), 1..12),
                              ws in prop::sample::select(vec![" ", "\t", "\n", "\r", "\x0b", "\x0c", "  "])) {
        let elems: Vec<String> = v.iter().map(|&x| vsag_core::vector::format_f32(x)).collect();
        let spaced = format!("{ws}[{ws}{}{ws}]{ws}", elems.join(&format!("{ws},{ws}")));
        prop_assert_eq!(bits(&parse_text(&spaced).unwrap()), bits(&v));
    }
}

#[test]
fn huge_inputs_stay_bounded() {
    // One enormous literal: out of range, message quotes it verbatim.
    let digits = "9".repeat(1 << 20);
    let err = parse_text(&format!("[{digits}]")).unwrap_err();
    assert_eq!(err, VectorError::OutOfRange { literal: digits });
    // Enormous underflowing literal: accepted as 0.
    let tiny = format!("[0.{}1]", "0".repeat(1 << 20));
    assert_eq!(parse_text(&tiny).unwrap(), vec![0.0]);
    // Far too many elements: stops at the limit.
    let many = format!("[{}]", "1,".repeat(1 << 18));
    assert_eq!(
        parse_text(&many).unwrap_err(),
        VectorError::TooManyDimensions
    );
    // Huge exponents saturate instead of overflowing.
    assert_eq!(
        parse_text("[1e-99999999999999999999999]").unwrap(),
        vec![0.0]
    );
    assert!(matches!(parse_text("[0e99999999999999999999]"), Ok(v) if v == vec![0.0]));
}
