//! The measuring half of `vsag_tune` (src/am/tune.rs): runs the sample queries through the
//! index at one setting, scores them against their exact top-k and times them; then searches
//! for the cheapest setting whose recall clears the target with a safety margin.
//!
//! Recall@k on the sample is a mean over queries; the margin is its one-sided 95% lower
//! confidence bound (mean − 1.645 · standard error), so a setting that only just reaches the
//! target on this sample is not taken. Recall grows with `ef_search` (nearly monotonically),
//! so for each `search_m` the smallest passing `ef_search` is bracketed by doubling or halving
//! and then bisected to within 1/16. Latency decides between the `search_m` finalists and the
//! prefetch depths (ELP: recall does not depend on them), timed interleaved and compared by
//! the median of per-round ratios, so that a noisy moment on a shared machine does not decide.
//! Adaptive termination (QLP) competes last: a wider beam with the smallest passing patience.

use super::options::DEFAULT_PREFETCH_DEPTH;
use super::store::HIDDEN_ROW;
use super::verify_selfquery::set_guc;
use vsag_core::page::ItemPointer;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::{PreparedStatement, SpiClient};
use std::time::{Duration, Instant};

/// Upper bound of `vsag.ef_search`.
pub const MAX_EF: usize = 10_000;
/// One-sided 95% normal quantile: the margin in standard errors of the sample's recall.
const Z: f64 = 1.645;
/// A smaller `search_m`, adaptive termination or another prefetch depth must be this much
/// faster than the setting it would replace to be chosen: timing noise must not pick it.
const MIN_GAIN: f64 = 0.05;
/// A failing trial this many times slower than the best passing one ends that search_m.
const GIVE_UP: f64 = 1.5;
/// Interleaved timing rounds when comparing finalists.
const RETIME_ROUNDS: usize = 5;
/// Prefetch depths timed for the chosen setting (the GUC's default first, 0 = off).
const PREFETCH_DEPTHS: [usize; 4] = [DEFAULT_PREFETCH_DEPTH as usize, 0, 2, 4];

/// Adaptive termination (QLP) is tried with the chosen ef_search times this as the beam's
/// ceiling (minilm-100k, core eval: patience 24-48 under a 2.5-5x wider beam matches a fixed
/// beam's recall at 0.98-0.995 with 1.3-1.8x fewer expansions), patience from
/// EARLY_STOP_MIN doubling up to EARLY_STOP_MAX.
const EARLY_STOP_EF_FACTOR: usize = 4;
const EARLY_STOP_MIN: usize = 8;
const EARLY_STOP_MAX: usize = 256;

/// One sample query: the row holding its vector, the row it must not count (its own row, or
/// an invalid TID for a user's query table) and its exact top-k.
pub struct Query {
    pub tid: String,
    pub exclude: String,
    /// Rows of the exact top-k (fewer than k in a tiny table).
    pub exact_count: usize,
    /// Distance of the exact k-th row: an index row at most this far is a true neighbour
    /// (ties at the k-th distance count as found).
    pub kth: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting {
    pub ef_search: usize,
    /// 0 = all neighbours.
    pub search_m: usize,
    pub prefetch_depth: usize,
    /// Adaptive termination's patience (0 = off).
    pub early_stop: usize,
}

#[derive(Clone, Copy, Debug)]
pub struct Trial {
    pub setting: Setting,
    pub recall: f64,
    pub recall_low: f64,
    pub mean_ms: f64,
}

/// The time budget ran out: keep what was measured.
pub struct OutOfTime;

pub struct Tuner<'a, 'c> {
    pub client: &'a SpiClient<'c>,
    /// The index query: $1 = the query vector's row, $2 = the row to exclude.
    pub stmt: &'a PreparedStatement<'c>,
    pub queries: &'a [Query],
    pub target: f64,
    pub deadline: Instant,
    pub trials: Vec<Trial>,
}

fn spi_err(e: pgrx::spi::SpiError) -> ! {
    error!("vsag_tune: sample query failed: {e}")
}

fn search_m_text(m: usize) -> String {
    if m == 0 {
        "all".to_string()
    } else {
        m.to_string()
    }
}

impl Tuner<'_, '_> {
    /// Runs every sample query once at `s` (session GUCs, restored by the caller's GUC nest
    /// level) and records the trial.
    pub fn measure(&mut self, s: Setting) -> Result<Trial, OutOfTime> {
        if Instant::now() > self.deadline {
            return Err(OutOfTime);
        }
        unsafe {
            set_guc(c"vsag.ef_search", &s.ef_search.to_string());
            set_guc(c"vsag.search_m", &s.search_m.to_string());
            set_guc(c"vsag.prefetch_depth", &s.prefetch_depth.to_string());
            set_guc(c"vsag.early_stop", &s.early_stop.to_string());
        }
        let (mut sum, mut sum_sq, mut time) = (0f64, 0f64, Duration::ZERO);
        for q in self.queries {
            let args = [DatumWithOid::from(q.tid.clone()), DatumWithOid::from(q.exclude.clone())];
            let tol = 1e-9 * (1.0 + q.kth.abs());
            // Own-row samples: the query's node is not expanded (see HIDDEN_ROW).
            let _hidden = HiddenRow::set(q.exclude.parse::<TidText>().ok().map(|t| t.0));
            let t0 = Instant::now();
            let rows = self.client.select(self.stmt, None, &args).unwrap_or_else(|e| spi_err(e));
            let mut hits = 0usize;
            for row in rows {
                if let Some(d) = row.get::<f64>(1).unwrap_or_else(|e| spi_err(e)) {
                    hits += (d <= q.kth + tol) as usize;
                }
            }
            time += t0.elapsed();
            let r = hits.min(q.exact_count) as f64 / q.exact_count as f64;
            sum += r;
            sum_sq += r * r;
            pgrx::check_for_interrupts!();
        }
        let n = self.queries.len() as f64;
        let mean = sum / n;
        let var = if n > 1.0 { ((sum_sq - n * mean * mean) / (n - 1.0)).max(0.0) } else { 0.0 };
        let t = Trial {
            setting: s,
            recall: mean,
            recall_low: mean - Z * (var / n).sqrt(),
            mean_ms: time.as_secs_f64() * 1000.0 / n,
        };
        notice!(
            "vsag_tune: ef_search {} search_m {} prefetch_depth {} early_stop {}: recall {:.4} (lower bound {:.4}), {:.3} ms per query",
            s.ef_search,
            search_m_text(s.search_m),
            s.prefetch_depth,
            s.early_stop,
            t.recall,
            t.recall_low,
            t.mean_ms
        );
        self.trials.push(t);
        Ok(t)
    }

    fn passes(&self, t: &Trial) -> bool {
        t.recall_low >= self.target
    }

    /// The smallest `ef_search` (within 1/16, at least `floor`) that passes at `search_m`,
    /// starting the bracket at `start`; None when even `MAX_EF` does not, or when a failing
    /// trial is already slower than `give_up_ms` (it could not win).
    fn min_ef(&mut self, search_m: usize, start: usize, floor: usize, give_up_ms: f64) -> Result<Option<Trial>, OutOfTime> {
        let at = |ef: usize| Setting { ef_search: ef, search_m, prefetch_depth: DEFAULT_PREFETCH_DEPTH as usize, early_stop: 0 };
        let first = self.measure(at(start.max(floor)))?;
        // lo fails (floor - 1 = nothing at or above the floor is known to fail), hi passes.
        let (lo, hi) = if self.passes(&first) {
            let mut hi = first;
            let mut lo = floor - 1;
            while hi.setting.ef_search > floor {
                let t = self.measure(at((hi.setting.ef_search / 2).max(floor)))?;
                if !self.passes(&t) {
                    lo = t.setting.ef_search;
                    break;
                }
                hi = t;
            }
            (lo, hi)
        } else {
            let mut lo = start.max(floor);
            if first.mean_ms > give_up_ms {
                return Ok(None);
            }
            loop {
                if lo >= MAX_EF {
                    return Ok(None);
                }
                let t = self.measure(at((lo * 2).min(MAX_EF)))?;
                if self.passes(&t) {
                    break (lo, t);
                }
                if t.mean_ms > give_up_ms {
                    return Ok(None);
                }
                lo = t.setting.ef_search;
            }
        };
        self.bisect(lo, hi, 16, at, |s| s.ef_search).map(Some)
    }

    /// Narrows `(lo fails, hi passes)` on the knob `key` of the settings `at` makes, until
    /// the gap is within `1/fraction` of hi; the smallest passing trial.
    fn bisect(
        &mut self,
        mut lo: usize,
        mut hi: Trial,
        fraction: usize,
        at: impl Fn(usize) -> Setting,
        key: impl Fn(&Setting) -> usize,
    ) -> Result<Trial, OutOfTime> {
        while key(&hi.setting) - lo > (key(&hi.setting) / fraction).max(1) {
            let t = self.measure(at((lo + key(&hi.setting)) / 2))?;
            if self.passes(&t) {
                hi = t;
            } else {
                lo = key(&t.setting);
            }
        }
        Ok(hi)
    }

    /// Adaptive termination for `fixed` (the chosen fixed-beam setting): its ef_search
    /// times EARLY_STOP_EF_FACTOR as the ceiling, and the smallest patience (within 1/8)
    /// whose recall passes. None when even the largest patience tried does not pass.
    fn min_early_stop(&mut self, fixed: Setting) -> Result<Option<Trial>, OutOfTime> {
        let ef_search = (fixed.ef_search * EARLY_STOP_EF_FACTOR).min(MAX_EF);
        let at = |p: usize| Setting { ef_search, early_stop: p, ..fixed };
        // Recall grows with patience: double from the smallest until one passes, then bisect.
        let mut lo = 0;
        let mut p = EARLY_STOP_MIN;
        let hi = loop {
            let t = self.measure(at(p))?;
            if self.passes(&t) {
                break t;
            }
            if p >= EARLY_STOP_MAX {
                return Ok(None);
            }
            lo = p;
            p *= 2;
        };
        self.bisect(lo, hi, 8, at, |s| s.early_stop).map(Some)
    }

    /// Which of `settings` is cheapest: all are re-timed interleaved, `RETIME_ROUNDS` times,
    /// and an alternative replaces `settings[0]` only if it is faster by `min_gain` in all
    /// rounds but one (a sign test on same-moment pairs: a shared machine's bursts of load
    /// move single timings by ±50%); among those the lowest median time ratio wins.
    fn cheapest(&mut self, settings: &[Setting], min_gain: f64) -> Setting {
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); settings.len()];
        'rounds: for _ in 0..RETIME_ROUNDS {
            let mut round = Vec::with_capacity(settings.len());
            for s in settings {
                match self.measure(*s) {
                    Ok(t) => round.push(t.mean_ms),
                    Err(OutOfTime) => break 'rounds,
                }
            }
            for (i, t) in round.into_iter().enumerate() {
                times[i].push(t);
            }
        }
        let mut best = (settings[0], 1.0 - min_gain);
        for (i, s) in settings.iter().enumerate().skip(1) {
            let mut ratios: Vec<f64> = times[i].iter().zip(&times[0]).map(|(a, b)| a / b).collect();
            if ratios.len() < RETIME_ROUNDS {
                continue; // not timed in every round: keep the baseline
            }
            let wins = ratios.iter().filter(|&&r| r < 1.0 - min_gain).count();
            ratios.sort_by(f64::total_cmp);
            let median = ratios[ratios.len() / 2];
            if wins + 1 >= RETIME_ROUNDS && median < best.1 {
                best = (*s, median);
            }
        }
        best.0
    }

    /// The cheapest passing setting: ef_search (at least `floor`: with `vsag.iterative_scan
    /// = off` a scan returns at most ef_search rows, so it must not be below k) for all
    /// neighbours and for the given smaller `search_m` values, then the prefetch depth.
    /// None when nothing passes.
    pub fn tune(&mut self, start: usize, floor: usize, smaller_m: &[usize]) -> Option<Setting> {
        let mut finalists: Vec<Setting> = Vec::new();
        let mut next = start;
        // A smaller degree needs a wider beam; once a trial is this much slower than the
        // all-neighbours winner it cannot win (and ef_search would climb to its maximum).
        let mut give_up_ms = f64::INFINITY;
        for &sm in std::iter::once(&0).chain(smaller_m) {
            match self.min_ef(sm, next, floor, give_up_ms) {
                Ok(Some(t)) => {
                    give_up_ms = give_up_ms.min(GIVE_UP * t.mean_ms);
                    finalists.push(t.setting);
                    next = t.setting.ef_search;
                    // Latency is not monotonic in ef_search near k: a batch holds
                    // max(ef_search / rerank_factor, 10) rows, so a k above 10 may take
                    // several batches below k·rerank_factor. The fastest-looking passing trial of
                    // this search_m competes too.
                    let fastest = self
                        .trials
                        .iter()
                        .filter(|x| x.setting.search_m == sm && self.passes(x))
                        .min_by(|a, b| a.mean_ms.total_cmp(&b.mean_ms))
                        .map(|x| x.setting);
                    if let Some(f) = fastest.filter(|f| *f != t.setting) {
                        finalists.push(f);
                    }
                }
                Ok(None) => break, // a smaller degree will not do better
                Err(OutOfTime) => {
                    notice!("vsag_tune: time budget used up; choosing among the settings measured");
                    break;
                }
            }
        }
        if finalists.is_empty() {
            // Out of time inside a bracket: the smallest passing ef_search measured, if any.
            let passing = self.trials.iter().filter(|t| self.passes(t));
            finalists.extend(passing.min_by_key(|t| (t.setting.search_m != 0, t.setting.ef_search)).map(|t| t.setting));
        }
        let mut chosen = *finalists.first()?;
        if finalists.len() > 1 {
            chosen = self.cheapest(&finalists, MIN_GAIN);
        }
        // QLP: a wider beam that easy queries leave early, if it is cheaper at the target.
        match self.min_early_stop(chosen) {
            Ok(Some(t)) => chosen = self.cheapest(&[chosen, t.setting], MIN_GAIN),
            Ok(None) => {}
            Err(OutOfTime) => notice!("vsag_tune: time budget used up; adaptive termination not tried"),
        }
        let depths: Vec<Setting> = PREFETCH_DEPTHS.iter().map(|&d| Setting { prefetch_depth: d, ..chosen }).collect();
        Some(self.cheapest(&depths, MIN_GAIN))
    }
}

/// A TID in its text form `(block,offset)`; `(0,0)` (no row: a user's query table) is none.
struct TidText(ItemPointer);

impl std::str::FromStr for TidText {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let (b, o) = s.trim().strip_prefix('(').and_then(|s| s.strip_suffix(')')).and_then(|s| s.split_once(',')).ok_or(())?;
        let (block, offset) = (b.trim().parse::<u32>().map_err(|_| ())?, o.trim().parse::<u16>().map_err(|_| ())?);
        if offset == 0 {
            return Err(());
        }
        Ok(TidText(ItemPointer::new(block, offset)))
    }
}

/// Sets HIDDEN_ROW until dropped, also when an ERROR unwinds through the query.
struct HiddenRow;

impl HiddenRow {
    fn set(row: Option<ItemPointer>) -> HiddenRow {
        HIDDEN_ROW.with(|h| h.set(row));
        HiddenRow
    }
}

impl Drop for HiddenRow {
    fn drop(&mut self) {
        HIDDEN_ROW.with(|h| h.set(None));
    }
}
