//! Visited set for graph searches: open addressing over u64 ids with generation stamps, so
//! clearing between searches is O(1) and a search touching a few thousand nodes never pays
//! for a bitmap over the whole index (ids are opaque u64 TIDs in Postgres).

pub struct VisitedSet {
    /// (key, stamp) side by side: a probe touches one cache line, not two.
    slots: Vec<(u64, u32)>,
    stamp: u32,
    len: usize,
    shift: u32,
}

impl Default for VisitedSet {
    fn default() -> Self {
        Self::with_capacity(256)
    }
}

impl VisitedSet {
    pub fn with_capacity(n: usize) -> Self {
        let slots = (n.max(16) * 2).next_power_of_two();
        VisitedSet {
            slots: vec![(0, 0); slots],
            stamp: 1,
            len: 0,
            shift: 64 - slots.trailing_zeros(),
        }
    }

    /// Slots allocated.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.len = 0;
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            // Wrapped: old stamps could alias the new one.
            self.slots.fill((0, 0));
            self.stamp = 1;
        }
    }

    #[inline]
    fn slot(&self, k: u64) -> usize {
        (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// Inserts `k`; true if it was not present.
    #[inline]
    pub fn insert(&mut self, k: u64) -> bool {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = self.slot(k);
        loop {
            let s = &mut self.slots[i];
            if s.1 != self.stamp {
                *s = (k, self.stamp);
                self.len += 1;
                return true;
            }
            if s.0 == k {
                return false;
            }
            i = (i + 1) & mask;
        }
    }

    pub fn contains(&self, k: u64) -> bool {
        let mask = self.slots.len() - 1;
        let mut i = self.slot(k);
        while self.slots[i].1 == self.stamp {
            if self.slots[i].0 == k {
                return true;
            }
            i = (i + 1) & mask;
        }
        false
    }

    fn grow(&mut self) {
        let live: Vec<u64> = self.slots.iter().filter(|s| s.1 == self.stamp).map(|s| s.0).collect();
        *self = Self::with_capacity(self.slots.len());
        for k in live {
            self.insert(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn insert_contains_clear_grow() {
        let mut s = VisitedSet::with_capacity(4);
        for round in 0..3u64 {
            for k in 0..1000u64 {
                assert!(s.insert(k * 65536 + round));
                assert!(!s.insert(k * 65536 + round));
            }
            assert_eq!(s.len(), 1000);
            assert!(s.contains(999 * 65536 + round));
            assert!(!s.contains(round + 1));
            s.clear();
            assert!(!s.contains(round) && s.is_empty());
        }
        s.stamp = u32::MAX;
        s.insert(5);
        s.clear();
        assert!(!s.contains(5));
    }
}
