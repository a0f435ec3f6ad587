//! The bulk part of `ambuild`: group duplicate rows, train the quantizers, link the graph in
//! parallel (over floats, or over SQ8 codes when the floats did not fit), encode the
//! navigation codes, and write metapage, parameter pages and node pages in one pass.
//! Parallel steps run on the build's bounded pool through [`run_parallel`]; every phase is
//! reported in `pg_stat_progress_create_index`.

use super::build::{BuildConfig, PHASE_ENCODE, PHASE_GRAPH, PHASE_GROUP, PHASE_WRITE};
use super::build_rows::Rows;
use super::build_run::{alloc_vec, probe, progress, run_parallel, PROGRESS_CREATE_IDX_SUBPHASE, PROGRESS_CREATE_IDX_TUPLES_DONE};
use super::heap::HeapFetch;
use super::index;
use super::pages::{BulkWriter, PAGE_META, PAGE_NODE, PAGE_PARAM};
use crate::fmgr::error;
use pgrx::pg_sys::{self, Relation};
use pgrx::PgSqlErrorCode;
use rayon::prelude::*;
use vsag_core::graph::{build_memory_estimate_for, build_with, group_by_key, group_identical, BuildInput, Groups};
use vsag_core::page::{param_chunks, sequential_tid, ItemPointer, MetaPage, NodeLayout, NodeMut, MAX_HEAP_TIDS};
use vsag_core::quant::Quantizer;

/// Builds the graph over `rows` and writes the whole index (also used for empty tables).
/// Rows with bitwise identical vectors share one node (up to MAX_HEAP_TIDS rows each): a
/// clique of copies could not stay connected under pruning.
pub unsafe fn write_index(heap: Relation, index: Relation, cfg: &mut BuildConfig, pool: &rayon::ThreadPool, mut rows: Rows) {
    let dim = cfg.dim;
    progress(PROGRESS_CREATE_IDX_SUBPHASE, PHASE_GROUP);
    let groups = group_rows(pool, &mut rows);
    let n = groups.len();
    // Even exact sample: train the index's quantizers and measure their error bounds.
    let sample = match rows.compressed() {
        false => rows.float_sample(20_000),
        true => std::mem::take(&mut rows.sample),
    };
    cfg.settle_quantizer(&sample);
    let sample_rows = sample.len() / dim;
    let cfg = &*cfg;
    let layout = &cfg.layout;
    let quants = Quantizers::train(cfg, &sample);
    let quantizer = &quants.nav;
    let (error_bound, fine_error_bound) = quants.error_bounds(cfg, &sample, n);
    drop(sample);

    progress(PROGRESS_CREATE_IDX_SUBPHASE, PHASE_GRAPH);
    // The graph's lists are many small allocations the workers make; check up front that
    // their total can be had, so a server short of memory fails here with an ERROR.
    let graph_bytes = build_memory_estimate_for(n, 0, cfg.params.m, pool.current_num_threads());
    probe(graph_bytes, "the graph's neighbour lists");
    let input = match &rows.codes {
        None => BuildInput::F32(rows.floats()),
        Some(q) => BuildInput::Codes { codes: rows.code_bytes(), quantizer: q },
    };
    let graph = run_parallel(pool, |sh| build_with(input, dim, &cfg.params, &sh.abort, &mut |d, t| sh.report(d, t)));
    let Ok(graph) = graph else {
        // Only an interrupt aborts, and run_parallel raised it already.
        error(PgSqlErrorCode::ERRCODE_QUERY_CANCELED, "vsag: build cancelled")
    };

    progress(PROGRESS_CREATE_IDX_SUBPHASE, PHASE_ENCODE);
    let code_size = quantizer.code_size();
    let mut codes = alloc_vec(n * code_size, 0u8, "the navigation codes");
    run_parallel(pool, |sh| {
        sh.report(0, n);
        codes.par_chunks_mut(code_size).enumerate().for_each_init(Vec::new, |buf, (i, c)| {
            if !sh.stopped() {
                quantizer.encode(point(&rows, i, buf), c);
            }
        });
        sh.report(n, n);
    });

    progress(PROGRESS_CREATE_IDX_SUBPHASE, PHASE_WRITE);
    progress(PROGRESS_CREATE_IDX_TUPLES_DONE, 0);
    let (meta, params) = quants.meta(cfg);
    let first_node = meta.first_node_block();
    let per_page = layout.tuples_per_page();
    let pos = |i: usize| sequential_tid(first_node, per_page, i);
    let meta = quants.node_meta(meta, n, graph.entry as usize, sample_rows, (error_bound, fine_error_bound), per_page);
    // Over codes a node that stores its vector reads the exact one back from the table.
    let mut fetch = (layout.store_vector && rows.compressed())
        .then(|| HeapFetch::new(heap, index, &raw mut pg_sys::SnapshotAnyData, cfg.metric));

    let mut w = BulkWriter::new(index, pg_sys::ForkNumber::MAIN_FORKNUM);
    write_header_pages(&mut w, &meta, &params);
    let mut tuple = vec![0u8; layout.tuple_size];
    let mut own = vec![0u8; layout.own_code_size];
    let mut buf = Vec::new();
    let code = |i: usize| &codes[i * code_size..(i + 1) * code_size];
    for i in 0..n {
        let g = groups.group(i);
        let tids = g.iter().map(|&r| rows.tids[r as usize]);
        let exact = match fetch.as_mut() {
            Some(f) => Some(f.vector(tids.clone()).unwrap_or_else(|| {
                error(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, "vsag: a row being indexed could not be read back from the table")
            })),
            None => None,
        };
        let v = point(&rows, i, &mut buf);
        let vector = layout.store_vector.then(|| exact.as_deref().unwrap_or(v));
        let mut node = quants.init_node(layout, &mut tuple, &mut own, g.iter().map(|&r| rows.tids[r as usize]), vector, v, code(i));
        let list: Vec<(ItemPointer, Option<&[u8]>)> =
            graph.neighbours[i].iter().map(|&j| (pos(j as usize), Some(code(j as usize)))).collect();
        node.set_neighbours(&list);
        let at = w.add(PAGE_NODE, &tuple);
        if at != pos(i) {
            error(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("vsag: node {i} written at {at:?}, expected {:?}", pos(i)));
        }
        if i % 1024 == 0 {
            progress(PROGRESS_CREATE_IDX_TUPLES_DONE, i as i64);
            pgrx::check_for_interrupts!();
        }
    }
    progress(PROGRESS_CREATE_IDX_TUPLES_DONE, n as i64);
    w.finish_page();
    index::forget(index);
}

/// Node `i`'s vector in index space: the row's floats, or its decoded SQ8 code.
fn point<'a>(rows: &'a Rows, i: usize, buf: &'a mut Vec<f32>) -> &'a [f32] {
    let dim = rows.dim;
    match &rows.codes {
        None => &rows.floats()[i * dim..(i + 1) * dim],
        Some(q) => {
            let cs = q.code_size();
            buf.resize(dim, 0.0);
            q.decode(&rows.code_bytes()[i * cs..(i + 1) * cs], buf);
            buf
        }
    }
}

/// Groups identical rows (by exact vector, or by exact-vector hash plus equal code once
/// compressed) and compacts the points to one per group, in group order (first rows
/// increase, so in-place is safe).
unsafe fn group_rows(pool: &rayon::ThreadPool, rows: &mut Rows) -> Groups {
    let dim = rows.dim;
    let groups = match &rows.codes {
        None => run_parallel(pool, |_| group_identical(rows.floats(), dim, MAX_HEAP_TIDS)),
        Some(q) => {
            let (cs, codes, keys) = (q.code_size(), rows.code_bytes(), &rows.hashes);
            let same = |a: u32, b: u32| codes[a as usize * cs..(a as usize + 1) * cs] == codes[b as usize * cs..(b as usize + 1) * cs];
            run_parallel(pool, |_| group_by_key(keys, same, MAX_HEAP_TIDS))
        }
    };
    let n = groups.len();
    let width = match &rows.codes {
        None => dim * 4,
        Some(q) => q.code_size(),
    };
    let bytes: &mut [u8] = match rows.compressed() {
        false => bytemuck::cast_slice_mut(rows.floats_mut().as_mut_slice()),
        true => rows.code_bytes_mut(),
    };
    for (g, members) in groups.iter().enumerate() {
        let r = members[0] as usize;
        if r != g {
            bytes.copy_within(r * width..(r + 1) * width, g * width);
        }
    }
    match rows.compressed() {
        false => rows.floats_mut().truncate(n * dim),
        true => rows.truncate_codes(n),
    }
    rows.hashes = Vec::new();
    groups
}

/// The trained navigation quantizer and, for a two-precision index, the own codes' one.
pub struct Quantizers {
    nav: Quantizer,
    fine: Option<Quantizer>,
}

impl Quantizers {
    pub fn train(cfg: &BuildConfig, sample: &[f32]) -> Quantizers {
        let train = |kind| {
            Quantizer::train(kind, cfg.dim, sample).unwrap_or_else(|e| error(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("vsag: {e}")))
        };
        Quantizers { nav: train(cfg.kind), fine: cfg.fine.map(train) }
    }

    /// `meta` for `n` nodes entered at node `entry`, with the codes' error bounds
    /// (navigation, own), nodes written in order from the first node block.
    pub fn node_meta(&self, mut meta: MetaPage, n: usize, entry: usize, trained_rows: usize, bounds: (f32, f32), per_page: usize) -> MetaPage {
        let first = meta.first_node_block();
        let pos = |i: usize| sequential_tid(first, per_page, i);
        meta.node_count = n as u64;
        meta.trained_rows = trained_rows.min(u32::MAX as usize) as u32;
        (meta.error_bound, meta.fine_error_bound) = bounds;
        if n > 0 {
            meta.set_entry(Some(pos(entry)));
            meta.insert_block = pos(n - 1).block;
        }
        meta
    }

    /// A node tuple in `tuple` for the rows `tids` (at least one) of vector `v`, without
    /// neighbours: its own code (the fine quantizer's, encoded into `own`, else `nav_code`)
    /// and, if the layout stores it, `vector`.
    pub fn init_node<'a>(
        &self,
        layout: &'a NodeLayout,
        tuple: &'a mut [u8],
        own: &mut [u8],
        mut tids: impl Iterator<Item = ItemPointer>,
        vector: Option<&[f32]>,
        v: &[f32],
        nav_code: &[u8],
    ) -> NodeMut<'a> {
        let own_code: &[u8] = match &self.fine {
            Some(f) => {
                f.encode(v, own);
                own
            }
            None => nav_code,
        };
        let first = tids.next().expect("a node has a row");
        let mut node = NodeMut::init(layout, tuple, first, vector, own_code);
        for t in tids {
            node.add_heap_tid(t);
        }
        node
    }

    pub fn nav(&self) -> &Quantizer {
        &self.nav
    }

    /// Error bounds of the navigation and own codes measured on `sample` (infinite for
    /// fewer than two nodes).
    pub fn error_bounds(&self, cfg: &BuildConfig, sample: &[f32], n: usize) -> (f32, f32) {
        let bound = |q: &Quantizer| if n >= 2 { q.estimate_error_bound(cfg.metric, sample, 0.999) } else { f32::INFINITY };
        (bound(&self.nav), self.fine.as_ref().map_or(f32::INFINITY, bound))
    }

    /// A metapage describing the format and these quantizers (no nodes, no error bounds
    /// yet), and the parameter bytes to write after it.
    pub fn meta(&self, cfg: &BuildConfig) -> (MetaPage, Vec<u8>) {
        let mut params = self.nav.to_bytes();
        let mut meta = MetaPage::new(cfg.metric, cfg.kind, &cfg.layout);
        if let Some(f) = &self.fine {
            meta.fine_quantizer = f.kind() as u8;
            meta.nav_param_len = params.len() as u32;
            params.extend(f.to_bytes());
        }
        meta.error_bound = f32::INFINITY;
        meta.fine_error_bound = f32::INFINITY;
        meta.ef_construction = cfg.params.ef_construction as u16;
        meta.alpha = cfg.params.alpha;
        meta.place_params(params.len());
        (meta, params)
    }
}

/// Block 0: the metapage, with the quantizer parameters as its second item if they fit
/// there, else on blocks 1.., one item per page.
pub unsafe fn write_header_pages(w: &mut BulkWriter, meta: &MetaPage, params: &[u8]) {
    w.new_page(PAGE_META);
    w.add(PAGE_META, meta.as_bytes());
    if meta.param_first_block == 0 {
        let at = w.add(PAGE_META, params);
        debug_assert_eq!(at, meta.param_item(0));
        return;
    }
    for chunk in param_chunks(params) {
        w.new_page(PAGE_PARAM);
        w.add(PAGE_PARAM, chunk);
    }
}
