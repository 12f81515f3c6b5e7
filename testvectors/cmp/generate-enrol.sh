#!/usr/bin/env bash
# Capture `enrol cmp` talking to OpenSSL's mock CMP server (`openssl cmp
# -port`, OpenSSL 3.0) into testvectors/cmp/enrol/: enrol's requests and the
# mock's answers, both directions, as `enrol cmp --dump` writes them
# (NN-request-<body>.der, NN-answer.der).
#
#   ir/   ir (PasswordBasedMac, --mac pbm), ip, certConf, pkiConf
#   kur/  kur signed with the issued certificate, kup, certConf, pkiConf
#   rr/   rr signed with it, rp
#
# Keys and certificates are made with `openssl genpkey`/`req`/`x509` in a
# temporary directory (enrol's key first, then the certificate the mock
# answers with); the secret is secret.txt. Each mock runs on a free
# 127.0.0.1 port chosen at run time and is killed afterwards. Files here are
# replaced only once every exchange succeeded. Build enrol first
# (cargo build -p enrol); ENROL=path overrides where it is.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ENROL="${ENROL:-${CARGO_TARGET_DIR:-$HERE/../../target}/debug/enrol}"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$WORK"
SECRET=s3cret-ref-pass
printf '%s\n' "$SECRET" > secret.txt
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectKeyIdentifier=hash\n' > ee.ext
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -subj "/O=enrolkit test/CN=Operator Root CA" -days 7300 \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
ee() { # name subject key
  openssl req -new -key "$3" -subj "$2" -out "$1.csr" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 7300 -extfile ee.ext -out "$1.pem" 2>/dev/null
}
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out srv.key 2>/dev/null
ee srv "/O=enrolkit test/CN=CMP mock" srv.key
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out device.key 2>/dev/null
ee device "/O=enrolkit test/CN=bts-0001" device.key

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
start_mock() { # args...
  PORT=$(free_port)
  timeout 60 openssl cmp -port "$PORT" "$@" >mock.log 2>&1 &
  MOCK=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return 0; sleep 0.1; done
  echo "mock did not start"; cat mock.log; exit 1
}
stop_mock() { kill "$MOCK" 2>/dev/null || true; wait "$MOCK" 2>/dev/null || true; }

mkdir -p out/ir out/kur out/rr
start_mock -srv_ref server-ref -srv_secret "pass:$SECRET" -rsp_cert device.pem -rsp_capubs ca.pem
"$ENROL" cmp --url "http://127.0.0.1:$PORT/pkix/" --ref bts-0001-ref --secret-file secret.txt --mac pbm \
  --trusted ca.pem --dump out/ir ir --subject "O=enrolkit test,CN=bts-0001" --new-key device.key --cert-out ir.pem
stop_mock
start_mock -srv_cert srv.pem -srv_key srv.key -srv_trusted ca.pem -rsp_cert device.pem
"$ENROL" cmp --url "http://127.0.0.1:$PORT/pkix/" --cert device.pem --key device.key --trusted ca.pem \
  --server-cert srv.pem --dump out/kur kur --new-key device.key --cert-out kur.pem
"$ENROL" cmp --url "http://127.0.0.1:$PORT/pkix/" --cert device.pem --key device.key --trusted ca.pem \
  --server-cert srv.pem --dump out/rr rr --reason superseded
stop_mock

rm -rf "$HERE/enrol"
mkdir -p "$HERE/enrol"
cp -r out/ir out/kur out/rr "$HERE/enrol/"
cp secret.txt ca.pem srv.pem device.pem "$HERE/enrol/"
openssl version > "$HERE/enrol/openssl-version.txt"
echo "captured into $HERE/enrol"
