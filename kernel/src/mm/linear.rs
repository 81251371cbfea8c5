//! The kernel's linear map: every byte of RAM at `0xc000_0000_0000_0000 +
//! real address`, through bolted HPTEs and bolted SLB entries at the
//! lowest indexes — what the kernel image (linked at
//! 0xc000_0000_0040_0000), its stacks, heap and frames run on once
//! MSR[IR|DR] are set.
//!
//! Pages are 16 MiB where the platform offers them ([`choose_page_size`]:
//! `ibm,segment-page-sizes` lists 16M pages in 16M-base segments, which
//! QEMU does with `-M pseries,cap-hpt-max-page-size=16M`), else 64 KiB.
//! The HPTE count is what makes boot cost grow with RAM: 16 GiB takes
//! 1,024 bolted 16M HPTEs instead of 262,144 64K ones, and far fewer PTEGs
//! hold a linear-map entry that every later insert has to step over.
//!
//! Like Linux's kernel segments: Ks = 0, Kp = 1 with PP = 00, so the
//! kernel reads and writes and problem state has no access (ISA "Storage
//! Protection", PP/key table). One 1 TB segment covers all RAM when the
//! processor has 1 TB segments (`ibm,processor-segment-sizes` lists 40);
//! otherwise one 256 MB segment per 256 MB of RAM. Every linear segment
//! has the linear map's page size as its base page size.
//!
//! The VSIDs are above every VSID the VMM hands out (those are below
//! 2^35 − 1, `vmm::sid`), so no VMM segment aliases the linear map and
//! the VMM's HPT purge never selects these entries.

use arch_ppc64::addr::{EffectiveAddress, Esid, PhysAddr, PtegIndex, Vsid};
use arch_ppc64::instructions::{barrier, slb};
use arch_ppc64::structures::hpte::{self, Hpte, Pp};
use arch_ppc64::structures::slb::{SlbEntry, SlbFlags};
use arch_ppc64::structures::{PageSize, SegmentSize};
use vmm::platform::{HptBackend, HptError};

use crate::bootinfo::{BootInfo, PhysRange, SegmentPageSizes, KERNEL_VIRT_BASE};

/// First VSID of the linear map (2^37, above the VMM's VSIDs).
pub const LINEAR_VSID_BASE: u64 = 1 << 37;

/// What [`build`] made.
#[derive(Clone, Copy, Debug)]
pub struct LinearMap {
    /// Segment size used.
    pub ssize: SegmentSize,
    /// Page size of every bolted HPTE and base page size of every linear
    /// segment.
    pub psize: PageSize,
    /// SLB entries (hardware indexes `0..slb_entries`).
    pub slb_entries: usize,
    /// Bolted HPTEs inserted.
    pub hptes: u64,
    /// Of those, in their secondary PTEG.
    pub secondary: u64,
    /// End of the highest RAM range mapped (real address).
    pub ram_top: u64,
}

impl LinearMap {
    /// The SLB entry (index field 0) for linear-map segment `n`.
    pub fn slb_entry(&self, n: usize) -> SlbEntry {
        let ea = KERNEL_VIRT_BASE + ((n as u64) << self.ssize.shift());
        SlbEntry::new(
            Esid::of(EffectiveAddress::new(ea)),
            vsid_for(ea, self.ssize),
            self.ssize,
            self.psize,
            SlbFlags::KP,
        )
        .expect("linear-map SLB entry is well formed")
    }

    /// Empties this processor's SLB and loads the linear map's bolted
    /// entries at hardware indexes `0..slb_entries`: what every processor
    /// does before it turns translation on (the SLB is per processor; the
    /// HPTEs are shared).
    ///
    /// # Safety
    ///
    /// Translation must be off (MSR\[IR\] = MSR\[DR\] = 0): the running
    /// code loses every segment for a moment.
    pub unsafe fn load_slb(&self) {
        // SAFETY: translation is off (the caller's contract), so nothing
        // needs an SLB entry until the loads below are done.
        unsafe {
            slb::invalidate_all();
            for n in 0..self.slb_entries {
                let e = self.slb_entry(n).with_index(n).expect("index");
                slb::slbmte(e.vsid_word, e.esid_word);
            }
        }
        barrier::isync();
    }

    /// The bolted HPTE (primary form) for the linear-map page holding real
    /// address `pa`.
    pub fn hpte_for(&self, pa: u64) -> Hpte {
        let pa = pa & !self.psize.offset_mask();
        let ea = KERNEL_VIRT_BASE + pa;
        Hpte::mapping(
            vsid_for(ea, self.ssize),
            EffectiveAddress::new(ea),
            self.ssize,
            self.psize,
            PhysAddr::new(pa),
            Pp::RW_NONE,
        )
        .expect("page-aligned linear page")
        .with_bolted(true)
    }

    /// The primary hash of the linear-map page holding `ea`.
    pub fn hash(&self, ea: u64) -> u64 {
        vmm::hpt::hash(vsid_for(ea, self.ssize), ea, self.ssize, self.psize)
    }
}

/// The VSID translating linear-map address `ea` in segments of `ssize`.
pub fn vsid_for(ea: u64, ssize: SegmentSize) -> Vsid {
    let seg = (ea - KERNEL_VIRT_BASE) >> ssize.shift();
    Vsid::new(LINEAR_VSID_BASE + seg)
}

/// The segment size the linear map uses on this processor.
///
/// A kernel-owned table in the ISA 3.0 layout (powernv on POWER9/10) holds
/// 68-bit virtual addresses only, where a 1 TB segment's VSID has 28 bits:
/// the linear map's VSIDs (from 2^37) need 256 MB segments there, whose
/// VSIDs have 40.
pub fn segment_size(info: &BootInfo) -> SegmentSize {
    let sizes = &info.cpu.segment_sizes[..info.cpu.segment_sizes_len.min(4)];
    let va68 = crate::platform::is_powernv() && crate::platform::powernv::isa300(info.cpu.pvr);
    if sizes.contains(&40) && !va68 {
        SegmentSize::T1
    } else {
        SegmentSize::M256
    }
}

/// Whether `ibm,segment-page-sizes` offers 16M pages in 16M-base segments
/// with the encodings arch-ppc64 writes: SLB `L || LP` = 0x100 and HPTE LP
/// code 0. A 16M page inside a 4K or 64K segment (which QEMU also lists)
/// does not count: every page of a linear segment has its base size.
pub fn offers_16m(mut sps: SegmentPageSizes<'_>) -> bool {
    let m16 = PageSize::M16;
    sps.any(|seg| {
        seg.base_shift == m16.shift()
            && u64::from(seg.slb_encoding) == m16.slb_llp()
            && seg
                .pages
                .chunks_exact(2)
                .any(|p| p[0] == m16.shift() && u64::from(p[1]) << 12 == hpte::r::LP_16M)
    })
}

/// The linear map's page size: 16M when the platform offers it
/// ([`offers_16m`]) and every memory range starts and ends on a 16M
/// boundary (a 16M page reaching past RAM would be refused by `H_ENTER`,
/// and a linear segment cannot mix in smaller pages); else 64K, which
/// every pseries machine offers.
pub fn choose_page_size(sps: SegmentPageSizes<'_>, memory: &[PhysRange]) -> PageSize {
    let aligned = memory.iter().all(|r| {
        let mask = PageSize::M16.offset_mask();
        r.base & mask == 0 && r.size & mask == 0
    });
    if aligned && offers_16m(sps) {
        PageSize::M16
    } else {
        PageSize::K64
    }
}

/// Inserts the bolted HPTEs for all RAM in `info` (primary PTEG, else
/// secondary), in pages of [`choose_page_size`].
///
/// # Panics
///
/// If both PTEGs of a page are full (impossible at boot unless the table
/// is absurdly small) or the hypervisor refuses an entry.
pub fn build(info: &BootInfo, hpt: &mut impl HptBackend) -> LinearMap {
    let ssize = segment_size(info);
    let psize = choose_page_size(info.segment_page_sizes(), info.memory.as_slice());
    let mask = hpt.pteg_count() - 1;
    let page = psize.bytes();
    let mut map = LinearMap {
        ssize,
        psize,
        slb_entries: 0,
        hptes: 0,
        secondary: 0,
        ram_top: 0,
    };
    for r in info.memory.as_slice() {
        let start = r.base.next_multiple_of(page);
        let end = r.end() & !(page - 1);
        let mut pa = start;
        while pa < end {
            let h = map.hpte_for(pa);
            let hash = map.hash(KERNEL_VIRT_BASE + pa);
            let primary = PtegIndex::new(hash & mask);
            let secondary = PtegIndex::new(!hash & mask);
            match hpt.insert(primary, None, h) {
                Ok(_) => {}
                Err(HptError::PtegFull) => {
                    hpt.insert(secondary, None, h.with_secondary(true))
                        .unwrap_or_else(|e| panic!("linear map at {pa:#x}: {e:?}"));
                    map.secondary += 1;
                }
                Err(e) => panic!("linear map at {pa:#x} ({psize} page): {e:?}"),
            }
            map.hptes += 1;
            pa += page;
        }
        map.ram_top = map.ram_top.max(end);
    }
    map.slb_entries = map.ram_top.div_ceil(1 << ssize.shift()).max(1) as usize;
    map
}
