//! What belongs to one processor: its SLB (hardware and the manager's
//! shadow and round robin), the address space it runs, and what it is
//! doing ([`Environment`]). Everything else — segments, address spaces,
//! the HPT, SIDs, frames — is shared by all processors and lives in the
//! [`Vmm`].
//!
//! # One processor or several
//!
//! A [`Vmm`] made by [`Vmm::new`] comes with processor 0's state
//! installed, so a uniprocessor kernel never sees a [`CpuMmu`]. On SMP each
//! further processor gets its state from [`Vmm::add_cpu`] (it comes with
//! the bolted kernel segments loaded) and keeps it in its own per-CPU
//! area. The shared part is, for now, used under one lock held by the
//! caller (see "Locking" in [`crate::vm`]); the processor that holds it
//! lends its state to the manager for the duration with
//! [`Vmm::install_cpu`] and takes it back with [`Vmm::take_cpu`]. Every
//! operation that reads or changes "the" SLB or "the" running space acts on
//! the installed processor.
//!
//! # SLB shootdown
//!
//! An SLB entry is private to a processor (`slbmte`, `slbie` and `slbia`
//! are local) but the mappings it caches are shared. When a mapping leaves
//! an address space (unmap, replace, destroy) or the space's table of SLB
//! words moves, every processor running that space — every online one for
//! the kernel's space — must act before the operation returns: drop the
//! entry, and point its segment-miss fast path at the table's new place.
//! The manager knows which processors run which space (it is told at each
//! [`Vmm::switch_to`]), acts on the installed one itself, and hands the
//! others to the platform's [`SlbShootdown`], which delivers the
//! [`ShootdownRequest`] (an IPI) and waits until each target has applied it
//! to its own state with [`CpuMmu::apply`]. So when `as_det` returns, no
//! processor can still translate through the detached segment: its next
//! access misses the SLB and the full path finds nothing mapped.
//!
//! A per-processor generation checked before returning to problem state
//! would not be enough: a thread already running in problem state on
//! another processor would keep the entry until its next interrupt, and
//! the segment's pages would stay reachable through the HPTEs its other
//! mappings keep.

use arch_ppc64::addr::Esid;
use arch_ppc64::structures::slb::SlbEntry;

use super::{SpaceId, SpaceRef, Vmm};
use crate::platform::{Environment, FrameAllocator, HptBackend, SlbBackend};
use crate::slb::SlbManager;
use crate::slbtable::TableRef;

/// Most processors a [`Vmm`] serves (the width of [`CpuSet`]).
pub const MAX_CPUS: usize = 64;

/// A set of processor indexes below [`MAX_CPUS`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CpuSet(u64);

impl CpuSet {
    /// No processor.
    pub const EMPTY: CpuSet = CpuSet(0);

    /// Processor `index` alone (`index` < [`MAX_CPUS`]).
    pub const fn single(index: usize) -> CpuSet {
        CpuSet(1 << index)
    }

    /// The set as a bit mask, bit `i` for processor `i`.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Whether processor `index` is in the set.
    pub const fn contains(self, index: usize) -> bool {
        index < MAX_CPUS && self.0 & (1 << index) != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Number of processors in the set.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The set with processor `index` added.
    #[must_use]
    pub const fn with(self, index: usize) -> CpuSet {
        CpuSet(self.0 | 1 << index)
    }

    /// The set with processor `index` removed.
    #[must_use]
    pub const fn without(self, index: usize) -> CpuSet {
        if index < MAX_CPUS {
            CpuSet(self.0 & !(1 << index))
        } else {
            self
        }
    }

    /// The set less every processor of `other`.
    #[must_use]
    pub const fn without_all(self, other: CpuSet) -> CpuSet {
        CpuSet(self.0 & !other.0)
    }

    /// The processors in the set, lowest first.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        let mut bits = self.0;
        core::iter::from_fn(move || {
            (bits != 0).then(|| {
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                i
            })
        })
    }
}

/// What a processor must do to its SLB state because of a change to an
/// address space (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlbChange {
    /// Only the table moved: publish it to the fast path.
    Publish,
    /// The mapping at this ESID left the space: drop its entry (and
    /// publish the table).
    Invalidate(Esid),
    /// A bolted kernel segment: load it at this bolted index (and publish
    /// the kernel's table). Only sent for [`SpaceRef::Kernel`].
    Bolt {
        /// The bolted index.
        index: usize,
        /// The entry.
        entry: SlbEntry,
    },
}

/// A change another processor made to an address space that this
/// processor may hold in its SLB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShootdownRequest {
    /// The space changed. A processor applies a process space's change only
    /// if it runs that space; every processor applies the kernel's.
    pub space: SpaceRef,
    /// Where that space's SLB words are now.
    pub table: TableRef,
    /// What to do.
    pub change: SlbChange,
}

/// How a platform reaches the other processors: the IPI behind SLB
/// shootdown (see the module documentation).
pub trait SlbShootdown: Send + Sync {
    /// Makes every processor in `targets` (never the caller) apply
    /// `request` to its own state with [`CpuMmu::apply`], and returns once
    /// each has. The manager calls this with its lock held, so a target
    /// must be able to take the request while it waits for that lock (on
    /// hardware: spin with external interrupts enabled).
    fn shootdown(&mut self, targets: CpuSet, request: &ShootdownRequest);
}

/// One processor's MMU state (see the module documentation).
pub struct CpuMmu<S: SlbBackend> {
    pub(super) index: usize,
    pub(super) slb_hw: S,
    pub(super) slb: SlbManager,
    pub(super) current: Option<SpaceId>,
    pub(super) environment: Environment,
}

impl<S: SlbBackend> core::fmt::Debug for CpuMmu<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CpuMmu")
            .field("index", &self.index)
            .field("current", &self.current)
            .field("environment", &self.environment)
            .field("slb_valid", &self.slb.valid_count())
            .finish_non_exhaustive()
    }
}

impl<S: SlbBackend> CpuMmu<S> {
    /// The processor's index in the manager's [`CpuSet`]s.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The SLB manager's view of this processor's SLB.
    pub fn slb(&self) -> &SlbManager {
        &self.slb
    }

    /// This processor's SLB backend.
    pub fn slb_backend(&self) -> &S {
        &self.slb_hw
    }

    /// The process address space this processor runs, if any.
    pub fn current(&self) -> Option<SpaceId> {
        self.current
    }

    /// What this processor runs now (see [`Vmm::set_environment`]).
    pub fn environment(&self) -> Environment {
        self.environment
    }

    /// Sets what this processor runs now.
    pub fn set_environment(&mut self, environment: Environment) {
        self.environment = environment;
    }

    /// Whether this processor holds `space` in its SLB: the kernel's
    /// always, a process's while it runs it.
    pub fn runs(&self, space: SpaceRef) -> bool {
        match space {
            SpaceRef::Kernel => true,
            SpaceRef::User(id) => self.current == Some(id),
        }
    }

    /// Applies a change another processor made (see [`SlbShootdown`]); a
    /// change to a process space this processor does not run is ignored.
    /// Runs on this processor (its `slbie` and `slbmte` are local).
    #[inline]
    pub fn apply(&mut self, request: &ShootdownRequest) {
        if !self.runs(request.space) {
            return;
        }
        match request.change {
            SlbChange::Publish => {}
            SlbChange::Invalidate(esid) => {
                self.slb.invalidate_esid(&mut self.slb_hw, esid);
            }
            SlbChange::Bolt { index, entry } => {
                if let Err(e) = self.slb.bolt(&mut self.slb_hw, index, entry) {
                    log::error!("cpu {}: bolting {entry:?} at {index}: {e:?}", self.index);
                }
            }
        }
        match request.space {
            SpaceRef::Kernel => {
                let [user, _] = self.slb.tables();
                self.slb.set_tables(user, request.table);
            }
            SpaceRef::User(_) => self.slb.set_user_table(request.table),
        }
    }
}

impl<H: HptBackend, S: SlbBackend, F: FrameAllocator> Vmm<H, S, F> {
    /// The installed processor's state.
    ///
    /// # Panics
    ///
    /// If none is installed ([`Vmm::take_cpu`] without
    /// [`Vmm::install_cpu`]): operations that act on "the" SLB need one.
    pub(super) fn local(&self) -> &CpuMmu<S> {
        self.local
            .as_ref()
            .expect("vm: no processor installed (Vmm::install_cpu)")
    }

    /// [`Vmm::local`], mutably.
    pub(super) fn local_mut(&mut self) -> &mut CpuMmu<S> {
        self.local
            .as_mut()
            .expect("vm: no processor installed (Vmm::install_cpu)")
    }

    /// The installed processor's state, if one is installed (what a
    /// kernel passes to [`Vmm::resolve_shared`] for the processor whose
    /// state the manager holds).
    pub fn installed_cpu(&self) -> Option<&CpuMmu<S>> {
        self.local.as_ref()
    }

    /// The installed processor's index, if one is installed.
    pub(super) fn local_index(&self) -> Option<usize> {
        self.local.as_ref().map(|c| c.index)
    }

    /// Makes the state of another processor, with the bolted kernel
    /// segments loaded into its SLB and the kernel's table published.
    /// `slb_hw` must act on that processor's SLB: on hardware, where
    /// `slbmte` is local, call this on the new processor itself (with no
    /// processor installed, or with it lent back afterwards). The processor
    /// keeps the state and lends it with [`Vmm::install_cpu`] when it calls
    /// the manager.
    ///
    /// # Errors
    /// [`super::VmError::TooManyCpus`] beyond [`MAX_CPUS`];
    /// [`super::VmError::Slb`] if this SLB is too small for the bolted
    /// entries or refuses one.
    pub fn add_cpu(&mut self, mut slb_hw: S) -> Result<CpuMmu<S>, super::VmError> {
        let index = (0..MAX_CPUS)
            .find(|&i| !self.online.contains(i))
            .ok_or(super::VmError::TooManyCpus)?;
        let mut slb = SlbManager::new(slb_hw.slb_size(), self.slb_bolted)?;
        slb.set_hardware_index_base(slb_hw.hardware_index_base());
        slb.switch(&mut slb_hw);
        for &(i, entry) in &self.bolted {
            slb.bolt(&mut slb_hw, i, entry)?;
        }
        slb.set_tables(TableRef::empty(), self.kernel.slb_table().raw());
        self.online = self.online.with(index);
        self.cpu_space[index] = None;
        Ok(CpuMmu {
            index,
            slb_hw,
            slb,
            current: None,
            environment: Environment::KernelProcess,
        })
    }

    /// Forgets a processor going offline; it stops running its process
    /// space, if any.
    pub fn remove_cpu(&mut self, cpu: CpuMmu<S>) {
        self.cpu_space[cpu.index] = None;
        self.online = self.online.without(cpu.index);
    }

    /// Lends processor `cpu`'s state to the manager: the operations that
    /// act on "the" SLB and running space act on it until
    /// [`Vmm::take_cpu`]. Gives `cpu` back if another is installed.
    pub fn install_cpu(&mut self, cpu: CpuMmu<S>) -> Result<(), CpuMmu<S>> {
        if self.local.is_some() {
            return Err(cpu);
        }
        self.local = Some(cpu);
        Ok(())
    }

    /// Takes the installed processor's state back.
    pub fn take_cpu(&mut self) -> Option<CpuMmu<S>> {
        self.local.take()
    }

    /// The processors online (the one made with the manager, the ones
    /// [`Vmm::add_cpu`] made).
    pub fn online_cpus(&self) -> CpuSet {
        self.online
    }

    /// The processors running process space `id` (as told by
    /// [`Vmm::switch_to`]; none for a space that does not exist).
    pub fn cpus_running(&self, id: SpaceId) -> CpuSet {
        let mut set = CpuSet::EMPTY;
        for i in self.online.iter() {
            if self.cpu_space[i] == Some(id) {
                set = set.with(i);
            }
        }
        set
    }

    /// Sets how shootdowns reach the other processors. Without one, a
    /// change that another processor would have to apply panics: a
    /// multiprocessor platform must set it before it starts a second
    /// processor.
    pub fn set_shootdown(&mut self, shootdown: alloc::boxed::Box<dyn SlbShootdown>) {
        self.shootdown = Some(shootdown);
    }

    /// Applies `change` to `space` on every processor holding it (the
    /// kernel's: every online one; a process's: those running it): the
    /// installed one here, the others through the platform's shootdown,
    /// which returns once they have.
    pub(super) fn change_everywhere(&mut self, space: SpaceRef, change: SlbChange) {
        let here = self.local.as_ref().is_some_and(|c| c.runs(space));
        let others = self.other_holders(space);
        // One lookup finds the table to publish and whether a resize left
        // old storage behind.
        let table = self.slb_table_of(space);
        let retired = table.is_some_and(|t| t.retired() > 0);
        if here || !others.is_empty() {
            let request = ShootdownRequest {
                space,
                table: table.map_or_else(TableRef::empty, |t| t.raw()),
                change,
            };
            if here {
                if let Some(cpu) = self.local.as_mut() {
                    cpu.apply(&request);
                }
            }
            self.send(others, &request);
        }
        // Every processor holding the space now searches its table where
        // it is: storage a resize replaced can go.
        if retired {
            if let Ok(a) = self.space_mut(space) {
                a.release_retired_slb();
            }
        }
    }

    /// [`Vmm::change_everywhere`] but for the installed processor (which
    /// the caller has seen to).
    pub(super) fn change_elsewhere(&mut self, space: SpaceRef, change: SlbChange) {
        let others = self.other_holders(space);
        if !others.is_empty() {
            let request = self.request(space, change);
            self.send(others, &request);
        }
    }

    /// The processors other than the installed one that hold `space`.
    #[inline]
    fn other_holders(&self, space: SpaceRef) -> CpuSet {
        let others = |set: CpuSet| match self.local_index() {
            Some(i) => set.without(i),
            None => set,
        };
        // One processor online: nobody to ask, without a scan.
        if others(self.online).is_empty() {
            return CpuSet::EMPTY;
        }
        others(match space {
            SpaceRef::Kernel => self.online,
            SpaceRef::User(id) => self.cpus_running(id),
        })
    }

    /// The SLB-word table of `space`, if it exists.
    fn slb_table_of(&self, space: SpaceRef) -> Option<&crate::slbtable::SlbTable> {
        match space {
            SpaceRef::Kernel => Some(self.kernel.slb_table()),
            SpaceRef::User(id) => self.spaces.get(&id).map(|a| a.slb_table()),
        }
    }

    fn request(&self, space: SpaceRef, change: SlbChange) -> ShootdownRequest {
        ShootdownRequest {
            space,
            table: self
                .slb_table_of(space)
                .map_or_else(TableRef::empty, |t| t.raw()),
            change,
        }
    }

    fn send(&mut self, others: CpuSet, request: &ShootdownRequest) {
        if others.is_empty() {
            return;
        }
        match self.shootdown.as_mut() {
            Some(s) => s.shootdown(others, request),
            None => panic!(
                "vm: processors {others:?} hold {:?} but no shootdown is set",
                request.space
            ),
        }
    }
}
