//! SQ8: per-dimension scalar quantisation to one byte.
//!
//! Training records each dimension's [min, max] over a sample; a value is stored as
//! `round((x - min) / scale)` with `scale = (max - min) / 255`. Each code carries a 4-byte
//! trailer, the squared norm of the *decoded* vector, so an L2 estimate is
//! `‖q‖² + ‖x̂‖² − 2⟨q, x̂⟩` and every metric needs only one fused pass over the bytes.

use super::kernel;
use super::{PreparedQuery, QuantError, Scoring};
use crate::distance::Metric;

/// Trailer bytes appended to the `dim` code bytes.
pub const TRAILER: usize = 4;

/// Range used when there is nothing to train on (empty table at CREATE INDEX); suits
/// normalised embeddings. Values outside the trained range are clamped when encoded.
const DEFAULT_RANGE: (f32, f32) = (-1.0, 1.0);

#[derive(Clone, Debug, PartialEq)]
pub struct Sq8 {
    dim: usize,
    min: Vec<f32>,
    scale: Vec<f32>,
    /// 1/scale, or 0 for constant dimensions (their code is always 0).
    inv_scale: Vec<f32>,
}

impl Sq8 {
    pub fn code_size(dim: usize) -> usize {
        dim + TRAILER
    }

    /// `sample` is row-major, `sample.len() / dim` vectors. An empty sample yields the
    /// default [-1, 1] range in every dimension.
    pub fn train(dim: usize, sample: &[f32]) -> Result<Sq8, QuantError> {
        if dim == 0 {
            return Err(QuantError::BadDimension(0));
        }
        if !sample.len().is_multiple_of(dim) {
            return Err(QuantError::SampleShape {
                dim,
                len: sample.len(),
            });
        }
        let (mut lo, mut hi) = if sample.is_empty() {
            (vec![DEFAULT_RANGE.0; dim], vec![DEFAULT_RANGE.1; dim])
        } else {
            (vec![f32::INFINITY; dim], vec![f32::NEG_INFINITY; dim])
        };
        for row in sample.chunks_exact(dim) {
            for ((l, h), &x) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
                *l = l.min(x);
                *h = h.max(x);
            }
        }
        let scale: Vec<f32> = lo.iter().zip(&hi).map(|(l, h)| (h - l) / 255.0).collect();
        Ok(Self::from_parts(dim, lo, scale))
    }

    fn from_parts(dim: usize, min: Vec<f32>, scale: Vec<f32>) -> Sq8 {
        let inv_scale = scale
            .iter()
            .map(|&s| if s > 0.0 { 1.0 / s } else { 0.0 })
            .collect();
        Sq8 {
            dim,
            min,
            scale,
            inv_scale,
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }
    pub fn min(&self) -> &[f32] {
        &self.min
    }
    pub fn scale(&self) -> &[f32] {
        &self.scale
    }

    /// Writes `code_size(dim)` bytes to `out`.
    pub fn encode(&self, v: &[f32], out: &mut [u8]) {
        assert_eq!(v.len(), self.dim, "vector dimension");
        assert_eq!(out.len(), Self::code_size(self.dim), "code buffer size");
        let mut norm2 = 0f32;
        for i in 0..self.dim {
            let q = ((v[i] - self.min[i]) * self.inv_scale[i])
                .round()
                .clamp(0.0, 255.0);
            let c = q as u8;
            out[i] = c;
            let x = self.min[i] + self.scale[i] * c as f32;
            norm2 += x * x;
        }
        out[self.dim..].copy_from_slice(&norm2.to_le_bytes());
    }

    pub fn decode(&self, code: &[u8], out: &mut [f32]) {
        assert_eq!(out.len(), self.dim, "output dimension");
        for i in 0..self.dim {
            out[i] = self.min[i] + self.scale[i] * code[i] as f32;
        }
    }

    /// Folds the quantiser into per-dimension query weights:
    /// `⟨q, x̂⟩ = Σ q·min + Σ (q·scale)·code`, so the estimate never decodes.
    pub(super) fn prepare(&self, metric: Metric, query: &[f32]) -> PreparedQuery {
        assert_eq!(query.len(), self.dim, "query dimension");
        let q_norm2 = query.iter().map(|x| x * x).sum();
        let (weights, aux, bias) = if metric == Metric::L1 {
            // L1 cannot be folded into a dot product: Σ |(q - min) - scale·code|.
            let aux = query.iter().zip(&self.min).map(|(q, m)| q - m).collect();
            (self.scale.clone(), aux, 0.0)
        } else {
            let w = query.iter().zip(&self.scale).map(|(q, s)| q * s).collect();
            let bias = query.iter().zip(&self.min).map(|(q, m)| q * m).sum();
            (w, Vec::new(), bias)
        };
        PreparedQuery {
            metric,
            query: query.to_vec(),
            q_norm2,
            scoring: Scoring::Sq8 {
                weights,
                aux,
                bias,
                kernel: kernel::select(),
            },
            fine: None,
        }
    }

    /// Layout after the common header: `min[dim]` then `scale[dim]`, f32 little-endian.
    pub(super) fn write_params(&self, out: &mut Vec<u8>) {
        for x in self.min.iter().chain(&self.scale) {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }

    pub(super) fn read_params(dim: usize, body: &[u8]) -> Result<Sq8, QuantError> {
        if body.len() != 8 * dim {
            return Err(QuantError::Corrupt("sq8 parameter length"));
        }
        let f = |b: &[u8]| f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let vals: Vec<f32> = body.chunks_exact(4).map(f).collect();
        let (min, scale) = vals.split_at(dim);
        if scale.iter().any(|s| !(s.is_finite() && *s >= 0.0)) || min.iter().any(|m| !m.is_finite())
        {
            return Err(QuantError::Corrupt("sq8 parameters not finite"));
        }
        Ok(Self::from_parts(dim, min.to_vec(), scale.to_vec()))
    }
}

/// Estimate for one SQ8 code; called through `PreparedQuery::estimate`.
#[inline]
pub(super) fn estimate(
    pq: &PreparedQuery,
    weights: &[f32],
    aux: &[f32],
    bias: f32,
    kernel: kernel::WeightedSumFn,
    code: &[u8],
) -> f32 {
    let dim = weights.len();
    if pq.metric == Metric::L1 {
        let mut s = 0f32;
        for i in 0..dim {
            s += (aux[i] - weights[i] * code[i] as f32).abs();
        }
        return s;
    }
    let ip = bias + kernel(weights, &code[..dim]);
    match pq.metric {
        Metric::L2 => {
            let t = &code[dim..dim + TRAILER];
            let x_norm2 = f32::from_le_bytes([t[0], t[1], t[2], t[3]]);
            pq.q_norm2 + x_norm2 - 2.0 * ip
        }
        Metric::InnerProduct => -ip,
        Metric::Cosine => 1.0 - ip,
        Metric::L1 => unreachable!(),
    }
}
