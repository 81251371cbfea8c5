//! The precomputed SLB words of one address space: ESID → the two
//! `slbmte` operands, in a table a segment-miss handler written in
//! assembly can search in a few instructions, without the Rust fault path.
//!
//! Every [`crate::adspace::AddressSpace`] keeps one, changed with its
//! mappings (insert, remove), so it always says what the full path
//! ([`crate::vm::Vmm`]'s `resolve_segment`, from the [`crate::adspace::SegmentMapping`])
//! would load. The [`crate::vm::Vmm`] publishes where the tables of the
//! kernel and of the running process are in the SLB manager's per-processor
//! area ([`crate::slb::fast`]), where the fast path finds them.
//!
//! # Layout
//!
//! An open-addressed hash table of `2^k` entries (`k` ≥ 3, or the one-entry
//! [`SlbTable::raw`] of a table that never held anything), at most half
//! full, with linear probing. An entry is two doublewords ([`SlbWords`], `#[repr(C)]`, 16
//! bytes, the machine's byte order):
//!
//! | offset | word | contents |
//! | --- | --- | --- |
//! | 0 | `key` | `ESID << 28 \| V`: the `slbmte` RB without the index (0: a free entry) |
//! | 8 | `rs` | the `slbmte` RS: `B \| VSID << 12 \| Ks \| Kp \| N \| L \| LP` |
//!
//! The search for the key `ESID << 28 | V` of a missing address starts at
//! entry `(key × HASH_K) >> (64 − k)` (the top `k` bits of the product,
//! Fibonacci hashing, so runs of consecutive ESIDs spread over the table)
//! and steps to the next entry, wrapping with `mask = 2^k − 1`, until it
//! finds the key (load `rs`, RB = key | index) or a free entry (not mapped:
//! the full path decides). In instructions, with the published
//! [`TableRef`] (`base`, `shift` = 64 − k, `mask_bytes` = 16 × mask):
//!
//! ```text
//! h   = ((key * HASH_K) >> shift) << 4          mulld, srd, sldi
//! loop: w = *(base + h); if w == key: hit       ldx, cmpd, beq
//!       if w == 0: miss; h = (h + 16) & mask_bytes
//! ```
//!
//! Removal moves the later entries of the probe run back into the hole
//! (no tombstones), so a free entry always ends a search, and the table
//! halves below one eighth full, so a large region freed gives its memory
//! back (down to 8 entries: a space that maps and unmaps one segment over
//! and over does not allocate each time). Every entry is a 256 MB segment of class 0: the fast path builds
//! the `slbie` operand of an entry it loaded as `key` without V.
//!
//! # Readers on other processors
//!
//! On SMP the fast path of a processor running the space searches the
//! table without the manager's lock while another processor may change
//! it. The table is changed so that such a search finds either a whole
//! entry (old or new) or none (then it takes the full path, which is
//! always right):
//!
//! * an entry is written key-last: its `key` is cleared, `rs` written, and
//!   the new `key` written after a store barrier (`lwsync`); an entry is
//!   removed by clearing its `key`;
//! * a reader that found its key reads `rs` and then the key again, with
//!   load barriers between; a different key means the entry changed under
//!   it, and it searches again or takes the full path;
//! * a table that grows or shrinks is built whole in new storage; the old
//!   storage stays, unchanged, until every processor running the space was
//!   pointed at the new one ([`SlbTable::release_retired`], which the
//!   manager calls once its shootdown returned), so a search that started
//!   in it reads valid memory.

use alloc::vec::Vec;
use core::sync::atomic::{fence, AtomicU64, Ordering};

use arch_ppc64::addr::Esid;
use arch_ppc64::structures::slb::{esid_word, vsid_word, SlbEntry};
use arch_ppc64::structures::SegmentSize;

/// The multiplier of the hash: 2^64 divided by the golden ratio, odd.
pub const HASH_K: u64 = 0x9E37_79B9_7F4A_7C15;

/// Smallest allocated table, in entries.
const MIN_CAPACITY: usize = 8;

/// One entry of a [`SlbTable`]: the `slbmte` operands of a segment.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SlbWords {
    /// `ESID << 28 | V` (the ESID word without index); 0 for a free entry.
    pub key: u64,
    /// The VSID word (`slbmte` RS).
    pub rs: u64,
}

impl SlbWords {
    /// The words of a valid, 256 MB, class-0 entry (its index is ignored);
    /// `None` for any other.
    pub fn of(entry: SlbEntry) -> Option<SlbWords> {
        let ok = entry.is_valid()
            && entry.segment_size() == Some(SegmentSize::M256)
            && entry.vsid_word & vsid_word::C == 0;
        ok.then_some(SlbWords {
            key: entry.esid_word & (esid_word::ESID | esid_word::V),
            rs: entry.vsid_word,
        })
    }

    /// The entry these words load, with index 0.
    pub fn entry(self) -> SlbEntry {
        SlbEntry {
            esid_word: self.key,
            vsid_word: self.rs,
        }
    }
}

/// The search key of `esid`: `ESID << 28 | V`.
pub const fn key_of(esid: Esid) -> u64 {
    (esid.as_u64() << esid_word::ESID_SHIFT) | esid_word::V
}

/// Where a table is, as the fast path reads it (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableRef {
    /// Address of entry 0.
    pub base: u64,
    /// `64 − k` for `2^k` entries (64 for the one-entry empty table: a
    /// shift by 64 gives 0).
    pub shift: u64,
    /// `16 × (2^k − 1)`: wraps a byte offset into the table.
    pub mask_bytes: u64,
}

/// What an empty table publishes: one free entry.
static EMPTY: [SlbWords; 1] = [SlbWords { key: 0, rs: 0 }];

impl TableRef {
    /// A table with nothing in it: every search misses.
    pub fn empty() -> TableRef {
        TableRef {
            base: EMPTY.as_ptr() as u64,
            shift: 64,
            mask_bytes: 0,
        }
    }
}

/// One entry as it sits in memory: [`SlbWords`] in words other
/// processors may read while it changes (see the module docs).
#[repr(C)]
#[derive(Debug, Default)]
struct Slot {
    key: AtomicU64,
    rs: AtomicU64,
}

const _: () = assert!(core::mem::size_of::<Slot>() == core::mem::size_of::<SlbWords>());

impl Slot {
    fn key(&self) -> u64 {
        self.key.load(Ordering::Relaxed)
    }

    fn words(&self) -> SlbWords {
        SlbWords {
            key: self.key.load(Ordering::Relaxed),
            rs: self.rs.load(Ordering::Relaxed),
        }
    }

    /// Writes `w` key-last, so a concurrent reader sees the old entry,
    /// no entry, or the new one.
    fn write(&self, w: SlbWords) {
        if self.key() != 0 {
            self.key.store(0, Ordering::Relaxed);
            fence(Ordering::Release);
        }
        self.rs.store(w.rs, Ordering::Relaxed);
        fence(Ordering::Release);
        self.key.store(w.key, Ordering::Relaxed);
    }

    fn clear(&self) {
        self.key.store(0, Ordering::Relaxed);
    }
}

fn storage(capacity: usize) -> Vec<Slot> {
    (0..capacity).map(|_| Slot::default()).collect()
}

/// The precomputed SLB words of one address space (see the module docs).
#[derive(Debug, Default)]
pub struct SlbTable {
    /// `2^k` entries, or none before the first insert.
    entries: Vec<Slot>,
    len: usize,
    /// Storage replaced by a resize that a reader may still be searching.
    retired: Vec<Vec<Slot>>,
}

impl Clone for SlbTable {
    /// The same entries in storage of its own (nothing retired).
    fn clone(&self) -> Self {
        SlbTable {
            entries: self
                .entries
                .iter()
                .map(|e| {
                    let w = e.words();
                    Slot {
                        key: AtomicU64::new(w.key),
                        rs: AtomicU64::new(w.rs),
                    }
                })
                .collect(),
            len: self.len,
            retired: Vec::new(),
        }
    }
}

/// Searches the table published as `table` for `esid` the way a fast path
/// on another processor does (see "Readers on other processors" in the
/// module docs): the key, then `rs`, then the key again; an entry that
/// changed under the search is searched for again.
///
/// # Safety
///
/// `table` must be what [`SlbTable::raw`] returned for a table whose
/// storage at that place has not been freed: the table was not dropped,
/// and [`SlbTable::release_retired`] was not called since it moved.
pub unsafe fn search(table: TableRef, esid: Esid) -> Option<SlbWords> {
    let key = key_of(esid);
    let slot = |off: u64| {
        // SAFETY: `off` is within the table's entries (masked by
        // `mask_bytes`), which the caller guarantees are allocated; the
        // words are atomics, so reading them while another processor
        // writes them is defined.
        unsafe { &*((table.base + off) as *const Slot) }
    };
    'search: loop {
        let mut off = (home(key, table.shift) as u64) * core::mem::size_of::<Slot>() as u64;
        loop {
            let s = slot(off);
            let k = s.key.load(Ordering::Acquire);
            if k == key {
                let rs = s.rs.load(Ordering::Acquire);
                if s.key.load(Ordering::Relaxed) != key {
                    continue 'search;
                }
                return Some(SlbWords { key, rs });
            }
            if k == 0 {
                return None;
            }
            off = (off + core::mem::size_of::<Slot>() as u64) & table.mask_bytes;
        }
    }
}

/// The first entry searched for `key` in a table of `2^k` entries
/// (`shift` = 64 − k).
pub const fn home(key: u64, shift: u64) -> usize {
    match key.wrapping_mul(HASH_K).checked_shr(shift as u32) {
        Some(h) => h as usize,
        None => 0,
    }
}

impl SlbTable {
    /// An empty table (allocates nothing).
    pub const fn new() -> Self {
        SlbTable {
            entries: Vec::new(),
            len: 0,
            retired: Vec::new(),
        }
    }

    /// Number of segments in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of entries allocated (0 or a power of two).
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    fn shift(&self) -> u64 {
        64 - u64::from(self.entries.len().trailing_zeros())
    }

    fn mask(&self) -> usize {
        self.entries.len() - 1
    }

    /// Where the table is, for the fast path. Valid until the next
    /// [`SlbTable::insert`] or [`SlbTable::remove`], which may move it
    /// (the old place stays readable until [`SlbTable::release_retired`]).
    pub fn raw(&self) -> TableRef {
        if self.entries.is_empty() {
            return TableRef::empty();
        }
        TableRef {
            base: self.entries.as_ptr() as u64,
            shift: self.shift(),
            mask_bytes: (self.mask() * core::mem::size_of::<SlbWords>()) as u64,
        }
    }

    /// The entries the fast path reads at [`SlbTable::raw`]'s base.
    #[cfg(test)]
    pub(crate) fn raw_entries(&self) -> Vec<SlbWords> {
        if self.entries.is_empty() {
            EMPTY.to_vec()
        } else {
            self.entries.iter().map(Slot::words).collect()
        }
    }

    /// Number of storages a resize replaced that are still kept for
    /// readers (see the module docs).
    pub fn retired(&self) -> usize {
        self.retired.len()
    }

    /// Frees the storage earlier resizes replaced: call once every
    /// processor that may search this table was pointed at its new place.
    pub fn release_retired(&mut self) {
        self.retired.clear();
    }

    /// The words for `esid`, searched as the fast path searches.
    pub fn get(&self, esid: Esid) -> Option<SlbWords> {
        self.find(key_of(esid)).map(|i| self.entries[i].words())
    }

    /// The index holding `key`, by the probe of the module docs.
    fn find(&self, key: u64) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        let mask = self.mask();
        let mut i = home(key, self.shift());
        loop {
            match self.entries[i].key() {
                k if k == key => return Some(i),
                0 => return None,
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Enters (or replaces) the words of `entry`. Returns `false`, and
    /// changes nothing, for an entry the fast path cannot load as it is
    /// (invalid, not 256 MB, or class 1).
    pub fn insert(&mut self, entry: SlbEntry) -> bool {
        let Some(w) = SlbWords::of(entry) else {
            return false;
        };
        if let Some(i) = self.find(w.key) {
            self.entries[i].write(w);
            return true;
        }
        if (self.len + 1) * 2 > self.entries.len() {
            self.rehash((self.entries.len() * 2).max(MIN_CAPACITY));
        }
        self.place(w);
        self.len += 1;
        true
    }

    /// Puts `w` (not present) in the first free entry of its probe run.
    fn place(&mut self, w: SlbWords) {
        let mask = self.mask();
        let mut i = home(w.key, self.shift());
        while self.entries[i].key() != 0 {
            i = (i + 1) & mask;
        }
        self.entries[i].write(w);
    }

    /// Removes the words of `esid`; returns them.
    pub fn remove(&mut self, esid: Esid) -> Option<SlbWords> {
        let mut hole = self.find(key_of(esid))?;
        let old = self.entries[hole].words();
        self.entries[hole].clear();
        self.len -= 1;
        // Move back every later entry of the run that the hole now cuts
        // off from its home: one whose home is not cyclically in
        // (hole, j].
        let mask = self.mask();
        let shift = self.shift();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let w = self.entries[j].words();
            if w.key == 0 {
                break;
            }
            let h = home(w.key, shift);
            if (j.wrapping_sub(h) & mask) >= (j.wrapping_sub(hole) & mask) {
                // A reader may miss `w` between the two stores (and take
                // the full path); it never sees a mixed entry.
                self.entries[hole].write(w);
                self.entries[j].clear();
                hole = j;
            }
        }
        // Keep the smallest table once there was one: a space that maps
        // and unmaps one segment over and over (vm_guatt, vm_gudet) does
        // not allocate each time.
        if self.len * 8 < self.entries.len() && self.entries.len() > MIN_CAPACITY {
            self.rehash(self.entries.len() / 2);
        }
        Some(old)
    }

    fn rehash(&mut self, capacity: usize) {
        let old = core::mem::replace(&mut self.entries, storage(capacity));
        for w in old.iter().map(Slot::words).filter(|w| w.key != 0) {
            self.place(w);
        }
        // The new storage is complete before anyone is pointed at it.
        fence(Ordering::Release);
        if !old.is_empty() {
            self.retired.push(old);
        }
    }

    /// Every entry, in table order.
    pub fn iter(&self) -> impl Iterator<Item = SlbWords> + '_ {
        self.entries.iter().map(Slot::words).filter(|w| w.key != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arch_ppc64::addr::Vsid;
    use arch_ppc64::structures::slb::SlbFlags;
    use arch_ppc64::structures::PageSize;

    fn entry(esid: u64) -> SlbEntry {
        SlbEntry::new(
            Esid::new(esid),
            Vsid::new(esid * 7 + 1),
            SegmentSize::M256,
            PageSize::K4,
            SlbFlags::KP,
        )
        .unwrap()
    }

    /// The search the assembly makes, on the published words alone.
    fn search_like_the_fast_path(t: &TableRef, entries: &[SlbWords], esid: Esid) -> Option<u64> {
        let key = key_of(esid);
        let size = core::mem::size_of::<SlbWords>() as u64;
        let mut off = (home(key, t.shift) as u64) * size;
        loop {
            let w = entries[(off / size) as usize];
            if w.key == key {
                return Some(w.rs);
            }
            if w.key == 0 {
                return None;
            }
            off = (off + size) & t.mask_bytes;
        }
    }

    fn published(t: &SlbTable) -> (TableRef, Vec<SlbWords>) {
        let r = t.raw();
        if t.capacity() > 0 {
            assert_eq!(r.base, t.entries.as_ptr() as u64);
        }
        (r, t.raw_entries())
    }

    #[test]
    fn random_inserts_and_removes_keep_every_esid_findable() {
        let mut t = SlbTable::new();
        let mut model = alloc::collections::BTreeMap::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Clustered ESIDs (consecutive runs), ones that differ only in
            // high bits, and the top of the address space.
            let esid = match x % 3 {
                0 => 0x100 + (x >> 8) % 64,
                1 => ((x >> 8) % 16) << 30,
                _ => (1 << 36) - 1 - (x >> 8) % 8,
            };
            if (x >> 40).is_multiple_of(3) {
                assert_eq!(
                    t.remove(Esid::new(esid)).map(|w| w.rs),
                    model.remove(&esid).map(|e: SlbEntry| e.vsid_word),
                    "step {step}"
                );
            } else {
                let e = entry(esid);
                assert!(t.insert(e));
                model.insert(esid, e);
            }
            assert_eq!(t.len(), model.len());
            let cap = t.capacity();
            assert!(cap == 0 || (cap.is_power_of_two() && cap >= 2 * t.len()));
            let (r, entries) = published(&t);
            for (&esid, e) in &model {
                let want = SlbWords::of(*e).unwrap();
                assert_eq!(t.get(Esid::new(esid)), Some(want), "step {step}");
                assert_eq!(
                    search_like_the_fast_path(&r, &entries, Esid::new(esid)),
                    Some(want.rs)
                );
            }
            for absent in [0x99, 0x100 + 64, 17 << 30] {
                if !model.contains_key(&absent) {
                    assert_eq!(t.get(Esid::new(absent)), None);
                    assert_eq!(
                        search_like_the_fast_path(&r, &entries, Esid::new(absent)),
                        None
                    );
                }
            }
        }
    }

    #[test]
    fn an_empty_table_publishes_one_free_entry_and_a_miss() {
        let mut t = SlbTable::new();
        let r = t.raw();
        assert_eq!((r.shift, r.mask_bytes), (64, 0));
        assert_eq!(search_like_the_fast_path(&r, &EMPTY, Esid::new(5)), None);
        assert!(t.insert(entry(5)));
        assert_eq!(t.capacity(), MIN_CAPACITY);
        assert_eq!(t.raw().shift, 61);
        assert_eq!(t.raw().mask_bytes, 7 * 16);
        assert_eq!(
            t.remove(Esid::new(5)).map(|w| w.key),
            Some(key_of(Esid::new(5)))
        );
        assert_eq!(t.capacity(), MIN_CAPACITY, "the smallest table stays");
        assert_eq!(t.remove(Esid::new(5)), None);
        let r = t.raw();
        assert_eq!(
            search_like_the_fast_path(&r, &t.raw_entries(), Esid::new(5)),
            None
        );
    }

    #[test]
    fn a_large_region_grows_the_table_and_gives_it_back() {
        let mut t = SlbTable::new();
        let base = 0xF_1000_0000;
        for i in 0..4096 {
            assert!(t.insert(entry(base + i)));
        }
        assert_eq!(t.capacity(), 8192);
        for i in 0..4096 {
            assert_eq!(
                t.get(Esid::new(base + i)).unwrap().rs,
                entry(base + i).vsid_word
            );
        }
        for i in 0..4090 {
            t.remove(Esid::new(base + i)).unwrap();
        }
        assert_eq!(t.len(), 6);
        assert!(t.capacity() <= 64, "shrunk to {}", t.capacity());
        for i in 4090..4096 {
            assert!(t.get(Esid::new(base + i)).is_some());
        }
    }

    #[test]
    fn a_resize_keeps_the_old_storage_readable_until_released() {
        let mut t = SlbTable::new();
        for i in 1..=4 {
            assert!(t.insert(entry(i)));
        }
        // The first insert replaced no storage (there was none).
        assert_eq!(t.retired(), 0);
        t.release_retired();
        let before = t.raw();
        // The fifth entry grows the table (at most half full).
        assert!(t.insert(entry(5)));
        let after = t.raw();
        assert_ne!(before.base, after.base);
        assert_eq!(t.retired(), 1);
        for i in 1..=4 {
            // SAFETY: `before` is the retired storage, not yet released.
            let old = unsafe { search(before, Esid::new(i)) };
            assert_eq!(old, SlbWords::of(entry(i)));
            // SAFETY: `after` is the live storage.
            let new = unsafe { search(after, Esid::new(i)) };
            assert_eq!(new, SlbWords::of(entry(i)));
        }
        // SAFETY: as above.
        let (old5, new5) = unsafe { (search(before, Esid::new(5)), search(after, Esid::new(5))) };
        assert_eq!(old5, None);
        assert_eq!(new5, SlbWords::of(entry(5)));
        t.release_retired();
        assert_eq!(t.retired(), 0);
        // A table copied for fork retires nothing.
        assert_eq!(t.clone().retired(), 0);
        assert_eq!(t.clone().get(Esid::new(3)), SlbWords::of(entry(3)));
    }

    #[test]
    fn entries_the_fast_path_cannot_load_are_refused() {
        let mut t = SlbTable::new();
        assert!(!t.insert(SlbEntry::INVALID));
        let big = SlbEntry::new(
            Esid::new(0x1000),
            Vsid::new(3),
            SegmentSize::T1,
            PageSize::K4,
            SlbFlags::KP,
        )
        .unwrap();
        assert!(!t.insert(big));
        let class1 = SlbEntry::new(
            Esid::new(7),
            Vsid::new(3),
            SegmentSize::M256,
            PageSize::K4,
            SlbFlags::C,
        )
        .unwrap();
        assert!(!t.insert(class1));
        assert!(t.is_empty() && t.capacity() == 0);
        // Replacing keeps one entry.
        assert!(t.insert(entry(7)));
        let other = SlbEntry::new(
            Esid::new(7),
            Vsid::new(99),
            SegmentSize::M256,
            PageSize::K4,
            SlbFlags::KS,
        )
        .unwrap();
        assert!(t.insert(other));
        assert_eq!(t.len(), 1);
        assert_eq!(t.get(Esid::new(7)).unwrap().rs, other.vsid_word);
        assert_eq!(t.get(Esid::new(7)).unwrap().entry().esid(), Esid::new(7));
    }
}
