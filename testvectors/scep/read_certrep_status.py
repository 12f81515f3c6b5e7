#!/usr/bin/env python3
"""Print the pkiStatus and failInfo of a SCEP CertRep (RFC 8894 §3.3.2), read
with asn1crypto, independently of enrolkit:

  read_certrep_status.py reply.der   ->   pkiStatus=0  |  pkiStatus=2 failInfo=2

Used by the sscep-style renewal interop test (bins/mef/tests/sscep_renewal.rs).
"""
import sys

from asn1crypto import cms, core

import scep_asn1 as s


def main():
    ci = cms.ContentInfo.load(open(sys.argv[1], "rb").read())
    si = ci["content"]["signer_infos"][0]

    def text(oid):
        v = s.get_attr(si, oid)
        return None if v is None else core.PrintableString.load(v.dump()).native

    out = "pkiStatus=%s" % text(s.OID_PKI_STATUS)
    fail = text(s.OID_FAIL_INFO)
    if fail is not None:
        out += " failInfo=%s" % fail
    print(out)


if __name__ == "__main__":
    main()
