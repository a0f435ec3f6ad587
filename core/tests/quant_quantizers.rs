//! SQ4 and Bit quantizers (and the shared error bound, SQ8 included) on synthetic data:
//! reconstruction error, estimate accuracy and ranking, degenerate and extreme inputs,
//! parameter serialisation.

mod quant_common;

use quant_common::{accuracy, clustered, coverage, normalized};
use rand::{Rng, SeedableRng};
use vsag_core::distance::Metric;
use vsag_core::quant::{index_distance, Quantizer, QuantizerKind};

const KINDS: [QuantizerKind; 3] = [QuantizerKind::Sq8, QuantizerKind::Sq4, QuantizerKind::Bit];
const METRICS: [Metric; 3] = [Metric::L2, Metric::InnerProduct, Metric::Cosine];

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn code_sizes() {
    for dim in [1usize, 3, 64, 65, 384, 1536] {
        assert_eq!(QuantizerKind::Sq4.code_size(dim), dim.div_ceil(2) + 4);
        assert_eq!(QuantizerKind::Bit.code_size(dim), 8 * dim.div_ceil(64) + 12);
        for k in KINDS {
            let q = Quantizer::train(k, dim, &clustered(20, dim, 1)).unwrap();
            assert_eq!(q.code_size(), k.code_size(dim));
            assert_eq!(q.kind(), k);
            assert_eq!(QuantizerKind::from_u8(k as u8), Some(k));
        }
    }
    assert!(!QuantizerKind::Bit.supports_metric(Metric::L1));
    assert!(QuantizerKind::Sq4.supports_metric(Metric::L1));
}

#[test]
fn sq4_decode_within_half_step_and_range_is_truncated() {
    for dim in [1usize, 3, 17, 128, 385] {
        let mut data = clustered(1000, dim, dim as u64);
        // 0.2 % wild outliers: with min/max training they would set the step.
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for _ in 0..(data.len() / 500).max(1) {
            let i = rng.gen_range(0..data.len());
            data[i] = if rng.gen() { 1e4 } else { -1e4 };
        }
        let q = Quantizer::train(QuantizerKind::Sq4, dim, &data).unwrap();
        let Quantizer::Sq4(sq) = &q else {
            unreachable!()
        };
        assert!(
            sq.step().iter().all(|&s| s < 1.0),
            "outliers widened the range"
        );
        let mut dec = vec![0f32; dim];
        let mut clamped = 0usize;
        for row in data.chunks_exact(dim) {
            let code = q.encode_vec(row);
            q.decode(&code, &mut dec);
            for i in 0..dim {
                let (lo, s) = (sq.lo()[i], sq.step()[i]);
                let c = row[i].clamp(lo, lo + 15.0 * s);
                clamped += (c != row[i]) as usize;
                assert!(
                    (c - dec[i]).abs() <= s * 0.5 * (1.0 + 1e-4) + 1e-6,
                    "dim {dim} i {i}"
                );
            }
            let t = f32::from_le_bytes(code[dim.div_ceil(2)..].try_into().unwrap());
            assert!((t - dot(&dec, &dec)).abs() <= 1e-4 * t.max(1.0));
        }
        // About 2 % by construction (1st/99th percentile), never much more.
        assert!(
            clamped as f64 <= 0.03 * data.len() as f64,
            "clamped {clamped}"
        );
    }
}

#[test]
fn bit_decode_is_a_projection() {
    for dim in [1usize, 3, 64, 100, 384] {
        let data = clustered(500, dim, 7 + dim as u64);
        let q = Quantizer::train(QuantizerKind::Bit, dim, &data).unwrap();
        let Quantizer::Bit(b) = &q else {
            unreachable!()
        };
        let mut dec = vec![0f32; dim];
        let mut ratio = 0f64;
        for row in data.chunks_exact(dim) {
            q.decode(&q.encode_vec(row), &mut dec);
            let r2: f32 = row
                .iter()
                .zip(b.mean())
                .map(|(x, c)| (x - c) * (x - c))
                .sum();
            let e2: f32 = row.iter().zip(&dec).map(|(x, y)| (x - y) * (x - y)).sum();
            // ‖r − r̂‖² = ‖r‖²(1 − ⟨ō, o⟩²) ≤ ‖r‖².
            assert!(e2 <= r2 * (1.0 + 1e-3) + 1e-6, "dim {dim}: {e2} > {r2}");
            ratio += (e2 / r2.max(1e-30)).sqrt() as f64;
        }
        let ratio = ratio / 500.0;
        println!("bit dim {dim}: mean ‖x − x̂‖/‖x − c‖ = {ratio:.3}");
        // sqrt(1 − 2/π) ≈ 0.60 for rotated Gaussian residuals; one dimension is exact.
        assert!(ratio < 0.7, "dim {dim}: {ratio}");
    }
}

#[test]
fn sq4_estimate_is_distance_to_decoded() {
    let dim = 97;
    let data = clustered(300, dim, 3);
    let q = Quantizer::train(QuantizerKind::Sq4, dim, &data).unwrap();
    let Quantizer::Sq4(sq) = &q else {
        unreachable!()
    };
    let qv = &data[..dim];
    // Query weights q·step are rounded to i8 with scale max|q·step|/127: each dimension is
    // off by at most scale/2 per code unit (15), twice that for L2 (−2⟨q, x̂⟩).
    let max_w = qv
        .iter()
        .zip(sq.step())
        .map(|(a, s)| (a * s).abs())
        .fold(0f32, f32::max);
    let slack = 2.0 * max_w / 127.0 / 2.0 * 15.0 * dim as f32;
    let mut dec = vec![0f32; dim];
    for metric in [Metric::L2, Metric::InnerProduct, Metric::L1] {
        let pq = q.prepare(metric, qv);
        let (mut rounding, mut mean) = (0f64, 0f64);
        for row in data.chunks_exact(dim) {
            let code = q.encode_vec(row);
            q.decode(&code, &mut dec);
            let (est, want) = (pq.estimate(&code), index_distance(metric, qv, &dec));
            let tol = if metric == Metric::L1 { 0.0 } else { slack };
            assert!(
                (est - want).abs() <= tol + 1e-4 * want.abs().max(1.0),
                "{metric:?} {est} {want}"
            );
            rounding += (est - want).abs() as f64 / 300.0;
            mean += (est - pq.exact(row)).abs() as f64 / 300.0;
        }
        // The weight rounding is well below the quantisation error itself.
        println!("sq4 {metric:?}: mean |est − decoded| {rounding:.5}, |est − exact| {mean:.5}");
        assert!(rounding < 0.3 * mean.max(1e-6), "{metric:?}");
    }
}

#[test]
fn bit_inner_product_estimate_is_unbiased() {
    let dim = 128;
    let data = clustered(2000, dim, 9);
    let q = Quantizer::train(QuantizerKind::Bit, dim, &data).unwrap();
    let Quantizer::Bit(b) = &q else {
        unreachable!()
    };
    let queries = clustered(20, dim, 10);
    let (mut signed, mut abs) = (0f64, 0f64);
    for qv in queries.chunks_exact(dim) {
        let pq = q.prepare(Metric::InnerProduct, qv);
        let qc: Vec<f32> = qv.iter().zip(b.mean()).map(|(x, c)| x - c).collect();
        for row in data.chunks_exact(dim) {
            // Compare on the residual part ⟨x − c, q − c⟩, the only estimated term.
            let err = pq.estimate(&q.encode_vec(row)) - pq.exact(row);
            signed += err as f64;
            let rc: Vec<f32> = row.iter().zip(b.mean()).map(|(x, c)| x - c).collect();
            abs += dot(&rc, &qc).abs() as f64;
        }
    }
    println!("bit bias / mean |⟨r, q − c⟩| = {:.4}", signed / abs);
    assert!((signed / abs).abs() < 0.02, "{}", signed / abs);
}

/// Accuracy, ranking and bound coverage on synthetic clustered data, every kind × metric.
#[test]
fn synthetic_accuracy_recall_and_bound() {
    let dim = 128;
    // Queries come from the same distribution (held-out rows): the bound is calibrated on
    // sample-vs-sample pairs, so it only transfers to queries that look like the data.
    let all = clustered(3100, dim, 21);
    let (raw_q, raw) = (all[..100 * dim].to_vec(), all[100 * dim..].to_vec());
    for metric in METRICS {
        let (data, queries) = if metric == Metric::Cosine {
            (normalized(raw.clone(), dim), normalized(raw_q.clone(), dim))
        } else {
            (raw.clone(), raw_q.clone())
        };
        for kind in KINDS {
            let q = Quantizer::train(kind, dim, &data).unwrap();
            let a = accuracy(&q, metric, &queries, &data);
            let bound = q.estimate_error_bound(metric, &data[..1000 * dim], 0.99);
            let cov = coverage(&q, metric, &queries, &data[1000 * dim..], bound);
            println!(
                "synthetic {kind:?} {metric:?}: rel err {:.4} bias {:+.4} recall {:.3} \
                 bound99 {bound:.4} coverage {cov:.4}",
                a.rel_err, a.bias, a.recall
            );
            // Limits a little looser than measured (sq8 / sq4 / bit: rel err ≤ 0.001 / 0.015 /
            // 0.053, recall 1.0 / 1.0 / ≥ 0.954).
            let (max_err, min_recall) = match kind {
                QuantizerKind::Sq8 => (0.003, 0.99),
                QuantizerKind::Sq4 => (0.025, 0.99),
                QuantizerKind::Bit => (0.08, 0.9),
            };
            assert!(
                a.rel_err < max_err,
                "{kind:?} {metric:?} rel err {}",
                a.rel_err
            );
            assert!(a.bias.abs() < 0.01, "{kind:?} {metric:?} bias {}", a.bias);
            assert!(
                a.recall >= min_recall,
                "{kind:?} {metric:?} recall {}",
                a.recall
            );
            // 100 queries × 2000 rows is a small held-out set; allow sampling noise.
            assert!(cov >= 0.985, "{kind:?} {metric:?} coverage {cov}");
        }
    }
}

#[test]
fn bound_degenerate_inputs() {
    let q = Quantizer::train(QuantizerKind::Sq4, 4, &clustered(10, 4, 1)).unwrap();
    assert_eq!(q.estimate_error_bound(Metric::L2, &[], 0.99), f32::INFINITY);
    assert_eq!(
        q.estimate_error_bound(Metric::L2, &[1.0; 4], 0.99),
        f32::INFINITY
    );
    let s = clustered(10, 4, 2);
    let (lo, hi) = (
        q.estimate_error_bound(Metric::L2, &s, 0.0),
        q.estimate_error_bound(Metric::L2, &s, 1.0),
    );
    assert!(lo <= hi && hi.is_finite());
    assert_eq!(q.estimate_error_bound(Metric::L2, &s, f64::NAN), hi);
    assert_eq!(q.estimate_error_bound(Metric::L2, &s, 7.0), hi);
    // 3 rows split in proportion 300:300 → one query, two codes; 10 rows as 1:4 → 2 × 8.
    assert_eq!(q.estimate_errors(Metric::L2, &s[..12], 300, 300).len(), 2);
    assert_eq!(q.estimate_errors(Metric::L2, &s, 100, 400).len(), 2 * 8);
}

/// Constant dimensions, huge and subnormal values: no panic, no NaN/inf estimate.
#[test]
fn degenerate_and_extreme_values() {
    let dim = 70;
    let mut train = clustered(200, dim, 31);
    for row in train.chunks_exact_mut(dim) {
        row[0] = 0.25; // constant dimension
        row[1] = 1e-41; // subnormal constant
    }
    train[2] = 1e30; // outliers in training
    train[dim + 3] = -1e30;
    train[2 * dim + 4] = f32::MAX;
    train[3 * dim + 5] = 1e-44;
    let mut probes = vec![clustered(1, dim, 32)];
    let mut extreme = vec![0f32; dim];
    for (i, x) in extreme.iter_mut().enumerate() {
        *x = [1e30, -1e30, 1e-44, -1e-40, f32::MAX, f32::MIN, 0.0][i % 7];
    }
    probes.push(extreme);
    probes.push(vec![0.0; dim]);
    probes.push(vec![1e-42; dim]);
    for kind in KINDS {
        let q = Quantizer::train(kind, dim, &train).unwrap();
        let mut dec = vec![0f32; dim];
        for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine, Metric::L1] {
            for qv in &probes {
                let pq = q.prepare(metric, qv);
                for v in probes
                    .iter()
                    .map(|v| v.as_slice())
                    .chain(train.chunks_exact(dim))
                {
                    let code = q.encode_vec(v);
                    q.decode(&code, &mut dec);
                    let e = pq.estimate(&code);
                    assert!(e.is_finite(), "{kind:?} {metric:?} estimate {e}");
                }
            }
        }
        // Constant dimension reconstructs exactly for the scalar quantizers.
        q.decode(&q.encode_vec(&train[..dim]), &mut dec);
        if kind != QuantizerKind::Bit {
            assert_eq!(dec[0], 0.25, "{kind:?}");
        }
        // Ordinary queries against ordinary rows still get ordinary estimates.
        let pq = q.prepare(Metric::L2, &probes[0]);
        let row = &train[10 * dim..11 * dim];
        let (est, ex) = (pq.estimate(&q.encode_vec(row)), pq.exact(row));
        assert!((est - ex).abs() < 0.5 * ex, "{kind:?} {est} vs {ex}");
    }
}

#[test]
fn empty_training_and_bad_shapes() {
    for kind in [QuantizerKind::Sq4, QuantizerKind::Bit] {
        let q = Quantizer::train(kind, 5, &[]).unwrap();
        let v = [0.5, -0.5, 0.1, 0.0, 0.9];
        let pq = q.prepare(Metric::InnerProduct, &v);
        assert!(pq.estimate(&q.encode_vec(&v)).is_finite());
        assert!(Quantizer::train(kind, 3, &[1.0, 2.0]).is_err());
        assert!(Quantizer::train(kind, 0, &[]).is_err());
    }
}

#[test]
fn serialisation_round_trip_and_corrupt_input() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(41);
    for kind in KINDS {
        for dim in [1usize, 9, 33, 384] {
            let data = clustered(50, dim, dim as u64);
            let q = Quantizer::train(kind, dim, &data).unwrap();
            let bytes = q.to_bytes();
            let want = match kind {
                QuantizerKind::Bit => 8 + 4 * dim + 4 + 3 * dim.div_ceil(8),
                _ => 8 + 8 * dim,
            };
            assert_eq!(bytes.len(), want, "{kind:?} {dim}");
            let back = Quantizer::from_bytes(&bytes).unwrap();
            assert_eq!(back, q);
            assert_eq!(back.encode_vec(&data[..dim]), q.encode_vec(&data[..dim]));
            // Every truncation, an extra byte, and corrupt headers are errors.
            for n in 0..bytes.len() {
                assert!(
                    Quantizer::from_bytes(&bytes[..n]).is_err(),
                    "{kind:?} {dim} len {n}"
                );
            }
            let mut long = bytes.clone();
            long.push(0);
            assert!(Quantizer::from_bytes(&long).is_err());
            for (at, val) in [(1usize, 9u8), (4, 0), (5, 0xff), (7, 0xff)] {
                let mut bad = bytes.clone();
                bad[at] = val;
                assert!(Quantizer::from_bytes(&bad).is_err(), "{kind:?} byte {at}");
            }
            // A NaN parameter is rejected.
            let mut bad = bytes.clone();
            bad[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
            assert!(Quantizer::from_bytes(&bad).is_err());
            // Random byte flips may decode to other valid parameters, but must never panic,
            // and whatever decodes must encode and estimate without panicking.
            for _ in 0..200 {
                let mut bad = bytes.clone();
                for _ in 0..rng.gen_range(1..4) {
                    let i = rng.gen_range(8..bad.len().max(9).min(bytes.len()));
                    bad[i] = rng.gen();
                }
                if let Ok(b) = Quantizer::from_bytes(&bad) {
                    let pq = b.prepare(Metric::L2, &data[..dim]);
                    let _ = pq.estimate(&b.encode_vec(&data[..dim]));
                }
            }
        }
    }
    // Bit: too many rotation rounds in an otherwise well-sized body.
    let q = Quantizer::train(QuantizerKind::Bit, 16, &clustered(10, 16, 1)).unwrap();
    let mut bad = q.to_bytes();
    let at = 8 + 4 * 16;
    bad[at..at + 4].copy_from_slice(&1000u32.to_le_bytes());
    assert!(Quantizer::from_bytes(&bad).is_err());
    // Pure garbage of every short length, with each kind byte.
    for len in 0..64 {
        for kind in 0..5u8 {
            let mut g: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            if len > 1 {
                g[0] = kind;
                g[1] = 1;
            }
            let _ = Quantizer::from_bytes(&g);
        }
    }
}

#[test]
fn l1_estimates() {
    let dim = 40;
    let data = clustered(200, dim, 51);
    for kind in [QuantizerKind::Sq4, QuantizerKind::Bit] {
        let q = Quantizer::train(kind, dim, &data).unwrap();
        let a = accuracy(&q, Metric::L1, &data[..20 * dim], &data);
        println!(
            "{kind:?} L1: rel err {:.4} recall {:.3}",
            a.rel_err, a.recall
        );
        assert!(a.rel_err < 0.5, "{kind:?} {a:?}");
    }
}
