//! Processes: problem-state programs, each in its own VMM address space,
//! with system calls, fork, exit, wait, a round-robin scheduler that the
//! decrementer drives, and kill-on-fault.
//!
//! A process runs the user agent ([`crate::user`]) in problem state
//! (MSR[PR|IR|DR|EE|ME|RI|SF] = 1) over three segments of its own — text
//! (ESID 1, PP 01: read-only and executable in problem state), data (ESID
//! 2) and stack (ESID 14), both read-write and no-execute. All three are
//! copied on fork (`ForkAction::Copy`: the child's copy shares the
//! parent's frames copy-on-write until either side stores) and owned by
//! the mapping, so the space's teardown deletes them. The address space is created and ended
//! through the AIX services' process hooks ([`vmm::aix::Aix::create_process`],
//! `fork`, `exit`), so the services' bookkeeping follows: `as_att` regions
//! are inherited on fork, `vm_guatt` attachments are not.
//!
//! Kernel tests call [`spawn`] and then [`run`]: `run` saves the kernel
//! context, enters the first thread with `rfid`, and comes back (through
//! the interrupt return path into [`switch::proc_call`]'s saved context)
//! when no thread is runnable anywhere. A context switch is a copy of the
//! interrupted [`TrapFrame`] into the thread, the next thread's (boxed)
//! frame named as the one the interrupt return restores
//! ([`TrapFrame::resume_from`]), and the VMM's switch of address space
//! (which preloads the SLB entries the space had) and environment.
//! Threads never block inside the kernel: `wait` without an ended child
//! marks the thread waiting and schedules another.
//!
//! # Threads and processors
//!
//! What the scheduler dispatches is a thread; a process has one or more
//! (`thread_create`, [`syscall::THREAD_CREATE`]), all in its address
//! space, and ends when its last thread is gone. `exit` and a kill end the
//! whole process: its threads that do not run are dropped at once, those
//! running on other processors are kicked and drop themselves in their
//! IPI handler, and the address space goes once the last one has left it.
//!
//! Every online processor runs threads, from one ready queue under one
//! lock (a [`CpuLock`], taken before the VMM's, never after). A
//! processor with nothing to run leaves its address space and waits in
//! the idle loop ([`switch::idle_frame`], `H_CEDE`); whoever makes a
//! thread ready while processors idle kicks one per ready thread
//! ([`smp::kick`]). Each processor's decrementer preempts the thread it
//! runs. The run is over when nothing is ready and nothing runs: the boot
//! processor then returns to `run` (a secondary that sees it first kicks
//! the boot processor). [`run_on`] keeps a run to some processors, for
//! tests that need threads to take turns on one.
//!
//! Faults the VMM refuses in problem state come through
//! [`crate::mm::set_user_fault_hook`]; program and alignment interrupts
//! from problem state likewise kill the process, on whatever processor it
//! ran. The report (pid, address, access, reason, SRR0) is printed and
//! kept in the process's [`Outcome`]; the kernel goes on with the next
//! thread.

pub mod switch;
pub mod syscall;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use arch_ppc64::addr::Esid;
use arch_ppc64::registers::msr::{self, Msr};
use arch_ppc64::registers::spr::Dec;
use arch_ppc64::structures::hpte::Pp;
use vmm::adspace::{ForkAction, SegKey};
use vmm::aix::backend::Space;
use vmm::aix::services::AddressModel;
use vmm::platform::{Access, Environment, ProcessId, VmFault};
use vmm::segment::PageProt;
use vmm::sid::SidKind;
use vmm::vm::{MapOptions, SpaceId, SpaceRef};

use crate::bootinfo::MAX_CPUS;
use crate::mm;
use crate::smp::{self, CpuLock, CpuLockGuard};
use crate::trap::{self, TrapFrame, TrapHandler, Vector};
use crate::user::{self, Script};

use switch::KernelContext;

/// `wait()` returns `KILLED | reason code` for a child that was killed
/// (see [`KillCause::code`]); exit statuses are below it.
pub const KILLED: u64 = 0x4b11_0000_0000_0000;

/// Why a process was killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillCause {
    /// A storage or segment fault the VMM refused.
    Fault(VmFault),
    /// A program interrupt (trap, illegal or privileged instruction);
    /// SRR1 holds the cause bits.
    Program {
        /// SRR1 at the interrupt.
        srr1: u64,
    },
    /// An alignment interrupt at DAR.
    Alignment {
        /// DAR.
        dar: u64,
    },
    /// An interrupt the kernel has no handler for (e.g. floating-point,
    /// vector or facility unavailable: processes run without FP/VEC/VSX).
    Unhandled {
        /// The vector offset (0x800, 0xf20, ...).
        vector: u64,
        /// SRR1 at the interrupt.
        srr1: u64,
    },
}

impl KillCause {
    /// A small number for `wait()`: 1 + the VMM reason index for faults,
    /// 0x100 program, 0x200 alignment, 0x1000 + the vector offset for an
    /// unhandled interrupt.
    pub fn code(&self) -> u64 {
        match self {
            KillCause::Fault(f) => {
                use vmm::platform::VmFaultReason as R;
                1 + match f.reason {
                    R::NoSegment => 0,
                    R::OutOfRange => 1,
                    R::Protection => 2,
                    R::NoExecute => 3,
                    R::Key => 4,
                    R::NoMemory => 5,
                    R::HptFull => 6,
                    R::NotAllowedHere => 7,
                    R::RetriesExhausted => 8,
                    // One code for what used to be a raw backend code.
                    R::Slb(_) | R::Frame(_) | R::Hpt(_) | R::UnknownCause => 9,
                }
            }
            KillCause::Program { .. } => 0x100,
            KillCause::Alignment { .. } => 0x200,
            KillCause::Unhandled { vector, .. } => 0x1000 + vector,
        }
    }
}

/// What the kernel reports when it kills a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KillReport {
    /// The process.
    pub pid: ProcessId,
    /// Where it was (SRR0: the faulting instruction).
    pub srr0: u64,
    /// Why.
    pub cause: KillCause,
}

impl KillReport {
    /// The faulting address, for storage faults.
    pub fn address(&self) -> Option<u64> {
        match self.cause {
            KillCause::Fault(f) => Some(f.ea.as_u64()),
            KillCause::Alignment { dar } => Some(dar),
            KillCause::Program { .. } | KillCause::Unhandled { .. } => None,
        }
    }

    /// The access, for storage faults where the processor tells it.
    pub fn access(&self) -> Option<Access> {
        match self.cause {
            KillCause::Fault(f) => f.access,
            _ => None,
        }
    }

    /// The VMM's reason, for storage faults.
    pub fn reason(&self) -> Option<vmm::platform::VmFaultReason> {
        match self.cause {
            KillCause::Fault(f) => Some(f.reason),
            _ => None,
        }
    }
}

impl fmt::Display for KillReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cause {
            KillCause::Fault(v) => {
                let access = match v.access {
                    Some(Access::Load) => "load",
                    Some(Access::Store) => "store",
                    Some(Access::Fetch) => "fetch",
                    None => "access",
                };
                write!(
                    f,
                    "process {} killed: {access} at {:#x}: {:?}; SRR0 {:#x}",
                    self.pid.0,
                    v.ea.as_u64(),
                    v.reason,
                    self.srr0
                )
            }
            KillCause::Program { srr1 } => write!(
                f,
                "process {} killed: program interrupt (SRR1 {srr1:#x}); SRR0 {:#x}",
                self.pid.0, self.srr0
            ),
            KillCause::Alignment { dar } => write!(
                f,
                "process {} killed: alignment interrupt at {dar:#x}; SRR0 {:#x}",
                self.pid.0, self.srr0
            ),
            KillCause::Unhandled { vector, srr1 } => write!(
                f,
                "process {} killed: unhandled interrupt {vector:#x} (SRR1 {srr1:#x}); SRR0 {:#x}",
                self.pid.0, self.srr0
            ),
        }
    }
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// `exit(status)`.
    Status(u64),
    /// Killed by the kernel.
    Killed(KillReport),
}

/// A process that ended during [`run`].
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Its pid.
    pub pid: ProcessId,
    /// The process it was forked from (even if that ended first).
    pub parent: Option<ProcessId>,
    /// How it ended.
    pub exit: Exit,
    /// The agent's recorded results (at most [`user::RESULTS_MAX`]).
    pub results: Vec<u64>,
    /// How many results the agent recorded (may exceed `results.len()`).
    pub result_count: u64,
    /// Values the process passed to the `report` system call.
    pub reports: Vec<u64>,
    /// How many times the scheduler dispatched one of its threads.
    pub dispatches: u64,
    /// The CPUs its threads ran on (bit `i` for CPU `i`).
    pub cpus: u64,
    /// The results of its threads after the first (`thread_create`), in
    /// thread order: (thread index, results kept, results recorded).
    pub thread_results: Vec<(u32, Vec<u64>, u64)>,
    /// The index of its thread that was the last to go.
    pub last_thread: u32,
}

impl Outcome {
    /// The exit status, if it exited.
    pub fn status(&self) -> Option<u64> {
        match self.exit {
            Exit::Status(s) => Some(s),
            Exit::Killed(_) => None,
        }
    }

    /// The kill report, if it was killed.
    pub fn killed(&self) -> Option<&KillReport> {
        match &self.exit {
            Exit::Killed(k) => Some(k),
            Exit::Status(_) => None,
        }
    }
}

/// What one [`run`] did.
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    /// Every process that ended, in the order they ended.
    pub outcomes: Vec<Outcome>,
    /// Dispatches of a process other than the one that ran before.
    pub context_switches: u64,
    /// Decrementer interrupts that preempted a process.
    pub preemptions: u64,
    /// System calls handled.
    pub syscalls: u64,
    /// Timebase ticks from entering the first process to getting back.
    pub ticks: u64,
}

impl RunReport {
    /// The outcome of `pid`.
    ///
    /// # Panics
    /// If `pid` did not end in this run.
    pub fn of(&self, pid: ProcessId) -> &Outcome {
        self.outcomes
            .iter()
            .find(|o| o.pid == pid)
            .unwrap_or_else(|| panic!("process {} did not end in this run", pid.0))
    }

    /// The outcomes of `pid`'s children.
    pub fn children_of(&self, pid: ProcessId) -> Vec<&Outcome> {
        self.outcomes
            .iter()
            .filter(|o| o.parent == Some(pid))
            .collect()
    }
}

/// Why a process could not be created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcError {
    /// The AIX services refused the address space.
    Process(vmm::aix::services::ProcessError),
    /// The VMM refused a segment or mapping.
    Vm(vmm::vm::VmError),
    /// The script does not fit the data segment.
    ScriptTooLarge(usize),
}

/// Counters over the whole boot (for the end-of-run banner).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcStats {
    /// Processes created by [`spawn`] or fork.
    pub created: u64,
    /// Of those, by fork.
    pub forks: u64,
    /// Processes that called exit.
    pub exited: u64,
    /// Processes the kernel killed.
    pub killed: u64,
    /// Context switches.
    pub context_switches: u64,
    /// Decrementer preemptions.
    pub preemptions: u64,
    /// System calls.
    pub syscalls: u64,
}

impl fmt::Display for ProcStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "proc stats: processes created {} ({} by fork), exited {}, processes killed {}; context switches {}, preemptions {}, system calls {}",
            self.created,
            self.forks,
            self.exited,
            self.killed,
            self.context_switches,
            self.preemptions,
            self.syscalls
        )
    }
}

static CREATED: AtomicU64 = AtomicU64::new(0);
static FORKS: AtomicU64 = AtomicU64::new(0);
static EXITED: AtomicU64 = AtomicU64::new(0);
static KILLED_COUNT: AtomicU64 = AtomicU64::new(0);
static SWITCHES: AtomicU64 = AtomicU64::new(0);
static PREEMPTIONS: AtomicU64 = AtomicU64::new(0);
static NEXT_PID: AtomicU32 = AtomicU32::new(1);
static NEXT_TID: AtomicU64 = AtomicU64::new(1);

/// The running process, for a system call handler: the pid the
/// processor's PACA records ([`trap::set_current_pid`], set at each
/// dispatch), which the fast system call handlers read without the
/// scheduler lock.
///
/// # Panics
/// With no process running (a `sc` from problem state always has one).
#[inline(always)]
fn current_pid() -> ProcessId {
    match trap::current_pid() {
        0 => no_current_process(),
        pid => ProcessId(pid),
    }
}

#[cold]
#[inline(never)]
fn no_current_process() -> ! {
    panic!("a system call comes from the current process")
}

/// A fresh process id (for address spaces made without [`spawn`]).
pub fn new_pid() -> ProcessId {
    ProcessId(NEXT_PID.fetch_add(1, Ordering::Relaxed))
}

/// Counters since boot.
pub fn stats() -> ProcStats {
    ProcStats {
        created: CREATED.load(Ordering::Relaxed),
        forks: FORKS.load(Ordering::Relaxed),
        exited: EXITED.load(Ordering::Relaxed),
        killed: KILLED_COUNT.load(Ordering::Relaxed),
        context_switches: SWITCHES.load(Ordering::Relaxed),
        preemptions: PREEMPTIONS.load(Ordering::Relaxed),
        syscalls: trap::syscall_count(),
    }
}

/// The MSR a thread starts with: [`USER_MSR`], and in hypervisor state
/// (powernv) MSR\[HV\] kept: problem state of the hypervisor, on the
/// kernel's own table, as Linux runs its programs there. Without it rfid
/// would drop the thread into a partition's problem state, whose
/// interrupts leave HV off.
pub fn user_msr() -> u64 {
    USER_MSR | (msr::read().bits() & Msr::HV.bits())
}

/// The MSR a process runs with: 64-bit, external interrupts (so the
/// decrementer preempts), problem state, machine check, translation on,
/// recoverable.
pub const USER_MSR: u64 = Msr::SF.bits()
    | Msr::EE.bits()
    | Msr::PR.bits()
    | Msr::ME.bits()
    | Msr::IR.bits()
    | Msr::DR.bits()
    | Msr::RI.bits();

/// The MSR of the idle loop ([`switch::idle_frame`]): the kernel's, with
/// external interrupts off until `H_CEDE` sets them.
const IDLE_MSR: u64 =
    Msr::SF.bits() | Msr::ME.bits() | Msr::IR.bits() | Msr::DR.bits() | Msr::RI.bits();

/// Decrementer value while the kernel runs (largest positive 32-bit).
const DEC_IDLE: u64 = 0x7fff_ffff;

/// Where a thread is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ThreadState {
    /// In the ready queue.
    Ready,
    /// On this CPU.
    Running(usize),
    /// Blocked in `wait`, in its process's waiters.
    Waiting,
}

/// A thread: what the scheduler dispatches. Every process has at least
/// one; all of a process's threads run in its address space.
struct Thread {
    /// Unique over the boot (for the context switch count).
    tid: u64,
    /// Its process's slot in [`ProcTable`] (fixed while the process lives).
    proc_slot: usize,
    /// Its process's pid and address space, copied here (both are fixed
    /// for the process's life) so a dispatch or a system call need not
    /// look at the process.
    pid: ProcessId,
    space: SpaceId,
    /// Its dispatches and the CPUs it ran on (bit per CPU), added to its
    /// process's when it ends.
    dispatches: u64,
    cpus: u64,
    /// Its number within the process: 0 for the first, then in creation
    /// order.
    index: u32,
    /// Its registers while it does not run. Boxed, so it stays put while
    /// the return from a switch to it reads it
    /// ([`TrapFrame::resume_from`]).
    frame: alloc::boxed::Box<TrapFrame>,
    state: ThreadState,
    /// Its process is ending ([`exit_process`]): it must not run again.
    /// Kept here as well, so a switch away from it need not look at the
    /// process.
    stopping: bool,
}

struct Process {
    pid: ProcessId,
    /// The live parent to tell at exit (`None` once it ended).
    parent: Option<ProcessId>,
    /// The process it was forked from, for the outcome.
    forked_from: Option<ProcessId>,
    /// Its address space in the VMM (fixed for its life).
    space: SpaceId,
    reports: Vec<u64>,
    /// Dispatches of any of its threads.
    dispatches: u64,
    /// The CPUs its threads ran on (bit per CPU).
    cpus: u64,
    live_children: u32,
    /// Ended children not yet waited for: (pid, wait value, killed).
    ended_children: VecDeque<(ProcessId, u64, bool)>,
    /// Slots of its live threads.
    threads: Vec<usize>,
    /// Threads made so far (the next thread's index).
    threads_made: u32,
    /// Threads blocked in `wait`, first come first served.
    waiters: VecDeque<usize>,
    /// Set once it must end (exit, kill): the first reason wins; it ends
    /// when its last thread is gone.
    ending: Option<Exit>,
    /// Results of its threads after the first, read as each ended:
    /// (index, results, count).
    thread_results: Vec<(u32, Vec<u64>, u64)>,
}

/// A vector of optional values reached by index, with a free list.
struct Slab<T> {
    slots: Vec<Option<T>>,
    free: Vec<usize>,
}

impl<T> Slab<T> {
    const fn new() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    fn insert(&mut self, v: T) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(v);
                i
            }
            None => {
                self.slots.push(Some(v));
                self.slots.len() - 1
            }
        }
    }

    /// The value in `slot`.
    ///
    /// # Panics
    /// If the slot is free.
    fn at(&mut self, slot: usize) -> &mut T {
        self.slots[slot].as_mut().expect("a live slot")
    }

    fn remove(&mut self, slot: usize) -> Option<T> {
        let v = self.slots.get_mut(slot)?.take()?;
        self.free.push(slot);
        Some(v)
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut().flatten()
    }

    fn clear(&mut self) {
        self.slots.clear();
        self.free.clear();
    }
}

/// The processes: a slab, so the scheduler's hot path (a thread's
/// process) reaches one by index, with no search, plus a pid index for
/// everything else.
struct ProcTable {
    slab: Slab<Process>,
    by_pid: BTreeMap<ProcessId, usize>,
}

impl ProcTable {
    const fn new() -> Self {
        ProcTable {
            slab: Slab::new(),
            by_pid: BTreeMap::new(),
        }
    }

    /// Adds `p`; returns its slot.
    fn insert(&mut self, p: Process) -> usize {
        let pid = p.pid;
        let slot = self.slab.insert(p);
        self.by_pid.insert(pid, slot);
        slot
    }

    fn slot(&self, pid: ProcessId) -> Option<usize> {
        self.by_pid.get(&pid).copied()
    }

    fn get_mut(&mut self, pid: ProcessId) -> Option<&mut Process> {
        let i = self.slot(pid)?;
        self.slab.slots[i].as_mut()
    }

    /// The process in `slot`.
    ///
    /// # Panics
    /// If the slot is free.
    fn at(&mut self, slot: usize) -> &mut Process {
        self.slab.at(slot)
    }

    fn remove(&mut self, slot: usize) -> Option<Process> {
        let p = self.slab.remove(slot)?;
        self.by_pid.remove(&p.pid);
        Some(p)
    }

    fn pids(&self) -> impl Iterator<Item = ProcessId> + '_ {
        self.by_pid.keys().copied()
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut Process> {
        self.slab.values_mut()
    }

    fn clear(&mut self) {
        self.slab.clear();
        self.by_pid.clear();
    }
}

/// The scheduler: one lock over the processes, the threads and one ready
/// queue shared by every processor; what each processor runs is
/// `running[cpu]`.
struct Sched {
    procs: ProcTable,
    threads: Slab<Thread>,
    /// Slots of the ready threads, in order.
    ready: VecDeque<usize>,
    /// Per CPU: the slot of the thread it runs.
    running: [Option<usize>; MAX_CPUS],
    /// Per CPU: the tid it dispatched last (0: none), for the switch count.
    last: [u64; MAX_CPUS],
    /// CPUs idle in [`switch::idle_frame`]'s loop that no one has asked
    /// to look for work since ([`kick_idle`]).
    idle: u64,
    /// The CPUs this run may use ([`run_on`]).
    allowed: u64,
    /// A run is on: from [`run_on`]'s start until the boot processor
    /// heads back to it. A processor that takes an interrupt in the idle
    /// loop outside a run (a late kick) must not dispatch what [`spawn`]
    /// queues for the next run.
    active: bool,
    outcomes: Vec<Outcome>,
    kernel_msr: u64,
    quantum: u64,
    switches: u64,
    preemptions: u64,
    /// [`trap::syscall_count`] when the run started.
    syscalls_before: u64,
}

static SCHED: CpuLock<Sched> = CpuLock::new(
    "proc: the scheduler",
    Sched {
        procs: ProcTable::new(),
        threads: Slab::new(),
        ready: VecDeque::new(),
        running: [None; MAX_CPUS],
        last: [0; MAX_CPUS],
        idle: 0,
        allowed: 1,
        active: false,
        outcomes: Vec::new(),
        kernel_msr: 0,
        quantum: 0,
        switches: 0,
        preemptions: 0,
        syscalls_before: 0,
    },
);

/// The kernel context [`run`] saved; only `proc_call` (writing) and the
/// interrupt return into `context_resume` (reading) touch it.
static mut KERNEL_CONTEXT: KernelContext = KernelContext::new();

/// The scheduler lock. Lock order: the scheduler's before the VMM's
/// (dispatching switches address spaces with it held), never the other
/// way round.
#[inline(always)]
fn sched() -> CpuLockGuard<'static, Sched> {
    SCHED.lock()
}

fn zeroed_frame() -> TrapFrame {
    // SAFETY: TrapFrame is plain integers (repr(C)); all-zero is valid.
    unsafe { core::mem::zeroed() }
}

/// Decrementer ticks per time slice: 1/1000 s of timebase (512 000
/// ticks at 512 MHz, about a million instructions under `-icount
/// shift=0`).
pub fn default_quantum() -> u64 {
    let hz = crate::bootinfo::get()
        .cpu
        .timebase_frequency
        .map_or(512_000_000, u64::from);
    (hz / 1000).max(1000)
}

fn set_dec(v: u64) {
    // SAFETY: writing DEC only schedules the next decrementer interrupt,
    // which is taken only with MSR[EE] = 1 (problem state, or idle).
    unsafe { Dec::write(v) };
}

/// The segments of a new process: (ESID, size, page protection, N).
fn segments() -> [(u64, u64, PageProt, bool); 3] {
    [
        // Text: PP 01 = read-only for Kp = 1 (problem state), read-write
        // for Ks = 0 (the kernel loads it); executable.
        (
            user::TEXT_BASE >> 28,
            user::TEXT_SIZE,
            PageProt {
                pp: Pp::RW_RO,
                no_exec: false,
            },
            false,
        ),
        // Data and stack: PP 10 = read-write for both keys; no execute.
        (
            user::DATA_BASE >> 28,
            user::DATA_SIZE,
            PageProt {
                pp: Pp::RW_RW,
                no_exec: true,
            },
            true,
        ),
        (
            user::STACK_BASE >> 28,
            user::STACK_SIZE,
            PageProt {
                pp: Pp::RW_RW,
                no_exec: true,
            },
            true,
        ),
    ]
}

/// Key of a process's own segments: Ks = 0 (the kernel reads and writes
/// them), Kp = 1 (problem state gets what the page PP gives key 1).
const USER_KEY: SegKey = SegKey {
    ks: false,
    kp: true,
};

/// Creates process `pid`'s address space with its three segments.
fn create_space(pid: ProcessId, model: AddressModel) -> Result<SpaceId, ProcError> {
    mm::with_aix(|aix| {
        aix.create_process(pid, model).map_err(ProcError::Process)?;
        let space = aix
            .vm()
            .space_id(Space::Process(pid))
            .expect("the space create_process made");
        let vmm = aix.vm_mut().vmm_mut();
        let mut result = Ok(());
        for (esid, size, prot, no_exec) in segments() {
            let made = vmm
                .create_segment(SidKind::User, size, prot)
                .and_then(|sid| {
                    let mut o = MapOptions::new(USER_KEY);
                    o.no_exec = no_exec;
                    o.fork = ForkAction::Copy;
                    o.owned = true;
                    vmm.map(SpaceRef::User(space), Esid::new(esid), sid, o)
                        .inspect_err(|_| {
                            let _ = vmm.delete_segment(sid);
                        })
                });
            if let Err(e) = made {
                result = Err(ProcError::Vm(e));
                break;
            }
        }
        if result.is_err() {
            // Owned mappings take their segments along.
            let _ = aix.exit(pid);
        }
        result.map(|()| space)
    })
}

/// Copies `data` to user address `ea` of the current address space with
/// supervisor stores (faults zero-fill the pages on the way).
fn copy_to_current(ea: u64, data: &[u8]) {
    // SAFETY: the caller made the target process's space current; `ea`
    // lies in one of its segments, which Ks = 0 lets the kernel write
    // (PP 01 and 10); faults are resolved by the VMM (no lock is held).
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), ea as *mut u8, data.len()) };
}

/// Creates a process that will run `script` (it starts at the next
/// [`run`]). Returns its pid.
///
/// # Errors
/// [`ProcError`] when the space or a segment cannot be made (nothing is
/// left behind), or the script is too large.
pub fn spawn(script: &Script) -> Result<ProcessId, ProcError> {
    spawn_with_model(script, AddressModel::Bits64)
}

/// [`spawn`] with the AIX address-space model `model`: a 32-bit process
/// gets its `as_att`/`as_att64`/`vm_guatt` regions in segment registers
/// 3..13 and 15 (below 4 GB; the agent's own segments 1, 2 and 14 are
/// below 4 GB too). The agent still runs with MSR\[SF\] = 1.
///
/// # Errors
/// As [`spawn`].
pub fn spawn_with_model(script: &Script, model: AddressModel) -> Result<ProcessId, ProcError> {
    heal();
    let bytes = script.to_bytes();
    if bytes.len() as u64 > user::SCRIPT_MAX_BYTES {
        return Err(ProcError::ScriptTooLarge(bytes.len()));
    }
    let pid = ProcessId(NEXT_PID.fetch_add(1, Ordering::Relaxed));
    let space = create_space(pid, model)?;
    // Load the agent and the script through the process's own mappings.
    let prev = mm::with_aix(|aix| {
        let prev = aix.vm().vmm().current();
        aix.vm_mut()
            .switch_to(Space::Process(pid))
            .expect("switch to the new space");
        prev
    });
    let code = user::agent_code();
    copy_to_current(user::TEXT_BASE, code);
    trap::sync_icache(user::TEXT_BASE, code.len() as u64);
    copy_to_current(user::SCRIPT_BASE, &bytes);
    mm::with_vmm(|v| v.switch_to(prev)).expect("switch back");

    let mut frame = zeroed_frame();
    frame.gpr[1] = user::STACK_BASE + user::STACK_SIZE - 256;
    frame.gpr[3] = user::SCRIPT_BASE;
    frame.gpr[4] = user::VARS_BASE;
    frame.gpr[5] = user::RESULTS_BASE;
    frame.srr0 = user::TEXT_BASE;
    frame.srr1 = user_msr();
    let mut s = sched();
    let slot = new_process(&mut s, pid, None, space);
    let t = new_thread(&mut s, slot, frame);
    s.ready.push_back(t);
    CREATED.fetch_add(1, Ordering::Relaxed);
    Ok(pid)
}

/// Adds process `pid` (address space `space`, child of `parent`) with no
/// thread yet; returns its slot.
fn new_process(s: &mut Sched, pid: ProcessId, parent: Option<ProcessId>, space: SpaceId) -> usize {
    s.procs.insert(Process {
        pid,
        parent,
        forked_from: parent,
        space,
        reports: Vec::new(),
        dispatches: 0,
        cpus: 0,
        live_children: 0,
        ended_children: VecDeque::new(),
        threads: Vec::new(),
        threads_made: 0,
        waiters: VecDeque::new(),
        ending: None,
        thread_results: Vec::new(),
    })
}

/// Adds a thread to the process in `proc_slot`, starting from `frame`
/// (not queued yet); returns its slot.
fn new_thread(s: &mut Sched, proc_slot: usize, frame: TrapFrame) -> usize {
    let p = s.procs.at(proc_slot);
    let index = p.threads_made;
    p.threads_made += 1;
    let (pid, space) = (p.pid, p.space);
    let t = s.threads.insert(Thread {
        tid: NEXT_TID.fetch_add(1, Ordering::Relaxed),
        proc_slot,
        pid,
        space,
        dispatches: 0,
        cpus: 0,
        index,
        frame: alloc::boxed::Box::new(frame),
        state: ThreadState::Ready,
        stopping: false,
    });
    s.procs.at(proc_slot).threads.push(t);
    t
}

/// Spawns one process per script and runs them all; returns the pids
/// (in script order) and the report.
///
/// # Panics
/// If a process cannot be created.
pub fn run_scripts(scripts: &[&Script]) -> (Vec<ProcessId>, RunReport) {
    let pids = scripts
        .iter()
        .map(|s| spawn(s).unwrap_or_else(|e| panic!("spawn: {e:?}")))
        .collect();
    (pids, run())
}

/// Handlers [`run`] installs, and what they replaced.
#[derive(Clone, Copy)]
struct Installed {
    old: [(Vector, Option<TrapHandler>); 6],
    old_syscalls: Option<&'static [Option<trap::SyscallHandler>]>,
    old_hook: Option<mm::UserFaultHook>,
    old_fallback: Option<TrapHandler>,
}

/// What the running [`run`] replaced (`None` outside a run).
static INSTALLED: spin::Mutex<Option<Installed>> = spin::Mutex::new(None);

/// Set while [`run`] is inside a run: still set at the next [`spawn`] or
/// [`run`] only if a failed test abandoned the run (a panic in a handler
/// jumps straight back to the harness).
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Set while [`heal`] stops the other processors' threads of an abandoned
/// run: a processor that sees it drops the thread it runs and goes idle.
static ABANDON: AtomicBool = AtomicBool::new(false);

/// How long [`heal`] waits for the other processors to drop their
/// threads.
const HEAL_WAIT_SECONDS: u64 = 10;

/// Cleans up after a run a failed test abandoned: its locks, the threads
/// other processors still run, its processes (their address spaces go
/// through the exit hook), handlers, environment and decrementer. Called
/// in kernel context on the boot processor by [`spawn`], [`run`] and the
/// harness after a failed test or expected panic; does nothing after a
/// run that ended normally.
pub fn heal() {
    if !RUNNING.swap(false, Ordering::SeqCst) {
        return;
    }
    // SAFETY: kernel context between runs, EE = 0: no handler of this
    // processor runs, so a hold of these locks here is the abandoned one
    // (another processor's hold is left alone: that holder runs on).
    unsafe {
        SCHED.force_unlock_here();
        if INSTALLED.is_locked() {
            INSTALLED.force_unlock();
        }
    }
    stop_other_cpus();
    if let Some(i) = INSTALLED.lock().take() {
        uninstall(i);
    }
    let mut s = sched();
    // The harness resumed the test with the MSR of the handler that
    // panicked (the interrupt cleared FP); kernel code saves FP
    // registers in prologues, so give FP back as the run found it.
    if s.kernel_msr & Msr::FP.bits() != 0 {
        // SAFETY: setting FP only enables floating-point instructions.
        unsafe { msr::write(msr::read() | Msr::FP) };
    }
    let stale: Vec<ProcessId> = s.procs.pids().collect();
    log::warn!(
        "proc: cleaning up {} processes of an abandoned run",
        stale.len()
    );
    mm::with_aix(|aix| {
        let _ = aix.vm_mut().vmm_mut().switch_to(None);
        aix.vm_mut().set_environment(Environment::KernelProcess);
        for pid in &stale {
            if let Err(e) = aix.exit(*pid) {
                log::error!("proc: exit hook of stale process {}: {e:?}", pid.0);
            }
        }
    });
    s.procs.clear();
    s.threads.clear();
    s.ready.clear();
    s.running = [None; MAX_CPUS];
    s.idle = 0;
    trap::set_current_pid(0);
    s.outcomes.clear();
    set_dec(DEC_IDLE);
}

/// Makes every other processor drop the thread it runs (an abandoned run)
/// and waits until each has.
fn stop_other_cpus() {
    let me = smp::this_cpu();
    ABANDON.store(true, Ordering::SeqCst);
    let others = smp::online_mask() & !(1 << me);
    let busy = |s: &Sched| {
        (0..MAX_CPUS)
            .filter(|&c| others & (1 << c) != 0 && s.running[c].is_some())
            .fold(0u64, |m, c| m | 1 << c)
    };
    let hz = crate::bootinfo::get()
        .cpu
        .timebase_frequency
        .map_or(512_000_000, u64::from);
    let t0 = crate::harness::timebase();
    loop {
        let left = busy(&sched());
        if left == 0 {
            break;
        }
        for c in (0..MAX_CPUS).filter(|c| left & (1 << c) != 0) {
            smp::kick(c);
        }
        if crate::harness::timebase() - t0 > HEAL_WAIT_SECONDS * hz {
            crate::console::print_fmt_unlocked(format_args!(
                "\nproc: CPUs {left:#x} still run threads of an abandoned run\n"
            ));
            crate::platform::exit(false, "proc: a processor does not stop its thread");
        }
        smp::relax();
    }
    ABANDON.store(false, Ordering::SeqCst);
}

fn install() -> Installed {
    // IPIs (kicks and cross-calls) come at 0x500 through XICS on pseries
    // and at 0xe80 as hypervisor doorbells on powernv: both come here.
    let ours: [(Vector, TrapHandler); 6] = [
        (Vector::SystemCall, syscall::on_syscall),
        (Vector::Decrementer, on_decrementer),
        (Vector::Program, on_program),
        (Vector::Alignment, on_alignment),
        (Vector::External, on_external),
        (Vector::HypervisorDoorbell, on_external),
    ];
    let old = ours.map(|(v, h)| (v, trap::set_handler(v, Some(h))));
    let old_hook = mm::set_user_fault_hook(on_user_fault);
    let old_fallback = trap::set_problem_state_fallback(Some(on_unhandled));
    let old_syscalls = trap::set_syscall_table(Some(&syscall::FAST));
    Installed {
        old,
        old_syscalls,
        old_hook,
        old_fallback,
    }
}

fn uninstall(i: Installed) {
    for (v, h) in i.old {
        trap::set_handler(v, h);
    }
    match i.old_hook {
        Some(h) => mm::set_user_fault_hook(h),
        None => mm::clear_user_fault_hook(),
    };
    trap::set_problem_state_fallback(i.old_fallback);
    trap::set_syscall_table(i.old_syscalls);
}

/// Runs every ready process until none is runnable; returns what ended.
/// The kernel context (this call) is saved and resumed when the last
/// runnable thread ends or waits. Every online processor runs threads.
pub fn run() -> RunReport {
    run_with_quantum(default_quantum())
}

/// [`run`] with a time slice of `quantum` timebase ticks.
pub fn run_with_quantum(quantum: u64) -> RunReport {
    run_on(u64::MAX, quantum)
}

/// [`run_with_quantum`] on the online CPUs of the mask `cpus` alone (the
/// boot processor always runs threads): for tests whose threads must take
/// turns on one processor, and measurements of one processor's costs.
pub fn run_on(cpus: u64, quantum: u64) -> RunReport {
    run_inner(cpus, quantum, false)
}

/// [`run_with_quantum`], in the order a race once took: the other
/// processors are asked for the ready threads and take them before the
/// boot processor enters the run, which then finds the queue empty while
/// the run is not over. Answers whether they took every thread first
/// (with too few idle processors, or a slow one, they may not have).
pub fn run_others_first(quantum: u64) -> (RunReport, bool) {
    let report = run_inner(u64::MAX, quantum, true);
    (report, OTHERS_TOOK_ALL.load(Ordering::SeqCst))
}

/// How often [`run_others_first`] looks at the queue before it goes on.
const OTHERS_FIRST_POLLS: u32 = 100_000;

/// Whether the last [`run_others_first`] saw the queue emptied by others.
static OTHERS_TOOK_ALL: AtomicBool = AtomicBool::new(false);

fn run_inner(cpus: u64, quantum: u64, others_first: bool) -> RunReport {
    heal();
    let installed = install();
    *INSTALLED.lock() = Some(installed);
    RUNNING.store(true, Ordering::SeqCst);
    {
        let mut s = sched();
        s.kernel_msr = msr::read().bits();
        s.quantum = quantum;
        s.outcomes.clear();
        s.switches = 0;
        s.preemptions = 0;
        s.syscalls_before = trap::syscall_count();
        s.last = [0; MAX_CPUS];
        s.running = [None; MAX_CPUS];
        // The others wait in an idle loop; the first dispatch asks as
        // many of them as there is work for.
        s.allowed = (cpus | 1) & smp::online_mask();
        s.idle = s.allowed & !1;
        s.active = true;
        if others_first {
            kick_idle(&mut s, 0);
        }
    }
    if others_first {
        // Bounded: under -icount the others run only while this one
        // spins, in turns.
        let took_all = (0..OTHERS_FIRST_POLLS).any(|_| {
            for _ in 0..1000 {
                core::hint::spin_loop();
            }
            sched().ready.is_empty()
        });
        OTHERS_TOOK_ALL.store(took_all, Ordering::SeqCst);
    }
    let start = crate::harness::timebase();
    // SAFETY: `enter_first` enters a thread (or the idle loop) and never
    // returns, or returns at once with nothing to run; the way back is an
    // interrupt handler resuming `context_resume` with KERNEL_CONTEXT,
    // which restores this frame's callee-saved state. The context is a
    // static, so it outlives the call.
    let back = unsafe { switch::proc_call(enter_first as *const (), &raw mut KERNEL_CONTEXT) };
    let ticks = crate::harness::timebase() - start;
    set_dec(DEC_IDLE);
    RUNNING.store(false, Ordering::SeqCst);
    INSTALLED.lock().take();
    uninstall(installed);
    let mut s = sched();
    s.idle = 0;
    s.active = false;
    // A kick that found the boot processor on its way back is not for
    // anything after the run.
    let _ = smp::take_reschedule();
    debug_assert!(back == 1 || s.ready.is_empty());
    RunReport {
        outcomes: core::mem::take(&mut s.outcomes),
        context_switches: s.switches,
        preemptions: s.preemptions,
        syscalls: trap::syscall_count() - s.syscalls_before,
        ticks,
    }
}

/// Enters the first ready thread; with nothing ready or running returns
/// to `run` (the run is over before it began), or, while other processors
/// run threads, enters the idle loop.
///
/// Idle processors may take threads between `run_on` opening the run and
/// this call (an interrupt left pending from the last run, or any
/// interrupt, lets a secondary's idle loop look at the queue once the run
/// is active), possibly all of them: an empty queue alone does not mean
/// the run is over.
fn enter_first() {
    let mut frame = zeroed_frame();
    {
        let mut s = sched();
        if run_over(&s) {
            // Nothing to run: plain return to `proc_call`.
            return;
        }
        dispatch_next(&mut s, &mut frame);
    }
    // SAFETY: the frame resumes a thread's saved state (problem state,
    // translation on), boxed in its Thread, which nothing removes before
    // the rfid (it runs here), and its address space was just made
    // current. EE is 0 until rfid.
    unsafe { switch::proc_enter(&frame) }
}

/// The frame that takes the interrupt return path back to `run`.
fn kernel_resume_frame(kernel_msr: u64) -> TrapFrame {
    let mut f = zeroed_frame();
    // SAFETY: read-only access to the saved context's registers; only
    // `proc_call` writes it, and that is not running now.
    let ctx = unsafe { (&raw const KERNEL_CONTEXT).as_ref() }.expect("a static");
    // Leave a red zone below the saved stack pointer for the rfid target,
    // which loads r1 from the context before using the stack anyway.
    f.gpr[1] = ctx.r1() - 512;
    f.gpr[2] = ctx.r2();
    f.gpr[13] = ctx.r13();
    f.gpr[3] = &raw const KERNEL_CONTEXT as u64;
    f.srr0 = switch::resume_kernel_address();
    f.srr1 = kernel_msr;
    f
}

/// Whether the run is over: nothing ready and no processor runs a thread
/// (threads still waiting then wait for nothing).
fn run_over(s: &Sched) -> bool {
    s.ready.is_empty() && s.running.iter().all(Option::is_none)
}

/// Puts the next ready thread into `frame` (address space, environment,
/// time slice), or, with none ready, the idle loop or the way back to
/// `run` ([`go_idle`]); then asks idle processors to take what is still
/// ready.
#[inline(never)]
fn dispatch_next(s: &mut Sched, frame: &mut TrapFrame) {
    dispatch_next_on(s, frame, smp::this_cpu());
}

/// [`dispatch_next`] on CPU `cpu`, the running processor. Inlined into
/// [`switch_away`], so a yield or a preemption builds one stack frame,
/// not two.
#[inline(always)]
fn dispatch_next_on(s: &mut Sched, frame: &mut TrapFrame, cpu: usize) {
    match s.ready.pop_front() {
        Some(t) => dispatch(s, frame, cpu, t),
        None => go_idle(s, frame, cpu),
    }
    if s.idle != 0 && !s.ready.is_empty() {
        kick_idle(s, cpu);
    }
}

/// Makes CPU `cpu` run thread `t` from `frame`'s return.
#[inline(always)]
fn dispatch(s: &mut Sched, frame: &mut TrapFrame, cpu: usize, t: usize) {
    let th = s.threads.at(t);
    th.state = ThreadState::Running(cpu);
    frame.resume_from(&th.frame);
    th.dispatches += 1;
    th.cpus |= 1 << cpu;
    let (tid, pid, space) = (th.tid, th.pid, th.space);
    mm::with_aix(|aix| {
        let vm = aix.vm_mut();
        vm.vmm_mut()
            .switch_to(Some(space))
            .expect("switch to a live process");
        vm.set_environment(Environment::Process(pid));
    });
    if s.last[cpu] != tid {
        s.switches += 1;
        SWITCHES.fetch_add(1, Ordering::Relaxed);
    }
    s.last[cpu] = tid;
    s.running[cpu] = Some(t);
    trap::set_current_pid(pid.0);
    set_dec(s.quantum);
}

/// CPU `cpu` stops running its thread: no current process, only the
/// kernel's address space, the decrementer idle.
fn leave_thread(s: &mut Sched, cpu: usize) {
    s.running[cpu] = None;
    trap::set_current_pid(0);
    mm::with_aix(|aix| {
        let _ = aix.vm_mut().vmm_mut().switch_to(None);
        aix.vm_mut().set_environment(Environment::KernelProcess);
    });
    set_dec(DEC_IDLE);
}

/// CPU `cpu` has nothing to run: it leaves its address space and goes to
/// the idle loop, or, once the run is over, the boot processor goes back
/// to `run` (another processor that finds the run over wakes it).
#[cold]
fn go_idle(s: &mut Sched, frame: &mut TrapFrame, cpu: usize) {
    leave_thread(s, cpu);
    if run_over(s) && cpu == 0 {
        s.active = false;
        *frame = kernel_resume_frame(s.kernel_msr);
        return;
    }
    if !run_over(s) {
        s.idle |= 1 << cpu;
    } else if s.idle & 1 != 0 {
        // The boot processor waits in the idle loop: it goes back to
        // `run` once woken. (Anywhere else it is on its way to the
        // scheduler, and sees the run is over itself.)
        s.idle &= !1;
        smp::kick(0);
    }
    *frame = switch::idle_frame(cpu, IDLE_MSR);
}

/// Asks idle processors (other than `me`) to take ready threads: one per
/// ready thread.
#[cold]
fn kick_idle(s: &mut Sched, me: usize) {
    let mut wanted = s.ready.len();
    let mut idle = s.idle & !(1 << me);
    while wanted > 0 && idle != 0 {
        let c = idle.trailing_zeros() as usize;
        idle &= idle - 1;
        s.idle &= !(1 << c);
        smp::kick(c);
        wanted -= 1;
    }
}

/// Queues thread `t` and asks an idle processor to take it.
fn make_ready(s: &mut Sched, t: usize) {
    s.threads.at(t).state = ThreadState::Ready;
    s.ready.push_back(t);
    if s.idle != 0 {
        kick_idle(s, smp::this_cpu());
    }
}

/// Saves the interrupted thread (requeued if `requeue`, unless its
/// process is ending) and dispatches the next one.
#[inline]
fn switch_away(s: &mut Sched, frame: &mut TrapFrame, requeue: bool) {
    let cpu = smp::this_cpu();
    if let Some(t) = s.running[cpu] {
        let th = s.threads.at(t);
        switch::copy_frame(&mut th.frame, frame);
        if th.stopping {
            return end_current_thread(s, frame);
        }
        s.running[cpu] = None;
        if requeue {
            // No one is asked to take it: the dispatch below asks idle
            // processors for whatever it leaves in the queue.
            th.state = ThreadState::Ready;
            s.ready.push_back(t);
        }
    }
    dispatch_next_on(s, frame, cpu);
}

/// The thread this processor runs, if any.
fn current_thread(s: &Sched) -> Option<usize> {
    s.running[smp::this_cpu()]
}

/// Reads the agent's results area at `results_base` in `pid`'s data
/// segment through the frame backing it (touches no user mapping, so it is
/// safe in any handler). Untouched pages read as zeroes.
fn read_results(pid: ProcessId, results_base: u64) -> (Vec<u64>, u64) {
    let page = mm::with_aix(|aix| {
        let space = aix.vm().space_id(Space::Process(pid))?;
        let vmm = aix.vm().vmm();
        let m = vmm
            .space(space)
            .ok()?
            .get(Esid::new(user::DATA_BASE >> 28))?;
        let page = ((results_base - user::DATA_BASE) >> 12) as u32;
        vmm.page_frame(m.handle.sid(), page).ok().flatten()
    });
    let Some(pa) = page else {
        return (Vec::new(), 0);
    };
    let base = crate::bootinfo::real_to_virt(pa.as_u64()) as *const u64;
    // SAFETY: the frame is a live, resident page of the data segment,
    // reached through the kernel's linear map; it is only read.
    let count = unsafe { base.read_volatile() };
    let kept = (count as usize).min(user::RESULTS_MAX);
    let results = (1..=kept)
        // SAFETY: as above; index <= 511 stays inside the 4 KiB page.
        .map(|i| unsafe { base.add(i).read_volatile() })
        .collect();
    (results, count)
}

/// Marks the process in `proc_slot` as ending with `exit` (the first
/// reason wins) and stops its threads: those not running are dropped at
/// once, those running on other processors are asked to stop (an IPI:
/// they drop themselves in their handler, [`on_external`]); the caller's
/// own thread, if it is one of them, is the caller's to end. The process
/// ends when its last thread is gone ([`drop_thread`]).
fn exit_process(s: &mut Sched, proc_slot: usize, exit: Exit) {
    let me = smp::this_cpu();
    let p = s.procs.at(proc_slot);
    if p.ending.is_none() {
        p.ending = Some(exit);
    }
    let threads = p.threads.clone();
    for t in threads {
        s.threads.at(t).stopping = true;
        match s.threads.at(t).state {
            ThreadState::Ready => {
                s.ready.retain(|&r| r != t);
                drop_thread(s, t);
            }
            ThreadState::Waiting => {
                s.procs.at(proc_slot).waiters.retain(|&w| w != t);
                drop_thread(s, t);
            }
            ThreadState::Running(c) if c != me => smp::kick(c),
            ThreadState::Running(_) => {}
        }
    }
}

/// Ends the thread this processor runs: it leaves the address space
/// first (the process's teardown needs it run nowhere), then the thread
/// goes, and the next thread is dispatched.
fn end_current_thread(s: &mut Sched, frame: &mut TrapFrame) {
    let cpu = smp::this_cpu();
    if let Some(t) = s.running[cpu].take() {
        trap::set_current_pid(0);
        mm::with_aix(|aix| {
            let _ = aix.vm_mut().vmm_mut().switch_to(None);
        });
        drop_thread(s, t);
    }
    dispatch_next(s, frame);
}

/// Removes thread `t` (running nowhere); its process ends with it if it
/// was the last.
fn drop_thread(s: &mut Sched, t: usize) {
    let Some(th) = s.threads.remove(t) else {
        return;
    };
    let p = s.procs.at(th.proc_slot);
    p.dispatches += th.dispatches;
    p.cpus |= th.cpus;
    p.threads.retain(|&x| x != t);
    p.waiters.retain(|&x| x != t);
    let (pid, last) = (p.pid, p.threads.is_empty());
    if th.index > 0 {
        let (results, count) = read_results(pid, user::thread_results_base(th.index));
        s.procs
            .at(th.proc_slot)
            .thread_results
            .push((th.index, results, count));
    }
    if last {
        finish_process(s, th.proc_slot, th.index);
    }
}

/// The process in `proc_slot` has no thread left (thread `last_thread`
/// went last): records its outcome,
/// tears down its address space through the services' exit hook and
/// tells its parent.
fn finish_process(s: &mut Sched, proc_slot: usize, last_thread: u32) {
    let Some(p) = s.procs.remove(proc_slot) else {
        return;
    };
    let pid = p.pid;
    let exit = p.ending.unwrap_or(Exit::Status(0));
    let (results, result_count) = read_results(pid, user::RESULTS_BASE);
    mm::with_aix(|aix| {
        if let Err(e) = aix.exit(pid) {
            log::error!("proc: exit hook of process {} failed: {e:?}", pid.0);
        }
    });
    match exit {
        Exit::Status(_) => EXITED.fetch_add(1, Ordering::Relaxed),
        Exit::Killed(_) => KILLED_COUNT.fetch_add(1, Ordering::Relaxed),
    };
    // Orphans keep running without a parent.
    for c in s.procs.values_mut() {
        if c.parent == Some(pid) {
            c.parent = None;
        }
    }
    if let Some(ppid) = p.parent {
        let (value, killed) = match exit {
            Exit::Status(st) => (st, false),
            Exit::Killed(k) => (KILLED | k.cause.code(), true),
        };
        if let Some(parent) = s.procs.get_mut(ppid) {
            parent.live_children -= 1;
            match parent.waiters.pop_front() {
                Some(w) => {
                    let f = &mut s.threads.at(w).frame;
                    f.gpr[3] = value;
                    f.gpr[4] = pid.0 as u64;
                    f.gpr[5] = killed as u64;
                    make_ready(s, w);
                }
                None => parent.ended_children.push_back((pid, value, killed)),
            }
        }
    }
    let mut thread_results = p.thread_results;
    thread_results.sort_by_key(|r| r.0);
    s.outcomes.push(Outcome {
        pid,
        parent: p.forked_from,
        exit,
        results,
        result_count,
        reports: p.reports,
        dispatches: p.dispatches,
        cpus: p.cpus,
        thread_results,
        last_thread,
    });
}

/// Kills the current thread's process with `cause` and dispatches the
/// next thread.
fn kill_current(frame: &mut TrapFrame, cause: KillCause) {
    let mut s = sched();
    let Some(t) = current_thread(&s) else {
        panic!(
            "proc: problem-state fault with no current thread on CPU {}: {cause:?} at SRR0 {:#x}",
            smp::this_cpu(),
            frame.srr0
        );
    };
    let th = s.threads.at(t);
    let (proc_slot, pid) = (th.proc_slot, th.pid);
    let report = KillReport {
        pid,
        srr0: frame.srr0,
        cause,
    };
    println!("\n{report}");
    exit_process(&mut s, proc_slot, Exit::Killed(report));
    end_current_thread(&mut s, frame);
}

fn on_user_fault(frame: &mut TrapFrame, fault: VmFault) {
    kill_current(frame, KillCause::Fault(fault));
}

fn from_problem_state(frame: &TrapFrame) -> bool {
    frame.srr1 & Msr::PR.bits() != 0
}

/// Kills the current process for `cause` if the interrupt came from
/// problem state; in the kernel it is a bug: panic with the frame.
fn kill_or_panic(frame: &mut TrapFrame, what: &str, cause: KillCause) {
    if !from_problem_state(frame) {
        panic!(
            "{what} interrupt in the kernel at {:#x}\n{frame}",
            frame.srr0
        );
    }
    kill_current(frame, cause);
}

fn on_program(frame: &mut TrapFrame) {
    let cause = KillCause::Program { srr1: frame.srr1 };
    kill_or_panic(frame, "program", cause);
}

fn on_alignment(frame: &mut TrapFrame) {
    let cause = KillCause::Alignment { dar: frame.dar };
    kill_or_panic(frame, "alignment", cause);
}

/// Any vector without a handler taken in problem state (the trap
/// dispatcher only calls this with `SRR1\[PR\]` = 1).
fn on_unhandled(frame: &mut TrapFrame) {
    kill_current(
        frame,
        KillCause::Unhandled {
            vector: frame.vector,
            srr1: frame.srr1,
        },
    );
}

fn on_decrementer(frame: &mut TrapFrame) {
    if !from_problem_state(frame) {
        // Only problem state and the idle loop run with EE = 1.
        set_dec(DEC_IDLE);
        return on_idle(frame);
    }
    let mut s = sched();
    s.preemptions += 1;
    PREEMPTIONS.fetch_add(1, Ordering::Relaxed);
    switch_away(&mut s, frame, true);
}

/// The external interrupt while processes run, on any processor: the
/// cross-call server first (IPIs carry cross-calls and kicks alike), then
/// what a kick asks: a processor in the idle loop looks for work; one
/// running a thread of an ending process (or of an abandoned run) drops
/// it.
fn on_external(frame: &mut TrapFrame) {
    smp::crosscall::on_external(frame);
    let _ = smp::take_reschedule();
    if !from_problem_state(frame) {
        return on_idle(frame);
    }
    let mut s = sched();
    let Some(t) = current_thread(&s) else {
        return;
    };
    if ABANDON.load(Ordering::SeqCst) {
        return abandon_current(&mut s, frame);
    }
    if s.threads.at(t).stopping {
        switch::copy_frame(&mut s.threads.at(t).frame, frame);
        end_current_thread(&mut s, frame);
    }
}

/// An interrupt taken in the idle loop (the only kernel code that runs
/// with EE = 1): take a ready thread; the boot processor goes back to
/// `run` once the run is over; else stay idle.
fn on_idle(frame: &mut TrapFrame) {
    let cpu = smp::this_cpu();
    let mut s = sched();
    if !s.active
        || s.running[cpu].is_some()
        || ABANDON.load(Ordering::SeqCst)
        || s.allowed & (1 << cpu) == 0
    {
        return;
    }
    if let Some(t) = s.ready.pop_front() {
        s.idle &= !(1 << cpu);
        dispatch(&mut s, frame, cpu, t);
        if s.idle != 0 && !s.ready.is_empty() {
            kick_idle(&mut s, cpu);
        }
    } else if cpu == 0 && run_over(&s) {
        s.idle &= !1;
        s.active = false;
        *frame = kernel_resume_frame(s.kernel_msr);
    } else {
        s.idle |= 1 << cpu;
    }
}

/// Drops the thread this processor runs without saving it (the run was
/// abandoned; [`heal`] waits for this) and goes to the idle loop.
fn abandon_current(s: &mut Sched, frame: &mut TrapFrame) {
    let cpu = smp::this_cpu();
    leave_thread(s, cpu);
    *frame = switch::idle_frame(cpu, IDLE_MSR);
}
