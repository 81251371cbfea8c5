//! The emulated machine's SLB.

use arch_ppc64::addr::EffectiveAddress;
use arch_ppc64::structures::slb::{esid_word, SlbEntry};
use arch_ppc64::structures::{PageSize, SegmentSize};

use super::Shared;
use crate::platform::{SlbBackend, SlbError};

/// The machine's SLB as an [`SlbBackend`] (a handle sharing the machine).
///
/// `load` does not flush the TLB (QEMU's `slbmte` does not either), so
/// overwrite a valid entry only after [`SlbBackend::invalidate`].
/// `load` refuses what QEMU's `slbmte` refuses with a Program interrupt,
/// valid entry or not: an index beyond the SLB, reserved bits in the ESID
/// word (anything but ESID, V and the index), a reserved segment size, a
/// base page size this machine does not offer (it offers 4K and 64K,
/// QEMU's default cap; not 16M). It also refuses a valid 1T entry whose ESID is not 1T-aligned
/// (QEMU stores it and never matches it).
///
/// `invalidate` (`slbie`) invalidates only an entry of the segment size it
/// is given; QEMU ignores the size (see the module documentation of
/// [`crate::sim`]).
///
/// Each handle is one processor's SLB ([`super::Machine::slb`]); its
/// `slbie` and `slbia` flush that processor's TLB only.
#[derive(Clone)]
pub struct SimSlb {
    state: Shared,
    cpu: usize,
}

impl core::fmt::Debug for SimSlb {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimSlb")
            .field("cpu", &self.cpu)
            .finish_non_exhaustive()
    }
}

impl SimSlb {
    pub(super) fn new(state: Shared, cpu: usize) -> SimSlb {
        SimSlb { state, cpu }
    }

    /// The processor whose SLB this is.
    pub fn cpu_index(&self) -> usize {
        self.cpu
    }

    /// Number of valid entries.
    pub fn valid_entries(&self) -> usize {
        self.state.lock().cpus[self.cpu]
            .slb
            .iter()
            .filter(|e| e.is_valid())
            .count()
    }
}

impl SlbBackend for SimSlb {
    fn slb_size(&self) -> usize {
        self.state.lock().cpus[self.cpu].slb.len()
    }

    fn load(&mut self, index: usize, entry: SlbEntry) -> Result<(), SlbError> {
        let mut st = self.state.lock();
        let st = &mut st.cpus[self.cpu];
        if index >= st.slb.len() {
            return Err(SlbError::IndexOutOfRange(index));
        }
        let entry = entry
            .with_index(index)
            .map_err(|_| SlbError::IndexOutOfRange(index))?;
        let reserved = entry.esid_word & !(esid_word::ESID | esid_word::V | esid_word::INDEX);
        let refused = reserved != 0
            || match (entry.segment_size(), entry.page_size()) {
                (Some(_), Some(PageSize::M16)) => true,
                (Some(ssize), Some(_)) => entry.is_valid() && !entry.esid().is_aligned_for(ssize),
                _ => true,
            };
        if refused {
            return Err(SlbError::InvalidEntry(entry));
        }
        st.set_slb(index, entry);
        Ok(())
    }

    fn read(&self, index: usize) -> Result<SlbEntry, SlbError> {
        self.state.lock().cpus[self.cpu]
            .slb
            .get(index)
            .copied()
            .ok_or(SlbError::IndexOutOfRange(index))
    }

    /// `slbie`: clears V of the matching entry and flushes the TLB (QEMU
    /// flushes everything when `slbie` hits a valid entry).
    fn invalidate(&mut self, ea: EffectiveAddress, ssize: SegmentSize) {
        let mut st = self.state.lock();
        let st = &mut st.cpus[self.cpu];
        let mut hit = false;
        for i in 0..st.slb.len() {
            let mut e = st.slb[i];
            if e.matches(ea) && e.segment_size() == Some(ssize) {
                // slbie clears V; the rest of the entry is undefined.
                e.esid_word &= !esid_word::V;
                st.set_slb(i, e);
                hit = true;
            }
        }
        if hit {
            st.tlb.flush();
        }
    }

    /// Like `slbia`: invalidates the non-bolted entries and flushes the TLB.
    fn invalidate_non_bolted(&mut self, bolted: usize) {
        let mut st = self.state.lock();
        let st = &mut st.cpus[self.cpu];
        for i in bolted..st.slb.len() {
            st.set_slb(i, SlbEntry::INVALID);
        }
        st.tlb.flush();
    }
}
