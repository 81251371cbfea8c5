//! Portable virtual memory manager for PowerPC64 hashed page tables.
//!
//! Page and segment sizes: the memory manager proper — [`vm::Vmm`], its
//! segments ([`segment`]), address spaces ([`adspace`]), the fault path
//! ([`fault`]) and the AIX services ([`aix`]) — uses 4 KiB pages in
//! 256 MB segments only. The lower layers are more general: the HPT
//! manager ([`hpt`]), [`native::NativeHpt`] and the emulated machine
//! ([`sim`]) also handle 64 KiB pages and 1 TB segments, and the SLB
//! manager ([`slb`]) invalidates entries with their own segment size.
#![no_std]
extern crate alloc;

pub mod hpt;
pub mod native;
pub mod platform;
pub mod sid;
pub mod sim;

pub mod adspace;
pub mod segment;
pub mod slb;
pub mod slbtable;
pub mod tlbie;
pub mod vm;

/// The fault path lives with the manager whose state it changes
/// ([`vm::fault`]); this keeps its old path.
pub use vm::fault;

#[cfg(test)]
mod testkit;

pub mod aix;
