//! HPTE-slot bookkeeping: which segment page each HPTE the VMM inserted
//! translates, removing entries (one at a time or batched), folding their
//! R/C back into the pages, and releasing what destroyed segments leave.

use alloc::vec::Vec;

use arch_ppc64::addr::Ptex;
use arch_ppc64::structures::hpte::Hpte;

use super::{virtual_page, Vmm};
use crate::hpt::VirtualPage;
use crate::platform::{FrameAllocator, HptBackend, RefChange, SlbBackend};
use crate::segment::{Disposal, Released, SegmentKind};
use crate::sid::Sid;

impl<H: HptBackend, S: SlbBackend, F: FrameAllocator> Vmm<H, S, F> {
    /// Removes the HPTE at `ptex` if it is still the one recorded for page
    /// `page` of `sid`, folding its R/C into the page.
    pub(super) fn drop_hpte(&mut self, sid: Sid, page: u32, ptex: Ptex) {
        if self.slot_owner.get(&ptex) != Some(&(sid, page)) {
            return;
        }
        self.slot_owner.remove(&ptex);
        if let Ok(Some(old)) = self.hpt.remove(ptex, virtual_page(sid, page)) {
            self.fold_rc(sid, page, RefChange::of(old));
        }
        if let Ok(s) = self.segments.get_mut(sid) {
            s.clear_slot_if(page, ptex);
        }
    }

    /// [`Vmm::drop_hpte`] for many pages of `sid`, with one batched remove
    /// (`H_BULK_REMOVE` on PAPR) instead of one hcall a page.
    pub(super) fn drop_hptes(&mut self, sid: Sid, slots: &[(u32, Ptex)]) {
        let ours: Vec<(u32, Ptex)> = slots
            .iter()
            .copied()
            .filter(|(page, ptex)| self.slot_owner.get(ptex) == Some(&(sid, *page)))
            .collect();
        for (page, rc) in self.remove_hptes(sid, &ours) {
            self.fold_rc(sid, page, rc);
        }
        if let Ok(s) = self.segments.get_mut(sid) {
            for &(page, ptex) in &ours {
                s.clear_slot_if(page, ptex);
            }
        }
    }

    /// Forgets the owner records of `slots` (each checked to be `sid`'s by
    /// the caller) and removes their HPTEs in one batch. Returns the R/C of
    /// the entries that were still there; an entry already evicted or a
    /// request the backend refused leaves nothing to fold (as with
    /// [`Vmm::drop_hpte`]).
    fn remove_hptes(&mut self, sid: Sid, slots: &[(u32, Ptex)]) -> Vec<(u32, RefChange)> {
        let requests: Vec<(Ptex, VirtualPage)> = slots
            .iter()
            .map(|&(page, ptex)| {
                self.slot_owner.remove(&ptex);
                (ptex, virtual_page(sid, page))
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
        let target = match self.segments.get(sid).map(|s| s.kind().clone()) {
            Ok(SegmentKind::View { target, .. }) => target,
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
        if !r.slots.is_empty() {
            self.release_slots(&r);
        }
        for f in r.frames {
            // A frame the allocator refuses would be a VMM bug (each frame
            // belongs to exactly one page); the allocator changes nothing.
            let freed = self.frames.free(f);
            debug_assert!(freed.is_ok(), "freeing {f:?}: {freed:?}");
        }
        self.free_sid(r.sid);
    }

    /// Removes the HPTEs a destroyed segment recorded. The segment itself
    /// is gone, but a destroyed view's pages are its target's, which may
    /// live on: their R/C go there.
    fn release_slots(&mut self, r: &Released) {
        let ours: Vec<(u32, Ptex)> = r
            .slots
            .iter()
            .copied()
            .filter(|(page, ptex)| self.slot_owner.get(ptex) == Some(&(r.sid, *page)))
            .collect();
        for (page, rc) in self.remove_hptes(r.sid, &ours) {
            if let Some(target) = r.target {
                self.fold_rc_into(target, page, rc);
            }
        }
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

    /// Records that the HPTE at `ptex` translates page `page` of `sid`.
    pub(super) fn record_slot(&mut self, sid: Sid, page: u32, ptex: Ptex) {
        self.slot_owner.insert(ptex, (sid, page));
        self.segments
            .get_mut(sid)
            .and_then(|s| s.set_slot(page, ptex))
            .expect("the fault path checked the page is in range");
    }

    /// The HPT evicted `hpte` from `ptex` to make room: if the VMM had put
    /// it there, its R/C go to its page and the slot record goes.
    pub(super) fn forget_evicted(&mut self, ptex: Ptex, hpte: Hpte) {
        if let Some((s, p)) = self.slot_owner.remove(&ptex) {
            self.fold_rc(s, p, RefChange::of(hpte));
            if let Ok(seg) = self.segments.get_mut(s) {
                seg.clear_slot_if(p, ptex);
            }
        }
    }
}
