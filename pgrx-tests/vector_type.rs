// The `vector` type inside Postgres: operators agree with a float64 reference, I/O round
// trips, and bad input raises errors (the transaction aborts; the backend survives — the
// SQL regression suite checks the "next query still works" half).

/// Small deterministic generator: tests must not depend on an RNG crate in the extension.
struct Rng(u64);
impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vector(&mut self, dim: usize) -> Vec<f32> {
        (0..dim).map(|_| self.next_f32() * 10.0).collect()
    }
}

fn lit(v: &[f32]) -> String {
    let parts: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
    format!("'[{}]'::vector", parts.join(","))
}

fn sql_f64(q: &str) -> f64 {
    Spi::get_one::<f64>(q).expect("query failed").expect("NULL result")
}

fn close(got: f64, want: f64, what: &str) {
    // Cosine distance is 1 - similarity: its error is absolute on a [0, 2] scale, so an exact
    // 0 (parallel vectors, e.g. every 1-d pair) is compared on that scale.
    let scale = if what.contains("cos") || what == "<=>" { want.abs().max(1.0) } else { want.abs().max(1e-6) };
    let tol = 1e-5 * scale;
    assert!((got - want).abs() <= tol, "{what}: got {got}, reference {want}");
}

#[pg_test]
fn operators_match_f64_reference() {
    let mut rng = Rng(0x9E3779B97F4A7C15);
    for &dim in &[1usize, 3, 7, 16, 17, 384, 1536] {
        for _ in 0..3 {
            let a = rng.vector(dim);
            let b = rng.vector(dim);
            let (la, lb) = (lit(&a), lit(&b));
            let dot: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            let l2: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum::<f64>().sqrt();
            let l1: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64 - *y as f64).abs()).sum();
            let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            let cos = 1.0 - dot / (na * nb);
            close(sql_f64(&format!("SELECT {la} <-> {lb}")), l2, "<->");
            close(sql_f64(&format!("SELECT l2_distance({la}, {lb})")), l2, "l2_distance");
            close(sql_f64(&format!("SELECT {la} <#> {lb}")), -dot, "<#>");
            close(sql_f64(&format!("SELECT inner_product({la}, {lb})")), dot, "inner_product");
            close(sql_f64(&format!("SELECT {la} <=> {lb}")), cos, "<=>");
            close(sql_f64(&format!("SELECT cosine_distance({la}, {lb})")), cos, "cosine_distance");
            close(sql_f64(&format!("SELECT {la} <+> {lb}")), l1, "<+>");
            close(sql_f64(&format!("SELECT l1_distance({la}, {lb})")), l1, "l1_distance");
            close(sql_f64(&format!("SELECT vector_norm({la})")), na, "vector_norm");
            let dims = Spi::get_one::<i32>(&format!("SELECT vector_dims({la})")).unwrap().unwrap();
            assert_eq!(dims as usize, dim);
        }
    }
}

#[pg_test]
fn text_round_trip_is_exact() {
    let mut rng = Rng(42);
    for &dim in &[1usize, 5, 384] {
        let v: Vec<f32> = rng.vector(dim).iter().map(|x| x * 1e-3).collect();
        let text = Spi::get_one::<String>(&format!("SELECT {}::text", lit(&v))).unwrap().unwrap();
        let back = vsag_core::vector::parse_text(&text).unwrap();
        assert_eq!(back, v, "text form {text}");
    }
}

/// Feeds raw bytes to the type's receive function (as binary COPY or a binary bind would).
#[pg_extern]
fn recv_bytes(bytes: &[u8], typmod: i32) -> String {
    use pgrx::pg_sys::{self, Datum};
    unsafe {
        let buf = pg_sys::makeStringInfo();
        pg_sys::appendBinaryStringInfo(buf, bytes.as_ptr() as _, bytes.len() as i32);
        let args = [Some(Datum::from(buf)), Some(Datum::from(pg_sys::InvalidOid)), Some(Datum::from(typmod))];
        let d = pgrx::fcinfo::direct_pg_extern_function_call_as_datum(crate::vector::io::vector_recv, &args)
            .expect("vector_recv returned NULL");
        vsag_core::vector::format_text(crate::vector::VectorArg::from_datum(d).as_slice())
    }
}

#[pg_test]
fn binary_round_trip_via_send_recv() {
    let r = Spi::get_one::<String>("SELECT tests.recv_bytes(vector_send('[1,-2.5,3e-07]'), -1)");
    assert_eq!(r.unwrap().unwrap(), "[1,-2.5,3e-07]");
    let r = Spi::get_one::<String>("SELECT tests.recv_bytes('\\x0002000040000000c0200000'::bytea, -1)");
    assert_eq!(r.unwrap().unwrap(), "[2,-2.5]");
}

#[pg_test(error = "insufficient data left in message")]
fn binary_short_buffer_errors() {
    Spi::run("SELECT tests.recv_bytes('\\x000200004000'::bytea, -1)").unwrap();
}

#[pg_test(error = "incorrect binary data format")]
fn binary_trailing_bytes_error() {
    Spi::run("SELECT tests.recv_bytes('\\x00010000400000000000'::bytea, -1)").unwrap();
}

#[pg_test(error = "expected 2 dimensions, not 1")]
fn binary_typmod_enforced() {
    Spi::run("SELECT tests.recv_bytes('\\x0001000040000000'::bytea, 2)").unwrap();
}

#[pg_test]
fn element_wise_and_aggregates() {
    let r = Spi::get_one::<String>("SELECT ('[1,2,3]'::vector + '[4,5,6]' - '[1,1,1]'::vector * '[2,2,2]')::text");
    assert_eq!(r.unwrap().unwrap(), "[3,5,7]");
    let avg = Spi::get_one::<String>(
        "SELECT avg(v)::text FROM (VALUES ('[1,2]'::vector), ('[3,6]'), (NULL)) t(v)",
    );
    assert_eq!(avg.unwrap().unwrap(), "[2,4]");
    let sum = Spi::get_one::<String>("SELECT sum(v)::text FROM (VALUES ('[1,2]'::vector), ('[3,6]')) t(v)");
    assert_eq!(sum.unwrap().unwrap(), "[4,8]");
    let n = Spi::get_one::<String>("SELECT l2_normalize('[3,4]')::text");
    assert_eq!(n.unwrap().unwrap(), "[0.6,0.8]");
}

#[pg_test(error = "different vector dimensions 2 and 3")]
fn dimension_mismatch_errors() {
    Spi::run("SELECT '[1,2]'::vector <-> '[1,2,3]'::vector").unwrap();
}

#[pg_test(error = "NaN not allowed in vector")]
fn nan_errors() {
    Spi::run("SELECT '[1,NaN]'::vector").unwrap();
}

#[pg_test(error = "expected 3 dimensions, not 2")]
fn typmod_enforced() {
    Spi::run("CREATE TEMP TABLE t3 (v vector(3)); INSERT INTO t3 VALUES ('[1,2]')").unwrap();
}
