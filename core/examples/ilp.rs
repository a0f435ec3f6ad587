//! Index-level parameters (issue 13, ILP): is the first m' entries of each neighbour list of
//! an m-degree graph a good m'-degree graph? Compares, at the same ef_search, recall@10 and
//! the work per query (expansions, estimates) of
//!   * `prefix`  — the m graph searched with the first m' neighbours (lists in robust-prune
//!     selection order, as the index stores them: what `vsag.search_m = m'` does);
//!   * `pruned`  — the m graph with each list re-pruned to m' (`robust_prune` over the list,
//!     same alpha): the edges a degree-m' prune keeps among the ones present, i.e. the
//!     prefix in robust-prune *selection* order (an edge label of "smallest degree at which
//!     it survives");
//!   * `build`   — a separate m' build;
//!   * `full`    — the m graph with all neighbours.
//!
//! cargo run --release -p vsag-core --example ilp -- [--data PREFIX] [--n 20000] [--nq 200]
//!     [--m 32] [--small 16] [--efs 20,40,80]

use rayon::prelude::*;
use vsag_core::distance::Metric;
use vsag_core::graph::{build, robust_prune, BuildParams, Graph, MemStore, SearchState};
use vsag_core::quant::{index_distance, normalize, Quantizer, QuantizerKind};

fn read_fvecs(path: &str) -> (Vec<f32>, usize) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let dim = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    let mut out = Vec::with_capacity(bytes.len() / (4 + 4 * dim) * dim);
    for r in bytes.chunks_exact(4 + 4 * dim) {
        out.extend(r[4..].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())));
    }
    (out, dim)
}

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map_or(default.to_string(), |s| s.clone())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let prefix = arg(&args, "--data", "/work/shared/data/minilm-100k");
    let n: usize = arg(&args, "--n", "20000").parse().unwrap();
    let nq: usize = arg(&args, "--nq", "200").parse().unwrap();
    let m: usize = arg(&args, "--m", "32").parse().unwrap();
    let small: usize = arg(&args, "--small", "16").parse().unwrap();
    let efs: Vec<usize> = arg(&args, "--efs", "20,40,80").split(',').map(|s| s.parse().unwrap()).collect();
    let metric = Metric::Cosine;
    let (mut base, dim) = read_fvecs(&format!("{prefix}.base.fvecs"));
    let (mut queries, _) = read_fvecs(&format!("{prefix}.query.fvecs"));
    base.truncate(n.min(base.len() / dim) * dim);
    let n = base.len() / dim;
    queries.truncate(nq.min(queries.len() / dim) * dim);
    base.chunks_exact_mut(dim).for_each(normalize);
    queries.chunks_exact_mut(dim).for_each(normalize);
    let k = 10;
    let gt: Vec<Vec<u32>> = queries
        .par_chunks_exact(dim)
        .map(|q| {
            let mut d: Vec<(f32, u32)> =
                base.chunks_exact(dim).enumerate().map(|(i, v)| (index_distance(metric, q, v), i as u32)).collect();
            d.select_nth_unstable_by(k, |a, b| a.0.total_cmp(&b.0));
            d[..k].iter().map(|x| x.1).collect()
        })
        .collect();
    let params = |m| BuildParams { m, ef_construction: 128, alpha: 1.2, metric, ..Default::default() };
    let big = build(&base, dim, &params(m), &mut |_, _| {});
    let separate = build(&base, dim, &params(small), &mut |_, _| {});
    let vec = |i: u32| &base[i as usize * dim..(i as usize + 1) * dim];
    let prefix_g = Graph {
        neighbours: big.neighbours.iter().map(|l| l[..l.len().min(small)].to_vec()).collect(),
        entry: big.entry,
    };
    let pruned_g = Graph {
        neighbours: big
            .neighbours
            .par_iter()
            .enumerate()
            .map(|(p, l)| {
                let mut c: Vec<(u32, f32)> = l.iter().map(|&x| (x, index_distance(metric, vec(p as u32), vec(x)))).collect();
                robust_prune(&mut c, 1.2, small, |a, b| index_distance(metric, vec(a), vec(b))).into_iter().map(|x| x.0).collect()
            })
            .collect(),
        entry: big.entry,
    };
    let same = prefix_g.neighbours.iter().zip(&pruned_g.neighbours).map(|(a, b)| b.iter().filter(|x| a.contains(x)).count()).sum::<usize>();
    let total = pruned_g.neighbours.iter().map(|l| l.len()).sum::<usize>();
    println!("n={n} dim={dim} queries={} m={m} m'={small}: the stored prefix shares {:.1}% of the re-pruned lists' edges",
        gt.len(), 100.0 * same as f64 / total as f64);
    let quant = Quantizer::train(QuantizerKind::Sq8, dim, &base).unwrap();
    println!("| graph | ef | recall@10 | expanded/q | estimates/q |");
    println!("|---|---|---|---|---|");
    for (name, g) in [("prefix", &prefix_g), ("pruned", &pruned_g), ("build", &separate), ("full", &big)] {
        let mut store = MemStore::new(g, &base, dim, &quant, m);
        for &ef in &efs {
            let (mut hits, mut expanded, mut estimates) = (0usize, 0u64, 0u64);
            for (q, truth) in queries.chunks_exact(dim).zip(&gt) {
                let mut st = SearchState::new(quant.prepare(metric, q), g.entry as u64);
                st.run(&mut store, ef.max(k));
                let got = st.next_batch(&mut store, k);
                hits += got.iter().filter(|(id, _)| truth.contains(&(*id as u32))).count();
                let s = st.stats();
                expanded += s.expanded;
                estimates += s.inline_estimates + s.fetched_estimates;
            }
            let nq = gt.len() as f64;
            println!("| {name} | {ef} | {:.4} | {:.1} | {:.1} |", hits as f64 / (k as f64 * nq), expanded as f64 / nq, estimates as f64 / nq);
        }
    }
}
