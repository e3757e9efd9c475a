#!/usr/bin/env bash
# measure.sh: measures deq_layer on every QEMU board with each solver alone, and the
# digits classifier (f32 and int8 weights) on every board, and writes the tables into
# README.md between the markers
#     <!-- measure.sh: begin -->  and  <!-- measure.sh: end -->
# (everything else in README.md is left as it is).
#
#     bash measure.sh
#
# For each board and solver it builds `deq_layer --no-default-features --features
# <solver>` in release mode and takes:
#   - flash      = .vector_table + .text + .rodata + .data   (llvm-size -A of the ELF)
#   - static RAM = .data + .bss + .uninit
#   - FOOTPRINT  as the firmware prints it (the compile-time constant)
#   - peak stack from the firmware's "peak stack N bytes" line (stack painting)
#   - instructions executed per solve, counted by the QEMU plugin tools/insn_count.c
#     between deq_mark_begin and deq_mark_end, under -icount shift=0; every program
#     is run twice and the two runs must agree exactly.
# Every step is checked: a failed build or run, a wrong answer, a missing or
# duplicated log line, or two runs that disagree stop the script with an error, and
# README.md is only rewritten once everything has been measured.
#
# Needs: cargo with the thumb targets and llvm-tools (llvm-size, llvm-nm), gcc,
# qemu-system-arm (with plugin support), flip-link, defmt-print, jq.
# Honours CARGO_TARGET_DIR (the plugin and the copies of the ELFs go there too).
set -euo pipefail

die() {
    echo "measure.sh: error: $*" >&2
    exit 1
}

start_s=$SECONDS
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

readme="$here/README.md"
begin_marker='<!-- measure.sh: begin -->'
end_marker='<!-- measure.sh: end -->'

# ---- Tools.
for tool in cargo rustc gcc qemu-system-arm flip-link defmt-print jq; do
    command -v "$tool" >/dev/null || die "'$tool' not found on PATH"
done
llvm_bin="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin"
llvm_size="$llvm_bin/llvm-size"
llvm_nm="$llvm_bin/llvm-nm"
[ -x "$llvm_size" ] && [ -x "$llvm_nm" ] || die "llvm-size/llvm-nm not in $llvm_bin (rustup component add llvm-tools)"

[ -f "$readme" ] || die "$readme not found"
[ "$(grep -cxF "$begin_marker" "$readme")" -eq 1 ] && [ "$(grep -cxF "$end_marker" "$readme")" -eq 1 ] \
    || die "README.md must hold exactly one line '$begin_marker' and one '$end_marker'"
[ "$(grep -nxF "$begin_marker" "$readme" | cut -d: -f1)" -lt "$(grep -nxF "$end_marker" "$readme" | cut -d: -f1)" ] \
    || die "README.md: '$begin_marker' must come before '$end_marker'"

target_dir="$(cargo metadata --format-version 1 --no-deps | jq -er .target_directory)"
work="$target_dir/measure"
case "$work" in *[[:space:]]*) die "the target directory '$target_dir' has whitespace: QEMU_EXTRA cannot carry it" ;; esac
rm -rf "$work"
mkdir -p "$work"

# ---- The instruction-count plugin.
plugin="$work/insn_count.so"
gcc -shared -fPIC -O2 -Wall -Wextra -Werror -o "$plugin" tools/insn_count.c

qemu_version="$(qemu-system-arm --version | head -n1)"
rustc_version="$(rustc --version)"

# ---- Boards: the runner of each target in .cargo/config.toml.
targets=(thumbv7em-none-eabihf thumbv7m-none-eabi thumbv6m-none-eabi)
board_of() {
    # The board named in `runner = ["bash", "qemu-run.sh", "<board>"]` under [target.<triple>].
    local b
    b="$(awk -v t="[target.$1]" '$0 == t { f = 1; next } /^\[/ { f = 0 } f && /^runner/' .cargo/config.toml \
        | sed -n 's/.*"qemu-run.sh", *"\([^"]*\)".*/\1/p')"
    [ -n "$b" ] || die "no qemu-run.sh runner for $1 in .cargo/config.toml"
    echo "$b"
}
solvers=(broyden anderson picard)

# size_of SECTIONS... < llvm-size -A output: the sum of those sections' sizes (0 if absent).
sum_sections() {
    awk -v want=" $* " 'index(want, " " $1 " ") { s += $2 } END { print s + 0 }'
}

# One line of `log` matching the extended regex `re` (exactly one, else fail); prints it.
one_line() {
    local log="$1" re="$2" what="$3" n
    n="$(grep -cE "$re" "$log" || true)"
    [ "$n" -eq 1 ] || die "$what: expected 1 line matching '$re' in $log, found $n"
    grep -E "$re" "$log"
}

# build_elf TAG EXAMPLE OUT_ELF CARGO_ARGS...: a release build of EXAMPLE, copied to OUT_ELF.
build_elf() {
    local tag="$1" example="$2" elf="$3" json exe
    shift 3
    json="$elf.build.json"
    cargo build --release --example "$example" "$@" --message-format=json-render-diagnostics >"$json" \
        || die "$tag: build failed (a link error naming a_panic_is_reachable means a reachable panic)"
    exe="$(jq -r --arg n "$example" 'select(.reason == "compiler-artifact" and .target.name == $n
                         and (.target.kind | index("example"))) | .executable // empty' "$json")"
    [ -n "$exe" ] && [ "$(echo "$exe" | wc -l)" -eq 1 ] && [ -f "$exe" ] || die "$tag: no single $example executable in the build output"
    cp "$exe" "$elf"
}

# elf_sizes TAG ELF: sets flash and static_ram.
elf_sizes() {
    local tag="$1" elf="$2" sizes s
    sizes="$("$llvm_size" -A "$elf")"
    for s in .vector_table .text .rodata .data .bss; do
        echo "$sizes" | awk -v s="$s" '$1 == s { f = 1 } END { exit !f }' || die "$tag: no section $s in $elf"
    done
    flash="$(echo "$sizes" | sum_sections .vector_table .text .rodata .data)"
    static_ram="$(echo "$sizes" | sum_sections .data .bss .uninit)"
}

# run_measured TAG BOARD ELF REGIONS SUCCESS_LINE: runs ELF twice under the plugin; each
# run must exit 0, print SUCCESS_LINE and one "peak stack" line, and count REGIONS
# regions; the two runs must agree. Sets counts (one per line), peak and log (run 2).
run_measured() {
    local tag="$1" board="$2" elf="$3" regions="$4" success="$5" syms begin end run plog status prev_counts="" prev_peak=""
    syms="$("$llvm_nm" "$elf")"
    addr() {
        local a
        a="$(echo "$syms" | awk -v n="$1" '$3 == n && ($2 == "T" || $2 == "t") { print $1 }')"
        [ -n "$a" ] && [ "$(echo "$a" | wc -l)" -eq 1 ] || die "$tag: no single text symbol $1"
        printf '0x%x' $((0x$a & ~1))
    }
    begin="$(addr deq_mark_begin)"
    end="$(addr deq_mark_end)"
    for run in 1 2; do
        log="$elf.run$run.log"
        plog="$elf.run$run.plugin"
        status=0
        QEMU_TIMEOUT="${QEMU_TIMEOUT:-300}" \
            QEMU_EXTRA="-icount shift=0 -d plugin -D $plog -plugin file=$plugin,begin=$begin,end=$end" \
            bash qemu-run.sh "$board" "$elf" >"$log" 2>&1 || status=$?
        [ "$status" -eq 0 ] || { cat "$log" >&2; die "$tag: run $run failed (exit status $status)"; }
        grep -qxE "INFO +$success" "$log" || { cat "$log" >&2; die "$tag: run $run did not report '$success'"; }
        peak="$(one_line "$log" 'peak stack [0-9]+ bytes' "$tag" | sed -E 's/.*peak stack ([0-9]+) bytes.*/\1/')"
        [ -f "$plog" ] || die "$tag: run $run: the plugin wrote no log"
        if grep -q '^insn_count_error' "$plog"; then
            cat "$plog" >&2
            die "$tag: run $run: markers out of order"
        fi
        [ "$(one_line "$plog" '^insn_count_regions [0-9]+$' "$tag")" = "insn_count_regions $regions" ] \
            || die "$tag: run $run: expected $regions measured regions"
        counts="$(grep -E '^insn_count [0-9]+ [0-9]+$' "$plog" | awk '{ print $3 }')"
        [ "$(echo "$counts" | wc -l)" -eq "$regions" ] || die "$tag: run $run: expected $regions counts"
        if [ "$run" -eq 2 ]; then
            [ "$counts" = "$prev_counts" ] || die "$tag: instruction counts differ between runs"
            [ "$peak" = "$prev_peak" ] || die "$tag: peak stack differs between runs: $prev_peak vs $peak"
        fi
        prev_counts="$counts"
        prev_peak="$peak"
    done
}

rows=()
detail_rows=()
microbit_broyden_total=""

for target in "${targets[@]}"; do
    board="$(board_of "$target")"
    for solver in "${solvers[@]}"; do
        tag="$target/$solver"
        echo "== $tag ($board)" >&2
        elf="$work/$target-$solver.elf"
        build_elf "$tag" deq_layer "$elf" --target "$target" --no-default-features --features "$solver"
        elf_sizes "$tag" "$elf"
        run_measured "$tag" "$board" "$elf" 4 "all solves correct"
        out="$log"
        n_ok="$(grep -cE "^INFO +$solver input [0-3]: .* ok$" "$out" || true)"
        [ "$n_ok" -eq 4 ] || die "$tag: expected 4 correct '$solver input' lines, found $n_ok"
        if grep -E 'input [0-9]+:' "$out" | grep -vqE "^INFO +$solver input "; then
            die "$tag: another solver ran (features not applied?)"
        fi
        footprint="$(one_line "$out" 'FOOTPRINT [0-9]+ bytes' "$tag" | sed -E 's/.*FOOTPRINT ([0-9]+) bytes.*/\1/')"

        total_ram=$((static_ram + peak))
        # Median and mean of the four counts, exact (halves and quarters, no rounding).
        stats="$(echo "$counts" | sort -n | awk '
            function exact(x,   t) { t = sprintf("%.2f", x); sub(/0+$/, "", t); sub(/\.$/, "", t); return t }
            { v[NR] = $1; s += $1 }
            END { printf "%d %d %s %s", v[1], v[NR], exact((v[2] + v[3]) / 2), exact(s / NR) }')"
        read -r cmin cmax cmedian cmean <<<"$stats"
        list="$(echo $counts | sed 's/ /, /g')"
        echo "   flash $flash, static RAM $static_ram, peak stack $peak, FOOTPRINT $footprint, insns/solve $list" >&2

        rows+=("| $board (\`$target\`) | $solver | $flash | $static_ram | $peak | $total_ram | $footprint | $cmedian | $cmin–$cmax | $cmean |")
        detail_rows+=("| $board | $solver | $list |")
        if [ "$target" = thumbv6m-none-eabi ] && [ "$solver" = broyden ]; then
            microbit_broyden_total=$total_ram
            microbit_broyden_static=$static_ram
            microbit_broyden_peak=$peak
        fi
    done
done

# ---- digits: the trained classifier, f32 and int8 weights, every board.
digit_rows=()
for target in "${targets[@]}"; do
    board="$(board_of "$target")"
    for weights in f32 int8; do
        tag="$target/digits-$weights"
        echo "== $tag ($board)" >&2
        elf="$work/$target-digits-$weights.elf"
        features=()
        [ "$weights" = int8 ] && features=(--features int8)
        build_elf "$tag" digits "$elf" --target "$target" "${features[@]}"
        elf_sizes "$tag" "$elf"
        run_measured "$tag" "$board" "$elf" 360 "all predictions agree with the host"
        accuracy="$(one_line "$log" '^INFO +accuracy [0-9]+/360 ' "$tag" | sed -E 's/.*accuracy ([0-9]+)\/360 .*/\1/')"
        agree="$(one_line "$log" 'predictions equal the host' "$tag" | sed -E 's/.*INFO +([0-9]+) predictions.*/\1/')"
        stats="$(echo "$counts" | sort -n | awk '{ v[NR] = $1 } END { printf "%d %d", (v[NR / 2] + v[NR / 2 + 1]) / 2, v[NR] }')"
        read -r dmedian dmax <<<"$stats"
        pct="$(awk -v a="$accuracy" 'BEGIN { printf "%.1f", 100 * a / 360 }')"
        echo "   flash $flash, static RAM $static_ram, peak stack $peak, accuracy $accuracy/360, agree $agree/360, insns/inference median $dmedian max $dmax" >&2
        digit_rows+=("| $board (\`$target\`) | $weights | $accuracy/360 ($pct %) | $agree/360 | $flash | $static_ram | $peak | $((static_ram + peak)) | $dmedian | $dmax |")
    done
done

[ -n "$microbit_broyden_total" ] || die "microbit Broyden was not measured"
if [ "$microbit_broyden_total" -le 4096 ]; then
    verdict="**yes**: $microbit_broyden_total B ≤ 4096 B"
else
    verdict="**no**: $microbit_broyden_total B > 4096 B"
fi

elapsed=$((SECONDS - start_s))

# ---- The README section.
section="$work/section.md"
{
    echo "$begin_marker"
    echo "<!-- Generated by \`bash measure.sh\`: do not edit by hand, rerun it. -->"
    echo
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') with $rustc_version and $qemu_version,"
    echo "by \`bash measure.sh\` (${elapsed} s on this machine): \`deq_layer\` built with one"
    echo "solver alone (\`--no-default-features --features <solver>\`), release profile."
    echo
    echo "| board (target) | solver | flash | static RAM | peak stack | total RAM | FOOTPRINT | instructions per solve, median | min–max | mean |"
    echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"
    printf '%s\n' "${rows[@]}" "${digit_rows[@]}"
    echo
    echo "Bytes, except the instruction counts. flash = \`.vector_table + .text + .rodata + .data\`"
    echo "(the \`.data\` load image, which holds the solver's \`static\`, is in flash too); static"
    echo "RAM = \`.data + .bss + .uninit\`; total RAM = static RAM + peak stack. FOOTPRINT is the"
    echo "solver's compile-time \`FOOTPRINT\` (= \`size_of\`), as the firmware prints it; it is"
    echo "part of static RAM."
    echo
    echo "micro:bit (16 KiB of RAM), Broyden in at most 4096 bytes of RAM in all (static"
    echo "$microbit_broyden_static B + peak stack $microbit_broyden_peak B): $verdict."
    echo
    echo "Instructions per solve, all four inputs (they differ with the number of iterations):"
    echo
    echo "| board | solver | input 0, 1, 2, 3 |"
    echo "|---|---|---|"
    printf '%s\n' "${detail_rows[@]}"
    echo
    echo "How exact each number is:"
    echo
    echo "- flash, static RAM and FOOTPRINT are exact (read from the ELF and the compiler)."
    echo "- Instruction counts are exact and repeatable: guest instructions that QEMU executed,"
    echo "  counted one by one by [\`tools/insn_count.c\`](tools/insn_count.c) from the first"
    echo "  instruction of \`deq_mark_begin\` (included) to the first instruction of"
    echo "  \`deq_mark_end\` (excluded), under \`-icount shift=0\`. Each program ran twice and"
    echo "  the counts agreed. Besides the solve they hold a few tens of instructions: the"
    echo "  body of \`deq_mark_begin\` and the calls around the solve. Instructions, not cycles:"
    echo "  QEMU models no pipeline, flash wait states or FPU timing. The Cortex-M0 and M3 have"
    echo "  no FPU, so their float arithmetic runs as software routines, many instructions each."
    echo "- Peak stack is a high-water mark found by stack painting (to the word): the deepest"
    echo "  the stack went in this run (start-up, the four solves, the defmt logging), not a"
    echo "  static bound over all inputs and paths. It is repeatable: both runs agreed."
    echo
    echo "### digits: the trained classifier"
    echo
    echo "\`digits\` (h = 32, \`Broyden<32, 8>\`, 360 test images), f32 weights and"
    echo "\`--features int8\`. An inference is the injection \`U x + b\`, the solve and the"
    echo "readout, from \`deq_mark_begin\` to \`deq_mark_end\`; median (of 360, the mean of the"
    echo "two middle counts, rounded down) and maximum. \"agree\": predictions equal to the"
    echo "host's (\`build.rs\`, the calls of \`deq solve\`)."
    echo
    echo "| board (target) | weights | accuracy | agree | flash | static RAM | peak stack | total RAM | instructions per inference, median | max |"
    echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"
    printf '%s\n' "${digit_rows[@]}"
    echo "$end_marker"
} >"$section"

# Replace the lines between the markers (inclusive) with the new section.
tmp="$work/README.md.new"
awk -v b="$begin_marker" -v e="$end_marker" -v f="$section" '
    $0 == b { while ((getline line < f) > 0) print line; skip = 1; next }
    $0 == e { skip = 0; next }
    !skip { print }' "$readme" >"$tmp"
grep -qxF "$begin_marker" "$tmp" && grep -qxF "$end_marker" "$tmp" || die "could not rewrite README.md"
cat "$tmp" >"$readme"

echo "measure.sh: README.md updated in $((SECONDS - start_s)) s" >&2
printf '%s\n' "${rows[@]}" "${digit_rows[@]}"
