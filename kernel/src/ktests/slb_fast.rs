//! The segment-miss fast path (`mm::hwslb`): segments of the kernel and of
//! processes are loaded from the address spaces' SLB words without the
//! VMM's fault handler, evicting round-robin; the shadow the fast path
//! writes is what the SLB holds; what is in no table still reaches the
//! fault handler and gets its report.

use alloc::vec::Vec;

use vmm::aix::{vm_handle, VM_PRIV, V_WORKING};
use vmm::platform::{Access, SlbBackend, VmFaultReason};

use crate::mm::{self, MmStats};
use crate::proc::{self, syscall as sys};
use crate::user::{Operand, Script};

const PAGE: u64 = 4096;
const SEG: u64 = 1 << 28;

fn lit(x: u64) -> Operand {
    x.into()
}

/// SLB entries the VMM loads on demand.
fn on_demand_entries() -> u64 {
    mm::with_vmm(|v| (v.slb().size() - v.slb().bolted()) as u64)
}

/// SLB misses the VMM's fault handler resolved (not the fast path).
fn full_path_loads(s: &MmStats) -> u64 {
    s.slb_misses - s.slb_fast_loads
}

/// Every index of the SLB the VMM manages holds what the manager's slots
/// (written by the fast path and the manager) say, read back with
/// `slbmfee`/`slbmfev`.
fn assert_shadow_is_the_slb() {
    mm::with_vmm(|v| {
        for i in 0..v.slb().size() {
            let hw = v.slb_backend().read(i).expect("index in range");
            match v.slb().entry(i) {
                Some(e) => assert_eq!(hw, e, "index {i}"),
                None => assert!(!hw.is_valid(), "index {i} holds {hw:?}, the shadow nothing"),
            }
        }
    });
}

/// `n` one-page working segments made by the kernel and their handles.
fn segments(n: u64) -> (Vec<i64>, Vec<u64>) {
    (0..n)
        .map(|_| {
            let vmid = mm::with_aix(|a| a.vms_create(V_WORKING, PAGE as i64)).expect("vms_create");
            (vmid, vm_handle(vmid, VM_PRIV).expect("handle").raw())
        })
        .unzip()
}

fn delete(vmids: Vec<i64>) {
    for id in vmids {
        mm::with_aix(|a| a.vms_delete(id)).expect("vms_delete");
    }
}

/// Where a test process maps segment `i` (as_seth64): ESIDs 0x300.., clear
/// of the agent's own.
fn at(i: u64) -> u64 {
    (0x300 + i) * SEG
}

kernel_test! {
    fn kernel_segments_beyond_the_slb_are_reloaded_by_the_fast_path() {
        // Supervisor state, kernel half: more vm_galloc segments than the
        // SLB has on-demand entries, touched in turn, so every touch
        // misses and evicts.
        let n = on_demand_entries() + 9;
        let base = mm::with_aix(|a| a.vm_galloc(V_WORKING, (n * SEG) as i64)).expect("vm_galloc");
        let store = |ea: u64, x: u64| {
            // SAFETY: vm_galloc memory of this test, kernel read-write;
            // faults are resolved by the VMM (no lock is held).
            unsafe { (ea as *mut u64).write_volatile(x) }
        };
        let load = |ea: u64| {
            // SAFETY: as for `store`.
            unsafe { (ea as *const u64).read_volatile() }
        };
        for i in 0..n {
            store(base + i * SEG + 8 * i, 0x5e9_0000 + i);
        }
        let before = mm::stats();
        for round in 0..3 {
            for i in 0..n {
                assert_eq!(load(base + i * SEG + 8 * i), 0x5e9_0000 + i, "round {round}, segment {i}");
            }
        }
        let after = mm::stats();
        assert!(
            after.slb_fast_loads - before.slb_fast_loads >= 3 * n,
            "every load missed: {} fast loads",
            after.slb_fast_loads - before.slb_fast_loads
        );
        assert_eq!(full_path_loads(&after), full_path_loads(&before), "no miss reached the VMM");
        assert_eq!(after.data_segment - before.data_segment, after.slb_fast_loads - before.slb_fast_loads);
        assert_shadow_is_the_slb();
        mm::with_vmm(|v| v.check_invariants()).expect("VMM invariants");
        mm::with_aix(|a| a.vm_gfree(base, (n * SEG) as i64)).expect("vm_gfree");
        assert_shadow_is_the_slb();
    }

    fn a_process_touching_more_segments_than_the_slb_holds_reads_back_its_data() {
        // Problem state: 40 segments at chosen addresses, each written at
        // its own offset and read back twice; every access misses (the
        // agent's own text, data and stack segments are evicted too, so
        // instruction segment misses come through the fast path as well).
        let n = on_demand_entries() + 9;
        let (vmids, handles) = segments(n);
        let mut s = Script::new();
        for (i, &h) in handles.iter().enumerate() {
            s.syscall(sys::AS_SETH64, &[lit(at(i as u64)), lit(h)]).quiet();
        }
        for i in 0..n {
            s.store64(at(i) + 8 * i, 0xda7a_0000 + i).quiet();
        }
        for _ in 0..2 {
            for i in 0..n {
                s.load64(at(i) + 8 * i);
            }
        }
        s.exit(0u64);
        let before = mm::stats();
        let (pids, r) = proc::run_scripts(&[&s]);
        let after = mm::stats();
        let o = r.of(pids[0]);
        assert_eq!(o.status(), Some(0), "{o:?}");
        let want: Vec<u64> = (0..2).flat_map(|_| (0..n).map(|i| 0xda7a_0000 + i)).collect();
        assert_eq!(o.results, want);
        let fast = after.slb_fast_loads - before.slb_fast_loads;
        assert!(fast >= 3 * n, "{fast} fast loads for {n} segments");
        assert!(
            after.instruction_segment > before.instruction_segment,
            "the agent's text was evicted and reloaded"
        );
        assert_eq!(full_path_loads(&after), full_path_loads(&before), "no miss reached the VMM");
        delete(vmids);
    }

    fn an_address_in_no_table_still_kills_with_the_fault_handlers_report() {
        // After the fast path has loaded (and evicted) plenty, a load and a
        // fetch at addresses no table has go to the VMM's fault handler,
        // which kills each process with the report it always gave: the
        // address, the access kind (none for a data segment interrupt,
        // which does not say; fetch for an instruction one), no segment. One user-half address and one in the kernel half.
        let n = on_demand_entries() + 2;
        let (vmids, handles) = segments(n);
        let script = |last: &dyn Fn(&mut Script)| {
            let mut s = Script::new();
            for (i, &h) in handles.iter().enumerate() {
                s.syscall(sys::AS_SETH64, &[lit(at(i as u64)), lit(h)]).quiet();
                s.store64(at(i as u64), lit(i as u64)).quiet();
            }
            s.load64(at(0));
            last(&mut s);
            s.exit(0u64);
            s
        };
        let user_ea = 0x0000_5000_0000_0018;
        let kernel_ea = 0xE000_0000_0000_0040;
        let fetch_ea = 0x0000_6000_0000_0000;
        let scripts = [
            script(&|s: &mut Script| {
                s.load64(user_ea);
            }),
            script(&|s: &mut Script| {
                s.load64(kernel_ea);
            }),
            script(&|s: &mut Script| {
                s.fetch(fetch_ea);
            }),
        ];
        let before = mm::stats();
        let (pids, r) = proc::run_scripts(&scripts.iter().collect::<Vec<_>>());
        let after = mm::stats();
        for (pid, ea) in pids.iter().zip([user_ea, kernel_ea, fetch_ea]) {
            let o = r.of(*pid);
            assert_eq!(o.results, [0], "the mapped segment read back first");
            let k = o.killed().expect("killed");
            assert_eq!(k.address(), Some(ea));
            assert_eq!(k.reason(), Some(VmFaultReason::NoSegment));
            if ea == fetch_ea {
                assert_eq!(k.access(), Some(Access::Fetch));
                assert_eq!(k.srr0, fetch_ea, "killed at the fetch");
            } else {
                assert_eq!(k.access(), None, "a data segment interrupt has no access kind");
                assert!(k.srr0 >= crate::user::TEXT_BASE && k.srr0 < crate::user::TEXT_BASE + crate::user::TEXT_SIZE);
            }
        }
        assert_eq!(after.user_faults - before.user_faults, 3, "three reports from the fault handler");
        assert!(after.slb_fast_loads - before.slb_fast_loads >= 3 * n);
        delete(vmids);
    }

    fn a_segment_detached_after_a_fast_load_faults_on_the_next_access() {
        // The segment is loaded by the fast path (the store), read (so it
        // is in the SLB at the detach), detached with as_det64 (the VMM
        // must slbie what the fast path recorded) and read again: with
        // its SLB entry left behind, that read would still see 7.
        let (vmids, handles) = segments(1);
        let a = at(5) + 0x20;
        let mut s = Script::new();
        s.syscall(sys::AS_SETH64, &[lit(at(5)), lit(handles[0])])
            .store64(a, 7u64)
            .load64(a)
            .syscall(sys::AS_DET64, &[lit(at(5))])
            .load64(a)
            .exit(0u64);
        let before = mm::stats();
        let (pids, r) = proc::run_scripts(&[&s]);
        let after = mm::stats();
        let o = r.of(pids[0]);
        assert_eq!(o.results, [0, 7, 7, 0], "as_seth64, store, load, as_det64");
        let k = o.killed().expect("the access after as_det64 faults");
        assert_eq!(k.address(), Some(a));
        assert_eq!(k.reason(), Some(VmFaultReason::NoSegment));
        assert!(after.slb_fast_loads > before.slb_fast_loads);
        assert_eq!(full_path_loads(&after), full_path_loads(&before), "the segment came by the fast path");
        delete(vmids);
    }
}
