//! [`SidMap`]: the segment table's index from SID to record, an
//! open-addressing hash table with linear probing, so finding a segment
//! on the fault path is a multiply, a shift and (nearly always) one
//! comparison instead of a B-tree descent.
//!
//! SIDs come from sequential ranges, so they are spread with Fibonacci
//! hashing (the multiplier is 2^64 divided by the golden ratio). Removal
//! shifts later members of the probe run back instead of leaving
//! tombstones, so lookups never get slower as segments come and go.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::sid::Sid;

/// Smallest table once anything is stored.
const MIN_CAPACITY: usize = 16;

/// A map from [`Sid`] to boxed values (boxed so the table stays small
/// however large a value, and growing it moves only pointers).
#[derive(Clone, Debug)]
pub struct SidMap<V> {
    slots: Vec<Option<(Sid, Box<V>)>>,
    len: usize,
    /// 64 − log2(capacity): the hash keeps the top bits of the product.
    shift: u32,
}

/// The allocator could not grow the table; nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapFull;

impl<V> Default for SidMap<V> {
    fn default() -> Self {
        SidMap {
            slots: Vec::new(),
            len: 0,
            shift: 64,
        }
    }
}

impl<V> SidMap<V> {
    /// Number of members.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// Where the probe for `sid` starts (the table is not empty).
    #[inline(always)]
    fn home(&self, sid: Sid) -> usize {
        (sid.as_u64().wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }

    /// The slot holding `sid`, if any.
    #[inline(always)]
    fn find(&self, sid: Sid) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.mask();
        let mut i = self.home(sid);
        loop {
            match &self.slots[i] {
                Some((s, _)) if *s == sid => return Some(i),
                Some(_) => i = (i + 1) & mask,
                None => return None,
            }
        }
    }

    /// The value of `sid`.
    #[inline]
    pub fn get(&self, sid: Sid) -> Option<&V> {
        let i = self.find(sid)?;
        self.slots[i].as_ref().map(|(_, v)| &**v)
    }

    /// The value of `sid`, mutably.
    #[inline]
    pub fn get_mut(&mut self, sid: Sid) -> Option<&mut V> {
        let i = self.find(sid)?;
        self.slots[i].as_mut().map(|(_, v)| &mut **v)
    }

    /// Where `sid` is, for [`SidMap::at`] and [`SidMap::pair_at_mut`]
    /// (valid until the map changes).
    #[inline(always)]
    pub fn index_of(&self, sid: Sid) -> Option<usize> {
        self.find(sid)
    }

    /// The value at `index` (from [`SidMap::index_of`]).
    #[inline(always)]
    pub fn at(&self, index: usize) -> &V {
        &self.slots[index].as_ref().expect("an index of a member").1
    }

    /// The values at two different indexes at once, mutably.
    #[inline(always)]
    pub fn pair_at_mut(&mut self, i: usize, j: usize) -> (&mut V, &mut V) {
        assert_ne!(i, j, "two different members");
        let (left, right) = self.slots.split_at_mut(i.max(j));
        let low = &mut *left[i.min(j)].as_mut().expect("a member").1;
        let high = &mut *right[0].as_mut().expect("a member").1;
        if i < j {
            (low, high)
        } else {
            (high, low)
        }
    }

    /// The value at `index`, mutably.
    #[inline(always)]
    pub fn at_mut(&mut self, index: usize) -> &mut V {
        &mut self.slots[index].as_mut().expect("an index of a member").1
    }

    /// Whether `sid` is a member.
    pub fn contains(&self, sid: Sid) -> bool {
        self.find(sid).is_some()
    }

    /// Adds `sid` (which must not be a member) with `value`.
    pub fn insert(&mut self, sid: Sid, value: V) -> Result<(), MapFull> {
        debug_assert!(!self.contains(sid), "{sid:?} inserted twice");
        // At most five eighths full, so probe runs stay short.
        if (self.len + 1) * 8 > self.slots.len() * 5 {
            self.grow()?;
        }
        let value = Box::new(value);
        self.place(sid, value);
        self.len += 1;
        Ok(())
    }

    fn place(&mut self, sid: Sid, value: Box<V>) {
        let mask = self.mask();
        let mut i = self.home(sid);
        while self.slots[i].is_some() {
            i = (i + 1) & mask;
        }
        self.slots[i] = Some((sid, value));
    }

    fn grow(&mut self) -> Result<(), MapFull> {
        self.rehash((self.slots.len() * 2).max(MIN_CAPACITY))
    }

    /// Moves every member into a table of `capacity` slots (a power of
    /// two with room for them all).
    fn rehash(&mut self, capacity: usize) -> Result<(), MapFull> {
        let mut fresh = Vec::new();
        fresh.try_reserve_exact(capacity).map_err(|_| MapFull)?;
        fresh.resize_with(capacity, || None);
        let old = core::mem::replace(&mut self.slots, fresh);
        self.shift = 64 - capacity.trailing_zeros();
        for (sid, value) in old.into_iter().flatten() {
            self.place(sid, value);
        }
        Ok(())
    }

    /// Removes `sid`, returning its value.
    pub fn remove(&mut self, sid: Sid) -> Option<V> {
        let mut hole = self.find(sid)?;
        let (_, value) = self.slots[hole].take().expect("found");
        self.len -= 1;
        // Close the gap: a later member of the run moves into the hole if
        // the hole lies between its home and where it sits now.
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let Some((s, _)) = &self.slots[j] else { break };
            let home = self.home(*s);
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.slots[hole] = self.slots[j].take();
                hole = j;
            }
        }
        // Give memory back once the table is mostly empty (an eighth full,
        // well below the five eighths that grow it, so a size near either
        // edge does not flip back and forth). Without room for the
        // smaller table the larger one simply stays.
        if self.slots.len() > MIN_CAPACITY && self.len * 8 < self.slots.len() {
            let _ = self.rehash(self.slots.len() / 2);
        }
        Some(*value)
    }

    /// Every member, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (Sid, &V)> {
        self.slots.iter().flatten().map(|(s, v)| (*s, &**v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;

    /// A small deterministic generator (xorshift) for the operation mix.
    fn next(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    #[test]
    fn agrees_with_a_btreemap_through_inserts_and_removes() {
        let mut m = SidMap::default();
        let mut model = BTreeMap::new();
        let mut x = 0x1234_5678_9abc_def0u64;
        // SIDs from a small range, so runs collide and removals shift.
        for step in 0..20_000u64 {
            let sid = Sid::new(1 + next(&mut x) % 300);
            if next(&mut x).is_multiple_of(3) {
                assert_eq!(m.remove(sid), model.remove(&sid), "step {step}");
                continue;
            }
            match model.entry(sid) {
                alloc::collections::btree_map::Entry::Vacant(e) => {
                    m.insert(sid, step).unwrap();
                    e.insert(step);
                }
                alloc::collections::btree_map::Entry::Occupied(mut e) => {
                    *m.get_mut(sid).unwrap() += 1;
                    *e.get_mut() += 1;
                }
            }
            assert_eq!(m.len(), model.len());
        }
        for s in 1..=300 {
            let sid = Sid::new(s);
            assert_eq!(m.get(sid), model.get(&sid), "sid {s}");
        }
        let mut all: Vec<(Sid, u64)> = m.iter().map(|(s, v)| (s, *v)).collect();
        all.sort();
        assert_eq!(all, model.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn indexes_reach_members_one_or_two_at_a_time() {
        let mut m = SidMap::default();
        for s in 1..40 {
            m.insert(Sid::new(s), s).unwrap();
        }
        let (i, j) = (
            m.index_of(Sid::new(3)).unwrap(),
            m.index_of(Sid::new(30)).unwrap(),
        );
        assert_eq!((*m.at(i), *m.at(j)), (3, 30));
        let (a, b) = m.pair_at_mut(i, j);
        (*a, *b) = (*b, *a);
        assert_eq!(m.get(Sid::new(3)), Some(&30));
        assert_eq!(m.get(Sid::new(30)), Some(&3));
        let (a, b) = m.pair_at_mut(j, i);
        assert_eq!((*a, *b), (3, 30), "in the order asked");
        *m.at_mut(i) = 7;
        assert_eq!(m.get(Sid::new(3)), Some(&7));
        assert!(m.index_of(Sid::new(99)).is_none());
    }

    #[test]
    fn empty_map_allocates_nothing_and_finds_nothing() {
        let mut m: SidMap<u8> = SidMap::default();
        assert!(m.get(Sid::new(1)).is_none());
        assert!(m.remove(Sid::new(1)).is_none());
        assert_eq!(m.slots.capacity(), 0);
        m.insert(Sid::new(1), 7).unwrap();
        assert_eq!(m.slots.len(), MIN_CAPACITY);
        assert_eq!(m.remove(Sid::new(1)), Some(7));
        assert!(m.is_empty());
    }

    #[test]
    fn the_table_shrinks_back_as_members_go() {
        let mut m = SidMap::default();
        for s in 1..=2048u64 {
            m.insert(Sid::new(s), s).unwrap();
        }
        let big = m.slots.len();
        assert!(big >= 4096);
        for s in 3..=2048u64 {
            assert_eq!(m.remove(Sid::new(s)), Some(s));
        }
        assert_eq!(m.slots.len(), MIN_CAPACITY, "shrunk back");
        assert_eq!(
            (m.get(Sid::new(1)), m.get(Sid::new(2))),
            (Some(&1), Some(&2))
        );
    }

    #[test]
    fn sequential_sids_stay_findable_across_growth() {
        let mut m = SidMap::default();
        let base = 1 << 20;
        for i in 0..5000u64 {
            m.insert(Sid::new(base + i), i).unwrap();
        }
        assert!(m.slots.len() * 5 >= m.len() * 8);
        for i in (0..5000u64).step_by(2) {
            assert_eq!(m.remove(Sid::new(base + i)), Some(i));
        }
        for i in 0..5000u64 {
            let want = (i % 2 == 1).then_some(i);
            assert_eq!(m.get(Sid::new(base + i)).copied(), want, "sid {i}");
        }
    }
}
