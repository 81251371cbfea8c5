//! The PAPR HPT backend against QEMU's hypervisor: H_ENTER (first free
//! slot and H_EXACT), H_READ, H_REMOVE with its conditions, H_PROTECT,
//! H_BULK_REMOVE, the error codes, R/C through H_READ, and the VMM's HPT
//! manager on top (primary → secondary → evict, never a bolted entry).
//!
//! Test entries use VSIDs in [2^36, 2^37): above the VMM's (< 2^35) and
//! below the linear map's (2^37), in PTEG pairs found empty, and are
//! removed before each test ends.

use alloc::vec::Vec;

use arch_ppc64::addr::{EffectiveAddress, Esid, PhysAddr, PtegIndex, Ptex, Vsid};
use arch_ppc64::instructions::slb;
use arch_ppc64::structures::hpte::{self, Hpte, Pp, Wimg};
use arch_ppc64::structures::slb::{SlbEntry, SlbFlags};
use arch_ppc64::structures::{PageSize, SegmentSize};
use vmm::hpt::{HptManager, InsertError, PageMapping, VirtualPage};
use vmm::platform::{HptBackend, HptError, RefChange, RemoveCondition};

use crate::bootinfo::real_to_virt;
use crate::mm::PaprHpt;

const TEST_VSID_BASE: u64 = 1 << 36;

fn hpt() -> PaprHpt {
    let shift = crate::bootinfo::get().cpu.pft_size.expect("ibm,pft-size").1;
    PaprHpt::new(shift).expect("HPT size")
}

fn group_empty(h: &PaprHpt, g: u64) -> bool {
    let p = PtegIndex::new(g);
    (0..2).all(|q| {
        h.read4(p.ptex(q * 4))
            .unwrap()
            .iter()
            .all(|e| !e.is_valid())
    })
}

/// A group whose primary and secondary (`!g`) PTEGs are both empty:
/// first a pair no H_ENTER ever named (known empty without an hcall, which
/// spares reading the linear map's groups: thousands with 64K pages), else
/// any pair that reads empty.
fn empty_pair(h: &PaprHpt, from: u64) -> u64 {
    use crate::mm::papr::never_entered;
    let mask = h.pteg_count() - 1;
    (from..=mask)
        .find(|&g| never_entered(g) && never_entered(!g & mask))
        .or_else(|| (from..=mask).find(|&g| group_empty(h, g) && group_empty(h, !g & mask)))
        .expect("an empty PTEG pair")
}

/// The `k`-th test VSID whose page 0 hashes (primary) to group `g`.
fn vsid_for_group(h: &PaprHpt, g: u64, k: u64) -> Vsid {
    Vsid::new(TEST_VSID_BASE + g + k * h.pteg_count())
}

/// Entry for page 0 of segment `vsid` at frame `pa`, 4K, PP 00.
fn entry(vsid: Vsid, pa: u64) -> Hpte {
    Hpte::mapping(
        vsid,
        EffectiveAddress::new(0),
        SegmentSize::M256,
        PageSize::K4,
        PhysAddr::new(pa),
        Pp::RW_NONE,
    )
    .expect("aligned")
}

fn frame() -> u64 {
    crate::frame::allocate().expect("frame").start_address()
}

fn free(pa: u64) {
    crate::frame::deallocate(crate::frame::Frame::from_start_address(pa).unwrap()).unwrap();
}

kernel_test! {
    fn papr_insert_read_remove_round_trip() {
        super::pseries_only("pseries only: the PAPR hcall backend (powernv runs its own table, ktests::powernv)");
        let mut h = hpt();
        let g = empty_pair(&h, 100);
        let pa = frame();
        let e = entry(vsid_for_group(&h, g, 0), pa);
        let ptex = h.insert(PtegIndex::new(g), None, e).expect("H_ENTER");
        assert_eq!(ptex.pteg().as_u64(), g, "first free slot of the group");
        let back = h.read(ptex).unwrap();
        // QEMU's H_ENTER sets software bit 0x40 (its HPTE "dirty" mark
        // for migration); the rest of dword 0 is as entered.
        assert_eq!(back.v & !0x40, e.v, "H_READ gives back dword 0");
        assert_eq!(back.r & !(hpte::r::R | hpte::r::C), e.r & !(hpte::r::R | hpte::r::C));
        // Wrong AVPN: refused, entry stays.
        assert_eq!(h.remove(ptex, RemoveCondition::Avpn(e.avpn_word() ^ 0x80)), Err(HptError::NotFound));
        assert!(h.read(ptex).unwrap().is_valid());
        // ANDCOND on a bit the entry has: refused.
        assert_eq!(h.remove(ptex, RemoveCondition::AndCond(hpte::v::V)), Err(HptError::NotFound));
        let old = h.remove(ptex, RemoveCondition::Avpn(e.avpn_word())).expect("H_REMOVE");
        assert_eq!(old.v & !0x40, e.v, "H_REMOVE returns the old entry");
        assert!(!h.read(ptex).unwrap().is_valid(), "gone");
        assert_eq!(h.remove(ptex, RemoveCondition::Absolute), Err(HptError::NotFound), "already gone");
        free(pa);
    }

    fn papr_exact_slot_full_pteg_and_parameter_errors() {
        super::pseries_only("pseries only: the PAPR hcall backend (powernv runs its own table, ktests::powernv)");
        let mut h = hpt();
        let g = empty_pair(&h, 200);
        let pa = frame();
        let group = PtegIndex::new(g);
        let mut placed = Vec::new();
        // Fill slots 7 down to 0 exactly.
        for slot in (0..8u8).rev() {
            let e = entry(vsid_for_group(&h, g, u64::from(slot)), pa);
            let p = h.insert(group, Some(slot), e).expect("H_ENTER H_EXACT");
            assert_eq!(p, group.ptex(slot), "exactly the slot asked for");
            placed.push((p, e));
        }
        let extra = entry(vsid_for_group(&h, g, 9), pa);
        assert_eq!(h.insert(group, None, extra), Err(HptError::PtegFull), "all 8 valid");
        assert_eq!(h.insert(group, Some(3), extra), Err(HptError::PtegFull), "exact slot valid");
        // Bad arguments are refused before or by the hypervisor.
        let count = h.pteg_count();
        assert_eq!(h.insert(PtegIndex::new(count), None, extra), Err(HptError::Parameter));
        assert_eq!(h.insert(group, Some(8), extra), Err(HptError::Parameter));
        assert_eq!(h.read(Ptex::try_from_raw(count * 8).unwrap()), Err(HptError::Parameter));
        // A RAM mapping must be WIMG = M (cacheable, coherent): I|G is refused.
        let secondary = PtegIndex::new(!g & (count - 1));
        let bad = extra.with_wimg(Wimg::I | Wimg::G).with_secondary(true);
        assert_eq!(h.insert(secondary, None, bad), Err(HptError::Parameter), "H_PARAMETER for WIMG != M");
        assert!(group_empty(&h, secondary.as_u64()), "refused inserts leave the table unchanged");
        for (p, e) in placed {
            h.remove(p, RemoveCondition::Avpn(e.avpn_word())).unwrap();
        }
        assert!(group_empty(&h, g));
        free(pa);
    }

    fn papr_read_group_reads_the_eight_entries_of_a_group() {
        super::pseries_only("pseries only: the PAPR hcall backend (powernv runs its own table, ktests::powernv)");
        let mut h = hpt();
        let g = empty_pair(&h, 400);
        let pa = frame();
        let group = PtegIndex::new(g);
        let mut placed = Vec::new();
        for slot in [1u8, 4, 7] {
            let e = entry(vsid_for_group(&h, g, u64::from(slot)), pa);
            placed.push((h.insert(group, Some(slot), e).unwrap(), e));
        }
        let all = h.read_group(group).expect("read_group");
        for slot in 0..8u8 {
            assert_eq!(all[slot as usize], h.read(group.ptex(slot)).unwrap(), "slot {slot}");
            assert_eq!(all[slot as usize].is_valid(), [1, 4, 7].contains(&slot), "slot {slot}");
        }
        assert_eq!(h.read_group(PtegIndex::new(h.pteg_count())), Err(HptError::Parameter));
        for (p, e) in placed {
            h.remove(p, RemoveCondition::Avpn(e.avpn_word())).unwrap();
        }
        free(pa);
    }

    fn papr_protect_changes_pp_and_keeps_the_rest() {
        super::pseries_only("pseries only: the PAPR hcall backend (powernv runs its own table, ktests::powernv)");
        let mut h = hpt();
        let g = empty_pair(&h, 300);
        let pa = frame();
        let e = entry(vsid_for_group(&h, g, 0), pa).with_changed(true);
        let ptex = h.insert(PtegIndex::new(g), None, e).unwrap();
        assert_eq!(h.protect(ptex, e.avpn_word() ^ 0x80, Pp::RO_RO, true), Err(HptError::NotFound), "wrong AVPN");
        assert_eq!(h.read(ptex).unwrap().pp(), Pp::RW_NONE, "unchanged");
        h.protect(ptex, e.avpn_word(), Pp::RO_RO, true).expect("H_PROTECT");
        let p = h.read(ptex).unwrap();
        assert_eq!(p.pp(), Pp::RO_RO);
        assert!(p.no_execute());
        assert_eq!(p.real_address(), e.real_address(), "RPN kept");
        assert!(p.changed() && p.referenced(), "R and C kept");
        h.remove(ptex, RemoveCondition::Absolute).unwrap();
        assert_eq!(h.protect(ptex, e.avpn_word(), Pp::RW_RW, false), Err(HptError::NotFound), "invalid entry");
        free(pa);
    }

    fn papr_bulk_remove_reports_each_entry() {
        super::pseries_only("pseries only: the PAPR hcall backend (powernv runs its own table, ktests::powernv)");
        let mut h = hpt();
        let g = empty_pair(&h, 400);
        let pa = frame();
        let group = PtegIndex::new(g);
        let es: Vec<Hpte> = (0..3).map(|k| entry(vsid_for_group(&h, g, k), pa)).collect();
        let ps: Vec<Ptex> = es.iter().map(|e| h.insert(group, None, *e).unwrap()).collect();
        let res = h
            .remove_bulk(&[
                (ps[0], RemoveCondition::Avpn(es[0].avpn_word())),
                (ps[1], RemoveCondition::Avpn(es[0].avpn_word())),
                (ps[2], RemoveCondition::Absolute),
                (group.ptex(7), RemoveCondition::Absolute),
            ])
            .expect("H_BULK_REMOVE");
        assert_eq!(res[0], Some(Ok((true, false))), "removed, R from the insert");
        assert_eq!(res[1], Some(Err(HptError::NotFound)), "AVPN mismatch");
        assert_eq!(res[2], Some(Ok((true, false))));
        assert_eq!(res[3], Some(Err(HptError::NotFound)), "empty slot");
        assert!(!h.read(ps[0]).unwrap().is_valid());
        assert!(h.read(ps[1]).unwrap().is_valid(), "the refused one stays");
        assert!(!h.read(ps[2]).unwrap().is_valid());
        h.remove(ps[1], RemoveCondition::Absolute).unwrap();
        assert_eq!(h.remove_bulk(&[(ps[0], RemoveCondition::Absolute); 5]), Err(HptError::Parameter));
        free(pa);
    }

    fn papr_bulk_remove_stops_at_an_invalid_index_and_leaves_the_rest() {
        super::pseries_only("pseries only: the PAPR hcall backend (powernv runs its own table, ktests::powernv)");
        // QEMU answers the first request, refuses the second (PTE index
        // outside the table: PARM, status H_PARAMETER) and never looks at
        // the last two: they still read REQUEST and must not be taken for
        // removed. remove_batch then removes only those, one by one.
        let mut h = hpt();
        let g = empty_pair(&h, 450);
        let pa = frame();
        let group = PtegIndex::new(g);
        let es: Vec<Hpte> = (0..3).map(|k| entry(vsid_for_group(&h, g, k), pa)).collect();
        let ps: Vec<Ptex> = es.iter().map(|e| h.insert(group, None, *e).unwrap()).collect();
        let outside = Ptex::try_from_raw(h.pteg_count() * 8).unwrap();
        let reqs = [
            (ps[0], RemoveCondition::Absolute),
            (outside, RemoveCondition::Absolute),
            (ps[1], RemoveCondition::Absolute),
            (ps[2], RemoveCondition::Absolute),
        ];
        let res = h.remove_bulk(&reqs).expect("per-request outcomes");
        assert_eq!(res[0], Some(Ok((true, false))));
        assert_eq!(res[1], Some(Err(HptError::Parameter)));
        assert_eq!(res[2], None, "not processed");
        assert_eq!(res[3], None, "not processed");
        assert!(!h.read(ps[0]).unwrap().is_valid());
        assert!(h.read(ps[1]).unwrap().is_valid() && h.read(ps[2]).unwrap().is_valid());
        // Again through remove_batch: ps[1] and ps[2] now removed.
        let e0 = h.insert(group, None, es[0]).unwrap();
        let batch = [(e0, RemoveCondition::Absolute), reqs[1], reqs[2], reqs[3]];
        let res = h.remove_batch(&batch);
        let removed = Ok(RefChange { referenced: true, changed: false });
        assert_eq!(res, [removed, Err(HptError::Parameter), removed, removed]);
        assert!(group_empty(&h, g));
        free(pa);
    }

    fn papr_reference_and_change_bits_come_from_h_read() {
        super::pseries_only("pseries only: the PAPR hcall backend (powernv runs its own table, ktests::powernv)");
        let mut h = hpt();
        let g = empty_pair(&h, 500);
        let pa = frame();
        let vsid = vsid_for_group(&h, g, 0);
        let e = entry(vsid, pa).with_referenced(false).with_changed(false);
        let ptex = h.insert(PtegIndex::new(g), None, e).unwrap();
        let before = h.read(ptex).unwrap();
        assert!(!before.referenced() && !before.changed(), "fresh entry: R = C = 0");
        // Map segment 0x0000_0004_5000_0000 (a user-half ESID no process
        // owns now) to the test VSID in the last SLB slot, load, store.
        let ea = 0x0000_0004_5000_0000u64;
        let idx = mm_slot();
        let s = SlbEntry::new(Esid::of(EffectiveAddress::new(ea)), vsid, SegmentSize::M256, PageSize::K4, SlbFlags::empty())
            .and_then(|s| s.with_index(idx))
            .unwrap();
        // SAFETY: a stack-free sequence: the slot's old entry (a VMM
        // on-demand one, reloaded at its next miss) is invalidated, the test
        // segment loaded, one load (and later one store) done, then removed.
        // The frame at `pa` is ours.
        unsafe {
            let old = slb::read_entry(idx);
            if old.is_valid() {
                slb::invalidate_entry(old);
            }
            slb::write_entry(s);
            core::arch::asm!("isync");
            let _ = (ea as *const u64).read_volatile();
        }
        let after_load = h.read(ptex).unwrap();
        // SAFETY: as above.
        unsafe {
            (ea as *mut u64).write_volatile(0xfeed);
            slb::invalidate_entry(s);
        }
        let after_store = h.read(ptex).unwrap();
        // SAFETY: our frame, through the linear map.
        let v = unsafe { (real_to_virt(pa) as *const u64).read_volatile() };
        let old = h.remove(ptex, RemoveCondition::Absolute).unwrap();
        free(pa);
        assert!(after_load.referenced() && !after_load.changed(), "load sets R only: {after_load:?}");
        assert!(after_store.referenced() && after_store.changed(), "store sets C: {after_store:?}");
        assert!(old.changed(), "H_REMOVE returns the final R/C");
        assert_eq!(v, 0xfeed, "the store reached the frame");
    }

    fn hpt_manager_fills_primary_then_secondary_then_evicts_never_bolted() {
        super::pseries_only("pseries only: the PAPR hcall backend (powernv runs its own table, ktests::powernv)");
        let mut h = hpt();
        let g = empty_pair(&h, 600);
        let pa = frame();
        let mut mgr = HptManager::new(&mut h).expect("manager");
        let count = mgr.pteg_count();
        let vp = |k: u64| VirtualPage::from_offset(Vsid::new(TEST_VSID_BASE + g + k * count), 0, SegmentSize::M256, PageSize::K4).unwrap();
        let mut placed = Vec::new();
        // 8 bolted entries fill the primary PTEG, 8 plain ones the secondary.
        for k in 0..16u64 {
            let mut m = PageMapping::new(vp(k), PhysAddr::new(pa), Pp::RW_NONE);
            m.bolted = k < 8;
            let ins = mgr.insert(&m).expect("room");
            assert!(ins.evicted.is_none());
            let secondary = ins.ptex.pteg().as_u64() != g;
            assert_eq!(secondary, k >= 8, "entry {k}: primary first, then secondary");
            placed.push((ins.ptex, vp(k)));
        }
        // The 17th evicts a non-bolted (secondary) entry.
        let m = PageMapping::new(vp(16), PhysAddr::new(pa), Pp::RW_NONE);
        let ins = mgr.insert(&m).expect("eviction makes room");
        let ev = ins.evicted.expect("an entry was evicted");
        assert!(!ev.hpte.is_bolted(), "never a bolted one");
        assert_ne!(ev.ptex.pteg().as_u64(), g, "the victim was in the secondary PTEG");
        let victim = ev.page.expect("victim decodes to its page");
        assert!((8..16).any(|k| vp(k) == victim), "victim is one of ours");
        assert_eq!(mgr.stats().evictions, 1);
        for k in 0..8 {
            assert!(mgr.lookup(vp(k)).unwrap().is_some(), "bolted entry {k} still there");
        }
        // All bolted: the insert is refused and nothing changes.
        let mut mgr = HptManager::new(&mut h).unwrap();
        for (ptex, p) in &placed[8..] {
            let _ = mgr.remove(*ptex, *p);
        }
        mgr.remove(ins.ptex, vp(16)).unwrap();
        for k in 8..16u64 {
            let mut m = PageMapping::new(vp(100 + k), PhysAddr::new(pa), Pp::RW_NONE);
            m.bolted = true;
            placed.push((mgr.insert(&m).unwrap().ptex, vp(100 + k)));
        }
        let m = PageMapping::new(vp(200), PhysAddr::new(pa), Pp::RW_NONE);
        assert_eq!(mgr.insert(&m), Err(InsertError::Full), "both PTEGs bolted: nothing to evict");
        for (ptex, p) in placed {
            let _ = mgr.remove(ptex, p);
        }
        assert!(group_empty(&h, g) && group_empty(&h, !g & (h.pteg_count() - 1)), "cleaned up");
        free(pa);
    }
}

/// The last hardware SLB slot (a VMM on-demand slot).
fn mm_slot() -> usize {
    crate::mm::layout().slb_size - 1
}

kernel_test! {
    fn papr_reads_of_never_entered_groups_agree_with_the_hypervisor() {
        super::pseries_only("pseries only: the PAPR hcall backend (powernv runs its own table, ktests::powernv)");
        use crate::mm::papr::never_entered;
        let mut h = hpt();
        let count = h.pteg_count();
        let from_hypervisor = |h: &PaprHpt, g: u64| -> [Hpte; 8] {
            let lo = h.read4(PtegIndex::new(g).ptex(0)).unwrap();
            let hi = h.read4(PtegIndex::new(g).ptex(4)).unwrap();
            core::array::from_fn(|i| if i < 4 { lo[i] } else { hi[i - 4] })
        };
        // A spread of groups across the table, and the one holding the
        // linear map's page of this code.
        let map = crate::mm::layout().linear.expect("linear map");
        let text = crate::bootinfo::KERNEL_VIRT_BASE + 0x40_0000;
        let mut groups: Vec<u64> = (0..count).step_by((count / 512).max(1) as usize).collect();
        groups.push(map.hash(text) & (count - 1));
        let (mut skipped, mut asked) = (0, 0);
        for &g in &groups {
            let want = from_hypervisor(&h, g);
            assert_eq!(h.read_group(PtegIndex::new(g)).unwrap(), want, "group {g:#x}");
            assert_eq!(h.read(PtegIndex::new(g).ptex(5)).unwrap(), want[5], "group {g:#x} slot 5");
            if never_entered(g) {
                assert!(want.iter().all(|e| !e.is_valid()), "group {g:#x} was never entered yet holds {want:x?}");
                skipped += 1;
            } else {
                asked += 1;
            }
        }
        assert!(!never_entered(map.hash(text) & (count - 1)), "the linear map's H_ENTER marked its group");
        assert!(skipped > 0 && asked > 0, "both paths ran: {skipped} answered locally, {asked} asked");
        // An H_ENTER into a never-entered group marks it: the entry is
        // visible to read_group and read at once, and after H_REMOVE the
        // reads still agree with the hypervisor.
        let g = (0..count).find(|&g| never_entered(g) && never_entered(!g & (count - 1))).expect("a never-entered pair");
        let pa = frame();
        let e = entry(vsid_for_group(&h, g, 0), pa);
        let ptex = h.insert(PtegIndex::new(g), None, e).unwrap();
        assert!(!never_entered(g));
        assert!(h.read_group(PtegIndex::new(g)).unwrap()[ptex.slot() as usize].matches(e.v));
        assert!(h.read(ptex).unwrap().matches(e.v));
        h.remove(ptex, RemoveCondition::Absolute).unwrap();
        assert_eq!(h.read_group(PtegIndex::new(g)).unwrap(), from_hypervisor(&h, g));
        assert!(group_empty(&h, g));
        free(pa);
        // Out-of-range groups are still refused, tracked or not.
        assert_eq!(h.read_group(PtegIndex::new(count)), Err(HptError::Parameter));
    }
}

/// A word at a known real address below 16M (in the kernel image) that a
/// 16M page at real 0 shows.
static SIXTEEN_MEG_PROBE: u64 = 0x16_0000_0000_dead;

kernel_test! {
    fn papr_h_enter_maps_a_16m_page_exactly_when_the_machine_offers_it() {
        super::pseries_only("pseries only: the PAPR hcall backend (powernv runs its own table, ktests::powernv)");
        let offered = crate::mm::linear::offers_16m(crate::bootinfo::get().segment_page_sizes());
        let mut h = hpt();
        let g = empty_pair(&h, 800);
        // A 256 MB segment (the linear map has the 1 TB kind) with 16M
        // base pages: page 0 maps real 0..16M read-only for the kernel.
        let vsid = vsid_for_group(&h, g, 0);
        let ea = 0x0000_0004_6000_0000u64;
        let e = Hpte::mapping(vsid, EffectiveAddress::new(ea), SegmentSize::M256, PageSize::M16, PhysAddr::new(0), Pp::RO_NONE)
            .expect("16M-aligned")
            .with_referenced(false);
        assert_eq!(vmm::hpt::hash(vsid, 0, SegmentSize::M256, PageSize::M16) & (h.pteg_count() - 1), g);
        if !offered {
            assert_eq!(h.insert(PtegIndex::new(g), None, e), Err(HptError::Parameter), "no 16M pages on this machine");
            assert!(group_empty(&h, g), "the refusal left the table as it was");
            return;
        }
        let ptex = h.insert(PtegIndex::new(g), None, e).expect("H_ENTER of a 16M page");
        let back = h.read(ptex).unwrap();
        assert_eq!(back.page_size(), Some(PageSize::M16));
        assert_eq!(back.avpn_word(), e.avpn_word());
        assert!(!back.referenced(), "R clear until the first access");
        let probe = &raw const SIXTEEN_MEG_PROBE;
        let real = crate::bootinfo::virt_to_real(probe as u64);
        assert!(real < 16 << 20, "the kernel image is in the first 16M");
        let idx = mm_slot();
        let s = SlbEntry::new(Esid::of(EffectiveAddress::new(ea)), vsid, SegmentSize::M256, PageSize::M16, SlbFlags::empty())
            .and_then(|s| s.with_index(idx))
            .unwrap();
        let through_alias;
        // SAFETY: as in papr_reference_and_change_bits_come_from_h_read:
        // the slot's old entry (a VMM on-demand one, reloaded at its next
        // miss) is invalidated, the test segment loaded for one load of a
        // read-only mapping, then removed.
        unsafe {
            let old = slb::read_entry(idx);
            if old.is_valid() {
                slb::invalidate_entry(old);
            }
            slb::write_entry(s);
            core::arch::asm!("isync");
            through_alias = ((ea + real) as *const u64).read_volatile();
            slb::invalidate_entry(s);
        }
        let after = h.read(ptex).unwrap();
        h.remove(ptex, RemoveCondition::Avpn(e.avpn_word())).expect("H_REMOVE with the 16M AVPN");
        assert_eq!(through_alias, SIXTEEN_MEG_PROBE, "the 16M page translates to real 0 + offset");
        assert!(after.referenced(), "R after the load");
        assert!(group_empty(&h, g), "cleaned up");
    }
}

kernel_test! {
    fn remove_batch_uses_bulk_remove_in_chunks_of_four() {
        super::pseries_only("pseries only: the PAPR hcall backend (powernv runs its own table, ktests::powernv)");
        let mut h = hpt();
        let g = empty_pair(&h, 700);
        let pa = frame();
        let group = PtegIndex::new(g);
        let es: Vec<Hpte> = (0..6).map(|k| entry(vsid_for_group(&h, g, k), pa)).collect();
        let ps: Vec<Ptex> = es.iter().map(|e| h.insert(group, None, *e).unwrap()).collect();
        let count = h.pteg_count();
        let mut reqs: Vec<(Ptex, RemoveCondition)> = ps
            .iter()
            .zip(&es)
            .map(|(&p, e)| (p, RemoveCondition::Avpn(e.avpn_word())))
            .collect();
        reqs[2].1 = RemoveCondition::Avpn(es[3].avpn_word()); // mismatch: stays
        // Outside the table: refused alone, the rest of its chunk still runs.
        reqs.push((Ptex::try_from_raw(count * 8).unwrap(), RemoveCondition::Absolute));
        let res = h.remove_batch(&reqs);
        assert_eq!(res.len(), 7);
        let removed = Ok(RefChange { referenced: true, changed: false });
        assert_eq!(res[0], removed);
        assert_eq!(res[2], Err(HptError::NotFound));
        for i in [1, 3, 4, 5] {
            assert_eq!(res[i], removed, "request {i}");
        }
        assert_eq!(res[6], Err(HptError::Parameter), "PTE index beyond the table");
        assert!(h.read(ps[2]).unwrap().is_valid(), "the mismatched one stays");
        h.remove(ps[2], RemoveCondition::Absolute).unwrap();
        assert!(group_empty(&h, g));
        free(pa);
    }
}

kernel_test! {
    fn known_empty_runs_are_exactly_the_never_entered_groups() {
        super::pseries_only("pseries only: the PAPR hcall backend (powernv runs its own table, ktests::powernv)");
        // check_invariants skips what known_empty_groups reports: a run
        // must hold only never-entered groups and stop at the first
        // entered one (or the end of the table), and an entered group
        // starts no run.
        use crate::mm::papr::never_entered;
        let h = hpt();
        let count = h.pteg_count();
        let (mut runs, mut entered) = (0u64, 0u64);
        let mut g = 0;
        while g < count {
            let run = h.known_empty_groups(PtegIndex::new(g));
            if run == 0 {
                assert!(!never_entered(g), "group {g:#x} was never entered but starts no run");
                entered += 1;
                g += 1;
                continue;
            }
            assert!(g + run <= count, "run of {run} from {g:#x} passes the end {count:#x}");
            // The ends of the run and a spread inside it.
            for i in [0, run / 3, run / 2, run - 1] {
                assert!(never_entered(g + i), "group {:#x} in a run was entered", g + i);
            }
            if g + run < count {
                assert!(!never_entered(g + run), "run from {g:#x} stops short of the next entered group");
            }
            runs += 1;
            g += run;
        }
        assert!(runs > 0 && entered > 0, "{runs} runs, {entered} entered groups");
    }
}
