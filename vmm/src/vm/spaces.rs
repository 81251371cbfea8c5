//! Address spaces: creating them, mapping and unmapping segments
//! (`as_att`, `as_seth64`), switching, fork and exit.

use alloc::vec::Vec;

use arch_ppc64::addr::Esid;

use super::cpu::SlbChange;
use super::{slb_entry, Invariant, MapOptions, SpaceId, SpaceRef, VmError, Vmm, KERNEL_ESID_BASE};
use crate::adspace::{AddressSpace, AdspaceError, ForkAction, Handle, SegmentMapping};
use crate::platform::{FrameAllocator, HptBackend, SlbBackend};
use crate::segment::{SegmentError, SegmentKind, ViewProt};
use crate::sid::{Sid, SidKind};
use crate::slbtable::{SlbWords, TableRef};

use super::cpu::CpuSet;

impl<H: HptBackend, S: SlbBackend, F: FrameAllocator> Vmm<H, S, F> {
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
                (0..self.slb_bolted)
                    .find(|&i| self.bolted.iter().all(|&(j, _)| j != i))
                    .ok_or(VmError::NoBoltedSlot)?,
            )
        } else {
            None
        };
        let view = if opts.window.is_some() || opts.view_prot != ViewProt::Segment {
            let kind = match space {
                SpaceRef::Kernel => SidKind::Kernel,
                SpaceRef::User(_) => SidKind::User,
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
        let mapping = SegmentMapping {
            handle,
            fork: opts.fork,
            window: opts.window,
            view,
            bolted: opts.bolted,
            owned: opts.owned,
        };
        // Only a bolted mapping loads its SLB entry now; the others do on
        // their first miss.
        let entry = bolted_index.map(|_| slb_entry(esid, &mapping));
        self.space_insert(space, esid, mapping)
            .expect("checked free above");
        if let (Some(i), Some(entry)) = (bolted_index, entry) {
            let bolt = match self.local.as_mut() {
                Some(c) => c.slb.bolt(&mut c.slb_hw, i, entry),
                None => Ok(()),
            };
            if let Err(e) = bolt {
                // Take the mapping back; if even that fails, say so rather
                // than panic, and report the bolt failure.
                if let Err(u) = self.unmap(space, esid) {
                    log::error!("vm: undoing map of {esid:?} after a failed bolt: {u:?}");
                }
                return Err(e.into());
            }
            self.bolted.push((i, entry));
            self.change_elsewhere(SpaceRef::Kernel, SlbChange::Bolt { index: i, entry });
        }
        Ok(handle)
    }

    /// Unmaps `esid` of `space`: its SLB entry goes (if loaded), a view is
    /// destroyed with its HPTEs, an owned segment is deleted.
    pub fn unmap(&mut self, space: SpaceRef, esid: Esid) -> Result<SegmentMapping, VmError> {
        // One round for the entry and the table's new place (the
        // invalidation publishes the table too).
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
    ) -> Result<(Handle, Option<SegmentMapping>), VmError> {
        self.space_ref(space)?;
        let old = self.space_remove(space, esid).ok();
        opts.owned |= old
            .as_ref()
            .is_some_and(|m| m.owned && m.handle.sid() == sid);
        match self.map(space, esid, sid, opts) {
            Err(e) => {
                if let Some(m) = old {
                    self.space_insert(space, esid, m)
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

    /// Maps `m` at `esid` of `space` and, if the fast path uses that
    /// space's table, tells it where the table went (it may have grown).
    fn space_insert(
        &mut self,
        space: SpaceRef,
        esid: Esid,
        m: SegmentMapping,
    ) -> Result<(), VmError> {
        self.space_mut(space)?.insert(esid, m)?;
        self.republish_if_loaded(space);
        Ok(())
    }

    /// Unmaps `esid` of `space` (the table only: the SLB entry is the
    /// caller's) and, if the fast path uses that space's table, tells it
    /// where the table went.
    fn space_remove(&mut self, space: SpaceRef, esid: Esid) -> Result<SegmentMapping, VmError> {
        let m = self.space_mut(space)?.remove(esid)?;
        self.republish_if_loaded(space);
        Ok(m)
    }

    /// Publishes `space`'s table again after a change to it, on every
    /// processor holding it: the kernel's on all, a process's where it
    /// runs (the others are published when a switch makes them current).
    fn republish_if_loaded(&mut self, space: SpaceRef) {
        self.change_everywhere(space, SlbChange::Publish);
    }

    /// Tells the installed processor's fast path ([`crate::slb::fast`])
    /// where the SLB words of the kernel and of its running process are.
    pub(super) fn publish_slb_tables(&self) {
        let Some(cpu) = self.local.as_ref() else {
            return;
        };
        let user = cpu
            .current
            .and_then(|id| self.spaces.get(&id))
            .map_or_else(TableRef::empty, |a| a.slb_table().raw());
        cpu.slb.set_tables(user, self.kernel.slb_table().raw());
    }

    /// Checks that every address space's SLB words are what the full
    /// path would load for each of its mappings and nothing more, and
    /// that the fast path is pointed at the kernel's and the running
    /// process's tables.
    pub(super) fn check_slb_tables(&self) -> Result<(), Invariant> {
        for a in core::iter::once(&self.kernel).chain(self.spaces.values()) {
            for (esid, m) in a.iter() {
                if a.slb_table().get(esid) != SlbWords::of(slb_entry(esid, m)) {
                    return Err(Invariant::StaleSlbWords(esid));
                }
            }
            if let Some(w) = a
                .slb_table()
                .iter()
                .find(|w| a.get(w.entry().esid()).is_none())
            {
                return Err(Invariant::StaleSlbWords(w.entry().esid()));
            }
            if a.slb_table().len() != a.len() || a.slb_table().retired() != 0 {
                return Err(Invariant::SlbTablesNotPublished);
            }
        }
        let Some(cpu) = self.local.as_ref() else {
            return Ok(());
        };
        let user = cpu
            .current
            .and_then(|id| self.spaces.get(&id))
            .map_or_else(TableRef::empty, |a| a.slb_table().raw());
        if cpu.slb.tables() != [user, self.kernel.slb_table().raw()] {
            return Err(Invariant::SlbTablesNotPublished);
        }
        Ok(())
    }

    /// Drops every on-demand SLB entry of the installed processor, as an
    /// address-space switch does: the next access to each of those
    /// segments misses again.
    ///
    /// # Panics
    /// If no processor is installed ([`Vmm::install_cpu`]).
    pub fn flush_slb(&mut self) {
        let cpu = self.local_mut();
        cpu.slb.switch(&mut cpu.slb_hw);
    }

    /// Drops the SLB entry for `esid` on every processor holding `space`
    /// (and publishes its table there), before returning.
    fn invalidate_slbe(&mut self, space: SpaceRef, esid: Esid) {
        if space == SpaceRef::Kernel {
            self.bolted.retain(|&(_, e)| e.esid() != esid);
        }
        self.change_everywhere(space, SlbChange::Invalidate(esid));
    }

    /// Detaches a mapping taken out of its address space: its view goes,
    /// an owned segment is orphaned, so deleted once nothing maps or holds
    /// it (unless `keep` names it: it was mapped again in its place, and
    /// the new mapping took the ownership over).
    fn release_mapping(&mut self, m: &SegmentMapping, keep: Option<Sid>) -> Result<(), VmError> {
        let sid = m.handle.sid();
        let detached = self.segments.detach(m.view.unwrap_or(sid))?;
        if let Some(r) = detached.view {
            self.release(r);
        }
        if let Some(r) = detached.segment {
            self.release(r);
        }
        if m.owned && keep != Some(sid) && self.segments.get(sid).is_ok() {
            let d = self.segments.orphan(sid)?;
            self.dispose(d);
        }
        Ok(())
    }

    /// Makes `id` the address space the installed processor runs (`None`:
    /// only the kernel's). Every non-bolted SLB entry is invalidated.
    ///
    /// # Panics
    /// If no processor is installed ([`Vmm::install_cpu`]).
    pub fn switch_to(&mut self, id: Option<SpaceId>) -> Result<(), VmError> {
        let cpu = self
            .local
            .as_mut()
            .expect("vm: no processor installed (Vmm::install_cpu)");
        let (old, me) = (cpu.current, cpu.index);
        // One lookup validates the space and finds its table (what
        // publish_slb_tables would look up again).
        let user = match id {
            Some(id) => self
                .spaces
                .get(&id)
                .ok_or(VmError::NoSuchSpace(id))?
                .slb_table()
                .raw(),
            None => TableRef::empty(),
        };
        if old != id {
            cpu.slb.switch(&mut cpu.slb_hw);
            cpu.current = id;
            // The kernel's table is published whenever it changes.
            cpu.slb.set_user_table(user);
            self.cpu_space[me] = id;
        }
        Ok(())
    }

    /// Tears down a process address space (exit): every mapping is
    /// unmapped, owned segments are deleted.
    ///
    /// The installed processor leaves the space first; it must not run on
    /// any other ([`VmError::SpaceRunning`], nothing changed).
    pub fn destroy_space(&mut self, id: SpaceId) -> Result<(), VmError> {
        let esids: Vec<Esid> = self.space(id)?.iter().map(|(e, _)| e).collect();
        let here = self.local_index().map_or(CpuSet::EMPTY, CpuSet::single);
        if !self.cpus_running(id).without_all(here).is_empty() {
            return Err(VmError::SpaceRunning(id));
        }
        if self.current() == Some(id) {
            self.switch_to(None)?;
        }
        for e in esids {
            self.unmap(SpaceRef::User(id), e)?;
        }
        self.spaces.remove(&id);
        Ok(())
    }

    /// Clones `parent` for fork: [`ForkAction::Share`] mappings map the same
    /// segment, [`ForkAction::Copy`] mappings get a copy that shares the
    /// parent's frames copy-on-write ([`Vmm::copy_segment`]; nothing is
    /// copied now), [`ForkAction::Drop`] mappings (`vm_guatt`) are left
    /// out. The parent's pages are marked only once the whole child is
    /// made: on failure the half-built child is torn down again and the
    /// parent is as it was.
    pub fn fork(&mut self, parent: SpaceId) -> Result<SpaceId, VmError> {
        let maps: Vec<(Esid, SegmentMapping)> = self
            .space(parent)?
            .iter()
            .map(|(e, m)| (e, m.clone()))
            .collect();
        let child = self.create_space();
        for (esid, m) in &maps {
            if let Err(e) = self.fork_one(child, *esid, m) {
                self.destroy_space(child)
                    .expect("a fresh child can always be torn down");
                return Err(e);
            }
        }
        for (_, m) in &maps {
            if m.fork == ForkAction::Copy {
                self.mark_shared(m.handle.sid());
            }
        }
        Ok(child)
    }

    fn fork_one(&mut self, child: SpaceId, esid: Esid, m: &SegmentMapping) -> Result<(), VmError> {
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
                self.inherit_segment(m.handle.sid())?
            }
        };
        if m.view.is_none() {
            // A plain mapping (no window, no protection of its own: no
            // view to make) into the fresh child, at an ESID of the same
            // half that the child cannot have used yet: what `map` would
            // check holds, so only the attachment and the entry are made.
            let child = SpaceRef::User(child);
            let handle = Handle::new(sid, m.handle.key(), m.handle.no_exec());
            let mapping = SegmentMapping {
                handle,
                fork: m.fork,
                window: None,
                view: None,
                bolted: false,
                owned: opts.owned,
            };
            let r = self.space_insert(child, esid, mapping).and_then(|()| {
                match self.segments.attach(sid) {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        let _ = self.space_remove(child, esid);
                        Err(e.into())
                    }
                }
            });
            if r.is_err() && m.fork == ForkAction::Copy {
                let d = self.segments.orphan(sid)?;
                self.dispose(d);
            }
            return r;
        }
        let r = self.map(SpaceRef::User(child), esid, sid, opts);
        if r.is_err() && m.fork == ForkAction::Copy {
            let d = self.segments.orphan(sid)?;
            self.dispose(d);
        }
        r.map(|_| ())
    }
}
