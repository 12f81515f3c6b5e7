#!/usr/bin/env python3
"""Raw public key identifiers (TS-0003 V3.18.0 10.1.2, RFC 6920): the SHA-256
of a DER SubjectPublicKeyInfo as `ni:///sha-256;<base64url, no padding>`,
computed with Python's hashlib and base64 (no enrolkit code). Writes
pkid.toml: for each SPKI, the digest in hex, its ni URI, and spellings that
name the same key (an authority, a query, upper-case algorithm) or must be
refused."""
import base64
import hashlib

from gba import write_atomic

# DER SubjectPublicKeyInfo of an Ed25519 key (RFC 8410 section 10.1's example
# public key) and an EC P-256 SPKI with an arbitrary point (only
# its octets are hashed, so it need not be on the curve).
SPKIS = [
    ("ed25519-rfc8410", "302a300506032b657003210019bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1"),
    ("p256-rfc9500",
     "3059301306072a8648ce3d020106082a8648ce3d03010703420004"
     "42253afdc3eb3a05d68a8aa5f5f4b42f3b4b26db48e2af6b5de9d9b8edb2d4c0"
     "bb0fe5d69fbd5fbc6c6c1b43d4c3b5e2b6fa18f1a5e8a0bab7ba0c1e7a5d7a3c"),
]


def ni(digest):
    return "ni:///sha-256;" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def main():
    out = ["# Written by pkid.py (Python hashlib + base64); do not edit.", ""]
    for name, spki_hex in SPKIS:
        d = hashlib.sha256(bytes.fromhex(spki_hex)).digest()
        u = ni(d)
        b64 = u.split(";", 1)[1]
        same = [
            "ni://keys.example.com/sha-256;" + b64,
            "ni:///SHA-256;" + b64,
            "ni:///sha-256;" + b64 + "?ct=application/pkix-cert",
            d.hex().upper(),
        ]
        refused = [
            u + "=",                                           # padding
            "ni:///sha-256;" + base64.b64encode(d).decode().rstrip("="),  # base64, not base64url
            "ni:///sha-256-128;" + base64.urlsafe_b64encode(d[:16]).decode().rstrip("="),  # truncated
            "ni:///sha-384;" + b64,
            "ni:sha-256;" + b64,
            "ni:///sha-256;" + b64[:-1],
        ]
        # The plain-base64 spelling must really differ from base64url.
        assert refused[1] != u, name
        out += [
            "[[pkid]]",
            'name = "%s"' % name,
            'spki = "%s"' % spki_hex,
            'sha256 = "%s"' % d.hex(),
            'ni = "%s"' % u,
            "same = [%s]" % ", ".join('"%s"' % s for s in same),
            "refused = [%s]" % ", ".join('"%s"' % s for s in refused),
            "",
        ]
    write_atomic("pkid.toml", "\n".join(out))


if __name__ == "__main__":
    main()
