//! [`PaprHpt`]: the hypervisor's hashed page table through the PAPR page
//! frame table hcalls (`H_ENTER`, `H_REMOVE`, `H_PROTECT`, `H_READ`,
//! `H_BULK_REMOVE`), as QEMU's pseries machine implements them
//! (`docs/ppc64-mmu.md` §1.5–1.6).
//!
//! A pseries guest cannot write the HPT: it lives in hypervisor memory and
//! every change goes through an hcall. R and C come back from `H_READ`
//! and `H_REMOVE` (QEMU has no `H_CLEAR_REF`/`H_CLEAR_MOD`).
//!
//! For the same reason a PTEG that no `H_ENTER` ever named still holds
//! the entries the hypervisor made the table with. Once
//! [`PaprHpt::track_entered_groups`] has run, every [`PaprHpt`] marks the
//! group of each `H_ENTER` in one shared bitmap, and reads of a group
//! never marked are answered without an hcall. QEMU sizes the table by RAM
//! (RAM/128: 2^20 PTEGs at 16 GiB) while the kernel fills a few thousand
//! groups, so whole-table scans (`check_invariants`, the SID purge) would
//! otherwise cost millions of hcalls on a large machine.

use core::sync::atomic::{AtomicU64, Ordering};

use alloc::vec::Vec;
use arch_ppc64::addr::{PtegIndex, Ptex};
use arch_ppc64::instructions::hcall::{self, bulk_remove, flags, opcode, protect, PaprError};
use arch_ppc64::structures::hpte::{self, Hpte, Pp};

use vmm::platform::{HptBackend, HptError, RefChange, RemoveCondition, SharedHptBackend};

/// What `H_BULK_REMOVE` did with one request: `None` past the requests
/// made, else the removed entry's `(R, C)` or why it stayed.
pub type BulkOutcome = Option<Result<(bool, bool), HptError>>;

/// The guest's HPT as the hypervisor holds it.
#[derive(Debug)]
pub struct PaprHpt {
    ptegs: u64,
}

/// Maps a PAPR failure to the backend vocabulary.
fn hpt_error(e: PaprError) -> HptError {
    match e {
        PaprError::PtegFull => HptError::PtegFull,
        PaprError::NotFound => HptError::NotFound,
        PaprError::Parameter | PaprError::ParameterN(_) => HptError::Parameter,
        other => HptError::Hardware(other.code()),
    }
}

/// The argument registers r4..r12 of an hcall taking at most four.
/// The hot hcalls go through [`hcall::hcall_raw`] with these and
/// [`check`] rather than [`hcall::hcall`], whose slice copy and 72-byte
/// result cost a `memcpy` each on the fault path.
#[inline]
fn args4(a: u64, b: u64, c: u64, d: u64) -> [u64; 9] {
    [a, b, c, d, 0, 0, 0, 0, 0]
}

/// An hcall status as the backend vocabulary: `Ok` for `H_SUCCESS`.
#[inline]
fn check(status: i64) -> Result<(), HptError> {
    if status == 0 {
        return Ok(());
    }
    Err(PaprError::from_code(status).map_or(HptError::Hardware(status), hpt_error))
}

/// Which PTEGs an `H_ENTER` named since tracking started, one bit per
/// group, and what every slot of the table held then.
struct Entered {
    bitmap: &'static [AtomicU64],
    /// A slot as the hypervisor made the table: invalid, and not
    /// necessarily zero (QEMU sets its migration-dirty bit 0x40 in every
    /// slot).
    pristine: Hpte,
}

static ENTERED: spin::Once<Entered> = spin::Once::new();

/// Whether PTEG `group` is known never to have been named by an
/// `H_ENTER` (`false` when nothing is tracked).
pub fn never_entered(group: u64) -> bool {
    pristine_if_never_entered(group).is_some()
}

/// The contents of each slot of `group` if no `H_ENTER` named it.
fn pristine_if_never_entered(group: u64) -> Option<Hpte> {
    let e = ENTERED.get()?;
    let w = e.bitmap.get((group / 64) as usize)?;
    (w.load(Ordering::Relaxed) & (1 << (group % 64)) == 0).then_some(e.pristine)
}

/// How many groups from `group` on no `H_ENTER` named (0 when nothing is
/// tracked or `group` was named), up to the end of the bitmap.
fn never_entered_run(group: u64) -> u64 {
    let Some(e) = ENTERED.get() else {
        return 0;
    };
    let mut run = 0;
    let mut g = group;
    while let Some(w) = e.bitmap.get((g / 64) as usize) {
        // The named groups at and above `g` in this word; the run ends at
        // the lowest of them.
        let named = w.load(Ordering::Relaxed) >> (g % 64);
        let free = if named == 0 {
            64 - g % 64
        } else {
            u64::from(named.trailing_zeros())
        };
        run += free;
        g += free;
        if named != 0 {
            break;
        }
    }
    run
}

fn mark_entered(group: u64) {
    if let Some(w) = ENTERED
        .get()
        .and_then(|e| e.bitmap.get((group / 64) as usize))
    {
        w.fetch_or(1 << (group % 64), Ordering::Relaxed);
    }
}

/// Makes the hypervisor's TLB invalidation of a removed or re-protected
/// entry take effect before the next access: QEMU defers the flush to the
/// next context-synchronising instruction (`ptesync`/`isync`).
fn sync_translations() {
    // SAFETY: ptesync and isync are barriers; they touch no memory.
    unsafe { core::arch::asm!("ptesync", "isync", options(nostack, preserves_flags)) };
}

impl PaprHpt {
    /// The table of `2^pft_shift` bytes (`ibm,pft-size`), `None` outside
    /// the sizes PAPR allows (2^18..=2^46 bytes).
    pub fn new(pft_shift: u32) -> Option<PaprHpt> {
        vmm::hpt::pteg_count_for_pft_size(pft_shift)
            .ok()
            .map(|ptegs| PaprHpt { ptegs })
    }

    /// Starts tracking entered groups in `bitmap` (one bit per PTEG, all
    /// clear), so that [`HptBackend::read_group`] and [`HptBackend::read`]
    /// answer for a group no `H_ENTER` named with the entry every slot
    /// held at this moment, without asking the hypervisor. Returns
    /// `false` (and tracks nothing) if tracking already started, the
    /// bitmap is too short or not clear, or slot 0 is valid (the table is
    /// not as the hypervisor made it).
    ///
    /// # Contract
    ///
    /// Call it before the first `H_ENTER`, while every slot still holds
    /// what the hypervisor made the table with, and make every later
    /// `H_ENTER` through [`PaprHpt::insert`]: an entry made behind its
    /// back would be invisible to reads of its group.
    pub fn track_entered_groups(&self, bitmap: &'static [AtomicU64]) -> bool {
        if (bitmap.len() as u64) < self.ptegs.div_ceil(64)
            || ENTERED.get().is_some()
            || bitmap.iter().any(|w| w.load(Ordering::Relaxed) != 0)
        {
            return false;
        }
        let Ok([pristine, ..]) = self.read4(Ptex::new(PtegIndex::new(0), 0)) else {
            return false;
        };
        if pristine.is_valid() {
            return false;
        }
        let mut stored = false;
        ENTERED.call_once(|| {
            stored = true;
            Entered { bitmap, pristine }
        });
        stored
    }

    fn check(&self, ptex: Ptex) -> Result<(), HptError> {
        if ptex.pteg().as_u64() >= self.ptegs {
            Err(HptError::Parameter)
        } else {
            Ok(())
        }
    }

    /// Reads the four entries `ptex & !3 .. +4` in one `H_READ` (flag
    /// `H_READ_4`), always from the hypervisor (never answered from the
    /// entered-groups bitmap).
    pub fn read4(&self, ptex: Ptex) -> Result<[Hpte; 4], HptError> {
        self.check(ptex)?;
        // SAFETY: H_READ only copies HPT entries into registers.
        let out = unsafe { hcall::hcall(opcode::H_READ, &[flags::H_READ_4, ptex.as_u64() & !3]) }
            .map_err(hpt_error)?;
        Ok(core::array::from_fn(|i| Hpte {
            v: out[2 * i],
            r: out[2 * i + 1],
        }))
    }

    /// `H_BULK_REMOVE`: removes up to [`bulk_remove::MAX_BATCH`] entries
    /// in one call, each with its condition. Returns, per request, the old
    /// R and C bits (`Some(Ok((referenced, changed)))`), why it was not
    /// removed (`Some(Err(..))`), or `None` when the hypervisor never
    /// processed it: it stops at the first request it answers with PARM
    /// or HW (e.g. a PTE index outside the table) and returns
    /// `H_PARAMETER`/`H_HARDWARE`, leaving the later request words as
    /// they were. Such a status is still `Ok` here, with the per-request
    /// outcomes; only a batch refused before the call (more than four
    /// requests, a PTE index at or above 2^50) is an `Err`.
    pub fn remove_bulk(
        &mut self,
        requests: &[(Ptex, RemoveCondition)],
    ) -> Result<[BulkOutcome; 4], HptError> {
        if requests.len() > bulk_remove::MAX_BATCH {
            return Err(HptError::Parameter);
        }
        let mut regs = [0u64; 9];
        for (i, &(ptex, cond)) in requests.iter().enumerate() {
            // QEMU returns R and C shifted into bits 12:13 of the response
            // word, inside the PTEX field: decoding them needs the index
            // below 2^50 (any real table is far smaller: at most 2^46
            // bytes, 2^42 entries).
            if ptex.as_u64() >= 1 << 50 {
                return Err(HptError::Parameter);
            }
            let (f, avpn) = match cond {
                RemoveCondition::Absolute => (bulk_remove::ABSOLUTE, 0),
                RemoveCondition::Avpn(a) => (bulk_remove::AVPN, a),
                RemoveCondition::AndCond(m) => (bulk_remove::ANDCOND, m),
            };
            regs[2 * i] = bulk_remove::REQUEST | f | ptex.as_u64();
            regs[2 * i + 1] = avpn;
        }
        if requests.len() < bulk_remove::MAX_BATCH {
            regs[2 * requests.len()] = bulk_remove::END;
        }
        // SAFETY: removing HPTEs of pages the VMM manages; the kernel's
        // own (bolted linear-map) translations are never named here by
        // the VMM, and the caller owns the entries it names. The
        // hypervisor checks each index against the table.
        let (_status, out) = unsafe { hcall::hcall_raw(opcode::H_BULK_REMOVE, regs) };
        sync_translations();
        // Whatever the status, each request word the hypervisor processed
        // was rewritten as a response (TYPE = RESPONSE, PAPR bits 0:1);
        // one still reading REQUEST was not looked at, whatever its other
        // bits say.
        let mut result = [None; 4];
        for (i, slot) in result.iter_mut().enumerate().take(requests.len()) {
            let tsh = out[2 * i];
            if tsh & bulk_remove::TYPE != bulk_remove::RESPONSE {
                continue;
            }
            *slot = Some(match tsh & bulk_remove::CODE {
                bulk_remove::SUCCESS => {
                    // PAPR puts R and C at response bits 4:5 (`RC`);
                    // QEMU's h_bulk_remove shifts HPTE dword 1 left by 43,
                    // which lands them at bits 12:13. Accept either.
                    let rc =
                        ((tsh & bulk_remove::RC) >> 51) | ((tsh >> 43) & (hpte::r::R | hpte::r::C));
                    Ok((rc & hpte::r::R != 0, rc & hpte::r::C != 0))
                }
                bulk_remove::NOT_FOUND => Err(HptError::NotFound),
                bulk_remove::PARM => Err(HptError::Parameter),
                _ => Err(HptError::Hardware(-1)),
            });
        }
        Ok(result)
    }
}

impl PaprHpt {
    /// `H_ENTER` (both the exclusive and the shared insert).
    #[inline(always)]
    fn enter(&self, group: PtegIndex, slot: Option<u8>, hpte: Hpte) -> Result<Ptex, HptError> {
        if group.as_u64() >= self.ptegs || slot.is_some_and(|s| s > 7) {
            return Err(HptError::Parameter);
        }
        let (f, ptex) = match slot {
            Some(s) => (flags::H_EXACT, group.ptex(s)),
            None => (0, group.ptex(0)),
        };
        // Marked before the hcall: a refused H_ENTER leaves a needless
        // mark, never a missing one.
        mark_entered(group.as_u64());
        // SAFETY: H_ENTER adds a translation into an invalid slot; it
        // cannot change any translation the kernel relies on.
        let (status, out) =
            unsafe { hcall::hcall_raw(opcode::H_ENTER, args4(f, ptex.as_u64(), hpte.v, hpte.r)) };
        check(status)?;
        Ptex::try_from_raw(out[0]).ok_or(HptError::Hardware(0))
    }

    /// `H_REMOVE` (both the exclusive and the shared remove).
    #[inline(always)]
    fn take(&self, ptex: Ptex, cond: RemoveCondition) -> Result<Hpte, HptError> {
        self.check(ptex)?;
        let (f, avpn) = match cond {
            RemoveCondition::Absolute => (0, 0),
            RemoveCondition::Avpn(a) => (flags::H_AVPN, a),
            RemoveCondition::AndCond(m) => (flags::H_ANDCOND, m),
        };
        // SAFETY: the VMM removes only entries it inserted (the bolted
        // linear map is protected by the ANDCOND/AVPN conditions it uses
        // and by never being named).
        let (status, out) =
            unsafe { hcall::hcall_raw(opcode::H_REMOVE, args4(f, ptex.as_u64(), avpn, 0)) };
        sync_translations();
        check(status)?;
        Ok(Hpte {
            v: out[0],
            r: out[1],
        })
    }
}

/// The hypervisor locks the PTEG for each hcall, so processors may make
/// them at once.
impl SharedHptBackend for PaprHpt {
    fn insert_shared(
        &self,
        group: PtegIndex,
        slot: Option<u8>,
        hpte: Hpte,
    ) -> Result<Ptex, HptError> {
        self.enter(group, slot, hpte)
    }

    fn remove_shared(&self, ptex: Ptex, cond: RemoveCondition) -> Result<Hpte, HptError> {
        self.take(ptex, cond)
    }
}

impl HptBackend for PaprHpt {
    fn pteg_count(&self) -> u64 {
        self.ptegs
    }

    fn insert(&mut self, group: PtegIndex, slot: Option<u8>, hpte: Hpte) -> Result<Ptex, HptError> {
        self.enter(group, slot, hpte)
    }

    fn remove(&mut self, ptex: Ptex, cond: RemoveCondition) -> Result<Hpte, HptError> {
        self.take(ptex, cond)
    }

    fn protect(&mut self, ptex: Ptex, avpn: u64, pp: Pp, no_exec: bool) -> Result<(), HptError> {
        // H_PROTECT replaces the key too: keep the entry's own.
        let key = self.read(ptex)?.key();
        let f = protect::encode(pp.bits(), no_exec, key).map_err(|_| HptError::Parameter)?;
        // SAFETY: changes the protection of a VMM-managed entry only
        // (AVPN-conditioned), then flushes its old translation.
        let r =
            unsafe { hcall::hcall(opcode::H_PROTECT, &[f | flags::H_AVPN, ptex.as_u64(), avpn]) };
        sync_translations();
        r.map(|_| ()).map_err(hpt_error)
    }

    fn remove_batch(
        &mut self,
        requests: &[(Ptex, RemoveCondition)],
    ) -> Vec<Result<RefChange, HptError>> {
        let mut out = Vec::with_capacity(requests.len());
        for chunk in requests.chunks(bulk_remove::MAX_BATCH) {
            match self.remove_bulk(chunk) {
                // Requests the hypervisor never reached (after one it
                // refused) are removed one by one; the processed ones are
                // not removed again (their R and C came back already).
                Ok(res) => {
                    for (&(p, c), r) in chunk.iter().zip(res) {
                        out.push(match r {
                            Some(r) => r.map(|(referenced, changed)| RefChange {
                                referenced,
                                changed,
                            }),
                            None => self.remove(p, c).map(RefChange::of),
                        });
                    }
                }
                // Refused before any hcall: one by one, so each request
                // gets its own answer.
                Err(_) => out.extend(
                    chunk
                        .iter()
                        .map(|&(p, c)| self.remove(p, c).map(RefChange::of)),
                ),
            }
        }
        out
    }

    /// Two `H_READ_4`s, made with as little around them as possible:
    /// whole-table scans (`check_invariants`) read every group, and in an
    /// unoptimised build the general hcall path costs several times the
    /// hcall itself. A group no `H_ENTER` named is answered without
    /// asking ([`PaprHpt::track_entered_groups`]).
    fn known_empty_groups(&self, group: PtegIndex) -> u64 {
        never_entered_run(group.as_u64()).min(self.ptegs.saturating_sub(group.as_u64()))
    }

    fn read_group(&self, group: PtegIndex) -> Result<[Hpte; 8], HptError> {
        if group.as_u64() >= self.ptegs {
            return Err(HptError::Parameter);
        }
        if let Some(p) = pristine_if_never_entered(group.as_u64()) {
            return Ok([p; 8]);
        }
        let first = group.ptex(0).as_u64();
        let mut out = [Hpte::EMPTY; 8];
        for half in 0..2 {
            let args = [flags::H_READ_4, first + 4 * half, 0, 0, 0, 0, 0, 0, 0];
            // SAFETY: H_READ only copies HPT entries into registers.
            let (status, r) = unsafe { hcall::hcall_raw(opcode::H_READ, args) };
            if let Some(e) = PaprError::from_code(status) {
                return Err(hpt_error(e));
            }
            for i in 0..4 {
                out[4 * half as usize + i] = Hpte {
                    v: r[2 * i],
                    r: r[2 * i + 1],
                };
            }
        }
        Ok(out)
    }

    fn read(&self, ptex: Ptex) -> Result<Hpte, HptError> {
        self.check(ptex)?;
        if let Some(p) = pristine_if_never_entered(ptex.pteg().as_u64()) {
            return Ok(p);
        }
        // SAFETY: H_READ only copies an HPT entry into registers.
        let (status, out) =
            unsafe { hcall::hcall_raw(opcode::H_READ, args4(0, ptex.as_u64(), 0, 0)) };
        check(status)?;
        Ok(Hpte {
            v: out[0],
            r: out[1],
        })
    }
}
