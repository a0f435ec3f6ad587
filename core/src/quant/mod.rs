//! Quantizers: compact codes for quantized-first graph search.
//!
//! # Metric contract (shared with `graph` and the index)
//! Index distances are "smaller is closer" and cheap to compute:
//! * L2 — **squared** Euclidean distance;
//! * InnerProduct — `-⟨a, b⟩`;
//! * Cosine — `1 - ⟨a, b⟩`, valid because the index **normalises every vector (and the query)
//!   to unit length before training, encoding, storing or building**. Use [`normalize`].
//! * L1 — Σ|a - b| (SQ8 and SQ4 have a scalar estimate, no fused kernel; Bit only decodes,
//!   see [`QuantizerKind::supports_metric`]).
//!
//! Quantizers: [`Sq8`] (1 byte/dim), [`Sq4`] (4 bits/dim, truncated range, integer kernel),
//! [`Bit`] (1 bit/dim, RaBitQ-style). [`Quantizer::estimate_error_bound`] measures how far
//! estimates stray from exact distances, for selective re-ranking.
//!
//! [`index_distance`] is the exact form; [`PreparedQuery::estimate`] approximates it from a code.
//! Callers converting to SQL operator values must take `sqrt` for L2 and, for cosine, the
//! distance already equals `1 - cos` of the original vectors.

pub mod bit;
mod bound;
mod ranking;
pub mod kernel;
pub mod kernel4;
pub mod popcount;
pub mod rotate;
pub mod sq4;
pub mod sq8;

use crate::distance::{self, Metric};
pub use bit::Bit;
pub use bound::PAIRS_PER_SIDE;
pub use ranking::{RANK_DEPTH, RANK_K};
pub use sq4::Sq4;
pub use sq8::Sq8;

/// Stored in the metapage; values are part of the on-disk format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum QuantizerKind {
    Sq8 = 1,
    /// 4-bit, truncated per-dimension range ([`Sq4`]).
    Sq4 = 2,
    /// 1-bit RaBitQ-style sign codes ([`Bit`]).
    Bit = 3,
}

impl QuantizerKind {
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(QuantizerKind::Sq8),
            2 => Some(QuantizerKind::Sq4),
            3 => Some(QuantizerKind::Bit),
            _ => None,
        }
    }
    /// Bytes per encoded vector, known before training (page layout needs it up front).
    pub fn code_size(self, dim: usize) -> usize {
        match self {
            QuantizerKind::Sq8 => Sq8::code_size(dim),
            QuantizerKind::Sq4 => Sq4::code_size(dim),
            QuantizerKind::Bit => Bit::code_size(dim),
        }
    }
    /// Whether `metric` has a fast estimate. `Bit` + L1 still works (via decoding, ~µs per
    /// code) but the index should refuse the combination.
    pub fn supports_metric(self, metric: Metric) -> bool {
        !(self == QuantizerKind::Bit && metric == Metric::L1)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuantError {
    BadDimension(usize),
    SampleShape { dim: usize, len: usize },
    UnknownKind(u8),
    Corrupt(&'static str),
}

impl std::fmt::Display for QuantError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QuantError::BadDimension(d) => write!(f, "invalid quantizer dimension {d}"),
            QuantError::SampleShape { dim, len } => {
                write!(
                    f,
                    "training sample of {len} floats is not a multiple of dimension {dim}"
                )
            }
            QuantError::UnknownKind(k) => write!(f, "unknown quantizer kind {k}"),
            QuantError::Corrupt(what) => write!(f, "corrupt quantizer parameters: {what}"),
        }
    }
}
impl std::error::Error for QuantError {}

/// A trained quantizer. An enum rather than a trait object so it can be stored by value,
/// matched on the hot path and (de)serialised with a kind byte.
#[derive(Clone, Debug, PartialEq)]
pub enum Quantizer {
    Sq8(Sq8),
    Sq4(Sq4),
    Bit(Bit),
}

/// Serialised header: kind u8, format version u8, 2 zero bytes, dim u32 LE.
const HEADER: usize = 8;
const PARAM_VERSION: u8 = 1;

impl Quantizer {
    /// `sample`: row-major vectors (already normalised for cosine). Empty → default range.
    pub fn train(kind: QuantizerKind, dim: usize, sample: &[f32]) -> Result<Quantizer, QuantError> {
        match kind {
            QuantizerKind::Sq8 => Ok(Quantizer::Sq8(Sq8::train(dim, sample)?)),
            QuantizerKind::Sq4 => Ok(Quantizer::Sq4(Sq4::train(dim, sample)?)),
            QuantizerKind::Bit => Ok(Quantizer::Bit(Bit::train(dim, sample)?)),
        }
    }
    pub fn kind(&self) -> QuantizerKind {
        match self {
            Quantizer::Sq8(_) => QuantizerKind::Sq8,
            Quantizer::Sq4(_) => QuantizerKind::Sq4,
            Quantizer::Bit(_) => QuantizerKind::Bit,
        }
    }
    pub fn dim(&self) -> usize {
        match self {
            Quantizer::Sq8(q) => q.dim(),
            Quantizer::Sq4(q) => q.dim(),
            Quantizer::Bit(q) => q.dim(),
        }
    }
    pub fn code_size(&self) -> usize {
        self.kind().code_size(self.dim())
    }
    /// `out.len()` must equal `code_size()`.
    pub fn encode(&self, v: &[f32], out: &mut [u8]) {
        match self {
            Quantizer::Sq8(q) => q.encode(v, out),
            Quantizer::Sq4(q) => q.encode(v, out),
            Quantizer::Bit(q) => q.encode(v, out),
        }
    }
    pub fn encode_vec(&self, v: &[f32]) -> Vec<u8> {
        let mut out = vec![0u8; self.code_size()];
        self.encode(v, &mut out);
        out
    }
    pub fn decode(&self, code: &[u8], out: &mut [f32]) {
        match self {
            Quantizer::Sq8(q) => q.decode(code, out),
            Quantizer::Sq4(q) => q.decode(code, out),
            Quantizer::Bit(q) => q.decode(code, out),
        }
    }
    /// Precomputes per-dimension terms; the query must already be normalised for cosine.
    pub fn prepare(&self, metric: Metric, query: &[f32]) -> PreparedQuery {
        match self {
            Quantizer::Sq8(q) => q.prepare(metric, query),
            Quantizer::Sq4(q) => q.prepare(metric, query),
            Quantizer::Bit(q) => q.prepare(metric, query),
        }
    }
    /// Bytes to store in the index's parameter pages: `8 + 8·dim` for SQ8 and SQ4,
    /// `8 + 4·dim + 4 + 3·⌈dim/8⌉` for Bit.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + 8 * self.dim());
        out.push(self.kind() as u8);
        out.push(PARAM_VERSION);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(self.dim() as u32).to_le_bytes());
        match self {
            Quantizer::Sq8(q) => q.write_params(&mut out),
            Quantizer::Sq4(q) => q.write_params(&mut out),
            Quantizer::Bit(q) => q.write_params(&mut out),
        }
        out
    }
    pub fn from_bytes(b: &[u8]) -> Result<Quantizer, QuantError> {
        if b.len() < HEADER {
            return Err(QuantError::Corrupt("short header"));
        }
        if b[1] != PARAM_VERSION {
            return Err(QuantError::Corrupt("unsupported parameter version"));
        }
        let dim = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
        if dim == 0 {
            return Err(QuantError::BadDimension(0));
        }
        match QuantizerKind::from_u8(b[0]) {
            Some(QuantizerKind::Sq8) => Ok(Quantizer::Sq8(Sq8::read_params(dim, &b[HEADER..])?)),
            Some(QuantizerKind::Sq4) => Ok(Quantizer::Sq4(Sq4::read_params(dim, &b[HEADER..])?)),
            Some(QuantizerKind::Bit) => Ok(Quantizer::Bit(Bit::read_params(dim, &b[HEADER..])?)),
            None => Err(QuantError::UnknownKind(b[0])),
        }
    }
}

/// Quantizer-specific precomputed state of a prepared query.
#[derive(Clone, Debug)]
pub(crate) enum Scoring {
    Sq8 {
        weights: Vec<f32>,
        aux: Vec<f32>,
        bias: f32,
        kernel: kernel::WeightedSumFn,
    },
    Sq4(sq4::Sq4Scoring),
    Bit(Box<bit::BitScoring>),
}

/// A query ready for scoring codes. Holds the f32 query too, for exact re-ranking.
#[derive(Clone, Debug)]
pub struct PreparedQuery {
    pub(crate) metric: Metric,
    pub(crate) query: Vec<f32>,
    pub(crate) q_norm2: f32,
    pub(crate) scoring: Scoring,
    /// The same query prepared for the index's second, finer quantizer (own codes).
    pub(crate) fine: Option<Box<PreparedQuery>>,
}

impl PreparedQuery {
    /// Attaches the query prepared for a finer quantizer (see [`fine`](Self::fine)).
    pub fn with_fine(mut self, fine: PreparedQuery) -> Self {
        self.fine = Some(Box::new(fine));
        self
    }
    /// The query for the finer quantizer of a two-precision index, if any.
    pub fn fine(&self) -> Option<&PreparedQuery> {
        self.fine.as_deref()
    }
    pub fn metric(&self) -> Metric {
        self.metric
    }
    pub fn query(&self) -> &[f32] {
        &self.query
    }
    /// Approximate index distance (see module docs) from a code of `code_size` bytes.
    #[inline]
    pub fn estimate(&self, code: &[u8]) -> f32 {
        match &self.scoring {
            Scoring::Sq8 {
                weights,
                aux,
                bias,
                kernel,
            } => sanitize(sq8::estimate(self, weights, aux, *bias, *kernel, code)),
            Scoring::Sq4(s) => sq4::estimate(self, s, code),
            Scoring::Bit(s) => bit::estimate(self, s, code),
        }
    }
    /// Exact index distance to a full-precision (normalised, for cosine) vector.
    #[inline]
    pub fn exact(&self, v: &[f32]) -> f32 {
        index_distance(self.metric, &self.query, v)
    }
    /// [`exact`](Self::exact) for a vector as stored in the table, i.e. not yet normalised
    /// for cosine: saves the caller a normalised copy.
    #[inline]
    pub fn exact_raw(&self, v: &[f32]) -> f32 {
        match self.metric {
            Metric::Cosine => {
                let n = distance::norm_squared(v).sqrt();
                if n > 0.0 {
                    1.0 - distance::dot(&self.query, v) / n
                } else {
                    1.0
                }
            }
            m => index_distance(m, &self.query, v),
        }
    }
}

/// The exact index distance (see module docs). Cosine assumes unit-length inputs.
#[inline]
pub fn index_distance(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        Metric::L2 => distance::l2_squared(a, b),
        Metric::InnerProduct => -distance::dot(a, b),
        Metric::Cosine => 1.0 - distance::dot(a, b),
        Metric::L1 => distance::l1(a, b),
    }
}

/// Maps a raw estimate to a finite, orderable value: NaN (from inf − inf on extreme inputs)
/// becomes "farthest" and ±inf saturates, so candidate ordering never sees NaN.
#[inline]
pub(crate) fn sanitize(d: f32) -> f32 {
    if d.is_nan() {
        f32::MAX
    } else {
        d.clamp(-f32::MAX, f32::MAX)
    }
}

/// Scales `v` to unit length in place; zero vectors are left as they are (cosine distance
/// to them is then 1, matching "no similarity").
pub fn normalize(v: &mut [f32]) {
    let n = distance::norm_squared(v).sqrt();
    if n > 0.0 {
        let inv = 1.0 / n;
        v.iter_mut().for_each(|x| *x *= inv);
    }
}

#[cfg(test)]
mod tests;
