//! The AIX services under their C names (`vm_galloc`, `as_att64`, ...):
//! the `vmm` crate's C interface (feature `c-abi`) works on a global
//! object; the kernel installs [`KernelServices`], which forwards every
//! call to the one instance behind [`super::with_aix`]. So the C entry
//! points and Rust callers share one lock and one state, and a fault
//! taken while a C call holds the lock is reported rather than deadlocked.

use core::ffi::{c_int, c_long};
use core::ptr::NonNull;

use vmm::aix::cabi::{self, AixServices};
use vmm::aix::ctypes::{vmhandle_t, vmid_t, vmkey_t, vmsize_t};
use vmm::aix::*;

use super::with_aix;

/// The forwarding object the C interface calls.
#[derive(Debug)]
pub struct KernelServices;

/// Installs [`KernelServices`] as the C interface's object (once, from
/// [`super::init`]).
pub fn install() {
    // A zero-sized object: leaking it allocates nothing.
    let s: &'static mut KernelServices =
        alloc::boxed::Box::leak(alloc::boxed::Box::new(KernelServices));
    cabi::install_send(s);
}

impl AixServices for KernelServices {
    fn as_any_mut(&mut self) -> &mut dyn core::any::Any {
        self
    }
    fn vm_galloc(&mut self, type_flags: c_int, size: vmsize_t) -> Result<u64, VmGallocError> {
        with_aix(|a| a.vm_galloc(type_flags, size))
    }
    fn vm_gfree(&mut self, eaddr: u64, size: vmsize_t) -> Result<(), VmGfreeError> {
        with_aix(|a| a.vm_gfree(eaddr, size))
    }
    fn vm_guatt(
        &mut self,
        kaddr: u64,
        size: vmsize_t,
        key: vmkey_t,
        flags: c_long,
    ) -> Result<u64, VmGuattError> {
        with_aix(|a| a.vm_guatt(kaddr, size, key, flags))
    }
    fn vm_gudet(
        &mut self,
        kaddr: u64,
        uaddr: u64,
        size: vmsize_t,
        flags: c_long,
    ) -> Result<(), VmGudetError> {
        with_aix(|a| a.vm_gudet(kaddr, uaddr, size, flags))
    }
    fn vm_att(&mut self, handle: vmhandle_t, offset: u64) -> Result<u64, VmAttError> {
        with_aix(|a| a.vm_att(handle, offset))
    }
    fn vm_det(&mut self, eaddr: u64) -> Result<(), VmDetError> {
        with_aix(|a| a.vm_det(eaddr))
    }
    fn vms_create(&mut self, type_flags: c_int, size: vmsize_t) -> Result<vmid_t, VmsCreateError> {
        with_aix(|a| a.vms_create(type_flags, size))
    }
    fn vms_delete(&mut self, vmid: vmid_t) -> Result<(), VmsDeleteError> {
        with_aix(|a| a.vms_delete(vmid))
    }
    fn getadsp(&mut self) -> Result<NonNull<adspace_t>, GetadspError> {
        with_aix(|a| a.getadsp())
    }
    fn as_att(
        &mut self,
        adsp: *const adspace_t,
        handle: vmhandle_t,
        offset: u64,
    ) -> Result<u64, AsAttError> {
        with_aix(|a| a.as_att(adsp, handle, offset))
    }
    fn as_det(&mut self, adsp: *const adspace_t, eaddr: u64) -> Result<(), AsDetError> {
        with_aix(|a| a.as_det(adsp, eaddr))
    }
    fn as_geth(&mut self, adsp: *const adspace_t, addr: u64) -> Result<vmhandle_t, AsGethError> {
        with_aix(|a| a.as_geth(adsp, addr))
    }
    fn as_puth(&mut self, adsp: *const adspace_t, handle: vmhandle_t) -> Result<(), AsPuthError> {
        with_aix(|a| a.as_puth(adsp, handle))
    }
    fn as_getsrval(
        &mut self,
        adsp: *const adspace_t,
        addr: u64,
    ) -> Result<vmhandle_t, AsGethError> {
        with_aix(|a| a.as_getsrval(adsp, addr))
    }
    fn as_att64(&mut self, handle: vmhandle_t, offset: c_int) -> Result<u64, AsAtt64Error> {
        with_aix(|a| a.as_att64(handle, offset))
    }
    fn as_det64(&mut self, addr64: u64) -> Result<(), AsDet64Error> {
        with_aix(|a| a.as_det64(addr64))
    }
    fn as_seth64(&mut self, addr64: u64, handle: vmhandle_t) -> Result<(), AsSeth64Error> {
        with_aix(|a| a.as_seth64(addr64, handle))
    }
    fn as_geth64(&mut self, addr64: u64) -> Result<vmhandle_t, AsGeth64Error> {
        with_aix(|a| a.as_geth64(addr64))
    }
    fn as_puth64(&mut self, addr64: u64, handle: vmhandle_t) -> Result<(), AsPuth64Error> {
        with_aix(|a| a.as_puth64(addr64, handle))
    }
    fn as_getsrval64(&mut self, addr64: u64) -> Result<vmhandle_t, AsGeth64Error> {
        with_aix(|a| a.as_getsrval64(addr64))
    }
    fn set_errno(&mut self, errno: Errno) {
        with_aix(|a| a.set_errno(errno))
    }
    fn errno(&self) -> c_int {
        with_aix(|a| a.errno())
    }
}
