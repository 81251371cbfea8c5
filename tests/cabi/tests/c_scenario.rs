//! Drives the AIX services from C: builds this crate's static library,
//! compiles `c/scenario.c` against `vmm/include` with
//! `gcc -std=c11 -Wall -Wextra -Werror`, links and runs it; and checks with
//! `nm` that every service is exported.

mod common;

use std::process::Command;

use common::{assert_passed, build_and_run, staticlib};

#[test]
fn c_scenario_passes() {
    let run = build_and_run("gcc", "-std=c11", "scenario.c");
    assert_passed(&run, "scenario", 150);
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
    for helper in [
        "cabi_init",
        "cabi_reset",
        "cabi_load",
        "cabi_store",
        "cabi_set_env",
        "cabi_set_log",
    ] {
        assert!(exported.contains(&helper), "{helper} not exported");
    }
    // The services and vmm_errno.
    assert_eq!(
        vmm::aix::abi::C_FUNCTIONS.len(),
        vmm::aix::Service::ALL.len() + 1
    );
}
