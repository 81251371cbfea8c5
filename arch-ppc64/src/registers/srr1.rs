//! Cause bits that interrupts place in SRR1 next to the saved MSR bits,
//! Power ISA v3.1 Book III §7.5.
//!
//! The same SRR1 bit means different things for different interrupts, so
//! there is one type per interrupt: [`IsiFlags`] for the Instruction
//! Storage interrupt (vector 0x400) and [`ProgramFlags`] for the Program
//! interrupt (vector 0x700). ISA bit `n` of SRR1 is `1 << (63 - n)`; the
//! values agree with QEMU's `target/ppc/cpu.h` and `excp_helper.c`.

use bitflags::bitflags;

use super::msr::Msr;

/// SRR1 bits an interrupt fills with cause information (ISA bits 33:36 and
/// 42:47); on interrupt entry QEMU clears them before setting the cause,
/// the rest of SRR1 is a copy of the MSR.
pub const CAUSE_MASK: u64 = 0x0000_0000_783f_0000;

/// The MSR that was in effect when the interrupt happened: SRR1 without
/// the interrupt-specific cause bits. `rfid` restores it.
#[must_use]
pub const fn saved_msr(srr1: u64) -> Msr {
    Msr::from_bits_retain(srr1 & !CAUSE_MASK)
}

bitflags! {
    /// Why an Instruction Storage interrupt happened.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct IsiFlags: u64 {
        /// ISA bit 33: no translation for the fetch address (no HPTE in
        /// either PTEG).
        const NOPTE = 1 << (63 - 33);
        /// ISA bit 35: fetch from a no-execute page (HPTE N), a guarded page
        /// (HPTE G), or a no-execute segment (SLB N).
        const NOEXEC_GUARD = 1 << (63 - 35);
        /// ISA bit 36: the fetch is not permitted by the page protection
        /// (PP bits with the SLB key).
        const PROTFAULT = 1 << (63 - 36);
        /// ISA bit 42: the fetch is not permitted by virtual page class key
        /// protection (the IAMR field for the HPTE's storage key).
        const IAMR = 1 << (63 - 42);
    }
}

impl IsiFlags {
    /// Extracts the ISI cause bits from a raw SRR1 value.
    #[must_use]
    pub const fn from_srr1(srr1: u64) -> IsiFlags {
        IsiFlags::from_bits_truncate(srr1)
    }

    /// True if the fetch failed for lack of a translation.
    #[must_use]
    pub const fn is_no_translation(self) -> bool {
        self.contains(IsiFlags::NOPTE)
    }

    /// True if an existing translation forbade execution.
    #[must_use]
    pub const fn is_protection(self) -> bool {
        self.intersects(
            IsiFlags::NOEXEC_GUARD
                .union(IsiFlags::PROTFAULT)
                .union(IsiFlags::IAMR),
        )
    }
}

bitflags! {
    /// Why a Program interrupt happened.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct ProgramFlags: u64 {
        /// ISA bit 43: floating-point enabled exception.
        const FP_ENABLED = 1 << (63 - 43);
        /// ISA bit 44: illegal instruction (including an `slbmte` with a bad
        /// segment size or page size encoding under QEMU).
        const ILLEGAL = 1 << (63 - 44);
        /// ISA bit 45: privileged instruction in problem state, or a
        /// hypervisor-only one (`tlbie` in a pseries guest).
        const PRIVILEGED = 1 << (63 - 45);
        /// ISA bit 46: trap instruction (`tw`, `td`, ...).
        const TRAP = 1 << (63 - 46);
        /// ISA bit 47: SRR0 holds the address of the next instruction, not
        /// of the one that caused the interrupt.
        const SRR0_NEXT = 1 << (63 - 47);
    }
}

impl ProgramFlags {
    /// Extracts the Program interrupt cause bits from a raw SRR1 value.
    #[must_use]
    pub const fn from_srr1(srr1: u64) -> ProgramFlags {
        ProgramFlags::from_bits_truncate(srr1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::structures::ibm_bit as isa_bit;

    #[test]
    fn isi_bits_match_isa_numbers_and_qemu_values() {
        assert_eq!(IsiFlags::NOPTE.bits(), isa_bit(33));
        assert_eq!(IsiFlags::NOPTE.bits(), 0x4000_0000);
        assert_eq!(IsiFlags::NOEXEC_GUARD.bits(), isa_bit(35));
        assert_eq!(IsiFlags::NOEXEC_GUARD.bits(), 0x1000_0000);
        assert_eq!(IsiFlags::PROTFAULT.bits(), isa_bit(36));
        assert_eq!(IsiFlags::PROTFAULT.bits(), 0x0800_0000);
        assert_eq!(IsiFlags::IAMR.bits(), isa_bit(42));
        assert_eq!(IsiFlags::IAMR.bits(), 0x0020_0000);
    }

    #[test]
    fn program_bits_match_isa_numbers_and_qemu_values() {
        assert_eq!(ProgramFlags::FP_ENABLED.bits(), isa_bit(43));
        assert_eq!(ProgramFlags::FP_ENABLED.bits(), 0x0010_0000);
        assert_eq!(ProgramFlags::ILLEGAL.bits(), isa_bit(44));
        assert_eq!(ProgramFlags::ILLEGAL.bits(), 0x0008_0000);
        assert_eq!(ProgramFlags::PRIVILEGED.bits(), isa_bit(45));
        assert_eq!(ProgramFlags::PRIVILEGED.bits(), 0x0004_0000);
        assert_eq!(ProgramFlags::TRAP.bits(), isa_bit(46));
        assert_eq!(ProgramFlags::TRAP.bits(), 0x0002_0000);
        assert_eq!(ProgramFlags::SRR0_NEXT.bits(), isa_bit(47));
        assert_eq!(ProgramFlags::SRR0_NEXT.bits(), 0x0001_0000);
    }

    #[test]
    fn cause_bits_lie_inside_cause_mask() {
        assert_eq!(IsiFlags::all().bits() & !CAUSE_MASK, 0);
        assert_eq!(ProgramFlags::all().bits() & !CAUSE_MASK, 0);
        // ...and the mask never covers a named MSR bit.
        assert_eq!(Msr::all().bits() & CAUSE_MASK, 0);
    }

    #[test]
    fn splits_srr1_into_msr_and_cause() {
        // A 64-bit kernel fetching from an unmapped page with IR/DR/ME on.
        let msr = Msr::SF | Msr::ME | Msr::IR | Msr::DR | Msr::RI;
        let srr1 = msr.bits() | 0x4000_0000;
        assert_eq!(saved_msr(srr1), msr);
        let isi = IsiFlags::from_srr1(srr1);
        assert!(isi.is_no_translation());
        assert!(!isi.is_protection());
        assert!(ProgramFlags::from_srr1(srr1).is_empty());
    }

    #[test]
    fn noexec_fetch_is_protection() {
        let isi = IsiFlags::from_srr1(Msr::SF.bits() | 0x1000_0000);
        assert!(isi.is_protection());
        assert!(!isi.is_no_translation());
    }
}
