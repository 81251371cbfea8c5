//! Real MMU faults reach the hookable vectors: with MSR\[DR\] = 1, a load
//! from a segment the SLB does not map raises a data segment interrupt
//! (0x380), and a load from a mapped segment with no HPTE raises a data
//! storage interrupt (0x300) with DSISR\[NOPTE\] (QEMU mmu-hash64.c; the
//! vectors the vmm fault path will hook).

use core::sync::atomic::{AtomicU64, Ordering};

use arch_ppc64::addr::{Esid, Vsid};
use arch_ppc64::instructions::slb;
use arch_ppc64::registers::msr::Msr;
use arch_ppc64::structures::slb::{SlbEntry, SlbFlags};
use arch_ppc64::structures::{PageSize, SegmentSize};

use crate::trap::{self, TrapFrame, Vector};

static VECTOR: AtomicU64 = AtomicU64::new(0);
static DAR: AtomicU64 = AtomicU64::new(0);
static DSISR: AtomicU64 = AtomicU64::new(0);

/// Records the fault, steps over the faulting access and returns with the
/// kernel's data translation state (SRR1 becomes the MSR after `rfid`):
/// off before `mm::init`, on after.
fn on_data_fault(frame: &mut TrapFrame) {
    VECTOR.store(frame.vector, Ordering::SeqCst);
    DAR.store(frame.dar, Ordering::SeqCst);
    DSISR.store(frame.dsisr, Ordering::SeqCst);
    frame.srr0 += 4;
    if !crate::mm::translation_on() {
        frame.srr1 &= !Msr::DR.bits();
    }
}

/// Loads (or, with `store`, stores) the doubleword at `ea` with data
/// translation on. Returns what the destination register holds afterwards:
/// the sentinel if the fault handler skipped the access.
fn access_translated(ea: u64, store: bool) -> u64 {
    const SENTINEL: u64 = 0x5e47_1ae1;
    let mut value = SENTINEL;
    // SAFETY: only register operations run between setting MSR[DR] and
    // the access, so no other access is translated; the access faults (no
    // SLB entry or no HPTE) and `on_data_fault` skips it and clears DR.
    unsafe {
        if store {
            core::arch::asm!(
                "mfmsr {t}",
                "or {t}, {t}, {dr}",
                "mtmsrd {t}",
                "isync",
                "std {v}, 0({ea})",
                t = out(reg) _,
                dr = in(reg) Msr::DR.bits(),
                ea = in(reg_nonzero) ea,
                v = in(reg) value,
            );
        } else {
            core::arch::asm!(
                "mfmsr {t}",
                "or {t}, {t}, {dr}",
                "mtmsrd {t}",
                "isync",
                "ld {v}, 0({ea})",
                t = out(reg) _,
                dr = in(reg) Msr::DR.bits(),
                ea = in(reg_nonzero) ea,
                v = inout(reg) value,
            );
        }
    }
    value
}

/// An effective address in a segment nothing else uses.
const UNMAPPED_EA: u64 = 0x0000_0456_0000_0100;
/// A segment this test maps in the SLB but never in the HPT.
const MAPPED_EA: u64 = 0x0000_0123_4560_0008;
/// SLB slot for the test entry: the last of the 32.
const TEST_SLB_INDEX: usize = 31;
/// DSISR bit 1 (ISA): no translation found (no HPTE).
const DSISR_NOPTE: u64 = 1 << (63 - 33);
/// DSISR bit 6 (ISA): the access was a store.
const DSISR_STORE: u64 = 1 << (63 - 38);

struct HandlerGuard(Vector, Option<trap::TrapHandler>);

impl Drop for HandlerGuard {
    fn drop(&mut self) {
        trap::set_handler(self.0, self.1);
    }
}

fn hook(v: Vector) -> HandlerGuard {
    HandlerGuard(v, trap::set_handler(v, Some(on_data_fault)))
}

fn reset() {
    VECTOR.store(0, Ordering::SeqCst);
    DAR.store(0, Ordering::SeqCst);
    DSISR.store(0, Ordering::SeqCst);
}

kernel_test! {
    fn load_without_slb_entry_is_a_data_segment_interrupt() {
        let _g = hook(Vector::DataSegment);
        reset();
        let v = access_translated(UNMAPPED_EA, false);
        assert_eq!(VECTOR.load(Ordering::SeqCst), 0x380, "data segment vector");
        assert_eq!(DAR.load(Ordering::SeqCst), UNMAPPED_EA, "DAR = the faulting EA");
        assert_eq!(v, 0x5e47_1ae1, "the load was skipped");
        let msr = arch_ppc64::registers::msr::read();
        assert_eq!(
            msr.contains(Msr::DR),
            crate::mm::translation_on(),
            "back with the kernel's translation state: MSR {:#x}",
            msr.bits()
        );
    }

    fn load_without_hpte_is_a_data_storage_interrupt() {
        let _g = hook(Vector::DataStorage);
        let esid = Esid::new(MAPPED_EA >> 28);
        let vsid = Vsid::new(0x0765_4321);
        let entry = SlbEntry::new(esid, vsid, SegmentSize::M256, PageSize::K4, SlbFlags::empty())
            .and_then(|e| e.with_index(TEST_SLB_INDEX))
            .expect("a valid SLB entry");
        // SAFETY: slot 31 is not a linear-map slot (those are the lowest
        // indexes) and the segment maps nothing the kernel touches; should
        // the VMM have kept an entry there, it reloads it on its next miss.
        unsafe { slb::write_entry(entry) };
        assert_eq!(slb::read_entry(TEST_SLB_INDEX).esid(), esid, "slbmfee reads the entry back");

        reset();
        access_translated(MAPPED_EA, false);
        let load = (VECTOR.load(Ordering::SeqCst), DAR.load(Ordering::SeqCst), DSISR.load(Ordering::SeqCst));
        reset();
        access_translated(MAPPED_EA, true);
        let store = (VECTOR.load(Ordering::SeqCst), DAR.load(Ordering::SeqCst), DSISR.load(Ordering::SeqCst));

        // SAFETY: removes the entry written above.
        unsafe { slb::invalidate_entry(entry) };
        assert!(!slb::read_entry(TEST_SLB_INDEX).is_valid(), "slbie removed the entry");

        assert_eq!(load.0, 0x300, "load: data storage vector");
        assert_eq!(load.1, MAPPED_EA, "load: DAR");
        assert_ne!(load.2 & DSISR_NOPTE, 0, "load: DSISR {:#x} has NOPTE", load.2);
        assert_eq!(load.2 & DSISR_STORE, 0, "load: DSISR {:#x} is not a store", load.2);
        assert_eq!(store.0, 0x300, "store: data storage vector");
        assert_ne!(store.2 & DSISR_NOPTE, 0, "store: DSISR {:#x} has NOPTE", store.2);
        assert_eq!(store.2 & DSISR_STORE, DSISR_STORE, "store: DSISR {:#x} is a store", store.2);
    }
}
