//! A process cannot exhaust the kernel heap: requests for thousands of
//! segments at once meet the SID quota, and calls that make the kernel
//! keep more bookkeeping answer `-ENOMEM` while the heap is low. Before,
//! `vm_galloc` of 1 TB and a few `vm_guatt`s of it took the 4 MiB heap and
//! the kernel panicked ("memory allocation failed").

use alloc::vec::Vec;

use vmm::aix::{vm_handle, VM_PRIV, VU_ANYWHERE, V_WORKING};

use crate::mm;
use crate::proc::{self, syscall as sys, Exit};
use crate::user::{v, Operand, Script};

const PAGE: u64 = 4096;

fn lit(x: u64) -> Operand {
    x.into()
}

fn guatt(s: &mut Script, var: u8, size: u64) {
    s.syscall(
        sys::VM_GUATT,
        &[
            v(var, 0),
            lit(size),
            lit(VM_PRIV as u64),
            lit(VU_ANYWHERE as u64),
        ],
    );
}

kernel_test! {
    fn huge_segment_requests_answer_enomem_instead_of_taking_the_heap() {
        // What a SID costs the heap (a segment and its kernel view per
        // vm_galloc segment): the quota's worth must fit in the reserve,
        // so one call cannot run the heap out from above it.
        let free = crate::heap::free();
        let kaddr = mm::with_aix(|a| a.vm_galloc(V_WORKING, 16 << 28)).expect("vm_galloc");
        let per_sid = (free - crate::heap::free()) / 32;
        mm::with_aix(|a| a.vm_gfree(kaddr, 16 << 28)).expect("vm_gfree");
        assert!(
            mm::SID_QUOTA * per_sid < sys::HEAP_RESERVE,
            "{} SIDs of {per_sid} bytes do not fit the {}-byte reserve",
            mm::SID_QUOTA,
            sys::HEAP_RESERVE
        );

        let sids_before = mm::with_vmm(|vm| vm.sids_in_use());
        let free_before = crate::heap::free();
        // 1 TB: 4096 segments and their kernel views, over the quota.
        // Before the quota this took 1.9 MB of heap, and the attachments
        // the rest, and the kernel panicked.
        let mut s = Script::new();
        s.syscall(sys::VM_GALLOC, &[lit(V_WORKING as u64), lit(1 << 40)]).save(0);
        for _ in 0..3 {
            guatt(&mut s, 0, 1 << 40);
        }
        s.exit(0u64);
        let (pids, r) = proc::run_scripts(&[&s]);
        let o = r.of(pids[0]);
        assert_eq!(o.exit, Exit::Status(0), "{:?}", o.exit);
        assert_eq!(o.results, [sys::ENOMEM, sys::EINVAL, sys::EINVAL, sys::EINVAL]);
        assert_eq!(mm::with_vmm(|vm| vm.sids_in_use()), sids_before, "the SIDs made went back");
        assert!(crate::heap::free() + (64 << 10) > free_before, "the heap is back");
    }

    fn growing_calls_answer_enomem_while_the_heap_is_low() {
        let vmid = mm::with_aix(|a| a.vms_create(V_WORKING, PAGE as i64)).expect("vms_create");
        let h = vm_handle(vmid, VM_PRIV).expect("handle").raw();
        let mut s = Script::new();
        s.syscall(sys::VMS_CREATE, &[lit(V_WORKING as u64), lit(PAGE)])
            .syscall(sys::VM_GALLOC, &[lit(V_WORKING as u64), lit(PAGE)])
            .syscall(sys::AS_ATT64, &[lit(h), lit(0)])
            .syscall(sys::REPORT, &[lit(7)])
            .syscall(sys::FORK, &[])
            .syscall(sys::VM_HANDLE, &[lit(vmid as u64), lit(VM_PRIV as u64)])
            .syscall(sys::VMS_DELETE, &[lit(vmid as u64)])
            .exit(0u64);
        let pid = proc::spawn(&s).expect("spawn");
        // Hold the heap down to half the reserve while the process runs
        // (in small pieces: one large block may not exist).
        let mut hog: Vec<Vec<u8>> = Vec::new();
        while crate::heap::free() > sys::HEAP_RESERVE / 2 {
            hog.push(Vec::with_capacity(16 << 10));
        }
        let r = proc::run();
        drop(hog);
        let o = r.of(pid);
        assert_eq!(o.exit, Exit::Status(0), "{:?}", o.exit);
        let e = sys::ENOMEM;
        assert_eq!(&o.results[..5], &[e, e, e, e, e], "vms_create, vm_galloc, as_att64, report, fork");
        assert_eq!(o.reports, Vec::<u64>::new());
        assert_eq!(&o.results[5..], &[h, 0], "vm_handle and vms_delete need no more memory");
        assert!(r.children_of(pid).is_empty());
        // With the heap back, the same calls work.
        let mut s = Script::new();
        s.syscall(sys::VMS_CREATE, &[lit(V_WORKING as u64), lit(PAGE)]).save(0)
            .syscall(sys::VMS_DELETE, &[v(0, 0)])
            .exit(0u64);
        let (pids, r) = proc::run_scripts(&[&s]);
        let o = r.of(pids[0]);
        assert!(!sys::is_error(o.results[0]), "vms_create {:#x}", o.results[0]);
        assert_eq!(o.results[1], 0);
    }
}
