//! An emulated Book III-S machine so the VMM's real fault path runs under
//! `cargo test`: an SLB, a hashed page table in the architected format
//! ([`NativeHpt`]), real memory with a frame allocator, and an MMU that
//! translates exactly as the ISA (and QEMU's `mmu-hash64.c`) does:
//!
//! 1. SLB lookup; a miss raises a data/instruction segment interrupt.
//! 2. A fetch from a no-execute segment raises ISI `NOEXEC_GUARD` (checked
//!    before the page table, as QEMU does).
//! 3. Hash, search the primary PTEG then the secondary (compare B, AVPN, H,
//!    V, and the page size against the segment's); none → DSI/ISI `NOPTE`.
//! 4. Key = `MSR[PR] ? Kp : Ks`, `PP` table; a fetch also needs N = G = 0.
//!    Denied → DSI `PROTFAULT` (| `ISSTORE`) or ISI `NOEXEC_GUARD` /
//!    `PROTFAULT`.
//! 5. R is set on every permitted access, C on a store, in the HPT.
//!
//! A small TLB caches translations with QEMU's invalidation rules (see
//! [`Machine::set_tlb_enabled`]): forgetting `slbie` before overwriting a
//! valid SLB entry leaves old translations usable, as it would under QEMU.
//!
//! # Processors
//!
//! A machine has one processor or several ([`Machine::with_cpus`]). Each
//! has its own SLB and TLB; the HPT and real memory are shared. As on
//! pseries: `slbmte`, `slbie` and `slbia` ([`SimSlb`]) act on the
//! processor whose handle issues them, while `H_REMOVE` and `H_PROTECT`
//! drop the translation from every processor's TLB before they return.
//! The state sits behind one lock taken for each access, hcall and SLB
//! instruction, so [`Machine`] handles (one per processor,
//! [`Machine::cpu`]) can be driven from separate host threads: each
//! operation is atomic, and the interleavings between operations are real.
//! An access of one page is translated and performed under the same lock,
//! so an `H_REMOVE` on another processor comes before or after it, never
//! between its translation and its load or store (as on hardware, where
//! the invalidation waits for accesses in flight).
//!
//! # The page table: pseries or native
//!
//! [`Machine::hpt`] is the pseries stand-in the host tests run on: the
//! table as a guest sees it through QEMU's PAPR hcalls, the hypervisor's
//! rules ([`papr`]) on top of the architected table:
//!
//! * `H_ENTER` ([`HptBackend::insert`]) refuses with
//!   [`HptError::Parameter`] a page size the default pseries machine does
//!   not offer (L = 1 with anything but the 64K encoding), a page in RAM
//!   whose WIMG is not exactly M, and a page outside RAM that is not I or
//!   I|M (G allowed, W not). It accepts an entry with V = 0, which then
//!   sits invalid in its slot. It stores doubleword 0 with the software
//!   bits 0x60 cleared and [`papr::HYPERVISOR_DIRTY`] (0x40) set; the
//!   bolted bit 0x10 survives.
//! * `H_REMOVE` returns the old entry, R and C included, and leaves
//!   [`papr::REMOVED`] in the slot: a later `H_READ` shows R = C = 0.
//!
//! So no host test can pass on an entry a pseries kernel could never
//! insert. [`Machine::native_hpt`] is the same table without those rules,
//! as [`NativeHpt`] gives it to a kernel that owns the table (powernv):
//! any WIMG, V required, a removal clears only V. Tests of architected
//! behaviour that PAPR refuses (a guarded RAM page) use it. The two
//! handles are views of one table; a test uses one of them.
//!
//! # Accesses
//!
//! [`Machine`] and the backend handles ([`SimHpt`], [`SimSlb`],
//! [`SimMemory`]) share one state, the way a kernel and its MMU share the
//! hardware: give the handles to the VMM, run accesses through the
//! machine. Accesses ([`Machine::load_u64`] etc.) call a [`FaultHandler`] on
//! each interrupt and retry, as the interrupt vectors would.
//!
//! An access that crosses a page boundary translates every page it
//! touches before it moves a byte, as QEMU does (it fills the TLB for the
//! second page before it stores into the first): a store whose second
//! page faults stores nothing, and a load leaves the buffer alone. As on
//! QEMU, the pages translated before the fault already have R (and C, for
//! a store) set.
//!
//! # Where the sim deliberately differs from QEMU
//!
//! * **Two matches.** Two valid SLB entries translating one EA, or two
//!   HPTEs matching one virtual page (in either PTEG): QEMU uses the first
//!   it finds (lowest SLB index; primary PTEG first, lowest slot); the sim
//!   panics, as for a machine check, because either is a VMM bug. The sim
//!   is stricter.
//! * **`slbie` with the wrong segment size.** QEMU finds the entry by the
//!   EA alone and invalidates it whatever B the instruction gives; the sim
//!   ([`SimSlb`]'s
//!   [`invalidate`](crate::platform::SlbBackend::invalidate)) invalidates
//!   only an entry of the segment size it is given, so a VMM passing the
//!   wrong size sees the old segment stay. The ISA leaves the mismatched
//!   case undefined.
//! * **`slbmte` checks** ([`SimSlb`]'s
//!   [`load`](crate::platform::SlbBackend::load)). Like QEMU (a Program
//!   interrupt there) the sim refuses with
//!   [`SlbError::InvalidEntry`](crate::platform::SlbError::InvalidEntry)
//!   reserved bits in the ESID word (RB), a reserved segment size and an
//!   `L || LP` the machine does not offer, whether the entry is valid or
//!   not. It also refuses a valid 1T entry whose ESID is not 1T-aligned,
//!   which QEMU stores and then never matches.
//!
//! Not modelled: real mode, AMR/IAMR (always 0, so storage keys never
//! deny), large-page mixes within a segment.

mod memory;
mod pager;
pub mod papr;
mod slb;
#[cfg(test)]
mod tests;
mod tlb;

use alloc::sync::Arc;

use arch_ppc64::addr::{EffectiveAddress, PhysAddr, PtegIndex, Ptex};
use arch_ppc64::registers::dsisr::DsisrFlags;
use arch_ppc64::registers::srr1::IsiFlags;
use arch_ppc64::structures::hpte::{self, Hpte, Pp, Wimg};
use arch_ppc64::structures::slb::{esid_word, vsid_word, SlbEntry};
use arch_ppc64::structures::{PageSize, SegmentSize};

use crate::hpt::VirtualPage;
use crate::native::{NativeHpt, NativeHptError};
use crate::platform::{
    Access, FaultHandler, FaultOutcome, HptBackend, HptError, Interrupt, Privilege,
    RemoveCondition, VmFault, VmFaultReason,
};

pub use memory::SimMemory;
pub use pager::{FlatPager, PagerStats};
pub use slb::SimSlb;

use memory::Memory;
use tlb::{Tlb, TlbEntry};

/// How many interrupts one access may take, per 4 KiB page it touches,
/// before the machine gives up with [`VmFaultReason::RetriesExhausted`]. A
/// well-behaved VMM needs at most two per page (segment, then page); the
/// margin allows an eviction storm.
pub const MAX_INTERRUPTS_PER_ACCESS: usize = 16;

/// Most processors a machine may have ([`Machine::with_cpus`]).
pub const MAX_CPUS: usize = 64;

/// Size of the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// Bytes of real memory (rounded down to 4 KiB frames).
    pub memory_bytes: usize,
    /// log2 of the HPT size in bytes (`ibm,pft-size`).
    pub hpt_shift: u32,
    /// Number of SLB entries (`ibm,slb-size`).
    pub slb_size: usize,
}

impl Default for SimConfig {
    /// 16 MiB of memory, a 2^18-byte HPT, 32 SLB entries.
    fn default() -> Self {
        SimConfig {
            memory_bytes: 16 << 20,
            hpt_shift: 18,
            slb_size: 32,
        }
    }
}

/// Counters of what the emulated MMU did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Successful translations.
    pub translations: u64,
    /// Of those, how many the TLB answered without a table walk.
    pub tlb_hits: u64,
    /// Data segment interrupts (0x380).
    pub data_segment: u64,
    /// Instruction segment interrupts (0x480).
    pub instruction_segment: u64,
    /// Data storage interrupts (0x300).
    pub data_storage: u64,
    /// Instruction storage interrupts (0x400).
    pub instruction_storage: u64,
}

/// What the MMU needs from a valid SLB entry, decoded once when `slbmte`
/// writes it (the hardware keeps the SLB in this decoded form too) rather
/// than on every table walk.
#[derive(Clone, Copy)]
struct SlbDecoded {
    /// EA bits that select the segment (0:35 for 256 MB, 0:23 for 1 TB).
    ea_mask: u64,
    /// The entry's ESID in those bits.
    ea_base: u64,
    ssize: SegmentSize,
    psize: PageSize,
    vsid: arch_ppc64::addr::Vsid,
}

impl SlbDecoded {
    /// `None` for an invalid entry or one whose sizes do not decode
    /// (`SimSlb::load` refuses those when valid). Matches exactly the EAs
    /// [`SlbEntry::matches`] matches.
    fn of(entry: SlbEntry) -> Option<SlbDecoded> {
        if !entry.is_valid() {
            return None;
        }
        let ssize = entry.segment_size()?;
        let ea_mask = !ssize.offset_mask();
        Some(SlbDecoded {
            ea_mask,
            ea_base: entry.esid_word & esid_word::ESID & ea_mask,
            ssize,
            psize: entry.page_size()?,
            vsid: entry.vsid()?,
        })
    }
}

/// One processor's translation state: its SLB and its TLB. The HPT and
/// memory are the machine's, shared by every processor.
struct Cpu {
    slb: alloc::vec::Vec<SlbEntry>,
    /// `slb`'s valid entries decoded (`None` where invalid), kept in step
    /// by [`Cpu::set_slb`].
    slb_decoded: alloc::vec::Vec<Option<SlbDecoded>>,
    /// One bit per SLB index whose entry is valid, so the MMU's SLB search
    /// visits only those (a process uses a few of 32 or more).
    slb_valid: alloc::vec::Vec<u64>,
    tlb: Tlb,
}

impl Cpu {
    fn new(slb_size: usize) -> Cpu {
        Cpu {
            slb: alloc::vec![SlbEntry::INVALID; slb_size],
            slb_decoded: alloc::vec![None; slb_size],
            slb_valid: alloc::vec![0; slb_size.div_ceil(64)],
            tlb: Tlb::new(),
        }
    }

    /// Writes SLB entry `index` and keeps the valid bits in step.
    fn set_slb(&mut self, index: usize, entry: SlbEntry) {
        self.slb[index] = entry;
        self.slb_decoded[index] = SlbDecoded::of(entry);
        let bit = 1u64 << (index % 64);
        if entry.is_valid() {
            self.slb_valid[index / 64] |= bit;
        } else {
            self.slb_valid[index / 64] &= !bit;
        }
    }
}

struct State {
    cpus: alloc::vec::Vec<Cpu>,
    hpt: NativeHpt<alloc::vec::Vec<u8>>,
    mem: Memory,
    stats: SimStats,
}

impl State {
    /// What PAPR's `H_REMOVE`/`H_PROTECT` do to cached translations: they
    /// are gone on every processor when the hcall returns.
    fn flush_all_tlbs(&mut self) {
        for c in &mut self.cpus {
            c.tlb.flush();
        }
    }
}

/// The machine's state, locked for each operation: an MMU access, an
/// hcall or an SLB instruction is atomic with respect to the others, as
/// they are on hardware at the granularity the VMM can observe.
type Shared = Arc<spin::Mutex<State>>;

/// The emulated machine, as seen from one of its processors (a cheap
/// handle; clones share the machine). [`Machine::new`] gives processor 0;
/// [`Machine::cpu`] the others of a machine built with
/// [`Machine::with_cpus`]. The handle is `Send`, so each processor can be
/// driven from its own thread.
#[derive(Clone)]
pub struct Machine {
    state: Shared,
    cpu: usize,
}

/// The machine's HPT as an [`HptBackend`] (a handle sharing the machine):
/// as a pseries guest sees it ([`Machine::hpt`]) or as the native table
/// ([`Machine::native_hpt`]); see the module documentation.
#[derive(Clone)]
pub struct SimHpt {
    state: Shared,
    papr: bool,
}

/// Why a machine could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimError {
    /// Bad HPT size.
    Hpt(NativeHptError),
    /// Memory smaller than one frame, SLB size 0 / above 4096, or a
    /// processor count of 0 / above [`MAX_CPUS`].
    BadConfig,
}

impl core::fmt::Debug for Machine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Machine")
            .field("cpu", &self.cpu)
            .field("cpus", &self.cpu_count())
            .finish_non_exhaustive()
    }
}

impl core::fmt::Debug for SimHpt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimHpt")
            .field("papr", &self.papr)
            .finish_non_exhaustive()
    }
}

impl Machine {
    /// A one-processor machine with empty SLB and HPT and all memory free
    /// and zeroed.
    pub fn new(config: SimConfig) -> Result<Machine, SimError> {
        Machine::with_cpus(config, 1)
    }

    /// A machine with `cpus` processors (1..=[`MAX_CPUS`]), each with its
    /// own SLB and TLB of the configured size, sharing the HPT and memory;
    /// the handle returned is processor 0's.
    pub fn with_cpus(config: SimConfig, cpus: usize) -> Result<Machine, SimError> {
        if config.slb_size == 0 || config.slb_size > 4096 || !(1..=MAX_CPUS).contains(&cpus) {
            return Err(SimError::BadConfig);
        }
        let hpt = NativeHpt::with_size_shift(config.hpt_shift).map_err(SimError::Hpt)?;
        let mem = Memory::new(config.memory_bytes).ok_or(SimError::BadConfig)?;
        Ok(Machine {
            state: Arc::new(spin::Mutex::new(State {
                cpus: (0..cpus).map(|_| Cpu::new(config.slb_size)).collect(),
                hpt,
                mem,
                stats: SimStats::default(),
            })),
            cpu: 0,
        })
    }

    /// The same machine seen from processor `index`, or `None` if it has
    /// no such processor.
    pub fn cpu(&self, index: usize) -> Option<Machine> {
        (index < self.cpu_count()).then(|| Machine {
            state: self.state.clone(),
            cpu: index,
        })
    }

    /// Which processor this handle drives.
    pub fn cpu_index(&self) -> usize {
        self.cpu
    }

    /// Number of processors.
    pub fn cpu_count(&self) -> usize {
        self.state.lock().cpus.len()
    }

    /// The HPT backend handle a pseries kernel would have: the table
    /// behind QEMU's PAPR hcalls, with their checks and stored bits (see
    /// the module documentation). Host tests of the VMM use this one.
    pub fn hpt(&self) -> SimHpt {
        SimHpt {
            state: self.state.clone(),
            papr: true,
        }
    }

    /// The HPT backend handle a kernel owning the table would have
    /// (powernv): [`NativeHpt`]'s architected operations, no hypervisor
    /// policy.
    pub fn native_hpt(&self) -> SimHpt {
        SimHpt {
            state: self.state.clone(),
            papr: false,
        }
    }

    /// The SLB backend handle of this handle's processor (`slbmte`,
    /// `slbie` and `slbia` act on the executing processor's SLB only).
    pub fn slb(&self) -> SimSlb {
        SimSlb::new(self.state.clone(), self.cpu)
    }

    /// The frame allocator / real memory handle.
    pub fn memory(&self) -> SimMemory {
        SimMemory::new(self.state.clone())
    }

    /// MMU counters so far.
    pub fn stats(&self) -> SimStats {
        self.state.lock().stats
    }

    /// Turns the TLBs of every processor on (the default) or off. Off,
    /// every access walks the SLB and HPT, so missing invalidations go
    /// unnoticed.
    pub fn set_tlb_enabled(&self, enabled: bool) {
        let mut st = self.state.lock();
        for c in &mut st.cpus {
            c.tlb.enabled = enabled;
        }
        st.flush_all_tlbs();
    }

    /// Drops every cached translation of this handle's processor (as
    /// `tlbia` would).
    pub fn flush_tlb(&self) {
        let cpu = self.cpu;
        self.state.lock().cpus[cpu].tlb.flush();
    }

    /// Number of valid HPTEs (full scan).
    pub fn valid_hptes(&self) -> usize {
        self.state.lock().hpt.valid_entries()
    }

    /// Translates `ea` for `access` in state `privilege` as the MMU does
    /// (see the module documentation), setting R/C on success, or returns
    /// the interrupt the processor would take, with QEMU's DSISR/SRR1 bits.
    ///
    /// # Panics
    ///
    /// Panics on an SLB multi-hit or two matching HPTEs — a machine check
    /// on hardware and always a VMM bug.
    pub fn translate(
        &self,
        ea: EffectiveAddress,
        access: Access,
        privilege: Privilege,
    ) -> Result<PhysAddr, Interrupt> {
        let mut guard = self.state.lock();
        Self::translate_locked(&mut guard, self.cpu, ea, access, privilege)
    }

    /// [`Machine::translate`] with the state already locked.
    fn translate_locked(
        st: &mut State,
        cpu: usize,
        ea: EffectiveAddress,
        access: Access,
        privilege: Privilege,
    ) -> Result<PhysAddr, Interrupt> {
        let result = translate_in(st, cpu, ea, access, privilege);
        match result {
            Ok(_) => st.stats.translations += 1,
            Err(Interrupt::DataSegment { .. }) => st.stats.data_segment += 1,
            Err(Interrupt::InstructionSegment { .. }) => st.stats.instruction_segment += 1,
            Err(Interrupt::DataStorage { .. }) => st.stats.data_storage += 1,
            Err(Interrupt::InstructionStorage { .. }) => st.stats.instruction_storage += 1,
        }
        result
    }

    /// Translates every 4 KiB piece of `[ea, ea + len)` (the smallest
    /// page size) before any byte moves, as one instruction does: an
    /// interrupt on any piece goes to `handler`, and translation starts
    /// again from the first piece, as the re-executed instruction would
    /// (the handler may have evicted an earlier piece's entry). Gives up
    /// after [`MAX_INTERRUPTS_PER_ACCESS`] interrupts per piece in all.
    fn translate_pieces(
        &self,
        ea: EffectiveAddress,
        len: usize,
        access: Access,
        privilege: Privilege,
        handler: &mut dyn FaultHandler,
    ) -> Result<alloc::vec::Vec<(PhysAddr, core::ops::Range<usize>)>, VmFault> {
        let mut pieces = alloc::vec::Vec::new();
        let mut done = 0usize;
        while done < len {
            let here = EffectiveAddress::new(ea.as_u64().wrapping_add(done as u64));
            let room = 4096 - (here.as_u64() & 0xfff) as usize;
            let n = room.min(len - done);
            pieces.push((here, done..done + n));
            done += n;
        }
        let budget = MAX_INTERRUPTS_PER_ACCESS * pieces.len();
        let mut interrupts = 0;
        'instruction: loop {
            let mut out = alloc::vec::Vec::with_capacity(pieces.len());
            for (here, range) in &pieces {
                match self.translate(*here, access, privilege) {
                    Ok(pa) => out.push((pa, range.clone())),
                    // The state is not borrowed here: the handler may use
                    // the backend handles freely.
                    Err(interrupt) => match handler.handle(interrupt, privilege) {
                        FaultOutcome::Fault(f) => return Err(f),
                        FaultOutcome::Resolved => {
                            interrupts += 1;
                            if interrupts >= budget {
                                return Err(VmFault {
                                    ea: *here,
                                    access: Some(access),
                                    reason: VmFaultReason::RetriesExhausted,
                                });
                            }
                            continue 'instruction;
                        }
                    },
                }
            }
            return Ok(out);
        }
    }

    /// [`Machine::translate_pieces`] for an access inside one 4 KiB
    /// piece (every access of up to 8 aligned bytes), without building
    /// the list of pieces.
    fn translate_one<R>(
        &self,
        ea: EffectiveAddress,
        access: Access,
        privilege: Privilege,
        handler: &mut dyn FaultHandler,
        then: impl FnOnce(&mut State, PhysAddr) -> R,
    ) -> Result<R, VmFault> {
        let mut interrupts = 0;
        let mut then = Some(then);
        loop {
            let interrupt = {
                let mut guard = self.state.lock();
                match Self::translate_locked(&mut guard, self.cpu, ea, access, privilege) {
                    // The access itself under the same lock, as one
                    // instruction's translation and access are one step.
                    Ok(pa) => {
                        let f = then.take().expect("runs once");
                        return Ok(f(&mut guard, pa));
                    }
                    Err(i) => i,
                }
            };
            // The state is not locked here: the handler may use the
            // backend handles freely.
            match handler.handle(interrupt, privilege) {
                FaultOutcome::Fault(f) => return Err(f),
                FaultOutcome::Resolved => {
                    interrupts += 1;
                    if interrupts >= MAX_INTERRUPTS_PER_ACCESS {
                        return Err(VmFault {
                            ea,
                            access: Some(access),
                            reason: VmFaultReason::RetriesExhausted,
                        });
                    }
                }
            }
        }
    }

    /// Whether `[ea, ea + len)` lies in one 4 KiB piece.
    fn one_piece(ea: EffectiveAddress, len: usize) -> bool {
        len > 0 && (ea.as_u64() & 0xfff) as usize + len <= 4096
    }

    /// Loads `buf.len()` bytes from `ea`, all or nothing: `buf` is
    /// written only once every page the range touches has translated.
    ///
    /// # Panics
    ///
    /// Panics if a translation points outside real memory (a machine check).
    pub fn load_bytes(
        &self,
        ea: EffectiveAddress,
        buf: &mut [u8],
        privilege: Privilege,
        handler: &mut dyn FaultHandler,
    ) -> Result<(), VmFault> {
        if Self::one_piece(ea, buf.len()) {
            return self.translate_one(ea, Access::Load, privilege, handler, |st, pa| {
                st.mem.read_real(pa, buf)
            });
        }
        let pieces = self.translate_pieces(ea, buf.len(), Access::Load, privilege, handler)?;
        let st = self.state.lock();
        for (pa, r) in pieces {
            st.mem.read_real(pa, &mut buf[r]);
        }
        Ok(())
    }

    /// Stores `data` at `ea`, all or nothing: no byte is stored until
    /// every page the range touches has translated (QEMU probes the second
    /// page of a crossing store first).
    ///
    /// # Panics
    ///
    /// Panics if a translation points outside real memory (a machine check).
    pub fn store_bytes(
        &self,
        ea: EffectiveAddress,
        data: &[u8],
        privilege: Privilege,
        handler: &mut dyn FaultHandler,
    ) -> Result<(), VmFault> {
        if Self::one_piece(ea, data.len()) {
            return self.translate_one(ea, Access::Store, privilege, handler, |st, pa| {
                st.mem.write_real(pa, data)
            });
        }
        let pieces = self.translate_pieces(ea, data.len(), Access::Store, privilege, handler)?;
        let mut st = self.state.lock();
        for (pa, r) in pieces {
            st.mem.write_real(pa, &data[r]);
        }
        Ok(())
    }

    /// Loads a big-endian doubleword.
    pub fn load_u64(
        &self,
        ea: EffectiveAddress,
        privilege: Privilege,
        handler: &mut dyn FaultHandler,
    ) -> Result<u64, VmFault> {
        let mut b = [0u8; 8];
        self.load_bytes(ea, &mut b, privilege, handler)?;
        Ok(u64::from_be_bytes(b))
    }

    /// Stores a big-endian doubleword.
    pub fn store_u64(
        &self,
        ea: EffectiveAddress,
        value: u64,
        privilege: Privilege,
        handler: &mut dyn FaultHandler,
    ) -> Result<(), VmFault> {
        self.store_bytes(ea, &value.to_be_bytes(), privilege, handler)
    }

    /// Loads a byte.
    pub fn load_u8(
        &self,
        ea: EffectiveAddress,
        privilege: Privilege,
        handler: &mut dyn FaultHandler,
    ) -> Result<u8, VmFault> {
        let mut b = [0u8; 1];
        self.load_bytes(ea, &mut b, privilege, handler)?;
        Ok(b[0])
    }

    /// Stores a byte.
    pub fn store_u8(
        &self,
        ea: EffectiveAddress,
        value: u8,
        privilege: Privilege,
        handler: &mut dyn FaultHandler,
    ) -> Result<(), VmFault> {
        self.store_bytes(ea, &[value], privilege, handler)
    }

    /// Fetches a big-endian instruction word (an execute access; must be
    /// 4-byte aligned, as instructions are).
    pub fn fetch_u32(
        &self,
        ea: EffectiveAddress,
        privilege: Privilege,
        handler: &mut dyn FaultHandler,
    ) -> Result<u32, VmFault> {
        let ea = EffectiveAddress::new(ea.as_u64() & !3);
        let mut b = [0u8; 4];
        self.translate_one(ea, Access::Fetch, privilege, handler, |st, pa| {
            st.mem.read_real(pa, &mut b)
        })?;
        Ok(u32::from_be_bytes(b))
    }
}

fn translate_in(
    st: &mut State,
    cpu: usize,
    ea: EffectiveAddress,
    access: Access,
    privilege: Privilege,
) -> Result<PhysAddr, Interrupt> {
    let dsi = |bits: DsisrFlags| {
        let store = if access == Access::Store {
            DsisrFlags::ISSTORE
        } else {
            DsisrFlags::empty()
        };
        Interrupt::DataStorage {
            ea,
            dsisr: bits | store,
        }
    };
    let isi = |bits: IsiFlags| Interrupt::InstructionStorage { ea, srr1: bits };

    let State {
        cpus, hpt, stats, ..
    } = st;
    let me = &mut cpus[cpu];
    // 0. TLB.
    if let Some(pa) = me.tlb.lookup(ea.as_u64(), access, privilege) {
        stats.tlb_hits += 1;
        return Ok(PhysAddr::new(pa));
    }

    // 1. SLB.
    let mut hit: Option<(usize, SlbDecoded)> = None;
    for (w, &bits) in me.slb_valid.iter().enumerate() {
        let mut bits = bits;
        while bits != 0 {
            let i = w * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            // An entry whose sizes do not decode matches nothing, as in
            // `SlbEntry::matches` (`SimSlb::load` refuses it anyway).
            let Some(d) = me.slb_decoded[i] else {
                continue;
            };
            if ea.as_u64() & d.ea_mask == d.ea_base {
                assert!(hit.is_none(), "SLB multi-hit for {ea:?} (machine check)");
                hit = Some((i, d));
            }
        }
    }
    let (slb_index, seg) = match hit {
        Some(h) => h,
        None if access == Access::Fetch => return Err(Interrupt::InstructionSegment { ea }),
        None => return Err(Interrupt::DataSegment { ea }),
    };
    let slbe = me.slb[slb_index];
    let psize = seg.psize;

    // 2. Segment no-execute.
    if access == Access::Fetch && slbe.vsid_word & vsid_word::N != 0 {
        return Err(isi(IsiFlags::NOEXEC_GUARD));
    }

    // 3. PTEG search: primary, then secondary, every slot of both (a
    // second match is a machine check here, see the module documentation).
    let Some(page) = VirtualPage::new(seg.vsid, ea, seg.ssize, psize) else {
        unreachable!("SLB VSID fits its segment size");
    };
    let mask = hpt.pteg_count() - 1;
    let hash = page.hash();
    let compare = page.avpn_word() | hpte::v::V;
    let mut found: Option<(Ptex, Hpte)> = None;
    for (group, h) in [(hash & mask, 0), (!hash & mask, hpte::v::H)] {
        let group = PtegIndex::new(group);
        let base = group.byte_offset() as usize;
        let Some(bytes) = hpt.as_bytes().get(base..base + 8 * Hpte::BYTES) else {
            return Err(dsi(DsisrFlags::NOPTE));
        };
        // The compare of doubleword 0 for all eight slots at once, on the
        // big-endian words as they sit in memory; only a slot that passes
        // it is read whole.
        let want = compare | h;
        let (want_be, compare_be) = (want.to_be(), hpte::v::COMPARE.to_be());
        let Ok(group_bytes) = <&[u8; 8 * Hpte::BYTES]>::try_from(bytes) else {
            unreachable!("the slice is one PTEG long");
        };
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&group_bytes[at..at + 8]);
            u64::from_ne_bytes(w)
        };
        let mut candidates = 0u32;
        for slot in 0..Ptex::SLOTS_PER_PTEG as usize {
            let v = word(slot * Hpte::BYTES);
            candidates |= u32::from((v ^ want_be) & compare_be == 0) << slot;
        }
        while candidates != 0 {
            let slot = candidates.trailing_zeros() as u8;
            candidates &= candidates - 1;
            let ptex = group.ptex(slot);
            // The compare above is `Hpte::matches(want)` on these words.
            let at = usize::from(slot) * Hpte::BYTES;
            let e = Hpte {
                v: u64::from_be(word(at)),
                r: u64::from_be(word(at + 8)),
            };
            if e.page_size() == Some(psize) {
                assert!(
                    found.is_none(),
                    "two HPTEs translate {ea:?}: {found:?} and {e:?} at {ptex:?}"
                );
                found = Some((ptex, e));
            }
        }
    }
    let Some((ptex, pte)) = found else {
        return Err(match access {
            Access::Fetch => isi(IsiFlags::NOPTE),
            _ => dsi(DsisrFlags::NOPTE),
        });
    };

    // 4. Protection.
    let key = slbe.key(privilege.is_problem());
    let allowed = Pp::access(pte.pp(), key);
    match access {
        Access::Fetch => {
            if pte.no_execute() || pte.wimg().contains(Wimg::G) {
                return Err(isi(IsiFlags::NOEXEC_GUARD));
            }
            if !allowed.execute {
                return Err(isi(IsiFlags::PROTFAULT));
            }
        }
        Access::Load if !allowed.read => return Err(dsi(DsisrFlags::PROTFAULT)),
        Access::Store if !allowed.write => return Err(dsi(DsisrFlags::PROTFAULT)),
        _ => {}
    }

    // 5. Reference and change.
    let store = access == Access::Store;
    if !pte.referenced() || (store && !pte.changed()) {
        hpt.record_reference(ptex, store)
            .expect("ptex came from this table");
    }
    let Some(base) = pte.real_address() else {
        unreachable!("page size decoded above");
    };
    let pa = base.as_u64() | ea.page_offset(psize);
    me.tlb.fill(TlbEntry {
        ea_page: ea.as_u64() & !0xfff,
        problem: privilege.is_problem(),
        pa_page: pa & !0xfff,
        read: allowed.read,
        write: allowed.write && (store || pte.changed()),
        execute: allowed.execute
            && !pte.no_execute()
            && !pte.wimg().contains(Wimg::G)
            && slbe.vsid_word & vsid_word::N == 0,
    });
    Ok(PhysAddr::new(pa))
}

/// The table is behind the machine's lock, so a second handle to it does
/// what `&mut` does, each call atomic as a hypervisor's is.
impl crate::platform::SharedHptBackend for SimHpt {
    fn insert_shared(
        &self,
        group: PtegIndex,
        slot: Option<u8>,
        hpte: Hpte,
    ) -> Result<Ptex, HptError> {
        self.clone().insert(group, slot, hpte)
    }

    fn remove_shared(&self, ptex: Ptex, cond: RemoveCondition) -> Result<Hpte, HptError> {
        self.clone().remove(ptex, cond)
    }
}

impl HptBackend for SimHpt {
    fn pteg_count(&self) -> u64 {
        self.state.lock().hpt.pteg_count()
    }

    /// Native: [`NativeHpt`]'s insert. PAPR: `H_ENTER`, refusing what
    /// QEMU refuses ([`papr::h_enter_entry`]) and storing what it stores;
    /// an entry with V = 0 goes into a free slot like a valid one.
    fn insert(&mut self, group: PtegIndex, slot: Option<u8>, hpte: Hpte) -> Result<Ptex, HptError> {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        if !self.papr {
            return st.hpt.insert(group, slot, hpte);
        }
        let stored = papr::h_enter_entry(hpte, st.mem.len())?;
        if stored.is_valid() {
            return st.hpt.insert(group, slot, stored);
        }
        if group.as_u64() >= st.hpt.pteg_count() || slot.is_some_and(|s| s >= Ptex::SLOTS_PER_PTEG)
        {
            return Err(HptError::Parameter);
        }
        let free = |p: &Ptex| st.hpt.read(*p).is_ok_and(|e| !e.is_valid());
        let target = match slot {
            Some(s) => group.ptex(s),
            None => (0..Ptex::SLOTS_PER_PTEG)
                .map(|s| group.ptex(s))
                .find(free)
                .ok_or(HptError::PtegFull)?,
        };
        st.hpt.write_invalid(target, stored)?;
        Ok(target)
    }

    /// Like PAPR `H_REMOVE` (on the PAPR handle the slot is left as
    /// [`papr::REMOVED`]); a successful removal flushes the TLB.
    fn remove(&mut self, ptex: Ptex, cond: RemoveCondition) -> Result<Hpte, HptError> {
        let mut st = self.state.lock();
        let old = st.hpt.remove(ptex, cond)?;
        if self.papr {
            st.hpt
                .write_invalid(ptex, papr::REMOVED)
                .expect("the slot was just invalidated");
        }
        st.flush_all_tlbs();
        Ok(old)
    }

    /// Like PAPR `H_PROTECT`; a successful change flushes the TLB.
    fn protect(&mut self, ptex: Ptex, avpn: u64, pp: Pp, no_exec: bool) -> Result<(), HptError> {
        let mut st = self.state.lock();
        st.hpt.protect(ptex, avpn, pp, no_exec)?;
        st.flush_all_tlbs();
        Ok(())
    }

    fn read(&self, ptex: Ptex) -> Result<Hpte, HptError> {
        self.state.lock().hpt.read(ptex)
    }
}
