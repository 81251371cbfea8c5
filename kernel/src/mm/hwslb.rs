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

use alloc::vec::Vec;

use arch_ppc64::addr::{EffectiveAddress, Esid, Vsid};
use arch_ppc64::instructions::{barrier, slb};
use arch_ppc64::structures::slb::{esid_word, vsid_word, SlbEntry, SlbFlags};
use arch_ppc64::structures::{PageSize, SegmentSize};
use vmm::platform::{SlbBackend, SlbError};

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
