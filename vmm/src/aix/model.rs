//! A reference implementation of [`AixVm`]: segments and address spaces in
//! plain maps, and loads/stores decided by the ISA's protection rule, with
//! no hashed page table behind them.
//!
//! It exists so the AIX services' bookkeeping can be tested on its own and
//! so a host program can drive the C interface without a machine model;
//! the same tests run against the real core and its emulated MMU in
//! `vmm/tests/aix_*.rs`. Rules it applies:
//!
//! * as in the core, ESIDs from [`KERNEL_ESID_BASE`] up resolve in the
//!   kernel space for every process and in both states (protection comes
//!   from key and PP alone), lower ESIDs in the accessing space;
//! * a page outside a mapping's window, or beyond the segment, faults;
//! * access = `Pp::access(key)` with key = Kp in problem state, Ks in
//!   supervisor state (ISA Book III §5.7.13).

use alloc::boxed::Box;
use alloc::collections::BTreeMap;

use arch_ppc64::addr::Esid;

use crate::adspace::ForkAction;
use crate::platform::{Environment, Privilege, ProcessId};
use crate::segment::PageProt;
use crate::sid::Sid;

use super::backend::{AixVm, CoreError, MappingInfo, SegmentInfo, Space, KERNEL_ESID_BASE};
use super::consts::{PAGESIZE, PAGES_PER_SEGMENT, SEGOFFSET, SEGSHIFT};
use super::error::Shortage;

/// Why a model access failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFault {
    /// No mapping reachable at the address (segment interrupt).
    NoSegment,
    /// The page is outside the mapping's window or the segment's size.
    OutOfRange,
    /// Key and PP forbid the access (storage interrupt, protection).
    Protection,
}

#[derive(Debug, Clone)]
struct ModelSegment {
    pages: u32,
    prot: PageProt,
    holds: u32,
    attaches: u32,
    delete_pending: bool,
    data: BTreeMap<u32, Box<[u8]>>,
}

/// The reference core. Fields are public so a test can set the
/// environment and the active space directly.
#[derive(Debug, Clone)]
pub struct ModelVm {
    /// The environment [`AixVm::environment`] reports.
    pub environment: Environment,
    /// The space [`AixVm::active_space`] reports.
    pub active: Space,
    /// SIDs are handed out below this bound; beyond it `create_segment`
    /// fails with [`Shortage::Sids`].
    pub sid_limit: u64,
    /// `Some(n)`: the map call after `n` more successful ones fails (once)
    /// with [`Shortage::Metadata`], to test the services' roll-back.
    pub fail_map_after: Option<u32>,
    next_sid: u64,
    segments: BTreeMap<Sid, ModelSegment>,
    spaces: BTreeMap<Space, BTreeMap<Esid, MappingInfo>>,
}

impl Default for ModelVm {
    fn default() -> Self {
        Self::new()
    }
}

impl ModelVm {
    /// A model with only the kernel space, running a kernel process.
    pub fn new() -> Self {
        let mut spaces = BTreeMap::new();
        spaces.insert(Space::Kernel, BTreeMap::new());
        ModelVm {
            environment: Environment::KernelProcess,
            active: Space::Kernel,
            sid_limit: 1 << 20,
            fail_map_after: None,
            next_sid: 0x100,
            segments: BTreeMap::new(),
            spaces,
        }
    }

    /// Lets `more` further segments be created, then fails with
    /// [`Shortage::Sids`].
    pub fn limit_sids(&mut self, more: u64) {
        self.sid_limit = self.next_sid.saturating_add(more);
    }

    /// Number of live segments.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Every mapping of every space, for snapshots.
    pub fn all_mappings(&self) -> alloc::vec::Vec<(Space, Esid, MappingInfo)> {
        let mut v = alloc::vec::Vec::new();
        for (s, m) in &self.spaces {
            for (e, i) in m {
                v.push((*s, *e, i.clone()));
            }
        }
        v
    }

    /// Every segment's state, for snapshots.
    pub fn all_segments(&self) -> alloc::vec::Vec<(Sid, SegmentInfo)> {
        self.segments
            .iter()
            .map(|(&sid, s)| (sid, Self::info(s)))
            .collect()
    }

    fn info(s: &ModelSegment) -> SegmentInfo {
        SegmentInfo {
            pages: s.pages,
            holds: s.holds,
            attaches: s.attaches,
            delete_pending: s.delete_pending,
            prot: s.prot,
        }
    }

    fn resolve(
        &self,
        space: Space,
        ea: u64,
        privilege: Privilege,
    ) -> Result<(Sid, u32, bool, PageProt), ModelFault> {
        let esid = Esid::try_new(ea >> SEGSHIFT).ok_or(ModelFault::NoSegment)?;
        let home = if esid.as_u64() >= KERNEL_ESID_BASE {
            Space::Kernel
        } else {
            space
        };
        let m = self
            .spaces
            .get(&home)
            .and_then(|m| m.get(&esid))
            .ok_or(ModelFault::NoSegment)?;
        let page = ((ea & SEGOFFSET) / PAGESIZE) as u32;
        if let Some(w) = &m.window {
            if !w.contains(&page) {
                return Err(ModelFault::OutOfRange);
            }
        }
        let seg = self.segments.get(&m.sid).ok_or(ModelFault::NoSegment)?;
        if page >= seg.pages {
            return Err(ModelFault::OutOfRange);
        }
        let key = m.key.effective(privilege.is_problem());
        Ok((m.sid, page, key, m.view_prot.apply(seg.prot)))
    }

    /// A load of one byte at `ea` in `space` in state `privilege`.
    pub fn load(&self, space: Space, ea: u64, privilege: Privilege) -> Result<u8, ModelFault> {
        let (sid, page, key, prot) = self.resolve(space, ea, privilege)?;
        let seg = &self.segments[&sid];
        if !prot.pp.access(key).read {
            return Err(ModelFault::Protection);
        }
        let off = (ea % PAGESIZE) as usize;
        Ok(seg.data.get(&page).map_or(0, |d| d[off]))
    }

    /// A store of one byte at `ea` in `space` in state `privilege`.
    pub fn store(
        &mut self,
        space: Space,
        ea: u64,
        privilege: Privilege,
        value: u8,
    ) -> Result<(), ModelFault> {
        let (sid, page, key, prot) = self.resolve(space, ea, privilege)?;
        let seg = self.segments.get_mut(&sid).ok_or(ModelFault::NoSegment)?;
        if !prot.pp.access(key).write {
            return Err(ModelFault::Protection);
        }
        let off = (ea % PAGESIZE) as usize;
        let data = seg
            .data
            .entry(page)
            .or_insert_with(|| alloc::vec![0u8; PAGESIZE as usize].into_boxed_slice());
        data[off] = value;
        Ok(())
    }

    fn destroy_if_done(&mut self, sid: Sid) {
        if let Some(s) = self.segments.get(&sid) {
            if s.delete_pending && s.holds == 0 && s.attaches == 0 {
                self.segments.remove(&sid);
            }
        }
    }
}

impl AixVm for ModelVm {
    fn environment(&self) -> Environment {
        self.environment
    }

    fn active_space(&self) -> Space {
        self.active
    }

    fn create_segment(
        &mut self,
        pages: u32,
        prot: PageProt,
        _kernel: bool,
    ) -> Result<Sid, CoreError> {
        if pages == 0 || pages > PAGES_PER_SEGMENT as u32 {
            return Err(CoreError::BadRange);
        }
        if self.next_sid >= self.sid_limit {
            return Err(CoreError::Shortage(Shortage::Sids));
        }
        let sid = Sid::try_new(self.next_sid).ok_or(CoreError::Shortage(Shortage::Sids))?;
        self.next_sid += 1;
        self.segments.insert(
            sid,
            ModelSegment {
                pages,
                prot,
                holds: 0,
                attaches: 0,
                delete_pending: false,
                data: BTreeMap::new(),
            },
        );
        Ok(sid)
    }

    fn segment(&self, sid: Sid) -> Option<SegmentInfo> {
        self.segments.get(&sid).map(Self::info)
    }

    fn delete_segment(&mut self, sid: Sid) -> Result<(), CoreError> {
        let s = self
            .segments
            .get_mut(&sid)
            .ok_or(CoreError::NoSuchSegment(sid))?;
        if s.delete_pending {
            return Err(CoreError::DeletePending(sid));
        }
        if s.holds == 0 && s.attaches > 0 {
            return Err(CoreError::Attached(sid));
        }
        s.delete_pending = true;
        self.destroy_if_done(sid);
        Ok(())
    }

    fn hold_segment(&mut self, sid: Sid) -> Result<(), CoreError> {
        let s = self
            .segments
            .get_mut(&sid)
            .ok_or(CoreError::NoSuchSegment(sid))?;
        s.holds += 1;
        Ok(())
    }

    fn put_segment(&mut self, sid: Sid) -> Result<(), CoreError> {
        let s = self
            .segments
            .get_mut(&sid)
            .ok_or(CoreError::NoSuchSegment(sid))?;
        if s.holds == 0 {
            return Err(CoreError::NotHeld(sid));
        }
        s.holds -= 1;
        self.destroy_if_done(sid);
        Ok(())
    }

    fn space_exists(&self, space: Space) -> bool {
        self.spaces.contains_key(&space)
    }

    fn create_space(&mut self, pid: ProcessId) -> Result<(), CoreError> {
        let space = Space::Process(pid);
        if self.spaces.contains_key(&space) {
            return Err(CoreError::BadRange);
        }
        self.spaces.insert(space, BTreeMap::new());
        Ok(())
    }

    fn fork_space(&mut self, parent: ProcessId, child: ProcessId) -> Result<(), CoreError> {
        let p = self
            .spaces
            .get(&Space::Process(parent))
            .ok_or(CoreError::NoSuchSpace(Space::Process(parent)))?;
        if self.spaces.contains_key(&Space::Process(child)) {
            return Err(CoreError::BadRange);
        }
        let inherited: BTreeMap<Esid, MappingInfo> = p
            .iter()
            .filter(|(_, m)| m.fork == ForkAction::Share)
            .map(|(e, m)| (*e, m.clone()))
            .collect();
        for m in inherited.values() {
            if let Some(s) = self.segments.get_mut(&m.sid) {
                s.attaches += 1;
            }
        }
        self.spaces.insert(Space::Process(child), inherited);
        Ok(())
    }

    fn destroy_space(&mut self, pid: ProcessId) -> Result<(), CoreError> {
        let space = Space::Process(pid);
        let maps = self
            .spaces
            .remove(&space)
            .ok_or(CoreError::NoSuchSpace(space))?;
        for m in maps.values() {
            if let Some(s) = self.segments.get_mut(&m.sid) {
                s.attaches -= 1;
            }
            self.destroy_if_done(m.sid);
        }
        if self.active == space {
            self.active = Space::Kernel;
        }
        Ok(())
    }

    fn map(&mut self, space: Space, esid: Esid, how: &MappingInfo) -> Result<(), CoreError> {
        if esid.as_u64() >= KERNEL_ESID_BASE && space != Space::Kernel {
            return Err(CoreError::BadRange);
        }
        let seg = self
            .segments
            .get(&how.sid)
            .ok_or(CoreError::NoSuchSegment(how.sid))?;
        if let Some(w) = &how.window {
            if w.start >= w.end || w.end > seg.pages {
                return Err(CoreError::BadRange);
            }
        }
        let maps = self
            .spaces
            .get_mut(&space)
            .ok_or(CoreError::NoSuchSpace(space))?;
        if maps.contains_key(&esid) {
            return Err(CoreError::Occupied(esid));
        }
        match self.fail_map_after {
            Some(0) => {
                self.fail_map_after = None;
                return Err(CoreError::Shortage(Shortage::Metadata));
            }
            Some(n) => self.fail_map_after = Some(n - 1),
            None => {}
        }
        let maps = self
            .spaces
            .get_mut(&space)
            .ok_or(CoreError::NoSuchSpace(space))?;
        maps.insert(esid, how.clone());
        if let Some(s) = self.segments.get_mut(&how.sid) {
            s.attaches += 1;
        }
        Ok(())
    }

    fn replace(
        &mut self,
        space: Space,
        esid: Esid,
        how: &MappingInfo,
    ) -> Result<Option<MappingInfo>, CoreError> {
        let maps = self
            .spaces
            .get_mut(&space)
            .ok_or(CoreError::NoSuchSpace(space))?;
        // Set the old mapping aside (its attach still counted), map the new
        // one, then release the old one or put it back.
        let old = maps.remove(&esid);
        match self.map(space, esid, how) {
            Ok(()) => {
                if let Some(m) = &old {
                    if let Some(s) = self.segments.get_mut(&m.sid) {
                        s.attaches -= 1;
                    }
                    self.destroy_if_done(m.sid);
                }
                Ok(old)
            }
            Err(e) => {
                if let (Some(m), Some(maps)) = (old, self.spaces.get_mut(&space)) {
                    maps.insert(esid, m);
                }
                Err(e)
            }
        }
    }

    fn unmap(&mut self, space: Space, esid: Esid) -> Result<(), CoreError> {
        let maps = self
            .spaces
            .get_mut(&space)
            .ok_or(CoreError::NoSuchSpace(space))?;
        let m = maps.remove(&esid).ok_or(CoreError::NotMapped(esid))?;
        if let Some(s) = self.segments.get_mut(&m.sid) {
            s.attaches -= 1;
        }
        self.destroy_if_done(m.sid);
        Ok(())
    }

    fn mapping(&self, space: Space, esid: Esid) -> Option<MappingInfo> {
        self.spaces.get(&space)?.get(&esid).cloned()
    }
}
