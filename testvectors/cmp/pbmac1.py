#!/usr/bin/env python3
"""Re-protect a CMP PKIMessage with PBMAC1 (RFC 9481 §6.1.1, RFC 8018 §7.1).

usage: pbmac1.py IN.der OUT.der PASSWORD

Takes a PKIMessage made by OpenSSL, replaces the protectionAlg in its header
with PBMAC1 { PBKDF2 { salt, 10000 iterations, keyLength 32, prf
hmacWithSHA256 }, hmacWithSHA256 } and recomputes the protection over the
DER ProtectedPart ::= SEQUENCE { header, body } (RFC 4210 §5.1.3) with
hashlib.pbkdf2_hmac and hmac. Standard library only.
"""
import hashlib
import hmac
import sys

SALT = bytes.fromhex("0102030405060708090a0b0c0d0e0f10")
ITERATIONS = 10000


def tlv(tag, content):
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + length + content


def read(data, pos):
    """One TLV at pos: (tag, header length, content length)."""
    tag = data[pos]
    first = data[pos + 1]
    if first < 0x80:
        return tag, 2, first
    k = first & 0x7F
    return tag, 2 + k, int.from_bytes(data[pos + 2 : pos + 2 + k], "big")


def children(data):
    out, pos = [], 0
    while pos < len(data):
        tag, hl, ln = read(data, pos)
        out.append((tag, data[pos : pos + hl + ln]))
        pos += hl + ln
    return out


def content(tlv_bytes):
    _, hl, ln = read(tlv_bytes, 0)
    return tlv_bytes[hl : hl + ln]


def oid(dotted):
    parts = [int(p) for p in dotted.split(".")]
    body = bytes([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        enc = [p & 0x7F]
        p >>= 7
        while p:
            enc.append(0x80 | (p & 0x7F))
            p >>= 7
        body += bytes(reversed(enc))
    return tlv(0x06, body)


def integer(v):
    b = v.to_bytes((v.bit_length() + 8) // 8, "big")
    return tlv(0x02, b)


HMAC_SHA256 = tlv(0x30, oid("1.2.840.113549.2.9") + b"\x05\x00")
PBKDF2_PARAMS = tlv(0x30, tlv(0x04, SALT) + integer(ITERATIONS) + integer(32) + HMAC_SHA256)
PBMAC1 = tlv(
    0x30,
    oid("1.2.840.113549.1.5.14")
    + tlv(0x30, tlv(0x30, oid("1.2.840.113549.1.5.12") + PBKDF2_PARAMS) + HMAC_SHA256),
)


def main():
    src, dst, password = sys.argv[1], sys.argv[2], sys.argv[3].encode()
    msg = open(src, "rb").read()
    parts = children(content(msg))
    header, body = parts[0][1], parts[1][1]
    rest = [p for t, p in parts[2:] if t != 0xA0]  # drop the old protection, keep extraCerts
    fields = []
    for tag, f in children(content(header)):
        fields.append(tlv(0xA1, PBMAC1) if tag == 0xA1 else f)
    new_header = tlv(0x30, b"".join(fields))
    protected_part = tlv(0x30, new_header + body)
    key = hashlib.pbkdf2_hmac("sha256", password, SALT, ITERATIONS, 32)
    mac = hmac.new(key, protected_part, hashlib.sha256).digest()
    protection = tlv(0xA0, tlv(0x03, b"\x00" + mac))
    out = tlv(0x30, new_header + body + protection + b"".join(rest))
    open(dst, "wb").write(out)
    print(f"{dst}: PBMAC1 salt={SALT.hex()} iterations={ITERATIONS} mac={mac.hex()}")


if __name__ == "__main__":
    main()
