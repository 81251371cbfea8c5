//! The AIX memory services on an [`AixVm`] core.
//!
//! [`Aix`] owns the core and AIX's own bookkeeping: the `vm_galloc`
//! allocations, each process's `vm_guatt` attachments, the regions
//! `as_att`/`as_att64`/`as_seth64` made (the only ones `as_det`/`as_det64`
//! take down), the `as_geth` holds each process took, the `vm_att` slots,
//! a copy of each address space's `adspace_t` for `getadsp`, and the errno
//! of `as_att64`.
//!
//! This module holds [`Aix`] itself, its configuration, the process
//! hooks and the helpers every service shares; each AIX family's
//! services, with their error types, are in a module of their own:
//! `global` (`vm_galloc`, `vm_gfree`, `vm_guatt`, `vm_gudet`),
//! `kernel_att` (`vm_att`, `vm_det`), `objects` (`vms_create`,
//! `vms_delete`), `adspace32` (`getadsp`, `as_att`, `as_det`, `as_geth`,
//! `as_puth`, `as_getsrval`) and `adspace64` (the `as_*64` services).
//!
//! Placement (decisions of this project where AIX is silent, see
//! `docs/aix-services.md`):
//!
//! | what | where |
//! | --- | --- |
//! | `vm_galloc` memory | kernel space, segments of its own from [`AixConfig::galloc_base_esid`] (EA `0xF100_0000_0000_0000`), key Ks = 0, Kp = 1 |
//! | `vm_att` | kernel space, [`AixConfig::vm_att_slots`] segments from [`AixConfig::vm_att_base_esid`] (EA `0xF200_0000_0000_0000`) |
//! | `vm_guatt`, `as_att64` (64-bit process) | user shmat area, ESIDs from [`SHMAT_BASE_ESID`] (EA `0x0700_0000_0000_0000`) |
//! | `as_att`, `as_att64` (32-bit process, kernel process) | segment registers 3..13 and 15 |

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::ffi::{c_int, c_long};
use core::ops::Range;
use core::ptr::NonNull;

use arch_ppc64::addr::Esid;
use arch_ppc64::structures::hpte::Pp;

use crate::adspace::{ForkAction, SegKey};
use crate::platform::{Environment, ProcessId};
use crate::segment::{PageProt, ViewProt};
use crate::sid::Sid;

use super::backend::{AixVm, CoreError, MappingInfo, Space, KERNEL_ESID_BASE};
use super::consts::*;
use super::ctypes::{vmhandle_t, vmid_t, vmkey_t, vmsize_t};
use super::error::*;
use super::handle::{IntoVmHandle, VmHandle, VmHandleError, VmKey};
use super::segregs::{adspace_t, SegmentRegister};

mod adspace32;
mod adspace64;
mod global;
mod kernel_att;
mod objects;

pub use adspace32::{AsAttError, AsDetError, AsGethError, AsPuthError, GetadspError};
pub use adspace64::{AsAtt64Error, AsDet64Error, AsGeth64Error, AsPuth64Error, AsSeth64Error};
pub use global::{VmGallocError, VmGfreeError, VmGuattError, VmGudetError};
pub use kernel_att::{VmAttError, VmDetError};
pub use objects::{VmsCreateError, VmsDeleteError};

/// First ESID of the user area where `vm_guatt` and `as_att64` place
/// regions in a 64-bit process: EA `0x0700_0000_0000_0000`, AIX's shmat
/// area.
pub const SHMAT_BASE_ESID: u64 = 0x0700_0000_0000_0000 >> SEGSHIFT;
/// End (exclusive) of the shmat area: EA `0x0800_0000_0000_0000`.
pub const SHMAT_END_ESID: u64 = 0x0800_0000_0000_0000 >> SEGSHIFT;
/// End (exclusive) of a 64-bit user address space for the `*64` services:
/// AIX `VM_MAXADDR64 + 1` = 2^60.
pub const USER_ADDR_END_64: u64 = 1 << 60;
/// End (exclusive) of a 32-bit address space: 16 segments of 256 MB.
pub const USER_ADDR_END_32: u64 = 1 << 32;

/// Where the services place things; [`AixConfig::default`] is the layout
/// in the module table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AixConfig {
    /// First ESID of the `vm_galloc` range.
    pub galloc_base_esid: u64,
    /// Segments in the `vm_galloc` range; when no run of free ones is
    /// left, `vm_galloc` answers `ENOSPC`.
    pub galloc_segments: u64,
    /// First ESID of the `vm_att` window.
    pub vm_att_base_esid: u64,
    /// Segments in the `vm_att` window (AIX keeps 4 per context; here the
    /// window is shared by all contexts).
    pub vm_att_slots: u64,
}

impl AixConfig {
    /// The layout in the module table.
    pub const DEFAULT: AixConfig = AixConfig {
        galloc_base_esid: 0xF100_0000_0000_0000 >> SEGSHIFT,
        galloc_segments: 4096,
        vm_att_base_esid: 0xF200_0000_0000_0000 >> SEGSHIFT,
        vm_att_slots: 16,
    };

    /// Checks the layout: each range holds at least one segment, lies in
    /// the kernel half of the address space (ESIDs from
    /// [`KERNEL_ESID_BASE`], so it never lands in a process's segments)
    /// and ends at or below the last ESID, and the two ranges do not
    /// overlap. A layout that passes keeps every address the services
    /// compute from it inside 64 bits.
    ///
    /// # Errors
    /// [`AixConfigError::Empty`], [`AixConfigError::OutsideKernelHalf`],
    /// [`AixConfigError::Overlap`].
    pub const fn validate(&self) -> Result<(), AixConfigError> {
        let galloc = match esid_range(
            LayoutRange::Galloc,
            self.galloc_base_esid,
            self.galloc_segments,
        ) {
            Ok(r) => r,
            Err(e) => return Err(e),
        };
        let vm_att = match esid_range(LayoutRange::VmAtt, self.vm_att_base_esid, self.vm_att_slots)
        {
            Ok(r) => r,
            Err(e) => return Err(e),
        };
        if galloc.start < vm_att.end && vm_att.start < galloc.end {
            return Err(AixConfigError::Overlap);
        }
        Ok(())
    }

    /// The `vm_galloc` ESIDs (for a validated layout).
    fn galloc_esids(&self) -> Range<u64> {
        self.galloc_base_esid..self.galloc_base_esid + self.galloc_segments
    }

    /// The `vm_att` window's ESIDs (for a validated layout).
    fn vm_att_esids(&self) -> Range<u64> {
        self.vm_att_base_esid..self.vm_att_base_esid + self.vm_att_slots
    }
}

const _: () = assert!(AixConfig::DEFAULT.validate().is_ok());

impl Default for AixConfig {
    fn default() -> Self {
        AixConfig::DEFAULT
    }
}

/// One of the ranges of an [`AixConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutRange {
    /// [`AixConfig::galloc_base_esid`], [`AixConfig::galloc_segments`].
    Galloc,
    /// [`AixConfig::vm_att_base_esid`], [`AixConfig::vm_att_slots`].
    VmAtt,
}

/// Why [`Aix::with_config`] refused a layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AixConfigError {
    /// The range has no segments.
    Empty(LayoutRange),
    /// The range starts below [`KERNEL_ESID_BASE`] (in the processes'
    /// half) or ends past the last ESID ([`Esid::MAX`]).
    OutsideKernelHalf {
        /// Which range.
        range: LayoutRange,
        /// Its first ESID.
        base_esid: u64,
        /// Its length in segments.
        segments: u64,
    },
    /// The `vm_galloc` range and the `vm_att` window share segments.
    Overlap,
}

impl core::fmt::Display for AixConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AixConfigError::Empty(r) => write!(f, "the {r:?} range has no segments"),
            AixConfigError::OutsideKernelHalf {
                range,
                base_esid,
                segments,
            } => write!(
                f,
                "the {range:?} range ({segments} segments from ESID {base_esid:#x}) is not inside the kernel half [{KERNEL_ESID_BASE:#x}, {:#x}]",
                Esid::MAX
            ),
            AixConfigError::Overlap => write!(f, "the Galloc and VmAtt ranges overlap"),
        }
    }
}

/// `segments` ESIDs from `base`, checked to be non-empty and inside the
/// kernel half without overflowing.
const fn esid_range(
    range: LayoutRange,
    base_esid: u64,
    segments: u64,
) -> Result<Range<u64>, AixConfigError> {
    if segments == 0 {
        return Err(AixConfigError::Empty(range));
    }
    let outside = AixConfigError::OutsideKernelHalf {
        range,
        base_esid,
        segments,
    };
    if base_esid < KERNEL_ESID_BASE {
        return Err(outside);
    }
    match base_esid.checked_add(segments) {
        Some(end) if end <= Esid::MAX + 1 => Ok(base_esid..end),
        _ => Err(outside),
    }
}

/// The address-space model of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressModel {
    /// 64-bit: addresses below 2^60, regions in the shmat area.
    Bits64,
    /// 32-bit: 16 segment registers, addresses below 4 GB.
    Bits32,
}

/// One `vm_galloc` allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// Kernel effective address (a segment boundary).
    pub start: u64,
    /// Size in bytes, rounded up to 4 KB.
    pub bytes: u64,
    /// The segments, in address order.
    pub sids: Vec<Sid>,
    /// The `type` it was allocated with.
    pub type_flags: c_int,
}

impl Allocation {
    /// Whether [kaddr, kaddr + size) lies inside the allocation. Computed
    /// on offsets from its start, so an allocation that ends at the top of
    /// the address space (start + bytes = 2^64) is no special case.
    fn contains(&self, kaddr: u64, size: vmsize_t) -> bool {
        if size <= 0 || kaddr < self.start {
            return false;
        }
        let off = kaddr - self.start;
        off < self.bytes && size as u64 <= self.bytes - off
    }
}

/// One `vm_guatt` attachment of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Start of the allocation it attaches from.
    pub allocation: u64,
    /// The kernel address passed to `vm_guatt`.
    pub kaddr: u64,
    /// The user address `vm_guatt` returned.
    pub uaddr: u64,
    /// The size passed to `vm_guatt`.
    pub size: vmsize_t,
    /// The user ESIDs it occupies.
    pub esids: Range<u64>,
}

/// AIX state of one context: a process, or the kernel (kernel processes
/// and interrupt handlers).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Context {
    model: AddressModel,
    adspace: Box<adspace_t>,
    /// ESIDs of regions `as_att`/`as_att64`/`as_seth64` made.
    regions: BTreeSet<u64>,
    attachments: Vec<Attachment>,
    /// `as_geth`/`as_geth64` holds taken here, per SID.
    holds: BTreeMap<Sid, u32>,
    errno: c_int,
}

impl Context {
    fn new(model: AddressModel) -> Self {
        Context {
            model,
            adspace: Box::new(adspace_t::EMPTY),
            regions: BTreeSet::new(),
            attachments: Vec::new(),
            holds: BTreeMap::new(),
            errno: 0,
        }
    }

    fn addr_end(&self) -> u64 {
        match self.model {
            AddressModel::Bits64 => USER_ADDR_END_64,
            AddressModel::Bits32 => USER_ADDR_END_32,
        }
    }
}

/// A copy of all of the services' own bookkeeping, for comparing before
/// and after a call (a refused call must leave it unchanged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bookkeeping {
    allocations: Vec<Allocation>,
    galloc_sids: BTreeSet<Sid>,
    vms: BTreeSet<u64>,
    contexts: BTreeMap<Space, Context>,
    vm_att: BTreeMap<u64, Space>,
}

/// Why a process could not be created, forked or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessError {
    /// The process id is already in use.
    Exists(ProcessId),
    /// No such process.
    NoSuchProcess(ProcessId),
    /// The core refused.
    Core(CoreError),
}

/// The AIX memory services over the core `V`.
#[derive(Debug)]
pub struct Aix<V: AixVm> {
    vm: V,
    config: AixConfig,
    /// By start address, ascending: a binary search finds the one
    /// containing an address (`vm_guatt`, `vm_gudet`); `vm_galloc` and
    /// `vm_gfree`, much rarer, shift the rest.
    allocations: Vec<Allocation>,
    galloc_sids: BTreeSet<Sid>,
    vms: BTreeSet<u64>,
    contexts: BTreeMap<Space, Context>,
    /// `vm_att` slot ESID → the context that attached it.
    vm_att: BTreeMap<u64, Space>,
    /// The `adspace_t` copies of exited processes, emptied and kept so
    /// their addresses are never handed out again: `as_att` and friends
    /// find a context by the pointer `getadsp` returned, and a stale
    /// pointer must not match a later process whose copy reused the
    /// memory. Costs one `adspace_t` (136 bytes) per exited process; a
    /// stale pointer stays readable (an empty address space). Boxed on
    /// purpose: the addresses handed out must not move when the `Vec`
    /// grows.
    #[allow(clippy::vec_box)]
    retired_adspaces: Vec<Box<adspace_t>>,
}

/// A positive `size` rounded up to 4 KB, in `u64`: at most 2^63, so the
/// rounding cannot overflow even for `LONG_MAX`.
fn round_to_page(size: vmsize_t) -> Option<u64> {
    if size <= 0 {
        return None;
    }
    Some((size as u64).div_ceil(PAGESIZE) * PAGESIZE)
}

fn page_prot(type_flags: c_int) -> PageProt {
    PageProt {
        pp: if type_flags & V_UREAD != 0 {
            Pp::RW_RO
        } else {
            Pp::RW_NONE
        },
        no_exec: type_flags & V_NOEXEC != 0,
    }
}

fn type_flags_ok(type_flags: c_int) -> bool {
    let allowed = V_WORKING | V_SYSTEM | V_UREAD | V_NOEXEC;
    type_flags & V_WORKING != 0 && type_flags & !allowed == 0
}

/// How `as_att`, `as_att64` and `as_seth64` map a handle: whole segment,
/// the handle's keys (Ks and Kp each as the handle has them, so a handle
/// `as_geth64` returned for a Ks = 0, Kp = 1 mapping maps the same way
/// again) and N, shared across fork.
fn region(h: VmHandle, sid: Sid) -> MappingInfo {
    MappingInfo {
        sid,
        key: SegKey {
            ks: h.ks(),
            kp: h.kp(),
        },
        no_exec: h.no_execute(),
        window: None,
        view_prot: ViewProt::Segment,
        fork: ForkAction::Share,
    }
}

/// How `vm_att` maps a handle in the kernel half, which every process
/// shares: supervisor state gets what the handle's key gives on the
/// segment's pages; problem state nothing. Kp = 1 with PP 00 (read-write
/// for key 0) or PP 110 (read-only for key 0) closes the pages to problem
/// state (ISA Book III §5.7.13.1, Table 9). The supervisor access is the
/// one the handle's Ks gives, whatever its Kp.
fn kernel_only(h: VmHandle, sid: Sid, prot: PageProt) -> MappingInfo {
    let sup = prot.pp.access(h.ks());
    let (ks, pp) = if sup.write {
        (false, Pp::RW_NONE)
    } else if sup.read {
        (false, Pp::RO_NONE)
    } else {
        (true, Pp::RW_NONE)
    };
    MappingInfo {
        sid,
        key: SegKey { ks, kp: true },
        no_exec: h.no_execute(),
        window: None,
        view_prot: ViewProt::Fixed(PageProt {
            pp,
            no_exec: prot.no_exec || h.no_execute(),
        }),
        fork: ForkAction::Drop,
    }
}

fn seg_key(key: VmKey) -> SegKey {
    match key {
        VmKey::Priv => SegKey::PRIV,
        VmKey::Unpriv => SegKey::UNPRIV,
    }
}

/// Unmaps `esid` of `space`, logging a refusal: the services only unmap
/// what their own records say is mapped, so a refusal is a bug to report,
/// not an error to hand back.
fn unmap_logged<V: AixVm>(vm: &mut V, space: Space, esid: u64) {
    if let Err(e) = vm.unmap(space, Esid::new(esid)) {
        unmap_failed(space, esid, e);
    }
}

/// [`AixVm::free_run`] as the raw ESID the services' own records keep.
fn free_run<V: AixVm>(vm: &V, space: Space, range: Range<u64>, count: u64) -> Option<u64> {
    vm.free_run(space, range, count).map(Esid::as_u64)
}

/// The log record of a refused unmap, out of line: formatting it inline
/// made every caller's loop set up the record's arguments and save a dozen
/// more registers on each call, though it never fails.
#[cold]
#[inline(never)]
fn unmap_failed(space: Space, esid: u64, e: CoreError) {
    log::error!("aix: unmap of ESID {esid:#x} in {space:?} failed: {e:?}");
}

/// The allocation of `allocations` (ascending by start) that [kaddr,
/// kaddr + size) lies in.
fn allocation_containing(
    allocations: &[Allocation],
    kaddr: u64,
    size: vmsize_t,
) -> Option<&Allocation> {
    let after = allocations.partition_point(|a| a.start <= kaddr);
    allocations[..after]
        .last()
        .filter(|a| a.contains(kaddr, size))
}

/// The index in `allocations` (ascending by start) of the one starting
/// at `start`.
fn allocation_at(allocations: &[Allocation], start: u64) -> Option<usize> {
    allocations.binary_search_by_key(&start, |a| a.start).ok()
}

impl<V: AixVm> Aix<V> {
    /// The services over `vm` with the default layout.
    pub fn new(vm: V) -> Self {
        // AixConfig::DEFAULT is checked at compile time.
        Self::with_valid_config(vm, AixConfig::DEFAULT)
    }

    /// The services over `vm` with layout `config`.
    ///
    /// # Errors
    /// The layout's [`AixConfig::validate`] error; nothing is built.
    pub fn with_config(vm: V, config: AixConfig) -> Result<Self, AixConfigError> {
        config.validate()?;
        Ok(Self::with_valid_config(vm, config))
    }

    fn with_valid_config(vm: V, config: AixConfig) -> Self {
        let mut contexts = BTreeMap::new();
        contexts.insert(Space::Kernel, Context::new(AddressModel::Bits32));
        let mut aix = Aix {
            vm,
            config,
            allocations: Vec::new(),
            galloc_sids: BTreeSet::new(),
            vms: BTreeSet::new(),
            contexts,
            vm_att: BTreeMap::new(),
            retired_adspaces: Vec::new(),
        };
        aix.refresh_adspace(Space::Kernel);
        aix
    }

    /// The core.
    pub fn vm(&self) -> &V {
        &self.vm
    }

    /// The core, mutably (for the kernel's own use: switching, faults).
    /// Mappings the services made must be changed through the services.
    pub fn vm_mut(&mut self) -> &mut V {
        &mut self.vm
    }

    /// The layout in use.
    pub fn config(&self) -> &AixConfig {
        &self.config
    }

    /// A copy of the services' bookkeeping.
    pub fn bookkeeping(&self) -> Bookkeeping {
        Bookkeeping {
            allocations: self.allocations.clone(),
            galloc_sids: self.galloc_sids.clone(),
            vms: self.vms.clone(),
            contexts: self.contexts.clone(),
            vm_att: self.vm_att.clone(),
        }
    }

    /// Live `vm_galloc` allocations by start address.
    pub fn allocations(&self) -> impl Iterator<Item = &Allocation> {
        self.allocations.iter()
    }

    /// `pid`'s `vm_guatt` attachments.
    pub fn attachments(&self, pid: ProcessId) -> &[Attachment] {
        self.contexts
            .get(&Space::Process(pid))
            .map_or(&[], |c| &c.attachments[..])
    }

    /// The holds `space` took, per SID.
    pub fn holds(&self, space: Space) -> Vec<(u64, u32)> {
        self.contexts
            .get(&space)
            .map(|c| c.holds.iter().map(|(&s, &n)| (s.as_u64(), n)).collect())
            .unwrap_or_default()
    }

    /// The `adspace_t` copy of `space` (as last refreshed).
    pub fn adspace_of(&self, space: Space) -> Option<&adspace_t> {
        self.contexts.get(&space).map(|c| &*c.adspace)
    }

    /// The address-space model of `pid`.
    pub fn model(&self, pid: ProcessId) -> Option<AddressModel> {
        self.contexts.get(&Space::Process(pid)).map(|c| c.model)
    }

    // -----------------------------------------------------------------
    // Process lifecycle hooks
    // -----------------------------------------------------------------

    /// Creates process `pid`'s address space with model `model`.
    ///
    /// # Errors
    /// [`ProcessError::Exists`] if `pid` is known; [`ProcessError::Core`] if
    /// the core refuses.
    pub fn create_process(
        &mut self,
        pid: ProcessId,
        model: AddressModel,
    ) -> Result<(), ProcessError> {
        let space = Space::Process(pid);
        if self.contexts.contains_key(&space) {
            return Err(ProcessError::Exists(pid));
        }
        self.vm.create_space(pid).map_err(ProcessError::Core)?;
        self.contexts.insert(space, Context::new(model));
        self.refresh_adspace(space);
        Ok(())
    }

    /// Fork hook: `child` gets a copy of `parent`'s address space in which
    /// the `as_att`/`as_att64`/`as_seth64` regions are shared with the
    /// parent, while `vm_guatt` attachments, `vm_att` slots and holds are
    /// not inherited (AIX: "vm_guatt attachments are not inherited across
    /// a process fork").
    ///
    /// # Errors
    /// [`ProcessError::NoSuchProcess`] for an unknown parent,
    /// [`ProcessError::Exists`] for a known child, [`ProcessError::Core`]
    /// if the core refuses.
    pub fn fork(&mut self, parent: ProcessId, child: ProcessId) -> Result<(), ProcessError> {
        let p = self
            .contexts
            .get(&Space::Process(parent))
            .ok_or(ProcessError::NoSuchProcess(parent))?;
        if self.contexts.contains_key(&Space::Process(child)) {
            return Err(ProcessError::Exists(child));
        }
        let mut c = Context::new(p.model);
        c.regions = p.regions.clone();
        self.vm
            .fork_space(parent, child)
            .map_err(ProcessError::Core)?;
        // Keep only regions the core really gave the child.
        c.regions.retain(|&e| {
            self.vm
                .mapping(Space::Process(child), Esid::new(e))
                .is_some()
        });
        self.contexts.insert(Space::Process(child), c);
        self.refresh_adspace(Space::Process(child));
        Ok(())
    }

    /// Exit hook: takes down everything of `pid` — `vm_guatt`
    /// attachments, `as_att` regions, `vm_att` slots, holds (which may
    /// complete a deferred `vms_delete`) — and then the address space.
    ///
    /// # Errors
    /// [`ProcessError::NoSuchProcess`] for an unknown `pid`;
    /// [`ProcessError::Core`] if the core refuses the teardown (the AIX
    /// state is gone by then).
    pub fn exit(&mut self, pid: ProcessId) -> Result<(), ProcessError> {
        let space = Space::Process(pid);
        let ctx = self
            .contexts
            .remove(&space)
            .ok_or(ProcessError::NoSuchProcess(pid))?;
        for a in &ctx.attachments {
            for e in a.esids.clone() {
                self.unmap_logged(space, e);
            }
        }
        for &e in &ctx.regions {
            self.unmap_logged(space, e);
        }
        let slots: Vec<u64> = self
            .vm_att
            .iter()
            .filter(|(_, o)| **o == space)
            .map(|(e, _)| *e)
            .collect();
        for e in slots {
            self.vm_att.remove(&e);
            self.unmap_logged(Space::Kernel, e);
        }
        for (&sid, &n) in &ctx.holds {
            for _ in 0..n {
                self.put_one_hold(sid);
            }
        }
        let mut adspace = ctx.adspace;
        *adspace = adspace_t::EMPTY;
        self.retired_adspaces.push(adspace);
        self.vm.destroy_space(pid).map_err(ProcessError::Core)
    }

    // -----------------------------------------------------------------
    // Helpers
    // -----------------------------------------------------------------

    fn unmap_logged(&mut self, space: Space, esid: u64) {
        unmap_logged(&mut self.vm, space, esid);
    }

    /// Re-reads ESIDs 0..15 of `space` into its `adspace_t` copy after
    /// the services changed `esids` there: only if those are segment
    /// registers. (A 64-bit process's `vm_guatt` regions lie far above
    /// them; `getadsp` re-reads all sixteen anyway.)
    fn refresh_adspace_for(&mut self, space: Space, esids: Range<u64>) {
        if esids.start < NSEGS as u64 {
            self.refresh_adspace(space);
        }
    }

    /// Re-reads ESIDs 0..15 of `space` into its `adspace_t` copy.
    fn refresh_adspace(&mut self, space: Space) {
        if let Some(c) = self.contexts.get_mut(&space) {
            self.vm.load_segment_registers(space, &mut c.adspace);
        }
    }

    /// The context of the current process, for services that run in the
    /// process environment only. `Err(true)` = interrupt environment,
    /// `Err(false)` = a process the services do not know.
    fn process_context(&self, service: &str) -> Result<Space, bool> {
        let space = Self::process_space(&self.vm, service)?;
        if space == Space::Kernel || self.contexts.contains_key(&space) {
            Ok(space)
        } else {
            Self::unknown_process(service, space);
            Err(false)
        }
    }

    /// [`Aix::process_context`] and the context itself, found with one
    /// look-up. Takes the fields, not `self`, so the caller may go on
    /// using the core and the other tables while it holds the context.
    fn process_context_in<'c>(
        vm: &V,
        contexts: &'c mut BTreeMap<Space, Context>,
        service: &str,
    ) -> Result<(Space, &'c mut Context), bool> {
        let space = Self::process_space(vm, service)?;
        match contexts.get_mut(&space) {
            Some(c) => Ok((space, c)),
            None => {
                Self::unknown_process(service, space);
                Err(false)
            }
        }
    }

    /// The space a process-only service acts on: the current process's,
    /// or the kernel's for a kernel process. `Err(true)` (logged) in the
    /// interrupt environment.
    fn process_space(vm: &V, service: &str) -> Result<Space, bool> {
        match vm.environment() {
            Environment::Interrupt => {
                log::warn!("{service}: called from the interrupt environment; refused");
                Err(true)
            }
            Environment::KernelProcess => Ok(Space::Kernel),
            Environment::Process(pid) => Ok(Space::Process(pid)),
        }
    }

    fn unknown_process(service: &str, space: Space) {
        if let Space::Process(pid) = space {
            log::warn!("{service}: process {pid:?} unknown to the services");
        }
    }

    fn in_interrupt(&self, service: &str) -> bool {
        let i = self.vm.environment() == Environment::Interrupt;
        if i {
            log::warn!("{service}: called from the interrupt environment; refused");
        }
        i
    }

    /// The context `vm_att`/`vm_det` and `as_getsrval64` act in.
    fn current_context(&self) -> Space {
        match self.vm.environment() {
            Environment::Process(pid) if self.contexts.contains_key(&Space::Process(pid)) => {
                Space::Process(pid)
            }
            Environment::Process(_) | Environment::KernelProcess => Space::Kernel,
            Environment::Interrupt => match self.vm.active_space() {
                s @ Space::Process(_) if self.contexts.contains_key(&s) => s,
                _ => Space::Kernel,
            },
        }
    }

    fn context_of_adspace(&self, adsp: *const adspace_t) -> Option<Space> {
        self.contexts
            .iter()
            .find(|(_, c)| core::ptr::eq(&*c.adspace, adsp))
            .map(|(s, _)| *s)
    }

    /// Whether `sid` may be mapped where a process can reach it: it exists
    /// and is not `vm_galloc` memory. A segment whose `vms_delete` waits
    /// for the last put is still attachable: the hold exists so that the
    /// handle can be attached elsewhere. Answers the SID; `Err(true)` = galloc.
    fn attachable(&self, sid: u64) -> Result<Sid, bool> {
        let Some(sid) = Sid::try_new(sid) else {
            return Err(false);
        };
        if self.galloc_sids.contains(&sid) {
            return Err(true);
        }
        match self.vm.segment(sid) {
            Some(_) => Ok(sid),
            None => Err(false),
        }
    }

    /// `count` consecutive free user segments of `space` for a region:
    /// the shmat area in a 64-bit space, registers 3..13 or 15 otherwise.
    fn place_user(&self, space: Space, count: u64) -> Option<u64> {
        let model = self.contexts.get(&space)?.model;
        Self::place_user_in(&self.vm, space, model, count)
    }

    /// [`Aix::place_user`] for a context of `model` already at hand.
    fn place_user_in(vm: &V, space: Space, model: AddressModel, count: u64) -> Option<u64> {
        match (model, space) {
            (AddressModel::Bits64, Space::Process(_)) => {
                free_run(vm, space, SHMAT_BASE_ESID..SHMAT_END_ESID, count)
            }
            _ => free_run(vm, space, 3..14, count).or_else(|| free_run(vm, space, 15..16, count)),
        }
    }

    /// Every mapping the services made of `sid`: (space, esid).
    fn mappings_of(&self, sid: Sid) -> Vec<(Space, u64)> {
        let mut out = Vec::new();
        for (&space, c) in &self.contexts {
            for &e in &c.regions {
                if self
                    .vm
                    .mapping(space, Esid::new(e))
                    .is_some_and(|m| m.sid == sid)
                {
                    out.push((space, e));
                }
            }
        }
        for &e in self.vm_att.keys() {
            if self
                .vm
                .mapping(Space::Kernel, Esid::new(e))
                .is_some_and(|m| m.sid == sid)
            {
                out.push((Space::Kernel, e));
            }
        }
        out
    }

    /// Takes down every mapping the services made of `sid`.
    fn unmap_everywhere(&mut self, sid: Sid) {
        for (space, e) in self.mappings_of(sid) {
            self.unmap_logged(space, e);
            if let Some(c) = self.contexts.get_mut(&space) {
                c.regions.remove(&e);
            }
            if space == Space::Kernel {
                self.vm_att.remove(&e);
            }
            self.refresh_adspace(space);
        }
    }

    /// After a put: a segment `vms_delete`d while held is destroyed once
    /// the last hold is gone, so its mappings go now and the core frees it.
    fn finish_pending_delete(&mut self, sid: u64) {
        let info = Sid::try_new(sid).and_then(|s| Some((s, self.vm.segment(s)?)));
        if let Some((s, info)) = info {
            if info.delete_pending && info.holds == 0 {
                self.unmap_everywhere(s);
                self.vms.remove(&sid);
            }
        } else {
            self.vms.remove(&sid);
        }
    }

    /// Maps `part(i)` (segment, window) at `base + i` for `i` in
    /// `0..count`, otherwise as `how`; on failure takes back what it
    /// mapped. Works on the core alone, so callers may keep borrowing the
    /// services' own tables for `part`.
    fn map_run(
        vm: &mut V,
        space: Space,
        base: u64,
        count: u64,
        part: impl Fn(u64) -> (Sid, Option<Range<u32>>),
        how: &MappingInfo,
    ) -> Result<(), CoreError> {
        let mut this = how.clone();
        for i in 0..count {
            (this.sid, this.window) = part(i);
            if let Err(e) = vm.map(space, Esid::new(base + i), &this) {
                for j in 0..i {
                    unmap_logged(vm, space, base + j);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Sets the errno of the current context (the C entry of `as_att64`
    /// does this on failure).
    pub fn set_errno(&mut self, errno: Errno) {
        let ctx = self.current_context();
        if let Some(c) = self.contexts.get_mut(&ctx) {
            c.errno = errno.raw();
        }
    }

    /// The errno of the current context: the cause of its last failed
    /// `as_att64` through the C interface, 0 if none.
    pub fn errno(&self) -> c_int {
        self.contexts
            .get(&self.current_context())
            .map_or(0, |c| c.errno)
    }
}
