//! Device-tree facts read at boot.

use crate::bootinfo;

kernel_test! {
    fn slb_size_is_32() {
        // QEMU reports 32 SLB entries for POWER7..POWER10 (ibm,slb-size).
        assert_eq!(bootinfo::get().cpu.slb_size, Some(32));
    }
}
