#!/usr/bin/python3
"""Seeds for the signed mode of the pkix_pkcs10 fuzz target: byte 0x01, then
the contents of the attributes [0] of each request in the directory above
(the target signs them into a request of its own)."""
import glob
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def header(b, i):
    tag = b[i]
    i += 1
    n = b[i]
    i += 1
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(b[i:i + k], "big")
        i += k
    return tag, i, n


for path in sorted(glob.glob(os.path.join(HERE, "..", "*.der"))):
    b = open(path, "rb").read()
    _, i, _ = header(b, 0)          # CertificationRequest
    _, i, _ = header(b, i)          # CertificationRequestInfo
    while True:
        tag, j, n = header(b, i)
        if tag == 0xA0:
            contents = b[j:j + n]
            break
        i = j + n
    name = os.path.basename(path).replace(".der", ".attributes")
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(b"\x01" + contents)
