//! The XICS interrupt presentation hcalls this kernel uses: inter-processor
//! interrupts only (PAPR's "interrupt support" hcalls; QEMU's default
//! `ic-mode` under VOF, which makes no `ibm,client-architecture-support`
//! call, is XICS).
//!
//! A processor accepts interrupts once its CPPR is above their priority
//! ([`set_cppr`] with [`LEAST_FAVORED`]) and MSR\[EE\] = 1. The sender
//! lowers the target's MFRR to [`IPI_PRIORITY`] ([`send_ipi`]); the target
//! takes the external interrupt (0x500), accepts it with [`accept`] (XISR
//! [`IPI_SOURCE`]), raises its MFRR back ([`clear_ipi`]) and ends it with
//! [`eoi`], which restores the CPPR the accept saved in the XIRR.
//!
//! On powernv there is no XICS hcall: [`send_ipi`] rings the target's
//! hypervisor doorbell instead (`crate::platform::powernv::send_doorbell`,
//! taken at 0xe80 by `super::crosscall::on_doorbell`) and [`set_cppr`] has
//! nothing to do.

use arch_ppc64::instructions::hcall::{hcall, opcode, PaprError};

/// The XISR of an inter-processor interrupt (QEMU's `XICS_IPI`).
pub const IPI_SOURCE: u64 = 2;

/// The priority IPIs are sent at (Linux's `IPI_PRIORITY` too; any value
/// below [`LEAST_FAVORED`] is presented).
pub const IPI_PRIORITY: u64 = 5;

/// The least favoured priority: as CPPR it accepts every interrupt, as
/// MFRR it withdraws the IPI.
pub const LEAST_FAVORED: u64 = 0xff;

/// Bits of the XIRR that name the source (the low 24).
pub const XISR_MASK: u64 = 0x00ff_ffff;

/// `H_CPPR`: sets this processor's current priority.
pub fn set_cppr(cppr: u64) -> Result<(), PaprError> {
    if crate::platform::is_powernv() {
        return Ok(());
    }
    // SAFETY: H_CPPR only changes which interrupts this processor is
    // presented; no memory is involved.
    unsafe { hcall(opcode::H_CPPR, &[cppr]) }.map(|_| ())
}

/// `H_IPI(server, IPI_PRIORITY)`: interrupts the processor with interrupt
/// server number `server`.
pub fn send_ipi(server: u32) -> Result<(), PaprError> {
    if crate::platform::is_powernv() {
        crate::platform::powernv::send_doorbell(server);
        return Ok(());
    }
    // SAFETY: H_IPI only raises an interrupt at another processor, whose
    // handler expects it; no memory is involved.
    unsafe { hcall(opcode::H_IPI, &[u64::from(server), IPI_PRIORITY]) }.map(|_| ())
}

/// `H_IPI(server, LEAST_FAVORED)`: withdraws the IPI of `server` (the
/// receiver's acknowledgement of its own IPI).
pub fn clear_ipi(server: u32) -> Result<(), PaprError> {
    // SAFETY: as in `send_ipi`; this lowers no priority.
    unsafe { hcall(opcode::H_IPI, &[u64::from(server), LEAST_FAVORED]) }.map(|_| ())
}

/// `H_XIRR`: accepts the most favoured pending interrupt and returns the
/// XIRR (old CPPR in the top byte, source in [`XISR_MASK`]; source 0 when
/// none was pending).
pub fn accept() -> Result<u64, PaprError> {
    // SAFETY: H_XIRR only changes this processor's presentation state.
    unsafe { hcall(opcode::H_XIRR, &[]) }.map(|out| out[0])
}

/// `H_EOI(xirr)`: ends the interrupt [`accept`] returned.
pub fn eoi(xirr: u64) -> Result<(), PaprError> {
    // SAFETY: as in `accept`.
    unsafe { hcall(opcode::H_EOI, &[xirr]) }.map(|_| ())
}
