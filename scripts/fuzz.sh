#!/usr/bin/env bash
# Fuzz with a persistent corpus.
#
#   scripts/fuzz.sh TARGET|all SECONDS [JOBS]
#
# Each target runs for SECONDS (per target) from its committed corpus
# fuzz/corpus/TARGET, seeded from the test vectors named below; afterwards
# the corpus is minimised in place (cargo fuzz cmin) so that the next run,
# in this session or a later one, starts from it. A line per run goes to
# fuzz/RUNS.md (date, target, seconds, executions, corpus files, outcome).
# A crash leaves its input in fuzz/artifacts/TARGET and fails the script.
# Runs on the stable toolchain (RUSTC_BOOTSTRAP=1), cargo-fuzz installed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"

target="${1:?usage: scripts/fuzz.sh TARGET|all SECONDS [JOBS]}"
seconds="${2:?usage: scripts/fuzz.sh TARGET|all SECONDS [JOBS]}"
jobs="${3:-1}"
export RUSTC_BOOTSTRAP=1

# Seed directories (test vectors) per target.
seeds() {
    case "$1" in
    scep_*) echo "../testvectors/scep" ;;
    est_*) echo "../testvectors/est" ;;
    exchange_*) echo "../testvectors/exchange" ;;
    rspf_state) echo "../testvectors/rspf-state" ;;
    rspf_*) echo "../testvectors/rspf" ;;
    agent_profile) echo "../testvectors/agent" ;;
    pkix_*) echo "../testvectors/pkix" ;;
    *) echo "" ;;
    esac
}

if [ "$target" = all ]; then
    mapfile -t targets < <(cargo fuzz list)
else
    targets=("$target")
fi

[ -f RUNS.md ] || printf '# Fuzzing runs\n\n| date | target | seconds | executions | corpus files | outcome |\n|---|---|---|---|---|---|\n' >RUNS.md

failed=0
for t in "${targets[@]}"; do
    corpus="corpus/$t"
    mkdir -p "$corpus" "artifacts/$t"
    seed="$(seeds "$t")"
    log="$(mktemp)"
    echo "== $t: $seconds s"
    set +e
    # One job runs in this process (its statistics in $log); more run as
    # libFuzzer jobs, which write fuzz-N.log in the working directory — so
    # two such campaigns must not share a checkout.
    parallel=()
    [ "$jobs" -gt 1 ] && parallel=(-jobs="$jobs" -workers="$jobs")
    # shellcheck disable=SC2086
    cargo fuzz run -O "$t" "$corpus" $seed -- -max_total_time="$seconds" "${parallel[@]}" \
        -print_final_stats=1 >"$log" 2>&1
    status=$?
    set -e
    runs="$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | awk '{s+=$1} END {print s+0}')"
    if [ "$status" -ne 0 ]; then
        tail -40 "$log"
        outcome="FAILED (exit $status; see fuzz/artifacts/$t)"
        failed=1
    else
        outcome="no finding"
        cargo fuzz cmin -O "$t" "$corpus" >/dev/null 2>&1 || echo "warning: cmin failed for $t"
    fi
    files="$(find "$corpus" -type f | wc -l)"
    echo "   $runs executions, $files corpus files: $outcome"
    printf '| %s | %s | %s | %s | %s | %s |\n' "$(date -u +%Y-%m-%d)" "$t" "$seconds" "$runs" "$files" "$outcome" >>RUNS.md
    rm -f "$log"
done
exit "$failed"
