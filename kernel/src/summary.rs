//! The libtest-style result line, shared by the kernel harness and its
//! host unit tests.

use core::fmt;

/// Counts of one harness run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed.
    pub failed: usize,
    /// Tests that skipped themselves (`harness::skip`).
    pub ignored: usize,
    /// Tests skipped by the filter.
    pub filtered_out: usize,
    /// Elapsed time in timebase ticks.
    pub ticks: u64,
    /// Timebase frequency in Hz (0 = unknown).
    pub timebase_hz: u64,
}

impl Summary {
    /// Whether every test that ran passed.
    pub fn ok(&self) -> bool {
        self.failed == 0
    }

    /// Elapsed time in hundredths of a second (rounded down).
    pub fn centiseconds(&self) -> u64 {
        if self.timebase_hz == 0 {
            return 0;
        }
        (u128::from(self.ticks) * 100 / u128::from(self.timebase_hz)) as u64
    }
}

impl fmt::Display for Summary {
    /// `test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.12s`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cs = self.centiseconds();
        write!(
            f,
            "test result: {}. {} passed; {} failed; {} ignored; 0 measured; {} filtered out; finished in {}.{:02}s",
            if self.ok() { "ok" } else { "FAILED" },
            self.passed,
            self.failed,
            self.ignored,
            self.filtered_out,
            cs / 100,
            cs % 100
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_libtest() {
        let s = Summary {
            passed: 12,
            failed: 0,
            ignored: 0,
            filtered_out: 0,
            ticks: 512_000_000 + 5_120_000 * 7,
            timebase_hz: 512_000_000,
        };
        assert_eq!(
            s.to_string(),
            "test result: ok. 12 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.07s"
        );
        let f = Summary {
            failed: 1,
            ignored: 2,
            filtered_out: 3,
            ..s
        };
        assert!(!f.ok());
        assert!(f.to_string().starts_with(
            "test result: FAILED. 12 passed; 1 failed; 2 ignored; 0 measured; 3 filtered out;"
        ));
    }

    #[test]
    fn unknown_timebase_is_zero_seconds() {
        let s = Summary {
            ticks: 99,
            ..Summary::default()
        };
        assert!(s.to_string().ends_with("finished in 0.00s"));
    }
}
