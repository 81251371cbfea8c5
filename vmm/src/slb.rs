//! SLB management: which segment translations the processor holds.
//!
//! The SLB has `ibm,slb-size` entries (32 on POWER7–10). As Linux does
//! (`SLB_NUM_BOLTED`), the low indexes `0..bolted` hold the kernel's bolted
//! segments, which survive an address-space switch; every other entry is
//! loaded on demand when a segment interrupt (0x380/0x480) finds no entry,
//! into a free index or else the next one in round-robin order over the
//! non-bolted indexes (Linux `alloc_slb_index`, `stab_rr`).
//!
//! The manager keeps a shadow of what it loaded, so it knows which ESIDs
//! are present (two entries for one ESID are undefined, Power ISA Book III-S "Segment Lookaside Buffer") and
//! which entry a detach must invalidate. All segments are 256 MB with 4 KiB
//! base pages.

use alloc::vec;
use alloc::vec::Vec;

use arch_ppc64::addr::Esid;
use arch_ppc64::structures::slb::SlbEntry;
use arch_ppc64::structures::SegmentSize;

use crate::platform::{SlbBackend, SlbError};

/// Why the SLB manager refused an operation. Nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlbManagerError {
    /// The bolted count leaves no index for on-demand entries.
    TooManyBolted {
        /// Bolted entries asked for.
        bolted: usize,
        /// SLB size.
        size: usize,
    },
    /// A bolted index at or beyond the bolted count.
    NotABoltedIndex(usize),
    /// The entry is not valid.
    InvalidEntry,
    /// The backend refused the entry.
    Backend(SlbError),
}

impl From<SlbError> for SlbManagerError {
    fn from(e: SlbError) -> Self {
        SlbManagerError::Backend(e)
    }
}

/// The SLB manager of one processor.
#[derive(Clone, Debug)]
pub struct SlbManager {
    bolted: usize,
    /// The next index the round-robin replacement takes.
    next_victim: usize,
    /// What is loaded at each index, as the manager wrote it.
    shadow: Vec<Option<SlbEntry>>,
    /// The ESID loaded at each index, [`NO_ESID`] where none: what the
    /// lookups on the segment-miss path scan, one word an entry.
    esids: Vec<u64>,
}

/// Marks an index of [`SlbManager::esids`] that holds no entry (no ESID is
/// this large: they have 36 bits).
const NO_ESID: u64 = u64::MAX;

impl SlbManager {
    /// A manager for an SLB of `size` entries whose first `bolted` are
    /// reserved for bolted kernel segments. At least one index must remain
    /// for on-demand entries.
    pub fn new(size: usize, bolted: usize) -> Result<Self, SlbManagerError> {
        if bolted >= size {
            return Err(SlbManagerError::TooManyBolted { bolted, size });
        }
        Ok(SlbManager {
            bolted,
            next_victim: bolted,
            shadow: vec![None; size],
            esids: vec![NO_ESID; size],
        })
    }

    /// Number of entries.
    pub fn size(&self) -> usize {
        self.shadow.len()
    }

    /// Number of bolted indexes.
    pub fn bolted(&self) -> usize {
        self.bolted
    }

    /// The index holding a translation for `esid`, if any.
    pub fn lookup(&self, esid: Esid) -> Option<usize> {
        let esid = esid.as_u64();
        self.esids.iter().position(|&e| e == esid)
    }

    /// The lowest non-bolted index holding nothing.
    fn free_index(&self) -> Option<usize> {
        self.esids[self.bolted..]
            .iter()
            .position(|&e| e == NO_ESID)
            .map(|i| i + self.bolted)
    }

    /// Records what index `i` holds, in the shadow and the ESID column.
    fn set(&mut self, i: usize, entry: Option<SlbEntry>) {
        self.shadow[i] = entry;
        self.esids[i] = entry.map_or(NO_ESID, |e| e.esid().as_u64());
    }

    /// The entry the manager loaded at `index`.
    pub fn entry(&self, index: usize) -> Option<SlbEntry> {
        self.shadow.get(index).copied().flatten()
    }

    /// Number of valid entries.
    pub fn valid_count(&self) -> usize {
        self.shadow.iter().filter(|e| e.is_some()).count()
    }

    /// Removes any entry for `esid` (hardware `slbie` and shadow).
    fn drop_esid<B: SlbBackend + ?Sized>(&mut self, backend: &mut B, esid: Esid) -> bool {
        match self.lookup(esid) {
            Some(i) => {
                self.drop_index(backend, i);
                true
            }
            None => false,
        }
    }

    /// Invalidates whatever index `i` holds (hardware `slbie` and shadow).
    fn drop_index<B: SlbBackend + ?Sized>(&mut self, backend: &mut B, i: usize) {
        if let Some(old) = self.shadow[i] {
            slbie(backend, old);
        }
        self.set(i, None);
    }

    /// Loads a bolted kernel segment at `index` (< `bolted`), replacing
    /// any other entry for the same ESID.
    pub fn bolt<B: SlbBackend + ?Sized>(
        &mut self,
        backend: &mut B,
        index: usize,
        entry: SlbEntry,
    ) -> Result<(), SlbManagerError> {
        if index >= self.bolted {
            return Err(SlbManagerError::NotABoltedIndex(index));
        }
        if !entry.is_valid() {
            return Err(SlbManagerError::InvalidEntry);
        }
        let old_for_esid = self.lookup(entry.esid());
        self.install(backend, index, entry, old_for_esid)
    }

    /// Loads `entry` at `index`; `old_for_esid` is where the ESID is
    /// loaded now (the caller has looked it up).
    fn install<B: SlbBackend + ?Sized>(
        &mut self,
        backend: &mut B,
        index: usize,
        entry: SlbEntry,
        old_for_esid: Option<usize>,
    ) -> Result<(), SlbManagerError> {
        // Invalidate (rather than overwrite) what the index and the ESID
        // held: slbmte over a valid entry does not flush derived TLB
        // entries (QEMU `helper_SLBIA` comment), slbie does.
        let e = entry
            .with_index(index)
            .map_err(|_| SlbManagerError::Backend(SlbError::IndexOutOfRange(index)))?;
        self.drop_index(backend, index);
        if let Some(i) = old_for_esid.filter(|&i| i != index) {
            self.drop_index(backend, i);
        }
        match backend.load(index, e) {
            Ok(()) => {
                self.set(index, Some(e));
                Ok(())
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Loads an on-demand entry (after a segment interrupt): into a free
    /// non-bolted index if there is one, else over the round-robin victim.
    /// Returns the index used.
    pub fn load<B: SlbBackend + ?Sized>(
        &mut self,
        backend: &mut B,
        entry: SlbEntry,
    ) -> Result<usize, SlbManagerError> {
        if !entry.is_valid() {
            return Err(SlbManagerError::InvalidEntry);
        }
        let old_for_esid = self.lookup(entry.esid());
        let index = match old_for_esid {
            // Reload over the same ESID's own index (it may be bolted).
            Some(i) => i,
            None => match self.free_index() {
                Some(i) => i,
                None => {
                    let i = self.next_victim;
                    self.next_victim = if i + 1 >= self.size() {
                        self.bolted
                    } else {
                        i + 1
                    };
                    i
                }
            },
        };
        self.install(backend, index, entry, old_for_esid)?;
        Ok(index)
    }

    /// Address-space switch: invalidates every non-bolted entry.
    pub fn switch<B: SlbBackend + ?Sized>(&mut self, backend: &mut B) {
        backend.invalidate_non_bolted(self.bolted);
        self.shadow[self.bolted..].fill(None);
        self.esids[self.bolted..].fill(NO_ESID);
    }

    /// Detach: invalidates the entry for `esid`, if loaded. Returns whether
    /// there was one.
    pub fn invalidate_esid<B: SlbBackend + ?Sized>(&mut self, backend: &mut B, esid: Esid) -> bool {
        self.drop_esid(backend, esid)
    }
}

/// Invalidates the loaded entry `old`: `slbie` must name the segment size
/// the entry has (RB's B field, ISA Book III `slbie`), or a 1 TB entry
/// would not match and would stay.
fn slbie<B: SlbBackend + ?Sized>(backend: &mut B, old: SlbEntry) {
    // Every entry the manager loads was built with a valid size; a
    // reserved code cannot occur, M256 is only a fallback.
    let ssize = old.segment_size().unwrap_or(SegmentSize::M256);
    backend.invalidate(old.esid().base(), ssize);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::ArraySlb;
    use arch_ppc64::addr::Vsid;
    use arch_ppc64::structures::slb::SlbFlags;
    use arch_ppc64::structures::PageSize;

    fn entry(esid: u64, vsid: u64) -> SlbEntry {
        SlbEntry::new(
            Esid::new(esid),
            Vsid::new(vsid),
            SegmentSize::M256,
            PageSize::K4,
            SlbFlags::KP,
        )
        .unwrap()
    }

    fn valid_in_hw(b: &ArraySlb) -> usize {
        b.entries.iter().filter(|e| e.is_valid()).count()
    }

    /// The ESID column the lookups scan says what the shadow says, and
    /// the shadow what the hardware holds, after any mix of loads, bolts,
    /// detaches and switches.
    #[test]
    fn the_esid_column_follows_the_shadow() {
        let mut hw = ArraySlb::new(8);
        let mut m = SlbManager::new(8, 2).unwrap();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for step in 0..2000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let esid = 0x100 + x % 12;
            match (x >> 8) % 8 {
                0 => m
                    .bolt(&mut hw, (x >> 16) as usize % 2, entry(esid, step + 1))
                    .unwrap(),
                1 => {
                    m.invalidate_esid(&mut hw, Esid::new(esid));
                }
                2 => m.switch(&mut hw),
                _ => {
                    m.load(&mut hw, entry(esid, step + 1)).unwrap();
                }
            }
            for i in 0..m.size() {
                let want = m.entry(i).map_or(NO_ESID, |e| e.esid().as_u64());
                assert_eq!(m.esids[i], want, "step {step}, index {i}");
                assert_eq!(hw.entries[i].is_valid(), m.entry(i).is_some());
                if let Some(e) = m.entry(i) {
                    assert_eq!(m.lookup(e.esid()), Some(i), "one index per ESID");
                }
            }
        }
    }

    #[test]
    fn bolted_count_must_leave_room() {
        assert_eq!(
            SlbManager::new(4, 4).unwrap_err(),
            SlbManagerError::TooManyBolted { bolted: 4, size: 4 }
        );
        assert!(SlbManager::new(4, 3).is_ok());
    }

    #[test]
    fn bolted_entries_survive_a_switch() {
        let mut b = ArraySlb::new(8);
        let mut m = SlbManager::new(8, 2).unwrap();
        m.bolt(&mut b, 0, entry(0xC00, 1)).unwrap();
        assert_eq!(
            m.bolt(&mut b, 2, entry(0xC01, 2)),
            Err(SlbManagerError::NotABoltedIndex(2))
        );
        assert_eq!(m.load(&mut b, entry(1, 10)), Ok(2));
        assert_eq!(m.load(&mut b, entry(2, 11)), Ok(3));
        assert_eq!(valid_in_hw(&b), 3);
        m.switch(&mut b);
        assert_eq!(valid_in_hw(&b), 1);
        assert_eq!(m.valid_count(), 1);
        assert_eq!(m.lookup(Esid::new(0xC00)), Some(0));
        assert_eq!(m.lookup(Esid::new(1)), None);
        assert_eq!(b.entries[0].esid(), Esid::new(0xC00));
        assert_eq!(b.entries[0].index(), 0);
    }

    #[test]
    fn replacement_is_round_robin_over_non_bolted_indexes() {
        let mut b = ArraySlb::new(5);
        let mut m = SlbManager::new(5, 2).unwrap();
        m.bolt(&mut b, 0, entry(0xC00, 1)).unwrap();
        m.bolt(&mut b, 1, entry(0xC01, 2)).unwrap();
        let idx: Vec<usize> = (0..8)
            .map(|i| m.load(&mut b, entry(i, 100 + i)).unwrap())
            .collect();
        // Three free indexes first, then victims 2, 3, 4, 2, 3.
        assert_eq!(idx, vec![2, 3, 4, 2, 3, 4, 2, 3]);
        // Bolted entries were never taken.
        assert_eq!(m.lookup(Esid::new(0xC00)), Some(0));
        assert_eq!(m.lookup(Esid::new(0xC01)), Some(1));
        // Only the last three on-demand ESIDs remain, once each.
        assert_eq!(m.valid_count(), 5);
        assert_eq!(valid_in_hw(&b), 5);
        for e in 5..8 {
            assert!(m.lookup(Esid::new(e)).is_some());
        }
        assert_eq!(m.lookup(Esid::new(4)), None);
    }

    #[test]
    fn reloading_an_esid_never_duplicates_it() {
        let mut b = ArraySlb::new(6);
        let mut m = SlbManager::new(6, 1).unwrap();
        let i = m.load(&mut b, entry(7, 1)).unwrap();
        // Same ESID, new VSID (e.g. remapped): same index, old one gone.
        assert_eq!(m.load(&mut b, entry(7, 2)), Ok(i));
        assert_eq!(m.valid_count(), 1);
        assert_eq!(valid_in_hw(&b), 1);
        assert_eq!(b.entries[i].vsid(), Some(Vsid::new(2)));
        // Bolting an ESID that was loaded on demand moves it.
        m.bolt(&mut b, 0, entry(7, 3)).unwrap();
        assert_eq!(m.lookup(Esid::new(7)), Some(0));
        assert_eq!(valid_in_hw(&b), 1);
    }

    #[test]
    fn detach_invalidates_only_that_esid() {
        let mut b = ArraySlb::new(6);
        let mut m = SlbManager::new(6, 1).unwrap();
        m.load(&mut b, entry(1, 1)).unwrap();
        m.load(&mut b, entry(2, 2)).unwrap();
        let before = b.slbie;
        assert!(m.invalidate_esid(&mut b, Esid::new(1)));
        assert_eq!(b.slbie, before + 1);
        assert!(!m.invalidate_esid(&mut b, Esid::new(1)));
        assert_eq!(m.lookup(Esid::new(2)), Some(2));
        assert_eq!(valid_in_hw(&b), 1);
        assert_eq!(
            m.load(&mut b, SlbEntry::INVALID),
            Err(SlbManagerError::InvalidEntry)
        );
    }

    #[test]
    fn a_1t_entry_is_invalidated_as_1t() {
        let mut b = ArraySlb::new(6);
        let mut m = SlbManager::new(6, 2).unwrap();
        // A bolted 1 TB kernel segment: ESID aligned to 4096 x 256 MB.
        let big = SlbEntry::new(
            Esid::new(0xC00_000),
            Vsid::new(0x42),
            SegmentSize::T1,
            PageSize::K4,
            SlbFlags::KP,
        )
        .unwrap();
        m.bolt(&mut b, 0, big).unwrap();
        // Bolting something else over index 0 must slbie the 1 TB entry.
        m.bolt(&mut b, 0, entry(0xC01, 2)).unwrap();
        assert_eq!(b.slbie_sizes, vec![SegmentSize::T1]);
        assert_eq!(valid_in_hw(&b), 1, "the 1 TB entry is gone");
        // Detaching a 1 TB entry by its ESID does the same.
        m.bolt(&mut b, 1, big).unwrap();
        assert!(m.invalidate_esid(&mut b, Esid::new(0xC00_000)));
        assert_eq!(b.slbie_sizes, vec![SegmentSize::T1, SegmentSize::T1]);
        assert_eq!(valid_in_hw(&b), 1);
    }
}
