//! The AIX memory services on an [`AixVm`] core.
//!
//! [`Aix`] owns the core and AIX's own bookkeeping: the `vm_galloc`
//! allocations, each process's `vm_guatt` attachments, the regions
//! `as_att`/`as_att64`/`as_seth64` made (the only ones `as_det`/`as_det64`
//! take down), the `as_geth` holds each process took, the `vm_att` slots,
//! a copy of each address space's `adspace_t` for `getadsp`, and the errno
//! of `as_att64`.
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

use super::adsp::{adspace_t, SegmentRegister};
use super::backend::{AixVm, CoreError, MappingInfo, Space, KERNEL_ESID_BASE};
use super::consts::*;
use super::ctypes::{vmhandle_t, vmid_t, vmkey_t, vmsize_t};
use super::error::*;
use super::handle::{VmHandle, VmKey};

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
    pub sids: Vec<u64>,
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
    holds: BTreeMap<u64, u32>,
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
    galloc_sids: BTreeSet<u64>,
    vms: BTreeSet<u64>,
    contexts: BTreeMap<Space, Context>,
    vm_att: BTreeMap<u64, Space>,
}

/// Why a process could not be created, forked or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    galloc_sids: BTreeSet<u64>,
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
fn region(h: VmHandle) -> MappingInfo {
    MappingInfo {
        sid: h.sid(),
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
fn kernel_only(h: VmHandle, prot: PageProt) -> MappingInfo {
    let sup = prot.pp.access(h.ks());
    let (ks, pp) = if sup.write {
        (false, Pp::RW_NONE)
    } else if sup.read {
        (false, Pp::RO_NONE)
    } else {
        (true, Pp::RW_NONE)
    };
    MappingInfo {
        sid: h.sid(),
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
    if let Err(e) = vm.unmap(space, esid) {
        unmap_failed(space, esid, e);
    }
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
            .map(|c| c.holds.iter().map(|(&s, &n)| (s, n)).collect())
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
        c.regions
            .retain(|&e| self.vm.mapping(Space::Process(child), e).is_some());
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
    /// handle can be attached elsewhere. `Err(true)` = galloc.
    fn attachable(&self, sid: u64) -> Result<(), bool> {
        if self.galloc_sids.contains(&sid) {
            return Err(true);
        }
        match self.vm.segment(sid) {
            Some(_) => Ok(()),
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
                vm.free_run(space, SHMAT_BASE_ESID..SHMAT_END_ESID, count)
            }
            _ => vm
                .free_run(space, 3..14, count)
                .or_else(|| vm.free_run(space, 15..16, count)),
        }
    }

    /// Every mapping the services made of `sid`: (space, esid).
    fn mappings_of(&self, sid: u64) -> Vec<(Space, u64)> {
        let mut out = Vec::new();
        for (&space, c) in &self.contexts {
            for &e in &c.regions {
                if self.vm.mapping(space, e).is_some_and(|m| m.sid == sid) {
                    out.push((space, e));
                }
            }
        }
        for &e in self.vm_att.keys() {
            if self
                .vm
                .mapping(Space::Kernel, e)
                .is_some_and(|m| m.sid == sid)
            {
                out.push((Space::Kernel, e));
            }
        }
        out
    }

    /// Takes down every mapping the services made of `sid`.
    fn unmap_everywhere(&mut self, sid: u64) {
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
        if let Some(info) = self.vm.segment(sid) {
            if info.delete_pending && info.holds == 0 {
                self.unmap_everywhere(sid);
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
        part: impl Fn(u64) -> (u64, Option<Range<u32>>),
        how: &MappingInfo,
    ) -> Result<(), CoreError> {
        let mut this = how.clone();
        for i in 0..count {
            (this.sid, this.window) = part(i);
            if let Err(e) = vm.map(space, base + i, &this) {
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

    // -----------------------------------------------------------------
    // Global kernel memory
    // -----------------------------------------------------------------

    /// `vm_galloc`: allocates `size` bytes (rounded up to 4 KB) of
    /// zero-filled global kernel memory in segments of its own at the
    /// lowest free run of the galloc range, and returns its kernel address
    /// (a segment boundary). Pages are PP 00 (kernel read-write, no user
    /// access) or, with `V_UREAD`, PP 01 (user read-only through a
    /// `VM_UNPRIV` attachment); `V_NOEXEC` forbids instruction fetch.
    ///
    /// Frames are taken at first touch (zero-fill on demand), so running
    /// out of frames shows later as a fault of that access, not as an
    /// error here.
    ///
    /// Environment: process (and kernel process) only.
    ///
    /// # Errors
    /// [`VmGallocError::WrongEnvironment`] in an interrupt handler;
    /// [`VmGallocError::MissingWorking`] / [`VmGallocError::UnknownTypeFlags`]
    /// for a bad `type`; [`VmGallocError::BadSize`] for `size <= 0`;
    /// [`VmGallocError::RangeExhausted`] (`ENOSPC`) when no run of free
    /// segments is left, which includes every positive size larger than
    /// the range (up to `LONG_MAX`, whose rounding up to 4 KB does not
    /// fit `vmsize_t`); [`VmGallocError::NoMemory`] (`ENOMEM`) when the
    /// core runs out of SIDs or metadata.
    pub fn vm_galloc(&mut self, type_flags: c_int, size: vmsize_t) -> Result<u64, VmGallocError> {
        if self.in_interrupt("vm_galloc") {
            return Err(VmGallocError::WrongEnvironment);
        }
        if type_flags & V_WORKING == 0 {
            return Err(VmGallocError::MissingWorking { type_flags });
        }
        if !type_flags_ok(type_flags) {
            return Err(VmGallocError::UnknownTypeFlags { type_flags });
        }
        // Any positive size rounds without overflow; one too large for the
        // range is ENOSPC below, never EINVAL.
        let bytes = round_to_page(size).ok_or(VmGallocError::BadSize { size })?;
        let segments = bytes.div_ceil(SEGSIZE);
        let base = self
            .vm
            .free_run(Space::Kernel, self.config.galloc_esids(), segments)
            .ok_or(VmGallocError::RangeExhausted { segments })?;
        let prot = page_prot(type_flags);
        let mut sids = Vec::new();
        let mut left = bytes;
        while left > 0 {
            let this = left.min(SEGSIZE);
            match self.vm.create_segment((this / PAGESIZE) as u32, prot, true) {
                Ok(sid) => sids.push(sid),
                Err(e) => {
                    self.delete_logged(&sids);
                    return Err(VmGallocError::NoMemory(e.shortage()));
                }
            }
            left -= this;
        }
        // The kernel's mapping is a supervisor-only view: PP 00 whatever
        // the pages have, so with Ks = 0 the kernel reads and writes and
        // with Kp = 1 problem state gets nothing (ISA Book III §5.7.13.1),
        // even for V_UREAD pages (PP 01), which only a vm_guatt view
        // exposes.
        let how = MappingInfo {
            sid: 0,
            key: SegKey::KERNEL,
            no_exec: prot.no_exec,
            window: None,
            view_prot: ViewProt::SupervisorOnly,
            fork: ForkAction::Share,
        };
        let count = sids.len() as u64;
        let part = |i: u64| (sids[i as usize], None);
        if let Err(e) = Self::map_run(&mut self.vm, Space::Kernel, base, count, part, &how) {
            self.delete_logged(&sids);
            return Err(VmGallocError::NoMemory(e.shortage()));
        }
        let start = base << SEGSHIFT;
        self.galloc_sids.extend(sids.iter().copied());
        // The range was free, so no allocation starts at `start`.
        let at = self.allocations.partition_point(|a| a.start < start);
        self.allocations.insert(
            at,
            Allocation {
                start,
                bytes,
                sids,
                type_flags,
            },
        );
        Ok(start)
    }

    fn delete_logged(&mut self, sids: &[u64]) {
        for &s in sids {
            if let Err(e) = self.vm.delete_segment(s) {
                log::error!("aix: delete of SID {s:#x} failed: {e:?}");
            }
        }
    }

    /// `vm_gfree`: frees the allocation that starts at `eaddr` and was
    /// made with a size rounding to the same number of pages. Every
    /// process's `vm_guatt` attachment of it and every `vm_att` of its
    /// segments is taken down first; then its segments and frames go.
    ///
    /// Environment: process (and kernel process) only.
    ///
    /// # Errors
    /// [`VmGfreeError::WrongEnvironment`] in an interrupt handler;
    /// [`VmGfreeError::NoSuchAllocation`] unless (eaddr, size) is exactly
    /// one allocation (no partial free).
    pub fn vm_gfree(&mut self, eaddr: u64, size: vmsize_t) -> Result<(), VmGfreeError> {
        if self.in_interrupt("vm_gfree") {
            return Err(VmGfreeError::WrongEnvironment);
        }
        let bad = VmGfreeError::NoSuchAllocation { eaddr, size };
        let at = allocation_at(&self.allocations, eaddr).ok_or(bad)?;
        if round_to_page(size) != Some(self.allocations[at].bytes) {
            return Err(bad);
        }
        let a = self.allocations.remove(at);
        // Revoke user attachments.
        let spaces: Vec<Space> = self.contexts.keys().copied().collect();
        for space in spaces {
            let Some(c) = self.contexts.get_mut(&space) else {
                continue;
            };
            let (gone, kept): (Vec<Attachment>, Vec<Attachment>) =
                c.attachments.drain(..).partition(|t| t.allocation == eaddr);
            c.attachments = kept;
            for t in gone {
                for e in t.esids {
                    self.unmap_logged(space, e);
                }
            }
            self.refresh_adspace(space);
        }
        for &sid in &a.sids {
            for (space, e) in self.mappings_of(sid) {
                self.unmap_logged(space, e);
                self.vm_att.remove(&e);
            }
        }
        let base = a.start >> SEGSHIFT;
        for i in 0..a.sids.len() as u64 {
            self.unmap_logged(Space::Kernel, base + i);
        }
        self.delete_logged(&a.sids);
        for sid in &a.sids {
            self.galloc_sids.remove(sid);
        }
        Ok(())
    }

    /// `vm_guatt`: attaches [kaddr, kaddr + size) of one `vm_galloc`
    /// allocation to the current process and returns the user address.
    ///
    /// The region goes to the lowest free run of user segments (the shmat
    /// area of a 64-bit process, registers 3..13/15 of a 32-bit one), one
    /// per allocation segment it touches, keeping the offset within the
    /// segment. Only the pages of [kaddr, kaddr + size) become reachable
    /// (stricter than AIX): where the region covers only some pages of a
    /// segment, through a view with a VSID of its own, so no translation
    /// made for another mapping reaches the others; where it covers all of
    /// them, through the segment itself, which no mapping but another
    /// process's whole attachment uses (the kernel reaches `vm_galloc`
    /// memory through a view of its own). `VM_PRIV` gives read-write; `VM_UNPRIV` gives
    /// read-only on `V_UREAD` memory and nothing otherwise. The attachment
    /// is not inherited across fork.
    ///
    /// The C entry also refuses a non-NULL `*uaddr`
    /// ([`VmGuattError::UaddrNotNull`]).
    ///
    /// Environment: process only (a kernel process has no user space).
    ///
    /// # Errors
    /// `EINVAL`: [`VmGuattError::WrongEnvironment`],
    /// [`VmGuattError::NoUserAddressSpace`], [`VmGuattError::BadFlags`]
    /// (not `VU_ANYWHERE`), [`VmGuattError::BadKey`],
    /// [`VmGuattError::BadSize`] (`size <= 0`),
    /// [`VmGuattError::NotInAllocation`]. `ENOMEM`:
    /// [`VmGuattError::NoMemory`] when no free run of user segments is
    /// left or the core cannot map.
    pub fn vm_guatt(
        &mut self,
        kaddr: u64,
        size: vmsize_t,
        key: vmkey_t,
        flags: c_long,
    ) -> Result<u64, VmGuattError> {
        let (space, c) = match Self::process_context_in(&self.vm, &mut self.contexts, "vm_guatt") {
            Err(true) => return Err(VmGuattError::WrongEnvironment),
            Err(false) | Ok((Space::Kernel, _)) => return Err(VmGuattError::NoUserAddressSpace),
            Ok(x) => x,
        };
        if flags != VU_ANYWHERE {
            return Err(VmGuattError::BadFlags { flags });
        }
        let key = VmKey::from_raw(key).ok_or(VmGuattError::BadKey { key })?;
        if size <= 0 {
            return Err(VmGuattError::BadSize { size });
        }
        let a = allocation_containing(&self.allocations, kaddr, size)
            .ok_or(VmGuattError::NotInAllocation { kaddr, size })?;
        // Offsets from the allocation's start: it may end at the top of
        // the address space, where kaddr + size would wrap.
        let off = kaddr - a.start;
        let off_end = off + size as u64;
        let first = off >> SEGSHIFT;
        let count = ((off_end - 1) >> SEGSHIFT) - first + 1;
        // Part i: the allocation's segment first + i, windowed to the
        // pages of [off, off_end) in it. A window of all the segment's
        // pages is no window: the segment is mapped itself, and the core
        // makes no view (no SID, no segment record) for it.
        let part = |i: u64| {
            let seg = first + i;
            let seg_off = seg << SEGSHIFT;
            let lo = off.max(seg_off) - seg_off;
            let hi = off_end.min(seg_off + SEGSIZE) - seg_off;
            let window = (lo / PAGESIZE) as u32..hi.div_ceil(PAGESIZE) as u32;
            let seg_pages = (a.bytes - seg_off).min(SEGSIZE).div_ceil(PAGESIZE) as u32;
            let whole = window.start == 0 && window.end == seg_pages;
            (a.sids[seg as usize], (!whole).then_some(window))
        };
        let no_exec = a.type_flags & V_NOEXEC != 0;
        let allocation = a.start;
        let base = Self::place_user_in(&self.vm, space, c.model, count)
            .ok_or(VmGuattError::NoMemory(Shortage::Regions))?;
        let how = MappingInfo {
            sid: 0,
            key: seg_key(key),
            no_exec,
            window: None,
            view_prot: ViewProt::Segment,
            fork: ForkAction::Drop,
        };
        Self::map_run(&mut self.vm, space, base, count, part, &how)
            .map_err(|e| VmGuattError::NoMemory(e.shortage()))?;
        let uaddr = (base << SEGSHIFT) | (kaddr & SEGOFFSET);
        c.attachments.push(Attachment {
            allocation,
            kaddr,
            uaddr,
            size,
            esids: base..base + count,
        });
        self.refresh_adspace_for(space, base..base + count);
        Ok(uaddr)
    }

    /// `vm_gudet`: takes down the current process's attachment (kaddr,
    /// uaddr, size) made by `vm_guatt`; afterwards `uaddr` faults.
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// All `EINVAL`: [`VmGudetError::WrongEnvironment`],
    /// [`VmGudetError::BadFlags`] (not `VU_ANYWHERE`),
    /// [`VmGudetError::NotAllocated`] when [kaddr, kaddr + size) is not in
    /// a live allocation (also after `vm_gfree`),
    /// [`VmGudetError::NoSuchAttachment`] when the process has no such
    /// attachment.
    pub fn vm_gudet(
        &mut self,
        kaddr: u64,
        uaddr: u64,
        size: vmsize_t,
        flags: c_long,
    ) -> Result<(), VmGudetError> {
        let no_such = VmGudetError::NoSuchAttachment { kaddr, uaddr, size };
        let (space, c) = match Self::process_context_in(&self.vm, &mut self.contexts, "vm_gudet") {
            Err(true) => return Err(VmGudetError::WrongEnvironment),
            Err(false) => return Err(no_such),
            Ok(x) => x,
        };
        if flags != VU_ANYWHERE {
            return Err(VmGudetError::BadFlags { flags });
        }
        if allocation_containing(&self.allocations, kaddr, size).is_none() {
            return Err(VmGudetError::NotAllocated { kaddr, size });
        }
        let i = c
            .attachments
            .iter()
            .position(|t| t.kaddr == kaddr && t.uaddr == uaddr && t.size == size)
            .ok_or(no_such)?;
        let t = c.attachments.remove(i);
        for e in t.esids.clone() {
            self.unmap_logged(space, e);
        }
        self.refresh_adspace_for(space, t.esids);
        Ok(())
    }

    // -----------------------------------------------------------------
    // Temporary kernel attachments
    // -----------------------------------------------------------------

    /// `vm_att`: maps the segment of `handle` at a free slot of the
    /// kernel's `vm_att` window with the handle's key, and returns the
    /// address of `offset` in it (bits of `offset` above the segment
    /// offset are ignored). The slot belongs to the current context (the
    /// process, or the kernel for kernel processes and interrupts) and is
    /// reachable in supervisor state only.
    ///
    /// `offset` is not checked against the segment's size: as on AIX,
    /// `vm_att` only makes the segment addressable. An offset in no page
    /// of the segment (at or past its size rounded up to 4 KB) gives an
    /// address whose access faults
    /// ([`VmFaultReason::OutOfRange`](crate::platform::VmFaultReason::OutOfRange),
    /// a kernel fault, since the window is supervisor-only); a caller
    /// that takes the offset from an untrusted source checks it against
    /// the segment's size itself.
    ///
    /// AIX panics when no slot is free; this logs an error and fails.
    ///
    /// Environment: process or interrupt.
    ///
    /// # Errors
    /// [`VmAttError::BadHandle`], [`VmAttError::NoSuchSegment`] (a segment
    /// `vms_delete`d while held is still attachable until its last put),
    /// [`VmAttError::NoFreeRegion`] (logged as an error),
    /// [`VmAttError::NoMemory`].
    pub fn vm_att(&mut self, handle: vmhandle_t, offset: u64) -> Result<u64, VmAttError> {
        let h = VmHandle::from_raw(handle).map_err(VmAttError::BadHandle)?;
        let info = self
            .vm
            .segment(h.sid())
            .ok_or(VmAttError::NoSuchSegment { sid: h.sid() })?;
        let owner = self.current_context();
        let Some(esid) = self
            .vm
            .free_run(Space::Kernel, self.config.vm_att_esids(), 1)
        else {
            log::error!("vm_att: no free region for handle {handle:#x} (AIX would panic); refused");
            return Err(VmAttError::NoFreeRegion);
        };
        let how = kernel_only(h, info.prot);
        self.vm
            .map(Space::Kernel, esid, &how)
            .map_err(|e| VmAttError::NoMemory(e.shortage()))?;
        self.vm_att.insert(esid, owner);
        Ok((esid << SEGSHIFT) | (offset & SEGOFFSET))
    }

    /// `vm_det`: takes down the `vm_att` slot containing `eaddr` that the
    /// current context attached.
    ///
    /// AIX halts the system on a bad address; this logs an error and
    /// changes nothing.
    ///
    /// Environment: process or interrupt.
    ///
    /// # Errors
    /// [`VmDetError::NotAttached`] when `eaddr` is not in such a slot.
    pub fn vm_det(&mut self, eaddr: u64) -> Result<(), VmDetError> {
        let esid = eaddr >> SEGSHIFT;
        let owner = self.current_context();
        if self.vm_att.get(&esid) != Some(&owner) {
            log::error!("vm_det: {eaddr:#x} is not a vm_att region of this context (AIX would halt); ignored");
            return Err(VmDetError::NotAttached { eaddr });
        }
        self.vm_att.remove(&esid);
        self.unmap_logged(Space::Kernel, esid);
        Ok(())
    }

    // -----------------------------------------------------------------
    // Virtual memory objects
    // -----------------------------------------------------------------

    /// `vms_create`: creates a zero-filled working segment of `size` bytes
    /// (rounded up to 4 KB, at most one segment) and returns its id (its
    /// SID). `type` takes the `vm_galloc` flags: `V_WORKING` required,
    /// `V_UREAD` gives PP 01 pages, `V_NOEXEC` no-execute. The C entry's
    /// `dev`, `uplim` and `downlim` are ignored, as AIX documents for
    /// working segments.
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// [`VmsCreateError::WrongEnvironment`], [`VmsCreateError::BadType`],
    /// [`VmsCreateError::BadSize`] (`EINVAL`); [`VmsCreateError::NoMemory`]
    /// (`ENOMEM`).
    pub fn vms_create(
        &mut self,
        type_flags: c_int,
        size: vmsize_t,
    ) -> Result<vmid_t, VmsCreateError> {
        if self.in_interrupt("vms_create") {
            return Err(VmsCreateError::WrongEnvironment);
        }
        if !type_flags_ok(type_flags) {
            return Err(VmsCreateError::BadType { type_flags });
        }
        let bytes = round_to_page(size)
            .filter(|&b| b <= SEGSIZE)
            .ok_or(VmsCreateError::BadSize { size })?;
        let sid = self
            .vm
            .create_segment((bytes / PAGESIZE) as u32, page_prot(type_flags), false)
            .map_err(|e| VmsCreateError::NoMemory(e.shortage()))?;
        self.vms.insert(sid);
        Ok(sid as vmid_t)
    }

    /// `vms_delete`: deletes a segment `vms_create` made. Without holds it
    /// is unmapped from every region the services attached it to and
    /// destroyed at once. While `as_geth`/`as_geth64` holds are
    /// outstanding the delete is deferred: the segment stays mapped and
    /// usable, and goes (mappings included) at the last put.
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// All `EINVAL`: [`VmsDeleteError::WrongEnvironment`],
    /// [`VmsDeleteError::BadVmid`] (not a live `vms_create` segment, or
    /// already deleted), [`VmsDeleteError::MappedElsewhere`].
    pub fn vms_delete(&mut self, vmid: vmid_t) -> Result<(), VmsDeleteError> {
        if self.in_interrupt("vms_delete") {
            return Err(VmsDeleteError::WrongEnvironment);
        }
        let bad = VmsDeleteError::BadVmid { vmid };
        if vmid < 0 || !self.vms.contains(&(vmid as u64)) {
            return Err(bad);
        }
        let sid = vmid as u64;
        let info = self.vm.segment(sid).ok_or(bad)?;
        if info.delete_pending {
            return Err(bad);
        }
        if info.holds > 0 {
            self.vm.delete_segment(sid).map_err(|_| bad)?;
            return Ok(());
        }
        if self.mappings_of(sid).len() as u32 != info.attaches {
            return Err(VmsDeleteError::MappedElsewhere { vmid });
        }
        self.unmap_everywhere(sid);
        self.vms.remove(&sid);
        if let Err(e) = self.vm.delete_segment(sid) {
            log::error!("vms_delete: core refused SID {sid:#x}: {e:?}");
        }
        Ok(())
    }

    // -----------------------------------------------------------------
    // 32-bit address-space model: adspace_t
    // -----------------------------------------------------------------

    /// `getadsp`: the current process's `adspace_t` (a kernel process
    /// gets the kernel's), refreshed from the address space. The pointer
    /// stays valid until the process exits; pass it to `as_att`,
    /// `as_det`, `as_geth`, `as_puth`, `as_getsrval`. After the exit those
    /// refuse it (`BadAdspace`): its memory is never reused for another
    /// process's copy, and reads through it see an empty address space.
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// [`GetadspError::WrongEnvironment`], [`GetadspError::NoAddressSpace`].
    pub fn getadsp(&mut self) -> Result<NonNull<adspace_t>, GetadspError> {
        let space = match self.process_context("getadsp") {
            Err(true) => return Err(GetadspError::WrongEnvironment),
            Err(false) => return Err(GetadspError::NoAddressSpace),
            Ok(s) => s,
        };
        self.refresh_adspace(space);
        let c = self
            .contexts
            .get_mut(&space)
            .ok_or(GetadspError::NoAddressSpace)?;
        Ok(NonNull::from(&mut *c.adspace))
    }

    /// `as_att`: maps the segment of `handle` at the lowest free segment
    /// register of `adsp` among 3..13 and 15 (never 0, 1, 2, 14), with the
    /// handle's key, inherited across fork, and returns `(sr << 28) |
    /// (offset & 0x0FFF_FFFF)`. The region is addressable at once if
    /// `adsp` is current, else when it next becomes current.
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// [`AsAttError::WrongEnvironment`], [`AsAttError::BadAdspace`],
    /// [`AsAttError::BadHandle`], [`AsAttError::NoSuchSegment`],
    /// [`AsAttError::NotAttachable`], [`AsAttError::NoFreeRegister`] (C:
    /// NULL), [`AsAttError::NoMemory`].
    pub fn as_att(
        &mut self,
        adsp: *const adspace_t,
        handle: vmhandle_t,
        offset: u64,
    ) -> Result<u64, AsAttError> {
        if self.in_interrupt("as_att") {
            return Err(AsAttError::WrongEnvironment);
        }
        let space = self
            .context_of_adspace(adsp)
            .ok_or(AsAttError::BadAdspace {
                adsp: adsp as usize,
            })?;
        let h = VmHandle::from_raw(handle).map_err(AsAttError::BadHandle)?;
        match self.attachable(h.sid()) {
            Err(true) => return Err(AsAttError::NotAttachable { sid: h.sid() }),
            Err(false) => return Err(AsAttError::NoSuchSegment { sid: h.sid() }),
            Ok(()) => {}
        }
        let sr = SegmentRegister::attachable()
            .find(|sr| self.vm.mapping(space, sr.index() as u64).is_none())
            .ok_or(AsAttError::NoFreeRegister)?;
        let esid = sr.index() as u64;
        self.vm
            .map(space, esid, &region(h))
            .map_err(|e| AsAttError::NoMemory(e.shortage()))?;
        if let Some(c) = self.contexts.get_mut(&space) {
            c.regions.insert(esid);
        }
        self.refresh_adspace(space);
        Ok((esid << SEGSHIFT) | (offset & SEGOFFSET))
    }

    /// `as_det`: takes down the `as_att` region in the segment register
    /// that the upper 4 bits of the 32-bit `eaddr` name, freeing it.
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// All `EINVAL`: [`AsDetError::WrongEnvironment`],
    /// [`AsDetError::BadAdspace`], [`AsDetError::ReservedRegister`] (0, 1,
    /// 2, 14), [`AsDetError::Unallocated`], [`AsDetError::NotAttached`]
    /// (text, data, a `vm_guatt` attachment).
    pub fn as_det(&mut self, adsp: *const adspace_t, eaddr: u64) -> Result<(), AsDetError> {
        if self.in_interrupt("as_det") {
            return Err(AsDetError::WrongEnvironment);
        }
        let space = self
            .context_of_adspace(adsp)
            .ok_or(AsDetError::BadAdspace {
                adsp: adsp as usize,
            })?;
        let sr = SegmentRegister::of_address(eaddr);
        if sr.is_reserved() {
            return Err(AsDetError::ReservedRegister { sr: sr.index() });
        }
        let esid = sr.index() as u64;
        if self.vm.mapping(space, esid).is_none() {
            return Err(AsDetError::Unallocated { sr: sr.index() });
        }
        let c = self
            .contexts
            .get_mut(&space)
            .ok_or(AsDetError::BadAdspace {
                adsp: adsp as usize,
            })?;
        if !c.regions.remove(&esid) {
            return Err(AsDetError::NotAttached { sr: sr.index() });
        }
        self.unmap_logged(space, esid);
        self.refresh_adspace(space);
        Ok(())
    }

    fn geth_common(
        &mut self,
        adsp: *const adspace_t,
        addr: u64,
        hold: bool,
    ) -> Result<vmhandle_t, AsGethError> {
        let space = self
            .context_of_adspace(adsp)
            .ok_or(AsGethError::BadAdspace {
                adsp: adsp as usize,
            })?;
        let sr = SegmentRegister::of_address(addr);
        let m = self
            .vm
            .mapping(space, sr.index() as u64)
            .ok_or(AsGethError::Unallocated { sr: sr.index() })?;
        if self.galloc_sids.contains(&m.sid) {
            return Err(AsGethError::GlobalMemory { sr: sr.index() });
        }
        if hold {
            self.take_hold(space, m.sid)
                .map_err(|_| AsGethError::Unallocated { sr: sr.index() })?;
        }
        Ok(m.handle_raw())
    }

    fn take_hold(&mut self, space: Space, sid: u64) -> Result<(), CoreError> {
        self.vm.hold_segment(sid)?;
        if let Some(c) = self.contexts.get_mut(&space) {
            *c.holds.entry(sid).or_insert(0) += 1;
        }
        Ok(())
    }

    /// Releases one hold `space` took on `sid`; `false` if it has none.
    fn release_hold(&mut self, space: Space, sid: u64) -> bool {
        let Some(c) = self.contexts.get_mut(&space) else {
            return false;
        };
        match c.holds.get_mut(&sid) {
            Some(n) if *n > 0 => {
                *n -= 1;
                if *n == 0 {
                    c.holds.remove(&sid);
                }
            }
            _ => return false,
        }
        self.put_one_hold(sid);
        true
    }

    /// Puts one hold on `sid` in the core. The last put of a segment
    /// `vms_delete`d while held destroys it and its mappings, so the
    /// mappings the services recorded go first, and the deferred delete is
    /// finished afterwards.
    fn put_one_hold(&mut self, sid: u64) {
        if self
            .vm
            .segment(sid)
            .is_some_and(|i| i.delete_pending && i.holds == 1)
        {
            self.unmap_everywhere(sid);
        }
        if let Err(e) = self.vm.put_segment(sid) {
            log::error!("aix: put of SID {sid:#x} failed: {e:?}");
        }
        self.finish_pending_delete(sid);
    }

    /// `as_geth`: the handle in the segment register of `addr` in `adsp`,
    /// with a hold that defers the segment's deletion until `as_puth`.
    /// A register holding a `vm_guatt` attachment gives no handle
    /// ([`AsGethError::GlobalMemory`]), as for [`Aix::as_geth64`].
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// [`AsGethError::WrongEnvironment`], [`AsGethError::BadAdspace`],
    /// [`AsGethError::Unallocated`], [`AsGethError::GlobalMemory`]
    /// (C: `INVLSID`).
    pub fn as_geth(
        &mut self,
        adsp: *const adspace_t,
        addr: u64,
    ) -> Result<vmhandle_t, AsGethError> {
        if self.in_interrupt("as_geth") {
            return Err(AsGethError::WrongEnvironment);
        }
        self.geth_common(adsp, addr, true)
    }

    /// `as_puth`: releases one `as_geth` hold of `adsp` on the segment of
    /// `handle`. The last put of a `vms_delete`d segment destroys it.
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// [`AsPuthError::WrongEnvironment`], [`AsPuthError::BadAdspace`],
    /// [`AsPuthError::BadHandle`], [`AsPuthError::NoHold`] (a put without
    /// a get is refused, never counted below zero).
    pub fn as_puth(
        &mut self,
        adsp: *const adspace_t,
        handle: vmhandle_t,
    ) -> Result<(), AsPuthError> {
        if self.in_interrupt("as_puth") {
            return Err(AsPuthError::WrongEnvironment);
        }
        let space = self
            .context_of_adspace(adsp)
            .ok_or(AsPuthError::BadAdspace {
                adsp: adsp as usize,
            })?;
        let h = VmHandle::from_raw(handle).map_err(AsPuthError::BadHandle)?;
        if !self.release_hold(space, h.sid()) {
            return Err(AsPuthError::NoHold { sid: h.sid() });
        }
        Ok(())
    }

    /// `as_getsrval`: as `as_geth` without a hold; its handle must never be
    /// given to `as_puth`.
    ///
    /// Environment: process or interrupt.
    ///
    /// # Errors
    /// [`AsGethError::BadAdspace`], [`AsGethError::Unallocated`],
    /// [`AsGethError::GlobalMemory`] (C: `INVLSID`).
    pub fn as_getsrval(
        &mut self,
        adsp: *const adspace_t,
        addr: u64,
    ) -> Result<vmhandle_t, AsGethError> {
        self.geth_common(adsp, addr, false)
    }

    // -----------------------------------------------------------------
    // The *64 services: current process only
    // -----------------------------------------------------------------

    /// Whether `addr64` is in segment register 0, 1, 2 or 14 of a 32-bit
    /// address space (a 32-bit process, or the kernel's registers kernel
    /// processes use): neither `as_seth64` nor `as_det64` may touch those.
    fn reserved_register(&self, space: Space, addr64: u64) -> bool {
        addr64 >> SEGSHIFT < NSEGS as u64
            && self
                .contexts
                .get(&space)
                .is_some_and(|c| c.model == AddressModel::Bits32)
            && SegmentRegister::of_address(addr64).is_reserved()
    }

    fn ctx64(&self, service: &str) -> Result<(Space, u64), bool> {
        let space = self.process_context(service)?;
        let end = self
            .contexts
            .get(&space)
            .map(Context::addr_end)
            .ok_or(false)?;
        Ok((space, end))
    }

    /// `as_att64`: maps the segment of `handle` at a free region of the
    /// current process (the shmat area of a 64-bit process, registers
    /// 3..13/15 of a 32-bit process or a kernel process), shared across
    /// fork, and returns the region's base plus `offset` (its upper 4 bits
    /// ignored: only the 28-bit segment offset is used).
    ///
    /// The C entry returns 0 on failure and records the errno for
    /// `vmm_errno()` ([`Aix::errno`]).
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// `EINVAL`: [`AsAtt64Error::WrongEnvironment`],
    /// [`AsAtt64Error::NoAddressSpace`], [`AsAtt64Error::BadHandle`],
    /// [`AsAtt64Error::NoSuchSegment`], [`AsAtt64Error::NotAttachable`].
    /// `ENOMEM`: [`AsAtt64Error::NoMemory`] (no free region, or the core
    /// cannot map).
    pub fn as_att64(&mut self, handle: vmhandle_t, offset: c_int) -> Result<u64, AsAtt64Error> {
        let space = match self.process_context("as_att64") {
            Err(true) => return Err(AsAtt64Error::WrongEnvironment),
            Err(false) => return Err(AsAtt64Error::NoAddressSpace),
            Ok(s) => s,
        };
        let h = VmHandle::from_raw(handle).map_err(AsAtt64Error::BadHandle)?;
        match self.attachable(h.sid()) {
            Err(true) => return Err(AsAtt64Error::NotAttachable { sid: h.sid() }),
            Err(false) => return Err(AsAtt64Error::NoSuchSegment { sid: h.sid() }),
            Ok(()) => {}
        }
        let esid = self
            .place_user(space, 1)
            .ok_or(AsAtt64Error::NoMemory(Shortage::Regions))?;
        self.vm
            .map(space, esid, &region(h))
            .map_err(|e| AsAtt64Error::NoMemory(e.shortage()))?;
        if let Some(c) = self.contexts.get_mut(&space) {
            c.regions.insert(esid);
        }
        self.refresh_adspace(space);
        Ok((esid << SEGSHIFT) | (offset as u32 as u64 & SEGOFFSET))
    }

    /// `as_det64`: takes down the `as_att64`/`as_att`/`as_seth64` region
    /// covering `addr64` in the current process.
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// All `EINVAL`: [`AsDet64Error::WrongEnvironment`],
    /// [`AsDet64Error::NoAddressSpace`], [`AsDet64Error::OutOfRange`],
    /// [`AsDet64Error::Unallocated`], [`AsDet64Error::NotDetachable`]
    /// (kernel, text, private, reserved registers, `vm_guatt`
    /// attachments).
    pub fn as_det64(&mut self, addr64: u64) -> Result<(), AsDet64Error> {
        let (space, end) = match self.ctx64("as_det64") {
            Err(true) => return Err(AsDet64Error::WrongEnvironment),
            Err(false) => return Err(AsDet64Error::NoAddressSpace),
            Ok(x) => x,
        };
        if addr64 >= end {
            return Err(AsDet64Error::OutOfRange { addr: addr64 });
        }
        let esid = addr64 >> SEGSHIFT;
        if self.vm.mapping(space, esid).is_none() {
            return Err(AsDet64Error::Unallocated { addr: addr64 });
        }
        let reserved = self.reserved_register(space, addr64);
        let c = self
            .contexts
            .get_mut(&space)
            .ok_or(AsDet64Error::NoAddressSpace)?;
        if reserved || !c.regions.remove(&esid) {
            return Err(AsDet64Error::NotDetachable { addr: addr64 });
        }
        self.unmap_logged(space, esid);
        self.refresh_adspace(space);
        Ok(())
    }

    /// `as_seth64`: maps the segment of `handle` at the fixed region
    /// covering `addr64` in the current process, replacing whatever was
    /// there (a `vm_guatt` attachment that loses a segment is taken down
    /// whole). The new region is detachable with `as_det64` and shared
    /// across fork.
    ///
    /// In a 32-bit process or a kernel process the reserved segment
    /// registers 0, 1, 2 and 14 (kernel, text, private data, shared
    /// library data) are refused, the same ones `as_det64` refuses.
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// `EINVAL`: [`AsSeth64Error::WrongEnvironment`],
    /// [`AsSeth64Error::NoAddressSpace`], [`AsSeth64Error::OutOfRange`],
    /// [`AsSeth64Error::ReservedRegister`], [`AsSeth64Error::BadHandle`], [`AsSeth64Error::NoSuchSegment`],
    /// [`AsSeth64Error::NotAttachable`]. `ENOMEM`:
    /// [`AsSeth64Error::NoMemory`] (nothing changed: the core replaces the
    /// mapping atomically and the rest of an attachment is taken down only
    /// after that).
    pub fn as_seth64(&mut self, addr64: u64, handle: vmhandle_t) -> Result<(), AsSeth64Error> {
        let (space, end) = match self.ctx64("as_seth64") {
            Err(true) => return Err(AsSeth64Error::WrongEnvironment),
            Err(false) => return Err(AsSeth64Error::NoAddressSpace),
            Ok(x) => x,
        };
        if addr64 >= end {
            return Err(AsSeth64Error::OutOfRange { addr: addr64 });
        }
        if self.reserved_register(space, addr64) {
            return Err(AsSeth64Error::ReservedRegister { addr: addr64 });
        }
        let h = VmHandle::from_raw(handle).map_err(AsSeth64Error::BadHandle)?;
        match self.attachable(h.sid()) {
            Err(true) => return Err(AsSeth64Error::NotAttachable { sid: h.sid() }),
            Err(false) => return Err(AsSeth64Error::NoSuchSegment { sid: h.sid() }),
            Ok(()) => {}
        }
        let esid = addr64 >> SEGSHIFT;
        // What goes: the mapping at esid, and the rest of a vm_guatt
        // attachment it belongs to.
        let attachment = self
            .contexts
            .get(&space)
            .and_then(|c| c.attachments.iter().position(|t| t.esids.contains(&esid)));
        let others: Vec<u64> = match attachment {
            Some(i) => self.contexts[&space].attachments[i]
                .esids
                .clone()
                .filter(|&e| e != esid)
                .collect(),
            None => Vec::new(),
        };
        // The core replaces the mapping at esid in one step (nothing
        // changes if it fails); the other segments of the attachment go
        // only after that succeeded.
        self.vm
            .replace(space, esid, &region(h))
            .map_err(|e| AsSeth64Error::NoMemory(e.shortage()))?;
        for e in others {
            self.unmap_logged(space, e);
        }
        if let Some(c) = self.contexts.get_mut(&space) {
            if let Some(i) = attachment {
                c.attachments.remove(i);
            }
            c.regions.insert(esid);
        }
        self.refresh_adspace(space);
        Ok(())
    }

    fn geth64_common(
        &mut self,
        space: Space,
        end: u64,
        addr64: u64,
        hold: bool,
    ) -> Result<vmhandle_t, AsGeth64Error> {
        if addr64 >= end {
            return Err(AsGeth64Error::OutOfRange { addr: addr64 });
        }
        let m = self
            .vm
            .mapping(space, addr64 >> SEGSHIFT)
            .ok_or(AsGeth64Error::Unmapped { addr: addr64 })?;
        if self.galloc_sids.contains(&m.sid) {
            return Err(AsGeth64Error::GlobalMemory { addr: addr64 });
        }
        if hold {
            self.take_hold(space, m.sid)
                .map_err(|_| AsGeth64Error::Unmapped { addr: addr64 })?;
        }
        Ok(m.handle_raw())
    }

    /// `as_geth64`: the handle of the segment at `addr64` in the current
    /// process, with a hold that defers its deletion (`vms_delete`) until
    /// `as_puth64`. Until then the segment stays fully usable: the handle
    /// can be attached again ([`Aix::as_att64`], [`Aix::as_att`],
    /// [`Aix::vm_att`]) and fork inherits its mappings.
    ///
    /// An address attached with [`Aix::vm_guatt`] gives no handle
    /// ([`AsGeth64Error::GlobalMemory`], C `INVLSID`): the handle names the
    /// whole `vm_galloc` segment, so `as_att64` with it would reach pages
    /// outside the window `vm_guatt` allowed.
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// All C `INVLSID`: [`AsGeth64Error::WrongEnvironment`],
    /// [`AsGeth64Error::NoAddressSpace`], [`AsGeth64Error::OutOfRange`],
    /// [`AsGeth64Error::Unmapped`], [`AsGeth64Error::GlobalMemory`].
    pub fn as_geth64(&mut self, addr64: u64) -> Result<vmhandle_t, AsGeth64Error> {
        let (space, end) = match self.ctx64("as_geth64") {
            Err(true) => return Err(AsGeth64Error::WrongEnvironment),
            Err(false) => return Err(AsGeth64Error::NoAddressSpace),
            Ok(x) => x,
        };
        self.geth64_common(space, end, addr64, true)
    }

    /// `as_puth64`: releases the current process's `as_geth64` hold on the
    /// segment `handle` names (the handle is authoritative, not what is
    /// mapped at `addr64` now). The last put of a `vms_delete`d segment
    /// destroys it.
    ///
    /// Environment: process only.
    ///
    /// # Errors
    /// All `EINVAL`: [`AsPuth64Error::WrongEnvironment`],
    /// [`AsPuth64Error::NoAddressSpace`], [`AsPuth64Error::OutOfRange`],
    /// [`AsPuth64Error::BadHandle`], [`AsPuth64Error::NoHold`] (a put
    /// without a get is refused, never counted below zero).
    pub fn as_puth64(&mut self, addr64: u64, handle: vmhandle_t) -> Result<(), AsPuth64Error> {
        let (space, end) = match self.ctx64("as_puth64") {
            Err(true) => return Err(AsPuth64Error::WrongEnvironment),
            Err(false) => return Err(AsPuth64Error::NoAddressSpace),
            Ok(x) => x,
        };
        if addr64 >= end {
            return Err(AsPuth64Error::OutOfRange { addr: addr64 });
        }
        let h = VmHandle::from_raw(handle).map_err(AsPuth64Error::BadHandle)?;
        if !self.release_hold(space, h.sid()) {
            return Err(AsPuth64Error::NoHold { sid: h.sid() });
        }
        Ok(())
    }

    /// `as_getsrval64`: as `as_geth64` without a hold; never pair it with
    /// `as_puth64`.
    ///
    /// Environment: process; interrupt only when the interrupted address
    /// space is 32-bit or a kernel process's (a 16-register lookup).
    ///
    /// # Errors
    /// All C `INVLSID`: [`AsGeth64Error::WrongEnvironment`] (interrupt on
    /// a 64-bit space), [`AsGeth64Error::NoAddressSpace`],
    /// [`AsGeth64Error::OutOfRange`], [`AsGeth64Error::Unmapped`],
    /// [`AsGeth64Error::GlobalMemory`].
    pub fn as_getsrval64(&mut self, addr64: u64) -> Result<vmhandle_t, AsGeth64Error> {
        let (space, end) = if self.vm.environment() == Environment::Interrupt {
            let space = self.current_context();
            let c = self
                .contexts
                .get(&space)
                .ok_or(AsGeth64Error::NoAddressSpace)?;
            if c.model == AddressModel::Bits64 {
                log::warn!(
                    "as_getsrval64: interrupt environment on a 64-bit address space; refused"
                );
                return Err(AsGeth64Error::WrongEnvironment);
            }
            (space, c.addr_end())
        } else {
            match self.ctx64("as_getsrval64") {
                Err(true) => return Err(AsGeth64Error::WrongEnvironment),
                Err(false) => return Err(AsGeth64Error::NoAddressSpace),
                Ok(x) => x,
            }
        };
        self.geth64_common(space, end, addr64, false)
    }
}
