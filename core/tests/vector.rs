//! `vector` codec tests: exact pgvector/Postgres messages and outputs.
//! Expected float texts below were produced by PostgreSQL 15 (`'...'::float4::text`).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vsag_core::vector::{
    check_dims, check_finite, decode_binary, decode_binary_prefix, encode_binary, format_f32,
    format_text, parse_text, ErrorKind, VectorError, MAX_DIM,
};

#[test]
#[allow(clippy::excessive_precision)] // inputs deliberately carry extra digits
fn float4out_table() {
    let cases: &[(f32, &str)] = &[
        (1.0, "1"),
        (0.1, "0.1"),
        (1e-7, "1e-07"),
        (1.5e20, "1.5e+20"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (0.0, "0"),
        (-0.0, "-0"),
        (100000.0, "100000"),
        (1e6, "1e+06"),
        // Postgres excludes interval bounds: Rust's shortest would be 1.3375118e8.
        (133751184.0, "1.33751184e+08"),
        // Exact tie between 37380.812 and 37380.813: Postgres rounds to even.
        (37380.8125, "37380.812"),
        (16777216.0, "1.6777216e+07"),
        (3.4028235e38, "3.4028235e+38"),
        (f32::MAX, "3.4028235e+38"),
        (f32::from_bits(1), "1e-45"),
        (f32::MIN_POSITIVE, "1.1754944e-38"),
        (0.3, "0.3"),
        (2.0 / 3.0, "0.6666667"),
        (std::f32::consts::PI, "3.1415927"),
        (-1.5, "-1.5"),
        (999999.94, "999999.94"),
        (999999.9, "999999.9"),
        (9999999.0, "9.999999e+06"),
        (0.00012345, "0.00012345"),
        (-0.000099999, "-9.9999e-05"),
        (2.5, "2.5"),
        (1e38, "1e+38"),
        (12345.678, "12345.678"),
        (0.123456789, "0.12345679"),
        (1e10, "1e+10"),
        (4294967296.0, "4.2949673e+09"),
        (65536.5, "65536.5"),
        (-123.456e-10, "-1.23456e-08"),
        (f32::from_bits(0x0008_0000), "7.34684e-40"), // 0x1p-130,
        (f32::NAN, "NaN"),
        (f32::INFINITY, "Infinity"),
        (f32::NEG_INFINITY, "-Infinity"),
    ];
    for &(x, want) in cases {
        assert_eq!(format_f32(x), want, "bits {:#010x}", x.to_bits());
    }
    assert_eq!(format_text(&[1.0, 2.5, -0.03]), "[1,2.5,-0.03]");
    assert_eq!(format_text(&[1e-7]), "[1e-07]");
}

#[test]
fn parse_accepts() {
    let ok: &[(&str, &[f32])] = &[
        ("[1,2.5,-3e-2]", &[1.0, 2.5, -0.03]),
        ("  [ 1 , 2.5 ,-3e-2 ]  ", &[1.0, 2.5, -0.03]),
        ("\t\n[\r1\x0b]\x0c", &[1.0]),
        ("[+1,.5,1.,1E2,-0]", &[1.0, 0.5, 1.0, 100.0, -0.0]),
        ("[1e-46]", &[0.0]), // underflow is accepted, as in pgvector
        ("[1e-45]", &[f32::from_bits(1)]),
        ("[3.4028235e38]", &[f32::MAX]),
        ("[0x10,0x1p-2,-0X.8P1]", &[16.0, 0.25, -1.0]), // strtof hex floats
        ("[00001.5000]", &[1.5]),
    ];
    for &(s, want) in ok {
        let got = parse_text(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(want), "{s:?}");
    }
    let max: String = format!("[{}]", vec!["1"; MAX_DIM].join(","));
    assert_eq!(parse_text(&max).unwrap().len(), MAX_DIM);
}

#[test]
fn parse_rejects_with_pgvector_messages() {
    use ErrorKind::*;
    let syntax = |s: &str| format!("invalid input syntax for type vector: \"{s}\"");
    let start = Some("Vector contents must start with \"[\".");
    let junk = Some("Junk after closing right brace.");
    let cases: Vec<(&str, String, ErrorKind, Option<&str>)> = vec![
        ("", syntax(""), InvalidTextRepresentation, start),
        ("1,2]", syntax("1,2]"), InvalidTextRepresentation, start),
        ("(1,2)", syntax("(1,2)"), InvalidTextRepresentation, start),
        ("[1,2", syntax("[1,2"), InvalidTextRepresentation, None),
        ("[1,2,", syntax("[1,2,"), InvalidTextRepresentation, None),
        ("[", syntax("["), InvalidTextRepresentation, None),
        ("[1,,2]", syntax("[1,,2]"), InvalidTextRepresentation, None),
        ("[1,]", syntax("[1,]"), InvalidTextRepresentation, None),
        ("[,1]", syntax("[,1]"), InvalidTextRepresentation, None),
        ("[1 2]", syntax("[1 2]"), InvalidTextRepresentation, None),
        ("[a]", syntax("[a]"), InvalidTextRepresentation, None),
        ("[1e]", syntax("[1e]"), InvalidTextRepresentation, None),
        ("[--1]", syntax("[--1]"), InvalidTextRepresentation, None),
        ("[.]", syntax("[.]"), InvalidTextRepresentation, None),
        ("[1]x", syntax("[1]x"), InvalidTextRepresentation, junk),
        (
            "[1] [2]",
            syntax("[1] [2]"),
            InvalidTextRepresentation,
            junk,
        ),
        ("[1]]", syntax("[1]]"), InvalidTextRepresentation, junk),
        (
            "[]",
            "vector must have at least 1 dimension".into(),
            DataException,
            None,
        ),
        (
            " [ ] ",
            "vector must have at least 1 dimension".into(),
            DataException,
            None,
        ),
        (
            "[NaN]",
            "NaN not allowed in vector".into(),
            DataException,
            None,
        ),
        (
            "[1,-nan]",
            "NaN not allowed in vector".into(),
            DataException,
            None,
        ),
        (
            "[nan(0x1)]",
            "NaN not allowed in vector".into(),
            DataException,
            None,
        ),
        (
            "[inf]",
            "infinite value not allowed in vector".into(),
            DataException,
            None,
        ),
        (
            "[-Infinity]",
            "infinite value not allowed in vector".into(),
            DataException,
            None,
        ),
        (
            "[1e999]",
            "\"1e999\" is out of range for type vector".into(),
            NumericValueOutOfRange,
            None,
        ),
        (
            "[1, 3.5e38 ]",
            "\"3.5e38\" is out of range for type vector".into(),
            NumericValueOutOfRange,
            None,
        ),
        (
            "[-1e39]",
            "\"-1e39\" is out of range for type vector".into(),
            NumericValueOutOfRange,
            None,
        ),
        (
            "[0x1p128]",
            "\"0x1p128\" is out of range for type vector".into(),
            NumericValueOutOfRange,
            None,
        ),
        // Errors are reported in input order, as pgvector does.
        (
            "[1e999,nan]",
            "\"1e999\" is out of range for type vector".into(),
            NumericValueOutOfRange,
            None,
        ),
        (
            "[nan,1e999]",
            "NaN not allowed in vector".into(),
            DataException,
            None,
        ),
    ];
    for (input, msg, kind, detail) in cases {
        let err = parse_text(input).expect_err(input);
        assert_eq!(err.to_string(), msg, "{input:?}");
        assert_eq!(err.kind(), kind, "{input:?}");
        assert_eq!(err.detail(), detail, "{input:?}");
    }
    let too_many = format!("[{}]", vec!["0"; MAX_DIM + 1].join(","));
    let err = parse_text(&too_many).unwrap_err();
    assert_eq!(
        err.to_string(),
        "vector cannot have more than 16000 dimensions"
    );
    assert_eq!(err.kind(), ProgramLimitExceeded);
    // The limit is hit before the 16001st element is even looked at.
    let err = parse_text(&format!("[{},junk", vec!["0"; MAX_DIM].join(","))).unwrap_err();
    assert_eq!(err, VectorError::TooManyDimensions);
}

#[test]
fn binary_rejects_with_pgvector_messages() {
    use ErrorKind::*;
    let hdr = |dim: i16, unused: i16| [dim.to_be_bytes(), unused.to_be_bytes()].concat();
    let with = |h: Vec<u8>, xs: &[f32]| {
        let mut b = h;
        for x in xs {
            b.extend_from_slice(&x.to_be_bytes());
        }
        b
    };
    let cases: Vec<(Vec<u8>, &str, ErrorKind)> = vec![
        (
            vec![],
            "insufficient data left in message",
            ProtocolViolation,
        ),
        (
            vec![0, 1],
            "insufficient data left in message",
            ProtocolViolation,
        ),
        (
            vec![0, 1, 0],
            "insufficient data left in message",
            ProtocolViolation,
        ),
        (
            hdr(1, 0),
            "insufficient data left in message",
            ProtocolViolation,
        ),
        (
            with(hdr(2, 0), &[1.0]),
            "insufficient data left in message",
            ProtocolViolation,
        ),
        (
            [with(hdr(1, 0), &[1.0]), vec![7]].concat(),
            "incorrect binary data format",
            InvalidBinaryRepresentation,
        ),
        (
            with(hdr(1, 0), &[1.0, 2.0]),
            "incorrect binary data format",
            InvalidBinaryRepresentation,
        ),
        (
            hdr(0, 0),
            "vector must have at least 1 dimension",
            DataException,
        ),
        (
            hdr(0, 5),
            "vector must have at least 1 dimension",
            DataException,
        ),
        (
            hdr(-1, 0),
            "vector must have at least 1 dimension",
            DataException,
        ),
        (
            hdr(i16::MIN, 0),
            "vector must have at least 1 dimension",
            DataException,
        ),
        (
            hdr(16001, 0),
            "vector cannot have more than 16000 dimensions",
            ProgramLimitExceeded,
        ),
        (
            hdr(i16::MAX, 0),
            "vector cannot have more than 16000 dimensions",
            ProgramLimitExceeded,
        ),
        (
            with(hdr(1, 1), &[1.0]),
            "expected unused to be 0, not 1",
            DataException,
        ),
        (
            with(hdr(1, -1), &[1.0]),
            "expected unused to be 0, not -1",
            DataException,
        ),
        (
            with(hdr(2, 0), &[1.0, f32::NAN]),
            "NaN not allowed in vector",
            DataException,
        ),
        (
            with(hdr(1, 0), &[f32::NEG_INFINITY]),
            "infinite value not allowed in vector",
            DataException,
        ),
        // Element checks run as elements are read: a bad element beats a short buffer.
        (
            with(hdr(3, 0), &[f32::INFINITY]),
            "infinite value not allowed in vector",
            DataException,
        ),
    ];
    for (bytes, msg, kind) in cases {
        let err = decode_binary(&bytes).expect_err(msg);
        assert_eq!(
            (err.to_string().as_str(), err.kind()),
            (msg, kind),
            "{bytes:?}"
        );
    }
    assert_eq!(ProtocolViolation.sqlstate(), "08P01");
    assert_eq!(InvalidTextRepresentation.sqlstate(), "22P02");
}

#[test]
fn binary_layout_and_prefix() {
    let v = [1.0f32, -2.5, 0.0];
    let b = encode_binary(&v);
    assert_eq!(&b[..4], &[0, 3, 0, 0]);
    assert_eq!(&b[4..8], &1.0f32.to_be_bytes());
    assert_eq!(decode_binary(&b).unwrap(), v);
    let mut longer = b.clone();
    longer.extend_from_slice(b"rest");
    assert_eq!(
        decode_binary_prefix(&longer, None).unwrap(),
        (v.to_vec(), b.len())
    );
    let max = vec![0.5f32; MAX_DIM];
    assert_eq!(decode_binary(&encode_binary(&max)).unwrap(), max);
}

#[test]
fn checks() {
    assert_eq!(check_dims(0), Err(VectorError::NoDimensions));
    assert_eq!(check_dims(1), Ok(()));
    assert_eq!(check_dims(MAX_DIM), Ok(()));
    assert_eq!(check_dims(MAX_DIM + 1), Err(VectorError::TooManyDimensions));
    assert_eq!(check_finite(&[1.0, f32::MAX, -0.0]), Ok(()));
    assert_eq!(
        check_finite(&[1.0, f32::INFINITY, f32::NAN]),
        Err(VectorError::Infinite)
    );
    assert_eq!(
        check_finite(&[f32::NAN, f32::INFINITY]),
        Err(VectorError::NaN)
    );
}

/// Random finite f32 over the whole bit space, with extra weight on special regions.
fn random_f32(rng: &mut StdRng) -> f32 {
    loop {
        let x = match rng.gen_range(0..6) {
            0 => f32::from_bits(rng.gen::<u32>() & 0x807f_ffff), // subnormal / ±0
            1 => rng.gen_range(-1e3f32..1e3),
            2 => [
                f32::MAX,
                f32::MIN,
                f32::MIN_POSITIVE,
                f32::EPSILON,
                0.0,
                -0.0,
                1.0,
            ][rng.gen_range(0..7)],
            3 => rng.gen_range(-16_777_216i32..16_777_216) as f32,
            _ => f32::from_bits(rng.gen()),
        };
        if x.is_finite() {
            return x;
        }
    }
}

#[test]
fn round_trip_random() {
    let mut rng = StdRng::seed_from_u64(42);
    for _ in 0..3000 {
        let n = rng.gen_range(1..40);
        let v: Vec<f32> = (0..n).map(|_| random_f32(&mut rng)).collect();
        let text = format_text(&v);
        let back = parse_text(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&v), "{text}");
        assert_eq!(bits(&decode_binary(&encode_binary(&v)).unwrap()), bits(&v));
    }
}
