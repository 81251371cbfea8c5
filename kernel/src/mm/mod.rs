//! The kernel's memory management: the `vmm` crate on the real machine.
//!
//! * [`PaprHpt`], [`HwSlb`], [`KernelFrames`]: the platform backends
//!   (PAPR hcalls, SLB instructions, the kernel frame allocator);
//! * [`init`]: bolts the linear map ([`linear`]), turns translation on,
//!   builds the one global [`KernelVmm`] inside the AIX services instance
//!   and wires the storage and segment interrupts to it;
//! * [`with_vmm`], [`with_aix`]: the global instance, under one lock;
//! * [`add_this_cpu`]: a secondary processor's own VMM state;
//! * [`set_user_fault_hook`]: who hears about a fault the VMM refuses in
//!   problem state (the process layer kills the process);
//! * [`stats`]: counters for the end-of-run banner.
//!
//! The kernel runs with MSR\[EE\] = 0, so the only code that can interrupt a
//! holder of the lock on its own processor is a storage fault. Code inside
//! [`with_vmm`] must not touch memory that can fault (VMM-managed
//! segments); if it does, the fault handler finds the lock held by its own
//! processor and panics with a report instead of deadlocking. (A segment
//! miss on a mapped segment is the exception: the fast path in [`hwslb`]
//! serves it without the lock, from state the manager never leaves
//! half-changed, see `vmm::slb` and `vmm::slbtable`.)
//!
//! # Every processor
//!
//! The lock is a [`CpuLock`]: it records which CPU holds it (so a fault
//! under the lock is told from another processor's hold, which is simply
//! waited for) and its waiters serve their cross-call mailbox, since the
//! holder may be shooting an SLB entry down on them.
//!
//! Each processor's part of the VMM (`vmm::vm::CpuMmu`: its SLB manager,
//! whose area its PACA names for the segment-miss fast path, the space it
//! runs, its environment) is its own. The manager acts on the one
//! installed in it, so the lock hands it over: a processor that takes the
//! lock finds its own installed, or takes the installed one out into its
//! owner's per-CPU slot and installs its own ([`lock`]). Lazily, then: the
//! state of the last holder stays installed after it releases the lock,
//! so a processor that takes the lock again and again (one processor, or
//! the one doing all the work) pays nothing. The boot processor's state
//! starts installed (`Vmm::new`); each secondary makes its own with
//! `Vmm::add_cpu` on itself ([`add_this_cpu`]).
//!
//! While a processor holds the lock every other processor's state is in
//! its slot, which only that processor touches: when the holder's SLB
//! shootdown ([`CrossCallShootdown`]) makes it apply the change to its own
//! state, from its IPI handler or from its lock-waiting loop. A slot is
//! otherwise touched only by the lock holder, moving states in and out.

pub mod cabi;
pub mod frames;
pub mod hpt;
pub mod hwslb;
pub mod linear;
pub mod papr;
pub mod probe;

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

use arch_ppc64::addr::EffectiveAddress;
use arch_ppc64::registers::dsisr::DsisrFlags;
use arch_ppc64::registers::msr::{self, Msr};
use arch_ppc64::registers::srr1::IsiFlags;
use vmm::aix::{Aix, CoreVm};
use vmm::platform::{
    FaultCause, FaultHandler, FaultOutcome, HptBackend, Interrupt, Privilege, VmFault,
};
use vmm::vm::SharedFault;
use vmm::vm::{CpuMmu, CpuSet, ShootdownRequest, Vmm};

pub use frames::KernelFrames;
pub use hpt::KernelHpt;
pub use hwslb::HwSlb;
pub use papr::PaprHpt;

use crate::bootinfo::{BootInfo, MAX_CPUS};
use crate::smp::{self, CpuLock, CpuLockGuard};
use crate::trap::{self, TrapFrame, Vector};

/// The VMM over the kernel's backends (the HPT one chosen at boot).
pub type KernelVmm = Vmm<KernelHpt, HwSlb, KernelFrames>;
/// One processor's part of [`KernelVmm`].
pub type KernelCpuMmu = CpuMmu<HwSlb>;
/// The AIX services' core over [`KernelVmm`].
pub type KernelCore = CoreVm<KernelHpt, HwSlb, KernelFrames>;
/// The AIX services instance.
pub type KernelAix = Aix<KernelCore>;

/// Called for a fault the VMM refuses in problem state. It must change
/// the frame so the return resumes something else (kill the process and
/// schedule another, or return to the kernel).
pub type UserFaultHook = fn(&mut TrapFrame, VmFault);

/// SLB entries the VMM may keep bolted (none: kernel segments of
/// `vm_galloc` are loaded on demand).
pub const VMM_BOLTED_SLB: usize = 0;

/// Most SIDs (segments and views) the AIX services may have in use; past
/// it they answer `ENOMEM` ([`CoreVm::set_sid_quota`]). Each SID costs the
/// heap about 250 bytes (its segment record and mapping: `vm_galloc` of 1
/// TB, 4096 segments and their kernel views, took 1.9 MB of the 4 MiB
/// heap), so 2048 stay near half a MiB: below
/// [`crate::proc::syscall::HEAP_RESERVE`], so that no single call, however
/// large its size argument, can take the heap from the reserve to empty.
pub const SID_QUOTA: usize = 2048;

/// What the VMM lock guards: the instance and whose processor state is
/// installed in its manager.
struct Guarded {
    aix: Option<KernelAix>,
    /// The CPU whose `CpuMmu` is installed ([`NO_CPU`]: none).
    installed: usize,
}

const NO_CPU: usize = usize::MAX;

static AIX: CpuLock<Guarded> = CpuLock::new(
    "mm: the VMM",
    Guarded {
        aix: None,
        installed: 0,
    },
);

/// One processor's VMM state while it is not installed (see the module
/// docs for who touches it when).
struct CpuSlot(UnsafeCell<Option<KernelCpuMmu>>);

// SAFETY: a slot is touched by the VMM lock's holder, or by its own
// processor while the holder waits for it (shootdown); see the module
// docs.
unsafe impl Sync for CpuSlot {}

static CPU_MMU: [CpuSlot; MAX_CPUS] = [const { CpuSlot(UnsafeCell::new(None)) }; MAX_CPUS];

/// The VMM lock's read side: processors inside the shared fault path
/// (`Vmm::resolve_shared`). A reader counts itself in, then checks that
/// no one holds the lock (else it counts itself out and waits); a writer
/// takes the lock, then waits for the count to reach zero. Both sides
/// order their store before their load (sequentially consistent), so one
/// of them always sees the other.
static READERS: AtomicU64 = AtomicU64::new(0);
/// Which processors are inside the shared fault path (a fault taken there
/// is a bug: reported, not waited for).
static READING: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// Whether missing-HPTE faults try the shared path: from the second
/// processor's arrival on (with one, the lock is never contended and the
/// exclusive path is the shorter one), on pseries (see
/// `hpt::KernelHpt`'s `SharedHptBackend`).
static SHARED_FAULTS: AtomicBool = AtomicBool::new(false);
/// Faults the shared path resolved.
static SHARED_RESOLVED: AtomicU64 = AtomicU64::new(0);

/// SLB shootdowns each CPU applied to its own state.
static SHOOTDOWNS_APPLIED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static USER_FAULT_HOOK: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());
static TRANSLATION_ON: AtomicBool = AtomicBool::new(false);

/// Boot facts for the banner and tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct MmLayout {
    /// PTEGs in the HPT.
    pub hpt_ptegs: u64,
    /// Bolted linear-map HPTEs.
    pub linear_hptes: u64,
    /// Bolted linear-map SLB entries (hardware indexes `0..n`).
    pub linear_slb_entries: usize,
    /// Hardware SLB size.
    pub slb_size: usize,
    /// Whether the linear map uses 1 TB segments.
    pub one_tb_segments: bool,
    /// The linear map as built (`None` only before [`init`]).
    pub linear: Option<linear::LinearMap>,
}

static LAYOUT: spin::Once<MmLayout> = spin::Once::new();

/// The layout [`init`] built (zeroes before).
pub fn layout() -> MmLayout {
    LAYOUT.get().copied().unwrap_or_default()
}

// Interrupt counts (the VMM counts what it resolves).
static DSI: AtomicU64 = AtomicU64::new(0);
static DSEG: AtomicU64 = AtomicU64::new(0);
static ISI: AtomicU64 = AtomicU64::new(0);
static ISEG: AtomicU64 = AtomicU64::new(0);
static USER_FAULTS: AtomicU64 = AtomicU64::new(0);
static KERNEL_FAULTS: AtomicU64 = AtomicU64::new(0);

/// Memory-management statistics for the end-of-run banner.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmStats {
    /// HPTEs the VMM inserted.
    pub hpt_inserts: u64,
    /// Of those, into the secondary PTEG.
    pub hpt_secondary_inserts: u64,
    /// HPTEs evicted to make room.
    pub hpt_evictions: u64,
    /// HPTEs the VMM removed (unmap, free, protect-by-remove).
    pub hpt_removes: u64,
    /// HPTEs the VMM holds now.
    pub hptes_in_use: u64,
    /// Segment interrupts resolved by an SLB load (by the fast path in
    /// `hwslb` or the VMM's fault handler).
    pub slb_misses: u64,
    /// Of those, the ones the fast path resolved.
    pub slb_fast_loads: u64,
    /// Storage interrupts resolved by an HPT insert.
    pub hpt_faults_resolved: u64,
    /// Pages zero-filled at first touch.
    pub zero_fills: u64,
    /// Faults the VMM refused.
    pub faults_refused: u64,
    /// Data storage interrupts (0x300) taken.
    pub dsi: u64,
    /// Data segment interrupts (0x380) taken, the fast path's included.
    pub data_segment: u64,
    /// Instruction storage interrupts (0x400) taken.
    pub isi: u64,
    /// Instruction segment interrupts (0x480) taken, the fast path's
    /// included.
    pub instruction_segment: u64,
    /// Refused faults in problem state (handed to the user-fault hook).
    pub user_faults: u64,
    /// Of the faults resolved, those resolved on the VMM lock's read side
    /// (several processors at once; only with more than one online).
    pub shared_faults: u64,
    /// Refused faults in the kernel (panics).
    pub kernel_faults: u64,
}

impl MmStats {
    /// Faults resolved (SLB loads plus HPT inserts).
    pub fn faults_resolved(&self) -> u64 {
        self.slb_misses + self.hpt_faults_resolved
    }
}

/// Current statistics. Before [`init`] only the interrupt counts are
/// non-zero.
///
/// # Panics
///
/// If called while the VMM lock is held (from inside [`with_vmm`]).
pub fn stats() -> MmStats {
    let mut s = MmStats {
        dsi: DSI.load(Ordering::Relaxed),
        data_segment: DSEG.load(Ordering::Relaxed),
        isi: ISI.load(Ordering::Relaxed),
        instruction_segment: ISEG.load(Ordering::Relaxed),
        user_faults: USER_FAULTS.load(Ordering::Relaxed),
        shared_faults: SHARED_RESOLVED.load(Ordering::Relaxed),
        kernel_faults: KERNEL_FAULTS.load(Ordering::Relaxed),
        ..MmStats::default()
    };
    if is_initialised() {
        with_vmm(|v| {
            let h = v.hpt_stats();
            let c = v.counters();
            s.hpt_inserts = h.inserts;
            s.hpt_secondary_inserts = h.secondary_inserts;
            s.hpt_evictions = h.evictions;
            s.hpt_removes = h.removes;
            s.hptes_in_use = v.hptes_in_use() as u64;
            // The segment-miss fast path counts its loads in each
            // processor's SLB area: the installed one's are in
            // `slb_misses` already, the others' are added here.
            let (mut data, mut instruction) = v.slb().fast_loads();
            let mut elsewhere = 0;
            for slot in &CPU_MMU {
                // SAFETY: the VMM lock is held, so no other processor is
                // in a shootdown that would make a slot's owner change
                // it; the counters read are atomics.
                if let Some(c) = unsafe { &*slot.0.get() } {
                    let (d, i) = c.slb().fast_loads();
                    data += d;
                    instruction += i;
                    elsewhere += d + i;
                }
            }
            s.slb_misses = c.slb_misses + elsewhere;
            s.slb_fast_loads = data + instruction;
            s.data_segment += data;
            s.instruction_segment += instruction;
            s.hpt_faults_resolved = c.hpt_faults_resolved;
            s.zero_fills = c.zero_fills;
            s.faults_refused = c.faults_refused;
        });
    }
    s
}

/// Whether [`init`] has built the global VMM.
pub fn is_initialised() -> bool {
    LAYOUT.get().is_some()
}

/// Whether the kernel runs with MSR[IR|DR] = 1.
pub fn translation_on() -> bool {
    TRANSLATION_ON.load(Ordering::SeqCst)
}

/// The VMM lock, with this processor's state installed in the manager
/// (see the module docs).
///
/// # Panics
///
/// When this processor holds it already (re-entered from a fault or
/// recursively: the holder is the interrupted code, it cannot be waited
/// for).
#[inline]
fn lock() -> CpuLockGuard<'static, Guarded> {
    let me = smp::this_cpu();
    let mut g = AIX.lock_as(me);
    if SHARED_FAULTS.load(Ordering::Relaxed) {
        wait_for_readers();
    }
    if g.installed != me {
        install_here(&mut g, me);
    }
    g
}

/// The write side, holding the lock: waits until no processor is in the
/// shared fault path (none enters while the lock is held).
#[inline]
fn wait_for_readers() {
    core::sync::atomic::fence(Ordering::SeqCst);
    if READERS.load(Ordering::SeqCst) != 0 {
        wait_for_readers_slow();
    }
}

#[cold]
#[inline(never)]
fn wait_for_readers_slow() {
    while READERS.load(Ordering::Acquire) != 0 {
        smp::poll();
        core::hint::spin_loop();
    }
}

/// Runs a missing-HPTE fault through the VMM's shared path on the read
/// side of the VMM lock (see [`READERS`]): processors fault at once, each
/// locking only the segment, PTEG pair and frames it touches.
fn shared_fault(me: usize, interrupt: Interrupt, privilege: Privilege) -> SharedFault {
    loop {
        while !AIX.is_free() {
            smp::poll();
            core::hint::spin_loop();
        }
        READERS.fetch_add(1, Ordering::SeqCst);
        if AIX.is_free() {
            break;
        }
        READERS.fetch_sub(1, Ordering::SeqCst);
    }
    READING[me].store(true, Ordering::Relaxed);
    // SAFETY: counted in with the lock free: no writer touches the data
    // until this processor counts itself out (writers wait for readers).
    let g = unsafe { &*AIX.data_unlocked() };
    let vmm = g.aix.as_ref().expect("mm::init has run").vm().vmm();
    let cpu = if g.installed == me {
        vmm.installed_cpu()
    } else {
        // SAFETY: only a writer moves processor states between slots and
        // the manager, and none runs now.
        unsafe { (*CPU_MMU[me].0.get()).as_ref() }
    }
    .unwrap_or_else(|| panic!("mm: CPU {me} has no VMM state"));
    // SAFETY: on the read side: every other use of the manager takes the
    // write side, which waits for this call; `cpu` is this processor's.
    let r = unsafe { vmm.resolve_shared(cpu, interrupt, privilege) };
    READERS.fetch_sub(1, Ordering::Release);
    READING[me].store(false, Ordering::Relaxed);
    r
}

/// Puts the installed processor state back into its owner's slot and
/// installs `me`'s.
#[cold]
#[inline(never)]
fn install_here(g: &mut Guarded, me: usize) {
    let Some(aix) = g.aix.as_mut() else {
        return;
    };
    let vmm = aix.vm_mut().vmm_mut();
    if let Some(prev) = vmm.take_cpu() {
        let i = prev.index();
        // SAFETY: the lock is held and `prev`'s processor is not in a
        // shootdown (only a holder starts one), so nothing else touches
        // its slot.
        unsafe { *CPU_MMU[i].0.get() = Some(prev) };
    }
    g.installed = NO_CPU;
    // SAFETY: as above, for this processor's own slot.
    let mine = unsafe { (*CPU_MMU[me].0.get()).take() }
        .unwrap_or_else(|| panic!("mm: CPU {me} has no VMM state (mm::add_this_cpu)"));
    if vmm.install_cpu(mine).is_err() {
        panic!("mm: a processor state was still installed");
    }
    g.installed = me;
}

/// Runs `f` on the AIX services instance (which owns the [`KernelVmm`]),
/// with this processor's state installed in the manager.
///
/// # Panics
///
/// Before [`init`], or when re-entered on the same processor (a fault or a
/// nested call while it holds the lock: the holder cannot be waited for).
pub fn with_aix<R>(f: impl FnOnce(&mut KernelAix) -> R) -> R {
    let mut g = lock();
    f(g.aix.as_mut().expect("mm::init has run"))
}

/// Runs `f` on the global VMM. Same rules as [`with_aix`].
pub fn with_vmm<R>(f: impl FnOnce(&mut KernelVmm) -> R) -> R {
    with_aix(|a| f(a.vm_mut().vmm_mut()))
}

/// Which CPU holds the VMM lock, if any.
pub fn lock_owner() -> Option<usize> {
    AIX.owner()
}

/// Releases the VMM lock after a failed test abandoned its holder on this
/// processor (a lock another processor holds is its business).
///
/// # Safety
///
/// No code of this processor may be inside [`with_aix`]/[`with_vmm`] any
/// more (the harness calls this after leaving a failed test's stack).
pub unsafe fn force_unlock() {
    // SAFETY: per the contract the holder no longer runs.
    unsafe { AIX.force_unlock_here() };
    // A panic inside the shared fault path left this processor counted.
    let me = smp::this_cpu();
    if READING[me].swap(false, Ordering::Relaxed) {
        READERS.fetch_sub(1, Ordering::Release);
    }
}

/// Makes the running secondary processor's own VMM state
/// (`Vmm::add_cpu`, which loads the bolted kernel segments into this
/// processor's SLB, hence run here) and points its PACA's segment-miss
/// area at it. Called once by each secondary as it starts, in real mode
/// (translation goes on only afterwards, so no segment miss can reach the
/// area before it is set).
///
/// # Errors
///
/// What the VMM refused, or an index the VMM gave that is not `cpu`'s
/// (the CPUs must join in index order, `smp::start::start_all`).
pub fn add_this_cpu(cpu: usize) -> Result<(), vmm::vm::VmError> {
    let map = layout().linear.expect("mm::init built the linear map");
    let size = layout().slb_size;
    let slb = HwSlb::new(size, map.slb_entries).ok_or(vmm::vm::VmError::Slb(
        vmm::slb::SlbManagerError::TooManyBolted {
            bolted: map.slb_entries,
            size,
        },
    ))?;
    let mut g = AIX.lock();
    let aix = g.aix.as_mut().expect("mm::init has run");
    let vmm = aix.vm_mut().vmm_mut();
    let state = vmm.add_cpu(slb)?;
    if state.index() != cpu {
        let i = state.index();
        vmm.remove_cpu(state);
        panic!("mm: CPU {cpu} joined the VMM as processor {i}");
    }
    trap::set_slb_miss_area(state.slb().fast_area() as u64);
    // SAFETY: the lock is held and this processor is new: nothing else
    // knows its slot yet.
    unsafe { *CPU_MMU[cpu].0.get() = Some(state) };
    // The hypervisor's table takes entries from several processors at
    // once; the kernel's own (powernv) is kept by the write side alone.
    if !crate::platform::is_powernv() {
        SHARED_FAULTS.store(true, Ordering::Relaxed);
    }
    drop(g);
    Ok(())
}

/// SLB shootdowns CPU `cpu` applied to its own state since boot.
pub fn shootdowns_applied(cpu: usize) -> u64 {
    SHOOTDOWNS_APPLIED[cpu].load(Ordering::Relaxed)
}

/// The kernel's [`vmm::vm::SlbShootdown`]: a synchronous cross-call
/// ([`smp::cross_call_set`]) to every target, which applies the request to
/// its own state ([`apply_shootdown`]). The targets answer from their IPI
/// handler (running a process, or idle in `H_CEDE`) or from the loop in
/// which they wait for a [`CpuLock`] — the VMM lock this processor holds,
/// for one.
pub struct CrossCallShootdown;

impl vmm::vm::SlbShootdown for CrossCallShootdown {
    fn shootdown(&mut self, targets: CpuSet, request: &ShootdownRequest) {
        let arg = request as *const ShootdownRequest as u64;
        if let Err(e) = smp::cross_call_set(
            targets.bits(),
            smp::Request::Run {
                f: apply_shootdown,
                arg,
            },
        ) {
            panic!(
                "mm: SLB shootdown to CPUs {:#x} failed: {e:?}",
                targets.bits()
            );
        }
    }
}

/// A shootdown's target side: `arg` is the [`ShootdownRequest`] the
/// holder of the VMM lock waits on; applied to this processor's state in
/// its slot.
fn apply_shootdown(arg: u64) -> u64 {
    let me = smp::this_cpu();
    // SAFETY: the sender passes the address of a request it keeps until
    // every target answered (it waits for this reply).
    let request = unsafe { &*(arg as *const ShootdownRequest) };
    // SAFETY: the VMM lock's holder is waiting for this answer, so it
    // does not move slots now, and this processor is not inside the lock
    // (the holder is another processor): its state is in its slot, which
    // only it touches until it answers.
    match unsafe { (*CPU_MMU[me].0.get()).as_mut() } {
        Some(state) => {
            state.apply(request);
            SHOOTDOWNS_APPLIED[me].store(
                SHOOTDOWNS_APPLIED[me].load(Ordering::Relaxed) + 1,
                Ordering::Relaxed,
            );
            0
        }
        None => panic!("mm: shootdown on CPU {me}, which has no VMM state in its slot"),
    }
}

/// Installs the hook for faults refused in problem state (without one
/// such a fault panics with the report). Returns the previous hook.
pub fn set_user_fault_hook(hook: UserFaultHook) -> Option<UserFaultHook> {
    swap_user_fault_hook(hook as *mut ())
}

/// Removes the user-fault hook (back to the panic default); returns it.
pub fn clear_user_fault_hook() -> Option<UserFaultHook> {
    swap_user_fault_hook(core::ptr::null_mut())
}

fn swap_user_fault_hook(new: *mut ()) -> Option<UserFaultHook> {
    let old = USER_FAULT_HOOK.swap(new, Ordering::SeqCst);
    if old.is_null() {
        None
    } else {
        // SAFETY: non-null values were stored from a `UserFaultHook`; fn
        // and data pointers have one representation on powerpc64.
        Some(unsafe { core::mem::transmute::<*mut (), UserFaultHook>(old) })
    }
}

/// The installed user-fault hook, if any.
pub fn user_fault_hook() -> Option<UserFaultHook> {
    let p = USER_FAULT_HOOK.load(Ordering::SeqCst);
    // SAFETY: as in `set_user_fault_hook`.
    (!p.is_null()).then(|| unsafe { core::mem::transmute::<*mut (), UserFaultHook>(p) })
}

/// Decodes a storage or segment interrupt from its frame.
pub fn interrupt_of(frame: &TrapFrame) -> Option<Interrupt> {
    Some(match frame.vector {
        0x300 => Interrupt::DataStorage {
            ea: EffectiveAddress::new(frame.dar),
            dsisr: DsisrFlags::from_dsisr(frame.dsisr),
        },
        0x380 => Interrupt::DataSegment {
            ea: EffectiveAddress::new(frame.dar),
        },
        0x400 => Interrupt::InstructionStorage {
            ea: EffectiveAddress::new(frame.srr0),
            srr1: IsiFlags::from_srr1(frame.srr1),
        },
        0x480 => Interrupt::InstructionSegment {
            ea: EffectiveAddress::new(frame.srr0),
        },
        _ => return None,
    })
}

/// Counts one more interrupt: processors count at once, and an atomic
/// add costs one instruction more than a load and a store.
#[inline]
fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The trap handler of 0x300, 0x380, 0x400 and 0x480. What the VMM
/// resolves returns at once; everything else (refusals, misuse) is in
/// out-of-line functions, so the resolved path keeps a small frame.
pub(crate) fn on_storage_interrupt(frame: &mut TrapFrame) {
    let Some(interrupt) = interrupt_of(frame) else {
        not_a_storage_interrupt(frame);
    };
    count(match frame.vector {
        0x300 => &DSI,
        0x380 => &DSEG,
        0x400 => &ISI,
        _ => &ISEG,
    });
    let problem = frame.srr1 & Msr::PR.bits() != 0;
    let privilege = if problem {
        Privilege::Problem
    } else {
        Privilege::Supervisor
    };
    if AIX.held_here() {
        fault_under_the_lock(frame, interrupt);
    }
    if SHARED_FAULTS.load(Ordering::Relaxed) && interrupt.cause() == FaultCause::NoPte {
        let me = smp::this_cpu();
        if READING[me].load(Ordering::Relaxed) {
            fault_under_the_lock(frame, interrupt);
        }
        match shared_fault(me, interrupt, privilege) {
            SharedFault::Resolved => {
                count(&SHARED_RESOLVED);
                return;
            }
            SharedFault::Refused(reason) => {
                let fault = VmFault {
                    ea: interrupt.ea(),
                    access: interrupt.access(),
                    reason,
                };
                return refused(frame, fault, problem);
            }
            SharedFault::Exclusive => {}
        }
    }
    let outcome = {
        let mut guard = lock();
        match guard.aix.as_mut() {
            Some(aix) => aix.vm_mut().vmm_mut().handle(interrupt, privilege),
            None => panic!("mm: fault before mm::init"),
        }
    };
    if let FaultOutcome::Fault(fault) = outcome {
        refused(frame, fault, problem);
    }
}

#[cold]
#[inline(never)]
fn not_a_storage_interrupt(frame: &TrapFrame) -> ! {
    panic!("mm: vector {:#x} is not a storage interrupt", frame.vector);
}

#[cold]
#[inline(never)]
fn fault_under_the_lock(frame: &TrapFrame, interrupt: Interrupt) -> ! {
    panic!(
        "mm: fault at {:#x} (vector {:#x}, SRR0 {:#x}) while the VMM lock is held",
        interrupt.ea().as_u64(),
        frame.vector,
        frame.srr0
    );
}

/// A fault the VMM refused: the user-fault hook's in problem state (if
/// one is installed), else a panic with the report.
#[cold]
#[inline(never)]
fn refused(frame: &mut TrapFrame, fault: VmFault, problem: bool) {
    if problem {
        count(&USER_FAULTS);
        if let Some(hook) = user_fault_hook() {
            hook(frame, fault);
            return;
        }
    } else {
        if probe::fixup(frame, fault.reason) {
            return;
        }
        count(&KERNEL_FAULTS);
    }
    panic!(
        "{} fault at {:#x}: {:?} access, {:?} (vector {:#x}, SRR0 {:#x}, SRR1 {:#x}, DSISR {:#x})",
        if problem { "unhandled user" } else { "kernel" },
        fault.ea.as_u64(),
        fault.access,
        fault.reason,
        frame.vector,
        frame.srr0,
        frame.srr1,
        frame.dsisr
    );
}

/// Builds the linear map, turns translation on, builds the global VMM and
/// AIX services over the pseries backends and hooks the storage and
/// segment interrupts to it. Runs once, after the heap exists.
///
/// # Panics
///
/// If the device tree lacks `ibm,pft-size`/`ibm,slb-size` or holds values
/// the VMM cannot use, or the hypervisor refuses the linear map.
pub fn init(info: &BootInfo) {
    let slb_size = info.cpu.slb_size.expect("ibm,slb-size") as usize;
    let (shift, mut hpt) = if crate::platform::is_powernv() {
        native_hpt(info)
    } else {
        let shift = info.cpu.pft_size.map(|(_, s)| s).expect("ibm,pft-size");
        let hpt = PaprHpt::new(shift).expect("ibm,pft-size within 18..=46");
        track_entered_groups(&hpt);
        (shift, KernelHpt::Papr(hpt))
    };
    let map = linear::build(info, &mut hpt);

    // SAFETY: translation is still off (nothing needs an SLB entry).
    unsafe { map.load_slb() };
    let slb = HwSlb::new(slb_size, map.slb_entries).expect("SLB larger than the linear map");
    let vmm = Vmm::new(
        hpt,
        slb,
        KernelFrames::new(info.cpu.dcache_block_size),
        VMM_BOLTED_SLB,
    )
    .unwrap_or_else(|e| panic!("building the VMM: {e}"));
    // The segment-miss vectors use the VMM's SLB area from the first
    // segment interrupt on, which needs translation: publish it first.
    trap::set_slb_miss_area(vmm.slb().fast_area() as u64);
    // SAFETY: every linear-map segment is loaded (above) before IR|DR go
    // on, and the kernel's code, data, stacks and heap all lie in RAM,
    // which the bolted HPTEs just inserted map at the addresses the
    // kernel uses.
    unsafe { msr::write(msr::read() | Msr::RELOCATE) };
    TRANSLATION_ON.store(true, Ordering::SeqCst);
    trap::set_handler_translation(true);

    let mut vmm = vmm;
    vmm.set_shootdown(alloc::boxed::Box::new(CrossCallShootdown));
    let mut core = CoreVm::new(vmm);
    core.set_sid_quota(Some(SID_QUOTA));
    {
        let mut g = AIX.lock();
        g.aix = Some(Aix::new(core));
        // `Vmm::new` installed processor 0's state: the boot processor's.
        g.installed = 0;
    }
    cabi::install();
    let layout = MmLayout {
        hpt_ptegs: 1 << (shift - 7),
        linear_hptes: map.hptes,
        linear_slb_entries: map.slb_entries,
        slb_size,
        one_tb_segments: map.ssize == arch_ppc64::structures::SegmentSize::T1,
        linear: Some(map),
    };
    LAYOUT.call_once(|| layout);
    for v in [
        Vector::DataStorage,
        Vector::DataSegment,
        Vector::InstructionStorage,
        Vector::InstructionSegment,
    ] {
        trap::set_handler(v, Some(on_storage_interrupt));
    }
    let slots = layout.hpt_ptegs * 8;
    log::info!(
        "mm: translation on (MSR IR|DR); linear map {} MiB at {:#x}: {} bolted {} HPTEs ({} secondary), {} bolted {} SLB entr{}",
        map.ram_top >> 20,
        crate::bootinfo::KERNEL_VIRT_BASE,
        map.hptes,
        map.psize,
        map.secondary,
        map.slb_entries,
        if layout.one_tb_segments { "1T" } else { "256M" },
        if map.slb_entries == 1 { "y" } else { "ies" }
    );
    log::info!(
        "mm: HPT 2^{} bytes = {} PTEGs, {}.{:02}% full; SLB {} entries ({} for the VMM)",
        shift,
        layout.hpt_ptegs,
        map.hptes * 100 / slots,
        map.hptes * 10000 / slots % 100,
        slb_size,
        slb_size - map.slb_entries
    );
}

/// The kernel's own HPT (powernv): 2^shift bytes for the RAM
/// (`hpt_shift_for_ram`, about 1/128 of it) from frames aligned to the
/// size, zeroed, in the layout the processor reads, and named to the MMU
/// (SDR1 or partition table + PTCR). Translation is still off.
fn native_hpt(info: &BootInfo) -> (u32, KernelHpt) {
    use arch_ppc64::structures::partition::hpt_shift_for_ram;
    use vmm::platform::FRAME_SIZE;
    let shift = hpt_shift_for_ram(info.ram_size());
    let bytes = 1u64 << shift;
    let (table, patb) = crate::frame::with(|fa| {
        let t = fa.allocate_contiguous(bytes.div_ceil(FRAME_SIZE), bytes);
        let p = fa.allocate_contiguous(1, FRAME_SIZE);
        t.zip(p)
    })
    .unwrap_or_else(|| panic!("mm: no {bytes:#x} bytes for the HPT"));
    let base = table.start_address();
    let ptr = crate::bootinfo::real_to_virt(base) as *mut u8;
    let pt = crate::bootinfo::real_to_virt(patb.start_address()) as *mut u8;
    let pvr = info.cpu.pvr;
    let format = if crate::platform::powernv::isa300(pvr) {
        vmm::native::HpteFormat::Isa300
    } else {
        vmm::native::HpteFormat::Pre300
    };
    // SAFETY: both allocations are ours for the rest of the run (never
    // freed) and reached at their kernel address in real mode; zeroed
    // first, so the MMU sees an empty table from the moment it is named.
    let memory = unsafe {
        core::ptr::write_bytes(ptr, 0, bytes as usize);
        core::ptr::write_bytes(pt, 0, FRAME_SIZE as usize);
        crate::platform::powernv::install_hpt(base, shift, patb.start_address(), pvr);
        hpt::HptMemory::new(ptr, bytes as usize)
    };
    log::info!(
        "mm: kernel-owned HPT of 2^{shift} bytes at {base:#x} ({format:?} entries, {})",
        if format == vmm::native::HpteFormat::Isa300 {
            "partition table + PTCR"
        } else {
            "SDR1"
        }
    );
    (shift, KernelHpt::native(memory, format))
}

/// Gives [`PaprHpt::track_entered_groups`] a bitmap of one bit per PTEG
/// in frames of its own (128 KiB at 16 GiB of RAM: the table is RAM/128,
/// one bit per 128-byte PTEG). Without the frames, reads simply always
/// ask the hypervisor.
fn track_entered_groups(hpt: &PaprHpt) {
    let words = hpt.pteg_count().div_ceil(64);
    let frames = (words * 8).div_ceil(vmm::platform::FRAME_SIZE);
    let Some(f) =
        crate::frame::with(|fa| fa.allocate_contiguous(frames, vmm::platform::FRAME_SIZE))
    else {
        log::warn!("mm: no {frames} frames for the entered-PTEG bitmap; every HPT read asks the hypervisor");
        return;
    };
    let ptr = crate::bootinfo::real_to_virt(f.start_address()) as *mut AtomicU64;
    // SAFETY: the frames are ours for the rest of the run (never freed),
    // reachable at their kernel address in real mode and through the
    // linear map; they are zeroed before the slice is made.
    let bitmap = unsafe {
        core::ptr::write_bytes(ptr, 0, words as usize);
        core::slice::from_raw_parts(ptr, words as usize)
    };
    assert!(
        hpt.track_entered_groups(bitmap),
        "mm: the HPT is not as the hypervisor made it before the first H_ENTER"
    );
}

/// Prints the end-of-run memory statistics (before the harness's result
/// line).
pub fn print_summary() {
    let s = stats();
    println!(
        "mm stats: HPT inserts {} ({} secondary), evictions {}, removes {}, in use {}; SLB misses {} ({} by the fast path); faults resolved {}, refused {} (user {}, kernel {}); zero-fills {}",
        s.hpt_inserts,
        s.hpt_secondary_inserts,
        s.hpt_evictions,
        s.hpt_removes,
        s.hptes_in_use,
        s.slb_misses,
        s.slb_fast_loads,
        s.faults_resolved(),
        s.faults_refused,
        s.user_faults,
        s.kernel_faults,
        s.zero_fills
    );
    println!(
        "mm interrupts: DSI {}, data segment {}, ISI {}, instruction segment {}",
        s.dsi, s.data_segment, s.isi, s.instruction_segment
    );
    if crate::platform::is_powernv() && is_initialised() {
        println!(
            "mm tlbie: {} issued for the kernel's own table",
            with_vmm(|v| v.hpt_backend().tlbies())
        );
    }
}
