#!/usr/bin/env bash
# measure.sh: measures deq_layer on every QEMU board with each solver alone, and writes
# the table into README.md between the markers
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

rows=()
detail_rows=()
microbit_broyden_total=""

for target in "${targets[@]}"; do
    board="$(board_of "$target")"
    for solver in "${solvers[@]}"; do
        tag="$target/$solver"
        echo "== $tag ($board)" >&2
        json="$work/$target-$solver.build.json"
        cargo build --release --example deq_layer --target "$target" --no-default-features --features "$solver" \
            --message-format=json-render-diagnostics >"$json" \
            || die "$tag: build failed (a link error naming a_panic_is_reachable means a reachable panic)"
        exe="$(jq -r 'select(.reason == "compiler-artifact" and .target.name == "deq_layer"
                             and (.target.kind | index("example"))) | .executable // empty' "$json")"
        [ -n "$exe" ] && [ "$(echo "$exe" | wc -l)" -eq 1 ] && [ -f "$exe" ] || die "$tag: no single deq_layer executable in the build output"
        elf="$work/$target-$solver.elf"
        cp "$exe" "$elf"

        # Sizes.
        sizes="$("$llvm_size" -A "$elf")"
        for s in .vector_table .text .rodata .data .bss; do
            echo "$sizes" | awk -v s="$s" '$1 == s { f = 1 } END { exit !f }' || die "$tag: no section $s in $elf"
        done
        flash="$(echo "$sizes" | sum_sections .vector_table .text .rodata .data)"
        static_ram="$(echo "$sizes" | sum_sections .data .bss .uninit)"

        # Marker addresses (Thumb bit cleared).
        syms="$("$llvm_nm" "$elf")"
        addr() {
            local a
            a="$(echo "$syms" | awk -v n="$1" '$3 == n && ($2 == "T" || $2 == "t") { print $1 }')"
            [ -n "$a" ] && [ "$(echo "$a" | wc -l)" -eq 1 ] || die "$tag: no single text symbol $1"
            printf '0x%x' $((0x$a & ~1))
        }
        begin="$(addr deq_mark_begin)"
        end="$(addr deq_mark_end)"

        # Two runs under the plugin; they must agree exactly.
        counts_prev=""
        peak_prev=""
        for run in 1 2; do
            out="$work/$target-$solver.run$run.log"
            plog="$work/$target-$solver.run$run.plugin"
            status=0
            QEMU_TIMEOUT="${QEMU_TIMEOUT:-120}" \
                QEMU_EXTRA="-icount shift=0 -d plugin -D $plog -plugin file=$plugin,begin=$begin,end=$end" \
                bash qemu-run.sh "$board" "$elf" >"$out" 2>&1 || status=$?
            [ "$status" -eq 0 ] || { cat "$out" >&2; die "$tag: run $run failed (exit status $status)"; }
            grep -qxE 'INFO +all solves correct' "$out" || { cat "$out" >&2; die "$tag: run $run did not report 'all solves correct'"; }
            n_ok="$(grep -cE "^INFO +$solver input [0-3]: .* ok$" "$out" || true)"
            [ "$n_ok" -eq 4 ] || die "$tag: run $run: expected 4 correct '$solver input' lines, found $n_ok"
            if grep -E 'input [0-9]+:' "$out" | grep -vqE "^INFO +$solver input "; then
                die "$tag: run $run: another solver ran (features not applied?)"
            fi
            footprint="$(one_line "$out" 'FOOTPRINT [0-9]+ bytes' "$tag" | sed -E 's/.*FOOTPRINT ([0-9]+) bytes.*/\1/')"
            peak="$(one_line "$out" 'peak stack [0-9]+ bytes' "$tag" | sed -E 's/.*peak stack ([0-9]+) bytes.*/\1/')"

            [ -f "$plog" ] || die "$tag: run $run: the plugin wrote no log"
            if grep -q '^insn_count_error' "$plog"; then
                cat "$plog" >&2
                die "$tag: run $run: markers out of order"
            fi
            [ "$(one_line "$plog" '^insn_count_regions [0-9]+$' "$tag")" = "insn_count_regions 4" ] \
                || die "$tag: run $run: expected 4 measured solves"
            counts="$(grep -E '^insn_count [0-9]+ [0-9]+$' "$plog" | awk '{ print $3 }')"
            [ "$(echo "$counts" | wc -l)" -eq 4 ] || die "$tag: run $run: expected 4 counts"
            if [ "$run" -eq 2 ]; then
                [ "$counts" = "$counts_prev" ] || die "$tag: instruction counts differ between runs: $(echo $counts_prev) vs $(echo $counts)"
                [ "$peak" = "$peak_prev" ] || die "$tag: peak stack differs between runs: $peak_prev vs $peak"
            fi
            counts_prev="$counts"
            peak_prev="$peak"
        done

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
    printf '%s\n' "${rows[@]}"
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
printf '%s\n' "${rows[@]}"
