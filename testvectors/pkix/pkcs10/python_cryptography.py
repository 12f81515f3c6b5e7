#!/usr/bin/python3
"""Regenerates the Python `cryptography` vectors of this directory (see
README.md). The keys are made in memory and thrown away; only the
requests are written."""
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AttributeOID, ExtendedKeyUsageOID, NameOID

HERE = os.path.dirname(os.path.abspath(__file__))


def request(key, cn, sans, ekus, password, digest):
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Org"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
        ]))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_attribute(AttributeOID.CHALLENGE_PASSWORD, password)
    )
    return builder.sign(key, digest).public_bytes(Encoding.DER)


def write(name, der):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(der)


write("python-rsa2048.der", request(
    rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "gateway-3.example",
    [
        x509.DNSName("gateway-3.example"),
        x509.IPAddress(ipaddress.ip_address("198.51.100.3")),
        x509.RFC822Name("ops@example.com"),
        x509.UniformResourceIdentifier("urn:example:gateway:3"),
    ],
    [ExtendedKeyUsageOID.CLIENT_AUTH],
    b"ChallengePW-42",
    hashes.SHA256(),
))
write("python-p256.der", request(
    ec.generate_private_key(ec.SECP256R1()),
    "meter-9",
    [
        x509.DNSName("meter-9.example"),
        x509.DNSName("meter-9.local"),
        x509.IPAddress(ipaddress.ip_address("2001:db8::9")),
    ],
    [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH],
    b"otp-7781",
    hashes.SHA256(),
))
