//! Synchronous cross-calls: one processor asks others to do a [`Request`]
//! and waits until every one of them has done it.
//!
//! Each processor has one call slot (its request, a count of targets
//! still to answer, one reply per target) and one mailbox word per target
//! processor (bit `s` set: source `s` has a call for it). A caller writes
//! its slot, sets its bit in each target's mailbox (release) and sends
//! each an IPI (`H_IPI`). A target takes the external interrupt, accepts
//! it (`H_XIRR`), withdraws its own IPI and ends the interrupt (`H_IPI`
//! 0xff, `H_EOI`), then empties its mailbox (acquire) and for each source
//! bit does the request, stores its reply and decrements the source's
//! count (release) — its last access to that slot. The caller returns
//! once the count is 0. Acknowledging before serving means a request
//! posted while the target serves raises a new interrupt rather than
//! being missed; two IPIs that meet are one interrupt that serves both.
//!
//! A caller serves its own mailbox while it waits, so processors that
//! cross-call each other at the same moment (or a cross-call function
//! that cross-calls its caller) make progress; the boot processor, which
//! runs the kernel with EE = 0, answers only that way or when it runs a
//! process. One call per processor at a time: a handler that interrupts a
//! waiting caller on the same processor and cross-calls again gets
//! [`CrossCallError::Busy`]. A target that does not answer within
//! [`WATCHDOG_SECONDS`] of timebase is a dead processor: the caller
//! reports it and ends the run (its slot may still be read, so it cannot
//! return).
//!
//! Requests run in the target's interrupt handler, or in the loop in
//! which it waits for a [`super::CpuLock`] or for a cross-call of its own:
//! EE = 0, translation on. The target may hold locks at that moment
//! (others than the one it waits for), so a request takes no lock and
//! uses no floating point. The VMM's SLB shootdown
//! (`crate::mm::CrossCallShootdown`) is a [`Request::Run`] that touches
//! only the target's own VMM state.

use core::cell::UnsafeCell;
use core::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};

use arch_ppc64::addr::{EffectiveAddress, Esid, Vsid};
use arch_ppc64::instructions::{barrier, slb};
use arch_ppc64::registers::spr::timebase;
use arch_ppc64::structures::slb::{SlbEntry, SlbFlags};
use arch_ppc64::structures::{PageSize, SegmentSize};

use super::{count, online_mask, server_of, this_cpu, xics, CPUS, MAX_CPUS};
use crate::mm;
use crate::trap::{self, TrapFrame, Vector};

/// How long a caller waits for its targets before it declares one dead.
pub const WATCHDOG_SECONDS: u64 = 10;

/// What a cross-call asks a processor to do.
#[derive(Clone, Copy, Debug)]
pub enum Request {
    /// Note that it should reschedule ([`super::take_reschedule`] says so
    /// once); replies 0.
    Reschedule,
    /// Run `f(arg)` there; the reply is its result.
    Run {
        /// The function (interrupt context: see the module docs).
        f: fn(u64) -> u64,
        /// Its argument.
        arg: u64,
    },
    /// `slbie` each segment of the list, then `isync`; replies 0.
    SlbInvalidate(SlbInvalidateList),
    /// Invalidate every SLB entry above the linear map's bolted ones
    /// (`slbia` when the linear map is entry 0 alone); replies 0.
    SlbInvalidateNonBolted,
}

/// Segments to drop from other processors' SLBs: at most
/// [`SlbInvalidateList::MAX`], none of the linear map (whose loss would take
/// the kernel's own code and stacks away on the target); past the limit
/// ask for [`Request::SlbInvalidateNonBolted`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlbInvalidateList {
    /// `slbie` operands (ESID, B; class 0, as the VMM loads its entries).
    operands: [u64; SlbInvalidateList::MAX],
    len: usize,
}

/// Why a segment cannot join an [`SlbInvalidateList`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShootdownError {
    /// The list already has [`SlbInvalidateList::MAX`] segments.
    Full,
    /// The segment overlaps the kernel's linear map.
    LinearMap(EffectiveAddress),
}

impl SlbInvalidateList {
    /// Most segments one request carries.
    pub const MAX: usize = 8;

    /// An empty list.
    pub const fn new() -> Self {
        SlbInvalidateList {
            operands: [0; Self::MAX],
            len: 0,
        }
    }

    /// Adds the segment of size `ssize` holding `ea`.
    pub fn push(&mut self, ea: EffectiveAddress, ssize: SegmentSize) -> Result<(), ShootdownError> {
        let base = ea.as_u64() & !ssize.offset_mask();
        let entry = SlbEntry::new(
            Esid::new(base >> 28),
            Vsid::new(0),
            ssize,
            PageSize::K4,
            SlbFlags::empty(),
        )
        .expect("a segment-aligned ESID and VSID 0 make an entry");
        if overlaps_linear_map(entry) {
            return Err(ShootdownError::LinearMap(ea));
        }
        if self.len == Self::MAX {
            return Err(ShootdownError::Full);
        }
        self.operands[self.len] = slb::slbie_operand(entry);
        self.len += 1;
        Ok(())
    }

    /// Number of segments.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Whether `e`'s segment and a linear-map segment share an address.
fn overlaps_linear_map(e: SlbEntry) -> bool {
    let Some(map) = mm::layout().linear else {
        return false;
    };
    (0..map.slb_entries).any(|n| {
        let l = map.slb_entry(n);
        l.matches(e.esid().base()) || e.matches(l.esid().base())
    })
}

/// Why a cross-call was refused (nothing was sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrossCallError {
    /// No such CPU index.
    NoSuchCpu(usize),
    /// The CPU is not online.
    Offline(usize),
    /// This processor's slot is in use by a call it is waiting for (a
    /// handler that interrupted the caller cross-called again).
    Busy,
}

/// The replies of a call to several processors: `Some` for each target.
pub type Replies = [Option<u64>; MAX_CPUS];

/// One processor's outgoing call.
struct CallSlot {
    /// A call is in progress.
    busy: AtomicBool,
    /// The request: written by its owner only while no target reads it
    /// (before the mailbox bits are set, after the count reached 0).
    request: UnsafeCell<Request>,
    /// Targets that have not answered yet.
    remaining: AtomicU32,
    /// Reply of each target.
    replies: [AtomicU64; MAX_CPUS],
}

// SAFETY: `request` is written only by the slot's owner while `busy` is
// set and no mailbox bit names the slot (no target reads it), and read by
// targets only between their acquire of the mailbox bit and their release
// decrement of `remaining`; everything else is atomic.
unsafe impl Sync for CallSlot {}

static SLOTS: [CallSlot; MAX_CPUS] = [const {
    CallSlot {
        busy: AtomicBool::new(false),
        request: UnsafeCell::new(Request::Reschedule),
        remaining: AtomicU32::new(0),
        replies: [const { AtomicU64::new(0) }; MAX_CPUS],
    }
}; MAX_CPUS];

/// Per target: bit `s` set while source `s` has a call for it.
static MAILBOX: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Makes `target` do `request` and returns its reply once it has. A call
/// to the running processor runs `request` here, directly.
pub fn cross_call(target: usize, request: Request) -> Result<u64, CrossCallError> {
    if target >= MAX_CPUS {
        return Err(CrossCallError::NoSuchCpu(target));
    }
    if online_mask() & (1 << target) == 0 {
        return Err(CrossCallError::Offline(target));
    }
    if target == this_cpu() {
        return Ok(execute(request));
    }
    let replies = call(1 << target, request)?;
    Ok(replies[target].expect("the target replied"))
}

/// Makes every other online processor do `request`; returns once all
/// have, with their replies. The running processor's own SLB is left to
/// its caller (for the VMM, through its SLB manager, which keeps track of
/// what it loaded).
pub fn cross_call_all_others(request: Request) -> Result<Replies, CrossCallError> {
    call(online_mask() & !(1 << this_cpu()), request)
}

/// Makes every CPU of `targets` do `request` and returns once all have,
/// with their replies; the running processor, if in the set, does it
/// first, here. Unlike [`cross_call`] the targets need not be marked
/// online yet, only started: a processor that has just joined the VMM
/// ([`crate::mm::add_this_cpu`]) answers once it sets its CPPR, a few
/// instructions later, and the VMM may already shoot an entry down on it.
pub fn cross_call_set(targets: u64, request: Request) -> Result<Replies, CrossCallError> {
    let me = this_cpu();
    if targets >> MAX_CPUS != 0 {
        return Err(CrossCallError::NoSuchCpu(
            (targets >> MAX_CPUS).trailing_zeros() as usize + MAX_CPUS,
        ));
    }
    if let Some(bad) = cpus_of(targets & !super::started_mask()).next() {
        return Err(CrossCallError::Offline(bad));
    }
    let mut local = None;
    if targets & (1 << me) != 0 {
        local = Some(execute(request));
    }
    let mut replies = call(targets & !(1 << me), request)?;
    if local.is_some() {
        replies[me] = local;
    }
    Ok(replies)
}

/// Serves the running processor's mailbox: what a processor waiting for a
/// lock whose holder may be waiting for it must do between attempts.
pub fn poll() {
    serve(this_cpu());
}

/// Sends `request` to every CPU of `targets` (the caller not among them)
/// and waits for all.
fn call(targets: u64, request: Request) -> Result<Replies, CrossCallError> {
    let me = this_cpu();
    let slot = &SLOTS[me];
    if slot.busy.swap(true, Ordering::Acquire) {
        return Err(CrossCallError::Busy);
    }
    let mut replies: Replies = [None; MAX_CPUS];
    if targets == 0 {
        slot.busy.store(false, Ordering::Release);
        return Ok(replies);
    }
    // SAFETY: this processor owns the slot (`busy`), and no mailbox bit
    // names it, so no target reads the request now.
    unsafe { slot.request.get().write(request) };
    slot.remaining
        .store(targets.count_ones(), Ordering::Relaxed);
    for t in cpus_of(targets) {
        MAILBOX[t].fetch_or(1 << me, Ordering::Release);
    }
    // The mailbox stores are visible before any target takes its IPI.
    fence(Ordering::SeqCst);
    for t in cpus_of(targets) {
        if let Err(e) = xics::send_ipi(server_of(t)) {
            panic!("cross-call: H_IPI to CPU {t} failed: {e}");
        }
    }
    let hz = crate::bootinfo::get()
        .cpu
        .timebase_frequency
        .map_or(512_000_000, u64::from);
    let t0 = timebase();
    while slot.remaining.load(Ordering::Acquire) != 0 {
        serve(me);
        if timebase() - t0 > WATCHDOG_SECONDS * hz {
            dead_target(me, targets);
        }
        super::relax();
    }
    for t in cpus_of(targets) {
        replies[t] = Some(slot.replies[t].load(Ordering::Relaxed));
    }
    slot.busy.store(false, Ordering::Release);
    Ok(replies)
}

/// The CPUs of `mask`.
fn cpus_of(mask: u64) -> impl Iterator<Item = usize> {
    (0..MAX_CPUS).filter(move |c| mask & (1 << c) != 0)
}

#[cold]
fn dead_target(me: usize, targets: u64) -> ! {
    let waiting: u64 = cpus_of(targets)
        .filter(|&t| MAILBOX[t].load(Ordering::Relaxed) & (1 << me) != 0)
        .fold(0, |m, t| m | 1 << t);
    crate::console::print_fmt_unlocked(format_args!(
        "\ncross-call from CPU {me} to CPUs {targets:#x}: no answer within {WATCHDOG_SECONDS} s \
         (still unread by {waiting:#x}; {} of them left)\n",
        SLOTS[me].remaining.load(Ordering::Relaxed)
    ));
    crate::platform::exit(false, "cross-call: a processor does not answer")
}

/// Does what the running processor's mailbox holds.
fn serve(me: usize) {
    if MAILBOX[me].load(Ordering::Relaxed) == 0 {
        return;
    }
    let sources = MAILBOX[me].swap(0, Ordering::Acquire);
    for s in cpus_of(sources) {
        let slot = &SLOTS[s];
        // SAFETY: source `s` set our bit after writing the request
        // (release, acquired by the swap) and does not write it again
        // until our decrement below.
        let request = unsafe { slot.request.get().read() };
        let reply = execute(request);
        slot.replies[me].store(reply, Ordering::Relaxed);
        count(&CPUS[me].served);
        slot.remaining.fetch_sub(1, Ordering::Release);
    }
}

/// Does `request` on the running processor; its reply.
fn execute(request: Request) -> u64 {
    match request {
        Request::Reschedule => {
            CPUS[this_cpu()].reschedule.store(true, Ordering::Release);
            0
        }
        Request::Run { f, arg } => f(arg),
        Request::SlbInvalidate(list) => {
            for &op in &list.operands[..list.len] {
                // SAFETY: `SlbInvalidateList::push` refused every segment of
                // the linear map, so the code, stacks and data in use
                // keep their entries.
                unsafe { slb::slbie(op) };
            }
            barrier::isync();
            0
        }
        Request::SlbInvalidateNonBolted => {
            let l = mm::layout();
            crate::mm::hwslb::invalidate_from(l.linear_slb_entries, l.slb_size);
            0
        }
    }
}

/// Turns on the boot processor's side of IPIs, when there are other
/// processors: CPPR 0xff and the external interrupt handler (taken when it
/// runs a process; while it waits for a cross-call it polls).
pub(super) fn accept_ipis_on_boot_processor() {
    trap::set_handler(Vector::External, Some(on_external));
    trap::set_handler(Vector::HypervisorDoorbell, Some(on_doorbell));
    if let Err(e) = xics::set_cppr(xics::LEAST_FAVORED) {
        log::warn!("smp: H_CPPR on the boot processor failed: {e}; it takes no IPIs");
    }
}

/// The external interrupt (0x500) on any processor: accept, and for an
/// IPI withdraw it, end it and serve the mailbox.
pub fn on_external(frame: &mut TrapFrame) {
    if crate::platform::is_powernv() {
        // The IPI of powernv: a handler installed for both vectors (the
        // scheduler's) calls this for either.
        return on_doorbell(frame);
    }
    let me = this_cpu();
    let xirr = match xics::accept() {
        Ok(x) => x,
        Err(e) => panic!("CPU {me}: H_XIRR failed: {e}"),
    };
    match xirr & xics::XISR_MASK {
        0 => count(&CPUS[me].other_external),
        xics::IPI_SOURCE => {
            let acked = xics::clear_ipi(server_of(me)).and_then(|()| xics::eoi(xirr));
            if let Err(e) = acked {
                panic!("CPU {me}: acknowledging an IPI failed: {e}");
            }
            count(&CPUS[me].ipis);
        }
        _ => {
            // No device interrupt is enabled; end it so the CPPR comes
            // back.
            let _ = xics::eoi(xirr);
            count(&CPUS[me].other_external);
        }
    }
    serve(me);
}

/// The hypervisor doorbell (0xe80, powernv's IPI) on any processor:
/// acknowledge it and serve the mailbox.
pub fn on_doorbell(_frame: &mut TrapFrame) {
    let me = this_cpu();
    crate::platform::powernv::clear_doorbell();
    count(&CPUS[me].ipis);
    serve(me);
}
