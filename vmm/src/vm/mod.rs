//! The virtual memory manager: segments, address spaces, the HPT and the
//! SLB tied together.
//!
//! [`Vmm`] owns the platform backends (HPT, SLB, frame allocator), the
//! [`SegmentTable`], the kernel's address space and one [`AddressSpace`]
//! per process, and implements [`crate::platform::FaultHandler`] (see [`fault`]).
//!
//! Effective addresses are split in two halves: ESIDs from
//! [`KERNEL_ESID_BASE`] up (EA bit 0 set, where AIX keeps its kernel heap at
//! 0xF100_…) belong to the kernel's address space, shared by every process;
//! ESIDs below belong to the current process. Protection in problem state
//! comes from the hardware rule alone (segment key × page PP): kernel
//! pages meant to be closed to processes either use PP 00 (or 110) with
//! the kernel key ([`SegKey::KERNEL`]) or are mapped through a
//! [`ViewProt::SupervisorOnly`] view. A process is given some pages of a
//! segment through a *view*: a mapping with its own VSID, a page window and
//! optionally a protection of its own (see [`crate::segment`]), so no
//! translation made for another mapping of the segment can leak into it.
//!
//! Every operation that fails returns a [`VmError`] and leaves the tables,
//! the HPT and the SLB as they were.
//!
//! The code is split by what it touches: segments (`segments.rs`),
//! address spaces (`spaces.rs`), the HPTE slots the page entries record,
//! evictions and R/C folding (`slots.rs`), copy-on-write after fork
//! (`cow.rs`), the fault path ([`fault`]), each processor's state and SLB
//! shootdown ([`cpu`]) and the consistency check (`invariants.rs`). They
//! are child modules so they share the manager's private state without
//! widening it to the crate.
//!
//! # Processors and locking
//!
//! What is private to a processor — its SLB, the manager's shadow of it
//! and its round robin, the space it runs, its [`Environment`] — is a
//! [`CpuMmu`], kept by that processor and lent to the manager while it
//! calls it ([`Vmm::install_cpu`]; a [`Vmm::new`] manager starts with
//! processor 0's installed). Segments, address spaces, the HPT, SIDs and
//! frames are shared. A mapping leaving a space reaches every processor
//! running it before the operation returns (SLB shootdown, see [`cpu`]).
//!
//! Rules every processor's path keeps, whatever the locking:
//!
//! * **One HPTE per page.** A page's HPTE is entered only with the page's
//!   record in hand, and a missing-HPTE fault on a page whose record names
//!   an entry that is there (another processor entered it after this
//!   one's table search) changes nothing: the retried access finds it.
//! * **A translation is gone everywhere before its frame is reused.** The
//!   PAPR hcalls (`H_REMOVE`, `H_BULK_REMOVE`, `H_PROTECT`) invalidate on
//!   every processor before they return; a native table's
//!   [`crate::native::TlbInvalidate`] must do the same (a broadcast
//!   `tlbie`, not `tlbiel`).
//! * **An SLB entry is gone everywhere before its SID is reused**: the
//!   shootdown runs before the mapping's segment or view is released.
//!
//! **Locking.** The manager is used under a reader–writer lock the
//! kernel keeps (the host tests: `std::sync::RwLock`).
//!
//! * **Write side: every call but one.** Structural changes (segments,
//!   spaces, mappings, fork, the AIX services), segment misses, protection
//!   faults and copy-on-write breaks take the manager by `&mut self`, with
//!   the calling processor's [`CpuMmu`] installed. A processor waiting
//!   for the write side must still take shootdown requests (spin with
//!   external interrupts enabled), since the holder may be waiting for it
//!   to apply one.
//! * **Read side: missing-HPTE faults** ([`Vmm::resolve_shared`], the
//!   `shared` module), by `&self` with the processor's own state passed
//!   in, several processors at once. Faults on different segments share
//!   nothing but the leaves; faults on one page serialize on its segment's
//!   lock, and the second finds the first's entry. Anything the read side
//!   does not serve it hands to the write side.
//!
//! Lock order, outer to inner; a path takes locks only in this order:
//!
//! 1. the manager's reader–writer lock (the kernel's);
//! 2. a segment's lock ([`crate::segment::SegmentTable::lock`]), one at a
//!    time: the record of an entry evicted by an insert is fixed after
//!    the faulting segment's lock is dropped (a view's R/C then go to its
//!    target, again one lock at a time);
//! 3. a PTEG-pair lock (striped, [`crate::hpt::HptManager::insert_shared`]),
//!    held across the search, eviction and insert;
//! 4. leaves, never held while another lock is taken: the frame allocator
//!    ([`crate::platform::SharedFrameAllocator`]), the counters (atomics).
//!
//! On the write side none of these is taken: the borrow excludes
//! everyone.

use alloc::collections::BTreeMap;
use core::fmt;
use core::ops::Range;

use arch_ppc64::addr::{EffectiveAddress, Esid, Vsid};
use arch_ppc64::structures::slb::SlbEntry;
use arch_ppc64::structures::{PageSize, SegmentSize};

use crate::adspace::{AddressSpace, AdspaceError, ForkAction, SegKey, SegmentMapping};
use crate::platform::{Environment, FrameAllocator, HptBackend, HptError, SlbBackend};
use crate::segment::{SegmentError, SegmentTable, ViewProt, PAGES_PER_SEGMENT, PAGE_SHIFT};
use crate::slb::{SlbManager, SlbManagerError};

use crate::hpt::{HptManager, HptSetupError, VirtualPage};

mod cow;
pub mod cpu;
pub mod fault;
mod invariants;
mod segments;
mod shared;
mod slots;
mod spaces;
#[cfg(test)]
mod tests;

use crate::sid::{Sid, SidAllocator, SidError};
pub use cpu::{CpuMmu, CpuSet, ShootdownRequest, SlbChange, SlbShootdown, MAX_CPUS};
use fault::FaultCounters;
pub use invariants::Invariant;
pub use shared::SharedFault;

/// First ESID of the kernel's half of the effective address space
/// (EA 0x8000_0000_0000_0000).
pub const KERNEL_ESID_BASE: u64 = 1 << 35;

/// An address space (process) created by [`Vmm::create_space`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpaceId(pub u32);

/// Names the kernel's address space or one of the user address spaces
/// (a process's, or the one kernel processes use), by the core's id. The
/// AIX layer names the same spaces by process: [`crate::aix::Space`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpaceRef {
    /// The kernel's address space (ESIDs from [`KERNEL_ESID_BASE`]).
    Kernel,
    /// A user address space (ESIDs below [`KERNEL_ESID_BASE`]).
    User(SpaceId),
}

/// How to map a segment (see [`Vmm::map`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapOptions {
    /// Ks/Kp the address space uses.
    pub key: SegKey,
    /// Segment-level no-execute (SLB N).
    pub no_exec: bool,
    /// Fork behaviour.
    pub fork: ForkAction,
    /// Only these pages are reachable (a view with its own VSID is made).
    pub window: Option<Range<u32>>,
    /// How pages reachable through the mapping are protected; anything
    /// but [`ViewProt::Segment`] makes a view, as a window does.
    pub view_prot: ViewProt,
    /// Kernel only: keep the SLB entry in a bolted index.
    pub bolted: bool,
    /// The mapping owns the segment: unmapping it deletes the segment.
    pub owned: bool,
}

impl MapOptions {
    /// Whole segment, key `key`, shared on fork, not bolted, not owned.
    pub fn new(key: SegKey) -> Self {
        MapOptions {
            key,
            no_exec: false,
            fork: ForkAction::Share,
            window: None,
            view_prot: ViewProt::Segment,
            bolted: false,
            owned: false,
        }
    }
}

/// How [`Vmm::with_config`] sets the manager up beyond its backends.
/// [`VmmConfig::new`] is what [`Vmm::new`] uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmmConfig {
    /// SLB entries kept for bolted kernel segments.
    pub slb_bolted: usize,
    /// SIDs of kernel segments and of views in the kernel half.
    pub kernel_sids: Range<u64>,
    /// SIDs of user segments and of views in process address spaces.
    pub user_sids: Range<u64>,
}

impl VmmConfig {
    /// `slb_bolted` bolted SLB entries, the default SID ranges
    /// ([`crate::sid::KERNEL_SIDS`], [`crate::sid::USER_SIDS`]).
    pub fn new(slb_bolted: usize) -> Self {
        VmmConfig {
            slb_bolted,
            kernel_sids: crate::sid::KERNEL_SIDS,
            user_sids: crate::sid::USER_SIDS,
        }
    }
}

/// Why a [`Vmm`] operation failed; every table is as it was before the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VmError {
    /// Segment table refusal.
    Segment(SegmentError),
    /// Address-space refusal.
    Adspace(AdspaceError),
    /// No such address space.
    NoSuchSpace(SpaceId),
    /// The ESID is in the other half (kernel vs process) of the address space.
    WrongHalf(Esid),
    /// Segment size of zero or above 256 MB.
    BadSize(u64),
    /// Empty window or one beyond the segment's size.
    BadWindow,
    /// Out of frames.
    NoFrames,
    /// The frame allocator refused an operation on a frame the VMM holds
    /// (a bug in one or the other).
    Frame(crate::platform::FrameError),
    /// Out of SIDs.
    NoSids,
    /// No free bolted SLB index.
    NoBoltedSlot,
    /// Bolting asked for a process mapping.
    BoltedInProcess,
    /// The SLB refused.
    Slb(SlbManagerError),
    /// The HPT refused.
    Hpt(HptError),
    /// The HPT backend cannot be managed (size).
    HptSetup(HptSetupError),
    /// The SID allocator refused.
    Sid(SidError),
    /// Already [`MAX_CPUS`] processors online.
    TooManyCpus,
    /// The address space is still running on another processor.
    SpaceRunning(SpaceId),
}

impl From<SegmentError> for VmError {
    fn from(e: SegmentError) -> Self {
        VmError::Segment(e)
    }
}
impl From<AdspaceError> for VmError {
    fn from(e: AdspaceError) -> Self {
        VmError::Adspace(e)
    }
}
impl From<SlbManagerError> for VmError {
    fn from(e: SlbManagerError) -> Self {
        VmError::Slb(e)
    }
}

impl fmt::Display for VmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmError::Segment(e) => write!(f, "{e}"),
            VmError::Adspace(e) => write!(f, "{e}"),
            VmError::NoSuchSpace(s) => write!(f, "no address space {}", s.0),
            VmError::WrongHalf(e) => write!(f, "ESID {:#x} is in the other half", e.as_u64()),
            VmError::BadSize(s) => write!(f, "bad segment size {s:#x}"),
            VmError::BadWindow => write!(f, "bad page window"),
            VmError::NoFrames => write!(f, "out of frames"),
            VmError::Frame(e) => write!(f, "frame: {e:?}"),
            VmError::NoSids => write!(f, "out of SIDs"),
            VmError::NoBoltedSlot => write!(f, "no free bolted SLB entry"),
            VmError::BoltedInProcess => write!(f, "only kernel segments can be bolted"),
            VmError::Slb(e) => write!(f, "SLB: {e:?}"),
            VmError::Hpt(e) => write!(f, "HPT: {e:?}"),
            VmError::HptSetup(e) => write!(f, "HPT setup: {e:?}"),
            VmError::Sid(e) => write!(f, "SID: {e:?}"),
            VmError::TooManyCpus => write!(f, "too many processors"),
            VmError::SpaceRunning(s) => {
                write!(f, "address space {} runs on another processor", s.0)
            }
        }
    }
}

/// The VMM over an HPT backend `H`, an SLB backend `S` and frames `F`.
pub struct Vmm<H: HptBackend, S: SlbBackend, F: FrameAllocator> {
    hpt: HptManager<H>,
    /// The installed processor ([`cpu`]): processor 0 from the start.
    local: Option<CpuMmu<S>>,
    frames: F,
    sids: SidAllocator,
    segments: SegmentTable,
    kernel: AddressSpace,
    spaces: BTreeMap<SpaceId, AddressSpace>,
    next_space: u32,
    counters: FaultCounters,
    shared_counters: shared::SharedCounters,
    /// Bolted SLB indexes per processor.
    slb_bolted: usize,
    /// The bolted kernel segments every processor loads: (index, entry).
    bolted: alloc::vec::Vec<(usize, SlbEntry)>,
    online: CpuSet,
    /// The process space each processor runs (by index; kept by
    /// [`Vmm::switch_to`] for the installed processor).
    cpu_space: [Option<SpaceId>; MAX_CPUS],
    shootdown: Option<alloc::boxed::Box<dyn SlbShootdown>>,
}

impl<H: HptBackend, S: SlbBackend, F: FrameAllocator> fmt::Debug for Vmm<H, S, F> {
    /// A summary: how much of each table is in use, which processors are
    /// online and what the installed one runs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vmm")
            .field("segments", &self.segments.len())
            .field("spaces", &self.spaces.len())
            .field("sids", &self.sids.live_count())
            .field("hpt", &self.hpt)
            .field("online", &self.online)
            .field("installed", &self.local)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl<H: HptBackend, S: SlbBackend, F: FrameAllocator> Vmm<H, S, F> {
    /// A VMM over the given backends, keeping `slb_bolted` SLB entries for
    /// bolted kernel segments.
    pub fn new(hpt: H, slb_hw: S, frames: F, slb_bolted: usize) -> Result<Self, VmError> {
        Self::with_config(hpt, slb_hw, frames, VmmConfig::new(slb_bolted))
    }

    /// A VMM over the given backends set up as `config` says: bolted SLB
    /// entries and SID ranges (small ones make SIDs recycle sooner).
    ///
    /// # Errors
    /// [`VmError::Slb`] for more bolted entries than the SLB has,
    /// [`VmError::HptSetup`] for a table size the manager refuses,
    /// [`VmError::Sid`] for empty, overlapping or out-of-range SID ranges.
    pub fn with_config(
        hpt: H,
        mut slb_hw: S,
        frames: F,
        config: VmmConfig,
    ) -> Result<Self, VmError> {
        let mut slb = SlbManager::new(slb_hw.slb_size(), config.slb_bolted)?;
        let sids = SidAllocator::with_ranges(config.kernel_sids, config.user_sids)
            .map_err(VmError::Sid)?;
        let hpt = HptManager::new(hpt).map_err(VmError::HptSetup)?;
        slb.set_hardware_index_base(slb_hw.hardware_index_base());
        // Start from an SLB without stale on-demand entries.
        slb.switch(&mut slb_hw);
        let v = Vmm {
            hpt,
            local: Some(CpuMmu {
                index: 0,
                slb_hw,
                slb,
                current: None,
                environment: Environment::KernelProcess,
            }),
            frames,
            sids,
            segments: SegmentTable::new(),
            kernel: AddressSpace::new(),
            spaces: BTreeMap::new(),
            next_space: 1,
            counters: FaultCounters::default(),
            shared_counters: shared::SharedCounters::default(),
            slb_bolted: config.slb_bolted,
            bolted: alloc::vec::Vec::new(),
            online: CpuSet::single(0),
            cpu_space: [None; MAX_CPUS],
            shootdown: None,
        };
        v.publish_slb_tables();
        Ok(v)
    }

    /// The HPT backend.
    pub fn hpt_backend(&self) -> &H {
        self.hpt.backend()
    }
    /// The installed processor's SLB backend.
    ///
    /// # Panics
    /// If no processor is installed ([`Vmm::install_cpu`]).
    pub fn slb_backend(&self) -> &S {
        &self.local().slb_hw
    }
    /// The SLB manager's view of the installed processor's SLB.
    ///
    /// # Panics
    /// If no processor is installed ([`Vmm::install_cpu`]).
    pub fn slb(&self) -> &SlbManager {
        &self.local().slb
    }
    /// The frame allocator.
    pub fn frames(&self) -> &F {
        &self.frames
    }
    /// The frame allocator, mutably (for the kernel's own frame needs).
    pub fn frames_mut(&mut self) -> &mut F {
        &mut self.frames
    }
    /// The segment table.
    pub fn segments(&self) -> &SegmentTable {
        &self.segments
    }
    /// Fault statistics; `slb_misses` includes the entries a platform's
    /// segment-miss fast path loaded on the installed processor
    /// ([`SlbManager::fast_loads`]; another processor's are in its own
    /// [`CpuMmu::slb`]).
    pub fn counters(&self) -> FaultCounters {
        let (data, instruction) = self.local.as_ref().map_or((0, 0), |c| c.slb.fast_loads());
        self.shared_counters.add_to(FaultCounters {
            slb_misses: self.counters.slb_misses + data + instruction,
            ..self.counters
        })
    }
    /// Number of SIDs in use (segments and views).
    pub fn sids_in_use(&self) -> usize {
        self.sids.live_count()
    }
    /// Number of HPTEs the VMM has in the table (slots its page records
    /// name; a sum over the segments, not for hot paths).
    pub fn hptes_in_use(&self) -> usize {
        self.segments.slot_count()
    }
    /// Tells the VMM what runs now (the kernel's interrupt entry and exit
    /// call this). In [`Environment::Interrupt`] the fault path refuses to
    /// zero-fill (that allocates, which may block: AIX makes a fault at
    /// interrupt level on pageable memory a crash) with
    /// [`crate::platform::VmFaultReason::NotAllowedHere`]; resident pages
    /// are still entered into the HPT.
    ///
    /// This is the installed processor's ([`CpuMmu::set_environment`]).
    ///
    /// # Panics
    /// If no processor is installed ([`Vmm::install_cpu`]).
    pub fn set_environment(&mut self, environment: Environment) {
        self.local_mut().environment = environment;
    }

    /// What the VMM was told runs now on the installed processor
    /// ([`Environment::KernelProcess`] if none is installed).
    pub fn environment(&self) -> Environment {
        self.local
            .as_ref()
            .map_or(Environment::KernelProcess, |c| c.environment)
    }

    /// The address space the installed processor runs, if any.
    pub fn current(&self) -> Option<SpaceId> {
        self.local.as_ref().and_then(|c| c.current)
    }
    /// The kernel's address space.
    pub fn kernel_space(&self) -> &AddressSpace {
        &self.kernel
    }
    /// A process's address space.
    pub fn space(&self, id: SpaceId) -> Result<&AddressSpace, VmError> {
        self.spaces.get(&id).ok_or(VmError::NoSuchSpace(id))
    }
    /// Every process address space.
    pub fn spaces(&self) -> impl Iterator<Item = (SpaceId, &AddressSpace)> {
        self.spaces.iter().map(|(&i, a)| (i, a))
    }
    /// The VSID the hardware uses for `sid`.
    pub fn vsid(&self, sid: Sid) -> Vsid {
        vsid_of(sid)
    }

    fn space_ref(&self, space: SpaceRef) -> Result<&AddressSpace, VmError> {
        match space {
            SpaceRef::Kernel => Ok(&self.kernel),
            SpaceRef::User(id) => self.space(id),
        }
    }

    fn space_mut(&mut self, space: SpaceRef) -> Result<&mut AddressSpace, VmError> {
        match space {
            SpaceRef::Kernel => Ok(&mut self.kernel),
            SpaceRef::User(id) => self.spaces.get_mut(&id).ok_or(VmError::NoSuchSpace(id)),
        }
    }

    /// Which address space answers for `esid` right now: the kernel's for
    /// the upper half, else the current process's.
    pub fn space_for(&self, esid: Esid) -> Option<SpaceRef> {
        if esid.as_u64() >= KERNEL_ESID_BASE {
            Some(SpaceRef::Kernel)
        } else {
            self.current().map(SpaceRef::User)
        }
    }

    /// The mapping that translates `ea` right now, if any.
    pub fn mapping_for(&self, ea: EffectiveAddress) -> Option<(SpaceRef, &SegmentMapping)> {
        let esid = ea.esid();
        let space = self.space_for(esid)?;
        self.space_ref(space).ok()?.get(esid).map(|m| (space, m))
    }

    /// The mapping at `esid` of `space`.
    pub fn mapping(&self, space: SpaceRef, esid: Esid) -> Result<&SegmentMapping, VmError> {
        self.space_ref(space)?
            .get(esid)
            .ok_or(VmError::Adspace(AdspaceError::NotMapped(esid)))
    }

    /// HPT manager statistics (inserts, evictions, ...).
    pub fn hpt_stats(&self) -> crate::hpt::HptStats {
        self.hpt.stats()
    }
}

/// The VSID the hardware uses for `sid`.
const fn vsid_of(sid: Sid) -> Vsid {
    sid.vsid()
}

/// Virtual page `page` of segment `sid` (256 MB segment, 4 KiB pages).
fn virtual_page(sid: Sid, page: u32) -> VirtualPage {
    VirtualPage::from_offset(
        sid.vsid(),
        u64::from(page) << PAGE_SHIFT,
        SegmentSize::M256,
        PageSize::K4,
    )
    .expect("SID VSIDs fit 256 MB segments and pages are below 65536")
}

/// The SLB entry translating `esid` through `mapping`.
fn slb_entry(esid: Esid, mapping: &SegmentMapping) -> SlbEntry {
    mapping.slb_entry(esid)
}

// Page indexes are `u32` and a 256 MB segment has 2^16 4 KiB pages.
const _: () = assert!(PAGES_PER_SEGMENT == 1 << 16);
