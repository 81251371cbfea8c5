//! The AIX services called from the process environment (system calls),
//! with real problem-state loads and stores checking the access each
//! attachment gives.

use alloc::vec;

use vmm::aix::{VM_PRIV, VM_UNPRIV, VU_ANYWHERE, V_UREAD, V_WORKING};
use vmm::platform::{Access, VmFaultReason};

use crate::mm;
use crate::proc::{self, syscall as sys, Outcome, RunReport, KILLED};
use crate::user::{v, Operand, Script};

const PAGE: u64 = 4096;

fn lit(x: u64) -> Operand {
    x.into()
}

/// `vars[0] = vm_galloc(type, size)` (recorded as result 0).
fn galloc(s: &mut Script, type_flags: i32, size: u64) {
    s.syscall(sys::VM_GALLOC, &[lit(type_flags as u64), lit(size)])
        .save(0);
}

/// `vars[1] = vm_guatt(vars[0] + off, size, key)` (recorded).
fn guatt(s: &mut Script, off: u64, size: u64, key: i64) {
    s.syscall(
        sys::VM_GUATT,
        &[
            v(0, off),
            lit(size),
            lit(key as u64),
            lit(VU_ANYWHERE as u64),
        ],
    )
    .save(1);
}

/// Frees what the process allocated (result 0 is the vm_galloc address)
/// if it is still allocated, from the kernel process environment.
fn free_galloc(o: &Outcome, size: u64) {
    let kaddr = o.results[0];
    mm::with_aix(|a| {
        if a.allocations().any(|x| x.start == kaddr) {
            a.vm_gfree(kaddr, size as i64).expect("vm_gfree");
        }
    });
}

fn run1(s: &Script) -> (Outcome, RunReport) {
    let (pids, r) = proc::run_scripts(&[s]);
    (r.of(pids[0]).clone(), r)
}

kernel_test! {
    fn vm_priv_attachment_reads_and_writes_and_data_crosses_to_the_kernel() {
        let mut s = Script::new();
        galloc(&mut s, V_WORKING, 2 * PAGE);
        s.syscall(sys::KWRITE, &[v(0, 0), lit(0x5555)]);
        guatt(&mut s, 0, 2 * PAGE, VM_PRIV);
        s.load64(v(1, 0))
            .store64(v(1, PAGE + 8), lit(0x6666))
            .syscall(sys::KREAD, &[v(0, PAGE + 8)])
            .syscall(sys::VM_GUDET, &[v(0, 0), v(1, 0), lit(2 * PAGE), lit(VU_ANYWHERE as u64)])
            .syscall(sys::VM_GFREE, &[v(0, 0), lit(2 * PAGE)])
            .exit(0u64);
        let (o, _) = run1(&s);
        assert_eq!(o.status(), Some(0), "{:?}", o.exit);
        let kaddr = o.results[0];
        assert_eq!(kaddr >> 60, 0xF, "vm_galloc memory is in the kernel half: {kaddr:#x}");
        assert_eq!(o.results[1], 0, "kwrite");
        let uaddr = o.results[2];
        assert!(!sys::is_error(uaddr) && uaddr >> 56 == 0x07, "vm_guatt placed in the shmat area: {uaddr:#x}");
        assert_eq!(&o.results[3..], &[0x5555, 0x6666, 0x6666, 0, 0]);
        free_galloc(&o, 2 * PAGE);
    }

    fn vm_unpriv_with_uread_is_read_only() {
        let mut s = Script::new();
        galloc(&mut s, V_WORKING | V_UREAD, PAGE);
        s.syscall(sys::KWRITE, &[v(0, 16), lit(0x77)]);
        guatt(&mut s, 0, PAGE, VM_UNPRIV);
        s.load64(v(1, 16)).store64(v(1, 16), lit(1)).exit(0u64);
        let (o, _) = run1(&s);
        assert_eq!(o.results[3], 0x77, "the user reads what the kernel wrote");
        let k = o.killed().expect("store killed");
        assert_eq!(k.access(), Some(Access::Store));
        assert_eq!(k.reason(), Some(VmFaultReason::Protection));
        assert_eq!(k.address(), Some(o.results[2] + 16));
        // The kernel's copy is unchanged.
        let kaddr = o.results[0];
        // SAFETY: a live vm_galloc doubleword (freed below), kernel RW.
        let now = unsafe { ((kaddr + 16) as *const u64).read_volatile() };
        assert_eq!(now, 0x77);
        free_galloc(&o, PAGE);
    }

    fn vm_unpriv_without_uread_has_no_access() {
        let mut s = Script::new();
        galloc(&mut s, V_WORKING, PAGE);
        guatt(&mut s, 0, PAGE, VM_UNPRIV);
        s.load64(v(1, 0)).exit(0u64);
        let (o, _) = run1(&s);
        assert!(!sys::is_error(o.results[1]), "vm_guatt {:#x}", o.results[1]);
        let k = o.killed().expect("load killed");
        assert_eq!(k.access(), Some(Access::Load));
        assert_eq!(k.reason(), Some(VmFaultReason::Protection));
        free_galloc(&o, PAGE);
    }

    fn pages_outside_the_attached_range_fault() {
        // Attach only page 1 of a 4-page allocation: page 1 works, page 0
        // of the same segment is outside the window.
        let mut s = Script::new();
        galloc(&mut s, V_WORKING, 4 * PAGE);
        guatt(&mut s, PAGE, PAGE, VM_PRIV);
        s.store64(v(1, 0), lit(3)).load64(v(1, 0)).load64(v(1, (-(PAGE as i64)) as u64)).exit(0u64);
        let (o, _) = run1(&s);
        assert_eq!(&o.results[2..], &[3, 3]);
        let k = o.killed().expect("out of range");
        assert_eq!(k.reason(), Some(VmFaultReason::OutOfRange));
        assert_eq!(k.address(), Some(o.results[1] - PAGE));
        // And the kernel sees the user's store at kaddr + PAGE.
        // SAFETY: live vm_galloc memory (freed below).
        let seen = unsafe { ((o.results[0] + PAGE) as *const u64).read_volatile() };
        assert_eq!(seen, 3);
        free_galloc(&o, 4 * PAGE);
    }

    fn after_vm_gudet_the_address_faults() {
        let mut s = Script::new();
        galloc(&mut s, V_WORKING, PAGE);
        guatt(&mut s, 0, PAGE, VM_PRIV);
        s.store64(v(1, 0), lit(9))
            .syscall(sys::VM_GUDET, &[v(0, 0), v(1, 0), lit(PAGE), lit(VU_ANYWHERE as u64)])
            .load64(v(1, 0))
            .exit(0u64);
        let (o, _) = run1(&s);
        assert_eq!(&o.results[2..], &[9, 0]);
        let k = o.killed().expect("killed after gudet");
        assert_eq!(k.reason(), Some(VmFaultReason::NoSegment));
        assert_eq!(k.address(), Some(o.results[1]));
        free_galloc(&o, PAGE);
    }

    fn after_vm_gfree_the_address_faults_and_vm_gudet_is_einval() {
        let mut s = Script::new();
        galloc(&mut s, V_WORKING, PAGE);
        guatt(&mut s, 0, PAGE, VM_PRIV);
        s.store64(v(1, 0), lit(4))
            .syscall(sys::VM_GFREE, &[v(0, 0), lit(PAGE)])
            .syscall(sys::VM_GUDET, &[v(0, 0), v(1, 0), lit(PAGE), lit(VU_ANYWHERE as u64)])
            .syscall(sys::KREAD, &[v(0, 0)])
            .load64(v(1, 0))
            .exit(0u64);
        let (o, _) = run1(&s);
        assert_eq!(&o.results[2..], &[4, 0, sys::EINVAL, sys::EINVAL]);
        let k = o.killed().expect("killed after gfree");
        assert_eq!(k.address(), Some(o.results[1]));
        assert!(mm::with_aix(|a| a.allocations().all(|x| x.start != o.results[0])));
    }

    fn vm_guatt_is_not_inherited_by_fork() {
        // The parent attaches, forks; the child faults at the address,
        // the parent waits and still reads and writes it.
        let mut s = Script::new();
        galloc(&mut s, V_WORKING, PAGE);
        guatt(&mut s, 0, PAGE, VM_PRIV);
        s.store64(v(1, 0), lit(21)).fork();
        let at = s.here();
        s.branch_ne(0u64, 0);
        s.load64(v(1, 0)).exit(0u64); // child
        let parent = s.here();
        s.patch_target(at, parent);
        s.wait()
            .store64(v(1, 8), lit(22))
            .load64(v(1, 0))
            .load64(v(1, 8))
            .exit(0u64);
        let (pids, r) = proc::run_scripts(&[&s]);
        let p = r.of(pids[0]);
        let c = r.children_of(pids[0])[0];
        let k = c.killed().expect("child faults");
        assert_eq!(k.address(), Some(p.results[1]));
        assert_eq!(k.reason(), Some(VmFaultReason::NoSegment));
        assert_eq!(p.status(), Some(0));
        let n = p.results.len();
        assert_eq!(p.results[n - 4], KILLED | k.cause.code(), "wait saw the kill");
        assert_eq!(&p.results[n - 3..], &[22, 21, 22]);
        free_galloc(p, PAGE);
    }

    fn as_att64_and_as_det64_and_fork_shares_the_region() {
        let mut s = Script::new();
        s.syscall(sys::VMS_CREATE, &[lit(V_WORKING as u64), lit(16 * PAGE)])
            .save(0)
            .syscall(sys::VM_HANDLE, &[v(0, 0), lit(VM_PRIV as u64)])
            .save(2)
            .syscall(sys::AS_ATT64, &[v(2, 0), lit(0x40)])
            .save(1)
            .store64(v(1, 0), lit(5))
            .syscall(sys::AS_GETSRVAL64, &[v(1, 0)])
            .fork();
        let at = s.here();
        s.branch_ne(0u64, 0);
        // child: sees 5 through the inherited region, writes 6
        s.load64(v(1, 0)).report().store64(v(1, 0), lit(6)).exit(0u64);
        let parent = s.here();
        s.patch_target(at, parent);
        s.wait()
            .load64(v(1, 0))
            .syscall(sys::AS_DET64, &[v(1, 0)])
            .syscall(sys::VMS_DELETE, &[v(0, 0)])
            .load64(v(1, 0))
            .exit(0u64);
        let (pids, r) = proc::run_scripts(&[&s]);
        let p = r.of(pids[0]);
        let c = r.children_of(pids[0])[0];
        assert_eq!(c.status(), Some(0));
        assert_eq!(c.reports, vec![5]);
        let addr = p.results[2];
        assert_eq!(addr & 0xfff_ffff, 0x40, "as_att64 keeps the offset");
        assert_eq!(p.results[4], p.results[1], "as_getsrval64 answers the handle");
        let n = p.results.len();
        assert_eq!(&p.results[n - 4..], &[0, 6, 0, 0], "wait, shared data, as_det64, vms_delete");
        let k = p.killed().expect("address gone after as_det64");
        assert_eq!(k.address(), Some(addr));
    }

    fn as_geth64_holds_a_deleted_segment_until_as_puth64() {
        let mut s = Script::new();
        s.syscall(sys::VMS_CREATE, &[lit(V_WORKING as u64), lit(PAGE)])
            .save(0)
            .syscall(sys::VM_HANDLE, &[v(0, 0), lit(VM_PRIV as u64)])
            .save(2)
            .syscall(sys::AS_ATT64, &[v(2, 0), lit(0)])
            .save(1)
            .store64(v(1, 0), lit(8))
            .syscall(sys::AS_GETH64, &[v(1, 0)])
            .save(3)
            .syscall(sys::VMS_DELETE, &[v(0, 0)])
            .load64(v(1, 0))
            .store64(v(1, 8), lit(9))
            .load64(v(1, 8))
            .syscall(sys::AS_PUTH64, &[v(1, 0), v(3, 0)])
            .load64(v(1, 0))
            .exit(0u64);
        let (o, _) = run1(&s);
        assert_eq!(o.results[4], o.results[1], "as_geth64 answers the handle");
        assert_eq!(&o.results[5..], &[0, 8, 9, 9, 0], "usable while held");
        let k = o.killed().expect("gone after the put");
        assert_eq!(k.address(), Some(o.results[2]));
        let sid = o.results[0];
        assert!(mm::with_vmm(|vm| vm.segments().iter().all(|x| x.sid().as_u64() != sid)), "segment destroyed");
    }

    fn as_att_and_as_det_through_getadsp() {
        let mut s = Script::new();
        s.syscall(sys::VMS_CREATE, &[lit(V_WORKING as u64), lit(PAGE)])
            .save(0)
            .syscall(sys::VM_HANDLE, &[v(0, 0), lit(VM_PRIV as u64)])
            .save(2)
            .syscall(sys::GETADSP, &[])
            .syscall(sys::AS_ATT, &[v(2, 0), lit(0x10)])
            .save(1)
            .syscall(sys::GETADSP, &[])
            .store64(v(1, 0), lit(0x33))
            .load64(v(1, 0))
            .syscall(sys::AS_GETH, &[v(1, 0)])
            .save(3)
            .syscall(sys::AS_PUTH, &[v(3, 0)])
            .syscall(sys::AS_GETSRVAL, &[v(1, 0)])
            .syscall(sys::AS_DET, &[v(1, 0)])
            .syscall(sys::VMS_DELETE, &[v(0, 0)])
            .load64(v(1, 0))
            .exit(0u64);
        let (o, _) = run1(&s);
        let eaddr = o.results[3];
        let sr = eaddr >> 28;
        assert!((3..=13).contains(&sr) || sr == 15, "as_att chose segment register {sr}: {eaddr:#x}");
        assert_eq!(eaddr & 0xfff_ffff, 0x10);
        let (before, after) = (o.results[2], o.results[4]);
        assert_eq!(after & !before, 1 << (31 - sr), "getadsp shows register {sr} allocated ({before:#x} -> {after:#x})");
        assert_eq!(&o.results[5..], &[0x33, 0x33, o.results[1], 0, o.results[1], 0, 0]);
        let k = o.killed().expect("detached");
        assert_eq!(k.address(), Some(eaddr));
    }

    fn services_refuse_the_interrupt_environment() {
        let mut s = Script::new();
        s.syscall(sys::IN_INTERRUPT, &[lit(sys::VM_GALLOC), lit(V_WORKING as u64), lit(PAGE)])
            .syscall(sys::IN_INTERRUPT, &[lit(sys::VMS_CREATE), lit(V_WORKING as u64), lit(PAGE)])
            .syscall(sys::VM_GALLOC, &[lit(V_WORKING as u64), lit(PAGE)])
            .save(0)
            .syscall(sys::IN_INTERRUPT, &[lit(sys::VM_GUATT), v(0, 0), lit(PAGE), lit(VM_PRIV as u64), lit(VU_ANYWHERE as u64)])
            .syscall(sys::IN_INTERRUPT, &[lit(sys::VM_GFREE), v(0, 0), lit(PAGE)])
            .syscall(sys::IN_INTERRUPT, &[lit(sys::AS_ATT64), lit(0), lit(0)])
            .syscall(sys::VM_GFREE, &[v(0, 0), lit(PAGE)])
            .exit(0u64);
        let before = mm::with_aix(|a| a.allocations().count());
        let (o, _) = run1(&s);
        assert_eq!(o.status(), Some(0));
        let e = sys::EINVAL;
        assert_eq!(o.results[0], e, "vm_galloc from an interrupt");
        assert_eq!(o.results[1], e, "vms_create from an interrupt");
        assert!(!sys::is_error(o.results[2]));
        assert_eq!(&o.results[3..], &[e, e, e, 0], "vm_guatt, vm_gfree, as_att64 refused; vm_gfree from the process works");
        assert_eq!(mm::with_aix(|a| a.allocations().count()), before);
    }

    fn vm_att_is_kernel_only_and_works_from_both_environments() {
        let mut s = Script::new();
        s.syscall(sys::VMS_CREATE, &[lit(V_WORKING as u64), lit(PAGE)])
            .save(0)
            .syscall(sys::VM_HANDLE, &[v(0, 0), lit(VM_PRIV as u64)])
            .save(2)
            .syscall(sys::VM_ATT_RW, &[v(2, 0), lit(0x80), lit(0xabc)])
            .syscall(sys::IN_INTERRUPT, &[lit(sys::VM_ATT_RW), v(2, 0), lit(0x88), lit(0xdef)])
            .syscall(sys::AS_ATT64, &[v(2, 0), lit(0)])
            .save(1)
            .load64(v(1, 0x80))
            .load64(v(1, 0x88))
            .syscall(sys::AS_DET64, &[v(1, 0)])
            .syscall(sys::VM_ATT, &[v(2, 0), lit(0)])
            .save(3)
            .load64(v(3, 0))
            .exit(0u64);
        let (o, _) = run1(&s);
        assert_eq!(&o.results[2..4], &[0xabc, 0xdef], "the kernel wrote through vm_att");
        assert_eq!(&o.results[5..8], &[0xabc, 0xdef, 0], "the process sees it through as_att64");
        let katt = o.results[8];
        assert_eq!(katt >> 60, 0xF, "vm_att address in the kernel half: {katt:#x}");
        let k = o.killed().expect("problem state cannot use a vm_att address");
        assert_eq!(k.address(), Some(katt));
        // The exit hook took the slot and the segment stays for the kernel to delete.
        let sid = o.results[0];
        mm::with_aix(|a| a.vms_delete(sid as i64)).expect("vms_delete");
    }
}
