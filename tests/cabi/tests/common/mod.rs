//! Builds this crate's static library with a nested `cargo build` (own
//! target directory, so it never waits on the lock of the build running
//! the test) and compiles, links and runs C or C++ programs against it and
//! `vmm/include`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn c_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("c")
}

/// The static library, built once per test binary (the nested target
/// directory is shared, so the second binary finds it up to date).
pub fn staticlib() -> &'static Path {
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

/// Compiles `source` (in `c/`) with `compiler` and `std`, every warning an
/// error, links it against the static library and runs it.
pub fn build_and_run(compiler: &str, std: &str, source: &str) -> Output {
    let lib = staticlib();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cabi-programs");
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join(source.replace('.', "-"));
    let out = Command::new(compiler)
        .args([std, "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg("-I")
        .arg(workspace().join("vmm/include"))
        .arg("-I")
        .arg(c_dir())
        .arg(c_dir().join(source))
        .arg(lib)
        .args(["-lpthread", "-ldl", "-lm", "-lrt", "-lutil", "-lgcc_s"])
        .output()
        .unwrap_or_else(|e| panic!("{compiler} runs: {e}"));
    assert!(
        out.status.success(),
        "{compiler} {source} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Command::new(&exe)
        .output()
        .unwrap_or_else(|e| panic!("{source} runs: {e}"))
}

/// Checks that a program using `scenario.c`'s convention passed: exit
/// status 0 and a summary line `<tag>: N checks, 0 failures` with at least
/// `min_checks` checks (so it ran them, not just returned 0). The output,
/// for further checks.
pub fn assert_passed(run: &Output, tag: &str, min_checks: usize) -> (String, String) {
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(
        run.status.success(),
        "{tag} failed ({}):\n{stdout}\n{stderr}",
        run.status
    );
    let prefix = format!("{tag}:");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no summary line in:\n{stdout}"));
    let checks: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("check count");
    assert!(checks >= min_checks, "only {checks} checks ran: {line}");
    assert!(line.ends_with(" 0 failures"), "{line}");
    (stdout, stderr)
}
