//! The device agent's state machine (seed `000` clause 8.3.6.3.3), sans I/O.
//!
//! The machine decides; a driver acts. Each call to [`Machine::on`] hands in
//! one [`Event`] and the time, and gets back exactly one [`Action`]. Every
//! action except [`Action::Wait`] and [`Action::Halt`] is answered by the
//! driver with the event it names (or [`Event::Failed`]); a `Wait` is
//! answered with [`Event::Tick`] once its time has come. Nothing here reads a
//! clock, touches a file or opens a socket, so every step and every failure
//! path is tested on a simulated clock.
//!
//! The fourteen steps of the seed, and where they live:
//!
//! | step | what | here |
//! |---|---|---|
//! | 1–4 | fetch the CA certificates, pin the anchor, check each CA against its superior | [`Action::FetchCaCerts`] → [`Event::CaCerts`] → [`Anchors::validate`] |
//! | 5 | first enrolment, encrypted to the CA/RA | [`Action::Enrol`] with [`EnrolKind::Initial`] |
//! | 6 | re-enrol on directive or a changed profile (maybe another PKI) | [`Event::Directive`], [`Event::ProfileChanged`], [`Reason::ProfileChanged`], [`Reason::NewPki`] |
//! | 7 | renew when the configured share of the lifetime has passed, jittered, with back-off | [`Machine::renew_at`], [`Reason::RenewalDue`], [`Machine::backoff`] |
//! | 8 | CRL and OCSP for every certificate in the chain | [`Action::Fetch`] → [`Event::Fetched`] |
//! | 9–10 | peer trust anchors and their intermediates | [`Action::FetchPeer`] → [`Event::PeerCerts`] → [`Action::StorePeer`] |
//! | 11 | validate the new chain before it replaces anything | [`Anchors::chain_for`] on [`Event::Issued`] |
//! | 12 | move the key material to the stores, atomically | [`Action::Install`] |
//! | 13 | notify the provisioning authority | [`Action::Notify`] |
//! | 14 | delete expired artefacts | [`Action::Clean`] |
//!
//! A trust error (no offered certificate has a pinned fingerprint, a CA
//! certificate that does not chain to the anchor, an end-entity certificate
//! offered as the RA) is [`Action::Halt`]: a `--once` run stops there with
//! nothing written. A daemon answers the halt with [`Event::Tick`]; the
//! machine then tells the notification hook ([`Notice::Halted`], once per
//! distinct error) and tries again after the profile's back-off, so an
//! operator who fixes the server does not have to restart the agent.
//!
//! What must survive a restart (the back-off, the hold on renewing a
//! certificate that arrived past its threshold, a directive not yet carried
//! out, an enrolment in progress) is [`Machine::saved`], which the driver
//! keeps in the state directory and hands back to [`Machine::restore`].

use super::chain::{subject, validity};
pub use super::chain::{Anchors, ChainError};
use crate::revocation::{self, CertStatus};
use enrolkit_pkix::fingerprint::sha256 as fingerprint;
use std::collections::VecDeque;
use std::time::{Duration, SystemTime};
use x509_cert::Certificate;

/// Which revocation sources the agent consults (step 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationMode {
    /// No revocation checking.
    None,
    /// CRLs from the CRL distribution points.
    Crl,
    /// OCSP at the AIA responder URL.
    Ocsp,
    /// Both; either saying "revoked" counts.
    Both,
}

/// What the machine needs from a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Pinned SHA-256 fingerprints (normalised hex).
    pub anchors: Vec<String>,
    /// Renew at this share of the lifetime (percent).
    pub threshold_percent: u8,
    /// Plus up to this share, fixed per certificate (percent).
    pub jitter_percent: u8,
    /// First retry delay.
    pub retry_min: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Revocation sources.
    pub revocation: RevocationMode,
    /// How often revocation (and peer anchors) are checked.
    pub revocation_interval: Duration,
    /// Pinned anchor fingerprints of each peer PKI (steps 9–10).
    pub peer_anchors: Vec<Vec<String>>,
    /// Digest of what defines the credential; a change re-enrols.
    pub generation: String,
}

/// The credential the device holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    /// End-entity certificate first, then intermediates up to (not including) the anchor.
    pub chain: Vec<Certificate>,
    /// The profile generation it was enrolled under (`None`: not recorded).
    pub generation: Option<String>,
}

impl Credential {
    fn leaf(&self) -> Option<&Certificate> {
        self.chain.first()
    }
}

/// How an enrolment authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrolKind {
    /// With the profile's credentials (challenge, Basic, PSK): no usable certificate.
    Initial,
    /// With the current certificate and key (SCEP RenewalReq, EST simplereenroll).
    Renew,
}

/// Why the agent enrols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The device has no credential (step 5).
    FirstCertificate,
    /// The renewal threshold has passed (step 7).
    RenewalDue,
    /// The certificate has expired.
    Expired,
    /// The certificate was reported revoked (step 8).
    Revoked,
    /// The profile changed what the credential is (step 6).
    ProfileChanged,
    /// The certificate no longer chains to the pinned anchor (another PKI, step 6).
    NewPki,
    /// The provisioning authority asked for a new certificate now (step 6).
    Directive,
}

impl Reason {
    /// Every reason, for [`Reason::from_name`].
    const ALL: [Reason; 7] = [
        Reason::FirstCertificate,
        Reason::RenewalDue,
        Reason::Expired,
        Reason::Revoked,
        Reason::ProfileChanged,
        Reason::NewPki,
        Reason::Directive,
    ];

    /// Its name (as notifications give it, `ENROL_REASON`).
    pub fn name(self) -> &'static str {
        match self {
            Reason::FirstCertificate => "FirstCertificate",
            Reason::RenewalDue => "RenewalDue",
            Reason::Expired => "Expired",
            Reason::Revoked => "Revoked",
            Reason::ProfileChanged => "ProfileChanged",
            Reason::NewPki => "NewPki",
            Reason::Directive => "Directive",
        }
    }

    /// The reason named `name`.
    pub fn from_name(name: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// A directive from the provisioning authority (step 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    /// Renew (or re-enrol) now, whatever the threshold says.
    RenewNow,
}

/// What the driver should fetch for step 8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    /// GET a CRL.
    Crl {
        /// Distribution point URL.
        url: String,
    },
    /// POST an OCSP request (`application/ocsp-request`).
    Ocsp {
        /// Responder URL.
        url: String,
        /// DER OCSPRequest.
        request: Vec<u8>,
    },
}

/// What the provisioning authority is told (step 13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A new credential is in the stores.
    Installed {
        /// Why it was enrolled.
        reason: Reason,
        /// Serial number (hex).
        serial: String,
        /// Subject.
        subject: String,
        /// Expiry.
        not_after: SystemTime,
    },
    /// Enrolment failed; the old credential (if any) stays.
    Failed {
        /// What failed.
        error: String,
        /// Consecutive failures.
        failures: u32,
    },
    /// A trust error stops the agent until the back-off has passed or the
    /// profile changes (told once per distinct error).
    Halted {
        /// What is wrong.
        error: String,
    },
    /// The certificate or a CA above it was reported revoked.
    Revoked {
        /// Subject of the revoked certificate.
        subject: String,
    },
}

/// What the machine asks the driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Read the credential in the stores → [`Event::Loaded`] (finish or roll back an interrupted install first).
    LoadStores,
    /// Fetch the CA certificates → [`Event::CaCerts`] (steps 1, 3).
    FetchCaCerts,
    /// Make a key pair and enrol it → [`Event::Issued`] (steps 5–7). The
    /// driver keeps the new key staged until [`Action::Install`].
    Enrol {
        /// How to authenticate.
        kind: EnrolKind,
        /// Why.
        reason: Reason,
        /// The validated CA certificates (encrypt to the CA/RA; TLS trust).
        anchors: Anchors,
    },
    /// Fetch revocation data → [`Event::Fetched`] (step 8).
    Fetch(Fetch),
    /// Fetch a peer PKI's CA certificates → [`Event::PeerCerts`] (steps 9–10).
    FetchPeer {
        /// Index of the peer in the profile.
        index: usize,
    },
    /// Keep a validated peer bundle (anchor first) → [`Event::Done`].
    StorePeer {
        /// Index of the peer.
        index: usize,
        /// Anchor, then its CAs.
        certs: Vec<Certificate>,
    },
    /// Replace the credential atomically with the staged key and this
    /// validated chain → [`Event::Done`] (step 12).
    Install {
        /// Leaf first, then intermediates.
        chain: Vec<Certificate>,
        /// The pinned anchor.
        anchor: Certificate,
        /// The profile generation to record with it.
        generation: String,
    },
    /// Tell the provisioning authority → [`Event::Done`] (step 13).
    Notify(Notice),
    /// Delete expired artefacts and anything staged but not installed → [`Event::Done`] (step 14).
    Clean {
        /// Keep the staged key: an enrolment with it has begun and not been
        /// installed (a PENDING request may still be waiting on it).
        keep_staged: bool,
    },
    /// Nothing to do until then; answer with [`Event::Tick`].
    Wait {
        /// When to tick.
        until: SystemTime,
    },
    /// Stop on a trust error; nothing was written. A `--once` run ends
    /// here; a daemon answers with [`Event::Tick`] and the machine alerts,
    /// then waits out the back-off (or a changed profile, or a directive).
    Halt {
        /// Why.
        error: String,
    },
}

/// What the driver reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Start, or a [`Action::Wait`] has ended.
    Tick,
    /// The credential in the stores (`None`: none, or incomplete).
    Loaded(Option<Credential>),
    /// CA certificates as the server sent them.
    CaCerts(Vec<Certificate>),
    /// The server issued: its certificates and the public key of the staged key.
    Issued {
        /// Certificates in the reply.
        certificates: Vec<Certificate>,
        /// The staged key's public key.
        public_key: spki::SubjectPublicKeyInfoOwned,
    },
    /// Body of a revocation fetch.
    Fetched(Vec<u8>),
    /// A peer's CA certificates.
    PeerCerts(Vec<Certificate>),
    /// The action finished.
    Done,
    /// The action took effect, but something after it failed (an install
    /// committed whose clean-up did not finish): a warning, in one line.
    DoneWithWarning(String),
    /// The action failed (network, server refusal, I/O), in one line.
    Failed(String),
    /// The provisioning authority directs.
    Directive(Directive),
    /// The profile was edited; the next cycle uses this policy.
    ProfileChanged(Policy),
}

/// One pending revocation check.
#[derive(Debug, Clone, PartialEq)]
struct Check {
    /// Index in the credential chain.
    index: usize,
    fetch: Fetch,
    nonce: Option<Vec<u8>>,
}

/// Where the machine is.
#[derive(Debug, Clone, PartialEq)]
enum State {
    Start,
    Loading,
    FetchingAnchors,
    Enrolling { reason: Reason },
    Installing { reason: Reason, credential: Credential },
    Notifying { then: Then },
    Checking { current: Check, queue: VecDeque<Check> },
    FetchingPeer { index: usize },
    StoringPeer { index: usize },
    Cleaning,
    Idle { until: SystemTime },
    Backoff { until: SystemTime },
    Halted { error: String, until: SystemTime },
}

/// What follows a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    Peers,
    Backoff,
    Reenrol,
}

/// The agent's state for `enrol agent status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Current phase, one word.
    pub phase: &'static str,
    /// Expiry of the installed certificate.
    pub not_after: Option<SystemTime>,
    /// When it will be renewed.
    pub renew_at: Option<SystemTime>,
    /// When the machine next acts by itself.
    pub next_wake: Option<SystemTime>,
    /// Consecutive failures.
    pub failures: u32,
    /// The last error or warning.
    pub last_error: Option<String>,
}

/// What the machine keeps across restarts ([`Machine::saved`],
/// [`Machine::restore`]). The jittered renewal time needs no saving: it
/// follows from the certificate's serial number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Saved {
    /// The profile generation it was saved under: a back-off saved under
    /// another generation is dropped (the profile changed while stopped).
    pub generation: String,
    /// Consecutive failures (the back-off doubles with them).
    pub failures: u32,
    /// Whether the current run of failures has been notified.
    pub failure_notified: bool,
    /// No new cycle before this (back-off after a failure or a halt).
    pub retry_at: Option<SystemTime>,
    /// No threshold renewal before this (a certificate that arrived past its threshold).
    pub hold_renewal_until: Option<SystemTime>,
    /// A directive (renew now) not yet carried out.
    pub directive: bool,
    /// An enrolment begun and not yet installed, and why.
    pub enrolling: Option<Reason>,
    /// The last trust error the notification hook was told of.
    pub alerted: Option<String>,
}

/// The agent for one profile.
#[derive(Debug)]
pub struct Machine {
    policy: Policy,
    state: State,
    current: Option<Credential>,
    anchors: Option<Anchors>,
    failures: u32,
    last_error: Option<String>,
    revoked: bool,
    directive: Option<Directive>,
    next_check: Option<SystemTime>,
    seed: [u8; 32],
    counter: u64,
    installed: bool,
    /// No threshold renewal before this: set when a certificate arrives
    /// already past its renewal point, so the agent does not re-enrol in a loop.
    hold_renewal_until: Option<SystemTime>,
    /// Whether the current run of failures has been notified.
    failure_notified: bool,
    /// An enrolment begun and not yet installed: its staged key is kept.
    enrolling: Option<Reason>,
    /// The last halting error the notification hook was told of.
    alerted: Option<String>,
}

fn serial_hex(c: &Certificate) -> String {
    hex::encode(c.tbs_certificate.serial_number.as_bytes())
}

impl Machine {
    /// A machine for `policy`; `seed` (random in production, fixed in tests)
    /// feeds OCSP nonces and retry jitter.
    pub fn new(policy: Policy, seed: [u8; 32]) -> Machine {
        Machine {
            policy,
            state: State::Start,
            current: None,
            anchors: None,
            failures: 0,
            last_error: None,
            revoked: false,
            directive: None,
            next_check: None,
            seed,
            counter: 0,
            installed: false,
            hold_renewal_until: None,
            failure_notified: false,
            enrolling: None,
            alerted: None,
        }
    }

    /// What to keep across a restart (the driver writes it whenever it changes).
    pub fn saved(&self) -> Saved {
        Saved {
            generation: self.policy.generation.clone(),
            failures: self.failures,
            failure_notified: self.failure_notified,
            retry_at: match &self.state {
                State::Backoff { until } | State::Halted { until, .. } => Some(*until),
                _ => None,
            },
            hold_renewal_until: self.hold_renewal_until,
            directive: self.directive.is_some(),
            enrolling: self.enrolling,
            alerted: self.alerted.clone(),
        }
    }

    /// Take back what an earlier run [saved](Machine::saved), before the
    /// first event. Times are capped at what this policy could have set
    /// from `now` (a clock that went back does not stall the agent). A
    /// back-off saved under another profile generation is dropped.
    pub fn restore(&mut self, saved: Saved, now: SystemTime) {
        if self.state != State::Start {
            return;
        }
        let same = saved.generation == self.policy.generation;
        let longest = self.policy.retry_max + self.policy.retry_max / 10 + Duration::from_secs(1);
        self.failures = saved.failures;
        self.failure_notified = saved.failure_notified;
        self.hold_renewal_until = saved
            .hold_renewal_until
            .filter(|t| *t > now)
            .map(|t| t.min(now + self.policy.retry_max));
        self.directive = saved.directive.then_some(Directive::RenewNow);
        self.enrolling = saved.enrolling;
        if same {
            self.alerted = saved.alerted;
            if let Some(until) = saved.retry_at.filter(|t| *t > now) {
                self.state = State::Backoff {
                    until: until.min(now + longest),
                };
            }
        }
    }

    /// The phase, one word (for status and logs).
    pub fn phase(&self) -> &'static str {
        match self.state {
            State::Start => "start",
            State::Loading => "loading",
            State::FetchingAnchors => "fetching-anchors",
            State::Enrolling { .. } => "enrolling",
            State::Installing { .. } => "installing",
            State::Notifying { .. } => "notifying",
            State::Checking { .. } => "checking-revocation",
            State::FetchingPeer { .. } | State::StoringPeer { .. } => "peer-anchors",
            State::Cleaning => "cleaning",
            State::Idle { .. } => "idle",
            State::Backoff { .. } => "retrying",
            State::Halted { .. } => "halted",
        }
    }

    /// The credential the machine believes is installed.
    pub fn credential(&self) -> Option<&Credential> {
        self.current.as_ref()
    }

    /// Whether a new credential was installed since the machine started.
    pub fn installed_any(&self) -> bool {
        self.installed
    }

    /// Status for `enrol agent status`.
    pub fn status(&self) -> Status {
        let leaf = self.current.as_ref().and_then(Credential::leaf);
        Status {
            phase: self.phase(),
            not_after: leaf.map(|l| validity(l).1),
            renew_at: leaf.map(|l| self.renew_at(l)),
            next_wake: match &self.state {
                State::Idle { until } | State::Backoff { until } | State::Halted { until, .. } => Some(*until),
                _ => None,
            },
            failures: self.failures,
            last_error: match &self.state {
                State::Halted { error, .. } => Some(error.clone()),
                _ => self.last_error.clone(),
            },
        }
    }

    /// Step 7: notBefore + threshold% of the lifetime + a jitter of up to
    /// jitter% fixed by the serial number (so a fleet spreads out, and a
    /// restart does not move the date).
    pub fn renew_at(&self, leaf: &Certificate) -> SystemTime {
        let (nb, na) = validity(leaf);
        let life = na.duration_since(nb).unwrap_or_default();
        let at = life.mul_f64(f64::from(self.policy.threshold_percent) / 100.0);
        let span = life.mul_f64(f64::from(self.policy.jitter_percent) / 100.0).as_secs();
        let h = enrolkit_keys::DigestAlgorithm::Sha256.digest(leaf.tbs_certificate.serial_number.as_bytes());
        let mut b = [0u8; 8];
        for (d, s) in b.iter_mut().zip(h.iter()) {
            *d = *s;
        }
        let jitter = if span == 0 { 0 } else { u64::from_be_bytes(b) % span };
        nb + at + Duration::from_secs(jitter)
    }

    /// Step 7's back-off: `retry_min` doubling per consecutive failure up to
    /// `retry_max`, then up to 10% more from the seed, so devices that failed
    /// together do not retry together.
    pub fn backoff(&mut self) -> Duration {
        let shift = self.failures.saturating_sub(1).min(20);
        let base = self
            .policy
            .retry_min
            .saturating_mul(1u32 << shift)
            .min(self.policy.retry_max);
        let extra = base.as_millis() as u64 / 10;
        let r = self.random_u64();
        base + Duration::from_millis(if extra == 0 { 0 } else { r % extra })
    }

    fn random(&mut self) -> Vec<u8> {
        self.counter += 1;
        let mut input = self.seed.to_vec();
        input.extend_from_slice(&self.counter.to_be_bytes());
        enrolkit_keys::DigestAlgorithm::Sha256.digest(&input)
    }

    fn random_u64(&mut self) -> u64 {
        let r = self.random();
        let mut b = [0u8; 8];
        for (d, s) in b.iter_mut().zip(r.iter()) {
            *d = *s;
        }
        u64::from_be_bytes(b)
    }

    /// Hand in an event at `now`; get the next action.
    pub fn on(&mut self, event: Event, now: SystemTime) -> Action {
        if let Event::DoneWithWarning(warning) = event {
            let action = self.on(Event::Done, now);
            self.warn(warning);
            return action;
        }
        let state = std::mem::replace(&mut self.state, State::Start);
        match (state, event) {
            (_, Event::ProfileChanged(policy)) => {
                self.policy = policy;
                self.next_check = None;
                self.begin(now)
            }
            (_, Event::Directive(d)) => {
                self.directive = Some(d);
                self.begin(now)
            }
            (State::Halted { error, until }, Event::Tick) => {
                if self.alerted.as_ref() != Some(&error) {
                    // Told once per distinct error, not at every retry.
                    self.alerted = Some(error.clone());
                    self.state = State::Halted {
                        error: error.clone(),
                        until,
                    };
                    Action::Notify(Notice::Halted { error })
                } else if now < until {
                    self.state = State::Halted { error, until };
                    Action::Wait { until }
                } else {
                    self.begin(now)
                }
            }
            (State::Halted { error, until }, Event::Done | Event::Failed(_)) => {
                // The alert was delivered (or not: it is not repeated).
                self.state = State::Halted { error, until };
                Action::Wait { until }
            }
            (State::Start, Event::Tick) => self.begin(now),
            (State::Idle { until }, Event::Tick) if now < until => {
                self.state = State::Idle { until };
                Action::Wait { until }
            }
            (State::Backoff { until }, Event::Tick) if now < until => {
                self.state = State::Backoff { until };
                Action::Wait { until }
            }
            (State::Idle { .. } | State::Backoff { .. }, Event::Tick) => self.begin(now),
            (State::Loading, Event::Loaded(cred)) => {
                self.current = cred;
                self.state = State::FetchingAnchors;
                Action::FetchCaCerts
            }
            (State::FetchingAnchors, Event::CaCerts(certs)) => self.anchors_received(&certs, now),
            (
                State::Enrolling { reason },
                Event::Issued {
                    certificates,
                    public_key,
                },
            ) => self.issued(reason, &certificates, &public_key, now),
            (State::Installing { reason, credential }, Event::Done) => {
                self.current = Some(credential);
                self.installed = true;
                self.enrolling = None;
                self.failures = 0;
                self.failure_notified = false;
                self.revoked = false;
                self.directive = None;
                self.last_error = None;
                if self.hold_renewal_until.is_some_and(|t| t > now) {
                    self.warn(format!(
                        "the new certificate is already past the renewal threshold ({}% of its lifetime); next renewal attempt after {}s",
                        self.policy.threshold_percent,
                        self.policy.retry_max.as_secs()
                    ));
                }
                self.next_check = Some(now + self.policy.revocation_interval);
                let leaf = self.current.as_ref().and_then(Credential::leaf);
                let notice = match leaf {
                    Some(l) => Notice::Installed {
                        reason,
                        serial: serial_hex(l),
                        subject: subject(l),
                        not_after: validity(l).1,
                    },
                    None => return self.fail("internal: installed without a certificate".into(), now),
                };
                self.state = State::Notifying { then: Then::Peers };
                Action::Notify(notice)
            }
            (State::Notifying { then }, Event::Failed(e)) if then != Then::Backoff => {
                // Said, not fatal: what it reports has happened.
                self.state = State::Notifying { then };
                let action = self.on(Event::Done, now);
                self.warn(format!("notification failed: {e}"));
                action
            }
            (State::Notifying { then }, Event::Done | Event::Failed(_)) => match then {
                Then::Peers => self.peers_from(0, now),
                Then::Reenrol => self.enrol_or_continue(now),
                Then::Backoff => {
                    let until = now + self.backoff();
                    self.state = State::Backoff { until };
                    Action::Wait { until }
                }
            },
            (State::Checking { current, queue }, Event::Fetched(body)) => self.checked(current, queue, &body, now),
            (State::Checking { current, queue }, Event::Failed(e)) => {
                self.warn(format!("revocation check of certificate {} failed: {e}", current.index));
                // Check again sooner than usual; the credential stays.
                self.next_check = Some(now + self.policy.retry_min.min(self.policy.revocation_interval));
                self.next_revocation(queue, now)
            }
            (State::FetchingPeer { index }, Event::PeerCerts(certs)) => {
                let pins = self.policy.peer_pins(index);
                match pins.map(|p| Anchors::validate(&certs, p, now)) {
                    Some(Ok(a)) => {
                        let mut certs = vec![a.anchor];
                        certs.extend(a.below);
                        self.state = State::StoringPeer { index };
                        Action::StorePeer { index, certs }
                    }
                    Some(Err(e)) => {
                        self.warn(format!("peer {index}: {e}"));
                        self.peers_from(index + 1, now)
                    }
                    None => self.peers_from(index + 1, now),
                }
            }
            (State::FetchingPeer { index } | State::StoringPeer { index }, Event::Failed(e)) => {
                self.warn(format!("peer {index}: {e}"));
                self.peers_from(index + 1, now)
            }
            (State::StoringPeer { index }, Event::Done) => self.peers_from(index + 1, now),
            (State::Cleaning, Event::Done) => self.idle(now),
            (State::Cleaning, Event::Failed(e)) => {
                self.warn(format!("clean-up: {e}"));
                self.idle(now)
            }
            (
                State::Loading | State::FetchingAnchors | State::Enrolling { .. } | State::Installing { .. },
                Event::Failed(e),
            ) => self.fail(e, now),
            (state, event) => {
                let what = format!("internal: {event:?} while {state:?}");
                self.fail(what.chars().take(200).collect(), now)
            }
        }
    }

    fn warn(&mut self, e: String) {
        self.last_error = Some(e);
    }

    /// Start a cycle: read the stores.
    fn begin(&mut self, _now: SystemTime) -> Action {
        self.state = State::Loading;
        Action::LoadStores
    }

    fn fail(&mut self, error: String, now: SystemTime) -> Action {
        self.failures = self.failures.saturating_add(1);
        self.last_error = Some(error.clone());
        if !self.failure_notified {
            // Once per run of failures: the first.
            self.failure_notified = true;
            self.state = State::Notifying { then: Then::Backoff };
            return Action::Notify(Notice::Failed {
                error,
                failures: self.failures,
            });
        }
        let until = now + self.backoff();
        self.state = State::Backoff { until };
        Action::Wait { until }
    }

    /// A trust error: stop (a `--once` run ends here), and try again after
    /// the back-off, as after a failure.
    fn halt(&mut self, error: String, now: SystemTime) -> Action {
        self.failures = self.failures.saturating_add(1);
        let until = now + self.backoff();
        self.state = State::Halted {
            error: error.clone(),
            until,
        };
        Action::Halt { error }
    }

    /// Steps 2 and 4.
    fn anchors_received(&mut self, certs: &[Certificate], now: SystemTime) -> Action {
        match Anchors::validate(certs, &self.policy.anchors, now) {
            Ok(a) => {
                // Trust is good again: the next trust error is news.
                self.alerted = None;
                self.complete_chain(&a, now);
                self.anchors = Some(a);
                self.enrol_or_continue(now)
            }
            Err(e @ ChainError::NotValidNow { .. }) => self.fail(e.to_string(), now),
            Err(e) => self.halt(e.to_string(), now),
        }
    }

    /// Step 8 checks every certificate of the chain, so the chain held must
    /// reach the anchor: when the stores gave less (no chain file, an older
    /// install), complete it from the validated CA certificates.
    fn complete_chain(&mut self, anchors: &Anchors, now: SystemTime) {
        let Some(cur) = self.current.as_mut() else { return };
        let Some(leaf) = cur.chain.first() else { return };
        let rest = cur.chain.get(1..).unwrap_or(&[]);
        if let Ok(full) = anchors.chain_for(leaf, rest, &leaf.tbs_certificate.subject_public_key_info, now) {
            cur.chain = full;
        }
    }

    /// Does the device need a new certificate, and how does it authenticate?
    pub fn needs_enrolment(&self, now: SystemTime) -> Option<(EnrolKind, Reason)> {
        let Some(cur) = &self.current else {
            return Some((EnrolKind::Initial, Reason::FirstCertificate));
        };
        let Some(leaf) = cur.leaf() else {
            return Some((EnrolKind::Initial, Reason::FirstCertificate));
        };
        let (_, na) = validity(leaf);
        if now > na {
            return Some((EnrolKind::Initial, Reason::Expired));
        }
        if let Some(a) = &self.anchors {
            let rest = cur.chain.get(1..).unwrap_or(&[]);
            if a.chain_for(leaf, rest, &leaf.tbs_certificate.subject_public_key_info, now)
                .is_err()
            {
                return Some((EnrolKind::Initial, Reason::NewPki));
            }
        }
        if self.revoked {
            return Some((EnrolKind::Initial, Reason::Revoked));
        }
        if cur.generation.as_ref().is_some_and(|g| *g != self.policy.generation) {
            return Some((EnrolKind::Initial, Reason::ProfileChanged));
        }
        if self.directive == Some(Directive::RenewNow) {
            return Some((EnrolKind::Renew, Reason::Directive));
        }
        if now >= self.renew_at(leaf) && self.hold_renewal_until.is_none_or(|t| now >= t) {
            return Some((EnrolKind::Renew, Reason::RenewalDue));
        }
        None
    }

    fn enrol_or_continue(&mut self, now: SystemTime) -> Action {
        let Some(anchors) = self.anchors.clone() else {
            return self.fail("internal: no validated anchors".into(), now);
        };
        if let Some((kind, reason)) = self.needs_enrolment(now) {
            self.enrolling = Some(reason);
            self.state = State::Enrolling { reason };
            return Action::Enrol { kind, reason, anchors };
        }
        self.revocation_or_continue(now)
    }

    /// Step 11, then 12.
    fn issued(
        &mut self,
        reason: Reason,
        certs: &[Certificate],
        public_key: &spki::SubjectPublicKeyInfoOwned,
        now: SystemTime,
    ) -> Action {
        let Some(anchors) = self.anchors.clone() else {
            return self.fail("internal: no validated anchors".into(), now);
        };
        let Some(leaf) = certs
            .iter()
            .find(|c| &c.tbs_certificate.subject_public_key_info == public_key)
        else {
            return self.fail("the reply holds no certificate for our key".into(), now);
        };
        let extra: Vec<Certificate> = certs.iter().filter(|c| *c != leaf).cloned().collect();
        match anchors.chain_for(leaf, &extra, public_key, now) {
            Ok(chain) => {
                if now >= self.renew_at(leaf) {
                    // Installed (it is valid and newer), but renewing again at
                    // once would loop: wait as long as after a failure.
                    self.hold_renewal_until = Some(now + self.policy.retry_max);
                }
                let credential = Credential {
                    chain: chain.clone(),
                    generation: Some(self.policy.generation.clone()),
                };
                self.state = State::Installing { reason, credential };
                Action::Install {
                    chain,
                    anchor: anchors.anchor,
                    generation: self.policy.generation.clone(),
                }
            }
            Err(e) => self.fail(e.to_string(), now),
        }
    }

    /// Step 8: queue the checks for every certificate in the chain.
    fn revocation_or_continue(&mut self, now: SystemTime) -> Action {
        let due = self.next_check.is_none_or(|t| now >= t);
        if self.policy.revocation == RevocationMode::None || !due {
            return self.peers_from(0, now);
        }
        self.next_check = Some(now + self.policy.revocation_interval);
        let chain = self.current.as_ref().map(|c| c.chain.clone()).unwrap_or_default();
        let mut queue = VecDeque::new();
        for (index, cert) in chain.iter().enumerate() {
            if matches!(self.policy.revocation, RevocationMode::Ocsp | RevocationMode::Both) {
                match (revocation::ocsp_url(cert), self.issuer_of(index)) {
                    (Some(url), Some(issuer)) => {
                        let nonce = self.random().into_iter().take(16).collect::<Vec<u8>>();
                        match revocation::ocsp_request(cert, &issuer, Some(&nonce)) {
                            Ok(request) => queue.push_back(Check {
                                index,
                                fetch: Fetch::Ocsp { url, request },
                                nonce: Some(nonce),
                            }),
                            Err(e) => self.warn(format!("OCSP request for {}: {e}", subject(cert))),
                        }
                    }
                    (None, _) => self.warn(format!("{} names no OCSP responder", subject(cert))),
                    (_, None) => {}
                }
            }
            if matches!(self.policy.revocation, RevocationMode::Crl | RevocationMode::Both) {
                match revocation::crl_urls(cert).into_iter().next() {
                    Some(url) => queue.push_back(Check {
                        index,
                        fetch: Fetch::Crl { url },
                        nonce: None,
                    }),
                    None => self.warn(format!("{} names no CRL distribution point", subject(cert))),
                }
            }
        }
        self.next_revocation(queue, now)
    }

    fn issuer_of(&self, index: usize) -> Option<Certificate> {
        let chain = &self.current.as_ref()?.chain;
        chain
            .get(index + 1)
            .cloned()
            .or_else(|| self.anchors.as_ref().map(|a| a.anchor.clone()))
    }

    fn next_revocation(&mut self, mut queue: VecDeque<Check>, now: SystemTime) -> Action {
        match queue.pop_front() {
            Some(current) => {
                let fetch = current.fetch.clone();
                self.state = State::Checking { current, queue };
                Action::Fetch(fetch)
            }
            None if self.revoked => {
                let subject = self
                    .current
                    .as_ref()
                    .and_then(Credential::leaf)
                    .map(subject)
                    .unwrap_or_default();
                self.state = State::Notifying { then: Then::Reenrol };
                Action::Notify(Notice::Revoked { subject })
            }
            None => self.peers_from(0, now),
        }
    }

    fn checked(&mut self, check: Check, queue: VecDeque<Check>, body: &[u8], now: SystemTime) -> Action {
        let (Some(cert), Some(issuer)) = (
            self.current.as_ref().and_then(|c| c.chain.get(check.index)).cloned(),
            self.issuer_of(check.index),
        ) else {
            return self.next_revocation(queue, now);
        };
        let status = match &check.fetch {
            Fetch::Ocsp { .. } => revocation::check_ocsp_response(body, &cert, &issuer, now, check.nonce.as_deref()),
            Fetch::Crl { .. } => revocation::check_crl(body, &cert, &issuer, now),
        };
        match status {
            Ok(CertStatus::Good) => {}
            Ok(CertStatus::Revoked { .. }) if check.index == 0 => self.revoked = true,
            Ok(CertStatus::Revoked { .. }) => {
                // A CA above us is revoked: a new certificate from it would not help.
                self.warn(format!(
                    "CA certificate {} ({}) is revoked; the operator must act",
                    subject(&cert),
                    fingerprint(&cert)
                ));
            }
            Ok(CertStatus::Unknown) => self.warn(format!("the OCSP responder does not know {}", subject(&cert))),
            Err(e) => {
                self.warn(format!("revocation data for {} rejected: {e}", subject(&cert)));
                self.next_check = Some(now + self.policy.retry_min.min(self.policy.revocation_interval));
            }
        }
        self.next_revocation(queue, now)
    }

    /// Steps 9–10, then 14.
    fn peers_from(&mut self, index: usize, _now: SystemTime) -> Action {
        if index < self.policy.peer_anchors.len() {
            self.state = State::FetchingPeer { index };
            return Action::FetchPeer { index };
        }
        self.state = State::Cleaning;
        Action::Clean {
            keep_staged: self.enrolling.is_some(),
        }
    }

    fn idle(&mut self, now: SystemTime) -> Action {
        // A cycle that gets here did not fail: a run of failures has ended.
        self.failures = 0;
        self.failure_notified = false;
        let leaf = self.current.as_ref().and_then(Credential::leaf);
        let mut until = now + Duration::from_secs(24 * 3600);
        if let Some(l) = leaf {
            let renew = match self.hold_renewal_until {
                Some(t) => self.renew_at(l).max(t),
                None => self.renew_at(l),
            };
            until = until.min(renew).min(validity(l).1);
        }
        if self.policy.revocation != RevocationMode::None || !self.policy.peer_anchors.is_empty() {
            if let Some(t) = self.next_check {
                until = until.min(t);
            }
        }
        let until = until.max(now + Duration::from_secs(1));
        self.state = State::Idle { until };
        Action::Wait { until }
    }
}

impl Policy {
    /// Pins of peer `index`.
    fn peer_pins(&self, index: usize) -> Option<&[String]> {
        self.peer_anchors.get(index).map(Vec::as_slice)
    }
}
