#!/usr/bin/env bash
# SCEP load comparison, one session, same machine: `mef serve` and micromdm's
# `scepserver` (Debian package `scep`), both with an RSA-2048 CA and a static
# challenge, each driven by `enrol scep bench` with the same concurrency and
# number of enrolments (pre-generated RSA-2048 keys; every PKCSReq built before
# the clock starts, every CertRep opened and checked after it stops). Prints
# both results and the throughput ratio. Usage: scripts/bench-scep.sh [CLIENTS] [TOTAL]
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-8}
total=${2:-400}
source scripts/bench-lib.sh

echo "peer: micromdm scep $(dpkg-query -W -f='${Version}' scep); $(nproc) cores; clients=$clients total=$total"

$bin/mef init --dir "$work/mef" --ca-key rsa2048 >/dev/null
# The benchmark host is a load generator, not an attacker: no per-address caps for it.
sed -i 's/^exempt_addresses = \[\]$/exempt_addresses = ["127.0.0.1"]/' "$work/mef/mef.toml"
sed -i 's/^one_time_challenges = true$/one_time_challenges = true\nstatic_challenge = "bench-secret"/' "$work/mef/mef.toml"
chmod 600 "$work/mef/mef.toml"  # it holds a secret now: mef refuses it readable by others
mport=$(port)
RUST_LOG=warn $bin/mef -c "$work/mef/mef.toml" serve --listen "127.0.0.1:$mport" --est-listen 127.0.0.1:0 --est-listen-openssl 127.0.0.1:0 --admin-listen 127.0.0.1:0 >/dev/null 2>&1 &
pids+=($!)

scepserver ca -init -depot "$work/depot" -keySize 2048 >/dev/null
sport=$(port)
scepserver -depot "$work/depot" -port "$sport" -challenge bench-secret >/dev/null 2>&1 &
pids+=($!)
wait_port "$mport"; wait_port "$sport"

ours=$(ENROL_CHALLENGE=bench-secret $bin/enrol scep bench --url "http://127.0.0.1:$mport/scep" --clients "$clients" --total "$total" --prefix mef)
theirs=$(ENROL_CHALLENGE=bench-secret $bin/enrol scep bench --url "http://127.0.0.1:$sport/scep" --clients "$clients" --total "$total" --prefix mdm)
echo "mef:        $ours"
echo "scepserver: $theirs"
t1=$(sed -n 's/.*throughput=\([0-9.]*\).*/\1/p' <<<"$ours")
t2=$(sed -n 's/.*throughput=\([0-9.]*\).*/\1/p' <<<"$theirs")
python3 -c "print(f'throughput ratio mef/scepserver = {$t1/$t2:.2f}x')"
