"""Shared helpers for the SCEP test-vector scripts (asn1crypto + cryptography).

Nothing here comes from the Rust project: it is an independent encoder /
decoder used only to build and describe test vectors.
"""
import hashlib

from asn1crypto import algos, cms, core, x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

# SCEP attribute OIDs: RFC 8894 section 3.2.1 (id-attributes = 2.16.840.1.113733.1.9)
OID_MESSAGE_TYPE = "2.16.840.1.113733.1.9.2"
OID_PKI_STATUS = "2.16.840.1.113733.1.9.3"
OID_FAIL_INFO = "2.16.840.1.113733.1.9.4"
OID_SENDER_NONCE = "2.16.840.1.113733.1.9.5"
OID_RECIPIENT_NONCE = "2.16.840.1.113733.1.9.6"
OID_TRANSACTION_ID = "2.16.840.1.113733.1.9.7"
# RFC 8894 ASN.1: id-scep OBJECT IDENTIFIER ::= { id-pkix 24 }
#                 id-scep-failInfoText OBJECT IDENTIFIER ::= { id-scep 1 }
OID_FAIL_INFO_TEXT = "1.3.6.1.5.5.7.24.1"

SCEP_ATTR_NAMES = {
    OID_MESSAGE_TYPE: "messageType",
    OID_PKI_STATUS: "pkiStatus",
    OID_FAIL_INFO: "failInfo",
    OID_SENDER_NONCE: "senderNonce",
    OID_RECIPIENT_NONCE: "recipientNonce",
    OID_TRANSACTION_ID: "transactionID",
    OID_FAIL_INFO_TEXT: "failInfoText",
}


def raw_attr(oid, value):
    """A CMSAttribute with an OID asn1crypto does not know; value is an
    asn1crypto object (PrintableString, OctetString, UTF8String)."""
    return cms.CMSAttribute({
        "type": cms.CMSAttributeType(oid),
        "values": [core.Any.load(value.dump())],
    })


def load_cert(path):
    data = open(path, "rb").read()
    if data.lstrip().startswith(b"-----"):
        from asn1crypto import pem
        _, _, data = pem.unarmor(data)
    return x509.Certificate.load(data)


def load_key(path):
    return serialization.load_pem_private_key(open(path, "rb").read(), password=None)


def sign_rsa_sha256(key, data):
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def build_signed_data(*, econtent, signer_cert, signer_key, attrs,
                      include_certs=None):
    """SignedData (version 1) with one SignerInfo (issuerAndSerialNumber),
    sha256 digest, sha256WithRSAEncryption signature.

    econtent: bytes to embed verbatim as eContent (OCTET STRING), or None for
    an absent eContent (messageDigest is then SHA-256 of the empty string,
    i.e. the digest of zero-length detached content)."""
    digest = hashlib.sha256(econtent if econtent is not None else b"").digest()
    signed_attrs = cms.CMSAttributes([
        cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
        cms.CMSAttribute({"type": "message_digest", "values": [digest]}),
    ] + list(attrs))
    # DER: the SET OF is sorted by asn1crypto when dumped; signature is over
    # the universal-SET encoding (RFC 5652 section 5.4).
    to_sign = signed_attrs.dump(force=True)
    signature = sign_rsa_sha256(signer_key, to_sign)

    encap = {"content_type": "data"}
    if econtent is not None:
        encap["content"] = core.OctetString(econtent)

    signer_info = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier({
            "issuer_and_serial_number": cms.IssuerAndSerialNumber({
                "issuer": signer_cert.issuer,
                "serial_number": signer_cert.serial_number,
            })
        }),
        "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
        "signed_attrs": signed_attrs,
        "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa"}),
        "signature": signature,
    })
    certs = include_certs if include_certs is not None else [signer_cert]
    sd = cms.SignedData({
        "version": "v1",
        "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
        "encap_content_info": encap,
        "certificates": [cms.CertificateChoices({"certificate": c}) for c in certs],
        "signer_infos": [signer_info],
    })
    return cms.ContentInfo({"content_type": "signed_data", "content": sd})


def get_attr(signer_info, oid):
    """Return the first value (as core.Any parsed) of a signed attribute."""
    for a in signer_info["signed_attrs"]:
        if a["type"].dotted == oid:
            return a["values"][0]
    return None
