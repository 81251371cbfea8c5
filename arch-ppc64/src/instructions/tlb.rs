//! TLB invalidation for a hashed page table the kernel owns (hypervisor
//! state, e.g. powernv): `tlbie`, `tlbiel`, `tlbsync`, and the RB operand
//! that names one page (Power ISA v3.0 Book III §5.10.1, "TLB Management
//! Instructions", hash translation: R = 0, PRS = 0, RIC = 0, IS = 0).
//!
//! # The RB operand
//!
//! The page is named by its virtual address (VA, 78 bits: VSID, then the
//! offset in the segment), its segment size and its page size. This module
//! only handles pages whose base and actual sizes are equal (the kernel
//! maps no mixed-size segments). In ISA bit numbers of RB:
//!
//! | bits | L = 0 (4K base page) | L = 1 (64K, 16M) |
//! |---|---|---|
//! | 0:43 | VA 14:57 | VA 14:57 |
//! | 44:51 | VA 58:65 | LP: the page's "r" VA bits, then its LP code, as in the HPTE's RPN |
//! | 52:53 | IS = 0 | IS = 0 |
//! | 54:55 | B (segment size) | B |
//! | 56:58 | AP: the actual page size, 0 for 4K | AVAL: VA 58:64 (56:62) |
//! | 59:62 | 0 | (AVAL) |
//! | 63 | L = 0 | L = 1 |
//!
//! With L = 1 the processor compares RB 0:43 ‖ RB 56:62 against the VA
//! bits above the page size; for 64K pages VA 58:61 are also the four
//! "r" bits of the LP field (RB 44:47), and the code `0b0001` follows in
//! RB 48:51 — the same layout as the HPTE's RPN (see
//! [`crate::structures::hpte::r::LP_64K`]). A 16M page has every VA bit
//! below 24 clear and LP code `0b0000`.
//!
//! QEMU ignores RB (any RB invalidates everything), so a wrong encoding
//! would pass every test under QEMU: the host tests check it against the
//! ISA's bit numbers for every page and segment size.
//!
//! # Sequences
//!
//! After an HPTE was invalidated in memory, ISA §5.10.1.2 asks for
//! `ptesync; tlbie; eieio; tlbsync; ptesync` to drop the translation on
//! every processor and wait for it (`invalidate_page`, on `powerpc64`); only then may
//! the entry's R and C be read as final, and the slot reused. `tlbiel`
//! drops it on the executing processor only (`invalidate_page_local`),
//! enough when no other processor can hold the translation.

use crate::addr::Vsid;
use crate::structures::hpte::r;
use crate::structures::{PageSize, SegmentSize};

/// Fields of the RB operand (see the module docs).
pub mod rb {
    /// `L`: the page is larger than 4K (ISA bit 63).
    pub const L: u64 = 1;
    /// Shift of the segment size `B` (ISA bits 54:55).
    pub const B_SHIFT: u32 = 63 - 55;
    /// The `B` field.
    pub const B: u64 = 0b11 << B_SHIFT;
    /// Shift of the actual page size `AP` with L = 0 (ISA bits 56:58).
    pub const AP_SHIFT: u32 = 63 - 58;
    /// The invalidation selector (ISA bits 52:53), 0: the matching entry.
    pub const IS: u64 = 0b11 << (63 - 53);
    /// `AVAL` with L = 1 (ISA bits 56:62): VA bits 58:64.
    pub const AVAL: u64 = 0x7f << 1;
    /// VA bits 14:65 with L = 0 (ISA bits 0:51).
    pub const VA_4K: u64 = !0xfff;
    /// VA bits 14:57 with L = 1 (ISA bits 0:43).
    pub const VA_LARGE: u64 = !0xf_ffff;
}

/// The low 64 bits of the 78-bit VA of the page at segment `offset` of
/// segment `vsid` (VA bits 14:77; the top 14 never reach RB).
const fn va_low(vsid: Vsid, offset: u64, ssize: SegmentSize, psize: PageSize) -> u64 {
    let offset = offset & ssize.offset_mask() & !psize.offset_mask();
    (vsid.as_u64() << ssize.shift()) | offset
}

/// The RB operand of `tlbie`/`tlbiel` that invalidates the translation of
/// the page of size `psize` at segment `offset` of segment `vsid` of size
/// `ssize` (see the module docs for the layout).
#[must_use]
pub const fn tlbie_rb(vsid: Vsid, offset: u64, ssize: SegmentSize, psize: PageSize) -> u64 {
    let va = va_low(vsid, offset, ssize, psize);
    let b = ssize.b_code() << rb::B_SHIFT;
    match psize {
        // AP = 0: the actual page is 4K too.
        PageSize::K4 => (va & rb::VA_4K) | b,
        // VA 58:61 ("r" bits) stay in RB 44:47, the code 0b0001 goes in
        // 48:51, and VA 58:64 are repeated in AVAL.
        PageSize::K64 => {
            (va & rb::VA_4K & !r::LP_FIELD_64K) | r::LP_64K | b | ((va >> 12) & rb::AVAL) | rb::L
        }
        // Every VA bit below 24 is zero, LP code 0.
        PageSize::M16 => (va & rb::VA_4K) | r::LP_16M | b | rb::L,
    }
}

/// `tlbsync`: waits until every `tlbie` this processor issued has
/// completed on every processor. Hypervisor state only.
///
/// # Safety
///
/// Privileged: a Program interrupt outside hypervisor state (a pseries
/// guest traps it).
#[cfg(target_arch = "powerpc64")]
#[inline]
pub unsafe fn tlbsync() {
    // SAFETY: the caller runs in hypervisor state; tlbsync only waits.
    unsafe { core::arch::asm!(".long 0x7c00046c", options(nostack, preserves_flags)) }
}

/// `tlbie RB,RS` with RIC = PRS = R = 0 (a hash translation) and RS = the
/// partition `lpid` (hypervisor state: the partition whose entries go).
/// Broadcast: every processor drops the matching translations. Use it
/// through [`invalidate_page`], which adds the barriers the ISA requires.
///
/// # Safety
///
/// Privileged (hypervisor state), and invalidating a translation that is
/// still needed is the caller's responsibility.
#[cfg(target_arch = "powerpc64")]
#[inline]
pub unsafe fn tlbie(rb: u64, lpid: u64) {
    // tlbie 4,5 (RB = r4, RS = r5): 31 | RS<<21 | RB<<11 | 306<<1. Written
    // as a word so no assembler has to know the ISA 3.0 operand forms.
    // SAFETY: the caller runs in hypervisor state and owns the entry.
    unsafe {
        core::arch::asm!(
            ".long 0x7ca02264",
            in("r4") rb,
            in("r5") lpid,
            options(nostack, preserves_flags)
        )
    }
}

/// `tlbiel RB,RS` (RIC = PRS = R = 0, RS = 0): drops the matching
/// translations of the executing processor only.
///
/// # Safety
///
/// Privileged: run it in hypervisor state (powernv).
#[cfg(target_arch = "powerpc64")]
#[inline]
pub unsafe fn tlbiel(rb: u64) {
    // tlbiel 4,5 with r5 = 0: 31 | RS<<21 | RB<<11 | 274<<1.
    // SAFETY: the caller runs in hypervisor state and owns the entry.
    unsafe {
        core::arch::asm!(
            ".long 0x7ca02224",
            in("r4") rb,
            in("r5") 0u64,
            options(nostack, preserves_flags)
        )
    }
}

/// Drops the translation named by `rb` from every processor of partition
/// `lpid` and waits for it: `ptesync; tlbie; eieio; tlbsync; ptesync`.
/// Call it after the HPTE's V was cleared in memory; afterwards no
/// processor can set R or C in that entry.
///
/// # Safety
///
/// As [`tlbie`].
#[cfg(target_arch = "powerpc64")]
#[inline]
pub unsafe fn invalidate_page(rb: u64, lpid: u64) {
    use crate::instructions::barrier::{eieio, ptesync};
    ptesync();
    // SAFETY: forwarded from the caller.
    unsafe { tlbie(rb, lpid) };
    eieio();
    // SAFETY: forwarded from the caller.
    unsafe { tlbsync() };
    ptesync();
}

/// Drops the translation named by `rb` from the executing processor only:
/// `ptesync; tlbiel; ptesync`.
///
/// # Safety
///
/// As [`tlbiel`]; and no other processor may hold the translation.
#[cfg(target_arch = "powerpc64")]
#[inline]
pub unsafe fn invalidate_page_local(rb: u64) {
    use crate::instructions::barrier::ptesync;
    ptesync();
    // SAFETY: forwarded from the caller.
    unsafe { tlbiel(rb) };
    ptesync();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structures::{ibm_bit, ibm_bits};

    /// Bit `n` (ISA numbering, 0 = most significant) of a 78-bit VA.
    fn va_bit(va: u128, n: u32) -> u64 {
        ((va >> (77 - n)) & 1) as u64
    }

    /// RB built from the ISA's table, bit by bit, from the whole VA: the
    /// reference the shifts and masks of `tlbie_rb` are checked against.
    fn reference_rb(vsid: u64, offset: u64, ssize: SegmentSize, psize: PageSize) -> u64 {
        let offset = offset & ssize.offset_mask() & !psize.offset_mask();
        let va: u128 = ((vsid as u128) << ssize.shift()) | offset as u128;
        let mut rb = 0u64;
        let mut put = |rb_bit: u32, v: u64| {
            if v != 0 {
                rb |= ibm_bit(rb_bit);
            }
        };
        // RB 0:43 = VA 14:57 always.
        for i in 0..=43 {
            put(i, va_bit(va, 14 + i));
        }
        let b = ssize.b_code();
        put(54, b >> 1);
        put(55, b & 1);
        match psize {
            PageSize::K4 => {
                // RB 44:51 = VA 58:65; AP (56:58) = 0; L = 0.
                for i in 44..=51 {
                    put(i, va_bit(va, 14 + i));
                }
            }
            PageSize::K64 => {
                // LP = VA 58:61 ("rrrr"), then 0b0001.
                for i in 44..=47 {
                    put(i, va_bit(va, 14 + i));
                }
                put(51, 1);
                // AVAL (56:62) = VA 58:64.
                for i in 56..=62 {
                    put(i, va_bit(va, 58 + (i - 56)));
                }
                put(63, 1);
            }
            PageSize::M16 => {
                // LP code 0; AVAL = VA 58:64, all below the 16M page.
                for i in 56..=62 {
                    put(i, va_bit(va, 58 + (i - 56)));
                }
                put(63, 1);
            }
        }
        rb
    }

    #[test]
    fn field_constants_match_isa_bit_numbers() {
        assert_eq!(rb::L, ibm_bit(63));
        assert_eq!(rb::B, ibm_bits(54, 55));
        assert_eq!(rb::IS, ibm_bits(52, 53));
        assert_eq!(0b111 << rb::AP_SHIFT, ibm_bits(56, 58));
        assert_eq!(rb::AVAL, ibm_bits(56, 62));
        assert_eq!(rb::VA_4K, ibm_bits(0, 51));
        assert_eq!(rb::VA_LARGE, ibm_bits(0, 43));
    }

    #[test]
    fn every_page_and_segment_size_matches_the_isa_layout() {
        // VSIDs of the full width of each segment size, offsets that set
        // bits throughout the segment (page offsets are dropped).
        let cases: [(u64, u64, SegmentSize); 6] = [
            (0x3_ffff_ffff_ffff, 0x0fff_ffff, SegmentSize::M256),
            (0x2_4924_9249_2492, 0x0abc_def0, SegmentSize::M256),
            (0x1, 0x0000_1000, SegmentSize::M256),
            (0x3f_ffff_ffff, 0xff_ffff_ffff, SegmentSize::T1),
            (0x15_5555_5555, 0x5a_5a5a_5a5a, SegmentSize::T1),
            (0x2_0000_0001, 0x12_3480_1234, SegmentSize::T1),
        ];
        for (vsid, offset, ssize) in cases {
            for psize in [PageSize::K4, PageSize::K64, PageSize::M16] {
                let got = tlbie_rb(Vsid::new(vsid), offset, ssize, psize);
                let want = reference_rb(vsid, offset, ssize, psize);
                assert_eq!(
                    got, want,
                    "{psize} page at {offset:#x} of {ssize:?} VSID {vsid:#x}: {got:#018x} vs {want:#018x}"
                );
                // IS = 0 (this entry), and L says whether the page is large.
                assert_eq!(got & rb::IS, 0);
                assert_eq!(got & rb::L == rb::L, psize != PageSize::K4);
            }
        }
    }

    #[test]
    fn worked_examples() {
        // 4K page 0x0abc_d000 of 256M segment VSID 0x12_3456: VA low 64
        // bits = 0x12_3456 << 28 | 0x0abc_d000 = 0x0001_2345_6abc_d000;
        // B = 0, AP = 0, L = 0.
        assert_eq!(
            tlbie_rb(
                Vsid::new(0x12_3456),
                0x0abc_d123,
                SegmentSize::M256,
                PageSize::K4
            ),
            0x0001_2345_6abc_d000
        );
        // 64K page 0x0abc_0000 of the same segment: VA bits below 64K
        // dropped; LP = VA 58:61 (0xc) then 0b0001 → 0xc1 at RB 44:51;
        // AVAL = VA 58:64 = (VA >> 13) & 0x7f = 0x60; L = 1.
        let rb64 = tlbie_rb(
            Vsid::new(0x12_3456),
            0x0abc_4321,
            SegmentSize::M256,
            PageSize::K64,
        );
        assert_eq!(rb64 & 0xff000, 0xc1000);
        assert_eq!((rb64 & rb::AVAL) >> 1, 0x60);
        assert_eq!(rb64 & rb::L, 1);
        assert_eq!(rb64 & rb::VA_LARGE, 0x0001_2345_6abc_0000 & rb::VA_LARGE);
        // A 1T segment sets B = 0b01.
        let rb1t = tlbie_rb(Vsid::new(0x1), 0x1000, SegmentSize::T1, PageSize::K4);
        assert_eq!(rb1t & rb::B, 1 << rb::B_SHIFT);
        assert_eq!(rb1t & rb::VA_4K, (1 << 40) | 0x1000);
    }
}
