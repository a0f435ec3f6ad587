//! The end of a build whose float vectors outgrew `maintenance_work_mem` (they wait in a
//! temporary file, see `build_spill`). If SQ8 codes and the graph fit, the rows come back
//! as codes and the usual in-memory build follows. Otherwise the graph is built by
//! partition–build–merge (`vsag_core::graph::partition`, whose `build_in_partitions` is
//! the same algorithm in memory): k-means clusters on the sample packed into partitions,
//! each node in its nearest cluster's partition and one more, one in-memory graph per
//! partition (over SQ8 codes, in parallel), and each node's final list joined from its
//! two partitions' lists. The node tuples are written first without neighbours; each
//! partition then fills in its members' lists in shared buffers (WAL-logged with the rest
//! of the index as full page images at the end of the build). Memory: one partition, plus
//! about 24 bytes of bookkeeping per row.

use super::build::{BuildConfig, PHASE_GROUP, PHASE_PARTITION, PHASE_WRITE};
use super::build_rows::{sample_rows, Rows};
use super::build_run::{alloc_vec, probe, progress, reserve, run_parallel, PROGRESS_CREATE_IDX_SUBPHASE, PROGRESS_CREATE_IDX_TUPLES_DONE};
use super::build_spill::SpillFile;
use super::build_write::{write_header_pages, write_index, Quantizers};
use super::index;
use super::pages::{modify_item_as, BulkWriter, Wal, PAGE_NODE};
use super::repair::{relink_orphans, walk, SlotBits};
use super::store::PgStore;
use crate::fmgr::error;
use pgrx::pg_sys::{self, Relation};
use pgrx::PgSqlErrorCode;
use rayon::prelude::*;
use vsag_core::distance::l2_squared;
use vsag_core::graph::partition::{
    assign, cluster_count, kmeans, pack, partition_count, primary_sizes, ranked_centroids, JoinPolicy, KMEANS_ITERS,
};
use vsag_core::graph::{build_memory_estimate_for, build_with, group_by_key, vector_hash, BuildInput, Groups};
use vsag_core::page::{sequential_tid, ItemPointer, NodeLayout, NodeMut, NodeRef, MAX_HEAP_TIDS};
use vsag_core::quant::{Quantizer, QuantizerKind, Sq8};

/// No partition is made smaller than this, whatever the budget (the bookkeeping of a huge
/// table at a tiny `maintenance_work_mem` then overruns it, with a NOTICE).
const MIN_PARTITION: usize = 2_000;

/// Builds the index from the rows in `file` within `budget` bytes.
pub unsafe fn build_spilled(heap: Relation, index: Relation, cfg: &mut BuildConfig, pool: &rayon::ThreadPool, mut file: SpillFile, budget: usize) {
    let (rows, dim) = (file.len(), cfg.dim);
    let (range, sample) = file.survey(sample_rows(budget, dim));
    // `auto` settles its codes (and m) on the sample first, so the estimate counts the real m.
    cfg.settle_quantizer(&sample);
    let code_row = QuantizerKind::Sq8.code_size(dim) + std::mem::size_of::<ItemPointer>() + 8;
    let threads = pool.current_num_threads();
    // A table no bigger than the smallest partition is built in one piece whatever the
    // budget (at a few MB the per-thread scratch alone exceeds it).
    let fits = build_memory_estimate_for(rows, code_row, cfg.params.m, threads) + sample.len() * 4 <= budget;
    if fits || rows <= MIN_PARTITION {
        let rows = Rows::load_codes(&mut file, &range, sample);
        file.close();
        write_index(heap, index, cfg, pool, rows);
        return;
    }
    build_partitioned(index, cfg, pool, file, budget, &range, sample);
    index::forget(index);
}

unsafe fn build_partitioned(
    index: Relation,
    cfg: &BuildConfig,
    pool: &rayon::ThreadPool,
    mut file: SpillFile,
    budget: usize,
    range: &[f32],
    sample: Vec<f32>,
) {
    let (n_rows, dim) = (file.len(), cfg.dim);
    progress(PROGRESS_CREATE_IDX_SUBPHASE, PHASE_GROUP);
    let (tids, groups) = group_spilled(pool, &mut file);
    let n = groups.len();
    let layout = &cfg.layout;
    let quants = Quantizers::train(cfg, &sample);
    let bounds = quants.error_bounds(cfg, &sample, n);
    let codes_q = Sq8::train(dim, range).unwrap_or_else(|e| error(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("vsag: {e}")));
    let codes_q = Quantizer::Sq8(codes_q);
    let mut node_of_row = alloc_vec(n_rows, u32::MAX, "the node of each row");
    for (g, members) in groups.iter().enumerate() {
        node_of_row[members[0] as usize] = g as u32;
    }

    let policy = JoinPolicy::for_m(cfg.params.m);
    let part_params = policy.params(&cfg.params);
    // Partition size: what one partition's codes and graph may take of the budget left.
    let threads = pool.current_num_threads();
    let (m, nav_cs) = (part_params.m, quants.nav().code_size());
    let inline = layout.inline_cap > 0;
    let point = codes_q.code_size() + if inline { nav_cs } else { 0 } + 4;
    let fixed = n_rows * (std::mem::size_of::<ItemPointer>() + 4 + 4) + n * (4 + 8) + sample.len() * 4;
    let avail = budget.saturating_sub(fixed);
    let mut cap = largest_fitting(avail, point, m, threads, n);
    if cap < MIN_PARTITION {
        pgrx::notice!(
            "vsag: the build's bookkeeping for {n_rows} tuples ({} MB) leaves too little of maintenance_work_mem for the graph; \
             it will use more memory than that. Increase maintenance_work_mem.",
            fixed.div_ceil(1 << 20)
        );
        cap = MIN_PARTITION;
    }
    let k = partition_count(n, cap);
    pgrx::notice!(
        "vsag: the graph of {n} vectors does not fit into maintenance_work_mem even over 8-bit codes; \
         building it in {k} overlapping partitions of up to {cap} vectors. \
         Increase maintenance_work_mem to build it in one (faster)."
    );
    progress(PROGRESS_CREATE_IDX_SUBPHASE, PHASE_PARTITION);
    let clusters = cluster_count(k, sample.len() / dim);
    let centroids = run_parallel(pool, |sh| kmeans(&sample, dim, clusters, KMEANS_ITERS, &sh.abort));
    let (assigned, entry) = assign_nodes(pool, &mut file, &node_of_row, &centroids, dim, k, cap, &sample);

    // The node tuples, in node order, without neighbours.
    progress(PROGRESS_CREATE_IDX_SUBPHASE, PHASE_WRITE);
    let (meta, params) = quants.meta(cfg);
    let (first, per_page) = (meta.first_node_block(), layout.tuples_per_page());
    let pos = |i: usize| sequential_tid(first, per_page, i);
    let meta = quants.node_meta(meta, n, entry, sample.len() / dim, bounds, per_page);
    drop(sample);
    let mut w = BulkWriter::new(index, pg_sys::ForkNumber::MAIN_FORKNUM);
    write_header_pages(&mut w, &meta, &params);
    let (mut tuple, mut own, mut nav) = (vec![0u8; layout.tuple_size], vec![0u8; layout.own_code_size], vec![0u8; nav_cs]);
    file.for_each(|r, _, v| {
        let g = node_of_row[r] as usize;
        if g == u32::MAX as usize {
            return;
        }
        quants.nav().encode(v, &mut nav);
        let members = groups.group(g).iter().map(|&r| tids[r as usize]);
        quants.init_node(layout, &mut tuple, &mut own, members, layout.store_vector.then_some(v), v, &nav);
        let at = w.add(PAGE_NODE, &tuple);
        if at != pos(g) {
            error(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("vsag: node {g} written at {at:?}, expected {:?}", pos(g)));
        }
        if g % 1024 == 0 {
            progress(PROGRESS_CREATE_IDX_TUPLES_DONE, g as i64);
        }
    });
    w.finish_page();
    drop((tids, groups));

    progress(PROGRESS_CREATE_IDX_SUBPHASE, PHASE_PARTITION);
    for p in 0..k as u32 {
        let t0 = std::time::Instant::now();
        let (mut members, mut codes, mut navs) = (Vec::new(), Vec::new(), Vec::new());
        let mut code = vec![0u8; codes_q.code_size()];
        file.for_each(|r, _, v| {
            let g = node_of_row[r];
            if g == u32::MAX || !assigned[g as usize].contains(&p) {
                return;
            }
            reserve(&mut members, 1, "a partition's nodes");
            members.push(g);
            codes_q.encode(v, &mut code);
            reserve(&mut codes, code.len(), "a partition's codes");
            codes.extend_from_slice(&code);
            if inline {
                quants.nav().encode(v, &mut nav);
                reserve(&mut navs, nav_cs, "a partition's navigation codes");
                navs.extend_from_slice(&nav);
            }
        });
        probe(build_memory_estimate_for(members.len(), 0, m, threads), "a partition's neighbour lists");
        let input = BuildInput::Codes { codes: &codes, quantizer: &codes_q };
        let graph = run_parallel(pool, |sh| build_with(input, dim, &part_params, &sh.abort, &mut |d, t| sh.report(d, t)));
        let Ok(graph) = graph else { error(PgSqlErrorCode::ERRCODE_QUERY_CANCELED, "vsag: build cancelled") };
        drop(codes);
        let t1 = t0.elapsed();
        for (i, &g) in members.iter().enumerate() {
            let list: Vec<(ItemPointer, Option<&[u8]>)> = graph.neighbours[i]
                .iter()
                .map(|&j| (pos(members[j as usize] as usize), inline.then(|| &navs[j as usize * nav_cs..(j as usize + 1) * nav_cs])))
                .collect();
            link(index, layout, pos(g as usize), &list, &policy, assigned[g as usize][0] == p);
            if i % 1024 == 0 {
                pgrx::check_for_interrupts!();
            }
        }
        pgrx::debug1!(
            "vsag: partition {p} of {k}: {} nodes, read and graph {:.1} s, lists {:.1} s",
            members.len(),
            t1.as_secs_f64(),
            (t0.elapsed() - t1).as_secs_f64()
        );
    }
    file.close();
    relink_unreachable(index, n, entry, pos);
}

/// Links every node a walk from the entry does not reach (as VACUUM does), unlogged.
unsafe fn relink_unreachable(index: Relation, n: usize, entry: usize, pos: impl Fn(usize) -> ItemPointer) {
    index::forget(index);
    let st = index::state(index);
    let mut seen = SlotBits::for_index(index, &st.layout);
    let mut store = PgStore::new(index, st, None);
    let entry = pos(entry).to_u64();
    seen.insert(entry);
    walk(&mut store, &mut seen, vec![entry], &|_| false);
    let orphans: Vec<u64> = (0..n).map(|i| pos(i).to_u64()).filter(|&id| !seen.contains(id)).collect();
    let found = orphans.len();
    let linked = relink_orphans(&mut store, entry, orphans, &mut seen, &|_| false, Wal::Unlogged);
    pgrx::debug1!("vsag: {found} of {n} nodes were unreachable after merging the partitions; {linked} links added");
}

/// The largest partition (at most `n`) whose codes (`point` bytes each) and graph fit `avail`.
fn largest_fitting(avail: usize, point: usize, m: usize, threads: usize, n: usize) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        match build_memory_estimate_for(mid, point, m, threads) <= avail {
            true => lo = mid,
            false => hi = mid - 1,
        }
    }
    lo
}

/// Reads the rows back, hashes them and groups the identical ones (as `write_index` does).
/// The hash alone groups; every group is then checked against the vectors in the file,
/// and should two different vectors share a 64-bit hash, the rows are grouped again on a
/// second, independent hash as well.
unsafe fn group_spilled(pool: &rayon::ThreadPool, file: &mut SpillFile) -> (Vec<ItemPointer>, Groups) {
    let n = file.len();
    let mut tids = alloc_vec(n, ItemPointer::INVALID, "the heap pointers of the rows");
    let mut keys = alloc_vec(n, 0u64, "the row hashes");
    file.for_each(|i, tid, v| {
        tids[i] = tid;
        keys[i] = vector_hash(v);
    });
    let groups = run_parallel(pool, |_| group_by_key(&keys, |_, _| true, MAX_HEAP_TIDS));
    if groups_exact(file, &groups) {
        return (tids, groups);
    }
    file.for_each(|i, _, v| keys[i] = keys[i].rotate_left(32) ^ fnv1a(bytemuck::cast_slice(v)));
    let groups = run_parallel(pool, |_| group_by_key(&keys, |_, _| true, MAX_HEAP_TIDS));
    (tids, groups)
}

/// Whether every row of every group has its first row's vector (bitwise).
unsafe fn groups_exact(file: &mut SpillFile, groups: &Groups) -> bool {
    let dim = file.dim();
    let (mut a, mut b) = (vec![0f32; dim], vec![0f32; dim]);
    for (g, members) in groups.iter().enumerate() {
        if g % 1024 == 0 {
            pgrx::check_for_interrupts!();
        }
        if members.len() < 2 {
            continue;
        }
        file.row(members[0] as usize, &mut a);
        for &r in &members[1..] {
            file.row(r as usize, &mut b);
            if bytemuck::cast_slice::<f32, u32>(&a) != bytemuck::cast_slice::<f32, u32>(&b) {
                return false;
            }
        }
    }
    true
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().rev().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// Calls `f(node, clusters ranked nearest first, squared distance to the sample's mean)`
/// for every node in order (the rankings computed in parallel, a chunk at a time).
unsafe fn rank_nodes(
    pool: &rayon::ThreadPool,
    file: &mut SpillFile,
    node_of_row: &[u32],
    centroids: &[f32],
    mean: &[f32],
    mut f: impl FnMut(u32, &[u32], f32),
) {
    const CHUNK: usize = 4096;
    let dim = mean.len();
    let (mut batch, mut ids) = (Vec::with_capacity(CHUNK * dim), Vec::with_capacity(CHUNK));
    let mut flush = |batch: &mut Vec<f32>, ids: &mut Vec<u32>| {
        let ranked: Vec<(Vec<u32>, f32)> =
            pool.install(|| batch.par_chunks(dim).map(|v| (ranked_centroids(v, centroids, dim), l2_squared(v, mean))).collect());
        for (&g, (ranks, d)) in ids.iter().zip(ranked) {
            f(g, &ranks, d);
        }
        batch.clear();
        ids.clear();
    };
    file.for_each(|r, _, v| {
        if node_of_row[r] == u32::MAX {
            return;
        }
        batch.extend_from_slice(v);
        ids.push(node_of_row[r]);
        if ids.len() == CHUNK {
            flush(&mut batch, &mut ids);
        }
    });
    flush(&mut batch, &mut ids);
}

/// Each node's two partitions and the entry point (the node nearest the sample's mean).
/// Clusters are packed into `k` partitions by their sizes (a first pass counts them); a
/// second pass assigns every node (see `partition::assign`).
unsafe fn assign_nodes(
    pool: &rayon::ThreadPool,
    file: &mut SpillFile,
    node_of_row: &[u32],
    centroids: &[f32],
    dim: usize,
    k: usize,
    cap: usize,
    sample: &[f32],
) -> (Vec<[u32; 2]>, usize) {
    let kc = centroids.len() / dim;
    let mut mean = vec![0f64; dim];
    for r in sample.chunks_exact(dim) {
        mean.iter_mut().zip(r).for_each(|(s, &x)| *s += x as f64);
    }
    let rows = (sample.len() / dim).max(1) as f64;
    let mean: Vec<f32> = mean.iter().map(|&s| (s / rows) as f32).collect();
    let mut counts = vec![0u32; kc];
    rank_nodes(pool, file, node_of_row, centroids, &mean, |_, ranks, _| counts[ranks[0] as usize] += 1);
    let bin_of = pack(&counts, k);
    let n = node_of_row.iter().filter(|&&g| g != u32::MAX).count();
    let mut assigned = alloc_vec(n, [0u32; 2], "the partitions of each node");
    let mut sizes = primary_sizes(&counts, &bin_of, k);
    let mut entry = (f32::INFINITY, 0usize);
    rank_nodes(pool, file, node_of_row, centroids, &mean, |g, ranks, d| {
        assigned[g as usize] = assign(ranks, &bin_of, &mut sizes, cap as u32);
        if d < entry.0 {
            entry = (d, g as usize);
        }
    });
    (assigned, entry.1)
}

/// Joins `new` (from the node's own partition if `primary`) into the list of the node at
/// `at` (`JoinPolicy::merge`; each entry keeps the inline code it came with).
unsafe fn link(index: Relation, layout: &NodeLayout, at: ItemPointer, new: &[(ItemPointer, Option<&[u8]>)], policy: &JoinPolicy, primary: bool) {
    modify_item_as(index, at, Wal::Unlogged, |bytes| {
        let old = NodeRef::new(layout, bytes);
        let kept: Vec<(ItemPointer, Option<Vec<u8>>)> =
            (0..old.degree()).map(|i| (old.neighbour(i), old.inline_code(i).map(<[u8]>::to_vec))).collect();
        let a: Vec<ItemPointer> = kept.iter().map(|e| e.0).collect();
        let b: Vec<ItemPointer> = new.iter().map(|e| e.0).collect();
        let list: Vec<(ItemPointer, Option<&[u8]>)> = policy.merge(&a, &b, primary, layout.m, at)
            .into_iter()
            .map(|p| match kept.iter().find(|e| e.0 == p) {
                Some(e) => (p, e.1.as_deref()),
                None => *new.iter().find(|e| e.0 == p).expect("merged from the two lists"),
            })
            .collect();
        NodeMut::new(layout, bytes).set_neighbours(&list);
        true
    });
}
