//! The C interface (feature `c-abi`): `#[no_mangle] extern "C"` functions
//! with AIX's exact names and signatures, declared in
//! `vmm/include/sys/vmuser.h` and `vmm/include/sys/adspace.h`.
//!
//! They work on one global services object that the embedding kernel (or
//! a host test) installs at start-up with [`install`] (or [`install_send`]).
//! Each call locks it, runs the Rust service and turns the typed error into
//! AIX's value: an errno (`EINVAL`, `ENOMEM`, `ENOSPC`), `NULL`, `INVLSID`,
//! or for `as_att64` 0 plus an errno kept per context and read with
//! [`vmm_errno`]. Before installation every call answers its error value.
//!
//! Locking: no entry spins on the lock without bound. What is running
//! (process or interrupt) is known only to the services behind the lock,
//! so an interrupt handler that interrupted a service call on the same
//! processor could not be told apart from a waiting process before taking
//! it; instead every entry only tries the lock a bounded number of times
//! and then answers its error value (`EINVAL`, `NULL`, `INVLSID`, or 0
//! with errno `EINVAL` for `as_att64`), logging that the services were
//! busy. The services AIX allows in the interrupt environment (`vm_att`,
//! `vm_det`, `as_getsrval`, `as_getsrval64`, and [`vmm_errno`]) give up
//! after [`INTERRUPT_LOCK_TRIES`]; the process-environment ones wait
//! longer ([`PROCESS_LOCK_TRIES`]), so that on a multiprocessor a call is
//! refused only when another processor holds the lock for very long.
//!
//! Guard: services that may only be used from some contexts (an emulated
//! machine that belongs to one thread) are installed with
//! [`install_guarded`]; every entry then asks the [`Guard`] first and,
//! when it says no, logs the guard's reason and answers its error value
//! without touching the services.

use core::ffi::{c_int, c_long, c_ulonglong, c_void};
use core::ptr;
use core::sync::atomic::{AtomicI32, Ordering};

use spin::Mutex;

use super::adsp::adspace_t;
use super::backend::AixVm;
use super::consts::{EINVAL, INVLSID};
use super::ctypes::{caddr_t, dev_t, ulong, vmhandle_t, vmid_t, vmkey_t, vmsize_t};
use super::error::*;
use super::handle;
use super::services::Aix;

/// The services as an object the C functions can call: every service of
/// [`Aix`], whatever its core.
pub trait AixServices {
    /// The object itself, for an embedder that installed a concrete
    /// [`Aix`] and needs it back inside [`with_services`] (switching
    /// processes, fork and exit hooks).
    fn as_any_mut(&mut self) -> &mut dyn core::any::Any;
    /// [`Aix::vm_galloc`].
    fn vm_galloc(&mut self, type_flags: c_int, size: vmsize_t) -> Result<u64, VmGallocError>;
    /// [`Aix::vm_gfree`].
    fn vm_gfree(&mut self, eaddr: u64, size: vmsize_t) -> Result<(), VmGfreeError>;
    /// [`Aix::vm_guatt`].
    fn vm_guatt(
        &mut self,
        kaddr: u64,
        size: vmsize_t,
        key: vmkey_t,
        flags: c_long,
    ) -> Result<u64, VmGuattError>;
    /// [`Aix::vm_gudet`].
    fn vm_gudet(
        &mut self,
        kaddr: u64,
        uaddr: u64,
        size: vmsize_t,
        flags: c_long,
    ) -> Result<(), VmGudetError>;
    /// [`Aix::vm_att`].
    fn vm_att(&mut self, handle: vmhandle_t, offset: u64) -> Result<u64, VmAttError>;
    /// [`Aix::vm_det`].
    fn vm_det(&mut self, eaddr: u64) -> Result<(), VmDetError>;
    /// [`Aix::vms_create`].
    fn vms_create(&mut self, type_flags: c_int, size: vmsize_t) -> Result<vmid_t, VmsCreateError>;
    /// [`Aix::vms_delete`].
    fn vms_delete(&mut self, vmid: vmid_t) -> Result<(), VmsDeleteError>;
    /// [`Aix::getadsp`].
    fn getadsp(&mut self) -> Result<ptr::NonNull<adspace_t>, GetadspError>;
    /// [`Aix::as_att`].
    fn as_att(
        &mut self,
        adsp: *const adspace_t,
        handle: vmhandle_t,
        offset: u64,
    ) -> Result<u64, AsAttError>;
    /// [`Aix::as_det`].
    fn as_det(&mut self, adsp: *const adspace_t, eaddr: u64) -> Result<(), AsDetError>;
    /// [`Aix::as_geth`].
    fn as_geth(&mut self, adsp: *const adspace_t, addr: u64) -> Result<vmhandle_t, AsGethError>;
    /// [`Aix::as_puth`].
    fn as_puth(&mut self, adsp: *const adspace_t, handle: vmhandle_t) -> Result<(), AsPuthError>;
    /// [`Aix::as_getsrval`].
    fn as_getsrval(&mut self, adsp: *const adspace_t, addr: u64)
        -> Result<vmhandle_t, AsGethError>;
    /// [`Aix::as_att64`].
    fn as_att64(&mut self, handle: vmhandle_t, offset: c_int) -> Result<u64, AsAtt64Error>;
    /// [`Aix::as_det64`].
    fn as_det64(&mut self, addr64: u64) -> Result<(), AsDet64Error>;
    /// [`Aix::as_seth64`].
    fn as_seth64(&mut self, addr64: u64, handle: vmhandle_t) -> Result<(), AsSeth64Error>;
    /// [`Aix::as_geth64`].
    fn as_geth64(&mut self, addr64: u64) -> Result<vmhandle_t, AsGeth64Error>;
    /// [`Aix::as_puth64`].
    fn as_puth64(&mut self, addr64: u64, handle: vmhandle_t) -> Result<(), AsPuth64Error>;
    /// [`Aix::as_getsrval64`].
    fn as_getsrval64(&mut self, addr64: u64) -> Result<vmhandle_t, AsGeth64Error>;
    /// [`Aix::set_errno`].
    fn set_errno(&mut self, errno: Errno);
    /// [`Aix::errno`].
    fn errno(&self) -> c_int;
}

impl<V: AixVm + 'static> AixServices for Aix<V> {
    fn as_any_mut(&mut self) -> &mut dyn core::any::Any {
        self
    }
    fn vm_galloc(&mut self, type_flags: c_int, size: vmsize_t) -> Result<u64, VmGallocError> {
        Aix::vm_galloc(self, type_flags, size)
    }
    fn vm_gfree(&mut self, eaddr: u64, size: vmsize_t) -> Result<(), VmGfreeError> {
        Aix::vm_gfree(self, eaddr, size)
    }
    fn vm_guatt(
        &mut self,
        kaddr: u64,
        size: vmsize_t,
        key: vmkey_t,
        flags: c_long,
    ) -> Result<u64, VmGuattError> {
        Aix::vm_guatt(self, kaddr, size, key, flags)
    }
    fn vm_gudet(
        &mut self,
        kaddr: u64,
        uaddr: u64,
        size: vmsize_t,
        flags: c_long,
    ) -> Result<(), VmGudetError> {
        Aix::vm_gudet(self, kaddr, uaddr, size, flags)
    }
    fn vm_att(&mut self, handle: vmhandle_t, offset: u64) -> Result<u64, VmAttError> {
        Aix::vm_att(self, handle, offset)
    }
    fn vm_det(&mut self, eaddr: u64) -> Result<(), VmDetError> {
        Aix::vm_det(self, eaddr)
    }
    fn vms_create(&mut self, type_flags: c_int, size: vmsize_t) -> Result<vmid_t, VmsCreateError> {
        Aix::vms_create(self, type_flags, size)
    }
    fn vms_delete(&mut self, vmid: vmid_t) -> Result<(), VmsDeleteError> {
        Aix::vms_delete(self, vmid)
    }
    fn getadsp(&mut self) -> Result<ptr::NonNull<adspace_t>, GetadspError> {
        Aix::getadsp(self)
    }
    fn as_att(
        &mut self,
        adsp: *const adspace_t,
        handle: vmhandle_t,
        offset: u64,
    ) -> Result<u64, AsAttError> {
        Aix::as_att(self, adsp, handle, offset)
    }
    fn as_det(&mut self, adsp: *const adspace_t, eaddr: u64) -> Result<(), AsDetError> {
        Aix::as_det(self, adsp, eaddr)
    }
    fn as_geth(&mut self, adsp: *const adspace_t, addr: u64) -> Result<vmhandle_t, AsGethError> {
        Aix::as_geth(self, adsp, addr)
    }
    fn as_puth(&mut self, adsp: *const adspace_t, handle: vmhandle_t) -> Result<(), AsPuthError> {
        Aix::as_puth(self, adsp, handle)
    }
    fn as_getsrval(
        &mut self,
        adsp: *const adspace_t,
        addr: u64,
    ) -> Result<vmhandle_t, AsGethError> {
        Aix::as_getsrval(self, adsp, addr)
    }
    fn as_att64(&mut self, handle: vmhandle_t, offset: c_int) -> Result<u64, AsAtt64Error> {
        Aix::as_att64(self, handle, offset)
    }
    fn as_det64(&mut self, addr64: u64) -> Result<(), AsDet64Error> {
        Aix::as_det64(self, addr64)
    }
    fn as_seth64(&mut self, addr64: u64, handle: vmhandle_t) -> Result<(), AsSeth64Error> {
        Aix::as_seth64(self, addr64, handle)
    }
    fn as_geth64(&mut self, addr64: u64) -> Result<vmhandle_t, AsGeth64Error> {
        Aix::as_geth64(self, addr64)
    }
    fn as_puth64(&mut self, addr64: u64, handle: vmhandle_t) -> Result<(), AsPuth64Error> {
        Aix::as_puth64(self, addr64, handle)
    }
    fn as_getsrval64(&mut self, addr64: u64) -> Result<vmhandle_t, AsGeth64Error> {
        Aix::as_getsrval64(self, addr64)
    }
    fn set_errno(&mut self, errno: Errno) {
        Aix::set_errno(self, errno)
    }
    fn errno(&self) -> c_int {
        Aix::errno(self)
    }
}

/// Who may call the installed services: checked by every C entry before it
/// touches them (see [`install_guarded`]).
#[derive(Debug, Clone, Copy)]
pub struct Guard {
    /// Whether the calling context may use the services.
    pub allowed: fn() -> bool,
    /// Why a call was refused, logged after the entry's name when
    /// `allowed` says no ("called from a thread other than ...").
    pub refusal: &'static str,
}

/// The installed services and who may call them.
struct Installed {
    services: &'static mut dyn AixServices,
    guard: Option<Guard>,
}

// SAFETY: `Installed` is only reached through `SERVICES`' lock, so one
// thread at a time uses it. Whether the object may move between threads at
// all is the installer's promise: `install_send` takes only `Send`
// objects, and `install` is `unsafe` and states the condition.
unsafe impl Send for Installed {}

static SERVICES: Mutex<Option<Installed>> = Mutex::new(None);

/// errno of `as_att64` failures when no services are installed.
static FALLBACK_ERRNO: AtomicI32 = AtomicI32::new(0);

/// How often an interrupt-capable entry tries the lock before answering
/// its error value.
pub const INTERRUPT_LOCK_TRIES: usize = 1 << 16;

/// How often a process-environment entry tries the lock before answering
/// its error value (a call re-entered from an interrupt handler while the
/// lock is held on the same processor would otherwise spin for ever).
pub const PROCESS_LOCK_TRIES: usize = 1 << 20;

/// Installs `services` as the object every C function works on, returning
/// the previous one.
///
/// # Safety
///
/// If `services` is not `Send` (for example an emulated machine built on
/// `Rc`), the caller must make sure every C function of this module is
/// called from the thread that installed it, for as long as it stays
/// installed.
pub unsafe fn install(
    services: &'static mut dyn AixServices,
) -> Option<&'static mut dyn AixServices> {
    replace_installed(services, None)
}

/// Installs `services` as [`install`] does, with a [`Guard`] every C
/// function consults before using them: a call the guard does not allow is
/// logged with the guard's reason and answered with the function's error
/// value. [`with_services`] does not consult it. Returns the previous
/// object.
///
/// # Safety
///
/// As for [`install`]: if `services` is not `Send`, the guard must refuse
/// every thread but the installing one for as long as they stay installed
/// (and the installer must not use them from elsewhere through
/// [`with_services`]).
pub unsafe fn install_guarded(
    services: &'static mut dyn AixServices,
    guard: Guard,
) -> Option<&'static mut dyn AixServices> {
    replace_installed(services, Some(guard))
}

/// Puts `services` (with `guard`) in place of what was installed, which
/// it returns.
fn replace_installed(
    services: &'static mut dyn AixServices,
    guard: Option<Guard>,
) -> Option<&'static mut dyn AixServices> {
    SERVICES
        .lock()
        .replace(Installed { services, guard })
        .map(|i| i.services)
}

/// Installs thread-safe `services` (see [`install`]); returns the previous
/// object.
pub fn install_send(
    services: &'static mut (dyn AixServices + Send),
) -> Option<&'static mut dyn AixServices> {
    // SAFETY: `services` is `Send`, so it may be used from any thread.
    unsafe { install(services) }
}

/// Removes the installed services (the C functions answer their error
/// values again) and gives them back.
pub fn uninstall() -> Option<&'static mut dyn AixServices> {
    SERVICES.lock().take().map(|i| i.services)
}

/// Runs `f` on the installed services under the same lock the C
/// functions take; `None` if none are installed. For the embedder's own
/// work on the services (process hooks through
/// [`AixServices::as_any_mut`]). It does not consult the [`Guard`]: the
/// embedder answers for its own calls.
pub fn with_services<R>(f: impl FnOnce(&mut dyn AixServices) -> R) -> Option<R> {
    SERVICES.lock().as_mut().map(|i| f(&mut *i.services))
}

/// Runs `f` on the installed services, trying the lock at most
/// [`PROCESS_LOCK_TRIES`] times (process-environment entries); `None` if
/// none are installed, the [`Guard`] refused the caller or the lock stayed
/// busy.
fn with<R>(name: &str, f: impl FnOnce(&mut dyn AixServices) -> R) -> Option<R> {
    with_tries(name, PROCESS_LOCK_TRIES, f)
}

/// As [`with`], but gives up after [`INTERRUPT_LOCK_TRIES`] (entries AIX
/// allows in the interrupt environment).
fn with_bounded<R>(name: &str, f: impl FnOnce(&mut dyn AixServices) -> R) -> Option<R> {
    with_tries(name, INTERRUPT_LOCK_TRIES, f)
}

fn with_tries<R>(name: &str, tries: usize, f: impl FnOnce(&mut dyn AixServices) -> R) -> Option<R> {
    for _ in 0..tries {
        if let Some(mut installed) = SERVICES.try_lock() {
            let refusal = match installed.as_mut() {
                None => "no AIX services installed",
                Some(Installed { guard: Some(g), .. }) if !(g.allowed)() => g.refusal,
                Some(i) => return Some(f(&mut *i.services)),
            };
            // Logged without the lock: a logger that calls back into the
            // services must not find it held.
            drop(installed);
            log::warn!("{name}: {refusal}; refused");
            return None;
        }
        core::hint::spin_loop();
    }
    log::warn!("{name}: services busy (re-entered from an interrupt?); refused");
    None
}

fn errno_of<T, E>(r: Option<Result<T, E>>, errno: impl FnOnce(&E) -> Errno) -> c_int {
    match r {
        Some(Ok(_)) => 0,
        Some(Err(e)) => errno(&e).raw(),
        None => EINVAL,
    }
}

/// Runs a service that answers through an out-pointer: `EINVAL` for a
/// NULL `out` (the service is not called), else the service's result is
/// written to `*out` and 0 returned, or its errno.
///
/// # Safety
///
/// `out` must be NULL or valid for writing a `T`.
unsafe fn write_through<T, E>(
    name: &str,
    out: *mut T,
    service: impl FnOnce(&mut dyn AixServices) -> Result<T, E>,
    errno: impl FnOnce(&E) -> Errno,
) -> c_int {
    if out.is_null() {
        log::warn!("{name}: out-pointer is NULL");
        return EINVAL;
    }
    match with(name, service) {
        Some(Ok(v)) => {
            // SAFETY: the caller guarantees `out` is writable; checked
            // non-NULL above.
            unsafe { out.write(v) };
            0
        }
        r => errno_of(r, errno),
    }
}

/// `vm_galloc`: see [`Aix::vm_galloc`]. Stores the address in `*eaddr`.
///
/// # Safety
///
/// `eaddr` must be NULL (answered with `EINVAL`) or valid for writing a
/// `ulong`.
#[no_mangle]
pub unsafe extern "C" fn vm_galloc(type_: c_int, size: vmsize_t, eaddr: *mut ulong) -> c_int {
    // SAFETY: the caller guarantees `eaddr` is NULL or writable.
    unsafe {
        write_through(
            "vm_galloc",
            eaddr,
            |s| s.vm_galloc(type_, size),
            VmGallocError::errno,
        )
    }
}

/// `vm_gfree`: see [`Aix::vm_gfree`].
#[no_mangle]
pub extern "C" fn vm_gfree(eaddr: ulong, size: vmsize_t) -> c_int {
    errno_of(
        with("vm_gfree", |s| s.vm_gfree(eaddr, size)),
        VmGfreeError::errno,
    )
}

/// `vm_guatt`: see [`Aix::vm_guatt`]. `*uaddr` must be NULL on entry and
/// receives the user address.
///
/// # Safety
///
/// `uaddr` must be NULL (answered with `EINVAL`) or valid for reading and
/// writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn vm_guatt(
    kaddr: *mut c_void,
    size: vmsize_t,
    key: vmkey_t,
    flags: c_long,
    uaddr: *mut *mut c_void,
) -> c_int {
    if uaddr.is_null() {
        log::warn!("vm_guatt: uaddr is NULL");
        return EINVAL;
    }
    // SAFETY: the caller guarantees `uaddr` is readable; checked non-NULL.
    let current = unsafe { uaddr.read() };
    if !current.is_null() {
        let e = VmGuattError::UaddrNotNull {
            uaddr: current as u64,
        };
        log::warn!("vm_guatt: {e:?}");
        return e.errno().raw();
    }
    match with("vm_guatt", |s| s.vm_guatt(kaddr as u64, size, key, flags)) {
        Some(Ok(u)) => {
            // SAFETY: as above, `uaddr` is writable.
            unsafe { uaddr.write(u as *mut c_void) };
            0
        }
        r => errno_of(r, VmGuattError::errno),
    }
}

/// `vm_gudet`: see [`Aix::vm_gudet`].
#[no_mangle]
pub extern "C" fn vm_gudet(
    kaddr: *mut c_void,
    uaddr: *mut c_void,
    size: vmsize_t,
    flags: c_long,
) -> c_int {
    errno_of(
        with("vm_gudet", |s| {
            s.vm_gudet(kaddr as u64, uaddr as u64, size, flags)
        }),
        VmGudetError::errno,
    )
}

/// `vm_att`: see [`Aix::vm_att`]; NULL on failure (AIX would panic).
#[no_mangle]
pub extern "C" fn vm_att(vmhandle: vmhandle_t, offset: caddr_t) -> caddr_t {
    match with_bounded("vm_att", |s| s.vm_att(vmhandle, offset as u64)) {
        Some(Ok(a)) => a as caddr_t,
        _ => ptr::null_mut(),
    }
}

/// `vm_det`: see [`Aix::vm_det`]; a bad address is logged and ignored.
#[no_mangle]
pub extern "C" fn vm_det(eaddr: caddr_t) {
    let _ = with_bounded("vm_det", |s| s.vm_det(eaddr as u64));
}

/// `vm_handle`: see [`handle::vm_handle`]; `INVLSID` for a bad vmid or
/// key.
#[no_mangle]
pub extern "C" fn vm_handle(vmid: vmid_t, key: vmkey_t) -> vmhandle_t {
    match handle::vm_handle(vmid, key) {
        Ok(h) => h.raw(),
        Err(e) => {
            log::warn!("vm_handle: {e:?}");
            INVLSID
        }
    }
}

/// `vms_create`: see [`Aix::vms_create`]. Stores the id in `*vmid`;
/// `dev`, `uplim` and `downlim` are ignored.
///
/// # Safety
///
/// `vmid` must be NULL (answered with `EINVAL`) or valid for writing a
/// `vmid_t`.
#[no_mangle]
pub unsafe extern "C" fn vms_create(
    vmid: *mut vmid_t,
    type_: c_int,
    _dev: dev_t,
    size: vmsize_t,
    _uplim: vmsize_t,
    _downlim: vmsize_t,
) -> c_int {
    // SAFETY: the caller guarantees `vmid` is NULL or writable.
    unsafe {
        write_through(
            "vms_create",
            vmid,
            |s| s.vms_create(type_, size),
            VmsCreateError::errno,
        )
    }
}

/// `vms_delete`: see [`Aix::vms_delete`].
#[no_mangle]
pub extern "C" fn vms_delete(vmid: vmid_t) -> c_int {
    errno_of(
        with("vms_delete", |s| s.vms_delete(vmid)),
        VmsDeleteError::errno,
    )
}

/// `getadsp`: see [`Aix::getadsp`]; NULL on failure.
#[no_mangle]
pub extern "C" fn getadsp() -> *mut adspace_t {
    match with("getadsp", |s| s.getadsp()) {
        Some(Ok(p)) => p.as_ptr(),
        _ => ptr::null_mut(),
    }
}

/// `as_att`: see [`Aix::as_att`]; NULL when no register is free or on a
/// bad argument.
#[no_mangle]
pub extern "C" fn as_att(adsp: *mut adspace_t, vmhandle: vmhandle_t, offset: caddr_t) -> caddr_t {
    match with("as_att", |s| s.as_att(adsp, vmhandle, offset as u64)) {
        Some(Ok(a)) => a as caddr_t,
        _ => ptr::null_mut(),
    }
}

/// `as_det`: see [`Aix::as_det`].
#[no_mangle]
pub extern "C" fn as_det(adsp: *mut adspace_t, eaddr: caddr_t) -> c_int {
    errno_of(
        with("as_det", |s| s.as_det(adsp, eaddr as u64)),
        AsDetError::errno,
    )
}

/// `as_geth`: see [`Aix::as_geth`]; `INVLSID` on failure.
#[no_mangle]
pub extern "C" fn as_geth(adsp: *mut adspace_t, addr: caddr_t) -> vmhandle_t {
    match with("as_geth", |s| s.as_geth(adsp, addr as u64)) {
        Some(Ok(h)) => h,
        _ => INVLSID,
    }
}

/// `as_puth`: see [`Aix::as_puth`]; a refused put is logged.
#[no_mangle]
pub extern "C" fn as_puth(adsp: *mut adspace_t, vmhandle: vmhandle_t) {
    if let Some(Err(e)) = with("as_puth", |s| s.as_puth(adsp, vmhandle)) {
        log::warn!("as_puth: {e:?}; ignored");
    }
}

/// `as_getsrval`: see [`Aix::as_getsrval`]; `INVLSID` on failure.
#[no_mangle]
pub extern "C" fn as_getsrval(adsp: *mut adspace_t, addr: caddr_t) -> vmhandle_t {
    match with_bounded("as_getsrval", |s| s.as_getsrval(adsp, addr as u64)) {
        Some(Ok(h)) => h,
        _ => INVLSID,
    }
}

/// `as_att64`: see [`Aix::as_att64`]. Returns 0 on failure and records
/// the errno (`EINVAL`, `ENOMEM`) for [`vmm_errno`].
#[no_mangle]
pub extern "C" fn as_att64(vmhandle: vmhandle_t, offset: c_int) -> c_ulonglong {
    let r = with("as_att64", |s| {
        let r = s.as_att64(vmhandle, offset);
        if let Err(e) = &r {
            s.set_errno(e.errno());
        }
        r
    });
    match r {
        Some(Ok(a)) => a,
        Some(Err(_)) => 0,
        None => {
            FALLBACK_ERRNO.store(EINVAL, Ordering::Relaxed);
            0
        }
    }
}

/// `as_det64`: see [`Aix::as_det64`].
#[no_mangle]
pub extern "C" fn as_det64(addr64: c_ulonglong) -> c_int {
    errno_of(
        with("as_det64", |s| s.as_det64(addr64)),
        AsDet64Error::errno,
    )
}

/// `as_seth64`: see [`Aix::as_seth64`].
#[no_mangle]
pub extern "C" fn as_seth64(addr64: c_ulonglong, vmhandle: vmhandle_t) -> c_int {
    errno_of(
        with("as_seth64", |s| s.as_seth64(addr64, vmhandle)),
        AsSeth64Error::errno,
    )
}

/// `as_geth64`: see [`Aix::as_geth64`]; `INVLSID` on failure.
#[no_mangle]
pub extern "C" fn as_geth64(addr64: c_ulonglong) -> vmhandle_t {
    match with("as_geth64", |s| s.as_geth64(addr64)) {
        Some(Ok(h)) => h,
        _ => INVLSID,
    }
}

/// `as_puth64`: see [`Aix::as_puth64`].
#[no_mangle]
pub extern "C" fn as_puth64(addr64: c_ulonglong, vmhandle: vmhandle_t) -> c_int {
    errno_of(
        with("as_puth64", |s| s.as_puth64(addr64, vmhandle)),
        AsPuth64Error::errno,
    )
}

/// `as_getsrval64`: see [`Aix::as_getsrval64`]; `INVLSID` on failure.
#[no_mangle]
pub extern "C" fn as_getsrval64(addr64: c_ulonglong) -> vmhandle_t {
    match with_bounded("as_getsrval64", |s| s.as_getsrval64(addr64)) {
        Some(Ok(h)) => h,
        _ => INVLSID,
    }
}

/// The errno the last failed `as_att64` of the current context recorded
/// (0 if none). AIX keeps it in the u-area; this project keeps it per
/// context (process, or the kernel for kernel processes and interrupts).
#[no_mangle]
pub extern "C" fn vmm_errno() -> c_int {
    with_bounded("vmm_errno", |s| s.errno())
        .unwrap_or_else(|| FALLBACK_ERRNO.load(Ordering::Relaxed))
}
