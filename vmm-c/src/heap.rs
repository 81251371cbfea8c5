//! The library's allocator: first fit over the heap region the C kernel
//! gives `vmm_create`. With feature `std` (host builds), allocations made
//! before that region exists, and the frees of those, go to the system
//! allocator, so a host program can use the library's other Rust code
//! before `vmm_create`.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};

use linked_list_allocator::Heap;

/// The allocator over the region.
pub struct RegionAllocator {
    heap: spin::Mutex<Heap>,
}

impl core::fmt::Debug for RegionAllocator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RegionAllocator").finish_non_exhaustive()
    }
}

impl RegionAllocator {
    const fn new() -> Self {
        RegionAllocator {
            heap: spin::Mutex::new(Heap::empty()),
        }
    }

    /// Hands `[base, base + size)` to the allocator; `false` if it has
    /// its region already.
    ///
    /// # Safety
    ///
    /// The memory must be valid for reads and writes, unused by anything
    /// else, for as long as the program runs.
    pub unsafe fn init(&self, base: *mut u8, size: usize) -> bool {
        let mut h = self.heap.lock();
        if h.size() != 0 {
            return false;
        }
        // SAFETY: the caller's guarantee, passed on.
        unsafe { h.init(base, size) };
        true
    }

    fn owns(h: &Heap, ptr: *mut u8) -> bool {
        h.size() != 0 && ptr >= h.bottom() && ptr < h.top()
    }
}

// SAFETY: every block comes from `Heap::allocate_first_fit` (or, with
// `std` and no region yet, the system allocator) for the layout asked,
// and goes back to the one it came from: `owns` tells them apart by
// address, and the region never moves once set.
unsafe impl GlobalAlloc for RegionAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut h = self.heap.lock();
        if h.size() != 0 {
            return h
                .allocate_first_fit(layout)
                .map_or(ptr::null_mut(), NonNull::as_ptr);
        }
        drop(h);
        #[cfg(feature = "std")]
        {
            // SAFETY: a non-zero-size layout, as GlobalAlloc promises.
            unsafe { std::alloc::System.alloc(layout) }
        }
        #[cfg(not(feature = "std"))]
        ptr::null_mut()
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let mut h = self.heap.lock();
        if Self::owns(&h, ptr) {
            if let Some(p) = NonNull::new(ptr) {
                // SAFETY: `ptr` came from this heap for `layout`.
                unsafe { h.deallocate(p, layout) };
            }
            return;
        }
        drop(h);
        #[cfg(feature = "std")]
        // SAFETY: not the region's, so the system allocator's, for `layout`.
        unsafe {
            std::alloc::System.dealloc(ptr, layout)
        }
    }
}

/// The allocator every allocation of the library goes to.
#[global_allocator]
pub static ALLOCATOR: RegionAllocator = RegionAllocator::new();
