//! PKCS#10 requests for EST: the client builds one that satisfies the
//! server's CSR attributes; the server parses one, checks proof of
//! possession first, then checks it against the attributes it asked for.

use crate::binding::{ChannelBinding, LinkedPassword};
use crate::csrattrs::{decode_bounded, rsa_modulus_bits, CsrAttrs, KeyRequirement};
use crate::error::{EstError, Result};
use crate::oid;
use der::asn1::{Any, AnyRef, BitString, Ia5String, ObjectIdentifier, OctetString, PrintableStringRef, SetOfVec};
use der::asn1::{BmpString, Utf8StringRef};
use der::{Decode, Encode, Reader, SliceReader, Tag, Tagged};
use enrolkit_keys::{DigestAlgorithm, KeyKind, SignatureAlgorithm, Signer};
use std::net::IpAddr;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectAltName};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, ExtensionReq, Version};
use zeroize::Zeroizing;

/// Largest DER CSR parsed.
pub const MAX_CSR: usize = 64 * 1024;
/// Longest challengePassword (PKCS#9 ub-challengePassword).
pub const MAX_CHALLENGE: usize = 255;

/// What goes into a certification request.
#[derive(Clone)]
pub struct CsrRequest {
    /// Requested subject (may be empty when the SAN identifies the subject).
    pub subject: Name,
    /// DNS names for the subjectAltName extension request.
    pub dns_names: Vec<String>,
    /// IP addresses for the subjectAltName extension request.
    pub ip_addresses: Vec<IpAddr>,
    /// Key purposes for an extKeyUsage extension request.
    pub ekus: Vec<ObjectIdentifier>,
    /// The challengePassword (a channel binding over EST, or an enrolment code).
    pub challenge_password: Option<Zeroizing<String>>,
    /// Digest of the CSR signature.
    pub digest: DigestAlgorithm,
}

impl std::fmt::Debug for CsrRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsrRequest")
            .field("subject", &self.subject.to_string())
            .field("dns_names", &self.dns_names)
            .field("ip_addresses", &self.ip_addresses)
            .field("ekus", &self.ekus)
            .field(
                "challenge_password",
                &self.challenge_password.as_ref().map(|_| "<redacted>"),
            )
            .field("digest", &self.digest)
            .finish()
    }
}

impl CsrRequest {
    /// A request for `subject`, signed with SHA-256, with nothing else.
    pub fn new(subject: Name) -> CsrRequest {
        CsrRequest {
            subject,
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            ekus: Vec::new(),
            challenge_password: None,
            digest: DigestAlgorithm::Sha256,
        }
    }

    /// Adjust the request to what `attrs` asks for:
    ///
    /// - adds the requested key purposes;
    /// - when a challengePassword is requested, sets it to the channel
    ///   binding (RFC 7030 §3.5); without a binding, a password already set
    ///   is kept (an enrolment code), and with neither it is an error;
    /// - when the subject is empty, takes the valued RDNs of an RFC 9908
    ///   template, and adds the DNS names and IP addresses of a requested
    ///   subjectAltName value;
    /// - takes the digest of a requested signature algorithm.
    ///
    /// The key requirement is not the request's to meet: see [`check_key`].
    pub fn satisfy(&mut self, attrs: &CsrAttrs, channel_binding: Option<&ChannelBinding>) -> Result<()> {
        let template = attrs.template()?;
        for eku in attrs.requested_ekus() {
            if !self.ekus.contains(&eku) {
                self.ekus.push(eku);
            }
        }
        if attrs.challenge_password_requested() {
            match channel_binding {
                Some(b) => self.challenge_password = Some(b.challenge_password()),
                None if self.challenge_password.is_some() => {}
                None => {
                    return Err(EstError::unsatisfied(
                        "a challengePassword is requested but there is no channel binding or password to put in it",
                    ))
                }
            }
        }
        if self.subject.0.is_empty() {
            if let Some(name) = template.as_ref().map(|t| t.subject_name()).transpose()?.flatten() {
                self.subject = name;
            }
        }
        for ext in attrs.requested_extensions() {
            if ext.extn_id != oid::SUBJECT_ALT_NAME {
                continue;
            }
            let Some(value) = ext.extn_value else { continue };
            let Ok(san) = decode_bounded::<SubjectAltName>(value.as_bytes()) else {
                continue;
            };
            for g in san.0 {
                match g {
                    GeneralName::DnsName(d) if !d.as_str().is_empty() => {
                        let d = d.to_string();
                        if !self.dns_names.contains(&d) {
                            self.dns_names.push(d);
                        }
                    }
                    GeneralName::IpAddress(ip) => {
                        if let Some(ip) = ip_from_octets(ip.as_bytes()) {
                            if !self.ip_addresses.contains(&ip) {
                                self.ip_addresses.push(ip);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        if let Some(alg) = attrs.signature_algorithm() {
            self.digest = digest_of(&alg)?;
        }
        Ok(())
    }
}

/// The digest a signature algorithm OID implies, if enrolkit-keys has it.
fn digest_of(alg: &ObjectIdentifier) -> Result<DigestAlgorithm> {
    match *alg {
        oid::SHA256_WITH_RSA | oid::ECDSA_WITH_SHA256 => Ok(DigestAlgorithm::Sha256),
        oid::SHA512_WITH_RSA | oid::ECDSA_WITH_SHA512 => Ok(DigestAlgorithm::Sha512),
        other => Err(EstError::UnsupportedAlgorithm {
            what: "CSR signature algorithm",
            oid: other.to_string(),
        }),
    }
}

/// The signature algorithm for a key kind and digest.
fn signature_algorithm_for(signer: &dyn Signer, digest: DigestAlgorithm) -> Result<SignatureAlgorithm> {
    let alg = match signer.kind() {
        KeyKind::Rsa(_) => SignatureAlgorithm::rsa_with(digest),
        KeyKind::EcP256 if digest == DigestAlgorithm::Sha256 => SignatureAlgorithm::EcdsaP256Sha256,
        KeyKind::EcP256 => {
            return Err(EstError::UnsupportedAlgorithm {
                what: "signature",
                oid: format!("ECDSA P-256 with {digest:?}"),
            })
        }
    };
    if !signer.supports(alg) {
        return Err(EstError::UnsupportedAlgorithm {
            what: "signature",
            oid: format!("{alg:?} (not available for this key)"),
        });
    }
    Ok(alg)
}

/// Build and sign a DER PKCS#10 request.
///
/// The challengePassword is a PrintableString when it fits (base64 does),
/// else a UTF8String; the extensionRequest carries a subjectAltName and an
/// extKeyUsage when there is something to put in them.
pub fn build_csr(signer: &dyn Signer, req: &CsrRequest) -> Result<Vec<u8>> {
    let mut attrs = Vec::new();
    if let Some(pw) = &req.challenge_password {
        if pw.is_empty() || pw.len() > MAX_CHALLENGE {
            return Err(EstError::malformed(
                "challengePassword",
                format!("must be 1 to {MAX_CHALLENGE} bytes"),
            ));
        }
        let value = match PrintableStringRef::new(pw.as_str()) {
            Ok(p) => Any::encode_from(&p)?,
            Err(_) => Any::encode_from(&Utf8StringRef::new(pw.as_str())?)?,
        };
        attrs.push(Attribute {
            oid: oid::CHALLENGE_PASSWORD,
            values: SetOfVec::try_from(vec![value])?,
        });
    }
    let mut exts = Vec::new();
    if !req.dns_names.is_empty() || !req.ip_addresses.is_empty() {
        let mut names = Vec::new();
        for d in &req.dns_names {
            names.push(GeneralName::DnsName(Ia5String::new(d)?));
        }
        for ip in &req.ip_addresses {
            let octets = match ip {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            names.push(GeneralName::IpAddress(OctetString::new(octets)?));
        }
        exts.push(Extension {
            extn_id: oid::SUBJECT_ALT_NAME,
            critical: req.subject.0.is_empty(),
            extn_value: OctetString::new(SubjectAltName(names).to_der()?)?,
        });
    }
    if !req.ekus.is_empty() {
        exts.push(Extension {
            extn_id: oid::EXT_KEY_USAGE,
            critical: false,
            extn_value: OctetString::new(ExtendedKeyUsage(req.ekus.clone()).to_der()?)?,
        });
    }
    if !exts.is_empty() {
        attrs.push(Attribute {
            oid: oid::EXTENSION_REQUEST,
            values: SetOfVec::try_from(vec![Any::encode_from(&ExtensionReq(exts))?])?,
        });
    }
    let info = CertReqInfo {
        version: Version::V1,
        subject: req.subject.clone(),
        public_key: signer.public_key().clone(),
        attributes: SetOfVec::try_from(attrs)?,
    };
    let alg = signature_algorithm_for(signer, req.digest)?;
    let signature = signer.sign(alg, &info.to_der()?)?;
    let csr = CertReq {
        info,
        algorithm: alg.algorithm_identifier(),
        signature: BitString::from_bytes(&signature)?,
    };
    Ok(csr.to_der()?)
}

/// Whether a key of `kind` meets the key requirement of `attrs` (RFC 9908):
/// the right type, the right curve, the right RSA modulus size.
pub fn check_key(attrs: &CsrAttrs, kind: KeyKind) -> Result<()> {
    let Some(req) = attrs.key_requirement() else {
        return Ok(());
    };
    let (alg, curve, bits) = match kind {
        KeyKind::Rsa(bits) => (oid::RSA_ENCRYPTION, None, u32::try_from(bits).ok()),
        KeyKind::EcP256 => (oid::EC_PUBLIC_KEY, Some(oid::SECP256R1), None),
    };
    key_meets(&req, alg, curve, bits)
}

fn key_meets(
    req: &KeyRequirement,
    alg: ObjectIdentifier,
    curve: Option<ObjectIdentifier>,
    bits: Option<u32>,
) -> Result<()> {
    let have = describe_key(alg, curve, bits);
    match req {
        KeyRequirement::Ec { curve: want } => {
            if alg != oid::EC_PUBLIC_KEY || curve != Some(*want) {
                return Err(EstError::unsatisfied(format!(
                    "an EC key on {} is required, the key is {have}",
                    curve_name(want)
                )));
            }
        }
        KeyRequirement::Rsa { bits: want } => {
            let size_ok = want.is_none() || *want == bits;
            if alg != oid::RSA_ENCRYPTION || !size_ok {
                let want = want.map(|b| format!("RSA-{b}")).unwrap_or_else(|| "RSA".into());
                return Err(EstError::unsatisfied(format!(
                    "an {want} key is required, the key is {have}"
                )));
            }
        }
    }
    Ok(())
}

fn curve_name(c: &ObjectIdentifier) -> String {
    match *c {
        oid::SECP256R1 => "P-256".into(),
        oid::SECP384R1 => "P-384".into(),
        oid::SECP521R1 => "P-521".into(),
        other => other.to_string(),
    }
}

fn describe_key(alg: ObjectIdentifier, curve: Option<ObjectIdentifier>, bits: Option<u32>) -> String {
    match (alg, curve, bits) {
        (oid::RSA_ENCRYPTION, _, Some(b)) => format!("RSA-{b}"),
        (oid::RSA_ENCRYPTION, _, None) => "RSA".into(),
        (oid::EC_PUBLIC_KEY, Some(c), _) => format!("EC on {}", curve_name(&c)),
        (other, _, _) => other.to_string(),
    }
}

/// A parsed PKCS#10 request whose self-signature has been verified.
#[derive(Clone)]
pub struct ParsedCsr {
    /// The DER as received.
    pub der: Vec<u8>,
    /// The decoded request.
    pub request: CertReq,
    /// The challengePassword attribute (a secret).
    pub challenge_password: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for ParsedCsr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedCsr")
            .field("subject", &self.request.info.subject.to_string())
            .field("signature_algorithm", &self.request.algorithm.oid)
            .field(
                "challenge_password",
                &self.challenge_password.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl ParsedCsr {
    /// Parse a DER PKCS#10 request (at most [`MAX_CSR`] bytes) and verify its
    /// self-signature — over the CertificationRequestInfo bytes as received —
    /// before any attribute is read.
    pub fn parse(der_bytes: &[u8]) -> Result<ParsedCsr> {
        if der_bytes.len() > MAX_CSR {
            return Err(EstError::TooLarge {
                what: "PKCS#10 request",
                limit: MAX_CSR,
            });
        }
        enrolkit_pkix::ber::check(der_bytes, &crate::csrattrs::BER_LIMITS)?;
        let request = CertReq::from_der(der_bytes).map_err(|e| EstError::malformed("PKCS#10 request", e))?;
        verify(der_bytes, &request)?;
        let mut challenge_password = None;
        for a in request
            .info
            .attributes
            .iter()
            .filter(|a| a.oid == oid::CHALLENGE_PASSWORD)
        {
            if challenge_password.is_some() {
                return Err(EstError::malformed("challengePassword", "attribute repeated"));
            }
            let mut values = a.values.iter();
            let (Some(v), None) = (values.next(), values.next()) else {
                return Err(EstError::malformed("challengePassword", "must have exactly one value"));
            };
            challenge_password = Some(directory_string(v)?);
        }
        let csr = ParsedCsr {
            der: der_bytes.to_vec(),
            request,
            challenge_password,
        };
        csr.extensions()?;
        Ok(csr)
    }

    /// The requested subject.
    pub fn subject(&self) -> &Name {
        &self.request.info.subject
    }

    /// The extensions requested in extensionRequest attributes. Errors when
    /// one does not decode or an extension is requested twice.
    pub fn extensions(&self) -> Result<Vec<Extension>> {
        let mut out: Vec<Extension> = Vec::new();
        for a in self
            .request
            .info
            .attributes
            .iter()
            .filter(|a| a.oid == oid::EXTENSION_REQUEST)
        {
            for v in a.values.iter() {
                let req: ExtensionReq = v.decode_as().map_err(|e| EstError::malformed("extensionRequest", e))?;
                for e in req.0 {
                    if out.iter().any(|o| o.extn_id == e.extn_id) {
                        return Err(EstError::malformed(
                            "extensionRequest",
                            format!("extension {} requested twice", e.extn_id),
                        ));
                    }
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    fn extension(&self, id: ObjectIdentifier) -> Option<Extension> {
        self.extensions().ok()?.into_iter().find(|e| e.extn_id == id)
    }

    fn san(&self) -> Vec<GeneralName> {
        self.extension(oid::SUBJECT_ALT_NAME)
            .and_then(|e| decode_bounded::<SubjectAltName>(e.extn_value.as_bytes()).ok())
            .map(|s| s.0)
            .unwrap_or_default()
    }

    /// DNS names of the requested subjectAltName.
    pub fn dns_names(&self) -> Vec<String> {
        self.san()
            .into_iter()
            .filter_map(|g| match g {
                GeneralName::DnsName(d) => Some(d.to_string()),
                _ => None,
            })
            .collect()
    }

    /// IP addresses of the requested subjectAltName.
    pub fn ip_addresses(&self) -> Vec<IpAddr> {
        self.san()
            .into_iter()
            .filter_map(|g| match g {
                GeneralName::IpAddress(ip) => ip_from_octets(ip.as_bytes()),
                _ => None,
            })
            .collect()
    }

    /// Key purposes of the requested extKeyUsage.
    pub fn requested_ekus(&self) -> Vec<ObjectIdentifier> {
        self.extension(oid::EXT_KEY_USAGE)
            .and_then(|e| decode_bounded::<ExtendedKeyUsage>(e.extn_value.as_bytes()).ok())
            .map(|k| k.0)
            .unwrap_or_default()
    }

    /// The raw extnValue of the requested subjectAltName, for the byte-for-byte
    /// comparison with the current certificate on /simplereenroll.
    pub fn subject_alt_name_der(&self) -> Option<Vec<u8>> {
        self.extension(oid::SUBJECT_ALT_NAME)
            .map(|e| e.extn_value.as_bytes().to_vec())
    }

    /// Kind and size of the public key (errors for keys enrolkit-keys does not support).
    pub fn public_key_kind(&self) -> Result<KeyKind> {
        let spki_der = self.request.info.public_key.to_der()?;
        let spki = spki::SubjectPublicKeyInfoRef::from_der(&spki_der)?;
        Ok(enrolkit_keys::public_key_kind(&spki)?)
    }

    /// The public key algorithm OID and, for EC keys, the named curve.
    pub fn public_key_algorithm(&self) -> (ObjectIdentifier, Option<ObjectIdentifier>) {
        let alg = &self.request.info.public_key.algorithm;
        let curve = alg
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        (alg.oid, curve.filter(|_| alg.oid == oid::EC_PUBLIC_KEY))
    }

    /// Modulus size of an RSA public key.
    pub fn rsa_bits(&self) -> Option<u32> {
        let pk = &self.request.info.public_key;
        if pk.algorithm.oid != oid::RSA_ENCRYPTION {
            return None;
        }
        rsa_modulus_bits(pk.subject_public_key.as_bytes()?)
    }
}

/// Verify the self-signature over the CertificationRequestInfo as received.
fn verify(der_bytes: &[u8], request: &CertReq) -> Result<()> {
    let mut outer = SliceReader::new(der_bytes)?;
    let header = der::Header::decode(&mut outer)?;
    let mut inner = SliceReader::new(outer.read_slice(header.length)?)?;
    let info = AnyRef::decode(&mut inner)?;
    let info_der = info.to_der()?;
    let spki_der = request.info.public_key.to_der()?;
    let spki = spki::SubjectPublicKeyInfoRef::from_der(&spki_der)?;
    let sig = request
        .signature
        .as_bytes()
        .ok_or_else(|| EstError::malformed("PKCS#10 request", "signature BIT STRING has unused bits"))?;
    // The certificate verifier knows P-384 and SHA-384 too; what it does not
    // (ECDSA with SHA-512, say) the older verifier still checks.
    let checked = match enrolkit_keys::verify_certificate_signature(&spki, &request.algorithm.oid, &info_der, sig) {
        Err(enrolkit_keys::KeyError::UnsupportedKey(_)) => {
            match SignatureAlgorithm::from_oids(&request.algorithm.oid, None) {
                Some(alg) => enrolkit_keys::verify(&spki, alg, &info_der, sig),
                None => Err(enrolkit_keys::KeyError::UnsupportedKey(
                    request.algorithm.oid.to_string(),
                )),
            }
        }
        other => other,
    };
    checked.map_err(|e| match e {
        enrolkit_keys::KeyError::BadSignature => EstError::BadSignature,
        enrolkit_keys::KeyError::UnsupportedAlgorithm(a) => EstError::UnsupportedAlgorithm {
            what: "CSR signature algorithm",
            oid: a.oid().to_string(),
        },
        enrolkit_keys::KeyError::UnsupportedKey(_) => EstError::UnsupportedAlgorithm {
            what: "CSR signature algorithm",
            oid: request.algorithm.oid.to_string(),
        },
        other => EstError::Key(other),
    })
}

/// Text of a DirectoryString-like value (challengePassword).
fn directory_string(v: &Any) -> Result<Zeroizing<String>> {
    let bad = |reason: &str| EstError::malformed("challengePassword", reason);
    let s = match v.tag() {
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String | Tag::VisibleString => {
            Zeroizing::new(std::str::from_utf8(v.value()).map_err(|_| bad("not UTF-8"))?.to_owned())
        }
        // T.61 in practice carries Latin-1.
        Tag::TeletexString => Zeroizing::new(v.value().iter().map(|b| char::from(*b)).collect()),
        Tag::BmpString => {
            let b: BmpString = v.decode_as().map_err(|_| bad("bad BMPString"))?;
            Zeroizing::new(b.to_string())
        }
        t => return Err(bad(&format!("unexpected tag {t}"))),
    };
    if s.is_empty() || s.chars().count() > MAX_CHALLENGE {
        return Err(bad("must be 1 to 255 characters"));
    }
    Ok(s)
}

/// An IP address from a subjectAltName iPAddress (4 or 16 octets; a
/// mask-carrying or other length is `None`).
pub fn ip_from_octets(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
        _ => None,
    }
}

/// The server's check that a CSR follows the CSR attributes it was given
/// (RFC 7030 §4.5, RFC 9908): a challengePassword when one was requested,
/// every requested extension (and every requested key purpose), the key
/// type, curve or size, the signature algorithm when one was named, and the
/// subject RDNs of a template (with their values, where it gives them).
/// The error names the first requirement not met.
///
/// Whether the challengePassword carries the right channel binding is a
/// separate check: [`ChannelBinding::matches`].
pub fn check_satisfies(attrs: &CsrAttrs, csr: &ParsedCsr) -> Result<()> {
    let template = attrs.template()?;
    if attrs.challenge_password_requested() && csr.challenge_password.is_none() {
        return Err(EstError::unsatisfied("a challengePassword is required"));
    }
    let exts = csr.extensions()?;
    for want in attrs.requested_extensions() {
        if !exts.iter().any(|e| e.extn_id == want.extn_id) {
            return Err(EstError::unsatisfied(format!("extension {} is required", want.extn_id)));
        }
    }
    let have_ekus = csr.requested_ekus();
    for eku in attrs.requested_ekus() {
        if !have_ekus.contains(&eku) {
            return Err(EstError::unsatisfied(format!("extended key usage {eku} is required")));
        }
    }
    if let Some(req) = attrs.key_requirement() {
        let (alg, curve) = csr.public_key_algorithm();
        key_meets(&req, alg, curve, csr.rsa_bits())?;
    }
    if let Some(alg) = attrs.signature_algorithm() {
        if csr.request.algorithm.oid != alg {
            return Err(EstError::unsatisfied(format!(
                "signature algorithm {alg} is required, the CSR is signed with {}",
                csr.request.algorithm.oid
            )));
        }
    }
    if let Some(t) = template {
        for rdn in t.subject.iter().flatten() {
            for want in rdn.iter() {
                let found = csr
                    .subject()
                    .0
                    .iter()
                    .flat_map(|r| r.0.iter())
                    .filter(|atv| atv.oid == want.oid)
                    .any(|atv| want.value.as_ref().is_none_or(|v| same_text(v, &atv.value)));
                if !found {
                    let what = match &want.value {
                        Some(v) => format!(
                            "subject attribute {} with the value given in the template ({})",
                            want.oid,
                            text(v).unwrap_or_default()
                        ),
                        None => format!("subject attribute {} is required", want.oid),
                    };
                    return Err(EstError::unsatisfied(what));
                }
            }
        }
    }
    Ok(())
}

/// A string attribute value as text.
fn text(v: &Any) -> Option<String> {
    match v.tag() {
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String | Tag::VisibleString | Tag::TeletexString => {
            std::str::from_utf8(v.value()).ok().map(str::to_owned)
        }
        Tag::BmpString => v.decode_as::<BmpString>().ok().map(|b| b.to_string()),
        _ => None,
    }
}

/// Equal values, or equal text in different string types.
fn same_text(a: &Any, b: &Any) -> bool {
    a == b || matches!((text(a), text(b)), (Some(x), Some(y)) if x == y)
}
