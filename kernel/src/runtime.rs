//! Symbols the compiler and the prebuilt `core`/`alloc` expect from libc
//! and the unwinder on `powerpc64-unknown-linux-gnu`: `memcpy`, `memmove`,
//! `memset`, `memcmp`, `bcmp`, and the unwinder entry points, which are
//! never reached because the kernel never unwinds (panic=abort, and the
//! panic handler does not return). Volatile accesses keep LLVM from turning
//! the copy loops back into calls to themselves.

use core::ffi::c_int;

/// Copies `n` bytes forwards, four doublewords a step when both pointers
/// are 8-byte aligned (the VMM's B-tree moves are mostly 40 to 80 aligned
/// bytes, where the loop overhead is what counts), and from the first
/// doubleword boundary on when they are equally misaligned (the compiler
/// moves an enum's payload after its tag byte like that).
///
/// # Safety
///
/// `dst` and `src` must be valid for `n` bytes; if they overlap, `dst`
/// must not be above `src`.
unsafe fn copy_forward(dst: *mut u8, src: *const u8, n: usize) {
    let mut i = 0;
    if !(dst as usize | src as usize).is_multiple_of(8)
        && (dst as usize ^ src as usize).is_multiple_of(8)
    {
        let head = (8 - (dst as usize & 7)).min(n);
        // SAFETY: head <= n bytes, within the caller's bounds.
        unsafe { copy_bytes(dst, src, head) };
        i = head;
    }
    if ((dst as usize + i) | (src as usize + i)).is_multiple_of(8) {
        while i + 32 <= n {
            // SAFETY: in bounds (i + 32 <= n) and 8-byte aligned. The
            // loads come before the stores; with dst below an overlapping
            // src no store reaches a word not yet read.
            unsafe {
                let (d, s) = (dst.add(i).cast::<u64>(), src.add(i).cast::<u64>());
                let a = s.read_volatile();
                let b = s.add(1).read_volatile();
                let c = s.add(2).read_volatile();
                let e = s.add(3).read_volatile();
                d.write_volatile(a);
                d.add(1).write_volatile(b);
                d.add(2).write_volatile(c);
                d.add(3).write_volatile(e);
            }
            i += 32;
        }
        while i + 8 <= n {
            // SAFETY: in bounds and 8-byte aligned.
            unsafe {
                let a = src.add(i).cast::<u64>().read_volatile();
                dst.add(i).cast::<u64>().write_volatile(a);
            }
            i += 8;
        }
    }
    // SAFETY: i <= n; the rest lies within the caller's bounds.
    unsafe { copy_bytes(dst.add(i), src.add(i), n - i) };
}

/// Copies `n` bytes forwards one at a time.
///
/// # Safety
///
/// As [`copy_forward`].
unsafe fn copy_bytes(dst: *mut u8, src: *const u8, n: usize) {
    for i in 0..n {
        // SAFETY: i < n, within the caller's bounds.
        unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
    }
}

/// Copies `n` bytes backwards (for `dst` above an overlapping `src`): a
/// doubleword at a time from the end when both pointers are 8-byte
/// aligned and `n` is a multiple of 8, else byte by byte.
///
/// # Safety
///
/// `dst` and `src` must be valid for `n` bytes.
unsafe fn copy_backward(dst: *mut u8, src: *const u8, n: usize) {
    let mut i = n;
    if (dst as usize | src as usize | n).is_multiple_of(8) {
        let (d, s) = (dst.cast::<u64>(), src.cast::<u64>());
        while i >= 8 {
            i -= 8;
            // SAFETY: i + 8 <= n and 8-byte aligned; going down from the
            // end reads each word before a store to a higher address
            // could overwrite it.
            unsafe { d.add(i / 8).write_volatile(s.add(i / 8).read_volatile()) };
        }
    }
    while i > 0 {
        i -= 1;
        // SAFETY: i < n; copying backwards handles dst above src.
        unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
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
        // SAFETY: forwarded contract; dst above an overlapping src.
        unsafe { copy_backward(dst, src, n) };
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
    while i < n && !(dst as usize + i).is_multiple_of(8) {
        // SAFETY: i < n.
        unsafe { dst.add(i).write_volatile(byte) };
        i += 1;
    }
    let word = u64::from_ne_bytes([byte; 8]);
    // SAFETY: i <= n; dst + i is 8-byte aligned (or i = n and nothing
    // below is written).
    let d = unsafe { dst.add(i).cast::<u64>() };
    let words = (n - i) / 8;
    let mut w = 0;
    while w + 4 <= words {
        // SAFETY: words w..w + 4 lie below n and are aligned.
        unsafe {
            d.add(w).write_volatile(word);
            d.add(w + 1).write_volatile(word);
            d.add(w + 2).write_volatile(word);
            d.add(w + 3).write_volatile(word);
        }
        w += 4;
    }
    while w < words {
        // SAFETY: word w lies below n and is aligned.
        unsafe { d.add(w).write_volatile(word) };
        w += 1;
    }
    i += words * 8;
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
