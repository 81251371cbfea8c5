//! OPAL, the firmware interface of a powernv machine (skiboot): call
//! tokens, return codes, and the call itself.
//!
//! A call passes its token in r0 and up to eight arguments in r3..r10,
//! with r2 set to OPAL's base address, and branches to OPAL's entry
//! address; the result comes back in r3. OPAL expects hypervisor real
//! mode (MSR\[IR,DR\] = 0) with external interrupts off, and follows the
//! ELF ABI otherwise (it preserves r14..r31 and r1), but r2 is the
//! caller's to restore. The base and entry addresses are in r8/r9 at
//! kernel entry and in the `/ibm,opal` node (`opal-base-address`,
//! `opal-entry-address`).

/// Call tokens (skiboot `opal-api.h`).
pub mod token {
    /// Writes to a console: terminal, pointer to a big-endian u64 length
    /// (in: bytes to write, out: bytes written), buffer.
    pub const CONSOLE_WRITE: u64 = 1;
    /// Reads from a console: terminal, pointer to length, buffer.
    pub const CONSOLE_READ: u64 = 2;
    /// Powers the machine off (QEMU exits with status 0).
    pub const CEC_POWER_DOWN: u64 = 5;
    /// Reboots the machine.
    pub const CEC_REBOOT: u64 = 6;
    /// Lets OPAL run its pollers (console flushing, IPMI).
    pub const POLL_EVENTS: u64 = 10;
    /// Room left in a console's output buffer.
    pub const CONSOLE_WRITE_BUFFER_SPACE: u64 = 25;
    /// Starts a processor thread waiting in OPAL: server number, start
    /// address (asynchronous).
    pub const START_CPU: u64 = 41;
    /// Whether a processor thread is in OPAL, started, or gone.
    pub const QUERY_CPU_STATUS: u64 = 42;
    /// Hands the calling thread back to OPAL.
    pub const RETURN_CPU: u64 = 69;
    /// Re-initialises every processor's state, e.g. the interrupt
    /// endianness ([`super::REINIT_CPUS_HILE_BE`]).
    pub const REINIT_CPUS: u64 = 70;
    /// Whether OPAL implements a token.
    pub const CHECK_TOKEN: u64 = 80;
    /// `OPAL_IPMI_SEND(interface, msg, len)`.
    pub const IPMI_SEND: u64 = 107;
    /// `OPAL_IPMI_RECV(interface, msg, &len)`.
    pub const IPMI_RECV: u64 = 108;
}

/// [`token::REINIT_CPUS`] flag: interrupts in big-endian mode.
pub const REINIT_CPUS_HILE_BE: u64 = 1 << 0;

/// Why an OPAL call failed (its negative return code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpalError {
    /// -1: a bad argument.
    Parameter,
    /// -2: try again.
    Busy,
    /// -3: done in part.
    Partial,
    /// -4: not possible now.
    Constrained,
    /// -5: the resource is closed (e.g. power-down without a BMC).
    Closed,
    /// -6: hardware failure.
    Hardware,
    /// -7: not implemented.
    Unsupported,
    /// -8: not allowed.
    Permission,
    /// -9: out of memory.
    NoMemory,
    /// -10: out of a resource.
    Resource,
    /// -11: OPAL failed.
    Internal,
    /// -12: busy, and an event is pending ([`token::POLL_EVENTS`]).
    BusyEvent,
    /// -13: the hardware is frozen.
    HardwareFrozen,
    /// -14: the target is in the wrong state (e.g. a processor already
    /// started).
    WrongState,
    /// -16: nothing to return (no IPMI message waiting).
    Empty,
    /// Any other negative code.
    Other(i64),
}

impl OpalError {
    /// The error of return code `rc`, `None` for success (`rc` ≥ 0).
    pub const fn from_return(rc: i64) -> Option<OpalError> {
        Some(match rc {
            0.. => return None,
            -1 => OpalError::Parameter,
            -2 => OpalError::Busy,
            -3 => OpalError::Partial,
            -4 => OpalError::Constrained,
            -5 => OpalError::Closed,
            -6 => OpalError::Hardware,
            -7 => OpalError::Unsupported,
            -8 => OpalError::Permission,
            -9 => OpalError::NoMemory,
            -10 => OpalError::Resource,
            -11 => OpalError::Internal,
            -12 => OpalError::BusyEvent,
            -13 => OpalError::HardwareFrozen,
            -14 => OpalError::WrongState,
            -16 => OpalError::Empty,
            other => OpalError::Other(other),
        })
    }

    /// Whether retrying the call may succeed.
    pub const fn is_busy(self) -> bool {
        matches!(self, OpalError::Busy | OpalError::BusyEvent)
    }
}

/// Where OPAL is: its base (r2 during calls) and entry addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opal {
    /// `opal-base-address`.
    pub base: u64,
    /// `opal-entry-address`.
    pub entry: u64,
}

impl Opal {
    /// Calls OPAL function `token` with `args` (unused ones 0) and
    /// returns its result, negative codes as [`OpalError`].
    ///
    /// # Safety
    ///
    /// The caller runs in hypervisor real mode (MSR\[IR,DR\] = 0) with
    /// MSR\[EE\] = 0, `self` names the OPAL that booted this kernel, and
    /// every pointer argument is a real address of memory valid for what
    /// the call does with it.
    #[cfg(target_arch = "powerpc64")]
    pub unsafe fn call(&self, token: u64, args: [u64; 4]) -> Result<u64, OpalError> {
        let rc: i64;
        // SAFETY: the caller guarantees the machine state OPAL requires and
        // the validity of the arguments. r2 (TOC) is kept in r14, which
        // OPAL preserves as the ELF ABI says, and restored after the call.
        // The clobbers are the ABI's volatile GPRs and special registers,
        // named one by one rather than with clobber_abi("C"): that would
        // also name floating-point registers, and the compiler would then
        // save FPRs around the call, which traps where MSR[FP] = 0 (an
        // interrupt handler printing through OPAL). OPAL (skiboot) is
        // built without floating point and leaves the FPRs alone.
        unsafe {
            core::arch::asm!(
                "mr 14, 2",
                "mr 2, {base}",
                "mtctr {entry}",
                "bctrl",
                "mr 2, 14",
                base = in(reg) self.base,
                entry = in(reg) self.entry,
                inlateout("r0") token => _,
                inlateout("r3") args[0] => rc,
                inlateout("r4") args[1] => _,
                inlateout("r5") args[2] => _,
                inlateout("r6") args[3] => _,
                out("r14") _,
                lateout("r7") _,
                lateout("r8") _,
                lateout("r9") _,
                lateout("r10") _,
                lateout("r11") _,
                lateout("r12") _,
                out("ctr") _,
                out("lr") _,
                out("xer") _,
                out("cr0") _,
                out("cr1") _,
                out("cr5") _,
                out("cr6") _,
                out("cr7") _,
            );
        }
        match OpalError::from_return(rc) {
            None => Ok(rc as u64),
            Some(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_codes_decode() {
        assert_eq!(OpalError::from_return(0), None);
        assert_eq!(OpalError::from_return(7), None);
        assert_eq!(OpalError::from_return(-1), Some(OpalError::Parameter));
        assert_eq!(OpalError::from_return(-5), Some(OpalError::Closed));
        assert_eq!(OpalError::from_return(-14), Some(OpalError::WrongState));
        assert_eq!(OpalError::from_return(-99), Some(OpalError::Other(-99)));
        assert!(OpalError::Busy.is_busy() && OpalError::BusyEvent.is_busy());
        assert!(!OpalError::Closed.is_busy());
    }
}
