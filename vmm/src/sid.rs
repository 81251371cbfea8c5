//! Segment IDs: allocation, quarantine before reuse, and the SID → VSID
//! scramble.
//!
//! A SID names a segment for its whole life (AIX `vm_makesegment`); its
//! VSID is `scramble(SID)`. SIDs live in a 35-bit space; 0 is never used
//! (it would scramble to VSID 0) and [`INVLSID`] = 2^35 − 1 = [`SIDMAX`]
//! is the "no segment" marker. Kernel and user segments come from disjoint
//! ranges so a kernel VSID can be recognised without a table.
//!
//! # Reuse rule
//!
//! A SID may be handed out again only when no translation made for the old
//! segment can still be used: otherwise a new segment with the recycled
//! SID would see the old segment's pages through leftover HPTEs. Freeing
//! therefore does not make a SID reusable; it puts it in quarantine:
//!
//! 1. The owner deletes the segment: it removes every HPTE it recorded
//!    ([`crate::hpt::HptManager::remove`]) and invalidates SLB entries for
//!    it, then calls [`SidAllocator::free`]. The SID is quarantined.
//! 2. The SID becomes reusable by either
//!    * [`SidAllocator::release`] — the owner vouches that no HPTE can
//!      remain (e.g. the segment never had a page in the HPT), or
//!    * [`SidAllocator::release_purged`] — one sweep over the whole HPT
//!      removes every entry whose VSID belongs to a quarantined SID
//!      (catching any the owner lost track of), then releases them all.
//!      Batching amortises the sweep over many deletions.
//!
//! Released SIDs are reused first-in first-out, to keep a recycled VSID
//! out of the caches as long as possible: only after the range's
//! never-used SIDs run out, or once [`REUSE_DEPTH`] released SIDs wait.
//! The second rule bounds the queue, the allocator's only memory per freed
//! SID: without it every segment ever deleted would cost a kernel's heap
//! eight bytes for good, the ranges being far larger than any heap.

use alloc::collections::{BTreeSet, VecDeque};
use alloc::vec::Vec;
use core::ops::Range;

use arch_ppc64::addr::Vsid;

use crate::hpt::HptManager;
use crate::platform::{HptBackend, HptError};

/// Number of SID bits.
pub const SID_BITS: u32 = 35;
/// Largest SID value, 2^35 − 1; equal to [`INVLSID`] and never allocated.
pub const SIDMAX: u64 = (1 << SID_BITS) - 1;
/// The invalid SID ("no segment"), AIX `INVLSID`.
pub const INVLSID: u64 = 0x7_FFFF_FFFF;

/// Modulus of the scramble: 2^35 − 1 = 31 × 71 × 127 × 122921.
const MODULUS: u64 = SIDMAX;
/// Multiplier of the scramble: the 24-bit prime Linux also uses
/// (`VSID_MULTIPLIER_256M`, 12538073); it is coprime to 2^35 − 1, so
/// multiplying by it permutes the residues.
pub const VSID_MULTIPLIER: u64 = 12_538_073;
/// Its inverse modulo 2^35 − 1 (`VSID_MULTIPLIER * inverse ≡ 1`).
pub const VSID_MULTIPLIER_INVERSE: u64 = 24_243_402_935;

/// Default kernel SIDs: `1..2^20`.
pub const KERNEL_SIDS: Range<u64> = 1..1 << 20;
/// Default user SIDs: `2^20..INVLSID`.
pub const USER_SIDS: Range<u64> = 1 << 20..INVLSID;

/// Released SIDs a range keeps waiting before it reuses the oldest even
/// though never-used ones remain: a recycled VSID has then been out of use
/// while this many other segments were deleted.
pub const REUSE_DEPTH: usize = 1024;

/// `sid * VSID_MULTIPLIER mod (2^35 − 1)`.
///
/// Because the multiplier is coprime to the modulus this is a bijection on
/// `0..2^35-1`; it maps 0 to 0 and only 0, so every valid SID (1..INVLSID)
/// gets a distinct non-zero VSID below 2^35 — inside the 2^37 VSIDs
/// (65-bit VA) even the smallest Book III-S implementation supports. The
/// multiplication spreads consecutive SIDs over the whole hash space, so
/// their primary PTEGs differ.
pub const fn scramble(sid: u64) -> u64 {
    // sid < 2^35, multiplier < 2^24: the product fits in 59 bits.
    (sid % MODULUS) * VSID_MULTIPLIER % MODULUS
}

/// Inverse of [`scramble`]: `vsid * VSID_MULTIPLIER_INVERSE mod (2^35 − 1)`.
pub const fn unscramble(vsid: u64) -> u64 {
    let p = (vsid % MODULUS) as u128 * VSID_MULTIPLIER_INVERSE as u128;
    (p % MODULUS as u128) as u64
}

/// A segment ID: `1..INVLSID`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid(u64);

impl Sid {
    /// `None` for 0, [`INVLSID`] and anything wider than 35 bits.
    pub const fn try_new(sid: u64) -> Option<Sid> {
        if sid != 0 && sid < INVLSID {
            Some(Sid(sid))
        } else {
            None
        }
    }

    /// # Panics
    ///
    /// Panics if `sid` is 0, [`INVLSID`] or wider than 35 bits.
    pub const fn new(sid: u64) -> Sid {
        match Sid::try_new(sid) {
            Some(s) => s,
            None => panic!("not a valid SID"),
        }
    }

    /// The raw value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The segment's VSID, [`scramble`]d.
    pub const fn vsid(self) -> Vsid {
        Vsid::new(scramble(self.0))
    }

    /// The SID whose VSID is `vsid`, if any.
    pub const fn from_vsid(vsid: Vsid) -> Option<Sid> {
        if vsid.as_u64() >= MODULUS {
            return None;
        }
        Sid::try_new(unscramble(vsid.as_u64()))
    }
}

/// Which range a SID comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SidKind {
    /// Kernel segments.
    Kernel,
    /// User (process) segments.
    User,
}

/// Why a SID operation was refused. The allocator is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SidError {
    /// Every SID of the range is live or quarantined.
    Exhausted(SidKind),
    /// `free` of a SID that is not allocated.
    NotAllocated(Sid),
    /// `release` of a SID that is not in quarantine.
    NotQuarantined(Sid),
    /// Ranges empty, overlapping, or outside `1..INVLSID`.
    BadRanges,
}

struct Pool {
    range: Range<u64>,
    next: u64,
    reusable: VecDeque<u64>,
}

impl Pool {
    fn new(range: Range<u64>) -> Pool {
        Pool {
            next: range.start,
            range,
            reusable: VecDeque::new(),
        }
    }

    fn take(&mut self) -> Option<u64> {
        if self.next < self.range.end && self.reusable.len() < REUSE_DEPTH {
            self.next += 1;
            Some(self.next - 1)
        } else {
            self.reusable.pop_front()
        }
    }
}

/// The live SIDs: an open-addressing hash set with linear probing, so
/// that allocating and freeing a SID (once per segment, and once per
/// `vm_guatt` view) costs a multiply and a probe or two rather than a
/// B-tree insert and remove. SIDs come from sequential ranges, so they are
/// spread with Fibonacci hashing (2^64 divided by the golden ratio); 0,
/// never a valid SID, marks an empty slot; removal shifts the rest of the
/// probe run back instead of leaving tombstones. The table stays between
/// an eighth and a half full (at least [`SidSet::MIN`] slots once used).
#[derive(Default)]
struct SidSet {
    slots: Vec<u64>,
    len: usize,
}

impl SidSet {
    const MIN: usize = 16;

    fn home(&self, sid: u64) -> usize {
        let bits = self.slots.len().trailing_zeros();
        (sid.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
    }

    /// The slot holding `sid`, or the empty slot ending its probe run.
    fn probe(&self, sid: u64) -> (usize, bool) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(sid);
        loop {
            match self.slots[i] {
                0 => return (i, false),
                s if s == sid => return (i, true),
                _ => i = (i + 1) & mask,
            }
        }
    }

    fn contains(&self, sid: u64) -> bool {
        !self.slots.is_empty() && self.probe(sid).1
    }

    /// Adds `sid` (never 0); false if it was there.
    fn insert(&mut self, sid: u64) -> bool {
        debug_assert_ne!(sid, 0);
        if (self.len + 1) * 2 > self.slots.len() {
            self.resize((self.slots.len() * 2).max(Self::MIN));
        }
        let (i, found) = self.probe(sid);
        if !found {
            self.slots[i] = sid;
            self.len += 1;
        }
        !found
    }

    /// Takes `sid` out; false if it was not there.
    fn remove(&mut self, sid: u64) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let (mut hole, found) = self.probe(sid);
        if !found {
            return false;
        }
        // Backward shift: move up each later member of the run whose home
        // does not lie (cyclically) between the hole and it.
        let mask = self.slots.len() - 1;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let s = self.slots[j];
            if s == 0 {
                break;
            }
            let home = self.home(s);
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.slots[hole] = s;
                hole = j;
            }
        }
        self.slots[hole] = 0;
        self.len -= 1;
        if self.len * 8 < self.slots.len() && self.slots.len() > Self::MIN {
            self.resize(self.slots.len() / 2);
        }
        true
    }

    fn resize(&mut self, capacity: usize) {
        let old = core::mem::replace(&mut self.slots, alloc::vec![0; capacity]);
        for sid in old.into_iter().filter(|&s| s != 0) {
            let (i, _) = self.probe(sid);
            self.slots[i] = sid;
        }
    }
}

/// Hands out SIDs from a kernel and a user range and enforces the reuse
/// rule (see the module documentation).
pub struct SidAllocator {
    kernel: Pool,
    user: Pool,
    live: SidSet,
    quarantine: BTreeSet<u64>,
}

impl core::fmt::Debug for SidAllocator {
    /// How many SIDs are live and quarantined, not which.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SidAllocator")
            .field("live", &self.live_count())
            .field("quarantined", &self.quarantine.len())
            .finish_non_exhaustive()
    }
}

impl Default for SidAllocator {
    fn default() -> Self {
        SidAllocator::new()
    }
}

impl SidAllocator {
    /// An allocator over [`KERNEL_SIDS`] and [`USER_SIDS`].
    pub fn new() -> SidAllocator {
        SidAllocator {
            kernel: Pool::new(KERNEL_SIDS),
            user: Pool::new(USER_SIDS),
            live: SidSet::default(),
            quarantine: BTreeSet::new(),
        }
    }

    /// An allocator over the given ranges (non-empty, disjoint, inside
    /// `1..INVLSID`).
    pub fn with_ranges(kernel: Range<u64>, user: Range<u64>) -> Result<SidAllocator, SidError> {
        let ok = |r: &Range<u64>| r.start >= 1 && r.start < r.end && r.end <= INVLSID;
        let disjoint = kernel.end <= user.start || user.end <= kernel.start;
        if !ok(&kernel) || !ok(&user) || !disjoint {
            return Err(SidError::BadRanges);
        }
        Ok(SidAllocator {
            kernel: Pool::new(kernel),
            user: Pool::new(user),
            live: SidSet::default(),
            quarantine: BTreeSet::new(),
        })
    }

    fn pool(&mut self, kind: SidKind) -> &mut Pool {
        match kind {
            SidKind::Kernel => &mut self.kernel,
            SidKind::User => &mut self.user,
        }
    }

    /// A fresh SID of `kind`: never used before if any such is left,
    /// otherwise the longest-released one.
    pub fn allocate(&mut self, kind: SidKind) -> Result<Sid, SidError> {
        let raw = self.pool(kind).take().ok_or(SidError::Exhausted(kind))?;
        self.live.insert(raw);
        Ok(Sid(raw))
    }

    /// Ends `sid`'s life and quarantines it. The caller has removed the
    /// HPTEs and SLB entries it knows of.
    pub fn free(&mut self, sid: Sid) -> Result<(), SidError> {
        if !self.live.remove(sid.0) {
            return Err(SidError::NotAllocated(sid));
        }
        self.quarantine.insert(sid.0);
        Ok(())
    }

    /// Makes a quarantined SID reusable on the owner's word that no HPTE
    /// for its VSID remains.
    pub fn release(&mut self, sid: Sid) -> Result<(), SidError> {
        if !self.quarantine.remove(&sid.0) {
            return Err(SidError::NotQuarantined(sid));
        }
        let kind = self.kind_of(sid);
        self.pool(kind).reusable.push_back(sid.0);
        Ok(())
    }

    /// [`SidAllocator::free`] and [`SidAllocator::release`] in one step,
    /// for an owner that has already removed every HPTE of `sid`: the SID
    /// goes straight to the reuse queue without passing through quarantine.
    pub fn retire(&mut self, sid: Sid) -> Result<(), SidError> {
        if !self.live.remove(sid.0) {
            return Err(SidError::NotAllocated(sid));
        }
        let kind = self.kind_of(sid);
        self.pool(kind).reusable.push_back(sid.0);
        Ok(())
    }

    /// Sweeps `hpt` for entries of quarantined SIDs, removes them, and
    /// releases every quarantined SID. Returns `(released SIDs, removed
    /// HPTEs)`. On a backend error nothing is released.
    pub fn release_purged<B: HptBackend>(
        &mut self,
        hpt: &mut HptManager<B>,
    ) -> Result<(usize, usize), HptError> {
        if self.quarantine.is_empty() {
            return Ok((0, 0));
        }
        let quarantine = &self.quarantine;
        let removed = hpt.purge(|vsid| match Sid::from_vsid(vsid) {
            Some(s) => quarantine.contains(&s.0),
            None => false,
        })?;
        let sids: alloc::vec::Vec<u64> = self.quarantine.iter().copied().collect();
        for raw in &sids {
            // Cannot fail: every element is quarantined.
            let _ = self.release(Sid(*raw));
        }
        Ok((sids.len(), removed))
    }

    /// Which range `sid` belongs to (by value; it need not be live).
    pub fn kind_of(&self, sid: Sid) -> SidKind {
        if self.kernel.range.contains(&sid.0) {
            SidKind::Kernel
        } else {
            SidKind::User
        }
    }

    /// Whether `sid` is allocated.
    pub fn is_live(&self, sid: Sid) -> bool {
        self.live.contains(sid.0)
    }

    /// Whether `sid` is freed but not yet reusable.
    pub fn is_quarantined(&self, sid: Sid) -> bool {
        self.quarantine.contains(&sid.0)
    }

    /// The quarantined SIDs, ascending.
    pub fn quarantined(&self) -> impl Iterator<Item = Sid> + '_ {
        self.quarantine.iter().map(|&s| Sid(s))
    }

    /// Number of allocated SIDs.
    pub fn live_count(&self) -> usize {
        self.live.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hpt::{PageMapping, VirtualPage};
    use crate::native::NativeHpt;
    use alloc::vec::Vec;
    use arch_ppc64::addr::PhysAddr;
    use arch_ppc64::structures::hpte::Pp;
    use arch_ppc64::structures::{PageSize, SegmentSize};
    use proptest::prelude::*;

    #[test]
    fn constants() {
        assert_eq!(SIDMAX, INVLSID);
        assert_eq!(MODULUS, 31 * 71 * 127 * 122_921);
        // The inverse really is one: this makes scramble a bijection.
        assert_eq!(
            (VSID_MULTIPLIER as u128 * VSID_MULTIPLIER_INVERSE as u128) % MODULUS as u128,
            1
        );
        // Coprime with every prime factor of the modulus.
        for p in [31, 71, 127, 122_921] {
            assert_ne!(VSID_MULTIPLIER % p, 0);
        }
    }

    #[test]
    fn scramble_worked_examples() {
        // 1 * 12538073 = 12538073 (below the modulus).
        assert_eq!(scramble(1), 12_538_073);
        assert_eq!(scramble(2), 25_076_146);
        // 2^35 - 2 ≡ -1, so it maps to modulus - multiplier
        // = 34359738367 - 12538073 = 34347200294.
        assert_eq!(scramble(INVLSID - 1), 34_347_200_294);
        // 2741 * 12538073 = 34366858093 = 1 * (2^35 - 1) + 7119726.
        assert_eq!(scramble(2741), 7_119_726);
        assert_eq!(scramble(0), 0);
        assert_eq!(Sid::new(1).vsid(), Vsid::new(12_538_073));
    }

    proptest! {
        /// The live set against a B-tree set: inserts, removes and lookups
        /// of SIDs drawn from a small window (so probe runs collide and
        /// wrap) and from far apart, through growth and shrinking.
        #[test]
        fn live_set_behaves_as_a_set(
            ops in proptest::collection::vec((0u8..3, 1u64..200, any::<bool>()), 1..600),
        ) {
            let mut set = SidSet::default();
            let mut model = BTreeSet::new();
            for (op, low, far) in ops {
                let sid = if far { low << 28 } else { low };
                match op {
                    0 => prop_assert_eq!(set.insert(sid), model.insert(sid)),
                    1 => prop_assert_eq!(set.remove(sid), model.remove(&sid)),
                    _ => prop_assert_eq!(set.contains(sid), model.contains(&sid)),
                }
                prop_assert_eq!(set.len, model.len());
                prop_assert!(set.slots.is_empty() || set.len * 2 <= set.slots.len());
            }
            for sid in model {
                prop_assert!(set.contains(sid));
            }
        }

        #[test]
        fn scramble_is_injective_and_never_zero(a in 1u64..INVLSID, b in 1u64..INVLSID) {
            let va = scramble(a);
            prop_assert!(va != 0 && va < MODULUS);
            prop_assert_eq!(unscramble(va), a);
            prop_assert_eq!(Sid::from_vsid(Sid::new(a).vsid()), Some(Sid::new(a)));
            if a != b {
                prop_assert_ne!(va, scramble(b));
            }
        }
    }

    #[test]
    fn sid_range_checks() {
        assert!(Sid::try_new(0).is_none());
        assert!(Sid::try_new(INVLSID).is_none());
        assert!(Sid::try_new(1 << 35).is_none());
        assert!(Sid::try_new(INVLSID - 1).is_some());
        assert_eq!(Sid::from_vsid(Vsid::new(0)), None);
        assert_eq!(Sid::from_vsid(Vsid::new(MODULUS)), None);
    }

    #[test]
    fn kernel_and_user_ranges_are_separate() {
        let mut a = SidAllocator::new();
        let k = a.allocate(SidKind::Kernel).unwrap();
        let u = a.allocate(SidKind::User).unwrap();
        assert!(KERNEL_SIDS.contains(&k.as_u64()));
        assert!(USER_SIDS.contains(&u.as_u64()));
        assert_eq!(a.kind_of(k), SidKind::Kernel);
        assert_eq!(a.kind_of(u), SidKind::User);
        assert_ne!(k.vsid(), u.vsid());
        assert!(SidAllocator::with_ranges(1..10, 5..20).is_err());
        assert!(SidAllocator::with_ranges(0..10, 10..20).is_err());
        assert!(SidAllocator::with_ranges(1..10, 10..INVLSID + 1).is_err());
        assert!(SidAllocator::with_ranges(1..1, 10..20).is_err());
    }

    #[test]
    fn the_last_sids_never_include_invlsid() {
        let mut a = SidAllocator::with_ranges(1..2, INVLSID - 3..INVLSID).unwrap();
        let got: Vec<u64> = (0..3)
            .map(|_| a.allocate(SidKind::User).unwrap().as_u64())
            .collect();
        assert_eq!(got, [INVLSID - 3, INVLSID - 2, INVLSID - 1]);
        assert_eq!(
            a.allocate(SidKind::User),
            Err(SidError::Exhausted(SidKind::User))
        );
    }

    #[test]
    fn freed_sids_are_quarantined_until_released() {
        let mut a = SidAllocator::with_ranges(1..3, 100..102).unwrap();
        let s1 = a.allocate(SidKind::User).unwrap();
        let s2 = a.allocate(SidKind::User).unwrap();
        assert_eq!(
            a.allocate(SidKind::User),
            Err(SidError::Exhausted(SidKind::User))
        );
        a.free(s1).unwrap();
        assert!(a.is_quarantined(s1) && !a.is_live(s1));
        assert_eq!(a.free(s1), Err(SidError::NotAllocated(s1)));
        // Quarantined, so still exhausted.
        assert_eq!(
            a.allocate(SidKind::User),
            Err(SidError::Exhausted(SidKind::User))
        );
        assert_eq!(a.release(s2), Err(SidError::NotQuarantined(s2)));
        a.release(s1).unwrap();
        assert_eq!(a.allocate(SidKind::User), Ok(s1));
        assert_eq!(a.live_count(), 2);
        // Kernel range is unaffected.
        assert_eq!(a.allocate(SidKind::Kernel), Ok(Sid::new(1)));
    }

    #[test]
    fn retire_is_free_then_release() {
        let mut a = SidAllocator::with_ranges(1..3, 100..102).unwrap();
        let s1 = a.allocate(SidKind::User).unwrap();
        let s2 = a.allocate(SidKind::User).unwrap();
        a.retire(s1).unwrap();
        assert!(!a.is_live(s1) && !a.is_quarantined(s1));
        assert_eq!(a.retire(s1), Err(SidError::NotAllocated(s1)));
        assert_eq!(a.live_count(), 1);
        // Reusable at once, as after free + release.
        assert_eq!(a.allocate(SidKind::User), Ok(s1));
        a.free(s2).unwrap();
        assert_eq!(a.retire(s2), Err(SidError::NotAllocated(s2)));
        assert!(a.is_quarantined(s2));
    }

    #[test]
    fn reuse_is_fifo_after_fresh_sids_run_out() {
        let mut a = SidAllocator::with_ranges(1..2, 10..14).unwrap();
        let s: Vec<Sid> = (0..2).map(|_| a.allocate(SidKind::User).unwrap()).collect();
        a.free(s[1]).unwrap();
        a.free(s[0]).unwrap();
        a.release(s[1]).unwrap();
        a.release(s[0]).unwrap();
        // Fresh 12 and 13 first, then 11 (released first), then 10.
        let next: Vec<u64> = (0..4)
            .map(|_| a.allocate(SidKind::User).unwrap().as_u64())
            .collect();
        assert_eq!(next, [12, 13, 11, 10]);
    }

    #[test]
    fn released_sids_are_reused_once_reuse_depth_of_them_wait() {
        let mut a = SidAllocator::new();
        let s: Vec<Sid> = (0..REUSE_DEPTH + 1)
            .map(|_| a.allocate(SidKind::User).unwrap())
            .collect();
        let fresh = s[REUSE_DEPTH].as_u64() + 1;
        for &x in &s[..REUSE_DEPTH - 1] {
            a.free(x).unwrap();
            a.release(x).unwrap();
        }
        // One short of the depth: never-used SIDs still come first.
        let n = a.allocate(SidKind::User).unwrap();
        assert_eq!(n.as_u64(), fresh);
        a.free(n).unwrap();
        a.release(n).unwrap();
        // At the depth: the longest-released one, and the queue stays put.
        assert_eq!(a.allocate(SidKind::User), Ok(s[0]));
        assert_eq!(a.allocate(SidKind::User).unwrap().as_u64(), fresh + 1);
        assert_eq!(a.user.reusable.len(), REUSE_DEPTH - 1);
    }

    #[test]
    fn purge_removes_leftover_hptes_before_release() {
        let mut hpt = HptManager::new(NativeHpt::with_size_shift(18).unwrap()).unwrap();
        let mut a = SidAllocator::new();
        let dead = a.allocate(SidKind::User).unwrap();
        let alive = a.allocate(SidKind::User).unwrap();
        let page = |sid: Sid, i: u64| {
            VirtualPage::from_offset(sid.vsid(), i << 12, SegmentSize::M256, PageSize::K4).unwrap()
        };
        for i in 0..10 {
            for s in [dead, alive] {
                hpt.insert(&PageMapping::new(
                    page(s, i),
                    PhysAddr::new(i << 12),
                    Pp::RW_RW,
                ))
                .unwrap();
            }
        }
        // The owner "forgot" its HPTEs and frees the SID.
        a.free(dead).unwrap();
        assert_eq!(a.quarantined().collect::<Vec<_>>(), [dead]);
        assert_eq!(a.release_purged(&mut hpt), Ok((1, 10)));
        assert!(!a.is_quarantined(dead));
        for i in 0..10 {
            assert!(hpt.lookup(page(dead, i)).unwrap().is_none());
            assert!(hpt.lookup(page(alive, i)).unwrap().is_some());
        }
        assert_eq!(a.release_purged(&mut hpt), Ok((0, 0)));
    }
}
