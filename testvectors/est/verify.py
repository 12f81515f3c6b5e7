#!/usr/bin/env python3
"""Check every file of the EST test-vector corpus against MANIFEST.

    python verify.py [DIR]          (DIR defaults to this script's directory)

For each [files."NAME"] block of MANIFEST: the file exists, size/sha256
match when given, and the file parses -- with the openssl command line, with
Python's base64 and email modules, or (csrattrs) with pyasn1 +
pyasn1-alt-modules -- with the outcome MANIFEST states in `expect`
("valid..." or "invalid: ...").  Every file in DIR must have a block.
Needs python3 >= 3.11 (tomllib), openssl, and for kind "csrattrs" the
packages pyasn1 and pyasn1-alt-modules (generate.sh's venv has them).
Prints one line per file and "N passed, N failed" at the end.
"""
import base64
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from email import policy
from email.parser import BytesParser

HERE = os.path.dirname(os.path.abspath(__file__))
NO_BLOCK_NEEDED = {"MANIFEST", "__pycache__"}
WS = re.compile(rb"[ \t\r\n]")


class Fail(Exception):
    pass


def openssl(*args, data=None):
    r = subprocess.run(["openssl", *args], input=data, capture_output=True)
    return r.returncode, r.stdout, r.stderr


def must(cond, msg):
    if not cond:
        raise Fail(msg)


# --- a tiny DER walker (structure checks of key formats) ------------------
def tlv(buf, i):
    tag = buf[i]
    n = buf[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(buf[i:i + k], "big")
        i += k
    return tag, buf[i:i + n], i + n


def children(der):
    tag, body, end = tlv(der, 0)
    must(tag == 0x30 and end == len(der), "not a single DER SEQUENCE")
    out, i = [], 0
    while i < len(body):
        t, v, i = tlv(body, i)
        out.append((t, v))
    return out


def pubkey_of(path, kind):
    if kind == "csr":
        rc, out, err = openssl("req", "-inform", "DER", "-in", path, "-noout", "-pubkey")
    elif kind.startswith("x509"):
        form = "DER" if kind == "x509-der" else "PEM"
        rc, out, err = openssl("x509", "-inform", form, "-in", path, "-noout", "-pubkey")
    else:
        form = "PEM" if kind.endswith("-pem") else "DER"
        rc, out, err = openssl("pkey", "-inform", form, "-in", path, "-pubout")
    must(rc == 0, "cannot get public key of %s: %s" % (path, err.decode(errors="replace")))
    return out


# --- checks by kind: return a short detail string, raise Fail on a parse error
def check_http(path, meta, d):
    raw = open(path, "rb").read()
    head, sep, body = raw.partition(b"\n\n")
    must(head.split(b"\n")[0].startswith((b"HTTP/1.1 ", b"GET ", b"POST ")), "no HTTP start line")
    if "body_file" in meta:
        want = open(os.path.join(d, meta["body_file"]), "rb").read()
        must(body == want, "body differs from %s" % meta["body_file"])
        return "body == %s (%d bytes)" % (meta["body_file"], len(body))
    return "no body"


def check_base64(path, meta, d):
    text = open(path, "rb").read()
    try:
        der = base64.b64decode(WS.sub(b"", text), validate=True)
    except ValueError as e:
        raise Fail("base64: %s" % e)
    want = open(os.path.join(d, meta["decodes_to"]), "rb").read()
    must(der == want, "decodes to something else than %s" % meta["decodes_to"])
    return "decodes (whitespace dropped) to %s" % meta["decodes_to"]


def check_hex(path, meta, d):
    der = bytes.fromhex(open(path).read())
    want = open(os.path.join(d, meta["decodes_to"]), "rb").read()
    must(der == want, "hex differs from %s" % meta["decodes_to"])
    return "hex == %s" % meta["decodes_to"]


def check_asn1(path):
    rc, out, err = openssl("asn1parse", "-inform", "DER", "-in", path)
    must(rc == 0, "openssl asn1parse: %s" % err.decode(errors="replace").strip())


def check_certs_only(path, meta, d):
    check_asn1(path)
    rc, out, err = openssl("pkcs7", "-inform", "DER", "-in", path, "-print_certs")
    must(rc == 0, "openssl pkcs7: %s" % err.decode(errors="replace").strip())
    pems = re.findall(rb"-----BEGIN CERTIFICATE-----\n(.*?)-----END CERTIFICATE-----", out, re.S)
    if "certs" in meta:
        must(len(pems) == meta["certs"], "%d certificates, MANIFEST says %d" % (len(pems), meta["certs"]))
    for pem, name in zip(pems, meta.get("certs_files", [])):
        must(base64.b64decode(pem) == open(os.path.join(d, name), "rb").read(),
             "certificate differs from %s" % name)
    detail = "certs-only with %d certificate(s)" % len(pems)
    if meta.get("signatures") == "verify":
        pool = list(pems)
        if "issuers_from" in meta:
            rc, more, err = openssl("pkcs7", "-inform", "DER", "-in", os.path.join(d, meta["issuers_from"]), "-print_certs")
            must(rc == 0, "cannot read %s" % meta["issuers_from"])
            pool += re.findall(rb"-----BEGIN CERTIFICATE-----\n(.*?)-----END CERTIFICATE-----", more, re.S)
        n = verify_signatures(pems, pool)
        detail += ", %d signature(s) verified" % n
    return detail


def to_pem(b64body):
    return b"-----BEGIN CERTIFICATE-----\n" + b64body + b"-----END CERTIFICATE-----\n"


def cert_name(pem, which):
    rc, out, err = openssl("x509", "-noout", "-" + which, "-nameopt", "RFC2253", data=to_pem(pem))
    must(rc == 0, "openssl x509: %s" % err.decode(errors="replace").strip())
    return out.decode().strip().split("=", 1)[1]


def verify_signatures(pems, pool):
    """Verify each certificate's signature with the one certificate whose
    subject is its issuer (self-issued ones with their own key).  Validity
    dates are ignored (-no_check_time): the RFC examples expired in 2014."""
    count = 0
    with tempfile.TemporaryDirectory() as t:
        for i, c in enumerate(pems):
            cf = os.path.join(t, "c%d.pem" % i)
            open(cf, "wb").write(to_pem(c))
            issuer = cert_name(c, "issuer")
            if issuer == cert_name(c, "subject"):
                rc, o, e = openssl("verify", "-no_check_time", "-check_ss_sig", "-CAfile", cf, cf)
            else:
                cands = [p for p in pool if p != c and cert_name(p, "subject") == issuer]
                must(len(cands) == 1, "%d candidate issuers for %s" % (len(cands), issuer))
                ia = os.path.join(t, "i%d.pem" % i)
                open(ia, "wb").write(to_pem(cands[0]))
                rc, o, e = openssl("verify", "-no_check_time", "-partial_chain", "-CAfile", ia, cf)
            must(rc == 0, "signature of certificate %d (issuer %s): %s" % (i, issuer, (o + e).decode(errors="replace").strip()))
            count += 1
    return count


def check_csr(path, meta, d):
    check_asn1(path)
    rc, out, err = openssl("req", "-inform", "DER", "-in", path, "-noout", "-text")
    must(rc == 0, "openssl req cannot parse it: %s" % err.decode(errors="replace").strip())
    if "key" in meta:
        must(pubkey_of(path, "csr") == pubkey_of(os.path.join(d, meta["key"]), "key"),
             "public key differs from %s" % meta["key"])
    rc, out, err = openssl("req", "-inform", "DER", "-in", path, "-noout", "-verify")
    # OpenSSL 3.0's "req -verify" exits 0 even when the signature is bad: read its message
    msg = (out + err).decode(errors="replace")
    must(rc == 0 and "verify OK" in msg and "failure" not in msg,
         "self-signature does not verify (%s)" % msg.strip())
    return "CSR parses, self-signature verifies"


def check_x509(path, meta, d, kind):
    form = "DER" if kind == "x509-der" else "PEM"
    rc, out, err = openssl("x509", "-inform", form, "-in", path, "-noout", "-subject")
    must(rc == 0, "openssl x509: %s" % err.decode(errors="replace").strip())
    with tempfile.NamedTemporaryFile(suffix=".pem") as t:
        rc, pem, _ = openssl("x509", "-inform", form, "-in", path)
        t.write(pem)
        t.flush()
        if meta.get("self_signed") == "yes":
            rc, o, e = openssl("verify", "-check_ss_sig", "-CAfile", t.name, t.name)
            must(rc == 0, "self-signature: %s" % (o + e).decode(errors="replace").strip())
        if "issuer_cert" in meta:
            rc, o, e = openssl("verify", "-CAfile", os.path.join(d, meta["issuer_cert"]), t.name)
            must(rc == 0, "not verified by %s: %s" % (meta["issuer_cert"], (o + e).decode(errors="replace").strip()))
    if "key" in meta:
        must(pubkey_of(path, kind) == pubkey_of(os.path.join(d, meta["key"]), "key"),
             "public key differs from %s" % meta["key"])
    return out.decode().strip()


def check_key(path, meta, d, kind):
    form = "PEM" if kind.endswith("-pem") else "DER"
    if form == "DER":
        check_asn1(path)
        der = open(path, "rb").read()
    else:
        m = re.search(rb"-----BEGIN PRIVATE KEY-----\n(.*?)-----END PRIVATE KEY-----", open(path, "rb").read(), re.S)
        must(m is not None, "no BEGIN PRIVATE KEY armour (PKCS#8 PEM)")
        der = base64.b64decode(m.group(1))
    kids = children(der)
    tags = [t for t, _ in kids]
    if kind.startswith("pkcs8"):
        must(tags[:3] == [0x02, 0x30, 0x04] and kids[0][1] in (b"\x00", b"\x01"),
             "not PKCS#8 PrivateKeyInfo (INTEGER version, SEQUENCE algorithm, OCTET STRING)")
        shape = "PKCS#8 PrivateKeyInfo"
    elif kind == "pkcs1-der":
        must(len(tags) == 9 and all(t == 0x02 for t in tags) and kids[0][1] == b"\x00",
             "not PKCS#1 RSAPrivateKey (nine INTEGERs, version 0)")
        shape = "PKCS#1 RSAPrivateKey"
    elif kind == "sec1-der":
        must(tags[:2] == [0x02, 0x04] and kids[0][1] == b"\x01",
             "not SEC1 ECPrivateKey (INTEGER 1, OCTET STRING, ...)")
        shape = "SEC1 ECPrivateKey"
    rc, out, err = openssl("pkey", "-inform", form, "-in", path, "-noout", "-check")
    must(rc == 0, "openssl pkey -check: %s" % (out + err).decode(errors="replace").strip())
    if "same_key_as" in meta:
        must(pubkey_of(path, kind) == pubkey_of(os.path.join(d, meta["same_key_as"]), "key"),
             "not the same key as %s" % meta["same_key_as"])
    return shape + ", openssl pkey -check ok"


def check_csrattrs(path, meta, d):
    try:
        from pyasn1.codec.der.decoder import decode
        from pyasn1.codec.der.encoder import encode
        from pyasn1_alt_modules import rfc2985, rfc5280, rfc7030
    except ImportError as e:
        raise Fail("cannot check: %s (pip install pyasn1 pyasn1-alt-modules)" % e)
    check_asn1(path)
    data = open(path, "rb").read()
    try:
        obj, rest = decode(data, asn1Spec=rfc7030.CsrAttrs())
    except Exception as e:  # noqa: BLE001 -- pyasn1 raises several types
        raise Fail("pyasn1 CsrAttrs: %s" % e)
    must(not rest, "trailing bytes")
    must(encode(obj) == data, "pyasn1 re-encoding differs (not DER)")
    problems = []
    for entry in obj:
        if entry.getName() == "attribute" and entry["attribute"]["attrType"] == rfc2985.pkcs_9_at_extensionRequest:
            for v in entry["attribute"]["attrValues"]:
                try:
                    ext, rest = decode(bytes(v), asn1Spec=rfc5280.Extensions())
                    if rest:
                        raise ValueError("trailing bytes")
                except Exception:  # noqa: BLE001
                    problems.append("extensionRequest value is not Extensions")
    got = "ok" if not problems else "wrong: " + "; ".join(problems)
    if "semantics" in meta:
        must(got.split(":")[0] == meta["semantics"].split(":")[0],
             "semantics %r, MANIFEST says %r" % (got, meta["semantics"]))
    return "CsrAttrs with %d element(s), semantics %s" % (len(obj), got)


def check_multipart(path, meta, d):
    body = open(path, "rb").read()
    nl = b"\r\n" if b"\r\n" in body else b"\n"
    raw = b"Content-Type: " + meta["content_type"].encode() + nl + nl + body
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    must(msg.is_multipart(), "not multipart")
    must(not msg.defects, "defects: %s" % msg.defects)
    parts = list(msg.iter_parts())
    want = meta.get("parts", [])
    must(len(parts) == len(want), "%d parts, MANIFEST lists %d" % (len(parts), len(want)))
    types = []
    for p, name in zip(parts, want):
        must(p["Content-Transfer-Encoding"] is not None and p["Content-Transfer-Encoding"].lower() == "base64",
             "part without Content-Transfer-Encoding: base64")
        must(not p.defects, "part defects: %s" % p.defects)
        payload = p.get_payload(decode=True)
        must(payload == open(os.path.join(d, name), "rb").read(), "part content differs from %s" % name)
        types.append(p.get_content_type() + ("; smime-type=" + p.get_param("smime-type") if p.get_param("smime-type") else ""))
    must(types[:1] == ["application/pkcs8"], "first part is not application/pkcs8")
    must(types[1:2] == ["application/pkcs7-mime; smime-type=certs-only"], "second part is not certs-only")
    return "multipart/mixed: " + ", ".join(types)


CHECKS = {
    "http": check_http,
    "base64": check_base64,
    "hex": check_hex,
    "certs-only": check_certs_only,
    "csr": check_csr,
    "csrattrs": check_csrattrs,
    "multipart": check_multipart,
}


def main():
    d = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else HERE)
    with open(os.path.join(d, "MANIFEST"), "rb") as f:
        manifest = tomllib.load(f)
    files = manifest.get("files", {})
    passed = failed = 0
    for name in sorted(os.listdir(d)):
        if name not in files and name not in NO_BLOCK_NEEDED:
            print("FAIL %s: no block in MANIFEST" % name)
            failed += 1
    for name, meta in files.items():
        path = os.path.join(d, name)
        expect = meta.get("expect", "")
        try:
            must(os.path.isfile(path), "missing")
            data = open(path, "rb").read()
            if "size" in meta:
                must(len(data) == meta["size"], "size %d, MANIFEST says %d" % (len(data), meta["size"]))
            if "sha256" in meta:
                must(hashlib.sha256(data).hexdigest() == meta["sha256"], "sha256 differs from MANIFEST")
            kind = meta.get("kind", "")
            if kind in CHECKS:
                fn = CHECKS[kind]
            elif kind.startswith("x509"):
                fn = lambda p, m, dd, k=kind: check_x509(p, m, dd, k)  # noqa: E731
            elif kind in ("pkcs8-der", "pkcs8-pem", "pkcs1-der", "sec1-der"):
                fn = lambda p, m, dd, k=kind: check_key(p, m, dd, k)  # noqa: E731
            else:
                fn = None
            if fn is None:
                must(expect in ("n/a", ""), "kind %r has no check but expect is %r" % (kind, expect))
                print("ok   %s: %s (no parse check)" % (name, kind or "?"))
                passed += 1
                continue
            try:
                detail = fn(path, meta, d)
                outcome = "valid"
            except Fail as e:
                detail = str(e)
                outcome = "invalid"
            if not expect.startswith(outcome):
                raise Fail("expected %r, got %s (%s)" % (expect, outcome, detail))
            print("ok   %s: %s: %s" % (name, outcome, detail))
            passed += 1
        except Fail as e:
            print("FAIL %s: %s" % (name, e))
            failed += 1
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
