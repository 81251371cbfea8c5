//! What a `no_std` static library needs from a runtime: a panic handler
//! (it hands the message to the C kernel's abort callback and never
//! returns) and the unwinder symbols the prebuilt `core` refers to, which
//! are never reached (the library is built with `panic=abort`).

use core::fmt::Write;

/// A panic message cut at a fixed size (no allocation while panicking).
struct Message {
    buf: [u8; 256],
    len: usize,
}

impl Write for Message {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let mut m = Message {
        buf: [0; 256],
        len: 0,
    };
    let _ = write!(m, "libvmm: {info}");
    crate::abort_with(&m.buf[..m.len]);
    loop {
        core::hint::spin_loop();
    }
}

/// Never called: nothing unwinds.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

/// Never called: nothing unwinds.
#[no_mangle]
pub extern "C" fn _Unwind_Resume() -> ! {
    loop {
        core::hint::spin_loop();
    }
}
