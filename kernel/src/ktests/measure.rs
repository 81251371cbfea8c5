//! Measurements: guest instructions per SLB miss, demand-zero page fault,
//! `vm_guatt` + `vm_gudet` pair, null system call, fork (of a parent with
//! 8 and with 100 resident pages) and context switch.
//!
//! Under `./qemu-run.sh --icount` (QEMU `-icount shift=0`, and `icount=1`
//! on the kernel command line) one guest instruction is one nanosecond of
//! virtual time, and the timebase counts that virtual time at the cpu
//! node's `timebase-frequency` (512 MHz on pseries), so `instructions =
//! ticks * 1e9 / tb_hz`. The counts are then deterministic and each line
//! reads `measure: <what> <n> instructions (<k> samples)`; without
//! `icount=1` the same computation gives host-speed time and the line says
//! `ns` instead. Each test asserts what makes the number meaningful (the
//! events really happened: SLB misses, zero-fills, switches were counted;
//! no preemption inside the process measurements).

use alloc::vec::Vec;

use vmm::aix::{AddressModel, Space, VM_PRIV, VU_ANYWHERE, V_WORKING};
use vmm::platform::Environment;

use crate::harness::{icount, timebase};
use crate::mm;
use crate::proc::{self, syscall as sys};
use crate::user::Script;

const PAGE: u64 = 4096;
const SEG: u64 = 1 << 28;

fn tb_hz() -> u64 {
    crate::bootinfo::get()
        .cpu
        .timebase_frequency
        .map_or(512_000_000, u64::from)
}

/// Instructions (virtual ns under -icount shift=0) in `ticks`.
fn instructions(ticks: u64) -> u64 {
    (ticks as u128 * 1_000_000_000 / tb_hz() as u128) as u64
}

fn report(what: &str, total_ticks: u64, samples: u64) -> u64 {
    assert!(samples > 0, "{what}: no samples");
    let per = instructions(total_ticks) / samples;
    let unit = if icount() { "instructions" } else { "ns" };
    println!("\nmeasure: {what} {per} {unit} ({samples} samples)");
    per
}

/// Fails the test if `per`, the count [`report`] printed for `what`,
/// exceeds `budget` instructions: a regression guard, not a timing, since
/// under `--icount` the count is deterministic for a given build. Only a
/// release kernel under `--icount` is held to the budgets (they are the
/// issue's, for that build).
fn guard(what: &str, per: u64, budget: u64) {
    if icount() && !cfg!(debug_assertions) {
        assert!(
            per <= budget,
            "{what}: {per} instructions per event, over the budget of {budget}"
        );
    }
}

/// Budgets the guards hold the release kernel to (guest instructions per
/// event under `--icount`).
const NULL_SYSCALL_BUDGET: u64 = 120;
/// See [`NULL_SYSCALL_BUDGET`].
const CONTEXT_SWITCH_BUDGET: u64 = 1200;
/// See [`NULL_SYSCALL_BUDGET`].
const SLB_MISS_BUDGET: u64 = 150;
/// See [`NULL_SYSCALL_BUDGET`] (the 4 KiB zeroing included).
const DEMAND_ZERO_FAULT_BUDGET: u64 = 1200;
/// See [`NULL_SYSCALL_BUDGET`].
const VM_GUATT_VM_GUDET_PAIR_BUDGET: u64 = 3000;
/// See [`NULL_SYSCALL_BUDGET`]; a parent with 100 resident pages may fork
/// at most 3 times as dearly as one with 8.
const FORK_BUDGET: u64 = 15_000;

/// A time slice no measurement reaches (DEC is a signed 32-bit count:
/// about 4 s at 512 MHz), so the decrementer never preempts a measured
/// process: with the default quantum it fired inside the measured
/// intervals (it keeps counting while the kernel runs and is not reset on
/// a system call's return), letting a forked child run and exit there.
const NO_PREEMPTION: u64 = 0x7fff_0000;

/// Spawns `scripts` and runs them with [`NO_PREEMPTION`] on the boot
/// processor; asserts no decrementer preemption happened.
fn run_unpreempted(scripts: &[&Script]) -> (Vec<vmm::platform::ProcessId>, proc::RunReport) {
    let pids = scripts
        .iter()
        .map(|s| proc::spawn(s).expect("spawn"))
        .collect();
    // On the boot processor alone: what one processor's switch, fork and
    // system call cost, with no other processor's work in the interval.
    let r = proc::run_on(1, NO_PREEMPTION);
    assert_eq!(r.preemptions, 0, "a measured run was preempted");
    (pids, r)
}

/// Runs a process that stores to `pages` pages of its data, forks `n`
/// times timing each `fork` call, then makes `n` getpid calls in one
/// tight loop. Returns the total ticks of the forks and of the getpids.
fn fork_and_null(pages: u64, n: u64) -> (u64, u64) {
    let mut s = Script::new();
    for i in 0..pages {
        s.store64(crate::user::SCRATCH_BASE + i * PAGE, i).quiet();
    }
    s.set_var(0, n);
    let lp = s.here();
    s.timebase().fork().quiet();
    let br = s.here();
    s.branch_eq(0u64, 0);
    s.timebase()
        .wait()
        .quiet()
        .add_var(0, (-1i64) as u64)
        .branch_ne(0u64, lp);
    s.syscall_loop(sys::GETPID, n, &[]).exit(0u64);
    let child = s.here();
    s.exit(0u64);
    s.patch_target(br, child);
    let (pids, r) = run_unpreempted(&[&s]);
    let o = r.of(pids[0]);
    assert_eq!(o.status(), Some(0));
    assert_eq!(r.children_of(pids[0]).len() as u64, n);
    let t = &o.results;
    assert_eq!(t.len() as u64, 2 * n + 1);
    let fork = (0..n as usize).map(|i| t[2 * i + 1] - t[2 * i]).sum();
    (fork, t[2 * n as usize])
}

fn load(ea: u64) -> u64 {
    // SAFETY: callers pass addresses of live vm_galloc memory (kernel
    // read-write); faults are resolved by the VMM, no lock is held.
    unsafe { (ea as *const u64).read_volatile() }
}

fn store(ea: u64, x: u64) {
    // SAFETY: as in `load`.
    unsafe { (ea as *mut u64).write_volatile(x) }
}

kernel_test! {
    fn measure_slb_miss() {
        // 48 segments of vm_galloc memory, more than the SLB's free
        // entries: loading page 0 of each in turn misses every time. The
        // baseline loads 48 resident pages of one segment (no SLB miss).
        const N: u64 = 48;
        const ROUNDS: u64 = 20;
        let base = mm::with_aix(|a| a.vm_galloc(V_WORKING, (N * SEG) as i64)).expect("vm_galloc");
        for i in 0..N {
            store(base + i * SEG, i);
            store(base + i * PAGE, i);
        }
        let s0 = mm::stats();
        let t0 = timebase();
        let mut sum = 0;
        for _ in 0..ROUNDS {
            for i in 0..N {
                sum += load(base + i * SEG);
            }
        }
        let t1 = timebase();
        let s1 = mm::stats();
        for _ in 0..ROUNDS {
            for i in 0..N {
                sum += load(base + i * PAGE);
            }
        }
        let t2 = timebase();
        let s2 = mm::stats();
        assert_eq!(sum, 2 * ROUNDS * (N * (N - 1) / 2));
        let misses = s1.slb_misses - s0.slb_misses;
        assert!(misses >= ROUNDS * N / 2, "only {misses} SLB misses");
        assert_eq!(s1.slb_fast_loads - s0.slb_fast_loads, misses, "all by the fast path");
        assert!(s2.slb_misses - s1.slb_misses <= 2, "baseline missed");
        let (miss_ticks, base_ticks) = (t1 - t0, t2 - t1);
        let per = report("slb_miss", miss_ticks.saturating_sub(base_ticks), misses);
        guard("slb_miss", per, SLB_MISS_BUDGET);
        mm::with_aix(|a| a.vm_gfree(base, (N * SEG) as i64)).expect("vm_gfree");
    }

    fn measure_demand_zero_fault() {
        // First stores to 256 untouched pages (each a DSI that zero-fills
        // and inserts), minus the same stores again (resident).
        const N: u64 = 256;
        let base = mm::with_aix(|a| a.vm_galloc(V_WORKING, (N * PAGE + PAGE) as i64)).expect("vm_galloc");
        store(base + N * PAGE, 1); // the SLB entry, outside the timing
        let s0 = mm::stats();
        let t0 = timebase();
        for i in 0..N {
            store(base + i * PAGE, i);
        }
        let t1 = timebase();
        let s1 = mm::stats();
        for i in 0..N {
            store(base + i * PAGE, i + 1);
        }
        let t2 = timebase();
        let fills = s1.zero_fills - s0.zero_fills;
        assert_eq!(fills, N, "each first touch zero-fills");
        let per = report("demand_zero_fault", (t1 - t0).saturating_sub(t2 - t1), fills);
        guard("demand_zero_fault", per, DEMAND_ZERO_FAULT_BUDGET);
        mm::with_aix(|a| a.vm_gfree(base, (N * PAGE + PAGE) as i64)).expect("vm_gfree");
    }

    fn measure_vm_guatt_vm_gudet_pair() {
        // In the environment of a process (its address space exists; it
        // does not run), attach and detach one page N times.
        const N: u64 = 200;
        let pid = proc::new_pid();
        let size = 4 * PAGE as i64;
        let kaddr = mm::with_aix(|a| {
            a.create_process(pid, AddressModel::Bits64).expect("create_process");
            a.vm_galloc(V_WORKING, size).expect("vm_galloc")
        });
        mm::with_aix(|a| a.vm_mut().set_environment(Environment::Process(pid)));
        let t0 = timebase();
        let mut ok = 0;
        for _ in 0..N {
            mm::with_aix(|a| {
                let u = a.vm_guatt(kaddr, size, VM_PRIV, VU_ANYWHERE).expect("vm_guatt");
                a.vm_gudet(kaddr, u, size, VU_ANYWHERE).expect("vm_gudet");
            });
            ok += 1;
        }
        let t1 = timebase();
        mm::with_aix(|a| {
            a.vm_mut().set_environment(Environment::KernelProcess);
            assert!(a.attachments(pid).is_empty());
            a.exit(pid).expect("exit");
            a.vm_gfree(kaddr, size).expect("vm_gfree");
            assert!(a.vm().space_id(Space::Process(pid)).is_none());
        });
        let per = report("vm_guatt_vm_gudet_pair", t1 - t0, ok);
        guard("vm_guatt_vm_gudet_pair", per, VM_GUATT_VM_GUDET_PAIR_BUDGET);
    }

    fn measure_fork_and_null_syscall() {
        // A process with a few resident data pages forks N times (the
        // child exits at once; the parent waits after taking the time):
        // the time from before `sc` to after it is one fork system call.
        // Fork only queues the child and the run has no preemption, so
        // the child cannot run inside the interval; marking the parent's
        // resident pages copy-on-write is inside it, and the agent's timebase
        // command adds a few dozen instructions. The bare system call is
        // getpid in the agent's tight loop: `sc` and the ten instructions
        // of the loop around it, no interpreter.
        const N: u64 = 32;
        let (fork, null) = fork_and_null(8, N);
        guard("fork", report("fork", fork, N), FORK_BUDGET);
        let per = report("null_syscall", null, N);
        guard("null_syscall", per, NULL_SYSCALL_BUDGET);
    }

    fn measure_fork_100() {
        // As `fork`, from a parent with 100 resident data pages: how the
        // cost grows with what the parent has touched (copy-on-write marks
        // and write-protects each page). Its budget is 3 times the fork of
        // a parent with 8, measured again here under the same conditions.
        const N: u64 = 8;
        let (fork, _) = fork_and_null(100, N);
        let per = report("fork_100", fork, N);
        let (small, _) = fork_and_null(8, N);
        guard("fork_100", per, 3 * instructions(small) / N);
    }

    fn measure_context_switch() {
        // Two processes yield to each other from a tight loop of `sc`
        // inside one agent command (as null_syscall; the interpreter is
        // not counted). Each yields once first, so both have started;
        // then, with no preemption, each of the first one's N yields is
        // followed by exactly one of the other's, so its loop takes 2N
        // switches (each: sc, the full system call path, the frame saved,
        // the VMM's switch of address space, SLB preload included, and
        // environment, rfid) plus five loop instructions a yield and, once,
        // the other's step from its first yield into its loop.
        const N: u64 = 100;
        let mut s = Script::new();
        s.syscall(sys::YIELD, &[]).quiet().syscall_loop(sys::YIELD, N, &[]).exit(0u64);
        let (pids, r) = run_unpreempted(&[&s, &s]);
        for &pid in &pids {
            let o = r.of(pid);
            assert_eq!(o.status(), Some(0));
            assert_eq!(o.results.len(), 1, "the loop's ticks");
            assert!(o.dispatches > N, "process {} ran {} times", pid.0, o.dispatches);
        }
        assert!(r.context_switches >= 2 * N, "switches {}", r.context_switches);
        let ticks = r.of(pids[0]).results[0];
        let per = report("context_switch", ticks, 2 * N);
        guard("context_switch", per, CONTEXT_SWITCH_BUDGET);
    }
}
