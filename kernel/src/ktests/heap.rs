//! The kernel heap (`alloc`).

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::vec::Vec;

kernel_test! {
    fn vec_box_and_btreemap_work_and_memory_comes_back() {
        let before = crate::heap::used();
        let free_before = crate::heap::free();
        {
            let mut v: Vec<u64> = (0..10_000).collect();
            v.retain(|x| x % 3 == 0);
            assert_eq!(v.len(), 3334);
            assert_eq!(v.iter().sum::<u64>(), (0..10_000u64).filter(|x| x % 3 == 0).sum());
            let b = Box::new([7u8; 4096]);
            assert!(b.iter().all(|&x| x == 7));
            let mut m = BTreeMap::new();
            for i in 0..500u32 {
                m.insert(i.wrapping_mul(2_654_435_761), i);
            }
            assert_eq!(m.len(), 500);
            assert_eq!(format!("{:#x}", 0xdead_beefu32), "0xdeadbeef");
            assert!(crate::heap::used() > before);
        }
        assert_eq!(crate::heap::used(), before, "heap usage back to where it was");
        assert_eq!(crate::heap::free(), free_before);
        assert_eq!(before + free_before, crate::heap::HEAP_SIZE as usize);
    }

    fn large_allocation_fails_cleanly() {
        // More than the whole heap: the fallible API reports it instead of
        // panicking.
        let mut v: Vec<u8> = Vec::new();
        assert!(v.try_reserve_exact(crate::heap::HEAP_SIZE as usize * 2).is_err());
        assert!(v.try_reserve_exact(64 * 1024).is_ok());
    }
}

/// A heap of its own over `bytes` bytes of the global one, for tests that
/// exhaust it. Returns the heap and the arena (keep it alive).
fn arena_heap(bytes: usize) -> (crate::heap::KernelHeap, Vec<u128>) {
    let mut arena: Vec<u128> = alloc::vec![0; bytes / 16];
    let h = crate::heap::KernelHeap::empty();
    // SAFETY: the arena is this heap's alone and outlives it (the caller
    // keeps both and drops the heap's blocks first).
    unsafe { h.init(arena.as_mut_ptr().cast(), bytes) };
    (h, arena)
}

kernel_test! {
    fn small_blocks_of_every_size_and_alignment_come_back() {
        use core::alloc::{GlobalAlloc, Layout};
        let (h, _arena) = arena_heap(256 << 10);
        let total = h.free();
        assert_eq!(h.used(), 0);
        let mut blocks = Vec::new();
        for round in 0..3usize {
            for size in 1..=300usize {
                let align = [1, 8, 16, 32][(size + round) % 4];
                let l = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a non-zero size.
                let p = unsafe { h.alloc(l) };
                assert!(!p.is_null() && (p as usize).is_multiple_of(align), "{l:?}");
                // SAFETY: p is a fresh block of l.size() bytes.
                unsafe { core::ptr::write_bytes(p, size as u8, size) };
                blocks.push((p, l));
            }
            // Free every other block now (they go to the lists or back to
            // the linked list), keep the rest across rounds.
            let mut i = 0;
            blocks.retain(|&(p, l)| {
                i += 1;
                if i % 2 == 0 {
                    return true;
                }
                // SAFETY: p was allocated from h with l and is not used again.
                unsafe { h.dealloc(p, l) };
                false
            });
        }
        for &(p, l) in &blocks {
            // SAFETY: p is a live block of l.size() bytes.
            let s = unsafe { core::slice::from_raw_parts(p, l.size()) };
            assert!(s.iter().all(|&b| b == l.size() as u8), "block of {l:?} overwritten");
            // SAFETY: as above, freed once.
            unsafe { h.dealloc(p, l) };
        }
        assert_eq!(h.used(), 0, "every block came back");
        assert_eq!(h.free(), total);
    }

    fn listed_blocks_go_back_when_the_heap_runs_out() {
        use core::alloc::{GlobalAlloc, Layout};
        let (h, _arena) = arena_heap(32 << 10);
        let total = h.free();
        // Fill the heap with 48-byte blocks chained through their first
        // word, then free them all: KEEP of them stay on their list.
        let small = Layout::from_size_align(48, 8).unwrap();
        let mut chain: *mut u8 = core::ptr::null_mut();
        let mut n = 0;
        loop {
            // SAFETY: a non-zero size.
            let p = unsafe { h.alloc(small) };
            if p.is_null() {
                break;
            }
            // SAFETY: p is a fresh, aligned block of 48 bytes.
            unsafe { p.cast::<*mut u8>().write(chain) };
            chain = p;
            n += 1;
        }
        assert!(n > crate::heap::KEEP as usize, "only {n} blocks");
        while !chain.is_null() {
            // SAFETY: chain is a live block of `small` holding the next.
            let next = unsafe { chain.cast::<*mut u8>().read() };
            // SAFETY: freed once.
            unsafe { h.dealloc(chain, small) };
            chain = next;
        }
        assert_eq!(h.free(), total);
        // One block of nearly everything fits only once the listed blocks
        // are back in the linked list and merged with their neighbours.
        let big = Layout::from_size_align(total - 64, 16).unwrap();
        // SAFETY: a non-zero size.
        let p = unsafe { h.alloc(big) };
        assert!(!p.is_null(), "the listed blocks were not handed back");
        // SAFETY: allocated above with `big`.
        unsafe { h.dealloc(p, big) };
        assert_eq!(h.used(), 0);
    }
}
