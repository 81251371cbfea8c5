//! The AIX services suite on the real VMM ([`vmm::vm::Vmm`] through
//! [`vmm::aix::CoreVm`]) with loads and stores run by the emulated MMU
//! ([`vmm::sim::Machine`]) in problem and supervisor state.
//!
//! The snapshot a refused call is checked against includes the segment
//! table, every address space's mappings, the valid HPTEs, the free frames
//! and the SIDs in use; every snapshot also checks the core's invariants
//! (HPT, SLB and tables agree).

mod aix_common;

use aix_common::sim::SimHarness;
use vmm::platform::Environment;

aix_suite!(SimHarness);

/// On the real core a windowed mapping needs a SID for its view, so
/// `vm_guatt` can run out of SIDs half-way through a two-segment region;
/// the first view is taken back.
#[test]
fn guatt_enomem_when_view_sids_run_out() {
    use aix_common::*;
    use vmm::aix::*;
    let mut h: SimHarness = setup();
    let k = h.aix().vm_galloc(V_WORKING, (2 * SEGSIZE) as i64).unwrap();
    assert!(h.limit_sids(1));
    let e = refused(&mut h, |a| {
        a.vm_guatt(k + SEGSIZE - K, 2 * K as i64, VM_PRIV, VU_ANYWHERE)
    });
    assert_eq!(e, VmGuattError::NoMemory(Shortage::Sids));
    assert_eq!(e.errno(), Errno::NoMem);
    // One segment still fits.
    h.aix().vm_guatt(k, K as i64, VM_PRIV, VU_ANYWHERE).unwrap();
}

/// A failed `as_seth64` over a segment the process owns (mapped by the
/// kernel with `owned`, as its data would be) changes nothing on the real
/// core: the segment is not deleted and its data stays reachable.
#[test]
fn seth64_failure_keeps_an_owned_segment() {
    use aix_common::*;
    use arch_ppc64::addr::Esid;
    use arch_ppc64::structures::hpte::Pp;
    use vmm::adspace::SegKey;
    use vmm::aix::*;
    use vmm::segment::PageProt;
    use vmm::sid::SidKind;
    use vmm::vm::{MapOptions, SpaceRef};
    let mut h: SimHarness = setup();
    let vmid = h.aix().vms_create(V_WORKING, K as i64).unwrap();
    let hnd = vm_handle(vmid, VM_PRIV).unwrap().raw();
    let id = h.aix().vm().space_id(Space::Process(P1)).unwrap();
    let vmm = h.aix().vm_mut().vmm_mut();
    let prot = PageProt {
        pp: Pp::RW_RW,
        no_exec: false,
    };
    let data = vmm.create_segment(SidKind::User, SEGSIZE, prot).unwrap();
    let esid = 0x20u64;
    let mut opts = MapOptions::new(SegKey::KERNEL);
    opts.owned = true;
    vmm.map(SpaceRef::User(id), Esid::new(esid), data, opts)
        .unwrap();
    let ea = esid << SEGSHIFT;
    h.store(ea + 5, USR, 0x77).unwrap();
    assert!(h.fail_map_after(0));
    let e = refused(&mut h, |a| a.as_seth64(ea, hnd));
    assert_eq!(e, AsSeth64Error::NoMemory(Shortage::Metadata));
    assert_eq!(h.load(ea + 5, USR), Ok(0x77));
    assert!(h.aix_ref().vm().vmm().segments().get(data).is_ok());
    // Without the failure it replaces (and releases) the owned segment.
    h.aix().as_seth64(ea, hnd).unwrap();
    assert_eq!(h.load(ea + 5, USR), Ok(0));
    assert!(h.aix_ref().vm().vmm().segments().get(data).is_err());
}

/// `as_seth64` of a process's own data segment (mapped by the kernel with
/// `owned`) at its own address, with the handle `as_getsrval64` gave, keeps
/// the segment owned: the exit deletes it with its frames and HPTEs.
#[test]
fn seth64_of_an_owned_segment_at_its_own_address_keeps_it_owned() {
    use aix_common::*;
    use arch_ppc64::addr::Esid;
    use vmm::adspace::SegKey;
    use vmm::aix::*;
    use vmm::segment::PageProt;
    use vmm::sid::SidKind;
    use vmm::vm::{MapOptions, SpaceRef};
    let mut h: SimHarness = setup();
    let before = h.core_snapshot();
    let id = h.aix().vm().space_id(Space::Process(P1)).unwrap();
    let vmm = h.aix().vm_mut().vmm_mut();
    let data = vmm
        .create_segment(SidKind::User, SEGSIZE, PageProt::USER_RW)
        .unwrap();
    let mut opts = MapOptions::new(SegKey::PRIV);
    opts.owned = true;
    vmm.map(SpaceRef::User(id), Esid::new(0x20), data, opts)
        .unwrap();
    let ea = 0x20u64 << SEGSHIFT;
    h.store(ea + 9, USR, 0x42).unwrap();
    let hnd = h.aix().as_getsrval64(ea).unwrap();
    h.aix().as_seth64(ea, hnd).unwrap();
    assert_eq!(h.load(ea + 9, USR), Ok(0x42), "the same segment, re-set");
    h.set_env(Environment::KernelProcess);
    h.aix().exit(P1).unwrap();
    h.aix().create_process(P1, AddressModel::Bits64).unwrap();
    assert_eq!(
        h.core_snapshot(),
        before,
        "segment, frames, HPTEs and SIDs all released at exit"
    );
}

/// A region covering every page of its allocation's segment maps the
/// segment itself: no SID and no segment record are made for it, and
/// `vm_gudet` leaves the core as it was. A region covering part of a
/// segment goes through a view (one SID). Two processes attaching the
/// same whole allocation share its translations, each with its own key:
/// the one with `VM_PRIV` writes, the one with `VM_UNPRIV` (no `V_UREAD`)
/// gets nothing, even once the other's stores made the HPTEs; after
/// `vm_gudet` the address faults.
#[test]
fn whole_segments_attach_without_a_view() {
    use aix_common::*;
    use vmm::aix::*;
    let mut h: SimHarness = setup();
    let k = h.aix().vm_galloc(V_WORKING, (4 * K) as i64).unwrap();
    h.store(k + 3 * K + 9, SUP, 0x42).unwrap();
    let (sids, records) = {
        let v = h.aix_ref().vm().vmm();
        (v.sids_in_use(), v.segments().len())
    };
    let u = h
        .aix()
        .vm_guatt(k, (4 * K) as i64, VM_PRIV, VU_ANYWHERE)
        .unwrap();
    {
        let v = h.aix_ref().vm().vmm();
        assert_eq!((v.sids_in_use(), v.segments().len()), (sids, records));
        let m = h
            .aix_ref()
            .vm()
            .mapping(
                Space::Process(P1),
                vmm::arch_ppc64::addr::Esid::new(u >> SEGSHIFT),
            )
            .unwrap();
        assert_eq!(m.window, None, "the segment itself");
    }
    assert_eq!(h.load(u + 3 * K + 9, USR), Ok(0x42));
    h.store(u + 2 * K, USR, 0x17).unwrap();
    assert!(h.load(u + 4 * K, USR).is_err(), "past the segment's pages");

    // Another process, the same memory, the unprivileged key.
    let p2 = vmm::platform::ProcessId(2);
    h.aix().create_process(p2, AddressModel::Bits64).unwrap();
    h.set_env(Environment::Process(p2));
    let u2 = h
        .aix()
        .vm_guatt(k, (4 * K) as i64, VM_UNPRIV, VU_ANYWHERE)
        .unwrap();
    assert_eq!(rw(&mut h, u2 + 2 * K, USR), (false, false));
    assert_eq!(rw(&mut h, u2 + 3 * K + 9, USR), (false, false));
    h.aix()
        .vm_gudet(k, u2, (4 * K) as i64, VU_ANYWHERE)
        .unwrap();
    h.set_env(Environment::Process(P1));
    assert_eq!(h.load(u + 2 * K, USR), Ok(0x17));

    // Part of the segment: a view, with a SID of its own.
    let w = h
        .aix()
        .vm_guatt(k + K, K as i64, VM_PRIV, VU_ANYWHERE)
        .unwrap();
    assert_eq!(h.aix_ref().vm().vmm().sids_in_use(), sids + 1);
    assert!(h.load(w + K, USR).is_err(), "outside the part");
    h.aix().vm_gudet(k + K, w, K as i64, VU_ANYWHERE).unwrap();

    h.aix().vm_gudet(k, u, (4 * K) as i64, VU_ANYWHERE).unwrap();
    assert!(h.load(u + 3 * K + 9, USR).is_err(), "detached");
    let v = h.aix_ref().vm().vmm();
    assert_eq!((v.sids_in_use(), v.segments().len()), (sids, records));
    v.check_invariants().unwrap();
}
