//! Shared fixture of the object-layer integration tests: a [`Vmm`] over the
//! emulated machine, and "processes" that run loads, stores and fetches on
//! it at problem or supervisor privilege.
#![allow(dead_code)]

use arch_ppc64::addr::{EffectiveAddress, Esid};
use vmm::platform::{
    Access, FaultHandler, FaultOutcome, FrameAllocator, Privilege, VmFault, VmFaultReason,
};
use vmm::sim::{Machine, SimConfig, SimHpt, SimMemory, SimSlb, MAX_INTERRUPTS_PER_ACCESS};
use vmm::vm::Vmm;

/// The VMM over the emulated machine's backends.
pub type SimVmm = Vmm<SimHpt, SimSlb, SimMemory>;

/// Bolted SLB entries, as Linux.
pub const BOLTED: usize = 2;

/// A machine and its VMM.
pub struct Env {
    pub machine: Machine,
    pub vmm: SimVmm,
    pub total_frames: usize,
}

impl Env {
    /// A machine with `memory` bytes, the smallest HPT (2048 PTEGs) and an
    /// SLB of `slb_size` entries.
    pub fn new(memory: usize, slb_size: usize) -> Env {
        let machine = Machine::new(SimConfig {
            memory_bytes: memory,
            hpt_shift: 18,
            slb_size,
        })
        .expect("machine");
        let vmm = Vmm::new(machine.hpt(), machine.slb(), machine.memory(), BOLTED).expect("vmm");
        let total_frames = machine.memory().free_frames();
        Env {
            machine,
            vmm,
            total_frames,
        }
    }

    /// Stores a byte at `ea`.
    pub fn store(&mut self, ea: u64, v: u8, pr: Privilege) -> Result<(), VmFaultReason> {
        self.machine
            .store_u8(EffectiveAddress::new(ea), v, pr, &mut self.vmm)
            .map_err(|f: VmFault| f.reason)
    }

    /// Loads a byte from `ea`.
    pub fn load(&mut self, ea: u64, pr: Privilege) -> Result<u8, VmFaultReason> {
        self.machine
            .load_u8(EffectiveAddress::new(ea), pr, &mut self.vmm)
            .map_err(|f| f.reason)
    }

    /// Fetches (translates for instruction fetch) at `ea`, taking
    /// interrupts as the machine would.
    pub fn fetch(&mut self, ea: u64, pr: Privilege) -> Result<(), VmFaultReason> {
        let ea = EffectiveAddress::new(ea);
        for _ in 0..MAX_INTERRUPTS_PER_ACCESS {
            match self.machine.translate(ea, Access::Fetch, pr) {
                Ok(_) => return Ok(()),
                Err(i) => match self.vmm.handle(i, pr) {
                    FaultOutcome::Resolved => continue,
                    FaultOutcome::Fault(f) => return Err(f.reason),
                },
            }
        }
        Err(VmFaultReason::RetriesExhausted)
    }

    /// Asserts nothing is left: no frame, SID, HPTE or segment.
    pub fn assert_empty(&self) {
        assert_eq!(
            self.machine.memory().free_frames(),
            self.total_frames,
            "frames leaked"
        );
        assert_eq!(self.vmm.sids_in_use(), 0, "SIDs leaked");
        assert_eq!(self.vmm.hptes_in_use(), 0, "HPTE records leaked");
        assert_eq!(self.machine.valid_hptes(), 0, "valid HPTEs left");
        assert!(self.vmm.segments().is_empty(), "segments left");
    }
}

/// The EA of byte `offset` of page `page` of segment `esid`.
pub fn ea(esid: u64, page: u32, offset: u64) -> u64 {
    Esid::new(esid).base().as_u64() | (u64::from(page) << 12) | offset
}
