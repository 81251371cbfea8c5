#!/usr/bin/env bash
# Installs what building and booting the kernel needs, saying what it does:
# QEMU for ppc64, GNU binutils for powerpc64 (the linker), gdb-multiarch,
# gcc and g++ (the C/C++ header tests), powerpc64-linux-gnu-gcc (the C
# example kernel), and the Rust
# powerpc64-unknown-linux-gnu target. Quiet when all present.
set -euo pipefail

missing=()
command -v qemu-system-ppc64 >/dev/null 2>&1 || missing+=(qemu-system-ppc)
command -v powerpc64-linux-gnu-ld >/dev/null 2>&1 || missing+=(binutils-powerpc64-linux-gnu)
command -v gdb-multiarch >/dev/null 2>&1 || missing+=(gdb-multiarch)
# The C header and harness tests compile C (gcc) and C++17 (g++).
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
# The C example kernel (examples/c-kernel) is compiled for powerpc64.
command -v powerpc64-linux-gnu-gcc >/dev/null 2>&1 || missing+=(gcc-powerpc64-linux-gnu)

if ((${#missing[@]})); then
    echo "install-deps: installing missing packages: ${missing[*]}" >&2
    if [[ $(id -u) -eq 0 ]]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "install-deps: need root or sudo to install ${missing[*]}" >&2
        exit 1
    fi
    "${sudo[@]}" apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi

if command -v rustup >/dev/null 2>&1; then
    # rust-toolchain.toml pins the toolchain; run from the workspace so
    # rustup looks at that toolchain's targets.
    cd "$(dirname "${BASH_SOURCE[0]}")/.."
    if ! rustup target list --installed 2>/dev/null | grep -qx powerpc64-unknown-linux-gnu; then
        echo "install-deps: rustup target add powerpc64-unknown-linux-gnu" >&2
        rustup target add powerpc64-unknown-linux-gnu
    fi
else
    echo "install-deps: rustup not found; install Rust with rustup first" >&2
    exit 1
fi
