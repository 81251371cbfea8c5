//! System calls (`sc`, vector 0xc00) and the AIX services called on a
//! process's behalf.
//!
//! ABI: r0 = number (the constants below), r3..r8 = arguments, r3 =
//! result; `wait` also sets r4 and r5. The AIX services answer their value on
//! success and `-errno` on failure, so a result `r` is an error iff
//! `r >= -4095 as u64` ([`is_error`]); kernel addresses (0xF1.., 0xF2..)
//! are far below that. Unknown numbers answer `-ENOSYS` (-38). Every
//! other register is preserved. `sc` from supervisor state is not a
//! system call here (it would be a kernel bug): it panics.
//!
//! Two paths ([`crate::trap`]): the calls that neither switch nor block
//! nor end the process run from the [`FAST`] table with only the
//! volatile registers saved, reading the running pid from an atomic; the
//! others (`exit`, `fork`, `yield`, a `wait` that must block, numbers
//! beyond the table) get the full frame in [`on_syscall`], the only code
//! here that takes the scheduler lock for more than one process's
//! bookkeeping.
//!
//! This is a test kernel's system call surface, not a full security
//! boundary: [`VM_HANDLE`] builds a handle for any vmid (even one the
//! caller did not create) and [`VM_ATT_RW`] lets a process have the kernel
//! read and write any segment the kernel itself may access. What the
//! kernel does check is that a call cannot crash it: [`VM_ATT_RW`]
//! validates the segment, offset and key before touching memory and
//! answers `-errno` otherwise, and calls that would make the kernel keep
//! more bookkeeping are refused while its heap is low ([`HEAP_RESERVE`]).
//! And one process cannot reach another's
//! private memory: a handle naming a segment another process owns (its
//! text, data or stack) is refused with `-EINVAL` by every call that
//! would attach it or access through it ([`VM_ATT`], [`VM_ATT_RW`],
//! [`AS_ATT`], [`AS_ATT64`], [`AS_SETH64`]), as if no such segment
//! existed; the AIX services themselves, which trust their kernel
//! callers, would attach it.
//!
//! The services run in the process environment
//! (`Environment::Process(pid)`, what the scheduler set when it
//! dispatched the process); [`IN_INTERRUPT`] runs one in the interrupt
//! environment instead, to check the services refuse it.

use core::ffi::c_int;
use core::sync::atomic::Ordering;

use vmm::aix::{Errno, Service, Space, VmHandle};
use vmm::platform::{Environment, ProcessId};

use super::{sched, switch_away, Exit};
use crate::mm;
use crate::trap::{SyscallExit, SyscallHandler, TrapFrame};

/// `exit(status)`: ends the process.
pub const EXIT: u64 = 0;
/// `getpid()`.
pub const GETPID: u64 = 1;
/// `fork()`: 0 in the child, the child's pid in the parent; if the VMM
/// refuses the copy, `-errno` as [`vmm::aix::ProcessError::errno`] maps it
/// (`-ENOMEM` when it ran out of memory); `-ENOMEM` while the heap is low
/// ([`HEAP_RESERVE`]).
pub const FORK: u64 = 2;
/// `wait()`: r3 = an ended child's status (or [`super::KILLED`] | code),
/// r4 = its pid, r5 = 1 if the kernel killed it, 0 if it called `exit`
/// (a child may exit with a status that looks like `KILLED | code`);
/// `-ECHILD` (-10) with no children. Blocks (schedules others) while
/// children live but none has ended.
pub const WAIT: u64 = 3;
/// `yield()`: lets the next ready process run.
pub const YIELD: u64 = 4;
/// `report(value)`: appends `value` to the process's reports (`-ENOMEM`
/// while the heap is low, see [`HEAP_RESERVE`]).
pub const REPORT: u64 = 5;
/// `kread(kaddr)`: the kernel loads the doubleword at `kaddr`, which must
/// lie in a live `vm_galloc` allocation (else `-EINVAL`; `-EFAULT` if
/// another processor freed it between the check and the load).
pub const KREAD: u64 = 6;
/// `kwrite(kaddr, value)`: the kernel stores `value` at `kaddr` (same
/// rule as [`KREAD`]).
pub const KWRITE: u64 = 7;
/// `in_interrupt(nr, a1..a5)`: service call `nr` with the VMM's
/// environment set to `Interrupt` for its duration.
pub const IN_INTERRUPT: u64 = 8;
/// `vm_galloc(type, size)` → kernel address.
pub const VM_GALLOC: u64 = Service::VmGalloc.number();
/// `vm_gfree(addr, size)`.
pub const VM_GFREE: u64 = Service::VmGfree.number();
/// `vm_guatt(kaddr, size, key, flags)` → user address.
pub const VM_GUATT: u64 = Service::VmGuatt.number();
/// `vm_gudet(kaddr, uaddr, size, flags)`.
pub const VM_GUDET: u64 = Service::VmGudet.number();
/// `vm_att(handle, offset)` → kernel address (supervisor-only).
pub const VM_ATT: u64 = Service::VmAtt.number();
/// `vm_det(eaddr)`.
pub const VM_DET: u64 = Service::VmDet.number();
/// `vm_att_rw(handle, offset, value)`: `vm_att`, the kernel stores
/// `value` at the address and loads it back, `vm_det`; answers the value
/// loaded. Checked first (nothing touched, slot detached): `-EINVAL` for
/// an offset beyond the segment's size or not a multiple of 8, `-EFAULT`
/// when the handle's key gives the kernel no read-write access.
pub const VM_ATT_RW: u64 = 22;
/// `vm_handle(vmid, key)` → handle.
pub const VM_HANDLE: u64 = Service::VmHandle.number();
/// `getadsp()`: 0 when the process has an `adspace_t`; answers its
/// allocation mask.
pub const GETADSP: u64 = Service::Getadsp.number();
/// `as_att(handle, offset)` on `getadsp()` → address.
pub const AS_ATT: u64 = Service::AsAtt.number();
/// `as_det(eaddr)` on `getadsp()`.
pub const AS_DET: u64 = Service::AsDet.number();
/// `as_geth(eaddr)` on `getadsp()` → handle (a hold).
pub const AS_GETH: u64 = Service::AsGeth.number();
/// `as_puth(handle)` on `getadsp()`.
pub const AS_PUTH: u64 = Service::AsPuth.number();
/// `as_getsrval(eaddr)` on `getadsp()` → handle.
pub const AS_GETSRVAL: u64 = Service::AsGetsrval.number();
/// `as_att64(handle, offset)` → address.
pub const AS_ATT64: u64 = Service::AsAtt64.number();
/// `as_det64(addr)`.
pub const AS_DET64: u64 = Service::AsDet64.number();
/// `as_seth64(addr, handle)`.
pub const AS_SETH64: u64 = Service::AsSeth64.number();
/// `as_geth64(addr)` → handle (a hold).
pub const AS_GETH64: u64 = Service::AsGeth64.number();
/// `as_puth64(addr, handle)`.
pub const AS_PUTH64: u64 = Service::AsPuth64.number();
/// `as_getsrval64(addr)` → handle.
pub const AS_GETSRVAL64: u64 = Service::AsGetsrval64.number();
/// `vms_create(type, size)` → vmid.
pub const VMS_CREATE: u64 = Service::VmsCreate.number();
/// `vms_delete(vmid)`.
pub const VMS_DELETE: u64 = Service::VmsDelete.number();

// The thread calls and vm_check take numbers beyond the fast table:
// they go to the full path, which creating and ending threads needs.
/// `thread_create(first)`: a new thread in the caller's address space,
/// with its own registers, stack, variables and results
/// ([`crate::user::thread_vars_base`] ...), that runs the script from
/// command `first`; answers its index (1 and up), or `-EAGAIN` once the
/// process has made [`crate::user::THREADS_MAX`] threads. It is ready at
/// once (an idle processor is asked to take it).
pub const THREAD_CREATE: u64 = 68;
/// `thread_exit(status)`: ends the calling thread. The process ends when
/// its last thread has (with `status` if it was the last and nothing ended
/// the process before); `exit` ends every thread at once.
pub const THREAD_EXIT: u64 = 69;
/// `vm_check()`: the kernel checks the VMM's invariants
/// (`Vmm::check_invariants`: one HPTE per page, every HPTE recorded and
/// current, the SLB and its tables as the mappings say; a scan of the
/// whole HPT, for tests) while the caller's threads may run on other
/// processors; 0 when they hold, else `-EFAULT` (the broken one is
/// logged).
pub const VM_CHECK: u64 = 70;
/// `getcpu()`: the index of the processor the caller runs on (it may run
/// on another by the time it looks).
pub const GETCPU: u64 = 71;

/// Free kernel heap below which the calls that make the kernel keep more
/// bookkeeping — new segments, views, mappings, processes, reports:
/// `fork`, `report`, `vm_galloc`, `vm_guatt`, `as_att`, `as_att64`,
/// `as_seth64`, `vms_create` — answer `-ENOMEM` before doing anything.
/// The heap is fixed and an allocation that fails panics the kernel, so a
/// process must not be able to use it up, one call or a loop of them. One
/// call grows the heap by less than this (segments and views are capped by
/// [`crate::mm::SID_QUOTA`]); calls that release memory are never refused.
pub const HEAP_RESERVE: usize = 1 << 20;

/// Whether `nr` makes the kernel keep more bookkeeping (see
/// [`HEAP_RESERVE`]).
fn grows_bookkeeping(nr: u64) -> bool {
    matches!(
        nr,
        FORK | THREAD_CREATE
            | REPORT
            | VM_GALLOC
            | VM_GUATT
            | AS_ATT
            | AS_ATT64
            | AS_SETH64
            | VMS_CREATE
    )
}

/// `-errno` as the ABI answers it.
pub const fn neg(errno: c_int) -> u64 {
    (-(errno as i64)) as u64
}
/// `-EINVAL`.
pub const EINVAL: u64 = neg(22);
/// `-ENOMEM`.
pub const ENOMEM: u64 = neg(12);
/// `-ECHILD`.
pub const ECHILD: u64 = neg(10);
/// `-EAGAIN`.
pub const EAGAIN: u64 = neg(11);
/// `-ENOSYS`.
pub const ENOSYS: u64 = neg(38);
/// `-EFAULT`.
pub const EFAULT: u64 = neg(14);

/// Whether a system call result is `-errno`.
pub const fn is_error(r: u64) -> bool {
    r >= (-4095i64) as u64
}

fn err(e: Errno) -> u64 {
    neg(e.raw())
}

/// Entries of [`FAST`]: every number up to the last service.
const FAST_LEN: usize = VMS_DELETE as usize + 1;

/// The fast path's handler table ([`crate::trap::set_syscall_table`]),
/// indexed by number: the calls that switch, block or end the process
/// (`exit`, `fork`, `yield`) are `None` and go to [`on_syscall`] with the
/// full frame; `wait` goes there only when it has to block. Unassigned
/// numbers below the end answer `-ENOSYS` from [`service`], those beyond
/// it from [`on_syscall`].
pub(super) static FAST: [Option<SyscallHandler>; FAST_LEN] = fast_table();

const fn fast_table() -> [Option<SyscallHandler>; FAST_LEN] {
    let mut t: [Option<SyscallHandler>; FAST_LEN] = [Some(sys_other); FAST_LEN];
    t[EXIT as usize] = None;
    t[FORK as usize] = None;
    t[YIELD as usize] = None;
    t[GETPID as usize] = Some(sys_getpid);
    t[WAIT as usize] = Some(sys_wait);
    t[REPORT as usize] = Some(sys_report);
    t
}

extern "C" fn sys_getpid(frame: &mut TrapFrame) -> SyscallExit {
    frame.gpr[3] = u64::from(super::current_pid().0);
    SyscallExit::Return
}

/// `wait` that need not block: an ended child or none at all.
extern "C" fn sys_wait(frame: &mut TrapFrame) -> SyscallExit {
    let pid = super::current_pid();
    let mut s = sched();
    let p = s.procs.get_mut(pid).expect("current process exists");
    if let Some((child, value, killed)) = p.ended_children.pop_front() {
        frame.gpr[3] = value;
        frame.gpr[4] = u64::from(child.0);
        frame.gpr[5] = killed as u64;
    } else if p.live_children == 0 {
        frame.gpr[3] = ECHILD;
    } else {
        return SyscallExit::Full;
    }
    SyscallExit::Return
}

extern "C" fn sys_report(frame: &mut TrapFrame) -> SyscallExit {
    frame.gpr[3] = if crate::heap::free() < HEAP_RESERVE {
        ENOMEM
    } else {
        let pid = super::current_pid();
        if let Some(p) = sched().procs.get_mut(pid) {
            p.reports.push(frame.gpr[3]);
        }
        0
    };
    SyscallExit::Return
}

/// Every call that runs without the scheduler: `kread`, `kwrite`,
/// `in_interrupt` and the AIX services (unknown numbers: `-ENOSYS`).
extern "C" fn sys_other(frame: &mut TrapFrame) -> SyscallExit {
    frame.gpr[3] = other(super::current_pid(), frame);
    SyscallExit::Return
}

fn other(pid: ProcessId, frame: &TrapFrame) -> u64 {
    let nr = frame.gpr[0];
    if grows_bookkeeping(nr) && crate::heap::free() < HEAP_RESERVE {
        return ENOMEM;
    }
    let a = [
        frame.gpr[3],
        frame.gpr[4],
        frame.gpr[5],
        frame.gpr[6],
        frame.gpr[7],
        frame.gpr[8],
    ];
    // Services may fault on kernel memory, which is fine: no lock is held.
    match nr {
        KREAD => kread(a[0]),
        KWRITE => kwrite(a[0], a[1]),
        GETCPU => crate::smp::this_cpu() as u64,
        VM_CHECK => match mm::with_vmm(|v| v.check_invariants()) {
            Ok(()) => 0,
            Err(e) => {
                log::error!("vm_check from process {}: {e:?}", pid.0);
                EFAULT
            }
        },
        IN_INTERRUPT => {
            mm::with_aix(|aix| aix.vm_mut().set_environment(Environment::Interrupt));
            let r = service(pid, a[0], &[a[1], a[2], a[3], a[4], a[5], 0]);
            mm::with_aix(|aix| aix.vm_mut().set_environment(Environment::Process(pid)));
            r
        }
        _ => service(pid, nr, &a),
    }
}

/// The 0xc00 handler: the full path, for the calls [`FAST`] passes on
/// (and every call while no table is installed).
pub(super) fn on_syscall(frame: &mut TrapFrame) {
    if frame.gpr[0] == YIELD && super::from_problem_state(frame) {
        // The one full-path call that runs all the time: kept out of the
        // rest, whose stack frame and register saves it does not need.
        frame.gpr[3] = 0;
        return switch_away(&mut sched(), frame, true);
    }
    on_other_syscall(frame);
}

#[inline(never)]
fn on_other_syscall(frame: &mut TrapFrame) {
    if !super::from_problem_state(frame) {
        panic!("sc from supervisor state at {:#x}\n{frame}", frame.srr0);
    }
    let nr = frame.gpr[0];
    let mut s = sched();
    let t = super::current_thread(&s).expect("a system call comes from the current thread");
    let th = s.threads.at(t);
    let (proc_slot, pid) = (th.proc_slot, th.pid);
    if grows_bookkeeping(nr) && crate::heap::free() < HEAP_RESERVE {
        frame.gpr[3] = ENOMEM;
        return;
    }
    match nr {
        EXIT => {
            super::exit_process(&mut s, proc_slot, Exit::Status(frame.gpr[3]));
            super::end_current_thread(&mut s, frame);
        }
        GETPID => frame.gpr[3] = u64::from(pid.0),
        FORK => fork(&mut s, frame, pid),
        THREAD_CREATE => frame.gpr[3] = thread_create(&mut s, proc_slot, frame.gpr[3]),
        THREAD_EXIT => {
            let p = s.procs.at(proc_slot);
            if p.threads.len() == 1 && p.ending.is_none() {
                p.ending = Some(Exit::Status(frame.gpr[3]));
            }
            super::end_current_thread(&mut s, frame);
        }
        WAIT => wait(&mut s, frame, proc_slot, t),
        YIELD => {
            frame.gpr[3] = 0;
            switch_away(&mut s, frame, true);
        }
        REPORT => {
            if let Some(p) = s.procs.get_mut(pid) {
                p.reports.push(frame.gpr[3]);
            }
            frame.gpr[3] = 0;
        }
        _ => {
            drop(s);
            frame.gpr[3] = other(pid, frame);
        }
    }
}

fn fork(s: &mut super::Sched, frame: &mut TrapFrame, parent: vmm::platform::ProcessId) {
    let child = vmm::platform::ProcessId(super::NEXT_PID.fetch_add(1, Ordering::Relaxed));
    let forked: Result<_, vmm::aix::ProcessError> = mm::with_aix(|aix| {
        aix.fork(parent, child)?;
        Ok(aix
            .vm()
            .space_id(Space::Process(child))
            .expect("the space fork made"))
    });
    match forked {
        Ok(space) => {
            // The child is one thread: a copy of the calling one.
            let mut cframe = *frame;
            cframe.gpr[3] = 0;
            let slot = super::new_process(s, child, Some(parent), space);
            let t = super::new_thread(s, slot, cframe);
            if let Some(p) = s.procs.get_mut(parent) {
                p.live_children += 1;
            }
            super::make_ready(s, t);
            super::CREATED.fetch_add(1, Ordering::Relaxed);
            super::FORKS.fetch_add(1, Ordering::Relaxed);
            frame.gpr[3] = child.0 as u64;
        }
        Err(e) => {
            log::warn!("proc: fork of {} refused: {e:?}", parent.0);
            frame.gpr[3] = err(e.errno());
        }
    }
    // The Vmm's fork leaves the parent's space current.
}

/// A new thread of the process in `proc_slot` that starts the script at
/// command `first`; its index, or `-EAGAIN`.
fn thread_create(s: &mut super::Sched, proc_slot: usize, first: u64) -> u64 {
    let p = s.procs.at(proc_slot);
    let k = p.threads_made;
    if k >= crate::user::THREADS_MAX || p.ending.is_some() {
        return EAGAIN;
    }
    let mut f: TrapFrame = super::zeroed_frame();
    f.gpr[1] = crate::user::thread_stack_top(k);
    f.gpr[3] = crate::user::SCRIPT_BASE;
    f.gpr[4] = crate::user::thread_vars_base(k);
    f.gpr[5] = crate::user::thread_results_base(k);
    f.gpr[6] = first;
    f.srr0 = crate::user::thread_entry_address();
    f.srr1 = super::user_msr();
    let t = super::new_thread(s, proc_slot, f);
    super::make_ready(s, t);
    u64::from(k)
}

fn wait(s: &mut super::Sched, frame: &mut TrapFrame, proc_slot: usize, t: usize) {
    let p = s.procs.at(proc_slot);
    if let Some((child, value, killed)) = p.ended_children.pop_front() {
        frame.gpr[3] = value;
        frame.gpr[4] = child.0 as u64;
        frame.gpr[5] = killed as u64;
    } else if p.live_children == 0 {
        frame.gpr[3] = ECHILD;
    } else {
        p.waiters.push_back(t);
        s.threads.at(t).state = super::ThreadState::Waiting;
        switch_away(s, frame, false);
    }
}

/// Whether `[kaddr, kaddr + 8)` lies in a live `vm_galloc` allocation.
fn in_galloc(kaddr: u64) -> bool {
    mm::with_aix(|aix| {
        aix.allocations().any(|a| {
            kaddr >= a.start && kaddr.checked_add(8).is_some_and(|e| e <= a.start + a.bytes)
        })
    })
}

fn kread(kaddr: u64) -> u64 {
    if !kaddr.is_multiple_of(8) || !in_galloc(kaddr) {
        return EINVAL;
    }
    // SAFETY: an aligned doubleword of a vm_galloc allocation that was
    // live a moment ago (kernel key, PP 00/01: readable by the kernel); a
    // first touch is zero-filled by the VMM; no lock is held. Another
    // processor may free it meanwhile: the probe then fails.
    unsafe { mm::probe::read(kaddr) }.unwrap_or(EFAULT)
}

fn kwrite(kaddr: u64, value: u64) -> u64 {
    if !kaddr.is_multiple_of(8) || !in_galloc(kaddr) {
        return EINVAL;
    }
    // SAFETY: as in `kread`; vm_galloc pages are kernel read-write.
    if unsafe { mm::probe::write(kaddr, value) } {
        0
    } else {
        EFAULT
    }
}

/// Whether the kernel (supervisor state) may load and store the
/// doubleword at `ea` without a fault the VMM would refuse: the address
/// is mapped (`-EFAULT`), its page lies inside the segment and any window
/// (`-EINVAL`), the page protection under the mapping's key allows read
/// and write (ISA PP table; `-EFAULT`), and an untouched page would not
/// need a zero-fill in the interrupt environment (`-EFAULT`). The same
/// checks the fault handler makes, so a pass means the access resolves.
fn kernel_may_read_write(vmm: &mm::KernelVmm, ea: u64) -> Result<(), u64> {
    use vmm::fault::check_access;
    use vmm::platform::Access;
    use vmm::segment::{PageState, SegmentKind, PAGE_SHIFT, SEGSHIFT};

    let addr = arch_ppc64::addr::EffectiveAddress::new(ea);
    let (_, m) = vmm.mapping_for(addr).ok_or(EFAULT)?;
    let page = ((ea & ((1 << SEGSHIFT) - 1)) >> PAGE_SHIFT) as u32;
    if m.window.as_ref().is_some_and(|w| !w.contains(&page)) {
        return Err(EINVAL);
    }
    let tsid = m.translation_sid();
    let seg = vmm.segments().get(tsid).map_err(|_| EFAULT)?;
    if !seg.in_range(page) {
        return Err(EINVAL);
    }
    let target = match seg.kind() {
        SegmentKind::View { target, .. } => *target,
        SegmentKind::Working => tsid,
    };
    let prot = vmm
        .segments()
        .effective_prot(tsid, page)
        .map_err(|_| EINVAL)?;
    let key = m.handle.key().effective(false);
    for access in [Access::Load, Access::Store] {
        check_access(prot, m.handle.no_exec(), key, access).map_err(|_| EFAULT)?;
    }
    let state = vmm
        .segments()
        .get(target)
        .and_then(|s| s.page_state(page))
        .map_err(|_| EINVAL)?;
    if state == PageState::Untouched && vmm.environment() == Environment::Interrupt {
        return Err(EFAULT);
    }
    Ok(())
}

/// Whether `handle` names a segment a process other than `pid` owns (its
/// text, data or stack: an owned mapping). A malformed handle names none;
/// the service refuses it itself.
fn names_foreign_private(aix: &mm::KernelAix, pid: ProcessId, handle: u64) -> bool {
    let Ok(h) = VmHandle::from_raw(handle) else {
        return false;
    };
    let mine = aix.vm().space_id(Space::Process(pid));
    aix.vm().vmm().spaces().any(|(id, space)| {
        Some(id) != mine
            && space
                .iter()
                .any(|(_, m)| m.owned && m.handle.sid().as_u64() == h.sid())
    })
}

/// Calls AIX service `nr` with arguments `a` in the current environment
/// on behalf of process `pid`.
fn service(pid: ProcessId, nr: u64, a: &[u64; 6]) -> u64 {
    let handle = match nr {
        VM_ATT | VM_ATT_RW | AS_ATT | AS_ATT64 => Some(a[0]),
        AS_SETH64 => Some(a[1]),
        _ => None,
    };
    if handle.is_some_and(|h| mm::with_aix(|x| names_foreign_private(x, pid, h))) {
        return EINVAL;
    }
    if nr == VM_ATT_RW {
        return vm_att_rw(a);
    }
    match Service::from_number(nr) {
        Some(svc) => match mm::with_aix(|x| vmm::aix::call(x, svc, a)) {
            Ok(v) => v,
            Err(e) => err(e),
        },
        None => ENOSYS,
    }
}

/// [`VM_ATT_RW`].
fn vm_att_rw(a: &[u64; 6]) -> u64 {
    // Attach and validate under one hold of the lock; the access
    // itself happens after it is released (it may fault, and the
    // fault handler takes the lock).
    let ea = match mm::with_aix(|x| {
        let ea = x.vm_att(a[0], a[1]).map_err(|e| err(e.errno()))?;
        let checked = if ea.is_multiple_of(8) {
            kernel_may_read_write(x.vm_mut().vmm_mut(), ea)
        } else {
            Err(EINVAL)
        };
        match checked {
            Ok(()) => Ok(ea),
            Err(e) => {
                let _ = x.vm_det(ea);
                Err(e)
            }
        }
    }) {
        Ok(ea) => ea,
        Err(e) => return e,
    };
    // SAFETY: `ea` is in the vm_att slot just attached for this
    // context; `kernel_may_read_write` found its page inside the
    // segment and readable and writable with the handle's key in
    // supervisor state, so the access is resolved by the fault
    // handler (a demand-zero page at worst), never refused.
    let back = unsafe {
        (ea as *mut u64).write_volatile(a[2]);
        (ea as *const u64).read_volatile()
    };
    match mm::with_aix(|x| x.vm_det(ea)) {
        Ok(()) => back,
        Err(e) => err(e.errno()),
    }
}
