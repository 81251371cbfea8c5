//! Special instructions: storage barriers, data-cache blocks, SLB
//! management, TLB invalidation, PAPR hypervisor calls and OPAL calls.
//!
//! The instruction wrappers exist only when compiling for
//! `target_arch = "powerpc64"`; the constants, error types and decoders
//! they use build everywhere so they can be tested on the host.

pub mod barrier;
pub mod cache;
pub mod hcall;
pub mod opal;
pub mod slb;
pub mod tlb;
