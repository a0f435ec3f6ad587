use super::*;
use crate::quant::{index_distance, normalize, Quantizer, QuantizerKind};
use rand::{Rng, SeedableRng};
use std::collections::HashSet;

/// Gaussian-ish clusters (sum of uniforms) with per-cluster spread.
pub(super) fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let centres: Vec<f32> = (0..clusters * dim)
        .map(|_| rng.gen_range(-1.0f32..1.0))
        .collect();
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.gen_range(0..clusters);
        let spread = 0.15 + 0.1 * (c % 3) as f32;
        for j in 0..dim {
            let noise: f32 = (0..3).map(|_| rng.gen_range(-1.0f32..1.0)).sum::<f32>() * spread;
            out.push(centres[c * dim + j] + noise);
        }
    }
    out
}

pub(super) fn brute_force(data: &[f32], dim: usize, q: &[f32], metric: Metric, k: usize) -> Vec<u32> {
    let mut d: Vec<(f32, u32)> = data
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, v)| (index_distance(metric, q, v), i as u32))
        .collect();
    d.sort_by(|a, b| a.0.total_cmp(&b.0));
    d.into_iter().take(k).map(|x| x.1).collect()
}

pub(super) fn quiet() -> impl FnMut(usize, usize) {
    |_, _| {}
}

fn reachable(g: &Graph) -> usize {
    let mut seen = vec![false; g.neighbours.len()];
    let mut stack = vec![g.entry];
    seen[g.entry as usize] = true;
    let mut count = 1;
    while let Some(u) = stack.pop() {
        for &v in &g.neighbours[u as usize] {
            if !seen[v as usize] {
                seen[v as usize] = true;
                count += 1;
                stack.push(v);
            }
        }
    }
    count
}

fn check_graph(g: &Graph, n: usize, m: usize) {
    assert_eq!(g.neighbours.len(), n);
    for (i, l) in g.neighbours.iter().enumerate() {
        assert!(l.len() <= m, "node {i} degree {}", l.len());
        assert!(!l.contains(&(i as u32)), "self loop at {i}");
        let set: HashSet<_> = l.iter().collect();
        assert_eq!(set.len(), l.len(), "repeated neighbour at {i}");
        assert!(l.iter().all(|&v| (v as usize) < n));
    }
    if n > 0 {
        assert_eq!(reachable(g), n, "graph not connected from entry");
    }
}

fn recall_for(metric: Metric) -> f64 {
    let (n, dim, nq, k) = (6000, 64, 100, 10);
    let mut data = clustered(n + nq, dim, 40, 11);
    if metric == Metric::Cosine {
        data.chunks_exact_mut(dim).for_each(normalize);
    }
    let (base, queries) = data.split_at(n * dim);
    let params = BuildParams {
        metric,
        ..Default::default()
    };
    let g = build(base, dim, &params, &mut quiet());
    check_graph(&g, n, params.m);
    let quant = Quantizer::train(QuantizerKind::Sq8, dim, base).unwrap();
    let mut store = MemStore::new(&g, base, dim, &quant, params.m / 2);
    let mut hits = 0;
    for q in queries.chunks_exact(dim) {
        let truth: HashSet<u32> = brute_force(base, dim, q, metric, k).into_iter().collect();
        let got = store.search(quant.prepare(metric, q), 64, k);
        assert_eq!(got.len(), k);
        assert!(got.windows(2).all(|w| w[0].1 <= w[1].1));
        hits += got
            .iter()
            .filter(|(id, _)| truth.contains(&(*id as u32)))
            .count();
    }
    hits as f64 / (nq * k) as f64
}

#[test]
fn recall_l2() {
    let r = recall_for(Metric::L2);
    assert!(r >= 0.95, "L2 recall@10 {r}");
}
#[test]
fn recall_inner_product() {
    let r = recall_for(Metric::InnerProduct);
    assert!(r >= 0.95, "IP recall@10 {r}");
}
#[test]
fn recall_cosine() {
    let r = recall_for(Metric::Cosine);
    assert!(r >= 0.95, "cosine recall@10 {r}");
}

#[test]
fn tiny_graphs() {
    let dim = 3;
    let g = build(&[], dim, &BuildParams::default(), &mut quiet());
    assert!(g.neighbours.is_empty());
    let quant = Quantizer::train(QuantizerKind::Sq8, dim, &[]).unwrap();
    let mut s = MemStore::new(&g, &[], dim, &quant, 4);
    assert!(s
        .search(quant.prepare(Metric::L2, &[0.0; 3]), 10, 5)
        .is_empty());

    for n in 1..=5usize {
        let data: Vec<f32> = (0..n * dim).map(|i| i as f32).collect();
        let mut calls = Vec::new();
        let g = build(&data, dim, &BuildParams::default(), &mut |d, t| {
            calls.push((d, t))
        });
        check_graph(&g, n, 32);
        assert_eq!(*calls.last().unwrap(), (n, n));
        assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0));
        let quant = Quantizer::train(QuantizerKind::Sq8, dim, &data).unwrap();
        let mut s = MemStore::new(&g, &data, dim, &quant, 1);
        let got = s.search(quant.prepare(Metric::L2, &data[..dim]), 10, 10);
        assert_eq!(got.len(), n);
        assert_eq!(got[0].0, 0);
    }
}

#[test]
fn duplicates_stay_connected() {
    let dim = 8;
    for (copies, others) in [(400usize, 0usize), (300, 300), (40, 500)] {
        let mut data = vec![0.5f32; copies * dim];
        data.extend(clustered(others, dim, 5, 3));
        let n = copies + others;
        let params = BuildParams {
            m: 12,
            ef_construction: 32,
            ..Default::default()
        };
        let g = build(&data, dim, &params, &mut quiet());
        check_graph(&g, n, params.m);
        let quant = Quantizer::train(QuantizerKind::Sq8, dim, &data).unwrap();
        let mut store = MemStore::new(&g, &data, dim, &quant, 6);
        // Searching for the duplicated value returns only copies at distance 0.
        let got = store.search(quant.prepare(Metric::L2, &data[..dim]), 40, 20);
        assert_eq!(got.len(), 20.min(n));
        assert!(
            got.iter()
                .all(|&(id, d)| (id as usize) < copies && d == 0.0),
            "{copies}/{others}"
        );
        // And a search run to the end still sees every node once.
        let mut st = SearchState::new(quant.prepare(Metric::L2, &data[..dim]), g.entry as u64);
        let mut seen = HashSet::new();
        loop {
            let b = st.next_batch(&mut store, 50);
            if b.is_empty() {
                break;
            }
            for (id, _) in b {
                assert!(seen.insert(id));
            }
        }
        assert_eq!(seen.len(), n);
    }
}

#[test]
fn always_connected_across_seeds_metrics_and_degrees() {
    for seed in 0..12u64 {
        let dim = 4 + (seed as usize % 3) * 6;
        let mut data = clustered(300, dim, 3 + seed as usize % 4, seed);
        // Some exact duplicates and a few zero-ish vectors.
        for i in 0..60 {
            let src = (i % 7) * dim;
            let (a, b) = data.split_at_mut(100 * dim);
            b[i * dim..(i + 1) * dim].copy_from_slice(&a[src..src + dim]);
        }
        for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
            let mut d = data.clone();
            if metric == Metric::Cosine {
                d.chunks_exact_mut(dim).for_each(normalize);
            }
            for m in [2usize, 4, 8] {
                let params = BuildParams {
                    m,
                    ef_construction: 16,
                    metric,
                    seed,
                    ..Default::default()
                };
                let g = build(&d, dim, &params, &mut quiet());
                check_graph(&g, 300, m);
            }
        }
    }
}

#[test]
fn continued_search_returns_every_node_once() {
    let (n, dim) = (500, 16);
    let data = clustered(n, dim, 6, 9);
    for metric in [Metric::L2, Metric::InnerProduct] {
        let params = BuildParams {
            m: 8,
            ef_construction: 32,
            metric,
            ..Default::default()
        };
        let g = build(&data, dim, &params, &mut quiet());
        check_graph(&g, n, 8);
        let quant = Quantizer::train(QuantizerKind::Sq8, dim, &data).unwrap();
        let bound = error_bound(&quant, metric, &data, dim);
        // Batch kinds: plain, selective (precision filter on), alternating.
        let modes = [
            (0, true, 0),
            (4, true, 0),
            (8, true, 0),
            (0, false, 0),
            (4, false, 0),
        ]
        .into_iter()
        .chain([(4, true, 1), (0, false, 1), (4, false, 1), (4, false, 2)]);
        for (inline, full, kind) in modes {
            let mut store = MemStore::new(&g, &data, dim, &quant, inline);
            store.full_vectors = full;
            for i in (0..n).step_by(7) {
                store.deleted[i] = true;
            }
            let mut st = SearchState::new(
                quant.prepare(metric, &data[3 * dim..4 * dim]),
                g.entry as u64,
            );
            st.run(&mut store, 10);
            let mut seen = HashSet::new();
            let mut prev_batches = 0;
            loop {
                let b = if kind == 1 || (kind == 2 && prev_batches % 2 == 0) {
                    selective(&mut st, &mut store, 7, 3.0, bound)
                } else {
                    st.next_batch(&mut store, 7)
                };
                if b.is_empty() {
                    break;
                }
                assert!(b.len() <= 7 && b.windows(2).all(|w| w[0].1 <= w[1].1));
                for (id, d) in b {
                    assert!(!store.deleted[id as usize]);
                    assert_eq!(
                        d,
                        index_distance(
                            metric,
                            &data[3 * dim..4 * dim],
                            &data[id as usize * dim..][..dim]
                        )
                    );
                    assert!(seen.insert(id), "id {id} returned twice");
                }
                prev_batches += 1;
            }
            assert!(st.exhausted());
            assert_eq!(seen.len(), n - n.div_ceil(7), "inline {inline}");
            assert!(prev_batches > 1);
            let s = st.stats();
            assert_eq!(s.expanded as usize, n);
            assert_eq!(s.returned as usize, n);
            // Full vectors: only inline-scored candidates can be filtered.
            assert!(
                if kind == 0 {
                    s.filtered == 0
                } else {
                    full || s.filtered > 0
                },
                "{s:?}"
            );
            if !full && kind == 0 {
                // Codes only: every live node needs exactly one exact distance.
                assert_eq!(s.exact as usize, n);
            }
            if inline == 0 {
                assert_eq!(s.inline_estimates, 0);
                assert_eq!(s.fetched_estimates as usize, n);
            }
            // The first batch of a fresh search is the true nearest (node 3 itself).
            let mut st = SearchState::new(
                quant.prepare(metric, &data[3 * dim..4 * dim]),
                g.entry as u64,
            );
            st.run(&mut store, 20);
            let known = st.discovered().filter(|x| x.2.is_some()).count() as u64;
            let s = st.stats();
            if full {
                assert!(known >= s.exact_on_expand && known <= s.exact_on_expand + s.fetched_exact);
                assert!(s.fetched_exact > 0 || inline == 8);
            } else {
                assert_eq!((known, s.exact_on_expand, s.fetched_exact), (0, 0, 0));
            }
            assert!(st.discovered().count() as u64 > st.stats().expanded);
            let b = st.next_batch(&mut store, 20);
            if metric == Metric::L2 {
                assert_eq!(b[0].0, 3);
            }
        }
    }
}

#[test]
fn build_is_deterministic_and_reports_progress_on_caller_thread() {
    let (n, dim) = (3000, 12);
    let data = clustered(n, dim, 8, 5);
    let caller = std::thread::current().id();
    let mut last = 0;
    let params = BuildParams {
        m: 10,
        ef_construction: 40,
        ..Default::default()
    };
    let g1 = build(&data, dim, &params, &mut |d, t| {
        assert_eq!(std::thread::current().id(), caller);
        assert!(d >= last && t == n);
        last = d;
    });
    assert_eq!(last, n);
    let g2 = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| build(&data, dim, &params, &mut quiet()));
    assert_eq!(g1.neighbours, g2.neighbours);
    assert_eq!(g1.entry, g2.entry);
    // Neighbour lists are in selection order (the order insert and VACUUM keep): every
    // prefix is what a prune of the list bounded at its length keeps.
    let row = |i: usize| &data[i * dim..][..dim];
    for (i, l) in g1.neighbours.iter().enumerate() {
        let mut c: Vec<(u32, f32)> = l.iter().map(|&v| (v, index_distance(Metric::L2, row(i), row(v as usize)))).collect();
        let all = robust_prune(&mut c.clone(), params.alpha, l.len(), |a, b| index_distance(Metric::L2, row(a as usize), row(b as usize)));
        for k in [1, all.len() / 2, all.len()] {
            let bounded: Vec<u32> = robust_prune(&mut c, params.alpha, k, |a, b| index_distance(Metric::L2, row(a as usize), row(b as usize)))
                .into_iter()
                .map(|x| x.0)
                .collect();
            assert_eq!(bounded[..], l[..k], "node {i}");
        }
    }
    let two = BuildParams {
        two_pass: true,
        ..params
    };
    let g3 = build(&data, dim, &two, &mut |d, t| {
        assert!(d <= t && t == 2 * n);
    });
    check_graph(&g3, n, 10);
    assert!(build_memory_estimate(n, dim, 10) > n * dim * 4);
}

#[test]
fn prune_with_opaque_u64_ids() {
    // The insert path passes packed TIDs and a distance callback between stored nodes.
    let pts: Vec<(u64, [f32; 2])> = vec![
        ((7 << 16) | 1, [1.0, 0.0]),
        ((7 << 16) | 2, [1.05, 0.0]),
        ((9 << 16) | 1, [0.0, 1.0]),
    ];
    let d = |a: &[f32; 2], b: &[f32; 2]| (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2);
    let find = |id: u64| pts.iter().find(|p| p.0 == id).unwrap().1;
    let mut cands: Vec<(u64, f32)> = pts.iter().map(|(id, v)| (*id, d(v, &[0.0, 0.0]))).collect();
    let got = robust_prune(&mut cands, 1.0, 8, |a, b| d(&find(a), &find(b)));
    assert_eq!(
        got.iter().map(|x| x.0).collect::<Vec<_>>(),
        vec![(7 << 16) | 1, 9 << 16 | 1]
    );
}

/// Largest |estimate − exact| of the SQ8 codes over the first 20 rows as queries and all
/// rows as targets: the "measured" error bound for the precision filter.
pub(super) fn error_bound(quant: &Quantizer, metric: Metric, data: &[f32], dim: usize) -> f32 {
    let codes: Vec<Vec<u8>> = data
        .chunks_exact(dim)
        .map(|v| quant.encode_vec(v))
        .collect();
    let mut worst = 0f32;
    for q in data.chunks_exact(dim).take(20) {
        let pq = quant.prepare(metric, q);
        for (v, c) in data.chunks_exact(dim).zip(&codes) {
            worst = worst.max((pq.estimate(c) - pq.exact(v)).abs());
        }
    }
    worst
}

#[test]
fn selective_with_generous_bound_equals_full_rerank() {
    let (n, dim, k) = (3000, 32, 10);
    let mut data = clustered(n + 50, dim, 20, 21);
    data.chunks_exact_mut(dim).for_each(normalize);
    let (base, queries) = data.split_at(n * dim);
    for metric in [Metric::L2, Metric::Cosine] {
        let params = BuildParams {
            m: 16,
            ef_construction: 64,
            metric,
            ..Default::default()
        };
        let g = build(base, dim, &params, &mut quiet());
        let quant = Quantizer::train(QuantizerKind::Sq8, dim, base).unwrap();
        let generous = 4.0 * error_bound(&quant, metric, base, dim);
        for (inline, full) in [(0, true), (8, true), (0, false), (8, false)] {
            let mut store = MemStore::new(&g, base, dim, &quant, inline);
            store.full_vectors = full;
            for (ef, factor) in [(40, 4.0f32), (20, 2.0), (64, 1.0)] {
                for q in queries.chunks_exact(dim) {
                    let search = |store: &mut MemStore, bound: Option<f32>| {
                        let mut st = SearchState::new(quant.prepare(metric, q), g.entry as u64);
                        st.run(store, ef);
                        let r = match bound {
                            None => {
                                let mut r = st.next_batch(store, (k as f32 * factor) as usize);
                                r.truncate(k);
                                r
                            }
                            Some(b) => selective(&mut st, store, k, factor, b),
                        };
                        (r, st.stats())
                    };
                    let (want, _) = search(&mut store, None);
                    let (off, s_off) = search(&mut store, Some(f32::INFINITY));
                    let (gen, s_gen) = search(&mut store, Some(generous));
                    assert_eq!(off, want, "{metric:?} inline {inline} full {full}");
                    assert_eq!(gen, want, "{metric:?} inline {inline} full {full}");
                    assert_eq!(s_off.filtered, 0);
                    assert!(s_gen.exact <= s_off.exact);
                }
            }
        }
    }
}

#[test]
fn selective_rerank_keeps_recall_with_fewer_exact_distances() {
    let (n, dim, nq, k) = (6000, 64, 200, 10);
    // One Gaussian-ish blob: hard enough that recall@10 is below 1 at small ef.
    let data = clustered(n + nq, dim, 1, 11);
    let (base, queries) = data.split_at(n * dim);
    let metric = Metric::L2;
    let g = build(
        base,
        dim,
        &BuildParams {
            metric,
            ..Default::default()
        },
        &mut quiet(),
    );
    let quant = Quantizer::train(QuantizerKind::Sq8, dim, base).unwrap();
    let bound = error_bound(&quant, metric, base, dim);
    let truth: Vec<HashSet<u32>> = queries
        .chunks_exact(dim)
        .map(|q| brute_force(base, dim, q, metric, k).into_iter().collect())
        .collect();
    // Codes only (every exact distance is a heap fetch in Postgres), then full vectors with
    // inline codes (only inline-scored candidates need one).
    for (inline, full, ef) in [
        (16, false, 64),
        (16, false, 16),
        (16, true, 64),
        (16, true, 16),
    ] {
        let mut store = MemStore::new(&g, base, dim, &quant, inline);
        store.full_vectors = full;
        let mut run = |b: f32| {
            let (mut hits, mut exact, mut filtered) = (0, 0, 0);
            for (q, t) in queries.chunks_exact(dim).zip(&truth) {
                let mut st = SearchState::new(quant.prepare(metric, q), g.entry as u64);
                st.run(&mut store, ef);
                let r = selective(&mut st, &mut store, k, ef as f32 / k as f32, b);
                assert_eq!(r.len(), k);
                hits += r.iter().filter(|x| t.contains(&(x.0 as u32))).count();
                exact += st.stats().exact;
                filtered += st.stats().filtered;
            }
            let per_q = |x: u64| x as f64 / nq as f64;
            (hits as f64 / (nq * k) as f64, per_q(exact), per_q(filtered))
        };
        let (r_all, e_all, _) = run(f32::INFINITY);
        let (r_sel, e_sel, f_sel) = run(bound);
        println!(
            "ef {ef} inline {inline} full {full}: SQ8 bound {bound:.4}; recall@10 {r_all:.4} -> {r_sel:.4}, \
             exact/query {e_all:.1} -> {e_sel:.1} (filtered {f_sel:.1})"
        );
        assert!(r_sel >= r_all - 0.005, "recall {r_all} -> {r_sel}");
        if !full && ef >= 4 * k {
            assert!(e_sel < 0.6 * e_all, "exact {e_all} -> {e_sel}");
        }
    }
}

/// `next_batch_selective` as (id, exact distance) pairs.
fn selective(st: &mut SearchState, store: &mut dyn super::SearchStore, k: usize, factor: f32, bound: f32) -> Vec<(u64, f32)> {
    let mut out = Vec::new();
    st.next_batch_selective(store, k, factor, bound, bound, &mut out);
    out.into_iter().map(|h| (h.id, h.dist)).collect()
}
