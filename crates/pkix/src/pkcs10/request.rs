//! A received CertificationRequest (RFC 2986 §4.2) whose self-signature —
//! the requester's proof of possession of the key (§3, step 4) — has been
//! verified, with what SCEP responders, EST servers and the RA read of it.
//!
//! ```text
//! CertificationRequest ::= SEQUENCE {
//!      certificationRequestInfo CertificationRequestInfo,
//!      signatureAlgorithm AlgorithmIdentifier{{ SignatureAlgorithms }},
//!      signature          BIT STRING
//! }
//! ```

use super::bounds::{check_shape, MAX_ATTRIBUTES, MAX_CSR};
use super::error::{Pkcs10Error, Result};
use super::extension_request::{self, Names};
use super::{challenge, oid};
use const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME;
use const_oid::db::rfc5912::{ID_EC_PUBLIC_KEY, RSA_ENCRYPTION};
use const_oid::ObjectIdentifier;
use der::asn1::{AnyRef, UintRef};
use der::{Decode, Encode, Reader, SliceReader};
use enrolkit_keys::{KeyError, KeyKind};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use std::net::IpAddr;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::request::CertReq;
use zeroize::Zeroizing;

/// A parsed PKCS#10 request whose self-signature has been verified.
///
/// The requested extensions, subjectAltName and extKeyUsage were decoded
/// when it was parsed, so the accessors cannot fail.
#[derive(Clone)]
pub struct CertificationRequest {
    der: Vec<u8>,
    request: CertReq,
    challenge_password: Option<Zeroizing<String>>,
    extensions: Vec<Extension>,
    san: Vec<GeneralName>,
    ekus: Vec<ObjectIdentifier>,
}

impl std::fmt::Debug for CertificationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificationRequest")
            .field("subject", &self.request.info.subject.to_string())
            .field("signature_algorithm", &self.request.algorithm.oid)
            .field(
                "challenge_password",
                &self.challenge_password.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "extensions",
                &self.extensions.iter().map(|e| e.extn_id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl CertificationRequest {
    /// Parse a DER request of at most [`MAX_CSR`] bytes and verify its
    /// self-signature — over the CertificationRequestInfo bytes as
    /// received — before any attribute is read.
    pub fn parse(der_bytes: &[u8]) -> Result<CertificationRequest> {
        if der_bytes.len() > MAX_CSR {
            return Err(Pkcs10Error::TooLarge {
                limit: MAX_CSR,
                actual: der_bytes.len(),
            });
        }
        check_shape(der_bytes)?;
        let request = CertReq::from_der(der_bytes).map_err(|e| Pkcs10Error::malformed("PKCS#10 request", e))?;
        verify(der_bytes, &request)?;
        if request.info.attributes.len() > MAX_ATTRIBUTES {
            return Err(Pkcs10Error::TooMany {
                what: "attributes",
                limit: MAX_ATTRIBUTES,
            });
        }
        let mut challenge_password = None;
        for a in request
            .info
            .attributes
            .iter()
            .filter(|a| a.oid == oid::CHALLENGE_PASSWORD)
        {
            if challenge_password.is_some() {
                return Err(Pkcs10Error::malformed("challengePassword", "attribute repeated"));
            }
            challenge_password = Some(challenge::decode(a)?);
        }
        let extensions = extension_request::collect(request.info.attributes.iter())?;
        let san = extension_request::subject_alt_name(&extensions)?;
        let ekus = extension_request::ext_key_usage(&extensions)?;
        Ok(CertificationRequest {
            der: der_bytes.to_vec(),
            request,
            challenge_password,
            extensions,
            san,
            ekus,
        })
    }

    /// The DER as received (what was signed, for records and verifier hooks).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The decoded request, for fields no accessor covers.
    pub fn request(&self) -> &CertReq {
        &self.request
    }

    /// The requested subject.
    pub fn subject(&self) -> &Name {
        &self.request.info.subject
    }

    /// The public key to certify.
    pub fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.request.info.public_key
    }

    /// The algorithm of the self-signature.
    pub fn signature_algorithm(&self) -> &AlgorithmIdentifierOwned {
        &self.request.algorithm
    }

    /// The challengePassword (a secret: an enrolment code or a channel binding).
    pub fn challenge_password(&self) -> Option<&Zeroizing<String>> {
        self.challenge_password.as_ref()
    }

    /// The attributes of the CertificationRequestInfo, as received.
    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.request.info.attributes.iter()
    }

    /// Every requested extension, in order (each at most once).
    pub fn extensions(&self) -> &[Extension] {
        &self.extensions
    }

    /// The requested extension with this id.
    pub fn extension(&self, id: ObjectIdentifier) -> Option<&Extension> {
        self.extensions.iter().find(|e| e.extn_id == id)
    }

    /// The general names of the requested subjectAltName.
    pub fn subject_alt_names(&self) -> &[GeneralName] {
        &self.san
    }

    /// The requested subjectAltName names, by kind.
    pub fn names(&self) -> Names {
        Names::from_general_names(&self.san)
    }

    /// dNSName entries of the requested subjectAltName.
    pub fn dns_names(&self) -> Vec<String> {
        self.names().dns
    }

    /// iPAddress entries (4 or 16 octets) of the requested subjectAltName.
    pub fn ip_addresses(&self) -> Vec<IpAddr> {
        self.names().ips
    }

    /// Key purposes of the requested extKeyUsage.
    pub fn requested_ekus(&self) -> &[ObjectIdentifier] {
        &self.ekus
    }

    /// The raw extnValue of the requested subjectAltName, for a byte-for-byte
    /// comparison with a current certificate (EST /simplereenroll).
    pub fn subject_alt_name_der(&self) -> Option<&[u8]> {
        self.extension(ID_CE_SUBJECT_ALT_NAME).map(|e| e.extn_value.as_bytes())
    }

    /// Kind and size of the public key; an error for keys enrolkit-keys
    /// cannot use (P-384, say: see [`CertificationRequest::public_key_algorithm`]).
    pub fn key_kind(&self) -> Result<KeyKind> {
        let spki_der = self
            .public_key()
            .to_der()
            .map_err(|e| Pkcs10Error::malformed("subjectPKInfo", e))?;
        let spki = spki::SubjectPublicKeyInfoRef::from_der(&spki_der)
            .map_err(|e| Pkcs10Error::malformed("subjectPKInfo", e))?;
        Ok(enrolkit_keys::public_key_kind(&spki)?)
    }

    /// The public key algorithm OID and, for an EC key, its named curve.
    pub fn public_key_algorithm(&self) -> (ObjectIdentifier, Option<ObjectIdentifier>) {
        public_key_algorithm(self.public_key())
    }

    /// Modulus size in bits of an RSA public key (`None` for other keys).
    pub fn rsa_bits(&self) -> Option<u32> {
        rsa_bits(self.public_key())
    }
}

/// The algorithm OID of `spki` and, for an EC key, its named curve.
pub fn public_key_algorithm(spki: &SubjectPublicKeyInfoOwned) -> (ObjectIdentifier, Option<ObjectIdentifier>) {
    let alg = &spki.algorithm;
    let curve = alg
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    (alg.oid, curve.filter(|_| alg.oid == ID_EC_PUBLIC_KEY))
}

/// Modulus size in bits of the RSA key in `spki` (`None` for other keys).
pub fn rsa_bits(spki: &SubjectPublicKeyInfoOwned) -> Option<u32> {
    if spki.algorithm.oid != RSA_ENCRYPTION {
        return None;
    }
    rsa_modulus_bits(spki.subject_public_key.as_bytes()?)
}

/// Modulus size in bits of a DER RSAPublicKey (RFC 8017 A.1.1), read
/// without loading the key: aws-lc refuses the small keys a policy wants
/// to name in its refusal.
///
/// ```text
/// RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
/// ```
pub fn rsa_modulus_bits(der_bytes: &[u8]) -> Option<u32> {
    #[derive(der::Sequence)]
    struct RsaPublicKey<'a> {
        modulus: UintRef<'a>,
        #[allow(dead_code)]
        public_exponent: UintRef<'a>,
    }
    let key = RsaPublicKey::from_der(der_bytes).ok()?;
    let m = key.modulus.as_bytes();
    let first = *m.first()?;
    let len = u32::try_from(m.len()).ok()?;
    len.checked_mul(8)?.checked_sub(first.leading_zeros())
}

/// Verify the self-signature over the CertificationRequestInfo as received.
fn verify(der_bytes: &[u8], request: &CertReq) -> Result<()> {
    let malformed = |e: der::Error| Pkcs10Error::malformed("PKCS#10 request", e);
    let mut outer = SliceReader::new(der_bytes).map_err(malformed)?;
    let header = der::Header::decode(&mut outer).map_err(malformed)?;
    let mut inner = SliceReader::new(outer.read_slice(header.length).map_err(malformed)?).map_err(malformed)?;
    let info = AnyRef::decode(&mut inner).map_err(malformed)?;
    let info_der = info.to_der().map_err(malformed)?;
    let spki_der = request.info.public_key.to_der().map_err(malformed)?;
    let spki = spki::SubjectPublicKeyInfoRef::from_der(&spki_der).map_err(malformed)?;
    let sig = request
        .signature
        .as_bytes()
        .ok_or_else(|| Pkcs10Error::malformed("PKCS#10 request", "signature BIT STRING has unused bits"))?;
    let alg = &request.algorithm.oid;
    enrolkit_keys::verify_certificate_signature(&spki, alg, &info_der, sig).map_err(|e| match e {
        KeyError::BadSignature => Pkcs10Error::BadSignature,
        KeyError::UnsupportedAlgorithm(a) => Pkcs10Error::UnsupportedAlgorithm {
            what: "CSR signature algorithm",
            oid: a.oid().to_string(),
        },
        KeyError::UnsupportedKey(_) => Pkcs10Error::UnsupportedAlgorithm {
            what: "CSR signature algorithm",
            oid: alg.to_string(),
        },
        other => Pkcs10Error::Key(other),
    })
}
