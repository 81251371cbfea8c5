//! MMU entry formats of Book III-S: hashed page table entries ([`hpte`]) and
//! segment lookaside buffer entries ([`slb`]), plus the segment and page
//! sizes both formats encode.
//!
//! Everything here is a plain value type that builds and is tested on every
//! host; nothing touches hardware.
//!
//! Bit numbering: the ISA numbers bits from the most-significant end (bit 0
//! is `1 << 63` of a doubleword). The constants are written as ordinary
//! LSB-0 masks; their unit tests check each one against its ISA bit number
//! with [`ibm_bit`].

pub mod hpte;
pub mod partition;
pub mod slb;

/// The mask of the ISA (MSB-0) bit `n` of a 64-bit doubleword: `1 << (63 - n)`.
///
/// # Panics
///
/// Panics (at compile time in a const context) if `n > 63`.
pub const fn ibm_bit(n: u32) -> u64 {
    assert!(n < 64, "ISA bit numbers of a doubleword are 0..=63");
    1 << (63 - n)
}

/// The mask of ISA (MSB-0) bits `first..=last` of a 64-bit doubleword.
///
/// # Panics
///
/// Panics if `first > last` or `last > 63`.
pub const fn ibm_bits(first: u32, last: u32) -> u64 {
    assert!(first <= last && last < 64, "bad ISA bit range");
    let width = last - first + 1;
    let ones = if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    ones << (63 - last)
}

/// Segment size, the `B` field of an SLB entry and of an HPTE
/// (Power ISA v2.07 Book III-S, SLB and page table entry formats: 0b00 =
/// 256 MB, 0b01 = 1 TB, others
/// reserved).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SegmentSize {
    /// 256 MiB segment (`B = 0b00`); the ESID is EA bits 0:35.
    M256,
    /// 1 TiB segment (`B = 0b01`); the ESID is EA bits 0:23.
    T1,
}

impl SegmentSize {
    /// log2 of the segment size in bytes: 28 or 40.
    pub const fn shift(self) -> u32 {
        match self {
            SegmentSize::M256 => 28,
            SegmentSize::T1 => 40,
        }
    }

    /// Size of the segment in bytes.
    pub const fn bytes(self) -> u64 {
        1 << self.shift()
    }

    /// Mask of the byte offset within a segment of this size.
    #[inline]
    pub const fn offset_mask(self) -> u64 {
        self.bytes() - 1
    }

    /// The two-bit `B` code as it sits in bits 0:1 of the SLB VSID word and of
    /// HPTE doubleword 0 (already shifted right by 62).
    #[inline]
    pub const fn b_code(self) -> u64 {
        match self {
            SegmentSize::M256 => 0b00,
            SegmentSize::T1 => 0b01,
        }
    }

    /// Decodes a two-bit `B` code; `None` for the reserved codes 0b10/0b11.
    #[inline]
    pub const fn from_b_code(code: u64) -> Option<Self> {
        match code {
            0b00 => Some(SegmentSize::M256),
            0b01 => Some(SegmentSize::T1),
            _ => None,
        }
    }

    /// Number of VSID bits this segment size can carry: the virtual address
    /// is 78 bits (ISA v2.07 Book III-S), so a 256 MB segment has a 50-bit VSID
    /// and a 1 TB segment a 38-bit VSID. QEMU's SLB VSID mask
    /// `0x3FFF_FFFF_FFFF_F000` agrees (`vsid << 12` resp. `vsid << 24`).
    pub const fn vsid_bits(self) -> u32 {
        78 - self.shift()
    }
}

/// Base page size of a segment and actual page size of an HPTE, each page
/// in a segment of the same base size (no mixed sizes in one segment).
/// QEMU's pseries machine accepts 4K and 64K by default; 16M only with
/// `-M pseries,cap-hpt-max-page-size=16M`, which a guest learns from
/// `ibm,segment-page-sizes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PageSize {
    /// 4 KiB pages.
    K4,
    /// 64 KiB pages.
    K64,
    /// 16 MiB pages.
    M16,
}

impl core::fmt::Display for PageSize {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PageSize::K4 => "4K",
            PageSize::K64 => "64K",
            PageSize::M16 => "16M",
        })
    }
}

impl PageSize {
    /// log2 of the page size in bytes: 12, 16 or 24. This is also the
    /// shift `p` the hash function applies to the segment offset (ISA
    /// "Page Table Search").
    pub const fn shift(self) -> u32 {
        match self {
            PageSize::K4 => 12,
            PageSize::K64 => 16,
            PageSize::M16 => 24,
        }
    }

    /// Size of the page in bytes.
    pub const fn bytes(self) -> u64 {
        1 << self.shift()
    }

    /// Mask of the byte offset within a page of this size.
    #[inline]
    pub const fn offset_mask(self) -> u64 {
        self.bytes() - 1
    }

    /// The `L || LP` bits of the SLB VSID word for a segment whose base page
    /// size is this size: 4K = 0x000, 64K = 0x110 (L = 0x100, LP = 0b01
    /// in bits 58:59), 16M = 0x100 (L = 1, LP = 0b00). Same encodings as
    /// QEMU's POWER7+ page-size table and the `ibm,segment-page-sizes`
    /// SLB encodings it publishes.
    #[inline]
    pub const fn slb_llp(self) -> u64 {
        match self {
            PageSize::K4 => 0x000,
            PageSize::K64 => 0x110,
            PageSize::M16 => 0x100,
        }
    }

    /// Decodes the `L || LP` bits (`vsid_word & 0x130`) of an SLB entry;
    /// `None` for an encoding not modelled here (16G is 0x120).
    #[inline]
    pub const fn from_slb_llp(llp: u64) -> Option<Self> {
        match llp {
            0x000 => Some(PageSize::K4),
            0x110 => Some(PageSize::K64),
            0x100 => Some(PageSize::M16),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ibm_bit_numbers_from_the_msb() {
        assert_eq!(ibm_bit(0), 0x8000_0000_0000_0000);
        assert_eq!(ibm_bit(63), 1);
        assert_eq!(ibm_bits(0, 1), 0xC000_0000_0000_0000);
        assert_eq!(ibm_bits(62, 63), 3);
        assert_eq!(ibm_bits(0, 63), u64::MAX);
    }

    #[test]
    fn segment_sizes() {
        assert_eq!(SegmentSize::M256.bytes(), 256 << 20);
        assert_eq!(SegmentSize::T1.bytes(), 1 << 40);
        assert_eq!(SegmentSize::M256.vsid_bits(), 50);
        assert_eq!(SegmentSize::T1.vsid_bits(), 38);
        for s in [SegmentSize::M256, SegmentSize::T1] {
            assert_eq!(SegmentSize::from_b_code(s.b_code()), Some(s));
        }
        assert_eq!(SegmentSize::from_b_code(2), None);
        assert_eq!(SegmentSize::from_b_code(3), None);
    }

    #[test]
    fn page_sizes_and_llp() {
        assert_eq!(PageSize::K4.bytes(), 4096);
        assert_eq!(PageSize::K64.bytes(), 65536);
        assert_eq!(PageSize::M16.bytes(), 16 << 20);
        // L is ISA bit 55 of the VSID word, LP bits 58:59; 64K = L=1,
        // LP=0b01; 16M = L=1, LP=0b00; 4K = L=0.
        assert_eq!(PageSize::K4.slb_llp(), 0);
        assert_eq!(PageSize::K64.slb_llp(), ibm_bit(55) | ibm_bit(59));
        assert_eq!(PageSize::M16.slb_llp(), ibm_bit(55));
        for p in [PageSize::K4, PageSize::K64, PageSize::M16] {
            assert_eq!(PageSize::from_slb_llp(p.slb_llp()), Some(p));
        }
        // 16G (L=1, LP=0b10) and the unused LP=0b11 are not modelled; LP
        // without L is no size.
        assert_eq!(PageSize::from_slb_llp(ibm_bit(55) | ibm_bit(58)), None);
        assert_eq!(PageSize::from_slb_llp(0x130), None);
        assert_eq!(PageSize::from_slb_llp(0x010), None);
    }

    #[test]
    fn page_sizes_print_as_device_tree_users_say_them() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(PageSize::K4.to_string(), "4K");
        assert_eq!(PageSize::K64.to_string(), "64K");
        assert_eq!(PageSize::M16.to_string(), "16M");
    }
}
