#!/usr/bin/env python3
"""Wrap an existing (BER, indefinite-length) CMS EnvelopedData, byte for byte,
as the eContent of a SCEP PKCSReq pkiMessage signed with asn1crypto.

  make_pkcsreq_ber.py --envelope openssl-envelope-aes128-ber.der \
      --csr openssl-csr-challenge.der --signer-cert openssl-signer.pem \
      --signer-key openssl-signer.key.pem --out python-pkcsreq-ber.der

Signed attributes: contentType (id-data), messageDigest (SHA-256 of the
envelope bytes), messageType "19" (PrintableString), transactionID
(PrintableString: upper-case hex SHA-256 of the CSR's SubjectPublicKeyInfo,
as RFC 8894 section 3.2.1.1 suggests), senderNonce (16 random bytes).
The outer structure is DER; only the embedded envelope is BER.
"""
import argparse
import hashlib
import os

from asn1crypto import core, csr

import scep_asn1 as s


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--envelope", required=True)
    p.add_argument("--csr", required=True)
    p.add_argument("--signer-cert", required=True)
    p.add_argument("--signer-key", required=True)
    p.add_argument("--out", required=True)
    # 19 PKCSReq (default); 17 RenewalReq (RFC 8894 section 3.2.1.2).
    p.add_argument("--message-type", default="19", choices=["17", "19"])
    a = p.parse_args()

    envelope = open(a.envelope, "rb").read()
    req = csr.CertificationRequest.load(open(a.csr, "rb").read())
    spki = req["certification_request_info"]["subject_pk_info"].dump()
    txid = hashlib.sha256(spki).hexdigest().upper()

    attrs = [
        s.raw_attr(s.OID_MESSAGE_TYPE, core.PrintableString(a.message_type)),
        s.raw_attr(s.OID_TRANSACTION_ID, core.PrintableString(txid)),
        s.raw_attr(s.OID_SENDER_NONCE, core.OctetString(os.urandom(16))),
    ]
    ci = s.build_signed_data(econtent=envelope,
                             signer_cert=s.load_cert(a.signer_cert),
                             signer_key=s.load_key(a.signer_key), attrs=attrs)
    out = ci.dump()
    assert envelope in out, "envelope bytes must be embedded verbatim"
    with open(a.out, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
