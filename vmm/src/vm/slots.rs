//! HPTE-slot bookkeeping: each page entry records where its HPTE is
//! ([`HptSlot`]: which of the page's two PTEGs, which slot), so there is no
//! side table from slot to page. Removing entries (one at a time or
//! batched) folds their R/C back into the pages; an entry evicted by an
//! insert is traced back to its page from the entry itself (its AVPN gives
//! the VSID, hence the SID, and the high page bits; the PTEG index gives
//! the rest: [`crate::hpt::HptManager::decode`]), as Linux's hash MMU does.
//!
//! A record can be stale (its entry was removed behind the VMM's back, or
//! the slot reused since): every removal is conditioned on the entry in
//! the slot translating that very page (`H_REMOVE` with `H_AVPN`, and the
//! PTEG pair and `H` bit implied by the slot), so a stale record can never
//! remove another page's entry; it only finds nothing there.

use alloc::vec::Vec;

use arch_ppc64::addr::Ptex;
use arch_ppc64::structures::{PageSize, SegmentSize};

use super::{virtual_page, Vmm};
use crate::hpt::{Evicted, HptSlot, VirtualPage};
use crate::platform::{FrameAllocator, HptBackend, RefChange, SlbBackend};
use crate::segment::{Disposal, Released, SegmentKind};
use crate::sid::Sid;

impl<H: HptBackend, S: SlbBackend, F: FrameAllocator> Vmm<H, S, F> {
    /// The PTE index `slot` names for page `page` of `sid`.
    pub(super) fn slot_ptex(&self, sid: Sid, page: u32, slot: HptSlot) -> Ptex {
        self.hpt.slot_ptex(virtual_page(sid, page), slot)
    }

    /// The PTE index recorded for page `page` of `sid` (a view's own
    /// entry for a view), if any.
    pub fn page_slot(&self, sid: Sid, page: u32) -> Option<Ptex> {
        let slot = self.segments.get(sid).ok()?.slot(page)?;
        Some(self.slot_ptex(sid, page, slot))
    }

    /// Removes the HPTEs at `slots` of pages of `sid` with one batched
    /// remove (`H_BULK_REMOVE` on PAPR) instead of one hcall a page,
    /// folding their R/C back, and forgets each record that still names
    /// its slot (records already forgotten, as [`crate::segment::Segment::set_prot`]
    /// leaves them, are fine).
    pub(super) fn drop_hptes(&mut self, sid: Sid, slots: &[(u32, HptSlot)]) {
        if let Ok(s) = self.segments.get_mut(sid) {
            for &(page, slot) in slots {
                s.clear_slot_if(page, slot);
            }
        }
        for (page, rc) in self.remove_hptes(sid, slots) {
            self.fold_rc(sid, page, rc);
        }
    }

    /// Removes the entries `slots` of pages of `sid` name, in one batch,
    /// each only if it still translates its page. Returns the R/C of the
    /// entries that were still there; an entry already gone or a request
    /// the backend refused leaves nothing to fold.
    fn remove_hptes(&mut self, sid: Sid, slots: &[(u32, HptSlot)]) -> Vec<(u32, RefChange)> {
        if slots.is_empty() {
            return Vec::new();
        }
        let requests: Vec<(Ptex, VirtualPage)> = slots
            .iter()
            .map(|&(page, slot)| {
                let vp = virtual_page(sid, page);
                (self.hpt.slot_ptex(vp, slot), vp)
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
    fn fold_rc(&mut self, sid: Sid, page: u32, rc: RefChange) {
        let target = match self.segments.get(sid).map(|s| s.kind()) {
            Ok(SegmentKind::View { target, .. }) => *target,
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
    pub(super) fn release(&mut self, r: Released) {
        // The segment itself is gone, but a destroyed view's pages are its
        // target's, which may live on: their R/C go there. A segment that
        // never had an HPTE (an untouched view) skips the batch.
        if !r.slots.is_empty() {
            for (page, rc) in self.remove_hptes(r.sid, &r.slots) {
                if let Some(target) = r.target {
                    self.fold_rc_into(target, page, rc);
                }
            }
        }
        for f in r.frames {
            // One sharer fewer (the frame goes with its last). A frame the
            // allocator refuses would be a VMM bug (the sharer counts are
            // the pages naming each frame); the allocator changes nothing.
            let freed = self.frames.free(f);
            debug_assert!(freed.is_ok(), "freeing {f:?}: {freed:?}");
        }
        self.free_sid(r.sid);
    }

    pub(super) fn dispose(&mut self, d: Disposal) -> bool {
        match d {
            Disposal::Destroyed(r) => {
                self.release(r);
                true
            }
            Disposal::Kept => false,
        }
    }

    /// The segment page an HPTE of the VMM's translates, from the entry's
    /// own virtual page; `None` for entries that are not the VMM's (other
    /// page or segment sizes, VSIDs no SID scrambles to).
    pub(super) fn owner_of(page: VirtualPage) -> Option<(Sid, u32)> {
        if page.segment_size() != SegmentSize::M256 || page.page_size() != PageSize::K4 {
            return None;
        }
        let sid = Sid::from_vsid(page.vsid())?;
        Some((sid, page.page_index() as u32))
    }

    /// The HPT evicted an entry to make room: if it is the one a page's
    /// record names, its R/C go to the page and the record goes. A record
    /// naming another slot (the page was re-entered elsewhere since) is
    /// left alone.
    pub(super) fn forget_evicted(&mut self, evicted: Evicted) {
        let Some((sid, page)) = evicted.page.and_then(Self::owner_of) else {
            return;
        };
        let slot = HptSlot::of_entry(evicted.ptex, evicted.hpte);
        let cleared = self
            .segments
            .get_mut(sid)
            .is_ok_and(|s| s.clear_slot_if(page, slot));
        if cleared {
            self.fold_rc(sid, page, RefChange::of(evicted.hpte));
        }
    }
}
