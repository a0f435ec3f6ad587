//! A fast pseudo-random orthogonal transform for the 1-bit quantizer.
//!
//! RaBitQ's estimator is unbiased only if the residuals are randomly rotated before taking
//! signs; without it, anisotropic data (a few high-variance dimensions) makes sign codes
//! lose most of the vector. A dense random matrix would cost `dim²` floats of parameters
//! and `dim²` flops per vector, so we use rounds of "random sign flips, then a normalised
//! Walsh–Hadamard transform" (`O(dim log dim)`, parameters are just the sign bits).
//!
//! Hadamard needs a power-of-two length `B`. For other dimensions each round transforms the
//! first `B` and then the last `B` coordinates (`B` = largest power of two ≤ dim, so the two
//! blocks overlap and cover everything). Every step is orthogonal, hence so is the whole
//! transform, and inner products and norms are preserved exactly (up to rounding).

#[derive(Clone, Debug, PartialEq)]
pub struct Rotation {
    dim: usize,
    block: usize,
    /// `rounds × dim.div_ceil(8)` bytes; bit set = negate that coordinate in that round.
    signs: Vec<u8>,
    /// The same signs as ±1.0 (`rounds × dim`), so flipping is a vectorisable multiply.
    flips: Vec<f32>,
}

/// Upper limit accepted when reading parameters (three rounds are used when training).
pub const MAX_ROUNDS: usize = 8;
pub const DEFAULT_ROUNDS: usize = 3;

impl Rotation {
    /// Deterministic: the same `(dim, rounds, seed)` always gives the same transform.
    pub fn new(dim: usize, rounds: usize, seed: u64) -> Rotation {
        let mut state = seed;
        let signs = (0..rounds * dim.div_ceil(8))
            .map(|_| (splitmix64(&mut state) >> 56) as u8)
            .collect();
        Self::from_signs(dim, signs).expect("length is consistent by construction")
    }

    /// Rebuilds from stored sign bytes; `None` if their length is not a whole number of
    /// rounds (or too many rounds) for `dim`.
    pub fn from_signs(dim: usize, signs: Vec<u8>) -> Option<Rotation> {
        let per = dim.div_ceil(8);
        if dim == 0 || !signs.len().is_multiple_of(per) || signs.len() / per > MAX_ROUNDS {
            return None;
        }
        let block = 1usize << (usize::BITS - 1 - dim.leading_zeros());
        let flips = (0..signs.len() / per)
            .flat_map(|r| (0..dim).map(move |i| (r, i)))
            .map(|(r, i)| {
                if signs[r * per + i / 8] >> (i % 8) & 1 == 1 {
                    -1.0
                } else {
                    1.0
                }
            })
            .collect();
        Some(Rotation {
            dim,
            block,
            signs,
            flips,
        })
    }

    pub fn signs(&self) -> &[u8] {
        &self.signs
    }
    pub fn rounds(&self) -> usize {
        self.signs.len() / self.dim.div_ceil(8)
    }

    fn flip(&self, round: usize, x: &mut [f32]) {
        let f = &self.flips[round * self.dim..(round + 1) * self.dim];
        x.iter_mut().zip(f).for_each(|(v, s)| *v *= s);
    }

    /// `x ← R x` in place.
    pub fn forward(&self, x: &mut [f32]) {
        assert_eq!(x.len(), self.dim, "rotation dimension");
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            // SAFETY: each branch runs only on a CPU with the features it was compiled for
            // (detection results are cached by std).
            if has!("avx512f") {
                return unsafe { self.forward_avx512(x) };
            }
            if has!("avx2") {
                return unsafe { self.forward_avx2(x) };
            }
        }
        self.forward_body(x)
    }

    /// The same code compiled for wider vectors (the butterflies auto-vectorise).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn forward_avx2(&self, x: &mut [f32]) {
        self.forward_body(x)
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn forward_avx512(&self, x: &mut [f32]) {
        self.forward_body(x)
    }

    #[inline(always)]
    fn forward_body(&self, x: &mut [f32]) {
        let (d, b) = (self.dim, self.block);
        for r in 0..self.rounds() {
            self.flip(r, x);
            hadamard(&mut x[..b]);
            if b < d {
                hadamard(&mut x[d - b..]);
            }
        }
    }

    /// `x ← Rᵀ x` (each normalised Hadamard is symmetric and its own inverse). Only used
    /// by `decode`, so it is not specialised.
    pub fn inverse(&self, x: &mut [f32]) {
        assert_eq!(x.len(), self.dim, "rotation dimension");
        let (d, b) = (self.dim, self.block);
        for r in (0..self.rounds()).rev() {
            if b < d {
                hadamard(&mut x[d - b..]);
            }
            hadamard(&mut x[..b]);
            self.flip(r, x);
        }
    }
}

/// In-place orthonormal Walsh–Hadamard transform; `x.len()` is a power of two.
#[inline(always)]
fn hadamard(x: &mut [f32]) {
    let n = x.len();
    let mut h = 1;
    if n >= 8 {
        // The first three stages within each group of 8, unrolled: the generic loop below
        // would run them with 1-, 2- and 4-element inner loops that cannot be vectorised.
        for c in x.chunks_exact_mut(8) {
            let c: &mut [f32; 8] = c.try_into().unwrap();
            for step in [1, 2, 4] {
                for i in (0..8).filter(|i| i & step == 0) {
                    let (u, v) = (c[i], c[i + step]);
                    c[i] = u + v;
                    c[i + step] = u - v;
                }
            }
        }
        h = 8;
    }
    while h < n {
        for start in (0..n).step_by(2 * h) {
            let (a, b) = x[start..start + 2 * h].split_at_mut(h);
            for (u, v) in a.iter_mut().zip(b.iter_mut()) {
                let (s, t) = (*u + *v, *u - *v);
                *u = s;
                *v = t;
            }
        }
        h *= 2;
    }
    let scale = 1.0 / (n as f32).sqrt();
    x.iter_mut().for_each(|v| *v *= scale);
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orthogonal_and_invertible() {
        for &dim in &[1usize, 2, 3, 7, 64, 100, 384, 1000] {
            let r = Rotation::new(dim, DEFAULT_ROUNDS, 42);
            let x: Vec<f32> = (0..dim).map(|i| ((i * 37 % 11) as f32) - 5.0).collect();
            let y0: Vec<f32> = (0..dim).map(|i| ((i * 13 % 7) as f32) - 3.0).collect();
            let (mut a, mut b) = (x.clone(), y0.clone());
            r.forward(&mut a);
            r.forward(&mut b);
            let dot = |p: &[f32], q: &[f32]| p.iter().zip(q).map(|(u, v)| u * v).sum::<f32>();
            let scale = dot(&x, &x).max(1.0);
            assert!(
                (dot(&a, &a) - dot(&x, &x)).abs() < 1e-4 * scale,
                "norm dim {dim}"
            );
            assert!(
                (dot(&a, &b) - dot(&x, &y0)).abs() < 1e-4 * scale,
                "dot dim {dim}"
            );
            r.inverse(&mut a);
            for (u, v) in a.iter().zip(&x) {
                assert!((u - v).abs() < 1e-4, "inverse dim {dim}");
            }
        }
        assert!(Rotation::from_signs(8, vec![0; 3]).is_some());
        assert!(Rotation::from_signs(8, vec![0; 9]).is_none());
        assert!(Rotation::from_signs(0, vec![]).is_none());
    }
}
