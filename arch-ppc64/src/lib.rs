//! PowerPC64 Book III-S support: registers, instructions, PAPR hypervisor
//! calls and the MMU entry formats (HPTE, SLB entry).
//!
//! Types build and are tested on every host; the instructions themselves
//! only exist under `cfg(target_arch = "powerpc64")`, so calling hardware
//! from host code is a compile error rather than a runtime surprise.
#![no_std]

pub mod addr;
pub mod fdt;
pub mod instructions;
pub mod registers;
pub mod structures;
