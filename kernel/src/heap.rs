//! The kernel heap, the `#[global_allocator]` so `alloc` (Box, Vec, ...)
//! works: `linked_list_allocator` over contiguous frames, with a free list
//! per size class in front of it for small blocks.
//!
//! The linked list is first-fit and address-ordered, so every allocation
//! and every free walks it: about 120 instructions each on the kernel,
//! whatever the size. The VMM's tables allocate and free small records all
//! the time (a boxed segment record per `vm_guatt` view, B-tree nodes, page
//! arrays), so blocks of up to [`SMALL_MAX`] bytes aligned to at most 16
//! are rounded up to a multiple of 16 and, when freed, kept on the free
//! list of their size (up to [`KEEP`] each) for the next allocation of that
//! size: a pop or a push under the lock. A block on a list still counts as
//! free ([`free`], [`used`]), and an allocation the linked list cannot
//! satisfy first hands every listed block back to it (where neighbours
//! merge again) and tries once more, so the lists never make an
//! allocation fail that would have succeeded without them.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{null_mut, NonNull};

use linked_list_allocator::Heap;
use spin::Mutex;

use crate::bootinfo::real_to_virt;
use crate::frame::{self, FRAME_SIZE};

/// Heap size: 4 MiB.
pub const HEAP_SIZE: u64 = 4 << 20;

/// Size step of the small classes (also their alignment).
const STEP: usize = 16;
/// Largest block served from the size-class lists.
pub const SMALL_MAX: usize = 256;
const CLASSES: usize = SMALL_MAX / STEP;
/// Most freed blocks a class keeps (the rest go back to the linked list):
/// at most about 136 KiB held on all lists together.
pub const KEEP: u32 = 64;

/// The per-class free lists: each listed block holds the address of the
/// next in its first word (0 ends the list).
struct Lists {
    head: [usize; CLASSES],
    count: [u32; CLASSES],
    /// Bytes on all lists.
    bytes: usize,
}

impl Lists {
    const EMPTY: Lists = Lists {
        head: [0; CLASSES],
        count: [0; CLASSES],
        bytes: 0,
    };

    /// # Safety
    ///
    /// Every listed block must be a free block of its class (only
    /// [`Lists::push`] adds them).
    unsafe fn pop(&mut self, class: usize) -> Option<*mut u8> {
        let p = self.head[class] as *mut u8;
        if p.is_null() {
            return None;
        }
        // SAFETY: a listed block is free, 16-byte aligned and at least 16
        // bytes; its first word is the link `push` wrote.
        self.head[class] = unsafe { p.cast::<usize>().read() };
        self.count[class] -= 1;
        self.bytes -= class_size(class);
        Some(p)
    }

    /// # Safety
    ///
    /// `p` must be a block of `class` that the caller gives up.
    unsafe fn push(&mut self, class: usize, p: *mut u8) {
        // SAFETY: the block is the caller's to give, aligned and big
        // enough for one word.
        unsafe { p.cast::<usize>().write(self.head[class]) };
        self.head[class] = p as usize;
        self.count[class] += 1;
        self.bytes += class_size(class);
    }

    /// Hands every listed block back to `heap`.
    ///
    /// # Safety
    ///
    /// The listed blocks must have come from `heap` with their class's
    /// layout.
    unsafe fn flush(&mut self, heap: &mut Heap) {
        for class in 0..CLASSES {
            // SAFETY: forwarded contract.
            while let Some(p) = unsafe { self.pop(class) } {
                // SAFETY: p came from `heap` with this layout and is free.
                unsafe { heap.deallocate(NonNull::new_unchecked(p), class_layout(class)) };
            }
        }
    }
}

const fn class_size(class: usize) -> usize {
    (class + 1) * STEP
}

fn class_layout(class: usize) -> Layout {
    // Sizes 16..=256, alignment 16: always valid.
    Layout::from_size_align(class_size(class), STEP).expect("a valid class layout")
}

/// The size class of `layout`, if it is small.
fn class_of(layout: Layout) -> Option<usize> {
    (layout.size() <= SMALL_MAX && layout.align() <= STEP)
        .then(|| layout.size().max(1).div_ceil(STEP) - 1)
}

/// A linked-list heap with size-class free lists in front (see the module
/// documentation). The kernel's global allocator is one; tests build
/// others over memory of their own.
pub struct KernelHeap {
    inner: Mutex<(Heap, Lists)>,
}

impl KernelHeap {
    /// A heap with no memory yet ([`KernelHeap::init`] gives it some).
    pub const fn empty() -> KernelHeap {
        KernelHeap {
            inner: Mutex::new((Heap::empty(), Lists::EMPTY)),
        }
    }

    /// Gives the heap `size` bytes at `start`.
    ///
    /// # Safety
    ///
    /// The memory must be unused, writable, valid for as long as the heap
    /// is used, and given only once.
    pub unsafe fn init(&self, start: *mut u8, size: usize) {
        // SAFETY: forwarded contract.
        unsafe { self.inner.lock().0.init(start, size) };
    }

    /// Bytes allocated and not freed (blocks on the free lists are free).
    pub fn used(&self) -> usize {
        let g = self.inner.lock();
        g.0.used() - g.1.bytes
    }

    /// Bytes free, including the blocks on the free lists.
    pub fn free(&self) -> usize {
        let g = self.inner.lock();
        g.0.free() + g.1.bytes
    }
}

impl KernelHeap {
    /// The linked list's part of [`GlobalAlloc::alloc`]: large blocks, and
    /// small ones whose list is empty; on failure it hands the listed
    /// blocks back and tries once more. Out of line, so the list fast path
    /// saves no registers.
    #[inline(never)]
    fn alloc_from_list(heap: &mut Heap, lists: &mut Lists, layout: Layout) -> *mut u8 {
        let layout = class_of(layout).map_or(layout, class_layout);
        if let Ok(p) = heap.allocate_first_fit(layout) {
            return p.as_ptr();
        }
        // SAFETY: the listed blocks came from `heap` with their classes'
        // layouts.
        unsafe { lists.flush(heap) };
        heap.allocate_first_fit(layout)
            .map_or(null_mut(), |p| p.as_ptr())
    }

    /// The linked list's part of [`GlobalAlloc::dealloc`].
    ///
    /// # Safety
    ///
    /// As [`GlobalAlloc::dealloc`] for a block [`KernelHeap`] handed out.
    #[inline(never)]
    unsafe fn dealloc_to_list(heap: &mut Heap, ptr: *mut u8, layout: Layout) {
        let layout = class_of(layout).map_or(layout, class_layout);
        // SAFETY: `alloc` took the block from `heap` with `layout` (a
        // small one with its class's).
        unsafe { heap.deallocate(NonNull::new_unchecked(ptr), layout) };
    }
}

// SAFETY: blocks are handed out once until freed: a listed block is off
// every list while allocated, and a block goes back to the list of the
// class its layout gives, or to the linked list with the layout it was
// taken with (the class's for small blocks), as `Heap` requires.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut g = self.inner.lock();
        let (heap, lists) = &mut *g;
        if let Some(class) = class_of(layout) {
            // SAFETY: only `push` lists blocks, each of its class.
            if let Some(p) = unsafe { lists.pop(class) } {
                return p;
            }
        }
        Self::alloc_from_list(heap, lists, layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let mut g = self.inner.lock();
        let (heap, lists) = &mut *g;
        match class_of(layout) {
            Some(c) if lists.count[c] < KEEP => {
                // SAFETY: the caller gives the block up; it is of class c.
                unsafe { lists.push(c, ptr) }
            }
            // SAFETY: forwarded contract.
            _ => unsafe { Self::dealloc_to_list(heap, ptr, layout) },
        }
    }
}

#[global_allocator]
static HEAP: KernelHeap = KernelHeap::empty();

/// Takes [`HEAP_SIZE`] bytes of frames and hands them to the allocator.
///
/// # Panics
///
/// Panics if the frames are not available.
pub fn init() {
    let start = frame::with(|fa| fa.allocate_contiguous(HEAP_SIZE / FRAME_SIZE, FRAME_SIZE))
        .expect("frames for the heap");
    let virt = real_to_virt(start.start_address());
    // SAFETY: the frames were just allocated for the heap alone, are RAM
    // reachable at their kernel address, and are never freed.
    unsafe { HEAP.init(virt as *mut u8, HEAP_SIZE as usize) };
    log::info!("heap: {} KiB at {:#x}", HEAP_SIZE >> 10, virt);
}

/// Bytes of the heap in use.
pub fn used() -> usize {
    HEAP.used()
}

/// Bytes of the heap free.
pub fn free() -> usize {
    HEAP.free()
}
