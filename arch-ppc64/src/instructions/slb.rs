//! Segment Lookaside Buffer management (Power ISA v3.1 Book III §5.9.3.1
//! and the SLB instructions of §5.9.3.2).
//!
//! These take the raw register images ("ESID word" = RB, "VSID word" = RS)
//! so this module does not depend on how the entry types in
//! [`crate::structures`] build them:
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
