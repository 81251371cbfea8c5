//! Access keys and virtual memory handles.
//!
//! AIX does not publish the bit layout of a 64-bit `vmhandle_t`. This
//! project makes a handle equal to the VSID doubleword of an SLB entry
//! (ISA Book III §5.7.6.1, `slbmte` RS): `SID << 12 | Ks 0x800 | Kp 0x400 |
//! N 0x200`, segment size B = 00 (256 MB). The SID stands where the VSID
//! goes; the core derives the hardware VSID from it.

use super::consts::{INVLSID, SIDMAX, VM_PRIV, VM_UNPRIV};
use super::ctypes::{vmhandle_t, vmid_t, vmkey_t};

/// An access key as the services take it: the pair (Ks, Kp) of the SLB
/// entry the handle becomes.
///
/// The hardware picks Kp in problem state and Ks in supervisor state
/// (ISA Book III §5.7.13.1); AIX's two keys set both to the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VmKey {
    /// `VM_PRIV` (0): Ks = Kp = 0, "unlimited access".
    Priv,
    /// `VM_UNPRIV` (1): Ks = Kp = 1, "limited access".
    Unpriv,
}

impl VmKey {
    /// The key for a C `vmkey_t`, or `None` if it is neither `VM_PRIV` nor
    /// `VM_UNPRIV`.
    pub const fn from_raw(key: vmkey_t) -> Option<Self> {
        match key {
            VM_PRIV => Some(VmKey::Priv),
            VM_UNPRIV => Some(VmKey::Unpriv),
            _ => None,
        }
    }

    /// The C value of the key.
    pub const fn raw(self) -> vmkey_t {
        match self {
            VmKey::Priv => VM_PRIV,
            VmKey::Unpriv => VM_UNPRIV,
        }
    }

    /// The SLB Ks bit: the key used in supervisor state.
    pub const fn ks(self) -> bool {
        matches!(self, VmKey::Unpriv)
    }

    /// The SLB Kp bit: the key used in problem state.
    pub const fn kp(self) -> bool {
        matches!(self, VmKey::Unpriv)
    }
}

/// Why a `vmhandle_t` or the arguments of `vm_handle` were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmHandleError {
    /// The vmid is negative or not below [`SIDMAX`].
    BadVmid {
        /// The vmid passed.
        vmid: vmid_t,
    },
    /// The key is neither `VM_PRIV` nor `VM_UNPRIV`.
    BadKey {
        /// The key passed.
        key: vmkey_t,
    },
    /// The raw handle has bits set outside SID, Ks, Kp and N, or is
    /// [`INVLSID`].
    BadHandle {
        /// The handle passed.
        handle: vmhandle_t,
    },
}

impl VmHandleError {
    /// The AIX errno this error becomes at a system call boundary: always
    /// `EINVAL` (in C `vm_handle` answers `INVLSID` instead).
    pub const fn errno(&self) -> super::error::Errno {
        super::error::Errno::Inval
    }
}

/// A handle argument of the services: a checked [`VmHandle`] (what
/// `vm_handle` and `as_geth64` give Rust callers), or a raw `vmhandle_t`
/// as C passes it, which the service checks and refuses with its
/// `BadHandle` error.
pub trait IntoVmHandle {
    /// The checked handle.
    ///
    /// # Errors
    ///
    /// A raw value that is no handle ([`VmHandle::from_raw`]).
    fn into_vm_handle(self) -> Result<VmHandle, VmHandleError>;
}

impl IntoVmHandle for VmHandle {
    fn into_vm_handle(self) -> Result<VmHandle, VmHandleError> {
        Ok(self)
    }
}

impl IntoVmHandle for vmhandle_t {
    fn into_vm_handle(self) -> Result<VmHandle, VmHandleError> {
        VmHandle::from_raw(self)
    }
}

/// A checked virtual memory handle: a segment (SID), its access key and
/// its no-execute bit, laid out as an SLB VSID doubleword.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct VmHandle(vmhandle_t);

impl VmHandle {
    /// SLB Ks: the key in supervisor state (ISA bit 52 of the VSID
    /// doubleword).
    pub const KS: u64 = 0x800;
    /// SLB Kp: the key in problem state (ISA bit 53).
    pub const KP: u64 = 0x400;
    /// SLB N: no instruction fetch from the segment (ISA bit 54).
    pub const N: u64 = 0x200;
    /// Position of the SID (ISA bits 16:51 hold the VSID for 256 MB
    /// segments, so its low bit is bit 51 = shift 12).
    pub const SID_SHIFT: u32 = 12;

    /// Builds the handle for segment `sid` with `key`; `no_execute` sets N.
    ///
    /// # Errors
    /// [`VmHandleError::BadVmid`] if `sid` is not below [`SIDMAX`] (SIDMAX
    /// itself is [`INVLSID`]).
    pub fn new(sid: u64, key: VmKey, no_execute: bool) -> Result<Self, VmHandleError> {
        if sid >= SIDMAX {
            return Err(VmHandleError::BadVmid {
                vmid: sid as vmid_t,
            });
        }
        let mut raw = sid << Self::SID_SHIFT;
        if key.ks() {
            raw |= Self::KS;
        }
        if key.kp() {
            raw |= Self::KP;
        }
        if no_execute {
            raw |= Self::N;
        }
        Ok(VmHandle(raw))
    }

    /// Checks a handle that came from C.
    ///
    /// # Errors
    /// [`VmHandleError::BadHandle`] if bits outside SID/Ks/Kp/N are set, the
    /// SID is not below [`SIDMAX`], or the value is [`INVLSID`].
    ///
    /// Any Ks/Kp pair is accepted: `vm_handle` only builds Ks = Kp, but
    /// `as_geth64`, `as_getsrval64` and `as_geth` return the keys of the
    /// mapping as it is, and a process's own segments are commonly mapped
    /// Ks = 0, Kp = 1 (the core's `SegKey::KERNEL`); such a handle must be
    /// accepted back by `as_puth64` and the attach services.
    pub fn from_raw(handle: vmhandle_t) -> Result<Self, VmHandleError> {
        let bad = Err(VmHandleError::BadHandle { handle });
        if handle == INVLSID {
            return bad;
        }
        let known = (SIDMAX << Self::SID_SHIFT) | Self::KS | Self::KP | Self::N;
        if handle & !known != 0 {
            return bad;
        }
        if (handle >> Self::SID_SHIFT) >= SIDMAX {
            return bad;
        }
        Ok(VmHandle(handle))
    }

    /// The raw `vmhandle_t`.
    pub const fn raw(self) -> vmhandle_t {
        self.0
    }

    /// The segment's SID (AIX `vm_vmid`).
    pub const fn sid(self) -> u64 {
        self.0 >> Self::SID_SHIFT
    }

    /// The access key (AIX `vm_getkey`): the problem-state key Kp, which
    /// decides what a process gets. For a handle with Ks = Kp (every one
    /// `vm_handle` builds) it is the key of both states; for a mixed one
    /// ([`Self::ks`] ≠ [`Self::kp`]) use those two to get both bits.
    pub const fn key(self) -> VmKey {
        if self.0 & Self::KP != 0 {
            VmKey::Unpriv
        } else {
            VmKey::Priv
        }
    }

    /// SLB Ks: the key bit supervisor state uses.
    pub const fn ks(self) -> bool {
        self.0 & Self::KS != 0
    }

    /// SLB Kp: the key bit problem state uses.
    pub const fn kp(self) -> bool {
        self.0 & Self::KP != 0
    }

    /// Whether the handle forbids instruction fetch (SLB N).
    pub const fn no_execute(self) -> bool {
        self.0 & Self::N != 0
    }

    /// The same segment with another key (keeps N).
    pub fn with_key(self, key: VmKey) -> Self {
        // The SID was checked when `self` was built, so `new` cannot fail.
        match VmHandle::new(self.sid(), key, self.no_execute()) {
            Ok(h) => h,
            Err(_) => self,
        }
    }
}

/// `vm_handle`: the handle for the object `vmid` with `key` (0 unlimited,
/// 1 limited). Pure computation; it does not check that the object exists
/// (AIX does not either: a stale handle is refused when it is attached).
///
/// Environment: any (AIX documents process environment; nothing here can
/// block).
///
/// # Errors
/// [`VmHandleError::BadVmid`] for a negative vmid or one not below
/// [`SIDMAX`]; [`VmHandleError::BadKey`] for a key other than
/// `VM_PRIV`/`VM_UNPRIV`.
pub fn vm_handle(vmid: vmid_t, key: vmkey_t) -> Result<VmHandle, VmHandleError> {
    let key = VmKey::from_raw(key).ok_or(VmHandleError::BadKey { key })?;
    if vmid < 0 || vmid as u64 >= SIDMAX {
        return Err(VmHandleError::BadVmid { vmid });
    }
    VmHandle::new(vmid as u64, key, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    use arch_ppc64::structures::ibm_bit as isa_bit;

    #[test]
    fn slb_bits_match_isa_numbers() {
        assert_eq!(VmHandle::KS, isa_bit(52));
        assert_eq!(VmHandle::KP, isa_bit(53));
        assert_eq!(VmHandle::N, isa_bit(54));
        // VSID field ends at bit 51 for 256 MB segments.
        assert_eq!(1u64 << VmHandle::SID_SHIFT, isa_bit(51));
    }

    #[test]
    fn vm_handle_layout() {
        let h = vm_handle(0x1234, VM_PRIV).unwrap();
        assert_eq!(h.raw(), 0x1234 << 12);
        let h = vm_handle(0x1234, VM_UNPRIV).unwrap();
        assert_eq!(h.raw(), 0x1234 << 12 | 0xC00);
        assert_eq!(h.sid(), 0x1234);
        assert_eq!(h.key(), VmKey::Unpriv);
        assert!(!h.no_execute());
        assert_eq!(VmHandle::from_raw(h.raw()), Ok(h));
    }

    #[test]
    fn vm_handle_refuses_bad_arguments() {
        assert_eq!(vm_handle(1, 2), Err(VmHandleError::BadKey { key: 2 }));
        assert_eq!(vm_handle(-1, 0), Err(VmHandleError::BadVmid { vmid: -1 }));
        let max = SIDMAX as vmid_t;
        assert_eq!(vm_handle(max, 0), Err(VmHandleError::BadVmid { vmid: max }));
        assert!(vm_handle(max - 1, 1).is_ok());
    }

    #[test]
    fn no_valid_handle_is_invlsid() {
        assert!(VmHandle::from_raw(INVLSID).is_err());
        // Every handle built has the low 9 bits clear; INVLSID does not.
        for sid in [0, 1, 0x7FF, SIDMAX - 1] {
            for key in [VmKey::Priv, VmKey::Unpriv] {
                for n in [false, true] {
                    assert_ne!(VmHandle::new(sid, key, n).unwrap().raw(), INVLSID);
                }
            }
        }
    }

    #[test]
    fn from_raw_accepts_mixed_keys_refuses_stray_bits() {
        // Mixed keys come back from as_geth64 on a Ks = 0, Kp = 1 mapping.
        let k = VmHandle::from_raw(5 << 12 | VmHandle::KP).unwrap();
        assert!(!k.ks() && k.kp());
        assert_eq!(k.key(), VmKey::Unpriv, "key() is the problem-state key");
        let s = VmHandle::from_raw(5 << 12 | VmHandle::KS).unwrap();
        assert!(s.ks() && !s.kp());
        assert_eq!(s.key(), VmKey::Priv);
        assert!(VmHandle::from_raw(5 << 12 | 0x100).is_err());
        assert!(VmHandle::from_raw(1 << 63).is_err());
        let h = VmHandle::from_raw(5 << 12 | VmHandle::N).unwrap();
        assert!(h.no_execute());
        assert_eq!(h.with_key(VmKey::Unpriv).raw(), 5 << 12 | 0xE00);
    }
}
