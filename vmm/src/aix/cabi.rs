//! The C interface (feature `c-abi`): `#[no_mangle] extern "C"` functions
//! with AIX's exact names and signatures, declared in
//! `vmm/include/sys/vmuser.h` and `vmm/include/sys/adspace.h`.
//!
//! They are generated from the service table ([`super::table`]) and reach
//! the services through an [`Access`]: the embedder's own (a kernel that
//! keeps its instance under its own lock sets one with [`set_access`], so
//! the C entries, its Rust code and its system calls share one lock and
//! one state), or else the built-in one, a lock around an object installed
//! at start-up with [`install`] (or [`install_send`]). Each call runs the
//! Rust service and turns the typed error into AIX's value: an errno
//! (`EINVAL`, `ENOMEM`, `ENOSPC`), `NULL`, `INVLSID`, or for `as_att64` 0
//! plus an errno kept per context and read with [`vmm_errno`]. While the
//! access refuses (nothing installed yet) every call answers its error
//! value. `vm_handle` reads no state and takes no lock.
//!
//! Locking (built-in access): no entry spins on the lock without bound.
//! What is running (process or interrupt) is known only to the services
//! behind the lock, so an interrupt handler that interrupted a service
//! call on the same processor could not be told apart from a waiting
//! process before taking it; instead every entry only tries the lock a
//! bounded number of times and then answers its error value (`EINVAL`,
//! `NULL`, `INVLSID`, or 0 with errno `EINVAL` for `as_att64`), logging
//! that the services were busy. The services AIX allows in the interrupt
//! environment (`vm_att`, `vm_det`, `as_getsrval`, `as_getsrval64`, and
//! [`vmm_errno`]: [`Entry::Interrupt`]) give up after
//! [`INTERRUPT_LOCK_TRIES`]; the process-environment ones wait longer
//! ([`PROCESS_LOCK_TRIES`]), so that on a multiprocessor a call is refused
//! only when another processor holds the lock for very long. An
//! embedder's [`Access`] is told the same [`Entry`] and decides itself.
//!
//! Guard (built-in access): services that may only be used from some
//! contexts (an emulated machine that belongs to one thread) are installed
//! with [`install_guarded`]; every entry then asks the [`Guard`] first
//! and, when it says no, logs the guard's reason and answers its error
//! value without touching the services.

use core::ffi::{c_int, c_long, c_ulonglong, c_void};
use core::ptr;
use core::sync::atomic::{AtomicI32, Ordering};

use spin::Mutex;

use super::consts::{EINVAL, INVLSID};
use super::ctypes::{caddr_t, dev_t, ulong, vmhandle_t, vmid_t, vmkey_t, vmsize_t};
use super::error::*;
use super::handle;
use super::segregs::adspace_t;

pub use super::table::AixServices;

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

/// Where a C entry may be called from, which bounds how long the built-in
/// access waits for the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// A service of the process environment: tries the lock
    /// [`PROCESS_LOCK_TRIES`] times.
    Process,
    /// A service AIX allows in the interrupt environment: tries the lock
    /// [`INTERRUPT_LOCK_TRIES`] times.
    Interrupt,
}

/// How the C entries reach the services. A kernel that keeps its [`Aix`]
/// under its own lock implements this (lending the instance out under
/// that lock) and passes it to [`set_access`], instead of installing a
/// second object that forwards every call.
///
/// [`Aix`]: super::Aix
pub trait Access: Sync {
    /// Runs `f` once on the services if the caller may use them now.
    ///
    /// # Errors
    ///
    /// Why the services could not be lent (not set up, busy, refused for
    /// this context); `f` was not called. The entry logs it after its own
    /// name and answers its error value.
    fn with_services(
        &self,
        entry: Entry,
        f: &mut dyn FnMut(&mut dyn AixServices),
    ) -> Result<(), &'static str>;
}

/// The built-in access: the object [`install`] put under this module's
/// lock.
struct Builtin;

impl Access for Builtin {
    fn with_services(
        &self,
        entry: Entry,
        f: &mut dyn FnMut(&mut dyn AixServices),
    ) -> Result<(), &'static str> {
        let tries = match entry {
            Entry::Process => PROCESS_LOCK_TRIES,
            Entry::Interrupt => INTERRUPT_LOCK_TRIES,
        };
        for _ in 0..tries {
            if let Some(mut installed) = SERVICES.try_lock() {
                return match installed.as_mut() {
                    None => Err("no AIX services installed"),
                    Some(Installed { guard: Some(g), .. }) if !(g.allowed)() => Err(g.refusal),
                    Some(i) => {
                        f(&mut *i.services);
                        Ok(())
                    }
                };
            }
            core::hint::spin_loop();
        }
        Err("services busy (re-entered from an interrupt?)")
    }
}

static BUILTIN: Builtin = Builtin;

static ACCESS: spin::Once<&'static dyn Access> = spin::Once::new();

/// Makes every C entry reach the services through `access` from now on,
/// instead of the built-in lock ([`install`] and friends then have no
/// effect on the C entries). Set once, at start-up.
///
/// # Errors
///
/// An access was set already; it stays.
pub fn set_access(access: &'static dyn Access) -> Result<(), &'static dyn Access> {
    let mut fresh = false;
    let set = ACCESS.call_once(|| {
        fresh = true;
        access
    });
    if fresh {
        Ok(())
    } else {
        Err(*set)
    }
}

/// Runs `f` on the services through the access in force; `None` if it
/// refused (logged, without any lock held: a logger that calls back into
/// the services must not find it held).
fn with<R>(name: &str, entry: Entry, f: impl FnOnce(&mut dyn AixServices) -> R) -> Option<R> {
    let access: &dyn Access = ACCESS.get().copied().unwrap_or(&BUILTIN);
    let mut f = Some(f);
    let mut out = None;
    let r = access.with_services(entry, &mut |s| {
        if let Some(f) = f.take() {
            out = Some(f(s));
        }
    });
    match r {
        Ok(()) => out,
        Err(refusal) => {
            log::warn!("{name}: {refusal}; refused");
            None
        }
    }
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
    match with(name, Entry::Process, service) {
        Some(Ok(v)) => {
            // SAFETY: the caller guarantees `out` is writable; checked
            // non-NULL above.
            unsafe { out.write(v) };
            0
        }
        r => errno_of(r, errno),
    }
}

/// Writes a C entry for each entry of the service table, by its kind.
macro_rules! c_shims {
    ($(
        $nr:literal $variant:ident $env:ident
        fn $name:ident ( $($p:ident : $pty:ty),* ) -> $ret:ty | $err:ty
        => $kind:ident ( $($out:ident)? ) fn ( $($cp:ident : $cty:ty),* ) $(-> $cret:ty)?
        = ( $($arg:expr),* );
    )*) => {
        $( c_shims!(@shim $kind ($($out)?) $env $name ( $($cp : $cty),* ) $(-> $cret)? = ( $($arg),* )); )*
    };
    (@entry process) => { Entry::Process };
    (@entry interrupt) => { Entry::Interrupt };
    (@shim errno () $env:ident $name:ident ( $($cp:ident : $cty:ty),* ) -> $cret:ty = ( $($arg:expr),* )) => {
        #[doc = concat!("`", stringify!($name), "`: see [`Aix::", stringify!($name),
            "`](super::Aix::", stringify!($name), "); 0 or the errno.")]
        #[no_mangle]
        pub extern "C" fn $name($($cp: $cty),*) -> $cret {
            errno_of(
                with(stringify!($name), c_shims!(@entry $env), |s| s.$name($($arg),*)),
                |e| e.errno(),
            )
        }
    };
    (@shim out ($out:ident) $env:ident $name:ident ( $($cp:ident : $cty:ty),* ) -> $cret:ty = ( $($arg:expr),* )) => {
        #[doc = concat!("`", stringify!($name), "`: see [`Aix::", stringify!($name),
            "`](super::Aix::", stringify!($name), "); stores the value in `*",
            stringify!($out), "` and answers 0, or the errno.")]
        ///
        /// # Safety
        ///
        #[doc = concat!("`", stringify!($out), "` must be NULL (answered with `EINVAL`) or \
            valid for writing the value.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name($($cp: $cty),*) -> $cret {
            // SAFETY: the caller guarantees the out-pointer is NULL or writable.
            unsafe {
                write_through(stringify!($name), $out, |s| s.$name($($arg),*), |e| e.errno())
            }
        }
    };
    (@shim uaddr ($out:ident) $env:ident $name:ident ( $($cp:ident : $cty:ty),* ) -> $cret:ty = ( $($arg:expr),* )) => {
        #[doc = concat!("`", stringify!($name), "`: see [`Aix::", stringify!($name),
            "`](super::Aix::", stringify!($name), "). `*", stringify!($out),
            "` must be NULL on entry and receives the user address; 0 or the errno.")]
        ///
        /// # Safety
        ///
        #[doc = concat!("`", stringify!($out), "` must be NULL (answered with `EINVAL`) or \
            valid for reading and writing a pointer.")]
        #[no_mangle]
        pub unsafe extern "C" fn $name($($cp: $cty),*) -> $cret {
            if $out.is_null() {
                log::warn!(concat!(stringify!($name), ": ", stringify!($out), " is NULL"));
                return EINVAL;
            }
            // SAFETY: the caller guarantees the pointer is readable;
            // checked non-NULL.
            let current = unsafe { $out.read() };
            if !current.is_null() {
                let e = VmGuattError::UaddrNotNull {
                    uaddr: current as u64,
                };
                log::warn!(concat!(stringify!($name), ": {:?}"), e);
                return e.errno().raw();
            }
            match with(stringify!($name), c_shims!(@entry $env), |s| s.$name($($arg),*)) {
                Some(Ok(u)) => {
                    // SAFETY: as above, the pointer is writable.
                    unsafe { $out.write(u as *mut c_void) };
                    0
                }
                r => errno_of(r, |e| e.errno()),
            }
        }
    };
    (@shim null () $env:ident $name:ident ( $($cp:ident : $cty:ty),* ) -> $cret:ty = ( $($arg:expr),* )) => {
        #[doc = concat!("`", stringify!($name), "`: see [`Aix::", stringify!($name),
            "`](super::Aix::", stringify!($name), "); NULL on failure.")]
        #[no_mangle]
        pub extern "C" fn $name($($cp: $cty),*) -> $cret {
            match with(stringify!($name), c_shims!(@entry $env), |s| s.$name($($arg),*)) {
                Some(Ok(a)) => IntoCPtr::into_c_ptr(a),
                _ => ptr::null_mut(),
            }
        }
    };
    (@shim invlsid () $env:ident $name:ident ( $($cp:ident : $cty:ty),* ) -> $cret:ty = ( $($arg:expr),* )) => {
        #[doc = concat!("`", stringify!($name), "`: see [`Aix::", stringify!($name),
            "`](super::Aix::", stringify!($name), "); `INVLSID` on failure.")]
        #[no_mangle]
        pub extern "C" fn $name($($cp: $cty),*) -> $cret {
            match with(stringify!($name), c_shims!(@entry $env), |s| s.$name($($arg),*)) {
                Some(Ok(h)) => h,
                _ => INVLSID,
            }
        }
    };
    (@shim void () $env:ident $name:ident ( $($cp:ident : $cty:ty),* ) = ( $($arg:expr),* )) => {
        #[doc = concat!("`", stringify!($name), "`: see [`Aix::", stringify!($name),
            "`](super::Aix::", stringify!($name), "); a refusal is logged and ignored.")]
        #[no_mangle]
        pub extern "C" fn $name($($cp: $cty),*) {
            if let Some(Err(e)) = with(stringify!($name), c_shims!(@entry $env), |s| s.$name($($arg),*)) {
                log::warn!(concat!(stringify!($name), ": {:?}; ignored"), e);
            }
        }
    };
    (@shim errno_slot () $env:ident $name:ident ( $($cp:ident : $cty:ty),* ) -> $cret:ty = ( $($arg:expr),* )) => {
        #[doc = concat!("`", stringify!($name), "`: see [`Aix::", stringify!($name),
            "`](super::Aix::", stringify!($name), "). Returns 0 on failure and records \
            the errno for [`vmm_errno`].")]
        #[no_mangle]
        pub extern "C" fn $name($($cp: $cty),*) -> $cret {
            let r = with(stringify!($name), c_shims!(@entry $env), |s| {
                let r = s.$name($($arg),*);
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
    };
    (@shim pure () $env:ident $name:ident ( $($cp:ident : $cty:ty),* ) -> $cret:ty = ( $($arg:expr),* )) => {
        #[doc = concat!("`", stringify!($name), "`: see [`", stringify!($name),
            "`](handle::", stringify!($name), "); `INVLSID` on failure. It reads no \
            state of the services, so it takes no lock.")]
        #[no_mangle]
        pub extern "C" fn $name($($cp: $cty),*) -> $cret {
            match handle::$name($($arg),*) {
                Ok(h) => h.raw(),
                Err(e) => {
                    log::warn!(concat!(stringify!($name), ": {:?}"), e);
                    INVLSID
                }
            }
        }
    };
}

/// A service's value as a C pointer.
trait IntoCPtr<T> {
    fn into_c_ptr(self) -> *mut T;
}

impl<T> IntoCPtr<T> for u64 {
    fn into_c_ptr(self) -> *mut T {
        self as *mut T
    }
}

impl<T> IntoCPtr<T> for ptr::NonNull<T> {
    fn into_c_ptr(self) -> *mut T {
        self.as_ptr()
    }
}

crate::aix_service_table!(c_shims);

/// The errno the last failed `as_att64` of the current context recorded
/// (0 if none). AIX keeps it in the u-area; this project keeps it per
/// context (process, or the kernel for kernel processes and interrupts).
#[no_mangle]
pub extern "C" fn vmm_errno() -> c_int {
    with("vmm_errno", Entry::Interrupt, |s| s.errno())
        .unwrap_or_else(|| FALLBACK_ERRNO.load(Ordering::Relaxed))
}
