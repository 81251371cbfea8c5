//! PowerPC64 kernel: boots under QEMU (`-M pseries`, VOF or SLOF, reading
//! the device tree through the Open Firmware client interface; or bare
//! metal on `-M powernv` under OPAL, reading skiboot's flattened device
//! tree, `platform`), sets up the console, physical frames, heap and
//! interrupt vectors, then runs the in-kernel test harness and reports the
//! result through RTAS (pseries) or OPAL (powernv).
//!
//! On any other architecture this crate builds as a stub `main` so that
//! `cargo clippy --workspace` and `cargo test --workspace` work on the host;
//! the architecture-independent parts (the frame allocator, the test
//! summary formatting) are unit-tested there.
#![cfg_attr(target_arch = "powerpc64", no_std, no_main)]
#![cfg_attr(not(target_arch = "powerpc64"), allow(dead_code))]

#[cfg(target_arch = "powerpc64")]
extern crate alloc;

#[cfg(target_arch = "powerpc64")]
#[macro_use]
mod console;

#[cfg(target_arch = "powerpc64")]
mod boot;
#[cfg(target_arch = "powerpc64")]
mod bootinfo;
#[cfg(target_arch = "powerpc64")]
mod context;
mod frame;
#[cfg(target_arch = "powerpc64")]
#[macro_use]
mod harness;
#[cfg(target_arch = "powerpc64")]
mod heap;
#[cfg(target_arch = "powerpc64")]
mod ktests;
#[cfg(target_arch = "powerpc64")]
mod mm;
#[cfg(target_arch = "powerpc64")]
mod of;
#[cfg(target_arch = "powerpc64")]
mod platform;
#[cfg(target_arch = "powerpc64")]
mod proc;
#[cfg(target_arch = "powerpc64")]
mod rtas;
#[cfg(target_arch = "powerpc64")]
mod runtime;
#[cfg(target_arch = "powerpc64")]
mod smp;
mod summary;
#[cfg(target_arch = "powerpc64")]
mod trap;
#[cfg(target_arch = "powerpc64")]
mod user;

#[cfg(not(target_arch = "powerpc64"))]
fn main() {
    eprintln!("the kernel only runs on powerpc64: use ./qemu-run.sh");
    std::process::exit(2);
}
