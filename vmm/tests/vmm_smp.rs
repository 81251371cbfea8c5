//! The real [`Vmm`] on a multiprocessor emulated machine, each processor
//! driven by its own host thread: every thread keeps its processor's
//! [`CpuMmu`] and lends it to the manager while it holds the manager's
//! lock; SLB shootdowns travel as "IPIs" through per-processor mailboxes,
//! taken between accesses and while waiting for the lock, as a kernel
//! takes them with external interrupts enabled.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arch_ppc64::addr::{EffectiveAddress, Esid};
use vmm::adspace::{ForkAction, SegKey};
use vmm::platform::{
    FaultHandler, FaultOutcome, FrameAllocator, Privilege, VmFault, VmFaultReason,
};
use vmm::segment::PageProt;
use vmm::sid::SidKind;
use vmm::sim::{Machine, SimConfig, SimHpt, SimMemory, SimSlb};
use vmm::vm::{
    CpuMmu, CpuSet, MapOptions, ShootdownRequest, SlbShootdown, SpaceId, SpaceRef, Vmm,
    KERNEL_ESID_BASE,
};

type SimVmm = Vmm<SimHpt, SimSlb, SimMemory>;

const P: Privilege = Privilege::Problem;

/// One pending request and the count its sender waits on.
type Mail = (ShootdownRequest, Arc<AtomicUsize>);

/// Per-processor mailboxes: the interrupt controller of the test.
#[derive(Default)]
struct Mailboxes {
    boxes: Vec<Mutex<VecDeque<Mail>>>,
    /// Requests sent, per processor.
    sent: Vec<AtomicU64>,
}

/// The platform side of [`SlbShootdown`]: post to each target, wait for
/// every target to have applied the request.
struct Ipi(Arc<Mailboxes>);

impl SlbShootdown for Ipi {
    fn shootdown(&mut self, targets: CpuSet, request: &ShootdownRequest) {
        let pending = Arc::new(AtomicUsize::new(targets.len()));
        for t in targets.iter() {
            self.0.sent[t].fetch_add(1, Ordering::Relaxed);
            self.0.boxes[t]
                .lock()
                .unwrap()
                .push_back((*request, pending.clone()));
        }
        while pending.load(Ordering::Acquire) != 0 {
            std::thread::yield_now();
        }
    }
}

/// A multiprocessor machine and its manager.
struct Smp {
    machine: Machine,
    vmm: Mutex<SimVmm>,
    mail: Arc<Mailboxes>,
    /// Each processor's state while its thread is not running.
    cpus: Vec<Mutex<Option<CpuMmu<SimSlb>>>>,
}

impl Smp {
    fn new(cpus: usize) -> Smp {
        let machine = Machine::with_cpus(
            SimConfig {
                memory_bytes: 16 << 20,
                hpt_shift: 18,
                slb_size: 32,
            },
            cpus,
        )
        .unwrap();
        let mut vmm = Vmm::new(machine.hpt(), machine.slb(), machine.memory(), 2).unwrap();
        let mail = Arc::new(Mailboxes {
            boxes: (0..cpus).map(|_| Mutex::default()).collect(),
            sent: (0..cpus).map(|_| AtomicU64::new(0)).collect(),
        });
        vmm.set_shootdown(Box::new(Ipi(mail.clone())));
        let mut states = vec![Mutex::new(vmm.take_cpu())];
        for i in 1..cpus {
            let c = vmm.add_cpu(machine.cpu(i).unwrap().slb()).unwrap();
            assert_eq!(c.index(), i);
            states.push(Mutex::new(Some(c)));
        }
        Smp {
            machine,
            vmm: Mutex::new(vmm),
            mail,
            cpus: states,
        }
    }

    /// Processor `i`, for its thread.
    fn cpu(&self, i: usize) -> Cpu<'_> {
        Cpu {
            smp: self,
            index: i,
            machine: self.machine.cpu(i).unwrap(),
            state: self.cpus[i].lock().unwrap().take(),
        }
    }
}

/// One processor as its thread drives it.
struct Cpu<'a> {
    smp: &'a Smp,
    index: usize,
    machine: Machine,
    state: Option<CpuMmu<SimSlb>>,
}

impl Drop for Cpu<'_> {
    fn drop(&mut self) {
        *self.smp.cpus[self.index].lock().unwrap() = self.state.take();
    }
}

impl Cpu<'_> {
    /// Takes the interrupts waiting for this processor.
    fn take_ipis(&mut self) {
        let mut mailbox = self.smp.mail.boxes[self.index].lock().unwrap();
        while let Some((request, pending)) = mailbox.pop_front() {
            self.state.as_mut().unwrap().apply(&request);
            pending.fetch_sub(1, Ordering::Release);
        }
    }

    /// Runs `f` on the manager with this processor installed, taking
    /// interrupts while the lock is busy.
    fn with_vmm<R>(&mut self, f: impl FnOnce(&mut SimVmm) -> R) -> R {
        let mut g: MutexGuard<'_, SimVmm> = loop {
            if let Ok(g) = self.smp.vmm.try_lock() {
                break g;
            }
            self.take_ipis();
            std::thread::yield_now();
        };
        g.install_cpu(self.state.take().unwrap()).unwrap();
        let r = f(&mut g);
        self.state = g.take_cpu();
        r
    }

    fn load(&mut self, ea: u64) -> Result<u64, VmFaultReason> {
        self.take_ipis();
        let m = self.machine.clone();
        m.load_u64(EffectiveAddress::new(ea), P, self)
            .map_err(|f: VmFault| f.reason)
    }

    fn store(&mut self, ea: u64, v: u64) -> Result<(), VmFaultReason> {
        self.take_ipis();
        let m = self.machine.clone();
        m.store_u64(EffectiveAddress::new(ea), v, P, self)
            .map_err(|f: VmFault| f.reason)
    }

    /// Takes interrupts until `done`, so a processor whose work is over
    /// still answers shootdowns (an idle processor does).
    fn idle_until(&mut self, done: &AtomicBool) {
        while !done.load(Ordering::Acquire) {
            self.take_ipis();
            std::thread::yield_now();
        }
        self.take_ipis();
    }
}

impl FaultHandler for Cpu<'_> {
    fn handle(
        &mut self,
        interrupt: vmm::platform::Interrupt,
        privilege: Privilege,
    ) -> FaultOutcome {
        self.with_vmm(|v| v.handle(interrupt, privilege))
    }
}

fn ea(esid: u64, page: u64, word: u64) -> u64 {
    Esid::new(esid).base().as_u64() + (page << 12) + word * 8
}

/// A process space of `v` with one `pages`-page working segment mapped
/// at ESID 1 as `opts` says.
fn space_with_segment(v: &mut SimVmm, pages: u64, opts: MapOptions) -> (SpaceId, vmm::sid::Sid) {
    let sid = v
        .create_segment(SidKind::User, pages << 12, PageProt::USER_RW)
        .unwrap();
    let space = v.create_space();
    v.map(SpaceRef::User(space), Esid::new(1), sid, opts)
        .unwrap();
    (space, sid)
}

/// [`space_with_segment`] with a plain unprivileged mapping.
fn process(smp: &Smp, pages: u64) -> (SpaceId, vmm::sid::Sid) {
    space_with_segment(
        &mut smp.vmm.lock().unwrap(),
        pages,
        MapOptions::new(SegKey::UNPRIV),
    )
}

/// A shootdown that records what it is asked to deliver.
struct Recorder(Arc<Mutex<Vec<(CpuSet, ShootdownRequest)>>>);

impl SlbShootdown for Recorder {
    fn shootdown(&mut self, targets: CpuSet, request: &ShootdownRequest) {
        self.0.lock().unwrap().push((targets, *request));
    }
}

#[test]
fn processors_get_the_bolted_kernel_segments_when_added_and_later() {
    let machine = Machine::with_cpus(SimConfig::default(), 2).unwrap();
    let mut v = Vmm::new(machine.hpt(), machine.slb(), machine.memory(), 2).unwrap();
    let bolted = |v: &mut SimVmm, esid: u64| {
        let sid = v
            .create_segment(SidKind::Kernel, 1 << 12, PageProt::KERNEL_RW)
            .unwrap();
        let mut opts = MapOptions::new(SegKey::KERNEL);
        opts.bolted = true;
        v.map(
            SpaceRef::Kernel,
            Esid::new(KERNEL_ESID_BASE + esid),
            sid,
            opts,
        )
        .unwrap();
    };
    bolted(&mut v, 1);
    let sent = Arc::new(Mutex::new(Vec::new()));
    v.set_shootdown(Box::new(Recorder(sent.clone())));
    let slb1 = machine.cpu(1).unwrap().slb();
    let mut one = v.add_cpu(slb1.clone()).unwrap();
    assert_eq!(one.index(), 1);
    assert_eq!(v.online_cpus(), CpuSet::single(0).with(1));
    // Added with the bolted segment already in its bolted index.
    let first = one.slb().lookup(Esid::new(KERNEL_ESID_BASE + 1)).unwrap();
    assert!(first < 2);
    assert_eq!(slb1.valid_entries(), 1);
    // A segment bolted later reaches processor 1 through a shootdown.
    bolted(&mut v, 2);
    let requests: Vec<_> = sent.lock().unwrap().drain(..).collect();
    assert!(!requests.is_empty());
    for (targets, r) in &requests {
        assert_eq!(*targets, CpuSet::single(1));
        one.apply(r);
    }
    assert!(one.slb().lookup(Esid::new(KERNEL_ESID_BASE + 2)).unwrap() < 2);
    assert_eq!(slb1.valid_entries(), 2);
    // Processor 0 holds both too; unmapping one drops it on both.
    assert_eq!(machine.slb().valid_entries(), 2);
    v.unmap(SpaceRef::Kernel, Esid::new(KERNEL_ESID_BASE + 1))
        .unwrap();
    for (_, r) in sent.lock().unwrap().drain(..) {
        one.apply(&r);
    }
    assert!(one.slb().lookup(Esid::new(KERNEL_ESID_BASE + 1)).is_none());
    assert_eq!(slb1.valid_entries(), 1);
    assert_eq!(machine.slb().valid_entries(), 1);
    v.check_invariants().unwrap();
    // A process space's change goes only where it runs.
    let (space, _) = space_with_segment(&mut v, 1, MapOptions::new(SegKey::UNPRIV));
    v.unmap(SpaceRef::User(space), Esid::new(1)).unwrap();
    assert!(sent.lock().unwrap().is_empty());
}

#[test]
fn threads_fault_the_same_pages_on_every_processor_and_enter_one_hpte_each() {
    const CPUS: usize = 4;
    const PAGES: u64 = 48;
    const ROUNDS: u64 = 30;
    let smp = Smp::new(CPUS);
    let (space, _) = process(&smp, PAGES);
    let done = AtomicBool::new(false);
    let finished = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for i in 0..CPUS {
            let smp = &smp;
            let (done, finished) = (&done, &finished);
            s.spawn(move || {
                let mut cpu = smp.cpu(i);
                cpu.with_vmm(|v| v.switch_to(Some(space)).unwrap());
                // Each processor owns word i of every page: first touches
                // race (demand-zero on the same pages), later rounds race
                // with the others' faults on pages they share.
                for round in 1..=ROUNDS {
                    for p in 0..PAGES {
                        let p = (p + i as u64 * 7) % PAGES;
                        cpu.store(ea(1, p, i as u64), round).unwrap();
                        assert_eq!(cpu.load(ea(1, p, i as u64)).unwrap(), round);
                    }
                }
                cpu.with_vmm(|v| v.switch_to(None).unwrap());
                if finished.fetch_add(1, Ordering::AcqRel) + 1 == CPUS {
                    done.store(true, Ordering::Release);
                }
                cpu.idle_until(done);
            });
        }
    });
    // Every store is there; each page has one frame and one HPTE.
    let mut cpu = smp.cpu(0);
    cpu.with_vmm(|v| v.switch_to(Some(space)).unwrap());
    for p in 0..PAGES {
        for i in 0..CPUS as u64 {
            assert_eq!(cpu.load(ea(1, p, i)).unwrap(), ROUNDS, "page {p} word {i}");
        }
    }
    cpu.with_vmm(|v| {
        v.check_invariants().unwrap();
        assert_eq!(v.hptes_in_use(), PAGES as usize);
        assert_eq!(v.counters().zero_fills, PAGES);
    });
    assert_eq!(smp.machine.valid_hptes(), PAGES as usize);
}

#[test]
fn an_unmapped_segment_is_gone_from_every_processor_before_unmap_returns() {
    // Processor 1 keeps loading from ESID 1 of a space processor 0 also
    // runs; processor 0 unmaps it. The segment stays mapped in a second
    // space, so its HPTEs stay valid: only the SLB shootdown stops
    // processor 1 from reading through its old SLB entry.
    let smp = Smp::new(2);
    let (space, sid) = process(&smp, 4);
    {
        let mut v = smp.vmm.lock().unwrap();
        let other = v.create_space();
        v.map(
            SpaceRef::User(other),
            Esid::new(1),
            sid,
            MapOptions::new(SegKey::UNPRIV),
        )
        .unwrap();
    }
    let unmapped = AtomicBool::new(false);
    let loads_before = AtomicU64::new(0);
    std::thread::scope(|s| {
        let (smp, unmapped, loads_before) = (&smp, &unmapped, &loads_before);
        let reader = s.spawn(move || {
            let mut cpu = smp.cpu(1);
            cpu.with_vmm(|v| v.switch_to(Some(space)).unwrap());
            cpu.store(ea(1, 2, 0), 0x5a5a).unwrap();
            loop {
                let after = unmapped.load(Ordering::Acquire);
                match cpu.load(ea(1, 2, 0)) {
                    Ok(v) => {
                        assert!(!after, "read {v:#x} through a segment already unmapped");
                        assert_eq!(v, 0x5a5a);
                        loads_before.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(r) => {
                        assert_eq!(r, VmFaultReason::NoSegment);
                        break;
                    }
                }
            }
            assert!(cpu
                .state
                .as_ref()
                .unwrap()
                .slb()
                .lookup(Esid::new(1))
                .is_none());
            cpu.with_vmm(|v| v.switch_to(None).unwrap());
        });
        let mut cpu = smp.cpu(0);
        cpu.with_vmm(|v| v.switch_to(Some(space)).unwrap());
        // Let the reader get going (it stores first), then unmap.
        while loads_before.load(Ordering::Relaxed) < 50 {
            cpu.take_ipis();
            std::thread::yield_now();
        }
        cpu.with_vmm(|v| v.unmap(SpaceRef::User(space), Esid::new(1)).unwrap());
        unmapped.store(true, Ordering::Release);
        while !reader.is_finished() {
            cpu.take_ipis();
            std::thread::yield_now();
        }
        reader.join().unwrap();
        cpu.with_vmm(|v| {
            v.switch_to(None).unwrap();
            v.check_invariants().unwrap();
        });
    });
    assert!(smp.mail.sent[1].load(Ordering::Relaxed) >= 1);
    assert_eq!(smp.mail.sent[0].load(Ordering::Relaxed), 0);
}

#[test]
fn a_space_running_on_another_processor_is_not_destroyed() {
    let smp = Smp::new(2);
    let (space, _) = process(&smp, 1);
    let mut one = smp.cpu(1);
    one.with_vmm(|v| v.switch_to(Some(space)).unwrap());
    let mut zero = smp.cpu(0);
    zero.with_vmm(|v| {
        assert_eq!(v.cpus_running(space), CpuSet::single(1));
        assert_eq!(
            v.destroy_space(space),
            Err(vmm::vm::VmError::SpaceRunning(space))
        );
        assert!(v.space(space).is_ok());
    });
    one.with_vmm(|v| v.switch_to(None).unwrap());
    zero.with_vmm(|v| {
        assert_eq!(v.cpus_running(space), CpuSet::EMPTY);
        v.destroy_space(space).unwrap();
        v.check_invariants().unwrap();
    });
}

/// Runs `work(cpu)` on processors `0..cpus`, one thread each; a processor
/// done with its work keeps taking shootdowns until all are done.
fn on_every_cpu(smp: &Smp, cpus: usize, work: impl Fn(&mut Cpu<'_>) + Sync) {
    let done = AtomicBool::new(false);
    let finished = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for i in 0..cpus {
            let (done, finished, work) = (&done, &finished, &work);
            s.spawn(move || {
                let mut cpu = smp.cpu(i);
                work(&mut cpu);
                if finished.fetch_add(1, Ordering::AcqRel) + 1 == cpus {
                    done.store(true, Ordering::Release);
                }
                cpu.idle_until(done);
            });
        }
    });
}

#[test]
fn fork_races_stores_on_other_processors_and_no_store_is_lost() {
    const PAGES: u64 = 12;
    const ROUNDS: u64 = 40;
    const FORKS: usize = 12;
    let smp = Smp::new(3);
    let space = {
        let mut opts = MapOptions::new(SegKey::UNPRIV);
        opts.fork = ForkAction::Copy;
        opts.owned = true;
        space_with_segment(&mut smp.vmm.lock().unwrap(), PAGES, opts).0
    };
    let frames_before = smp.machine.memory().free_frames();
    on_every_cpu(&smp, 3, |cpu| {
        let me = cpu.index as u64;
        cpu.with_vmm(|v| v.switch_to(Some(space)).unwrap());
        if me == 0 {
            // The parent's forking thread: each child is a snapshot in
            // which every word holds a value its writer had stored.
            for _ in 0..FORKS {
                let child = cpu.with_vmm(|v| v.fork(space).unwrap());
                cpu.with_vmm(|v| v.switch_to(Some(child)).unwrap());
                for p in 0..PAGES {
                    for w in 1..3 {
                        let seen = cpu.load(ea(1, p, w)).unwrap();
                        assert!(seen <= ROUNDS, "child page {p} word {w}: {seen}");
                    }
                }
                cpu.with_vmm(|v| {
                    v.switch_to(Some(space)).unwrap();
                    v.destroy_space(child).unwrap();
                });
            }
        } else {
            for round in 1..=ROUNDS {
                for p in 0..PAGES {
                    cpu.store(ea(1, p, me), round).unwrap();
                    assert_eq!(cpu.load(ea(1, p, me)).unwrap(), round);
                }
            }
        }
        cpu.with_vmm(|v| v.switch_to(None).unwrap());
    });
    let mut cpu = smp.cpu(0);
    cpu.with_vmm(|v| {
        v.switch_to(Some(space)).unwrap();
        v.check_invariants().unwrap();
    });
    for p in 0..PAGES {
        for w in 1..3 {
            assert_eq!(cpu.load(ea(1, p, w)).unwrap(), ROUNDS, "page {p} word {w}");
        }
    }
    // Every frame went back once parent and children are gone.
    cpu.with_vmm(|v| {
        v.switch_to(None).unwrap();
        v.destroy_space(space).unwrap();
        v.check_invariants().unwrap();
        assert_eq!(v.sids_in_use(), 0);
    });
    assert_eq!(smp.machine.memory().free_frames(), frames_before);
}

#[test]
fn segment_storms_on_every_processor_keep_the_tables_consistent() {
    // Every processor creates, maps (in the kernel half, which all
    // processors hold, so each map and unmap is a shootdown to all the
    // others), touches, unmaps and deletes segments of its own.
    const CPUS: usize = 4;
    const ITERATIONS: u64 = 25;
    let smp = Smp::new(CPUS);
    let frames = smp.machine.memory().free_frames();
    on_every_cpu(&smp, CPUS, |cpu| {
        let me = cpu.index as u64;
        for k in 0..ITERATIONS {
            let esid = KERNEL_ESID_BASE + 0x100 + me * 0x1000 + k;
            let sid = cpu.with_vmm(|v| {
                let sid = v
                    .create_segment(SidKind::Kernel, 3 << 12, PageProt::KERNEL_RW)
                    .unwrap();
                v.map(
                    SpaceRef::Kernel,
                    Esid::new(esid),
                    sid,
                    MapOptions::new(SegKey::KERNEL),
                )
                .unwrap();
                sid
            });
            let at = EffectiveAddress::new(Esid::new(esid).base().as_u64() + 0x1008);
            let m = cpu.machine.clone();
            m.store_u64(at, me << 32 | k, Privilege::Supervisor, cpu)
                .unwrap();
            assert_eq!(
                m.load_u64(at, Privilege::Supervisor, cpu).unwrap(),
                me << 32 | k
            );
            cpu.with_vmm(|v| {
                v.unmap(SpaceRef::Kernel, Esid::new(esid)).unwrap();
                assert!(v.delete_segment(sid).unwrap());
            });
            assert!(cpu
                .state
                .as_ref()
                .unwrap()
                .slb()
                .lookup(Esid::new(esid))
                .is_none());
        }
    });
    let v = smp.vmm.lock().unwrap();
    assert_eq!(v.sids_in_use(), 0);
    assert!(v.segments().is_empty());
    assert_eq!(v.hptes_in_use(), 0);
    assert_eq!(smp.machine.valid_hptes(), 0);
    assert_eq!(smp.machine.memory().free_frames(), frames);
    for i in 1..CPUS {
        // Each processor was told of every other processor's changes.
        assert!(smp.mail.sent[i].load(Ordering::Relaxed) >= ITERATIONS);
    }
}
