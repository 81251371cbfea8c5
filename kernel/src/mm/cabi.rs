//! The AIX services under their C names (`vm_galloc`, `as_att64`, ...):
//! the `vmm` crate's C entries reach the one instance behind
//! [`super::with_aix`] through [`KernelAccess`], so the C entries, Rust
//! callers and the system calls share one lock and one state, and a fault
//! taken while a C call holds the lock is reported rather than deadlocked.

use vmm::aix::cabi::{self, Access, AixServices, Entry};

/// Lends the kernel's instance to the C entries under the VMM lock.
#[derive(Debug)]
pub struct KernelAccess;

static ACCESS: KernelAccess = KernelAccess;

/// Points the C entries at [`KernelAccess`] (once, from [`super::init`]).
pub fn install() {
    if cabi::set_access(&ACCESS).is_err() {
        log::warn!("mm: the C entries had an access already; kept");
    }
}

impl Access for KernelAccess {
    fn with_services(
        &self,
        _entry: Entry,
        f: &mut dyn FnMut(&mut dyn AixServices),
    ) -> Result<(), &'static str> {
        if !super::is_initialised() {
            return Err("the VMM is not initialised");
        }
        super::with_aix(|a| f(a));
        Ok(())
    }
}
