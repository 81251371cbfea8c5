//! Address spaces: which segment each effective segment of a process names.
//!
//! A 64-bit address space has 2^36 ESIDs (256 MB segments, EA bits 0:35);
//! a process uses a handful, so the map is a sparse `BTreeMap` from
//! [`Esid`] to [`SegmentMapping`]. A mapping carries a [`Handle`]: the segment's
//! SID and the access key laid out as the VSID word of an SLB entry
//! (`SID << 12 | Ks 0x800 | Kp 0x400 | N 0x200`), which is also the
//! `vmhandle_t` the AIX services hand out.
//!
//! Beside the map, each address space keeps its mappings' SLB words in a
//! [`SlbTable`], which a segment-miss fast path searches (see
//! [`crate::slbtable`]); insert and remove change both.
//!
//! [`Adspace32`] models AIX's `adspace_t` of a 32-bit address space: sixteen
//! "segment registers" (on ppc64: the SLB entries for ESIDs 0..15) and an
//! allocation mask whose bit for register `x` is `(1 << 31) >> x`.

use alloc::collections::btree_map::Entry;
use alloc::collections::BTreeMap;
use core::fmt;
use core::ops::Range;

use arch_ppc64::addr::Esid;
use arch_ppc64::structures::slb::{SlbEntry, SlbFlags};
use arch_ppc64::structures::{PageSize, SegmentSize};

use crate::sid::Sid;
use crate::slbtable::SlbTable;

/// The SLB VSID-word bit `Ks`: the key used in supervisor state
/// (ISA bit 52 of the VSID doubleword).
pub const HANDLE_KS: u64 = 0x800;
/// The SLB VSID-word bit `Kp`: the key used in problem state (ISA bit 53).
pub const HANDLE_KP: u64 = 0x400;
/// The SLB VSID-word bit `N`: no instruction fetch from the segment (ISA bit 54).
pub const HANDLE_N: u64 = 0x200;
/// Shift of the SID in a handle: the VSID field of the SLB VSID word
/// starts at ISA bit 51 for 256 MB segments.
pub const HANDLE_SID_SHIFT: u32 = 12;
/// Number of ESIDs of a 64-bit effective address space with 256 MB segments.
pub const ESID_COUNT: u64 = 1 << 36;
/// Number of segment registers of a 32-bit address space: AIX `NSEGS`.
pub const NSEGS: usize = 16;

/// A segment's storage keys as an SLB entry carries them: `Ks` applies in
/// supervisor state, `Kp` in problem state (Power ISA Book III-S storage protection: key =
/// `MSR[PR] ? Kp : Ks`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegKey {
    /// Supervisor-state key.
    pub ks: bool,
    /// Problem-state key.
    pub kp: bool,
}

impl SegKey {
    /// AIX `VM_PRIV`: Ks = Kp = 0, unlimited access.
    pub const PRIV: SegKey = SegKey {
        ks: false,
        kp: false,
    };
    /// AIX `VM_UNPRIV`: Ks = Kp = 1, limited access.
    pub const UNPRIV: SegKey = SegKey { ks: true, kp: true };
    /// The kernel's own segments: Ks = 0 (the kernel has full access),
    /// Kp = 1 (problem state gets the limited key, so PP 00 pages are closed
    /// to it), as Linux's `SLB_VSID_KERNEL`.
    pub const KERNEL: SegKey = SegKey {
        ks: false,
        kp: true,
    };

    /// The key bit in force for an access: Kp in problem state, else Ks.
    pub const fn effective(self, problem_state: bool) -> bool {
        if problem_state {
            self.kp
        } else {
            self.ks
        }
    }

    /// From the AIX `vmkey_t` (0 `VM_PRIV`, 1 `VM_UNPRIV`, 2 `VM_KEY10`
    /// Ks=1 Kp=0, 3 `VM_KEY01` Ks=0 Kp=1); `None` for other values.
    pub const fn from_vmkey(key: i64) -> Option<SegKey> {
        match key {
            0 => Some(SegKey::PRIV),
            1 => Some(SegKey::UNPRIV),
            2 => Some(SegKey {
                ks: true,
                kp: false,
            }),
            3 => Some(SegKey::KERNEL),
            _ => None,
        }
    }
}

/// Why a raw value is not a handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandleError {
    /// Bits other than SID, Ks, Kp and N are set. This includes AIX
    /// [`crate::sid::INVLSID`] (the error value of `as_geth64`), whose low bits no
    /// handle has, so it can never be taken for a valid handle.
    StrayBits(u64),
    /// The SID field is 0, [`crate::sid::INVLSID`] or wider than 35 bits.
    BadSid(u64),
}

/// A `vmhandle_t`: SID plus key and no-execute, in SLB VSID-word layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(u64);

impl Handle {
    /// The handle of segment `sid` with key `key` (and N if `no_exec`).
    pub fn new(sid: Sid, key: SegKey, no_exec: bool) -> Handle {
        let mut raw = sid.as_u64() << HANDLE_SID_SHIFT;
        if key.ks {
            raw |= HANDLE_KS;
        }
        if key.kp {
            raw |= HANDLE_KP;
        }
        if no_exec {
            raw |= HANDLE_N;
        }
        Handle(raw)
    }

    /// Checks a raw value (for example one passed in from C).
    pub fn from_raw(raw: u64) -> Result<Handle, HandleError> {
        let flags = HANDLE_KS | HANDLE_KP | HANDLE_N;
        if raw & ((1 << HANDLE_SID_SHIFT) - 1) & !flags != 0 {
            return Err(HandleError::StrayBits(raw));
        }
        let sid = raw >> HANDLE_SID_SHIFT;
        if Sid::try_new(sid).is_none() {
            return Err(HandleError::BadSid(sid));
        }
        Ok(Handle(raw))
    }

    /// The raw 64-bit value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// The segment's SID.
    pub fn sid(self) -> Sid {
        Sid::new(self.0 >> HANDLE_SID_SHIFT)
    }

    /// The keys.
    pub const fn key(self) -> SegKey {
        SegKey {
            ks: self.0 & HANDLE_KS != 0,
            kp: self.0 & HANDLE_KP != 0,
        }
    }

    /// Whether instruction fetch from the segment is refused.
    pub const fn no_exec(self) -> bool {
        self.0 & HANDLE_N != 0
    }

    /// The same handle with another key (AIX `vm_handle` on an existing one).
    pub fn with_key(self, key: SegKey) -> Handle {
        Handle::new(self.sid(), key, self.no_exec())
    }
}

/// What happens to a mapping when its address space is cloned for fork.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForkAction {
    /// The child maps the same segment (shmat-like, `as_att`).
    Share,
    /// The child gets a private copy of the segment (process data).
    Copy,
    /// The child does not get the mapping (`vm_guatt` attachments).
    Drop,
}

/// One segment mapped at an ESID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentMapping {
    /// The segment and the key the address space accesses it with.
    pub handle: Handle,
    /// Fork behaviour.
    pub fork: ForkAction,
    /// Pages of the segment reachable through this mapping (`None`: all).
    pub window: Option<Range<u32>>,
    /// The view SID whose VSID the hardware uses when the mapping is
    /// windowed (see [`crate::segment`]); `None`: the segment's own.
    pub view: Option<Sid>,
    /// Keep the SLB entry across address-space switches (kernel segments).
    pub bolted: bool,
    /// The segment belongs to this mapping (process-private data): removing
    /// the mapping deletes the segment (deferred while held or attached
    /// elsewhere).
    pub owned: bool,
}

impl SegmentMapping {
    /// A plain mapping of `handle`: whole segment, not bolted.
    pub fn new(handle: Handle, fork: ForkAction) -> SegmentMapping {
        SegmentMapping {
            handle,
            fork,
            window: None,
            view: None,
            bolted: false,
            owned: false,
        }
    }

    /// The SID whose VSID goes into the SLB for this mapping.
    pub fn translation_sid(&self) -> Sid {
        self.view.unwrap_or_else(|| self.handle.sid())
    }

    /// The SLB VSID word flags of this mapping: the handle's Ks/Kp/N.
    pub fn slb_flags(&self) -> u64 {
        self.handle.raw() & (HANDLE_KS | HANDLE_KP | HANDLE_N)
    }

    /// The SLB entry (index 0) translating `esid` through this mapping:
    /// a 256 MB segment of 4 KiB pages with the translation SID's VSID.
    pub fn slb_entry(&self, esid: Esid) -> SlbEntry {
        SlbEntry::new(
            esid,
            self.translation_sid().vsid(),
            SegmentSize::M256,
            PageSize::K4,
            SlbFlags::from_bits_truncate(self.slb_flags()),
        )
        .expect("VSIDs from the scramble fit a 256 MB segment")
    }
}

/// Errors of address-space operations; the map is unchanged after any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdspaceError {
    /// Something is already mapped at this ESID.
    Occupied(Esid),
    /// Nothing is mapped at this ESID.
    NotMapped(Esid),
    /// Segment register number not below [`NSEGS`].
    BadRegister(usize),
    /// No free ESID/segment register in the range asked for.
    Full,
    /// The segment register is not allocated.
    NotAllocated(usize),
}

impl fmt::Display for AdspaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdspaceError::Occupied(e) => write!(f, "ESID {:#x} already mapped", e.as_u64()),
            AdspaceError::NotMapped(e) => write!(f, "ESID {:#x} not mapped", e.as_u64()),
            AdspaceError::BadRegister(r) => write!(f, "no segment register {r}"),
            AdspaceError::Full => write!(f, "no free segment"),
            AdspaceError::NotAllocated(r) => write!(f, "segment register {r} not allocated"),
        }
    }
}

/// The sparse ESID → mapping table of one address space, and the SLB
/// words of its mappings.
#[derive(Clone, Debug, Default)]
pub struct AddressSpace {
    map: BTreeMap<Esid, SegmentMapping>,
    /// `map`'s SLB entries: one for every mapping, as
    /// [`SegmentMapping::slb_entry`] makes it.
    slb: SlbTable,
}

/// Two address spaces are equal when they map the same: the SLB table
/// follows from the map (its layout may depend on the order of changes).
impl PartialEq for AddressSpace {
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}

impl Eq for AddressSpace {}

impl AddressSpace {
    /// An empty address space.
    pub fn new() -> Self {
        AddressSpace::default()
    }

    /// Frees table storage a resize replaced (once no processor can be
    /// searching it: see [`SlbTable::release_retired`]).
    pub(crate) fn release_retired_slb(&mut self) {
        self.slb.release_retired();
    }

    /// The mapping at `esid`.
    pub fn get(&self, esid: Esid) -> Option<&SegmentMapping> {
        self.map.get(&esid)
    }

    /// Maps at a free `esid`; an occupied one is refused.
    pub fn insert(&mut self, esid: Esid, mapping: SegmentMapping) -> Result<(), AdspaceError> {
        match self.map.entry(esid) {
            Entry::Occupied(_) => Err(AdspaceError::Occupied(esid)),
            Entry::Vacant(v) => {
                let entered = self.slb.insert(mapping.slb_entry(esid));
                debug_assert!(entered, "a mapping's entry is 256 MB, class 0");
                v.insert(mapping);
                Ok(())
            }
        }
    }

    /// Unmaps `esid`, returning what was there.
    pub fn remove(&mut self, esid: Esid) -> Result<SegmentMapping, AdspaceError> {
        let m = self
            .map
            .remove(&esid)
            .ok_or(AdspaceError::NotMapped(esid))?;
        self.slb.remove(esid);
        Ok(m)
    }

    /// The SLB words of the mappings, for a segment-miss fast path.
    pub fn slb_table(&self) -> &SlbTable {
        &self.slb
    }

    /// Mappings in ESID order.
    pub fn iter(&self) -> impl Iterator<Item = (Esid, &SegmentMapping)> {
        self.map.iter().map(|(&e, m)| (e, m))
    }

    /// Number of mapped segments.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The lowest unmapped ESID in `range`.
    pub fn find_free(&self, range: Range<u64>) -> Option<Esid> {
        let end = range.end.min(ESID_COUNT);
        let mut candidate = range.start;
        if candidate >= end {
            return None;
        }
        for (&e, _) in self.map.range(Esid::new(candidate)..) {
            if candidate >= end {
                return None;
            }
            if e.as_u64() > candidate {
                return Some(Esid::new(candidate));
            }
            candidate = e.as_u64() + 1;
        }
        (candidate < end).then(|| Esid::new(candidate))
    }

    /// The lowest run of `count` consecutive unmapped ESIDs in `range`
    /// (for regions spanning several segments).
    pub fn find_free_run(&self, range: Range<u64>, count: u64) -> Option<Esid> {
        let end = range.end.min(ESID_COUNT);
        let mut start = range.start;
        if count == 0 {
            return None;
        }
        while start.checked_add(count)? <= end {
            // The first mapping at or above `start`: past the run, the run
            // is free; inside it, no run can start at or below it.
            match self.map.range(Esid::new(start)..).next() {
                Some((&e, _)) if e.as_u64() < start + count => start = e.as_u64() + 1,
                _ => return Some(Esid::new(start)),
            }
        }
        None
    }

    /// The 32-bit `adspace_t` view of ESIDs 0..15.
    pub fn adspace32(&self) -> Adspace32 {
        let mut a = Adspace32::new();
        for (e, m) in self.map.range(..Esid::new(NSEGS as u64)) {
            let sr = e.as_u64() as usize;
            a.alloc |= Adspace32::sr_mask(sr);
            a.srval[sr] = m.handle.raw();
        }
        a
    }
}

/// AIX `adspace_t`: `{ alloc; srval[16] }`, laid out as the C structure.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Adspace32 {
    /// Allocation mask; register `x` is bit `(1 << 31) >> x`.
    pub alloc: u32,
    /// The handle in each segment register (0 when free).
    pub srval: [u64; NSEGS],
}

impl Adspace32 {
    /// An address space with no register allocated.
    pub const fn new() -> Self {
        Adspace32 {
            alloc: 0,
            srval: [0; NSEGS],
        }
    }

    /// AIX `ADSP_MASK(x)`: the alloc bit of segment register `x`.
    pub const fn sr_mask(sr: usize) -> u32 {
        (1 << 31) >> sr
    }

    fn check(sr: usize) -> Result<(), AdspaceError> {
        if sr < NSEGS {
            Ok(())
        } else {
            Err(AdspaceError::BadRegister(sr))
        }
    }

    /// Whether register `sr` is allocated (false for a bad number).
    pub fn is_allocated(&self, sr: usize) -> bool {
        sr < NSEGS && self.alloc & Self::sr_mask(sr) != 0
    }

    /// Allocates the lowest free register not in `reserved` (a mask in
    /// alloc-bit order) and loads `handle` into it.
    pub fn allocate(&mut self, reserved: u32, handle: Handle) -> Result<usize, AdspaceError> {
        let sr = (0..NSEGS)
            .find(|&sr| (self.alloc | reserved) & Self::sr_mask(sr) == 0)
            .ok_or(AdspaceError::Full)?;
        self.alloc |= Self::sr_mask(sr);
        self.srval[sr] = handle.raw();
        Ok(sr)
    }

    /// Loads `handle` into register `sr` and marks it allocated, replacing
    /// what was there (as `as_seth`); returns the previous handle.
    pub fn set(&mut self, sr: usize, handle: Handle) -> Result<Option<Handle>, AdspaceError> {
        Self::check(sr)?;
        let old = self.lookup(sr)?;
        self.alloc |= Self::sr_mask(sr);
        self.srval[sr] = handle.raw();
        Ok(old)
    }

    /// Frees register `sr`, returning its handle.
    pub fn free(&mut self, sr: usize) -> Result<Handle, AdspaceError> {
        Self::check(sr)?;
        let h = self.lookup(sr)?.ok_or(AdspaceError::NotAllocated(sr))?;
        self.alloc &= !Self::sr_mask(sr);
        self.srval[sr] = 0;
        Ok(h)
    }

    /// The handle in register `sr`, if allocated.
    pub fn lookup(&self, sr: usize) -> Result<Option<Handle>, AdspaceError> {
        Self::check(sr)?;
        Ok(self.is_allocated(sr).then_some(Handle(self.srval[sr])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sid::INVLSID;

    fn esid(n: u64) -> Esid {
        Esid::new(n)
    }

    #[test]
    fn handle_bits_are_the_slb_vsid_word_bits() {
        // Power ISA Book III-S, slbmte RS (SLB VSID word): Ks is bit 52, Kp 53, N 54 of
        // the VSID doubleword; the 256 MB VSID ends at bit 51.
        assert_eq!(HANDLE_KS, 1 << (63 - 52));
        assert_eq!(HANDLE_KP, 1 << (63 - 53));
        assert_eq!(HANDLE_N, 1 << (63 - 54));
        assert_eq!(1u64 << HANDLE_SID_SHIFT, 1 << (63 - 51));
    }

    #[test]
    fn handles_round_trip_and_invlsid_is_never_one() {
        let sid = Sid::new(0x1234);
        let h = Handle::new(sid, SegKey::UNPRIV, true);
        assert_eq!(h.raw(), 0x1234 << 12 | 0x800 | 0x400 | 0x200);
        assert_eq!(h.sid(), sid);
        assert_eq!(h.key(), SegKey::UNPRIV);
        assert!(h.no_exec());
        assert_eq!(Handle::from_raw(h.raw()), Ok(h));
        assert_eq!(
            Handle::from_raw(INVLSID),
            Err(HandleError::StrayBits(INVLSID))
        );
        assert_eq!(
            Handle::from_raw(INVLSID << 12),
            Err(HandleError::BadSid(INVLSID))
        );
        assert_eq!(Handle::from_raw(0x800), Err(HandleError::BadSid(0)));
        let p = h.with_key(SegKey::PRIV);
        assert_eq!(p.raw(), 0x1234 << 12 | 0x200);
        assert_eq!(
            Handle::new(Sid::new(INVLSID - 1), SegKey::UNPRIV, true)
                .sid()
                .as_u64(),
            INVLSID - 1
        );
    }

    #[test]
    fn keys_follow_the_isa_rule() {
        assert!(!SegKey::KERNEL.effective(false));
        assert!(SegKey::KERNEL.effective(true));
        assert!(!SegKey::PRIV.effective(true));
        assert_eq!(SegKey::from_vmkey(0), Some(SegKey::PRIV));
        assert_eq!(SegKey::from_vmkey(1), Some(SegKey::UNPRIV));
        assert_eq!(SegKey::from_vmkey(4), None);
    }

    #[test]
    fn esid_map_insert_remove_find() {
        let h = Handle::new(Sid::new(9), SegKey::PRIV, false);
        let mut a = AddressSpace::new();
        a.insert(esid(3), SegmentMapping::new(h, ForkAction::Share))
            .unwrap();
        a.insert(esid(4), SegmentMapping::new(h, ForkAction::Share))
            .unwrap();
        assert_eq!(
            a.insert(esid(3), SegmentMapping::new(h, ForkAction::Drop)),
            Err(AdspaceError::Occupied(esid(3)))
        );
        assert_eq!(a.get(esid(3)).unwrap().fork, ForkAction::Share);
        assert_eq!(a.find_free(3..10), Some(esid(5)));
        assert_eq!(a.find_free(0..10), Some(esid(0)));
        assert_eq!(a.find_free(3..5), None);
        assert_eq!(a.find_free_run(0..10, 3), Some(esid(0)));
        assert_eq!(a.find_free_run(2..10, 3), Some(esid(5)));
        assert_eq!(a.find_free_run(2..7, 3), None);
        assert_eq!(
            a.find_free_run(ESID_COUNT - 2..u64::MAX, 2),
            Some(esid(ESID_COUNT - 2))
        );
        assert_eq!(a.find_free(ESID_COUNT..u64::MAX), None);
        assert_eq!(
            a.find_free(ESID_COUNT - 1..u64::MAX),
            Some(esid(ESID_COUNT - 1))
        );
        assert_eq!(a.remove(esid(3)).unwrap().handle, h);
        assert_eq!(a.remove(esid(3)), Err(AdspaceError::NotMapped(esid(3))));
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn adspace32_alloc_bits_count_from_the_msb() {
        assert_eq!(Adspace32::sr_mask(0), 0x8000_0000);
        assert_eq!(Adspace32::sr_mask(15), 0x0001_0000);
        let h = Handle::new(Sid::new(77), SegKey::UNPRIV, false);
        let mut a = Adspace32::new();
        // AIX never hands out 0, 1, 2 and 14.
        let reserved = [0, 1, 2, 14]
            .iter()
            .fold(0, |m, &sr| m | Adspace32::sr_mask(sr));
        assert_eq!(a.allocate(reserved, h), Ok(3));
        assert_eq!(a.alloc, 0x1000_0000);
        assert_eq!(a.lookup(3), Ok(Some(h)));
        assert_eq!(a.lookup(4), Ok(None));
        assert_eq!(a.lookup(16), Err(AdspaceError::BadRegister(16)));
        for _ in 4..14 {
            a.allocate(reserved, h).unwrap();
        }
        assert_eq!(a.allocate(reserved, h), Ok(15));
        let before = a;
        assert_eq!(a.allocate(reserved, h), Err(AdspaceError::Full));
        assert_eq!(a, before);
        assert_eq!(a.free(3), Ok(h));
        assert_eq!(a.free(3), Err(AdspaceError::NotAllocated(3)));
        assert_eq!(a.free(0), Err(AdspaceError::NotAllocated(0)));
        assert_eq!(a.set(3, h), Ok(None));
        assert_eq!(a.set(3, h.with_key(SegKey::PRIV)), Ok(Some(h)));
    }

    #[test]
    fn adspace32_view_of_an_address_space() {
        let h = Handle::new(Sid::new(5), SegKey::PRIV, false);
        let mut a = AddressSpace::new();
        a.insert(esid(1), SegmentMapping::new(h, ForkAction::Share))
            .unwrap();
        a.insert(esid(16), SegmentMapping::new(h, ForkAction::Share))
            .unwrap();
        let v = a.adspace32();
        assert_eq!(v.alloc, 0x4000_0000);
        assert_eq!(v.srval[1], h.raw());
        assert_eq!(core::mem::size_of::<Adspace32>(), 8 + 16 * 8);
    }
}
