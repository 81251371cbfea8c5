//! The C example kernel (`examples/c-kernel/`): `run.sh` builds
//! `libvmm_c.a` for powerpc64, compiles the kernel with
//! `powerpc64-linux-gnu-gcc`, links them and boots the result under QEMU
//! pseries with VOF. It must pass every check and power off with 0; built
//! with one failing check it must end with QEMU's failure status 1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(extra_cflags: &str) -> Output {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    // Its own target directory: the nested cargo build must not wait on
    // the lock of the build running this test.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c-kernel-nested");
    Command::new(root.join("examples/c-kernel/run.sh"))
        .env("CARGO_TARGET_DIR", &target)
        .env("EXTRA_CFLAGS", extra_cflags)
        .env("TIMEOUT", "120")
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .output()
        .expect("run.sh runs")
}

fn transcript(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Both runs in one test: they share the nested target directory.
#[test]
fn the_c_kernel_boots_passes_its_checks_and_reports_a_failure() {
    let ok = run("");
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{}", transcript(&ok));
    assert!(
        stdout.contains("c-kernel: translation on"),
        "{}",
        transcript(&ok)
    );
    for name in [
        "vm_galloc",
        "kernel_faults_went_to_vmm_fault",
        "vm_guatt",
        "problem_state_load_through_vm_guatt",
        "problem_state_store_refused",
        "vms_create",
        "vm_handle",
        "as_att64",
        "as_geth64",
        "as_puth64",
        "frames_returned",
    ] {
        assert!(
            stdout.contains(&format!("test {name} ... ok")),
            "{name} did not pass\n{}",
            transcript(&ok)
        );
    }
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("test result: "))
        .unwrap_or_else(|| panic!("no summary\n{}", transcript(&ok)));
    assert!(summary.starts_with("test result: ok. "), "{summary}");
    assert!(summary.ends_with(" 0 failed"), "{summary}");

    let failing = run("-DFAIL_TEST");
    let stdout = String::from_utf8_lossy(&failing.stdout);
    assert_eq!(failing.status.code(), Some(1), "{}", transcript(&failing));
    assert!(
        stdout.contains("test deliberate_failure ... FAILED"),
        "{}",
        transcript(&failing)
    );
    assert!(
        stdout.contains("test result: FAILED."),
        "{}",
        transcript(&failing)
    );
}
