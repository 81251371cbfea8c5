#!/usr/bin/env bash
# Runs every check and test of the workspace, after installing what is
# missing (tests/install-deps.sh):
#   1. cargo fmt --all --check
#   2. cargo clippy --workspace --all-targets -- -D warnings        (host)
#   3. cargo clippy -p kernel -p arch-ppc64 -p vmm --target powerpc64-unknown-linux-gnu -- -D warnings,
#      and the C library's bare-metal (no_std) build: -p vmm-c --no-default-features
#   4. RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps -p arch-ppc64 -p vmm, and -p kernel for powerpc64
#   5. cargo test --workspace   (host unit tests, the emulated-MMU tests,
#                                the robustness driver's default run,
#                                and qemu-tests, which boot the kernel)
# Every step runs even if an earlier one fails; the exit status is non-zero
# if any failed, and the failed steps are listed at the end.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

"$ROOT/tests/install-deps.sh"

failed=()
step() {
    local name="$1"
    shift
    echo
    echo "==> $name: $*"
    local start=$SECONDS
    if "$@"; then
        echo "==> $name: ok ($((SECONDS - start))s)"
    else
        echo "==> $name: FAILED ($((SECONDS - start))s)"
        failed+=("$name")
    fi
}

step fmt cargo fmt --all --check
step clippy-host cargo clippy --workspace --all-targets -- -D warnings
step clippy-ppc64 cargo clippy -p kernel -p arch-ppc64 -p vmm --target powerpc64-unknown-linux-gnu -- -D warnings
step clippy-ppc64-libvmm cargo clippy -p vmm-c --no-default-features --target powerpc64-unknown-linux-gnu -- -D warnings
step doc env RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps -p arch-ppc64 -p vmm -p vmm-c
step doc-kernel env RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps -p kernel --target powerpc64-unknown-linux-gnu
step test cargo test --workspace

echo
if ((${#failed[@]})); then
    echo "run-all: FAILED steps: ${failed[*]}"
    exit 1
fi
echo "run-all: all checks and tests passed"
