#!/usr/bin/env bash
# Builds the C example kernel against libvmm_c.a and boots it under QEMU
# pseries (VOF). Exits with QEMU's status: 0 when every check passed (the
# kernel calls RTAS power-off), 1 when one failed (ibm,os-term, with
# -action panic=exit-failure), 124 on a hang (timeout).
#
# Environment: CARGO_TARGET_DIR (where the library and the kernel are
# built; default target/), EXTRA_CFLAGS (e.g. -DFAIL_TEST: one check that
# fails, to see the failure path), TIMEOUT (seconds, default 60).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
out="$target/c-kernel"
mkdir -p "$out"

cargo build --release --manifest-path "$root/Cargo.toml" -p vmm-c --no-default-features \
    --target powerpc64-unknown-linux-gnu
lib="$target/powerpc64-unknown-linux-gnu/release/libvmm_c.a"

cc=powerpc64-linux-gnu-gcc
flags=(-std=c11 -O2 -Wall -Wextra -Werror -ffreestanding -fno-builtin
    -fno-tree-loop-distribute-patterns -mno-altivec -mno-vsx -msoft-float
    -mcmodel=medium -fno-pic -fno-stack-protector -I "$root/vmm/include" ${EXTRA_CFLAGS:-})
"$cc" "${flags[@]}" -c "$here/kernel.c" -o "$out/kernel.o"
"$cc" "${flags[@]}" -c "$here/start.S" -o "$out/start.o"
powerpc64-linux-gnu-ld -nostdlib -static -T "$here/kernel.ld" --no-dynamic-linker \
    -o "$out/c-kernel.elf" "$out/start.o" "$out/kernel.o" "$lib"

machine="pseries,x-vof=on,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off"
set +e
timeout "${TIMEOUT:-60}" qemu-system-ppc64 -M "$machine" -cpu POWER9 -m 512M \
    -nographic -nodefaults -serial stdio -no-reboot -action panic=exit-failure \
    -kernel "$out/c-kernel.elf"
status=$?
set -e
exit $status
