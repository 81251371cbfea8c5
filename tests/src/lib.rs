//! Host-side helpers for the tests in `tests/tests/`, which build the
//! kernel for powerpc64 and boot it under QEMU through `qemu-run.sh`.
//!
//! Kernel builds go to their own target directory (`target/qemu-tests`,
//! or `$CARGO_TARGET_DIR/qemu-tests`), so they never wait for the lock of
//! the `cargo test` that runs them; a mutex serialises builds of different
//! feature sets, and each build's ELF is copied to a per-variant name before
//! the lock is released, so parallel tests boot the kernel they built.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The Rust target the kernel is built for.
pub const KERNEL_TARGET: &str = "powerpc64-unknown-linux-gnu";

/// Serialises kernel builds (one target directory, several feature sets).
static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Where kernel builds for these tests go.
pub fn kernel_target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("qemu-tests"),
        None => workspace_root().join("target").join("qemu-tests"),
    }
}

/// A cargo build profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `dev` (target/.../debug).
    Debug,
    /// `release` (target/.../release).
    Release,
}

impl Profile {
    fn dir(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        }
    }
}

/// Builds the debug kernel with `features` and returns the path of a copy
/// of its ELF that no later build overwrites.
pub fn build_kernel(features: &[&str]) -> Result<PathBuf, String> {
    build_kernel_profile(Profile::Debug, features)
}

/// Builds the kernel in `profile` with `features`; see [`build_kernel`].
pub fn build_kernel_profile(profile: Profile, features: &[&str]) -> Result<PathBuf, String> {
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let target_dir = kernel_target_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", &target_dir)
        .args(["build", "-p", "kernel", "--target", KERNEL_TARGET]);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    if profile == Profile::Release {
        cmd.arg("--release");
    }
    let out = cmd
        .output()
        .map_err(|e| format!("running cargo build: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "kernel build with features {features:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let built = target_dir
        .join(KERNEL_TARGET)
        .join(profile.dir())
        .join("kernel");
    let variant = if features.is_empty() {
        format!("{}-default", profile.dir())
    } else {
        format!("{}-{}", profile.dir(), features.join("+"))
    };
    let copy = target_dir.join(format!("kernel-{variant}.elf"));
    std::fs::copy(&built, &copy)
        .map_err(|e| format!("copying {} to {}: {e}", built.display(), copy.display()))?;
    Ok(copy)
}

/// Instructions of the VMX (AltiVec) and VSX facilities found in the
/// disassembly of `elf` (`powerpc64-linux-gnu-objdump -d`), as
/// `address: text` lines. The kernel runs with MSR[VEC] = MSR[VSX] = 0, so
/// any of them would trap.
pub fn vector_instructions(elf: &Path) -> Result<Vec<String>, String> {
    let out = Command::new("powerpc64-linux-gnu-objdump")
        .arg("-d")
        .arg(elf)
        .output()
        .map_err(|e| format!("running powerpc64-linux-gnu-objdump: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter(|line| {
            // "addr:\tbytes \tmnemonic operands"
            let mut fields = line.split('\t');
            let (Some(_), Some(_), Some(insn)) = (fields.next(), fields.next(), fields.next())
            else {
                return false;
            };
            let mnemonic = insn.split_whitespace().next().unwrap_or("");
            is_vector_mnemonic(mnemonic)
        })
        .map(str::to_string)
        .collect())
}

/// Whether `mnemonic` belongs to VMX or VSX: VMX instructions start with
/// `v` (except none of the scalar ones do), its loads/stores are
/// `lvx`/`stvx`-style, VSX ones start with `xs`/`xv`/`xx` or are vector
/// loads/stores (`lxv*`, `stxv*`, `lxsd`, ...), plus the VR/VSR moves.
pub fn is_vector_mnemonic(mnemonic: &str) -> bool {
    const EXACT: &[&str] = &[
        "lvx", "lvxl", "stvx", "stvxl", "lvsl", "lvsr", "lvebx", "lvehx", "lvewx", "stvebx",
        "stvehx", "stvewx", "mtvscr", "mfvscr", "mtvsrd", "mfvsrd", "mtvsrwz", "mfvsrwz",
        "mtvsrwa", "mtvsrdd", "mfvsrld", "mtvsrws", "dss", "dssall", "dst", "dstt", "dstst",
        "dststt",
    ];
    let m = mnemonic.trim_end_matches('.');
    EXACT.contains(&m)
        || (m.starts_with('v') && m.len() > 2)
        || m.starts_with("xs")
        || m.starts_with("xv")
        || m.starts_with("xx")
        || m.starts_with("lxv")
        || m.starts_with("stxv")
        || m.starts_with("lxs")
        || m.starts_with("stxs")
}

/// The outcome of one `qemu-run.sh` invocation.
#[derive(Debug)]
pub struct Run {
    /// Exit status (`None` if killed by a signal).
    pub status: Option<i32>,
    /// The guest console (QEMU's stdout).
    pub stdout: String,
    /// qemu-run.sh's and QEMU's messages.
    pub stderr: String,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

impl Run {
    /// The libtest-style summary line, parsed.
    pub fn summary(&self) -> Option<Summary> {
        self.stdout.lines().find_map(Summary::parse)
    }

    /// stdout and stderr, for assertion messages.
    pub fn transcript(&self) -> String {
        format!(
            "exit status {:?} after {:.2?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// Boots `elf` with `qemu-run.sh` and the given options.
pub fn boot(elf: &Path, options: &[&str]) -> Run {
    let script = workspace_root().join("qemu-run.sh");
    let start = Instant::now();
    let out = Command::new(&script)
        .args(options)
        .arg(elf)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    Run {
        status: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).replace('\r', ""),
        stderr: String::from_utf8_lossy(&out.stderr).replace('\r', ""),
        elapsed: start.elapsed(),
    }
}

/// The counts of a `test result: ...` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// `ok` (true) or `FAILED` (false).
    pub ok: bool,
    /// Tests passed.
    pub passed: u32,
    /// Tests failed.
    pub failed: u32,
}

impl Summary {
    /// Parses `test result: ok. 3 passed; 0 failed; ...`.
    pub fn parse(line: &str) -> Option<Summary> {
        let rest = line.trim().strip_prefix("test result: ")?;
        let (verdict, rest) = rest.split_once(". ")?;
        let ok = match verdict {
            "ok" => true,
            "FAILED" => false,
            _ => return None,
        };
        let mut passed = None;
        let mut failed = None;
        for part in rest.split(';') {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            match what {
                "passed" => passed = n.parse().ok(),
                "failed" => failed = n.parse().ok(),
                _ => {}
            }
        }
        Some(Summary {
            ok,
            passed: passed?,
            failed: failed?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_vector_mnemonics() {
        for m in [
            "lvx", "stvx", "vxor", "vspltisw", "xxlxor", "lxvd2x", "stxvd2x", "lxv", "xxswapd",
            "mtvsrd", "xscvdpsp",
        ] {
            assert!(is_vector_mnemonic(m), "{m}");
        }
        for m in [
            "ld", "std", "mtmsrd", "mtsprg", "rfid", "sc", "lfd", "stfd", "xor", "lxa",
        ] {
            assert!(!is_vector_mnemonic(m), "{m}");
        }
    }

    #[test]
    fn parses_libtest_summaries() {
        assert_eq!(
            Summary::parse("test result: ok. 24 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.08s"),
            Some(Summary { ok: true, passed: 24, failed: 0 })
        );
        assert_eq!(
            Summary::parse("test result: FAILED. 22 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.05s"),
            Some(Summary { ok: false, passed: 22, failed: 1 })
        );
        assert_eq!(Summary::parse("test foo ... ok"), None);
        assert_eq!(
            Summary::parse("test result: maybe. 1 passed; 0 failed"),
            None
        );
    }
}
