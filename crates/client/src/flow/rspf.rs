//! The oneM2M Enrolee's flows (TS-0003 clause 8.3): what `enrol rspf`
//! runs, and the parts the agent's RSPF profiles share with it.
//!
//! An enrolment ([`enrol`]) is the Enrolment Exchange on a TLS session
//! that exports the Enrolment Key ([`Exchanged`]: Ke, the confirmed KeId,
//! the keys the instructions authorise, the state to keep), then what the
//! instructions grant: a certificate over EST on a session authenticated
//! by the same credential ([`certificate_enrolment`], which always tells
//! the MEF how it went), and MAF enrolment. [`derive_key`] and
//! [`fetch_key`] are the Enrolee's later derivations and the Enrolment
//! Target's Key Retrieval.

use super::est::Wait;
use super::onem2m::{self, OneM2mStep};
use super::{OnProgress, Progress};
use crate::est::{ders, require_ekus, EstClient, EstServer};
use crate::https::TlsHttp;
use crate::rspf::{self as protocol, Derived, Enrolment, EnrolmentState, GbaBootstrap};
use crate::scep::{ClientError, Result};
use enrolkit_exchange::{
    CertificateEnrolment, CommSecurityType, CredentialResponse, EnrolmentRequest, ExchangeRequest, Format,
    MafEnrolment, Procedure, WireProfile,
};
use enrolkit_keys::KeySpec;
use enrolkit_rspf::enrolment::KeyId;
use enrolkit_rspf::{Fqdn, Key256};
use enrolkit_rspf::{Suid, TargetFqdn};
use enrolkit_tls::{ClientCertificate, ClientTlsConfig, PskKey, ServerTrust, TlsInfo, TlsVersion};
use std::path::{Path, PathBuf};
use std::time::Duration;
use x509_cert::name::Name;
use x509_cert::Certificate;
use zeroize::Zeroizing;

/// The Enrolee's state file in its state directory (what `enrol rspf
/// derive --state <dir>` reads).
pub const STATE_FILE: &str = "enrolment.toml";

/// How long the CLI's certificate enrolment waits on 202, and at most between attempts.
pub const CERTIFICATE_WAIT: Wait = Wait {
    window: Duration::from_secs(600),
    max_interval: Duration::from_secs(60),
};

/// The steps of the Enrolee flow it reports.
#[derive(Debug, Clone, Copy)]
pub enum RspfStep<'a> {
    /// The Enrolment Request is sent; Ke comes from this TLS session.
    ExchangeSent,
    /// The instructions came back, with our KeId.
    Instructed {
        /// The KeId both ends derived.
        ke_id: &'a str,
        /// The session it ran on.
        tls: &'a TlsInfo,
        /// Whether the MEF's answer confirmed it (the change request's
        /// instructions carry the KeId; V3.18's responses do not).
        confirmed: bool,
    },
    /// V3.18: the MEF named the remote management server.
    RemoteManagement(&'a str),
    /// The state file was written.
    StateWritten {
        /// Where.
        path: &'a Path,
    },
    /// The instructions grant certificate enrolment.
    CertificateInstructed(&'a CertificateEnrolment),
    /// The certificate is installed and the MEF told.
    CertificateComplete,
    /// The instructions ask for Remote MAF enrolment.
    Maf(&'a MafEnrolment),
    /// MAF enrolment is complete and the MEF told.
    MafComplete,
}

impl std::fmt::Display for RspfStep<'_> {
    /// What the step did, in a line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RspfStep::ExchangeSent => f.write_str("Enrolment Exchange: Ke from the TLS session, request sent"),
            RspfStep::Instructed {
                ke_id,
                tls,
                confirmed: true,
            } => write!(
                f,
                "instructions received; KeId {ke_id} confirmed (same Enrolment Key at both ends), over {} {}",
                tls.backend, tls.version
            ),
            RspfStep::Instructed {
                ke_id,
                tls,
                confirmed: false,
            } => write!(
                f,
                "V3.18 responses received up to the end of the exchange; KeId {ke_id} (V3.18 carries none to confirm it), over {} {}",
                tls.backend, tls.version
            ),
            RspfStep::RemoteManagement(uri) => write!(f, "remote management server: {uri}"),
            RspfStep::StateWritten { path } => write!(f, "state written to {} (0600)", path.display()),
            RspfStep::CertificateInstructed(c) => write!(
                f,
                "certificate enrolment instructed (security types {:?}, EKUs {:?})",
                c.security_type.iter().map(|t| t.name()).collect::<Vec<_>>(),
                c.eku
            ),
            RspfStep::CertificateComplete => f.write_str("certificate enrolment complete; the MEF was told"),
            RspfStep::Maf(m) => write!(
                f,
                "Remote MAF enrolment with {} by {}",
                m.maf_fqdn,
                String::from(m.credential_type)
            ),
            RspfStep::MafComplete => f.write_str("MAF enrolment complete; the MEF was told"),
        }
    }
}

fn step(progress: OnProgress, s: RspfStep<'_>) {
    progress(Progress::Rspf(s));
}

/// What authenticates the Enrolee's TLS session with the MEF.
pub enum CredentialKind {
    /// TLS-PSK: identity and key.
    Psk(String, PskKey),
    /// A device certificate chain and its key (certificate-based framework).
    Certificate(ClientCertificate),
}

/// An Enrolee credential for the TLS session, and what it is, for messages.
pub struct EnroleeCredential {
    /// What it is, e.g. "the pre-provisioned key".
    pub what: &'static str,
    /// The credential.
    pub kind: CredentialKind,
    /// The framework's own credential (not Kre): an Enrolment-Token goes with it.
    pub bootstrap: bool,
}

impl std::fmt::Debug for EnroleeCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnroleeCredential")
            .field("what", &self.what)
            .field("bootstrap", &self.bootstrap)
            .finish_non_exhaustive()
    }
}

impl EnroleeCredential {
    /// The pre-provisioned symmetric key framework: KpmId and Kpm.
    pub fn pre_provisioned(identity: String, kpm: Zeroizing<Vec<u8>>) -> Self {
        EnroleeCredential {
            what: "the pre-provisioned key",
            kind: CredentialKind::Psk(identity, PskKey::Fixed(kpm)),
            bootstrap: true,
        }
    }

    /// The certificate-based framework: a device certificate and its key.
    pub fn device_certificate(certificate: ClientCertificate) -> Self {
        EnroleeCredential {
            what: "the device certificate",
            kind: CredentialKind::Certificate(certificate),
            bootstrap: true,
        }
    }

    /// The GBA-based framework: B-TID and Ks_NAF of the UE's bootstrap in
    /// `path` for the MEF `mef_fqdn` (refused when expired at `now`, Unix seconds).
    pub fn gba(path: &Path, mef_fqdn: &str, now: i64) -> Result<Self> {
        let ue = GbaBootstrap::read(path)?;
        let (identity, key) = ue
            .psk(mef_fqdn, now)
            .map_err(|e| ClientError::Unexpected(format!("{}: {e}", path.display())))?;
        Ok(EnroleeCredential {
            what: "the GBA bootstrap",
            kind: CredentialKind::Psk(identity, key),
            bootstrap: true,
        })
    }

    /// Re-authentication with the Kre of an earlier enrolment (clause 8.3.3.2).
    pub fn kre(state: &EnrolmentState, keys: &enrolkit_rspf::enrolment::EnrolmentKeys) -> Self {
        let (identity, key) = state.kre_psk(keys);
        EnroleeCredential {
            what: "Kre of the previous enrolment",
            kind: CredentialKind::Psk(identity, key),
            bootstrap: false,
        }
    }

    /// The session's configuration. `anchors`: the CA certificates that
    /// authenticate the MEF in a certificate session (a PSK session is
    /// authenticated by the PSK); `None` while fetching them (bootstrap).
    /// `export`: the Enrolment Key export of an Enrolment Exchange.
    pub fn tls(
        &self,
        anchors: Option<&[Certificate]>,
        versions: (TlsVersion, TlsVersion),
        export: bool,
    ) -> Result<ClientTlsConfig> {
        let (psk, certificate, trust) = match &self.kind {
            CredentialKind::Psk(id, key) => (Some((id.clone(), key.clone())), None, ServerTrust::Anchors(Vec::new())),
            CredentialKind::Certificate(c) => (
                None,
                Some(c.clone()),
                match anchors {
                    Some(a) => ServerTrust::Anchors(ders(a)?),
                    None => ServerTrust::Bootstrap,
                },
            ),
        };
        Ok(ClientTlsConfig {
            trust,
            certificate,
            psk,
            min_version: versions.0,
            max_version: versions.1,
            keying_export: export.then(protocol::keying_export),
        })
    }
}

/// An Enrolment Exchange done, and what follows from it locally.
#[derive(Debug)]
pub struct Exchanged {
    /// Keys, instructions and the session.
    pub enrolment: Enrolment,
    /// The confirmed KeId.
    pub ke_id: String,
    /// The keys the instructions authorise, derived.
    pub derived: Vec<Derived>,
    /// The state to keep (`enrolment.toml`, 0600: it holds Ke).
    pub state: Zeroizing<String>,
}

impl Exchanged {
    /// What follows locally from the Enrolment Exchange `enrolment`
    /// ([`protocol::enrol`]): the KeId, the keys the instructions authorise
    /// ([`protocol::derive`]) and the state to keep, made at `now` (Unix seconds).
    pub fn new(enrolment: Enrolment, now: u64) -> Result<Self> {
        let ke_id = enrolment.ke_id()?;
        let derived = protocol::derive(&enrolment)?;
        let state = EnrolmentState::new(&enrolment, &derived, now)?.to_toml()?;
        Ok(Exchanged {
            enrolment,
            ke_id,
            derived,
            state,
        })
    }
}

/// The certificate the instructions grant: where to enrol and the EKUs it must carry.
#[derive(Debug, Clone)]
pub struct CertificateGrant {
    /// The EST server: the instructions' URI, else the MEF's own.
    pub server: EstServer,
    /// The extended key usages granted.
    pub ekus: Vec<const_oid::ObjectIdentifier>,
}

impl CertificateGrant {
    /// The grant of `c`; `mef` is the EST server when the instructions name none.
    pub fn of(c: &CertificateEnrolment, mef: &EstServer) -> Result<Self> {
        let ekus = c
            .eku
            .iter()
            .map(|o| {
                const_oid::ObjectIdentifier::new(o)
                    .map_err(|_| ClientError::Unexpected(format!("the MEF granted a malformed EKU {o:?}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let server = match &c.est_uri {
            Some(u) => {
                EstServer::parse(u).map_err(|e| ClientError::Unexpected(format!("the instructions' EST URI: {e}")))?
            }
            None => mef.clone(),
        };
        Ok(CertificateGrant { server, ekus })
    }

    /// Refuse an issued certificate without every granted EKU.
    pub fn check(&self, cert: &Certificate) -> Result<()> {
        require_ekus(cert, &self.ekus)
    }
}

/// The outcome of a certificate enrolment, and of telling the MEF about it.
#[derive(Debug)]
pub struct Completed<T> {
    /// The enrolment's outcome.
    pub outcome: Result<T>,
    /// Whether the MEF accepted the completion message.
    pub told: Result<()>,
}

/// The certificate enrolment the instructions of `ex` grant (clause
/// 8.3.3.3), run by `enrol` with the grant, then the completion message
/// telling the MEF whether it succeeded (steps 6 and 8), sent whatever
/// happened, a malformed grant included. `None`: no certificate was granted.
pub fn certificate_enrolment<T>(
    http: &TlsHttp,
    ex: &Exchanged,
    format: Format,
    mef: &EstServer,
    enrol: impl FnOnce(&CertificateGrant) -> Result<T>,
) -> Option<Completed<T>> {
    let c = ex.enrolment.instructions.certificate_enrolment.as_ref()?;
    let outcome = CertificateGrant::of(c, mef).and_then(|grant| enrol(&grant));
    let told = protocol::complete(
        http,
        &ex.ke_id,
        Procedure::CertificateEnrolment,
        outcome.is_ok(),
        format,
    );
    Some(Completed { outcome, told })
}

/// What `enrol rspf enrol` asks for.
#[derive(Debug)]
pub struct EnroleeRequest {
    /// The MEF (and its EST server unless the instructions name another).
    pub mef: EstServer,
    /// The TLS credential.
    pub credential: EnroleeCredential,
    /// CA certificates that authenticate the MEF (required for a
    /// certificate session); without them a PSK session's `/cacerts` is
    /// authentic and supplies them.
    pub mef_ca: Option<Vec<Certificate>>,
    /// Lowest and highest TLS version offered.
    pub versions: (TlsVersion, TlsVersion),
    /// Message format.
    pub format: Format,
    /// The MEF's FQDN the KeId must name, when known.
    pub mef_fqdn: Option<String>,
    /// What the Enrolee supports, and its Enrolment-Token.
    pub request: EnrolmentRequest,
    /// Which Enrolment Exchange message set to speak (configured to match
    /// the MEF's configuration for this Enrolee: V3.18 cannot negotiate it).
    pub profile: WireProfile,
    /// V3.18: whether to indicate Remote Management support.
    pub remote_management: bool,
    /// V3.18: the Enrolment Expiry (seconds) the Enrolee was configured
    /// with, used when no MAF lifetime comes back.
    pub enrolment_expiry: Option<u64>,
    /// The certificate's subject (default `CN=` the Enrolee-ID).
    pub subject: Option<Name>,
    /// The state directory: `enrolment.toml` (0600), and `key.pem`,
    /// `cert.pem`, `ca.pem` when a certificate is enrolled.
    pub out_dir: PathBuf,
}

/// What an enrolment gave the Enrolee.
#[derive(Debug)]
pub struct Enrolled {
    /// The KeId.
    pub ke_id: String,
    /// The keys derived.
    pub derived: Vec<Derived>,
    /// V3.18: the remote management server the MEF named.
    pub remote_management: Option<String>,
}

/// The Enrolee's whole flow (`enrol rspf enrol`): the Enrolment Exchange,
/// the state written, then what the instructions grant (certificate
/// enrolment over EST, MAF enrolment), each completion told to the MEF.
/// `now`: Unix seconds.
pub fn enrol(req: &EnroleeRequest, now: u64, progress: OnProgress) -> Result<Enrolled> {
    let tls = req.credential.tls(req.mef_ca.as_deref(), req.versions, true)?;
    let http = TlsHttp::new(&req.mef.host, req.mef.port, &tls)?;
    step(progress, RspfStep::ExchangeSent);
    let v318 = req.profile == WireProfile::V318;
    let e = match req.profile {
        WireProfile::ChangeRequest => protocol::enrol(&http, &req.request, req.format, req.mef_fqdn.as_deref())?,
        WireProfile::V318 => {
            if req.request.enrolment_token.is_some() {
                return Err(ClientError::Unexpected(
                    "the V3.18 wire profile has no Enrolment-Token".into(),
                ));
            }
            let mef_fqdn = req.mef_fqdn.as_deref().ok_or_else(|| {
                ClientError::Unexpected(
                    "the V3.18 wire profile needs the MEF's FQDN (its messages carry no KeID to learn it from)".into(),
                )
            })?;
            let expiry = req.enrolment_expiry.ok_or_else(|| {
                ClientError::Unexpected("the V3.18 wire profile needs the configured Enrolment Expiry".into())
            })?;
            let request = ExchangeRequest {
                certificate_enrolment: req.request.supports_certificate_enrolment,
                maf_enrolment: req.request.supports_maf_procedures,
                remote_management: req.remote_management,
            };
            protocol::enrol_v318(&http, &request, req.format, mef_fqdn, expiry)?
        }
    };
    let ex = Exchanged::new(e, now)?;
    step(
        progress,
        RspfStep::Instructed {
            ke_id: &ex.ke_id,
            tls: &ex.enrolment.tls,
            confirmed: !v318,
        },
    );
    enrolkit_files::create_private_dir(&req.out_dir).map_err(ClientError::Files)?;
    let path = req.out_dir.join(STATE_FILE);
    enrolkit_files::write_private(&path, ex.state.as_bytes()).map_err(ClientError::Files)?;
    step(progress, RspfStep::StateWritten { path: &path });
    let instructions = &ex.enrolment.instructions;
    if let Some(c) = &instructions.certificate_enrolment {
        step(progress, RspfStep::CertificateInstructed(c));
        if v318 {
            // V3.18 defines no completion message.
            enrol_certificate(req, &ex.enrolment, &CertificateGrant::of(c, &req.mef)?, progress)?;
        } else {
            let done = certificate_enrolment(&http, &ex, req.format, &req.mef, |grant| {
                enrol_certificate(req, &ex.enrolment, grant, progress)
            });
            if let Some(Completed { outcome, told }) = done {
                told?;
                outcome?;
            }
        }
        step(progress, RspfStep::CertificateComplete);
    }
    if let Some(m) = &instructions.maf_enrolment {
        step(progress, RspfStep::Maf(m));
        if !v318 {
            protocol::complete(&http, &ex.ke_id, Procedure::MafEnrolment, true, req.format)?;
        }
        step(progress, RspfStep::MafComplete);
    }
    let remote_management = ex
        .enrolment
        .v318
        .as_ref()
        .and_then(|r| r.get(enrolkit_exchange::InstructionType::RemoteManagement))
        .and_then(|r| r.uri.clone());
    if let Some(u) = &remote_management {
        step(progress, RspfStep::RemoteManagement(u));
    }
    Ok(Enrolled {
        ke_id: ex.ke_id,
        derived: ex.derived,
        remote_management,
    })
}

/// Clause 8.3.3.3 over EST with the same TLS credential; the EST server
/// knows the Enrolee from it and allows exactly the granted EKUs.
fn enrol_certificate(
    req: &EnroleeRequest,
    e: &Enrolment,
    grant: &CertificateGrant,
    progress: OnProgress,
) -> Result<()> {
    let tls = req.credential.tls(req.mef_ca.as_deref(), req.versions, false)?;
    progress(Progress::OneM2m(OneM2mStep::TrustAnchors { pinned: false }));
    let anchors = match &req.mef_ca {
        Some(a) => a.clone(),
        // Certificate-less: the PSK authenticated the MEF, so its /cacerts answer is authentic.
        None => EstClient::new(grant.server.clone(), &tls, None)?.cacerts()?.0,
    };
    let client = EstClient::new(grant.server.clone(), &tls, None)?;
    let subject = match &req.subject {
        Some(s) => s.clone(),
        None => {
            let cn = e.instructions.enrolee_id.as_deref().unwrap_or("oneM2M Enrolee");
            std::str::FromStr::from_str(&format!("CN={cn}"))
                .map_err(|e| ClientError::Unexpected(format!("the Enrolee-ID as a subject: {e}")))?
        }
    };
    let base = enrolkit_pkix::pkcs10::RequestParams::new(subject);
    let (key, cert) = onem2m::enrol(&client, &anchors, &base, KeySpec::EcP256, CERTIFICATE_WAIT, progress)?;
    grant.check(&cert)?;
    onem2m::install(&req.out_dir, &key, &cert, &anchors, progress)
}

/// `enrol rspf derive`: the key for `target` and security type `t` from the
/// Ke kept in `state_dir` (under the change-request profile the MEF's
/// instructions must have authorised the pair; V3.18's name none), written
/// (hex, 0600) to `out`; returns its identifier.
pub fn derive_key(state_dir: &Path, target: &str, t: CommSecurityType, out: &Path) -> Result<String> {
    let (s, keys) = EnrolmentState::read(&state_dir.join(STATE_FILE))?;
    // V3.18's exchange names no targets: there, which target may fetch the
    // key is the MEF's decision alone.
    let v318 = s.wire_profile.as_deref() == Some("v3.18");
    if !v318 && !s.authorised.iter().any(|(a, u)| a == target && u == t.name()) {
        return Err(ClientError::Unexpected(format!(
            "the MEF did not authorise a {} key for {target}",
            t.name()
        )));
    }
    let unexpected = |e: &dyn std::fmt::Display| ClientError::Unexpected(e.to_string());
    let mef = Fqdn::new("MEF", &s.mef_fqdn).map_err(|e| unexpected(&e))?;
    let target = TargetFqdn::from_id(target).map_err(|e| unexpected(&e))?;
    let (key, id) = keys
        .target_key(t.credential_usage().suid(), &target, mef)
        .map_err(|e| unexpected(&e))?;
    write_secret_key(out, &key)?;
    Ok(id.to_string())
}

/// What a Key Retrieval obtained (the key itself is written, not returned).
#[derive(Debug)]
pub struct Fetched {
    /// The credential's identifier, when the MEF sends one (an enrolkit
    /// extension: tables 8.3.2.1-5 of TS-0003 V3.18.0 have none).
    pub credential_id: Option<String>,
    /// The Enrolee it belongs to, when the MEF says.
    pub enrolee_id: Option<String>,
    /// Seconds the key stays valid.
    pub lifetime: u64,
}

/// MEF Key Retrieval by the Enrolment Target `from` (`enrol rspf fetch`,
/// TS-0003 V3.18.0 8.3.2.1 step f) on a session with `tls`: the key for
/// `ke_id` and `suid`, written (hex, 0600) to `out`.
pub fn fetch_key(
    mef: &EstServer,
    tls: &ClientTlsConfig,
    ke_id: &KeyId<'_>,
    suid: Option<Suid>,
    from: &str,
    format: Format,
    out: &Path,
) -> Result<Fetched> {
    let http = TlsHttp::new(&mef.host, mef.port, tls)?;
    keep(protocol::fetch(&http, ke_id, suid, from, format)?, out)
}

/// Key Retrieval of Ks_NAF by B-TID from a MEF that is the BSF (TS-0003
/// V3.18.0 8.3.2.3) by the NAF `from`, for Ua protocol identifier `ua`;
/// the key is written (hex, 0600) to `out`.
pub fn fetch_gba_key(
    mef: &EstServer,
    tls: &ClientTlsConfig,
    btid: &str,
    ua: [u8; 5],
    from: &str,
    format: Format,
    out: &Path,
) -> Result<Fetched> {
    let http = TlsHttp::new(&mef.host, mef.port, tls)?;
    keep(protocol::fetch_gba(&http, btid, ua, from, format)?, out)
}

/// `enrol rspf gba-key`: with the MEF as the BSF, Ks_NAF for the target
/// NAF `target` from the UE's bootstrap in `ue` (`now`: Unix seconds),
/// written (hex, 0600) to `out`; returns the B-TID and the NAF's FQDN.
pub fn gba_naf_key(ue: &Path, target: &str, ua: [u8; 5], out: &Path, now: i64) -> Result<(String, String)> {
    let b = GbaBootstrap::read(ue)?;
    let (key, naf) = b.naf_key(target, ua, now)?;
    write_secret_key(out, &key)?;
    Ok((b.btid.clone(), naf))
}

/// A Key Retrieval answer: the key written, or the refusal as an error.
fn keep(answer: (u16, CredentialResponse), out: &Path) -> Result<Fetched> {
    match answer {
        (
            _,
            CredentialResponse::Success {
                credential,
                credential_id,
                enrolee_id,
                lifetime,
            },
        ) => {
            write_secret_key(out, &credential)?;
            Ok(Fetched {
                credential_id,
                enrolee_id,
                lifetime,
            })
        }
        (status, CredentialResponse::Error { reason }) => Err(ClientError::CredentialRefused { status, reason }),
    }
}

/// A symmetric key as hex text, mode 0600.
fn write_secret_key(path: &Path, key: &Key256) -> Result<()> {
    enrolkit_files::write_private(path, Zeroizing::new(hex::encode(key.expose())).as_bytes())
        .map_err(ClientError::Files)
}
