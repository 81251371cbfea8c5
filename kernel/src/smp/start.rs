//! Bringing the secondary processors up with RTAS `start-cpu`.
//!
//! The boot processor prepares each secondary's PACA (`trap::init_secondary`:
//! interrupt stack, trap entry), an idle stack and a slot of
//! [`SMP_START`], then calls `start-cpu(server, real address of
//! smp_secondary_start, CPU index)`. The secondary begins at once in real
//! mode with MSR = SF | ME and r3 = its CPU index; `smp_secondary_start`
//! moves to the link address (real mode ignores the top address bits),
//! turns FP on as `_start` does for the boot processor, takes its PACA and
//! stack from its slot, sets SPRG0 and calls [`smp_secondary_main`]: the
//! linear map's bolted SLB entries, its own state in the VMM
//! (`crate::mm::add_this_cpu`: SLB manager and segment-miss area),
//! translation on (handlers too), the decrementer at
//! [`super::DEC_IDLE`], CPPR 0xff, online, then `H_CEDE` until there is
//! work. The boot processor starts one CPU at a time and waits for it to
//! come online, bounded by [`ONLINE_WAIT_SECONDS`] of timebase.
//!
//! On powernv, `OPAL_QUERY_CPU_STATUS` and `OPAL_START_CPU` take the RTAS
//! calls' place: OPAL enters `pnv_secondary_start`
//! (`crate::platform::powernv`) with r3 = the thread's PIR, which finds
//! its CPU index and goes on to `smp_secondary_start`; the secondary
//! copies LPCR and SDR1/PTCR first and idles spinning with MSR\[EE\] on.

use core::arch::global_asm;
use core::sync::atomic::{fence, AtomicU64, Ordering};

use arch_ppc64::instructions::hcall::{hcall, opcode};
use arch_ppc64::registers::msr::{self, Msr};
use arch_ppc64::registers::spr::{timebase, Dec};

use super::{xics, CPUS, DEC_IDLE, MAX_CPUS, ONLINE, STARTED};
use crate::bootinfo::{real_to_virt, virt_to_real, CpuThread};
use crate::rtas::{self, CpuState, RtasError};
use crate::{frame, mm, trap};

/// Bytes of a secondary's idle stack (it only calls `H_CEDE`; its
/// interrupts run on the interrupt stack).
const IDLE_STACK_BYTES: u64 = 16 * 1024;

/// How long the boot processor waits for the started CPUs to come online.
const ONLINE_WAIT_SECONDS: u64 = 5;

/// What a starting secondary reads first (offsets used by the asm).
#[repr(C)]
pub struct StartSlot {
    /// Its PACA (0).
    paca: AtomicU64,
    /// Top of its idle stack (8).
    stack_top: AtomicU64,
}

/// One slot per CPU index, written by the boot processor before
/// `start-cpu`.
#[no_mangle]
static SMP_START: [StartSlot; MAX_CPUS] = [const {
    StartSlot {
        paca: AtomicU64::new(0),
        stack_top: AtomicU64::new(0),
    }
}; MAX_CPUS];

const _: () = assert!(core::mem::size_of::<StartSlot>() == 16);

global_asm!(
    r#"
    .macro SMP_LOAD_ADDR reg, sym
    lis     \reg, \sym@highest
    ori     \reg, \reg, \sym@higher
    rldicr  \reg, \reg, 32, 31
    oris    \reg, \reg, \sym@high
    ori     \reg, \reg, \sym@l
    .endm

    .section .text.smp_start, "ax"
    .globl smp_secondary_start
    .p2align 2
smp_secondary_start:
    # Real mode, MSR = SF|ME, r3 = CPU index (start-cpu's third argument).
    SMP_LOAD_ADDR %r12, 1f
    mtctr   %r12
    bctr
1:  mfmsr   %r11
    ori     %r11, %r11, 0x2000     # FP (bit 50), as _start sets it
    mtmsrd  %r11
    isync
    SMP_LOAD_ADDR %r2, .TOC.
    SMP_LOAD_ADDR %r4, SMP_START
    sldi    %r5, %r3, 4
    add     %r4, %r4, %r5
    ld      %r13, 0(%r4)
    mtsprg0 %r13
    ld      %r1, 8(%r4)
    li      %r0, 0
    stdu    %r0, -128(%r1)         # terminate the back chain
    bl      smp_secondary_main
    nop
2:  b       2b
    .purgem SMP_LOAD_ADDR
"#
);

extern "C" {
    /// The secondaries' entry (a code label; its real address goes to
    /// `start-cpu`).
    static smp_secondary_start: u8;
}

/// Why a secondary was not started.
#[derive(Debug)]
pub enum StartError {
    /// `query-cpu-stopped-state` or `start-cpu` failed.
    Rtas(RtasError),
    /// The thread is not in the stopped state (firmware runs it, or it is
    /// the running boot processor listed twice).
    NotStopped(CpuState),
    /// No frames for its stacks.
    NoMemory,
    /// `OPAL_QUERY_CPU_STATUS` or `OPAL_START_CPU` failed (powernv).
    Opal(arch_ppc64::instructions::opal::OpalError),
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StartError::Rtas(e) => write!(f, "RTAS: {e:?}"),
            StartError::NotStopped(s) => write!(f, "query-cpu-stopped-state says {s:?}"),
            StartError::NoMemory => write!(f, "no frames for its stacks"),
            StartError::Opal(e) => write!(f, "OPAL: {e:?}"),
        }
    }
}

impl From<RtasError> for StartError {
    fn from(e: RtasError) -> Self {
        StartError::Rtas(e)
    }
}

/// Starts CPUs `1..threads.len()`, one at a time, each after the one
/// before came online; returns the mask of the CPUs started (the boot
/// processor's bit included). One at a time because a CPU joins the VMM
/// as it comes up and takes the lowest processor index the VMM has free,
/// which must be its own: so the first CPU that cannot be started or does
/// not come online is reported and the later ones are left stopped.
pub fn start_all(threads: &[CpuThread]) -> u64 {
    let mut started = 1u64;
    let hz = crate::bootinfo::get()
        .cpu
        .timebase_frequency
        .map_or(512_000_000, u64::from);
    for (cpu, t) in threads.iter().enumerate().skip(1) {
        if let Err(e) = start(cpu, *t) {
            log::warn!(
                "smp: CPU {cpu} (server {:#x}) not started: {e}; CPUs from {cpu} on stay stopped",
                t.server
            );
            break;
        }
        started |= 1 << cpu;
        let t0 = timebase();
        while ONLINE.load(Ordering::Acquire) & (1 << cpu) == 0 {
            if timebase() - t0 > ONLINE_WAIT_SECONDS * hz {
                log::warn!(
                    "smp: CPU {cpu} did not come online within {ONLINE_WAIT_SECONDS} s; CPUs after it stay stopped"
                );
                return started;
            }
            super::relax();
        }
    }
    started
}

/// Prepares and starts CPU `cpu` (thread `t`).
fn start(cpu: usize, t: CpuThread) -> Result<(), StartError> {
    let powernv = crate::platform::is_powernv();
    if powernv {
        match crate::platform::powernv::cpu_is_waiting(t.server) {
            Ok(true) => {}
            Ok(false) => return Err(StartError::NotStopped(CpuState::Running)),
            Err(e) => return Err(StartError::Opal(e)),
        }
    } else {
        match rtas::query_cpu_stopped_state(t.server)? {
            CpuState::Stopped => {}
            other => return Err(StartError::NotStopped(other)),
        }
    }
    let istack = allocate_stack(trap::INTERRUPT_STACK_BYTES as u64)?;
    let idle = allocate_stack(IDLE_STACK_BYTES)?;
    // SAFETY: the CPU is stopped (checked above) and the stack frames were
    // just allocated for it alone. Its segment-miss area comes from the
    // VMM once it runs (`smp_secondary_main`), before translation is on.
    let paca = unsafe { trap::init_secondary(cpu, istack) };
    SMP_START[cpu].paca.store(paca, Ordering::Relaxed);
    SMP_START[cpu]
        .stack_top
        .store(idle + IDLE_STACK_BYTES, Ordering::Relaxed);
    CPUS[cpu].server.store(t.server, Ordering::Relaxed);
    STARTED.fetch_or(1 << cpu, Ordering::AcqRel);
    // Everything above is visible before the processor runs.
    fence(Ordering::SeqCst);
    if powernv {
        return crate::platform::powernv::start_cpu(cpu, t.server).map_err(StartError::Opal);
    }
    let entry = virt_to_real(&raw const smp_secondary_start as u64);
    let entry = u32::try_from(entry).expect("kernel text below 4 GiB");
    rtas::start_cpu(t.server, entry, cpu as u32)?;
    Ok(())
}

/// Top of CPU `cpu`'s idle stack (0 before it has one).
pub fn idle_stack_top(cpu: usize) -> u64 {
    SMP_START[cpu].stack_top.load(Ordering::Relaxed)
}

/// The boot processor's idle stack, for the process scheduler's idle loop
/// (it runs the kernel on the boot stack otherwise).
///
/// # Panics
/// Without frames for it.
pub(super) fn give_boot_processor_an_idle_stack() {
    let bottom =
        allocate_stack(IDLE_STACK_BYTES).expect("frames for the boot processor's idle stack");
    SMP_START[0]
        .stack_top
        .store(bottom + IDLE_STACK_BYTES, Ordering::Relaxed);
}

/// `bytes` of zeroed frames for a stack; returns its bottom's kernel
/// address.
fn allocate_stack(bytes: u64) -> Result<u64, StartError> {
    let frames = bytes.div_ceil(frame::FRAME_SIZE);
    let f = frame::with(|fa| fa.allocate_contiguous(frames, frame::FRAME_SIZE))
        .ok_or(StartError::NoMemory)?;
    let base = real_to_virt(f.start_address());
    // SAFETY: the frames are ours alone for the rest of the run, reached
    // at their linear-map address.
    unsafe { core::ptr::write_bytes(base as *mut u8, 0, bytes as usize) };
    Ok(base)
}

/// The first Rust code of a secondary processor (real mode, SPRG0 = its
/// PACA, on its idle stack).
#[no_mangle]
extern "C" fn smp_secondary_main(cpu: u64) -> ! {
    let cpu = cpu as usize;
    if crate::platform::is_powernv() {
        crate::platform::powernv::init_secondary_cpu();
    }
    let map = mm::layout()
        .linear
        .expect("the boot processor built the linear map before starting CPUs");
    // SAFETY: translation is off (start-cpu enters in real mode).
    unsafe { map.load_slb() };
    // Its own state in the VMM (SLB manager, segment-miss area), made on
    // this processor since slbmte and slbia are local; still in real mode,
    // where no segment miss can come before the area is in the PACA.
    if let Err(e) = mm::add_this_cpu(cpu) {
        panic!("CPU {cpu}: joining the VMM failed: {e}");
    }
    // SAFETY: the linear map's SLB entries are loaded and its HPTEs are
    // shared with the boot processor, so the kernel's code, data and
    // this processor's stacks translate at the addresses in use.
    unsafe { msr::write(msr::read() | Msr::RELOCATE) };
    trap::set_handler_translation(true);
    // SAFETY: writing DEC only schedules this processor's next
    // decrementer interrupt, taken once EE is set.
    unsafe { Dec::write(DEC_IDLE) };
    if let Err(e) = xics::set_cppr(xics::LEAST_FAVORED) {
        panic!("CPU {cpu}: H_CPPR failed: {e}");
    }
    ONLINE.fetch_or(1 << cpu, Ordering::AcqRel);
    idle()
}

/// Waits for interrupts: `H_CEDE` sets MSR\[EE\] and halts the vCPU until
/// one arrives; it is taken on return from the call, and the loop cedes
/// again.
fn idle() -> ! {
    if crate::platform::is_powernv() {
        crate::platform::powernv::idle();
    }
    loop {
        // SAFETY: H_CEDE touches no memory; it enables external and
        // decrementer interrupts, which this processor handles
        // (`smp::secondary_trap`) while holding no lock here.
        let _ = unsafe { hcall(opcode::H_CEDE, &[]) };
    }
}
