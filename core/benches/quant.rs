//! Quantized-estimate micro-benchmark (plain Instant loops, like `distance`).
//! `cargo bench -p vsag-core --bench quant` prints ns per `PreparedQuery::estimate` for each
//! quantizer with the dispatched kernels, the raw kernels of every implementation the CPU
//! supports, and the exact f32 distance for reference. Codes rotate through a pool of 256
//! vectors (cache-resident except for SQ8 at the largest dimensions).

use std::hint::black_box;
use std::time::{Duration, Instant};
use vsag_core::distance::{self, Metric};
use vsag_core::quant::{kernel4, popcount, Quantizer, QuantizerKind};

const DIMS: [usize; 4] = [128, 384, 768, 1536];
const POOL: usize = 256;
const REPEATS: usize = 31;
const TARGET: Duration = Duration::from_millis(2);

fn xorshift(seed: &mut u64) -> f32 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (*seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
}

/// Best-of-REPEATS ns per call of `f(i)` over calibrated batches of about TARGET.
fn time_ns(mut f: impl FnMut(usize) -> f32) -> f64 {
    let mut run = |iters: usize| {
        let t = Instant::now();
        let mut acc = 0f32;
        for i in 0..iters {
            acc += f(i % POOL);
        }
        black_box(acc);
        t.elapsed()
    };
    let mut iters = 256usize;
    loop {
        let e = run(iters);
        if e >= TARGET / 4 {
            iters = (iters as f64 * TARGET.as_secs_f64() / e.as_secs_f64()).ceil() as usize;
            break;
        }
        iters *= 4;
    }
    (0..REPEATS)
        .map(|_| run(iters).as_nanos() as f64 / iters as f64)
        .fold(f64::INFINITY, f64::min)
}

type Row = (String, Vec<f64>);

fn main() {
    let started = Instant::now();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rows: Vec<Row> = Vec::new();
    let mut push = |name: String, dim_idx: usize, ns: f64| {
        if let Some(r) = rows.iter_mut().find(|r| r.0 == name) {
            r.1[dim_idx] = ns;
        } else {
            let mut v = vec![f64::NAN; DIMS.len()];
            v[dim_idx] = ns;
            rows.push((name, v));
        }
    };
    for (di, &dim) in DIMS.iter().enumerate() {
        let data: Vec<f32> = (0..POOL * dim).map(|_| xorshift(&mut seed)).collect();
        let query: Vec<f32> = (0..dim).map(|_| xorshift(&mut seed)).collect();
        let rows_of = |i: usize| &data[i * dim..(i + 1) * dim];
        push(
            "exact f32 l2 (dispatch)".into(),
            di,
            time_ns(|i| distance::l2_squared(black_box(&query), rows_of(i))),
        );
        for kind in [QuantizerKind::Sq8, QuantizerKind::Sq4, QuantizerKind::Bit] {
            let q = Quantizer::train(kind, dim, &data).unwrap();
            let codes: Vec<Vec<u8>> = (0..POOL).map(|i| q.encode_vec(rows_of(i))).collect();
            for metric in [Metric::L2, Metric::InnerProduct] {
                let pq = q.prepare(metric, &query);
                let ns = time_ns(|i| pq.estimate(black_box(&codes[i])));
                push(format!("{kind:?} estimate {metric:?}"), di, ns);
            }
            let ns = time_ns(|i| {
                q.prepare(Metric::L2, black_box(rows_of(i)))
                    .estimate(&codes[0])
            });
            push(format!("{kind:?} prepare (per query)"), di, ns);
        }
        // Raw kernels, every implementation available here.
        let k: Vec<i8> = (0..dim)
            .map(|_| (xorshift(&mut seed) * 250.0) as i8)
            .collect();
        let w = kernel4::permute(&k);
        let nib: Vec<Vec<u8>> = (0..POOL)
            .map(|_| {
                (0..dim.div_ceil(2))
                    .map(|_| (xorshift(&mut seed).to_bits() >> 8) as u8)
                    .collect()
            })
            .collect();
        for (name, f) in kernel4::available() {
            push(
                format!("sq4 kernel {name}"),
                di,
                time_ns(|i| f(black_box(&w), &nib[i]) as f32),
            );
        }
        let words = dim.div_ceil(64);
        let planes: Vec<u64> = (0..popcount::QUERY_BITS * words)
            .map(|_| xorshift(&mut seed).to_bits() as u64 * 0x9e37_79b9)
            .collect();
        let bits: Vec<Vec<u8>> = (0..POOL)
            .map(|_| {
                (0..8 * words)
                    .map(|_| (xorshift(&mut seed).to_bits() >> 5) as u8)
                    .collect()
            })
            .collect();
        for (name, f) in popcount::available() {
            push(
                format!("bit kernel {name}"),
                di,
                time_ns(|i| f(black_box(&bits[i]), &planes).1 as f32),
            );
        }
    }
    println!("active distance kernel: {}", distance::active_kernel_name());
    print!("| {:<30} |", "ns per call");
    DIMS.iter().for_each(|d| print!(" dim {d:>4} |"));
    print!("\n|{:-<32}|", "");
    DIMS.iter().for_each(|_| print!("---------:|"));
    println!();
    for (name, v) in &rows {
        print!("| {name:<30} |");
        v.iter().for_each(|ns| print!(" {ns:>8.1} |"));
        println!();
    }
    println!(
        "\n(best of {REPEATS}; total {:.1} s)",
        started.elapsed().as_secs_f64()
    );
}
