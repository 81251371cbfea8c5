//! Kernel tests, registered with `kernel_test!` and run by the harness.
//! Each file covers one subsystem; adding a test needs no list anywhere.

mod console;
mod devtree;
mod frames;
mod harness_checks;
mod heap;
mod mmu_faults;
mod traps;
