//! Boots the kernel on powernv (`qemu-run.sh --machine powernv`): bare
//! metal under skiboot/OPAL in hypervisor state, on a hashed page table
//! the kernel owns. QEMU exits 0 on every OPAL power-down, so these also
//! check that `qemu-run.sh` turns the kernel's verdict line into the same
//! exit statuses as on pseries.

use qemu_tests::{boot, build_kernel, Run};

/// Kernel tests a powernv boot must pass at least (the pseries-only ones
/// are skipped there).
const MIN_PASSED: u32 = 80;

/// The tests that exist only on pseries and must say why they skipped.
const PSERIES_ONLY: &[&str] = &[
    "ktests::console::put_term_char_succeeds_on_the_vty",
    "ktests::devtree::rtas_tokens_found",
    "ktests::devtree::vty_reg_is_the_console",
    "ktests::mm_hpt::papr_insert_read_remove_round_trip",
    "ktests::mm_hpt::hpt_manager_fills_primary_then_secondary_then_evicts_never_bolted",
];

/// The powernv tests of the kernel's own table that run on one CPU.
const POWERNV_TESTS: &[&str] = &[
    "ktests::powernv::opal_lies_in_reserved_memory_no_frame_comes_from",
    "ktests::powernv::the_mmu_finds_the_kernels_table_of_ram_over_128",
    "ktests::powernv::the_linear_maps_entries_are_in_the_processors_layout",
    "ktests::powernv::tlbie_drops_removed_and_reprotected_translations_and_c_comes_from_memory",
];

fn assert_whole_suite_passed(run: &Run, cpu: &str, layout: &str) {
    assert_eq!(run.status, Some(0), "{}", run.transcript());
    let summary = run
        .summary()
        .unwrap_or_else(|| panic!("no summary line\n{}", run.transcript()));
    assert!(summary.ok && summary.failed == 0, "{}", run.transcript());
    assert!(summary.passed >= MIN_PASSED, "{}", run.transcript());
    for needle in [
        "firmware      : Skiboot",
        // skiboot leaves the BMC's 60 s watchdog running into the OS; a
        // run longer than that was reset without a verdict.
        "powernv: BMC watchdog stopped",
        "powernv: RUN PASSED",
        "mm: translation on (MSR IR|DR)",
        layout,
    ] {
        assert!(
            run.stdout.contains(needle),
            "{cpu}: no {needle:?}\n{}",
            run.transcript()
        );
    }
    for t in POWERNV_TESTS {
        assert!(
            run.stdout.contains(&format!("test {t} ... ok")),
            "{cpu}: {t}\n{}",
            run.transcript()
        );
    }
    for t in PSERIES_ONLY {
        assert!(
            run.stdout
                .contains(&format!("test {t} ... ignored, pseries only")),
            "{cpu}: {t} must skip with its reason\n{}",
            run.transcript()
        );
    }
}

#[test]
fn powernv9_passes_the_whole_suite_on_the_kernels_own_table() {
    let elf = build_kernel(&[]).unwrap();
    let run = boot(
        &elf,
        &[
            "--machine",
            "powernv",
            "--cpu",
            "POWER9",
            "--timeout",
            "240",
        ],
    );
    assert_whole_suite_passed(&run, "POWER9", "(Isa300 entries, partition table + PTCR)");
}

#[test]
fn powernv8_passes_the_whole_suite_with_sdr1() {
    let elf = build_kernel(&[]).unwrap();
    let run = boot(
        &elf,
        &[
            "--machine",
            "powernv",
            "--cpu",
            "POWER8",
            "--timeout",
            "240",
        ],
    );
    assert_whole_suite_passed(&run, "POWER8", "(Pre300 entries, SDR1)");
}

/// The SMP tests that need a second processor, and powernv's broadcast
/// `tlbie` one.
const SMP_TESTS: &[&str] = &[
    "ktests::smp::a_cross_call_may_call_its_caller_back",
    "ktests::smp::a_thousand_rounds_of_cross_calls_to_all_others_complete",
    "ktests::smp::an_ipi_to_each_other_cpu_is_taken_and_acknowledged",
    "ktests::smp::slb_shootdown_drops_the_entry_on_the_remote_cpu",
    "ktests::smp::slb_shootdown_of_every_non_bolted_entry_keeps_the_remote_linear_map",
    "ktests::powernv::a_removed_entry_stops_translating_on_another_processor_too",
];

#[test]
fn powernv10_with_two_cpus_passes_the_whole_suite_and_the_smp_tests() {
    let elf = build_kernel(&[]).unwrap();
    let run = boot(
        &elf,
        &[
            "--machine",
            "powernv",
            "--cpu",
            "POWER10",
            "--smp",
            "2",
            "--timeout",
            "240",
        ],
    );
    assert_whole_suite_passed(&run, "POWER10", "(Isa300 entries, partition table + PTCR)");
    assert!(
        run.stdout.contains("cpus online: 2 "),
        "{}",
        run.transcript()
    );
    for t in SMP_TESTS {
        assert!(
            run.stdout.contains(&format!("test {t} ... ok")),
            "{t} did not pass with two CPUs\n{}",
            run.transcript()
        );
    }
}

#[test]
fn a_failing_kernel_test_exits_1_on_powernv9() {
    let elf = build_kernel(&["fail-test"]).unwrap();
    let run = boot(
        &elf,
        &[
            "--machine",
            "powernv",
            "--cpu",
            "POWER9",
            "--test",
            "harness_checks",
            "--timeout",
            "60",
        ],
    );
    assert_eq!(run.status, Some(1), "{}", run.transcript());
    assert!(
        run.stdout
            .contains("test ktests::harness_checks::deliberately_failing_test ... FAILED"),
        "{}",
        run.transcript()
    );
    assert!(
        run.stdout.contains("powernv: RUN FAILED: 1 of"),
        "the verdict line names the failure\n{}",
        run.transcript()
    );
    let summary = run.summary().expect("summary line");
    assert!(!summary.ok && summary.failed == 1, "{}", run.transcript());
    // The same kernel passes when the failing test is filtered out: the
    // status follows the verdict, not the feature.
    let run = boot(
        &elf,
        &[
            "--machine",
            "powernv",
            "--test",
            "harness_checks::panics",
            "--timeout",
            "60",
        ],
    );
    assert_eq!(run.status, Some(0), "{}", run.transcript());
}

#[test]
fn a_hanging_kernel_on_powernv_is_killed_by_the_timeout() {
    let elf = build_kernel(&["hang-test"]).unwrap();
    let run = boot(
        &elf,
        &[
            "--machine",
            "powernv",
            "--test",
            "deliberately_hanging",
            "--timeout",
            "8",
        ],
    );
    assert_eq!(run.status, Some(124), "{}", run.transcript());
    assert!(run.stderr.contains("TIMEOUT"), "{}", run.transcript());
    assert!(run.summary().is_none(), "{}", run.transcript());
}

#[test]
fn qemu_run_refuses_an_unknown_machine() {
    let elf = build_kernel(&[]).unwrap();
    let run = boot(&elf, &["--machine", "powernv7"]);
    assert_eq!(run.status, Some(2), "{}", run.transcript());
    assert!(
        run.stderr.contains("unsupported --machine"),
        "{}",
        run.transcript()
    );
}
