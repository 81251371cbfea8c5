//! The HPT backend under the kernel's VMM, chosen at boot: on pseries the
//! hypervisor's table through hcalls ([`PaprHpt`]); on powernv a table the
//! kernel owns in its own memory ([`NativeTable`]: `vmm::native::NativeHpt`
//! with `vmm::tlbie::Tlbie`, in the ISA 3.0 layout on POWER9/10), which the
//! MMU finds through SDR1 or the partition table
//! (`crate::platform::powernv::install_hpt`).
//!
//! One enum rather than a type parameter: the VMM's type is fixed
//! (`super::KernelVmm`), and the platform is known only at entry. Each
//! table operation pays one compare of the variant; the segment-miss fast
//! path and system calls never reach this type.

use arch_ppc64::addr::{PtegIndex, Ptex};
use arch_ppc64::structures::hpte::{Hpte, Pp};
use vmm::native::{HpteFormat, NativeHpt};
use vmm::platform::{HptBackend, HptError, RefChange, RemoveCondition, SharedHptBackend};
use vmm::tlbie::Tlbie;

use super::PaprHpt;

/// The memory of a kernel-owned HPT: RAM the kernel set aside for it for
/// the rest of the run, reached at its linear-map (kernel) address.
pub struct HptMemory {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the memory belongs to the table for the whole run; the VMM lock
// serialises every software access through the one `NativeTable` (the
// MMU's own accesses, setting R and C, are what the table's update
// protocol is built for).
unsafe impl Send for HptMemory {}

// SAFETY: shared references reach the table only on the VMM lock's read
// side, which `mm` never opens on a kernel-owned table (its
// `SHARED_FAULTS` stays off on powernv): every access goes through the
// write side, one processor at a time.
unsafe impl Sync for HptMemory {}

impl HptMemory {
    /// The `len` bytes at kernel address `ptr`.
    ///
    /// # Safety
    ///
    /// The memory is the table's alone for the rest of the run.
    pub unsafe fn new(ptr: *mut u8, len: usize) -> HptMemory {
        HptMemory { ptr, len }
    }
}

impl AsRef<[u8]> for HptMemory {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `new`'s contract: ours, `len` bytes, for the whole run.
        unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl AsMut<[u8]> for HptMemory {
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_ref`; `&mut self` makes this the only access.
        unsafe { core::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

/// The powernv table: in memory, invalidated with `tlbie`.
pub type NativeTable = NativeHpt<HptMemory, Tlbie>;

/// The table under the VMM.
pub enum KernelHpt {
    /// The hypervisor's (pseries).
    Papr(PaprHpt),
    /// The kernel's own (powernv).
    Native(NativeTable),
}

impl core::fmt::Debug for KernelHpt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            KernelHpt::Papr(h) => h.fmt(f),
            KernelHpt::Native(h) => h.fmt(f),
        }
    }
}

impl KernelHpt {
    /// A kernel-owned table over `memory` (zeroed, a power of two of at
    /// least 256 KiB), entries in `format`.
    pub fn native(memory: HptMemory, format: HpteFormat) -> KernelHpt {
        let ptegs = (memory.len / vmm::native::PTEG_BYTES) as u64;
        let table = NativeHpt::with_tlb(memory, Tlbie::new(ptegs, 0))
            .expect("HPT memory a power of two")
            .with_format(format);
        KernelHpt::Native(table)
    }

    /// `tlbie`s issued so far (0 on pseries, where the hypervisor does it).
    pub fn tlbies(&self) -> u64 {
        match self {
            KernelHpt::Papr(_) => 0,
            KernelHpt::Native(h) => h.tlb().issued(),
        }
    }
}

/// The shared fault path's calls. Only the hypervisor's table takes
/// them: `mm` turns the shared path on for pseries alone, and a
/// kernel-owned table is kept by the exclusive path (its entries are
/// written by the kernel, which would need locks of its own).
impl SharedHptBackend for KernelHpt {
    fn insert_shared(
        &self,
        group: PtegIndex,
        slot: Option<u8>,
        hpte: Hpte,
    ) -> Result<Ptex, HptError> {
        match self {
            KernelHpt::Papr(h) => h.insert_shared(group, slot, hpte),
            KernelHpt::Native(_) => unreachable!("mm: no shared faults on a kernel-owned HPT"),
        }
    }

    fn remove_shared(&self, ptex: Ptex, cond: RemoveCondition) -> Result<Hpte, HptError> {
        match self {
            KernelHpt::Papr(h) => h.remove_shared(ptex, cond),
            KernelHpt::Native(_) => unreachable!("mm: no shared faults on a kernel-owned HPT"),
        }
    }
}

impl HptBackend for KernelHpt {
    #[inline]
    fn pteg_count(&self) -> u64 {
        match self {
            KernelHpt::Papr(h) => h.pteg_count(),
            KernelHpt::Native(h) => h.pteg_count(),
        }
    }

    #[inline]
    fn insert(&mut self, group: PtegIndex, slot: Option<u8>, hpte: Hpte) -> Result<Ptex, HptError> {
        match self {
            KernelHpt::Papr(h) => h.insert(group, slot, hpte),
            KernelHpt::Native(h) => h.insert(group, slot, hpte),
        }
    }

    #[inline]
    fn remove(&mut self, ptex: Ptex, cond: RemoveCondition) -> Result<Hpte, HptError> {
        match self {
            KernelHpt::Papr(h) => h.remove(ptex, cond),
            KernelHpt::Native(h) => h.remove(ptex, cond),
        }
    }

    #[inline]
    fn protect(&mut self, ptex: Ptex, avpn: u64, pp: Pp, no_exec: bool) -> Result<(), HptError> {
        match self {
            KernelHpt::Papr(h) => h.protect(ptex, avpn, pp, no_exec),
            KernelHpt::Native(h) => h.protect(ptex, avpn, pp, no_exec),
        }
    }

    #[inline]
    fn read(&self, ptex: Ptex) -> Result<Hpte, HptError> {
        match self {
            KernelHpt::Papr(h) => h.read(ptex),
            KernelHpt::Native(h) => h.read(ptex),
        }
    }

    #[inline]
    fn read_group(&self, group: PtegIndex) -> Result<[Hpte; 8], HptError> {
        match self {
            KernelHpt::Papr(h) => h.read_group(group),
            KernelHpt::Native(h) => h.read_group(group),
        }
    }

    #[inline]
    fn known_empty_groups(&self, group: PtegIndex) -> u64 {
        match self {
            KernelHpt::Papr(h) => h.known_empty_groups(group),
            KernelHpt::Native(h) => h.known_empty_groups(group),
        }
    }

    fn remove_batch(
        &mut self,
        requests: &[(Ptex, RemoveCondition)],
    ) -> alloc::vec::Vec<Result<RefChange, HptError>> {
        match self {
            KernelHpt::Papr(h) => h.remove_batch(requests),
            KernelHpt::Native(h) => h.remove_batch(requests),
        }
    }
}
