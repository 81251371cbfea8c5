//! Portable virtual memory manager for PowerPC64 hashed page tables.
#![no_std]
extern crate alloc;

pub mod platform;
pub mod hpt;
pub mod native;
pub mod sid;
pub mod sim;

pub mod segment;
pub mod adspace;
pub mod slb;
pub mod fault;
pub mod vm;

pub mod aix;
