//! Hashed page table management: the hash functions, HPTE construction for
//! a mapping, and [`HptManager`], which inserts (primary PTEG → secondary
//! PTEG → evict a non-bolted victim), removes, re-protects and looks up
//! entries through any [`HptBackend`].
//!
//! The HPT is a cache. The VMM's software page tables are the source of
//! truth; an entry may be evicted at any insert, and its translation comes
//! back through the fault path (as FreeBSD's PVOs and AIX's software page
//! frame table do). Eviction hands the victim's R and C bits back to the
//! caller so they can be folded into the software tables.

use arch_ppc64::addr::{EffectiveAddress, Esid, PhysAddr, PtegIndex, Ptex, Vsid};
use arch_ppc64::structures::hpte::{self, Hpte, Pp, Wimg};
use arch_ppc64::structures::{PageSize, SegmentSize};

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::platform::{HptBackend, HptError, RefChange, RemoveCondition, SharedHptBackend};

/// The hash value is taken to 39 bits (Linux masks with `0x7f_ffff_ffff`);
/// the largest table (2^46 bytes, 2^39 PTEGs) uses all of them.
pub const HASH_BITS: u32 = 39;

/// Smallest table [`HptManager`] accepts: 2^11 PTEGs = 2^18 bytes, the ISA
/// minimum (SDR1 HTABSIZE 0) and QEMU's smallest `ibm,pft-size`. At this
/// size the hash supplies the 11 virtual-page bits the AVPN lacks for 4K
/// pages, so an evicted entry can be traced back to its virtual page.
pub const MIN_PTEG_COUNT: u64 = 1 << 11;

/// The primary hash of a virtual page (Power ISA v2.07 Book III-S, "Page
/// Table Search"; `docs/ppc64-mmu.md` §2.3):
///
/// * 256 MB segment: `VSID ^ (offset >> p)`
/// * 1 TB segment: `VSID ^ (VSID << 25) ^ (offset >> p)`
///
/// where `offset` is the byte offset in the segment and `p` the page
/// shift. The primary PTEG is `hash & mask`, the secondary `!hash & mask`.
#[inline(always)]
pub const fn hash(vsid: Vsid, offset: u64, ssize: SegmentSize, psize: PageSize) -> u64 {
    let page = (offset & ssize.offset_mask()) >> psize.shift();
    let v = vsid.as_u64();
    let h = match ssize {
        SegmentSize::M256 => v ^ page,
        SegmentSize::T1 => v ^ (v << 25) ^ page,
    };
    h & ((1 << HASH_BITS) - 1)
}

/// The virtual page the entry `entry` at `ptex` translates, in a table
/// whose hash mask is `mask` (`pteg_count - 1`), rebuilt from its AVPN
/// (VA bits 0:54: the VSID and the offset bits from 2^23 up) and its PTEG
/// index: the hash gives the page-number bits below 2^23, as
/// `(group ^ vsid-hash) & mask` (with `group` complemented for a
/// secondary entry). `None` if the segment or page size does not decode,
/// or if the mask is too narrow to hold those bits (fewer than 2^11 PTEGs
/// for 4K pages, 2^7 for 64K).
pub fn decode_entry(ptex: Ptex, entry: Hpte, mask: u64) -> Option<VirtualPage> {
    let ssize = entry.segment_size()?;
    let psize = entry.page_size()?;
    let missing = 23u32.saturating_sub(psize.shift());
    if mask < (1 << missing) - 1 {
        return None;
    }
    let avpn = entry.avpn();
    // Offset bits 23.. of the segment come from the AVPN.
    let high_bits = ssize.shift() - 23;
    let vsid = Vsid::try_new(avpn >> high_bits)?;
    let offset_high = (avpn & ((1 << high_bits) - 1)) << 23;
    let group = ptex.pteg().as_u64();
    let hash_low = if entry.is_secondary() { !group } else { group } & mask;
    let v = vsid.as_u64();
    let vsid_part = match ssize {
        SegmentSize::M256 => v,
        SegmentSize::T1 => v ^ (v << 25),
    };
    let page_low = (hash_low ^ vsid_part) & mask;
    let low_mask = (1u64 << 23) - 1;
    let offset = offset_high | ((page_low << psize.shift()) & low_mask);
    VirtualPage::from_offset(vsid, offset, ssize, psize)
}

/// Why a size from the device tree cannot describe an HPT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HptSetupError {
    /// `ibm,pft-size` outside 18..=46.
    BadPftSize(u32),
    /// The backend's PTEG count is not a power of two in
    /// `MIN_PTEG_COUNT..=2^39`.
    BadPtegCount(u64),
}

/// PTEG count for the `ibm,pft-size` value `shift` (log2 of the table size
/// in bytes): `2^(shift - 7)`. QEMU gives 18..=46.
pub const fn pteg_count_for_pft_size(shift: u32) -> Result<u64, HptSetupError> {
    if shift < 18 || shift > 46 {
        return Err(HptSetupError::BadPftSize(shift));
    }
    Ok(1 << (shift - 7))
}

/// One virtual page: a VSID and a page-aligned offset in its segment, with
/// the segment's size and base page size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VirtualPage {
    vsid: Vsid,
    offset: u64,
    ssize: SegmentSize,
    psize: PageSize,
}

impl VirtualPage {
    /// The page of segment `vsid` containing `ea` (only the segment offset
    /// of `ea` is used). `None` if `vsid` is too wide for `ssize`.
    pub const fn new(
        vsid: Vsid,
        ea: EffectiveAddress,
        ssize: SegmentSize,
        psize: PageSize,
    ) -> Option<VirtualPage> {
        VirtualPage::from_offset(vsid, ea.segment_offset_in(ssize), ssize, psize)
    }

    /// The page at byte `offset` of segment `vsid`, rounded down to the
    /// page. `None` if `offset` is beyond the segment or `vsid` too wide.
    #[inline(always)]
    pub const fn from_offset(
        vsid: Vsid,
        offset: u64,
        ssize: SegmentSize,
        psize: PageSize,
    ) -> Option<VirtualPage> {
        if offset > ssize.offset_mask() || !vsid.fits(ssize) {
            return None;
        }
        Some(VirtualPage {
            vsid,
            offset: offset & !psize.offset_mask(),
            ssize,
            psize,
        })
    }

    /// Segment VSID.
    #[inline]
    pub const fn vsid(self) -> Vsid {
        self.vsid
    }

    /// Page-aligned byte offset within the segment.
    pub const fn offset(self) -> u64 {
        self.offset
    }

    /// Segment size.
    pub const fn segment_size(self) -> SegmentSize {
        self.ssize
    }

    /// Page size.
    pub const fn page_size(self) -> PageSize {
        self.psize
    }

    /// Page number within the segment (`offset >> p`).
    #[inline]
    pub const fn page_index(self) -> u64 {
        self.offset >> self.psize.shift()
    }

    /// The page's effective address if its segment is mapped at `esid`.
    pub const fn ea_in(self, esid: Esid) -> EffectiveAddress {
        EffectiveAddress::new(esid.base().as_u64() | self.offset)
    }

    /// Primary hash ([`hash`]).
    #[inline(always)]
    pub const fn hash(self) -> u64 {
        hash(self.vsid, self.offset, self.ssize, self.psize)
    }

    /// B and AVPN of HPTEs for this page (`H_AVPN` compare value).
    #[inline(always)]
    pub const fn avpn_word(self) -> u64 {
        hpte::avpn_word(self.vsid, EffectiveAddress::new(self.offset), self.ssize)
    }
}

/// A translation to enter into the HPT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PageMapping {
    /// The virtual page.
    pub page: VirtualPage,
    /// Real address of the page (aligned to its size).
    pub pa: PhysAddr,
    /// Page protection.
    pub pp: Pp,
    /// `N`: no instruction fetch.
    pub no_execute: bool,
    /// Software bolted bit: the manager never evicts it.
    pub bolted: bool,
    /// Storage attributes. PAPR (QEMU) accepts only `M` for RAM.
    pub wimg: Wimg,
    /// Storage key (5 bits).
    pub key: u8,
}

impl PageMapping {
    /// An executable, evictable, cacheable (`WIMG = M`), key-0 mapping.
    #[inline]
    pub const fn new(page: VirtualPage, pa: PhysAddr, pp: Pp) -> PageMapping {
        PageMapping {
            page,
            pa,
            pp,
            no_execute: false,
            bolted: false,
            wimg: Wimg::M,
            key: 0,
        }
    }

    /// The HPTE for this mapping, with `H` = `secondary`. R is preset (PAPR
    /// guests set it, sparing the MMU an update). `None` if `pa` is not
    /// aligned to the page size.
    #[inline(always)]
    pub const fn hpte(&self, secondary: bool) -> Option<Hpte> {
        let p = self.page;
        if let PageSize::K4 = p.psize {
            // The fault path's case, composed in one go (the general
            // construction below calls a builder per field); the test
            // `the_4k_hpte_is_the_general_one` holds them equal.
            let pa = self.pa.as_u64();
            if pa & 0xfff != 0 {
                return None;
            }
            let key = (self.key & 0x1f) as u64;
            return Some(Hpte {
                v: p.avpn_word()
                    | hpte::v::V
                    | bit_if(secondary, hpte::v::H)
                    | bit_if(self.bolted, hpte::v::BOLTED),
                r: (pa & hpte::r::RPN)
                    | hpte::r::R
                    | self.wimg.bits()
                    | bit_if(self.no_execute, hpte::r::N)
                    | self.pp.to_r_bits()
                    | ((key << 57) & hpte::r::KEY_HI)
                    | ((key << 9) & hpte::r::KEY_LO),
            });
        }
        let base = match Hpte::mapping(
            p.vsid,
            EffectiveAddress::new(p.offset),
            p.ssize,
            p.psize,
            self.pa,
            self.pp,
        ) {
            Some(h) => h,
            None => return None,
        };
        Some(
            base.with_secondary(secondary)
                .with_no_execute(self.no_execute)
                .with_bolted(self.bolted)
                .with_wimg(self.wimg)
                .with_key(self.key),
        )
    }
}

/// `bit` if `on`, else nothing.
#[inline]
const fn bit_if(on: bool, bit: u64) -> u64 {
    if on {
        bit
    } else {
        0
    }
}

/// An entry the manager evicted to make room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Evicted {
    /// Where it was (the new entry now occupies this slot).
    pub ptex: Ptex,
    /// Its contents at removal, with final R and C.
    pub hpte: Hpte,
    /// The virtual page it translated, reconstructed from AVPN and the
    /// PTEG index; `None` only for a foreign entry with a page size this
    /// crate does not model.
    pub page: Option<VirtualPage>,
}

/// Where a page's HPTE sits relative to the page's own two PTEGs: which
/// of them (primary or secondary) and which of its eight slots. With the
/// page's hash this gives the PTE index; on its own it is four bits, so a
/// software page table entry can carry it beside the frame, the way
/// Linux's hash MMU keeps the secondary bit and the slot in its PTEs
/// instead of a side table indexed by slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HptSlot(u8);

impl HptSlot {
    /// Slot `index` (0..8) of the primary (`secondary` = false) or the
    /// secondary PTEG.
    ///
    /// # Panics
    ///
    /// Panics if `index >= 8`.
    #[inline(always)]
    pub const fn new(secondary: bool, index: u8) -> HptSlot {
        assert!(index < Ptex::SLOTS_PER_PTEG, "HPTE slot must be 0..8");
        HptSlot((secondary as u8) << 3 | index)
    }

    /// The slot an entry found at `ptex` occupies: its group is the
    /// secondary one if the entry's `H` bit says so.
    #[inline]
    pub const fn of_entry(ptex: Ptex, hpte: Hpte) -> HptSlot {
        HptSlot::new(hpte.is_secondary(), ptex.slot())
    }

    /// In the secondary PTEG.
    #[inline]
    pub const fn secondary(self) -> bool {
        self.0 & 8 != 0
    }

    /// The slot within the group.
    #[inline]
    pub const fn index(self) -> u8 {
        self.0 & 7
    }

    /// The four bits (`secondary << 3 | index`).
    #[inline]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// From [`HptSlot::bits`]; `None` above 15.
    #[inline]
    pub const fn from_bits(bits: u8) -> Option<HptSlot> {
        if bits < 16 {
            Some(HptSlot(bits))
        } else {
            None
        }
    }
}

/// Result of [`HptManager::insert`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inserted {
    /// Where the new entry went.
    pub ptex: Ptex,
    /// The same place relative to the page's PTEGs.
    pub slot: HptSlot,
    /// The entry evicted to make room, if any.
    pub evicted: Option<Evicted>,
}

/// Why [`HptManager::insert`] failed. The table is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InsertError {
    /// The real address is not aligned to the page size.
    Misaligned(PhysAddr),
    /// Both PTEGs are full of bolted entries: nothing can be evicted.
    Full,
    /// The backend refused (e.g. `H_PARAMETER` for a WIMG it rejects).
    Backend(HptError),
}

/// Operation counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HptStats {
    /// Successful inserts.
    pub inserts: u64,
    /// Inserts that went to the secondary PTEG.
    pub secondary_inserts: u64,
    /// Entries evicted to make room.
    pub evictions: u64,
    /// Removes that found the entry.
    pub removes: u64,
    /// Removes that found it already gone (evicted).
    pub removes_absent: u64,
    /// Protection changes that found the entry.
    pub protects: u64,
    /// Protection changes that found it already gone.
    pub protects_absent: u64,
}

/// Inserts, removes, re-protects and finds HPTEs through a backend.
///
/// Removal and protection take the PTE index the caller got from
/// [`HptManager::insert`] (the caller records it in its software page
/// table, as Linux and FreeBSD do) together with the virtual page, so a
/// slot that has meanwhile been reused for another page is left alone.
pub struct HptManager<B> {
    backend: B,
    mask: u64,
    cursor: AtomicU32,
    stats: HptStats,
    shared_stats: SharedStats,
    pair_locks: PairLocks,
}

/// The two backend calls an insert makes, through `&mut` (one caller at a
/// time) or through `&` ([`SharedHptBackend`], under a PTEG-pair lock).
trait EntryCalls {
    fn enter(&mut self, group: PtegIndex, slot: Option<u8>, hpte: Hpte) -> Result<Ptex, HptError>;
    fn take(&mut self, ptex: Ptex, cond: RemoveCondition) -> Result<Hpte, HptError>;
    /// Counts an insert (into the secondary PTEG, evicting).
    fn counted(&mut self, secondary: bool, evicted: bool);
}

struct Exclusive<'a, B> {
    backend: &'a mut B,
    stats: &'a mut HptStats,
}

impl<B: HptBackend> EntryCalls for Exclusive<'_, B> {
    #[inline(always)]
    fn enter(&mut self, group: PtegIndex, slot: Option<u8>, hpte: Hpte) -> Result<Ptex, HptError> {
        self.backend.insert(group, slot, hpte)
    }
    #[inline(always)]
    fn take(&mut self, ptex: Ptex, cond: RemoveCondition) -> Result<Hpte, HptError> {
        self.backend.remove(ptex, cond)
    }
    #[inline(always)]
    fn counted(&mut self, secondary: bool, evicted: bool) {
        self.stats.inserts += 1;
        if secondary {
            self.stats.secondary_inserts += 1;
        }
        if evicted {
            self.stats.evictions += 1;
        }
    }
}

struct Shared<'a, B> {
    backend: &'a B,
    stats: &'a SharedStats,
}

impl<B: SharedHptBackend> EntryCalls for Shared<'_, B> {
    #[inline(always)]
    fn enter(&mut self, group: PtegIndex, slot: Option<u8>, hpte: Hpte) -> Result<Ptex, HptError> {
        self.backend.insert_shared(group, slot, hpte)
    }
    #[inline(always)]
    fn take(&mut self, ptex: Ptex, cond: RemoveCondition) -> Result<Hpte, HptError> {
        self.backend.remove_shared(ptex, cond)
    }
    #[inline(always)]
    fn counted(&mut self, secondary: bool, evicted: bool) {
        self.stats.inserts.fetch_add(1, Ordering::Relaxed);
        if secondary {
            self.stats.secondary_inserts.fetch_add(1, Ordering::Relaxed);
        }
        if evicted {
            self.stats.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// [`HptManager::insert`]'s work on a table of `mask + 1` PTEGs; `cursor`
/// answers (and advances) the eviction round robin when both PTEGs are
/// full.
#[inline(always)]
fn insert_into<C: EntryCalls>(
    calls: &mut C,
    mask: u64,
    mapping: &PageMapping,
    cursor: impl FnOnce() -> u32,
) -> Result<Inserted, InsertError> {
    let Some(primary_hpte) = mapping.hpte(false) else {
        return Err(InsertError::Misaligned(mapping.pa));
    };
    let secondary_hpte = primary_hpte.with_secondary(true);
    let hash = mapping.page.hash();
    let primary = PtegIndex::new(hash & mask);
    let secondary = PtegIndex::new(!hash & mask);

    match calls.enter(primary, None, primary_hpte) {
        Ok(ptex) => return Ok(inserted(calls, ptex, None, false)),
        Err(HptError::PtegFull) => {}
        Err(e) => return Err(InsertError::Backend(e)),
    }
    match calls.enter(secondary, None, secondary_hpte) {
        Ok(ptex) => return Ok(inserted(calls, ptex, None, true)),
        Err(HptError::PtegFull) => {}
        Err(e) => return Err(InsertError::Backend(e)),
    }
    insert_evicting(
        calls,
        mask,
        cursor(),
        [primary, secondary],
        [primary_hpte, secondary_hpte],
    )
}

/// [`insert_into`] when both PTEGs are full: evicts a victim. Kept out of
/// line so the common insert saves few registers.
#[cold]
#[inline(never)]
fn insert_evicting<C: EntryCalls>(
    calls: &mut C,
    mask: u64,
    start: u32,
    [primary, secondary]: [PtegIndex; 2],
    [primary_hpte, secondary_hpte]: [Hpte; 2],
) -> Result<Inserted, InsertError> {
    // Both full: evict. `H_REMOVE(H_ANDCOND, BOLTED)` refuses bolted
    // entries atomically (Linux pSeries_lpar_hpte_remove), then the new
    // entry takes exactly the freed slot (FreeBSD mphyp_pte_insert).
    let groups = if start & 1 == 0 {
        [(primary, false), (secondary, true)]
    } else {
        [(secondary, true), (primary, false)]
    };
    for (group, is_secondary) in groups {
        for i in 0..Ptex::SLOTS_PER_PTEG as u32 {
            let slot = (((start >> 1) + i) & 7) as u8;
            let victim = group.ptex(slot);
            match calls.take(victim, RemoveCondition::AndCond(hpte::v::BOLTED)) {
                Ok(old) => {
                    let new = if is_secondary {
                        secondary_hpte
                    } else {
                        primary_hpte
                    };
                    // The slot is invalid now, so an exact insert cannot
                    // find it full; should the backend still refuse, put
                    // the victim back so the table is as before.
                    let ptex = match calls.enter(group, Some(slot), new) {
                        Ok(p) => p,
                        Err(e) => {
                            let _ = calls.enter(group, Some(slot), old);
                            return Err(InsertError::Backend(e));
                        }
                    };
                    let evicted = Evicted {
                        ptex: victim,
                        hpte: old,
                        page: decode_entry(victim, old, mask),
                    };
                    return Ok(inserted(calls, ptex, Some(evicted), is_secondary));
                }
                Err(HptError::NotFound) => continue,
                Err(e) => return Err(InsertError::Backend(e)),
            }
        }
    }
    Err(InsertError::Full)
}

#[inline(always)]
fn inserted<C: EntryCalls>(
    calls: &mut C,
    ptex: Ptex,
    evicted: Option<Evicted>,
    secondary: bool,
) -> Inserted {
    calls.counted(secondary, evicted.is_some());
    Inserted {
        ptex,
        slot: HptSlot::new(secondary, ptex.slot()),
        evicted,
    }
}

/// Locks striped over the PTEG pairs (a hash's primary and secondary PTEG,
/// `g` and `!g & mask`, share one): what keeps two shared inserts from
/// choosing the same free or victim slot. Striped, not one per pair, so
/// the array stays small whatever the table's size; pairs that share a
/// stripe only wait for each other.
struct PairLocks([AtomicBool; PAIR_LOCKS]);

const PAIR_LOCKS: usize = 256;

impl PairLocks {
    const fn new() -> PairLocks {
        PairLocks([const { AtomicBool::new(false) }; PAIR_LOCKS])
    }

    /// The stripe of the pair holding `group` in a table of `mask + 1`
    /// PTEGs (the pair is named by its smaller member).
    #[inline(always)]
    fn stripe(group: u64, mask: u64) -> usize {
        (group.min(!group & mask) % PAIR_LOCKS as u64) as usize
    }

    #[inline(always)]
    fn lock(&self, stripe: usize) {
        while self.0[stripe]
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
    }

    #[inline(always)]
    fn unlock(&self, stripe: usize) {
        self.0[stripe].store(false, Ordering::Release);
    }
}

/// Counters of the shared inserts, added to [`HptStats`] when read.
#[derive(Default)]
struct SharedStats {
    inserts: AtomicU64,
    secondary_inserts: AtomicU64,
    evictions: AtomicU64,
}

impl<B: SharedHptBackend> HptManager<B> {
    /// [`HptManager::insert`] through `&self`, for inserts made on several
    /// processors at once: the page's PTEG pair is locked across the
    /// search, the eviction and the insert, so two inserts never pick the
    /// same slot. The caller holds the page's record (its segment's lock),
    /// so no other insert of the same page runs.
    pub fn insert_shared(&self, mapping: &PageMapping) -> Result<Inserted, InsertError> {
        let stripe = PairLocks::stripe(mapping.page.hash() & self.mask, self.mask);
        self.pair_locks.lock(stripe);
        let mut calls = Shared {
            backend: &self.backend,
            stats: &self.shared_stats,
        };
        let r = insert_into(&mut calls, self.mask, mapping, || {
            self.cursor.fetch_add(1, Ordering::Relaxed)
        });
        self.pair_locks.unlock(stripe);
        r
    }
}

impl<B> core::fmt::Debug for HptManager<B> {
    /// The table's size and the counters, not its contents.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HptManager")
            .field("ptegs", &(self.mask + 1))
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<B: HptBackend> HptManager<B> {
    /// Manages the table behind `backend`, whose PTEG count must be a power
    /// of two of at least [`MIN_PTEG_COUNT`].
    pub fn new(backend: B) -> Result<Self, HptSetupError> {
        let n = backend.pteg_count();
        if !n.is_power_of_two() || !(MIN_PTEG_COUNT..=1 << 39).contains(&n) {
            return Err(HptSetupError::BadPtegCount(n));
        }
        Ok(HptManager {
            backend,
            mask: n - 1,
            cursor: AtomicU32::new(0),
            stats: HptStats::default(),
            shared_stats: SharedStats::default(),
            pair_locks: PairLocks::new(),
        })
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend, mutably (bypassing the manager's bookkeeping).
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// Number of PTEGs.
    pub fn pteg_count(&self) -> u64 {
        self.mask + 1
    }

    /// The hash mask (`pteg_count - 1`).
    pub fn hash_mask(&self) -> u64 {
        self.mask
    }

    /// Counters so far.
    pub fn stats(&self) -> HptStats {
        let shared = |c: &AtomicU64| c.load(Ordering::Relaxed);
        HptStats {
            inserts: self.stats.inserts + shared(&self.shared_stats.inserts),
            secondary_inserts: self.stats.secondary_inserts
                + shared(&self.shared_stats.secondary_inserts),
            evictions: self.stats.evictions + shared(&self.shared_stats.evictions),
            ..self.stats
        }
    }

    /// Primary PTEG of `page`.
    pub fn primary_group(&self, page: VirtualPage) -> PtegIndex {
        PtegIndex::new(page.hash() & self.mask)
    }

    /// Secondary PTEG of `page`.
    pub fn secondary_group(&self, page: VirtualPage) -> PtegIndex {
        PtegIndex::new(!page.hash() & self.mask)
    }

    /// Enters `mapping`: first free slot of the primary PTEG, else of the
    /// secondary (with `H` = 1), else evicts a non-bolted entry (round
    /// robin over the slots, alternating which PTEG is tried first) and
    /// returns it in [`Inserted::evicted`].
    ///
    /// The caller must not enter a second translation for a page that has
    /// one (two matching HPTEs are undefined, ISA "Page Table Search"); debug builds
    /// check this.
    pub fn insert(&mut self, mapping: &PageMapping) -> Result<Inserted, InsertError> {
        debug_assert!(
            matches!(self.lookup(mapping.page), Ok(None)),
            "second HPTE for {:?}",
            mapping.page
        );
        let cursor = self.cursor.get_mut();
        let mut calls = Exclusive {
            backend: &mut self.backend,
            stats: &mut self.stats,
        };
        insert_into(&mut calls, self.mask, mapping, || {
            let start = *cursor;
            *cursor = start.wrapping_add(1);
            start
        })
    }

    /// The PTE index of `slot` among `page`'s PTEGs.
    #[inline(always)]
    pub fn slot_ptex(&self, page: VirtualPage, slot: HptSlot) -> Ptex {
        let h = page.hash();
        let group = if slot.secondary() { !h } else { h } & self.mask;
        PtegIndex::new(group).ptex(slot.index())
    }

    /// Where `ptex` lies among `page`'s PTEGs; `None` if in neither (that
    /// slot can never hold the page). With the primary and secondary group
    /// the same (never: a hash and its complement differ in every bit),
    /// the primary is meant.
    pub fn slot_of(&self, page: VirtualPage, ptex: Ptex) -> Option<HptSlot> {
        self.side_of(ptex, page)
            .ok()
            .map(|secondary| HptSlot::new(secondary, ptex.slot()))
    }

    /// Whether `ptex` is in `page`'s secondary PTEG; `Parameter` if it is
    /// in neither of its PTEGs (a caller bug: that slot can never hold the
    /// page).
    fn side_of(&self, ptex: Ptex, page: VirtualPage) -> Result<bool, HptError> {
        if ptex.pteg() == self.primary_group(page) {
            Ok(false)
        } else if ptex.pteg() == self.secondary_group(page) {
            Ok(true)
        } else {
            Err(HptError::Parameter)
        }
    }

    /// `H_AVPN` compares B and AVPN but not `H`. With the smallest table
    /// (11 hash bits) and 4K pages, two pages of the same 8 MB can have
    /// the same AVPN word with one in the other's secondary PTEG; then the
    /// entry is read first to check `H` too.
    fn still_ours(&self, ptex: Ptex, page: VirtualPage, secondary: bool) -> Result<bool, HptError> {
        let ambiguous = self.mask < (1 << 23u32.saturating_sub(page.psize.shift()));
        if !ambiguous {
            return Ok(true);
        }
        let cur = self.backend.read(ptex)?;
        let want = page.avpn_word() | hpte::v::V | if secondary { hpte::v::H } else { 0 };
        Ok(cur.matches(want))
    }

    /// Whether `slot` among `page`'s PTEGs holds a valid entry for `page`
    /// now: what a table search would find there (B, AVPN, H and V
    /// compared).
    #[inline]
    pub fn holds(&self, page: VirtualPage, slot: HptSlot) -> Result<bool, HptError> {
        let cur = self.backend.read(self.slot_ptex(page, slot))?;
        let h = if slot.secondary() { hpte::v::H } else { 0 };
        Ok(cur.matches(page.avpn_word() | hpte::v::V | h))
    }

    /// Removes `page`'s entry at `ptex` (where [`HptManager::insert`] put
    /// it). Returns the old entry with its final R and C, or `None` if it
    /// was already evicted (the slot is then left alone).
    pub fn remove(&mut self, ptex: Ptex, page: VirtualPage) -> Result<Option<Hpte>, HptError> {
        let secondary = self.side_of(ptex, page)?;
        self.remove_slot(page, HptSlot::new(secondary, ptex.slot()))
    }

    /// [`HptManager::remove`] of the entry at `slot` among `page`'s PTEGs
    /// (as a page record keeps it): the slot lies in one of the page's
    /// groups by construction, so only the entry itself is checked.
    #[inline]
    pub fn remove_slot(
        &mut self,
        page: VirtualPage,
        slot: HptSlot,
    ) -> Result<Option<Hpte>, HptError> {
        let ptex = self.slot_ptex(page, slot);
        if !self.still_ours(ptex, page, slot.secondary())? {
            self.stats.removes_absent += 1;
            return Ok(None);
        }
        match self
            .backend
            .remove(ptex, RemoveCondition::Avpn(page.avpn_word()))
        {
            Ok(old) => {
                self.stats.removes += 1;
                Ok(Some(old))
            }
            Err(HptError::NotFound) => {
                self.stats.removes_absent += 1;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Removes several pages' entries at once, each as [`HptManager::remove`]
    /// would (same slot checks, same counters), through one
    /// [`HptBackend::remove_batch`] call, which a PAPR backend turns into
    /// `H_BULK_REMOVE` hcalls of four. Returns, per request and in order,
    /// the removed entry's R and C, `None` if it was already evicted (the
    /// slot is then left alone), or why the request was refused; one
    /// refused request does not stop the others.
    pub fn remove_many(
        &mut self,
        requests: &[(Ptex, VirtualPage)],
    ) -> Vec<Result<Option<RefChange>, HptError>> {
        let mut out: Vec<Result<Option<RefChange>, HptError>> = Vec::with_capacity(requests.len());
        // Indices into `out` of the requests that go to the backend.
        let mut sent = Vec::new();
        let mut batch = Vec::new();
        for &(ptex, page) in requests {
            let checked = self
                .side_of(ptex, page)
                .and_then(|secondary| self.still_ours(ptex, page, secondary));
            match checked {
                Ok(true) => {
                    sent.push(out.len());
                    batch.push((ptex, RemoveCondition::Avpn(page.avpn_word())));
                    // Overwritten below; stays only if the backend answers
                    // fewer requests than it was given.
                    out.push(Err(HptError::Hardware(0)));
                }
                Ok(false) => {
                    self.stats.removes_absent += 1;
                    out.push(Ok(None));
                }
                Err(e) => out.push(Err(e)),
            }
        }
        if batch.is_empty() {
            return out;
        }
        let results = self.backend.remove_batch(&batch);
        debug_assert_eq!(results.len(), batch.len(), "one result per request");
        for (&i, r) in sent.iter().zip(results) {
            out[i] = match r {
                Ok(rc) => {
                    self.stats.removes += 1;
                    Ok(Some(rc))
                }
                Err(HptError::NotFound) => {
                    self.stats.removes_absent += 1;
                    Ok(None)
                }
                Err(e) => Err(e),
            };
        }
        out
    }

    /// Changes the protection of `page`'s entry at `ptex`. `Ok(false)` if
    /// it was already evicted (the next fault will insert it with the new
    /// protection from the software tables).
    pub fn protect(
        &mut self,
        ptex: Ptex,
        page: VirtualPage,
        pp: Pp,
        no_execute: bool,
    ) -> Result<bool, HptError> {
        let secondary = self.side_of(ptex, page)?;
        self.protect_slot(page, HptSlot::new(secondary, ptex.slot()), pp, no_execute)
    }

    /// [`HptManager::protect`] of the entry at `slot` among `page`'s PTEGs
    /// (as a page record keeps it), as [`HptManager::remove_slot`] removes
    /// one.
    pub fn protect_slot(
        &mut self,
        page: VirtualPage,
        slot: HptSlot,
        pp: Pp,
        no_execute: bool,
    ) -> Result<bool, HptError> {
        let ptex = self.slot_ptex(page, slot);
        if !self.still_ours(ptex, page, slot.secondary())? {
            self.stats.protects_absent += 1;
            return Ok(false);
        }
        match self.backend.protect(ptex, page.avpn_word(), pp, no_execute) {
            Ok(()) => {
                self.stats.protects += 1;
                Ok(true)
            }
            Err(HptError::NotFound) => {
                self.stats.protects_absent += 1;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Finds `page`'s entry the way the MMU does: primary PTEG slots 0..8,
    /// then secondary, first entry whose B, AVPN, H and V match and whose
    /// page size is the page's.
    pub fn lookup(&self, page: VirtualPage) -> Result<Option<(Ptex, Hpte)>, HptError> {
        let avpn = page.avpn_word() | hpte::v::V;
        for (group, h) in [
            (self.primary_group(page), 0),
            (self.secondary_group(page), hpte::v::H),
        ] {
            for slot in 0..Ptex::SLOTS_PER_PTEG {
                let ptex = group.ptex(slot);
                let e = self.backend.read(ptex)?;
                if e.matches(avpn | h) && e.page_size() == Some(page.psize) {
                    return Ok(Some((ptex, e)));
                }
            }
        }
        Ok(None)
    }

    /// The virtual page a valid entry at `ptex` translates ([`decode_entry`]
    /// with this table's mask).
    pub fn decode(&self, ptex: Ptex, entry: Hpte) -> Option<VirtualPage> {
        decode_entry(ptex, entry, self.mask)
    }

    /// Removes every entry whose VSID `dead` selects (bolted ones too),
    /// scanning the whole table: the sweep that lets quarantined SIDs be
    /// reused ([`crate::sid`]). The removes go to the backend in batches
    /// ([`HptBackend::remove_batch`]). Returns how many were removed.
    pub fn purge(&mut self, mut dead: impl FnMut(Vsid) -> bool) -> Result<usize, HptError> {
        /// Requests gathered before they go to the backend: two PTEGs'
        /// worth, a multiple of `H_BULK_REMOVE`'s four.
        const BATCH: usize = 16;
        let mut removed = 0;
        let mut batch = Vec::with_capacity(BATCH);
        for g in 0..self.pteg_count() {
            let group = PtegIndex::new(g);
            for slot in 0..Ptex::SLOTS_PER_PTEG {
                let ptex = group.ptex(slot);
                let e = self.backend.read(ptex)?;
                if !e.is_valid() {
                    continue;
                }
                let Some(ssize) = e.segment_size() else {
                    continue;
                };
                let Some(vsid) = Vsid::try_new(e.avpn() >> (ssize.shift() - 23)) else {
                    continue;
                };
                if dead(vsid) {
                    batch.push((ptex, RemoveCondition::Avpn(e.avpn_word())));
                    if batch.len() == BATCH {
                        removed += self.purge_batch(&batch)?;
                        batch.clear();
                    }
                }
            }
        }
        removed += self.purge_batch(&batch)?;
        Ok(removed)
    }

    /// Sends one batch of [`HptManager::purge`]'s removes; an entry gone
    /// meanwhile is no error. Counts what went.
    fn purge_batch(&mut self, batch: &[(Ptex, RemoveCondition)]) -> Result<usize, HptError> {
        if batch.is_empty() {
            return Ok(0);
        }
        let mut removed = 0;
        let mut failed = None;
        for r in self.backend.remove_batch(batch) {
            match r {
                Ok(_) => removed += 1,
                Err(HptError::NotFound) => {}
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        self.stats.removes += removed as u64;
        match failed {
            Some(e) => Err(e),
            None => Ok(removed),
        }
    }
}

#[cfg(test)]
mod tests;
