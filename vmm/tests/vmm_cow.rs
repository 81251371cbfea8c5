//! Fork with copy-on-write on the emulated MMU: parent and child share
//! their copied segments' frames until a store, every interrupt goes
//! through the VMM's fault handler, and the invariants (sharer counts,
//! read-only HPTEs of shared pages) are checked after each step.

mod vmm_common;

use arch_ppc64::addr::{Esid, PhysAddr};
use arch_ppc64::structures::hpte::{Hpte, Pp};
use vmm::adspace::{ForkAction, SegKey};
use vmm::platform::{Environment, FrameAllocator, HptBackend, Privilege, VmFaultReason};
use vmm::segment::{PageProt, ViewProt};
use vmm::sid::{Sid, SidKind};
use vmm::vm::{MapOptions, SpaceId, SpaceRef, KERNEL_ESID_BASE};
use vmm_common::{ea, Env};

const PR: Privilege = Privilege::Problem;
const SV: Privilege = Privilege::Supervisor;

/// A process's private data: key Ks = 0, Kp = 1 (as the kernel's
/// processes), copied on fork, owned.
fn private() -> MapOptions {
    let mut o = MapOptions::new(SegKey {
        ks: false,
        kp: true,
    });
    o.fork = ForkAction::Copy;
    o.owned = true;
    o
}

/// A process with a `pages`-page private segment at ESID 1, running, with
/// `data[i]` stored at byte 0 of page `i`.
fn parent(env: &mut Env, pages: u32, data: &[u8]) -> (SpaceId, Sid) {
    let sid = env
        .vmm
        .create_segment(SidKind::User, u64::from(pages) << 12, PageProt::USER_RW)
        .unwrap();
    let p = env.vmm.create_space();
    env.vmm
        .map(SpaceRef::User(p), Esid::new(1), sid, private())
        .unwrap();
    env.vmm.switch_to(Some(p)).unwrap();
    for (i, &b) in data.iter().enumerate() {
        env.store(ea(1, i as u32, 0), b, PR).unwrap();
    }
    (p, sid)
}

/// The segment `space` maps at ESID 1.
fn seg_of(env: &Env, space: SpaceId) -> Sid {
    env.vmm
        .space(space)
        .unwrap()
        .get(Esid::new(1))
        .unwrap()
        .handle
        .sid()
}

fn frame(env: &Env, sid: Sid, page: u32) -> PhysAddr {
    env.vmm.page_frame(sid, page).unwrap().expect("resident")
}

fn cow(env: &Env, sid: Sid, page: u32) -> bool {
    env.vmm.segments().get(sid).unwrap().entry(page).is_cow()
}

fn sharers(env: &Env, sid: Sid, page: u32) -> u32 {
    env.vmm.frames().sharers(frame(env, sid, page))
}

/// The HPTE recorded for page `page` of `sid`, if any.
fn hpte(env: &Env, sid: Sid, page: u32) -> Option<Hpte> {
    let ptex = env.vmm.page_slot(sid, page)?;
    Some(env.vmm.hpt_backend().read(ptex).unwrap())
}

fn check(env: &Env) {
    env.vmm.check_invariants().unwrap();
}

#[test]
fn a_store_on_either_side_after_fork_leaves_the_other_side_its_data() {
    let mut env = Env::new(1 << 20, 32);
    let (p, ps) = parent(&mut env, 4, &[10, 20]);
    let before = env.machine.memory().free_frames();
    let pf = [frame(&env, ps, 0), frame(&env, ps, 1)];
    assert_eq!(hpte(&env, ps, 0).unwrap().pp(), Pp::RW_RW);

    let c = env.vmm.fork(p).unwrap();
    let cs = seg_of(&env, c);
    assert_ne!(cs, ps);
    check(&env);
    // Nothing copied: both name the same frames, marked, counted twice;
    // the parent's entries lost their store permission in place.
    assert_eq!(env.machine.memory().free_frames(), before);
    for page in 0..2 {
        assert_eq!(frame(&env, cs, page), pf[page as usize]);
        assert!(cow(&env, ps, page) && cow(&env, cs, page));
        assert_eq!(sharers(&env, ps, page), 2);
        assert_eq!(hpte(&env, ps, page).unwrap().pp(), Pp::RO_RO);
    }
    assert_eq!(env.vmm.page_frame(cs, 2).unwrap(), None);

    // The child reads the parent's data without a copy, then stores.
    env.vmm.switch_to(Some(c)).unwrap();
    assert_eq!(env.load(ea(1, 0, 0), PR), Ok(10));
    assert_eq!(env.load(ea(1, 1, 0), PR), Ok(20));
    assert_eq!(env.machine.memory().free_frames(), before);
    assert_eq!(hpte(&env, cs, 0).unwrap().pp(), Pp::RO_RO);
    env.store(ea(1, 0, 0), 11, PR).unwrap();
    check(&env);
    assert_eq!(env.machine.memory().free_frames(), before - 1);
    assert_ne!(frame(&env, cs, 0), pf[0], "the child's store copied");
    assert!(!cow(&env, cs, 0));
    assert_eq!(hpte(&env, cs, 0).unwrap().pp(), Pp::RW_RW);
    assert_eq!(sharers(&env, ps, 0), 1);
    assert_eq!(env.load(ea(1, 0, 1), PR), Ok(0), "the copy is whole");
    assert_eq!(env.vmm.counters().cow_breaks, 1);

    // The parent still sees its own data, and its store to the page the
    // child still shares copies too.
    env.vmm.switch_to(Some(p)).unwrap();
    assert_eq!(env.load(ea(1, 0, 0), PR), Ok(10));
    env.store(ea(1, 1, 0), 21, PR).unwrap();
    check(&env);
    assert_ne!(frame(&env, ps, 1), pf[1]);
    assert_eq!(frame(&env, cs, 1), pf[1]);
    env.vmm.switch_to(Some(c)).unwrap();
    assert_eq!(env.load(ea(1, 0, 0), PR), Ok(11));
    assert_eq!(env.load(ea(1, 1, 0), PR), Ok(20));
    // Untouched at fork: each side zero-fills its own.
    env.store(ea(1, 2, 0), 7, PR).unwrap();
    env.vmm.switch_to(Some(p)).unwrap();
    assert_eq!(env.load(ea(1, 2, 0), PR), Ok(0));
    assert_eq!(env.vmm.counters().faults_refused, 0);
    check(&env);

    env.vmm.destroy_space(c).unwrap();
    env.vmm.destroy_space(p).unwrap();
    env.assert_empty();
}

#[test]
fn the_last_sharer_stores_without_a_copy() {
    let mut env = Env::new(1 << 20, 32);
    let (p, ps) = parent(&mut env, 2, &[1, 2]);
    let pf = [frame(&env, ps, 0), frame(&env, ps, 1)];
    let c = env.vmm.fork(p).unwrap();
    let cs = seg_of(&env, c);
    env.vmm.switch_to(Some(c)).unwrap();
    env.store(ea(1, 0, 0), 9, PR).unwrap();
    // Page 0: the child copied, so the parent is the last sharer.
    env.vmm.switch_to(Some(p)).unwrap();
    let free = env.machine.memory().free_frames();
    assert!(cow(&env, ps, 0), "marked until its next store");
    env.store(ea(1, 0, 0), 3, PR).unwrap();
    check(&env);
    assert_eq!(frame(&env, ps, 0), pf[0], "kept its frame");
    assert_eq!(env.machine.memory().free_frames(), free, "no copy");
    assert!(!cow(&env, ps, 0));
    assert_eq!(hpte(&env, ps, 0).unwrap().pp(), Pp::RW_RW);
    // Page 1: the child exits; the parent takes the frame over.
    env.vmm.destroy_space(c).unwrap();
    assert!(env.vmm.segments().get(cs).is_err());
    assert_eq!(sharers(&env, ps, 1), 1);
    let free = env.machine.memory().free_frames();
    env.store(ea(1, 1, 0), 4, PR).unwrap();
    assert_eq!(frame(&env, ps, 1), pf[1]);
    assert_eq!(env.machine.memory().free_frames(), free);
    assert_eq!(env.load(ea(1, 0, 0), PR), Ok(3));
    assert_eq!(env.load(ea(1, 1, 0), PR), Ok(4));
    assert_eq!(env.vmm.counters().cow_breaks, 3);
    check(&env);
    env.vmm.destroy_space(p).unwrap();
    env.assert_empty();
}

#[test]
fn a_kernel_store_into_a_shared_user_page_breaks_the_sharing() {
    // Copy-out from the kernel: a supervisor store through the process's
    // own mapping (Ks = 0) meets the read-only HPTE and faults with a
    // protection cause like a problem-state store.
    let mut env = Env::new(1 << 20, 32);
    let (p, ps) = parent(&mut env, 1, &[5]);
    let c = env.vmm.fork(p).unwrap();
    let cs = seg_of(&env, c);
    env.vmm.switch_to(Some(c)).unwrap();
    assert_eq!(env.load(ea(1, 0, 0), SV), Ok(5));
    env.store(ea(1, 0, 0), 6, SV).unwrap();
    check(&env);
    assert_ne!(frame(&env, cs, 0), frame(&env, ps, 0));
    assert_eq!(env.load(ea(1, 0, 0), PR), Ok(6));
    env.vmm.switch_to(Some(p)).unwrap();
    assert_eq!(env.load(ea(1, 0, 0), PR), Ok(5));
    env.vmm.destroy_space(p).unwrap();
    env.vmm.destroy_space(c).unwrap();
    env.assert_empty();
}

#[test]
fn read_only_pages_stay_read_only_and_protect_works_on_shared_pages() {
    let mut env = Env::new(1 << 20, 32);
    let (p, ps) = parent(&mut env, 3, &[1, 2, 3]);
    // Page 1 read-only for problem state (PP 01 with Kp = 1).
    let ro_user = PageProt {
        pp: Pp::RW_RO,
        no_exec: false,
    };
    env.vmm.protect(ps, 1..2, ro_user).unwrap();
    let c = env.vmm.fork(p).unwrap();
    let cs = seg_of(&env, c);
    check(&env);
    assert_eq!(
        env.vmm.segments().get(cs).unwrap().page_prot(1),
        Ok(ro_user)
    );
    let free = env.machine.memory().free_frames();
    env.vmm.switch_to(Some(c)).unwrap();
    assert_eq!(
        env.store(ea(1, 1, 0), 9, PR),
        Err(VmFaultReason::Protection)
    );
    assert_eq!(env.machine.memory().free_frames(), free, "no copy made");
    assert!(cow(&env, cs, 1));
    // The kernel (key 0) may write it: the sharing breaks, and problem
    // state still may not.
    env.store(ea(1, 1, 0), 8, SV).unwrap();
    assert_eq!(
        env.store(ea(1, 1, 0), 9, PR),
        Err(VmFaultReason::Protection)
    );
    assert_eq!(env.load(ea(1, 1, 0), PR), Ok(8));
    check(&env);

    // protect() on a page that is still shared: the new protection
    // holds, the sharing stays until a store.
    env.vmm.switch_to(Some(p)).unwrap();
    env.vmm.protect(ps, 2..3, ro_user).unwrap();
    check(&env);
    assert!(cow(&env, ps, 2));
    assert_eq!(
        env.store(ea(1, 2, 0), 9, PR),
        Err(VmFaultReason::Protection)
    );
    assert_eq!(env.load(ea(1, 2, 0), PR), Ok(3));
    assert_eq!(hpte(&env, ps, 2).unwrap().pp(), Pp::RO_RO);
    env.vmm.protect(ps, 2..3, PageProt::USER_RW).unwrap();
    env.store(ea(1, 2, 0), 4, PR).unwrap();
    check(&env);
    assert_ne!(frame(&env, ps, 2), frame(&env, cs, 2));
    env.vmm.switch_to(Some(c)).unwrap();
    assert_eq!(env.load(ea(1, 2, 0), PR), Ok(3));
    // And the child's own protect to read-only for both keys: even the
    // kernel's store is a protection fault now.
    env.vmm
        .protect(
            cs,
            0..1,
            PageProt {
                pp: Pp::RO_RO,
                no_exec: false,
            },
        )
        .unwrap();
    assert_eq!(
        env.store(ea(1, 0, 0), 9, SV),
        Err(VmFaultReason::Protection)
    );
    check(&env);
    env.vmm.destroy_space(p).unwrap();
    env.vmm.destroy_space(c).unwrap();
    env.assert_empty();
}

#[test]
fn an_evicted_shared_page_comes_back_read_only() {
    let mut env = Env::new(1 << 20, 32);
    let sid = env
        .vmm
        .create_segment(SidKind::User, 1 << 28, PageProt::USER_RW)
        .unwrap();
    let p = env.vmm.create_space();
    env.vmm
        .map(SpaceRef::User(p), Esid::new(1), sid, private())
        .unwrap();
    env.vmm.switch_to(Some(p)).unwrap();
    // Pages 2048 apart share both PTEGs of the 2048-group table: 16
    // slots. Eight of them are touched before the fork.
    let pages: Vec<u32> = (0..20).map(|k| 3 + k * 2048).collect();
    for (i, &pg) in pages[..8].iter().enumerate() {
        env.store(ea(1, pg, 0), i as u8 + 1, PR).unwrap();
    }
    let c = env.vmm.fork(p).unwrap();
    let cs = seg_of(&env, c);
    // The parent's loads of twelve more pages fill the other eight slots,
    // then evict.
    for &pg in &pages[8..] {
        env.load(ea(1, pg, 0), PR).unwrap();
    }
    check(&env);
    assert!(env.vmm.counters().evictions > 0);
    let evicted: Vec<u32> = pages[..8]
        .iter()
        .copied()
        .filter(|&pg| hpte(&env, sid, pg).is_none())
        .collect();
    assert!(!evicted.is_empty(), "no shared page's entry was evicted");
    // The parent's evicted pages refault read-only (a load), then copy on
    // a store; the child keeps the old data.
    env.vmm.switch_to(Some(p)).unwrap();
    let pg = evicted[0];
    let i = pages.iter().position(|&x| x == pg).unwrap() as u8;
    assert_eq!(env.load(ea(1, pg, 0), PR), Ok(i + 1));
    check(&env);
    assert_eq!(hpte(&env, sid, pg).unwrap().pp(), Pp::RO_RO);
    env.store(ea(1, pg, 0), 0x77, PR).unwrap();
    check(&env);
    env.vmm.switch_to(Some(c)).unwrap();
    assert_eq!(env.load(ea(1, pg, 0), PR), Ok(i + 1));
    assert_eq!(sharers(&env, cs, pg), 1);
    env.vmm.destroy_space(c).unwrap();
    env.vmm.destroy_space(p).unwrap();
    env.assert_empty();
}

#[test]
fn frames_go_with_the_last_sharer_in_either_teardown_order() {
    for parent_first in [true, false] {
        let mut env = Env::new(1 << 20, 32);
        let (p, ps) = parent(&mut env, 2, &[1, 2]);
        let c = env.vmm.fork(p).unwrap();
        let cs = seg_of(&env, c);
        let shared = frame(&env, ps, 0);
        let (first, second, survivor) = if parent_first { (p, c, cs) } else { (c, p, ps) };
        env.vmm.destroy_space(first).unwrap();
        check(&env);
        assert_eq!(env.vmm.frames().sharers(shared), 1, "still held");
        env.vmm.switch_to(Some(second)).unwrap();
        assert_eq!(env.load(ea(1, 0, 0), PR), Ok(1));
        assert_eq!(env.load(ea(1, 1, 0), PR), Ok(2));
        // The survivor is marked still, but stores without a copy.
        let free = env.machine.memory().free_frames();
        env.store(ea(1, 1, 0), 5, PR).unwrap();
        assert_eq!(env.machine.memory().free_frames(), free);
        assert_eq!(frame(&env, survivor, 0), shared);
        env.vmm.destroy_space(second).unwrap();
        env.assert_empty();
    }
}

#[test]
fn a_fork_chain_of_three_shares_one_frame_until_each_stores() {
    let mut env = Env::new(1 << 20, 32);
    let (p, ps) = parent(&mut env, 1, &[1]);
    let c = env.vmm.fork(p).unwrap();
    env.vmm.switch_to(Some(c)).unwrap();
    let g = env.vmm.fork(c).unwrap();
    let (cs, gs) = (seg_of(&env, c), seg_of(&env, g));
    let f = frame(&env, ps, 0);
    assert_eq!((frame(&env, cs, 0), frame(&env, gs, 0)), (f, f));
    assert_eq!(env.vmm.frames().sharers(f), 3);
    check(&env);
    for (space, value) in [(g, 3), (p, 1), (c, 2)] {
        env.vmm.switch_to(Some(space)).unwrap();
        env.store(ea(1, 0, 0), value, PR).unwrap();
        check(&env);
    }
    // Two copies; the last to store (the child) took the frame over.
    assert_eq!(frame(&env, cs, 0), f);
    assert_ne!(frame(&env, ps, 0), f);
    assert_ne!(frame(&env, gs, 0), f);
    for (space, value) in [(p, 1), (c, 2), (g, 3)] {
        env.vmm.switch_to(Some(space)).unwrap();
        assert_eq!(env.load(ea(1, 0, 0), PR), Ok(value));
    }
    for s in [c, p, g] {
        env.vmm.destroy_space(s).unwrap();
    }
    env.assert_empty();
}

#[test]
fn out_of_frames_on_a_copy_is_reported_and_changes_nothing() {
    let mut env = Env::new(1 << 20, 32);
    let (p, ps) = parent(&mut env, 2, &[1, 2]);
    let c = env.vmm.fork(p).unwrap();
    let cs = seg_of(&env, c);
    env.vmm.switch_to(Some(c)).unwrap();
    assert_eq!(env.load(ea(1, 0, 0), PR), Ok(1));
    let mut taken = Vec::new();
    while let Some(f) = env.vmm.frames_mut().allocate() {
        taken.push(f);
    }
    let before = (
        env.vmm.segments().get(cs).unwrap().entry(0),
        env.vmm.segments().get(ps).unwrap().entry(0),
        hpte(&env, cs, 0),
        env.vmm.hptes_in_use(),
        env.machine.valid_hptes(),
    );
    assert_eq!(env.store(ea(1, 0, 0), 9, PR), Err(VmFaultReason::NoMemory));
    let after = (
        env.vmm.segments().get(cs).unwrap().entry(0),
        env.vmm.segments().get(ps).unwrap().entry(0),
        hpte(&env, cs, 0),
        env.vmm.hptes_in_use(),
        env.machine.valid_hptes(),
    );
    assert_eq!(before, after);
    assert_eq!(sharers(&env, cs, 0), 2);
    check(&env);
    // At interrupt level a copy is not even tried.
    env.vmm.set_environment(Environment::Interrupt);
    assert_eq!(
        env.store(ea(1, 0, 0), 9, PR),
        Err(VmFaultReason::NotAllowedHere)
    );
    env.vmm.set_environment(Environment::KernelProcess);
    for f in taken {
        env.vmm.frames_mut().free(f).unwrap();
    }
    env.store(ea(1, 0, 0), 9, PR).unwrap();
    assert_eq!(env.load(ea(1, 0, 0), PR), Ok(9));
    env.vmm.switch_to(Some(p)).unwrap();
    assert_eq!(env.load(ea(1, 0, 0), PR), Ok(1));
    // As the last sharer, a store at interrupt level needs no frame.
    env.vmm.set_environment(Environment::Interrupt);
    env.store(ea(1, 0, 0), 4, PR).unwrap();
    env.vmm.set_environment(Environment::KernelProcess);
    check(&env);
    env.vmm.destroy_space(p).unwrap();
    env.vmm.destroy_space(c).unwrap();
    env.assert_empty();
}

#[test]
fn views_see_their_own_segments_data_and_break_its_sharing() {
    // The kernel maps the parent's segment through a supervisor-only
    // view (as vm_att of a process segment does) and has touched it.
    let mut env = Env::new(1 << 20, 32);
    let (p, ps) = parent(&mut env, 2, &[1, 2]);
    let kesid = KERNEL_ESID_BASE + 9;
    let mut o = MapOptions::new(SegKey::PRIV);
    o.view_prot = ViewProt::SupervisorOnly;
    env.vmm
        .map(SpaceRef::Kernel, Esid::new(kesid), ps, o)
        .unwrap();
    assert_eq!(env.load(ea(kesid, 0, 0), SV), Ok(1));
    env.store(ea(kesid, 1, 1), 0x22, SV).unwrap();
    let view = env
        .vmm
        .mapping(SpaceRef::Kernel, Esid::new(kesid))
        .unwrap()
        .view
        .expect("a view");
    assert_eq!(hpte(&env, view, 1).unwrap().pp(), Pp::RW_NONE);

    let c = env.vmm.fork(p).unwrap();
    let cs = seg_of(&env, c);
    check(&env);
    // The view's writable entry of a now shared page is gone.
    assert_eq!(hpte(&env, view, 1), None);
    // The child stores to page 0: the view still shows the parent's.
    env.vmm.switch_to(Some(c)).unwrap();
    env.store(ea(1, 0, 0), 0x10, PR).unwrap();
    assert_eq!(env.load(ea(kesid, 0, 0), SV), Ok(1));
    // Through the view, the kernel's store to page 1 breaks the parent's
    // sharing; the child keeps the fork-time data.
    assert_eq!(env.load(ea(kesid, 1, 1), SV), Ok(0x22));
    assert_eq!(hpte(&env, view, 1).unwrap().pp(), Pp::RO_NONE);
    env.store(ea(kesid, 1, 0), 0x33, SV).unwrap();
    check(&env);
    assert_eq!(env.load(ea(1, 1, 0), PR), Ok(2));
    assert_ne!(frame(&env, cs, 1), frame(&env, ps, 1));
    env.vmm.switch_to(Some(p)).unwrap();
    assert_eq!(env.load(ea(1, 1, 0), PR), Ok(0x33));
    // The parent's own store to page 0 (the child copied it: no copy)
    // shows through the view, whose read-only entry was dropped.
    env.store(ea(1, 0, 0), 0x44, PR).unwrap();
    check(&env);
    assert_eq!(env.load(ea(kesid, 0, 0), SV), Ok(0x44));
    env.store(ea(kesid, 0, 0), 0x45, SV).unwrap();
    assert_eq!(env.load(ea(1, 0, 0), PR), Ok(0x45));
    check(&env);
    env.vmm.unmap(SpaceRef::Kernel, Esid::new(kesid)).unwrap();
    env.vmm.destroy_space(c).unwrap();
    env.vmm.destroy_space(p).unwrap();
    env.assert_empty();
}

#[test]
fn shared_segments_stay_shared_and_dropped_ones_stay_behind() {
    // as_att-style sharing is not copy-on-write: both see each store.
    let mut env = Env::new(1 << 20, 32);
    let (p, _) = parent(&mut env, 1, &[1]);
    let shm = env
        .vmm
        .create_segment(SidKind::User, 4096, PageProt::USER_RW)
        .unwrap();
    env.vmm
        .map(
            SpaceRef::User(p),
            Esid::new(2),
            shm,
            MapOptions::new(SegKey::UNPRIV),
        )
        .unwrap();
    env.store(ea(2, 0, 0), 1, PR).unwrap();
    let c = env.vmm.fork(p).unwrap();
    assert!(!cow(&env, shm, 0));
    assert_eq!(sharers(&env, shm, 0), 1);
    env.vmm.switch_to(Some(c)).unwrap();
    env.store(ea(2, 0, 0), 2, PR).unwrap();
    env.vmm.switch_to(Some(p)).unwrap();
    assert_eq!(env.load(ea(2, 0, 0), PR), Ok(2));
    check(&env);
    env.vmm.destroy_space(c).unwrap();
    env.vmm.destroy_space(p).unwrap();
    env.vmm.delete_segment(shm).unwrap();
    env.assert_empty();
}
