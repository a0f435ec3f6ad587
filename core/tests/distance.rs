//! Accuracy tests for every distance kernel the CPU supports, against an f64 reference.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vsag_core::distance::{self, available_kernels, cosine_distance, Kernels, Metric};

const LENS: &[usize] = &[
    0, 1, 3, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 383, 384, 1536, 16000,
];

/// Value generators: small symmetric, positive, large symmetric, and log-uniform
/// magnitudes with random sign (exercises cancellation across very different scales).
fn gen(rng: &mut StdRng, kind: usize) -> f32 {
    match kind {
        0 => rng.gen_range(-1.0f32..1.0),
        1 => rng.gen_range(0.0f32..1.0),
        2 => rng.gen_range(-1e3f32..1e3),
        _ => {
            let mag = 10f32.powf(rng.gen_range(-3.0f32..3.0));
            if rng.gen::<bool>() {
                mag
            } else {
                -mag
            }
        }
    }
}

/// Returns (reference value, sum of |terms|) in f64 for the selected function.
fn reference(f: &str, a: &[f32], b: &[f32]) -> (f64, f64) {
    let mut sum = 0.0f64;
    let mut abs = 0.0f64;
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64, y as f64);
        let t = match f {
            "dot" => x * y,
            "l2" => (x - y) * (x - y),
            "l1" => (x - y).abs(),
            "norm" => x * x,
            _ => unreachable!(),
        };
        sum += t;
        abs += t.abs();
    }
    (sum, abs)
}

fn call(k: &Kernels, f: &str, a: &[f32], b: &[f32]) -> f32 {
    match f {
        "dot" => (k.dot)(a, b),
        "l2" => (k.l2_squared)(a, b),
        "l1" => (k.l1)(a, b),
        "norm" => (k.norm_squared)(a),
        _ => unreachable!(),
    }
}

/// Relative tolerance on sum|terms|. Not a worst-case bound (that grows with the
/// accumulation chain length, up to 2000 adds for scalar at 16000 dims), but rounding
/// errors are random-walk in practice, and inputs are seeded so the test is
/// deterministic. Scaled by sum|terms| because a dot product with cancellation can have
/// a tiny result whose absolute error is still set by the term magnitudes.
const TOL: f64 = 1e-5;

#[test]
fn kernels_match_f64_reference() {
    let kernels = available_kernels();
    eprintln!(
        "kernels: {:?}",
        kernels.iter().map(|k| k.0).collect::<Vec<_>>()
    );
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for &n in LENS {
        for kind in 0..4 {
            // +1 element and offset 1: exercise unaligned starts.
            let a_buf: Vec<f32> = (0..n + 1).map(|_| gen(&mut rng, kind)).collect();
            let b_buf: Vec<f32> = (0..n + 1).map(|_| gen(&mut rng, kind)).collect();
            for off in [0usize, 1] {
                let (a, b) = (&a_buf[off..off + n], &b_buf[off..off + n]);
                for f in ["dot", "l2", "l1", "norm"] {
                    let (r, abs) = reference(f, a, b);
                    let scalar = call(&kernels[0].1, f, a, b) as f64;
                    for (name, k) in &kernels {
                        let got = call(k, f, a, b) as f64;
                        let err = (got - r).abs();
                        assert!(
                            err <= TOL * abs.max(r.abs()),
                            "{name} {f} n={n} kind={kind} off={off}: got {got} want {r} (err {err:e}, scale {abs:e})"
                        );
                        assert!(
                            (got - scalar).abs() <= 2.0 * TOL * abs,
                            "{name} {f} n={n} kind={kind}: {got} vs scalar {scalar}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn exact_small_integers() {
    // Integer-valued inputs with small sums are exact in f32, so every kernel must agree
    // bit-for-bit (catches tail/mask bugs that tolerance checks might hide).
    for &n in LENS {
        let a: Vec<f32> = (0..n).map(|i| (i % 7) as f32 - 3.0).collect();
        let b: Vec<f32> = (0..n).map(|i| (i % 5) as f32 - 2.0).collect();
        for f in ["dot", "l2", "l1", "norm"] {
            let (r, _) = reference(f, &a, &b);
            for (name, k) in available_kernels() {
                assert_eq!(call(&k, f, &a, &b) as f64, r, "{name} {f} n={n}");
            }
        }
    }
}

#[test]
fn dispatched_functions_match_active_kernel() {
    let active = available_kernels()
        .into_iter()
        .find(|(n, _)| *n == distance::active_kernel_name())
        .unwrap()
        .1;
    let a: Vec<f32> = (0..100).map(|i| (i as f32).sin()).collect();
    let b: Vec<f32> = (0..100).map(|i| (i as f32).cos()).collect();
    assert_eq!(distance::dot(&a, &b), (active.dot)(&a, &b));
    assert_eq!(distance::l2_squared(&a, &b), (active.l2_squared)(&a, &b));
    assert_eq!(distance::l1(&a, &b), (active.l1)(&a, &b));
    assert_eq!(distance::norm_squared(&a), (active.norm_squared)(&a));
    assert_eq!(
        distance::distance(Metric::L2, &a, &b),
        (active.l2_squared)(&a, &b)
    );
    assert_eq!(
        distance::distance(Metric::InnerProduct, &a, &b),
        -(active.dot)(&a, &b)
    );
    assert_eq!(distance::distance(Metric::L1, &a, &b), (active.l1)(&a, &b));
    assert_eq!(
        distance::distance(Metric::Cosine, &a, &b),
        cosine_distance(&a, &b) as f32
    );
}

#[test]
fn cosine_edge_cases() {
    let z = [0.0f32; 5];
    let a = [1.0f32, -2.0, 3.0, 0.5, 7.0];
    let neg: Vec<f32> = a.iter().map(|x| -x).collect();
    let scaled: Vec<f32> = a.iter().map(|x| x * 1e3).collect();
    assert!(cosine_distance(&z, &a).is_nan());
    assert!(cosine_distance(&a, &z).is_nan());
    assert!(cosine_distance(&z, &z).is_nan());
    assert!(distance::distance(Metric::Cosine, &z, &a).is_nan());
    let same = cosine_distance(&a, &a);
    assert!((0.0..1e-6).contains(&same), "{same}");
    assert!(cosine_distance(&a, &scaled).abs() < 1e-6);
    let opp = cosine_distance(&a, &neg);
    assert!(opp <= 2.0 && opp > 2.0 - 1e-6, "{opp}");
    let ortho = cosine_distance(&[1.0, 0.0], &[0.0, 1.0]);
    assert_eq!(ortho, 1.0);
    // Clamping: never outside [0, 2] even where rounding pushes |sim| past 1.
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..2000 {
        let n = rng.gen_range(1..40);
        let v: Vec<f32> = (0..n).map(|_| gen(&mut rng, 3)).collect();
        let w: Vec<f32> = v.iter().map(|x| -x * 3.0).collect();
        let (d1, d2) = (cosine_distance(&v, &v), cosine_distance(&v, &w));
        assert!(
            (0.0..=2.0).contains(&d1) && (0.0..=2.0).contains(&d2),
            "{d1} {d2}"
        );
    }
    // 1-element vectors are exactly +-1 similar.
    assert_eq!(cosine_distance(&[3.0], &[-0.5]), 2.0);
    assert_eq!(cosine_distance(&[3.0], &[0.5]), 0.0);
}
