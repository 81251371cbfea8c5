//! The manager's three platform traits over the C kernel's callbacks
//! (`struct vmm_platform` in `vmm/include/vmm.h`).

use core::ffi::{c_char, c_int, c_uint, c_void};

use vmm::arch_ppc64::addr::{EffectiveAddress, PhysAddr, PtegIndex, Ptex};
use vmm::arch_ppc64::structures::hpte::{Hpte, Pp};
use vmm::arch_ppc64::structures::slb::SlbEntry;
use vmm::arch_ppc64::structures::SegmentSize;
use vmm::native::{NativeHpt, NativeHptError, TlbInvalidate};
use vmm::platform::{
    FrameAllocator, FrameError, HptBackend, HptError, RemoveCondition, SlbBackend, SlbError,
};

/// `struct vmm_platform`, field for field.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct VmmPlatform {
    /// Passed first to every callback.
    pub ctx: *mut c_void,
    /// PTEGs in the HPT (a power of two).
    pub hpt_ptegs: u64,
    /// The in-memory HPT, or NULL for the PAPR callbacks.
    pub hpt_table: *mut c_void,
    /// Flushes the translations of a removed or changed in-memory entry.
    pub tlb_invalidate: Option<unsafe extern "C" fn(*mut c_void, u64, u64, u64)>,
    /// `H_ENTER`.
    pub hpt_insert:
        Option<unsafe extern "C" fn(*mut c_void, u64, c_int, u64, u64, *mut u64) -> i64>,
    /// `H_REMOVE`.
    pub hpt_remove:
        Option<unsafe extern "C" fn(*mut c_void, u64, c_int, u64, *mut u64, *mut u64) -> i64>,
    /// `H_PROTECT`.
    pub hpt_protect: Option<unsafe extern "C" fn(*mut c_void, u64, u64, c_uint, c_int) -> i64>,
    /// `H_READ`.
    pub hpt_read: Option<unsafe extern "C" fn(*mut c_void, u64, *mut u64, *mut u64) -> i64>,
    /// SLB entries the manager may use.
    pub slb_entries: usize,
    /// Hardware index of the manager's entry 0.
    pub slb_index_base: usize,
    /// `slbmte`.
    pub slb_load: Option<unsafe extern "C" fn(*mut c_void, usize, u64, u64)>,
    /// `slbmfee`/`slbmfev`.
    pub slb_read: Option<unsafe extern "C" fn(*mut c_void, usize, *mut u64, *mut u64)>,
    /// `slbie`.
    pub slb_invalidate: Option<unsafe extern "C" fn(*mut c_void, u64, c_int)>,
    /// Invalidates hardware entries from an index on.
    pub slb_invalidate_from: Option<unsafe extern "C" fn(*mut c_void, usize)>,
    /// A free frame.
    pub frame_alloc: Option<unsafe extern "C" fn(*mut c_void, *mut u64) -> c_int>,
    /// Drops a sharer.
    pub frame_free: Option<unsafe extern "C" fn(*mut c_void, u64) -> c_int>,
    /// Adds a sharer.
    pub frame_share: Option<unsafe extern "C" fn(*mut c_void, u64) -> c_int>,
    /// Counts sharers.
    pub frame_sharers: Option<unsafe extern "C" fn(*mut c_void, u64) -> u32>,
    /// Zero-fills a frame.
    pub frame_zero: Option<unsafe extern "C" fn(*mut c_void, u64) -> c_int>,
    /// Copies a frame.
    pub frame_copy: Option<unsafe extern "C" fn(*mut c_void, u64, u64) -> c_int>,
    /// Free frames left.
    pub frame_free_count: Option<unsafe extern "C" fn(*mut c_void) -> u64>,
    /// The allocator's memory.
    pub heap: *mut c_void,
    /// Its size in bytes.
    pub heap_size: usize,
    /// Log records.
    pub log: Option<unsafe extern "C" fn(*mut c_void, c_int, *const c_char, usize)>,
    /// Unrecoverable errors.
    pub abort: Option<unsafe extern "C" fn(*mut c_void, *const c_char, usize)>,
}

impl VmmPlatform {
    /// Whether every callback the manager needs is there.
    pub fn complete(&self) -> bool {
        let papr = self.hpt_insert.is_some()
            && self.hpt_remove.is_some()
            && self.hpt_protect.is_some()
            && self.hpt_read.is_some();
        let native = !self.hpt_table.is_null()
            && self.hpt_insert.is_none()
            && self.hpt_remove.is_none()
            && self.hpt_protect.is_none()
            && self.hpt_read.is_none();
        (papr && self.hpt_table.is_null() || native)
            && self.slb_load.is_some()
            && self.slb_read.is_some()
            && self.slb_invalidate.is_some()
            && self.slb_invalidate_from.is_some()
            && self.frame_alloc.is_some()
            && self.frame_free.is_some()
            && self.frame_share.is_some()
            && self.frame_sharers.is_some()
            && self.frame_zero.is_some()
            && self.frame_copy.is_some()
            && self.frame_free_count.is_some()
    }
}

/// Calls callback `$f` of `$ops` (checked present by
/// [`VmmPlatform::complete`] before any backend exists).
macro_rules! call {
    ($ops:expr, $f:ident $(, $arg:expr)*) => {{
        let f = $ops.$f.expect(concat!("vmm_platform.", stringify!($f), " was checked"));
        // SAFETY: the C kernel gave this callback in the table vmm_create
        // checked; its contract (vmm.h) is that it may be called with the
        // library's lock held, with `ctx` and the documented arguments.
        unsafe { f($ops.ctx $(, $arg)*) }
    }};
}

/// The C kernel's callbacks; the header makes them callable from
/// whichever processor holds the library's lock.
#[derive(Debug, Clone, Copy)]
pub struct Ops(pub VmmPlatform);

// SAFETY: the table is plain data (function pointers and the C kernel's
// context); vmm.h requires the callbacks to work from any processor that
// holds the library's lock, which is the only place they are called.
unsafe impl Send for Ops {}

fn hpt_error(rc: i64) -> HptError {
    match rc {
        -4 => HptError::Parameter,
        -6 => HptError::PtegFull,
        -7 => HptError::NotFound,
        other => HptError::Hardware(other),
    }
}

/// The in-memory table's TLB flush through `tlb_invalidate`.
#[derive(Debug)]
pub struct CTlb(pub Ops);

impl TlbInvalidate for CTlb {
    fn invalidate(&mut self, ptex: Ptex, old: Hpte) {
        if let Some(f) = self.0 .0.tlb_invalidate {
            // SAFETY: the C kernel's callback, per vmm.h's contract, with
            // its context and the entry's index and old words.
            unsafe { f(self.0 .0.ctx, ptex.as_u64(), old.v, old.r) };
        }
    }
}

/// The HPT: the PAPR callbacks, or the C kernel's in-memory table.
#[derive(Debug)]
pub enum CHpt {
    /// Through `hpt_*`.
    Papr(PaprCalls),
    /// `hpt_table`, with `tlb_invalidate`.
    Native(NativeHpt<&'static mut [u8], CTlb>),
}

impl CHpt {
    /// The backend `ops` describe (see [`VmmPlatform::complete`]).
    ///
    /// # Safety
    ///
    /// With `hpt_table` set, it must point to `hpt_ptegs * 128` bytes the
    /// library may use as the HPT for as long as the program runs.
    pub unsafe fn new(ops: Ops) -> Result<CHpt, NativeHptError> {
        let p = ops.0;
        if p.hpt_table.is_null() {
            return Ok(CHpt::Papr(PaprCalls(ops)));
        }
        let len = usize::try_from(p.hpt_ptegs)
            .ok()
            .and_then(|n| n.checked_mul(128))
            .ok_or(NativeHptError::BadSize(usize::MAX))?;
        // SAFETY: the caller's guarantee on the table, passed on.
        let table = unsafe { core::slice::from_raw_parts_mut(p.hpt_table.cast::<u8>(), len) };
        NativeHpt::with_tlb(table, CTlb(ops)).map(CHpt::Native)
    }

    fn backend(&self) -> &dyn HptBackend {
        match self {
            CHpt::Papr(p) => p,
            CHpt::Native(n) => n,
        }
    }

    fn backend_mut(&mut self) -> &mut dyn HptBackend {
        match self {
            CHpt::Papr(p) => p,
            CHpt::Native(n) => n,
        }
    }
}

impl HptBackend for CHpt {
    fn pteg_count(&self) -> u64 {
        self.backend().pteg_count()
    }
    fn insert(&mut self, group: PtegIndex, slot: Option<u8>, hpte: Hpte) -> Result<Ptex, HptError> {
        self.backend_mut().insert(group, slot, hpte)
    }
    fn remove(&mut self, ptex: Ptex, cond: RemoveCondition) -> Result<Hpte, HptError> {
        self.backend_mut().remove(ptex, cond)
    }
    fn protect(&mut self, ptex: Ptex, avpn: u64, pp: Pp, no_exec: bool) -> Result<(), HptError> {
        self.backend_mut().protect(ptex, avpn, pp, no_exec)
    }
    fn read(&self, ptex: Ptex) -> Result<Hpte, HptError> {
        self.backend().read(ptex)
    }
    fn read_group(&self, group: PtegIndex) -> Result<[Hpte; 8], HptError> {
        self.backend().read_group(group)
    }
    fn known_empty_groups(&self, group: PtegIndex) -> u64 {
        self.backend().known_empty_groups(group)
    }
}

/// The HPT through `hpt_*`.
#[derive(Debug)]
pub struct PaprCalls(pub Ops);

impl HptBackend for PaprCalls {
    fn pteg_count(&self) -> u64 {
        self.0 .0.hpt_ptegs
    }

    fn insert(&mut self, group: PtegIndex, slot: Option<u8>, hpte: Hpte) -> Result<Ptex, HptError> {
        let mut ptex = 0u64;
        let slot = slot.map_or(-1, c_int::from);
        let rc = call!(
            self.0 .0,
            hpt_insert,
            group.as_u64(),
            slot,
            hpte.v,
            hpte.r,
            &mut ptex
        );
        if rc != 0 {
            return Err(hpt_error(rc));
        }
        Ptex::try_from_raw(ptex).ok_or(HptError::Parameter)
    }

    fn remove(&mut self, ptex: Ptex, cond: RemoveCondition) -> Result<Hpte, HptError> {
        let (how, value) = match cond {
            RemoveCondition::Absolute => (0, 0),
            RemoveCondition::Avpn(a) => (1, a),
            RemoveCondition::AndCond(m) => (2, m),
        };
        let (mut v, mut r) = (0u64, 0u64);
        let rc = call!(
            self.0 .0,
            hpt_remove,
            ptex.as_u64(),
            how,
            value,
            &mut v,
            &mut r
        );
        if rc != 0 {
            return Err(hpt_error(rc));
        }
        Ok(Hpte { v, r })
    }

    fn protect(&mut self, ptex: Ptex, avpn: u64, pp: Pp, no_exec: bool) -> Result<(), HptError> {
        let rc = call!(
            self.0 .0,
            hpt_protect,
            ptex.as_u64(),
            avpn,
            c_uint::from(pp.bits()),
            c_int::from(no_exec)
        );
        if rc != 0 {
            return Err(hpt_error(rc));
        }
        Ok(())
    }

    fn read(&self, ptex: Ptex) -> Result<Hpte, HptError> {
        let (mut v, mut r) = (0u64, 0u64);
        let rc = call!(self.0 .0, hpt_read, ptex.as_u64(), &mut v, &mut r);
        if rc != 0 {
            return Err(hpt_error(rc));
        }
        Ok(Hpte { v, r })
    }
}

/// The SLB through `slb_*`, at hardware indexes from `slb_index_base` on.
#[derive(Debug)]
pub struct CSlb(pub Ops);

impl CSlb {
    fn hw(&self, index: usize) -> Result<usize, SlbError> {
        if index >= self.0 .0.slb_entries {
            return Err(SlbError::IndexOutOfRange(index));
        }
        Ok(self.0 .0.slb_index_base + index)
    }
}

/// Bits of the SLB ESID word that hold the entry's index.
const ESID_INDEX: u64 = 0xfff;

impl SlbBackend for CSlb {
    fn slb_size(&self) -> usize {
        self.0 .0.slb_entries
    }

    fn load(&mut self, index: usize, entry: SlbEntry) -> Result<(), SlbError> {
        let hw = self.hw(index)?;
        let rb = (entry.esid_word & !ESID_INDEX) | hw as u64;
        call!(self.0 .0, slb_load, hw, rb, entry.vsid_word);
        Ok(())
    }

    fn read(&self, index: usize) -> Result<SlbEntry, SlbError> {
        let hw = self.hw(index)?;
        let (mut esid_word, mut vsid_word) = (0u64, 0u64);
        call!(self.0 .0, slb_read, hw, &mut esid_word, &mut vsid_word);
        Ok(SlbEntry {
            esid_word,
            vsid_word,
        })
    }

    fn invalidate(&mut self, ea: EffectiveAddress, ssize: SegmentSize) {
        let one_tb = c_int::from(ssize == SegmentSize::T1);
        call!(self.0 .0, slb_invalidate, ea.as_u64(), one_tb);
    }

    fn invalidate_non_bolted(&mut self, bolted: usize) {
        let first = self.0 .0.slb_index_base + bolted;
        call!(self.0 .0, slb_invalidate_from, first);
    }

    fn hardware_index_base(&self) -> usize {
        self.0 .0.slb_index_base
    }
}

/// Frames through `frame_*`.
#[derive(Debug)]
pub struct CFrames(pub Ops);

fn frame_result(rc: c_int, pa: PhysAddr) -> Result<(), FrameError> {
    match rc {
        0 => Ok(()),
        1 => Err(FrameError::Misaligned(pa)),
        2 => Err(FrameError::OutOfRange(pa)),
        4 => Err(FrameError::TooManySharers(pa)),
        _ => Err(FrameError::NotAllocated(pa)),
    }
}

impl FrameAllocator for CFrames {
    fn allocate(&mut self) -> Option<PhysAddr> {
        let mut pa = 0u64;
        if call!(self.0 .0, frame_alloc, &mut pa) != 0 {
            return None;
        }
        PhysAddr::try_new(pa)
    }

    fn free(&mut self, frame: PhysAddr) -> Result<(), FrameError> {
        frame_result(call!(self.0 .0, frame_free, frame.as_u64()), frame)
    }

    fn share(&mut self, frame: PhysAddr) -> Result<(), FrameError> {
        frame_result(call!(self.0 .0, frame_share, frame.as_u64()), frame)
    }

    fn sharers(&self, frame: PhysAddr) -> u32 {
        call!(self.0 .0, frame_sharers, frame.as_u64())
    }

    fn zero(&mut self, frame: PhysAddr) -> Result<(), FrameError> {
        frame_result(call!(self.0 .0, frame_zero, frame.as_u64()), frame)
    }

    fn copy(&mut self, dst: PhysAddr, src: PhysAddr) -> Result<(), FrameError> {
        frame_result(
            call!(self.0 .0, frame_copy, dst.as_u64(), src.as_u64()),
            dst,
        )
    }

    fn free_frames(&self) -> usize {
        call!(self.0 .0, frame_free_count) as usize
    }
}
