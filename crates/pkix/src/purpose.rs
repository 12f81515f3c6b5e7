//! What a certificate may be used for: its extended key usage (RFC 5280
//! §4.2.1.12).
//!
//! "If the extension is present, then the certificate MUST only be used for
//! one of the purposes indicated." An absent extension puts no limit on
//! the purpose; `anyExtendedKeyUsage` (2.5.29.37.0) admits any purpose
//! except two that must be named explicitly:
//!
//! - [`Purpose::ScepRa`]: a SCEP client encrypts its request, and its
//!   one-time challenge, to the RA, so only a certificate issued *as* an RA
//!   may be one (id-kp-cmcRA, RFC 6402 §2.10, or Microsoft's Certificate
//!   Request Agent, which NDES RA certificates carry);
//! - [`Purpose::OcspSigning`]: RFC 6960 §4.2.2.2, a delegated responder's
//!   certificate "MUST ... include the value of id-kp-OCSPSigning in an
//!   extended key usage extension"; without that rule any certificate the
//!   CA ever issued (a device's own) could sign statuses for its siblings.

use const_oid::ObjectIdentifier;
use x509_cert::ext::pkix::ExtendedKeyUsage;

/// id-kp-serverAuth.
pub const ID_KP_SERVER_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");
/// id-kp-clientAuth.
pub const ID_KP_CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
/// id-kp-OCSPSigning.
pub const ID_KP_OCSP_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.9");
/// id-kp-cmcRA (RFC 6402 §2.10), which `mef`'s RA certificates carry.
pub const ID_KP_CMC_RA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.28");
/// Microsoft's Certificate Request Agent, which NDES RA certificates carry.
pub const MS_CERT_REQUEST_AGENT: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.20.2.1");
/// anyExtendedKeyUsage.
pub const ANY_EXTENDED_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37.0");

/// The use a certificate is validated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// A TLS server (id-kp-serverAuth).
    TlsServer,
    /// A TLS client (id-kp-clientAuth).
    TlsClient,
    /// A SCEP registration authority: request encryption and reply
    /// signing (id-kp-cmcRA or Microsoft's Certificate Request Agent;
    /// neither an absent extension nor anyExtendedKeyUsage suffices).
    ScepRa,
    /// An OCSP responder delegated by the CA (id-kp-OCSPSigning, present
    /// and named: neither an absent extension nor anyExtendedKeyUsage
    /// suffices).
    OcspSigning,
    /// No purpose check (a CA certificate, an issued certificate kept for
    /// whatever its holder does).
    Any,
}

impl Purpose {
    /// The key purposes that satisfy this use.
    pub fn accepted(self) -> &'static [ObjectIdentifier] {
        match self {
            Purpose::TlsServer => &[ID_KP_SERVER_AUTH],
            Purpose::TlsClient => &[ID_KP_CLIENT_AUTH],
            Purpose::ScepRa => &[ID_KP_CMC_RA, MS_CERT_REQUEST_AGENT],
            Purpose::OcspSigning => &[ID_KP_OCSP_SIGNING],
            Purpose::Any => &[],
        }
    }

    /// Whether this use must be named in the certificate's extKeyUsage
    /// (an absent extension or anyExtendedKeyUsage does not suffice).
    pub fn must_be_named(self) -> bool {
        matches!(self, Purpose::ScepRa | Purpose::OcspSigning)
    }

    /// Whether a certificate with extension `eku` (None: absent) may serve.
    pub fn allows(self, eku: Option<&ExtendedKeyUsage>) -> bool {
        match (self, eku) {
            (Purpose::Any, _) => true,
            (p, None) => !p.must_be_named(),
            (p, Some(e)) if p.must_be_named() => e.0.iter().any(|o| self.accepted().contains(o)),
            (_, Some(e)) => {
                e.0.iter()
                    .any(|o| *o == ANY_EXTENDED_KEY_USAGE || self.accepted().contains(o))
            }
        }
    }
}

impl std::fmt::Display for Purpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Purpose::TlsServer => "TLS server (id-kp-serverAuth)",
            Purpose::TlsClient => "TLS client (id-kp-clientAuth)",
            Purpose::ScepRa => "SCEP RA (id-kp-cmcRA or Microsoft Certificate Request Agent)",
            Purpose::OcspSigning => "OCSP signing (id-kp-OCSPSigning)",
            Purpose::Any => "any purpose",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eku(o: &[ObjectIdentifier]) -> ExtendedKeyUsage {
        ExtendedKeyUsage(o.to_vec())
    }

    #[test]
    fn absent_eku_is_any_purpose_but_not_an_ra_or_an_ocsp_responder() {
        assert!(Purpose::TlsServer.allows(None));
        assert!(Purpose::TlsClient.allows(None));
        assert!(!Purpose::OcspSigning.allows(None));
        assert!(!Purpose::ScepRa.allows(None));
    }

    #[test]
    fn any_extended_key_usage_is_any_purpose_but_not_an_ra() {
        let any = eku(&[ANY_EXTENDED_KEY_USAGE]);
        assert!(Purpose::TlsClient.allows(Some(&any)));
        assert!(!Purpose::ScepRa.allows(Some(&any)));
        assert!(!Purpose::OcspSigning.allows(Some(&any)));
        assert!(Purpose::OcspSigning.allows(Some(&eku(&[ANY_EXTENDED_KEY_USAGE, ID_KP_OCSP_SIGNING]))));
    }

    #[test]
    fn the_listed_purposes_and_no_other() {
        let client = eku(&[ID_KP_CLIENT_AUTH]);
        assert!(Purpose::TlsClient.allows(Some(&client)));
        assert!(!Purpose::TlsServer.allows(Some(&client)));
        assert!(!Purpose::ScepRa.allows(Some(&client)));
        assert!(Purpose::ScepRa.allows(Some(&eku(&[ID_KP_CMC_RA]))));
        assert!(Purpose::ScepRa.allows(Some(&eku(&[ID_KP_CLIENT_AUTH, MS_CERT_REQUEST_AGENT]))));
        assert!(Purpose::Any.allows(Some(&client)));
    }
}
