#!/usr/bin/env bash
# Regenerate the SCEP test-vector corpus in this directory from scratch.
#
# Needs: Debian packages `scep` (micromdm scepserver/scepclient 2.1.0) and
# `openssl`; python3 with asn1crypto and cryptography
# (pip install asn1crypto cryptography). Uses only 127.0.0.1.
#
# Everything is built in a fresh temp dir; the old vector files here
# (micromdm-*, openssl-*, python-*, MANIFEST.toml) are replaced only once the
# whole run has succeeded. Every process started is killed on exit.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-python3}"
CHALLENGE="scep-test-challenge"
WRONG_CHALLENGE="not-the-challenge"

command -v scepserver >/dev/null || { echo "scepserver missing: apt-get install scep" >&2; exit 1; }
command -v scepclient >/dev/null || { echo "scepclient missing: apt-get install scep" >&2; exit 1; }
command -v openssl >/dev/null || { echo "openssl missing" >&2; exit 1; }
command -v certmonger >/dev/null || { echo "certmonger missing: apt-get install certmonger" >&2; exit 1; }
command -v dbus-run-session >/dev/null || { echo "dbus-run-session missing: apt-get install dbus-daemon" >&2; exit 1; }
"$PY" -c 'import asn1crypto, cryptography' 2>/dev/null || {
  echo "python3 needs asn1crypto and cryptography: pip install asn1crypto cryptography" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/scep-vectors.XXXXXX")"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

OUT="$WORK/out"          # finished vector files
mkdir -p "$OUT"
cd "$WORK"
PROV="$WORK/provenance.jsonl"
: > "$PROV"

log() { printf '== %s\n' "$*" >&2; }

# rec FILE KIND TOOL COMMAND [key=value ...]   -> one JSON line in $PROV
rec() { "$PY" -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "$@" >> "$PROV"; }

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() {  # wait_port PORT SECONDS
  "$PY" - "$1" "$2" <<'EOF'
import socket, sys, time
port, limit = int(sys.argv[1]), float(sys.argv[2])
end = time.time() + limit
while time.time() < end:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit("port %d not listening after %ss" % (port, limit))
EOF
}

stop_pid() {  # stop_pid PID
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local keep=() p
  for p in "${PIDS[@]:-}"; do [ "$p" != "$1" ] && keep+=("$p"); done
  PIDS=("${keep[@]:-}")
}

SERVER_PID=""
start_server() {  # start_server NAME extra-args...   (sets SERVER_PORT)
  local name="$1"; shift
  SERVER_PORT="$(free_port)"
  scepserver -depot depot -port "$SERVER_PORT" -challenge "$CHALLENGE" -debug "$@" \
    > "server-$name.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  wait_port "$SERVER_PORT" 15
  log "scepserver ($name) on 127.0.0.1:$SERVER_PORT"
}

PROXY_PID=""
start_proxy() {  # start_proxy CAPDIR extra-args...   (sets PROXY_PORT)
  local cap="$1"; shift
  rm -rf "$cap" "$cap.port"
  "$PY" "$HERE/capture_proxy.py" --upstream "http://127.0.0.1:$SERVER_PORT" \
    --outdir "$cap" --port-file "$cap.port" --max-seconds 120 "$@" 2> "$cap.log" &
  PROXY_PID=$!
  PIDS+=("$PROXY_PID")
  local i
  for i in $(seq 100); do [ -s "$cap.port" ] && break; sleep 0.1; done
  [ -s "$cap.port" ] || { echo "proxy did not start" >&2; cat "$cap.log" >&2; exit 1; }
  PROXY_PORT="$(cat "$cap.port")"
}

# run_client DIR CN CHALLENGE   -> runs scepclient through the proxy; returns its rc
run_client() {
  local dir="$1" cn="$2" chal="$3" rc=0
  mkdir -p "$dir"
  CLIENT_CMD="scepclient -server-url http://127.0.0.1:PROXYPORT/scep -challenge $chal -private-key $dir/client.key -certificate $dir/client.pem -cn $cn -debug"
  timeout 60 scepclient -server-url "http://127.0.0.1:$PROXY_PORT/scep" -challenge "$chal" \
    -private-key "$dir/client.key" -certificate "$dir/client.pem" -cn "$cn" -debug \
    > "$dir.client.log" 2>&1 || rc=$?
  return $rc
}

# the one PKIOperation exchange of a capture dir
pkiop() { ls "$1"/*-PKIOperation-*."$2" | head -n1; }

# to_pkcs8 IN OUT : unencrypted PKCS#8 PEM
to_pkcs8() { openssl pkey -in "$1" -passin pass: -out "$2"; }

###########################################################################
log "micromdm: CA depot"
scepserver ca -init -depot depot -keySize 2048 >/dev/null
# scepserver stores the CA key PEM-encrypted (DES-EDE3-CBC) with the empty
# password; the vector is the same key, unencrypted PKCS#8.
to_pkcs8 depot/ca.key "$OUT/micromdm-ca.key.pem"
cp depot/ca.pem "$OUT/micromdm-ca.pem"
rec micromdm-ca.key.pem key "scepserver ca (micromdm scep 2.1.0)" \
  "scepserver ca -init -depot depot -keySize 2048; openssl pkey -in depot/ca.key -passin pass: -out micromdm-ca.key.pem" \
  "opens=certmonger-pkcsreq.der,micromdm-pkcsreq-caps-default.der,micromdm-pkcsreq-caps-noaes.der,micromdm-pkcsreq-badchallenge.der,micromdm-pkcsreq-get-base64url.der,micromdm-renewal-req.der,micromdm-renewal-refused-req.der" \
  "note=depot/ca.key as written by scepserver is 'BEGIN RSA PRIVATE KEY' encrypted with DES-EDE3-CBC under the empty password; this file is the same key as unencrypted PKCS#8"
rec micromdm-ca.pem cert "scepserver ca (micromdm scep 2.1.0)" \
  "scepserver ca -init -depot depot -keySize 2048  (depot/ca.pem)" \
  "note=self-signed CA; micromdm uses it as CA, CertRep signer and PKCSReq decryption (recipient) certificate"

###########################################################################
start_server main

# --- 1. default caps (server advertises AES, DES3, SCEPStandard, POST) ----
log "micromdm: PKCSReq, server's caps unmodified"
start_proxy cap-default
run_client cl-default dev-caps-default "$CHALLENGE"
stop_pid "$PROXY_PID"
cp cap-default/002-GetCACaps-GET.resp.bin "$OUT/micromdm-getcacaps.txt"
cp cap-default/001-GetCACert-GET.resp.bin "$OUT/micromdm-getcacert.der"
cp "$(pkiop cap-default req.bin)" "$OUT/micromdm-pkcsreq-caps-default.der"
cp "$(pkiop cap-default resp.bin)" "$OUT/micromdm-certrep-success-caps-default.der"
to_pkcs8 cl-default/client.key "$OUT/micromdm-client-caps-default.key.pem"
cp cl-default/client.pem "$OUT/micromdm-client-caps-default.pem"
PROXYCMD="python3 capture_proxy.py --upstream http://127.0.0.1:SERVERPORT --outdir cap-default"
SERVERCMD="scepserver -depot depot -port SERVERPORT -challenge $CHALLENGE -debug"
rec micromdm-getcacaps.txt caps "scepserver (micromdm scep 2.1.0)" "$SERVERCMD; GET /scep?operation=GetCACaps (sent by scepclient, captured by: $PROXYCMD)" \
  "capture=cap-default/002"
rec micromdm-getcacert.der cert "scepserver (micromdm scep 2.1.0)" "$SERVERCMD; GET /scep?operation=GetCACert (sent by scepclient, captured by: $PROXYCMD)" \
  "capture=cap-default/001" "note=single DER certificate (not a PKCS#7), same bytes as micromdm-ca.pem"
rec micromdm-pkcsreq-caps-default.der pkimessage "scepclient (micromdm scep 2.1.0)" "$CLIENT_CMD  (with $SERVERCMD behind $PROXYCMD)" \
  "capture=cap-default/003" "decrypt_key=micromdm-ca.key.pem" "decrypt_cert=micromdm-ca.pem" \
  "note=the server's GetCACaps (unmodified) offered AES; scepclient 2.1.0 nevertheless encrypted with DES-CBC (it does not look at caps for the cipher)"
rec micromdm-certrep-success-caps-default.der pkimessage "scepserver (micromdm scep 2.1.0)" "reply to micromdm-pkcsreq-caps-default.der ($SERVERCMD)" \
  "capture=cap-default/003" "decrypt_key=micromdm-client-caps-default.key.pem" "decrypt_cert=<signer certificate embedded in micromdm-pkcsreq-caps-default.der>" \
  "request=micromdm-pkcsreq-caps-default.der" "verify_cert=micromdm-ca.pem"
rec micromdm-client-caps-default.key.pem key "scepclient (micromdm scep 2.1.0)" "$CLIENT_CMD  (key generated by scepclient, converted: openssl pkey -in client.key -out micromdm-client-caps-default.key.pem)" \
  "opens=micromdm-certrep-success-caps-default.der" "note=also the key of the self-signed 'SCEP SIGNER' cert embedded in micromdm-pkcsreq-caps-default.der"
rec micromdm-client-caps-default.pem cert "scepclient (micromdm scep 2.1.0)" "$CLIENT_CMD  (the issued certificate as written by scepclient)"

# --- 2. caps rewritten: AES and SCEPStandard removed -----------------------
log "micromdm: PKCSReq, caps rewritten without AES/SCEPStandard"
start_proxy cap-noaes --caps-remove AES,SCEPStandard
run_client cl-noaes dev-caps-noaes "$CHALLENGE"
stop_pid "$PROXY_PID"
cp cap-noaes/002-GetCACaps-GET.resp.bin "$OUT/micromdm-getcacaps-rewritten-noaes.txt"
cp "$(pkiop cap-noaes req.bin)" "$OUT/micromdm-pkcsreq-caps-noaes.der"
cp "$(pkiop cap-noaes resp.bin)" "$OUT/micromdm-certrep-success-caps-noaes.der"
to_pkcs8 cl-noaes/client.key "$OUT/micromdm-client-caps-noaes.key.pem"
PROXYCMD2="python3 capture_proxy.py --upstream http://127.0.0.1:SERVERPORT --outdir cap-noaes --caps-remove AES,SCEPStandard"
rec micromdm-getcacaps-rewritten-noaes.txt caps "capture_proxy.py (rewrite of scepserver 2.1.0 GetCACaps)" "$PROXYCMD2" \
  "capture=cap-noaes/002" "note=what scepclient was shown: the server's caps minus AES and SCEPStandard"
rec micromdm-pkcsreq-caps-noaes.der pkimessage "scepclient (micromdm scep 2.1.0)" "$CLIENT_CMD  (with $SERVERCMD behind $PROXYCMD2)" \
  "capture=cap-noaes/003" "decrypt_key=micromdm-ca.key.pem" "decrypt_cert=micromdm-ca.pem" \
  "note=requested as the DES3 vector; scepclient ignored the caps and used DES-CBC (1.3.14.3.2.7), not des-ede3-cbc (1.2.840.113549.3.7)"
rec micromdm-certrep-success-caps-noaes.der pkimessage "scepserver (micromdm scep 2.1.0)" "reply to micromdm-pkcsreq-caps-noaes.der ($SERVERCMD)" \
  "capture=cap-noaes/003" "decrypt_key=micromdm-client-caps-noaes.key.pem" "decrypt_cert=<signer certificate embedded in micromdm-pkcsreq-caps-noaes.der>" \
  "request=micromdm-pkcsreq-caps-noaes.der" "verify_cert=micromdm-ca.pem"
rec micromdm-client-caps-noaes.key.pem key "scepclient (micromdm scep 2.1.0)" "$CLIENT_CMD  (key generated by scepclient, converted to PKCS#8 with openssl pkey)" \
  "opens=micromdm-certrep-success-caps-noaes.der"

# --- 3. wrong challenge -> FAILURE ----------------------------------------
log "micromdm: PKCSReq with wrong challenge"
start_proxy cap-bad
if run_client cl-bad dev-badchallenge "$WRONG_CHALLENGE"; then
  echo "scepclient unexpectedly succeeded with a wrong challenge" >&2; exit 1
fi
stop_pid "$PROXY_PID"
cp "$(pkiop cap-bad req.bin)" "$OUT/micromdm-pkcsreq-badchallenge.der"
cp "$(pkiop cap-bad resp.bin)" "$OUT/micromdm-certrep-failure-badrequest.der"
rec micromdm-pkcsreq-badchallenge.der pkimessage "scepclient (micromdm scep 2.1.0)" "${CLIENT_CMD}  (challenge '$WRONG_CHALLENGE', server expects '$CHALLENGE')" \
  "capture=cap-bad/003" "decrypt_key=micromdm-ca.key.pem" "decrypt_cert=micromdm-ca.pem"
rec micromdm-certrep-failure-badrequest.der pkimessage "scepserver (micromdm scep 2.1.0)" "reply to micromdm-pkcsreq-badchallenge.der ($SERVERCMD); server log: failed to sign CSR err=\"invalid challenge\"" \
  "capture=cap-bad/003" "request=micromdm-pkcsreq-badchallenge.der" "verify_cert=micromdm-ca.pem"

# --- 4. GET PKIOperation (caps without POSTPKIOperation / SCEPStandard) ----
log "micromdm: GET PKIOperation"
start_proxy cap-get --caps-remove POSTPKIOperation,SCEPStandard
if run_client cl-get dev-get "$CHALLENGE"; then
  echo "note: GET PKIOperation succeeded (expected micromdm 2.1.0 to reject base64url)" >&2
fi
stop_pid "$PROXY_PID"
GETREQ="$(pkiop cap-get req.bin)"
cp "$GETREQ" "$OUT/micromdm-pkcsreq-get-base64url.der"
cp "${GETREQ%.req.bin}.target.txt" "$OUT/micromdm-pkcsreq-get-base64url.target.txt"
cp "${GETREQ%.req.bin}.resp.bin" "$OUT/micromdm-pkcsreq-get-base64url.response.txt"
PROXYCMD3="python3 capture_proxy.py --upstream http://127.0.0.1:SERVERPORT --outdir cap-get --caps-remove POSTPKIOperation,SCEPStandard"
rec micromdm-pkcsreq-get-base64url.der pkimessage "scepclient (micromdm scep 2.1.0)" "$CLIENT_CMD  (with $SERVERCMD behind $PROXYCMD3)" \
  "capture=cap-get/003" "decrypt_key=micromdm-ca.key.pem" "decrypt_cert=micromdm-ca.pem" \
  "note=sent as GET ?message=...; the proxy decoded the message parameter (percent-decoding, then base64 with the URL-safe alphabet '-_', '=' padding sent as %3D)"
rec micromdm-pkcsreq-get-base64url.target.txt text "scepclient (micromdm scep 2.1.0)" "request target of the GET above, as received by the proxy" \
  "note=path and query exactly as received by the proxy (no scheme/host); the message parameter is base64url with %3D-escaped padding"
rec micromdm-pkcsreq-get-base64url.response.txt text "scepserver (micromdm scep 2.1.0)" "scepserver's HTTP response body to the GET above" \
  "note=scepserver 2.1.0 decodes the GET message with the standard base64 alphabet and answers HTTP 500 'illegal base64 data at input byte N'"

# --- 5. renewal refused (cert still far from expiry, -allowrenew 14) -------
log "micromdm: RenewalReq refused"
start_proxy cap-refused
if run_client cl-default dev-caps-default "$CHALLENGE"; then
  echo "scepclient renewal unexpectedly succeeded" >&2; exit 1
fi
stop_pid "$PROXY_PID"
cp "$(pkiop cap-refused req.bin)" "$OUT/micromdm-renewal-refused-req.der"
cp "$(pkiop cap-refused resp.bin)" "$OUT/micromdm-renewal-refused-certrep-failure.der"
rec micromdm-renewal-refused-req.der pkimessage "scepclient (micromdm scep 2.1.0)" "$CLIENT_CMD with the -private-key/-certificate of the caps-default run, i.e. cl-default/client.key + cl-default/client.pem already present ($SERVERCMD, default -crtvalid 365 -allowrenew 14)" \
  "capture=cap-refused/003" "decrypt_key=micromdm-ca.key.pem" "decrypt_cert=micromdm-ca.pem" "signer_key=micromdm-client-caps-default.key.pem" "signer_cert_file=micromdm-client-caps-default.pem"
rec micromdm-renewal-refused-certrep-failure.der pkimessage "scepserver (micromdm scep 2.1.0)" "reply to micromdm-renewal-refused-req.der; server log: failed to sign CSR err=\"DN ... already exists\"" \
  "capture=cap-refused/003" "request=micromdm-renewal-refused-req.der" "verify_cert=micromdm-ca.pem"
stop_pid "$SERVER_PID"

# --- 6. renewal accepted: -crtvalid 1 -allowrenew 30 ----------------------
log "micromdm: enrol then renew with -crtvalid 1 -allowrenew 30"
start_server renew -crtvalid 1 -allowrenew 30
SERVERCMD_R="scepserver -depot depot -port SERVERPORT -challenge $CHALLENGE -debug -crtvalid 1 -allowrenew 30"
start_proxy cap-ren1
run_client cl-ren dev-renewal "$CHALLENGE"
stop_pid "$PROXY_PID"
cp cl-ren/client.pem "$OUT/micromdm-renewal-client-old.pem"
start_proxy cap-ren2
run_client cl-ren dev-renewal "$CHALLENGE"
stop_pid "$PROXY_PID"
stop_pid "$SERVER_PID"
cp "$(pkiop cap-ren2 req.bin)" "$OUT/micromdm-renewal-req.der"
cp "$(pkiop cap-ren2 resp.bin)" "$OUT/micromdm-renewal-certrep-success.der"
cp cl-ren/client.pem "$OUT/micromdm-renewal-client-new.pem"
to_pkcs8 cl-ren/client.key "$OUT/micromdm-renewal-client.key.pem"
cp depot/index.txt "$OUT/micromdm-depot-index.txt"
rec micromdm-renewal-client-old.pem cert "scepserver (micromdm scep 2.1.0)" "first enrolment: $CLIENT_CMD  (against $SERVERCMD_R)" \
  "note=certificate that signs micromdm-renewal-req.der"
rec micromdm-renewal-req.der pkimessage "scepclient (micromdm scep 2.1.0)" "second run of the same command, cl-ren/client.key and cl-ren/client.pem present: $CLIENT_CMD  (against $SERVERCMD_R)" \
  "capture=cap-ren2/003" "decrypt_key=micromdm-ca.key.pem" "decrypt_cert=micromdm-ca.pem" "signer_key=micromdm-renewal-client.key.pem" "signer_cert_file=micromdm-renewal-client-old.pem"
rec micromdm-renewal-certrep-success.der pkimessage "scepserver (micromdm scep 2.1.0)" "reply to micromdm-renewal-req.der ($SERVERCMD_R)" \
  "capture=cap-ren2/003" "request=micromdm-renewal-req.der" "verify_cert=micromdm-ca.pem" \
  "decrypt_key=micromdm-renewal-client.key.pem" "decrypt_cert=micromdm-renewal-client-old.pem"
rec micromdm-renewal-client-new.pem cert "scepserver (micromdm scep 2.1.0)" "certificate returned in micromdm-renewal-certrep-success.der (as written by scepclient)"
rec micromdm-renewal-client.key.pem key "scepclient (micromdm scep 2.1.0)" "key generated by scepclient on the first enrolment, reused for the renewal; openssl pkey to PKCS#8" \
  "opens=micromdm-renewal-certrep-success.der"
rec micromdm-depot-index.txt text "scepserver (micromdm scep 2.1.0)" "depot/index.txt after all runs" \
  "note=shows the renewed certificate's predecessor marked R (revoked) by scepserver on renewal"

###########################################################################
log "openssl: CA, RA, signer"
OSSL_VER="$(openssl version)"
cat > ca.ext <<'EOF'
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
cat > ra.ext <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out openssl-ca.key.pem 2>/dev/null
openssl req -x509 -new -key openssl-ca.key.pem -subj "/O=SCEP Test Vectors/CN=SCEP Test CA" \
  -days 3650 -sha256 -set_serial 1 -extensions v3_ca_x -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n[v3_ca_x]\n'; cat ca.ext) \
  -out openssl-ca.pem
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out openssl-ra.key.pem 2>/dev/null
openssl req -new -key openssl-ra.key.pem -subj "/O=SCEP Test Vectors/CN=SCEP Test RA" -out ra.csr
openssl x509 -req -in ra.csr -CA openssl-ca.pem -CAkey openssl-ca.key.pem -set_serial 2 \
  -days 3650 -sha256 -extfile ra.ext -out openssl-ra.pem 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout openssl-signer.key.pem \
  -subj "/O=SCEP Test Vectors/CN=SCEP Test Signer" -days 3650 -sha256 -out openssl-signer.pem 2>/dev/null
cp openssl-ca.key.pem openssl-ca.pem openssl-ra.key.pem openssl-ra.pem openssl-signer.key.pem openssl-signer.pem "$OUT/"
rec openssl-ca.key.pem key "$OSSL_VER" "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out openssl-ca.key.pem"
rec openssl-ca.pem cert "$OSSL_VER" "openssl req -x509 -new -key openssl-ca.key.pem -subj '/O=SCEP Test Vectors/CN=SCEP Test CA' -days 3650 -sha256 -set_serial 1 (extensions: basicConstraints=critical,CA:TRUE; keyUsage=critical,keyCertSign,cRLSign; subjectKeyIdentifier=hash)"
rec openssl-ra.key.pem key "$OSSL_VER" "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out openssl-ra.key.pem" \
  "opens=openssl-envelope-aes128.der,openssl-envelope-aes256.der,openssl-envelope-des3.der,openssl-envelope-aes128-ber.der,python-pkcsreq-ber.der(inner envelope)"
rec openssl-ra.pem cert "$OSSL_VER" "openssl req -new -key openssl-ra.key.pem -subj '/O=SCEP Test Vectors/CN=SCEP Test RA' -out ra.csr; openssl x509 -req -in ra.csr -CA openssl-ca.pem -CAkey openssl-ca.key.pem -set_serial 2 -days 3650 -sha256 -extfile ra.ext (basicConstraints=critical,CA:FALSE; keyUsage=critical,digitalSignature,keyEncipherment; subjectKeyIdentifier=hash; authorityKeyIdentifier=keyid)"
rec openssl-signer.key.pem key "$OSSL_VER" "openssl req -x509 -newkey rsa:2048 -nodes -keyout openssl-signer.key.pem ..." \
  "note=signing key of openssl-signed.der and python-pkcsreq-ber.der (opens nothing: signatures only)"
rec openssl-signer.pem cert "$OSSL_VER" "openssl req -x509 -newkey rsa:2048 -nodes -keyout openssl-signer.key.pem -subj '/O=SCEP Test Vectors/CN=SCEP Test Signer' -days 3650 -sha256 -out openssl-signer.pem"

log "openssl: GetCACert certs-only PKCS#7"
openssl crl2pkcs7 -nocrl -certfile openssl-ca.pem -certfile openssl-ra.pem -outform DER -out "$OUT/openssl-getcacert-ca-ra.p7b.der"
rec openssl-getcacert-ca-ra.p7b.der certsonly "$OSSL_VER" "openssl crl2pkcs7 -nocrl -certfile openssl-ca.pem -certfile openssl-ra.pem -outform DER -out openssl-getcacert-ca-ra.p7b.der"

log "openssl: CSR with challengePassword and SAN"
cat > csr.cnf <<EOF
[req]
prompt = no
distinguished_name = dn
attributes = attrs
req_extensions = ext
[dn]
CN = device-1
[attrs]
challengePassword = $CHALLENGE
[ext]
subjectAltName = DNS:device-1.example.test
EOF
openssl req -new -newkey rsa:2048 -nodes -keyout openssl-device-1.key.pem -config csr.cnf \
  -sha256 -outform DER -out openssl-csr-challenge.der 2>/dev/null
cp openssl-csr-challenge.der openssl-device-1.key.pem "$OUT/"
rec openssl-csr-challenge.der csr "$OSSL_VER" "openssl req -new -newkey rsa:2048 -nodes -keyout openssl-device-1.key.pem -config csr.cnf -sha256 -outform DER -out openssl-csr-challenge.der  (csr.cnf: prompt=no, CN=device-1, challengePassword=$CHALLENGE, req_extensions subjectAltName=DNS:device-1.example.test)"
rec openssl-device-1.key.pem key "$OSSL_VER" "(generated by the openssl req -newkey command of openssl-csr-challenge.der)" \
  "note=key of the CSR; opens nothing"

log "openssl: CMS envelopes of the CSR to the RA"
for alg in aes128 aes256 des3; do
  openssl cms -encrypt -binary -in openssl-csr-challenge.der -outform DER -"$alg" \
    -out "$OUT/openssl-envelope-$alg.der" openssl-ra.pem
  rec "openssl-envelope-$alg.der" envelope "$OSSL_VER" \
    "openssl cms -encrypt -binary -in openssl-csr-challenge.der -outform DER -$alg -out openssl-envelope-$alg.der openssl-ra.pem" \
    "decrypt_key=openssl-ra.key.pem" "decrypt_cert=openssl-ra.pem" "plaintext_file=openssl-csr-challenge.der"
done
openssl cms -encrypt -binary -stream -in openssl-csr-challenge.der -outform DER -aes128 \
  -out "$OUT/openssl-envelope-aes128-ber.der" openssl-ra.pem
openssl asn1parse -inform DER -in "$OUT/openssl-envelope-aes128-ber.der" | grep -q 'l=inf' \
  || { echo "openssl-envelope-aes128-ber.der has no indefinite lengths" >&2; exit 1; }
rec openssl-envelope-aes128-ber.der envelope "$OSSL_VER" \
  "openssl cms -encrypt -binary -stream -in openssl-csr-challenge.der -outform DER -aes128 -out openssl-envelope-aes128-ber.der openssl-ra.pem" \
  "decrypt_key=openssl-ra.key.pem" "decrypt_cert=openssl-ra.pem" "plaintext_file=openssl-csr-challenge.der"

log "openssl: signed data"
printf 'SCEP test vector payload\n' > "$OUT/openssl-signed-payload.txt"
openssl cms -sign -binary -nodetach -md sha256 -in "$OUT/openssl-signed-payload.txt" \
  -signer openssl-signer.pem -inkey openssl-signer.key.pem -outform DER -out "$OUT/openssl-signed.der"
rec openssl-signed-payload.txt text "generate.sh" "printf 'SCEP test vector payload\\n' > openssl-signed-payload.txt"
rec openssl-signed.der signed "$OSSL_VER" \
  "openssl cms -sign -binary -nodetach -md sha256 -in openssl-signed-payload.txt -signer openssl-signer.pem -inkey openssl-signer.key.pem -outform DER -out openssl-signed.der" \
  "verify_cert=openssl-signer.pem" "plaintext_file=openssl-signed-payload.txt"

###########################################################################
log "certmonger: PKCSReq built by the daemon, sent by scep-submit"
# certmonger talks to micromdm scepserver through the capture proxy, in a
# private D-Bus session with its state in the work dir. Only its request is
# kept: scepserver 2.1.0 cannot parse it (Go refuses the negative serial of
# certmonger's signer certificate), which is exactly why it is a vector.
start_server cm
start_proxy cap-certmonger
mkdir -p cm/req cm/cas cm/tmp
CM_VER="certmonger $(dpkg-query -W -f='${Version}' certmonger 2>/dev/null || echo unknown)"
CM_URL="http://127.0.0.1:$PROXY_PORT/scep"
CERTMONGER_REQUESTS_DIR="$WORK/cm/req" CERTMONGER_CAS_DIR="$WORK/cm/cas" CERTMONGER_TMPDIR="$WORK/cm/tmp" \
  CM_URL="$CM_URL" CM_DIR="$WORK/cm" CHAL="$CHALLENGE" CAP="$WORK/cap-certmonger" \
  timeout 90 dbus-run-session -- bash -c '
    certmonger -s -n -d 2 >"$CM_DIR/daemon.log" 2>&1 &
    cm=$!
    for _ in $(seq 100); do getcert list-cas -s >/dev/null 2>&1 && break; sleep 0.1; done
    getcert add-scep-ca -s -c vectors -u "$CM_URL"
    getcert request -s -c vectors -k "$CM_DIR/key.pem" -f "$CM_DIR/cert.pem" -N CN=certmonger-vector -L "$CHAL"
    for _ in $(seq 300); do ls "$CAP"/*-PKIOperation-*.req.bin >/dev/null 2>&1 && break; sleep 0.1; done
    kill $cm' > cm.client.log 2>&1 || true
stop_pid "$PROXY_PID"
ls cap-certmonger/*-PKIOperation-*.req.bin >/dev/null 2>&1 \
  || { echo "certmonger sent no PKIOperation" >&2; cat cm.client.log cm/daemon.log >&2; exit 1; }
cp "$(pkiop cap-certmonger req.bin)" "$OUT/certmonger-pkcsreq.der"
to_pkcs8 cm/key.pem "$OUT/certmonger.key.pem"
rec certmonger.key.pem key "$CM_VER" "getcert request -k key.pem ... (key generated by certmonger; openssl pkey -in key.pem -out certmonger.key.pem)" \
  "note=the key of the self-signed signer certificate in certmonger-pkcsreq.der; opens replies encrypted to it"
rec certmonger-pkcsreq.der pkimessage "$CM_VER (daemon + scep-submit)" \
  "certmonger -s -n; getcert add-scep-ca -s -c vectors -u http://127.0.0.1:PROXYPORT/scep; getcert request -s -c vectors -k key.pem -f cert.pem -N CN=certmonger-vector -L $CHALLENGE  (with scepserver -depot depot -port SERVERPORT -challenge $CHALLENGE behind capture_proxy.py)" \
  "decrypt_key=micromdm-ca.key.pem" "decrypt_cert=micromdm-ca.pem" \
  "note=the signer is certmonger's self-signed certificate, whose serial is 32 random bytes (33 octets encoded when the top bit is set), beyond RFC 5280's 20 octets: a responder must keep it to encrypt the reply to that certificate"

###########################################################################
log "python (asn1crypto): PENDING / FAILURE CertReps, BER PKCSReq"
"$PY" "$HERE/make_pending.py" --request "$OUT/micromdm-pkcsreq-caps-default.der" \
  --ca-cert "$OUT/micromdm-ca.pem" --ca-key "$OUT/micromdm-ca.key.pem" \
  --status pending --out "$OUT/python-certrep-pending.der"
FAILTEXT="no certificate could be identified for this request"
"$PY" "$HERE/make_pending.py" --request "$OUT/micromdm-pkcsreq-caps-default.der" \
  --ca-cert "$OUT/micromdm-ca.pem" --ca-key "$OUT/micromdm-ca.key.pem" \
  --status failure --fail-info 4 --fail-info-text "$FAILTEXT" \
  --out "$OUT/python-certrep-failure-badcertid.der"
"$PY" "$HERE/make_pkcsreq_ber.py" --envelope "$OUT/openssl-envelope-aes128-ber.der" \
  --csr openssl-csr-challenge.der --signer-cert openssl-signer.pem --signer-key openssl-signer.key.pem \
  --out "$OUT/python-pkcsreq-ber.der"
PYVER="asn1crypto $("$PY" -c 'import asn1crypto; print(asn1crypto.__version__)'), cryptography $("$PY" -c 'import cryptography; print(cryptography.__version__)'), Python $("$PY" -c 'import platform; print(platform.python_version())')"
rec python-certrep-pending.der pkimessage "make_pending.py ($PYVER)" \
  "python3 make_pending.py --request micromdm-pkcsreq-caps-default.der --ca-cert micromdm-ca.pem --ca-key micromdm-ca.key.pem --status pending --out python-certrep-pending.der" \
  "request=micromdm-pkcsreq-caps-default.der" "verify_cert=micromdm-ca.pem" \
  "note=eContent absent; messageDigest is SHA-256 of the empty string, so openssl cms -verify needs -content /dev/null"
rec python-certrep-failure-badcertid.der pkimessage "make_pending.py ($PYVER)" \
  "python3 make_pending.py --request micromdm-pkcsreq-caps-default.der --ca-cert micromdm-ca.pem --ca-key micromdm-ca.key.pem --status failure --fail-info 4 --fail-info-text '$FAILTEXT' --out python-certrep-failure-badcertid.der" \
  "request=micromdm-pkcsreq-caps-default.der" "verify_cert=micromdm-ca.pem" \
  "note=failInfoText attribute OID 1.3.6.1.5.5.7.24.1 (RFC 8894 id-scep-failInfoText = {id-scep 1}, id-scep = {id-pkix 24}), UTF8String"
rec python-pkcsreq-ber.der pkimessage "make_pkcsreq_ber.py ($PYVER)" \
  "python3 make_pkcsreq_ber.py --envelope openssl-envelope-aes128-ber.der --csr openssl-csr-challenge.der --signer-cert openssl-signer.pem --signer-key openssl-signer.key.pem --out python-pkcsreq-ber.der" \
  "decrypt_key=openssl-ra.key.pem" "decrypt_cert=openssl-ra.pem" "verify_cert=openssl-signer.pem" \
  "plaintext_file=openssl-csr-challenge.der" "econtent_file=openssl-envelope-aes128-ber.der"

###########################################################################
log "manifest"
"$PY" "$HERE/build_manifest.py" --dir "$OUT" --provenance "$PROV" --work "$WORK" \
  --out "$OUT/MANIFEST.toml"

# size guard
TOTAL="$(du -cb "$OUT"/* | tail -n1 | cut -f1)"
[ "$TOTAL" -lt 204800 ] || { echo "vector corpus too large: $TOTAL bytes" >&2; exit 1; }

log "installing into $HERE ($TOTAL bytes)"
rm -f "$HERE"/certmonger-* "$HERE"/micromdm-* "$HERE"/openssl-* "$HERE"/python-* "$HERE"/MANIFEST.toml
cp "$OUT"/* "$HERE"/
log "done"
