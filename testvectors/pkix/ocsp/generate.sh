#!/bin/sh
# OCSP requests made by OpenSSL's command line for enrolkit-pkix's request
# reader (crates/pkix/tests/ocsp_requests.rs) and the pkix_ocsp_request fuzz
# target. Issuer: micromdm scepserver's CA (../micromdm-ca.der).
set -eu
cd "$(dirname "$0")"
openssl version > VERSION
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
openssl x509 -inform DER -in ../micromdm-ca.der -out "$tmp/ca.pem"
# One serial, SHA-1 CertID, no nonce: the RFC 5019 form.
openssl ocsp -issuer "$tmp/ca.pem" -serial 0x0a1b2c -no_nonce -reqout one-sha1-no-nonce.der
# One serial with OpenSSL's default 16-octet nonce.
openssl ocsp -issuer "$tmp/ca.pem" -serial 0x0a1b2c -reqout one-sha1-nonce.der
# SHA-256 CertIDs, three serials, nonce.
openssl ocsp -sha256 -issuer "$tmp/ca.pem" -serial 1 -serial 2 -serial 3 -reqout three-sha256-nonce.der
# A signed request (requestorName and optionalSignature with a certificate).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=requestor \
    -keyout "$tmp/k.pem" -out "$tmp/c.pem" -days 1 2>/dev/null
openssl ocsp -issuer "$tmp/ca.pem" -serial 7 -signer "$tmp/c.pem" -signkey "$tmp/k.pem" -reqout signed.der
