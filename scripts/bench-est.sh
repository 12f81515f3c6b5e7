#!/usr/bin/env bash
# EST load benchmark, one session, same machine: CLIENTS concurrent clients do
# TOTAL `/simpleenroll` requests over TLS authenticated by a client
# certificate (one full handshake per enrolment, pre-generated P-256 keys),
# driven by `enrol est bench`, against
#   - mef's rustls listener and mef's OpenSSL listener, and
#   - nginx configured with the same server certificate, the same client
#     certificate verification and a fixed certs-only answer: the TLS + HTTP
#     ceiling of an EST server that does no work (no EST server is packaged
#     by Debian to compare against).
# Prints each result and mef's throughput as a share of nginx's.
# Needs nginx (apt-get install -y nginx). Usage: scripts/bench-est.sh [CLIENTS] [TOTAL]
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-8}
total=${2:-400}
source scripts/bench-lib.sh

echo "peer: $(nginx -v 2>&1); $(openssl version); $(nproc) cores; clients=$clients total=$total"

st=$work/mef
$bin/mef init --dir "$st" >/dev/null
# The benchmark host is a load generator, not an attacker: no per-address caps for it.
sed -i 's/^exempt_addresses = \[\]$/exempt_addresses = ["127.0.0.1"]/' "$st/mef.toml"
RUST_LOG=warn $bin/mef -c "$st/mef.toml" serve --listen 127.0.0.1:0 \
  --est-listen 127.0.0.1:0 --est-listen-openssl 127.0.0.1:0 --admin-listen 127.0.0.1:0 >"$work/mef.out" 2>&1 &
pids+=($!)
for _ in $(seq 200); do [ "$(grep -c 'EST (' "$work/mef.out" || true)" -ge 2 ] && break; sleep 0.05; done
rustls=$(sed -n 's|^mef: EST (rustls) on \(https://[^/]*\)/.*|\1|p' "$work/mef.out")
ossl=$(sed -n 's|^mef: EST (openssl) on \(https://[^/]*\)/.*|\1|p' "$work/mef.out")

# A client certificate, obtained with a pre-shared key (RFC 7030 §3.3.3).
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/kpm.hex"
$bin/mef -c "$st/mef.toml" psk add bench-client --key-file "$work/kpm.hex" >/dev/null
sleep 2   # the running server reloads its handshake keys every second
$bin/enrol est --server "$ossl" --ta "$st/ca.pem" --psk-identity bench-client --psk-file "$work/kpm.hex" \
  enroll --subject CN=bench-client --key-out "$work/client.key" --cert-out "$work/client.pem" >/dev/null

# nginx: same server certificate and client verification, fixed answer.
answer=$(openssl crl2pkcs7 -nocrl -certfile "$work/client.pem" -outform DER | base64 -w0)
nport=$(port)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  server {
    listen 127.0.0.1:$nport ssl;
    ssl_certificate $st/est-server.pem;
    ssl_certificate_key $st/est-server.key.pem;
    ssl_client_certificate $st/ca.pem;
    ssl_verify_client on;
    ssl_protocols TLSv1.2 TLSv1.3;
    location = /.well-known/est/csrattrs { return 204; }
    location = /.well-known/est/simpleenroll {
      default_type "application/pkcs7-mime; smime-type=certs-only";
      add_header Content-Transfer-Encoding base64;
      return 200 "$answer";
    }
  }
}
CONF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
pids+=($!)
wait_port "$nport"

# A client certificate obtains only its own names from mef: every enrolment is for CN=bench-client.
bench() { $bin/enrol est --server "$1" --ta "$st/ca.pem" --cert "$work/client.pem" --key "$work/client.key" \
  bench --clients "$clients" --total "$total" --subject CN=bench-client; }
a=$(bench "$rustls" rustls)
b=$(bench "$ossl" openssl)
c=$(bench "https://127.0.0.1:$nport" nginx)
echo "mef (rustls):  $a"
echo "mef (openssl): $b"
echo "nginx ceiling: $c"
t() { sed -n 's/.*throughput=\([0-9.]*\).*/\1/p' <<<"$1"; }
python3 -c "print(f'mef/nginx throughput: rustls {$(t "$a")/$(t "$c"):.2f}x, openssl {$(t "$b")/$(t "$c"):.2f}x')"
