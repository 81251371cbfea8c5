//! PowerPC64 pseries kernel (placeholder until the boot work lands).
#![cfg_attr(target_arch = "powerpc64", no_std, no_main)]

#[cfg(not(target_arch = "powerpc64"))]
fn main() {
    eprintln!("the kernel only runs on powerpc64: use ./qemu-run.sh");
    std::process::exit(2);
}
