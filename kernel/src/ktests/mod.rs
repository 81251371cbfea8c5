//! Kernel tests, registered with `kernel_test!` and run by the harness.
//! Each file covers one subsystem; adding a test needs no list anywhere.

mod aix_models;
mod aix_services;
mod console;
mod devtree;
mod frames;
mod harness_checks;
mod heap;
mod measure;
mod mm_backends;
mod mm_basics;
mod mm_galloc;
mod mm_hpt;
mod mmu_faults;
mod powernv;
mod proc_basic;
mod proc_cow;
mod proc_faults;
mod proc_fuzz;
mod proc_heap;
mod proc_hpt;
mod runtime;
mod slb_fast;
mod smp;
mod smp_proc;
mod traps;

/// Skips the running test on powernv, where what it exercises does not
/// exist (`why` names it: the PAPR hcalls, RTAS, the vty).
pub(crate) fn pseries_only(why: &'static str) {
    if crate::platform::is_powernv() {
        crate::harness::skip(why);
    }
}
