//! `enrol rspf …`: the oneM2M Enrolee (Enrolment Exchange, certificate
//! enrolment, MAF and direct keys) and the Enrolment Target's key
//! retrieval. The protocol is in `enrolkit-client::rspf`.

use super::Res;
use clap::{Args, Subcommand, ValueEnum};
use enrolkit_client::est::{EstClient, EstServer};
use enrolkit_client::https::TlsHttp;
use enrolkit_client::rspf as flow;
use enrolkit_exchange::{CommSecurityType, CredentialResponse, EnrolmentRequest, Format, Procedure};
use enrolkit_files as files;
use enrolkit_keys::KeySpec;
use enrolkit_rspf::enrolment::{CredentialUsage, EnrolmentKeys, KeyId, TargetId};
use enrolkit_rspf::{Fqdn, Key256};
use enrolkit_tls::{ClientTlsConfig, PskKey, ServerTrust, TlsVersion};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use x509_cert::name::Name;
use zeroize::Zeroizing;

/// How this end authenticates the TLS session with the MEF.
#[derive(Args)]
pub struct Credentials {
    /// MEF: `https://host:port`.
    #[arg(long, default_value = "https://127.0.0.1:8444")]
    mef: String,
    /// Trust anchor (PEM) for the MEF's certificate (certificate sessions).
    #[arg(long)]
    mef_ca: Option<PathBuf>,
    /// Pre-provisioned symmetric key framework: KpmId …
    #[arg(long)]
    psk_identity: Option<String>,
    /// … and the file holding Kpm (hex or raw).
    #[arg(long)]
    psk_file: Option<PathBuf>,
    /// Certificate-based framework (or a target's TLS credential): certificate chain (PEM) …
    #[arg(long)]
    cert: Option<PathBuf>,
    /// … and its key.
    #[arg(long)]
    key: Option<PathBuf>,
    /// GBA-based framework: the UE's bootstrap (`mef rspf gba-stub bootstrap --out`).
    #[arg(long)]
    gba: Option<PathBuf>,
    /// Re-authenticate with Kre: the state directory of an earlier `enrol rspf enrol`.
    #[arg(long)]
    kre_state: Option<PathBuf>,
    /// The MEF's FQDN (GBA: part of NAF_Id; otherwise checked against the KeId).
    #[arg(long)]
    mef_fqdn: Option<String>,
    /// Use only this TLS version.
    #[arg(long, value_enum)]
    tls: Option<TlsArg>,
    /// Message format.
    #[arg(long, value_enum, default_value = "json")]
    format: FormatArg,
}

/// TLS version.
#[derive(Clone, Copy, ValueEnum)]
pub enum TlsArg {
    /// TLS 1.2.
    #[value(name = "1.2")]
    V12,
    /// TLS 1.3.
    #[value(name = "1.3")]
    V13,
}

/// Serialisation.
#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// application/json.
    Json,
    /// application/xml.
    Xml,
}

/// `enrol rspf` commands.
#[derive(Subcommand)]
pub enum RspfCmd {
    /// Run the Enrolment Exchange, then what it instructs: certificate
    /// enrolment over EST, MAF and direct keys; keep the state in --out.
    Enrol {
        #[command(flatten)]
        creds: Credentials,
        /// Enrolment-Token from the MEF's operator (may begin with '-').
        #[arg(long, allow_hyphen_values = true)]
        token: Option<String>,
        /// Say the Enrolee does not support certificate enrolment.
        #[arg(long)]
        no_certificate: bool,
        /// Say the Enrolee does not support MAF procedures.
        #[arg(long)]
        no_maf: bool,
        /// Subject of the certificate request (default: CN=the Enrolee-ID).
        #[arg(long)]
        subject: Option<String>,
        /// State directory: enrolment.toml (0600), and key.pem/cert.pem/ca.pem when a certificate is enrolled.
        #[arg(long)]
        out: PathBuf,
    },
    /// Derive a key from the stored Ke for a target and security type (the
    /// instructions must have authorised the pair); prints its identifier.
    Derive {
        /// State directory of `enrol rspf enrol`.
        #[arg(long)]
        state: PathBuf,
        /// Enrolee B's CSE-ID or AE-ID.
        #[arg(long)]
        target: String,
        /// SAEF, ESPrim or ESData.
        #[arg(long)]
        security_type: String,
        /// Write the key (hex) here (0600).
        #[arg(long)]
        out: PathBuf,
    },
    /// Enrolment Target: fetch the key for a KeId from the MEF (MEF Key Retrieval).
    Fetch {
        #[command(flatten)]
        creds: Credentials,
        /// The KeId the Enrolee presented.
        #[arg(long)]
        ke_id: String,
        /// SUID of the usage (11 PSK-SAEF, 12 PSK-ESPrim, 13 PSK-ESData); none for a MAF.
        #[arg(long)]
        suid: Option<u8>,
        /// Our identity (`From`): CSE-ID, AE-ID or MAF FQDN.
        #[arg(long)]
        from: String,
        /// Write the key (hex) here (0600).
        #[arg(long)]
        out: PathBuf,
    },
}

fn read_state(dir: &Path) -> Res<(flow::EnrolmentState, EnrolmentKeys)> {
    flow::EnrolmentState::read(&dir.join("enrolment.toml")).map_err(|e| e.to_string())
}

impl Credentials {
    fn format(&self) -> Format {
        match self.format {
            FormatArg::Json => Format::Json,
            FormatArg::Xml => Format::Xml,
        }
    }

    fn host_port(&self) -> Res<(String, u16)> {
        let s = EstServer::parse(&self.mef).map_err(|e| e.to_string())?;
        Ok((s.host, s.port))
    }

    /// The TLS configuration for the framework the flags describe.
    fn tls(&self, export: bool) -> Res<ClientTlsConfig> {
        let (min_version, max_version) = match self.tls {
            Some(TlsArg::V12) => (TlsVersion::Tls12, TlsVersion::Tls12),
            Some(TlsArg::V13) => (TlsVersion::Tls13, TlsVersion::Tls13),
            None => (TlsVersion::Tls12, TlsVersion::Tls13),
        };
        let psk = self.psk()?;
        let certificate = match (&self.cert, &self.key) {
            (Some(c), Some(k)) => Some((
                enrolkit_client::est::ders(&files::read_certificates(c)?).map_err(|e| e.to_string())?,
                files::read_key(k)?.to_pkcs8_der().into(),
            )),
            (None, None) => None,
            _ => return Err("--cert and --key go together".into()),
        };
        if psk.is_some() == certificate.is_some() {
            return Err(
                "give one TLS credential: --psk-identity/--psk-file, --gba, --kre-state, or --cert/--key".into(),
            );
        }
        let trust = match &self.mef_ca {
            Some(p) => ServerTrust::Anchors(
                enrolkit_client::est::ders(&files::read_certificates(p)?).map_err(|e| e.to_string())?,
            ),
            None if psk.is_some() => ServerTrust::Anchors(Vec::new()),
            None => return Err("a certificate session needs --mef-ca to authenticate the MEF".into()),
        };
        Ok(ClientTlsConfig {
            trust,
            certificate,
            psk,
            min_version,
            max_version,
            keying_export: export.then(flow::keying_export),
        })
    }

    fn psk(&self) -> Res<Option<(String, PskKey)>> {
        let mut found = Vec::new();
        match (&self.psk_identity, &self.psk_file) {
            (Some(id), Some(f)) => found.push((id.clone(), PskKey::Fixed(files::read_secret(f)?))),
            (None, None) => {}
            _ => return Err("--psk-identity and --psk-file go together".into()),
        }
        if let Some(p) = &self.gba {
            found.push(self.gba_psk(p)?);
        }
        if let Some(dir) = &self.kre_state {
            let (s, keys) = read_state(dir)?;
            found.push(s.kre_psk(&keys));
        }
        if found.len() > 1 {
            return Err("--psk-identity, --gba and --kre-state exclude each other".into());
        }
        Ok(found.pop())
    }

    /// GBA (TS 33.222): identity B-TID, key Ks_NAF for NAF_Id = MEF FQDN ||
    /// the Ua protocol id of what is negotiated.
    fn gba_psk(&self, path: &Path) -> Res<(String, PskKey)> {
        let mef = self
            .mef_fqdn
            .clone()
            .ok_or("--gba needs --mef-fqdn (the NAF_Id starts with it)")?;
        let ue = flow::GbaBootstrap::read(path).map_err(|e| e.to_string())?;
        ue.psk(&mef, unix_now()).map_err(|e| format!("{}: {e}", path.display()))
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn write_key(path: &Path, key: &Key256) -> Res {
    files::write_private(path, Zeroizing::new(hex::encode(key.expose())).as_bytes())
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
            out,
        } => {
            // Checked before the exchange, which spends a one-time token.
            let subject = subject
                .as_deref()
                .map(|s| Name::from_str(s).map_err(|e| format!("--subject: {e}")))
                .transpose()?;
            enrol(&creds, token, !no_certificate, !no_maf, subject.as_ref(), &out)
        }
        RspfCmd::Derive {
            state,
            target,
            security_type,
            out,
        } => {
            let (s, keys) = read_state(&state)?;
            let t = CommSecurityType::parse(&security_type)
                .ok_or_else(|| format!("--security-type {security_type:?}: SAEF, ESPrim or ESData"))?;
            if !s.authorised.iter().any(|(a, u)| *a == target && u == t.name()) {
                return Err(format!("the MEF did not authorise a {} key for {target}", t.name()));
            }
            let mef = Fqdn::new("MEF", &s.mef_fqdn).map_err(|e| e.to_string())?;
            let (key, id) = keys
                .target_key(
                    t.credential_usage(),
                    TargetId::new(&target).map_err(|e| e.to_string())?,
                    mef,
                )
                .map_err(|e| e.to_string())?;
            write_key(&out, &key)?;
            println!("{id}");
            Ok(())
        }
        RspfCmd::Fetch {
            creds,
            ke_id,
            suid,
            from,
            out,
        } => {
            let id = KeyId::parse(&ke_id).map_err(|e| format!("--ke-id: {e}"))?;
            let usage = suid
                .map(|n| {
                    CredentialUsage::ALL
                        .into_iter()
                        .find(|u| u.suid() == n)
                        .ok_or_else(|| format!("--suid {n}: 11, 12 or 13"))
                })
                .transpose()?;
            let (host, port) = creds.host_port()?;
            let http = TlsHttp::new(&host, port, &creds.tls(false)?).map_err(|e| e.to_string())?;
            let (status, r) = flow::fetch(&http, &id, usage, &from, creds.format()).map_err(|e| e.to_string())?;
            match r {
                CredentialResponse::Success {
                    credential,
                    credential_id,
                    enrolee_id,
                    lifetime,
                } => {
                    write_key(&out, &credential)?;
                    println!("credential-id {credential_id}");
                    println!("enrolee-id {}", enrolee_id.as_deref().unwrap_or("-"));
                    println!("lifetime {lifetime}");
                    Ok(())
                }
                CredentialResponse::Error { reason } => {
                    Err(format!("the MEF refused (HTTP {status}, Status=false): {reason}"))
                }
            }
        }
    }
}

fn enrol(
    creds: &Credentials,
    token: Option<String>,
    certificate: bool,
    maf: bool,
    subject: Option<&Name>,
    out: &Path,
) -> Res {
    let step = |what: &str| eprintln!("[rspf] {what}");
    let (host, port) = creds.host_port()?;
    let tls = creds.tls(true)?;
    let http = TlsHttp::new(&host, port, &tls).map_err(|e| e.to_string())?;
    let format = creds.format();
    let request = EnrolmentRequest {
        supports_certificate_enrolment: certificate,
        supports_maf_procedures: maf,
        enrolment_token: token,
    };
    step("Enrolment Exchange: Ke from the TLS session, request sent");
    let e = flow::enrol(&http, &request, format, creds.mef_fqdn.as_deref()).map_err(|e| e.to_string())?;
    let ke_id = e.ke_id().map_err(|e| e.to_string())?;
    step(&format!(
        "instructions received; KeId {ke_id} confirmed (same Enrolment Key at both ends), over {} {}",
        e.tls.backend, e.tls.version
    ));
    files::create_private_dir(out)?;
    let derived = flow::derive(&e).map_err(|e| e.to_string())?;
    let state = flow::EnrolmentState::new(&e, &derived, unix_now().max(0).unsigned_abs()).map_err(|e| e.to_string())?;
    let text = state.to_toml().map_err(|e| e.to_string())?;
    files::write_private(&out.join("enrolment.toml"), text.as_bytes())?;
    step(&format!(
        "state written to {} (0600)",
        out.join("enrolment.toml").display()
    ));
    if let Some(c) = &e.instructions.certificate_enrolment {
        step(&format!(
            "certificate enrolment instructed (security types {:?}, EKUs {:?})",
            c.security_type.iter().map(|t| t.name()).collect::<Vec<_>>(),
            c.eku
        ));
        let outcome = enrol_certificate(creds, &e, subject, out);
        let ok = outcome.is_ok();
        flow::complete(&http, &ke_id, Procedure::CertificateEnrolment, ok, format).map_err(|e| e.to_string())?;
        outcome?;
        step("certificate enrolment complete; the MEF was told");
    }
    if let Some(m) = &e.instructions.maf_enrolment {
        step(&format!(
            "Remote MAF enrolment with {} by {}",
            m.maf_fqdn,
            String::from(m.credential_type)
        ));
        flow::complete(&http, &ke_id, Procedure::MafEnrolment, true, format).map_err(|e| e.to_string())?;
        step("MAF enrolment complete; the MEF was told");
    }
    println!("ke-id {ke_id}");
    for d in &derived {
        println!(
            "{} {} key-id {}",
            d.usage.map(|u| u.name()).unwrap_or("MAF"),
            d.target,
            d.key_id
        );
    }
    Ok(())
}

/// Clause 8.3.3.3 over EST with the same TLS credentials; the EST server
/// knows the Enrolee from them and allows exactly the granted EKUs.
fn enrol_certificate(creds: &Credentials, e: &flow::Enrolment, subject: Option<&Name>, out: &Path) -> Res {
    let tls = creds.tls(false)?;
    let mut server = EstServer::parse(&creds.mef).map_err(|e| e.to_string())?;
    if let Some(uri) = e
        .instructions
        .certificate_enrolment
        .as_ref()
        .and_then(|c| c.est_uri.as_deref())
    {
        server = EstServer::parse(uri).map_err(|e| e.to_string())?;
    }
    let mut step = |n: u32, what: &str| eprintln!("[est {n:>2}] {what}");
    step(1, "trust anchors: /cacerts");
    let anchors = match &creds.mef_ca {
        Some(p) => files::read_certificates(p)?,
        // Certificate-less: the PSK authenticated the MEF, so its /cacerts answer is authentic.
        None => {
            let c = EstClient::new(server.clone(), &tls, None).map_err(|e| e.to_string())?;
            c.cacerts().map_err(|e| e.to_string())?.0
        }
    };
    let client = EstClient::new(server, &tls, None).map_err(|e| e.to_string())?;
    let subject = match subject {
        Some(s) => s.clone(),
        None => {
            let cn = e.instructions.enrolee_id.as_deref().unwrap_or("oneM2M Enrolee");
            Name::from_str(&format!("CN={cn}")).map_err(|e| format!("the Enrolee-ID as a subject: {e}"))?
        }
    };
    let base = enrolkit_est::CsrRequest::new(subject);
    let (key, cert) = enrolkit_client::est::onem2m_enrol(
        &client,
        &anchors,
        &base,
        KeySpec::EcP256,
        enrolkit_client::est::Waiting {
            window: Duration::from_secs(600),
            max_interval: Duration::from_secs(60),
            progress: &mut |a, el, w| {
                eprintln!(
                    "202 accepted: attempt {a}, {}s elapsed, next in {}s",
                    el.as_secs(),
                    w.as_secs()
                )
            },
            step: &mut step,
        },
    )
    .map_err(|e| e.to_string())?;
    crate::est::install(out, &key, &cert, &anchors, &mut step)
}
