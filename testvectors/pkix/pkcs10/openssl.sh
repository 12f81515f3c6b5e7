#!/bin/sh
# Regenerates the OpenSSL vectors of this directory (see README.md). The keys
# are made in a temporary directory and thrown away; only the requests stay.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/req.cnf" <<'CNF'
[req]
distinguished_name = dn
attributes = attrs
req_extensions = ext
prompt = no
string_mask = default
[dn]
CN = device-1.example
O = Example Org
[attrs]
challengePassword = p4ssw0rd-123
[ext]
subjectAltName = DNS:device-1.example,DNS:device-1.local,IP:192.0.2.10,IP:2001:db8::10
extendedKeyUsage = clientAuth,serverAuth
CNF
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/rsa.key"
openssl req -new -config "$tmp/req.cnf" -key "$tmp/rsa.key" -sha256 -outform DER -out "$here/openssl-rsa2048.der"
# P-256, a challengePassword that is not a PrintableString (string_mask utf8only: every string a UTF8String).
sed -e 's/^challengePassword = .*/challengePassword = s3cret enrolment code!/' \
    -e 's/^CN = .*/CN = sensor-7/' -e 's/^string_mask = .*/string_mask = utf8only/' \
    -e 's/^subjectAltName = .*/subjectAltName = DNS:sensor-7.example,IP:10.1.2.3/' \
    -e 's/^extendedKeyUsage = .*/extendedKeyUsage = clientAuth/' "$tmp/req.cnf" >"$tmp/p256.cnf"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/p256.key"
openssl req -new -config "$tmp/p256.cnf" -key "$tmp/p256.key" -sha256 -outform DER -out "$here/openssl-p256.der"
