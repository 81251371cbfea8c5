//! The page records of one segment: one packed doubleword per page
//! ([`PageEntry`]) in an array indexed by page number ([`PageTable`]).
//!
//! The fault path reads and writes one entry per fault, found by two
//! array indexings at most; there is no search and no allocation unless
//! the page is the first of its leaf to be written.

use alloc::boxed::Box;

use arch_ppc64::addr::PhysAddr;
use arch_ppc64::structures::hpte::Pp;

use super::{PageProt, PageState, Resident};
use crate::hpt::HptSlot;

/// Pages per leaf of a segment larger than one leaf (4 KiB of entries,
/// 2 MB of address space); a segment of at most this many pages has a
/// single array of exactly its size.
pub const LEAF_PAGES: u32 = 512;

/// One page of a segment packed in a doubleword; all zero is an untouched
/// page with the segment's default protection and no HPTE.
///
/// | bits | field |
/// |---|---|
/// | 0 | resident (a frame is recorded) |
/// | 1, 2 | referenced, changed (HPTE R and C folded in so far) |
/// | 3 | protection of its own (else the segment's default) |
/// | 4..=6 | that protection's PP (`PP0 PP1 PP2`) |
/// | 7 | that protection's no-execute (HPTE N) |
/// | 8 | an HPTE slot is recorded |
/// | 9..=12 | the slot ([`HptSlot::bits`]: secondary, index in the group) |
/// | 13 | copy-on-write: the frame may be shared with other pages, so it is mapped read-only until a store copies it (or finds it is the last sharer) |
/// | 14, 15 | free |
/// | 16..=63 | frame number (real address >> 12; real addresses have 60 bits) |
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PageEntry(u64);

const RESIDENT: u64 = 1 << 0;
const REFERENCED: u64 = 1 << 1;
const CHANGED: u64 = 1 << 2;
const PROT_SET: u64 = 1 << 3;
const PP_SHIFT: u32 = 4;
const PP_MASK: u64 = 7 << PP_SHIFT;
const NO_EXEC: u64 = 1 << 7;
const SLOT_SET: u64 = 1 << 8;
const SLOT_SHIFT: u32 = 9;
const SLOT_MASK: u64 = 0xf << SLOT_SHIFT;
const COW: u64 = 1 << 13;
const FRAME_SHIFT: u32 = 16;
const PAGE_SHIFT: u32 = 12;

// The frame number of any real address fits above the flag bits.
const _: () = assert!(PhysAddr::BITS - PAGE_SHIFT + FRAME_SHIFT <= 64);

impl PageEntry {
    /// Untouched, default protection, no HPTE.
    pub const EMPTY: PageEntry = PageEntry(0);

    /// Bits no field uses yet (14 and 15).
    pub const FREE_BITS: u64 = 3 << 14;

    /// Whether every field is at its default.
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The frame, if the page is resident.
    #[inline(always)]
    pub const fn frame(self) -> Option<PhysAddr> {
        if self.0 & RESIDENT != 0 {
            Some(PhysAddr::new((self.0 >> FRAME_SHIFT) << PAGE_SHIFT))
        } else {
            None
        }
    }

    /// Resident or untouched, with the R and C folded in so far.
    #[inline]
    pub const fn state(self) -> PageState {
        match self.frame() {
            Some(frame) => PageState::Resident(Resident {
                frame,
                referenced: self.0 & REFERENCED != 0,
                changed: self.0 & CHANGED != 0,
            }),
            None => PageState::Untouched,
        }
    }

    /// Resident in `frame` (a 4 KiB-aligned address) of its own, not yet
    /// referenced or changed (and so not copy-on-write).
    #[inline(always)]
    pub const fn with_frame(self, frame: PhysAddr) -> PageEntry {
        let keep = self.0 & !(RESIDENT | REFERENCED | CHANGED | COW) & ((1 << FRAME_SHIFT) - 1);
        PageEntry(keep | RESIDENT | ((frame.as_u64() >> PAGE_SHIFT) << FRAME_SHIFT))
    }

    /// R and C or-ed in (no effect on an untouched page: there is nothing
    /// to have referenced).
    #[inline(always)]
    pub const fn with_rc(self, referenced: bool, changed: bool) -> PageEntry {
        if self.0 & RESIDENT == 0 {
            return self;
        }
        PageEntry(
            self.0 | if referenced { REFERENCED } else { 0 } | if changed { CHANGED } else { 0 },
        )
    }

    /// The page's own protection, if it has one.
    #[inline(always)]
    pub const fn prot_override(self) -> Option<PageProt> {
        if self.0 & PROT_SET == 0 {
            return None;
        }
        Some(PageProt {
            pp: Pp::new(((self.0 & PP_MASK) >> PP_SHIFT) as u8),
            no_exec: self.0 & NO_EXEC != 0,
        })
    }

    /// The protection in force: the page's own or `default`.
    #[inline(always)]
    pub const fn prot(self, default: PageProt) -> PageProt {
        match self.prot_override() {
            Some(p) => p,
            None => default,
        }
    }

    /// With protection `prot` of its own (`None`: the segment's default).
    #[inline]
    pub const fn with_prot(self, prot: Option<PageProt>) -> PageEntry {
        let base = self.0 & !(PROT_SET | PP_MASK | NO_EXEC);
        match prot {
            None => PageEntry(base),
            Some(p) => PageEntry(
                base | PROT_SET
                    | ((p.pp.bits() as u64) << PP_SHIFT)
                    | if p.no_exec { NO_EXEC } else { 0 },
            ),
        }
    }

    /// What a fork's child records for this page: its own protection and
    /// frame, nothing the parent's mapping of it left behind (R/C, HPTE
    /// slot) and no copy-on-write mark (the caller sets that).
    #[inline(always)]
    pub const fn inherited(self) -> PageEntry {
        let keep = RESIDENT | PROT_SET | PP_MASK | NO_EXEC;
        PageEntry(self.0 & (keep | !((1 << FRAME_SHIFT) - 1)))
    }

    /// Whether the page is copy-on-write: its frame may be shared with
    /// other pages (a fork's parent and child), so every translation of
    /// it is read-only and the first store copies it, or takes it over
    /// if no other page names it any more.
    #[inline(always)]
    pub const fn is_cow(self) -> bool {
        self.0 & COW != 0
    }

    /// With the copy-on-write mark set or cleared (no effect on an
    /// untouched page: there is no frame to share).
    #[inline(always)]
    pub const fn with_cow(self, cow: bool) -> PageEntry {
        if self.0 & RESIDENT == 0 {
            return self;
        }
        if cow {
            PageEntry(self.0 | COW)
        } else {
            PageEntry(self.0 & !COW)
        }
    }

    /// The recorded HPTE slot.
    #[inline(always)]
    pub const fn slot(self) -> Option<HptSlot> {
        if self.0 & SLOT_SET == 0 {
            return None;
        }
        HptSlot::from_bits(((self.0 & SLOT_MASK) >> SLOT_SHIFT) as u8)
    }

    /// With HPTE slot `slot` recorded (`None`: none).
    #[inline(always)]
    pub const fn with_slot(self, slot: Option<HptSlot>) -> PageEntry {
        let base = self.0 & !(SLOT_SET | SLOT_MASK);
        match slot {
            None => PageEntry(base),
            Some(s) => PageEntry(base | SLOT_SET | ((s.bits() as u64) << SLOT_SHIFT)),
        }
    }
}

impl core::fmt::Debug for PageEntry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PageEntry")
            .field("state", &self.state())
            .field("prot", &self.prot_override())
            .field("cow", &self.is_cow())
            .field("slot", &self.slot())
            .finish()
    }
}

// A zeroed allocation is a table of empty entries.
const _: () = assert!(PageEntry::EMPTY.0 == 0);

/// The fewest entries a small segment's array is given.
const MIN_FLAT: u32 = 8;

/// Words of marks per array: one bit per entry of up to [`LEAF_PAGES`].
const MARK_WORDS: usize = (LEAF_PAGES / 64) as usize;

/// One bit per entry of an array, set once the entry may be non-empty
/// (every mutable access sets it; entries emptied again keep it), so a
/// walk over the records visits set bits, not the whole array: fork walks
/// a 256-page data segment with a dozen records in a few dozen
/// instructions instead of a few per page.
type Marks = [u64; MARK_WORDS];

/// Marks entry `i` (below [`LEAF_PAGES`]; the word index is masked
/// rather than checked, which the fault path notices).
#[inline(always)]
fn mark(marks: &mut Marks, i: usize) {
    marks[(i / 64) % MARK_WORDS] |= 1 << (i % 64);
}

/// The storage of [`LEAF_PAGES`] pages of a large segment.
#[derive(Clone, Debug)]
struct Leaf {
    marks: Marks,
    entries: [PageEntry; LEAF_PAGES as usize],
}

/// Storage for the entries.
#[derive(Clone, Debug)]
enum Repr {
    /// Nothing written yet: every page reads as [`PageEntry::EMPTY`].
    Empty,
    /// A segment of at most [`LEAF_PAGES`] pages: one array, as long as
    /// the highest page written so far needs (rounded up to a power of
    /// two, at most the segment's size), grown when a page above it is
    /// written: a 256-page data segment whose process touched a dozen
    /// low pages keeps a few dozen entries, which fork copies cheaply.
    Flat(Marks, Box<[PageEntry]>),
    /// A larger segment: a top level of one pointer per [`LEAF_PAGES`]
    /// pages; a leaf exists once one of its pages was written.
    Radix(Box<[Option<Box<Leaf>>]>),
}

/// The allocator could not provide a leaf or a top level; nothing was
/// changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory;

/// A segment's entries, indexed by page number (`0..size`).
#[derive(Clone, Debug)]
pub struct PageTable {
    size: u32,
    repr: Repr,
}

/// Types whose all-zero bytes are a valid value: empty page entries and
/// missing leaves.
///
/// # Safety
///
/// All-zero bytes must be a valid value of the type.
unsafe trait Zeroed: Sized {}

// SAFETY: a `PageEntry` is a `u64`; zero is `PageEntry::EMPTY`.
unsafe impl Zeroed for PageEntry {}
// SAFETY: `Option<Box<_>>` is guaranteed to represent `None` as null.
unsafe impl Zeroed for Option<Box<Leaf>> {}

/// `n` (at least one) zeroed values in one zeroed allocation: a page
/// table's arrays are made at first touches and by fork, so they skip a
/// store loop.
fn zeroed<T: Zeroed>(n: usize) -> Result<Box<[T]>, OutOfMemory> {
    let layout = core::alloc::Layout::array::<T>(n).map_err(|_| OutOfMemory)?;
    assert!(layout.size() > 0, "a non-empty array");
    // SAFETY: the layout has a non-zero size; all-zero bytes are valid `T`s
    // (`Zeroed`), and the block comes from the global allocator with the
    // layout of `[T; n]`, which is what `Box<[T]>` frees it with.
    unsafe {
        let p = alloc::alloc::alloc_zeroed(layout).cast::<T>();
        if p.is_null() {
            return Err(OutOfMemory);
        }
        Ok(Box::from_raw(core::ptr::slice_from_raw_parts_mut(p, n)))
    }
}

/// A leaf of empty entries.
#[cold]
fn new_leaf() -> Result<Box<Leaf>, OutOfMemory> {
    let layout = core::alloc::Layout::new::<Leaf>();
    // SAFETY: `Leaf` has a non-zero size; all-zero bytes are a valid
    // `Leaf` (no marks, every entry `PageEntry::EMPTY`, which is 0), and
    // the block comes from the global allocator with `Leaf`'s layout, as
    // `Box` requires.
    unsafe {
        let p = alloc::alloc::alloc_zeroed(layout).cast::<Leaf>();
        if p.is_null() {
            return Err(OutOfMemory);
        }
        Ok(Box::from_raw(p))
    }
}

impl PageTable {
    /// The table of a segment of `size` pages, all empty; allocates nothing.
    pub const fn new(size: u32) -> PageTable {
        PageTable {
            size,
            repr: Repr::Empty,
        }
    }

    /// Number of pages.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The entry of `page` ([`PageEntry::EMPTY`] if never written or
    /// beyond the size).
    #[inline(always)]
    pub fn get(&self, page: u32) -> PageEntry {
        match &self.repr {
            Repr::Empty => PageEntry::EMPTY,
            Repr::Flat(_, a) => a.get(page as usize).copied().unwrap_or_default(),
            Repr::Radix(top) => match top.get((page / LEAF_PAGES) as usize) {
                Some(Some(leaf)) => leaf.entries[(page % LEAF_PAGES) as usize],
                _ => PageEntry::EMPTY,
            },
        }
    }

    /// The entry of `page` if its storage exists.
    #[inline(always)]
    pub fn get_mut(&mut self, page: u32) -> Option<&mut PageEntry> {
        match &mut self.repr {
            Repr::Empty => None,
            Repr::Flat(marks, a) => {
                let e = a.get_mut(page as usize)?;
                mark(marks, page as usize);
                Some(e)
            }
            Repr::Radix(top) => match top.get_mut((page / LEAF_PAGES) as usize) {
                Some(Some(leaf)) => {
                    let i = (page % LEAF_PAGES) as usize;
                    mark(&mut leaf.marks, i);
                    Some(&mut leaf.entries[i])
                }
                _ => None,
            },
        }
    }

    /// The entry of `page`, allocating its storage first if need be.
    /// `page` must be below the size.
    #[inline(always)]
    pub fn entry(&mut self, page: u32) -> Result<&mut PageEntry, OutOfMemory> {
        assert!(page < self.size, "page {page} beyond {}", self.size);
        if matches!(self.repr, Repr::Empty) {
            self.allocate_top(page + 1)?;
        }
        if let Repr::Flat(_, a) = &self.repr {
            if page as usize >= a.len() {
                self.grow_flat(page + 1)?;
            }
        }
        match &mut self.repr {
            Repr::Empty => unreachable!("allocated above"),
            Repr::Flat(marks, a) => {
                mark(marks, page as usize);
                Ok(&mut a[page as usize])
            }
            Repr::Radix(top) => {
                let slot = &mut top[(page / LEAF_PAGES) as usize];
                let leaf = match slot {
                    Some(leaf) => leaf,
                    None => slot.insert(new_leaf()?),
                };
                let i = (page % LEAF_PAGES) as usize;
                mark(&mut leaf.marks, i);
                Ok(&mut leaf.entries[i])
            }
        }
    }

    /// The length a small segment's array gets so that pages `0..pages`
    /// fit: a power of two of at least [`MIN_FLAT`] entries, at most the
    /// segment's size.
    fn flat_len(&self, pages: u32) -> usize {
        pages.max(MIN_FLAT).next_power_of_two().min(self.size) as usize
    }

    /// The first storage of a table: the array of a small segment, long
    /// enough for pages `0..pages`, or the top level of a large one.
    #[cold]
    fn allocate_top(&mut self, pages: u32) -> Result<(), OutOfMemory> {
        self.repr = if self.size <= LEAF_PAGES {
            Repr::Flat([0; MARK_WORDS], zeroed(self.flat_len(pages))?)
        } else {
            Repr::Radix(zeroed(self.size.div_ceil(LEAF_PAGES) as usize)?)
        };
        Ok(())
    }

    /// Lengthens a small segment's array so that pages `0..pages` fit (at
    /// least doubling it, so a segment touched upwards page by page grows
    /// a logarithmic number of times).
    #[cold]
    fn grow_flat(&mut self, pages: u32) -> Result<(), OutOfMemory> {
        let Repr::Flat(_, a) = &self.repr else {
            return Ok(());
        };
        let len = self.flat_len(pages.max(2 * a.len() as u32));
        let mut longer = zeroed(len)?;
        longer[..a.len()].copy_from_slice(a);
        if let Repr::Flat(_, a) = &mut self.repr {
            *a = longer;
        }
        Ok(())
    }

    /// Fills this empty table with `f` of each record of `src` (a table
    /// of the same size), in page order, straight into arrays shaped like
    /// `src`'s: what fork does for a copied segment, at a few instructions
    /// a record beyond what `f` does. Stops at the first `Err(e)` of `f`
    /// (`Some(e)`) or when storage cannot be had (`None`); the records
    /// filled until then stay.
    #[inline(always)]
    pub fn fill_from<E>(
        &mut self,
        src: &PageTable,
        mut f: impl FnMut(PageEntry) -> Result<PageEntry, E>,
    ) -> Result<(), Option<E>> {
        assert_eq!(self.size, src.size, "tables of one size");
        assert!(matches!(self.repr, Repr::Empty), "an empty table");
        let mut fill = |marks: &Marks, from: &[PageEntry], to: &mut [PageEntry]| {
            for (w, &word) in marks.iter().enumerate() {
                let mut bits = word;
                while bits != 0 {
                    let i = w * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    let e = from[i];
                    if !e.is_empty() {
                        to[i] = f(e).map_err(Some)?;
                    }
                }
            }
            Ok(())
        };
        match &src.repr {
            Repr::Empty => Ok(()),
            Repr::Flat(marks, from) => {
                self.repr = Repr::Flat(*marks, zeroed(from.len()).map_err(|_| None)?);
                let Repr::Flat(_, to) = &mut self.repr else {
                    unreachable!("made above");
                };
                fill(marks, from, to)
            }
            Repr::Radix(top) => {
                self.repr = Repr::Radix(zeroed(top.len()).map_err(|_| None)?);
                let Repr::Radix(to_top) = &mut self.repr else {
                    unreachable!("made above");
                };
                for (from, to) in top.iter().zip(to_top.iter_mut()) {
                    let Some(from) = from else { continue };
                    let leaf = to.insert(new_leaf().map_err(|_| None)?);
                    leaf.marks = from.marks;
                    fill(&from.marks, &from.entries, &mut leaf.entries)?;
                }
                Ok(())
            }
        }
    }

    /// Non-empty entries, in page order.
    pub fn iter(&self) -> Entries<'_> {
        let top: &[Option<Box<Leaf>>] = match &self.repr {
            Repr::Radix(t) => t,
            _ => &[],
        };
        let mut it = Entries {
            entries: &[],
            marks: &[],
            word: 0,
            bits: 0,
            base: 0,
            leaves: top.iter().enumerate(),
        };
        if let Repr::Flat(m, a) = &self.repr {
            it.start(m, a, 0);
        }
        it
    }

    /// Calls `f` with every non-empty entry, mutably, in page order.
    #[inline(always)]
    pub fn for_each_mut(&mut self, mut f: impl FnMut(u32, &mut PageEntry)) {
        let mut scan = |base: u32, marks: &mut Marks, entries: &mut [PageEntry]| {
            for (w, word) in marks.iter_mut().enumerate() {
                let mut bits = *word;
                while bits != 0 {
                    let i = w * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    let e = &mut entries[i];
                    if e.is_empty() {
                        // Emptied since it was marked.
                        *word &= !(1 << (i % 64));
                    } else {
                        f(base + i as u32, e);
                    }
                }
            }
        };
        match &mut self.repr {
            Repr::Empty => {}
            Repr::Flat(m, a) => scan(0, m, a),
            Repr::Radix(top) => {
                for (l, leaf) in top.iter_mut().enumerate() {
                    if let Some(leaf) = leaf {
                        scan(l as u32 * LEAF_PAGES, &mut leaf.marks, &mut leaf.entries);
                    }
                }
            }
        }
    }

    /// Empties the table, returning what it held; frees its storage.
    pub fn take(&mut self) -> PageTable {
        core::mem::replace(self, PageTable::new(self.size))
    }

    /// Bytes of entry storage allocated (leaves and top level).
    pub fn allocated_bytes(&self) -> usize {
        let entry = core::mem::size_of::<PageEntry>();
        match &self.repr {
            Repr::Empty => 0,
            Repr::Flat(_, a) => a.len() * entry,
            Repr::Radix(top) => {
                top.len() * core::mem::size_of::<Option<Box<Leaf>>>()
                    + top.iter().flatten().count() * core::mem::size_of::<Leaf>()
            }
        }
    }
}

/// The non-empty entries of a [`PageTable`], in page order, with their
/// page numbers: a walk over each array's marks, so a table with few
/// records is walked in a few instructions per record and per 64 pages.
#[derive(Clone, Debug)]
pub struct Entries<'a> {
    /// The array being walked.
    entries: &'a [PageEntry],
    /// Its marks.
    marks: &'a [u64],
    /// The mark word `bits` came from.
    word: usize,
    /// Marks of that word not visited yet.
    bits: u64,
    /// Page number of `entries[0]`.
    base: u32,
    /// The leaves not walked yet.
    leaves: core::iter::Enumerate<core::slice::Iter<'a, Option<Box<Leaf>>>>,
}

impl<'a> Entries<'a> {
    fn start(&mut self, marks: &'a Marks, entries: &'a [PageEntry], base: u32) {
        self.entries = entries;
        self.marks = marks;
        self.word = 0;
        self.bits = marks[0];
        self.base = base;
    }
}

impl Iterator for Entries<'_> {
    type Item = (u32, PageEntry);

    #[inline]
    fn next(&mut self) -> Option<(u32, PageEntry)> {
        loop {
            while self.bits == 0 {
                self.word += 1;
                match self.marks.get(self.word) {
                    Some(&w) => self.bits = w,
                    None => {
                        let (l, leaf) = self.leaves.find(|(_, leaf)| leaf.is_some())?;
                        let leaf = leaf.as_deref().expect("found a leaf");
                        self.start(&leaf.marks, &leaf.entries, l as u32 * LEAF_PAGES);
                    }
                }
            }
            let i = self.word * 64 + self.bits.trailing_zeros() as usize;
            self.bits &= self.bits - 1;
            let entry = self.entries[i];
            if !entry.is_empty() {
                return Some((self.base + i as u32, entry));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn frame(n: u64) -> PhysAddr {
        PhysAddr::new(n << 12)
    }

    #[test]
    fn entry_fields_are_independent() {
        let ro = PageProt {
            pp: Pp::RO_NONE,
            no_exec: true,
        };
        let slot = HptSlot::new(true, 5);
        let top = PhysAddr::new(PhysAddr::MAX & !0xfff);
        let e = PageEntry::EMPTY
            .with_frame(top)
            .with_prot(Some(ro))
            .with_slot(Some(slot))
            .with_rc(true, false);
        assert_eq!(e.frame(), Some(top));
        assert_eq!(e.prot(PageProt::USER_RW), ro);
        assert_eq!(e.slot(), Some(slot));
        assert_eq!(
            e.state(),
            PageState::Resident(Resident {
                frame: top,
                referenced: true,
                changed: false
            })
        );
        assert_eq!(e.0 & PageEntry::FREE_BITS, 0, "the free bits stay free");
        // Each field can be cleared without touching the others.
        let e2 = e.with_slot(None);
        assert_eq!((e2.slot(), e2.frame()), (None, Some(top)));
        assert_eq!(e2.prot_override(), Some(ro));
        let e3 = e2.with_prot(None);
        assert_eq!(e3.prot(PageProt::KERNEL_RW), PageProt::KERNEL_RW);
        assert_eq!(e3.frame(), Some(top));
        // A new frame forgets the old one's R and C, keeps prot and slot.
        let e4 = e.with_rc(true, true).with_frame(frame(3));
        assert_eq!(
            e4.state(),
            PageState::Resident(Resident {
                frame: frame(3),
                referenced: false,
                changed: false
            })
        );
        assert_eq!((e4.slot(), e4.prot_override()), (Some(slot), Some(ro)));
        // R and C need a frame.
        assert_eq!(PageEntry::EMPTY.with_rc(true, true), PageEntry::EMPTY);
        // So does the copy-on-write mark, which a new frame clears and
        // which touches no other field.
        assert_eq!(PageEntry::EMPTY.with_cow(true), PageEntry::EMPTY);
        let c = e.with_cow(true);
        assert!(c.is_cow() && !e.is_cow());
        assert_eq!(c.with_cow(false), e);
        assert_eq!(
            (c.slot(), c.prot_override(), c.state()),
            (e.slot(), e.prot_override(), e.state())
        );
        assert!(!c.with_frame(frame(4)).is_cow());
        // A fork's child keeps frame and protection, nothing else.
        let i = c.with_rc(true, true).inherited();
        assert_eq!((i.frame(), i.prot_override()), (Some(top), Some(ro)));
        assert_eq!(
            (i.slot(), i.is_cow(), i.state()),
            (None, false, PageEntry::EMPTY.with_frame(top).state())
        );
        assert_eq!(
            PageEntry::EMPTY.with_prot(Some(ro)).inherited().frame(),
            None
        );
        assert_eq!(c.0 & PageEntry::FREE_BITS, 0);
        // Every PP value round-trips, with and without N.
        for bits in 0..8 {
            for no_exec in [false, true] {
                let p = PageProt {
                    pp: Pp::new(bits),
                    no_exec,
                };
                assert_eq!(PageEntry::EMPTY.with_prot(Some(p)).prot_override(), Some(p));
            }
        }
        for bits in 0..16 {
            let s = HptSlot::from_bits(bits).unwrap();
            assert_eq!(PageEntry::EMPTY.with_slot(Some(s)).slot(), Some(s));
        }
    }

    #[test]
    fn small_tables_are_one_array_of_their_size() {
        let mut t = PageTable::new(3);
        assert_eq!(t.allocated_bytes(), 0, "nothing until written");
        assert_eq!(t.get(2), PageEntry::EMPTY);
        *t.entry(2).unwrap() = PageEntry::EMPTY.with_frame(frame(9));
        assert_eq!(t.allocated_bytes(), 3 * 8);
        assert_eq!(t.get(2).frame(), Some(frame(9)));
        assert_eq!(t.get(3), PageEntry::EMPTY, "beyond the size");
        assert!(t.get_mut(3).is_none());
        let full = PageTable::new(LEAF_PAGES);
        let mut full = full;
        full.entry(LEAF_PAGES - 1).unwrap();
        assert_eq!(full.allocated_bytes(), LEAF_PAGES as usize * 8);
    }

    #[test]
    fn radix_leaves_appear_at_their_first_write_and_keep_their_edges_apart() {
        let size = 65536;
        let mut t = PageTable::new(size);
        let leaf = core::mem::size_of::<Leaf>();
        let top = (size / LEAF_PAGES) as usize * 8;
        // The last page of leaf 0 and the first of leaf 1.
        let edges = [0, LEAF_PAGES - 1, LEAF_PAGES, 2 * LEAF_PAGES - 1, size - 1];
        for (n, &p) in edges.iter().enumerate() {
            *t.entry(p).unwrap() = PageEntry::EMPTY.with_frame(frame(u64::from(p) + 1));
            let leaves = [1, 1, 2, 2, 3][n];
            assert_eq!(t.allocated_bytes(), top + leaves * leaf, "after page {p}");
        }
        for &p in &edges {
            assert_eq!(t.get(p).frame(), Some(frame(u64::from(p) + 1)));
        }
        // Neighbours across the leaf boundary are untouched.
        for p in [1, LEAF_PAGES - 2, LEAF_PAGES + 1, size - 2] {
            assert_eq!(t.get(p), PageEntry::EMPTY, "page {p}");
        }
        // A page in a leaf never written reads empty without allocating.
        assert_eq!(t.get(10 * LEAF_PAGES), PageEntry::EMPTY);
        assert!(t.get_mut(10 * LEAF_PAGES).is_none());
        assert_eq!(t.get(size), PageEntry::EMPTY, "beyond the size");
        let pages: Vec<u32> = t.iter().map(|(p, _)| p).collect();
        assert_eq!(pages, edges, "in page order");
        let old = t.take();
        assert_eq!(t.allocated_bytes(), 0);
        assert_eq!(old.iter().count(), edges.len());
    }

    #[test]
    fn walks_visit_every_written_entry_and_skip_emptied_ones() {
        for size in [300, 4 * LEAF_PAGES] {
            let mut t = PageTable::new(size);
            let pages = [0, 63, 64, 127, 200, 299];
            for &p in &pages {
                *t.entry(p).unwrap() = PageEntry::EMPTY.with_frame(frame(u64::from(p) + 1));
            }
            // Written through get_mut (storage made by another page): seen.
            *t.get_mut(5).unwrap() = PageEntry::EMPTY.with_slot(Some(HptSlot::new(false, 1)));
            // Emptied again: skipped.
            *t.get_mut(64).unwrap() = PageEntry::EMPTY;
            let want = [0, 5, 63, 127, 200, 299];
            let seen: Vec<u32> = t.iter().map(|(p, _)| p).collect();
            assert_eq!(seen, want, "size {size}");
            let mut visited = Vec::new();
            t.for_each_mut(|p, e| {
                visited.push(p);
                if p == 200 {
                    *e = PageEntry::EMPTY;
                }
            });
            assert_eq!(visited, want);
            let seen: Vec<u32> = t.iter().map(|(p, _)| p).collect();
            assert_eq!(seen, [0, 5, 63, 127, 299]);
            // A stale mark costs nothing else: the page reads empty.
            assert_eq!(t.get(64), PageEntry::EMPTY);
        }
    }

    #[test]
    fn small_tables_grow_to_the_highest_page_written() {
        let mut t = PageTable::new(300);
        *t.entry(5).unwrap() = PageEntry::EMPTY.with_frame(frame(5));
        assert_eq!(t.allocated_bytes(), 8 * 8, "the smallest array");
        assert!(t.get_mut(8).is_none(), "no room yet");
        assert_eq!(t.get(200), PageEntry::EMPTY);
        *t.entry(9).unwrap() = PageEntry::EMPTY.with_frame(frame(9));
        assert_eq!(t.allocated_bytes(), 16 * 8, "doubled");
        *t.entry(100).unwrap() = PageEntry::EMPTY.with_frame(frame(100));
        assert_eq!(t.allocated_bytes(), 128 * 8);
        *t.entry(299).unwrap() = PageEntry::EMPTY.with_frame(frame(299));
        assert_eq!(t.allocated_bytes(), 300 * 8, "never beyond the size");
        let pages: Vec<(u32, Option<PhysAddr>)> = t.iter().map(|(p, e)| (p, e.frame())).collect();
        assert_eq!(
            pages,
            [5, 9, 100, 299].map(|p| (p, Some(frame(u64::from(p)))))
        );
    }

    #[test]
    fn fill_from_copies_records_in_the_source_shape_and_stops_at_a_refusal() {
        for size in [300, 4 * LEAF_PAGES] {
            let mut src = PageTable::new(size);
            let pages = [1, 7, 70, 299];
            for &p in &pages {
                *src.entry(p).unwrap() = PageEntry::EMPTY
                    .with_frame(frame(u64::from(p)))
                    .with_slot(Some(HptSlot::new(false, 3)));
            }
            *src.get_mut(7).unwrap() = PageEntry::EMPTY;
            let mut dst = PageTable::new(size);
            dst.fill_from(&src, |e| Ok::<_, ()>(e.with_slot(None).with_cow(true)))
                .unwrap();
            assert_eq!(dst.allocated_bytes(), src.allocated_bytes(), "size {size}");
            let got: Vec<(u32, bool, Option<HptSlot>)> =
                dst.iter().map(|(p, e)| (p, e.is_cow(), e.slot())).collect();
            assert_eq!(got, [1, 70, 299].map(|p| (p, true, None)));
            // A refusal keeps the records filled before it.
            let mut part = PageTable::new(size);
            let r = part.fill_from(&src, |e| {
                if e.frame() == Some(frame(299)) {
                    Err("no")
                } else {
                    Ok(e)
                }
            });
            assert_eq!(r, Err(Some("no")));
            let got: Vec<u32> = part.iter().map(|(p, _)| p).collect();
            assert_eq!(got, [1, 70]);
        }
    }

    #[test]
    fn a_partial_last_leaf_is_a_whole_leaf() {
        // 513 pages: two leaves, the second holding one page.
        let mut t = PageTable::new(LEAF_PAGES + 1);
        *t.entry(LEAF_PAGES).unwrap() = PageEntry::EMPTY.with_slot(Some(HptSlot::new(false, 7)));
        assert_eq!(t.get(LEAF_PAGES).slot(), Some(HptSlot::new(false, 7)));
        assert_eq!(t.iter().count(), 1);
    }

    #[test]
    #[should_panic(expected = "beyond")]
    fn writing_beyond_the_size_is_a_bug() {
        let _ = PageTable::new(LEAF_PAGES + 1).entry(LEAF_PAGES + 1);
    }
}
