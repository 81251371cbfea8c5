//! [`Tlbie`]: the [`TlbInvalidate`] of a kernel that owns its hashed page
//! table (hypervisor state, powernv).
//!
//! An HPTE does not hold its whole virtual address, which `tlbie` needs:
//! its AVPN is VA bits 0:54, and the page-number bits between the page
//! size and 2^23 are only in the hash that chose the PTEG.
//! [`crate::hpt::decode_entry`] brings them back by undoing the hash;
//! the table must have at least 2^11 PTEGs for 4K pages (the ISA's
//! smallest table, 256 KiB, has exactly that).

use arch_ppc64::addr::Ptex;
use arch_ppc64::instructions::tlb;
use arch_ppc64::structures::hpte::Hpte;

use crate::hpt::{decode_entry, VirtualPage};
use crate::native::TlbInvalidate;

/// The RB operand of the `tlbie` that drops `page`'s translations
/// ([`arch_ppc64::instructions::tlb::tlbie_rb`]).
pub fn tlbie_rb(page: VirtualPage) -> u64 {
    tlb::tlbie_rb(
        page.vsid(),
        page.offset(),
        page.segment_size(),
        page.page_size(),
    )
}

/// The [`TlbInvalidate`] of a kernel that owns the HPT: for the entry
/// [`crate::native::NativeHpt`] just invalidated, `ptesync; tlbie; eieio;
/// tlbsync; ptesync` with the page's RB, on every processor of partition
/// `lpid` (on the host, where no MMU walks the table, it only counts and
/// remembers the RB it would have issued).
///
/// An entry whose page cannot be named ([`decode_entry`] gives `None`:
/// never one the manager entered) is dropped with a `tlbie` of every
/// translation of the partition (IS = 0b10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tlbie {
    pteg_mask: u64,
    lpid: u64,
    issued: u64,
    last_rb: Option<u64>,
}

/// `tlbie` IS = 0b10: every translation of the partition in RS.
const RB_ALL_OF_PARTITION: u64 = 0b10 << (63 - 53);

impl Tlbie {
    /// For a table of `pteg_count` PTEGs (a power of two) in partition
    /// `lpid` (0 for a powernv kernel's own).
    pub fn new(pteg_count: u64, lpid: u64) -> Tlbie {
        Tlbie {
            pteg_mask: pteg_count.saturating_sub(1),
            lpid,
            issued: 0,
            last_rb: None,
        }
    }

    /// `tlbie`s issued so far.
    pub fn issued(&self) -> u64 {
        self.issued
    }

    /// The RB of the last one.
    pub fn last_rb(&self) -> Option<u64> {
        self.last_rb
    }
}

impl TlbInvalidate for Tlbie {
    fn invalidate(&mut self, ptex: Ptex, old: Hpte) {
        let rb = decode_entry(ptex, old, self.pteg_mask).map_or(RB_ALL_OF_PARTITION, tlbie_rb);
        self.issued += 1;
        self.last_rb = Some(rb);
        #[cfg(target_arch = "powerpc64")]
        // SAFETY: a NativeHpt with this hook belongs to a kernel in
        // hypervisor state that owns the table; the entry was invalidated
        // in memory first, as invalidate_page requires.
        unsafe {
            tlb::invalidate_page(rb, self.lpid)
        };
        #[cfg(not(target_arch = "powerpc64"))]
        let _ = self.lpid;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hpt::{HptManager, PageMapping};
    use crate::native::NativeHpt;
    use arch_ppc64::addr::PhysAddr;
    use arch_ppc64::addr::Vsid;
    use arch_ppc64::structures::hpte::Pp;
    use arch_ppc64::structures::PageSize;
    use arch_ppc64::structures::SegmentSize;

    /// A small deterministic generator (xorshift).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn random_page(rng: &mut Rng) -> VirtualPage {
        let ssize = if rng.next() & 1 == 0 {
            SegmentSize::M256
        } else {
            SegmentSize::T1
        };
        let psize = [PageSize::K4, PageSize::K64, PageSize::M16][(rng.next() % 3) as usize];
        let vsid = rng.next() >> (64 - ssize.vsid_bits());
        let offset = rng.next() & ssize.offset_mask();
        VirtualPage::from_offset(Vsid::new(vsid), offset, ssize, psize).unwrap()
    }

    #[test]
    fn a_table_too_small_for_the_hash_bits_names_no_4k_page() {
        let page = VirtualPage::from_offset(
            Vsid::new(0x1234),
            0x0abc_d000,
            SegmentSize::M256,
            PageSize::K4,
        )
        .unwrap();
        let hpte = PageMapping::new(page, PhysAddr::new(0), Pp::RW_RW)
            .hpte(false)
            .unwrap();
        let group = arch_ppc64::addr::PtegIndex::new(page.hash() & 0x3ff);
        assert_eq!(decode_entry(group.ptex(0), hpte, 0x3ff), None);
        let group = arch_ppc64::addr::PtegIndex::new(page.hash() & 0x7ff);
        assert_eq!(decode_entry(group.ptex(0), hpte, 0x7ff), Some(page));
    }

    #[test]
    fn a_native_table_issues_one_tlbie_per_removal_with_the_pages_rb() {
        // The smallest table the ISA allows: 2^18 bytes, 2^11 PTEGs.
        let table = alloc::vec![0u8; 1 << 18];
        let count = (table.len() / crate::native::PTEG_BYTES) as u64;
        let mut hpt =
            HptManager::new(NativeHpt::with_tlb(table, Tlbie::new(count, 0)).unwrap()).unwrap();
        let mut rng = Rng(42);
        for _ in 0..200 {
            let page = random_page(&mut rng);
            let ins = hpt
                .insert(&PageMapping::new(
                    page,
                    PhysAddr::new(0x1000_0000),
                    Pp::RW_RW,
                ))
                .unwrap();
            let before = hpt.backend().tlb().issued();
            hpt.remove(ins.ptex, page).unwrap();
            let t = hpt.backend().tlb();
            assert_eq!(t.issued(), before + 1);
            assert_eq!(t.last_rb(), Some(tlbie_rb(page)));
        }
    }
}
