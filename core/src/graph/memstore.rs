//! In-memory PRS store for tests and the eval example: graph + full vectors + codes, with
//! `inline` emulating the redundancy dial (neighbour slots `0..inline` carry inline codes).

use super::search::{SearchState, SearchStore};
use super::Graph;
use crate::quant::{PreparedQuery, Quantizer};
use rayon::prelude::*;

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
}

impl<'a> MemStore<'a> {
    pub fn new(graph: &'a Graph, vectors: &'a [f32], dim: usize, quantizer: &Quantizer, inline: usize) -> Self {
        let code_size = quantizer.code_size();
        let n = graph.neighbours.len();
        let mut codes = vec![0u8; n * code_size];
        if code_size > 0 {
            codes
                .par_chunks_mut(code_size)
                .zip(vectors.par_chunks(dim))
                .for_each(|(c, v)| quantizer.encode(v, c));
        }
        MemStore { graph, vectors, dim, codes, code_size, inline, deleted: vec![false; n] }
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
    fn neighbours(&mut self, id: u64, q: &PreparedQuery, is_new: &mut dyn FnMut(u64) -> bool, out: &mut Vec<(u64, Option<f32>)>) -> Option<f32> {
        let i = id as usize;
        let len = self.graph.neighbours[i].len();
        let rev = std::env::var("VSAG_REV").is_ok();
        for (slot, &nb) in self.graph.neighbours[i].iter().enumerate() {
            if is_new(nb as u64) {
                let inl = if rev { slot >= len.saturating_sub(self.inline) } else { slot < self.inline };
                let est = inl.then(|| q.estimate(self.code(nb as usize)));
                out.push((nb as u64, est));
            }
        }
        (!self.deleted[i]).then(|| q.exact(self.vector(i)))
    }
    fn estimate(&mut self, id: u64, q: &PreparedQuery) -> Option<f32> {
        Some(q.estimate(self.code(id as usize)))
    }
    fn exact(&mut self, id: u64, q: &PreparedQuery) -> Option<f32> {
        let i = id as usize;
        (!self.deleted[i]).then(|| q.exact(self.vector(i)))
    }
}
