//! Range-checked address and index newtypes of the Book III-S hashed MMU.
//!
//! Each type has a `new` that panics on an out-of-range value (usable in
//! `const` context, so a bad constant fails the build) and a `try_new` that
//! returns `None` instead. Inside a valid value all arithmetic is exact.
//!
//! Sizes follow Power ISA v2.07 Book III-S "Storage Addressing" (78-bit virtual address,
//! 60-bit real address) as QEMU's `mmu-hash64` implements them.

use core::fmt;

use crate::structures::{PageSize, SegmentSize};

/// A 64-bit effective address. Every 64-bit value is a valid EA.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(transparent)]
pub struct EffectiveAddress(u64);

impl EffectiveAddress {
    /// Wraps a raw 64-bit effective address.
    #[inline]
    pub const fn new(ea: u64) -> Self {
        EffectiveAddress(ea)
    }

    /// The raw value.
    #[inline]
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The ESID of the 256 MB segment containing this address (EA bits 0:35).
    pub const fn esid(self) -> Esid {
        Esid(self.0 >> 28)
    }

    /// Byte offset of this address within its 256 MB segment (EA bits 36:63).
    pub const fn segment_offset(self) -> u64 {
        self.0 & SegmentSize::M256.offset_mask()
    }

    /// Byte offset of this address within its segment of size `ssize`.
    pub const fn segment_offset_in(self, ssize: SegmentSize) -> u64 {
        self.0 & ssize.offset_mask()
    }

    /// Page number of this address within its segment of size `ssize` for
    /// pages of size `psize`: `offset >> p`, the term the hash function uses.
    pub const fn page_in_segment(self, ssize: SegmentSize, psize: PageSize) -> u64 {
        self.segment_offset_in(ssize) >> psize.shift()
    }

    /// Byte offset of this address within its page of size `psize`.
    pub const fn page_offset(self, psize: PageSize) -> u64 {
        self.0 & psize.offset_mask()
    }

    /// This address rounded down to a `psize` page boundary.
    pub const fn page_base(self, psize: PageSize) -> EffectiveAddress {
        EffectiveAddress(self.0 & !psize.offset_mask())
    }

    /// `self + bytes`, or `None` on 64-bit overflow.
    pub const fn checked_add(self, bytes: u64) -> Option<EffectiveAddress> {
        match self.0.checked_add(bytes) {
            Some(v) => Some(EffectiveAddress(v)),
            None => None,
        }
    }
}

impl fmt::Debug for EffectiveAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EffectiveAddress({:#x})", self.0)
    }
}

/// Effective segment ID in 256 MB units: `EA >> 28`, 36 bits.
///
/// A 1 TB segment is named by the ESID of its first 256 MB, i.e. an `Esid`
/// whose low 12 bits are zero (the ISA compares only EA bits 0:23 for 1 TB
/// segments and requires the rest of the SLB ESID field to be zero).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(transparent)]
pub struct Esid(u64);

impl Esid {
    /// Number of ESID bits (EA bits 0:35).
    pub const BITS: u32 = 36;
    /// Largest ESID.
    pub const MAX: u64 = (1 << Self::BITS) - 1;

    /// # Panics
    ///
    /// Panics if `esid` does not fit in 36 bits.
    #[inline]
    pub const fn new(esid: u64) -> Self {
        match Self::try_new(esid) {
            Some(e) => e,
            None => panic!("ESID wider than 36 bits"),
        }
    }

    /// `None` if `esid` does not fit in 36 bits.
    #[inline]
    pub const fn try_new(esid: u64) -> Option<Self> {
        if esid <= Self::MAX {
            Some(Esid(esid))
        } else {
            None
        }
    }

    /// The 256 MB ESID of the segment containing `ea`.
    pub const fn of(ea: EffectiveAddress) -> Self {
        ea.esid()
    }

    /// The ESID naming the segment of size `ssize` that contains `ea`
    /// (low 12 bits cleared for 1 TB segments).
    pub const fn of_segment(ea: EffectiveAddress, ssize: SegmentSize) -> Self {
        Esid((ea.0 & !ssize.offset_mask()) >> 28)
    }

    /// The raw value.
    #[inline]
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// First effective address of the segment.
    #[inline]
    pub const fn base(self) -> EffectiveAddress {
        EffectiveAddress(self.0 << 28)
    }

    /// Whether this ESID can name a segment of size `ssize` (for 1 TB the
    /// low 12 bits must be zero).
    pub const fn is_aligned_for(self, ssize: SegmentSize) -> bool {
        (self.0 << 28) & ssize.offset_mask() == 0
    }
}

impl fmt::Debug for Esid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Esid({:#x})", self.0)
    }
}

/// Virtual segment ID: at most 50 bits.
///
/// The ISA's virtual address is 78 bits, `VSID || segment offset`, so a
/// 256 MB segment can carry a 50-bit VSID and a 1 TB segment a 38-bit VSID
/// (see [`SegmentSize::vsid_bits`]; QEMU masks the SLB VSID field the same
/// way). Real processors implement fewer VA bits (POWER8/9: 68 bits, VSID
/// ≤ 40 bits for 256 MB segments); the kernel's SID scramble stays far below
/// that. VSID 0 is valid for the hardware but never used by this project.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(transparent)]
pub struct Vsid(u64);

impl Vsid {
    /// Number of VSID bits for 256 MB segments.
    pub const BITS: u32 = 50;
    /// Largest VSID.
    pub const MAX: u64 = (1 << Self::BITS) - 1;

    /// # Panics
    ///
    /// Panics if `vsid` does not fit in 50 bits.
    #[inline]
    pub const fn new(vsid: u64) -> Self {
        match Self::try_new(vsid) {
            Some(v) => v,
            None => panic!("VSID wider than 50 bits"),
        }
    }

    /// `None` if `vsid` does not fit in 50 bits.
    #[inline]
    pub const fn try_new(vsid: u64) -> Option<Self> {
        if vsid <= Self::MAX {
            Some(Vsid(vsid))
        } else {
            None
        }
    }

    /// The raw value.
    #[inline]
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Whether this VSID fits a segment of size `ssize` (38 bits for 1 TB).
    pub const fn fits(self, ssize: SegmentSize) -> bool {
        self.0 >> ssize.vsid_bits() == 0
    }
}

impl fmt::Debug for Vsid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Vsid({:#x})", self.0)
    }
}

/// Index of a page table entry group (128 bytes, 8 HPTEs) in the hashed
/// page table.
///
/// The largest HPT is 2^46 bytes (QEMU's `H_RESIZE_HPT` limit; SDR1's
/// HTABSIZE allows the same), i.e. 2^39 PTEGs. Whether an index is inside a
/// particular table is the table's check.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(transparent)]
pub struct PtegIndex(u64);

impl PtegIndex {
    /// Number of bits of the largest PTEG index.
    pub const BITS: u32 = 39;
    /// Largest PTEG index.
    pub const MAX: u64 = (1 << Self::BITS) - 1;

    /// # Panics
    ///
    /// Panics if `index` does not fit in 39 bits.
    #[inline]
    pub const fn new(index: u64) -> Self {
        match Self::try_new(index) {
            Some(i) => i,
            None => panic!("PTEG index wider than 39 bits"),
        }
    }

    /// `None` if `index` does not fit in 39 bits.
    #[inline]
    pub const fn try_new(index: u64) -> Option<Self> {
        if index <= Self::MAX {
            Some(PtegIndex(index))
        } else {
            None
        }
    }

    /// The raw value.
    #[inline]
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The PTE index of `slot` (0..8) in this group.
    ///
    /// # Panics
    ///
    /// Panics if `slot >= 8`.
    #[inline]
    pub const fn ptex(self, slot: u8) -> Ptex {
        Ptex::new(self, slot)
    }

    /// Byte offset of the group from the start of the table (`index * 128`).
    pub const fn byte_offset(self) -> u64 {
        self.0 << 7
    }
}

impl fmt::Debug for PtegIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PtegIndex({:#x})", self.0)
    }
}

/// PTE index: `PTEG index * 8 + slot`, the number PAPR hcalls take.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(transparent)]
pub struct Ptex(u64);

impl Ptex {
    /// Number of HPTE slots in one PTEG.
    pub const SLOTS_PER_PTEG: u8 = 8;
    /// Largest PTE index.
    pub const MAX: u64 = (PtegIndex::MAX << 3) | 7;

    /// The PTE index of `slot` in `group`.
    ///
    /// # Panics
    ///
    /// Panics if `slot >= 8`.
    #[inline]
    pub const fn new(group: PtegIndex, slot: u8) -> Self {
        assert!(slot < Self::SLOTS_PER_PTEG, "HPTE slot must be 0..8");
        Ptex((group.0 << 3) | slot as u64)
    }

    /// Interprets a raw PTE index; `None` if it is beyond the largest table.
    #[inline]
    pub const fn try_from_raw(ptex: u64) -> Option<Self> {
        if ptex <= Self::MAX {
            Some(Ptex(ptex))
        } else {
            None
        }
    }

    /// The raw value.
    #[inline]
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The group this entry belongs to.
    pub const fn pteg(self) -> PtegIndex {
        PtegIndex(self.0 >> 3)
    }

    /// The slot (0..8) within the group.
    pub const fn slot(self) -> u8 {
        (self.0 & 7) as u8
    }

    /// Byte offset of the entry from the start of the table (`ptex * 16`).
    pub const fn byte_offset(self) -> u64 {
        self.0 << 4
    }
}

impl fmt::Debug for Ptex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Ptex({:#x}: pteg {:#x} slot {})",
            self.0,
            self.0 >> 3,
            self.0 & 7
        )
    }
}

/// A real (physical) address: at most 60 bits, the span of the HPTE RPN
/// field (`0x0FFF_FFFF_FFFF_F000`, ISA bits 4:51 of doubleword 1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(transparent)]
pub struct PhysAddr(u64);

impl PhysAddr {
    /// Number of real-address bits.
    pub const BITS: u32 = 60;
    /// Largest real address.
    pub const MAX: u64 = (1 << Self::BITS) - 1;

    /// # Panics
    ///
    /// Panics if `pa` does not fit in 60 bits.
    #[inline]
    pub const fn new(pa: u64) -> Self {
        match Self::try_new(pa) {
            Some(p) => p,
            None => panic!("real address wider than 60 bits"),
        }
    }

    /// `None` if `pa` does not fit in 60 bits.
    #[inline]
    pub const fn try_new(pa: u64) -> Option<Self> {
        if pa <= Self::MAX {
            Some(PhysAddr(pa))
        } else {
            None
        }
    }

    /// The raw value.
    #[inline]
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Whether the address is a multiple of `psize`.
    pub const fn is_aligned(self, psize: PageSize) -> bool {
        self.0 & psize.offset_mask() == 0
    }

    /// Real page number for pages of size `psize` (`pa >> p`).
    pub const fn page_number(self, psize: PageSize) -> u64 {
        self.0 >> psize.shift()
    }

    /// This address rounded down to a `psize` boundary.
    pub const fn page_base(self, psize: PageSize) -> PhysAddr {
        PhysAddr(self.0 & !psize.offset_mask())
    }

    /// `self + bytes`, or `None` if the result is not a valid real address.
    pub const fn checked_add(self, bytes: u64) -> Option<PhysAddr> {
        match self.0.checked_add(bytes) {
            Some(v) => PhysAddr::try_new(v),
            None => None,
        }
    }
}

impl fmt::Debug for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhysAddr({:#x})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ea_split() {
        // 0x0000_0001_2345_6789: ESID = EA >> 28 = 0x12, offset = 0x3456789.
        let ea = EffectiveAddress::new(0x0000_0001_2345_6789);
        assert_eq!(ea.esid(), Esid::new(0x12));
        assert_eq!(Esid::of(ea).base(), EffectiveAddress::new(0x1_2000_0000));
        assert_eq!(ea.segment_offset(), 0x345_6789);
        // 4K page 0x3456 of the segment, byte 0x789 of the page.
        assert_eq!(ea.page_in_segment(SegmentSize::M256, PageSize::K4), 0x3456);
        assert_eq!(ea.page_offset(PageSize::K4), 0x789);
        // 64K page 0x345, byte 0x6789.
        assert_eq!(ea.page_in_segment(SegmentSize::M256, PageSize::K64), 0x345);
        assert_eq!(ea.page_offset(PageSize::K64), 0x6789);
        assert_eq!(ea.page_base(PageSize::K64).as_u64(), 0x1_2345_0000);
        // Whole EA is below 1 TB: ESID of the 1 TB segment is 0.
        assert_eq!(Esid::of_segment(ea, SegmentSize::T1), Esid::new(0));
        assert_eq!(ea.segment_offset_in(SegmentSize::T1), 0x1_2345_6789);
    }

    #[test]
    fn top_of_address_space() {
        let ea = EffectiveAddress::new(u64::MAX);
        assert_eq!(ea.esid().as_u64(), Esid::MAX);
        assert!(ea.checked_add(1).is_none());
        assert!(Esid::try_new(Esid::MAX + 1).is_none());
        let t1 = Esid::of_segment(ea, SegmentSize::T1);
        assert_eq!(t1.as_u64(), 0xF_FFFF_F000);
        assert!(t1.is_aligned_for(SegmentSize::T1));
        assert!(!ea.esid().is_aligned_for(SegmentSize::T1));
        assert!(ea.esid().is_aligned_for(SegmentSize::M256));
    }

    #[test]
    fn vsid_range() {
        assert!(Vsid::try_new(Vsid::MAX).is_some());
        assert!(Vsid::try_new(Vsid::MAX + 1).is_none());
        assert!(Vsid::new((1 << 38) - 1).fits(SegmentSize::T1));
        assert!(!Vsid::new(1 << 38).fits(SegmentSize::T1));
        assert!(Vsid::new(1 << 38).fits(SegmentSize::M256));
    }

    #[test]
    #[should_panic]
    fn vsid_new_panics_out_of_range() {
        let _ = Vsid::new(1 << 50);
    }

    #[test]
    fn ptex_round_trip() {
        let p = Ptex::new(PtegIndex::new(0x1234), 5);
        assert_eq!(p.as_u64(), 0x1234 * 8 + 5);
        assert_eq!(p.pteg(), PtegIndex::new(0x1234));
        assert_eq!(p.slot(), 5);
        assert_eq!(p.byte_offset(), (0x1234 * 8 + 5) * 16);
        assert_eq!(PtegIndex::new(0x1234).byte_offset(), 0x1234 * 128);
        assert_eq!(
            Ptex::try_from_raw(Ptex::MAX),
            Some(PtegIndex::new(PtegIndex::MAX).ptex(7))
        );
        assert!(Ptex::try_from_raw(Ptex::MAX + 1).is_none());
        assert!(PtegIndex::try_new(1 << 39).is_none());
    }

    #[test]
    #[should_panic]
    fn ptex_slot_out_of_range() {
        let _ = Ptex::new(PtegIndex::new(0), 8);
    }

    #[test]
    fn phys_addr() {
        let pa = PhysAddr::new(0x1234_5000);
        assert!(pa.is_aligned(PageSize::K4));
        assert!(!pa.is_aligned(PageSize::K64));
        assert_eq!(pa.page_number(PageSize::K4), 0x12345);
        assert_eq!(pa.page_base(PageSize::K64), PhysAddr::new(0x1234_0000));
        assert!(PhysAddr::try_new(1 << 60).is_none());
        assert!(PhysAddr::new(PhysAddr::MAX).checked_add(1).is_none());
    }
}
