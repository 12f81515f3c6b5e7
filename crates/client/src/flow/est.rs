//! EST flows (RFC 7030, RFC 8951): what `enrol est` runs.
//!
//! [`EstSettings`] is everything the caller decides (server, trust,
//! credentials, how long to wait); [`EstSession::connect`] settles the
//! trust anchors (given, or by a pinned bootstrap, RFC 7030 §4.1.1); the
//! flows then ask `/csrattrs`, choose the key type it asks for
//! ([`key_for`]), build each CSR to it with the channel binding of the
//! connection it is sent on ([`request`]), wait out 202s, and validate the
//! certificate ([`validate_issued`]) before any key or certificate is
//! written.

use super::{load_key, write_key, write_public, OnProgress, Outputs, Progress};
use crate::est::{ders, EnrollReply, EstClient, EstServer};
use crate::scep::{ClientError, Result};
use enrolkit_est::{ChannelBinding, CsrAttrs, Operation};
use enrolkit_keys::{KeySpec, PrivateKey, Signer, SoftwareKey};
use enrolkit_pkcs11::KeyLocation;
use enrolkit_pkix::pkcs10::{ip_from_octets, RequestParams};
use enrolkit_tls::{ClientCertificate, ClientTlsConfig, PskKey, ServerTrust, TlsVersion};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use x509_cert::Certificate;
use zeroize::Zeroizing;

/// How long to wait on 202 Accepted (RFC 7030 §4.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    /// Give up once the next attempt would come after this long.
    pub window: Duration,
    /// Never wait longer than this between attempts, whatever Retry-After says.
    pub max_interval: Duration,
}

/// Where the trust in the EST server comes from.
#[derive(Debug, Clone)]
pub enum EstTrust {
    /// These CA certificates, and nothing else.
    Anchors(Vec<Certificate>),
    /// Bootstrap (RFC 7030 §4.1.1): fetch `/cacerts` without trust and keep
    /// the certificate with this SHA-256 fingerprint and those that chain to
    /// it. Without a pin the served certificates are reported
    /// ([`Progress::Offered`]) and refused ([`ClientError::NoPin`]).
    Bootstrap {
        /// The pinned fingerprint, as typed.
        pin: Option<String>,
    },
}

/// An EST server and how this client talks to it.
pub struct EstSettings {
    /// The server.
    pub server: EstServer,
    /// How it is trusted.
    pub trust: EstTrust,
    /// Lowest and highest TLS version offered.
    pub versions: (TlsVersion, TlsVersion),
    /// Certificate-less TLS (RFC 7030 §3.3.3): PSK identity and key.
    pub psk: Option<(String, PskKey)>,
    /// Our TLS client certificate and key, for the operations that authenticate with it.
    pub certificate: Option<ClientCertificate>,
    /// HTTP Basic credentials.
    pub basic: Option<(String, Zeroizing<String>)>,
    /// How long to wait on 202.
    pub wait: Wait,
}

impl std::fmt::Debug for EstSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EstSettings")
            .field("server", &self.server)
            .field("psk", &self.psk.as_ref().map(|(id, _)| id))
            .field("certificate", &self.certificate.is_some())
            .field("basic", &self.basic.as_ref().map(|(u, _)| u))
            .finish_non_exhaustive()
    }
}

impl EstSettings {
    fn tls(&self, trust: ServerTrust, authenticated: bool) -> ClientTlsConfig {
        ClientTlsConfig {
            trust,
            certificate: self.certificate.clone().filter(|_| authenticated),
            psk: self.psk.clone(),
            min_version: self.versions.0,
            max_version: self.versions.1,
            keying_export: None,
        }
    }

    /// The pinned certificate of a bootstrap `/cacerts` and what chains to it
    /// (the client trust core decides); the rest is reported as untrusted.
    fn pinned(&self, certs: &[Certificate], progress: OnProgress) -> Result<Vec<Certificate>> {
        let pin = match &self.trust {
            EstTrust::Bootstrap { pin: Some(pin) } => enrolkit_pkix::fingerprint::normalise(pin),
            _ => return Err(ClientError::NoPin),
        };
        let b = crate::trust::est_bootstrap(certs, &[pin], SystemTime::now())?;
        for (certificate, why) in &b.dropped {
            progress(Progress::Untrusted { certificate, why });
        }
        Ok(b.trusted)
    }
}

/// An EST server whose trust anchors are settled.
#[derive(Debug)]
pub struct EstSession<'s> {
    settings: &'s EstSettings,
    anchors: Vec<Certificate>,
}

impl<'s> EstSession<'s> {
    /// Settle the trust anchors: the given ones, or a bootstrap against the
    /// pin, whose unauthenticated connection is then checked: the server's
    /// certificate must chain to what was pinned (unless a PSK authenticated it).
    pub fn connect(settings: &'s EstSettings, progress: OnProgress) -> Result<Self> {
        let anchors = match &settings.trust {
            EstTrust::Anchors(a) => a.clone(),
            EstTrust::Bootstrap { .. } => {
                let client = EstClient::new(
                    settings.server.clone(),
                    &settings.tls(ServerTrust::Bootstrap, false),
                    None,
                )?;
                let (certs, tls) = client.cacerts()?;
                for certificate in &certs {
                    progress(Progress::Offered { certificate });
                }
                let certs = settings.pinned(&certs, progress)?;
                if settings.psk.is_none() {
                    crate::trust::tls_server(&tls.peer_chain, &certs, &settings.server.host, SystemTime::now())?;
                }
                certs
            }
        };
        Ok(EstSession { settings, anchors })
    }

    /// The trust anchors.
    pub fn anchors(&self) -> &[Certificate] {
        &self.anchors
    }

    /// A client trusting the anchors, with the HTTP Basic credentials (sent
    /// with enrolment requests only); `authenticated` adds our TLS client
    /// certificate, when the settings have one.
    pub fn client(&self, authenticated: bool) -> Result<EstClient> {
        let tls = self
            .settings
            .tls(ServerTrust::Anchors(ders(&self.anchors)?), authenticated);
        EstClient::new(self.settings.server.clone(), &tls, self.settings.basic.clone())
    }

    /// `/csrattrs`, asked with our credentials.
    pub fn csrattrs(&self) -> Result<CsrAttrs> {
        self.client(true)?.csrattrs()
    }
}

/// `/cacerts` (`enrol est cacerts`): fetched over a connection authenticated
/// by the trust anchors; after a bootstrap only what chains to the pin is
/// kept. Written as PEM to `out` when given.
pub fn cacerts(settings: &EstSettings, out: Option<&Path>, progress: OnProgress) -> Result<Vec<Certificate>> {
    let session = EstSession::connect(settings, progress)?;
    let client = session.client(false)?;
    let (certs, _) = client.cacerts()?;
    let certs = match settings.trust {
        EstTrust::Anchors(_) => certs,
        EstTrust::Bootstrap { .. } => settings.pinned(&certs, progress)?,
    };
    if let Some(p) = out {
        write_public(p, &super::encode(&certs, false)?)?;
    }
    Ok(certs)
}

/// `/csrattrs`, or no attributes when the answer is unusable (a malformed
/// body, a wrong media type, an HTTP error): some deployed servers answer
/// it badly, and an enrolment must not fail for that alone; it goes on
/// with the profile's key type and names, and [`Progress::CsrAttrsUnusable`]
/// says why. A server that cannot be reached is still an error.
pub(crate) fn csrattrs_or_none(client: &EstClient, progress: OnProgress) -> Result<CsrAttrs> {
    match client.csrattrs() {
        Ok(a) => Ok(a),
        Err(e @ (ClientError::Network { .. } | ClientError::Tls { .. })) => Err(e),
        Err(e) => {
            progress(Progress::CsrAttrsUnusable { error: &e });
            Ok(CsrAttrs::new())
        }
    }
}

/// The key type `/csrattrs` asks for, else `fallback`.
pub fn key_for(attrs: &CsrAttrs, fallback: KeySpec) -> Result<KeySpec> {
    use enrolkit_est::KeyRequirement;
    Ok(match attrs.key_requirement() {
        None => fallback,
        Some(KeyRequirement::Ec { curve }) if curve == enrolkit_keys::oid::SECP256R1 => KeySpec::EcP256,
        Some(KeyRequirement::Ec { curve }) => {
            return Err(ClientError::Unexpected(format!(
                "the server asks for EC curve {curve}, not supported"
            )))
        }
        Some(KeyRequirement::Rsa { bits: Some(b) }) if b <= 2048 => KeySpec::Rsa2048,
        Some(KeyRequirement::Rsa { bits: Some(b) }) if b <= 3072 => KeySpec::Rsa3072,
        Some(KeyRequirement::Rsa { bits: Some(_) }) => KeySpec::Rsa4096,
        Some(KeyRequirement::Rsa { bits: None }) => match fallback {
            KeySpec::EcP256 => KeySpec::Rsa2048,
            rsa => rsa,
        },
    })
}

/// One enrolment request, `/simpleenroll`, `/simplereenroll` or
/// `/serverkeygen`, signed by `signer`: each CSR is `base` made to satisfy
/// `attrs` with the channel binding of the connection it goes on, and 202s
/// are waited out. The agent's EST enrolment runs this too.
pub fn request(
    client: &EstClient,
    op: Operation,
    base: &RequestParams,
    attrs: &CsrAttrs,
    signer: &dyn Signer,
    wait: Wait,
    progress: OnProgress,
) -> Result<EnrollReply> {
    let mut make = |binding: Option<&ChannelBinding>| {
        let mut r = base.clone();
        enrolkit_est::satisfy(&mut r, attrs, binding)?;
        Ok(r.build(signer).map_err(enrolkit_est::EstError::from)?)
    };
    client.enroll_waiting(
        op,
        &mut make,
        wait.window,
        wait.max_interval,
        &mut |attempt, elapsed, wait| progress(Progress::Accepted { attempt, elapsed, wait }),
    )
}

/// The certificate of a `/simpleenroll` or `/simplereenroll` reply.
pub fn issued(reply: EnrollReply) -> Result<Certificate> {
    match reply {
        EnrollReply::Issued(certs) => certs
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Unexpected("the reply holds no certificate".into())),
        EnrollReply::KeyAndCertificate(_) => Err(ClientError::Unexpected("unexpected serverkeygen reply".into())),
        EnrollReply::Retry(_) => Err(ClientError::Unexpected("still waiting".into())),
    }
}

/// Check an issued certificate before anything is written: it certifies
/// `public_key` and chains to `anchors`.
pub fn validate_issued(
    cert: &Certificate,
    public_key: &spki::SubjectPublicKeyInfoOwned,
    anchors: &[Certificate],
) -> Result<()> {
    // The trust anchors serve as intermediates too: /cacerts holds the
    // issuing CA and the root above it.
    crate::trust::issued(cert, public_key, anchors, anchors, SystemTime::now(), false).map(|_| ())
}

/// What `enrol est enroll` asks for.
#[derive(Debug)]
pub struct EnrolRequest {
    /// Subject and subjectAltName; `/csrattrs` may add to them.
    pub csr: RequestParams,
    /// The key type when `/csrattrs` does not say.
    pub key_type: KeySpec,
    /// Where the new key goes: a file, written once the certificate is
    /// validated; or a token object, generated before the request and
    /// destroyed again if no certificate comes back.
    pub key_out: KeyLocation,
    /// Where the certificate and the trust anchors go.
    pub outputs: Outputs,
}

/// `/simpleenroll` with a new key (`enrol est enroll`).
pub fn enroll(settings: &EstSettings, req: &EnrolRequest, progress: OnProgress) -> Result<Certificate> {
    let session = EstSession::connect(settings, progress)?;
    let client = session.client(true)?;
    let attrs = csrattrs_or_none(&client, progress)?;
    let spec = key_for(&attrs, req.key_type)?;
    let enrol = |key: &dyn PrivateKey, progress: OnProgress| -> Result<Certificate> {
        let reply = request(
            &client,
            Operation::SimpleEnroll,
            &req.csr,
            &attrs,
            key.as_signer(),
            settings.wait,
            progress,
        )?;
        let cert = issued(reply)?;
        validate_issued(&cert, key.spki(), session.anchors())?;
        Ok(cert)
    };
    match &req.key_out {
        KeyLocation::File(path) => {
            // In memory until the certificate is validated: a failure
            // never replaces a key file that was there before.
            let key = SoftwareKey::generate(spec)?;
            let cert = enrol(&key, progress)?;
            write_key(path, &key)?;
            req.outputs.write(&cert, session.anchors())?;
            Ok(cert)
        }
        KeyLocation::Token(_) => {
            let (key, at) = req.key_out.generate(spec)?;
            progress(Progress::KeyInToken { at: &at });
            let outcome = enrol(key.as_ref(), progress).and_then(|cert| {
                req.outputs.write(&cert, session.anchors())?;
                Ok(cert)
            });
            if outcome.is_err() {
                // No certificate for it: the pair would only clutter the token.
                if let Err(e) = at.remove() {
                    progress(Progress::KeyNotDestroyed {
                        at: &at,
                        error: &e.into(),
                    });
                }
            }
            outcome
        }
    }
}

/// What `enrol est reenroll` needs: the current credential, which also
/// authenticates the TLS session ([`EstSettings::certificate`]).
#[derive(Debug)]
pub struct ReenrolRequest {
    /// The current certificate: the request repeats its names.
    pub current: Certificate,
    /// Its key, which signs the request unless a new key is made.
    pub current_key: KeyLocation,
    /// Rekey: a new key (of the type `/csrattrs` asks, else P-256) is written
    /// here once the certificate is validated.
    pub key_out: Option<PathBuf>,
    /// Where the certificate and the trust anchors go.
    pub outputs: Outputs,
}

/// `/simplereenroll` for the names of the current certificate, recertifying
/// its key or a new one (`enrol est reenroll`).
pub fn reenroll(settings: &EstSettings, req: &ReenrolRequest, progress: OnProgress) -> Result<Certificate> {
    let session = EstSession::connect(settings, progress)?;
    let current_key = load_key(&req.current_key)?;
    let client = session.client(true)?;
    let attrs = csrattrs_or_none(&client, progress)?;
    let new_key = match &req.key_out {
        Some(_) => Some(SoftwareKey::generate(key_for(&attrs, KeySpec::EcP256)?)?),
        None => None,
    };
    let signer: &dyn Signer = new_key
        .as_ref()
        .map(|k| k as &dyn Signer)
        .unwrap_or(current_key.as_signer());
    let base = same_names(&req.current)?;
    let reply = request(
        &client,
        Operation::SimpleReenroll,
        &base,
        &attrs,
        signer,
        settings.wait,
        progress,
    )?;
    let cert = issued(reply)?;
    validate_issued(&cert, signer.public_key(), session.anchors())?;
    if let (Some(p), Some(k)) = (&req.key_out, &new_key) {
        write_key(p, k)?;
    }
    req.outputs.write(&cert, session.anchors())?;
    Ok(cert)
}

/// RFC 7030 §4.2.2: a re-enrolment asks for the same Subject and
/// subjectAltName as the current certificate (DNS names, then IP
/// addresses: the order our CA and enrolkit-est both encode them in).
pub fn same_names(current: &Certificate) -> Result<RequestParams> {
    use x509_cert::ext::pkix::name::GeneralName;
    let san = enrolkit_pkix::extensions::find::<x509_cert::ext::pkix::SubjectAltName>(
        current,
        const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME,
    )
    .transpose()
    .map_err(|e| ClientError::Unexpected(format!("current certificate's subjectAltName: {e}")))?;
    let mut base = RequestParams::new(current.tbs_certificate.subject.clone());
    for name in san.iter().flat_map(|s| s.0.iter()) {
        match name {
            GeneralName::DnsName(d) => base.dns_names.push(d.to_string()),
            GeneralName::IpAddress(o) => match ip_from_octets(o.as_bytes()) {
                Some(ip) => base.ip_addresses.push(ip),
                None => {
                    return Err(ClientError::Unexpected(
                        "current certificate has a malformed IP address".into(),
                    ))
                }
            },
            _ => {
                return Err(ClientError::Unexpected(
                    "current certificate has subjectAltName types enrol cannot repeat".into(),
                ))
            }
        }
    }
    Ok(base)
}

/// What `enrol est serverkeygen` asks for.
#[derive(Debug)]
pub struct ServerKeyGenRequest {
    /// Subject and subjectAltName; `/csrattrs` may add to them.
    pub csr: RequestParams,
    /// Where the key the server made goes (0600).
    pub key_out: PathBuf,
    /// The key that signs the request, kept in this file (read when it
    /// exists, else made and written before the request leaves) so that a
    /// later run collects a request held for approval; `None`: a throw-away key.
    pub csr_key: Option<PathBuf>,
    /// Where the certificate and the trust anchors go.
    pub outputs: Outputs,
}

/// `/serverkeygen` (`enrol est serverkeygen`): the server makes the key;
/// the certificate must certify it and chain to the anchors before either is written.
pub fn serverkeygen(settings: &EstSettings, req: &ServerKeyGenRequest, progress: OnProgress) -> Result<Certificate> {
    let session = EstSession::connect(settings, progress)?;
    let client = session.client(true)?;
    let attrs = csrattrs_or_none(&client, progress)?;
    // The CSR is signed with a key of the type wanted, a throw-away
    // one unless csr_key keeps it; the server makes the real one.
    let tmp = match &req.csr_key {
        Some(p) if p.exists() => enrolkit_files::read_key(p).map_err(ClientError::Files)?,
        kept => {
            let k = SoftwareKey::generate(key_for(&attrs, KeySpec::EcP256)?)?;
            if let Some(p) = kept {
                write_key(p, &k)?;
            }
            k
        }
    };
    let reply = request(
        &client,
        Operation::ServerKeyGen,
        &req.csr,
        &attrs,
        &tmp,
        settings.wait,
        progress,
    )?;
    let EnrollReply::KeyAndCertificate(kc) = reply else {
        return Err(ClientError::Unexpected(
            "the server did not return a key and a certificate".into(),
        ));
    };
    let cert = kc
        .certificates
        .first()
        .ok_or_else(|| ClientError::Unexpected("the serverkeygen reply holds no certificate".into()))?
        .clone();
    let key = SoftwareKey::from_pkcs8_der(&kc.private_key_pkcs8)
        .map_err(|e| ClientError::Unexpected(format!("server key: {e}")))?;
    validate_issued(&cert, key.public_key(), session.anchors())?;
    write_key(&req.key_out, &key)?;
    req.outputs.write(&cert, session.anchors())?;
    Ok(cert)
}

/// A TLS client certificate's key named by a path or a `pkcs11:` URI:
/// PKCS#8 for OpenSSL from a file, else the token's signer (the handshake
/// then runs on rustls). Errors name the key without a PIN.
pub fn client_key(named: &str) -> Result<enrolkit_tls::ClientKey> {
    if named.starts_with("pkcs11:") {
        let at = KeyLocation::parse(named)?;
        return Ok(enrolkit_tls::ClientKey::signer(load_key(&at)?));
    }
    Ok(enrolkit_files::read_key(Path::new(named))
        .map_err(ClientError::Files)?
        .to_pkcs8_der()
        .into())
}
