//! The shared fault path ([`Vmm::resolve_shared`]) on a multiprocessor
//! emulated machine, each processor driven by its own host thread: the
//! manager sits behind a reader–writer lock, missing-HPTE faults take the
//! read side and run at once, everything else (segment misses included)
//! takes the write side with the processor's state lent to the manager.
//! After each run the manager's invariants are checked: one HPTE per page,
//! every record naming an entry that is there.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use arch_ppc64::addr::{EffectiveAddress, Esid};
use vmm::adspace::SegKey;
use vmm::platform::{
    FaultHandler, FaultOutcome, FrameAllocator, Interrupt, Privilege, VmFault, VmFaultReason,
};
use vmm::segment::PageProt;
use vmm::sid::{Sid, SidKind};
use vmm::sim::{Machine, SimConfig, SimHpt, SimMemory, SimSlb};
use vmm::vm::{CpuMmu, MapOptions, SharedFault, SpaceId, SpaceRef, Vmm};

type SimVmm = Vmm<SimHpt, SimSlb, SimMemory>;

const P: Privilege = Privilege::Problem;
const PAGE: u64 = 4096;

struct Smp {
    machine: Machine,
    vmm: RwLock<SimVmm>,
    /// Faults the read side resolved, and those it handed to the write side.
    shared: AtomicU64,
    exclusive: AtomicU64,
}

impl Smp {
    fn new(memory_bytes: usize) -> (Smp, Vec<CpuMmu<SimSlb>>) {
        const CPUS: usize = 4;
        let machine = Machine::with_cpus(
            SimConfig {
                memory_bytes,
                hpt_shift: 18,
                slb_size: 32,
            },
            CPUS,
        )
        .unwrap();
        let mut vmm = Vmm::new(machine.hpt(), machine.slb(), machine.memory(), 2).unwrap();
        let mut states = vec![vmm.take_cpu().unwrap()];
        for i in 1..CPUS {
            states.push(vmm.add_cpu(machine.cpu(i).unwrap().slb()).unwrap());
        }
        let smp = Smp {
            machine,
            vmm: RwLock::new(vmm),
            shared: AtomicU64::new(0),
            exclusive: AtomicU64::new(0),
        };
        (smp, states)
    }

    /// A process space with `segments` working segments of `pages` pages
    /// at ESIDs 1.., unprivileged.
    fn process(&self, segments: u64, pages: u64) -> (SpaceId, Vec<Sid>) {
        let mut v = self.vmm.write().unwrap();
        let space = v.create_space();
        let sids = (1..=segments)
            .map(|esid| {
                let sid = v
                    .create_segment(SidKind::User, pages * PAGE, PageProt::USER_RW)
                    .unwrap();
                v.map(
                    SpaceRef::User(space),
                    Esid::new(esid),
                    sid,
                    MapOptions::new(SegKey::UNPRIV),
                )
                .unwrap();
                sid
            })
            .collect();
        (space, sids)
    }

    /// Processor `i` running `space`, for its thread.
    fn cpu(&self, i: usize, mut state: CpuMmu<SimSlb>, space: SpaceId) -> Cpu<'_> {
        let mut v = self.vmm.write().unwrap();
        v.install_cpu(state).unwrap();
        v.switch_to(Some(space)).unwrap();
        state = v.take_cpu().unwrap();
        Cpu {
            smp: self,
            machine: self.machine.cpu(i).unwrap(),
            state: Some(state),
        }
    }

    fn check(&self) {
        self.vmm.read().unwrap().check_invariants().unwrap();
    }
}

struct Cpu<'a> {
    smp: &'a Smp,
    machine: Machine,
    state: Option<CpuMmu<SimSlb>>,
}

impl FaultHandler for Cpu<'_> {
    fn handle(&mut self, interrupt: Interrupt, privilege: Privilege) -> FaultOutcome {
        {
            let v = self.smp.vmm.read().unwrap();
            // SAFETY: under the read side: every other call on the manager
            // takes the write side; the state is this processor's.
            match unsafe { v.resolve_shared(self.state.as_ref().unwrap(), interrupt, privilege) } {
                SharedFault::Resolved => {
                    self.smp.shared.fetch_add(1, Ordering::Relaxed);
                    return FaultOutcome::Resolved;
                }
                SharedFault::Refused(reason) => {
                    return FaultOutcome::Fault(VmFault {
                        ea: interrupt.ea(),
                        access: interrupt.access(),
                        reason,
                    })
                }
                SharedFault::Exclusive => {}
            }
        }
        self.smp.exclusive.fetch_add(1, Ordering::Relaxed);
        let mut v = self.smp.vmm.write().unwrap();
        v.install_cpu(self.state.take().unwrap()).unwrap();
        let outcome = v.handle(interrupt, privilege);
        self.state = v.take_cpu();
        outcome
    }
}

impl Cpu<'_> {
    fn load(&mut self, ea: u64) -> Result<u64, VmFaultReason> {
        let m = self.machine.clone();
        m.load_u64(EffectiveAddress::new(ea), P, self)
            .map_err(|f| f.reason)
    }

    fn store(&mut self, ea: u64, v: u64) -> Result<(), VmFaultReason> {
        let m = self.machine.clone();
        m.store_u64(EffectiveAddress::new(ea), v, P, self)
            .map_err(|f| f.reason)
    }

    /// Leaves the space and hands the state back.
    fn finish(mut self) -> CpuMmu<SimSlb> {
        let mut v = self.smp.vmm.write().unwrap();
        v.install_cpu(self.state.take().unwrap()).unwrap();
        v.switch_to(None).unwrap();
        v.take_cpu().unwrap()
    }
}

fn ea(esid: u64, page: u64, word: u64) -> u64 {
    Esid::new(esid).base().as_u64() + page * PAGE + word * 8
}

#[test]
fn processes_on_four_processors_fault_their_own_segments_through_the_shared_path() {
    const PAGES: u64 = 64;
    let (smp, states) = Smp::new(16 << 20);
    let spaces: Vec<_> = (0..4).map(|_| smp.process(1, PAGES).0).collect();
    let frames = smp.machine.memory().free_frames();
    let states: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = states
            .into_iter()
            .enumerate()
            .map(|(i, state)| {
                let smp = &smp;
                let space = spaces[i];
                s.spawn(move || {
                    let mut cpu = smp.cpu(i, state, space);
                    for p in 0..PAGES {
                        cpu.store(ea(1, p, i as u64), (i as u64) << 32 | p).unwrap();
                    }
                    for p in 0..PAGES {
                        assert_eq!(cpu.load(ea(1, p, i as u64)).unwrap(), (i as u64) << 32 | p);
                    }
                    cpu.finish()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Every first touch went through the read side; only the four segment
    // misses took the write side.
    assert_eq!(smp.shared.load(Ordering::Relaxed), 4 * PAGES);
    assert_eq!(smp.exclusive.load(Ordering::Relaxed), 4);
    assert_eq!(
        frames - smp.machine.memory().free_frames(),
        4 * PAGES as usize
    );
    let v = smp.vmm.read().unwrap();
    assert_eq!(v.counters().zero_fills, 4 * PAGES);
    assert_eq!(v.hptes_in_use(), 4 * PAGES as usize);
    drop(v);
    smp.check();
    drop(states);
}

#[test]
fn threads_on_four_processors_racing_first_touches_enter_one_hpte_and_one_frame_per_page() {
    // Four threads of one process store their own word of the same 32
    // untouched pages at once: each page gets one frame and one HPTE, and
    // every thread's stores are in it.
    const PAGES: u64 = 32;
    let (smp, states) = Smp::new(16 << 20);
    let (space, _) = smp.process(1, PAGES);
    let frames = smp.machine.memory().free_frames();
    let mut states: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = states
            .into_iter()
            .enumerate()
            .map(|(i, state)| {
                let smp = &smp;
                s.spawn(move || {
                    let mut cpu = smp.cpu(i, state, space);
                    for round in 0..4 {
                        for p in 0..PAGES {
                            cpu.store(ea(1, p, i as u64), round << 48 | (i as u64) << 32 | p)
                                .unwrap();
                        }
                    }
                    cpu.finish()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(frames - smp.machine.memory().free_frames(), PAGES as usize);
    let v = smp.vmm.read().unwrap();
    assert_eq!(v.hptes_in_use(), PAGES as usize);
    assert_eq!(v.counters().zero_fills, PAGES);
    drop(v);
    smp.check();
    // Every thread's last round is in the one page there is.
    let mut cpu = smp.cpu(0, states.remove(0), space);
    for p in 0..PAGES {
        for i in 0..4u64 {
            assert_eq!(
                cpu.load(ea(1, p, i)).unwrap(),
                3 << 48 | i << 32 | p,
                "page {p} word {i}"
            );
        }
    }
    cpu.finish();
}

#[test]
fn evictions_from_four_processors_at_once_leave_every_record_true() {
    // Three processes with two 16 MiB segments each (24576 pages) fill a
    // 2048-PTEG table (16384 slots) and more: shared inserts evict each
    // other's entries (their records are fixed after the inserting
    // segment's lock is dropped), and every page reads back what its
    // process stored.
    const PAGES: u64 = 4096;
    let (smp, states) = Smp::new(112 << 20);
    let spaces: Vec<_> = (0..3).map(|_| smp.process(2, PAGES).0).collect();
    let mut states = states.into_iter();
    let idle = states.next().unwrap();
    std::thread::scope(|s| {
        for (i, state) in states.enumerate() {
            let smp = &smp;
            let space = spaces[i];
            s.spawn(move || {
                let mut cpu = smp.cpu(i + 1, state, space);
                let value = |esid: u64, p: u64| (i as u64) << 40 | esid << 32 | p;
                for esid in 1..=2 {
                    for p in 0..PAGES {
                        cpu.store(ea(esid, p, 0), value(esid, p)).unwrap();
                    }
                }
                for esid in 1..=2 {
                    for p in (0..PAGES).rev() {
                        assert_eq!(cpu.load(ea(esid, p, 0)).unwrap(), value(esid, p));
                    }
                }
                cpu.finish()
            });
        }
    });
    drop(idle);
    let v = smp.vmm.read().unwrap();
    let c = v.counters();
    assert!(c.evictions >= 24576 - 16384, "{c:?}");
    assert_eq!(c.zero_fills, 24576, "{c:?}");
    drop(v);
    smp.check();
}
