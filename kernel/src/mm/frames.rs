//! [`KernelFrames`]: the VMM's frames from the kernel frame allocator
//! ([`crate::frame`]), zeroed and copied through the linear map.

use arch_ppc64::addr::PhysAddr;
use core::sync::atomic::{AtomicU64, Ordering};

use vmm::platform::{FrameAllocator, FrameError, PhysMemory, SharedFrameAllocator, FRAME_SIZE};

use crate::bootinfo::real_to_virt;
use crate::frame::{self, Frame, SharerCounts};

/// The global frame allocator seen through the VMM's traits.
#[derive(Debug)]
pub struct KernelFrames {
    /// Frames handed to the VMM (atomic: the shared fault path allocates
    /// on several processors at once).
    allocated: AtomicU64,
    /// Bytes one `dcbz` zeroes, if frames are zeroed that way.
    zero_block: Option<usize>,
    /// The allocator's sharer counts, updated without its lock.
    counts: SharerCounts<'static>,
}

impl Default for KernelFrames {
    /// Frames zeroed with stores.
    fn default() -> Self {
        KernelFrames::new(None)
    }
}

/// The `dcbz` block size to zero frames with, from the device tree's
/// `d-cache-block-size`: a power of two from 32 bytes up to a frame, so
/// that whole blocks tile a frame exactly. Anything else (or nothing)
/// means zeroing with stores.
pub fn zero_block(d_cache_block_size: Option<u32>) -> Option<usize> {
    let b = usize::try_from(d_cache_block_size?).ok()?;
    (b.is_power_of_two() && (32..=FRAME_SIZE as usize).contains(&b)).then_some(b)
}

fn allocated_frame(pa: PhysAddr) -> Result<Frame, FrameError> {
    let f = Frame::from_start_address(pa.as_u64()).map_err(|_| FrameError::Misaligned(pa))?;
    if frame::with(|fa| fa.is_allocated(f)) {
        Ok(f)
    } else {
        Err(FrameError::NotAllocated(pa))
    }
}

/// Checks that `[pa, pa + len)` is allocated frames.
fn check_range(pa: PhysAddr, len: usize) -> Result<(), FrameError> {
    let start = pa.as_u64() & !(FRAME_SIZE - 1);
    let end = pa
        .as_u64()
        .checked_add(len as u64)
        .ok_or(FrameError::OutOfRange(pa))?;
    let mut a = start;
    while a < end {
        allocated_frame(PhysAddr::new(a))?;
        a += FRAME_SIZE;
    }
    Ok(())
}

impl KernelFrames {
    /// Frames zeroed with one `dcbz` per `d_cache_block_size` bytes (the
    /// CPU node's `d-cache-block-size`), or with stores if that size is
    /// absent or unusable ([`zero_block`]).
    pub fn new(d_cache_block_size: Option<u32>) -> Self {
        KernelFrames {
            allocated: AtomicU64::new(0),
            zero_block: zero_block(d_cache_block_size),
            counts: frame::with(|fa| fa.sharer_counts()),
        }
    }

    /// Frames the VMM currently holds.
    pub fn allocated(&self) -> u64 {
        self.allocated.load(Ordering::Relaxed)
    }

    /// The `dcbz` block size frames are zeroed with, if any.
    pub fn zeroes_with_dcbz(&self) -> Option<usize> {
        self.zero_block
    }
}

impl KernelFrames {
    /// `pa` as an allocated frame: its count says so without the
    /// allocator's lock; a count of zero (a free frame) is refused.
    fn held(&self, pa: PhysAddr) -> Result<Frame, FrameError> {
        let f = Frame::from_start_address(pa.as_u64()).map_err(|_| FrameError::Misaligned(pa))?;
        if self.counts.sharers(f) > 0 {
            Ok(f)
        } else {
            Err(FrameError::NotAllocated(pa))
        }
    }

    /// Zeroes the frame at `pa`.
    ///
    /// # Safety
    ///
    /// The frame must be allocated to the caller and used by nothing else.
    unsafe fn zero_unchecked(&self, pa: PhysAddr) {
        let va = real_to_virt(pa.as_u64()) as *mut u8;
        match self.zero_block {
            // SAFETY: the frame is the caller's, aligned, and mapped
            // cacheable (M) by the linear map; `block` divides its size.
            Some(block) => unsafe { dcbz_frame(va, block) },
            // SAFETY: as above.
            None => unsafe { core::ptr::write_bytes(va, 0, FRAME_SIZE as usize) },
        }
    }
}

/// Zeroes the 4 KiB frame at `va` with one `dcbz` per `block` bytes, four
/// blocks a loop turn (about 50 instructions for 128-byte blocks, a
/// twentieth of a store loop).
///
/// # Safety
///
/// `va` is the frame-aligned linear-map address of a frame the caller
/// owns; `block` is a power of two from 32 bytes to a frame.
unsafe fn dcbz_frame(va: *mut u8, block: usize) {
    let frame = FRAME_SIZE as usize;
    if 4 * block > frame {
        let mut offset = 0;
        while offset < frame {
            // SAFETY: a whole block inside the caller's frame.
            unsafe { arch_ppc64::instructions::cache::dcbz(va.add(offset)) };
            offset += block;
        }
        return;
    }
    // SAFETY: `turns` turns of four blocks cover exactly the frame, which
    // the caller owns; dcbz writes nothing else. The offsets are in RA
    // operands, where r0 would read as zero, hence `reg_nonzero`.
    unsafe {
        core::arch::asm!(
            "mtctr {turns}",
            "2:",
            "dcbz 0, {p}",
            "dcbz {b1}, {p}",
            "dcbz {b2}, {p}",
            "dcbz {b3}, {p}",
            "add {p}, {p}, {step}",
            "bdnz 2b",
            turns = in(reg) frame / (4 * block),
            p = inout(reg) va => _,
            b1 = in(reg_nonzero) block,
            b2 = in(reg_nonzero) 2 * block,
            b3 = in(reg_nonzero) 3 * block,
            step = in(reg) 4 * block,
            out("ctr") _,
            options(nostack, preserves_flags),
        )
    }
}

/// Copies a 4 KiB frame (a copy-on-write break) with doubleword loads
/// and stores, eight of each a loop turn: about 1,200 instructions where
/// a byte-generic `memcpy` takes three times that. Volatile accesses keep
/// the compiler from turning the loop back into a `memcpy` call.
///
/// # Safety
///
/// `dst` and `src` are the 8-byte aligned addresses of two distinct
/// frames, `src` readable and `dst` writable by the caller.
unsafe fn copy_frame(dst: *mut u64, src: *const u64) {
    const WORDS: usize = FRAME_SIZE as usize / 8;
    let mut i = 0;
    while i < WORDS {
        // SAFETY: i + 7 < WORDS: inside both frames.
        unsafe {
            let w = [
                src.add(i).read_volatile(),
                src.add(i + 1).read_volatile(),
                src.add(i + 2).read_volatile(),
                src.add(i + 3).read_volatile(),
                src.add(i + 4).read_volatile(),
                src.add(i + 5).read_volatile(),
                src.add(i + 6).read_volatile(),
                src.add(i + 7).read_volatile(),
            ];
            for (k, &x) in w.iter().enumerate() {
                dst.add(i + k).write_volatile(x);
            }
        }
        i += 8;
    }
}

impl FrameAllocator for KernelFrames {
    fn allocate(&mut self) -> Option<PhysAddr> {
        let f = frame::allocate()?;
        *self.allocated.get_mut() += 1;
        Some(PhysAddr::new(f.start_address()))
    }

    /// One sharer fewer; the last returns the frame (one allocator call).
    fn free(&mut self, pa: PhysAddr) -> Result<(), FrameError> {
        self.free_shared(pa)
    }

    /// One atomic update of the frame allocator's per-frame count,
    /// without its lock: fork shares every resident page this way.
    fn share(&mut self, pa: PhysAddr) -> Result<(), FrameError> {
        let f = Frame::from_start_address(pa.as_u64()).map_err(|_| FrameError::Misaligned(pa))?;
        self.counts.share(f).map_err(|e| match e {
            frame::FramePoolError::TooManySharers(_) => FrameError::TooManySharers(pa),
            _ => FrameError::NotAllocated(pa),
        })
    }

    fn sharers(&self, pa: PhysAddr) -> u32 {
        match Frame::from_start_address(pa.as_u64()) {
            Ok(f) => self.counts.sharers(f),
            Err(_) => 0,
        }
    }

    fn zero(&mut self, pa: PhysAddr) -> Result<(), FrameError> {
        self.held(pa)?;
        // SAFETY: the frame is allocated (checked above) to the VMM, which
        // asks to zero it; nothing else uses it.
        unsafe { self.zero_unchecked(pa) };
        Ok(())
    }

    /// Allocates and zeroes in one step: the frame comes straight from
    /// the allocator, so `zero`'s ownership check would only repeat what
    /// `allocate` just did.
    fn allocate_zeroed(&mut self) -> Result<Option<PhysAddr>, FrameError> {
        let Some(pa) = self.allocate() else {
            return Ok(None);
        };
        // SAFETY: just allocated to the VMM, used by nothing else.
        unsafe { self.zero_unchecked(pa) };
        Ok(Some(pa))
    }

    fn copy(&mut self, dst: PhysAddr, src: PhysAddr) -> Result<(), FrameError> {
        self.held(dst)?;
        self.held(src)?;
        if dst == src {
            return Ok(());
        }
        // SAFETY: both frames are allocated, distinct, and mapped by the
        // linear map at frame-aligned addresses.
        unsafe {
            copy_frame(
                real_to_virt(dst.as_u64()) as *mut u64,
                real_to_virt(src.as_u64()) as *const u64,
            )
        };
        Ok(())
    }

    fn free_frames(&self) -> usize {
        frame::with(|fa| fa.free_frames()) as usize
    }
}

/// The frame allocator has its own lock and the sharer counts are
/// atomics, so processors may allocate and free at once.
impl SharedFrameAllocator for KernelFrames {
    fn allocate_zeroed_shared(&self) -> Result<Option<PhysAddr>, FrameError> {
        let Some(f) = frame::allocate() else {
            return Ok(None);
        };
        self.allocated.fetch_add(1, Ordering::Relaxed);
        let pa = PhysAddr::new(f.start_address());
        // SAFETY: just allocated to the VMM, used by nothing else.
        unsafe { self.zero_unchecked(pa) };
        Ok(Some(pa))
    }

    fn free_shared(&self, pa: PhysAddr) -> Result<(), FrameError> {
        let f = Frame::from_start_address(pa.as_u64()).map_err(|_| FrameError::Misaligned(pa))?;
        // A copy-on-write break drops a sharer of a frame others keep:
        // no lock for that.
        if self.counts.unshare(f) {
            return Ok(());
        }
        let freed = frame::with(|fa| fa.release(f)).map_err(|_| FrameError::NotAllocated(pa))?;
        if freed {
            self.allocated.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

impl PhysMemory for KernelFrames {
    fn read(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), FrameError> {
        check_range(pa, buf.len())?;
        // SAFETY: the range lies in allocated frames, mapped linearly.
        unsafe {
            core::ptr::copy_nonoverlapping(
                real_to_virt(pa.as_u64()) as *const u8,
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        Ok(())
    }

    fn write(&mut self, pa: PhysAddr, data: &[u8]) -> Result<(), FrameError> {
        check_range(pa, data.len())?;
        // SAFETY: as for `read`.
        unsafe {
            core::ptr::copy_nonoverlapping(
                data.as_ptr(),
                real_to_virt(pa.as_u64()) as *mut u8,
                data.len(),
            )
        };
        Ok(())
    }
}
