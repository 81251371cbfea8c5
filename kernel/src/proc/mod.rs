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
//! context, enters the first process with `rfid`, and comes back (through
//! the interrupt return path into [`switch::proc_call`]'s saved context)
//! when no process is runnable. A context switch is a copy of the
//! interrupted [`TrapFrame`] into the process, the next process's (boxed)
//! frame named as the one the interrupt return restores
//! ([`TrapFrame::resume_from`]), and the VMM's switch of address space
//! (which preloads the SLB entries the space had) and environment. Processes never block inside the
//! kernel: `wait` without an ended child marks the process waiting and
//! schedules another.
//!
//! Faults the VMM refuses in problem state come through
//! [`crate::mm::set_user_fault_hook`]; program and alignment interrupts
//! from problem state likewise kill the process. The report (pid,
//! address, access, reason, SRR0) is printed and kept in the process's
//! [`Outcome`]; the kernel goes on with the next process.

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

use crate::mm;
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
    /// How many times the scheduler dispatched it.
    pub dispatches: u64,
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

/// The pid of the process running (the one [`dispatch_next`] entered
/// last), 0 while none is: the fast system call handlers read it without
/// the scheduler lock.
static CURRENT: AtomicU32 = AtomicU32::new(0);

/// The running process, for a system call handler.
///
/// # Panics
/// With no process running (a `sc` from problem state always has one).
fn current_pid() -> ProcessId {
    match CURRENT.load(Ordering::Relaxed) {
        0 => panic!("a system call comes from the current process"),
        pid => ProcessId(pid),
    }
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

/// Decrementer value while the kernel runs (largest positive 32-bit).
const DEC_IDLE: u64 = 0x7fff_ffff;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Ready,
    Waiting,
}

struct Process {
    pid: ProcessId,
    /// The live parent to tell at exit (`None` once it ended).
    parent: Option<ProcessId>,
    /// The process it was forked from, for the outcome.
    forked_from: Option<ProcessId>,
    /// Boxed, so it stays put while the return from a switch to it reads
    /// it ([`TrapFrame::resume_from`]).
    frame: alloc::boxed::Box<TrapFrame>,
    /// Its address space in the VMM (fixed for its life).
    space: SpaceId,
    state: State,
    reports: Vec<u64>,
    dispatches: u64,
    live_children: u32,
    /// Ended children not yet collected by `wait`: (pid, wait value).
    /// Ended children not yet waited for: (pid, wait value, killed).
    ended_children: VecDeque<(ProcessId, u64, bool)>,
}

/// The processes: a slab, so the scheduler's hot path (the running
/// process, the ready queue) reaches one by index, with no search, plus a
/// pid index for everything else.
struct ProcTable {
    slots: Vec<Option<Process>>,
    free: Vec<usize>,
    by_pid: BTreeMap<ProcessId, usize>,
}

impl ProcTable {
    const fn new() -> Self {
        ProcTable {
            slots: Vec::new(),
            free: Vec::new(),
            by_pid: BTreeMap::new(),
        }
    }

    /// Adds `p` as `pid`; returns its slot.
    fn insert(&mut self, pid: ProcessId, p: Process) -> usize {
        let slot = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(p);
                i
            }
            None => {
                self.slots.push(Some(p));
                self.slots.len() - 1
            }
        };
        self.by_pid.insert(pid, slot);
        slot
    }

    fn slot(&self, pid: ProcessId) -> Option<usize> {
        self.by_pid.get(&pid).copied()
    }

    fn get_mut(&mut self, pid: ProcessId) -> Option<&mut Process> {
        let i = self.slot(pid)?;
        self.slots[i].as_mut()
    }

    /// The process in `slot`.
    ///
    /// # Panics
    /// If the slot is free.
    fn at(&mut self, slot: usize) -> &mut Process {
        self.slots[slot].as_mut().expect("a live process's slot")
    }

    fn remove(&mut self, pid: ProcessId) -> Option<(usize, Process)> {
        let i = self.by_pid.remove(&pid)?;
        self.free.push(i);
        self.slots[i].take().map(|p| (i, p))
    }

    fn pids(&self) -> impl Iterator<Item = ProcessId> + '_ {
        self.by_pid.keys().copied()
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut Process> {
        self.slots.iter_mut().flatten()
    }

    fn clear(&mut self) {
        self.slots.clear();
        self.free.clear();
        self.by_pid.clear();
    }
}

struct Sched {
    procs: ProcTable,
    /// Slots of the ready processes, in order.
    ready: VecDeque<usize>,
    current: Option<ProcessId>,
    /// The slot of `current` (meaningless while it is `None`).
    current_slot: usize,
    last: Option<ProcessId>,
    outcomes: Vec<Outcome>,
    kernel_msr: u64,
    quantum: u64,
    switches: u64,
    preemptions: u64,
    /// [`trap::syscall_count`] when the run started.
    syscalls_before: u64,
}

static SCHED: spin::Mutex<Sched> = spin::Mutex::new(Sched {
    procs: ProcTable::new(),
    ready: VecDeque::new(),
    current: None,
    current_slot: 0,
    last: None,
    outcomes: Vec::new(),
    kernel_msr: 0,
    quantum: 0,
    switches: 0,
    preemptions: 0,
    syscalls_before: 0,
});

/// The kernel context [`run`] saved; only `proc_call` (writing) and the
/// interrupt return into `context_resume` (reading) touch it.
static mut KERNEL_CONTEXT: KernelContext = KernelContext::new();

fn sched() -> spin::MutexGuard<'static, Sched> {
    match SCHED.try_lock() {
        Some(g) => g,
        None => panic!("proc: scheduler lock re-entered"),
    }
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
    // which is taken only with MSR[EE] = 1 (problem state here).
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
    frame.srr1 = USER_MSR;
    let mut s = sched();
    let slot = s.procs.insert(
        pid,
        Process {
            pid,
            parent: None,
            forked_from: None,
            frame: alloc::boxed::Box::new(frame),
            space,
            state: State::Ready,
            reports: Vec::new(),
            dispatches: 0,
            live_children: 0,
            ended_children: VecDeque::new(),
        },
    );
    s.ready.push_back(slot);
    CREATED.fetch_add(1, Ordering::Relaxed);
    Ok(pid)
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
    old: [(Vector, Option<TrapHandler>); 4],
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

/// Cleans up after a run a failed test abandoned: its locks, processes
/// (their address spaces go through the exit hook), handlers,
/// environment and decrementer. Called in kernel context by [`spawn`],
/// [`run`] and the harness after a failed test or expected panic; does
/// nothing after a run that ended normally.
pub fn heal() {
    if !RUNNING.swap(false, Ordering::SeqCst) {
        return;
    }
    // SAFETY: kernel context between runs, EE = 0: no handler runs, so
    // no holder of these locks is live (the harness abandoned it).
    unsafe {
        if SCHED.is_locked() {
            SCHED.force_unlock();
        }
        if INSTALLED.is_locked() {
            INSTALLED.force_unlock();
        }
    }
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
    s.ready.clear();
    s.current = None;
    CURRENT.store(0, Ordering::Relaxed);
    s.outcomes.clear();
    set_dec(DEC_IDLE);
}

fn install() -> Installed {
    let ours: [(Vector, TrapHandler); 4] = [
        (Vector::SystemCall, syscall::on_syscall),
        (Vector::Decrementer, on_decrementer),
        (Vector::Program, on_program),
        (Vector::Alignment, on_alignment),
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
/// runnable process ends or waits.
pub fn run() -> RunReport {
    run_with_quantum(default_quantum())
}

/// [`run`] with a time slice of `quantum` timebase ticks.
pub fn run_with_quantum(quantum: u64) -> RunReport {
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
        s.last = None;
        s.current = None;
    }
    let start = crate::harness::timebase();
    // SAFETY: `enter_first` enters a process and never returns; the way
    // back is an interrupt handler resuming `context_resume` with
    // KERNEL_CONTEXT, which restores this frame's callee-saved state. The
    // context is a static, so it outlives the call.
    let back = unsafe { switch::proc_call(enter_first as *const (), &raw mut KERNEL_CONTEXT) };
    let ticks = crate::harness::timebase() - start;
    set_dec(DEC_IDLE);
    RUNNING.store(false, Ordering::SeqCst);
    INSTALLED.lock().take();
    uninstall(installed);
    let mut s = sched();
    debug_assert!(back == 1 || s.ready.is_empty());
    RunReport {
        outcomes: core::mem::take(&mut s.outcomes),
        context_switches: s.switches,
        preemptions: s.preemptions,
        syscalls: trap::syscall_count() - s.syscalls_before,
        ticks,
    }
}

/// Enters the first ready process (or, with none, returns to `run`).
fn enter_first() {
    let mut frame = zeroed_frame();
    {
        let mut s = sched();
        dispatch_next(&mut s, &mut frame);
        if s.current.is_none() {
            // Nothing to run: plain return to `proc_call`.
            return;
        }
    }
    // SAFETY: the frame resumes the process's saved state (problem state,
    // translation on), boxed in its Process, which nothing removes before
    // the rfid; its address space was just made current. EE is 0 until
    // rfid.
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

/// Puts the next ready process into `frame` (address space, environment,
/// time slice), or the way back to `run` if none is ready.
fn dispatch_next(s: &mut Sched, frame: &mut TrapFrame) {
    match s.ready.pop_front() {
        Some(slot) => {
            let p = s.procs.at(slot);
            let next = p.pid;
            p.dispatches += 1;
            frame.resume_from(&p.frame);
            let space = p.space;
            mm::with_aix(|aix| {
                let vm = aix.vm_mut();
                vm.vmm_mut()
                    .switch_to(Some(space))
                    .expect("switch to a live process");
                vm.set_environment(Environment::Process(next));
            });
            if s.last != Some(next) {
                s.switches += 1;
                SWITCHES.fetch_add(1, Ordering::Relaxed);
            }
            s.last = Some(next);
            s.current = Some(next);
            s.current_slot = slot;
            CURRENT.store(next.0, Ordering::Relaxed);
            set_dec(s.quantum);
        }
        None => {
            s.current = None;
            CURRENT.store(0, Ordering::Relaxed);
            mm::with_aix(|aix| {
                let _ = aix.vm_mut().vmm_mut().switch_to(None);
                aix.vm_mut().set_environment(Environment::KernelProcess);
            });
            set_dec(DEC_IDLE);
            *frame = kernel_resume_frame(s.kernel_msr);
        }
    }
}

/// Saves the interrupted process (requeued if `requeue`) and dispatches
/// the next one.
fn switch_away(s: &mut Sched, frame: &mut TrapFrame, requeue: bool) {
    if s.current.is_some() {
        let slot = s.current_slot;
        switch::copy_frame(&mut s.procs.at(slot).frame, frame);
        if requeue {
            s.ready.push_back(slot);
        }
    }
    dispatch_next(s, frame);
}

/// Reads the agent's results from `pid`'s data segment through the
/// frames backing it (touches no user mapping, so it is safe in any
/// handler). Untouched pages read as zeroes.
fn read_results(pid: ProcessId) -> (Vec<u64>, u64) {
    let page = mm::with_aix(|aix| {
        let space = aix.vm().space_id(Space::Process(pid))?;
        let vmm = aix.vm().vmm();
        let m = vmm
            .space(space)
            .ok()?
            .get(Esid::new(user::DATA_BASE >> 28))?;
        let page = ((user::RESULTS_BASE - user::DATA_BASE) >> 12) as u32;
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

/// Ends `pid` (exit or kill): records its outcome, tears down its
/// address space through the services' exit hook and tells its parent.
fn end_process(s: &mut Sched, pid: ProcessId, exit: Exit) {
    let Some((slot, p)) = s.procs.remove(pid) else {
        return;
    };
    let (results, result_count) = read_results(pid);
    mm::with_aix(|aix| {
        if aix.vm().vmm().current() == aix.vm().space_id(Space::Process(pid)) {
            let _ = aix.vm_mut().vmm_mut().switch_to(None);
        }
        if let Err(e) = aix.exit(pid) {
            log::error!("proc: exit hook of process {} failed: {e:?}", pid.0);
        }
    });
    match exit {
        Exit::Status(_) => EXITED.fetch_add(1, Ordering::Relaxed),
        Exit::Killed(_) => KILLED_COUNT.fetch_add(1, Ordering::Relaxed),
    };
    s.ready.retain(|&r| r != slot);
    if s.current == Some(pid) {
        s.current = None;
        CURRENT.store(0, Ordering::Relaxed);
    }
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
        let parent_slot = s.procs.slot(ppid);
        if let Some(parent) = s.procs.get_mut(ppid) {
            parent.live_children -= 1;
            if parent.state == State::Waiting {
                parent.state = State::Ready;
                parent.frame.gpr[3] = value;
                parent.frame.gpr[4] = pid.0 as u64;
                parent.frame.gpr[5] = killed as u64;
                s.ready.extend(parent_slot);
            } else {
                parent.ended_children.push_back((pid, value, killed));
            }
        }
    }
    s.outcomes.push(Outcome {
        pid,
        parent: p.forked_from,
        exit,
        results,
        result_count,
        reports: p.reports,
        dispatches: p.dispatches,
    });
}

/// Kills the current process with `cause` and dispatches the next one.
fn kill_current(frame: &mut TrapFrame, cause: KillCause) {
    let mut s = sched();
    let Some(pid) = s.current else {
        panic!(
            "proc: problem-state fault with no current process: {cause:?} at SRR0 {:#x}",
            frame.srr0
        );
    };
    let report = KillReport {
        pid,
        srr0: frame.srr0,
        cause,
    };
    println!("\n{report}");
    end_process(&mut s, pid, Exit::Killed(report));
    dispatch_next(&mut s, frame);
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
        // Only problem state runs with EE = 1; a stray one is silenced.
        set_dec(DEC_IDLE);
        return;
    }
    let mut s = sched();
    s.preemptions += 1;
    PREEMPTIONS.fetch_add(1, Ordering::Relaxed);
    switch_away(&mut s, frame, true);
}
