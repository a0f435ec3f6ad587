//! Bit: one bit per dimension, after RaBitQ (Gao & Long, SIGMOD'24).
//!
//! Training records the per-dimension centre `c` of the sample (mean of the values between
//! the 1st and 99th percentile, so outliers cannot move it) and a random orthogonal
//! transform `R` ([`Rotation`]). A vector `x` has residual `r = x − c`, rotated `r' = R r`
//! and unit direction `o = r'/‖r‖`; the code keeps the signs `s = sign(r')` (`ō = s/√D`).
//! RaBitQ's estimator `⟨o, q'⟩ ≈ ⟨ō, q'⟩ / ⟨ō, o⟩` is unbiased under the random rotation,
//! so per vector we store
//! * `f  = ‖r‖ / (⟨ō, o⟩·√D) = ‖r'‖² / ‖r'‖₁` — turns `⟨s, q'⟩` into an estimate of `⟨r, q − c⟩`;
//! * `rc = ⟨r, c⟩` and `r2 = ‖r‖²`, exact, so that
//!   `⟨x, q⟩ = ⟨r, q − c⟩ + ⟨r, c⟩ + ⟨c, q⟩` and `‖x − q‖² = ‖r‖² + ‖q − c‖² − 2⟨r, q − c⟩`.
//!
//! The query side `q' = R(q − c)` is quantised to [`QUERY_BITS`] bits per dimension and kept as
//! bit planes, so `⟨s, q'⟩` costs a few ANDs and popcounts per 64 dimensions
//! (see [`super::popcount`]).
//!
//! Code layout: `8·⌈D/64⌉` bytes of sign bits (dimension `i` is bit `i % 64` of little-endian
//! word `i / 64`; padding bits are 0), then `f`, `rc`, `r2` as f32 LE.

use super::popcount::{self, BitPlaneFn, QUERY_BITS};
use super::rotate::{Rotation, DEFAULT_ROUNDS, MAX_ROUNDS};
use super::sq4::{lanes8, trimmed_range};
use super::{sanitize, PreparedQuery, QuantError, Scoring};
use crate::distance::{self, Metric};

pub const TRAILER: usize = 12;
/// Fixed so that training is deterministic (the signs are stored, so this is not part of the
/// on-disk format).
const SEED: u64 = 0x5641_4721_6269_7451;

#[derive(Clone, Debug, PartialEq)]
pub struct Bit {
    dim: usize,
    mean: Vec<f32>,
    rot: Rotation,
}

/// Query-side state of a prepared query (boxed in `Scoring` to keep the enum small).
#[derive(Clone, Debug)]
pub(crate) struct BitScoring {
    /// `QUERY_BITS` planes of `words` u64 each, plane-major.
    planes: Vec<u64>,
    /// `⟨s, q̄'⟩ = two_delta·S + two_lo·popcount(s) − k`, with `S` the plane-weighted count.
    two_delta: f32,
    two_lo: f32,
    k: f32,
    /// `⟨c, q⟩` and `‖q − c‖²`.
    cq: f32,
    qc2: f32,
    kernel: BitPlaneFn,
    /// L1 has no inner-product form: it is estimated from the decoded vector (slow).
    l1: Option<Box<Bit>>,
}

fn words(dim: usize) -> usize {
    dim.div_ceil(64)
}

impl Bit {
    pub fn code_size(dim: usize) -> usize {
        8 * words(dim) + TRAILER
    }

    /// `sample` is row-major; empty gives centre 0. Non-finite values are ignored.
    pub fn train(dim: usize, sample: &[f32]) -> Result<Bit, QuantError> {
        if dim == 0 {
            return Err(QuantError::BadDimension(0));
        }
        if !sample.len().is_multiple_of(dim) {
            return Err(QuantError::SampleShape {
                dim,
                len: sample.len(),
            });
        }
        let mut mean = Vec::with_capacity(dim);
        let mut col = Vec::with_capacity(sample.len() / dim);
        for d in 0..dim {
            col.clear();
            col.extend(sample.iter().skip(d).step_by(dim).filter(|x| x.is_finite()));
            mean.push(match trimmed_range(&mut col) {
                // Trimmed mean: any centre keeps the estimator unbiased, and a few huge
                // outliers must not drag it away from the bulk (making every residual huge).
                Some((lo, hi)) => {
                    let kept = col.iter().filter(|&&x| lo <= x && x <= hi);
                    let (s, n) = kept.fold((0f64, 0usize), |(s, n), &x| (s + x as f64, n + 1));
                    (s / n as f64) as f32
                }
                None => 0.0,
            });
        }
        Ok(Bit {
            dim,
            mean,
            rot: Rotation::new(dim, DEFAULT_ROUNDS, SEED),
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    /// Writes `code_size(dim)` bytes to `out`.
    pub fn encode(&self, v: &[f32], out: &mut [u8]) {
        assert_eq!(v.len(), self.dim, "vector dimension");
        assert_eq!(out.len(), Self::code_size(self.dim), "code buffer size");
        let mut r: Vec<f32> = v.iter().zip(&self.mean).map(|(x, c)| x - c).collect();
        // Exact terms in f64 before rotating (rotation preserves them up to rounding).
        let rc: f64 = r
            .iter()
            .zip(&self.mean)
            .map(|(&a, &c)| a as f64 * c as f64)
            .sum();
        let r2: f64 = r.iter().map(|&a| a as f64 * a as f64).sum();
        self.rot.forward(&mut r);
        let nbits = 8 * words(self.dim);
        out[..nbits].fill(0);
        let mut l1 = 0f64;
        for (i, &x) in r.iter().enumerate() {
            if x >= 0.0 {
                out[i / 8] |= 1 << (i % 8);
            }
            l1 += x.abs() as f64;
        }
        // ‖r'‖₁ = 0 only for r = 0 (then every estimate term is 0 anyway).
        let f = if l1 > 0.0 && l1.is_finite() {
            r2 / l1
        } else {
            0.0
        };
        for (k, val) in [f, rc, r2].into_iter().enumerate() {
            let at = nbits + 4 * k;
            out[at..at + 4].copy_from_slice(&(val as f32).to_le_bytes());
        }
    }

    /// Least-squares reconstruction from the signs: `r' ≈ (‖r'‖₁ / D)·s`.
    pub fn decode(&self, code: &[u8], out: &mut [f32]) {
        assert_eq!(out.len(), self.dim, "output dimension");
        let [f, _, r2] = trailer(code, self.dim);
        let mag = if f > 0.0 {
            r2 / f / self.dim as f32
        } else {
            0.0
        };
        for (i, o) in out.iter_mut().enumerate() {
            *o = if code[i / 8] >> (i % 8) & 1 == 1 {
                mag
            } else {
                -mag
            };
        }
        self.rot.inverse(out);
        out.iter_mut().zip(&self.mean).for_each(|(o, c)| *o += c);
    }

    pub(super) fn prepare(&self, metric: Metric, query: &[f32]) -> PreparedQuery {
        assert_eq!(query.len(), self.dim, "query dimension");
        // SIMD reductions: a serial f64 sum would cost more than the rotation at 1536-d.
        let q_norm2 = distance::norm_squared(query);
        let mut qc: Vec<f32> = query.iter().zip(&self.mean).map(|(q, c)| q - c).collect();
        let cq = distance::dot(query, &self.mean);
        let qc2 = distance::norm_squared(&qc);
        self.rot.forward(&mut qc);
        let (planes, two_delta, two_lo, k) = quantize_query(&qc);
        PreparedQuery {
            metric,
            query: query.to_vec(),
            q_norm2,
            scoring: Scoring::Bit(Box::new(BitScoring {
                planes,
                two_delta,
                two_lo,
                k,
                cq,
                qc2,
                kernel: popcount::select(),
                l1: (metric == Metric::L1).then(|| Box::new(self.clone())),
            })),
            fine: None,
        }
    }

    /// Layout after the common header: `mean[dim]` f32 LE, rounds u32 LE, then the rotation's
    /// sign bytes (`rounds · ⌈dim/8⌉`).
    pub(super) fn write_params(&self, out: &mut Vec<u8>) {
        for x in &self.mean {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.extend_from_slice(&(self.rot.rounds() as u32).to_le_bytes());
        out.extend_from_slice(self.rot.signs());
    }

    pub(super) fn read_params(dim: usize, body: &[u8]) -> Result<Bit, QuantError> {
        let head = dim.checked_mul(4).and_then(|n| n.checked_add(4));
        let Some(head) = head.filter(|&h| h <= body.len()) else {
            return Err(QuantError::Corrupt("bit parameter length"));
        };
        let mean: Vec<f32> = body[..4 * dim]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if mean.iter().any(|x| !x.is_finite()) {
            return Err(QuantError::Corrupt("bit mean not finite"));
        }
        let r = &body[4 * dim..head];
        let rounds = u32::from_le_bytes([r[0], r[1], r[2], r[3]]) as usize;
        let signs = &body[head..];
        if rounds > MAX_ROUNDS || signs.len() != rounds * dim.div_ceil(8) {
            return Err(QuantError::Corrupt("bit rotation length"));
        }
        let rot =
            Rotation::from_signs(dim, signs.to_vec()).ok_or(QuantError::Corrupt("bit rotation"))?;
        Ok(Bit { dim, mean, rot })
    }
}

/// Scalar quantisation of the rotated query to `QUERY_BITS` bits: `q'_i ≈ lo + Δ·u_i`.
/// Returns the planes and the constants of `⟨s, q̄'⟩ = Σ s_i (lo + Δ u_i)` with `s_i = ±1`:
/// `= 2(lo·|b| + Δ·Σ b_i u_i) − (D·lo + Δ·Σ u_i)` for the 0/1 bits `b`.
fn quantize_query(q: &[f32]) -> (Vec<u64>, f32, f32, f32) {
    let levels = ((1u32 << QUERY_BITS) - 1) as f32;
    let w = words(q.len());
    let lo = lanes8(q, f32::INFINITY, f32::min, f32::min);
    let hi = lanes8(q, f32::NEG_INFINITY, f32::max, f32::max);
    let delta = hi / levels - lo / levels;
    let inv = if delta > 0.0 && (1.0 / delta).is_finite() {
        1.0 / delta
    } else {
        0.0
    };
    // `+ 0.5` then truncate = round half up on non-negative values (`f32::round` is a libm
    // call on baseline x86-64); NaN saturates to 0 in the cast.
    let mut u: Vec<u8> = q
        .iter()
        .map(|&x| ((x - lo) * inv + 0.5).clamp(0.0, levels) as u8)
        .collect();
    let sum_u: u64 = u.iter().map(|&x| x as u64).sum();
    u.resize(64 * w, 0);
    let mut planes = vec![0u64; QUERY_BITS * w];
    for (g, bytes) in u.chunks_exact(8).enumerate() {
        let lanes = u64::from_le_bytes(bytes.try_into().unwrap());
        for j in 0..QUERY_BITS {
            // Gather bit j of each of the 8 bytes into one byte (byte k → bit k).
            let b =
                ((lanes >> j) & 0x0101_0101_0101_0101).wrapping_mul(0x0102_0408_1020_4080) >> 56;
            planes[j * w + g / 8] |= b << (8 * (g % 8));
        }
    }
    let k = q.len() as f64 * lo as f64 + delta as f64 * sum_u as f64;
    (planes, 2.0 * delta, 2.0 * lo, k as f32)
}

fn trailer(code: &[u8], dim: usize) -> [f32; 3] {
    let at = 8 * words(dim);
    let f = |k: usize| {
        let b = &code[at + 4 * k..at + 4 * k + 4];
        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
    };
    [f(0), f(1), f(2)]
}

/// Estimate for one code; called through `PreparedQuery::estimate`.
#[inline]
pub(super) fn estimate(pq: &PreparedQuery, s: &BitScoring, code: &[u8]) -> f32 {
    if let Some(q) = &s.l1 {
        let mut x = vec![0f32; q.dim];
        q.decode(code, &mut x);
        return sanitize(pq.query.iter().zip(&x).map(|(a, b)| (a - b).abs()).sum());
    }
    let words = s.planes.len() / QUERY_BITS;
    let (cnt, weighted) = (s.kernel)(&code[..8 * words], &s.planes);
    let [f, rc, r2] = trailer(code, pq.query.len());
    let sq = s.two_delta * weighted as f32 + s.two_lo * cnt as f32 - s.k;
    let e = f * sq; // ≈ ⟨r, q − c⟩
    match pq.metric {
        Metric::L2 => sanitize(r2 + s.qc2 - 2.0 * e).max(0.0),
        Metric::InnerProduct => sanitize(-(e + rc + s.cq)),
        Metric::Cosine => sanitize(1.0 - (e + rc + s.cq)),
        Metric::L1 => unreachable!("L1 handled above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_planes_hold_the_rounded_levels() {
        for dim in [1usize, 7, 64, 65, 200] {
            let q: Vec<f32> = (0..dim)
                .map(|i| ((i * 7919) % 31) as f32 / 3.0 - 4.0)
                .collect();
            let (planes, two_delta, two_lo, _) = quantize_query(&q);
            let (lo, delta) = (two_lo / 2.0, two_delta / 2.0);
            let w = words(dim);
            for (i, &x) in q.iter().enumerate() {
                let u: u64 = (0..QUERY_BITS)
                    .map(|j| (planes[j * w + i / 64] >> (i % 64) & 1) << j)
                    .sum();
                assert!(
                    (lo + delta * u as f32 - x).abs() <= delta * 0.5 + 1e-5,
                    "dim {dim} i {i}"
                );
            }
            // Padding bits stay clear.
            for j in 0..QUERY_BITS {
                for i in dim..64 * w {
                    assert_eq!(planes[j * w + i / 64] >> (i % 64) & 1, 0);
                }
            }
        }
    }
}
