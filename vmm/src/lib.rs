//! Portable virtual memory manager for PowerPC64 hashed page tables.
#![no_std]
extern crate alloc;
