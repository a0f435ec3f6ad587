//! SQ4: per-dimension 4-bit scalar quantisation with a truncated range.
//!
//! With only 16 levels, a min/max range lets a single outlier stretch the step for every
//! other value, so training takes each dimension's `TRIM` and `1 − TRIM` percentiles of the
//! sample instead; values outside are clamped when encoded. Codes are packed two per byte
//! (dimension `2j` in the low nibble of byte `j`) and followed, like SQ8, by a 4-byte
//! trailer holding the squared norm of the *decoded* vector, so L2 costs one weighted sum
//! (`‖q‖² + ‖x̂‖² − 2⟨q, x̂⟩`) exactly as inner product and cosine do.

use super::{kernel4, sanitize, PreparedQuery, QuantError, Scoring};
use crate::distance::{self, Metric};

pub const TRAILER: usize = 4;
/// Fraction of the sample allowed below / above the trained range in each dimension.
pub const TRIM: f64 = 0.01;
const LEVELS: f32 = 15.0;
/// Range used when there is nothing to train on (suits normalised embeddings).
const DEFAULT_RANGE: (f32, f32) = (-1.0, 1.0);

#[derive(Clone, Debug, PartialEq)]
pub struct Sq4 {
    dim: usize,
    lo: Vec<f32>,
    step: Vec<f32>,
    /// `1 / step`, or 0 where the step is 0 (constant dimension: the code is always 0).
    inv_step: Vec<f32>,
}

impl Sq4 {
    pub fn code_size(dim: usize) -> usize {
        dim.div_ceil(2) + TRAILER
    }

    /// `sample` is row-major; empty gives the default [-1, 1] range. Non-finite sample values
    /// are ignored (a dimension with none left also gets the default range).
    pub fn train(dim: usize, sample: &[f32]) -> Result<Sq4, QuantError> {
        if dim == 0 {
            return Err(QuantError::BadDimension(0));
        }
        if !sample.len().is_multiple_of(dim) {
            return Err(QuantError::SampleShape {
                dim,
                len: sample.len(),
            });
        }
        let mut lo = Vec::with_capacity(dim);
        let mut step = Vec::with_capacity(dim);
        let mut col = Vec::with_capacity(sample.len() / dim);
        for d in 0..dim {
            col.clear();
            col.extend(sample.iter().skip(d).step_by(dim).filter(|x| x.is_finite()));
            let (l, h) = trimmed_range(&mut col).unwrap_or(DEFAULT_RANGE);
            lo.push(l);
            // Divide first: `h - l` can overflow for values near ±f32::MAX.
            step.push(h / LEVELS - l / LEVELS);
        }
        Ok(Self::from_parts(dim, lo, step))
    }

    fn from_parts(dim: usize, lo: Vec<f32>, mut step: Vec<f32>) -> Sq4 {
        // A step so small that its inverse overflows (subnormal ranges) is treated as a
        // constant dimension rather than producing inf · 0 = NaN when encoding.
        let inv_step = step
            .iter_mut()
            .map(|s| {
                let inv = 1.0 / *s;
                if *s > 0.0 && inv.is_finite() {
                    inv
                } else {
                    *s = 0.0;
                    0.0
                }
            })
            .collect();
        Sq4 {
            dim,
            lo,
            step,
            inv_step,
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }
    pub fn lo(&self) -> &[f32] {
        &self.lo
    }
    pub fn step(&self) -> &[f32] {
        &self.step
    }

    /// Writes `code_size(dim)` bytes to `out`.
    pub fn encode(&self, v: &[f32], out: &mut [u8]) {
        assert_eq!(v.len(), self.dim, "vector dimension");
        assert_eq!(out.len(), Self::code_size(self.dim), "code buffer size");
        let nbytes = self.dim.div_ceil(2);
        out[..nbytes].fill(0);
        let mut norm2 = 0f64;
        for (i, &x) in v.iter().enumerate() {
            // NaN (from inf · 0 or a NaN input) saturates to 0 in the cast.
            let c = ((x - self.lo[i]) * self.inv_step[i])
                .round()
                .clamp(0.0, LEVELS) as u8;
            out[i / 2] |= c << (4 * (i % 2));
            let y = (self.lo[i] + self.step[i] * c as f32) as f64;
            norm2 += y * y;
        }
        out[nbytes..].copy_from_slice(&(norm2 as f32).to_le_bytes());
    }

    pub fn decode(&self, code: &[u8], out: &mut [f32]) {
        assert_eq!(out.len(), self.dim, "output dimension");
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.lo[i] + self.step[i] * nibble(code, i) as f32;
        }
    }

    /// Folds the quantiser into query weights: `⟨q, x̂⟩ = Σ q·lo + Σ (q·step)·code`, with
    /// the weights `q·step` rounded to i8 (one scale per query) for the integer kernel.
    pub(super) fn prepare(&self, metric: Metric, query: &[f32]) -> PreparedQuery {
        assert_eq!(query.len(), self.dim, "query dimension");
        let q_norm2 = distance::norm_squared(query);
        let w: Vec<f32> = query.iter().zip(&self.step).map(|(q, s)| q * s).collect();
        let max = lanes8(&w, 0.0, |m, x| m.max(x.abs()), f32::max);
        // Weight rounding adds at most scale/2 · Σ code per estimate, an order of magnitude
        // below the 4-bit code's own error; a non-finite max (extreme query) gives scale 0.
        let scale = if max > 0.0 && max.is_finite() {
            max / 127.0
        } else {
            0.0
        };
        let inv = if scale > 0.0 && (1.0 / scale).is_finite() {
            1.0 / scale
        } else {
            0.0
        };
        // Round half away from zero by truncating `v ± 0.5` (NaN casts to 0).
        let k: Vec<i8> = w
            .iter()
            .map(|&x| {
                let v = (x * inv).clamp(-127.0, 127.0);
                (v + 0.5f32.copysign(v)) as i8
            })
            .collect();
        // The rounding residual Σ (w − scale·k)·c splits into Σ (w − scale·k)·7.5, the same
        // for every code and so folded into the bias, and a zero-mean part that is ~half as
        // large as the uncorrected sum (codes are centred on the middle level).
        let resid: Vec<f32> = w
            .iter()
            .zip(&k)
            .map(|(&x, &ki)| x - scale * ki as f32)
            .collect();
        let fix = lanes8(&resid, 0.0, |a, x| a + x, |a, b| a + b) * 7.5;
        let l1 = (metric == Metric::L1).then(|| {
            query
                .iter()
                .zip(&self.lo)
                .map(|(q, l)| q - l)
                .collect::<Vec<f32>>()
        });
        PreparedQuery {
            metric,
            query: query.to_vec(),
            q_norm2,
            scoring: Scoring::Sq4(Sq4Scoring {
                weights: kernel4::permute(&k),
                scale,
                bias: distance::dot(query, &self.lo) + if fix.is_finite() { fix } else { 0.0 },
                kernel: kernel4::select(),
                l1: l1.map(|aux| (aux, self.step.clone())),
            }),
            fine: None,
        }
    }

    /// Layout after the common header: `lo[dim]` then `step[dim]`, f32 little-endian.
    pub(super) fn write_params(&self, out: &mut Vec<u8>) {
        for x in self.lo.iter().chain(&self.step) {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }

    pub(super) fn read_params(dim: usize, body: &[u8]) -> Result<Sq4, QuantError> {
        if Some(body.len()) != dim.checked_mul(8) {
            return Err(QuantError::Corrupt("sq4 parameter length"));
        }
        let vals: Vec<f32> = body
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let (lo, step) = vals.split_at(dim);
        if lo.iter().any(|x| !x.is_finite()) || step.iter().any(|s| !(s.is_finite() && *s >= 0.0)) {
            return Err(QuantError::Corrupt("sq4 parameters not finite"));
        }
        Ok(Self::from_parts(dim, lo.to_vec(), step.to_vec()))
    }
}

/// A reduction with 8 independent accumulators, so it vectorises (a plain fold is a serial
/// dependency chain: ~4 cycles per element, which dominated `prepare` at 1536 dimensions).
pub(super) fn lanes8(
    v: &[f32],
    init: f32,
    step: impl Fn(f32, f32) -> f32,
    merge: fn(f32, f32) -> f32,
) -> f32 {
    let mut acc = [init; 8];
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        for j in 0..8 {
            acc[j] = step(acc[j], c[j]);
        }
    }
    let tail = chunks.remainder().iter().fold(init, |a, &x| step(a, x));
    acc.into_iter().fold(tail, merge)
}

#[inline]
fn nibble(code: &[u8], i: usize) -> u8 {
    (code[i / 2] >> (4 * (i % 2))) & 15
}

/// `(lo, hi)` at the `TRIM` / `1 − TRIM` percentiles of finite values; `None` if empty.
/// Reorders `col` (selection, not a full sort: training is O(n) per dimension).
pub(super) fn trimmed_range(col: &mut [f32]) -> Option<(f32, f32)> {
    let n = col.len();
    if n == 0 {
        return None;
    }
    let k_lo = (TRIM * (n - 1) as f64).floor() as usize;
    let k_hi = (((1.0 - TRIM) * (n - 1) as f64).ceil() as usize).clamp(k_lo, n - 1);
    let (_, &mut lo, upper) = col.select_nth_unstable_by(k_lo, f32::total_cmp);
    let hi = if k_hi == k_lo {
        lo
    } else {
        *upper
            .select_nth_unstable_by(k_hi - k_lo - 1, f32::total_cmp)
            .1
    };
    Some((lo, hi))
}

/// Query-side state of a prepared query.
#[derive(Clone, Debug)]
pub(crate) struct Sq4Scoring {
    /// Rounded `q·step / scale` in [`kernel4::permute`] layout.
    weights: Vec<i8>,
    scale: f32,
    /// `⟨q, lo⟩`.
    bias: f32,
    kernel: kernel4::NibbleDotFn,
    /// L1 only: `(q − lo, step)`, since `Σ |(q − lo) − step·code|` is not a dot product.
    l1: Option<(Vec<f32>, Vec<f32>)>,
}

/// Estimate for one SQ4 code; called through `PreparedQuery::estimate`.
#[inline]
pub(super) fn estimate(pq: &PreparedQuery, s: &Sq4Scoring, code: &[u8]) -> f32 {
    let nbytes = pq.query.len().div_ceil(2);
    if let Some((aux, step)) = &s.l1 {
        let d: f32 = (0..aux.len())
            .map(|i| (aux[i] - step[i] * nibble(code, i) as f32).abs())
            .sum();
        return sanitize(d);
    }
    let ip = s.bias + s.scale * (s.kernel)(&s.weights, &code[..nbytes]) as f32;
    match pq.metric {
        Metric::L2 => {
            let t = &code[nbytes..nbytes + TRAILER];
            let x_norm2 = f32::from_le_bytes([t[0], t[1], t[2], t[3]]);
            // Sanitise before clamping: `NaN.max(0.0)` would be 0, i.e. "closest".
            sanitize(pq.q_norm2 + x_norm2 - 2.0 * ip).max(0.0)
        }
        Metric::InnerProduct => sanitize(-ip),
        Metric::Cosine => sanitize(1.0 - ip),
        Metric::L1 => unreachable!("L1 handled above"),
    }
}
