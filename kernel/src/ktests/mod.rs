//! Kernel tests, registered with `kernel_test!` and run by the harness.

mod devtree;
