//! Real memory of the emulated machine and its 4 KiB frame allocator.

use alloc::vec;
use alloc::vec::Vec;

use arch_ppc64::addr::PhysAddr;

use super::Shared;
use crate::platform::{FrameAllocator, FrameError, PhysMemory, FRAME_SIZE};

const FRAME: usize = FRAME_SIZE as usize;

/// The bytes plus allocation state.
pub(super) struct Memory {
    bytes: Vec<u8>,
    allocated: Vec<bool>,
    /// Sharers of each frame beyond the first (0 for a private frame).
    extra_sharers: Vec<u32>,
    /// Free frame numbers; popped from the end, so filled in descending
    /// order to hand out low frames first.
    free: Vec<u32>,
}

impl Memory {
    /// `None` if `bytes` holds no whole frame or too many to number in u32.
    pub(super) fn new(bytes: usize) -> Option<Memory> {
        let frames = bytes / FRAME;
        if frames == 0 || frames > u32::MAX as usize {
            return None;
        }
        Some(Memory {
            bytes: vec![0u8; frames * FRAME],
            allocated: vec![false; frames],
            extra_sharers: vec![0; frames],
            free: (0..frames as u32).rev().collect(),
        })
    }

    /// Index of an allocated, aligned frame.
    fn frame(&self, pa: PhysAddr) -> Result<usize, FrameError> {
        if !pa.as_u64().is_multiple_of(FRAME_SIZE) {
            return Err(FrameError::Misaligned(pa));
        }
        let n = (pa.as_u64() / FRAME_SIZE) as usize;
        match self.allocated.get(n) {
            None => Err(FrameError::OutOfRange(pa)),
            Some(false) => Err(FrameError::NotAllocated(pa)),
            Some(true) => Ok(n),
        }
    }

    fn range(&self, pa: PhysAddr, len: usize) -> Result<core::ops::Range<usize>, FrameError> {
        let start = pa.as_u64() as usize;
        match start.checked_add(len) {
            Some(end) if pa.as_u64() <= usize::MAX as u64 && end <= self.bytes.len() => {
                Ok(start..end)
            }
            _ => Err(FrameError::OutOfRange(pa)),
        }
    }

    /// Bytes of real memory (it starts at real address 0).
    pub(super) fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Read by the emulated MMU after a translation.
    ///
    /// # Panics
    ///
    /// Panics (machine check) if the range is outside memory.
    pub(super) fn read_real(&self, pa: PhysAddr, buf: &mut [u8]) {
        let r = self
            .range(pa, buf.len())
            .unwrap_or_else(|_| panic!("machine check: load from {pa:?} beyond real memory"));
        buf.copy_from_slice(&self.bytes[r]);
    }

    /// Written by the emulated MMU after a translation.
    ///
    /// # Panics
    ///
    /// Panics (machine check) if the range is outside memory.
    pub(super) fn write_real(&mut self, pa: PhysAddr, data: &[u8]) {
        let r = self
            .range(pa, data.len())
            .unwrap_or_else(|_| panic!("machine check: store to {pa:?} beyond real memory"));
        self.bytes[r].copy_from_slice(data);
    }
}

/// The machine's real memory as a [`FrameAllocator`] and [`PhysMemory`]
/// (a handle sharing the machine). Frames are handed out lowest first.
#[derive(Clone)]
pub struct SimMemory {
    state: Shared,
}

impl core::fmt::Debug for SimMemory {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimMemory")
            .field("frames", &self.frame_count())
            .field("free", &crate::platform::FrameAllocator::free_frames(self))
            .finish()
    }
}

impl SimMemory {
    pub(super) fn new(state: Shared) -> SimMemory {
        SimMemory { state }
    }

    /// Total number of frames.
    pub fn frame_count(&self) -> usize {
        self.state.lock().mem.allocated.len()
    }

    /// Whether `frame` is currently allocated.
    pub fn is_allocated(&self, frame: PhysAddr) -> bool {
        self.state.lock().mem.frame(frame).is_ok()
    }
}

impl FrameAllocator for SimMemory {
    fn allocate(&mut self) -> Option<PhysAddr> {
        let mut st = self.state.lock();
        let m = &mut st.mem;
        let n = m.free.pop()?;
        m.allocated[n as usize] = true;
        Some(PhysAddr::new(n as u64 * FRAME_SIZE))
    }

    fn free(&mut self, frame: PhysAddr) -> Result<(), FrameError> {
        let mut st = self.state.lock();
        let m = &mut st.mem;
        let n = m.frame(frame)?;
        if m.extra_sharers[n] > 0 {
            m.extra_sharers[n] -= 1;
            return Ok(());
        }
        m.allocated[n] = false;
        m.free.push(n as u32);
        Ok(())
    }

    fn share(&mut self, frame: PhysAddr) -> Result<(), FrameError> {
        let mut st = self.state.lock();
        let m = &mut st.mem;
        let n = m.frame(frame)?;
        m.extra_sharers[n] = m.extra_sharers[n]
            .checked_add(1)
            .ok_or(FrameError::TooManySharers(frame))?;
        Ok(())
    }

    fn sharers(&self, frame: PhysAddr) -> u32 {
        let st = self.state.lock();
        st.mem
            .frame(frame)
            .map_or(0, |n| st.mem.extra_sharers[n] + 1)
    }

    fn zero(&mut self, frame: PhysAddr) -> Result<(), FrameError> {
        let mut st = self.state.lock();
        let m = &mut st.mem;
        let n = m.frame(frame)?;
        m.bytes[n * FRAME..(n + 1) * FRAME].fill(0);
        Ok(())
    }

    fn copy(&mut self, dst: PhysAddr, src: PhysAddr) -> Result<(), FrameError> {
        let mut st = self.state.lock();
        let m = &mut st.mem;
        let d = m.frame(dst)?;
        let s = m.frame(src)?;
        m.bytes.copy_within(s * FRAME..(s + 1) * FRAME, d * FRAME);
        Ok(())
    }

    fn free_frames(&self) -> usize {
        self.state.lock().mem.free.len()
    }
}

/// The memory is behind the machine's lock, so a second handle to it does
/// what `&mut` does.
impl crate::platform::SharedFrameAllocator for SimMemory {
    fn allocate_zeroed_shared(&self) -> Result<Option<PhysAddr>, FrameError> {
        self.clone().allocate_zeroed()
    }

    fn free_shared(&self, frame: PhysAddr) -> Result<(), FrameError> {
        self.clone().free(frame)
    }
}

impl PhysMemory for SimMemory {
    fn read(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), FrameError> {
        let st = self.state.lock();
        let r = st.mem.range(pa, buf.len())?;
        buf.copy_from_slice(&st.mem.bytes[r]);
        Ok(())
    }

    fn write(&mut self, pa: PhysAddr, data: &[u8]) -> Result<(), FrameError> {
        let mut st = self.state.lock();
        let r = st.mem.range(pa, data.len())?;
        st.mem.bytes[r].copy_from_slice(data);
        Ok(())
    }
}
