//! Console on the PAPR virtual terminal (`H_PUT_TERM_CHAR`) or, on powernv,
//! OPAL's (`crate::platform`), the `log`
//! backend and the `print!`/`println!` macros.
//!
//! Terminal number 0 is QEMU's "first vty" shortcut (hw/char/spapr_vty.c),
//! which lets the kernel print before it has read the vty's `reg` from the
//! device tree; [`set_termno`] switches to the real number afterwards.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use arch_ppc64::instructions::hcall::{hcall, opcode, PaprError};

/// Terminal number (the vty node's `reg`) used for output.
static TERMNO: AtomicU32 = AtomicU32::new(0);

/// Serialises whole `print!` calls so lines do not interleave: 0 when
/// free, else 1 + the CPU index of the holder.
///
/// A printer that finds the lock held by another processor waits for it.
/// One that finds it held by its own processor has interrupted the holder
/// (a trap handler printing): waiting would deadlock, so it goes ahead
/// without the lock and the output may interleave.
static LOCK: AtomicUsize = AtomicUsize::new(0);

/// Sets the terminal number used from now on (the vty's `reg`).
pub fn set_termno(termno: u32) {
    TERMNO.store(termno, Ordering::Relaxed);
}

/// The terminal number in use.
pub fn termno() -> u32 {
    TERMNO.load(Ordering::Relaxed)
}

/// Writes `bytes` to terminal `termno`, at most 16 bytes per hcall (PAPR's
/// limit; QEMU answers H_PARAMETER above it). Bytes are packed big-endian
/// into r6/r7, first byte in the most-significant position.
pub fn put_term_chars(termno: u32, bytes: &[u8]) -> Result<(), PaprError> {
    for chunk in bytes.chunks(16) {
        let mut packed = [0u8; 16];
        packed[..chunk.len()].copy_from_slice(chunk);
        let hi = u64::from_be_bytes(packed[..8].try_into().expect("8 bytes"));
        let lo = u64::from_be_bytes(packed[8..].try_into().expect("8 bytes"));
        loop {
            // SAFETY: H_PUT_TERM_CHAR reads only its register arguments.
            let result = unsafe {
                hcall(
                    opcode::H_PUT_TERM_CHAR,
                    &[u64::from(termno), chunk.len() as u64, hi, lo],
                )
            };
            match result {
                Ok(_) => break,
                // The terminal's buffer is full: try again.
                Err(PaprError::Busy) => continue,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// `fmt::Write` on the console (the vty on pseries, OPAL's on powernv:
/// `crate::platform::console_write`); turns `\n` into `\r\n` for terminals.
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for (i, line) in s.split('\n').enumerate() {
            if i > 0 {
                crate::platform::console_write(b"\r\n").map_err(|_| fmt::Error)?;
            }
            crate::platform::console_write(line.as_bytes()).map_err(|_| fmt::Error)?;
        }
        Ok(())
    }
}

/// Prints `args` under the console lock (used by `print!`).
pub fn print_fmt(args: fmt::Arguments<'_>) {
    let me = crate::trap::cpu_index() + 1;
    let took = loop {
        match LOCK.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => break true,
            Err(holder) if holder == me => break false,
            Err(_) => core::hint::spin_loop(),
        }
    };
    // Console output errors have nowhere to be reported.
    let _ = Console.write_fmt(args);
    if took {
        LOCK.store(0, Ordering::Release);
    }
}

/// Prints `args` without taking the console lock: for the panic and trap
/// paths, which may interrupt a holder of the lock.
pub fn print_fmt_unlocked(args: fmt::Arguments<'_>) {
    let _ = Console.write_fmt(args);
}

/// Releases the console lock if a failed test left it held.
///
/// # Safety
///
/// The holder must no longer run (its stack was abandoned).
pub unsafe fn force_unlock() {
    // Only this processor's abandoned hold: another processor's printer
    // is still running and releases its own.
    let me = crate::trap::cpu_index() + 1;
    let _ = LOCK.compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed);
}

/// Prints to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print_fmt(format_args!($($arg)*)) };
}

/// Prints to the console, with a newline.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::print_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}

/// The `log` backend: one line per record, `[LEVEL target] message`.
struct ConsoleLogger;

impl log::Log for ConsoleLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            println!(
                "[{:<5} {}] {}",
                record.level(),
                record.target(),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}

static LOGGER: ConsoleLogger = ConsoleLogger;

/// Installs the console as the `log` backend at `level`.
pub fn init_logger(level: log::LevelFilter) {
    // A second call keeps the first logger; nothing to report.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
