//! A translation lookaside buffer for the emulated MMU, with QEMU's
//! invalidation behaviour, so tests see the stale translations a real
//! processor (or QEMU) would keep when software forgets to invalidate:
//!
//! * PAPR `H_REMOVE`/`H_PROTECT` flush the whole TLB (QEMU flushes all of
//!   its TCG TLB in these hcalls); `H_ENTER` does not (the slot was
//!   invalid).
//! * `slbie` and `slbia` flush; `slbmte` over a valid entry does **not**
//!   (QEMU `helper_store_slb` leaves the TLB alone), so replacing a
//!   segment's VSID without `slbie` keeps the old translations usable.
//!
//! Entries are per 4 KiB effective page and privilege. A store is only
//! allowed from the TLB once C is known to be set in the HPTE, so the
//! first store to a clean page still walks the table and records C (QEMU
//! maps clean pages read-only in its TLB for the same reason).

use alloc::vec;
use alloc::vec::Vec;

use crate::platform::{Access, Privilege};

/// Number of TLB entries (direct-mapped by effective page number).
pub(super) const TLB_ENTRIES: usize = 64;

#[derive(Clone, Copy, Debug)]
pub(super) struct TlbEntry {
    /// Effective address of the 4 KiB page.
    pub ea_page: u64,
    /// Privilege the permissions were computed for.
    pub problem: bool,
    /// Real address of the 4 KiB piece.
    pub pa_page: u64,
    /// Loads allowed.
    pub read: bool,
    /// Stores allowed and C already set.
    pub write: bool,
    /// Fetches allowed (PP, N, G and segment N all passed).
    pub execute: bool,
}

pub(super) struct Tlb {
    entries: Vec<Option<TlbEntry>>,
    pub enabled: bool,
}

impl Tlb {
    pub(super) fn new() -> Tlb {
        Tlb {
            entries: vec![None; TLB_ENTRIES],
            enabled: true,
        }
    }

    fn index(ea_page: u64) -> usize {
        ((ea_page >> 12) as usize) % TLB_ENTRIES
    }

    /// The real address of `ea` if a cached translation allows `access`.
    pub(super) fn lookup(&self, ea: u64, access: Access, privilege: Privilege) -> Option<u64> {
        if !self.enabled {
            return None;
        }
        let page = ea & !0xfff;
        let e = self.entries[Self::index(page)]?;
        let allowed = match access {
            Access::Load => e.read,
            Access::Store => e.write,
            Access::Fetch => e.execute,
        };
        (e.ea_page == page && e.problem == privilege.is_problem() && allowed)
            .then_some(e.pa_page | (ea & 0xfff))
    }

    pub(super) fn fill(&mut self, entry: TlbEntry) {
        if self.enabled {
            self.entries[Self::index(entry.ea_page)] = Some(entry);
        }
    }

    pub(super) fn flush(&mut self) {
        self.entries.fill(None);
    }
}
