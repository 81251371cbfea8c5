//! "Processes" running loads, stores and fetches on the emulated MMU, with
//! every interrupt going through the VMM's fault handler.

mod vmm_common;

use arch_ppc64::addr::Esid;
use arch_ppc64::structures::hpte::Pp;
use vmm::adspace::{ForkAction, SegKey};
use vmm::platform::{FrameAllocator, Privilege, VmFaultReason};
use vmm::segment::{PageProt, ViewProt};
use vmm::sid::SidKind;
use vmm::vm::{MapOptions, SpaceRef, VmError, KERNEL_ESID_BASE};
use vmm_common::{ea, Env, BOLTED};

const PR: Privilege = Privilege::Problem;
const SV: Privilege = Privilege::Supervisor;
const SEG: u64 = 1 << 28;
const RO: PageProt = PageProt {
    pp: Pp::RO_RO,
    no_exec: false,
};

fn user_rw() -> MapOptions {
    MapOptions::new(SegKey::UNPRIV)
}

#[test]
fn processes_see_their_own_zero_filled_memory_at_the_same_address() {
    let mut env = Env::new(1 << 20, 32);
    let v = &mut env.vmm;
    let a = v
        .create_segment(SidKind::User, SEG, PageProt::USER_RW)
        .unwrap();
    let b = v
        .create_segment(SidKind::User, SEG, PageProt::USER_RW)
        .unwrap();
    let p = v.create_space();
    let q = v.create_space();
    v.map(SpaceRef::User(p), Esid::new(1), a, user_rw())
        .unwrap();
    v.map(SpaceRef::User(q), Esid::new(1), b, user_rw())
        .unwrap();

    env.vmm.switch_to(Some(p)).unwrap();
    assert_eq!(env.load(ea(1, 7, 0x10), PR), Ok(0), "not zero-filled");
    env.store(ea(1, 7, 0x10), 0xA1, PR).unwrap();
    env.vmm.switch_to(Some(q)).unwrap();
    assert_eq!(env.load(ea(1, 7, 0x10), PR), Ok(0));
    env.store(ea(1, 7, 0x10), 0xB2, PR).unwrap();
    env.vmm.switch_to(Some(p)).unwrap();
    assert_eq!(env.load(ea(1, 7, 0x10), PR), Ok(0xA1));
    env.vmm.switch_to(Some(q)).unwrap();
    assert_eq!(env.load(ea(1, 7, 0x10), PR), Ok(0xB2));

    let c = env.vmm.counters();
    assert_eq!(c.zero_fills, 2);
    assert!(c.slb_misses >= 4, "each switch drops the user SLB entries");
    assert_eq!(c.faults_refused, 0);
    env.vmm.check_invariants().unwrap();

    env.vmm.destroy_space(p).unwrap();
    env.vmm.destroy_space(q).unwrap();
    env.vmm.delete_segment(a).unwrap();
    env.vmm.delete_segment(b).unwrap();
    env.assert_empty();
}

#[test]
fn shared_segments_show_each_others_stores() {
    let mut env = Env::new(1 << 20, 32);
    let v = &mut env.vmm;
    let s = v
        .create_segment(SidKind::User, 2 * 4096, PageProt::USER_RW)
        .unwrap();
    let p = v.create_space();
    let q = v.create_space();
    v.map(SpaceRef::User(p), Esid::new(3), s, user_rw())
        .unwrap();
    v.map(SpaceRef::User(q), Esid::new(9), s, user_rw())
        .unwrap();
    env.vmm.switch_to(Some(p)).unwrap();
    env.store(ea(3, 1, 0), 42, PR).unwrap();
    env.vmm.switch_to(Some(q)).unwrap();
    assert_eq!(env.load(ea(9, 1, 0), PR), Ok(42));
    // Beyond the two pages of the segment.
    assert_eq!(env.load(ea(9, 2, 0), PR), Err(VmFaultReason::OutOfRange));
    // Nothing at ESID 3 in q.
    assert_eq!(env.load(ea(3, 1, 0), PR), Err(VmFaultReason::NoSegment));
    env.vmm.check_invariants().unwrap();
    env.vmm.destroy_space(p).unwrap();
    env.vmm.destroy_space(q).unwrap();
    env.vmm.delete_segment(s).unwrap();
    env.assert_empty();
}

#[test]
fn kernel_memory_faults_in_problem_state_and_guatt_views_expose_a_window() {
    let mut env = Env::new(1 << 20, 32);
    let v = &mut env.vmm;
    // vm_galloc with V_UREAD: PP 01 everywhere; the kernel maps it
    // supervisor-only.
    let g = v
        .create_segment(
            SidKind::Kernel,
            8 * 4096,
            PageProt {
                pp: Pp::RW_RO,
                no_exec: true,
            },
        )
        .unwrap();
    let kesid = 0xF_1000_0000;
    let mut o = MapOptions::new(SegKey::KERNEL);
    o.view_prot = ViewProt::SupervisorOnly;
    v.map(SpaceRef::Kernel, Esid::new(kesid), g, o).unwrap();
    let p = v.create_space();
    // vm_guatt(kaddr = page 2, size = 2 pages, VM_UNPRIV).
    let mut o = MapOptions::new(SegKey::UNPRIV);
    o.window = Some(2..4);
    o.fork = ForkAction::Drop;
    v.map(SpaceRef::User(p), Esid::new(0x700), g, o).unwrap();
    // The same region attached VM_PRIV at another address.
    let mut o = MapOptions::new(SegKey::PRIV);
    o.window = Some(2..4);
    o.fork = ForkAction::Drop;
    v.map(SpaceRef::User(p), Esid::new(0x701), g, o).unwrap();
    env.vmm.switch_to(Some(p)).unwrap();

    env.store(ea(kesid, 2, 8), 0x77, SV).unwrap();
    assert_eq!(
        env.load(ea(kesid, 2, 8), PR),
        Err(VmFaultReason::Protection)
    );
    assert_eq!(
        env.store(ea(kesid, 2, 8), 1, PR),
        Err(VmFaultReason::Protection)
    );
    // VM_UNPRIV + V_UREAD: read-only.
    assert_eq!(env.load(ea(0x700, 2, 8), PR), Ok(0x77));
    assert_eq!(
        env.store(ea(0x700, 2, 8), 1, PR),
        Err(VmFaultReason::Protection)
    );
    // VM_PRIV: read-write, and the kernel sees the store.
    env.store(ea(0x701, 3, 0), 0x55, PR).unwrap();
    assert_eq!(env.load(ea(kesid, 3, 0), SV), Ok(0x55));
    // Pages of the allocation outside the attached range fault.
    for page in [0, 1, 4, 7] {
        assert_eq!(
            env.load(ea(0x700, page, 0), PR),
            Err(VmFaultReason::OutOfRange)
        );
        assert_eq!(
            env.load(ea(0x701, page, 0), PR),
            Err(VmFaultReason::OutOfRange)
        );
    }
    // No execution from V_NOEXEC memory.
    assert_eq!(
        env.fetch(ea(0x701, 2, 0), PR),
        Err(VmFaultReason::NoExecute)
    );
    env.vmm.check_invariants().unwrap();

    // Fork does not inherit vm_guatt attachments.
    let c = env.vmm.fork(p).unwrap();
    env.vmm.switch_to(Some(c)).unwrap();
    assert_eq!(env.load(ea(0x700, 2, 8), PR), Err(VmFaultReason::NoSegment));
    // vm_gudet: afterwards the address faults.
    env.vmm.switch_to(Some(p)).unwrap();
    env.vmm.unmap(SpaceRef::User(p), Esid::new(0x700)).unwrap();
    assert_eq!(env.load(ea(0x700, 2, 8), PR), Err(VmFaultReason::NoSegment));
    env.vmm.check_invariants().unwrap();

    for s in [c, p] {
        env.vmm.destroy_space(s).unwrap();
    }
    env.vmm.unmap(SpaceRef::Kernel, Esid::new(kesid)).unwrap();
    env.vmm.delete_segment(g).unwrap();
    env.assert_empty();
}

#[test]
fn fetch_obeys_segment_and_page_no_execute() {
    let mut env = Env::new(1 << 20, 32);
    let v = &mut env.vmm;
    let text = v
        .create_segment(SidKind::User, 4 * 4096, PageProt::USER_RW)
        .unwrap();
    v.protect(
        text,
        1..2,
        PageProt {
            pp: Pp::RO_RO,
            no_exec: true,
        },
    )
    .unwrap();
    let data = v
        .create_segment(SidKind::User, 4096, PageProt::USER_RW)
        .unwrap();
    let p = v.create_space();
    v.map(SpaceRef::User(p), Esid::new(1), text, user_rw())
        .unwrap();
    let mut o = user_rw();
    o.no_exec = true;
    v.map(SpaceRef::User(p), Esid::new(2), data, o).unwrap();
    env.vmm.switch_to(Some(p)).unwrap();
    env.fetch(ea(1, 0, 0), PR).unwrap();
    assert_eq!(env.fetch(ea(1, 1, 0), PR), Err(VmFaultReason::NoExecute));
    assert_eq!(env.fetch(ea(2, 0, 0), PR), Err(VmFaultReason::NoExecute));
    // Data access to the no-execute segment is fine.
    env.store(ea(2, 0, 0), 9, PR).unwrap();
    assert_eq!(env.load(ea(1, 1, 0), PR), Ok(0));
    assert_eq!(
        env.store(ea(1, 1, 0), 1, PR),
        Err(VmFaultReason::Protection)
    );
    env.vmm.check_invariants().unwrap();
    env.vmm.destroy_space(p).unwrap();
    env.vmm.delete_segment(text).unwrap();
    env.vmm.delete_segment(data).unwrap();
    env.assert_empty();
}

#[test]
fn evicted_pages_come_back_with_their_data() {
    let mut env = Env::new(1 << 20, 32);
    let v = &mut env.vmm;
    let s = v
        .create_segment(SidKind::User, SEG, PageProt::USER_RW)
        .unwrap();
    let p = v.create_space();
    v.map(SpaceRef::User(p), Esid::new(4), s, user_rw())
        .unwrap();
    env.vmm.switch_to(Some(p)).unwrap();
    // 32 pages (every 2048th of the segment) in one primary/secondary
    // PTEG pair of 16 slots.
    let pages: Vec<u32> = (0..32).map(|k| k * 2048).collect();
    for (i, &pg) in pages.iter().enumerate() {
        env.store(ea(4, pg, 0x20), i as u8 + 1, PR).unwrap();
    }
    assert_eq!(env.vmm.counters().evictions, 16);
    assert_eq!(env.machine.valid_hptes(), 16);
    for (i, &pg) in pages.iter().enumerate() {
        assert_eq!(env.load(ea(4, pg, 0x20), PR), Ok(i as u8 + 1));
    }
    env.vmm.check_invariants().unwrap();
    // Every evicted page kept R and C (stored to).
    let seg = env.vmm.segments().get(s).unwrap();
    for (_, r) in seg.resident_pages() {
        assert!(r.referenced);
    }
    assert!(seg
        .resident_pages()
        .filter(|(pg, _)| seg.slot(*pg).is_none())
        .all(|(_, r)| r.changed));
    env.vmm.destroy_space(p).unwrap();
    env.vmm.delete_segment(s).unwrap();
    env.assert_empty();
}

#[test]
fn more_segments_than_slb_entries_round_robin() {
    let slb = 8;
    let mut env = Env::new(1 << 20, slb);
    let p = env.vmm.create_space();
    let mut sids = Vec::new();
    for e in 0..20u64 {
        let s = env
            .vmm
            .create_segment(SidKind::User, 4096, PageProt::USER_RW)
            .unwrap();
        env.vmm
            .map(SpaceRef::User(p), Esid::new(e), s, user_rw())
            .unwrap();
        sids.push(s);
    }
    env.vmm.switch_to(Some(p)).unwrap();
    for round in 0..2u8 {
        for e in 0..20u64 {
            env.store(ea(e, 0, 0), e as u8 + round, PR).unwrap();
        }
        for e in 0..20u64 {
            assert_eq!(env.load(ea(e, 0, 0), PR), Ok(e as u8 + round));
        }
    }
    assert!(env.machine.slb().valid_entries() <= slb);
    assert!(env.vmm.counters().slb_misses >= 40);
    env.vmm.check_invariants().unwrap();
    env.vmm.destroy_space(p).unwrap();
    for s in sids {
        env.vmm.delete_segment(s).unwrap();
    }
    env.assert_empty();
}

#[test]
fn bolted_kernel_segment_survives_switches() {
    let mut env = Env::new(1 << 20, 8);
    let k = env
        .vmm
        .create_segment(SidKind::Kernel, SEG, PageProt::KERNEL_RW)
        .unwrap();
    let kesid = KERNEL_ESID_BASE + 0x4_0000_0000;
    let mut o = MapOptions::new(SegKey::KERNEL);
    o.bolted = true;
    env.vmm
        .map(SpaceRef::Kernel, Esid::new(kesid), k, o)
        .unwrap();
    let p = env.vmm.create_space();
    let q = env.vmm.create_space();
    env.store(ea(kesid, 0, 0), 1, SV).unwrap();
    let misses = env.vmm.counters().slb_misses;
    for s in [p, q, p, q] {
        env.vmm.switch_to(Some(s)).unwrap();
        assert_eq!(env.load(ea(kesid, 0, 0), SV), Ok(1));
        assert_eq!(
            env.load(ea(kesid, 0, 0), PR),
            Err(VmFaultReason::Protection)
        );
    }
    assert_eq!(
        env.vmm.counters().slb_misses,
        misses,
        "bolted entry reloaded"
    );
    assert!(env.vmm.slb().lookup(Esid::new(kesid)).unwrap() < BOLTED);
    env.vmm.check_invariants().unwrap();
    env.vmm.destroy_space(p).unwrap();
    env.vmm.destroy_space(q).unwrap();
    env.vmm.delete_segment(k).unwrap();
    env.assert_empty();
}

#[test]
fn fork_copies_private_data_and_shares_shmat_segments() {
    let mut env = Env::new(1 << 20, 32);
    let v = &mut env.vmm;
    let data = v
        .create_segment(SidKind::User, 4 * 4096, PageProt::USER_RW)
        .unwrap();
    let shm = v
        .create_segment(SidKind::User, 4096, PageProt::USER_RW)
        .unwrap();
    let p = v.create_space();
    let mut o = user_rw();
    o.fork = ForkAction::Copy;
    o.owned = true;
    v.map(SpaceRef::User(p), Esid::new(1), data, o).unwrap();
    v.map(SpaceRef::User(p), Esid::new(2), shm, user_rw())
        .unwrap();
    env.vmm.switch_to(Some(p)).unwrap();
    env.store(ea(1, 3, 0), 10, PR).unwrap();
    env.store(ea(2, 0, 0), 20, PR).unwrap();

    let c = env.vmm.fork(p).unwrap();
    env.vmm.switch_to(Some(c)).unwrap();
    assert_eq!(env.load(ea(1, 3, 0), PR), Ok(10));
    assert_eq!(env.load(ea(1, 0, 0), PR), Ok(0));
    env.store(ea(1, 3, 0), 11, PR).unwrap();
    env.store(ea(2, 0, 0), 21, PR).unwrap();
    env.vmm.switch_to(Some(p)).unwrap();
    assert_eq!(env.load(ea(1, 3, 0), PR), Ok(10), "copy not private");
    assert_eq!(env.load(ea(2, 0, 0), PR), Ok(21), "shm not shared");
    env.vmm.check_invariants().unwrap();

    // Exit of both: the owned data segments go with them.
    env.vmm.destroy_space(c).unwrap();
    env.vmm.destroy_space(p).unwrap();
    assert!(env.vmm.segments().get(data).is_err());
    env.vmm.delete_segment(shm).unwrap();
    env.assert_empty();
}

#[test]
fn held_segment_outlives_delete_until_put() {
    let mut env = Env::new(1 << 20, 32);
    let v = &mut env.vmm;
    let s = v
        .create_segment(SidKind::User, 4096, PageProt::USER_RW)
        .unwrap();
    let p = v.create_space();
    v.map(SpaceRef::User(p), Esid::new(5), s, user_rw())
        .unwrap();
    env.vmm.switch_to(Some(p)).unwrap();
    env.store(ea(5, 0, 0), 3, PR).unwrap();
    // as_geth64 → hold; vms_delete → deferred.
    let h = env
        .vmm
        .mapping(SpaceRef::User(p), Esid::new(5))
        .unwrap()
        .handle;
    assert_eq!(h.sid(), s);
    env.vmm.hold_segment(h.sid()).unwrap();
    assert_eq!(env.vmm.delete_segment(s), Ok(false));
    assert_eq!(env.load(ea(5, 0, 0), PR), Ok(3));
    env.store(ea(5, 0, 1), 4, PR).unwrap();
    // as_puth64 → destroyed, the address faults, a second put is refused.
    assert_eq!(env.vmm.put_segment(s), Ok(true));
    assert_eq!(env.load(ea(5, 0, 0), PR), Err(VmFaultReason::NoSegment));
    assert!(matches!(env.vmm.put_segment(s), Err(VmError::Segment(_))));
    env.vmm.destroy_space(p).unwrap();
    env.assert_empty();
}

#[test]
fn protect_makes_pages_read_only_and_back() {
    let mut env = Env::new(1 << 20, 32);
    let v = &mut env.vmm;
    let s = v
        .create_segment(SidKind::User, 4 * 4096, PageProt::USER_RW)
        .unwrap();
    let p = v.create_space();
    v.map(SpaceRef::User(p), Esid::new(1), s, user_rw())
        .unwrap();
    env.vmm.switch_to(Some(p)).unwrap();
    for pg in 0..4 {
        env.store(ea(1, pg, 0), pg as u8, PR).unwrap();
    }
    env.vmm.protect(s, 1..3, RO).unwrap();
    assert_eq!(
        env.store(ea(1, 1, 0), 9, PR),
        Err(VmFaultReason::Protection)
    );
    assert_eq!(
        env.store(ea(1, 2, 0), 9, PR),
        Err(VmFaultReason::Protection)
    );
    env.store(ea(1, 3, 0), 9, PR).unwrap();
    assert_eq!(env.load(ea(1, 2, 0), PR), Ok(2));
    env.vmm.protect(s, 1..3, PageProt::USER_RW).unwrap();
    env.store(ea(1, 1, 0), 9, PR).unwrap();
    assert_eq!(env.load(ea(1, 1, 0), PR), Ok(9));
    env.vmm.check_invariants().unwrap();
    env.vmm.destroy_space(p).unwrap();
    env.vmm.delete_segment(s).unwrap();
    env.assert_empty();
}

#[test]
fn out_of_frames_is_a_fault_not_a_panic() {
    // Two frames of memory.
    let mut env = Env::new(2 * 4096, 32);
    let s = env
        .vmm
        .create_segment(SidKind::User, 4 * 4096, PageProt::USER_RW)
        .unwrap();
    let p = env.vmm.create_space();
    env.vmm
        .map(SpaceRef::User(p), Esid::new(1), s, user_rw())
        .unwrap();
    env.vmm.switch_to(Some(p)).unwrap();
    env.store(ea(1, 0, 0), 1, PR).unwrap();
    env.store(ea(1, 1, 0), 1, PR).unwrap();
    assert_eq!(env.store(ea(1, 2, 0), 1, PR), Err(VmFaultReason::NoMemory));
    assert_eq!(env.machine.memory().free_frames(), 0);
    env.vmm.check_invariants().unwrap();
    env.vmm.destroy_space(p).unwrap();
    env.vmm.delete_segment(s).unwrap();
    env.assert_empty();
}

/// HPT pressure on the real VMM: ~22,000 touched pages in many segments of
/// several processes against an 18-bit HPT (2048 PTEGs, 16,384 slots), so
/// the table runs over 95% full and entries are evicted. Every page must
/// read back what was stored, the core's invariants must hold, and after
/// teardown nothing may be left.
#[test]
fn hpt_pressure_over_95_percent_on_the_real_vmm() {
    const PROCS: u32 = 4;
    const SEGS: u32 = 22;
    const PAGES: u32 = 250; // 4 x 22 x 250 = 22,000 pages
    let mut env = Env::new(96 << 20, 32);
    let slots = {
        use vmm::platform::HptBackend;
        env.machine.hpt().pteg_count() as usize * 8
    };
    assert_eq!(slots, 16_384, "an 18-bit HPT");
    let value = |p: u32, s: u32, pg: u32| ((p * 31 + s * 7 + pg) as u8) ^ 0x5A;
    let offset = |pg: u32| u64::from(pg * 13) % 4096;
    let mut spaces = Vec::new();
    let mut sids = Vec::new();
    for p in 0..PROCS {
        let id = env.vmm.create_space();
        for s in 0..SEGS {
            let sid = env
                .vmm
                .create_segment(SidKind::User, SEG, PageProt::USER_RW)
                .unwrap();
            env.vmm
                .map(
                    SpaceRef::User(id),
                    Esid::new(u64::from(s) + 1),
                    sid,
                    user_rw(),
                )
                .unwrap();
            sids.push(sid);
        }
        env.vmm.switch_to(Some(id)).unwrap();
        for s in 0..SEGS {
            for pg in 0..PAGES {
                let a = ea(u64::from(s) + 1, pg, offset(pg));
                env.store(a, value(p, s, pg), PR).unwrap();
            }
        }
        spaces.push(id);
    }
    let valid = env.machine.valid_hptes();
    assert!(
        valid * 100 > slots * 95,
        "HPT only {valid} of {slots} slots valid"
    );
    assert!(env.vmm.counters().evictions > 0, "no HPTE was evicted");
    env.vmm.check_invariants().unwrap();
    for (p, &id) in spaces.iter().enumerate() {
        env.vmm.switch_to(Some(id)).unwrap();
        for s in 0..SEGS {
            for pg in 0..PAGES {
                let a = ea(u64::from(s) + 1, pg, offset(pg));
                assert_eq!(
                    env.load(a, PR),
                    Ok(value(p as u32, s, pg)),
                    "process {p} segment {s} page {pg}"
                );
            }
        }
    }
    assert_eq!(
        env.vmm.counters().zero_fills,
        u64::from(PROCS * SEGS * PAGES)
    );
    assert_eq!(env.vmm.counters().faults_refused, 0);
    env.vmm.check_invariants().unwrap();
    env.vmm.switch_to(None).unwrap();
    for id in spaces {
        env.vmm.destroy_space(id).unwrap();
    }
    for sid in sids {
        env.vmm.delete_segment(sid).unwrap();
    }
    env.vmm.check_invariants().unwrap();
    env.assert_empty();
}
