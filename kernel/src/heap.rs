//! The kernel heap: `linked_list_allocator` over contiguous frames, as the
//! `#[global_allocator]` so `alloc` (Box, Vec, ...) works.

use linked_list_allocator::LockedHeap;

use crate::bootinfo::real_to_virt;
use crate::frame::{self, FRAME_SIZE};

/// Heap size: 4 MiB.
pub const HEAP_SIZE: u64 = 4 << 20;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

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
    unsafe { HEAP.lock().init(virt as *mut u8, HEAP_SIZE as usize) };
    log::info!("heap: {} KiB at {:#x}", HEAP_SIZE >> 10, virt);
}

/// Bytes of the heap in use.
pub fn used() -> usize {
    HEAP.lock().used()
}

/// Bytes of the heap free.
pub fn free() -> usize {
    HEAP.lock().free()
}
