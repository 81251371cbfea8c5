//! Symbols the compiler and the prebuilt `core`/`alloc` expect from libc
//! and the unwinder on `powerpc64-unknown-linux-gnu`: `memcpy`, `memmove`,
//! `memset`, `memcmp`, `bcmp`, and the unwinder entry points, which are
//! never reached because the kernel never unwinds (panic=abort, and the
//! panic handler does not return). Volatile accesses keep LLVM from turning
//! the copy loops back into calls to themselves.

use core::ffi::c_int;

/// Copies `n` bytes forwards, a doubleword at a time when both pointers
/// are 8-byte aligned.
///
/// # Safety
///
/// `dst` and `src` must be valid for `n` bytes; if they overlap, `dst`
/// must not be above `src`.
unsafe fn copy_forward(dst: *mut u8, src: *const u8, n: usize) {
    let mut i = 0;
    if (dst as usize | src as usize).is_multiple_of(8) {
        while i + 8 <= n {
            // SAFETY: in bounds and 8-byte aligned per the checks above.
            unsafe {
                let v = src.add(i).cast::<u64>().read_volatile();
                dst.add(i).cast::<u64>().write_volatile(v);
            }
            i += 8;
        }
    }
    while i < n {
        // SAFETY: i < n, within the caller's bounds.
        unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
        i += 1;
    }
}

/// C `memcpy`.
///
/// # Safety
///
/// `dst` and `src` must be valid for `n` bytes and must not overlap.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: forwarded contract; non-overlapping satisfies copy_forward.
    unsafe { copy_forward(dst, src, n) };
    dst
}

/// C `memmove`.
///
/// # Safety
///
/// `dst` and `src` must be valid for `n` bytes (they may overlap).
#[no_mangle]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize) <= (src as usize) || (dst as usize) >= (src as usize).wrapping_add(n) {
        // SAFETY: dst is below src or the ranges do not overlap.
        unsafe { copy_forward(dst, src, n) };
    } else {
        let mut i = n;
        while i > 0 {
            i -= 1;
            // SAFETY: i < n; copying backwards handles dst above src.
            unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
        }
    }
    dst
}

/// C `memset`.
///
/// # Safety
///
/// `dst` must be valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memset(dst: *mut u8, c: c_int, n: usize) -> *mut u8 {
    let byte = c as u8;
    let mut i = 0;
    if (dst as usize).is_multiple_of(8) {
        let word = u64::from_ne_bytes([byte; 8]);
        while i + 8 <= n {
            // SAFETY: in bounds and aligned.
            unsafe { dst.add(i).cast::<u64>().write_volatile(word) };
            i += 8;
        }
    }
    while i < n {
        // SAFETY: i < n.
        unsafe { dst.add(i).write_volatile(byte) };
        i += 1;
    }
    dst
}

/// C `memcmp`.
///
/// # Safety
///
/// `a` and `b` must be valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> c_int {
    for i in 0..n {
        // SAFETY: i < n.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return c_int::from(x) - c_int::from(y);
        }
    }
    0
}

/// C `bcmp` (zero iff equal).
///
/// # Safety
///
/// `a` and `b` must be valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { memcmp(a, b, n) }
}

/// The unwinder's personality routine, named by the unwind tables of the
/// prebuilt `alloc` (built with panic=unwind). The kernel builds with
/// panic=abort and discards those tables, so this is never called; it only
/// satisfies the linker.
#[no_mangle]
pub extern "C" fn rust_eh_personality() -> ! {
    panic!("rust_eh_personality called: the kernel does not unwind");
}

/// Resumes unwinding after a landing pad of the prebuilt `alloc`. Never
/// called: no panic unwinds in the kernel.
#[no_mangle]
pub extern "C" fn _Unwind_Resume() -> ! {
    panic!("_Unwind_Resume called: the kernel does not unwind");
}
