//! The sampled self-query check of `vsag_verify(index, sample, ef_search)`: rows the index
//! holds but a search does not find. For rows spread evenly over the index it runs, through
//! SPI (planner and executor, as a user's query), `ORDER BY key <op> (the row's own key)
//! LIMIT 10` at the given `vsag.ef_search`, and reports the row when the index returned a
//! row farther from that vector than the row itself (or fewer than 10 rows) but not the row.
//! Rows tied with 10 closer-or-equal rows (duplicates; inner product, where a row need not
//! be its own nearest) are not reported: a correct search may leave them out. Independent
//! of the search code, so it also checks whatever the search becomes.

use super::verify::{IndexedRow, Row};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::{Spi, SpiClient};
use pgrx::datum::DatumWithOid;
use vsag_core::page::ItemPointer;

/// Upper bound of `vsag.ef_search` (options.rs).
pub const MAX_EF_SEARCH: i32 = 10_000;
/// Rows each self-query asks for.
const K: usize = 10;

/// How to query the index from SQL (also used by `vsag_tune`).
pub(super) struct Target {
    /// Quoted index name as EXPLAIN prints it.
    pub index: String,
    /// `schema.table`, quoted.
    pub table: String,
    /// The indexed column or expression, parenthesized.
    pub key: String,
    /// `OPERATOR(schema.<->)`: the opclass's ordering operator.
    pub op: String,
    /// Partial index predicate (the planner needs it in the query to use the index).
    pub pred: Option<String>,
}

fn spi_err(e: pgrx::spi::SpiError) -> ! {
    error!("vsag_verify: self-query failed: {e}")
}

pub(super) fn target(client: &SpiClient<'_>, index_oid: pg_sys::Oid) -> Target {
    let q = "SELECT quote_ident(ic.relname)::text, format('%I.%I', hn.nspname, hc.relname), \
                    '(' || pg_get_indexdef(i.indexrelid, 1, true) || ')', \
                    format('OPERATOR(%I.%s)', opn.nspname, o.oprname), pg_get_expr(i.indpred, i.indrelid) \
             FROM pg_index i \
             JOIN pg_class ic ON ic.oid = i.indexrelid \
             JOIN pg_class hc ON hc.oid = i.indrelid JOIN pg_namespace hn ON hn.oid = hc.relnamespace \
             JOIN pg_opclass opc ON opc.oid = i.indclass[0] \
             JOIN pg_amop a ON a.amopfamily = opc.opcfamily AND a.amopstrategy = 1 AND a.amoppurpose = 'o' \
                           AND a.amoplefttype = opc.opcintype AND a.amoprighttype = opc.opcintype \
             JOIN pg_operator o ON o.oid = a.amopopr JOIN pg_namespace opn ON opn.oid = o.oprnamespace \
             WHERE i.indexrelid = $1";
    let args = [DatumWithOid::from(index_oid)];
    let t = client.select(q, Some(1), &args).unwrap_or_else(|e| spi_err(e));
    if t.is_empty() {
        error!("vsag_verify: index {index_oid:?} has no ordering operator");
    }
    let row = t.first();
    let col = |n: usize| row.get::<String>(n).unwrap_or_else(|e| spi_err(e));
    let need = |n: usize| col(n).unwrap_or_else(|| error!("vsag_verify: incomplete catalog entry for index {index_oid:?}"));
    Target { index: need(1), table: need(2), key: need(3), op: need(4), pred: col(5) }
}

/// Sets a GUC for the rest of the check; `AtEOXact_GUC` at the nest level restores it (and an
/// ERROR restores it with the transaction), like a function's `SET` clause.
pub(super) unsafe fn set_guc(name: &std::ffi::CStr, value: &str) {
    let value = std::ffi::CString::new(value).expect("no NUL in a number or on/off");
    pg_sys::set_config_option(
        name.as_ptr(),
        value.as_ptr(),
        pg_sys::GucContext::PGC_USERSET,
        pg_sys::GucSource::PGC_S_SESSION,
        pg_sys::GucAction::GUC_ACTION_SAVE,
        true,
        pg_sys::PGERROR as i32,
        false,
    );
}

fn tid_text(t: ItemPointer) -> String {
    format!("({},{})", t.block, t.offset)
}

/// Rows `sample` evenly spread over `rows` (all of them when there are fewer).
fn spread(rows: &[IndexedRow], sample: usize) -> Vec<IndexedRow> {
    let n = rows.len();
    let s = sample.min(n);
    (0..s).map(|i| rows[i * n / s]).collect()
}

pub fn self_query_check(index_oid: pg_sys::Oid, rows: &[IndexedRow], sample: usize, ef_search: i32) -> Vec<Row> {
    let picked = spread(rows, sample);
    let nest = unsafe { pg_sys::NewGUCNestLevel() };
    unsafe {
        set_guc(c"vsag.ef_search", &ef_search.to_string());
        // "Found at ef_search N" means the whole beam: no adaptive termination.
        set_guc(c"vsag.early_stop", "0");
        // Leave the planner no cheaper plan than this index for ORDER BY ... LIMIT.
        set_guc(c"enable_seqscan", "off");
        set_guc(c"enable_bitmapscan", "off");
        set_guc(c"enable_sort", "off");
        set_guc(c"enable_indexscan", "on");
    }
    let out = Spi::connect_mut(|client| run(client, index_oid, &picked, ef_search));
    unsafe { pg_sys::AtEOXact_GUC(true, nest) };
    out
}

fn run(client: &mut SpiClient<'_>, index_oid: pg_sys::Oid, picked: &[IndexedRow], ef_search: i32) -> Vec<Row> {
    let t = target(client, index_oid);
    let Target { key, op, table, .. } = &t;
    let pred = t.pred.as_deref().map_or(String::new(), |p| format!("WHERE {p}"));
    // $1: the sampled row's TID. The inner sub-select is uncorrelated, so the planner
    // evaluates it once (InitPlan) and can order the index scan by it.
    let own = format!("SELECT ({key} {op} {key})::float8 FROM {table} WHERE ctid = $1::tid");
    let search = format!(
        "SELECT ctid = $1::tid, d::float8 FROM (SELECT ctid, {key} {op} (SELECT {key} FROM {table} WHERE ctid = $1::tid) AS d \
         FROM {table} {pred} ORDER BY d LIMIT {K}) nearest"
    );
    let mut out = Vec::new();
    let Some(&(first, _)) = picked.first() else {
        out.push(("info".to_string(), None, None, "self-query: the index holds no rows to sample".to_string()));
        return out;
    };
    if let Some(plan) = plan_without_index(client, &search, &t.index, &[DatumWithOid::from(tid_text(first))]) {
        out.push((
            "warning".to_string(),
            None,
            None,
            format!("self-query check skipped: the planner does not use this index for ORDER BY {key} {op} ... (plan: {plan})"),
        ));
        return out;
    }
    let (mut checked, mut missed) = (0usize, 0usize);
    for &(tid, node) in picked {
        let args = [DatumWithOid::from(tid_text(tid))];
        let own_row = client.select(own.as_str(), Some(1), &args).unwrap_or_else(|e| spi_err(e));
        // Not visible to this snapshot (deleted, awaiting VACUUM, or a HOT chain root).
        if own_row.is_empty() {
            continue;
        }
        let Some(own_d) = own_row.first().get::<f64>(1).unwrap_or_else(|e| spi_err(e)) else { continue };
        checked += 1;
        let (mut found, mut n, mut farthest) = (false, 0usize, f64::NEG_INFINITY);
        for r in client.select(search.as_str(), None, &args).unwrap_or_else(|e| spi_err(e)) {
            found |= r.get::<bool>(1).unwrap_or_else(|e| spi_err(e)).unwrap_or(false);
            farthest = farthest.max(r.get::<f64>(2).unwrap_or_else(|e| spi_err(e)).unwrap_or(f64::NEG_INFINITY));
            n += 1;
        }
        if !found && (n < K || farthest > own_d) {
            missed += 1;
            out.push((
                "warning".to_string(),
                Some(node.block as i64),
                Some(node.offset as i32),
                format!(
                    "row {} not returned by a self-query at ef_search {ef_search}: {n} rows returned, farthest at {farthest}, the row's own distance {own_d}",
                    tid_text(tid)
                ),
            ));
        }
        pgrx::check_for_interrupts!();
    }
    out.push((
        "info".to_string(),
        None,
        None,
        format!("self-query at ef_search {ef_search} (LIMIT {K}): {missed} of {checked} sampled rows not returned"),
    ));
    out
}

/// The plan of `search` as text when it does not scan `index` (None when it does).
pub(super) fn plan_without_index(client: &mut SpiClient<'_>, search: &str, index: &str, args: &[DatumWithOid<'_>]) -> Option<String> {
    let explain = format!("EXPLAIN (COSTS OFF) {search}");
    // EXPLAIN counts as a command that may write (it could be EXPLAIN ANALYZE): not read-only.
    let lines: Vec<String> = client
        .update(explain.as_str(), None, args)
        .unwrap_or_else(|e| spi_err(e))
        .map(|r| r.get::<String>(1).unwrap_or_else(|e| spi_err(e)).unwrap_or_default())
        .collect();
    let used = format!("Index Scan using {index} on ");
    if lines.iter().any(|l| l.contains(&used)) {
        None
    } else {
        Some(lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join("; "))
    }
}
