//! Quantizer accuracy on real embeddings: the first 5 000 rows of MiniLM-100k (384-d,
//! unit norm) and its first 100 queries. Skipped, with a note, if the data is absent.

mod quant_common;

use quant_common::{accuracy, coverage, read_fvecs, MINILM, MINILM_QUERIES};
use vsag_core::distance::Metric;
use vsag_core::quant::{Quantizer, QuantizerKind};

const ROWS: usize = 5000;
const QUERIES: usize = 100;

#[test]
fn minilm_accuracy_recall_and_bound() {
    let Some((dim, base)) = read_fvecs(MINILM, ROWS) else {
        return;
    };
    // The query file is optional: fall back to base rows past the ones used here.
    let queries = match read_fvecs(MINILM_QUERIES, QUERIES) {
        Some((d, q)) if d == dim => q,
        _ => read_fvecs(MINILM, ROWS + QUERIES).unwrap().1[ROWS * dim..].to_vec(),
    };
    assert_eq!(base.len(), ROWS * dim, "dataset has fewer than {ROWS} rows");
    // Bound sample: the first half (what the index would sample at build time);
    // coverage is checked on the real queries against the other half only.
    let (sample, held_out) = base.split_at(ROWS / 2 * dim);
    println!("| quantizer | metric | code bytes | rel. error | bias | recall@10 in top-100 | top-10 only | bound (q=0.99) | held-out coverage |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for kind in [QuantizerKind::Sq8, QuantizerKind::Sq4, QuantizerKind::Bit] {
        // The rows are unit length already, so cosine needs no normalisation here.
        let q = Quantizer::train(kind, dim, &base).unwrap();
        for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
            let a = accuracy(&q, metric, &queries, &base);
            let bound = q.estimate_error_bound(metric, sample, 0.99);
            let cov = coverage(&q, metric, &queries, held_out, bound);
            println!(
                "| {kind:?} | {metric:?} | {} | {:.4} | {:+.4} | {:.3} | {:.3} | {bound:.4} | {cov:.4} |",
                q.code_size(),
                a.rel_err,
                a.bias,
                a.recall,
                a.recall_strict
            );
            // Limits a little looser than measured (table in BENCHMARKS.md). Inner-product
            // distances are small (|⟨x, q⟩| ≈ 0.1–0.5), so the same absolute error is a larger
            // relative one than for cosine (1 − ⟨x, q⟩ ≈ 0.5–1).
            let ip = metric == Metric::InnerProduct;
            let (max_err, min_recall, min_strict) = match kind {
                QuantizerKind::Sq8 => (if ip { 0.006 } else { 0.002 }, 0.99, 0.98),
                QuantizerKind::Sq4 => (if ip { 0.06 } else { 0.02 }, 0.99, 0.88),
                QuantizerKind::Bit => (if ip { 0.35 } else { 0.045 }, 0.97, 0.65),
            };
            assert!(
                a.rel_err < max_err,
                "{kind:?} {metric:?} rel err {}",
                a.rel_err
            );
            assert!(a.bias.abs() < 0.02, "{kind:?} {metric:?} bias {}", a.bias);
            assert!(
                a.recall >= min_recall,
                "{kind:?} {metric:?} recall {}",
                a.recall
            );
            assert!(
                a.recall_strict >= min_strict,
                "{kind:?} {metric:?} {}",
                a.recall_strict
            );
            assert!(
                cov >= 0.99,
                "{kind:?} {metric:?} coverage {cov} of bound {bound}"
            );
        }
    }
}
