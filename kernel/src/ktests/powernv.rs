//! powernv only: the table the kernel owns. Where the MMU finds it (SDR1
//! or the partition table named by PTCR), the layout the processor reads
//! (ISA 3.0 on POWER9/10), and that removing or re-protecting an entry
//! through `vmm::native::NativeHpt` with `vmm::tlbie::Tlbie` really drops
//! the translation the processor cached (QEMU's TLB keeps it otherwise)
//! and hands back the R and C bits the processor set in memory — on
//! another processor too (`tlbie` is broadcast), with `--smp` 2 or more.

use core::sync::atomic::{AtomicU64, Ordering};

use arch_ppc64::addr::{EffectiveAddress, Esid, PhysAddr, PtegIndex, Vsid};
use arch_ppc64::instructions::slb;
use arch_ppc64::registers::spr::{Ptcr, Sdr1};
use arch_ppc64::structures::hpte::{Hpte, Pp};
use arch_ppc64::structures::partition::{self, hpt_shift_for_ram};
use arch_ppc64::structures::slb::{SlbEntry, SlbFlags};
use arch_ppc64::structures::{PageSize, SegmentSize};
use vmm::native::{HpteFormat, NativeHpt};
use vmm::platform::{HptBackend, RemoveCondition};
use vmm::tlbie::Tlbie;

use crate::bootinfo::{self, real_to_virt, virt_to_real};
use crate::mm::{self, hpt::HptMemory, KernelHpt};
use crate::platform::{self, powernv};
use crate::trap::{self, TrapFrame, Vector};

fn powernv_only() {
    if !platform::is_powernv() {
        crate::harness::skip("powernv only: the hypervisor owns the table on pseries");
    }
}

/// The kernel's table: real address, bytes and layout.
fn table() -> (u64, usize, HpteFormat) {
    mm::with_vmm(|v| match v.hpt_backend() {
        KernelHpt::Native(t) => (
            virt_to_real(t.as_bytes().as_ptr() as u64),
            t.as_bytes().len(),
            t.format(),
        ),
        KernelHpt::Papr(_) => panic!("powernv runs the PAPR backend"),
    })
}

static DSI_COUNT: AtomicU64 = AtomicU64::new(0);
static DSI_DAR: AtomicU64 = AtomicU64::new(0);
static DSI_DSISR: AtomicU64 = AtomicU64::new(0);

/// The test segment of the `tlbie` tests: a VSID no one uses (the VMM's
/// are below 2^35, the linear map's from 2^37) at an EA outside every
/// kernel region, 4K pages.
const TEST_VSID: u64 = (1 << 36) + 0x5a5;
/// See [`TEST_VSID`].
const TEST_EA: u64 = 0xd000_0000_1234_5000;

fn test_slb_entry() -> SlbEntry {
    SlbEntry::new(
        Esid::of(EffectiveAddress::new(TEST_EA)),
        Vsid::new(TEST_VSID),
        SegmentSize::M256,
        PageSize::K4,
        SlbFlags::KP,
    )
    .unwrap()
}

/// The SLB entry a remote processor lent its last index from, to put
/// back (ESID word, VSID word).
static REMOTE_SAVED: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// On a remote processor (cross-call): lends the SLB's last index to the
/// test segment and loads from it, which caches the translation there.
fn remote_load_through_the_test_segment(_: u64) -> u64 {
    let last = mm::layout().slb_size - 1;
    REMOTE_SAVED[0].store(slb::slbmfee(last as u64), Ordering::SeqCst);
    REMOTE_SAVED[1].store(slb::slbmfev(last as u64), Ordering::SeqCst);
    // SAFETY: this processor runs nothing else meanwhile (the cross-call
    // handler, EE = 0) and the test segment is mapped by the caller; the
    // index is given back by `remote_load_again_and_restore`.
    unsafe {
        slb::write_entry(test_slb_entry().with_index(last).unwrap());
        (TEST_EA as *const u64).read_volatile()
    }
}

/// On the same remote processor: loads again (the caller removed the
/// entry: a DSI, counted by [`on_dsi`]) and gives the SLB index back.
/// Replies the DSI count after the load.
fn remote_load_again_and_restore(_: u64) -> u64 {
    let last = mm::layout().slb_size - 1;
    // SAFETY: as in `remote_load_through_the_test_segment`; a load that
    // faults is stepped over by the test's handler.
    unsafe {
        let _ = (TEST_EA as *const u64).read_volatile();
        slb::invalidate_entry(test_slb_entry());
        let saved_e = REMOTE_SAVED[0].load(Ordering::SeqCst);
        if saved_e & arch_ppc64::structures::slb::esid_word::V != 0 {
            slb::slbmte(
                REMOTE_SAVED[1].load(Ordering::SeqCst),
                saved_e | last as u64,
            );
        }
    }
    arch_ppc64::instructions::barrier::isync();
    DSI_COUNT.load(Ordering::SeqCst)
}

/// Records a data storage interrupt and steps over the access.
fn on_dsi(frame: &mut TrapFrame) {
    DSI_COUNT.fetch_add(1, Ordering::SeqCst);
    DSI_DAR.store(frame.dar, Ordering::SeqCst);
    DSI_DSISR.store(frame.dsisr, Ordering::SeqCst);
    frame.srr0 += 4;
}

kernel_test! {
    fn opal_lies_in_reserved_memory_no_frame_comes_from() {
        powernv_only();
        let info = bootinfo::get();
        let reserved = info.reserved.as_slice();
        let opal = powernv::opal_base();
        assert!(
            reserved.iter().any(|r| r.base <= opal && opal < r.end()),
            "OPAL at {opal:#x} is not in {reserved:x?}"
        );
        let usable = crate::frame::usable_ranges(info).expect("usable ranges");
        for u in usable.as_slice() {
            for r in reserved {
                assert!(u.end <= r.base || r.end() <= u.start, "usable {u:x?} overlaps reserved {r:x?}");
            }
        }
        for (i, r) in reserved.iter().enumerate() {
            assert!(!reserved[..i].contains(r), "{r:x?} listed twice");
        }
        // The allocator's own view agrees: OPAL's image is in none of
        // its ranges.
        let managed = crate::frame::with(|fa| fa.usable().as_slice().iter().any(|u| u.start <= opal && opal < u.end));
        assert!(!managed, "OPAL's frame at {opal:#x} is the allocator's");
    }

    fn the_mmu_finds_the_kernels_table_of_ram_over_128() {
        powernv_only();
        let (base, len, format) = table();
        let info = bootinfo::get();
        let shift = hpt_shift_for_ram(info.ram_size());
        assert_eq!(len, 1 << shift, "2^{shift} bytes for {} MiB", info.ram_size() >> 20);
        let want = partition::htab_word(PhysAddr::new(base), shift).expect("aligned table");
        if powernv::isa300(info.cpu.pvr) {
            assert_eq!(format, HpteFormat::Isa300);
            let ptcr = Ptcr::read();
            assert_eq!(ptcr & partition::ptcr::PATS, 0, "a 4 KiB partition table");
            let patb = ptcr & partition::ptcr::PATB;
            // SAFETY: the partition table is a kernel frame of the linear
            // map; entry 0 (LPID 0) is read only.
            let entry = unsafe { (real_to_virt(patb) as *const [u64; 2]).read_volatile() };
            assert_eq!(entry, [want, 0], "partition table entry 0: hash, HTABORG | HTABSIZE");
        } else {
            assert_eq!(format, HpteFormat::Pre300);
            assert_eq!(Sdr1::read(), want);
        }
    }

    fn the_linear_maps_entries_are_in_the_processors_layout() {
        powernv_only();
        let (base, len, format) = table();
        let map = mm::layout().linear.expect("linear map");
        let pa = 0u64;
        let want = map.hpte_for(pa);
        let bytes = real_to_virt(base) as *const u8;
        // SAFETY: the table's memory, read only, under the VMM lock's
        // protection of its contents (bolted entries never change).
        let raw = unsafe { core::slice::from_raw_parts(bytes, len) };
        let mut found = None;
        for (i, e) in raw.chunks_exact(16).enumerate() {
            let h = Hpte::from_be_bytes(e.try_into().unwrap());
            let pre = if format == HpteFormat::Isa300 { h.from_isa300() } else { h };
            if pre.is_valid() && pre.avpn_word() == want.avpn_word() && pre.real_address() == want.real_address() {
                found = Some((i, h, pre));
            }
        }
        let (_, raw_entry, pre) = found.expect("the linear map's first page is in the table");
        assert!(pre.is_bolted());
        assert_eq!(pre.segment_size(), Some(map.ssize));
        if format == HpteFormat::Isa300 {
            assert_eq!(raw_entry.v >> 52, 0, "ISA 3.0: doubleword 0 bits 0:11 reserved");
            assert_eq!((raw_entry.r >> 58) & 3, map.ssize.b_code(), "ISA 3.0: B in doubleword 1 bits 4:5");
            assert_eq!(pre.to_isa300(), Some(raw_entry));
        } else {
            assert_eq!(raw_entry, pre);
        }
    }

    fn tlbie_drops_removed_and_reprotected_translations_and_c_comes_from_memory() {
        powernv_only();
        let frame = crate::frame::allocate().expect("a frame");
        let pa = frame.start_address();
        let (base, len, format) = table();
        let vsid = Vsid::new(TEST_VSID);
        let ea = TEST_EA;
        let h = Hpte::mapping(vsid, EffectiveAddress::new(ea), SegmentSize::M256, PageSize::K4, PhysAddr::new(pa), Pp::RW_NONE)
            .unwrap()
            .with_referenced(false);
        let slb_entry = test_slb_entry();
        let last = mm::layout().slb_size - 1;
        let prev_dsi = trap::set_handler(Vector::DataStorage, Some(on_dsi));
        DSI_COUNT.store(0, Ordering::SeqCst);
        let outcome = mm::with_vmm(|_| {
            // A second handle on the kernel's table: the VMM lock is held,
            // so nothing else touches it, and the entry is gone before the
            // lock is released.
            // SAFETY: see above; the memory outlives the handle.
            let memory = unsafe { HptMemory::new(real_to_virt(base) as *mut u8, len) };
            let ptegs = (len / vmm::native::PTEG_BYTES) as u64;
            let mut t = NativeHpt::with_tlb(memory, Tlbie::new(ptegs, 0)).unwrap().with_format(format);
            let group = PtegIndex::new(vmm::hpt::hash(vsid, ea, SegmentSize::M256, PageSize::K4) & (ptegs - 1));
            let ptex = t.insert(group, None, h).expect("a free slot");
            // The SLB's last index, borrowed: saved and put back, and
            // nothing else runs on this processor meanwhile (EE = 0, the
            // VMM lock held, only this segment and the linear map used).
            let (saved_e, saved_v) = (slb::slbmfee(last as u64), slb::slbmfev(last as u64));
            let p = real_to_virt(pa) as *mut u64;
            let v = ea as *mut u64;
            // SAFETY: as above; `ea` translates to `pa`, a frame of ours.
            let r = unsafe {
                slb::write_entry(slb_entry.with_index(last).unwrap());
                v.write_volatile(0x1234);
                let through_linear = p.read_volatile();
                let fresh = t.read(ptex).unwrap();
                // Read-only for the kernel too (Kp = 1, PP = 11): the
                // cached writable translation must go.
                t.protect(ptex, h.avpn_word(), Pp::RO_RO, false).unwrap();
                let after_protect = t.tlb().issued();
                v.write_volatile(0x5678);
                let dsi_after_protect = DSI_COUNT.load(Ordering::SeqCst);
                let read_ro = v.read_volatile();
                let removed = t.remove(ptex, RemoveCondition::Absolute).unwrap();
                let rb = t.tlb().last_rb();
                let _ = v.read_volatile();
                let dsi_after_remove = DSI_COUNT.load(Ordering::SeqCst);
                slb::invalidate_entry(slb_entry);
                if saved_e & arch_ppc64::structures::slb::esid_word::V != 0 {
                    slb::slbmte(saved_v, saved_e | last as u64);
                }
                (through_linear, fresh, after_protect, dsi_after_protect, read_ro, removed, rb, dsi_after_remove, t.tlb().issued())
            };
            r
        });
        trap::set_handler(Vector::DataStorage, prev_dsi);
        let (through_linear, fresh, after_protect, dsi_after_protect, read_ro, removed, rb, dsi_after_remove, issued) = outcome;
        assert_eq!(through_linear, 0x1234, "the store went through the new entry");
        assert!(fresh.referenced() && fresh.changed(), "the MMU set R and C in memory: {fresh:?}");
        assert_eq!(after_protect, 1, "one tlbie for the protect");
        assert_eq!(dsi_after_protect, 1, "a store after the protect faults");
        assert_eq!(DSI_DAR.load(Ordering::SeqCst), ea, "at the test page");
        assert_eq!(read_ro, 0x1234, "loads still translate, the refused store left the data");
        assert!(removed.changed() && removed.referenced(), "R and C survive the protect and come back from the remove");
        assert_eq!(rb, Some(vmm::tlbie::tlbie_rb(vmm::hpt::VirtualPage::from_offset(vsid, ea & 0x0fff_ffff, SegmentSize::M256, PageSize::K4).unwrap())));
        assert_eq!(dsi_after_remove, 2, "a load after the remove faults: the TLB dropped it");
        assert_eq!(issued, 2);
        crate::frame::deallocate(frame).unwrap();
    }
}

kernel_test! {
    fn a_removed_entry_stops_translating_on_another_processor_too() {
        powernv_only();
        if crate::smp::online_count() < 2 {
            crate::harness::skip("needs a second processor (qemu-run.sh --smp 2 or more)");
        }
        let frame = crate::frame::allocate().expect("a frame");
        let pa = frame.start_address();
        // SAFETY: a frame of ours, reached through the linear map.
        unsafe { (real_to_virt(pa) as *mut u64).write_volatile(0xfeed) };
        let (base, len, format) = table();
        let vsid = Vsid::new(TEST_VSID);
        let h = Hpte::mapping(vsid, EffectiveAddress::new(TEST_EA), SegmentSize::M256, PageSize::K4, PhysAddr::new(pa), Pp::RW_NONE).unwrap();
        let prev_dsi = trap::set_handler(Vector::DataStorage, Some(on_dsi));
        DSI_COUNT.store(0, Ordering::SeqCst);
        let run = |f: fn(u64) -> u64| {
            crate::smp::cross_call(1, crate::smp::Request::Run { f, arg: 0 })
                .unwrap_or_else(|e| panic!("cross-call to CPU 1: {e:?}"))
        };
        let (before, after) = mm::with_vmm(|_| {
            // SAFETY: a second handle on the kernel's table, under the VMM
            // lock, as in the single-processor test.
            let memory = unsafe { HptMemory::new(real_to_virt(base) as *mut u8, len) };
            let ptegs = (len / vmm::native::PTEG_BYTES) as u64;
            let mut t = NativeHpt::with_tlb(memory, Tlbie::new(ptegs, 0)).unwrap().with_format(format);
            let group = PtegIndex::new(vmm::hpt::hash(vsid, TEST_EA, SegmentSize::M256, PageSize::K4) & (ptegs - 1));
            let ptex = t.insert(group, None, h).expect("a free slot");
            let before = run(remote_load_through_the_test_segment);
            // This processor never used the entry: only the broadcast
            // tlbie can take it out of CPU 1's TLB.
            t.remove(ptex, RemoveCondition::Absolute).unwrap();
            (before, run(remote_load_again_and_restore))
        });
        trap::set_handler(Vector::DataStorage, prev_dsi);
        crate::frame::deallocate(frame).unwrap();
        assert_eq!(before, 0xfeed, "CPU 1 read the page through the entry");
        assert_eq!(after, 1, "CPU 1's next load faults: the tlbie reached its TLB");
        assert_eq!(DSI_DAR.load(Ordering::SeqCst), TEST_EA);
    }
}
