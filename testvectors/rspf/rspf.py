#!/usr/bin/env python3
"""Independent oracle for the oneM2M RSPF derivations (enrolkit-rspf).

Uses only Python's standard hmac/hashlib; shares no code with enrolkit.
Input: exported keying material (hex) that OpenSSL printed for real TLS
handshakes (generate.sh runs them).  Output: rspf.toml.

TS-0003 V3.18.0 clause 10.3 and the choices documented in
crates/rspf/src/enrolment.rs (numbered there):
  X = TLS-Exporter("EXPORTER-oneM2M-Bootstrap", no context, 48)      10.3.1
  RelativeKeId = X[0:16]; Ke = X[16:48]                               10.3.1
  KeId = HEX(RelativeKeId) "@" MEF-FQDN                               10.3.4, choice 6 (upper case)
  Kre = HMAC(Ke, KRE_LABEL); RelativeKreId = HMAC(Ke, KRE_ID_LABEL)[0:16]      choice 2
  Kc = HMAC(Ke, "oneM2M Enrolment Key to Master Credential derivation" || MAF-FQDN)  10.3.2
  KcId = HEX(HMAC(Ke, KC_ID_LABEL || MAF-FQDN)[0:16]) "@" MAF-FQDN   choice 3
  K = HMAC(Ke, "oneM2M Enrolment Key to Usage-Constrained Symmetric Key derivation"
           || SUID(2 ASCII digits) || Enrolment-Target-ID)            10.3.7, choice 4
  KId = HEX(HMAC(Ke, TARGET_ID_LABEL || SUID || Enrolment-Target-ID)[0:16]) "@" MEF-FQDN   choice 5

V3.18 profile ([[enrolment.target]]): SUID 21/22/23 (MEF-established,
8.3.9.9.2) and Enrolment-Target-ID = the FQDN form of the identifier, UTF-8
after NFKC (unicodedata), with enrolkit's mapping of absolute IDs
(crates/rspf/src/target.rs, an extension): //SP/CSE -> CSE.SP,
//SP/CSE/Cae -> Cae.CSE.SP, an FQDN as is.
Change-request profile ([[enrolment.change_request]]): SUID 11/12/13 for
PSK-SAEF/ESPrim/ESData and the identifier as given (only for enrolments
recorded before enrolkit followed V3.18).

`rspf.py --rederive` recomputes every derived value from the exports
already recorded in rspf.toml (keeping OpenSSL's handshake output).
"""
import hashlib
import hmac
import sys
import tomllib
import unicodedata

from gba import write_atomic

KRE_LABEL = b"oneM2M Enrolment Key to Enrolment Re-authentication Key derivation"
KRE_ID_LABEL = b"oneM2M Enrolment Key to Enrolment Re-authentication Key Identifier derivation"
KC_LABEL = b"oneM2M Enrolment Key to Master Credential derivation"
KC_ID_LABEL = b"oneM2M Enrolment Key to Master Credential Identifier derivation"
TARGET_KEY_LABEL = b"oneM2M Enrolment Key to Usage-Constrained Symmetric Key derivation"
TARGET_ID_LABEL = b"oneM2M Enrolment Key to Usage-Constrained Symmetric Key Identifier derivation"
CR_USAGES = [("PSK-SAEF", b"11"), ("PSK-ESPrim", b"12"), ("PSK-ESData", b"13")]
CR_TARGETS = ["//sp.example.com/CSE-target-1", "CAE-sensor-42"]
SUIDS = [b"21", b"22", b"23"]
MEF = "mef.example.com"
MAF = "maf.example.com"
# Absolute CSE-ID, absolute AE-ID, an FQDN, and two spellings of one
# non-ASCII CSE-ID (composed; full-width solidi and decomposed u-umlaut).
TARGETS = [
    "//sp.example.com/CSE-target-1",
    "//sp.example.com/CSE-target-1/CAE-sensor-42",
    "cse-b.example.net",
    "//sp.example.com/CSE-Z\u00fcrich",
    "\uff0f\uff0fsp.example.com\uff0fCSE-Zu\u0308rich",
]


def target_fqdn(ident):
    n = unicodedata.normalize("NFKC", ident)
    if n.startswith("//"):
        sp, *ids = n[2:].split("/")
        assert 1 <= len(ids) <= 2
        return ".".join(list(reversed(ids)) + [sp])
    return n


def toml_str(s):
    return '"' + "".join(c if 0x20 <= ord(c) < 0x7f and c not in '"\\' else "\\u%04x" % ord(c) for c in s) + '"'


def mac(key, *parts):
    return hmac.new(key, b"".join(parts), hashlib.sha256).digest()


def case(name, meta, export_hex):
    x = bytes.fromhex(export_hex)
    assert len(x) == 48
    rel, ke = x[:16], x[16:]
    kre = mac(ke, KRE_LABEL)
    rel_kre = mac(ke, KRE_ID_LABEL)[:16]
    kc = mac(ke, KC_LABEL, MAF.encode())
    lines = [
        "[[enrolment]]",
        'name = "%s"' % name,
    ] + ['%s = "%s"' % kv for kv in meta] + [
        'label = "EXPORTER-oneM2M-Bootstrap"',
        'export = "%s"' % x.hex(),
        'mef_fqdn = "%s"' % MEF,
        'relative_ke_id = "%s"' % rel.hex(),
        'ke = "%s"' % ke.hex(),
        'ke_id = "%s@%s"' % (rel.hex().upper(), MEF),
        'kre = "%s"' % kre.hex(),
        'kre_id = "%s@%s"' % (rel_kre.hex().upper(), MEF),
        'maf_fqdn = "%s"' % MAF,
        'kc = "%s"' % kc.hex(),
        'kc_id = "%s@%s"' % (mac(ke, KC_ID_LABEL, MAF.encode())[:16].hex().upper(), MAF),
        "",
    ]
    for target in TARGETS:
        fqdn = target_fqdn(target).encode()
        for suid in SUIDS:
            k = mac(ke, TARGET_KEY_LABEL, suid, fqdn)
            kid = mac(ke, TARGET_ID_LABEL, suid, fqdn)[:16]
            lines += [
                "[[enrolment.target]]",
                "id = %s" % toml_str(target),
                "fqdn = %s" % toml_str(fqdn.decode()),
                "suid = %s" % suid.decode(),
                'key = "%s"' % k.hex(),
                'key_id = "%s@%s"' % (kid.hex().upper(), MEF),
                "",
            ]
    for target in CR_TARGETS:
        for usage, suid in CR_USAGES:
            k = mac(ke, TARGET_KEY_LABEL, suid, target.encode())
            kid = mac(ke, TARGET_ID_LABEL, suid, target.encode())[:16]
            lines += [
                "[[enrolment.change_request]]",
                'id = "%s"' % target,
                'usage = "%s"' % usage,
                "suid = %s" % suid.decode(),
                'key = "%s"' % k.hex(),
                'key_id = "%s@%s"' % (kid.hex().upper(), MEF),
                "",
            ]
    return lines


def main():
    # argv: name openssl-version tls-version psk-identity psk-hex export-hex, repeated.
    args = sys.argv[1:]
    if args == ["--rederive"]:
        # The exports OpenSSL printed, kept; everything after them recomputed.
        with open("rspf.toml", "rb") as f:
            recorded = tomllib.load(f)["enrolment"]
        args = []
        for e in recorded:
            args += [e["name"], e["producer"], e["tls"], e["psk_identity"], e["psk"], e["export"]]
    if not args or len(args) % 6:
        sys.exit("usage: rspf.py (NAME OPENSSL TLS IDENTITY PSK EXPORT)...")
    out = [
        "# Generated by rspf.py (Python %s, standard hmac/hashlib) from keying" % sys.version.split()[0],
        "# material OpenSSL exported in real handshakes (generate.sh); do not edit.",
        "",
    ]
    for i in range(0, len(args), 6):
        name, ossl, tls, ident, psk, export = args[i:i + 6]
        meta = [("producer", ossl), ("tls", tls), ("psk_identity", ident), ("psk", psk)]
        out += case(name, meta, export)
    write_atomic("rspf.toml", "\n".join(out))


if __name__ == "__main__":
    main()
