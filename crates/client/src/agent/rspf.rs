//! The agent's third protocol, oneM2M RSPF (TS-0003 clause 8.3): each
//! enrolment runs an Enrolment Exchange with the MEF on a TLS session that
//! exports the Enrolment Key, keeps the resulting state (Ke, KeId, Kre and
//! the keys derived from Ke) in the profile's state directory, then enrols
//! the certificate the instructions grant over EST, on a session
//! authenticated by the same credential, and tells the MEF how it went.
//!
//! The first exchange uses the bootstrap credential of the profile's
//! framework (a pre-provisioned KpmId/Kpm, or a GBA bootstrap) and its
//! Enrolment-Token; later ones re-authenticate with Kre while the previous
//! enrolment lives (clause 8.3.3.2), and fall back to the bootstrap
//! credential when the MEF no longer knows it.

use super::driver::{Driver, EstEnrolment};
use super::machine::{Credential as Installed, Event};
use super::profile::Rspf;
use super::store::{self, NewFile};
use crate::est::{ders, EstClient, EstServer};
use crate::flow::rspf::{self as flow, EnroleeCredential};
use crate::https::TlsHttp;
use crate::rspf as protocol;
use crate::scep::PollPolicy;
use enrolkit_exchange::{EnrolmentRequest, ExchangeRequest, WireProfile};
use enrolkit_tls::{ClientTlsConfig, TlsVersion};
use std::path::PathBuf;
use std::time::SystemTime;
use x509_cert::name::Name;
use x509_cert::Certificate;
use zeroize::Zeroizing;

/// The enrolment state in the profile's state directory (what `enrol rspf
/// derive --state <dir>` reads).
pub const STATE_FILE: &str = flow::STATE_FILE;

/// Kre is used only while its enrolment has at least this long to live, so
/// the exchange does not race the expiry.
const KRE_MARGIN_SECS: u64 = 60;

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The TLS versions the agent offers the MEF.
const VERSIONS: (TlsVersion, TlsVersion) = (TlsVersion::Tls12, TlsVersion::Tls13);

/// The session's configuration. `anchors`: the pinned CA certificates that
/// authenticate the MEF in a certificate session; `None` while fetching
/// them (bootstrap).
fn tls(cred: &EnroleeCredential, anchors: Option<&[Certificate]>, export: bool) -> Result<ClientTlsConfig, String> {
    cred.tls(anchors, VERSIONS, export).map_err(|e| e.to_string())
}

/// V3.18's MEF FQDN and Enrolment Expiry (the profile loader requires both).
fn v318_settings(r: &Rspf) -> crate::scep::Result<(&str, u64)> {
    match (r.mef_fqdn.as_deref(), r.enrolment_expiry) {
        (Some(f), Some(e)) => Ok((f, e)),
        _ => Err(crate::scep::ClientError::Unexpected(
            "wire_profile v3.18 needs rspf.mef_fqdn and rspf.enrolment_expiry_seconds".into(),
        )),
    }
}

impl Driver {
    fn rspf(&self) -> Result<Rspf, String> {
        self.profile
            .rspf
            .clone()
            .ok_or_else(|| "protocol rspf without an [rspf] section".to_owned())
    }

    /// Where this profile's enrolment state is kept.
    pub fn rspf_state_path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// The framework's bootstrap credential: KpmId/Kpm, a device
    /// certificate, or B-TID/Ks_NAF.
    fn rspf_bootstrap(&self, r: &Rspf, now: u64) -> Result<EnroleeCredential, String> {
        let a = &self.profile.auth;
        if let (Some(id), Some(f)) = (&a.psk_identity, &a.psk_file) {
            return Ok(EnroleeCredential::pre_provisioned(
                id.clone(),
                enrolkit_files::read_secret(f)?,
            ));
        }
        if let (Some(cert), Some(key)) = (&r.certificate, &r.key) {
            let chain = ders(&enrolkit_files::read_certificates(cert)?).map_err(|e| e.to_string())?;
            let key = crate::flow::est::client_key(key).map_err(|e| format!("rspf.key: {e}"))?;
            return Ok(EnroleeCredential::device_certificate((chain, key)));
        }
        let (gba, mef) = match (&r.gba, &r.mef_fqdn) {
            (Some(g), Some(m)) => (g, m),
            _ => return Err("no Enrolee credential (auth.psk_identity or rspf.gba)".into()),
        };
        EnroleeCredential::gba(gba, mef, i64::try_from(now).unwrap_or(i64::MAX)).map_err(|e| e.to_string())
    }

    /// Kre of the enrolment kept from last time, while it lives.
    fn rspf_kre(&self, now: u64) -> Option<EnroleeCredential> {
        let (state, keys) = protocol::EnrolmentState::read(&self.rspf_state_path()).ok()?;
        if state.expires <= now.saturating_add(KRE_MARGIN_SECS) {
            return None;
        }
        Some(EnroleeCredential::kre(&state, &keys))
    }

    /// The credentials to try, best first.
    fn rspf_credentials(&self, r: &Rspf, now: u64) -> Result<Vec<EnroleeCredential>, String> {
        let mut v: Vec<EnroleeCredential> = self.rspf_kre(now).into_iter().collect();
        match self.rspf_bootstrap(r, now) {
            Ok(b) => v.push(b),
            Err(e) if v.is_empty() => return Err(e),
            Err(_) => {}
        }
        Ok(v)
    }

    /// Steps 1 and 3: the MEF's CA certificates from its EST `/cacerts`, on
    /// a session a PSK authenticates, or unauthenticated with a device
    /// certificate (the machine pins what comes back either way).
    pub(super) fn rspf_cacerts(&mut self, url: &str) -> Result<Vec<Certificate>, String> {
        let r = self.rspf()?;
        let server = EstServer::parse(url).map_err(|e| e.to_string())?;
        let mut last = String::new();
        for cred in self.rspf_credentials(&r, unix(SystemTime::now()))? {
            let mut tls = tls(&cred, None, false)?;
            // /cacerts is open to all: a device certificate (perhaps a
            // token key, whose rustls path needs anchors we do not have
            // yet) is not needed to read it.
            tls.certificate = None;
            match EstClient::new(server.clone(), &tls, None).and_then(|c| c.cacerts()) {
                Ok((certs, _)) => return Ok(certs),
                Err(e) => last = format!("/cacerts with {}: {e}", cred.what),
            }
        }
        Err(last)
    }

    /// Steps 5–7 over RSPF: the Enrolment Exchange, then the granted
    /// certificate enrolment, then the completion message.
    pub(super) fn rspf_enrol(
        &mut self,
        current: Option<&Installed>,
        poll: PollPolicy,
        subject: Name,
        dns: Vec<String>,
        trusted: &[Certificate],
    ) -> Result<Event, String> {
        let r = self.rspf()?;
        let now = unix(SystemTime::now());
        let server = EstServer::parse(&self.profile.url).map_err(|e| e.to_string())?;
        // Read only when the bootstrap credential is tried: an operator may
        // remove a spent one-time token, and Kre needs none.
        let token = |r: &Rspf| -> Result<Option<Zeroizing<String>>, String> {
            match (&r.token, &r.token_file) {
                (Some(t), _) => Ok(Some(Zeroizing::new(t.clone()))),
                (None, Some(f)) => Self::secret_file(f).map(Some),
                (None, None) => Ok(None),
            }
        };
        let mut failures = Vec::new();
        let mut done = None;
        for cred in self.rspf_credentials(&r, now)? {
            // A token goes with the bootstrap credential only: Kre already proves the Enrolee.
            let enrolment_token = match cred.bootstrap {
                false => None,
                true => match token(&r) {
                    Ok(t) => t.map(|t| t.to_string()),
                    Err(e) => {
                        failures.push(format!("with {}: the Enrolment-Token: {e}", cred.what));
                        continue;
                    }
                },
            };
            let tls = tls(&cred, Some(trusted), true)?;
            let attempt = TlsHttp::new(&server.host, server.port, &tls).and_then(|http| {
                let e = match r.wire_profile {
                    WireProfile::ChangeRequest => {
                        let request = EnrolmentRequest {
                            supports_certificate_enrolment: true,
                            supports_maf_procedures: false,
                            enrolment_token,
                        };
                        protocol::enrol(&http, &request, r.format, r.mef_fqdn.as_deref())
                    }
                    // The profile loader made sure of the MEF's FQDN and the expiry.
                    WireProfile::V318 => {
                        let request = ExchangeRequest {
                            certificate_enrolment: true,
                            maf_enrolment: false,
                            remote_management: r.remote_management,
                        };
                        let (fqdn, expiry) = v318_settings(&r)?;
                        protocol::enrol_v318(&http, &request, r.format, fqdn, expiry)
                    }
                };
                e.map(|e| (http, e))
            });
            match attempt {
                Ok((http, e)) => {
                    done = Some((cred, http, e));
                    break;
                }
                Err(e) => {
                    self.say(&format!("Enrolment Exchange with {} failed: {e}", cred.what));
                    failures.push(format!("with {}: {e}", cred.what));
                }
            }
        }
        let Some((cred, http, e)) = done else {
            return Err(format!("Enrolment Exchange failed {}", failures.join("; ")));
        };
        let ex = flow::Exchanged::new(e, now).map_err(|e| e.to_string())?;
        enrolkit_files::write_private(&self.rspf_state_path(), ex.state.as_bytes())?;
        if let Some(out) = &r.state_output {
            let file = NewFile {
                path: out.clone(),
                bytes: Zeroizing::new(ex.state.as_bytes().to_vec()),
                mode: self.profile.output.key_mode,
            };
            store::install(&self.journal(), &[file], self.ownership()?)?;
        }
        self.say(&format!(
            "Enrolment Exchange with {} over {} {}: KeId {} confirmed (the same Enrolment Key at both ends), {} key(s) derived",
            cred.what,
            ex.enrolment.tls.backend,
            ex.enrolment.tls.version,
            ex.ke_id,
            ex.derived.len()
        ));
        if let Some(u) = ex
            .enrolment
            .v318
            .as_ref()
            .and_then(|v| v.get(enrolkit_exchange::InstructionType::RemoteManagement))
            .and_then(|m| m.uri.as_deref())
        {
            self.say(&format!("the MEF names the remote management server {u}"));
        }
        let enrol = |grant: &flow::CertificateGrant| -> crate::scep::Result<Event> {
            let how = EstEnrolment {
                server: grant.server.clone(),
                tls: cred.tls(Some(trusted), VERSIONS, false)?,
                basic: None,
                op: enrolkit_est::Operation::SimpleEnroll,
            };
            let ev = self.est_enrol(how, current, poll, subject, dns)?;
            if let Event::Issued { certificates, .. } = &ev {
                let leaf = certificates
                    .first()
                    .ok_or_else(|| crate::scep::ClientError::Unexpected("the reply holds no certificate".into()))?;
                grant.check(leaf)?;
            }
            Ok(ev)
        };
        if r.wire_profile == WireProfile::V318 {
            // V3.18 defines no completion message: the certificate
            // enrolment at the instructed URI is all there is.
            let c = ex
                .enrolment
                .instructions
                .certificate_enrolment
                .as_ref()
                .ok_or_else(|| {
                    format!(
                        "the MEF did not instruct certificate enrolment (KeId {}): there is no certificate to install",
                        ex.ke_id
                    )
                })?;
            let grant = flow::CertificateGrant::of(c, &server).map_err(|e| e.to_string())?;
            return enrol(&grant).map_err(|e| e.to_string());
        }
        let done = flow::certificate_enrolment(&http, &ex, r.format, &server, enrol);
        let Some(flow::Completed { outcome, told }) = done else {
            return Err(format!(
                "the MEF did not instruct certificate enrolment (KeId {}): there is no certificate to install",
                ex.ke_id
            ));
        };
        match told {
            Ok(()) => self.say(&format!(
                "told the MEF: certificate enrolment {}",
                if outcome.is_ok() { "succeeded" } else { "failed" }
            )),
            Err(e) => self.say(&format!("warning: the completion message was not accepted: {e}")),
        }
        outcome.map_err(|e| e.to_string())
    }
}
