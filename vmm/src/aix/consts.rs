//! Constants of the AIX memory services, with the values of AIX's
//! `<sys/vmuser.h>`, `<sys/adspace.h>`, `<sys/seg.h>` and `<sys/errno.h>`
//! (64-bit kernel; the table in `docs/aix-services.md`, "Constants").
//!
//! Each constant has the C type the services take it in, so a Rust caller
//! passes it exactly as a C caller would. The C header
//! `vmm/include/sys/{vmuser,adspace,seg}.h` exports the same names and values; a test
//! compares the two.

use super::ctypes::{vmhandle_t, vmkey_t};
use core::ffi::{c_int, c_long};

/// `vm_galloc`/`vms_create` type flag: a working-storage segment (anonymous,
/// zero-filled). Required by `vm_galloc`.
pub const V_WORKING: c_int = 0x1;
/// `vm_galloc` type flag: system segment (AIX: global kernel memory that is
/// not charged to a process). Accepted, no further effect here.
pub const V_SYSTEM: c_int = 0x20;
/// `vm_galloc` type flag: user-readable. The pages get PP 01 instead of 00,
/// so a `VM_UNPRIV` attachment reads them (ISA Book III §5.7.13, key 1 with
/// PP 01 is read-only).
pub const V_UREAD: c_int = 0x80;
/// `vm_galloc` type flag: no instruction fetch from the memory (the segment
/// is mapped with SLB N = 1). The AIX literal is `0x80000000`, which as a C
/// `int` is `INT_MIN`.
pub const V_NOEXEC: c_int = 0x8000_0000_u32 as c_int;

/// `vm_guatt`/`vm_gudet` flag: the system chooses the user address. The only
/// value the services accept.
pub const VU_ANYWHERE: c_long = 0x2;

/// Access key "privileged": Ks = Kp = 0. With PP 00/01 the holder reads and
/// writes.
pub const VM_PRIV: vmkey_t = 0;
/// Access key "unprivileged": Ks = Kp = 1. With PP 00 no access, with PP 01
/// read-only.
pub const VM_UNPRIV: vmkey_t = 1;

/// AIX errno: invalid argument.
pub const EINVAL: c_int = 22;
/// AIX errno: not enough memory (frames, SIDs, metadata).
pub const ENOMEM: c_int = 12;
/// AIX errno: no space left (the `vm_galloc` address range is exhausted).
pub const ENOSPC: c_int = 28;

/// log2 of the segment size: a segment spans 256 MB (ISA Book III §5.7.6,
/// 256 MB segments have a 28-bit byte offset).
pub const SEGSHIFT: u32 = 28;
/// Bytes in one segment.
pub const SEGSIZE: u64 = 1 << SEGSHIFT;
/// Mask of the offset within a segment (`SEGOFFSET` in AIX's `<sys/seg.h>`).
pub const SEGOFFSET: u64 = SEGSIZE - 1;
/// Number of "segment registers" in an `adspace_t` (ESIDs 0..15 on ppc64).
pub const NSEGS: usize = 16;
/// Bytes in a page: the services work in 4 KB pages.
pub const PAGESIZE: u64 = 4096;
/// Pages in one segment.
pub const PAGES_PER_SEGMENT: u64 = SEGSIZE / PAGESIZE;

/// Width of a SID on the 64-bit kernel (`L2SIDLIMIT`).
pub const L2SIDLIMIT: u32 = 35;
/// Largest SID value; itself reserved as [`INVLSID`].
pub const SIDMAX: u64 = (1 << L2SIDLIMIT) - 1;
/// The "invalid SID" handle value that `as_geth64` and `as_getsrval64`
/// return on error. No valid handle equals it: a valid handle has its low
/// nine bits clear, this value has them set.
pub const INVLSID: vmhandle_t = SIDMAX;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_aix_values() {
        assert_eq!(V_WORKING, 1);
        assert_eq!(V_SYSTEM, 0x20);
        assert_eq!(V_UREAD, 0x80);
        assert_eq!(V_NOEXEC as u32, 0x8000_0000);
        assert_eq!(VU_ANYWHERE, 2);
        assert_eq!((VM_PRIV, VM_UNPRIV), (0, 1));
        assert_eq!((EINVAL, ENOMEM, ENOSPC), (22, 12, 28));
        assert_eq!(SEGSIZE, 0x1000_0000);
        assert_eq!(SEGOFFSET, 0x0FFF_FFFF);
        assert_eq!(NSEGS, 16);
        assert_eq!(SIDMAX, 0x7_FFFF_FFFF);
        assert_eq!(INVLSID, 0x7_FFFF_FFFF);
        assert_eq!(PAGES_PER_SEGMENT, 65536);
    }

    #[test]
    fn type_flags_are_distinct_bits() {
        let flags = [V_WORKING, V_SYSTEM, V_UREAD, V_NOEXEC];
        let mut seen = 0u32;
        for f in flags {
            assert_eq!((f as u32).count_ones(), 1);
            assert_eq!(seen & f as u32, 0);
            seen |= f as u32;
        }
    }
}
