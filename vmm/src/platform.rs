//! The platform interface: the small traits the hardware-independent VMM
//! core is written against, and the interrupt/fault vocabulary the kernel's
//! interrupt handlers and the emulated machine ([`crate::sim`]) share.
//!
//! | trait | kernel (pseries) | kernel (powernv) | host tests |
//! |---|---|---|---|
//! | [`HptBackend`] | PAPR hcalls `H_ENTER`/`H_REMOVE`/`H_PROTECT`/`H_READ` | [`crate::native::NativeHpt`] | [`crate::sim`] |
//! | [`SlbBackend`] | `slbmte`/`slbie`/`slbmfee` | same | [`crate::sim`] |
//! | [`FrameAllocator`], [`PhysMemory`] | kernel frame allocator | same | [`crate::sim`] |
//!
//! [`FaultHandler`] goes the other way: the VMM implements it, the
//! interrupt vectors (or the sim) call it. What runs on the processor
//! ([`Environment`]) is not a trait: the kernel tells the VMM with
//! [`crate::vm::Vmm::set_environment`] at interrupt entry and exit.

use arch_ppc64::addr::{EffectiveAddress, PhysAddr, PtegIndex, Ptex};
use arch_ppc64::registers::dsisr::DsisrFlags;
use arch_ppc64::registers::srr1::IsiFlags;
use arch_ppc64::structures::hpte::{Hpte, Pp};
use arch_ppc64::structures::slb::SlbEntry;
use arch_ppc64::structures::SegmentSize;

use crate::slb::SlbManagerError;

// ---------------------------------------------------------------------------
// Hashed page table
// ---------------------------------------------------------------------------

/// Why an [`HptBackend`] operation failed. Mirrors the PAPR return codes
/// the hcalls give (PAPR page frame table hcalls; values in
/// `docs/ppc64-mmu.md` §1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HptError {
    /// `H_PTEG_FULL` (−6): no free slot in the group (or the exact slot
    /// asked for is valid).
    PtegFull,
    /// `H_NOT_FOUND` (−7): the entry is invalid or its AVPN/condition does
    /// not match — for the VMM: it was already evicted.
    NotFound,
    /// `H_PARAMETER` (−4): PTE index outside the table, bad page size
    /// encoding, WIMG not allowed for the address, bad flags.
    Parameter,
    /// Any other hypervisor/hardware failure, with the raw return code.
    Hardware(i64),
}

/// The condition [`HptBackend::remove`] checks before invalidating an
/// entry, as PAPR `H_REMOVE`'s flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoveCondition {
    /// Remove whatever valid entry is in the slot.
    Absolute,
    /// `H_AVPN`: remove only if the entry's B and AVPN (`v & !0x7f`) equal
    /// this AVPN word ([`Hpte::avpn_word`]).
    Avpn(u64),
    /// `H_ANDCOND`: remove only if `v & mask == 0`. Linux evicts with
    /// `AndCond(BOLTED)` to never remove a bolted entry.
    AndCond(u64),
}

/// A hashed page table: the hypervisor's (through hcalls) or one in memory.
///
/// Semantics follow PAPR `H_ENTER`/`H_REMOVE`/`H_PROTECT`/`H_READ` as QEMU
/// implements them (`docs/ppc64-mmu.md` §1.5–1.6). Every operation
/// leaves the table unchanged when it returns an error. A backend does no
/// hashing and does not check that an entry is in the right group for its
/// AVPN — that is [`crate::hpt`]'s job.
pub trait HptBackend {
    /// Number of PTEGs in the table (a power of two; the hash mask is
    /// `pteg_count() - 1`).
    fn pteg_count(&self) -> u64;

    /// Writes `hpte` (which should have V set) into group `group`: into
    /// the first invalid slot if `slot` is `None`, or exactly slot `slot`
    /// (`H_EXACT`) which must be invalid. Returns where it went.
    ///
    /// Errors: [`HptError::PtegFull`] if no such slot is free,
    /// [`HptError::Parameter`] if `group` is outside the table or `slot > 7`.
    fn insert(&mut self, group: PtegIndex, slot: Option<u8>, hpte: Hpte) -> Result<Ptex, HptError>;

    /// Invalidates the entry at `ptex` if it is valid and `cond` holds, and
    /// returns its old contents including R and C (after invalidation, so
    /// R/C are final). [`HptError::NotFound`] if invalid or the condition
    /// fails, [`HptError::Parameter`] if `ptex` is outside the table.
    fn remove(&mut self, ptex: Ptex, cond: RemoveCondition) -> Result<Hpte, HptError>;

    /// Replaces the page protection (`PP0 || PP`) and `N` of the entry at
    /// `ptex`, keeping R, C and everything else, if it is valid and its
    /// AVPN word equals `avpn` (`H_PROTECT` with `H_AVPN`). The old
    /// translation is flushed from any TLB.
    fn protect(&mut self, ptex: Ptex, avpn: u64, pp: Pp, no_exec: bool) -> Result<(), HptError>;

    /// Reads the entry at `ptex` (valid or not), `H_READ`.
    /// [`HptError::Parameter`] if `ptex` is outside the table.
    fn read(&self, ptex: Ptex) -> Result<Hpte, HptError>;

    /// Reads the eight entries of group `group` (valid or not), for scans
    /// of the whole table. The default calls `read` for each; a PAPR
    /// backend reads four per `H_READ` (`H_READ_4`).
    /// [`HptError::Parameter`] if `group` is outside the table.
    fn read_group(&self, group: PtegIndex) -> Result<[Hpte; 8], HptError> {
        let mut out = [Hpte::EMPTY; 8];
        for (slot, h) in (0..Ptex::SLOTS_PER_PTEG).zip(out.iter_mut()) {
            *h = self.read(group.ptex(slot))?;
        }
        Ok(out)
    }

    /// How many groups from `group` on (at most to the end of the table)
    /// the backend knows hold no entry, because nothing was ever inserted
    /// there; 0 when it does not know. Whole-table scans such as
    /// `Vmm::check_invariants` skip that many. The default knows nothing;
    /// a backend tracking the groups it ever filled answers from that
    /// record (a table of 2^20 groups at 16 GiB of RAM is mostly empty).
    fn known_empty_groups(&self, group: PtegIndex) -> u64 {
        let _ = group;
        0
    }

    /// Removes several entries, each as [`HptBackend::remove`] would, and
    /// returns per request the removed entry's R and C bits or why it
    /// stayed (same errors as `remove`). Where one request fails the
    /// others still run. The default calls `remove` for each; a PAPR
    /// backend batches them with `H_BULK_REMOVE` (four per hcall), which
    /// hands back only R and C, hence the narrower result.
    fn remove_batch(
        &mut self,
        requests: &[(Ptex, RemoveCondition)],
    ) -> alloc::vec::Vec<Result<RefChange, HptError>> {
        requests
            .iter()
            .map(|&(ptex, cond)| self.remove(ptex, cond).map(RefChange::of))
            .collect()
    }
}

/// The reference and change bits of a removed entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RefChange {
    /// R: the page was accessed through the entry.
    pub referenced: bool,
    /// C: the page was stored to through the entry.
    pub changed: bool,
}

impl RefChange {
    /// R and C of `hpte`.
    pub const fn of(hpte: Hpte) -> RefChange {
        RefChange {
            referenced: hpte.referenced(),
            changed: hpte.changed(),
        }
    }
}

impl<T: HptBackend + ?Sized> HptBackend for &mut T {
    fn pteg_count(&self) -> u64 {
        (**self).pteg_count()
    }
    fn insert(&mut self, group: PtegIndex, slot: Option<u8>, hpte: Hpte) -> Result<Ptex, HptError> {
        (**self).insert(group, slot, hpte)
    }
    fn remove(&mut self, ptex: Ptex, cond: RemoveCondition) -> Result<Hpte, HptError> {
        (**self).remove(ptex, cond)
    }
    fn protect(&mut self, ptex: Ptex, avpn: u64, pp: Pp, no_exec: bool) -> Result<(), HptError> {
        (**self).protect(ptex, avpn, pp, no_exec)
    }
    fn read(&self, ptex: Ptex) -> Result<Hpte, HptError> {
        (**self).read(ptex)
    }
    fn remove_batch(
        &mut self,
        requests: &[(Ptex, RemoveCondition)],
    ) -> alloc::vec::Vec<Result<RefChange, HptError>> {
        (**self).remove_batch(requests)
    }
}

// ---------------------------------------------------------------------------
// Segment lookaside buffer
// ---------------------------------------------------------------------------

/// Why an [`SlbBackend`] operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SlbError {
    /// Index at or beyond [`SlbBackend::slb_size`] (on hardware: a Program
    /// interrupt).
    IndexOutOfRange(usize),
    /// The entry has a reserved segment size or an unsupported base page
    /// size (on hardware: a Program interrupt).
    InvalidEntry(SlbEntry),
}

/// The processor's SLB: `slbmte`, `slbie`, `slbmfee`/`slbmfev`.
///
/// The SLB is per processor; an implementation acts on the current one.
/// Entries `0..bolted` are the kernel's bolted segments (Linux: 2) and
/// survive [`SlbBackend::invalidate_non_bolted`].
pub trait SlbBackend {
    /// Number of entries (`ibm,slb-size`; 32 on POWER7–10).
    fn slb_size(&self) -> usize;

    /// Writes `entry` at `index` (the entry's own index field is replaced
    /// by `index`). The caller must first invalidate any other entry
    /// translating the same ESID: overlapping entries are undefined (ISA
    /// SLB search). When replacing a valid entry with a different VSID,
    /// invalidate it first so no stale TLB entry survives.
    fn load(&mut self, index: usize, entry: SlbEntry) -> Result<(), SlbError>;

    /// Reads the entry at `index`.
    fn read(&self, index: usize) -> Result<SlbEntry, SlbError>;

    /// `slbie`: invalidates the entry (if any) translating `ea` in a
    /// segment of size `ssize`, and the TLB entries derived from it.
    fn invalidate(&mut self, ea: EffectiveAddress, ssize: SegmentSize);

    /// Invalidates every entry with index `bolted..slb_size()` (what an
    /// address-space switch needs); entries `0..bolted` stay.
    fn invalidate_non_bolted(&mut self, bolted: usize);

    /// The hardware SLB index of this backend's index 0: what a
    /// segment-miss fast path that writes the SLB itself adds to the
    /// manager's index (see [`crate::slb::fast`]). 0 unless the backend
    /// keeps the low hardware entries for itself.
    fn hardware_index_base(&self) -> usize {
        0
    }
}

// ---------------------------------------------------------------------------
// Physical memory
// ---------------------------------------------------------------------------

/// Size of the frames a [`FrameAllocator`] hands out: 4 KiB.
pub const FRAME_SIZE: u64 = 4096;

/// Why a frame operation was refused. The frame tables are left unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameError {
    /// The address is not a multiple of [`FRAME_SIZE`].
    Misaligned(PhysAddr),
    /// The address is outside the memory the allocator manages.
    OutOfRange(PhysAddr),
    /// The frame is not currently allocated (double free, or use of a freed
    /// frame).
    NotAllocated(PhysAddr),
    /// The frame already has as many sharers as the allocator can count
    /// ([`FrameAllocator::share`]); the caller copies it instead.
    TooManySharers(PhysAddr),
}

/// Allocator of 4 KiB real-memory frames, with the two whole-frame
/// operations the VMM needs (zero-fill on first touch, copy when a
/// copy-on-write page is first stored to) and a count of sharers per
/// frame.
///
/// Sharing: after fork, a parent's page and its child's name one frame
/// until one of them stores to it. Every allocated frame counts its
/// sharers, one when handed out; [`share`](Self::share) adds one,
/// [`free`](Self::free) takes one off and returns the frame to the pool
/// with the last. Both counts and reads are O(1): the count lives in a
/// per-frame array (the way a kernel keeps a reference count in its
/// per-frame descriptors), so the fault path learns whether it must copy
/// without a search.
pub trait FrameAllocator {
    /// A free frame, contents undefined, with one sharer; `None` when
    /// memory is exhausted.
    fn allocate(&mut self) -> Option<PhysAddr>;

    /// Drops one sharer of an allocated frame; the last one returns it to
    /// the free pool.
    fn free(&mut self, frame: PhysAddr) -> Result<(), FrameError>;

    /// Adds one sharer to an allocated frame (a copy-on-write page now
    /// names it too). [`FrameError::TooManySharers`] when the count is at
    /// the allocator's limit (the frame is then copied instead).
    fn share(&mut self, frame: PhysAddr) -> Result<(), FrameError>;

    /// How many pages name `frame`: 0 for a frame that is not allocated,
    /// 1 for a private one, more for one shared copy-on-write.
    fn sharers(&self, frame: PhysAddr) -> u32;

    /// Fills an allocated frame with zeroes.
    fn zero(&mut self, frame: PhysAddr) -> Result<(), FrameError>;

    /// A free frame filled with zeroes (the fault path's first touch):
    /// [`allocate`](Self::allocate) then [`zero`](Self::zero), the frame
    /// going back if it cannot be zeroed. `Ok(None)` when memory is
    /// exhausted. An allocator may do it in one step, without the checks
    /// `zero` makes on a frame it did not just hand out.
    fn allocate_zeroed(&mut self) -> Result<Option<PhysAddr>, FrameError> {
        let Some(f) = self.allocate() else {
            return Ok(None);
        };
        if let Err(e) = self.zero(f) {
            let _ = self.free(f);
            return Err(e);
        }
        Ok(Some(f))
    }

    /// Copies allocated frame `src` to allocated frame `dst`.
    fn copy(&mut self, dst: PhysAddr, src: PhysAddr) -> Result<(), FrameError>;

    /// Number of frames currently free (for statistics and leak checks).
    fn free_frames(&self) -> usize;
}

/// An HPT backend several processors may call at once: each call is
/// atomic on the entry it touches, as PAPR's hcalls are (the hypervisor
/// locks the PTEG), so the manager's shared fault path
/// ([`crate::vm::Vmm::resolve_shared`]) can insert while other processors
/// do. The manager still keeps two inserts off the same PTEG pair.
pub trait SharedHptBackend: HptBackend + Sync {
    /// [`HptBackend::insert`] through `&self`.
    fn insert_shared(
        &self,
        group: PtegIndex,
        slot: Option<u8>,
        hpte: Hpte,
    ) -> Result<Ptex, HptError>;

    /// [`HptBackend::remove`] through `&self`.
    fn remove_shared(&self, ptex: Ptex, cond: RemoveCondition) -> Result<Hpte, HptError>;
}

/// A frame allocator several processors may call at once, for the shared
/// fault path's first touches.
pub trait SharedFrameAllocator: FrameAllocator + Sync {
    /// [`FrameAllocator::allocate_zeroed`] through `&self`.
    fn allocate_zeroed_shared(&self) -> Result<Option<PhysAddr>, FrameError>;

    /// [`FrameAllocator::free`] through `&self`.
    fn free_shared(&self, frame: PhysAddr) -> Result<(), FrameError>;
}

/// Byte access to real memory from the kernel side (page-in, test checks).
/// The range `[pa, pa + len)` may cross frames but must lie in managed
/// memory.
pub trait PhysMemory {
    /// Copies `buf.len()` bytes starting at `pa` into `buf`.
    fn read(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), FrameError>;

    /// Copies `data` to real memory starting at `pa`.
    fn write(&mut self, pa: PhysAddr, data: &[u8]) -> Result<(), FrameError>;
}

// ---------------------------------------------------------------------------
// Execution context
// ---------------------------------------------------------------------------

/// A process identifier as the kernel's scheduler knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessId(pub u32);

/// What is running when the VMM is entered. AIX's rule: a page fault may
/// block only in a process; a fault at interrupt level on pageable memory
/// is a system crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Environment {
    /// A user process (or its kernel-mode system call).
    Process(ProcessId),
    /// A kernel process (no user address space).
    KernelProcess,
    /// An interrupt handler: must not block or fault on pageable memory.
    Interrupt,
}

// ---------------------------------------------------------------------------
// Interrupts and faults
// ---------------------------------------------------------------------------

/// Processor privilege state of the access (`MSR[PR]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Privilege {
    /// Problem (user) state, `MSR[PR] = 1`: the SLB key `Kp` applies.
    Problem,
    /// Privileged (supervisor) state, `MSR[PR] = 0`: `Ks` applies.
    Supervisor,
}

impl Privilege {
    /// `MSR[PR]` as a bool.
    pub const fn is_problem(self) -> bool {
        matches!(self, Privilege::Problem)
    }
}

/// Kind of storage access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Data load.
    Load,
    /// Data store.
    Store,
    /// Instruction fetch.
    Fetch,
}

/// A storage interrupt as the processor delivers it (Power ISA Book III
/// "Interrupt Definitions"; QEMU values in `docs/ppc64-mmu.md` §2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupt {
    /// 0x300: data access with a segment but no usable translation. `ea` is
    /// DAR.
    DataStorage {
        /// Faulting effective address (DAR).
        ea: EffectiveAddress,
        /// Cause bits (DSISR).
        dsisr: DsisrFlags,
    },
    /// 0x400: instruction fetch with a segment but no usable translation.
    /// `ea` is SRR0.
    InstructionStorage {
        /// Faulting effective address (SRR0).
        ea: EffectiveAddress,
        /// Cause bits (from SRR1).
        srr1: IsiFlags,
    },
    /// 0x380: data access with no SLB entry for the EA (DSISR is not
    /// written, so load vs store is unknown).
    DataSegment {
        /// Faulting effective address (DAR).
        ea: EffectiveAddress,
    },
    /// 0x480: instruction fetch with no SLB entry for the EA.
    InstructionSegment {
        /// Faulting effective address (SRR0).
        ea: EffectiveAddress,
    },
}

/// The decoded reason of an [`Interrupt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultCause {
    /// No SLB entry (segment interrupts).
    NoSegment,
    /// No HPTE in the primary or secondary PTEG (DSISR/SRR1 bit 33).
    NoPte,
    /// Page protection `PP` with the segment key forbids it (bit 36).
    Protection,
    /// Fetch from an N or G page or an N segment (SRR1 bit 35).
    NoExecute,
    /// Virtual page class key (AMR/IAMR) forbids it (bit 42).
    Key,
    /// No cause bit this VMM knows (e.g. DABR match).
    Unknown,
}

impl Interrupt {
    /// The faulting effective address.
    pub const fn ea(&self) -> EffectiveAddress {
        match *self {
            Interrupt::DataStorage { ea, .. }
            | Interrupt::InstructionStorage { ea, .. }
            | Interrupt::DataSegment { ea }
            | Interrupt::InstructionSegment { ea } => ea,
        }
    }

    /// The interrupt vector offset (0x300, 0x380, 0x400, 0x480).
    pub const fn vector(&self) -> u16 {
        match self {
            Interrupt::DataStorage { .. } => 0x300,
            Interrupt::DataSegment { .. } => 0x380,
            Interrupt::InstructionStorage { .. } => 0x400,
            Interrupt::InstructionSegment { .. } => 0x480,
        }
    }

    /// The access kind, where the hardware tells it: `None` for a data
    /// segment interrupt (DSISR is not set).
    pub const fn access(&self) -> Option<Access> {
        match self {
            Interrupt::DataStorage { dsisr, .. } => {
                if dsisr.is_store() {
                    Some(Access::Store)
                } else {
                    Some(Access::Load)
                }
            }
            Interrupt::InstructionStorage { .. } | Interrupt::InstructionSegment { .. } => {
                Some(Access::Fetch)
            }
            Interrupt::DataSegment { .. } => None,
        }
    }

    /// Decodes the cause. When several bits are set the missing
    /// translation wins (nothing else can be judged without an HPTE), then
    /// no-execute, page protection, key.
    pub const fn cause(&self) -> FaultCause {
        match *self {
            Interrupt::DataSegment { .. } | Interrupt::InstructionSegment { .. } => {
                FaultCause::NoSegment
            }
            Interrupt::DataStorage { dsisr, .. } => {
                if dsisr.contains(DsisrFlags::NOPTE) {
                    FaultCause::NoPte
                } else if dsisr.contains(DsisrFlags::PROTFAULT) {
                    FaultCause::Protection
                } else if dsisr.contains(DsisrFlags::AMR) {
                    FaultCause::Key
                } else {
                    FaultCause::Unknown
                }
            }
            Interrupt::InstructionStorage { srr1, .. } => {
                if srr1.contains(IsiFlags::NOPTE) {
                    FaultCause::NoPte
                } else if srr1.contains(IsiFlags::NOEXEC_GUARD) {
                    FaultCause::NoExecute
                } else if srr1.contains(IsiFlags::PROTFAULT) {
                    FaultCause::Protection
                } else if srr1.contains(IsiFlags::IAMR) {
                    FaultCause::Key
                } else {
                    FaultCause::Unknown
                }
            }
        }
    }
}

/// Why the VMM could not resolve a fault: what the kernel turns into a
/// signal (user) or a crash (kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VmFaultReason {
    /// No segment is attached at this address.
    NoSegment,
    /// Inside a segment but beyond its size / mapped range.
    OutOfRange,
    /// The page's protection forbids the access.
    Protection,
    /// Instruction fetch from a no-execute page or segment.
    NoExecute,
    /// Storage key forbids the access.
    Key,
    /// No free frame to satisfy the fault.
    NoMemory,
    /// The HPT had no room and nothing evictable (both PTEGs bolted).
    HptFull,
    /// Interrupt level fault on memory that would need to block.
    NotAllowedHere,
    /// The handler said `Resolved` but the access kept faulting (the
    /// emulated machine gives up after a bounded number of retries).
    RetriesExhausted,
    /// The SLB refused the segment's entry (a bad entry or index: a VMM
    /// or backend bug, not the program's fault).
    Slb(SlbManagerError),
    /// The frame allocator refused the page's frame: zero-filling it
    /// failed, or the frame it handed out is not page-aligned.
    Frame(FrameError),
    /// The HPT backend refused the insert for a reason other than a full
    /// group (`H_PARAMETER`, or a code the hypervisor gave).
    Hpt(HptError),
    /// The interrupt's status bits (DSISR, SRR1) name no cause the VMM
    /// knows.
    UnknownCause,
}

impl From<HptError> for VmFaultReason {
    fn from(e: HptError) -> Self {
        match e {
            HptError::PtegFull => VmFaultReason::HptFull,
            other => VmFaultReason::Hpt(other),
        }
    }
}

/// A fault the VMM could not resolve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VmFault {
    /// Faulting effective address.
    pub ea: EffectiveAddress,
    /// The access, where known (see [`Interrupt::access`]).
    pub access: Option<Access>,
    /// Why it could not be resolved.
    pub reason: VmFaultReason,
}

/// What a [`FaultHandler`] did with an interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultOutcome {
    /// Translation fixed (SLB entry loaded, HPTE inserted, ...): re-execute
    /// the access.
    Resolved,
    /// A real fault: deliver it to the program or crash.
    Fault(VmFault),
}

/// The VMM's entry point from the storage interrupt vectors (and from the
/// emulated machine's accesses).
pub trait FaultHandler {
    /// Handles one storage or segment interrupt taken in state `privilege`.
    fn handle(&mut self, interrupt: Interrupt, privilege: Privilege) -> FaultOutcome;
}

impl<T: FaultHandler + ?Sized> FaultHandler for &mut T {
    fn handle(&mut self, interrupt: Interrupt, privilege: Privilege) -> FaultOutcome {
        (**self).handle(interrupt, privilege)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::ArrayHpt;

    fn ea() -> EffectiveAddress {
        EffectiveAddress::new(0x1000_2000)
    }

    #[test]
    fn dsi_decoding_matches_qemu_values() {
        // QEMU: store to a page with no HPTE → DSISR 0x42000000.
        let i = Interrupt::DataStorage {
            ea: ea(),
            dsisr: DsisrFlags::from_dsisr(0x4200_0000),
        };
        assert_eq!(i.cause(), FaultCause::NoPte);
        assert_eq!(i.access(), Some(Access::Store));
        assert_eq!(i.vector(), 0x300);
        // Load denied by PP → 0x08000000.
        let i = Interrupt::DataStorage {
            ea: ea(),
            dsisr: DsisrFlags::from_dsisr(0x0800_0000),
        };
        assert_eq!(i.cause(), FaultCause::Protection);
        assert_eq!(i.access(), Some(Access::Load));
        let i = Interrupt::DataStorage {
            ea: ea(),
            dsisr: DsisrFlags::from_dsisr(0x0220_0000),
        };
        assert_eq!(i.cause(), FaultCause::Key);
        let i = Interrupt::DataStorage {
            ea: ea(),
            dsisr: DsisrFlags::from_dsisr(0x0040_0000),
        };
        assert_eq!(i.cause(), FaultCause::Unknown);
    }

    #[test]
    fn isi_decoding_matches_qemu_values() {
        let cases = [
            (0x4000_0000, FaultCause::NoPte),
            (0x1000_0000, FaultCause::NoExecute),
            (0x0800_0000, FaultCause::Protection),
            (0x0020_0000, FaultCause::Key),
            (0x0000_0000, FaultCause::Unknown),
        ];
        for (bits, cause) in cases {
            let i = Interrupt::InstructionStorage {
                ea: ea(),
                srr1: IsiFlags::from_srr1(bits),
            };
            assert_eq!(i.cause(), cause, "srr1 {bits:#x}");
            assert_eq!(i.access(), Some(Access::Fetch));
            assert_eq!(i.vector(), 0x400);
        }
    }

    #[test]
    fn default_remove_batch_removes_each_and_reports_rc() {
        use arch_ppc64::structures::hpte::{r, v};
        // One PTEG; ArrayHpt keeps the default `remove_batch`.
        let mut t = ArrayHpt::new(1);
        t.0[0] = Hpte {
            v: 0x100 | v::V,
            r: r::R | r::C,
        };
        t.0[1] = Hpte {
            v: 0x200 | v::V | v::BOLTED,
            r: r::R,
        };
        t.0[2] = Hpte {
            v: 0x300 | v::V,
            r: 0,
        };
        let p = |i| Ptex::try_from_raw(i).unwrap();
        let res = t.remove_batch(&[
            (p(0), RemoveCondition::Absolute),
            (p(1), RemoveCondition::AndCond(v::BOLTED)),
            (p(2), RemoveCondition::Avpn(0x300)),
            (p(3), RemoveCondition::Absolute),
        ]);
        assert_eq!(
            res,
            alloc::vec![
                Ok(RefChange {
                    referenced: true,
                    changed: true
                }),
                Err(HptError::NotFound),
                Ok(RefChange::default()),
                Err(HptError::NotFound),
            ]
        );
        assert!(!t.0[0].is_valid() && t.0[1].is_valid() && !t.0[2].is_valid());
        // Through `&mut T` as well.
        let mut r = &mut t;
        assert_eq!(
            <&mut ArrayHpt as HptBackend>::remove_batch(
                &mut r,
                &[(p(1), RemoveCondition::Absolute)]
            ),
            alloc::vec![Ok(RefChange {
                referenced: true,
                changed: false
            })]
        );
    }

    #[test]
    fn segment_interrupts() {
        let d = Interrupt::DataSegment { ea: ea() };
        let f = Interrupt::InstructionSegment { ea: ea() };
        assert_eq!(d.cause(), FaultCause::NoSegment);
        assert_eq!(f.cause(), FaultCause::NoSegment);
        assert_eq!(d.access(), None);
        assert_eq!(f.access(), Some(Access::Fetch));
        assert_eq!((d.vector(), f.vector()), (0x380, 0x480));
        assert_eq!(d.ea(), ea());
    }
}
