//! Processes: problem state, system calls, exit status, isolation, fork
//! and wait, preemption.

use alloc::vec;

use crate::proc::{self, syscall as sys, Exit};
use crate::user::{self, v, Script};

kernel_test! {
    fn process_exits_with_its_status() {
        let mut s = Script::new();
        s.syscall(sys::GETPID, &[]).exit(42u64);
        let (pids, r) = proc::run_scripts(&[&s]);
        let o = r.of(pids[0]);
        assert_eq!(o.exit, Exit::Status(42));
        assert_eq!(o.results, vec![pids[0].0 as u64]);
        assert!(o.dispatches >= 1);
    }

    fn syscall_arguments_and_return_values_cross() {
        // report(x) hands the value to the kernel; an unknown number
        // answers -ENOSYS; the agent's loads see what it stored.
        let mut s = Script::new();
        s.set(0x1234_5678_9abc_def0u64)
            .report()
            .syscall(999, &[1u64.into(), 2u64.into(), 3u64.into(), 4u64.into(), 5u64.into(), 6u64.into()])
            .store64(user::SCRATCH_BASE, 77u64)
            .load64(user::SCRATCH_BASE)
            .report()
            .exit(0u64);
        let (pids, r) = proc::run_scripts(&[&s]);
        let o = r.of(pids[0]);
        assert_eq!(o.exit, Exit::Status(0));
        assert_eq!(o.reports, vec![0x1234_5678_9abc_def0, 77]);
        assert_eq!(o.results, vec![sys::ENOSYS, 77, 77]);
    }

    fn system_calls_keep_every_register_but_their_results() {
        // Each probe loads r0, r2, r4..r13, CR, CTR, LR and XER with known
        // values around `sc` and records which came back changed, on
        // the fast path (getpid, an unassigned number below the table's
        // end, wait without children, report, a service) and the full
        // one (a number beyond the table, yield to the other process,
        // a wait that blocks until the child exits: it sets r4 and r5).
        let args: [user::Operand; 6] =
            core::array::from_fn(|i| (0x5eed_0000_0000_0003 + i as u64).into());
        let mut s = Script::new();
        s.syscall_probe(sys::GETPID, &args, 0x1111_0000_a5a5_0f0f)
            .syscall_probe(12, &args, 0x2222_0000_0f0f_a5a5)
            .syscall_probe(sys::WAIT, &args, 0x3333_0000_0000_ffff)
            .syscall_probe(sys::REPORT, &args, 0x4444_0000_ffff_0000)
            .syscall_probe(sys::VM_HANDLE, &args, 0x5555_0000_1234_5678)
            .syscall_probe(999, &args, 0x6666_0000_8765_4321)
            .syscall_probe(sys::YIELD, &args, 0x7777_0000_7777_7777)
            .fork()
            .quiet();
        let br = s.here();
        s.branch_eq(0u64, 0)
            .syscall_probe(sys::WAIT, &args, 0x8888_0000_3c3c_c3c3)
            .syscall(sys::GETPID, &[])
            .exit(0u64);
        let child = s.here();
        s.exit(5u64);
        s.patch_target(br, child);
        let (pids, r) = proc::run_scripts(&[&s, &s]);
        for &pid in &pids {
            let o = r.of(pid);
            assert_eq!(o.exit, Exit::Status(0));
            let wait_sets_r4_r5 = (1 << 4) | (1 << 5);
            assert_eq!(
                o.results,
                vec![0, 0, 0, 0, 0, 0, 0, wait_sets_r4_r5, u64::from(pid.0)],
                "process {}: changed-register masks, then getpid",
                pid.0
            );
            assert_eq!(o.reports, vec![0x5eed_0000_0000_0003]);
        }
        assert!(r.context_switches >= 4, "switches {}", r.context_switches);
    }

    fn private_memory_is_isolated_between_processes() {
        // Both write different values at the same user address, yield
        // to each other, and read their own value back.
        let mut a = Script::new();
        a.store64(user::SCRATCH_BASE, 0xaaaa_u64)
            .syscall(sys::YIELD, &[])
            .syscall(sys::YIELD, &[])
            .load64(user::SCRATCH_BASE)
            .exit(0u64);
        let mut b = Script::new();
        b.store64(user::SCRATCH_BASE, 0xbbbb_u64)
            .syscall(sys::YIELD, &[])
            .syscall(sys::YIELD, &[])
            .load64(user::SCRATCH_BASE)
            .exit(0u64);
        // On one processor, so that each yield switches to the other.
        let pids = [proc::spawn(&a).expect("spawn"), proc::spawn(&b).expect("spawn")];
        let r = proc::run_on(1, proc::default_quantum());
        assert_eq!(r.of(pids[0]).results, vec![0xaaaa, 0, 0, 0xaaaa]);
        assert_eq!(r.of(pids[1]).results, vec![0xbbbb, 0, 0, 0xbbbb]);
        assert!(r.context_switches >= 4, "switches {}", r.context_switches);
    }

    fn fork_copies_private_memory_and_wait_returns_the_status() {
        let mut s = Script::new();
        s.store64(user::SCRATCH_BASE, 1111u64).fork();
        let fork_at = s.here();
        s.branch_ne(0u64, 0); // parent: to `parent`
        // child: sees the parent's value, overwrites it, exits 7
        s.load64(user::SCRATCH_BASE)
            .report()
            .store64(user::SCRATCH_BASE, 2222u64)
            .exit(7u64);
        let parent = s.here();
        s.patch_target(fork_at, parent);
        s.save(0)
            .wait()
            .report()
            .load64(user::SCRATCH_BASE)
            .report()
            .exit(0u64);
        let (pids, r) = proc::run_scripts(&[&s]);
        let p = r.of(pids[0]);
        assert_eq!(p.exit, Exit::Status(0));
        let kids = r.children_of(pids[0]);
        assert_eq!(kids.len(), 1);
        let c = kids[0];
        assert_eq!(c.exit, Exit::Status(7));
        assert_eq!(c.reports, vec![1111], "the child sees the parent's data");
        // parent: wait() = 7, its own copy still 1111
        assert_eq!(p.reports, vec![7, 1111]);
        assert_eq!(p.results[1], c.pid.0 as u64, "fork returned the child's pid");
    }

    fn wait_without_children_is_echild() {
        let mut s = Script::new();
        s.wait().exit(0u64);
        let (pids, r) = proc::run_scripts(&[&s]);
        assert_eq!(r.of(pids[0]).results, vec![sys::ECHILD]);
    }

    fn decrementer_preempts_spinning_processes() {
        // Two long spins with a short slice on one processor (with one
        // each, a preempted process may simply go on): each process is
        // dispatched more than once, so each was preempted and resumed,
        // taking turns with the other.
        let mut a = Script::new();
        a.spin(3_000_000).timebase().spin(3_000_000).exit(1u64);
        for _ in 0..2 {
            crate::proc::spawn(&a).unwrap();
        }
        let r = proc::run_on(1, proc::default_quantum() / 10);
        assert_eq!(r.outcomes.len(), 2);
        for o in &r.outcomes {
            assert_eq!(o.exit, Exit::Status(1));
            assert!(o.dispatches >= 2, "process {} dispatched {} times", o.pid.0, o.dispatches);
        }
        assert!(r.preemptions >= 2, "preemptions {}", r.preemptions);
        assert!(r.context_switches >= 3, "switches {}", r.context_switches);
    }

    fn variables_address_memory_computed_at_run_time() {
        let mut s = Script::new();
        s.set_var(3, user::SCRATCH_BASE)
            .store64(v(3, 8), v(3, 1))
            .add_var(3, 8u64)
            .load64(v(3, 0))
            .exit(0u64);
        let (pids, r) = proc::run_scripts(&[&s]);
        let b = user::SCRATCH_BASE;
        assert_eq!(r.of(pids[0]).results, vec![b + 1, b + 1]);
    }
}

kernel_test! {
    fn byte_loads_and_stores_and_the_results_area_limit() {
        // Bytes land where they should in big-endian order; the agent
        // keeps 511 results and counts the rest.
        let mut s = Script::new();
        s.store64(user::SCRATCH_BASE, 0u64)
            .store8(user::SCRATCH_BASE + 7, 0xa5u64)
            .load64(user::SCRATCH_BASE)
            .load8(user::SCRATCH_BASE + 7)
            .set_var(0, 600u64);
        let lp = s.here();
        s.timebase().add_var(0, (-1i64) as u64).branch_ne(0u64, lp);
        s.exit(0u64);
        let (pids, r) = proc::run_scripts(&[&s]);
        let o = r.of(pids[0]);
        assert_eq!(&o.results[..4], &[0, 0xa5, 0xa5, 0xa5]);
        assert_eq!(o.result_count, 604);
        assert_eq!(o.results.len(), user::RESULTS_MAX);
        // Timebase values rise.
        assert!(o.results[4..].windows(2).all(|w| w[0] <= w[1]));
        assert!(r.syscalls >= 1 && r.ticks > 0);
    }
}

kernel_test! {
    fn an_orphan_runs_on_after_its_parent_exits() {
        let mut s = Script::new();
        s.fork();
        let at = s.here();
        s.branch_eq(0u64, 0);
        s.exit(1u64); // parent exits at once
        let child = s.here();
        s.patch_target(at, child);
        s.syscall(sys::YIELD, &[]).spin(1000).store64(user::SCRATCH_BASE, 5u64).exit(2u64);
        // No preemption: the decrementer counts wall-clock time, and on a
        // loaded host it could stop the parent between fork and exit and
        // let the child finish first. Without it, and on one processor
        // (another would take the child at once), the order is the
        // scheduler's alone: the parent exits, then the orphan runs on.
        let pid = proc::spawn(&s).expect("spawn");
        let r = proc::run_on(1, 0x7fff_0000);
        assert_eq!(r.preemptions, 0);
        let pids = [pid];
        assert_eq!(r.of(pids[0]).status(), Some(1));
        let kids = r.children_of(pids[0]);
        assert_eq!(kids.len(), 1);
        assert_eq!(kids[0].status(), Some(2));
        assert_eq!(kids[0].results.last(), Some(&5));
        assert_eq!(r.outcomes.last().map(|o| o.pid), Some(kids[0].pid), "the child ended last");
    }
}
