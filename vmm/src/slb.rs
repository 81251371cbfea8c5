//! SLB management: which segment translations the processor holds.
//!
//! The SLB has `ibm,slb-size` entries (32 on POWER7–10). As Linux does
//! (`SLB_NUM_BOLTED`), the low indexes `0..bolted` hold the kernel's bolted
//! segments, which survive an address-space switch; every other entry is
//! loaded on demand when a segment interrupt (0x380/0x480) finds no entry,
//! into the next non-bolted index in round-robin order (Linux
//! `stab_rr`), whose old entry is invalidated first.
//!
//! The manager keeps a shadow of what it loaded, so it knows which ESIDs
//! are present (two entries for one ESID are undefined, Power ISA Book
//! III-S "Segment Lookaside Buffer"), which entry a detach must invalidate
//! and what the victim of a load is, without reading the SLB back. All
//! segments are 256 MB with 4 KiB base pages.
//!
//! # The fast path
//!
//! The shadow and the round-robin cursor live in a fixed-layout
//! per-processor area ([`fast`]) that a platform's segment-miss handler,
//! written in assembly, updates as well: on a segment interrupt it searches
//! the [`crate::slbtable::SlbTable`] of the kernel's or the running
//! process's address space (whose addresses the [`crate::vm::Vmm`]
//! publishes here), takes the slot under the cursor, `slbie`s what the
//! shadow says that slot holds, `slbmte`s the table's words, records them
//! in the slot, advances the cursor and returns; an ESID that is in no
//! table goes to the full path (the Rust fault handler). The manager's own
//! [`SlbManager::load`] picks its victim the same way, so after any mix of
//! the two the shadow says exactly what the hardware holds.
//!
//! The protocol: each side makes its whole update (slot, cursor, counter)
//! between two of the other's. The fast path runs only on a segment
//! interrupt, with interrupts off, and finishes before anything else runs;
//! the manager's code and data are on memory that never takes a segment
//! interrupt (the kernel's bolted linear map), so the fast path never
//! runs in the middle of a manager update, and every change the manager
//! makes is complete (and, through a compiler fence, in memory) before it
//! returns. The words are atomics so that both writers are allowed.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{compiler_fence, AtomicU64, Ordering};

use arch_ppc64::addr::Esid;
use arch_ppc64::instructions::slb::slbie_operand;
use arch_ppc64::structures::slb::{esid_word, SlbEntry};
use arch_ppc64::structures::SegmentSize;

use crate::platform::{SlbBackend, SlbError};
use crate::slbtable::{TableRef, HASH_K};

pub mod fast {
    //! Byte offsets of the per-processor area ([`super::SlbManager::fast_area`]), for
    //! the assembly of a segment-miss fast path. Every field is a doubleword
    //! in the machine's byte order.
    //!
    //! | offset | field |
    //! | --- | --- |
    //! | [`SCRATCH`] | 8 doublewords the fast path saves registers in (the manager never touches them) |
    //! | [`CURSOR`] | the next index the round-robin replacement takes |
    //! | [`FIRST`] | first on-demand index (the bolted count): where the cursor wraps to |
    //! | [`END`] | SLB size: the cursor wraps when it reaches it |
    //! | [`HW_BASE`] | hardware index of the manager's index 0 ([`crate::platform::SlbBackend::hardware_index_base`]) |
    //! | [`HASH_K`] | the table hash multiplier ([`crate::slbtable::HASH_K`]) |
    //! | [`DATA_LOADS`], [`INSTRUCTION_LOADS`] | entries the fast path loaded on data / instruction segment interrupts |
    //! | [`TABLES`] | two table references ([`TABLE_BYTES`] each): `[0]` for effective addresses with bit 0 clear (the process), `[1]` with it set (the kernel); fields [`TABLE_BASE`], [`TABLE_SHIFT`], [`TABLE_MASK`] as in [`crate::slbtable::TableRef`] |
    //! | [`SLOTS`] | one slot ([`SLOT_BYTES`]) per index: [`SLOT_RB`] the `slbmte` RB as loaded (hardware index included; V clear: empty), [`SLOT_RS`] the RS, [`SLOT_SLBIE`] the `slbie` operand that removes it |

    /// Register save area of the fast path.
    pub const SCRATCH: usize = 0;
    /// Doublewords in [`SCRATCH`].
    pub const SCRATCH_WORDS: usize = 8;
    /// The round-robin cursor.
    pub const CURSOR: usize = 64;
    /// First on-demand index.
    pub const FIRST: usize = 72;
    /// SLB size.
    pub const END: usize = 80;
    /// Hardware index of index 0.
    pub const HW_BASE: usize = 88;
    /// Hash multiplier.
    pub const HASH_K: usize = 96;
    /// Loads by the fast path on data segment interrupts.
    pub const DATA_LOADS: usize = 104;
    /// Loads by the fast path on instruction segment interrupts.
    pub const INSTRUCTION_LOADS: usize = 112;
    /// The two table references.
    pub const TABLES: usize = 128;
    /// Bytes of one table reference.
    pub const TABLE_BYTES: usize = 32;
    /// Table field: address of entry 0.
    pub const TABLE_BASE: usize = 0;
    /// Table field: 64 − log2(entries).
    pub const TABLE_SHIFT: usize = 8;
    /// Table field: 16 × (entries − 1).
    pub const TABLE_MASK: usize = 16;
    /// The slots.
    pub const SLOTS: usize = TABLES + 2 * TABLE_BYTES;
    /// Bytes of one slot.
    pub const SLOT_BYTES: usize = 32;
    /// Slot field: RB as loaded.
    pub const SLOT_RB: usize = 0;
    /// Slot field: RS.
    pub const SLOT_RS: usize = 8;
    /// Slot field: the `slbie` operand.
    pub const SLOT_SLBIE: usize = 16;

    /// Bytes of the area of an SLB of `size` entries.
    pub const fn area_bytes(size: usize) -> usize {
        SLOTS + SLOT_BYTES * size
    }
}

/// Why the SLB manager refused an operation. Nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
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
pub struct SlbManager {
    bolted: usize,
    size: usize,
    /// The per-processor area ([`fast`]): the shadow and the cursor.
    area: Box<[AtomicU64]>,
    /// Victims the manager took ([`SlbManager::load`]) since it was made.
    victims: u64,
    /// Victims taken by both sides (this plus the fast path's counters)
    /// at the last [`SlbManager::switch`].
    taken_at_switch: u64,
}

impl SlbManager {
    /// A manager for an SLB of `size` entries whose first `bolted` are
    /// reserved for bolted kernel segments. At least one index must remain
    /// for on-demand entries.
    pub fn new(size: usize, bolted: usize) -> Result<Self, SlbManagerError> {
        if bolted >= size {
            return Err(SlbManagerError::TooManyBolted { bolted, size });
        }
        let words = fast::area_bytes(size) / 8;
        let m = SlbManager {
            bolted,
            size,
            area: (0..words).map(|_| AtomicU64::new(0)).collect(),
            victims: 0,
            taken_at_switch: 0,
        };
        m.put(fast::CURSOR, bolted as u64);
        m.put(fast::FIRST, bolted as u64);
        m.put(fast::END, size as u64);
        m.put(fast::HASH_K, HASH_K);
        m.set_tables(TableRef::empty(), TableRef::empty());
        Ok(m)
    }

    #[inline]
    fn get(&self, offset: usize) -> u64 {
        self.area[offset / 8].load(Ordering::Relaxed)
    }

    #[inline]
    fn put(&self, offset: usize, value: u64) {
        self.area[offset / 8].store(value, Ordering::Relaxed);
    }

    #[inline]
    fn slot(i: usize) -> usize {
        fast::SLOTS + fast::SLOT_BYTES * i
    }

    /// The per-processor area ([`fast`]), for a fast path to find: it
    /// stays at this address as long as the manager lives.
    pub fn fast_area(&self) -> *const AtomicU64 {
        self.area.as_ptr()
    }

    /// Tells the fast path the hardware index of index 0 (see
    /// [`SlbBackend::hardware_index_base`]).
    pub fn set_hardware_index_base(&mut self, base: usize) {
        // The slots record RB as loaded: move the index of each.
        let old = self.get(fast::HW_BASE);
        for i in 0..self.size {
            let rb = self.get(Self::slot(i) + fast::SLOT_RB);
            if rb & esid_word::V != 0 {
                let idx = (rb & esid_word::INDEX) - old + base as u64;
                self.put(
                    Self::slot(i) + fast::SLOT_RB,
                    (rb & !esid_word::INDEX) | idx,
                );
            }
        }
        self.put(fast::HW_BASE, base as u64);
        compiler_fence(Ordering::SeqCst);
    }

    /// Publishes where the process's (`user`) and the kernel's tables are.
    pub fn set_tables(&self, user: TableRef, kernel: TableRef) {
        for (half, t) in [user, kernel].into_iter().enumerate() {
            let at = fast::TABLES + fast::TABLE_BYTES * half;
            self.put(at + fast::TABLE_BASE, t.base);
            self.put(at + fast::TABLE_SHIFT, t.shift);
            self.put(at + fast::TABLE_MASK, t.mask_bytes);
        }
        compiler_fence(Ordering::SeqCst);
    }

    /// Publishes where the process's table is (an address-space switch:
    /// the kernel's stays).
    #[inline]
    pub fn set_user_table(&self, user: TableRef) {
        self.put(fast::TABLES + fast::TABLE_BASE, user.base);
        self.put(fast::TABLES + fast::TABLE_SHIFT, user.shift);
        self.put(fast::TABLES + fast::TABLE_MASK, user.mask_bytes);
        compiler_fence(Ordering::SeqCst);
    }

    /// The table references the fast path reads: `[process, kernel]`.
    pub fn tables(&self) -> [TableRef; 2] {
        [0, 1].map(|half| {
            let at = fast::TABLES + fast::TABLE_BYTES * half;
            TableRef {
                base: self.get(at + fast::TABLE_BASE),
                shift: self.get(at + fast::TABLE_SHIFT),
                mask_bytes: self.get(at + fast::TABLE_MASK),
            }
        })
    }

    /// Entries the fast path loaded: `(data, instruction)` segment
    /// interrupts.
    pub fn fast_loads(&self) -> (u64, u64) {
        (
            self.get(fast::DATA_LOADS),
            self.get(fast::INSTRUCTION_LOADS),
        )
    }

    /// Number of entries.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Number of bolted indexes.
    pub fn bolted(&self) -> usize {
        self.bolted
    }

    /// The index the next on-demand load without a free choice takes.
    #[inline]
    pub fn cursor(&self) -> usize {
        self.get(fast::CURSOR) as usize
    }

    /// The index holding a translation for `esid`, if any.
    pub fn lookup(&self, esid: Esid) -> Option<usize> {
        let key = crate::slbtable::key_of(esid);
        let mask = esid_word::ESID | esid_word::V;
        (0..self.size).find(|&i| self.get(Self::slot(i) + fast::SLOT_RB) & mask == key)
    }

    /// Records what index `i` holds, as the fast path would.
    fn set(&mut self, i: usize, entry: Option<SlbEntry>) {
        let at = Self::slot(i);
        match entry {
            Some(e) => {
                let hw = self.get(fast::HW_BASE) + i as u64;
                self.put(at + fast::SLOT_RS, e.vsid_word);
                self.put(at + fast::SLOT_SLBIE, slbie_operand(e));
                self.put(at + fast::SLOT_RB, (e.esid_word & !esid_word::INDEX) | hw);
            }
            None => self.put(at + fast::SLOT_RB, 0),
        }
        compiler_fence(Ordering::SeqCst);
    }

    /// The entry the manager (or the fast path) loaded at `index`.
    pub fn entry(&self, index: usize) -> Option<SlbEntry> {
        if index >= self.size {
            return None;
        }
        let at = Self::slot(index);
        let rb = self.get(at + fast::SLOT_RB);
        (rb & esid_word::V != 0).then(|| SlbEntry {
            esid_word: (rb & !esid_word::INDEX) | index as u64,
            vsid_word: self.get(at + fast::SLOT_RS),
        })
    }

    /// Number of valid entries.
    pub fn valid_count(&self) -> usize {
        (0..self.size).filter(|&i| self.entry(i).is_some()).count()
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
        if let Some(old) = self.entry(i) {
            slbie(backend, old);
            self.set(i, None);
        }
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

    /// Takes the index under the round-robin cursor and advances it, as
    /// the fast path does.
    fn take_victim(&mut self) -> usize {
        self.victims += 1;
        let i = self.cursor();
        let next = if i + 1 >= self.size {
            self.bolted
        } else {
            i + 1
        };
        self.put(fast::CURSOR, next as u64);
        i
    }

    /// Loads an on-demand entry (after a segment interrupt) over the
    /// round-robin victim, or over the ESID's own index if it is loaded
    /// already. Returns the index used.
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
            None => {
                let cursor = self.cursor();
                let i = self.take_victim();
                if let Err(e) = self.install(backend, i, entry, None) {
                    self.put(fast::CURSOR, cursor as u64);
                    return Err(e);
                }
                return Ok(i);
            }
        };
        self.install(backend, index, entry, old_for_esid)?;
        Ok(index)
    }

    /// Address-space switch: invalidates every non-bolted entry; the next
    /// on-demand load takes the first non-bolted index.
    pub fn switch<B: SlbBackend + ?Sized>(&mut self, backend: &mut B) {
        backend.invalidate_non_bolted(self.bolted);
        // Every on-demand load since the last switch (or since the manager
        // was made, all slots empty) took the slot under the cursor, which
        // started at the first on-demand index; a reload of an ESID stays
        // in its slot. Unless the cursor went round, then, only the slots
        // below it can hold entries.
        let taken = self.victims_taken();
        // (Wrapping: counters moved backwards would clear everything.)
        let end = if taken.wrapping_sub(self.taken_at_switch) < (self.size - self.bolted) as u64 {
            self.cursor()
        } else {
            self.size
        };
        for i in self.bolted..end {
            self.put(Self::slot(i) + fast::SLOT_RB, 0);
        }
        self.put(fast::CURSOR, self.bolted as u64);
        self.taken_at_switch = taken;
        compiler_fence(Ordering::SeqCst);
    }

    /// Victims taken so far, by the manager and the fast path.
    #[inline]
    fn victims_taken(&self) -> u64 {
        self.victims + self.get(fast::DATA_LOADS) + self.get(fast::INSTRUCTION_LOADS)
    }

    /// Detach: invalidates the entry for `esid`, if loaded. Returns whether
    /// there was one.
    pub fn invalidate_esid<B: SlbBackend + ?Sized>(&mut self, backend: &mut B, esid: Esid) -> bool {
        self.drop_esid(backend, esid)
    }
}

impl Clone for SlbManager {
    /// A manager with the same state in an area of its own (which no fast
    /// path knows about).
    fn clone(&self) -> Self {
        SlbManager {
            bolted: self.bolted,
            size: self.size,
            area: self
                .area
                .iter()
                .map(|w| AtomicU64::new(w.load(Ordering::Relaxed)))
                .collect(),
            victims: self.victims,
            taken_at_switch: self.taken_at_switch,
        }
    }
}

impl fmt::Debug for SlbManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let loaded: Vec<(usize, SlbEntry)> = (0..self.size)
            .filter_map(|i| self.entry(i).map(|e| (i, e)))
            .collect();
        f.debug_struct("SlbManager")
            .field("bolted", &self.bolted)
            .field("size", &self.size)
            .field("cursor", &self.cursor())
            .field("fast_loads", &self.fast_loads())
            .field("loaded", &loaded)
            .finish()
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
    use crate::slbtable::{SlbTable, SlbWords};
    use crate::testkit::ArraySlb;
    use alloc::vec;
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

    fn valid_in_hw_match_the_shadow(m: &SlbManager, hw: &ArraySlb, step: u64) {
        for i in 0..m.size() {
            assert_eq!(
                hw.entries[i].is_valid(),
                m.entry(i).is_some(),
                "step {step}, index {i}"
            );
            if let Some(e) = m.entry(i) {
                assert_eq!(hw.entries[i], e, "step {step}, index {i}");
                assert_eq!(m.lookup(e.esid()), Some(i), "one index per ESID");
            }
        }
    }

    /// What the assembly fast path does on a segment miss at `ea`, step by
    /// step on the area's words at the [`fast`] offsets (tables found by
    /// the address the area holds): `false` when the ESID is in no table.
    fn fast_path_model(
        m: &mut SlbManager,
        hw: &mut ArraySlb,
        tables: &[&SlbTable],
        ea: u64,
        counter: usize,
    ) -> bool {
        let half = (ea >> 63) as usize;
        let t = fast::TABLES + fast::TABLE_BYTES * half;
        let (base, shift, mask) = (
            m.get(t + fast::TABLE_BASE),
            m.get(t + fast::TABLE_SHIFT),
            m.get(t + fast::TABLE_MASK),
        );
        let entries = tables
            .iter()
            .find(|t| t.raw().base == base)
            .map_or_else(|| vec![SlbWords { key: 0, rs: 0 }], |t| t.raw_entries());
        let key = (ea & esid_word::ESID) | esid_word::V;
        let product = key.wrapping_mul(m.get(fast::HASH_K));
        let mut off = product.checked_shr(shift as u32).unwrap_or(0) << 4;
        let rs = loop {
            let w = entries[off as usize / 16];
            if w.key == key {
                break w.rs;
            }
            if w.key == 0 {
                return false;
            }
            off = (off + 16) & mask;
        };
        let i = m.get(fast::CURSOR);
        let next = if i + 1 < m.get(fast::END) {
            i + 1
        } else {
            m.get(fast::FIRST)
        };
        m.put(fast::CURSOR, next);
        let rb = key | (i + m.get(fast::HW_BASE));
        let slot = fast::SLOTS + fast::SLOT_BYTES * i as usize;
        if m.get(slot + fast::SLOT_RB) & esid_word::V != 0 {
            let op = m.get(slot + fast::SLOT_SLBIE);
            hw.invalidate(
                arch_ppc64::addr::EffectiveAddress::new(op & esid_word::ESID),
                SegmentSize::M256,
            );
        }
        m.put(slot + fast::SLOT_RB, rb);
        m.put(slot + fast::SLOT_RS, rs);
        m.put(slot + fast::SLOT_SLBIE, key & esid_word::ESID);
        let hw_index = (rb & esid_word::INDEX) as usize - m.get(fast::HW_BASE) as usize;
        hw.entries[hw_index] = SlbEntry {
            esid_word: (rb & !esid_word::INDEX) | hw_index as u64,
            vsid_word: rs,
        };
        m.put(counter, m.get(counter) + 1);
        true
    }

    /// The fast path (modelled on the area's words) and the manager's own
    /// loads, detaches, bolts and switches, in any mix, leave a shadow
    /// that says what the hardware holds, one index per ESID, and the
    /// fast path loads exactly the table's words.
    #[test]
    fn the_fast_path_and_the_manager_agree_on_the_slb() {
        let mut hw = ArraySlb::new(8);
        let mut m = SlbManager::new(8, 2).unwrap();
        m.set_hardware_index_base(3);
        let mut user = SlbTable::new();
        let mut kernel = SlbTable::new();
        let kbase = 1u64 << 35;
        for e in 0..10 {
            user.insert(entry(0x100 + e, e + 1));
            kernel.insert(entry(kbase + e, e + 100));
        }
        m.set_tables(user.raw(), kernel.raw());
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut fast_loads = 0;
        for step in 0..4000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let esid = match x % 3 {
                0 => 0x100 + (x >> 8) % 12,
                1 => kbase + (x >> 8) % 12,
                _ => 0x100 + (x >> 8) % 4,
            };
            let ea = (esid << 28) | ((x >> 40) % (1 << 28));
            match (x >> 16) % 10 {
                0 => m
                    .bolt(&mut hw, (x >> 24) as usize % 2, entry(esid, step + 1))
                    .unwrap(),
                1 => {
                    m.invalidate_esid(&mut hw, Esid::new(esid));
                }
                2 => m.switch(&mut hw),
                3 => {
                    m.load(&mut hw, entry(esid, step + 1)).unwrap();
                }
                _ => {
                    // The hardware misses only what it does not hold.
                    if hw
                        .entries
                        .iter()
                        .any(|e| e.esid() == Esid::new(esid) && e.is_valid())
                    {
                        continue;
                    }
                    let table = if esid >= kbase { &kernel } else { &user };
                    let counter = if x & 1 == 0 {
                        fast::DATA_LOADS
                    } else {
                        fast::INSTRUCTION_LOADS
                    };
                    let loaded = fast_path_model(&mut m, &mut hw, &[&user, &kernel], ea, counter);
                    assert_eq!(loaded, table.get(Esid::new(esid)).is_some(), "step {step}");
                    if loaded {
                        fast_loads += 1;
                        let i = m.lookup(Esid::new(esid)).expect("recorded");
                        assert!(i >= m.bolted());
                        assert_eq!(
                            m.entry(i).unwrap().vsid_word,
                            table.get(Esid::new(esid)).unwrap().rs
                        );
                    }
                }
            }
            valid_in_hw_match_the_shadow(&m, &hw, step);
            let (d, i) = m.fast_loads();
            assert_eq!(d + i, fast_loads);
        }
        assert!(fast_loads > 1000, "{fast_loads} fast loads");
    }

    #[test]
    fn the_area_has_the_documented_layout() {
        let mut m = SlbManager::new(5, 2).unwrap();
        assert_eq!(m.area.len() * 8, fast::area_bytes(5));
        assert_eq!(fast::SLOTS, 192);
        assert_eq!(fast::SCRATCH + 8 * fast::SCRATCH_WORDS, fast::CURSOR);
        assert_eq!(m.get(fast::HASH_K), HASH_K);
        assert_eq!(
            (m.get(fast::FIRST), m.get(fast::END), m.cursor()),
            (2, 5, 2)
        );
        let base = m.fast_area() as usize;
        assert_eq!(base % 8, 0);
        let mut hw = ArraySlb::new(5);
        m.set_hardware_index_base(4);
        let i = m.load(&mut hw, entry(9, 1)).unwrap();
        let rb = m.get(fast::SLOTS + fast::SLOT_BYTES * i + fast::SLOT_RB);
        assert_eq!(
            rb,
            (9 << 28) | esid_word::V | (4 + i as u64),
            "RB as the hardware got it"
        );
        // Moving the base afterwards moves what the slots record.
        m.set_hardware_index_base(1);
        let rb = m.get(fast::SLOTS + fast::SLOT_BYTES * i + fast::SLOT_RB);
        assert_eq!(rb & esid_word::INDEX, 1 + i as u64);
        assert_eq!(m.entry(i).unwrap().index(), i);
        let c = m.clone();
        assert_ne!(c.fast_area(), m.fast_area());
        assert_eq!(c.entry(i), m.entry(i));
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
