//! In-memory PRS store for tests and the eval example: graph + full vectors + codes, with
//! `inline` emulating the redundancy dial (neighbour slots `0..inline` carry inline codes)
//! and `full_vectors` the storage mode (see `page::node`).

use super::search::{Own, Score, SearchState, SearchStore};
use super::Graph;
use crate::quant::{PreparedQuery, Quantizer};
use rayon::prelude::*;

fn prefetch_bytes(b: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for off in (0..b.len()).step_by(64) {
        // SAFETY: prefetch never faults; the address is inside `b`.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                b.as_ptr().add(off) as *const i8,
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = b;
}

pub struct MemStore<'a> {
    pub graph: &'a Graph,
    vectors: &'a [f32],
    dim: usize,
    codes: Vec<u8>,
    code_size: usize,
    /// Inline codes per node (0 = none, m = full redundancy).
    pub inline: usize,
    /// Nodes marked dead: traversed but never returned.
    pub deleted: Vec<bool>,
    /// Emulates `storage = full` (the default): a node's tuple has its vector and no own
    /// code, so reading it (expansion or a non-inline neighbour) gives the exact distance.
    /// `false` emulates `storage = codes`: the tuple has only codes and every exact
    /// distance is an `exact()` call (a heap fetch in Postgres).
    pub full_vectors: bool,
    /// Own codes of a second, finer quantizer (two-precision codes storage): expanding a
    /// node scores it with `PreparedQuery::fine`.
    fine_codes: Option<(Vec<u8>, usize)>,
}

impl<'a> MemStore<'a> {
    pub fn new(
        graph: &'a Graph,
        vectors: &'a [f32],
        dim: usize,
        quantizer: &Quantizer,
        inline: usize,
    ) -> Self {
        let code_size = quantizer.code_size();
        let n = graph.neighbours.len();
        let mut codes = vec![0u8; n * code_size];
        if code_size > 0 {
            codes
                .par_chunks_mut(code_size)
                .zip(vectors.par_chunks(dim))
                .for_each(|(c, v)| quantizer.encode(v, c));
        }
        MemStore {
            graph,
            vectors,
            dim,
            codes,
            code_size,
            inline,
            deleted: vec![false; n],
            full_vectors: true,
            fine_codes: None,
        }
    }

    /// Gives every node an own code of `fine` (used when `full_vectors` is false).
    pub fn with_fine(mut self, fine: &Quantizer) -> Self {
        let size = fine.code_size();
        let mut codes = vec![0u8; self.graph.neighbours.len() * size];
        codes
            .par_chunks_mut(size)
            .zip(self.vectors.par_chunks(self.dim))
            .for_each(|(c, v)| fine.encode(v, c));
        self.fine_codes = Some((codes, size));
        self
    }

    pub fn code(&self, i: usize) -> &[u8] {
        &self.codes[i * self.code_size..(i + 1) * self.code_size]
    }
    fn vector(&self, i: usize) -> &[f32] {
        &self.vectors[i * self.dim..(i + 1) * self.dim]
    }

    /// One-shot search: beam `ef`, re-rank the best `max(ef, k)` exactly, return the top `k`.
    pub fn search(&mut self, q: PreparedQuery, ef: usize, k: usize) -> Vec<(u64, f32)> {
        if self.graph.neighbours.is_empty() {
            return Vec::new();
        }
        let mut st = SearchState::new(q, self.graph.entry as u64);
        st.run(self, ef.max(k));
        let mut r = st.next_batch(self, ef.max(k));
        r.truncate(k);
        r
    }
}

impl SearchStore for MemStore<'_> {
    fn neighbours(
        &mut self,
        id: u64,
        q: &PreparedQuery,
        is_new: &mut dyn FnMut(u64) -> bool,
        out: &mut Vec<(u64, Option<f32>)>,
    ) -> Own {
        let i = id as usize;
        let start = out.len();
        // Two passes so the codes of all new neighbours can be prefetched before scoring
        // (random 400-byte reads dominate otherwise); slot order is kept in `out`.
        for (slot, &nb) in self.graph.neighbours[i].iter().enumerate() {
            if is_new(nb as u64) {
                out.push((nb as u64, None));
                if slot < self.inline {
                    prefetch_bytes(self.code(nb as usize));
                }
            }
        }
        let list = &self.graph.neighbours[i];
        let mut slot = 0;
        for e in &mut out[start..] {
            while list[slot] as u64 != e.0 {
                slot += 1;
            }
            if slot < self.inline {
                e.1 = Some(q.estimate(self.code(e.0 as usize)));
            }
        }
        let live = !self.deleted[i];
        let fine = match (&self.fine_codes, q.fine()) {
            (Some((codes, size)), Some(fq)) if !self.full_vectors => Some(fq.estimate(&codes[i * size..(i + 1) * size])),
            _ => None,
        };
        Own {
            exact: (self.full_vectors && live).then(|| q.exact(self.vector(i))),
            fine,
            payload: live.then_some(id),
        }
    }
    fn estimate_batch(&mut self, ids: &[u64], q: &PreparedQuery, out: &mut [Option<(Score, Option<u64>)>]) {
        for &id in ids {
            if self.full_vectors {
                prefetch_bytes(bytemuck::cast_slice(self.vector(id as usize)));
            } else {
                prefetch_bytes(self.code(id as usize));
            }
        }
        for (o, &id) in out.iter_mut().zip(ids) {
            *o = self.estimate(id, q);
        }
    }
    fn estimate(&mut self, id: u64, q: &PreparedQuery) -> Option<(Score, Option<u64>)> {
        let i = id as usize;
        let payload = (!self.deleted[i]).then_some(id);
        let s = if !self.full_vectors {
            Score::Estimate(q.estimate(self.code(i)))
        } else if self.deleted[i] {
            // Dead nodes are still traversed but must not look returnable.
            Score::Estimate(q.exact(self.vector(i)))
        } else {
            Score::Exact(q.exact(self.vector(i)))
        };
        Some((s, payload))
    }
    fn exact(&mut self, id: u64, payload: Option<u64>, q: &PreparedQuery) -> Option<f32> {
        let i = id as usize;
        debug_assert!(payload.is_none() || payload == Some(id));
        (!self.deleted[i]).then(|| q.exact(self.vector(i)))
    }
}
