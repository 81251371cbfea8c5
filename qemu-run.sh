#!/usr/bin/env bash
# Boots the kernel under qemu-system-ppc64 -M pseries (or -M powernv) and
# exits with the run's status: 0 = all kernel tests passed; 1 = a test
# failed or the kernel panicked; 124 = killed by --timeout.
#
# Usage: ./qemu-run.sh [options] [KERNEL_ELF] [-- extra QEMU args]
#   --machine M        pseries (default) or powernv: bare metal under
#                      skiboot/OPAL in hypervisor state (-M powernv8/9/10
#                      from --cpu), where the kernel owns the HPT. QEMU
#                      exits 0 on every OPAL power-down, so the status comes
#                      from the console: 1 if the kernel printed its failure
#                      line (or no verdict at all), else 0
#   --slof             boot with SLOF instead of VOF (-M pseries,x-vof=on)
#   --cpu MODEL        POWER8, POWER9 (default) or POWER10
#   --smp N            number of CPUs, 1..8 (default 1); more than one runs
#                      multi-threaded TCG (-accel tcg,thread=multi), one host
#                      thread per vCPU, except with --icount
#   --mem SIZE         guest RAM, a multiple of 256M (default 512M; 1G on
#                      powernv, the least QEMU accepts there)
#   --max-page-size SZ largest HPT page size the machine offers: 16M
#                      (default; the kernel maps RAM with 16M pages) or 64K
#                      (QEMU's own default; the kernel falls back to 64K)
#   --gdb              wait for gdb on :1234 (-s -S); no timeout
#   --release          build the release kernel
#   --features LIST    kernel cargo features (e.g. fail-test, hang-test)
#   --test FILTER      run only kernel tests whose name contains FILTER
#   --icount           (pseries only: QEMU's powernv aborts under it)
#                      -icount shift=0: virtual time counts guest instructions
#                      (1 instruction = 1 ns), so the timebase-based
#                      `measure:` lines are deterministic instruction counts;
#                      passes icount=1 to the kernel, which then says
#                      "instructions" (else "ns"). -icount needs
#                      single-threaded round-robin TCG, so with --smp > 1
#                      the vCPUs take turns on one host thread: the counts
#                      stay deterministic, the concurrency is interleaving
#   --timeout SECS     kill QEMU after SECS seconds (default 120, 0 = never)
#   KERNEL_ELF         boot this ELF instead of building (cargo runner use)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TARGET=powerpc64-unknown-linux-gnu

firmware=vof
machine_kind=pseries
cpu=POWER9
smp=1
mem=""
max_page_size=16M
gdb=0
profile=debug
features=""
test_filter=""
icount=0
timeout_secs=120
elf=""
extra=()

usage() {
    # The comment block at the top of this file.
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
}

die() {
    echo "qemu-run: $*" >&2
    exit 2
}

while (($#)); do
    case "$1" in
    --slof) firmware=slof ;;
    --vof) firmware=vof ;;
    --machine) [[ $# -ge 2 ]] || die "--machine needs pseries or powernv"; machine_kind="$2"; shift ;;
    --cpu) [[ $# -ge 2 ]] || die "--cpu needs a model"; cpu="$2"; shift ;;
    --smp) [[ $# -ge 2 ]] || die "--smp needs a number"; smp="$2"; shift ;;
    --mem) [[ $# -ge 2 ]] || die "--mem needs a size"; mem="$2"; shift ;;
    --max-page-size) [[ $# -ge 2 ]] || die "--max-page-size needs a size"; max_page_size="$2"; shift ;;
    --gdb) gdb=1 ;;
    --release) profile=release ;;
    --features) [[ $# -ge 2 ]] || die "--features needs a list"; features="$2"; shift ;;
    --test) [[ $# -ge 2 ]] || die "--test needs a filter"; test_filter="$2"; shift ;;
    --icount) icount=1 ;;
    --timeout) [[ $# -ge 2 ]] || die "--timeout needs seconds"; timeout_secs="$2"; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *)
        [[ -z "$elf" ]] || die "more than one kernel ELF given: $elf, $1"
        elf="$1"
        ;;
    esac
    shift
done

case "${cpu^^}" in
POWER8 | POWER9 | POWER10) cpu="${cpu^^}" ;;
*) die "unsupported --cpu $cpu (POWER8, POWER9 or POWER10)" ;;
esac
case "$machine_kind" in
pseries | powernv) ;;
*) die "unsupported --machine $machine_kind (pseries or powernv)" ;;
esac
# powernv needs at least 1 GiB (QEMU refuses less).
[[ -n "$mem" ]] || { [[ "$machine_kind" == powernv ]] && mem=1G || mem=512M; }
[[ "$smp" =~ ^[1-9][0-9]*$ ]] || die "--smp needs a positive number, got $smp"
((smp <= 8)) || die "--smp $smp: the kernel starts at most 8 CPUs"
# QEMU 7.2's powernv aborts under -icount ("Bad icount read" in skiboot).
[[ "$machine_kind" == pseries ]] || ((icount == 0)) || die "--icount: QEMU's powernv machine does not run under -icount"
case "${max_page_size^^}" in
64K | 16M) max_page_size="${max_page_size^^}" ;;
*) die "unsupported --max-page-size $max_page_size (64K or 16M)" ;;
esac
[[ "$timeout_secs" =~ ^[0-9]+$ ]] || die "--timeout needs whole seconds, got $timeout_secs"

"$ROOT/tests/install-deps.sh"

if [[ -z "$elf" ]]; then
    build=(cargo build -p kernel --target "$TARGET")
    [[ "$profile" == release ]] && build+=(--release)
    [[ -n "$features" ]] && build+=(--features "$features")
    echo "qemu-run: ${build[*]}" >&2
    (cd "$ROOT" && "${build[@]}")
    elf="${CARGO_TARGET_DIR:-$ROOT/target}/$TARGET/$profile/kernel"
elif [[ -n "$features" || "$profile" == release ]]; then
    echo "qemu-run: note: --features/--release ignored, booting the given ELF" >&2
fi
[[ -f "$elf" ]] || die "kernel ELF not found: $elf"

# The cap-* settings silence TCG's "doesn't support requested feature"
# warnings about speculation workarounds that do not apply to emulation.
# cap-hpt-max-page-size decides whether ibm,segment-page-sizes offers 16M
# pages, which the kernel's linear map uses when it can (one bolted HPTE
# per 16 MiB instead of per 64 KiB).
machine="pseries,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off"
machine+=",cap-hpt-max-page-size=$max_page_size"
[[ "$firmware" == vof ]] && machine+=",x-vof=on"

# `ram=`, `hpt-max-page=` and `smp=` let kernel tests compare the device
# tree with what was asked for.
append="ram=$mem hpt-max-page=$max_page_size smp=$smp"
[[ -n "$test_filter" ]] && append+=" test=$test_filter"
((icount)) && append+=" icount=1"

if [[ "$machine_kind" == powernv ]]; then
    # -nodefaults skips PCI link training (seconds); the BMC devices are
    # what OPAL's power-down goes through (without them it fails and
    # QEMU never exits). The kernel is copied to 0x20000000 and skiboot
    # enters it there.
    version="${cpu#POWER}"
    qemu=(qemu-system-ppc64 -M "powernv$version" -cpu "$cpu" -smp "$smp" -m "$mem"
        -nographic -nodefaults -serial stdio -no-reboot
        -device ipmi-bmc-sim,id=bmc0 -device isa-ipmi-bt,bmc=bmc0,irq=10
        -kernel "$elf" -append "$append")
else
    qemu=(qemu-system-ppc64 -M "$machine" -cpu "$cpu" -smp "$smp" -m "$mem"
        -nographic -nodefaults -serial stdio -no-reboot
        -action panic=exit-failure
        -kernel "$elf" -append "$append")
fi
if ((icount)); then
    # Round-robin TCG (QEMU refuses MTTCG with -icount).
    qemu+=(-icount shift=0)
elif ((smp > 1)); then
    qemu+=(-accel tcg,thread=multi)
fi
if ((gdb)); then
    qemu+=(-s -S)
    timeout_secs=0
    cat >&2 <<HINT
qemu-run: waiting for gdb on localhost:1234; attach with
    gdb-multiarch $elf -ex 'target remote :1234'
HINT
fi
qemu+=("${extra[@]}")

echo "qemu-run: ${qemu[*]}" >&2
run() {
    if ((timeout_secs > 0)); then
        fg=()
        [[ -t 0 ]] && fg=(--foreground)
        timeout "${fg[@]}" -k 5 "$timeout_secs" "${qemu[@]}"
    else
        "${qemu[@]}"
    fi
}
set +e
if [[ "$machine_kind" == powernv ]]; then
    # The kernel's verdict lines (kernel/src/platform/powernv.rs).
    console_log="$(mktemp)"
    trap 'rm -f "$console_log"' EXIT
    run | tee "$console_log"
    status=${PIPESTATUS[0]}
    if ((status == 0)); then
        if grep -q "powernv: RUN FAILED" "$console_log"; then
            status=1
        elif ! grep -q "powernv: RUN PASSED" "$console_log"; then
            echo "qemu-run: the powernv kernel powered down without a verdict" >&2
            status=1
        fi
    fi
else
    run
    status=$?
fi
set -e

if ((status == 124 || status == 137)) && ((timeout_secs > 0)); then
    echo "qemu-run: TIMEOUT: the guest did not finish within ${timeout_secs}s; QEMU was killed" >&2
    exit 124
fi
exit "$status"
