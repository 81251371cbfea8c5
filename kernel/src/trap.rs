//! Interrupt vectors, the trap frame and dispatch to Rust handlers.
//!
//! Book III-S delivers interrupts at real addresses 0x100..0xf80 with
//! MSR\[IR,DR\] = 0 (ISA 3.0 §6.5; QEMU `powerpc_excp_books`): SRR0 holds the
//! interrupted (or, for `sc`, the next) instruction, SRR1 the old MSR plus
//! cause bits, DAR/DSISR describe data faults.
//!
//! Layout: a position-independent blob (`.text.vectors`) of one 5-instruction
//! stub per vector plus a short common tail is copied to real address 0 once
//! Open Firmware is no longer needed. A stub parks r13 in SPRG1, loads the
//! per-CPU area from SPRG0 and jumps, through an absolute address taken from
//! that area, to `trap_common` in the kernel text. Nothing in the blob uses an
//! absolute address, so a later change can install the same blob at the
//! relocation-on (AIL) vectors 0xc000000000004000 + vector and run the
//! handlers with translation on. The segment interrupts 0x380 and 0x480
//! first try the SLB fast path (`crate::mm::hwslb`, in the blob's
//! `.text.vectors.slb` section, which the link script places before
//! `__vectors_end`), which loads the entry and returns by itself or comes
//! back to the same common tail. `trap_common` switches to the interrupt
//! stack (or, if already on it — a nested interrupt, e.g. a storage fault
//! taken by a handler — goes below the red zone; from problem state always
//! to its top), saves the full register state into a [`TrapFrame`], turns
//! MSR[IR|DR] on once the kernel runs translated
//! ([`set_handler_translation`]) and calls [`trap_dispatch`]; the handler
//! may edit the frame, or name another one to resume instead
//! ([`TrapFrame::resume_from`], a context switch), which is then restored
//! and resumed by `rfid` with the interrupted MSR. The restore
//! (`trap_return`) reads only memory of the bolted linear map, so no
//! interrupt can clobber SRR0/SRR1 between `mtsrr0` and `rfid` although
//! translation stays on. Everything before the Rust call runs in real mode
//! on the kernel image (reachable at its 0xc000… addresses there, the top
//! address bits being ignored), so it cannot fault and nesting is safe
//! once the scratch slots of the PACA are copied into the frame.
//!
//! Every processor has its own PACA (one per CPU index, holding the
//! index: [`cpu_index`]) and interrupt stack. The vectors are shared; the
//! PACA decides where the general path goes: the boot processor's to
//! `trap_common` and [`trap_dispatch`] with the handler table, a
//! secondary's ([`init_secondary`]) to `trap_common_secondary`, the same
//! code instantiated again, and `crate::smp::secondary_trap`, which sends
//! all but the external and idle decrementer interrupts on to
//! [`trap_dispatch`] and the same handlers (secondaries run processes:
//! their faults, system calls and program interrupts are handled as on
//! the boot processor). [`trap_dispatch`] checks the running processor's
//! own canary.
//!
//! The system call vector (0xc00) has a body of its own in the blob: a
//! `sc` from problem state saves only what the ELF ABI lets a call
//! clobber (r0, r2..r13 with the caller's r1, CR, LR, CTR, XER, SRR0,
//! SRR1) into the frame at the top of the interrupt stack and enters
//! `syscall_entry` translated, which calls the handler the fast table
//! ([`set_syscall_table`]) holds for r0 and returns with `rfid`; r14..r31
//! never leave the registers, since the Rust handler preserves them. A
//! number without a fast handler, or a handler answering
//! [`SyscallExit::Full`] (it would switch, block or end the process),
//! completes the frame and goes through [`trap_dispatch`] like any other
//! interrupt. A `sc` in the kernel always takes the general path.
//!
//! The hypervisor interrupts (0x980, 0xe00-0xea0, 0xf80) are never
//! delivered to a pseries guest (QEMU raises them only with LPCR\[VPM1\] or
//! in HV state). On powernv the kernel runs in hypervisor state and they
//! can arrive (an illegal instruction is a hypervisor emulation assistance
//! interrupt, 0xe40, there): their stubs copy HSRR0/HSRR1 into SRR0/SRR1
//! first, so the general path reports or handles them like any other and
//! returns with `rfid`. The hypervisor decrementer is kept quiet instead
//! (LPCR\[HDICE\] = 0, `crate::platform::powernv::init_cpu`).
//!
//! Floating-point registers are not saved: kernel code must not use FP in
//! handlers (nothing does; the kernel has no floating-point code).

use core::arch::global_asm;
use core::fmt;
use core::sync::atomic::{AtomicPtr, Ordering};

use arch_ppc64::instructions::barrier;
use arch_ppc64::registers::msr::{self, Msr};
use arch_ppc64::registers::spr::Sprg0;

use crate::bootinfo::{real_to_virt, virt_to_real, MAX_CPUS};

/// Per-CPU area the vectors reach through SPRG0 (offsets used by the asm).
#[repr(C, align(64))]
pub struct Paca {
    /// Saved r10 (offset 0).
    scratch_r10: u64,
    /// Saved r11 (8).
    scratch_r11: u64,
    /// Saved r12 (16).
    scratch_r12: u64,
    /// Saved CTR (24).
    scratch_ctr: u64,
    /// Saved CR (32).
    scratch_cr: u64,
    /// Absolute address of `trap_common` (40).
    common_entry: u64,
    /// Kernel TOC pointer (48).
    toc: u64,
    /// Top of the interrupt stack (56).
    istack_top: u64,
    /// Bottom of the interrupt stack (64).
    istack_bottom: u64,
    /// MSR bits `trap_common` sets before calling Rust (72): IR|DR once
    /// the kernel runs translated ([`set_handler_translation`]), else 0.
    handler_msr: u64,
    /// The SLB manager's per-processor area the segment-miss fast path
    /// works on (80; `crate::mm::hwslb`), set by [`set_slb_miss_area`]
    /// before translation goes on.
    slb_miss_area: u64,
    /// Where a system call from problem state puts its frame (88): the
    /// stack pointer `trap_common` would pick for it, the top of the
    /// interrupt stack less one frame.
    sc_frame: u64,
    /// Absolute address of `syscall_entry` (96).
    sc_entry: u64,
    /// The MSR `syscall_entry` runs with (104): the one an interrupt sets,
    /// plus [`Paca::handler_msr`].
    sc_msr: u64,
    /// System calls taken from problem state since boot (112).
    sc_count: u64,
    /// The fast system call table as the asm calls it (120): for each
    /// number, the code address of its [`SyscallHandler`], or of
    /// `syscall_full` where there is none.
    sc_code: [u64; SYSCALL_TABLE_MAX],
    /// This processor's CPU index (632): 0 for the boot processor, then
    /// the order of [`crate::bootinfo::CpuList`]. PIR cannot tell vCPUs
    /// apart under QEMU's TCG pseries, so this is how code learns which
    /// processor it runs on ([`cpu_index`]).
    cpu_index: u64,
    /// The pid of the process whose thread this processor runs, 0 for
    /// none (640): what the fast system calls read ([`current_pid`]).
    current_pid: u64,
}

const _: () = assert!(core::mem::offset_of!(Paca, slb_miss_area) == 80);
const _: () = assert!(core::mem::offset_of!(Paca, sc_code) == 120);
const _: () = assert!(core::mem::offset_of!(Paca, cpu_index) == 632);
const _: () = assert!(core::mem::offset_of!(Paca, current_pid) == 640);

/// Most entries a fast system call table may have (numbers from 0); the
/// asm's `SC_MAX`.
pub const SYSCALL_TABLE_MAX: usize = 64;

/// Interrupt stack size.
const ISTACK_SIZE: usize = 64 * 1024;

#[repr(C, align(16))]
struct InterruptStack([u8; ISTACK_SIZE]);

/// The boot processor's interrupt stack (the others' come from frames,
/// [`init_secondary`], so an unused CPU costs no BSS).
static mut ISTACK: InterruptStack = InterruptStack([0; ISTACK_SIZE]);

/// Bytes of each processor's interrupt stack.
pub const INTERRUPT_STACK_BYTES: usize = ISTACK_SIZE;

/// One PACA per CPU index; SPRG0 of each processor points at its own.
static mut PACAS: [Paca; MAX_CPUS] = [const {
    Paca {
        scratch_r10: 0,
        scratch_r11: 0,
        scratch_r12: 0,
        scratch_ctr: 0,
        scratch_cr: 0,
        common_entry: 0,
        toc: 0,
        istack_top: 0,
        istack_bottom: 0,
        handler_msr: 0,
        slb_miss_area: 0,
        sc_frame: 0,
        sc_entry: 0,
        sc_msr: 0,
        sc_count: 0,
        sc_code: [0; SYSCALL_TABLE_MAX],
        cpu_index: 0,
        current_pid: 0,
    }
}; MAX_CPUS];

/// The PACA of CPU `cpu` (`cpu < MAX_CPUS`).
fn paca_of(cpu: usize) -> *mut Paca {
    assert!(cpu < MAX_CPUS, "CPU index {cpu} beyond MAX_CPUS");
    // SAFETY: only the address of an element is taken; no reference to
    // the mutable static is formed.
    unsafe { (&raw mut PACAS).cast::<Paca>().add(cpu) }
}

/// The address of CPU `cpu`'s PACA (what its SPRG0 holds).
pub fn paca_address(cpu: usize) -> u64 {
    paca_of(cpu) as u64
}

/// The running processor's PACA, from SPRG0 (only valid after [`init`]
/// on the boot processor, and from the start on the others).
fn this_paca() -> *mut Paca {
    Sprg0::read() as *mut Paca
}

/// The running processor's CPU index: 0 on the boot processor (also
/// before [`init`], when SPRG0 still holds whatever firmware left there),
/// else the index its PACA records. A load from the PACA, plus a range
/// check so that a firmware value of SPRG0 is never dereferenced.
pub fn cpu_index() -> usize {
    let p = Sprg0::read();
    let first = paca_address(0);
    let bytes = (MAX_CPUS * core::mem::size_of::<Paca>()) as u64;
    if p.wrapping_sub(first) >= bytes {
        return 0;
    }
    // SAFETY: `p` lies inside PACAS (checked above) and SPRG0 only ever
    // holds the start of a PACA; an aligned load of a field set before
    // the processor first ran with this SPRG0.
    unsafe { (&raw const (*(p as *const Paca)).cpu_index).read_volatile() as usize }
}

/// The running processor's CPU index, from the PACA SPRG0 names, trusted:
/// two instructions, for code that runs only after [`init`] (handlers,
/// the kernel's locks; [`cpu_index`] also answers before).
#[inline(always)]
pub fn this_cpu_index() -> usize {
    // SAFETY: after `init` (boot processor) and from the start (the
    // others) SPRG0 holds this processor's PACA, whose index was written
    // before; an aligned load.
    let cpu = unsafe { (&raw const (*this_paca()).cpu_index).read_volatile() as usize };
    // SAFETY: `fill_paca` writes a PACA's index only through `paca_of`,
    // which refuses indexes beyond MAX_CPUS. Telling the compiler spares
    // the bounds checks of every per-CPU array indexed with it (two
    // instructions each on the scheduler's paths).
    unsafe { core::hint::assert_unchecked(cpu < MAX_CPUS) };
    cpu
}

/// The pid this processor's PACA records as running (0: none); see
/// [`set_current_pid`].
#[inline(always)]
pub fn current_pid() -> u32 {
    // SAFETY: as in `this_cpu_index`; only this processor writes it.
    unsafe { (&raw const (*this_paca()).current_pid).read_volatile() as u32 }
}

/// Records in this processor's PACA the pid of the process it runs (0:
/// none), for the fast system calls.
#[inline(always)]
pub fn set_current_pid(pid: u32) {
    // SAFETY: an aligned store to this processor's own PACA, which only
    // its own code reads.
    unsafe { (&raw mut (*this_paca()).current_pid).write_volatile(u64::from(pid)) }
}

/// The register state of an interrupted context (offsets used by the asm).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct TrapFrame {
    /// r0..r31 (r1 is the interrupted stack pointer, r13 from SPRG1).
    pub gpr: [u64; 32],
    /// Condition register.
    pub cr: u64,
    /// Link register.
    pub lr: u64,
    /// Count register.
    pub ctr: u64,
    /// Fixed-point exception register.
    pub xer: u64,
    /// SRR0: where `rfid` resumes.
    pub srr0: u64,
    /// SRR1: the MSR `rfid` restores (plus cause bits on entry).
    pub srr1: u64,
    /// Data address register.
    pub dar: u64,
    /// Data storage interrupt status register.
    pub dsisr: u64,
    /// The vector offset (0x100..0xf80).
    pub vector: u64,
    /// 0, or the address of the frame the interrupt return restores
    /// instead of this one ([`TrapFrame::resume_from`]).
    resume: u64,
}

impl TrapFrame {
    /// Makes the return from this interrupt restore `other` instead of
    /// this frame (a context switch without copying the incoming state).
    /// `other` must stay where it is until the return, which reads it with
    /// translation on (it may be anywhere in RAM); the handler may still
    /// change it.
    pub fn resume_from(&mut self, other: &TrapFrame) {
        self.resume = other as *const TrapFrame as u64;
    }
}

const _: () = assert!(core::mem::size_of::<TrapFrame>() == 336);

/// Bytes `trap_common` takes from the stack per interrupt: the ELFv1
/// header and the frame (FRAME_BYTES in the asm).
const FRAME_BYTES: u64 = 112 + 336;

// Stack frame: 112-byte ELFv1 header (back chain, CR/LR save, TOC save,
// parameter save area) then the TrapFrame; 448 bytes, 16-byte aligned.
global_asm!(
    r#"
    .set PACA_R10, 0
    .set PACA_R11, 8
    .set PACA_R12, 16
    .set PACA_CTR, 24
    .set PACA_CR, 32
    .set PACA_COMMON, 40
    .set PACA_TOC, 48
    .set PACA_ISTACK_TOP, 56
    .set PACA_ISTACK_BOTTOM, 64
    .set PACA_HANDLER_MSR, 72
    .set PACA_SLB_MISS_AREA, 80
    .set PACA_SC_FRAME, 88
    .set PACA_SC_ENTRY, 96
    .set PACA_SC_MSR, 104
    .set PACA_SC_COUNT, 112
    .set PACA_SC_CODE, 120
    .set SC_MAX, 64
    .set TF, 112
    .set TF_CR, TF + 256
    .set TF_LR, TF + 264
    .set TF_CTR, TF + 272
    .set TF_XER, TF + 280
    .set TF_SRR0, TF + 288
    .set TF_SRR1, TF + 296
    .set TF_DAR, TF + 304
    .set TF_DSISR, TF + 312
    .set TF_VECTOR, TF + 320
    .set TF_RESUME, TF + 328
    .set FRAME_BYTES, TF + 336

    # Every stub parks r13 in SPRG1, loads the PACA, frees r12 and loads
    # the vector into it, then branches to its body in the blob: the
    # general one (vectors_common) unless the vector has its own.
    .macro VECTOR vec, body=vectors_common
    .org \vec
    mtsprg1 %r13
    mfsprg0 %r13
    std     %r12, PACA_R12(%r13)
    li      %r12, \vec
    b       \body
    .endm

    .section .text.vectors, "ax"
    .globl __vectors_start
    .p2align 8
__vectors_start:
    .long 0
    VECTOR 0x100
    VECTOR 0x200
    VECTOR 0x300
    # Segment interrupts go to the fast path (kernel/src/mm/hwslb.rs) with
    # r13 = the SLB area; it returns by rfid, or, for an ESID in no table,
    # comes back to slb_miss_*_full with every register as interrupted
    # but r13 (in SPRG1).
    .org 0x380
    mtsprg1 %r13
    mfsprg0 %r13
    ld      %r13, PACA_SLB_MISS_AREA(%r13)
    b       slb_miss_data
    VECTOR 0x400
    .org 0x480
    mtsprg1 %r13
    mfsprg0 %r13
    ld      %r13, PACA_SLB_MISS_AREA(%r13)
    b       slb_miss_instruction
    VECTOR 0x500
    VECTOR 0x600
    VECTOR 0x700
    VECTOR 0x800
    VECTOR 0x900
    VECTOR 0x980, hv_common
    VECTOR 0xa00
    VECTOR 0xb00
    VECTOR 0xc00, syscall_vector
    VECTOR 0xd00
    VECTOR 0xe00, hv_common
    VECTOR 0xe20, hv_common
    VECTOR 0xe40, hv_common
    VECTOR 0xe60, hv_common
    VECTOR 0xe80, hv_common
    VECTOR 0xea0, hv_common
    VECTOR 0xec0
    VECTOR 0xee0
    VECTOR 0xf00
    VECTOR 0xf20
    VECTOR 0xf40
    VECTOR 0xf60
    VECTOR 0xf80, hv_common
    .org 0x1000
vectors_common:
    std     %r11, PACA_R11(%r13)
    mfcr    %r11
    std     %r11, PACA_CR(%r13)
vectors_common_ctr:
    mfctr   %r11
    std     %r11, PACA_CTR(%r13)
    ld      %r11, PACA_COMMON(%r13)
    mtctr   %r11
    bctr
    # The hypervisor interrupts (powernv: the kernel runs in hypervisor
    # state) save the interrupted PC and MSR in HSRR0/HSRR1: copy them to
    # SRR0/SRR1, where the general path and its rfid expect them (rfid in
    # hypervisor state restores MSR[HV] from SRR1 too).
hv_common:
    std     %r11, PACA_R11(%r13)
    mfspr   %r11, 314              # HSRR0
    mtsrr0  %r11
    mfspr   %r11, 315              # HSRR1
    mtsrr1  %r11
    mfcr    %r11
    std     %r11, PACA_CR(%r13)
    b       vectors_common_ctr
    # The segment-miss fast path's way to the full path: as the VECTOR
    # stub would have gone.
    .globl slb_miss_data_full
slb_miss_data_full:
    mfsprg0 %r13
    std     %r12, PACA_R12(%r13)
    li      %r12, 0x380
    b       vectors_common
    .globl slb_miss_instruction_full
slb_miss_instruction_full:
    mfsprg0 %r13
    std     %r12, PACA_R12(%r13)
    li      %r12, 0x480
    b       vectors_common

    # 0xc00 from problem state: the caller's r1 is never trusted and the
    # frame always sits at the top of the interrupt stack (PACA_SC_FRAME,
    # where trap_common would put it too). Only the registers the ELF ABI
    # lets a call clobber are saved here, in real mode, straight into
    # that frame; r14..r31 stay live in the registers, since the Rust
    # handler preserves them. rfid then enters syscall_entry with
    # translation on (the handler MSR), which is cheaper than turning it
    # on with mtmsrd and branching through CTR. A `sc` in the kernel
    # (kernel tests; a bug otherwise) takes the general path.
syscall_vector:
    std     %r11, PACA_R11(%r13)
    mfcr    %r11
    mfsrr1  %r12
    andi.   %r12, %r12, 0x4000
    beq     1f
    ld      %r12, PACA_SC_FRAME(%r13)
    std     %r11, TF_CR(%r12)
    std     %r1, TF + 8(%r12)
    mr      %r1, %r12
    std     %r0, TF + 0(%r1)
    std     %r2, TF + 16(%r1)
    std     %r3, TF + 24(%r1)
    std     %r4, TF + 32(%r1)
    std     %r5, TF + 40(%r1)
    std     %r6, TF + 48(%r1)
    std     %r7, TF + 56(%r1)
    std     %r8, TF + 64(%r1)
    std     %r9, TF + 72(%r1)
    std     %r10, TF + 80(%r1)
    ld      %r11, PACA_R11(%r13)
    std     %r11, TF + 88(%r1)
    ld      %r11, PACA_R12(%r13)
    std     %r11, TF + 96(%r1)
    mfsprg1 %r11
    std     %r11, TF + 104(%r1)
    mflr    %r11
    std     %r11, TF_LR(%r1)
    mfctr   %r11
    std     %r11, TF_CTR(%r1)
    mfxer   %r11
    std     %r11, TF_XER(%r1)
    mfsrr0  %r11
    std     %r11, TF_SRR0(%r1)
    mfsrr1  %r11
    std     %r11, TF_SRR1(%r1)
    ld      %r11, PACA_SC_COUNT(%r13)
    addi    %r11, %r11, 1
    std     %r11, PACA_SC_COUNT(%r13)
    ld      %r2, PACA_TOC(%r13)
    ld      %r11, PACA_SC_ENTRY(%r13)
    mtsrr0  %r11
    ld      %r11, PACA_SC_MSR(%r13)
    mtsrr1  %r11
    rfid
1:  std     %r11, PACA_CR(%r13)
    li      %r12, 0xc00
    b       vectors_common_ctr
    # The blob goes on with the fast path's section (.text.vectors.slb);
    # the link script puts __vectors_end after it.
    .purgem VECTOR

    # The entry every interrupt of the general path reaches through its
    # PACA: \name saves the state and calls \dispatch with the frame.
    # Instantiated twice: trap_common (the boot processor, trap_dispatch
    # and the handler table) falls through into trap_return;
    # trap_common_secondary (crate::smp::secondary_trap) branches there.
    # The copy costs the boot processor nothing per interrupt, where a
    # dispatch address in the PACA would cost a load and an indirect call.
    .macro TRAP_ENTRY name, dispatch
    .globl \name
    .p2align 4
\name:
    # r13 = PACA, r12 = vector; r11, r12, CR, CTR in the PACA; r13 in SPRG1.
    std     %r10, PACA_R10(%r13)
    ld      %r11, PACA_ISTACK_TOP(%r13)
    # From problem state (SRR1[PR], ISA bit 49): r1 is the program's and
    # is never trusted; start at the top of the interrupt stack.
    mfsrr1  %r10
    andi.   %r10, %r10, 0x4000
    bne     1f
    ld      %r10, PACA_ISTACK_BOTTOM(%r13)
    cmpld   %r1, %r10
    blt     1f
    cmpld   %r1, %r11
    bge     1f
    # Already on the interrupt stack (nested): stay below the 288-byte
    # red zone the ELF ABI lets leaf code use under r1.
    addi    %r11, %r1, -288
1:  addi    %r11, %r11, -FRAME_BYTES
    clrrdi  %r11, %r11, 4
    std     %r1, 0(%r11)
    std     %r1, TF + 8(%r11)
    mr      %r1, %r11
    std     %r0, TF + 0(%r1)
    std     %r2, TF + 16(%r1)
    std     %r3, TF + 24(%r1)
    std     %r4, TF + 32(%r1)
    std     %r5, TF + 40(%r1)
    std     %r6, TF + 48(%r1)
    std     %r7, TF + 56(%r1)
    std     %r8, TF + 64(%r1)
    std     %r9, TF + 72(%r1)
    ld      %r10, PACA_R10(%r13)
    std     %r10, TF + 80(%r1)
    ld      %r10, PACA_R11(%r13)
    std     %r10, TF + 88(%r1)
    ld      %r10, PACA_R12(%r13)
    std     %r10, TF + 96(%r1)
    mfsprg1 %r10
    std     %r10, TF + 104(%r1)
    .irp n, 14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    std     \n, TF + 8 * \n(%r1)
    .endr
    ld      %r10, PACA_CR(%r13)
    std     %r10, TF_CR(%r1)
    mflr    %r10
    std     %r10, TF_LR(%r1)
    ld      %r10, PACA_CTR(%r13)
    std     %r10, TF_CTR(%r1)
    mfxer   %r10
    std     %r10, TF_XER(%r1)
    mfsrr0  %r10
    std     %r10, TF_SRR0(%r1)
    mfsrr1  %r10
    std     %r10, TF_SRR1(%r1)
    mfdar   %r10
    std     %r10, TF_DAR(%r1)
    mfdsisr %r10
    std     %r10, TF_DSISR(%r1)
    std     %r12, TF_VECTOR(%r1)
    li      %r10, 0
    std     %r10, TF_RESUME(%r1)

    ld      %r2, PACA_TOC(%r13)
    # Everything the interrupted context needs is saved: turn translation
    # on (IR|DR, when the kernel runs translated) so the handler runs on
    # the bolted linear map and may touch VMM memory; a fault there nests
    # (real mode again, frame below this one on the interrupt stack).
    ld      %r10, PACA_HANDLER_MSR(%r13)
    mfmsr   %r11
    or      %r11, %r11, %r10
    mtmsrd  %r11
    isync
    addi    %r3, %r1, TF
    bl      \dispatch
    nop
    .endm

    .section .text.trap_common_secondary, "ax"
    TRAP_ENTRY trap_common_secondary, smp_secondary_trap
    b       trap_return

    .section .text.trap_common, "ax"
    TRAP_ENTRY trap_common, trap_dispatch
    .purgem TRAP_ENTRY

    .globl trap_return
trap_return:
    # r1 = the frame's stack pointer (the frame is 112 bytes above it, on
    # the interrupt stack), or its TF_RESUME names another frame to
    # restore (a context switch: the incoming process's saved state).
    # Translation stays as the handler ran: everything read here, the
    # interrupt stack, a process's frame anywhere in RAM and this code,
    # is in the bolted linear map, whose SLB entry and HPTEs are never
    # removed, so no storage or segment interrupt can come between mtsrr0
    # and rfid to overwrite SRR0/SRR1 (and EE = 0). Before translation
    # is on, the same holds in real mode.
    ld      %r10, TF_RESUME(%r1)
    cmpdi   %r10, 0
    beq     1f
    addi    %r1, %r10, -TF
1:  ld      %r10, TF_SRR0(%r1)
    mtsrr0  %r10
    ld      %r10, TF_SRR1(%r1)
    mtsrr1  %r10
    ld      %r10, TF_CR(%r1)
    mtcr    %r10
    ld      %r10, TF_LR(%r1)
    mtlr    %r10
    ld      %r10, TF_CTR(%r1)
    mtctr   %r10
    ld      %r10, TF_XER(%r1)
    mtxer   %r10
    ld      %r0, TF + 0(%r1)
    .irp n, 2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    ld      \n, TF + 8 * \n(%r1)
    .endr
    ld      %r1, TF + 8(%r1)
    rfid

    # A system call from problem state, translation on (syscall_vector
    # saved the volatile state): r1 = the frame, r2 = TOC, r13 = PACA,
    # r0 and r3..r8 the caller's, r14..r31 the caller's. Dispatch through
    # the PACA's code table: bounds-checked index r0; a number without a
    # handler lands on syscall_full, as does a handler answering non-zero:
    # the full path completes the frame and calls trap_dispatch like any
    # other interrupt. Every handler shares the kernel TOC already in r2
    # (set_syscall_table checks it), so the table holds code addresses.
    .section .text.syscall_entry, "ax"
    .globl syscall_entry
    .p2align 4
syscall_entry:
    cmpldi  %r0, SC_MAX
    bge     syscall_full
    sldi    %r12, %r0, 3
    addi    %r12, %r12, PACA_SC_CODE
    ldx     %r12, %r13, %r12
    mtctr   %r12
    addi    %r3, %r1, TF
    bctrl
    cmpdi   %r3, 0
    bne     syscall_full
    # Back to the caller with translation still on, as in trap_return.
    ld      %r0, TF_SRR0(%r1)
    mtsrr0  %r0
    ld      %r0, TF_SRR1(%r1)
    mtsrr1  %r0
    ld      %r0, TF_CR(%r1)
    mtcr    %r0
    ld      %r0, TF_LR(%r1)
    mtlr    %r0
    ld      %r0, TF_CTR(%r1)
    mtctr   %r0
    ld      %r0, TF_XER(%r1)
    mtxer   %r0
    .irp n, 0,2,3,4,5,6,7,8,9,10,11,12,13
    ld      \n, TF + 8 * \n(%r1)
    .endr
    ld      %r1, TF + 8(%r1)
    rfid

    .globl syscall_full
syscall_full:
    # r14..r31 still hold the caller's values: the handler, if one ran,
    # preserved them (ELF ABI). Complete the frame as trap_common would.
    .irp n, 14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    std     \n, TF + 8 * \n(%r1)
    .endr
    ld      %r11, TF + 8(%r1)
    std     %r11, 0(%r1)
    li      %r11, 0
    std     %r11, TF_DAR(%r1)
    std     %r11, TF_DSISR(%r1)
    std     %r11, TF_RESUME(%r1)
    li      %r11, 0xc00
    std     %r11, TF_VECTOR(%r1)
    ld      %r2, PACA_TOC(%r13)
    addi    %r3, %r1, TF
    bl      trap_dispatch
    nop
    b       trap_return
"#
);

extern "C" {
    static __vectors_start: u8;
    static __vectors_end: u8;
    /// The asm entry (a plain code label, not an ELFv1 descriptor).
    static trap_common: u8;
    /// The secondary processors' asm entry (a code label).
    static trap_common_secondary: u8;
    /// Where `syscall_vector` enters the kernel text (a code label).
    static syscall_entry: u8;
    /// The full system call path (a code label).
    static syscall_full: u8;
}

/// The interrupt vectors of Book III-S as QEMU's POWER7-10 models raise
/// them (`init_excp_POWER7/8/9`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
// "Vector Unavailable" is the ISA's name for the VMX interrupt.
#[allow(clippy::enum_variant_names)]
pub enum Vector {
    /// System reset.
    SystemReset = 0x100,
    /// Machine check.
    MachineCheck = 0x200,
    /// Data storage (DSI): DAR/DSISR describe the access.
    DataStorage = 0x300,
    /// Data segment: no SLB entry for DAR.
    DataSegment = 0x380,
    /// Instruction storage (ISI): cause in SRR1.
    InstructionStorage = 0x400,
    /// Instruction segment: no SLB entry for SRR0.
    InstructionSegment = 0x480,
    /// External.
    External = 0x500,
    /// Alignment.
    Alignment = 0x600,
    /// Program (trap, illegal or privileged instruction; cause in SRR1).
    Program = 0x700,
    /// Floating-point unavailable.
    FpUnavailable = 0x800,
    /// Decrementer.
    Decrementer = 0x900,
    /// Hypervisor decrementer.
    HypervisorDecrementer = 0x980,
    /// Directed privileged doorbell.
    Doorbell = 0xa00,
    /// Reserved 0xb00.
    Reserved0xb00 = 0xb00,
    /// System call (`sc`).
    SystemCall = 0xc00,
    /// Trace.
    Trace = 0xd00,
    /// Hypervisor data storage.
    HypervisorDataStorage = 0xe00,
    /// Hypervisor instruction storage.
    HypervisorInstructionStorage = 0xe20,
    /// Hypervisor emulation assistance.
    HypervisorEmulationAssistance = 0xe40,
    /// Hypervisor maintenance.
    HypervisorMaintenance = 0xe60,
    /// Directed hypervisor doorbell.
    HypervisorDoorbell = 0xe80,
    /// Hypervisor virtualization.
    HypervisorVirtualization = 0xea0,
    /// Reserved 0xec0.
    Reserved0xec0 = 0xec0,
    /// Reserved 0xee0.
    Reserved0xee0 = 0xee0,
    /// Performance monitor.
    PerformanceMonitor = 0xf00,
    /// Vector (VMX) unavailable.
    VectorUnavailable = 0xf20,
    /// VSX unavailable.
    VsxUnavailable = 0xf40,
    /// Facility unavailable.
    FacilityUnavailable = 0xf60,
    /// Hypervisor facility unavailable.
    HypervisorFacilityUnavailable = 0xf80,
}

impl Vector {
    /// Every vector, in address order.
    pub const ALL: [Vector; 29] = [
        Vector::SystemReset,
        Vector::MachineCheck,
        Vector::DataStorage,
        Vector::DataSegment,
        Vector::InstructionStorage,
        Vector::InstructionSegment,
        Vector::External,
        Vector::Alignment,
        Vector::Program,
        Vector::FpUnavailable,
        Vector::Decrementer,
        Vector::HypervisorDecrementer,
        Vector::Doorbell,
        Vector::Reserved0xb00,
        Vector::SystemCall,
        Vector::Trace,
        Vector::HypervisorDataStorage,
        Vector::HypervisorInstructionStorage,
        Vector::HypervisorEmulationAssistance,
        Vector::HypervisorMaintenance,
        Vector::HypervisorDoorbell,
        Vector::HypervisorVirtualization,
        Vector::Reserved0xec0,
        Vector::Reserved0xee0,
        Vector::PerformanceMonitor,
        Vector::VectorUnavailable,
        Vector::VsxUnavailable,
        Vector::FacilityUnavailable,
        Vector::HypervisorFacilityUnavailable,
    ];

    /// The vector with offset `offset`.
    pub fn from_offset(offset: u64) -> Option<Vector> {
        Self::ALL.iter().copied().find(|v| *v as u64 == offset)
    }

    /// Slot in the handler table (vectors are 0x20 apart at the finest).
    fn slot(self) -> usize {
        (self as u64 / 0x20) as usize
    }
}

/// A Rust interrupt handler; it may change the frame (e.g. advance SRR0,
/// set r3) before the interrupted context resumes.
pub type TrapHandler = fn(&mut TrapFrame);

const SLOTS: usize = 0x1000 / 0x20;

/// The handler table: each slot holds a [`TrapHandler`] as a raw pointer,
/// or null. Atomics rather than a lock, because an interrupt can arrive
/// while [`set_handler`] runs (a lock would deadlock the dispatcher).
static HANDLERS: [AtomicPtr<()>; SLOTS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; SLOTS];

fn decode(p: *mut ()) -> Option<TrapHandler> {
    if p.is_null() {
        None
    } else {
        // SAFETY: non-null slots only ever hold a `TrapHandler` stored by
        // `set_handler`; fn pointers and data pointers have the same size
        // and representation on powerpc64.
        Some(unsafe { core::mem::transmute::<*mut (), TrapHandler>(p) })
    }
}

/// Installs `handler` for `vector` (or removes it with `None`); returns the
/// previous handler.
pub fn set_handler(vector: Vector, handler: Option<TrapHandler>) -> Option<TrapHandler> {
    let new = handler.map_or(core::ptr::null_mut(), |h| h as *mut ());
    decode(HANDLERS[vector.slot()].swap(new, Ordering::SeqCst))
}

/// The handler installed for `vector`.
pub fn handler(vector: Vector) -> Option<TrapHandler> {
    decode(HANDLERS[vector.slot()].load(Ordering::SeqCst))
}

/// Every installed handler (and the problem-state fallback), to put back
/// with [`restore_handlers`] after a test that changed them was
/// abandoned.
#[derive(Clone, Copy)]
pub struct HandlerSnapshot {
    slots: [*mut (); SLOTS],
    fallback: *mut (),
    syscalls: Option<&'static [Option<SyscallHandler>]>,
}

/// The current handler table.
pub fn snapshot_handlers() -> HandlerSnapshot {
    HandlerSnapshot {
        slots: core::array::from_fn(|i| HANDLERS[i].load(Ordering::SeqCst)),
        fallback: PROBLEM_STATE_FALLBACK.load(Ordering::SeqCst),
        syscalls: syscall_table(),
    }
}

/// Puts back the handler table `snap` recorded.
pub fn restore_handlers(snap: &HandlerSnapshot) {
    for (slot, &p) in HANDLERS.iter().zip(&snap.slots) {
        slot.store(p, Ordering::SeqCst);
    }
    PROBLEM_STATE_FALLBACK.store(snap.fallback, Ordering::SeqCst);
    set_syscall_table(snap.syscalls);
}

/// Handler for an interrupt without its own handler taken in problem
/// state (`SRR1\[PR\]` = 1), or null: set by the process scheduler while
/// processes run, so a process that raises, e.g., a floating-point
/// unavailable interrupt is killed rather than ending the run.
static PROBLEM_STATE_FALLBACK: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// Installs `handler` for every interrupt taken in problem state whose
/// vector has no handler of its own (or removes it with `None`); returns
/// the previous one. Without it such an interrupt ends the run, as one
/// taken in the kernel always does.
pub fn set_problem_state_fallback(handler: Option<TrapHandler>) -> Option<TrapHandler> {
    let new = handler.map_or(core::ptr::null_mut(), |h| h as *mut ());
    decode(PROBLEM_STATE_FALLBACK.swap(new, Ordering::SeqCst))
}

/// The handler [`set_problem_state_fallback`] installed.
pub fn problem_state_fallback() -> Option<TrapHandler> {
    decode(PROBLEM_STATE_FALLBACK.load(Ordering::SeqCst))
}

/// What a [`SyscallHandler`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum SyscallExit {
    /// Done: return to the caller with the frame's volatile registers
    /// (r3 etc. as the handler set them).
    Return = 0,
    /// Not handled here (it would switch, block or end the process):
    /// the frame is completed with r14..r31 and the call goes to the
    /// 0xc00 [`TrapHandler`], as every interrupt does. The handler must
    /// not have changed anything it would do differently then.
    Full = 1,
}

/// A handler on the system call fast path, for `sc` from problem state:
/// its frame holds r0..r13, CR, LR, CTR, XER, SRR0 and SRR1 of the caller
/// but not r14..r31 (still live in the registers; this function preserves
/// them, as the ELF ABI asks) nor DAR, DSISR or the vector. It may change
/// any saved register; [`SyscallExit::Full`] hands the call to the full
/// path.
pub type SyscallHandler = extern "C" fn(&mut TrapFrame) -> SyscallExit;

/// The table [`set_syscall_table`] installed.
static SYSCALL_TABLE: spin::Mutex<Option<&'static [Option<SyscallHandler>]>> =
    spin::Mutex::new(None);

/// Installs the fast system call table (or removes it with `None`): a
/// `sc` from problem state with r0 = `n` calls `table[n]`; a number
/// beyond the table or a `None` entry goes to the 0xc00 [`TrapHandler`]
/// with the full frame, as with no table at all. Returns the previous
/// table.
pub fn set_syscall_table(
    table: Option<&'static [Option<SyscallHandler>]>,
) -> Option<&'static [Option<SyscallHandler>]> {
    let entries = table.unwrap_or(&[]);
    assert!(
        entries.len() <= SYSCALL_TABLE_MAX,
        "a fast system call table has at most {SYSCALL_TABLE_MAX} entries"
    );
    let full = &raw const syscall_full as u64;
    let toc = kernel_toc();
    let code: [u64; SYSCALL_TABLE_MAX] = core::array::from_fn(|n| match entries.get(n) {
        Some(Some(h)) => {
            let descriptor = *h as *const [u64; 2];
            // SAFETY: an ELFv1 function pointer is the address of its
            // descriptor (entry, TOC, environment) in the kernel image.
            let [entry, its_toc] = unsafe { descriptor.read() };
            assert_eq!(its_toc, toc, "system call {n}: handler with another TOC");
            entry
        }
        _ => full,
    });
    // Every processor's copy: each vector reads the table of its own PACA
    // (one load less on the system call path than a shared pointer).
    for cpu in 0..MAX_CPUS {
        // SAFETY: plain stores to a PACA, which only the 0xc00 vector
        // reads; tables change between process runs (`crate::proc::run`
        // installs and removes its own), when no processor runs problem
        // state, so no vector sees a partial table.
        unsafe { (&raw mut (*paca_of(cpu)).sc_code).write_volatile(code) };
    }
    core::mem::replace(&mut *SYSCALL_TABLE.lock(), table)
}

/// The kernel TOC pointer (r2).
fn kernel_toc() -> u64 {
    let toc: u64;
    // SAFETY: reads r2, the kernel TOC pointer.
    unsafe { core::arch::asm!("mr {0}, 2", out(reg) toc, options(nomem, nostack)) };
    toc
}

/// The installed fast system call table.
pub fn syscall_table() -> Option<&'static [Option<SyscallHandler>]> {
    *SYSCALL_TABLE.lock()
}

/// System calls (`sc` from problem state) taken since boot, fast and
/// full path alike.
pub fn syscall_count() -> u64 {
    (0..MAX_CPUS)
        .map(|cpu| {
            // SAFETY: an aligned load of a counter only that processor's
            // 0xc00 vector writes.
            unsafe { (&raw const (*paca_of(cpu)).sc_count).read_volatile() }
        })
        .sum()
}

/// Written at the bottom of the interrupt stack by [`init`]; a handler
/// that overflows the stack overwrites it, and [`trap_dispatch`] checks it
/// on every interrupt.
const ISTACK_CANARY: u64 = 0x15a7_c0de_dead_b00f;

fn istack_canary() -> *mut u64 {
    (&raw mut ISTACK).cast::<u64>()
}

/// Whether the boot processor's interrupt stack canary is intact.
pub fn istack_canary_intact() -> bool {
    // SAFETY: the first doubleword of the interrupt stack, a static;
    // volatile because the stack is written by asm and overflowing code.
    unsafe { istack_canary().read_volatile() == ISTACK_CANARY }
}

/// CPU `cpu`'s interrupt stack as `(bottom, top)` addresses (zeroes for
/// a CPU that was never set up).
pub fn istack_of(cpu: usize) -> (u64, u64) {
    let p = paca_of(cpu);
    // SAFETY: aligned loads of two words written once, before the CPU
    // was started ([`init`], [`init_secondary`]).
    unsafe {
        (
            (&raw const (*p).istack_bottom).read_volatile(),
            (&raw const (*p).istack_top).read_volatile(),
        )
    }
}

/// Whether the canary at the bottom of CPU `cpu`'s interrupt stack is
/// intact (false for a CPU that was never set up).
pub fn istack_canary_intact_of(cpu: usize) -> bool {
    let (bottom, _) = istack_of(cpu);
    // SAFETY: `bottom` is the first doubleword of that CPU's interrupt
    // stack (kernel memory, on the linear map), written by `init` or
    // `init_secondary`.
    bottom != 0 && unsafe { (bottom as *const u64).read_volatile() == ISTACK_CANARY }
}

/// Called by `trap_common` with the saved state.
#[no_mangle]
pub extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    // This processor's canary: one load from its PACA, one from its stack.
    let paca = this_paca();
    // SAFETY: SPRG0 holds this processor's PACA once any interrupt can
    // come (`init`, `init_secondary`); `istack_bottom` was written before
    // and is the first doubleword of its interrupt stack.
    let canary = unsafe { ((*paca).istack_bottom as *const u64).read_volatile() };
    if canary != ISTACK_CANARY {
        // The stack below this frame is gone: no unwinding to the
        // harness, report and stop.
        crate::console::print_fmt_unlocked(format_args!(
            "\ninterrupt stack overflow on CPU {}: canary overwritten; interrupt {:#x}\n{frame}",
            cpu_index(),
            frame.vector
        ));
        crate::platform::exit(false, "interrupt stack overflow");
    }
    // The stubs only ever pass their own offsets; the slot is the
    // offset / 0x20 that `Vector::slot` gives.
    let slot = (frame.vector / 0x20) as usize;
    if let Some(h) = HANDLERS
        .get(slot)
        .and_then(|p| decode(p.load(Ordering::SeqCst)))
    {
        return h(frame);
    }
    // SRR1[PR] (ISA bit 49): the interrupted context was problem state.
    let from_problem_state = frame.srr1 & Msr::PR.bits() != 0;
    match problem_state_fallback() {
        Some(h) if from_problem_state => h(frame),
        _ => unexpected(frame),
    }
}

/// Reports an interrupt nobody handles and fails the run (or the running
/// test, which the harness then reports).
fn unexpected(frame: &TrapFrame) -> ! {
    crate::console::print_fmt_unlocked(format_args!(
        "\nunexpected interrupt {:#x} ({:?})\n{frame}",
        frame.vector,
        Vector::from_offset(frame.vector)
    ));
    panic!(
        "unexpected interrupt {:#x} at SRR0={:#x} SRR1={:#x} DAR={:#x} DSISR={:#x}",
        frame.vector, frame.srr0, frame.srr1, frame.dar, frame.dsisr
    );
}

impl fmt::Display for TrapFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "SRR0={:#018x} SRR1={:#018x} DAR={:#018x} DSISR={:#010x}",
            self.srr0, self.srr1, self.dar, self.dsisr
        )?;
        writeln!(
            f,
            "LR  ={:#018x} CTR ={:#018x} CR={:#010x} XER={:#010x}",
            self.lr, self.ctr, self.cr, self.xer
        )?;
        for row in 0..8 {
            for col in 0..4 {
                let n = row * 4 + col;
                write!(f, "r{n:<2}={:#018x} ", self.gpr[n])?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Makes data written at `[start, start + len)` visible to instruction
/// fetch (Book II §1.8: dcbst, sync, icbi, isync). The range must be
/// mapped (or, in real mode, real memory).
pub fn sync_icache(start: u64, len: u64) {
    const LINE: u64 = 128;
    let mut a = start & !(LINE - 1);
    while a < start + len {
        // SAFETY: dcbst only writes back a cache line of memory we own.
        unsafe { core::arch::asm!("dcbst 0, {0}", in(reg) a, options(nostack)) };
        a += LINE;
    }
    barrier::sync();
    let mut a = start & !(LINE - 1);
    while a < start + len {
        // SAFETY: icbi only invalidates instruction-cache lines.
        unsafe { core::arch::asm!("icbi 0, {0}", in(reg) a, options(nostack)) };
        a += LINE;
    }
    barrier::sync();
    barrier::isync();
}

/// Makes `trap_common` turn MSR[IR|DR] on before calling the Rust
/// handler (`on`), or leave the handler in real mode. The interrupted
/// MSR comes back from SRR1 either way.
pub fn set_handler_translation(on: bool) {
    let bits = if on { Msr::RELOCATE.bits() } else { 0 };
    // What an interrupt leaves in the MSR (ISA "Interrupt Processing"):
    // SF set, HV and ME kept, LE from LPCR[ILE] (the kernel's own, big
    // endian), everything else 0 (EE, PR, IR, DR, RI, FP ...).
    let interrupt_msr =
        Msr::SF.bits() | (msr::read().bits() & (Msr::HV | Msr::ME | Msr::LE).bits());
    let paca = this_paca();
    // SAFETY: aligned stores to this processor's PACA, which only its own
    // vectors read; it runs with EE = 0 so no interrupt observes a torn
    // value, and either value is consistent (translation is on before
    // this is set to IR|DR).
    unsafe {
        (&raw mut (*paca).handler_msr).write_volatile(bits);
        (&raw mut (*paca).sc_msr).write_volatile(interrupt_msr | bits);
    }
}

/// Points this processor's segment-miss fast path at an SLB manager's
/// per-processor area (`vmm::slb::fast`), its own processor's (the area
/// holds the manager's shadow of this SLB). Must run before translation
/// goes on: with translation off no segment interrupt can happen, and
/// afterwards the vectors 0x380 and 0x480 use the area without checking
/// it.
pub fn set_slb_miss_area(area: u64) {
    // SAFETY: one aligned store to this processor's PACA, which only its
    // own vectors read; translation is still off (the caller's contract),
    // so no segment interrupt reads it now.
    unsafe { (&raw mut (*this_paca()).slb_miss_area).write_volatile(area) };
}

/// Copies the vectors to real address 0 and points SPRG0 at the per-CPU
/// area. Must run after the last Open Firmware call (VOF lives at 0).
pub fn init() {
    // Only the addresses of the linker-defined symbols are taken.
    let (start, end) = (
        &raw const __vectors_start as u64,
        &raw const __vectors_end as u64,
    );
    let len = end - start;
    let toc = kernel_toc();
    // SAFETY: single-threaded boot; the PACA and interrupt stack are only
    // used by the vectors, which are not live until SPRG0 is written below.
    unsafe {
        fill_paca(
            0,
            &raw const trap_common as u64,
            toc,
            &raw mut ISTACK as u64,
        );
        // Every table starts with no fast handler, the others' included,
        // since set_syscall_table writes every PACA.
        for cpu in 1..MAX_CPUS {
            (*paca_of(cpu)).sc_code = [&raw const syscall_full as u64; SYSCALL_TABLE_MAX];
        }
    }
    // SAFETY: real addresses 0..len are the vector area, no longer used by
    // firmware (the caller is done with Open Firmware); the kernel image
    // starts at 0x400000 so the ranges do not overlap. Real mode reaches
    // real address 0 at the kernel address 0xc000000000000000.
    unsafe {
        core::ptr::copy_nonoverlapping(
            start as *const u8,
            real_to_virt(0) as *mut u8,
            len as usize,
        );
    }
    sync_icache(real_to_virt(0), len);
    let paca = paca_address(0);
    // SAFETY: SPRG0 is reserved for the kernel's per-CPU pointer, which the
    // vectors load; the PACA is fully initialised above.
    unsafe { Sprg0::write(paca) };
    set_handler_translation(false);
    log::info!(
        "vectors: {:#x} bytes at real 0, PACA {:#x} (real {:#x})",
        len,
        paca,
        virt_to_real(paca)
    );
}

/// Fills CPU `cpu`'s PACA for the vectors: `entry` is the code label its
/// interrupts enter the kernel text at, `istack` the bottom of its
/// [`ISTACK_SIZE`]-byte interrupt stack, whose canary is written here.
///
/// # Safety
///
/// The CPU must not be taking interrupts with this PACA yet (its SPRG0 is
/// not set, or it is the caller, in boot code with EE = 0), and `istack`
/// must be kernel memory of that size that nothing else uses.
unsafe fn fill_paca(cpu: usize, entry: u64, toc: u64, istack: u64) {
    let paca = paca_of(cpu);
    let top = istack + ISTACK_SIZE as u64;
    // SAFETY: per the contract, nothing reads this PACA or stack yet.
    unsafe {
        (*paca).common_entry = entry;
        (*paca).toc = toc;
        (*paca).istack_bottom = istack;
        (*paca).istack_top = top;
        // What trap_common computes for an interrupt from problem state.
        (*paca).sc_frame = (top - FRAME_BYTES) & !15;
        (*paca).sc_entry = &raw const syscall_entry as u64;
        (*paca).sc_code = [&raw const syscall_full as u64; SYSCALL_TABLE_MAX];
        (*paca).handler_msr = 0;
        (*paca).cpu_index = cpu as u64;
        (istack as *mut u64).write_volatile(ISTACK_CANARY);
    }
}

/// Prepares the PACA of secondary processor `cpu` (index 1 and up) before
/// it is started: its interrupts enter `trap_common_secondary`, which
/// calls [`crate::smp::secondary_trap`] (which filters what a secondary
/// may take before it goes to [`trap_dispatch`]), on the interrupt stack
/// at `istack` ([`INTERRUPT_STACK_BYTES`] bytes). Its segment-miss area
/// is 0 until the processor sets its own ([`set_slb_miss_area`], before
/// translation goes on). Handlers run in real mode until the processor
/// calls [`set_handler_translation`]. Returns the PACA's address, for its
/// SPRG0.
///
/// # Safety
///
/// The processor must not be running yet, and `istack` must be kernel
/// memory of [`INTERRUPT_STACK_BYTES`] bytes that nothing else uses for
/// as long as it runs.
pub unsafe fn init_secondary(cpu: usize, istack: u64) -> u64 {
    assert!((1..MAX_CPUS).contains(&cpu), "secondary CPU index {cpu}");
    // SAFETY: forwarded from this function's contract.
    unsafe {
        fill_paca(
            cpu,
            &raw const trap_common_secondary as u64,
            kernel_toc(),
            istack,
        );
        (*paca_of(cpu)).slb_miss_area = 0;
        // The table installed now (set_syscall_table keeps every copy
        // equal from here on).
        (*paca_of(cpu)).sc_code = (*paca_of(0)).sc_code;
    }
    paca_address(cpu)
}
