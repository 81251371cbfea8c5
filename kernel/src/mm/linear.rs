//! The kernel's linear map: every byte of RAM at `0xc000_0000_0000_0000 +
//! real address`, through bolted 64 KiB HPTEs and bolted SLB entries at
//! the lowest indexes — what the kernel image (linked at
//! 0xc000_0000_0040_0000), its stacks, heap and frames run on once
//! MSR[IR|DR] are set.
//!
//! Like Linux's kernel segments: Ks = 0, Kp = 1 with PP = 00, so the
//! kernel reads and writes and problem state has no access (ISA "Storage
//! Protection", PP/key table). One 1 TB segment covers all RAM when the
//! processor has 1 TB segments (`ibm,processor-segment-sizes` lists 40);
//! otherwise one 256 MB segment per 256 MB of RAM.
//!
//! The VSIDs are above every VSID the VMM hands out (those are below
//! 2^35 − 1, `vmm::sid`), so no VMM segment aliases the linear map and
//! the VMM's HPT purge never selects these entries.

use arch_ppc64::addr::{EffectiveAddress, Esid, PhysAddr, Vsid};
use arch_ppc64::structures::hpte::{Hpte, Pp};
use arch_ppc64::structures::slb::{SlbEntry, SlbFlags};
use arch_ppc64::structures::{PageSize, SegmentSize};
use vmm::platform::{HptBackend, HptError};

use super::papr::PaprHpt;
use crate::bootinfo::{BootInfo, KERNEL_VIRT_BASE};

/// First VSID of the linear map (2^37, above the VMM's VSIDs).
pub const LINEAR_VSID_BASE: u64 = 1 << 37;

/// The linear map's page size: 64 KiB (SLB L||LP = 0x110; 16x fewer
/// bolted HPTEs than 4 KiB pages).
pub const LINEAR_PAGE: PageSize = PageSize::K64;

/// What [`build`] made.
#[derive(Clone, Copy, Debug)]
pub struct LinearMap {
    /// Segment size used.
    pub ssize: SegmentSize,
    /// SLB entries (hardware indexes `0..slb_entries`).
    pub slb_entries: usize,
    /// Bolted HPTEs inserted.
    pub hptes: u64,
    /// Of those, in their secondary PTEG.
    pub secondary: u64,
    /// End of the highest RAM range mapped (real address).
    pub ram_top: u64,
}

/// The VSID translating linear-map address `ea` in segments of `ssize`.
pub fn vsid_for(ea: u64, ssize: SegmentSize) -> Vsid {
    let seg = (ea - KERNEL_VIRT_BASE) >> ssize.shift();
    Vsid::new(LINEAR_VSID_BASE + seg)
}

/// The segment size the linear map uses on this processor.
pub fn segment_size(info: &BootInfo) -> SegmentSize {
    let sizes = &info.cpu.segment_sizes[..info.cpu.segment_sizes_len.min(4)];
    if sizes.contains(&40) {
        SegmentSize::T1
    } else {
        SegmentSize::M256
    }
}

/// The SLB entry (index field 0) for linear-map segment `n`.
pub fn slb_entry(n: usize, ssize: SegmentSize) -> SlbEntry {
    let ea = KERNEL_VIRT_BASE + ((n as u64) << ssize.shift());
    SlbEntry::new(
        Esid::of(EffectiveAddress::new(ea)),
        vsid_for(ea, ssize),
        ssize,
        LINEAR_PAGE,
        SlbFlags::KP,
    )
    .expect("linear-map SLB entry is well formed")
}

/// The bolted HPTE (primary form) for the linear-map page at real address `pa`.
pub fn hpte_for(pa: u64, ssize: SegmentSize) -> Hpte {
    let ea = KERNEL_VIRT_BASE + pa;
    Hpte::mapping(
        vsid_for(ea, ssize),
        EffectiveAddress::new(ea),
        ssize,
        LINEAR_PAGE,
        PhysAddr::new(pa),
        Pp::RW_NONE,
    )
    .expect("64K-aligned linear page")
    .with_bolted(true)
}

/// Inserts the bolted HPTEs for all RAM in `info` (primary PTEG, else
/// secondary).
///
/// # Panics
///
/// If both PTEGs of a page are full (impossible at boot unless the table
/// is absurdly small) or the hypervisor refuses an entry.
pub fn build(info: &BootInfo, hpt: &mut PaprHpt) -> LinearMap {
    let ssize = segment_size(info);
    let mask = hpt.pteg_count() - 1;
    let page = LINEAR_PAGE.bytes();
    let mut map = LinearMap {
        ssize,
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
            let ea = KERNEL_VIRT_BASE + pa;
            let h = hpte_for(pa, ssize);
            let hash = vmm::hpt::hash(vsid_for(ea, ssize), ea, ssize, LINEAR_PAGE);
            let primary = arch_ppc64::addr::PtegIndex::new(hash & mask);
            let secondary = arch_ppc64::addr::PtegIndex::new(!hash & mask);
            match hpt.insert(primary, None, h) {
                Ok(_) => {}
                Err(HptError::PtegFull) => {
                    hpt.insert(secondary, None, h.with_secondary(true))
                        .unwrap_or_else(|e| panic!("linear map at {pa:#x}: {e:?}"));
                    map.secondary += 1;
                }
                Err(e) => panic!("linear map at {pa:#x}: {e:?}"),
            }
            map.hptes += 1;
            pa += page;
        }
        map.ram_top = map.ram_top.max(end);
    }
    map.slb_entries = map.ram_top.div_ceil(1 << ssize.shift()).max(1) as usize;
    map
}
