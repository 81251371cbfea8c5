//! The AIX memory services — `vm_galloc`, `vm_gfree`, `vm_guatt`,
//! `vm_gudet`, `vm_att`, `vm_det`, `vm_handle`, `vms_create`,
//! `vms_delete`, `getadsp`, `as_att`, `as_det`, `as_geth`, `as_puth`,
//! `as_getsrval` and the `as_*64` family — with AIX's documented semantics,
//! on top of this crate's segments and address spaces.
//!
//! The contract is `docs/aix-services.md`; the facts behind it are in
//! `docs/reference/aix-services-notes.md`. The Rust API returns a typed
//! error per service ([`error`]); the C ABI (feature `c-abi`, module
//! `cabi`) has AIX's exact names and signatures and returns AIX's values.

pub mod abi;
pub mod adsp;
pub mod consts;
pub mod ctypes;
pub mod error;
pub mod handle;

pub use adsp::{adspace_t, AdSpace, SegmentRegister};
pub use consts::*;
pub use error::*;
pub use handle::{vm_handle, HandleError, VmHandle, VmKey};
