//! Kernel loads and stores of memory that may be freed under them: when
//! the VMM refuses a fault in one because the address is no longer mapped
//! (no segment, or beyond the segment), it answers "failed" instead of
//! panicking, as Linux's exception tables let `copy_from_user` fail. The
//! system calls that touch memory a process names (`kread`, `kwrite`) use
//! them: the check that the address lies in a live allocation and the
//! access are not atomic, and with processes on every processor another
//! one may free it in between. Any other refusal (a store to memory the
//! kernel may not write) is still a kernel bug, and panics.

use core::arch::global_asm;

use vmm::platform::VmFaultReason;

use crate::trap::TrapFrame;

global_asm!(
    r#"
    .section .text.probe, "ax"
    .globl probe_start, probe_load, probe_store, probe_end
    .p2align 2
probe_start:
    # probe_load(addr: r3, out: r4) -> r3 = 0, or 1 if the load faulted.
probe_load:
    ld      %r5, 0(%r3)
    std     %r5, 0(%r4)
    li      %r3, 0
    blr
    # probe_store(addr: r3, value: r4) -> r3 = 0, or 1 if it faulted.
probe_store:
    std     %r4, 0(%r3)
    li      %r3, 0
    blr
probe_end:
"#
);

extern "C" {
    static probe_start: u8;
    static probe_end: u8;
    fn probe_load(addr: u64, out: *mut u64) -> u64;
    fn probe_store(addr: u64, value: u64) -> u64;
}

/// The doubleword at `addr`, or `None` if the access faulted and the VMM
/// refused it.
///
/// # Safety
///
/// A load from `addr` must be harmless if it succeeds (no device memory,
/// nothing the kernel relies on being unread).
pub unsafe fn read(addr: u64) -> Option<u64> {
    let mut v = 0;
    // SAFETY: per the contract; `v` is a valid destination; a refused
    // fault returns 1 through `fixup`.
    (unsafe { probe_load(addr, &mut v) } == 0).then_some(v)
}

/// Stores `value` at `addr`; false if the access faulted and the VMM
/// refused it.
///
/// # Safety
///
/// A store to `addr` must be harmless if it succeeds (memory the caller
/// may write).
pub unsafe fn write(addr: u64, value: u64) -> bool {
    // SAFETY: per the contract; a refused fault returns 1 through `fixup`.
    unsafe { probe_store(addr, value) == 0 }
}

/// A kernel fault at `frame` the VMM refused for `reason`: if the address
/// is unmapped and the fault was taken in a probe, the
/// probe returns 1 to its caller (the routines are leaves: LR still holds
/// the return address). Answers whether it was.
pub(super) fn fixup(frame: &mut TrapFrame, reason: VmFaultReason) -> bool {
    if !matches!(reason, VmFaultReason::NoSegment | VmFaultReason::OutOfRange) {
        return false;
    }
    let start = &raw const probe_start as u64;
    let end = &raw const probe_end as u64;
    if !(start..end).contains(&frame.srr0) {
        return false;
    }
    frame.srr0 = frame.lr;
    frame.gpr[3] = 1;
    true
}
