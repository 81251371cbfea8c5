use super::*;
use crate::adspace::{AdspaceError, ForkAction, SegKey};
use crate::hpt::Evicted;
use crate::platform::{
    FaultHandler, FaultOutcome, FrameError, Interrupt, PhysMemory, Privilege, RemoveCondition,
    VmFaultReason,
};
use crate::segment::{PageProt, PageState, SegmentError, ViewProt};
use crate::sid::{Sid, SidKind};
use crate::testkit::{ArrayHpt, ArraySlb, CountingHpt, VecFrames};
use alloc::vec;
use alloc::vec::Vec;
use arch_ppc64::addr::{EffectiveAddress, Esid, PhysAddr, PtegIndex, Ptex, Vsid};
use arch_ppc64::registers::dsisr::DsisrFlags;
use arch_ppc64::structures::hpte::{Hpte, Pp};
use arch_ppc64::structures::{PageSize, SegmentSize};

type TestVmm = Vmm<ArrayHpt, ArraySlb, VecFrames>;

const FRAMES: usize = 64;

/// The smallest table the HPT manager takes: 2048 PTEGs.
const PTEGS: usize = 2048;

fn vmm() -> TestVmm {
    vmm_on(ArrayHpt::new(PTEGS))
}

fn vmm_on<H: HptBackend>(hpt: H) -> Vmm<H, ArraySlb, VecFrames> {
    Vmm::new(hpt, ArraySlb::new(8), VecFrames::new(FRAMES), 2).unwrap()
}

/// A new user working segment of `pages` pages, `USER_RW`.
fn user_segment<H: HptBackend>(v: &mut Vmm<H, ArraySlb, VecFrames>, pages: u64) -> Sid {
    v.create_segment(SidKind::User, pages << 12, PageProt::USER_RW)
        .unwrap()
}

/// A new process address space with `sid` mapped at ESID `esid`,
/// made the running one.
fn current_space<H: HptBackend>(
    v: &mut Vmm<H, ArraySlb, VecFrames>,
    esid: u64,
    sid: Sid,
    opts: MapOptions,
) -> SpaceId {
    let p = v.create_space();
    v.map(SpaceRef::User(p), Esid::new(esid), sid, opts)
        .unwrap();
    v.switch_to(Some(p)).unwrap();
    p
}

fn ea(esid: u64, page: u32) -> EffectiveAddress {
    EffectiveAddress::new((esid << 28) | (u64::from(page) << 12) | 0x18)
}

/// What the MMU would raise for an access with no SLB entry, then for
/// one with no HPTE: segment interrupt first, then DSI.
fn touch<H: HptBackend>(
    v: &mut Vmm<H, ArraySlb, VecFrames>,
    ea: EffectiveAddress,
    store: bool,
    pr: Privilege,
) -> Result<(), VmFaultReason> {
    if v.slb().lookup(ea.esid()).is_none() {
        v.resolve(Interrupt::DataSegment { ea }, pr)?;
    }
    let bits = 0x4000_0000 | if store { 0x0200_0000 } else { 0 };
    v.resolve(
        Interrupt::DataStorage {
            ea,
            dsisr: DsisrFlags::from_dsisr(bits),
        },
        pr,
    )
}

fn hpte_of(v: &TestVmm, sid: Sid, page: u32) -> Hpte {
    let ptex = v.page_slot(sid, page).expect("slot");
    v.hpt_backend().read(ptex).unwrap()
}

fn empty(v: &TestVmm) {
    assert_eq!(v.frames().free_frames(), FRAMES, "frames leaked");
    assert_eq!(v.sids_in_use(), 0, "SIDs leaked");
    assert_eq!(v.hptes_in_use(), 0, "HPTEs leaked");
    assert_eq!(v.hpt_backend().valid(), 0, "valid HPTEs left");
    assert!(v.segments().is_empty());
}

#[test]
fn first_touch_zero_fills_and_inserts_an_hpte() {
    let mut v = vmm();
    let sid = user_segment(&mut v, 3);
    let p = current_space(&mut v, 1, sid, MapOptions::new(SegKey::UNPRIV));
    touch(&mut v, ea(1, 2), true, Privilege::Problem).unwrap();
    let c = v.counters();
    assert_eq!(
        (c.slb_misses, c.zero_fills, c.hpt_faults_resolved),
        (1, 1, 1)
    );
    assert_eq!(v.frames().free_frames(), FRAMES - 1);
    let frame = v.page_frame(sid, 2).unwrap().unwrap();
    let h = hpte_of(&v, sid, 2);
    assert_eq!(h.real_address(), Some(frame));
    assert_eq!(h.pp(), Pp::RW_RW);
    let mut buf = [0xFFu8; 4096];
    v.frames().read(frame, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0), "page not zero-filled");
    // A second miss on the same page (entry lost) reuses the frame and
    // leaves one entry.
    touch(&mut v, ea(1, 2), false, Privilege::Problem).unwrap();
    assert_eq!(v.counters().zero_fills, 1);
    assert_eq!(v.hptes_in_use(), 1);
    assert_eq!(v.hpt_backend().valid(), 1);
    v.check_invariants().unwrap();
    v.destroy_space(p).unwrap();
    v.delete_segment(sid).unwrap();
    empty(&v);
}

#[test]
fn refused_faults_change_nothing() {
    let mut v = vmm();
    let sid = user_segment(&mut v, 3);
    current_space(&mut v, 1, sid, MapOptions::new(SegKey::UNPRIV));
    assert_eq!(
        touch(&mut v, ea(1, 3), false, Privilege::Problem),
        Err(VmFaultReason::OutOfRange)
    );
    assert_eq!(
        touch(&mut v, ea(2, 0), false, Privilege::Problem),
        Err(VmFaultReason::NoSegment)
    );
    // Kernel half with nothing mapped.
    assert_eq!(
        touch(
            &mut v,
            ea(KERNEL_ESID_BASE + 5, 0),
            false,
            Privilege::Supervisor
        ),
        Err(VmFaultReason::NoSegment)
    );
    assert_eq!(v.frames().free_frames(), FRAMES);
    assert_eq!(v.hptes_in_use(), 0);
    let out = v.handle(Interrupt::DataSegment { ea: ea(2, 0) }, Privilege::Problem);
    assert!(matches!(out, FaultOutcome::Fault(f) if f.reason == VmFaultReason::NoSegment));
    assert_eq!(v.counters().faults_refused, 1);
    // With no current process, the lower half has no segments at all.
    v.switch_to(None).unwrap();
    assert_eq!(
        touch(&mut v, ea(1, 0), false, Privilege::Problem),
        Err(VmFaultReason::NoSegment)
    );
    v.check_invariants().unwrap();
}

/// Frames whose zero-fill always fails.
struct ZeroRefused(VecFrames);

impl FrameAllocator for ZeroRefused {
    fn allocate(&mut self) -> Option<PhysAddr> {
        self.0.allocate()
    }
    fn free(&mut self, frame: PhysAddr) -> Result<(), FrameError> {
        self.0.free(frame)
    }
    fn share(&mut self, frame: PhysAddr) -> Result<(), FrameError> {
        self.0.share(frame)
    }
    fn sharers(&self, frame: PhysAddr) -> u32 {
        self.0.sharers(frame)
    }
    fn zero(&mut self, frame: PhysAddr) -> Result<(), FrameError> {
        Err(FrameError::OutOfRange(frame))
    }
    fn copy(&mut self, dst: PhysAddr, src: PhysAddr) -> Result<(), FrameError> {
        self.0.copy(dst, src)
    }
    fn free_frames(&self) -> usize {
        self.0.free_frames()
    }
}

/// Causes the VMM cannot blame on the program are named, not coded: a
/// DSISR with no known cause bit, and a frame that cannot be zeroed.
/// Neither changes a table.
#[test]
fn unknown_causes_and_frame_refusals_are_typed_reasons() {
    let mut v = vmm();
    let sid = user_segment(&mut v, 1);
    current_space(&mut v, 1, sid, MapOptions::new(SegKey::UNPRIV));
    let odd = Interrupt::DataStorage {
        ea: ea(1, 0),
        dsisr: DsisrFlags::from_dsisr(0x0040_0000),
    };
    assert_eq!(
        v.resolve(odd, Privilege::Problem),
        Err(VmFaultReason::UnknownCause)
    );
    assert_eq!((v.hptes_in_use(), v.frames().free_frames()), (0, FRAMES));

    let mut v = Vmm::new(
        ArrayHpt::new(PTEGS),
        ArraySlb::new(8),
        ZeroRefused(VecFrames::new(FRAMES)),
        2,
    )
    .unwrap();
    let sid = v
        .create_segment(SidKind::User, 4096, PageProt::USER_RW)
        .unwrap();
    let p = v.create_space();
    v.map(
        SpaceRef::User(p),
        Esid::new(1),
        sid,
        MapOptions::new(SegKey::UNPRIV),
    )
    .unwrap();
    v.switch_to(Some(p)).unwrap();
    v.resolve(Interrupt::DataSegment { ea: ea(1, 0) }, Privilege::Problem)
        .unwrap();
    let store = Interrupt::DataStorage {
        ea: ea(1, 0),
        dsisr: DsisrFlags::from_dsisr(0x4200_0000),
    };
    // VecFrames hands out its lowest free frame first.
    let first = PhysAddr::new(4096);
    assert_eq!(
        v.resolve(store, Privilege::Problem),
        Err(VmFaultReason::Frame(FrameError::OutOfRange(first)))
    );
    assert_eq!(v.frames().free_frames(), FRAMES, "the frame went back");
    assert_eq!(
        v.page_frame(sid, 0),
        Ok(None),
        "the page is still untouched"
    );
    assert_eq!(v.hptes_in_use(), 0);
    v.check_invariants().unwrap();
}

#[test]
fn kernel_pages_are_closed_to_problem_state_and_views_open_a_window() {
    let mut v = vmm();
    let k = v
        .create_segment(SidKind::Kernel, 4 * 4096, PageProt::KERNEL_RW)
        .unwrap();
    let kesid = Esid::new(KERNEL_ESID_BASE + 0x100);
    v.map(SpaceRef::Kernel, kesid, k, MapOptions::new(SegKey::KERNEL))
        .unwrap();
    touch(&mut v, ea(kesid.as_u64(), 1), true, Privilege::Supervisor).unwrap();
    assert_eq!(
        touch(&mut v, ea(kesid.as_u64(), 1), false, Privilege::Problem),
        Err(VmFaultReason::Protection)
    );
    // A process gets page 1 read-only through a view.
    let p = v.create_space();
    let mut o = MapOptions::new(SegKey::UNPRIV);
    o.window = Some(1..2);
    o.view_prot = ViewProt::Fixed(PageProt {
        pp: Pp::RW_RO,
        no_exec: true,
    });
    o.fork = ForkAction::Drop;
    let h = v.map(SpaceRef::User(p), Esid::new(7), k, o).unwrap();
    assert_eq!(h.sid(), k);
    v.switch_to(Some(p)).unwrap();
    touch(&mut v, ea(7, 1), false, Privilege::Problem).unwrap();
    assert_eq!(
        touch(&mut v, ea(7, 1), true, Privilege::Problem),
        Err(VmFaultReason::Protection)
    );
    assert_eq!(
        touch(&mut v, ea(7, 0), false, Privilege::Problem),
        Err(VmFaultReason::OutOfRange)
    );
    assert_eq!(
        touch(&mut v, ea(7, 2), false, Privilege::Problem),
        Err(VmFaultReason::OutOfRange)
    );
    // Same frame, different VSIDs: two entries for two virtual pages.
    let view = v.space(p).unwrap().get(Esid::new(7)).unwrap().view.unwrap();
    assert_ne!(view, k);
    assert_eq!(
        hpte_of(&v, view, 1).real_address(),
        hpte_of(&v, k, 1).real_address()
    );
    assert_eq!(hpte_of(&v, view, 1).pp(), Pp::RW_RO);
    assert_eq!(v.hptes_in_use(), 2);
    v.check_invariants().unwrap();
    // Fork drops the view; exit removes it and its entry.
    let c = v.fork(p).unwrap();
    assert!(v.space(c).unwrap().is_empty());
    v.destroy_space(c).unwrap();
    v.destroy_space(p).unwrap();
    assert_eq!(v.hptes_in_use(), 1);
    assert_eq!(v.sids_in_use(), 1);
    v.check_invariants().unwrap();
    v.unmap(SpaceRef::Kernel, kesid).unwrap();
    v.delete_segment(k).unwrap();
    empty(&v);
}

#[test]
fn eviction_folds_reference_bits_and_keeps_one_entry_per_page() {
    let mut v = vmm();
    let sid = user_segment(&mut v, 1 << 16);
    let p = current_space(&mut v, 3, sid, MapOptions::new(SegKey::PRIV));
    // Pages 2048 apart share their primary and secondary PTEG (the hash
    // is VSID ^ page number, masked to 11 bits): 16 slots for 20 pages.
    let pages: Vec<u32> = (0..20).map(|k| 5 + k * PTEGS as u32).collect();
    for &page in &pages {
        touch(&mut v, ea(3, page), true, Privilege::Problem).unwrap();
        v.check_invariants().unwrap();
    }
    assert_eq!(v.counters().evictions, 4);
    assert_eq!(v.hptes_in_use(), 16);
    assert_eq!(v.hpt_backend().valid(), 16);
    let seg = v.segments().get(sid).unwrap();
    assert_eq!(seg.resident_pages().count(), 20);
    assert_eq!(seg.slots().count(), 16);
    // Evicted pages kept their frame and got R folded in (insertion sets R).
    let evicted = *pages.iter().find(|&&pg| seg.slot(pg).is_none()).unwrap();
    match seg.page_state(evicted).unwrap() {
        PageState::Resident(r) => assert!(r.referenced),
        PageState::Untouched => panic!("evicted page lost its frame"),
    }
    // Touching it again brings it back without a new zero-fill.
    let fills = v.counters().zero_fills;
    touch(&mut v, ea(3, evicted), false, Privilege::Problem).unwrap();
    assert_eq!(v.counters().zero_fills, fills);
    assert_eq!(v.counters().evictions, 5);
    v.check_invariants().unwrap();
    v.destroy_space(p).unwrap();
    v.delete_segment(sid).unwrap();
    empty(&v);
}

#[test]
fn held_segments_outlive_delete_until_the_last_put() {
    let mut v = vmm();
    let sid = user_segment(&mut v, 1);
    let mut o = MapOptions::new(SegKey::PRIV);
    o.owned = true;
    let p = current_space(&mut v, 1, sid, o);
    touch(&mut v, ea(1, 0), true, Privilege::Problem).unwrap();
    assert_eq!(
        v.put_segment(sid),
        Err(VmError::Segment(SegmentError::NotHeld(sid)))
    );
    v.hold_segment(sid).unwrap();
    // Held: deletion is deferred, the segment stays usable.
    assert_eq!(v.delete_segment(sid), Ok(false));
    touch(&mut v, ea(1, 0), false, Privilege::Problem).unwrap();
    // Exit: the owned segment is deleted, but the hold keeps it.
    v.destroy_space(p).unwrap();
    assert_eq!(v.sids_in_use(), 1);
    assert_eq!(v.frames().free_frames(), FRAMES - 1);
    assert_eq!(v.put_segment(sid), Ok(true));
    empty(&v);
}

#[test]
fn fork_shares_copies_and_drops() {
    let mut v = vmm();
    let shared = user_segment(&mut v, 1);
    let private = user_segment(&mut v, 2);
    let guatt = user_segment(&mut v, 1);
    let p = v.create_space();
    let sp = SpaceRef::User(p);
    v.map(sp, Esid::new(1), shared, MapOptions::new(SegKey::PRIV))
        .unwrap();
    let mut o = MapOptions::new(SegKey::PRIV);
    o.fork = ForkAction::Copy;
    o.owned = true;
    v.map(sp, Esid::new(2), private, o).unwrap();
    let mut o = MapOptions::new(SegKey::PRIV);
    o.fork = ForkAction::Drop;
    v.map(sp, Esid::new(3), guatt, o).unwrap();
    v.switch_to(Some(p)).unwrap();
    touch(&mut v, ea(2, 1), true, Privilege::Problem).unwrap();
    let pf = v.page_frame(private, 1).unwrap().unwrap();
    v.frames_mut().write(pf, &[0x5A; 16]).unwrap();

    let c = v.fork(p).unwrap();
    let cs = v.space(c).unwrap();
    assert_eq!(cs.len(), 2);
    assert_eq!(cs.get(Esid::new(1)).unwrap().handle.sid(), shared);
    let copy = cs.get(Esid::new(2)).unwrap().handle.sid();
    assert!(cs.get(Esid::new(2)).unwrap().owned);
    assert!(cs.get(Esid::new(3)).is_none());
    assert_ne!(copy, private);
    // Copy-on-write: the child's page names the parent's frame until a
    // store.
    let cf = v.page_frame(copy, 1).unwrap().unwrap();
    assert_eq!(cf, pf);
    assert_eq!(v.frames().sharers(pf), 2);
    let mut buf = [0u8; 16];
    v.frames().read(cf, &mut buf).unwrap();
    assert_eq!(buf, [0x5A; 16]);
    assert_eq!(v.page_frame(copy, 0).unwrap(), None);
    assert_eq!(v.segments().get(shared).unwrap().attach_count(), 2);
    v.check_invariants().unwrap();

    v.destroy_space(c).unwrap();
    assert!(v.segments().get(copy).is_err(), "child's copy not deleted");
    v.destroy_space(p).unwrap();
    assert!(v.segments().get(private).is_err());
    v.delete_segment(shared).unwrap();
    v.delete_segment(guatt).unwrap();
    empty(&v);
}

/// A fork that fails part-way (here: no SID for the second copy) tears
/// the child down and leaves the parent exactly as it was: its pages are
/// not marked copy-on-write, its HPTEs still allow stores, its frames
/// have one sharer each.
#[test]
fn failed_fork_leaves_no_child_behind_and_the_parent_unshared() {
    let mut c = VmmConfig::new(2);
    c.kernel_sids = 5..6;
    c.user_sids = 6..9;
    let mut v =
        Vmm::with_config(ArrayHpt::new(PTEGS), ArraySlb::new(8), VecFrames::new(8), c).unwrap();
    let a = user_segment(&mut v, 4);
    let b = user_segment(&mut v, 4);
    let mut o = MapOptions::new(SegKey::PRIV);
    o.fork = ForkAction::Copy;
    let p = current_space(&mut v, 1, a, o.clone());
    v.map(SpaceRef::User(p), Esid::new(2), b, o).unwrap();
    for page in 0..2 {
        touch(&mut v, ea(1, page), true, Privilege::Problem).unwrap();
    }
    let frames = v.frames().free_frames();
    let hptes: Vec<Hpte> = (0..2).map(|pg| hpte_of(&v, a, pg)).collect();
    // One SID left: the copy of `a` gets it, the copy of `b` finds none.
    assert_eq!(v.fork(p), Err(VmError::NoSids));
    assert_eq!(v.spaces().count(), 1);
    assert_eq!(v.sids_in_use(), 2);
    assert_eq!(v.frames().free_frames(), frames);
    for page in 0..2 {
        let e = v.segments().get(a).unwrap().entry(page);
        assert!(!e.is_cow(), "page {page} marked by a failed fork");
        assert_eq!(v.frames().sharers(e.frame().unwrap()), 1);
        assert_eq!(hpte_of(&v, a, page), hptes[page as usize]);
    }
    v.check_invariants().unwrap();
}

#[test]
fn protect_drops_stale_translations() {
    let mut v = vmm();
    let sid = user_segment(&mut v, 2);
    let p = v.create_space();
    v.map(
        SpaceRef::User(p),
        Esid::new(1),
        sid,
        MapOptions::new(SegKey::UNPRIV),
    )
    .unwrap();
    // A view showing the segment's own protection is affected too.
    let mut o = MapOptions::new(SegKey::UNPRIV);
    o.window = Some(0..2);
    v.map(SpaceRef::User(p), Esid::new(2), sid, o).unwrap();
    v.switch_to(Some(p)).unwrap();
    touch(&mut v, ea(1, 0), true, Privilege::Problem).unwrap();
    touch(&mut v, ea(2, 0), true, Privilege::Problem).unwrap();
    assert_eq!(v.hptes_in_use(), 2);
    let ro = PageProt {
        pp: Pp::RO_RO,
        no_exec: false,
    };
    assert!(v.protect(sid, 1..3, ro).is_err());
    assert_eq!(v.hptes_in_use(), 2);
    v.protect(sid, 0..1, ro).unwrap();
    assert_eq!(v.hptes_in_use(), 0);
    assert_eq!(
        touch(&mut v, ea(1, 0), true, Privilege::Problem),
        Err(VmFaultReason::Protection)
    );
    assert_eq!(
        touch(&mut v, ea(2, 0), true, Privilege::Problem),
        Err(VmFaultReason::Protection)
    );
    touch(&mut v, ea(1, 0), false, Privilege::Problem).unwrap();
    assert_eq!(hpte_of(&v, sid, 0).pp(), Pp::RO_RO);
    v.check_invariants().unwrap();
}

#[test]
fn bolted_kernel_segments_survive_switches() {
    let mut v = vmm();
    let k = v
        .create_segment(SidKind::Kernel, 4096, PageProt::KERNEL_RW)
        .unwrap();
    let kesid = Esid::new(KERNEL_ESID_BASE);
    let mut o = MapOptions::new(SegKey::KERNEL);
    o.bolted = true;
    v.map(SpaceRef::Kernel, kesid, k, o.clone()).unwrap();
    assert_eq!(v.slb().lookup(kesid), Some(0));
    let p = v.create_space();
    let q = v.create_space();
    let u = user_segment(&mut v, 1);
    assert_eq!(
        v.map(SpaceRef::User(p), Esid::new(1), u, o.clone()),
        Err(VmError::BoltedInProcess)
    );
    assert_eq!(
        v.map(SpaceRef::User(p), kesid, u, MapOptions::new(SegKey::PRIV)),
        Err(VmError::WrongHalf(kesid))
    );
    assert_eq!(
        v.map(
            SpaceRef::Kernel,
            Esid::new(1),
            u,
            MapOptions::new(SegKey::PRIV)
        ),
        Err(VmError::WrongHalf(Esid::new(1)))
    );
    v.map(
        SpaceRef::User(p),
        Esid::new(1),
        u,
        MapOptions::new(SegKey::PRIV),
    )
    .unwrap();
    v.switch_to(Some(p)).unwrap();
    touch(&mut v, ea(1, 0), false, Privilege::Problem).unwrap();
    assert!(v.slb().lookup(Esid::new(1)).is_some());
    v.switch_to(Some(q)).unwrap();
    assert_eq!(v.slb().lookup(Esid::new(1)), None);
    assert_eq!(v.slb().lookup(kesid), Some(0));
    assert!(v.slb_backend().entries[0].is_valid());
    // q has nothing at ESID 1.
    assert_eq!(
        touch(&mut v, ea(1, 0), false, Privilege::Problem),
        Err(VmFaultReason::NoSegment)
    );
    v.check_invariants().unwrap();
    // Unmapping the bolted segment frees its index.
    v.unmap(SpaceRef::Kernel, kesid).unwrap();
    assert_eq!(v.slb().lookup(kesid), None);
    assert!(!v.slb_backend().entries[0].is_valid());
}

#[test]
fn delete_revokes_mappings_now_or_at_the_last_put() {
    let mut v = vmm();
    let a = user_segment(&mut v, 1);
    let b = user_segment(&mut v, 1);
    let p = v.create_space();
    let q = v.create_space();
    for (space, seg) in [(p, a), (q, a), (p, b)] {
        let mut o = MapOptions::new(SegKey::PRIV);
        o.window = (seg == b).then_some(0..1);
        let esid = Esid::new(if seg == a { 1 } else { 2 });
        v.map(SpaceRef::User(space), esid, seg, o).unwrap();
    }
    assert_eq!(v.mappings_of(a).len(), 2);
    v.switch_to(Some(p)).unwrap();
    touch(&mut v, ea(1, 0), true, Privilege::Problem).unwrap();
    touch(&mut v, ea(2, 0), true, Privilege::Problem).unwrap();
    // Unheld: gone from p and q at once, and p's access faults.
    assert_eq!(v.delete_segment(a), Ok(true));
    assert!(v.mappings_of(a).is_empty());
    assert_eq!(
        touch(&mut v, ea(1, 0), false, Privilege::Problem),
        Err(VmFaultReason::NoSegment)
    );
    // Held: stays usable until the last put, then goes everywhere.
    v.hold_segment(b).unwrap();
    assert_eq!(v.delete_segment(b), Ok(false));
    // It even maps again (AIX: the held handle can be attached).
    v.map(
        SpaceRef::User(q),
        Esid::new(2),
        b,
        MapOptions::new(SegKey::PRIV),
    )
    .unwrap();
    touch(&mut v, ea(2, 0), false, Privilege::Problem).unwrap();
    assert_eq!(v.put_segment(b), Ok(true));
    assert!(v.space(q).unwrap().is_empty(), "q's new mapping went too");
    assert_eq!(
        touch(&mut v, ea(2, 0), false, Privilege::Problem),
        Err(VmFaultReason::NoSegment)
    );
    v.check_invariants().unwrap();
    v.destroy_space(p).unwrap();
    v.destroy_space(q).unwrap();
    empty(&v);
}

#[test]
fn supervisor_only_views_close_kernel_pages_to_problem_state() {
    let mut v = vmm();
    // A V_UREAD-style segment: PP 01, user read-only with key 1.
    let ureader = PageProt {
        pp: Pp::RW_RO,
        no_exec: true,
    };
    let g = v
        .create_segment(SidKind::Kernel, 2 * 4096, ureader)
        .unwrap();
    let kesid = Esid::new(0xF_1000_0000);
    let mut o = MapOptions::new(SegKey::KERNEL);
    o.view_prot = ViewProt::SupervisorOnly;
    v.map(SpaceRef::Kernel, kesid, g, o).unwrap();
    touch(&mut v, ea(kesid.as_u64(), 0), true, Privilege::Supervisor).unwrap();
    assert_eq!(
        touch(&mut v, ea(kesid.as_u64(), 0), false, Privilege::Problem),
        Err(VmFaultReason::Protection)
    );
    let kview = v.kernel_space().get(kesid).unwrap().view.unwrap();
    assert_eq!(hpte_of(&v, kview, 0).pp(), Pp::RW_NONE);
    // The process's own view uses the segment's PP 01 with key 1.
    let p = v.create_space();
    let mut o = MapOptions::new(SegKey::UNPRIV);
    o.window = Some(0..1);
    o.fork = ForkAction::Drop;
    v.map(SpaceRef::User(p), Esid::new(0x70), g, o).unwrap();
    v.switch_to(Some(p)).unwrap();
    touch(&mut v, ea(0x70, 0), false, Privilege::Problem).unwrap();
    assert_eq!(
        touch(&mut v, ea(0x70, 0), true, Privilege::Problem),
        Err(VmFaultReason::Protection)
    );
    assert_eq!(
        touch(&mut v, ea(0x70, 1), false, Privilege::Problem),
        Err(VmFaultReason::OutOfRange)
    );
    v.check_invariants().unwrap();
    v.destroy_space(p).unwrap();
    assert_eq!(v.delete_segment(g), Ok(true));
    empty(&v);
}

#[test]
fn interrupt_level_faults_do_not_zero_fill() {
    let mut v = vmm();
    let sid = user_segment(&mut v, 2);
    current_space(&mut v, 1, sid, MapOptions::new(SegKey::PRIV));
    touch(&mut v, ea(1, 0), true, Privilege::Supervisor).unwrap();
    v.protect(sid, 0..1, PageProt::USER_RW).unwrap(); // drops the HPTE
    v.set_environment(Environment::Interrupt);
    assert_eq!(v.environment(), Environment::Interrupt);
    // Resident page: re-entered. Untouched page: refused, nothing allocated.
    touch(&mut v, ea(1, 0), false, Privilege::Supervisor).unwrap();
    let free = v.frames().free_frames();
    assert_eq!(
        touch(&mut v, ea(1, 1), false, Privilege::Supervisor),
        Err(VmFaultReason::NotAllowedHere)
    );
    assert_eq!(v.frames().free_frames(), free);
    v.set_environment(Environment::Process(crate::platform::ProcessId(1)));
    touch(&mut v, ea(1, 1), false, Privilege::Supervisor).unwrap();
    v.check_invariants().unwrap();
}

#[test]
fn config_sets_sid_ranges() {
    let build = |c: &VmmConfig| {
        Vmm::with_config(
            ArrayHpt::new(PTEGS),
            ArraySlb::new(8),
            VecFrames::new(FRAMES),
            c.clone(),
        )
    };
    let mut c = VmmConfig::new(2);
    c.kernel_sids = 5..6;
    c.user_sids = 6..8;
    let mut v = build(&c).unwrap();
    let a = user_segment(&mut v, 1);
    let b = user_segment(&mut v, 1);
    assert_eq!((a.as_u64(), b.as_u64()), (6, 7));
    assert_eq!(
        v.create_segment(SidKind::User, 4096, PageProt::USER_RW),
        Err(VmError::NoSids)
    );
    let k = v
        .create_segment(SidKind::Kernel, 4096, PageProt::KERNEL_RW)
        .unwrap();
    assert_eq!(k.as_u64(), 5);
    // A deleted segment's SID is handed out again, its old page gone.
    let p = current_space(&mut v, 1, a, MapOptions::new(SegKey::PRIV));
    touch(&mut v, ea(1, 0), true, Privilege::Problem).unwrap();
    v.destroy_space(p).unwrap();
    assert_eq!(v.delete_segment(a), Ok(true));
    assert_eq!(user_segment(&mut v, 1), a);
    assert_eq!(v.page_frame(a, 0), Ok(None));
    v.check_invariants().unwrap();
    c.user_sids = 5..9;
    assert!(matches!(build(&c), Err(VmError::Sid(SidError::BadRanges))));
    c.user_sids = 6..8;
    c.slb_bolted = 8;
    assert!(matches!(build(&c), Err(VmError::Slb(_))));
}

#[test]
fn kernel_half_starts_at_ea_bit_0() {
    // ISA numbering: EA bit 0 is the most significant bit.
    assert_eq!(Esid::new(KERNEL_ESID_BASE).base().as_u64(), 1 << 63);
    assert_eq!(
        Esid::new(KERNEL_ESID_BASE - 1).base().as_u64(),
        0x7FFF_FFFF_F000_0000
    );
}

#[test]
fn invariants_leave_out_hptes_outside_the_vmm_vsid_space() {
    let ea = EffectiveAddress::new(0xc000_0000_0000_0000);
    let pa = PhysAddr::new(0x10_0000);
    let entry = |vsid: u64, ssize| {
        Hpte::mapping(Vsid::new(vsid), ea, ssize, PageSize::K4, pa, Pp::RW_NONE)
            .unwrap()
            .with_bolted(true)
    };
    // A kernel's linear map sharing the table: VSIDs above the SIDs'
    // range in 256 MB segments, or 1 TB segments.
    let mut hpt = ArrayHpt::new(PTEGS);
    hpt.0[0] = entry(1 << 37, SegmentSize::M256);
    hpt.0[8] = entry(1 << 37, SegmentSize::T1);
    assert_eq!(vmm_on(hpt).check_invariants(), Ok(()));
    // One in the VMM's range that no page claims is still stray.
    let mut hpt = ArrayHpt::new(PTEGS);
    hpt.0[16] = entry(12345, SegmentSize::M256);
    let stray = Ptex::try_from_raw(16).unwrap();
    assert_eq!(
        vmm_on(hpt).check_invariants(),
        Err(Invariant::StrayHpte(stray))
    );
}

#[test]
fn replace_swaps_segments_or_keeps_the_old_one() {
    let mut v = vmm();
    let a = user_segment(&mut v, 1);
    let b = user_segment(&mut v, 1);
    let p = v.create_space();
    let sp = SpaceRef::User(p);
    v.map(sp, Esid::new(4), a, MapOptions::new(SegKey::PRIV))
        .unwrap();
    v.switch_to(Some(p)).unwrap();
    touch(&mut v, ea(4, 0), true, Privilege::Problem).unwrap();
    let fa = v.page_frame(a, 0).unwrap();
    // A bad window: refused, the old mapping and its SLB entry stay.
    let mut bad = MapOptions::new(SegKey::PRIV);
    bad.window = Some(0..5);
    assert_eq!(v.replace(sp, Esid::new(4), b, bad), Err(VmError::BadWindow));
    assert_eq!(v.mapping(sp, Esid::new(4)).unwrap().handle.sid(), a);
    assert_eq!(v.segments().get(a).unwrap().attach_count(), 1);
    // as_seth64: b replaces a; the next access sees b's page.
    let (h, old) = v
        .replace(sp, Esid::new(4), b, MapOptions::new(SegKey::UNPRIV))
        .unwrap();
    assert_eq!(h.sid(), b);
    assert_eq!(old.unwrap().handle.sid(), a);
    assert_eq!(v.slb().lookup(Esid::new(4)), None);
    touch(&mut v, ea(4, 0), true, Privilege::Problem).unwrap();
    assert_ne!(v.page_frame(b, 0).unwrap(), fa);
    assert_eq!(v.segments().get(a).unwrap().attach_count(), 0);
    v.check_invariants().unwrap();
    // Replacing an empty ESID is a plain map.
    let (_, old) = v
        .replace(sp, Esid::new(5), a, MapOptions::new(SegKey::PRIV))
        .unwrap();
    assert!(old.is_none());
    v.destroy_space(p).unwrap();
    v.delete_segment(a).unwrap();
    v.delete_segment(b).unwrap();
    empty(&v);
}

/// A segment waiting for deletion is still a segment: it maps, fork
/// inherits it, and it goes when the last hold or mapping does. Both
/// ways of waiting: a `vms_delete` deferred by a hold, and an owned
/// segment shared across fork whose owner exited (orphaned).
#[test]
fn segments_waiting_for_deletion_map_and_fork() {
    let mut v = vmm();
    // Held and deleted: maps again, and the fork inherits it.
    let held = user_segment(&mut v, 1);
    let p = current_space(&mut v, 1, held, MapOptions::new(SegKey::PRIV));
    v.hold_segment(held).unwrap();
    assert!(!v.delete_segment(held).unwrap(), "deferred while held");
    v.map(
        SpaceRef::User(p),
        Esid::new(2),
        held,
        MapOptions::new(SegKey::PRIV),
    )
    .unwrap();
    let c = v.fork(p).unwrap();
    assert_eq!(v.segments().get(held).unwrap().attach_count(), 4);
    v.check_invariants().unwrap();
    // The last put takes every mapping down with the segment.
    assert!(v.put_segment(held).unwrap());
    assert!(v.space(p).unwrap().is_empty() && v.space(c).unwrap().is_empty());
    v.destroy_space(c).unwrap();

    // Owned by p, shared with a child, p exits: the child forks on.
    let data = user_segment(&mut v, 1);
    let mut o = MapOptions::new(SegKey::PRIV);
    o.owned = true;
    v.map(SpaceRef::User(p), Esid::new(3), data, o).unwrap();
    touch(&mut v, ea(3, 0), true, Privilege::Problem).unwrap();
    let c = v.fork(p).unwrap();
    v.destroy_space(p).unwrap();
    let s = v.segments().get(data).unwrap();
    assert!(s.orphaned() && !s.delete_pending());
    let g = v.fork(c).unwrap();
    assert_eq!(
        v.space(g).unwrap().get(Esid::new(3)).unwrap().handle.sid(),
        data
    );
    // A hold and put on an orphan does not take its mappings down.
    v.hold_segment(data).unwrap();
    assert!(!v.put_segment(data).unwrap());
    assert_eq!(v.segments().get(data).unwrap().attach_count(), 2);
    v.check_invariants().unwrap();
    v.destroy_space(c).unwrap();
    v.destroy_space(g).unwrap();
    assert!(
        v.segments().get(data).is_err(),
        "gone with its last mapping"
    );
    empty(&v);
}

/// `as_seth64` of the segment an owning mapping already maps at that
/// ESID (its handle from `as_getsrval64`) keeps it owned: the exit
/// still deletes it, its frames and its HPTEs.
#[test]
fn re_setting_an_owned_segment_keeps_it_owned() {
    let mut v = vmm();
    let data = user_segment(&mut v, 2);
    let mut o = MapOptions::new(SegKey::PRIV);
    o.owned = true;
    let p = current_space(&mut v, 4, data, o);
    touch(&mut v, ea(4, 1), true, Privilege::Problem).unwrap();
    let sp = SpaceRef::User(p);
    let (_, old) = v
        .replace(sp, Esid::new(4), data, MapOptions::new(SegKey::PRIV))
        .unwrap();
    assert!(old.unwrap().owned);
    assert!(v.mapping(sp, Esid::new(4)).unwrap().owned);
    assert_eq!(v.segments().get(data).unwrap().attach_count(), 1);
    touch(&mut v, ea(4, 0), true, Privilege::Problem).unwrap();
    v.check_invariants().unwrap();
    // Another segment at that ESID still releases the owned one.
    let other = user_segment(&mut v, 1);
    v.replace(sp, Esid::new(5), data, MapOptions::new(SegKey::PRIV))
        .unwrap();
    v.replace(sp, Esid::new(4), other, MapOptions::new(SegKey::PRIV))
        .unwrap();
    assert!(v.segments().get(data).unwrap().orphaned());
    v.destroy_space(p).unwrap();
    assert!(v.segments().get(data).is_err());
    v.delete_segment(other).unwrap();
    empty(&v);
}

#[test]
fn space_ids_wrap_around_live_ones() {
    let mut v = vmm();
    let first = v.create_space();
    assert_eq!(first, SpaceId(1));
    v.next_space = u32::MAX;
    assert_eq!(v.create_space(), SpaceId(u32::MAX));
    assert_eq!(v.create_space(), SpaceId(0));
    assert_eq!(v.create_space(), SpaceId(2), "1 is still alive");
    assert_eq!(v.spaces().count(), 4);
}

/// R and C recorded for page `page` of working segment `sid`.
fn rc_of<H: HptBackend>(v: &Vmm<H, ArraySlb, VecFrames>, sid: Sid, page: u32) -> (bool, bool) {
    match v.segments().get(sid).unwrap().page_state(page).unwrap() {
        PageState::Resident(r) => (r.referenced, r.changed),
        PageState::Untouched => panic!("page {page} untouched"),
    }
}

const BATCH_PAGES: u32 = 8;

/// A VMM whose HPT counts single and batched removes and marks every
/// entry changed, with a `BATCH_PAGES`-page segment mapped directly at
/// ESID 1 and through a whole-segment view at ESID 2 of the running
/// space, every page touched through `touch_esid`.
fn batch_fixture(
    touch_esid: u64,
) -> (
    Vmm<CountingHpt<ArrayHpt>, ArraySlb, VecFrames>,
    Sid,
    SpaceId,
) {
    let mut hpt = CountingHpt::new(ArrayHpt::new(PTEGS));
    hpt.store_on_insert = true;
    let mut v = vmm_on(hpt);
    let sid = user_segment(&mut v, u64::from(BATCH_PAGES));
    let p = current_space(&mut v, 1, sid, MapOptions::new(SegKey::UNPRIV));
    let mut o = MapOptions::new(SegKey::UNPRIV);
    o.window = Some(0..BATCH_PAGES);
    v.map(SpaceRef::User(p), Esid::new(2), sid, o).unwrap();
    for page in 0..BATCH_PAGES {
        touch(&mut v, ea(touch_esid, page), false, Privilege::Problem).unwrap();
    }
    assert_eq!(v.hptes_in_use(), BATCH_PAGES as usize);
    // Nothing has left the HPT yet, so no R/C has been folded.
    assert_eq!(rc_of(&v, sid, 0), (false, false));
    (v, sid, p)
}

#[test]
fn segment_teardown_removes_its_hptes_in_one_batch() {
    let (mut v, sid, p) = batch_fixture(1);
    v.destroy_space(p).unwrap();
    // The segment outlives its mappings until deleted; its entries too.
    assert_eq!(v.hptes_in_use(), BATCH_PAGES as usize);
    assert!(v.hpt_backend().batches.is_empty());
    assert_eq!(v.delete_segment(sid), Ok(true));
    assert_eq!(v.hpt_backend().batches, vec![BATCH_PAGES as usize]);
    assert_eq!(v.hpt_backend().singles, 0);
    assert_eq!(v.hpt_stats().removes, u64::from(BATCH_PAGES));
    assert_eq!(v.hptes_in_use(), 0);
    assert_eq!(v.hpt_backend().inner.valid(), 0);
    assert_eq!(v.frames().free_frames(), FRAMES);
    assert_eq!(v.sids_in_use(), 0);
}

#[test]
fn unmapping_a_view_batches_its_removes_and_folds_rc_into_the_target() {
    let (mut v, sid, p) = batch_fixture(2);
    v.unmap(SpaceRef::User(p), Esid::new(2)).unwrap();
    assert_eq!(v.hpt_backend().batches, vec![BATCH_PAGES as usize]);
    assert_eq!(v.hpt_backend().singles, 0);
    assert_eq!(v.hptes_in_use(), 0);
    assert_eq!(v.hpt_backend().inner.valid(), 0);
    for page in 0..BATCH_PAGES {
        assert_eq!(rc_of(&v, sid, page), (true, true), "page {page}");
    }
    v.check_invariants().unwrap();
}

#[test]
fn protect_batches_its_removes_and_folds_rc() {
    let (mut v, sid, _) = batch_fixture(1);
    let ro = PageProt {
        pp: Pp::RO_RO,
        no_exec: false,
    };
    v.protect(sid, 0..BATCH_PAGES, ro).unwrap();
    // One batch for the segment; the view had no entries, so no call.
    assert_eq!(v.hpt_backend().batches, vec![BATCH_PAGES as usize]);
    assert_eq!(v.hpt_backend().singles, 0);
    assert_eq!(v.hptes_in_use(), 0);
    for page in 0..BATCH_PAGES {
        assert_eq!(rc_of(&v, sid, page), (true, true), "page {page}");
    }
    v.check_invariants().unwrap();
}

#[test]
fn bad_maps_leave_every_table_unchanged() {
    let mut v = vmm();
    let sid = user_segment(&mut v, 2);
    let p = v.create_space();
    let sp = SpaceRef::User(p);
    v.map(sp, Esid::new(1), sid, MapOptions::new(SegKey::PRIV))
        .unwrap();
    let before = (
        v.sids_in_use(),
        v.segments().get(sid).unwrap().attach_count(),
    );
    assert_eq!(
        v.map(sp, Esid::new(1), sid, MapOptions::new(SegKey::PRIV)),
        Err(VmError::Adspace(AdspaceError::Occupied(Esid::new(1))))
    );
    let mut o = MapOptions::new(SegKey::PRIV);
    o.window = Some(1..3);
    assert_eq!(
        v.map(sp, Esid::new(2), sid, o.clone()),
        Err(VmError::BadWindow)
    );
    o.window = Some(1..1);
    assert_eq!(v.map(sp, Esid::new(2), sid, o), Err(VmError::BadWindow));
    assert_eq!(
        v.map(
            SpaceRef::User(SpaceId(99)),
            Esid::new(2),
            sid,
            MapOptions::new(SegKey::PRIV)
        ),
        Err(VmError::NoSuchSpace(SpaceId(99)))
    );
    assert_eq!(
        v.create_segment(SidKind::User, 0, PageProt::USER_RW),
        Err(VmError::BadSize(0))
    );
    assert_eq!(
        v.create_segment(SidKind::User, (1 << 28) + 1, PageProt::USER_RW),
        Err(VmError::BadSize((1 << 28) + 1))
    );
    assert_eq!(
        (
            v.sids_in_use(),
            v.segments().get(sid).unwrap().attach_count()
        ),
        before
    );
    assert_eq!(v.space(p).unwrap().len(), 1);
    v.check_invariants().unwrap();
}

/// The primary PTEG of page `page` of `sid` in a `PTEGS`-group table.
fn primary_group(sid: Sid, page: u32) -> u64 {
    virtual_page(sid, page).hash() & (PTEGS as u64 - 1)
}

/// A page of `sid` whose primary PTEG is `group`.
fn page_in_group(sid: Sid, group: u64) -> u32 {
    let p = ((sid.vsid().as_u64() ^ group) & (PTEGS as u64 - 1)) as u32;
    assert_eq!(primary_group(sid, p), group);
    p
}

/// A record left naming a slot whose entry was removed behind the VMM's
/// back and then reused by another page: no path that acts on the record
/// (a new fault on the page, re-protecting it, destroying its segment)
/// may remove the other page's entry, because every removal is checked
/// against the page's AVPN and PTEG.
#[test]
fn a_stale_slot_record_never_removes_another_pages_entry() {
    for path in ["fault", "protect", "delete"] {
        let mut v = vmm();
        let a = user_segment(&mut v, 1 << 16);
        let b = user_segment(&mut v, 1 << 16);
        let p = v.create_space();
        for (esid, sid) in [(1, a), (2, b)] {
            v.map(
                SpaceRef::User(p),
                Esid::new(esid),
                sid,
                MapOptions::new(SegKey::PRIV),
            )
            .unwrap();
        }
        v.switch_to(Some(p)).unwrap();
        let pa = 77;
        let group = primary_group(a, pa);
        let pb = page_in_group(b, group);
        touch(&mut v, ea(1, pa), true, Privilege::Problem).unwrap();
        let x = v.page_slot(a, pa).unwrap();
        assert_eq!(x, PtegIndex::new(group).ptex(0));
        // Gone behind the VMM's back; page b takes the same slot.
        v.hpt
            .backend_mut()
            .remove(x, RemoveCondition::Absolute)
            .unwrap();
        touch(&mut v, ea(2, pb), true, Privilege::Problem).unwrap();
        assert_eq!(v.page_slot(b, pb), Some(x));
        assert_eq!(v.page_slot(a, pa), Some(x), "a's record is stale");
        let b_entry = hpte_of(&v, b, pb);
        match path {
            "fault" => {
                touch(&mut v, ea(1, pa), false, Privilege::Problem).unwrap();
                assert_ne!(v.page_slot(a, pa), Some(x), "a went elsewhere");
                v.check_invariants().unwrap();
            }
            "protect" => {
                let ro = PageProt {
                    pp: Pp::RO_RO,
                    no_exec: false,
                };
                v.protect(a, pa..pa + 1, ro).unwrap();
                assert_eq!(v.page_slot(a, pa), None);
                v.check_invariants().unwrap();
            }
            _ => {
                v.unmap(SpaceRef::User(p), Esid::new(1)).unwrap();
                v.delete_segment(a).unwrap();
                v.check_invariants().unwrap();
            }
        }
        assert_eq!(v.hpt_backend().read(x).unwrap(), b_entry, "{path}");
        assert_eq!(v.page_slot(b, pb), Some(x));
    }
}

/// An evicted entry clears its page's record only if the record names the
/// evicted slot (and only then are its R/C folded in); a record naming
/// another slot, or a victim that is no page of the VMM's, is left alone.
#[test]
fn eviction_clears_a_record_only_if_it_names_the_evicted_slot() {
    let mut v = vmm();
    let sid = user_segment(&mut v, 64);
    current_space(&mut v, 1, sid, MapOptions::new(SegKey::PRIV));
    touch(&mut v, ea(1, 3), false, Privilege::Problem).unwrap();
    let ptex = v.page_slot(sid, 3).unwrap();
    let entry = v.hpt_backend().read(ptex).unwrap();
    let vp = virtual_page(sid, 3);
    // The same page at another slot of its PTEG (as if a copy had been
    // left there): its eviction is not the recorded entry's.
    let other = PtegIndex::new(primary_group(sid, 3)).ptex(5);
    let changed = entry.with_changed(true);
    v.forget_evicted(Evicted {
        ptex: other,
        hpte: changed,
        page: Some(vp),
    });
    assert_eq!(v.page_slot(sid, 3), Some(ptex));
    let unchanged = |v: &TestVmm| match v.segments().get(sid).unwrap().page_state(3) {
        Ok(PageState::Resident(r)) => !r.changed,
        _ => false,
    };
    assert!(
        unchanged(&v),
        "no R/C from an entry the record does not name"
    );
    // The recorded one, but said to sit in the secondary group (H set):
    // another slot as well.
    v.forget_evicted(Evicted {
        ptex,
        hpte: changed.with_secondary(true),
        page: Some(vp),
    });
    assert_eq!(v.page_slot(sid, 3), Some(ptex));
    // Not a VMM page at all (a 64K page): ignored.
    let big = VirtualPage::from_offset(vp.vsid(), 0, SegmentSize::M256, PageSize::K64).unwrap();
    v.forget_evicted(Evicted {
        ptex,
        hpte: changed,
        page: Some(big),
    });
    v.forget_evicted(Evicted {
        ptex,
        hpte: changed,
        page: None,
    });
    assert_eq!(v.page_slot(sid, 3), Some(ptex));
    assert_eq!(v.hptes_in_use(), 1);
    // The recorded slot itself: the record goes and C is folded in.
    v.hpt
        .backend_mut()
        .remove(ptex, RemoveCondition::Absolute)
        .unwrap();
    v.forget_evicted(Evicted {
        ptex,
        hpte: changed,
        page: Some(vp),
    });
    assert_eq!(v.page_slot(sid, 3), None);
    assert_eq!(v.hptes_in_use(), 0);
    assert!(!unchanged(&v), "C folded in");
    v.check_invariants().unwrap();
}

/// Invariants catch a record that names an empty slot or a slot holding
/// another page's entry, and an entry no record names.
#[test]
fn invariants_verify_records_against_the_table() {
    let mut v = vmm();
    let sid = user_segment(&mut v, 64);
    current_space(&mut v, 1, sid, MapOptions::new(SegKey::PRIV));
    touch(&mut v, ea(1, 3), false, Privilege::Problem).unwrap();
    let ptex = v.page_slot(sid, 3).unwrap();
    let entry = v.hpt_backend().read(ptex).unwrap();
    v.hpt
        .backend_mut()
        .remove(ptex, RemoveCondition::Absolute)
        .unwrap();
    assert_eq!(v.check_invariants(), Err(Invariant::SlotMismatch(ptex)));
    // Back, but one slot further on: stray, and the record still dangles.
    let moved = PtegIndex::new(ptex.pteg().as_u64()).ptex(ptex.slot() + 1);
    v.hpt
        .backend_mut()
        .insert(moved.pteg(), Some(moved.slot()), entry)
        .unwrap();
    assert_eq!(v.check_invariants(), Err(Invariant::StrayHpte(moved)));
    v.hpt
        .backend_mut()
        .remove(moved, RemoveCondition::Absolute)
        .unwrap();
    v.hpt
        .backend_mut()
        .insert(ptex.pteg(), Some(ptex.slot()), entry)
        .unwrap();
    assert_eq!(v.check_invariants(), Ok(()));
}

/// After random map / unmap / replace / fork / switch / destroy
/// sequences over both halves, every address space's SLB words are what
/// the full path loads for each of its mappings (`check_invariants`
/// compares them, and checks that the fast path is pointed at the kernel's
/// and the running process's tables), a segment miss on each mapped ESID
/// loads exactly that entry, and one on an unmapped ESID finds nothing.
#[test]
fn slb_words_follow_every_change_of_an_address_space() {
    let mut v = Vmm::new(
        ArrayHpt::new(PTEGS),
        ArraySlb::new(8),
        VecFrames::new(FRAMES),
        2,
    )
    .unwrap();
    let user: Vec<Sid> = (0..3).map(|_| user_segment(&mut v, 4)).collect();
    let kseg = v
        .create_segment(SidKind::Kernel, 4 * 4096, PageProt::KERNEL_RW)
        .unwrap();
    let mut spaces: Vec<SpaceId> = (0..2).map(|_| v.create_space()).collect();
    // Runs of consecutive ESIDs, ESIDs that differ only in high bits, and
    // the ends of each half.
    let user_esids: Vec<u64> = (0..24)
        .chain((1..6).map(|i| i << 30))
        .chain([KERNEL_ESID_BASE - 1])
        .collect();
    let kernel_esids: Vec<u64> = (0..20)
        .map(|i| KERNEL_ESID_BASE + i)
        .chain([(1 << 36) - 1, KERNEL_ESID_BASE + (7 << 28)])
        .collect();
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut loads = 0;
    for step in 0..3000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let pick = |n: usize, shift: u32| (x >> shift) as usize % n;
        let space = spaces[pick(spaces.len(), 8)];
        let uesid = Esid::new(user_esids[pick(user_esids.len(), 16)]);
        let kesid = Esid::new(kernel_esids[pick(kernel_esids.len(), 24)]);
        let mut o = MapOptions::new(if x & 1 == 0 {
            SegKey::UNPRIV
        } else {
            SegKey::PRIV
        });
        o.no_exec = x & 2 != 0;
        o.fork = [ForkAction::Share, ForkAction::Copy, ForkAction::Drop][pick(3, 32)];
        if (x >> 34).is_multiple_of(4) {
            o.window = Some(1..3);
        }
        let seg = user[pick(user.len(), 40)];
        // Refusals (occupied, nothing mapped, out of SIDs) are part of
        // the sequence; the check below covers them too.
        match (x >> 48) % 12 {
            0..=2 => {
                let _ = v.map(SpaceRef::User(space), uesid, seg, o);
            }
            3 => {
                let _ = v.map(
                    SpaceRef::Kernel,
                    kesid,
                    kseg,
                    MapOptions::new(SegKey::KERNEL),
                );
            }
            4 | 5 => {
                let _ = v.unmap(SpaceRef::User(space), uesid);
            }
            6 => {
                let _ = v.unmap(SpaceRef::Kernel, kesid);
            }
            7 => {
                let _ = v.replace(SpaceRef::User(space), uesid, seg, o);
            }
            8 => {
                let to = (x & 4 != 0).then_some(space);
                v.switch_to(to).unwrap();
            }
            9 if spaces.len() < 5 => {
                if let Ok(child) = v.fork(space) {
                    spaces.push(child);
                }
            }
            10 if spaces.len() > 1 => {
                let i = pick(spaces.len(), 8);
                v.destroy_space(spaces.remove(i)).unwrap();
            }
            _ => {
                let _ = v.replace(
                    SpaceRef::Kernel,
                    kesid,
                    kseg,
                    MapOptions::new(SegKey::KERNEL),
                );
            }
        }
        v.check_invariants()
            .unwrap_or_else(|e| panic!("step {step}: {e:?}"));
        if step % 7 != 0 {
            continue;
        }
        for esid in user_esids
            .iter()
            .chain(&kernel_esids)
            .map(|&e| Esid::new(e))
        {
            let full = v.mapping_for(esid.base()).map(|(_, m)| slb_entry(esid, m));
            v.flush_slb();
            let r = v.resolve(
                Interrupt::DataSegment { ea: esid.base() },
                Privilege::Problem,
            );
            match full {
                Some(want) => {
                    r.unwrap();
                    let i = v.slb().lookup(esid).expect("loaded");
                    assert_eq!(
                        v.slb().entry(i),
                        Some(want.with_index(i).unwrap()),
                        "step {step}"
                    );
                    loads += 1;
                }
                None => assert_eq!(r, Err(VmFaultReason::NoSegment), "step {step} {esid:?}"),
            }
        }
    }
    assert!(loads > 1000, "{loads} loads");
    for s in spaces {
        v.destroy_space(s).unwrap();
    }
    for e in kernel_esids {
        let _ = v.unmap(SpaceRef::Kernel, Esid::new(e));
    }
    for s in user.into_iter().chain([kseg]) {
        v.delete_segment(s).unwrap();
    }
    v.check_invariants().unwrap();
    empty(&v);
}

mod cow;

#[test]
fn debug_output_summarises_the_manager() {
    let mut v = vmm();
    let _ = user_segment(&mut v, 4);
    let _ = v.create_space();
    let text = alloc::format!("{v:?}");
    for part in [
        "Vmm",
        "segments: 1",
        "spaces: 1",
        "sids: 1",
        "ptegs: ",
        "index: 0",
    ] {
        assert!(text.contains(part), "{part:?} missing from {text}");
    }
}
