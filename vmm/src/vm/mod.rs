//! The virtual memory manager: segments, address spaces, the HPT and the
//! SLB tied together.
//!
//! [`Vmm`] owns the platform backends (HPT, SLB, frame allocator), the
//! [`SegmentTable`], the kernel's address space and one [`AddressSpace`]
//! per process, and implements [`crate::platform::FaultHandler`] (see [`crate::fault`]).
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

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use arch_ppc64::addr::{EffectiveAddress, Esid, PhysAddr, PtegIndex, Ptex, Vsid};
use arch_ppc64::structures::slb::{SlbEntry, SlbFlags};
use arch_ppc64::structures::{PageSize, SegmentSize};

use crate::adspace::{AddressSpace, AdspaceError, ForkAction, Handle, Mapping, SegKey};
use crate::fault::FaultCounters;
use crate::platform::{Environment, FrameAllocator, HptBackend, HptError, RefChange, SlbBackend};
use crate::segment::{
    Disposal, PageProt, PageState, Released, SegmentError, SegmentKind, SegmentTable, ViewProt,
    PAGES_PER_SEGMENT, PAGE_SHIFT, SEGSHIFT,
};
use crate::slb::{SlbManager, SlbManagerError};

use crate::hpt::{HptManager, HptSetupError, VirtualPage};
use crate::sid::{Sid, SidAllocator, SidError, SidKind};

/// First ESID of the kernel's half of the effective address space
/// (EA 0x8000_0000_0000_0000).
pub const KERNEL_ESID_BASE: u64 = 1 << 35;

/// An address space (process) created by [`Vmm::create_space`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpaceId(pub u32);

/// Names the kernel's address space or a process's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpaceRef {
    /// The kernel's address space (ESIDs from [`KERNEL_ESID_BASE`]).
    Kernel,
    /// A process's address space (ESIDs below [`KERNEL_ESID_BASE`]).
    Process(SpaceId),
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
            VmError::NoSids => write!(f, "out of SIDs"),
            VmError::NoBoltedSlot => write!(f, "no free bolted SLB entry"),
            VmError::BoltedInProcess => write!(f, "only kernel segments can be bolted"),
            VmError::Slb(e) => write!(f, "SLB: {e:?}"),
            VmError::Hpt(e) => write!(f, "HPT: {e:?}"),
            VmError::HptSetup(e) => write!(f, "HPT setup: {e:?}"),
            VmError::Sid(e) => write!(f, "SID: {e:?}"),
        }
    }
}

/// A broken internal invariant found by [`Vmm::check_invariants`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invariant {
    /// A valid HPTE no live segment page claims.
    StrayHpte(Ptex),
    /// A recorded slot whose HPTE is invalid or translates something else.
    SlotMismatch(Ptex),
    /// An HPTE whose frame or protection differs from the page's.
    StaleHpte(Ptex),
    /// Two HPTEs for one virtual page.
    DuplicateHpte(Ptex),
    /// A segment page slot missing from the slot index.
    UnindexedSlot(Ptex),
    /// An SLB entry that no mapping explains.
    StraySlbe(usize),
    /// A mapping whose segment does not exist.
    DanglingMapping(Esid),
    /// One frame backing two pages.
    SharedFrame(PhysAddr),
}

/// The VMM over an HPT backend `H`, an SLB backend `S` and frames `F`.
pub struct Vmm<H: HptBackend, S: SlbBackend, F: FrameAllocator> {
    pub(crate) hpt: HptManager<H>,
    pub(crate) slb_hw: S,
    pub(crate) slb: SlbManager,
    pub(crate) frames: F,
    pub(crate) sids: SidAllocator,
    pub(crate) segments: SegmentTable,
    pub(crate) kernel: AddressSpace,
    pub(crate) spaces: BTreeMap<SpaceId, AddressSpace>,
    pub(crate) current: Option<SpaceId>,
    next_space: u32,
    /// Which segment page each HPTE the VMM inserted translates.
    pub(crate) slot_owner: BTreeMap<Ptex, (Sid, u32)>,
    pub(crate) counters: FaultCounters,
    pub(crate) environment: Environment,
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
        // Start from an SLB without stale on-demand entries.
        slb.switch(&mut slb_hw);
        Ok(Vmm {
            hpt,
            slb_hw,
            slb,
            frames,
            sids,
            segments: SegmentTable::new(),
            kernel: AddressSpace::new(),
            spaces: BTreeMap::new(),
            current: None,
            next_space: 1,
            slot_owner: BTreeMap::new(),
            counters: FaultCounters::default(),
            environment: Environment::KernelProcess,
        })
    }

    // --- accessors --------------------------------------------------------

    /// The HPT backend.
    pub fn hpt_backend(&self) -> &H {
        self.hpt.backend()
    }
    /// The SLB backend.
    pub fn slb_backend(&self) -> &S {
        &self.slb_hw
    }
    /// The SLB manager's view.
    pub fn slb(&self) -> &SlbManager {
        &self.slb
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
    /// Fault statistics.
    pub fn counters(&self) -> FaultCounters {
        self.counters
    }
    /// Number of SIDs in use (segments and views).
    pub fn sids_in_use(&self) -> usize {
        self.sids.live_count()
    }
    /// Number of HPTEs the VMM has in the table.
    pub fn hptes_in_use(&self) -> usize {
        self.slot_owner.len()
    }
    /// Tells the VMM what runs now (the kernel's interrupt entry and exit
    /// call this). In [`Environment::Interrupt`] the fault path refuses to
    /// zero-fill (that allocates, which may block: AIX makes a fault at
    /// interrupt level on pageable memory a crash) with
    /// [`crate::platform::VmFaultReason::NotAllowedHere`]; resident pages
    /// are still entered into the HPT.
    pub fn set_environment(&mut self, environment: Environment) {
        self.environment = environment;
    }

    /// What the VMM was told runs now.
    pub fn environment(&self) -> Environment {
        self.environment
    }

    /// The running address space, if any.
    pub fn current(&self) -> Option<SpaceId> {
        self.current
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
            SpaceRef::Process(id) => self.space(id),
        }
    }

    fn space_mut(&mut self, space: SpaceRef) -> Result<&mut AddressSpace, VmError> {
        match space {
            SpaceRef::Kernel => Ok(&mut self.kernel),
            SpaceRef::Process(id) => self.spaces.get_mut(&id).ok_or(VmError::NoSuchSpace(id)),
        }
    }

    /// Which address space answers for `esid` right now: the kernel's for
    /// the upper half, else the current process's.
    pub fn space_for(&self, esid: Esid) -> Option<SpaceRef> {
        if esid.as_u64() >= KERNEL_ESID_BASE {
            Some(SpaceRef::Kernel)
        } else {
            self.current.map(SpaceRef::Process)
        }
    }

    /// The mapping that translates `ea` right now, if any.
    pub fn mapping_for(&self, ea: EffectiveAddress) -> Option<(SpaceRef, &Mapping)> {
        let esid = ea.esid();
        let space = self.space_for(esid)?;
        self.space_ref(space).ok()?.get(esid).map(|m| (space, m))
    }

    /// The mapping at `esid` of `space`.
    pub fn mapping(&self, space: SpaceRef, esid: Esid) -> Result<&Mapping, VmError> {
        self.space_ref(space)?
            .get(esid)
            .ok_or(VmError::Adspace(AdspaceError::NotMapped(esid)))
    }

    // --- segments ---------------------------------------------------------

    /// HPT manager statistics (inserts, evictions, ...).
    pub fn hpt_stats(&self) -> crate::hpt::HptStats {
        self.hpt.stats()
    }

    /// Creates a working segment of `size` bytes (rounded up to pages,
    /// at most 256 MB) whose untouched pages get `default_prot`, with a SID
    /// from the `kind` range.
    pub fn create_segment(
        &mut self,
        kind: SidKind,
        size: u64,
        default_prot: PageProt,
    ) -> Result<Sid, VmError> {
        if size == 0 || size > 1 << SEGSHIFT {
            return Err(VmError::BadSize(size));
        }
        let pages = size.div_ceil(1 << PAGE_SHIFT) as u32;
        let sid = self.allocate_sid(kind)?;
        if let Err(e) = self.segments.create_working(sid, pages, default_prot) {
            self.free_sid(sid);
            return Err(e.into());
        }
        Ok(sid)
    }

    /// A fresh SID; when the range is used up, one sweep of the HPT makes
    /// the quarantined SIDs reusable ([`SidAllocator::release_purged`]).
    fn allocate_sid(&mut self, kind: SidKind) -> Result<Sid, VmError> {
        match self.sids.allocate(kind) {
            Ok(s) => Ok(s),
            Err(SidError::Exhausted(_)) => {
                self.sids
                    .release_purged(&mut self.hpt)
                    .map_err(VmError::Hpt)?;
                self.sids.allocate(kind).map_err(|_| VmError::NoSids)
            }
            Err(e) => Err(VmError::Sid(e)),
        }
    }

    /// Ends a SID whose every HPTE the VMM recorded has been removed (the
    /// slot index is exact: evictions are folded back as they happen), so
    /// it can vouch for the quarantine release at once.
    fn free_sid(&mut self, sid: Sid) {
        if self.sids.free(sid).is_ok() {
            let _ = self.sids.release(sid);
        }
    }

    /// `vms_delete`: a held segment is only marked (it stays usable, its
    /// mappings stay) and is destroyed at its last put; an unheld one loses
    /// every mapping in every address space and is destroyed now. Returns
    /// whether it was destroyed now.
    pub fn delete_segment(&mut self, sid: Sid) -> Result<bool, VmError> {
        let s = self.segments.get(sid)?;
        if s.kind() != &SegmentKind::Working {
            return Err(SegmentError::WrongKind(sid).into());
        }
        if s.delete_pending() {
            return Err(SegmentError::DeletePending(sid).into());
        }
        if s.hold_count() > 0 {
            let d = self.segments.delete(sid)?;
            return Ok(self.dispose(d));
        }
        self.revoke_mappings(sid)?;
        if self.segments.get(sid).is_err() {
            // An owning mapping took it along.
            return Ok(true);
        }
        let d = self.segments.delete(sid)?;
        Ok(self.dispose(d))
    }

    /// Every mapping of working segment `sid` (directly or through a view),
    /// in every address space.
    pub fn mappings_of(&self, sid: Sid) -> Vec<(SpaceRef, Esid)> {
        let kernel = self.kernel.iter().map(|(e, m)| (SpaceRef::Kernel, e, m));
        let procs = self
            .spaces
            .iter()
            .flat_map(|(&id, a)| a.iter().map(move |(e, m)| (SpaceRef::Process(id), e, m)));
        kernel
            .chain(procs)
            .filter(|(_, _, m)| m.handle.sid() == sid)
            .map(|(s, e, _)| (s, e))
            .collect()
    }

    /// Unmaps `sid` from every address space (`vm_gfree` revoking user
    /// attachments, or a deleted segment's last put).
    pub fn revoke_mappings(&mut self, sid: Sid) -> Result<usize, VmError> {
        let all = self.mappings_of(sid);
        for &(space, esid) in &all {
            self.unmap(space, esid)?;
        }
        Ok(all.len())
    }

    /// `as_geth`: a hold that blocks the segment's destruction.
    pub fn hold_segment(&mut self, sid: Sid) -> Result<u32, VmError> {
        Ok(self.segments.hold(sid)?)
    }

    /// `as_puth`: releases a hold; a put without a hold is refused. The
    /// last put of a deleted segment unmaps it everywhere and destroys it.
    /// Returns whether the segment was destroyed.
    pub fn put_segment(&mut self, sid: Sid) -> Result<bool, VmError> {
        let d = self.segments.put(sid)?;
        if self.dispose(d) {
            return Ok(true);
        }
        let s = self.segments.get(sid)?;
        if s.delete_pending() && s.hold_count() == 0 {
            self.revoke_mappings(sid)?;
            // The last detach of a deleted segment destroys it.
            return Ok(self.segments.get(sid).is_err());
        }
        Ok(false)
    }

    /// Sets the protection of pages `pages` of working segment `sid`.
    /// Translations made under the old protection are removed (here and in
    /// views that show the segment's own protection); the next access
    /// faults them back in under the new one.
    pub fn protect(&mut self, sid: Sid, pages: Range<u32>, prot: PageProt) -> Result<(), VmError> {
        if self.segments.get(sid)?.kind() != &SegmentKind::Working {
            return Err(SegmentError::WrongKind(sid).into());
        }
        let stale = self.segments.get_mut(sid)?.set_prot(pages.clone(), prot)?;
        self.drop_hptes(sid, &stale);
        let views: Vec<Sid> = self
            .segments
            .iter()
            .filter(|s| {
                matches!(s.kind(), SegmentKind::View { target, prot, .. } if *target == sid && prot.follows_segment())
            })
            .map(|s| s.sid())
            .collect();
        for v in views {
            let slots: Vec<(u32, Ptex)> = self
                .segments
                .get(v)?
                .slots()
                .filter(|(p, _)| pages.contains(p))
                .collect();
            self.drop_hptes(v, &slots);
        }
        Ok(())
    }

    /// The frame backing page `page` of `sid` (a view answers with its
    /// target's), or `None` while the page is untouched (it reads as
    /// zeroes). Touches nothing.
    pub fn page_frame(&self, sid: Sid, page: u32) -> Result<Option<PhysAddr>, VmError> {
        let s = self.segments.get(sid)?;
        let (target, page) = match s.kind() {
            SegmentKind::Working => (sid, page),
            SegmentKind::View { target, window, .. } => {
                if !window.contains(&page) {
                    return Err(SegmentError::OutOfRange { sid, page }.into());
                }
                (*target, page)
            }
        };
        Ok(match self.segments.get(target)?.page_state(page)? {
            PageState::Resident(r) => Some(r.frame),
            PageState::Untouched => None,
        })
    }

    /// Removes the HPTE at `ptex` if it is still the one recorded for page
    /// `page` of `sid`, folding its R/C into the page.
    pub(crate) fn drop_hpte(&mut self, sid: Sid, page: u32, ptex: Ptex) {
        if self.slot_owner.get(&ptex) != Some(&(sid, page)) {
            return;
        }
        self.slot_owner.remove(&ptex);
        if let Ok(Some(old)) = self.hpt.remove(ptex, virtual_page(sid, page)) {
            self.fold_rc(sid, page, RefChange::of(old));
        }
        if let Ok(s) = self.segments.get_mut(sid) {
            s.clear_slot_if(page, ptex);
        }
    }

    /// [`Vmm::drop_hpte`] for many pages of `sid`, with one batched remove
    /// (`H_BULK_REMOVE` on PAPR) instead of one hcall a page.
    fn drop_hptes(&mut self, sid: Sid, slots: &[(u32, Ptex)]) {
        let ours: Vec<(u32, Ptex)> = slots
            .iter()
            .copied()
            .filter(|(page, ptex)| self.slot_owner.get(ptex) == Some(&(sid, *page)))
            .collect();
        for (page, rc) in self.remove_hptes(sid, &ours) {
            self.fold_rc(sid, page, rc);
        }
        if let Ok(s) = self.segments.get_mut(sid) {
            for &(page, ptex) in &ours {
                s.clear_slot_if(page, ptex);
            }
        }
    }

    /// Forgets the owner records of `slots` (each checked to be `sid`'s by
    /// the caller) and removes their HPTEs in one batch. Returns the R/C of
    /// the entries that were still there; an entry already evicted or a
    /// request the backend refused leaves nothing to fold (as with
    /// [`Vmm::drop_hpte`]).
    fn remove_hptes(&mut self, sid: Sid, slots: &[(u32, Ptex)]) -> Vec<(u32, RefChange)> {
        let requests: Vec<(Ptex, VirtualPage)> = slots
            .iter()
            .map(|&(page, ptex)| {
                self.slot_owner.remove(&ptex);
                (ptex, virtual_page(sid, page))
            })
            .collect();
        let results = self.hpt.remove_many(&requests);
        slots
            .iter()
            .zip(results)
            .filter_map(|(&(page, _), r)| match r {
                Ok(Some(rc)) => Some((page, rc)),
                Ok(None) | Err(_) => None,
            })
            .collect()
    }

    /// Folds an HPTE's R/C into the page that owns the frame (a view's
    /// page folds into its target's).
    pub(crate) fn fold_rc(&mut self, sid: Sid, page: u32, rc: RefChange) {
        let target = match self.segments.get(sid).map(|s| s.kind().clone()) {
            Ok(SegmentKind::View { target, .. }) => target,
            Ok(SegmentKind::Working) => sid,
            Err(_) => return,
        };
        self.fold_rc_into(target, page, rc);
    }

    fn fold_rc_into(&mut self, working: Sid, page: u32, rc: RefChange) {
        if let Ok(s) = self.segments.get_mut(working) {
            s.fold_rc(page, rc.referenced, rc.changed);
        }
    }

    /// Releases what destroyed segments left: HPTEs, frames, SIDs.
    fn release(&mut self, r: Released) {
        let ours: Vec<(u32, Ptex)> = r
            .slots
            .iter()
            .copied()
            .filter(|(page, ptex)| self.slot_owner.get(ptex) == Some(&(r.sid, *page)))
            .collect();
        // The segment itself is gone, but a destroyed view's pages are its
        // target's, which may live on: their R/C go there.
        for (page, rc) in self.remove_hptes(r.sid, &ours) {
            if let Some(target) = r.target {
                self.fold_rc_into(target, page, rc);
            }
        }
        for f in r.frames {
            // A frame the allocator refuses would be a VMM bug (each frame
            // belongs to exactly one page); the allocator changes nothing.
            let freed = self.frames.free(f);
            debug_assert!(freed.is_ok(), "freeing {f:?}: {freed:?}");
        }
        self.free_sid(r.sid);
    }

    fn dispose(&mut self, d: Disposal) -> bool {
        match d {
            Disposal::Destroyed(r) => {
                self.release(r);
                true
            }
            Disposal::Kept => false,
        }
    }

    // --- address spaces ---------------------------------------------------

    /// Creates an empty process address space. Ids are handed out in
    /// order and wrap around after 2^32 of them, skipping ids still alive,
    /// so a long-running kernel never reuses a live space's id.
    pub fn create_space(&mut self) -> SpaceId {
        let mut id = SpaceId(self.next_space);
        while self.spaces.contains_key(&id) {
            id = SpaceId(id.0.wrapping_add(1));
        }
        self.next_space = id.0.wrapping_add(1);
        self.spaces.insert(id, AddressSpace::new());
        id
    }

    /// Maps working segment `sid` at `esid` of `space`. Returns the handle
    /// (SID and key) of the mapping.
    pub fn map(
        &mut self,
        space: SpaceRef,
        esid: Esid,
        sid: Sid,
        opts: MapOptions,
    ) -> Result<Handle, VmError> {
        // Validate everything before changing anything.
        let kernel_half = esid.as_u64() >= KERNEL_ESID_BASE;
        if kernel_half != (space == SpaceRef::Kernel) {
            return Err(VmError::WrongHalf(esid));
        }
        if opts.bolted && space != SpaceRef::Kernel {
            return Err(VmError::BoltedInProcess);
        }
        if self.space_ref(space)?.get(esid).is_some() {
            return Err(AdspaceError::Occupied(esid).into());
        }
        let seg = self.segments.get(sid)?;
        // A segment waiting for deletion (held, or orphaned but still
        // attached) stays fully usable until it is destroyed: AIX lets the
        // held handle be attached again, and fork inherits its mappings.
        if seg.kind() != &SegmentKind::Working {
            return Err(SegmentError::WrongKind(sid).into());
        }
        let size = seg.size_pages();
        if let Some(w) = &opts.window {
            if w.start >= w.end || w.end > size {
                return Err(VmError::BadWindow);
            }
        }
        let bolted_index = if opts.bolted {
            Some(
                (0..self.slb.bolted())
                    .find(|&i| self.slb.entry(i).is_none())
                    .ok_or(VmError::NoBoltedSlot)?,
            )
        } else {
            None
        };
        let view = if opts.window.is_some() || opts.view_prot != ViewProt::Segment {
            let kind = match space {
                SpaceRef::Kernel => SidKind::Kernel,
                SpaceRef::Process(_) => SidKind::User,
            };
            let view_sid = self.allocate_sid(kind)?;
            let window = opts.window.clone().unwrap_or(0..size);
            if let Err(e) = self
                .segments
                .create_view(view_sid, sid, window, opts.view_prot)
            {
                self.free_sid(view_sid);
                return Err(e.into());
            }
            Some(view_sid)
        } else {
            self.segments.attach(sid)?;
            None
        };
        let handle = Handle::new(sid, opts.key, opts.no_exec);
        let mapping = Mapping {
            handle,
            fork: opts.fork,
            window: opts.window,
            view,
            bolted: opts.bolted,
            owned: opts.owned,
        };
        let entry = slb_entry(esid, &mapping);
        self.space_mut(space)?
            .insert(esid, mapping)
            .expect("checked free above");
        if let Some(i) = bolted_index {
            if let Err(e) = self.slb.bolt(&mut self.slb_hw, i, entry) {
                // Take the mapping back; if even that fails, say so rather
                // than panic, and report the bolt failure.
                if let Err(u) = self.unmap(space, esid) {
                    log::error!("vm: undoing map of {esid:?} after a failed bolt: {u:?}");
                }
                return Err(e.into());
            }
        }
        Ok(handle)
    }

    /// Unmaps `esid` of `space`: its SLB entry goes (if loaded), a view is
    /// destroyed with its HPTEs, an owned segment is deleted.
    pub fn unmap(&mut self, space: SpaceRef, esid: Esid) -> Result<Mapping, VmError> {
        let m = self.space_mut(space)?.remove(esid)?;
        self.invalidate_slbe(space, esid);
        self.release_mapping(&m, None)?;
        Ok(m)
    }

    /// `as_seth64`: maps `sid` at `esid` of `space`, replacing whatever was
    /// mapped there (returned). If the new mapping cannot be made, the old
    /// one stays as it was.
    ///
    /// Re-setting the segment an owning mapping already maps there keeps
    /// the ownership: the new mapping owns it, so it is still deleted when
    /// that mapping goes (at exit).
    pub fn replace(
        &mut self,
        space: SpaceRef,
        esid: Esid,
        sid: Sid,
        mut opts: MapOptions,
    ) -> Result<(Handle, Option<Mapping>), VmError> {
        let old = self.space_mut(space)?.remove(esid).ok();
        opts.owned |= old
            .as_ref()
            .is_some_and(|m| m.owned && m.handle.sid() == sid);
        match self.map(space, esid, sid, opts) {
            Err(e) => {
                if let Some(m) = old {
                    self.space_mut(space)?
                        .insert(esid, m)
                        .expect("the ESID was just vacated");
                }
                Err(e)
            }
            Ok(h) => {
                if let Some(m) = &old {
                    // The old entry must go; the new one is loaded on the
                    // next miss. A bolted new mapping has already replaced
                    // it in its bolted index.
                    if !self.mapping(space, esid)?.bolted {
                        self.invalidate_slbe(space, esid);
                    }
                    self.release_mapping(m, Some(sid))?;
                }
                Ok((h, old))
            }
        }
    }

    /// Drops the SLB entry for `esid` if `space` is what the SLB holds.
    fn invalidate_slbe(&mut self, space: SpaceRef, esid: Esid) {
        let loaded_here = match space {
            SpaceRef::Kernel => true,
            SpaceRef::Process(id) => self.current == Some(id),
        };
        if loaded_here {
            self.slb.invalidate_esid(&mut self.slb_hw, esid);
        }
    }

    /// Detaches a mapping taken out of its address space: its view goes,
    /// an owned segment is orphaned, so deleted once nothing maps or holds
    /// it (unless `keep` names it: it was mapped again in its place, and
    /// the new mapping took the ownership over).
    fn release_mapping(&mut self, m: &Mapping, keep: Option<Sid>) -> Result<(), VmError> {
        let sid = m.handle.sid();
        let released = self.segments.detach(m.view.unwrap_or(sid))?;
        for r in released {
            self.release(r);
        }
        if m.owned && keep != Some(sid) && self.segments.get(sid).is_ok() {
            let d = self.segments.orphan(sid)?;
            self.dispose(d);
        }
        Ok(())
    }

    /// Makes `id` the running address space (`None`: only the kernel's).
    /// Every non-bolted SLB entry is invalidated.
    pub fn switch_to(&mut self, id: Option<SpaceId>) -> Result<(), VmError> {
        if let Some(id) = id {
            self.space(id)?;
        }
        if self.current != id {
            self.slb.switch(&mut self.slb_hw);
            self.current = id;
        }
        Ok(())
    }

    /// Tears down a process address space (exit): every mapping is
    /// unmapped, owned segments are deleted.
    pub fn destroy_space(&mut self, id: SpaceId) -> Result<(), VmError> {
        let esids: Vec<Esid> = self.space(id)?.iter().map(|(e, _)| e).collect();
        if self.current == Some(id) {
            self.switch_to(None)?;
        }
        for e in esids {
            self.unmap(SpaceRef::Process(id), e)?;
        }
        self.spaces.remove(&id);
        Ok(())
    }

    /// Clones `parent` for fork: [`ForkAction::Share`] mappings map the same
    /// segment, [`ForkAction::Copy`] mappings get an eager private copy,
    /// [`ForkAction::Drop`] mappings (`vm_guatt`) are left out. On failure
    /// the half-built child is torn down again.
    pub fn fork(&mut self, parent: SpaceId) -> Result<SpaceId, VmError> {
        let maps: Vec<(Esid, Mapping)> = self
            .space(parent)?
            .iter()
            .map(|(e, m)| (e, m.clone()))
            .collect();
        let child = self.create_space();
        for (esid, m) in maps {
            let r = self.fork_one(child, esid, &m);
            if let Err(e) = r {
                self.destroy_space(child)
                    .expect("a fresh child can always be torn down");
                return Err(e);
            }
        }
        Ok(child)
    }

    fn fork_one(&mut self, child: SpaceId, esid: Esid, m: &Mapping) -> Result<(), VmError> {
        let view_prot = match m.view {
            Some(v) => match self.segments.get(v)?.kind() {
                SegmentKind::View { prot, .. } => *prot,
                SegmentKind::Working => ViewProt::Segment,
            },
            None => ViewProt::Segment,
        };
        let mut opts = MapOptions {
            key: m.handle.key(),
            no_exec: m.handle.no_exec(),
            fork: m.fork,
            window: m.window.clone(),
            view_prot,
            bolted: false,
            owned: false,
        };
        let sid = match m.fork {
            ForkAction::Drop => return Ok(()),
            ForkAction::Share => m.handle.sid(),
            ForkAction::Copy => {
                opts.owned = true;
                self.copy_segment(m.handle.sid())?
            }
        };
        let r = self.map(SpaceRef::Process(child), esid, sid, opts);
        if r.is_err() && m.fork == ForkAction::Copy {
            let d = self.segments.orphan(sid)?;
            self.dispose(d);
        }
        r.map(|_| ())
    }

    /// A new working segment with the same size, protections and contents
    /// as `sid` (every resident page copied now).
    pub fn copy_segment(&mut self, sid: Sid) -> Result<Sid, VmError> {
        let src = self.segments.get(sid)?;
        if src.kind() != &SegmentKind::Working {
            return Err(SegmentError::WrongKind(sid).into());
        }
        let size = u64::from(src.size_pages()) << PAGE_SHIFT;
        let prot = src.default_prot();
        let overrides: Vec<(u32, PageProt)> = src.prot_overrides().collect();
        let pages: Vec<(u32, PhysAddr)> = src.resident_pages().map(|(i, r)| (i, r.frame)).collect();
        let new = self.create_segment(self.sids.kind_of(sid), size, prot)?;
        let r = self.fill_copy(new, &overrides, &pages);
        if let Err(e) = r {
            let d = self.segments.orphan(new)?;
            self.dispose(d);
            return Err(e);
        }
        Ok(new)
    }

    fn fill_copy(
        &mut self,
        new: Sid,
        overrides: &[(u32, PageProt)],
        pages: &[(u32, PhysAddr)],
    ) -> Result<(), VmError> {
        for &(page, prot) in overrides {
            self.segments.get_mut(new)?.set_prot(page..page + 1, prot)?;
        }
        for &(page, src) in pages {
            let f = self.frames.allocate().ok_or(VmError::NoFrames)?;
            if self.frames.copy(f, src).is_err() {
                let _ = self.frames.free(f);
                return Err(VmError::NoFrames);
            }
            self.segments.get_mut(new)?.make_resident(page, f)?;
        }
        Ok(())
    }

    // --- checks -----------------------------------------------------------

    /// Verifies that the HPT, the SLB and the tables agree: every valid
    /// HPTE is recorded for a live segment page and translates that page to
    /// its frame with its protection, no virtual page has two HPTEs, every
    /// SLB entry comes from a mapping, no frame backs two pages. Scans the
    /// whole HPT (tests only). HPTEs outside the VMM's VSID space (not a
    /// 256 MB segment, or a VSID no SID scrambles to) belong to whoever
    /// shares the table, such as a kernel's bolted linear map, and are
    /// left out.
    pub fn check_invariants(&self) -> Result<(), Invariant> {
        let mut seen = BTreeMap::new();
        for g in 0..self.hpt.backend().pteg_count() {
            let group = PtegIndex::new(g);
            let Ok(entries) = self.hpt.backend().read_group(group) else {
                continue;
            };
            for slot in 0..Ptex::SLOTS_PER_PTEG {
                let h = entries[slot as usize];
                let vmm_vsid = h.is_valid()
                    && h.segment_size() == Some(SegmentSize::M256)
                    && Vsid::try_new(h.avpn() >> (SEGSHIFT - 23))
                        .and_then(Sid::from_vsid)
                        .is_some();
                if !vmm_vsid {
                    continue;
                }
                let ptex = group.ptex(slot);
                let &(sid, page) = self
                    .slot_owner
                    .get(&ptex)
                    .ok_or(Invariant::StrayHpte(ptex))?;
                if seen.insert((sid, page), ptex).is_some() {
                    return Err(Invariant::DuplicateHpte(ptex));
                }
                let seg = self
                    .segments
                    .get(sid)
                    .map_err(|_| Invariant::StrayHpte(ptex))?;
                if seg.slot(page) != Some(ptex)
                    || h.avpn_word() != virtual_page(sid, page).avpn_word()
                {
                    return Err(Invariant::SlotMismatch(ptex));
                }
                let frame = self.page_frame(sid, page).ok().flatten();
                let prot = self.segments.effective_prot(sid, page).ok();
                if frame.is_none()
                    || h.real_address() != frame
                    || Some(h.pp()) != prot.map(|p| p.pp)
                    || Some(h.no_execute()) != prot.map(|p| p.no_exec)
                {
                    return Err(Invariant::StaleHpte(ptex));
                }
            }
        }
        if seen.len() != self.slot_owner.len() {
            let missing = self
                .slot_owner
                .keys()
                .find(|p| !seen.values().any(|q| q == *p))
                .copied()
                .expect("counts differ");
            return Err(Invariant::SlotMismatch(missing));
        }
        let mut frames = BTreeMap::new();
        for seg in self.segments.iter() {
            for (_, r) in seg.resident_pages() {
                if frames.insert(r.frame, ()).is_some() {
                    return Err(Invariant::SharedFrame(r.frame));
                }
            }
        }
        for seg in self.segments.iter() {
            for (page, ptex) in seg.slots() {
                if self.slot_owner.get(&ptex) != Some(&(seg.sid(), page)) {
                    return Err(Invariant::UnindexedSlot(ptex));
                }
            }
        }
        for i in 0..self.slb.size() {
            // The processor's SLB holds exactly what the manager loaded.
            let hw = self.slb_hw.read(i).map_err(|_| Invariant::StraySlbe(i))?;
            match self.slb.entry(i) {
                Some(e) if hw.is_valid() && hw == e => {}
                None if !hw.is_valid() => {}
                _ => return Err(Invariant::StraySlbe(i)),
            }
            let Some(e) = self.slb.entry(i) else { continue };
            let esid = e.esid();
            let ok = self
                .space_for(esid)
                .and_then(|s| self.space_ref(s).ok())
                .and_then(|a| a.get(esid))
                .is_some_and(|m| slb_entry(esid, m).vsid_word == e.vsid_word);
            if !ok {
                return Err(Invariant::StraySlbe(i));
            }
        }
        for a in core::iter::once(&self.kernel).chain(self.spaces.values()) {
            for (esid, m) in a.iter() {
                if self.segments.get(m.translation_sid()).is_err() {
                    return Err(Invariant::DanglingMapping(esid));
                }
            }
        }
        Ok(())
    }
}

/// The VSID the hardware uses for `sid`.
pub(crate) const fn vsid_of(sid: Sid) -> Vsid {
    sid.vsid()
}

/// Virtual page `page` of segment `sid` (256 MB segment, 4 KiB pages).
pub(crate) fn virtual_page(sid: Sid, page: u32) -> VirtualPage {
    VirtualPage::from_offset(
        sid.vsid(),
        u64::from(page) << PAGE_SHIFT,
        SegmentSize::M256,
        PageSize::K4,
    )
    .expect("SID VSIDs fit 256 MB segments and pages are below 65536")
}

/// The SLB entry translating `esid` through `mapping`.
pub(crate) fn slb_entry(esid: Esid, mapping: &Mapping) -> SlbEntry {
    SlbEntry::new(
        esid,
        vsid_of(mapping.translation_sid()),
        SegmentSize::M256,
        PageSize::K4,
        SlbFlags::from_bits_truncate(mapping.slb_flags()),
    )
    .expect("VSIDs from the scramble fit a 256 MB segment")
}

// Page indexes are `u32` and a 256 MB segment has 2^16 4 KiB pages.
const _: () = assert!(PAGES_PER_SEGMENT == 1 << 16);

#[cfg(test)]
pub(crate) mod testkit {
    //! Plain-array backends for unit tests of the object layer.
    use alloc::vec;
    use alloc::vec::Vec;

    use arch_ppc64::addr::{EffectiveAddress, PhysAddr, PtegIndex, Ptex};
    use arch_ppc64::structures::hpte::{Hpte, Pp};
    use arch_ppc64::structures::slb::SlbEntry;
    use arch_ppc64::structures::SegmentSize;

    use crate::platform::{
        FrameAllocator, FrameError, HptBackend, HptError, PhysMemory, RefChange, RemoveCondition,
        SlbBackend, SlbError,
    };

    /// An HPT as a plain array of entries.
    pub struct ArrayHpt(pub Vec<Hpte>);

    impl ArrayHpt {
        pub fn new(ptegs: usize) -> Self {
            ArrayHpt(vec![Hpte::EMPTY; ptegs * 8])
        }
        pub fn valid(&self) -> usize {
            self.0.iter().filter(|h| h.is_valid()).count()
        }
    }

    impl HptBackend for ArrayHpt {
        fn pteg_count(&self) -> u64 {
            (self.0.len() / 8) as u64
        }
        fn insert(
            &mut self,
            group: PtegIndex,
            slot: Option<u8>,
            hpte: Hpte,
        ) -> Result<Ptex, HptError> {
            if group.as_u64() >= self.pteg_count() {
                return Err(HptError::Parameter);
            }
            let slots: Vec<u8> = match slot {
                Some(s) if s < 8 => vec![s],
                Some(_) => return Err(HptError::Parameter),
                None => (0..8).collect(),
            };
            for s in slots {
                let p = group.ptex(s);
                let e = &mut self.0[p.as_u64() as usize];
                if !e.is_valid() {
                    *e = hpte;
                    return Ok(p);
                }
            }
            Err(HptError::PtegFull)
        }
        fn remove(&mut self, ptex: Ptex, cond: RemoveCondition) -> Result<Hpte, HptError> {
            let e = self
                .0
                .get_mut(ptex.as_u64() as usize)
                .ok_or(HptError::Parameter)?;
            let ok = e.is_valid()
                && match cond {
                    RemoveCondition::Absolute => true,
                    RemoveCondition::Avpn(a) => e.avpn_word() == a,
                    RemoveCondition::AndCond(m) => e.v & m == 0,
                };
            if !ok {
                return Err(HptError::NotFound);
            }
            let old = *e;
            *e = Hpte::EMPTY;
            Ok(old)
        }
        fn protect(
            &mut self,
            ptex: Ptex,
            avpn: u64,
            pp: Pp,
            no_exec: bool,
        ) -> Result<(), HptError> {
            let e = self
                .0
                .get_mut(ptex.as_u64() as usize)
                .ok_or(HptError::Parameter)?;
            if !e.is_valid() || e.avpn_word() != avpn {
                return Err(HptError::NotFound);
            }
            *e = e.with_pp(pp).with_no_execute(no_exec);
            Ok(())
        }
        fn read(&self, ptex: Ptex) -> Result<Hpte, HptError> {
            self.0
                .get(ptex.as_u64() as usize)
                .copied()
                .ok_or(HptError::Parameter)
        }
    }

    /// Wraps an HPT backend and counts how entries leave it: single
    /// removes (`H_REMOVE`) and batches (`H_BULK_REMOVE` on PAPR, with
    /// their sizes). With `store_on_insert` every entry goes in with C set,
    /// as if its page were stored to at once, so tests can follow R/C.
    pub struct CountingHpt<H> {
        pub inner: H,
        pub store_on_insert: bool,
        pub singles: usize,
        pub batches: Vec<usize>,
    }

    impl<H> CountingHpt<H> {
        pub fn new(inner: H) -> Self {
            CountingHpt {
                inner,
                store_on_insert: false,
                singles: 0,
                batches: Vec::new(),
            }
        }
    }

    impl<H: HptBackend> HptBackend for CountingHpt<H> {
        fn pteg_count(&self) -> u64 {
            self.inner.pteg_count()
        }
        fn insert(
            &mut self,
            group: PtegIndex,
            slot: Option<u8>,
            hpte: Hpte,
        ) -> Result<Ptex, HptError> {
            let hpte = if self.store_on_insert {
                hpte.with_changed(true)
            } else {
                hpte
            };
            self.inner.insert(group, slot, hpte)
        }
        fn remove(&mut self, ptex: Ptex, cond: RemoveCondition) -> Result<Hpte, HptError> {
            self.singles += 1;
            self.inner.remove(ptex, cond)
        }
        fn protect(
            &mut self,
            ptex: Ptex,
            avpn: u64,
            pp: Pp,
            no_exec: bool,
        ) -> Result<(), HptError> {
            self.inner.protect(ptex, avpn, pp, no_exec)
        }
        fn read(&self, ptex: Ptex) -> Result<Hpte, HptError> {
            self.inner.read(ptex)
        }
        fn remove_batch(
            &mut self,
            requests: &[(Ptex, RemoveCondition)],
        ) -> Vec<Result<RefChange, HptError>> {
            self.batches.push(requests.len());
            requests
                .iter()
                .map(|&(ptex, cond)| self.inner.remove(ptex, cond).map(RefChange::of))
                .collect()
        }
    }

    /// An SLB as a plain array.
    pub struct ArraySlb(pub Vec<SlbEntry>);

    impl SlbBackend for ArraySlb {
        fn slb_size(&self) -> usize {
            self.0.len()
        }
        fn load(&mut self, index: usize, entry: SlbEntry) -> Result<(), SlbError> {
            *self
                .0
                .get_mut(index)
                .ok_or(SlbError::IndexOutOfRange(index))? = entry;
            Ok(())
        }
        fn read(&self, index: usize) -> Result<SlbEntry, SlbError> {
            self.0
                .get(index)
                .copied()
                .ok_or(SlbError::IndexOutOfRange(index))
        }
        fn invalidate(&mut self, ea: EffectiveAddress, _ssize: SegmentSize) {
            for e in &mut self.0 {
                if e.matches(ea) {
                    *e = SlbEntry::INVALID;
                }
            }
        }
        fn invalidate_non_bolted(&mut self, bolted: usize) {
            for e in &mut self.0[bolted..] {
                *e = SlbEntry::INVALID;
            }
        }
    }

    /// Frames in a `Vec`, at real addresses `(i + 1) * 4096`.
    pub struct VecFrames {
        mem: Vec<u8>,
        used: Vec<bool>,
    }

    impl VecFrames {
        pub fn new(frames: usize) -> Self {
            VecFrames {
                mem: vec![0xAA; frames * 4096],
                used: vec![false; frames],
            }
        }
        fn index(&self, pa: PhysAddr) -> Result<usize, FrameError> {
            let a = pa.as_u64();
            if !a.is_multiple_of(4096) {
                return Err(FrameError::Misaligned(pa));
            }
            let i = (a / 4096)
                .checked_sub(1)
                .ok_or(FrameError::OutOfRange(pa))? as usize;
            if i >= self.used.len() {
                return Err(FrameError::OutOfRange(pa));
            }
            if !self.used[i] {
                return Err(FrameError::NotAllocated(pa));
            }
            Ok(i)
        }
    }

    impl FrameAllocator for VecFrames {
        fn allocate(&mut self) -> Option<PhysAddr> {
            let i = self.used.iter().position(|u| !u)?;
            self.used[i] = true;
            Some(PhysAddr::new((i as u64 + 1) * 4096))
        }
        fn free(&mut self, frame: PhysAddr) -> Result<(), FrameError> {
            let i = self.index(frame)?;
            self.used[i] = false;
            // Poison, so a use after free shows.
            self.mem[i * 4096..(i + 1) * 4096].fill(0xAA);
            Ok(())
        }
        fn zero(&mut self, frame: PhysAddr) -> Result<(), FrameError> {
            let i = self.index(frame)?;
            self.mem[i * 4096..(i + 1) * 4096].fill(0);
            Ok(())
        }
        fn copy(&mut self, dst: PhysAddr, src: PhysAddr) -> Result<(), FrameError> {
            let (d, s) = (self.index(dst)?, self.index(src)?);
            self.mem.copy_within(s * 4096..(s + 1) * 4096, d * 4096);
            Ok(())
        }
        fn free_frames(&self) -> usize {
            self.used.iter().filter(|u| !**u).count()
        }
    }

    impl PhysMemory for VecFrames {
        fn read(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), FrameError> {
            let a = (pa.as_u64() - 4096) as usize;
            buf.copy_from_slice(&self.mem[a..a + buf.len()]);
            Ok(())
        }
        fn write(&mut self, pa: PhysAddr, data: &[u8]) -> Result<(), FrameError> {
            let a = (pa.as_u64() - 4096) as usize;
            self.mem[a..a + data.len()].copy_from_slice(data);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::{ArrayHpt, ArraySlb, CountingHpt, VecFrames};
    use super::*;
    use crate::platform::{
        FaultHandler, FaultOutcome, Interrupt, PhysMemory, Privilege, VmFaultReason,
    };
    use alloc::vec;
    use arch_ppc64::registers::dsisr::DsisrFlags;
    use arch_ppc64::structures::hpte::{Hpte, Pp};

    type TestVmm = Vmm<ArrayHpt, ArraySlb, VecFrames>;

    const FRAMES: usize = 64;

    /// The smallest table the HPT manager takes: 2048 PTEGs.
    const PTEGS: usize = 2048;

    fn vmm() -> TestVmm {
        vmm_on(ArrayHpt::new(PTEGS))
    }

    fn vmm_on<H: HptBackend>(hpt: H) -> Vmm<H, ArraySlb, VecFrames> {
        Vmm::new(
            hpt,
            ArraySlb(vec![SlbEntry::INVALID; 8]),
            VecFrames::new(FRAMES),
            2,
        )
        .unwrap()
    }

    /// A new user working segment of `pages` pages, `USER_RW`.
    fn user_segment<H: HptBackend>(v: &mut Vmm<H, ArraySlb, VecFrames>, pages: u64) -> Sid {
        v.create_segment(SidKind::User, pages << 12, PageProt::USER_RW)
            .unwrap()
    }

    /// A new process address space with `sid` mapped at ESID `esid`,
    /// made the running one.
    fn current_space<H: HptBackend>(
        v: &mut Vmm<H, ArraySlb, VecFrames>,
        esid: u64,
        sid: Sid,
        opts: MapOptions,
    ) -> SpaceId {
        let p = v.create_space();
        v.map(SpaceRef::Process(p), Esid::new(esid), sid, opts)
            .unwrap();
        v.switch_to(Some(p)).unwrap();
        p
    }

    fn ea(esid: u64, page: u32) -> EffectiveAddress {
        EffectiveAddress::new((esid << 28) | (u64::from(page) << 12) | 0x18)
    }

    /// What the MMU would raise for an access with no SLB entry, then for
    /// one with no HPTE: segment interrupt first, then DSI.
    fn touch<H: HptBackend>(
        v: &mut Vmm<H, ArraySlb, VecFrames>,
        ea: EffectiveAddress,
        store: bool,
        pr: Privilege,
    ) -> Result<(), VmFaultReason> {
        if v.slb().lookup(ea.esid()).is_none() {
            v.resolve(Interrupt::DataSegment { ea }, pr)?;
        }
        let bits = 0x4000_0000 | if store { 0x0200_0000 } else { 0 };
        v.resolve(
            Interrupt::DataStorage {
                ea,
                dsisr: DsisrFlags::from_dsisr(bits),
            },
            pr,
        )
    }

    fn hpte_of(v: &TestVmm, sid: Sid, page: u32) -> Hpte {
        let ptex = v.segments().get(sid).unwrap().slot(page).expect("slot");
        v.hpt_backend().read(ptex).unwrap()
    }

    fn empty(v: &TestVmm) {
        assert_eq!(v.frames().free_frames(), FRAMES, "frames leaked");
        assert_eq!(v.sids_in_use(), 0, "SIDs leaked");
        assert_eq!(v.hptes_in_use(), 0, "HPTEs leaked");
        assert_eq!(v.hpt_backend().valid(), 0, "valid HPTEs left");
        assert!(v.segments().is_empty());
    }

    #[test]
    fn first_touch_zero_fills_and_inserts_an_hpte() {
        let mut v = vmm();
        let sid = user_segment(&mut v, 3);
        let p = current_space(&mut v, 1, sid, MapOptions::new(SegKey::UNPRIV));
        touch(&mut v, ea(1, 2), true, Privilege::Problem).unwrap();
        let c = v.counters();
        assert_eq!(
            (c.slb_misses, c.zero_fills, c.hpt_faults_resolved),
            (1, 1, 1)
        );
        assert_eq!(v.frames().free_frames(), FRAMES - 1);
        let frame = v.page_frame(sid, 2).unwrap().unwrap();
        let h = hpte_of(&v, sid, 2);
        assert_eq!(h.real_address(), Some(frame));
        assert_eq!(h.pp(), Pp::RW_RW);
        let mut buf = [0xFFu8; 4096];
        v.frames().read(frame, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0), "page not zero-filled");
        // A second miss on the same page (entry lost) reuses the frame and
        // leaves one entry.
        touch(&mut v, ea(1, 2), false, Privilege::Problem).unwrap();
        assert_eq!(v.counters().zero_fills, 1);
        assert_eq!(v.hptes_in_use(), 1);
        assert_eq!(v.hpt_backend().valid(), 1);
        v.check_invariants().unwrap();
        v.destroy_space(p).unwrap();
        v.delete_segment(sid).unwrap();
        empty(&v);
    }

    #[test]
    fn refused_faults_change_nothing() {
        let mut v = vmm();
        let sid = user_segment(&mut v, 3);
        current_space(&mut v, 1, sid, MapOptions::new(SegKey::UNPRIV));
        assert_eq!(
            touch(&mut v, ea(1, 3), false, Privilege::Problem),
            Err(VmFaultReason::OutOfRange)
        );
        assert_eq!(
            touch(&mut v, ea(2, 0), false, Privilege::Problem),
            Err(VmFaultReason::NoSegment)
        );
        // Kernel half with nothing mapped.
        assert_eq!(
            touch(
                &mut v,
                ea(KERNEL_ESID_BASE + 5, 0),
                false,
                Privilege::Supervisor
            ),
            Err(VmFaultReason::NoSegment)
        );
        assert_eq!(v.frames().free_frames(), FRAMES);
        assert_eq!(v.hptes_in_use(), 0);
        let out = v.handle(Interrupt::DataSegment { ea: ea(2, 0) }, Privilege::Problem);
        assert!(matches!(out, FaultOutcome::Fault(f) if f.reason == VmFaultReason::NoSegment));
        assert_eq!(v.counters().faults_refused, 1);
        // With no current process, the lower half has no segments at all.
        v.switch_to(None).unwrap();
        assert_eq!(
            touch(&mut v, ea(1, 0), false, Privilege::Problem),
            Err(VmFaultReason::NoSegment)
        );
        v.check_invariants().unwrap();
    }

    #[test]
    fn kernel_pages_are_closed_to_problem_state_and_views_open_a_window() {
        let mut v = vmm();
        let k = v
            .create_segment(SidKind::Kernel, 4 * 4096, PageProt::KERNEL_RW)
            .unwrap();
        let kesid = Esid::new(KERNEL_ESID_BASE + 0x100);
        v.map(SpaceRef::Kernel, kesid, k, MapOptions::new(SegKey::KERNEL))
            .unwrap();
        touch(&mut v, ea(kesid.as_u64(), 1), true, Privilege::Supervisor).unwrap();
        assert_eq!(
            touch(&mut v, ea(kesid.as_u64(), 1), false, Privilege::Problem),
            Err(VmFaultReason::Protection)
        );
        // A process gets page 1 read-only through a view.
        let p = v.create_space();
        let mut o = MapOptions::new(SegKey::UNPRIV);
        o.window = Some(1..2);
        o.view_prot = ViewProt::Fixed(PageProt {
            pp: Pp::RW_RO,
            no_exec: true,
        });
        o.fork = ForkAction::Drop;
        let h = v.map(SpaceRef::Process(p), Esid::new(7), k, o).unwrap();
        assert_eq!(h.sid(), k);
        v.switch_to(Some(p)).unwrap();
        touch(&mut v, ea(7, 1), false, Privilege::Problem).unwrap();
        assert_eq!(
            touch(&mut v, ea(7, 1), true, Privilege::Problem),
            Err(VmFaultReason::Protection)
        );
        assert_eq!(
            touch(&mut v, ea(7, 0), false, Privilege::Problem),
            Err(VmFaultReason::OutOfRange)
        );
        assert_eq!(
            touch(&mut v, ea(7, 2), false, Privilege::Problem),
            Err(VmFaultReason::OutOfRange)
        );
        // Same frame, different VSIDs: two entries for two virtual pages.
        let view = v.space(p).unwrap().get(Esid::new(7)).unwrap().view.unwrap();
        assert_ne!(view, k);
        assert_eq!(
            hpte_of(&v, view, 1).real_address(),
            hpte_of(&v, k, 1).real_address()
        );
        assert_eq!(hpte_of(&v, view, 1).pp(), Pp::RW_RO);
        assert_eq!(v.hptes_in_use(), 2);
        v.check_invariants().unwrap();
        // Fork drops the view; exit removes it and its entry.
        let c = v.fork(p).unwrap();
        assert!(v.space(c).unwrap().is_empty());
        v.destroy_space(c).unwrap();
        v.destroy_space(p).unwrap();
        assert_eq!(v.hptes_in_use(), 1);
        assert_eq!(v.sids_in_use(), 1);
        v.check_invariants().unwrap();
        v.unmap(SpaceRef::Kernel, kesid).unwrap();
        v.delete_segment(k).unwrap();
        empty(&v);
    }

    #[test]
    fn eviction_folds_reference_bits_and_keeps_one_entry_per_page() {
        let mut v = vmm();
        let sid = user_segment(&mut v, 1 << 16);
        let p = current_space(&mut v, 3, sid, MapOptions::new(SegKey::PRIV));
        // Pages 2048 apart share their primary and secondary PTEG (the hash
        // is VSID ^ page number, masked to 11 bits): 16 slots for 20 pages.
        let pages: Vec<u32> = (0..20).map(|k| 5 + k * PTEGS as u32).collect();
        for &page in &pages {
            touch(&mut v, ea(3, page), true, Privilege::Problem).unwrap();
            v.check_invariants().unwrap();
        }
        assert_eq!(v.counters().evictions, 4);
        assert_eq!(v.hptes_in_use(), 16);
        assert_eq!(v.hpt_backend().valid(), 16);
        let seg = v.segments().get(sid).unwrap();
        assert_eq!(seg.resident_pages().count(), 20);
        assert_eq!(seg.slots().count(), 16);
        // Evicted pages kept their frame and got R folded in (insertion sets R).
        let evicted = *pages.iter().find(|&&pg| seg.slot(pg).is_none()).unwrap();
        match seg.page_state(evicted).unwrap() {
            PageState::Resident(r) => assert!(r.referenced),
            PageState::Untouched => panic!("evicted page lost its frame"),
        }
        // Touching it again brings it back without a new zero-fill.
        let fills = v.counters().zero_fills;
        touch(&mut v, ea(3, evicted), false, Privilege::Problem).unwrap();
        assert_eq!(v.counters().zero_fills, fills);
        assert_eq!(v.counters().evictions, 5);
        v.check_invariants().unwrap();
        v.destroy_space(p).unwrap();
        v.delete_segment(sid).unwrap();
        empty(&v);
    }

    #[test]
    fn held_segments_outlive_delete_until_the_last_put() {
        let mut v = vmm();
        let sid = user_segment(&mut v, 1);
        let mut o = MapOptions::new(SegKey::PRIV);
        o.owned = true;
        let p = current_space(&mut v, 1, sid, o);
        touch(&mut v, ea(1, 0), true, Privilege::Problem).unwrap();
        assert_eq!(
            v.put_segment(sid),
            Err(VmError::Segment(SegmentError::NotHeld(sid)))
        );
        v.hold_segment(sid).unwrap();
        // Held: deletion is deferred, the segment stays usable.
        assert_eq!(v.delete_segment(sid), Ok(false));
        touch(&mut v, ea(1, 0), false, Privilege::Problem).unwrap();
        // Exit: the owned segment is deleted, but the hold keeps it.
        v.destroy_space(p).unwrap();
        assert_eq!(v.sids_in_use(), 1);
        assert_eq!(v.frames().free_frames(), FRAMES - 1);
        assert_eq!(v.put_segment(sid), Ok(true));
        empty(&v);
    }

    #[test]
    fn fork_shares_copies_and_drops() {
        let mut v = vmm();
        let shared = user_segment(&mut v, 1);
        let private = user_segment(&mut v, 2);
        let guatt = user_segment(&mut v, 1);
        let p = v.create_space();
        let sp = SpaceRef::Process(p);
        v.map(sp, Esid::new(1), shared, MapOptions::new(SegKey::PRIV))
            .unwrap();
        let mut o = MapOptions::new(SegKey::PRIV);
        o.fork = ForkAction::Copy;
        o.owned = true;
        v.map(sp, Esid::new(2), private, o).unwrap();
        let mut o = MapOptions::new(SegKey::PRIV);
        o.fork = ForkAction::Drop;
        v.map(sp, Esid::new(3), guatt, o).unwrap();
        v.switch_to(Some(p)).unwrap();
        touch(&mut v, ea(2, 1), true, Privilege::Problem).unwrap();
        let pf = v.page_frame(private, 1).unwrap().unwrap();
        v.frames_mut().write(pf, &[0x5A; 16]).unwrap();

        let c = v.fork(p).unwrap();
        let cs = v.space(c).unwrap();
        assert_eq!(cs.len(), 2);
        assert_eq!(cs.get(Esid::new(1)).unwrap().handle.sid(), shared);
        let copy = cs.get(Esid::new(2)).unwrap().handle.sid();
        assert!(cs.get(Esid::new(2)).unwrap().owned);
        assert!(cs.get(Esid::new(3)).is_none());
        assert_ne!(copy, private);
        let cf = v.page_frame(copy, 1).unwrap().unwrap();
        assert_ne!(cf, pf);
        let mut buf = [0u8; 16];
        v.frames().read(cf, &mut buf).unwrap();
        assert_eq!(buf, [0x5A; 16]);
        assert_eq!(v.page_frame(copy, 0).unwrap(), None);
        assert_eq!(v.segments().get(shared).unwrap().attach_count(), 2);
        v.check_invariants().unwrap();

        v.destroy_space(c).unwrap();
        assert!(v.segments().get(copy).is_err(), "child's copy not deleted");
        v.destroy_space(p).unwrap();
        assert!(v.segments().get(private).is_err());
        v.delete_segment(shared).unwrap();
        v.delete_segment(guatt).unwrap();
        empty(&v);
    }

    #[test]
    fn fork_out_of_frames_leaves_no_child_behind() {
        let mut v = Vmm::new(
            ArrayHpt::new(PTEGS),
            ArraySlb(vec![SlbEntry::INVALID; 8]),
            VecFrames::new(3),
            2,
        )
        .unwrap();
        let sid = user_segment(&mut v, 4);
        let mut o = MapOptions::new(SegKey::PRIV);
        o.fork = ForkAction::Copy;
        let p = current_space(&mut v, 1, sid, o);
        for page in 0..2 {
            let e = ea(1, page);
            v.resolve(Interrupt::DataSegment { ea: e }, Privilege::Problem)
                .ok();
            v.resolve(
                Interrupt::DataStorage {
                    ea: e,
                    dsisr: DsisrFlags::from_dsisr(0x4200_0000),
                },
                Privilege::Problem,
            )
            .unwrap();
        }
        let sids = v.sids_in_use();
        assert_eq!(v.fork(p), Err(VmError::NoFrames));
        assert_eq!(v.spaces().count(), 1);
        assert_eq!(v.sids_in_use(), sids);
        assert_eq!(v.frames().free_frames(), 1);
        v.check_invariants().unwrap();
    }

    #[test]
    fn protect_drops_stale_translations() {
        let mut v = vmm();
        let sid = user_segment(&mut v, 2);
        let p = v.create_space();
        v.map(
            SpaceRef::Process(p),
            Esid::new(1),
            sid,
            MapOptions::new(SegKey::UNPRIV),
        )
        .unwrap();
        // A view showing the segment's own protection is affected too.
        let mut o = MapOptions::new(SegKey::UNPRIV);
        o.window = Some(0..2);
        v.map(SpaceRef::Process(p), Esid::new(2), sid, o).unwrap();
        v.switch_to(Some(p)).unwrap();
        touch(&mut v, ea(1, 0), true, Privilege::Problem).unwrap();
        touch(&mut v, ea(2, 0), true, Privilege::Problem).unwrap();
        assert_eq!(v.hptes_in_use(), 2);
        let ro = PageProt {
            pp: Pp::RO_RO,
            no_exec: false,
        };
        assert!(v.protect(sid, 1..3, ro).is_err());
        assert_eq!(v.hptes_in_use(), 2);
        v.protect(sid, 0..1, ro).unwrap();
        assert_eq!(v.hptes_in_use(), 0);
        assert_eq!(
            touch(&mut v, ea(1, 0), true, Privilege::Problem),
            Err(VmFaultReason::Protection)
        );
        assert_eq!(
            touch(&mut v, ea(2, 0), true, Privilege::Problem),
            Err(VmFaultReason::Protection)
        );
        touch(&mut v, ea(1, 0), false, Privilege::Problem).unwrap();
        assert_eq!(hpte_of(&v, sid, 0).pp(), Pp::RO_RO);
        v.check_invariants().unwrap();
    }

    #[test]
    fn bolted_kernel_segments_survive_switches() {
        let mut v = vmm();
        let k = v
            .create_segment(SidKind::Kernel, 4096, PageProt::KERNEL_RW)
            .unwrap();
        let kesid = Esid::new(KERNEL_ESID_BASE);
        let mut o = MapOptions::new(SegKey::KERNEL);
        o.bolted = true;
        v.map(SpaceRef::Kernel, kesid, k, o.clone()).unwrap();
        assert_eq!(v.slb().lookup(kesid), Some(0));
        let p = v.create_space();
        let q = v.create_space();
        let u = user_segment(&mut v, 1);
        assert_eq!(
            v.map(SpaceRef::Process(p), Esid::new(1), u, o.clone()),
            Err(VmError::BoltedInProcess)
        );
        assert_eq!(
            v.map(
                SpaceRef::Process(p),
                kesid,
                u,
                MapOptions::new(SegKey::PRIV)
            ),
            Err(VmError::WrongHalf(kesid))
        );
        assert_eq!(
            v.map(
                SpaceRef::Kernel,
                Esid::new(1),
                u,
                MapOptions::new(SegKey::PRIV)
            ),
            Err(VmError::WrongHalf(Esid::new(1)))
        );
        v.map(
            SpaceRef::Process(p),
            Esid::new(1),
            u,
            MapOptions::new(SegKey::PRIV),
        )
        .unwrap();
        v.switch_to(Some(p)).unwrap();
        touch(&mut v, ea(1, 0), false, Privilege::Problem).unwrap();
        assert!(v.slb().lookup(Esid::new(1)).is_some());
        v.switch_to(Some(q)).unwrap();
        assert_eq!(v.slb().lookup(Esid::new(1)), None);
        assert_eq!(v.slb().lookup(kesid), Some(0));
        assert!(v.slb_backend().0[0].is_valid());
        // q has nothing at ESID 1.
        assert_eq!(
            touch(&mut v, ea(1, 0), false, Privilege::Problem),
            Err(VmFaultReason::NoSegment)
        );
        v.check_invariants().unwrap();
        // Unmapping the bolted segment frees its index.
        v.unmap(SpaceRef::Kernel, kesid).unwrap();
        assert_eq!(v.slb().lookup(kesid), None);
        assert!(!v.slb_backend().0[0].is_valid());
    }

    #[test]
    fn delete_revokes_mappings_now_or_at_the_last_put() {
        let mut v = vmm();
        let a = user_segment(&mut v, 1);
        let b = user_segment(&mut v, 1);
        let p = v.create_space();
        let q = v.create_space();
        for (space, seg) in [(p, a), (q, a), (p, b)] {
            let mut o = MapOptions::new(SegKey::PRIV);
            o.window = (seg == b).then_some(0..1);
            let esid = Esid::new(if seg == a { 1 } else { 2 });
            v.map(SpaceRef::Process(space), esid, seg, o).unwrap();
        }
        assert_eq!(v.mappings_of(a).len(), 2);
        v.switch_to(Some(p)).unwrap();
        touch(&mut v, ea(1, 0), true, Privilege::Problem).unwrap();
        touch(&mut v, ea(2, 0), true, Privilege::Problem).unwrap();
        // Unheld: gone from p and q at once, and p's access faults.
        assert_eq!(v.delete_segment(a), Ok(true));
        assert!(v.mappings_of(a).is_empty());
        assert_eq!(
            touch(&mut v, ea(1, 0), false, Privilege::Problem),
            Err(VmFaultReason::NoSegment)
        );
        // Held: stays usable until the last put, then goes everywhere.
        v.hold_segment(b).unwrap();
        assert_eq!(v.delete_segment(b), Ok(false));
        // It even maps again (AIX: the held handle can be attached).
        v.map(
            SpaceRef::Process(q),
            Esid::new(2),
            b,
            MapOptions::new(SegKey::PRIV),
        )
        .unwrap();
        touch(&mut v, ea(2, 0), false, Privilege::Problem).unwrap();
        assert_eq!(v.put_segment(b), Ok(true));
        assert!(v.space(q).unwrap().is_empty(), "q's new mapping went too");
        assert_eq!(
            touch(&mut v, ea(2, 0), false, Privilege::Problem),
            Err(VmFaultReason::NoSegment)
        );
        v.check_invariants().unwrap();
        v.destroy_space(p).unwrap();
        v.destroy_space(q).unwrap();
        empty(&v);
    }

    #[test]
    fn supervisor_only_views_close_kernel_pages_to_problem_state() {
        let mut v = vmm();
        // A V_UREAD-style segment: PP 01, user read-only with key 1.
        let ureader = PageProt {
            pp: Pp::RW_RO,
            no_exec: true,
        };
        let g = v
            .create_segment(SidKind::Kernel, 2 * 4096, ureader)
            .unwrap();
        let kesid = Esid::new(0xF_1000_0000);
        let mut o = MapOptions::new(SegKey::KERNEL);
        o.view_prot = ViewProt::SupervisorOnly;
        v.map(SpaceRef::Kernel, kesid, g, o).unwrap();
        touch(&mut v, ea(kesid.as_u64(), 0), true, Privilege::Supervisor).unwrap();
        assert_eq!(
            touch(&mut v, ea(kesid.as_u64(), 0), false, Privilege::Problem),
            Err(VmFaultReason::Protection)
        );
        let kview = v.kernel_space().get(kesid).unwrap().view.unwrap();
        assert_eq!(hpte_of(&v, kview, 0).pp(), Pp::RW_NONE);
        // The process's own view uses the segment's PP 01 with key 1.
        let p = v.create_space();
        let mut o = MapOptions::new(SegKey::UNPRIV);
        o.window = Some(0..1);
        o.fork = ForkAction::Drop;
        v.map(SpaceRef::Process(p), Esid::new(0x70), g, o).unwrap();
        v.switch_to(Some(p)).unwrap();
        touch(&mut v, ea(0x70, 0), false, Privilege::Problem).unwrap();
        assert_eq!(
            touch(&mut v, ea(0x70, 0), true, Privilege::Problem),
            Err(VmFaultReason::Protection)
        );
        assert_eq!(
            touch(&mut v, ea(0x70, 1), false, Privilege::Problem),
            Err(VmFaultReason::OutOfRange)
        );
        v.check_invariants().unwrap();
        v.destroy_space(p).unwrap();
        assert_eq!(v.delete_segment(g), Ok(true));
        empty(&v);
    }

    #[test]
    fn interrupt_level_faults_do_not_zero_fill() {
        let mut v = vmm();
        let sid = user_segment(&mut v, 2);
        current_space(&mut v, 1, sid, MapOptions::new(SegKey::PRIV));
        touch(&mut v, ea(1, 0), true, Privilege::Supervisor).unwrap();
        v.protect(sid, 0..1, PageProt::USER_RW).unwrap(); // drops the HPTE
        v.set_environment(Environment::Interrupt);
        assert_eq!(v.environment(), Environment::Interrupt);
        // Resident page: re-entered. Untouched page: refused, nothing allocated.
        touch(&mut v, ea(1, 0), false, Privilege::Supervisor).unwrap();
        let free = v.frames().free_frames();
        assert_eq!(
            touch(&mut v, ea(1, 1), false, Privilege::Supervisor),
            Err(VmFaultReason::NotAllowedHere)
        );
        assert_eq!(v.frames().free_frames(), free);
        v.set_environment(Environment::Process(crate::platform::ProcessId(1)));
        touch(&mut v, ea(1, 1), false, Privilege::Supervisor).unwrap();
        v.check_invariants().unwrap();
    }

    #[test]
    fn config_sets_sid_ranges() {
        let build = |c: &VmmConfig| {
            Vmm::with_config(
                ArrayHpt::new(PTEGS),
                ArraySlb(vec![SlbEntry::INVALID; 8]),
                VecFrames::new(FRAMES),
                c.clone(),
            )
        };
        let mut c = VmmConfig::new(2);
        c.kernel_sids = 5..6;
        c.user_sids = 6..8;
        let mut v = build(&c).unwrap();
        let a = user_segment(&mut v, 1);
        let b = user_segment(&mut v, 1);
        assert_eq!((a.as_u64(), b.as_u64()), (6, 7));
        assert_eq!(
            v.create_segment(SidKind::User, 4096, PageProt::USER_RW),
            Err(VmError::NoSids)
        );
        let k = v
            .create_segment(SidKind::Kernel, 4096, PageProt::KERNEL_RW)
            .unwrap();
        assert_eq!(k.as_u64(), 5);
        // A deleted segment's SID is handed out again, its old page gone.
        let p = current_space(&mut v, 1, a, MapOptions::new(SegKey::PRIV));
        touch(&mut v, ea(1, 0), true, Privilege::Problem).unwrap();
        v.destroy_space(p).unwrap();
        assert_eq!(v.delete_segment(a), Ok(true));
        assert_eq!(user_segment(&mut v, 1), a);
        assert_eq!(v.page_frame(a, 0), Ok(None));
        v.check_invariants().unwrap();
        c.user_sids = 5..9;
        assert!(matches!(build(&c), Err(VmError::Sid(SidError::BadRanges))));
        c.user_sids = 6..8;
        c.slb_bolted = 8;
        assert!(matches!(build(&c), Err(VmError::Slb(_))));
    }

    #[test]
    fn kernel_half_starts_at_ea_bit_0() {
        // ISA numbering: EA bit 0 is the most significant bit.
        assert_eq!(Esid::new(KERNEL_ESID_BASE).base().as_u64(), 1 << 63);
        assert_eq!(
            Esid::new(KERNEL_ESID_BASE - 1).base().as_u64(),
            0x7FFF_FFFF_F000_0000
        );
    }

    #[test]
    fn invariants_leave_out_hptes_outside_the_vmm_vsid_space() {
        let ea = EffectiveAddress::new(0xc000_0000_0000_0000);
        let pa = PhysAddr::new(0x10_0000);
        let entry = |vsid: u64, ssize| {
            Hpte::mapping(Vsid::new(vsid), ea, ssize, PageSize::K4, pa, Pp::RW_NONE)
                .unwrap()
                .with_bolted(true)
        };
        // A kernel's linear map sharing the table: VSIDs above the SIDs'
        // range in 256 MB segments, or 1 TB segments.
        let mut hpt = ArrayHpt::new(PTEGS);
        hpt.0[0] = entry(1 << 37, SegmentSize::M256);
        hpt.0[8] = entry(1 << 37, SegmentSize::T1);
        assert_eq!(vmm_on(hpt).check_invariants(), Ok(()));
        // One in the VMM's range that no page claims is still stray.
        let mut hpt = ArrayHpt::new(PTEGS);
        hpt.0[16] = entry(12345, SegmentSize::M256);
        let stray = Ptex::try_from_raw(16).unwrap();
        assert_eq!(
            vmm_on(hpt).check_invariants(),
            Err(Invariant::StrayHpte(stray))
        );
    }

    #[test]
    fn replace_swaps_segments_or_keeps_the_old_one() {
        let mut v = vmm();
        let a = user_segment(&mut v, 1);
        let b = user_segment(&mut v, 1);
        let p = v.create_space();
        let sp = SpaceRef::Process(p);
        v.map(sp, Esid::new(4), a, MapOptions::new(SegKey::PRIV))
            .unwrap();
        v.switch_to(Some(p)).unwrap();
        touch(&mut v, ea(4, 0), true, Privilege::Problem).unwrap();
        let fa = v.page_frame(a, 0).unwrap();
        // A bad window: refused, the old mapping and its SLB entry stay.
        let mut bad = MapOptions::new(SegKey::PRIV);
        bad.window = Some(0..5);
        assert_eq!(v.replace(sp, Esid::new(4), b, bad), Err(VmError::BadWindow));
        assert_eq!(v.mapping(sp, Esid::new(4)).unwrap().handle.sid(), a);
        assert_eq!(v.segments().get(a).unwrap().attach_count(), 1);
        // as_seth64: b replaces a; the next access sees b's page.
        let (h, old) = v
            .replace(sp, Esid::new(4), b, MapOptions::new(SegKey::UNPRIV))
            .unwrap();
        assert_eq!(h.sid(), b);
        assert_eq!(old.unwrap().handle.sid(), a);
        assert_eq!(v.slb().lookup(Esid::new(4)), None);
        touch(&mut v, ea(4, 0), true, Privilege::Problem).unwrap();
        assert_ne!(v.page_frame(b, 0).unwrap(), fa);
        assert_eq!(v.segments().get(a).unwrap().attach_count(), 0);
        v.check_invariants().unwrap();
        // Replacing an empty ESID is a plain map.
        let (_, old) = v
            .replace(sp, Esid::new(5), a, MapOptions::new(SegKey::PRIV))
            .unwrap();
        assert!(old.is_none());
        v.destroy_space(p).unwrap();
        v.delete_segment(a).unwrap();
        v.delete_segment(b).unwrap();
        empty(&v);
    }

    /// A segment waiting for deletion is still a segment: it maps, fork
    /// inherits it, and it goes when the last hold or mapping does. Both
    /// ways of waiting: a `vms_delete` deferred by a hold, and an owned
    /// segment shared across fork whose owner exited (orphaned).
    #[test]
    fn segments_waiting_for_deletion_map_and_fork() {
        let mut v = vmm();
        // Held and deleted: maps again, and the fork inherits it.
        let held = user_segment(&mut v, 1);
        let p = current_space(&mut v, 1, held, MapOptions::new(SegKey::PRIV));
        v.hold_segment(held).unwrap();
        assert!(!v.delete_segment(held).unwrap(), "deferred while held");
        v.map(
            SpaceRef::Process(p),
            Esid::new(2),
            held,
            MapOptions::new(SegKey::PRIV),
        )
        .unwrap();
        let c = v.fork(p).unwrap();
        assert_eq!(v.segments().get(held).unwrap().attach_count(), 4);
        v.check_invariants().unwrap();
        // The last put takes every mapping down with the segment.
        assert!(v.put_segment(held).unwrap());
        assert!(v.space(p).unwrap().is_empty() && v.space(c).unwrap().is_empty());
        v.destroy_space(c).unwrap();

        // Owned by p, shared with a child, p exits: the child forks on.
        let data = user_segment(&mut v, 1);
        let mut o = MapOptions::new(SegKey::PRIV);
        o.owned = true;
        v.map(SpaceRef::Process(p), Esid::new(3), data, o).unwrap();
        touch(&mut v, ea(3, 0), true, Privilege::Problem).unwrap();
        let c = v.fork(p).unwrap();
        v.destroy_space(p).unwrap();
        let s = v.segments().get(data).unwrap();
        assert!(s.orphaned() && !s.delete_pending());
        let g = v.fork(c).unwrap();
        assert_eq!(
            v.space(g).unwrap().get(Esid::new(3)).unwrap().handle.sid(),
            data
        );
        // A hold and put on an orphan does not take its mappings down.
        v.hold_segment(data).unwrap();
        assert!(!v.put_segment(data).unwrap());
        assert_eq!(v.segments().get(data).unwrap().attach_count(), 2);
        v.check_invariants().unwrap();
        v.destroy_space(c).unwrap();
        v.destroy_space(g).unwrap();
        assert!(
            v.segments().get(data).is_err(),
            "gone with its last mapping"
        );
        empty(&v);
    }

    /// `as_seth64` of the segment an owning mapping already maps at that
    /// ESID (its handle from `as_getsrval64`) keeps it owned: the exit
    /// still deletes it, its frames and its HPTEs.
    #[test]
    fn re_setting_an_owned_segment_keeps_it_owned() {
        let mut v = vmm();
        let data = user_segment(&mut v, 2);
        let mut o = MapOptions::new(SegKey::PRIV);
        o.owned = true;
        let p = current_space(&mut v, 4, data, o);
        touch(&mut v, ea(4, 1), true, Privilege::Problem).unwrap();
        let sp = SpaceRef::Process(p);
        let (_, old) = v
            .replace(sp, Esid::new(4), data, MapOptions::new(SegKey::PRIV))
            .unwrap();
        assert!(old.unwrap().owned);
        assert!(v.mapping(sp, Esid::new(4)).unwrap().owned);
        assert_eq!(v.segments().get(data).unwrap().attach_count(), 1);
        touch(&mut v, ea(4, 0), true, Privilege::Problem).unwrap();
        v.check_invariants().unwrap();
        // Another segment at that ESID still releases the owned one.
        let other = user_segment(&mut v, 1);
        v.replace(sp, Esid::new(5), data, MapOptions::new(SegKey::PRIV))
            .unwrap();
        v.replace(sp, Esid::new(4), other, MapOptions::new(SegKey::PRIV))
            .unwrap();
        assert!(v.segments().get(data).unwrap().orphaned());
        v.destroy_space(p).unwrap();
        assert!(v.segments().get(data).is_err());
        v.delete_segment(other).unwrap();
        empty(&v);
    }

    #[test]
    fn space_ids_wrap_around_live_ones() {
        let mut v = vmm();
        let first = v.create_space();
        assert_eq!(first, SpaceId(1));
        v.next_space = u32::MAX;
        assert_eq!(v.create_space(), SpaceId(u32::MAX));
        assert_eq!(v.create_space(), SpaceId(0));
        assert_eq!(v.create_space(), SpaceId(2), "1 is still alive");
        assert_eq!(v.spaces().count(), 4);
    }

    /// R and C recorded for page `page` of working segment `sid`.
    fn rc_of<H: HptBackend>(v: &Vmm<H, ArraySlb, VecFrames>, sid: Sid, page: u32) -> (bool, bool) {
        match v.segments().get(sid).unwrap().page_state(page).unwrap() {
            PageState::Resident(r) => (r.referenced, r.changed),
            PageState::Untouched => panic!("page {page} untouched"),
        }
    }

    const BATCH_PAGES: u32 = 8;

    /// A VMM whose HPT counts single and batched removes and marks every
    /// entry changed, with a `BATCH_PAGES`-page segment mapped directly at
    /// ESID 1 and through a whole-segment view at ESID 2 of the running
    /// space, every page touched through `touch_esid`.
    fn batch_fixture(
        touch_esid: u64,
    ) -> (
        Vmm<CountingHpt<ArrayHpt>, ArraySlb, VecFrames>,
        Sid,
        SpaceId,
    ) {
        let mut hpt = CountingHpt::new(ArrayHpt::new(PTEGS));
        hpt.store_on_insert = true;
        let mut v = vmm_on(hpt);
        let sid = user_segment(&mut v, u64::from(BATCH_PAGES));
        let p = current_space(&mut v, 1, sid, MapOptions::new(SegKey::UNPRIV));
        let mut o = MapOptions::new(SegKey::UNPRIV);
        o.window = Some(0..BATCH_PAGES);
        v.map(SpaceRef::Process(p), Esid::new(2), sid, o).unwrap();
        for page in 0..BATCH_PAGES {
            touch(&mut v, ea(touch_esid, page), false, Privilege::Problem).unwrap();
        }
        assert_eq!(v.hptes_in_use(), BATCH_PAGES as usize);
        // Nothing has left the HPT yet, so no R/C has been folded.
        assert_eq!(rc_of(&v, sid, 0), (false, false));
        (v, sid, p)
    }

    #[test]
    fn segment_teardown_removes_its_hptes_in_one_batch() {
        let (mut v, sid, p) = batch_fixture(1);
        v.destroy_space(p).unwrap();
        // The segment outlives its mappings until deleted; its entries too.
        assert_eq!(v.hptes_in_use(), BATCH_PAGES as usize);
        assert!(v.hpt_backend().batches.is_empty());
        assert_eq!(v.delete_segment(sid), Ok(true));
        assert_eq!(v.hpt_backend().batches, vec![BATCH_PAGES as usize]);
        assert_eq!(v.hpt_backend().singles, 0);
        assert_eq!(v.hpt_stats().removes, u64::from(BATCH_PAGES));
        assert_eq!(v.hptes_in_use(), 0);
        assert_eq!(v.hpt_backend().inner.valid(), 0);
        assert_eq!(v.frames().free_frames(), FRAMES);
        assert_eq!(v.sids_in_use(), 0);
    }

    #[test]
    fn unmapping_a_view_batches_its_removes_and_folds_rc_into_the_target() {
        let (mut v, sid, p) = batch_fixture(2);
        v.unmap(SpaceRef::Process(p), Esid::new(2)).unwrap();
        assert_eq!(v.hpt_backend().batches, vec![BATCH_PAGES as usize]);
        assert_eq!(v.hpt_backend().singles, 0);
        assert_eq!(v.hptes_in_use(), 0);
        assert_eq!(v.hpt_backend().inner.valid(), 0);
        for page in 0..BATCH_PAGES {
            assert_eq!(rc_of(&v, sid, page), (true, true), "page {page}");
        }
        v.check_invariants().unwrap();
    }

    #[test]
    fn protect_batches_its_removes_and_folds_rc() {
        let (mut v, sid, _) = batch_fixture(1);
        let ro = PageProt {
            pp: Pp::RO_RO,
            no_exec: false,
        };
        v.protect(sid, 0..BATCH_PAGES, ro).unwrap();
        // One batch for the segment; the view had no entries, so no call.
        assert_eq!(v.hpt_backend().batches, vec![BATCH_PAGES as usize]);
        assert_eq!(v.hpt_backend().singles, 0);
        assert_eq!(v.hptes_in_use(), 0);
        for page in 0..BATCH_PAGES {
            assert_eq!(rc_of(&v, sid, page), (true, true), "page {page}");
        }
        v.check_invariants().unwrap();
    }

    #[test]
    fn bad_maps_leave_every_table_unchanged() {
        let mut v = vmm();
        let sid = user_segment(&mut v, 2);
        let p = v.create_space();
        let sp = SpaceRef::Process(p);
        v.map(sp, Esid::new(1), sid, MapOptions::new(SegKey::PRIV))
            .unwrap();
        let before = (
            v.sids_in_use(),
            v.segments().get(sid).unwrap().attach_count(),
        );
        assert_eq!(
            v.map(sp, Esid::new(1), sid, MapOptions::new(SegKey::PRIV)),
            Err(VmError::Adspace(AdspaceError::Occupied(Esid::new(1))))
        );
        let mut o = MapOptions::new(SegKey::PRIV);
        o.window = Some(1..3);
        assert_eq!(
            v.map(sp, Esid::new(2), sid, o.clone()),
            Err(VmError::BadWindow)
        );
        o.window = Some(1..1);
        assert_eq!(v.map(sp, Esid::new(2), sid, o), Err(VmError::BadWindow));
        assert_eq!(
            v.map(
                SpaceRef::Process(SpaceId(99)),
                Esid::new(2),
                sid,
                MapOptions::new(SegKey::PRIV)
            ),
            Err(VmError::NoSuchSpace(SpaceId(99)))
        );
        assert_eq!(
            v.create_segment(SidKind::User, 0, PageProt::USER_RW),
            Err(VmError::BadSize(0))
        );
        assert_eq!(
            v.create_segment(SidKind::User, (1 << 28) + 1, PageProt::USER_RW),
            Err(VmError::BadSize((1 << 28) + 1))
        );
        assert_eq!(
            (
                v.sids_in_use(),
                v.segments().get(sid).unwrap().attach_count()
            ),
            before
        );
        assert_eq!(v.space(p).unwrap().len(), 1);
        v.check_invariants().unwrap();
    }
}
