#!/usr/bin/env bash
# Regenerate the certs-only vectors of testvectors/pkix with the OpenSSL
# command line (no code of ours involved). Certificates and the CA key come
# from ../est and ../scep; the CRL's dates are those of the run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tv=$(dirname "$here")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
openssl version

# End-entity first, then its issuer (EST /simpleenroll with a chain).
openssl x509 -inform DER -in "$tv/est/openssl-ee.der" -out ee.pem
cat ee.pem "$tv/est/openssl-ca.pem" > ee-ca.pem
openssl crl2pkcs7 -nocrl -certfile ee-ca.pem -outform DER -out "$here/openssl-certs-only-ee-ca.der"

# Three certificates in an order that is not a chain: CA, then a
# self-signed signer, then the RA the CA issued; decoders keep it.
cat "$tv/scep/openssl-ca.pem" "$tv/scep/openssl-signer.pem" "$tv/scep/openssl-ra.pem" > ca-signer-ra.pem
openssl crl2pkcs7 -nocrl -certfile ca-signer-ra.pem -outform DER -out "$here/openssl-certs-only-ca-signer-ra.der"

# A CRL from the SCEP test CA revoking its RA certificate, and a certs-only
# with RA, CA and that CRL (SCEP GetCRL / CertRep with a CRL).
mkdir -p ca/newcerts
: > ca/index.txt
echo 1000 > ca/crlnumber
cat > ca.cnf <<CNF
[ ca ]
default_ca = test
[ test ]
dir = ./ca
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
crlnumber = \$dir/crlnumber
certificate = $tv/scep/openssl-ca.pem
private_key = $tv/scep/openssl-ca.key.pem
default_md = sha256
default_crl_days = 3650
policy = any
[ any ]
commonName = supplied
CNF
openssl ca -config ca.cnf -revoke "$tv/scep/openssl-ra.pem" -crl_reason keyCompromise
openssl ca -config ca.cnf -gencrl -out crl.pem
openssl crl -in crl.pem -outform DER -out "$here/openssl-ca.crl.der"
cat "$tv/scep/openssl-ra.pem" "$tv/scep/openssl-ca.pem" > ra-ca.pem
openssl crl2pkcs7 -in crl.pem -certfile ra-ca.pem -outform DER -out "$here/openssl-certs-only-ra-ca-crl.der"
