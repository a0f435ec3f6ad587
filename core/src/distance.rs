//! Distance kernels with runtime CPU dispatch.
//!
//! Three implementations of the four primitive reductions (dot, squared L2, L1, squared
//! norm) exist: portable scalar, AVX2+FMA and AVX-512F. The best one the CPU supports is
//! chosen once (first use) and cached as a table of fn pointers, so the per-call cost of
//! dispatch is one atomic load plus an indirect call.
//!
//! All functions require equal-length inputs; callers (the pgrx layer checks dimensions
//! and raises a Postgres error) guarantee it, so it is only debug-asserted here.

use std::sync::OnceLock;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod scalar;

/// The four metrics the `vector` type supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Metric {
    L2,
    InnerProduct,
    Cosine,
    L1,
}

/// One implementation of the primitive reductions. Every pointer is safe to call with
/// equal-length slices: SIMD tables are only ever built after the CPU check passed.
#[derive(Clone, Copy, Debug)]
pub struct Kernels {
    pub dot: fn(&[f32], &[f32]) -> f32,
    pub l2_squared: fn(&[f32], &[f32]) -> f32,
    pub l1: fn(&[f32], &[f32]) -> f32,
    pub norm_squared: fn(&[f32]) -> f32,
}

const SCALAR: Kernels = Kernels {
    dot: scalar::dot,
    l2_squared: scalar::l2_squared,
    l1: scalar::l1,
    norm_squared: scalar::norm_squared,
};

/// Every implementation the running CPU supports, portable scalar first and the
/// fastest last (that last one is what the free functions below dispatch to).
pub fn available_kernels() -> Vec<(&'static str, Kernels)> {
    let mut v = vec![("scalar", SCALAR)];
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(k) = avx2::kernels() {
            v.push(("avx2+fma", k));
        }
        if let Some(k) = avx512::kernels() {
            v.push(("avx512f", k));
        }
    }
    v
}

fn active() -> &'static (&'static str, Kernels) {
    static ACTIVE: OnceLock<(&'static str, Kernels)> = OnceLock::new();
    ACTIVE.get_or_init(|| {
        // Escape hatch for debugging/benchmarking a specific path in production.
        let forced = std::env::var("VSAG_KERNEL").ok();
        let all = available_kernels();
        if let Some(name) = forced {
            if let Some(k) = all.iter().find(|(n, _)| *n == name) {
                return *k;
            }
        }
        *all.last().expect("scalar kernel is always available")
    })
}

/// Name of the implementation the free functions dispatch to ("scalar", "avx2+fma",
/// "avx512f").
pub fn active_kernel_name() -> &'static str {
    active().0
}

/// The dispatched kernel table (for hot loops that want to hoist the lookup).
#[inline]
pub fn kernels() -> &'static Kernels {
    &active().1
}

#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    (kernels().dot)(a, b)
}

#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    (kernels().l2_squared)(a, b)
}

#[inline]
pub fn l1(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    (kernels().l1)(a, b)
}

#[inline]
pub fn norm_squared(a: &[f32]) -> f32 {
    (kernels().norm_squared)(a)
}

/// Cosine distance with pgvector semantics: the similarity is formed in f64 from f32
/// reductions, a zero-norm operand yields NaN (0/0), and the similarity is clamped to
/// [-1, 1] so rounding can never produce a distance outside [0, 2].
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let k = kernels();
    cosine_from_parts((k.dot)(a, b), (k.norm_squared)(a), (k.norm_squared)(b))
}

/// Cosine distance from precomputed dot product and squared norms (lets callers that
/// cache norms skip two passes).
#[inline]
pub fn cosine_from_parts(dot: f32, norm_sq_a: f32, norm_sq_b: f32) -> f64 {
    // Product in f64 cannot overflow/underflow for finite f32 inputs, as in pgvector.
    let sim = dot as f64 / (norm_sq_a as f64 * norm_sq_b as f64).sqrt();
    // clamp() passes NaN through, which is what pgvector returns for zero norms.
    let sim = sim.clamp(-1.0, 1.0);
    1.0 - sim
}

/// Distance used by the index graph: smaller is closer for every metric.
/// L2 → squared L2 (monotone in L2, saves the sqrt), InnerProduct → -dot,
/// Cosine → 1 - cos (NaN if either vector has zero norm; the index must not insert
/// such vectors, as pgvector does), L1 → L1.
#[inline]
pub fn distance(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let k = kernels();
    match metric {
        Metric::L2 => (k.l2_squared)(a, b),
        Metric::InnerProduct => -(k.dot)(a, b),
        Metric::Cosine => {
            cosine_from_parts((k.dot)(a, b), (k.norm_squared)(a), (k.norm_squared)(b)) as f32
        }
        Metric::L1 => (k.l1)(a, b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_first_and_active_is_last() {
        let all = available_kernels();
        assert_eq!(all[0].0, "scalar");
        if std::env::var("VSAG_KERNEL").is_err() {
            assert_eq!(active_kernel_name(), all.last().unwrap().0);
        }
    }

    #[test]
    fn metric_distance_basics() {
        let a = [1.0f32, 0.0, 2.0];
        let b = [0.0f32, 1.0, 2.0];
        assert_eq!(distance(Metric::L2, &a, &b), 2.0);
        assert_eq!(distance(Metric::InnerProduct, &a, &b), -4.0);
        assert_eq!(distance(Metric::L1, &a, &b), 2.0);
        assert!((distance(Metric::Cosine, &a, &b) - 0.2).abs() < 1e-6);
        assert_eq!(dot(&[], &[]), 0.0);
        assert_eq!(norm_squared(&[]), 0.0);
    }
}
