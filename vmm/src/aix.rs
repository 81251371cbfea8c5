//! The AIX memory services — `vm_galloc`, `vm_gfree`, `vm_guatt`,
//! `vm_gudet`, `vm_att`, `vm_det`, `vm_handle`, `vms_create`,
//! `vms_delete`, `getadsp`, `as_att`, `as_det`, `as_geth`, `as_puth`,
//! `as_getsrval` and the `as_*64` family — with AIX's documented semantics,
//! on top of this crate's segments and address spaces.
//!
//! The contract — signatures, constants, errors, and the decisions taken
//! where AIX is silent — is `docs/aix-services.md` in the repository.
//!
//! * [`Aix`] implements the services with a typed error per service
//!   ([`error`]) over an [`AixVm`] core ([`backend`]);
//! * [`model::ModelVm`] is a reference core for tests;
//! * [`table`] lists every service once; the object-safe [`AixServices`],
//!   the register form [`call`] (for a kernel's system calls) and the C
//!   exports are generated from it;
//! * with feature `c-abi`, module `cabi` exports the services with AIX's
//!   exact names and C signatures, returning AIX's values, on a global
//!   instance the embedding kernel installs; the header is
//!   `vmm/include/sys/{vmuser,adspace,seg}.h` and [`abi`] keeps the two in
//!   step.
//!
//! ```
//! use vmm::aix::model::ModelVm;
//! use vmm::aix::{AddressModel, Aix, Space, VM_UNPRIV, VU_ANYWHERE, V_UREAD, V_WORKING};
//! use vmm::platform::{Environment, Privilege, ProcessId};
//!
//! let mut aix = Aix::new(ModelVm::new());
//! let p = ProcessId(1);
//! aix.create_process(p, AddressModel::Bits64).unwrap();
//! aix.vm_mut().environment = Environment::Process(p);
//! aix.vm_mut().active = Space::Process(p);
//!
//! // Global memory the process may read but not write.
//! let k = aix.vm_galloc(V_WORKING | V_UREAD, 8192).unwrap();
//! let u = aix.vm_guatt(k, 4096, VM_UNPRIV, VU_ANYWHERE).unwrap();
//! assert_eq!(u, 0x0700_0000_0000_0000);
//! let vm = aix.vm_mut();
//! vm.store(Space::Kernel, k, Privilege::Supervisor, 7).unwrap();
//! assert_eq!(vm.load(Space::Process(p), u, Privilege::Problem), Ok(7));
//! assert!(vm.store(Space::Process(p), u, Privilege::Problem, 1).is_err());
//! // Only the attached page: the second page of the allocation faults.
//! assert!(vm.load(Space::Process(p), u + 4096, Privilege::Problem).is_err());
//! ```

pub mod abi;
pub mod backend;
#[cfg(feature = "c-abi")]
pub mod cabi;
pub mod consts;
pub mod core_vm;
pub mod ctypes;
pub mod segregs;
#[macro_use]
pub mod error;
pub mod handle;
pub mod model;
pub mod services;
pub mod table;

pub use backend::{AixVm, CoreError, MappingInfo, SegmentInfo, Space};
pub use consts::*;
pub use core_vm::CoreVm;
pub use error::*;
pub use handle::{vm_handle, IntoVmHandle, VmHandle, VmHandleError, VmKey};
pub use segregs::{adspace_t, AdSpace, SegmentRegister};
pub use services::{
    AddressModel, Aix, AixConfig, AixConfigError, Allocation, Attachment, Bookkeeping, LayoutRange,
    ProcessError, SHMAT_BASE_ESID, SHMAT_END_ESID, USER_ADDR_END_32, USER_ADDR_END_64,
};
pub use table::{call, AixServices, Service};
