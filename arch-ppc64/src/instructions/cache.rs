//! Data-cache block instructions (Power ISA v3.1 Book II §4.3).

/// `dcbz` (Data Cache Block set to Zero): sets every byte of the
/// data-cache block containing `ea` to zero, without reading the block
/// from memory first. The block size is the processor's (its device-tree
/// node's `d-cache-block-size`, 128 bytes on POWER7 to POWER10); zeroing a
/// page with one `dcbz` per block costs a 32nd of a store loop on POWER.
///
/// # Safety
///
/// Every byte of the block containing `ea` must be memory the caller may
/// overwrite: the instruction zeroes the whole aligned block, whatever
/// part of it the caller meant. `ea` must translate to cacheable storage:
/// on caching-inhibited or write-through storage `dcbz` raises an
/// alignment interrupt.
#[cfg(target_arch = "powerpc64")]
#[inline]
pub unsafe fn dcbz(ea: *mut u8) {
    // SAFETY: the caller vouches for the block; dcbz changes nothing but
    // its bytes. RA = 0, so EA = (RB).
    unsafe { core::arch::asm!("dcbz 0, {0}", in(reg) ea, options(nostack, preserves_flags)) }
}
