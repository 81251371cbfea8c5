//! The pseries hypervisor's side of the page-table hcalls: what QEMU's
//! `H_ENTER` refuses and what it and `H_REMOVE` leave in the table, on top
//! of the architected table ([`crate::native::NativeHpt`]) that
//! [`super::SimHpt`] keeps. Learnt from QEMU's `hw/ppc/spapr_softmmu.c`
//! (`h_enter`, `remove_hpte`) and the page sizes the default pseries
//! machine offers (`hw/ppc/spapr_caps.c`, `cap-hpt-max-page-size` = 64K).

use arch_ppc64::structures::hpte::{Hpte, Wimg};
use arch_ppc64::structures::PageSize;

use crate::platform::HptError;

/// Bit of HPTE doubleword 0 that QEMU's hypervisor sets in every slot it
/// writes (its `HPTE64_V_HPTE_DIRTY`, a migration mark): it shows up in
/// `H_READ` and `H_REMOVE` results, so a guest must ignore it.
pub const HYPERVISOR_DIRTY: u64 = 0x40;

/// Software bits of doubleword 0 that `H_ENTER` clears before storing the
/// entry (then it sets [`HYPERVISOR_DIRTY`]). The guest's other software
/// bits (bolted 0x10, 0x08) are stored as given.
pub const H_ENTER_CLEARS: u64 = 0x60;

/// What a slot holds after a successful `H_REMOVE`: the hypervisor
/// rewrites the whole entry, so `H_READ` shows V = R = C = 0.
pub const REMOVED: Hpte = Hpte {
    v: HYPERVISOR_DIRTY,
    r: 0,
};

/// `H_ENTER`'s checks on the entry, in QEMU's order, and the entry it
/// stores when they pass. `ram_bytes` is the size of real memory, which
/// starts at 0.
///
/// * The page size must be one the machine offers: L = 0 (4K), or L = 1
///   with the 64K encoding ([`Hpte::page_size`]). 16M/16G and 64K-in-4K
///   encodings are filtered out by the default pseries machine, which
///   this one models (a 16M page needs `cap-hpt-max-page-size=16M`).
/// * A page in RAM must be WIMG = M exactly (no I, no G, no W, not 0).
/// * A page outside RAM (I/O) must be I or I|M, G free, no W.
///
/// V is not checked: an entry with V = 0 is stored like any other and
/// simply stays invalid.
///
/// Errors: [`HptError::Parameter`] for a refused entry.
pub fn h_enter_entry(hpte: Hpte, ram_bytes: u64) -> Result<Hpte, HptError> {
    if !matches!(hpte.page_size(), Some(PageSize::K4 | PageSize::K64)) {
        return Err(HptError::Parameter);
    }
    let base = hpte.real_address().ok_or(HptError::Parameter)?;
    let wimg = hpte.wimg();
    let allowed = if base.as_u64() < ram_bytes {
        wimg == Wimg::M
    } else {
        let cache = wimg - Wimg::G;
        cache == Wimg::I || cache == Wimg::I | Wimg::M
    };
    if !allowed {
        return Err(HptError::Parameter);
    }
    Ok(Hpte {
        v: (hpte.v & !H_ENTER_CLEARS) | HYPERVISOR_DIRTY,
        r: hpte.r,
    })
}
