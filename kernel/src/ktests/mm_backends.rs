//! The SLB and frame backends on the real machine, and the fault
//! dispatch's user-fault hook.

use core::sync::atomic::{AtomicU64, Ordering};

use arch_ppc64::addr::{EffectiveAddress, Esid, PhysAddr, Vsid};
use arch_ppc64::instructions::slb;
use arch_ppc64::registers::msr::Msr;
use arch_ppc64::structures::slb::{SlbEntry, SlbFlags};
use arch_ppc64::structures::{PageSize, SegmentSize};
use vmm::platform::{
    FrameAllocator, FrameError, PhysMemory, SlbBackend, SlbError, VmFault, VmFaultReason,
    FRAME_SIZE,
};

use crate::mm::{self, HwSlb, KernelFrames};
use crate::trap::TrapFrame;

fn hw_slb() -> HwSlb {
    let l = mm::layout();
    HwSlb::new(l.slb_size, l.linear_slb_entries).expect("SLB")
}

fn test_entry(esid: u64) -> SlbEntry {
    SlbEntry::new(
        Esid::new(esid),
        Vsid::new((1 << 36) | esid),
        SegmentSize::M256,
        PageSize::K4,
        SlbFlags::KP,
    )
    .expect("entry")
}

static HOOK_EA: AtomicU64 = AtomicU64::new(0);
static HOOK_REASON: AtomicU64 = AtomicU64::new(0);

fn test_hook(frame: &mut TrapFrame, fault: VmFault) {
    HOOK_EA.store(fault.ea.as_u64(), Ordering::SeqCst);
    HOOK_REASON.store(
        matches!(fault.reason, VmFaultReason::NoSegment) as u64 + 1,
        Ordering::SeqCst,
    );
    frame.srr0 = 0x1234_5678;
}

kernel_test! {
    fn hw_slb_loads_reads_and_invalidates_above_the_linear_map() {
        let mut s = hw_slb();
        let l = mm::layout();
        assert_eq!(s.reserved(), l.linear_slb_entries);
        assert_eq!(s.slb_size(), l.slb_size - l.linear_slb_entries);
        let idx = s.slb_size() - 1;
        let e = test_entry(0x456);
        s.load(idx, e).expect("slbmte");
        let back = s.read(idx).unwrap();
        assert_eq!(back, e.with_index(idx).unwrap(), "slbmfee/slbmfev give it back with the VMM index");
        // In hardware it sits above the linear-map entries.
        let hw = slb::read_entry(idx + l.linear_slb_entries);
        assert_eq!(hw.vsid_word, e.vsid_word);
        s.invalidate(EffectiveAddress::new(0x456 << 28), SegmentSize::M256);
        assert!(!s.read(idx).unwrap().is_valid(), "slbie removed it");
        assert_eq!(s.load(s.slb_size(), e), Err(SlbError::IndexOutOfRange(s.slb_size())));
        assert_eq!(s.read(usize::MAX), Err(SlbError::IndexOutOfRange(usize::MAX)));
        // invalidate_non_bolted clears the VMM's entries, never the linear map.
        s.load(0, test_entry(0x457)).unwrap();
        s.load(idx, test_entry(0x458)).unwrap();
        s.invalidate_non_bolted(0);
        assert!(!s.read(0).unwrap().is_valid() && !s.read(idx).unwrap().is_valid());
        assert!(slb::read_entry(0).is_valid(), "linear map entry 0 survives");
        // The kernel still runs translated: this assertion's code and stack
        // are on the linear map.
        assert!(arch_ppc64::registers::msr::read().contains(Msr::IR | Msr::DR));
    }

    fn hw_slb_keeps_the_vmm_off_the_linear_map_without_reading_the_slb() {
        let mut s = hw_slb();
        let linear = slb::read_entry(0);
        let base = linear.esid().base();
        // A 256 MB entry inside the linear map's segment, and one of class
        // C, are refused: the direct slbie relies on neither existing.
        let inside = test_entry(base.esid().as_u64() + 3);
        assert_eq!(s.load(1, inside), Err(SlbError::InvalidEntry(inside)));
        let class_c = SlbEntry {
            vsid_word: test_entry(0x459).vsid_word | arch_ppc64::structures::slb::vsid_word::C,
            ..test_entry(0x459)
        };
        assert_eq!(s.load(1, class_c), Err(SlbError::InvalidEntry(class_c)));
        // A 16M-base segment is the linear map's kind, never the VMM's
        // (and a Program interrupt where the machine does not offer 16M).
        let m16 = SlbEntry::new(Esid::new(0x45b), Vsid::new((1 << 36) | 0x45b), SegmentSize::M256, PageSize::M16, SlbFlags::KP)
            .expect("entry");
        assert_eq!(s.load(1, m16), Err(SlbError::InvalidEntry(m16)));
        assert!(!s.read(1).unwrap().is_valid(), "nothing was loaded");
        // slbie of a linear-map address (either size) is not passed on.
        s.invalidate(EffectiveAddress::new(base.as_u64() + (3 << 28)), SegmentSize::M256);
        s.invalidate(base, SegmentSize::T1);
        assert_eq!(slb::read_entry(0), linear, "the linear map keeps its entry");
        // A VMM entry goes with one slbie of its segment.
        s.load(1, test_entry(0x45a)).unwrap();
        s.invalidate(EffectiveAddress::new((0x45a << 28) + 0x1234), SegmentSize::M256);
        assert!(!s.read(1).unwrap().is_valid());
    }

    fn kernel_frames_zero_copy_and_refuse_foreign_frames() {
        let mut f = KernelFrames::default();
        let free0 = f.free_frames();
        let a = f.allocate().expect("frame");
        let b = f.allocate().expect("frame");
        assert_eq!(f.allocated(), 2);
        assert_eq!(f.free_frames(), free0 - 2);
        f.write(a, &[0xa5; 64]).unwrap();
        f.copy(b, a).unwrap();
        let mut buf = [0u8; 64];
        f.read(b, &mut buf).unwrap();
        assert_eq!(buf, [0xa5; 64], "copied");
        f.zero(b).unwrap();
        let mut page = [1u8; FRAME_SIZE as usize];
        f.read(b, &mut page).unwrap();
        assert!(page.iter().all(|&x| x == 0), "zeroed");
        // A shared frame goes back with its last sharer.
        assert_eq!(f.sharers(a), 1);
        f.share(a).unwrap();
        assert_eq!(f.sharers(a), 2);
        f.free(a).unwrap();
        assert_eq!((f.sharers(a), f.allocated()), (1, 2));
        assert_eq!(f.free_frames(), free0 - 2);
        f.free(a).unwrap();
        assert_eq!(f.sharers(a), 0);
        assert_eq!(f.share(a), Err(FrameError::NotAllocated(a)));
        assert_eq!(f.free(a), Err(FrameError::NotAllocated(a)), "double free refused");
        assert_eq!(f.zero(a), Err(FrameError::NotAllocated(a)));
        assert_eq!(f.free(PhysAddr::new(b.as_u64() + 8)), Err(FrameError::Misaligned(PhysAddr::new(b.as_u64() + 8))));
        // The kernel image is not an allocated frame.
        let k = PhysAddr::new(crate::bootinfo::get().kernel.base);
        assert_eq!(f.copy(b, k), Err(FrameError::NotAllocated(k)));
        f.free(b).unwrap();
        assert_eq!(f.allocated(), 0);
        assert_eq!(f.free_frames(), free0);
    }

    fn frames_are_zeroed_with_dcbz_over_the_device_tree_block_size() {
        use crate::mm::frames::zero_block;
        // QEMU's POWER8/9/10 CPU nodes say 128, as the hardware does.
        let dt = crate::bootinfo::get().cpu.dcache_block_size;
        assert_eq!(dt, Some(128));
        let mut f = KernelFrames::new(dt);
        assert_eq!(f.zeroes_with_dcbz(), Some(128));
        // Only sizes that tile a frame exactly are used.
        for bad in [None, Some(0), Some(16), Some(48), Some(8192), Some(u32::MAX)] {
            assert_eq!(zero_block(bad), None, "{bad:?}");
        }
        assert_eq!(zero_block(Some(4096)), Some(4096));
        // Every byte of the frame, the last block included, is zeroed.
        let a = f.allocate().expect("frame");
        let mut page = [0xffu8; FRAME_SIZE as usize];
        f.write(a, &page).unwrap();
        f.zero(a).unwrap();
        page.fill(0xee);
        f.read(a, &mut page).unwrap();
        assert!(page.iter().all(|&x| x == 0), "zeroed");
        f.free(a).unwrap();
    }

    fn refused_problem_state_fault_goes_to_the_user_fault_hook() {
        let prev = mm::set_user_fault_hook(test_hook);
        // A problem-state data segment interrupt on an address no address
        // space maps (the kernel has no current process here).
        // SAFETY: TrapFrame is plain u64 fields; all-zero is valid.
        let mut frame: TrapFrame = unsafe { core::mem::zeroed() };
        frame.vector = 0x380;
        frame.dar = 0x0000_0001_2340_0000;
        frame.srr0 = 0x1000;
        frame.srr1 = Msr::PR.bits() | Msr::IR.bits() | Msr::DR.bits() | Msr::SF.bits();
        let before = mm::stats();
        HOOK_EA.store(0, Ordering::SeqCst);
        mm::on_storage_interrupt(&mut frame);
        let after = mm::stats();
        match prev {
            Some(h) => {
                mm::set_user_fault_hook(h);
            }
            None => {
                mm::clear_user_fault_hook();
            }
        }
        assert_eq!(HOOK_EA.load(Ordering::SeqCst), 0x0000_0001_2340_0000, "hook saw the address");
        assert_eq!(HOOK_REASON.load(Ordering::SeqCst), 2, "reason NoSegment");
        assert_eq!(frame.srr0, 0x1234_5678, "the hook's frame change stands");
        assert_eq!(after.user_faults, before.user_faults + 1);
        assert_eq!(after.data_segment, before.data_segment + 1);
    }

    fn refused_problem_state_fault_without_hook_panics() {
        fn fault() {
            // SAFETY: as above.
            let mut frame: TrapFrame = unsafe { core::mem::zeroed() };
            frame.vector = 0x300;
            frame.dar = 0x0000_0001_2340_0000;
            frame.dsisr = 0x4000_0000;
            frame.srr1 = Msr::PR.bits();
            mm::on_storage_interrupt(&mut frame);
        }
        let prev = mm::clear_user_fault_hook();
        let panicked = crate::harness::panics_with(fault, "unhandled user fault at 0x123400000");
        if let Some(h) = prev {
            mm::set_user_fault_hook(h);
        }
        assert!(panicked, "no hook: the report panics");
    }
}
