//! Processor registers: the Machine State Register and the special-purpose
//! registers (SPRs), plus typed views of the SPR values the MMU fault path
//! reads (DSISR, SRR1).
//!
//! Value types build and are tested on every host. Reading or writing the
//! registers themselves is only possible when compiling for
//! `target_arch = "powerpc64"`.

pub mod dsisr;
pub mod msr;
pub mod spr;
pub mod srr1;
