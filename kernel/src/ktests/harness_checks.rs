//! The harness itself, and the deliberately failing/hanging tests behind
//! the `fail-test` / `hang-test` features that the host tests use.

use arch_ppc64::registers::msr::{self, Msr};

kernel_test! {
    fn tests_are_registered_and_sorted_by_name() {
        let tests = crate::harness::tests();
        assert!(tests.len() >= 10, "only {} tests registered", tests.len());
        assert!(tests.iter().any(|t| t.name.ends_with("::tests_are_registered_and_sorted_by_name")));
        let mut names: alloc::vec::Vec<_> = tests.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), tests.len(), "test names are unique");
    }

    fn kernel_runs_64_bit_translated_with_interrupts_masked() {
        // ME is not checked: mtmsrd cannot change it outside hypervisor
        // state (ISA 3.0 Book III 5.4.4), so it stays as the firmware left it.
        // IR|DR: mm::init turned translation on (linear map) before the tests.
        let m = msr::read();
        assert!(m.contains(Msr::SF | Msr::IR | Msr::DR), "MSR {:#x}", m.bits());
        assert!(!m.intersects(Msr::EE | Msr::PR | Msr::LE), "MSR {:#x}", m.bits());
    }
}

#[cfg(feature = "fail-test")]
kernel_test! {
    fn deliberately_failing_test() {
        let answer = 6 * 7;
        assert_eq!(answer, 43, "this test fails on purpose (feature fail-test)");
    }
}

#[cfg(feature = "hang-test")]
kernel_test! {
    fn deliberately_hanging_test() {
        crate::println!("(hang-test: looping forever)");
        loop {
            core::hint::spin_loop();
        }
    }
}

kernel_test! {
    fn failed_assertions_are_caught() {
        assert!(crate::harness::panics(|| assert_eq!(1 + 1, 3, "caught on purpose")));
        assert!(!crate::harness::panics(|| assert_eq!(core::hint::black_box(1) + 1, 2)));
    }

    fn panics_with_checks_the_message() {
        let f = || panic!("the expected message {}", core::hint::black_box(7));
        assert!(crate::harness::panics_with(f, "expected message 7"));
        assert!(!crate::harness::panics_with(f, "some other message"));
        assert!(!crate::harness::panics_with(|| (), "no panic at all"));
        assert_eq!(
            crate::harness::panic_message(f).as_deref(),
            Some("the expected message 7")
        );
    }

    fn a_failed_test_gets_its_handlers_back() {
        // A handler installed inside an abandoned closure (its guard never
        // runs) is replaced by the snapshot taken before it.
        fn install_and_panic() {
            fn stray(_: &mut crate::trap::TrapFrame) {}
            crate::trap::set_handler(crate::trap::Vector::Trace, Some(stray));
            crate::mm::clear_user_fault_hook();
            panic!("abandoned with a stray handler");
        }
        let before = crate::trap::handler(crate::trap::Vector::Trace).map(|h| h as usize);
        let hook = crate::mm::user_fault_hook().map(|h| h as usize);
        assert!(crate::harness::panics_with(install_and_panic, "stray handler"));
        assert_eq!(crate::trap::handler(crate::trap::Vector::Trace).map(|h| h as usize), before);
        assert_eq!(crate::mm::user_fault_hook().map(|h| h as usize), hook);
    }

    fn unexpected_interrupt_is_reported_as_a_failure() {
        // No handler for the program interrupt: the trap reports the vector
        // and registers and panics, which `panics` catches.
        let previous = crate::trap::set_handler(crate::trap::Vector::Program, None);
        let caught = crate::harness::panics_with(|| {
            // SAFETY: traps into the kernel's own vector, whose default
            // handler panics; the harness unwinds to `panics`.
            unsafe { core::arch::asm!("trap") }
        }, "unexpected interrupt 0x700");
        crate::trap::set_handler(crate::trap::Vector::Program, previous);
        assert!(caught, "an unhandled trap must fail the running test");
    }
}
