//! The VMM and processes on every processor: each processor's own VMM
//! state and the VMM lock's owner, kernel and process SLB shootdowns
//! reaching the processors that hold the segment, processes and threads
//! running at once on different processors (faults on their own and on
//! shared pages, a detach or free racing a sibling's loads, galloc/gfree
//! storms, fork, preemption and migration), and the fault throughput
//! measurement.
//!
//! The tests that only make sense with a second processor say so and are
//! ignored under `--smp 1`; the others run everywhere, where one processor
//! takes turns between the threads (the decrementer preempts them).

use alloc::vec::Vec;

use vmm::aix::{VM_PRIV, VU_ANYWHERE, V_WORKING};
use vmm::platform::VmFaultReason;

use crate::bootinfo::MAX_CPUS;
use crate::harness::{self, icount};
use crate::proc::{self, syscall as sys, Outcome, RunReport};
use crate::smp::{self, cross_call, Request};
use crate::user::{self, v, Operand, Script};
use crate::{mm, trap};

const PAGE: u64 = 4096;

/// A time slice no test reaches: with a processor per thread nothing
/// needs preempting, and a thread that must run on while another waits
/// for it keeps its processor.
const NO_PREEMPTION: u64 = 0x7fff_0000;

fn lit(x: u64) -> Operand {
    x.into()
}

/// The online processors other than the boot processor.
fn others() -> impl Iterator<Item = usize> {
    (1..MAX_CPUS).filter(|&c| smp::is_online(c))
}

/// Skips the running test on a machine with one processor.
fn need_a_second_processor() {
    if smp::online_count() < 2 {
        harness::skip("needs a second processor (qemu-run.sh --smp 2 or more)");
    }
}

fn run_on(cpu: usize, f: fn(u64) -> u64, arg: u64) -> u64 {
    cross_call(cpu, Request::Run { f, arg })
        .unwrap_or_else(|e| panic!("cross-call to CPU {cpu}: {e:?}"))
}

/// The CPUs any of `outcomes` ran on.
fn cpus_used<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> u64 {
    outcomes.into_iter().fold(0, |m, o| m | o.cpus)
}

/// With two or more processors online, the run used at least two.
fn assert_ran_on_several(r: &RunReport) {
    let used = cpus_used(&r.outcomes);
    if smp::online_count() >= 2 {
        assert!(
            used.count_ones() >= 2,
            "every process ran on one CPU ({used:#x}) of {}",
            smp::online_count()
        );
    }
}

/// How many processes (or threads) a test runs at once: one per
/// processor, two on one processor (which then takes turns).
fn at_once() -> u64 {
    smp::online_count().max(2) as u64
}

/// The time slice of a test whose processes wait for each other: none
/// with a processor each (every one runs until it is done, so they all
/// run at once), the default on one processor (which takes turns).
fn quantum_at_once() -> u64 {
    if smp::online_count() >= 2 {
        NO_PREEMPTION
    } else {
        proc::default_quantum()
    }
}

/// A page of kernel memory, zeroed, for processes to meet in
/// ([`barrier`]); free it with [`free_page`].
fn sync_page() -> u64 {
    let k = mm::with_aix(|a| a.vm_galloc(V_WORKING, PAGE as i64)).expect("vm_galloc");
    for i in 0..PAGE / 8 {
        store(k + 8 * i, 0);
    }
    k
}

fn free_page(k: u64) {
    mm::with_aix(|a| a.vm_gfree(k, PAGE as i64)).expect("vm_gfree");
}

/// Appends to `s` a barrier of `n` parties in the kernel page `sync`:
/// party `me` says it arrived (kwrite) and waits until all have (kread).
/// With [`quantum_at_once`] and as many processors as parties, every
/// party then runs on a processor of its own.
fn barrier(s: &mut Script, sync: u64, me: u64, n: u64) {
    s.syscall(sys::KWRITE, &[lit(sync + 8 * me), lit(1)])
        .quiet();
    for j in 0..n {
        let w = s.here();
        s.syscall(sys::KREAD, &[lit(sync + 8 * j)])
            .quiet()
            .branch_ne(1u64, w);
    }
}

fn assert_vmm_consistent() {
    mm::with_vmm(|v| v.check_invariants()).expect("VMM invariants");
}

fn load(ea: u64) -> u64 {
    // SAFETY: callers pass live vm_galloc memory (kernel read-write);
    // faults are resolved by the VMM (the caller holds no lock).
    unsafe { (ea as *const u64).read_volatile() }
}

fn store(ea: u64, x: u64) {
    // SAFETY: as in `load`.
    unsafe { (ea as *mut u64).write_volatile(x) }
}

fn slb_holds(ea: u64) -> u64 {
    u64::from(arch_ppc64::instructions::slb::slbfee(ea).is_some())
}

fn vmm_lock_owner_here(_: u64) -> u64 {
    mm::with_vmm(|_| mm::lock_owner().map_or(u64::MAX, |c| c as u64))
}

fn slb_fast_loads_here(_: u64) -> u64 {
    mm::with_vmm(|v| {
        let (d, i) = v.slb().fast_loads();
        d + i
    })
}

kernel_test! {
    fn the_vmm_lock_records_its_holder_and_lends_each_cpu_its_own_state() {
        // Inside the lock, the owner is the processor that took it and the
        // manager acts on that processor's SLB state (its fast path's
        // counters are its own).
        assert_eq!(vmm_lock_owner_here(0), 0);
        assert_eq!(mm::lock_owner(), None, "released");
        let mine = slb_fast_loads_here(0);
        for cpu in others() {
            assert_eq!(run_on(cpu, vmm_lock_owner_here, 0), cpu as u64, "CPU {cpu}");
        }
        // The boot processor's state came back, counters and all.
        assert!(slb_fast_loads_here(0) >= mine);
        // A second acquire on the same processor cannot be waited out.
        assert!(harness::panics_with(
            || mm::with_vmm(|_| mm::with_vmm(|_| ())),
            "lock re-entered on CPU 0"
        ));
        assert_eq!(mm::lock_owner(), None, "the harness released the abandoned hold");
    }

    fn a_fault_under_the_vmm_lock_is_reported() {
        // A first touch of vm_galloc memory inside the lock needs the
        // VMM: the handler finds the lock held by its own processor.
        fn touch_under_the_lock() {
            let kaddr = mm::with_aix(|a| a.vm_galloc(V_WORKING, PAGE as i64)).expect("vm_galloc");
            KADDR.store(kaddr, core::sync::atomic::Ordering::SeqCst);
            mm::with_vmm(|_| store(kaddr, 1));
        }
        static KADDR: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
        assert!(harness::panics_with(touch_under_the_lock, "while the VMM lock is held"));
        let kaddr = KADDR.load(core::sync::atomic::Ordering::SeqCst);
        mm::with_aix(|a| a.vm_gfree(kaddr, PAGE as i64)).expect("vm_gfree");
    }

    fn each_cpu_loads_kernel_segments_itself_and_vm_gfree_shoots_them_down_everywhere() {
        need_a_second_processor();
        let kaddr = mm::with_aix(|a| a.vm_galloc(V_WORKING, PAGE as i64)).expect("vm_galloc");
        store(kaddr, 0x5e9);
        for cpu in others() {
            // The load misses the SLB on that processor: its own fast path
            // loads the entry from the kernel's table into its own SLB.
            let before = run_on(cpu, slb_fast_loads_here, 0);
            assert_eq!(run_on(cpu, load, kaddr), 0x5e9, "CPU {cpu} reads the page");
            assert_eq!(run_on(cpu, slb_holds, kaddr), 1, "CPU {cpu} holds the segment");
            assert!(run_on(cpu, slb_fast_loads_here, 0) > before, "CPU {cpu}'s own fast path");
        }
        let applied: Vec<u64> = (0..MAX_CPUS).map(mm::shootdowns_applied).collect();
        mm::with_aix(|a| a.vm_gfree(kaddr, PAGE as i64)).expect("vm_gfree");
        assert_eq!(slb_holds(kaddr), 0, "gone on the boot processor");
        for cpu in others() {
            assert_eq!(run_on(cpu, slb_holds, kaddr), 0, "CPU {cpu} still holds the freed segment");
            assert!(mm::shootdowns_applied(cpu) > applied[cpu], "CPU {cpu} applied a shootdown");
        }
        assert_vmm_consistent();
    }

    fn processes_on_every_cpu_fault_their_own_pages_at_once() {
        // A process per processor (two on one), which meet first, then
        // each first-touch 24 pages of their data, check the VMM's
        // invariants (one HPTE per page, all recorded) while the others
        // fault, and read their pages back.
        const PAGES: u64 = 24;
        let n = at_once();
        let sync = sync_page();
        let scripts: Vec<Script> = (0..n)
            .map(|p| {
                let mut s = Script::new();
                barrier(&mut s, sync, p, n);
                for i in 0..PAGES {
                    s.store64(user::SCRATCH_BASE + i * PAGE, p << 32 | i).quiet();
                }
                s.syscall(sys::VM_CHECK, &[]);
                for i in 0..PAGES {
                    s.load64(user::SCRATCH_BASE + i * PAGE);
                }
                s.exit(0u64);
                s
            })
            .collect();
        let pids: Vec<_> = scripts.iter().map(|s| proc::spawn(s).expect("spawn")).collect();
        let shared = mm::stats().shared_faults;
        let r = proc::run_with_quantum(quantum_at_once());
        for (p, pid) in pids.iter().enumerate() {
            let o = r.of(*pid);
            assert_eq!(o.status(), Some(0), "process {}: {:?}", pid.0, o.exit);
            let mut want = alloc::vec![0];
            want.extend((0..PAGES).map(|i| (p as u64) << 32 | i));
            assert_eq!(o.results, want, "process {}: vm_check, then its own pages", pid.0);
        }
        // With a second processor the first touches went through the VMM
        // lock's read side, at once (one processor, and a kernel-owned
        // table on powernv, keep the exclusive path).
        let shared = mm::stats().shared_faults - shared;
        if smp::online_count() >= 2 && !crate::platform::is_powernv() {
            assert!(shared >= n * PAGES, "{shared} faults on the read side");
        } else {
            assert_eq!(shared, 0);
        }
        assert_ran_on_several(&r);
        free_page(sync);
        assert_vmm_consistent();
    }

    fn a_run_whose_threads_other_cpus_took_first_waits_for_them() {
        // The other processors take every ready thread before the boot
        // processor enters the run: it must find the run going on (not
        // over because the queue is empty), wait for those threads, and
        // return with their outcomes.
        need_a_second_processor();
        const PAGES: u64 = 16;
        let n = smp::online_count() as u64 - 1;
        let scripts: Vec<Script> = (0..n)
            .map(|p| {
                let mut s = Script::new();
                for i in 0..PAGES {
                    s.store64(user::SCRATCH_BASE + i * PAGE, p << 32 | i).quiet();
                }
                s.syscall(sys::GETCPU, &[]).exit(7u64);
                s
            })
            .collect();
        let pids: Vec<_> = scripts.iter().map(|s| proc::spawn(s).expect("spawn")).collect();
        let (r, took_all) = proc::run_others_first(NO_PREEMPTION);
        assert!(took_all, "the other processors took every ready thread first");
        assert_eq!(r.outcomes.len(), pids.len(), "every process ended in the run");
        for pid in &pids {
            let o = r.of(*pid);
            assert_eq!(o.status(), Some(7), "process {}: {:?}", pid.0, o.exit);
            assert_eq!(o.results.len(), 1, "process {}: getcpu", pid.0);
            assert_ne!(o.results[0], 0, "process {} ran on a secondary", pid.0);
        }
        assert_eq!(trap::current_pid(), 0);
        assert_vmm_consistent();
    }

    fn threads_of_one_process_fault_the_same_pages_on_different_cpus() {
        // A thread per processor (two on one, four at most) store into
        // their own doubleword of the same 16 untouched pages (first
        // touches racing on each page), check the VMM's invariants, wait
        // for each other, then read every thread's doublewords back: every
        // store is seen by every thread, and the page each has is the one
        // page there is.
        const PAGES: u64 = 16;
        let threads = at_once().min(4);
        let shared = user::SCRATCH_BASE;
        let flags = user::SCRATCH_BASE + PAGES * PAGE;
        let value = |k: u64, i: u64| 0x7000_0000_0000 | k << 32 | i;
        let mut s = Script::new();
        let mut creates = Vec::new();
        for _ in 1..threads {
            creates.push(s.here());
            s.thread_create(0).quiet();
        }
        let mut starts = Vec::new();
        for k in 0..threads {
            starts.push(s.here());
            for i in 0..PAGES {
                s.store64(shared + i * PAGE + k * 8, value(k, i)).quiet();
            }
            s.syscall(sys::VM_CHECK, &[]);
            s.store64(flags + k * 8, 1u64).quiet();
            for j in 0..threads {
                let w = s.here();
                s.load64(flags + j * 8).quiet().branch_ne(1u64, w);
            }
            for i in 0..PAGES {
                for j in 0..threads {
                    s.load64(shared + i * PAGE + j * 8);
                }
            }
            s.thread_exit(0u64).quiet();
        }
        // Each thread_create names its thread's block.
        let mut s = patch_thread_starts(s, &creates, &starts[1..]);
        s.exit(0u64);
        let pid = proc::spawn(&s).expect("spawn");
        let r = proc::run_with_quantum(quantum_at_once());
        let o = r.of(pid);
        assert_eq!(o.status(), Some(0), "{:?}", o.exit);
        let mut want = alloc::vec![0];
        for i in 0..PAGES {
            want.extend((0..threads).map(|j| value(j, i)));
        }
        assert_eq!(o.results, want, "thread 0: vm_check, then every thread's stores");
        assert_eq!(o.thread_results.len() as u64, threads - 1, "threads 1..");
        for (k, results, _) in &o.thread_results {
            assert_eq!(results, &want, "thread {k}");
        }
        if smp::online_count() >= 2 {
            // They waited for each other with no preemption: all at once.
            assert_eq!(u64::from(o.cpus.count_ones()), threads, "the threads ran on CPUs {:#x}", o.cpus);
        }
        assert_vmm_consistent();
    }

    fn as_det64_while_a_sibling_thread_loads_the_region_on_another_cpu() {
        // Thread 0 attaches a segment (as_att64), stores to it and starts
        // thread 1, which loads the region in a loop, each time after
        // reading whether thread 0 said "detached". Once thread 1 has
        // loaded it, thread 0 detaches (as_det64) and says so. Thread 1's
        // next load faults (the segment is gone from its processor's SLB:
        // the shootdown reached it before as_det64 returned), which kills
        // the process; a load that worked after it read "detached" would
        // have read the segment after as_det64 returned: thread 1 would
        // report the value and exit 99.
        let region_ptr = user::SCRATCH_BASE;
        let seen = user::SCRATCH_BASE + 8;
        let detached = user::SCRATCH_BASE + 16;
        let mut s = Script::new();
        s.syscall(sys::VMS_CREATE, &[lit(V_WORKING as u64), lit(PAGE)])
            .save(0)
            .syscall(sys::VM_HANDLE, &[v(0, 0), lit(VM_PRIV as u64)])
            .save(2)
            .syscall(sys::AS_ATT64, &[v(2, 0), lit(0)])
            .save(1)
            .store64(v(1, 0), 0x5eedu64)
            .store64(region_ptr, v(1, 0))
            .quiet();
        let create = s.here();
        s.thread_create(0);
        let w = s.here();
        s.load64(seen).quiet().branch_ne(1u64, w);
        s.syscall(sys::AS_DET64, &[v(1, 0)])
            .store64(detached, 1u64)
            .quiet()
            .spin(50_000_000)
            .exit(0u64);
        let start = s.here();
        s.load64(region_ptr).quiet().save(2);
        let lp = s.here();
        s.load64(detached).quiet().save(1);
        s.load64(v(2, 0)).quiet().save(3);
        s.store64(seen, 1u64).quiet();
        s.set(v(1, 0));
        let to_stale = s.here();
        s.branch_eq(1u64, 0).set(0u64).branch_eq(0u64, lp);
        let stale = s.here();
        s.set(v(3, 0)).report().exit(99u64);
        s.patch_target(to_stale, stale);
        let s = patch_thread_starts(s, &[create], &[start]);
        let pid = proc::spawn(&s).expect("spawn");
        // With a processor per thread, none is preempted: thread 1 runs on
        // while thread 0 detaches on another processor. On one processor
        // they take turns.
        let quantum = if smp::online_count() >= 2 { NO_PREEMPTION } else { proc::default_quantum() };
        let r = proc::run_with_quantum(quantum);
        let o = r.of(pid);
        assert!(o.reports.is_empty(), "a load after as_det64 returned read {:x?}", o.reports);
        let k = o.killed().unwrap_or_else(|| panic!("not killed: {:?}", o.exit));
        let region = o.results[2];
        assert_eq!(k.address(), Some(region), "the sibling's load of the region");
        assert_eq!(k.reason(), Some(VmFaultReason::NoSegment));
        assert_eq!(&o.results[..5], &[o.results[0], o.results[1], region, 0x5eed, 1], "thread 1 made");
        // Thread 1 may fault between as_det64's return and thread 0's
        // recording of its result (the kill ends thread 0 too).
        assert!(o.results.get(5).is_none_or(|&r| r == 0), "as_det64: {:?}", o.results);
        if smp::online_count() >= 2 {
            assert!(o.cpus.count_ones() >= 2, "the threads ran on CPUs {:#x}", o.cpus);
        }
        let vmid = o.results[0] as i64;
        mm::with_aix(|a| a.vms_delete(vmid)).expect("vms_delete");
        assert_vmm_consistent();
    }

    fn vm_gfree_revokes_a_user_attachment_while_its_process_runs_on_another_cpu() {
        // Process A attaches a vm_galloc page (vm_guatt) and loads it in a
        // loop, each time after reading (kread) whether B said "freed".
        // Process B waits until A has loaded it, frees the allocation
        // (which revokes A's attachment) and says so. A's next load
        // faults; one that worked after it read "freed" would report the
        // value and exit 99.
        let kaddr = mm::with_aix(|a| a.vm_galloc(V_WORKING, PAGE as i64)).expect("vm_galloc");
        let mark = mm::with_aix(|a| a.vm_galloc(V_WORKING, PAGE as i64)).expect("vm_galloc");
        store(kaddr, 0x600d);
        store(mark, 0);
        store(mark + 8, 0);
        let mut a = Script::new();
        a.syscall(sys::VM_GUATT, &[lit(kaddr), lit(PAGE), lit(VM_PRIV as u64), lit(VU_ANYWHERE as u64)])
            .save(0);
        let lp = a.here();
        a.syscall(sys::KREAD, &[lit(mark)]).quiet().save(1);
        a.load64(v(0, 0)).quiet().save(3);
        a.syscall(sys::KWRITE, &[lit(mark + 8), lit(1)]).quiet();
        a.set(v(1, 0));
        let to_stale = a.here();
        a.branch_eq(1u64, 0).set(0u64).branch_eq(0u64, lp);
        let stale = a.here();
        a.set(v(3, 0)).report().exit(99u64);
        a.patch_target(to_stale, stale);
        let mut b = Script::new();
        let w = b.here();
        b.syscall(sys::KREAD, &[lit(mark + 8)]).quiet().branch_ne(1u64, w);
        b.syscall(sys::VM_GFREE, &[lit(kaddr), lit(PAGE)])
            .syscall(sys::KWRITE, &[lit(mark), lit(1)])
            .exit(0u64);
        let pids = [proc::spawn(&a).expect("spawn"), proc::spawn(&b).expect("spawn")];
        let quantum = if smp::online_count() >= 2 { NO_PREEMPTION } else { proc::default_quantum() };
        let r = proc::run_with_quantum(quantum);
        let oa = r.of(pids[0]);
        assert!(oa.reports.is_empty(), "a load after vm_gfree returned read {:x?}", oa.reports);
        let k = oa.killed().unwrap_or_else(|| panic!("not killed: {:?}", oa.exit));
        let uaddr = oa.results[0];
        assert_eq!(k.address(), Some(uaddr));
        assert_eq!(k.reason(), Some(VmFaultReason::NoSegment));
        let ob = r.of(pids[1]);
        assert_eq!(ob.status(), Some(0));
        assert_eq!(ob.results, [0, 0], "vm_gfree, kwrite");
        assert_ran_on_several(&r);
        assert!(
            mm::with_aix(|x| x.allocations().all(|al| al.start != kaddr)),
            "the allocation is gone"
        );
        mm::with_aix(|x| x.vm_gfree(mark, PAGE as i64)).expect("vm_gfree");
        assert_vmm_consistent();
    }

    fn galloc_and_gfree_storms_from_processes_on_every_cpu() {
        // A process per processor (two on one) meet, then allocate,
        // write, read back and free kernel memory 30 times, each a size of
        // its own; segments, SIDs and kernel mappings come and go on every
        // processor at once, and every one's SLB shootdowns reach the
        // others.
        const ROUNDS: u64 = 30;
        let n = at_once();
        let sync = sync_page();
        let sids = mm::with_vmm(|v| v.sids_in_use());
        let scripts: Vec<Script> = (0..n)
            .map(|p| {
                let size = (p + 1) * PAGE + (p << 28);
                let mut s = Script::new();
                barrier(&mut s, sync, p, n);
                s.set_var(4, 0u64);
                let lp = s.here();
                s.syscall(sys::VM_GALLOC, &[lit(V_WORKING as u64), lit(size)])
                    .quiet()
                    .save(0)
                    .syscall(sys::KWRITE, &[v(0, size - 8), v(4, p << 32)])
                    .quiet()
                    .syscall(sys::KREAD, &[v(0, size - 8)])
                    .syscall(sys::VM_GFREE, &[v(0, 0), lit(size)])
                    .quiet()
                    .add_var(4, 1u64)
                    .branch_ne(ROUNDS, lp);
                s.exit(0u64);
                s
            })
            .collect();
        let pids: Vec<_> = scripts.iter().map(|s| proc::spawn(s).expect("spawn")).collect();
        let r = proc::run_with_quantum(quantum_at_once());
        for (p, pid) in pids.iter().enumerate() {
            let o = r.of(*pid);
            assert_eq!(o.status(), Some(0), "process {}: {:?}", pid.0, o.exit);
            let want: Vec<u64> = (0..ROUNDS).map(|i| (p as u64) << 32 | i).collect();
            assert_eq!(o.results, want, "process {}", pid.0);
        }
        assert_ran_on_several(&r);
        assert_eq!(mm::with_vmm(|v| v.sids_in_use()), sids, "every SID back");
        free_page(sync);
        assert_vmm_consistent();
    }

    fn fork_while_other_processes_fault_on_other_cpus() {
        // One process forks eight children, one at a time, each of which
        // stores to its copy-on-write copy of the parent's pages and exits
        // with what it read; meanwhile a process per other processor
        // (one on one processor) keeps first-touching and rewriting pages
        // of its own. They all meet before any forks or stores.
        const PAGES: u64 = 8;
        let n = at_once();
        let sync = sync_page();
        let mut f = Script::new();
        barrier(&mut f, sync, 0, n);
        for i in 0..PAGES {
            f.store64(user::SCRATCH_BASE + i * PAGE, 100 + i).quiet();
        }
        f.set_var(0, 8u64);
        let lp = f.here();
        f.fork().quiet();
        let to_child = f.here();
        f.branch_eq(0u64, 0);
        f.wait().add_var(0, (-1i64) as u64).quiet().branch_ne(0u64, lp);
        for i in 0..PAGES {
            f.load64(user::SCRATCH_BASE + i * PAGE);
        }
        f.exit(0u64);
        let child = f.here();
        f.patch_target(to_child, child);
        f.load64(user::SCRATCH_BASE + 3 * PAGE).quiet();
        f.store64(user::SCRATCH_BASE + 3 * PAGE, 7u64).quiet();
        f.load64(user::SCRATCH_BASE + 5 * PAGE).quiet();
        f.exit(v(0, 0));
        let busy: Vec<Script> = (1..n)
            .map(|p| {
                let mut busy = Script::new();
                barrier(&mut busy, sync, p, n);
                busy.set_var(0, 0u64);
                let lp = busy.here();
                for i in 0..16 {
                    busy.store64(user::SCRATCH_BASE + (PAGES + i) * PAGE, v(0, i)).quiet();
                }
                busy.add_var(0, 1u64).branch_ne(40u64, lp);
                busy.load64(user::SCRATCH_BASE + (PAGES + 15) * PAGE).exit(0u64);
                busy
            })
            .collect();
        let pids: Vec<_> = core::iter::once(&f)
            .chain(busy.iter())
            .map(|s| proc::spawn(s).expect("spawn"))
            .collect();
        // The parent's wait frees its processor for each child in turn.
        let r = proc::run_with_quantum(quantum_at_once());
        let o = r.of(pids[0]);
        assert_eq!(o.status(), Some(0), "{:?}", o.exit);
        // Eight waits (each child's status: the count when it forked), then
        // the parent's pages as it wrote them.
        let mut want: Vec<u64> = (1..=8).rev().collect();
        want.extend((0..PAGES).map(|i| 100 + i));
        assert_eq!(o.results, want);
        let kids = r.children_of(pids[0]);
        assert_eq!(kids.len(), 8);
        for &pid in &pids[1..] {
            let b = r.of(pid);
            assert_eq!(b.status(), Some(0));
            assert_eq!(b.results, [39 + 15]);
        }
        assert_ran_on_several(&r);
        free_page(sync);
        assert_vmm_consistent();
    }

    fn fork_copies_only_the_calling_thread_while_a_sibling_stores() {
        // Thread 1 keeps storing a rising count to page A (its first store
        // a first touch) until thread 0 says stop. Thread 0 waits until
        // the count runs, forks and waits for the child. The child is one
        // thread, a copy of thread 0 alone: it reads A, pauses, reads A
        // again and exits. Its copy-on-write copy is a snapshot, so both
        // reads agree while thread 1, on another processor, stores on into
        // the parent's page (whose first store after the fork breaks the
        // sharing).
        let a = user::SCRATCH_BASE;
        let stop = user::SCRATCH_BASE + PAGE;
        let mut s = Script::new();
        let create = s.here();
        s.thread_create(0).quiet();
        let running = s.here();
        s.load64(a).quiet().branch_eq(0u64, running);
        s.fork().quiet();
        let to_child = s.here();
        s.branch_eq(0u64, 0);
        s.wait();
        s.store64(stop, 1u64).quiet();
        s.thread_exit(0u64).quiet();
        let child = s.here();
        s.patch_target(to_child, child);
        s.load64(a);
        s.set_var(0, 0u64);
        let pause = s.here();
        s.add_var(0, 1u64).quiet().branch_ne(2000u64, pause);
        s.load64(a);
        s.exit(0u64);
        let sibling = s.here();
        s.set_var(0, 1u64);
        let again = s.here();
        s.store64(a, v(0, 0)).quiet();
        s.add_var(0, 1u64).quiet();
        s.load64(stop).quiet().branch_eq(0u64, again);
        s.load64(a);
        s.thread_exit(0u64).quiet();
        let s = patch_thread_starts(s, &[create], &[sibling]);
        let pid = proc::spawn(&s).expect("spawn");
        let r = proc::run_with_quantum(quantum_at_once());
        let o = r.of(pid);
        assert_eq!(o.status(), Some(0), "{:?}", o.exit);
        assert_eq!(o.results, [0], "thread 0: the child's status");
        let kids = r.children_of(pid);
        assert_eq!(kids.len(), 1);
        let c = kids[0];
        assert_eq!(c.status(), Some(0), "{:?}", c.exit);
        assert!(c.thread_results.is_empty(), "the child has one thread: {:?}", c.thread_results);
        assert_eq!(c.last_thread, 0);
        assert_eq!(c.results.len(), 2, "{:?}", c.results);
        assert!(c.results[0] >= 1, "the child saw the count running: {:?}", c.results);
        assert_eq!(c.results[0], c.results[1], "the child's page is a snapshot");
        assert_eq!(o.thread_results.len(), 1, "thread 1");
        let last = o.thread_results[0].1[0];
        assert!(last >= c.results[0], "thread 1 stored on: {last} < {}", c.results[0]);
        assert_vmm_consistent();
    }

    fn preemption_moves_processes_between_cpus() {
        // One more spinning process than there are processors, short time
        // slices: one process always waits in the queue, and each
        // processor's decrementer preempts what it runs and takes the
        // waiting one, last run wherever the previous preemption was. Each
        // process notes the processor it started on and spins, asking
        // again between spins, until it finds itself on another one or a
        // sibling said one did (a word of kernel memory).
        need_a_second_processor();
        let flag = mm::with_aix(|a| a.vm_galloc(V_WORKING, PAGE as i64)).expect("vm_galloc");
        store(flag, 0);
        let n = smp::online_count() as u64 + 1;
        let mut s = Script::new();
        s.syscall(sys::GETCPU, &[]).save(0);
        let lp = s.here();
        s.spin(2_000).syscall(sys::KREAD, &[lit(flag)]).quiet();
        let to_done = s.here();
        s.branch_ne(0u64, 0).syscall(sys::GETCPU, &[]).quiet().save(1);
        let to_moved = s.here();
        s.branch_ne(v(0, 0), 0).set(0u64).branch_eq(0u64, lp);
        let moved = s.here();
        s.syscall(sys::KWRITE, &[lit(flag), lit(1)]).quiet().set(v(1, 0)).report().exit(1u64);
        let done = s.here();
        s.exit(0u64);
        s.patch_target(to_done, done).patch_target(to_moved, moved);
        let pids: Vec<_> = (0..n).map(|_| proc::spawn(&s).expect("spawn")).collect();
        let r = proc::run_with_quantum(proc::default_quantum() / 10);
        let mut movers = 0;
        for pid in &pids {
            let o = r.of(*pid);
            match o.status() {
                Some(0) => assert_eq!(o.results.len(), 1),
                Some(1) => {
                    // Where it started, and where it found itself.
                    movers += 1;
                    let (from, to) = (o.results[0], o.reports[0]);
                    assert_ne!(from, to, "process {} says it moved", pid.0);
                    assert!(o.cpus & (1 << from) != 0 && o.cpus & (1 << to) != 0, "{:#x}", o.cpus);
                }
                other => panic!("process {}: {other:?} {:?}", pid.0, o.exit),
            }
        }
        assert!(movers >= 1, "no process saw itself move");
        assert!(r.preemptions >= 1, "no preemption");
        assert_ran_on_several(&r);
        mm::with_aix(|a| a.vm_gfree(flag, PAGE as i64)).expect("vm_gfree");
    }

    fn a_kernel_panic_in_a_run_stops_the_threads_other_cpus_run() {
        // Process A (on the boot processor, the first dispatched) waits
        // until process B runs on another processor, then makes the
        // kernel store to a page read-only to it (kwrite after a protect
        // behind its back): a kernel panic in A's system call, which the
        // harness catches on the boot processor. B never stops by itself;
        // the next run's clean-up must make its processor drop it, and
        // that run works.
        fn panicking_run() {
            let sync = sync_page();
            SYNC.store(sync, core::sync::atomic::Ordering::SeqCst);
            let kaddr = mm::with_aix(|a| a.vm_galloc(V_WORKING, PAGE as i64)).expect("vm_galloc");
            KADDR.store(kaddr, core::sync::atomic::Ordering::SeqCst);
            store(kaddr, 0);
            mm::with_vmm(|v| {
                let ea = arch_ppc64::addr::EffectiveAddress::new(kaddr);
                let sid = v.mapping_for(ea).expect("galloc mapping").1.translation_sid();
                let sid = match v.segments().get(sid).expect("segment").kind() {
                    vmm::segment::SegmentKind::View { target, .. } => *target,
                    vmm::segment::SegmentKind::Working => sid,
                };
                let page = ((kaddr >> 12) & 0xffff) as u32;
                let ro = vmm::segment::PageProt { pp: arch_ppc64::structures::hpte::Pp::RO_NONE, no_exec: false };
                v.protect(sid, page..page + 1, ro).expect("protect");
            });
            let mut a = Script::new();
            let w = a.here();
            a.syscall(sys::KREAD, &[lit(sync)]).quiet().branch_ne(1u64, w);
            a.syscall(sys::KWRITE, &[lit(kaddr), lit(5)]).exit(0u64);
            let mut b = Script::new();
            b.syscall(sys::KWRITE, &[lit(sync), lit(1)]).quiet();
            let lp = b.here();
            b.spin(1000).set(0u64).branch_eq(0u64, lp);
            proc::spawn(&a).expect("spawn");
            proc::spawn(&b).expect("spawn");
            proc::run_with_quantum(NO_PREEMPTION);
        }
        static SYNC: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
        static KADDR: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
        need_a_second_processor();
        assert!(harness::panics_with(panicking_run, "kernel fault at 0x"));
        let mut s = Script::new();
        s.syscall(sys::GETPID, &[]).exit(11u64);
        let (pids, r) = proc::run_scripts(&[&s, &s]);
        assert_eq!(r.outcomes.len(), 2, "nothing of the abandoned run is left");
        for pid in pids {
            assert_eq!(r.of(pid).status(), Some(11));
        }
        for cpu in others() {
            assert_eq!(run_on(cpu, |_| u64::from(trap::current_pid()), 0), 0, "CPU {cpu} runs no process");
        }
        mm::with_aix(|a| a.vm_gfree(KADDR.load(core::sync::atomic::Ordering::SeqCst), PAGE as i64)).expect("vm_gfree");
        free_page(SYNC.load(core::sync::atomic::Ordering::SeqCst));
        assert_vmm_consistent();
    }

    fn a_process_faulting_on_a_secondary_is_killed_with_the_report() {
        // Process A (the boot processor's, the first dispatched) waits
        // until process B has said where it runs; B, on another processor,
        // then loads from an address in no segment. B is killed with the
        // report, and A and the kernel go on.
        need_a_second_processor();
        let sync = sync_page();
        let mut a = Script::new();
        let w = a.here();
        a.syscall(sys::KREAD, &[lit(sync)]).quiet().branch_ne(1u64, w);
        a.exit(4u64);
        let mut b = Script::new();
        b.syscall(sys::GETCPU, &[])
            .syscall(sys::KWRITE, &[lit(sync), lit(1)])
            .quiet()
            .load64(0x0000_5000_0000_0000u64)
            .exit(0u64);
        let pids = [proc::spawn(&a).expect("spawn"), proc::spawn(&b).expect("spawn")];
        let r = proc::run_with_quantum(NO_PREEMPTION);
        assert_eq!(r.of(pids[0]).status(), Some(4));
        let ob = r.of(pids[1]);
        let cpu = ob.results[0];
        assert_ne!(cpu, 0, "B ran on a secondary");
        assert_eq!(ob.cpus, 1 << cpu, "and only there");
        let k = ob.killed().unwrap_or_else(|| panic!("not killed: {:?}", ob.exit));
        assert_eq!(k.pid, pids[1]);
        assert_eq!(k.address(), Some(0x0000_5000_0000_0000));
        assert_eq!(k.reason(), Some(VmFaultReason::NoSegment));
        assert!(k.srr0 >= user::TEXT_BASE && k.srr0 < user::TEXT_BASE + user::TEXT_SIZE);
        free_page(sync);
    }

    fn the_last_thread_to_exit_ends_the_process_and_exit_ends_them_all() {
        // thread_exit of all but the last leaves the process running; the
        // last one's status (10 + its index here) is the process's. Then
        // `exit` from one thread while a sibling spins ends both at once.
        let mut s = Script::new();
        let c1 = s.here();
        s.thread_create(0);
        let c2 = s.here();
        s.thread_create(0);
        s.thread_exit(10u64);
        let t1 = s.here();
        s.spin(10_000).thread_exit(11u64);
        let t2 = s.here();
        s.spin(200_000).store64(user::SCRATCH_BASE, 1u64).thread_exit(12u64);
        let s = patch_thread_starts(s, &[c1, c2], &[t1, t2]);
        let pid = proc::spawn(&s).expect("spawn");
        let r = proc::run();
        let o = r.of(pid);
        assert_eq!(o.status(), Some(10 + u64::from(o.last_thread)), "the last thread's status");
        assert_eq!(o.results, [1, 2], "thread indexes");
        assert_eq!(o.thread_results, [(1, alloc::vec![], 0), (2, alloc::vec![1], 1)]);

        let mut s = Script::new();
        let c = s.here();
        s.thread_create(0).spin(100_000).exit(3u64);
        let t = s.here();
        let lp = s.here();
        s.spin(1000).set(0u64).branch_eq(0u64, lp);
        let s = patch_thread_starts(s, &[c], &[t]);
        let pid = proc::spawn(&s).expect("spawn");
        let r = proc::run();
        let o = r.of(pid);
        assert_eq!(o.status(), Some(3), "exit ends the spinning sibling too");
        assert_eq!(o.thread_results.len(), 1);
    }

    fn a_process_makes_at_most_threads_max_threads() {
        let mut s = Script::new();
        let mut creates = Vec::new();
        for _ in 0..user::THREADS_MAX {
            creates.push(s.here());
            s.thread_create(0);
        }
        s.exit(0u64);
        let t = s.here();
        s.thread_exit(0u64);
        let starts: Vec<usize> = creates.iter().map(|_| t).collect();
        let s = patch_thread_starts(s, &creates, &starts);
        let pid = proc::spawn(&s).expect("spawn");
        let r = proc::run();
        let o = r.of(pid);
        let mut want: Vec<u64> = (1..user::THREADS_MAX as u64).collect();
        want.push(sys::EAGAIN);
        assert_eq!(o.results, want);
        assert_eq!(o.status(), Some(0));
    }

    fn fault_throughput_on_one_and_two_cpus() {
        // Demand-zero faults per second of virtual time: one process
        // first-touching 1024 pages (a 4 MiB vm_galloc allocation it
        // attached with vm_guatt) on the boot processor alone, then one
        // such process on each of two processors at once (from the first
        // start to the last end). The processes meet at a barrier in
        // kernel memory before they start the clock, and nothing preempts
        // them, so two processes are on two processors. A benchmark line;
        // what is asserted is that every page was zero-filled and each
        // process had its own processor.
        const PAGES: u64 = 1024;
        let hz = crate::bootinfo::get().cpu.timebase_frequency.map_or(512_000_000, u64::from);
        let unit = if icount() { "virtual s" } else { "s" };
        let sync = mm::with_aix(|a| a.vm_galloc(V_WORKING, PAGE as i64)).expect("vm_galloc");
        let mut rates = [0u64; 2];
        for (cpus, rate) in [1u64, 2].into_iter().zip(rates.iter_mut()) {
            if cpus as usize > smp::online_count() || (cpus > 1 && icount()) {
                break;
            }
            store(sync, 0);
            store(sync + 8, 0);
            let scripts: Vec<Script> = (0..cpus)
                .map(|p| {
                    let mut s = Script::new();
                    s.syscall(sys::VM_GALLOC, &[lit(V_WORKING as u64), lit(PAGES * PAGE)])
                        .save(0)
                        .syscall(sys::VM_GUATT, &[v(0, 0), lit(PAGES * PAGE), lit(VM_PRIV as u64), lit(VU_ANYWHERE as u64)])
                        .quiet()
                        .save(1)
                        .set_var(2, 0u64);
                    s.syscall(sys::KWRITE, &[lit(sync + 8 * p), lit(1)]).quiet();
                    for j in 0..cpus {
                        let w = s.here();
                        s.syscall(sys::KREAD, &[lit(sync + 8 * j)]).quiet().branch_ne(1u64, w);
                    }
                    s.timebase();
                    let lp = s.here();
                    s.store64(v(1, 0), 1u64).quiet().add_var(1, PAGE).add_var(2, 1u64).branch_ne(PAGES, lp);
                    s.timebase().exit(0u64);
                    s
                })
                .collect();
            let fills = mm::stats().zero_fills;
            let pids: Vec<_> = scripts.iter().map(|s| proc::spawn(s).expect("spawn")).collect();
            let r = proc::run_on((1 << cpus) - 1, NO_PREEMPTION);
            let mut first = u64::MAX;
            let mut last = 0;
            for pid in &pids {
                let o = r.of(*pid);
                assert_eq!(o.status(), Some(0), "{:?}", o.exit);
                assert_eq!(o.results.len(), 3, "vm_galloc, two timebases");
                first = first.min(o.results[1]);
                last = last.max(o.results[2]);
                mm::with_aix(|a| a.vm_gfree(o.results[0], (PAGES * PAGE) as i64)).expect("vm_gfree");
            }
            assert!(mm::stats().zero_fills - fills >= cpus * PAGES, "every page zero-filled");
            assert_eq!(u64::from(cpus_used(&r.outcomes).count_ones()), cpus, "one process per CPU");
            *rate = (u128::from(cpus * PAGES) * u128::from(hz) / u128::from((last - first).max(1))) as u64;
        }
        mm::with_aix(|a| a.vm_gfree(sync, PAGE as i64)).expect("vm_gfree");
        if rates[1] == 0 {
            println!("\nmeasure: fault_throughput 1 cpu {} faults/{unit}", rates[0]);
            harness::skip(if icount() {
                "the 2-CPU half needs multi-threaded TCG (-icount runs one vCPU at a time)"
            } else {
                "the 2-CPU half needs a second processor (qemu-run.sh --smp 2 or more)"
            });
        }
        println!(
            "\nmeasure: fault_throughput 1 cpu {} faults/{unit}, 2 cpus {} faults/{unit}, ratio {}.{:02}",
            rates[0],
            rates[1],
            rates[1] / rates[0].max(1),
            rates[1] * 100 / rates[0].max(1) % 100
        );
    }
}

/// Points each `thread_create` command at `creates[i]` to start its
/// thread at command `starts[i]` (scripts are built before the targets
/// are known).
fn patch_thread_starts(s: Script, creates: &[usize], starts: &[usize]) -> Script {
    let mut s = s;
    for (&c, &t) in creates.iter().zip(starts) {
        s.patch_thread_start(c, t);
    }
    s
}

// The trap layer's per-processor pid is what the fast system calls read:
// zero on the boot processor outside a run.
kernel_test! {
    fn no_process_is_current_outside_a_run() {
        assert_eq!(trap::current_pid(), 0);
    }
}
