//! Portable virtual memory manager for PowerPC64 hashed page tables.
#![no_std]
extern crate alloc;

pub mod hpt;
pub mod native;
pub mod platform;
pub mod sid;
pub mod sim;

pub mod adspace;
pub mod fault;
pub mod segment;
pub mod slb;
pub mod vm;

pub mod aix;
