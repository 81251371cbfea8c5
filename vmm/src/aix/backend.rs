//! What the AIX services need from the VMM core, as one small trait.
//!
//! The services keep AIX's bookkeeping (allocations, attachments, holds per
//! process, `adspace_t` copies, errno) themselves and ask the core only for
//! segments and mappings. [`AixVm`] names those primitives;
//! [`super::CoreVm`] implements it on the core's [`crate::vm::Vmm`], and
//! [`super::model::ModelVm`] is a small reference implementation that also
//! decides accesses by the ISA's key/PP rule, for tests.

use core::ops::Range;

use arch_ppc64::addr::Esid;

use crate::adspace::{ForkAction, SegKey};
use crate::platform::{Environment, ProcessId};
use crate::segment::{PageProt, ViewProt};
use crate::sid::Sid;

use super::consts::NSEGS;
use super::error::Shortage;
use super::segregs::{adspace_t, SegmentRegister};

/// An address space the services work on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Space {
    /// The kernel's address space: global kernel memory, the `vm_att`
    /// window, and the 16 segment registers kernel processes use.
    Kernel,
    /// A process's user address space.
    Process(ProcessId),
}

/// A segment as the services see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Size in 4 KiB pages.
    pub pages: u32,
    /// Outstanding holds (`as_geth`, `as_geth64`).
    pub holds: u32,
    /// Mappings of the segment.
    pub attaches: u32,
    /// `vms_delete` was called while held; destroyed at the last put.
    pub delete_pending: bool,
    /// The protection its pages were created with.
    pub prot: PageProt,
}

/// One mapping as the services see it (and ask for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingInfo {
    /// The segment mapped.
    pub sid: Sid,
    /// The keys the address space uses for it.
    pub key: SegKey,
    /// SLB N: no instruction fetch.
    pub no_exec: bool,
    /// Reachable pages (`None`: the whole segment).
    pub window: Option<Range<u32>>,
    /// Protection of the pages reached through this mapping.
    pub view_prot: ViewProt,
    /// Fork behaviour.
    pub fork: ForkAction,
}

impl MappingInfo {
    /// The `vmhandle_t` of this mapping: `SID << 12 | Ks | Kp | N`.
    pub fn handle_raw(&self) -> u64 {
        let mut raw = self.sid.as_u64() << super::handle::VmHandle::SID_SHIFT;
        if self.key.ks {
            raw |= super::handle::VmHandle::KS;
        }
        if self.key.kp {
            raw |= super::handle::VmHandle::KP;
        }
        if self.no_exec {
            raw |= super::handle::VmHandle::N;
        }
        raw
    }
}

/// Why a core operation failed. The core leaves its tables unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoreError {
    /// No segment with this SID.
    NoSuchSegment(Sid),
    /// No such address space.
    NoSuchSpace(Space),
    /// Something is already mapped at this ESID.
    Occupied(Esid),
    /// Nothing is mapped at this ESID.
    NotMapped(Esid),
    /// `put` without a hold.
    NotHeld(Sid),
    /// Delete of a segment that is still mapped and not held.
    Attached(Sid),
    /// The segment is already being deleted.
    DeletePending(Sid),
    /// A window outside the segment, or a bad size.
    BadRange,
    /// A resource ran out.
    Shortage(Shortage),
}

impl CoreError {
    /// The shortage to report as `ENOMEM`, for errors that can only mean
    /// the core could not do what the services had checked was valid.
    pub fn shortage(self) -> Shortage {
        match self {
            CoreError::Shortage(s) => s,
            _ => Shortage::Metadata,
        }
    }
}

pub use crate::vm::KERNEL_ESID_BASE;

/// The VMM core primitives the AIX services are built on.
///
/// Every method leaves the core unchanged when it returns an error.
pub trait AixVm {
    /// What is running now.
    fn environment(&self) -> Environment;

    /// The address space translating user addresses now (in the interrupt
    /// environment: the interrupted one).
    fn active_space(&self) -> Space;

    /// Creates a zero-filled working segment of `pages` 4 KiB pages whose
    /// pages all have protection `prot`, with a SID from the kernel range
    /// if `kernel`. Returns its SID.
    fn create_segment(
        &mut self,
        pages: u32,
        prot: PageProt,
        kernel: bool,
    ) -> Result<Sid, CoreError>;

    /// The segment `sid`, if it exists.
    fn segment(&self, sid: Sid) -> Option<SegmentInfo>;

    /// `vms_delete` on the core: destroys an unheld, unmapped segment now;
    /// marks a held one, which is destroyed at its last put once unmapped.
    fn delete_segment(&mut self, sid: Sid) -> Result<(), CoreError>;

    /// Takes a hold on `sid`.
    fn hold_segment(&mut self, sid: Sid) -> Result<(), CoreError>;

    /// Puts a hold on `sid` ([`CoreError::NotHeld`] if none).
    fn put_segment(&mut self, sid: Sid) -> Result<(), CoreError>;

    /// Whether address space `space` exists.
    fn space_exists(&self, space: Space) -> bool;

    /// Creates the (empty) user address space of `pid`.
    fn create_space(&mut self, pid: ProcessId) -> Result<(), CoreError>;

    /// Creates `child`'s address space from `parent`'s, per each mapping's
    /// [`ForkAction`].
    fn fork_space(&mut self, parent: ProcessId, child: ProcessId) -> Result<(), CoreError>;

    /// Tears down `pid`'s address space, unmapping everything left.
    fn destroy_space(&mut self, pid: ProcessId) -> Result<(), CoreError>;

    /// Maps segment `sid` at `esid` of `space` as `how` says. ESIDs from
    /// [`KERNEL_ESID_BASE`] up exist only in [`Space::Kernel`], shared by
    /// every process; ESIDs below are per process ([`Space::Kernel`]'s are
    /// those of kernel processes).
    fn map(&mut self, space: Space, esid: Esid, how: &MappingInfo) -> Result<(), CoreError>;

    /// Maps `how` at `esid` of `space` in one step, replacing whatever is
    /// mapped there (`as_seth64`); returns the mapping replaced, if any.
    /// On error the old mapping stays exactly as it was. The old mapping
    /// is released as [`AixVm::unmap`] would release it.
    fn replace(
        &mut self,
        space: Space,
        esid: Esid,
        how: &MappingInfo,
    ) -> Result<Option<MappingInfo>, CoreError>;

    /// Unmaps `esid` of `space` (and flushes its translations).
    fn unmap(&mut self, space: Space, esid: Esid) -> Result<(), CoreError>;

    /// The mapping at `esid` of `space`.
    fn mapping(&self, space: Space, esid: Esid) -> Option<MappingInfo>;

    /// Loads ESIDs 0..15 of `space` into `regs` as the 32-bit model's
    /// segment registers: each mapped one allocated with its
    /// [`MappingInfo::handle_raw`], the others free (and 0). The default
    /// asks [`AixVm::mapping`] sixteen times; a core that keeps its
    /// mappings ordered answers with one look.
    fn load_segment_registers(&self, space: Space, regs: &mut adspace_t) {
        for n in 0..NSEGS {
            let Some(sr) = SegmentRegister::new(n) else {
                continue;
            };
            match self.mapping(space, Esid::new(n as u64)) {
                Some(m) => regs.set(sr, m.handle_raw()),
                None => regs.clear(sr),
            }
        }
    }

    /// The lowest run of `count` consecutive unmapped ESIDs of `space`
    /// inside `range` (ESID numbers: its exclusive end may be 2^36, one
    /// past the last ESID), if there is one. The default probes
    /// [`AixVm::mapping`] ESID by ESID, skipping past each mapped one.
    fn free_run(&self, space: Space, range: Range<u64>, count: u64) -> Option<Esid> {
        probe_free_run(self, space, range, count)
    }
}

/// [`AixVm::free_run`] by probing [`AixVm::mapping`]: the definition the
/// faster answers of a core must agree with.
pub fn probe_free_run<V: AixVm + ?Sized>(
    vm: &V,
    space: Space,
    range: Range<u64>,
    count: u64,
) -> Option<Esid> {
    let mut start = range.start;
    while start.checked_add(count)? <= range.end {
        match (start..start + count).find(|&e| vm.mapping(space, Esid::new(e)).is_some()) {
            Some(used) => start = used + 1,
            None => return Some(Esid::new(start)),
        }
    }
    None
}
