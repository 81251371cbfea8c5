//! Cause bits of the Data Storage Interrupt Status Register (DSISR) as set
//! by a Data Storage interrupt (vector 0x300), Power ISA v3.1 Book III
//! §7.5.3.
//!
//! DSISR is a 32-bit register occupying ISA bits 32:63 of the 64-bit value
//! `mfspr` returns, so ISA bit `n` is `1 << (63 - n)`. The values agree with
//! QEMU's `target/ppc/cpu.h` and Linux's `asm/reg.h`.

use bitflags::bitflags;

bitflags! {
    /// Why a Data Storage interrupt happened.
    ///
    /// Build it from the raw SPR value with [`DsisrFlags::from_dsisr`].
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct DsisrFlags: u64 {
        /// ISA bit 33: no translation was found (hash: no matching HPTE in
        /// the primary or secondary PTEG; radix: invalid PTE). The page
        /// fault case a VMM resolves by inserting an HPTE.
        const NOPTE = 1 << (63 - 33);
        /// ISA bit 36: the access is not permitted by the page protection
        /// (the HPTE's PP bits with the SLB key Ks/Kp).
        const PROTFAULT = 1 << (63 - 36);
        /// ISA bit 37: the access type is not supported for the storage
        /// attributes (e.g. `lwarx`/`stwcx.` to caching-inhibited storage).
        const BADACCESS = 1 << (63 - 37);
        /// ISA bit 38: the access was a store (0 = load).
        const ISSTORE = 1 << (63 - 38);
        /// ISA bit 41: a data address watchpoint (DAWR/DABR) matched.
        const DABRMATCH = 1 << (63 - 41);
        /// ISA bit 42: the access is not permitted by virtual page class key
        /// protection (the AMR field for the HPTE's storage key).
        const AMR = 1 << (63 - 42);
        /// ISA bit 44 (ISA 3.0 radix): unsupported radix tree configuration.
        const R_BADCONFIG = 1 << (63 - 44);
        /// ISA bit 45 (ISA 3.0 radix): reference/change bits could not be
        /// set atomically.
        const ATOMIC_RC = 1 << (63 - 45);
        /// ISA bit 46 (ISA 3.0 radix): the fault happened while translating
        /// a process-table or page-table entry address.
        const PRTABLE_FAULT = 1 << (63 - 46);
    }
}

impl DsisrFlags {
    /// Interprets a raw DSISR value, dropping bits this type does not name.
    #[must_use]
    pub const fn from_dsisr(raw: u64) -> DsisrFlags {
        DsisrFlags::from_bits_truncate(raw)
    }

    /// True if the faulting access was a store.
    #[must_use]
    pub const fn is_store(self) -> bool {
        self.contains(DsisrFlags::ISSTORE)
    }

    /// True if the fault was a missing translation (as opposed to a
    /// protection or key violation on an existing one).
    #[must_use]
    pub const fn is_no_translation(self) -> bool {
        self.contains(DsisrFlags::NOPTE)
    }

    /// True if an existing translation forbade the access, by page
    /// protection or by storage key.
    #[must_use]
    pub const fn is_protection(self) -> bool {
        self.intersects(DsisrFlags::PROTFAULT.union(DsisrFlags::AMR))
    }
}

#[cfg(test)]
mod tests {
    use super::DsisrFlags;

    use crate::structures::ibm_bit as isa_bit;

    #[test]
    fn bits_match_isa_numbers_and_qemu_values() {
        assert_eq!(DsisrFlags::NOPTE.bits(), isa_bit(33));
        assert_eq!(DsisrFlags::NOPTE.bits(), 0x4000_0000);
        assert_eq!(DsisrFlags::PROTFAULT.bits(), isa_bit(36));
        assert_eq!(DsisrFlags::PROTFAULT.bits(), 0x0800_0000);
        assert_eq!(DsisrFlags::BADACCESS.bits(), isa_bit(37));
        assert_eq!(DsisrFlags::BADACCESS.bits(), 0x0400_0000);
        assert_eq!(DsisrFlags::ISSTORE.bits(), isa_bit(38));
        assert_eq!(DsisrFlags::ISSTORE.bits(), 0x0200_0000);
        assert_eq!(DsisrFlags::DABRMATCH.bits(), isa_bit(41));
        assert_eq!(DsisrFlags::DABRMATCH.bits(), 0x0040_0000);
        assert_eq!(DsisrFlags::AMR.bits(), isa_bit(42));
        assert_eq!(DsisrFlags::AMR.bits(), 0x0020_0000);
        assert_eq!(DsisrFlags::R_BADCONFIG.bits(), isa_bit(44));
        assert_eq!(DsisrFlags::R_BADCONFIG.bits(), 0x0008_0000);
        assert_eq!(DsisrFlags::ATOMIC_RC.bits(), isa_bit(45));
        assert_eq!(DsisrFlags::ATOMIC_RC.bits(), 0x0004_0000);
        assert_eq!(DsisrFlags::PRTABLE_FAULT.bits(), isa_bit(46));
        assert_eq!(DsisrFlags::PRTABLE_FAULT.bits(), 0x0002_0000);
    }

    #[test]
    fn all_bits_fit_in_the_32_bit_register() {
        assert_eq!(DsisrFlags::all().bits() >> 32, 0);
    }

    #[test]
    fn decodes_store_to_unmapped_page() {
        // What QEMU reports for a store with no HPTE: NOPTE | ISSTORE.
        let d = DsisrFlags::from_dsisr(0x4200_0000);
        assert!(d.is_no_translation());
        assert!(d.is_store());
        assert!(!d.is_protection());
    }

    #[test]
    fn decodes_key_and_pp_violations() {
        let load_key = DsisrFlags::from_dsisr(0x0020_0000);
        assert!(load_key.is_protection());
        assert!(!load_key.is_store());
        assert!(!load_key.is_no_translation());
        let store_pp = DsisrFlags::from_dsisr(0x0a00_0000);
        assert!(store_pp.is_protection() && store_pp.is_store());
    }

    #[test]
    fn unknown_bits_are_dropped() {
        // Bit 32 and the upper word are not DSISR causes.
        let d = DsisrFlags::from_dsisr(0xffff_ffff_8000_0000);
        assert!(d.is_empty());
    }
}
