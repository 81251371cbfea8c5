//! The harness as a C or C++ user meets it: `c/harness.c` (gcc, C11)
//! checks a call before `cabi_init`, a second `cabi_init`, `cabi_reset`,
//! calls from another thread and where log records go; `c/cxx_user.cpp`
//! (g++, C++17) includes every header and links against the library.

mod common;

use common::{assert_passed, build_and_run};

#[test]
fn harness_calls_from_c() {
    let run = build_and_run("gcc", "-std=c11", "harness.c");
    let (_, stderr) = assert_passed(&run, "harness", 85);
    // With no callback, records go to stderr.
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("vmm WARN: vms_create:")
                && l.contains("interrupt")
                && l.ends_with("refused")),
        "the vms_create refusal did not reach stderr:\n{stderr}"
    );
    // A harness call from inside the callback is refused, and its record
    // goes to stderr rather than calling back again.
    assert!(
        stderr
            .lines()
            .any(|l| l == "vmm WARN: cabi_load: called from the log callback; refused"),
        "no record of the refused call from the callback:\n{stderr}"
    );
    // Only those went to stderr: the rest reached the callback.
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("vmm ")).count(),
        2,
        "{stderr}"
    );
}

#[test]
fn headers_and_harness_from_cxx17() {
    let run = build_and_run("g++", "-std=c++17", "cxx_user.cpp");
    assert_passed(&run, "cxx", 15);
}
