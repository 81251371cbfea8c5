//! Segment lookaside buffer entry, as the two register operands of
//! `slbmte RS, RB` (Power ISA v2.07 Book III-S, SLB management instructions):
//!
//! ```text
//! RB (ESID word): | ESID 0:35 | V 36 | 0 37:51 | index 52:63 |
//! RS (VSID word): | B 0:1 | VSID 2:51 | Ks 52 | Kp 53 | N 54 | L 55 | C 56 | 0 57 | LP 58:59 | 0 60:63 |
//! ```
//!
//! For a 1 TB segment the VSID occupies bits 2:39 (`vsid << 24`) and bits
//! 40:51 must be zero; the ESID's low 12 bits must be zero.

use bitflags::bitflags;

use crate::addr::{EffectiveAddress, Esid, Vsid};
use crate::structures::{PageSize, SegmentSize};

/// Masks of the ESID word (`RB` of `slbmte`, result of `slbmfee`).
pub mod esid_word {
    /// Effective segment ID (ISA bits 0:35).
    pub const ESID: u64 = 0xFFFF_FFFF_F000_0000;
    /// Shift of the ESID field.
    pub const ESID_SHIFT: u32 = 28;
    /// Valid (ISA bit 36).
    pub const V: u64 = 0x0000_0000_0800_0000;
    /// SLB index the entry is written to (ISA bits 52:63).
    pub const INDEX: u64 = 0xFFF;
}

/// Masks of the VSID word (`RS` of `slbmte`, result of `slbmfev`).
pub mod vsid_word {
    /// Segment size `B` (ISA bits 0:1).
    pub const B: u64 = 0xC000_0000_0000_0000;
    /// Shift of the `B` field.
    pub const B_SHIFT: u32 = 62;
    /// VSID field for a 256 MB segment (ISA bits 2:51).
    pub const VSID: u64 = 0x3FFF_FFFF_FFFF_F000;
    /// Shift of the VSID of a 256 MB segment.
    pub const VSID_SHIFT_256M: u32 = 12;
    /// Shift of the VSID of a 1 TB segment (ISA bits 2:39).
    pub const VSID_SHIFT_1T: u32 = 24;
    /// Supervisor (privileged) state storage key `Ks` (ISA bit 52).
    pub const KS: u64 = 0x800;
    /// Problem state storage key `Kp` (ISA bit 53).
    pub const KP: u64 = 0x400;
    /// No-execute segment `N` (ISA bit 54).
    pub const N: u64 = 0x200;
    /// Large base page `L` (ISA bit 55).
    pub const L: u64 = 0x100;
    /// Class `C` (ISA bit 56): `slbia` with IH=3 keeps class-0 entries.
    pub const C: u64 = 0x80;
    /// Base page size selector `LP` (ISA bits 58:59).
    pub const LP: u64 = 0x30;
    /// `L || LP` together.
    pub const LLP: u64 = L | LP;
}

bitflags! {
    /// Attribute bits of the SLB VSID word other than B, VSID and L/LP.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct SlbFlags: u64 {
        /// Storage key used in privileged state.
        const KS = vsid_word::KS;
        /// Storage key used in problem state.
        const KP = vsid_word::KP;
        /// No instruction fetch from this segment.
        const N = vsid_word::N;
        /// Class bit.
        const C = vsid_word::C;
    }
}

/// Why an [`SlbEntry`] could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlbEntryError {
    /// The VSID does not fit the segment size (38 bits for 1 TB).
    VsidTooWide(Vsid),
    /// A 1 TB segment's ESID has some of its low 12 bits set.
    EsidNotAligned(Esid),
    /// Index beyond the 12-bit index field.
    IndexTooLarge(usize),
}

/// One SLB entry: the ESID word and VSID word exactly as `slbmte` takes
/// them. The index field of the ESID word selects the slot.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SlbEntry {
    /// `RB`: ESID, V, index.
    pub esid_word: u64,
    /// `RS`: B, VSID, Ks, Kp, N, L, C, LP.
    pub vsid_word: u64,
}

impl core::fmt::Debug for SlbEntry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "SlbEntry {{ esid_word: {:#018x}, vsid_word: {:#018x} }}",
            self.esid_word, self.vsid_word
        )
    }
}

impl SlbEntry {
    /// An invalid entry (what `slbmte 0,0` writes to slot 0).
    pub const INVALID: SlbEntry = SlbEntry {
        esid_word: 0,
        vsid_word: 0,
    };

    /// A valid entry mapping segment `esid` (size `ssize`) to `vsid`, base
    /// page size `psize`, attributes `flags`, index 0 (set it with
    /// [`SlbEntry::with_index`]).
    pub const fn new(
        esid: Esid,
        vsid: Vsid,
        ssize: SegmentSize,
        psize: PageSize,
        flags: SlbFlags,
    ) -> Result<SlbEntry, SlbEntryError> {
        if !vsid.fits(ssize) {
            return Err(SlbEntryError::VsidTooWide(vsid));
        }
        if !esid.is_aligned_for(ssize) {
            return Err(SlbEntryError::EsidNotAligned(esid));
        }
        let shift = match ssize {
            SegmentSize::M256 => vsid_word::VSID_SHIFT_256M,
            SegmentSize::T1 => vsid_word::VSID_SHIFT_1T,
        };
        Ok(SlbEntry {
            esid_word: (esid.as_u64() << esid_word::ESID_SHIFT) | esid_word::V,
            vsid_word: (ssize.b_code() << vsid_word::B_SHIFT)
                | (vsid.as_u64() << shift)
                | flags.bits()
                | psize.slb_llp(),
        })
    }

    /// The same entry with the slot index field set to `index`.
    #[inline]
    pub const fn with_index(self, index: usize) -> Result<SlbEntry, SlbEntryError> {
        if index as u64 > esid_word::INDEX {
            return Err(SlbEntryError::IndexTooLarge(index));
        }
        Ok(SlbEntry {
            esid_word: (self.esid_word & !esid_word::INDEX) | index as u64,
            vsid_word: self.vsid_word,
        })
    }

    /// Valid bit.
    #[inline]
    pub const fn is_valid(self) -> bool {
        self.esid_word & esid_word::V != 0
    }

    /// The index field.
    #[inline]
    pub const fn index(self) -> usize {
        (self.esid_word & esid_word::INDEX) as usize
    }

    /// The ESID field (in 256 MB units).
    #[inline]
    pub const fn esid(self) -> Esid {
        Esid::new((self.esid_word & esid_word::ESID) >> esid_word::ESID_SHIFT)
    }

    /// Segment size; `None` for a reserved `B` code.
    #[inline]
    pub const fn segment_size(self) -> Option<SegmentSize> {
        SegmentSize::from_b_code(self.vsid_word >> vsid_word::B_SHIFT)
    }

    /// The VSID; `None` if the segment size is reserved.
    pub const fn vsid(self) -> Option<Vsid> {
        match self.segment_size() {
            Some(SegmentSize::M256) => Some(Vsid::new(
                (self.vsid_word & vsid_word::VSID) >> vsid_word::VSID_SHIFT_256M,
            )),
            Some(SegmentSize::T1) => Some(Vsid::new(
                (self.vsid_word & vsid_word::VSID) >> vsid_word::VSID_SHIFT_1T,
            )),
            None => None,
        }
    }

    /// Attribute flags (Ks, Kp, N, C).
    pub const fn flags(self) -> SlbFlags {
        SlbFlags::from_bits_truncate(self.vsid_word)
    }

    /// Base page size; `None` for an `L || LP` encoding not modelled here.
    #[inline]
    pub const fn page_size(self) -> Option<PageSize> {
        PageSize::from_slb_llp(self.vsid_word & vsid_word::LLP)
    }

    /// Whether this valid entry translates `ea` (ISA SLB search: compare EA
    /// bits 0:35 for 256 MB, 0:23 for 1 TB).
    #[inline]
    pub const fn matches(self, ea: EffectiveAddress) -> bool {
        if !self.is_valid() {
            return false;
        }
        match self.segment_size() {
            Some(ssize) => {
                let mask = !ssize.offset_mask();
                (ea.as_u64() & mask) == (self.esid_word & esid_word::ESID & mask)
            }
            None => false,
        }
    }

    /// The storage key that applies: `Kp` in problem state, `Ks` otherwise
    /// (ISA "Storage Protection").
    pub const fn key(self, problem_state: bool) -> bool {
        if problem_state {
            self.vsid_word & vsid_word::KP != 0
        } else {
            self.vsid_word & vsid_word::KS != 0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structures::{ibm_bit, ibm_bits};

    #[test]
    fn esid_word_constants_match_isa_bit_numbers() {
        assert_eq!(esid_word::ESID, ibm_bits(0, 35));
        assert_eq!(esid_word::ESID_SHIFT, 63 - 35);
        assert_eq!(esid_word::V, ibm_bit(36));
        assert_eq!(esid_word::INDEX, ibm_bits(52, 63));
    }

    #[test]
    fn vsid_word_constants_match_isa_bit_numbers() {
        assert_eq!(vsid_word::B, ibm_bits(0, 1));
        assert_eq!(vsid_word::VSID, ibm_bits(2, 51));
        assert_eq!(vsid_word::VSID_SHIFT_256M, 63 - 51);
        assert_eq!(vsid_word::VSID_SHIFT_1T, 63 - 39);
        assert_eq!(vsid_word::KS, ibm_bit(52));
        assert_eq!(vsid_word::KP, ibm_bit(53));
        assert_eq!(vsid_word::N, ibm_bit(54));
        assert_eq!(vsid_word::L, ibm_bit(55));
        assert_eq!(vsid_word::C, ibm_bit(56));
        assert_eq!(vsid_word::LP, ibm_bits(58, 59));
    }

    #[test]
    fn user_entry_worked_example() {
        // ESID 0x12 (EA 0x1_2000_0000), VSID 0xabcdef, 256M, 4K, Ks|Kp|C,
        // slot 5:
        //   RB = 0x12 << 28 | V | 5       = 0x0000_0001_2800_0005
        //   RS = 0xabcdef << 12 | Ks|Kp|C = 0x0000_000a_bcde_fc80
        let e = SlbEntry::new(
            Esid::new(0x12),
            Vsid::new(0xab_cdef),
            SegmentSize::M256,
            PageSize::K4,
            SlbFlags::KS | SlbFlags::KP | SlbFlags::C,
        )
        .unwrap()
        .with_index(5)
        .unwrap();
        assert_eq!(e.esid_word, 0x0000_0001_2800_0005);
        assert_eq!(e.vsid_word, 0x0000_000a_bcde_fc80);
        assert!(e.is_valid());
        assert_eq!(e.index(), 5);
        assert_eq!(e.esid(), Esid::new(0x12));
        assert_eq!(e.vsid(), Some(Vsid::new(0xab_cdef)));
        assert_eq!(e.segment_size(), Some(SegmentSize::M256));
        assert_eq!(e.page_size(), Some(PageSize::K4));
        assert!(e.key(true) && e.key(false));
        assert!(e.matches(EffectiveAddress::new(0x1_2fff_ffff)));
        assert!(!e.matches(EffectiveAddress::new(0x1_3000_0000)));
    }

    #[test]
    fn kernel_1t_64k_entry_worked_example() {
        // 1T segment at 0xc000_0000_0000_0000: ESID = EA >> 28 =
        // 0xc_0000_0000. VSID 0x1ff, 64K base pages, Kp only:
        //   RB = 0xc000_0000_0000_0000 | V            = 0xc000_0000_0800_0000
        //   RS = 01 << 62 | 0x1ff << 24 | Kp | 0x110  = 0x4000_0001_ff00_0510
        let e = SlbEntry::new(
            Esid::new(0xc_0000_0000),
            Vsid::new(0x1ff),
            SegmentSize::T1,
            PageSize::K64,
            SlbFlags::KP,
        )
        .unwrap();
        assert_eq!(e.esid_word, 0xc000_0000_0800_0000);
        assert_eq!(e.vsid_word, 0x4000_0001_ff00_0510);
        assert_eq!(e.vsid(), Some(Vsid::new(0x1ff)));
        assert_eq!(e.page_size(), Some(PageSize::K64));
        assert!(e.key(true) && !e.key(false));
        assert!(e.matches(EffectiveAddress::new(0xc000_00ff_ffff_ffff)));
        assert!(!e.matches(EffectiveAddress::new(0xc000_0100_0000_0000)));
    }

    #[test]
    fn kernel_1t_16m_entry_worked_example() {
        // The same segment with 16M base pages (L = 1, LP = 0b00):
        //   RS = 01 << 62 | 0x2_0000_0000 << 24 | Kp | 0x100
        //      = 0x4200_0000_0000_0500
        let e = SlbEntry::new(
            Esid::new(0xc_0000_0000),
            Vsid::new(0x2_0000_0000),
            SegmentSize::T1,
            PageSize::M16,
            SlbFlags::KP,
        )
        .unwrap();
        assert_eq!(e.vsid_word, 0x4200_0000_0000_0500);
        assert_eq!(e.vsid_word & vsid_word::LLP, vsid_word::L);
        assert_eq!(e.page_size(), Some(PageSize::M16));
        assert_eq!(e.vsid(), Some(Vsid::new(0x2_0000_0000)));
        // A 256 MB segment with 16M base pages.
        let m = SlbEntry::new(
            Esid::new(0x5),
            Vsid::new(0x77),
            SegmentSize::M256,
            PageSize::M16,
            SlbFlags::empty(),
        )
        .unwrap();
        assert_eq!(m.vsid_word, (0x77 << 12) | 0x100);
        assert_eq!(m.page_size(), Some(PageSize::M16));
    }

    #[test]
    fn bad_entries_are_refused() {
        assert_eq!(
            SlbEntry::new(
                Esid::new(0x1),
                Vsid::new(1),
                SegmentSize::T1,
                PageSize::K4,
                SlbFlags::empty()
            ),
            Err(SlbEntryError::EsidNotAligned(Esid::new(1)))
        );
        assert_eq!(
            SlbEntry::new(
                Esid::new(0),
                Vsid::new(1 << 38),
                SegmentSize::T1,
                PageSize::K4,
                SlbFlags::empty()
            ),
            Err(SlbEntryError::VsidTooWide(Vsid::new(1 << 38)))
        );
        assert_eq!(
            SlbEntry::INVALID.with_index(0x1000),
            Err(SlbEntryError::IndexTooLarge(0x1000))
        );
        assert!(!SlbEntry::INVALID.matches(EffectiveAddress::new(0)));
    }
}
