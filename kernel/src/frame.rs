//! Physical (real-address) frame allocator: 4 KiB frames over the RAM the
//! device tree reports, minus firmware, vectors and the kernel image.
//!
//! One bitmap covers the span from the lowest to the highest usable frame
//! (a set bit means "not free"); the list of usable ranges says which
//! frames the allocator owns, so freeing a frame it never handed out (a
//! hole, the kernel, a double free) is a typed error that changes nothing.
//! Beside it, one 16-bit count per frame of the span says how many hold
//! it: 0 free, 1 once allocated, more while the VMM's copy-on-write
//! pages share it after fork. [`SharerCounts::share`] adds a sharer
//! without the allocator's lock (as a kernel bumps a page's reference
//! count), [`FrameAllocator::release`] takes one off and frees the frame
//! with the last; both are O(1). The logic is
//! architecture-independent and unit-tested on the host.

use core::fmt;
use core::sync::atomic::{AtomicU16, Ordering};

/// Size of a frame: the 4 KiB base page of the hashed page table.
pub const FRAME_SIZE: u64 = 4096;

/// Most usable ranges tracked.
pub const MAX_USABLE: usize = 32;

/// A 4 KiB-aligned real address of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Frame(u64);

impl Frame {
    /// The frame starting at `addr`, if `addr` is 4 KiB aligned.
    pub fn from_start_address(addr: u64) -> Result<Self, FramePoolError> {
        if !addr.is_multiple_of(FRAME_SIZE) {
            return Err(FramePoolError::Misaligned(addr));
        }
        Ok(Frame(addr))
    }

    /// The frame containing `addr`.
    pub fn containing(addr: u64) -> Self {
        Frame(addr & !(FRAME_SIZE - 1))
    }

    /// The real address of the frame's first byte.
    pub fn start_address(self) -> u64 {
        self.0
    }

    /// The frame number (address / 4 KiB).
    pub fn number(self) -> u64 {
        self.0 / FRAME_SIZE
    }
}

/// A half-open range `[start, end)` of real addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddrRange {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
}

impl AddrRange {
    /// `[start, start + size)`, saturating at the top of the address space.
    pub fn new(start: u64, size: u64) -> Self {
        Self {
            start,
            end: start.saturating_add(size),
        }
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }
}

/// Why a frame operation failed; nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramePoolError {
    /// The address is not 4 KiB aligned.
    Misaligned(u64),
    /// The frame is not in any usable range of this allocator.
    NotManaged(u64),
    /// The frame is already free.
    DoubleFree(u64),
    /// The bitmap storage given to [`FrameAllocator::new`] is too small.
    BitmapTooSmall {
        /// 64-bit words needed.
        needed: usize,
        /// Words given.
        given: usize,
    },
    /// More usable ranges than [`MAX_USABLE`].
    TooManyRanges,
    /// The frame is free (sharing or releasing a frame nobody holds).
    NotAllocated(u64),
    /// The frame's sharer count is full (or the allocator keeps none).
    TooManySharers(u64),
    /// The count storage given to [`FrameAllocator::set_share_counts`]
    /// is too small.
    CountsTooSmall {
        /// Counts needed.
        needed: usize,
        /// Counts given.
        given: usize,
    },
    /// Counts given to an allocator that already handed out frames, or
    /// counts that are not all zero.
    CountsNotFresh,
}

impl fmt::Display for FramePoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FramePoolError::Misaligned(a) => write!(f, "address {a:#x} is not 4 KiB aligned"),
            FramePoolError::NotManaged(a) => write!(f, "frame {a:#x} is not managed"),
            FramePoolError::DoubleFree(a) => write!(f, "frame {a:#x} is already free"),
            FramePoolError::BitmapTooSmall { needed, given } => {
                write!(f, "bitmap needs {needed} words, got {given}")
            }
            FramePoolError::TooManyRanges => write!(f, "more than {MAX_USABLE} usable ranges"),
            FramePoolError::NotAllocated(a) => write!(f, "frame {a:#x} is free"),
            FramePoolError::TooManySharers(a) => {
                write!(f, "frame {a:#x} has all the sharers it can count")
            }
            FramePoolError::CountsTooSmall { needed, given } => {
                write!(f, "sharer counts need {needed} entries, got {given}")
            }
            FramePoolError::CountsNotFresh => {
                write!(
                    f,
                    "sharer counts must be zero and given before any allocation"
                )
            }
        }
    }
}

/// A fixed-capacity, sorted, non-overlapping set of address ranges.
#[derive(Debug, Clone, Copy)]
pub struct RangeSet {
    ranges: [AddrRange; MAX_USABLE],
    len: usize,
}

impl Default for RangeSet {
    fn default() -> Self {
        Self::new()
    }
}

impl RangeSet {
    /// The empty set.
    pub const fn new() -> Self {
        Self {
            ranges: [AddrRange { start: 0, end: 0 }; MAX_USABLE],
            len: 0,
        }
    }

    /// The ranges, sorted by start.
    pub fn as_slice(&self) -> &[AddrRange] {
        &self.ranges[..self.len]
    }

    /// Adds `r`, merging overlapping or touching ranges.
    pub fn insert(&mut self, r: AddrRange) -> Result<(), FramePoolError> {
        if r.is_empty() {
            return Ok(());
        }
        let mut merged = r;
        let mut out = RangeSet::new();
        let mut placed = false;
        for &cur in self.as_slice() {
            if cur.end < merged.start {
                out.push(cur)?;
            } else if merged.end < cur.start {
                if !placed {
                    out.push(merged)?;
                    placed = true;
                }
                out.push(cur)?;
            } else {
                merged.start = merged.start.min(cur.start);
                merged.end = merged.end.max(cur.end);
            }
        }
        if !placed {
            out.push(merged)?;
        }
        *self = out;
        Ok(())
    }

    fn push(&mut self, r: AddrRange) -> Result<(), FramePoolError> {
        if self.len == MAX_USABLE {
            return Err(FramePoolError::TooManyRanges);
        }
        self.ranges[self.len] = r;
        self.len += 1;
        Ok(())
    }

    /// Removes `r` from every range (may split one range in two).
    pub fn remove(&mut self, r: AddrRange) -> Result<(), FramePoolError> {
        if r.is_empty() {
            return Ok(());
        }
        let mut out = RangeSet::new();
        for &cur in self.as_slice() {
            if cur.end <= r.start || r.end <= cur.start {
                out.push(cur)?;
                continue;
            }
            if cur.start < r.start {
                out.push(AddrRange {
                    start: cur.start,
                    end: r.start,
                })?;
            }
            if r.end < cur.end {
                out.push(AddrRange {
                    start: r.end,
                    end: cur.end,
                })?;
            }
        }
        *self = out;
        Ok(())
    }

    /// Keeps only the parts that are also in `other`.
    pub fn intersect(&mut self, other: &RangeSet) -> Result<(), FramePoolError> {
        let mut out = RangeSet::new();
        for a in self.as_slice() {
            for b in other.as_slice() {
                let r = AddrRange {
                    start: a.start.max(b.start),
                    end: a.end.min(b.end),
                };
                if !r.is_empty() {
                    out.insert(r)?;
                }
            }
        }
        *self = out;
        Ok(())
    }

    /// Shrinks every range to whole frames (start rounded up, end down).
    pub fn align_to_frames(&mut self) {
        let mut out = RangeSet::new();
        for r in self.as_slice() {
            let start = r.start.next_multiple_of(FRAME_SIZE);
            let end = r.end & !(FRAME_SIZE - 1);
            if start < end {
                // Cannot overflow: `out` has at most as many ranges as `self`.
                let _ = out.push(AddrRange { start, end });
            }
        }
        *self = out;
    }

    /// Total bytes.
    pub fn total(&self) -> u64 {
        self.as_slice().iter().map(|r| r.end - r.start).sum()
    }

    /// Whether `addr` lies in one of the ranges.
    pub fn contains(&self, addr: u64) -> bool {
        self.as_slice()
            .iter()
            .any(|r| r.start <= addr && addr < r.end)
    }
}

/// How many hold each frame of an allocator's span: a shared view of
/// its counts that needs no lock (see the module documentation).
#[derive(Clone, Copy, Debug)]
pub struct SharerCounts<'a> {
    first_frame: u64,
    counts: &'a [AtomicU16],
}

impl SharerCounts<'_> {
    fn count(&self, frame: Frame) -> Option<&AtomicU16> {
        let i = frame.number().checked_sub(self.first_frame)?;
        self.counts.get(usize::try_from(i).ok()?)
    }

    /// Adds a sharer to allocated frame `frame`: a load and a store.
    /// [`FramePoolError::NotAllocated`] for a free frame (or one outside the
    /// span), [`FramePoolError::TooManySharers`] when the count is full or the
    /// allocator keeps none.
    ///
    /// Not an atomic read-modify-write: sharers of one frame are added and
    /// dropped by one owner at a time (the VMM, under its lock), which is
    /// what makes a lock-free update safe at all; the counts are atomics
    /// so that the allocator, under its own lock, and that owner never
    /// race on plain memory.
    pub fn share(&self, frame: Frame) -> Result<(), FramePoolError> {
        let addr = frame.start_address();
        if self.counts.is_empty() {
            return Err(FramePoolError::TooManySharers(addr));
        }
        let c = self
            .count(frame)
            .ok_or(FramePoolError::NotAllocated(addr))?;
        match c.load(Ordering::Relaxed) {
            0 => Err(FramePoolError::NotAllocated(addr)),
            u16::MAX => Err(FramePoolError::TooManySharers(addr)),
            n => {
                c.store(n + 1, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    /// Drops one sharer of `frame` if it has more than one (a load and a
    /// store, as [`Self::share`]) and says so; `false` for a frame with
    /// one holder or none, whose release needs the allocator
    /// ([`FrameAllocator::release`]).
    pub fn unshare(&self, frame: Frame) -> bool {
        match self.count(frame) {
            Some(c) => {
                let n = c.load(Ordering::Relaxed);
                if n > 1 {
                    c.store(n - 1, Ordering::Relaxed);
                }
                n > 1
            }
            None => false,
        }
    }

    /// How many hold `frame` (0: free, or outside the span).
    pub fn sharers(&self, frame: Frame) -> u32 {
        self.count(frame)
            .map_or(0, |c| u32::from(c.load(Ordering::Relaxed)))
    }
}

/// Allocator of 4 KiB frames over a [`RangeSet`] of usable memory.
pub struct FrameAllocator<'a> {
    usable: RangeSet,
    /// Frame number of bit 0 of the bitmap.
    first_frame: u64,
    /// One bit per frame of the span; 1 = allocated or not usable.
    bitmap: &'a mut [u64],
    /// Frames in the span.
    span_frames: u64,
    /// Per frame of the span, how many hold it (0: free); empty until
    /// [`Self::set_share_counts`].
    counts: &'a [AtomicU16],
    total: u64,
    free: u64,
    /// Word index where the next search starts.
    hint: usize,
}

impl<'a> FrameAllocator<'a> {
    /// 64-bit bitmap words needed to manage `usable` (after frame alignment).
    pub fn bitmap_words(usable: &RangeSet) -> usize {
        Self::span_frames_of(usable).div_ceil(64) as usize
    }

    /// Frames from the lowest to the highest usable one of `usable`
    /// (after frame alignment).
    fn span_frames_of(usable: &RangeSet) -> u64 {
        let mut u = *usable;
        u.align_to_frames();
        match (u.as_slice().first(), u.as_slice().last()) {
            (Some(first), Some(last)) => (last.end - first.start) / FRAME_SIZE,
            _ => 0,
        }
    }

    /// Sharer counts needed for `usable` (one per frame of its span).
    pub fn share_counts(usable: &RangeSet) -> usize {
        Self::span_frames_of(usable) as usize
    }

    /// Gives the allocator room to count sharers ([`SharerCounts`]): at
    /// least [`Self::share_counts`] counts, all zero, before the first
    /// allocation (so every allocated frame's count says it is). Without
    /// them, sharing is refused with [`FramePoolError::TooManySharers`] (the
    /// VMM then copies instead of sharing).
    pub fn set_share_counts(&mut self, counts: &'a [AtomicU16]) -> Result<(), FramePoolError> {
        let needed = self.span_frames as usize;
        if counts.len() < needed {
            return Err(FramePoolError::CountsTooSmall {
                needed,
                given: counts.len(),
            });
        }
        if self.free != self.total || counts.iter().any(|c| c.load(Ordering::Relaxed) != 0) {
            return Err(FramePoolError::CountsNotFresh);
        }
        self.counts = &counts[..needed];
        Ok(())
    }

    /// The sharer counts, for use without the allocator's lock.
    pub fn sharer_counts(&self) -> SharerCounts<'a> {
        SharerCounts {
            first_frame: self.first_frame,
            counts: self.counts,
        }
    }

    /// Sets the count of span index `i` (a frame just allocated: 1, just
    /// freed: 0).
    fn set_count(&self, i: u64, n: u16) {
        if let Some(c) = self.counts.get(i as usize) {
            c.store(n, Ordering::Relaxed);
        }
    }

    /// An allocator owning the whole frames of `usable`, all free, with its
    /// bitmap in `bitmap` (at least [`Self::bitmap_words`] words).
    pub fn new(usable: &RangeSet, bitmap: &'a mut [u64]) -> Result<Self, FramePoolError> {
        let mut usable = *usable;
        usable.align_to_frames();
        let needed = Self::bitmap_words(&usable);
        if bitmap.len() < needed {
            return Err(FramePoolError::BitmapTooSmall {
                needed,
                given: bitmap.len(),
            });
        }
        let bitmap = &mut bitmap[..needed];
        bitmap.fill(u64::MAX);
        let first_frame = usable
            .as_slice()
            .first()
            .map_or(0, |r| r.start / FRAME_SIZE);
        let span_frames = usable
            .as_slice()
            .last()
            .map_or(0, |r| r.end / FRAME_SIZE - first_frame);
        let mut this = Self {
            usable,
            first_frame,
            bitmap,
            span_frames,
            counts: &[],
            total: 0,
            free: 0,
            hint: 0,
        };
        for r in usable.as_slice() {
            this.clear_bits(
                r.start / FRAME_SIZE - first_frame,
                r.end / FRAME_SIZE - first_frame,
            );
            this.total += (r.end - r.start) / FRAME_SIZE;
        }
        this.free = this.total;
        Ok(this)
    }

    /// Clears bits `lo..hi`, whole words at a time: at 16 GiB of RAM a
    /// bit at a time was most of the boot.
    fn clear_bits(&mut self, lo: u64, hi: u64) {
        let mut i = lo;
        while i < hi && !i.is_multiple_of(64) {
            self.clear_bit(i);
            i += 1;
        }
        while i + 64 <= hi {
            self.bitmap[(i / 64) as usize] = 0;
            i += 64;
        }
        while i < hi {
            self.clear_bit(i);
            i += 1;
        }
    }

    fn clear_bit(&mut self, i: u64) {
        self.bitmap[(i / 64) as usize] &= !(1u64 << (i % 64));
    }

    fn set_bit(&mut self, i: u64) {
        self.bitmap[(i / 64) as usize] |= 1u64 << (i % 64);
    }

    fn bit(&self, i: u64) -> bool {
        self.bitmap[(i / 64) as usize] & (1u64 << (i % 64)) != 0
    }

    /// Allocates one frame; `None` when memory is exhausted.
    pub fn allocate(&mut self) -> Option<Frame> {
        let words = self.bitmap.len();
        for k in 0..words {
            let w = (self.hint + k) % words;
            let word = self.bitmap[w];
            if word != u64::MAX {
                let bit = (!word).trailing_zeros() as u64;
                let i = w as u64 * 64 + bit;
                if i >= self.span_frames {
                    continue;
                }
                self.set_bit(i);
                self.set_count(i, 1);
                self.free -= 1;
                self.hint = w;
                return Some(Frame((self.first_frame + i) * FRAME_SIZE));
            }
        }
        None
    }

    /// Allocates `count` contiguous frames whose first frame is aligned to
    /// `align` bytes (a power of two, at least 4 KiB); `None` if no such run
    /// is free. Used for structures like an HPT that need natural alignment.
    pub fn allocate_contiguous(&mut self, count: u64, align: u64) -> Option<Frame> {
        if count == 0 || !align.is_power_of_two() || align < FRAME_SIZE {
            return None;
        }
        let step = align / FRAME_SIZE;
        let mut n = self.first_frame.next_multiple_of(step);
        let end = self.first_frame + self.span_frames;
        while n + count <= end {
            let base = n - self.first_frame;
            if let Some(used) = (0..count).rev().find(|&j| self.bit(base + j)) {
                // Skip past the used frame to the next aligned start.
                n = (n + used + 1).next_multiple_of(step);
                continue;
            }
            for j in 0..count {
                self.set_bit(base + j);
                self.set_count(base + j, 1);
            }
            self.free -= count;
            return Some(Frame(n * FRAME_SIZE));
        }
        None
    }

    /// The span index of allocated frame `frame`.
    fn allocated_index(&self, frame: Frame) -> Result<u64, FramePoolError> {
        let addr = frame.start_address();
        if !self.usable.contains(addr) {
            return Err(FramePoolError::NotManaged(addr));
        }
        let i = frame.number() - self.first_frame;
        if !self.bit(i) {
            return Err(FramePoolError::NotAllocated(addr));
        }
        Ok(i)
    }

    /// Drops one holder of allocated frame `frame`; the last one frees
    /// it. Returns whether it was freed.
    pub fn release(&mut self, frame: Frame) -> Result<bool, FramePoolError> {
        let i = self.allocated_index(frame)?;
        if let Some(c) = self.counts.get(i as usize) {
            let n = c.load(Ordering::Relaxed);
            if n > 1 {
                c.store(n - 1, Ordering::Relaxed);
                return Ok(false);
            }
            c.store(0, Ordering::Relaxed);
        }
        self.clear_bit(i);
        self.free += 1;
        Ok(true)
    }

    /// Returns `frame` to the allocator (a shared frame too: its sharers
    /// are forgotten; the VMM's frames go through [`Self::release`]).
    pub fn deallocate(&mut self, frame: Frame) -> Result<(), FramePoolError> {
        let addr = frame.start_address();
        if !self.usable.contains(addr) {
            return Err(FramePoolError::NotManaged(addr));
        }
        let i = frame.number() - self.first_frame;
        if !self.bit(i) {
            return Err(FramePoolError::DoubleFree(addr));
        }
        self.set_count(i, 0);
        self.clear_bit(i);
        self.free += 1;
        Ok(())
    }

    /// Whether `frame` is currently allocated (false for unmanaged frames).
    pub fn is_allocated(&self, frame: Frame) -> bool {
        self.usable.contains(frame.start_address()) && self.bit(frame.number() - self.first_frame)
    }

    /// Frames currently free.
    pub fn free_frames(&self) -> u64 {
        self.free
    }

    /// Frames managed in total.
    pub fn total_frames(&self) -> u64 {
        self.total
    }

    /// The usable ranges (frame aligned).
    pub fn usable(&self) -> &RangeSet {
        &self.usable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ranges: &[(u64, u64)]) -> RangeSet {
        let mut s = RangeSet::new();
        for &(a, b) in ranges {
            s.insert(AddrRange { start: a, end: b }).unwrap();
        }
        s
    }

    #[test]
    fn range_set_merges_and_splits() {
        let mut s = set(&[(0x3000, 0x5000), (0x1000, 0x2000), (0x2000, 0x3000)]);
        assert_eq!(
            s.as_slice(),
            &[AddrRange {
                start: 0x1000,
                end: 0x5000
            }]
        );
        s.remove(AddrRange {
            start: 0x2000,
            end: 0x3000,
        })
        .unwrap();
        assert_eq!(
            s.as_slice(),
            &[
                AddrRange {
                    start: 0x1000,
                    end: 0x2000
                },
                AddrRange {
                    start: 0x3000,
                    end: 0x5000
                }
            ]
        );
        s.intersect(&set(&[(0x1800, 0x4000)])).unwrap();
        assert_eq!(
            s.as_slice(),
            &[
                AddrRange {
                    start: 0x1800,
                    end: 0x2000
                },
                AddrRange {
                    start: 0x3000,
                    end: 0x4000
                }
            ]
        );
        s.align_to_frames();
        assert_eq!(
            s.as_slice(),
            &[AddrRange {
                start: 0x3000,
                end: 0x4000
            }]
        );
    }

    #[test]
    fn shared_frames_go_back_with_their_last_sharer() {
        let usable = set(&[(0x10000, 0x14000)]);
        let fresh = |n: usize| -> Vec<AtomicU16> { (0..n).map(|_| AtomicU16::new(0)).collect() };
        // No count storage: sharing is refused.
        let mut bitmap = vec![0u64; FrameAllocator::bitmap_words(&usable)];
        let mut fa = FrameAllocator::new(&usable, &mut bitmap).unwrap();
        let f = fa.allocate().unwrap();
        assert_eq!(
            fa.sharer_counts().share(f),
            Err(FramePoolError::TooManySharers(f.start_address()))
        );
        // Counts come before the first allocation, zero and large enough.
        let late = fresh(4);
        assert_eq!(
            fa.set_share_counts(&late),
            Err(FramePoolError::CountsNotFresh)
        );
        let mut bitmap = vec![0u64; FrameAllocator::bitmap_words(&usable)];
        let mut fa = FrameAllocator::new(&usable, &mut bitmap).unwrap();
        let small = fresh(3);
        assert_eq!(
            fa.set_share_counts(&small),
            Err(FramePoolError::CountsTooSmall {
                needed: 4,
                given: 3
            })
        );
        let dirty = fresh(4);
        dirty[2].store(1, Ordering::Relaxed);
        assert_eq!(
            fa.set_share_counts(&dirty),
            Err(FramePoolError::CountsNotFresh)
        );
        let counts = fresh(FrameAllocator::share_counts(&usable));
        assert_eq!(counts.len(), 4);
        fa.set_share_counts(&counts).unwrap();
        let c = fa.sharer_counts();
        let f = fa.allocate().unwrap();
        assert_eq!(c.sharers(f), 1);
        c.share(f).unwrap();
        c.share(f).unwrap();
        assert_eq!(c.sharers(f), 3);
        let free = fa.free_frames();
        assert!(c.unshare(f));
        assert_eq!(fa.release(f), Ok(false));
        assert_eq!(c.sharers(f), 1);
        assert!(
            !c.unshare(f),
            "the last holder's release needs the allocator"
        );
        assert_eq!(fa.free_frames(), free);
        assert_eq!(fa.release(f), Ok(true));
        assert_eq!(fa.free_frames(), free + 1);
        assert_eq!(c.sharers(f), 0);
        // A free frame is neither shared nor released.
        let a = f.start_address();
        assert_eq!(c.share(f), Err(FramePoolError::NotAllocated(a)));
        assert_eq!(fa.release(f), Err(FramePoolError::NotAllocated(a)));
        assert_eq!(
            fa.release(Frame(0x1000)),
            Err(FramePoolError::NotManaged(0x1000))
        );
        assert_eq!(
            c.share(Frame(0x1000)),
            Err(FramePoolError::NotAllocated(0x1000))
        );
        assert_eq!(c.sharers(Frame(0x1000)), 0);
        // The count saturates: the caller copies instead.
        let g = fa.allocate().unwrap();
        for _ in 1..u16::MAX {
            c.share(g).unwrap();
        }
        assert_eq!(
            c.share(g),
            Err(FramePoolError::TooManySharers(g.start_address()))
        );
        assert_eq!(c.sharers(g), 65535);
        // deallocate forgets the sharers: the next owner starts at one.
        fa.deallocate(g).unwrap();
        assert_eq!(c.sharers(g), 0);
        let h = fa.allocate_contiguous(2, FRAME_SIZE).unwrap();
        assert_eq!(c.sharers(h), 1);
        assert_eq!(c.sharers(Frame(h.start_address() + FRAME_SIZE)), 1);
    }

    #[test]
    fn allocates_every_frame_once_then_exhausts() {
        let usable = set(&[(0x10000, 0x20000), (0x40000, 0x48000)]);
        let mut bitmap = vec![0u64; FrameAllocator::bitmap_words(&usable)];
        let mut fa = FrameAllocator::new(&usable, &mut bitmap).unwrap();
        assert_eq!(fa.total_frames(), 16 + 8);
        let mut seen = std::collections::BTreeSet::new();
        while let Some(f) = fa.allocate() {
            assert_eq!(f.start_address() % FRAME_SIZE, 0);
            assert!(usable.contains(f.start_address()), "{f:?} outside usable");
            assert!(seen.insert(f), "{f:?} handed out twice");
        }
        assert_eq!(seen.len(), 24);
        assert_eq!(fa.free_frames(), 0);
        let f = *seen.iter().next().unwrap();
        fa.deallocate(f).unwrap();
        assert_eq!(fa.allocate(), Some(f));
    }

    #[test]
    fn ranges_across_bitmap_words_free_exactly_their_frames() {
        // Ranges starting and ending inside a 64-frame word, spanning
        // whole words, exactly one word, and a lone frame: whole-word
        // clearing must free these frames and none of the holes between.
        let f = FRAME_SIZE;
        let usable = set(&[
            (5 * f, 155 * f),
            (259 * f, 323 * f),
            (384 * f, 512 * f),
            (600 * f, 601 * f),
        ]);
        let mut bitmap = vec![0u64; FrameAllocator::bitmap_words(&usable)];
        let mut fa = FrameAllocator::new(&usable, &mut bitmap).unwrap();
        assert_eq!(fa.total_frames(), 150 + 64 + 128 + 1);
        assert_eq!(fa.free_frames(), fa.total_frames());
        let mut n = 0;
        while let Some(fr) = fa.allocate() {
            assert!(usable.contains(fr.start_address()), "{fr:?} is in a hole");
            n += 1;
        }
        assert_eq!(n, 150 + 64 + 128 + 1);
    }

    #[test]
    fn bad_frees_are_rejected_without_change() {
        let usable = set(&[(0x10000, 0x14000), (0x20000, 0x24000)]);
        let mut bitmap = vec![0u64; FrameAllocator::bitmap_words(&usable)];
        let mut fa = FrameAllocator::new(&usable, &mut bitmap).unwrap();
        let f = fa.allocate().unwrap();
        let free = fa.free_frames();
        assert_eq!(
            fa.deallocate(Frame::containing(0x18000)),
            Err(FramePoolError::NotManaged(0x18000))
        );
        fa.deallocate(f).unwrap();
        assert_eq!(
            fa.deallocate(f),
            Err(FramePoolError::DoubleFree(f.start_address()))
        );
        assert_eq!(fa.free_frames(), free + 1);
        assert_eq!(
            Frame::from_start_address(0x10001),
            Err(FramePoolError::Misaligned(0x10001))
        );
    }

    #[test]
    fn contiguous_aligned_runs() {
        let usable = set(&[(0x1000, 0x100000)]);
        let mut bitmap = vec![0u64; FrameAllocator::bitmap_words(&usable)];
        let mut fa = FrameAllocator::new(&usable, &mut bitmap).unwrap();
        let one = fa.allocate().unwrap();
        assert_eq!(one.start_address(), 0x1000);
        let run = fa.allocate_contiguous(16, 0x10000).unwrap();
        assert_eq!(run.start_address() % 0x10000, 0);
        for j in 0..16 {
            assert!(fa.is_allocated(Frame::containing(run.start_address() + j * FRAME_SIZE)));
        }
        assert!(fa.allocate_contiguous(0x1000, 0x1000).is_none());
        assert!(fa.allocate_contiguous(1, 3).is_none());
    }

    #[test]
    fn small_bitmap_is_an_error() {
        let usable = set(&[(0, 0x1000 * 200)]);
        let mut bitmap = vec![0u64; 2];
        assert_eq!(
            FrameAllocator::new(&usable, &mut bitmap).err(),
            Some(FramePoolError::BitmapTooSmall {
                needed: 4,
                given: 2
            })
        );
    }
}

#[cfg(target_arch = "powerpc64")]
mod global {
    //! The kernel's frame allocator over the RAM of [`BootInfo`].

    use core::sync::atomic::AtomicU16;

    use super::{AddrRange, Frame, FrameAllocator, FramePoolError, RangeSet, FRAME_SIZE};
    use crate::bootinfo::{real_to_virt, BootInfo};

    /// Real addresses kept out of the allocator below the kernel: the
    /// interrupt vectors (0..0x1100) and, while it ran, VOF (0..0xc38 plus
    /// its stack up to 0x10000).
    pub const LOW_RESERVED: u64 = 0x10000;

    static FRAMES: spin::Mutex<Option<FrameAllocator<'static>>> = spin::Mutex::new(None);

    fn ranges_of(list: &crate::bootinfo::RangeList) -> RangeSet {
        let mut s = RangeSet::new();
        for r in list.as_slice() {
            if s.insert(AddrRange::new(r.base, r.size)).is_err() {
                log::warn!(
                    "too many memory ranges; ignoring {:#x}+{:#x}",
                    r.base,
                    r.size
                );
            }
        }
        s
    }

    /// The usable RAM: memory `reg`, limited to `available` when the
    /// firmware provides it, minus low memory and the kernel image.
    pub fn usable_ranges(info: &BootInfo) -> Result<RangeSet, FramePoolError> {
        let mut usable = ranges_of(&info.memory);
        if !info.available.is_empty() {
            usable.intersect(&ranges_of(&info.available))?;
        }
        usable.remove(AddrRange::new(0, LOW_RESERVED))?;
        usable.remove(AddrRange::new(info.kernel.base, info.kernel.size))?;
        for r in info.reserved.as_slice() {
            usable.remove(AddrRange::new(r.base, r.size))?;
        }
        usable.align_to_frames();
        Ok(usable)
    }

    /// Builds the global allocator; its bitmap takes the first frames of
    /// the first usable range large enough to hold it.
    ///
    /// # Panics
    ///
    /// Panics if there is no usable memory for the bitmap.
    pub fn init_global(info: &BootInfo) {
        let mut usable = usable_ranges(info).expect("usable memory ranges");
        let words = FrameAllocator::bitmap_words(&usable);
        let bytes = (words as u64 * 8).next_multiple_of(FRAME_SIZE);
        let home = usable
            .as_slice()
            .iter()
            .find(|r| r.end - r.start >= bytes)
            .copied()
            .expect("room for the frame bitmap");
        usable
            .remove(AddrRange::new(home.start, bytes))
            .expect("removing the bitmap range");
        let ptr = real_to_virt(home.start) as *mut u64;
        // SAFETY: [home.start, home.start + bytes) is RAM that nothing else
        // uses (removed from the usable set above); real mode reaches it at
        // its kernel address, and the slice lives for the rest of the run.
        let bitmap = unsafe { core::slice::from_raw_parts_mut(ptr, words) };
        // The sharer counts likewise, sized for the span left after the
        // bitmap (taking their own room only shrinks it).
        let counts = FrameAllocator::share_counts(&usable);
        let count_bytes = (counts as u64 * 2).next_multiple_of(FRAME_SIZE);
        let count_home = usable
            .as_slice()
            .iter()
            .find(|r| r.end - r.start >= count_bytes)
            .copied()
            .expect("room for the sharer counts");
        usable
            .remove(AddrRange::new(count_home.start, count_bytes))
            .expect("removing the sharer counts' range");
        let mut fa = FrameAllocator::new(&usable, bitmap).expect("bitmap sized by bitmap_words");
        let base = real_to_virt(count_home.start) as *mut u8;
        // SAFETY: as for the bitmap: RAM removed from the usable set, for
        // the rest of the run, frame-aligned and `count_bytes` long.
        unsafe { zero(base, count_bytes as usize, info.cpu.dcache_block_size) };
        // SAFETY: the same RAM, now zero: valid `AtomicU16`s (2-byte
        // aligned), used only through this slice from now on.
        let counts = unsafe { core::slice::from_raw_parts(base as *const AtomicU16, counts) };
        fa.set_share_counts(counts)
            .expect("zeroed counts sized by share_counts");
        log::info!(
            "frames: {} free of 4 KiB ({} MiB of {} MiB usable), bitmap at {:#x}, sharer counts at {:#x}",
            fa.free_frames(),
            (fa.free_frames() * FRAME_SIZE) >> 20,
            usable.total() >> 20,
            home.start,
            count_home.start
        );
        *FRAMES.lock() = Some(fa);
    }

    /// Zeroes `len` bytes at the frame-aligned `base` (a multiple of 4
    /// KiB) with `dcbz` when the cache block size allows (the counts take
    /// 8 MiB at 16 GiB of RAM: a store loop would add milliseconds to
    /// the boot).
    ///
    /// # Safety
    ///
    /// `[base, base + len)` is memory nothing else uses.
    unsafe fn zero(base: *mut u8, len: usize, block: Option<u32>) {
        match block.map(|b| b as usize) {
            Some(b) if b.is_power_of_two() && (32..=FRAME_SIZE as usize).contains(&b) => {
                let mut off = 0;
                while off < len {
                    // SAFETY: a whole cache block inside the caller's range
                    // (b divides the frame-multiple length).
                    unsafe { arch_ppc64::instructions::cache::dcbz(base.add(off)) };
                    off += b;
                }
            }
            // SAFETY: the caller's range.
            _ => unsafe { core::ptr::write_bytes(base, 0, len) },
        }
    }

    /// Runs `f` with the global allocator.
    ///
    /// # Panics
    ///
    /// Panics if [`init_global`] has not run.
    pub fn with<R>(f: impl FnOnce(&mut FrameAllocator<'static>) -> R) -> R {
        let mut guard = FRAMES.lock();
        f(guard.as_mut().expect("frame allocator initialised"))
    }

    /// Allocates one frame from the global allocator.
    pub fn allocate() -> Option<Frame> {
        with(|fa| fa.allocate())
    }

    /// Frees one frame to the global allocator.
    pub fn deallocate(frame: Frame) -> Result<(), FramePoolError> {
        with(|fa| fa.deallocate(frame))
    }

    /// Releases the allocator lock if a failed test left it held.
    ///
    /// # Safety
    ///
    /// No code may be inside [`with`] (the harness calls this after it has
    /// abandoned a failed test's stack).
    pub unsafe fn force_unlock() {
        if FRAMES.is_locked() {
            // SAFETY: per the contract, the holder no longer runs.
            unsafe { FRAMES.force_unlock() };
        }
    }
}

#[cfg(target_arch = "powerpc64")]
pub use global::{allocate, deallocate, force_unlock, init_global, usable_ranges, with};
