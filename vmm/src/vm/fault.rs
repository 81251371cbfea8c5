//! The fault path: one entry point for segment interrupts (0x380/0x480)
//! and storage interrupts (0x300 DSI, 0x400 ISI).
//!
//! * Segment miss: the ESID is looked up in the address space that answers
//!   for it (kernel half or current process, see [`crate::vm`]); a mapping
//!   is loaded into the SLB, no mapping is [`VmFaultReason::NoSegment`].
//! * No HPTE (DSISR/SRR1 bit 33): the page is found in its segment (or
//!   view), the access is judged as the hardware would judge it (key =
//!   `MSR[PR] ? Kp : Ks` against the page's PP, the ISA's PP table; fetch also
//!   against N), an untouched page is zero-filled, and an HPTE is inserted;
//!   entries evicted to make room have their R/C folded back into their
//!   pages and their slot records cleared. A copy-on-write page is
//!   entered without stores (its protection's
//!   [`PageProt::read_only`]).
//! * Protection on a store (DSISR bit 36 with the store bit), from problem
//!   or supervisor state: the access is judged against the page's own
//!   protection as for a missing HPTE. Refused, it is a real protection
//!   fault. Allowed, the page is copy-on-write: its sharing is broken
//!   (copy, or take-over by the last sharer, see the `cow` module) and
//!   the page is entered writable. (An HPTE that refused a store the
//!   tables allow for any other reason is simply replaced.)
//! * Any other cause (protection on a load or fetch, no-execute, key) is
//!   a real fault: the hardware already judged the access against a
//!   valid HPTE.

use arch_ppc64::addr::{EffectiveAddress, PhysAddr};

use super::Vmm;
use crate::hpt::{Evicted, InsertError, PageMapping};
use crate::platform::{
    Access, Environment, FaultCause, FaultHandler, FaultOutcome, FrameAllocator, FrameError,
    HptBackend, Interrupt, Privilege, SlbBackend, VmFault, VmFaultReason,
};
use crate::segment::{page_of_offset, PageProt};
use crate::sid::Sid;

/// What the fault path has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounters {
    /// Segment interrupts resolved by loading an SLB entry.
    pub slb_misses: u64,
    /// Storage interrupts resolved by inserting an HPTE.
    pub hpt_faults_resolved: u64,
    /// Pages zero-filled at their first touch.
    pub zero_fills: u64,
    /// HPTEs evicted to make room for others.
    pub evictions: u64,
    /// Interrupts answered with a fault.
    pub faults_refused: u64,
    /// Stores that ended a page's copy-on-write sharing (with a copy, or
    /// as its last sharer).
    pub cow_breaks: u64,
}

/// Judges `access` against a page's protection `prot` under segment key
/// bit `key` (the ISA's PP table via [`arch_ppc64::structures::hpte::Pp::access`])
/// and the segment's no-execute bit.
pub fn check_access(
    prot: PageProt,
    segment_no_exec: bool,
    key: bool,
    access: Access,
) -> Result<(), VmFaultReason> {
    let allowed = prot.pp.access(key);
    let ok = match access {
        Access::Load => allowed.read,
        Access::Store => allowed.write,
        Access::Fetch => {
            if segment_no_exec || prot.no_exec {
                return Err(VmFaultReason::NoExecute);
            }
            allowed.execute
        }
    };
    if ok {
        Ok(())
    } else {
        Err(VmFaultReason::Protection)
    }
}

impl From<InsertError> for VmFaultReason {
    /// A frame not aligned to its page is the frame allocator's fault.
    fn from(e: InsertError) -> Self {
        match e {
            InsertError::Full => VmFaultReason::HptFull,
            InsertError::Misaligned(pa) => VmFaultReason::Frame(FrameError::Misaligned(pa)),
            InsertError::Backend(b) => b.into(),
        }
    }
}

impl<H: HptBackend, S: SlbBackend, F: FrameAllocator> Vmm<H, S, F> {
    /// Resolves one interrupt taken in state `privilege`, or says why not.
    ///
    /// A missing HPTE that the page's record says is there, and is, was
    /// entered by another processor after this one's table search: the
    /// fault is resolved with no change (the retried access finds it).
    ///
    /// When it fails the tables are unchanged, with one exception: if the
    /// faulting page still had an HPTE recorded that is gone (removed
    /// behind the core's back), or one that refused a store the page
    /// allows (that HPTE is removed, its R/C folded into the page), the
    /// record is dropped before the new entry is inserted, and stays
    /// dropped if the insert then fails. It cannot wait until after the
    /// insert: two HPTEs translating the same page are undefined (ISA
    /// Book III "Page Table Search"). The page itself (frame, R/C) is kept,
    /// so a later fault on it inserts a fresh entry.
    pub fn resolve(
        &mut self,
        interrupt: Interrupt,
        privilege: Privilege,
    ) -> Result<(), VmFaultReason> {
        let ea = interrupt.ea();
        let access = match interrupt.cause() {
            FaultCause::NoSegment => return self.resolve_segment(ea),
            // A DSI always says load or store; only a segment interrupt
            // leaves the access unknown.
            FaultCause::NoPte => interrupt.access().unwrap_or(Access::Load),
            // A store the page's HPTE refused may be the first store to a
            // copy-on-write page; the tables decide (below). Any other
            // protection fault is the program's (or the kernel's).
            FaultCause::Protection if interrupt.access() == Some(Access::Store) => {
                return self.resolve_protection(ea, privilege);
            }
            FaultCause::Protection => return Err(VmFaultReason::Protection),
            FaultCause::NoExecute => return Err(VmFaultReason::NoExecute),
            FaultCause::Key => return Err(VmFaultReason::Key),
            FaultCause::Unknown => return Err(VmFaultReason::UnknownCause),
        };
        self.resolve_page(ea, access, privilege, true)
    }

    /// A store an HPTE refused: resolved as a store to a page with no
    /// entry when the tables allow it (a copy-on-write page, or an entry
    /// left with less than the page's protection), else a protection
    /// fault. Out of line, so the common path stays one inlined call.
    #[inline(never)]
    fn resolve_protection(
        &mut self,
        ea: EffectiveAddress,
        privilege: Privilege,
    ) -> Result<(), VmFaultReason> {
        self.resolve_page(ea, Access::Store, privilege, false)
            .map_err(|r| match r {
                VmFaultReason::NoSegment | VmFaultReason::OutOfRange => VmFaultReason::Protection,
                r => r,
            })
    }

    fn resolve_segment(&mut self, ea: EffectiveAddress) -> Result<(), VmFaultReason> {
        // The search and the victim a platform's fast path takes (see
        // crate::slb): the words of the table of the space that answers
        // for the ESID, into the round-robin index.
        let esid = ea.esid();
        let words = self
            .space_for(esid)
            .and_then(|s| self.space_ref(s).ok())
            .and_then(|a| a.slb_table().get(esid))
            .ok_or(VmFaultReason::NoSegment)?;
        let cpu = self.local_mut();
        cpu.slb
            .load(&mut cpu.slb_hw, words.entry())
            .map_err(VmFaultReason::Slb)?;
        self.counters.slb_misses += 1;
        Ok(())
    }

    /// `missing`: the MMU found no HPTE (else one refused a store).
    #[inline(always)]
    fn resolve_page(
        &mut self,
        ea: EffectiveAddress,
        access: Access,
        privilege: Privilege,
        missing: bool,
    ) -> Result<(), VmFaultReason> {
        let (_, m) = self.mapping_for(ea).ok_or(VmFaultReason::NoSegment)?;
        let page = page_of_offset(ea.segment_offset());
        if m.window.as_ref().is_some_and(|w| !w.contains(&page)) {
            return Err(VmFaultReason::OutOfRange);
        }
        let tsid = m.translation_sid();
        let key = m.handle.key().effective(privilege.is_problem());
        let segment_no_exec = m.handle.no_exec();
        // The segment the hardware translates through (the mapping's own,
        // or its view) holds the slot; the frame and protection are the
        // working segment's (the view's target, with the view's ViewProt).
        let in_interrupt = self.environment() == Environment::Interrupt;
        let (seg, mut target) = self
            .segments
            .with_target_mut(tsid)
            .map_err(|_| VmFaultReason::NoSegment)?;
        if !seg.in_range(page) {
            return Err(VmFaultReason::OutOfRange);
        }
        let (prot, e) = match &target {
            None => {
                let e = seg.entry(page);
                (e.prot(seg.default_prot()), e)
            }
            Some((t, view_prot)) => {
                let e = t.entry(page);
                (view_prot.apply(e.prot(t.default_prot())), e)
            }
        };
        let resident = e.frame();
        check_access(prot, segment_no_exec, key, access)?;
        if e.is_cow() && access == Access::Store {
            return self.store_to_shared(tsid, page);
        }
        if resident.is_none() && in_interrupt {
            return Err(VmFaultReason::NotAllowedHere);
        }
        // A shared page is entered without stores, so its first store
        // faults (above).
        let hw = if e.is_cow() { prot.read_only() } else { prot };
        let vp = seg.virtual_page(page);
        // The MMU found no entry, but the page records one. Either another
        // processor entered it after this one's search (the entry is
        // there: the retried access finds it, and replacing it would make
        // that processor fault again), or it was removed behind the
        // manager's back and the record is stale (nothing to remove).
        let mut stale = false;
        if missing {
            if let Some(slot) = seg.slot(page) {
                if self.hpt.holds(vp, slot) == Ok(true) {
                    return Ok(());
                }
                stale = true;
            }
        }
        // Open the records (making room for them) before anything changes.
        let mut rec = seg.open(page).map_err(|_| VmFaultReason::NoMemory)?;
        let mut target_rec = match &mut target {
            Some((t, _)) => Some(t.open(page).map_err(|_| VmFaultReason::NoMemory)?),
            None => None,
        };
        // An entry recorded for this page that the MMU did not find (it was
        // replaced behind our back) must not stay as a second one. It goes
        // before the insert (two matching HPTEs are undefined), so a
        // failed insert leaves it dropped; `resolve` documents that. The
        // removal checks the entry is this page's, so a stale record
        // removes nothing else.
        if let Some(old) = rec.take_slot() {
            let removed = if stale {
                None
            } else {
                self.hpt.remove_slot(vp, old).ok().flatten()
            };
            if let Some(h) = removed {
                target_rec
                    .as_mut()
                    .unwrap_or(&mut rec)
                    .fold_rc(h.referenced(), h.changed());
            }
        }
        let (frame, fresh) = match resident {
            Some(f) => (f, false),
            None => (zero_filled(&mut self.frames)?, true),
        };
        let mut mapping = PageMapping::new(vp, frame, hw.pp);
        mapping.no_execute = hw.no_exec;
        let inserted = match self.hpt.insert(&mapping) {
            Ok(r) => r,
            Err(e) => {
                if fresh {
                    let _ = self.frames.free(frame);
                }
                return Err(e.into());
            }
        };
        if fresh {
            target_rec.as_mut().unwrap_or(&mut rec).set_frame(frame);
        }
        rec.set_slot(inserted.slot);
        self.finish(fresh, inserted.evicted);
        Ok(())
    }

    /// A store, which the page's protection allows, to copy-on-write page
    /// `page` reached through segment or view `tsid`: ends the page's
    /// sharing and enters it writable. Out of line, so that first touches
    /// and refaults do not carry it.
    ///
    /// Without views onto the segment this is one pass: a copy made first
    /// if other pages share the frame (nothing changes if that fails), the
    /// read-only entry removed as any stale one is, the writable entry for
    /// the page's own frame inserted, and only then the copy taken into
    /// the record. With views, [`Vmm::break_cow`] takes their entries too,
    /// and the store, executed again, is resolved as an ordinary one.
    #[inline(never)]
    fn store_to_shared(&mut self, tsid: Sid, page: u32) -> Result<(), VmFaultReason> {
        let in_interrupt = self.environment() == Environment::Interrupt;
        let (seg, target) = self
            .segments
            .with_target_mut(tsid)
            .map_err(|_| VmFaultReason::NoSegment)?;
        let owner = target.as_ref().map_or(tsid, |(t, _)| t.sid());
        let e = target
            .as_ref()
            .map_or(seg.entry(page), |(t, _)| t.entry(page));
        let frame = e.frame().ok_or(VmFaultReason::OutOfRange)?;
        let shared = self.frames.sharers(frame) > 1;
        if shared && in_interrupt {
            return Err(VmFaultReason::NotAllowedHere);
        }
        if target.is_some() || seg.view_count() > 0 {
            // Every entry of the page is gone: the store, executed again,
            // faults for a missing entry and is resolved as an ordinary
            // one (no recursion into the common path, which keeps that
            // inlined).
            self.break_cow(owner, page)?;
            self.counters.cow_breaks += 1;
            return Ok(());
        }
        let prot = e.prot(seg.default_prot());
        let copy = if shared {
            Some(copied(&mut self.frames, frame)?)
        } else {
            None
        };
        let vp = seg.virtual_page(page);
        let Ok(mut rec) = seg.open(page) else {
            if let Some(c) = copy {
                let _ = self.frames.free(c);
            }
            return Err(VmFaultReason::NoMemory);
        };
        if let Some(old) = rec.take_slot() {
            if let Ok(Some(h)) = self.hpt.remove_slot(vp, old) {
                rec.fold_rc(h.referenced(), h.changed());
            }
        }
        let mut mapping = PageMapping::new(vp, copy.unwrap_or(frame), prot.pp);
        mapping.no_execute = prot.no_exec;
        let inserted = match self.hpt.insert(&mapping) {
            Ok(r) => r,
            Err(err) => {
                if let Some(c) = copy {
                    let _ = self.frames.free(c);
                }
                return Err(err.into());
            }
        };
        let old = rec.end_cow(copy);
        rec.set_slot(inserted.slot);
        if copy.is_some() {
            // One sharer fewer; other pages still name it.
            let _ = self.frames.free(old);
        }
        self.counters.cow_breaks += 1;
        self.finish(false, inserted.evicted);
        Ok(())
    }

    /// Counts a resolved fault and folds back what its insert evicted.
    #[inline]
    fn finish(&mut self, fresh: bool, evicted: Option<Evicted>) {
        if fresh {
            self.counters.zero_fills += 1;
        }
        if let Some(e) = evicted {
            self.counters.evictions += 1;
            self.forget_evicted(e);
        }
        self.counters.hpt_faults_resolved += 1;
    }
}

/// A private copy of `frame` for a store to a shared copy-on-write page.
#[inline(never)]
fn copied<F: FrameAllocator>(frames: &mut F, frame: PhysAddr) -> Result<PhysAddr, VmFaultReason> {
    let c = frames.allocate().ok_or(VmFaultReason::NoMemory)?;
    if let Err(e) = frames.copy(c, frame) {
        let _ = frames.free(c);
        return Err(VmFaultReason::Frame(e));
    }
    Ok(c)
}

/// A fresh zeroed frame for a first touch (AIX working storage).
#[inline]
fn zero_filled<F: FrameAllocator>(frames: &mut F) -> Result<PhysAddr, VmFaultReason> {
    match frames.allocate_zeroed() {
        Ok(Some(f)) => Ok(f),
        Ok(None) => Err(VmFaultReason::NoMemory),
        Err(e) => Err(VmFaultReason::Frame(e)),
    }
}

impl<H: HptBackend, S: SlbBackend, F: FrameAllocator> FaultHandler for Vmm<H, S, F> {
    fn handle(&mut self, interrupt: Interrupt, privilege: Privilege) -> FaultOutcome {
        match self.resolve(interrupt, privilege) {
            Ok(()) => FaultOutcome::Resolved,
            Err(reason) => {
                self.counters.faults_refused += 1;
                FaultOutcome::Fault(VmFault {
                    ea: interrupt.ea(),
                    access: interrupt.access(),
                    reason,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arch_ppc64::structures::hpte::Pp;

    fn prot(pp: Pp, no_exec: bool) -> PageProt {
        PageProt { pp, no_exec }
    }

    #[test]
    fn key_and_pp_follow_isa_table_9() {
        use Access::*;
        // key 0: 00/01/10 read-write, 11 read-only.
        for pp in [Pp::RW_NONE, Pp::RW_RO, Pp::RW_RW] {
            assert_eq!(check_access(prot(pp, false), false, false, Store), Ok(()));
        }
        assert_eq!(
            check_access(prot(Pp::RO_RO, false), false, false, Store),
            Err(VmFaultReason::Protection)
        );
        // key 1: 00 nothing, 01 read-only, 10 read-write, 11 read-only.
        assert_eq!(
            check_access(prot(Pp::RW_NONE, false), false, true, Load),
            Err(VmFaultReason::Protection)
        );
        assert_eq!(
            check_access(prot(Pp::RW_RO, false), false, true, Load),
            Ok(())
        );
        assert_eq!(
            check_access(prot(Pp::RW_RO, false), false, true, Store),
            Err(VmFaultReason::Protection)
        );
        assert_eq!(
            check_access(prot(Pp::RW_RW, false), false, true, Store),
            Ok(())
        );
        assert_eq!(
            check_access(prot(Pp::RO_RO, false), false, true, Store),
            Err(VmFaultReason::Protection)
        );
    }

    #[test]
    fn fetch_needs_no_n_bit_anywhere() {
        let rw = prot(Pp::RW_RW, false);
        assert_eq!(check_access(rw, false, true, Access::Fetch), Ok(()));
        assert_eq!(
            check_access(rw, true, true, Access::Fetch),
            Err(VmFaultReason::NoExecute)
        );
        assert_eq!(
            check_access(prot(Pp::RW_RW, true), false, false, Access::Fetch),
            Err(VmFaultReason::NoExecute)
        );
        // Loads are not affected by N.
        assert_eq!(
            check_access(prot(Pp::RW_RW, true), true, true, Access::Load),
            Ok(())
        );
        assert_eq!(
            check_access(prot(Pp::RW_NONE, false), false, true, Access::Fetch),
            Err(VmFaultReason::Protection)
        );
    }

    #[test]
    fn insert_refusals_become_typed_reasons() {
        use crate::platform::HptError;
        use arch_ppc64::addr::PhysAddr;
        let pa = PhysAddr::new(0x1800);
        assert_eq!(
            VmFaultReason::from(InsertError::Misaligned(pa)),
            VmFaultReason::Frame(FrameError::Misaligned(pa))
        );
        assert_eq!(
            VmFaultReason::from(InsertError::Full),
            VmFaultReason::HptFull
        );
        assert_eq!(
            VmFaultReason::from(InsertError::Backend(HptError::PtegFull)),
            VmFaultReason::HptFull
        );
        for e in [
            HptError::Parameter,
            HptError::NotFound,
            HptError::Hardware(-3),
        ] {
            assert_eq!(
                VmFaultReason::from(InsertError::Backend(e)),
                VmFaultReason::Hpt(e)
            );
        }
    }
}
