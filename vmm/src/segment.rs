//! Working-storage segments: the virtual memory objects of the VMM.
//!
//! A segment is a 256 MB object ([`SEGSHIFT`] = 28) named by a SID. It is
//! made of 4 KiB pages that start *untouched* and become *resident* at their
//! first touch, in a freshly zeroed frame (zero-fill on demand, AIX
//! "working storage"). A resident page may additionally have a hashed page
//! table entry; the HPT is only a cache of this table, so the slot record
//! here says where that entry is, so it can be removed or its R/C bits folded
//! back when the page is unmapped or its entry is evicted.
//!
//! Each page's record is one packed doubleword ([`PageEntry`]: frame,
//! protection of its own, R/C, HPTE slot) in an array indexed by page
//! number ([`PageTable`]): one array of the segment's size for a small
//! segment, a top level and leaves of [`LEAF_PAGES`] entries (made at
//! their first write) for a larger one. The table finds a segment by SID
//! through a hash index. So the fault path finds a segment and a page
//! without a search, and allocates only for the first record of a leaf.
//!
//! Besides working segments the table holds *views*: SIDs of their own that
//! show a page window of a target segment (the AIX layer needs this for
//! `vm_guatt`, where a process may reach only the pages it attached). A view
//! has its own VSID, so its HPTEs are separate from the target's and no
//! translation made for the kernel's mapping of a page can leak into the
//! view, and a view may give its pages a protection of its own.
//!
//! Lifetime: attach counts (mappings) and hold counts (`as_geth`/`as_geth64`)
//! are kept here. Deleting a held segment only marks it; it stays usable and
//! is destroyed when the last hold is put and it is no longer attached. The
//! destruction itself (freeing frames, HPTEs, SIDs) is done by
//! [`crate::vm::Vmm`], which owns the platform; this module only reports
//! what must be released.

use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::fmt;
use core::ops::Range;
use core::sync::atomic::{AtomicBool, Ordering};

use arch_ppc64::addr::{PhysAddr, Vsid};
use arch_ppc64::structures::hpte::Pp;
use arch_ppc64::structures::{PageSize, SegmentSize};

use crate::hpt::{HptSlot, VirtualPage};
use crate::sid::Sid;

mod pages;
mod sidmap;

pub use pages::{Entries, PageEntry, PageTable, LEAF_PAGES};
use sidmap::SidMap;

/// log2 of the segment size: AIX `SEGSHIFT`, 256 MB segments (ISA B = 0b00).
pub const SEGSHIFT: u32 = 28;
/// log2 of the base page size used for every segment: 4 KiB.
pub const PAGE_SHIFT: u32 = 12;
/// Bytes per page.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// Pages in one 256 MB segment: 65536.
pub const PAGES_PER_SEGMENT: u32 = 1 << (SEGSHIFT - PAGE_SHIFT);

/// The page index (0..65536) of a byte offset in a segment; the upper bits
/// of `offset` (those above [`SEGSHIFT`]) are ignored, as AIX ignores them.
pub const fn page_of_offset(offset: u64) -> u32 {
    ((offset & ((1 << SEGSHIFT) - 1)) >> PAGE_SHIFT) as u32
}

/// Protection of one page: the HPTE PP bits and the no-execute bit (HPTE N).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageProt {
    /// Page protection bits, interpreted with the segment key (Power ISA Book III-S, "Storage Protection" PP table).
    pub pp: Pp,
    /// Instruction fetch is refused from this page (HPTE N = 1).
    pub no_exec: bool,
}

impl PageProt {
    /// Read-write for key 0, no access for key 1 (PP 00): the vm_galloc default.
    pub const KERNEL_RW: PageProt = PageProt {
        pp: Pp::RW_NONE,
        no_exec: false,
    };
    /// Read-write for both keys (PP 10): ordinary user data.
    pub const USER_RW: PageProt = PageProt {
        pp: Pp::RW_RW,
        no_exec: false,
    };

    /// The same loads and fetches for each key, no stores: what the HPTE
    /// of a copy-on-write page carries, so that the first store faults.
    /// From the ISA's PP table: `000` (key 0 read-write, key 1 nothing)
    /// becomes `110`, `001` and `010` (key 1 reads) become `011`; the
    /// read-only values and the reserved ones (nothing for either key)
    /// stay.
    pub const fn read_only(self) -> PageProt {
        let pp = match self.pp.bits() {
            0b000 => Pp::RO_NONE,
            0b001 | 0b010 => Pp::RO_RO,
            _ => self.pp,
        };
        PageProt {
            pp,
            no_exec: self.no_exec,
        }
    }
}

/// A resident page: its frame and the reference/change bits seen so far
/// (the HPTE's R and C folded in whenever its entry left the HPT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resident {
    /// The 4 KiB frame holding the page.
    pub frame: PhysAddr,
    /// Referenced (HPTE R) at some point.
    pub referenced: bool,
    /// Changed (HPTE C) at some point.
    pub changed: bool,
}

/// State of a page of a working segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageState {
    /// Never touched: no frame; the first touch zero-fills one.
    Untouched,
    /// Backed by a frame.
    Resident(Resident),
}

/// What a SID in the table names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SegmentKind {
    /// A working-storage segment with pages of its own.
    Working,
    /// A window onto the pages `window` of the working segment `target`.
    View {
        /// The working segment whose frames this view shows.
        target: Sid,
        /// The page indexes visible through the view; others are out of range.
        window: Range<u32>,
        /// How the view's pages are protected.
        prot: ViewProt,
    },
}

/// How the pages of a view are protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewProt {
    /// As the target page itself is.
    Segment,
    /// This protection for every page of the view.
    Fixed(PageProt),
    /// The target page's access for key 0, none for key 1: a PP that lets
    /// key 0 write becomes `000`, one that lets it only read becomes `110`
    /// (the ISA's PP table), so problem state is refused by the hardware whatever
    /// the page's own PP and the segment's Kp. For kernel mappings of pages
    /// that processes may see elsewhere (through their own views).
    SupervisorOnly,
}

impl ViewProt {
    /// The protection a view page gets when its target page has `target`.
    pub fn apply(self, target: PageProt) -> PageProt {
        match self {
            ViewProt::Segment => target,
            ViewProt::Fixed(p) => p,
            ViewProt::SupervisorOnly => {
                let key0 = target.pp.access(false);
                let pp = if key0.write {
                    Pp::RW_NONE
                } else if key0.read {
                    Pp::RO_NONE
                } else {
                    // Reserved values allow nothing for either key already.
                    target.pp
                };
                PageProt {
                    pp,
                    no_exec: target.no_exec,
                }
            }
        }
    }

    /// Whether the view's protection changes with the target page's.
    pub fn follows_segment(self) -> bool {
        !matches!(self, ViewProt::Fixed(_))
    }
}

/// Errors of segment-table operations. Every error leaves the table unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SegmentError {
    /// No segment is named by this SID.
    NoSuchSegment(Sid),
    /// A SID given for a new segment is already in use.
    SidInUse(Sid),
    /// The page index lies beyond the segment's size (or outside a view's window).
    OutOfRange {
        /// The segment or view.
        sid: Sid,
        /// The offending page index.
        page: u32,
    },
    /// A size of zero or above 256 MB, or an empty/oversized page range.
    BadSize,
    /// `put` without a matching `get`: the hold count is already zero.
    NotHeld(Sid),
    /// Detach of a segment that has no attachment.
    NotAttached(Sid),
    /// The segment is still attached somewhere and cannot be deleted now.
    Attached(Sid),
    /// The operation needs a working segment but the SID names a view (or
    /// the other way round).
    WrongKind(Sid),
    /// The segment is already marked for deletion.
    DeletePending(Sid),
    /// The allocator could not provide room for the page records (or the
    /// table's index).
    NoMemory,
}

impl fmt::Display for SegmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegmentError::NoSuchSegment(s) => write!(f, "no segment with SID {:#x}", s.as_u64()),
            SegmentError::SidInUse(s) => write!(f, "SID {:#x} already in use", s.as_u64()),
            SegmentError::OutOfRange { sid, page } => {
                write!(f, "page {page} out of range of SID {:#x}", sid.as_u64())
            }
            SegmentError::BadSize => write!(f, "bad segment size or page range"),
            SegmentError::NotHeld(s) => write!(f, "SID {:#x} is not held", s.as_u64()),
            SegmentError::NotAttached(s) => write!(f, "SID {:#x} is not attached", s.as_u64()),
            SegmentError::Attached(s) => write!(f, "SID {:#x} is still attached", s.as_u64()),
            SegmentError::WrongKind(s) => write!(f, "SID {:#x} is the wrong kind", s.as_u64()),
            SegmentError::DeletePending(s) => {
                write!(f, "SID {:#x} is already being deleted", s.as_u64())
            }
            SegmentError::NoMemory => write!(f, "no memory for page records"),
        }
    }
}

/// A working segment or a view (see the module documentation).
#[derive(Clone, Debug)]
pub struct Segment {
    sid: Sid,
    /// `sid.vsid()`, kept so the fault path does not scramble again.
    vsid: Vsid,
    kind: SegmentKind,
    size_pages: u32,
    default_prot: PageProt,
    pages: PageTable,
    /// Entries with an HPTE slot recorded.
    slot_count: usize,
    /// Views whose target this is (they show its frames under VSIDs of
    /// their own, so a copy-on-write break must find their HPTEs too).
    view_count: u32,
    attach_count: u32,
    hold_count: u32,
    delete_pending: bool,
    orphaned: bool,
}

impl Segment {
    fn new(sid: Sid, kind: SegmentKind, size_pages: u32, default_prot: PageProt) -> Self {
        Segment {
            sid,
            vsid: sid.vsid(),
            kind,
            size_pages,
            default_prot,
            pages: PageTable::new(size_pages),
            slot_count: 0,
            view_count: 0,
            attach_count: 0,
            hold_count: 0,
            delete_pending: false,
            orphaned: false,
        }
    }

    /// The SID naming this segment.
    #[inline]
    pub fn sid(&self) -> Sid {
        self.sid
    }

    /// The VSID the hardware uses for it.
    #[inline]
    pub fn vsid(&self) -> Vsid {
        self.vsid
    }

    /// Its virtual page `page` (4 KiB pages of a 256 MB segment).
    #[inline(always)]
    pub fn virtual_page(&self, page: u32) -> VirtualPage {
        VirtualPage::from_offset(
            self.vsid,
            u64::from(page) << PAGE_SHIFT,
            SegmentSize::M256,
            PageSize::K4,
        )
        .expect("SID VSIDs fit 256 MB segments and pages are below 65536")
    }

    /// Working segment or view.
    #[inline]
    pub fn kind(&self) -> &SegmentKind {
        &self.kind
    }

    /// Size in pages; pages at or above it are out of range.
    pub fn size_pages(&self) -> u32 {
        self.size_pages
    }

    /// The protection untouched pages get unless set otherwise.
    #[inline(always)]
    pub fn default_prot(&self) -> PageProt {
        self.default_prot
    }

    /// Number of mappings of this segment in address spaces.
    pub fn attach_count(&self) -> u32 {
        self.attach_count
    }

    /// Number of views whose target this segment is.
    #[inline(always)]
    pub fn view_count(&self) -> u32 {
        self.view_count
    }

    /// Number of `as_geth` holds outstanding.
    pub fn hold_count(&self) -> u32 {
        self.hold_count
    }

    /// `vms_delete` was asked while the segment was held: it stays fully
    /// usable (it can be mapped again, fork inherits it) and is destroyed
    /// at the last put, which also takes down its mappings.
    pub fn delete_pending(&self) -> bool {
        self.delete_pending
    }

    /// The mapping that owned the segment went away while something else
    /// still maps or holds it: it is destroyed with its last detach or put
    /// and stays fully usable until then. Unlike [`Self::delete_pending`],
    /// a put does not take its mappings down.
    pub fn orphaned(&self) -> bool {
        self.orphaned
    }

    /// Whether `page` is addressable: below the size and, for a view, inside
    /// its window.
    #[inline(always)]
    pub fn in_range(&self, page: u32) -> bool {
        match &self.kind {
            SegmentKind::Working => page < self.size_pages,
            SegmentKind::View { window, .. } => window.contains(&page),
        }
    }

    #[inline(always)]
    fn check(&self, page: u32) -> Result<(), SegmentError> {
        if self.in_range(page) {
            Ok(())
        } else {
            Err(SegmentError::OutOfRange {
                sid: self.sid,
                page,
            })
        }
    }

    /// The whole record of `page` ([`PageEntry::EMPTY`] for a page never
    /// written or out of range): one array lookup, what the fault path
    /// reads.
    #[inline(always)]
    pub fn entry(&self, page: u32) -> PageEntry {
        self.pages.get(page)
    }

    /// Makes sure `page` has room for its record, so that recording a
    /// frame or a slot for it afterwards cannot fail. Changes nothing a
    /// reader can see.
    #[inline(always)]
    pub fn reserve(&mut self, page: u32) -> Result<(), SegmentError> {
        self.check(page)?;
        if self.pages.get_mut(page).is_some() {
            return Ok(());
        }
        self.pages
            .entry(page)
            .map(|_| ())
            .map_err(|_| SegmentError::NoMemory)
    }

    fn entry_mut(&mut self, page: u32) -> Result<&mut PageEntry, SegmentError> {
        self.check(page)?;
        self.pages.entry(page).map_err(|_| SegmentError::NoMemory)
    }

    /// Protection of `page` as this segment itself records it (for a view
    /// without a protection of its own this is the view's default, the
    /// caller must consult the target).
    pub fn page_prot(&self, page: u32) -> Result<PageProt, SegmentError> {
        self.check(page)?;
        Ok(self.entry(page).prot(self.default_prot))
    }

    /// State of `page` (always [`PageState::Untouched`] for a view).
    pub fn page_state(&self, page: u32) -> Result<PageState, SegmentError> {
        self.check(page)?;
        Ok(self.entry(page).state())
    }

    /// The HPTE slot currently recorded for `page`, relative to the page's
    /// own PTEGs ([`crate::hpt::HptManager::slot_ptex`] makes it a PTE
    /// index).
    #[inline]
    pub fn slot(&self, page: u32) -> Option<HptSlot> {
        self.entry(page).slot()
    }

    /// Number of pages with an HPTE slot recorded.
    pub fn slot_count(&self) -> usize {
        self.slot_count
    }

    /// Records that `page` now lives in `frame` (after zero-filling or
    /// copying it). Refused for views and for pages already resident.
    pub fn make_resident(&mut self, page: u32, frame: PhysAddr) -> Result<(), SegmentError> {
        self.check(page)?;
        if self.kind != SegmentKind::Working || self.entry(page).frame().is_some() {
            return Err(SegmentError::WrongKind(self.sid));
        }
        let e = self.entry_mut(page)?;
        *e = e.with_frame(frame);
        Ok(())
    }

    /// Records the HPTE slot of `page`. The caller has inserted the entry.
    pub fn set_slot(&mut self, page: u32, slot: HptSlot) -> Result<(), SegmentError> {
        let e = self.entry_mut(page)?;
        let had = e.slot().is_some();
        *e = e.with_slot(Some(slot));
        if !had {
            self.slot_count += 1;
        }
        Ok(())
    }

    /// Forgets the HPTE slot of `page` if it is `slot` (an eviction of an
    /// entry that was since replaced must not erase the new record);
    /// returns whether it was.
    #[inline]
    pub fn clear_slot_if(&mut self, page: u32, slot: HptSlot) -> bool {
        match self.pages.get_mut(page) {
            Some(e) if e.slot() == Some(slot) => {
                *e = e.with_slot(None);
                self.slot_count -= 1;
                true
            }
            _ => false,
        }
    }

    /// Folds the R and C bits of an entry that left the HPT into the page
    /// state (no effect on untouched pages or views).
    #[inline(always)]
    pub fn fold_rc(&mut self, page: u32, referenced: bool, changed: bool) {
        if let Some(e) = self.pages.get_mut(page) {
            *e = e.with_rc(referenced, changed);
        }
    }

    /// Opens the record of `page` for the fault path, making room for it
    /// first if need be: one lookup, then reads and writes through the
    /// returned handle.
    #[inline(always)]
    pub fn open(&mut self, page: u32) -> Result<PageRecord<'_>, SegmentError> {
        self.check(page)?;
        let entry = self.pages.entry(page).map_err(|_| SegmentError::NoMemory)?;
        Ok(PageRecord {
            entry,
            slot_count: &mut self.slot_count,
        })
    }

    /// Calls `f` with the record of every page that has one (non-empty
    /// entries), in page order: a walk over the arrays' marks, no
    /// allocation.
    #[inline(always)]
    pub fn for_each_record(&mut self, mut f: impl FnMut(u32, &mut PageRecord<'_>)) {
        let slot_count = &mut self.slot_count;
        self.pages.for_each_mut(|page, entry| {
            f(
                page,
                &mut PageRecord {
                    entry,
                    slot_count: &mut *slot_count,
                },
            )
        });
    }

    /// Sets the protection of pages `range`. Returns the slots whose entries
    /// now carry stale protection (their records are cleared: the caller
    /// removes the entries and folds their R/C back). An out-of-range page,
    /// or no memory for the records, refuses the whole call and changes
    /// nothing.
    pub fn set_prot(
        &mut self,
        range: Range<u32>,
        prot: PageProt,
    ) -> Result<Vec<(u32, HptSlot)>, SegmentError> {
        if range.start >= range.end {
            return Err(SegmentError::BadSize);
        }
        self.check(range.start)?;
        self.check(range.end - 1)?;
        let own = (prot != self.default_prot).then_some(prot);
        if own.is_some() {
            // Room for every record first, so a failure changes nothing
            // (records made room for still read as the defaults).
            for page in range.clone() {
                self.reserve(page)?;
            }
        }
        let mut stale = Vec::new();
        for page in range {
            // A page without storage has the default protection and no
            // slot: setting the default leaves it so.
            let Some(e) = self.pages.get_mut(page) else {
                continue;
            };
            let mut new = e.with_prot(own);
            if let Some(slot) = e.slot() {
                stale.push((page, slot));
                new = new.with_slot(None);
            }
            *e = new;
        }
        self.slot_count -= stale.len();
        Ok(stale)
    }

    /// Every page with a record other than the defaults, in page order.
    pub fn entries(&self) -> Entries<'_> {
        self.pages.iter()
    }

    /// Resident pages and their frames, in page order.
    pub fn resident_pages(&self) -> impl Iterator<Item = (u32, Resident)> + '_ {
        self.pages.iter().filter_map(|(i, e)| match e.state() {
            PageState::Resident(r) => Some((i, r)),
            PageState::Untouched => None,
        })
    }

    /// Pages with an HPTE slot recorded, in page order.
    pub fn slots(&self) -> impl Iterator<Item = (u32, HptSlot)> + '_ {
        self.pages
            .iter()
            .filter_map(|(i, e)| e.slot().map(|s| (i, s)))
    }

    /// Pages with a protection other than the default, in page order.
    pub fn prot_overrides(&self) -> impl Iterator<Item = (u32, PageProt)> + '_ {
        self.pages
            .iter()
            .filter_map(|(i, e)| e.prot_override().map(|p| (i, p)))
            .filter(|(_, p)| *p != self.default_prot)
    }

    /// Bytes the page records take (for heap accounting).
    pub fn record_bytes(&self) -> usize {
        self.pages.allocated_bytes()
    }

    /// Empties the segment for destruction: returns every frame and HPTE
    /// slot it recorded; afterwards it holds nothing.
    fn drain(&mut self) -> Released {
        let pages = self.pages.take();
        self.slot_count = 0;
        let mut out = Released {
            sid: self.sid,
            target: match self.kind {
                SegmentKind::View { target, .. } => Some(target),
                SegmentKind::Working => None,
            },
            frames: Vec::new(),
            slots: Vec::new(),
        };
        for (i, e) in pages.iter() {
            if let Some(f) = e.frame() {
                out.frames.push(f);
            }
            if let Some(s) = e.slot() {
                out.slots.push((i, s));
            }
        }
        out
    }
}

/// One page's record opened by [`Segment::open`].
#[derive(Debug)]
pub struct PageRecord<'a> {
    entry: &'a mut PageEntry,
    slot_count: &'a mut usize,
}

impl PageRecord<'_> {
    /// The entry as it is now.
    #[inline(always)]
    pub fn get(&self) -> PageEntry {
        *self.entry
    }

    /// Forgets the recorded HPTE slot and returns it.
    #[inline(always)]
    pub fn take_slot(&mut self) -> Option<HptSlot> {
        let slot = self.entry.slot()?;
        *self.entry = self.entry.with_slot(None);
        *self.slot_count -= 1;
        Some(slot)
    }

    /// Records the HPTE slot `slot` (none was recorded).
    #[inline(always)]
    pub fn set_slot(&mut self, slot: HptSlot) {
        debug_assert!(self.entry.slot().is_none(), "earlier slot not forgotten");
        *self.entry = self.entry.with_slot(Some(slot));
        *self.slot_count += 1;
    }

    /// Records that the page now lives in `frame` (it was untouched).
    #[inline(always)]
    pub fn set_frame(&mut self, frame: PhysAddr) {
        debug_assert!(self.entry.frame().is_none(), "zero-filled twice");
        *self.entry = self.entry.with_frame(frame);
    }

    /// Sets or clears the copy-on-write mark (the page must be resident).
    #[inline(always)]
    pub fn set_cow(&mut self, cow: bool) {
        debug_assert!(
            self.entry.frame().is_some(),
            "copy-on-write without a frame"
        );
        *self.entry = self.entry.with_cow(cow);
    }

    /// Ends the page's copy-on-write sharing: it now has `frame` (a
    /// private copy, `None`: the frame it has, no other page naming it
    /// any more) and may be written. Returns the frame it had.
    #[inline]
    pub fn end_cow(&mut self, frame: Option<PhysAddr>) -> PhysAddr {
        let old = self
            .entry
            .frame()
            .expect("a copy-on-write page has a frame");
        *self.entry = match frame {
            Some(f) => self.entry.with_frame(f),
            None => self.entry.with_cow(false),
        };
        old
    }

    /// Folds R and C of an entry that left the HPT in.
    #[inline(always)]
    pub fn fold_rc(&mut self, referenced: bool, changed: bool) {
        *self.entry = self.entry.with_rc(referenced, changed);
    }
}

/// What a destroyed segment leaves to release: its SID, its frames, and
/// the HPTE slots it recorded (by page index).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Released {
    /// The SID, to hand back to the SID allocator.
    pub sid: Sid,
    /// For a view: the working segment whose pages its HPTEs translated
    /// (their R and C belong there). `None` for a working segment.
    pub target: Option<Sid>,
    /// Frames to free.
    pub frames: Vec<PhysAddr>,
    /// HPTEs to remove: (page, slot relative to the page's PTEGs).
    pub slots: Vec<(u32, HptSlot)>,
}

/// What one [`SegmentTable::detach`] destroyed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Detached {
    /// The view detached (a view goes with its single detach).
    pub view: Option<Released>,
    /// The working segment, if that was the last attachment of a deleted
    /// or orphaned one.
    pub segment: Option<Released>,
}

impl Detached {
    /// How many segments went.
    pub fn len(&self) -> usize {
        usize::from(self.view.is_some()) + usize::from(self.segment.is_some())
    }

    /// Whether nothing went.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Outcome of a delete request or of the last detach/put of a deleted segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disposal {
    /// The segment is gone; release these resources.
    Destroyed(Released),
    /// The segment stays (held, attached or not deleted); nothing to release.
    Kept,
}

/// A segment with the lock the shared fault path takes
/// ([`SegmentTable::lock`]). Everything else reaches the segment through
/// `Deref`/`DerefMut` without the lock: with `&mut` the borrow excludes
/// everyone; with `&` it relies on the manager's rule that shared faults
/// run only while nothing else runs (see `Vmm::resolve_shared`), so no
/// plain reader meets a locked writer.
struct SegCell {
    locked: AtomicBool,
    segment: UnsafeCell<Segment>,
}

// SAFETY: the segment is written through `&SegCell` only under `locked`
// (SegGuard), and read through `&SegCell` without it only while no
// SegGuard can exist (the manager's shared-fault rule above).
unsafe impl Sync for SegCell {}

impl SegCell {
    fn new(segment: Segment) -> SegCell {
        SegCell {
            locked: AtomicBool::new(false),
            segment: UnsafeCell::new(segment),
        }
    }
}

impl core::ops::Deref for SegCell {
    type Target = Segment;
    #[inline(always)]
    fn deref(&self) -> &Segment {
        // SAFETY: see the type's docs: no SegGuard is alive while plain
        // readers run.
        unsafe { &*self.segment.get() }
    }
}

impl core::ops::DerefMut for SegCell {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut Segment {
        self.segment.get_mut()
    }
}

impl Clone for SegCell {
    fn clone(&self) -> Self {
        SegCell::new((**self).clone())
    }
}

impl core::fmt::Debug for SegCell {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        (**self).fmt(f)
    }
}

/// A segment locked by the shared fault path ([`SegmentTable::lock`]);
/// unlocked when dropped.
pub struct SegGuard<'a> {
    cell: &'a SegCell,
}

impl core::ops::Deref for SegGuard<'_> {
    type Target = Segment;
    #[inline(always)]
    fn deref(&self) -> &Segment {
        // SAFETY: the guard holds the cell's lock.
        unsafe { &*self.cell.segment.get() }
    }
}

impl core::ops::DerefMut for SegGuard<'_> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut Segment {
        // SAFETY: the guard holds the cell's lock, so this is the only
        // reference to the segment (plain readers do not run meanwhile).
        unsafe { &mut *self.cell.segment.get() }
    }
}

impl Drop for SegGuard<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.cell.locked.store(false, Ordering::Release);
    }
}

impl core::fmt::Debug for SegGuard<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SegGuard").field("sid", &self.sid).finish()
    }
}

/// The segment table: every working segment and view, keyed by SID (a
/// hash index, so the fault path finds a segment without a search).
#[derive(Clone, Debug, Default)]
pub struct SegmentTable {
    segments: SidMap<SegCell>,
}

impl SegmentTable {
    /// An empty table.
    pub fn new() -> Self {
        SegmentTable::default()
    }

    /// Number of segments and views.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// The segment named by `sid`.
    #[inline]
    pub fn get(&self, sid: Sid) -> Result<&Segment, SegmentError> {
        self.segments
            .get(sid)
            .map(|c| &**c)
            .ok_or(SegmentError::NoSuchSegment(sid))
    }

    /// The segment named by `sid`, mutably.
    #[inline]
    pub fn get_mut(&mut self, sid: Sid) -> Result<&mut Segment, SegmentError> {
        self.segments
            .get_mut(sid)
            .map(|c| &mut **c)
            .ok_or(SegmentError::NoSuchSegment(sid))
    }

    /// Locks segment `sid` for the shared fault path, waiting while another
    /// processor holds it.
    ///
    /// # Safety
    /// Only while the table is used by shared faults alone: no reader or
    /// writer reaches a segment except through a guard until every guard is
    /// gone (`Vmm::resolve_shared`'s contract).
    #[inline]
    pub unsafe fn lock(&self, sid: Sid) -> Result<SegGuard<'_>, SegmentError> {
        let cell = self
            .segments
            .get(sid)
            .ok_or(SegmentError::NoSuchSegment(sid))?;
        while cell
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        Ok(SegGuard { cell })
    }

    /// The segment `sid` and, if it is a view, its target and how the view
    /// protects it: everything the fault path needs, found with one hash
    /// lookup for a working segment and two for a view.
    #[inline(always)]
    #[allow(clippy::type_complexity)]
    pub fn with_target_mut(
        &mut self,
        sid: Sid,
    ) -> Result<(&mut Segment, Option<(&mut Segment, ViewProt)>), SegmentError> {
        let i = self
            .segments
            .index_of(sid)
            .ok_or(SegmentError::NoSuchSegment(sid))?;
        let (target, prot) = match &self.segments.at(i).kind {
            SegmentKind::Working => return Ok((&mut **self.segments.at_mut(i), None)),
            SegmentKind::View { target, prot, .. } => (*target, *prot),
        };
        let j = self
            .segments
            .index_of(target)
            .ok_or(SegmentError::NoSuchSegment(target))?;
        let (view, target) = self.segments.pair_at_mut(i, j);
        Ok((&mut **view, Some((&mut **target, prot))))
    }

    /// All segments and views in SID order (sorted on each call: for
    /// scans, not for hot paths).
    pub fn iter(&self) -> impl Iterator<Item = &Segment> {
        let mut all: Vec<&Segment> = self.segments.iter().map(|(_, s)| &**s).collect();
        all.sort_unstable_by_key(|s| s.sid);
        all.into_iter()
    }

    /// HPTE slots recorded over all segments and views.
    pub fn slot_count(&self) -> usize {
        self.segments.iter().map(|(_, s)| s.slot_count).sum()
    }

    /// Adds a working segment of `size_pages` pages (1..=65536) under `sid`.
    pub fn create_working(
        &mut self,
        sid: Sid,
        size_pages: u32,
        default_prot: PageProt,
    ) -> Result<(), SegmentError> {
        if size_pages == 0 || size_pages > PAGES_PER_SEGMENT {
            return Err(SegmentError::BadSize);
        }
        if self.segments.contains(sid) {
            return Err(SegmentError::SidInUse(sid));
        }
        self.segments
            .insert(
                sid,
                SegCell::new(Segment::new(
                    sid,
                    SegmentKind::Working,
                    size_pages,
                    default_prot,
                )),
            )
            .map_err(|_| SegmentError::NoMemory)
    }

    /// Adds a view `sid` of pages `window` of the working segment `target`.
    /// The view counts as one attachment of the target until it is destroyed.
    pub fn create_view(
        &mut self,
        sid: Sid,
        target: Sid,
        window: Range<u32>,
        prot: ViewProt,
    ) -> Result<(), SegmentError> {
        if self.segments.contains(sid) {
            return Err(SegmentError::SidInUse(sid));
        }
        let t = self.get(target)?;
        if t.kind != SegmentKind::Working {
            return Err(SegmentError::WrongKind(target));
        }
        if window.start >= window.end || window.end > t.size_pages {
            return Err(SegmentError::BadSize);
        }
        let default_prot = prot.apply(t.default_prot);
        if t.view_count == u32::MAX {
            return Err(SegmentError::NoMemory);
        }
        self.segments
            .insert(
                sid,
                SegCell::new(Segment::new(
                    sid,
                    SegmentKind::View {
                        target,
                        window: window.clone(),
                        prot,
                    },
                    window.end,
                    default_prot,
                )),
            )
            .map_err(|_| SegmentError::NoMemory)?;
        let t = self.get_mut(target)?;
        t.attach_count += 1;
        t.view_count += 1;
        Ok(())
    }

    /// The views whose target is `target`, in no particular order (a scan
    /// of the table: for the rare segment with views, see
    /// [`Segment::view_count`]).
    pub fn views_of(&self, target: Sid) -> impl Iterator<Item = Sid> + '_ {
        self.segments
            .iter()
            .filter_map(move |(sid, s)| match s.kind {
                SegmentKind::View { target: t, .. } if t == target => Some(sid),
                _ => None,
            })
    }

    /// Gives the new, empty working segment `child` the pages of working
    /// segment `parent`, as fork does for a copied mapping: the same
    /// protections, and for each resident page the frame `frame` gives
    /// for the parent's (a shared one, marked copy-on-write, or a private
    /// copy). Neither R/C nor HPTE slots are inherited. The parent is not
    /// changed: marking its shared pages is the caller's next step.
    ///
    /// A record is written only once `frame` gave its frame, so when a
    /// call fails (or there is no room) `child` names exactly the frames
    /// the earlier calls gave, and destroying it releases them.
    pub fn inherit<E: From<SegmentError>>(
        &mut self,
        child: Sid,
        parent: Sid,
        mut frame: impl FnMut(PhysAddr) -> Result<(PhysAddr, bool), E>,
    ) -> Result<(), E> {
        let i = self
            .segments
            .index_of(child)
            .ok_or(SegmentError::NoSuchSegment(child))?;
        let j = self
            .segments
            .index_of(parent)
            .ok_or(SegmentError::NoSuchSegment(parent))?;
        let (c, p) = self.segments.pair_at_mut(i, j);
        if c.kind != SegmentKind::Working || p.kind != SegmentKind::Working {
            return Err(SegmentError::WrongKind(child).into());
        }
        if c.size_pages != p.size_pages || c.pages.allocated_bytes() != 0 {
            return Err(SegmentError::BadSize.into());
        }
        c.pages
            .fill_from(&p.pages, |e| -> Result<PageEntry, E> {
                let new = e.inherited();
                match e.frame() {
                    None => Ok(new),
                    Some(f) => {
                        let (g, cow) = frame(f)?;
                        Ok(if g == f { new } else { new.with_frame(g) }.with_cow(cow))
                    }
                }
            })
            .map_err(|e| e.unwrap_or_else(|| SegmentError::NoMemory.into()))?;
        Ok(())
    }

    /// The protection in force for `page` of `sid`: a working segment's own,
    /// or a view's [`ViewProt`] applied to its target page's.
    pub fn effective_prot(&self, sid: Sid, page: u32) -> Result<PageProt, SegmentError> {
        let s = self.get(sid)?;
        s.check(page)?;
        match &s.kind {
            SegmentKind::Working => s.page_prot(page),
            SegmentKind::View { target, prot, .. } => {
                Ok(prot.apply(self.get(*target)?.page_prot(page)?))
            }
        }
    }

    /// Counts one more mapping of `sid`.
    pub fn attach(&mut self, sid: Sid) -> Result<u32, SegmentError> {
        let s = self.get_mut(sid)?;
        s.attach_count += 1;
        Ok(s.attach_count)
    }

    /// Counts one mapping fewer; destroys the segment if it was deleted and
    /// nothing keeps it any more. A view is destroyed by its single detach
    /// (and detaches from its target in turn, which may destroy that too).
    pub fn detach(&mut self, sid: Sid) -> Result<Detached, SegmentError> {
        let s = self.get_mut(sid)?;
        let target = match s.kind {
            SegmentKind::View { target, .. } => target,
            SegmentKind::Working => {
                if s.attach_count == 0 {
                    return Err(SegmentError::NotAttached(sid));
                }
                s.attach_count -= 1;
                return Ok(Detached {
                    view: None,
                    segment: self.destroy_if_done(sid),
                });
            }
        };
        let view = self.segments.remove(sid).map(|mut v| v.drain());
        // A view's target is a working segment (`create_view` sees to it)
        // that the view counted as one attachment.
        let segment = match self.segments.get_mut(target) {
            Some(t) if t.attach_count > 0 => {
                t.attach_count -= 1;
                t.view_count -= 1;
                self.destroy_if_done(target)
            }
            _ => None,
        };
        Ok(Detached { view, segment })
    }

    /// Takes an `as_geth` hold: the segment cannot be destroyed until it is put.
    pub fn hold(&mut self, sid: Sid) -> Result<u32, SegmentError> {
        let s = self.get_mut(sid)?;
        if s.kind != SegmentKind::Working {
            return Err(SegmentError::WrongKind(sid));
        }
        s.hold_count += 1;
        Ok(s.hold_count)
    }

    /// Puts an `as_geth` hold. A put without a hold is refused
    /// ([`SegmentError::NotHeld`]), never counted below zero. The last put
    /// of a deleted, unattached segment destroys it.
    pub fn put(&mut self, sid: Sid) -> Result<Disposal, SegmentError> {
        let s = self.get_mut(sid)?;
        if s.hold_count == 0 {
            return Err(SegmentError::NotHeld(sid));
        }
        s.hold_count -= 1;
        Ok(match self.destroy_if_done(sid) {
            Some(r) => Disposal::Destroyed(r),
            None => Disposal::Kept,
        })
    }

    /// `vms_delete`: destroys an unheld, unattached working segment at once;
    /// a held one is marked and destroyed at its last put (it stays usable
    /// meanwhile). An attached segment that is not held is refused
    /// ([`SegmentError::Attached`]): its mappings must go first.
    pub fn delete(&mut self, sid: Sid) -> Result<Disposal, SegmentError> {
        let s = self.get(sid)?;
        if s.kind != SegmentKind::Working {
            return Err(SegmentError::WrongKind(sid));
        }
        if s.delete_pending {
            return Err(SegmentError::DeletePending(sid));
        }
        if s.hold_count == 0 && s.attach_count > 0 {
            return Err(SegmentError::Attached(sid));
        }
        self.get_mut(sid)?.delete_pending = true;
        Ok(match self.destroy_if_done(sid) {
            Some(r) => Disposal::Destroyed(r),
            None => Disposal::Kept,
        })
    }

    /// Marks a working segment as orphaned whatever its attachments (its
    /// owner went away): it is destroyed now if nothing holds or attaches
    /// it, else at the last put/detach. Marking twice is harmless.
    pub fn orphan(&mut self, sid: Sid) -> Result<Disposal, SegmentError> {
        let s = self.get_mut(sid)?;
        if s.kind != SegmentKind::Working {
            return Err(SegmentError::WrongKind(sid));
        }
        s.orphaned = true;
        Ok(match self.destroy_if_done(sid) {
            Some(r) => Disposal::Destroyed(r),
            None => Disposal::Kept,
        })
    }

    fn destroy_if_done(&mut self, sid: Sid) -> Option<Released> {
        let s = self.segments.get(sid)?;
        if (s.delete_pending || s.orphaned) && s.hold_count == 0 && s.attach_count == 0 {
            let mut s = self.segments.remove(sid)?;
            Some(s.drain())
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(n: u64) -> Sid {
        Sid::new(n)
    }
    fn frame(n: u64) -> PhysAddr {
        PhysAddr::new(n << 12)
    }
    fn hslot(bits: u8) -> HptSlot {
        HptSlot::from_bits(bits).unwrap()
    }

    #[test]
    fn constants_match_aix() {
        assert_eq!(PAGES_PER_SEGMENT, 65536);
        assert_eq!(1u64 << SEGSHIFT, 0x1000_0000);
        assert_eq!(page_of_offset(0x0FFF_FFFF), 65535);
        // Upper bits of an offset are ignored, as the AIX services do.
        assert_eq!(page_of_offset(0xF000_1000), 1);
    }

    #[test]
    fn read_only_keeps_loads_and_fetches_and_takes_stores() {
        for bits in 0..8 {
            for no_exec in [false, true] {
                let p = PageProt {
                    pp: Pp::new(bits),
                    no_exec,
                };
                let ro = p.read_only();
                assert_eq!(ro.no_exec, no_exec);
                assert_eq!(ro.read_only(), ro);
                for key in [false, true] {
                    let (a, r) = (p.pp.access(key), ro.pp.access(key));
                    assert_eq!((r.read, r.execute), (a.read, a.execute), "PP {bits:03b}");
                    assert!(!r.write, "PP {bits:03b} key {key}");
                }
            }
        }
        assert_eq!(PageProt::KERNEL_RW.read_only().pp, Pp::RO_NONE);
        assert_eq!(PageProt::USER_RW.read_only().pp, Pp::RO_RO);
    }

    #[test]
    fn pages_start_untouched_and_become_resident_once() {
        let mut t = SegmentTable::new();
        t.create_working(sid(5), 4, PageProt::USER_RW).unwrap();
        let s = t.get_mut(sid(5)).unwrap();
        assert_eq!(s.page_state(3), Ok(PageState::Untouched));
        s.make_resident(3, frame(7)).unwrap();
        assert_eq!(
            s.page_state(3),
            Ok(PageState::Resident(Resident {
                frame: frame(7),
                referenced: false,
                changed: false
            }))
        );
        assert!(s.make_resident(3, frame(8)).is_err());
        assert_eq!(
            s.page_state(4),
            Err(SegmentError::OutOfRange {
                sid: sid(5),
                page: 4
            })
        );
        assert!(s.make_resident(4, frame(8)).is_err());
        assert_eq!(s.resident_pages().count(), 1);
    }

    #[test]
    fn bad_sizes_are_refused() {
        let mut t = SegmentTable::new();
        assert_eq!(
            t.create_working(sid(1), 0, PageProt::USER_RW),
            Err(SegmentError::BadSize)
        );
        assert_eq!(
            t.create_working(sid(1), PAGES_PER_SEGMENT + 1, PageProt::USER_RW),
            Err(SegmentError::BadSize)
        );
        t.create_working(sid(1), PAGES_PER_SEGMENT, PageProt::USER_RW)
            .unwrap();
        assert_eq!(
            t.create_working(sid(1), 1, PageProt::USER_RW),
            Err(SegmentError::SidInUse(sid(1)))
        );
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn slots_fold_rc_and_ignore_stale_evictions() {
        let mut t = SegmentTable::new();
        t.create_working(sid(2), 8, PageProt::USER_RW).unwrap();
        let s = t.get_mut(sid(2)).unwrap();
        s.make_resident(1, frame(1)).unwrap();
        s.set_slot(1, hslot(12)).unwrap();
        // An older entry for the page was evicted: the record stays.
        assert!(!s.clear_slot_if(1, hslot(11)));
        assert_eq!(s.slot(1), Some(hslot(12)));
        assert!(s.clear_slot_if(1, hslot(12)));
        assert_eq!(s.slot(1), None);
        s.fold_rc(1, true, false);
        s.fold_rc(1, false, true);
        match s.page_state(1).unwrap() {
            PageState::Resident(r) => assert!(r.referenced && r.changed),
            PageState::Untouched => panic!("page lost"),
        }
    }

    #[test]
    fn set_prot_reports_stale_slots_and_is_all_or_nothing() {
        let mut t = SegmentTable::new();
        t.create_working(sid(3), 4, PageProt::KERNEL_RW).unwrap();
        let s = t.get_mut(sid(3)).unwrap();
        s.make_resident(0, frame(1)).unwrap();
        s.set_slot(0, hslot(8)).unwrap();
        let ro = PageProt {
            pp: Pp::RW_RO,
            no_exec: true,
        };
        assert_eq!(
            s.set_prot(2..5, ro),
            Err(SegmentError::OutOfRange {
                sid: sid(3),
                page: 4
            })
        );
        assert_eq!(s.page_prot(2), Ok(PageProt::KERNEL_RW));
        assert_eq!(s.set_prot(0..2, ro), Ok(alloc::vec![(0, hslot(8))]));
        assert_eq!(s.slot(0), None);
        assert_eq!(s.page_prot(1), Ok(ro));
        assert_eq!(s.page_prot(2), Ok(PageProt::KERNEL_RW));
        assert_eq!(s.prot_overrides().count(), 2);
        // Setting back to the default drops the untouched page's record.
        s.set_prot(1..2, PageProt::KERNEL_RW).unwrap();
        assert_eq!(s.prot_overrides().count(), 1);
        assert_eq!(s.set_prot(1..1, ro), Err(SegmentError::BadSize));
    }

    #[test]
    fn holds_defer_delete_until_the_last_put() {
        let mut t = SegmentTable::new();
        t.create_working(sid(4), 2, PageProt::USER_RW).unwrap();
        t.get_mut(sid(4))
            .unwrap()
            .make_resident(0, frame(3))
            .unwrap();
        assert_eq!(t.put(sid(4)), Err(SegmentError::NotHeld(sid(4))));
        assert_eq!(t.hold(sid(4)), Ok(1));
        assert_eq!(t.hold(sid(4)), Ok(2));
        assert_eq!(t.delete(sid(4)), Ok(Disposal::Kept));
        assert!(t.get(sid(4)).unwrap().delete_pending());
        assert_eq!(t.delete(sid(4)), Err(SegmentError::DeletePending(sid(4))));
        // Still usable while held.
        assert!(t.get(sid(4)).unwrap().page_state(0).is_ok());
        assert_eq!(t.put(sid(4)), Ok(Disposal::Kept));
        assert_eq!(
            t.put(sid(4)),
            Ok(Disposal::Destroyed(Released {
                sid: sid(4),
                target: None,
                frames: alloc::vec![frame(3)],
                slots: alloc::vec![],
            }))
        );
        assert!(t.is_empty());
        assert_eq!(t.put(sid(4)), Err(SegmentError::NoSuchSegment(sid(4))));
    }

    #[test]
    fn attached_segments_cannot_be_deleted_unless_held() {
        let mut t = SegmentTable::new();
        t.create_working(sid(6), 2, PageProt::USER_RW).unwrap();
        t.attach(sid(6)).unwrap();
        assert_eq!(t.delete(sid(6)), Err(SegmentError::Attached(sid(6))));
        assert!(!t.get(sid(6)).unwrap().delete_pending());
        t.hold(sid(6)).unwrap();
        assert_eq!(t.delete(sid(6)), Ok(Disposal::Kept));
        assert_eq!(t.put(sid(6)), Ok(Disposal::Kept)); // still attached
        let r = t.detach(sid(6)).unwrap();
        assert_eq!(r.len(), 1);
        assert!(t.is_empty());
        t.create_working(sid(6), 2, PageProt::USER_RW).unwrap();
        assert_eq!(t.detach(sid(6)), Err(SegmentError::NotAttached(sid(6))));
        // An orphaned segment goes with its last attachment.
        t.attach(sid(6)).unwrap();
        assert_eq!(t.orphan(sid(6)), Ok(Disposal::Kept));
        assert_eq!(t.orphan(sid(6)), Ok(Disposal::Kept));
        let s = t.get(sid(6)).unwrap();
        assert!(
            s.orphaned() && !s.delete_pending(),
            "orphaned, not vms_deleted"
        );
        assert_eq!(t.detach(sid(6)).unwrap().len(), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn views_window_and_protect_their_target() {
        let mut t = SegmentTable::new();
        t.create_working(sid(10), 16, PageProt::KERNEL_RW).unwrap();
        let ro = PageProt {
            pp: Pp::RW_RO,
            no_exec: true,
        };
        assert_eq!(
            t.create_view(sid(11), sid(10), 4..17, ViewProt::Fixed(ro)),
            Err(SegmentError::BadSize)
        );
        assert_eq!(
            t.create_view(sid(11), sid(99), 4..6, ViewProt::Fixed(ro)),
            Err(SegmentError::NoSuchSegment(sid(99)))
        );
        t.create_view(sid(11), sid(10), 4..6, ViewProt::Fixed(ro))
            .unwrap();
        t.create_view(sid(12), sid(10), 0..16, ViewProt::Segment)
            .unwrap();
        assert_eq!(t.get(sid(10)).unwrap().attach_count(), 2);
        assert_eq!(t.get(sid(10)).unwrap().view_count(), 2);
        let mut views: Vec<Sid> = t.views_of(sid(10)).collect();
        views.sort_unstable_by_key(|s| s.as_u64());
        assert_eq!(views, [sid(11), sid(12)]);
        assert_eq!(t.views_of(sid(11)).count(), 0);
        assert_eq!(
            t.create_view(sid(13), sid(11), 0..1, ViewProt::Segment),
            Err(SegmentError::WrongKind(sid(11)))
        );
        assert!(!t.get(sid(11)).unwrap().in_range(3));
        assert!(t.get(sid(11)).unwrap().in_range(5));
        assert!(!t.get(sid(11)).unwrap().in_range(6));
        assert_eq!(t.effective_prot(sid(11), 4), Ok(ro));
        assert!(t.effective_prot(sid(11), 6).is_err());
        assert_eq!(t.effective_prot(sid(12), 4), Ok(PageProt::KERNEL_RW));
        t.create_view(sid(14), sid(10), 0..2, ViewProt::SupervisorOnly)
            .unwrap();
        t.get_mut(sid(10))
            .unwrap()
            .set_prot(
                1..2,
                PageProt {
                    pp: Pp::RO_RO,
                    no_exec: true,
                },
            )
            .unwrap();
        t.get_mut(sid(10))
            .unwrap()
            .set_prot(
                0..1,
                PageProt {
                    pp: Pp::RW_RO,
                    no_exec: false,
                },
            )
            .unwrap();
        assert_eq!(
            t.effective_prot(sid(14), 0),
            Ok(PageProt {
                pp: Pp::RW_NONE,
                no_exec: false
            })
        );
        assert_eq!(
            t.effective_prot(sid(14), 1),
            Ok(PageProt {
                pp: Pp::RO_NONE,
                no_exec: true
            })
        );
        assert_eq!(t.detach(sid(14)).unwrap().len(), 1);
        assert_eq!(t.get(sid(10)).unwrap().view_count(), 2);
        assert_eq!(t.hold(sid(11)), Err(SegmentError::WrongKind(sid(11))));
        // A held, deleted target survives its views and dies with the last one.
        t.hold(sid(10)).unwrap();
        t.delete(sid(10)).unwrap();
        t.put(sid(10)).unwrap();
        assert_eq!(t.detach(sid(11)).unwrap().len(), 1);
        assert_eq!(t.len(), 2);
        let gone = t.detach(sid(12)).unwrap();
        assert_eq!(gone.len(), 2);
        assert!(t.is_empty());
    }
}
