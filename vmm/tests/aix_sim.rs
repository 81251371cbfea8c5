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
    vmm.map(SpaceRef::Process(id), Esid::new(esid), data, opts)
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
    vmm.map(SpaceRef::Process(id), Esid::new(0x20), data, opts)
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
