//! A robustness driver of the project's own: long seeded random sequences
//! of all 21 AIX services, process create/fork/exit, switches between the
//! process, kernel-process and interrupt environments, mappings the kernel
//! makes itself through the [`Vmm`], and loads, stores and fetches through
//! the emulated MMU (page- and segment-crossing), on machines of several
//! sizes. Arguments are adversarial: stale, forged, freed and foreign
//! handles, vmids and `adspace_t` pointers; sizes 0, 1, huge and
//! `u64::MAX`; misaligned and top-of-space addresses.
//!
//! After every step:
//! * nothing panicked and [`Vmm::check_invariants`] holds;
//! * a refused call changed nothing (`aix_common::snap`: the services'
//!   bookkeeping and the core's segments, mappings, valid HPTEs, free
//!   frames and SIDs), and the refusal is the documented one where the
//!   arguments decide it;
//! * every access did what the driver predicted from the tables (which
//!   mapping, window, key × PP, no-execute, zero-fill allowed here, frames
//!   left), failing piece and reason included, and read what was stored;
//! * every store reads back through every alias of the page (every
//!   mapping of the segment in every address space, both privileges).
//!
//! At teardown everything is given back and frames, SIDs, HPTEs, segments
//! and mappings are as on the fresh machine.
//!
//! The default run (`cargo test -p vmm --test robustness`) runs every
//! machine variant with fixed seeds. The soak run and the replay of a
//! failure (the panic message names variant, seed and step) are the
//! ignored test `soak`, steered by environment variables (README):
//!
//! ```sh
//! VMM_SOAK_SEEDS=1000 cargo test --release -p vmm --test robustness -- --ignored
//! VMM_SOAK_VARIANT=few-frames VMM_SOAK_FIRST_SEED=17 VMM_SOAK_SEEDS=1 VMM_SOAK_TRACE=1 \
//!     cargo test -p vmm --test robustness -- --ignored --nocapture
//! ```

mod aix_common;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ffi::{c_int, c_long};
use std::fmt::Debug;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use aix_common::sim::{CappedHpt, SimHarness};
use aix_common::{snap, Harness, Rng};
use arch_ppc64::addr::{EffectiveAddress, Esid};
use arch_ppc64::structures::hpte::Pp;
use arch_ppc64::structures::{PageSize, SegmentSize};
use vmm::adspace::{ForkAction, SegKey};
use vmm::aix::*;
use vmm::platform::{
    Access, Environment, FrameAllocator, HptBackend, Privilege, ProcessId, VmFaultReason,
};
use vmm::segment::{PageProt, SegmentKind, ViewProt};
use vmm::sid::{Sid, SidKind};
use vmm::sim::{SimConfig, SimMemory, SimSlb};
use vmm::vm::{MapOptions, SpaceRef, Vmm, VmmConfig, KERNEL_ESID_BASE};

type TheVmm = Vmm<CappedHpt, SimSlb, SimMemory>;
type TheAix = Aix<CoreVm<CappedHpt, SimSlb, SimMemory>>;
type H = SimHarness<CappedHpt>;

const PAGE: u64 = 4096;

const SUP: Privilege = Privilege::Supervisor;
const USR: Privilege = Privilege::Problem;

// ---------------------------------------------------------------------
// Machine variants
// ---------------------------------------------------------------------

/// One machine and layout the driver runs on.
#[derive(Clone, Debug)]
struct Variant {
    name: &'static str,
    sim: SimConfig,
    /// Usable slots per PTEG (8: the whole table), and whether only the
    /// lower half of the PTEGs is usable ([`CappedHpt`]).
    hpt_slots: u8,
    hpt_half: bool,
    vmm: VmmConfig,
    aix: AixConfig,
    /// Steps of one default-run sequence.
    steps: usize,
    /// What the default run must have run into on this machine.
    pressure: &'static [Pressure],
}

/// A shortage a pressure variant exists to cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pressure {
    /// HPT entries evicted to make room.
    Evictions,
    /// Accesses refused for want of a frame.
    Frames,
    /// Services answering `ENOMEM` because the SID ranges ran out.
    Sids,
}

fn variants() -> Vec<Variant> {
    let roomy = Variant {
        name: "roomy",
        sim: SimConfig::default(),
        hpt_slots: 8,
        hpt_half: false,
        vmm: VmmConfig::new(2),
        aix: AixConfig {
            galloc_segments: 12,
            vm_att_slots: 4,
            ..AixConfig::default()
        },
        steps: 800,
        pressure: &[],
    };
    let few_frames = SimConfig {
        memory_bytes: 40 * PAGE as usize,
        ..SimConfig::default()
    };
    let slb2 = SimConfig {
        slb_size: 2,
        ..SimConfig::default()
    };
    let few_sids = VmmConfig {
        kernel_sids: 1..12,
        user_sids: 12..28,
        ..VmmConfig::new(2)
    };
    vec![
        roomy.clone(),
        // One slot in half of the PTEGs: 1024 entries, each page has
        // exactly one place, so inserts evict early and often.
        Variant {
            name: "small-hpt",
            hpt_slots: 1,
            hpt_half: true,
            pressure: &[Pressure::Evictions],
            ..roomy.clone()
        },
        // 40 frames: zero-fill and fork copies run out.
        Variant {
            name: "few-frames",
            sim: few_frames,
            pressure: &[Pressure::Frames],
            ..roomy.clone()
        },
        // Two SLB entries, none bolted (an access crossing a segment
        // boundary holds both at once): segment switches reload them all
        // the time.
        Variant {
            name: "slb-2",
            sim: slb2,
            vmm: VmmConfig::new(0),
            ..roomy.clone()
        },
        // 11 kernel and 16 user SIDs: SIDs run out and are recycled.
        Variant {
            name: "sid-recycling",
            vmm: few_sids.clone(),
            pressure: &[Pressure::Sids],
            ..roomy.clone()
        },
        // The galloc range and the vm_att window in the last ESIDs of the
        // address space: address arithmetic at the top must not overflow.
        Variant {
            name: "top-of-space",
            aix: AixConfig {
                galloc_base_esid: (1 << 36) - 12,
                galloc_segments: 12,
                vm_att_base_esid: (1 << 36) - 16,
                vm_att_slots: 4,
            },
            ..roomy.clone()
        },
        // All of the pressure at once.
        Variant {
            name: "everything-tight",
            sim: SimConfig {
                memory_bytes: 40 * PAGE as usize,
                slb_size: 2,
                ..SimConfig::default()
            },
            hpt_slots: 1,
            hpt_half: true,
            vmm: VmmConfig {
                slb_bolted: 0,
                ..few_sids
            },
            pressure: &[Pressure::Frames, Pressure::Sids],
            ..roomy
        },
    ]
}

// ---------------------------------------------------------------------
// Failure reports: variant, seed, step and the last operations
// ---------------------------------------------------------------------

struct Trace {
    variant: &'static str,
    seed: u64,
    step: usize,
    recent: VecDeque<String>,
    verbose: bool,
}

thread_local! {
    static TRACE: RefCell<Trace> = const {
        RefCell::new(Trace {
            variant: "",
            seed: 0,
            step: 0,
            recent: VecDeque::new(),
            verbose: false,
        })
    };
}

fn note(s: String) {
    TRACE.with(|t| {
        let mut t = t.borrow_mut();
        if t.verbose {
            println!("[{} seed {} step {}] {s}", t.variant, t.seed, t.step);
        }
        if t.recent.len() == 24 {
            t.recent.pop_front();
        }
        t.recent.push_back(s);
    });
}

/// Runs one sequence; on a panic prints how to replay it, then panics on.
fn run_one(v: &Variant, seed: u64, steps: usize) -> Stats {
    TRACE.with(|t| {
        let mut t = t.borrow_mut();
        t.variant = v.name;
        t.seed = seed;
        t.step = 0;
        t.recent.clear();
        t.verbose = std::env::var_os("VMM_SOAK_TRACE").is_some();
    });
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut d = Driver::new(v.clone(), seed);
        d.run(steps);
        d.stats
    }));
    match r {
        Ok(s) => s,
        Err(p) => {
            TRACE.with(|t| {
                let t = t.borrow();
                eprintln!(
                    "robustness: FAILED variant {} seed {} at step {} of {steps}",
                    t.variant, t.seed, t.step
                );
                eprintln!("  last operations, oldest first:");
                for s in &t.recent {
                    eprintln!("    {s}");
                }
                eprintln!(
                    "  replay: VMM_SOAK_VARIANT={} VMM_SOAK_FIRST_SEED={} VMM_SOAK_SEEDS=1 \
                     VMM_SOAK_STEPS={steps} VMM_SOAK_TRACE=1 \
                     cargo test -p vmm --test robustness -- --ignored --nocapture",
                    t.variant, t.seed
                );
            });
            resume_unwind(p)
        }
    }
}

/// Successes and refusals per operation, to check the sequences reach
/// every service both ways.
#[derive(Default, Debug)]
struct Stats {
    ops: BTreeMap<&'static str, (u32, u32)>,
    evictions: u64,
    cow_breaks: u64,
    cow_stores: u64,
    no_frames: u64,
    no_sids: u64,
    steps: usize,
}

impl Stats {
    fn add(&mut self, other: Stats) {
        for (k, (a, b)) in other.ops {
            let e = self.ops.entry(k).or_default();
            e.0 += a;
            e.1 += b;
        }
        self.evictions += other.evictions;
        self.cow_breaks += other.cow_breaks;
        self.cow_stores += other.cow_stores;
        self.no_frames += other.no_frames;
        self.no_sids += other.no_sids;
        self.steps += other.steps;
    }
}

/// Every service, process hook and access kind that must have succeeded
/// and been refused at least once over a variant's default seeds.
const COVERED: [&str; 27] = [
    "vm_galloc",
    "vm_gfree",
    "vm_guatt",
    "vm_gudet",
    "vm_att",
    "vm_det",
    "vm_handle",
    "vms_create",
    "vms_delete",
    "getadsp",
    "as_att",
    "as_det",
    "as_geth",
    "as_puth",
    "as_getsrval",
    "as_att64",
    "as_det64",
    "as_seth64",
    "as_geth64",
    "as_puth64",
    "as_getsrval64",
    "create_process",
    "fork",
    "exit",
    "load",
    "store",
    "fetch",
];

const DEFAULT_SEEDS: [u64; 2] = [1, 2];

fn default_run(name: &str) {
    let v = variants()
        .into_iter()
        .find(|v| v.name == name)
        .expect("variant");
    let mut total = Stats::default();
    for seed in DEFAULT_SEEDS {
        total.add(run_one(&v, seed, v.steps));
    }
    for op in COVERED {
        let (ok, refused) = total.ops.get(op).copied().unwrap_or_default();
        assert!(
            ok > 0 && refused > 0,
            "{name}: {op} succeeded {ok} and was refused {refused} times; both must happen: {:?}",
            total.ops
        );
    }
    // Forks share copied segments' frames; stores must have met shared
    // pages (and the invariants checked the counts all along), and
    // taken some apart again where frames were to be had.
    assert!(
        total.cow_stores > 0 && (total.cow_breaks > 0 || v.pressure.contains(&Pressure::Frames)),
        "{name}: stores met {} shared pages and broke {} sharings: {total:?}",
        total.cow_stores,
        total.cow_breaks
    );
    for p in v.pressure {
        let n = match p {
            Pressure::Evictions => total.evictions,
            Pressure::Frames => total.no_frames,
            Pressure::Sids => total.no_sids,
        };
        assert!(n > 0, "{name}: never ran into {p:?}: {total:?}");
    }
}

#[test]
fn roomy() {
    default_run("roomy");
}

#[test]
fn small_hpt() {
    default_run("small-hpt");
}

#[test]
fn few_frames() {
    default_run("few-frames");
}

#[test]
fn slb_2() {
    default_run("slb-2");
}

#[test]
fn sid_recycling() {
    default_run("sid-recycling");
}

#[test]
fn top_of_space() {
    default_run("top-of-space");
}

#[test]
fn everything_tight() {
    default_run("everything-tight");
}

/// The long run: `VMM_SOAK_SEEDS` seeds (default 100) from
/// `VMM_SOAK_FIRST_SEED` (default 1000) on every variant, or only
/// `VMM_SOAK_VARIANT`, `VMM_SOAK_STEPS` steps each (default 5000).
#[test]
#[ignore]
fn soak() {
    let var = |k: &str| std::env::var(k).ok();
    let num = |k: &str, d: u64| var(k).map_or(d, |s| s.parse().expect(k));
    let seeds = num("VMM_SOAK_SEEDS", 100);
    let first = num("VMM_SOAK_FIRST_SEED", 1000);
    let steps = num("VMM_SOAK_STEPS", 5000) as usize;
    let only = var("VMM_SOAK_VARIANT");
    let chosen: Vec<Variant> = variants()
        .into_iter()
        .filter(|v| only.as_deref().is_none_or(|o| o == v.name))
        .collect();
    assert!(!chosen.is_empty(), "no variant named {only:?}");
    for seed in first..first + seeds {
        for v in &chosen {
            run_one(v, seed, steps);
        }
    }
    println!(
        "soak: {} variant(s) x {seeds} seeds x {steps} steps passed",
        chosen.len()
    );
}

// ---------------------------------------------------------------------
// The driver
// ---------------------------------------------------------------------

/// A mapping the kernel made itself through the core.
#[derive(Clone, Debug)]
struct KernelMade {
    sid: Sid,
    space: SpaceRef,
    esid: Esid,
}

/// The test hooks armed when a call started.
#[derive(Clone, Copy, Debug)]
struct Hooks {
    fail_map: bool,
    sid_quota: bool,
}

struct Driver {
    h: H,
    rng: Rng,
    v: Variant,
    /// Live processes and their models.
    live: BTreeMap<u32, AddressModel>,
    dead: Vec<u32>,
    next_pid: u32,
    /// Argument pools: everything a call ever returned, live or stale.
    vmids: Vec<i64>,
    handles: Vec<u64>,
    addrs: Vec<u64>,
    allocs: Vec<(u64, i64)>,
    atts: Vec<(u32, u64, u64, i64)>,
    adsps: Vec<usize>,
    /// `as_geth`/`as_geth64` results: (context, address, handle).
    holds: Vec<(Space, u64, u64)>,
    /// `vms_create` segments not yet `vms_delete`d.
    vms: BTreeSet<u64>,
    /// `vm_att` slot ESID → the context that attached it.
    slots: BTreeMap<u64, Space>,
    /// Mappings the kernel made that are still its own.
    kmade: Vec<KernelMade>,
    /// Segments the kernel made that still exist, and whether their first
    /// mapping owned them.
    ksegs: Vec<(Sid, bool)>,
    /// What was stored, per working segment: byte offset → value. Bytes
    /// never stored read as zero.
    shadow: BTreeMap<u64, BTreeMap<u64, u8>>,
    fresh: aix_common::sim::CoreSnap,
    stats: Stats,
    /// `ENOMEM` for SIDs with no quota armed: the ranges ran out.
    no_sids: std::cell::Cell<u64>,
    /// Store pieces the tables sent to a page still shared copy-on-write.
    cow_stores: std::cell::Cell<u64>,
}

macro_rules! bug {
    ($($t:tt)*) => { panic!("robustness: {}", format!($($t)*)) };
}

fn round_to_page(size: i64) -> Option<u64> {
    if size <= 0 {
        return None;
    }
    Some((size as u64).div_ceil(PAGE) * PAGE)
}

/// Segments a positive `size` needs once rounded to pages, without
/// overflowing.
fn segments_for(size: i64) -> u128 {
    (size as u128)
        .div_ceil(u128::from(PAGE))
        .div_ceil(u128::from(SEGSIZE / PAGE))
}

/// What the services must do with a request to attach a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// Attach it (unless a resource runs out).
    Must,
    /// Either way: a segment orphaned by its owner, waiting for its last
    /// detach.
    May,
    /// Refuse.
    MustNot,
}

fn type_ok(t: c_int) -> bool {
    t & V_WORKING != 0 && t & !(V_WORKING | V_SYSTEM | V_UREAD | V_NOEXEC) == 0
}

/// The pieces an access of `len` bytes at `ea` is split into by the MMU:
/// (address, offset in the buffer, length), each inside one 4 KiB page.
fn pieces(ea: u64, len: usize) -> Vec<(u64, usize, usize)> {
    let mut v = Vec::new();
    let mut done = 0;
    while done < len {
        let here = ea.wrapping_add(done as u64);
        let n = (PAGE as usize - (here % PAGE) as usize).min(len - done);
        v.push((here, done, n));
        done += n;
    }
    v
}

fn is_reserved_sr(esid: u64) -> bool {
    matches!(esid, 0 | 1 | 2 | 14)
}

impl Driver {
    fn new(v: Variant, seed: u64) -> Self {
        let (slots, half) = (v.hpt_slots, v.hpt_half);
        let mut h = H::try_build(
            v.sim,
            |hpt| CappedHpt::new(hpt, slots, half),
            v.vmm.clone(),
            v.aix,
        )
        .expect("a valid layout");
        let fresh = h.core_snapshot();
        // `after_step` checks the invariants once per step.
        h.scan_on_snapshot = false;
        Driver {
            h,
            // Each variant its own sequences for the same seed.
            rng: Rng::new(
                seed ^ v
                    .name
                    .bytes()
                    .fold(0u64, |h, b| h.rotate_left(7) ^ u64::from(b)),
            ),
            v,
            live: BTreeMap::new(),
            dead: Vec::new(),
            next_pid: 1,
            vmids: Vec::new(),
            handles: Vec::new(),
            addrs: Vec::new(),
            allocs: Vec::new(),
            atts: Vec::new(),
            adsps: Vec::new(),
            holds: Vec::new(),
            vms: BTreeSet::new(),
            slots: BTreeMap::new(),
            kmade: Vec::new(),
            ksegs: Vec::new(),
            shadow: BTreeMap::new(),
            fresh,
            stats: Stats::default(),
            no_sids: std::cell::Cell::new(0),
            cow_stores: std::cell::Cell::new(0),
        }
    }

    // --- access to the parts -------------------------------------------

    fn aix(&self) -> &TheAix {
        &self.h.aix
    }
    fn vmm(&self) -> &TheVmm {
        self.h.aix.vm().vmm()
    }
    fn vmm_mut(&mut self) -> &mut TheVmm {
        self.h.aix.vm_mut().vmm_mut()
    }
    fn env(&self) -> Environment {
        self.vmm().environment()
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.rng.below(100) < percent
    }
    fn hooks(&self) -> Hooks {
        let core = self.aix().vm();
        Hooks {
            fail_map: core.fail_map_after().is_some(),
            sid_quota: core.sid_quota().is_some(),
        }
    }

    /// The context the process-only services act in: `None` in an
    /// interrupt or for a process the services do not know.
    fn proc_ctx(&self) -> Option<Space> {
        match self.env() {
            Environment::Interrupt => None,
            Environment::KernelProcess => Some(Space::Kernel),
            Environment::Process(p) => self.live.contains_key(&p.0).then_some(Space::Process(p)),
        }
    }

    /// The context `vm_att`/`vm_det` act in.
    fn cur_ctx(&self) -> Space {
        match self.env() {
            Environment::Process(p) if self.live.contains_key(&p.0) => Space::Process(p),
            Environment::Process(_) | Environment::KernelProcess => Space::Kernel,
            Environment::Interrupt => match self.aix().vm().active_space() {
                s @ Space::Process(p) if self.live.contains_key(&p.0) => s,
                _ => Space::Kernel,
            },
        }
    }

    fn model_of(&self, ctx: Space) -> AddressModel {
        match ctx {
            Space::Kernel => AddressModel::Bits32,
            Space::Process(p) => self.live[&p.0],
        }
    }

    fn addr_end(&self, ctx: Space) -> u64 {
        match self.model_of(ctx) {
            AddressModel::Bits64 => USER_ADDR_END_64,
            AddressModel::Bits32 => USER_ADDR_END_32,
        }
    }

    /// The context whose `adspace_t` copy is at `p`, if it is a live one.
    fn ctx_of_adsp(&self, p: usize) -> Option<Space> {
        let mut ctxs = vec![Space::Kernel];
        ctxs.extend(self.live.keys().map(|&p| Space::Process(ProcessId(p))));
        ctxs.into_iter().find(|&c| {
            self.aix()
                .adspace_of(c)
                .is_some_and(|a| std::ptr::eq(a, p as *const adspace_t))
        })
    }

    fn mapping(&self, ctx: Space, esid: u64) -> Option<MappingInfo> {
        Esid::try_new(esid).and_then(|e| self.aix().vm().mapping(ctx, e))
    }

    fn galloc_sids(&self) -> BTreeSet<u64> {
        self.aix()
            .allocations()
            .flat_map(|a| a.sids.iter().map(|s| s.as_u64()))
            .collect()
    }

    /// The core's record of segment `sid`, if it is a valid SID.
    fn seg(&self, sid: u64) -> Option<SegmentInfo> {
        Sid::try_new(sid).and_then(|s| self.aix().vm().segment(s))
    }

    /// Whether the services must let the segment of handle `h` be
    /// attached (`vm_att`, and with `user` where a process can reach it:
    /// not global memory). A segment `vms_delete`d while held stays fully
    /// usable until the last put, so it must still attach.
    fn attach_rule(&self, h: u64, user: bool) -> Rule {
        let Some(sid) = Self::handle_sid(h) else {
            return Rule::MustNot;
        };
        match self.seg(sid) {
            _ if user && self.galloc_sids().contains(&sid) => Rule::MustNot,
            None => Rule::MustNot,
            Some(i) if !i.delete_pending || i.holds > 0 => Rule::Must,
            Some(_) => Rule::May,
        }
    }

    fn handle_sid(h: u64) -> Option<u64> {
        VmHandle::from_raw(h).ok().map(|h| h.sid())
    }

    /// Whether an `ENOMEM` for `s` is explained: an armed hook, or a
    /// resource that may really have run out on this machine.
    fn shortage_ok(&self, s: Shortage, hooks: Hooks) -> bool {
        match s {
            Shortage::Metadata => hooks.fail_map,
            Shortage::Sids if hooks.sid_quota => true,
            Shortage::Sids => {
                self.no_sids.set(self.no_sids.get() + 1);
                self.v.vmm.user_sids.end - self.v.vmm.user_sids.start < 1000
            }
            Shortage::Frames => true,
            Shortage::Regions => true,
        }
    }

    fn record<T: Copy>(pool: &mut Vec<T>, x: T) {
        if pool.len() == 48 {
            pool.remove(0);
        }
        pool.push(x);
    }

    /// Runs a service, checks that a refusal changed nothing, counts it.
    fn call<T: Debug, E: Debug>(
        &mut self,
        name: &'static str,
        args: String,
        f: impl FnOnce(&mut TheAix) -> Result<T, E>,
    ) -> Result<T, E> {
        let before = snap(&self.h);
        let r = f(self.h.aix());
        note(format!("{name}({args}) -> {r:?}"));
        let e = self.stats.ops.entry(name).or_default();
        match &r {
            Ok(_) => e.0 += 1,
            Err(err) => {
                e.1 += 1;
                if snap(&self.h) != before {
                    bug!("{name}({args}) was refused with {err:?} but changed state");
                }
            }
        }
        r
    }

    // --- the run ---------------------------------------------------------

    fn run(&mut self, steps: usize) {
        self.create_process_op(true);
        for step in 0..steps {
            TRACE.with(|t| t.borrow_mut().step = step);
            self.step();
            self.after_step(step);
        }
        TRACE.with(|t| t.borrow_mut().step = steps);
        self.stats.evictions = self.vmm().counters().evictions;
        self.stats.cow_breaks = self.vmm().counters().cow_breaks;
        self.stats.cow_stores = self.cow_stores.get();
        self.stats.no_sids = self.no_sids.get();
        self.stats.steps = steps;
        self.teardown();
    }

    fn step(&mut self) {
        if self.live.is_empty() || (self.live.len() < 2 && self.chance(10)) {
            return self.create_process_op(true);
        }
        match self.rng.below(1000) {
            0..=49 => self.env_op(),
            50..=69 => self.create_process_op(false),
            70..=84 => self.fork_op(),
            85..=97 => self.exit_op(),
            98..=129 => self.kernel_map_op(),
            130..=159 => self.kernel_other_op(),
            160..=179 => self.hooks_op(),
            180..=219 => self.burst_op(),
            220..=449 => self.access_op(),
            _ => self.service_op(),
        }
    }

    fn after_step(&mut self, step: usize) {
        if let Err(e) = self.vmm().check_invariants() {
            bug!("invariant broken: {e:?}");
        }
        let segs: BTreeSet<u64> = self
            .vmm()
            .segments()
            .iter()
            .filter(|s| s.kind() == &SegmentKind::Working)
            .map(|s| s.sid().as_u64())
            .collect();
        self.shadow.retain(|s, _| segs.contains(s));
        let kernel_slots: BTreeSet<u64> = self
            .vmm()
            .kernel_space()
            .iter()
            .map(|(e, _)| e.as_u64())
            .collect();
        self.slots.retain(|e, _| kernel_slots.contains(e));
        let vmm = self.h.aix.vm().vmm();
        self.kmade.retain(|k| {
            vmm.mapping(k.space, k.esid)
                .is_ok_and(|m| m.handle.sid() == k.sid)
        });
        self.ksegs.retain(|k| vmm.segments().get(k.0).is_ok());
        if self.aix().vm().sid_quota().is_some() && self.chance(10) {
            self.h.aix.vm_mut().set_sid_quota(None);
            note("hooks: sid_quota lifted".into());
        }
        if step % 40 == 39 {
            self.sweep();
        }
    }

    // --- environments and processes ------------------------------------

    fn set_env(&mut self, env: Environment) {
        note(format!("set_env {env:?}"));
        self.h.set_env(env);
    }

    fn env_op(&mut self) {
        let env = match self.rng.below(40) {
            0..=25 => {
                let pids: Vec<u32> = self.live.keys().copied().collect();
                Environment::Process(ProcessId(self.rng.pick(&pids).unwrap_or(1)))
            }
            26 | 27 => {
                let p = self.rng.pick(&self.dead).unwrap_or(999);
                Environment::Process(ProcessId(p))
            }
            28..=32 => Environment::KernelProcess,
            _ => Environment::Interrupt,
        };
        self.set_env(env);
    }

    fn pick_pid(&mut self, fresh: bool) -> u32 {
        if fresh || self.chance(40) {
            self.next_pid += 1;
            return self.next_pid - 1;
        }
        let live: Vec<u32> = self.live.keys().copied().collect();
        match self.rng.below(3) {
            0 => self.rng.pick(&live).unwrap_or(7),
            1 => self.rng.pick(&self.dead).unwrap_or(7),
            _ => 1000 + self.rng.below(3) as u32,
        }
    }

    fn create_process_op(&mut self, fresh: bool) {
        if self.live.len() >= 6 && !fresh {
            return self.exit_op();
        }
        let pid = self.pick_pid(fresh);
        let live: Vec<u32> = self.live.keys().copied().collect();
        let pid = match self.rng.pick(&live) {
            Some(p) if !fresh && self.chance(25) => p,
            _ => pid,
        };
        let model = if self.chance(70) {
            AddressModel::Bits64
        } else {
            AddressModel::Bits32
        };
        let r = self.call("create_process", format!("{pid}, {model:?}"), |a| {
            a.create_process(ProcessId(pid), model)
        });
        match r {
            Ok(()) => {
                if self.live.contains_key(&pid) {
                    bug!("create_process of live pid {pid} succeeded");
                }
                self.live.insert(pid, model);
                self.dead.retain(|&d| d != pid);
                if self.chance(60) {
                    self.private_segment(pid);
                }
                if fresh || self.chance(50) {
                    self.set_env(Environment::Process(ProcessId(pid)));
                }
            }
            Err(e) => {
                if !self.live.contains_key(&pid) {
                    bug!("create_process of new pid {pid} refused: {e:?}");
                }
            }
        }
    }

    fn fork_op(&mut self) {
        let live: Vec<u32> = self.live.keys().copied().collect();
        let parent = if self.chance(80) {
            self.rng.pick(&live).unwrap_or(1)
        } else {
            self.pick_pid(false)
        };
        let fresh = self.chance(75);
        let child = self.pick_pid(fresh);
        // Pages touched before a fork are what it shares copy-on-write.
        if self.live.contains_key(&parent) && self.chance(75) {
            self.copy_burst(parent);
        }
        let parent_maps = self.space_mappings(Space::Process(ProcessId(parent)));
        let frames = self.vmm().frames().free_frames();
        let r = self.call("fork", format!("{parent} -> {child}"), |a| {
            a.fork(ProcessId(parent), ProcessId(child))
        });
        let parent_live = self.live.contains_key(&parent);
        let child_live = self.live.contains_key(&child);
        match r {
            Ok(()) => {
                if !parent_live || child_live {
                    bug!("fork {parent} -> {child} succeeded (parent live {parent_live}, child live {child_live})");
                }
                let model = self.live[&parent];
                self.live.insert(child, model);
                self.dead.retain(|&d| d != child);
                self.check_fork(parent, child, &parent_maps);
                // A store on either side takes a shared page apart; the
                // other side must keep its data.
                for pid in [child, parent] {
                    if self.chance(60) {
                        self.copy_burst(pid);
                    }
                }
            }
            Err(ProcessError::Core(CoreError::Shortage(s))) if parent_live && !child_live => {
                let explained = match s {
                    Shortage::Frames => frames < 64,
                    Shortage::Sids => self.shortage_ok(s, self.hooks()),
                    _ => false,
                };
                if !explained {
                    bug!("fork {parent} -> {child} refused for {s:?}");
                }
            }
            Err(e) => {
                if parent_live && !child_live {
                    bug!("fork {parent} -> {child} refused: {e:?}");
                }
            }
        }
    }

    /// A burst of accesses in process `pid` (made the running one) to one
    /// of its mappings that fork copies, if it has any.
    fn copy_burst(&mut self, pid: u32) {
        let copied: Vec<(u64, u32, u32)> = self
            .space_mappings(Space::Process(ProcessId(pid)))
            .into_iter()
            .filter(|(_, m)| m.fork == ForkAction::Copy)
            .map(|(e, m)| {
                let size = self
                    .vmm()
                    .segments()
                    .get(m.handle.sid())
                    .map_or(1, |s| s.size_pages());
                let w = m.window.clone().unwrap_or(0..size);
                // Large segments: the first pages, so bursts meet again.
                (e, w.start, w.end.min(w.start + 16))
            })
            .collect();
        let Some((esid, lo, hi)) = self.rng.pick(&copied) else {
            return;
        };
        self.set_env(Environment::Process(ProcessId(pid)));
        let pr = if self.chance(70) { USR } else { SUP };
        let n = 4 + self.rng.below(12);
        self.burst_at(esid, lo, hi, n, pr);
    }

    /// Every mapping of `space` in the core: (ESID, info).
    fn space_mappings(&self, space: Space) -> Vec<(u64, vmm::adspace::SegmentMapping)> {
        let Some(id) = self.aix().vm().space_id(space) else {
            return Vec::new();
        };
        match self.vmm().space(id) {
            Ok(a) => a.iter().map(|(e, m)| (e.as_u64(), m.clone())).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The child has the parent's shared mappings, a copy of the copied
    /// ones (same data), none of the dropped ones, and nothing else; the
    /// parent kept all of its own.
    fn check_fork(
        &mut self,
        parent: u32,
        child: u32,
        before: &[(u64, vmm::adspace::SegmentMapping)],
    ) {
        let after = self.space_mappings(Space::Process(ProcessId(parent)));
        if after
            .iter()
            .map(|(e, m)| (e, m.handle))
            .ne(before.iter().map(|(e, m)| (e, m.handle)))
        {
            bug!("fork changed the parent's mappings: {before:?} -> {after:?}");
        }
        let kids: BTreeMap<u64, vmm::adspace::SegmentMapping> = self
            .space_mappings(Space::Process(ProcessId(child)))
            .into_iter()
            .collect();
        let mut expected = 0;
        for (esid, m) in before {
            let k = kids.get(esid);
            match (m.fork, k) {
                (ForkAction::Drop, None) => {}
                (ForkAction::Share, Some(k)) if k.handle == m.handle && k.window == m.window => {}
                (ForkAction::Copy, Some(k))
                    if k.handle.sid() != m.handle.sid()
                        && k.handle.key() == m.handle.key()
                        && k.window == m.window =>
                {
                    let data = self.shadow.get(&m.handle.sid().as_u64()).cloned();
                    if let Some(d) = data {
                        self.shadow.insert(k.handle.sid().as_u64(), d);
                    }
                }
                _ => bug!("fork: ESID {esid:#x} {m:?} became {k:?} in the child"),
            }
            expected += usize::from(m.fork != ForkAction::Drop);
        }
        if kids.len() != expected {
            bug!(
                "fork: the child has {} mappings, expected {expected}: {kids:?}",
                kids.len()
            );
        }
        // Neither vm_guatt attachments nor holds are inherited.
        let c = ProcessId(child);
        if !self.aix().attachments(c).is_empty() || !self.aix().holds(Space::Process(c)).is_empty()
        {
            bug!("fork: the child inherited attachments or holds");
        }
    }

    fn exit_op(&mut self) {
        let live: Vec<u32> = self.live.keys().copied().collect();
        let pid = if self.chance(70) {
            self.rng.pick(&live).unwrap_or(1)
        } else {
            self.pick_pid(false)
        };
        let r = self.call("exit", format!("{pid}"), |a| a.exit(ProcessId(pid)));
        let was_live = self.live.contains_key(&pid);
        match r {
            Ok(()) => {
                if !was_live {
                    bug!("exit of unknown pid {pid} succeeded");
                }
                self.live.remove(&pid);
                self.dead.push(pid);
                if self
                    .aix()
                    .vm()
                    .space_id(Space::Process(ProcessId(pid)))
                    .is_some()
                    || self.aix().model(ProcessId(pid)).is_some()
                {
                    bug!("exit {pid}: its address space or context is still there");
                }
            }
            Err(e) => {
                if was_live {
                    bug!("exit of live pid {pid} refused: {e:?}");
                }
            }
        }
    }

    // --- test hooks -----------------------------------------------------

    /// Arms a failure of one of the next map calls, or a SID quota just
    /// above what is in use; a quota is lifted again after a few steps
    /// (`after_step`).
    fn hooks_op(&mut self) {
        let n = self.rng.below(3) as u32;
        let q = self.vmm().sids_in_use() + self.rng.below(4) as usize;
        let core = self.h.aix.vm_mut();
        match self.rng.below(3) {
            0 => core.set_fail_map_after(Some(n)),
            1 => core.set_sid_quota(Some(q)),
            _ => core.set_fail_map_after(None),
        }
        let core = self.h.aix.vm();
        note(format!(
            "hooks: fail_map_after {:?}, sid_quota {:?}",
            core.fail_map_after(),
            core.sid_quota()
        ));
    }

    // --- kernel-made mappings --------------------------------------------

    fn pick_prot(&mut self) -> PageProt {
        let pp =
            [Pp::RW_NONE, Pp::RW_RO, Pp::RW_RW, Pp::RO_RO, Pp::RO_NONE][self.rng.below(5) as usize];
        PageProt {
            pp,
            no_exec: self.chance(30),
        }
    }

    /// The kernel makes a segment and maps it: into a process (exec-style,
    /// owned by the mapping, maybe copied on fork), a kernel process's
    /// registers, or the kernel half (maybe bolted).
    fn kernel_map_op(&mut self) {
        let pages = match self.rng.below(10) {
            0 => 1 + self.rng.below(65536),
            _ => 1 + self.rng.below(24),
        };
        let prot = self.pick_prot();
        let live: Vec<u32> = self.live.keys().copied().collect();
        let (space, kind, esid) = match self.rng.below(10) {
            0..=5 => {
                let pid = self.rng.pick(&live).unwrap_or(1);
                let Some(id) = self.aix().vm().space_id(Space::Process(ProcessId(pid))) else {
                    return;
                };
                let esid = match self.rng.below(4) {
                    0 => self.rng.below(16),
                    1 => SHMAT_BASE_ESID + self.rng.below(4),
                    2 => self.rng.below(0x40),
                    _ => self.rng.below(KERNEL_ESID_BASE + 2),
                };
                (SpaceRef::User(id), SidKind::User, esid)
            }
            6 | 7 => {
                let id = self.aix().vm().space_id(Space::Kernel).unwrap();
                (SpaceRef::User(id), SidKind::Kernel, self.rng.below(16))
            }
            _ => {
                let esid = match self.rng.below(3) {
                    0 => KERNEL_ESID_BASE + self.rng.below(4),
                    1 => self.v.aix.galloc_base_esid + self.rng.below(3) - 1,
                    _ => (1 << 36) - 1 - self.rng.below(12),
                };
                (SpaceRef::Kernel, SidKind::Kernel, esid)
            }
        };
        let kernel_half = space == SpaceRef::Kernel;
        let mut o = MapOptions::new(
            [SegKey::PRIV, SegKey::UNPRIV, SegKey::KERNEL][self.rng.below(3) as usize],
        );
        o.no_exec = self.chance(30);
        o.fork =
            [ForkAction::Share, ForkAction::Copy, ForkAction::Drop][self.rng.below(3) as usize];
        if self.chance(25) {
            let a = self.rng.below(pages + 1) as u32;
            let b = self.rng.below(pages + 2) as u32;
            o.window = Some(a..b);
        }
        o.view_prot = match self.rng.below(8) {
            0 => ViewProt::SupervisorOnly,
            1 => ViewProt::Fixed(self.pick_prot()),
            _ => ViewProt::Segment,
        };
        o.bolted = kernel_half && self.chance(30);
        o.owned = !kernel_half && self.chance(70);
        let before = snap(&self.h);
        let created = self.vmm_mut().create_segment(kind, pages * PAGE, prot);
        let sid = match created {
            Ok(s) => s,
            Err(e) => {
                note(format!(
                    "kernel create_segment({kind:?}, {pages} pages) -> {e:?}"
                ));
                if snap(&self.h) != before {
                    bug!("refused create_segment changed state");
                }
                return;
            }
        };
        let r = self.vmm_mut().map(space, Esid::new(esid), sid, o.clone());
        note(format!(
            "kernel map {sid:?} ({pages} pages, {prot:?}) at {space:?}:{esid:#x} {o:?} -> {r:?}"
        ));
        match r {
            Ok(_) => {
                self.kmade.push(KernelMade {
                    sid,
                    space,
                    esid: Esid::new(esid),
                });
                self.ksegs.push((sid, o.owned));
            }
            Err(_) => {
                if self.vmm_mut().delete_segment(sid) != Ok(true) {
                    bug!("deleting a fresh unmapped segment failed");
                }
                if snap(&self.h) != before {
                    bug!("a refused kernel map and the delete of its segment left state behind");
                }
            }
        }
    }

    /// The kernel gives process `pid` a private data segment of its own,
    /// as an exec would: user read-write, copied on fork, owned by the
    /// mapping (so its exit deletes it).
    fn private_segment(&mut self, pid: u32) {
        let Some(id) = self.aix().vm().space_id(Space::Process(ProcessId(pid))) else {
            return;
        };
        let esid = 1 + self.rng.below(15);
        if self
            .vmm()
            .mapping(SpaceRef::User(id), Esid::new(esid))
            .is_ok()
        {
            return;
        }
        let pages = 1 + self.rng.below(8);
        let Ok(sid) = self
            .vmm_mut()
            .create_segment(SidKind::User, pages * PAGE, PageProt::USER_RW)
        else {
            return;
        };
        let mut o = MapOptions::new(SegKey {
            ks: false,
            kp: true,
        });
        o.no_exec = true;
        o.fork = ForkAction::Copy;
        o.owned = true;
        let space = SpaceRef::User(id);
        let r = self.vmm_mut().map(space, Esid::new(esid), sid, o);
        note(format!(
            "kernel private segment {sid:?} ({pages} pages) for {pid} at {esid:#x} -> {r:?}"
        ));
        match r {
            Ok(_) => {
                self.kmade.push(KernelMade {
                    sid,
                    space,
                    esid: Esid::new(esid),
                });
                self.ksegs.push((sid, true));
            }
            Err(_) => {
                if self.vmm_mut().delete_segment(sid) != Ok(true) {
                    bug!("deleting a fresh unmapped segment failed");
                }
            }
        }
    }

    /// The kernel unmaps, re-protects or deletes one of its own.
    fn kernel_other_op(&mut self) {
        let op = self.rng.below(3);
        let (k, seg) = match (self.rng.pick(&self.kmade), self.rng.pick(&self.ksegs)) {
            (Some(k), Some(seg)) => (k, seg),
            _ => return,
        };
        let before = snap(&self.h);
        match op {
            0 => {
                let still = self
                    .vmm()
                    .mapping(k.space, k.esid)
                    .is_ok_and(|m| m.handle.sid() == k.sid);
                // Only its own: what the services mapped there since is
                // theirs to take down.
                if !still {
                    return;
                }
                let r = self.vmm_mut().unmap(k.space, k.esid);
                note(format!(
                    "kernel unmap {:?}:{:#x} -> {:?}",
                    k.space,
                    k.esid.as_u64(),
                    r.as_ref().map(|m| m.handle)
                ));
                if let Err(e) = r {
                    bug!("kernel unmap refused: {e:?}");
                }
            }
            1 => {
                // Its own segments mostly; sometimes any working segment
                // (the kernel re-protecting pages of an object or of
                // global memory), which views and forks must follow.
                let seg = if self.chance(30) {
                    let all: Vec<Sid> = self
                        .vmm()
                        .segments()
                        .iter()
                        .filter(|s| s.kind() == &SegmentKind::Working)
                        .map(|s| s.sid())
                        .collect();
                    (self.rng.pick(&all).unwrap_or(seg.0), false)
                } else {
                    seg
                };
                let size = self
                    .vmm()
                    .segments()
                    .get(seg.0)
                    .map_or(1, |s| s.size_pages());
                let a = self.rng.below(u64::from(size) + 1) as u32;
                let b = a + self.rng.below(4) as u32;
                let prot = self.pick_prot();
                let r = self.vmm_mut().protect(seg.0, a..b, prot);
                note(format!(
                    "kernel protect {:?} pages {a}..{b} {prot:?} -> {r:?}",
                    seg.0
                ));
                if r.is_err() && snap(&self.h) != before {
                    bug!("refused protect changed state");
                }
            }
            _ => {
                // Only segments no service knows of: the services keep
                // their own records of the mappings they made.
                let theirs = self.vmm().mappings_of(seg.0).into_iter().any(|(s, e)| {
                    !self
                        .kmade
                        .iter()
                        .any(|m| m.space == s && m.esid == e && m.sid == seg.0)
                });
                if theirs || seg.1 {
                    return;
                }
                let r = self.vmm_mut().delete_segment(seg.0);
                note(format!("kernel delete {:?} -> {r:?}", seg.0));
                if r.is_err() && snap(&self.h) != before {
                    bug!("refused delete changed state");
                }
            }
        }
    }

    // --- argument pickers -------------------------------------------------

    fn pick_size(&mut self) -> i64 {
        const EDGE: [i64; 16] = [
            0,
            1,
            4095,
            4096,
            4097,
            8192,
            SEGSIZE as i64 - 1,
            SEGSIZE as i64,
            SEGSIZE as i64 + 1,
            3 * SEGSIZE as i64,
            i64::MAX,
            0x7fff_ffff_ffff_f000,
            i64::MAX - 4096,
            -1,
            -4096,
            i64::MIN,
        ];
        match self.rng.below(10) {
            0..=2 => EDGE[self.rng.below(EDGE.len() as u64) as usize],
            3..=8 => 1 + self.rng.below(6 * PAGE) as i64,
            _ => 1 + self.rng.below(2 * SEGSIZE) as i64,
        }
    }

    fn pick_type(&mut self) -> c_int {
        const GOOD: [c_int; 5] = [
            V_WORKING,
            V_WORKING | V_UREAD,
            V_WORKING | V_NOEXEC,
            V_WORKING | V_SYSTEM | V_UREAD,
            V_WORKING | V_UREAD | V_NOEXEC,
        ];
        const BAD: [c_int; 5] = [0, V_UREAD, V_WORKING | 0x4, -1, V_WORKING | 0x100];
        if self.chance(88) {
            GOOD[self.rng.below(5) as usize]
        } else {
            BAD[self.rng.below(5) as usize]
        }
    }

    fn pick_vmid(&mut self) -> i64 {
        match self.rng.below(24) {
            20..=23 => {
                let live: Vec<u64> = self.vms.iter().copied().collect();
                self.rng.pick(&live).unwrap_or(1) as i64
            }
            0..=10 => self.rng.pick(&self.vmids).unwrap_or(1 << 20),
            11..=13 => {
                let g: Vec<u64> = self.galloc_sids().into_iter().collect();
                self.rng.pick(&g).unwrap_or(1) as i64
            }
            14 | 15 => {
                let k: Vec<u64> = self.ksegs.iter().map(|k| k.0.as_u64()).collect();
                self.rng.pick(&k).unwrap_or(2) as i64
            }
            _ => [
                0,
                -1,
                1,
                INVLSID as i64,
                INVLSID as i64 - 1,
                (self.rng.next() & INVLSID) as i64,
                self.rng.next() as i64,
                i64::MIN,
            ][self.rng.below(8) as usize],
        }
    }

    fn pick_key(&mut self) -> c_long {
        match self.rng.below(20) {
            0..=8 => VM_PRIV as c_long,
            9..=17 => VM_UNPRIV as c_long,
            18 => 2,
            _ => [-1, c_long::MAX, c_long::MIN][self.rng.below(3) as usize],
        }
    }

    fn pick_flags(&mut self) -> c_long {
        if self.chance(88) {
            VU_ANYWHERE
        } else {
            [0, 1, 3, -1][self.rng.below(4) as usize]
        }
    }

    fn pick_handle(&mut self) -> u64 {
        match self.rng.below(26) {
            20..=25 => {
                // A segment that may be attached: a live object or one the
                // kernel made, with either key.
                let mut ok: Vec<u64> = self.vms.iter().copied().collect();
                ok.extend(self.ksegs.iter().map(|k| k.0.as_u64()));
                let sid = self.rng.pick(&ok).unwrap_or(1 << 20);
                let key = [0, VmHandle::KS | VmHandle::KP, VmHandle::KP, VmHandle::N]
                    [self.rng.below(4) as usize];
                (sid << 12) | key
            }
            0..=6 => self.rng.pick(&self.handles).unwrap_or(0),
            7..=11 => {
                let v = self.pick_vmid();
                let k = self.rng.below(2) as c_long;
                vm_handle(v, k).map_or(0, |h| h.raw())
            }
            12 | 13 => {
                let h = self.rng.pick(&self.handles).unwrap_or(1 << 32);
                match self.rng.below(4) {
                    0 => h | 0x200,
                    1 => h | (1 + self.rng.below(0x1FF)),
                    2 => h.wrapping_add(1 << 12),
                    _ => h.wrapping_sub(1 << 12),
                }
            }
            14 | 15 => {
                // Any segment, views included, with any key.
                let all: Vec<u64> = self
                    .vmm()
                    .segments()
                    .iter()
                    .map(|s| s.sid().as_u64())
                    .collect();
                let sid = self.rng.pick(&all).unwrap_or(3);
                (sid << 12) | (self.rng.below(8) << 9)
            }
            _ => [
                0,
                u64::MAX,
                INVLSID << 12,
                INVLSID,
                self.rng.next(),
                1 << 12,
            ][self.rng.below(6) as usize],
        }
    }

    fn pick_addr(&mut self) -> u64 {
        match self.rng.below(20) {
            0..=11 => {
                let a = self.rng.pick(&self.addrs).unwrap_or(SHMAT_BASE_ESID << 28);
                let d = [
                    0,
                    0,
                    self.rng.below(PAGE),
                    PAGE - 1,
                    SEGSIZE - 1,
                    SEGSIZE,
                    u64::MAX,
                    self.rng.below(SEGSIZE),
                ][self.rng.below(8) as usize];
                a.wrapping_add(d)
            }
            12..=14 => {
                let mine: Vec<u64> = match self.aix().vm().space_id(self.cur_ctx()) {
                    Some(id) => self
                        .vmm()
                        .space(id)
                        .map(|a| a.iter().map(|(e, _)| e.as_u64()).collect())
                        .unwrap_or_default(),
                    None => Vec::new(),
                };
                let e = self.rng.pick(&mine).unwrap_or(3);
                (e << 28) | self.rng.below(SEGSIZE)
            }
            _ => [
                0,
                1,
                u64::MAX,
                u64::MAX - 4095,
                1 << 60,
                (1 << 60) - 1,
                1 << 32,
                (1 << 32) - 1,
                SHMAT_BASE_ESID << 28,
                1 << 63,
                self.v.aix.galloc_base_esid << 28,
                self.v.aix.vm_att_base_esid << 28,
                (2 << 28) | 5,
                14 << 28,
                self.rng.next(),
            ][self.rng.below(15) as usize],
        }
    }

    fn pick_adsp(&mut self) -> usize {
        match self.rng.below(20) {
            0..=10 => self.rng.pick(&self.adsps).unwrap_or(0),
            11..=14 => {
                let ctx = self.cur_ctx();
                self.aix()
                    .adspace_of(ctx)
                    .map_or(0, |a| a as *const adspace_t as usize)
            }
            _ => [0, 1, 0x1000, usize::MAX, (self.rng.next() as usize) & !7]
                [self.rng.below(5) as usize],
        }
    }

    // --- the services ------------------------------------------------------

    fn service_op(&mut self) {
        // Half of the calls switch first (mostly to a live process); the
        // rest come from whatever runs.
        if self.chance(50) {
            self.env_op();
        }
        match self.rng.below(24) {
            0 | 1 => self.vm_galloc(),
            2 => self.vm_gfree(),
            3 | 4 => self.vm_guatt(),
            5 => self.vm_gudet(),
            6 => self.vm_att(),
            7 => self.vm_det(),
            8 => self.vm_handle(),
            9 => self.vms_create(),
            10 => self.vms_delete(),
            11 => self.getadsp(),
            12 => self.as_att(),
            13 => self.as_det(),
            14 => self.as_geth(),
            15 => self.as_puth(),
            16 => self.as_getsrval(),
            17 | 22 => self.as_att64(),
            18 => self.as_det64(),
            19 => self.as_seth64(),
            20 => self.as_geth64(),
            21 => self.as_puth64(),
            23 => self.as_getsrval64(),
            _ => unreachable!(),
        }
    }

    fn vm_galloc(&mut self) {
        let t = self.pick_type();
        let size = match self.rng.below(4) {
            0 => 1 + self.rng.below(256 * PAGE) as i64,
            _ => self.pick_size(),
        };
        let hooks = self.hooks();
        let env = self.env();
        let r = self.call("vm_galloc", format!("{t:#x}, {size:#x}"), |a| {
            a.vm_galloc(t, size)
        });
        let invalid = env == Environment::Interrupt || !type_ok(t) || size <= 0;
        let too_big = !invalid && segments_for(size) > u128::from(self.v.aix.galloc_segments);
        match r {
            Ok(k) => {
                if invalid || too_big {
                    bug!("vm_galloc({t:#x}, {size:#x}) in {env:?} succeeded");
                }
                let base = self.v.aix.galloc_base_esid;
                let esid = k >> 28;
                let a = self.aix().allocations().find(|a| a.start == k).cloned();
                let Some(a) = a else {
                    bug!("vm_galloc: no allocation recorded at {k:#x}");
                };
                if k % SEGSIZE != 0
                    || esid < base
                    || esid + a.sids.len() as u64 > base + self.v.aix.galloc_segments
                    || Some(a.bytes) != round_to_page(size)
                {
                    bug!("vm_galloc({size:#x}) gave {k:#x}: {a:?}");
                }
                Self::record(&mut self.allocs, (k, size));
                Self::record(&mut self.addrs, k);
                // Zero-filled, kernel read-write, closed to problem state.
                let off = self.rng.below(a.bytes);
                let r = self.access(k + off, 1, Access::Load, SUP).map_err(|f| f.1);
                if r != Ok(vec![0]) && r != Err(VmFaultReason::NoMemory) {
                    bug!(
                        "fresh vm_galloc memory at {:#x} does not read as zero",
                        k + off
                    );
                }
                if self.access(k + off, 1, Access::Load, USR).is_ok() {
                    bug!(
                        "vm_galloc memory readable in problem state at {:#x}",
                        k + off
                    );
                }
            }
            Err(e) => {
                let want = if invalid {
                    Some(Errno::Inval)
                } else if too_big {
                    Some(Errno::NoSpc)
                } else {
                    None
                };
                match (want, e) {
                    (Some(w), e) if e.errno() != w => {
                        bug!("vm_galloc({t:#x}, {size:#x}) in {env:?}: {e:?}, expected {w:?}")
                    }
                    (None, VmGallocError::NoMemory(s)) if !self.shortage_ok(s, hooks) => {
                        bug!("vm_galloc: unexplained {s:?} shortage")
                    }
                    (None, e) if !matches!(e.errno(), Errno::NoSpc | Errno::NoMem) => {
                        bug!("vm_galloc({t:#x}, {size:#x}): {e:?}")
                    }
                    _ => {}
                }
            }
        }
    }

    fn vm_gfree(&mut self) {
        let (k, size) = match self.pick_alloc() {
            Some((k, s)) if self.chance(85) => {
                let size = match self.rng.below(8) {
                    0 => s.saturating_add(PAGE as i64),
                    1 => 0,
                    2 => -1,
                    3 => round_to_page(s).map_or(s, |b| b as i64),
                    _ => s,
                };
                (k, size)
            }
            _ => (self.pick_addr(), self.pick_size()),
        };
        let live = self.aix().allocations().find(|a| a.start == k).cloned();
        let env = self.env();
        let r = self.call("vm_gfree", format!("{k:#x}, {size:#x}"), |a| {
            a.vm_gfree(k, size)
        });
        let ok = env != Environment::Interrupt
            && live
                .as_ref()
                .is_some_and(|a| round_to_page(size) == Some(a.bytes));
        match (r, ok) {
            (Ok(()), true) => {
                let a = live.unwrap();
                for &sid in &a.sids {
                    if self.aix().vm().segment(sid).is_some() {
                        bug!("vm_gfree({k:#x}) left SID {:#x}", sid.as_u64());
                    }
                }
                for &pid in self.live.keys() {
                    if self
                        .aix()
                        .attachments(ProcessId(pid))
                        .iter()
                        .any(|t| t.allocation == k)
                    {
                        bug!("vm_gfree({k:#x}) left an attachment in {pid}");
                    }
                }
            }
            (Err(e), false) if e.errno() == Errno::Inval => {}
            (r, _) => bug!("vm_gfree({k:#x}, {size:#x}) in {env:?} (allocation {live:?}): {r:?}"),
        }
    }

    /// `[kaddr, kaddr + size)` in one live allocation: that allocation.
    fn allocation_containing(&self, kaddr: u64, size: i64) -> Option<Allocation> {
        if size <= 0 {
            return None;
        }
        let end = u128::from(kaddr) + size as u128;
        self.aix()
            .allocations()
            .find(|a| kaddr >= a.start && end <= u128::from(a.start) + u128::from(a.bytes))
            .cloned()
    }

    /// A `vm_galloc` result: mostly a live allocation, sometimes a freed
    /// one.
    fn pick_alloc(&mut self) -> Option<(u64, i64)> {
        let live: Vec<(u64, i64)> = self
            .aix()
            .allocations()
            .map(|a| (a.start, a.bytes as i64))
            .collect();
        if !live.is_empty() && self.chance(70) {
            return self.rng.pick(&live);
        }
        self.rng.pick(&self.allocs)
    }

    fn vm_guatt(&mut self) {
        let (k, size) = match self.pick_alloc() {
            Some((k, s)) if self.chance(80) => {
                let bytes = round_to_page(s).unwrap_or(PAGE);
                let off = match self.rng.below(4) {
                    0 => 0,
                    1 => bytes.saturating_sub(1 + self.rng.below(64)),
                    2 => (SEGSIZE - 1 - self.rng.below(PAGE)).min(bytes.saturating_sub(1)),
                    _ => self.rng.below(bytes),
                };
                let size = match self.rng.below(6) {
                    0 => self.pick_size(),
                    1 => (bytes - off) as i64,
                    2 => (bytes - off + 1) as i64,
                    _ => 1 + self.rng.below((bytes - off).min(3 * PAGE)) as i64,
                };
                (k + off, size)
            }
            _ => (self.pick_addr(), self.pick_size()),
        };
        let key = self.pick_key();
        let flags = self.pick_flags();
        let ctx = self.proc_ctx();
        let hooks = self.hooks();
        let alloc = self.allocation_containing(k, size);
        let r = self.call(
            "vm_guatt",
            format!("{k:#x}, {size:#x}, {key}, {flags:#x}"),
            |a| a.vm_guatt(k, size, key, flags),
        );
        let valid = matches!(ctx, Some(Space::Process(_)))
            && flags == VU_ANYWHERE
            && (key == VM_PRIV as c_long || key == VM_UNPRIV as c_long)
            && alloc.is_some();
        match r {
            Ok(u) => {
                let Some(Space::Process(pid)) = ctx else {
                    bug!("vm_guatt succeeded outside a process");
                };
                if !valid {
                    bug!("vm_guatt({k:#x}, {size:#x}, {key}, {flags:#x}) succeeded");
                }
                let esid = u >> 28;
                let placed = match self.live[&pid.0] {
                    AddressModel::Bits64 => (SHMAT_BASE_ESID..SHMAT_END_ESID).contains(&esid),
                    AddressModel::Bits32 => (3..16).contains(&esid) && esid != 14,
                };
                if !placed || u & SEGOFFSET != k & SEGOFFSET {
                    bug!("vm_guatt({k:#x}) placed at {u:#x}");
                }
                Self::record(&mut self.atts, (pid.0, k, u, size));
                Self::record(&mut self.addrs, u);
                self.guatt_semantics(k, u, size, key, alloc.unwrap().type_flags);
                if self.chance(25) {
                    self.gudet(k, u, size, VU_ANYWHERE);
                }
            }
            Err(e) => match (valid, e) {
                (false, e) if e.errno() == Errno::Inval => {}
                (true, VmGuattError::NoMemory(s)) if self.shortage_ok(s, hooks) => {}
                (_, e) => bug!("vm_guatt({k:#x}, {size:#x}, {key}, {flags:#x}) in {ctx:?}: {e:?}"),
            },
        }
    }

    /// The attachment shows exactly the attached pages, readable in
    /// problem state with `VM_PRIV` or on `V_UREAD` memory, writable with
    /// `VM_PRIV` only, and what it reads is what the kernel address holds.
    fn guatt_semantics(&mut self, k: u64, u: u64, size: i64, key: c_long, type_flags: c_int) {
        // Pages the kernel has re-protected follow their own protection
        // (the access checks cover them), not the allocation's type.
        let sid = self.mapping(self.cur_ctx(), u >> 28).map(|m| m.sid);
        let reprotected = sid.is_none_or(|s| {
            self.vmm()
                .segments()
                .get(s)
                .is_ok_and(|s| s.prot_overrides().next().is_some())
        });
        if reprotected {
            return;
        }
        let off = self.rng.below(size as u64);
        let readable = key == VM_PRIV as c_long || type_flags & V_UREAD != 0;
        let r = self.access(u + off, 1, Access::Load, USR);
        if matches!(r, Err((_, VmFaultReason::NoMemory))) {
            return;
        }
        if r.is_ok() != readable {
            bug!(
                "vm_guatt key {key} type {type_flags:#x}: problem-state load at {:#x} gave {r:?}",
                u + off
            );
        }
        let w = self.access(u + off, 1, Access::Store, USR);
        if w.is_ok() != (key == VM_PRIV as c_long) {
            bug!(
                "vm_guatt key {key}: problem-state store at {:#x} gave {w:?}",
                u + off
            );
        }
        let _ = k;
        // The pages around the attached range are not reachable.
        let first = u & !(PAGE - 1);
        let last = (u + size as u64 - 1) & !(PAGE - 1);
        for probe in [first.wrapping_sub(1), last + PAGE] {
            if probe >> 28 == u >> 28 && self.access(probe, 1, Access::Load, USR).is_ok() {
                bug!("vm_guatt({k:#x}, {size:#x}) at {u:#x}: {probe:#x} outside it is readable");
            }
        }
    }

    /// Makes a context for which `want` holds run (a live process, or
    /// the kernel process), if there is one (and `percent` says so).
    fn steer(&mut self, percent: u64, want: impl Fn(&Driver, Space) -> bool) {
        if !self.chance(percent) {
            return;
        }
        let mut ctxs = vec![Space::Kernel];
        ctxs.extend(self.live.keys().map(|&p| Space::Process(ProcessId(p))));
        ctxs.retain(|&c| want(self, c));
        match self.rng.pick(&ctxs) {
            Some(Space::Process(p)) => self.set_env(Environment::Process(p)),
            Some(Space::Kernel) => self.set_env(Environment::KernelProcess),
            None => {}
        }
    }

    fn vm_gudet(&mut self) {
        self.steer(60, |d, c| match c {
            Space::Process(p) => !d.aix().attachments(p).is_empty(),
            Space::Kernel => false,
        });
        let me = match self.proc_ctx() {
            Some(Space::Process(p)) => p.0,
            _ => 0,
        };
        let mine: Vec<(u32, u64, u64, i64)> = self
            .aix()
            .attachments(ProcessId(me))
            .iter()
            .map(|t| (me, t.kaddr, t.uaddr, t.size))
            .collect();
        let pool = if !mine.is_empty() && self.chance(75) {
            mine
        } else {
            self.atts.clone()
        };
        let (k, u, size) = match self.rng.pick(&pool) {
            Some((_, k, u, s)) if self.chance(85) => match self.rng.below(6) {
                0 => (k, u, s + 1),
                1 => (k + 1, u, s),
                _ => (k, u, s),
            },
            _ => (self.pick_addr(), self.pick_addr(), self.pick_size()),
        };
        let flags = self.pick_flags();
        self.gudet(k, u, size, flags);
    }

    fn gudet(&mut self, k: u64, u: u64, size: i64, flags: c_long) {
        let ctx = self.proc_ctx();
        let ok = match ctx {
            Some(Space::Process(p)) => {
                flags == VU_ANYWHERE
                    && self.allocation_containing(k, size).is_some()
                    && self
                        .aix()
                        .attachments(p)
                        .iter()
                        .any(|t| t.kaddr == k && t.uaddr == u && t.size == size)
            }
            _ => false,
        };
        let r = self.call(
            "vm_gudet",
            format!("{k:#x}, {u:#x}, {size:#x}, {flags:#x}"),
            |a| a.vm_gudet(k, u, size, flags),
        );
        match (r, ok) {
            (Ok(()), true) => {
                if self.access(u, 1, Access::Load, USR).is_ok() {
                    bug!("vm_gudet: {u:#x} still readable");
                }
            }
            (Err(e), false) if e.errno() == Errno::Inval => {}
            (r, _) => bug!("vm_gudet({k:#x}, {u:#x}, {size:#x}) in {ctx:?}: {r:?}"),
        }
    }

    fn vm_att(&mut self) {
        let h = self.pick_handle();
        let off = match self.rng.below(4) {
            0 => 0,
            1 => u64::MAX,
            2 => self.rng.next(),
            _ => self.rng.below(4 * PAGE),
        };
        let hooks = self.hooks();
        let owner = self.cur_ctx();
        let window =
            self.v.aix.vm_att_base_esid..self.v.aix.vm_att_base_esid + self.v.aix.vm_att_slots;
        let full = window
            .clone()
            .all(|e| self.mapping(Space::Kernel, e).is_some());
        let rule = self.attach_rule(h, false);
        let r = self.call("vm_att", format!("{h:#x}, {off:#x}"), |a| a.vm_att(h, off));
        match r {
            Ok(a) => {
                if rule == Rule::MustNot
                    || !window.contains(&(a >> 28))
                    || a & SEGOFFSET != off & SEGOFFSET
                {
                    bug!("vm_att({h:#x}, {off:#x}) gave {a:#x}");
                }
                self.slots.insert(a >> 28, owner);
                Self::record(&mut self.addrs, a);
                if self.access(a & !(PAGE - 1), 1, Access::Load, USR).is_ok() {
                    bug!("a vm_att slot is readable in problem state");
                }
            }
            Err(e) => match (rule, e) {
                (Rule::May, _) => {}
                (Rule::Must, VmAttError::NoFreeRegion) if full => {}
                (Rule::Must, VmAttError::NoMemory(s)) if self.shortage_ok(s, hooks) => {}
                (Rule::MustNot, VmAttError::BadHandle(_) | VmAttError::NoSuchSegment { .. }) => {}
                (_, e) => bug!("vm_att({h:#x}) ({rule:?}) refused: {e:?}"),
            },
        }
    }

    fn vm_det(&mut self) {
        // Mostly from the context that attached a slot.
        let owners: Vec<Space> = self.slots.values().copied().collect();
        match self.rng.pick(&owners) {
            Some(Space::Kernel) if self.chance(60) => self.set_env(Environment::KernelProcess),
            Some(Space::Process(p)) if self.chance(60) => self.set_env(Environment::Process(p)),
            _ => {}
        }
        let e = if self.chance(70) {
            let me = self.cur_ctx();
            let mine: Vec<u64> = self
                .slots
                .iter()
                .filter(|(_, &o)| o == me)
                .map(|(&e, _)| e)
                .collect();
            let s: Vec<u64> = if mine.is_empty() || self.chance(20) {
                self.slots.keys().copied().collect()
            } else {
                mine
            };
            match self.rng.pick(&s) {
                Some(esid) => (esid << 28) | self.rng.below(SEGSIZE),
                None => self.pick_addr(),
            }
        } else {
            self.pick_addr()
        };
        let ok = self.slots.get(&(e >> 28)) == Some(&self.cur_ctx());
        let r = self.call("vm_det", format!("{e:#x}"), |a| a.vm_det(e));
        match (r, ok) {
            (Ok(()), true) => {
                if self.mapping(Space::Kernel, e >> 28).is_some() {
                    bug!("vm_det({e:#x}) left the slot mapped");
                }
                self.slots.remove(&(e >> 28));
            }
            (Err(_), false) => {}
            (r, _) => bug!(
                "vm_det({e:#x}) by {:?} (slots {:?}): {r:?}",
                self.cur_ctx(),
                self.slots
            ),
        }
    }

    fn vm_handle(&mut self) {
        let v = self.pick_vmid();
        let key = self.pick_key();
        let r = self.call("vm_handle", format!("{v:#x}, {key}"), |_| vm_handle(v, key));
        let key_ok = key == VM_PRIV as c_long || key == VM_UNPRIV as c_long;
        // vm_handle only composes: 0 (never a SID) makes a handle no
        // service attaches.
        let vmid_ok = v >= 0 && (v as u64) < INVLSID;
        match r {
            Ok(h) => {
                let bits = if key == VM_UNPRIV as c_long { 0xC00 } else { 0 };
                if !key_ok || !vmid_ok || h.raw() != ((v as u64) << 12 | bits) {
                    bug!("vm_handle({v:#x}, {key}) = {:#x}", h.raw());
                }
                Self::record(&mut self.handles, h.raw());
            }
            Err(e) => {
                if key_ok && vmid_ok {
                    bug!("vm_handle({v:#x}, {key}) refused: {e:?}");
                }
            }
        }
    }

    fn vms_create(&mut self) {
        let t = self.pick_type();
        let size = match self.rng.below(4) {
            0 => self.pick_size(),
            _ => 1 + self.rng.below(8 * PAGE) as i64,
        };
        let hooks = self.hooks();
        let env = self.env();
        let r = self.call("vms_create", format!("{t:#x}, {size:#x}"), |a| {
            a.vms_create(t, size)
        });
        let valid = env != Environment::Interrupt
            && type_ok(t)
            && round_to_page(size).is_some_and(|b| b <= SEGSIZE);
        match r {
            Ok(v) => {
                let info = self.seg(v as u64);
                let pages = round_to_page(size).map(|b| (b / PAGE) as u32);
                if !valid
                    || info.is_none_or(|i| {
                        Some(i.pages) != pages || i.holds + i.attaches > 0 || i.delete_pending
                    })
                    || !self.vms.insert(v as u64)
                {
                    bug!("vms_create({t:#x}, {size:#x}) in {env:?} gave {v:#x}: {info:?}");
                }
                Self::record(&mut self.vmids, v);
            }
            Err(e) => match (valid, e) {
                (false, e) if e.errno() == Errno::Inval => {}
                (true, VmsCreateError::NoMemory(s)) if self.shortage_ok(s, hooks) => {}
                (_, e) => bug!("vms_create({t:#x}, {size:#x}) in {env:?}: {e:?}"),
            },
        }
    }

    fn vms_delete(&mut self) {
        let v = self.pick_vmid();
        let env = self.env();
        let info = if v >= 0 { self.seg(v as u64) } else { None };
        let ok = env != Environment::Interrupt
            && v >= 0
            && self.vms.contains(&(v as u64))
            && info.is_some_and(|i| !i.delete_pending);
        let r = self.call("vms_delete", format!("{v:#x}"), |a| a.vms_delete(v));
        match (r, ok) {
            (Ok(()), true) => {
                let sid = v as u64;
                self.vms.remove(&sid);
                let held = info.unwrap().holds > 0;
                let now = self.seg(sid);
                if held {
                    if now.is_none_or(|i| !i.delete_pending) {
                        bug!("vms_delete of a held segment: {now:?}");
                    }
                } else if now.is_some() || !self.vmm().mappings_of(Sid::new(sid)).is_empty() {
                    bug!("vms_delete({sid:#x}) left the segment or a mapping");
                }
            }
            (Err(e), false) if e.errno() == Errno::Inval => {}
            (r, _) => bug!(
                "vms_delete({v:#x}) in {env:?} ({info:?}, ours {}): {r:?}",
                self.vms.contains(&(v as u64))
            ),
        }
    }

    fn getadsp(&mut self) {
        let ctx = self.proc_ctx();
        let r = self.call("getadsp", String::new(), |a| a.getadsp());
        match (r, ctx) {
            (Ok(p), Some(c)) => {
                let p = p.as_ptr() as usize;
                if self.ctx_of_adsp(p) != Some(c) {
                    bug!("getadsp in {c:?} gave another context's copy");
                }
                let a = *self.aix().adspace_of(c).unwrap();
                for n in 0..16u64 {
                    let sr = SegmentRegister::new(n as usize).unwrap();
                    let m = self.mapping(c, n).map(|m| m.handle_raw());
                    if a.get(sr) != m {
                        bug!(
                            "getadsp in {c:?}: register {n} holds {:?}, the space {m:?}",
                            a.get(sr)
                        );
                    }
                }
                Self::record(&mut self.adsps, p);
            }
            (Err(_), None) => {}
            (r, c) => bug!("getadsp in {c:?}: {r:?}"),
        }
    }

    /// Where `as_att`, and `as_att64` in a 32-bit or kernel context, may
    /// place a region: registers 3..13 and 15.
    fn free_register(&self, ctx: Space) -> bool {
        (3..16).any(|e| e != 14 && self.mapping(ctx, e).is_none())
    }

    fn as_att(&mut self) {
        let adsp = self.pick_adsp();
        let h = self.pick_handle();
        let off = self.rng.next();
        let ctx = self.ctx_of_adsp(adsp);
        let hooks = self.hooks();
        let interrupt = self.env() == Environment::Interrupt;
        let rule = match self.attach_rule(h, true) {
            _ if interrupt || ctx.is_none() => Rule::MustNot,
            r => r,
        };
        let room = ctx.is_some_and(|c| self.free_register(c));
        let r = self.call("as_att", format!("{adsp:#x}, {h:#x}, {off:#x}"), |a| {
            a.as_att(adsp as *const adspace_t, h, off)
        });
        match r {
            Ok(a) => {
                let esid = a >> 28;
                let c = ctx.unwrap_or(Space::Kernel);
                if rule == Rule::MustNot
                    || !(3..16).contains(&esid)
                    || esid == 14
                    || a & SEGOFFSET != off & SEGOFFSET
                    || self.mapping(c, esid).map(|m| m.sid.as_u64()) != Self::handle_sid(h)
                {
                    bug!("as_att({adsp:#x}, {h:#x}) in {ctx:?} gave {a:#x}");
                }
                Self::record(&mut self.addrs, a);
            }
            Err(e) => match (rule, e) {
                (Rule::MustNot | Rule::May, _) => {}
                (Rule::Must, AsAttError::NoFreeRegister) if !room => {}
                (Rule::Must, AsAttError::NoMemory(s)) if self.shortage_ok(s, hooks) => {}
                (Rule::Must, e) => bug!("as_att({adsp:#x}, {h:#x}) in {ctx:?}: {e:?}"),
            },
        }
    }

    fn as_det(&mut self) {
        self.steer(50, |d, c| {
            d.space_mappings(c)
                .iter()
                .any(|(e, _)| *e < 16 && !is_reserved_sr(*e))
        });
        let adsp = self.pick_own_adsp();
        let ctx = self.ctx_of_adsp(adsp);
        let e = self.pick_reg_addr(ctx);
        let sr = (e >> 28) & 0xF;
        let r = self.call("as_det", format!("{adsp:#x}, {e:#x}"), |a| {
            a.as_det(adsp as *const adspace_t, e)
        });
        match r {
            Ok(()) => {
                let c = ctx.unwrap_or(Space::Kernel);
                if ctx.is_none() || is_reserved_sr(sr) || self.mapping(c, sr).is_some() {
                    bug!("as_det({adsp:#x}, {e:#x}) in {ctx:?} succeeded or left the register");
                }
            }
            Err(err) => {
                if ctx.is_some() && is_reserved_sr(sr) && err.errno() != Errno::Inval {
                    bug!("as_det of reserved register {sr}: {err:?}");
                }
            }
        }
    }

    /// An address in one of the segment registers (ESIDs 0..15) `ctx`
    /// maps, mostly; else one of [`Driver::pick_addr_in`].
    fn pick_reg_addr(&mut self, ctx: Option<Space>) -> u64 {
        let regs: Vec<u64> = ctx
            .map(|c| {
                self.space_mappings(c)
                    .into_iter()
                    .map(|(e, _)| e)
                    .filter(|&e| e < 16)
                    .collect()
            })
            .unwrap_or_default();
        match self.rng.pick(&regs) {
            Some(sr) if self.chance(70) => (sr << 28) | self.rng.below(SEGSIZE),
            _ => self.pick_addr_in(ctx),
        }
    }

    /// The `adspace_t` copy of the running context (half of the time),
    /// or any from [`Driver::pick_adsp`].
    fn pick_own_adsp(&mut self) -> usize {
        if self.chance(50) {
            let c = self.cur_ctx();
            if let Some(a) = self.aix().adspace_of(c) {
                return a as *const adspace_t as usize;
            }
        }
        self.pick_adsp()
    }

    fn geth_expect(&self, ctx: Option<Space>, esid: u64) -> Option<u64> {
        let m = self.mapping(ctx?, esid)?;
        (!self.galloc_sids().contains(&m.sid.as_u64())).then_some(m.handle_raw())
    }

    fn as_geth(&mut self) {
        let has_regs = |d: &Driver, c: Space| d.space_mappings(c).iter().any(|(e, _)| *e < 16);
        self.steer(40, has_regs);
        let adsp = self.pick_own_adsp();
        let ctx = self.ctx_of_adsp(adsp);
        let a = self.pick_reg_addr(ctx);
        let interrupt = self.env() == Environment::Interrupt;
        let want = if interrupt {
            None
        } else {
            self.geth_expect(ctx, (a >> 28) & 0xF)
        };
        let r = self.call("as_geth", format!("{adsp:#x}, {a:#x}"), |x| {
            x.as_geth(adsp as *const adspace_t, a)
        });
        match (r, want) {
            (Ok(h), Some(w)) if h == w => {
                Self::record(&mut self.handles, h);
                Self::record(&mut self.holds, (ctx.unwrap(), a, h));
            }
            (Err(_), None) => {}
            (r, w) => bug!("as_geth({adsp:#x}, {a:#x}) in {ctx:?}: {r:?}, expected {w:?}"),
        }
    }

    fn holds_of(&self, ctx: Space, sid: u64) -> u32 {
        self.aix()
            .holds(ctx)
            .into_iter()
            .find(|&(s, _)| s == sid)
            .map_or(0, |(_, n)| n)
    }

    /// A hold to put: mostly one `ctx` took, sometimes another
    /// context's, or garbage.
    fn pick_hold(&mut self, ctx: Option<Space>) -> (u64, u64) {
        let mine: Vec<(u64, u64)> = match ctx {
            Some(c) => {
                let held: BTreeSet<u64> = self.aix().holds(c).into_iter().map(|(s, _)| s).collect();
                self.holds
                    .iter()
                    .filter(|h| {
                        h.0 == c && Self::handle_sid(h.2).is_some_and(|s| held.contains(&s))
                    })
                    .map(|h| (h.1, h.2))
                    .collect()
            }
            None => Vec::new(),
        };
        match self.rng.below(10) {
            0..=6 if !mine.is_empty() => self.rng.pick(&mine).unwrap(),
            0..=7 if !self.holds.is_empty() => {
                let h = self.rng.pick(&self.holds).unwrap();
                (h.1, h.2)
            }
            _ => (self.pick_addr(), self.pick_handle()),
        }
    }

    /// An address in `ctx`'s space: mostly in one of its mappings,
    /// sometimes anything [`Driver::pick_addr`] gives.
    fn pick_addr_in(&mut self, ctx: Option<Space>) -> u64 {
        if let Some(c) = ctx.filter(|_| self.rng.below(10) < 6) {
            let maps: Vec<u64> = self.space_mappings(c).into_iter().map(|(e, _)| e).collect();
            if let Some(e) = self.rng.pick(&maps) {
                return (e << 28) | self.rng.below(SEGSIZE);
            }
        }
        self.pick_addr()
    }

    fn as_puth(&mut self) {
        self.steer(60, |d, c| !d.aix().holds(c).is_empty());
        let adsp = if self.chance(50) {
            let c = self.cur_ctx();
            self.aix()
                .adspace_of(c)
                .map_or(0, |a| a as *const adspace_t as usize)
        } else {
            self.pick_adsp()
        };
        let ctx = self.ctx_of_adsp(adsp);
        let (_, h) = self.pick_hold(ctx);
        let interrupt = self.env() == Environment::Interrupt;
        let ok = !interrupt
            && ctx.is_some()
            && Self::handle_sid(h).is_some_and(|s| self.holds_of(ctx.unwrap(), s) > 0);
        let r = self.call("as_puth", format!("{adsp:#x}, {h:#x}"), |x| {
            x.as_puth(adsp as *const adspace_t, h)
        });
        match (r, ok) {
            (Ok(()), true) | (Err(_), false) => {}
            (r, _) => bug!("as_puth({adsp:#x}, {h:#x}) in {ctx:?}: {r:?}"),
        }
    }

    fn as_getsrval(&mut self) {
        let adsp = self.pick_own_adsp();
        let ctx = self.ctx_of_adsp(adsp);
        let a = self.pick_reg_addr(ctx);
        let want = self.geth_expect(ctx, (a >> 28) & 0xF);
        let r = self.call("as_getsrval", format!("{adsp:#x}, {a:#x}"), |x| {
            x.as_getsrval(adsp as *const adspace_t, a)
        });
        match (r, want) {
            (Ok(h), Some(w)) if h == w => Self::record(&mut self.handles, h),
            (Err(_), None) => {}
            (r, w) => bug!("as_getsrval({adsp:#x}, {a:#x}) in {ctx:?}: {r:?}, expected {w:?}"),
        }
    }

    fn as_att64(&mut self) {
        let h = self.pick_handle();
        let off = self.rng.next() as c_int;
        let ctx = self.proc_ctx();
        let hooks = self.hooks();
        let rule = match self.attach_rule(h, true) {
            _ if ctx.is_none() => Rule::MustNot,
            r => r,
        };
        let room = ctx.is_some_and(|c| match (c, self.model_of(c)) {
            (Space::Process(_), AddressModel::Bits64) => {
                (SHMAT_BASE_ESID..SHMAT_END_ESID).any(|e| self.mapping(c, e).is_none())
            }
            _ => self.free_register(c),
        });
        let r = self.call("as_att64", format!("{h:#x}, {off:#x}"), |x| {
            x.as_att64(h, off)
        });
        match r {
            Ok(a) => {
                let c = ctx.unwrap_or(Space::Kernel);
                let esid = a >> 28;
                let placed = match (c, self.model_of(c)) {
                    (Space::Process(_), AddressModel::Bits64) => {
                        (SHMAT_BASE_ESID..SHMAT_END_ESID).contains(&esid)
                    }
                    _ => (3..16).contains(&esid) && esid != 14,
                };
                if rule == Rule::MustNot
                    || !placed
                    || a & SEGOFFSET != (off as u32 as u64) & SEGOFFSET
                    || self.mapping(c, esid).map(|m| m.sid.as_u64()) != Self::handle_sid(h)
                {
                    bug!("as_att64({h:#x}, {off:#x}) in {ctx:?} gave {a:#x}");
                }
                Self::record(&mut self.addrs, a);
            }
            Err(e) => match (rule, e) {
                (Rule::MustNot | Rule::May, e) if e.errno() == Errno::Inval => {}
                (Rule::Must, AsAtt64Error::NoMemory(Shortage::Regions)) if !room => {}
                (Rule::Must, AsAtt64Error::NoMemory(s))
                    if s != Shortage::Regions && self.shortage_ok(s, hooks) => {}
                (_, e) => bug!("as_att64({h:#x}) in {ctx:?} ({rule:?}): {e:?}"),
            },
        }
    }

    fn as_det64(&mut self) {
        let ctx = self.proc_ctx();
        let a = self.pick_addr_in(ctx);
        let r = self.call("as_det64", format!("{a:#x}"), |x| x.as_det64(a));
        match (r, ctx) {
            (Ok(()), Some(c)) => {
                let esid = a >> 28;
                if a >= self.addr_end(c)
                    || (self.model_of(c) == AddressModel::Bits32 && is_reserved_sr(esid))
                    || self.mapping(c, esid).is_some()
                {
                    bug!("as_det64({a:#x}) in {c:?} should not have succeeded");
                }
            }
            (Err(e), _) if e.errno() == Errno::Inval => {}
            (r, c) => bug!("as_det64({a:#x}) in {c:?}: {r:?}"),
        }
    }

    fn as_seth64(&mut self) {
        let a = if self.chance(30) {
            let k: Vec<u64> = self
                .kmade
                .iter()
                .filter(|k| k.esid.as_u64() < KERNEL_ESID_BASE)
                .map(|k| k.esid.as_u64() << 28)
                .collect();
            self.rng.pick(&k).unwrap_or(0)
        } else {
            self.pick_addr_in(self.proc_ctx())
        };
        let h = self.pick_handle();
        let ctx = self.proc_ctx();
        let hooks = self.hooks();
        let esid = a >> 28;
        let owned_at = |d: &Driver| {
            ctx.and_then(|c| d.aix().vm().space_id(c))
                .and_then(|id| Esid::try_new(esid).map(|e| (id, e)))
                .and_then(|(id, e)| d.vmm().mapping(SpaceRef::User(id), e).ok())
                .filter(|m| m.owned)
                .map(|m| m.handle.sid().as_u64())
        };
        // Re-setting a context's own owned segment where it is mapped
        // keeps it owned (else it would outlive the exit).
        let reseat_owned = owned_at(self).is_some_and(|s| Some(s) == Self::handle_sid(h));
        let place_ok = ctx.is_some_and(|c| {
            a < self.addr_end(c)
                && !(self.model_of(c) == AddressModel::Bits32 && is_reserved_sr(esid))
        });
        let rule = match self.attach_rule(h, true) {
            _ if !place_ok => Rule::MustNot,
            r => r,
        };
        let r = self.call("as_seth64", format!("{a:#x}, {h:#x}"), |x| {
            x.as_seth64(a, h)
        });
        match r {
            Ok(()) => {
                let c = ctx.unwrap_or(Space::Kernel);
                let m = self.mapping(c, esid);
                if rule == Rule::MustNot
                    || m.as_ref().map(|m| m.handle_raw())
                        != VmHandle::from_raw(h).ok().map(|h| h.raw())
                {
                    bug!("as_seth64({a:#x}, {h:#x}) in {ctx:?}: mapped {m:?}");
                }
                if reseat_owned && owned_at(self).is_none() {
                    bug!("as_seth64({a:#x}, {h:#x}) of its own owned segment lost the ownership");
                }
                Self::record(&mut self.addrs, a);
                // What the kernel had mapped there is the services' now.
                if let Some(id) = self.aix().vm().space_id(c) {
                    self.kmade
                        .retain(|k| !(k.space == SpaceRef::User(id) && k.esid.as_u64() == esid));
                }
            }
            Err(e) => match (rule, e) {
                (Rule::MustNot | Rule::May, e) if e.errno() == Errno::Inval => {}
                (Rule::Must, AsSeth64Error::NoMemory(s)) if self.shortage_ok(s, hooks) => {}
                (_, e) => bug!("as_seth64({a:#x}, {h:#x}) in {ctx:?} ({rule:?}): {e:?}"),
            },
        }
    }

    fn as_geth64(&mut self) {
        let ctx = self.proc_ctx();
        let a = self.pick_addr_in(ctx);
        let want = ctx
            .filter(|&c| a < self.addr_end(c))
            .and_then(|c| self.geth_expect(Some(c), a >> 28));
        let r = self.call("as_geth64", format!("{a:#x}"), |x| x.as_geth64(a));
        match (r, want) {
            (Ok(h), Some(w)) if h == w => {
                Self::record(&mut self.handles, h);
                Self::record(&mut self.holds, (ctx.unwrap(), a, h));
            }
            (Err(_), None) => {}
            (r, w) => bug!("as_geth64({a:#x}) in {ctx:?}: {r:?}, expected {w:?}"),
        }
    }

    fn as_puth64(&mut self) {
        self.steer(60, |d, c| !d.aix().holds(c).is_empty());
        let ctx = self.proc_ctx();
        let (a, h) = self.pick_hold(ctx);
        let ok = ctx.is_some_and(|c| {
            a < self.addr_end(c) && Self::handle_sid(h).is_some_and(|s| self.holds_of(c, s) > 0)
        });
        let r = self.call("as_puth64", format!("{a:#x}, {h:#x}"), |x| {
            x.as_puth64(a, h)
        });
        match (r, ok) {
            (Ok(()), true) => {}
            (Err(e), false) if e.errno() == Errno::Inval => {}
            (r, _) => bug!("as_puth64({a:#x}, {h:#x}) in {ctx:?}: {r:?}"),
        }
    }

    fn as_getsrval64(&mut self) {
        self.steer(40, |d, c| !d.space_mappings(c).is_empty());
        let a = self.pick_addr_in(Some(self.cur_ctx()));
        let ctx = match self.env() {
            Environment::Interrupt => {
                let c = self.cur_ctx();
                (self.model_of(c) == AddressModel::Bits32).then_some(c)
            }
            _ => self.proc_ctx(),
        };
        let want = ctx
            .filter(|&c| a < self.addr_end(c))
            .and_then(|c| self.geth_expect(Some(c), a >> 28));
        let r = self.call("as_getsrval64", format!("{a:#x}"), |x| x.as_getsrval64(a));
        match (r, want) {
            (Ok(h), Some(w)) if h == w => Self::record(&mut self.handles, h),
            (Err(_), None) => {}
            (r, w) => bug!("as_getsrval64({a:#x}) in {ctx:?}: {r:?}, expected {w:?}"),
        }
    }

    // --- loads, stores, fetches -------------------------------------------

    /// What one piece (inside one page) of an access should do, judged
    /// from the tables: the working page it reaches, or the reason it
    /// faults. `fresh` and `frames` follow zero-fills within one access.
    fn predict(
        &self,
        ea: u64,
        access: Access,
        pr: Privilege,
        fresh: &mut BTreeSet<(u64, u32)>,
        frames: &mut usize,
    ) -> Result<(u64, u32, Sid), VmFaultReason> {
        use VmFaultReason::*;
        let vmm = self.vmm();
        let esid = Esid::new(ea >> 28);
        let space = if esid.as_u64() >= KERNEL_ESID_BASE {
            SpaceRef::Kernel
        } else {
            SpaceRef::User(vmm.current().ok_or(NoSegment)?)
        };
        let m = vmm.mapping(space, esid).map_err(|_| NoSegment)?;
        // The MMU refuses a fetch from a no-execute segment before it
        // looks for the page.
        if access == Access::Fetch && m.handle.no_exec() {
            return Err(NoExecute);
        }
        let page = ((ea >> 12) & 0xFFFF) as u32;
        if m.window.as_ref().is_some_and(|w| !w.contains(&page)) {
            return Err(OutOfRange);
        }
        let tsid = m.translation_sid();
        let seg = vmm.segments().get(tsid).map_err(|_| NoSegment)?;
        if !seg.in_range(page) {
            return Err(OutOfRange);
        }
        let target = match seg.kind() {
            SegmentKind::View { target, .. } => *target,
            SegmentKind::Working => tsid,
        };
        let prot = vmm
            .segments()
            .effective_prot(tsid, page)
            .map_err(|_| OutOfRange)?;
        let allowed = prot.pp.access(m.handle.key().effective(pr.is_problem()));
        match access {
            Access::Fetch if m.handle.no_exec() || prot.no_exec => return Err(NoExecute),
            Access::Fetch if !allowed.execute => return Err(Protection),
            Access::Load if !allowed.read => return Err(Protection),
            Access::Store if !allowed.write => return Err(Protection),
            _ => {}
        }
        let key = (target.as_u64(), page);
        let reached = (target.as_u64(), page, tsid);
        let frame = vmm.page_frame(target, page).ok().flatten();
        let resident = frame.is_some() || fresh.contains(&key);
        // A store to a page still shared copy-on-write copies it first,
        // unless no other page names its frame any more.
        let entry = vmm.segments().get(target).map(|s| s.entry(page));
        let cow_store = access == Access::Store && entry.is_ok_and(|e| e.is_cow());
        if cow_store {
            self.cow_stores.set(self.cow_stores.get() + 1);
        }
        if cow_store && frame.is_some_and(|f| vmm.frames().sharers(f) > 1) && fresh.insert(key) {
            if vmm.environment() == Environment::Interrupt {
                return Err(NotAllowedHere);
            }
            if *frames == 0 {
                return Err(NoMemory);
            }
            *frames -= 1;
        }
        if !resident {
            if vmm.environment() == Environment::Interrupt {
                return Err(NotAllowedHere);
            }
            if *frames == 0 {
                return Err(NoMemory);
            }
            *frames -= 1;
            fresh.insert(key);
        }
        Ok(reached)
    }

    /// Runs one access through the MMU and checks it against the
    /// prediction: the same failing piece and reason, loads and fetches
    /// read what was stored (zero where nothing was), stores go into the
    /// shadow and then read back through every alias. Returns what was
    /// read or written, or the failing address and reason.
    fn access(
        &mut self,
        ea: u64,
        len: usize,
        access: Access,
        pr: Privilege,
    ) -> Result<Vec<u8>, (u64, VmFaultReason)> {
        let (ea, len) = if access == Access::Fetch {
            (ea & !3, 4)
        } else {
            (ea, len)
        };
        let pcs = pieces(ea, len);
        let mut fresh = BTreeSet::new();
        let mut frames = self.vmm().frames().free_frames();
        let mut reached = Vec::new();
        let mut fail = None;
        for &(pea, _, _) in &pcs {
            match self.predict(pea, access, pr, &mut fresh, &mut frames) {
                Ok(t) => reached.push(t),
                Err(r) => {
                    fail = Some((pea, r));
                    break;
                }
            }
        }
        // Every piece must hold its translation at once: two pieces whose
        // only usable HPT slot is the same one evict each other forever.
        let livelock = fail.is_none() && self.slot_clash(&reached);
        let data: Vec<u8> = (0..len).map(|_| self.rng.next() as u8).collect();
        let mut buf = vec![0u8; len];
        let SimHarness { machine, aix, .. } = &mut self.h;
        let vmm = aix.vm_mut().vmm_mut();
        let at = EffectiveAddress::new(ea);
        let r = match access {
            Access::Store => machine.store_bytes(at, &data, pr, vmm),
            Access::Load => machine.load_bytes(at, &mut buf, pr, vmm),
            Access::Fetch => machine
                .fetch_u32(at, pr, vmm)
                .map(|w| buf.copy_from_slice(&w.to_be_bytes())),
        };
        let got = r.err().map(|f| (f.ea.as_u64(), f.reason));
        note(match got {
            None => format!("{access:?} {pr:?} {ea:#x}+{len} -> ok"),
            Some((at, why)) => format!("{access:?} {pr:?} {ea:#x}+{len} -> {why:?} at {at:#x}"),
        });
        let name = match access {
            Access::Load => "load",
            Access::Store => "store",
            Access::Fetch => "fetch",
        };
        let e = self.stats.ops.entry(name).or_default();
        if got.is_none() {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
        if matches!(got, Some((_, VmFaultReason::NoMemory))) {
            self.stats.no_frames += 1;
        }
        let as_predicted = match (got, livelock) {
            (Some((at, VmFaultReason::RetriesExhausted)), true) => pcs.iter().any(|p| p.0 == at),
            (got, _) => got == fail && !livelock,
        };
        if !as_predicted {
            let hex = |f: Option<(u64, VmFaultReason)>| f.map(|(a, r)| format!("{r:?} at {a:#x}"));
            bug!(
                "{access:?} {pr:?} at {ea:#x}+{len} in {:?}: the MMU says {:?}, the tables say {:?}",
                self.env(),
                hex(got),
                hex(fail)
            );
        }
        // All or nothing: a refused access moved no byte.
        if let Some(refused) = got {
            return Err(refused);
        }
        let mut touched = BTreeMap::<(u64, u32), Vec<u64>>::new();
        for (i, &(sid, page, _)) in reached.iter().enumerate() {
            let (pea, boff, n) = pcs[i];
            let base = u64::from(page) * PAGE + pea % PAGE;
            let shadow = self.shadow.entry(sid).or_default();
            for j in 0..n {
                let off = base + j as u64;
                if access == Access::Store {
                    shadow.insert(off, data[boff + j]);
                    touched.entry((sid, page)).or_default().push(off % PAGE);
                } else {
                    let want = shadow.get(&off).copied().unwrap_or(0);
                    if buf[boff + j] != want {
                        bug!("{access:?} at {:#x} (SID {sid:#x} offset {off:#x}) read {:#x}, stored was {want:#x}", pea + j as u64, buf[boff + j]);
                    }
                }
            }
        }
        for ((sid, page), offs) in touched {
            self.read_back(sid, page, &offs);
        }
        Ok(if access == Access::Store { data } else { buf })
    }

    /// Whether two of the pages an access reaches through translation
    /// SIDs `reached` can only go to the same HPT slot ([`CappedHpt`] with
    /// one slot in the lower half of the PTEGs: a page's primary PTEG, or
    /// its secondary `mask - primary` when the primary is in the upper
    /// half).
    fn slot_clash(&self, reached: &[(u64, u32, Sid)]) -> bool {
        if !(self.v.hpt_half && self.v.hpt_slots == 1) {
            return false;
        }
        let count = self.h.machine.hpt().pteg_count();
        let groups: Vec<u64> = reached
            .iter()
            .map(|&(_, page, tsid)| {
                let primary = vmm::hpt::hash(
                    tsid.vsid(),
                    u64::from(page) << 12,
                    SegmentSize::M256,
                    PageSize::K4,
                ) & (count - 1);
                if primary < count / 2 {
                    primary
                } else {
                    count - 1 - primary
                }
            })
            .collect();
        (1..groups.len()).any(|i| groups[..i].contains(&groups[i]))
    }

    /// Loads the bytes at `offs` of page `page` of working segment `sid`
    /// through every mapping of it, in every address space, in both
    /// states, and checks them against the shadow (through
    /// [`Driver::access`]).
    fn read_back(&mut self, sid: u64, page: u32, offs: &[u64]) {
        let (Some(&lo), Some(&hi)) = (offs.iter().min(), offs.iter().max()) else {
            return;
        };
        let prev = self.vmm().current();
        let aliases = self.vmm().mappings_of(Sid::new(sid));
        for (space, esid) in aliases {
            let Ok(m) = self.vmm().mapping(space, esid) else {
                continue;
            };
            if m.window.as_ref().is_some_and(|w| !w.contains(&page)) {
                continue;
            }
            if let SpaceRef::User(id) = space {
                self.vmm_mut().switch_to(Some(id)).unwrap();
            }
            let ea = esid.base().as_u64() | u64::from(page) << 12 | lo;
            for pr in [SUP, USR] {
                // Only protection may refuse: the page is resident.
                if let Err((_, r)) = self.access(ea, (hi - lo + 1) as usize, Access::Load, pr) {
                    if r != VmFaultReason::Protection && r != VmFaultReason::OutOfRange {
                        bug!(
                            "read-back of SID {sid:#x} page {page} through {space:?}:{:#x}: {r:?}",
                            esid.as_u64()
                        );
                    }
                }
            }
        }
        self.vmm_mut().switch_to(prev).unwrap();
    }

    /// Reads back a few stored pages through all their aliases.
    fn sweep(&mut self) {
        let keys: Vec<(u64, u64)> = self
            .shadow
            .iter()
            .flat_map(|(&s, m)| m.keys().map(move |&o| (s, o)))
            .collect();
        for _ in 0..4 {
            let Some((sid, off)) = self.rng.pick(&keys) else {
                return;
            };
            let page = (off / PAGE) as u32;
            let offs: Vec<u64> = self.shadow[&sid]
                .range(u64::from(page) * PAGE..(u64::from(page) + 1) * PAGE)
                .map(|(o, _)| o % PAGE)
                .take(64)
                .collect();
            self.read_back(sid, page, &offs);
        }
    }

    /// The mappings that translate now (the kernel half and the running
    /// process's): (ESID, first page, end page) of what they reach.
    fn visible(&self) -> Vec<(u64, u32, u32)> {
        let vmm = self.vmm();
        let mut visible = Vec::new();
        let mut add = |e: Esid, m: &vmm::adspace::SegmentMapping| {
            let size = vmm
                .segments()
                .get(m.handle.sid())
                .map_or(1, |s| s.size_pages());
            let w = m.window.clone().unwrap_or(0..size);
            visible.push((e.as_u64(), w.start, w.end));
        };
        for (e, m) in vmm.kernel_space().iter() {
            add(e, m);
        }
        if let Some(id) = vmm.current() {
            if let Ok(a) = vmm.space(id) {
                for (e, m) in a.iter() {
                    add(e, m);
                }
            }
        }
        visible
    }

    /// An address to access: mostly somewhere in a mapping visible now
    /// (near page and segment ends, to cross them), sometimes one at the
    /// edges of the address space.
    fn access_addr(&mut self) -> u64 {
        if self.chance(20) {
            let k = self.rng.below(16);
            return [
                u64::MAX - k,
                k,
                (1 << 60) - 1 - k,
                (KERNEL_ESID_BASE << 28) - 1 - k,
                (1 << 63) - 8,
                0xFFFF_FFFF_FFFF_F000 | self.rng.below(PAGE),
                self.rng.next(),
                (self.v.aix.galloc_base_esid << 28).wrapping_sub(1 + k),
            ][self.rng.below(8) as usize];
        }
        let visible = self.visible();
        let Some((esid, lo, hi)) = self.rng.pick(&visible) else {
            return self.rng.next();
        };
        let base = esid << 28;
        let page = u64::from(lo) + self.rng.below(u64::from(hi - lo));
        // Offsets stay below the segment's end; `base` may be the last
        // segment of the address space.
        base | match self.rng.below(6) {
            // The end of the segment: crosses into the next ESID.
            0 => SEGSIZE - 1 - self.rng.below(12),
            // The end of the reachable pages.
            1 => u64::from(hi) * PAGE - 1 - self.rng.below(12),
            // A page boundary inside.
            2 => page * PAGE + PAGE - 1 - self.rng.below(8),
            _ => page * PAGE + self.rng.below(PAGE),
        }
    }

    /// Many one-byte accesses to random pages of one visible mapping,
    /// in the state that mapping is meant for: grows the set of resident
    /// pages (and the HPT, and the frames in use) quickly.
    fn burst_op(&mut self) {
        let n = 8 + self.rng.below(40);
        let first = self.access_addr();
        let esid = first >> 28;
        let pr = if esid >= KERNEL_ESID_BASE { SUP } else { USR };
        let Some((lo, hi)) = self
            .visible()
            .into_iter()
            .find(|v| v.0 == esid)
            .map(|v| (v.1, v.2))
        else {
            return;
        };
        self.burst_at(esid, lo, hi, n, pr);
    }

    /// `n` one-byte accesses, mostly stores, to random pages `lo..hi` of
    /// the mapping at `esid`.
    fn burst_at(&mut self, esid: u64, lo: u32, hi: u32, n: u64, pr: Privilege) {
        note(format!("burst of {n} at ESID {esid:#x} pages {lo}..{hi}"));
        for _ in 0..n {
            let page = u64::from(lo) + self.rng.below(u64::from(hi - lo));
            let ea = (esid << 28) | (page * PAGE) | self.rng.below(PAGE);
            let access = match self.rng.below(10) {
                0..=5 => Access::Store,
                6 => Access::Fetch,
                _ => Access::Load,
            };
            if let Err((_, VmFaultReason::NoMemory)) = self.access(ea, 1, access, pr) {
                return;
            }
        }
    }

    fn access_op(&mut self) {
        let ea = self.access_addr();
        let access = match self.rng.below(20) {
            0..=7 => Access::Load,
            8..=16 => Access::Store,
            _ => Access::Fetch,
        };
        let pr = if self.chance(55) { USR } else { SUP };
        let len = match self.rng.below(20) {
            0 => PAGE as usize + 1 + self.rng.below(PAGE) as usize,
            1..=4 => 1,
            _ => 1 + self.rng.below(16) as usize,
        };
        let _ = self.access(ea, len, access, pr);
    }

    // --- teardown ------------------------------------------------------------

    /// Gives everything back through the services and the core and checks
    /// that the machine is as fresh as it started.
    fn teardown(&mut self) {
        note(format!(
            "teardown: kernel-made {:?}; spaces {:?}",
            self.kmade,
            self.vmm()
                .spaces()
                .map(|(id, a)| (
                    id,
                    a.iter()
                        .map(|(e, m)| (e.as_u64(), m.handle))
                        .collect::<Vec<_>>()
                ))
                .collect::<Vec<_>>()
        ));
        {
            let core = self.h.aix.vm_mut();
            core.set_fail_map_after(None);
            core.set_sid_quota(None);
        }
        // Processes first: their exits take down their regions,
        // attachments, vm_att slots and holds.
        for pid in self.live.keys().copied().collect::<Vec<_>>() {
            if let Err(e) = self.h.aix.exit(ProcessId(pid)) {
                bug!("teardown: exit {pid}: {e:?}");
            }
        }
        self.live.clear();
        self.set_env(Environment::KernelProcess);
        // The kernel context's holds, regions and vm_att slots.
        for (sid, n) in self.aix().holds(Space::Kernel) {
            for _ in 0..n {
                if let Err(e) = self.h.aix.as_puth64(0, sid << 12) {
                    bug!("teardown: kernel put of {sid:#x}: {e:?}");
                }
            }
        }
        let theirs = |d: &Driver, space: SpaceRef, e: u64| {
            let sid = d
                .vmm()
                .mapping(space, Esid::new(e))
                .ok()
                .map(|m| m.handle.sid());
            !d.kmade
                .iter()
                .any(|k| k.space == space && k.esid.as_u64() == e && Some(k.sid) == sid)
        };
        let kproc = SpaceRef::User(self.aix().vm().space_id(Space::Kernel).unwrap());
        for e in 0..16 {
            if self.mapping(Space::Kernel, e).is_some() && theirs(self, kproc, e) {
                if let Err(err) = self.h.aix.as_det64(e << 28) {
                    bug!("teardown: kernel as_det64 of register {e}: {err:?}");
                }
            }
        }
        let w = self.v.aix.vm_att_base_esid;
        for e in w..w + self.v.aix.vm_att_slots {
            if self.mapping(Space::Kernel, e).is_some() && theirs(self, SpaceRef::Kernel, e) {
                if let Err(err) = self.h.aix.vm_det(e << 28) {
                    bug!("teardown: kernel vm_det of slot {e:#x}: {err:?}");
                }
            }
        }
        // The kernel's own mappings and segments.
        for k in self.kmade.clone() {
            let vmm = self.vmm_mut();
            if vmm
                .mapping(k.space, k.esid)
                .is_ok_and(|m| m.handle.sid() == k.sid)
            {
                if let Err(e) = vmm.unmap(k.space, k.esid) {
                    bug!("teardown: kernel unmap {k:?}: {e:?}");
                }
            }
        }
        for (sid, _) in self.ksegs.clone() {
            // A pending one waits for something else to let go; the leak
            // check below names it if nothing does.
            if self
                .vmm()
                .segments()
                .get(sid)
                .is_ok_and(|s| !s.delete_pending())
            {
                if let Err(e) = self.vmm_mut().delete_segment(sid) {
                    bug!("teardown: kernel delete {sid:?}: {e:?}");
                }
            }
        }
        // Global memory and the remaining objects.
        let allocs: Vec<(u64, u64)> = self
            .aix()
            .allocations()
            .map(|a| (a.start, a.bytes))
            .collect();
        for (start, bytes) in allocs {
            if let Err(e) = self.h.aix.vm_gfree(start, bytes as i64) {
                bug!("teardown: vm_gfree({start:#x}): {e:?}");
            }
        }
        for sid in self.vms.clone() {
            if self.seg(sid).is_some_and(|i| !i.delete_pending) {
                if let Err(e) = self.h.aix.vms_delete(sid as i64) {
                    bug!("teardown: vms_delete({sid:#x}): {e:?}");
                }
            }
        }
        let vmm = self.vmm();
        if let Err(e) = vmm.check_invariants() {
            bug!("teardown: invariant broken: {e:?}");
        }
        let left: Vec<_> = vmm
            .segments()
            .iter()
            .map(|s| {
                (
                    s.sid(),
                    s.kind().clone(),
                    s.attach_count(),
                    s.hold_count(),
                    s.delete_pending(),
                )
            })
            .collect();
        if !left.is_empty() {
            let maps: Vec<_> = left.iter().map(|l| (l.0, vmm.mappings_of(l.0))).collect();
            bug!("teardown: segments leaked: {left:?}, mapped at {maps:?}");
        }
        if vmm.sids_in_use() != 0 || vmm.hptes_in_use() != 0 || self.h.machine.valid_hptes() != 0 {
            bug!(
                "teardown: {} SIDs, {} HPTEs recorded, {} valid HPTEs left",
                vmm.sids_in_use(),
                vmm.hptes_in_use(),
                self.h.machine.valid_hptes()
            );
        }
        let now = self.h.core_snapshot();
        if now != self.fresh {
            bug!(
                "teardown: the machine is not as fresh as it started: {now:?} vs {:?}",
                self.fresh
            );
        }
    }
}
