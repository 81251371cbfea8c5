//! Host harness for the AIX services' C interface.
//!
//! Built as a static library, it gives a C program everything it needs to
//! run a scenario through the C functions only: [`cabi_init`] builds an
//! emulated machine ([`vmm::sim::Machine`]), the VMM over it and the AIX
//! services, installs them as the object `vm_galloc`, `as_att64`, ...
//! work on, and starts process 1 (64-bit). The other `cabi_*` functions
//! stand in for the rest of a kernel: switching what runs, fork and exit,
//! loads and stores through the emulated MMU in problem or supervisor
//! state, a fresh machine ([`cabi_reset`]) and where the library's log
//! records go ([`cabi_set_log`]). Their C declarations, with the return
//! codes, are in `c/cabi.h`.
//!
//! The emulated machine is not thread-safe, so it belongs to the thread
//! that called [`cabi_init`]: a `cabi_*` call or an AIX service from any
//! other thread is refused with [`CABI_WRONG_THREAD`] (services: their
//! error value) and a log record that says so, never run on the machine.

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int, c_ulong, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use arch_ppc64::addr::EffectiveAddress;
use log::{Level, LevelFilter, Log, Metadata, Record};
use vmm::aix::cabi::{install_guarded, uninstall, with_services, Guard};
use vmm::aix::{AddressModel, Aix, CoreVm, Space};
use vmm::platform::{Environment, Privilege, ProcessId};
use vmm::sim::{Machine, SimConfig, SimHpt, SimMemory, SimSlb};
use vmm::vm::Vmm;

/// The core the services run on here.
pub type Core = CoreVm<SimHpt, SimSlb, SimMemory>;

/// Success.
pub const CABI_OK: c_int = 0;
/// The call failed: a bad argument, or the services refused it.
pub const CABI_FAILED: c_int = -1;
/// `cabi_load` / `cabi_store`: the access faulted (the VMM did not resolve
/// the storage interrupt).
pub const CABI_FAULT: c_int = -1;
/// [`cabi_init`] has not run on any thread (or [`cabi_reset`] undid it).
pub const CABI_NOT_INIT: c_int = -2;
/// Called from a thread other than the one that called [`cabi_init`].
pub const CABI_WRONG_THREAD: c_int = -3;
/// [`cabi_init`] on this thread again: [`cabi_reset`] first.
pub const CABI_ALREADY: c_int = -4;

thread_local! {
    /// The machine of this thread's installation.
    static MACHINE: RefCell<Option<Machine>> = const { RefCell::new(None) };
    /// The services this thread installed (a `Box` turned into a raw
    /// pointer), for [`cabi_reset`] to free.
    static INSTALLED_AIX: Cell<Option<*mut Aix<Core>>> = const { Cell::new(None) };
    /// This thread called [`cabi_init`] and owns the machine.
    static OWNER: Cell<bool> = const { Cell::new(false) };
    /// This thread is inside the C log callback.
    static IN_LOG_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

/// Some thread has claimed the harness (between [`cabi_init`] and
/// [`cabi_reset`]).
static CLAIMED: AtomicBool = AtomicBool::new(false);

fn in_log_callback() -> bool {
    // During thread teardown, as if inside: nothing is called back then.
    IN_LOG_CALLBACK.try_with(Cell::get).unwrap_or(true)
}

fn is_owner() -> bool {
    // A thread being torn down no longer owns anything.
    OWNER.try_with(Cell::get).unwrap_or(false)
}

/// The [`Guard`] the services are installed with: only the owner thread
/// reaches them.
const OWNER_GUARD: Guard = Guard {
    allowed: is_owner,
    refusal: "called from a thread other than the one that called cabi_init \
              (the emulated machine belongs to that thread)",
};

/// Whether `name` may run here: the owner thread, outside the log
/// callback. Otherwise logs why and gives the code to return.
fn admit(name: &str) -> Result<(), c_int> {
    if in_log_callback() {
        log::warn!("{name}: called from the log callback; refused");
        Err(CABI_FAILED)
    } else if is_owner() {
        Ok(())
    } else if CLAIMED.load(Ordering::Acquire) {
        log::warn!("{name}: {}; refused", OWNER_GUARD.refusal);
        Err(CABI_WRONG_THREAD)
    } else {
        log::warn!("{name}: the harness is not initialised (call cabi_init first); refused");
        Err(CABI_NOT_INIT)
    }
}

/// Builds the machine, the VMM and the services; installs them for this
/// thread only and makes process 1 (64-bit) run.
fn build() -> Result<(Machine, *mut Aix<Core>), &'static str> {
    let machine = Machine::new(SimConfig::default()).map_err(|_| "machine")?;
    let vmm = Vmm::new(machine.hpt(), machine.slb(), machine.memory(), 2).map_err(|_| "VMM")?;
    let mut aix = Aix::new(CoreVm::new(vmm));
    aix.create_process(ProcessId(1), AddressModel::Bits64)
        .map_err(|_| "process 1")?;
    aix.vm_mut()
        .set_environment(Environment::Process(ProcessId(1)));
    aix.vm_mut()
        .switch_to(Space::Process(ProcessId(1)))
        .map_err(|_| "address space of process 1")?;
    Ok((machine, Box::into_raw(Box::new(aix))))
}

/// Builds the machine, the VMM and the services, installs them and makes
/// process 1 (64-bit) run; the calling thread becomes their owner.
/// Returns [`CABI_OK`], [`CABI_ALREADY`] on the owner thread,
/// [`CABI_WRONG_THREAD`] on another thread while initialised, or
/// [`CABI_FAILED`] if the machine cannot be built. Also makes the
/// library's log records reach stderr (see [`cabi_set_log`]).
#[no_mangle]
pub extern "C" fn cabi_init() -> c_int {
    install_logger();
    if in_log_callback() {
        log::warn!("cabi_init: called from the log callback; refused");
        return CABI_FAILED;
    }
    if CLAIMED
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return if is_owner() {
            log::warn!(
                "cabi_init: already initialised on this thread; \
                 call cabi_reset first for a fresh machine"
            );
            CABI_ALREADY
        } else {
            log::warn!("cabi_init: already initialised by another thread; refused");
            CABI_WRONG_THREAD
        };
    }
    let (machine, services) = match build() {
        Ok(built) => built,
        Err(what) => {
            log::error!("cabi_init: could not build the {what}");
            CLAIMED.store(false, Ordering::Release);
            return CABI_FAILED;
        }
    };
    INSTALLED_AIX.with(|s| s.set(Some(services)));
    MACHINE.with(|m| *m.borrow_mut() = Some(machine));
    OWNER.with(|o| o.set(true));
    // SAFETY: `services` comes from `Box::into_raw` and is only freed by
    // `cabi_reset` after it is uninstalled. The services hold an
    // `Rc`-based machine and are not `Send`; OWNER_GUARD lets only this
    // thread's calls reach them, and every `cabi_*` function checks the
    // same with `admit` before `with_services`.
    unsafe {
        install_guarded(&mut *services, OWNER_GUARD);
    }
    CABI_OK
}

/// Uninstalls and frees the services and the machine of [`cabi_init`], so
/// that the next [`cabi_init`] (on any thread) starts from a fresh one.
/// Returns [`CABI_OK`], [`CABI_NOT_INIT`] or [`CABI_WRONG_THREAD`].
#[no_mangle]
pub extern "C" fn cabi_reset() -> c_int {
    if let Err(code) = admit("cabi_reset") {
        return code;
    }
    let Some(ours) = INSTALLED_AIX.with(Cell::take) else {
        return CABI_NOT_INIT;
    };
    let installed = with_services(|s| {
        s.as_any_mut()
            .downcast_mut::<Aix<Core>>()
            .is_some_and(|a| core::ptr::eq(a, ours))
    });
    if installed == Some(true) {
        let _ = uninstall();
        // SAFETY: `ours` is the `Box` that `cabi_init` turned into a raw
        // pointer; it was just uninstalled, so no C entry reaches it any
        // more, and the only reference made from it went to
        // `install_guarded` and came back with `uninstall`, unused.
        drop(unsafe { Box::from_raw(ours) });
    } else {
        // Someone replaced them through the Rust API; theirs stay, ours
        // are leaked rather than freed under a possible user.
        log::error!("cabi_reset: the installed services are not cabi_init's; left installed");
    }
    MACHINE.with(|m| *m.borrow_mut() = None);
    OWNER.with(|o| o.set(false));
    CLAIMED.store(false, Ordering::Release);
    CABI_OK
}

/// Runs `f` on the installed services and this thread's machine, after
/// [`admit`]; the code to return otherwise.
fn with_aix<R>(name: &str, f: impl FnOnce(&mut Aix<Core>, &Machine) -> R) -> Result<R, c_int> {
    admit(name)?;
    let machine = MACHINE.with(|m| m.borrow().clone()).ok_or(CABI_NOT_INIT)?;
    with_services(|s| {
        s.as_any_mut()
            .downcast_mut::<Aix<Core>>()
            .map(|aix| f(aix, &machine))
    })
    .flatten()
    .ok_or(CABI_NOT_INIT)
}

/// [`CABI_OK`] when `r` succeeded, the admission code, else
/// [`CABI_FAILED`].
fn status<T, E>(r: Result<Result<T, E>, c_int>) -> c_int {
    match r {
        Ok(Ok(_)) => CABI_OK,
        Ok(Err(_)) => CABI_FAILED,
        Err(code) => code,
    }
}

fn pid(p: c_int) -> Option<ProcessId> {
    u32::try_from(p).ok().map(ProcessId)
}

/// Sets what runs: `kind` 0 = process `p` (its address space becomes
/// current), 1 = a kernel process, 2 = an interrupt handler (the address
/// space stays). Returns [`CABI_OK`], [`CABI_FAILED`] for a bad argument,
/// or the admission code.
#[no_mangle]
pub extern "C" fn cabi_set_env(kind: c_int, p: c_int) -> c_int {
    let r = with_aix("cabi_set_env", |aix, _| {
        let (env, space) = match kind {
            0 => {
                let p = pid(p).ok_or(())?;
                (Environment::Process(p), Some(Space::Process(p)))
            }
            1 => (Environment::KernelProcess, Some(Space::Kernel)),
            2 => (Environment::Interrupt, None),
            _ => return Err(()),
        };
        if let Some(s) = space {
            aix.vm_mut().switch_to(s).map_err(|_| ())?;
        }
        aix.vm_mut().set_environment(env);
        Ok(())
    });
    status(r)
}

/// Creates process `p` with a 64-bit (`bits` = 64) or 32-bit (`bits` =
/// 32) address space. Returns [`CABI_OK`], [`CABI_FAILED`] or the
/// admission code.
#[no_mangle]
pub extern "C" fn cabi_create_process(p: c_int, bits: c_int) -> c_int {
    let model = match bits {
        64 => Some(AddressModel::Bits64),
        32 => Some(AddressModel::Bits32),
        _ => None,
    };
    status(with_aix("cabi_create_process", |aix, _| {
        match (pid(p), model) {
            (Some(p), Some(model)) => aix.create_process(p, model).map_err(|_| ()),
            _ => Err(()),
        }
    }))
}

/// Fork hook: `child` becomes a copy of `parent`. Returns [`CABI_OK`],
/// [`CABI_FAILED`] or the admission code.
#[no_mangle]
pub extern "C" fn cabi_fork(parent: c_int, child: c_int) -> c_int {
    status(with_aix("cabi_fork", |aix, _| {
        match (pid(parent), pid(child)) {
            (Some(p), Some(c)) => aix.fork(p, c).map_err(|_| ()),
            _ => Err(()),
        }
    }))
}

/// Exit hook for process `p`. Returns [`CABI_OK`], [`CABI_FAILED`] or the
/// admission code.
#[no_mangle]
pub extern "C" fn cabi_exit(p: c_int) -> c_int {
    status(with_aix("cabi_exit", |aix, _| match pid(p) {
        Some(p) => aix.exit(p).map_err(|_| ()),
        None => Err(()),
    }))
}

fn privilege(problem: c_int) -> Privilege {
    if problem != 0 {
        Privilege::Problem
    } else {
        Privilege::Supervisor
    }
}

/// Loads the byte at `ea` in the current address space, in problem state
/// if `problem` is non-zero. Returns the byte (0..255), [`CABI_FAULT`] on
/// a fault, or the admission code ([`CABI_NOT_INIT`],
/// [`CABI_WRONG_THREAD`]).
#[no_mangle]
pub extern "C" fn cabi_load(ea: c_ulong, problem: c_int) -> c_int {
    let r = with_aix("cabi_load", |aix, m| {
        m.load_u8(
            EffectiveAddress::new(ea),
            privilege(problem),
            aix.vm_mut().vmm_mut(),
        )
    });
    match r {
        Ok(Ok(b)) => c_int::from(b),
        Ok(Err(_)) => CABI_FAULT,
        Err(code) => code,
    }
}

/// Stores `value` (low byte) at `ea` in the current address space, in
/// problem state if `problem` is non-zero. Returns [`CABI_OK`],
/// [`CABI_FAULT`] on a fault, or the admission code.
#[no_mangle]
pub extern "C" fn cabi_store(ea: c_ulong, problem: c_int, value: c_int) -> c_int {
    let r = with_aix("cabi_store", |aix, m| {
        m.store_u8(
            EffectiveAddress::new(ea),
            value as u8,
            privilege(problem),
            aix.vm_mut().vmm_mut(),
        )
    });
    match r {
        Ok(Ok(())) => CABI_OK,
        Ok(Err(_)) => CABI_FAULT,
        Err(code) => code,
    }
}

/// Checks that the VMM's HPT, SLB and tables agree. Returns [`CABI_OK`],
/// [`CABI_FAILED`] or the admission code.
#[no_mangle]
pub extern "C" fn cabi_check() -> c_int {
    status(with_aix("cabi_check", |aix, _| {
        aix.vm().vmm().check_invariants()
    }))
}

/// The C log callback: `level` 1 (error) to 5 (trace), the message as a
/// NUL-terminated string valid during the call.
pub type CabiLogFn = unsafe extern "C" fn(level: c_int, message: *const c_char);

/// Where records go: the C callback, or stderr when `None`.
static LOG_CALLBACK: Mutex<Option<CabiLogFn>> = Mutex::new(None);

/// The `log` logger of the harness: every record of the vmm crate (and of
/// the harness) at or above the level set goes to the C callback or to
/// stderr.
struct CabiLogger;

static LOGGER: CabiLogger = CabiLogger;

impl Log for CabiLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        let callback = *LOG_CALLBACK.lock().unwrap_or_else(|e| e.into_inner());
        // A record logged by the callback itself (through a refused
        // `cabi_*` call) goes to stderr: calling back again would recurse.
        match callback {
            Some(f) if !in_log_callback() => {
                let text = CString::new(message.replace('\0', "\\0")).expect("NULs were replaced");
                IN_LOG_CALLBACK.with(|c| c.set(true));
                // SAFETY: `f` was registered by C through `cabi_set_log`
                // as a function of this type; the string outlives the
                // call.
                unsafe { f(record.level() as c_int, text.as_ptr()) };
                IN_LOG_CALLBACK.with(|c| c.set(false));
            }
            _ => eprintln!("vmm {}: {message}", record.level()),
        }
    }

    fn flush(&self) {}
}

/// Installs [`LOGGER`] as the process's `log` logger (warnings and errors
/// by default) once; whether it is the logger.
fn install_logger() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let ok = log::set_logger(&LOGGER).is_ok();
        if ok {
            log::set_max_level(LevelFilter::Warn);
        } else {
            eprintln!("vmm-cabi: another logger is installed; the library's records go there");
        }
        ok
    })
}

/// Sends the library's log records with a level up to `max_level` (0 =
/// none, 1 = errors, 2 = warnings too (the default), 3 info, 4 debug,
/// 5 trace) to `callback`, or to stderr when `callback` is NULL. Any
/// thread may call it; records are delivered on the thread that logs
/// them. Returns [`CABI_OK`], or [`CABI_FAILED`] for a bad level or when
/// another `log` logger already owns the process.
#[no_mangle]
pub extern "C" fn cabi_set_log(callback: Option<CabiLogFn>, max_level: c_int) -> c_int {
    let filter = match max_level {
        0 => LevelFilter::Off,
        1 => LevelFilter::Error,
        2 => LevelFilter::Warn,
        3 => LevelFilter::Info,
        4 => LevelFilter::Debug,
        5 => LevelFilter::Trace,
        _ => {
            if install_logger() {
                log::warn!("cabi_set_log: level {max_level} is not 0..5; unchanged");
            }
            return CABI_FAILED;
        }
    };
    if !install_logger() {
        return CABI_FAILED;
    }
    *LOG_CALLBACK.lock().unwrap_or_else(|e| e.into_inner()) = callback;
    log::set_max_level(filter);
    CABI_OK
}

// The level numbers of `cabi.h` are `log::Level`'s.
const _: () = assert!(Level::Error as c_int == 1 && Level::Trace as c_int == 5);
