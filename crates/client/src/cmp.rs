//! The CMP client (RFC 4210 as updated by RFC 9480, Lightweight CMP
//! Profile RFC 9483) over HTTP (RFC 6712): the messages are
//! [`enrolkit_cmp::Requester`]'s; this module moves them and decides trust.
//!
//! | step | rule |
//! |---|---|
//! | transfer | one POST of `application/pkixcmp` per message to the URL as given (e.g. `http://host/.well-known/cmp`, `http://host/pkix/`); an answer of that type is read whatever the HTTP status (an error message may come with a 4xx or 5xx), anything else is an HTTP error |
//! | answer protection | to a MAC request: the same MAC, or a signature by a trusted server certificate (a server that cannot check our MAC signs its error); to a signed request: a signature by a trusted server certificate only ([`crate::trust::cmp_signer`]) |
//! | issued certificate | for our key, not a CA, valid now, chaining to the pinned anchors through extraCerts and caPubs ([`crate::trust::issued`]), checked before certConf; caPubs are never trusted by themselves |
//! | certConf | sent after ip/cp/kup unless implicitConfirm was asked for and granted; a certificate that fails the check is rejected in the certConf, then reported |
//! | waiting | pollReq after the server's checkAfter (or [`PollPolicy::interval`] when it gives none), until [`PollPolicy::window`] has passed |
//! | refusal | an error message or a rejection becomes [`ClientError::CmpRefused`] with its PKIStatusInfo as text (status, failInfo, statusString) |

use crate::scep::{ClientError, PollPolicy, Result};
use enrolkit_cmp::general::{GenRequest, GenResponse};
use enrolkit_cmp::revocation::CrlReason;
use enrolkit_cmp::{
    Answer, BodyType, CertificateRequest, Claimed, CmpError, Opened, PkiMessage, PkiStatusInfo, Protect, Requester,
    ResponseTrust, Sent, Verified,
};
use rand_core::OsRng;
use std::cell::Cell;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};
use x509_cert::Certificate;

/// RFC 6712 §3.4: the media type of CMP requests and answers.
pub const CONTENT_TYPE: &str = "application/pkixcmp";

/// Largest answer read (the default [`enrolkit_cmp::Limits`] size).
pub const MAX_MESSAGE: usize = 1 << 20;

/// The HTTP transfer of CMP messages to one URL (RFC 6712).
pub struct CmpClient {
    http: reqwest::blocking::Client,
    url: String,
    /// `url` without its userinfo, for errors.
    shown: String,
    /// The whole reply arrives within this (twice the per-read timeout).
    deadline: Duration,
}

impl CmpClient {
    /// A client for `url` (`http://…` or `https://…`, the path as the server
    /// wants it) with a per-request timeout; for HTTPS, `tls_anchors` are
    /// trusted for the server's TLS certificate beside the system's roots.
    pub fn new(url: &str, timeout: Duration, tls_anchors: &[Certificate]) -> Result<Self> {
        use der::Encode;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ClientError::Unexpected(format!(
                "CMP URL {url:?}: give http://host[:port]/path or https://…"
            )));
        }
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("enrolkit/", env!("CARGO_PKG_VERSION")));
        for a in tls_anchors {
            let der = a.to_der().map_err(|e| ClientError::Unexpected(e.to_string()))?;
            let c = reqwest::Certificate::from_der(&der).map_err(|e| ClientError::Unexpected(e.to_string()))?;
            builder = builder.add_root_certificate(c);
        }
        let http = builder.build().map_err(|e| ClientError::Network {
            url: crate::scep::redact_userinfo(url),
            reason: e.to_string(),
        })?;
        Ok(CmpClient {
            http,
            url: url.to_owned(),
            shown: crate::scep::redact_userinfo(url),
            deadline: timeout.saturating_mul(2),
        })
    }

    /// The URL messages go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// POST one message and return the answer (a PKIMessage not yet parsed).
    pub fn transfer(&self, message: &[u8]) -> Result<Vec<u8>> {
        let rb = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(message.to_vec());
        let (status, ct, body) = crate::scep::send_bounded(&self.shown, rb, MAX_MESSAGE, self.deadline)?;
        let is_cmp = ct
            .as_deref()
            .and_then(|c| c.split(';').next())
            .is_some_and(|c| c.trim().eq_ignore_ascii_case(CONTENT_TYPE));
        if is_cmp && !body.is_empty() {
            return Ok(body);
        }
        if !(200..300).contains(&status) {
            return Err(crate::scep::http_error(status, &body));
        }
        Err(ClientError::Unexpected(format!(
            "{}: HTTP {status} answered with Content-Type {}, not {CONTENT_TYPE}",
            self.url,
            ct.as_deref().unwrap_or("(none)")
        )))
    }
}

/// What answers and issued certificates must chain to.
#[derive(Debug, Clone, Default)]
pub struct CmpTrust {
    /// Trust anchors (pinned): issued certificates must chain to one, and
    /// a signing server certificate too unless pinned itself.
    pub anchors: Vec<Certificate>,
    /// Server protection certificates pinned as themselves (`--server-cert`).
    pub server_certs: Vec<Certificate>,
    /// Accept SHA-1 certificate signatures.
    pub legacy: bool,
}

/// A certificate the server issued and the client accepted.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate.
    pub certificate: Certificate,
    /// The validated path above it: intermediates, then the anchor.
    pub chain: Vec<Certificate>,
    /// Whether implicitConfirm was granted (no certConf was sent).
    pub implicit_confirm: bool,
    /// pollReqs sent while the request was waiting.
    pub polls: u32,
}

/// PKIStatusInfo as one line: `rejection, failInfo badCertTemplate: text`.
pub fn describe(status: &PkiStatusInfo) -> String {
    let mut s = lower_first(&format!("{:?}", status.status));
    if let Some(f) = status.fail_info.filter(|f| !f.is_empty()) {
        let names: Vec<String> = f.iter().map(|b| lower_first(&format!("{b:?}"))).collect();
        s.push_str(&format!(", failInfo {}", names.join(" ")));
    }
    let text = status.text();
    if !text.is_empty() {
        s.push_str(": ");
        s.push_str(&text.chars().take(400).collect::<String>());
    }
    s
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn refused(what: &'static str, status: &PkiStatusInfo) -> ClientError {
    ClientError::CmpRefused {
        what,
        status: describe(status),
    }
}

fn unexpected(what: &str, answer: &Answer) -> ClientError {
    let name = match answer {
        Answer::Certificate { .. } => "a certificate",
        Answer::Waiting { .. } => "waiting",
        Answer::PollAgain { .. } => "pollRep",
        Answer::Rejected(_) => "a rejection",
        Answer::Revocation(_) => "rp",
        Answer::General(_) => "genp",
        Answer::Confirmed => "pkiConf",
        Answer::Error(_) => "error",
    };
    ClientError::Unexpected(format!("the CMP server answered {what} with {name}"))
}

/// A CMP client bound to a server, an identity ([`Requester`]) and what it trusts.
pub struct CmpSession<'a> {
    /// The transport.
    pub client: CmpClient,
    /// Who we are and how requests are protected.
    pub requester: Requester<'a>,
    /// What answers and certificates must chain to.
    pub trust: CmpTrust,
    /// How long and how often to poll a waiting request.
    pub poll: PollPolicy,
    dump: Option<PathBuf>,
    count: Cell<u32>,
}

impl<'a> CmpSession<'a> {
    /// A session; nothing is sent yet.
    pub fn new(client: CmpClient, requester: Requester<'a>, trust: CmpTrust, poll: PollPolicy) -> Self {
        CmpSession {
            client,
            requester,
            trust,
            poll,
            dump: None,
            count: Cell::new(0),
        }
    }

    /// Also write every message sent and received to `dir`, as
    /// `NN-request-<body>.der` and `NN-answer.der` (for test vectors and
    /// debugging; the messages hold no secret, a MAC's secret is not in them).
    pub fn dump_to(mut self, dir: PathBuf) -> Self {
        self.dump = Some(dir);
        self
    }

    fn record(&self, name: &str, bytes: &[u8]) -> Result<()> {
        if let Some(dir) = &self.dump {
            let n = self.count.get();
            self.count.set(n + 1);
            crate::flow::write_public(&dir.join(format!("{n:02}-{name}.der")), bytes)?;
        }
        Ok(())
    }

    /// Send one message and open the answer: its protection checked as the
    /// module documentation says, the transaction and nonces by
    /// [`Requester::open`].
    pub fn exchange(&self, message: &[u8], sent: &Sent) -> Result<Opened> {
        self.send_and_open(message, sent, true)
    }

    fn send_and_open(&self, message: &[u8], sent: &Sent, check_signer: bool) -> Result<Opened> {
        self.record(&format!("request-{}", sent.body_type), message)?;
        let reply = self.client.transfer(message)?;
        self.record("answer", &reply)?;
        let parsed = PkiMessage::parse(&reply, &self.requester.limits)?;
        let claimed = parsed.claimed_protection(&self.requester.policy)?;
        let opened = match (&self.requester.protect, claimed) {
            (Protect::Mac { secret, .. }, Claimed::Mac { .. }) => {
                self.requester.open(&reply, sent, &ResponseTrust::Mac(secret))?
            }
            (_, Claimed::Signature { .. }) => {
                let opened = self.requester.open(&reply, sent, &ResponseTrust::SignerToValidate)?;
                let Verified::Signature { signer, extra_certs } = &opened.protection else {
                    return Err(CmpError::WrongIntegrity("a signature that verified as a MAC").into());
                };
                if check_signer {
                    crate::trust::cmp_signer(
                        signer,
                        extra_certs,
                        &self.trust.anchors,
                        &self.trust.server_certs,
                        SystemTime::now(),
                        self.trust.legacy,
                    )?;
                }
                opened
            }
            (Protect::Signature { .. }, Claimed::Mac { .. }) => {
                return Err(CmpError::WrongIntegrity("a MAC-protected answer to a signed request").into())
            }
            (_, Claimed::None) => return Err(CmpError::Unprotected.into()),
        };
        Ok(opened)
    }

    /// ir, cr or kur for `req` (implicitConfirm asked for when `implicit`),
    /// polled while waiting, the certificate checked, then certConf.
    /// `progress` hears each poll (its number and the time since the request).
    pub fn certificate(
        &self,
        kind: BodyType,
        req: &CertificateRequest<'_>,
        implicit: bool,
        progress: &mut dyn FnMut(u32, Duration),
    ) -> Result<Issued> {
        let first = self.requester.certificate_request(kind, req, implicit, &mut OsRng)?;
        self.run(first, progress)
    }

    /// p10cr carrying `csr_der`, as [`CmpSession::certificate`].
    pub fn p10cr(&self, csr_der: &[u8], implicit: bool, progress: &mut dyn FnMut(u32, Duration)) -> Result<Issued> {
        let first = self.requester.p10cr(csr_der, implicit, &mut OsRng)?;
        self.run(first, progress)
    }

    fn run(&self, first: (Vec<u8>, Sent), progress: &mut dyn FnMut(u32, Duration)) -> Result<Issued> {
        let start = Instant::now();
        let (mut message, mut sent) = first;
        let mut polls = 0u32;
        loop {
            let opened = self.exchange(&message, &sent)?;
            match &opened.answer {
                Answer::Certificate {
                    certificate,
                    ca_pubs,
                    implicit_confirm,
                    ..
                } => {
                    let public_key = sent
                        .public_key
                        .as_ref()
                        .ok_or_else(|| ClientError::Unexpected("no requested key to check against".into()))?;
                    let mut intermediates = opened.message.extra_certs.clone();
                    intermediates.extend(ca_pubs.iter().cloned());
                    let checked = crate::trust::issued(
                        certificate,
                        public_key,
                        &self.trust.anchors,
                        &intermediates,
                        SystemTime::now(),
                        self.trust.legacy,
                    );
                    let path = match checked {
                        Ok(p) => p,
                        Err(e) => {
                            if !implicit_confirm {
                                // RFC 9483 §4.1.1: reject what we cannot accept; best effort.
                                let reject = PkiStatusInfo::rejection(
                                    enrolkit_cmp::FailureInfo::IncorrectData,
                                    Some("the certificate does not chain to the client's trust anchor"),
                                );
                                if let Ok((conf, s)) = self.requester.cert_conf(&opened, Some(reject), &mut OsRng) {
                                    let _ = self.exchange(&conf, &s);
                                }
                            }
                            return Err(e);
                        }
                    };
                    if !implicit_confirm {
                        let (conf, s) = self.requester.cert_conf(&opened, None, &mut OsRng)?;
                        let done = self.exchange(&conf, &s)?;
                        match &done.answer {
                            Answer::Confirmed => {}
                            Answer::Error(e) => return Err(refused("the certConf", &e.pki_status_info)),
                            other => return Err(unexpected("the certConf", other)),
                        }
                    }
                    let mut chain = path.into_certificates();
                    let certificate = chain.remove(0);
                    return Ok(Issued {
                        certificate,
                        chain,
                        implicit_confirm: *implicit_confirm,
                        polls,
                    });
                }
                Answer::Waiting { .. } | Answer::PollAgain { .. } => {
                    let elapsed = start.elapsed();
                    if elapsed >= self.poll.window {
                        return Err(ClientError::WindowExceeded {
                            elapsed,
                            attempts: polls,
                        });
                    }
                    let wait = match &opened.answer {
                        Answer::PollAgain { check_after, .. } if !check_after.is_zero() => *check_after,
                        _ => self.poll.interval,
                    };
                    std::thread::sleep(wait.min(self.poll.window - elapsed));
                    polls += 1;
                    progress(polls, start.elapsed());
                    (message, sent) = self.requester.poll_req(&opened, &mut OsRng)?;
                }
                Answer::Rejected(s) => return Err(refused("the certificate request", s)),
                Answer::Error(e) => return Err(refused("the request", &e.pki_status_info)),
                other => return Err(unexpected("the certificate request", other)),
            }
        }
    }

    /// rr for `certificate`: Ok once the server answers rp with a granted status.
    pub fn revoke(&self, certificate: &Certificate, reason: Option<CrlReason>) -> Result<()> {
        let (message, sent) = self.requester.rr(certificate, reason, &mut OsRng)?;
        let opened = self.exchange(&message, &sent)?;
        match &opened.answer {
            Answer::Revocation(s) if s.is_granted() => Ok(()),
            Answer::Revocation(s) => Err(refused("the revocation", s)),
            Answer::Error(e) => Err(refused("the revocation", &e.pki_status_info)),
            other => Err(unexpected("the rr", other)),
        }
    }

    /// genm asking for `requests`: the genp's answers.
    pub fn general(&self, requests: &[GenRequest]) -> Result<Vec<GenResponse>> {
        let (message, sent) = self.requester.genm(requests, &mut OsRng)?;
        let opened = self.exchange(&message, &sent)?;
        match opened.answer {
            Answer::General(g) => Ok(g),
            Answer::Error(e) => Err(refused("the genm", &e.pki_status_info)),
            other => Err(unexpected("the genm", &other)),
        }
    }

    /// genm for the CA certificates (RFC 9483 §4.3.1) as served: the
    /// answer's protection verifies (a MAC with our secret, or a signature
    /// by its own extraCerts certificate) but the signer is not checked
    /// against anchors, as a SCEP GetCACert is not: for a caller that
    /// validates what comes back against pinned fingerprints (the agent,
    /// steps 1–4), before the anchors are known.
    pub fn ca_certs_as_served(&self) -> Result<Vec<Certificate>> {
        let (message, sent) = self.requester.genm(&[GenRequest::CaCerts], &mut OsRng)?;
        let opened = self.send_and_open(&message, &sent, false)?;
        let answers = match opened.answer {
            Answer::General(g) => g,
            Answer::Error(e) => return Err(refused("the genm", &e.pki_status_info)),
            other => return Err(unexpected("the genm", &other)),
        };
        Ok(answers
            .into_iter()
            .find_map(|a| match a {
                GenResponse::CaCerts(c) => Some(c),
                _ => None,
            })
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use enrolkit_cmp::{FailureInfo, FailureInfoSet};

    #[test]
    fn a_refusal_reads_as_status_fail_info_and_text() {
        let s = PkiStatusInfo::rejection(
            FailureInfoSet::of(FailureInfo::BadCertTemplate).with(FailureInfo::NotAuthorized),
            Some("CN=x is not yours"),
        );
        assert_eq!(
            describe(&s),
            "rejection, failInfo badCertTemplate notAuthorized: CN=x is not yours"
        );
        assert_eq!(describe(&PkiStatusInfo::accepted()), "accepted");
    }

    #[test]
    fn only_http_urls_are_taken() {
        assert!(CmpClient::new("ftp://x/", Duration::from_secs(1), &[]).is_err());
        assert!(CmpClient::new("http://127.0.0.1:1/pkix/", Duration::from_secs(1), &[]).is_ok());
    }
}
