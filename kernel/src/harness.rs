//! The in-kernel test harness.
//!
//! Tests are registered where they are written with [`kernel_test!`](crate::kernel_test), which
//! places a [`KernelTest`] descriptor in the `.kernel_tests` link section;
//! the link script brackets it with `__start_kernel_tests` /
//! `__stop_kernel_tests`, so there is no central list. Tests run in name
//! order with libtest-style output. Each runs under a small setjmp
//! ([`crate::context`]): a panic (failed assertion, unexpected interrupt) prints
//! the test's name, message and location and jumps back, abandoning the
//! test's stack frames, so later tests still run. The run ends with RTAS
//! `power-off` (QEMU exit 0) if all passed, `ibm,os-term` (exit 1) if not.
//!
//! Abandoning frames skips their destructors: a failed test may leak heap
//! memory or frames, which later tests tolerate.

use alloc::vec::Vec;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

use arch_ppc64::registers::msr::{self, Msr};

use crate::context::{context_call, context_resume, SavedContext};
use crate::summary::Summary;
use crate::{bootinfo, console};

/// A test registered with [`kernel_test!`](crate::kernel_test).
pub struct KernelTest {
    /// `module::path::name`.
    pub name: &'static str,
    /// The test body.
    pub run: fn(),
}

/// Registers kernel tests: each `fn name() { .. }` becomes a test run by
/// the harness, named by its module path.
#[macro_export]
macro_rules! kernel_test {
    ($($(#[$meta:meta])* fn $name:ident() $body:block)*) => {
        $(
            $(#[$meta])*
            fn $name() $body

            const _: () = {
                #[used]
                #[link_section = ".kernel_tests"]
                static TEST: $crate::harness::KernelTest = $crate::harness::KernelTest {
                    name: concat!(module_path!(), "::", stringify!($name)),
                    run: $name,
                };
            };
        )*
    };
}

extern "C" {
    static __start_kernel_tests: u8;
    static __stop_kernel_tests: u8;
}

/// The jump buffer of the running test (null outside tests).
static CURRENT: AtomicPtr<SavedContext> = AtomicPtr::new(core::ptr::null_mut());

/// Whether the running code is inside [`panics`] (a panic is expected).
static EXPECTING: AtomicBool = AtomicBool::new(false);

/// Why the running test skipped itself ([`skip`]), until the harness
/// reads it.
static SKIP_REASON: spin::Mutex<Option<&'static str>> = spin::Mutex::new(None);

/// Ends the running test as ignored, with `reason` printed after
/// `ignored,` as libtest prints an ignored test's reason: for a test whose
/// subject is absent on this machine (e.g. a second processor). Call it
/// before the test changes anything; the harness does not undo what it
/// did.
///
/// # Panics
///
/// Outside a test, or inside [`panics`].
pub fn skip(reason: &'static str) -> ! {
    assert!(
        !EXPECTING.load(Ordering::SeqCst),
        "skip inside harness::panics"
    );
    let buf = CURRENT.swap(core::ptr::null_mut(), Ordering::SeqCst);
    assert!(!buf.is_null(), "skip outside a test");
    *SKIP_REASON.lock() = Some(reason);
    // SAFETY: `buf` is the live jump buffer of the running test, set by
    // `run` around `context_call`.
    unsafe { context_resume(buf) }
}

/// Every registered test, in link order.
pub fn tests() -> &'static [KernelTest] {
    // SAFETY: the link script places only `KernelTest` statics (by
    // kernel_test!) between the two symbols, contiguously and aligned.
    unsafe {
        let start = &raw const __start_kernel_tests;
        let stop = &raw const __stop_kernel_tests;
        let n = (stop as usize - start as usize) / core::mem::size_of::<KernelTest>();
        core::slice::from_raw_parts(start.cast::<KernelTest>(), n)
    }
}

/// The test name without the crate prefix, as libtest prints it.
fn display_name(t: &KernelTest) -> &'static str {
    t.name.strip_prefix("kernel::").unwrap_or(t.name)
}

pub use arch_ppc64::registers::spr::timebase;

/// The test filter from the kernel command line (`test=<substring>`).
fn filter() -> Option<&'static str> {
    bootinfo::get()
        .bootargs()
        .split_ascii_whitespace()
        .find_map(|w| w.strip_prefix("test="))
}

/// The timebase when the first Rust code ran.
static ENTRY_TB: AtomicU64 = AtomicU64::new(0);

/// Records the timebase at kernel entry, so the run can say what the boot
/// and the tests cost from there (QEMU's own start-up, before the kernel,
/// varies from run to run and is left out).
pub fn note_entry() {
    ENTRY_TB.store(timebase(), Ordering::Relaxed);
}

/// The timebase [`note_entry`] recorded.
pub fn entry_timebase() -> u64 {
    ENTRY_TB.load(Ordering::Relaxed)
}

/// Whether the kernel command line says virtual time counts instructions
/// (`icount=1`, which `qemu-run.sh --icount` passes with `-icount
/// shift=0`).
pub fn icount() -> bool {
    bootinfo::get()
        .bootargs()
        .split_ascii_whitespace()
        .any(|w| w == "icount=1")
}

/// Runs every registered test and ends the run with the verdict.
pub fn run() -> ! {
    let mut all: Vec<&'static KernelTest> = tests().iter().collect();
    all.sort_by_key(|t| t.name);
    let filter = filter();
    let selected: Vec<&'static KernelTest> = all
        .iter()
        .copied()
        .filter(|t| filter.is_none_or(|f| t.name.contains(f)))
        .collect();
    let mut summary = Summary {
        filtered_out: all.len() - selected.len(),
        timebase_hz: bootinfo::get().cpu.timebase_frequency.map_or(0, u64::from),
        ..Summary::default()
    };

    println!();
    println!("running {} tests", selected.len());
    let start = timebase();
    let mut failures: Vec<&'static str> = Vec::new();
    for t in &selected {
        print!("test {} ... ", display_name(t));
        let before = Snapshot::take();
        let mut buf = SavedContext::new();
        CURRENT.store(&raw mut buf, Ordering::SeqCst);
        // SAFETY: `context_call` saves the callee-saved state in `buf`
        // and calls the test; `buf` outlives the call, and a longjmp only
        // comes from the panic handler while CURRENT points at it.
        let jumped = unsafe { context_call(t.run as *const (), &raw mut buf) };
        CURRENT.store(core::ptr::null_mut(), Ordering::SeqCst);
        let skipped = SKIP_REASON.lock().take();
        if jumped == 0 {
            summary.passed += 1;
            println!("ok");
        } else if let Some(reason) = skipped {
            summary.ignored += 1;
            println!("ignored, {reason}");
        } else {
            recover_after_failure(&before);
            summary.failed += 1;
            failures.push(display_name(t));
        }
    }
    let end = timebase();
    summary.ticks = end - start;

    if !failures.is_empty() {
        println!();
        println!("failures:");
        for f in &failures {
            println!("    {f}");
        }
    }
    println!();
    crate::mm::print_summary();
    println!("{}", crate::proc::stats());
    if icount() && summary.timebase_hz > 0 {
        // Under -icount shift=0 one instruction is one ns of virtual time.
        let ns = |ticks: u64| {
            (u128::from(ticks) * 1_000_000_000 / u128::from(summary.timebase_hz)) as u64
        };
        let entry = ENTRY_TB.load(Ordering::Relaxed);
        println!(
            "run cost: {} instructions from kernel entry to the verdict ({} to the first test)",
            ns(end - entry),
            ns(start - entry)
        );
    }
    println!("{summary}");
    println!();
    let mut message = [0u8; 64];
    let message = fmt_buf(
        &mut message,
        format_args!(
            "{} of {} kernel tests failed",
            summary.failed,
            selected.len()
        ),
    );
    crate::platform::exit(summary.ok(), message)
}

/// Formats into `buf` (truncating); for messages on paths that must not
/// allocate.
fn fmt_buf<'a>(buf: &'a mut [u8], args: core::fmt::Arguments<'_>) -> &'a str {
    struct W<'b>(&'b mut [u8], usize);
    impl core::fmt::Write for W<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let n = s.len().min(self.0.len() - self.1);
            self.0[self.1..self.1 + n].copy_from_slice(&s.as_bytes()[..n]);
            self.1 += n;
            Ok(())
        }
    }
    let mut w = W(buf, 0);
    let _ = core::fmt::Write::write_fmt(&mut w, args);
    let len = w.1;
    // Truncation may split a UTF-8 sequence: keep the valid prefix.
    match core::str::from_utf8(&buf[..len]) {
        Ok(s) => s,
        Err(e) => core::str::from_utf8(&buf[..e.valid_up_to()]).unwrap_or(""),
    }
}

/// Runs `f` and reports whether it panicked, printing the panic as
/// expected instead of failing the test: for tests of failure paths
/// (`#[should_panic]` in libtest terms). Prefer [`panics_with`], which
/// also checks the panic is the expected one.
pub fn panics(f: fn()) -> bool {
    panic_message(f).is_some()
}

/// Runs `f`; if it panicked, the panic message (truncated to
/// [`PANIC_MESSAGE_BYTES`]).
pub fn panic_message(f: fn()) -> Option<alloc::string::String> {
    let before = Snapshot::take();
    let mut buf = SavedContext::new();
    let outer = CURRENT.swap(&raw mut buf, Ordering::SeqCst);
    let was_expecting = EXPECTING.swap(true, Ordering::SeqCst);
    // SAFETY: as in `run`: `buf` outlives the call and is what CURRENT
    // names while `f` runs.
    let jumped = unsafe { context_call(f as *const (), &raw mut buf) };
    EXPECTING.store(was_expecting, Ordering::SeqCst);
    CURRENT.store(outer, Ordering::SeqCst);
    if jumped == 0 {
        return None;
    }
    recover_after_failure(&before);
    let m = PANIC_MESSAGE.lock();
    let text = core::str::from_utf8(&m.0[..m.1]).unwrap_or("<not UTF-8>");
    Some(alloc::string::String::from(text))
}

/// Whether `f` panicked with a message containing `needle`; a panic with
/// another message is printed (and answers false).
pub fn panics_with(f: fn(), needle: &str) -> bool {
    match panic_message(f) {
        Some(m) if m.contains(needle) => true,
        Some(m) => {
            println!("(the panic {m:?} does not contain {needle:?})");
            false
        }
        None => false,
    }
}

/// How much of an expected panic's message [`panic_message`] keeps.
pub const PANIC_MESSAGE_BYTES: usize = 512;

/// The last expected panic's message (bytes, length).
static PANIC_MESSAGE: spin::Mutex<([u8; PANIC_MESSAGE_BYTES], usize)> =
    spin::Mutex::new(([0; PANIC_MESSAGE_BYTES], 0));

/// What a test may change that the harness puts back when the test is
/// abandoned (its guards' destructors never run).
struct Snapshot {
    handlers: crate::trap::HandlerSnapshot,
    user_fault_hook: Option<crate::mm::UserFaultHook>,
}

impl Snapshot {
    fn take() -> Snapshot {
        Snapshot {
            handlers: crate::trap::snapshot_handlers(),
            user_fault_hook: crate::mm::user_fault_hook(),
        }
    }
}

/// Puts the machine back into a state later tests can rely on after a test
/// was abandoned mid-way: locks, an abandoned process run, the interrupt
/// handlers and user-fault hook as they were in `before`, the MSR.
fn recover_after_failure(before: &Snapshot) {
    // SAFETY: the failed test's frames are gone; nobody holds the locks.
    unsafe {
        console::force_unlock();
        crate::frame::force_unlock();
        crate::mm::force_unlock();
    }
    // Interrupts off again, in case the test enabled them; FP on again,
    // as boot set it: a panic raised in an interrupt handler comes back
    // here with the handler's MSR, where the interrupt cleared FP, and the
    // code resuming may restore callee-saved FPRs.
    // SAFETY: clearing EE only masks asynchronous interrupts; setting FP
    // restores the kernel's normal state.
    unsafe { msr::write((msr::read() - Msr::EE) | Msr::FP) };
    // An abandoned process run: its processes, scheduler lock, handlers.
    crate::proc::heal();
    crate::trap::restore_handlers(&before.handlers);
    match before.user_fault_hook {
        Some(h) => crate::mm::set_user_fault_hook(h),
        None => crate::mm::clear_user_fault_hook(),
    };
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let location = info.location();
    let cpu = crate::trap::cpu_index();
    if cpu != 0 {
        secondary_panic(cpu, info);
    }
    let buf = CURRENT.swap(core::ptr::null_mut(), Ordering::SeqCst);
    if !buf.is_null() && EXPECTING.load(Ordering::SeqCst) {
        console::print_fmt_unlocked(format_args!("(expected panic: {}) ", info.message()));
        // try_lock: the panic may have interrupted a reader (nothing else
        // takes it), in which case the message is left out.
        if let Some(mut m) = PANIC_MESSAGE.try_lock() {
            let len = fmt_buf(&mut m.0, format_args!("{}", info.message())).len();
            m.1 = len;
        }
        // SAFETY: `buf` is the live jump buffer set by `panics`.
        unsafe { context_resume(buf) }
    }
    if !buf.is_null() {
        console::print_fmt_unlocked(format_args!("FAILED\n"));
        match location {
            Some(l) => console::print_fmt_unlocked(format_args!(
                "---- panicked at {}:{}:{}:\n{}\n",
                l.file(),
                l.line(),
                l.column(),
                info.message()
            )),
            None => {
                console::print_fmt_unlocked(format_args!("---- panicked:\n{}\n", info.message()))
            }
        }
        // SAFETY: `buf` is the live jump buffer of the running test, set by
        // `run` around `context_call`.
        unsafe { context_resume(buf) }
    }
    match location {
        Some(l) => console::print_fmt_unlocked(format_args!(
            "\nkernel panic at {}:{}:{}:\n{}\n",
            l.file(),
            l.line(),
            l.column(),
            info.message()
        )),
        None => console::print_fmt_unlocked(format_args!("\nkernel panic:\n{}\n", info.message())),
    }
    let mut message = [0u8; 120];
    let message = match location {
        Some(l) => fmt_buf(
            &mut message,
            format_args!("kernel panic at {}:{}", l.file(), l.line()),
        ),
        None => "kernel panic",
    };
    crate::platform::exit(false, message)
}

/// A panic on a secondary processor: the test harness and its recovery
/// belong to the boot processor (which may be waiting for this one), so
/// the run ends with the report.
fn secondary_panic(cpu: usize, info: &PanicInfo<'_>) -> ! {
    let mut message = [0u8; 120];
    let message = match info.location() {
        Some(l) => {
            console::print_fmt_unlocked(format_args!(
                "\nkernel panic on CPU {cpu} at {}:{}:{}:\n{}\n",
                l.file(),
                l.line(),
                l.column(),
                info.message()
            ));
            fmt_buf(
                &mut message,
                format_args!("kernel panic on CPU {cpu} at {}:{}", l.file(), l.line()),
            )
        }
        None => {
            console::print_fmt_unlocked(format_args!(
                "\nkernel panic on CPU {cpu}:\n{}\n",
                info.message()
            ));
            "kernel panic on a secondary processor"
        }
    };
    crate::platform::exit(false, message)
}
