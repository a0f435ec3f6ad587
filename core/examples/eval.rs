//! Recall / throughput evaluation of the graph + SQ8 search on fvecs data.
//!
//! cargo run --release -p vsag-core --example eval -- [--metric cosine|l2|ip] [--m 32]
//!     [--efc 128] [--alpha 1.2] [--two-pass] [--redundancy 0,0.5] [--efs 10,20,40,80,120,200]
//!     [--quantizer sq8|sq4|bit] [--fine sq4|sq8] [--build-codes] [--partitions K [--part-m M] [--primary-per-secondary R]] [--rerank ef|N] [--storage full,codes] [--bound X] [--n N] [--patience P] [--data /work/shared/data/minilm-100k]
//!
//! Each row runs every query twice: re-ranking all `rerank` candidates exactly, then the
//! selective re-rank (`next_batch_selective`, same candidates, precision filter with the
//! SQ8 error bound measured on the data). `storage` emulates full-vector tuples (no own
//! code; reading a tuple gives the exact distance) or codes-only tuples (every exact
//! distance is an `exact()` call, i.e. a heap fetch in Postgres).
//!
//! Files: <data>.base.fvecs, <data>.query.fvecs, <data>.gt-{cosine,l2}.ivecs (per row an
//! int32 count then that many f32/i32, little-endian). With --n below the base size, or for
//! ip, ground truth is recomputed by brute force.

use std::collections::HashSet;
use std::time::Instant;
use vsag_core::distance::Metric;
use vsag_core::graph::{build, build_with, BuildInput, BuildParams, MemStore, SearchState};
use vsag_core::page::NodeLayout;
use vsag_core::quant::{index_distance, normalize, Quantizer, QuantizerKind};

fn read_vecs<T: Copy>(path: &str, conv: impl Fn([u8; 4]) -> T) -> (Vec<T>, usize) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let dim = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    let row = 4 + 4 * dim;
    assert_eq!(bytes.len() % row, 0, "{path}: ragged file");
    let mut out = Vec::with_capacity(bytes.len() / row * dim);
    for r in bytes.chunks_exact(row) {
        assert_eq!(u32::from_le_bytes(r[..4].try_into().unwrap()) as usize, dim);
        out.extend(r[4..].chunks_exact(4).map(|b| conv(b.try_into().unwrap())));
    }
    (out, dim)
}

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|s| s.as_str())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let metric = match arg(&args, "--metric").unwrap_or("cosine") {
        "cosine" => Metric::Cosine,
        "l2" => Metric::L2,
        "ip" => Metric::InnerProduct,
        m => panic!("unknown metric {m}"),
    };
    let num = |name: &str, d: f64| arg(&args, name).map_or(d, |s| s.parse().unwrap());
    let list = |name: &str, d: &str| -> Vec<f64> {
        arg(&args, name)
            .unwrap_or(d)
            .split(',')
            .map(|s| s.parse().unwrap())
            .collect()
    };
    let params = BuildParams {
        m: num("--m", 32.0) as usize,
        ef_construction: num("--efc", 128.0) as usize,
        alpha: num("--alpha", 1.2) as f32,
        metric,
        two_pass: args.iter().any(|a| a == "--two-pass"),
        max_batch: arg(&args, "--max-batch").map(|s| s.parse().unwrap()),
        ..Default::default()
    };
    let redundancies = list("--redundancy", "0,0.5");
    let efs: Vec<usize> = list("--efs", "10,20,40,80,120,200")
        .into_iter()
        .map(|x| x as usize)
        .collect();
    // Adaptive termination (QLP): stop after this many expansions without a better k-th.
    let patiences: Vec<usize> = list("--patience", "0").into_iter().map(|x| x as usize).collect();
    let rerank = arg(&args, "--rerank").unwrap_or("ef").to_string();
    let storages: Vec<bool> = arg(&args, "--storage")
        .unwrap_or("full,codes")
        .split(',')
        .map(|s| match s {
            "full" => true,
            "codes" => false,
            _ => panic!("unknown storage {s}"),
        })
        .collect();
    let prefix = arg(&args, "--data").unwrap_or("/work/shared/data/minilm-100k");
    let k = 10;
    let entry_counts: Vec<usize> = list("--entries", "0").into_iter().map(|x| x as usize).collect();

    let (mut base, dim) = read_vecs(&format!("{prefix}.base.fvecs"), f32::from_le_bytes);
    let (mut queries, qdim) = read_vecs(&format!("{prefix}.query.fvecs"), f32::from_le_bytes);
    assert_eq!(dim, qdim);
    let full_n = base.len() / dim;
    let n = (num("--n", full_n as f64) as usize).min(full_n);
    base.truncate(n * dim);
    let nq = (num("--nq", (queries.len() / dim) as f64) as usize).min(queries.len() / dim);
    queries.truncate(nq * dim);
    if metric == Metric::Cosine {
        base.chunks_exact_mut(dim).for_each(normalize);
        queries.chunks_exact_mut(dim).for_each(normalize);
    }
    let gt: Vec<Vec<u32>> = if n == full_n && metric != Metric::InnerProduct {
        let name = if metric == Metric::Cosine {
            "cosine"
        } else {
            "l2"
        };
        let (g, gk) = read_vecs(&format!("{prefix}.gt-{name}.ivecs"), u32::from_le_bytes);
        g.chunks_exact(gk)
            .take(nq)
            .map(|r| r[..k].to_vec())
            .collect()
    } else {
        use rayon::prelude::*;
        queries
            .par_chunks_exact(dim)
            .map(|q| {
                let mut d: Vec<(f32, u32)> = base
                    .chunks_exact(dim)
                    .enumerate()
                    .map(|(i, v)| (index_distance(metric, q, v), i as u32))
                    .collect();
                d.select_nth_unstable_by(k, |a, b| a.0.total_cmp(&b.0));
                d[..k].iter().map(|x| x.1).collect()
            })
            .collect()
    };
    println!(
        "data {prefix}: n={n} dim={dim} queries={nq} metric={metric:?} m={} efc={} alpha={} two_pass={} threads={}",
        params.m, params.ef_construction, params.alpha, params.two_pass, rayon::current_num_threads()
    );

    let t = Instant::now();
    let mut last = Instant::now();
    let mut progress = |d: usize, tot: usize| {
        if last.elapsed().as_secs() >= 10 {
            eprintln!("  build {d}/{tot} {:.0}s", t.elapsed().as_secs_f64());
            last = Instant::now();
        }
    };
    let sample: Vec<f32> = base
        .chunks_exact(dim)
        .step_by((n / 20000).max(1))
        .flatten()
        .copied()
        .collect();
    // --build-codes: link SQ8 codes (trained on the even sample) instead of the floats, as
    // the in-database build does for tables of 10,000+ rows (it trains on every row's range).
    // --partitions K: partition-build-merge over SQ8 codes, as ambuild does when even the
    // codes and graph do not fit maintenance_work_mem (K partitions, each node in two).
    let parts = num("--partitions", 0.0) as usize;
    let g = if parts > 0 {
        println!("building in {parts} partitions over SQ8 codes");
        use vsag_core::graph::partition::{build_in_partitions, JoinPolicy};
        let mut policy = JoinPolicy::for_m(params.m);
        policy.part_m = num("--part-m", policy.part_m as f64) as usize;
        policy.primary_per_secondary = num("--primary-per-secondary", 1.0) as usize;
        println!("{policy:?}");
        build_in_partitions(&base, dim, &sample, parts, &params, policy)
    } else if args.iter().any(|a| a == "--build-codes") {
        let q = Quantizer::train(QuantizerKind::Sq8, dim, &sample).unwrap();
        let mut codes = Vec::with_capacity(n * q.code_size());
        base.chunks_exact(dim).for_each(|v| codes.extend(q.encode_vec(v)));
        println!("building over SQ8 codes");
        let never = std::sync::atomic::AtomicBool::new(false);
        build_with(BuildInput::Codes { codes: &codes, quantizer: &q }, dim, &params, &never, &mut progress).unwrap()
    } else {
        build(&base, dim, &params, &mut progress)
    };
    let build_s = t.elapsed().as_secs_f64();
    let avg_deg = g.neighbours.iter().map(|l| l.len()).sum::<usize>() as f64 / n as f64;
    println!("build {build_s:.1}s, avg degree {avg_deg:.1}");

    let kind = match arg(&args, "--quantizer").unwrap_or("sq8") {
        "sq8" => QuantizerKind::Sq8,
        "sq4" => QuantizerKind::Sq4,
        "bit" => QuantizerKind::Bit,
        q => panic!("unknown quantizer {q}"),
    };
    let quant = Quantizer::train(kind, dim, &sample).unwrap();
    // Precision-filter bound: the largest |estimate − exact| over 20 queries × the sample.
    let codes: Vec<Vec<u8>> = sample
        .chunks_exact(dim)
        .map(|v| quant.encode_vec(v))
        .collect();
    let mut bound = 0f32;
    for q in queries.chunks_exact(dim).take(20) {
        let pq = quant.prepare(metric, q);
        for (v, c) in sample.chunks_exact(dim).zip(&codes) {
            bound = bound.max((pq.estimate(c) - pq.exact(v)).abs());
        }
    }
    println!(
        "{kind:?} error bound (max |estimate - exact|, 20 queries x {}): {bound:.5}",
        codes.len()
    );
    // Two precisions: own codes of a finer quantizer (--fine sq4|sq8), with its own bound.
    let fine = arg(&args, "--fine").map(|f| {
        let kind = match f {
            "sq8" => QuantizerKind::Sq8,
            "sq4" => QuantizerKind::Sq4,
            q => panic!("unknown fine quantizer {q}"),
        };
        let fq = Quantizer::train(kind, dim, &sample).unwrap();
        let codes: Vec<Vec<u8>> = sample.chunks_exact(dim).map(|v| fq.encode_vec(v)).collect();
        let mut fb = 0f32;
        for q in queries.chunks_exact(dim).take(20) {
            let pq = fq.prepare(metric, q);
            for (v, c) in sample.chunks_exact(dim).zip(&codes) {
                fb = fb.max((pq.estimate(c) - pq.exact(v)).abs());
            }
        }
        println!("fine {kind:?} error bound: {fb:.5}");
        (fq, fb)
    });
    if let Some(b) = arg(&args, "--bound") {
        bound = b.parse().unwrap();
        println!("using --bound {bound}");
    }
    for (&full, &r, &n_entries) in storages
        .iter()
        .flat_map(|f| redundancies.iter().map(move |r| (f, r)))
        .flat_map(|(f, r)| entry_counts.iter().map(move |e| (f, r, e)))
    {
        let layout = NodeLayout::new(dim, params.m, r as f32, full, quant.code_size()).unwrap();
        let mut store = MemStore::new(&g, &base, dim, &quant, layout.inline_cap);
        if let Some((fq, _)) = &fine {
            store = store.with_fine(fq);
        }
        let fine_bound = fine.as_ref().map_or(bound, |f| f.1);
        store.full_vectors = full;
        println!(
            "\nstorage {}, redundancy {r}, entries {n_entries}: inline {} of {} (tuple {} B, {} per page), rerank={rerank}",
            if full { "full" } else { "codes" },
            layout.inline_cap,
            params.m,
            layout.tuple_size,
            layout.tuples_per_page()
        );
        println!(
            "{:>5} {:>9} {:>7} {:>8} {:>10} {:>9} {:>7} | {:>9} {:>7} {:>7} {:>8}",
            "ef",
            "recall@10",
            "QPS",
            "expanded",
            "inline_est",
            "fetch_est",
            "exact",
            "sel_rec",
            "sel_QPS",
            "sel_ex",
            "filtered"
        );
        for (ef, patience) in efs.iter().flat_map(|&e| patiences.iter().map(move |&p| (e, p))) {
            let rr = if rerank == "ef" {
                ef.max(k)
            } else {
                rerank.parse::<usize>().unwrap().max(k)
            };
            let f = |x: u64| x as f64 / nq as f64;
            let mut row = |selective: bool| {
                let mut hits = 0usize;
                let mut tot = vsag_core::graph::SearchStats::default();
                let t = Instant::now();
                for (qi, q) in queries.chunks_exact(dim).enumerate() {
                    let mut pq = quant.prepare(metric, q);
                    if let Some((fq, _)) = &fine {
                        pq = pq.with_fine(fq.prepare(metric, q));
                    }
                    // --entries S: start from the nearest of S evenly spaced nodes (exact distance).
                    let entry = if n_entries > 0 {
                        (0..n_entries)
                            .map(|j| j * (n / n_entries))
                            .min_by(|&a, &b| {
                                index_distance(metric, q, &base[a * dim..(a + 1) * dim])
                                    .total_cmp(&index_distance(metric, q, &base[b * dim..(b + 1) * dim]))
                            })
                            .unwrap()
                    } else {
                        g.entry as usize
                    };
                    let mut st = SearchState::new(pq, entry as u64);
                    st.set_early_stop(k, patience);
                    st.run(&mut store, ef.max(k));
                    // After an early stop the batch follows the beam that is left (as the scan does).
                    let rr = if st.stopped_early() { st.ef().max(k) } else { rr };
                    let res = if selective {
                        selective_batch(&mut st, &mut store, k, rr as f32 / k as f32, bound, fine_bound)
                    } else {
                        st.next_batch(&mut store, rr)
                    };
                    let truth: HashSet<u32> = gt[qi].iter().copied().collect();
                    hits += res
                        .iter()
                        .take(k)
                        .filter(|x| truth.contains(&(x.0 as u32)))
                        .count();
                    let s = st.stats();
                    tot.expanded += s.expanded;
                    tot.inline_estimates += s.inline_estimates;
                    tot.fetched_estimates += s.fetched_estimates;
                    tot.exact += s.exact;
                    tot.filtered += s.filtered;
                }
                let qps = nq as f64 / t.elapsed().as_secs_f64();
                (hits as f64 / (nq * k) as f64, qps, tot)
            };
            let (rec, qps, s) = row(false);
            let (srec, sqps, ss) = row(true);
            println!(
                "{:>5} {:>9.4} {:>7.0} {:>8.1} {:>10.1} {:>9.1} {:>7.1} | {:>9.4} {:>7.0} {:>7.1} {:>8.1}",
                format!("{ef}/{patience}"),
                rec,
                qps,
                f(s.expanded),
                f(s.inline_estimates),
                f(s.fetched_estimates),
                f(s.exact),
                srec,
                sqps,
                f(ss.exact),
                f(ss.filtered)
            );
        }
    }
}

/// `next_batch_selective` as (id, exact distance) pairs.
fn selective_batch(
    st: &mut SearchState,
    store: &mut dyn vsag_core::graph::SearchStore,
    k: usize,
    factor: f32,
    bound: f32,
    fine_bound: f32,
) -> Vec<(u64, f32)> {
    let mut out = Vec::new();
    st.next_batch_selective(store, k, factor, bound, fine_bound, &mut out);
    out.into_iter().map(|h| (h.id, h.dist)).collect()
}
