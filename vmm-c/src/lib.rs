//! The vmm as a C library: `libvmm_c.a` and `vmm/include/vmm.h`.
//!
//! A kernel written in C passes its machine as a table of callbacks
//! ([`VmmPlatform`], `struct vmm_platform`: the HPT as PAPR-style
//! insert/remove/protect/read, SLB load/read/invalidate, 4 KiB frames,
//! the memory for the library's allocator, a log and an abort callback)
//! to [`vmm_create`], and gets the manager: processes
//! ([`vmm_process_create`], [`vmm_process_fork`], [`vmm_process_exit`]),
//! the environment and switch ([`vmm_set_environment`],
//! [`vmm_switch_to_process`], [`vmm_switch_to_kernel`]), the storage
//! interrupt entry ([`vmm_fault`]) and the 21 AIX services of
//! `vmm::aix::cabi`, which this library reaches through its own lock (a
//! `vmm::aix::cabi::Access`), so everything shares one lock and one
//! instance.
//!
//! Builds: the default feature `std` is the host build (tests drive it
//! from C programs); `--no-default-features` is the bare-metal one, with
//! its own allocator over the heap region (also used with `std` once
//! `vmm_create` gave it), panic handler and unwinder stubs. Either way the
//! C kernel supplies `memcpy`, `memmove`, `memset`, `memcmp` and `bcmp`.

#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_debug_implementations)]

extern crate alloc;

pub mod heap;
pub mod platform;
#[cfg(not(feature = "std"))]
mod runtime;

use core::ffi::{c_char, c_int, c_void};
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use vmm::aix::cabi::{self, Access, AixServices, Entry};
use vmm::aix::{AddressModel, Aix, CoreError, CoreVm, ProcessError, Space};
use vmm::arch_ppc64::addr::EffectiveAddress;
use vmm::arch_ppc64::registers::dsisr::DsisrFlags;
use vmm::arch_ppc64::registers::srr1::IsiFlags;
use vmm::platform::{
    Access as MemAccess, Environment, FaultHandler, FaultOutcome, Interrupt, Privilege, ProcessId,
    VmFaultReason,
};
use vmm::vm::{VmError, Vmm};

pub use platform::VmmPlatform;
use platform::{CFrames, CHpt, CSlb, Ops};

/// `VMM_OK`.
pub const VMM_OK: c_int = 0;
/// `VMM_EINVAL`.
pub const VMM_EINVAL: c_int = -1;
/// `VMM_ENOMEM`.
pub const VMM_ENOMEM: c_int = -2;
/// `VMM_EBUSY`.
pub const VMM_EBUSY: c_int = -3;
/// `VMM_ENOTINIT`.
pub const VMM_ENOTINIT: c_int = -4;
/// `VMM_EEXIST`.
pub const VMM_EEXIST: c_int = -5;
/// `VMM_ENOENT`.
pub const VMM_ENOENT: c_int = -6;
/// `VMM_EPLATFORM`.
pub const VMM_EPLATFORM: c_int = -7;

/// `VMM_RESOLVED`.
pub const VMM_RESOLVED: c_int = 0;
/// `VMM_FAULT`.
pub const VMM_FAULT: c_int = 1;

/// Smallest heap region `vmm_create` accepts.
pub const MIN_HEAP: usize = 256 << 10;

/// How often an entry tries the lock before answering `VMM_EBUSY`.
pub const LOCK_TRIES: usize = 1 << 20;

/// The manager over the C kernel's machine.
pub type CAix = Aix<CoreVm<CHpt, CSlb, CFrames>>;

/// The one instance, under the library's one lock.
static STATE: spin::Mutex<Option<CAix>> = spin::Mutex::new(None);

/// Set by the first `vmm_create` that got past its checks.
static CREATED: AtomicBool = AtomicBool::new(false);

/// The abort callback and its context, for the panic handler.
static ABORT: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());
static ABORT_CTX: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());
static LOG_FN: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());
static LOG_CTX: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());

/// Runs `f` on the instance, trying the lock [`LOCK_TRIES`] times.
fn with_state<R>(f: impl FnOnce(&mut CAix) -> R) -> Result<R, c_int> {
    for _ in 0..LOCK_TRIES {
        if let Some(mut g) = STATE.try_lock() {
            return match g.as_mut() {
                Some(aix) => Ok(f(aix)),
                None => Err(VMM_ENOTINIT),
            };
        }
        core::hint::spin_loop();
    }
    Err(VMM_EBUSY)
}

/// The services' access to the instance: the same lock as every other
/// entry.
#[derive(Debug)]
struct LibAccess;

impl Access for LibAccess {
    fn with_services(
        &self,
        _entry: Entry,
        f: &mut dyn FnMut(&mut dyn AixServices),
    ) -> Result<(), &'static str> {
        match with_state(|a| f(a)) {
            Ok(()) => Ok(()),
            Err(VMM_ENOTINIT) => Err("vmm_create has not run"),
            Err(_) => Err("the library's lock stayed busy (re-entered?)"),
        }
    }
}

static ACCESS: LibAccess = LibAccess;

/// Log records to the C kernel's callback.
#[derive(Debug)]
struct CLog;

/// A record formatted into a fixed buffer (no allocation in the logger),
/// cut at its capacity.
struct Line {
    buf: [u8; 240],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

type LogFn = unsafe extern "C" fn(*mut c_void, c_int, *const c_char, usize);

impl log::Log for CLog {
    fn enabled(&self, _: &log::Metadata) -> bool {
        !LOG_FN.load(Ordering::Acquire).is_null()
    }

    fn log(&self, record: &log::Record) {
        let f = LOG_FN.load(Ordering::Acquire);
        if f.is_null() {
            return;
        }
        // SAFETY: only `vmm_create` stores here, and only a `LogFn`.
        let f: LogFn = unsafe { core::mem::transmute::<*mut c_void, LogFn>(f) };
        let mut line = Line {
            buf: [0; 240],
            len: 0,
        };
        let _ = write!(line, "{}", record.args());
        // SAFETY: the C kernel's log callback, with its context and a
        // buffer of `len` valid bytes.
        unsafe {
            f(
                LOG_CTX.load(Ordering::Acquire),
                record.level() as c_int,
                line.buf.as_ptr().cast(),
                line.len,
            )
        };
    }

    fn flush(&self) {}
}

static LOGGER: CLog = CLog;

/// Hands `msg` to the abort callback, if there is one (the `no_std`
/// panic handler's way out).
#[cfg_attr(feature = "std", allow(dead_code))]
pub(crate) fn abort_with(msg: &[u8]) {
    type AbortFn = unsafe extern "C" fn(*mut c_void, *const c_char, usize);
    let f = ABORT.load(Ordering::Acquire);
    if !f.is_null() {
        // SAFETY: only `vmm_create` stores here, and only an `AbortFn`.
        let f: AbortFn = unsafe { core::mem::transmute::<*mut c_void, AbortFn>(f) };
        // SAFETY: the C kernel's abort callback with its context and a
        // valid buffer.
        unsafe {
            f(
                ABORT_CTX.load(Ordering::Acquire),
                msg.as_ptr().cast(),
                msg.len(),
            )
        };
    }
}

fn vm_error_code(e: VmError) -> c_int {
    match e {
        VmError::NoFrames | VmError::NoSids => VMM_ENOMEM,
        _ => VMM_EPLATFORM,
    }
}

/// Builds the manager over `platform` (see `vmm.h`).
///
/// # Safety
///
/// `platform` must be NULL (answered `VMM_EINVAL`) or point to a valid
/// `struct vmm_platform` whose callbacks keep the header's contract and
/// whose heap region is valid, unused memory given to the library for good.
#[no_mangle]
pub unsafe extern "C" fn vmm_create(platform: *const VmmPlatform, slb_bolted: usize) -> c_int {
    if platform.is_null() {
        return VMM_EINVAL;
    }
    // SAFETY: non-NULL and valid by the caller's promise; copied.
    let p = unsafe { platform.read() };
    if !p.complete()
        || p.heap.is_null()
        || p.heap_size < MIN_HEAP
        || !p.hpt_ptegs.is_power_of_two()
        || slb_bolted >= p.slb_entries
    {
        return VMM_EINVAL;
    }
    if CREATED.swap(true, Ordering::AcqRel) {
        return VMM_EEXIST;
    }
    // SAFETY: the caller gives the region to the library for good.
    if !unsafe { heap::ALLOCATOR.init(p.heap.cast(), p.heap_size) } {
        return VMM_EEXIST;
    }
    if let Some(f) = p.abort {
        ABORT_CTX.store(p.ctx, Ordering::Release);
        ABORT.store(f as *mut c_void, Ordering::Release);
    }
    if let Some(f) = p.log {
        LOG_CTX.store(p.ctx, Ordering::Release);
        LOG_FN.store(f as *mut c_void, Ordering::Release);
        if log::set_logger(&LOGGER).is_ok() {
            log::set_max_level(log::LevelFilter::Info);
        }
    }
    let ops = Ops(p);
    // SAFETY: vmm.h gives the library an in-memory table for good.
    let hpt = match unsafe { CHpt::new(ops) } {
        Ok(h) => h,
        Err(e) => {
            log::error!("vmm_create: the in-memory HPT: {e:?}");
            return VMM_EINVAL;
        }
    };
    let vmm = match Vmm::new(hpt, CSlb(ops), CFrames(ops), slb_bolted) {
        Ok(v) => v,
        Err(e) => {
            log::error!("vmm_create: {e}");
            return vm_error_code(e);
        }
    };
    let aix = Aix::new(CoreVm::new(vmm));
    match STATE.try_lock() {
        Some(mut g) => *g = Some(aix),
        None => return VMM_EBUSY,
    }
    if cabi::set_access(&ACCESS).is_err() {
        log::warn!("vmm_create: the AIX services had another access; kept");
    }
    VMM_OK
}

fn process_error(e: ProcessError) -> c_int {
    match e {
        ProcessError::Exists(_) => VMM_EEXIST,
        ProcessError::NoSuchProcess(_) => VMM_ENOENT,
        ProcessError::Core(CoreError::Shortage(_)) => VMM_ENOMEM,
        _ => VMM_EINVAL,
    }
}

fn code(r: Result<Result<(), c_int>, c_int>) -> c_int {
    match r {
        Ok(Ok(())) => VMM_OK,
        Ok(Err(e)) | Err(e) => e,
    }
}

/// An empty address space for `pid` (`model`: `VMM_MODEL_64` or
/// `VMM_MODEL_32`).
#[no_mangle]
pub extern "C" fn vmm_process_create(pid: u32, model: c_int) -> c_int {
    let model = match model {
        0 => AddressModel::Bits64,
        1 => AddressModel::Bits32,
        _ => return VMM_EINVAL,
    };
    code(with_state(|a| {
        a.create_process(ProcessId(pid), model)
            .map_err(process_error)
    }))
}

/// `child`'s address space as a copy of `parent`'s.
#[no_mangle]
pub extern "C" fn vmm_process_fork(parent: u32, child: u32) -> c_int {
    code(with_state(|a| {
        a.fork(ProcessId(parent), ProcessId(child))
            .map_err(process_error)
    }))
}

/// Tears `pid`'s address space down.
#[no_mangle]
pub extern "C" fn vmm_process_exit(pid: u32) -> c_int {
    code(with_state(|a| {
        a.exit(ProcessId(pid)).map_err(process_error)
    }))
}

/// What runs now (`VMM_ENV_*`; `pid` for `VMM_ENV_PROCESS`).
#[no_mangle]
pub extern "C" fn vmm_set_environment(env: c_int, pid: u32) -> c_int {
    let env = match env {
        0 => Environment::KernelProcess,
        1 => Environment::Process(ProcessId(pid)),
        2 => Environment::Interrupt,
        _ => return VMM_EINVAL,
    };
    code(with_state(|a| {
        if let Environment::Process(p) = env {
            if a.model(p).is_none() {
                return Err(VMM_ENOENT);
            }
        }
        a.vm_mut().set_environment(env);
        Ok(())
    }))
}

fn switch(space: Space) -> c_int {
    code(with_state(|a| {
        a.vm_mut().switch_to(space).map_err(|e| match e {
            CoreError::NoSuchSpace(_) => VMM_ENOENT,
            _ => VMM_EINVAL,
        })
    }))
}

/// Makes `pid`'s address space current.
#[no_mangle]
pub extern "C" fn vmm_switch_to_process(pid: u32) -> c_int {
    switch(Space::Process(ProcessId(pid)))
}

/// Makes the kernel's address space current.
#[no_mangle]
pub extern "C" fn vmm_switch_to_kernel() -> c_int {
    switch(Space::Kernel)
}

/// `struct vmm_fault_report`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct VmmFaultReport {
    /// The faulting address.
    pub ea: u64,
    /// `VMM_FAULT_*`.
    pub reason: c_int,
    /// `VMM_ACCESS_*`.
    pub access: c_int,
}

/// The `VMM_FAULT_*` code of `r`.
pub fn reason_code(r: VmFaultReason) -> c_int {
    match r {
        VmFaultReason::NoSegment => 1,
        VmFaultReason::OutOfRange => 2,
        VmFaultReason::Protection => 3,
        VmFaultReason::NoExecute => 4,
        VmFaultReason::Key => 5,
        VmFaultReason::NoMemory => 6,
        VmFaultReason::HptFull => 7,
        VmFaultReason::NotAllowedHere => 8,
        VmFaultReason::RetriesExhausted => 9,
        VmFaultReason::Slb(_) => 10,
        VmFaultReason::Frame(_) => 11,
        VmFaultReason::Hpt(_) => 12,
        VmFaultReason::UnknownCause => 13,
    }
}

/// The storage interrupt `vector` (0x300, 0x380, 0x400, 0x480) at `ea`
/// with `status` (DSISR for 0x300, SRR1 for 0x400) taken in problem state
/// if `problem`: `VMM_RESOLVED`, or `VMM_FAULT` with `*report` filled.
///
/// # Safety
///
/// `report` must be NULL or valid for writing a `struct vmm_fault_report`.
#[no_mangle]
pub unsafe extern "C" fn vmm_fault(
    vector: u64,
    ea: u64,
    status: u64,
    problem: c_int,
    report: *mut VmmFaultReport,
) -> c_int {
    let ea = EffectiveAddress::new(ea);
    let interrupt = match vector {
        0x300 => Interrupt::DataStorage {
            ea,
            dsisr: DsisrFlags::from_dsisr(status),
        },
        0x380 => Interrupt::DataSegment { ea },
        0x400 => Interrupt::InstructionStorage {
            ea,
            srr1: IsiFlags::from_srr1(status),
        },
        0x480 => Interrupt::InstructionSegment { ea },
        _ => return VMM_EINVAL,
    };
    let privilege = if problem != 0 {
        Privilege::Problem
    } else {
        Privilege::Supervisor
    };
    match with_state(|a| a.vm_mut().vmm_mut().handle(interrupt, privilege)) {
        Ok(FaultOutcome::Resolved) => VMM_RESOLVED,
        Ok(FaultOutcome::Fault(f)) => {
            if !report.is_null() {
                let r = VmmFaultReport {
                    ea: f.ea.as_u64(),
                    reason: reason_code(f.reason),
                    access: match f.access {
                        None => 0,
                        Some(MemAccess::Load) => 1,
                        Some(MemAccess::Store) => 2,
                        Some(MemAccess::Fetch) => 3,
                    },
                };
                // SAFETY: non-NULL and writable by the caller's promise.
                unsafe { report.write(r) };
            }
            VMM_FAULT
        }
        Err(e) => e,
    }
}
