//! The shared fault path: missing-HPTE faults resolved on several
//! processors at once, each holding only the locks of what it changes.
//!
//! [`Vmm::resolve_shared`] takes the manager by `&self`. A kernel calls it
//! under the read side of a reader–writer lock whose write side every
//! other call takes, so the structures it only reads (address spaces,
//! mappings, the segment table's index, SIDs) cannot change under it.
//! What it changes is locked (the order of "Processors and locking" in
//! [`crate::vm`]):
//!
//! 1. the faulting page's segment ([`crate::segment::SegmentTable::lock`]):
//!    its record of the page (frame, HPTE slot) — so two processors
//!    faulting on one page enter exactly one HPTE: the second finds the
//!    first's entry through the record and changes nothing;
//! 2. the page's PTEG pair ([`crate::hpt::HptManager::insert_shared`]),
//!    across the search for a slot, an eviction and the insert;
//! 3. leaves: the frame allocator ([`SharedFrameAllocator`]) and counters
//!    (atomics).
//!
//! An entry evicted for the new one belongs to any segment; its record is
//! updated after the faulting segment's lock is dropped, under its own
//! segment's lock, and only if it still names the evicted slot and that
//! slot does not hold the page again. Until then the record is stale, which
//! every path already tolerates (a missing-HPTE fault on such a page finds
//! the slot not holding it and enters a new entry).
//!
//! Anything else — segment misses, protection faults, copy-on-write
//! stores, pages reached through views — answers [`SharedFault::Exclusive`]:
//! the kernel takes the write side and calls [`Vmm::resolve`].

use core::sync::atomic::{AtomicU64, Ordering};

use super::{virtual_page, CpuMmu, SpaceRef, Vmm, KERNEL_ESID_BASE};
use crate::hpt::{Evicted, HptSlot, PageMapping};
use crate::platform::{
    Access, Environment, FaultCause, Interrupt, Privilege, RefChange, SharedFrameAllocator,
    SharedHptBackend, SlbBackend, VmFaultReason,
};
use crate::segment::{page_of_offset, SegmentKind};

use super::fault::{check_access, FaultCounters};

/// What [`Vmm::resolve_shared`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharedFault {
    /// The translation is there now: return and retry the access.
    Resolved,
    /// A real fault: the access is not allowed, or cannot be served.
    Refused(VmFaultReason),
    /// Not a case for the shared path: call [`Vmm::resolve`] with the
    /// manager held exclusively.
    Exclusive,
}

/// Counters of the shared path, added to [`Vmm::counters`].
#[derive(Debug, Default)]
pub(super) struct SharedCounters {
    resolved: AtomicU64,
    zero_fills: AtomicU64,
    evictions: AtomicU64,
    refused: AtomicU64,
}

impl SharedCounters {
    /// `base` with these counts added.
    pub(super) fn add_to(&self, base: FaultCounters) -> FaultCounters {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        FaultCounters {
            hpt_faults_resolved: base.hpt_faults_resolved + n(&self.resolved),
            zero_fills: base.zero_fills + n(&self.zero_fills),
            evictions: base.evictions + n(&self.evictions),
            faults_refused: base.faults_refused + n(&self.refused),
            ..base
        }
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl<H: SharedHptBackend, S: SlbBackend, F: SharedFrameAllocator> Vmm<H, S, F> {
    /// Resolves a missing-HPTE fault taken on the processor whose state is
    /// `cpu` (the space it runs, its environment), while other processors
    /// may be doing the same; see the module docs for what it locks and
    /// which faults it leaves to [`Vmm::resolve`].
    ///
    /// # Safety
    /// Calls may overlap each other, but nothing else may use this manager
    /// (no `&self` reader, no `&mut self` call) from the first call's start
    /// to the last one's end: the read side of a reader–writer lock whose
    /// write side every other call takes. `cpu` is the calling processor's
    /// own state.
    pub unsafe fn resolve_shared(
        &self,
        cpu: &CpuMmu<S>,
        interrupt: Interrupt,
        privilege: Privilege,
    ) -> SharedFault {
        let access = match interrupt.cause() {
            FaultCause::NoPte => interrupt.access().unwrap_or(Access::Load),
            _ => return SharedFault::Exclusive,
        };
        // SAFETY: forwarded from this function's contract.
        match unsafe { self.enter_shared(cpu, interrupt, access, privilege) } {
            Ok(evicted) => {
                bump(&self.shared_counters.resolved);
                if let Some(e) = evicted {
                    bump(&self.shared_counters.evictions);
                    // SAFETY: as above; the faulting segment's lock is gone.
                    unsafe { self.forget_evicted_shared(e) };
                }
                SharedFault::Resolved
            }
            Err(None) => SharedFault::Exclusive,
            Err(Some(reason)) => {
                bump(&self.shared_counters.refused);
                SharedFault::Refused(reason)
            }
        }
    }

    /// The page's new entry, under its segment's lock; the evicted entry
    /// it displaced, if any. `Err(None)`: not for the shared path.
    ///
    /// # Safety
    /// As [`Vmm::resolve_shared`].
    #[inline(always)]
    unsafe fn enter_shared(
        &self,
        cpu: &CpuMmu<S>,
        interrupt: Interrupt,
        access: Access,
        privilege: Privilege,
    ) -> Result<Option<Evicted>, Option<VmFaultReason>> {
        let ea = interrupt.ea();
        let esid = ea.esid();
        let space = if esid.as_u64() >= KERNEL_ESID_BASE {
            SpaceRef::Kernel
        } else {
            SpaceRef::User(cpu.current.ok_or(Some(VmFaultReason::NoSegment))?)
        };
        let m = self
            .space_ref(space)
            .ok()
            .and_then(|a| a.get(esid))
            .ok_or(Some(VmFaultReason::NoSegment))?;
        let page = page_of_offset(ea.segment_offset());
        if m.window.as_ref().is_some_and(|w| !w.contains(&page)) {
            return Err(Some(VmFaultReason::OutOfRange));
        }
        let tsid = m.translation_sid();
        let key = m.handle.key().effective(privilege.is_problem());
        // SAFETY: forwarded from this function's contract: only shared
        // faults use the table now.
        let mut seg =
            unsafe { self.segments.lock(tsid) }.map_err(|_| Some(VmFaultReason::NoSegment))?;
        if !matches!(seg.kind(), SegmentKind::Working) {
            return Err(None);
        }
        if !seg.in_range(page) {
            return Err(Some(VmFaultReason::OutOfRange));
        }
        let e = seg.entry(page);
        let prot = e.prot(seg.default_prot());
        check_access(prot, m.handle.no_exec(), key, access).map_err(Some)?;
        if e.is_cow() && access == Access::Store {
            return Err(None);
        }
        let resident = e.frame();
        if resident.is_none() && cpu.environment == Environment::Interrupt {
            return Err(Some(VmFaultReason::NotAllowedHere));
        }
        let hw = if e.is_cow() { prot.read_only() } else { prot };
        let vp = seg.virtual_page(page);
        // Another processor entered it after this one's search: done. A
        // record naming a slot that does not hold the page is stale: it is
        // dropped below (there is nothing to remove).
        if let Some(slot) = seg.slot(page) {
            if self.hpt.holds(vp, slot) == Ok(true) {
                return Ok(None);
            }
        }
        let mut rec = seg.open(page).map_err(|_| Some(VmFaultReason::NoMemory))?;
        let _stale = rec.take_slot();
        let (frame, fresh) = match resident {
            Some(f) => (f, false),
            None => match self.frames.allocate_zeroed_shared() {
                Ok(Some(f)) => (f, true),
                Ok(None) => return Err(Some(VmFaultReason::NoMemory)),
                Err(e) => return Err(Some(VmFaultReason::Frame(e))),
            },
        };
        let mut mapping = PageMapping::new(vp, frame, hw.pp);
        mapping.no_execute = hw.no_exec;
        let inserted = match self.hpt.insert_shared(&mapping) {
            Ok(r) => r,
            Err(e) => {
                if fresh {
                    let _ = self.frames.free_shared(frame);
                }
                return Err(Some(e.into()));
            }
        };
        if fresh {
            rec.set_frame(frame);
            bump(&self.shared_counters.zero_fills);
        }
        rec.set_slot(inserted.slot);
        Ok(inserted.evicted)
    }

    /// [`Vmm::forget_evicted`] on the shared path: the evicted page's
    /// record drops the slot if it still names it and the slot does not
    /// hold the page again, and its R/C go to the page that owns the frame.
    ///
    /// # Safety
    /// As [`Vmm::resolve_shared`], with no segment locked by the caller.
    unsafe fn forget_evicted_shared(&self, evicted: Evicted) {
        let Some((sid, page)) = evicted.page.and_then(Self::owner_of) else {
            return;
        };
        let slot = HptSlot::of_entry(evicted.ptex, evicted.hpte);
        // SAFETY: forwarded.
        let Ok(mut seg) = (unsafe { self.segments.lock(sid) }) else {
            return;
        };
        if seg.slot(page) != Some(slot) || self.hpt.holds(virtual_page(sid, page), slot) == Ok(true)
        {
            return;
        }
        seg.clear_slot_if(page, slot);
        let rc = RefChange::of(evicted.hpte);
        let owner = match seg.kind() {
            SegmentKind::Working => {
                seg.fold_rc(page, rc.referenced, rc.changed);
                return;
            }
            SegmentKind::View { target, .. } => *target,
        };
        drop(seg);
        // SAFETY: forwarded; the view's lock is gone.
        if let Ok(mut t) = unsafe { self.segments.lock(owner) } {
            t.fold_rc(page, rc.referenced, rc.changed);
        }
    }
}
