//! HPT pressure from problem state: a process touches more pages than the
//! PTEG pair they all hash to can hold, so inserts evict; every page
//! still reads back what was stored.

use alloc::vec::Vec;

use arch_ppc64::structures::{PageSize, SegmentSize};
use vmm::aix::{vm_handle, VM_PRIV, V_WORKING};
use vmm::sid::Sid;

use crate::mm;
use crate::proc::{self, syscall as sys};
use crate::user::{v, Script};

/// Segments and pages per segment: 6 x 4 = 24 pages for one PTEG pair
/// (16 slots).
const SEGMENTS: u64 = 6;
const SEGMENT_BYTES: i64 = 256 << 20;

kernel_test! {
    fn pages_colliding_in_one_pteg_pair_evict_and_read_back() {
        let mask = mm::layout().hpt_ptegs - 1;
        // Group pair {A, !A}: chosen away from group 0.
        let a = 0x2d5b & mask;
        let mut vmids = Vec::new();
        let mut pages: Vec<(u64, u64)> = Vec::new(); // (segment index, byte offset)
        for k in 0..SEGMENTS {
            let vmid = mm::with_aix(|x| x.vms_create(V_WORKING, SEGMENT_BYTES)).expect("vms_create");
            let vsid = mm::with_vmm(|vm| vm.vsid(Sid::try_new(vmid as u64).expect("sid")));
            // Primary hash = (VSID ^ page) & mask for 4K pages in a 256M
            // segment: page p lands in A, p ^ mask in !A, and bit 15 of
            // the page number is above the mask (32768 PTEGs) or folds in
            // the same way on smaller tables.
            let p = (a ^ vsid.as_u64()) & mask;
            for page in [p, p ^ mask, p | (mask + 1), (p ^ mask) | (mask + 1)] {
                if page < 65536 {
                    let off = page << 12;
                    let h = vmm::hpt::hash(vsid, off, SegmentSize::M256, PageSize::K4) & mask;
                    assert!(h == a || h == (!a & mask), "page {page:#x} hashes to {h:#x}");
                    pages.push((k, off));
                }
            }
            vmids.push(vmid);
        }
        assert!(pages.len() > 16, "{} pages for 16 slots", pages.len());

        let mut s = Script::new();
        for (k, &vmid) in vmids.iter().enumerate() {
            let h = vm_handle(vmid, VM_PRIV).expect("handle").raw();
            s.syscall(sys::AS_ATT64, &[h.into(), 0u64.into()]).quiet().save(k as u8);
        }
        for &(k, off) in &pages {
            s.store64(v(k as u8, off + 8), (k << 40) | off).quiet();
        }
        for &(k, off) in &pages {
            s.load64(v(k as u8, off + 8));
        }
        s.exit(0u64);

        let before = mm::stats();
        let (pids, r) = proc::run_scripts(&[&s]);
        let after = mm::stats();
        let o = r.of(pids[0]);
        assert_eq!(o.status(), Some(0), "{:?}", o.exit);
        let want: Vec<u64> = pages.iter().map(|&(k, off)| (k << 40) | off).collect();
        assert_eq!(o.results, want, "every page reads back its own value");
        let evictions = after.hpt_evictions - before.hpt_evictions;
        assert!(evictions >= (pages.len() - 16) as u64, "evictions {evictions}");
        println!("\n  {} pages in one PTEG pair: {} evictions, {} inserts", pages.len(), evictions, after.hpt_inserts - before.hpt_inserts);
        for vmid in vmids {
            mm::with_aix(|x| x.vms_delete(vmid)).expect("vms_delete");
        }
    }
}
