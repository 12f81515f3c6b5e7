//! Whether a certificate is for the host a client meant to reach: service
//! identity checking (RFC 9525, which obsoletes RFC 6125) against the
//! certificate's subjectAltName (RFC 5280 §4.2.1.6).
//!
//! ```text
//! SubjectAltName ::= GeneralNames
//! GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName
//! GeneralName ::= CHOICE {
//!      ...
//!      dNSName                         [2]     IA5String,
//!      ...
//!      iPAddress                       [7]     OCTET STRING,
//!      ... }
//! ```
//!
//! | rule | RFC 9525 |
//! |---|---|
//! | only subjectAltName identifiers count: the subject's common name is never used | §6.3 |
//! | a host name matches a dNSName, compared as ASCII without regard to case | §6.3, §7.2 |
//! | an internationalised name is compared in its A-label (`xn--`) form, as ASCII; a U-label reference is refused | §6.3 |
//! | a wildcard `*` only as the whole left-most label, matching exactly one label | §6.3 |
//! | an IP address literal matches an iPAddress (4 or 16 octets), never a dNSName | §6.2.1, §6.3 |
//! | one trailing dot (an absolute name) is ignored on either side | RFC 1034 §3.1 |
//!
//! Where the text leaves a choice: a wildcard must have at least two labels
//! after it (`*.example.net`, never `*.net`), as OpenSSL's matcher also
//! requires; an IPv4 address does not match its IPv4-mapped IPv6 form.

use crate::subject;
use const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::Certificate;

/// Longest DNS name accepted (RFC 1035 §2.3.4, without the trailing dot).
pub const MAX_NAME: usize = 253;
/// Longest DNS label (RFC 1035 §2.3.4).
pub const MAX_LABEL: usize = 63;

/// Why a certificate was not accepted for a host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostNameError {
    /// The host asked for is neither a DNS name in ASCII nor an IP address.
    #[error("{host:?} cannot be matched against a certificate: {reason}")]
    BadReference {
        /// The host as given.
        host: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The certificate has no subjectAltName, so it names no host.
    #[error("certificate {subject:?} has no subjectAltName, so it names no host (the common name is not used)")]
    NoSubjectAltName {
        /// The certificate.
        subject: String,
    },
    /// The subjectAltName extension does not decode.
    #[error("certificate {subject:?}: subjectAltName does not decode: {reason}")]
    BadSubjectAltName {
        /// The certificate.
        subject: String,
        /// The decoder's words.
        reason: String,
    },
    /// No subjectAltName identifier matches the host.
    #[error("certificate {subject:?} is not for {host:?}: its subjectAltName names {}", presented.join(", "))]
    Mismatch {
        /// The certificate.
        subject: String,
        /// The host asked for.
        host: String,
        /// The DNS names and IP addresses it does name.
        presented: Vec<String>,
    },
}

/// The host a client meant to reach (a reference identifier, RFC 9525
/// §6.2), normalised for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A DNS name: ASCII, lowercase, without a trailing dot.
    Dns(String),
    /// An IP address literal.
    Ip(IpAddr),
}

impl Reference {
    /// Parse a host as a client has it: a DNS name (A-labels for an
    /// internationalised one, optionally with a trailing dot) or an IP
    /// address (an IPv6 one optionally in brackets, as in a URL).
    pub fn parse(host: &str) -> Result<Self, HostNameError> {
        let bad = |reason| HostNameError::BadReference {
            host: host.to_owned(),
            reason,
        };
        if let Some(inner) = host.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or_else(|| bad("an unclosed '['"))?;
            return match inner.parse::<Ipv6Addr>() {
                Ok(ip) => Ok(Reference::Ip(IpAddr::V6(ip))),
                Err(_) => Err(bad("brackets hold something other than an IPv6 address")),
            };
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Reference::Ip(ip));
        }
        if !host.is_ascii() {
            return Err(bad(
                "not ASCII: give an internationalised name in its A-label (xn--) form",
            ));
        }
        let name = host.strip_suffix('.').unwrap_or(host);
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(bad("a DNS name is 1 to 253 characters"));
        }
        for label in name.split('.') {
            if label.is_empty() || label.len() > MAX_LABEL {
                return Err(bad("a DNS label is 1 to 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(bad("a DNS label holds letters, digits, '-' and '_' only"));
            }
        }
        Ok(Reference::Dns(name.to_ascii_lowercase()))
    }

    /// Whether the presented dNSName `presented` matches this reference.
    pub fn matches_dns(&self, presented: &str) -> bool {
        let Reference::Dns(reference) = self else {
            return false;
        };
        if !presented.is_ascii() {
            return false;
        }
        let presented = presented.strip_suffix('.').unwrap_or(presented).to_ascii_lowercase();
        match presented.strip_prefix("*.") {
            Some(rest) => {
                // The wildcard stands for exactly one whole label, and at
                // least two labels follow it.
                if rest.contains('*') || !rest.contains('.') || rest.split('.').any(str::is_empty) {
                    return false;
                }
                match reference.split_once('.') {
                    Some((first, ref_rest)) => !first.is_empty() && ref_rest == rest,
                    None => false,
                }
            }
            None => !presented.contains('*') && presented == *reference,
        }
    }

    /// Whether the presented iPAddress octets `presented` match this reference.
    pub fn matches_ip(&self, presented: &[u8]) -> bool {
        let Reference::Ip(reference) = self else {
            return false;
        };
        ip_from_octets(presented).is_some_and(|ip| ip == *reference)
    }
}

/// An iPAddress subjectAltName as an address (4 or 16 octets; anything else,
/// such as a name constraint's address and mask, is none).
fn ip_from_octets(o: &[u8]) -> Option<IpAddr> {
    match o.len() {
        4 => <[u8; 4]>::try_from(o).ok().map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        16 => <[u8; 16]>::try_from(o).ok().map(|a| IpAddr::V6(Ipv6Addr::from(a))),
        _ => None,
    }
}

/// Check that `cert` is for `host` (a DNS name or an IP address literal):
/// one of its subjectAltName dNSName or iPAddress identifiers matches.
pub fn verify(cert: &Certificate, host: &str) -> Result<(), HostNameError> {
    let reference = Reference::parse(host)?;
    let san = crate::extensions::find::<SubjectAltName>(cert, ID_CE_SUBJECT_ALT_NAME)
        .ok_or_else(|| HostNameError::NoSubjectAltName { subject: subject(cert) })?
        .map_err(|e| HostNameError::BadSubjectAltName {
            subject: subject(cert),
            reason: e.to_string(),
        })?;
    let mut presented = Vec::new();
    for name in &san.0 {
        match name {
            GeneralName::DnsName(d) => {
                if reference.matches_dns(d.as_str()) {
                    return Ok(());
                }
                presented.push(d.as_str().to_owned());
            }
            GeneralName::IpAddress(o) => {
                if reference.matches_ip(o.as_bytes()) {
                    return Ok(());
                }
                presented
                    .push(ip_from_octets(o.as_bytes()).map_or_else(|| hex::encode(o.as_bytes()), |ip| ip.to_string()));
            }
            _ => {}
        }
    }
    if presented.is_empty() {
        presented.push("no DNS name or IP address".into());
    }
    Err(HostNameError::Mismatch {
        subject: subject(cert),
        host: host.to_owned(),
        presented,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

    use super::*;
    use der::asn1::{BitString, Ia5String, OctetString};
    use der::Encode;
    use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
    use std::str::FromStr;
    use std::time::{Duration, UNIX_EPOCH};
    use x509_cert::ext::Extension;
    use x509_cert::name::Name;
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::time::{Time, Validity};
    use x509_cert::{TbsCertificate, Version};

    fn dns(host: &str) -> Reference {
        Reference::parse(host).unwrap()
    }

    /// An (unsigned: matching never looks at the signature) certificate
    /// with subject `cn` and the given subjectAltName, if any.
    fn cert(cn: &str, san: Option<Vec<GeneralName>>) -> Certificate {
        let alg = AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_256,
            parameters: None,
        };
        let extensions = san.map(|names| {
            vec![Extension {
                extn_id: ID_CE_SUBJECT_ALT_NAME,
                critical: false,
                extn_value: OctetString::new(SubjectAltName(names).to_der().unwrap()).unwrap(),
            }]
        });
        let name = Name::from_str(&format!("CN={cn}")).unwrap();
        Certificate {
            tbs_certificate: TbsCertificate {
                version: Version::V3,
                serial_number: SerialNumber::new(&[1]).unwrap(),
                signature: alg.clone(),
                issuer: name.clone(),
                validity: Validity {
                    not_before: Time::try_from(UNIX_EPOCH + Duration::from_secs(1_767_225_600)).unwrap(),
                    not_after: Time::try_from(UNIX_EPOCH + Duration::from_secs(1_798_761_600)).unwrap(),
                },
                subject: name,
                subject_public_key_info: SubjectPublicKeyInfoOwned {
                    algorithm: alg.clone(),
                    subject_public_key: BitString::from_bytes(&[4, 1, 2]).unwrap(),
                },
                issuer_unique_id: None,
                subject_unique_id: None,
                extensions,
            },
            signature_algorithm: alg,
            signature: BitString::from_bytes(&[0]).unwrap(),
        }
    }

    fn dns_name(d: &str) -> GeneralName {
        GeneralName::DnsName(Ia5String::new(d).unwrap())
    }

    fn ip_name(o: &[u8]) -> GeneralName {
        GeneralName::IpAddress(OctetString::new(o).unwrap())
    }

    #[test]
    fn an_exact_name_matches_without_regard_to_case() {
        assert!(dns("est.example.net").matches_dns("est.example.net"));
        assert!(dns("EST.Example.NET").matches_dns("est.example.net"));
        assert!(dns("est.example.net").matches_dns("Est.EXAMPLE.net"));
        assert!(!dns("est.example.net").matches_dns("est.example.org"));
        assert!(!dns("est.example.net").matches_dns("example.net"));
        assert!(!dns("example.net").matches_dns("est.example.net"));
    }

    #[test]
    fn a_trailing_dot_is_ignored_on_either_side() {
        assert!(dns("est.example.net.").matches_dns("est.example.net"));
        assert!(dns("est.example.net").matches_dns("est.example.net."));
        assert_eq!(dns("est.example.net."), Reference::Dns("est.example.net".into()));
    }

    #[test]
    fn a_wildcard_is_the_whole_left_most_label_and_matches_one_label() {
        let w = "*.example.net";
        assert!(dns("est.example.net").matches_dns(w));
        assert!(dns("EST.example.net.").matches_dns("*.EXAMPLE.net"));
        // Exactly one label: not none, not two.
        assert!(!dns("example.net").matches_dns(w));
        assert!(!dns("a.est.example.net").matches_dns(w));
        // Partial labels and wildcards elsewhere are not wildcards.
        assert!(!dns("est.example.net").matches_dns("e*.example.net"));
        assert!(!dns("est.example.net").matches_dns("*st.example.net"));
        assert!(!dns("est.example.net").matches_dns("est.*.net"));
        assert!(!dns("est.example.net").matches_dns("*.*.net"));
        assert!(!dns("est.example.net").matches_dns("*"));
        // At least two labels after the wildcard.
        assert!(!dns("example.net").matches_dns("*.net"));
        // A literal '*' in a reference is refused.
        assert!(Reference::parse("*.example.net").is_err());
    }

    #[test]
    fn a_labels_are_compared_as_ascii_and_u_labels_refused() {
        // bücher.example → xn--bcher-kva.example
        assert!(dns("xn--bcher-kva.example").matches_dns("xn--bcher-kva.example"));
        assert!(dns("XN--BCHER-KVA.example").matches_dns("xn--bcher-kva.example"));
        assert!(dns("xn--bcher-kva.example.net").matches_dns("*.example.net"));
        assert!(!dns("xn--bcher-kva.example").matches_dns("bucher.example"));
        assert!(matches!(
            Reference::parse("bücher.example"),
            Err(HostNameError::BadReference { .. })
        ));
        assert!(!dns("bcher.example").matches_dns("bücher.example"));
    }

    #[test]
    fn an_ip_literal_matches_ip_addresses_only() {
        let v4 = Reference::parse("192.0.2.7").unwrap();
        assert_eq!(v4, Reference::Ip("192.0.2.7".parse().unwrap()));
        assert!(v4.matches_ip(&[192, 0, 2, 7]));
        assert!(!v4.matches_ip(&[192, 0, 2, 8]));
        assert!(!v4.matches_dns("192.0.2.7"));
        assert!(!v4.matches_dns("*.0.2.7"));
        // IPv4-mapped IPv6 is another address; a mask (name constraint form) is none.
        let mapped: Ipv6Addr = "::ffff:192.0.2.7".parse().unwrap();
        assert!(!v4.matches_ip(&mapped.octets()));
        assert!(!v4.matches_ip(&[192, 0, 2, 7, 255, 255, 255, 255]));
        let v6 = Reference::parse("[2001:db8::1]").unwrap();
        assert_eq!(v6, Reference::parse("2001:db8::1").unwrap());
        let octets = "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets();
        assert!(v6.matches_ip(&octets));
        assert!(!v6.matches_dns("2001:db8::1"));
        // A DNS reference never matches an address.
        assert!(!dns("localhost").matches_ip(&[127, 0, 0, 1]));
    }

    #[test]
    fn references_that_are_not_host_names_are_refused() {
        let long_label = "a".repeat(64);
        let long_name = ["a"; 128].join(".");
        for bad in [
            "",
            ".",
            "a..b",
            "[192.0.2.1]",
            "[::1",
            "a b.example",
            "a/b",
            &long_label,
            &long_name,
        ] {
            assert!(
                matches!(Reference::parse(bad), Err(HostNameError::BadReference { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_certificate_matches_by_subject_alt_name_only() {
        let c = cert(
            "est.example.net",
            Some(vec![dns_name("est.example.net"), ip_name(&[127, 0, 0, 1])]),
        );
        verify(&c, "est.example.net").unwrap();
        verify(&c, "EST.example.net.").unwrap();
        verify(&c, "127.0.0.1").unwrap();
        let e = verify(&c, "other.example.net").unwrap_err();
        assert!(
            matches!(&e, HostNameError::Mismatch { presented, .. } if presented == &["est.example.net", "127.0.0.1"]),
            "{e}"
        );
        // No common-name fallback, with or without a SAN.
        let cn_only = cert("est.example.net", None);
        assert!(matches!(
            verify(&cn_only, "est.example.net"),
            Err(HostNameError::NoSubjectAltName { .. })
        ));
        let other_san = cert("est.example.net", Some(vec![dns_name("www.example.net")]));
        assert!(matches!(
            verify(&other_san, "est.example.net"),
            Err(HostNameError::Mismatch { .. })
        ));
        // A dNSName that spells the address is not an iPAddress.
        let ip_as_dns = cert("127.0.0.1", Some(vec![dns_name("127.0.0.1")]));
        assert!(verify(&ip_as_dns, "127.0.0.1").is_err());
        let v6 = cert("x", Some(vec![ip_name(&Ipv6Addr::LOCALHOST.octets())]));
        verify(&v6, "[::1]").unwrap();
        verify(&v6, "::1").unwrap();
    }

    #[test]
    fn a_subject_alt_name_that_does_not_decode_is_an_error() {
        let mut c = cert("x", None);
        c.tbs_certificate.extensions = Some(vec![Extension {
            extn_id: ID_CE_SUBJECT_ALT_NAME,
            critical: false,
            extn_value: OctetString::new(vec![0x30, 0x05, 0x82]).unwrap(),
        }]);
        assert!(matches!(
            verify(&c, "x.example"),
            Err(HostNameError::BadSubjectAltName { .. })
        ));
    }
}
