//! A process that faults is killed with a report; the others and the
//! kernel go on.

use alloc::vec;

use vmm::platform::{Access, VmFaultReason};

use crate::proc::{self, syscall as sys, Exit, KILLED};
use crate::user::{self, Script};

/// A process that stores, reports and exits 5: the survivor of each test.
fn survivor() -> Script {
    let mut s = Script::new();
    s.store64(user::SCRATCH_BASE, 99u64)
        .syscall(sys::YIELD, &[])
        .load64(user::SCRATCH_BASE)
        .exit(5u64);
    s
}

kernel_test! {
    fn load_from_an_unmapped_address_kills_only_that_process() {
        let mut bad = Script::new();
        bad.store64(user::SCRATCH_BASE, 1u64)
            .load64(0x0000_5000_0000_0000u64)
            .exit(0u64);
        let ok = survivor();
        let (pids, r) = proc::run_scripts(&[&bad, &ok]);
        let k = r.of(pids[0]).killed().expect("killed");
        assert_eq!(k.pid, pids[0]);
        assert_eq!(k.address(), Some(0x0000_5000_0000_0000));
        assert_eq!(k.reason(), Some(VmFaultReason::NoSegment));
        assert!(k.srr0 >= user::TEXT_BASE && k.srr0 < user::TEXT_BASE + user::TEXT_SIZE);
        // The results before the fault are kept.
        assert_eq!(r.of(pids[0]).results, vec![1]);
        assert_eq!(r.of(pids[1]).exit, Exit::Status(5));
        assert_eq!(r.of(pids[1]).results, vec![99, 0, 99]);
    }

    fn store_to_read_only_text_kills_with_protection() {
        let mut bad = Script::new();
        bad.load64(user::TEXT_BASE).store64(user::TEXT_BASE + 0x100, 0u64).exit(0u64);
        let (pids, r) = proc::run_scripts(&[&bad, &survivor()]);
        let o = r.of(pids[0]);
        let k = o.killed().expect("killed");
        assert_eq!(k.access(), Some(Access::Store));
        assert_eq!(k.reason(), Some(VmFaultReason::Protection));
        assert_eq!(k.address(), Some(user::TEXT_BASE + 0x100));
        // The load of the text worked: the agent's first instruction.
        assert_eq!(o.results.len(), 1);
        assert_eq!(o.results[0] >> 32, 0x7c7f_1b78, "mr r31, r3 starts the agent");
        assert_eq!(r.of(pids[1]).status(), Some(5));
    }

    fn fetch_from_no_execute_data_kills_and_text_executes() {
        let mut s = Script::new();
        s.fetch(user::probe_address())
            .store64(user::SCRATCH_BASE, user::LI_R3_42_BLR)
            .fetch(user::SCRATCH_BASE)
            .exit(0u64);
        let (pids, r) = proc::run_scripts(&[&s, &survivor()]);
        let o = r.of(pids[0]);
        assert_eq!(o.results, vec![42, user::LI_R3_42_BLR]);
        let k = o.killed().expect("killed");
        assert_eq!(k.access(), Some(Access::Fetch));
        assert_eq!(k.reason(), Some(VmFaultReason::NoExecute));
        assert_eq!(k.srr0, user::SCRATCH_BASE);
        assert_eq!(r.of(pids[1]).status(), Some(5));
    }

    fn kernel_memory_is_closed_to_problem_state() {
        // The linear map (Ks = 0, Kp = 1, PP 00) has no problem-state
        // access: a load of the kernel's own image kills.
        let kaddr = crate::bootinfo::KERNEL_VIRT_BASE + 0x40_0000;
        let mut s = Script::new();
        s.load64(kaddr).exit(0u64);
        let (pids, r) = proc::run_scripts(&[&s]);
        let k = r.of(pids[0]).killed().expect("killed");
        assert_eq!(k.address(), Some(kaddr));
        assert_eq!(k.access(), Some(Access::Load));
        assert_eq!(k.reason(), Some(VmFaultReason::Protection));
        assert_eq!(r.of(pids[0]).results.len(), 0);
    }

    fn wait_reports_a_killed_child_and_the_parent_goes_on() {
        let mut s = Script::new();
        s.fork();
        let at = s.here();
        s.branch_ne(0u64, 0);
        s.store64(user::TEXT_BASE, 1u64).exit(0u64); // child: killed
        let parent = s.here();
        s.patch_target(at, parent);
        s.wait()
            .report()
            .set(user::v(user::SYSCALL_R5_VAR, 0))
            .report()
            .exit(3u64);
        let (pids, r) = proc::run_scripts(&[&s]);
        let kid = r.children_of(pids[0])[0];
        let k = kid.killed().expect("child killed");
        assert_eq!(k.access(), Some(Access::Store));
        assert_eq!(k.reason(), Some(VmFaultReason::Protection));
        assert_eq!(k.address(), Some(user::TEXT_BASE));
        assert_eq!(r.of(pids[0]).status(), Some(3));
        assert_eq!(r.of(pids[0]).reports, vec![KILLED | k.cause.code(), 1], "killed flag in r5");
        assert!(proc::stats().killed >= 1);
    }
}

kernel_test! {
    fn wait_tells_an_exit_status_that_looks_like_a_kill_from_a_kill() {
        // The child exits with exactly what a kill would report: only r5
        // (the killed flag) tells them apart.
        let fake = KILLED | 0x100;
        let mut s = Script::new();
        s.fork();
        let at = s.here();
        s.branch_ne(0u64, 0);
        s.exit(fake); // child
        let parent = s.here();
        s.patch_target(at, parent);
        s.wait()
            .report()
            .set(user::v(user::SYSCALL_R5_VAR, 0))
            .report()
            .exit(3u64);
        let (pids, r) = proc::run_scripts(&[&s]);
        let kid = r.children_of(pids[0])[0];
        assert_eq!(kid.exit, Exit::Status(fake));
        assert_eq!(r.of(pids[0]).reports, vec![fake, 0], "not killed: r5 = 0");
    }

    fn privileged_instruction_in_problem_state_kills_with_a_program_interrupt() {
        // Code planted in an as_att64 region (PP 00 with Kp = 0: user
        // read-write, executable) runs: `li r3, 42; blr` answers 42, then
        // `mfmsr r3; blr` is privileged in problem state.
        const MFMSR_R3_BLR: u64 = 0x7c60_00a6_4e80_0020;
        let vmid = crate::mm::with_aix(|a| a.vms_create(vmm::aix::V_WORKING, 4096)).expect("vms_create");
        let h = vmm::aix::vm_handle(vmid, vmm::aix::VM_PRIV).expect("handle").raw();
        let mut s = Script::new();
        s.syscall(sys::AS_ATT64, &[h.into(), 0u64.into()])
            .save(0)
            .store64(crate::user::v(0, 0), user::LI_R3_42_BLR)
            .fetch(crate::user::v(0, 0))
            .store64(crate::user::v(0, 0x80), MFMSR_R3_BLR)
            .fetch(crate::user::v(0, 0x80))
            .exit(0u64);
        let (pids, r) = proc::run_scripts(&[&s, &survivor()]);
        let o = r.of(pids[0]);
        assert_eq!(&o.results[1..], &[user::LI_R3_42_BLR, 42, MFMSR_R3_BLR]);
        let k = o.killed().expect("killed");
        // SRR1 bit 45 (0x4_0000): privileged instruction (ISA program
        // interrupt cause bits).
        match k.cause {
            proc::KillCause::Program { srr1 } => assert_ne!(srr1 & 0x4_0000, 0, "SRR1 {srr1:#x}"),
            c => panic!("killed for {c:?}"),
        }
        assert_eq!(k.srr0, o.results[0] + 0x80);
        assert_eq!(r.of(pids[1]).status(), Some(5));
        crate::mm::with_aix(|a| a.vms_delete(vmid)).expect("vms_delete");
    }

    fn floating_point_in_problem_state_kills_with_fp_unavailable() {
        // `fmr f0, f0; blr`: processes run with MSR[FP] = 0, so this is
        // a floating-point unavailable interrupt (0x800), which has no
        // handler: the process dies, the kernel and the survivor go on.
        const FMR_F0_BLR: u64 = 0xfc00_0090_4e80_0020;
        planted_code_kills_with_vector(FMR_F0_BLR, 0x800);
    }

    fn vector_instruction_in_problem_state_kills_with_vmx_unavailable() {
        // `vor v0, v0, v0; blr` with MSR[VEC] = 0: vector unavailable
        // (0xf20).
        const VOR_V0_BLR: u64 = 0x1000_0484_4e80_0020;
        planted_code_kills_with_vector(VOR_V0_BLR, 0xf20);
    }

    fn unknown_agent_command_traps_and_kills() {
        let mut s = Script::new();
        s.store64(user::SCRATCH_BASE, 1u64).invalid().exit(0u64);
        let (pids, r) = proc::run_scripts(&[&s]);
        let k = r.of(pids[0]).killed().expect("killed");
        match k.cause {
            // SRR1 bit 46 (0x2_0000): trap.
            proc::KillCause::Program { srr1 } => assert_ne!(srr1 & 0x2_0000, 0, "SRR1 {srr1:#x}"),
            c => panic!("killed for {c:?}"),
        }
        assert_eq!(r.of(pids[0]).results, vec![1]);
    }
}

/// Plants `code` (two instructions, big-endian) in an executable as_att64
/// region, fetches it from problem state and checks the process is killed
/// for an unhandled interrupt at `vector` while a second process exits
/// normally.
fn planted_code_kills_with_vector(code: u64, vector: u64) {
    let vmid =
        crate::mm::with_aix(|a| a.vms_create(vmm::aix::V_WORKING, 4096)).expect("vms_create");
    let h = vmm::aix::vm_handle(vmid, vmm::aix::VM_PRIV)
        .expect("handle")
        .raw();
    let mut s = Script::new();
    s.syscall(sys::AS_ATT64, &[h.into(), 0u64.into()])
        .save(0)
        .store64(crate::user::v(0, 0), code)
        .fetch(crate::user::v(0, 0))
        .exit(0u64);
    let (pids, r) = proc::run_scripts(&[&s, &survivor()]);
    let o = r.of(pids[0]);
    assert_eq!(&o.results[1..], &[code]);
    let k = o.killed().expect("killed");
    match k.cause {
        proc::KillCause::Unhandled { vector: v, srr1 } => {
            assert_eq!(v, vector);
            let pr = arch_ppc64::registers::msr::Msr::PR.bits();
            assert_ne!(srr1 & pr, 0, "taken in problem state: SRR1 {srr1:#x}");
        }
        c => panic!("killed for {c:?}"),
    }
    assert_eq!(k.srr0, o.results[0]);
    assert_eq!(k.cause.code(), 0x1000 + vector);
    assert_eq!(r.of(pids[1]).status(), Some(5));
    crate::mm::with_aix(|a| a.vms_delete(vmid)).expect("vms_delete");
}
