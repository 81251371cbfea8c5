//! The emulated machine driven from several host threads, one per
//! processor: each has its own SLB and TLB, the HPT and memory are shared,
//! and a removal on one processor is seen by all. The fault handler used
//! here follows the rule an SMP VMM must keep — look the page up and
//! insert under one lock, so two processors faulting on the same page
//! enter exactly one HPTE (a second matching HPTE is a machine check in
//! the sim, which would fail the test).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arch_ppc64::addr::{EffectiveAddress, Esid, PhysAddr, Vsid};
use arch_ppc64::structures::hpte::Pp;
use arch_ppc64::structures::slb::{SlbEntry, SlbFlags};
use arch_ppc64::structures::{PageSize, SegmentSize};
use vmm::hpt::{HptManager, PageMapping, VirtualPage};
use vmm::platform::{
    FaultCause, FaultHandler, FaultOutcome, FrameAllocator, Interrupt, Privilege, SlbBackend,
    VmFault, VmFaultReason,
};
use vmm::sim::{Machine, SimConfig, SimHpt, SimSlb};

const CPUS: usize = 4;
const PAGES: u64 = 8;
const ROUNDS: u64 = 2000;
const SEG: u64 = 0x1000_0000;
const VSID: u64 = 0x4321;

fn ea(page: u64, word: u64) -> EffectiveAddress {
    EffectiveAddress::new(SEG + (page << 12) + word * 8)
}

fn vpage(page: u64) -> VirtualPage {
    VirtualPage::new(
        Vsid::new(VSID),
        ea(page, 0),
        SegmentSize::M256,
        PageSize::K4,
    )
    .unwrap()
}

fn slb_entry() -> SlbEntry {
    SlbEntry::new(
        Esid::new(1),
        Vsid::new(VSID),
        SegmentSize::M256,
        PageSize::K4,
        SlbFlags::KP,
    )
    .unwrap()
}

/// What every processor's handler shares: the HPT manager behind one
/// lock, each page's frame, and how many HPTEs it entered.
struct Shared {
    hpt: Mutex<HptManager<SimHpt>>,
    frames: Vec<PhysAddr>,
    inserts: AtomicU64,
}

/// One processor's handler: segment interrupts load its own SLB; a
/// missing HPTE is entered unless another processor entered it first.
struct CpuPager {
    slb: SimSlb,
    shared: Arc<Shared>,
}

impl FaultHandler for CpuPager {
    fn handle(&mut self, interrupt: Interrupt, _privilege: Privilege) -> FaultOutcome {
        let ea = interrupt.ea();
        let refuse = |reason| {
            FaultOutcome::Fault(VmFault {
                ea,
                access: interrupt.access(),
                reason,
            })
        };
        match interrupt.cause() {
            FaultCause::NoSegment => {
                self.slb.load(0, slb_entry()).unwrap();
                FaultOutcome::Resolved
            }
            FaultCause::NoPte => {
                let page = (ea.as_u64() - SEG) >> 12;
                let Some(&frame) = self.shared.frames.get(page as usize) else {
                    return refuse(VmFaultReason::OutOfRange);
                };
                let mut hpt = self.shared.hpt.lock().unwrap();
                if hpt.lookup(vpage(page)).unwrap().is_none() {
                    hpt.insert(&PageMapping::new(vpage(page), frame, Pp::RW_RW))
                        .unwrap();
                    self.shared.inserts.fetch_add(1, Ordering::Relaxed);
                }
                FaultOutcome::Resolved
            }
            _ => refuse(VmFaultReason::Protection),
        }
    }
}

#[test]
fn processors_on_threads_fault_the_same_pages_and_keep_every_store() {
    let m = Machine::with_cpus(
        SimConfig {
            memory_bytes: 4 << 20,
            hpt_shift: 18,
            slb_size: 32,
        },
        CPUS,
    )
    .unwrap();
    let mut mem = m.memory();
    let frames = (0..PAGES).map(|_| mem.allocate().unwrap()).collect();
    let shared = Arc::new(Shared {
        hpt: Mutex::new(HptManager::new(m.hpt()).unwrap()),
        frames,
        inserts: AtomicU64::new(0),
    });
    let stop = AtomicBool::new(false);
    let removed = AtomicU64::new(0);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..CPUS)
            .map(|cpu| {
                let me = m.cpu(cpu).unwrap();
                let mut pager = CpuPager {
                    slb: me.slb(),
                    shared: shared.clone(),
                };
                s.spawn(move || {
                    // Word `cpu` of every page holds this processor's count;
                    // each round stores the next value and reads it back.
                    for round in 1..=ROUNDS {
                        for page in 0..PAGES {
                            let at = ea(page, cpu as u64);
                            me.store_u64(at, round, Privilege::Supervisor, &mut pager)
                                .unwrap();
                            assert_eq!(
                                me.load_u64(at, Privilege::Supervisor, &mut pager).unwrap(),
                                round
                            );
                        }
                    }
                })
            })
            .collect();
        // Meanwhile, drop the pages' HPTEs again and again, as evictions
        // on another processor would.
        s.spawn(|| {
            let mut page = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut hpt = shared.hpt.lock().unwrap();
                if let Some((ptex, _)) = hpt.lookup(vpage(page)).unwrap() {
                    hpt.remove(ptex, vpage(page)).unwrap();
                    removed.fetch_add(1, Ordering::Relaxed);
                }
                drop(hpt);
                page = (page + 1) % PAGES;
            }
        });
        for w in workers {
            w.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });
    // Every processor's last store is there, seen from processor 0.
    let mut pager = CpuPager {
        slb: m.slb(),
        shared: shared.clone(),
    };
    for page in 0..PAGES {
        for cpu in 0..CPUS as u64 {
            assert_eq!(
                m.load_u64(ea(page, cpu), Privilege::Supervisor, &mut pager)
                    .unwrap(),
                ROUNDS,
                "page {page} word {cpu}"
            );
        }
    }
    // Each page has exactly one entry now, and every removal was
    // answered by exactly one new insert (or the first one).
    let hpt = shared.hpt.lock().unwrap();
    for page in 0..PAGES {
        assert!(hpt.lookup(vpage(page)).unwrap().is_some());
    }
    assert_eq!(m.valid_hptes() as u64, PAGES);
    let inserts = shared.inserts.load(Ordering::Relaxed);
    assert_eq!(inserts, PAGES + removed.load(Ordering::Relaxed));
}
