//! Copy-on-write at the table level: what fork asks of the HPT backend
//! and the frame allocator, and the fallbacks when they refuse.

use super::*;

/// A process with a `pages`-page segment mapped for copy at ESID 1 on a
/// counting HPT, each page of `touched` stored to.
fn forkable(
    frames: VecFrames,
    pages: u64,
    touched: &[u32],
) -> (
    Vmm<CountingHpt<ArrayHpt>, ArraySlb, VecFrames>,
    Sid,
    SpaceId,
) {
    let mut v = Vmm::new(
        CountingHpt::new(ArrayHpt::new(PTEGS)),
        ArraySlb::new(8),
        frames,
        2,
    )
    .unwrap();
    let sid = user_segment(&mut v, pages);
    let mut o = MapOptions::new(SegKey::UNPRIV);
    o.fork = ForkAction::Copy;
    o.owned = true;
    let p = current_space(&mut v, 1, sid, o);
    for &page in touched {
        touch(&mut v, ea(1, page), true, Privilege::Problem).unwrap();
    }
    (v, sid, p)
}

fn child_sid<H: HptBackend>(v: &Vmm<H, ArraySlb, VecFrames>, c: SpaceId) -> Sid {
    v.space(c).unwrap().get(Esid::new(1)).unwrap().handle.sid()
}

fn pp_of<H: HptBackend>(v: &Vmm<H, ArraySlb, VecFrames>, sid: Sid, page: u32) -> Option<Pp> {
    let ptex = v.page_slot(sid, page)?;
    Some(v.hpt_backend().read(ptex).unwrap().pp())
}

/// Fork asks for no frame and one `H_PROTECT` per page whose entry allows
/// stores; pages already shared (or without an entry) cost nothing more.
#[test]
fn fork_protects_each_writable_entry_once() {
    let (mut v, sid, p) = forkable(VecFrames::new(FRAMES), 8, &[0, 1, 2, 5]);
    // Page 5's entry leaves (as an eviction would take it).
    let slot = v.segments.get(sid).unwrap().slot(5).unwrap();
    v.drop_hptes(sid, &[(5, slot)]);
    let free = v.frames().free_frames();
    let c = v.fork(p).unwrap();
    assert_eq!(v.hpt_backend().protects, 3);
    assert_eq!(v.frames().free_frames(), free);
    for page in [0, 1, 2] {
        assert_eq!(pp_of(&v, sid, page), Some(Pp::RO_RO));
    }
    v.check_invariants().unwrap();
    // A second fork finds every page marked: nothing to protect.
    let g = v.fork(p).unwrap();
    assert_eq!(v.hpt_backend().protects, 3);
    let f = v.page_frame(sid, 0).unwrap().unwrap();
    assert_eq!(v.frames().sharers(f), 3);
    v.check_invariants().unwrap();
    for s in [c, g, p] {
        v.destroy_space(s).unwrap();
    }
    assert_eq!(v.frames().free_frames(), FRAMES);
    assert_eq!(v.hptes_in_use(), 0);
}

/// When the backend will not change an entry's protection, the entry is
/// removed instead (the next access enters it read-only).
#[test]
fn an_entry_the_backend_will_not_protect_is_removed() {
    let (mut v, sid, p) = forkable(VecFrames::new(FRAMES), 2, &[0, 1]);
    v.hpt.backend_mut().refuse_protect = true;
    let c = v.fork(p).unwrap();
    assert_eq!(v.hpt_backend().protects, 2);
    assert_eq!(v.page_slot(sid, 0), None);
    assert_eq!(v.page_slot(sid, 1), None);
    assert_eq!(v.hpt_backend().inner.valid(), 0);
    v.check_invariants().unwrap();
    touch(&mut v, ea(1, 0), false, Privilege::Problem).unwrap();
    assert_eq!(pp_of(&v, sid, 0), Some(Pp::RO_RO));
    v.check_invariants().unwrap();
    v.destroy_space(c).unwrap();
    v.destroy_space(p).unwrap();
    assert_eq!(v.frames().free_frames(), FRAMES);
}

/// A frame whose sharer count is full is copied for the child instead
/// of shared; the others are still shared.
#[test]
fn a_frame_with_a_full_count_is_copied() {
    let (mut v, sid, p) = forkable(VecFrames::with_share_limit(FRAMES, 2), 4, &[0, 1]);
    let pf = v.page_frame(sid, 0).unwrap().unwrap();
    v.frames_mut().write(pf, &[0x5A; 8]).unwrap();
    let c = v.fork(p).unwrap();
    let free = v.frames().free_frames();
    assert_eq!(v.frames().sharers(pf), 2);
    let g = v.fork(p).unwrap();
    let gs = child_sid(&v, g);
    assert_eq!(v.frames().free_frames(), free - 2, "two private copies");
    let gf = v.page_frame(gs, 0).unwrap().unwrap();
    assert_ne!(gf, pf);
    assert!(!v.segments().get(gs).unwrap().entry(0).is_cow());
    let mut buf = [0u8; 8];
    v.frames().read(gf, &mut buf).unwrap();
    assert_eq!(buf, [0x5A; 8]);
    assert_eq!(v.frames().sharers(pf), 2);
    v.check_invariants().unwrap();
    for s in [p, c, g] {
        v.destroy_space(s).unwrap();
    }
    assert_eq!(v.frames().free_frames(), FRAMES);
}

/// Protections of their own, also of untouched pages, and the pages of a
/// segment large enough for a two-level table all reach the child; R/C
/// and HPTE slots do not.
#[test]
fn the_child_inherits_protections_and_large_tables() {
    let touched = [0, 511, 512, 40_000, 65_535];
    let (mut v, sid, p) = forkable(VecFrames::new(FRAMES), 1 << 16, &touched);
    let ro = PageProt {
        pp: Pp::RO_RO,
        no_exec: true,
    };
    v.protect(sid, 511..513, ro).unwrap();
    v.protect(sid, 1000..1001, ro).unwrap();
    let c = v.fork(p).unwrap();
    let cs = child_sid(&v, c);
    let child = v.segments().get(cs).unwrap();
    assert_eq!(child.slot_count(), 0);
    let records: Vec<u32> = child.entries().map(|(pg, _)| pg).collect();
    assert_eq!(records, [0, 511, 512, 1000, 40_000, 65_535]);
    for page in [511, 512, 1000] {
        assert_eq!(child.page_prot(page), Ok(ro));
    }
    assert_eq!(child.page_prot(513), Ok(PageProt::USER_RW));
    for page in touched {
        let e = child.entry(page);
        assert!(e.is_cow());
        assert_eq!(e.frame(), v.page_frame(sid, page).unwrap());
        assert_eq!(
            e.state(),
            PageState::Resident(crate::segment::Resident {
                frame: e.frame().unwrap(),
                referenced: false,
                changed: false
            })
        );
    }
    v.check_invariants().unwrap();
    v.destroy_space(p).unwrap();
    v.destroy_space(c).unwrap();
    assert_eq!(v.frames().free_frames(), FRAMES);
}

/// `unshare_page` gives a kernel that writes a page through its frame a
/// private one first; a page already private is left alone.
#[test]
fn unshare_page_makes_a_frame_safe_to_write() {
    let (mut v, sid, p) = forkable(VecFrames::new(FRAMES), 2, &[0]);
    let pf = v.page_frame(sid, 0).unwrap().unwrap();
    let c = v.fork(p).unwrap();
    let cs = child_sid(&v, c);
    let mine = v.unshare_page(cs, 0).unwrap().unwrap();
    assert_ne!(mine, pf);
    v.frames_mut().write(mine, &[7]).unwrap();
    let mut b = [0u8];
    v.frames().read(pf, &mut b).unwrap();
    assert_eq!(b, [0]);
    assert_eq!(v.unshare_page(sid, 0), Ok(Some(pf)), "the last sharer");
    assert!(!v.segments().get(sid).unwrap().entry(0).is_cow());
    assert_eq!(v.unshare_page(sid, 1), Ok(None));
    assert!(v.unshare_page(sid, 2).is_err());
    v.check_invariants().unwrap();
    v.destroy_space(c).unwrap();
    v.destroy_space(p).unwrap();
    assert_eq!(v.frames().free_frames(), FRAMES);
}

/// The invariants catch a shared frame whose pages are not marked, a
/// count that disagrees with the pages, and a writable entry of a
/// marked page.
#[test]
fn invariants_check_sharing() {
    let (mut v, sid, p) = forkable(VecFrames::new(FRAMES), 2, &[0]);
    let f = v.page_frame(sid, 0).unwrap().unwrap();
    v.frames.share(f).unwrap();
    assert_eq!(v.check_invariants(), Err(Invariant::ShareCount(f)));
    v.frames.free(f).unwrap();
    let c = v.fork(p).unwrap();
    let cs = child_sid(&v, c);
    v.check_invariants().unwrap();
    v.segments
        .get_mut(cs)
        .unwrap()
        .for_each_record(|_, r| r.set_cow(false));
    assert_eq!(v.check_invariants(), Err(Invariant::SharedFrame(f)));
    v.segments
        .get_mut(cs)
        .unwrap()
        .for_each_record(|_, r| r.set_cow(true));
    let ptex = v.page_slot(sid, 0).unwrap();
    let avpn = v.hpt_backend().read(ptex).unwrap().avpn_word();
    v.hpt
        .backend_mut()
        .protect(ptex, avpn, Pp::RW_RW, false)
        .unwrap();
    assert_eq!(
        v.check_invariants(),
        Err(Invariant::WritableSharedPage(ptex))
    );
}
