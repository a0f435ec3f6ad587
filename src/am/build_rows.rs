//! The rows a build collects: float vectors while they fit `maintenance_work_mem`, then SQ8
//! codes (¼ of the size) encoded in place over the floats (at the latest once the table is
//! read, see `ambuild`). Once compressed, each row also
//! keeps a hash of its exact vector (duplicate detection needs exact equality), and an
//! even sample of exact vectors stays for training the index's quantizers and measuring
//! their error bounds.

use super::build_run::{out_of_memory, reserve};
use super::build_spill::SpillFile;
use crate::fmgr::error;
use pgrx::PgSqlErrorCode;
use vsag_core::graph::vector_hash;
use vsag_core::page::ItemPointer;
use vsag_core::quant::{Quantizer, QuantizerKind, Sq8};

/// Rows kept to train and to measure error bounds (as many as fit 1/16 of the budget).
const SAMPLE_ROWS: usize = 20_000;

/// The exact rows a build keeps as its sample under `budget`.
pub fn sample_rows(budget: usize, dim: usize) -> usize {
    SAMPLE_ROWS.min(budget / 16 / (dim * 4)).max(1)
}

pub struct Rows {
    pub dim: usize,
    pub tids: Vec<ItemPointer>,
    /// Row-major floats, or (once `codes` is set) the code bytes, `code_size` per row.
    buf: Vec<f32>,
    /// Code bytes in use (`buf` is rounded up to whole floats).
    nbytes: usize,
    pub codes: Option<Quantizer>,
    pub hashes: Vec<u64>,
    /// Exact vectors sampled when the rows were compressed (empty before).
    pub sample: Vec<f32>,
    scratch: Vec<u8>,
}

impl Rows {
    pub fn new(dim: usize) -> Rows {
        Rows { dim, tids: Vec::new(), buf: Vec::new(), nbytes: 0, codes: None, hashes: Vec::new(), sample: Vec::new(), scratch: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.tids.len()
    }

    pub fn compressed(&self) -> bool {
        self.codes.is_some()
    }

    /// Bytes one more row takes (vector or code, heap pointer, hash).
    pub fn row_bytes(&self) -> usize {
        match &self.codes {
            None => self.dim * 4 + 6,
            Some(q) => q.code_size() + 6 + 8,
        }
    }

    pub fn push(&mut self, tid: ItemPointer, v: &[f32]) {
        reserve(&mut self.tids, 1, "the heap pointers of the rows");
        self.tids.push(tid);
        match &self.codes {
            None => {
                reserve(&mut self.buf, v.len(), "the vectors of the rows");
                self.buf.extend_from_slice(v);
            }
            Some(q) => {
                let cs = q.code_size();
                self.scratch.resize(cs, 0);
                q.encode(v, &mut self.scratch);
                let need = (self.nbytes + cs).div_ceil(4);
                let extra = need.saturating_sub(self.buf.len());
                reserve(&mut self.buf, extra, "the SQ8 codes of the rows");
                self.buf.resize(need, 0.0);
                let at = self.nbytes;
                bytemuck::cast_slice_mut::<f32, u8>(&mut self.buf)[at..at + cs].copy_from_slice(&self.scratch);
                self.nbytes += cs;
                reserve(&mut self.hashes, 1, "the row hashes");
                self.hashes.push(vector_hash(v));
            }
        }
    }

    /// The float vectors (before compression).
    pub fn floats(&self) -> &[f32] {
        assert!(self.codes.is_none());
        &self.buf
    }

    pub fn floats_mut(&mut self) -> &mut Vec<f32> {
        assert!(self.codes.is_none());
        &mut self.buf
    }

    /// The codes, `code_size` bytes per row (after compression).
    pub fn code_bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<f32, u8>(&self.buf)[..self.nbytes]
    }

    pub fn code_bytes_mut(&mut self) -> &mut [u8] {
        let n = self.nbytes;
        &mut bytemuck::cast_slice_mut::<f32, u8>(&mut self.buf)[..n]
    }

    /// Keeps the first `n` codes' bytes (after compacting duplicates).
    pub fn truncate_codes(&mut self, rows: usize) {
        let cs = self.codes.as_ref().map_or(0, |q| q.code_size());
        self.nbytes = rows * cs;
        self.buf.truncate(self.nbytes.div_ceil(4));
        self.buf.shrink_to_fit();
    }

    /// An even sample of up to `max_rows` of the float vectors.
    pub fn float_sample(&self, max_rows: usize) -> Vec<f32> {
        assert!(self.codes.is_none());
        let dim = self.dim;
        let n = self.buf.len() / dim;
        let step = n.div_ceil(max_rows.max(1)).max(1);
        let mut s = Vec::new();
        if s.try_reserve_exact(n.div_ceil(step) * dim).is_err() {
            out_of_memory(n.div_ceil(step) * dim * 4, "the training sample");
        }
        for i in (0..n).step_by(step) {
            s.extend_from_slice(&self.buf[i * dim..(i + 1) * dim]);
        }
        s
    }

    /// Whether codes would be smaller than the floats (not at 1 dimension).
    pub fn can_compress(&self) -> bool {
        QuantizerKind::Sq8.code_size(self.dim) < self.dim * 4
    }

    /// Switches to SQ8 codes trained on every row's range: keeps an even exact sample
    /// (1/16 of `budget` at most, counted in it by the caller), hashes every row, and
    /// encodes the floats in place (row `i`'s code lands below row `i + 1`'s floats, so
    /// nothing unread is overwritten), releasing ¾ of the memory.
    pub fn compress(&mut self, budget: usize) {
        let (n, dim) = (self.len(), self.dim);
        self.sample = self.float_sample(sample_rows(budget, dim));
        let trained = Sq8::train(dim, &self.buf);
        let q = trained.unwrap_or_else(|e| error(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("vsag: {e}")));
        let q = Quantizer::Sq8(q);
        let cs = q.code_size();
        reserve(&mut self.hashes, n, "the row hashes");
        let mut row = vec![0f32; dim];
        let mut code = vec![0u8; cs];
        for i in 0..n {
            if i % 65_536 == 0 {
                pgrx::check_for_interrupts!();
            }
            row.copy_from_slice(&self.buf[i * dim..(i + 1) * dim]);
            self.hashes.push(vector_hash(&row));
            q.encode(&row, &mut code);
            bytemuck::cast_slice_mut::<f32, u8>(&mut self.buf)[i * cs..(i + 1) * cs].copy_from_slice(&code);
        }
        self.nbytes = n * cs;
        self.buf.truncate(self.nbytes.div_ceil(4));
        self.buf.shrink_to_fit();
        self.codes = Some(q);
    }
}

impl Rows {
    /// Moves the (uncompressed) rows into a new temporary file.
    pub fn spill(self) -> SpillFile {
        let mut file = SpillFile::new(self.dim);
        for (i, &tid) in self.tids.iter().enumerate() {
            file.push(tid, &self.floats()[i * self.dim..(i + 1) * self.dim]);
        }
        file
    }

    /// Rows spilled to `file`, read back as SQ8 codes trained on every row's range (the
    /// build then links the graph over them), with hashes; `range` and `sample` from
    /// [`SpillFile::survey`].
    pub fn load_codes(file: &mut SpillFile, range: &[f32], sample: Vec<f32>) -> Rows {
        let (n, dim) = (file.len(), file.dim());
        let q = Sq8::train(dim, range).unwrap_or_else(|e| error(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("vsag: {e}")));
        let q = Quantizer::Sq8(q);
        let mut rows = Rows::new(dim);
        reserve(&mut rows.tids, n, "the heap pointers of the rows");
        reserve(&mut rows.hashes, n, "the row hashes");
        reserve(&mut rows.buf, (n * q.code_size()).div_ceil(4), "the SQ8 codes of the rows");
        rows.codes = Some(q);
        file.for_each(|_, tid, v| rows.push(tid, v));
        rows.sample = sample;
        rows
    }
}
