//! The points a build links: float vectors, or compact codes when the floats do not fit the
//! memory budget (an SQ8 code is ~4× smaller). Over codes, a search scores neighbours with
//! the quantizer's asymmetric estimate from the decoded query (for SQ8: the exact distance
//! between the two decoded vectors), and pruning decodes its few candidates once into a
//! scratch buffer, so the graph is that of the decoded vectors.

use super::prune::robust_prune;
use crate::distance::Metric;
use crate::quant::{index_distance, PreparedQuery, Quantizer};

/// What the build links; see [`build_with`](super::build_with).
#[derive(Clone, Copy)]
pub enum BuildInput<'a> {
    /// Row-major `n × dim` (unit length for cosine).
    F32(&'a [f32]),
    /// `n` codes of `quantizer.code_size()` bytes, encoded from the index-space vectors.
    Codes {
        codes: &'a [u8],
        quantizer: &'a Quantizer,
    },
}

pub(crate) struct Points<'a> {
    pub input: BuildInput<'a>,
    pub dim: usize,
    pub metric: Metric,
    code_size: usize,
}

/// A point prepared for scoring others against it.
pub(crate) enum Scorer<'q> {
    Exact(&'q [f32], Metric),
    Code(PreparedQuery),
}

/// Hints the CPU to start loading `b` into cache (no-op off x86_64).
#[inline]
pub(crate) fn prefetch_bytes(b: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = b.as_ptr() as *const i8;
        for off in (0..b.len()).step_by(64) {
            // SAFETY: prefetch never faults; the address is inside `b`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.add(off)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = b;
}

impl<'a> Points<'a> {
    pub fn new(input: BuildInput<'a>, dim: usize, metric: Metric) -> Self {
        let code_size = match input {
            BuildInput::F32(_) => dim * 4,
            BuildInput::Codes { quantizer, .. } => quantizer.code_size(),
        };
        Points {
            input,
            dim,
            metric,
            code_size,
        }
    }

    pub fn len(&self) -> usize {
        match self.input {
            BuildInput::F32(v) => v.len() / self.dim,
            BuildInput::Codes { codes, .. } => codes.len() / self.code_size,
        }
    }

    #[inline]
    fn raw(&self, i: u32) -> &'a [u8] {
        let o = i as usize * self.code_size;
        match self.input {
            BuildInput::F32(v) => bytemuck::cast_slice(&v[o / 4..(o + self.code_size) / 4]),
            BuildInput::Codes { codes, .. } => &codes[o..o + self.code_size],
        }
    }

    #[inline]
    pub fn prefetch(&self, i: u32) {
        prefetch_bytes(self.raw(i));
    }

    /// Point `i` as floats: borrowed, or decoded into `buf`.
    #[inline]
    pub fn vector<'s>(&'s self, i: u32, buf: &'s mut Vec<f32>) -> &'s [f32] {
        match self.input {
            BuildInput::F32(v) => &v[i as usize * self.dim..(i as usize + 1) * self.dim],
            BuildInput::Codes { quantizer, .. } => {
                buf.resize(self.dim, 0.0);
                quantizer.decode(self.raw(i), buf);
                buf
            }
        }
    }

    /// Prepares `q` (a point's vector, or any query) for scoring points under `metric`.
    pub fn scorer<'q>(&self, q: &'q [f32], metric: Metric) -> Scorer<'q> {
        match self.input {
            BuildInput::F32(_) => Scorer::Exact(q, metric),
            BuildInput::Codes { quantizer, .. } => Scorer::Code(quantizer.prepare(metric, q)),
        }
    }

    #[inline]
    pub fn score(&self, s: &Scorer, i: u32) -> f32 {
        match s {
            Scorer::Exact(q, metric) => {
                let BuildInput::F32(v) = self.input else {
                    unreachable!("exact scorer over codes")
                };
                index_distance(
                    *metric,
                    q,
                    &v[i as usize * self.dim..(i as usize + 1) * self.dim],
                )
            }
            Scorer::Code(pq) => pq.estimate(self.raw(i)),
        }
    }

    /// Distance between two points (decodes both when they are codes: for rare use).
    pub fn d(&self, a: u32, b: u32) -> f32 {
        let (mut ba, mut bb) = (Vec::new(), Vec::new());
        index_distance(
            self.metric,
            self.vector(a, &mut ba),
            self.vector(b, &mut bb),
        )
    }

    /// Robust-prunes `cands` (ids with their distance to the owner, sorted as the caller
    /// wants ties broken) to at most `m`. Over codes the candidates are decoded once into
    /// `buf`, so the pairwise distances cost what they cost over floats.
    pub fn prune(
        &self,
        cands: &mut [(u32, f32)],
        alpha: f32,
        m: usize,
        buf: &mut Vec<f32>,
    ) -> Vec<u32> {
        match self.input {
            BuildInput::F32(v) => {
                let (dim, metric) = (self.dim, self.metric);
                let row = |i: u32| &v[i as usize * dim..(i as usize + 1) * dim];
                robust_prune(cands, alpha, m, |a, b| {
                    index_distance(metric, row(a), row(b))
                })
                .into_iter()
                .map(|x| x.0)
                .collect()
            }
            BuildInput::Codes { quantizer, .. } => {
                let dim = self.dim;
                buf.resize(cands.len() * dim, 0.0);
                for (k, &(id, _)) in cands.iter().enumerate() {
                    quantizer.decode(self.raw(id), &mut buf[k * dim..(k + 1) * dim]);
                }
                let mut local: Vec<(u32, f32)> = cands
                    .iter()
                    .enumerate()
                    .map(|(k, c)| (k as u32, c.1))
                    .collect();
                let metric = self.metric;
                let row = |k: u32| &buf[k as usize * dim..(k as usize + 1) * dim];
                robust_prune(&mut local, alpha, m, |a, b| {
                    index_distance(metric, row(a), row(b))
                })
                .into_iter()
                .map(|x| cands[x.0 as usize].0)
                .collect()
            }
        }
    }
}
