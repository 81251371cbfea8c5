//! Seeded random system calls from problem state.
//!
//! Several processes each run a script of a few hundred system calls drawn
//! by a seeded generator: every number the kernel dispatches (the AIX
//! services directly and through `in_interrupt`, `kread`/`kwrite`, fork,
//! wait, yield, report, getpid) and numbers it does not, with arguments
//! aimed at kernel space, unmapped and misaligned addresses, sizes 0, 1
//! and huge, malformed, stale and forged handles, and segments, slots and
//! memory of another live process (the *victim*, which checks at the end
//! that its memory and its `vm_att` slot are as it left them). Values the
//! services return at run time (allocations, vmids, handles, addresses)
//! go into agent variables and are fed to later calls, offset and
//! misaligned.
//!
//! Every call is recorded; the test checks each result against what the
//! generator knows: a value of the right shape or an errno from the
//! call's own set, exactly `-EINVAL` or `-ENOSYS` where the arguments
//! decide it, the exact value where there is one. No process is killed
//! (no call makes a process fault; a bad pointer is an error answer), the
//! VMM's invariants hold, and once the processes have exited and the
//! global objects they made are freed, frames, SIDs, HPTEs, address
//! spaces and the services' bookkeeping are back to where they were.
//!
//! What the generator keeps away from, because it would be the process's
//! own doing rather than the kernel's: `as_seth64` over its own text,
//! data or stack in a 64-bit process (that replaces them), and
//! `vm_att_rw` stores into the first 64 KiB of a segment (the agent's
//! variables, results and script when the handle names its own data
//! segment). `exit` is the last call of each script and of each forked
//! child.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use arch_ppc64::addr::Esid;
use vmm::aix::{
    vm_handle, AddressModel, Bookkeeping, Space, VmHandle, INVLSID, SEGSIZE, SHMAT_BASE_ESID,
    SIDMAX, USER_ADDR_END_32, USER_ADDR_END_64, VM_PRIV, VM_UNPRIV, VU_ANYWHERE, V_NOEXEC,
    V_SYSTEM, V_UREAD, V_WORKING,
};
use vmm::platform::{Environment, ProcessId};
use vmm::segment::SegmentKind;

use crate::mm;
use crate::proc::{self, syscall as sys, Exit, Outcome, RunReport};
use crate::user::{self, v, Operand, Script};

/// SplitMix64: a 64-bit state advanced by the golden-ratio increment and
/// finalised by two xor-shift-multiply rounds (Steele, Lea and Flood,
/// "Fast splittable pseudorandom number generators", OOPSLA 2014).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

const EINVAL: u64 = sys::EINVAL;
const ENOMEM: u64 = sys::ENOMEM;
const ENOSPC: u64 = sys::neg(28);
const EFAULT: u64 = sys::EFAULT;

const KERNEL: u64 = crate::bootinfo::KERNEL_VIRT_BASE;
const GALLOC: u64 = 0xF100_0000_0000_0000;
const VMATT: u64 = 0xF200_0000_0000_0000;
const SHMAT: u64 = SHMAT_BASE_ESID << 28;
const PAGE: u64 = 4096;

// Agent variables by role (what the value in them came from).
const V_GALLOC: [u8; 2] = [0, 1];
const V_VMID: [u8; 2] = [2, 3];
const V_HANDLE: [u8; 2] = [4, 5];
/// Handles `as_geth*`/`as_getsrval*` answered (kept apart from
/// `vm_handle`'s, which they would mostly overwrite with errors).
const V_GOT: [u8; 2] = [9, 10];
const V_ANY_HANDLE: [u8; 4] = [4, 5, 9, 10];
const V_UADDR: [u8; 2] = [6, 7];
const V_VMATT: u8 = 8;

/// Offsets of a `vm_att_rw` store: at or beyond 64 KiB within the
/// segment (after `vm_att` keeps the low 28 bits), or refused before any
/// store (misaligned).
const RW_OFFSETS: [u64; 9] = [
    0x1_0000,
    0x1_0008,
    0xf_fff8,
    0x10_0000,
    0x1000_0000 + 0x2_0000,
    SEGSIZE - 8,
    0x1_0003,
    0x1,
    u64::MAX,
];

/// What a call must answer.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Exactly this.
    Is(u64),
    /// The process's own pid.
    Pid,
    /// `ok` or one of the errors.
    OkOr(u64, &'static [u64]),
    /// A value of this shape or one of the errors.
    Shape(Shape, &'static [u64]),
    /// One of the errors.
    Fails(&'static [u64]),
    /// A child's pid or `-ENOMEM`/`-EINVAL`.
    Fork,
    /// `-ECHILD` or the status of one of the process's children.
    Wait,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// A `vm_galloc` address: a segment boundary in the galloc range.
    Galloc,
    /// A `vm_att` slot address.
    VmAtt,
    /// A user address in the process's attach area.
    User,
    /// A vmid (a SID).
    Vmid,
    /// A well-formed handle.
    Handle,
    /// An `adspace_t` allocation mask.
    AdspMask,
    /// Any value outside the errno range.
    Value,
}

/// One generated call: what was passed and what it must answer.
#[derive(Clone, Copy, Debug)]
struct Call {
    nr: u64,
    args: [Operand; 6],
    expect: Expect,
}

/// What the generator knows about the world outside the process.
struct World {
    /// The victim's text, data and stack SIDs (live for the whole run).
    victim_sids: [u64; 3],
    /// The victim's `vm_att` slot address.
    victim_slot: u64,
    /// Private SIDs of fuzzers spawned earlier (they may have ended).
    other_sids: Vec<u64>,
    /// A SID whose segment was deleted before the run (may be reused).
    stale_sid: u64,
    /// The test's flag allocation (global memory the victim watches).
    flags: u64,
    /// The SID of the flag allocation's segment.
    flags_sid: u64,
    /// Live SIDs no call can delete (views and `vm_galloc` segments) at
    /// generation time; a view may go and its SID come back as anything.
    live_sids: Vec<u64>,
    /// Allocations the generator never names by address (those from
    /// before the test, and the flag allocation): freeing one would be
    /// the test's doing, not the kernel's.
    kept: Vec<(u64, u64)>,
}

impl World {
    fn kept(&self, kaddr: u64) -> bool {
        self.kept
            .iter()
            .any(|&(start, bytes)| (start..start + bytes).contains(&kaddr))
    }
}

struct Gen<'w> {
    rng: Rng,
    world: &'w World,
    model: AddressModel,
    index: u64,
    script: Script,
    calls: Vec<Call>,
    reports: Vec<u64>,
    child_statuses: Vec<u64>,
    /// The size each galloc variable was allocated with, as the generator
    /// asked for it.
    galloc_size: [u64; 2],
    /// The last `vm_guatt` kept: (kaddr, size, variable of the address).
    last_guatt: Option<(Operand, u64, u8)>,
    /// This call draws plausible arguments (values the services handed
    /// out, valid keys, flags and sizes) rather than adversarial ones.
    sane: bool,
}

fn lit(x: u64) -> Operand {
    x.into()
}

fn is_lit(o: Operand) -> bool {
    o.var.is_none()
}

/// Literal `c_int` flags `vm_galloc`/`vms_create` accept.
fn type_ok(t: u64) -> bool {
    let t = t as i32;
    let known = V_WORKING | V_SYSTEM | V_UREAD | V_NOEXEC;
    t & V_WORKING != 0 && t & !known == 0
}

/// A size the services take (EINVAL only for `size <= 0`; any positive
/// one is either satisfied or refused for want of room).
fn size_ok(size: u64) -> bool {
    size as i64 > 0
}

fn handle_malformed(h: u64) -> bool {
    VmHandle::from_raw(h).is_err()
}

const SERVICES: [u64; 22] = [
    sys::VM_GALLOC,
    sys::VM_GFREE,
    sys::VM_GUATT,
    sys::VM_GUDET,
    sys::VM_ATT,
    sys::VM_DET,
    sys::VM_ATT_RW,
    sys::VM_HANDLE,
    sys::GETADSP,
    sys::AS_ATT,
    sys::AS_DET,
    sys::AS_GETH,
    sys::AS_PUTH,
    sys::AS_GETSRVAL,
    sys::AS_ATT64,
    sys::AS_DET64,
    sys::AS_SETH64,
    sys::AS_GETH64,
    sys::AS_PUTH64,
    sys::AS_GETSRVAL64,
    sys::VMS_CREATE,
    sys::VMS_DELETE,
];

/// Numbers the kernel does not dispatch (the dispatcher compares all 64
/// bits, so a service number with high bits set is one of them).
fn unknown_nr(rng: &mut Rng) -> u64 {
    match rng.below(6) {
        0 => 9 + rng.below(7),
        1 => 38 + rng.below(30),
        2 => rng.pick(&[
            u64::MAX,
            1 << 63,
            (1 << 32) | sys::VM_GALLOC,
            0x100 | sys::EXIT,
        ]),
        3 => rng.pick(&[100, 999, 0xffff, 0xc00]),
        _ => rng.next() | 0x100,
    }
}

fn is_service(nr: u64) -> bool {
    SERVICES.contains(&nr)
}

impl Gen<'_> {
    fn addr_end(&self) -> u64 {
        match self.model {
            AddressModel::Bits64 => USER_ADDR_END_64,
            AddressModel::Bits32 => USER_ADDR_END_32,
        }
    }

    fn var(&mut self, roles: &[u8]) -> u8 {
        self.rng.pick(roles)
    }

    /// Offsets added to a variable: none, small, misaligned, a page, far.
    fn var_offset(&mut self) -> u64 {
        if self.sane {
            return self.rng.pick(&[0, 0, 0, 8, PAGE]);
        }
        if self.rng.percent(50) {
            return 0;
        }
        self.rng
            .pick(&[8, 1, 3, 0x7, PAGE, PAGE + 8, 0xfff_fff8, (-8i64) as u64])
    }

    /// A kernel address for `kread`/`kwrite`/`vm_gfree`/`vm_guatt`.
    /// `(operand, a literal outside the galloc range)`.
    fn kaddr(&mut self) -> (Operand, bool) {
        let r = self.rng.below(100);
        if self.sane || r < 55 {
            let k = self.var(&V_GALLOC);
            let off = self.var_offset();
            return (v(k, off), false);
        }
        if r < 63 {
            // The galloc range: another fuzzer's allocation, or nothing.
            let mut k = self.rng.below(8);
            while self.world.kept(GALLOC + (k << 28)) {
                k += 1;
            }
            let off = self.rng.pick(&[0, 8, 3, PAGE]);
            return (lit(GALLOC + (k << 28) + off), false);
        }
        let x = match self.rng.below(12) {
            0 => KERNEL,
            1 => KERNEL + 0x40_0000,
            2 => KERNEL + 0x1000_0008,
            3 => VMATT + (self.rng.below(16) << 28),
            4 => self
                .rng
                .pick(&[0, 8, user::DATA_BASE, user::SCRATCH_BASE, user::TEXT_BASE]),
            5 => self
                .rng
                .pick(&[u64::MAX, u64::MAX - 7, 1 << 63, (1 << 63) - 8]),
            6 => SHMAT + self.rng.below(4) * SEGSIZE,
            7 => self.rng.next() & !7,
            8 => self.rng.next(),
            9 => 0x0000_5000_0000_0000,
            10 => GALLOC - 8,
            _ => GALLOC + (4096 << 28),
        };
        (lit(x), !(GALLOC..GALLOC + (4096 << 28)).contains(&x))
    }

    /// A `kread`/`kwrite` address: `(operand, certainly refused)` (outside
    /// the galloc range or misaligned).
    fn kaddr_rw(&mut self) -> (Operand, bool) {
        let (a, outside) = self.kaddr();
        (a, outside || (is_lit(a) && a.value & 7 != 0))
    }

    /// A user address: one the services handed out, or adversarial.
    fn uaddr(&mut self) -> Operand {
        let r = self.rng.below(100);
        if (self.sane && r < 90) || r < 55 {
            let k = self.var(&V_UADDR);
            let off = self.var_offset();
            return v(k, off);
        }
        if r < 60 {
            let off = self.var_offset();
            return v(V_VMATT, off);
        }
        lit(self.uaddr_literal())
    }

    fn uaddr_literal(&mut self) -> u64 {
        match self.rng.below(14) {
            0 => user::TEXT_BASE,
            1 => user::DATA_BASE + self.rng.pick(&[0, 8, 3]),
            2 => user::STACK_BASE,
            3 => user::SCRATCH_BASE,
            4 => SHMAT + self.rng.below(6) * SEGSIZE + self.rng.pick(&[0, 8, 1]),
            5 => self.rng.below(16) << 28,
            6 => self
                .rng
                .pick(&[1 << 60, (1 << 60) - 8, 1 << 32, (1 << 32) - 8]),
            7 => GALLOC + (self.rng.below(4) << 28),
            8 => KERNEL + self.rng.pick(&[0, 0x40_0000]),
            9 => self.rng.pick(&[u64::MAX, 0, 1, 0x0000_5000_0000_0000]),
            10 => VMATT + (self.rng.below(16) << 28),
            11 => self.rng.next(),
            12 => self.rng.next() & 0x0fff_ffff_ffff_fff8,
            _ => self.rng.next() & 0xffff_ffff,
        }
    }

    /// A size: valid small ones, 0, 1, multi-segment, huge, negative.
    fn size(&mut self) -> u64 {
        if self.sane {
            return self
                .rng
                .pick(&[PAGE, PAGE, 2 * PAGE, 8, 0x1_1000, 0x10_0000]);
        }
        let r = self.rng.below(100);
        if r < 55 {
            return self
                .rng
                .pick(&[PAGE, PAGE, 2 * PAGE, 8, 1, 0x1_1000, 0x10_0000]);
        }
        if r < 60 {
            return self.rng.pick(&[SEGSIZE, SEGSIZE + PAGE, 3 * SEGSIZE]);
        }
        if r < 61 {
            // A whole galloc range's worth; rarely.
            return 1 << 40;
        }
        self.rng.pick(&[
            0,
            u64::MAX,
            (-4096i64) as u64,
            i64::MAX as u64,
            // Where rounding up to 4 KB no longer fits a vmsize_t.
            0x7fff_ffff_ffff_efff,
            0x7fff_ffff_ffff_f000,
            1 << 63,
            PAGE - 1,
            SEGSIZE - 1,
        ])
    }

    fn type_flags(&mut self) -> u64 {
        let w = V_WORKING as u64;
        if self.sane {
            return self
                .rng
                .pick(&[w, w, w | V_UREAD as u64, w | V_NOEXEC as u32 as u64]);
        }
        self.rng.pick(&[
            w,
            w,
            w | V_UREAD as u64,
            w | V_NOEXEC as u32 as u64,
            w | V_SYSTEM as u64,
            0,
            V_UREAD as u64,
            u64::MAX,
            w | 0x100,
            (0xffff_ffff << 32) | w,
            0x7fff_ffff,
        ])
    }

    fn key(&mut self) -> u64 {
        let r = self.rng.below(10);
        if self.sane || r < 8 {
            return self.rng.pick(&[VM_PRIV as u64, VM_UNPRIV as u64]);
        }
        self.rng.pick(&[2, u64::MAX, 1 << 32, 0x8000_0000])
    }

    fn flags(&mut self) -> u64 {
        if self.sane || self.rng.percent(85) {
            return VU_ANYWHERE as u64;
        }
        self.rng.pick(&[0, 1, 3, u64::MAX, 1 << 32 | 2])
    }

    /// A vmid: one a call returned, another process's private segment, a
    /// view or `vm_galloc` segment, a deleted one, or out of range.
    /// `(operand, certainly not a vms_create segment)`.
    fn vmid(&mut self) -> (Operand, bool) {
        let r = self.rng.below(100);
        if (self.sane && r < 90) || r < 60 {
            let k = self.var(&V_VMID);
            return (v(k, 0), false);
        }
        let w = self.world;
        let (x, never) = match self.rng.below(9) {
            0 | 1 => (self.rng.pick(&w.victim_sids), true),
            2 => (w.flags_sid, true),
            3 if !w.other_sids.is_empty() => (self.rng.pick(&w.other_sids), false),
            4 if !w.live_sids.is_empty() => (self.rng.pick(&w.live_sids), false),
            5 => (w.stale_sid, false),
            6 => (
                self.rng.pick(&[u64::MAX, SIDMAX, SIDMAX - 1, 1 << 40]),
                true,
            ),
            _ => (self.rng.pick(&[0, 1, 2, 3]), false),
        };
        (lit(x), never)
    }

    /// A handle. `(operand, kind)`.
    fn handle(&mut self) -> (Operand, HandleKind) {
        let r = self.rng.below(100);
        if (self.sane && r < 90) || r < 60 {
            let k = self.var(&V_ANY_HANDLE);
            return (v(k, 0), HandleKind::Unknown);
        }
        if r < 64 {
            // A vmid where a handle belongs.
            let k = self.var(&V_VMID);
            return (v(k, 0), HandleKind::Unknown);
        }
        let key = self.rng.pick(&[VM_PRIV, VM_UNPRIV]);
        let h = |sid: u64| {
            vm_handle(sid as i64, key)
                .expect("a SID below SIDMAX")
                .raw()
        };
        let w = self.world;
        match self.rng.below(8) {
            0 | 1 => (lit(h(self.rng.pick(&w.victim_sids))), HandleKind::Foreign),
            2 if !w.other_sids.is_empty() => {
                (lit(h(self.rng.pick(&w.other_sids))), HandleKind::Unknown)
            }
            3 => (lit(h(w.stale_sid)), HandleKind::Unknown),
            4 if !w.live_sids.is_empty() => {
                (lit(h(self.rng.pick(&w.live_sids))), HandleKind::Unknown)
            }
            5 => {
                let junk = self.rng.next();
                let x = self
                    .rng
                    .pick(&[INVLSID, u64::MAX, 0x1ff, h(w.flags_sid) | 1, junk]);
                let kind = if handle_malformed(x) {
                    HandleKind::Malformed
                } else {
                    HandleKind::Unknown
                };
                (lit(x), kind)
            }
            _ => (lit(h(w.flags_sid)), HandleKind::Galloc),
        }
    }

    /// A value to store: never in the errno range, so a load of it cannot
    /// pass for an error.
    fn value(&mut self) -> u64 {
        let x = match self.rng.below(4) {
            0 => self.rng.pick(&[0, 1, 0x5a5a_5a5a_5a5a_5a5a, 1 << 63]),
            _ => self.rng.next(),
        };
        if sys::is_error(x) {
            x & !(1 << 40)
        } else {
            x
        }
    }

    fn push(&mut self, nr: u64, args: [Operand; 6], expect: Expect) {
        self.script.syscall(nr, &args);
        self.calls.push(Call { nr, args, expect });
    }

    /// Keeps the last result in one of `roles` (most of the time).
    fn keep(&mut self, roles: &[u8]) -> Option<u8> {
        if self.rng.percent(75) {
            let k = self.var(roles);
            self.script.save(k);
            Some(k)
        } else {
            None
        }
    }

    /// The arguments and expectation of service `nr` (`in_interrupt`
    /// moves them by one and changes the expectation).
    fn service(&mut self, nr: u64) -> ([Operand; 6], Expect) {
        let z = lit(0);
        let ad = self.addr_end();
        match nr {
            sys::VM_GALLOC => {
                let (t, s) = (self.type_flags(), self.size());
                let e = if !type_ok(t) || !size_ok(s) {
                    Expect::Fails(&[EINVAL])
                } else {
                    Expect::Shape(Shape::Galloc, &[ENOMEM, ENOSPC])
                };
                ([lit(t), lit(s), z, z, z, z], e)
            }
            sys::VM_GFREE => {
                let (a, s, never) = if self.rng.percent(60) {
                    let i = self.rng.below(2) as usize;
                    let size = if self.rng.percent(80) {
                        self.galloc_size[i]
                    } else {
                        self.size()
                    };
                    (v(V_GALLOC[i], 0), size, false)
                } else if self.rng.percent(20) {
                    // The flag allocation, with a size that is not its own.
                    (
                        lit(self.world.flags),
                        self.rng.pick(&[2 * PAGE, SEGSIZE, 0, 1 << 40]),
                        true,
                    )
                } else {
                    let (a, outside) = self.kaddr();
                    let unaligned = is_lit(a) && a.value & (SEGSIZE - 1) != 0;
                    (a, self.size(), outside || unaligned)
                };
                let e = if never {
                    Expect::Fails(&[EINVAL])
                } else {
                    Expect::OkOr(0, &[EINVAL])
                };
                ([a, lit(s), z, z, z, z], e)
            }
            sys::VM_GUATT => {
                let (a, never, s) = if self.rng.percent(40) {
                    // Part of one of its own allocations.
                    let i = self.rng.below(2) as usize;
                    let whole = self.galloc_size[i].max(1);
                    let off = self.rng.pick(&[0, 0, PAGE]) % whole;
                    let len = self.rng.pick(&[whole - off, PAGE, 8]);
                    (v(V_GALLOC[i], off), false, len)
                } else if self.rng.percent(10) {
                    (lit(self.world.flags), false, self.size())
                } else {
                    let (a, outside) = self.kaddr();
                    (a, outside, self.size())
                };
                let (k, f) = (self.key(), self.flags());
                let bad = never || f != VU_ANYWHERE as u64 || k > 1 || (s as i64) <= 0;
                let e = if bad {
                    Expect::Fails(&[EINVAL])
                } else {
                    Expect::Shape(Shape::User, &[EINVAL, ENOMEM])
                };
                ([a, lit(s), lit(k), lit(f), z, z], e)
            }
            sys::VM_GUDET => {
                let (a, u, s) = match self.last_guatt {
                    // The attachment made last, as it was made.
                    Some((a, s, k)) if self.rng.percent(50) => (a, v(k, 0), s),
                    _ => (self.kaddr().0, self.uaddr(), self.size()),
                };
                let f = self.flags();
                let e = if f != VU_ANYWHERE as u64 {
                    Expect::Fails(&[EINVAL])
                } else {
                    Expect::OkOr(0, &[EINVAL])
                };
                ([a, u, lit(s), lit(f), z, z], e)
            }
            sys::VM_ATT => {
                let (h, kind) = self.handle();
                let off = self.rng.pick(&[0, 8, 0x1000_0000, u64::MAX, 3]);
                let e = match kind {
                    HandleKind::Malformed | HandleKind::Foreign => Expect::Fails(&[EINVAL]),
                    _ => Expect::Shape(Shape::VmAtt, &[EINVAL, ENOMEM]),
                };
                ([h, lit(off), z, z, z, z], e)
            }
            sys::VM_DET => {
                let (a, e) = if self.rng.percent(50) {
                    let off = self.var_offset();
                    (v(V_VMATT, off), Expect::OkOr(0, &[EINVAL]))
                } else if self.rng.percent(30) {
                    // The victim's slot is not this process's to detach.
                    let off = self.rng.pick(&[0, 8, 0xfff_fff8]);
                    (lit(self.world.victim_slot + off), Expect::Fails(&[EINVAL]))
                } else {
                    let x = self.uaddr_literal();
                    let slots = VMATT..VMATT + (16 << 28);
                    let e = if slots.contains(&x) {
                        Expect::OkOr(0, &[EINVAL])
                    } else {
                        Expect::Fails(&[EINVAL])
                    };
                    (lit(x), e)
                };
                ([a, z, z, z, z, z], e)
            }
            sys::VM_ATT_RW => {
                let (h, kind) = self.handle();
                let off = if self.sane {
                    self.rng.pick(&RW_OFFSETS[..6])
                } else {
                    self.rng.pick(&RW_OFFSETS)
                };
                let val = self.value();
                let e = match kind {
                    HandleKind::Malformed | HandleKind::Foreign => Expect::Fails(&[EINVAL]),
                    _ if off & 7 != 0 => Expect::Fails(&[EINVAL, ENOMEM]),
                    _ => Expect::OkOr(val, &[EINVAL, ENOMEM, EFAULT]),
                };
                ([h, lit(off), lit(val), z, z, z], e)
            }
            sys::VM_HANDLE => {
                let (id, _) = self.vmid();
                let key = self.key();
                let e = if is_lit(id) {
                    match vm_handle(id.value as i64, key as core::ffi::c_long) {
                        Ok(h) => Expect::Is(h.raw()),
                        Err(_) => Expect::Is(EINVAL),
                    }
                } else {
                    Expect::Shape(Shape::Handle, &[EINVAL])
                };
                ([id, lit(key), z, z, z, z], e)
            }
            sys::GETADSP => ([z; 6], Expect::Shape(Shape::AdspMask, &[])),
            sys::AS_ATT | sys::AS_ATT64 => {
                let (h, kind) = self.handle();
                let off = self.rng.pick(&[0, 8, 0x40, 0xfff_fff8, u64::MAX, 3]);
                let e = match kind {
                    HandleKind::Malformed | HandleKind::Foreign | HandleKind::Galloc => {
                        Expect::Fails(&[EINVAL])
                    }
                    HandleKind::Unknown => Expect::Shape(Shape::User, &[EINVAL, ENOMEM]),
                };
                ([h, lit(off), z, z, z, z], e)
            }
            sys::AS_DET => {
                let a = self.uaddr();
                let sr = (a.value >> 28) & 0xf;
                let e = if is_lit(a) && matches!(sr, 0 | 1 | 2 | 14) {
                    Expect::Fails(&[EINVAL])
                } else {
                    Expect::OkOr(0, &[EINVAL])
                };
                ([a, z, z, z, z, z], e)
            }
            sys::AS_GETH | sys::AS_GETSRVAL => {
                let a = self.uaddr();
                ([a, z, z, z, z, z], Expect::Shape(Shape::Handle, &[EINVAL]))
            }
            sys::AS_PUTH => {
                let (h, kind) = self.handle();
                let e = if kind == HandleKind::Malformed {
                    Expect::Fails(&[EINVAL])
                } else {
                    Expect::OkOr(0, &[EINVAL])
                };
                ([h, z, z, z, z, z], e)
            }
            sys::AS_DET64 => {
                let a = self.uaddr();
                // Text and data are never regions (the stack may have been
                // replaced by as_seth64 in a 64-bit process).
                let esid = a.value >> 28;
                let private =
                    matches!(esid, 1 | 2) || (esid == 14 && self.model == AddressModel::Bits32);
                let e = if is_lit(a) && (a.value >= ad || private) {
                    Expect::Fails(&[EINVAL])
                } else {
                    Expect::OkOr(0, &[EINVAL])
                };
                ([a, z, z, z, z, z], e)
            }
            sys::AS_SETH64 => {
                let bits64 = self.model == AddressModel::Bits64;
                let mut a = if self.sane && self.rng.percent(60) {
                    // A segment of the attach area (free or not).
                    let k = self.rng.below(8);
                    lit(match self.model {
                        AddressModel::Bits64 => SHMAT + (k << 28),
                        AddressModel::Bits32 => (3 + k) << 28,
                    })
                } else if self.rng.percent(40) {
                    // Small forward offsets only: a variable holds a region
                    // address (ESID 3 or above), 0 or -errno, so this
                    // reaches at most the next segment, never the
                    // process's text or data (its stack may go: the agent
                    // does not use it after entry).
                    let k = self.var(&V_UADDR);
                    v(k, self.rng.pick(&[0, 8, 1, 3, PAGE]))
                } else {
                    lit(self.uaddr_literal())
                };
                let own = |x: u64| matches!(x >> 28, 1 | 2 | 14);
                if bits64 && is_lit(a) && own(a.value) {
                    // Replacing its own text, data or stack is the
                    // process's own doing; go next door instead.
                    a.value += 2 * SEGSIZE;
                }
                let reserved = |x: u64| x >> 28 < 16 && matches!((x >> 28) & 0xf, 0 | 1 | 2 | 14);
                let (h, kind) = self.handle();
                let e = if (is_lit(a) && (a.value >= ad || (!bits64 && reserved(a.value))))
                    || matches!(
                        kind,
                        HandleKind::Malformed | HandleKind::Foreign | HandleKind::Galloc
                    ) {
                    Expect::Fails(&[EINVAL])
                } else {
                    Expect::OkOr(0, &[EINVAL, ENOMEM])
                };
                ([a, h, z, z, z, z], e)
            }
            sys::AS_GETH64 | sys::AS_GETSRVAL64 => {
                let a = self.uaddr();
                let e = if is_lit(a) && a.value >= ad {
                    Expect::Fails(&[EINVAL])
                } else {
                    Expect::Shape(Shape::Handle, &[EINVAL])
                };
                ([a, z, z, z, z, z], e)
            }
            sys::AS_PUTH64 => {
                let a = self.uaddr();
                let (h, kind) = self.handle();
                let e = if (is_lit(a) && a.value >= ad) || kind == HandleKind::Malformed {
                    Expect::Fails(&[EINVAL])
                } else {
                    Expect::OkOr(0, &[EINVAL])
                };
                ([a, h, z, z, z, z], e)
            }
            sys::VMS_CREATE => {
                let t = self.type_flags();
                let s = self.size();
                let e = if !type_ok(t) || !size_ok(s) || s > SEGSIZE {
                    Expect::Fails(&[EINVAL])
                } else {
                    Expect::Shape(Shape::Vmid, &[ENOMEM])
                };
                ([lit(t), lit(s), z, z, z, z], e)
            }
            sys::VMS_DELETE => {
                let (id, never) = self.vmid();
                let e = if never {
                    Expect::Fails(&[EINVAL])
                } else {
                    Expect::OkOr(0, &[EINVAL])
                };
                ([id, z, z, z, z, z], e)
            }
            _ => unreachable!("not a service: {nr}"),
        }
    }

    /// Where a service's result is kept.
    fn roles_of(nr: u64) -> &'static [u8] {
        match nr {
            sys::VM_GALLOC => &V_GALLOC,
            sys::VMS_CREATE => &V_VMID,
            sys::VM_HANDLE => &V_HANDLE,
            sys::AS_GETH | sys::AS_GETSRVAL | sys::AS_GETH64 | sys::AS_GETSRVAL64 => &V_GOT,
            sys::VM_GUATT | sys::AS_ATT | sys::AS_ATT64 => &V_UADDR,
            sys::VM_ATT => &[V_VMATT],
            _ => &[],
        }
    }

    fn one_call(&mut self) {
        let z = lit(0);
        self.sane = self.rng.percent(50);
        let r = self.rng.below(1000);
        if r < 680 {
            let nr = self.rng.pick(&SERVICES);
            let (args, e) = self.service(nr);
            self.push(nr, args, e);
            let roles = Self::roles_of(nr);
            if !roles.is_empty() && !matches!(e, Expect::Fails(_) | Expect::Is(EINVAL)) {
                if let Some(k) = self.keep(roles) {
                    if nr == sys::VM_GALLOC {
                        let i = V_GALLOC
                            .iter()
                            .position(|&x| x == k)
                            .expect("a galloc variable");
                        self.galloc_size[i] = args[1].value;
                    }
                    if nr == sys::VM_GUATT {
                        self.last_guatt = Some((args[0], args[1].value, k));
                    }
                }
            }
        } else if r < 780 {
            self.in_interrupt();
        } else if r < 820 {
            let (a, never) = self.kaddr_rw();
            let e = if never {
                Expect::Fails(&[EINVAL])
            } else {
                Expect::Shape(Shape::Value, &[EINVAL])
            };
            self.push(sys::KREAD, [a, z, z, z, z, z], e);
        } else if r < 860 {
            let (a, never) = self.kaddr_rw();
            let val = self.value();
            let e = if never {
                Expect::Fails(&[EINVAL])
            } else {
                Expect::OkOr(0, &[EINVAL])
            };
            self.push(sys::KWRITE, [a, lit(val), z, z, z, z], e);
        } else if r < 905 {
            let nr = unknown_nr(&mut self.rng);
            let args = [(); 6].map(|_| lit(self.rng.next()));
            self.push(nr, args, Expect::Is(sys::ENOSYS));
        } else if r < 925 {
            let junk = [(); 6].map(|_| lit(self.rng.next()));
            self.push(sys::GETPID, junk, Expect::Pid);
        } else if r < 955 {
            self.push(sys::YIELD, [z; 6], Expect::Is(0));
        } else if r < 965 {
            let x = self.rng.next();
            self.reports.push(x);
            self.push(sys::REPORT, [lit(x), z, z, z, z, z], Expect::Is(0));
        } else if r < 973 {
            self.push(sys::FORK, [z; 6], Expect::Fork);
            let status = 0x4b1d_0000 | (self.index << 8) | self.child_statuses.len() as u64;
            self.child_statuses.push(status);
            let at = self.script.here();
            self.script.branch_ne(0u64, at + 2).exit(status);
        } else {
            self.push(sys::WAIT, [z; 6], Expect::Wait);
        }
    }

    /// `in_interrupt(nr, ...)`: the services that refuse the interrupt
    /// environment answer `-EINVAL`; `vm_att`, `vm_det`, `vm_att_rw`,
    /// `vm_handle` and (for a 32-bit space) `as_getsrval64` run.
    fn in_interrupt(&mut self) {
        let z = lit(0);
        let inner = if self.rng.percent(85) {
            self.rng.pick(&SERVICES)
        } else {
            self.rng.pick(&[
                sys::EXIT,
                sys::FORK,
                sys::KREAD,
                sys::IN_INTERRUPT,
                sys::YIELD,
                99,
            ])
        };
        if !is_service(inner) {
            self.push(
                sys::IN_INTERRUPT,
                [lit(inner), z, z, z, z, z],
                Expect::Is(sys::ENOSYS),
            );
            return;
        }
        let (a, e) = self.service(inner);
        let runs = matches!(
            inner,
            sys::VM_ATT | sys::VM_DET | sys::VM_ATT_RW | sys::VM_HANDLE
        ) || (inner == sys::AS_GETSRVAL64 && self.model == AddressModel::Bits32);
        let e = if runs { e } else { Expect::Fails(&[EINVAL]) };
        self.push(
            sys::IN_INTERRUPT,
            [lit(inner), a[0], a[1], a[2], a[3], a[4]],
            e,
        );
        if runs && inner == sys::VM_ATT && !matches!(e, Expect::Fails(_)) {
            self.keep(&[V_VMATT]);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HandleKind {
    /// Could be anything: the services decide.
    Unknown,
    /// `VmHandle::from_raw` refuses it.
    Malformed,
    /// Names another live process's private segment.
    Foreign,
    /// Names `vm_galloc` memory (not attachable to a process).
    Galloc,
}

/// A fuzzer's script and what each of its recorded results must be.
struct Plan {
    script: Script,
    calls: Vec<Call>,
    reports: Vec<u64>,
    child_statuses: Vec<u64>,
    status: u64,
    model: AddressModel,
}

/// Commands the script area holds.
const MAX_COMMANDS: usize = (user::SCRIPT_MAX_BYTES / user::CMD_BYTES) as usize;

fn plan(seed: u64, index: u64, model: AddressModel, calls: usize, world: &World) -> Plan {
    let mut g = Gen {
        rng: Rng(seed ^ index.wrapping_mul(0xa076_1d64_78bd_642f)),
        world,
        model,
        index,
        script: Script::new(),
        calls: Vec::new(),
        reports: Vec::new(),
        child_statuses: Vec::new(),
        galloc_size: [PAGE; 2],
        last_guatt: None,
        sane: false,
    };
    // Room for a call with its save or fork tail, and the two last commands.
    while g.calls.len() < calls && g.script.here() + 3 + 2 <= MAX_COMMANDS {
        g.one_call();
    }
    let status = 0x600d_0000 | index;
    g.push(
        sys::KWRITE,
        [
            lit(world.flags + 8 * index),
            lit(1),
            lit(0),
            lit(0),
            lit(0),
            lit(0),
        ],
        Expect::Is(0),
    );
    g.script.exit(status);
    Plan {
        script: g.script,
        calls: g.calls,
        reports: g.reports,
        child_statuses: g.child_statuses,
        status,
        model,
    }
}

/// The victim: sentinels in its own data and a `vm_att` slot of its own
/// data segment (attached for it before the run, so the slot's address is
/// known when the fuzzers' scripts are made); waits, yielding, until every
/// fuzzer has set its flag, then reads the sentinels back and detaches
/// its slot.
const SENTINELS: [u64; 2] = [0x5e47_1e10_0000_0001, 0x5e47_1e10_0000_0002];
const VICTIM_LIMIT: u64 = 200_000;

fn victim_script(flags: u64, fuzzers: u64, slot: u64) -> Script {
    let mut s = Script::new();
    s.store64(user::SCRATCH_BASE, SENTINELS[0])
        .store64(user::SCRATCH_BASE + 8, SENTINELS[1]);
    let mut give_up = Vec::new();
    for i in 0..fuzzers {
        let top = s.here();
        s.syscall(sys::YIELD, &[]).quiet().add_var(0, 1u64);
        give_up.push(s.here());
        s.branch_eq(VICTIM_LIMIT, 0)
            .syscall(sys::KREAD, &[lit(flags + 8 * i)])
            .quiet()
            .branch_eq(0u64, top);
    }
    s.load64(user::SCRATCH_BASE)
        .load64(user::SCRATCH_BASE + 8)
        .syscall(sys::VM_DET, &[lit(slot)])
        .exit(0u64);
    let end = s.here();
    for at in give_up {
        s.patch_target(at, end);
    }
    s.exit(0xdeadu64);
    s
}

/// Spawns the victim; returns its pid, its private SIDs and its slot.
fn spawn_victim(flags: u64, fuzzers: u64) -> (ProcessId, [u64; 3], u64) {
    // The slot is the first of the vm_att area; it must be free.
    let slots_free = mm::with_vmm(|vm| {
        (0..16).all(|k| {
            vm.kernel_space()
                .get(Esid::new((VMATT >> 28) + k))
                .is_none()
        })
    });
    assert!(slots_free, "a vm_att slot is in use before the run");
    let pid = proc::spawn(&victim_script(flags, fuzzers, VMATT)).expect("spawn the victim");
    let sids = private_sids(pid);
    let data = vm_handle(sids[1] as i64, VM_PRIV).expect("handle").raw();
    let slot = mm::with_aix(|a| {
        let was = a.vm().vmm().environment();
        a.vm_mut().set_environment(Environment::Process(pid));
        let slot = a.vm_att(data, 0);
        a.vm_mut().set_environment(was);
        slot
    })
    .expect("vm_att for the victim");
    assert_eq!(slot, VMATT);
    (pid, sids, slot)
}

/// The victim was not killed, and its memory and slot are as it left them.
fn check_victim(o: &Outcome) {
    assert_eq!(o.exit, Exit::Status(0), "the victim: {:?}", o.exit);
    let want = [SENTINELS[0], SENTINELS[1], SENTINELS[0], SENTINELS[1], 0];
    assert_eq!(o.results, want, "sentinels and slot intact");
}

/// What must come back after the run.
#[derive(Debug, PartialEq, Eq)]
struct Footprint {
    free_frames: u64,
    sids: usize,
    hptes: usize,
    spaces: usize,
    bookkeeping: Bookkeeping,
}

fn footprint() -> Footprint {
    let free_frames = crate::frame::with(|fa| fa.free_frames());
    mm::with_aix(|a| {
        let vmm = a.vm().vmm();
        Footprint {
            free_frames,
            sids: vmm.sids_in_use(),
            hptes: vmm.hptes_in_use(),
            spaces: vmm.spaces().count(),
            bookkeeping: a.bookkeeping(),
        }
    })
}

fn private_sids(pid: ProcessId) -> [u64; 3] {
    mm::with_aix(|a| {
        let id = a
            .vm()
            .space_id(Space::Process(pid))
            .expect("a live process");
        let sp = a.vm().vmm().space(id).expect("its space");
        [user::TEXT_BASE, user::DATA_BASE, user::STACK_BASE].map(|ea| {
            sp.get(Esid::new(ea >> 28))
                .expect("the agent's segment")
                .handle
                .sid()
                .as_u64()
        })
    })
}

fn name(nr: u64) -> &'static str {
    match nr {
        sys::EXIT => "exit",
        sys::GETPID => "getpid",
        sys::FORK => "fork",
        sys::WAIT => "wait",
        sys::YIELD => "yield",
        sys::REPORT => "report",
        sys::KREAD => "kread",
        sys::KWRITE => "kwrite",
        sys::IN_INTERRUPT => "in_interrupt",
        sys::VM_GALLOC => "vm_galloc",
        sys::VM_GFREE => "vm_gfree",
        sys::VM_GUATT => "vm_guatt",
        sys::VM_GUDET => "vm_gudet",
        sys::VM_ATT => "vm_att",
        sys::VM_DET => "vm_det",
        sys::VM_ATT_RW => "vm_att_rw",
        sys::VM_HANDLE => "vm_handle",
        sys::GETADSP => "getadsp",
        sys::AS_ATT => "as_att",
        sys::AS_DET => "as_det",
        sys::AS_GETH => "as_geth",
        sys::AS_PUTH => "as_puth",
        sys::AS_GETSRVAL => "as_getsrval",
        sys::AS_ATT64 => "as_att64",
        sys::AS_DET64 => "as_det64",
        sys::AS_SETH64 => "as_seth64",
        sys::AS_GETH64 => "as_geth64",
        sys::AS_PUTH64 => "as_puth64",
        sys::AS_GETSRVAL64 => "as_getsrval64",
        sys::VMS_CREATE => "vms_create",
        sys::VMS_DELETE => "vms_delete",
        _ => "unknown",
    }
}

fn errno_name(r: u64) -> &'static str {
    match r {
        EINVAL => "EINVAL",
        ENOMEM => "ENOMEM",
        ENOSPC => "ENOSPC",
        EFAULT => "EFAULT",
        sys::ENOSYS => "ENOSYS",
        sys::ECHILD => "ECHILD",
        _ => "other",
    }
}

fn shape_ok(shape: Shape, r: u64, model: AddressModel) -> bool {
    let esid = r >> 28;
    match shape {
        Shape::Galloc => r >> 56 == 0xF1 && r & (SEGSIZE - 1) == 0,
        Shape::VmAtt => (VMATT..VMATT + (16 << 28)).contains(&r),
        Shape::User => {
            let end = match model {
                AddressModel::Bits64 => USER_ADDR_END_64,
                AddressModel::Bits32 => USER_ADDR_END_32,
            };
            r < end && !matches!(esid, 0 | 1 | 2 | 14)
        }
        Shape::Vmid => r > 0 && r < SIDMAX,
        Shape::Handle => VmHandle::from_raw(r).is_ok(),
        Shape::AdspMask => r <= u32::MAX as u64,
        Shape::Value => !sys::is_error(r),
    }
}

/// Checks one result; `Err` says why it is wrong.
fn check(
    call: &Call,
    r: u64,
    pid: ProcessId,
    children: &[(u64, u64)],
    model: AddressModel,
) -> Result<(), String> {
    let ok = match call.expect {
        Expect::Is(x) => r == x,
        Expect::Pid => r == pid.0 as u64,
        Expect::OkOr(x, errs) => r == x || errs.contains(&r),
        Expect::Shape(s, errs) => {
            if sys::is_error(r) {
                errs.contains(&r)
            } else {
                shape_ok(s, r, model)
            }
        }
        Expect::Fails(errs) => errs.contains(&r),
        Expect::Fork => r == ENOMEM || r == EINVAL || children.iter().any(|&(p, _)| p == r),
        Expect::Wait => r == sys::ECHILD || children.iter().any(|&(_, st)| st == r),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("answered {r:#x}, expected {:?}", call.expect))
    }
}

/// Per system call: successes, and errors by errno.
#[derive(Default)]
struct Histogram {
    by_call: BTreeMap<String, (u64, BTreeMap<&'static str, u64>)>,
    total: u64,
    ok: u64,
}

impl Histogram {
    fn add(&mut self, call: &Call, r: u64) {
        let n = if call.nr == sys::IN_INTERRUPT {
            format!("in_interrupt({})", name(call.args[0].value))
        } else {
            String::from(name(call.nr))
        };
        let e = self.by_call.entry(n).or_default();
        self.total += 1;
        if sys::is_error(r) {
            *e.1.entry(errno_name(r)).or_default() += 1;
        } else {
            e.0 += 1;
            self.ok += 1;
        }
    }

    /// Prints the totals and errors, and with `per_call` a line per
    /// system call.
    fn print(&self, per_call: bool) {
        println!(
            "\n  {} calls: {} succeeded, {} failed",
            self.total,
            self.ok,
            self.total - self.ok
        );
        let mut errs: BTreeMap<&'static str, u64> = BTreeMap::new();
        for (n, (ok, by)) in &self.by_call {
            let mut line = format!("    {n:<28} ok {ok:>4}");
            for (e, c) in by {
                line += &format!("  {e} {c}");
                *errs.entry(e).or_default() += c;
            }
            if per_call {
                println!("{line}");
            }
        }
        let mut line = String::from("    errors:");
        for (e, c) in &errs {
            line += &format!(" {e} {c}");
        }
        println!("{line}");
    }
}

/// Spawns the victim and `models.len()` fuzzers, runs them, checks every
/// result and the footprint; returns the number of random calls.
fn fuzz(seed: u64, models: &[AddressModel], calls_each: usize) -> u64 {
    let before = footprint();
    let heap_before = crate::heap::free();
    let mut kept: Vec<(u64, u64)> =
        mm::with_aix(|a| a.allocations().map(|x| (x.start, x.bytes)).collect());
    let allocations_before: Vec<u64> = kept.iter().map(|&(start, _)| start).collect();

    let flags = mm::with_aix(|a| a.vm_galloc(V_WORKING, PAGE as i64)).expect("flag allocation");
    kept.push((flags, PAGE));
    let flags_sid = mm::with_aix(|a| {
        a.allocations()
            .find(|x| x.start == flags)
            .expect("the flag allocation")
            .sids[0]
            .as_u64()
    });
    let stale_sid = mm::with_aix(|a| {
        let id = a.vms_create(V_WORKING, PAGE as i64).expect("vms_create");
        a.vms_delete(id).expect("vms_delete");
        id as u64
    });
    let fuzzers = models.len() as u64;
    let (victim_pid, victim_sids, victim_slot) = spawn_victim(flags, fuzzers);
    let live_sids = mm::with_aix(|a| {
        let galloc = a
            .allocations()
            .flat_map(|x| x.sids.iter().map(|s| s.as_u64()));
        let views = a
            .vm()
            .vmm()
            .segments()
            .iter()
            .filter_map(|s| match s.kind() {
                SegmentKind::View { .. } => Some(s.sid().as_u64()),
                SegmentKind::Working => None,
            });
        galloc.chain(views).collect::<Vec<_>>()
    });
    let mut world = World {
        victim_sids,
        victim_slot,
        other_sids: Vec::new(),
        stale_sid,
        flags,
        flags_sid,
        live_sids,
        kept,
    };
    let mut plans = Vec::new();
    let mut pids = Vec::new();
    for (i, &model) in models.iter().enumerate() {
        let p = plan(seed, i as u64, model, calls_each, &world);
        let pid = proc::spawn_with_model(&p.script, model).expect("spawn a fuzzer");
        world.other_sids.extend(private_sids(pid));
        plans.push(p);
        pids.push(pid);
    }

    let level = log::max_level();
    // The refused calls log a line each (warnings and errors the services
    // write for a caller's mistakes); thousands of them would only slow
    // the console down.
    log::set_max_level(log::LevelFilter::Off);
    let report: RunReport = proc::run();
    log::set_max_level(level);

    check_victim(report.of(victim_pid));

    let mut hist = Histogram::default();
    let mut failures = Vec::new();
    let mut vmids = Vec::new();
    for (i, (p, &pid)) in plans.iter().zip(&pids).enumerate() {
        let o = report.of(pid);
        assert_eq!(
            o.exit,
            Exit::Status(p.status),
            "fuzzer {i} (pid {}): {:?}",
            pid.0,
            o.exit
        );
        assert_eq!(
            o.result_count,
            p.calls.len() as u64,
            "fuzzer {i}: every call recorded"
        );
        assert_eq!(o.reports, p.reports, "fuzzer {i}: reports");
        let children: Vec<(u64, u64)> = report
            .children_of(pid)
            .iter()
            .map(|c| (c.pid.0 as u64, c.status().unwrap_or(u64::MAX)))
            .collect();
        for c in report.children_of(pid) {
            let st = c.status();
            assert!(
                st.is_some_and(|s| p.child_statuses.contains(&s)),
                "fuzzer {i}: child {} ended {:?}",
                c.pid.0,
                c.exit
            );
        }
        for (k, (call, &r)) in p.calls.iter().zip(&o.results).enumerate() {
            hist.add(call, r);
            if let Err(why) = check(call, r, pid, &children, p.model) {
                failures.push(format!(
                    "fuzzer {i} (seed {seed:#x}, {:?}) call {k}: {}({:x?}) {why}",
                    p.model,
                    name(call.nr),
                    call.args.map(|a| (a.var, a.value))
                ));
            }
            let created = call.nr == sys::VMS_CREATE && !sys::is_error(r);
            if created {
                vmids.push(r);
            }
        }
    }
    hist.print(!failures.is_empty());
    let hz = crate::bootinfo::get()
        .cpu
        .timebase_frequency
        .map_or(512_000_000, u64::from);
    println!(
        "  seed {seed:#x}: {} processes, {} context switches, {} preemptions, {} system calls in {} ms",
        report.outcomes.len(),
        report.context_switches,
        report.preemptions,
        report.syscalls,
        report.ticks * 1000 / hz
    );
    for f in failures.iter().take(20) {
        println!("  {f}");
    }
    assert!(
        failures.is_empty(),
        "{} calls answered wrongly",
        failures.len()
    );

    mm::with_vmm(|vm| vm.check_invariants()).expect("VMM invariants after the run");
    // What the processes made that outlives them: allocations and vms
    // segments are global objects.
    mm::with_aix(|a| {
        let stale: Vec<(u64, u64)> = a.allocations().map(|x| (x.start, x.bytes)).collect();
        for (start, bytes) in stale {
            if !allocations_before.contains(&start) {
                a.vm_gfree(start, bytes as i64)
                    .expect("vm_gfree of a fuzzer's allocation");
            }
        }
        for id in vmids {
            let _ = a.vms_delete(id as i64);
        }
    });
    mm::with_vmm(|vm| vm.check_invariants()).expect("VMM invariants after the cleanup");
    assert_eq!(
        footprint(),
        before,
        "frames, SIDs, HPTEs, spaces and bookkeeping are back"
    );
    let total = hist.total;
    let report_processes = report.outcomes.len();
    drop((hist, plans, report, world));
    // The heap is back too, but for what is kept by design: each ended
    // process's emptied adspace_t (136 bytes and a pointer; a stale
    // pointer must never match a new process), and the SID allocator's
    // queues of released SIDs (up to REUSE_DEPTH eight-byte entries per
    // range, in a queue that may have twice the room). Anything kept per
    // process or per call beyond that would show.
    let processes = report_processes + 1;
    let by_design = 144 * processes + 2 * 2 * vmm::sid::REUSE_DEPTH * 8;
    let lost = heap_before.saturating_sub(crate::heap::free());
    assert!(
        lost <= by_design + (4 << 10),
        "{lost} bytes of heap not back ({by_design} kept by design)"
    );
    total
}

/// The seed of the test (any value works; a failure prints it).
const SEED: u64 = 0x6b66_757a_7a5f_0001;

kernel_test! {
    fn random_system_calls_answer_or_fail_and_leak_nothing() {
        use AddressModel::{Bits32, Bits64};
        let models = [Bits64, Bits64, Bits32, Bits64, Bits64, Bits32, Bits64, Bits64];
        let n = fuzz(SEED, &models, 400);
        assert!(n >= 3000, "{n} calls");
    }
}

kernel_test! {
    fn another_process_private_segments_are_refused_and_own_ones_are_not() {
        // A handle naming another live process's text, data or stack
        // (VM_HANDLE makes one from any vmid) is refused by every call
        // that would attach it or have the kernel access through it; the
        // same calls on the caller's own data segment work.
        let flags = mm::with_aix(|a| a.vm_galloc(V_WORKING, PAGE as i64)).expect("vm_galloc");
        let (victim_pid, sids, _) = spawn_victim(flags, 1);
        let h = |sid: u64| lit(vm_handle(sid as i64, VM_PRIV).expect("handle").raw());
        let mut s = Script::new();
        for &sid in &sids {
            s.syscall(sys::VM_ATT, &[h(sid), lit(0)])
                .syscall(sys::VM_ATT_RW, &[h(sid), lit(0x1_0000), lit(0xbad)])
                .syscall(sys::IN_INTERRUPT, &[lit(sys::VM_ATT_RW), h(sid), lit(0x1_0000), lit(0xbad)])
                .syscall(sys::AS_ATT, &[h(sid), lit(0)])
                .syscall(sys::AS_ATT64, &[h(sid), lit(0)])
                .syscall(sys::AS_SETH64, &[lit(SHMAT), h(sid)])
                .syscall(sys::VMS_DELETE, &[lit(sid)]);
        }
        s.syscall(sys::AS_GETSRVAL64, &[lit(user::SCRATCH_BASE)])
            .save(0)
            .syscall(sys::VM_ATT_RW, &[v(0, 0), lit(0x1_0008), lit(0x600d)])
            .load64(user::SCRATCH_BASE + 8)
            .syscall(sys::AS_ATT64, &[v(0, 0), lit(0x10)])
            .save(1)
            .load64(v(1, 0xfff8))
            .syscall(sys::AS_DET64, &[v(1, 0)])
            .syscall(sys::KWRITE, &[lit(flags), lit(1)])
            .exit(0u64);
        let pid = proc::spawn(&s).expect("spawn");
        let r = proc::run();
        check_victim(r.of(victim_pid));
        let o = r.of(pid);
        assert_eq!(o.exit, Exit::Status(0), "{:?}", o.exit);
        let refused = 7 * sids.len();
        assert_eq!(&o.results[..refused], &alloc::vec![EINVAL; refused][..]);
        let own = &o.results[refused..];
        assert!(!sys::is_error(own[0]), "own data handle {:#x}", own[0]);
        assert_eq!(&own[1..3], &[0x600d, 0x600d], "vm_att_rw wrote the caller's own data");
        assert!(!sys::is_error(own[3]), "as_att64 of its own data: {:#x}", own[3]);
        assert_eq!(&own[4..], &[0x600d, 0, 0], "its own data through the region; as_det64; kwrite");
        mm::with_aix(|a| a.vm_gfree(flags, PAGE as i64)).expect("vm_gfree");
    }
}
