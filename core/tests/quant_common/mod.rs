//! Helpers shared by the quantizer integration tests: data generators, the fvecs reader for
//! the real dataset, and accuracy / ranking / bound-coverage measurements.
#![allow(dead_code)]

use rand::{Rng, SeedableRng};
use vsag_core::distance::Metric;
use vsag_core::quant::{index_distance, normalize, Quantizer};

pub const MINILM: &str = "/work/shared/data/minilm-100k.base.fvecs";
pub const MINILM_QUERIES: &str = "/work/shared/data/minilm-100k.query.fvecs";

fn gauss(rng: &mut impl Rng) -> f32 {
    // Box–Muller; 1 − u keeps the log argument in (0, 1].
    let (u, v): (f64, f64) = (rng.gen(), rng.gen());
    ((-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
}

/// Clustered, anisotropic data (per-dimension offsets and spreads differ), closer to real
/// embeddings than i.i.d. uniform noise; row-major `n × dim`.
pub fn clustered(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let off: Vec<f32> = (0..dim).map(|_| rng.gen_range(-2.0..2.0)).collect();
    let spread: Vec<f32> = (0..dim).map(|_| rng.gen_range(0.05f32..1.5)).collect();
    let centers: Vec<Vec<f32>> = (0..16)
        .map(|_| {
            (0..dim)
                .map(|d| off[d] + spread[d] * gauss(&mut rng))
                .collect()
        })
        .collect();
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = &centers[rng.gen_range(0..centers.len())];
        out.extend((0..dim).map(|d| c[d] + 0.5 * spread[d] * gauss(&mut rng)));
    }
    out
}

pub fn normalized(mut data: Vec<f32>, dim: usize) -> Vec<f32> {
    data.chunks_exact_mut(dim).for_each(normalize);
    data
}

/// Reads up to `max_rows` rows of an fvecs file (per row: i32 LE dim, then dim f32 LE).
/// `None` (with a printed note) if the file is missing, so tests can skip gracefully.
pub fn read_fvecs(path: &str, max_rows: usize) -> Option<(usize, Vec<f32>)> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            println!("NOTE: skipping dataset check, cannot read {path}: {e}");
            return None;
        }
    };
    let dim = i32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    let row = 4 + 4 * dim;
    let rows = (bytes.len() / row).min(max_rows);
    let mut out = Vec::with_capacity(rows * dim);
    for r in bytes.chunks_exact(row).take(rows) {
        assert_eq!(i32::from_le_bytes(r[..4].try_into().unwrap()) as usize, dim);
        out.extend(
            r[4..]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap())),
        );
    }
    Some((dim, out))
}

#[derive(Debug)]
pub struct Accuracy {
    /// mean |exact − estimate| / mean |exact|
    pub rel_err: f64,
    /// mean (estimate − exact) / mean |exact|: ≈ 0 for unbiased estimators
    pub bias: f64,
    /// recall@10 of the top-100 by estimate against the exact top-10
    pub recall: f64,
    /// recall@10 of the top-10 by estimate (no re-ranking at all)
    pub recall_strict: f64,
}

/// Scores every query against every data row (all codes), returning error and ranking stats.
pub fn accuracy(q: &Quantizer, metric: Metric, queries: &[f32], data: &[f32]) -> Accuracy {
    let dim = q.dim();
    let codes: Vec<Vec<u8>> = data.chunks_exact(dim).map(|v| q.encode_vec(v)).collect();
    let (mut abs_err, mut signed, mut mag) = (0f64, 0f64, 0f64);
    let (mut hits, mut strict, mut nq) = (0usize, 0usize, 0usize);
    for qv in queries.chunks_exact(dim) {
        let pq = q.prepare(metric, qv);
        let mut ex: Vec<(f32, usize)> = Vec::with_capacity(codes.len());
        let mut es: Vec<(f32, usize)> = Vec::with_capacity(codes.len());
        for (i, (v, c)) in data.chunks_exact(dim).zip(&codes).enumerate() {
            let (e, s) = (index_distance(metric, qv, v), pq.estimate(c));
            assert!(s.is_finite(), "non-finite estimate {s}");
            abs_err += (e as f64 - s as f64).abs();
            signed += s as f64 - e as f64;
            mag += (e as f64).abs();
            ex.push((e, i));
            es.push((s, i));
        }
        ex.sort_by(|a, b| a.0.total_cmp(&b.0));
        es.sort_by(|a, b| a.0.total_cmp(&b.0));
        let top: Vec<usize> = es.iter().take(100).map(|p| p.1).collect();
        hits += ex.iter().take(10).filter(|p| top.contains(&p.1)).count();
        strict += ex
            .iter()
            .take(10)
            .filter(|p| top[..10].contains(&p.1))
            .count();
        nq += 1;
    }
    Accuracy {
        rel_err: abs_err / mag,
        bias: signed / mag,
        recall: hits as f64 / (10 * nq) as f64,
        recall_strict: strict as f64 / (10 * nq) as f64,
    }
}

/// Fraction of (query, data) pairs whose |exact − estimate| is within `bound`.
pub fn coverage(q: &Quantizer, metric: Metric, queries: &[f32], data: &[f32], bound: f32) -> f64 {
    let dim = q.dim();
    let codes: Vec<Vec<u8>> = data.chunks_exact(dim).map(|v| q.encode_vec(v)).collect();
    let (mut ok, mut all) = (0usize, 0usize);
    for qv in queries.chunks_exact(dim) {
        let pq = q.prepare(metric, qv);
        for (v, c) in data.chunks_exact(dim).zip(&codes) {
            ok += ((pq.exact(v) - pq.estimate(c)).abs() <= bound) as usize;
            all += 1;
        }
    }
    ok as f64 / all as f64
}
