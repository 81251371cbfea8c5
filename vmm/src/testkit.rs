//! Test doubles shared by the unit tests: an HPT, an SLB and frames as
//! plain arrays, and an HPT wrapper that counts removes.
use alloc::vec;
use alloc::vec::Vec;

use arch_ppc64::addr::{EffectiveAddress, PhysAddr, PtegIndex, Ptex};
use arch_ppc64::structures::hpte::{Hpte, Pp};
use arch_ppc64::structures::slb::SlbEntry;
use arch_ppc64::structures::SegmentSize;

use crate::platform::{
    FrameAllocator, FrameError, HptBackend, HptError, PhysMemory, RefChange, RemoveCondition,
    SlbBackend, SlbError,
};

/// An HPT as a plain array of entries.
pub struct ArrayHpt(pub Vec<Hpte>);

impl ArrayHpt {
    pub fn new(ptegs: usize) -> Self {
        ArrayHpt(vec![Hpte::EMPTY; ptegs * 8])
    }
    pub fn valid(&self) -> usize {
        self.0.iter().filter(|h| h.is_valid()).count()
    }
}

impl HptBackend for ArrayHpt {
    fn pteg_count(&self) -> u64 {
        (self.0.len() / 8) as u64
    }
    fn insert(&mut self, group: PtegIndex, slot: Option<u8>, hpte: Hpte) -> Result<Ptex, HptError> {
        if group.as_u64() >= self.pteg_count() {
            return Err(HptError::Parameter);
        }
        let slots: Vec<u8> = match slot {
            Some(s) if s < 8 => vec![s],
            Some(_) => return Err(HptError::Parameter),
            None => (0..8).collect(),
        };
        for s in slots {
            let p = group.ptex(s);
            let e = &mut self.0[p.as_u64() as usize];
            if !e.is_valid() {
                *e = hpte;
                return Ok(p);
            }
        }
        Err(HptError::PtegFull)
    }
    fn remove(&mut self, ptex: Ptex, cond: RemoveCondition) -> Result<Hpte, HptError> {
        let e = self
            .0
            .get_mut(ptex.as_u64() as usize)
            .ok_or(HptError::Parameter)?;
        let ok = e.is_valid()
            && match cond {
                RemoveCondition::Absolute => true,
                RemoveCondition::Avpn(a) => e.avpn_word() == a,
                RemoveCondition::AndCond(m) => e.v & m == 0,
            };
        if !ok {
            return Err(HptError::NotFound);
        }
        let old = *e;
        *e = Hpte::EMPTY;
        Ok(old)
    }
    fn protect(&mut self, ptex: Ptex, avpn: u64, pp: Pp, no_exec: bool) -> Result<(), HptError> {
        let e = self
            .0
            .get_mut(ptex.as_u64() as usize)
            .ok_or(HptError::Parameter)?;
        if !e.is_valid() || e.avpn_word() != avpn {
            return Err(HptError::NotFound);
        }
        *e = e.with_pp(pp).with_no_execute(no_exec);
        Ok(())
    }
    fn read(&self, ptex: Ptex) -> Result<Hpte, HptError> {
        self.0
            .get(ptex.as_u64() as usize)
            .copied()
            .ok_or(HptError::Parameter)
    }
}

/// Wraps an HPT backend and counts how entries leave it: single
/// removes (`H_REMOVE`) and batches (`H_BULK_REMOVE` on PAPR, with
/// their sizes), and how many `H_PROTECT`s it is asked for. With
/// `store_on_insert` every entry goes in with C set, as if its page were
/// stored to at once, so tests can follow R/C; with `refuse_protect`
/// every protect fails as a hypervisor error would.
pub struct CountingHpt<H> {
    pub inner: H,
    pub store_on_insert: bool,
    pub refuse_protect: bool,
    pub singles: usize,
    pub batches: Vec<usize>,
    pub protects: usize,
}

impl<H> CountingHpt<H> {
    pub fn new(inner: H) -> Self {
        CountingHpt {
            inner,
            store_on_insert: false,
            refuse_protect: false,
            singles: 0,
            batches: Vec::new(),
            protects: 0,
        }
    }
}

impl<H: HptBackend> HptBackend for CountingHpt<H> {
    fn pteg_count(&self) -> u64 {
        self.inner.pteg_count()
    }
    fn insert(&mut self, group: PtegIndex, slot: Option<u8>, hpte: Hpte) -> Result<Ptex, HptError> {
        let hpte = if self.store_on_insert {
            hpte.with_changed(true)
        } else {
            hpte
        };
        self.inner.insert(group, slot, hpte)
    }
    fn remove(&mut self, ptex: Ptex, cond: RemoveCondition) -> Result<Hpte, HptError> {
        self.singles += 1;
        self.inner.remove(ptex, cond)
    }
    fn protect(&mut self, ptex: Ptex, avpn: u64, pp: Pp, no_exec: bool) -> Result<(), HptError> {
        self.protects += 1;
        if self.refuse_protect {
            return Err(HptError::Hardware(-1));
        }
        self.inner.protect(ptex, avpn, pp, no_exec)
    }
    fn read(&self, ptex: Ptex) -> Result<Hpte, HptError> {
        self.inner.read(ptex)
    }
    fn remove_batch(
        &mut self,
        requests: &[(Ptex, RemoveCondition)],
    ) -> Vec<Result<RefChange, HptError>> {
        self.batches.push(requests.len());
        requests
            .iter()
            .map(|&(ptex, cond)| self.inner.remove(ptex, cond).map(RefChange::of))
            .collect()
    }
}

/// An SLB as a plain array that counts its `slbie`s and the segment size
/// each named.
pub struct ArraySlb {
    pub entries: Vec<SlbEntry>,
    pub slbie: usize,
    pub slbie_sizes: Vec<SegmentSize>,
}

impl ArraySlb {
    /// `size` invalid entries.
    pub fn new(size: usize) -> Self {
        ArraySlb {
            entries: vec![SlbEntry::INVALID; size],
            slbie: 0,
            slbie_sizes: Vec::new(),
        }
    }
}

impl SlbBackend for ArraySlb {
    fn slb_size(&self) -> usize {
        self.entries.len()
    }
    fn load(&mut self, index: usize, entry: SlbEntry) -> Result<(), SlbError> {
        *self
            .entries
            .get_mut(index)
            .ok_or(SlbError::IndexOutOfRange(index))? = entry;
        Ok(())
    }
    fn read(&self, index: usize) -> Result<SlbEntry, SlbError> {
        self.entries
            .get(index)
            .copied()
            .ok_or(SlbError::IndexOutOfRange(index))
    }
    fn invalidate(&mut self, ea: EffectiveAddress, ssize: SegmentSize) {
        self.slbie += 1;
        self.slbie_sizes.push(ssize);
        for e in &mut self.entries {
            // slbie matches an entry only with its own segment size.
            if e.matches(ea) && e.segment_size() == Some(ssize) {
                *e = SlbEntry::INVALID;
            }
        }
    }
    fn invalidate_non_bolted(&mut self, bolted: usize) {
        for e in &mut self.entries[bolted..] {
            *e = SlbEntry::INVALID;
        }
    }
}

/// Frames in a `Vec`, at real addresses `(i + 1) * 4096`.
pub struct VecFrames {
    mem: Vec<u8>,
    used: Vec<bool>,
    /// Sharers per frame (0 when free).
    sharers: Vec<u32>,
    /// Most sharers one frame may have.
    share_limit: u32,
}

impl VecFrames {
    pub fn new(frames: usize) -> Self {
        VecFrames {
            mem: vec![0xAA; frames * 4096],
            used: vec![false; frames],
            sharers: vec![0; frames],
            share_limit: u32::MAX,
        }
    }
    /// Frames that count at most `limit` sharers each, as an allocator
    /// with narrow counters would.
    pub fn with_share_limit(frames: usize, limit: u32) -> Self {
        VecFrames {
            share_limit: limit,
            ..Self::new(frames)
        }
    }
    fn index(&self, pa: PhysAddr) -> Result<usize, FrameError> {
        let a = pa.as_u64();
        if !a.is_multiple_of(4096) {
            return Err(FrameError::Misaligned(pa));
        }
        let i = (a / 4096)
            .checked_sub(1)
            .ok_or(FrameError::OutOfRange(pa))? as usize;
        if i >= self.used.len() {
            return Err(FrameError::OutOfRange(pa));
        }
        if !self.used[i] {
            return Err(FrameError::NotAllocated(pa));
        }
        Ok(i)
    }
}

impl FrameAllocator for VecFrames {
    fn allocate(&mut self) -> Option<PhysAddr> {
        let i = self.used.iter().position(|u| !u)?;
        self.used[i] = true;
        self.sharers[i] = 1;
        Some(PhysAddr::new((i as u64 + 1) * 4096))
    }
    fn free(&mut self, frame: PhysAddr) -> Result<(), FrameError> {
        let i = self.index(frame)?;
        self.sharers[i] -= 1;
        if self.sharers[i] > 0 {
            return Ok(());
        }
        self.used[i] = false;
        // Poison, so a use after free shows.
        self.mem[i * 4096..(i + 1) * 4096].fill(0xAA);
        Ok(())
    }
    fn share(&mut self, frame: PhysAddr) -> Result<(), FrameError> {
        let i = self.index(frame)?;
        if self.sharers[i] >= self.share_limit {
            return Err(FrameError::TooManySharers(frame));
        }
        self.sharers[i] += 1;
        Ok(())
    }
    fn sharers(&self, frame: PhysAddr) -> u32 {
        self.index(frame).map_or(0, |i| self.sharers[i])
    }
    fn zero(&mut self, frame: PhysAddr) -> Result<(), FrameError> {
        let i = self.index(frame)?;
        self.mem[i * 4096..(i + 1) * 4096].fill(0);
        Ok(())
    }
    fn copy(&mut self, dst: PhysAddr, src: PhysAddr) -> Result<(), FrameError> {
        let (d, s) = (self.index(dst)?, self.index(src)?);
        self.mem.copy_within(s * 4096..(s + 1) * 4096, d * 4096);
        Ok(())
    }
    fn free_frames(&self) -> usize {
        self.used.iter().filter(|u| !**u).count()
    }
}

impl PhysMemory for VecFrames {
    fn read(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), FrameError> {
        let a = (pa.as_u64() - 4096) as usize;
        buf.copy_from_slice(&self.mem[a..a + buf.len()]);
        Ok(())
    }
    fn write(&mut self, pa: PhysAddr, data: &[u8]) -> Result<(), FrameError> {
        let a = (pa.as_u64() - 4096) as usize;
        self.mem[a..a + data.len()].copy_from_slice(data);
        Ok(())
    }
}
