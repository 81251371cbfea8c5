//! Passes the kernel link script to the linker for the powerpc64 target.
//!
//! The path is absolute (from `CARGO_MANIFEST_DIR`) so builds work from any
//! working directory. Host builds (the `cargo clippy --workspace` stub) get
//! no link script.

use std::env;
use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let script = manifest_dir.join("../linker/kernel.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-changed=build.rs");
    if env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("powerpc64") {
        let script = script
            .canonicalize()
            .expect("linker/kernel.ld exists next to kernel/");
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    }
}
