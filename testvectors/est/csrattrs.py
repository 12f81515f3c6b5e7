#!/usr/bin/env python3
"""Build EST CSR-attributes vectors (RFC 7030 §4.5.2 / RFC 9908) with pyasn1.

The encoder is an independent ASN.1 library: pyasn1 with the ASN.1 modules
of pyasn1-alt-modules (rfc7030 CsrAttrs/AttrOrOID, rfc2985 PKCS#9 attribute
OIDs, rfc5280 extensions, rfc5480 algorithm OIDs, rfc9908 template types).
Nothing from the Rust project is used.

    python csrattrs.py --out DIR      write csrattrs-pyasn1-*.der into DIR
    python csrattrs.py --check DIR    only decode the files in DIR again

Every file written is decoded back with pyasn1 (open types resolved where
the modules know them), re-encoded, compared byte for byte with the file,
and printed; any difference is an error (exit status 1).
"""
import argparse
import os
import sys

import pyasn1
from pyasn1.codec.der.decoder import decode as der_decode
from pyasn1.codec.der.encoder import encode as der_encode
from pyasn1.type import char, univ

import pyasn1_alt_modules
from pyasn1_alt_modules import rfc2985, rfc5280, rfc5480, rfc7030

try:
    from pyasn1_alt_modules import rfc9908
except ImportError:  # older pyasn1-alt-modules: no RFC 9908 module
    sys.exit("pyasn1-alt-modules has no rfc9908 module (0.4.10 or later has one)")

# RFC 9908 Appendix A: id-aa-certificationRequestInfoTemplate = id-aa 61,
# id-aa-extensionReqTemplate = id-aa 62, id-aa = 1.2.840.113549.1.9.16.2.
# Cross-check the module's OIDs against the RFC's numbers.
assert str(rfc9908.id_aa_certificationRequestInfoTemplate) == "1.2.840.113549.1.9.16.2.61"
assert str(rfc9908.id_aa_extensionReqTemplate) == "1.2.840.113549.1.9.16.2.62"

CHALLENGE_PASSWORD = rfc2985.pkcs_9_at_challengePassword   # 1.2.840.113549.1.9.7
EXTENSION_REQUEST = rfc2985.pkcs_9_at_extensionRequest     # 1.2.840.113549.1.9.14


def oid_entry(oid):
    entry = rfc7030.AttrOrOID()
    entry["oid"] = oid
    return entry


def attr_entry(attr_type, *values_der):
    """AttrOrOID.attribute with each value given as its DER encoding."""
    entry = rfc7030.AttrOrOID()
    attr = entry["attribute"]          # rfc5652.Attribute: attrType, attrValues
    attr["attrType"] = attr_type
    for i, value in enumerate(values_der):
        attr["attrValues"][i] = univ.Any(value)
    return entry


def csrattrs(*entries):
    out = rfc7030.CsrAttrs()
    for i, entry in enumerate(entries):
        out[i] = entry
    return der_encode(out)


def eku_extension(*purposes):
    eku = rfc5280.ExtKeyUsageSyntax()
    for i, p in enumerate(purposes):
        eku[i] = p
    ext = rfc5280.Extension()
    ext["extnID"] = rfc5280.id_ce_extKeyUsage
    ext["extnValue"] = der_encode(eku)
    return ext


def build():
    vectors = {}

    # (a) the challengePassword OID alone
    vectors["challengepassword"] = csrattrs(oid_entry(CHALLENGE_PASSWORD))

    # (b) challengePassword + extensionRequest { extKeyUsage clientAuth, serverAuth }
    exts = rfc5280.Extensions()
    exts[0] = eku_extension(rfc5280.id_kp_clientAuth, rfc5280.id_kp_serverAuth)
    vectors["challengepassword-extreq-eku"] = csrattrs(
        oid_entry(CHALLENGE_PASSWORD),
        attr_entry(EXTENSION_REQUEST, der_encode(exts)))

    # (c) id-ecPublicKey attribute with secp256r1, and ecdsa-with-SHA256 OID
    vectors["ecpublickey-p256-ecdsa-sha256"] = csrattrs(
        attr_entry(rfc5480.id_ecPublicKey, der_encode(rfc5480.secp256r1)),
        oid_entry(rfc5480.ecdsa_with_SHA256))

    # (d) rsaEncryption attribute with INTEGER 3072 (key size)
    vectors["rsa3072"] = csrattrs(
        attr_entry(rfc5480.rsaEncryption, der_encode(univ.Integer(3072))))

    # (e) RFC 9908 certificationRequestInfoTemplate (id-aa 61)
    tmpl = rfc9908.CertificationRequestInfoTemplate()
    tmpl["version"] = 0
    rdns = tmpl["subject"]["rdnSequence"]
    cn = rfc9908.SingleAttributeTemplate()
    cn["type"] = rfc5280.id_at_commonName          # present, value to be filled in
    rdn = rfc9908.RelativeDistinguishedNameTemplate()
    rdn[0] = cn
    rdns[0] = rdn
    org_name = rfc5280.X520OrganizationName()
    org_name["utf8String"] = "Example Org"
    org = rfc9908.SingleAttributeTemplate()
    org["type"] = rfc5280.id_at_organizationName   # present with a required value
    org["value"] = univ.Any(der_encode(org_name))
    rdn = rfc9908.RelativeDistinguishedNameTemplate()
    rdn[0] = org
    rdns[1] = rdn
    spki = tmpl["subjectPKInfo"]                     # [0], no subjectPublicKey
    spki["algorithm"]["algorithm"] = rfc5480.id_ecPublicKey
    spki["algorithm"]["parameters"] = univ.Any(der_encode(rfc5480.secp256r1))
    ext_tmpl = rfc9908.ExtensionTemplate()
    ext_tmpl["extnID"] = rfc5280.id_ce_extKeyUsage  # EKU to be filled in by the client
    req_tmpl = rfc9908.ExtensionReqTemplate()
    req_tmpl[0] = ext_tmpl
    a62 = rfc5280.Attribute()
    a62["type"] = rfc9908.id_aa_extensionReqTemplate
    a62["values"][0] = univ.Any(der_encode(req_tmpl))
    tmpl["attributes"][0] = a62                      # [1]
    vectors["rfc9908-template"] = csrattrs(
        attr_entry(rfc9908.id_aa_certificationRequestInfoTemplate, der_encode(tmpl)))
    return vectors


# ---------------------------------------------------------------------------
# decoding self-check

VALUE_SPECS = {
    str(EXTENSION_REQUEST): rfc5280.Extensions(),
    str(rfc5480.id_ecPublicKey): rfc5480.ECParameters(),
    str(rfc5480.rsaEncryption): univ.Integer(),
    str(rfc9908.id_aa_certificationRequestInfoTemplate): rfc9908.CertificationRequestInfoTemplate(),
    str(rfc9908.id_aa_extensionReqTemplate): rfc9908.ExtensionReqTemplate(),
    str(rfc5280.id_ce_extKeyUsage): rfc5280.ExtKeyUsageSyntax(),
    str(rfc5280.id_at_organizationName): rfc5280.X520OrganizationName(),
}


def decode_exact(data, spec, what):
    obj, rest = der_decode(data, asn1Spec=spec)
    if rest:
        raise ValueError("%s: %d trailing bytes" % (what, len(rest)))
    if der_encode(obj) != data:
        raise ValueError("%s: re-encoding differs (not DER?)" % what)
    return obj


def show(label, obj, indent):
    pad = "  " * indent
    for line in obj.prettyPrint().splitlines():
        print(pad + line if line.strip() else line)


def check_value(type_oid, value, indent):
    spec = VALUE_SPECS.get(str(type_oid))
    if spec is None:
        print("  " * indent + "(value of %s left undecoded: %s)" % (type_oid, bytes(value).hex()))
        return
    obj = decode_exact(bytes(value), spec.clone(), str(type_oid))
    print("  " * indent + "value of %s decoded as %s:" % (type_oid, type(spec).__name__))
    show(str(type_oid), obj, indent + 1)
    if isinstance(spec, rfc5280.Extensions):
        for ext in obj:
            check_value(ext["extnID"], ext["extnValue"], indent + 1)
    if isinstance(spec, rfc9908.ExtensionReqTemplate):
        for ext in obj:
            if ext["extnValue"].isValue:
                check_value(ext["extnID"], ext["extnValue"], indent + 1)
            else:
                print("  " * (indent + 1) + "%s: extnValue absent (to be filled in)" % ext["extnID"])
    if isinstance(spec, rfc9908.CertificationRequestInfoTemplate):
        for rdn in obj["subject"]["rdnSequence"]:
            for atv in rdn:
                if atv["value"].isValue:
                    check_value(atv["type"], atv["value"], indent + 1)
                else:
                    print("  " * (indent + 1) + "RDN %s: value absent (to be filled in)" % atv["type"])
        if obj["subjectPKInfo"].isValue:
            pk = obj["subjectPKInfo"]
            print("  " * (indent + 1) + "subjectPKInfo algorithm %s, subjectPublicKey %s" % (
                pk["algorithm"]["algorithm"],
                "present" if pk["subjectPublicKey"].isValue else "absent"))
        for attr in obj["attributes"]:
            for v in attr["values"]:
                check_value(attr["type"], v, indent + 1)


def check_file(path):
    data = open(path, "rb").read()
    attrs = decode_exact(data, rfc7030.CsrAttrs(), path)
    print("== %s (%d bytes): CsrAttrs with %d element(s)" % (os.path.basename(path), len(data), len(attrs)))
    show(path, attrs, 1)
    for entry in attrs:
        if entry.getName() == "attribute":
            a = entry["attribute"]
            for v in a["attrValues"]:
                check_value(a["attrType"], v, 1)


def main():
    ap = argparse.ArgumentParser()
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--out", help="directory to write csrattrs-pyasn1-*.der into")
    g.add_argument("--check", help="directory whose csrattrs-pyasn1-*.der to decode")
    args = ap.parse_args()
    print("pyasn1 %s, pyasn1-alt-modules %s, Python %s" % (
        pyasn1.__version__, pyasn1_alt_modules.__version__, sys.version.split()[0]))
    directory = args.out or args.check
    names = []
    if args.out:
        for name, der in build().items():
            fn = os.path.join(directory, "csrattrs-pyasn1-%s.der" % name)
            with open(fn, "wb") as f:
                f.write(der)
            names.append(fn)
    else:
        names = sorted(os.path.join(directory, n) for n in os.listdir(directory)
                       if n.startswith("csrattrs-pyasn1-") and n.endswith(".der"))
    if not names:
        sys.exit("no csrattrs-pyasn1-*.der files")
    for fn in names:
        check_file(fn)
    print("pyasn1 self-check: %d file(s) decoded and re-encoded identically" % len(names))


if __name__ == "__main__":
    main()
