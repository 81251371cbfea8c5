//! Drives the AIX services from C: builds this crate's static library with
//! a nested `cargo build` (own target directory, so it never waits on the
//! lock of the build running this test), compiles `c/scenario.c` against
//! `vmm/include` with `gcc -std=c11 -Wall -Wextra -Werror`, links and runs
//! it; and checks with `nm` that every service is exported.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The static library, built once per test run.
fn staticlib() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cabi-nested");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(workspace())
            .args(["build", "--offline", "-p", "vmm-cabi", "--lib"])
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
        let lib = target.join("debug/libvmm_cabi.a");
        assert!(lib.exists(), "{} not built", lib.display());
        lib
    })
}

#[test]
fn c_scenario_passes() {
    let lib = staticlib();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cabi-scenario");
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("scenario");
    let c = Path::new(env!("CARGO_MANIFEST_DIR")).join("c");
    let out = Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg("-I")
        .arg(workspace().join("vmm/include"))
        .arg("-I")
        .arg(&c)
        .arg(c.join("scenario.c"))
        .arg(lib)
        .args(["-lpthread", "-ldl", "-lm", "-lrt", "-lutil", "-lgcc_s"])
        .output()
        .expect("gcc runs");
    assert!(
        out.status.success(),
        "gcc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().expect("scenario runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "scenario failed ({}):\n{stdout}\n{stderr}",
        run.status
    );
    // It ran every check, not just returned 0.
    let line = stdout
        .lines()
        .find(|l| l.starts_with("scenario:"))
        .expect("summary line");
    let checks: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("check count");
    assert!(checks >= 150, "only {checks} checks ran: {line}");
    assert!(line.ends_with(" 0 failures"), "{line}");
}

#[test]
fn every_service_is_a_global_text_symbol() {
    let lib = staticlib();
    let out = Command::new("nm")
        .args(["-g", "--defined-only"])
        .arg(lib)
        .output()
        .expect("nm runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let exported: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_addr, kind, name) = (f.next()?, f.next()?, f.next()?);
            (kind == "T").then_some(name)
        })
        .collect();
    let mut missing = vec![];
    for f in vmm::aix::abi::C_FUNCTIONS {
        if !exported.contains(&f.name) {
            missing.push(f.name);
        }
    }
    assert!(missing.is_empty(), "not exported as T: {missing:?}");
    for helper in ["cabi_init", "cabi_load", "cabi_store", "cabi_set_env"] {
        assert!(exported.contains(&helper), "{helper} not exported");
    }
    assert_eq!(vmm::aix::abi::C_FUNCTIONS.len(), 22);
}
