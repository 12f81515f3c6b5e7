#!/usr/bin/python3
"""Chain-validation vectors for enrolkit-pkix, made with Python `cryptography`
(an independent X.509 implementation). Run from this directory:
    /usr/bin/python3 make_chains.py
It writes DER certificates; crates/pkix/tests/chain_vectors.rs says what each
case must give when validated at 2027-06-01T00:00:00Z. Keys are fresh on
every run, so rerunning changes the bytes but not the cases."""
import datetime as dt
import cryptography
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID

UTC = dt.timezone.utc
START = dt.datetime(2026, 1, 1, tzinfo=UTC)
END = dt.datetime(2046, 1, 1, tzinfo=UTC)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "enrolkit vectors"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def key():
    return ec.generate_private_key(ec.SECP256R1())


def cert(subject, pub, issuer, ikey, *, ca=False, path_len=None, eku=None, start=START, end=END,
         digest=None, extra=(), issuer_name=None):
    b = (x509.CertificateBuilder()
         .subject_name(name(subject))
         .issuer_name(name(issuer_name or issuer))
         .public_key(pub)
         .serial_number(x509.random_serial_number())
         .not_valid_before(start)
         .not_valid_after(end)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=path_len if ca else None), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False))
    if ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                          crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
    else:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                          crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject.lower().replace(" ", "-") + ".example.net")]),
                            critical=False)
    if eku is not None:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    for oid, critical in extra:
        b = b.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), b"\x05\x00"), critical=critical)
    if digest is None:
        digest = hashes.SHA256()
    return b.sign(ikey, digest)


def write(fname, c):
    with open(fname, "wb") as f:
        f.write(c.public_bytes(serialization.Encoding.DER))


TLS = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]

root_k = key()
root = cert("Vector Root CA", root_k.public_key(), "Vector Root CA", root_k, ca=True)
int_k = key()
inter = cert("Vector Issuing CA", int_k.public_key(), "Vector Root CA", root_k, ca=True, path_len=0)
write("root.der", root)
write("intermediate.der", inter)

# The good leaf, and the leaves that each break one rule.
write("leaf.der", cert("Device 1", key().public_key(), "Vector Issuing CA", int_k, eku=TLS))
write("leaf-expired.der", cert("Device expired", key().public_key(), "Vector Issuing CA", int_k, eku=TLS,
                               end=dt.datetime(2027, 1, 1, tzinfo=UTC)))
write("leaf-not-yet-valid.der", cert("Device future", key().public_key(), "Vector Issuing CA", int_k, eku=TLS,
                                     start=dt.datetime(2030, 1, 1, tzinfo=UTC)))
write("leaf-client-only.der", cert("Device client", key().public_key(), "Vector Issuing CA", int_k,
                                   eku=[ExtendedKeyUsageOID.CLIENT_AUTH]))
write("leaf-ocsp-signing.der", cert("OCSP responder", key().public_key(), "Vector Issuing CA", int_k,
                                    eku=[ExtendedKeyUsageOID.OCSP_SIGNING]))
write("leaf-no-eku.der", cert("Device no eku", key().public_key(), "Vector Issuing CA", int_k))
write("leaf-unknown-critical.der", cert("Device critical", key().public_key(), "Vector Issuing CA", int_k, eku=TLS,
                                        extra=[("1.3.6.1.4.1.55555.1", True)]))
write("leaf-unknown-noncritical.der", cert("Device noncritical", key().public_key(), "Vector Issuing CA", int_k,
                                           eku=TLS, extra=[("1.3.6.1.4.1.55555.1", False)]))
# Signed by the issuing CA's key but naming another issuer.
write("leaf-wrong-issuer-name.der", cert("Device misnamed", key().public_key(), "Vector Other CA", int_k, eku=TLS))

# A leaf (cA false) that issues a certificate.
ee_k = key()
ee = cert("Not a CA", ee_k.public_key(), "Vector Issuing CA", int_k, eku=TLS)
write("not-ca.der", ee)
write("leaf-under-not-ca.der", cert("Device under leaf", key().public_key(), "Not a CA", ee_k, eku=TLS))

# pathLenConstraint 0 at the issuing CA, and a sub-CA below it anyway.
sub_k = key()
write("sub-ca.der", cert("Vector Sub CA", sub_k.public_key(), "Vector Issuing CA", int_k, ca=True))
write("leaf-under-sub-ca.der", cert("Device deep", key().public_key(), "Vector Sub CA", sub_k, eku=TLS))

# An RSA-2048 chain (RSA PKCS#1 v1.5 with SHA-256 and SHA-384).
rroot_k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
rroot = cert("Vector RSA Root", rroot_k.public_key(), "Vector RSA Root", rroot_k, ca=True)
write("rsa-root.der", rroot)
write("rsa-leaf.der", cert("Device rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key(),
                           "Vector RSA Root", rroot_k, eku=TLS, digest=hashes.SHA384()))
# sha1WithRSAEncryption, as legacy SCEP servers still sign.
write("rsa-leaf-sha1.der", cert("Device sha1", rsa.generate_private_key(public_exponent=65537, key_size=2048)
                                .public_key(), "Vector RSA Root", rroot_k, eku=TLS, digest=hashes.SHA1()))

with open("VERSION", "w") as f:
    f.write(f"python3-cryptography {cryptography.__version__}\n")
