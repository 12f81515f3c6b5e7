#!/usr/bin/env bash
# The main job, end to end on 127.0.0.1: `mef` creates a CA (root + SCEP RA)
# with SQLite, provisions a one-time challenge and serves SCEP; `enrol` pins
# the CA fingerprint, generates a key and obtains a certificate; OpenSSL
# checks it. Everything lives in a temporary directory removed at the end
# (set KEEP=1 to keep it).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p mef -p enrol
bin=target/debug
work=$(mktemp -d)
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; [ -z "${KEEP:-}" ] && rm -rf "$work"; true; }
trap cleanup EXIT

$bin/mef init --dir "$work/mef"
# The challenge is bound to the names it may obtain (a credential obtains only its own names).
challenge=$($bin/mef -c "$work/mef/mef.toml" challenge add --label demo-device \
    --subject "CN=demo-device,O=enrolkit demo" --dns demo-device.example.net)
$bin/mef -c "$work/mef/mef.toml" serve --listen 127.0.0.1:0 --est-listen 127.0.0.1:0 --est-listen-openssl 127.0.0.1:0 --admin-listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.log" &
pid=$!
for _ in $(seq 100); do grep -q listening "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^mef: listening on //p' "$work/serve.out")
fingerprint=$(openssl x509 -in "$work/mef/ca.pem" -noout -fingerprint -sha256 | cut -d= -f2)
echo "mef serving $url"

ENROL_CHALLENGE=$challenge $bin/enrol scep enrol --url "$url" --ca-fingerprint "$fingerprint" \
    --subject "CN=demo-device,O=enrolkit demo" --dns demo-device.example.net \
    --key-out "$work/device.key" --cert-out "$work/device.pem" --chain-out "$work/ca-chain.pem"
openssl verify -CAfile "$work/ca-chain.pem" "$work/device.pem"
echo "server log:"; sed 's/^/  /' "$work/serve.log"
if [ -n "${KEEP:-}" ]; then echo "kept in $work"; fi
