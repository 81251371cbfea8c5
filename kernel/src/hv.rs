//! PAPR hypervisor calls used by the kernel itself (console, RTAS entry).
//!
//! QEMU's sPAPR hcall ABI (PAPR 14.5.3, `sc 1`): r3 = opcode, r4..r12 =
//! arguments; r3 returns the status and r4..r12 the outputs. r0, r3-r12,
//! CTR, XER and CR are volatile across the call.

use core::arch::asm;

/// `H_PUT_TERM_CHAR`: write up to 16 bytes to a virtual terminal.
pub const H_PUT_TERM_CHAR: u64 = 0x58;
/// QEMU's private hcall that performs an RTAS call (`KVMPPC_H_RTAS`).
pub const KVMPPC_H_RTAS: u64 = 0xf000;

/// `H_SUCCESS`.
pub const H_SUCCESS: i64 = 0;

/// Makes hypervisor call `opcode` with up to 9 arguments in r4..r12.
///
/// Returns the status (r3) and r4..r12 after the call.
///
/// # Safety
///
/// The call may read or write guest memory named by the arguments (e.g. the
/// RTAS argument buffer) and may change machine state; the caller must make
/// sure the opcode and arguments are valid for that.
pub unsafe fn hcall(opcode: u64, args: [u64; 9]) -> (i64, [u64; 9]) {
    let status: u64;
    let mut out = args;
    // SAFETY: `sc 1` enters the hypervisor, which only touches the registers
    // named here (all declared as in/out or clobbered) and the memory the
    // caller vouched for.
    unsafe {
        asm!(
            "sc 1",
            inout("r3") opcode => status,
            inout("r4") out[0],
            inout("r5") out[1],
            inout("r6") out[2],
            inout("r7") out[3],
            inout("r8") out[4],
            inout("r9") out[5],
            inout("r10") out[6],
            inout("r11") out[7],
            inout("r12") out[8],
            out("r0") _,
            out("ctr") _,
            out("xer") _,
            out("cr0") _,
            out("cr1") _,
            out("cr5") _,
            out("cr6") _,
            out("cr7") _,
        );
    }
    (status as i64, out)
}
