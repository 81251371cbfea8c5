//! A setjmp/longjmp pair for kernel code: [`context_call`] saves the
//! callee-saved state (LR, r1, r2, CR, r13..r31) in a [`SavedContext`] and
//! calls a Rust function; [`context_resume`] restores that state and makes
//! the [`context_call`] return 1 instead of 0.
//!
//! Two users: the test harness (a panic inside a test jumps back to the
//! harness, abandoning the test's frames) and the process layer (an
//! interrupt handler that finds no runnable process puts
//! [`resume_address`] in SRR0 and the context in r3, so the interrupt's
//! `rfid` lands in `context_resume` and the scheduler's caller resumes).
//! Only the ELFv1 non-volatile registers are kept: the code resumed must
//! be a call site of `context_call`, where the ABI lets every other
//! register be clobbered.

use core::arch::global_asm;

/// The registers [`context_call`] saves: LR, r1, r2, CR, r13..r31.
#[repr(C)]
pub struct SavedContext {
    /// The registers, in the asm's order.
    pub regs: [u64; 23],
}

impl SavedContext {
    /// An empty context (to be filled by [`context_call`]).
    pub const fn new() -> SavedContext {
        SavedContext { regs: [0; 23] }
    }
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

global_asm!(
    r#"
    .section .text.context_call, "ax"
    .globl context_call
    .p2align 2
context_call:
    # r3 = ELFv1 descriptor of the function, r4 = SavedContext
    mflr    %r0
    std     %r0, 0(%r4)
    std     %r1, 8(%r4)
    std     %r2, 16(%r4)
    mfcr    %r5
    std     %r5, 24(%r4)
    .irp n, 13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    std     \n, 8 * (\n - 9)(%r4)
    .endr
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

    .section .text.context_resume, "ax"
    .globl context_resume
    .p2align 2
context_resume:
    # r3 = SavedContext (a call, or SRR0 set by an interrupt handler).
    ld      %r0, 0(%r3)
    mtlr    %r0
    ld      %r1, 8(%r3)
    ld      %r2, 16(%r3)
    ld      %r5, 24(%r3)
    mtcr    %r5
    .irp n, 13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    ld      \n, 8 * (\n - 9)(%r3)
    .endr
    li      %r3, 1
    blr
"#
);

extern "C" {
    /// Saves the callee-saved state in `ctx` and calls `f` (a Rust
    /// `fn()`, i.e. the address of its ELFv1 descriptor). Returns 0 when
    /// `f` returned, 1 when [`context_resume`] came back with `ctx`.
    pub fn context_call(f: *const (), ctx: *mut SavedContext) -> u64;
    /// Restores `ctx` and returns 1 from the [`context_call`] that saved
    /// it. The frames in between are abandoned (no destructors run).
    pub fn context_resume(ctx: *const SavedContext) -> !;
    /// The code label of `context_resume` (the symbol above is the same
    /// address; this one is only for taking it).
    #[link_name = "context_resume"]
    static CONTEXT_RESUME_LABEL: u8;
}

/// The address of `context_resume`'s first instruction, for an interrupt
/// handler's SRR0 (with r3 = the context).
pub fn resume_address() -> u64 {
    // Only the label's address is taken.
    &raw const CONTEXT_RESUME_LABEL as u64
}
