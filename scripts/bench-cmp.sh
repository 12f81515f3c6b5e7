#!/usr/bin/env bash
# CMP beside SCEP on the same `mef` and the same CA (RSA-2048), one session,
# same machine, same load generator (`enrol … bench`, crates/client/src/bench.rs):
#   SCEP: PKCSReq → CertRep (static challenge; RSA-2048 keys, every PKCSReq
#         built before the clock starts, every CertRep checked after);
#   CMP:  ir → ip → certConf → pkiConf, the ir signed by a vendor certificate
#         (3GPP TS 33.310 §9, [authorisation.vendor]); P-256 keys and irs built
#         before the clock, the ip's signature verified and the certConf signed
#         inside it (the certConf needs the ip), signer and certificate checked
#         against the CA after.
# Prints both results and the throughput ratio CMP/SCEP.
# Usage: scripts/bench-cmp.sh [CLIENTS] [TOTAL]
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-8}
total=${2:-400}
source scripts/bench-lib.sh

echo "$(nproc) cores; clients=$clients total=$total"
$bin/mef init --dir "$work/mef" --ca-key rsa2048 >/dev/null
sed -i 's/^exempt_addresses = \[\]$/exempt_addresses = ["127.0.0.1"]/' "$work/mef/mef.toml"
sed -i 's/^one_time_challenges = true$/one_time_challenges = true\nstatic_challenge = "bench-secret"/' "$work/mef/mef.toml"
# A vendor CA.
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=Vendor Root CA/O=Vendor" \
  -keyout "$work/mef/vendor-ca.key" -out "$work/mef/vendor-ca.pem" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
# One base-station certificate per client, signed by it: mef bounds the
# transactions one credential holds open (4), as one base station never
# runs many at once.
devices=()
for i in $(seq 1 "$clients"); do
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/enb$i.key" 2>/dev/null
  openssl req -new -key "$work/enb$i.key" -subj "/CN=eNodeB/serialNumber=SN-$i/O=Vendor" -out "$work/enb$i.csr" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' > "$work/enb.ext"
  openssl x509 -req -in "$work/enb$i.csr" -CA "$work/mef/vendor-ca.pem" -CAkey "$work/mef/vendor-ca.key" \
    -CAcreateserial -days 30 -extfile "$work/enb.ext" -out "$work/enb$i.pem" 2>/dev/null
  [ "$i" -gt 1 ] && devices+=(--device "$work/enb$i.pem,$work/enb$i.key")
done
printf '\n[authorisation.vendor]\nanchors = ["vendor-ca.pem"]\nsubject_template = "CN={serialNumber},O=Operator"\n' >> "$work/mef/mef.toml"
chmod 600 "$work/mef/mef.toml"
mport=$(port)
RUST_LOG=warn $bin/mef -c "$work/mef/mef.toml" serve --listen "127.0.0.1:$mport" --est-listen 127.0.0.1:0 --est-listen-openssl 127.0.0.1:0 --admin-listen 127.0.0.1:0 >/dev/null 2>&1 &
pids+=($!)
wait_port "$mport"

fp=$(openssl x509 -in "$work/mef/ca.pem" -noout -fingerprint -sha256 | sed 's/.*=//')
scep=$(ENROL_CHALLENGE=bench-secret $bin/enrol scep bench --url "http://127.0.0.1:$mport/scep" --ca-fingerprint "$fp" --clients "$clients" --total "$total" --prefix scep)
cmp=$($bin/enrol cmp --url "http://127.0.0.1:$mport/.well-known/cmp" --cert "$work/enb1.pem" --key "$work/enb1.key" \
  --trusted "$work/mef/ca.pem" bench --clients "$clients" --total "$total" --subject CN=SN-1 "${devices[@]}")
echo "SCEP: $scep"
echo "CMP:  $cmp"
t1=$(sed -n 's/.*throughput=\([0-9.]*\).*/\1/p' <<<"$scep")
t2=$(sed -n 's/.*throughput=\([0-9.]*\).*/\1/p' <<<"$cmp")
python3 -c "print(f'throughput ratio CMP/SCEP = {$t2/$t1:.2f}x')"
