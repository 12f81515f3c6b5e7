//! The naming rule: which names a request asks for, which names a
//! credential may obtain, and the comparisons between them.
//!
//! Names that identify a holder are the subject (compared as a whole) and
//! the DNS and IP subjectAltNames; the CN is what pre-authorisation, PSK
//! identities and RSPF identifiers speak of. DNS names compare without case
//! and on whole labels (RFC 4343; `example.com` does not admit
//! `evilexample.com`).

use super::decision::{IssueNames, Refusal, RefusalReason};
use der::{Decode, Encode};
use enrolkit_pkix::pkcs10::CertificationRequest;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::str::FromStr;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::name::Name;
use x509_cert::Certificate;

/// What a request asks for, whatever protocol carried it.
#[derive(Debug, Clone)]
pub struct CsrView<'a> {
    /// The PKCS#10 request (DER), for the verifier hook and the record.
    pub der: &'a [u8],
    /// Requested subject.
    pub subject: &'a Name,
    /// Requested public key.
    pub public_key: &'a spki::SubjectPublicKeyInfoOwned,
    /// Requested DNS subjectAltNames.
    pub dns: Vec<String>,
    /// Requested IP subjectAltNames.
    pub ips: Vec<IpAddr>,
    /// The raw subjectAltName extnValue, when the request has one.
    pub san_der: Option<&'a [u8]>,
}

impl<'a> CsrView<'a> {
    /// What the core reads of a verified PKCS#10 request, whichever
    /// protocol carried it (SCEP and EST alike).
    pub fn of(csr: &'a CertificationRequest) -> CsrView<'a> {
        CsrView {
            der: csr.der(),
            subject: csr.subject(),
            public_key: csr.public_key(),
            dns: csr.dns_names(),
            ips: csr.ip_addresses(),
            san_der: csr.subject_alt_name_der(),
        }
    }

    /// The names as asked.
    pub fn as_asked(&self) -> IssueNames {
        IssueNames {
            subject: self.subject.clone(),
            dns: self.dns.clone(),
            ips: self.ips.clone(),
        }
    }

    /// The subject's CN, if any.
    pub fn common_name(&self) -> Option<String> {
        common_name(self.subject)
    }
}

/// The first CN of a name, as text.
pub fn common_name(name: &Name) -> Option<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|a| a.oid == const_oid::db::rfc4519::CN)
        .and_then(|a| std::str::from_utf8(a.value.value()).ok().map(str::to_owned))
}

/// Whether two names are the same: equal DER, or equal RFC 4514 text
/// (the same attributes in another string type).
pub fn same_name(a: &Name, b: &Name) -> bool {
    a == b || a.to_string() == b.to_string()
}

/// A certificate's subjectAltName, parsed (empty without one).
pub fn certificate_sans(cert: &Certificate) -> (Vec<String>, Vec<IpAddr>) {
    extension_sans(cert.tbs_certificate.extensions.as_deref().unwrap_or_default())
}

/// The subjectAltName among `extensions` (a certificate's, or a CMP
/// CertTemplate's), parsed: DNS names and IP addresses (empty without one).
pub fn extension_sans(extensions: &[x509_cert::ext::Extension]) -> (Vec<String>, Vec<IpAddr>) {
    let san = extensions
        .iter()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME)
        .and_then(|e| SubjectAltName::from_der(e.extn_value.as_bytes()).ok());
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for n in san.map(|s| s.0).unwrap_or_default() {
        match n {
            GeneralName::DnsName(d) => dns.push(d.to_string()),
            GeneralName::IpAddress(o) => match o.as_bytes().len() {
                4 => ips.push(IpAddr::from(<[u8; 4]>::try_from(o.as_bytes()).unwrap_or_default())),
                16 => ips.push(IpAddr::from(<[u8; 16]>::try_from(o.as_bytes()).unwrap_or_default())),
                _ => {}
            },
            _ => {}
        }
    }
    (dns, ips)
}

/// A DNS name in canonical form for comparison: lower case, no final dot.
fn dns_key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

pub use enrolkit_pki::dns_under;

/// Whether `name` (a DNS name or a CN) matches `pattern`: `*.example.net`
/// matches any name of one or more labels below example.net; anything else
/// matches itself (DNS rules: no case, no final dot).
pub fn matches_pattern(name: &str, pattern: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(domain) => dns_under(name, &format!(".{domain}")),
        None => dns_key(name) == dns_key(pattern),
    }
}

/// Names bound to a one-time challenge or a PSK identity when it was made
/// (`mef challenge add --subject … --dns …`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundNames {
    /// The subject (RFC 4514 text) a request must ask for.
    pub subject: String,
    /// DNS names it may ask for besides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    /// IP addresses it may ask for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpAddr>,
}

impl BoundNames {
    /// Bind `subject` (checked to parse), `dns` and `ips`.
    pub fn new(subject: &str, dns: Vec<String>, ips: Vec<IpAddr>) -> Result<Self, String> {
        let name = Name::from_str(subject).map_err(|e| format!("subject {subject:?}: {e}"))?;
        for d in &dns {
            if d.is_empty() || !d.is_ascii() || d.chars().any(|c| c.is_ascii_control() || c == ' ') {
                return Err(format!("DNS name {d:?} is not a DNS name"));
            }
        }
        Ok(BoundNames {
            subject: name.to_string(),
            dns,
            ips,
        })
    }

    /// Stored form (JSON).
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// From the stored form.
    pub fn decode(s: &str) -> Result<Self, String> {
        serde_json::from_str(s).map_err(|e| format!("stored name binding: {e}"))
    }

    /// The request's names, when they are within this binding.
    pub fn admit(&self, csr: &CsrView<'_>, whose: &str) -> Result<IssueNames, Refusal> {
        let bound = Name::from_str(&self.subject)
            .map_err(|e| Refusal::internal(format!("stored subject {:?}: {e}", self.subject)))?;
        if !same_name(&bound, csr.subject) {
            return Err(refuse_name(format!(
                "{whose} is bound to subject {}, not {}",
                self.subject, csr.subject
            )));
        }
        if let Some(bad) = csr
            .dns
            .iter()
            .find(|d| !self.dns.iter().any(|b| dns_key(b) == dns_key(d)))
        {
            return Err(refuse_name(format!("{whose} may not name {bad}")));
        }
        if let Some(bad) = csr.ips.iter().find(|i| !self.ips.contains(i)) {
            return Err(refuse_name(format!("{whose} may not name the IP address {bad}")));
        }
        Ok(csr.as_asked())
    }
}

impl std::fmt::Display for BoundNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.subject)?;
        for d in &self.dns {
            write!(f, " dns:{d}")?;
        }
        for i in &self.ips {
            write!(f, " ip:{i}")?;
        }
        Ok(())
    }
}

fn differ(detail: String) -> Refusal {
    Refusal::new(RefusalReason::RenewalNamesDiffer, detail)
}

pub(crate) fn refuse_name(detail: String) -> Refusal {
    Refusal::new(RefusalReason::NameNotAuthorised, detail)
}

/// IP subjectAltNames are issued only to a certificate that already has them.
pub(crate) fn no_ips(csr: &CsrView<'_>, whose: &str) -> Result<(), Refusal> {
    match csr.ips.first() {
        Some(ip) => Err(refuse_name(format!("{whose} may not name the IP address {ip}"))),
        None => Ok(()),
    }
}

/// A certificate authorises its own names only: the same subject, and
/// subjectAltNames among its own.
pub fn own_names(cert: &Certificate, csr: &CsrView<'_>, whose: &str) -> Result<IssueNames, Refusal> {
    if !same_name(&cert.tbs_certificate.subject, csr.subject) {
        return Err(refuse_name(format!(
            "{whose} names {}, and may not obtain a certificate for {}",
            cert.tbs_certificate.subject, csr.subject
        )));
    }
    let (dns, ips) = certificate_sans(cert);
    if let Some(bad) = csr.dns.iter().find(|d| !dns.iter().any(|o| dns_key(o) == dns_key(d))) {
        return Err(refuse_name(format!("{whose} does not name {bad}")));
    }
    if let Some(bad) = csr.ips.iter().find(|i| !ips.contains(i)) {
        return Err(refuse_name(format!("{whose} does not name {bad}")));
    }
    Ok(csr.as_asked())
}

/// RFC 7030 §4.2.2: a re-enrolment repeats the current certificate's
/// Subject and subjectAltName. Compared as names (DER, or the same text).
pub fn same_names_as(cert: &Certificate, csr: &CsrView<'_>) -> Result<(), Refusal> {
    if !same_name(&cert.tbs_certificate.subject, csr.subject) {
        return Err(differ(format!(
            "Subject {} differs from the current certificate's {} (RFC 7030 §4.2.2)",
            csr.subject, cert.tbs_certificate.subject
        )));
    }
    let cert_san = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME)
        .map(|e| e.extn_value.as_bytes().to_vec());
    // Byte for byte first (RFC 7030 §4.2.2); a front end that does not
    // give the raw extension (None) is compared by the names themselves.
    if cert_san.is_some() && cert_san.as_deref() == csr.san_der {
        return Ok(());
    }
    let (dns, ips) = certificate_sans(cert);
    let set = |v: &[String]| {
        let mut v = v.iter().map(|d| dns_key(d)).collect::<Vec<_>>();
        v.sort();
        v
    };
    let mut a = ips.clone();
    let mut b = csr.ips.clone();
    a.sort();
    b.sort();
    if set(&dns) == set(&csr.dns) && a == b {
        Ok(())
    } else {
        Err(differ(
            "subjectAltName differs from the current certificate's (RFC 7030 §4.2.2)".to_string(),
        ))
    }
}

/// The rule for credentials that bind no names (an unbound one-time
/// challenge, the static challenge, the verifier hook): the subject as
/// asked, DNS names only under the allowed suffixes, no IP addresses.
pub fn unbound(csr: &CsrView<'_>, suffixes: &[String], whose: &str) -> Result<IssueNames, Refusal> {
    suffix_dns(csr, suffixes, whose)?;
    no_ips(csr, whose)?;
    Ok(csr.as_asked())
}

/// DNS names under `suffixes` only.
pub(crate) fn suffix_dns(csr: &CsrView<'_>, suffixes: &[String], whose: &str) -> Result<(), Refusal> {
    if let Some(bad) = csr.dns.iter().find(|d| !suffixes.iter().any(|s| dns_under(d, s))) {
        return Err(refuse_name(if suffixes.is_empty() {
            format!("{whose} may not name {bad}: no DNS names are allowed without a binding (allowed_dns_suffixes is empty)")
        } else {
            format!("{whose} may not name {bad}: outside {}", suffixes.join(", "))
        }));
    }
    Ok(())
}

/// An unbound identity (PSK identity, Basic user of the static challenge)
/// obtains only the name equal to it: CN = identity, DNS names = identity.
pub fn identity_name(csr: &CsrView<'_>, identity: &str, whose: &str) -> Result<IssueNames, Refusal> {
    if csr.common_name().as_deref() != Some(identity) {
        return Err(refuse_name(format!(
            "{whose} may obtain only CN={identity}, not {}",
            csr.subject
        )));
    }
    if let Some(bad) = csr.dns.iter().find(|d| dns_key(d) != dns_key(identity)) {
        return Err(refuse_name(format!("{whose} may not name {bad}")));
    }
    no_ips(csr, whose)?;
    Ok(csr.as_asked())
}

/// A certificate's subject serialNumber (2.5.4.5) and CN, for templates.
fn attribute(name: &Name, oid: const_oid::ObjectIdentifier) -> Option<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|a| a.oid == oid)
        .and_then(|a| std::str::from_utf8(a.value.value()).ok().map(str::to_owned))
}

/// Escape a value for RFC 4514 text.
fn escape_4514(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Fill a name template from a certificate: `{serialNumber}` (the subject's
/// serialNumber attribute), `{CN}`, `{certSerial}` (the certificate's
/// serial number, hex). Values are escaped; a placeholder the certificate
/// cannot fill refuses.
pub fn fill_template(template: &str, cert: &Certificate) -> Result<String, String> {
    let subject = &cert.tbs_certificate.subject;
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("template {template:?}: unclosed {{"))?;
        let key = &after[..end];
        let value = match key {
            "serialNumber" => attribute(subject, const_oid::db::rfc4519::SERIAL_NUMBER),
            "CN" => attribute(subject, const_oid::db::rfc4519::CN),
            "certSerial" => Some(hex::encode(cert.tbs_certificate.serial_number.as_bytes())),
            other => return Err(format!("template {template:?}: unknown placeholder {{{other}}}")),
        }
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("the certificate has no {key} for the template"))?;
        if value.chars().any(|c| c.is_control()) {
            return Err(format!("the certificate's {key} holds control characters"));
        }
        out.push_str(&escape_4514(&value));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The subject a template makes from a certificate.
pub fn template_subject(template: &str, cert: &Certificate) -> Result<Name, String> {
    let text = fill_template(template, cert)?;
    let name = Name::from_str(&text).map_err(|e| format!("template makes {text:?}: {e}"))?;
    // Round trip, so what is issued is what the text says.
    name.to_der().map_err(|e| e.to_string())?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_match_whole_labels() {
        assert!(dns_under("a.example.com", "example.com"));
        assert!(dns_under("example.com", "example.com"));
        assert!(!dns_under("example.com", ".example.com"));
        assert!(dns_under("A.Example.COM.", ".example.com"));
        assert!(!dns_under("evilexample.com", "example.com"));
        assert!(!dns_under("evilexample.com", ".example.com"));
        assert!(!dns_under("com", "example.com"));
        assert!(!dns_under(".example.com", "example.com"));
        assert!(!dns_under("x.example.com", ""));
    }

    #[test]
    fn patterns() {
        assert!(matches_pattern("bs-1.ran.example.net", "*.ran.example.net"));
        assert!(matches_pattern("a.b.ran.example.net", "*.ran.example.net"));
        assert!(!matches_pattern("ran.example.net", "*.ran.example.net"));
        assert!(!matches_pattern("evilran.example.net", "*.ran.example.net"));
        assert!(matches_pattern("Device-1", "device-1"));
        assert!(!matches_pattern("device-10", "device-1"));
    }

    #[test]
    fn template_values_are_escaped() {
        assert_eq!(escape_4514("a,b"), "a\\,b");
        assert_eq!(escape_4514("#x "), "\\#x\\ ");
        assert_eq!(escape_4514("=CN"), "\\=CN");
    }

    #[test]
    fn bound_names_round_trip() {
        let b = BoundNames::new(
            "CN=dev-1,O=Example",
            vec!["dev-1.example.com".into()],
            vec!["192.0.2.1".parse().unwrap()],
        )
        .unwrap();
        assert_eq!(BoundNames::decode(&b.encode()).unwrap(), b);
        assert!(BoundNames::new("not a name", vec![], vec![]).is_err());
        assert!(BoundNames::new("CN=x", vec!["a b".into()], vec![]).is_err());
    }
}
