//! The C library from C: builds `libvmm_c.a` (a nested `cargo build` with
//! its own target directory, so it never waits on the lock of the build
//! running this test), compiles `c/host.c` against `vmm/include/vmm.h`
//! with `gcc -std=c11 -Wall -Wextra -Werror`, links and runs it. The
//! program plays a C kernel over an in-memory machine and checks what the
//! library did to it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn staticlib() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vmm-c-nested");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace())
        .args(["build", "--offline", "-p", "vmm-c", "--lib"])
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "nested cargo build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lib = target.join("debug/libvmm_c.a");
    assert!(lib.exists(), "{} not built", lib.display());
    lib
}

/// Compiles `c/host.c` (with `defines`), links it to the library, runs it
/// and checks its summary line `host (<how>): N checks, 0 failures`.
fn run_host(name: &str, defines: &[&str], how: &str) {
    let lib = staticlib();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vmm-c-programs");
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/host.c");
    let out = Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
        .args(defines)
        .arg("-o")
        .arg(&exe)
        .arg("-I")
        .arg(workspace().join("vmm/include"))
        .arg(&src)
        .arg(&lib)
        .args(["-lpthread", "-ldl", "-lm", "-lrt", "-lutil", "-lgcc_s"])
        .output()
        .expect("gcc runs");
    assert!(
        out.status.success(),
        "gcc host.c failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().expect("host runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "host failed ({:?}):\n{stdout}\n{stderr}",
        run.status
    );
    let prefix = format!("host ({how}): ");
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no summary line:\n{stdout}"));
    let checks: usize = line
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad summary: {line}"));
    assert!(checks >= 60, "only {checks} checks ran: {line}");
    assert!(line.ends_with(", 0 failures"), "{line}");
}

#[test]
fn a_c_program_drives_the_library_through_vmm_h() {
    run_host("host-papr", &[], "PAPR HPT calls");
}

#[test]
fn the_same_with_the_hpt_in_memory() {
    run_host("host-native", &["-DNATIVE_HPT"], "in-memory HPT");
}
