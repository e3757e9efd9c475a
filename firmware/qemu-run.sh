#!/usr/bin/env bash
# Cargo runner: qemu-run.sh BOARD ELF
# Runs ELF on the QEMU board with semihosting, captures the defmt stream it writes to
# semihosting stdout, decodes it with defmt-print, and exits with the firmware's own
# exit status (a wrong answer, a panic or a hang fails the command).
#
# QEMU's output is captured whole before decoding: a reader that stops early would
# leave the guest blocked on its output. defmt-print exits 0 whatever happened, so the
# status kept is QEMU's.
set -uo pipefail
board="$1"
elf="$2"
shift 2
timeout_s="${QEMU_TIMEOUT:-60}"
case "$board" in
    mps2-an386) cpu=(-cpu cortex-m4) ;;
    lm3s6965evb) cpu=(-cpu cortex-m3) ;;
    microbit) cpu=() ;;
    *) echo "qemu-run.sh: unknown board '$board'" >&2; exit 2 ;;
esac
raw="$(mktemp)"
trap 'rm -f "$raw"' EXIT
timeout "$timeout_s" qemu-system-arm "${cpu[@]}" -machine "$board" -nographic -monitor none \
    -serial none -semihosting-config enable=on,target=native ${QEMU_EXTRA:-} -kernel "$elf" >"$raw"
status=$?
if [ "$status" -eq 124 ]; then
    echo "qemu-run.sh: $board did not finish within ${timeout_s} s" >&2
fi
defmt-print -e "$elf" <"$raw" || echo "qemu-run.sh: could not decode the defmt output" >&2
exit "$status"
