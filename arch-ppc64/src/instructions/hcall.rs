//! PAPR hypervisor calls (`sc 1`), as implemented by QEMU's pseries
//! machine (`hw/ppc/spapr*.c`).
//!
//! ABI (PAPR §14.5.3, QEMU `emulate_spapr_hypercall`): r3 holds the opcode,
//! r4..r12 up to nine arguments; on return r3 holds the status and the
//! hypervisor has written its outputs over r4..r12. r0, r3..r12, CTR, XER
//! and CR are volatile across the call.
//!
//! Everything except `hcall` and `hcall_raw` (powerpc64 only) builds on every host:
//! opcodes, flags, [`PaprError`] and [`decode`] are tested there.

use core::fmt;

/// Hypercall opcodes (the value placed in r3), from QEMU
/// `include/hw/ppc/spapr.h`.
pub mod opcode {
    /// Remove (invalidate) one HPTE; returns its old contents in r4, r5.
    pub const H_REMOVE: u64 = 0x04;
    /// Insert an HPTE into a PTEG; returns the PTE index used in r4.
    pub const H_ENTER: u64 = 0x08;
    /// Read one HPTE (or four with [`super::flags::H_READ_4`]).
    pub const H_READ: u64 = 0x0c;
    /// Clear an HPTE's change bit (not implemented by QEMU under TCG).
    pub const H_CLEAR_MOD: u64 = 0x10;
    /// Clear an HPTE's reference bit (not implemented by QEMU under TCG).
    pub const H_CLEAR_REF: u64 = 0x14;
    /// Change an HPTE's PP, N and key bits.
    pub const H_PROTECT: u64 = 0x18;
    /// Set SPRG0 on behalf of the caller.
    pub const H_SET_SPRG0: u64 = 0x24;
    /// Zero or copy a page.
    pub const H_PAGE_INIT: u64 = 0x2c;
    /// Read characters from a virtual terminal.
    pub const H_GET_TERM_CHAR: u64 = 0x54;
    /// Write up to 16 characters to a virtual terminal.
    pub const H_PUT_TERM_CHAR: u64 = 0x58;
    /// XICS: end of interrupt; restores the CPPR from the XIRR's top byte
    /// that [`H_XIRR`] returned.
    pub const H_EOI: u64 = 0x64;
    /// XICS: sets this processor's current processor priority (0xff
    /// accepts every priority).
    pub const H_CPPR: u64 = 0x68;
    /// XICS: sets the MFRR of a processor (by interrupt server number);
    /// below its CPPR raises an inter-processor interrupt there, 0xff
    /// withdraws it.
    pub const H_IPI: u64 = 0x6c;
    /// XICS: accepts the highest-priority pending interrupt; returns the
    /// XIRR (old CPPR in the top byte, source in the low 24 bits, 2 for
    /// an IPI, 0 for none).
    pub const H_XIRR: u64 = 0x74;
    /// Register the Virtual Processor Area, dispatch trace log or SLB
    /// shadow buffer.
    pub const H_REGISTER_VPA: u64 = 0xdc;
    /// Give up the processor until an interrupt arrives.
    pub const H_CEDE: u64 = 0xe0;
    /// Give the rest of this processor's time slice to other virtual
    /// processors (target -1: any of them), for a processor that waits
    /// for another one.
    pub const H_CONFER: u64 = 0xe4;
    /// Remove up to four HPTEs in one call.
    pub const H_BULK_REMOVE: u64 = 0x124;
    /// Set processor mode resources (interrupt endianness, AIL, ...).
    pub const H_SET_MODE: u64 = 0x31c;
    /// Prepare a resize of the hashed page table.
    pub const H_RESIZE_HPT_PREPARE: u64 = 0x36c;
    /// Commit a prepared hashed page table resize.
    pub const H_RESIZE_HPT_COMMIT: u64 = 0x370;
    /// Register a process table (selects hash or radix on ISA 3.0).
    pub const H_REGISTER_PROC_TBL: u64 = 0x37c;
    /// QEMU's private hcall to enter RTAS: r4 = real address of the RTAS
    /// argument buffer.
    pub const KVMPPC_H_RTAS: u64 = 0xf000;
    /// QEMU's private hcall for the VOF client interface (only with
    /// `-M pseries,x-vof=on`).
    pub const KVMPPC_H_VOF_CLIENT: u64 = 0xf005;
}

/// Flag bits for the HPT hcalls (r4 of `H_ENTER`, `H_REMOVE`, `H_READ`,
/// `H_PROTECT`, `H_PAGE_INIT`), from QEMU `include/hw/ppc/spapr.h`. PAPR
/// numbers them like the ISA, bit 0 being the most significant: flag at
/// PAPR bit `n` is `1 << (63 - n)`.
pub mod flags {
    /// PAPR bit 16: the HPTE maps a large page.
    pub const H_LARGE_PAGE: u64 = 1 << 47;
    /// PAPR bit 24 (`H_ENTER`): use exactly the slot `ptex & 7` instead of
    /// the first free slot of the PTEG.
    pub const H_EXACT: u64 = 1 << 39;
    /// PAPR bit 25 (`H_ENTER`, `H_READ`): translate the real address
    /// (ignored by QEMU).
    pub const H_R_XLATE: u64 = 1 << 38;
    /// PAPR bit 26 (`H_READ`): read the four HPTEs starting at
    /// `ptex & !3` into r4..r11.
    pub const H_READ_4: u64 = 1 << 37;
    /// PAPR bit 32 (`H_REMOVE`, `H_PROTECT`): act only if the HPTE's AVPN
    /// (dword 0 without its low 7 bits) equals the given value.
    pub const H_AVPN: u64 = 1 << 31;
    /// PAPR bit 33 (`H_REMOVE`): act only if dword 0 AND the given value is
    /// zero (Linux uses it with the BOLTED bit to skip bolted entries).
    pub const H_ANDCOND: u64 = 1 << 30;
    /// PAPR bit 40: invalidate the instruction cache for the page.
    pub const H_ICACHE_INVALIDATE: u64 = 1 << 23;
    /// PAPR bit 41: synchronize the instruction cache with the data cache.
    pub const H_ICACHE_SYNCHRONIZE: u64 = 1 << 22;
    /// PAPR bit 48 (`H_ENTER`, `H_PAGE_INIT`): zero the page first
    /// (ignored by QEMU's `H_ENTER`).
    pub const H_ZERO_PAGE: u64 = 1 << 15;
    /// PAPR bit 49 (`H_PAGE_INIT`): copy a page.
    pub const H_COPY_PAGE: u64 = 1 << 14;
    /// PAPR bit 61 (`H_PROTECT`): the new N (no-execute) bit.
    pub const H_N: u64 = 1 << 2;
    /// PAPR bit 62 (`H_PROTECT`): the new PP bit 1 (first of the two
    /// low PP bits).
    pub const H_PP1: u64 = 1 << 1;
    /// PAPR bit 63 (`H_PROTECT`): the new PP bit 2.
    pub const H_PP2: u64 = 1 << 0;
}

/// The per-entry words of `H_BULK_REMOVE` (QEMU `spapr.h`,
/// `h_bulk_remove`): up to [`bulk_remove::MAX_BATCH`] pairs of a
/// translation specifier high word (type, flags, PTE index) and low word
/// (AVPN) in r4..r11. The hypervisor writes each high word back as a
/// response (type, completion code, R and C of the removed entry).
pub mod bulk_remove {
    /// Type field (PAPR bits 0:1).
    pub const TYPE: u64 = 0xc000_0000_0000_0000;
    /// Type: a request to remove the entry.
    pub const REQUEST: u64 = 0x4000_0000_0000_0000;
    /// Type: the hypervisor's response.
    pub const RESPONSE: u64 = 0x8000_0000_0000_0000;
    /// Type: end of the list (when fewer than four requests are passed).
    pub const END: u64 = 0xc000_0000_0000_0000;
    /// Completion code field of a response (PAPR bits 2:3).
    pub const CODE: u64 = 0x3000_0000_0000_0000;
    /// Response code: removed.
    pub const SUCCESS: u64 = 0;
    /// Response code: no valid entry, or the AVPN/ANDCOND test failed.
    pub const NOT_FOUND: u64 = 0x1000_0000_0000_0000;
    /// Response code: bad parameter (e.g. ANDCOND together with AVPN).
    pub const PARM: u64 = 0x2000_0000_0000_0000;
    /// Response code: hardware error.
    pub const HW: u64 = 0x3000_0000_0000_0000;
    /// R and C bits of the removed HPTE in a response (PAPR bits 4:5):
    /// HPTE dword 1 bits `0x180` shifted left by 51.
    pub const RC: u64 = 0x0c00_0000_0000_0000;
    /// Flags field of a request (PAPR bits 6:7).
    pub const FLAGS: u64 = 0x0300_0000_0000_0000;
    /// Flags: remove whatever is in the slot.
    pub const ABSOLUTE: u64 = 0;
    /// Flags: remove only if dword 0 AND the low word is zero.
    pub const ANDCOND: u64 = 0x0100_0000_0000_0000;
    /// Flags: remove only if the entry's AVPN equals the low word.
    pub const AVPN: u64 = 0x0200_0000_0000_0000;
    /// PTE index field of a request (PAPR bits 8:63).
    pub const PTEX: u64 = 0x00ff_ffff_ffff_ffff;
    /// Requests per call (four pairs fill r4..r11).
    pub const MAX_BATCH: usize = 4;
}

/// The `flags` argument of `H_PROTECT` (QEMU `h_protect`): the new page
/// protection, no-execute bit and storage key of the HPTE, plus
/// [`flags::H_AVPN`] if wanted.
pub mod protect {
    /// The two low PP bits (HPTE dword 1 bits 62:63).
    pub const PP: u64 = 0x3;
    /// No-execute (HPTE dword 1 bit 61).
    pub const N: u64 = 0x4;
    /// PP0, the high PP bit (HPTE dword 1 bit 0), moved down to here.
    pub const PP0: u64 = 0x100;
    /// Storage key bits 2:4 (HPTE dword 1 bits 52:54, in place).
    pub const KEY_LO: u64 = 0xe00;
    /// Storage key bits 0:1 (HPTE dword 1 bits 2:3), moved down to here.
    pub const KEY_HI: u64 = 0x3000;

    /// Why [`encode`] refused its input.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ProtectFlagsError {
        /// The PP0:PP value does not fit in 3 bits.
        PpTooWide(u8),
        /// The storage key does not fit in 5 bits.
        KeyTooWide(u8),
    }

    /// Encodes the `H_PROTECT` flags for the 3-bit page protection `pp`
    /// (PP0 as its high bit, the ISA's PP0:PP), the no-execute bit and the
    /// 5-bit storage key.
    pub const fn encode(pp: u8, no_execute: bool, key: u8) -> Result<u64, ProtectFlagsError> {
        if pp > 0b111 {
            return Err(ProtectFlagsError::PpTooWide(pp));
        }
        if key > 0b1_1111 {
            return Err(ProtectFlagsError::KeyTooWide(key));
        }
        let pp = pp as u64;
        let key = key as u64;
        let n = if no_execute { N } else { 0 };
        Ok((pp & PP) | ((pp >> 2) << 8) | n | ((key & 0b111) << 9) | ((key >> 3) << 12))
    }
}

/// Arguments of `H_SET_MODE` (r4 = mode flags, r5 = resource, r6, r7 =
/// values), from QEMU `spapr.h`.
pub mod set_mode {
    /// Resource: the Completed Instruction Address Breakpoint register.
    pub const RESOURCE_SET_CIABR: u64 = 1;
    /// Resource: the first data address watchpoint (DAWR0).
    pub const RESOURCE_SET_DAWR0: u64 = 2;
    /// Resource: the Alternate Interrupt Location (LPCR\[AIL\]).
    pub const RESOURCE_ADDR_TRANS_MODE: u64 = 3;
    /// Resource: interrupt endianness (LPCR\[ILE\]).
    pub const RESOURCE_LE: u64 = 4;
    /// AIL mode flag: interrupts go to the real vector (AIL = 0).
    pub const AIL_NONE: u64 = 0;
    /// AIL mode flag: interrupts taken with translation on go to
    /// `0x18000 + vector` (AIL = 2).
    pub const AIL_0001_8000: u64 = 2;
    /// AIL mode flag: interrupts taken with translation on go to
    /// `0xc000_0000_0000_4000 + vector` with IR/DR on (AIL = 3).
    pub const AIL_C000_0000_0000_4000: u64 = 3;
    /// Endianness mode flag: take interrupts big-endian.
    pub const LE_BIG: u64 = 0;
    /// Endianness mode flag: take interrupts little-endian.
    pub const LE_LITTLE: u64 = 1;
}

/// A failed hypervisor call: every non-zero PAPR return code QEMU uses
/// (`include/hw/ppc/spapr.h`), with [`PaprError::Unknown`] for the rest.
///
/// [`PaprError::from_code`] always yields the canonical variant for a code,
/// so `from_code(e.code()) == Some(e)` for every value it returns.
/// Hand-built values outside those ranges (`LongBusy(5)`, `ParameterN(1)`,
/// `Unknown(-4)`) still report the code they hold but decode to a different
/// variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaprError {
    /// `H_BUSY` (1): resource busy, retry the call.
    Busy,
    /// `H_CLOSED` (2): the resource (e.g. a terminal) is closed.
    Closed,
    /// `H_NOT_AVAILABLE` (3): the resource is not available.
    NotAvailable,
    /// `H_CONSTRAINED` (4): done, but constrained by policy.
    Constrained,
    /// `H_PARTIAL` (5): only part of the request was done.
    Partial,
    /// `H_CONTINUE` (18): more work to do; call again.
    Continue,
    /// `H_LONG_BUSY_ORDER_*` (9900..=9905): busy, retry after the hinted
    /// delay; holds the raw code, see [`PaprError::long_busy_delay_ms`].
    LongBusy(i64),
    /// `H_HARDWARE` (-1): hardware error.
    Hardware,
    /// `H_FUNCTION` (-2): the opcode is not supported.
    Function,
    /// `H_PRIVILEGE` (-3): called from problem state, or not permitted.
    Privilege,
    /// `H_PARAMETER` (-4): an argument is invalid (e.g. a PTE index beyond
    /// the HPT, or a RAM mapping whose WIMG is not `M`).
    Parameter,
    /// `H_BAD_MODE` (-5): the caller's mode is not supported.
    BadMode,
    /// `H_PTEG_FULL` (-6): all eight slots of the PTEG are valid (or the
    /// `H_EXACT` slot is).
    PtegFull,
    /// `H_NOT_FOUND` (-7): no valid HPTE matched (or the AVPN/ANDCOND test
    /// failed).
    NotFound,
    /// `H_RESERVED_DABR` (-8): the DABR address is reserved.
    ReservedDabr,
    /// `H_NO_MEM` (-9): out of memory.
    NoMem,
    /// `H_AUTHORITY` (-10): the caller lacks the authority.
    Authority,
    /// `H_PERMISSION` (-11): permission denied.
    Permission,
    /// `H_RESOURCE` (-16): resource not available.
    Resource,
    /// `H_P2`..`H_P9` (-55..=-62): parameter `n` (2..=9) is invalid;
    /// holds `n`.
    ParameterN(u8),
    /// `H_UNSUPPORTED_FLAG` (-256): a flag is not supported.
    UnsupportedFlag,
    /// `H_MULTI_THREADS_ACTIVE` (-9005): other threads of the core are
    /// active.
    MultiThreadsActive,
    /// Any other non-zero code; holds it.
    Unknown(i64),
}

/// `H_SUCCESS`: the status of a successful call.
pub const H_SUCCESS: i64 = 0;

impl PaprError {
    /// Maps a status returned in r3 to an error; `None` for `H_SUCCESS`.
    #[must_use]
    pub const fn from_code(code: i64) -> Option<PaprError> {
        Some(match code {
            H_SUCCESS => return None,
            1 => PaprError::Busy,
            2 => PaprError::Closed,
            3 => PaprError::NotAvailable,
            4 => PaprError::Constrained,
            5 => PaprError::Partial,
            18 => PaprError::Continue,
            9900..=9905 => PaprError::LongBusy(code),
            -1 => PaprError::Hardware,
            -2 => PaprError::Function,
            -3 => PaprError::Privilege,
            -4 => PaprError::Parameter,
            -5 => PaprError::BadMode,
            -6 => PaprError::PtegFull,
            -7 => PaprError::NotFound,
            -8 => PaprError::ReservedDabr,
            -9 => PaprError::NoMem,
            -10 => PaprError::Authority,
            -11 => PaprError::Permission,
            -16 => PaprError::Resource,
            // H_P2 = -55 .. H_P9 = -62: parameter n has code -(53 + n).
            -62..=-55 => PaprError::ParameterN((-code - 53) as u8),
            -256 => PaprError::UnsupportedFlag,
            -9005 => PaprError::MultiThreadsActive,
            _ => PaprError::Unknown(code),
        })
    }

    /// The PAPR status code this error stands for.
    #[must_use]
    pub const fn code(self) -> i64 {
        match self {
            PaprError::Busy => 1,
            PaprError::Closed => 2,
            PaprError::NotAvailable => 3,
            PaprError::Constrained => 4,
            PaprError::Partial => 5,
            PaprError::Continue => 18,
            PaprError::LongBusy(code) => code,
            PaprError::Hardware => -1,
            PaprError::Function => -2,
            PaprError::Privilege => -3,
            PaprError::Parameter => -4,
            PaprError::BadMode => -5,
            PaprError::PtegFull => -6,
            PaprError::NotFound => -7,
            PaprError::ReservedDabr => -8,
            PaprError::NoMem => -9,
            PaprError::Authority => -10,
            PaprError::Permission => -11,
            PaprError::Resource => -16,
            PaprError::ParameterN(n) => -(53 + n as i64),
            PaprError::UnsupportedFlag => -256,
            PaprError::MultiThreadsActive => -9005,
            PaprError::Unknown(code) => code,
        }
    }

    /// The PAPR name of the code (`"H_PTEG_FULL"`), or `None` for
    /// [`PaprError::Unknown`] and out-of-range hand-built values.
    #[must_use]
    pub const fn name(self) -> Option<&'static str> {
        Some(match self {
            PaprError::Busy => "H_BUSY",
            PaprError::Closed => "H_CLOSED",
            PaprError::NotAvailable => "H_NOT_AVAILABLE",
            PaprError::Constrained => "H_CONSTRAINED",
            PaprError::Partial => "H_PARTIAL",
            PaprError::Continue => "H_CONTINUE",
            PaprError::LongBusy(9900) => "H_LONG_BUSY_ORDER_1_MSEC",
            PaprError::LongBusy(9901) => "H_LONG_BUSY_ORDER_10_MSEC",
            PaprError::LongBusy(9902) => "H_LONG_BUSY_ORDER_100_MSEC",
            PaprError::LongBusy(9903) => "H_LONG_BUSY_ORDER_1_SEC",
            PaprError::LongBusy(9904) => "H_LONG_BUSY_ORDER_10_SEC",
            PaprError::LongBusy(9905) => "H_LONG_BUSY_ORDER_100_SEC",
            PaprError::Hardware => "H_HARDWARE",
            PaprError::Function => "H_FUNCTION",
            PaprError::Privilege => "H_PRIVILEGE",
            PaprError::Parameter => "H_PARAMETER",
            PaprError::BadMode => "H_BAD_MODE",
            PaprError::PtegFull => "H_PTEG_FULL",
            PaprError::NotFound => "H_NOT_FOUND",
            PaprError::ReservedDabr => "H_RESERVED_DABR",
            PaprError::NoMem => "H_NO_MEM",
            PaprError::Authority => "H_AUTHORITY",
            PaprError::Permission => "H_PERMISSION",
            PaprError::Resource => "H_RESOURCE",
            PaprError::ParameterN(2) => "H_P2",
            PaprError::ParameterN(3) => "H_P3",
            PaprError::ParameterN(4) => "H_P4",
            PaprError::ParameterN(5) => "H_P5",
            PaprError::ParameterN(6) => "H_P6",
            PaprError::ParameterN(7) => "H_P7",
            PaprError::ParameterN(8) => "H_P8",
            PaprError::ParameterN(9) => "H_P9",
            PaprError::UnsupportedFlag => "H_UNSUPPORTED_FLAG",
            PaprError::MultiThreadsActive => "H_MULTI_THREADS_ACTIVE",
            PaprError::LongBusy(_) | PaprError::ParameterN(_) | PaprError::Unknown(_) => {
                return None
            }
        })
    }

    /// True for the "try again" codes: `H_BUSY` and `H_LONG_BUSY_*`.
    #[must_use]
    pub const fn is_busy(self) -> bool {
        matches!(self, PaprError::Busy | PaprError::LongBusy(_))
    }

    /// For `H_LONG_BUSY_ORDER_*`, the suggested wait before retrying in
    /// milliseconds: 10^(code − 9900), i.e. 1 ms for 9900 to 100 s for
    /// 9905. `None` for every other error.
    #[must_use]
    pub const fn long_busy_delay_ms(self) -> Option<u64> {
        match self {
            PaprError::LongBusy(code @ 9900..=9905) => Some(10u64.pow((code - 9900) as u32)),
            _ => None,
        }
    }
}

impl fmt::Display for PaprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "hcall failed: {name} ({})", self.code()),
            None => write!(f, "hcall failed: unknown status {}", self.code()),
        }
    }
}

impl core::error::Error for PaprError {}

/// What an hcall gives back: on success the nine output registers r4..r12
/// (most calls use only the first few), otherwise the error.
pub type HcallResult = Result<[u64; 9], PaprError>;

/// Interprets the registers after `sc 1`: `r3` is the status, `out` holds
/// r4..r12.
///
/// On failure the outputs are dropped; use `hcall_raw` (powerpc64 only) for calls whose
/// outputs matter even then (e.g. `H_BULK_REMOVE`'s per-entry responses).
pub fn decode(r3: i64, out: [u64; 9]) -> HcallResult {
    match PaprError::from_code(r3) {
        None => Ok(out),
        Some(err) => Err(err),
    }
}

/// Makes a hypervisor call with `opcode` in r3 and `args` in r4 onward
/// (unused argument registers are zero), and decodes the result.
///
/// # Panics
///
/// If `args` has more than nine elements: the ABI has only r4..r12.
///
/// # Safety
///
/// Hypervisor calls change machine state the compiler cannot see: they
/// create and remove translations (`H_ENTER`, `H_REMOVE`, `H_PROTECT`,
/// `H_BULK_REMOVE`), read or write guest memory at real addresses passed in
/// the arguments (`H_REGISTER_VPA`, `KVMPPC_H_RTAS`, `H_PAGE_INIT`), change
/// interrupt delivery (`H_SET_MODE`) or stop the machine (RTAS power-off).
/// The caller must ensure that the call, with these arguments, does not
/// invalidate memory or translations that Rust code still relies on, and
/// that any memory it names is valid for the hypervisor to access.
#[cfg(target_arch = "powerpc64")]
#[inline]
pub unsafe fn hcall(opcode: u64, args: &[u64]) -> HcallResult {
    assert!(
        args.len() <= 9,
        "an hcall takes at most 9 arguments (r4..r12)"
    );
    let mut regs = [0u64; 9];
    regs[..args.len()].copy_from_slice(args);
    // SAFETY: forwarded from this function's contract.
    let (status, out) = unsafe { hcall_raw(opcode, regs) };
    decode(status, out)
}

/// Makes a hypervisor call and returns the raw status (r3) and r4..r12,
/// without interpreting them.
///
/// # Safety
///
/// As for [`hcall`].
#[cfg(target_arch = "powerpc64")]
#[inline]
pub unsafe fn hcall_raw(opcode: u64, args: [u64; 9]) -> (i64, [u64; 9]) {
    let [mut r4, mut r5, mut r6, mut r7, mut r8, mut r9, mut r10, mut r11, mut r12] = args;
    let mut r3 = opcode;
    // SAFETY: the caller guarantees the call's effects are acceptable (see
    // `# Safety` of `hcall`). `sc 1` follows the PAPR ABI: r3..r12 are
    // operands, and the other registers PAPR calls volatile (r0, CTR, XER
    // and CR fields 0, 1, 5-7) are clobbered. Not `clobber_abi("C")`: that
    // would also spill f14-f31 around the call, and `stfd` with MSR[FP] = 0
    // (the usual kernel state) raises a floating-point unavailable
    // interrupt. The hypervisor preserves FP/vector state and LR. No
    // `nomem`: hcalls may read and write memory passed by real address.
    unsafe {
        core::arch::asm!(
            "sc 1",
            inout("r3") r3,
            inout("r4") r4,
            inout("r5") r5,
            inout("r6") r6,
            inout("r7") r7,
            inout("r8") r8,
            inout("r9") r9,
            inout("r10") r10,
            inout("r11") r11,
            inout("r12") r12,
            out("r0") _,
            out("ctr") _,
            out("xer") _,
            out("cr0") _,
            out("cr1") _,
            out("cr5") _,
            out("cr6") _,
            out("cr7") _,
            options(nostack),
        );
    }
    (r3 as i64, [r4, r5, r6, r7, r8, r9, r10, r11, r12])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code QEMU's spapr.h defines except H_SUCCESS.
    const ALL_CODES: [i64; 33] = [
        1, 2, 3, 4, 5, 18, 9900, 9901, 9902, 9903, 9904, 9905, -1, -2, -3, -4, -5, -6, -7, -8, -9,
        -10, -11, -16, -55, -56, -57, -58, -59, -60, -61, -62, -256,
    ];

    #[test]
    fn every_known_code_round_trips_and_is_named() {
        for code in ALL_CODES.into_iter().chain([-9005]) {
            let err = PaprError::from_code(code).expect("non-zero code is an error");
            assert_eq!(err.code(), code, "{err:?}");
            assert!(err.name().is_some(), "{code} has no name");
            assert!(
                !matches!(err, PaprError::Unknown(_)),
                "{code} not recognized"
            );
        }
    }

    #[test]
    fn success_is_not_an_error() {
        assert_eq!(PaprError::from_code(H_SUCCESS), None);
    }

    #[test]
    fn specific_codes_map_to_specific_variants() {
        assert_eq!(PaprError::from_code(-6), Some(PaprError::PtegFull));
        assert_eq!(PaprError::from_code(-4), Some(PaprError::Parameter));
        assert_eq!(PaprError::from_code(-7), Some(PaprError::NotFound));
        assert_eq!(PaprError::from_code(-2), Some(PaprError::Function));
        assert_eq!(PaprError::from_code(-55), Some(PaprError::ParameterN(2)));
        assert_eq!(PaprError::from_code(-62), Some(PaprError::ParameterN(9)));
        assert_eq!(PaprError::from_code(9902), Some(PaprError::LongBusy(9902)));
        assert_eq!(
            PaprError::from_code(-9005),
            Some(PaprError::MultiThreadsActive)
        );
        assert_eq!(PaprError::from_code(-256), Some(PaprError::UnsupportedFlag));
    }

    #[test]
    fn unknown_codes_are_kept() {
        for code in [
            6,
            17,
            9899,
            9906,
            -12,
            -54,
            -63,
            -255,
            -9004,
            i64::MIN,
            i64::MAX,
        ] {
            assert_eq!(PaprError::from_code(code), Some(PaprError::Unknown(code)));
            assert_eq!(PaprError::Unknown(code).code(), code);
            assert_eq!(PaprError::Unknown(code).name(), None);
        }
    }

    #[test]
    fn names_are_distinct() {
        let mut names: [&str; 34] = [""; 34];
        for (slot, code) in names.iter_mut().zip(ALL_CODES.into_iter().chain([-9005])) {
            *slot = PaprError::from_code(code).unwrap().name().unwrap();
        }
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn busy_classification_and_delay() {
        assert!(PaprError::Busy.is_busy());
        assert!(PaprError::LongBusy(9905).is_busy());
        assert!(!PaprError::PtegFull.is_busy());
        assert_eq!(PaprError::LongBusy(9900).long_busy_delay_ms(), Some(1));
        assert_eq!(PaprError::LongBusy(9903).long_busy_delay_ms(), Some(1000));
        assert_eq!(
            PaprError::LongBusy(9905).long_busy_delay_ms(),
            Some(100_000)
        );
        assert_eq!(PaprError::LongBusy(42).long_busy_delay_ms(), None);
        assert_eq!(PaprError::Busy.long_busy_delay_ms(), None);
    }

    #[test]
    fn display_names_code() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(
            PaprError::PtegFull.to_string(),
            "hcall failed: H_PTEG_FULL (-6)"
        );
        assert_eq!(
            PaprError::ParameterN(3).to_string(),
            "hcall failed: H_P3 (-56)"
        );
        assert_eq!(
            PaprError::Unknown(-99).to_string(),
            "hcall failed: unknown status -99"
        );
    }

    #[test]
    fn decode_passes_outputs_through_on_success() {
        let out = [8, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(decode(0, out), Ok(out));
    }

    #[test]
    fn decode_maps_failures() {
        let out = [0xdead; 9];
        assert_eq!(decode(-6, out), Err(PaprError::PtegFull));
        assert_eq!(decode(-2, out), Err(PaprError::Function));
        assert_eq!(decode(1, out), Err(PaprError::Busy));
        assert_eq!(decode(-12345, out), Err(PaprError::Unknown(-12345)));
    }

    /// PAPR bit `n` of a 64-bit flags word, numbered from the MSB.
    const fn papr_bit(n: u32) -> u64 {
        1 << (63 - n)
    }

    #[test]
    fn flags_match_papr_bit_numbers() {
        assert_eq!(flags::H_LARGE_PAGE, papr_bit(16));
        assert_eq!(flags::H_EXACT, papr_bit(24));
        assert_eq!(flags::H_R_XLATE, papr_bit(25));
        assert_eq!(flags::H_READ_4, papr_bit(26));
        assert_eq!(flags::H_AVPN, papr_bit(32));
        assert_eq!(flags::H_ANDCOND, papr_bit(33));
        assert_eq!(flags::H_ICACHE_INVALIDATE, papr_bit(40));
        assert_eq!(flags::H_ICACHE_SYNCHRONIZE, papr_bit(41));
        assert_eq!(flags::H_ZERO_PAGE, papr_bit(48));
        assert_eq!(flags::H_COPY_PAGE, papr_bit(49));
        assert_eq!(flags::H_N, papr_bit(61));
        assert_eq!(flags::H_PP1, papr_bit(62));
        assert_eq!(flags::H_PP2, papr_bit(63));
    }

    #[test]
    fn bulk_remove_fields_match_papr_bit_numbers() {
        use bulk_remove::*;
        assert_eq!(TYPE, papr_bit(0) | papr_bit(1));
        assert_eq!(REQUEST, papr_bit(1));
        assert_eq!(RESPONSE, papr_bit(0));
        assert_eq!(END, TYPE);
        assert_eq!(CODE, papr_bit(2) | papr_bit(3));
        assert_eq!(NOT_FOUND, papr_bit(3));
        assert_eq!(PARM, papr_bit(2));
        assert_eq!(HW, CODE);
        assert_eq!(RC, papr_bit(4) | papr_bit(5));
        assert_eq!(FLAGS, papr_bit(6) | papr_bit(7));
        assert_eq!(ANDCOND, papr_bit(7));
        assert_eq!(AVPN, papr_bit(6));
        assert_eq!(PTEX, u64::MAX >> 8);
        // The fields tile the word exactly.
        assert_eq!(TYPE | CODE | RC | FLAGS | PTEX, u64::MAX);
        assert_eq!(TYPE & CODE & RC & FLAGS & PTEX, 0);
        // R (0x100) and C (0x80) of HPTE dword 1 land in RC with << 51.
        assert_eq!((0x180u64) << 51, RC);
    }

    #[test]
    fn protect_flags_place_each_field() {
        use protect::*;
        assert_eq!(encode(0b000, false, 0), Ok(0));
        assert_eq!(encode(0b011, false, 0), Ok(PP));
        assert_eq!(encode(0b100, false, 0), Ok(PP0));
        assert_eq!(encode(0b110, true, 0), Ok(PP0 | 0b10 | N));
        assert_eq!(encode(0, false, 0b00111), Ok(KEY_LO));
        assert_eq!(encode(0, false, 0b11000), Ok(KEY_HI));
        assert_eq!(encode(0, false, 0b10101), Ok(0x2000 | 0xa00));
        assert_eq!(encode(0b111, true, 31), Ok(PP | N | PP0 | KEY_LO | KEY_HI));
    }

    #[test]
    fn protect_flags_as_qemu_applies_them() {
        // QEMU h_protect: r |= (flags << 55) & PP0_HPTE | (flags << 48) &
        // KEY_HI_HPTE | flags & (PP | N | KEY_LO). Check the round trip of
        // every pp/key into HPTE dword 1 and back.
        const HPTE_PP0: u64 = 1 << 63;
        const HPTE_KEY_HI: u64 = 0x3000_0000_0000_0000;
        for pp in 0..8u8 {
            for key in 0..32u8 {
                let f = protect::encode(pp, pp & 1 == 1, key).unwrap();
                let r = ((f << 55) & HPTE_PP0) | ((f << 48) & HPTE_KEY_HI) | (f & 0xe07);
                let got_pp = ((r & 3) | ((r & HPTE_PP0) >> 61)) as u8;
                let got_key = (((r & HPTE_KEY_HI) >> 57) | ((r & 0xe00) >> 9)) as u8;
                assert_eq!((got_pp, got_key), (pp, key));
                assert_eq!(r & 4 != 0, pp & 1 == 1);
            }
        }
    }

    #[test]
    fn protect_flags_refuse_wide_values() {
        use protect::*;
        assert_eq!(encode(8, false, 0), Err(ProtectFlagsError::PpTooWide(8)));
        assert_eq!(encode(0, false, 32), Err(ProtectFlagsError::KeyTooWide(32)));
    }

    #[test]
    fn opcodes_match_spapr_h() {
        use opcode::*;
        let table = [
            (H_REMOVE, 0x04),
            (H_ENTER, 0x08),
            (H_READ, 0x0c),
            (H_CLEAR_MOD, 0x10),
            (H_CLEAR_REF, 0x14),
            (H_PROTECT, 0x18),
            (H_SET_SPRG0, 0x24),
            (H_PAGE_INIT, 0x2c),
            (H_GET_TERM_CHAR, 0x54),
            (H_PUT_TERM_CHAR, 0x58),
            (H_EOI, 0x64),
            (H_CPPR, 0x68),
            (H_IPI, 0x6c),
            (H_XIRR, 0x74),
            (H_REGISTER_VPA, 0xdc),
            (H_CEDE, 0xe0),
            (H_CONFER, 0xe4),
            (H_BULK_REMOVE, 0x124),
            (H_SET_MODE, 0x31c),
            (H_RESIZE_HPT_PREPARE, 0x36c),
            (H_RESIZE_HPT_COMMIT, 0x370),
            (H_REGISTER_PROC_TBL, 0x37c),
            (KVMPPC_H_RTAS, 0xf000),
            (KVMPPC_H_VOF_CLIENT, 0xf005),
        ];
        for (i, (value, expected)) in table.iter().enumerate() {
            assert_eq!(value, expected);
            // PAPR hcall numbers are multiples of 4, except QEMU's private
            // 0xf000 range.
            if *value < 0xf000 {
                assert_eq!(value % 4, 0, "{value:#x}");
            }
            for (other, _) in &table[i + 1..] {
                assert_ne!(value, other, "duplicate opcode");
            }
        }
    }
}
