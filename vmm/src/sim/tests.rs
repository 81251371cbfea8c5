use super::*;
use crate::hpt::{HptManager, PageMapping};
use crate::platform::{FrameAllocator, FrameError, PhysMemory, SlbBackend, SlbError};
use alloc::vec::Vec;
use arch_ppc64::addr::{Esid, Vsid};
use arch_ppc64::structures::slb::SlbFlags;
use arch_ppc64::structures::{PageSize, SegmentSize};

const VSID: u64 = 0x1234;
/// ESID 1: EAs 0x1000_0000..0x2000_0000.
const SEG: u64 = 0x1000_0000;

fn ea(off: u64) -> EffectiveAddress {
    EffectiveAddress::new(SEG + off)
}

/// A machine with ESID 1 → VSID 0x1234 (256M, 4K) in SLB slot 0, and an
/// HPT manager on its table.
fn setup(flags: SlbFlags) -> (Machine, HptManager<SimHpt>) {
    let m = Machine::new(SimConfig::default()).unwrap();
    let e = SlbEntry::new(
        Esid::new(1),
        Vsid::new(VSID),
        SegmentSize::M256,
        PageSize::K4,
        flags,
    )
    .unwrap();
    m.slb().load(0, e).unwrap();
    let hpt = HptManager::new(m.hpt()).unwrap();
    (m, hpt)
}

fn page(off: u64) -> VirtualPage {
    VirtualPage::new(Vsid::new(VSID), ea(off), SegmentSize::M256, PageSize::K4).unwrap()
}

fn dsi(off: u64, bits: u64) -> Interrupt {
    Interrupt::DataStorage {
        ea: ea(off),
        dsisr: DsisrFlags::from_dsisr(bits),
    }
}

fn isi(off: u64, bits: u64) -> Interrupt {
    Interrupt::InstructionStorage {
        ea: ea(off),
        srr1: IsiFlags::from_srr1(bits),
    }
}

const S: Privilege = Privilege::Supervisor;
const P: Privilege = Privilege::Problem;

#[test]
fn missing_slb_entry_raises_segment_interrupts() {
    let (m, _) = setup(SlbFlags::KP);
    let other = EffectiveAddress::new(0x2000_0000);
    assert_eq!(
        m.translate(other, Access::Load, S),
        Err(Interrupt::DataSegment { ea: other })
    );
    assert_eq!(
        m.translate(other, Access::Store, P),
        Err(Interrupt::DataSegment { ea: other })
    );
    assert_eq!(
        m.translate(other, Access::Fetch, S),
        Err(Interrupt::InstructionSegment { ea: other })
    );
    // slbie removes the entry for the mapped segment too.
    m.slb().invalidate(ea(0), SegmentSize::M256);
    assert_eq!(
        m.translate(ea(0), Access::Load, S),
        Err(Interrupt::DataSegment { ea: ea(0) })
    );
    let s = m.stats();
    assert_eq!((s.data_segment, s.instruction_segment), (3, 1));
}

#[test]
fn missing_hpte_raises_nopte_with_qemu_bits() {
    let (m, _) = setup(SlbFlags::KP);
    assert_eq!(
        m.translate(ea(0x5000), Access::Load, S),
        Err(dsi(0x5000, 0x4000_0000))
    );
    assert_eq!(
        m.translate(ea(0x5000), Access::Store, P),
        Err(dsi(0x5000, 0x4200_0000))
    );
    assert_eq!(
        m.translate(ea(0x5000), Access::Fetch, S),
        Err(isi(0x5000, 0x4000_0000))
    );
}

#[test]
fn translation_hits_primary_and_secondary_and_adds_page_offset() {
    let (m, mut hpt) = setup(SlbFlags::KP);
    let ins = hpt
        .insert(&PageMapping::new(
            page(0x3000),
            PhysAddr::new(0x7000),
            Pp::RW_RW,
        ))
        .unwrap();
    assert_eq!(ins.ptex.pteg(), hpt.primary_group(page(0x3000)));
    assert_eq!(
        m.translate(ea(0x3abc), Access::Load, S),
        Ok(PhysAddr::new(0x7abc))
    );
    // An entry in the secondary PTEG must carry H = 1 to be found.
    let p = page(0x9000);
    let sec = hpt.secondary_group(p);
    let h = PageMapping::new(p, PhysAddr::new(0x8000), Pp::RW_RW)
        .hpte(false)
        .unwrap();
    m.hpt().insert(sec, Some(0), h).unwrap();
    assert_eq!(
        m.translate(ea(0x9000), Access::Load, S),
        Err(dsi(0x9000, 0x4000_0000))
    );
    m.hpt()
        .remove(sec.ptex(0), RemoveCondition::Absolute)
        .unwrap();
    m.hpt()
        .insert(sec, Some(0), h.with_secondary(true))
        .unwrap();
    assert_eq!(
        m.translate(ea(0x9010), Access::Load, S),
        Ok(PhysAddr::new(0x8010))
    );
}

/// The ISA's PP/key table, written out as what each (pp, key) allows.
fn table9(pp: u8, key: bool) -> &'static str {
    match (pp, key) {
        (0b000, false) | (0b001, false) | (0b010, false) => "rwx",
        (0b011, false) | (0b110, false) => "rx",
        (0b001, true) | (0b011, true) => "rx",
        (0b010, true) => "rwx",
        _ => "",
    }
}

#[test]
fn every_pp_and_key_combination() {
    // Ks = 0, Kp = 1: supervisor uses key 0, problem state key 1.
    let (m, mut hpt) = setup(SlbFlags::KP);
    let p = page(0x4000);
    let ins = hpt
        .insert(&PageMapping::new(p, PhysAddr::new(0x4000), Pp::RW_RW))
        .unwrap();
    for pp in 0..8u8 {
        assert!(hpt.protect(ins.ptex, p, Pp::new(pp), false).unwrap());
        for (privilege, key) in [(S, false), (P, true)] {
            let allowed = table9(pp, key);
            let got = |a| m.translate(ea(0x4008), a, privilege);
            let ok = Ok(PhysAddr::new(0x4008));
            let case = alloc::format!("pp {pp:03b} key {key}");
            if allowed.contains('r') {
                assert_eq!(got(Access::Load), ok, "{case} load");
            } else {
                assert_eq!(
                    got(Access::Load),
                    Err(dsi(0x4008, 0x0800_0000)),
                    "{case} load"
                );
            }
            if allowed.contains('w') {
                assert_eq!(got(Access::Store), ok, "{case} store");
            } else {
                assert_eq!(
                    got(Access::Store),
                    Err(dsi(0x4008, 0x0a00_0000)),
                    "{case} store"
                );
            }
            if allowed.contains('x') {
                assert_eq!(got(Access::Fetch), ok, "{case} fetch");
            } else {
                assert_eq!(
                    got(Access::Fetch),
                    Err(isi(0x4008, 0x0800_0000)),
                    "{case} fetch"
                );
            }
        }
    }
}

#[test]
fn key_follows_msr_pr() {
    // Ks = 1, Kp = 0 (reversed): pp 000 is now open to problem state and
    // closed to the supervisor.
    let (m, mut hpt) = setup(SlbFlags::KS);
    hpt.insert(&PageMapping::new(page(0), PhysAddr::new(0), Pp::RW_NONE))
        .unwrap();
    assert!(m.translate(ea(0), Access::Store, P).is_ok());
    assert_eq!(
        m.translate(ea(0), Access::Load, S),
        Err(dsi(0, 0x0800_0000))
    );
}

/// Real address of a device page, beyond the default machine's 16 MiB of
/// RAM: PAPR lets a guest map it caching-inhibited and guarded.
const IO_PAGE: u64 = 0x8000_0000;

#[test]
fn no_execute_page_guarded_page_and_segment() {
    let (m, mut hpt) = setup(SlbFlags::KP);
    let mut nx = PageMapping::new(page(0x1000), PhysAddr::new(0x1000), Pp::RW_RW);
    nx.no_execute = true;
    hpt.insert(&nx).unwrap();
    // G on a RAM page is refused by H_ENTER; a guarded page is a device
    // page (I|G), as a pseries kernel would map it.
    let mut guarded = PageMapping::new(page(0x2000), PhysAddr::new(IO_PAGE), Pp::RW_RW);
    guarded.wimg = Wimg::I | Wimg::G;
    hpt.insert(&guarded).unwrap();
    for (off, pa) in [(0x1000, 0x1000), (0x2000, IO_PAGE)] {
        assert_eq!(
            m.translate(ea(off), Access::Fetch, P),
            Err(isi(off, 0x1000_0000))
        );
        assert_eq!(
            m.translate(ea(off + 8), Access::Load, P),
            Ok(PhysAddr::new(pa + 8))
        );
    }
    // N beats PP: pp 000 with key 1 also denies, but the cause is N.
    hpt.protect(
        hpt.lookup(page(0x1000)).unwrap().unwrap().0,
        page(0x1000),
        Pp::RW_NONE,
        true,
    )
    .unwrap();
    assert_eq!(
        m.translate(ea(0x1000), Access::Fetch, P),
        Err(isi(0x1000, 0x1000_0000))
    );

    // Segment N: denied before the page table is even searched (no HPTE
    // at 0x3000, yet the cause is NOEXEC_GUARD, not NOPTE).
    let e = SlbEntry::new(
        Esid::new(1),
        Vsid::new(VSID),
        SegmentSize::M256,
        PageSize::K4,
        SlbFlags::KP | SlbFlags::N,
    )
    .unwrap();
    m.slb().invalidate(ea(0), SegmentSize::M256);
    m.slb().load(0, e).unwrap();
    assert_eq!(
        m.translate(ea(0x3000), Access::Fetch, S),
        Err(isi(0x3000, 0x1000_0000))
    );
    assert_eq!(
        m.translate(ea(0x3000), Access::Load, S),
        Err(dsi(0x3000, 0x4000_0000))
    );
}

#[test]
fn reference_and_change_bits_are_written_back() {
    let (m, hpt) = setup(SlbFlags::KP);
    let p = page(0x6000);
    let h = PageMapping::new(p, PhysAddr::new(0x6000), Pp::RO_RO)
        .hpte(false)
        .unwrap()
        .with_referenced(false);
    let ptex = m.hpt().insert(hpt.primary_group(p), None, h).unwrap();
    // A denied store sets nothing.
    assert!(m.translate(ea(0x6000), Access::Store, P).is_err());
    let e = m.hpt().read(ptex).unwrap();
    assert!(!e.referenced() && !e.changed());
    m.translate(ea(0x6000), Access::Load, P).unwrap();
    let e = m.hpt().read(ptex).unwrap();
    assert!(e.referenced() && !e.changed());
    m.hpt()
        .protect(ptex, p.avpn_word(), Pp::RW_RW, false)
        .unwrap();
    m.translate(ea(0x6000), Access::Store, P).unwrap();
    assert!(m.hpt().read(ptex).unwrap().changed());
}

#[test]
fn sixty_four_k_and_one_terabyte_segments() {
    let m = Machine::new(SimConfig::default()).unwrap();
    let mut hpt = HptManager::new(m.hpt()).unwrap();
    // 64K pages in ESID 2.
    let e64 = SlbEntry::new(
        Esid::new(2),
        Vsid::new(0x99),
        SegmentSize::M256,
        PageSize::K64,
        SlbFlags::KP,
    )
    .unwrap();
    m.slb().load(1, e64).unwrap();
    let p = VirtualPage::new(
        Vsid::new(0x99),
        EffectiveAddress::new(0x2003_0000),
        SegmentSize::M256,
        PageSize::K64,
    )
    .unwrap();
    hpt.insert(&PageMapping::new(p, PhysAddr::new(0x10_0000), Pp::RW_RW))
        .unwrap();
    assert_eq!(
        m.translate(EffectiveAddress::new(0x2003_fff8), Access::Load, P),
        Ok(PhysAddr::new(0x10_fff8))
    );
    // A 4K HPTE for the same VA is not used in a 64K segment.
    assert!(m
        .translate(EffectiveAddress::new(0x2004_0000), Access::Load, P)
        .is_err());

    // A 1T segment at 0x100_0000_0000 (ESID 0x1000).
    let ea1t = EffectiveAddress::new(0x123_4567_8000);
    let e1t = SlbEntry::new(
        Esid::of_segment(ea1t, SegmentSize::T1),
        Vsid::new(0x3),
        SegmentSize::T1,
        PageSize::K4,
        SlbFlags::KP,
    )
    .unwrap();
    m.slb().load(2, e1t).unwrap();
    let p = VirtualPage::new(Vsid::new(3), ea1t, SegmentSize::T1, PageSize::K4).unwrap();
    hpt.insert(&PageMapping::new(p, PhysAddr::new(0x20_0000), Pp::RW_RW))
        .unwrap();
    assert_eq!(
        m.translate(EffectiveAddress::new(0x123_4567_8123), Access::Store, P),
        Ok(PhysAddr::new(0x20_0123))
    );
}

#[test]
#[should_panic(expected = "SLB multi-hit")]
fn slb_multi_hit_is_a_machine_check() {
    let (m, _) = setup(SlbFlags::KP);
    let e = m.slb().read(0).unwrap();
    m.slb().load(5, e).unwrap();
    let _ = m.translate(ea(0), Access::Load, S);
}

#[test]
fn slb_load_checks_like_slbmte() {
    let (m, _) = setup(SlbFlags::KP);
    let mut slb = m.slb();
    let e = slb.read(0).unwrap();
    assert_eq!(slb.load(32, e), Err(SlbError::IndexOutOfRange(32)));
    let bad = SlbEntry {
        esid_word: e.esid_word,
        vsid_word: e.vsid_word | 0x120, // 16G LLP: not supported here
    };
    assert!(matches!(slb.load(3, bad), Err(SlbError::InvalidEntry(_))));
    // 16M base pages: the default machine filters them out.
    let m16 = SlbEntry {
        esid_word: e.esid_word,
        vsid_word: (e.vsid_word & !0x130) | PageSize::M16.slb_llp(),
    };
    assert_eq!(m16.page_size(), Some(PageSize::M16));
    assert!(matches!(slb.load(3, m16), Err(SlbError::InvalidEntry(_))));
    assert_eq!(slb.valid_entries(), 1);
    slb.load(7, e.with_index(0).unwrap()).unwrap();
    assert_eq!(slb.read(7).unwrap().index(), 7);
    slb.invalidate_non_bolted(1);
    assert_eq!(slb.valid_entries(), 1);
    assert!(slb.read(0).unwrap().is_valid());
}

#[test]
fn frame_allocator_and_real_memory() {
    let m = Machine::new(SimConfig {
        memory_bytes: 4 * 4096 + 100,
        ..SimConfig::default()
    })
    .unwrap();
    let mut mem = m.memory();
    assert_eq!(mem.frame_count(), 4);
    let frames: Vec<PhysAddr> = (0..4).map(|_| mem.allocate().unwrap()).collect();
    assert_eq!(frames[0], PhysAddr::new(0));
    assert_eq!(frames[3], PhysAddr::new(0x3000));
    assert_eq!(mem.allocate(), None);
    mem.write(PhysAddr::new(0x1ffc), &[1, 2, 3, 4, 5, 6, 7, 8])
        .unwrap();
    mem.copy(frames[3], frames[1]).unwrap();
    let mut b = [0u8; 4];
    mem.read(PhysAddr::new(0x3ffc), &mut b).unwrap();
    assert_eq!(b, [1, 2, 3, 4]);
    mem.zero(frames[1]).unwrap();
    mem.read(PhysAddr::new(0x1ffc), &mut b).unwrap();
    assert_eq!(b, [0; 4]);
    mem.read(PhysAddr::new(0x2000), &mut b).unwrap();
    assert_eq!(b, [5, 6, 7, 8], "frame 2 untouched by zeroing frame 1");
    mem.free(frames[2]).unwrap();
    assert_eq!(
        mem.free(frames[2]),
        Err(FrameError::NotAllocated(frames[2]))
    );
    assert_eq!(
        mem.zero(frames[2]),
        Err(FrameError::NotAllocated(frames[2]))
    );
    assert_eq!(
        mem.free(PhysAddr::new(0x1001)),
        Err(FrameError::Misaligned(PhysAddr::new(0x1001)))
    );
    assert_eq!(
        mem.free(PhysAddr::new(0x4000)),
        Err(FrameError::OutOfRange(PhysAddr::new(0x4000)))
    );
    assert_eq!(
        mem.read(PhysAddr::new(0x3ffe), &mut b),
        Err(FrameError::OutOfRange(PhysAddr::new(0x3ffe)))
    );
    assert_eq!(mem.free_frames(), 1);
    assert_eq!(mem.allocate(), Some(frames[2]));
}

/// A handler that always claims success without doing anything.
struct Liar;

impl FaultHandler for Liar {
    fn handle(&mut self, _: Interrupt, _: Privilege) -> FaultOutcome {
        FaultOutcome::Resolved
    }
}

#[test]
fn retries_are_bounded() {
    let (m, _) = setup(SlbFlags::KP);
    assert_eq!(
        m.load_u64(ea(0), S, &mut Liar),
        Err(VmFault {
            ea: ea(0),
            access: Some(Access::Load),
            reason: VmFaultReason::RetriesExhausted
        })
    );
    assert_eq!(m.stats().data_storage, MAX_INTERRUPTS_PER_ACCESS as u64);
}

fn pager_machine() -> (Machine, FlatPager) {
    let m = Machine::new(SimConfig::default()).unwrap();
    let mut pager = FlatPager::new(&m).unwrap();
    pager
        .add_segment(
            Esid::new(1),
            Vsid::new(VSID),
            SegmentSize::M256,
            SlbFlags::KP,
            Pp::RW_RW,
            false,
        )
        .unwrap();
    pager
        .add_segment(
            Esid::new(3),
            Vsid::new(0x777),
            SegmentSize::M256,
            SlbFlags::KP,
            Pp::RO_RO,
            true,
        )
        .unwrap();
    (m, pager)
}

#[test]
fn accesses_fault_in_zeroed_pages_and_keep_data() {
    let (m, mut pager) = pager_machine();
    assert_eq!(m.load_u64(ea(0x10), P, &mut pager), Ok(0));
    m.store_u64(ea(0x10), 0x0123_4567_89ab_cdef, P, &mut pager)
        .unwrap();
    assert_eq!(m.load_u8(ea(0x10), P, &mut pager), Ok(0x01), "big-endian");
    m.store_u8(ea(0x17), 0xff, P, &mut pager).unwrap();
    assert_eq!(
        m.load_u64(ea(0x10), P, &mut pager),
        Ok(0x0123_4567_89ab_cdff)
    );
    // A doubleword straddling two pages faults in the second one.
    m.store_u64(ea(0xffc), 0x1122_3344_5566_7788, P, &mut pager)
        .unwrap();
    assert_eq!(
        m.load_u64(ea(0xffc), P, &mut pager),
        Ok(0x1122_3344_5566_7788)
    );
    assert_eq!(pager.page_count(), 2);
    let s = pager.stats();
    assert_eq!((s.segment_faults, s.zero_fills, s.refaults), (1, 2, 0));
    // Drop the HPTE: C comes back into the software table, and the next
    // load refaults the same frame.
    let state = pager.page(ea(0)).unwrap();
    let old = pager.drop_translation(ea(0)).unwrap().unwrap();
    assert!(old.changed());
    assert!(pager.page(ea(0)).unwrap().changed);
    assert_eq!(
        m.load_u64(ea(0x10), P, &mut pager),
        Ok(0x0123_4567_89ab_cdff)
    );
    assert_eq!(pager.stats().refaults, 1);
    assert_eq!(pager.page(ea(0)).unwrap().pa, state.pa);
    // Instruction fetch sees the same bytes.
    assert_eq!(m.fetch_u32(ea(0x12), P, &mut pager), Ok(0x0123_4567));
}

#[test]
fn unresolvable_faults_come_back_as_vm_faults() {
    let (m, mut pager) = pager_machine();
    let ro = EffectiveAddress::new(0x3000_0000);
    assert_eq!(m.load_u64(ro, P, &mut pager), Ok(0));
    assert_eq!(
        m.store_u64(ro, 1, P, &mut pager),
        Err(VmFault {
            ea: ro,
            access: Some(Access::Store),
            reason: VmFaultReason::Protection
        })
    );
    assert_eq!(
        m.fetch_u32(ro, P, &mut pager).unwrap_err().reason,
        VmFaultReason::NoExecute
    );
    let nowhere = EffectiveAddress::new(0x5000_0000);
    assert_eq!(
        m.load_u8(nowhere, P, &mut pager),
        Err(VmFault {
            ea: nowhere,
            access: None,
            reason: VmFaultReason::NoSegment
        })
    );
}

#[test]
fn out_of_memory_is_a_vm_fault() {
    let m = Machine::new(SimConfig {
        memory_bytes: 2 * 4096,
        ..SimConfig::default()
    })
    .unwrap();
    let mut pager = FlatPager::new(&m).unwrap();
    pager
        .add_segment(
            Esid::new(1),
            Vsid::new(5),
            SegmentSize::M256,
            SlbFlags::KP,
            Pp::RW_RW,
            false,
        )
        .unwrap();
    m.store_u8(ea(0), 1, P, &mut pager).unwrap();
    m.store_u8(ea(0x1000), 1, P, &mut pager).unwrap();
    assert_eq!(
        m.store_u8(ea(0x2000), 1, P, &mut pager).unwrap_err().reason,
        VmFaultReason::NoMemory
    );
}

/// xorshift64*: a fixed-seed generator so the pressure test is repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn hpt_pressure_every_page_reads_back_its_own_data() {
    // 2^18-byte HPT = 16384 slots; touch 22000 distinct random pages in 48
    // segments with random VSIDs (more segments than SLB entries), so the
    // table fills past 95% and evictions and SLB replacement happen.
    const PAGES: usize = 22_000;
    let m = Machine::new(SimConfig {
        memory_bytes: (PAGES + 16) * 4096,
        hpt_shift: 18,
        slb_size: 32,
    })
    .unwrap();
    let mut pager = FlatPager::new(&m).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut esids = Vec::new();
    while esids.len() < 48 {
        let esid = rng.next() & 0xff_ffff; // user-ish ESIDs below 2^52 EA
        let vsid = rng.next() & ((1 << 35) - 1);
        if esid == 0 || esids.contains(&esid) {
            continue;
        }
        pager
            .add_segment(
                Esid::new(esid),
                Vsid::new(vsid | 1),
                SegmentSize::M256,
                SlbFlags::KP,
                Pp::RW_RW,
                false,
            )
            .unwrap();
        esids.push(esid);
    }
    let mut addrs: Vec<EffectiveAddress> = Vec::new();
    let mut seen = alloc::collections::BTreeSet::new();
    while addrs.len() < PAGES {
        let esid = esids[(rng.next() % esids.len() as u64) as usize];
        let off = (rng.next() & 0xfff_f000) | ((rng.next() & 0x1ff) << 3);
        let a = EffectiveAddress::new((esid << 28) | off);
        if seen.insert(a.page_base(PageSize::K4)) {
            addrs.push(a);
        }
    }
    for a in &addrs {
        m.store_u64(*a, a.as_u64() ^ 0x5a5a_5a5a_5a5a_5a5a, P, &mut pager)
            .unwrap();
    }
    let slots = 16384;
    let valid = m.valid_hptes();
    assert!(valid * 100 > slots * 95, "HPT only {valid}/{slots} full");
    let before = pager.stats();
    assert!(before.evictions > 0);
    assert_eq!(before.zero_fills, PAGES as u64);
    for a in &addrs {
        assert_eq!(
            m.load_u64(*a, P, &mut pager),
            Ok(a.as_u64() ^ 0x5a5a_5a5a_5a5a_5a5a),
            "{a:?}"
        );
    }
    let after = pager.stats();
    assert!(after.refaults > 0, "evicted pages came back through faults");
    assert_eq!(after.zero_fills, PAGES as u64, "no page lost its frame");
    // Every page written had its C bit collected somewhere: in its live
    // HPTE or folded into the software table on eviction.
    for a in addrs.iter().take(500) {
        let st = pager.page(*a).unwrap();
        let live_c = st
            .ptex
            .map(|p| pager.hpt().backend().read(p).unwrap().changed())
            .unwrap_or(false);
        assert!(st.changed || live_c, "{a:?} lost its change bit");
    }
}

#[test]
fn slbmte_over_a_valid_entry_keeps_stale_translations_until_slbie() {
    let (m, mut hpt) = setup(SlbFlags::KP);
    hpt.insert(&PageMapping::new(page(0), PhysAddr::new(0x1000), Pp::RW_RW))
        .unwrap();
    // The same offset in another segment (VSID 0x5678) maps elsewhere.
    let other =
        VirtualPage::new(Vsid::new(0x5678), ea(0), SegmentSize::M256, PageSize::K4).unwrap();
    hpt.insert(&PageMapping::new(other, PhysAddr::new(0x2000), Pp::RW_RW))
        .unwrap();
    assert_eq!(
        m.translate(ea(8), Access::Load, P),
        Ok(PhysAddr::new(0x1008))
    );
    // Overwrite slot 0 with the other VSID, no slbie: the TLB still holds
    // the old segment's translation (as under QEMU).
    let e = SlbEntry::new(
        Esid::new(1),
        Vsid::new(0x5678),
        SegmentSize::M256,
        PageSize::K4,
        SlbFlags::KP,
    )
    .unwrap();
    m.slb().load(0, e).unwrap();
    assert_eq!(
        m.translate(ea(8), Access::Load, P),
        Ok(PhysAddr::new(0x1008))
    );
    // The right sequence: slbie, then slbmte.
    m.slb().invalidate(ea(0), SegmentSize::M256);
    m.slb().load(0, e).unwrap();
    assert_eq!(
        m.translate(ea(8), Access::Load, P),
        Ok(PhysAddr::new(0x2008))
    );
    // Without a TLB the overwrite takes effect at once.
    m.set_tlb_enabled(false);
    let back = SlbEntry::new(
        Esid::new(1),
        Vsid::new(VSID),
        SegmentSize::M256,
        PageSize::K4,
        SlbFlags::KP,
    )
    .unwrap();
    m.slb().load(0, back).unwrap();
    assert_eq!(
        m.translate(ea(8), Access::Load, P),
        Ok(PhysAddr::new(0x1008))
    );
}

/// The MMU searches the SLB in the form `slbmte` decoded it into; every
/// write of an index (a new ESID there, `slbie`, `slbia`) must reach that
/// form, or the search would still match the entry that was there before.
#[test]
fn slb_search_follows_every_write_of_an_index() {
    let (m, mut hpt) = setup(SlbFlags::KP);
    m.set_tlb_enabled(false);
    hpt.insert(&PageMapping::new(page(0), PhysAddr::new(0x1000), Pp::RW_RW))
        .unwrap();
    let seg2 = |off: u64| EffectiveAddress::new(0x2000_0000 + off);
    assert_eq!(
        m.translate(ea(8), Access::Load, P),
        Ok(PhysAddr::new(0x1008))
    );
    // Index 0 now holds ESID 2 (same VSID): ESID 1 misses, ESID 2 hits.
    let moved = SlbEntry::new(
        Esid::new(2),
        Vsid::new(VSID),
        SegmentSize::M256,
        PageSize::K4,
        SlbFlags::KP,
    )
    .unwrap();
    m.slb().load(0, moved).unwrap();
    assert_eq!(
        m.translate(ea(8), Access::Load, P),
        Err(Interrupt::DataSegment { ea: ea(8) })
    );
    assert_eq!(
        m.translate(seg2(8), Access::Load, P),
        Ok(PhysAddr::new(0x1008))
    );
    // slbie and slbia leave nothing to match.
    m.slb().invalidate(seg2(0), SegmentSize::M256);
    assert_eq!(
        m.translate(seg2(8), Access::Load, P),
        Err(Interrupt::DataSegment { ea: seg2(8) })
    );
    m.slb().load(5, moved).unwrap();
    assert_eq!(
        m.translate(seg2(8), Access::Load, P),
        Ok(PhysAddr::new(0x1008))
    );
    m.slb().invalidate_non_bolted(0);
    assert_eq!(
        m.translate(seg2(8), Access::Load, P),
        Err(Interrupt::DataSegment { ea: seg2(8) })
    );
}

#[test]
fn tlb_hits_still_record_change_and_respect_flushes() {
    let (m, hpt) = setup(SlbFlags::KP);
    let p = page(0x7000);
    let h = PageMapping::new(p, PhysAddr::new(0x7000), Pp::RW_RW)
        .hpte(false)
        .unwrap();
    let ptex = m.hpt().insert(hpt.primary_group(p), None, h).unwrap();
    m.translate(ea(0x7000), Access::Load, P).unwrap();
    let hits = m.stats().tlb_hits;
    m.translate(ea(0x7008), Access::Load, P).unwrap();
    assert_eq!(m.stats().tlb_hits, hits + 1, "second load from the TLB");
    assert!(!m.hpt().read(ptex).unwrap().changed());
    // The first store walks the table (C was clear) and records C.
    m.translate(ea(0x7000), Access::Store, P).unwrap();
    assert!(m.hpt().read(ptex).unwrap().changed());
    m.translate(ea(0x7000), Access::Store, P).unwrap();
    assert_eq!(m.stats().tlb_hits, hits + 2, "later stores hit");
    // Supervisor state has its own entries.
    m.translate(ea(0x7000), Access::Load, S).unwrap();
    assert_eq!(m.stats().tlb_hits, hits + 2);
    // H_PROTECT flushes: the store is refused at once.
    m.hpt()
        .protect(ptex, p.avpn_word(), Pp::RO_RO, false)
        .unwrap();
    assert_eq!(
        m.translate(ea(0x7000), Access::Store, P),
        Err(dsi(0x7000, 0x0a00_0000))
    );
    // H_REMOVE flushes: the load faults.
    m.hpt().remove(ptex, RemoveCondition::Absolute).unwrap();
    assert_eq!(
        m.translate(ea(0x7000), Access::Load, P),
        Err(dsi(0x7000, 0x4000_0000))
    );
}

#[test]
fn pager_serves_one_terabyte_segments() {
    let m = Machine::new(SimConfig::default()).unwrap();
    let mut pager = FlatPager::new(&m).unwrap();
    // The 1T segment 0x100_0000_0000..0x200_0000_0000 is named by ESID
    // 0x1000 (EA >> 28, low 12 bits zero).
    let base = EffectiveAddress::new(0x100_0000_0000);
    pager
        .add_segment(
            Esid::of_segment(base, SegmentSize::T1),
            Vsid::new(0x3_1234),
            SegmentSize::T1,
            SlbFlags::KP,
            Pp::RW_RW,
            false,
        )
        .unwrap();
    let far = EffectiveAddress::new(0x1ab_cdef_0008);
    m.store_u64(far, 77, P, &mut pager).unwrap();
    m.store_u64(base, 78, P, &mut pager).unwrap();
    assert_eq!(m.load_u64(far, P, &mut pager), Ok(77));
    assert_eq!(m.load_u64(base, P, &mut pager), Ok(78));
    assert_eq!(pager.stats().segment_faults, 1, "one SLB entry covers both");
    let e = m.slb().read(0).unwrap();
    assert_eq!(e.segment_size(), Some(SegmentSize::T1));
    // A 1T segment's ESID must be aligned.
    assert!(pager
        .add_segment(
            Esid::new(0x1001),
            Vsid::new(1),
            SegmentSize::T1,
            SlbFlags::KP,
            Pp::RW_RW,
            false
        )
        .is_err());
}

/// The HPTE for the 4K page at `off` in the test segment, mapped to `pa`
/// read-write, with storage attributes `wimg`.
fn entry_to(off: u64, pa: u64, wimg: Wimg) -> Hpte {
    PageMapping::new(page(off), PhysAddr::new(pa), Pp::RW_RW)
        .hpte(false)
        .unwrap()
        .with_wimg(wimg)
}

#[test]
fn h_enter_refuses_what_the_pseries_hypervisor_refuses() {
    let (m, hpt) = setup(SlbFlags::KP);
    let group = hpt.primary_group(page(0x5000));
    let ram = |wimg| entry_to(0x5000, 0x5000, wimg);
    let io = |wimg| entry_to(0x5000, IO_PAGE, wimg);
    let ram_end = SimConfig::default().memory_bytes as u64;
    let (w, i, mm, g) = (Wimg::W, Wimg::I, Wimg::M, Wimg::G);
    // A large page at 64K-aligned RAM, its size encoded in the RPN's low
    // bits.
    let with_lp = |lp: u64| {
        let h = entry_to(0x5000, 0x1_0000, mm);
        Hpte {
            v: h.v | hpte::v::L,
            r: h.r | lp,
        }
    };
    let refused = [
        // RAM: WIMG must be exactly M.
        ram(mm | g),
        ram(g),
        ram(i),
        ram(Wimg::empty()),
        ram(i | mm),
        ram(i | g),
        ram(w | mm),
        // The last RAM page is still RAM.
        entry_to(0x5000, ram_end - 0x1000, i),
        // Outside RAM: I or I|M, G free, W never.
        io(Wimg::empty()),
        io(mm),
        io(g),
        io(w | i),
        io(w | i | mm | g),
        // L = 1 with an encoding the default machine filters out: 64K in
        // a 4K segment (0x7), 16M in a 64K segment (0x8), 16M/16G (0).
        with_lp(0x7000),
        with_lp(0x8000),
        with_lp(0),
        // A well-formed 16M page (16M-aligned RAM, LP 0): only a machine
        // with cap-hpt-max-page-size=16M takes it.
        {
            let h = entry_to(0x5000, 0, mm).with_page(PhysAddr::new(0), PageSize::M16);
            assert_eq!(h.page_size(), Some(PageSize::M16));
            h
        },
    ];
    for h in refused {
        assert_eq!(
            m.hpt().insert(group, None, h),
            Err(HptError::Parameter),
            "{h:x?}"
        );
    }
    // Refusals left the table as it was.
    for s in 0..8 {
        assert_eq!(m.hpt().read(group.ptex(s)), Ok(Hpte::EMPTY));
    }
    let accepted = [
        ram(mm),
        io(i),
        io(i | mm),
        io(i | g),
        io(i | mm | g),
        entry_to(0x5000, ram_end, i | g),
        // 64K page in a 64K segment (LP 0x1).
        with_lp(hpte::r::LP_64K),
    ];
    for h in accepted {
        let ptex = m.hpt().insert(group, None, h).unwrap();
        assert_eq!(ptex, group.ptex(0), "{h:x?}");
        m.hpt().remove(ptex, RemoveCondition::Absolute).unwrap();
    }
}

#[test]
fn native_table_takes_any_wimg_and_guards_ram() {
    // Powernv-style: the kernel owns the table, nothing filters WIMG, and
    // G on a RAM page has its architected effect.
    let (m, hpt) = setup(SlbFlags::KP);
    let p = page(0x2000);
    let h = entry_to(0x2000, 0x2000, Wimg::M | Wimg::G);
    assert_eq!(
        m.hpt().insert(hpt.primary_group(p), None, h),
        Err(HptError::Parameter)
    );
    m.native_hpt()
        .insert(hpt.primary_group(p), None, h)
        .unwrap();
    assert_eq!(
        m.translate(ea(0x2000), Access::Fetch, P),
        Err(isi(0x2000, 0x1000_0000))
    );
    assert_eq!(
        m.translate(ea(0x2010), Access::Store, P),
        Ok(PhysAddr::new(0x2010))
    );
}

#[test]
fn h_enter_stores_an_invalid_entry_in_a_free_slot() {
    let (m, hpt) = setup(SlbFlags::KP);
    let group = hpt.primary_group(page(0x5000));
    let h = entry_to(0x5000, 0x5000, Wimg::M);
    assert_eq!(m.hpt().insert(group, None, h), Ok(group.ptex(0)));
    // QEMU does not look at V: the entry is stored (with its software
    // bits rewritten) and the slot stays free.
    let invalid = entry_to(0x5000, 0x9000, Wimg::M).with_valid(false);
    assert_eq!(m.hpt().insert(group, None, invalid), Ok(group.ptex(1)));
    assert_eq!(
        m.hpt().read(group.ptex(1)),
        Ok(Hpte {
            v: invalid.v | papr::HYPERVISOR_DIRTY,
            r: invalid.r
        })
    );
    assert_eq!(m.valid_hptes(), 1);
    // It takes no part in translation (no second match, no panic).
    assert_eq!(
        m.translate(ea(0x5008), Access::Load, S),
        Ok(PhysAddr::new(0x5008))
    );
    // H_EXACT onto a valid slot is still refused; onto the free one not.
    assert_eq!(
        m.hpt().insert(group, Some(0), invalid),
        Err(HptError::PtegFull)
    );
    let other = entry_to(0x6000, 0x6000, Wimg::M);
    assert_eq!(m.hpt().insert(group, Some(1), other), Ok(group.ptex(1)));
    // The architected table wants V.
    assert_eq!(
        m.native_hpt().insert(group, None, invalid),
        Err(HptError::Parameter)
    );
}

#[test]
fn h_enter_and_h_remove_store_what_the_hypervisor_stores() {
    let (m, hpt) = setup(SlbFlags::KP);
    let p = page(0x5000);
    let group = hpt.primary_group(p);
    let h = entry_to(0x5000, 0x5000, Wimg::M).with_referenced(false);
    // Every software bit set: 0x60 is cleared, 0x40 set again, bolted
    // (0x10) and 0x08 survive.
    let given = Hpte {
        v: h.v | hpte::v::SW,
        r: h.r,
    };
    let ptex = m.hpt().insert(group, None, given).unwrap();
    let stored = m.hpt().read(ptex).unwrap();
    assert_eq!(stored.v, h.v | 0x58);
    assert_eq!(stored.r, h.r);
    assert!(stored.is_bolted());
    m.translate(ea(0x5000), Access::Store, P).unwrap();
    // H_REMOVE returns the entry as stored, with its final R and C...
    let old = m
        .hpt()
        .remove(ptex, RemoveCondition::Avpn(h.avpn_word()))
        .unwrap();
    assert_eq!(old.v, stored.v);
    assert!(old.referenced() && old.changed());
    // ...and rewrites the whole slot: a later H_READ shows R = C = 0.
    let after = m.hpt().read(ptex).unwrap();
    assert_eq!(after, papr::REMOVED);
    assert!(!after.is_valid() && !after.referenced() && !after.changed());

    // The native table only clears V (the ISA's removal sequence).
    let ptex = m.native_hpt().insert(group, None, h).unwrap();
    assert_eq!(m.native_hpt().read(ptex), Ok(h), "stored as given");
    m.translate(ea(0x5000), Access::Store, P).unwrap();
    let old = m
        .native_hpt()
        .remove(ptex, RemoveCondition::Absolute)
        .unwrap();
    assert!(old.referenced() && old.changed());
    assert_eq!(m.native_hpt().read(ptex), Ok(Hpte { v: 0, r: old.r }));
}

#[test]
fn a_store_crossing_into_a_faulting_page_stores_nothing() {
    let (m, mut pager) = pager_machine();
    // ESID 2 read-write, followed by ESID 3 (read-only) and, after that,
    // no segment at ESID 4.
    pager
        .add_segment(
            Esid::new(2),
            Vsid::new(0x555),
            SegmentSize::M256,
            SlbFlags::KP,
            Pp::RW_RW,
            false,
        )
        .unwrap();
    let last = EffectiveAddress::new(0x2fff_fff8);
    let crossing = EffectiveAddress::new(0x2fff_fffc);
    let ro = EffectiveAddress::new(0x3000_0000);
    // Fault the first page in with a load: zeroed, C clear.
    assert_eq!(m.load_u64(last, P, &mut pager), Ok(0));
    let ptex = pager.page(last).unwrap().ptex.unwrap();
    assert!(!m.hpt().read(ptex).unwrap().changed());
    assert_eq!(
        m.store_u64(crossing, 0x1122_3344_5566_7788, P, &mut pager),
        Err(VmFault {
            ea: ro,
            access: Some(Access::Store),
            reason: VmFaultReason::Protection
        })
    );
    // Not one byte reached the first page...
    assert_eq!(m.load_u64(last, P, &mut pager), Ok(0));
    // ...though it was translated for the store before the second page
    // faulted, so C is set (QEMU fills its TLB entry for the first page,
    // recording C, before it probes the second).
    assert!(m.hpt().read(ptex).unwrap().changed());

    // A load crossing into a page with no segment leaves the buffer alone.
    let mut buf = [0xee; 8];
    assert_eq!(
        m.load_bytes(EffectiveAddress::new(0x3fff_fffc), &mut buf, P, &mut pager),
        Err(VmFault {
            ea: EffectiveAddress::new(0x4000_0000),
            access: None,
            reason: VmFaultReason::NoSegment
        })
    );
    assert_eq!(buf, [0xee; 8]);
}

#[test]
#[should_panic(expected = "two HPTEs")]
fn two_matching_hptes_are_a_machine_check() {
    // H_ENTER does not look for duplicates and QEMU would translate
    // through the first (slot 0); the sim stops: it is a VMM bug.
    let (m, hpt) = setup(SlbFlags::KP);
    let group = hpt.primary_group(page(0x5000));
    m.hpt()
        .insert(group, None, entry_to(0x5000, 0x5000, Wimg::M))
        .unwrap();
    m.hpt()
        .insert(group, None, entry_to(0x5000, 0x6000, Wimg::M))
        .unwrap();
    let _ = m.translate(ea(0x5000), Access::Load, S);
}

#[test]
fn slbie_with_another_segment_size_leaves_the_entry() {
    let (m, mut hpt) = setup(SlbFlags::KP);
    hpt.insert(&PageMapping::new(page(0), PhysAddr::new(0x1000), Pp::RW_RW))
        .unwrap();
    // QEMU would invalidate the 256M entry whatever size slbie names; the
    // sim keeps it, so a VMM passing the wrong size sees the segment stay.
    m.slb().invalidate(ea(0), SegmentSize::T1);
    assert!(m.slb().read(0).unwrap().is_valid());
    assert_eq!(
        m.translate(ea(8), Access::Load, P),
        Ok(PhysAddr::new(0x1008))
    );
    m.slb().invalidate(ea(0), SegmentSize::M256);
    assert!(!m.slb().read(0).unwrap().is_valid());
    assert_eq!(
        m.translate(ea(8), Access::Load, P),
        Err(Interrupt::DataSegment { ea: ea(8) })
    );
    // The same for a 1T entry and a 256M slbie.
    let ea1t = EffectiveAddress::new(0x100_0000_0000);
    let e1t = SlbEntry::new(
        Esid::of_segment(ea1t, SegmentSize::T1),
        Vsid::new(3),
        SegmentSize::T1,
        PageSize::K4,
        SlbFlags::KP,
    )
    .unwrap();
    m.slb().load(1, e1t).unwrap();
    m.slb().invalidate(ea1t, SegmentSize::M256);
    assert!(m.slb().read(1).unwrap().is_valid());
    m.slb().invalidate(ea1t, SegmentSize::T1);
    assert!(!m.slb().read(1).unwrap().is_valid());
}

#[test]
fn slbmte_refuses_reserved_bits_valid_or_not() {
    let (m, _) = setup(SlbFlags::KP);
    let mut slb = m.slb();
    let before: Vec<SlbEntry> = (0..32).map(|i| slb.read(i).unwrap()).collect();
    let e = slb.read(0).unwrap();
    let v = arch_ppc64::structures::slb::esid_word::V;
    let refused = [
        // Reserved RB bits between V and the index (QEMU: Program
        // interrupt), valid or not.
        SlbEntry {
            esid_word: e.esid_word | 0x0100_0000,
            vsid_word: e.vsid_word,
        },
        SlbEntry {
            esid_word: (e.esid_word & !v) | 0x1000,
            vsid_word: e.vsid_word,
        },
        // A reserved B or an L||LP not offered, with V = 0.
        SlbEntry {
            esid_word: e.esid_word & !v,
            vsid_word: e.vsid_word | (2 << 62),
        },
        SlbEntry {
            esid_word: e.esid_word & !v,
            vsid_word: e.vsid_word | 0x100, // 16M: filtered out
        },
        // A valid 1T entry whose ESID is not 1T-aligned (QEMU stores it
        // and never matches it).
        SlbEntry {
            esid_word: (0x1001 << 28) | v,
            vsid_word: (1 << 62) | (5 << 24) | arch_ppc64::structures::slb::vsid_word::KP,
        },
    ];
    for bad in refused {
        assert_eq!(
            slb.load(3, bad),
            Err(SlbError::InvalidEntry(bad.with_index(3).unwrap()))
        );
    }
    let after: Vec<SlbEntry> = (0..32).map(|i| slb.read(i).unwrap()).collect();
    assert_eq!(before, after);
    // slbmte 0,0 (Linux's way of clearing entry 0) is fine.
    slb.load(0, SlbEntry::INVALID).unwrap();
    assert_eq!(slb.valid_entries(), 0);
}

/// A two-processor machine with ESID 1 → VSID 0x1234 in SLB slot 0 of
/// both processors and one page (offset 0x3000 → frame 0x7000) entered.
fn two_cpus() -> (Machine, Machine, HptManager<SimHpt>, Ptex) {
    let m0 = Machine::with_cpus(SimConfig::default(), 2).unwrap();
    let m1 = m0.cpu(1).unwrap();
    let e = SlbEntry::new(
        Esid::new(1),
        Vsid::new(VSID),
        SegmentSize::M256,
        PageSize::K4,
        SlbFlags::KP,
    )
    .unwrap();
    m0.slb().load(0, e).unwrap();
    m1.slb().load(0, e).unwrap();
    let mut hpt = HptManager::new(m0.hpt()).unwrap();
    let ptex = hpt
        .insert(&PageMapping::new(
            page(0x3000),
            PhysAddr::new(0x7000),
            Pp::RW_RW,
        ))
        .unwrap()
        .ptex;
    (m0, m1, hpt, ptex)
}

/// Both processors translate page 0x3000 for `access` with `want`.
fn both_translate(m0: &Machine, m1: &Machine, access: Access, want: Result<PhysAddr, Interrupt>) {
    for m in [m0, m1] {
        assert_eq!(
            m.translate(ea(0x3000), access, S),
            want,
            "CPU {}",
            m.cpu_index()
        );
    }
}

#[test]
fn processors_are_counted_and_refused_beyond_the_limit() {
    let m = Machine::with_cpus(SimConfig::default(), 3).unwrap();
    assert_eq!(m.cpu_count(), 3);
    assert_eq!(m.cpu_index(), 0);
    assert_eq!(m.cpu(2).map(|c| c.cpu_index()), Some(2));
    assert!(m.cpu(3).is_none());
    assert_eq!(m.cpu(1).unwrap().slb().cpu_index(), 1);
    assert!(matches!(
        Machine::with_cpus(SimConfig::default(), 0),
        Err(SimError::BadConfig)
    ));
    assert!(matches!(
        Machine::with_cpus(SimConfig::default(), MAX_CPUS + 1),
        Err(SimError::BadConfig)
    ));
    assert_eq!(Machine::new(SimConfig::default()).unwrap().cpu_count(), 1);
}

#[test]
fn each_processor_has_its_own_slb() {
    let m0 = Machine::with_cpus(SimConfig::default(), 2).unwrap();
    let m1 = m0.cpu(1).unwrap();
    let e = SlbEntry::new(
        Esid::new(1),
        Vsid::new(VSID),
        SegmentSize::M256,
        PageSize::K4,
        SlbFlags::KP,
    )
    .unwrap();
    m0.slb().load(0, e).unwrap();
    assert_eq!(m0.slb().valid_entries(), 1);
    assert_eq!(m1.slb().valid_entries(), 0);
    // CPU 0 reaches the page table; CPU 1 takes a segment interrupt.
    assert_eq!(
        m0.translate(ea(0x3000), Access::Load, S),
        Err(dsi(0x3000, 0x4000_0000))
    );
    assert_eq!(
        m1.translate(ea(0x3000), Access::Load, S),
        Err(Interrupt::DataSegment { ea: ea(0x3000) })
    );
    // A page entered once serves both once both SLBs hold the segment.
    HptManager::new(m0.hpt())
        .unwrap()
        .insert(&PageMapping::new(
            page(0x3000),
            PhysAddr::new(0x7000),
            Pp::RW_RW,
        ))
        .unwrap();
    m1.slb().load(5, e).unwrap();
    assert_eq!(
        m0.translate(ea(0x3008), Access::Load, S),
        Ok(PhysAddr::new(0x7008))
    );
    assert_eq!(
        m1.translate(ea(0x3010), Access::Load, S),
        Ok(PhysAddr::new(0x7010))
    );
    assert_eq!(m1.slb().read(5).unwrap(), e.with_index(5).unwrap());
    assert_eq!(m0.slb().read(5).unwrap(), SlbEntry::INVALID);
}

#[test]
fn an_hpte_removal_drops_the_translation_on_every_processor() {
    let (m0, m1, _hpt, ptex) = two_cpus();
    // Both TLBs hold the translation.
    both_translate(&m0, &m1, Access::Load, Ok(PhysAddr::new(0x7000)));
    let before = m0.stats().tlb_hits;
    both_translate(&m0, &m1, Access::Load, Ok(PhysAddr::new(0x7000)));
    assert_eq!(m0.stats().tlb_hits, before + 2);
    m0.hpt().remove(ptex, RemoveCondition::Absolute).unwrap();
    both_translate(&m0, &m1, Access::Load, Err(dsi(0x3000, 0x4000_0000)));
}

#[test]
fn an_hpte_protect_reaches_every_processor() {
    let (m0, m1, _hpt, ptex) = two_cpus();
    both_translate(&m0, &m1, Access::Store, Ok(PhysAddr::new(0x7000)));
    let avpn = page(0x3000).avpn_word();
    m0.hpt().protect(ptex, avpn, Pp::RO_RO, false).unwrap();
    both_translate(&m0, &m1, Access::Store, Err(dsi(0x3000, 0x0a00_0000)));
}

#[test]
fn slbie_and_slbia_act_on_the_executing_processor_only() {
    let (m0, m1, _hpt, _) = two_cpus();
    both_translate(&m0, &m1, Access::Load, Ok(PhysAddr::new(0x7000)));
    m0.slb().invalidate(ea(0), SegmentSize::M256);
    assert_eq!(
        m0.translate(ea(0x3000), Access::Load, S),
        Err(Interrupt::DataSegment { ea: ea(0x3000) })
    );
    assert_eq!(
        m1.translate(ea(0x3000), Access::Load, S),
        Ok(PhysAddr::new(0x7000))
    );
    m1.slb().invalidate_non_bolted(0);
    assert_eq!(m1.slb().valid_entries(), 0);
    assert_eq!(
        m1.translate(ea(0x3000), Access::Load, S),
        Err(Interrupt::DataSegment { ea: ea(0x3000) })
    );
}
