//! Storage barriers and context synchronization (Power ISA v3.1 Book II
//! §4.6 and Book III §5.9.2).
//!
//! All of these are safe: they only order or wait, they never change what
//! a memory access does. None of them is `nomem`, because keeping the
//! compiler from moving memory accesses across them is their purpose.

/// `sync` (heavyweight sync, L = 0): all storage accesses before it are
/// performed before any after it, for every kind of storage.
#[cfg(target_arch = "powerpc64")]
#[inline]
pub fn sync() {
    // SAFETY: sync only orders storage accesses; it has no operands and
    // changes no architected state.
    unsafe { core::arch::asm!("sync", options(nostack, preserves_flags)) }
}

/// `lwsync` (lightweight sync): orders load-load, load-store and
/// store-store for ordinary cacheable storage, not store-load. Enough for
/// acquire/release locking.
#[cfg(target_arch = "powerpc64")]
#[inline]
pub fn lwsync() {
    // SAFETY: lwsync only orders storage accesses.
    unsafe { core::arch::asm!("lwsync", options(nostack, preserves_flags)) }
}

/// `ptesync`: like `sync`, and in addition orders stores to page table
/// entries before the translations that use them (required between
/// updating an in-memory HPTE and `tlbie`/its first use).
#[cfg(target_arch = "powerpc64")]
#[inline]
pub fn ptesync() {
    // SAFETY: ptesync only orders storage and page-table accesses.
    unsafe { core::arch::asm!("ptesync", options(nostack, preserves_flags)) }
}

/// `eieio` (Enforce In-order Execution of I/O): orders stores to
/// caching-inhibited guarded storage (MMIO) with each other.
#[cfg(target_arch = "powerpc64")]
#[inline]
pub fn eieio() {
    // SAFETY: eieio only orders storage accesses.
    unsafe { core::arch::asm!("eieio", options(nostack, preserves_flags)) }
}

/// `isync`: context synchronization. Waits for all earlier instructions to
/// complete and discards prefetched ones, so that the effect of `mtmsrd`,
/// `slbmte`, `mtspr` and similar is seen by the following instructions.
#[cfg(target_arch = "powerpc64")]
#[inline]
pub fn isync() {
    // SAFETY: isync only synchronizes the instruction stream.
    unsafe { core::arch::asm!("isync", options(nostack, preserves_flags)) }
}
