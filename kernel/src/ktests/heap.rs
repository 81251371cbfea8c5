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
