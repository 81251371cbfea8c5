//! [`HwSlb`]: the processor's SLB through `slbmte`, `slbie`, `slbia`,
//! `slbmfee` and `slbmfev`, minus the entries the kernel keeps for its own
//! linear map.
//!
//! The VMM's index `i` is hardware index `i + reserved`: entries
//! `0..reserved` translate the linear map (the kernel image, stacks, heap
//! and frames) and the VMM can neither see nor replace them, so a bug in
//! on-demand SLB management cannot unmap the code handling the fault.
//!
//! `slbie` goes straight to the segment the VMM names, with no read-back
//! of the SLB: the VMM's manager only invalidates what it loaded, and
//! [`HwSlb::load`] refuses any entry that overlaps the linear map, so an
//! `slbie` the VMM asks for can never hit a linear-map entry (QEMU's
//! `slbie` ignores the segment size, so a 256 MB `slbie` inside the 1 TB
//! linear segment would drop it). The VMM loads class-0 entries only (no
//! C), which the `slbie` operand assumes; `load` refuses others.
//!
//! # The segment-miss fast path
//!
//! The vectors 0x380 and 0x480 (`crate::trap`) enter `slb_miss_data` /
//! `slb_miss_instruction` below in real mode, with r13 = the SLB manager's
//! per-processor area (`vmm::slb::fast`, whose address
//! [`crate::trap::set_slb_miss_area`] put in the PACA) and the interrupted
//! r13 in SPRG1. The path saves r7..r12 in the area's scratch words and CR
//! in r8, and:
//!
//! 1. takes the effective address (DAR or SRR0) and its key
//!    `ESID << 28 | V`, and the table of its half (bit 0 set: the kernel's,
//!    else the running process's) from the area;
//! 2. searches the table as `vmm::slbtable` documents (hash, linear probe);
//!    a free entry means the ESID is mapped nowhere it can see: registers
//!    back, and on to `slb_miss_*_full`, the trap path to
//!    [`vmm::vm::Vmm`]'s fault handler, which reports the fault as before.
//!    An entry whose key matches is read as "Readers on other processors"
//!    there says: RS, then the key again, with `lwsync` before each load;
//!    a key that changed in between (another processor rewrote the entry
//!    while holding the VMM lock) sends the miss to the full path too;
//! 3. takes the index under the round-robin cursor and advances the
//!    cursor (wrapping from the SLB size to the first non-bolted index);
//! 4. `slbie`s what that index holds, if the slot says it is valid, with
//!    the operand recorded there;
//! 5. records RB (key | hardware index), RS and the new `slbie` operand in
//!    the slot, `slbmte`s, counts the load in the area, restores the
//!    registers and `rfid`s to the instruction that missed (`rfid` is
//!    context synchronizing, and QEMU performs the `slbie`'s TLB flush
//!    there).
//!
//! The manager's [`vmm::slb::SlbManager::load`] takes its victim the same
//! way, and the manager reads the slots for detach and switch, so neither
//! side needs to read the SLB back. Nothing here can fault: real mode, the
//! area and the tables are kernel heap, reached at their 0xc000… addresses
//! with the top address bits ignored.
//!
//! Each processor has its own area (its `vmm::vm::CpuMmu`'s, which its
//! PACA names), so cursor, slots and scratch words are never shared; the
//! tables are, and another processor changes them only as
//! `vmm::slbtable` allows a lockless reader (key-last, old storage kept
//! until every processor running the space was pointed at the new one).

use alloc::vec::Vec;
use core::arch::global_asm;

use arch_ppc64::addr::{EffectiveAddress, Esid, Vsid};
use arch_ppc64::instructions::{barrier, slb};
use arch_ppc64::structures::slb::{esid_word, vsid_word, SlbEntry, SlbFlags};
use arch_ppc64::structures::{PageSize, SegmentSize};
use vmm::platform::{SlbBackend, SlbError};
use vmm::slb::fast;

// Shifts the assembly uses for two of the layout's sizes.
const _: () = assert!(fast::TABLE_BYTES == 1 << 5 && fast::SLOT_BYTES == 1 << 5);
const _: () = assert!(core::mem::size_of::<vmm::slbtable::SlbWords>() == 16);
// ESID << 28 | V, the key: V is bit 0x0800 of the upper halfword of the
// low word (`oris`, `andis.`).
const _: () = assert!(esid_word::V == 0x0800 << 16 && esid_word::ESID_SHIFT == 28);
const _: () = assert!(fast::SCRATCH_WORDS >= 6);

global_asm!(
    r#"
    .section .text.vectors.slb, "ax"
    .p2align 2

    .macro SLB_MISS name, readea, loads, full
    .globl \name
\name:
    std     %r12, {scratch} + 0(%r13)
    std     %r11, {scratch} + 8(%r13)
    std     %r10, {scratch} + 16(%r13)
    std     %r9, {scratch} + 24(%r13)
    std     %r8, {scratch} + 32(%r13)
    std     %r7, {scratch} + 40(%r13)
    mfcr    %r8
    \readea %r12
    # The table of the EA's half: bit 0 selects the kernel's.
    srdi    %r11, %r12, 63
    sldi    %r11, %r11, 5
    add     %r11, %r11, %r13
    rldicr  %r12, %r12, 0, 35
    oris    %r12, %r12, 0x0800
    # r12 = key; first entry ((key * K) >> shift) * 16, then linear probe.
    ld      %r10, {hash_k}(%r13)
    mulld   %r10, %r12, %r10
    ld      %r9, {tables} + {t_shift}(%r11)
    srd     %r10, %r10, %r9
    sldi    %r10, %r10, 4
    ld      %r9, {tables} + {t_mask}(%r11)
    ld      %r11, {tables} + {t_base}(%r11)
1:  ldx     %r7, %r11, %r10
    cmpd    %r7, %r12
    beq     2f
    cmpdi   %r7, 0
    beq     9f
    addi    %r10, %r10, 16
    and     %r10, %r10, %r9
    b       1b
    # Found: read RS, then the key again, each after the load before it
    # (lwsync); another processor may be rewriting the entry (key-last,
    # vmm::slbtable), and a key that changed means RS may be another
    # entry's: take the full path, which decides under the lock.
2:  add     %r11, %r11, %r10
    lwsync
    ld      %r7, 8(%r11)
    lwsync
    ld      %r10, 0(%r11)
    cmpd    %r10, %r12
    bne     9f
    # r7 = RS. The victim: the index under the cursor; advance it.
    ld      %r10, {cursor}(%r13)
    addi    %r9, %r10, 1
    ld      %r11, {end}(%r13)
    cmpld   %r9, %r11
    blt     3f
    ld      %r9, {first}(%r13)
3:  std     %r9, {cursor}(%r13)
    ld      %r11, {hw_base}(%r13)
    add     %r11, %r11, %r10
    or      %r11, %r11, %r12
    # r11 = RB (key | hardware index); r10 = the slot.
    sldi    %r10, %r10, 5
    add     %r10, %r10, %r13
    ld      %r9, {slots} + {s_rb}(%r10)
    andis.  %r9, %r9, 0x0800
    beq     4f
    ld      %r9, {slots} + {s_slbie}(%r10)
    slbie   %r9
4:  std     %r11, {slots} + {s_rb}(%r10)
    std     %r7, {slots} + {s_rs}(%r10)
    rldicr  %r9, %r12, 0, 35
    std     %r9, {slots} + {s_slbie}(%r10)
    slbmte  %r7, %r11
    ld      %r9, \loads(%r13)
    addi    %r9, %r9, 1
    std     %r9, \loads(%r13)
    mtcr    %r8
    ld      %r7, {scratch} + 40(%r13)
    ld      %r8, {scratch} + 32(%r13)
    ld      %r9, {scratch} + 24(%r13)
    ld      %r10, {scratch} + 16(%r13)
    ld      %r11, {scratch} + 8(%r13)
    ld      %r12, {scratch} + 0(%r13)
    mfsprg1 %r13
    rfid
    # In no table: the full path, with every register as interrupted but
    # r13 (still in SPRG1).
9:  mtcr    %r8
    ld      %r7, {scratch} + 40(%r13)
    ld      %r8, {scratch} + 32(%r13)
    ld      %r9, {scratch} + 24(%r13)
    ld      %r10, {scratch} + 16(%r13)
    ld      %r11, {scratch} + 8(%r13)
    ld      %r12, {scratch} + 0(%r13)
    b       \full
    .endm

    SLB_MISS slb_miss_data, mfdar, {data_loads}, slb_miss_data_full
    SLB_MISS slb_miss_instruction, mfsrr0, {instruction_loads}, slb_miss_instruction_full
    .purgem SLB_MISS
"#,
    scratch = const fast::SCRATCH,
    hash_k = const fast::HASH_K,
    tables = const fast::TABLES,
    t_base = const fast::TABLE_BASE,
    t_shift = const fast::TABLE_SHIFT,
    t_mask = const fast::TABLE_MASK,
    cursor = const fast::CURSOR,
    first = const fast::FIRST,
    end = const fast::END,
    hw_base = const fast::HW_BASE,
    slots = const fast::SLOTS,
    s_rb = const fast::SLOT_RB,
    s_rs = const fast::SLOT_RS,
    s_slbie = const fast::SLOT_SLBIE,
    data_loads = const fast::DATA_LOADS,
    instruction_loads = const fast::INSTRUCTION_LOADS,
);

/// The hardware SLB above the `reserved` linear-map entries.
#[derive(Debug)]
pub struct HwSlb {
    hw_size: usize,
    reserved: usize,
    /// The linear map's entries, read once: what the VMM must not overlap.
    linear: Vec<SlbEntry>,
}

impl HwSlb {
    /// An SLB of `hw_size` entries (`ibm,slb-size`) whose first
    /// `reserved` belong to the kernel's linear map, already loaded.
    /// `None` if nothing is left for the VMM.
    pub fn new(hw_size: usize, reserved: usize) -> Option<HwSlb> {
        if hw_size <= reserved || hw_size > 4096 {
            return None;
        }
        let linear = (0..reserved)
            .map(Self::read_hw)
            .filter(|e| e.is_valid())
            .collect();
        Some(HwSlb {
            hw_size,
            reserved,
            linear,
        })
    }

    /// Whether the segment of `e` and a linear-map segment share an
    /// address (either may be the larger).
    fn overlaps_linear_map(&self, e: SlbEntry) -> bool {
        let base = e.esid().base();
        self.linear
            .iter()
            .any(|l| l.matches(base) || e.matches(l.esid().base()))
    }

    /// Number of hardware entries kept for the linear map.
    pub fn reserved(&self) -> usize {
        self.reserved
    }

    fn hw_index(&self, index: usize) -> Result<usize, SlbError> {
        if index < self.slb_size() {
            Ok(index + self.reserved)
        } else {
            Err(SlbError::IndexOutOfRange(index))
        }
    }

    /// Reads hardware entry `hw` (index field left 0).
    fn read_hw(hw: usize) -> SlbEntry {
        SlbEntry {
            esid_word: slb::slbmfee(hw as u64),
            vsid_word: slb::slbmfev(hw as u64),
        }
    }

    /// `slbie` of the valid hardware entry `e`.
    fn slbie(e: SlbEntry) {
        // SAFETY: `e` is a VMM entry (above the reserved linear-map
        // entries), so no kernel code, stack or data loses its segment.
        unsafe { slb::slbie(slb::slbie_operand(e)) };
    }
}

impl SlbBackend for HwSlb {
    fn slb_size(&self) -> usize {
        self.hw_size - self.reserved
    }

    fn hardware_index_base(&self) -> usize {
        self.reserved
    }

    fn load(&mut self, index: usize, entry: SlbEntry) -> Result<(), SlbError> {
        let hw = self.hw_index(index)?;
        // 16M base pages are the linear map's alone (and exist only when
        // the machine offers them; slbmte of an unoffered size is a
        // Program interrupt): the VMM's segments are 4K or 64K.
        if entry.is_valid()
            && (entry.segment_size().is_none()
                || !matches!(entry.page_size(), Some(PageSize::K4 | PageSize::K64))
                || entry.vsid_word & vsid_word::C != 0
                || self.overlaps_linear_map(entry))
        {
            return Err(SlbError::InvalidEntry(entry));
        }
        // An overwrite without slbie leaves the old segment's translations
        // in QEMU's TLB: invalidate whatever the slot holds first.
        let old = Self::read_hw(hw);
        if old.is_valid() {
            Self::slbie(old);
        }
        let rb = (entry.esid_word & !esid_word::INDEX) | hw as u64;
        // SAFETY: the slot is a VMM slot (never a linear-map one), the
        // caller removed other entries for this ESID (trait contract), and
        // the old contents were invalidated above.
        unsafe { slb::slbmte(entry.vsid_word, rb) };
        barrier::isync();
        Ok(())
    }

    fn read(&self, index: usize) -> Result<SlbEntry, SlbError> {
        let hw = self.hw_index(index)?;
        let e = Self::read_hw(hw);
        // The VMM sees its own index in the entry, as it wrote it.
        Ok(SlbEntry {
            esid_word: e.esid_word | if e.is_valid() { index as u64 } else { 0 },
            vsid_word: e.vsid_word,
        })
    }

    fn invalidate(&mut self, ea: EffectiveAddress, ssize: SegmentSize) {
        // The operand names the segment (ESID, B; class 0): any valid VSID
        // builds it. An address of the linear map is never a VMM entry
        // (`load` refuses those), so it is left alone. One `matches` per
        // linear entry, not `overlaps_linear_map`'s two: this runs on
        // every SLB-miss eviction, and the VMM's 256 MB segments cannot
        // contain a linear-map segment.
        let Ok(e) = SlbEntry::new(
            Esid::new((ea.as_u64() & !ssize.offset_mask()) >> 28),
            Vsid::new(0),
            ssize,
            PageSize::K4,
            SlbFlags::empty(),
        ) else {
            return;
        };
        if self.linear.iter().any(|l| l.matches(ea)) {
            return;
        }
        Self::slbie(e);
        barrier::isync();
    }

    fn invalidate_non_bolted(&mut self, bolted: usize) {
        if self.reserved == 1 && bolted == 0 {
            // slbia never clears entry 0 (QEMU helper_SLBIA): exactly the
            // linear map survives.
            // SAFETY: the kernel runs on entry 0 alone.
            unsafe { slb::slbia() };
        } else {
            for hw in self.reserved + bolted..self.hw_size {
                let e = Self::read_hw(hw);
                if e.is_valid() {
                    Self::slbie(e);
                }
            }
        }
        barrier::isync();
    }
}

/// Invalidates this processor's hardware SLB entries `first..hw_size`
/// (the linear map's entries are `0..first`, `first` at least 1), then
/// `isync`: for a processor whose SLB no [`HwSlb`] manages (an SLB
/// shootdown on a secondary, `crate::smp`). [`HwSlb::invalidate_non_bolted`]
/// does the same inline, for the VMM's address-space switch.
pub fn invalidate_from(first: usize, hw_size: usize) {
    assert!(first >= 1, "entry 0 is the linear map's");
    if first == 1 {
        // slbia never clears entry 0 (QEMU helper_SLBIA): exactly the
        // linear map survives.
        // SAFETY: the caller runs on entry 0 alone.
        unsafe { slb::slbia() };
    } else {
        for hw in first..hw_size {
            let e = HwSlb::read_hw(hw);
            if e.is_valid() {
                HwSlb::slbie(e);
            }
        }
    }
    barrier::isync();
}
