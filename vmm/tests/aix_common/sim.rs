//! The suite's harness on the real VMM ([`vmm::vm::Vmm`] through
//! [`vmm::aix::CoreVm`]) with loads and stores run by the emulated MMU
//! ([`vmm::sim::Machine`]) in problem and supervisor state. `aix_sim.rs`
//! runs the shared suite on it; `robustness.rs` drives it with random
//! sequences on machines of several sizes.
//!
//! The snapshot a refused call is checked against includes the segment
//! table, every address space's mappings, the valid HPTEs, the free frames
//! and the SIDs in use; every snapshot also checks the core's invariants
//! (HPT, SLB and tables agree).

use arch_ppc64::addr::{EffectiveAddress, PtegIndex, Ptex};
use arch_ppc64::structures::hpte::{Hpte, Pp};
use vmm::aix::{Aix, AixConfig, AixConfigError, CoreVm, Space};
use vmm::platform::{
    Environment, FrameAllocator, HptBackend, HptError, Privilege, RefChange, RemoveCondition,
};
use vmm::sim::{Machine, SimConfig, SimHpt, SimMemory, SimSlb};
use vmm::vm::{Vmm, VmmConfig};

use super::Harness;

/// The machine's HPT with only the first `slots` slots of each PTEG
/// usable, and with `half` only the lower half of the PTEGs: the table
/// evicts long before it would with all of it, which puts the eviction
/// path (and the R/C folding behind it) under pressure. The MMU still
/// searches everywhere; the unused slots stay invalid.
///
/// A page's secondary PTEG is `mask - primary`, so exactly one of its two
/// PTEGs is in the lower half: with `half` and one slot every page has
/// exactly one slot it can go to, and nothing is left unplaceable.
pub struct CappedHpt {
    inner: SimHpt,
    slots: u8,
    half: bool,
}

impl CappedHpt {
    /// `hpt` with `slots` (1..=8) usable slots per PTEG, in every PTEG or
    /// (`half`) in the lower half only.
    pub fn new(hpt: SimHpt, slots: u8, half: bool) -> Self {
        assert!((1..=8).contains(&slots), "1..=8 slots per PTEG");
        CappedHpt {
            inner: hpt,
            slots,
            half,
        }
    }

    fn usable(&self, group: PtegIndex) -> u8 {
        if self.half && group.as_u64() >= self.inner.pteg_count() / 2 {
            0
        } else {
            self.slots
        }
    }
}

impl From<SimHpt> for CappedHpt {
    /// No cap: all eight slots.
    fn from(hpt: SimHpt) -> Self {
        CappedHpt::new(hpt, 8, false)
    }
}

impl HptBackend for CappedHpt {
    fn pteg_count(&self) -> u64 {
        self.inner.pteg_count()
    }
    fn insert(&mut self, group: PtegIndex, slot: Option<u8>, hpte: Hpte) -> Result<Ptex, HptError> {
        let usable = self.usable(group);
        match slot {
            Some(s) if s >= usable => Err(HptError::PtegFull),
            Some(s) => self.inner.insert(group, Some(s), hpte),
            None => {
                for s in 0..usable {
                    match self.inner.insert(group, Some(s), hpte) {
                        Err(HptError::PtegFull) => continue,
                        r => return r,
                    }
                }
                Err(HptError::PtegFull)
            }
        }
    }
    fn remove(&mut self, ptex: Ptex, cond: RemoveCondition) -> Result<Hpte, HptError> {
        self.inner.remove(ptex, cond)
    }
    fn protect(&mut self, ptex: Ptex, avpn: u64, pp: Pp, no_exec: bool) -> Result<(), HptError> {
        self.inner.protect(ptex, avpn, pp, no_exec)
    }
    fn read(&self, ptex: Ptex) -> Result<Hpte, HptError> {
        self.inner.read(ptex)
    }
    fn remove_batch(
        &mut self,
        requests: &[(Ptex, RemoveCondition)],
    ) -> Vec<Result<RefChange, HptError>> {
        self.inner.remove_batch(requests)
    }
}

/// The services over the real core on an emulated machine whose HPT
/// backend is `H` (the machine's own by default).
pub struct SimHarness<H: HptBackend = SimHpt> {
    /// The emulated machine the accesses run on.
    pub machine: Machine,
    /// The services over the core.
    pub aix: Aix<CoreVm<H, SimSlb, SimMemory>>,
    /// Whether every snapshot scans the HPT: checks the core's invariants
    /// and counts the valid entries. A driver that checks the invariants
    /// after every step itself turns this off; the count then comes from
    /// the core's record of its entries, which the invariants tie to the
    /// table.
    pub scan_on_snapshot: bool,
}

/// Segments (SID, pages, attaches, holds, pending), mappings per space
/// (space, ESID, handle, window), valid HPTEs, free frames, SIDs in use.
pub type CoreSnap = (
    Vec<(u64, u32, u32, u32, bool)>,
    Vec<(Option<u32>, u64, u64, Option<core::ops::Range<u32>>)>,
    usize,
    usize,
    usize,
);

impl<H: HptBackend> SimHarness<H> {
    /// A machine as `sim` says, whose HPT is given to the core through
    /// `hpt`, a core set up as `vmm` says, and the services laid out as
    /// `aix` says (if that layout is valid); the kernel process runs.
    pub fn try_build(
        sim: SimConfig,
        hpt: impl FnOnce(SimHpt) -> H,
        vmm: VmmConfig,
        aix: AixConfig,
    ) -> Result<Self, AixConfigError> {
        let machine = Machine::new(sim).unwrap();
        let vmm =
            Vmm::with_config(hpt(machine.hpt()), machine.slb(), machine.memory(), vmm).unwrap();
        let core = CoreVm::new(vmm);
        let mut h = SimHarness {
            machine,
            aix: Aix::with_config(core, aix)?,
            scan_on_snapshot: true,
        };
        h.aix.vm_mut().switch_to(Space::Kernel).unwrap();
        Ok(h)
    }
}

impl<H: HptBackend + From<SimHpt>> Harness for SimHarness<H> {
    type Vm = CoreVm<H, SimSlb, SimMemory>;
    type Snapshot = CoreSnap;

    /// The default machine (16 MiB, 2^18-byte HPT, 32 SLB entries, two
    /// bolted) and core.
    fn try_with_config(config: AixConfig) -> Result<Self, AixConfigError> {
        Self::try_build(SimConfig::default(), H::from, VmmConfig::new(2), config)
    }
    fn aix(&mut self) -> &mut Aix<Self::Vm> {
        &mut self.aix
    }
    fn aix_ref(&self) -> &Aix<Self::Vm> {
        &self.aix
    }
    fn set_env(&mut self, env: Environment) {
        let vm = self.aix.vm_mut();
        vm.set_environment(env);
        match env {
            // An unknown process keeps the current space (the services
            // must refuse it anyway).
            Environment::Process(p) => {
                let _ = vm.switch_to(Space::Process(p));
            }
            Environment::KernelProcess => vm.switch_to(Space::Kernel).unwrap(),
            Environment::Interrupt => {}
        }
    }
    fn load(&mut self, ea: u64, pr: Privilege) -> Result<u8, String> {
        let vmm = self.aix.vm_mut().vmm_mut();
        self.machine
            .load_u8(EffectiveAddress::new(ea), pr, vmm)
            .map_err(|f| format!("{f:?}"))
    }
    fn store(&mut self, ea: u64, pr: Privilege, v: u8) -> Result<(), String> {
        let vmm = self.aix.vm_mut().vmm_mut();
        self.machine
            .store_u8(EffectiveAddress::new(ea), v, pr, vmm)
            .map_err(|f| format!("{f:?}"))
    }
    fn core_snapshot(&self) -> CoreSnap {
        let vmm = self.aix.vm().vmm();
        if self.scan_on_snapshot {
            vmm.check_invariants().expect("core invariants hold");
        }
        let segs = vmm
            .segments()
            .iter()
            .map(|s| {
                (
                    s.sid().as_u64(),
                    s.size_pages(),
                    s.attach_count(),
                    s.hold_count(),
                    s.delete_pending(),
                )
            })
            .collect();
        let mut maps: Vec<_> = vmm
            .kernel_space()
            .iter()
            .map(|(e, m)| (None, e.as_u64(), m.handle.raw(), m.window.clone()))
            .collect();
        for (id, a) in vmm.spaces() {
            for (e, m) in a.iter() {
                maps.push((Some(id.0), e.as_u64(), m.handle.raw(), m.window.clone()));
            }
        }
        (
            segs,
            maps,
            if self.scan_on_snapshot {
                self.machine.valid_hptes()
            } else {
                vmm.hptes_in_use()
            },
            vmm.frames().free_frames(),
            vmm.sids_in_use(),
        )
    }
    fn limit_sids(&mut self, more: u64) -> bool {
        let core = self.aix.vm_mut();
        let quota = core.vmm().sids_in_use() + more as usize;
        core.set_sid_quota(Some(quota));
        true
    }
    fn fail_map_after(&mut self, n: u32) -> bool {
        self.aix.vm_mut().set_fail_map_after(Some(n));
        true
    }
}
