//! Special-purpose registers, addressed by their SPR number (Power ISA v3.1
//! Book III §5.4.4, table of SPR encodings).
//!
//! [`Spr<N>`] is a zero-sized handle for SPR number `N`; the type aliases
//! name the registers this crate's users need. Reads are safe, writes are
//! `unsafe fn` because most SPRs steer interrupts, translation or timing.
//! Registers the architecture only lets you read are [`ReadOnlySpr<N>`],
//! which has no `write`.
//!
//! Reading an SPR that is privileged or hypervisor-only from a lower
//! privilege level raises a privileged-instruction or hypervisor emulation
//! interrupt; that is a trap, not undefined behaviour.

use core::marker::PhantomData;

/// A readable and writable special-purpose register with number `N`.
///
/// Only the type is used (`Dec::write(x)`, `Dar::read()`), never a value.
///
/// ```
/// use arch_ppc64::registers::spr::{Dar, Spr};
/// assert_eq!(Dar::NUMBER, 19);
/// assert_eq!(Spr::<1023>::NUMBER, 1023);
/// ```
///
/// SPR numbers are 10 bits wide, so a larger one is a compile error:
///
/// ```compile_fail
/// let _ = arch_ppc64::registers::spr::Spr::<1024>::NUMBER;
/// ```
pub struct Spr<const N: u16> {
    _private: PhantomData<()>,
}

/// A special-purpose register with number `N` that software may only read
/// (the ISA gives it no `mtspr` encoding at this number, or writing it is
/// reserved to the hypervisor under a different number).
pub struct ReadOnlySpr<const N: u16> {
    _private: PhantomData<()>,
}

/// `mfspr`/`mtspr` encode the SPR number in a split 10-bit field.
const fn checked_spr_number(n: u16) -> u16 {
    assert!(n < 1024, "SPR numbers are 10 bits wide");
    n
}

impl<const N: u16> Spr<N> {
    /// The SPR number used in `mfspr`/`mtspr`. Naming a register whose
    /// number does not fit the instruction's 10-bit field fails to compile.
    pub const NUMBER: u16 = checked_spr_number(N);

    /// Reads the register (`mfspr`).
    #[cfg(target_arch = "powerpc64")]
    #[inline]
    #[must_use]
    pub fn read() -> u64 {
        let value: u64;
        // SAFETY: mfspr copies an SPR into a GPR and touches no memory. SPR
        // numbers are fixed by the type aliases below; an SPR not readable
        // at the current privilege level traps instead of misbehaving.
        unsafe {
            core::arch::asm!(
                "mfspr {0}, {n}",
                out(reg) value,
                n = const Self::NUMBER,
                options(nomem, nostack, preserves_flags),
            );
        }
        value
    }

    /// Writes the register (`mtspr`).
    ///
    /// # Safety
    ///
    /// Each SPR has its own hazard, and the caller must meet it: SRR0/SRR1
    /// decide where `rfid` goes and in which MSR state; DEC schedules a
    /// decrementer interrupt; SPRG0..3 are usually the interrupt handlers'
    /// scratch space (per-CPU pointers); AMR/IAMR change which storage keys
    /// may be loaded, stored or executed; LPCR/HRMOR/PTCR change the whole
    /// partition's translation. Writing a register the current privilege
    /// level may not write traps.
    #[cfg(target_arch = "powerpc64")]
    #[inline]
    pub unsafe fn write(value: u64) {
        // SAFETY: the caller guarantees the new value is consistent with
        // the state this SPR controls. No `nomem`: SPR writes can change how
        // later memory accesses behave (AMR, translation registers).
        unsafe {
            core::arch::asm!(
                "mtspr {n}, {0}",
                in(reg) value,
                n = const Self::NUMBER,
                options(nostack, preserves_flags),
            );
        }
    }
}

impl<const N: u16> ReadOnlySpr<N> {
    /// The SPR number used in `mfspr`; must fit in 10 bits, as for
    /// [`Spr::NUMBER`].
    pub const NUMBER: u16 = checked_spr_number(N);

    /// Reads the register (`mfspr`).
    #[cfg(target_arch = "powerpc64")]
    #[inline]
    #[must_use]
    pub fn read() -> u64 {
        let value: u64;
        // SAFETY: as for `Spr::read`, mfspr touches no memory.
        unsafe {
            core::arch::asm!(
                "mfspr {0}, {n}",
                out(reg) value,
                n = const Self::NUMBER,
                options(nomem, nostack, preserves_flags),
            );
        }
        value
    }
}

/// XER, fixed-point exception register (SPR 1): carry, overflow, string
/// length.
pub type Xer = Spr<1>;
/// Link Register (SPR 8).
pub type Lr = Spr<8>;
/// Count Register (SPR 9).
pub type Ctr = Spr<9>;
/// Authority Mask Register, problem-state number (SPR 13): the same
/// register as [`Amr`]; writes from problem state only change the fields
/// UAMOR allows.
pub type AmrProblemState = Spr<13>;
/// Data Stream Control Register, privileged number (SPR 17).
pub type Dscr = Spr<17>;
/// Data Storage Interrupt Status Register (SPR 18): why the last DSI
/// happened; decode with [`super::dsisr::DsisrFlags`].
pub type Dsisr = Spr<18>;
/// Data Address Register (SPR 19): the effective address of the access that
/// caused the last DSI, data segment or alignment interrupt.
pub type Dar = Spr<19>;
/// Decrementer (SPR 22): counts down at the timebase frequency and requests
/// an interrupt when it goes negative (while MSR\[EE\] = 1).
pub type Dec = Spr<22>;
/// Storage Description Register 1 (SPR 25): HPT origin and size on POWER8
/// in hypervisor state; not available to a pseries guest.
pub type Sdr1 = Spr<25>;
/// Save/Restore Register 0 (SPR 26): address to return to (or of the
/// faulting instruction) for interrupts other than hypervisor ones.
pub type Srr0 = Spr<26>;
/// Save/Restore Register 1 (SPR 27): the interrupted MSR plus cause bits;
/// decode with [`super::srr1`].
pub type Srr1 = Spr<27>;
/// Come-From Address Register (SPR 28): address of the last taken branch
/// (POWER7 and later).
pub type Cfar = Spr<28>;
/// Authority Mask Register, privileged number (SPR 29): per storage key,
/// a pair of bits that forbid stores (first bit) and loads (second bit).
/// Writes from privileged state change the fields AMOR allows.
pub type Amr = Spr<29>;
/// Process ID Register (SPR 48), used by radix translation.
pub type Pidr = Spr<48>;
/// Instruction Authority Mask Register (SPR 61): per storage key, forbids
/// instruction fetch.
pub type Iamr = Spr<61>;
/// User Authority Mask Override Register (SPR 157).
pub type Uamor = Spr<157>;
/// Timebase (SPR 268 for reading): the whole 64-bit time base on a 64-bit
/// processor. Writing uses other numbers and is hypervisor-only.
pub type Tb = ReadOnlySpr<268>;
/// Upper 32 bits of the time base (SPR 269).
pub type Tbu = ReadOnlySpr<269>;
/// Software-use SPR 0 (SPR 272), privileged scratch for interrupt handlers.
pub type Sprg0 = Spr<272>;
/// Software-use SPR 1 (SPR 273), privileged scratch for interrupt handlers.
pub type Sprg1 = Spr<273>;
/// Software-use SPR 2 (SPR 274), privileged scratch for interrupt handlers.
pub type Sprg2 = Spr<274>;
/// Software-use SPR 3 (SPR 275); also readable in problem state as SPR 259.
pub type Sprg3 = Spr<275>;
/// Processor Version Register (SPR 287): processor family and revision,
/// e.g. 0x004e1200 for POWER9 DD2.0 under QEMU.
pub type Pvr = ReadOnlySpr<287>;
/// Hypervisor software-use SPR 0 (SPR 304).
pub type Hsprg0 = Spr<304>;
/// Hypervisor software-use SPR 1 (SPR 305).
pub type Hsprg1 = Spr<305>;
/// Hypervisor DSISR (SPR 306).
pub type Hdsisr = Spr<306>;
/// Hypervisor DAR (SPR 307).
pub type Hdar = Spr<307>;
/// Hypervisor Decrementer (SPR 310).
pub type Hdec = Spr<310>;
/// Hypervisor Real Mode Offset Register (SPR 313).
pub type Hrmor = Spr<313>;
/// Hypervisor Save/Restore Register 0 (SPR 314), used by `hrfid`.
pub type Hsrr0 = Spr<314>;
/// Hypervisor Save/Restore Register 1 (SPR 315), used by `hrfid`.
pub type Hsrr1 = Spr<315>;
/// Logical Partitioning Control Register (SPR 318), hypervisor-only: AIL,
/// ILE, VPM, HR, ... A pseries guest changes these with `H_SET_MODE`.
pub type Lpcr = Spr<318>;
/// Logical Partition ID Register (SPR 319).
pub type Lpidr = Spr<319>;
/// Authority Mask Override Register (SPR 349): which AMR fields privileged
/// software may change.
pub type Amor = Spr<349>;
/// Partition Table Control Register (SPR 464), ISA 3.0 and later,
/// hypervisor-only.
pub type Ptcr = Spr<464>;
/// Processor Identification Register (SPR 1023): the hardware thread id.
pub type Pir = ReadOnlySpr<1023>;

/// Reads the 64-bit time base (`mftb`, i.e. `mfspr 268`).
///
/// The time base ticks at the frequency given by the device tree's
/// `timebase-frequency` property (512 MHz on QEMU pseries).
#[cfg(target_arch = "powerpc64")]
#[inline]
#[must_use]
pub fn timebase() -> u64 {
    Tb::read()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_isa_table() {
        assert_eq!(Xer::NUMBER, 1);
        assert_eq!(Lr::NUMBER, 8);
        assert_eq!(Ctr::NUMBER, 9);
        assert_eq!(AmrProblemState::NUMBER, 13);
        assert_eq!(Amr::NUMBER, 29);
        assert_eq!(Dscr::NUMBER, 17);
        assert_eq!(Dsisr::NUMBER, 18);
        assert_eq!(Dar::NUMBER, 19);
        assert_eq!(Dec::NUMBER, 22);
        assert_eq!(Sdr1::NUMBER, 25);
        assert_eq!(Srr0::NUMBER, 26);
        assert_eq!(Srr1::NUMBER, 27);
        assert_eq!(Cfar::NUMBER, 28);
        assert_eq!(Pidr::NUMBER, 48);
        assert_eq!(Iamr::NUMBER, 61);
        assert_eq!(Uamor::NUMBER, 157);
        assert_eq!(Tb::NUMBER, 268);
        assert_eq!(Tbu::NUMBER, 269);
        assert_eq!(Sprg0::NUMBER, 272);
        assert_eq!(Sprg1::NUMBER, 273);
        assert_eq!(Sprg2::NUMBER, 274);
        assert_eq!(Sprg3::NUMBER, 275);
        assert_eq!(Pvr::NUMBER, 287);
        assert_eq!(Hsprg0::NUMBER, 304);
        assert_eq!(Hsprg1::NUMBER, 305);
        assert_eq!(Hdsisr::NUMBER, 306);
        assert_eq!(Hdar::NUMBER, 307);
        assert_eq!(Hdec::NUMBER, 310);
        assert_eq!(Hrmor::NUMBER, 313);
        assert_eq!(Hsrr0::NUMBER, 314);
        assert_eq!(Hsrr1::NUMBER, 315);
        assert_eq!(Lpcr::NUMBER, 318);
        assert_eq!(Lpidr::NUMBER, 319);
        assert_eq!(Amor::NUMBER, 349);
        assert_eq!(Ptcr::NUMBER, 464);
        assert_eq!(Pir::NUMBER, 1023);
    }
}
