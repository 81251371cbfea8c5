//! Boots the kernel under QEMU and checks what the in-kernel harness
//! reports and how QEMU exits.

use qemu_tests::{boot, build_kernel, build_kernel_profile, vector_instructions, Profile, Run};

/// Kernel tests a normal boot must pass at least (there are more; a
/// lower count means tests silently went missing).
const MIN_PASSED: u32 = 80;

/// Asserts a run passed: exit 0, `test result: ok.`, at least
/// [`MIN_PASSED`] tests.
fn assert_passed(run: &Run) {
    assert_eq!(run.status, Some(0), "{}", run.transcript());
    let summary = run
        .summary()
        .unwrap_or_else(|| panic!("no summary line\n{}", run.transcript()));
    assert!(summary.ok, "{}", run.transcript());
    assert_eq!(summary.failed, 0, "{}", run.transcript());
    assert!(
        summary.passed >= MIN_PASSED,
        "only {} tests passed\n{}",
        summary.passed,
        run.transcript()
    );
}

/// The number after `label` in `line` (`"... label 123, ..."`).
fn number_after(line: &str, label: &str) -> Option<u64> {
    let rest = &line[line.find(label)? + label.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The line of `run`'s output starting with `prefix`.
fn line_starting<'a>(run: &'a Run, prefix: &str) -> &'a str {
    run.stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line\n{}", run.transcript()))
}

/// Asserts the boot banner says translation is on and the end-of-run
/// banner has the HPT/SLB and process statistics, each non-zero after a
/// full run.
fn assert_banners(run: &Run) {
    assert!(
        run.stdout.contains("mm: translation on (MSR IR|DR)"),
        "{}",
        run.transcript()
    );
    let mm = line_starting(run, "mm stats: ");
    for label in ["HPT inserts", "evictions", "SLB misses", "faults resolved"] {
        let n = number_after(mm, label).unwrap_or_else(|| panic!("no `{label} <n>` in {mm:?}"));
        assert!(n > 0, "{label} is 0 in {mm:?}");
    }
    let procs = line_starting(run, "proc stats: ");
    let killed = number_after(procs, "processes killed")
        .unwrap_or_else(|| panic!("no `processes killed <n>` in {procs:?}"));
    assert!(killed > 0, "{procs:?}");
}

#[test]
fn number_after_reads_the_banner_format() {
    let l = "mm stats: HPT inserts 842 (38 secondary), evictions 75, removes 767";
    assert_eq!(number_after(l, "HPT inserts"), Some(842));
    assert_eq!(number_after(l, "evictions"), Some(75));
    assert_eq!(number_after(l, "SLB misses"), None);
}

#[test]
fn end_of_run_banner_shows_translation_and_statistics() {
    let elf = build_kernel(&[]).unwrap();
    let run = boot(&elf, &["--timeout", "60"]);
    assert_passed(&run);
    assert_banners(&run);
}

/// Boots the default kernel under VOF or SLOF (`slof`) on `cpu` and
/// asserts that it passed and that the banner names that firmware and
/// that CPU's PVR family.
fn boot_passes_on(slof: bool, cpu: &str) -> Run {
    boot_passes_on_with(slof, cpu, &[])
}

/// [`boot_passes_on`] with more `qemu-run.sh` options.
fn boot_passes_on_with(slof: bool, cpu: &str, more: &[&str]) -> Run {
    let pvr = match cpu {
        "POWER8" => "PVR 0x004d",
        "POWER9" => "PVR 0x004e",
        "POWER10" => "PVR 0x0080",
        other => panic!("no PVR known for {other}"),
    };
    let elf = build_kernel(&[]).unwrap();
    let mut args = vec!["--cpu", cpu];
    args.extend(if slof {
        ["--slof", "--timeout", "90"]
    } else {
        ["--vof", "--timeout", "60"]
    });
    args.extend(more);
    let run = boot(&elf, &args);
    assert_passed(&run);
    let firmware = if slof { "Slof" } else { "Vof" };
    assert!(
        run.stdout.contains(&format!("firmware      : {firmware}")),
        "{}",
        run.transcript()
    );
    assert!(run.stdout.contains(pvr), "{cpu} PVR\n{}", run.transcript());
    run
}

/// The `mm: translation on ...` line's page size and bolted HPTE count.
fn linear_map_of(run: &Run) -> (String, u64) {
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("mm: translation on"))
        .unwrap_or_else(|| panic!("no linear map line\n{}", run.transcript()));
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == "bolted")
        .unwrap_or_else(|| panic!("no `bolted` in {line:?}"));
    let count = words[at - 1]
        .parse()
        .unwrap_or_else(|_| panic!("no HPTE count in {line:?}"));
    (words[at + 1].to_string(), count)
}

#[test]
fn linear_map_of_reads_the_boot_line() {
    let run = Run {
        status: Some(0),
        stdout: "[INFO  kernel::mm] mm: translation on (MSR IR|DR); linear map 512 MiB at 0xc000000000000000: 32 bolted 16M HPTEs (0 secondary), 1 bolted 1T SLB entry\n".into(),
        stderr: String::new(),
        elapsed: std::time::Duration::ZERO,
    };
    assert_eq!(linear_map_of(&run), ("16M".to_string(), 32));
}

#[test]
fn vof_power8_without_16m_pages_passes_on_a_64k_linear_map() {
    // QEMU's own default cap: no 16M pages, so the kernel falls back.
    let run = boot_passes_on_with(false, "POWER8", &["--max-page-size", "64K"]);
    assert_eq!(
        linear_map_of(&run),
        ("64K".to_string(), (512 << 20) >> 16),
        "{}",
        run.transcript()
    );
    let sizes = line_starting(&run, "page sizes    :");
    assert!(!sizes.contains("2^24"), "{sizes:?}");
}

#[test]
fn vof_power9_passes() {
    boot_passes_on(false, "POWER9");
}

#[test]
fn slof_power8_passes() {
    boot_passes_on(true, "POWER8");
}

#[test]
fn slof_power9_passes() {
    boot_passes_on(true, "POWER9");
}

#[test]
fn slof_power10_passes() {
    let run = boot_passes_on(true, "POWER10");
    assert_banners(&run);
}

#[test]
fn vof_power10_two_cpus_one_gib_passes() {
    let elf = build_kernel(&[]).unwrap();
    let run = boot(
        &elf,
        &[
            "--cpu",
            "POWER10",
            "--smp",
            "2",
            "--mem",
            "1G",
            "--timeout",
            "60",
        ],
    );
    assert_passed(&run);
    assert!(
        run.stdout.contains("RAM           : 1024 MiB"),
        "{}",
        run.transcript()
    );
    assert!(
        run.stdout.contains("cpus          : 2"),
        "{}",
        run.transcript()
    );
    assert!(
        run.stdout.contains("cpus online: 2 "),
        "{}",
        run.transcript()
    );
}

/// The kernel's SMP tests (`kernel/src/ktests/smp.rs`).
const SMP_TESTS: [&str; 8] = [
    "a_cross_call_may_call_its_caller_back",
    "a_cross_call_runs_on_its_target_cpu",
    "a_thousand_rounds_of_cross_calls_to_all_others_complete",
    "an_ipi_to_each_other_cpu_is_taken_and_acknowledged",
    "every_cpu_of_the_device_tree_came_online_with_its_own_index_paca_and_stack",
    "shootdown_lists_refuse_the_linear_map_and_hold_at_most_eight",
    "slb_shootdown_drops_the_entry_on_the_remote_cpu",
    "slb_shootdown_of_every_non_bolted_entry_keeps_the_remote_linear_map",
];

/// The kernel's tests of the VMM and processes on every processor
/// (`kernel/src/ktests/smp_proc.rs`).
const SMP_PROC_TESTS: [&str; 18] = [
    "a_fault_under_the_vmm_lock_is_reported",
    "a_run_whose_threads_other_cpus_took_first_waits_for_them",
    "a_process_faulting_on_a_secondary_is_killed_with_the_report",
    "a_kernel_panic_in_a_run_stops_the_threads_other_cpus_run",
    "a_process_makes_at_most_threads_max_threads",
    "as_det64_while_a_sibling_thread_loads_the_region_on_another_cpu",
    "each_cpu_loads_kernel_segments_itself_and_vm_gfree_shoots_them_down_everywhere",
    "fork_copies_only_the_calling_thread_while_a_sibling_stores",
    "fork_while_other_processes_fault_on_other_cpus",
    "galloc_and_gfree_storms_from_processes_on_every_cpu",
    "fault_throughput_on_one_and_two_cpus",
    "no_process_is_current_outside_a_run",
    "preemption_moves_processes_between_cpus",
    "processes_on_every_cpu_fault_their_own_pages_at_once",
    "the_last_thread_to_exit_ends_the_process_and_exit_ends_them_all",
    "the_vmm_lock_records_its_holder_and_lends_each_cpu_its_own_state",
    "threads_of_one_process_fault_the_same_pages_on_different_cpus",
    "vm_gfree_revokes_a_user_attachment_while_its_process_runs_on_another_cpu",
];

/// What the harness printed for test `name`: from its `test ... ` line
/// to the next test's (a test may print lines before its verdict; the
/// last test's runs on into the end-of-run banners).
fn verdict_of<'a>(run: &'a Run, name: &str) -> Option<&'a str> {
    let start = run.stdout.find(&format!("test {name} ... "))?;
    let rest = &run.stdout[start..];
    let end = rest[1..].find("\ntest ").map_or(rest.len(), |e| e + 2);
    Some(&rest[..end])
}

#[test]
fn verdict_of_reads_up_to_the_next_test() {
    let run = Run {
        status: Some(0),
        stdout: "test a::x ... \nmeasure: m 1\nok\ntest a::y ... FAILED\n".into(),
        stderr: String::new(),
        elapsed: std::time::Duration::ZERO,
    };
    assert_eq!(
        verdict_of(&run, "a::x"),
        Some("test a::x ... \nmeasure: m 1\nok\n")
    );
    assert_eq!(verdict_of(&run, "a::y"), Some("test a::y ... FAILED\n"));
    assert_eq!(verdict_of(&run, "a::z"), None);
}

/// Asserts that every test of `module` named in `names` passed.
fn assert_module_passed(run: &Run, module: &str, names: &[&str]) {
    for name in names {
        let verdict = verdict_of(run, &format!("ktests::{module}::{name}"));
        assert!(
            verdict.is_some_and(|v| v.lines().any(|l| l.ends_with("ok")) && !v.contains("FAILED")),
            "{module}::{name} did not pass: {verdict:?}\n{}",
            run.transcript()
        );
    }
}

/// Asserts that every SMP process test passed (none skipped), with the
/// fault throughput line for one and two processors.
fn assert_smp_proc_tests_ran(run: &Run) {
    assert_module_passed(run, "smp_proc", &SMP_PROC_TESTS);
    assert!(
        run.stdout.contains("measure: fault_throughput 1 cpu ")
            && run.stdout.contains(" faults/s, ratio "),
        "{}",
        run.transcript()
    );
}

/// Asserts that every SMP test ran and passed (none skipped for want of
/// a second processor, only powernv's own skip) and that `cpus` came
/// online.
fn assert_smp_tests_ran(run: &Run, cpus: usize) {
    assert!(
        run.stdout.contains(&format!("cpus online: {cpus} ")),
        "{}",
        run.transcript()
    );
    for name in SMP_TESTS {
        assert!(
            run.stdout
                .contains(&format!("test ktests::smp::{name} ... ok")),
            "{name} did not pass\n{}",
            run.transcript()
        );
    }
    // The powernv tests of the kernel's own table skip on pseries.
    let skipped: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains(" ... ignored") && !l.contains("ignored, powernv only"))
        .collect();
    assert!(
        skipped.is_empty(),
        "a test was skipped: {skipped:?}\n{}",
        run.transcript()
    );
}

#[test]
fn vof_power9_four_cpus_passes_the_whole_suite_on_multithreaded_tcg() {
    let elf = build_kernel(&[]).unwrap();
    let run = boot(&elf, &["--smp", "4", "--timeout", "180"]);
    assert_passed(&run);
    assert_smp_tests_ran(&run, 4);
    assert_smp_proc_tests_ran(&run);
    assert!(
        run.stderr.contains("-accel tcg,thread=multi"),
        "{}",
        run.transcript()
    );
}

#[test]
fn smp_stress_boot_passes_three_times_in_a_row() {
    // The SMP tests alone on four vCPUs, each its own host thread: races
    // between the IPI, the mailbox and the acknowledgement, the VMM lock
    // and its shootdowns, the scheduler's queue and kicks show up as a
    // failure or a hang (the cross-call watchdog, or the timeout) in one
    // of the runs rather than in none. The filter takes both `smp` and
    // `smp_proc`.
    let elf = build_kernel(&[]).unwrap();
    for round in 0..3 {
        let run = boot(
            &elf,
            &["--smp", "4", "--test", "ktests::smp", "--timeout", "120"],
        );
        assert_eq!(run.status, Some(0), "round {round}\n{}", run.transcript());
        assert_smp_tests_ran(&run, 4);
        assert_smp_proc_tests_ran(&run);
    }
}

#[test]
fn icount_with_several_cpus_keeps_single_threaded_tcg() {
    // -icount needs round-robin TCG: the vCPUs interleave on one host
    // thread, the cross-calls still work and the counts stay
    // deterministic.
    let elf = build_kernel(&[]).unwrap();
    let run = boot(
        &elf,
        &[
            "--icount",
            "--smp",
            "2",
            "--test",
            "ktests::smp::",
            "--timeout",
            "60",
        ],
    );
    assert_eq!(run.status, Some(0), "{}", run.transcript());
    assert_smp_tests_ran(&run, 2);
    assert!(
        run.stderr.contains("-icount shift=0"),
        "{}",
        run.transcript()
    );
    assert!(!run.stderr.contains("thread=multi"), "{}", run.transcript());
}

#[test]
fn qemu_run_refuses_more_than_eight_cpus() {
    let elf = build_kernel(&[]).unwrap();
    let run = boot(&elf, &["--smp", "9"]);
    assert_eq!(run.status, Some(2), "{}", run.transcript());
    assert!(run.stderr.contains("at most 8"), "{}", run.transcript());
}

#[test]
fn a_kernel_fault_on_a_secondary_is_reported_and_ends_the_run() {
    // A secondary has its own SLB manager and takes its segment misses
    // to the VMM like the boot processor: a kernel load from an address
    // in no segment, in a cross-call on CPU 1, is refused (NoSegment),
    // and the panic on a secondary names the processor and ends the run.
    let elf = build_kernel(&["secondary-miss-test"]).unwrap();
    let run = boot(
        &elf,
        &[
            "--smp",
            "2",
            "--test",
            "deliberate_segment_miss_on_a_secondary",
            "--timeout",
            "60",
        ],
    );
    assert_eq!(run.status, Some(1), "{}", run.transcript());
    assert!(
        run.stdout.contains("kernel panic on CPU 1 at "),
        "{}",
        run.transcript()
    );
    assert!(
        run.stdout
            .contains("kernel fault at 0x20000000000: None access, NoSegment (vector 0x380"),
        "{}",
        run.transcript()
    );
    assert!(
        run.stderr
            .contains("OS terminated: kernel panic on CPU 1 at "),
        "{}",
        run.transcript()
    );
    assert!(run.summary().is_none(), "{}", run.transcript());
}

#[test]
fn failing_kernel_test_fails_the_run_and_names_the_test() {
    let elf = build_kernel(&["fail-test"]).unwrap();
    let run = boot(&elf, &["--timeout", "60"]);
    assert_eq!(
        run.status,
        Some(1),
        "ibm,os-term exit\n{}",
        run.transcript()
    );
    assert!(
        run.stdout
            .contains("test ktests::harness_checks::deliberately_failing_test ... FAILED"),
        "{}",
        run.transcript()
    );
    assert!(
        run.stdout
            .contains("panicked at kernel/src/ktests/harness_checks.rs:"),
        "location of the failed assertion\n{}",
        run.transcript()
    );
    assert!(
        run.stdout.contains("this test fails on purpose"),
        "{}",
        run.transcript()
    );
    let summary = run.summary().expect("summary line");
    assert!(!summary.ok);
    assert_eq!(summary.failed, 1);
    // The harness recovered: the tests after the failing one still ran.
    assert!(summary.passed >= MIN_PASSED, "{}", run.transcript());
    assert!(
        run.stdout
            .contains("test ktests::traps::trap_returns_with_every_gpr_intact ... ok"),
        "{}",
        run.transcript()
    );
    assert!(
        run.stderr.contains("OS terminated: 1 of"),
        "{}",
        run.transcript()
    );
}

#[test]
fn hanging_kernel_is_killed_by_the_timeout() {
    let elf = build_kernel(&["hang-test"]).unwrap();
    let run = boot(&elf, &["--timeout", "5"]);
    assert_eq!(run.status, Some(124), "{}", run.transcript());
    assert!(run.stderr.contains("TIMEOUT"), "{}", run.transcript());
    assert!(
        run.stdout.contains("deliberately_hanging_test ..."),
        "{}",
        run.transcript()
    );
    assert!(run.summary().is_none(), "{}", run.transcript());
    assert!(run.elapsed.as_secs() < 30, "{}", run.transcript());
}

#[test]
fn qemu_run_rejects_unknown_cpu() {
    let elf = build_kernel(&[]).unwrap();
    let run = boot(&elf, &["--cpu", "POWER7"]);
    assert_eq!(run.status, Some(2), "{}", run.transcript());
    assert!(
        run.stderr.contains("unsupported --cpu"),
        "{}",
        run.transcript()
    );
}

/// Instructions from kernel entry to the verdict, from the `run cost:`
/// line an `--icount` run prints.
fn run_cost(run: &Run) -> u64 {
    number_after(line_starting(run, "run cost: "), "run cost: ")
        .unwrap_or_else(|| panic!("no run cost\n{}", run.transcript()))
}

#[test]
fn run_cost_reads_the_line_format() {
    assert_eq!(
        number_after(
            "run cost: 77364500 instructions from kernel entry to the verdict (356398 to the first test)",
            "run cost: "
        ),
        Some(77_364_500)
    );
}

#[test]
fn release_kernel_passes_with_16_gib_on_16m_linear_pages_at_most_1_5x_the_512m_cost() {
    // Optimised code is where the compiler would reach for vector
    // registers or reorder around the firmware calls. 16 GiB is the large
    // machine: the kernel tests that depend on the table size (HPT
    // pressure, whole-table scans) see 2^20 PTEGs, and the linear map
    // takes 1,024 bolted 16M HPTEs instead of 262,144 64K ones.
    // Both runs count instructions (--icount), so what the larger machine
    // costs is deterministic: from kernel entry to the verdict, 16 GiB
    // may cost at most 1.5 times 512 MiB.
    let elf = build_kernel_profile(Profile::Release, &[]).unwrap();
    let small = boot(&elf, &["--icount", "--timeout", "90"]);
    assert_passed(&small);
    let run = boot(&elf, &["--icount", "--mem", "16G", "--timeout", "90"]);
    assert_passed(&run);
    let (small_cost, large_cost) = (run_cost(&small), run_cost(&run));
    assert!(
        large_cost * 2 <= small_cost * 3,
        "16 GiB run: {large_cost} instructions, 512 MiB run: {small_cost}"
    );
    assert!(
        run.stdout.contains("RAM           : 16384 MiB"),
        "{}",
        run.transcript()
    );
    assert_eq!(
        linear_map_of(&run),
        ("16M".to_string(), 1024),
        "{}",
        run.transcript()
    );
}

#[test]
fn kernel_has_no_vector_instructions() {
    // The kernel runs with MSR[VEC] = MSR[VSX] = 0 (and interrupts clear
    // them), so .cargo/config.toml turns VMX/VSX code generation off; a
    // vector instruction would be a trap waiting to happen.
    for elf in [
        build_kernel(&[]).unwrap(),
        build_kernel_profile(Profile::Release, &[]).unwrap(),
    ] {
        let found = vector_instructions(&elf).unwrap();
        assert!(
            found.is_empty(),
            "{} has {} vector instructions, e.g.\n{}",
            elf.display(),
            found.len(),
            found
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
