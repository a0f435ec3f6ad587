//! Empirical error bound of quantized estimates, for selective re-ranking.
//!
//! The index stores `bound = estimate_error_bound(metric, sample, 0.99)` at build time and,
//! during search, skips the exact distance of a candidate whose `estimate − scale·bound`
//! already cannot enter the current top-k. A measured quantile is used rather than an
//! analytic worst case because the worst case (e.g. SQ's half step in every dimension at
//! once) is orders of magnitude looser than what real data shows.

use super::Quantizer;
use crate::distance::Metric;

/// Queries and codes per side: 300 × 300 = 90 000 pairs, enough for a stable 0.99 quantile
/// while staying well under a second at 1536 dimensions.
pub const PAIRS_PER_SIDE: usize = 300;

impl Quantizer {
    /// The `quantile` (clamped to [0, 1]) of `|exact − estimate|`, in the metric's index
    /// distance units, over pairs drawn deterministically from `sample` (row-major, already
    /// normalised for cosine; a trailing partial row is ignored): sample rows alternate
    /// between queries and encoded data, so no vector is compared with its own code.
    ///
    /// Returns `f32::INFINITY` ("never skip re-ranking") when the sample has fewer than two
    /// rows. Pairs whose exact distance or estimate is not finite count as infinite error.
    pub fn estimate_error_bound(&self, metric: Metric, sample: &[f32], quantile: f64) -> f32 {
        let (nq, nd) = (PAIRS_PER_SIDE, PAIRS_PER_SIDE);
        let errs = self.estimate_errors(metric, sample, nq, nd);
        if errs.is_empty() {
            return f32::INFINITY;
        }
        let q = if quantile.is_nan() {
            1.0
        } else {
            quantile.clamp(0.0, 1.0)
        };
        // Errors of one query (or one code) are correlated, so a quantile over 300 × 300
        // pairs still wobbles by a few tenths of a percent of coverage. Taking the largest
        // quantile of the four (query half × code half) blocks errs on the safe side: a
        // bound that is too small costs recall, one that is too large only re-ranks more.
        let cols = self.estimate_pair_shape(sample, nq, nd).1;
        let rows = errs.len() / cols;
        let halves = |n: usize| [(0, n / 2), (n / 2, n)];
        let mut best = f32::NEG_INFINITY;
        for (r0, r1) in halves(rows).into_iter().filter(|r| r.1 > r.0) {
            for (c0, c1) in halves(cols).into_iter().filter(|c| c.1 > c.0) {
                let mut block: Vec<f32> = (r0..r1)
                    .flat_map(|r| &errs[r * cols + c0..r * cols + c1])
                    .copied()
                    .collect();
                best = best.max(quantile_of(&mut block, q));
            }
        }
        best
    }

    /// `(queries, codes)` that [`estimate_errors`](Self::estimate_errors) will use; its
    /// result is query-major with `codes` entries per query.
    fn estimate_pair_shape(&self, sample: &[f32], queries: usize, codes: usize) -> (usize, usize) {
        let n = sample.len() / self.dim();
        let m = n.min(queries + codes);
        if m < 2 || queries == 0 || codes == 0 {
            return (0, 0);
        }
        let nq = (m * queries / (queries + codes)).clamp(1, m - 1);
        (nq, m - nq)
    }

    /// `|exact − estimate|` for up to `queries × codes` pairs (see
    /// [`estimate_error_bound`](Self::estimate_error_bound)); NaN and inf become `INFINITY`.
    pub fn estimate_errors(
        &self,
        metric: Metric,
        sample: &[f32],
        queries: usize,
        codes: usize,
    ) -> Vec<f32> {
        let dim = self.dim();
        let n = sample.len() / dim;
        let (nq, nd) = self.estimate_pair_shape(sample, queries, codes);
        if nq == 0 {
            return Vec::new();
        }
        // Evenly spaced rows so clustered or sorted tables are still covered end to end;
        // slots are split between queries and codes in proportion, interleaved.
        let m = nq + nd;
        let row = |slot: usize| &sample[slot * n / m * dim..][..dim];
        let is_query = |s: usize| (s + 1) * nq / m > s * nq / m;
        let data: Vec<(&[f32], Vec<u8>)> = (0..m)
            .filter(|&s| !is_query(s))
            .map(|s| (row(s), self.encode_vec(row(s))))
            .collect();
        let mut errs = Vec::with_capacity(data.len() * nq);
        for s in (0..m).filter(|&s| is_query(s)) {
            let pq = self.prepare(metric, row(s));
            for (v, code) in &data {
                let e = (pq.exact(v) as f64 - pq.estimate(code) as f64).abs();
                errs.push(if e.is_finite() {
                    e as f32
                } else {
                    f32::INFINITY
                });
            }
        }
        errs
    }
}

/// The `q` quantile (nearest rank, rounded up) of a non-empty slice; reorders it.
fn quantile_of(v: &mut [f32], q: f64) -> f32 {
    let idx = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    *v.select_nth_unstable_by(idx, f32::total_cmp).1
}
