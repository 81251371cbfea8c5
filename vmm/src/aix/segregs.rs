//! `adspace_t`: the 16 "segment registers" of the 32-bit address-space
//! model that `getadsp`, `as_att`, `as_det`, `as_geth`, `as_puth` and
//! `as_getsrval` work on.
//!
//! On ppc64 the 16 registers are the SLB entries for ESIDs 0..15
//! (effective addresses below 4 GB). The layout is AIX's 64-bit-kernel one
//! (`<sys/vm_types.h>`): `{ ulong32int64_t alloc; vmhandle_t srval[16]; }`,
//! with the allocation bit of register x at `(1 << 31) >> x`, so register 0
//! is the top bit of a 32-bit mask (`ADSP_MASK`).

use super::consts::NSEGS;
use super::ctypes::{ulong32int64_t, vmhandle_t};

/// A segment register number, 0..15: the ESID of a 256 MB segment below
/// 4 GB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentRegister(u8);

impl SegmentRegister {
    /// Registers the address-space services never hand out nor take back:
    /// 0 (kernel/text), 1 (text), 2 (process private) and 14 (0xE, kernel
    /// extensions), as AIX's `as_det` page lists them.
    pub const RESERVED: [SegmentRegister; 4] = [
        SegmentRegister(0),
        SegmentRegister(1),
        SegmentRegister(2),
        SegmentRegister(14),
    ];

    /// Register `n`, or `None` if `n >= 16`.
    pub const fn new(n: usize) -> Option<Self> {
        if n < NSEGS {
            Some(SegmentRegister(n as u8))
        } else {
            None
        }
    }

    /// The register that translates effective address `eaddr` (its upper
    /// 4 bits of the low 32), as the 32-bit model does.
    pub const fn of_address(eaddr: u64) -> Self {
        SegmentRegister(((eaddr >> 28) & 0xF) as u8)
    }

    /// The register number.
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// Whether the register is one of [`SegmentRegister::RESERVED`].
    pub const fn is_reserved(self) -> bool {
        matches!(self.0, 0 | 1 | 2 | 14)
    }

    /// The registers `as_att` may pick, in the order it tries them: 3..13
    /// and 15.
    pub fn attachable() -> impl Iterator<Item = SegmentRegister> {
        (0..NSEGS as u8)
            .map(SegmentRegister)
            .filter(|sr| !sr.is_reserved())
    }

    /// `ADSP_MASK(x)`: the register's bit in `adspace_t.alloc`.
    pub const fn alloc_mask(self) -> ulong32int64_t {
        (1u64 << 31) >> self.0
    }
}

/// AIX's `adspace_t`: which of the 16 segment registers are allocated and
/// the handle loaded in each.
///
/// The services own the copies they hand out with `getadsp`; C code reads
/// them, and passes the pointer back to `as_att`/`as_det`/... to name the
/// address space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct adspace_t {
    /// Allocation mask, register x at `(1 << 31) >> x`.
    pub alloc: ulong32int64_t,
    /// The handle of each register; meaningless while its bit is clear.
    pub srval: [vmhandle_t; NSEGS],
}

/// The Rust name of [`adspace_t`].
pub type AdSpace = adspace_t;

impl adspace_t {
    /// An address space with no register allocated.
    pub const EMPTY: adspace_t = adspace_t {
        alloc: 0,
        srval: [0; NSEGS],
    };

    /// `adsp_is_alloc`: whether register `sr` is allocated.
    pub const fn is_alloc(&self, sr: SegmentRegister) -> bool {
        self.alloc & sr.alloc_mask() != 0
    }

    /// Marks `sr` allocated with `handle` loaded.
    pub fn set(&mut self, sr: SegmentRegister, handle: vmhandle_t) {
        self.alloc |= sr.alloc_mask();
        self.srval[sr.index()] = handle;
    }

    /// Marks `sr` free. The stored value is cleared too (AIX stores
    /// `NULLSEGVAL`), so a stale handle cannot be read back.
    pub fn clear(&mut self, sr: SegmentRegister) {
        self.alloc &= !sr.alloc_mask();
        self.srval[sr.index()] = 0;
    }

    /// The handle in `sr` if it is allocated.
    pub const fn get(&self, sr: SegmentRegister) -> Option<vmhandle_t> {
        if self.is_alloc(sr) {
            Some(self.srval[sr.index()])
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn layout_matches_aix_64_bit_kernel() {
        // 8 + 16 * 8 bytes: the size AIX's uadnode assertion implies.
        assert_eq!(size_of::<adspace_t>(), 136);
        assert_eq!(offset_of!(adspace_t, alloc), 0);
        assert_eq!(offset_of!(adspace_t, srval), 8);
    }

    #[test]
    fn alloc_mask_is_msb_first() {
        assert_eq!(SegmentRegister::new(0).unwrap().alloc_mask(), 0x8000_0000);
        assert_eq!(SegmentRegister::new(15).unwrap().alloc_mask(), 0x1_0000);
        assert_eq!(SegmentRegister::new(3).unwrap().alloc_mask(), 0x1000_0000);
        assert_eq!(SegmentRegister::new(16), None);
    }

    #[test]
    fn attachable_excludes_reserved() {
        let v: alloc::vec::Vec<usize> = SegmentRegister::attachable().map(|s| s.index()).collect();
        assert_eq!(v, [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15]);
        for sr in SegmentRegister::RESERVED {
            assert!(sr.is_reserved());
        }
    }

    #[test]
    fn set_and_clear() {
        let mut a = adspace_t::EMPTY;
        let sr = SegmentRegister::of_address(0x3000_1234);
        assert_eq!(sr.index(), 3);
        a.set(sr, 0xABC000);
        assert_eq!(a.alloc, 0x1000_0000);
        assert_eq!(a.get(sr), Some(0xABC000));
        a.clear(sr);
        assert_eq!(a, adspace_t::EMPTY);
    }
}
