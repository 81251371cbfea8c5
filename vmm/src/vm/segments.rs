//! Segments as the VMM sees them: creation and deletion, holds, page
//! protection, frames, and the copy fork makes.

use alloc::vec::Vec;
use core::ops::Range;

use arch_ppc64::addr::{Esid, PhysAddr};

use super::{SpaceRef, VmError, Vmm};
use crate::hpt::HptSlot;
use crate::platform::{FrameAllocator, HptBackend, SlbBackend};
use crate::segment::{PageProt, PageState, SegmentError, SegmentKind, PAGE_SHIFT, SEGSHIFT};
use crate::sid::{Sid, SidError, SidKind};

impl<H: HptBackend, S: SlbBackend, F: FrameAllocator> Vmm<H, S, F> {
    /// Creates a working segment of `size` bytes (rounded up to pages,
    /// at most 256 MB) whose untouched pages get `default_prot`, with a SID
    /// from the `kind` range.
    pub fn create_segment(
        &mut self,
        kind: SidKind,
        size: u64,
        default_prot: PageProt,
    ) -> Result<Sid, VmError> {
        if size == 0 || size > 1 << SEGSHIFT {
            return Err(VmError::BadSize(size));
        }
        let pages = size.div_ceil(1 << PAGE_SHIFT) as u32;
        let sid = self.allocate_sid(kind)?;
        if let Err(e) = self.segments.create_working(sid, pages, default_prot) {
            self.free_sid(sid);
            return Err(e.into());
        }
        Ok(sid)
    }

    /// A fresh SID; when the range is used up, one sweep of the HPT makes
    /// the quarantined SIDs reusable ([`SidAllocator::release_purged`]).
    pub(super) fn allocate_sid(&mut self, kind: SidKind) -> Result<Sid, VmError> {
        match self.sids.allocate(kind) {
            Ok(s) => Ok(s),
            Err(SidError::Exhausted(_)) => {
                self.sids
                    .release_purged(&mut self.hpt)
                    .map_err(VmError::Hpt)?;
                self.sids.allocate(kind).map_err(|_| VmError::NoSids)
            }
            Err(e) => Err(VmError::Sid(e)),
        }
    }

    /// Ends a SID whose every HPTE the VMM recorded has been removed (the
    /// page records are exact: evictions are folded back as they happen),
    /// so it can vouch for the quarantine release at once.
    pub(super) fn free_sid(&mut self, sid: Sid) {
        let _ = self.sids.retire(sid);
    }

    /// `vms_delete`: a held segment is only marked (it stays usable, its
    /// mappings stay) and is destroyed at its last put; an unheld one loses
    /// every mapping in every address space and is destroyed now. Returns
    /// whether it was destroyed now.
    pub fn delete_segment(&mut self, sid: Sid) -> Result<bool, VmError> {
        let s = self.segments.get(sid)?;
        if s.kind() != &SegmentKind::Working {
            return Err(SegmentError::WrongKind(sid).into());
        }
        if s.delete_pending() {
            return Err(SegmentError::DeletePending(sid).into());
        }
        if s.hold_count() > 0 {
            let d = self.segments.delete(sid)?;
            return Ok(self.dispose(d));
        }
        self.revoke_mappings(sid)?;
        if self.segments.get(sid).is_err() {
            // An owning mapping took it along.
            return Ok(true);
        }
        let d = self.segments.delete(sid)?;
        Ok(self.dispose(d))
    }

    /// Every mapping of working segment `sid` (directly or through a view),
    /// in every address space.
    pub fn mappings_of(&self, sid: Sid) -> Vec<(SpaceRef, Esid)> {
        let kernel = self.kernel.iter().map(|(e, m)| (SpaceRef::Kernel, e, m));
        let procs = self
            .spaces
            .iter()
            .flat_map(|(&id, a)| a.iter().map(move |(e, m)| (SpaceRef::User(id), e, m)));
        kernel
            .chain(procs)
            .filter(|(_, _, m)| m.handle.sid() == sid)
            .map(|(s, e, _)| (s, e))
            .collect()
    }

    /// Unmaps `sid` from every address space (`vm_gfree` revoking user
    /// attachments, or a deleted segment's last put).
    pub fn revoke_mappings(&mut self, sid: Sid) -> Result<usize, VmError> {
        let all = self.mappings_of(sid);
        for &(space, esid) in &all {
            self.unmap(space, esid)?;
        }
        Ok(all.len())
    }

    /// `as_geth`: a hold that blocks the segment's destruction.
    pub fn hold_segment(&mut self, sid: Sid) -> Result<u32, VmError> {
        Ok(self.segments.hold(sid)?)
    }

    /// `as_puth`: releases a hold; a put without a hold is refused. The
    /// last put of a deleted segment unmaps it everywhere and destroys it.
    /// Returns whether the segment was destroyed.
    pub fn put_segment(&mut self, sid: Sid) -> Result<bool, VmError> {
        let d = self.segments.put(sid)?;
        if self.dispose(d) {
            return Ok(true);
        }
        let s = self.segments.get(sid)?;
        if s.delete_pending() && s.hold_count() == 0 {
            self.revoke_mappings(sid)?;
            // The last detach of a deleted segment destroys it.
            return Ok(self.segments.get(sid).is_err());
        }
        Ok(false)
    }

    /// Sets the protection of pages `pages` of working segment `sid`.
    /// Translations made under the old protection are removed (here and in
    /// views that show the segment's own protection); the next access
    /// faults them back in under the new one.
    pub fn protect(&mut self, sid: Sid, pages: Range<u32>, prot: PageProt) -> Result<(), VmError> {
        if self.segments.get(sid)?.kind() != &SegmentKind::Working {
            return Err(SegmentError::WrongKind(sid).into());
        }
        let stale = self.segments.get_mut(sid)?.set_prot(pages.clone(), prot)?;
        self.drop_hptes(sid, &stale);
        let views: Vec<Sid> = self
            .segments
            .views_of(sid)
            .filter(|&v| {
                matches!(self.segments.get(v).map(|s| s.kind()), Ok(SegmentKind::View { prot, .. }) if prot.follows_segment())
            })
            .collect();
        for v in views {
            let slots: Vec<(u32, HptSlot)> = self
                .segments
                .get(v)?
                .slots()
                .filter(|(p, _)| pages.contains(p))
                .collect();
            self.drop_hptes(v, &slots);
        }
        Ok(())
    }

    /// The frame backing page `page` of `sid` (a view answers with its
    /// target's), or `None` while the page is untouched (it reads as
    /// zeroes). Touches nothing. After a fork the frame may be shared
    /// copy-on-write with other pages: read it freely, but write only a
    /// frame [`Vmm::unshare_page`] gave, or every sharer sees the store.
    pub fn page_frame(&self, sid: Sid, page: u32) -> Result<Option<PhysAddr>, VmError> {
        let s = self.segments.get(sid)?;
        let (target, page) = match s.kind() {
            SegmentKind::Working => (sid, page),
            SegmentKind::View { target, window, .. } => {
                if !window.contains(&page) {
                    return Err(SegmentError::OutOfRange { sid, page }.into());
                }
                (*target, page)
            }
        };
        Ok(match self.segments.get(target)?.page_state(page)? {
            PageState::Resident(r) => Some(r.frame),
            PageState::Untouched => None,
        })
    }

    /// A new working segment with the same size, protections and contents
    /// as `sid`, sharing its resident frames copy-on-write: nothing is
    /// copied now; the first store to a page on either side copies it
    /// (or, from the last sharer, takes the frame over).
    pub fn copy_segment(&mut self, sid: Sid) -> Result<Sid, VmError> {
        let new = self.inherit_segment(sid)?;
        self.mark_shared(sid);
        Ok(new)
    }
}
