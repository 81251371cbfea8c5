//! The Machine State Register (MSR), Power ISA v3.1 Book III §4.2.1.
//!
//! The ISA numbers MSR bits 0 (most significant) to 63 (least significant);
//! each flag's documentation gives that number, and the unit tests check
//! every constant against it.

use bitflags::bitflags;

bitflags! {
    /// MSR contents.
    ///
    /// Bits this type does not name (for example the transactional-memory
    /// state TS, or the secure bit S) are kept by `read()` and written back
    /// unchanged by `write()`, so read-modify-write is the intended use.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Msr: u64 {
        /// ISA bit 0, Sixty-Four-bit mode: effective addresses are 64 bits
        /// wide. QEMU pseries enters the kernel with SF = 0.
        const SF = 1 << 63;
        /// ISA bit 3, Hypervisor state. Always 0 in a pseries (LPAR) guest;
        /// `mtmsrd` cannot set it from outside hypervisor state.
        const HV = 1 << 60;
        /// ISA bit 38, Vector (VMX/AltiVec) available.
        const VEC = 1 << 25;
        /// ISA bit 40, VSX available.
        const VSX = 1 << 23;
        /// ISA bit 48, External interrupt Enable (also gates the decrementer).
        const EE = 1 << 15;
        /// ISA bit 49, Problem state: 1 = user mode, 0 = privileged.
        const PR = 1 << 14;
        /// ISA bit 50, Floating-Point available.
        const FP = 1 << 13;
        /// ISA bit 51, Machine check interrupt Enable.
        const ME = 1 << 12;
        /// ISA bit 52, Floating-point exception mode 0 (with [`Msr::FE1`]).
        const FE0 = 1 << 11;
        /// ISA bit 53, Single-step trace Enable.
        const SE = 1 << 10;
        /// ISA bit 54, Branch trace Enable.
        const BE = 1 << 9;
        /// ISA bit 55, Floating-point exception mode 1 (with [`Msr::FE0`]).
        const FE1 = 1 << 8;
        /// ISA bit 58, Instruction Relocate: instruction fetches are
        /// translated through the SLB and HPT.
        const IR = 1 << 5;
        /// ISA bit 59, Data Relocate: data accesses are translated.
        const DR = 1 << 4;
        /// ISA bit 61, Performance Monitor Mark.
        const PMM = 1 << 2;
        /// ISA bit 62, Recoverable Interrupt: the state saved in SRR0/SRR1
        /// is still valid (clear while those are in use).
        const RI = 1 << 1;
        /// ISA bit 63, Little-Endian mode.
        const LE = 1 << 0;
    }
}

impl Msr {
    /// Both relocation bits: translation on for fetches and data.
    pub const RELOCATE: Msr = Msr::IR.union(Msr::DR);
}

/// Reads the MSR (`mfmsr`).
///
/// All bits are kept, including those [`Msr`] does not name.
#[cfg(target_arch = "powerpc64")]
#[inline]
#[must_use]
pub fn read() -> Msr {
    let value: u64;
    // SAFETY: mfmsr only copies the MSR into a GPR; it touches no memory and
    // is permitted in privileged state (in problem state it raises a
    // privileged-instruction interrupt rather than doing anything unsound).
    unsafe {
        core::arch::asm!("mfmsr {0}", out(reg) value, options(nomem, nostack, preserves_flags));
    }
    Msr::from_bits_retain(value)
}

/// Writes the MSR (`mtmsrd` with L = 0), followed by `isync` so the new
/// state is in effect for the next instruction.
///
/// With L = 0 the ISA (Book III, `mtmsrd`) keeps some bits from changing
/// outside hypervisor state (HV, S, ME), and PR = 1 forces EE, IR and DR
/// on.
///
/// # Safety
///
/// Changing the MSR changes how every following instruction runs:
/// * setting or clearing [`Msr::IR`]/[`Msr::DR`] switches address
///   translation, so the code, stack and data in use must be reachable at
///   the same effective addresses in both modes (identity-mapped or
///   bolted in the SLB/HPT);
/// * setting [`Msr::EE`] lets interrupts in, so vectors and their stacks
///   must be ready and any state they share with this code consistent;
/// * setting [`Msr::PR`] drops to problem state; clearing [`Msr::SF`]
///   truncates effective addresses to 32 bits; toggling [`Msr::LE`]
///   changes how the next instruction is fetched.
#[cfg(target_arch = "powerpc64")]
#[inline]
pub unsafe fn write(msr: Msr) {
    // SAFETY: the caller guarantees (see `# Safety`) that the new machine
    // state is consistent with the code and data in use. No `nomem`: the
    // change of translation must be ordered with the surrounding accesses.
    unsafe {
        core::arch::asm!("mtmsrd {0}", "isync", in(reg) msr.bits(), options(nostack, preserves_flags));
    }
}

#[cfg(test)]
mod tests {
    use super::Msr;

    use crate::structures::ibm_bit as isa_bit;

    #[test]
    fn bits_match_isa_numbers() {
        assert_eq!(Msr::SF.bits(), isa_bit(0));
        assert_eq!(Msr::HV.bits(), isa_bit(3));
        assert_eq!(Msr::VEC.bits(), isa_bit(38));
        assert_eq!(Msr::VSX.bits(), isa_bit(40));
        assert_eq!(Msr::EE.bits(), isa_bit(48));
        assert_eq!(Msr::PR.bits(), isa_bit(49));
        assert_eq!(Msr::FP.bits(), isa_bit(50));
        assert_eq!(Msr::ME.bits(), isa_bit(51));
        assert_eq!(Msr::FE0.bits(), isa_bit(52));
        assert_eq!(Msr::SE.bits(), isa_bit(53));
        assert_eq!(Msr::BE.bits(), isa_bit(54));
        assert_eq!(Msr::FE1.bits(), isa_bit(55));
        assert_eq!(Msr::IR.bits(), isa_bit(58));
        assert_eq!(Msr::DR.bits(), isa_bit(59));
        assert_eq!(Msr::PMM.bits(), isa_bit(61));
        assert_eq!(Msr::RI.bits(), isa_bit(62));
        assert_eq!(Msr::LE.bits(), isa_bit(63));
    }

    #[test]
    fn flags_are_distinct() {
        let mut seen = 0u64;
        for (name, flag) in Msr::all().iter_names() {
            assert_eq!(flag.bits().count_ones(), 1, "{name} is not one bit");
            assert_eq!(seen & flag.bits(), 0, "{name} overlaps another flag");
            seen |= flag.bits();
        }
        assert_eq!(seen.count_ones(), 17);
    }

    #[test]
    fn unnamed_bits_survive_round_trip() {
        // TS (ISA bits 29:30) and S (bit 41) are not named but must be kept.
        let raw = (0b11 << (63 - 30)) | (1 << (63 - 41)) | Msr::SF.bits();
        let msr = Msr::from_bits_retain(raw);
        assert!(msr.contains(Msr::SF));
        assert_eq!((msr | Msr::EE).bits(), raw | Msr::EE.bits());
    }

    #[test]
    fn relocate_is_ir_and_dr() {
        assert_eq!(Msr::RELOCATE.bits(), 0x30);
    }
}
