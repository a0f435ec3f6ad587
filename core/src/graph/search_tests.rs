//! Search-state tests: two precisions, prefetch hints.

use super::tests::{brute_force, clustered, error_bound, quiet};
use super::*;
use crate::quant::{index_distance, normalize, Quantizer, QuantizerKind};
use std::collections::HashSet;

/// VSAG's two precisions: 1-bit inline codes navigate, each node's own SQ8 code (read when
/// it is expanded) re-ranks the beam and filters exact re-ranking with its tighter bound.
#[test]
fn two_precision_search_keeps_recall_with_fewer_exact_distances() {
    let (n, dim, nq, k, ef) = (6000, 64, 200, 10, 40);
    let mut data = clustered(n + nq, dim, 30, 12);
    data.chunks_exact_mut(dim).for_each(normalize);
    let (base, queries) = data.split_at(n * dim);
    let metric = Metric::Cosine;
    let g = build(base, dim, &BuildParams { metric, m: 16, ..Default::default() }, &mut quiet());
    let nav = Quantizer::train(QuantizerKind::Bit, dim, base).unwrap();
    let fine = Quantizer::train(QuantizerKind::Sq8, dim, base).unwrap();
    let (nav_bound, fine_bound) = (error_bound(&nav, metric, base, dim), error_bound(&fine, metric, base, dim));
    let truth: Vec<HashSet<u32>> = queries
        .chunks_exact(dim)
        .map(|q| brute_force(base, dim, q, metric, k).into_iter().collect())
        .collect();
    let run = |two: bool| {
        let mut store = MemStore::new(&g, base, dim, &nav, 16);
        store.full_vectors = false;
        if two {
            store = store.with_fine(&fine);
        }
        let (mut hits, mut exact) = (0, 0);
        let mut out = Vec::new();
        let mut st = SearchState::new(nav.prepare(metric, &queries[..dim]), g.entry as u64);
        for (q, t) in queries.chunks_exact(dim).zip(&truth) {
            let mut pq = nav.prepare(metric, q);
            if two {
                pq = pq.with_fine(fine.prepare(metric, q));
            }
            st.reset(pq, g.entry as u64); // one state for all queries, as a scan keeps it
            st.run(&mut store, ef);
            st.next_batch_selective(&mut store, k, ef as f32 / k as f32, nav_bound, fine_bound, &mut out);
            assert_eq!(out.len(), k);
            assert!(out.windows(2).all(|w| w[0].dist <= w[1].dist));
            for h in &out {
                assert_eq!(h.dist, index_distance(metric, q, &base[h.id as usize * dim..][..dim]));
                assert_eq!(h.payload, Some(h.id));
            }
            hits += out.iter().filter(|h| t.contains(&(h.id as u32))).count();
            exact += st.stats().exact;
        }
        (hits as f64 / (nq * k) as f64, exact as f64 / nq as f64)
    };
    let (r1, e1) = run(false);
    let (r2, e2) = run(true);
    println!("bit only: recall@10 {r1:.4}, exact/query {e1:.1}; bit + own SQ8: {r2:.4}, {e2:.1}");
    assert!(r2 >= r1 - 0.01, "recall {r1} -> {r2}");
    assert!(e2 < 0.7 * e1, "exact {e1} -> {e2}");
}

#[test]
fn continued_two_precision_search_returns_every_node_once() {
    let (n, dim) = (400, 16);
    let data = clustered(n, dim, 5, 3);
    let g = build(&data, dim, &BuildParams { m: 8, ef_construction: 32, ..Default::default() }, &mut quiet());
    let nav = Quantizer::train(QuantizerKind::Bit, dim, &data).unwrap();
    let fine = Quantizer::train(QuantizerKind::Sq4, dim, &data).unwrap();
    let mut store = MemStore::new(&g, &data, dim, &nav, 8).with_fine(&fine);
    store.full_vectors = false;
    for i in (0..n).step_by(5) {
        store.deleted[i] = true;
    }
    let q = &data[7 * dim..8 * dim];
    let mut st = SearchState::new(nav.prepare(Metric::L2, q).with_fine(fine.prepare(Metric::L2, q)), g.entry as u64);
    st.run(&mut store, 8);
    let (mut seen, mut out) = (HashSet::new(), Vec::new());
    loop {
        st.next_batch_selective(&mut store, 6, 2.0, 0.5, 0.1, &mut out);
        if out.is_empty() {
            break;
        }
        for h in &out {
            assert!(!store.deleted[h.id as usize]);
            assert!(seen.insert(h.id), "id {} twice", h.id);
        }
    }
    assert!(st.exhausted());
    assert_eq!(seen.len(), n - n.div_ceil(5));
    assert_eq!(st.stats().expanded as usize, n);
}

/// Records `prefetch` hints and which nodes were read for expansion.
struct Recorder<'a> {
    inner: MemStore<'a>,
    prefetched: Vec<u64>,
    expanded: Vec<u64>,
}

impl super::SearchStore for Recorder<'_> {
    fn neighbours(
        &mut self,
        id: u64,
        q: &crate::quant::PreparedQuery,
        is_new: &mut dyn FnMut(u64) -> bool,
        out: &mut Vec<(u64, Option<f32>)>,
    ) -> super::Own {
        self.expanded.push(id);
        self.inner.neighbours(id, q, is_new, out)
    }
    fn estimate(&mut self, id: u64, q: &crate::quant::PreparedQuery) -> Option<(super::Score, Option<u64>)> {
        self.inner.estimate(id, q)
    }
    fn exact(&mut self, id: u64, p: Option<u64>, q: &crate::quant::PreparedQuery) -> Option<f32> {
        self.inner.exact(id, p, q)
    }
    fn prefetch(&mut self, id: u64) {
        self.prefetched.push(id);
    }
}

#[test]
fn prefetch_hints_name_later_expansions_once_and_change_nothing() {
    let (n, dim) = (2000, 16);
    let data = clustered(n, dim, 10, 4);
    let g = build(&data, dim, &BuildParams { m: 12, ef_construction: 48, ..Default::default() }, &mut quiet());
    let quant = Quantizer::train(QuantizerKind::Sq8, dim, &data).unwrap();
    for q in data.chunks_exact(dim).step_by(97) {
        let mut results = Vec::new();
        for depth in [0usize, 3] {
            let mut rec = Recorder { inner: MemStore::new(&g, &data, dim, &quant, 12), prefetched: Vec::new(), expanded: Vec::new() };
            let mut st = SearchState::new(quant.prepare(Metric::L2, q), g.entry as u64);
            st.set_prefetch_depth(depth);
            st.run(&mut rec, 32);
            results.push((st.next_batch(&mut rec, 10), rec.expanded.clone()));
            let hinted: HashSet<u64> = rec.prefetched.iter().copied().collect();
            assert_eq!(hinted.len(), rec.prefetched.len(), "a node hinted twice");
            if depth == 0 {
                assert!(rec.prefetched.is_empty());
            } else {
                let expanded: HashSet<u64> = rec.expanded.iter().copied().collect();
                let useful = hinted.iter().filter(|id| expanded.contains(id)).count();
                assert!(!hinted.is_empty() && useful * 10 >= hinted.len() * 7, "{useful} of {} hints used", hinted.len());
            }
        }
        assert_eq!(results[0], results[1], "prefetch must not change the search");
    }
}

/// Adaptive termination (QLP): under a wide beam, stopping after `patience` expansions
/// without a better k-th distance keeps recall near the full beam's at a fraction of the
/// expansions; a continuation after the stop still reaches every node.
#[test]
fn early_stop_saves_expansions_and_still_continues() {
    let (n, dim, nq, k, ef) = (6000, 32, 100, 10, 200);
    let data = clustered(n + nq, dim, 30, 5);
    let (base, queries) = data.split_at(n * dim);
    let metric = Metric::L2;
    let g = build(base, dim, &BuildParams { metric, m: 16, ..Default::default() }, &mut quiet());
    let quant = Quantizer::train(QuantizerKind::Sq8, dim, base).unwrap();
    let mut store = MemStore::new(&g, base, dim, &quant, 16);
    let run = |patience: usize, store: &mut MemStore| {
        let (mut hits, mut expanded, mut stopped) = (0, 0, 0);
        for q in queries.chunks_exact(dim) {
            let truth: HashSet<u32> = brute_force(base, dim, q, metric, k).into_iter().collect();
            let mut st = SearchState::new(quant.prepare(metric, q), g.entry as u64);
            st.set_early_stop(k, patience);
            st.run(store, ef);
            expanded += st.stats().expanded;
            stopped += st.stopped_early() as usize;
            let r = st.next_batch(store, k);
            hits += r.iter().filter(|h| truth.contains(&(h.0 as u32))).count();
        }
        (hits as f64 / (nq * k) as f64, expanded as f64 / nq as f64, stopped)
    };
    let (r_full, e_full, s_full) = run(0, &mut store);
    let (r_qlp, e_qlp, s_qlp) = run(24, &mut store);
    println!("full beam: recall {r_full:.4}, {e_full:.1} expanded; patience 24: {r_qlp:.4}, {e_qlp:.1} ({s_qlp} stopped)");
    assert_eq!(s_full, 0);
    assert!(s_qlp > nq / 2, "{s_qlp} of {nq} stopped early");
    assert!(e_qlp < 0.6 * e_full, "expanded {e_full} -> {e_qlp}");
    assert!(r_qlp >= r_full - 0.03, "recall {r_full} -> {r_qlp}");
    // Stopped early, then asked for everything: every node comes back exactly once.
    let mut st = SearchState::new(quant.prepare(metric, &queries[..dim]), g.entry as u64);
    st.set_early_stop(k, 2);
    st.run(&mut store, ef);
    assert!(st.stopped_early());
    let mut seen = HashSet::new();
    loop {
        let b = st.next_batch(&mut store, 64);
        if b.is_empty() {
            break;
        }
        for h in b {
            assert!(seen.insert(h.0), "node {} returned twice", h.0);
        }
    }
    assert_eq!(seen.len(), n);
}
