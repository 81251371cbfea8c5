//! The low-level entries of the process layer: entering a process from
//! kernel context (`rfid` from a [`TrapFrame`]) and getting back to the
//! kernel context [`super::run`] saved when no process is runnable.
//!
//! [`proc_call`] saves the callee-saved state (LR, r1, r2, CR, r13..r31) in
//! a [`KernelContext`] and calls a Rust function; `proc_resume_kernel`
//! (reached by `rfid` from an interrupt handler that set SRR0 to it and r3
//! to the context) restores that state and makes [`proc_call`] return 1.
//! This mirrors the harness's setjmp pair, but the way back goes through
//! the interrupt exit path, so the trap code unwinds its own frame as
//! usual instead of being abandoned.

use core::arch::global_asm;

use crate::trap::TrapFrame;

/// The kernel context [`proc_call`] saved: LR, r1, r2, CR, r13..r31.
#[repr(C)]
pub struct KernelContext {
    /// The registers, in the asm's order.
    pub regs: [u64; 23],
}

impl KernelContext {
    /// The saved stack pointer.
    pub fn r1(&self) -> u64 {
        self.regs[1]
    }
    /// The saved TOC pointer.
    pub fn r2(&self) -> u64 {
        self.regs[2]
    }
    /// The saved r13.
    pub fn r13(&self) -> u64 {
        self.regs[4]
    }
}

// TrapFrame offsets: gpr[n] at 8n, CR 256, LR 264, CTR 272, XER 280,
// SRR0 288, SRR1 296.
global_asm!(
    r#"
    .section .text.proc_call, "ax"
    .globl proc_call
    .p2align 2
proc_call:
    # r3 = ELFv1 descriptor of the function, r4 = KernelContext
    mflr    %r0
    std     %r0, 0(%r4)
    std     %r1, 8(%r4)
    std     %r2, 16(%r4)
    mfcr    %r5
    std     %r5, 24(%r4)
    std     %r13, 32(%r4)
    std     %r14, 40(%r4)
    std     %r15, 48(%r4)
    std     %r16, 56(%r4)
    std     %r17, 64(%r4)
    std     %r18, 72(%r4)
    std     %r19, 80(%r4)
    std     %r20, 88(%r4)
    std     %r21, 96(%r4)
    std     %r22, 104(%r4)
    std     %r23, 112(%r4)
    std     %r24, 120(%r4)
    std     %r25, 128(%r4)
    std     %r26, 136(%r4)
    std     %r27, 144(%r4)
    std     %r28, 152(%r4)
    std     %r29, 160(%r4)
    std     %r30, 168(%r4)
    std     %r31, 176(%r4)
    std     %r0, 16(%r1)
    stdu    %r1, -112(%r1)
    ld      %r0, 0(%r3)
    ld      %r2, 8(%r3)
    ld      %r11, 16(%r3)
    mtctr   %r0
    bctrl
    addi    %r1, %r1, 112
    ld      %r0, 16(%r1)
    mtlr    %r0
    li      %r3, 0
    blr

    .section .text.proc_resume_kernel, "ax"
    .globl proc_resume_kernel
    .p2align 2
proc_resume_kernel:
    # r3 = KernelContext (set by the handler that chose this way back).
    ld      %r0, 0(%r3)
    mtlr    %r0
    ld      %r1, 8(%r3)
    ld      %r2, 16(%r3)
    ld      %r5, 24(%r3)
    mtcr    %r5
    ld      %r13, 32(%r3)
    ld      %r14, 40(%r3)
    ld      %r15, 48(%r3)
    ld      %r16, 56(%r3)
    ld      %r17, 64(%r3)
    ld      %r18, 72(%r3)
    ld      %r19, 80(%r3)
    ld      %r20, 88(%r3)
    ld      %r21, 96(%r3)
    ld      %r22, 104(%r3)
    ld      %r23, 112(%r3)
    ld      %r24, 120(%r3)
    ld      %r25, 128(%r3)
    ld      %r26, 136(%r3)
    ld      %r27, 144(%r3)
    ld      %r28, 152(%r3)
    ld      %r29, 160(%r3)
    ld      %r30, 168(%r3)
    ld      %r31, 176(%r3)
    li      %r3, 1
    blr

    .section .text.proc_enter, "ax"
    .globl proc_enter
    .p2align 2
proc_enter:
    # r3 = TrapFrame to resume (MSR[EE] is 0 here, so nothing interrupts
    # between loading SRR0/SRR1 and rfid).
    ld      %r10, 288(%r3)
    mtsrr0  %r10
    ld      %r10, 296(%r3)
    mtsrr1  %r10
    ld      %r10, 256(%r3)
    mtcr    %r10
    ld      %r10, 264(%r3)
    mtlr    %r10
    ld      %r10, 272(%r3)
    mtctr   %r10
    ld      %r10, 280(%r3)
    mtxer   %r10
    ld      %r0, 0(%r3)
    ld      %r1, 8(%r3)
    ld      %r2, 16(%r3)
    ld      %r4, 32(%r3)
    ld      %r5, 40(%r3)
    ld      %r6, 48(%r3)
    ld      %r7, 56(%r3)
    ld      %r8, 64(%r3)
    ld      %r9, 72(%r3)
    ld      %r10, 80(%r3)
    ld      %r11, 88(%r3)
    ld      %r12, 96(%r3)
    ld      %r13, 104(%r3)
    ld      %r14, 112(%r3)
    ld      %r15, 120(%r3)
    ld      %r16, 128(%r3)
    ld      %r17, 136(%r3)
    ld      %r18, 144(%r3)
    ld      %r19, 152(%r3)
    ld      %r20, 160(%r3)
    ld      %r21, 168(%r3)
    ld      %r22, 176(%r3)
    ld      %r23, 184(%r3)
    ld      %r24, 192(%r3)
    ld      %r25, 200(%r3)
    ld      %r26, 208(%r3)
    ld      %r27, 216(%r3)
    ld      %r28, 224(%r3)
    ld      %r29, 232(%r3)
    ld      %r30, 240(%r3)
    ld      %r31, 248(%r3)
    ld      %r3, 24(%r3)
    rfid
"#
);

const _: () = assert!(core::mem::offset_of!(TrapFrame, srr0) == 288);
const _: () = assert!(core::mem::offset_of!(TrapFrame, srr1) == 296);
const _: () = assert!(core::mem::offset_of!(TrapFrame, cr) == 256);

extern "C" {
    /// Saves the kernel context in `ctx` and calls `f` (a Rust `fn()`,
    /// i.e. its ELFv1 descriptor). Returns 0 if `f` returned, 1 if an
    /// interrupt handler resumed `proc_resume_kernel` with `ctx`.
    pub fn proc_call(f: *const (), ctx: *mut KernelContext) -> u64;
    /// Loads every register from `frame` and `rfid`s into it.
    pub fn proc_enter(frame: *const TrapFrame) -> !;
    /// The code label (not a descriptor) handlers put in SRR0 to get back
    /// to the context [`proc_call`] saved.
    static proc_resume_kernel: u8;
}

/// The address of `proc_resume_kernel`'s first instruction.
pub fn resume_kernel_address() -> u64 {
    // Only the label's address is taken.
    &raw const proc_resume_kernel as u64
}
