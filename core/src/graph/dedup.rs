//! Groups rows whose vectors are bitwise identical, so a bulk build can make one node per
//! distinct vector (holding up to `page::MAX_HEAP_TIDS` heap rows) instead of a clique of
//! copies that pruning cannot keep connected.

use super::build::mix;
use rayon::prelude::*;

/// Row groups in CSR form: group `g` is `rows[starts[g]..starts[g + 1]]`, ascending row
/// numbers. Groups are ordered by their first row, so without duplicates group `g` is
/// `[g]`, and the first rows increase strictly (a caller may compact vectors in place).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Groups {
    rows: Vec<u32>,
    starts: Vec<u32>,
}

impl Groups {
    pub fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Rows of group `g`; the first is the representative whose vector the node stores.
    pub fn group(&self, g: usize) -> &[u32] {
        &self.rows[self.starts[g] as usize..self.starts[g + 1] as usize]
    }
    pub fn iter(&self) -> impl Iterator<Item = &[u32]> + '_ {
        (0..self.len()).map(|g| self.group(g))
    }
}

fn row_hash(v: &[f32]) -> u64 {
    v.iter()
        .fold(0x7673_6167, |h, x| mix(h ^ x.to_bits() as u64))
}

/// Groups the rows of `vectors` (`n × dim`) that are bitwise identical, each group at
/// most `max_per_group` rows (larger sets are split in row order). Deterministic.
pub fn group_identical(vectors: &[f32], dim: usize, max_per_group: usize) -> Groups {
    assert!(
        dim > 0 && vectors.len().is_multiple_of(dim),
        "vectors must be n × dim"
    );
    let max = max_per_group.max(1);
    let n = vectors.len() / dim;
    let row = |i: u32| &vectors[i as usize * dim..(i as usize + 1) * dim];
    let same = |a: u32, b: u32| {
        row(a)
            .iter()
            .zip(row(b))
            .all(|(x, y)| x.to_bits() == y.to_bits())
    };
    let keys: Vec<u64> = (0..n as u32)
        .into_par_iter()
        .map(|i| row_hash(row(i)))
        .collect();
    group_by_key(&keys, same, max)
}

/// A row's hash as [`group_identical`] computes it: keep it per row when the vectors
/// themselves are not kept (a build over codes), for [`group_by_key`].
pub fn vector_hash(v: &[f32]) -> u64 {
    row_hash(v)
}

/// Groups rows `0..keys.len()` with equal `keys[i]` for which `same(a, b)` holds (the
/// caller's check against hash collisions), as [`group_identical`] does.
pub fn group_by_key(keys: &[u64], same: impl Fn(u32, u32) -> bool, max_per_group: usize) -> Groups {
    let max = max_per_group.max(1);
    let n = keys.len();
    assert!(n <= u32::MAX as usize, "too many rows");
    let mut keys: Vec<(u64, u32)> = keys
        .iter()
        .enumerate()
        .map(|(i, &k)| (k, i as u32))
        .collect();
    keys.par_sort_unstable();
    // (first row, offset into `flat`, length) per group; `flat` holds the rows.
    let mut groups: Vec<(u32, u32, u32)> = Vec::with_capacity(n);
    let mut flat: Vec<u32> = Vec::with_capacity(n);
    let mut class: Vec<Vec<u32>> = Vec::new();
    for run in keys.chunk_by(|a, b| a.0 == b.0) {
        // Rows of one hash, ascending: split into classes of equal vectors (a true hash
        // collision is rare, so the linear scan over classes is short).
        class.clear();
        for &(_, r) in run {
            match class.iter_mut().find(|c| same(c[0], r)) {
                Some(c) => c.push(r),
                None => class.push(vec![r]),
            }
        }
        for c in &class {
            for chunk in c.chunks(max) {
                groups.push((chunk[0], flat.len() as u32, chunk.len() as u32));
                flat.extend_from_slice(chunk);
            }
        }
    }
    groups.par_sort_unstable_by_key(|g| g.0);
    let mut out = Groups {
        rows: Vec::with_capacity(n),
        starts: Vec::with_capacity(groups.len() + 1),
    };
    out.starts.push(0);
    for &(_, off, len) in &groups {
        out.rows
            .extend_from_slice(&flat[off as usize..(off + len) as usize]);
        out.starts.push(out.rows.len() as u32);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_identical_rows_in_chunks() {
        let dim = 3;
        // Rows: 0=a 1=b 2=a 3=c 4=a 5=b 6=a 7=-0.0 variant of c (bitwise different).
        let (a, b, c, c2) = (
            [1.0f32, 2.0, 3.0],
            [0.5; 3],
            [0.0f32; 3],
            [-0.0f32, 0.0, 0.0],
        );
        let rows = [a, b, a, c, a, b, a, c2];
        let data: Vec<f32> = rows.iter().flatten().copied().collect();
        let g = group_identical(&data, dim, 3);
        let got: Vec<Vec<u32>> = g.iter().map(|x| x.to_vec()).collect();
        assert_eq!(
            got,
            vec![vec![0, 2, 4], vec![1, 5], vec![3], vec![6], vec![7]]
        );
        // Without duplicates: identity.
        let uniq: Vec<f32> = (0..50).map(|i| i as f32).collect();
        let g = group_identical(&uniq, 5, 10);
        assert_eq!(g.len(), 10);
        assert!(g.iter().enumerate().all(|(i, x)| x == [i as u32]));
        assert!(group_identical(&[], 4, 10).is_empty());
        // Many copies: chunks of max, every row exactly once, first rows increasing.
        let many = vec![0.25f32; 2 * 95];
        let g = group_identical(&many, 2, 10);
        assert_eq!(g.len(), 10);
        let mut all: Vec<u32> = g.iter().flatten().copied().collect();
        assert!(g.iter().all(|x| x.len() <= 10));
        assert!(g.iter().zip(g.iter().skip(1)).all(|(x, y)| x[0] < y[0]));
        all.sort_unstable();
        assert_eq!(all, (0..95).collect::<Vec<u32>>());
    }
}
