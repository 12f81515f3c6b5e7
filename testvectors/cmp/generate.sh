#!/usr/bin/env bash
# Regenerate the CMP vectors in this directory from OpenSSL's own CMP client
# and mock server (`openssl cmp`, OpenSSL 3.0), plus PBMAC1 messages computed
# by pbmac1.py (Python stdlib only: hashlib.pbkdf2_hmac, hmac).
#
# Every exchange runs a fresh mock server on a free 127.0.0.1 port chosen at
# run time, bounded by -max_msgs and `timeout`; the client saves both
# directions with -reqout/-rspout. Keys and certificates are made first
# with `openssl req`/`x509`. Nothing from the Rust project is used.
# Files are only replaced once the whole run succeeded.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$WORK"
OPENSSL="${OPENSSL:-openssl}"
SECRET=s3cret-ref-pass
SRV_SECRET=$SECRET

ext() { printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' > ee.ext; }
ext
ca() { # name subject keyalg-args...
  local n=$1 s=$2; shift 2
  $OPENSSL req -x509 -newkey "$@" -nodes -keyout "$n.key" -out "$n.crt" -subj "$s" -days 7300 \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -addext subjectKeyIdentifier=hash 2>/dev/null
}
ee() { # name subject issuer keyfile
  $OPENSSL req -new -key "$4" -out "$1.csr" -subj "$2" 2>/dev/null
  $OPENSSL x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -CAcreateserial -out "$1.crt" -days 7300 -extfile ee.ext 2>/dev/null
}
# The operator CA (issues enrolled certificates and the CMP server's certificate).
ca operator-root "/O=enrolkit test/CN=Operator Root CA" ec -pkeyopt ec_paramgen_curve:P-256
# A vendor CA (3GPP TS 33.310 §9: the base station's vendor certificate).
ca vendor-root "/O=enrolkit test vendor/CN=Vendor Root CA" rsa:2048
$OPENSSL genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out server.key 2>/dev/null
ee server "/O=enrolkit test/CN=CMP Server" operator-root server.key
$OPENSSL genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out vendor.key 2>/dev/null
ee vendor "/O=enrolkit test vendor/CN=bts-0001 vendor" vendor-root vendor.key
$OPENSSL genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out device.key
ee device "/O=enrolkit test/CN=bts-0001" operator-root device.key
$OPENSSL genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out device2.key
ee device2 "/O=enrolkit test/CN=bts-0001" operator-root device2.key
$OPENSSL req -new -key device.key -subj "/O=enrolkit test/CN=bts-0001" -outform DER -out device.p10.der

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# exchange NAME "server options" "client options" "request files" "response files"
exchange() {
  local name=$1 sopts=$2 copts=$3 reqs=$4 rsps=$5 port
  port=$(free_port)
  # shellcheck disable=SC2086
  timeout 60 $OPENSSL cmp -port "$port" -max_msgs 8 $sopts >"$name.server.log" 2>&1 &
  local pid=$!
  for _ in $(seq 50); do
    grep -q ACCEPT "$name.server.log" 2>/dev/null && break; sleep 0.1
  done
  # shellcheck disable=SC2086
  timeout 60 $OPENSSL cmp -server "127.0.0.1:$port" -msg_timeout 20 $copts -certout "$name.out.pem" -reqout "$reqs" -rspout "$rsps" \
    >"$name.client.log" 2>&1 || { echo "$name: client exit $?" >>"$name.client.log"; grep -v "CMP info" "$name.client.log" "$name.server.log" | head -20; }
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  echo "== $name"; tail -n 3 "$name.client.log"
}

SRV_MAC="-srv_ref server-ref -srv_secret pass:$SRV_SECRET"
SRV_SIG="-srv_cert server.crt -srv_key server.key"
CLI_MAC="-ref bts-0001-ref -secret pass:$SECRET -recipient /O=enrolkit/CN=CMP-Server"

# 1. ir, PasswordBasedMac (owf SHA-256, HMAC-SHA1: OpenSSL's defaults) both ways, explicit confirmation.
exchange mac-ir "$SRV_MAC -rsp_cert device.crt" \
  "-cmd ir $CLI_MAC -newkey device.key -subject /O=enrolkit/CN=bts-0001" \
  mac-ir.der,mac-certConf.der mac-ip.der,mac-pkiConf.der
# 2. ir, PasswordBasedMac with HMAC-SHA256 in the request.
exchange mac256-ir "$SRV_MAC -rsp_cert device.crt -grant_implicitconf" \
  "-cmd ir $CLI_MAC -mac hmacWithSHA256 -implicit_confirm -newkey device.key -subject /O=enrolkit/CN=bts-0001" \
  mac256-ir.der mac256-ip.der
# 2b. ir whose template has a validity (-days) and subjectAltName extension (-sans).
exchange mac-ir-days "$SRV_MAC -rsp_cert device.crt -grant_implicitconf" \
  "-cmd ir $CLI_MAC -implicit_confirm -days 30 -sans bts-0001.example.net -newkey device.key -subject /O=enrolkit/CN=bts-0001" \
  mac-ir-days.der mac-ip-days.der
# 3. ir signed with a vendor certificate (3GPP style), answers signed by the server, caPubs and extraCerts.
exchange sig-ir "$SRV_SIG -srv_trusted vendor-root.crt -rsp_cert device.crt -rsp_capubs operator-root.crt -rsp_extracerts operator-root.crt" \
  "-cmd ir -cert vendor.crt -key vendor.key -srvcert server.crt -newkey device.key -subject /O=enrolkit/CN=bts-0001" \
  sig-ir.der,sig-certConf.der sig-ip.der,sig-pkiConf.der
# 4. the same with implicit confirmation granted.
exchange sig-ir-implicit "$SRV_SIG -srv_trusted vendor-root.crt -rsp_cert device.crt -grant_implicitconf" \
  "-cmd ir -cert vendor.crt -key vendor.key -srvcert server.crt -implicit_confirm -newkey device.key -subject /O=enrolkit/CN=bts-0001" \
  sig-ir-implicit.der sig-ip-implicit.der
# 5. kur signed with the operator certificate. OpenSSL 3.0's mock answers a kur
#    only when its oldCertID names the -rsp_cert it returns, and the client
#    accepts only a certificate for its -newkey: so the "update" keeps the key.
exchange kur "$SRV_SIG -srv_trusted operator-root.crt -rsp_cert device.crt" \
  "-cmd kur -cert device.crt -key device.key -srvcert server.crt -newkey device.key" \
  kur.der,kur-certConf.der kup.der,kur-pkiConf.der
# 6. cr signed with the operator certificate.
exchange cr "$SRV_SIG -srv_trusted operator-root.crt -rsp_cert device.crt" \
  "-cmd cr -cert device.crt -key device.key -srvcert server.crt -newkey device.key" \
  cr.der,cr-certConf.der cp.der,cr-pkiConf.der
# 7. p10cr, MAC-protected.
exchange p10cr "$SRV_MAC -rsp_cert device.crt" \
  "-cmd p10cr $CLI_MAC -csr device.p10.der" \
  p10cr.der,p10cr-certConf.der p10cr-cp.der,p10cr-pkiConf.der
# 8. rr signed with the P-384 operator certificate (ecdsa-with-SHA384).
exchange rr "$SRV_SIG -srv_trusted operator-root.crt -rsp_cert device2.crt" \
  "-cmd rr -cert device2.crt -key device2.key -digest sha384 -srvcert server.crt -oldcert device2.crt -revreason 1" \
  rr.der rp.der
# 9. genm, MAC-protected.
exchange genm "$SRV_MAC" \
  "-cmd genm $CLI_MAC -infotype signKeyPairTypes" \
  genm.der genp.der
# 10. polling: the mock answers "waiting", the client polls.
exchange poll "$SRV_MAC -rsp_cert device.crt -poll_count 2 -check_after 1" \
  "-cmd ir $CLI_MAC -newkey device.key -subject /O=enrolkit/CN=bts-0001" \
  poll-ir.der,poll-pollReq.der,poll-pollReq2.der,poll-certConf.der poll-ip-waiting.der,poll-pollRep.der,poll-ip.der,poll-pkiConf.der
# 11. an error message (the mock told to refuse), signed by the server.
exchange error "$SRV_SIG -srv_trusted vendor-root.crt -rsp_cert device.crt -send_error" \
  "-cmd ir -cert vendor.crt -key vendor.key -srvcert server.crt -newkey device.key -subject /O=enrolkit/CN=bts-0001" \
  error-ir.der error.der

# PBMAC1 (RFC 9481 §6.1.1): OpenSSL 3.0 has none; recompute protection in Python.
python3 "$HERE/pbmac1.py" mac-ir.der pbmac1-ir.der "$SECRET"
python3 "$HERE/pbmac1.py" genm.der pbmac1-genm.der "$SECRET"

ls -1 ./*.der >/dev/null
OUT="$HERE"
mkdir -p "$OUT/pki"
cp ./*.der "$OUT/"
rm -f "$OUT/device.p10.der"
for f in operator-root vendor-root server vendor device device2; do cp "$f.crt" "$OUT/pki/$f.crt"; done
for f in server vendor device device2; do cp "$f.key" "$OUT/pki/$f.key"; done
cp device.p10.der "$OUT/pki/device.p10.der"
printf '%s\n' "$SECRET" > "$OUT/pki/secret.txt"
"$OPENSSL" version > "$OUT/pki/openssl-version.txt"
echo "done: $(ls "$OUT"/*.der | wc -l) messages"
