//! The low-level entries of the process layer: entering a process from
//! kernel context (`rfid` from a [`TrapFrame`], through the interrupt
//! exit path `trap_return`) and getting back to the kernel context
//! [`super::run`] saved when no process is runnable (the
//! [`crate::context`] setjmp pair: an interrupt handler sets SRR0 to
//! [`resume_kernel_address`] and r3 to the context, so the trap code
//! unwinds its own frame as usual instead of being abandoned).

use core::arch::global_asm;

use arch_ppc64::registers::msr::Msr;

pub use crate::context::context_call as proc_call;
pub use crate::context::SavedContext as KernelContext;
use crate::trap::TrapFrame;

global_asm!(
    r#"
    .section .text.proc_enter, "ax"
    .globl proc_enter
    .p2align 2
proc_enter:
    # r3 = TrapFrame to resume (or whose TF_RESUME names the one to).
    # trap_return restores a frame that sits 112 bytes (the ELFv1 header
    # trap_common leaves below it) above r1; MSR[EE] is 0 here.
    addi    %r1, %r3, -112
    b       trap_return

    # The idle loop of a processor with no thread to run: H_CEDE (0xe0)
    # sets MSR[EE] and halts until an interrupt, which is taken on the
    # way back; the scheduler's handler may then resume a thread instead
    # of this loop. Uses no stack and no memory.
    .section .text.proc_idle, "ax"
    .globl proc_idle
    .p2align 4
proc_idle:
    li      %r3, 0xe0
    sc      1
    b       proc_idle

    # The same on powernv, where there is no hypervisor to cede to: the
    # frame's MSR has EE = 0, so set it (a wake-up sent before is pending
    # and taken at once), then `stop` with PSSCR = 0 (POWER9/10: the
    # lightest state, which any interrupt ends) or spin (POWER8, whose
    # `nap` would come back through the system reset vector).
    .globl proc_idle_stop, proc_idle_spin
    .p2align 4
proc_idle_stop:
    li      %r3, 0
    mtspr   855, %r3
    mfmsr   %r3
    ori     %r3, %r3, 0x8000
    mtmsrd  %r3, 1
1:  .long   0x4c0002e4
    b       1b
    .p2align 4
proc_idle_spin:
    mfmsr   %r3
    ori     %r3, %r3, 0x8000
    mtmsrd  %r3, 1
2:  b       2b

    .section .text.copy_trap_frame, "ax"
    .globl copy_trap_frame
    .p2align 4
copy_trap_frame:
    # r3 = destination, r4 = source: the 38 doublewords a return restores
    # (r0..r31, CR, LR, CTR, XER, SRR0, SRR1), unrolled (a memcpy call
    # costs three times as many instructions for the whole 336 bytes).
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37
    ld      %r5, 8 * \n(%r4)
    std     %r5, 8 * \n(%r3)
    .endr
    blr
"#
);

const _: () = assert!(core::mem::offset_of!(TrapFrame, srr1) == 37 * 8);

const _: () = assert!(core::mem::offset_of!(TrapFrame, srr0) == 288);
const _: () = assert!(core::mem::offset_of!(TrapFrame, srr1) == 296);
const _: () = assert!(core::mem::offset_of!(TrapFrame, cr) == 256);

extern "C" {
    /// Loads every register from `frame` and `rfid`s into it.
    pub fn proc_enter(frame: *const TrapFrame) -> !;
    /// The idle loop (a code label).
    static proc_idle: u8;
    /// The idle loops on powernv, with `stop` and spinning (code labels).
    static proc_idle_stop: u8;
    static proc_idle_spin: u8;
    fn copy_trap_frame(dst: *mut TrapFrame, src: *const TrapFrame);
}

/// Copies the registers a return from `src` would restore into `dst`
/// (not DAR, DSISR, the vector and the resume link, which only describe
/// the interrupt): how a switch saves the outgoing process.
pub fn copy_frame(dst: &mut TrapFrame, src: &TrapFrame) {
    // SAFETY: both are valid, aligned, distinct TrapFrames (the borrows
    // say so); the routine only loads the first 304 bytes of one and
    // stores them to the other, clobbering r5 as a call may.
    unsafe { copy_trap_frame(dst, src) }
}

/// Where a handler points SRR0 (with r3 = the [`KernelContext`]) to get
/// back to the context [`proc_call`] saved.
pub fn resume_kernel_address() -> u64 {
    crate::context::resume_address()
}

/// A frame whose return enters the idle loop (`proc_idle`) on CPU
/// `cpu`'s idle stack with MSR `msr` (the kernel's, EE = 0: `H_CEDE`
/// enables interrupts at the moment it halts, so a wake-up sent before
/// is not lost, it is pending and ends the cede at once).
///
/// On powernv the loop is `stop` (or a spin on POWER8) with EE set by the
/// loop itself, and the frame keeps MSR\[HV\]: the kernel runs in
/// hypervisor state there.
pub fn idle_frame(cpu: usize, msr: u64) -> TrapFrame {
    // SAFETY: TrapFrame is plain integers (repr(C)); all-zero is valid.
    let mut f: TrapFrame = unsafe { core::mem::zeroed() };
    f.gpr[1] = crate::smp::idle_stack_top(cpu) - 128;
    f.gpr[2] = kernel_toc();
    f.srr0 = if !crate::platform::is_powernv() {
        &raw const proc_idle as u64
    } else if crate::platform::powernv::has_stop() {
        &raw const proc_idle_stop as u64
    } else {
        &raw const proc_idle_spin as u64
    };
    f.srr1 = msr | (arch_ppc64::registers::msr::read().bits() & Msr::HV.bits());
    f
}

fn kernel_toc() -> u64 {
    let toc: u64;
    // SAFETY: reads r2, the kernel TOC pointer.
    unsafe { core::arch::asm!("mr {0}, 2", out(reg) toc, options(nomem, nostack)) };
    toc
}
