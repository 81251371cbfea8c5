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

/// Pages wanted in one PTEG pair (16 slots).
const PAGES: usize = 24;
/// At most this many segments (tables of more than 2^16 PTEGs give one
/// page of the pair per segment).
const MAX_SEGMENTS: usize = 32;
const SEGMENT_BYTES: i64 = 256 << 20;
/// Segments tried per 2^16 PTEGs of the table: above 2^16 PTEGs only a
/// segment whose VSID agrees with the group above its 16 page bits has a
/// page in it (one in 2^(bits - 16) per group of the pair), so a larger
/// table needs more tries for the same pages.
const TRIES_PER_2_16_PTEGS: u64 = 96;

kernel_test! {
    fn pages_colliding_in_one_pteg_pair_evict_and_read_back() {
        let mask = mm::layout().hpt_ptegs - 1;
        // Group pair {A, !A}: chosen away from group 0.
        let a = 0x2d5b & mask;
        let pair = [a, !a & mask];
        let mut vmids = Vec::new();
        let mut pages: Vec<(u64, u64)> = Vec::new(); // (segment index, byte offset)
        let mut tries = 0;
        let max_tries = TRIES_PER_2_16_PTEGS * ((mask + 1) >> 16).max(1);
        while pages.len() < PAGES && vmids.len() < MAX_SEGMENTS && tries < max_tries {
            tries += 1;
            let vmid = mm::with_aix(|x| x.vms_create(V_WORKING, SEGMENT_BYTES)).expect("vms_create");
            let vsid = mm::with_vmm(|vm| vm.vsid(Sid::try_new(vmid as u64).expect("sid")));
            // Primary hash of 4K page q of a 256M segment = (VSID ^ q) &
            // mask: the pages q = (g ^ VSID) & mask + k * (mask + 1) below
            // 65536 land in group g (their secondary is the other one).
            let k = vmids.len() as u64;
            let before = pages.len();
            for g in pair {
                let mut q = (g ^ vsid.as_u64()) & mask;
                while q < 65536 && pages.len() < PAGES {
                    let off = q << 12;
                    let h = vmm::hpt::hash(vsid, off, SegmentSize::M256, PageSize::K4) & mask;
                    assert_eq!(h, g, "page {q:#x} hashes to {h:#x}");
                    pages.push((k, off));
                    q += mask + 1;
                }
            }
            if pages.len() == before {
                // This VSID cannot reach the pair (tables above 2^16 PTEGs).
                mm::with_aix(|x| x.vms_delete(vmid)).expect("vms_delete");
            } else {
                vmids.push(vmid);
            }
        }
        assert!(pages.len() > 16, "{} pages for 16 slots", pages.len());

        let mut s = Script::new();
        // as_att64 places the regions at consecutive free ESIDs of the
        // shmat area (checked below from the recorded addresses), so
        // segment k is at vars[0] + k * 256M.
        for (k, &vmid) in vmids.iter().enumerate() {
            let h = vm_handle(vmid, VM_PRIV).expect("handle").raw();
            s.syscall(sys::AS_ATT64, &[h.into(), 0u64.into()]);
            if k == 0 {
                s.save(0);
            }
        }
        let at = |k: u64, off: u64| v(0, (k << 28) + off + 8);
        for &(k, off) in &pages {
            s.store64(at(k, off), (k << 40) | off).quiet();
        }
        for &(k, off) in &pages {
            s.load64(at(k, off));
        }
        s.exit(0u64);

        let before = mm::stats();
        let (pids, r) = proc::run_scripts(&[&s]);
        let after = mm::stats();
        let o = r.of(pids[0]);
        assert_eq!(o.status(), Some(0), "{:?}", o.exit);
        let n = vmids.len();
        let base = o.results[0];
        for k in 0..n {
            assert_eq!(o.results[k], base + ((k as u64) << 28), "region {k} placed next to the previous");
        }
        let want: Vec<u64> = pages.iter().map(|&(k, off)| (k << 40) | off).collect();
        assert_eq!(o.results[n..], want[..], "every page reads back its own value");
        let evictions = after.hpt_evictions - before.hpt_evictions;
        assert!(evictions >= (pages.len() - 16) as u64, "evictions {evictions}");
        println!("\n  {} pages in one PTEG pair: {} evictions, {} inserts", pages.len(), evictions, after.hpt_inserts - before.hpt_inserts);
        for vmid in vmids {
            mm::with_aix(|x| x.vms_delete(vmid)).expect("vms_delete");
        }
    }
}
