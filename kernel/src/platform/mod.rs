//! The machine the kernel runs on, chosen once at entry: a pseries guest
//! (Open Firmware client interface, PAPR hcalls, RTAS; the hypervisor owns
//! the hashed page table) or a powernv machine (skiboot's flattened device
//! tree and OPAL calls in hypervisor state; the kernel owns the table).
//!
//! What differs is behind the functions here: the console, the end of the
//! run and the boot information. They dispatch on one value set before
//! the first print ([`set_powernv`]). None of them is on a hot path; the
//! segment-miss, system-call and fault paths do not ask.

pub mod powernv;
pub mod pseries;

use core::sync::atomic::{AtomicBool, Ordering};

/// Set once at entry when skiboot started the kernel.
static POWERNV: AtomicBool = AtomicBool::new(false);

/// Which machine this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    /// `qemu-system-ppc64 -M pseries`: a PAPR guest.
    Pseries,
    /// `-M powernv8/9/10`: bare metal under OPAL.
    PowerNv,
}

/// Records that skiboot started the kernel (before anything prints).
pub fn set_powernv() {
    POWERNV.store(true, Ordering::Relaxed);
}

/// The machine the kernel runs on.
#[inline]
pub fn platform() -> Platform {
    if POWERNV.load(Ordering::Relaxed) {
        Platform::PowerNv
    } else {
        Platform::Pseries
    }
}

/// Whether the kernel runs on powernv (and owns the hashed page table).
#[inline]
pub fn is_powernv() -> bool {
    platform() == Platform::PowerNv
}

/// Why a console write failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsoleError;

/// Writes `bytes` to the machine's console.
pub fn console_write(bytes: &[u8]) -> Result<(), ConsoleError> {
    match platform() {
        Platform::Pseries => pseries::console_write(bytes),
        Platform::PowerNv => powernv::console_write(bytes),
    }
}

/// Ends the run: QEMU exits with status 0 when `success`; on failure it
/// exits 1 on pseries (`ibm,os-term`), and on powernv, which has no
/// failure exit, the console shows [`powernv::FAILURE_MARKER`] with
/// `message` before the power-down, for the runner to turn into status 1.
pub fn exit(success: bool, message: &str) -> ! {
    match platform() {
        Platform::Pseries => crate::rtas::exit(success, message),
        Platform::PowerNv => powernv::exit(success, message),
    }
}
