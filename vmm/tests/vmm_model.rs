//! Property test: random sequences of segment creation, mapping (plain,
//! windowed, read-only views), loads and stores (with evictions), fork,
//! exit, protect, holds and deletes, run on the emulated MMU and checked
//! against a plain reference model of what each process may access and
//! which byte it must read.
//!
//! After every step: the VMM's own invariants hold (every valid HPTE is
//! recorded for a live segment page, translates it to its frame with its
//! protection, and no virtual page has two), the HPT holds exactly the
//! recorded entries, and no translation the MMU would grant a process goes
//! beyond what the model allows. After teardown no frame, SID or HPTE is
//! left.

mod vmm_common;

use std::collections::BTreeMap;
use std::ops::Range;

use arch_ppc64::addr::{EffectiveAddress, Esid};
use arch_ppc64::structures::hpte::Pp;
use proptest::prelude::*;
use vmm::adspace::{ForkAction, SegKey};
use vmm::platform::{Access, FaultHandler, Interrupt, Privilege, VmFaultReason};
use vmm::segment::{PageProt, ViewProt};
use vmm::sid::{Sid, SidKind};
use vmm::vm::{MapOptions, SpaceId, SpaceRef};
use vmm_common::{ea, Env};

/// Pages the test touches: every 2048th page, so with the smallest HPT
/// (2048 PTEGs) all pages of one segment compete for one primary/secondary
/// PTEG pair of 16 slots and get evicted.
const PAGES: u32 = 20;
const STRIDE: u32 = 2048;
/// ESIDs a process uses.
const ESIDS: u64 = 3;
/// Byte offset in a page that the test reads and writes.
const OFFSET: u64 = 0x10;
const MAX_PROCS: usize = 4;
const MAX_SEGS: usize = 6;
/// Where the kernel maps its segment (EA 0xF100_0000_0000_0000, AIX's
/// kernel heap).
const KERNEL_ESID: u64 = 0xF_1000_0000;
/// Pages of a "small" segment: only page index 0 is inside it.
const SMALL_PAGES: u32 = 3;

fn page_no(idx: u32) -> u32 {
    idx * STRIDE
}

/// PP values the model uses, as 3-bit numbers.
const PP_CHOICES: [u8; 4] = [0b000, 0b001, 0b010, 0b011];

fn pp_of(bits: u8) -> Pp {
    Pp::new(bits)
}

/// The Power ISA Book III-S page protection (PP) table, written out independently of
/// the implementation: (read, write) for PP `pp` under key bit `key`.
fn model_rights(pp: u8, key: bool) -> (bool, bool) {
    match (key, pp) {
        (false, 0b000..=0b010) => (true, true),
        (false, 0b011) => (true, false),
        (true, 0b000) => (false, false),
        (true, 0b001 | 0b011) => (true, false),
        (true, 0b010) => (true, true),
        _ => (false, false),
    }
}

#[derive(Clone, Debug)]
enum Op {
    Spawn,
    CreateSeg {
        pp: u8,
        small: bool,
    },
    Map {
        proc: usize,
        esid: u64,
        seg: usize,
        unpriv: bool,
        window: bool,
        ro_view: bool,
        fork: u8,
        owned: bool,
    },
    Unmap {
        proc: usize,
        esid: u64,
    },
    Store {
        proc: usize,
        esid: u64,
        page: u32,
        value: u8,
    },
    Load {
        proc: usize,
        esid: u64,
        page: u32,
    },
    /// Set-up: the kernel segment (PP 01 pages, as vm_galloc with
    /// V_UREAD) mapped supervisor-only in the kernel half.
    KernelSegment,
    /// A supervisor store through the kernel's mapping.
    KStore {
        page: u32,
        value: u8,
    },
    /// vm_guatt-like: a window of the kernel segment in a process.
    GuAtt {
        proc: usize,
        esid: u64,
        unpriv: bool,
    },
    /// Every test page of one ESID in turn (forces HPT evictions).
    Sweep {
        proc: usize,
        esid: u64,
        store: bool,
        seed: u8,
    },
    Fork {
        proc: usize,
    },
    Exit {
        proc: usize,
    },
    Delete {
        seg: usize,
    },
    Protect {
        seg: usize,
        page: u32,
        pp: u8,
    },
    Hold {
        seg: usize,
    },
    Put {
        seg: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let idx = 0usize..8;
    let esid = 0..ESIDS;
    let page = 0..PAGES;
    prop_oneof![
        1 => Just(Op::Spawn),
        2 => (0usize..4, any::<bool>()).prop_map(|(p, small)| Op::CreateSeg {
            pp: PP_CHOICES[p],
            small: small && p % 2 == 0,
        }),
        4 => (idx.clone(), esid.clone(), idx.clone(), any::<bool>(), any::<bool>(), any::<bool>(), 0u8..3, any::<bool>())
            .prop_map(|(proc, esid, seg, unpriv, window, ro, fork, owned)| Op::Map {
                proc, esid, seg, unpriv, window, ro_view: ro && window, fork, owned: owned && fork != 2,
            }),
        1 => (idx.clone(), esid.clone()).prop_map(|(proc, esid)| Op::Unmap { proc, esid }),
        12 => (idx.clone(), esid.clone(), page.clone(), any::<u8>())
            .prop_map(|(proc, esid, page, value)| Op::Store { proc, esid, page, value }),
        10 => (idx.clone(), esid, page.clone()).prop_map(|(proc, esid, page)| Op::Load { proc, esid, page }),
        2 => (idx.clone(), 0..ESIDS, any::<bool>(), any::<u8>())
            .prop_map(|(proc, esid, store, seed)| Op::Sweep { proc, esid, store, seed }),
        2 => idx.clone().prop_map(|proc| Op::Fork { proc }),
        2 => (0..PAGES, any::<u8>()).prop_map(|(page, value)| Op::KStore { page, value }),
        1 => (idx.clone(), 0..ESIDS, any::<bool>())
            .prop_map(|(proc, esid, unpriv)| Op::GuAtt { proc, esid, unpriv }),
        1 => idx.clone().prop_map(|proc| Op::Exit { proc }),
        1 => idx.clone().prop_map(|seg| Op::Delete { seg }),
        1 => (idx.clone(), page, 0usize..4).prop_map(|(seg, page, p)| Op::Protect { seg, page, pp: PP_CHOICES[p] }),
        1 => idx.clone().prop_map(|seg| Op::Hold { seg }),
        1 => idx.prop_map(|seg| Op::Put { seg }),
    ]
}

/// A mapping operation (for the set-up phase).
fn map_op() -> impl Strategy<Value = Op> {
    (
        0usize..8,
        0..ESIDS,
        0usize..8,
        any::<bool>(),
        0u8..4,
        0u8..3,
    )
        .prop_map(|(proc, esid, seg, unpriv, shape, fork)| Op::Map {
            proc,
            esid,
            seg,
            unpriv,
            window: shape >= 2,
            ro_view: shape == 3,
            fork,
            owned: false,
        })
}

#[derive(Clone, Debug)]
struct MSeg {
    sid: Sid,
    size: u32,
    default_pp: u8,
    pp: BTreeMap<u32, u8>,
    data: BTreeMap<u32, u8>,
    /// `delete_segment` deferred by a hold: revoked at the last put.
    pending: bool,
    /// Its owning mapping went: destroyed with the last mapping or hold.
    orphaned: bool,
    holds: u32,
}

impl MSeg {
    fn pp_at(&self, page: u32) -> u8 {
        *self.pp.get(&page).unwrap_or(&self.default_pp)
    }
}

#[derive(Clone, Debug)]
struct MMap {
    seg: Sid,
    unpriv: bool,
    window: Option<Range<u32>>,
    ro_view: bool,
    fork: ForkAction,
    owned: bool,
}

#[derive(Clone, Debug)]
struct MProc {
    id: SpaceId,
    maps: BTreeMap<u64, MMap>,
}

#[derive(Default, Debug)]
struct Model {
    segs: BTreeMap<Sid, MSeg>,
    procs: Vec<MProc>,
    /// The vm_galloc-like kernel segment (also in `segs`, never deleted
    /// by the random operations) mapped supervisor-only at [`KERNEL_ESID`].
    kernel: Option<Sid>,
}

impl Model {
    /// A user segment (not the kernel one).
    fn seg_at(&self, i: usize) -> Option<Sid> {
        let user: Vec<Sid> = self
            .segs
            .keys()
            .copied()
            .filter(|s| Some(*s) != self.kernel)
            .collect();
        (!user.is_empty()).then(|| user[i % user.len()])
    }

    fn proc_at(&self, i: usize) -> Option<usize> {
        (!self.procs.is_empty()).then(|| i % self.procs.len())
    }

    /// What an access by `proc` at (`esid`, `page`) must give: `Ok(value)`
    /// (the byte a load reads) or the fault.
    fn expect(&self, proc: usize, esid: u64, page: u32, store: bool) -> Result<u8, VmFaultReason> {
        let m = self.procs[proc]
            .maps
            .get(&esid)
            .ok_or(VmFaultReason::NoSegment)?;
        let seg = &self.segs[&m.seg];
        if page >= seg.size || m.window.as_ref().is_some_and(|w| !w.contains(&page)) {
            return Err(VmFaultReason::OutOfRange);
        }
        let pp = if m.ro_view { 0b011 } else { seg.pp_at(page) };
        let (r, w) = model_rights(pp, m.unpriv);
        if (store && !w) || (!store && !r) {
            return Err(VmFaultReason::Protection);
        }
        Ok(*seg.data.get(&page).unwrap_or(&0))
    }

    fn refs(&self, sid: Sid) -> usize {
        self.procs
            .iter()
            .flat_map(|p| p.maps.values())
            .filter(|m| m.seg == sid)
            .count()
    }

    /// Drops pending segments nothing keeps any more.
    fn collect(&mut self) {
        let dead: Vec<Sid> = self
            .segs
            .iter()
            .filter(|(s, g)| (g.pending || g.orphaned) && g.holds == 0 && self.refs(**s) == 0)
            .map(|(s, _)| *s)
            .collect();
        for s in dead {
            self.segs.remove(&s);
        }
    }

    fn revoke(&mut self, sid: Sid) {
        for p in &mut self.procs {
            p.maps.retain(|_, m| m.seg != sid);
        }
    }

    fn unmap(&mut self, proc: usize, esid: u64) -> Option<MMap> {
        let m = self.procs[proc].maps.remove(&esid)?;
        if m.owned {
            if let Some(s) = self.segs.get_mut(&m.seg) {
                s.orphaned = true;
            }
        }
        self.collect();
        Some(m)
    }
}

fn options(m: &MMap) -> MapOptions {
    let mut o = MapOptions::new(if m.unpriv {
        SegKey::UNPRIV
    } else {
        SegKey::PRIV
    });
    o.window = m.window.clone();
    if m.ro_view {
        o.view_prot = ViewProt::Fixed(PageProt {
            pp: Pp::RO_RO,
            no_exec: false,
        });
    }
    o.fork = m.fork;
    o.owned = m.owned;
    o
}

fn run_op(env: &mut Env, model: &mut Model, op: &Op) {
    match *op {
        Op::Spawn => {
            if model.procs.len() < MAX_PROCS {
                let id = env.vmm.create_space();
                model.procs.push(MProc {
                    id,
                    maps: BTreeMap::new(),
                });
            }
        }
        Op::CreateSeg { pp, small } => {
            if model.segs.len() >= MAX_SEGS {
                return;
            }
            let size = if small { SMALL_PAGES } else { 1 << 16 };
            let prot = PageProt {
                pp: pp_of(pp),
                no_exec: false,
            };
            let sid = env
                .vmm
                .create_segment(SidKind::User, u64::from(size) << 12, prot)
                .unwrap();
            model.segs.insert(
                sid,
                MSeg {
                    sid,
                    size,
                    default_pp: pp,
                    pp: BTreeMap::new(),
                    data: BTreeMap::new(),
                    pending: false,
                    orphaned: false,
                    holds: 0,
                },
            );
        }
        Op::Map {
            proc,
            esid,
            seg,
            unpriv,
            window,
            ro_view,
            fork,
            owned,
        } => {
            let (Some(p), Some(sid)) = (model.proc_at(proc), model.seg_at(seg)) else {
                return;
            };
            let size = model.segs[&sid].size;
            let m = MMap {
                seg: sid,
                unpriv,
                window: window.then(|| {
                    if size > 1 {
                        1..size.min(page_no(10))
                    } else {
                        0..1
                    }
                }),
                ro_view,
                fork: [ForkAction::Share, ForkAction::Copy, ForkAction::Drop][fork as usize],
                owned,
            };
            let r = env.vmm.map(
                SpaceRef::User(model.procs[p].id),
                Esid::new(esid),
                sid,
                options(&m),
            );
            // A segment waiting for deletion still maps.
            let ok = !model.procs[p].maps.contains_key(&esid);
            assert_eq!(r.is_ok(), ok, "map {op:?}: {r:?}");
            if ok {
                assert_eq!(r.unwrap().sid(), sid);
                model.procs[p].maps.insert(esid, m);
            }
        }
        Op::Unmap { proc, esid } => {
            let Some(p) = model.proc_at(proc) else { return };
            let r = env
                .vmm
                .unmap(SpaceRef::User(model.procs[p].id), Esid::new(esid));
            let m = model.unmap(p, esid);
            assert_eq!(r.is_ok(), m.is_some(), "unmap {op:?}: {r:?}");
        }
        Op::Store {
            proc,
            esid,
            page,
            value,
        } => {
            let Some(p) = model.proc_at(proc) else { return };
            env.vmm.switch_to(Some(model.procs[p].id)).unwrap();
            let want = model.expect(p, esid, page_no(page), true);
            let got = env.store(ea(esid, page_no(page), OFFSET), value, Privilege::Problem);
            assert_eq!(got, want.map(|_| ()), "{op:?}");
            if got.is_ok() {
                let sid = model.procs[p].maps[&esid].seg;
                model
                    .segs
                    .get_mut(&sid)
                    .unwrap()
                    .data
                    .insert(page_no(page), value);
            }
        }
        Op::Load { proc, esid, page } => {
            let Some(p) = model.proc_at(proc) else { return };
            env.vmm.switch_to(Some(model.procs[p].id)).unwrap();
            let want = model.expect(p, esid, page_no(page), false);
            let got = env.load(ea(esid, page_no(page), OFFSET), Privilege::Problem);
            assert_eq!(got, want, "{op:?}");
        }
        Op::KernelSegment => {
            let prot = PageProt {
                pp: Pp::RW_RO,
                no_exec: true,
            };
            let sid = env
                .vmm
                .create_segment(SidKind::Kernel, 1 << 28, prot)
                .unwrap();
            let mut o = MapOptions::new(SegKey::KERNEL);
            o.view_prot = ViewProt::SupervisorOnly;
            env.vmm
                .map(SpaceRef::Kernel, Esid::new(KERNEL_ESID), sid, o)
                .unwrap();
            model.segs.insert(
                sid,
                MSeg {
                    sid,
                    size: 1 << 16,
                    default_pp: 0b001,
                    pp: BTreeMap::new(),
                    data: BTreeMap::new(),
                    pending: false,
                    orphaned: false,
                    holds: 0,
                },
            );
            model.kernel = Some(sid);
        }
        Op::KStore { page, value } => {
            let Some(k) = model.kernel else { return };
            env.store(
                ea(KERNEL_ESID, page_no(page), OFFSET),
                value,
                Privilege::Supervisor,
            )
            .unwrap();
            model
                .segs
                .get_mut(&k)
                .unwrap()
                .data
                .insert(page_no(page), value);
        }
        Op::GuAtt { proc, esid, unpriv } => {
            let (Some(p), Some(k)) = (model.proc_at(proc), model.kernel) else {
                return;
            };
            let m = MMap {
                seg: k,
                unpriv,
                window: Some(1..page_no(10)),
                ro_view: false,
                fork: ForkAction::Drop,
                owned: false,
            };
            let r = env.vmm.map(
                SpaceRef::User(model.procs[p].id),
                Esid::new(esid),
                k,
                options(&m),
            );
            let ok = !model.procs[p].maps.contains_key(&esid);
            assert_eq!(r.is_ok(), ok, "{op:?}: {r:?}");
            if ok {
                model.procs[p].maps.insert(esid, m);
            }
        }
        Op::Sweep {
            proc,
            esid,
            store,
            seed,
        } => {
            for page in 0..PAGES {
                let op = if store {
                    Op::Store {
                        proc,
                        esid,
                        page,
                        value: seed.wrapping_add(page as u8),
                    }
                } else {
                    Op::Load { proc, esid, page }
                };
                run_op(env, model, &op);
            }
        }
        Op::Fork { proc } => {
            let Some(p) = model.proc_at(proc) else { return };
            if model.procs.len() >= MAX_PROCS {
                return;
            }
            let parent = model.procs[p].clone();
            // Segments waiting for deletion are inherited like any other.
            let child = env.vmm.fork(parent.id).expect("fork");
            let mut maps = BTreeMap::new();
            for (&esid, m) in &parent.maps {
                let mut c = m.clone();
                match m.fork {
                    ForkAction::Drop => continue,
                    ForkAction::Share => c.owned = false,
                    ForkAction::Copy => {
                        let copy = env.vmm.space(child).unwrap().get(Esid::new(esid)).unwrap();
                        let new_sid = copy.handle.sid();
                        assert_ne!(new_sid, m.seg);
                        let mut s = model.segs[&m.seg].clone();
                        s.sid = new_sid;
                        s.pending = false;
                        s.orphaned = false;
                        s.holds = 0;
                        model.segs.insert(new_sid, s);
                        c.seg = new_sid;
                        c.owned = true;
                    }
                }
                maps.insert(esid, c);
            }
            let got: Vec<u64> = env
                .vmm
                .space(child)
                .unwrap()
                .iter()
                .map(|(e, _)| e.as_u64())
                .collect();
            assert_eq!(got, maps.keys().copied().collect::<Vec<_>>());
            model.procs.push(MProc { id: child, maps });
        }
        Op::Exit { proc } => {
            // Keep one process alive so there is something to run.
            let Some(p) = model.proc_at(proc).filter(|_| model.procs.len() > 1) else {
                return;
            };
            env.vmm.destroy_space(model.procs[p].id).unwrap();
            let esids: Vec<u64> = model.procs[p].maps.keys().copied().collect();
            for e in esids {
                model.unmap(p, e);
            }
            model.procs.remove(p);
            model.collect();
        }
        Op::Delete { seg } => {
            let Some(sid) = model.seg_at(seg) else { return };
            let r = env.vmm.delete_segment(sid);
            let s = model.segs.get_mut(&sid).unwrap();
            if s.pending {
                assert!(r.is_err(), "delete of a pending segment: {r:?}");
            } else if s.holds > 0 {
                assert_eq!(r, Ok(false));
                s.pending = true;
            } else {
                assert_eq!(r, Ok(true));
                model.revoke(sid);
                model.segs.remove(&sid);
                model.collect();
            }
        }
        Op::Protect { seg, page, pp } => {
            let Some(sid) = model.seg_at(seg) else { return };
            let pg = page_no(page);
            let r = env.vmm.protect(
                sid,
                pg..pg + 1,
                PageProt {
                    pp: pp_of(pp),
                    no_exec: false,
                },
            );
            let s = model.segs.get_mut(&sid).unwrap();
            assert_eq!(r.is_ok(), pg < s.size, "{op:?}: {r:?}");
            if pg < s.size {
                s.pp.insert(pg, pp);
            }
        }
        Op::Hold { seg } => {
            let Some(sid) = model.seg_at(seg) else { return };
            env.vmm.hold_segment(sid).unwrap();
            model.segs.get_mut(&sid).unwrap().holds += 1;
        }
        Op::Put { seg } => {
            let Some(sid) = model.seg_at(seg) else { return };
            let r = env.vmm.put_segment(sid);
            let refs = model.refs(sid);
            let s = model.segs.get_mut(&sid).unwrap();
            if s.holds == 0 {
                assert!(r.is_err(), "put without a hold: {r:?}");
                return;
            }
            s.holds -= 1;
            // The last put of a deleted segment revokes its mappings; an
            // orphan only goes if nothing maps it any more.
            let revoked = s.pending && s.holds == 0;
            let gone = revoked || (s.orphaned && s.holds == 0 && refs == 0);
            assert_eq!(r, Ok(gone));
            if revoked {
                model.revoke(sid);
            }
            if gone {
                model.segs.remove(&sid);
                model.collect();
            }
        }
    }
}

/// Nothing the MMU would translate for a process (with every mapped
/// segment in its SLB) goes beyond the model's rights, and nothing of the
/// kernel's half translates in problem state.
fn check_no_excess_rights(env: &mut Env, model: &Model) {
    for (p, proc) in model.procs.iter().enumerate() {
        env.vmm.switch_to(Some(proc.id)).unwrap();
        if model.kernel.is_some() {
            let base = EffectiveAddress::new(ea(KERNEL_ESID, 0, 0));
            let _ = env
                .vmm
                .handle(Interrupt::DataSegment { ea: base }, Privilege::Problem);
            for idx in 0..PAGES {
                let at = EffectiveAddress::new(ea(KERNEL_ESID, page_no(idx), OFFSET));
                for access in [Access::Load, Access::Store] {
                    assert!(
                        env.machine
                            .translate(at, access, Privilege::Problem)
                            .is_err(),
                        "problem state may {access:?} kernel page {idx}"
                    );
                }
            }
        }
        for esid in 0..ESIDS {
            let base = EffectiveAddress::new(ea(esid, 0, 0));
            // Load the SLB entry as a segment interrupt would.
            let _ = env
                .vmm
                .handle(Interrupt::DataSegment { ea: base }, Privilege::Problem);
            for idx in 0..PAGES {
                let page = page_no(idx);
                let at = EffectiveAddress::new(ea(esid, page, OFFSET));
                for (access, store) in [(Access::Load, false), (Access::Store, true)] {
                    if env
                        .machine
                        .translate(at, access, Privilege::Problem)
                        .is_ok()
                    {
                        assert!(
                            model.expect(p, esid, page, store).is_ok(),
                            "process {p} may {access:?} ESID {esid} page {page} beyond the model"
                        );
                    }
                }
            }
        }
    }
}

fn teardown(env: &mut Env, model: &mut Model) {
    model.kernel = None;
    for p in std::mem::take(&mut model.procs) {
        env.vmm.destroy_space(p.id).unwrap();
    }
    for (sid, s) in std::mem::take(&mut model.segs) {
        for _ in 0..s.holds {
            env.vmm.put_segment(sid).unwrap();
        }
        if env.vmm.segments().get(sid).is_ok() {
            env.vmm.delete_segment(sid).unwrap();
        }
    }
    env.vmm.check_invariants().unwrap();
    env.assert_empty();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_processes_match_the_model(
        setup in proptest::collection::vec(map_op(), 2..8),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let mut env = Env::new(2 << 20, 32);
        let mut model = Model::default();
        // Two processes, three user segments (user read-write, user
        // read-only, kernel-only pages) with some mappings to start from,
        // and a kernel segment mapped supervisor-only.
        let prologue = [
            Op::Spawn,
            Op::Spawn,
            Op::CreateSeg { pp: 0b010, small: false },
            Op::CreateSeg { pp: 0b001, small: false },
            Op::CreateSeg { pp: 0b000, small: false },
            Op::KernelSegment,
        ];
        for op in prologue.iter().chain(&setup).chain(&ops) {
            run_op(&mut env, &mut model, op);
            env.vmm.check_invariants().unwrap();
            assert_eq!(env.vmm.hptes_in_use(), env.machine.valid_hptes());
            assert_eq!(
                env.vmm.segments().iter().filter(|s| matches!(s.kind(), vmm::segment::SegmentKind::Working)).count(),
                model.segs.len(),
                "segment count after {op:?}"
            );
            check_no_excess_rights(&mut env, &model);
        }
        teardown(&mut env, &mut model);
    }
}
