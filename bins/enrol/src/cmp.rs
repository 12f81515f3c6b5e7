//! `enrol cmp …`: arguments and output; the flows are
//! `enrolkit_client::flow::cmp` on a `CmpSession`.

use super::{err, issued, key_location, tty, Res};
use clap::{Args, Subcommand, ValueEnum};
use enrolkit_client::cmp::CmpTrust;
use enrolkit_client::flow::cmp::{self as flow, Ask, Credential, MacKind, NewKey, Server};
use enrolkit_client::flow::{Outputs, Progress};
use enrolkit_client::PollPolicy;
use enrolkit_cmp::general::GenResponse;
use enrolkit_cmp::revocation::CrlReason;
use enrolkit_cmp::{BodyType, SharedSecret};
use enrolkit_files as files;
use enrolkit_keys::KeySpec;
use enrolkit_pkcs11::KeyLocation;
use enrolkit_pkix::fingerprint::sha256 as fingerprint;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use x509_cert::name::Name;

/// Where the CMP server is, what it is trusted as, and how we protect.
#[derive(Args)]
pub struct CmpOpts {
    /// The server's CMP URL (RFC 6712), e.g. http://127.0.0.1:8080/.well-known/cmp or http://host:port/pkix/
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080/.well-known/cmp")]
    pub url: String,
    /// Trust anchor(s), PEM (repeatable): issued certificates must chain to
    /// one, and so must a server certificate that signs answers (with
    /// id-kp-cmcRA) unless it is pinned with --server-cert.
    #[arg(long, global = true)]
    pub trusted: Vec<PathBuf>,
    /// The server's own protection certificate(s), PEM, pinned as themselves.
    #[arg(long, global = true)]
    pub server_cert: Vec<PathBuf>,
    /// MAC protection: the reference (senderKID) the secret was given with
    /// (`mef challenge add --label L --cmp`).
    #[arg(long = "ref", global = true)]
    pub reference: Option<String>,
    /// MAC protection: the secret, read from this file (or ENROL_CMP_SECRET).
    #[arg(long, global = true)]
    pub secret_file: Option<PathBuf>,
    /// Which MAC: pbmac1 (RFC 9481, default) or pbm (the legacy PasswordBasedMac, all OpenSSL 3.0 speaks).
    #[arg(long, global = true, value_enum, default_value = "pbmac1")]
    pub mac: MacArg,
    /// Signature protection: the certificate (a vendor certificate for a
    /// 3GPP ir; the current certificate for kur and rr).
    #[arg(long, global = true)]
    pub cert: Option<PathBuf>,
    /// Signature protection: its key, a file or a `pkcs11:` URI.
    #[arg(long, global = true, value_parser = key_location)]
    pub key: Option<KeyLocation>,
    /// Further certificates for extraCerts (the chain of --cert), PEM.
    #[arg(long, global = true)]
    pub extra_certs: Option<PathBuf>,
    /// The recipient (the CA's name), e.g. "CN=Operator CA"; NULL-DN by default.
    #[arg(long, global = true)]
    pub recipient: Option<String>,
    /// Per-request timeout in seconds.
    #[arg(long, global = true, default_value_t = 30)]
    pub timeout: u64,
    /// Accept SHA-1 signatures on certificates and answers.
    #[arg(long, global = true)]
    pub legacy: bool,
    /// Write every message sent and received (DER) to this directory.
    #[arg(long, global = true)]
    pub dump: Option<PathBuf>,
}

/// `--mac`.
#[derive(Clone, Copy, ValueEnum)]
pub enum MacArg {
    /// PBMAC1 (RFC 9481 §6.1.2).
    Pbmac1,
    /// PasswordBasedMac (RFC 4210 §5.1.3.1).
    Pbm,
}

/// `--key-type`.
#[derive(Clone, Copy, ValueEnum)]
pub enum KeyType {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    P256,
}

/// `--reason`.
#[derive(Clone, Copy, ValueEnum)]
pub enum Reason {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
}

/// What a certificate request asks for.
#[derive(Args)]
pub struct Request {
    /// Requested subject, e.g. "CN=bts-1,O=Operator" (kur: the current certificate's by default).
    #[arg(long)]
    pub subject: Option<String>,
    /// DNS name for the subjectAltName (repeatable).
    #[arg(long)]
    pub dns: Vec<String>,
    /// Generate the new key here: a file (mode 0600, written before the
    /// request leaves) or a `pkcs11:` URI with `object=<label>`.
    #[arg(long, value_parser = key_location, conflicts_with = "new_key")]
    pub key_out: Option<KeyLocation>,
    /// Certify this existing key instead (a file or a `pkcs11:` URI).
    #[arg(long, value_parser = key_location)]
    pub new_key: Option<KeyLocation>,
    /// Key type to generate.
    #[arg(long, value_enum, default_value = "p256")]
    pub key_type: KeyType,
    /// Ask for implicit confirmation (no certConf when the server grants it).
    #[arg(long)]
    pub implicit_confirm: bool,
    /// Where to write the certificate.
    #[arg(long)]
    pub cert_out: PathBuf,
    /// Where to write the validated chain above it (intermediates and the anchor).
    #[arg(long)]
    pub chain_out: Option<PathBuf>,
    /// Write DER instead of PEM.
    #[arg(long)]
    pub der: bool,
    /// Seconds between pollReqs while waiting, when the server gives no checkAfter.
    #[arg(long, default_value_t = 10)]
    pub poll_interval: u64,
    /// Give up after this many seconds of waiting.
    #[arg(long, default_value_t = 3600)]
    pub max_wait: u64,
}

/// `enrol cmp` commands.
#[derive(Subcommand)]
pub enum CmpCmd {
    /// Initialization request: a first certificate (MAC, or a vendor certificate's signature).
    Ir(Request),
    /// Certification request (signed by a certificate of the same CA).
    Cr(Request),
    /// Key update request: a new certificate, signed with the current one (--cert/--key).
    Kur(Request),
    /// A PKCS#10 request for the new key (p10cr).
    P10cr(Request),
    /// Revocation request for --cert, signed with it.
    Rr {
        /// The revocation reason.
        #[arg(long, value_enum)]
        reason: Option<Reason>,
    },
    /// Load generator: N clients doing ir + certConf, signed with --cert/--key
    /// (a vendor certificate, key in a file); prints one key=value line.
    Bench {
        /// Concurrent clients.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Enrolments in all.
        #[arg(long, default_value_t = 200)]
        total: usize,
        /// Requested subject.
        #[arg(long, default_value = "CN=bench")]
        subject: String,
        /// More vendor devices (`CERT.pem,KEY.pem`, repeatable), used in
        /// turn with `--cert`/`--key`: a server bounds the transactions one
        /// credential holds open, as one base station never runs many.
        #[arg(long = "device", value_name = "CERT,KEY")]
        devices: Vec<String>,
    },
    /// General message: CA certificates, root CA update, certificate request template.
    Genm {
        /// Write the CA certificates (PEM) here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn credential(o: &CmpOpts) -> Res<Credential> {
    match (&o.reference, &o.cert, &o.key) {
        (Some(reference), None, None) => {
            let secret = match (&o.secret_file, std::env::var("ENROL_CMP_SECRET")) {
                (Some(f), _) => files::read_secret_text(f)?,
                (None, Ok(s)) => zeroize::Zeroizing::new(s),
                (None, Err(_)) => return Err("--ref needs --secret-file or ENROL_CMP_SECRET".into()),
            };
            Ok(Credential::Mac {
                reference: reference.clone(),
                secret: SharedSecret::new(secret.as_bytes()),
                mac: match o.mac {
                    MacArg::Pbmac1 => MacKind::Pbmac1,
                    MacArg::Pbm => MacKind::PasswordBasedMac,
                },
            })
        }
        (None, Some(cert), Some(key)) => Ok(Credential::Signature {
            key: enrolkit_client::flow::load_key(key).map_err(err)?,
            certificate: Box::new(files::read_certificate(cert)?),
            chain: match &o.extra_certs {
                Some(f) => files::read_certificates(f)?,
                None => vec![],
            },
        }),
        (Some(_), _, _) => Err("give either --ref/--secret-file (MAC) or --cert/--key (signature), not both".into()),
        _ => Err("protect the request: --ref with --secret-file (MAC), or --cert with --key (signature)".into()),
    }
}

fn server(o: &CmpOpts, poll: PollPolicy) -> Res<Server> {
    let read_all = |v: &[PathBuf]| -> Res<Vec<x509_cert::Certificate>> {
        let mut out = vec![];
        for p in v {
            out.extend(files::read_certificates(p)?);
        }
        Ok(out)
    };
    Ok(Server {
        url: o.url.clone(),
        timeout: Duration::from_secs(o.timeout),
        trust: CmpTrust {
            anchors: read_all(&o.trusted)?,
            server_certs: read_all(&o.server_cert)?,
            legacy: o.legacy,
        },
        poll,
        recipient: o
            .recipient
            .as_deref()
            .map(|r| Name::from_str(r).map_err(|e| format!("--recipient: {e}")))
            .transpose()?,
        dump: o.dump.clone(),
    })
}

/// Run one `enrol cmp` command.
pub fn run(o: &CmpOpts, cmd: CmpCmd) -> Res {
    let no_poll = PollPolicy {
        interval: Duration::from_secs(1),
        window: Duration::ZERO,
    };
    if o.trusted.is_empty() && o.server_cert.is_empty() && !matches!(cmd, CmpCmd::Genm { .. } if o.reference.is_some())
    {
        return Err("pin the server: --trusted anchor.pem (or --server-cert server.pem)".into());
    }
    if let CmpCmd::Bench {
        clients,
        total,
        subject,
        devices,
    } = &cmd
    {
        return bench(o, *clients, *total, subject, devices);
    }
    let credential = credential(o)?;
    match cmd {
        CmpCmd::Bench { .. } => Ok(()),
        CmpCmd::Ir(r) => request(o, &credential, BodyType::Ir, r),
        CmpCmd::Cr(r) => request(o, &credential, BodyType::Cr, r),
        CmpCmd::Kur(r) => request(o, &credential, BodyType::Kur, r),
        CmpCmd::P10cr(r) => request(o, &credential, BodyType::P10cr, r),
        CmpCmd::Rr { reason } => {
            let Credential::Signature { certificate, .. } = &credential else {
                return Err("rr is signed with the certificate to revoke: give --cert and --key".into());
            };
            let reason = reason.map(|r| match r {
                Reason::Unspecified => CrlReason::Unspecified,
                Reason::KeyCompromise => CrlReason::KeyCompromise,
                Reason::CaCompromise => CrlReason::CaCompromise,
                Reason::AffiliationChanged => CrlReason::AffiliationChanged,
                Reason::Superseded => CrlReason::Superseded,
                Reason::CessationOfOperation => CrlReason::CessationOfOperation,
            });
            flow::revoke(&server(o, no_poll)?, &credential, certificate, reason).map_err(err)?;
            println!("revoked {}", issued(certificate));
            Ok(())
        }
        CmpCmd::Genm { out } => {
            let answers = flow::general(&server(o, no_poll)?, &credential, out.as_deref()).map_err(err)?;
            for a in &answers {
                match a {
                    GenResponse::CaCerts(c) => {
                        for c in c {
                            println!("caCerts {}  {}", fingerprint(c), c.tbs_certificate.subject);
                        }
                    }
                    GenResponse::RootCaKeyUpdate(Some(u)) => println!(
                        "rootCaKeyUpdate newWithNew {}  {}",
                        fingerprint(&u.new_with_new),
                        u.new_with_new.tbs_certificate.subject
                    ),
                    GenResponse::RootCaKeyUpdate(None) => println!("rootCaKeyUpdate none"),
                    GenResponse::CertReqTemplate(t) => {
                        println!("certReqTemplate {}", if t.is_some() { "present" } else { "none" })
                    }
                    GenResponse::Other(i) => println!("other {}", i.oid),
                }
            }
            Ok(())
        }
    }
}

fn request(o: &CmpOpts, credential: &Credential, kind: BodyType, r: Request) -> Res {
    if o.trusted.is_empty() {
        return Err("the issued certificate must chain to a pinned anchor: give --trusted anchor.pem".into());
    }
    let poll = PollPolicy {
        interval: Duration::from_secs(r.poll_interval.max(1)),
        window: Duration::from_secs(r.max_wait),
    };
    let new_key = match (r.key_out, r.new_key) {
        (Some(at), None) => NewKey::Generate(
            at,
            match r.key_type {
                KeyType::Rsa2048 => KeySpec::Rsa2048,
                KeyType::Rsa3072 => KeySpec::Rsa3072,
                KeyType::Rsa4096 => KeySpec::Rsa4096,
                KeyType::P256 => KeySpec::EcP256,
            },
        ),
        (None, Some(at)) => NewKey::Existing(at),
        _ => return Err("give --key-out (generate the new key) or --new-key (certify an existing one)".into()),
    };
    let old_certificate = match (kind, credential) {
        (BodyType::Kur, Credential::Signature { certificate, .. }) => Some((**certificate).clone()),
        (BodyType::Kur, Credential::Mac { .. }) => {
            return Err("kur is signed with the current certificate: give --cert and --key".into())
        }
        _ => None,
    };
    let subject = match r.subject.as_deref() {
        Some(s) => Some(Name::from_str(s).map_err(|e| format!("--subject: {e}"))?),
        None if kind == BodyType::Kur => None,
        None => return Err("--subject is required".into()),
    };
    let ask = Ask {
        kind,
        subject,
        dns_names: r.dns,
        old_certificate,
        implicit_confirm: r.implicit_confirm,
    };
    let out = Outputs {
        certificate: r.cert_out.clone(),
        chain: r.chain_out,
        der: r.der,
    };
    let tty = tty();
    let got = flow::enrol(&server(o, poll)?, credential, &ask, &new_key, &out, &mut |p| match p {
        Progress::KeyInToken { at } => println!("key generated in the token: {at}"),
        Progress::Pending { attempt, elapsed } if tty => {
            eprint!("\rwaiting: pollReq {attempt}, {}s elapsed   ", elapsed.as_secs())
        }
        _ => {}
    })
    .map_err(err)?;
    println!(
        "issued {}, written to {} [{}{}]",
        issued(&got.certificate),
        r.cert_out.display(),
        if got.implicit_confirm {
            "implicitConfirm granted"
        } else {
            "certConf sent, pkiConf received"
        },
        if got.polls > 0 {
            format!(", {} pollReq", got.polls)
        } else {
            String::new()
        }
    );
    Ok(())
}

fn bench(o: &CmpOpts, clients: usize, total: usize, subject: &str, more: &[String]) -> Res {
    let (Some(cert), Some(KeyLocation::File(key))) = (&o.cert, &o.key) else {
        return Err("bench signs with --cert and a --key file".into());
    };
    let mut devices = vec![(files::read_key(key)?, files::read_certificate(cert)?)];
    for d in more {
        let (c, k) = d
            .split_once(',')
            .ok_or_else(|| format!("--device {d:?}: give CERT.pem,KEY.pem"))?;
        devices.push((files::read_key(Path::new(k))?, files::read_certificate(Path::new(c))?));
    }
    let anchors = server(
        o,
        PollPolicy {
            interval: Duration::from_secs(1),
            window: Duration::ZERO,
        },
    )?
    .trust
    .anchors;
    let subject = Name::from_str(subject).map_err(|e| format!("--subject: {e}"))?;
    let b = enrolkit_client::bench::CmpBench {
        url: &o.url,
        devices: &devices,
        anchors: &anchors,
        subject: &subject,
    };
    let r = enrolkit_client::bench::run_cmp(&b, clients, total).map_err(err)?;
    println!("{}", r.summary(&o.url, clients));
    if r.ok == 0 {
        return Err("no enrolment succeeded".into());
    }
    Ok(())
}
