use super::*;
use crate::native::NativeHpt;
use crate::testkit::CountingHpt;
use alloc::vec::Vec;
use proptest::prelude::*;

type Mgr = HptManager<NativeHpt<Vec<u8>>>;

fn manager(shift: u32) -> Mgr {
    HptManager::new(NativeHpt::with_size_shift(shift).unwrap()).unwrap()
}

fn page4k(vsid: u64, index: u64) -> VirtualPage {
    VirtualPage::from_offset(
        Vsid::new(vsid),
        index << 12,
        SegmentSize::M256,
        PageSize::K4,
    )
    .unwrap()
}

fn frame(n: u64) -> PhysAddr {
    PhysAddr::new(n << 12)
}

/// Pages of VSID 0x1234 whose primary PTEG in a 2^18-byte table (mask
/// 0x7ff) is the same: page indexes 5, 5 + 2048, 5 + 4096, ...
fn colliding(k: u64) -> VirtualPage {
    page4k(0x1234, 5 + k * 2048)
}

#[test]
fn hash_worked_examples() {
    // 256M, 4K: offset 0xabcd123 >> 12 = 0xabcd; 0x1234 ^ 0xabcd = 0xb9f9.
    let v = Vsid::new(0x1234);
    assert_eq!(hash(v, 0xabc_d123, SegmentSize::M256, PageSize::K4), 0xb9f9);
    // 256M, 64K: 0xabcd123 >> 16 = 0xabc; 0x1234 ^ 0x0abc = 0x1888.
    assert_eq!(
        hash(v, 0xabc_d123, SegmentSize::M256, PageSize::K64),
        0x1888
    );
    // 1T, 4K: VSID 3, offset 0x23_4567_8000 → page 0x234_5678;
    // 3 ^ (3 << 25 = 0x600_0000) ^ 0x234_5678 = 0x434_567b.
    assert_eq!(
        hash(Vsid::new(3), 0x23_4567_8000, SegmentSize::T1, PageSize::K4),
        0x434_567b
    );
    // Only 39 bits survive: a 50-bit all-ones VSID at offset 0.
    assert_eq!(
        hash(Vsid::new(Vsid::MAX), 0, SegmentSize::M256, PageSize::K4),
        (1 << 39) - 1
    );
}

#[test]
fn primary_and_secondary_groups_worked_example() {
    // 2^18 bytes → 2048 PTEGs, mask 0x7ff. hash 0xb9f9:
    // primary = 0xb9f9 & 0x7ff = 0x1f9; secondary = !0xb9f9 & 0x7ff = 0x606.
    let m = manager(18);
    let p = page4k(0x1234, 0xabcd);
    assert_eq!(m.hash_mask(), 0x7ff);
    assert_eq!(m.primary_group(p), PtegIndex::new(0x1f9));
    assert_eq!(m.secondary_group(p), PtegIndex::new(0x606));
}

#[test]
fn setup_sizes() {
    assert_eq!(pteg_count_for_pft_size(22), Ok(32768));
    assert_eq!(pteg_count_for_pft_size(18), Ok(2048));
    assert_eq!(
        pteg_count_for_pft_size(17),
        Err(HptSetupError::BadPftSize(17))
    );
    assert_eq!(
        pteg_count_for_pft_size(47),
        Err(HptSetupError::BadPftSize(47))
    );
    assert_eq!(
        HptManager::new(NativeHpt::with_size_shift(17).unwrap()).err(),
        Some(HptSetupError::BadPtegCount(1024))
    );
}

#[test]
fn insert_goes_primary_then_secondary_then_evicts() {
    let mut m = manager(18);
    let primary = m.primary_group(colliding(0));
    let secondary = m.secondary_group(colliding(0));
    for k in 0..8 {
        let ins = m
            .insert(&PageMapping::new(colliding(k), frame(k), Pp::RW_RW))
            .unwrap();
        assert_eq!(ins.ptex, primary.ptex(k as u8));
        assert!(ins.evicted.is_none());
        assert!(!m.backend().read(ins.ptex).unwrap().is_secondary());
    }
    for k in 8..16 {
        let ins = m
            .insert(&PageMapping::new(colliding(k), frame(k), Pp::RW_RW))
            .unwrap();
        assert_eq!(ins.ptex, secondary.ptex((k - 8) as u8));
        assert!(ins.evicted.is_none());
        assert!(m.backend().read(ins.ptex).unwrap().is_secondary());
    }
    // Mark one entry changed, as a store through the MMU would.
    m.backend_mut()
        .record_reference(primary.ptex(0), true)
        .unwrap();

    // 17th: both PTEGs full. Cursor 0 → primary first, slot 0.
    let ins = m
        .insert(&PageMapping::new(colliding(16), frame(16), Pp::RW_RW))
        .unwrap();
    let ev = ins.evicted.expect("must evict");
    assert_eq!(ins.ptex, primary.ptex(0));
    assert_eq!(ev.ptex, primary.ptex(0));
    assert_eq!(ev.page, Some(colliding(0)));
    assert!(ev.hpte.changed() && ev.hpte.referenced());
    assert_eq!(ev.hpte.real_address(), Some(frame(0)));
    // The new entry is findable, the victim is not.
    assert_eq!(
        m.lookup(colliding(16)).unwrap().map(|x| x.0),
        Some(ins.ptex)
    );
    assert_eq!(m.lookup(colliding(0)).unwrap(), None);

    // 18th: cursor 1 → secondary first, slot 0; the new entry gets H = 1.
    let ins = m
        .insert(&PageMapping::new(colliding(17), frame(17), Pp::RW_RW))
        .unwrap();
    let ev = ins.evicted.unwrap();
    assert_eq!(ins.ptex, secondary.ptex(0));
    assert_eq!(ev.page, Some(colliding(8)));
    assert!(m.backend().read(ins.ptex).unwrap().is_secondary());
    assert_eq!(
        m.lookup(colliding(17)).unwrap().map(|x| x.0),
        Some(ins.ptex)
    );

    let s = m.stats();
    assert_eq!(s.inserts, 18);
    assert_eq!(s.secondary_inserts, 9);
    assert_eq!(s.evictions, 2);
    assert_eq!(m.backend().valid_entries(), 16);
}

#[test]
fn bolted_entries_are_never_evicted() {
    let mut m = manager(18);
    for k in 0..16 {
        let mut map = PageMapping::new(colliding(k), frame(k), Pp::RW_NONE);
        map.bolted = true;
        m.insert(&map).unwrap();
    }
    let before: Vec<_> = (0..16)
        .map(|k| m.lookup(colliding(k)).unwrap().unwrap())
        .collect();
    assert_eq!(
        m.insert(&PageMapping::new(colliding(16), frame(16), Pp::RW_RW)),
        Err(InsertError::Full)
    );
    let after: Vec<_> = (0..16)
        .map(|k| m.lookup(colliding(k)).unwrap().unwrap())
        .collect();
    assert_eq!(before, after, "a refused insert changes nothing");
    assert_eq!(m.stats().evictions, 0);
}

#[test]
fn eviction_skips_bolted_to_the_only_evictable_entry() {
    let mut m = manager(18);
    for k in 0..16 {
        let mut map = PageMapping::new(colliding(k), frame(k), Pp::RW_RW);
        map.bolted = k != 11;
        m.insert(&map).unwrap();
    }
    // Whatever the cursor, the victim is the one non-bolted entry
    // (secondary slot 3: page 11, then each page that replaced it).
    let mut victim = colliding(11);
    for r in 0..4 {
        let new = colliding(16 + r);
        let ins = m
            .insert(&PageMapping::new(new, frame(99), Pp::RW_RW))
            .unwrap();
        assert_eq!(ins.evicted.unwrap().page, Some(victim));
        assert_eq!(ins.ptex, m.secondary_group(colliding(0)).ptex(3));
        victim = new;
    }
    assert_eq!(m.stats().evictions, 4);
}

/// Refuses exact inserts of entries whose AVPN word is `refuse`.
struct RefuseExact<B> {
    inner: B,
    refuse: u64,
}

impl<B: HptBackend> HptBackend for RefuseExact<B> {
    fn pteg_count(&self) -> u64 {
        self.inner.pteg_count()
    }
    fn insert(&mut self, g: PtegIndex, slot: Option<u8>, h: Hpte) -> Result<Ptex, HptError> {
        if slot.is_some() && h.avpn_word() == self.refuse {
            return Err(HptError::Hardware(-1));
        }
        self.inner.insert(g, slot, h)
    }
    fn remove(&mut self, p: Ptex, c: RemoveCondition) -> Result<Hpte, HptError> {
        self.inner.remove(p, c)
    }
    fn protect(&mut self, p: Ptex, a: u64, pp: Pp, n: bool) -> Result<(), HptError> {
        self.inner.protect(p, a, pp, n)
    }
    fn read(&self, p: Ptex) -> Result<Hpte, HptError> {
        self.inner.read(p)
    }
}

#[test]
fn failed_insert_after_eviction_puts_the_victim_back() {
    let mut m = HptManager::new(RefuseExact {
        inner: NativeHpt::with_size_shift(18).unwrap(),
        refuse: colliding(16).avpn_word(),
    })
    .unwrap();
    for k in 0..16 {
        m.insert(&PageMapping::new(colliding(k), frame(k), Pp::RW_RW))
            .unwrap();
    }
    let before: Vec<_> = (0..16)
        .map(|k| m.lookup(colliding(k)).unwrap().unwrap())
        .collect();
    assert_eq!(
        m.insert(&PageMapping::new(colliding(16), frame(16), Pp::RW_RW)),
        Err(InsertError::Backend(HptError::Hardware(-1)))
    );
    let after: Vec<_> = (0..16)
        .map(|k| m.lookup(colliding(k)).unwrap().unwrap())
        .collect();
    assert_eq!(before, after);
    assert_eq!(m.stats().evictions, 0);
    assert_eq!(m.stats().inserts, 16);
}

#[test]
fn remove_returns_rc_once_then_none() {
    let mut m = manager(18);
    let p = page4k(0x42, 7);
    let ins = m.insert(&PageMapping::new(p, frame(3), Pp::RW_RW)).unwrap();
    m.backend_mut().record_reference(ins.ptex, true).unwrap();
    let old = m.remove(ins.ptex, p).unwrap().unwrap();
    assert!(old.changed() && old.referenced());
    assert_eq!(m.remove(ins.ptex, p), Ok(None));
    assert_eq!(m.lookup(p), Ok(None));
    let s = m.stats();
    assert_eq!((s.removes, s.removes_absent), (1, 1));
}

/// `PageMapping::hpte` builds 4K entries directly; every field must come out
/// as the general construction (`Hpte::mapping` and the builders) makes it.
#[test]
fn the_4k_hpte_is_the_general_one() {
    let general = |m: &PageMapping, secondary: bool| {
        Hpte::mapping(
            m.page.vsid(),
            EffectiveAddress::new(m.page.offset()),
            m.page.segment_size(),
            m.page.page_size(),
            m.pa,
            m.pp,
        )
        .map(|h| {
            h.with_secondary(secondary)
                .with_no_execute(m.no_execute)
                .with_bolted(m.bolted)
                .with_wimg(m.wimg)
                .with_key(m.key)
        })
    };
    let pages = [
        page4k(1, 0),
        page4k(0x7_ffff_fffe, 0xffff),
        VirtualPage::from_offset(Vsid::new(5), 0xff_f000, SegmentSize::T1, PageSize::K4).unwrap(),
    ];
    for page in pages {
        for pa in [0, 0x1000, 0x0fff_ffff_ffff_f000, 0x1800] {
            for pp in 0..8 {
                for bits in 0..32u8 {
                    let mut m = PageMapping::new(page, PhysAddr::new(pa), Pp::new(pp));
                    m.no_execute = bits & 1 != 0;
                    m.bolted = bits & 2 != 0;
                    m.wimg = if bits & 4 != 0 {
                        Wimg::I | Wimg::G
                    } else {
                        Wimg::M
                    };
                    m.key = bits.wrapping_mul(7) & 0x1f;
                    for secondary in [false, true] {
                        assert_eq!(m.hpte(secondary), general(&m, secondary), "{m:?}");
                    }
                }
            }
        }
    }
}

#[test]
fn slots_name_ptexes_relative_to_the_pages_groups() {
    let m = manager(18);
    let p = colliding(0);
    let (primary, secondary) = (m.primary_group(p), m.secondary_group(p));
    for index in 0..8 {
        let s = HptSlot::new(false, index);
        assert_eq!(m.slot_ptex(p, s), primary.ptex(index));
        assert_eq!(m.slot_of(p, primary.ptex(index)), Some(s));
        let s = HptSlot::new(true, index);
        assert_eq!(m.slot_ptex(p, s), secondary.ptex(index));
        assert_eq!(m.slot_of(p, secondary.ptex(index)), Some(s));
        assert_eq!(HptSlot::from_bits(s.bits()), Some(s));
    }
    // A page of another group: the slot means another PTE index.
    let q = page4k(0x1234, 6);
    assert_ne!(m.slot_ptex(q, HptSlot::new(false, 0)), primary.ptex(0));
    assert_eq!(m.slot_of(q, primary.ptex(0)), None);
    assert_eq!(HptSlot::from_bits(16), None);
}

#[test]
fn remove_with_a_slot_outside_both_groups_is_a_parameter_error() {
    let mut m = manager(18);
    let p = page4k(0x42, 7);
    let ins = m.insert(&PageMapping::new(p, frame(3), Pp::RW_RW)).unwrap();
    let wrong = PtegIndex::new((ins.ptex.pteg().as_u64() + 1) & 0x7ff).ptex(0);
    assert_eq!(m.remove(wrong, p), Err(HptError::Parameter));
    assert_eq!(
        m.protect(wrong, p, Pp::RO_RO, false),
        Err(HptError::Parameter)
    );
    assert!(m.lookup(p).unwrap().is_some());
}

#[test]
fn remove_leaves_a_reused_slot_alone() {
    let mut m = manager(18);
    // Fill the PTEG pair, evict page 0, its slot now holds page 16.
    for k in 0..16 {
        m.insert(&PageMapping::new(colliding(k), frame(k), Pp::RW_RW))
            .unwrap();
    }
    let old_ptex = m.lookup(colliding(0)).unwrap().unwrap().0;
    let ins = m
        .insert(&PageMapping::new(colliding(16), frame(16), Pp::RW_RW))
        .unwrap();
    assert_eq!(ins.ptex, old_ptex);
    // The owner of page 0 still thinks it is at old_ptex.
    assert_eq!(m.remove(old_ptex, colliding(0)), Ok(None));
    assert_eq!(
        m.protect(old_ptex, colliding(0), Pp::RO_RO, true),
        Ok(false)
    );
    let (p, e) = m.lookup(colliding(16)).unwrap().unwrap();
    assert_eq!(p, old_ptex);
    assert_eq!(e.pp(), Pp::RW_RW);
}

#[test]
fn remove_checks_h_in_the_smallest_table() {
    // Mask 0x7ff: page 0 and page 0x7ff of VSID V share the AVPN word
    // (same 8 MB) and page 0x7ff's secondary PTEG is page 0's primary:
    // !(V ^ 0x7ff) & 0x7ff = V & 0x7ff.
    let mut m = manager(18);
    let a = page4k(0x5555, 0);
    let b = page4k(0x5555, 0x7ff);
    assert_eq!(a.avpn_word(), b.avpn_word());
    assert_eq!(m.primary_group(a), m.secondary_group(b));
    let ins = m.insert(&PageMapping::new(a, frame(1), Pp::RW_RW)).unwrap();
    m.remove(ins.ptex, a).unwrap().unwrap();
    // b's entry lands in the same slot with H = 1.
    let hb = PageMapping::new(b, frame(2), Pp::RW_RW).hpte(true).unwrap();
    m.backend_mut()
        .insert(ins.ptex.pteg(), Some(ins.ptex.slot()), hb)
        .unwrap();
    assert_eq!(m.remove(ins.ptex, a), Ok(None));
    assert_eq!(m.protect(ins.ptex, a, Pp::RO_RO, false), Ok(false));
    assert_eq!(m.lookup(b).unwrap(), Some((ins.ptex, hb)));
}

#[test]
fn remove_many_batches_and_keeps_per_entry_outcomes() {
    // 2^19 bytes (mask 0xfff): no AVPN ambiguity, so every request whose
    // slot is in the page's PTEGs goes to the backend, which finds the
    // evicted one gone.
    let mut m = HptManager::new(CountingHpt::new(NativeHpt::with_size_shift(19).unwrap())).unwrap();
    let pages: Vec<VirtualPage> = (0..5).map(|i| page4k(0x42, i)).collect();
    let ptexes: Vec<Ptex> = pages
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            m.insert(&PageMapping::new(p, frame(i as u64), Pp::RW_RW))
                .unwrap()
                .ptex
        })
        .collect();
    // Page 1 was stored to; page 3's entry is already gone (evicted).
    m.backend_mut()
        .inner
        .record_reference(ptexes[1], true)
        .unwrap();
    m.backend_mut()
        .inner
        .remove(ptexes[3], RemoveCondition::Absolute)
        .unwrap();
    let wrong = PtegIndex::new((ptexes[4].pteg().as_u64() + 1) & 0xfff).ptex(0);
    let before = m.stats();
    let res = m.remove_many(&[
        (ptexes[0], pages[0]),
        (ptexes[1], pages[1]),
        (ptexes[2], pages[2]),
        (ptexes[3], pages[3]),
        (wrong, pages[4]),
    ]);
    let rc = |referenced, changed| {
        Ok(Some(RefChange {
            referenced,
            changed,
        }))
    };
    // Entries are inserted with R preset (PAPR guests set it).
    assert_eq!(
        res,
        alloc::vec![
            rc(true, false),
            rc(true, true),
            rc(true, false),
            Ok(None),
            Err(HptError::Parameter),
        ]
    );
    // The slot outside page 4's PTEGs never reaches the backend.
    assert_eq!(m.backend().batches, alloc::vec![4]);
    assert_eq!(m.backend().singles, 0);
    let s = m.stats();
    assert_eq!(
        (
            s.removes - before.removes,
            s.removes_absent - before.removes_absent
        ),
        (3, 1)
    );
    for p in &pages[..4] {
        assert_eq!(m.lookup(*p), Ok(None));
    }
    assert!(
        m.lookup(pages[4]).unwrap().is_some(),
        "refused request removed nothing"
    );
    // Removing again finds nothing and touches nothing.
    assert_eq!(
        m.remove_many(&[(ptexes[0], pages[0])]),
        alloc::vec![Ok(None)]
    );
    assert_eq!(m.stats().removes_absent, s.removes_absent + 1);
    // An empty request list makes no backend call.
    assert_eq!(m.remove_many(&[]), alloc::vec![]);
    assert_eq!(m.backend().batches, alloc::vec![4, 1]);
}

#[test]
fn protect_changes_pp_and_n_and_keeps_rc() {
    let mut m = manager(18);
    let p = page4k(0x42, 7);
    let ins = m.insert(&PageMapping::new(p, frame(3), Pp::RW_RW)).unwrap();
    m.backend_mut().record_reference(ins.ptex, true).unwrap();
    assert_eq!(m.protect(ins.ptex, p, Pp::RO_RO, true), Ok(true));
    let (_, e) = m.lookup(p).unwrap().unwrap();
    assert_eq!(e.pp(), Pp::RO_RO);
    assert!(e.no_execute() && e.changed());
    m.remove(ins.ptex, p).unwrap();
    assert_eq!(m.protect(ins.ptex, p, Pp::RW_RW, false), Ok(false));
    assert_eq!(m.stats().protects, 1);
    assert_eq!(m.stats().protects_absent, 1);
}

#[test]
fn misaligned_mapping_is_refused_without_change() {
    let mut m = manager(18);
    let p =
        VirtualPage::from_offset(Vsid::new(9), 0x10000, SegmentSize::M256, PageSize::K64).unwrap();
    assert_eq!(
        m.insert(&PageMapping::new(p, frame(1), Pp::RW_RW)),
        Err(InsertError::Misaligned(frame(1)))
    );
    assert_eq!(m.backend().valid_entries(), 0);
    assert_eq!(m.stats().inserts, 0);
}

#[test]
fn sixty_four_k_and_one_terabyte_pages() {
    let mut m = manager(20);
    let p64 = VirtualPage::new(
        Vsid::new(0x77),
        EffectiveAddress::new(0x123_4567),
        SegmentSize::M256,
        PageSize::K64,
    )
    .unwrap();
    assert_eq!(p64.offset(), 0x123_0000);
    let ins = m
        .insert(&PageMapping::new(p64, PhysAddr::new(0x50_0000), Pp::RW_RW))
        .unwrap();
    let (_, e) = m.lookup(p64).unwrap().unwrap();
    assert!(e.is_large());
    assert_eq!(e.page_size(), Some(PageSize::K64));
    assert_eq!(m.decode(ins.ptex, e), Some(p64));
    // The 4K page at the same offset is a different translation.
    let p4 = VirtualPage::from_offset(Vsid::new(0x77), 0x123_0000, SegmentSize::M256, PageSize::K4)
        .unwrap();
    assert_eq!(m.lookup(p4).unwrap(), None);

    let t = VirtualPage::new(
        Vsid::new(0x3),
        EffectiveAddress::new(0x23_4567_8000),
        SegmentSize::T1,
        PageSize::K4,
    )
    .unwrap();
    let ins = m.insert(&PageMapping::new(t, frame(5), Pp::RW_RW)).unwrap();
    let (ptex, e) = m.lookup(t).unwrap().unwrap();
    assert_eq!(ptex, ins.ptex);
    assert_eq!(e.segment_size(), Some(SegmentSize::T1));
    assert_eq!(m.decode(ptex, e), Some(t));
}

#[test]
fn purge_removes_only_dead_vsids() {
    let mut m = HptManager::new(CountingHpt::new(NativeHpt::with_size_shift(18).unwrap())).unwrap();
    for i in 0..20 {
        m.insert(&PageMapping::new(page4k(0x100, i), frame(i), Pp::RW_RW))
            .unwrap();
        let mut b = PageMapping::new(page4k(0x200, i), frame(i), Pp::RW_RW);
        b.bolted = true;
        m.insert(&b).unwrap();
        m.insert(&PageMapping::new(page4k(0x300, i), frame(i), Pp::RW_RW))
            .unwrap();
    }
    let n = m
        .purge(|v| v == Vsid::new(0x100) || v == Vsid::new(0x200))
        .unwrap();
    assert_eq!(n, 40);
    assert_eq!(m.backend().inner.valid_entries(), 20);
    // Batched: 16 + 16 + 8, no single removes.
    assert_eq!(m.backend().batches, alloc::vec![16, 16, 8]);
    assert_eq!(m.backend().singles, 0);
    assert_eq!(m.stats().removes, 40);
    for i in 0..20 {
        assert!(m.lookup(page4k(0x300, i)).unwrap().is_some());
        assert!(m.lookup(page4k(0x100, i)).unwrap().is_none());
    }
}

fn arb_page() -> impl Strategy<Value = VirtualPage> {
    (
        prop_oneof![Just(SegmentSize::M256), Just(SegmentSize::T1)],
        prop_oneof![Just(PageSize::K4), Just(PageSize::K64)],
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(ssize, psize, v, off)| {
            let vsid = Vsid::new(v & ((1 << ssize.vsid_bits()) - 1));
            VirtualPage::from_offset(vsid, off & ssize.offset_mask(), ssize, psize).unwrap()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever the page, the entry inserted for it is found by lookup and
    /// its virtual page is recovered from (AVPN, PTEG index) alone; the
    /// four-bit slot the insert reports names the same PTE index, and the
    /// entry's `H` bit and slot give it back.
    #[test]
    fn insert_lookup_decode_round_trip(pages in proptest::collection::vec(arb_page(), 1..40),
                                       shift in 18u32..21) {
        let mut m = manager(shift);
        let mut live: Vec<(VirtualPage, Ptex, HptSlot)> = Vec::new();
        for (i, p) in pages.iter().enumerate() {
            if live.iter().any(|(q, _, _)| q == p) {
                continue;
            }
            let pa = PhysAddr::new((i as u64) << 16);
            let ins = m.insert(&PageMapping::new(*p, pa, Pp::RW_RW)).unwrap();
            if let Some(ev) = ins.evicted {
                let gone = ev.page.unwrap();
                live.retain(|(q, _, _)| *q != gone);
            }
            live.push((*p, ins.ptex, ins.slot));
        }
        for (p, ptex, slot) in &live {
            let (found, e) = m.lookup(*p).unwrap().unwrap();
            prop_assert_eq!(found, *ptex);
            prop_assert_eq!(m.decode(found, e), Some(*p));
            prop_assert_eq!(m.slot_ptex(*p, *slot), *ptex);
            prop_assert_eq!(m.slot_of(*p, *ptex), Some(*slot));
            prop_assert_eq!(HptSlot::of_entry(*ptex, e), *slot);
        }
    }
}
