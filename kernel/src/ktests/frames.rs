//! The physical frame allocator on real memory.

use alloc::collections::BTreeSet;
use alloc::vec;
use alloc::vec::Vec;

use crate::bootinfo::{self, real_to_virt};
use crate::frame::{self, AddrRange, Frame, FrameAllocator, FramePoolError, RangeSet, FRAME_SIZE};

kernel_test! {
    fn frames_are_unique_aligned_usable_and_come_back() {
        let info = bootinfo::get();
        let free_before = frame::with(|fa| fa.free_frames());
        let (total, usable) = frame::with(|fa| (fa.total_frames(), *fa.usable()));
        assert!(free_before <= total);
        assert!(!usable.contains(info.kernel.base), "the kernel is not usable memory");
        assert!(!usable.contains(0), "real address 0 (the vectors) is not usable memory");
        assert!(usable.total() / FRAME_SIZE >= total);
        let mut got = BTreeSet::new();
        for _ in 0..2000 {
            let f = frame::allocate().expect("free frames");
            let a = f.start_address();
            assert_eq!(a % FRAME_SIZE, 0);
            assert!(a >= 0x10000, "frame {a:#x} in the vector/firmware area");
            assert!(
                a + FRAME_SIZE <= info.kernel.base || a >= info.kernel.end(),
                "frame {a:#x} inside the kernel image"
            );
            assert!(a + FRAME_SIZE <= info.ram_size(), "frame {a:#x} beyond RAM");
            assert!(got.insert(a), "frame {a:#x} handed out twice");
        }
        assert_eq!(frame::with(|fa| fa.free_frames()), free_before - 2000);
        for &a in &got {
            frame::deallocate(Frame::containing(a)).expect("freeing an allocated frame");
        }
        assert_eq!(frame::with(|fa| fa.free_frames()), free_before);
    }

    fn bad_frees_are_rejected() {
        let f = frame::allocate().expect("a frame");
        frame::deallocate(f).expect("first free");
        let free = frame::with(|fa| fa.free_frames());
        assert_eq!(frame::deallocate(f), Err(FramePoolError::DoubleFree(f.start_address())));
        let kernel = Frame::containing(bootinfo::get().kernel.base);
        assert_eq!(frame::deallocate(kernel), Err(FramePoolError::NotManaged(kernel.start_address())));
        assert_eq!(frame::with(|fa| fa.free_frames()), free, "failed frees changed nothing");
        assert_eq!(Frame::from_start_address(0x10_0008), Err(FramePoolError::Misaligned(0x10_0008)));
    }

    fn allocator_exhausts_and_frames_hold_data() {
        // A private allocator over 64 real frames taken from the global one.
        const N: u64 = 64;
        let run = frame::with(|fa| fa.allocate_contiguous(N, FRAME_SIZE)).expect("64 frames");
        let mut usable = RangeSet::new();
        usable.insert(AddrRange::new(run.start_address(), N * FRAME_SIZE)).unwrap();
        let mut bitmap = vec![0u64; FrameAllocator::bitmap_words(&usable)];
        let mut fa = FrameAllocator::new(&usable, &mut bitmap).unwrap();
        let mut frames = Vec::new();
        while let Some(f) = fa.allocate() {
            // Write a pattern through the kernel mapping of real memory.
            let p = real_to_virt(f.start_address()) as *mut u64;
            // SAFETY: the frame belongs to this test (allocated above) and
            // is reachable at its kernel address in real mode.
            unsafe { p.write_volatile(f.start_address() ^ 0x5a5a) };
            frames.push(f);
        }
        assert_eq!(frames.len() as u64, N, "exactly the 64 frames, then exhaustion");
        assert_eq!(fa.allocate(), None);
        for f in &frames {
            let p = real_to_virt(f.start_address()) as *const u64;
            // SAFETY: as above.
            assert_eq!(unsafe { p.read_volatile() }, f.start_address() ^ 0x5a5a);
        }
        for j in 0..N {
            frame::deallocate(Frame::containing(run.start_address() + j * FRAME_SIZE)).unwrap();
        }
    }

    fn contiguous_runs_are_naturally_aligned() {
        // An HPT-sized request: 256 KiB aligned to its size.
        let size = 256 * 1024;
        let run = frame::with(|fa| fa.allocate_contiguous(size / FRAME_SIZE, size)).expect("a 256 KiB run");
        assert_eq!(run.start_address() % size, 0);
        for j in 0..size / FRAME_SIZE {
            let f = Frame::containing(run.start_address() + j * FRAME_SIZE);
            assert!(frame::with(|fa| fa.is_allocated(f)));
            frame::deallocate(f).unwrap();
        }
    }
}
