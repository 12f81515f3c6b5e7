//! The agent's CMP enrolment (RFC 4210/9480, RFC 9483; 3GPP TS 33.310 §9
//! for base stations): steps 1–3 are a genm for the CA certificates, which
//! the machine validates against the pinned anchors like any served CA
//! certificates; step 5 is an ir protected by the profile's first-enrolment
//! credential (a MAC secret, or a vendor certificate's signature); step 7 is
//! a kur signed with the current certificate and key for a new key. Answers
//! must be protected by the MAC or by a certificate that chains to the
//! validated anchors with id-kp-cmcRA, and the issued certificate must
//! chain to them, before certConf ([`crate::cmp`]).
//!
//! | when | request | protected by |
//! |---|---|---|
//! | CA certificates (steps 1–3) | genm caCerts | the current certificate while one is installed, else the profile's credential |
//! | first enrolment, or re-enrolment after a profile change | ir | `[cmp]` reference/secret_file (MAC) or certificate/key (vendor) |
//! | renewal | kur, oldCertID = the current certificate | the current certificate and key (a file or the token) |

use super::driver::Driver;
use super::machine::{Credential as Installed, EnrolKind, Event};
use super::profile::CmpCredential;
use crate::cmp::CmpTrust;
use crate::flow::cmp::{self as flow, Ask, Credential, MacKind, Server};
use crate::flow::Progress;
use crate::scep::PollPolicy;
use enrolkit_cmp::{BodyType, SharedSecret};
use enrolkit_pkcs11::KeyLocation;
use x509_cert::name::Name;
use x509_cert::Certificate;

impl Driver {
    fn cmp_server(&self, poll: PollPolicy, anchors: &[Certificate]) -> Server {
        Server {
            url: self.profile.url.clone(),
            timeout: self.timeout,
            trust: CmpTrust {
                anchors: anchors.to_vec(),
                server_certs: vec![],
                legacy: false,
            },
            poll,
            recipient: None,
            dump: None,
        }
    }

    /// The profile's first-enrolment credential.
    fn cmp_first_credential(&self) -> Result<Credential, String> {
        let cmp = self.profile.cmp.as_ref().ok_or("protocol = \"cmp\" without [cmp]")?;
        match &cmp.credential {
            CmpCredential::Mac {
                reference,
                secret_file,
                legacy_mac,
            } => {
                let secret = Self::secret_file(secret_file)?;
                Ok(Credential::Mac {
                    reference: reference.clone(),
                    secret: SharedSecret::new(secret.as_bytes()),
                    mac: if *legacy_mac {
                        MacKind::PasswordBasedMac
                    } else {
                        MacKind::Pbmac1
                    },
                })
            }
            CmpCredential::Vendor { certificate, key } => {
                let mut certs = enrolkit_files::read_certificates(certificate)?;
                let certificate = certs.remove(0);
                let key = KeyLocation::parse(key)
                    .and_then(|l| l.load())
                    .map_err(|e| format!("cmp.key: {e}"))?;
                if key.spki() != &certificate.tbs_certificate.subject_public_key_info {
                    return Err("cmp.key is not the key of cmp.certificate".into());
                }
                Ok(Credential::Signature {
                    key,
                    certificate: Box::new(certificate),
                    chain: certs,
                })
            }
        }
    }

    /// The installed certificate and its key, as a signing credential.
    fn cmp_current_credential(&self, current: &Installed) -> Result<Credential, String> {
        let leaf = current.chain.first().ok_or("no installed certificate")?.clone();
        let key = self.current_key()?;
        Ok(Credential::Signature {
            key,
            certificate: Box::new(leaf),
            chain: current.chain.get(1..).unwrap_or_default().to_vec(),
        })
    }

    /// Steps 1–3: genm for the CA certificates, as served (the machine
    /// validates them against the pins).
    pub(super) fn cmp_cacerts(&mut self, _url: &str) -> Result<Vec<Certificate>, String> {
        let current = self.load_quiet();
        let credential = match current.as_ref().map(|c| self.cmp_current_credential(c)) {
            Some(Ok(c)) => c,
            _ => self.cmp_first_credential()?,
        };
        let poll = PollPolicy {
            interval: self.profile.polling.interval,
            window: self.profile.polling.window,
        };
        let session = flow::session(&self.cmp_server(poll, &[]), &credential).map_err(|e| e.to_string())?;
        let certs = session.ca_certs_as_served().map_err(|e| e.to_string())?;
        if certs.is_empty() {
            return Err("the CMP server's genp carries no CA certificates".into());
        }
        Ok(certs)
    }

    /// Steps 5 and 7: ir with the profile's credential, or kur signed with
    /// the current certificate; the new key is staged first.
    pub(super) fn cmp_enrol(
        &mut self,
        kind: EnrolKind,
        current: Option<&Installed>,
        poll: PollPolicy,
        subject: Name,
        dns: Vec<String>,
        trusted: &[Certificate],
    ) -> Result<Event, String> {
        let renewing = match (kind, current) {
            (EnrolKind::Renew, Some(c)) => match self.cmp_current_credential(c) {
                Ok(cred) => Some(cred),
                Err(e) => {
                    self.say(&format!(
                        "cannot sign a kur ({e}); enrolling with the profile's credential"
                    ));
                    None
                }
            },
            _ => None,
        };
        let (credential, body) = match renewing {
            Some(c) => (c, BodyType::Kur),
            None => (self.cmp_first_credential()?, BodyType::Ir),
        };
        let old_certificate = match (&credential, body) {
            (Credential::Signature { certificate, .. }, BodyType::Kur) => Some((**certificate).clone()),
            _ => None,
        };
        let key = self.staged_key(self.profile.key_type.spec(), current)?;
        let implicit_confirm = self.profile.cmp.as_ref().is_some_and(|c| c.implicit_confirm);
        // A kur keeps the current certificate's names (a changed subject in
        // the profile re-enrols by ir: it changes the generation).
        let (subject, dns) = match body {
            BodyType::Kur => (None, vec![]),
            _ => (Some(subject), dns),
        };
        let ask = Ask {
            kind: body,
            subject,
            dns_names: dns,
            old_certificate,
            implicit_confirm,
        };
        let session = flow::session(&self.cmp_server(poll, trusted), &credential).map_err(|e| e.to_string())?;
        let issued = flow::certificate(&session, &ask, key.as_ref(), &mut |p| {
            if let Progress::Pending { attempt, elapsed } = p {
                eprintln!("  waiting: pollReq {attempt} after {}s", elapsed.as_secs())
            }
        })
        .map_err(|e| e.to_string())?;
        self.say(&format!(
            "{body} answered{}",
            if issued.implicit_confirm {
                ", implicitConfirm granted"
            } else {
                "; certConf sent, pkiConf received"
            }
        ));
        let mut certificates = vec![issued.certificate];
        let n = issued.chain.len();
        certificates.extend(issued.chain.into_iter().take(n.saturating_sub(1)));
        Ok(Event::Issued {
            certificates,
            public_key: key.spki().clone(),
        })
    }
}
