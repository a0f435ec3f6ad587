//! Parallel work of a build under PostgreSQL's rules: a rayon pool of at most
//! `max_parallel_maintenance_workers + 1` threads (the workers plus the leader's share),
//! worker threads that never call into PostgreSQL, and a backend thread that meanwhile
//! reports progress and polls interrupts, so a cancel or `statement_timeout` stops the build
//! within a fraction of a second (the workers stop at their next point via an abort flag).
//! Large allocations are fallible and fail with an ERROR naming what did not fit.

use crate::fmgr::error;
use pgrx::pg_sys;
use pgrx::PgSqlErrorCode;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

// commands/progress.h (not in pgrx's bindings)
pub const PROGRESS_CREATE_IDX_SUBPHASE: i32 = 10;
pub const PROGRESS_CREATE_IDX_TUPLES_TOTAL: i32 = 11;
pub const PROGRESS_CREATE_IDX_TUPLES_DONE: i32 = 12;

pub fn progress(param: i32, value: i64) {
    unsafe { pg_sys::pgstat_progress_update_param(param, value) }
}

/// State shared between the backend thread and the workers of one parallel step.
#[derive(Default)]
pub struct Shared {
    /// Set by the backend when the statement is cancelled; workers stop at their next item.
    pub abort: AtomicBool,
    /// Progress counters the backend copies into `pg_stat_progress_create_index`.
    pub done: AtomicUsize,
    pub total: AtomicUsize,
}

impl Shared {
    pub fn stopped(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }
    pub fn report(&self, done: usize, total: usize) {
        self.total.store(total, Ordering::Relaxed);
        self.done.store(done, Ordering::Relaxed);
    }
}

/// Threads for this build: the leader plus `max_parallel_maintenance_workers`, no more than
/// the machine has cores.
pub fn thread_count() -> usize {
    let workers = unsafe { pg_sys::max_parallel_maintenance_workers }.max(0) as usize;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (workers + 1).min(cores).max(1)
}

pub fn build_pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(thread_count())
        .thread_name(|i| format!("vsag build {i}"))
        .build()
        .unwrap_or_else(|e| error(PgSqlErrorCode::ERRCODE_INSUFFICIENT_RESOURCES, format!("vsag: could not start build threads: {e}")))
}

/// Runs `work` on `pool` while this (the backend) thread updates the progress counters every
/// 50 ms and polls interrupts. On an interrupt the workers are told to stop, joined, and the
/// ERROR continues; `work` must check `Shared::stopped` often (it may then return anything).
/// A panic in a worker becomes an ERROR on this thread.
pub fn run_parallel<T: Send>(pool: &rayon::ThreadPool, work: impl FnOnce(&Shared) -> T + Send) -> T {
    let shared = Shared::default();
    std::thread::scope(|scope| {
        let sh = &shared;
        let handle = scope.spawn(move || pool.install(|| work(sh)));
        let mut reported = (usize::MAX, usize::MAX);
        loop {
            let now = (shared.done.load(Ordering::Relaxed), shared.total.load(Ordering::Relaxed));
            if now != reported && now.1 > 0 {
                progress(PROGRESS_CREATE_IDX_TUPLES_TOTAL, now.1 as i64);
                progress(PROGRESS_CREATE_IDX_TUPLES_DONE, now.0 as i64);
                reported = now;
            }
            if handle.is_finished() {
                break;
            }
            if let Err(e) = catch_unwind(AssertUnwindSafe(|| {
                pgrx::check_for_interrupts!();
            })) {
                shared.abort.store(true, Ordering::Relaxed);
                let _ = handle.join();
                resume_unwind(e);
            }
            std::thread::park_timeout(Duration::from_millis(50));
        }
        handle.join().unwrap_or_else(|p| resume_unwind(p))
    })
}

/// Makes room for `extra` more items in `v`, growing by half its size at a time (less
/// slack than doubling), or raises an ERROR naming `what` and the setting that bounds it.
pub fn reserve<T>(v: &mut Vec<T>, extra: usize, what: &str) {
    if v.capacity() - v.len() >= extra {
        return;
    }
    let want = extra.max(v.len() / 2).max((1 << 20) / std::mem::size_of::<T>().max(1));
    // No retry with less: creeping up to the last byte would only move the failure into
    // PostgreSQL's or another allocation.
    if v.try_reserve_exact(want).is_err() {
        out_of_memory((v.len() + want) * std::mem::size_of::<T>(), what);
    }
}

/// A `Vec` of `n` copies of `value`, or an ERROR as in [`reserve`].
pub fn alloc_vec<T: Clone>(n: usize, value: T, what: &str) -> Vec<T> {
    let mut v = Vec::new();
    if v.try_reserve_exact(n).is_err() {
        out_of_memory(n * std::mem::size_of::<T>(), what);
    }
    v.resize(n, value);
    v
}

/// Checks that `bytes` can be allocated now (reserved and released untouched), or raises
/// the ERROR of [`reserve`]: for memory that workers will allocate in many small pieces.
pub fn probe(bytes: usize, what: &str) {
    let mut v: Vec<u8> = Vec::new();
    if v.try_reserve_exact(bytes).is_err() {
        out_of_memory(bytes, what);
    }
}

pub fn out_of_memory(bytes: usize, what: &str) -> ! {
    let mwm = unsafe { pg_sys::maintenance_work_mem } as usize / 1024;
    error(
        PgSqlErrorCode::ERRCODE_OUT_OF_MEMORY,
        format!(
            "vsag: out of memory: could not allocate {} MB for {what}; the build keeps at most \
             maintenance_work_mem ({mwm} MB) of it: set maintenance_work_mem below the memory \
             the server can allocate",
            bytes.div_ceil(1 << 20)
        ),
    )
}
