//! Hashed page table entry (HPTE), the pre-ISA-3.0 format that every PAPR
//! hcall uses (also on POWER9 under pseries) and that POWER8 reads natively.
//!
//! An HPTE is two big-endian doublewords (Power ISA v2.07 Book III-S,
//! "Page Table", page table entry figure):
//!
//! ```text
//! dword 0 (v): | B 0:1 | AVPN 2:56 | SW 57:60 | L 61 | H 62 | V 63 |
//! dword 1 (r): | PP0 0 | TS 1 | KEY 2:3 | RPN 4:51 | KEY 52:54 | R 55 | C 56 |
//!              | W 57 | I 58 | M 59 | G 60 | N 61 | PP 62:63 |
//! ```
//!
//! `AVPN` holds virtual address bits 0:54 (`VA >> 23`); the hash supplies the
//! rest. A PTEG is eight consecutive HPTEs.

use bitflags::bitflags;

use crate::addr::{EffectiveAddress, PhysAddr, Vsid};
use crate::structures::{PageSize, SegmentSize};

/// Masks of HPTE doubleword 0 ("v").
pub mod v {
    /// Segment size `B` (ISA bits 0:1).
    pub const B: u64 = 0xC000_0000_0000_0000;
    /// Shift of the `B` field.
    pub const B_SHIFT: u32 = 62;
    /// Abbreviated virtual page number (ISA bits 2:56).
    pub const AVPN: u64 = 0x3FFF_FFFF_FFFF_FF80;
    /// Shift of the AVPN field.
    pub const AVPN_SHIFT: u32 = 7;
    /// Software-use bits (ISA bits 57:60), ignored by the hardware.
    pub const SW: u64 = 0x78;
    /// Software bit 59 "bolted": the entry must never be evicted (Linux
    /// `HPTE_V_BOLTED`, FreeBSD `LPTE_WIRED`).
    pub const BOLTED: u64 = 0x10;
    /// Large page `L` (ISA bit 61): the page size is encoded in `r`'s low
    /// RPN bits.
    pub const L: u64 = 0x4;
    /// Hash function identifier `H` (ISA bit 62): 1 = found through the
    /// secondary hash.
    pub const H: u64 = 0x2;
    /// Valid `V` (ISA bit 63).
    pub const V: u64 = 0x1;
    /// The bits the MMU compares when searching a PTEG (QEMU
    /// `HPTE64_V_COMPARE`): B, AVPN, H and V. Software bits and L are not
    /// compared.
    pub const COMPARE: u64 = B | AVPN | H | V;
    /// Mask of the "AVPN word" PAPR's `H_REMOVE`/`H_PROTECT` take: `v`
    /// with the low 7 bits cleared (B and AVPN).
    pub const AVPN_WORD: u64 = !0x7f;
}

/// Masks of HPTE doubleword 1 ("r").
pub mod r {
    /// Page protection bit 0 `PP0` (ISA bit 0).
    pub const PP0: u64 = 0x8000_0000_0000_0000;
    /// Tag set `TS` (ISA bit 1); unused here.
    pub const TS: u64 = 0x4000_0000_0000_0000;
    /// High two bits of the 5-bit storage key (ISA bits 2:3).
    pub const KEY_HI: u64 = 0x3000_0000_0000_0000;
    /// Real page number (ISA bits 4:51), holding real address bits 4:51.
    pub const RPN: u64 = 0x0FFF_FFFF_FFFF_F000;
    /// Low three bits of the storage key (ISA bits 52:54).
    pub const KEY_LO: u64 = 0x0E00;
    /// Reference bit `R` (ISA bit 55), set by the MMU on any access.
    pub const R: u64 = 0x100;
    /// Change bit `C` (ISA bit 56), set by the MMU on a store.
    pub const C: u64 = 0x80;
    /// Write-through `W` (ISA bit 57).
    pub const W: u64 = 0x40;
    /// Caching-inhibited `I` (ISA bit 58).
    pub const I: u64 = 0x20;
    /// Memory coherence `M` (ISA bit 59).
    pub const M: u64 = 0x10;
    /// Guarded `G` (ISA bit 60); also forbids instruction fetch.
    pub const G: u64 = 0x08;
    /// No-execute `N` (ISA bit 61).
    pub const N: u64 = 0x04;
    /// Page protection `PP` (ISA bits 62:63).
    pub const PP: u64 = 0x03;
    /// RPN encoding of a 64 KiB page in a 64 KiB-base segment (`LP = 0x1`
    /// in the low RPN bits, QEMU's POWER7+ page-size table).
    pub const LP_64K: u64 = 0x1000;
    /// The RPN bits a 64 KiB page's encoding is compared in (ISA bits
    /// 48:51, real address bits below 64K).
    pub const LP_FIELD_64K: u64 = 0xF000;
    /// RPN encoding of a 16 MiB page in a 16 MiB-base segment: `LP = 0x0`,
    /// every RPN bit below 16M clear (the `ibm,segment-page-sizes` HPTE
    /// encoding 0 of base size 2^24).
    pub const LP_16M: u64 = 0x0;
    /// The RPN bits a 16 MiB page's encoding is compared in (ISA bits
    /// 40:51, real address bits below 16M).
    pub const LP_FIELD_16M: u64 = 0x00FF_F000;
}

bitflags! {
    /// Storage control attributes (`WIMG`) of HPTE doubleword 1.
    ///
    /// QEMU's `H_ENTER` accepts RAM mappings only with exactly `M`, I/O only
    /// with `I` or `I|M`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Wimg: u64 {
        /// Write-through.
        const W = r::W;
        /// Caching inhibited.
        const I = r::I;
        /// Memory coherence required.
        const M = r::M;
        /// Guarded.
        const G = r::G;
    }
}

/// A 3-bit page protection value `PP0 || PP` (Power ISA v2.07 Book III-S,
/// "Storage Protection", the PP/key access table). Combined with the segment's key (`Ks` in privileged
/// state, `Kp` in problem state) it decides which accesses are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(transparent)]
pub struct Pp(u8);

/// What a [`Pp`] value allows for one key value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PpAccess {
    /// Loads allowed.
    pub read: bool,
    /// Stores allowed.
    pub write: bool,
    /// Instruction fetch allowed (still subject to N, G and segment N).
    pub execute: bool,
}

impl PpAccess {
    /// Nothing allowed.
    pub const NONE: PpAccess = PpAccess {
        read: false,
        write: false,
        execute: false,
    };
    /// Read and execute.
    pub const RX: PpAccess = PpAccess {
        read: true,
        write: false,
        execute: true,
    };
    /// Read, write and execute.
    pub const RWX: PpAccess = PpAccess {
        read: true,
        write: true,
        execute: true,
    };
}

impl Pp {
    /// `000`: key 0 read/write, key 1 nothing (kernel RW, user none with
    /// Ks = 0, Kp = 1).
    pub const RW_NONE: Pp = Pp(0b000);
    /// `001`: key 0 read/write, key 1 read-only.
    pub const RW_RO: Pp = Pp(0b001);
    /// `010`: read/write for both keys.
    pub const RW_RW: Pp = Pp(0b010);
    /// `011`: read-only for both keys.
    pub const RO_RO: Pp = Pp(0b011);
    /// `110`: key 0 read-only, key 1 nothing.
    pub const RO_NONE: Pp = Pp(0b110);

    /// # Panics
    ///
    /// Panics if `pp > 7`.
    pub const fn new(pp: u8) -> Pp {
        match Pp::try_new(pp) {
            Some(p) => p,
            None => panic!("PP is a 3-bit value"),
        }
    }

    /// `None` if `pp > 7`.
    pub const fn try_new(pp: u8) -> Option<Pp> {
        if pp <= 7 {
            Some(Pp(pp))
        } else {
            None
        }
    }

    /// The raw 3-bit value `PP0 || PP`.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// The value's bits placed in HPTE doubleword 1 (`PP0` and `PP`).
    pub const fn to_r_bits(self) -> u64 {
        (((self.0 >> 2) as u64) << 63) | (self.0 & 3) as u64
    }

    /// Extracts `PP0 || PP` from HPTE doubleword 1.
    pub const fn from_r(r: u64) -> Pp {
        Pp((((r & r::PP0) >> 61) | (r & r::PP)) as u8)
    }

    /// Which accesses this protection allows when the segment key is `key`
    /// (the ISA's PP table; `100`, `101` and `111` are reserved and allow nothing, as
    /// in QEMU).
    pub const fn access(self, key: bool) -> PpAccess {
        match (self.0, key) {
            (0b000..=0b010, false) => PpAccess::RWX,
            (0b011 | 0b110, false) => PpAccess::RX,
            (0b000, true) => PpAccess::NONE,
            (0b001, true) => PpAccess::RX,
            (0b010, true) => PpAccess::RWX,
            (0b011, true) => PpAccess::RX,
            _ => PpAccess::NONE,
        }
    }
}

/// The AVPN word (`v` bits B and AVPN, low 7 bits zero) of the virtual
/// page containing `ea` in segment `vsid` of size `ssize`.
///
/// VA = `VSID || offset` (78 bits); AVPN = `VA >> 23`, placed at bit 7. For
/// a 256 MB segment that is `(VSID << 5) | (offset >> 23)`, for 1 TB
/// `(VSID << 17) | (offset >> 23)`. The whole VA does not fit a `u64`, so
/// the shift is done per part. For 4K and 64K pages no AVPN bits are below
/// the page size, so nothing is masked; a 16M page needs VA bit 23 (the
/// lowest AVPN bit) clear, which [`Hpte::mapping`] ensures by passing the
/// page's base address.
pub const fn avpn_word(vsid: Vsid, ea: EffectiveAddress, ssize: SegmentSize) -> u64 {
    let offset = ea.segment_offset_in(ssize);
    let avpn = (vsid.as_u64() << (ssize.shift() - 23)) | (offset >> 23);
    (ssize.b_code() << v::B_SHIFT) | ((avpn << v::AVPN_SHIFT) & v::AVPN)
}

/// One hashed page table entry as two host-order doublewords.
///
/// Builders (`with_*`) return a modified copy; accessors decode fields. The
/// in-memory format is big-endian ([`Hpte::to_be_bytes`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hpte {
    /// Doubleword 0: B, AVPN, software bits, L, H, V.
    pub v: u64,
    /// Doubleword 1: PP0, key, RPN, R, C, WIMG, N, PP.
    pub r: u64,
}

/// The ISA 3.0 layout of an HPTE, which POWER9 and POWER10 read from a
/// table the kernel owns (hypervisor state, powernv); PAPR keeps the
/// pre-3.0 layout of this module for guests. ISA 3.0 limits the virtual
/// address to 68 bits, so the top 10 bits of the pre-3.0 AVPN (VA bits
/// 0:9) are always 0 and become reserved; the segment size B moves from
/// doubleword 0 bits 0:1 to doubleword 1 bits 4:5, which narrows the RPN
/// to bits 7:51:
///
/// ```text
/// dword 0 (v): | /// 0:11 | AVPN 12:56 | SW 57:60 | L 61 | H 62 | V 63 |
/// dword 1 (r): | PP0 0 | TS 1 | KEY 2:3 | B 4:5 | / 6 | RPN 7:51 | ... as before
/// ```
///
/// [`Hpte::to_isa300`] and [`Hpte::from_isa300`] convert, so software keeps
/// working on the pre-3.0 form.
pub mod isa300 {
    /// Doubleword 0 bits 0:11: B and the top 10 AVPN bits in the pre-3.0
    /// form, reserved (0) in ISA 3.0.
    pub const V_RESERVED: u64 = 0xFFF0_0000_0000_0000;
    /// Doubleword 1 bits 4:5: the segment size B.
    pub const R_B: u64 = 0x0C00_0000_0000_0000;
    /// Shift of [`R_B`].
    pub const R_B_SHIFT: u32 = 63 - 5;
    /// Doubleword 1 bits 4:6 of the pre-3.0 form (RPN bits ISA 3.0 gives to
    /// B and a reserved bit): real addresses of 2^57 and above.
    pub const R_WIDE_RPN: u64 = 0x0E00_0000_0000_0000;
}

impl core::fmt::Debug for Hpte {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Hpte {{ v: {:#018x}, r: {:#018x} }}", self.v, self.r)
    }
}

const fn set(word: u64, mask: u64, on: bool) -> u64 {
    if on {
        word | mask
    } else {
        word & !mask
    }
}

impl Hpte {
    /// An all-zero (invalid) entry.
    pub const EMPTY: Hpte = Hpte { v: 0, r: 0 };
    /// Size of one HPTE in bytes.
    pub const BYTES: usize = 16;

    /// A valid entry translating the `psize` page containing `ea` of
    /// segment `vsid` (size `ssize`) to the real page at `pa`, with WIMG = M,
    /// the given protection, R already set (PAPR guests set R on insert, as
    /// Linux does, to spare the hardware an update) and every other bit
    /// clear. Returns `None` if `pa` is not `psize`-aligned or `vsid` does
    /// not fit `ssize`.
    pub const fn mapping(
        vsid: Vsid,
        ea: EffectiveAddress,
        ssize: SegmentSize,
        psize: PageSize,
        pa: PhysAddr,
        pp: Pp,
    ) -> Option<Hpte> {
        if !pa.is_aligned(psize) || !vsid.fits(ssize) {
            return None;
        }
        // The page's base, not `ea`: the AVPN bits inside a 16M page must
        // be zero or the MMU's compare word (built from the page-aligned
        // address) never matches.
        let h = Hpte {
            v: avpn_word(vsid, ea.page_base(psize), ssize) | v::V,
            r: r::M | r::R,
        };
        Some(h.with_page(pa, psize).with_pp(pp))
    }

    /// This (pre-3.0) entry in the ISA 3.0 layout ([`isa300`]), or `None`
    /// if it does not fit: a virtual address beyond 68 bits (AVPN bits
    /// 0:9 set) or a real address beyond 57 bits.
    pub const fn to_isa300(self) -> Option<Hpte> {
        if self.v & (isa300::V_RESERVED & !v::B) != 0 || self.r & isa300::R_WIDE_RPN != 0 {
            return None;
        }
        let b = (self.v & v::B) >> v::B_SHIFT;
        Some(Hpte {
            v: self.v & !isa300::V_RESERVED,
            r: self.r | (b << isa300::R_B_SHIFT),
        })
    }

    /// The pre-3.0 form of an entry in the ISA 3.0 layout ([`isa300`]):
    /// B back to doubleword 0 (reserved bits are dropped).
    pub const fn from_isa300(self) -> Hpte {
        let b = (self.r & isa300::R_B) >> isa300::R_B_SHIFT;
        Hpte {
            v: (self.v & !isa300::V_RESERVED) | (b << v::B_SHIFT),
            r: self.r & !(isa300::R_B | (1 << (63 - 6))),
        }
    }

    /// Segment size from `B`; `None` for a reserved code.
    pub const fn segment_size(self) -> Option<SegmentSize> {
        SegmentSize::from_b_code(self.v >> v::B_SHIFT)
    }

    /// With segment size `ssize` in `B`.
    pub const fn with_segment_size(self, ssize: SegmentSize) -> Hpte {
        Hpte {
            v: (self.v & !v::B) | (ssize.b_code() << v::B_SHIFT),
            r: self.r,
        }
    }

    /// The AVPN field value (`VA >> 23`, up to 55 bits).
    pub const fn avpn(self) -> u64 {
        (self.v & v::AVPN) >> v::AVPN_SHIFT
    }

    /// With AVPN field `avpn` (`VA >> 23`; excess high bits are dropped).
    pub const fn with_avpn(self, avpn: u64) -> Hpte {
        Hpte {
            v: (self.v & !v::AVPN) | ((avpn << v::AVPN_SHIFT) & v::AVPN),
            r: self.r,
        }
    }

    /// B and AVPN with the low 7 bits clear: the value PAPR's `H_AVPN`
    /// condition compares against.
    pub const fn avpn_word(self) -> u64 {
        self.v & v::AVPN_WORD
    }

    /// Valid bit.
    pub const fn is_valid(self) -> bool {
        self.v & v::V != 0
    }

    /// With the valid bit set to `on`.
    pub const fn with_valid(self, on: bool) -> Hpte {
        Hpte {
            v: set(self.v, v::V, on),
            r: self.r,
        }
    }

    /// `H`: the entry lives in the secondary PTEG of its hash.
    pub const fn is_secondary(self) -> bool {
        self.v & v::H != 0
    }

    /// With `H` set to `on`.
    pub const fn with_secondary(self, on: bool) -> Hpte {
        Hpte {
            v: set(self.v, v::H, on),
            r: self.r,
        }
    }

    /// `L`: large page.
    pub const fn is_large(self) -> bool {
        self.v & v::L != 0
    }

    /// With `L` set to `on`.
    pub const fn with_large(self, on: bool) -> Hpte {
        Hpte {
            v: set(self.v, v::L, on),
            r: self.r,
        }
    }

    /// Software bits (ISA 57:60), still in place (mask [`v::SW`]).
    pub const fn software_bits(self) -> u64 {
        self.v & v::SW
    }

    /// The software "bolted" bit: never evict this entry.
    pub const fn is_bolted(self) -> bool {
        self.v & v::BOLTED != 0
    }

    /// With the bolted bit set to `on`.
    pub const fn with_bolted(self, on: bool) -> Hpte {
        Hpte {
            v: set(self.v, v::BOLTED, on),
            r: self.r,
        }
    }

    /// Page protection `PP0 || PP`.
    pub const fn pp(self) -> Pp {
        Pp::from_r(self.r)
    }

    /// With page protection `pp`.
    pub const fn with_pp(self, pp: Pp) -> Hpte {
        Hpte {
            v: self.v,
            r: (self.r & !(r::PP0 | r::PP)) | pp.to_r_bits(),
        }
    }

    /// The 5-bit storage key (`KEY_HI || KEY_LO`), index into AMR/IAMR.
    pub const fn key(self) -> u8 {
        (((self.r & r::KEY_HI) >> 57) | ((self.r & r::KEY_LO) >> 9)) as u8
    }

    /// With storage key `key` (only the low 5 bits are used).
    pub const fn with_key(self, key: u8) -> Hpte {
        let k = (key & 0x1f) as u64;
        Hpte {
            v: self.v,
            r: (self.r & !(r::KEY_HI | r::KEY_LO))
                | ((k << 57) & r::KEY_HI)
                | ((k << 9) & r::KEY_LO),
        }
    }

    /// The raw RPN field (real address bits 4:51 in place, including any
    /// large-page encoding in its low bits).
    pub const fn rpn_field(self) -> u64 {
        self.r & r::RPN
    }

    /// The actual page size: L = 0 → 4K; L = 1 with LP 0x1 in the RPN
    /// bits below 64K → 64K; L = 1 with every RPN bit below 16M clear →
    /// 16M; any other large-page encoding (16M in a 4K or 64K segment,
    /// 16G) → `None`. The two large encodings cannot be confused: a 64K
    /// page has bit 51 set, a 16M page has it clear.
    pub const fn page_size(self) -> Option<PageSize> {
        if !self.is_large() {
            Some(PageSize::K4)
        } else if self.r & r::LP_FIELD_64K == r::LP_64K {
            Some(PageSize::K64)
        } else if self.r & r::LP_FIELD_16M == r::LP_16M {
            Some(PageSize::M16)
        } else {
            None
        }
    }

    /// Real address of the page, with the large-page encoding stripped;
    /// `None` if the page size cannot be decoded.
    pub const fn real_address(self) -> Option<PhysAddr> {
        match self.page_size() {
            Some(psize) => Some(PhysAddr::new(self.rpn_field() & !psize.offset_mask())),
            None => None,
        }
    }

    /// Maps the page at `pa` of size `psize`: sets RPN (with the 64K or
    /// 16M `LP` encoding) and `L`. `pa`'s bits below the page size are
    /// dropped.
    pub const fn with_page(self, pa: PhysAddr, psize: PageSize) -> Hpte {
        let base = pa.as_u64() & !psize.offset_mask() & r::RPN;
        let (rpn, large) = match psize {
            PageSize::K4 => (base, false),
            PageSize::K64 => (base | r::LP_64K, true),
            PageSize::M16 => (base | r::LP_16M, true),
        };
        Hpte {
            v: self.v,
            r: (self.r & !r::RPN) | rpn,
        }
        .with_large(large)
    }

    /// Reference bit.
    pub const fn referenced(self) -> bool {
        self.r & r::R != 0
    }

    /// With `R` set to `on`.
    pub const fn with_referenced(self, on: bool) -> Hpte {
        Hpte {
            v: self.v,
            r: set(self.r, r::R, on),
        }
    }

    /// Change bit.
    pub const fn changed(self) -> bool {
        self.r & r::C != 0
    }

    /// With `C` set to `on`.
    pub const fn with_changed(self, on: bool) -> Hpte {
        Hpte {
            v: self.v,
            r: set(self.r, r::C, on),
        }
    }

    /// Storage control attributes.
    pub const fn wimg(self) -> Wimg {
        Wimg::from_bits_truncate(self.r)
    }

    /// With storage control attributes `wimg`.
    pub const fn with_wimg(self, wimg: Wimg) -> Hpte {
        Hpte {
            v: self.v,
            r: (self.r & !Wimg::all().bits()) | wimg.bits(),
        }
    }

    /// No-execute bit `N`.
    pub const fn no_execute(self) -> bool {
        self.r & r::N != 0
    }

    /// With `N` set to `on`.
    pub const fn with_no_execute(self, on: bool) -> Hpte {
        Hpte {
            v: self.v,
            r: set(self.r, r::N, on),
        }
    }

    /// Whether the MMU would take this entry as the translation whose
    /// compare word is `compare` (B, AVPN, H and V; QEMU
    /// `HPTE64_V_COMPARE`).
    pub const fn matches(self, compare: u64) -> bool {
        (self.v ^ compare) & v::COMPARE == 0
    }

    /// The 16-byte big-endian memory image.
    pub const fn to_be_bytes(self) -> [u8; 16] {
        let v = self.v.to_be_bytes();
        let r = self.r.to_be_bytes();
        let mut out = [0u8; 16];
        let mut i = 0;
        while i < 8 {
            out[i] = v[i];
            out[i + 8] = r[i];
            i += 1;
        }
        out
    }

    /// Decodes a 16-byte big-endian memory image.
    pub const fn from_be_bytes(bytes: [u8; 16]) -> Hpte {
        let mut v = [0u8; 8];
        let mut r = [0u8; 8];
        let mut i = 0;
        while i < 8 {
            v[i] = bytes[i];
            r[i] = bytes[i + 8];
            i += 1;
        }
        Hpte {
            v: u64::from_be_bytes(v),
            r: u64::from_be_bytes(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structures::{ibm_bit, ibm_bits};

    #[test]
    fn v_constants_match_isa_bit_numbers() {
        assert_eq!(v::B, ibm_bits(0, 1));
        assert_eq!(v::B_SHIFT, 63 - 1);
        assert_eq!(v::AVPN, ibm_bits(2, 56));
        assert_eq!(v::AVPN_SHIFT, 63 - 56);
        assert_eq!(v::SW, ibm_bits(57, 60));
        assert_eq!(v::BOLTED, ibm_bit(59));
        assert_eq!(v::L, ibm_bit(61));
        assert_eq!(v::H, ibm_bit(62));
        assert_eq!(v::V, ibm_bit(63));
        assert_eq!(v::AVPN_WORD, ibm_bits(0, 56));
    }

    #[test]
    fn r_constants_match_isa_bit_numbers() {
        assert_eq!(r::PP0, ibm_bit(0));
        assert_eq!(r::TS, ibm_bit(1));
        assert_eq!(r::KEY_HI, ibm_bits(2, 3));
        assert_eq!(r::RPN, ibm_bits(4, 51));
        assert_eq!(r::KEY_LO, ibm_bits(52, 54));
        assert_eq!(r::R, ibm_bit(55));
        assert_eq!(r::C, ibm_bit(56));
        assert_eq!(r::W, ibm_bit(57));
        assert_eq!(r::I, ibm_bit(58));
        assert_eq!(r::M, ibm_bit(59));
        assert_eq!(r::G, ibm_bit(60));
        assert_eq!(r::N, ibm_bit(61));
        assert_eq!(r::PP, ibm_bits(62, 63));
        // 64K LP encoding 0b0001 sits in the last four RPN bits (48:51).
        assert_eq!(r::LP_64K, ibm_bit(51));
        assert_eq!(r::LP_FIELD_64K, ibm_bits(48, 51));
        // A 16M page's code is compared in every RPN bit below 16M: real
        // address bits 40:51 of the 64-bit address.
        assert_eq!(r::LP_FIELD_16M, ibm_bits(40, 51));
        assert_eq!(r::LP_FIELD_16M, ((16 << 20) - 1) & r::RPN);
        assert_eq!(r::LP_16M & !r::LP_FIELD_16M, 0);
    }

    #[test]
    fn mapping_worked_example_16m_in_1t() {
        // A 1T segment, VSID 0x2_0000_0001 (a linear-map-style VSID
        // above 2^37), the 16M page at segment offset 0x12_3400_0000 seen
        // through an address 0x80_1234 bytes into it (VA bit 23 set),
        // real page 0x3_0100_0000.
        //   AVPN = VSID << 17 | offset >> 23, VA bit 23 (AVPN bit 0)
        //        cleared = 0x4_0000_0002_0000 | 0x2468 = 0x4_0000_0002_2468
        //   v    = 01 << 62 | AVPN << 7 | L | V
        //   r    = RPN 0x3_0100_0000 (LP bits 40:51 = 0) | R | M | PP 10
        let vsid = Vsid::new(0x2_0000_0001);
        let ea = EffectiveAddress::new(0xc000_0012_3480_1234);
        let pa = PhysAddr::new(0x3_0100_0000);
        let h = Hpte::mapping(vsid, ea, SegmentSize::T1, PageSize::M16, pa, Pp::RW_RW).unwrap();
        assert_eq!(h.avpn(), 0x4_0000_0002_2468);
        assert_eq!(
            h.v,
            (1 << 62) | (0x4_0000_0002_2468 << 7) | ibm_bit(61) | ibm_bit(63)
        );
        assert_eq!(h.r, 0x3_0100_0000 | r::R | r::M | 0b10);
        assert!(h.is_large() && h.is_valid() && !h.is_secondary());
        assert_eq!(h.page_size(), Some(PageSize::M16));
        assert_eq!(h.real_address(), Some(pa));
        // The MMU's compare word for any address in the page matches: it
        // is built from the page-aligned address.
        let base = EffectiveAddress::new(0xc000_0012_3400_0000);
        assert!(h.matches(avpn_word(vsid, base, SegmentSize::T1) | v::V));
        // The same page in a 256 MB segment: offset bits 24:27 in the
        // AVPN, bit 23 clear.
        let h256 = Hpte::mapping(
            Vsid::new(0x77),
            EffectiveAddress::new(0x0000_0001_0580_0000),
            SegmentSize::M256,
            PageSize::M16,
            pa,
            Pp::RW_NONE,
        )
        .unwrap();
        assert_eq!(h256.avpn(), (0x77 << 5) | 0b01010);
        // A frame aligned to 64K but not 16M is refused.
        assert!(Hpte::mapping(
            vsid,
            ea,
            SegmentSize::T1,
            PageSize::M16,
            PhysAddr::new(0x3_0101_0000),
            Pp::RW_RW
        )
        .is_none());
    }

    #[test]
    fn large_page_encodings_decode_unambiguously() {
        let large = |r: u64| Hpte { v: v::L | v::V, r };
        // 64K page at an address whose bits 16:23 are set: still 64K.
        assert_eq!(
            large(0x12_3451_0000 | 0x1000).page_size(),
            Some(PageSize::K64)
        );
        assert_eq!(
            large(0x12_3451_0000 | 0x1000).real_address(),
            Some(PhysAddr::new(0x12_3451_0000))
        );
        // 16M page: nothing below 16M.
        assert_eq!(large(0x12_3400_0000).page_size(), Some(PageSize::M16));
        // 16M in a 64K segment (LP 0x8), in a 4K segment (0x38), 64K in 4K
        // (0x7), 16G (0x3): not modelled.
        for lp in [0x8000, 0x3_8000, 0x7000, 0x3000] {
            assert_eq!(large(0x12_3400_0000 | lp).page_size(), None, "{lp:#x}");
            assert_eq!(large(0x12_3400_0000 | lp).real_address(), None);
        }
        // L = 0 is 4K whatever the low RPN bits hold.
        assert_eq!(
            Hpte {
                v: v::V,
                r: 0x12_3400_1000
            }
            .page_size(),
            Some(PageSize::K4)
        );
        // with_page round-trips each size and sets L only for large ones.
        for (psize, pa) in [
            (PageSize::K4, 0x12_3456_7000),
            (PageSize::K64, 0x12_3456_0000),
            (PageSize::M16, 0x12_3400_0000),
        ] {
            let h = Hpte::EMPTY.with_page(PhysAddr::new(pa), psize);
            assert_eq!(h.page_size(), Some(psize));
            assert_eq!(h.real_address(), Some(PhysAddr::new(pa)));
            assert_eq!(h.is_large(), psize != PageSize::K4);
        }
    }

    #[test]
    fn pp_table_9() {
        let n = PpAccess::NONE;
        let rx = PpAccess::RX;
        let rwx = PpAccess::RWX;
        // (pp, key 0, key 1) from the ISA's PP table / QEMU ppc_hash64_pte_prot.
        let table = [
            (0b000, rwx, n),
            (0b001, rwx, rx),
            (0b010, rwx, rwx),
            (0b011, rx, rx),
            (0b100, n, n),
            (0b101, n, n),
            (0b110, rx, n),
            (0b111, n, n),
        ];
        for (pp, k0, k1) in table {
            let p = Pp::new(pp);
            assert_eq!(p.access(false), k0, "pp {pp:03b} key 0");
            assert_eq!(p.access(true), k1, "pp {pp:03b} key 1");
        }
        assert!(Pp::try_new(8).is_none());
    }

    #[test]
    fn pp_round_trips_through_r() {
        for pp in 0..8 {
            let p = Pp::new(pp);
            assert_eq!(Pp::from_r(p.to_r_bits()), p);
            assert_eq!(Hpte::EMPTY.with_pp(p).pp(), p);
        }
        // 0b110 = PP0 set, PP = 0b10.
        assert_eq!(Pp::RO_NONE.to_r_bits(), r::PP0 | 0b10);
    }

    #[test]
    fn avpn_worked_example_256m() {
        // VSID 0x1234, EA 0x0000_0000_1abc_d123 (ESID 1, offset 0xabc_d123).
        // VA = 0x1234 << 28 | 0xabcd123 = 0x1234_abc_d123.
        // VA >> 23 = (0x1234 << 5) | (0xabcd123 >> 23) = 0x24680 | 0x15 = 0x24695.
        // Placed at bit 7: 0x24695 << 7 = 0x123_4a80; B = 00.
        let w = avpn_word(
            Vsid::new(0x1234),
            EffectiveAddress::new(0x1abc_d123),
            SegmentSize::M256,
        );
        assert_eq!(w, 0x24695 << 7);
        assert_eq!(w, 0x0123_4a80);
    }

    #[test]
    fn avpn_worked_example_1t() {
        // VSID 0x3, EA 0x0000_0123_4567_8000 in a 1T segment: offset =
        // 0x23_4567_8000 (EA mod 2^40). VA >> 23 = (3 << 17) | (offset >> 23)
        // = 0x60000 | 0x468a = 0x6468a; B = 01.
        let w = avpn_word(
            Vsid::new(3),
            EffectiveAddress::new(0x0123_4567_8000),
            SegmentSize::T1,
        );
        assert_eq!(w, (1 << 62) | (0x6468a << 7));
    }

    #[test]
    fn mapping_4k_and_64k() {
        let vsid = Vsid::new(0x1234);
        let ea = EffectiveAddress::new(0x1abc_d123);
        let h = Hpte::mapping(
            vsid,
            ea,
            SegmentSize::M256,
            PageSize::K4,
            PhysAddr::new(0x7_5000),
            Pp::RW_RW,
        )
        .unwrap();
        assert_eq!(h.v, 0x0123_4a80 | v::V);
        assert_eq!(h.r, 0x7_5000 | r::R | r::M | 0b10);
        assert_eq!(h.page_size(), Some(PageSize::K4));
        assert_eq!(h.real_address(), Some(PhysAddr::new(0x7_5000)));
        assert_eq!(h.wimg(), Wimg::M);
        assert!(h.is_valid() && !h.is_secondary() && !h.is_bolted() && !h.is_large());

        let big = Hpte::mapping(
            vsid,
            ea,
            SegmentSize::M256,
            PageSize::K64,
            PhysAddr::new(0x30_0000),
            Pp::RO_RO,
        )
        .unwrap();
        // 64K: L = 1 and RPN low nibble 0x1 (r |= 0x1000).
        assert_eq!(big.v, 0x0123_4a80 | v::L | v::V);
        assert_eq!(big.r, 0x30_0000 | 0x1000 | r::R | r::M | 0b11);
        assert_eq!(big.page_size(), Some(PageSize::K64));
        assert_eq!(big.real_address(), Some(PhysAddr::new(0x30_0000)));

        // Misaligned frame / VSID too wide for 1T are refused.
        assert!(Hpte::mapping(
            vsid,
            ea,
            SegmentSize::M256,
            PageSize::K64,
            PhysAddr::new(0x7_5000),
            Pp::RW_RW
        )
        .is_none());
        assert!(Hpte::mapping(
            Vsid::new(1 << 40),
            ea,
            SegmentSize::T1,
            PageSize::K4,
            PhysAddr::new(0),
            Pp::RW_RW
        )
        .is_none());
    }

    #[test]
    fn field_builders_round_trip() {
        let h = Hpte::EMPTY
            .with_segment_size(SegmentSize::T1)
            .with_avpn(0x7f_ffff_ffff_ffff)
            .with_bolted(true)
            .with_secondary(true)
            .with_valid(true)
            .with_key(0x1f)
            .with_referenced(true)
            .with_changed(true)
            .with_no_execute(true)
            .with_wimg(Wimg::I | Wimg::G);
        assert_eq!(h.segment_size(), Some(SegmentSize::T1));
        assert_eq!(h.avpn(), 0x7f_ffff_ffff_ffff);
        assert!(h.is_bolted() && h.is_secondary() && h.is_valid());
        assert_eq!(h.key(), 0x1f);
        assert_eq!(h.r & (r::KEY_HI | r::KEY_LO), r::KEY_HI | r::KEY_LO);
        assert!(h.referenced() && h.changed() && h.no_execute());
        assert_eq!(h.wimg(), Wimg::I | Wimg::G);
        let cleared = h
            .with_bolted(false)
            .with_secondary(false)
            .with_valid(false)
            .with_key(0)
            .with_referenced(false)
            .with_changed(false)
            .with_no_execute(false)
            .with_wimg(Wimg::empty())
            .with_avpn(0)
            .with_segment_size(SegmentSize::M256);
        assert_eq!(cleared, Hpte::EMPTY);
        assert_eq!(Hpte { v: 3 << 62, r: 0 }.segment_size(), None);
    }

    #[test]
    fn key_split_worked_example() {
        // key 0b10110: bits 0-1 "10" go to r bits 2:3 (0x2000_0000_0000_0000),
        // bits 2-4 "110" to r bits 52:54 (0b110 << 9 = 0xc00).
        let h = Hpte::EMPTY.with_key(0b10110);
        assert_eq!(h.r, 0x2000_0000_0000_0c00);
        assert_eq!(h.key(), 0b10110);
    }

    #[test]
    fn big_endian_image() {
        let h = Hpte {
            v: 0x0102_0304_0506_0708,
            r: 0x1112_1314_1516_1718,
        };
        let b = h.to_be_bytes();
        assert_eq!(b[0], 0x01);
        assert_eq!(b[7], 0x08);
        assert_eq!(b[8], 0x11);
        assert_eq!(b[15], 0x18);
        assert_eq!(Hpte::from_be_bytes(b), h);
    }

    #[test]
    fn compare_ignores_software_and_l_bits() {
        let h = Hpte::EMPTY.with_avpn(0x55).with_valid(true);
        let probe = h.v;
        assert!(h.with_bolted(true).with_large(true).matches(probe));
        assert!(!h.with_secondary(true).matches(probe));
        assert!(!h.with_valid(false).matches(probe));
        assert!(!h.with_segment_size(SegmentSize::T1).matches(probe));
    }

    #[test]
    fn isa300_layout_moves_b_to_doubleword_1_bits_4_5() {
        // ISA bit n of a doubleword is 1 << (63 - n).
        let bit = |n: u32| 1u64 << (63 - n);
        assert_eq!(isa300::R_B, bit(4) | bit(5));
        assert_eq!(isa300::R_WIDE_RPN, bit(4) | bit(5) | bit(6));
        assert_eq!(isa300::V_RESERVED, (0..12).map(bit).fold(0, |a, b| a | b));
        for ssize in [SegmentSize::M256, SegmentSize::T1] {
            let vsid = Vsid::new(0x1234_5678 & ((1 << 28) - 1));
            let ea = EffectiveAddress::new(0x0abc_d000);
            let old = Hpte::mapping(
                vsid,
                ea,
                ssize,
                PageSize::K4,
                PhysAddr::new(0x1_2345_6000),
                Pp::RW_RW,
            )
            .unwrap()
            .with_bolted(true);
            let new = old.to_isa300().expect("a 68-bit VA and a small RPN fit");
            assert_eq!(new.v & isa300::V_RESERVED, 0);
            assert_eq!(new.v & !isa300::V_RESERVED, old.v & !v::B);
            assert_eq!((new.r & isa300::R_B) >> isa300::R_B_SHIFT, ssize.b_code());
            assert_eq!(new.r & !isa300::R_B, old.r);
            assert_eq!(new.from_isa300(), old);
        }
    }

    #[test]
    fn isa300_refuses_what_a_68_bit_va_or_57_bit_ra_cannot_hold() {
        let ea = EffectiveAddress::new(0);
        // A 256M segment's VSID above 40 bits puts VA bits 0:9 in AVPN.
        let wide = Hpte::mapping(
            Vsid::new(1 << 40),
            ea,
            SegmentSize::M256,
            PageSize::K4,
            PhysAddr::new(0),
            Pp::RW_RW,
        )
        .unwrap();
        assert_eq!(wide.to_isa300(), None);
        let fits = Hpte::mapping(
            Vsid::new((1 << 40) - 1),
            ea,
            SegmentSize::M256,
            PageSize::K4,
            PhysAddr::new(0),
            Pp::RW_RW,
        )
        .unwrap();
        assert!(fits.to_isa300().is_some());
        // A 1T segment's VSID above 28 bits likewise.
        let wide = Hpte::mapping(
            Vsid::new(1 << 28),
            ea,
            SegmentSize::T1,
            PageSize::K4,
            PhysAddr::new(0),
            Pp::RW_RW,
        )
        .unwrap();
        assert_eq!(wide.to_isa300(), None);
        let far = Hpte {
            v: v::V,
            r: 1 << 57,
        };
        assert_eq!(far.to_isa300(), None);
        assert!(Hpte {
            v: v::V,
            r: 1 << 56
        }
        .to_isa300()
        .is_some());
    }
}
