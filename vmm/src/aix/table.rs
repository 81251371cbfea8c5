//! The one table of the AIX services, and what is generated from it.
//!
//! `aix_service_table!` (in this file) lists every service once: its number, its Rust
//! signature on [`Aix`] with its error type, and its C form (AIX's
//! signature and how a failure is answered). Each consumer expands the
//! table with its own macro, so the forms cannot drift apart:
//!
//! * here: [`AixServices`], the object-safe trait every [`Aix`] implements
//!   (what the C entries and an embedder's accessor hand around), and
//!   [`Service`] + [`call`], the services in registers (`u64` arguments,
//!   a `u64` value or an [`Errno`]), which a kernel's system call dispatch
//!   uses as is;
//! * [`super::abi`]: [`super::abi::C_FUNCTIONS`], the list the header test
//!   compiles against `vmm/include/sys/*.h`, type-checked against the
//!   exports;
//! * `super::cabi` (feature `c-abi`): the `#[no_mangle] extern "C"` shims.
//!
//! # Adding a service
//!
//! Three places:
//!
//! 1. the method on [`Aix`] and its error type, in the service's family
//!    module (`services/*.rs`, error beside it);
//! 2. one entry in `aix_service_table!` (in this file) (number, Rust and C signature,
//!    C failure convention);
//! 3. its prototype in `vmm/include/sys/vmuser.h` (or `adspace.h`), which
//!    `vmm/tests/aix_header.rs` checks against the table.
//!
//! The trait, its implementation, the C shim, the register dispatch and
//! the header test's list follow from the table; a kernel that serves
//! [`call`] as system calls gets the new number without a change.

use core::ffi::{c_int, c_long};
use core::ptr::NonNull;

use super::ctypes::{vmhandle_t, vmid_t, vmkey_t, vmsize_t};
use super::error::*;
use super::handle::{VmHandle, VmHandleError};
use super::segregs::adspace_t;
use super::services::Aix;
use super::AixVm;

/// Expands `$then!` over the table of the AIX services.
///
/// One entry per service:
///
/// ```text
/// NUMBER Variant interrupt|process fn name(param: RustType, ...) -> Value | Error
///     => kind(out_param) fn(c_param: CType, ...) -> CType = (rust_args...);
/// ```
///
/// * `NUMBER` is the service's number in registers ([`Service`]);
/// * `interrupt` marks the services AIX allows in the interrupt
///   environment (their C entries wait less for the lock);
/// * the Rust signature is [`Aix`]'s method without `self`;
/// * the C kind says how the shim answers: `errno` (0 or the errno),
///   `out(p)` (the value through out-pointer `p`, 0 or the errno),
///   `uaddr(p)` (as `out`, and `*p` must be NULL on entry), `null` (the
///   value as a pointer, NULL on failure), `invlsid` (the handle,
///   `INVLSID` on failure), `void` (a failure is logged), `errno_slot`
///   (0 on failure, errno kept for `vmm_errno`), `pure` (no services
///   state: called without the lock);
/// * the expressions after `=` build the Rust arguments from the C ones.
#[macro_export]
#[doc(hidden)]
macro_rules! aix_service_table {
    ($then:ident) => {
        $then! {
            16 VmGalloc process fn vm_galloc(type_flags: c_int, size: vmsize_t) -> u64 | VmGallocError
                => out(eaddr) fn(type_: c_int, size: vmsize_t, eaddr: *mut ulong) -> c_int
                = (type_, size);
            17 VmGfree process fn vm_gfree(eaddr: u64, size: vmsize_t) -> () | VmGfreeError
                => errno() fn(eaddr: ulong, size: vmsize_t) -> c_int
                = (eaddr, size);
            18 VmGuatt process fn vm_guatt(kaddr: u64, size: vmsize_t, key: vmkey_t, flags: c_long) -> u64 | VmGuattError
                => uaddr(uaddr) fn(kaddr: *mut c_void, size: vmsize_t, key: vmkey_t, flags: c_long, uaddr: *mut *mut c_void) -> c_int
                = (kaddr as u64, size, key, flags);
            19 VmGudet process fn vm_gudet(kaddr: u64, uaddr: u64, size: vmsize_t, flags: c_long) -> () | VmGudetError
                => errno() fn(kaddr: *mut c_void, uaddr: *mut c_void, size: vmsize_t, flags: c_long) -> c_int
                = (kaddr as u64, uaddr as u64, size, flags);
            20 VmAtt interrupt fn vm_att(handle: vmhandle_t, offset: u64) -> u64 | VmAttError
                => null() fn(vmhandle: vmhandle_t, offset: caddr_t) -> caddr_t
                = (vmhandle, offset as u64);
            21 VmDet interrupt fn vm_det(eaddr: u64) -> () | VmDetError
                => void() fn(eaddr: caddr_t)
                = (eaddr as u64);
            23 VmHandle interrupt fn vm_handle(vmid: vmid_t, key: vmkey_t) -> VmHandle | VmHandleError
                => pure() fn(vmid: vmid_t, key: vmkey_t) -> vmhandle_t
                = (vmid, key);
            24 Getadsp process fn getadsp() -> NonNull<adspace_t> | GetadspError
                => null() fn() -> *mut adspace_t
                = ();
            25 AsAtt process fn as_att(adsp: *const adspace_t, handle: vmhandle_t, offset: u64) -> u64 | AsAttError
                => null() fn(adsp: *mut adspace_t, vmhandle: vmhandle_t, offset: caddr_t) -> caddr_t
                = (adsp, vmhandle, offset as u64);
            26 AsDet process fn as_det(adsp: *const adspace_t, eaddr: u64) -> () | AsDetError
                => errno() fn(adsp: *mut adspace_t, eaddr: caddr_t) -> c_int
                = (adsp, eaddr as u64);
            27 AsGeth process fn as_geth(adsp: *const adspace_t, addr: u64) -> vmhandle_t | AsGethError
                => invlsid() fn(adsp: *mut adspace_t, addr: caddr_t) -> vmhandle_t
                = (adsp, addr as u64);
            28 AsPuth process fn as_puth(adsp: *const adspace_t, handle: vmhandle_t) -> () | AsPuthError
                => void() fn(adsp: *mut adspace_t, vmhandle: vmhandle_t)
                = (adsp, vmhandle);
            29 AsGetsrval interrupt fn as_getsrval(adsp: *const adspace_t, addr: u64) -> vmhandle_t | AsGethError
                => invlsid() fn(adsp: *mut adspace_t, addr: caddr_t) -> vmhandle_t
                = (adsp, addr as u64);
            30 AsAtt64 process fn as_att64(handle: vmhandle_t, offset: c_int) -> u64 | AsAtt64Error
                => errno_slot() fn(vmhandle: vmhandle_t, offset: c_int) -> c_ulonglong
                = (vmhandle, offset);
            31 AsDet64 process fn as_det64(addr64: u64) -> () | AsDet64Error
                => errno() fn(addr64: c_ulonglong) -> c_int
                = (addr64);
            32 AsSeth64 process fn as_seth64(addr64: u64, handle: vmhandle_t) -> () | AsSeth64Error
                => errno() fn(addr64: c_ulonglong, vmhandle: vmhandle_t) -> c_int
                = (addr64, vmhandle);
            33 AsGeth64 process fn as_geth64(addr64: u64) -> vmhandle_t | AsGeth64Error
                => invlsid() fn(addr64: c_ulonglong) -> vmhandle_t
                = (addr64);
            34 AsPuth64 process fn as_puth64(addr64: u64, handle: vmhandle_t) -> () | AsPuth64Error
                => errno() fn(addr64: c_ulonglong, vmhandle: vmhandle_t) -> c_int
                = (addr64, vmhandle);
            35 AsGetsrval64 interrupt fn as_getsrval64(addr64: u64) -> vmhandle_t | AsGeth64Error
                => invlsid() fn(addr64: c_ulonglong) -> vmhandle_t
                = (addr64);
            36 VmsCreate process fn vms_create(type_flags: c_int, size: vmsize_t) -> vmid_t | VmsCreateError
                => out(vmid) fn(vmid: *mut vmid_t, type_: c_int, _dev: dev_t, size: vmsize_t, _uplim: vmsize_t, _downlim: vmsize_t) -> c_int
                = (type_, size);
            37 VmsDelete process fn vms_delete(vmid: vmid_t) -> () | VmsDeleteError
                => errno() fn(vmid: vmid_t) -> c_int
                = (vmid);
        }
    };
}

/// Generates [`AixServices`], its implementation for [`Aix`], [`Service`]
/// and [`call`] from the table.
macro_rules! services_from_table {
    ($(
        $nr:literal $variant:ident $env:ident
        fn $name:ident ( $($p:ident : $pty:ty),* ) -> $ret:ty | $err:ty
        => $kind:ident ( $($out:ident)? ) fn ( $($cp:ident : $cty:ty),* ) $(-> $cret:ty)?
        = ( $($arg:expr),* );
    )*) => {
        /// The services as an object: every service of [`Aix`], whatever
        /// its core. The C entries and [`call`] work on it; an embedder's
        /// accessor (`cabi::Access`) lends one out.
        pub trait AixServices {
            /// The object itself, for an embedder that needs its concrete
            /// [`Aix`] back (switching processes, fork and exit hooks).
            fn as_any_mut(&mut self) -> &mut dyn core::any::Any;
            /// [`Aix::set_errno`].
            fn set_errno(&mut self, errno: Errno);
            /// [`Aix::errno`].
            fn errno(&self) -> c_int;
            $(
                #[doc = concat!("[`Aix::", stringify!($name), "`].")]
                fn $name(&mut self $(, $p: $pty)*) -> Result<$ret, $err>;
            )*
        }

        impl<V: AixVm + 'static> AixServices for Aix<V> {
            fn as_any_mut(&mut self) -> &mut dyn core::any::Any {
                self
            }
            fn set_errno(&mut self, errno: Errno) {
                Aix::set_errno(self, errno)
            }
            fn errno(&self) -> c_int {
                Aix::errno(self)
            }
            $(
                #[inline]
                fn $name(&mut self $(, $p: $pty)*) -> Result<$ret, $err> {
                    Aix::$name(self $(, $p)*)
                }
            )*
        }

        /// A service by its number in registers (the table's numbers; 22
        /// is left free for a kernel's own call, as are 0..=15 and 38 up).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u64)]
        pub enum Service {
            $(
                #[doc = concat!("`", stringify!($name), "`.")]
                $variant = $nr,
            )*
        }

        impl Service {
            /// Every service, in the table's order.
            pub const ALL: &'static [Service] = &[$(Service::$variant),*];

            /// The service numbered `nr`, if any.
            #[inline]
            pub const fn from_number(nr: u64) -> Option<Service> {
                match nr {
                    $( $nr => Some(Service::$variant), )*
                    _ => None,
                }
            }

            /// Its number in registers.
            pub const fn number(self) -> u64 {
                self as u64
            }

            /// Its C name.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Service::$variant => stringify!($name), )*
                }
            }

            /// Whether AIX allows it in the interrupt environment.
            pub const fn interrupt_safe(self) -> bool {
                match self {
                    $( Service::$variant => services_from_table!(@interrupt $env), )*
                }
            }
        }

        /// Runs `service` with its arguments in registers `args` (in the
        /// order of the Rust signature; a `*const adspace_t` takes no
        /// register: it is the caller's own, from [`Aix::getadsp`]), and
        /// answers its value as a `u64` (`getadsp`: the allocation mask of
        /// the `adspace_t`; a handle: its raw value; `()`: 0) or its
        /// [`Errno`]. This is the system call form of the services: a
        /// kernel maps `Err(e)` to its own error convention.
        #[inline]
        pub fn call<S: AixServices + ?Sized>(
            s: &mut S,
            service: Service,
            args: &[u64; 6],
        ) -> Result<u64, Errno> {
            #[allow(unused_mut, unused_variables)]
            let mut regs = args.iter();
            match service {
                $(
                    Service::$variant => {
                        $( let $p = <$pty as RegArg>::from_reg(s, &mut regs)?; )*
                        match s.$name($($p),*) {
                            Ok(v) => Ok(RegValue::into_reg(v)),
                            Err(e) => Err(e.errno()),
                        }
                    }
                )*
            }
        }
    };
    (@interrupt interrupt) => { true };
    (@interrupt process) => { false };
}

// The C-only columns are for the other expansions.
#[allow(unused_imports)]
use super::ctypes::{caddr_t, dev_t, ulong};
#[allow(unused_imports)]
use core::ffi::{c_ulonglong, c_void};

aix_service_table!(services_from_table);

impl<V: AixVm> Aix<V> {
    /// `vm_handle` as a method, for the table: see [`super::vm_handle`]
    /// (it reads no state of the services).
    pub fn vm_handle(&self, vmid: vmid_t, key: vmkey_t) -> Result<VmHandle, VmHandleError> {
        super::handle::vm_handle(vmid, key)
    }
}

/// An argument of [`call`], taken from the registers (or, for the
/// caller's `adspace_t`, from the services).
pub trait RegArg: Sized {
    /// The argument, consuming the registers it needs.
    ///
    /// # Errors
    ///
    /// The errno of a service call that finding the argument needed
    /// (`getadsp`).
    fn from_reg<S: AixServices + ?Sized>(
        s: &mut S,
        regs: &mut core::slice::Iter<'_, u64>,
    ) -> Result<Self, Errno>;
}

fn next(regs: &mut core::slice::Iter<'_, u64>) -> u64 {
    regs.next().copied().unwrap_or(0)
}

impl RegArg for u64 {
    fn from_reg<S: AixServices + ?Sized>(
        _: &mut S,
        regs: &mut core::slice::Iter<'_, u64>,
    ) -> Result<Self, Errno> {
        Ok(next(regs))
    }
}

impl RegArg for i64 {
    fn from_reg<S: AixServices + ?Sized>(
        _: &mut S,
        regs: &mut core::slice::Iter<'_, u64>,
    ) -> Result<Self, Errno> {
        Ok(next(regs) as i64)
    }
}

impl RegArg for i32 {
    fn from_reg<S: AixServices + ?Sized>(
        _: &mut S,
        regs: &mut core::slice::Iter<'_, u64>,
    ) -> Result<Self, Errno> {
        // The low word, as the 64-bit ELF ABI passes an `int`.
        Ok(next(regs) as i32)
    }
}

impl RegArg for *const adspace_t {
    fn from_reg<S: AixServices + ?Sized>(
        s: &mut S,
        _: &mut core::slice::Iter<'_, u64>,
    ) -> Result<Self, Errno> {
        match s.getadsp() {
            Ok(p) => Ok(p.as_ptr().cast_const()),
            Err(e) => Err(e.errno()),
        }
    }
}

/// A service's value as [`call`] answers it in a register.
pub trait RegValue {
    /// The register value.
    fn into_reg(self) -> u64;
}

impl RegValue for u64 {
    fn into_reg(self) -> u64 {
        self
    }
}

impl RegValue for i64 {
    fn into_reg(self) -> u64 {
        self as u64
    }
}

impl RegValue for () {
    fn into_reg(self) -> u64 {
        0
    }
}

impl RegValue for VmHandle {
    fn into_reg(self) -> u64 {
        self.raw()
    }
}

impl RegValue for NonNull<adspace_t> {
    fn into_reg(self) -> u64 {
        // SAFETY: `getadsp` answers a pointer into the services' own copy
        // of the caller's `adspace_t`, valid while they are borrowed, as
        // they are in `call`; it is only read.
        unsafe { self.as_ref() }.alloc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aix::model::ModelVm;
    use crate::aix::{AddressModel, Space, INVLSID, VM_PRIV, VU_ANYWHERE, V_WORKING};
    use crate::platform::{Environment, ProcessId};

    #[test]
    fn numbers_round_trip_and_are_unique() {
        for (i, s) in Service::ALL.iter().enumerate() {
            assert_eq!(Service::from_number(s.number()), Some(*s));
            assert!(Service::ALL[i + 1..].iter().all(|t| t.name() != s.name()));
        }
        // Every service has its C function and the C interface has no
        // other but vmm_errno.
        let c = crate::aix::abi::C_FUNCTIONS;
        assert!(Service::ALL
            .iter()
            .all(|s| c.iter().any(|f| f.name == s.name())));
        assert!(c
            .iter()
            .all(|f| f.name == "vmm_errno" || Service::ALL.iter().any(|s| s.name() == f.name)));
        assert_eq!(Service::from_number(22), None);
        assert_eq!(Service::from_number(15), None);
        assert_eq!(Service::from_number(38), None);
        assert!(Service::VmAtt.interrupt_safe());
        assert!(!Service::VmGalloc.interrupt_safe());
    }

    #[test]
    fn call_in_registers_matches_the_methods() {
        let mut aix = Aix::new(ModelVm::new());
        let p = ProcessId(1);
        aix.create_process(p, AddressModel::Bits64).unwrap();
        aix.vm_mut().environment = Environment::Process(p);
        aix.vm_mut().active = Space::Process(p);
        let s: &mut dyn AixServices = &mut aix;
        let k = call(s, Service::VmGalloc, &[V_WORKING as u64, 8192, 0, 0, 0, 0]).unwrap();
        let u = call(
            s,
            Service::VmGuatt,
            &[k, 4096, VM_PRIV as u64, VU_ANYWHERE as u64, 0, 0],
        )
        .unwrap();
        assert_eq!(u, 0x0700_0000_0000_0000);
        // A size of 0 is refused with EINVAL and nothing changes.
        let before = aix.bookkeeping();
        let s: &mut dyn AixServices = &mut aix;
        assert_eq!(
            call(s, Service::VmGalloc, &[V_WORKING as u64, 0, 0, 0, 0, 0]),
            Err(Errno::Inval)
        );
        assert_eq!(aix.bookkeeping(), before);
        // vm_handle answers the raw handle; a bad key is EINVAL.
        let h = call(
            &mut aix,
            Service::VmHandle,
            &[5, VM_PRIV as u64, 0, 0, 0, 0],
        )
        .unwrap();
        assert_eq!(h, super::super::vm_handle(5, VM_PRIV).unwrap().raw());
        assert_ne!(h, INVLSID);
        assert_eq!(
            call(&mut aix, Service::VmHandle, &[5, 77, 0, 0, 0, 0]),
            Err(Errno::Inval)
        );
        // getadsp answers the allocation mask: none allocated yet.
        assert_eq!(call(&mut aix, Service::Getadsp, &[0; 6]), Ok(0));
        call(
            &mut aix,
            Service::VmGudet,
            &[k, u, 4096, VU_ANYWHERE as u64, 0, 0],
        )
        .unwrap();
        call(&mut aix, Service::VmGfree, &[k, 8192, 0, 0, 0, 0]).unwrap();
        assert!(aix.allocations().next().is_none());
    }

    #[test]
    fn as_services_in_registers_use_the_callers_adspace() {
        let mut aix = Aix::new(ModelVm::new());
        let p = ProcessId(1);
        aix.create_process(p, AddressModel::Bits32).unwrap();
        aix.vm_mut().environment = Environment::Process(p);
        aix.vm_mut().active = Space::Process(p);
        let vmid = call(
            &mut aix,
            Service::VmsCreate,
            &[V_WORKING as u64, 1 << 20, 0, 0, 0, 0],
        )
        .unwrap();
        let h = call(
            &mut aix,
            Service::VmHandle,
            &[vmid, VM_PRIV as u64, 0, 0, 0, 0],
        )
        .unwrap();
        let a = call(&mut aix, Service::AsAtt, &[h, 0x1000, 0, 0, 0, 0]).unwrap();
        assert_eq!(a & 0xfff_ffff, 0x1000);
        let mask = call(&mut aix, Service::Getadsp, &[0; 6]).unwrap();
        assert_ne!(mask, 0, "as_att allocated a segment register");
        call(&mut aix, Service::AsDet, &[a, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(call(&mut aix, Service::Getadsp, &[0; 6]), Ok(0));
    }
}
