//! The C types of the AIX memory services, named as in AIX's
//! `<sys/vm_types.h>` and `<sys/types.h>` for the 64-bit kernel
//! (`docs/aix-services.md`, "Types").
//!
//! These are plain aliases so the Rust API and the C ABI take the same
//! integers; the typed views ([`VmHandle`](super::VmHandle),
//! [`VmKey`](super::VmKey), [`AdSpace`](super::AdSpace)) are built from them
//! and checked once at the service entry.
#![allow(non_camel_case_types)]

use core::ffi::{c_char, c_long, c_ulong};

/// A segment plus access key (64-bit kernel: `u_int64`). Layout in
/// [`VmHandle`](super::VmHandle).
pub type vmhandle_t = u64;
/// A virtual memory object id as `vms_create` returns it (`int64`): here
/// the segment's SID.
pub type vmid_t = i64;
/// An access key, [`VM_PRIV`](super::VM_PRIV) or
/// [`VM_UNPRIV`](super::VM_UNPRIV) (`int32long64_t`, a `long`).
pub type vmkey_t = c_long;
/// A size in bytes (`int32long64_t`, a signed `long`).
pub type vmsize_t = c_long;
/// A "core address": an effective address as a character pointer.
pub type caddr_t = *mut c_char;
/// AIX's `ulong` (`unsigned long`).
pub type ulong = c_ulong;
/// A device number (`dev_t`, 64-bit on the 64-bit kernel); `vms_create`
/// ignores it for working segments.
pub type dev_t = u64;
/// AIX's `ulong32int64_t`: the type of `adspace_t.alloc`.
pub type ulong32int64_t = u64;
