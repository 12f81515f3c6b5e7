//! The SCEP client: transport (POST when offered, GET otherwise) and flows.

use crate::trust::{Trust, TrustedCa};
use der::Encode;
use enrolkit_keys::{DigestAlgorithm, KeyKind, KeySpec, PrivateKey, SoftwareKey};
use enrolkit_pkix::pkcs10::{CertificationRequest, RequestParams};
use enrolkit_scep::transport::{self, CONTENT_TYPE_PKI_MESSAGE, MAX_REPLY};
use enrolkit_scep::{
    build_request, issuer_and_serial, open_cert_rep, self_signed_certificate, CaCertificates, Capabilities, CertRep,
    ContentEncryption, FailInfo, IssuerAndSubject, RequestBody, Requester, ScepError, SentRequest, TransactionId,
};
use std::io::Read;
use std::time::{Duration, Instant, SystemTime};
use x509_cert::crl::CertificateList;
use x509_cert::name::Name;
use x509_cert::Certificate;

/// Why a client operation failed; each variant is one clear line.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or the connection broke.
    #[error("cannot reach {url}: {reason}")]
    Network {
        /// URL.
        url: String,
        /// Reason.
        reason: String,
    },
    /// TLS could not be set up with these settings, or the server refused
    /// the session: the handshake failed, or a TLS alert ended the session
    /// before any response (how a TLS 1.3 server refuses a client
    /// certificate, after the client's side of the handshake is done). A
    /// connection that merely closed is [`ClientError::Network`]: the
    /// server may have taken the request.
    #[error("cannot reach {url}: TLS: {reason}")]
    Tls {
        /// URL (or `host:port` when the failure was in setting up).
        url: String,
        /// Reason.
        reason: String,
    },
    /// The server answered with an HTTP error.
    #[error("server answered HTTP {status}: {body}")]
    Http {
        /// Status code.
        status: u16,
        /// First line of the body.
        body: String,
    },
    /// A SCEP message was malformed, unverifiable or unexpected.
    #[error("{0}")]
    Scep(#[from] ScepError),
    /// The server refused with a failInfo.
    #[error("the server refused the request: {fail_info}{}", text.as_deref().map(|t| format!(" ({t})")).unwrap_or_default())]
    Refused {
        /// Reason.
        fail_info: FailInfo,
        /// failInfoText.
        text: Option<String>,
    },
    /// PENDING for longer than the polling window.
    #[error("still pending after {elapsed:?} and {attempts} polls (window exceeded)")]
    WindowExceeded {
        /// Time waited.
        elapsed: Duration,
        /// Polls made.
        attempts: u32,
    },
    /// The CA certificate is not the pinned one.
    #[error("CA certificate fingerprint {actual} does not match the expected {expected}")]
    FingerprintMismatch {
        /// Pinned.
        expected: String,
        /// Received.
        actual: String,
    },
    /// No algorithm both sides support.
    #[error("no {0} that both the server and enrolkit support")]
    NoCommonAlgorithm(&'static str),
    /// A certificate the server sent is not trusted: it does not chain to
    /// the pinned anchor, or may not act in the role it was offered for.
    #[error("{what} is not trusted: {error}")]
    Untrusted {
        /// Which certificate, in which role.
        what: String,
        /// What the chain validator found.
        #[source]
        error: enrolkit_pkix::PathError,
    },
    /// The issued certificate is not the one asked for (another key, a CA certificate).
    #[error("{0}")]
    NotOurCertificate(String),
    /// Only legacy algorithms (DES3, SHA-1) are left and the caller did not
    /// allow them ([`ScepClient::legacy`], `enrol scep --legacy`).
    #[error("{0}; refused without an explicit opt-in to legacy algorithms (enrol scep --legacy, ScepClient::legacy)")]
    Downgrade(String),
    /// An EST body was malformed or unexpected.
    #[error("{0}")]
    Est(#[from] enrolkit_est::EstError),
    /// Key generation or a key operation failed.
    #[error("key: {0}")]
    Key(#[from] enrolkit_keys::KeyError),
    /// A key could not be generated, loaded or removed where it lives (a
    /// file or a PKCS#11 token); `at` names the key when the message should.
    #[error("{}{error}", at.as_ref().map(|a| format!("{a}: ")).unwrap_or_default())]
    KeyStore {
        /// The key's location (without a PIN), when named.
        at: Option<String>,
        /// What the key store said.
        #[source]
        error: enrolkit_pkcs11::Pkcs11Error,
    },
    /// A file could not be read or written (the message names it).
    #[error("{0}")]
    Files(String),
    /// An EST bootstrap (RFC 7030 §4.1.1) was asked for without a pinned
    /// fingerprint: what `/cacerts` served is not trusted.
    #[error("not trusting the CA certificates /cacerts served: no pinned fingerprint and no trust anchors")]
    NoPin,
    /// After an EST bootstrap, the server's own TLS certificate does not
    /// chain to the pinned CA certificates (the bootstrap connection was
    /// not authenticated, so this is checked afterwards).
    #[error("the EST server's certificate does not chain to the pinned CA: {0}")]
    ServerNotPinned(String),
    /// The MEF answered a Key Retrieval with `Status=false`.
    #[error("the MEF refused (HTTP {status}, Status=false): {reason}")]
    CredentialRefused {
        /// HTTP status.
        status: u16,
        /// The MEF's reason.
        reason: String,
    },
    /// The reply did not contain what was asked for.
    #[error("{0}")]
    Unexpected(String),
}

impl From<enrolkit_pkcs11::Pkcs11Error> for ClientError {
    fn from(error: enrolkit_pkcs11::Pkcs11Error) -> Self {
        ClientError::KeyStore { at: None, error }
    }
}

impl ClientError {
    /// Whether the server refused the session or its authentication (TLS,
    /// HTTP 401 or 403) rather than taking a request and answering it: a
    /// caller may retry with other credentials without making the same
    /// request twice.
    pub fn session_refused(&self) -> bool {
        matches!(
            self,
            ClientError::Tls { .. } | ClientError::Http { status: 401 | 403, .. }
        )
    }
}

/// Result alias.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Ciphers we offer, strongest first.
pub const CIPHERS: [ContentEncryption; 2] = [ContentEncryption::Aes128Cbc, ContentEncryption::DesEde3Cbc];
/// Digests we offer, strongest first; SHA-1 only when nothing better is offered.
pub const DIGESTS: [DigestAlgorithm; 3] = [DigestAlgorithm::Sha512, DigestAlgorithm::Sha256, DigestAlgorithm::Sha1];

/// An HTTP connection to one SCEP URL.
pub struct ScepClient {
    http: reqwest::blocking::Client,
    url: String,
    legacy: bool,
}

impl ScepClient {
    /// A client for `url` (e.g. `http://host/scep`) with a per-request timeout.
    pub fn new(url: &str, timeout: Duration) -> Result<Self> {
        let http = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("enrolkit/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Network {
                url: url.into(),
                reason: e.to_string(),
            })?;
        Ok(ScepClient {
            http,
            url: url.trim_end_matches('?').to_owned(),
            legacy: false,
        })
    }

    /// Allow legacy algorithms (`yes`): a server whose GetCACaps fails is
    /// then taken as a draft-era server (DES3, SHA-1, GET only), DES3 and
    /// SHA-1 may be negotiated when the server offers nothing better, and
    /// certificates signed with SHA-1 are accepted. Off by default: a
    /// failed GetCACaps is an error, since an attacker can make it fail.
    pub fn legacy(mut self, yes: bool) -> Self {
        self.legacy = yes;
        self
    }

    /// Whether legacy algorithms are allowed ([`ScepClient::legacy`]).
    pub fn allows_legacy(&self) -> bool {
        self.legacy
    }

    fn send(&self, rb: reqwest::blocking::RequestBuilder) -> Result<(Option<String>, Vec<u8>)> {
        let net = |e: reqwest::Error| ClientError::Network {
            url: self.url.clone(),
            reason: e.without_url().to_string(),
        };
        let resp = rb.send().map_err(net)?;
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        resp.take(MAX_REPLY as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| ClientError::Network {
                url: self.url.clone(),
                reason: e.to_string(),
            })?;
        if body.len() > MAX_REPLY {
            return Err(ScepError::TooLarge {
                what: "reply",
                limit: MAX_REPLY,
                actual: body.len(),
            }
            .into());
        }
        if !(200..300).contains(&status) {
            let first = String::from_utf8_lossy(&body)
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect();
            return Err(ClientError::Http { status, body: first });
        }
        Ok((ct, body))
    }

    fn get(&self, op: &str) -> Result<(Option<String>, Vec<u8>)> {
        self.send(self.http.get(format!("{}?operation={op}", self.url)))
    }

    /// GetCACaps. A server whose GetCACaps fails (HTTP error) is a legacy
    /// server with an empty set only when legacy algorithms are allowed
    /// ([`ScepClient::legacy`]); otherwise that is
    /// [`ClientError::Downgrade`], since the empty set means DES3 and SHA-1.
    pub fn caps(&self) -> Result<Capabilities> {
        match self.get("GetCACaps") {
            Ok((_, body)) => Ok(Capabilities::parse(&body)?),
            Err(ClientError::Http { .. }) if self.legacy => Ok(Capabilities::default()),
            Err(ClientError::Http { status, body }) => Err(ClientError::Downgrade(format!(
                "GetCACaps failed (HTTP {status}: {body}): without the server's capabilities only DES3 and SHA-1 are left"
            ))),
            Err(e) => Err(e),
        }
    }

    /// GetCACert as served, sorted by role by name only: nothing in it is
    /// verified. For display; [`ScepClient::ca_certs`] decides trust.
    pub fn ca_certs_unverified(&self) -> Result<CaCertificates> {
        let (ct, body) = self.get("GetCACert")?;
        Ok(CaCertificates::parse(ct.as_deref(), &body)?)
    }

    /// GetCACert, and what of it the client may trust under `trust` (see
    /// [`crate::trust::scep_ca`]): with a pin, only certificates that chain
    /// to it, and an RA only when a trusted CA signed it as one (or it is pinned).
    pub fn ca_certs(&self, trust: &Trust) -> Result<TrustedCa> {
        crate::trust::scep_ca(self.ca_certs_unverified()?, trust, SystemTime::now(), self.legacy)
    }

    /// Send a pkiMessage (POST when the server offers it, else GET) and return the reply.
    pub fn pki_operation(&self, caps: &Capabilities, der_bytes: &[u8]) -> Result<Vec<u8>> {
        let rb = if caps.supports_post() {
            self.http
                .post(format!("{}?operation=PKIOperation", self.url))
                .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE_PKI_MESSAGE)
                .body(der_bytes.to_vec())
        } else {
            self.http.get(format!(
                "{}?operation=PKIOperation&message={}",
                self.url,
                transport::encode_get_message(der_bytes)
            ))
        };
        Ok(self.send(rb)?.1)
    }
}

/// How long and how often to poll a PENDING request.
#[derive(Debug, Clone, Copy)]
pub struct PollPolicy {
    /// Wait between polls.
    pub interval: Duration,
    /// Give up after this long.
    pub window: Duration,
}

/// Which message a renewal is sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RenewalForm {
    /// RenewalReq when GetCACaps lists `Renewal` (or its draft alias
    /// `Update`), else PKCSReq signed by the current certificate: what a
    /// server that does not know RenewalReq (EJBCA, Dogtag) renews from.
    #[default]
    Auto,
    /// RenewalReq (RFC 8894 §3.3.1.2), whatever the capabilities say.
    RenewalReq,
    /// PKCSReq signed by the current certificate, without a challenge, as
    /// sscep `-O old.crt -K old.key` sends it.
    PkcsReq,
}

impl RenewalForm {
    /// The form actually sent to a server with `caps`.
    pub fn resolve(self, caps: &Capabilities) -> RenewalForm {
        match self {
            RenewalForm::Auto if caps.supports_renewal() => RenewalForm::RenewalReq,
            RenewalForm::Auto => RenewalForm::PkcsReq,
            other => other,
        }
    }
}

/// A client bound to a server's capabilities and CA certificates.
pub struct ScepSession {
    /// The transport.
    pub client: ScepClient,
    /// The server's capabilities.
    pub caps: Capabilities,
    /// The server's CA and RA certificates that are trusted (see
    /// [`crate::trust::scep_ca`]): requests are encrypted only to these,
    /// replies accepted only from these.
    pub ca: CaCertificates,
    /// Served certificates left out as untrusted, with the reason.
    pub dropped: Vec<(Certificate, enrolkit_pkix::PathError)>,
    /// Chosen cipher.
    pub cipher: ContentEncryption,
    /// Chosen digest.
    pub digest: DigestAlgorithm,
    /// What issued certificates must chain to.
    anchors: Vec<Certificate>,
}

/// The identity a pkiMessage is signed with and the reply is encrypted to.
struct Transport {
    key: SoftwareKey,
    cert: Certificate,
}

impl ScepSession {
    /// GetCACaps and GetCACert, the CA and RA certificates admitted under
    /// `trust`, then the algorithms. Nothing is sent to the server but
    /// these two queries until every certificate used is trusted.
    pub fn open(client: ScepClient, trust: &Trust) -> Result<Self> {
        Self::open_with(client, trust, &CIPHERS)
    }

    /// As [`ScepSession::open`], offering only `ciphers` (strongest first),
    /// e.g. to insist on DES3 with a server whose AES support is broken
    /// (offering DES3 alone is an explicit choice of it; falling back to
    /// DES3 from AES, or to SHA-1, needs [`ScepClient::legacy`]).
    pub fn open_with(client: ScepClient, trust: &Trust, ciphers: &[ContentEncryption]) -> Result<Self> {
        let caps = client.caps()?;
        let trusted = client.ca_certs(trust)?;
        let cipher = caps
            .choose_cipher(ciphers)
            .ok_or(ClientError::NoCommonAlgorithm("content encryption"))?;
        let digest = caps
            .choose_digest(&DIGESTS)
            .ok_or(ClientError::NoCommonAlgorithm("digest"))?;
        if !client.legacy {
            if cipher == ContentEncryption::DesEde3Cbc && ciphers.contains(&ContentEncryption::Aes128Cbc) {
                return Err(ClientError::Downgrade(
                    "the server offers no AES content encryption, only DES3".into(),
                ));
            }
            if digest == DigestAlgorithm::Sha1 {
                return Err(ClientError::Downgrade("the server offers no digest but SHA-1".into()));
            }
        }
        Ok(ScepSession {
            client,
            caps,
            ca: trusted.certificates,
            dropped: trusted.dropped,
            cipher,
            digest,
            anchors: trusted.anchors,
        })
    }

    /// What issued certificates must chain to: the pinned anchor(s), or
    /// without a pin the CA certificates the server sent.
    pub fn trust_anchors(&self) -> &[Certificate] {
        &self.anchors
    }

    /// Check a certificate the server issued for `public_key` before it
    /// is handed back (and so before anything is written): see
    /// [`crate::trust::issued`]; `extra` are other certificates of the reply.
    pub fn check_issued(
        &self,
        cert: &Certificate,
        public_key: &spki::SubjectPublicKeyInfoOwned,
        extra: &[Certificate],
    ) -> Result<()> {
        let mut intermediates = vec![self.ca.ca.clone()];
        intermediates.extend(self.ca.chain.iter().cloned());
        intermediates.extend(extra.iter().cloned());
        crate::trust::issued(
            cert,
            public_key,
            &self.anchors,
            &intermediates,
            SystemTime::now(),
            self.client.legacy,
        )
        .map(|_| ())
    }

    /// The certificate for `want` in a SUCCESS reply, checked by [`ScepSession::check_issued`].
    fn issued_for(&self, rep: &CertRep, want: &spki::SubjectPublicKeyInfoOwned) -> Result<Certificate> {
        let cert = rep
            .certificate_for(want)
            .cloned()
            .ok_or_else(|| ClientError::Unexpected("SUCCESS without a certificate for our key".into()))?;
        let extra: Vec<Certificate> = match rep {
            CertRep::Success { certificates, .. } => certificates.iter().filter(|c| **c != cert).cloned().collect(),
            _ => vec![],
        };
        self.check_issued(&cert, want, &extra)?;
        Ok(cert)
    }

    fn exchange(
        &self,
        signer: &dyn PrivateKey,
        cert: &Certificate,
        body: &RequestBody,
        txid: &TransactionId,
    ) -> Result<(CertRep, SentRequest)> {
        let requester = Requester {
            signer: signer.as_signer(),
            decryptor: signer.as_decryptor(),
            certificate: cert,
        };
        let mut rng = rand_core::OsRng;
        let (der_bytes, sent) = build_request(
            &requester,
            self.ca.encryption_certificate(),
            body,
            txid,
            self.cipher,
            self.digest,
            &mut rng,
        )?;
        let reply = self.client.pki_operation(&self.caps, &der_bytes)?;
        let rep = open_cert_rep(&reply, &sent, &self.ca.signers(), &requester)?;
        Ok((rep, sent))
    }

    fn transport_identity(&self, key: &dyn PrivateKey, subject: &Name) -> Result<Option<Transport>> {
        // Key transport is RSA: a non-RSA key signs its CSR, a throwaway RSA key carries the message.
        if matches!(key.kind(), KeyKind::Rsa(_)) {
            return Ok(None);
        }
        let k = SoftwareKey::generate(KeySpec::Rsa2048)?;
        let cert = self_signed_certificate(
            &k,
            subject,
            self.digest_for(&k),
            SystemTime::now() - Duration::from_secs(300),
            Duration::from_secs(7 * 86400),
            &mut rand_core::OsRng,
        )?;
        Ok(Some(Transport { key: k, cert }))
    }

    fn digest_for(&self, key: &dyn PrivateKey) -> DigestAlgorithm {
        if matches!(key.kind(), KeyKind::EcP256) {
            DigestAlgorithm::Sha256
        } else {
            self.digest
        }
    }

    /// First enrolment: PKCSReq signed with a self-signed certificate, then
    /// CertPoll on PENDING until `poll.window` runs out. `progress` is told
    /// each poll (attempt number, elapsed time).
    pub fn enrol(
        &self,
        key: &dyn PrivateKey,
        params: &RequestParams,
        poll: PollPolicy,
        progress: &mut dyn FnMut(u32, Duration),
    ) -> Result<Certificate> {
        let csr_params = RequestParams {
            digest: self.digest_for(key),
            ..params.clone()
        };
        let csr =
            CertificationRequest::parse(&csr_params.build(key).map_err(ScepError::from)?).map_err(ScepError::from)?;
        let transport = self.transport_identity(key, &params.subject)?;
        let self_signed;
        let (sig_key, sig_cert): (&dyn PrivateKey, &Certificate) = match &transport {
            Some(t) => (&t.key, &t.cert),
            None => {
                self_signed = self_signed_certificate(
                    key,
                    &params.subject,
                    self.digest,
                    SystemTime::now() - Duration::from_secs(300),
                    Duration::from_secs(7 * 86400),
                    &mut rand_core::OsRng,
                )?;
                (key, &self_signed)
            }
        };
        let txid = TransactionId::from_public_key(&key.spki().to_der().map_err(ScepError::from)?);
        let (first, _) = self.exchange(sig_key, sig_cert, &RequestBody::PkcsReq(csr), &txid)?;
        self.follow(first, (sig_key, sig_cert), &params.subject, &txid, key, poll, progress)
    }

    /// Turn a first reply into a certificate for `want`: poll (CertPoll
    /// signed with `signer`) while PENDING, within `poll.window`.
    #[allow(clippy::too_many_arguments)]
    fn follow(
        &self,
        first: CertRep,
        signer: (&dyn PrivateKey, &Certificate),
        subject: &Name,
        txid: &TransactionId,
        want: &dyn PrivateKey,
        poll: PollPolicy,
        progress: &mut dyn FnMut(u32, Duration),
    ) -> Result<Certificate> {
        let poll_body = RequestBody::CertPoll(IssuerAndSubject {
            issuer: self.ca.ca.tbs_certificate.subject.clone(),
            subject: subject.clone(),
        });
        let started = Instant::now();
        let mut attempts = 0u32;
        let mut rep = first;
        loop {
            match rep {
                CertRep::Success { .. } => return self.issued_for(&rep, want.spki()),
                CertRep::Failure { fail_info, text } => return Err(ClientError::Refused { fail_info, text }),
                CertRep::Pending => {
                    let elapsed = started.elapsed();
                    if elapsed + poll.interval > poll.window {
                        return Err(ClientError::WindowExceeded { elapsed, attempts });
                    }
                    std::thread::sleep(poll.interval);
                    attempts += 1;
                    progress(attempts, started.elapsed());
                    rep = self.exchange(signer.0, signer.1, &poll_body, txid)?.0;
                }
            }
        }
    }

    /// One CertPoll for the request made earlier with `key` for `subject`
    /// (a later run of the client: the transaction is found again by the key).
    /// `renewing`: for a renewal without a new key, the certificate it renews
    /// (its transactionID depends on it, see [`ScepSession::renew`]).
    pub fn poll_once(
        &self,
        key: &dyn PrivateKey,
        subject: &Name,
        renewing: Option<&Certificate>,
    ) -> Result<Option<Certificate>> {
        if !matches!(key.kind(), KeyKind::Rsa(_)) {
            return Err(ClientError::Unexpected(
                "polling from a later run needs the RSA key the request was signed with".into(),
            ));
        }
        let cert = self_signed_certificate(
            key,
            subject,
            self.digest,
            SystemTime::now() - Duration::from_secs(300),
            Duration::from_secs(7 * 86400),
            &mut rand_core::OsRng,
        )?;
        let txid = transaction_for(key, renewing)?;
        let body = RequestBody::CertPoll(IssuerAndSubject {
            issuer: self.ca.ca.tbs_certificate.subject.clone(),
            subject: subject.clone(),
        });
        match self.exchange(key, &cert, &body, &txid)?.0 {
            CertRep::Pending => Ok(None),
            rep @ CertRep::Success { .. } => self
                .issued_for(&rep, key.spki())
                .and_then(|c| not_the_renewed(c, renewing))
                .map(Some),
            CertRep::Failure { fail_info, text } => Err(ClientError::Refused { fail_info, text }),
        }
    }

    /// A proxy's (or any RA's) request for a CSR someone else made and
    /// signed: a PKCSReq carrying `csr` unchanged, signed with `ra_key` and
    /// `ra_cert` (RA-POP: the server authorises by the RA certificate) and
    /// encrypted to the server, so the reply comes back encrypted to the
    /// RA. The transactionID is derived from the CSR's public key, so
    /// sending it again (a later poll, after a restart) continues the same
    /// upstream transaction: RFC 8894 servers answer a repeated PKCSReq of
    /// a known transaction with its state. `Ok(None)`: PENDING; a SUCCESS
    /// is checked ([`ScepSession::check_issued`]) for the CSR's key against
    /// the pinned anchors; a FAILURE is [`ClientError::Refused`].
    pub fn relay(
        &self,
        ra_key: &dyn PrivateKey,
        ra_cert: &Certificate,
        csr: &CertificationRequest,
    ) -> Result<Option<Certificate>> {
        let spki = csr.public_key();
        let txid = TransactionId::from_public_key(&spki.to_der().map_err(ScepError::from)?);
        match self
            .exchange(ra_key, ra_cert, &RequestBody::PkcsReq(csr.clone()), &txid)?
            .0
        {
            CertRep::Pending => Ok(None),
            rep @ CertRep::Success { .. } => self.issued_for(&rep, spki).map(Some),
            CertRep::Failure { fail_info, text } => Err(ClientError::Refused { fail_info, text }),
        }
    }

    /// Renewal for `new_key` signed with the current key and certificate,
    /// as a RenewalReq or a PKCSReq (`form`; see [`RenewalForm`]).
    pub fn renew(
        &self,
        current_key: &dyn PrivateKey,
        current: &Certificate,
        new_key: &dyn PrivateKey,
        form: RenewalForm,
        poll: PollPolicy,
        progress: &mut dyn FnMut(u32, Duration),
    ) -> Result<Certificate> {
        if !matches!(current_key.kind(), KeyKind::Rsa(_)) {
            return Err(ClientError::Unexpected(
                "SCEP renewal signs with the current key, which must be RSA".into(),
            ));
        }
        let subject = current.tbs_certificate.subject.clone();
        let der = RequestParams {
            digest: self.digest_for(new_key),
            ..RequestParams::new(subject.clone())
        }
        .build(new_key)
        .map_err(ScepError::from)?;
        let csr = CertificationRequest::parse(&der).map_err(ScepError::from)?;
        let txid = transaction_for(new_key, Some(current))?;
        let body = match form.resolve(&self.caps) {
            RenewalForm::PkcsReq => RequestBody::PkcsReq(csr),
            _ => RequestBody::RenewalReq(csr),
        };
        let (rep, _) = self.exchange(current_key, current, &body, &txid)?;
        let cert = self.follow(rep, (current_key, current), &subject, &txid, new_key, poll, progress)?;
        not_the_renewed(cert, Some(current))
    }

    fn query(
        &self,
        key: &dyn PrivateKey,
        cert: &Certificate,
        body: RequestBody,
    ) -> Result<(Vec<Certificate>, Vec<CertificateList>)> {
        let txid = TransactionId::from_public_key(&key.spki().to_der().map_err(ScepError::from)?);
        match self.exchange(key, cert, &body, &txid)?.0 {
            CertRep::Success { certificates, crls } => Ok((certificates, crls)),
            CertRep::Failure { fail_info, text } => Err(ClientError::Refused { fail_info, text }),
            CertRep::Pending => Err(ClientError::Unexpected("PENDING answer to a query".into())),
        }
    }

    /// GetCert: the certificate with `serial` from this CA, asked with our key and certificate.
    pub fn get_cert(&self, key: &dyn PrivateKey, cert: &Certificate, serial: &[u8]) -> Result<Certificate> {
        let mut ias = issuer_and_serial(&self.ca.ca);
        ias.issuer = self.ca.ca.tbs_certificate.subject.clone();
        ias.serial_number = x509_cert::serial_number::SerialNumber::new(serial).map_err(ScepError::from)?;
        self.query(key, cert, RequestBody::GetCert(ias))?
            .0
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Unexpected("GetCert reply without a certificate".into()))
    }

    /// GetCRL: the current CRL of the issuer of `cert`.
    pub fn get_crl(&self, key: &dyn PrivateKey, cert: &Certificate) -> Result<CertificateList> {
        self.query(key, cert, RequestBody::GetCrl(issuer_and_serial(cert)))?
            .1
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Unexpected("GetCRL reply without a CRL".into()))
    }
}

/// The transactionID of a request for `key`: the recommended hash of its
/// public key, and for a renewal without a new key (`renewing` certified
/// `key` already) that and the serial of the certificate renewed, since a
/// server answers a repeated transactionID with what it answered then: the
/// key's own is the enrolment that made `renewing`.
fn transaction_for(key: &dyn PrivateKey, renewing: Option<&Certificate>) -> Result<TransactionId> {
    let mut id = key.spki().to_der().map_err(ScepError::from)?;
    if let Some(c) = renewing.filter(|c| &c.tbs_certificate.subject_public_key_info == key.spki()) {
        id.extend_from_slice(c.tbs_certificate.serial_number.as_bytes());
    }
    Ok(TransactionId::from_public_key(&id))
}

/// Refuse, as the answer to a renewal, the very certificate being renewed.
fn not_the_renewed(cert: Certificate, renewing: Option<&Certificate>) -> Result<Certificate> {
    if renewing.is_some_and(|r| *r == cert) {
        return Err(ClientError::Unexpected(
            "the server answered the renewal with the certificate being renewed".into(),
        ));
    }
    Ok(cert)
}

#[cfg(test)]
mod renewal_form_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn auto_sends_renewalreq_only_to_servers_that_list_renewal() {
        let with = |body: &[u8]| Capabilities::parse(body).unwrap();
        let renewal = with(b"POSTPKIOperation\nRenewal\nSHA-256\nAES\n");
        let update = with(b"POSTPKIOperation\nUpdate\nSHA-256\n");
        let neither = with(b"POSTPKIOperation\nSHA-256\nAES\n");
        assert_eq!(RenewalForm::Auto.resolve(&renewal), RenewalForm::RenewalReq);
        assert_eq!(RenewalForm::Auto.resolve(&update), RenewalForm::RenewalReq);
        assert_eq!(RenewalForm::Auto.resolve(&neither), RenewalForm::PkcsReq);
        assert_eq!(RenewalForm::PkcsReq.resolve(&renewal), RenewalForm::PkcsReq);
        assert_eq!(RenewalForm::RenewalReq.resolve(&neither), RenewalForm::RenewalReq);
    }
}
