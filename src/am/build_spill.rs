//! The rows of a build that outgrew `maintenance_work_mem`, in a PostgreSQL temporary file
//! (`BufFile`: honours `temp_tablespaces` and `temp_file_limit`, removed at transaction
//! end): heap pointer and exact float vector per row, read back in order as often as the
//! build needs, or one row at a time. Backend thread only.

use super::build_run::out_of_memory;
use pgrx::pg_sys;
use vsag_core::page::ItemPointer;

/// BufFile segments are 1 GB files; a position is (segment, offset in it).
const SEGMENT_BYTES: u64 = 1 << 30;
const SEEK_SET: i32 = 0;

pub struct SpillFile {
    file: *mut pg_sys::BufFile,
    dim: usize,
    rows: usize,
    /// One row as written: the vector, then the heap pointer's block and offset as two
    /// more 4-byte words (floats first, so they stay aligned).
    record: Vec<f32>,
    /// Rows read since the last rewind (the file position, in rows).
    read: usize,
}

impl SpillFile {
    pub fn new(dim: usize) -> SpillFile {
        let file = unsafe { pg_sys::BufFileCreateTemp(false) };
        SpillFile { file, dim, rows: 0, record: vec![0.0; dim + 2], read: 0 }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    fn record_bytes(&self) -> usize {
        (self.dim + 2) * 4
    }

    /// Appends a row (only before the first read).
    pub fn push(&mut self, tid: ItemPointer, v: &[f32]) {
        debug_assert_eq!(v.len(), self.dim);
        let dim = self.dim;
        self.record[..dim].copy_from_slice(v);
        self.record[dim] = f32::from_bits(tid.block);
        self.record[dim + 1] = f32::from_bits(tid.offset as u32);
        let bytes = self.record_bytes();
        unsafe { pg_sys::BufFileWrite(self.file, self.record.as_mut_ptr() as *mut std::ffi::c_void, bytes) };
        self.rows += 1;
    }

    fn seek(&mut self, row: usize) {
        let at = row as u64 * self.record_bytes() as u64;
        let (seg, off) = ((at / SEGMENT_BYTES) as i32, (at % SEGMENT_BYTES) as pg_sys::off_t);
        if unsafe { pg_sys::BufFileSeek(self.file, seg, off, SEEK_SET) } != 0 {
            pgrx::error!("vsag: could not seek in the build's temporary file");
        }
        self.read = row;
    }

    /// Starts reading from the first row.
    pub fn rewind(&mut self) {
        self.seek(0);
    }

    /// The next row, its heap pointer and vector (into `v`); false after the last.
    pub fn next(&mut self, v: &mut [f32]) -> Option<ItemPointer> {
        if self.read >= self.rows {
            return None;
        }
        let bytes = self.record_bytes();
        let n = unsafe { pg_sys::BufFileRead(self.file, self.record.as_mut_ptr() as *mut std::ffi::c_void, bytes) };
        if n != bytes {
            pgrx::error!("vsag: could not read row {} back from the build's temporary file", self.read);
        }
        self.read += 1;
        let (r, dim) = (&self.record, self.dim);
        v.copy_from_slice(&r[..dim]);
        Some(ItemPointer::new(r[dim].to_bits(), r[dim + 1].to_bits() as u16))
    }

    /// Row `i` (moves the reading position to after it).
    pub fn row(&mut self, i: usize, v: &mut [f32]) -> ItemPointer {
        self.seek(i);
        self.next(v).unwrap_or_else(|| pgrx::error!("vsag: row {i} is past the build's temporary file"))
    }

    /// Removes the file now (else the transaction's end does; not in a destructor: closing
    /// flushes, which could raise the very ERROR being unwound from).
    pub fn close(mut self) {
        unsafe { pg_sys::BufFileClose(self.file) };
        self.file = std::ptr::null_mut();
    }

    /// Reads every row in order, checking for interrupts as it goes.
    pub fn for_each(&mut self, mut f: impl FnMut(usize, ItemPointer, &[f32])) {
        self.rewind();
        let mut v = vec![0f32; self.dim];
        let mut i = 0;
        while let Some(tid) = self.next(&mut v) {
            if i % 16_384 == 0 {
                pgrx::check_for_interrupts!();
            }
            f(i, tid, &v);
            i += 1;
        }
    }

    /// One pass: every dimension's minimum and maximum (two rows, for training SQ8 on the
    /// whole table's range) and an even sample of about `keep` rows (row-major).
    pub fn survey(&mut self, keep: usize) -> (Vec<f32>, Vec<f32>) {
        let dim = self.dim;
        let step = self.rows.div_ceil(keep.max(1)).max(1);
        let mut range = [vec![f32::INFINITY; dim], vec![f32::NEG_INFINITY; dim]].concat();
        let mut sample = Vec::new();
        if sample.try_reserve_exact(self.rows.div_ceil(step) * dim).is_err() {
            out_of_memory(self.rows.div_ceil(step) * dim * 4, "the training sample");
        }
        self.for_each(|i, _, v| {
            let (lo, hi) = range.split_at_mut(dim);
            for d in 0..dim {
                lo[d] = lo[d].min(v[d]);
                hi[d] = hi[d].max(v[d]);
            }
            if i % step == 0 {
                sample.extend_from_slice(v);
            }
        });
        (range, sample)
    }
}
