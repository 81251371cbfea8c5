//! More AIX services from problem state: `as_seth64`, the 32-bit address
//! model, and a kernel fault inside a service call.

use vmm::aix::{vm_handle, AddressModel, VM_PRIV, VM_UNPRIV, VU_ANYWHERE, V_WORKING};
use vmm::platform::VmFaultReason;

use crate::mm;
use crate::proc::{self, syscall as sys};
use crate::user::{v, Operand, Script};

const PAGE: u64 = 4096;

fn lit(x: u64) -> Operand {
    x.into()
}

kernel_test! {
    fn as_seth64_maps_a_handle_at_a_chosen_address() {
        let at = 0x0710_0000_0000_0000u64;
        let mut s = Script::new();
        s.syscall(sys::VMS_CREATE, &[lit(V_WORKING as u64), lit(PAGE)])
            .save(0)
            .syscall(sys::VM_HANDLE, &[v(0, 0), lit(VM_PRIV as u64)])
            .save(2)
            .syscall(sys::AS_SETH64, &[lit(at), v(2, 0)])
            .store64(at + 0x18, 0x5e7u64)
            .load64(at + 0x18)
            .syscall(sys::AS_GETSRVAL64, &[lit(at)])
            .syscall(sys::AS_SETH64, &[lit(1 << 60), v(2, 0)])
            .syscall(sys::AS_DET64, &[lit(at)])
            .syscall(sys::VMS_DELETE, &[v(0, 0)])
            .load64(at + 0x18)
            .exit(0u64);
        let (pids, r) = proc::run_scripts(&[&s]);
        let o = r.of(pids[0]);
        let h = o.results[1];
        assert_eq!(&o.results[2..], &[0, 0x5e7, 0x5e7, h, sys::EINVAL, 0, 0]);
        let k = o.killed().expect("gone after as_det64");
        assert_eq!(k.address(), Some(at + 0x18));
        assert_eq!(k.reason(), Some(VmFaultReason::NoSegment));
    }

    fn a_32_bit_process_gets_regions_below_4g() {
        let kaddr = mm::with_aix(|a| a.vm_galloc(V_WORKING, PAGE as i64)).expect("vm_galloc");
        let mut s = Script::new();
        s.syscall(sys::VMS_CREATE, &[lit(V_WORKING as u64), lit(PAGE)])
            .save(0)
            .syscall(sys::VM_HANDLE, &[v(0, 0), lit(VM_PRIV as u64)])
            .save(2)
            .syscall(sys::AS_ATT64, &[v(2, 0), lit(0)])
            .save(1)
            .syscall(sys::VM_GUATT, &[lit(kaddr), lit(PAGE), lit(VM_PRIV as u64), lit(VU_ANYWHERE as u64)])
            .save(3)
            .store64(v(1, 0), 1u64)
            .store64(v(3, 0), 2u64)
            .load64(v(1, 0))
            .load64(v(3, 0))
            .syscall(sys::GETADSP, &[])
            .exit(0u64);
        let pid = proc::spawn_with_model(&s, AddressModel::Bits32).expect("spawn");
        let r = proc::run();
        let o = r.of(pid);
        assert_eq!(o.status(), Some(0), "{:?}", o.exit);
        let (att, uatt) = (o.results[2], o.results[3]);
        for a in [att, uatt] {
            let sr = a >> 28;
            assert!(a < 1 << 32 && ((3..=13).contains(&sr) || sr == 15), "region at {a:#x}");
        }
        assert_ne!(att >> 28, uatt >> 28);
        assert_eq!(&o.results[4..8], &[1, 2, 1, 2]);
        let mask = o.results[8];
        for a in [att, uatt] {
            assert_ne!(mask & (1 << (31 - (a >> 28))), 0, "adspace_t shows {a:#x}: {mask:#x}");
        }
        // SAFETY: live vm_galloc memory, kernel read-write.
        assert_eq!(unsafe { (kaddr as *const u64).read_volatile() }, 2);
        mm::with_aix(|a| {
            a.vm_gfree(kaddr, PAGE as i64).expect("vm_gfree");
            a.vms_delete(o.results[0] as i64).expect("vms_delete");
        });
    }

    fn vm_att_rw_with_a_bad_handle_or_offset_answers_an_error_and_the_process_goes_on() {
        // A VM_UNPRIV handle on PP 00 pages gives the kernel no access,
        // an offset past the one-page segment or a misaligned one is
        // invalid: each is refused before the kernel touches memory, so
        // the process gets -errno and continues; a good call still works.
        let vmid = mm::with_aix(|a| a.vms_create(V_WORKING, PAGE as i64)).expect("vms_create");
        let unpriv = vm_handle(vmid, VM_UNPRIV).expect("handle").raw();
        let private = vm_handle(vmid, VM_PRIV).expect("handle").raw();
        let mut s = Script::new();
        s.syscall(sys::VM_ATT_RW, &[lit(unpriv), lit(0), lit(1)])
            .syscall(sys::VM_ATT_RW, &[lit(private), lit(PAGE), lit(2)])
            .syscall(sys::VM_ATT_RW, &[lit(private), lit((1 << 28) - 8), lit(3)])
            .syscall(sys::VM_ATT_RW, &[lit(private), lit(4), lit(4)])
            .syscall(sys::VM_ATT_RW, &[lit(private), lit(8), lit(0x77)])
            .syscall(sys::VM_ATT_RW, &[lit(private), lit(8), lit(0x78)])
            .exit(9u64);
        let (pids, r) = proc::run_scripts(&[&s]);
        let o = r.of(pids[0]);
        assert_eq!(o.status(), Some(9), "{:?}", o.exit);
        assert_eq!(
            o.results,
            [sys::EFAULT, sys::EINVAL, sys::EINVAL, sys::EINVAL, 0x77, 0x78]
        );
        // Every refused call detached its slot again: the segment has no
        // attachment left and is deleted at once.
        mm::with_aix(|a| a.vms_delete(vmid)).expect("vms_delete");
    }

    fn kernel_fault_in_a_service_call_panics_and_the_next_run_works() {
        // A genuine kernel fault inside a system call is a kernel panic
        // with a report: the test makes a vm_galloc page read-only for
        // the kernel (PP 110) behind the syscall's back, and `kwrite`,
        // which only checks the page is allocated, stores to it. The
        // harness catches the panic; the next run cleans up the
        // abandoned one and works.
        fn faulting_run() {
            let kaddr = mm::with_aix(|a| a.vm_galloc(V_WORKING, PAGE as i64)).expect("vm_galloc");
            KADDR.store(kaddr, core::sync::atomic::Ordering::SeqCst);
            mm::with_vmm(|v| {
                let ea = arch_ppc64::addr::EffectiveAddress::new(kaddr);
                let sid = v.mapping_for(ea).expect("galloc mapping").1.translation_sid();
                // vm_galloc maps a view of its working segment.
                let sid = match v.segments().get(sid).expect("segment").kind() {
                    vmm::segment::SegmentKind::View { target, .. } => *target,
                    vmm::segment::SegmentKind::Working => sid,
                };
                let page = ((kaddr >> 12) & 0xffff) as u32;
                let ro = vmm::segment::PageProt {
                    pp: arch_ppc64::structures::hpte::Pp::RO_NONE,
                    no_exec: false,
                };
                v.protect(sid, page..page + 1, ro).expect("protect");
            });
            let mut s = Script::new();
            s.syscall(sys::KWRITE, &[lit(kaddr), lit(5)]).exit(0u64);
            proc::run_scripts(&[&s]);
        }
        static KADDR: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
        assert!(crate::harness::panics_with(faulting_run, "kernel fault at 0x"));
        let mut s = Script::new();
        s.syscall(sys::GETPID, &[]).exit(11u64);
        let (pids, r) = proc::run_scripts(&[&s]);
        assert_eq!(r.of(pids[0]).status(), Some(11));
        assert_eq!(r.outcomes.len(), 1, "nothing of the abandoned run is left");
        let kaddr = KADDR.load(core::sync::atomic::Ordering::SeqCst);
        mm::with_aix(|a| a.vm_gfree(kaddr, PAGE as i64)).expect("vm_gfree");
    }
}
