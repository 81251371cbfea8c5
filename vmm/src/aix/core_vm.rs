//! [`AixVm`] on the real core: [`CoreVm`] wraps a [`Vmm`] and tells the
//! services which process is which address space. What is running comes
//! from the core itself ([`Vmm::environment`]), the same value its fault
//! path obeys.
//!
//! The core names process address spaces by [`SpaceId`]; the services by
//! [`ProcessId`]. `CoreVm` keeps the table between the two, plus one extra
//! process space for kernel processes: AIX gives a kernel process the
//! kernel's 16 segment registers, which on ppc64 are ESIDs 0..15, in the
//! core's process half.

use alloc::collections::BTreeMap;
use core::ops::Range;

use arch_ppc64::addr::Esid;

use crate::platform::{Environment, FrameAllocator, HptBackend, ProcessId, SlbBackend};
use crate::segment::{SegmentError, SegmentKind, ViewProt};
use crate::sid::{Sid, SidKind};
use crate::vm::{MapOptions, SpaceId, SpaceRef, VmError, Vmm, KERNEL_ESID_BASE};

use super::backend::{probe_free_run, AixVm, CoreError, MappingInfo, SegmentInfo, Space};
use super::consts::PAGESIZE;
use super::error::Shortage;
use super::segregs::{adspace_t, SegmentRegister};

const _: () = assert!(KERNEL_ESID_BASE == super::backend::KERNEL_ESID_BASE);

/// The core plus the process table the services need.
pub struct CoreVm<H: HptBackend, S: SlbBackend, F: FrameAllocator> {
    vmm: Vmm<H, S, F>,
    processes: BTreeMap<ProcessId, SpaceId>,
    kproc: SpaceId,
    sid_quota: Option<usize>,
    fail_map_after: Option<u32>,
}

impl<H: HptBackend, S: SlbBackend, F: FrameAllocator> core::fmt::Debug for CoreVm<H, S, F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CoreVm")
            .field("vmm", &self.vmm)
            .field("processes", &self.processes.len())
            .field("kproc", &self.kproc)
            .finish_non_exhaustive()
    }
}

fn core_error(e: VmError) -> CoreError {
    match e {
        VmError::NoFrames => CoreError::Shortage(Shortage::Frames),
        VmError::NoSids => CoreError::Shortage(Shortage::Sids),
        VmError::Sid(_) => CoreError::Shortage(Shortage::Sids),
        VmError::Segment(SegmentError::NoSuchSegment(s)) => CoreError::NoSuchSegment(s),
        VmError::Segment(SegmentError::NotHeld(s)) => CoreError::NotHeld(s),
        VmError::Segment(SegmentError::Attached(s)) => CoreError::Attached(s),
        VmError::Segment(SegmentError::DeletePending(s)) => CoreError::DeletePending(s),
        VmError::Adspace(crate::adspace::AdspaceError::Occupied(e)) => CoreError::Occupied(e),
        VmError::Adspace(crate::adspace::AdspaceError::NotMapped(e)) => CoreError::NotMapped(e),
        VmError::BadSize(_) | VmError::BadWindow | VmError::WrongHalf(_) => CoreError::BadRange,
        _ => CoreError::Shortage(Shortage::Metadata),
    }
}

impl<H: HptBackend, S: SlbBackend, F: FrameAllocator> CoreVm<H, S, F> {
    /// Wraps `vmm`. Creates the address space kernel processes use for
    /// their 16 segment registers.
    pub fn new(mut vmm: Vmm<H, S, F>) -> Self {
        let kproc = vmm.create_space();
        CoreVm {
            vmm,
            processes: BTreeMap::new(),
            kproc,
            sid_quota: None,
            fail_map_after: None,
        }
    }

    /// Caps the SIDs in use (segments and the views windowed or
    /// supervisor-only mappings need) at `quota`: a segment or view beyond
    /// it is refused as [`Shortage::Sids`], which the services answer with
    /// `ENOMEM`. `None` lifts the cap.
    pub fn set_sid_quota(&mut self, quota: Option<usize>) {
        self.sid_quota = quota;
    }

    /// The SID cap [`Self::set_sid_quota`] set, if any.
    pub fn sid_quota(&self) -> Option<usize> {
        self.sid_quota
    }

    /// Fault injection for tests of the callers' roll-back paths:
    /// `Some(n)` makes the `map`/`replace` call after `n` more successful
    /// ones fail once with [`Shortage::Metadata`], before the core is
    /// touched. A whole-segment mapping cannot otherwise fail once its
    /// arguments are valid, so this is how a failing `as_seth64` is
    /// exercised on the real core. `None` turns it off.
    pub fn set_fail_map_after(&mut self, n: Option<u32>) {
        self.fail_map_after = n;
    }

    /// How many more `map`/`replace` calls succeed before the injected
    /// failure ([`Self::set_fail_map_after`]); `None` when none is armed
    /// (also after it fired).
    pub fn fail_map_after(&self) -> Option<u32> {
        self.fail_map_after
    }

    /// Counts one `map`/`replace` call against [`Self::set_fail_map_after`].
    fn injected_failure(&mut self) -> Result<(), CoreError> {
        match self.fail_map_after {
            Some(0) => {
                self.fail_map_after = None;
                Err(CoreError::Shortage(Shortage::Metadata))
            }
            Some(n) => {
                self.fail_map_after = Some(n - 1);
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn sid_available(&self) -> Result<(), CoreError> {
        match self.sid_quota {
            Some(q) if self.vmm.sids_in_use() >= q => Err(CoreError::Shortage(Shortage::Sids)),
            _ => Ok(()),
        }
    }

    /// The core.
    pub fn vmm(&self) -> &Vmm<H, S, F> {
        &self.vmm
    }

    /// The core, mutably (fault handling, switching).
    pub fn vmm_mut(&mut self) -> &mut Vmm<H, S, F> {
        &mut self.vmm
    }

    /// Tells the core (and so the services and the fault path) what runs
    /// now.
    pub fn set_environment(&mut self, environment: Environment) {
        self.vmm.set_environment(environment);
    }

    /// The core's address space of `space` (kernel processes: the space
    /// holding their segment registers).
    pub fn space_id(&self, space: Space) -> Option<SpaceId> {
        match space {
            Space::Kernel => Some(self.kproc),
            Space::Process(pid) => self.processes.get(&pid).copied(),
        }
    }

    /// Makes `space` the running address space in the core (its SLB
    /// entries are loaded on demand from now on).
    pub fn switch_to(&mut self, space: Space) -> Result<(), CoreError> {
        let id = self.space_id(space).ok_or(CoreError::NoSuchSpace(space))?;
        self.vmm.switch_to(Some(id)).map_err(core_error)
    }

    fn space_ref(&self, space: Space, esid: Esid) -> Result<SpaceRef, CoreError> {
        if esid.as_u64() >= KERNEL_ESID_BASE {
            return if space == Space::Kernel {
                Ok(SpaceRef::Kernel)
            } else {
                Err(CoreError::BadRange)
            };
        }
        self.space_id(space)
            .map(SpaceRef::User)
            .ok_or(CoreError::NoSuchSpace(space))
    }
}

impl<H: HptBackend, S: SlbBackend, F: FrameAllocator> CoreVm<H, S, F> {
    /// Checks and converts the arguments of `map`/`replace`.
    fn map_args(
        &self,
        space: Space,
        esid: Esid,
        how: &MappingInfo,
    ) -> Result<(SpaceRef, Esid, Sid, MapOptions), CoreError> {
        let target = self.space_ref(space, esid)?;
        if how.window.is_some() || how.view_prot != ViewProt::Segment {
            // The core makes a view with a SID of its own.
            self.sid_available()?;
        }
        let opts = MapOptions {
            key: how.key,
            no_exec: how.no_exec,
            fork: how.fork,
            window: how.window.clone(),
            view_prot: how.view_prot,
            bolted: false,
            owned: false,
        };
        Ok((target, esid, how.sid, opts))
    }
}

impl<H: HptBackend, S: SlbBackend, F: FrameAllocator> AixVm for CoreVm<H, S, F> {
    fn environment(&self) -> Environment {
        self.vmm.environment()
    }

    fn active_space(&self) -> Space {
        match self.vmm.current() {
            Some(id) => self
                .processes
                .iter()
                .find(|(_, s)| **s == id)
                .map_or(Space::Kernel, |(p, _)| Space::Process(*p)),
            None => Space::Kernel,
        }
    }

    fn create_segment(
        &mut self,
        pages: u32,
        prot: crate::segment::PageProt,
        kernel: bool,
    ) -> Result<Sid, CoreError> {
        let kind = if kernel {
            SidKind::Kernel
        } else {
            SidKind::User
        };
        self.sid_available()?;
        self.vmm
            .create_segment(kind, u64::from(pages) * PAGESIZE, prot)
            .map_err(core_error)
    }

    fn segment(&self, sid: Sid) -> Option<SegmentInfo> {
        let s = self.vmm.segments().get(sid).ok()?;
        if s.kind() != &SegmentKind::Working {
            return None;
        }
        Some(SegmentInfo {
            pages: s.size_pages(),
            holds: s.hold_count(),
            attaches: s.attach_count(),
            delete_pending: s.delete_pending(),
            prot: s.default_prot(),
        })
    }

    fn delete_segment(&mut self, sid: Sid) -> Result<(), CoreError> {
        self.vmm.delete_segment(sid).map(|_| ()).map_err(core_error)
    }

    fn hold_segment(&mut self, sid: Sid) -> Result<(), CoreError> {
        self.vmm.hold_segment(sid).map(|_| ()).map_err(core_error)
    }

    fn put_segment(&mut self, sid: Sid) -> Result<(), CoreError> {
        self.vmm.put_segment(sid).map(|_| ()).map_err(core_error)
    }

    fn space_exists(&self, space: Space) -> bool {
        self.space_id(space).is_some()
    }

    fn create_space(&mut self, pid: ProcessId) -> Result<(), CoreError> {
        if self.processes.contains_key(&pid) {
            return Err(CoreError::BadRange);
        }
        let id = self.vmm.create_space();
        self.processes.insert(pid, id);
        Ok(())
    }

    fn fork_space(&mut self, parent: ProcessId, child: ProcessId) -> Result<(), CoreError> {
        let p = *self
            .processes
            .get(&parent)
            .ok_or(CoreError::NoSuchSpace(Space::Process(parent)))?;
        if self.processes.contains_key(&child) {
            return Err(CoreError::BadRange);
        }
        let id = self.vmm.fork(p).map_err(core_error)?;
        self.processes.insert(child, id);
        Ok(())
    }

    fn destroy_space(&mut self, pid: ProcessId) -> Result<(), CoreError> {
        let id = *self
            .processes
            .get(&pid)
            .ok_or(CoreError::NoSuchSpace(Space::Process(pid)))?;
        self.vmm.destroy_space(id).map_err(core_error)?;
        self.processes.remove(&pid);
        Ok(())
    }

    fn map(&mut self, space: Space, esid: Esid, how: &MappingInfo) -> Result<(), CoreError> {
        let (target, esid, sid, opts) = self.map_args(space, esid, how)?;
        self.injected_failure()?;
        self.vmm
            .map(target, esid, sid, opts)
            .map(|_| ())
            .map_err(core_error)
    }

    fn replace(
        &mut self,
        space: Space,
        esid: Esid,
        how: &MappingInfo,
    ) -> Result<Option<MappingInfo>, CoreError> {
        let old = self.mapping(space, esid);
        let (target, esid, sid, opts) = self.map_args(space, esid, how)?;
        self.injected_failure()?;
        // The core's replace is atomic: the old mapping is released only
        // once the new one is in place.
        self.vmm
            .replace(target, esid, sid, opts)
            .map_err(core_error)?;
        Ok(old)
    }

    fn unmap(&mut self, space: Space, esid: Esid) -> Result<(), CoreError> {
        let target = self.space_ref(space, esid)?;
        self.vmm.unmap(target, esid).map(|_| ()).map_err(core_error)
    }

    fn load_segment_registers(&self, space: Space, regs: &mut adspace_t) {
        *regs = adspace_t::EMPTY;
        let Some(a) = self.space_id(space).and_then(|id| self.vmm.space(id).ok()) else {
            return;
        };
        // The mappings in ESID order, up to the first past register 15:
        // usually none or a few.
        for (esid, m) in a.iter() {
            match SegmentRegister::new(esid.as_u64() as usize) {
                Some(sr) => regs.set(sr, m.handle.raw()),
                None => break,
            }
        }
    }

    fn free_run(&self, space: Space, range: Range<u64>, count: u64) -> Option<Esid> {
        // The core's ordered map answers directly when the whole range
        // lies in one address space; anything else is answered the slow
        // way, so the result never differs from `probe_free_run`.
        let found = if count == 0 {
            None
        } else if space == Space::Kernel
            && range.start >= KERNEL_ESID_BASE
            && range.end <= crate::adspace::ESID_COUNT
        {
            Some(self.vmm.kernel_space().find_free_run(range.clone(), count))
        } else if range.end <= KERNEL_ESID_BASE {
            self.space_id(space)
                .and_then(|id| self.vmm.space(id).ok())
                .map(|a| a.find_free_run(range.clone(), count))
        } else {
            None
        };
        match found {
            Some(esid) => esid,
            None => probe_free_run(self, space, range, count),
        }
    }

    fn mapping(&self, space: Space, esid: Esid) -> Option<MappingInfo> {
        let target = self.space_ref(space, esid).ok()?;
        let m = self.vmm.mapping(target, esid).ok()?;
        let view_prot = match m.view {
            Some(v) => match self.vmm.segments().get(v).ok()?.kind() {
                SegmentKind::View { prot, .. } => *prot,
                SegmentKind::Working => ViewProt::Segment,
            },
            None => ViewProt::Segment,
        };
        Some(MappingInfo {
            sid: m.handle.sid(),
            key: m.handle.key(),
            no_exec: m.handle.no_exec(),
            window: m.window.clone(),
            view_prot,
            fork: m.fork,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_hooks_report_what_is_armed() {
        use crate::adspace::SegKey;
        use crate::testkit::{ArrayHpt, ArraySlb, VecFrames};
        let vmm = Vmm::new(ArrayHpt::new(2048), ArraySlb::new(8), VecFrames::new(8), 0).unwrap();
        let mut core = CoreVm::new(vmm);
        assert_eq!((core.sid_quota(), core.fail_map_after()), (None, None));
        core.set_sid_quota(Some(3));
        assert_eq!(core.sid_quota(), Some(3));
        let sid = core
            .create_segment(1, crate::segment::PageProt::USER_RW, false)
            .unwrap();
        let how = MappingInfo {
            sid,
            key: SegKey::PRIV,
            no_exec: false,
            window: None,
            view_prot: ViewProt::Segment,
            fork: crate::adspace::ForkAction::Share,
        };
        core.set_fail_map_after(Some(1));
        core.map(Space::Kernel, Esid::new(3), &how).unwrap();
        assert_eq!(core.fail_map_after(), Some(0));
        assert_eq!(
            core.map(Space::Kernel, Esid::new(4), &how),
            Err(CoreError::Shortage(Shortage::Metadata))
        );
        assert_eq!(core.fail_map_after(), None);
        core.map(Space::Kernel, Esid::new(4), &how).unwrap();
    }

    /// The core's one-look answers agree with the probing definitions
    /// ([`probe_free_run`], the trait's default register load) on a
    /// process space and the kernel's, mappings scattered over the
    /// registers and the shmat area, runs of every length up to past what
    /// fits.
    #[test]
    fn free_runs_and_registers_agree_with_probing() {
        use crate::adspace::{ForkAction, SegKey};
        use crate::testkit::{ArrayHpt, ArraySlb, VecFrames};
        use proptest::prelude::*;
        use proptest::test_runner::TestRunner;

        let base = crate::aix::SHMAT_BASE_ESID;
        let esids = prop_oneof![0u64..20, base..base + 12];
        let mut runner = TestRunner::default();
        runner
            .run(
                &(
                    proptest::collection::vec((esids, any::<bool>()), 0..14),
                    1u64..6,
                ),
                |(maps, count)| {
                    let vmm = Vmm::new(ArrayHpt::new(2048), ArraySlb::new(8), VecFrames::new(8), 0)
                        .unwrap();
                    let mut core = CoreVm::new(vmm);
                    core.create_space(ProcessId(1)).unwrap();
                    let sid = core
                        .create_segment(1, crate::segment::PageProt::USER_RW, false)
                        .unwrap();
                    for (esid, kernel) in maps {
                        let space = if kernel {
                            Space::Kernel
                        } else {
                            Space::Process(ProcessId(1))
                        };
                        let how = MappingInfo {
                            sid,
                            key: SegKey::UNPRIV,
                            no_exec: esid % 2 == 0,
                            window: None,
                            view_prot: ViewProt::Segment,
                            fork: ForkAction::Share,
                        };
                        let _ = core.map(space, Esid::new(esid), &how);
                    }
                    for space in [
                        Space::Kernel,
                        Space::Process(ProcessId(1)),
                        Space::Process(ProcessId(9)),
                    ] {
                        for range in [0..16, 3..14, 15..16, base..base + 16, base + 5..base + 7] {
                            prop_assert_eq!(
                                core.free_run(space, range.clone(), count),
                                probe_free_run(&core, space, range, count)
                            );
                        }
                        let mut regs = adspace_t {
                            alloc: 0x5555_0000,
                            srval: [7; 16],
                        };
                        core.load_segment_registers(space, &mut regs);
                        let mut want = adspace_t::EMPTY;
                        for n in 0..16 {
                            if let Some(m) = core.mapping(space, Esid::new(n as u64)) {
                                want.set(SegmentRegister::new(n).unwrap(), m.handle_raw());
                            }
                        }
                        prop_assert_eq!(regs, want);
                    }
                    Ok(())
                },
            )
            .unwrap();
    }

    #[test]
    fn core_errors_map_to_shortages_and_refusals() {
        assert_eq!(
            core_error(VmError::NoSids),
            CoreError::Shortage(Shortage::Sids)
        );
        assert_eq!(
            core_error(VmError::NoFrames),
            CoreError::Shortage(Shortage::Frames)
        );
        let sid = Sid::new(7);
        assert_eq!(
            core_error(VmError::Segment(SegmentError::NotHeld(sid))),
            CoreError::NotHeld(sid)
        );
        assert_eq!(
            core_error(VmError::Segment(SegmentError::DeletePending(sid))),
            CoreError::DeletePending(sid)
        );
        assert_eq!(core_error(VmError::BadWindow), CoreError::BadRange);
        assert_eq!(
            core_error(VmError::NoBoltedSlot),
            CoreError::Shortage(Shortage::Metadata)
        );
    }
}
