//! The low-level entries of the process layer: entering a process from
//! kernel context (`rfid` from a [`TrapFrame`], through the interrupt
//! exit path `trap_return`) and getting back to the kernel context
//! [`super::run`] saved when no process is runnable (the
//! [`crate::context`] setjmp pair: an interrupt handler sets SRR0 to
//! [`resume_kernel_address`] and r3 to the context, so the trap code
//! unwinds its own frame as usual instead of being abandoned).

use core::arch::global_asm;

pub use crate::context::context_call as proc_call;
pub use crate::context::SavedContext as KernelContext;
use crate::trap::TrapFrame;

global_asm!(
    r#"
    .section .text.proc_enter, "ax"
    .globl proc_enter
    .p2align 2
proc_enter:
    # r3 = TrapFrame to resume. trap_return restores a frame that sits
    # 112 bytes (the ELFv1 header trap_common leaves below it) above r1;
    # MSR[EE] is 0 here and the frame is on the boot stack in the kernel
    # image, which trap_return reads in real mode.
    addi    %r1, %r3, -112
    b       trap_return
"#
);

const _: () = assert!(core::mem::offset_of!(TrapFrame, srr0) == 288);
const _: () = assert!(core::mem::offset_of!(TrapFrame, srr1) == 296);
const _: () = assert!(core::mem::offset_of!(TrapFrame, cr) == 256);

extern "C" {
    /// Loads every register from `frame` and `rfid`s into it.
    pub fn proc_enter(frame: *const TrapFrame) -> !;
}

/// Where a handler points SRR0 (with r3 = the [`KernelContext`]) to get
/// back to the context [`proc_call`] saved.
pub fn resume_kernel_address() -> u64 {
    crate::context::resume_address()
}
