//! [`HwSlb`]: the processor's SLB through `slbmte`, `slbie`, `slbia`,
//! `slbmfee` and `slbmfev`, minus the entries the kernel keeps for its own
//! linear map.
//!
//! The VMM's index `i` is hardware index `i + reserved`: entries
//! `0..reserved` translate the linear map (the kernel image, stacks, heap
//! and frames) and the VMM can neither see nor replace them, so a bug in
//! on-demand SLB management cannot unmap the code handling the fault.

use arch_ppc64::addr::EffectiveAddress;
use arch_ppc64::instructions::{barrier, slb};
use arch_ppc64::structures::slb::{esid_word, SlbEntry};
use arch_ppc64::structures::SegmentSize;
use vmm::platform::{SlbBackend, SlbError};

/// The hardware SLB above the `reserved` linear-map entries.
#[derive(Debug)]
pub struct HwSlb {
    hw_size: usize,
    reserved: usize,
}

impl HwSlb {
    /// An SLB of `hw_size` entries (`ibm,slb-size`) whose first
    /// `reserved` belong to the kernel's linear map. `None` if nothing is
    /// left for the VMM.
    pub fn new(hw_size: usize, reserved: usize) -> Option<HwSlb> {
        (hw_size > reserved && hw_size <= 4096).then_some(HwSlb { hw_size, reserved })
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
        if entry.is_valid() && (entry.segment_size().is_none() || entry.page_size().is_none()) {
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
        // Find the VMM entry translating `ea` (never a linear-map one).
        for hw in self.reserved..self.hw_size {
            let e = Self::read_hw(hw);
            if e.is_valid() && e.segment_size() == Some(ssize) && e.matches(ea) {
                Self::slbie(e);
            }
        }
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
