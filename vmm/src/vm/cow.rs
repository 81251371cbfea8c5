//! Copy-on-write: how fork shares a copied segment's frames, and how the
//! first store to a shared page takes it apart again.
//!
//! Bookkeeping, all O(1) per page:
//!
//! * Each frame's sharers are counted by the [`FrameAllocator`]
//!   ([`FrameAllocator::share`], [`FrameAllocator::sharers`]; `free` drops
//!   one sharer and returns the frame with the last), in a per-frame
//!   array, as a kernel keeps a reference count in its per-frame
//!   descriptors. The count is the number of page entries naming the
//!   frame.
//! * A page whose frame may be shared carries the copy-on-write mark in
//!   its entry ([`crate::segment::PageEntry::is_cow`]). Its protection
//!   stays what it was; every HPTE translating it (the segment's own and
//!   those of views onto the segment) gets that protection without
//!   stores ([`PageProt::read_only`]).
//!
//! Fork ([`Vmm::fork`] for [`crate::adspace::ForkAction::Copy`] mappings)
//! makes the child's segment name the parent's frames, marked, each frame
//! counting one more sharer ([`Vmm::inherit_segment`]); only when every
//! mapping of the child is made does it mark the parent's pages and take
//! the store permission out of their HPTEs ([`Vmm::mark_shared`]), so a
//! fork that fails changes nothing in the parent. No frame is allocated
//! or copied (unless a frame's count is full, when the child gets a
//! private copy of that page).
//!
//! A store to a marked page faults (protection, or no HPTE yet) and the
//! fault path breaks the sharing: with other sharers left, the page gets
//! a copy in a new frame and the old frame loses a sharer; as the last
//! sharer it simply keeps its frame. Either way every HPTE of the page
//! (the segment's and its views') goes, the mark is cleared, and the
//! access is resolved as a first touch with the page's own protection,
//! in one pass when no view shows the segment ([`Vmm::break_cow`] first
//! when one does). A store the page's protection refuses is a protection
//! fault as before: read-only pages stay read-only.
//!
//! The parent's HPTEs are downgraded with one `H_PROTECT` each: PAPR has no
//! batched protect, and removing them in `H_BULK_REMOVE` batches instead
//! (as Linux's hash MMU does on fork) measured slower here for the few
//! pages a process writes between forks (the generic batch path builds
//! several vectors), and it makes the parent fault again on every page it
//! only reads.
//!
//! A view shows its target segment's entry, so it sees that segment's
//! data whatever the other sharers do, and a store through the view
//! breaks the target's sharing like a store through the segment itself.

use alloc::vec::Vec;

use arch_ppc64::addr::PhysAddr;

use super::{virtual_page, VmError, Vmm};
use crate::hpt::{HptManager, HptSlot};
use crate::platform::{FrameAllocator, FrameError, HptBackend, SlbBackend, VmFaultReason};
use crate::segment::{PageProt, PageRecord, SegmentError, SegmentKind, PAGE_SHIFT};
use crate::sid::Sid;

impl<H: HptBackend, S: SlbBackend, F: FrameAllocator> Vmm<H, S, F> {
    /// The child's half of a copy: a new working segment like `sid` whose
    /// pages name `sid`'s frames, marked copy-on-write, each frame
    /// counting one more sharer (a frame whose count is full is copied
    /// instead). `sid` itself is not changed; [`Vmm::mark_shared`] does
    /// that once the caller is sure to keep the copy. On failure nothing
    /// is left behind (the half-made segment is destroyed, which gives
    /// back the sharers it took).
    pub(super) fn inherit_segment(&mut self, sid: Sid) -> Result<Sid, VmError> {
        let src = self.segments.get(sid)?;
        if src.kind() != &SegmentKind::Working {
            return Err(SegmentError::WrongKind(sid).into());
        }
        let size = u64::from(src.size_pages()) << PAGE_SHIFT;
        let prot = src.default_prot();
        let new = self.create_segment(self.sids.kind_of(sid), size, prot)?;
        let frames = &mut self.frames;
        let r = self.segments.inherit(new, sid, |f| match frames.share(f) {
            Ok(()) => Ok((f, true)),
            Err(FrameError::TooManySharers(_)) => {
                let copy = frames.allocate().ok_or(VmError::NoFrames)?;
                if let Err(e) = frames.copy(copy, f) {
                    let _ = frames.free(copy);
                    return Err(VmError::Frame(e));
                }
                Ok((copy, false))
            }
            Err(e) => Err(VmError::Frame(e)),
        });
        if let Err(e) = r {
            let d = self.segments.orphan(new)?;
            self.dispose(d);
            return Err(e);
        }
        Ok(new)
    }

    /// The parent's half of a copy: marks every resident page of `sid`
    /// copy-on-write and takes the store permission out of its HPTE
    /// (`H_PROTECT`; an entry the backend will not change is removed
    /// instead, the next access faults it back in read-only). Views onto
    /// `sid` lose their HPTEs of those pages. Pages already marked need
    /// nothing: their HPTEs are read-only.
    ///
    /// Right after [`Vmm::inherit_segment`] every resident page's frame
    /// has another sharer, the child's page (a frame whose count was full
    /// was shared already, so its pages are marked), so no count is read.
    pub(super) fn mark_shared(&mut self, sid: Sid) {
        let Ok(seg) = self.segments.get_mut(sid) else {
            return;
        };
        let default = seg.default_prot();
        let has_views = seg.view_count() > 0;
        let hpt = &mut self.hpt;
        let mut marked: Vec<u32> = Vec::new();
        seg.for_each_record(|page, rec| {
            let e = rec.get();
            // Most pages of a process that forks again are marked already.
            if e.frame().is_some() && !e.is_cow() {
                Self::mark_page(hpt, sid, page, rec, default);
                if has_views {
                    marked.push(page);
                }
            }
        });
        if !marked.is_empty() {
            self.drop_view_hptes(sid, &marked);
        }
    }

    /// Marks resident page `page` of `sid` (record `rec`, default
    /// protection `default`) copy-on-write and takes the store permission
    /// out of its HPTE, if it has one that allows stores.
    #[inline(never)]
    fn mark_page(
        hpt: &mut HptManager<H>,
        sid: Sid,
        page: u32,
        rec: &mut PageRecord<'_>,
        default: PageProt,
    ) {
        let e = rec.get();
        rec.set_cow(true);
        let Some(slot) = e.slot() else { return };
        let prot = e.prot(default);
        let ro = prot.read_only();
        if ro == prot {
            return;
        }
        let vp = virtual_page(sid, page);
        match hpt.protect_slot(vp, slot, ro.pp, ro.no_exec) {
            Ok(true) => {}
            // Evicted behind the record's back: nothing to downgrade.
            Ok(false) => {
                rec.take_slot();
            }
            Err(_) => {
                rec.take_slot();
                if let Ok(Some(h)) = hpt.remove_slot(vp, slot) {
                    rec.fold_rc(h.referenced(), h.changed());
                }
            }
        }
    }

    /// Removes the HPTEs views onto working segment `sid` have for pages
    /// `pages` (sorted), folding their R/C into `sid`'s pages.
    fn drop_view_hptes(&mut self, sid: Sid, pages: &[u32]) {
        let views: Vec<Sid> = self.segments.views_of(sid).collect();
        for v in views {
            let Ok(view) = self.segments.get(v) else {
                continue;
            };
            let slots: Vec<(u32, HptSlot)> = pages
                .iter()
                .filter_map(|&p| view.slot(p).map(|s| (p, s)))
                .collect();
            self.drop_hptes(v, &slots);
        }
    }

    /// Ends the copy-on-write sharing of page `page` of working segment
    /// `owner` (it is marked) for a store: a private copy in a new frame
    /// if other pages still name its frame, else the frame itself. Every
    /// HPTE of the page, the segment's and its views', is removed (they
    /// are read-only, or show the old frame), their R/C folded in; the
    /// fault path then inserts a writable one.
    ///
    /// # Errors
    /// [`VmFaultReason::NoMemory`] without a frame for the copy,
    /// [`VmFaultReason::Frame`] if the copy fails; the tables are then
    /// unchanged. (Whether a copy may be made at all, at interrupt level,
    /// is the fault path's question.)
    pub(super) fn break_cow(&mut self, owner: Sid, page: u32) -> Result<(), VmFaultReason> {
        let seg = self
            .segments
            .get(owner)
            .map_err(|_| VmFaultReason::NoSegment)?;
        let e = seg.entry(page);
        let frame = e.frame().ok_or(VmFaultReason::OutOfRange)?;
        debug_assert!(e.is_cow(), "breaking a page that is not copy-on-write");
        let has_views = seg.view_count() > 0;
        let copy = if self.frames.sharers(frame) > 1 {
            let c = self.frames.allocate().ok_or(VmFaultReason::NoMemory)?;
            if let Err(err) = self.frames.copy(c, frame) {
                let _ = self.frames.free(c);
                return Err(VmFaultReason::Frame(err));
            }
            Some(c)
        } else {
            None
        };
        // Nothing can fail from here on.
        if has_views {
            self.drop_view_hptes(owner, &[page]);
        }
        let seg = self
            .segments
            .get_mut(owner)
            .expect("looked up above, nothing removed since");
        let mut rec = seg.open(page).expect("a resident page has its record");
        if let Some(slot) = rec.take_slot() {
            if let Ok(Some(h)) = self.hpt.remove_slot(virtual_page(owner, page), slot) {
                rec.fold_rc(h.referenced(), h.changed());
            }
        }
        let old = rec.end_cow(copy);
        if copy.is_some() {
            // One sharer fewer; other pages still name it.
            let freed = self.frames.free(old);
            debug_assert!(freed.is_ok(), "dropping a sharer of {old:?}: {freed:?}");
        }
        Ok(())
    }

    /// Makes page `page` of working segment `sid` private if it is shared
    /// copy-on-write (as a store to it would) and returns its frame, or
    /// `None` for an untouched page. For a kernel that writes a page
    /// through its frame rather than through a mapping (the linear map):
    /// writing the frame [`Vmm::page_frame`] gives for a shared page
    /// would change it for every sharer.
    ///
    /// # Errors
    /// [`VmError::NoFrames`] without a frame for the copy,
    /// [`VmError::Frame`] if the copy fails, and the segment errors for
    /// a bad `sid` or `page`; the tables are then unchanged.
    pub fn unshare_page(&mut self, sid: Sid, page: u32) -> Result<Option<PhysAddr>, VmError> {
        let s = self.segments.get(sid)?;
        if s.kind() != &SegmentKind::Working {
            return Err(SegmentError::WrongKind(sid).into());
        }
        let e = s.page_state(page).map(|_| s.entry(page))?;
        if e.is_cow() {
            self.break_cow(sid, page).map_err(|r| match r {
                VmFaultReason::Frame(f) => VmError::Frame(f),
                _ => VmError::NoFrames,
            })?;
        }
        Ok(self.segments.get(sid)?.entry(page).frame())
    }
}
