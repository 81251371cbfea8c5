//! The consistency check tests run after every step: HPT, SLB and tables
//! agree.

use alloc::collections::BTreeMap;

use arch_ppc64::addr::{Esid, PhysAddr, PtegIndex, Ptex, Vsid};
use arch_ppc64::structures::SegmentSize;

use super::{slb_entry, virtual_page, Vmm};
use crate::platform::{FrameAllocator, HptBackend, SlbBackend};
use crate::segment::{PageEntry, SegmentKind, SEGSHIFT};
use crate::sid::Sid;

/// A broken internal invariant found by [`Vmm::check_invariants`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invariant {
    /// A valid HPTE no live segment page's record names.
    StrayHpte(Ptex),
    /// A recorded slot whose HPTE is invalid or translates something else.
    SlotMismatch(Ptex),
    /// An HPTE whose frame or protection differs from the page's.
    StaleHpte(Ptex),
    /// Two HPTEs for one virtual page.
    DuplicateHpte(Ptex),
    /// A segment whose count of recorded slots is not the number of its
    /// entries that record one.
    SlotCount(Sid),
    /// An SLB entry that no mapping explains.
    StraySlbe(usize),
    /// A mapping whose segment does not exist.
    DanglingMapping(Esid),
    /// One frame backing two pages that are not both marked
    /// copy-on-write.
    SharedFrame(PhysAddr),
    /// A frame whose sharer count (the frame allocator's) is not the
    /// number of pages naming it.
    ShareCount(PhysAddr),
    /// An HPTE that allows a store to a copy-on-write page.
    WritableSharedPage(Ptex),
    /// An address space's SLB words for this ESID are not what its
    /// mapping makes (or it has none).
    StaleSlbWords(Esid),
    /// The SLB fast path is not pointed at the current tables.
    SlbTablesNotPublished,
    /// What the manager records processor `n` runs disagrees with that
    /// processor's state, or names a space that is gone.
    RunningSet(usize),
}

impl<H: HptBackend, S: SlbBackend, F: FrameAllocator> Vmm<H, S, F> {
    /// The entry of page `page` of the working segment that owns the
    /// frame `sid` shows (`sid` itself, or a view's target).
    fn page_entry_of_owner(&self, sid: Sid, page: u32) -> Option<PageEntry> {
        let s = self.segments.get(sid).ok()?;
        match s.kind() {
            SegmentKind::Working => Some(s.entry(page)),
            SegmentKind::View { target, .. } => Some(self.segments.get(*target).ok()?.entry(page)),
        }
    }

    /// Verifies that the HPT, the SLB and the tables agree: every valid
    /// HPTE is recorded for a live segment page and translates that page to
    /// its frame with its protection (without stores while the page is
    /// copy-on-write), no virtual page has two HPTEs, every SLB entry
    /// comes from a mapping, a frame backs two pages only if they are all
    /// marked copy-on-write, the frame allocator counts exactly the pages
    /// naming each frame as its sharers, every
    /// address space's SLB words are its mappings' and the fast path is
    /// pointed at the kernel's and the running process's. Scans the
    /// whole HPT (tests only). HPTEs outside the VMM's VSID space (not a
    /// 256 MB segment, or a VSID no SID scrambles to) belong to whoever
    /// shares the table, such as a kernel's bolted linear map, and are
    /// left out.
    pub fn check_invariants(&self) -> Result<(), Invariant> {
        // Every VMM entry in the table, by the page it translates.
        let mut seen = BTreeMap::new();
        let groups = self.hpt.backend().pteg_count();
        let mut next = 0;
        while next < groups {
            let group = PtegIndex::new(next);
            let empty = self.hpt.backend().known_empty_groups(group);
            if empty > 0 {
                next += empty;
                continue;
            }
            next += 1;
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
                let (sid, page) = self
                    .hpt
                    .decode(ptex, h)
                    .and_then(Self::owner_of)
                    .ok_or(Invariant::StrayHpte(ptex))?;
                if seen.insert((sid, page), ptex).is_some() {
                    return Err(Invariant::DuplicateHpte(ptex));
                }
                // Some page's record must name this very slot.
                let seg = self
                    .segments
                    .get(sid)
                    .map_err(|_| Invariant::StrayHpte(ptex))?;
                match seg.slot(page) {
                    Some(s) if self.slot_ptex(sid, page, s) == ptex => {}
                    _ => return Err(Invariant::StrayHpte(ptex)),
                }
                if h.avpn_word() != virtual_page(sid, page).avpn_word() {
                    return Err(Invariant::SlotMismatch(ptex));
                }
                let frame = self.page_frame(sid, page).ok().flatten();
                let cow = self
                    .page_entry_of_owner(sid, page)
                    .is_some_and(|e| e.is_cow());
                let prot = self.segments.effective_prot(sid, page).ok();
                if cow && (h.pp().access(false).write || h.pp().access(true).write) {
                    return Err(Invariant::WritableSharedPage(ptex));
                }
                let prot = prot.map(|p| if cow { p.read_only() } else { p });
                if frame.is_none()
                    || h.real_address() != frame
                    || Some(h.pp()) != prot.map(|p| p.pp)
                    || Some(h.no_execute()) != prot.map(|p| p.no_exec)
                {
                    return Err(Invariant::StaleHpte(ptex));
                }
            }
        }
        // And every record names an entry of its page.
        for seg in self.segments.iter() {
            let mut count = 0;
            for (page, slot) in seg.slots() {
                let ptex = self.slot_ptex(seg.sid(), page, slot);
                if seen.get(&(seg.sid(), page)) != Some(&ptex) {
                    return Err(Invariant::SlotMismatch(ptex));
                }
                count += 1;
            }
            if count != seg.slot_count() {
                return Err(Invariant::SlotCount(seg.sid()));
            }
        }
        // Pages naming each frame: (count, all marked copy-on-write).
        let mut frames: BTreeMap<PhysAddr, (u32, bool)> = BTreeMap::new();
        for seg in self.segments.iter() {
            for (_, e) in seg.entries() {
                if let Some(f) = e.frame() {
                    let n = frames.entry(f).or_insert((0, true));
                    n.0 += 1;
                    n.1 &= e.is_cow();
                }
            }
        }
        for (&f, &(n, cow)) in &frames {
            if n > 1 && !cow {
                return Err(Invariant::SharedFrame(f));
            }
            if self.frames.sharers(f) != n {
                return Err(Invariant::ShareCount(f));
            }
        }
        // The installed processor's SLB (each other processor's is checked
        // when it is installed).
        let cpu = self.local.as_ref();
        for i in 0..cpu.map_or(0, |c| c.slb.size()) {
            let Some(cpu) = cpu else { break };
            // The processor's SLB holds exactly what the manager loaded.
            let hw = cpu.slb_hw.read(i).map_err(|_| Invariant::StraySlbe(i))?;
            match cpu.slb.entry(i) {
                Some(e) if hw.is_valid() && hw == e => {}
                None if !hw.is_valid() => {}
                _ => return Err(Invariant::StraySlbe(i)),
            }
            let Some(e) = cpu.slb.entry(i) else { continue };
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
        self.check_slb_tables()?;
        if let Some(cpu) = self.local.as_ref() {
            if self.cpu_space[cpu.index] != cpu.current {
                return Err(Invariant::RunningSet(cpu.index));
            }
        }
        for i in self.online.iter() {
            if self.cpu_space[i].is_some_and(|id| !self.spaces.contains_key(&id)) {
                return Err(Invariant::RunningSet(i));
            }
        }
        Ok(())
    }
}
