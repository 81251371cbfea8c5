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
