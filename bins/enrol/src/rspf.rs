//! `enrol rspf …`: the oneM2M Enrolee (Enrolment Exchange, certificate
//! enrolment, MAF and direct keys) and the Enrolment Target's key
//! retrieval: arguments into the flows' requests, and output. The flows
//! are `enrolkit_client::flow::rspf`.

use super::{err, Res};
use enrolkit_client::est::{ders, EstServer};
use enrolkit_client::flow::rspf::{self as flow, EnroleeCredential, EnroleeRequest};
use enrolkit_client::flow::Progress;
use enrolkit_client::rspf::EnrolmentState;
use enrolkit_exchange::{CommSecurityType, EnrolmentRequest, Format, WireProfile};
use enrolkit_files as files;
use enrolkit_rspf::enrolment::KeyId;
use enrolkit_rspf::Suid;
use enrolkit_tls::TlsVersion;
use std::path::Path;
use std::str::FromStr;
use x509_cert::name::Name;
use x509_cert::Certificate;

mod args;

pub use args::RspfCmd;
use args::{Credentials, FormatArg, TlsArg};

impl Credentials {
    fn format(&self) -> Format {
        match self.format {
            FormatArg::Json => Format::Json,
            FormatArg::Xml => Format::Xml,
        }
    }

    fn mef(&self) -> Res<EstServer> {
        EstServer::parse(&self.mef).map_err(err)
    }

    fn versions(&self) -> (TlsVersion, TlsVersion) {
        match self.tls {
            Some(TlsArg::V12) => (TlsVersion::Tls12, TlsVersion::Tls12),
            Some(TlsArg::V13) => (TlsVersion::Tls13, TlsVersion::Tls13),
            None => (TlsVersion::Tls12, TlsVersion::Tls13),
        }
    }

    /// The one TLS credential the flags describe, and the MEF's CA
    /// certificates (required for a certificate session).
    fn credential(&self) -> Res<(EnroleeCredential, Option<Vec<Certificate>>)> {
        let psk = self.psk()?;
        let certificate = match (&self.cert, &self.key) {
            (Some(c), Some(k)) => Some(EnroleeCredential::device_certificate((
                ders(&files::read_certificates(c)?).map_err(err)?,
                files::read_key(k)?.to_pkcs8_der().into(),
            ))),
            (None, None) => None,
            _ => return Err("--cert and --key go together".into()),
        };
        let credential = match (psk, certificate) {
            (Some(c), None) | (None, Some(c)) => c,
            _ => {
                return Err(
                    "give one TLS credential: --psk-identity/--psk-file, --gba, --kre-state, or --cert/--key".into(),
                )
            }
        };
        let mef_ca = self.mef_ca.as_deref().map(files::read_certificates).transpose()?;
        if mef_ca.is_none() && matches!(credential.kind, flow::CredentialKind::Certificate(_)) {
            return Err("a certificate session needs --mef-ca to authenticate the MEF".into());
        }
        Ok((credential, mef_ca))
    }

    /// A PSK credential: KpmId/Kpm, a GBA bootstrap, or Kre.
    fn psk(&self) -> Res<Option<EnroleeCredential>> {
        let mut found = Vec::new();
        match (&self.psk_identity, &self.psk_file) {
            (Some(id), Some(f)) => found.push(EnroleeCredential::pre_provisioned(id.clone(), files::read_secret(f)?)),
            (None, None) => {}
            _ => return Err("--psk-identity and --psk-file go together".into()),
        }
        if let Some(p) = &self.gba {
            // GBA (TS 33.222): NAF_Id = MEF FQDN || the Ua protocol id of what is negotiated.
            let mef = self
                .mef_fqdn
                .as_deref()
                .ok_or("--gba needs --mef-fqdn (the NAF_Id starts with it)")?;
            found.push(EnroleeCredential::gba(p, mef, unix_now()).map_err(err)?);
        }
        if let Some(dir) = &self.kre_state {
            let (s, keys) = EnrolmentState::read(&dir.join(flow::STATE_FILE)).map_err(err)?;
            found.push(EnroleeCredential::kre(&s, &keys));
        }
        if found.len() > 1 {
            return Err("--psk-identity, --gba and --kre-state exclude each other".into());
        }
        Ok(found.pop())
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// What the Enrolee reports: its steps, the EST steps of its certificate
/// enrolment, and 202 waits, one line each on stderr.
fn say(p: Progress<'_>) {
    match p {
        Progress::Rspf(step) => eprintln!("[rspf] {step}"),
        Progress::OneM2m(step) => eprintln!("[est {:>2}] {step}", step.number()),
        Progress::Accepted { attempt, elapsed, wait } => eprintln!(
            "202 accepted: attempt {attempt}, {}s elapsed, next in {}s",
            elapsed.as_secs(),
            wait.as_secs()
        ),
        _ => {}
    }
}

/// Run one `enrol rspf` command.
pub fn run(cmd: RspfCmd) -> Res {
    match cmd {
        RspfCmd::Enrol {
            creds,
            token,
            no_certificate,
            no_maf,
            subject,
            wire_profile,
            remote_management,
            enrolment_expiry,
            out,
        } => {
            let profile = WireProfile::parse(&wire_profile)
                .ok_or_else(|| format!("--wire-profile {wire_profile:?}: change-request or v3.18"))?;
            if profile == WireProfile::ChangeRequest && (remote_management || enrolment_expiry.is_some()) {
                return Err("--remote-management and --enrolment-expiry belong to --wire-profile v3.18".into());
            }
            if profile == WireProfile::V318 && token.is_some() {
                return Err("--token: the v3.18 wire profile has no Enrolment-Token".into());
            }
            let (credential, mef_ca) = creds.credential()?;
            let req = EnroleeRequest {
                mef: creds.mef()?,
                credential,
                mef_ca,
                versions: creds.versions(),
                format: creds.format(),
                mef_fqdn: creds.mef_fqdn.clone(),
                request: EnrolmentRequest {
                    supports_certificate_enrolment: !no_certificate,
                    supports_maf_procedures: !no_maf,
                    enrolment_token: token,
                },
                profile,
                remote_management,
                enrolment_expiry,
                // Checked before the exchange: a one-time token is spent by it.
                subject: subject
                    .as_deref()
                    .map(|s| Name::from_str(s).map_err(|e| format!("--subject: {e}")))
                    .transpose()?,
                out_dir: out,
            };
            let done = flow::enrol(&req, unix_now().max(0).unsigned_abs(), &mut say).map_err(err)?;
            println!("ke-id {}", done.ke_id);
            if let Some(u) = &done.remote_management {
                println!("remote-management {u}");
            }
            for d in &done.derived {
                println!(
                    "{} {} key-id {}",
                    d.usage.map(|u| u.name()).unwrap_or("MAF"),
                    d.target,
                    d.key_id
                );
            }
        }
        RspfCmd::Derive {
            state,
            target,
            security_type,
            out,
        } => {
            let t = CommSecurityType::parse(&security_type)
                .ok_or_else(|| format!("--security-type {security_type:?}: SAEF, ESPrim or ESData"))?;
            println!("{}", flow::derive_key(&state, &target, t, &out).map_err(err)?);
        }
        RspfCmd::Fetch {
            creds,
            ke_id,
            ua,
            suid,
            from,
            out,
        } => fetch(&creds, &ke_id, ua.as_deref(), suid, &from, &out)?,
        RspfCmd::GbaKey { gba, target, ua, out } => {
            let ua = ua_arg(ua.as_deref())?;
            let (btid, naf) = flow::gba_naf_key(&gba, &target, ua, &out, unix_now()).map_err(err)?;
            println!("ke-id {btid}");
            println!("naf-id {naf} {}", hex::encode(ua));
        }
    }
    Ok(())
}

/// `enrol rspf fetch`: MEF Key Retrieval as the Enrolment Target `from`.
/// `--ua`: ten hex digits, TLS 1.3's shared-key identifier by default.
fn ua_arg(ua: Option<&str>) -> Res<[u8; 5]> {
    let Some(h) = ua else {
        return Ok(enrolkit_rspf::gba::UaProtocolId::TLS13_SHARED_KEY.0);
    };
    let v = hex::decode(h).map_err(|_| format!("--ua {h:?}: ten hexadecimal digits"))?;
    v.try_into().map_err(|_| format!("--ua {h:?}: ten hexadecimal digits"))
}

fn fetch(creds: &Credentials, ke_id: &str, ua: Option<&str>, suid: Option<String>, from: &str, out: &Path) -> Res {
    if enrolkit_rspf::gba::parse_btid(ke_id).is_ok() {
        // A B-TID: the MEF is the BSF and this target the NAF.
        if suid.is_some() {
            return Err("--suid: a B-TID names a GBA bootstrap, whose NAF key has no SUID".into());
        }
        let ua = ua_arg(ua)?;
        let (credential, mef_ca) = creds.credential()?;
        let tls = credential
            .tls(mef_ca.as_deref(), creds.versions(), false)
            .map_err(err)?;
        let f = flow::fetch_gba_key(&creds.mef()?, &tls, ke_id, ua, from, creds.format(), out).map_err(err)?;
        println!("enrolee-id {}", f.enrolee_id.as_deref().unwrap_or("-"));
        println!("lifetime {}", f.lifetime);
        return Ok(());
    }
    if ua.is_some() {
        return Err("--ua goes with a B-TID as --ke-id".into());
    }
    let id = KeyId::parse(ke_id).map_err(|e| format!("--ke-id: {e}"))?;
    let suid = suid
        .map(|n| {
            Suid::parse(&n)
                .ok()
                .filter(|s| Suid::MEF_ESTABLISHED.contains(s))
                .ok_or_else(|| {
                    format!("--suid {n}: 21, 22 or 23 (MEF-established keys, TS-0003 8.3.9.9.2; 22 is a SAEF key, 23 an ESPrim/ESData key)")
                })
        })
        .transpose()?;
    let mef = creds.mef()?;
    let (credential, mef_ca) = creds.credential()?;
    let tls = credential
        .tls(mef_ca.as_deref(), creds.versions(), false)
        .map_err(err)?;
    let f = flow::fetch_key(&mef, &tls, &id, suid, from, creds.format(), out).map_err(err)?;
    println!("credential-id {}", f.credential_id.as_deref().unwrap_or("-"));
    println!("enrolee-id {}", f.enrolee_id.as_deref().unwrap_or("-"));
    println!("lifetime {}", f.lifetime);
    Ok(())
}
