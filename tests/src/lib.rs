//! Host-side tests that boot the kernel under QEMU; see `tests/`.
