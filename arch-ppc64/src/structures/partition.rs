//! Where the hardware finds a hashed page table the kernel owns
//! (hypervisor state, powernv):
//!
//! * POWER8 (ISA 2.07): SDR1 = HTABORG | HTABSIZE.
//! * POWER9/10 (ISA 3.0): a partition table whose entry for the partition
//!   (LPID 0 for a powernv kernel) holds, in doubleword 0, HR = 0 (hash)
//!   with the same HTABORG | HTABSIZE, and PTCR = PATB | PATS names the
//!   table.
//!
//! In ISA bit numbers: HTABORG is bits 4:45 (the table's real address,
//! aligned to its size), HTABSIZE bits 59:63 (`n` for a table of 2^(18+n)
//! bytes, at most 28); PATB is bits 4:51 (the partition table's address),
//! PATS bits 59:63 (a table of 2^(12+PATS) bytes, at most 24).

use crate::addr::PhysAddr;

/// Smallest HPT, log2 bytes (256 KiB, 2048 PTEGs).
pub const MIN_HPT_SHIFT: u32 = 18;
/// Largest HPT HTABSIZE can describe, log2 bytes.
pub const MAX_HPT_SHIFT: u32 = 46;

/// Fields of SDR1 and of partition-table doubleword 0.
pub mod htab {
    /// HR: radix (1) or hash (0) translation (ISA bit 0 of the partition
    /// table entry; not in SDR1).
    pub const HR: u64 = 1 << 63;
    /// HTABORG (ISA bits 4:45).
    pub const HTABORG: u64 = 0x0FFF_FFFF_FFFC_0000;
    /// HTABSIZE (ISA bits 59:63).
    pub const HTABSIZE: u64 = 0x1F;
}

/// Fields of PTCR.
pub mod ptcr {
    /// PATB (ISA bits 4:51).
    pub const PATB: u64 = 0x0FFF_FFFF_FFFF_F000;
    /// PATS (ISA bits 59:63).
    pub const PATS: u64 = 0x1F;
}

/// The HTABORG | HTABSIZE word of an HPT of 2^`shift` bytes at `base`, as
/// SDR1 and the partition table entry hold it; `None` for a size outside
/// [`MIN_HPT_SHIFT`]..=[`MAX_HPT_SHIFT`], a base not aligned to the size,
/// or one beyond HTABORG.
pub const fn htab_word(base: PhysAddr, shift: u32) -> Option<u64> {
    if shift < MIN_HPT_SHIFT || shift > MAX_HPT_SHIFT {
        return None;
    }
    let base = base.as_u64();
    if base & ((1 << shift) - 1) != 0 || base & !htab::HTABORG != 0 {
        return None;
    }
    Some(base | (shift - MIN_HPT_SHIFT) as u64)
}

/// SDR1 (POWER8) for an HPT of 2^`shift` bytes at `base` ([`htab_word`]).
pub const fn sdr1(base: PhysAddr, shift: u32) -> Option<u64> {
    htab_word(base, shift)
}

/// Partition table entry of a partition using that HPT (POWER9/10):
/// doubleword 0 is HR = 0 with [`htab_word`], doubleword 1 (the process
/// table, radix only) is 0.
pub const fn partition_entry(base: PhysAddr, shift: u32) -> Option<[u64; 2]> {
    match htab_word(base, shift) {
        Some(w) => Some([w, 0]),
        None => None,
    }
}

/// PTCR naming a partition table of 2^`shift` bytes (12..=36) at `base`,
/// aligned to its size.
pub const fn ptcr_value(base: PhysAddr, shift: u32) -> Option<u64> {
    if shift < 12 || shift > 36 {
        return None;
    }
    let base = base.as_u64();
    if base & ((1 << shift) - 1) != 0 || base & !ptcr::PATB != 0 {
        return None;
    }
    Some(base | (shift - 12) as u64)
}

/// The HPT size (log2 bytes) for `ram_bytes` of memory: about 1/128 of
/// it (Linux's rule of thumb: two 16-byte HPTEs per 4 KiB of RAM), rounded
/// up to a power of two, at least [`MIN_HPT_SHIFT`] and at most
/// [`MAX_HPT_SHIFT`].
pub const fn hpt_shift_for_ram(ram_bytes: u64) -> u32 {
    let want = ram_bytes.div_ceil(128);
    let shift = if want <= 1 {
        0
    } else {
        64 - (want - 1).leading_zeros()
    };
    if shift < MIN_HPT_SHIFT {
        MIN_HPT_SHIFT
    } else if shift > MAX_HPT_SHIFT {
        MAX_HPT_SHIFT
    } else {
        shift
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structures::{ibm_bit, ibm_bits};

    #[test]
    fn fields_match_isa_bit_numbers() {
        assert_eq!(htab::HR, ibm_bit(0));
        assert_eq!(htab::HTABORG, ibm_bits(4, 45));
        assert_eq!(htab::HTABSIZE, ibm_bits(59, 63));
        assert_eq!(ptcr::PATB, ibm_bits(4, 51));
        assert_eq!(ptcr::PATS, ibm_bits(59, 63));
    }

    #[test]
    fn htab_words_encode_base_and_size() {
        // 256 KiB at 0x4_0000: HTABSIZE 0.
        assert_eq!(sdr1(PhysAddr::new(0x4_0000), 18), Some(0x4_0000));
        // 16 MiB (2^24) at 0x1_0000_0000: HTABSIZE 6.
        assert_eq!(
            partition_entry(PhysAddr::new(0x1_0000_0000), 24),
            Some([0x1_0000_0006, 0])
        );
        // The entry says hash, not radix.
        assert_eq!(
            partition_entry(PhysAddr::new(0x1_0000_0000), 24).unwrap()[0] & htab::HR,
            0
        );
        // Misaligned, too small, too large: refused (a PhysAddr never
        // reaches beyond HTABORG).
        assert_eq!(sdr1(PhysAddr::new(0x2_0000), 18), None);
        assert_eq!(sdr1(PhysAddr::new(0), 17), None);
        assert_eq!(sdr1(PhysAddr::new(0), 47), None);
        // The largest describable table.
        assert_eq!(sdr1(PhysAddr::new(0), 46), Some(28));
    }

    #[test]
    fn ptcr_encodes_base_and_size() {
        // A 4 KiB partition table (LPID 0 and more) at 0x30_0000: PATS 0.
        assert_eq!(ptcr_value(PhysAddr::new(0x30_0000), 12), Some(0x30_0000));
        assert_eq!(ptcr_value(PhysAddr::new(0x30_1000), 16), None);
        assert_eq!(ptcr_value(PhysAddr::new(0x1_0000), 16), Some(0x1_0004));
        assert_eq!(ptcr_value(PhysAddr::new(0x1000), 11), None);
    }

    #[test]
    fn hpt_size_follows_ram() {
        // 512 MiB / 128 = 4 MiB; 2 GiB → 16 MiB; 16 GiB → 128 MiB.
        assert_eq!(hpt_shift_for_ram(512 << 20), 22);
        assert_eq!(hpt_shift_for_ram(2 << 30), 24);
        assert_eq!(hpt_shift_for_ram(16 << 30), 27);
        // Not a power of two: rounded up.
        assert_eq!(hpt_shift_for_ram(3 << 30), 25);
        // Small memory: the 256 KiB minimum; absurd memory: the maximum.
        assert_eq!(hpt_shift_for_ram(16 << 20), MIN_HPT_SHIFT);
        assert_eq!(hpt_shift_for_ram(0), MIN_HPT_SHIFT);
        assert_eq!(hpt_shift_for_ram(u64::MAX), MAX_HPT_SHIFT);
    }
}
