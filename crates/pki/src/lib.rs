//! # enrolkit-pki
//!
//! A locally significant CA for SCEP and EST: create a root (and optionally
//! an issuing intermediate) and a separate RA certificate, issue end-entity
//! certificates from CSRs under a [`Profile`], and sign CRLs. Keys sign
//! through [`enrolkit_keys::Signer`], so a PKCS#11 token can hold them.
//!
//! No I/O and no clock: time and randomness are handed in. Storage of what
//! was issued and revoked is the server's job; this crate makes the objects.
#![forbid(unsafe_code)]

use const_oid::db::rfc5280 as ids;
use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::{BitString, Ia5String, OctetString};
use der::Encode;
use enrolkit_keys::{DigestAlgorithm, KeyKind, SignatureAlgorithm, Signer};
use enrolkit_pkix::pkcs10::{CertificationRequest, Pkcs10Error};
use rand_core::{CryptoRng, RngCore};
use spki::SubjectPublicKeyInfoOwned;
use std::time::{Duration, SystemTime};
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints, CrlDistributionPoints,
    CrlNumber, CrlReason, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate};

/// id-kp-cmcRA (RFC 6402 §2.10): the extended key usage of an RA certificate.
pub const ID_KP_CMC_RA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.28");

pub use x509_cert::ext::pkix::KeyUsages as KeyUsageBits;

/// Errors of certificate and CRL construction.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// DER encoding or decoding failed.
    #[error("encoding: {0}")]
    Encoding(#[from] der::Error),
    /// The signing key failed or cannot do the algorithm.
    #[error(transparent)]
    Key(#[from] enrolkit_keys::KeyError),
    /// A time is outside what X.509 can express.
    #[error("invalid time: {0}")]
    Time(String),
    /// The CSR asks for something the profile refuses.
    #[error("refused by profile: {0}")]
    Refused(String),
    /// The CSR's self-signature does not verify (no proof of possession).
    #[error("CSR signature does not verify")]
    BadCsrSignature,
    /// The CSR does not parse, or is outside the bounds of the PKCS#10 parser.
    #[error("PKCS#10 request: {0}")]
    Csr(Pkcs10Error),
}

/// Result alias.
pub type Result<T, E = PkiError> = std::result::Result<T, E>;

/// Bytes of randomness in a serial number: 127 bits after clearing the sign
/// bit, well above RFC 5280/CA-B Forum's 64.
pub const SERIAL_BYTES: usize = 16;

/// A fresh random positive serial number (never zero, never negative).
pub fn random_serial(rng: &mut (impl RngCore + CryptoRng)) -> Result<SerialNumber> {
    let mut b = [0u8; SERIAL_BYTES];
    rng.fill_bytes(&mut b);
    b[0] &= 0x7f;
    b[0] |= 0x40;
    Ok(SerialNumber::new(&b)?)
}

fn time(t: SystemTime) -> Result<Time> {
    Time::try_from(t).map_err(|e| PkiError::Time(e.to_string()))
}

fn signature_algorithm(signer: &dyn Signer) -> SignatureAlgorithm {
    match signer.kind() {
        KeyKind::EcP256 => SignatureAlgorithm::EcdsaP256Sha256,
        KeyKind::Rsa(_) => SignatureAlgorithm::RsaPkcs1Sha256,
    }
}

/// RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits (the
/// identifier is not a security property; SHA-1 keeps it interoperable).
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    DigestAlgorithm::Sha1.digest(spki.subject_public_key.raw_bytes())
}

fn ext<T: AssociatedOid + Encode>(value: &T, critical: bool) -> Result<Extension> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

/// What to do with the subjectAltName a CSR requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SanPolicy {
    /// Copy the requested DNS names.
    Copy,
    /// Copy only requested DNS names ending with one of these suffixes; refuse the CSR otherwise.
    Filter(Vec<String>),
    /// Ignore the request and use these DNS names.
    Replace(Vec<String>),
}

/// Whether DNS name `name` is under `suffix` on whole labels, without case
/// and ignoring a final dot: `".example.com"` admits names below
/// example.com only, `"example.com"` the name itself too; neither admits
/// `evilexample.com`.
pub fn dns_under(name: &str, suffix: &str) -> bool {
    let key = |n: &str| n.trim_end_matches('.').to_ascii_lowercase();
    let name = key(name);
    let below_only = suffix.starts_with('.');
    let suffix = key(suffix.trim_start_matches('.'));
    if suffix.is_empty() || name.is_empty() {
        return false;
    }
    if name == suffix {
        return !below_only;
    }
    name.strip_suffix(&suffix)
        .is_some_and(|head| head.ends_with('.') && head.len() > 1)
}

/// The certificate profile an issuance follows.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Lifetime of issued certificates.
    pub validity: Duration,
    /// Backdating of notBefore, for devices with slightly wrong clocks.
    pub backdate: Duration,
    /// keyUsage bits.
    pub key_usage: Vec<KeyUsages>,
    /// extendedKeyUsage OIDs (empty: no extension).
    pub extended_key_usage: Vec<ObjectIdentifier>,
    /// SAN handling.
    pub san: SanPolicy,
    /// CRL distribution point URL written into certificates.
    pub crl_url: Option<String>,
    /// OCSP responder URL written into the AIA extension.
    pub ocsp_url: Option<String>,
}

impl Default for Profile {
    /// A TLS client/server device profile: one year, digitalSignature + keyEncipherment, clientAuth.
    fn default() -> Self {
        Profile {
            validity: Duration::from_secs(365 * 86400),
            backdate: Duration::from_secs(300),
            key_usage: vec![KeyUsages::DigitalSignature, KeyUsages::KeyEncipherment],
            extended_key_usage: vec![ids::ID_KP_CLIENT_AUTH],
            san: SanPolicy::Copy,
            crl_url: None,
            ocsp_url: None,
        }
    }
}

/// What an issuance needs from a request: the subject, its key, the DNS names asked for.
#[derive(Debug, Clone)]
pub struct Request {
    /// Subject name.
    pub subject: Name,
    /// Public key.
    pub public_key: SubjectPublicKeyInfoOwned,
    /// Requested DNS names (from the extensionRequest).
    pub dns_names: Vec<String>,
    /// Requested IP addresses (copied under [`SanPolicy::Copy`] only).
    pub ip_addresses: Vec<std::net::IpAddr>,
}

impl Request {
    /// From a DER PKCS#10 request, after checking its self-signature
    /// (enrolkit-pkix's parser: bounded, proof of possession first).
    pub fn from_csr_der(der_bytes: &[u8]) -> Result<Self> {
        let csr = CertificationRequest::parse(der_bytes).map_err(|e| match e {
            Pkcs10Error::BadSignature => PkiError::BadCsrSignature,
            other => PkiError::Csr(other),
        })?;
        Ok(Self::from_csr(&csr))
    }

    /// What issuance reads of a parsed (and so verified) request.
    pub fn from_csr(csr: &CertificationRequest) -> Self {
        Request {
            subject: csr.subject().clone(),
            public_key: csr.public_key().clone(),
            dns_names: csr.dns_names(),
            ip_addresses: csr.ip_addresses(),
        }
    }
}

/// A CA: its certificate, its key, and the certificates above it.
pub struct Authority {
    /// The CA certificate.
    pub certificate: Certificate,
    /// The CA key.
    pub key: Box<dyn Signer>,
    /// Certificates from the issuer of `certificate` up to the root (empty for a root).
    pub chain: Vec<Certificate>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("subject", &self.certificate.tbs_certificate.subject.to_string())
            .finish()
    }
}

struct TbsParams<'a> {
    subject: &'a Name,
    public_key: &'a SubjectPublicKeyInfoOwned,
    not_before: SystemTime,
    not_after: SystemTime,
    extensions: Vec<Extension>,
}

fn sign_tbs(
    issuer: &Name,
    issuer_key: &dyn Signer,
    issuer_spki: &SubjectPublicKeyInfoOwned,
    p: TbsParams<'_>,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Certificate> {
    let alg = signature_algorithm(issuer_key);
    let mut extensions = p.extensions;
    extensions.push(ext(
        &SubjectKeyIdentifier(OctetString::new(key_identifier(p.public_key))?),
        false,
    )?);
    if issuer_spki != p.public_key {
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(key_identifier(issuer_spki))?),
            ..Default::default()
        };
        extensions.push(ext(&aki, false)?);
    }
    let tbs = TbsCertificate {
        version: x509_cert::Version::V3,
        serial_number: random_serial(rng)?,
        signature: alg.algorithm_identifier(),
        issuer: issuer.clone(),
        validity: Validity {
            not_before: time(p.not_before)?,
            not_after: time(p.not_after)?,
        },
        subject: p.subject.clone(),
        subject_public_key_info: p.public_key.clone(),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let sig = issuer_key.sign(alg, &tbs.to_der()?)?;
    Ok(Certificate {
        tbs_certificate: tbs,
        signature_algorithm: alg.algorithm_identifier(),
        signature: BitString::from_bytes(&sig)?,
    })
}

fn ca_extensions(path_len: Option<u8>) -> Result<Vec<Extension>> {
    Ok(vec![
        ext(
            &BasicConstraints {
                ca: true,
                path_len_constraint: path_len,
            },
            true,
        )?,
        ext(
            &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign | KeyUsages::DigitalSignature),
            true,
        )?,
    ])
}

impl Authority {
    /// The signature algorithm this CA signs with (certificates, CRLs, OCSP
    /// responses): SHA-256 with the key's own scheme, so every object agrees.
    pub fn signature_algorithm(&self) -> SignatureAlgorithm {
        signature_algorithm(self.key.as_ref())
    }

    /// Create a self-signed root CA.
    pub fn new_root(
        key: Box<dyn Signer>,
        subject: Name,
        now: SystemTime,
        validity: Duration,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Self> {
        let spki = key.public_key().clone();
        let params = TbsParams {
            subject: &subject,
            public_key: &spki,
            not_before: now,
            not_after: now + validity,
            extensions: ca_extensions(None)?,
        };
        let certificate = sign_tbs(&subject, key.as_ref(), &spki, params, rng)?;
        Ok(Authority {
            certificate,
            key,
            chain: Vec::new(),
        })
    }

    /// Create an issuing intermediate CA under this one (pathLen 0).
    pub fn new_intermediate(
        &self,
        key: Box<dyn Signer>,
        subject: Name,
        now: SystemTime,
        validity: Duration,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Authority> {
        let spki = key.public_key().clone();
        let params = TbsParams {
            subject: &subject,
            public_key: &spki,
            not_before: now,
            not_after: now + validity,
            extensions: ca_extensions(Some(0))?,
        };
        let certificate = self.sign(params, rng)?;
        let mut chain = vec![self.certificate.clone()];
        chain.extend(self.chain.iter().cloned());
        Ok(Authority {
            certificate,
            key,
            chain,
        })
    }

    /// Certify an RA key for SCEP: not a CA, digitalSignature (CertRep
    /// signatures) and keyEncipherment (request envelopes), EKU id-kp-cmcRA. The RA's name
    /// is its own; it never appears as the issuer of end-entity certificates.
    pub fn certify_ra(
        &self,
        ra_key: &SubjectPublicKeyInfoOwned,
        subject: Name,
        now: SystemTime,
        validity: Duration,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Certificate> {
        let extensions = vec![
            ext(
                &BasicConstraints {
                    ca: false,
                    path_len_constraint: None,
                },
                true,
            )?,
            ext(
                &KeyUsage(KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment),
                true,
            )?,
            // id-kp-cmcRA (RFC 6402 §2.10): clients can tell this RA from
            // any other end-entity certificate of the same CA.
            ext(&ExtendedKeyUsage(vec![ID_KP_CMC_RA]), false)?,
        ];
        self.sign(
            TbsParams {
                subject: &subject,
                public_key: ra_key,
                not_before: now,
                not_after: now + validity,
                extensions,
            },
            rng,
        )
    }

    fn sign(&self, p: TbsParams<'_>, rng: &mut (impl RngCore + CryptoRng)) -> Result<Certificate> {
        let tbs = &self.certificate.tbs_certificate;
        sign_tbs(&tbs.subject, self.key.as_ref(), &tbs.subject_public_key_info, p, rng)
    }

    /// Issue an end-entity certificate for `req` under `profile`. The
    /// certificate never outlives the CA.
    pub fn issue(
        &self,
        req: &Request,
        profile: &Profile,
        now: SystemTime,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Certificate> {
        let ips: &[std::net::IpAddr] = match &profile.san {
            SanPolicy::Copy => &req.ip_addresses,
            SanPolicy::Filter(_) if !req.ip_addresses.is_empty() => {
                return Err(PkiError::Refused(
                    "IP addresses in subjectAltName are not allowed by this profile".into(),
                ))
            }
            _ => &[],
        };
        let dns: Vec<String> = match &profile.san {
            SanPolicy::Copy => req.dns_names.clone(),
            SanPolicy::Replace(names) => names.clone(),
            SanPolicy::Filter(suffixes) => {
                if let Some(bad) = req.dns_names.iter().find(|d| !suffixes.iter().any(|s| dns_under(d, s))) {
                    return Err(PkiError::Refused(format!(
                        "subjectAltName {bad} is outside the allowed domains"
                    )));
                }
                req.dns_names.clone()
            }
        };
        let mut extensions = vec![ext(
            &BasicConstraints {
                ca: false,
                path_len_constraint: None,
            },
            true,
        )?];
        if let Some((first, rest)) = profile.key_usage.split_first() {
            let set = rest.iter().fold(der::flagset::FlagSet::from(*first), |set, k| set | *k);
            extensions.push(ext(&KeyUsage(set), true)?);
        }
        if !profile.extended_key_usage.is_empty() {
            extensions.push(ext(&ExtendedKeyUsage(profile.extended_key_usage.clone()), false)?);
        }
        if !dns.is_empty() || !ips.is_empty() {
            let mut names = dns
                .iter()
                .map(|d| Ia5String::new(d).map(GeneralName::DnsName))
                .collect::<der::Result<Vec<_>>>()?;
            for ip in ips {
                let octets = match ip {
                    std::net::IpAddr::V4(a) => a.octets().to_vec(),
                    std::net::IpAddr::V6(a) => a.octets().to_vec(),
                };
                names.push(GeneralName::IpAddress(der::asn1::OctetString::new(octets)?));
            }
            // Critical when the subject is empty (RFC 5280 §4.2.1.6).
            extensions.push(ext(&SubjectAltName(names), req.subject.0.is_empty())?);
        }
        if let Some(url) = &profile.crl_url {
            let dp = DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![
                    GeneralName::UniformResourceIdentifier(Ia5String::new(url)?),
                ])),
                reasons: None,
                crl_issuer: None,
            };
            extensions.push(ext(&CrlDistributionPoints(vec![dp]), false)?);
        }
        if let Some(url) = &profile.ocsp_url {
            let ad = AccessDescription {
                access_method: const_oid::db::rfc5280::ID_AD_OCSP,
                access_location: GeneralName::UniformResourceIdentifier(Ia5String::new(url)?),
            };
            extensions.push(ext(&AuthorityInfoAccessSyntax(vec![ad]), false)?);
        }
        let ca_not_after = self.certificate.tbs_certificate.validity.not_after.to_system_time();
        let not_after = (now + profile.validity).min(ca_not_after);
        let params = TbsParams {
            subject: &req.subject,
            public_key: &req.public_key,
            not_before: now - profile.backdate,
            not_after,
            extensions,
        };
        self.sign(params, rng)
    }

    /// Sign a CRL listing `revoked` (serial, time, reason), valid from `now` until `now + next_update`.
    pub fn crl(
        &self,
        revoked: &[Revocation],
        crl_number: u64,
        now: SystemTime,
        next_update: Duration,
    ) -> Result<CertificateList> {
        let alg = signature_algorithm(self.key.as_ref());
        let entries = revoked
            .iter()
            .map(|r| {
                let exts = match r.reason {
                    Some(reason) => Some(vec![ext(&reason, false)?]),
                    None => None,
                };
                Ok(RevokedCert {
                    serial_number: r.serial.clone(),
                    revocation_date: time(r.time)?,
                    crl_entry_extensions: exts,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let tbs = &self.certificate.tbs_certificate;
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(key_identifier(&tbs.subject_public_key_info))?),
            ..Default::default()
        };
        let number = CrlNumber(der::asn1::Uint::new(&crl_number.to_be_bytes())?);
        let tbs_list = TbsCertList {
            version: x509_cert::Version::V2,
            signature: alg.algorithm_identifier(),
            issuer: tbs.subject.clone(),
            this_update: time(now)?,
            next_update: Some(time(now + next_update)?),
            revoked_certificates: if entries.is_empty() { None } else { Some(entries) },
            crl_extensions: Some(vec![ext(&aki, false)?, ext(&number, false)?]),
        };
        let sig = self.key.sign(alg, &tbs_list.to_der()?)?;
        Ok(CertificateList {
            tbs_cert_list: tbs_list,
            signature_algorithm: alg.algorithm_identifier(),
            signature: BitString::from_bytes(&sig)?,
        })
    }
}

/// One revoked certificate.
#[derive(Debug, Clone)]
pub struct Revocation {
    /// Its serial number.
    pub serial: SerialNumber,
    /// When it was revoked.
    pub time: SystemTime,
    /// Why, if stated.
    pub reason: Option<CrlReason>,
}
