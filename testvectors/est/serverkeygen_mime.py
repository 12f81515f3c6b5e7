#!/usr/bin/env python3
"""Assemble EST /serverkeygen multipart/mixed response bodies (RFC 7030 §4.4.2).

Standard library only.

  email   -- built with Python's own MIME implementation: email.mime
             (MIMEMultipart + two MIMEApplication parts, base64 transfer
             encoding chosen by the library) serialised by
             email.generator.BytesGenerator under email.policy.HTTP
             (CRLF line ends, no header folding).  The HTTP body is what
             the generator writes after the top-level header block; the
             top-level Content-Type is written to --content-type-out.

  libest  -- the wire layout of cisco/libest's server (est_server.c,
             est_handle_server_keygen, read as reference): no preamble,
             boundary "est-server-boundary", CRLF after every header line
             and around each delimiter, each part body being the base64
             text given in --key-b64 / --certs-b64 (pass OpenSSL's base64
             output: 64 columns, LF, final LF, as OpenSSL's base64 BIO that
             libest uses writes it), closing delimiter followed by CRLF CRLF.
             The key part is labelled application/pkcs8 whatever it holds:
             libest sends i2d_PrivateKey output (PKCS#1 for RSA) there.
"""
import argparse
import sys
from email import policy
from email.generator import BytesGenerator
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from io import BytesIO

EMAIL_BOUNDARY = "estPythonEmailBoundary"
LIBEST_BOUNDARY = "est-server-boundary"


def email_variant(key_der, certs_der):
    msg = MIMEMultipart("mixed", boundary=EMAIL_BOUNDARY, policy=policy.HTTP)
    key = MIMEApplication(key_der, "pkcs8", policy=policy.HTTP)
    certs = MIMEApplication(certs_der, "pkcs7-mime", policy=policy.HTTP)
    certs.set_param("smime-type", "certs-only")
    msg.attach(key)
    msg.attach(certs)
    buf = BytesIO()
    BytesGenerator(buf, policy=policy.HTTP).flatten(msg)
    whole = buf.getvalue()
    head, sep, body = whole.partition(b"\r\n\r\n")
    if not sep:
        sys.exit("generator output has no header/body separator")
    return msg["Content-Type"], body


def libest_variant(key_b64, certs_b64):
    eol = b"\r\n"
    b = LIBEST_BOUNDARY.encode()
    out = b"--" + b + eol
    out += b"Content-Type: application/pkcs8" + eol
    out += b"Content-Transfer-Encoding: base64" + eol + eol
    out += key_b64
    out += eol + b"--" + b + eol
    out += b"Content-Type: application/pkcs7-mime; smime-type=certs-only" + eol
    out += b"Content-Transfer-Encoding: base64" + eol + eol
    out += certs_b64
    out += eol + b"--" + b + b"--" + eol + eol
    return "multipart/mixed; boundary=" + LIBEST_BOUNDARY, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--style", choices=["email", "libest"], required=True)
    ap.add_argument("--key-der", help="email style: key part content (DER)")
    ap.add_argument("--certs-der", help="email style: certs-only part content (DER)")
    ap.add_argument("--key-b64", help="libest style: key part body (base64 text)")
    ap.add_argument("--certs-b64", help="libest style: certs part body (base64 text)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--content-type-out", required=True)
    a = ap.parse_args()
    if a.style == "email":
        ct, body = email_variant(open(a.key_der, "rb").read(), open(a.certs_der, "rb").read())
    else:
        ct, body = libest_variant(open(a.key_b64, "rb").read(), open(a.certs_b64, "rb").read())
    with open(a.out, "wb") as f:
        f.write(body)
    with open(a.content_type_out, "w") as f:
        f.write(ct)
    print("%s: %d bytes, Content-Type: %s" % (a.out, len(body), ct))


if __name__ == "__main__":
    main()
