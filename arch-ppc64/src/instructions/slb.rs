//! Segment Lookaside Buffer management (Power ISA v3.1 Book III §5.9.3.1
//! and the SLB instructions of §5.9.3.2).
//!
//! The instruction wrappers take the raw register images ("ESID word" =
//! RB, "VSID word" = RS), so any encoding can be tried; `write_entry`,
//! `read_entry` and `invalidate_entry` do the same with the checked
//! [`SlbEntry`] type from [`crate::structures::slb`]:
//!
//! * ESID word (`slbmte` RB): ESID in ISA bits 0:35 (mask
//!   `0xFFFF_FFFF_F000_0000`), V at ISA bit 36 (`0x0800_0000`), SLB index
//!   in ISA bits 52:63 (`0xFFF`).
//! * VSID word (`slbmte` RS): B (segment size) in ISA bits 0:1, VSID from
//!   ISA bit 2 (shifted left by 12 for 256 MB segments, 24 for 1 TB),
//!   Ks `0x800`, Kp `0x400`, N `0x200`, L `0x100`, C `0x80`, LP `0x30`.
//!
//! A change to the SLB takes effect for following instructions only after a
//! context-synchronizing instruction (`isync`, see `barrier::isync`); the
//! wrappers do not add one so that a sequence of updates pays for it once.

use crate::structures::slb::{esid_word, vsid_word, SlbEntry};

/// Fields of the `slbie` operand RB (Power ISA v3.1 Book III §5.9.3.2;
/// Linux `SLBIE_C`, `SLBIE_SSIZE_SHIFT`).
pub mod slbie_word {
    /// ESID of the segment to invalidate (ISA bits 0:35), same place as in
    /// the ESID word.
    pub const ESID: u64 = 0xFFFF_FFFF_F000_0000;
    /// Class `C` of the entry (ISA bit 36).
    pub const C: u64 = 1 << (63 - 36);
    /// Segment size `B` (ISA bits 37:38).
    pub const B: u64 = 0b11 << B_SHIFT;
    /// Shift of the `B` field.
    pub const B_SHIFT: u32 = 63 - 38;
}

/// The `slbie` operand that invalidates the segment `entry` translates:
/// its ESID, segment size and class.
#[must_use]
pub const fn slbie_operand(entry: SlbEntry) -> u64 {
    let b = (entry.vsid_word & vsid_word::B) >> vsid_word::B_SHIFT;
    let c = if entry.vsid_word & vsid_word::C != 0 {
        slbie_word::C
    } else {
        0
    };
    (entry.esid_word & esid_word::ESID) | (b << slbie_word::B_SHIFT) | c
}

/// `slbmte RS, RB`: writes the SLB entry whose index is in the low 12 bits
/// of `esid_word`.
///
/// # Safety
///
/// With translation on, replacing or invalidating the entry that maps the
/// code, stack or data in use (or an interrupt handler's) makes the next
/// access to them take a segment interrupt, or worse, translate through a
/// different VSID. The caller must also make sure no other valid entry
/// translates the same ESID (the ISA makes overlapping entries undefined),
/// and that stale translations of a previous VSID for this slot are
/// invalidated with [`slbie`]/[`slbia`] (QEMU does not flush its TLB on a
/// bare overwrite). An index at or beyond the SLB size, or a reserved
/// segment or page size, raises a Program interrupt.
#[cfg(target_arch = "powerpc64")]
#[inline]
pub unsafe fn slbmte(vsid_word: u64, esid_word: u64) {
    // SAFETY: the caller guarantees the new entry is consistent with the
    // translations in use (see `# Safety`). No `nomem`: later accesses
    // depend on the entry.
    unsafe {
        core::arch::asm!(
            "slbmte {0}, {1}",
            in(reg) vsid_word,
            in(reg) esid_word,
            options(nostack, preserves_flags),
        );
    }
}

/// `slbie RB`: invalidates the SLB entry (if any) translating the ESID in
/// `esid_word` (ISA bits 0:35), with the segment size B in ISA bits 37:38
/// (`esid_word | (b << 25)`) and class C at ISA bit 36, and the lookaside
/// translations derived from it.
///
/// # Safety
///
/// Invalidating the segment that holds the running code, its stack or the
/// interrupt vectors (with translation on) leads to a segment interrupt on
/// the next access, which the handler must be able to service.
#[cfg(target_arch = "powerpc64")]
#[inline]
pub unsafe fn slbie(esid_word: u64) {
    // SAFETY: the caller guarantees the segment can go away (see
    // `# Safety`).
    unsafe {
        core::arch::asm!("slbie {0}", in(reg) esid_word, options(nostack, preserves_flags));
    }
}

/// `slbia` (IH = 0): invalidates every SLB entry **except entry 0**, and
/// all lookaside translations. To clear entry 0 as well, use
/// [`invalidate_all`].
///
/// # Safety
///
/// All segments but entry 0 disappear: with translation on, anything the
/// following code touches outside entry 0's segment takes a segment
/// interrupt.
#[cfg(target_arch = "powerpc64")]
#[inline]
pub unsafe fn slbia() {
    // SAFETY: the caller guarantees the code that follows only needs
    // entry 0 or none (see `# Safety`).
    unsafe { core::arch::asm!("slbia", options(nostack, preserves_flags)) }
}

/// Invalidates the whole SLB including entry 0 (`slbmte 0, 0` then
/// `slbia`), followed by `isync`, as Linux's `slb_initialize` and QEMU's
/// behaviour (`slbia` never clears entry 0) require.
///
/// # Safety
///
/// Afterwards no effective address translates; call this only with
/// translation off (MSR\[IR\] = MSR\[DR\] = 0) or on the way to
/// reloading the entries the running code needs before its next access.
#[cfg(target_arch = "powerpc64")]
#[inline]
pub unsafe fn invalidate_all() {
    // SAFETY: the caller guarantees nothing needs a segment until the SLB
    // is reloaded. RS = RB = 0 writes an invalid entry 0 (V = 0, index 0).
    unsafe {
        core::arch::asm!(
            "slbmte {z}, {z}",
            "isync",
            "slbia",
            "isync",
            z = in(reg) 0u64,
            options(nostack, preserves_flags),
        );
    }
}

/// `slbmfee RT, RB`: reads the ESID word of SLB entry `index` (ESID and V;
/// no index bits). A privileged instruction; an index at or beyond the SLB
/// size raises a Program interrupt.
#[cfg(target_arch = "powerpc64")]
#[inline]
#[must_use]
pub fn slbmfee(index: u64) -> u64 {
    let value: u64;
    // SAFETY: slbmfee only copies an SLB entry into a GPR; it touches no
    // memory and changes no translation.
    unsafe {
        core::arch::asm!(
            "slbmfee {0}, {1}",
            out(reg) value,
            in(reg) index,
            options(nomem, nostack, preserves_flags),
        );
    }
    value
}

/// `slbmfev RT, RB`: reads the VSID word of SLB entry `index`. A
/// privileged instruction; an index at or beyond the SLB size raises a
/// Program interrupt.
#[cfg(target_arch = "powerpc64")]
#[inline]
#[must_use]
pub fn slbmfev(index: u64) -> u64 {
    let value: u64;
    // SAFETY: slbmfev only copies an SLB entry into a GPR.
    unsafe {
        core::arch::asm!(
            "slbmfev {0}, {1}",
            out(reg) value,
            in(reg) index,
            options(nomem, nostack, preserves_flags),
        );
    }
    value
}

/// `slbfee. RT, RB`: searches the SLB for an entry translating effective
/// address `ea` (ISA 2.05 and later); `Some` of its VSID word (B, VSID,
/// flags, L || LP) when one does, `None` when none does. A privileged
/// instruction; it changes no translation, only CR0.
#[cfg(target_arch = "powerpc64")]
#[inline]
#[must_use]
pub fn slbfee(ea: u64) -> Option<u64> {
    let value: u64;
    let cr: u64;
    // SAFETY: slbfee. only reads the SLB into a GPR and sets CR0, which
    // the asm declares clobbered (no `preserves_flags`) and reads back.
    unsafe {
        core::arch::asm!(
            "slbfee. {0}, {2}",
            "mfcr {1}",
            out(reg) value,
            out(reg) cr,
            in(reg) ea,
            options(nomem, nostack),
        );
    }
    // CR0[EQ] (CR bit 2, 0x2000_0000 of the 32-bit CR) says found.
    (cr & 0x2000_0000 != 0).then_some(value)
}

/// Writes `entry` into the SLB slot named by its index field
/// (`slbmte entry.vsid_word, entry.esid_word`).
///
/// # Safety
///
/// As for [`slbmte`].
#[cfg(target_arch = "powerpc64")]
#[inline]
pub unsafe fn write_entry(entry: SlbEntry) {
    // SAFETY: forwarded from this function's contract.
    unsafe { slbmte(entry.vsid_word, entry.esid_word) }
}

/// Reads SLB slot `index` back as an [`SlbEntry`] whose index field is
/// `index` (the hardware does not return it).
///
/// # Panics
///
/// If `index` does not fit the 12-bit index field. An index at or beyond
/// the SLB size (32 on POWER7 and later) raises a Program interrupt.
#[cfg(target_arch = "powerpc64")]
#[inline]
#[must_use]
pub fn read_entry(index: usize) -> SlbEntry {
    assert!(index as u64 <= esid_word::INDEX, "SLB index out of range");
    SlbEntry {
        esid_word: (slbmfee(index as u64) & !esid_word::INDEX) | index as u64,
        vsid_word: slbmfev(index as u64),
    }
}

/// Invalidates the SLB entry translating the same segment as `entry`
/// (`slbie` with [`slbie_operand`]).
///
/// # Safety
///
/// As for [`slbie`].
#[cfg(target_arch = "powerpc64")]
#[inline]
pub unsafe fn invalidate_entry(entry: SlbEntry) {
    // SAFETY: forwarded from this function's contract.
    unsafe { slbie(slbie_operand(entry)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::{Esid, Vsid};
    use crate::structures::slb::SlbFlags;
    use crate::structures::{PageSize, SegmentSize};

    use crate::structures::ibm_bit as isa_bit;

    #[test]
    fn slbie_fields_match_isa_bit_numbers() {
        assert_eq!(slbie_word::ESID, esid_word::ESID);
        assert_eq!(slbie_word::C, isa_bit(36));
        assert_eq!(slbie_word::B, isa_bit(37) | isa_bit(38));
        // Linux: SLBIE_C = 0x08000000, SLBIE_SSIZE_SHIFT = 25.
        assert_eq!(slbie_word::C, 0x0800_0000);
        assert_eq!(slbie_word::B_SHIFT, 25);
    }

    #[test]
    fn slbie_operand_of_256m_kernel_segment() {
        let entry = SlbEntry::new(
            Esid::new(0xc_0000_0000),
            Vsid::new(0x1234),
            SegmentSize::M256,
            PageSize::K4,
            SlbFlags::KP,
        )
        .unwrap()
        .with_index(5)
        .unwrap();
        // ESID only: no index, no V, B = 0, C = 0.
        assert_eq!(slbie_operand(entry), 0xc000_0000_0000_0000);
    }

    #[test]
    fn slbie_operand_carries_segment_size_and_class() {
        let entry = SlbEntry::new(
            Esid::new(0x1000),
            Vsid::new(0x42),
            SegmentSize::T1,
            PageSize::K4,
            SlbFlags::KP | SlbFlags::KS | SlbFlags::C,
        )
        .unwrap();
        let rb = slbie_operand(entry);
        assert_eq!(rb & slbie_word::ESID, 0x1000 << 28);
        assert_eq!((rb & slbie_word::B) >> slbie_word::B_SHIFT, 0b01);
        assert_ne!(rb & slbie_word::C, 0);
        // Nothing outside the three fields is set (V and index are gone).
        assert_eq!(rb & !(slbie_word::ESID | slbie_word::B | slbie_word::C), 0);
    }
}
