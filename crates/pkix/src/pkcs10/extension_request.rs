//! The extensionRequest attribute (PKCS#9, RFC 2985 §5.4.2): the
//! extensions a requester asks to have in its certificate, and the two the
//! protocols read — subjectAltName (RFC 5280 §4.2.1.6) and extKeyUsage
//! (RFC 5280 §4.2.1.12).
//!
//! ```text
//! extensionRequest ATTRIBUTE ::= {
//!         WITH SYNTAX ExtensionRequest
//!         SINGLE VALUE TRUE
//!         ID pkcs-9-at-extensionRequest
//! }
//! ExtensionRequest ::= Extensions
//!
//! SubjectAltName ::= GeneralNames
//! GeneralName ::= CHOICE {
//!      otherName                 [0]  AnotherName,
//!      rfc822Name                [1]  IA5String,
//!      dNSName                   [2]  IA5String,
//!      x400Address               [3]  ORAddress,
//!      directoryName             [4]  Name,
//!      ediPartyName              [5]  EDIPartyName,
//!      uniformResourceIdentifier [6]  IA5String,
//!      iPAddress                 [7]  OCTET STRING,
//!      registeredID              [8]  OBJECT IDENTIFIER }
//!
//! ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId
//! ```

use super::bounds::{check_shape, MAX_EXTENSIONS};
use super::error::{Pkcs10Error, Result};
use super::oid;
use const_oid::db::rfc5280::{ID_CE_EXT_KEY_USAGE, ID_CE_SUBJECT_ALT_NAME};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, Ia5String, OctetString, SetOfVec};
use der::{Decode, Encode};
use std::net::IpAddr;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectAltName};
use x509_cert::ext::Extension;
use x509_cert::request::ExtensionReq;

/// The subjectAltName names a request carries or asks for, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    /// dNSName entries.
    pub dns: Vec<String>,
    /// iPAddress entries of 4 or 16 octets.
    pub ips: Vec<IpAddr>,
    /// rfc822Name entries (e-mail addresses).
    pub emails: Vec<String>,
    /// uniformResourceIdentifier entries.
    pub uris: Vec<String>,
}

impl Names {
    /// Whether there is no name at all.
    pub fn is_empty(&self) -> bool {
        self.dns.is_empty() && self.ips.is_empty() && self.emails.is_empty() && self.uris.is_empty()
    }

    /// The subjectAltName extension for these names; critical when the
    /// subject is empty (RFC 5280 §4.2.1.6: "the subjectAltName extension
    /// MUST be marked critical" when the subject field is empty).
    pub fn to_extension(&self, subject_is_empty: bool) -> Result<Extension> {
        let bad = |e: der::Error| Pkcs10Error::invalid("subjectAltName", e);
        let ia5 = |s: &String| Ia5String::new(s).map_err(bad);
        let mut names = Vec::new();
        for d in &self.dns {
            names.push(GeneralName::DnsName(ia5(d)?));
        }
        for ip in &self.ips {
            let octets = match ip {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            names.push(GeneralName::IpAddress(OctetString::new(octets).map_err(bad)?));
        }
        for e in &self.emails {
            names.push(GeneralName::Rfc822Name(ia5(e)?));
        }
        for u in &self.uris {
            names.push(GeneralName::UniformResourceIdentifier(ia5(u)?));
        }
        Ok(Extension {
            extn_id: ID_CE_SUBJECT_ALT_NAME,
            critical: subject_is_empty,
            extn_value: OctetString::new(SubjectAltName(names).to_der().map_err(bad)?).map_err(bad)?,
        })
    }

    /// The names of a decoded subjectAltName, by kind; other kinds are
    /// skipped, as is an iPAddress that is not 4 or 16 octets.
    pub fn from_general_names(names: &[GeneralName]) -> Names {
        let mut out = Names::default();
        for g in names {
            match g {
                GeneralName::DnsName(d) => out.dns.push(d.to_string()),
                GeneralName::IpAddress(o) => out.ips.extend(ip_from_octets(o.as_bytes())),
                GeneralName::Rfc822Name(e) => out.emails.push(e.to_string()),
                GeneralName::UniformResourceIdentifier(u) => out.uris.push(u.to_string()),
                _ => {}
            }
        }
        out
    }
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

/// The extKeyUsage extension for `purposes` (never critical: RFC 5280
/// leaves it to the issuer, and a request only asks).
pub fn eku_extension(purposes: &[ObjectIdentifier]) -> Result<Extension> {
    let bad = |e: der::Error| Pkcs10Error::invalid("extKeyUsage", e);
    Ok(Extension {
        extn_id: ID_CE_EXT_KEY_USAGE,
        critical: false,
        extn_value: OctetString::new(ExtendedKeyUsage(purposes.to_vec()).to_der().map_err(bad)?).map_err(bad)?,
    })
}

/// The extensionRequest attribute holding `extensions` (one value).
pub fn encode(extensions: Vec<Extension>) -> Result<Attribute> {
    let bad = |e: der::Error| Pkcs10Error::invalid("extensionRequest", e);
    Ok(Attribute {
        oid: oid::EXTENSION_REQUEST,
        values: SetOfVec::try_from(vec![Any::encode_from(&ExtensionReq(extensions)).map_err(bad)?]).map_err(bad)?,
    })
}

/// Every extension requested in the extensionRequest attributes of
/// `attributes`, in order. Refuses a value that does not decode, more than
/// [`MAX_EXTENSIONS`], and an extension requested twice.
pub fn collect<'a>(attributes: impl Iterator<Item = &'a Attribute>) -> Result<Vec<Extension>> {
    let mut out: Vec<Extension> = Vec::new();
    for a in attributes.filter(|a| a.oid == oid::EXTENSION_REQUEST) {
        for v in a.values.iter() {
            let req: ExtensionReq = v
                .decode_as()
                .map_err(|e| Pkcs10Error::malformed("extensionRequest", e))?;
            for e in req.0 {
                if out.iter().any(|o| o.extn_id == e.extn_id) {
                    return Err(Pkcs10Error::malformed(
                        "extensionRequest",
                        format!("extension {} requested twice", e.extn_id),
                    ));
                }
                if out.len() >= MAX_EXTENSIONS {
                    return Err(Pkcs10Error::TooMany {
                        what: "requested extensions",
                        limit: MAX_EXTENSIONS,
                    });
                }
                out.push(e);
            }
        }
    }
    Ok(out)
}

/// Decode an extension value within the request bounds.
fn decode_value<'a, T: Decode<'a>>(what: &'static str, ext: &'a Extension) -> Result<T> {
    let bytes = ext.extn_value.as_bytes();
    check_shape(bytes)?;
    T::from_der(bytes).map_err(|e| Pkcs10Error::malformed(what, e))
}

/// The general names of a requested subjectAltName (empty without one).
pub fn subject_alt_name(extensions: &[Extension]) -> Result<Vec<GeneralName>> {
    match extensions.iter().find(|e| e.extn_id == ID_CE_SUBJECT_ALT_NAME) {
        Some(e) => Ok(decode_value::<SubjectAltName>("subjectAltName", e)?.0),
        None => Ok(Vec::new()),
    }
}

/// The key purposes of a requested extKeyUsage (empty without one).
pub fn ext_key_usage(extensions: &[Extension]) -> Result<Vec<ObjectIdentifier>> {
    match extensions.iter().find(|e| e.extn_id == ID_CE_EXT_KEY_USAGE) {
        Some(e) => Ok(decode_value::<ExtendedKeyUsage>("extKeyUsage", e)?.0),
        None => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn names_round_trip_and_criticality() {
        let names = Names {
            dns: vec!["a.example".into()],
            ips: vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()],
            emails: vec!["ops@example.com".into()],
            uris: vec!["urn:example:device:1".into()],
        };
        let ext = names.to_extension(true).unwrap();
        assert!(ext.critical);
        assert!(!names.to_extension(false).unwrap().critical);
        let back = subject_alt_name(&[ext]).unwrap();
        assert_eq!(Names::from_general_names(&back), names);
        assert!(Names::default().is_empty());
        // Not IA5.
        let bad = Names {
            dns: vec!["ä.example".into()],
            ..Names::default()
        };
        assert!(bad.to_extension(false).is_err());
    }

    #[test]
    fn ip_lengths() {
        assert_eq!(ip_from_octets(&[10, 0, 0, 1]), Some(IpAddr::from([10, 0, 0, 1])));
        assert!(ip_from_octets(&[10, 0, 0, 1, 255, 0, 0, 0]).is_none());
        assert!(ip_from_octets(&[]).is_none());
    }

    #[test]
    fn twice_and_undecodable_are_refused() {
        let eku = eku_extension(&[const_oid::db::rfc5280::ID_KP_CLIENT_AUTH]).unwrap();
        let a = encode(vec![eku.clone()]).unwrap();
        let b = encode(vec![eku.clone()]).unwrap();
        assert!(collect([&a, &b].into_iter()).is_err());
        assert_eq!(collect([&a].into_iter()).unwrap(), vec![eku]);
        let junk = Extension {
            extn_id: ID_CE_EXT_KEY_USAGE,
            critical: false,
            extn_value: OctetString::new(vec![0x04, 0x00]).unwrap(),
        };
        assert!(ext_key_usage(&[junk]).is_err());
    }
}
