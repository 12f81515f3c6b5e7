#!/usr/bin/env bash
# One full oneM2M remote security provisioning on 127.0.0.1 (the README's
# walkthrough): `mef` as the MEF with one Enrolee bootstrapped by a
# pre-provisioned key (KpmId/Kpm) and an Enrolment Token; `enrol rspf enrol`
# as the Enrolee (Enrolment Exchange, certificate over EST, MAF and CSE
# keys); `enrol rspf fetch` as the MAF and as the CSE, each with a
# certificate from the targets' own CA (made by OpenSSL) that the MEF is
# configured to accept for them, fetching the key the Enrolee derived. A
# temporary directory, removed at the end (KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p mef -p enrol
bin=$PWD/target/debug
work=$(mktemp -d)
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; [ -z "${KEEP:-}" ] && rm -rf "$work"; true; }
trap cleanup EXIT
cd "$work"

# 0. The Enrolment Targets' CA and certificates (an operator's, not the MEF's).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout targets-ca.key \
    -subj "/CN=Targets CA" -days 30 -out targets-ca.pem \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign 2>/dev/null
for t in cse-b.example.net maf.example.net; do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $t.key \
        -subj "/CN=$t" -out $t.csr 2>/dev/null
    openssl x509 -req -in $t.csr -CA targets-ca.pem -CAkey targets-ca.key -CAcreateserial -days 30 \
        -extfile <(printf "subjectAltName=DNS:$t\nextendedKeyUsage=clientAuth\n") -out $t.pem 2>/dev/null
done

# 1. The MEF: a CA, the EST listeners, and [rspf] with one Enrolee and two targets.
$bin/mef init --dir mef --mef-fqdn mef.example.net >/dev/null
cp targets-ca.pem mef/
cat >>mef/mef.toml <<'TOML'

[[rspf.enrolee]]
name = "sensor-7"
[rspf.enrolee.bootstrap]
framework = "pre-provisioned-symmetric-key"
enrolment-target = "cse-b.example.net"
enrolee-id = "ae-sensor-7.example.net"
kpm-id = "kpm-sensor-7"
enrolment-expiry = 86400
token-required = true
[rspf.enrolee.grant]
registrar-cse = "cse-b.example.net"
direct-keys = [{ target = "cse-b.example.net", security-type = "SAEF" }]
[rspf.enrolee.grant.certificate]
security-types = ["SAEF"]
ekus = ["1.3.6.1.5.5.7.3.2"]
[rspf.enrolee.grant.maf]
fqdn = "maf.example.net"
credential = "symmetricKey"
security-types = ["SAEF", "ESPrim"]

[[rspf.target]]
id = "cse-b.example.net"
trust-anchor = "targets-ca.pem"
[[rspf.target]]
id = "maf.example.net"
trust-anchor = "targets-ca.pem"
TOML
$bin/mef -c mef/mef.toml psk add kpm-sensor-7 >kpm.hex          # Kpm, printed once
token=$($bin/mef -c mef/mef.toml rspf token add sensor-7)         # single use
$bin/mef -c mef/mef.toml serve --listen 127.0.0.1:0 --est-listen 127.0.0.1:0 \
    --est-listen-openssl 127.0.0.1:0 --admin-listen 127.0.0.1:0 >serve.out 2>serve.log &
pid=$!
for _ in $(seq 100); do grep -q "EST (openssl)" serve.out 2>/dev/null && break; sleep 0.1; done
mefurl=$(sed -n 's|^mef: EST (openssl) on \(https://[^/]*\)/.*|\1|p' serve.out)
echo "MEF on $mefurl"

# 2. The Enrolee: TLS-PSK with KpmId/Kpm, Ke by key export, the exchange, then what it instructs.
$bin/enrol rspf enrol --mef "$mefurl" --psk-identity kpm-sensor-7 --psk-file kpm.hex \
    --token "$token" --mef-fqdn mef.example.net --out sensor | tee enrol.out
keid=$(sed -n 's/^ke-id //p' enrol.out)
openssl x509 -in sensor/cert.pem -noout -subject -ext extendedKeyUsage

# 3. The Enrolment Targets fetch their keys by KeId over mutually authenticated TLS.
$bin/enrol rspf fetch --mef "$mefurl" --mef-ca mef/ca.pem --cert cse-b.example.net.pem \
    --key cse-b.example.net.key --ke-id "$keid" --suid 22 --from cse-b.example.net --out cse.key
$bin/enrol rspf fetch --mef "$mefurl" --mef-ca mef/ca.pem --cert maf.example.net.pem \
    --key maf.example.net.key --ke-id "$keid" --from maf.example.net --out maf.key --format xml

# 4. Both targets now hold the keys the Enrolee derived.
grep -A3 'target = "cse-b.example.net"' sensor/enrolment.toml | grep -q "key = \"$(cat cse.key)\"" &&
    echo "cse-b.example.net holds the Enrolee's PSK-SAEF key"
grep -A3 'target = "maf.example.net"' sensor/enrolment.toml | grep -q "key = \"$(cat maf.key)\"" &&
    echo "maf.example.net holds the Enrolee's Master Credential"
$bin/mef -c mef/mef.toml rspf list
if [ -n "${KEEP:-}" ]; then echo "kept in $work"; fi
true
