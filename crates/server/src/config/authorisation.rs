//! `[authorisation]` in `mef.toml`, and the authorisation policy built from
//! it and the older per-protocol settings (`[scep]`, `[est]`, `[profile]`,
//! `[rspf]`). The rules themselves are `enrolkit_server::ra`'s; this only
//! reads what the operator configured.

use crate::ra::{Policy, RaAuthority, VendorPolicy};
use enrolkit_files as files;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroizing;

/// `[authorisation]`: relaxations of the default naming rules, and the
/// credentials of seed 004 (vendor certificates, RA-POP).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorisationConfig {
    /// A renewal may change Subject and subjectAltName (SCEP and EST).
    #[serde(default)]
    pub reenroll_may_change_names: bool,
    /// Vendor-certificate initial enrolment (3GPP TS 33.310 base stations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<VendorConfig>,
    /// Registration authorities (RA-POP): their certificate and the names they may request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ra: Vec<RaConfig>,
}

/// `[authorisation.vendor]`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorConfig {
    /// PEM files of the vendor CAs device certificates chain to.
    pub anchors: Vec<PathBuf>,
    /// Subject of the operator certificate: RFC 4514 with `{serialNumber}`,
    /// `{CN}`, `{certSerial}` from the vendor certificate.
    pub subject_template: String,
    /// DNS subjectAltNames, templates likewise.
    #[serde(default)]
    pub dns_templates: Vec<String>,
}

/// `[[authorisation.ra]]`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaConfig {
    /// PEM file of the RA's certificate.
    pub certificate: PathBuf,
    /// CN and DNS name patterns it may request (`*.ran.example.net`, or a name).
    pub may_name: Vec<String>,
}

/// What the policy is built from.
pub struct Sources<'a> {
    /// `[scep]`.
    pub scep: &'a super::ScepConfig,
    /// `[authorisation]`, if present.
    pub authorisation: Option<&'a AuthorisationConfig>,
    /// `[est] reenroll_may_change_names` (kept for older configurations).
    pub est_reenroll_may_change_names: bool,
    /// `[profile] allowed_dns_suffixes`.
    pub allowed_dns_suffixes: &'a [String],
    /// Identifiers configured in `[rspf]`.
    pub reserved_names: Vec<String>,
    /// `[proxy]` is configured: requests go upstream as they came.
    pub forwards_requests: bool,
}

/// The authorisation policy of this configuration.
pub fn policy(s: Sources<'_>, base: &Path) -> Result<Policy, String> {
    let a = s.authorisation;
    let vendor = match a.and_then(|a| a.vendor.as_ref()) {
        None => None,
        Some(v) => {
            let mut anchors = Vec::new();
            for p in &v.anchors {
                for c in files::read_certificates(&base.join(p))? {
                    anchors.push(der::Encode::to_der(&c).map_err(|e| format!("{}: {e}", p.display()))?);
                }
            }
            if anchors.is_empty() {
                return Err("authorisation.vendor.anchors: no certificate".into());
            }
            std::str::FromStr::from_str(&v.subject_template.replace(['{', '}'], ""))
                .map(|_: x509_cert::name::Name| ())
                .map_err(|e| format!("authorisation.vendor.subject_template: {e}"))?;
            Some(VendorPolicy {
                anchors,
                subject_template: v.subject_template.clone(),
                dns_templates: v.dns_templates.clone(),
            })
        }
    };
    let mut registration_authorities = Vec::new();
    for r in a.map(|a| a.ra.as_slice()).unwrap_or_default() {
        if r.may_name.is_empty() {
            return Err(format!(
                "authorisation.ra {}: may_name is empty (list the names it may request)",
                r.certificate.display()
            ));
        }
        registration_authorities.push(RaAuthority {
            certificate: files::read_certificate(&base.join(&r.certificate))?,
            may_name: r.may_name.clone(),
        });
    }
    let scep = s.scep;
    Ok(Policy {
        one_time_challenges: scep.one_time_challenges,
        static_challenge: scep.static_challenge.clone().map(Zeroizing::new),
        preauthorized_cns: scep.preauthorized_cns.clone(),
        renewal_window: Duration::from_secs(scep.renewal_window_days * 86400),
        manual_approval: scep.manual_approval,
        verifier: scep
            .verifier_command
            .split_first()
            .map(|(cmd, args)| crate::ra::Verifier {
                command: cmd.into(),
                args: args.to_vec(),
                timeout: Duration::from_secs(scep.verifier_timeout_seconds),
            }),
        allowed_dns_suffixes: s.allowed_dns_suffixes.to_vec(),
        reenroll_may_change_names: s.est_reenroll_may_change_names || a.is_some_and(|a| a.reenroll_may_change_names),
        vendor,
        registration_authorities,
        reserved_names: s.reserved_names,
        forwards_requests: s.forwards_requests,
        hold_limit: None,
    })
}
