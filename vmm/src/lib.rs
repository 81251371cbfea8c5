//! Portable virtual memory manager for PowerPC64 hashed page tables.
//!
//! Page and segment sizes: the memory manager proper — [`vm::Vmm`], its
//! segments ([`segment`]), address spaces ([`adspace`]), the fault path
//! ([`fault`]) and the AIX services ([`aix`]) — uses 4 KiB pages in
//! 256 MB segments only. The lower layers are more general: the HPT
//! manager ([`hpt`]), [`native::NativeHpt`] and the emulated machine
//! ([`sim`]) also handle 64 KiB pages and 1 TB segments, and the SLB
//! manager ([`slb`]) invalidates entries with their own segment size.
//!
//! # Using the manager in your kernel
//!
//! A kernel gives the manager its machine through three small traits in
//! [`platform`] — [`HptBackend`] (insert, remove, protect, read HPTEs: PAPR
//! hcalls, or [`native::NativeHpt`] over a table the kernel owns, with a
//! [`tlbie::Tlbie`]), [`SlbBackend`] (`slbmte`/`slbie`/`slbia` on the
//! executing processor) and [`FrameAllocator`] (4 KiB frames, with a count
//! of sharers for copy-on-write). It builds a [`Vmm`] over them, sends it
//! the four storage interrupts (0x300, 0x380, 0x400, 0x480: [`Vmm`] is a
//! [`FaultHandler`]), tells it what runs ([`Vmm::set_environment`]) and
//! which address space is current ([`Vmm::switch_to`]), and wraps it for
//! the AIX services ([`aix::Aix`] over [`aix::CoreVm`]).
//!
//! The example runs that sequence on the emulated machine ([`sim`]),
//! which stands in for your platform: a process attaches global memory
//! with `vm_guatt` and stores into it from problem state; the store
//! faults, the manager resolves it, and the kernel reads the value back.
//!
//! ```
//! use vmm::aix::{Aix, AddressModel, CoreVm, Space, VM_UNPRIV, VU_ANYWHERE, V_UREAD, V_WORKING};
//! use vmm::arch_ppc64::addr::EffectiveAddress;
//! use vmm::sim::{Machine, SimConfig};
//! use vmm::{Environment, Privilege, ProcessId, Vmm};
//!
//! // 1. The platform: here the emulated machine's HPT, SLB and memory.
//! let machine = Machine::new(SimConfig::default()).unwrap();
//! // 2. The manager, keeping 2 SLB entries for bolted kernel segments.
//! let vmm = Vmm::new(machine.hpt(), machine.slb(), machine.memory(), 2).unwrap();
//! // 3. The AIX services over it.
//! let mut aix = Aix::new(CoreVm::new(vmm));
//! // 4. A process: its address space, then what runs and where.
//! let pid = ProcessId(1);
//! aix.create_process(pid, AddressModel::Bits64).unwrap();
//! aix.vm_mut().set_environment(Environment::Process(pid));
//! aix.vm_mut().switch_to(Space::Process(pid)).unwrap();
//! // 5. Global memory the process may read and write through its
//! //    attachment (V_UREAD: readable with the unprivileged key).
//! let kaddr = aix.vm_galloc(V_WORKING | V_UREAD, 8192).unwrap();
//! let uaddr = aix.vm_guatt(kaddr, 4096, VM_UNPRIV, VU_ANYWHERE).unwrap();
//! // 6. The process's accesses: each segment or page fault goes to the
//! //    manager (your interrupt vectors call `FaultHandler::handle`).
//! let vm = aix.vm_mut().vmm_mut();
//! let at = EffectiveAddress::new(uaddr);
//! assert_eq!(machine.load_u64(at, Privilege::Problem, vm).unwrap(), 0);
//! // VM_UNPRIV on V_UREAD memory is read-only: the store is refused, and
//! // the kernel would kill the process with this report.
//! let fault = machine.store_u64(at, 42, Privilege::Problem, vm).unwrap_err();
//! assert_eq!(fault.reason, vmm::platform::VmFaultReason::Protection);
//! ```
//!
//! On the kernel's side of the boundary:
//!
//! * **Bolted entries.** `slb_bolted` SLB indexes are the manager's for
//!   the kernel segments it maps with [`vm::MapOptions::bolted`]; every
//!   other index is its round robin. A kernel that keeps SLB entries of its
//!   own (its linear map) puts them below the manager's: an
//!   [`SlbBackend::hardware_index_base`] above 0 shifts every index the
//!   manager uses, so those entries are never touched.
//! * **Address ranges.** Processes own the effective addresses below
//!   [`vm::KERNEL_ESID_BASE`] (EA bit 0 clear); the kernel's address space
//!   ([`vm::SpaceRef::Kernel`]) the ones above, where the AIX services put
//!   global memory (`0xF100_…`) and `vm_att` windows (`0xF200_…`). Keep the
//!   kernel's own mappings (a linear map at `0xC000_…`) out of those
//!   windows ([`aix::AixConfig`] moves them).
//! * **HPTEs.** The manager removes only entries it recorded, checked by
//!   AVPN, and evicts only entries without the software bolted bit: enter
//!   your own with it set (`0x10` in doubleword 0).
//! * **Several processors.** Each processor keeps its own
//!   [`vm::CpuMmu`] ([`Vmm::add_cpu`], run on that processor) and lends it
//!   while it holds the manager ([`Vmm::install_cpu`],
//!   [`Vmm::take_cpu`]); [`Vmm::set_shootdown`] tells the manager how to
//!   reach the others (see [`vm`], "Processors and locking").
//! * **Names of spaces and processes.** A process is your kernel's
//!   [`ProcessId`]. The core names an address space it made by its
//!   [`vm::SpaceId`] and a mapping's target by [`vm::SpaceRef`]
//!   (`Kernel`, or `User(SpaceId)`); the AIX layer names the same spaces
//!   by whose they are, [`aix::Space`] (the kernel's, or a `ProcessId`'s),
//!   and [`aix::CoreVm::space_id`] translates. Segments are
//!   [`sid::Sid`]s, segment numbers [`arch_ppc64::addr::Esid`]s; handles
//!   are [`adspace::Handle`] in the core and [`aix::VmHandle`] (AIX's
//!   `vmhandle_t`, which may name SID 0) in the services. Mappings:
//!   [`hpt::PageMapping`] (one page in the HPT), [`adspace::SegmentMapping`]
//!   (one segment in an address space), [`aix::MappingInfo`] (the same, as
//!   the services ask the core for it).
//! * **Linking on ppc64** (`powerpc64-unknown-linux-gnu`, whose prebuilt
//!   `core` and `alloc` expect a C library and an unwinder): a `no_std`
//!   kernel supplies `memcpy`, `memmove`, `memset`, `memcmp` and `bcmp`, a
//!   `#[global_allocator]` (the manager allocates its tables), a panic
//!   handler, `-C panic=abort`, and stubs that never return for
//!   `rust_eh_personality` and `_Unwind_Resume`. `kernel/src/runtime.rs`
//!   has all of them.
#![no_std]
#![warn(missing_debug_implementations)]
extern crate alloc;

/// The register, instruction and entry-format crate this one is written
/// against, so a kernel needs one dependency.
pub use arch_ppc64;

pub use platform::{
    Environment, FaultHandler, FrameAllocator, HptBackend, Interrupt, PhysMemory, Privilege,
    ProcessId, SlbBackend,
};
pub use vm::{CpuMmu, VmError, Vmm, VmmConfig};

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
