//! [`NativeHpt`]: a hashed page table kept in memory in the architected
//! format — 16-byte big-endian HPTEs, 8 per 128-byte PTEG — with PAPR
//! `H_ENTER`/`H_REMOVE`/`H_PROTECT`/`H_READ` semantics.
//!
//! The same type serves the emulated machine on the host (over a
//! `Vec<u8>`) and a bare-metal powernv kernel (over the `&'static mut [u8]`
//! whose address goes to SDR1/the partition table). Updates follow the
//! ISA's page table update rules ("Page Table Update Synchronization"):
//!
//! * adding: write doubleword 1, order the stores, write doubleword 0
//!   (with V), `ptesync`, so no table walk sees a half-written valid entry;
//! * removing or changing: clear V, `ptesync`, then the
//!   [`TlbInvalidate`] hook (on hardware `tlbie; eieio; tlbsync; ptesync`
//!   for the entry), and only then read R/C — until every translation
//!   derived from the entry is gone, a processor may still set R or C in
//!   it. A changed entry is then rewritten from those final R/C bits.
//!
//! On the host the barriers are Rust fences and the hook is
//! [`NoTlbInvalidate`] (the emulated machine flushes its TLB model after
//! each `H_REMOVE`/`H_PROTECT` itself and runs on one thread).

use alloc::vec;
use alloc::vec::Vec;
#[cfg(not(target_arch = "powerpc64"))]
use core::sync::atomic::{fence, Ordering};

use arch_ppc64::addr::{PtegIndex, Ptex};
use arch_ppc64::structures::hpte::{self, Hpte, Pp};

use crate::platform::{HptBackend, HptError, RemoveCondition};

/// Bytes in one PTEG (8 HPTEs of 16 bytes).
pub const PTEG_BYTES: usize = 128;

/// Why a memory region cannot hold an HPT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NativeHptError {
    /// The length is not a power of two at least one PTEG long.
    BadSize(usize),
}

/// Removes the translations a processor may cache from one HPTE.
///
/// [`NativeHpt`] calls it after it has cleared V of the entry at `ptex`
/// (whose contents were `old`) and made that store visible (`ptesync`),
/// and before it reads the entry's R/C. An implementation for real
/// hardware must invalidate every TLB entry derived from `old` on every
/// processor and wait for it (`tlbie` with the page's VPN, size and
/// segment size; `eieio; tlbsync; ptesync`), so that no processor can set
/// R or C in the entry afterwards.
pub trait TlbInvalidate {
    /// Invalidates the translations derived from `old`, the entry that was
    /// at `ptex`.
    fn invalidate(&mut self, ptex: Ptex, old: Hpte);
}

/// A [`TlbInvalidate`] that does nothing: for tables no hardware MMU
/// walks (the host, the emulated machine, whose TLB model is flushed by
/// its own `H_REMOVE`/`H_PROTECT`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoTlbInvalidate;

impl TlbInvalidate for NoTlbInvalidate {
    fn invalidate(&mut self, _ptex: Ptex, _old: Hpte) {}
}

/// Orders two stores to the table (doubleword 1 before doubleword 0):
/// `eieio` on ppc64, as in the ISA's "adding a page table entry" sequence.
#[inline]
fn order_stores() {
    #[cfg(target_arch = "powerpc64")]
    arch_ppc64::instructions::barrier::eieio();
    #[cfg(not(target_arch = "powerpc64"))]
    fence(Ordering::Release);
}

/// Makes table stores visible to table walks and orders them before what
/// follows (`tlbie`, reading R/C): `ptesync` on ppc64.
#[inline]
fn pte_sync() {
    #[cfg(target_arch = "powerpc64")]
    arch_ppc64::instructions::barrier::ptesync();
    #[cfg(not(target_arch = "powerpc64"))]
    fence(Ordering::SeqCst);
}

/// The layout the table's entries have in memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HpteFormat {
    /// The pre-ISA-3.0 layout PAPR uses and POWER8 reads
    /// ([`arch_ppc64::structures::hpte`]).
    #[default]
    Pre300,
    /// The ISA 3.0 layout POWER9/10 read from a table the kernel owns
    /// ([`arch_ppc64::structures::hpte::isa300`]): entries are converted
    /// on every store and load, so callers keep the pre-3.0 form, and an
    /// entry the layout cannot hold (a VA beyond 68 bits) is refused.
    Isa300,
}

/// A hashed page table in memory (see the module documentation), with
/// TLB invalidation hook `T`.
pub struct NativeHpt<S, T = NoTlbInvalidate> {
    table: S,
    pteg_count: u64,
    tlb: T,
    format: HpteFormat,
}

impl<S, T> core::fmt::Debug for NativeHpt<S, T> {
    /// The table's size, not its contents.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NativeHpt")
            .field("ptegs", &self.pteg_count)
            .finish_non_exhaustive()
    }
}

impl NativeHpt<Vec<u8>> {
    /// A zeroed (all invalid) table of `2^shift` bytes on the heap, `shift`
    /// as in the `ibm,pft-size` property. The ISA minimum is 2^18; smaller
    /// sizes down to one PTEG (2^7) are accepted for tests.
    pub fn with_size_shift(shift: u32) -> Result<Self, NativeHptError> {
        if !(7..=46).contains(&shift) || shift >= usize::BITS {
            return Err(NativeHptError::BadSize(0));
        }
        NativeHpt::new(vec![0u8; 1usize << shift])
    }
}

impl<S: AsRef<[u8]> + AsMut<[u8]>> NativeHpt<S> {
    /// Uses `table` as the HPT, with no TLB to invalidate (host, emulated
    /// machine). Its length must be a power of two and at least one PTEG;
    /// its contents are kept (zero it for an empty table).
    pub fn new(table: S) -> Result<Self, NativeHptError> {
        NativeHpt::with_tlb(table, NoTlbInvalidate)
    }
}

impl<S: AsRef<[u8]> + AsMut<[u8]>, T: TlbInvalidate> NativeHpt<S, T> {
    /// Uses `table` as the HPT and `tlb` to invalidate translations of
    /// removed or changed entries. As [`NativeHpt::new`]; on hardware the
    /// table must also be aligned to its size (SDR1 HTABORG).
    pub fn with_tlb(table: S, tlb: T) -> Result<Self, NativeHptError> {
        let len = table.as_ref().len();
        if len < PTEG_BYTES || !len.is_power_of_two() {
            return Err(NativeHptError::BadSize(len));
        }
        Ok(NativeHpt {
            table,
            pteg_count: (len / PTEG_BYTES) as u64,
            tlb,
            format: HpteFormat::Pre300,
        })
    }

    /// The same table with its entries in `format` from now on (the
    /// contents are not converted: call it on an empty table).
    pub fn with_format(mut self, format: HpteFormat) -> Self {
        self.format = format;
        self
    }

    /// The layout of the entries in memory.
    pub fn format(&self) -> HpteFormat {
        self.format
    }

    /// `h` as the table stores it; `None` if the format cannot hold it.
    fn encode(&self, h: Hpte) -> Option<Hpte> {
        match self.format {
            HpteFormat::Pre300 => Some(h),
            HpteFormat::Isa300 => h.to_isa300(),
        }
    }

    /// The TLB invalidation hook.
    pub fn tlb(&self) -> &T {
        &self.tlb
    }

    /// The raw table bytes (big-endian HPTEs).
    pub fn as_bytes(&self) -> &[u8] {
        self.table.as_ref()
    }

    /// Gives the storage back.
    pub fn into_inner(self) -> S {
        self.table
    }

    /// Invalidates every entry.
    pub fn clear(&mut self) {
        self.table.as_mut().fill(0);
    }

    /// Doubleword 0 (B, AVPN, flags, H, V) of each entry of `group`:
    /// what a table search compares, so the emulated MMU reads the other
    /// doubleword only of an entry that matches.
    pub fn group_v_words(&self, group: PtegIndex) -> Result<[u64; 8], HptError> {
        if group.as_u64() >= self.pteg_count {
            return Err(HptError::Parameter);
        }
        let base = group.byte_offset() as usize;
        if self.format != HpteFormat::Pre300 {
            return Ok(core::array::from_fn(|i| {
                self.load(base + i * Hpte::BYTES).v
            }));
        }
        let bytes = &self.table.as_ref()[base..base + PTEG_BYTES];
        Ok(core::array::from_fn(|i| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[i * Hpte::BYTES..i * Hpte::BYTES + 8]);
            u64::from_be_bytes(w)
        }))
    }

    /// Number of valid entries (a full scan; for tests and statistics).
    pub fn valid_entries(&self) -> usize {
        self.table
            .as_ref()
            .chunks_exact(Hpte::BYTES)
            .filter(|e| e[7] & hpte::v::V as u8 != 0)
            .count()
    }

    fn check(&self, ptex: Ptex) -> Result<usize, HptError> {
        if ptex.pteg().as_u64() >= self.pteg_count {
            return Err(HptError::Parameter);
        }
        Ok(ptex.byte_offset() as usize)
    }

    fn load(&self, offset: usize) -> Hpte {
        let mut b = [0u8; 16];
        b.copy_from_slice(&self.table.as_ref()[offset..offset + Hpte::BYTES]);
        let h = Hpte::from_be_bytes(b);
        match self.format {
            HpteFormat::Pre300 => h,
            HpteFormat::Isa300 => h.from_isa300(),
        }
    }

    fn store_v(&mut self, offset: usize, v: u64) {
        self.table.as_mut()[offset..offset + 8].copy_from_slice(&v.to_be_bytes());
    }

    fn store_r(&mut self, offset: usize, r: u64) {
        self.table.as_mut()[offset + 8..offset + 16].copy_from_slice(&r.to_be_bytes());
    }

    /// Writes an entry (already in the table's format, [`Self::encode`])
    /// into an invalid slot in the order a concurrent table walk needs:
    /// `r`, then the new `v`, then `ptesync`.
    fn store(&mut self, offset: usize, h: Hpte) {
        self.store_r(offset, h.r);
        order_stores();
        self.store_v(offset, h.v);
        pte_sync();
    }

    /// Takes the valid entry `old` at `ptex` out of translation: clears V,
    /// makes that visible, has the TLBs drop it, and returns the entry with
    /// its final R/C (no processor can set them any more).
    fn invalidate_entry(&mut self, ptex: Ptex, offset: usize, old: Hpte) -> Hpte {
        self.store_v(offset, 0);
        pte_sync();
        self.tlb.invalidate(ptex, old);
        Hpte {
            v: old.v,
            r: self.load(offset).r,
        }
    }

    /// Overwrites slot `ptex`, which holds no valid entry, with `hpte`,
    /// which is not valid either. No table walk uses an invalid entry, so
    /// its contents are software's: this is how a hypervisor leaves its
    /// own marks in slots it frees or fills with an invalid entry (see
    /// [`crate::sim`]'s PAPR rules). Needs no TLB invalidation.
    ///
    /// Errors: [`HptError::Parameter`] if `ptex` is outside the table or
    /// `hpte` has V set, [`HptError::PtegFull`] if the slot holds a valid
    /// entry. The table is unchanged on error.
    pub fn write_invalid(&mut self, ptex: Ptex, hpte: Hpte) -> Result<(), HptError> {
        let off = self.check(ptex)?;
        if hpte.is_valid() {
            return Err(HptError::Parameter);
        }
        if self.load(off).is_valid() {
            return Err(HptError::PtegFull);
        }
        let hpte = self.encode(hpte).ok_or(HptError::Parameter)?;
        self.store(off, hpte);
        Ok(())
    }

    /// Sets R, and C if `store`, on the entry at `ptex` as the MMU does
    /// after a permitted access (ISA "Reference and Change Recording"). Only the emulated MMU calls
    /// this; on hardware the processor does it.
    pub fn record_reference(&mut self, ptex: Ptex, store: bool) -> Result<(), HptError> {
        let off = self.check(ptex)?;
        let old = self.load(off);
        let new = old
            .with_referenced(true)
            .with_changed(old.changed() || store);
        if new.r != old.r {
            let stored = self.encode(new).unwrap_or(new);
            self.store_r(off, stored.r);
        }
        Ok(())
    }
}

impl<S: AsRef<[u8]> + AsMut<[u8]>, T: TlbInvalidate> HptBackend for NativeHpt<S, T> {
    fn pteg_count(&self) -> u64 {
        self.pteg_count
    }

    fn insert(&mut self, group: PtegIndex, slot: Option<u8>, hpte: Hpte) -> Result<Ptex, HptError> {
        if group.as_u64() >= self.pteg_count || !hpte.is_valid() {
            return Err(HptError::Parameter);
        }
        let hpte = self.encode(hpte).ok_or(HptError::Parameter)?;
        let target = match slot {
            Some(s) if s >= Ptex::SLOTS_PER_PTEG => return Err(HptError::Parameter),
            Some(s) => {
                let ptex = group.ptex(s);
                if self.load(ptex.byte_offset() as usize).is_valid() {
                    return Err(HptError::PtegFull);
                }
                ptex
            }
            None => {
                let words = self.group_v_words(group)?;
                let free = words
                    .iter()
                    .position(|v| v & hpte::v::V == 0)
                    .ok_or(HptError::PtegFull)?;
                group.ptex(free as u8)
            }
        };
        self.store(target.byte_offset() as usize, hpte);
        Ok(target)
    }

    fn remove(&mut self, ptex: Ptex, cond: RemoveCondition) -> Result<Hpte, HptError> {
        let off = self.check(ptex)?;
        let old = self.load(off);
        let refused = match cond {
            RemoveCondition::Absolute => false,
            RemoveCondition::Avpn(avpn) => old.avpn_word() != avpn,
            RemoveCondition::AndCond(mask) => old.v & mask != 0,
        };
        if !old.is_valid() || refused {
            return Err(HptError::NotFound);
        }
        // R/C are read only after the TLBs dropped the entry: until then a
        // processor may still set them (ISA page table update rules).
        Ok(self.invalidate_entry(ptex, off, old))
    }

    fn protect(&mut self, ptex: Ptex, avpn: u64, pp: Pp, no_exec: bool) -> Result<(), HptError> {
        let off = self.check(ptex)?;
        let old = self.load(off);
        if !old.is_valid() || old.avpn_word() != avpn {
            return Err(HptError::NotFound);
        }
        // Invalidate (V, then TLBs), read the final R/C, rewrite r,
        // revalidate: no walk sees old PP with new N or vice versa, and a
        // C set before the TLB invalidation is not lost.
        let now = self.invalidate_entry(ptex, off, old);
        let new = now.with_pp(pp).with_no_execute(no_exec);
        // A valid entry the table held fits its format with any PP and N.
        let new = self.encode(new).unwrap_or(new);
        self.store(off, new);
        Ok(())
    }

    fn read(&self, ptex: Ptex) -> Result<Hpte, HptError> {
        let off = self.check(ptex)?;
        Ok(self.load(off))
    }

    /// The group's 128 bytes in one slice (the emulated MMU reads two
    /// groups on every table walk).
    fn read_group(&self, group: PtegIndex) -> Result<[Hpte; 8], HptError> {
        if group.as_u64() >= self.pteg_count {
            return Err(HptError::Parameter);
        }
        let base = group.byte_offset() as usize;
        let bytes = &self.table.as_ref()[base..base + 8 * Hpte::BYTES];
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[at..at + 8]);
            u64::from_be_bytes(w)
        };
        Ok(core::array::from_fn(|i| Hpte {
            v: word(i * Hpte::BYTES),
            r: word(i * Hpte::BYTES + 8),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arch_ppc64::structures::hpte::{r, v};

    fn entry(avpn: u64) -> Hpte {
        Hpte {
            v: (avpn << 7) | v::V,
            r: 0x5000 | r::M | r::R | 0b10,
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(NativeHpt::with_size_shift(18).unwrap().pteg_count(), 2048);
        assert_eq!(NativeHpt::with_size_shift(7).unwrap().pteg_count(), 1);
        assert!(NativeHpt::with_size_shift(6).is_err());
        assert_eq!(
            NativeHpt::new(vec![0u8; 200]).err(),
            Some(NativeHptError::BadSize(200))
        );
    }

    #[test]
    fn insert_fills_first_free_slot_then_reports_full() {
        let mut t = NativeHpt::with_size_shift(10).unwrap(); // 8 PTEGs
        let g = PtegIndex::new(3);
        for s in 0..8 {
            assert_eq!(t.insert(g, None, entry(s)), Ok(g.ptex(s as u8)));
        }
        assert_eq!(t.insert(g, None, entry(9)), Err(HptError::PtegFull));
        // Free slot 5, the next insert lands there.
        t.remove(g.ptex(5), RemoveCondition::Absolute).unwrap();
        assert_eq!(t.insert(g, None, entry(10)), Ok(g.ptex(5)));
        assert_eq!(t.valid_entries(), 8);
    }

    #[test]
    fn exact_insert_and_parameter_errors() {
        let mut t = NativeHpt::with_size_shift(10).unwrap();
        let g = PtegIndex::new(1);
        assert_eq!(t.insert(g, Some(6), entry(1)), Ok(g.ptex(6)));
        assert_eq!(t.insert(g, Some(6), entry(2)), Err(HptError::PtegFull));
        assert_eq!(t.insert(g, Some(8), entry(2)), Err(HptError::Parameter));
        assert_eq!(
            t.insert(PtegIndex::new(8), None, entry(2)),
            Err(HptError::Parameter)
        );
        assert_eq!(t.insert(g, None, Hpte::EMPTY), Err(HptError::Parameter));
        assert_eq!(t.read(PtegIndex::new(8).ptex(0)), Err(HptError::Parameter));
        // Failed calls changed nothing.
        assert_eq!(t.valid_entries(), 1);
        assert_eq!(t.read(g.ptex(6)), Ok(entry(1)));
    }

    #[test]
    fn memory_image_is_big_endian() {
        let mut t = NativeHpt::with_size_shift(8).unwrap();
        let h = entry(0x12);
        let p = t.insert(PtegIndex::new(1), Some(2), h).unwrap();
        let off = p.byte_offset() as usize;
        assert_eq!(off, 128 + 32);
        assert_eq!(&t.as_bytes()[off..off + 16], &h.to_be_bytes());
        // Low byte of v: (0x12 << 7 = 0x900) | V → ...0x09_01, MSB first.
        assert_eq!(&t.as_bytes()[off + 6..off + 8], &[0x09, 0x01]);
    }

    #[test]
    fn remove_conditions_like_papr() {
        let mut t = NativeHpt::with_size_shift(10).unwrap();
        let g = PtegIndex::new(0);
        let h = entry(0x77).with_bolted(true).with_changed(true);
        let p = t.insert(g, None, h).unwrap();
        // AVPN mismatch, ANDCOND on the bolted bit: refused, entry kept.
        assert_eq!(
            t.remove(p, RemoveCondition::Avpn(0x78 << 7)),
            Err(HptError::NotFound)
        );
        assert_eq!(
            t.remove(p, RemoveCondition::AndCond(v::BOLTED)),
            Err(HptError::NotFound)
        );
        assert_eq!(t.read(p), Ok(h));
        // Matching AVPN word (software bits ignored) removes and returns R/C.
        let old = t.remove(p, RemoveCondition::Avpn(h.avpn_word())).unwrap();
        assert_eq!(old, h);
        assert!(old.changed() && old.referenced());
        assert!(!t.read(p).unwrap().is_valid());
        assert_eq!(
            t.remove(p, RemoveCondition::Absolute),
            Err(HptError::NotFound)
        );
    }

    #[test]
    fn protect_keeps_rc_and_checks_avpn() {
        let mut t = NativeHpt::with_size_shift(10).unwrap();
        let h = entry(5).with_changed(true).with_key(3);
        let p = t.insert(PtegIndex::new(2), None, h).unwrap();
        assert_eq!(
            t.protect(p, 6 << 7, Pp::RO_RO, true),
            Err(HptError::NotFound)
        );
        assert_eq!(t.read(p), Ok(h));
        t.protect(p, h.avpn_word(), Pp::RO_NONE, true).unwrap();
        let now = t.read(p).unwrap();
        assert_eq!(now.pp(), Pp::RO_NONE);
        assert!(now.no_execute() && now.changed() && now.referenced() && now.is_valid());
        assert_eq!(now.key(), 3);
        assert_eq!(now.v, h.v);
        t.remove(p, RemoveCondition::Absolute).unwrap();
        assert_eq!(
            t.protect(p, h.avpn_word(), Pp::RW_RW, false),
            Err(HptError::NotFound)
        );
    }

    #[test]
    fn write_invalid_fills_only_free_slots_with_invalid_entries() {
        let mut t = NativeHpt::with_size_shift(10).unwrap();
        let g = PtegIndex::new(2);
        let p = t.insert(g, None, entry(4)).unwrap();
        let mark = Hpte { v: 0x40, r: 0x123 };
        // A valid entry, a valid slot, a slot outside the table: refused,
        // nothing written.
        assert_eq!(
            t.write_invalid(g.ptex(1), entry(5)),
            Err(HptError::Parameter)
        );
        assert_eq!(t.write_invalid(p, mark), Err(HptError::PtegFull));
        assert_eq!(
            t.write_invalid(PtegIndex::new(8).ptex(0), mark),
            Err(HptError::Parameter)
        );
        assert_eq!(t.read(p), Ok(entry(4)));
        assert_eq!(t.read(g.ptex(1)), Ok(Hpte::EMPTY));
        // A free slot takes it and stays free.
        t.write_invalid(g.ptex(1), mark).unwrap();
        assert_eq!(t.read(g.ptex(1)), Ok(mark));
        assert_eq!(t.valid_entries(), 1);
        assert_eq!(t.insert(g, None, entry(6)), Ok(g.ptex(1)));
    }

    #[test]
    fn record_reference_sets_r_and_c() {
        let mut t = NativeHpt::with_size_shift(10).unwrap();
        let h = entry(1).with_referenced(false);
        let p = t.insert(PtegIndex::new(0), None, h).unwrap();
        t.record_reference(p, false).unwrap();
        let e = t.read(p).unwrap();
        assert!(e.referenced() && !e.changed());
        t.record_reference(p, true).unwrap();
        assert!(t.read(p).unwrap().changed());
        t.record_reference(p, false).unwrap();
        assert!(t.read(p).unwrap().changed(), "C is sticky");
    }

    /// A hook standing in for a processor whose TLB still holds the entry:
    /// before its invalidation completes it sets C in the table (as a
    /// store through the cached translation would), and it records the
    /// calls and whether V was already clear when it ran.
    struct LateChange {
        table: *mut u8,
        calls: Vec<(Ptex, Hpte, bool)>,
    }

    impl TlbInvalidate for LateChange {
        fn invalidate(&mut self, ptex: Ptex, old: Hpte) {
            let off = ptex.byte_offset() as usize;
            // SAFETY: `table` points at the heap buffer of the Vec the
            // NativeHpt under test owns (moving the Vec does not move the
            // buffer); the test runs on one thread and NativeHpt holds no
            // reference into the buffer while it calls the hook.
            let (v_low, r_c) = unsafe { (self.table.add(off + 7), self.table.add(off + 15)) };
            // SAFETY: as above; both bytes are inside the entry.
            unsafe {
                let v_clear = v_low.read() & v::V as u8 == 0;
                r_c.write(r_c.read() | r::C as u8);
                self.calls.push((ptex, old, v_clear));
            }
        }
    }

    #[test]
    fn rc_is_read_after_the_tlb_hook() {
        let mut buf = vec![0u8; 1 << 10];
        let table = buf.as_mut_ptr();
        let mut t = NativeHpt::with_tlb(
            buf,
            LateChange {
                table,
                calls: Vec::new(),
            },
        )
        .unwrap();
        let h = entry(9).with_changed(false);
        let p = t.insert(PtegIndex::new(1), None, h).unwrap();
        assert!(t.tlb().calls.is_empty(), "inserting needs no invalidation");
        // protect: the C set during the invalidation is kept.
        t.protect(p, h.avpn_word(), Pp::RO_RO, false).unwrap();
        let now = t.read(p).unwrap();
        assert!(now.is_valid() && now.changed(), "C from the TLB kept");
        assert_eq!(now.pp(), Pp::RO_RO);
        assert_eq!(t.tlb().calls, vec![(p, h, true)]);
        // A refused protect/remove does not invalidate.
        assert!(t.protect(p, 1 << 7, Pp::RW_RW, false).is_err());
        assert!(t.remove(p, RemoveCondition::Avpn(1 << 7)).is_err());
        assert_eq!(t.tlb().calls.len(), 1);
        // remove: returns the final R/C.
        let h2 = entry(10).with_changed(false);
        let p2 = t.insert(PtegIndex::new(2), None, h2).unwrap();
        let old = t.remove(p2, RemoveCondition::Absolute).unwrap();
        assert!(
            old.changed(),
            "C set before the TLB invalidation is returned"
        );
        assert_eq!(t.tlb().calls[1], (p2, h2, true));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert {
            group: u64,
            slot: Option<u8>,
            avpn: u64,
            bolted: bool,
        },
        Remove {
            ptex: u64,
            cond: u8,
            avpn: u64,
        },
        Protect {
            ptex: u64,
            avpn: u64,
            pp: u8,
            n: bool,
        },
    }

    fn arb_op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        // 9 groups / 72 slots so some operations fall outside the 8-PTEG
        // table; few AVPNs so conditions both hold and fail.
        prop_oneof![
            (
                0u64..9,
                proptest::option::of(0u8..9),
                0u64..4,
                any::<bool>()
            )
                .prop_map(|(group, slot, avpn, bolted)| Op::Insert {
                    group,
                    slot,
                    avpn,
                    bolted
                }),
            (0u64..72, 0u8..3, 0u64..4).prop_map(|(ptex, cond, avpn)| Op::Remove {
                ptex,
                cond,
                avpn
            }),
            (0u64..72, 0u64..4, 0u8..8, any::<bool>())
                .prop_map(|(ptex, avpn, pp, n)| Op::Protect { ptex, avpn, pp, n }),
        ]
    }

    proptest::proptest! {
        /// Random operation sequences against a plain model of PAPR's
        /// rules: same results, same table contents after every step.
        #[test]
        fn matches_a_papr_model(ops in proptest::collection::vec(arb_op(), 1..120)) {
            let mut t = NativeHpt::with_size_shift(10).unwrap();
            let mut model: Vec<Hpte> = vec![Hpte::EMPTY; 64];
            for op in ops {
                match op {
                    Op::Insert { group, slot, avpn, bolted } => {
                        let h = entry(avpn).with_bolted(bolted);
                        let expect = if group >= 8 || slot.is_some_and(|s| s >= 8) {
                            Err(HptError::Parameter)
                        } else {
                            let base = group as usize * 8;
                            let pick = match slot {
                                Some(s) => (!model[base + s as usize].is_valid()).then_some(s as usize),
                                None => (0..8).find(|&s| !model[base + s].is_valid()),
                            };
                            match pick {
                                Some(s) => {
                                    model[base + s] = h;
                                    Ok(PtegIndex::new(group).ptex(s as u8))
                                }
                                None => Err(HptError::PtegFull),
                            }
                        };
                        proptest::prop_assert_eq!(t.insert(PtegIndex::new(group), slot, h), expect);
                    }
                    Op::Remove { ptex, cond, avpn } => {
                        let c = match cond {
                            0 => RemoveCondition::Absolute,
                            1 => RemoveCondition::Avpn(avpn << 7),
                            _ => RemoveCondition::AndCond(v::BOLTED),
                        };
                        let expect = if ptex >= 64 {
                            Err(HptError::Parameter)
                        } else {
                            let old = model[ptex as usize];
                            let holds = match c {
                                RemoveCondition::Absolute => true,
                                RemoveCondition::Avpn(w) => old.v & !0x7f == w,
                                RemoveCondition::AndCond(m) => old.v & m == 0,
                            };
                            if old.is_valid() && holds {
                                model[ptex as usize] = Hpte::EMPTY;
                                Ok(old)
                            } else {
                                Err(HptError::NotFound)
                            }
                        };
                        let got = t.remove(Ptex::try_from_raw(ptex).unwrap(), c);
                        proptest::prop_assert_eq!(got, expect);
                    }
                    Op::Protect { ptex, avpn, pp, n } => {
                        let expect = if ptex >= 64 {
                            Err(HptError::Parameter)
                        } else {
                            let old = model[ptex as usize];
                            if old.is_valid() && old.v & !0x7f == avpn << 7 {
                                let mut r = old.r & !(r::PP0 | r::PP | r::N);
                                r |= ((pp as u64 >> 2) << 63) | (pp as u64 & 3);
                                if n {
                                    r |= r::N;
                                }
                                model[ptex as usize].r = r;
                                Ok(())
                            } else {
                                Err(HptError::NotFound)
                            }
                        };
                        let got = t.protect(Ptex::try_from_raw(ptex).unwrap(), avpn << 7, Pp::new(pp), n);
                        proptest::prop_assert_eq!(got, expect);
                    }
                }
                for (i, m) in model.iter().enumerate() {
                    let e = t.read(Ptex::try_from_raw(i as u64).unwrap()).unwrap();
                    if m.is_valid() {
                        proptest::prop_assert_eq!(e, *m);
                    } else {
                        proptest::prop_assert!(!e.is_valid());
                    }
                }
                proptest::prop_assert_eq!(
                    t.valid_entries(),
                    model.iter().filter(|m| m.is_valid()).count()
                );
            }
        }
    }

    /// A 4K page of a 1T segment (B = 01), the case where the two layouts
    /// differ in every word.
    fn one_tb_entry(vsid: u64) -> Hpte {
        use arch_ppc64::addr::{EffectiveAddress, PhysAddr, Vsid};
        use arch_ppc64::structures::{PageSize, SegmentSize};
        Hpte::mapping(
            Vsid::new(vsid),
            EffectiveAddress::new(0x12_3456_7000),
            SegmentSize::T1,
            PageSize::K4,
            PhysAddr::new(0x4567_8000),
            Pp::RW_RW,
        )
        .unwrap()
    }

    fn raw(t: &NativeHpt<Vec<u8>>, ptex: Ptex) -> (u64, u64) {
        let off = ptex.byte_offset() as usize;
        let b = t.as_bytes();
        let word = |at: usize| u64::from_be_bytes(b[at..at + 8].try_into().unwrap());
        (word(off), word(off + 8))
    }

    #[test]
    fn isa300_table_stores_b_in_doubleword_1_and_reads_back_the_pre300_form() {
        let mut t = NativeHpt::with_size_shift(12)
            .unwrap()
            .with_format(HpteFormat::Isa300);
        let h = one_tb_entry(0xabcde);
        let p = t.insert(PtegIndex::new(3), None, h).unwrap();
        let (v0, r0) = raw(&t, p);
        assert_eq!(v0 >> 52, 0, "dword 0 bits 0:11 reserved");
        assert_eq!((r0 >> 58) & 0b11, 0b01, "B = 1T in dword 1 bits 4:5");
        assert_eq!(t.read(p).unwrap(), h);
        assert_eq!(t.group_v_words(PtegIndex::new(3)).unwrap()[0], h.v);
        t.record_reference(p, true).unwrap();
        assert_eq!((raw(&t, p).1 >> 58) & 0b11, 0b01, "R/C update keeps B");
        t.protect(p, h.avpn_word(), Pp::RO_RO, true).unwrap();
        let now = t.read(p).unwrap();
        assert_eq!(now.segment_size(), h.segment_size());
        assert_eq!(now.pp(), Pp::RO_RO);
        assert!(now.changed());
        let gone = t.remove(p, RemoveCondition::Avpn(h.avpn_word())).unwrap();
        assert_eq!(gone.v, h.v);
        assert_eq!(raw(&t, p).0, 0);
    }

    #[test]
    fn isa300_table_refuses_an_entry_beyond_a_68_bit_va_and_stays_unchanged() {
        let mut t = NativeHpt::with_size_shift(12)
            .unwrap()
            .with_format(HpteFormat::Isa300);
        let before = t.as_bytes().to_vec();
        // 1T segments have 28 VSID bits in a 68-bit VA.
        let wide = one_tb_entry(1 << 28);
        assert_eq!(
            t.insert(PtegIndex::new(0), None, wide),
            Err(HptError::Parameter)
        );
        assert_eq!(
            t.write_invalid(PtegIndex::new(0).ptex(0), wide.with_valid(false)),
            Err(HptError::Parameter)
        );
        assert_eq!(t.as_bytes(), &before[..]);
        // The pre-3.0 layout holds it.
        let mut old = NativeHpt::with_size_shift(12).unwrap();
        assert!(old.insert(PtegIndex::new(0), None, wide).is_ok());
    }
}
