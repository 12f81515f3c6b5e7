#!/usr/bin/env bash
# Legitimate SCEP enrolment throughput under hostile load, as a ratio to the
# idle throughput measured in the same run (goal >= 0.8). `mef serve` runs with
# its open-file limit at 1024 (soft and hard); `enrol scep bench` from
# 127.0.0.1 measures it idle, then again while scripts/attack.py holds idle,
# slow-body, half-handshake and garbage connections from 127.0.0.2 and up on
# all three listeners (ADDRESSES x CONNS per listener, reopened when closed).
# Usage: scripts/bench-attack.sh [CLIENTS] [TOTAL] [ADDRESSES] [CONNS]
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-8}
total=${2:-400}
addresses=${3:-8}
conns=${4:-60}
source scripts/bench-lib.sh

echo "$(nproc) cores; clients=$clients total=$total; attack: $addresses addresses x $conns connections x 3 listeners"
$bin/mef init --dir "$work/mef" --ca-key rsa2048 >/dev/null
# The benchmark host is a load generator, not an attacker: no per-address caps for it.
sed -i 's/^exempt_addresses = \[\]$/exempt_addresses = ["127.0.0.1"]/' "$work/mef/mef.toml"
sed -i 's/^one_time_challenges = true$/one_time_challenges = true\nstatic_challenge = "bench-secret"/' "$work/mef/mef.toml"
chmod 600 "$work/mef/mef.toml"
mport=$(port); eport=$(port); oport=$(port)
RUST_LOG=warn prlimit --nofile=1024:1024 -- $bin/mef -c "$work/mef/mef.toml" serve --listen "127.0.0.1:$mport" \
    --est-listen "127.0.0.1:$eport" --est-listen-openssl "127.0.0.1:$oport" --admin-listen 127.0.0.1:0 >/dev/null 2>"$work/serve.log" &
mef_pid=$!
pids+=($mef_pid)
wait_port "$mport"; wait_port "$eport"; wait_port "$oport"

fp=$(openssl x509 -in "$work/mef/ca.pem" -noout -fingerprint -sha256 | sed 's/.*=//')
# mef's CPU time so far, in seconds (utime + stime of /proc/PID/stat).
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$mef_pid/stat"; }
bench() { ENROL_CHALLENGE=bench-secret $bin/enrol scep bench --url "http://127.0.0.1:$mport/scep" --ca-fingerprint "$fp" --clients "$clients" --total "$total" --prefix "$1" | tail -1; }
c0=$(cpu)
idle=$(bench idle)
c1=$(cpu)
echo "idle:         $idle (mef CPU $(python3 -c "print(f'{$c1-$c0:.2f}')") s)"

# The attacker shares this machine's cores with mef and the load generator;
# at nice 19 it takes what they leave, as an attacker on another host would
# (its connections still reach mef as fast as the kernel accepts them).
nice -n 19 python3 scripts/attack.py "$addresses" "$conns" "$mport" "$eport" "$oport" >"$work/attack.log" 2>&1 &
pids+=($!)
sleep 3
c2=$(cpu)
attacked=$(bench attacked)
c3=$(cpu)
echo "under attack: $attacked (mef CPU $(python3 -c "print(f'{$c3-$c2:.2f}')") s)"
tail -1 "$work/attack.log"
echo "mef: $(ls /proc/$mef_pid/fd | wc -l) descriptors open, RSS $(awk '/VmRSS/ {print int($2/1024)}' /proc/$mef_pid/status) MiB"
t1=$(sed -n 's/.*throughput=\([0-9.]*\).*/\1/p' <<<"$idle")
t2=$(sed -n 's/.*throughput=\([0-9.]*\).*/\1/p' <<<"$attacked")
python3 -c "print(f'throughput under attack / idle = {$t2/$t1:.2f} (goal >= 0.8)')"
