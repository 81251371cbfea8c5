//! Interrupt round trips: `trap` (program interrupt 0x700), `sc` (system
//! call 0xc00), a nested interrupt, and the decrementer (0x900).

use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use arch_ppc64::registers::msr::{self, Msr};
use arch_ppc64::registers::spr::{timebase, Dec};

use crate::trap::{self, TrapFrame, Vector};

/// The value the probes load into GPR `n` before the interrupt.
const fn pattern(n: u64) -> u64 {
    ((0x1100 + n) << 48) | ((0x2200 + n) << 32) | ((0x3300 + n) << 16) | (0x4400 + n)
}

// probe_trap(out: r3) / probe_sc(out: r3): save the callee-saved state,
// load pattern(n) into every GPR but r1/r2, execute `trap` or `sc`, store
// all 32 GPRs to `out`, restore, return. r0 is the system-call number and
// r3..r8 its arguments for `sc`.
global_asm!(
    r#"
    .set PROBE_FRAME, 544
    .set PROBE_SAVE, 112
    .set PROBE_OUT, 272
    .set PROBE_REGS, 280

    .macro PROBE_PROLOGUE
    mflr    %r0
    std     %r0, 16(%r1)
    stdu    %r1, -PROBE_FRAME(%r1)
    std     %r2, PROBE_SAVE(%r1)
    .irp n, 13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    std     \n, PROBE_SAVE + 8 * (\n - 12)(%r1)
    .endr
    std     %r3, PROBE_OUT(%r1)
    .irp n, 0,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    lis     \n, 0x1100 + \n
    ori     \n, \n, 0x2200 + \n
    sldi    \n, \n, 32
    oris    \n, \n, 0x3300 + \n
    ori     \n, \n, 0x4400 + \n
    .endr
    .endm

    .macro PROBE_EPILOGUE
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    std     \n, PROBE_REGS + 8 * \n(%r1)
    .endr
    ld      %r3, PROBE_OUT(%r1)
    li      %r4, 32
    mtctr   %r4
    addi    %r4, %r1, PROBE_REGS - 8
    addi    %r3, %r3, -8
1:  ldu     %r5, 8(%r4)
    stdu    %r5, 8(%r3)
    bdnz    1b
    ld      %r2, PROBE_SAVE(%r1)
    .irp n, 13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    ld      \n, PROBE_SAVE + 8 * (\n - 12)(%r1)
    .endr
    addi    %r1, %r1, PROBE_FRAME
    ld      %r0, 16(%r1)
    mtlr    %r0
    blr
    .endm

    .section .text.probe_trap, "ax"
    .globl probe_trap
    .p2align 2
probe_trap:
    PROBE_PROLOGUE
    trap
    PROBE_EPILOGUE

    .section .text.probe_sc, "ax"
    .globl probe_sc
    .p2align 2
probe_sc:
    PROBE_PROLOGUE
    sc
    PROBE_EPILOGUE

    .purgem PROBE_PROLOGUE
    .purgem PROBE_EPILOGUE
"#
);

extern "C" {
    fn probe_trap(out: *mut [u64; 32]);
    fn probe_sc(out: *mut [u64; 32]);
}

/// The kernel TOC pointer (r2).
fn toc() -> u64 {
    let r2: u64;
    // SAFETY: reads r2 only.
    unsafe { core::arch::asm!("mr {0}, 2", out(reg) r2, options(nomem, nostack)) };
    r2
}

/// SRR1 bit 46 (ISA): the program interrupt was a trap.
const SRR1_PROGRAM_TRAP: u64 = 1 << (63 - 46);

static SEEN: spin::Mutex<Option<TrapFrame>> = spin::Mutex::new(None);
static DEPTH: AtomicUsize = AtomicUsize::new(0);
static MAX_DEPTH: AtomicUsize = AtomicUsize::new(0);

/// Program handler: records the frame, steps over the `trap`.
fn on_trap(frame: &mut TrapFrame) {
    assert_ne!(
        frame.srr1 & SRR1_PROGRAM_TRAP,
        0,
        "SRR1 {:#x} says trap",
        frame.srr1
    );
    *SEEN.lock() = Some(*frame);
    frame.srr0 += 4;
}

/// System call handler: r3 = r0 * 1000 + r3 + .. + r8 (SRR0 already points
/// past the `sc`).
fn on_syscall(frame: &mut TrapFrame) {
    *SEEN.lock() = Some(*frame);
    let args: u64 = frame.gpr[3..=8]
        .iter()
        .fold(0u64, |a, &x| a.wrapping_add(x));
    frame.gpr[3] = frame.gpr[0].wrapping_mul(1000).wrapping_add(args);
}

/// Program handler that traps once more from inside itself.
fn on_trap_nested(frame: &mut TrapFrame) {
    let depth = DEPTH.fetch_add(1, Ordering::SeqCst) + 1;
    MAX_DEPTH.fetch_max(depth, Ordering::SeqCst);
    if depth == 1 {
        let canary = 0x1234_5678_9abc_def0u64;
        let mut kept = canary;
        // SAFETY: `trap` enters this handler again (depth 2), which only
        // steps over it.
        unsafe { core::arch::asm!("trap", inout("r14") kept) };
        assert_eq!(kept, canary, "r14 survives a nested interrupt");
    }
    frame.srr0 += 4;
    DEPTH.fetch_sub(1, Ordering::SeqCst);
}

/// Restores the previous handler when the test ends; if the test fails
/// (its frames are abandoned, so this never drops), the harness restores
/// the whole handler table from the snapshot it took before the test.
struct HandlerGuard(Vector, Option<trap::TrapHandler>);

impl HandlerGuard {
    fn install(v: Vector, h: trap::TrapHandler) -> Self {
        Self(v, trap::set_handler(v, Some(h)))
    }
}

impl Drop for HandlerGuard {
    fn drop(&mut self) {
        trap::set_handler(self.0, self.1);
    }
}

kernel_test! {
    fn trap_returns_with_every_gpr_intact() {
        let _g = HandlerGuard::install(Vector::Program, on_trap);
        *SEEN.lock() = None;
        let mut out = [0u64; 32];
        // SAFETY: probe_trap saves and restores every register the ABI
        // asks it to; the handler above steps over its `trap`.
        unsafe { probe_trap(&mut out) };
        let seen = SEEN.lock().take().expect("the program handler ran");
        assert_eq!(seen.vector, 0x700);
        for n in (0..32).filter(|&n| n != 1 && n != 2) {
            assert_eq!(seen.gpr[n], pattern(n as u64), "r{n} in the trap frame");
            assert_eq!(out[n], pattern(n as u64), "r{n} after rfid");
        }
        assert_eq!(out[1], seen.gpr[1], "r1 after rfid");
        assert_eq!(out[2], toc(), "r2 after rfid");
        assert!(seen.srr1 & Msr::SF.bits() != 0, "interrupted in 64-bit mode");
    }

    fn system_call_passes_arguments_and_returns_a_value() {
        let _g = HandlerGuard::install(Vector::SystemCall, on_syscall);
        *SEEN.lock() = None;
        let mut out = [0u64; 32];
        // SAFETY: as for probe_trap; `sc` resumes after itself.
        unsafe { probe_sc(&mut out) };
        let seen = SEEN.lock().take().expect("the system call handler ran");
        assert_eq!(seen.vector, 0xc00);
        for n in 3..=8 {
            assert_eq!(seen.gpr[n], pattern(n as u64), "argument r{n} seen by the handler");
        }
        let expected = (3..=8)
            .map(pattern)
            .fold(pattern(0).wrapping_mul(1000), u64::wrapping_add);
        assert_eq!(out[3], expected, "return value in r3");
        for n in (0..32).filter(|&n| n != 1 && n != 2 && n != 3) {
            assert_eq!(out[n], pattern(n as u64), "r{n} preserved across sc");
        }
        assert_eq!(out[1], seen.gpr[1], "r1 preserved across sc");
        assert_eq!(out[2], toc(), "r2 preserved across sc");
    }

    fn nested_interrupt_returns_to_the_outer_handler() {
        let _g = HandlerGuard::install(Vector::Program, on_trap_nested);
        DEPTH.store(0, Ordering::SeqCst);
        MAX_DEPTH.store(0, Ordering::SeqCst);
        let mut out = [0u64; 32];
        // SAFETY: as for probe_trap.
        unsafe { probe_trap(&mut out) };
        assert_eq!(MAX_DEPTH.load(Ordering::SeqCst), 2, "the inner trap nested");
        assert_eq!(DEPTH.load(Ordering::SeqCst), 0);
        for n in (0..32).filter(|&n| n != 1 && n != 2) {
            assert_eq!(out[n], pattern(n as u64), "r{n} after the nested round trip");
        }
    }

    fn interrupt_stack_canary_is_set_and_survives_a_nested_round_trip() {
        // trap::init wrote the canary at the bottom of the interrupt
        // stack; every dispatch checks it (an overflow ends the run).
        assert!(trap::istack_canary_intact(), "canary written at init");
        let _g = HandlerGuard::install(Vector::Program, on_trap_nested);
        DEPTH.store(0, Ordering::SeqCst);
        let mut out = [0u64; 32];
        // SAFETY: as for probe_trap.
        unsafe { probe_trap(&mut out) };
        assert!(trap::istack_canary_intact(), "intact after nesting");
    }

    fn decrementer_interrupt_is_delivered() {
        static TICKS: AtomicU64 = AtomicU64::new(0);
        fn on_decrementer(_: &mut TrapFrame) {
            TICKS.fetch_add(1, Ordering::SeqCst);
            // Pending while DEC is negative (level-triggered on POWER7+):
            // push it far into the future.
            // SAFETY: writing DEC only schedules the next decrementer interrupt.
            unsafe { Dec::write(0x7fff_ffff) };
        }
        let _g = HandlerGuard::install(Vector::Decrementer, on_decrementer);
        TICKS.store(0, Ordering::SeqCst);
        let hz = crate::bootinfo::get().cpu.timebase_frequency.unwrap_or(512_000_000);
        let deadline = timebase() + u64::from(hz); // one second
        // SAFETY: a short DEC then MSR[EE]=1 delivers one decrementer
        // interrupt to the handler above; EE is cleared again below.
        unsafe {
            Dec::write(10_000);
            msr::write(msr::read() | Msr::EE);
        }
        while TICKS.load(Ordering::SeqCst) == 0 && timebase() < deadline {
            core::hint::spin_loop();
        }
        // SAFETY: masks external/decrementer interrupts again.
        unsafe { msr::write(msr::read() - Msr::EE) };
        assert_eq!(TICKS.load(Ordering::SeqCst), 1, "one decrementer interrupt within 1 s");
    }
}

/// The segment vectors' stub: `ld r13, 80(r13)` (the PACA's SLB area)
/// and a relative branch, inside the copied blob, to the fast path, whose
/// first instruction saves r12 in the area (`std r12, 0(r13)`).
fn assert_segment_stub(base: *const u32) {
    const LD_R13_80_R13: u32 = 0xe9ad_0050;
    const STD_R12_0_R13: u32 = 0xf98d_0000;
    // SAFETY: as in the caller: the copied vectors, read through the
    // linear map; the branch target is checked to lie in the blob first.
    unsafe {
        assert_eq!(base.add(2).read_volatile(), LD_R13_80_R13);
        let b = base.add(3).read_volatile();
        assert_eq!(b >> 26, 18, "a branch: {b:#010x}");
        assert_eq!(b & 3, 0, "relative, no link");
        let offset = (((b & 0x03ff_fffc) << 6) as i32 >> 6) as isize;
        let target = (base.add(3) as isize + offset) as u64;
        let real = crate::bootinfo::virt_to_real(target);
        assert!(
            real > 0x1000 && real < 0x2000,
            "in the copied blob: {real:#x}"
        );
        assert_eq!((target as *const u32).read_volatile(), STD_R12_0_R13);
    }
}

kernel_test! {
    fn every_vector_has_its_stub_at_real_address_0() {
        // The stubs were copied to real address 0; each starts with
        // `mtsprg1 r13` and loads its own offset with `li r12, vector`.
        const MTSPRG1_R13: u32 = 0x7db1_43a6;
        const LI_R12: u32 = 0x3980_0000;
        for v in Vector::ALL {
            let base = crate::bootinfo::real_to_virt(v as u64) as *const u32;
            // SAFETY: real addresses 0..0x1100 hold the copied vectors;
            // the bolted linear map makes them readable at their kernel
            // address (0xc000... + real) with translation on.
            let (first, fourth) = unsafe { (base.read_volatile(), base.add(3).read_volatile()) };
            assert_eq!(first, MTSPRG1_R13, "{v:?}: first instruction");
            if matches!(v, Vector::DataSegment | Vector::InstructionSegment) {
                assert_segment_stub(base);
                continue;
            }
            assert_eq!(fourth, LI_R12 | v as u32, "{v:?}: li r12, {:#x}", v as u64);
        }
    }

    fn handler_table_installs_and_restores() {
        let addr = |h: Option<trap::TrapHandler>| h.map(|h| h as *const () as usize);
        let ours = on_trap as *const () as usize;
        let previous = trap::set_handler(Vector::Alignment, Some(on_trap));
        assert_eq!(addr(trap::handler(Vector::Alignment)), Some(ours));
        let replaced = trap::set_handler(Vector::Alignment, previous);
        assert_eq!(addr(replaced), Some(ours));
        assert_eq!(addr(trap::handler(Vector::Alignment)), addr(previous));
        assert_eq!(Vector::from_offset(0x380), Some(Vector::DataSegment));
        assert_eq!(Vector::from_offset(0x390), None);
    }
}
