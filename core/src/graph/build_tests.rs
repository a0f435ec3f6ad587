//! Builds over compact codes and stopping a build (see `build_with`).

use super::tests::{brute_force, clustered};
use super::*;
use crate::quant::{normalize, Quantizer, QuantizerKind};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

/// Recall@10 of searches (exact re-rank, ef 64) on a graph built from `input` over `base`.
fn recall(input: BuildInput, base: &[f32], queries: &[f32], dim: usize, metric: Metric) -> f64 {
    let params = BuildParams {
        metric,
        ..Default::default()
    };
    let g = build_with(input, dim, &params, &AtomicBool::new(false), &mut |_, _| {}).unwrap();
    assert_eq!(g.neighbours.len(), base.len() / dim);
    assert!(g
        .neighbours
        .iter()
        .all(|l| l.len() <= params.m && !l.is_empty()));
    let quant = Quantizer::train(QuantizerKind::Sq8, dim, base).unwrap();
    let mut store = MemStore::new(&g, base, dim, &quant, params.m / 2);
    let mut hits = 0;
    let nq = queries.len() / dim;
    for q in queries.chunks_exact(dim) {
        let truth: HashSet<u32> = brute_force(base, dim, q, metric, 10).into_iter().collect();
        let got = store.search(quant.prepare(metric, q), 64, 10);
        hits += got
            .iter()
            .filter(|(id, _)| truth.contains(&(*id as u32)))
            .count();
    }
    hits as f64 / (nq * 10) as f64
}

#[test]
fn graph_over_sq8_codes_is_as_good_as_over_floats() {
    let (n, dim, nq) = (5000, 48, 100);
    for metric in [Metric::L2, Metric::Cosine, Metric::InnerProduct] {
        let mut data = clustered(n + nq, dim, 40, 3);
        if metric == Metric::Cosine {
            data.chunks_exact_mut(dim).for_each(normalize);
        }
        let (base, queries) = data.split_at(n * dim);
        let sq8 = Quantizer::train(QuantizerKind::Sq8, dim, base).unwrap();
        let mut codes = vec![0u8; n * sq8.code_size()];
        codes
            .chunks_exact_mut(sq8.code_size())
            .zip(base.chunks_exact(dim))
            .for_each(|(c, v)| sq8.encode(v, c));
        let exact = recall(BuildInput::F32(base), base, queries, dim, metric);
        let coded = recall(
            BuildInput::Codes {
                codes: &codes,
                quantizer: &sq8,
            },
            base,
            queries,
            dim,
            metric,
        );
        assert!(
            coded >= 0.9 && coded >= exact - 0.02,
            "{metric:?}: codes {coded} vs floats {exact}"
        );
    }
}

#[test]
fn abort_flag_stops_the_build() {
    let (n, dim) = (3000, 16);
    let data = clustered(n, dim, 10, 5);
    let params = BuildParams::default();
    let abort = AtomicBool::new(false);
    let mut after_abort = 0;
    let r = build_with(
        BuildInput::F32(&data),
        dim,
        &params,
        &abort,
        &mut |done, _| {
            if abort.load(Ordering::Relaxed) {
                after_abort += 1;
            }
            if done > n / 3 {
                abort.store(true, Ordering::Relaxed);
            }
        },
    );
    assert_eq!(r.unwrap_err(), Aborted);
    assert_eq!(after_abort, 0, "batches kept running after the abort");
    abort.store(true, Ordering::Relaxed);
    assert!(build_with(BuildInput::F32(&data), dim, &params, &abort, &mut |_, _| {}).is_err());
}
