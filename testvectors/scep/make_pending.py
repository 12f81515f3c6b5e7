#!/usr/bin/env python3
"""Build a content-less SCEP CertRep (PENDING, or FAILURE) answering a
captured PKCSReq, with asn1crypto + cryptography.

  make_pending.py --request micromdm-pkcsreq.der --ca-cert ca.pem \
      --ca-key ca.key.pem --status pending --out python-certrep-pending.der
  make_pending.py ... --status failure --fail-info 4 \
      --fail-info-text "no certificate matches" --out python-certrep-failure.der

The reply copies the request's transactionID and uses the request's
senderNonce as recipientNonce; senderNonce is 16 fresh random bytes.
encapContentInfo is id-data with eContent absent. Signed with SHA-256 /
sha256WithRSAEncryption, signer certificate included.
"""
import argparse
import os

from asn1crypto import cms, core

import scep_asn1 as s


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--request", required=True)
    p.add_argument("--ca-cert", required=True)
    p.add_argument("--ca-key", required=True)
    p.add_argument("--status", choices=["pending", "failure"], required=True)
    p.add_argument("--fail-info", default="4")
    p.add_argument("--fail-info-text")
    p.add_argument("--out", required=True)
    a = p.parse_args()

    req = cms.ContentInfo.load(open(a.request, "rb").read())
    si = req["content"]["signer_infos"][0]
    txid = s.get_attr(si, s.OID_TRANSACTION_ID).parse(core.PrintableString).native
    req_nonce = s.get_attr(si, s.OID_SENDER_NONCE).parse(core.OctetString).native

    attrs = [
        s.raw_attr(s.OID_MESSAGE_TYPE, core.PrintableString("3")),
        s.raw_attr(s.OID_PKI_STATUS, core.PrintableString("3" if a.status == "pending" else "2")),
        s.raw_attr(s.OID_TRANSACTION_ID, core.PrintableString(txid)),
        s.raw_attr(s.OID_SENDER_NONCE, core.OctetString(os.urandom(16))),
        s.raw_attr(s.OID_RECIPIENT_NONCE, core.OctetString(req_nonce)),
    ]
    if a.status == "failure":
        attrs.append(s.raw_attr(s.OID_FAIL_INFO, core.PrintableString(a.fail_info)))
        if a.fail_info_text:
            attrs.append(s.raw_attr(s.OID_FAIL_INFO_TEXT, core.UTF8String(a.fail_info_text)))

    ca_cert = s.load_cert(a.ca_cert)
    ci = s.build_signed_data(econtent=None, signer_cert=ca_cert,
                             signer_key=s.load_key(a.ca_key), attrs=attrs)
    with open(a.out, "wb") as f:
        f.write(ci.dump())


if __name__ == "__main__":
    main()
