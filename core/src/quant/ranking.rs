//! How well a quantizer's estimates rank a sample's near neighbours: the measurement behind
//! the index's `quantizer = auto`.
//!
//! A graph search keeps a beam of candidates ordered by estimated distance, so what matters
//! is not the size of the error (see `bound`) but whether the true nearest neighbours come
//! out near the top of the estimated order. 1-bit codes are centred on one global mean: on
//! data made of tight, well separated clusters every code in a cluster carries nearly the
//! same signs, and the estimates cannot tell the neighbours inside a cluster apart (recall
//! 0.4 where 4-bit codes give 0.95). Real sentence embeddings rank well with 1-bit codes.
//! Measuring on the table's own sample is the only dependable way to tell the two apart.

use super::Quantizer;
use crate::distance::Metric;

/// Nearest neighbours that must be found (recall@`RANK_K`).
pub const RANK_K: usize = 10;
/// How deep into the estimated order they may sit (a beam of the default `ef_search`).
pub const RANK_DEPTH: usize = 40;

impl Quantizer {
    /// Mean recall@`RANK_K` of the top-`RANK_DEPTH` rows by estimated distance, over up to
    /// `queries` sample rows searched exhaustively among up to `base` other sample rows
    /// (evenly spaced, so sorted or clustered tables are covered end to end). `sample` is
    /// row-major, normalised for cosine. Returns 1.0 when the sample is too small to tell.
    pub fn ranking_recall(&self, metric: Metric, sample: &[f32], queries: usize, base: usize) -> f64 {
        let dim = self.dim();
        let n = sample.len() / dim;
        if n < 2 * RANK_DEPTH + 1 || queries == 0 {
            return 1.0;
        }
        let nq = queries.min(n / 10).max(1);
        let nb = base.min(n - nq);
        let row = |i: usize| &sample[i * dim..(i + 1) * dim];
        // Queries at even strides, base rows at even strides over the rest.
        let qrows: Vec<usize> = (0..nq).map(|i| i * n / nq).collect();
        let rest: Vec<usize> = (0..n).filter(|i| qrows.binary_search(i).is_err()).collect();
        let brows: Vec<usize> = (0..nb).map(|i| rest[i * rest.len() / nb]).collect();
        let codes: Vec<Vec<u8>> = brows.iter().map(|&i| self.encode_vec(row(i))).collect();
        let mut found = 0usize;
        let mut wanted = 0usize;
        let mut exact: Vec<(f32, u32)> = Vec::with_capacity(nb);
        let mut est: Vec<(f32, u32)> = Vec::with_capacity(nb);
        for &qi in &qrows {
            let pq = self.prepare(metric, row(qi));
            exact.clear();
            est.clear();
            for (j, (&bi, code)) in brows.iter().zip(&codes).enumerate() {
                exact.push((pq.exact(row(bi)), j as u32));
                est.push((pq.estimate(code), j as u32));
            }
            let k = RANK_K.min(nb);
            let depth = RANK_DEPTH.min(nb);
            top(&mut exact, k);
            top(&mut est, depth);
            let mut hit: Vec<u32> = est[..depth].iter().map(|e| e.1).collect();
            hit.sort_unstable();
            found += exact[..k].iter().filter(|e| hit.binary_search(&e.1).is_ok()).count();
            wanted += k;
        }
        found as f64 / wanted as f64
    }
}

/// Moves the `k` smallest to the front (unordered); NaN sorts last.
fn top(v: &mut [(f32, u32)], k: usize) {
    if k < v.len() {
        v.select_nth_unstable_by(k, |a, b| a.0.total_cmp(&b.0));
    }
}
