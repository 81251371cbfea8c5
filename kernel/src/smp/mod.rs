//! Symmetric multiprocessing: every processor thread of `/cpus` is
//! started, joins the VMM with its own per-processor state and runs
//! processes' threads from the scheduler's one ready queue
//! (`crate::proc`); any processor can make the others run work
//! synchronously (cross-calls over XICS IPIs), which is what an SLB
//! shootdown needs.
//!
//! * **CPU index.** The order of [`crate::bootinfo::CpuList`]: 0 is the
//!   boot processor, then the other threads in device-tree order. PIR
//!   reads 0 on every vCPU of QEMU's TCG pseries, so a processor learns
//!   its index from r3 at start and keeps it in its PACA, where
//!   [`this_cpu`] reads it (SPRG0 and one load). It is also the
//!   processor's index in the VMM (`vmm::vm::CpuSet`): the CPUs join the
//!   VMM in index order ([`start::start_all`]).
//! * **Per-CPU state.** Each processor has its own PACA (SPRG0), interrupt
//!   stack and idle stack (the secondaries' from frames, [`start`]), its
//!   own decrementer and its own SLB: the linear map's bolted entries,
//!   the same words the boot processor loaded
//!   ([`crate::mm::linear::LinearMap::load_slb`]), and its own VMM state
//!   (`vmm::vm::CpuMmu`, made by [`crate::mm::add_this_cpu`]), whose SLB
//!   area its PACA names for the segment-miss fast path.
//! * **Interrupts.** Secondaries enter the kernel through their own copy
//!   of the trap entry (`trap_common_secondary`), which calls
//!   [`secondary_trap`]: the external interrupt goes to the installed
//!   handler (the cross-call server, or the scheduler's, which serves the
//!   mailbox first), the decrementer to the scheduler's while one is
//!   installed, and everything else to the same handler table as on the
//!   boot processor — storage and segment faults to the VMM, system calls
//!   and program interrupts of the processes they run to the process
//!   layer. A panic on a secondary ends the run with the report (the
//!   harness's recovery belongs to the boot processor).
//! * **Idle.** A secondary with nothing to run sets its CPPR to accept
//!   every priority and loops on `H_CEDE`, which sets MSR\[EE\] and halts
//!   the vCPU until an interrupt arrives; [`kick`] (an IPI with the
//!   reschedule flag) wakes it when the scheduler has work. Polling would
//!   keep a host thread busy per vCPU; on this two-core machine, three
//!   polling secondaries of `--smp 4` would leave the others a fraction of
//!   a core.
//! * **The boot processor** runs the kernel with EE = 0 as before. With
//!   more than one processor online it also accepts IPIs (CPPR 0xff, the
//!   external interrupt handler installed), which it takes when it runs a
//!   process or idles in a process run (EE = 1).
//! * **Locks.** A processor waiting for a lock whose holder may wait for
//!   it (the VMM's, the scheduler's: [`CpuLock`]) serves its mailbox while
//!   it spins, so a holder's cross-call is answered; so does a processor
//!   waiting for its own cross-call, so two processors that cross-call
//!   each other do not deadlock. With one processor nothing of this costs
//!   more than the lock word.
//!
//! [`crosscall`] has the requests and the synchronous API; [`start`] the
//! bring-up; [`xics`] the interrupt-controller hcalls; [`lock`] the lock.

pub mod crosscall;
pub mod lock;
pub mod start;
pub mod xics;

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use arch_ppc64::instructions::hcall::{hcall, opcode};
use arch_ppc64::registers::spr::Dec;

pub use crate::bootinfo::MAX_CPUS;
use crate::trap::{self, TrapFrame};

pub use crosscall::{
    cross_call, cross_call_all_others, cross_call_set, poll, CrossCallError, Request,
    ShootdownError, SlbInvalidateList,
};
pub use lock::{CpuLock, CpuLockGuard};

/// The decrementer value of a processor with nothing to time (the
/// largest positive 32-bit count, about 4 s at 512 MHz).
pub const DEC_IDLE: u64 = 0x7fff_ffff;

/// What one processor counts.
struct PerCpu {
    /// Its interrupt server number.
    server: AtomicU32,
    /// IPIs it accepted (XISR [`xics::IPI_SOURCE`]).
    ipis: AtomicU64,
    /// External interrupts with no source pending, or another source.
    other_external: AtomicU64,
    /// Cross-call requests it served.
    served: AtomicU64,
    /// Decrementer interrupts it took while idle.
    decrementers: AtomicU64,
    /// A [`Request::Reschedule`] arrived and was not taken yet.
    reschedule: AtomicBool,
}

static CPUS: [PerCpu; MAX_CPUS] = [const {
    PerCpu {
        server: AtomicU32::new(0),
        ipis: AtomicU64::new(0),
        other_external: AtomicU64::new(0),
        served: AtomicU64::new(0),
        decrementers: AtomicU64::new(0),
        reschedule: AtomicBool::new(false),
    }
}; MAX_CPUS];

/// Bit `i` set: CPU `i` is online (started, translation on, accepting
/// IPIs). The boot processor's bit is set by [`init`].
static ONLINE: AtomicU64 = AtomicU64::new(0);

/// Bit `i` set: CPU `i` was started (its mailbox will be served). The
/// boot processor's bit is set by [`init`], the others' just before
/// `start-cpu`.
static STARTED: AtomicU64 = AtomicU64::new(1);

/// The CPUs started (see [`cross_call_set`]).
pub fn started_mask() -> u64 {
    STARTED.load(Ordering::Acquire)
}

/// The CPU index of the running processor (see the module docs): SPRG0
/// and one load.
#[inline(always)]
pub fn this_cpu() -> usize {
    trap::this_cpu_index()
}

/// The set of online CPUs, bit `i` for CPU `i`.
pub fn online_mask() -> u64 {
    ONLINE.load(Ordering::Acquire)
}

/// Whether CPU `cpu` is online.
pub fn is_online(cpu: usize) -> bool {
    cpu < MAX_CPUS && online_mask() & (1 << cpu) != 0
}

/// Number of CPUs online.
pub fn online_count() -> usize {
    online_mask().count_ones() as usize
}

/// The interrupt server number of CPU `cpu` (set before it starts).
pub fn server_of(cpu: usize) -> u32 {
    CPUS[cpu].server.load(Ordering::Relaxed)
}

/// What CPU `cpu` counted since boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// IPIs accepted.
    pub ipis: u64,
    /// External interrupts without an IPI (nothing pending, or another
    /// source).
    pub other_external: u64,
    /// Cross-call requests served.
    pub served: u64,
    /// Decrementer interrupts taken while idle.
    pub decrementers: u64,
}

/// CPU `cpu`'s counters.
pub fn stats(cpu: usize) -> CpuStats {
    let c = &CPUS[cpu];
    CpuStats {
        ipis: c.ipis.load(Ordering::Relaxed),
        other_external: c.other_external.load(Ordering::Relaxed),
        served: c.served.load(Ordering::Relaxed),
        decrementers: c.decrementers.load(Ordering::Relaxed),
    }
}

/// Asks CPU `cpu` to look for work, without waiting for it: sets its
/// reschedule flag ([`take_reschedule`]) and sends it an IPI. What a
/// [`Request::Reschedule`] does, but asynchronous, so the scheduler may
/// send it with its lock held. The IPI also ends an `H_CEDE`, or, when
/// it comes before one, stays pending and ends it at once.
pub fn kick(cpu: usize) {
    CPUS[cpu].reschedule.store(true, Ordering::Release);
    // The flag is visible before the interrupt is.
    core::sync::atomic::fence(Ordering::SeqCst);
    if let Err(e) = xics::send_ipi(server_of(cpu)) {
        panic!("smp: H_IPI to CPU {cpu} failed: {e}");
    }
}

/// Top of CPU `cpu`'s idle stack (where a processor without work waits;
/// the secondaries start on theirs).
pub fn idle_stack_top(cpu: usize) -> u64 {
    start::idle_stack_top(cpu)
}

/// Takes the running processor's pending [`Request::Reschedule`]: whether
/// one arrived since the last call (a [`kick`] sets it too; the process
/// scheduler's external handler takes it).
pub fn take_reschedule() -> bool {
    CPUS[this_cpu()].reschedule.swap(false, Ordering::AcqRel)
}

/// One step of a wait for another processor: `H_CONFER(-1)`, which gives
/// the rest of this vCPU's time slice to the others. Under multi-threaded
/// TCG every vCPU has a host thread and this costs little; under
/// `-icount`'s round-robin TCG the others run only when the waiter yields
/// (a waiter that merely spins kept a woken secondary at 0x500 for 10 s of
/// virtual time), and under a real hypervisor it is what a shared
/// processor should do.
pub fn relax() {
    if crate::platform::is_powernv() {
        // No hypervisor to confer to.
        core::hint::spin_loop();
        return;
    }
    // SAFETY: H_CONFER touches no memory and changes no state of this
    // processor (QEMU ends the vCPU's slice and returns H_SUCCESS).
    let _ = unsafe { hcall(opcode::H_CONFER, &[u64::MAX, 0]) };
}

/// Counts one more event in `counter` of the running processor, the only
/// writer (a load and a store, no atomic read-modify-write).
#[inline]
fn count(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// Finds the other processors and starts them ([`start::start_all`]);
/// prints `cpus online: N`. Runs once on the boot processor, after
/// `mm::init` (a secondary loads the linear map's SLB entries and turns
/// translation on at once).
pub fn init(info: &crate::bootinfo::BootInfo) {
    let threads = info.cpus.as_slice();
    let boot_server = threads.first().map_or(0, |t| t.server);
    CPUS[0].server.store(boot_server, Ordering::Relaxed);
    start::give_boot_processor_an_idle_stack();
    if info
        .bootargs()
        .split_ascii_whitespace()
        .any(|w| w == "icount=1")
    {
        // qemu-run.sh --icount: the vCPUs take turns on one host thread.
        lock::set_spin_limit(lock::SPINS_TAKING_TURNS);
    }
    ONLINE.store(1, Ordering::Release);
    if threads.len() > 1 {
        crosscall::accept_ipis_on_boot_processor();
    }
    let started = start::start_all(threads);
    println!(
        "cpus online: {} ({} in the device tree{}; servers{})",
        online_count(),
        info.cpus.len(),
        if info.cpus.dropped > 0 {
            ", more than MAX_CPUS"
        } else {
            ""
        },
        ServerList(online_mask())
    );
    if started != online_mask() {
        log::warn!(
            "smp: CPUs {:#x} were started but {:#x} came online",
            started,
            online_mask()
        );
    }
}

/// Formats the servers of a CPU mask as ` 0x0 0x1 ...`.
struct ServerList(u64);

impl core::fmt::Display for ServerList {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for cpu in (0..MAX_CPUS).filter(|c| self.0 & (1 << c) != 0) {
            write!(f, " {:#x}", server_of(cpu))?;
        }
        Ok(())
    }
}

/// Called by `trap_common_secondary` for every interrupt of the general
/// path on a secondary processor.
#[no_mangle]
extern "C" fn smp_secondary_trap(frame: &mut TrapFrame) {
    secondary_trap(frame);
}

/// A secondary processor's interrupt. The external interrupt goes to the
/// handler installed for it (the cross-call server, or the scheduler's
/// while processes run, which serves the mailbox too), the decrementer to
/// the scheduler's while one is installed (else it is set back to
/// [`DEC_IDLE`]); everything else — storage and segment interrupts, system
/// calls, program interrupts of the processes it runs — goes through the
/// same handler table as on the boot processor
/// ([`trap::trap_dispatch`]), where an interrupt no handler takes is a
/// kernel bug that panics, which on a secondary ends the run with the
/// report (`harness::secondary_panic`).
pub fn secondary_trap(frame: &mut TrapFrame) {
    let cpu = this_cpu();
    if !trap::istack_canary_intact_of(cpu) {
        fatal(
            cpu,
            format_args!("interrupt stack overflow (interrupt {:#x})", frame.vector),
            frame,
        );
    }
    match frame.vector {
        0x500 => match trap::handler(trap::Vector::External) {
            Some(h) => h(frame),
            None => crosscall::on_external(frame),
        },
        0xe80 => match trap::handler(trap::Vector::HypervisorDoorbell) {
            Some(h) => h(frame),
            None => crosscall::on_doorbell(frame),
        },
        0x900 if trap::handler(trap::Vector::Decrementer).is_none() => {
            // SAFETY: writing DEC only schedules this processor's next
            // decrementer interrupt.
            unsafe { Dec::write(DEC_IDLE) };
            count(&CPUS[cpu].decrementers);
        }
        _ => trap::trap_dispatch(frame),
    }
}

/// Reports a kernel failure on secondary processor `cpu` and ends the run
/// (`crate::platform::exit`): the harness's recovery (a jump back to the test loop)
/// belongs to the boot processor, and the boot processor may be waiting
/// for this one.
fn fatal(cpu: usize, what: core::fmt::Arguments<'_>, frame: &TrapFrame) -> ! {
    crate::console::print_fmt_unlocked(format_args!("\nCPU {cpu}: {what}\n{frame}"));
    crate::platform::exit(false, "kernel failure on a secondary processor")
}
