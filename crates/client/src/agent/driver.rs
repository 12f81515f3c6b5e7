//! The agent's I/O: it carries out the machine's [`Action`]s over SCEP, EST
//! and HTTP, against the file stores, and reports [`Event`]s back. All
//! decisions are the machine's; this only does what it is told and says
//! what happened, in one line when it fails.

use super::machine::{Action, Anchors, Credential, EnrolKind, Event, Fetch, Machine, Notice, Reason, Saved, Status};
use super::profile::{expand, Format, Profile, Protocol};
use super::store::{self, NewFile, Ownership};
use crate::est::{ders, EnrollReply, EstClient, EstServer};
use crate::flow::Progress;
use crate::scep::{ClientError, PollPolicy, RenewalForm, ScepClient, ScepSession};
use der::{Decode, Encode, EncodePem};
use enrolkit_keys::{KeyKind, PrivateKey};
use enrolkit_pkcs11::KeyLocation;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime};
use x509_cert::name::Name;
use x509_cert::Certificate;
use zeroize::Zeroizing;

/// Largest revocation response or CA bundle read (CRLs of big CAs run to megabytes).
pub const MAX_FETCH: u64 = 16 * 1024 * 1024;

/// How an EST enrolment authenticates and what it asks for.
pub(super) struct EstEnrolment {
    /// The EST server.
    pub server: EstServer,
    /// The TLS session's configuration.
    pub tls: enrolkit_tls::ClientTlsConfig,
    /// HTTP Basic credentials, if any.
    pub basic: Option<(String, Zeroizing<String>)>,
    /// simpleenroll or simplereenroll.
    pub op: enrolkit_est::Operation,
}

/// Carries out actions for one profile.
pub struct Driver {
    /// The profile in force.
    pub profile: Profile,
    /// This profile's state directory (0700).
    pub dir: PathBuf,
    /// Value of `{hostname}`.
    pub hostname: String,
    /// Per-request network timeout.
    pub timeout: Duration,
    /// Where progress lines go.
    pub log: Box<dyn FnMut(&str) + Send>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("profile", &self.profile.name)
            .field("dir", &self.dir)
            .finish()
    }
}

fn pem_all(certs: &[Certificate]) -> Result<String, String> {
    let mut s = String::new();
    for c in certs {
        s.push_str(&c.to_pem(der::pem::LineEnding::LF).map_err(|e| e.to_string())?);
    }
    Ok(s)
}

fn read_certs(path: &Path) -> Result<Vec<Certificate>, String> {
    let b = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if b.starts_with(b"-----") {
        Certificate::load_pem_chain(&b).map_err(|e| format!("{}: {e}", path.display()))
    } else {
        Certificate::from_der(&b)
            .map(|c| vec![c])
            .map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Escape an RFC 4514 attribute value.
fn rdn_value(v: &str) -> String {
    let mut out = String::new();
    for (i, c) in v.chars().enumerate() {
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') || (i == 0 && (c == '#' || c == ' ')) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// When a file written by the agent was last changed, for `status`.
fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

impl Driver {
    /// A driver for `profile` keeping its state under `state_root/<name>`.
    pub fn new(profile: Profile, state_root: &Path) -> Result<Driver, String> {
        let dir = state_root.join(&profile.name);
        enrolkit_files::create_private_dir(&dir)?;
        let hostname = nix::unistd::gethostname()
            .map_err(|e| format!("hostname: {e}"))?
            .to_string_lossy()
            .into_owned();
        Ok(Driver {
            profile,
            dir,
            hostname,
            timeout: Duration::from_secs(30),
            log: Box::new(|l| eprintln!("{l}")),
        })
    }

    pub(super) fn say(&mut self, line: &str) {
        let name = self.profile.name.clone();
        (self.log)(&format!("[{name}] {line}"));
    }

    pub(super) fn journal(&self) -> PathBuf {
        self.dir.join("install.journal")
    }
    fn next_key_path(&self) -> PathBuf {
        self.dir.join("next-key.pem")
    }
    /// With a token key store: the CKA_ID (hex) of the staged key pair.
    fn next_key_id_path(&self) -> PathBuf {
        self.dir.join("next-key.id")
    }

    /// The profile's token URI with `id` set: one key pair in the token.
    /// `None` with the file key store.
    fn token_key(&self, id: &[u8]) -> Result<Option<KeyLocation>, String> {
        let Some(store) = &self.profile.key_store else {
            return Ok(None);
        };
        match KeyLocation::parse(store).map_err(|e| e.to_string())? {
            KeyLocation::Token(mut uri) => {
                uri.id = Some(id.to_vec());
                Ok(Some(KeyLocation::Token(uri)))
            }
            KeyLocation::File(_) => Err("key.store: not a pkcs11: URI".into()),
        }
    }

    /// `key_id` (hex) from a small TOML record, e.g. `credential.toml`.
    fn key_id_in(path: &Path) -> Option<Vec<u8>> {
        let t = std::fs::read_to_string(path).ok()?.parse::<toml::Table>().ok()?;
        hex::decode(t.get("key_id")?.as_str()?).ok()
    }

    /// Where the staged key is, if one is staged.
    fn staged_location(&self) -> Result<Option<KeyLocation>, String> {
        if self.profile.key_store.is_none() {
            let p = self.next_key_path();
            return Ok(p.exists().then(|| KeyLocation::File(p)));
        }
        match std::fs::read_to_string(self.next_key_id_path()) {
            Ok(id) => match hex::decode(id.trim()) {
                Ok(id) => self.token_key(&id),
                Err(_) => Ok(None),
            },
            Err(_) => Ok(None),
        }
    }

    /// Where the installed key is: `output.key`, or the token key pair
    /// whose id the installed credential's record names.
    fn installed_location(&self) -> Result<Option<KeyLocation>, String> {
        if self.profile.key_store.is_none() {
            return Ok(self.profile.output.key.clone().map(KeyLocation::File));
        }
        match Self::key_id_in(&self.record_path()) {
            Some(id) => self.token_key(&id),
            None => Ok(None),
        }
    }

    /// Whether the staged key is the one the installed certificate certifies.
    fn staged_is_installed(&self) -> bool {
        let Some(staged) = self.staged_location().ok().flatten().and_then(|k| k.load().ok()) else {
            return false;
        };
        read_certs(&self.profile.output.certificate)
            .ok()
            .and_then(|c| c.into_iter().next())
            .is_some_and(|leaf| &leaf.tbs_certificate.subject_public_key_info == staged.spki())
    }

    /// Forget the staged key: the file, or the id file and (unless it is
    /// the installed one) the token key pair it names.
    fn discard_staged(&mut self) {
        if self.profile.key_store.is_none() {
            let _ = std::fs::remove_file(self.next_key_path());
            return;
        }
        let staged = self.staged_location().ok().flatten();
        let installed = self.installed_location().ok().flatten();
        if let Some(k) = staged.filter(|k| Some(k) != installed.as_ref()) {
            if let Err(e) = k.remove() {
                self.say(&format!("cannot delete the abandoned staged key {k}: {e}"));
                return;
            }
        }
        let _ = std::fs::remove_file(self.next_key_id_path());
    }
    fn record_path(&self) -> PathBuf {
        self.dir.join("credential.toml")
    }
    /// The validated intermediates of the installed credential (PEM; empty
    /// when the anchor issued the leaf), installed with it whatever
    /// `output.chain` says, so revocation checks reach every certificate.
    fn chain_path(&self) -> PathBuf {
        self.dir.join("chain.pem")
    }
    /// What the machine keeps across restarts ([`Saved`]).
    pub fn saved_path(&self) -> PathBuf {
        self.dir.join("schedule.toml")
    }
    fn previous_dir(&self) -> PathBuf {
        self.dir.join("previous")
    }
    /// Where `status` finds the last state.
    pub fn status_path(&self) -> PathBuf {
        self.dir.join("status.toml")
    }
    /// The file whose presence asks for renewal now (`enrol agent renew`).
    pub fn directive_path(&self) -> PathBuf {
        self.dir.join("renew-now")
    }

    /// Every path an install may write.
    fn outputs(&self) -> Vec<PathBuf> {
        let o = &self.profile.output;
        let mut v = vec![o.certificate.clone(), self.record_path(), self.chain_path()];
        v.extend(o.key.iter().cloned());
        v.extend(o.chain.iter().cloned());
        v.extend(o.trust_anchor.iter().cloned());
        v.extend(self.profile.rspf.iter().filter_map(|r| r.state_output.clone()));
        v
    }

    pub(super) fn ownership(&self) -> Result<Ownership, String> {
        self.profile
            .output
            .ownership()
            .map_err(|(field, reason)| format!("{field}: {reason}"))
    }

    /// Carry out one action (not `Wait` or `Halt`, which the runner handles).
    pub fn execute(&mut self, action: &Action, now: SystemTime) -> Event {
        let r = match action {
            Action::LoadStores => self.load().map(Event::Loaded),
            Action::FetchCaCerts => {
                let (p, u) = (self.profile.protocol, self.profile.url.clone());
                self.fetch_ca(p, &u).map(Event::CaCerts)
            }
            Action::Enrol { kind, reason, anchors } => {
                self.say(&format!("enrolling ({reason:?}, {kind:?})"));
                self.enrol(*kind, anchors)
            }
            Action::Fetch(f) => self.fetch(f).map(Event::Fetched),
            Action::FetchPeer { index } => match self.profile.peers.get(*index).cloned() {
                Some(p) => self.fetch_ca(p.protocol, &p.url).map(Event::PeerCerts),
                None => Err(format!("no peer {index}")),
            },
            Action::StorePeer { index, certs } => self.store_peer(*index, certs).map(|()| Event::Done),
            Action::Install {
                chain,
                anchor,
                generation,
            } => self
                .install(chain, anchor, generation, now)
                .map(|warning| match warning {
                    None => Event::Done,
                    Some(w) => Event::DoneWithWarning(w),
                }),
            Action::Notify(n) => self.notify(n).map(|()| Event::Done),
            Action::Clean { keep_staged } => self.clean(now, *keep_staged).map(|()| Event::Done),
            Action::Wait { .. } | Action::Halt { .. } => Ok(Event::Tick),
        };
        match r {
            Ok(ev) => ev,
            Err(e) => {
                self.say(&format!("failed: {e}"));
                Event::Failed(e)
            }
        }
    }

    /// The installed credential, after finishing or discarding an interrupted install.
    fn load(&mut self) -> Result<Option<Credential>, String> {
        let outputs = self.outputs();
        match store::recover(&self.journal(), outputs.iter().map(PathBuf::as_path))? {
            store::Recovery::Clean => {}
            store::Recovery::Restored { why } => self.say(&format!(
                "an interrupted install could not be completed ({why}); the previous credential was put back"
            )),
            r => self.say(&format!("interrupted install found: {r:?}")),
        }
        let o = self.profile.output.clone();
        if !o.certificate.exists() {
            return Ok(None);
        }
        let mut chain = match read_certs(&o.certificate) {
            Ok(c) if !c.is_empty() => c.into_iter().take(1).collect::<Vec<_>>(),
            Ok(_) | Err(_) => {
                self.say("the installed certificate cannot be read; enrolling anew");
                return Ok(None);
            }
        };
        let Some(leaf) = chain.first() else { return Ok(None) };
        let intermediates = self.intermediates(leaf);
        chain.extend(intermediates);
        let Some(leaf) = chain.first() else { return Ok(None) };
        if o.key.is_some() || self.profile.key_store.is_some() {
            let matches = self
                .installed_location()?
                .and_then(|k| k.load().ok())
                .is_some_and(|key| key.spki() == &leaf.tbs_certificate.subject_public_key_info);
            if !matches {
                self.say("the installed key does not match the installed certificate; enrolling anew");
                return Ok(None);
            }
        }
        let serial = hex::encode(leaf.tbs_certificate.serial_number.as_bytes());
        let generation = std::fs::read_to_string(self.record_path())
            .ok()
            .and_then(|t| t.parse::<toml::Table>().ok())
            .filter(|t| t.get("serial").and_then(|s| s.as_str()) == Some(serial.as_str()))
            .and_then(|t| t.get("generation").and_then(|g| g.as_str()).map(str::to_owned));
        Ok(Some(Credential { chain, generation }))
    }

    /// Steps 1 and 3 (and 9–10 for a peer): the CA certificates as served.
    /// EST's bootstrap connection is unauthenticated; the machine pins what
    /// it returns, and the enrolment connection then authenticates the
    /// server against the pinned set.
    fn fetch_ca(&mut self, protocol: Protocol, url: &str) -> Result<Vec<Certificate>, String> {
        match protocol {
            Protocol::Scep => {
                let c = ScepClient::new(url, self.timeout).map_err(|e| e.to_string())?;
                // As served: the machine validates them against its pins (steps 1–4).
                let ca = c.ca_certs_unverified().map_err(|e| e.to_string())?;
                let mut v = vec![ca.ca];
                v.extend(ca.ra);
                v.extend(ca.chain);
                Ok(v)
            }
            Protocol::Rspf => self.rspf_cacerts(url),
            Protocol::Cmp => self.cmp_cacerts(url),
            Protocol::Est => {
                let server = EstServer::parse(url).map_err(|e| e.to_string())?;
                let tls = self.est_tls(enrolkit_tls::ServerTrust::Bootstrap, None)?;
                let client = EstClient::new(server, &tls, None).map_err(|e| e.to_string())?;
                Ok(client.cacerts().map_err(|e| e.to_string())?.0)
            }
        }
    }

    fn est_tls(
        &self,
        trust: enrolkit_tls::ServerTrust,
        certificate: Option<enrolkit_tls::ClientCertificate>,
    ) -> Result<enrolkit_tls::ClientTlsConfig, String> {
        let a = &self.profile.auth;
        let psk = match (&a.psk_identity, &a.psk_file) {
            (Some(id), Some(f)) if certificate.is_none() => {
                Some((id.clone(), enrolkit_tls::PskKey::Fixed(enrolkit_files::read_secret(f)?)))
            }
            _ => None,
        };
        Ok(enrolkit_tls::ClientTlsConfig {
            trust,
            certificate,
            psk,
            min_version: enrolkit_tls::TlsVersion::Tls12,
            max_version: enrolkit_tls::TlsVersion::Tls13,
            keying_export: None,
        })
    }

    pub(super) fn subject(&self) -> Result<(Name, Vec<String>), String> {
        let s = &self.profile.subject;
        let (h, p) = (self.hostname.as_str(), self.profile.name.as_str());
        let mut parts = vec![format!("CN={}", rdn_value(&expand(&s.cn, h, p)))];
        for (k, v) in [("OU", &s.ou), ("O", &s.o), ("C", &s.c)] {
            if let Some(v) = v {
                parts.push(format!("{k}={}", rdn_value(v)));
            }
        }
        let name = Name::from_str(&parts.join(",")).map_err(|e| format!("subject: {e}"))?;
        Ok((name, s.dns.iter().map(|d| expand(d, h, p)).collect()))
    }

    pub(super) fn secret_file(path: &Path) -> Result<Zeroizing<String>, String> {
        enrolkit_files::read_secret_text(path)
    }

    fn challenge(&self) -> Result<Option<Zeroizing<String>>, String> {
        let a = &self.profile.auth;
        match (&a.challenge, &a.challenge_file) {
            (Some(c), _) => Ok(Some(Zeroizing::new(c.clone()))),
            (None, Some(f)) => Self::secret_file(f).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// The key for this enrolment: the staged one from an earlier attempt
    /// (so a PENDING request is polled with the key it was made with), unless
    /// it is the installed key or of the wrong type; else a fresh one, staged
    /// before it is used (a 0600 file, or a key pair generated in the token
    /// whose id is kept in the state directory).
    pub(super) fn staged_key(
        &mut self,
        spec: enrolkit_keys::KeySpec,
        current: Option<&Credential>,
    ) -> Result<Box<dyn PrivateKey>, String> {
        if let Some(k) = self.staged_location()?.and_then(|l| l.load().ok()) {
            let installed = current
                .and_then(|c| c.chain.first())
                .is_some_and(|l| &l.tbs_certificate.subject_public_key_info == k.spki());
            let kind_ok = matches!(
                (spec, k.kind()),
                (enrolkit_keys::KeySpec::EcP256, KeyKind::EcP256)
                    | (enrolkit_keys::KeySpec::Rsa2048, KeyKind::Rsa(2048))
                    | (enrolkit_keys::KeySpec::Rsa3072, KeyKind::Rsa(3072))
                    | (enrolkit_keys::KeySpec::Rsa4096, KeyKind::Rsa(4096))
            );
            if !installed && kind_ok {
                self.say("re-using the key staged by an earlier attempt");
                return Ok(k);
            }
            if !installed {
                self.discard_staged();
            }
        }
        match &self.profile.key_store {
            None => {
                let (k, _) = KeyLocation::File(self.next_key_path())
                    .generate(spec)
                    .map_err(|e| e.to_string())?;
                Ok(k)
            }
            Some(store) => {
                let (k, at) = KeyLocation::parse(store)
                    .and_then(|l| l.generate_version(spec))
                    .map_err(|e| e.to_string())?;
                let KeyLocation::Token(uri) = &at else {
                    return Err("key.store: not a pkcs11: URI".into());
                };
                let id = hex::encode(uri.id.as_deref().unwrap_or_default());
                enrolkit_files::write_private(&self.next_key_id_path(), id.as_bytes())?;
                self.say(&format!("generated a key pair in the token: {at}"));
                Ok(k)
            }
        }
    }

    pub(super) fn current_key(&self) -> Result<Box<dyn PrivateKey>, String> {
        self.installed_location()?
            .ok_or("no installed key")?
            .load()
            .map_err(|e| e.to_string())
    }

    /// Steps 5–7.
    fn enrol(&mut self, kind: EnrolKind, anchors: &Anchors) -> Result<Event, String> {
        let current = self.load_quiet();
        let poll = PollPolicy {
            interval: self.profile.polling.interval,
            window: self.profile.polling.window,
        };
        let (subject, dns) = self.subject()?;
        let mut trusted = vec![anchors.anchor.clone()];
        trusted.extend(anchors.below.iter().cloned());
        match self.profile.protocol {
            Protocol::Scep => {
                let client = ScepClient::new(&self.profile.url, self.timeout).map_err(|e| e.to_string())?;
                // Pinned to what the machine validated a moment ago (step 4).
                let pins = trusted.iter().map(enrolkit_pkix::fingerprint::sha256).collect();
                let session =
                    ScepSession::open(client, &crate::trust::Trust::Pinned(pins)).map_err(|e| e.to_string())?;
                // The certificates used now must be the ones validated a moment ago.
                let served = std::iter::once(&session.ca.ca)
                    .chain(&session.ca.ra)
                    .chain(&session.ca.chain);
                // An expired extra certificate the validation set aside may
                // still be served among the chain certificates (never as CA or RA).
                if let Some(c) = served
                    .into_iter()
                    .find(|c| !(trusted.contains(c) || (anchors.ignored.contains(c) && session.ca.chain.contains(c))))
                {
                    return Err(format!(
                        "the server now offers CA certificate {} that was not validated",
                        c.tbs_certificate.subject
                    ));
                }
                let key = self.staged_key(self.profile.key_type.spec(), current.as_ref())?;
                let mut log = |n: u32, t: Duration| eprintln!("  PENDING: poll {n} after {}s", t.as_secs());
                let renewing = match (kind, &current) {
                    (EnrolKind::Renew, Some(c)) => match (self.current_key(), c.chain.first()) {
                        (Ok(k), Some(leaf)) if matches!(k.kind(), KeyKind::Rsa(_)) => Some((k, leaf.clone())),
                        _ => None,
                    },
                    _ => None,
                };
                let cert = match renewing {
                    Some((old_key, old_cert)) => session
                        .renew(
                            old_key.as_ref(),
                            &old_cert,
                            key.as_ref(),
                            RenewalForm::Auto,
                            poll,
                            &mut log,
                        )
                        .map_err(|e| e.to_string())?,
                    None => {
                        let challenge = self.challenge()?;
                        crate::flow::scep::first_enrolment(
                            &session,
                            key.as_ref(),
                            &subject,
                            &dns,
                            challenge.as_ref().map(|c| c.as_str()),
                            poll,
                            &mut |p| {
                                if let Progress::Pending { attempt, elapsed } = p {
                                    log(attempt, elapsed)
                                }
                            },
                        )
                        .map_err(|e| e.to_string())?
                    }
                };
                Ok(Event::Issued {
                    certificates: vec![cert],
                    public_key: key.spki().clone(),
                })
            }
            Protocol::Rspf => self.rspf_enrol(current.as_ref(), poll, subject, dns, &trusted),
            Protocol::Cmp => self.cmp_enrol(kind, current.as_ref(), poll, subject, dns, &trusted),
            Protocol::Est => {
                let server = EstServer::parse(&self.profile.url).map_err(|e| e.to_string())?;
                let trust = enrolkit_tls::ServerTrust::Anchors(ders(&trusted).map_err(|e| e.to_string())?);
                // Renewal authenticates TLS with the current certificate and
                // its key: a key file goes to OpenSSL; a key in a token signs
                // CertificateVerify there, over rustls.
                let client_cert = match (kind, &current) {
                    (EnrolKind::Renew, Some(c)) => {
                        let chain = ders(&c.chain).map_err(|e| e.to_string())?;
                        match (&self.profile.key_store, &self.profile.output.key) {
                            (None, Some(path)) => enrolkit_files::read_key(path)
                                .ok()
                                .map(|k| (chain, k.to_pkcs8_der().into())),
                            (Some(_), _) => self
                                .current_key()
                                .ok()
                                .map(|k| (chain, enrolkit_tls::ClientKey::signer(k))),
                            (None, None) => None,
                        }
                    }
                    _ => None,
                };
                let by_token = matches!(&client_cert, Some((_, enrolkit_tls::ClientKey::Signer(_))));
                let first = self.est_attempt(&server, &trust, client_cert, current.as_ref(), poll, &subject, &dns);
                // A token key authenticates on rustls, which some servers
                // cannot serve (RSA over TLS 1.3 only, tls-unique linking
                // over TLS 1.2): when that session is refused, enrol with
                // the profile's own credentials instead, as a new request.
                let a = &self.profile.auth;
                let has_credentials = a.psk_identity.is_some() || a.username.is_some();
                let outcome = match first {
                    Err(e) if by_token && has_credentials && e.session_refused() => {
                        self.say(&format!(
                            "re-enrolment authenticated by the token key failed ({e}); enrolling with the profile's credentials"
                        ));
                        self.est_attempt(&server, &trust, None, current.as_ref(), poll, &subject, &dns)
                    }
                    other => other,
                };
                outcome.map_err(|e| e.to_string())
            }
        }
    }

    /// One EST enrolment: `/simplereenroll` authenticated by `client_cert`
    /// when there is one, else `/simpleenroll` with the profile's credentials.
    #[allow(clippy::too_many_arguments)]
    fn est_attempt(
        &mut self,
        server: &EstServer,
        trust: &enrolkit_tls::ServerTrust,
        client_cert: Option<enrolkit_tls::ClientCertificate>,
        current: Option<&Credential>,
        poll: PollPolicy,
        subject: &Name,
        dns: &[String],
    ) -> Result<Event, ClientError> {
        let op = if client_cert.is_some() {
            enrolkit_est::Operation::SimpleReenroll
        } else {
            enrolkit_est::Operation::SimpleEnroll
        };
        let tls = self
            .est_tls(trust.clone(), client_cert)
            .map_err(ClientError::Unexpected)?;
        let basic = match (&self.profile.auth.username, &self.profile.auth.password_file) {
            (Some(u), Some(f)) if op == enrolkit_est::Operation::SimpleEnroll => {
                Some((u.clone(), Self::secret_file(f).map_err(ClientError::Unexpected)?))
            }
            _ => None,
        };
        let how = EstEnrolment {
            server: server.clone(),
            tls,
            basic,
            op,
        };
        self.est_enrol(how, current, poll, subject.clone(), dns.to_vec())
    }

    /// `/csrattrs`, then `/simpleenroll` or `/simplereenroll` with the
    /// staged key and a CSR built to the attributes (channel binding per
    /// connection), waiting out 202s. The error stays typed so the caller
    /// can tell a refused session from a refused request.
    pub(super) fn est_enrol(
        &mut self,
        how: EstEnrolment,
        current: Option<&Credential>,
        poll: PollPolicy,
        subject: Name,
        dns: Vec<String>,
    ) -> Result<Event, ClientError> {
        let EstEnrolment { server, tls, basic, op } = how;
        let client = EstClient::new(server, &tls, basic)?;
        let attrs = crate::flow::est::csrattrs_or_none(&client, &mut |p| {
            if let Progress::CsrAttrsUnusable { error } = p {
                eprintln!("  warning: /csrattrs unusable ({error}); the profile's key type and names are used")
            }
        })?;
        let spec = crate::flow::est::key_for(&attrs, self.profile.key_type.spec())?;
        let key = self.staged_key(spec, current).map_err(ClientError::Unexpected)?;
        let challenge = self.challenge().map_err(ClientError::Unexpected)?;
        let base = enrolkit_pkix::pkcs10::RequestParams {
            challenge_password: challenge,
            dns_names: dns,
            ..enrolkit_pkix::pkcs10::RequestParams::new(subject)
        };
        let wait = crate::flow::est::Wait {
            window: poll.window,
            max_interval: poll.interval,
        };
        let reply = crate::flow::est::request(&client, op, &base, &attrs, key.as_signer(), wait, &mut |p| {
            if let Progress::Accepted { attempt, elapsed, wait } = p {
                eprintln!(
                    "  202: attempt {attempt} after {}s, next in {}s",
                    elapsed.as_secs(),
                    wait.as_secs()
                )
            }
        })?;
        match reply {
            EnrollReply::Issued(certificates) => Ok(Event::Issued {
                certificates,
                public_key: key.spki().clone(),
            }),
            _ => Err(ClientError::Unexpected(
                "the server answered without a certificate".into(),
            )),
        }
    }

    /// The intermediates of the installed `leaf`: the copy in the state
    /// directory when it belongs to this leaf, else `output.chain` (an
    /// install by an older agent), else none.
    fn intermediates(&self, leaf: &Certificate) -> Vec<Certificate> {
        let kept = match std::fs::read(self.chain_path()) {
            Ok(b) if b.is_empty() => Some(vec![]),
            Ok(b) => Certificate::load_pem_chain(&b).ok(),
            Err(_) => None,
        };
        let belongs = |c: &Vec<Certificate>| c.first().is_none_or(|i| super::chain::signed_by(leaf, i));
        if let Some(c) = kept.filter(belongs) {
            return c;
        }
        match &self.profile.output.chain {
            Some(p) if p.exists() => read_certs(p).unwrap_or_default(),
            _ => vec![],
        }
    }

    pub(super) fn load_quiet(&mut self) -> Option<Credential> {
        let o = &self.profile.output;
        let mut chain = read_certs(&o.certificate).ok()?.into_iter().take(1).collect::<Vec<_>>();
        let intermediates = self.intermediates(chain.first()?);
        chain.extend(intermediates);
        Some(Credential {
            chain,
            generation: None,
        })
    }

    fn http(&self) -> Result<reqwest::blocking::Client, String> {
        reqwest::blocking::Client::builder()
            .timeout(self.timeout)
            .user_agent(concat!("enrolkit-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())
    }

    /// Step 8's transport.
    fn fetch(&self, f: &Fetch) -> Result<Vec<u8>, String> {
        let http = self.http()?;
        let (url, rb) = match f {
            Fetch::Crl { url } => (url, http.get(url)),
            Fetch::Ocsp { url, request } => (
                url,
                http.post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/ocsp-request")
                    .body(request.clone()),
            ),
        };
        let resp = rb.send().map_err(|e| format!("{url}: {}", e.without_url()))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: HTTP {}", resp.status().as_u16()));
        }
        let mut body = Vec::new();
        resp.take(MAX_FETCH + 1)
            .read_to_end(&mut body)
            .map_err(|e| format!("{url}: {e}"))?;
        if body.len() as u64 > MAX_FETCH {
            return Err(format!("{url}: larger than {MAX_FETCH} bytes"));
        }
        Ok(body)
    }

    fn store_peer(&mut self, index: usize, certs: &[Certificate]) -> Result<(), String> {
        let p = self.profile.peers.get(index).ok_or("no such peer")?.clone();
        let pem = pem_all(certs)?;
        if std::fs::read_to_string(&p.output).ok().as_deref() == Some(pem.as_str()) {
            return Ok(());
        }
        let owner = self.ownership()?;
        store::install(
            &self.dir.join(format!("peer-{index}.journal")),
            &[NewFile {
                path: p.output.clone(),
                bytes: Zeroizing::new(pem.into_bytes()),
                mode: self.profile.output.mode,
            }],
            owner,
        )?;
        self.say(&format!(
            "peer {}: {} certificate(s) written to {}",
            p.name,
            certs.len(),
            p.output.display()
        ));
        Ok(())
    }

    fn encode(&self, certs: &[Certificate]) -> Result<Vec<u8>, String> {
        match self.profile.output.format {
            Format::Pem => Ok(pem_all(certs)?.into_bytes()),
            Format::Der => certs
                .first()
                .map(|c| c.to_der().map_err(|e| e.to_string()))
                .unwrap_or(Ok(vec![])),
        }
    }

    /// Step 12: the staged key, the chain, the anchor and the record of the
    /// generation as one transaction; the old files are kept under
    /// `previous/<serial>/` (they are what a committed install that cannot
    /// be completed is undone with) until they expire (step 14 removes them).
    ///
    /// `Err`: nothing was installed. `Ok(Some(warning))`: the new credential
    /// is installed (committed), but something after the commit point failed.
    fn install(
        &mut self,
        chain: &[Certificate],
        anchor: &Certificate,
        generation: &str,
        now: SystemTime,
    ) -> Result<Option<String>, String> {
        let o = self.profile.output.clone();
        let leaf = chain.first().ok_or("empty chain")?;
        let staged = self.staged_location()?.ok_or("no staged key")?;
        let key = staged.load().map_err(|e| e.to_string())?;
        if key.spki() != &leaf.tbs_certificate.subject_public_key_info {
            return Err("the staged key is not the certified key".into());
        }
        let previous = self.keep_previous(now)?;
        // Each file with the name of its copy in `previous/<serial>/`.
        let mut files = vec![(
            NewFile {
                path: o.certificate.clone(),
                bytes: Zeroizing::new(self.encode(std::slice::from_ref(leaf))?),
                mode: o.mode,
            },
            "certificate",
        )];
        if let Some(p) = &o.key {
            let key = enrolkit_files::read_key(&self.next_key_path())?;
            let bytes = match o.format {
                Format::Pem => Zeroizing::new(key.to_pkcs8_pem().map_err(|e| e.to_string())?.as_bytes().to_vec()),
                Format::Der => Zeroizing::new(key.to_pkcs8_der().to_vec()),
            };
            files.push((
                NewFile {
                    path: p.clone(),
                    bytes,
                    mode: o.key_mode,
                },
                "key",
            ));
        }
        if let Some(p) = &o.chain {
            files.push((
                NewFile {
                    path: p.clone(),
                    bytes: Zeroizing::new(self.encode(chain.get(1..).unwrap_or(&[]))?),
                    mode: o.mode,
                },
                "chain",
            ));
        }
        if let Some(p) = &o.trust_anchor {
            files.push((
                NewFile {
                    path: p.clone(),
                    bytes: Zeroizing::new(self.encode(std::slice::from_ref(anchor))?),
                    mode: o.mode,
                },
                "trust-anchor",
            ));
        }
        // The validated intermediates, whatever the outputs (step 8 reads them).
        files.push((
            NewFile {
                path: self.chain_path(),
                bytes: Zeroizing::new(pem_all(chain.get(1..).unwrap_or(&[]))?.into_bytes()),
                mode: 0o600,
            },
            "chain.pem",
        ));
        let mut record = format!(
            "serial = \"{}\"\ngeneration = \"{generation}\"\ninstalled = \"{}\"\n",
            hex::encode(leaf.tbs_certificate.serial_number.as_bytes()),
            http_date(now)
        );
        // The token key pair certified: committed with the certificate.
        if let KeyLocation::Token(uri) = &staged {
            record.push_str(&format!(
                "key_id = \"{}\"\n",
                hex::encode(uri.id.as_deref().unwrap_or_default())
            ));
        }
        files.push((
            NewFile {
                path: self.record_path(),
                bytes: Zeroizing::new(record.into_bytes()),
                mode: 0o600,
            },
            "credential.toml",
        ));
        let backups: Vec<Option<PathBuf>> = files.iter().map(|(_, name)| Some(previous.join(name))).collect();
        let files: Vec<NewFile> = files.into_iter().map(|(f, _)| f).collect();
        let journal = self.journal();
        let mut warnings = Vec::new();
        match store::install_with_backups(&journal, &files, &backups, self.ownership()?) {
            Ok(()) => {}
            Err(store::InstallError::NotInstalled(e)) => return Err(e),
            Err(store::InstallError::AfterCommit(e)) => {
                // Committed: finish it now if the system lets us, else the
                // next start does (before anything reads the stores).
                let outputs = self.outputs();
                match store::recover(&journal, outputs.iter().map(PathBuf::as_path)) {
                    Ok(store::Recovery::Restored { why }) => {
                        return Err(format!(
                            "{e}; the install could not be completed ({why}), so the previous credential was put back"
                        ))
                    }
                    Ok(_) => warnings.push(format!("{e} (the install was then completed)")),
                    Err(e2) => warnings.push(format!("{e}; {e2} (the next start completes the install)")),
                }
            }
        }
        let staged_ref = match staged {
            KeyLocation::File(p) => p,
            KeyLocation::Token(_) => self.next_key_id_path(),
        };
        if let Err(e) = std::fs::remove_file(&staged_ref) {
            warnings.push(format!(
                "the staged key reference {} was not removed: {e}",
                staged_ref.display()
            ));
        }
        self.say(&format!(
            "installed certificate {} for {} (expires {})",
            hex::encode(leaf.tbs_certificate.serial_number.as_bytes()),
            leaf.tbs_certificate.subject,
            leaf.tbs_certificate.validity.not_after
        ));
        let warning = (!warnings.is_empty()).then(|| format!("installed, but {}", warnings.join("; ")));
        if let Some(w) = &warning {
            self.say(w);
        }
        Ok(warning)
    }

    /// The directory under `previous/` that keeps the credential about to
    /// be replaced (`<serial>`, or `replaced-<time>` when the installed
    /// certificate cannot be read); the install puts a copy of each file it
    /// replaces there. A token key pair is recorded in `key.toml`.
    fn keep_previous(&mut self, now: SystemTime) -> Result<PathBuf, String> {
        let o = self.profile.output.clone();
        let name = match read_certs(&o.certificate).ok().as_ref().and_then(|c| c.first()) {
            Some(leaf) => hex::encode(leaf.tbs_certificate.serial_number.as_bytes()),
            None => format!(
                "replaced-{}",
                now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs()
            ),
        };
        // Made (0700) by the install when it keeps a copy there.
        let dir = self.previous_dir().join(name);
        // A token key pair stays in the token until its certificate expires.
        if let Some(KeyLocation::Token(uri)) = self.installed_location()? {
            enrolkit_files::create_private_dir(&dir)?;
            let id = hex::encode(uri.id.as_deref().unwrap_or_default());
            enrolkit_files::write_private(&dir.join("key.toml"), format!("key_id = \"{id}\"\n").as_bytes())?;
        }
        Ok(dir)
    }

    /// Step 13.
    fn notify(&mut self, n: &Notice) -> Result<(), String> {
        let nf = self.profile.notify.clone();
        if nf.command.is_empty() && nf.url.is_none() {
            return Ok(());
        }
        let mut vars: Vec<(&str, String)> = vec![("ENROL_PROFILE", self.profile.name.clone())];
        match n {
            Notice::Installed {
                reason,
                serial,
                subject,
                not_after,
            } => {
                vars.push(("ENROL_EVENT", "installed".into()));
                vars.push(("ENROL_REASON", format!("{reason:?}")));
                vars.push(("ENROL_SERIAL", serial.clone()));
                vars.push(("ENROL_SUBJECT", subject.clone()));
                vars.push(("ENROL_NOT_AFTER", http_date(*not_after)));
                vars.push((
                    "ENROL_CERTIFICATE",
                    self.profile.output.certificate.display().to_string(),
                ));
            }
            Notice::Failed { error, failures } => {
                vars.push(("ENROL_EVENT", "failed".into()));
                vars.push(("ENROL_ERROR", error.clone()));
                vars.push(("ENROL_FAILURES", failures.to_string()));
            }
            Notice::Revoked { subject } => {
                vars.push(("ENROL_EVENT", "revoked".into()));
                vars.push(("ENROL_SUBJECT", subject.clone()));
            }
            Notice::Halted { error } => {
                vars.push(("ENROL_EVENT", "halted".into()));
                vars.push(("ENROL_ERROR", error.clone()));
            }
        }
        if let Some((prog, args)) = nf.command.split_first() {
            let mut child = std::process::Command::new(prog)
                .args(args)
                .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
                .stdin(std::process::Stdio::null())
                .spawn()
                .map_err(|e| format!("notify command {prog}: {e}"))?;
            let started = std::time::Instant::now();
            loop {
                if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
                    if !st.success() {
                        return Err(format!("notify command {prog} exited with {st}"));
                    }
                    break;
                }
                if started.elapsed() > self.timeout {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("notify command {prog} took longer than {:?}", self.timeout));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if let Some(url) = &nf.url {
            let body: serde_json::Map<String, serde_json::Value> = vars
                .iter()
                .map(|(k, v)| {
                    let key = k.trim_start_matches("ENROL_").to_ascii_lowercase();
                    (key, serde_json::Value::String(v.clone()))
                })
                .collect();
            let resp = self
                .http()?
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(&body).map_err(|e| e.to_string())?)
                .send()
                .map_err(|e| format!("notify {url}: {}", e.without_url()))?;
            if !resp.status().is_success() {
                return Err(format!("notify {url}: HTTP {}", resp.status().as_u16()));
            }
        }
        Ok(())
    }

    /// Step 14: expired previous credentials, and a staged key no enrolment
    /// is waiting for: with `keep_staged` (an enrolment with it is under
    /// way, perhaps PENDING) it is kept unless it is the installed key.
    fn clean(&mut self, now: SystemTime, keep_staged: bool) -> Result<(), String> {
        if !keep_staged || self.staged_is_installed() {
            self.discard_staged();
        }
        let Ok(entries) = std::fs::read_dir(self.previous_dir()) else {
            return Ok(());
        };
        for e in entries.flatten() {
            let p = e.path();
            let expired = read_certs(&p.join("certificate"))
                .ok()
                .and_then(|c| c.first().map(|l| super::chain::validity(l).1 < now))
                .unwrap_or(true);
            if expired {
                if let Some(id) = Self::key_id_in(&p.join("key.toml")) {
                    let installed = self.installed_location()?;
                    if let Some(k) = self.token_key(&id)?.filter(|k| Some(k) != installed.as_ref()) {
                        k.remove().map_err(|e| format!("expired key pair {k}: {e}"))?;
                    }
                }
                std::fs::remove_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                self.say(&format!("deleted expired credential {}", p.display()));
            }
        }
        Ok(())
    }

    /// Write `status` for `enrol agent status`.
    pub fn write_status(&self, s: &Status, now: SystemTime) -> Result<(), String> {
        let t = |v: Option<SystemTime>| v.map(http_date).unwrap_or_default();
        let mut table = toml::Table::new();
        table.insert("profile".into(), self.profile.name.clone().into());
        table.insert("phase".into(), s.phase.to_string().into());
        table.insert("not_after".into(), t(s.not_after).into());
        table.insert("renew_at".into(), t(s.renew_at).into());
        table.insert("next_wake".into(), t(s.next_wake).into());
        table.insert("failures".into(), i64::from(s.failures).into());
        table.insert("last_error".into(), s.last_error.clone().unwrap_or_default().into());
        table.insert("updated".into(), http_date(now).into());
        let text = toml::to_string(&table).map_err(|e| e.to_string())?;
        enrolkit_files::write_atomic(&self.status_path(), text.as_bytes(), 0o644)
    }
}

/// What one `--once` cycle did (and the exit code that says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The credential is valid and nothing needed doing: exit 0.
    Unchanged,
    /// A new credential was installed: exit 10.
    Installed,
    /// Something failed, but a valid credential is in place: exit 20.
    FailedWithCredential,
    /// Something failed and the device has no valid credential: exit 30.
    FailedWithout,
    /// Stopped on a trust or configuration error; nothing was written: exit 40.
    Halted,
}

impl Outcome {
    /// The process exit code.
    pub fn code(self) -> i32 {
        match self {
            Outcome::Unchanged => 0,
            Outcome::Installed => 10,
            Outcome::FailedWithCredential => 20,
            Outcome::FailedWithout => 30,
            Outcome::Halted => 40,
        }
    }
}

/// [`Saved`] as kept in the state directory.
fn saved_to_toml(s: &Saved) -> Result<String, String> {
    let unix = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    };
    let mut t = toml::Table::new();
    t.insert("generation".into(), s.generation.clone().into());
    t.insert("failures".into(), i64::from(s.failures).into());
    t.insert("failure_notified".into(), s.failure_notified.into());
    if let Some(r) = s.retry_at {
        t.insert("retry_at".into(), unix(r).into());
    }
    if let Some(h) = s.hold_renewal_until {
        t.insert("hold_renewal_until".into(), unix(h).into());
    }
    t.insert("directive".into(), s.directive.into());
    if let Some(r) = s.enrolling {
        t.insert("enrolling".into(), r.name().into());
    }
    if let Some(a) = &s.alerted {
        t.insert("alerted".into(), a.clone().into());
    }
    toml::to_string(&t).map_err(|e| e.to_string())
}

/// [`Saved`] from the state directory; a field that is missing or does not
/// parse is left at its default (the schedule is advice, never a reason to stop).
fn saved_from_toml(text: &str) -> Saved {
    let Ok(t) = text.parse::<toml::Table>() else {
        return Saved::default();
    };
    let time = |k: &str| {
        t.get(k)
            .and_then(toml::Value::as_integer)
            .and_then(|n| u64::try_from(n).ok())
            .and_then(|n| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(n)))
    };
    let flag = |k: &str| t.get(k).and_then(toml::Value::as_bool).unwrap_or(false);
    let text = |k: &str| t.get(k).and_then(toml::Value::as_str).map(str::to_owned);
    Saved {
        generation: text("generation").unwrap_or_default(),
        failures: t
            .get("failures")
            .and_then(toml::Value::as_integer)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        failure_notified: flag("failure_notified"),
        retry_at: time("retry_at"),
        hold_renewal_until: time("hold_renewal_until"),
        directive: flag("directive"),
        enrolling: text("enrolling").as_deref().and_then(Reason::from_name),
        alerted: text("alerted"),
    }
}

impl Driver {
    /// What an earlier run saved ([`Machine::saved`]); nothing if none.
    pub fn load_saved(&mut self) -> Saved {
        /// A saved schedule is a few hundred bytes.
        const MAX_SAVED: u64 = 64 * 1024;
        let path = self.saved_path();
        if std::fs::metadata(&path).is_ok_and(|m| m.len() > MAX_SAVED) {
            self.say(&format!("{}: larger than {MAX_SAVED} bytes; ignored", path.display()));
            return Saved::default();
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => saved_from_toml(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Saved::default(),
            Err(e) => {
                self.say(&format!(
                    "{}: {e}; starting without the saved schedule",
                    self.saved_path().display()
                ));
                Saved::default()
            }
        }
    }

    /// Keep `saved` for the next run (atomically, 0600).
    pub fn store_saved(&mut self, saved: &Saved) {
        let r = saved_to_toml(saved)
            .and_then(|text| enrolkit_files::write_atomic(&self.saved_path(), text.as_bytes(), 0o600));
        if let Err(e) = r {
            self.say(&format!("the schedule was not saved: {e}"));
        }
    }

    /// After each step: status for `enrol agent status`, and what the
    /// machine keeps across restarts when it has changed; then, once that
    /// is saved, a directive file taken in can go.
    fn record(&mut self, m: &Machine, last: &mut Saved, directive_taken: &mut bool, now: SystemTime) {
        let _ = self.write_status(&m.status(), now);
        let saved = m.saved();
        if saved != *last {
            self.store_saved(&saved);
            *last = saved;
        }
        if std::mem::take(directive_taken) {
            if let Err(e) = std::fs::remove_file(self.directive_path()) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    self.say(&format!("{}: {e}", self.directive_path().display()));
                }
            }
        }
    }
}

/// Run one cycle for `driver`'s profile: until the machine waits or halts.
/// What an earlier run saved applies (the renewal hold, a directive or an
/// enrolment not yet carried out), except the back-off: an explicit run
/// tries now.
pub fn run_once(driver: &mut Driver, seed: [u8; 32]) -> (Outcome, Status) {
    let mut m = Machine::new(driver.profile.policy(), seed);
    let mut last = driver.load_saved();
    m.restore(
        Saved {
            retry_at: None,
            ..last.clone()
        },
        SystemTime::now(),
    );
    let mut event = Event::Tick;
    let mut directive_taken = driver.directive_path().exists();
    if directive_taken {
        event = Event::Directive(super::machine::Directive::RenewNow);
    }
    let halted = loop {
        let now = SystemTime::now();
        let action = m.on(event, now);
        driver.record(&m, &mut last, &mut directive_taken, now);
        match action {
            Action::Wait { .. } => break false,
            Action::Halt { error } => {
                driver.say(&format!("halted: {error}"));
                break true;
            }
            a => event = driver.execute(&a, now),
        }
    };
    let status = m.status();
    let valid = status.not_after.is_some_and(|t| t > SystemTime::now());
    let outcome = if halted {
        Outcome::Halted
    } else if m.installed_any() {
        Outcome::Installed
    } else if status.failures > 0 {
        if valid {
            Outcome::FailedWithCredential
        } else {
            Outcome::FailedWithout
        }
    } else {
        Outcome::Unchanged
    };
    (outcome, status)
}

/// Run the agent for one profile until `stop` is set: cycles at the times
/// the machine asks for, a changed profile file or a `renew-now` directive
/// wakes it early.
///
/// `taken`: the files the agent's other profiles write; a changed profile
/// that names one of them (or an owner this machine lacks) is refused like
/// one that does not load.
pub fn run_daemon(
    driver: &mut Driver,
    profile_path: &Path,
    taken: &[PathBuf],
    seed: [u8; 32],
    stop: &std::sync::atomic::AtomicBool,
) {
    use std::sync::atomic::Ordering;
    let mut m = Machine::new(driver.profile.policy(), seed);
    let mut last = driver.load_saved();
    m.restore(last.clone(), SystemTime::now());
    let mut event = Event::Tick;
    let mut directive_taken = false;
    let mut profile_text = std::fs::read(profile_path).unwrap_or_default();
    while !stop.load(Ordering::Relaxed) {
        let now = SystemTime::now();
        let action = m.on(event, now);
        driver.record(&m, &mut last, &mut directive_taken, now);
        let until = match &action {
            Action::Wait { until } => Some(*until),
            Action::Halt { error } => {
                // The machine alerts (once per distinct error) and waits out
                // the back-off; a changed profile or a directive is sooner.
                driver.say(&format!(
                    "halted: {error}; trying again after the back-off, or when the profile changes"
                ));
                event = Event::Tick;
                continue;
            }
            a => {
                event = driver.execute(a, now);
                continue;
            }
        };
        // Wait, watching the profile and the directive once a second.
        event = loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if until.is_some_and(|u| SystemTime::now() >= u) {
                break Event::Tick;
            }
            if driver.directive_path().exists() {
                // Removed once the machine's saved state holds it.
                directive_taken = true;
                break Event::Directive(super::machine::Directive::RenewNow);
            }
            let text = std::fs::read(profile_path).unwrap_or_default();
            if text != profile_text {
                profile_text = text;
                let file = profile_path.display().to_string();
                let loaded = Profile::load(profile_path).and_then(|p| {
                    p.check_host(&file)?;
                    match p.written_paths().into_iter().find(|f| taken.iter().any(|t| t == f)) {
                        Some(f) => Err(super::ProfileError {
                            file: file.clone(),
                            field: "output".into(),
                            reason: format!("{} is written by another profile of this agent", f.display()),
                        }),
                        None => Ok(p),
                    }
                });
                match loaded {
                    Ok(p) if p.name == driver.profile.name => {
                        driver.say("profile changed; it takes effect now");
                        let policy = p.policy();
                        driver.profile = p;
                        break Event::ProfileChanged(policy);
                    }
                    Ok(_) => driver.say("profile changed its name; restart the agent to rename a profile"),
                    Err(e) => driver.say(&format!("changed profile refused, keeping the old one: {e}")),
                }
            }
            std::thread::sleep(Duration::from_secs(1));
        };
    }
}
