//! `vsag_tune(index, target_recall, k, sample, time_budget, queries)`: query-level auto-tuning
//! (issue 13). Samples query vectors — rows of the indexed table (each query then excludes
//! its own row from the results) or the rows of a user's query table — computes their exact
//! top-k by a sequential scan, measures recall@k and latency of the index at candidate settings
//! (`tune_trials`), stores the cheapest setting that meets the target as the index's
//! defaults with `ALTER INDEX ... SET (ef_search, search_m, prefetch_depth, early_stop)` and returns
//! every setting tried. Sessions that leave the GUCs at their built-in defaults then use
//! them; a GUC set anywhere wins (src/am/scan_settings.rs). Queries run through SPI as a
//! user's would (planner, executor, prepared generic plan), so latency includes the
//! executor's share. Progress is reported as NOTICEs; the function is cancellable.

use super::index;
use super::options::DEFAULT_PREFETCH_DEPTH;
use super::tune_trials::{Query, Setting, Tuner, MAX_EF};
use super::verify::require_owner;
use super::verify_selfquery::{plan_without_index, set_guc, target, Target};
use pgrx::datum::{DatumWithOid, Interval};
use pgrx::prelude::*;
use pgrx::spi::{Spi, SpiClient};
use pgrx::{PgBuiltInOids, PgOid};
use std::time::{Duration, Instant};

const MAX_K: i32 = 1000;
const MAX_SAMPLE: i32 = 100_000;
/// A TID no row has: the exclusion of a query from a user's table.
const NO_ROW: &str = "(0,0)";

fn spi_err(e: pgrx::spi::SpiError) -> ! {
    error!("vsag_tune: query failed: {e}")
}

fn required<T>(v: Option<T>, name: &str) -> T {
    v.unwrap_or_else(|| error!("vsag_tune: {name} must not be NULL"))
}

#[pg_extern(sql = false)]
fn vsag_tune(
    index: Option<pg_sys::Oid>,
    target_recall: Option<f64>,
    k: Option<i32>,
    sample: Option<i32>,
    time_budget: Option<Interval>,
    queries: Option<pg_sys::Oid>,
) -> TableIterator<
    'static,
    (
        name!(ef_search, i32),
        name!(search_m, i32),
        name!(prefetch_depth, i32),
        name!(early_stop, i32),
        name!(recall, f64),
        name!(recall_low, f64),
        name!(mean_ms, f64),
        name!(chosen, bool),
    ),
> {
    let index = required(index, "index");
    let target_recall = required(target_recall, "target_recall");
    let k = required(k, "k");
    let sample = required(sample, "sample");
    let budget = required(time_budget, "time_budget");
    if !(target_recall > 0.0 && target_recall <= 1.0) {
        error!("vsag_tune: target_recall must be in (0, 1], not {target_recall}");
    }
    if !(1..=MAX_K).contains(&k) {
        error!("vsag_tune: k must be between 1 and {MAX_K}, not {k}");
    }
    if !(1..=MAX_SAMPLE).contains(&sample) {
        error!("vsag_tune: sample must be between 1 and {MAX_SAMPLE}, not {sample}");
    }
    if budget.as_micros() <= 0 {
        error!("vsag_tune: time_budget must be positive");
    }
    let started = Instant::now();
    let deadline = started + Duration::from_micros(budget.as_micros().min(i64::MAX as i128) as u64);
    let (dim, m) = unsafe { check_index(index) };
    let qualified = Spi::get_one_with_args::<String>("SELECT $1::regclass::text", &[DatumWithOid::from(index)])
        .unwrap_or_else(|e| spi_err(e))
        .expect("an open index has a name");

    let nest = unsafe { pg_sys::NewGUCNestLevel() };
    let (trials, chosen) = Spi::connect_mut(|client| {
        let t = target(client, index);
        let source = match queries {
            Some(q) => query_table(client, q, index, dim),
            None => QuerySource::Own,
        };
        let sampled = sample_rows(client, &t, &source, sample as usize);
        let queries = exact_top_k(&mut *client, &t, &source, &sampled, k as usize, deadline);
        notice!(
            "vsag_tune: exact top-{k} of {} sample queries in {:.1} s",
            queries.len(),
            started.elapsed().as_secs_f64()
        );
        unsafe {
            // Leave the planner no plan but the index; one generic plan for every execution.
            set_guc(c"enable_seqscan", "off");
            set_guc(c"enable_bitmapscan", "off");
            set_guc(c"enable_sort", "off");
            set_guc(c"enable_indexscan", "on");
            set_guc(c"plan_cache_mode", "force_generic_plan");
        }
        let search = search_sql(&t, &source, k as usize);
        let args = [DatumWithOid::from(queries[0].tid.clone()), DatumWithOid::from(queries[0].exclude.clone())];
        if let Some(plan) = plan_without_index(client, &search, &t.index, &args) {
            error!("vsag_tune: the planner does not use index {} for the sample queries (plan: {plan})", t.index);
        }
        let text = PgOid::BuiltIn(PgBuiltInOids::TEXTOID);
        let stmt = client.prepare(search.as_str(), &[text, text]).unwrap_or_else(|e| spi_err(e));
        // A row's own vector would be an easier query than an unseen one (its node is linked to
        // exactly its nearest neighbours); tuning scans do not expand that node (HIDDEN_ROW),
        // so the sample needs no margin: minilm-100k, ef_search 35, sample 0.974, held-out
        // 0.9764 (with a 0.01 margin on top, the tuned setting was 0.84x the cheapest hand-set).
        let mut tuner = Tuner { client, stmt: &stmt, queries: &queries, target: target_recall, deadline, trials: Vec::new() };
        // Warm the index pages before timing anything (discarded).
        let _ = tuner.measure(Setting { ef_search: (4 * k as usize).min(MAX_EF), search_m: 0, prefetch_depth: DEFAULT_PREFETCH_DEPTH as usize, early_stop: 0 });
        tuner.trials.clear();
        // A smaller degree only with real queries: a row's own node lists exactly its nearest
        // neighbours first, so self-queries overrate a reduced degree badly (minilm-100k,
        // search_m 13 of 26 at ef_search 25: sample 0.971, held-out 0.9325).
        let smaller_m: Vec<usize> = match source {
            QuerySource::Own => Vec::new(),
            _ => [m * 3 / 4, m / 2].into_iter().filter(|&s| s >= 2 && s < m).collect(),
        };
        let chosen = tuner.tune((4 * k as usize).min(MAX_EF), k as usize, &smaller_m);
        (tuner.trials, chosen)
    });
    unsafe { pg_sys::AtEOXact_GUC(true, nest) };

    match chosen {
        Some(s) => {
            Spi::run(&format!(
                "ALTER INDEX {qualified} SET (ef_search = {}, search_m = {}, prefetch_depth = {}, early_stop = {})",
                s.ef_search, s.search_m, s.prefetch_depth, s.early_stop
            ))
            .unwrap_or_else(|e| spi_err(e));
            notice!(
                "vsag_tune: stored ef_search = {}, search_m = {}, prefetch_depth = {}, early_stop = {} on {qualified} after {:.1} s",
                s.ef_search,
                s.search_m,
                s.prefetch_depth,
                s.early_stop,
                started.elapsed().as_secs_f64()
            );
        }
        None => {
            let best = trials.iter().map(|t| t.recall_low).fold(f64::NEG_INFINITY, f64::max);
            warning!(
                "vsag_tune: no setting tried reaches recall {target_recall} on the sample (best lower bound {best:.4}); nothing stored"
            );
        }
    }
    let mut marked = false;
    let rows: Vec<_> = trials
        .iter()
        .map(|t| {
            let is_chosen = !marked && Some(t.setting) == chosen;
            marked |= is_chosen;
            (
                t.setting.ef_search as i32,
                t.setting.search_m as i32,
                t.setting.prefetch_depth as i32,
                t.setting.early_stop as i32,
                t.recall,
                t.recall_low,
                t.mean_ms,
                is_chosen,
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// ERRORs unless `oid` is a vsag index the user owns; its dimension and degree.
unsafe fn check_index(oid: pg_sys::Oid) -> (usize, usize) {
    let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
    let rel = pg_sys::try_relation_open(oid, lock);
    if rel.is_null() {
        error!("vsag_tune: relation {oid:?} does not exist");
    }
    let is_vsag = (*(*rel).rd_rel).relkind == pg_sys::RELKIND_INDEX as std::ffi::c_char
        && (*(*rel).rd_rel).relam == pg_sys::get_am_oid(c"vsag".as_ptr(), true);
    if !is_vsag {
        let name = std::ffi::CStr::from_ptr(pg_sys::get_rel_name(oid)).to_string_lossy().into_owned();
        pg_sys::relation_close(rel, lock);
        error!("vsag_tune: \"{name}\" is not a vsag index");
    }
    require_owner(oid);
    let st = index::state(rel);
    let out = (st.layout.dim, st.layout.m);
    pg_sys::relation_close(rel, lock);
    out
}

/// Where query vectors come from.
enum QuerySource {
    /// Rows of the indexed table; each query excludes its own row.
    Own,
    /// `table`'s column `column` (quoted, the index's key type).
    Table { table: String, column: String },
}

/// Checks a user's query table: a column of the index key's type, vectors of the index's
/// dimension.
fn query_table(client: &SpiClient<'_>, table: pg_sys::Oid, index: pg_sys::Oid, dim: usize) -> QuerySource {
    let q = "SELECT $1::regclass::text, quote_ident(a.attname)::text, format('%I.vector_dims', tn.nspname) \
             FROM pg_index i JOIN pg_opclass opc ON opc.oid = i.indclass[0] \
             JOIN pg_type ty ON ty.oid = opc.opcintype JOIN pg_namespace tn ON tn.oid = ty.typnamespace \
             LEFT JOIN pg_attribute a ON a.attrelid = $1 AND a.atttypid = opc.opcintype AND a.attnum > 0 AND NOT a.attisdropped \
             WHERE i.indexrelid = $2 ORDER BY a.attnum LIMIT 1";
    let args = [DatumWithOid::from(table), DatumWithOid::from(index)];
    let t = client.select(q, Some(1), &args).unwrap_or_else(|e| spi_err(e));
    let row = t.first();
    let get = |n: usize| row.get::<String>(n).unwrap_or_else(|e| spi_err(e));
    let name = get(1).unwrap_or_else(|| error!("vsag_tune: query table {table:?} does not exist"));
    let Some(column) = get(2) else {
        error!("vsag_tune: query table {name} has no column of the index's vector type");
    };
    let dims_fn = get(3).expect("an opclass type has a schema");
    let q = format!("SELECT {dims_fn}({column}) FROM {name} WHERE {column} IS NOT NULL AND {dims_fn}({column}) <> {dim} LIMIT 1");
    let bad = client.select(q.as_str(), Some(1), &[]).unwrap_or_else(|e| spi_err(e));
    if !bad.is_empty() {
        let got = bad.first().get::<i32>(1).unwrap_or_else(|e| spi_err(e)).unwrap_or_default();
        error!("vsag_tune: query table {name} has vectors of {got} dimensions, the index has {dim}");
    }
    QuerySource::Table { table: name, column }
}

/// The query's vector: a sub-select of one row by TID ($1), evaluated once per execution.
fn query_vector(t: &Target, source: &QuerySource) -> String {
    match source {
        QuerySource::Own => format!("(SELECT {} FROM {} WHERE ctid = $1::tid)", t.key, t.table),
        QuerySource::Table { table, column } => format!("(SELECT {column} FROM {table} WHERE ctid = $1::tid)"),
    }
}

/// The k nearest rows of the query at $1, without the row at $2, as distances.
fn search_sql(t: &Target, source: &QuerySource, k: usize) -> String {
    let pred = t.pred.as_deref().map_or(String::new(), |p| format!(" AND ({p})"));
    format!(
        "SELECT d::float8 FROM (SELECT {key} {op} {qv} AS d FROM {table} WHERE ctid <> $2::tid{pred} ORDER BY d LIMIT {k}) nearest",
        key = t.key,
        op = t.op,
        qv = query_vector(t, source),
        table = t.table
    )
}

/// TIDs of up to `n` query rows, spread by a hash of the TID (deterministic for one table).
fn sample_rows(client: &SpiClient<'_>, t: &Target, source: &QuerySource, n: usize) -> Vec<String> {
    let q = match source {
        QuerySource::Own => {
            let pred = t.pred.as_deref().map_or(String::new(), |p| format!(" AND ({p})"));
            format!(
                "SELECT ctid::text FROM {} WHERE {} IS NOT NULL{pred} ORDER BY hashtext(ctid::text), ctid LIMIT {n}",
                t.table, t.key
            )
        }
        QuerySource::Table { table, column } => {
            format!("SELECT ctid::text FROM {table} WHERE {column} IS NOT NULL ORDER BY hashtext(ctid::text), ctid LIMIT {n}")
        }
    };
    let rows: Vec<String> = client
        .select(q.as_str(), None, &[])
        .unwrap_or_else(|e| spi_err(e))
        .filter_map(|r| r.get::<String>(1).unwrap_or_else(|e| spi_err(e)))
        .collect();
    if rows.is_empty() {
        match source {
            QuerySource::Own => error!("vsag_tune: table {} has no indexed rows to sample queries from", t.table),
            QuerySource::Table { table, .. } => error!("vsag_tune: query table {table} has no vectors"),
        }
    }
    rows
}

/// Exact top-k of each sampled query by a sequential scan (index scans off). Stops early,
/// keeping the queries done, when half the time budget is used.
fn exact_top_k(client: &mut SpiClient<'_>, t: &Target, source: &QuerySource, tids: &[String], k: usize, deadline: Instant) -> Vec<Query> {
    let nest = unsafe { pg_sys::NewGUCNestLevel() };
    unsafe {
        // Whatever the session's planner settings: a sequential scan and a top-k sort.
        set_guc(c"enable_seqscan", "on");
        set_guc(c"enable_sort", "on");
        set_guc(c"enable_indexscan", "off");
        set_guc(c"enable_indexonlyscan", "off");
        set_guc(c"enable_bitmapscan", "off");
    }
    let search = search_sql(t, source, k);
    let args = [DatumWithOid::from(tids[0].clone()), DatumWithOid::from(tids[0].clone())];
    if plan_without_index(client, &search, &t.index, &args).is_none() {
        error!("vsag_tune: could not plan an exact (sequential) scan for the sample queries");
    }
    let half = Instant::now() + (deadline.saturating_duration_since(Instant::now())) / 2;
    let mut out = Vec::with_capacity(tids.len());
    for tid in tids {
        if Instant::now() >= half {
            if out.is_empty() {
                error!("vsag_tune: time_budget too short to compute the exact neighbours of one sample query");
            }
            notice!("vsag_tune: half the time budget used for exact top-k; tuning on {} queries", out.len());
            break;
        }
        let exclude = match source {
            QuerySource::Own => tid.clone(),
            QuerySource::Table { .. } => NO_ROW.to_string(),
        };
        let args = [DatumWithOid::from(tid.clone()), DatumWithOid::from(exclude.clone())];
        let ds: Vec<f64> = client
            .select(search.as_str(), None, &args)
            .unwrap_or_else(|e| spi_err(e))
            .filter_map(|r| r.get::<f64>(1).unwrap_or_else(|e| spi_err(e)))
            .filter(|d| !d.is_nan())
            .collect();
        if let Some(&kth) = ds.last() {
            out.push(Query { tid: tid.clone(), exclude, exact_count: ds.len(), kth });
        }
        pgrx::check_for_interrupts!();
    }
    unsafe { pg_sys::AtEOXact_GUC(true, nest) };
    if out.is_empty() {
        error!("vsag_tune: no sample query has a neighbour in {}: too few rows", t.table);
    }
    out
}
