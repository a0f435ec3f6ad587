//! Single-layer Vamana/DiskANN-style proximity graph: parallel in-memory build, robust
//! pruning reusable by the insert path, and a resumable quantized-first search generic over
//! where the graph lives ([`SearchStore`]).
//!
//! Distances follow the contract in [`crate::quant`] (squared L2, `-dot`, `1 - dot` on
//! normalised vectors for cosine).

mod build;
pub mod dedup;
pub mod memstore;
mod points;
pub mod partition;
pub mod prune;
pub mod search;
pub mod visited;

pub use build::{build, build_with, Aborted};
pub use dedup::{group_by_key, group_identical, vector_hash, Groups};
pub use points::BuildInput;
pub use memstore::MemStore;
pub use prune::{fill_prune, robust_prune};
pub use search::{Hit, Own, Score, SearchState, SearchStats, SearchStore};
pub use visited::VisitedSet;

use crate::distance::Metric;

#[derive(Clone, Debug)]
pub struct BuildParams {
    /// Maximum out-degree.
    pub m: usize,
    /// Beam width of the insertion searches.
    pub ef_construction: usize,
    /// Pruning slack (>= 1); larger keeps more long edges.
    pub alpha: f32,
    pub metric: Metric,
    /// First pass with alpha = 1, second with `alpha` (DiskANN). Off by default: with the
    /// progressive-alpha prune one pass gives nearly the same recall at half the time.
    pub two_pass: bool,
    /// Largest insertion batch; `None` = n/50 clamped to 64..=4096.
    pub max_batch: Option<usize>,
    /// Seed of the insertion order.
    pub seed: u64,
}

impl Default for BuildParams {
    fn default() -> Self {
        BuildParams {
            m: 32,
            ef_construction: 128,
            alpha: 1.2,
            metric: Metric::L2,
            two_pass: false,
            max_batch: None,
            seed: 0x5eed,
        }
    }
}

/// The built graph: node `i` is row `i` of the input; neighbour lists hold at most `m` ids,
/// in robust-prune **selection order** (the order insert and VACUUM keep; see `robust_prune`). For `n == 0`, `neighbours` is empty and `entry` meaningless.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub neighbours: Vec<Vec<u32>>,
    pub entry: u32,
}

/// Upper estimate of the bytes `build` needs for `n` vectors of `dim` floats, *including*
/// the caller's `n·dim·4` bytes of vectors (compare the total with maintenance_work_mem).
pub fn build_memory_estimate(n: usize, dim: usize, m: usize) -> usize {
    build_memory_estimate_for(n, dim * 4, m, rayon::current_num_threads())
}

/// [`build_memory_estimate`] for points of `point_bytes` each (a code, or a float vector,
/// plus whatever the caller keeps per row), built on `threads` threads.
pub fn build_memory_estimate_for(n: usize, point_bytes: usize, m: usize, threads: usize) -> usize {
    let vectors = n * point_bytes;
    // Per node: Vec header + up to m u32 ids (+ the 30% reverse-edge slack before pruning).
    let graph = n * (24 + 4 * (m + (3 * m).div_ceil(10)));
    // Batch buffers: lists and reverse-edge pairs for the largest batch.
    let batch = (n / 50).clamp(64, 4096) * m * 24;
    // Insertion order, reachability check, per-thread search scratch.
    let misc = n * 5 + threads * (1 << 20);
    vectors + graph + batch + misc
}

#[cfg(test)]
mod build_tests;
#[cfg(test)]
mod search_tests;
#[cfg(test)]
mod tests;
