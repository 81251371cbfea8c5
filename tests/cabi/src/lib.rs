//! Host harness for the AIX services' C interface.
//!
//! Built as a static library, it gives a C program everything it needs to
//! run a scenario through the C functions only: [`cabi_init`] builds an
//! emulated machine ([`vmm::sim::Machine`]), the VMM over it and the AIX
//! services, installs them as the object `vm_galloc`, `as_att64`, ...
//! work on, and starts process 1 (64-bit). The other `cabi_*` functions
//! stand in for the rest of a kernel: switching what runs, fork and exit,
//! and loads and stores through the emulated MMU in problem or supervisor
//! state. Their C declarations are in `c/cabi.h`.
//!
//! The emulated machine is not thread-safe: everything must run on the
//! thread that called [`cabi_init`].

use std::cell::RefCell;
use std::ffi::{c_int, c_ulong};

use arch_ppc64::addr::EffectiveAddress;
use vmm::aix::cabi::{install, with_services};
use vmm::aix::{AddressModel, Aix, CoreVm, Space};
use vmm::platform::{Environment, Privilege, ProcessId};
use vmm::sim::{Machine, SimConfig, SimHpt, SimMemory, SimSlb};
use vmm::vm::Vmm;

/// The core the services run on here.
pub type Core = CoreVm<SimHpt, SimSlb, SimMemory>;

thread_local! {
    /// The machine of this thread's installation.
    static MACHINE: RefCell<Option<Machine>> = const { RefCell::new(None) };
}

/// Builds the machine, the VMM and the services, installs them and makes
/// process 1 (64-bit) run. Returns 0, or -1 if already initialised or the
/// machine cannot be built.
#[no_mangle]
pub extern "C" fn cabi_init() -> c_int {
    if MACHINE.with(|m| m.borrow().is_some()) {
        return -1;
    }
    let Ok(machine) = Machine::new(SimConfig::default()) else {
        return -1;
    };
    let Ok(vmm) = Vmm::new(machine.hpt(), machine.slb(), machine.memory(), 2) else {
        return -1;
    };
    let core = CoreVm::new(vmm);
    let mut aix = Aix::new(core);
    if aix
        .create_process(ProcessId(1), AddressModel::Bits64)
        .is_err()
    {
        return -1;
    }
    aix.vm_mut()
        .set_environment(Environment::Process(ProcessId(1)));
    if aix
        .vm_mut()
        .switch_to(Space::Process(ProcessId(1)))
        .is_err()
    {
        return -1;
    }
    let services: &'static mut Aix<Core> = Box::leak(Box::new(aix));
    // SAFETY: the services hold an `Rc`-based machine and are not `Send`;
    // this crate's contract (module docs) is that every C call comes from
    // the thread that called `cabi_init`, which the thread-local machine
    // also ties everything to.
    unsafe {
        install(services);
    }
    MACHINE.with(|m| *m.borrow_mut() = Some(machine));
    0
}

/// Runs `f` on the installed services and this thread's machine; `None`
/// if not initialised here.
fn with_aix<R>(f: impl FnOnce(&mut Aix<Core>, &Machine) -> R) -> Option<R> {
    let machine = MACHINE.with(|m| m.borrow().clone())?;
    with_services(|s| {
        s.as_any_mut()
            .downcast_mut::<Aix<Core>>()
            .map(|aix| f(aix, &machine))
    })
    .flatten()
}

fn pid(p: c_int) -> Option<ProcessId> {
    u32::try_from(p).ok().map(ProcessId)
}

/// Sets what runs: `kind` 0 = process `p` (its address space becomes
/// current), 1 = a kernel process, 2 = an interrupt handler (the address
/// space stays). Returns 0, or -1 for a bad argument.
#[no_mangle]
pub extern "C" fn cabi_set_env(kind: c_int, p: c_int) -> c_int {
    let r = with_aix(|aix, _| {
        let (env, space) = match kind {
            0 => {
                let p = pid(p)?;
                (Environment::Process(p), Some(Space::Process(p)))
            }
            1 => (Environment::KernelProcess, Some(Space::Kernel)),
            2 => (Environment::Interrupt, None),
            _ => return None,
        };
        if let Some(s) = space {
            aix.vm_mut().switch_to(s).ok()?;
        }
        aix.vm_mut().set_environment(env);
        Some(())
    });
    if matches!(r, Some(Some(()))) {
        0
    } else {
        -1
    }
}

/// Creates process `p` with a 64-bit (`bits` = 64) or 32-bit (`bits` =
/// 32) address space. Returns 0 or -1.
#[no_mangle]
pub extern "C" fn cabi_create_process(p: c_int, bits: c_int) -> c_int {
    let model = match bits {
        64 => AddressModel::Bits64,
        32 => AddressModel::Bits32,
        _ => return -1,
    };
    let Some(p) = pid(p) else { return -1 };
    match with_aix(|aix, _| aix.create_process(p, model)) {
        Some(Ok(())) => 0,
        _ => -1,
    }
}

/// Fork hook: `child` becomes a copy of `parent`. Returns 0 or -1.
#[no_mangle]
pub extern "C" fn cabi_fork(parent: c_int, child: c_int) -> c_int {
    let (Some(p), Some(c)) = (pid(parent), pid(child)) else {
        return -1;
    };
    match with_aix(|aix, _| aix.fork(p, c)) {
        Some(Ok(())) => 0,
        _ => -1,
    }
}

/// Exit hook for process `p`. Returns 0 or -1.
#[no_mangle]
pub extern "C" fn cabi_exit(p: c_int) -> c_int {
    let Some(p) = pid(p) else { return -1 };
    match with_aix(|aix, _| aix.exit(p)) {
        Some(Ok(())) => 0,
        _ => -1,
    }
}

fn privilege(problem: c_int) -> Privilege {
    if problem != 0 {
        Privilege::Problem
    } else {
        Privilege::Supervisor
    }
}

/// Loads the byte at `ea` in the current address space, in problem state
/// if `problem` is non-zero. Returns the byte (0..255), or -1 on a fault.
#[no_mangle]
pub extern "C" fn cabi_load(ea: c_ulong, problem: c_int) -> c_int {
    let r = with_aix(|aix, m| {
        m.load_u8(
            EffectiveAddress::new(ea),
            privilege(problem),
            aix.vm_mut().vmm_mut(),
        )
    });
    match r {
        Some(Ok(b)) => c_int::from(b),
        _ => -1,
    }
}

/// Stores `value` (low byte) at `ea` in the current address space, in
/// problem state if `problem` is non-zero. Returns 0, or -1 on a fault.
#[no_mangle]
pub extern "C" fn cabi_store(ea: c_ulong, problem: c_int, value: c_int) -> c_int {
    let r = with_aix(|aix, m| {
        m.store_u8(
            EffectiveAddress::new(ea),
            value as u8,
            privilege(problem),
            aix.vm_mut().vmm_mut(),
        )
    });
    match r {
        Some(Ok(())) => 0,
        _ => -1,
    }
}

/// Checks that the VMM's HPT, SLB and tables agree. Returns 0 or -1.
#[no_mangle]
pub extern "C" fn cabi_check() -> c_int {
    match with_aix(|aix, _| aix.vm().vmm().check_invariants()) {
        Some(Ok(())) => 0,
        _ => -1,
    }
}
