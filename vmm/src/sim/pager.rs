//! [`FlatPager`]: a deliberately small reference [`FaultHandler`] for the
//! emulated machine. It keeps a fixed table of segments (ESID → VSID) and a
//! software page table (virtual page → frame), zero-fills pages on first
//! touch, loads SLB entries round-robin, and treats the HPT as a cache:
//! evicted translations return through the fault path with their R/C bits
//! folded into the software table. Tests and benchmarks of the hardware
//! layer use it; the real VMM is [`crate::vm`].

use alloc::collections::BTreeMap;

use arch_ppc64::addr::{EffectiveAddress, Esid, PhysAddr, Ptex, Vsid};
use arch_ppc64::structures::hpte::{Hpte, Pp};
use arch_ppc64::structures::slb::{SlbEntry, SlbEntryError, SlbFlags};
use arch_ppc64::structures::{PageSize, SegmentSize};

use super::{Machine, SimHpt, SimMemory, SimSlb};
use crate::hpt::{HptManager, HptSetupError, PageMapping, VirtualPage};
use crate::platform::{
    FaultCause, FaultHandler, FaultOutcome, FrameAllocator, HptError, Interrupt, Privilege,
    SlbBackend, VmFault, VmFaultReason,
};

#[derive(Clone, Copy, Debug)]
struct Segment {
    entry: SlbEntry,
    vsid: Vsid,
    ssize: SegmentSize,
    pp: Pp,
    no_execute: bool,
}

/// Software state of one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageState {
    /// Its frame.
    pub pa: PhysAddr,
    /// Where its HPTE is, if it has one.
    pub ptex: Option<Ptex>,
    /// Reference bit collected from evicted/removed HPTEs.
    pub referenced: bool,
    /// Change bit collected from evicted/removed HPTEs.
    pub changed: bool,
}

/// What the pager did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PagerStats {
    /// SLB entries loaded on segment interrupts.
    pub segment_faults: u64,
    /// Pages given a fresh zeroed frame.
    pub zero_fills: u64,
    /// Known pages whose HPTE was re-inserted.
    pub refaults: u64,
    /// Evictions reported by the HPT manager.
    pub evictions: u64,
}

/// A minimal VMM over the emulated machine (see the module documentation).
/// Only 4K base pages.
pub struct FlatPager {
    hpt: HptManager<SimHpt>,
    slb: SimSlb,
    memory: SimMemory,
    segments: BTreeMap<u64, Segment>,
    pages: BTreeMap<VirtualPage, PageState>,
    bolted: usize,
    next_slb: usize,
    stats: PagerStats,
}

impl core::fmt::Debug for FlatPager {
    /// Its segments and counters, not its pages.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FlatPager")
            .field("segments", &self.segments.len())
            .field("pages", &self.pages.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl FlatPager {
    /// A pager for `machine`, with no segments and no bolted SLB entries.
    pub fn new(machine: &Machine) -> Result<FlatPager, HptSetupError> {
        Ok(FlatPager {
            hpt: HptManager::new(machine.hpt())?,
            slb: machine.slb(),
            memory: machine.memory(),
            segments: BTreeMap::new(),
            pages: BTreeMap::new(),
            bolted: 0,
            next_slb: 0,
            stats: PagerStats::default(),
        })
    }

    /// Makes segment `esid` (size `ssize`, 4K pages) translate through
    /// `vsid` with SLB attributes `flags`; its pages get protection `pp`
    /// and `N` if `no_execute`.
    pub fn add_segment(
        &mut self,
        esid: Esid,
        vsid: Vsid,
        ssize: SegmentSize,
        flags: SlbFlags,
        pp: Pp,
        no_execute: bool,
    ) -> Result<(), SlbEntryError> {
        let entry = SlbEntry::new(esid, vsid, ssize, PageSize::K4, flags)?;
        self.segments.insert(
            esid.as_u64(),
            Segment {
                entry,
                vsid,
                ssize,
                pp,
                no_execute,
            },
        );
        Ok(())
    }

    fn segment_for(&self, ea: EffectiveAddress) -> Option<Segment> {
        let m256 = self
            .segments
            .get(&Esid::of(ea).as_u64())
            .filter(|s| s.ssize == SegmentSize::M256);
        let t1 = || {
            self.segments
                .get(&Esid::of_segment(ea, SegmentSize::T1).as_u64())
                .filter(|s| s.ssize == SegmentSize::T1)
        };
        m256.or_else(t1).copied()
    }

    fn virtual_page(seg: &Segment, ea: EffectiveAddress) -> VirtualPage {
        VirtualPage::new(seg.vsid, ea, seg.ssize, PageSize::K4)
            .expect("SlbEntry::new checked the VSID width")
    }

    /// The software state of the page at `ea`, if it was ever touched.
    pub fn page(&self, ea: EffectiveAddress) -> Option<PageState> {
        let seg = self.segment_for(ea)?;
        self.pages.get(&Self::virtual_page(&seg, ea)).copied()
    }

    /// Number of pages ever touched.
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    /// The HPT manager.
    pub fn hpt(&self) -> &HptManager<SimHpt> {
        &self.hpt
    }

    /// Counters so far.
    pub fn stats(&self) -> PagerStats {
        self.stats
    }

    /// Removes the HPTE of the page at `ea` (if it has one), folding its
    /// R/C into the software table; the next access refaults. Returns the
    /// removed entry.
    pub fn drop_translation(&mut self, ea: EffectiveAddress) -> Result<Option<Hpte>, HptError> {
        let Some(seg) = self.segment_for(ea) else {
            return Ok(None);
        };
        let page = Self::virtual_page(&seg, ea);
        let Some(state) = self.pages.get_mut(&page) else {
            return Ok(None);
        };
        let Some(ptex) = state.ptex.take() else {
            return Ok(None);
        };
        let old = self.hpt.remove(ptex, page)?;
        if let Some(h) = old {
            state.referenced |= h.referenced();
            state.changed |= h.changed();
        }
        Ok(old)
    }

    fn load_segment(&mut self, seg: &Segment) -> Result<(), VmFaultReason> {
        let size = self.slb.slb_size();
        if self.next_slb >= size {
            self.next_slb = self.bolted;
        }
        let index = self.next_slb;
        self.next_slb += 1;
        // Invalidate what the slot held first (SlbBackend::load contract).
        if let Ok(old) = self.slb.read(index) {
            if let (true, Some(ss)) = (old.is_valid(), old.segment_size()) {
                self.slb.invalidate(old.esid().base(), ss);
            }
        }
        self.slb
            .load(index, seg.entry)
            .map_err(|e| VmFaultReason::Slb(e.into()))
    }

    fn map_page(&mut self, seg: &Segment, ea: EffectiveAddress) -> Result<(), VmFaultReason> {
        let page = Self::virtual_page(seg, ea);
        let pa = match self.pages.get(&page) {
            Some(p) => {
                self.stats.refaults += 1;
                p.pa
            }
            None => {
                let pa = self.memory.allocate().ok_or(VmFaultReason::NoMemory)?;
                self.memory.zero(pa).map_err(VmFaultReason::Frame)?;
                self.pages.insert(
                    page,
                    PageState {
                        pa,
                        ptex: None,
                        referenced: false,
                        changed: false,
                    },
                );
                self.stats.zero_fills += 1;
                pa
            }
        };
        let mut mapping = PageMapping::new(page, pa, seg.pp);
        mapping.no_execute = seg.no_execute;
        let ins = self.hpt.insert(&mapping)?;
        if let Some(ev) = ins.evicted {
            self.stats.evictions += 1;
            if let Some(victim) = ev.page.and_then(|p| self.pages.get_mut(&p)) {
                victim.ptex = None;
                victim.referenced |= ev.hpte.referenced();
                victim.changed |= ev.hpte.changed();
            }
        }
        if let Some(p) = self.pages.get_mut(&page) {
            p.ptex = Some(ins.ptex);
        }
        Ok(())
    }
}

impl FaultHandler for FlatPager {
    fn handle(&mut self, interrupt: Interrupt, _privilege: Privilege) -> FaultOutcome {
        let ea = interrupt.ea();
        let fault = |reason| {
            FaultOutcome::Fault(VmFault {
                ea,
                access: interrupt.access(),
                reason,
            })
        };
        let Some(seg) = self.segment_for(ea) else {
            return fault(VmFaultReason::NoSegment);
        };
        let done = match interrupt.cause() {
            FaultCause::NoSegment => {
                self.stats.segment_faults += 1;
                self.load_segment(&seg)
            }
            FaultCause::NoPte => self.map_page(&seg, ea),
            FaultCause::Protection => Err(VmFaultReason::Protection),
            FaultCause::NoExecute => Err(VmFaultReason::NoExecute),
            FaultCause::Key => Err(VmFaultReason::Key),
            FaultCause::Unknown => Err(VmFaultReason::UnknownCause),
        };
        match done {
            Ok(()) => FaultOutcome::Resolved,
            Err(reason) => fault(reason),
        }
    }
}
