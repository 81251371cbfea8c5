//! The AIX services test suite, written once over a [`Harness`] and run on
//! two cores: the reference model (`aix_model.rs`) and the real VMM on the
//! emulated MMU (`aix_sim.rs`).
//!
//! Every refused call is checked to change nothing: the harness snapshots
//! the services' bookkeeping and the core's observable state (segments,
//! mappings, and on the machine valid HPTEs and free frames) before and
//! after.
#![allow(dead_code)]

pub mod sim;

use core::ffi::c_int;

use vmm::aix::ctypes::{vmhandle_t, vmid_t, vmkey_t};
use vmm::aix::*;
use vmm::arch_ppc64::addr::Esid;
use vmm::platform::{Environment, Privilege, ProcessId};
use vmm::sid::Sid;

pub const P1: ProcessId = ProcessId(1);
pub const P2: ProcessId = ProcessId(2);
pub const K: u64 = 4096;
pub const SUP: Privilege = Privilege::Supervisor;
pub const USR: Privilege = Privilege::Problem;

/// The galloc range base of the default layout, as an address.
pub const GALLOC_BASE: u64 = 0xF100_0000_0000_0000;
/// The shmat area base.
pub const SHMAT_BASE: u64 = 0x0700_0000_0000_0000;

/// A core plus a way to run accesses and take snapshots.
pub trait Harness: Sized {
    /// The core.
    type Vm: AixVm;
    /// Observable state for before/after comparisons.
    type Snapshot: PartialEq + core::fmt::Debug;
    /// A fresh machine with the services over it, if `config` is valid.
    fn try_with_config(config: AixConfig) -> Result<Self, AixConfigError>;
    /// A fresh machine with the services over it.
    fn with_config(config: AixConfig) -> Self {
        Self::try_with_config(config).expect("a valid layout")
    }
    /// The services.
    fn aix(&mut self) -> &mut Aix<Self::Vm>;
    /// The services, shared.
    fn aix_ref(&self) -> &Aix<Self::Vm>;
    /// Sets what is running. `Process(p)` / `KernelProcess` also make that
    /// address space the active one; `Interrupt` keeps the active one.
    fn set_env(&mut self, env: Environment);
    /// Loads a byte at `ea` in the active address space.
    fn load(&mut self, ea: u64, pr: Privilege) -> Result<u8, String>;
    /// Stores a byte at `ea` in the active address space.
    fn store(&mut self, ea: u64, pr: Privilege, v: u8) -> Result<(), String>;
    /// The core's observable state.
    fn core_snapshot(&self) -> Self::Snapshot;
    /// Limits the SIDs the core can still hand out, if it can (for ENOMEM).
    fn limit_sids(&mut self, more: u64) -> bool;
    /// Makes the map call after `n` successful ones fail once, if the core
    /// can (for the roll-back paths).
    fn fail_map_after(&mut self, n: u32) -> bool;
}

/// Everything observable.
#[derive(Debug, PartialEq)]
pub struct Snap<S> {
    books: Bookkeeping,
    core: S,
}

pub fn snap<H: Harness>(h: &H) -> Snap<H::Snapshot> {
    Snap {
        books: h.aix_ref().bookkeeping(),
        core: h.core_snapshot(),
    }
}

/// Asserts `f` returns an error and leaves every table as it was.
#[track_caller]
pub fn refused<H: Harness, T: core::fmt::Debug, E: core::fmt::Debug>(
    h: &mut H,
    f: impl FnOnce(&mut Aix<H::Vm>) -> Result<T, E>,
) -> E {
    let before = snap(h);
    let r = f(h.aix());
    let after = snap(h);
    assert_eq!(before, after, "a refused call changed state");
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e,
    }
}

/// A harness with processes P1 (64-bit) running.
pub fn setup<H: Harness>() -> H {
    setup_with::<H>(AixConfig::default())
}

pub fn setup_with<H: Harness>(config: AixConfig) -> H {
    let mut h = H::with_config(config);
    h.aix().create_process(P1, AddressModel::Bits64).unwrap();
    h.set_env(Environment::Process(P1));
    h
}

/// [`setup`], then a one-page working object (`vms_create`) and its
/// handle with `key`.
pub fn setup_object<H: Harness>(key: vmkey_t) -> (H, vmid_t, vmhandle_t) {
    let mut h = setup::<H>();
    let vmid = h.aix().vms_create(V_WORKING, K as i64).unwrap();
    let hnd = vm_handle(vmid, key).unwrap().raw();
    (h, vmid, hnd)
}

/// Whether `ea` can be read and written (a write stores back what was read).
pub fn rw<H: Harness>(h: &mut H, ea: u64, pr: Privilege) -> (bool, bool) {
    let read = h.load(ea, pr);
    let write = match read {
        Ok(v) => h.store(ea, pr, v).is_ok(),
        Err(_) => h.store(ea, pr, 0x5A).is_ok(),
    };
    (read.is_ok(), write)
}

// ---------------------------------------------------------------------
// vm_galloc
// ---------------------------------------------------------------------

pub fn galloc_rounds_places_and_zero_fills<H: Harness>() {
    let mut h = setup::<H>();
    let a = h.aix().vm_galloc(V_WORKING, 1).unwrap();
    assert_eq!(a, GALLOC_BASE, "first allocation at the galloc base");
    let al = h.aix_ref().allocations().next().unwrap().clone();
    assert_eq!(al.bytes, 4096, "1 byte rounds up to one 4K page");
    // Its own segment: the next allocation starts at the next segment.
    let b = h.aix().vm_galloc(V_WORKING | V_SYSTEM, 4097).unwrap();
    assert_eq!(b, GALLOC_BASE + SEGSIZE);
    let bl = h.aix_ref().allocations().nth(1).unwrap().clone();
    assert_eq!(bl.bytes, 8192);
    // Zero-filled, kernel read-write.
    assert_eq!(h.load(a, SUP), Ok(0));
    assert_eq!(h.load(b + 4096 + 77, SUP), Ok(0));
    h.store(a + 5, SUP, 0x42).unwrap();
    assert_eq!(h.load(a + 5, SUP), Ok(0x42));
    // Beyond the rounded size: faults.
    assert!(h.load(a + 4096, SUP).is_err());
    // Kernel memory faults in problem state, with or without V_UREAD.
    assert!(h.load(a, USR).is_err());
    let c = h.aix().vm_galloc(V_WORKING | V_UREAD, 100).unwrap();
    assert!(
        h.load(c, USR).is_err(),
        "V_UREAD galloc memory is not readable at its kernel address"
    );
    assert_eq!(h.load(c, SUP), Ok(0));
}

pub fn galloc_multi_segment_is_contiguous<H: Harness>() {
    let mut h = setup::<H>();
    let small = h.aix().vm_galloc(V_WORKING, 10).unwrap();
    let big = h
        .aix()
        .vm_galloc(V_WORKING, (SEGSIZE + 3 * K) as i64)
        .unwrap();
    assert_eq!(big, small + SEGSIZE);
    let al = h
        .aix_ref()
        .allocations()
        .find(|a| a.start == big)
        .unwrap()
        .clone();
    assert_eq!(al.sids.len(), 2);
    assert_eq!(al.bytes, SEGSIZE + 3 * K);
    h.store(big + SEGSIZE + 2 * K, SUP, 9).unwrap();
    assert_eq!(h.load(big + SEGSIZE + 2 * K, SUP), Ok(9));
    assert!(h.load(big + SEGSIZE + 3 * K, SUP).is_err());
    // The next allocation lands after both segments.
    let next = h.aix().vm_galloc(V_WORKING, 1).unwrap();
    assert_eq!(next, big + 2 * SEGSIZE);
}

pub fn galloc_refuses_bad_type<H: Harness>() {
    let mut h = setup::<H>();
    let e = refused(&mut h, |a| a.vm_galloc(V_UREAD, 4096));
    assert_eq!(
        e,
        VmGallocError::MissingWorking {
            type_flags: V_UREAD
        }
    );
    assert_eq!(e.errno(), Errno::Inval);
    let e = refused(&mut h, |a| a.vm_galloc(V_WORKING | 0x4, 4096));
    assert_eq!(
        e,
        VmGallocError::UnknownTypeFlags {
            type_flags: V_WORKING | 0x4
        }
    );
    assert_eq!(e.errno(), Errno::Inval);
}

pub fn galloc_refuses_bad_size<H: Harness>() {
    let mut h = setup::<H>();
    for size in [0, -1, i64::MIN] {
        let e = refused(&mut h, |a| a.vm_galloc(V_WORKING, size));
        assert_eq!(e, VmGallocError::BadSize { size });
        assert_eq!(e.errno(), Errno::Inval);
    }
}

/// A positive size that cannot be satisfied is ENOSPC, never EINVAL, also
/// where rounding it up to 4 KB would overflow `vmsize_t`.
pub fn galloc_too_large_is_enospc<H: Harness>() {
    let mut h = setup::<H>();
    let range = AixConfig::default().galloc_segments;
    for size in [
        (range * SEGSIZE + 1) as i64,
        0x7fff_ffff_ffff_efff,
        0x7fff_ffff_ffff_f000,
        0x7fff_ffff_ffff_f001,
        i64::MAX,
    ] {
        let e = refused(&mut h, |a| a.vm_galloc(V_WORKING, size));
        let segments = (size as u64).div_ceil(SEGSIZE);
        assert_eq!(e, VmGallocError::RangeExhausted { segments }, "{size:#x}");
        assert_eq!(e.errno(), Errno::NoSpc);
    }
}

/// The layout is checked when the services are built: empty ranges,
/// ranges that leave the kernel half or wrap past the last ESID, and
/// overlapping ranges are refused; a range that ends exactly at the top of
/// the address space is fine.
pub fn layout_is_validated<H: Harness>() {
    let d = AixConfig::default();
    let top = (1u64 << 36) - 1;
    let bad = [
        (
            AixConfig {
                galloc_segments: 0,
                ..d
            },
            AixConfigError::Empty(LayoutRange::Galloc),
        ),
        (
            AixConfig {
                vm_att_slots: 0,
                ..d
            },
            AixConfigError::Empty(LayoutRange::VmAtt),
        ),
        (
            AixConfig {
                galloc_segments: u64::MAX,
                ..d
            },
            AixConfigError::OutsideKernelHalf {
                range: LayoutRange::Galloc,
                base_esid: d.galloc_base_esid,
                segments: u64::MAX,
            },
        ),
        (
            AixConfig {
                vm_att_slots: u64::MAX,
                ..d
            },
            AixConfigError::OutsideKernelHalf {
                range: LayoutRange::VmAtt,
                base_esid: d.vm_att_base_esid,
                segments: u64::MAX,
            },
        ),
        (
            AixConfig {
                galloc_base_esid: top,
                galloc_segments: 2,
                ..d
            },
            AixConfigError::OutsideKernelHalf {
                range: LayoutRange::Galloc,
                base_esid: top,
                segments: 2,
            },
        ),
        (
            // In the user half, galloc memory would land in the kernel
            // process's segment registers.
            AixConfig {
                galloc_base_esid: 3,
                ..d
            },
            AixConfigError::OutsideKernelHalf {
                range: LayoutRange::Galloc,
                base_esid: 3,
                segments: d.galloc_segments,
            },
        ),
        (
            AixConfig {
                vm_att_base_esid: (1 << 35) - 1,
                vm_att_slots: 2,
                ..d
            },
            AixConfigError::OutsideKernelHalf {
                range: LayoutRange::VmAtt,
                base_esid: (1 << 35) - 1,
                segments: 2,
            },
        ),
        (
            AixConfig {
                vm_att_base_esid: d.galloc_base_esid + 4095,
                ..d
            },
            AixConfigError::Overlap,
        ),
    ];
    for (config, want) in bad {
        assert_eq!(config.validate(), Err(want), "{config:?}");
        assert_eq!(H::try_with_config(config).err(), Some(want), "{config:?}");
    }
    let ok = AixConfig {
        galloc_base_esid: top,
        galloc_segments: 1,
        ..d
    };
    assert_eq!(ok.validate(), Ok(()));
    assert!(H::try_with_config(ok).is_ok());
}

/// A galloc range and a vm_att window in the very last segment of the
/// address space: every service works there and nothing wraps.
pub fn ranges_at_the_top_of_the_address_space<H: Harness>() {
    let top = (1u64 << 36) - 1;
    let mut h = setup_with::<H>(AixConfig {
        galloc_base_esid: top,
        galloc_segments: 1,
        vm_att_base_esid: top - 1,
        vm_att_slots: 1,
    });
    let k = h.aix().vm_galloc(V_WORKING, SEGSIZE as i64).unwrap();
    assert_eq!(k, 0xFFFF_FFFF_F000_0000);
    let e = refused(&mut h, |a| a.vm_galloc(V_WORKING, 1));
    assert_eq!(e, VmGallocError::RangeExhausted { segments: 1 });
    // The last page, and the whole allocation.
    let last = k + (SEGSIZE - K);
    let u = h
        .aix()
        .vm_guatt(last, K as i64, VM_PRIV, VU_ANYWHERE)
        .unwrap();
    h.store(u + K - 1, USR, 0x7E).unwrap();
    assert_eq!(h.load(u64::MAX, SUP), Ok(0x7E));
    let w = h
        .aix()
        .vm_guatt(k, SEGSIZE as i64, VM_PRIV, VU_ANYWHERE)
        .unwrap();
    assert_eq!(h.load(w + (SEGSIZE - 1), USR), Ok(0x7E));
    // Ranges that would wrap past 2^64 are not in the allocation.
    for (kaddr, size) in [(last, K as i64 + 1), (u64::MAX, 2), (k, i64::MAX)] {
        let e = refused(&mut h, |a| a.vm_guatt(kaddr, size, VM_PRIV, VU_ANYWHERE));
        assert_eq!(e, VmGuattError::NotInAllocation { kaddr, size });
        let e = refused(&mut h, |a| a.vm_gudet(kaddr, u, size, VU_ANYWHERE));
        assert_eq!(e, VmGudetError::NotAllocated { kaddr, size });
    }
    h.aix().vm_gudet(last, u, K as i64, VU_ANYWHERE).unwrap();
    h.aix().vm_gudet(k, w, SEGSIZE as i64, VU_ANYWHERE).unwrap();
    // vm_att in the window just below.
    let vmid = h.aix().vms_create(V_WORKING, K as i64).unwrap();
    let hnd = vm_handle(vmid, VM_PRIV).unwrap().raw();
    let v = h.aix().vm_att(hnd, u64::MAX).unwrap();
    assert_eq!(v, ((top - 1) << SEGSHIFT) | 0x0FFF_FFFF);
    h.aix().vm_det(v).unwrap();
    h.aix().vm_gfree(k, SEGSIZE as i64).unwrap();
}

pub fn galloc_enospc_when_range_exhausted<H: Harness>() {
    let mut h = setup_with::<H>(AixConfig {
        galloc_segments: 3,
        ..AixConfig::default()
    });
    let e = refused(&mut h, |a| a.vm_galloc(V_WORKING, (3 * SEGSIZE + 1) as i64));
    assert_eq!(e, VmGallocError::RangeExhausted { segments: 4 });
    assert_eq!(e.errno(), Errno::NoSpc);
    h.aix().vm_galloc(V_WORKING, SEGSIZE as i64).unwrap();
    let b = h.aix().vm_galloc(V_WORKING, 4096).unwrap();
    h.aix().vm_galloc(V_WORKING, 4096).unwrap();
    let e = refused(&mut h, |a| a.vm_galloc(V_WORKING, 1));
    assert_eq!(e.errno(), Errno::NoSpc);
    // Freeing one makes room again, in the hole.
    h.aix().vm_gfree(b, 4096).unwrap();
    assert_eq!(h.aix().vm_galloc(V_WORKING, 1).unwrap(), b);
    // But a two-segment request does not fit the one-segment hole.
    h.aix().vm_gfree(b, 4096).unwrap();
    let e = refused(&mut h, |a| a.vm_galloc(V_WORKING, (SEGSIZE + 1) as i64));
    assert_eq!(e, VmGallocError::RangeExhausted { segments: 2 });
}

pub fn galloc_enomem_when_sids_run_out<H: Harness>() {
    let mut h = setup::<H>();
    if !h.limit_sids(1) {
        return; // this core cannot be limited; covered on the model
    }
    // Two segments needed, one SID left: the first is taken back.
    let e = refused(&mut h, |a| a.vm_galloc(V_WORKING, (SEGSIZE + 1) as i64));
    assert_eq!(e, VmGallocError::NoMemory(Shortage::Sids));
    assert_eq!(e.errno(), Errno::NoMem);
}

pub fn galloc_rolls_back_when_a_map_fails<H: Harness>() {
    let mut h = setup::<H>();
    if !h.fail_map_after(1) {
        return; // covered on the model
    }
    let e = refused(&mut h, |a| a.vm_galloc(V_WORKING, (SEGSIZE + 1) as i64));
    assert_eq!(e, VmGallocError::NoMemory(Shortage::Metadata));
    assert_eq!(e.errno(), Errno::NoMem);
}

pub fn guatt_and_seth64_roll_back_when_a_map_fails<H: Harness>() {
    let mut h = setup::<H>();
    let k = h.aix().vm_galloc(V_WORKING, (2 * SEGSIZE) as i64).unwrap();
    let kaddr = k + SEGSIZE - K;
    let vmid = h.aix().vms_create(V_WORKING, K as i64).unwrap();
    let hnd = vm_handle(vmid, VM_PRIV).unwrap().raw();
    if !h.fail_map_after(1) {
        return; // covered on the model
    }
    let e = refused(&mut h, |a| {
        a.vm_guatt(kaddr, 2 * K as i64, VM_PRIV, VU_ANYWHERE)
    });
    assert_eq!(e, VmGuattError::NoMemory(Shortage::Metadata));
    let u = h
        .aix()
        .vm_guatt(kaddr, 2 * K as i64, VM_PRIV, VU_ANYWHERE)
        .unwrap();
    h.store(u + K, USR, 4).unwrap();
    // as_seth64 over the attachment: the new map fails, both old
    // segments come back.
    assert!(h.fail_map_after(0));
    let e = refused(&mut h, |a| a.as_seth64(u, hnd));
    assert_eq!(e, AsSeth64Error::NoMemory(Shortage::Metadata));
    assert_eq!(h.load(u + K, USR), Ok(4));
}

pub fn galloc_refused_in_interrupt<H: Harness>() {
    let mut h = setup::<H>();
    h.set_env(Environment::Interrupt);
    let e = refused(&mut h, |a| a.vm_galloc(V_WORKING, 4096));
    assert_eq!(e, VmGallocError::WrongEnvironment);
    assert_eq!(e.errno(), Errno::Inval);
}

// ---------------------------------------------------------------------
// vm_gfree
// ---------------------------------------------------------------------

pub fn gfree_frees_and_revokes<H: Harness>() {
    let mut h = setup::<H>();
    let before = snap(&h);
    let k = h.aix().vm_galloc(V_WORKING, 3 * K as i64).unwrap();
    h.store(k, SUP, 1).unwrap();
    let u = h
        .aix()
        .vm_guatt(k, 3 * K as i64, VM_PRIV, VU_ANYWHERE)
        .unwrap();
    assert_eq!(h.load(u, USR), Ok(1));
    // A second process attaches too.
    h.aix().create_process(P2, AddressModel::Bits64).unwrap();
    h.set_env(Environment::Process(P2));
    let u2 = h.aix().vm_guatt(k, K as i64, VM_PRIV, VU_ANYWHERE).unwrap();
    assert_eq!(h.load(u2, USR), Ok(1));
    h.aix().vm_gfree(k, 3 * K as i64 - 100).unwrap();
    assert!(h.load(u2, USR).is_err(), "P2's attachment revoked");
    assert!(h.load(k, SUP).is_err(), "kernel address gone");
    h.set_env(Environment::Process(P1));
    assert!(h.load(u, USR).is_err(), "P1's attachment revoked");
    let e = refused(&mut h, |a| a.vm_gudet(k, u, 3 * K as i64, VU_ANYWHERE));
    assert_eq!(
        e,
        VmGudetError::NotAllocated {
            kaddr: k,
            size: 3 * K as i64
        }
    );
    h.aix().exit(P2).unwrap();
    assert_eq!(snap(&h), before, "everything released");
}

pub fn gfree_refuses_inexact<H: Harness>() {
    let mut h = setup::<H>();
    let k = h.aix().vm_galloc(V_WORKING, 2 * K as i64).unwrap();
    for (addr, size) in [
        (k, K as i64),               // partial
        (k, 3 * K as i64),           // too big
        (k + K, K as i64),           // not the start
        (k, 0),                      // zero
        (k + SEGSIZE, 2 * K as i64), // nothing there
    ] {
        let e = refused(&mut h, |a| a.vm_gfree(addr, size));
        assert_eq!(e, VmGfreeError::NoSuchAllocation { eaddr: addr, size });
        assert_eq!(e.errno(), Errno::Inval);
    }
    h.aix().vm_gfree(k, 2 * K as i64).unwrap();
    let e = refused(&mut h, |a| a.vm_gfree(k, 2 * K as i64));
    assert_eq!(e.errno(), Errno::Inval, "double free refused");
}

pub fn gfree_refused_in_interrupt<H: Harness>() {
    let mut h = setup::<H>();
    let k = h.aix().vm_galloc(V_WORKING, K as i64).unwrap();
    h.set_env(Environment::Interrupt);
    let e = refused(&mut h, |a| a.vm_gfree(k, K as i64));
    assert_eq!(e, VmGfreeError::WrongEnvironment);
}

// ---------------------------------------------------------------------
// vm_guatt / vm_gudet
// ---------------------------------------------------------------------

pub fn guatt_priv_reads_and_writes<H: Harness>() {
    let mut h = setup::<H>();
    let k = h.aix().vm_galloc(V_WORKING, 4 * K as i64).unwrap();
    h.store(k + K + 10, SUP, 0x77).unwrap();
    let u = h
        .aix()
        .vm_guatt(k + K, 2 * K as i64, VM_PRIV, VU_ANYWHERE)
        .unwrap();
    assert_eq!(u, SHMAT_BASE + K, "shmat area, offset in segment kept");
    assert_eq!(h.load(u + 10, USR), Ok(0x77));
    h.store(u + K + 1, USR, 0x66).unwrap();
    assert_eq!(h.load(k + 2 * K + 1, SUP), Ok(0x66), "same memory");
    // Stricter than AIX: pages of the allocation outside the range fault.
    assert!(
        h.load(u - 1, USR).is_err(),
        "page before the attached range"
    );
    assert!(
        h.load(u + 2 * K, USR).is_err(),
        "page after the attached range"
    );
    // Other allocations and kernel memory stay closed.
    assert!(h.load(k, USR).is_err());
    let att = h.aix_ref().attachments(P1).to_vec();
    assert_eq!(att.len(), 1);
    assert_eq!((att[0].kaddr, att[0].uaddr), (k + K, u));
}

pub fn guatt_unpriv_reads_only_with_uread<H: Harness>() {
    let mut h = setup::<H>();
    let ur = h.aix().vm_galloc(V_WORKING | V_UREAD, K as i64).unwrap();
    let no = h.aix().vm_galloc(V_WORKING, K as i64).unwrap();
    h.store(ur, SUP, 5).unwrap();
    h.store(no, SUP, 6).unwrap();
    let u1 = h
        .aix()
        .vm_guatt(ur, K as i64, VM_UNPRIV, VU_ANYWHERE)
        .unwrap();
    let u2 = h
        .aix()
        .vm_guatt(no, K as i64, VM_UNPRIV, VU_ANYWHERE)
        .unwrap();
    assert_ne!(u1 >> SEGSHIFT, u2 >> SEGSHIFT);
    assert_eq!(
        rw(&mut h, u1, USR),
        (true, false),
        "VM_UNPRIV + V_UREAD: read-only"
    );
    assert_eq!(h.load(u1, USR), Ok(5));
    assert_eq!(
        rw(&mut h, u2, USR),
        (false, false),
        "VM_UNPRIV without V_UREAD: nothing"
    );
    // VM_PRIV on the V_UREAD memory: read-write.
    let u3 = h
        .aix()
        .vm_guatt(ur, K as i64, VM_PRIV, VU_ANYWHERE)
        .unwrap();
    assert_eq!(rw(&mut h, u3, USR), (true, true));
}

pub fn guatt_multi_segment_contiguous<H: Harness>() {
    let mut h = setup::<H>();
    let k = h.aix().vm_galloc(V_WORKING, (2 * SEGSIZE) as i64).unwrap();
    let kaddr = k + SEGSIZE - K;
    h.store(kaddr, SUP, 1).unwrap();
    h.store(kaddr + K, SUP, 2).unwrap();
    let u = h
        .aix()
        .vm_guatt(kaddr, 2 * K as i64, VM_PRIV, VU_ANYWHERE)
        .unwrap();
    assert_eq!(u & SEGOFFSET, kaddr & SEGOFFSET);
    assert_eq!(h.load(u, USR), Ok(1));
    assert_eq!(
        h.load(u + K, USR),
        Ok(2),
        "next user segment is the next galloc segment"
    );
    assert!(h.load(u + 2 * K, USR).is_err());
    assert!(h.load(u - K, USR).is_err());
    let att = h.aix_ref().attachments(P1)[0].clone();
    assert_eq!(att.esids.end - att.esids.start, 2);
}

pub fn guatt_refuses_bad_arguments<H: Harness>() {
    let mut h = setup::<H>();
    let k = h.aix().vm_galloc(V_WORKING, 2 * K as i64).unwrap();
    let e = refused(&mut h, |a| a.vm_guatt(k, K as i64, VM_PRIV, 1));
    assert_eq!(e, VmGuattError::BadFlags { flags: 1 });
    let e = refused(&mut h, |a| a.vm_guatt(k, K as i64, 2, VU_ANYWHERE));
    assert_eq!(e, VmGuattError::BadKey { key: 2 });
    let e = refused(&mut h, |a| a.vm_guatt(k, 0, VM_PRIV, VU_ANYWHERE));
    assert_eq!(e, VmGuattError::BadSize { size: 0 });
    let e = refused(&mut h, |a| a.vm_guatt(k, -5, VM_PRIV, VU_ANYWHERE));
    assert_eq!(e, VmGuattError::BadSize { size: -5 });
    for e in [
        refused(&mut h, |a| {
            a.vm_guatt(k + K, 2 * K as i64, VM_PRIV, VU_ANYWHERE)
        }),
        refused(&mut h, |a| a.vm_guatt(k - 1, 2, VM_PRIV, VU_ANYWHERE)),
        refused(&mut h, |a| a.vm_guatt(k + SEGSIZE, 1, VM_PRIV, VU_ANYWHERE)),
        refused(&mut h, |a| {
            a.vm_guatt(u64::MAX - 2, 10, VM_PRIV, VU_ANYWHERE)
        }),
    ] {
        assert!(matches!(e, VmGuattError::NotInAllocation { .. }), "{e:?}");
        assert_eq!(e.errno(), Errno::Inval);
    }
}

pub fn guatt_refused_in_interrupt_and_kproc<H: Harness>() {
    let mut h = setup::<H>();
    let k = h.aix().vm_galloc(V_WORKING, K as i64).unwrap();
    h.set_env(Environment::Interrupt);
    let e = refused(&mut h, |a| a.vm_guatt(k, K as i64, VM_PRIV, VU_ANYWHERE));
    assert_eq!(e, VmGuattError::WrongEnvironment);
    h.set_env(Environment::KernelProcess);
    let e = refused(&mut h, |a| a.vm_guatt(k, K as i64, VM_PRIV, VU_ANYWHERE));
    assert_eq!(e, VmGuattError::NoUserAddressSpace);
    assert_eq!(e.errno(), Errno::Inval);
}

pub fn guatt_32bit_uses_segment_registers<H: Harness>() {
    let mut h = H::with_config(AixConfig::default());
    h.aix().create_process(P2, AddressModel::Bits32).unwrap();
    h.set_env(Environment::Process(P2));
    let k = h.aix().vm_galloc(V_WORKING, K as i64).unwrap();
    let u = h.aix().vm_guatt(k, K as i64, VM_PRIV, VU_ANYWHERE).unwrap();
    assert_eq!(u, 3 << SEGSHIFT, "lowest free register 3");
    h.store(u, USR, 3).unwrap();
    assert_eq!(h.load(k, SUP), Ok(3));
}

pub fn guatt_enomem_when_no_user_segments<H: Harness>() {
    let mut h = H::with_config(AixConfig::default());
    h.aix().create_process(P2, AddressModel::Bits32).unwrap();
    h.set_env(Environment::Process(P2));
    let k = h.aix().vm_galloc(V_WORKING, (2 * SEGSIZE) as i64).unwrap();
    // Registers 3..13 hold at most five two-segment runs (3-4 ... 11-12);
    // 13 and 15 are single.
    for _ in 0..5 {
        h.aix()
            .vm_guatt(k + SEGSIZE - K, 2 * K as i64, VM_PRIV, VU_ANYWHERE)
            .unwrap();
    }
    let e = refused(&mut h, |a| {
        a.vm_guatt(k + SEGSIZE - K, 2 * K as i64, VM_PRIV, VU_ANYWHERE)
    });
    assert_eq!(e, VmGuattError::NoMemory(Shortage::Regions));
    assert_eq!(e.errno(), Errno::NoMem);
    // A one-segment region still fits register 13.
    let u = h.aix().vm_guatt(k, K as i64, VM_PRIV, VU_ANYWHERE).unwrap();
    assert_eq!(u >> SEGSHIFT, 13);
}

pub fn process_hooks_refuse_bad_ids<H: Harness>() {
    let mut h = setup::<H>();
    let e = refused(&mut h, |a| a.create_process(P1, AddressModel::Bits64));
    assert_eq!(e, ProcessError::Exists(P1));
    let e = refused(&mut h, |a| a.fork(P2, ProcessId(9)));
    assert_eq!(e, ProcessError::NoSuchProcess(P2));
    let e = refused(&mut h, |a| a.fork(P1, P1));
    assert_eq!(e, ProcessError::Exists(P1));
    let e = refused(&mut h, |a| a.exit(P2));
    assert_eq!(e, ProcessError::NoSuchProcess(P2));
    // A process the services were never told about is refused, not guessed.
    h.set_env(Environment::Process(ProcessId(42)));
    let e = refused(&mut h, |a| a.as_att64(0, 0));
    assert_eq!(e, AsAtt64Error::NoAddressSpace);
    let e = refused(&mut h, |a| a.getadsp());
    assert_eq!(e, GetadspError::NoAddressSpace);
}

pub fn gudet_detaches<H: Harness>() {
    let mut h = setup::<H>();
    let before = snap(&h);
    let k = h.aix().vm_galloc(V_WORKING, K as i64).unwrap();
    let u = h.aix().vm_guatt(k, K as i64, VM_PRIV, VU_ANYWHERE).unwrap();
    h.store(u, USR, 1).unwrap();
    h.aix().vm_gudet(k, u, K as i64, VU_ANYWHERE).unwrap();
    assert!(h.load(u, USR).is_err(), "after vm_gudet the address faults");
    assert_eq!(h.load(k, SUP), Ok(1), "the memory itself stays");
    h.aix().vm_gfree(k, K as i64).unwrap();
    assert_eq!(snap(&h), before);
}

pub fn gudet_refuses_bad_arguments<H: Harness>() {
    let mut h = setup::<H>();
    let k = h.aix().vm_galloc(V_WORKING, 2 * K as i64).unwrap();
    let u = h.aix().vm_guatt(k, K as i64, VM_PRIV, VU_ANYWHERE).unwrap();
    let e = refused(&mut h, |a| a.vm_gudet(k, u, K as i64, 0));
    assert_eq!(e, VmGudetError::BadFlags { flags: 0 });
    let e = refused(&mut h, |a| {
        a.vm_gudet(k, u + SEGSIZE, K as i64, VU_ANYWHERE)
    });
    assert!(matches!(e, VmGudetError::NoSuchAttachment { .. }));
    let e = refused(&mut h, |a| a.vm_gudet(k, u, 2 * K as i64, VU_ANYWHERE));
    assert!(matches!(e, VmGudetError::NoSuchAttachment { .. }));
    let e = refused(&mut h, |a| {
        a.vm_gudet(k + SEGSIZE, u, K as i64, VU_ANYWHERE)
    });
    assert!(matches!(e, VmGudetError::NotAllocated { .. }));
    // Another process cannot detach P1's attachment.
    h.aix().create_process(P2, AddressModel::Bits64).unwrap();
    h.set_env(Environment::Process(P2));
    let e = refused(&mut h, |a| a.vm_gudet(k, u, K as i64, VU_ANYWHERE));
    assert!(matches!(e, VmGudetError::NoSuchAttachment { .. }));
    h.set_env(Environment::Interrupt);
    let e = refused(&mut h, |a| a.vm_gudet(k, u, K as i64, VU_ANYWHERE));
    assert_eq!(e, VmGudetError::WrongEnvironment);
    for e in [
        VmGudetError::BadFlags { flags: 0 },
        VmGudetError::WrongEnvironment,
    ] {
        assert_eq!(e.errno(), Errno::Inval);
    }
}

// ---------------------------------------------------------------------
// fork and exit
// ---------------------------------------------------------------------

pub fn fork_drops_guatt_keeps_as_att<H: Harness>() {
    let mut h = setup::<H>();
    let k = h.aix().vm_galloc(V_WORKING, K as i64).unwrap();
    let u = h.aix().vm_guatt(k, K as i64, VM_PRIV, VU_ANYWHERE).unwrap();
    h.store(u, USR, 0x11).unwrap();
    let vmid = h.aix().vms_create(V_WORKING, K as i64).unwrap();
    let hnd = vm_handle(vmid, VM_PRIV).unwrap().raw();
    let r = h.aix().as_att64(hnd, 0).unwrap();
    h.store(r, USR, 0x22).unwrap();
    h.aix().fork(P1, P2).unwrap();
    h.set_env(Environment::Process(P2));
    assert!(
        h.load(u, USR).is_err(),
        "child faults at the parent's vm_guatt address"
    );
    assert_eq!(h.load(r, USR), Ok(0x22), "as_att64 region inherited");
    assert!(h.aix_ref().attachments(P2).is_empty());
    h.set_env(Environment::Process(P1));
    assert_eq!(h.load(u, USR), Ok(0x11), "parent still reads");
    h.store(u, USR, 0x12).unwrap();
    assert_eq!(h.load(u, USR), Ok(0x12), "and writes");
    // The child's region detaches on its own.
    h.set_env(Environment::Process(P2));
    h.aix().as_det64(r).unwrap();
    h.set_env(Environment::Process(P1));
    assert_eq!(h.load(r, USR), Ok(0x22));
}

pub fn exit_releases_everything<H: Harness>() {
    let mut h = setup::<H>();
    let base0 = snap(&h);
    let vmid = h.aix().vms_create(V_WORKING, K as i64).unwrap();
    let k = h.aix().vm_galloc(V_WORKING, K as i64).unwrap();
    let base1 = h.aix_ref().bookkeeping();
    h.aix().create_process(P2, AddressModel::Bits64).unwrap();
    h.set_env(Environment::Process(P2));
    let u = h.aix().vm_guatt(k, K as i64, VM_PRIV, VU_ANYWHERE).unwrap();
    h.store(u, USR, 1).unwrap();
    let hnd = vm_handle(vmid, VM_PRIV).unwrap().raw();
    let r = h.aix().as_att64(hnd, 0).unwrap();
    h.store(r, USR, 2).unwrap();
    let adsp = h.aix().getadsp().unwrap();
    let s = h.aix().as_att(adsp.as_ptr(), hnd, 0).unwrap();
    assert_eq!(h.aix().as_geth64(s).unwrap(), hnd);
    let v = h.aix().vm_att(hnd, 0).unwrap();
    assert_eq!(h.load(v, SUP), Ok(2));
    h.aix().exit(P2).unwrap();
    h.set_env(Environment::Process(P1));
    assert_eq!(
        h.aix_ref().bookkeeping(),
        base1,
        "P2's attachments, regions, holds, vm_att slot gone"
    );
    let info = h.aix_ref().vm().segment(Sid::new(vmid as u64)).unwrap();
    assert_eq!(
        (info.holds, info.attaches),
        (0, 0),
        "hold put and mappings gone"
    );
    // Unheld and unmapped now: deletable at once; everything back.
    h.aix().vms_delete(vmid).unwrap();
    h.aix().vm_gfree(k, K as i64).unwrap();
    assert_eq!(snap(&h), base0, "core and services back to the start");
}

// ---------------------------------------------------------------------
// vm_att / vm_det / vm_handle
// ---------------------------------------------------------------------

pub fn vm_att_supervisor_only<H: Harness>() {
    let mut h = setup::<H>();
    let vmid = h
        .aix()
        .vms_create(V_WORKING | V_UREAD, 2 * K as i64)
        .unwrap();
    let hnd = vm_handle(vmid, VM_PRIV).unwrap().raw();
    let v = h.aix().vm_att(hnd, 0x7000_0000_0000_1234).unwrap();
    assert_eq!(v & SEGOFFSET, 0x1234, "high bits of offset ignored");
    assert!(v >= 0xF200_0000_0000_0000);
    h.store(v, SUP, 4).unwrap();
    assert_eq!(h.load(v, SUP), Ok(4));
    assert!(h.load(v, USR).is_err(), "vm_att region is kernel memory");
    // Interrupt environment may vm_att / vm_det.
    h.set_env(Environment::Interrupt);
    let w = h.aix().vm_att(hnd, 0).unwrap();
    assert_eq!(h.load(w + 0x1234, SUP), Ok(4));
    h.aix().vm_det(w).unwrap();
    h.set_env(Environment::Process(P1));
    h.aix().vm_det(v).unwrap();
    assert!(h.load(v, SUP).is_err());
    // The offset is not checked against the segment's two pages: the
    // attach succeeds, the access past the end faults.
    let past = h.aix().vm_att(hnd, 2 * K).unwrap();
    assert_eq!(past & SEGOFFSET, 2 * K);
    assert!(h.load(past, SUP).is_err(), "offset past the segment faults");
    assert!(h.store(past, SUP, 1).is_err());
    assert_eq!(h.load(past - 8, SUP), Ok(0), "last page still reachable");
    h.aix().vm_det(past).unwrap();
}

pub fn vm_att_fails_safely_when_full<H: Harness>() {
    let mut h = setup_with::<H>(AixConfig {
        vm_att_slots: 2,
        ..AixConfig::default()
    });
    let vmid = h.aix().vms_create(V_WORKING, K as i64).unwrap();
    let hnd = vm_handle(vmid, VM_PRIV).unwrap().raw();
    h.aix().vm_att(hnd, 0).unwrap();
    h.aix().vm_att(hnd, 0).unwrap();
    let e = refused(&mut h, |a| a.vm_att(hnd, 0));
    assert_eq!(e, VmAttError::NoFreeRegion);
    let e = refused(&mut h, |a| a.vm_att(INVLSID, 0));
    assert!(matches!(e, VmAttError::BadHandle(_)));
    let e = refused(&mut h, |a| a.vm_att(vm_handle(0x7777, 0).unwrap().raw(), 0));
    assert_eq!(e, VmAttError::NoSuchSegment { sid: 0x7777 });
}

pub fn vm_det_refuses_unattached<H: Harness>() {
    let (mut h, _, hnd) = setup_object::<H>(VM_PRIV);
    let v = h.aix().vm_att(hnd, 0).unwrap();
    let k = h.aix().vm_galloc(V_WORKING, K as i64).unwrap();
    for addr in [k, 0, v + SEGSIZE] {
        let e = refused(&mut h, |a| a.vm_det(addr));
        assert_eq!(e, VmDetError::NotAttached { eaddr: addr });
    }
    // Another context cannot detach it.
    h.set_env(Environment::KernelProcess);
    let e = refused(&mut h, |a| a.vm_det(v));
    assert_eq!(e, VmDetError::NotAttached { eaddr: v });
}

// ---------------------------------------------------------------------
// getadsp / as_att / as_det / as_geth / as_puth / as_getsrval
// ---------------------------------------------------------------------

pub fn getadsp_process_and_kproc<H: Harness>() {
    let mut h = setup::<H>();
    let p = h.aix().getadsp().unwrap();
    assert_eq!(
        h.aix_ref()
            .adspace_of(Space::Process(P1))
            .map(|a| a as *const _),
        Some(p.as_ptr() as *const _)
    );
    h.set_env(Environment::KernelProcess);
    let kp = h.aix().getadsp().unwrap();
    assert_ne!(p, kp);
    assert_eq!(
        h.aix_ref().adspace_of(Space::Kernel).map(|a| a as *const _),
        Some(kp.as_ptr() as *const _)
    );
    h.set_env(Environment::Interrupt);
    let e = refused(&mut h, |a| a.getadsp());
    assert_eq!(e, GetadspError::WrongEnvironment);
}

/// A `getadsp` pointer of a process that exited never reaches another
/// process, even one created right after (whose `adspace_t` could reuse
/// the freed memory): the services refuse it.
pub fn stale_getadsp_pointer_is_refused<H: Harness>() {
    let (mut h, _, hnd) = setup_object::<H>(VM_PRIV);
    for round in 0..8u32 {
        let old = ProcessId(100 + 2 * round);
        let new = ProcessId(101 + 2 * round);
        h.aix().create_process(old, AddressModel::Bits32).unwrap();
        h.set_env(Environment::Process(old));
        let stale = h.aix().getadsp().unwrap().as_ptr();
        h.set_env(Environment::Process(P1));
        h.aix().exit(old).unwrap();
        h.aix().create_process(new, AddressModel::Bits32).unwrap();
        let e = refused(&mut h, |x| x.as_att(stale, hnd, 0));
        assert_eq!(
            e,
            AsAttError::BadAdspace {
                adsp: stale as usize
            },
            "round {round}"
        );
        let e = refused(&mut h, |x| x.as_geth(stale, 0x3000_0000));
        assert!(matches!(e, AsGethError::BadAdspace { .. }));
        // The new process's own pointer works.
        h.set_env(Environment::Process(new));
        let fresh = h.aix().getadsp().unwrap().as_ptr();
        assert_ne!(fresh, stale);
        let a = h.aix().as_att(fresh, hnd, 0).unwrap();
        h.aix().as_det(fresh, a).unwrap();
        h.set_env(Environment::Process(P1));
        h.aix().exit(new).unwrap();
    }
}

pub fn as_att_picks_register_and_ignores_upper_bits<H: Harness>() {
    let mut h = setup::<H>();
    let vmid = h.aix().vms_create(V_WORKING, 2 * K as i64).unwrap();
    let hnd = vm_handle(vmid, VM_PRIV).unwrap().raw();
    let adsp = h.aix().getadsp().unwrap().as_ptr();
    let a = h.aix().as_att(adsp, hnd, 0xF000_1234).unwrap();
    assert_eq!(a, 0x3000_1234, "register 3, upper 4 bits of offset ignored");
    let ad = *h.aix_ref().adspace_of(Space::Process(P1)).unwrap();
    assert_eq!(ad.alloc, 0x1000_0000);
    assert_eq!(ad.srval[3], hnd);
    h.store(a, USR, 8).unwrap();
    assert_eq!(h.load(a, USR), Ok(8));
    // The copy the pointer shows is current.
    // SAFETY: `adsp` came from getadsp and P1 is alive.
    let seen = unsafe { *adsp };
    assert_eq!(seen.alloc, 0x1000_0000);
    let b = h.aix().as_att(adsp, hnd, 4).unwrap();
    assert_eq!(b, 0x4000_0004);
    assert_eq!(h.load(b - 4 + 0x1234, USR), Ok(8), "same object");
}

pub fn as_att_null_when_registers_full<H: Harness>() {
    let (mut h, _, hnd) = setup_object::<H>(VM_UNPRIV);
    let adsp = h.aix().getadsp().unwrap().as_ptr();
    let mut got = vec![];
    for _ in 0..12 {
        got.push(h.aix().as_att(adsp, hnd, 0).unwrap() >> SEGSHIFT);
    }
    assert_eq!(got, [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15]);
    let e = refused(&mut h, |a| a.as_att(adsp, hnd, 0));
    assert_eq!(e, AsAttError::NoFreeRegister);
    // SAFETY: valid getadsp pointer of a live process.
    let alloc = unsafe { (*adsp).alloc };
    assert_eq!(alloc & 0xE002_0000, 0, "0, 1, 2, 14 never allocated");
}

pub fn as_att_refuses_bad_arguments<H: Harness>() {
    let (mut h, _, hnd) = setup_object::<H>(VM_PRIV);
    let adsp = h.aix().getadsp().unwrap().as_ptr();
    let bogus = adspace_t::EMPTY;
    let e = refused(&mut h, |a| a.as_att(&bogus, hnd, 0));
    assert!(matches!(e, AsAttError::BadAdspace { .. }));
    let e = refused(&mut h, |a| a.as_att(adsp, hnd | 0x100, 0));
    assert!(matches!(e, AsAttError::BadHandle(_)));
    let e = refused(&mut h, |a| {
        a.as_att(adsp, vm_handle(0x5555, 0).unwrap().raw(), 0)
    });
    assert_eq!(e, AsAttError::NoSuchSegment { sid: 0x5555 });
    let k = h.aix().vm_galloc(V_WORKING, K as i64).unwrap();
    let gsid = h
        .aix_ref()
        .allocations()
        .find(|a| a.start == k)
        .unwrap()
        .sids[0]
        .as_u64();
    let e = refused(&mut h, |a| {
        a.as_att(adsp, vm_handle(gsid as i64, 0).unwrap().raw(), 0)
    });
    assert_eq!(e, AsAttError::NotAttachable { sid: gsid });
    h.set_env(Environment::Interrupt);
    let e = refused(&mut h, |a| a.as_att(adsp, hnd, 0));
    assert_eq!(e, AsAttError::WrongEnvironment);
}

pub fn as_att_other_adspace_and_kproc<H: Harness>() {
    let (mut h, _, hnd) = setup_object::<H>(VM_PRIV);
    h.aix().create_process(P2, AddressModel::Bits32).unwrap();
    h.set_env(Environment::Process(P2));
    let adsp2 = h.aix().getadsp().unwrap().as_ptr();
    h.set_env(Environment::Process(P1));
    // Attach into P2's address space while P1 runs.
    let a = h.aix().as_att(adsp2, hnd, 0).unwrap();
    assert!(h.load(a, USR).is_err(), "not in the current space");
    h.set_env(Environment::Process(P2));
    h.store(a, USR, 3).unwrap();
    // Kernel process: the kernel's registers.
    h.set_env(Environment::KernelProcess);
    let kadsp = h.aix().getadsp().unwrap().as_ptr();
    let b = h.aix().as_att(kadsp, hnd, 0).unwrap();
    assert_eq!(b >> SEGSHIFT, 3);
    assert_eq!(h.load(b, SUP), Ok(3));
    h.aix().as_det(kadsp, b).unwrap();
}

pub fn as_det_frees_and_refuses_reserved<H: Harness>() {
    let (mut h, _, hnd) = setup_object::<H>(VM_PRIV);
    let adsp = h.aix().getadsp().unwrap().as_ptr();
    let a = h.aix().as_att(adsp, hnd, 0).unwrap();
    for sr in [0u64, 1, 2, 14] {
        let e = refused(&mut h, |x| x.as_det(adsp, sr << SEGSHIFT));
        assert_eq!(e, AsDetError::ReservedRegister { sr: sr as usize });
        assert_eq!(e.errno(), Errno::Inval);
    }
    let e = refused(&mut h, |x| x.as_det(adsp, 5 << SEGSHIFT));
    assert_eq!(e, AsDetError::Unallocated { sr: 5 });
    // A vm_guatt attachment in a register is not as_att's to free.
    h.aix().create_process(P2, AddressModel::Bits32).unwrap();
    h.set_env(Environment::Process(P2));
    let adsp2 = h.aix().getadsp().unwrap().as_ptr();
    let k = h.aix().vm_galloc(V_WORKING, K as i64).unwrap();
    let u = h.aix().vm_guatt(k, K as i64, VM_PRIV, VU_ANYWHERE).unwrap();
    let e = refused(&mut h, |x| x.as_det(adsp2, u));
    assert_eq!(e, AsDetError::NotAttached { sr: 3 });
    h.set_env(Environment::Process(P1));
    h.aix().as_det(adsp, a).unwrap();
    assert!(h.load(a, USR).is_err());
    // SAFETY: valid getadsp pointer.
    assert_eq!(unsafe { (*adsp).alloc }, 0);
    let e = refused(&mut h, |x| x.as_det(adsp, a));
    assert_eq!(e, AsDetError::Unallocated { sr: 3 });
    h.set_env(Environment::Interrupt);
    let e = refused(&mut h, |x| x.as_det(adsp, a));
    assert_eq!(e, AsDetError::WrongEnvironment);
}

pub fn as_geth_holds_until_puth<H: Harness>() {
    let (mut h, vmid, hnd) = setup_object::<H>(VM_UNPRIV);
    let adsp = h.aix().getadsp().unwrap().as_ptr();
    let a = h.aix().as_att(adsp, hnd, 0).unwrap();
    let g = h.aix().as_geth(adsp, a + 5).unwrap();
    assert_eq!(g, hnd);
    assert_eq!(
        h.aix_ref().holds(Space::Process(P1)),
        vec![(vmid as u64, 1)]
    );
    h.aix().vms_delete(vmid).unwrap();
    // SAFETY: valid getadsp pointer.
    assert_eq!(unsafe { (*adsp).srval[3] }, hnd, "held: still attached");
    let s = h.aix().as_getsrval(adsp, a).unwrap();
    assert_eq!(s, hnd);
    assert_eq!(
        h.aix_ref().holds(Space::Process(P1)),
        vec![(vmid as u64, 1)],
        "getsrval takes no hold"
    );
    h.aix().as_puth(adsp, g).unwrap();
    // SAFETY: valid getadsp pointer of a live process.
    let alloc = unsafe { (*adsp).alloc };
    assert_eq!(alloc, 0, "deleted at the last put");
    let e = refused(&mut h, |x| x.as_puth(adsp, g));
    assert_eq!(e, AsPuthError::NoHold { sid: vmid as u64 });
}

pub fn as_geth_refusals<H: Harness>() {
    let mut h = setup::<H>();
    let adsp = h.aix().getadsp().unwrap().as_ptr();
    let e = refused(&mut h, |x| x.as_geth(adsp, 0x5000_0000));
    assert_eq!(e, AsGethError::Unallocated { sr: 5 });
    let bogus = adspace_t::EMPTY;
    let e = refused(&mut h, |x| x.as_geth(&bogus, 0));
    assert!(matches!(e, AsGethError::BadAdspace { .. }));
    let vmid = h.aix().vms_create(V_WORKING, K as i64).unwrap();
    let hnd = vm_handle(vmid, VM_PRIV).unwrap().raw();
    let e = refused(&mut h, |x| x.as_puth(adsp, hnd));
    assert_eq!(e, AsPuthError::NoHold { sid: vmid as u64 });
    let e = refused(&mut h, |x| x.as_puth(adsp, INVLSID));
    assert!(matches!(e, AsPuthError::BadHandle(_)));
    h.set_env(Environment::Interrupt);
    let a = refused(&mut h, |x| x.as_geth(adsp, 0));
    assert_eq!(a, AsGethError::WrongEnvironment);
    let p = refused(&mut h, |x| x.as_puth(adsp, hnd));
    assert_eq!(p, AsPuthError::WrongEnvironment);
}

pub fn as_getsrval_in_interrupt<H: Harness>() {
    let (mut h, _, hnd) = setup_object::<H>(VM_PRIV);
    let adsp = h.aix().getadsp().unwrap().as_ptr();
    let a = h.aix().as_att(adsp, hnd, 0).unwrap();
    h.set_env(Environment::Interrupt);
    let before = snap(&h);
    assert_eq!(h.aix().as_getsrval(adsp, a), Ok(hnd));
    assert_eq!(snap(&h), before, "no hold taken");
}

// ---------------------------------------------------------------------
// The *64 services
// ---------------------------------------------------------------------

pub fn as_att64_places_in_shmat_area<H: Harness>() {
    let mut h = setup::<H>();
    let vmid = h.aix().vms_create(V_WORKING, 2 * K as i64).unwrap();
    let hnd = vm_handle(vmid, VM_PRIV).unwrap().raw();
    let a = h.aix().as_att64(hnd, 0x7000_1234u32 as c_int).unwrap();
    assert_eq!(a, SHMAT_BASE + 0x1234, "upper 4 bits of offset ignored");
    h.store(a, USR, 1).unwrap();
    let b = h.aix().as_att64(hnd, K as c_int).unwrap();
    assert_eq!(b, SHMAT_BASE + SEGSIZE + K);
    assert_eq!(h.load(b + 0x234, USR), Ok(1), "same object at both");
    // Read-only view through VM_UNPRIV of PP 00: nothing.
    let hu = vm_handle(vmid, VM_UNPRIV).unwrap().raw();
    let c = h.aix().as_att64(hu, 0).unwrap();
    assert_eq!(rw(&mut h, c, USR), (false, false));
}

pub fn as_att64_refusals<H: Harness>() {
    let mut h = setup::<H>();
    let e = refused(&mut h, |x| x.as_att64(0x123, 0));
    assert!(matches!(e, AsAtt64Error::BadHandle(_)));
    assert_eq!(e.errno(), Errno::Inval);
    let e = refused(&mut h, |x| {
        x.as_att64(vm_handle(0x999, 0).unwrap().raw(), 0)
    });
    assert_eq!(e, AsAtt64Error::NoSuchSegment { sid: 0x999 });
    h.set_env(Environment::Interrupt);
    let vmid = 1;
    let e = refused(&mut h, |x| x.as_att64(vm_handle(vmid, 0).unwrap().raw(), 0));
    assert_eq!(e, AsAtt64Error::WrongEnvironment);
}

pub fn as_att64_enomem_when_no_region<H: Harness>() {
    let mut h = H::with_config(AixConfig::default());
    h.aix().create_process(P2, AddressModel::Bits32).unwrap();
    h.set_env(Environment::Process(P2));
    let vmid = h.aix().vms_create(V_WORKING, K as i64).unwrap();
    let hnd = vm_handle(vmid, VM_PRIV).unwrap().raw();
    for _ in 0..12 {
        let a = h.aix().as_att64(hnd, 0).unwrap();
        assert!(a < 1 << 32);
    }
    let e = refused(&mut h, |x| x.as_att64(hnd, 0));
    assert_eq!(e, AsAtt64Error::NoMemory(Shortage::Regions));
    assert_eq!(e.errno(), Errno::NoMem);
}

pub fn as_det64_detaches_and_refuses<H: Harness>() {
    let (mut h, _, hnd) = setup_object::<H>(VM_PRIV);
    let a = h.aix().as_att64(hnd, 0).unwrap();
    let k = h.aix().vm_galloc(V_WORKING, K as i64).unwrap();
    let u = h.aix().vm_guatt(k, K as i64, VM_PRIV, VU_ANYWHERE).unwrap();
    let e = refused(&mut h, |x| x.as_det64(u));
    assert_eq!(e, AsDet64Error::NotDetachable { addr: u });
    let e = refused(&mut h, |x| x.as_det64(k));
    assert_eq!(e, AsDet64Error::OutOfRange { addr: k });
    let e = refused(&mut h, |x| x.as_det64(1 << 60));
    assert_eq!(e, AsDet64Error::OutOfRange { addr: 1 << 60 });
    let e = refused(&mut h, |x| x.as_det64(0x1234_0000_0000));
    assert_eq!(
        e,
        AsDet64Error::Unallocated {
            addr: 0x1234_0000_0000
        }
    );
    h.aix().as_det64(a + 100).unwrap();
    assert!(h.load(a, USR).is_err());
    let e = refused(&mut h, |x| x.as_det64(a));
    assert_eq!(e.errno(), Errno::Inval);
    h.set_env(Environment::Interrupt);
    let e = refused(&mut h, |x| x.as_det64(u));
    assert_eq!(e, AsDet64Error::WrongEnvironment);
}

pub fn as_det64_refuses_reserved_register_32bit<H: Harness>() {
    let mut h = H::with_config(AixConfig::default());
    h.aix().create_process(P2, AddressModel::Bits32).unwrap();
    h.set_env(Environment::Process(P2));
    let vmid = h.aix().vms_create(V_WORKING, K as i64).unwrap();
    // as_seth64 refuses register 14 too, so map it the way the kernel
    // would map a process's shared library data: straight in the core.
    let how = MappingInfo {
        sid: Sid::new(vmid as u64),
        key: vmm::adspace::SegKey::PRIV,
        no_exec: false,
        window: None,
        view_prot: vmm::segment::ViewProt::Segment,
        fork: vmm::adspace::ForkAction::Share,
    };
    h.aix()
        .vm_mut()
        .map(Space::Process(P2), Esid::new(14), &how)
        .unwrap();
    let e = refused(&mut h, |x| x.as_det64(14 << SEGSHIFT));
    assert_eq!(
        e,
        AsDet64Error::NotDetachable {
            addr: 14 << SEGSHIFT
        }
    );
    let e = refused(&mut h, |x| x.as_det64(1 << 32));
    assert_eq!(e, AsDet64Error::OutOfRange { addr: 1 << 32 });
}

pub fn as_seth64_replaces<H: Harness>() {
    let mut h = setup::<H>();
    let v1 = h.aix().vms_create(V_WORKING, K as i64).unwrap();
    let v2 = h.aix().vms_create(V_WORKING, K as i64).unwrap();
    let h1 = vm_handle(v1, VM_PRIV).unwrap().raw();
    let h2 = vm_handle(v2, VM_PRIV).unwrap().raw();
    let addr = 0x0000_0123_4000_0000u64;
    h.aix().as_seth64(addr + 0x10, h1).unwrap();
    h.store(addr, USR, 1).unwrap();
    h.aix().as_seth64(addr, h2).unwrap();
    assert_eq!(h.load(addr, USR), Ok(0), "the new object replaced the old");
    assert_eq!(h.aix().as_getsrval64(addr), Ok(h2));
    // Replacing a vm_guatt attachment takes the attachment down.
    let k = h.aix().vm_galloc(V_WORKING, K as i64).unwrap();
    let u = h.aix().vm_guatt(k, K as i64, VM_PRIV, VU_ANYWHERE).unwrap();
    h.aix().as_seth64(u, h1).unwrap();
    assert!(h.aix_ref().attachments(P1).is_empty());
    assert_eq!(h.load(u, USR), Ok(1));
    h.aix().as_det64(u).unwrap();
}

pub fn as_seth64_refusals<H: Harness>() {
    let (mut h, _, h1) = setup_object::<H>(VM_PRIV);
    let e = refused(&mut h, |x| x.as_seth64(1 << 60, h1));
    assert_eq!(e, AsSeth64Error::OutOfRange { addr: 1 << 60 });
    assert_eq!(e.errno(), Errno::Inval);
    let e = refused(&mut h, |x| x.as_seth64(SHMAT_BASE, INVLSID));
    assert!(matches!(e, AsSeth64Error::BadHandle(_)));
    let e = refused(&mut h, |x| {
        x.as_seth64(SHMAT_BASE, vm_handle(0xABC, 1).unwrap().raw())
    });
    assert_eq!(e, AsSeth64Error::NoSuchSegment { sid: 0xABC });
    h.set_env(Environment::Interrupt);
    let e = refused(&mut h, |x| x.as_seth64(SHMAT_BASE, h1));
    assert_eq!(e, AsSeth64Error::WrongEnvironment);
}

/// `as_seth64` may not replace the reserved segment registers 0, 1, 2, 14
/// of a 32-bit process or a kernel process (the ones `as_det64` refuses);
/// the other registers it may set, and a 64-bit process has no such rule.
pub fn as_seth64_refuses_reserved_registers<H: Harness>() {
    let (mut h, _, h1) = setup_object::<H>(VM_PRIV);
    h.aix().create_process(P2, AddressModel::Bits32).unwrap();
    for env in [Environment::Process(P2), Environment::KernelProcess] {
        h.set_env(env);
        for sr in [0u64, 1, 2, 14] {
            let addr = (sr << SEGSHIFT) + 0x123;
            let e = refused(&mut h, |x| x.as_seth64(addr, h1));
            assert_eq!(e, AsSeth64Error::ReservedRegister { addr }, "{env:?}");
            assert_eq!(e.errno(), Errno::Inval);
        }
        h.aix().as_seth64(3 << SEGSHIFT, h1).unwrap();
        h.aix().as_det64(3 << SEGSHIFT).unwrap();
    }
    // A 64-bit process's ESIDs 0..15 are ordinary segments.
    h.set_env(Environment::Process(P1));
    h.aix().as_seth64(14 << SEGSHIFT, h1).unwrap();
    h.aix().as_det64(14 << SEGSHIFT).unwrap();
}

pub fn as_geth64_hold_defers_vms_delete<H: Harness>() {
    let (mut h, vmid, hnd) = setup_object::<H>(VM_PRIV);
    let a = h.aix().as_att64(hnd, 0).unwrap();
    h.store(a, USR, 0x33).unwrap();
    let g = h.aix().as_geth64(a).unwrap();
    assert_eq!(g, hnd);
    h.aix().vms_delete(vmid).unwrap();
    assert_eq!(
        h.load(a, USR),
        Ok(0x33),
        "held: still usable after vms_delete"
    );
    h.store(a, USR, 0x34).unwrap();
    let e = refused(&mut h, |x| x.vms_delete(vmid));
    assert_eq!(e, VmsDeleteError::BadVmid { vmid });
    h.aix().as_puth64(a, g).unwrap();
    assert!(h.load(a, USR).is_err(), "destroyed at the last put");
    assert!(h.aix_ref().vm().segment(Sid::new(vmid as u64)).is_none());
    let e = refused(&mut h, |x| x.as_puth64(a, g));
    assert_eq!(e, AsPuth64Error::NoHold { sid: vmid as u64 });
    // Destroyed: the handle attaches nowhere any more.
    let e = refused(&mut h, |x| x.as_att64(hnd, 0));
    assert_eq!(e, AsAtt64Error::NoSuchSegment { sid: vmid as u64 });
    assert_eq!(e.errno(), Errno::Inval);
    let e = refused(&mut h, |x| x.vm_att(hnd, 0));
    assert_eq!(e, VmAttError::NoSuchSegment { sid: vmid as u64 });
}

/// AIX as_geth64: the handle "can then be used with the as_att64 or vm_att
/// kernel service to make the object addressable at a different location"
/// and the segment "is protected from deletion until the as_puth64 kernel
/// service is called". So after a deferred `vms_delete` the held handle
/// still attaches (as_att64, as_att, vm_att), fork inherits the mappings,
/// and the last put takes every one of them down with the segment.
pub fn deferred_delete_keeps_the_segment_fully_usable<H: Harness>() {
    let (mut h, vmid, hnd) = setup_object::<H>(VM_PRIV);
    let a = h.aix().as_att64(hnd, 0).unwrap();
    h.store(a + 8, USR, 0x5C).unwrap();
    let held = h.aix().as_geth64(a).unwrap();
    h.aix().vms_delete(vmid).unwrap();
    assert!(
        h.aix_ref()
            .vm()
            .segment(Sid::new(vmid as u64))
            .unwrap()
            .delete_pending
    );
    // Addressable at a different location, three ways.
    let b = h.aix().as_att64(held, 8).unwrap();
    assert_ne!(b >> SEGSHIFT, a >> SEGSHIFT);
    assert_eq!(h.load(b, USR), Ok(0x5C));
    let adsp = h.aix().getadsp().unwrap().as_ptr();
    let c = h.aix().as_att(adsp, held, 8).unwrap();
    assert_eq!(h.load(c, USR), Ok(0x5C));
    let v = h.aix().vm_att(held, 8).unwrap();
    assert_eq!(h.load(v, SUP), Ok(0x5C));
    h.store(v, SUP, 0x5D).unwrap();
    assert_eq!(h.load(b, USR), Ok(0x5D), "one segment behind every alias");
    // Fork inherits the regions of the held segment.
    h.aix().fork(P1, P2).unwrap();
    h.set_env(Environment::Process(P2));
    assert_eq!(h.load(a + 8, USR), Ok(0x5D));
    assert_eq!(h.load(b, USR), Ok(0x5D));
    h.store(b, USR, 0x5E).unwrap();
    // The last put (in the parent) destroys it and every mapping of it.
    h.set_env(Environment::Process(P1));
    assert_eq!(h.load(a + 8, USR), Ok(0x5E), "the child's store is seen");
    h.aix().vm_det(v).unwrap();
    h.aix().as_puth64(a, held).unwrap();
    assert!(h.aix_ref().vm().segment(Sid::new(vmid as u64)).is_none());
    for ea in [a, b, c] {
        assert!(
            h.load(ea, USR).is_err(),
            "{ea:#x} taken down at the last put"
        );
    }
    h.set_env(Environment::Process(P2));
    assert!(h.load(a, USR).is_err(), "the child's mappings too");
    assert!(h.load(b, USR).is_err());
}

pub fn as_geth64_refusals<H: Harness>() {
    let mut h = setup::<H>();
    let e = refused(&mut h, |x| x.as_geth64(1 << 60));
    assert_eq!(e, AsGeth64Error::OutOfRange { addr: 1 << 60 });
    let e = refused(&mut h, |x| x.as_geth64(u64::MAX));
    assert_eq!(e, AsGeth64Error::OutOfRange { addr: u64::MAX });
    let e = refused(&mut h, |x| x.as_geth64(SHMAT_BASE));
    assert_eq!(e, AsGeth64Error::Unmapped { addr: SHMAT_BASE });
    let k = h.aix().vm_galloc(V_WORKING, K as i64).unwrap();
    let u = h.aix().vm_guatt(k, K as i64, VM_PRIV, VU_ANYWHERE).unwrap();
    // A vm_guatt address gives no handle (C: INVLSID): as_att64 with it
    // would reach the whole allocation, not only the attached page.
    let e = refused(&mut h, |x| x.as_geth64(u));
    assert_eq!(e, AsGeth64Error::GlobalMemory { addr: u });
    let e = refused(&mut h, |x| x.as_getsrval64(u + 1));
    assert_eq!(e, AsGeth64Error::GlobalMemory { addr: u + 1 });
    h.set_env(Environment::Interrupt);
    let e = refused(&mut h, |x| x.as_geth64(u));
    assert_eq!(e, AsGeth64Error::WrongEnvironment);
}

pub fn as_puth64_refusals<H: Harness>() {
    let (mut h, vmid, hnd) = setup_object::<H>(VM_PRIV);
    let a = h.aix().as_att64(hnd, 0).unwrap();
    let e = refused(&mut h, |x| x.as_puth64(a, hnd));
    assert_eq!(
        e,
        AsPuth64Error::NoHold { sid: vmid as u64 },
        "put without get refused"
    );
    let g = h.aix().as_geth64(a).unwrap();
    let e = refused(&mut h, |x| x.as_puth64(1 << 60, g));
    assert_eq!(e, AsPuth64Error::OutOfRange { addr: 1 << 60 });
    let e = refused(&mut h, |x| x.as_puth64(a, g | 0x1));
    assert!(matches!(e, AsPuth64Error::BadHandle(_)));
    // Another process's put does not count.
    h.aix().create_process(P2, AddressModel::Bits64).unwrap();
    h.set_env(Environment::Process(P2));
    let e = refused(&mut h, |x| x.as_puth64(a, g));
    assert_eq!(e, AsPuth64Error::NoHold { sid: vmid as u64 });
    h.set_env(Environment::Interrupt);
    let e = refused(&mut h, |x| x.as_puth64(a, g));
    assert_eq!(e, AsPuth64Error::WrongEnvironment);
    h.set_env(Environment::Process(P1));
    // Two gets need two puts; the count never goes below zero.
    let g2 = h.aix().as_geth64(a).unwrap();
    h.aix().as_puth64(a, g).unwrap();
    h.aix().as_puth64(a, g2).unwrap();
    let e = refused(&mut h, |x| x.as_puth64(a, g));
    assert_eq!(e.errno(), Errno::Inval);
    assert_eq!(
        h.aix_ref()
            .vm()
            .segment(Sid::new(vmid as u64))
            .map(|s| s.holds),
        Some(0)
    );
}

/// A process's own segments are usually mapped Ks = 0, Kp = 1 (the
/// core's `SegKey::KERNEL`); `as_geth64` returns that mapping's keys, and
/// the handle must be accepted back by `as_puth64` (else the hold can never
/// be released) and map the same way through the attach services.
pub fn mixed_key_handle_round_trips<H: Harness>() {
    use vmm::adspace::{ForkAction, SegKey};
    use vmm::segment::ViewProt;
    let mut h = setup::<H>();
    let vmid = h.aix().vms_create(V_WORKING, K as i64).unwrap();
    let sid = vmid as u64;
    let how = MappingInfo {
        sid: Sid::new(sid),
        key: SegKey::KERNEL,
        no_exec: false,
        window: None,
        view_prot: ViewProt::Segment,
        fork: ForkAction::Share,
    };
    h.aix()
        .vm_mut()
        .map(Space::Process(P1), Esid::new(0x10), &how)
        .unwrap();
    let a = 0x10 << 28;
    let g = h.aix().as_geth64(a).unwrap();
    assert_eq!(g, sid << 12 | 0x400, "Ks = 0, Kp = 1");
    assert_eq!(h.aix_ref().holds(Space::Process(P1)), vec![(sid, 1)]);
    h.aix().as_puth64(a, g).unwrap();
    assert!(h.aix_ref().holds(Space::Process(P1)).is_empty());
    assert_eq!(
        h.aix_ref().vm().segment(Sid::new(sid)).map(|s| s.holds),
        Some(0)
    );
    let e = refused(&mut h, |x| x.as_puth64(a, g));
    assert_eq!(e, AsPuth64Error::NoHold { sid });
    // A stray bit is still refused.
    let e = refused(&mut h, |x| x.as_puth64(a, g | 0x100));
    assert!(matches!(e, AsPuth64Error::BadHandle(_)));
    // as_att64 and as_seth64 map it with the same keys: the kernel reads
    // and writes, problem state gets nothing from PP 00 pages.
    let b = h.aix().as_att64(g, 0).unwrap();
    let m = h
        .aix_ref()
        .vm()
        .mapping(Space::Process(P1), Esid::new(b >> 28))
        .unwrap();
    assert_eq!(m.key, SegKey::KERNEL);
    h.store(b, SUP, 0x66).unwrap();
    assert_eq!(h.load(b, SUP), Ok(0x66));
    assert!(h.load(b, USR).is_err());
    let c = SHMAT_BASE + 8 * SEGSIZE;
    h.aix().as_seth64(c, g).unwrap();
    let m = h
        .aix_ref()
        .vm()
        .mapping(Space::Process(P1), Esid::new(c >> 28))
        .unwrap();
    assert_eq!(m.key, SegKey::KERNEL);
    assert_eq!(h.load(c, SUP), Ok(0x66));
    assert!(h.load(c, USR).is_err());
    // vm_att: supervisor access follows Ks = 0 (read-write).
    let v = h.aix().vm_att(g, 0).unwrap();
    assert_eq!(h.load(v, SUP), Ok(0x66));
    h.store(v, SUP, 0x67).unwrap();
    assert!(h.load(v, USR).is_err());
    h.aix().vm_det(v).unwrap();
    assert_eq!(h.load(b, SUP), Ok(0x67));
}

pub fn as_getsrval64_environment_rule<H: Harness>() {
    let (mut h, _, hnd) = setup_object::<H>(VM_PRIV);
    let a = h.aix().as_att64(hnd, 0).unwrap();
    let before = snap(&h);
    assert_eq!(h.aix().as_getsrval64(a), Ok(hnd));
    assert_eq!(snap(&h), before, "no hold");
    // Interrupt on a 64-bit space: refused.
    h.set_env(Environment::Interrupt);
    let e = refused(&mut h, |x| x.as_getsrval64(a));
    assert_eq!(e, AsGeth64Error::WrongEnvironment);
    // Interrupt on a 32-bit space: allowed.
    h.aix().create_process(P2, AddressModel::Bits32).unwrap();
    h.set_env(Environment::Process(P2));
    let r = h.aix().as_att64(hnd, 0).unwrap();
    h.set_env(Environment::Interrupt);
    assert_eq!(h.aix().as_getsrval64(r), Ok(hnd));
    let e = refused(&mut h, |x| x.as_getsrval64(1 << 32));
    assert_eq!(e, AsGeth64Error::OutOfRange { addr: 1 << 32 });
    // Kernel process: allowed too (the kernel's registers).
    h.set_env(Environment::KernelProcess);
    let adsp = h.aix().getadsp().unwrap().as_ptr();
    let b = h.aix().as_att(adsp, hnd, 0).unwrap();
    h.set_env(Environment::Interrupt);
    // The interrupted space is the kernel's now.
    assert_eq!(h.aix().as_getsrval64(b), Ok(hnd));
}

// ---------------------------------------------------------------------
// vms_create / vms_delete / vm_handle
// ---------------------------------------------------------------------

pub fn vms_create_and_delete<H: Harness>() {
    let mut h = setup::<H>();
    let before = snap(&h);
    let vmid = h.aix().vms_create(V_WORKING, 3 * K as i64 - 1).unwrap();
    assert_eq!(
        h.aix_ref()
            .vm()
            .segment(Sid::new(vmid as u64))
            .map(|s| s.pages),
        Some(3)
    );
    let hnd = vm_handle(vmid, VM_PRIV).unwrap();
    assert_eq!(hnd.sid(), vmid as u64);
    let a = h.aix().as_att64(hnd, 0).unwrap();
    h.store(a + 2 * K, USR, 1).unwrap();
    assert!(h.load(a + 3 * K, USR).is_err(), "beyond the size");
    // Deleting an unheld, attached segment takes its mappings down.
    h.aix().vms_delete(vmid).unwrap();
    assert!(h.load(a, USR).is_err());
    assert_eq!(snap(&h), before, "everything released");
}

pub fn vms_create_refusals<H: Harness>() {
    let mut h = setup::<H>();
    for t in [0, V_UREAD, V_WORKING | 0x2] {
        let e = refused(&mut h, |x| x.vms_create(t, K as i64));
        assert_eq!(e, VmsCreateError::BadType { type_flags: t });
        assert_eq!(e.errno(), Errno::Inval);
    }
    for s in [0, -1, SEGSIZE as i64 + 1] {
        let e = refused(&mut h, |x| x.vms_create(V_WORKING, s));
        assert_eq!(e, VmsCreateError::BadSize { size: s });
    }
    assert!(h.aix().vms_create(V_WORKING, SEGSIZE as i64).is_ok());
    h.set_env(Environment::Interrupt);
    let e = refused(&mut h, |x| x.vms_create(V_WORKING, K as i64));
    assert_eq!(e, VmsCreateError::WrongEnvironment);
}

pub fn vms_create_enomem<H: Harness>() {
    let mut h = setup::<H>();
    if !h.limit_sids(0) {
        return;
    }
    let e = refused(&mut h, |x| x.vms_create(V_WORKING, K as i64));
    assert_eq!(e, VmsCreateError::NoMemory(Shortage::Sids));
    assert_eq!(e.errno(), Errno::NoMem);
}

pub fn vms_delete_refusals<H: Harness>() {
    let mut h = setup::<H>();
    let k = h.aix().vm_galloc(V_WORKING, K as i64).unwrap();
    let gsid = h
        .aix_ref()
        .allocations()
        .find(|a| a.start == k)
        .unwrap()
        .sids[0]
        .as_u64() as i64;
    for vmid in [gsid, -1, 0x12345, INVLSID as i64] {
        let e = refused(&mut h, |x| x.vms_delete(vmid));
        assert_eq!(e, VmsDeleteError::BadVmid { vmid });
        assert_eq!(e.errno(), Errno::Inval);
    }
    let vmid = h.aix().vms_create(V_WORKING, K as i64).unwrap();
    h.set_env(Environment::Interrupt);
    let e = refused(&mut h, |x| x.vms_delete(vmid));
    assert_eq!(e, VmsDeleteError::WrongEnvironment);
    h.set_env(Environment::Process(P1));
    h.aix().vms_delete(vmid).unwrap();
    let e = refused(&mut h, |x| x.vms_delete(vmid));
    assert_eq!(e, VmsDeleteError::BadVmid { vmid });
}

pub fn vm_handle_keys_give_hardware_access<H: Harness>() {
    let mut h = setup::<H>();
    let vmid = h.aix().vms_create(V_WORKING | V_UREAD, K as i64).unwrap();
    let p = vm_handle(vmid, VM_PRIV).unwrap().raw();
    let u = vm_handle(vmid, VM_UNPRIV).unwrap().raw();
    assert_eq!(u, p | VmHandle::KS | VmHandle::KP);
    let a = h.aix().as_att64(p, 0).unwrap();
    let b = h.aix().as_att64(u, 0).unwrap();
    assert_eq!(rw(&mut h, a, USR), (true, true));
    assert_eq!(rw(&mut h, b, USR), (true, false));
    assert_eq!(
        h.aix().as_geth64(b),
        Ok(u),
        "the mapping's handle keeps its key"
    );
    h.aix().as_puth64(b, u).unwrap();
}

// ---------------------------------------------------------------------
// Random sequences
// ---------------------------------------------------------------------

/// A small deterministic generator (xorshift64*), so failures replay.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn pick<T: Clone>(&mut self, v: &[T]) -> Option<T> {
        if v.is_empty() {
            None
        } else {
            Some(v[self.below(v.len() as u64) as usize].clone())
        }
    }
}

/// Calls `f`; if it fails, checks that nothing changed.
fn attempt<H: Harness, T, E: core::fmt::Debug>(
    h: &mut H,
    f: impl FnOnce(&mut Aix<H::Vm>) -> Result<T, E>,
) -> Option<T> {
    let before = snap(h);
    match f(h.aix()) {
        Ok(v) => Some(v),
        Err(e) => {
            assert_eq!(snap(h), before, "refused call {e:?} changed state");
            None
        }
    }
}

/// Random sequences of every service, from two processes (64- and
/// 32-bit), with arguments drawn from earlier results and from garbage:
/// every refused call must change nothing, data written through a
/// `vm_guatt` attachment must be what the kernel reads, and after both
/// processes exit and everything is freed the core must hold no segment,
/// mapping, HPTE, frame or SID.
pub fn random_sequences_leak_nothing<H: Harness>() {
    let mut succeeded = [0u32; 13];
    for seed in 1..=6u64 {
        let mut rng = Rng::new(seed);
        let mut h = H::with_config(AixConfig {
            galloc_segments: 8,
            vm_att_slots: 3,
            ..AixConfig::default()
        });
        let fresh = h.core_snapshot();
        h.aix().create_process(P1, AddressModel::Bits64).unwrap();
        h.aix().create_process(P2, AddressModel::Bits32).unwrap();
        let mut allocs: Vec<(u64, i64)> = vec![];
        let mut atts: Vec<(ProcessId, u64, u64, i64, c_int)> = vec![];
        let mut vmids: Vec<i64> = vec![];
        let mut regions: Vec<(ProcessId, u64)> = vec![];
        let mut holds: Vec<(ProcessId, u64, u64)> = vec![];
        let mut slots: Vec<u64> = vec![];
        for _ in 0..250 {
            let pid = if rng.below(2) == 0 { P1 } else { P2 };
            h.set_env(Environment::Process(pid));
            if rng.below(20) == 0 {
                h.set_env(Environment::Interrupt);
            }
            let garbage = rng.next() & 0x0FFF_FFFF_FFFF_F000;
            let op = rng.below(13) as usize;
            let (allocs0, atts0, vmids0, regions0, holds0, slots0) = (
                allocs.len(),
                atts.len(),
                vmids.len(),
                regions.len(),
                holds.len(),
                slots.len(),
            );
            match op {
                0 => {
                    let size = match rng.below(4) {
                        0 => (SEGSIZE + rng.below(3 * K)) as i64,
                        1 => -(rng.below(5) as i64),
                        _ => (1 + rng.below(4 * K)) as i64,
                    };
                    let t = if rng.below(2) == 0 {
                        V_WORKING
                    } else {
                        V_WORKING | V_UREAD
                    };
                    if let Some(k) = attempt(&mut h, |a| a.vm_galloc(t, size)) {
                        allocs.push((k, size));
                    }
                }
                1 => {
                    let (k, size) = rng.pick(&allocs).unwrap_or((garbage, 4096));
                    let size = if rng.below(5) == 0 {
                        size + K as i64
                    } else {
                        size
                    };
                    if attempt(&mut h, |a| a.vm_gfree(k, size)).is_some() {
                        allocs.retain(|&(a, _)| a != k);
                        atts.retain(|t| t.1 < k || t.1 >= k + 2 * SEGSIZE);
                    }
                }
                2 => {
                    let (k, size) = rng.pick(&allocs).unwrap_or((garbage, 4096));
                    let off = rng.below(size.max(1) as u64);
                    let len = 1 + rng.below((size.max(1) as u64 - off).max(1)) as i64;
                    let key = rng.below(3) as vmkey_t;
                    if let Some(u) = attempt(&mut h, |a| a.vm_guatt(k + off, len, key, VU_ANYWHERE))
                    {
                        atts.push((pid, k + off, u, len, key as c_int));
                    }
                }
                3 => {
                    if let Some((p, k, u, len, _)) = rng.pick(&atts) {
                        if attempt(&mut h, |a| a.vm_gudet(k, u, len, VU_ANYWHERE)).is_some() {
                            assert_eq!(p, pid);
                            atts.retain(|t| !(t.0 == p && t.2 == u));
                        }
                    }
                }
                4 => {
                    let size = (1 + rng.below(3 * K)) as i64;
                    if let Some(v) = attempt(&mut h, |a| a.vms_create(V_WORKING, size)) {
                        vmids.push(v);
                    }
                }
                5 => {
                    let v = rng.pick(&vmids).unwrap_or(garbage as i64 & 0xFFFF);
                    let hnd = vm_handle(v, rng.below(2) as vmkey_t).map_or(0, |x| x.raw());
                    if let Some(a) = attempt(&mut h, |x| x.as_att64(hnd, rng.next() as c_int)) {
                        regions.push((pid, a));
                    }
                }
                6 => {
                    let a = rng.pick(&regions).map_or(garbage, |r| r.1);
                    if attempt(&mut h, |x| x.as_det64(a)).is_some() {
                        regions.retain(|r| !(r.0 == pid && r.1 >> SEGSHIFT == a >> SEGSHIFT));
                    }
                }
                7 => {
                    let a = rng.pick(&regions).map_or(garbage, |r| r.1);
                    if let Some(g) = attempt(&mut h, |x| x.as_geth64(a)) {
                        holds.push((pid, a, g));
                    }
                }
                8 => {
                    let (p, a, g) = rng.pick(&holds).unwrap_or((pid, garbage, garbage));
                    if attempt(&mut h, |x| x.as_puth64(a, g)).is_some() {
                        let i = holds.iter().position(|t| *t == (p, a, g)).unwrap();
                        holds.remove(i);
                    }
                }
                9 => {
                    let v = rng.pick(&vmids).unwrap_or(garbage as i64);
                    if attempt(&mut h, |x| x.vms_delete(v)).is_some() {
                        vmids.retain(|&x| x != v);
                    }
                }
                10 => {
                    let v = rng.pick(&vmids).unwrap_or(1);
                    let hnd = vm_handle(v, VM_PRIV).map_or(0, |x| x.raw());
                    if let Some(s) = attempt(&mut h, |x| x.vm_att(hnd, 0)) {
                        slots.push(s);
                    }
                }
                11 => {
                    let s = rng.pick(&slots).unwrap_or(garbage);
                    if attempt(&mut h, |x| x.vm_det(s)).is_some() {
                        slots.retain(|&x| x != s);
                    }
                }
                _ => {
                    // Data through an attachment of the running process.
                    let mine: Vec<_> = atts.iter().filter(|t| t.0 == pid).cloned().collect();
                    if let Some((_, k, u, len, key)) = rng.pick(&mine) {
                        let d = rng.below(len as u64);
                        let b = rng.below(256) as u8;
                        if h.store(u + d, USR, b).is_ok() {
                            assert_eq!(key, VM_PRIV as c_int, "only VM_PRIV writes");
                            assert_eq!(h.load(k + d, SUP), Ok(b));
                            succeeded[op] += 1;
                        }
                    }
                }
            }
            if (allocs0, atts0, vmids0, regions0, holds0, slots0)
                != (
                    allocs.len(),
                    atts.len(),
                    vmids.len(),
                    regions.len(),
                    holds.len(),
                    slots.len(),
                )
            {
                succeeded[op] += 1;
            }
        }
        h.set_env(Environment::Process(P1));
        h.aix().exit(P1).unwrap();
        h.aix().exit(P2).unwrap();
        h.set_env(Environment::KernelProcess);
        let kernel_slots: Vec<u64> = slots.clone();
        for s in kernel_slots {
            // Slots of exited processes went with them; the rest are gone
            // or refused here (another context's).
            let _ = h.aix().vm_det(s);
        }
        for (k, size) in allocs {
            h.aix().vm_gfree(k, size).unwrap();
        }
        for v in vmids {
            h.aix().vms_delete(v).unwrap();
        }
        assert_eq!(h.core_snapshot(), fresh, "seed {seed}: everything released");
    }
    // The sequences did exercise every service and the data path.
    for (op, n) in succeeded.iter().enumerate() {
        assert!(*n > 0, "operation {op} never succeeded: {succeeded:?}");
    }
}

/// Instantiates every test of the suite for harness `$h`.
#[macro_export]
macro_rules! aix_suite {
    ($h:ty; $($name:ident),* $(,)?) => {
        $( #[test] fn $name() { aix_common::$name::<$h>() } )*
    };
    ($h:ty) => {
        aix_suite!($h;
            galloc_rounds_places_and_zero_fills,
            galloc_multi_segment_is_contiguous,
            galloc_refuses_bad_type,
            galloc_refuses_bad_size,
            galloc_too_large_is_enospc,
            layout_is_validated,
            ranges_at_the_top_of_the_address_space,
            galloc_enospc_when_range_exhausted,
            galloc_enomem_when_sids_run_out,
            galloc_refused_in_interrupt,
            galloc_rolls_back_when_a_map_fails,
            guatt_and_seth64_roll_back_when_a_map_fails,
            gfree_frees_and_revokes,
            gfree_refuses_inexact,
            gfree_refused_in_interrupt,
            guatt_priv_reads_and_writes,
            guatt_unpriv_reads_only_with_uread,
            guatt_multi_segment_contiguous,
            guatt_refuses_bad_arguments,
            guatt_refused_in_interrupt_and_kproc,
            guatt_32bit_uses_segment_registers,
            guatt_enomem_when_no_user_segments,
            process_hooks_refuse_bad_ids,
            gudet_detaches,
            gudet_refuses_bad_arguments,
            fork_drops_guatt_keeps_as_att,
            exit_releases_everything,
            vm_att_supervisor_only,
            vm_att_fails_safely_when_full,
            vm_det_refuses_unattached,
            getadsp_process_and_kproc,
            stale_getadsp_pointer_is_refused,
            as_att_picks_register_and_ignores_upper_bits,
            as_att_null_when_registers_full,
            as_att_refuses_bad_arguments,
            as_att_other_adspace_and_kproc,
            as_det_frees_and_refuses_reserved,
            as_geth_holds_until_puth,
            as_geth_refusals,
            as_getsrval_in_interrupt,
            as_att64_places_in_shmat_area,
            as_att64_refusals,
            as_att64_enomem_when_no_region,
            as_det64_detaches_and_refuses,
            as_det64_refuses_reserved_register_32bit,
            as_seth64_replaces,
            as_seth64_refusals,
            as_seth64_refuses_reserved_registers,
            as_geth64_hold_defers_vms_delete,
            deferred_delete_keeps_the_segment_fully_usable,
            as_geth64_refusals,
            as_puth64_refusals,
            mixed_key_handle_round_trips,
            as_getsrval64_environment_rule,
            vms_create_and_delete,
            vms_create_refusals,
            vms_create_enomem,
            vms_delete_refusals,
            vm_handle_keys_give_hardware_access,
            random_sequences_leak_nothing,
        );
    };
}
