//! `enrol`: enrolkit's reference client. Thin: arguments, files and output;
//! the protocol flows are in `enrolkit-client`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use der::{Encode, EncodePem};
use enrolkit_client::{ClientError, PollPolicy, ScepClient, ScepSession, Trust};
use enrolkit_files as files;
use enrolkit_keys::KeySpec;
use enrolkit_pkcs11::KeyLocation;
use enrolkit_scep::{fingerprint_sha256, ContentEncryption, CsrParams};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;
use x509_cert::name::Name;
use x509_cert::Certificate;
use zeroize::Zeroizing;

#[derive(Parser)]
#[command(name = "enrol", version, about = "enrolkit client: obtain and renew certificates")]
struct Cli {
    #[command(subcommand)]
    proto: Proto,
}

#[derive(Subcommand)]
enum Proto {
    /// SCEP (RFC 8894).
    Scep {
        #[command(flatten)]
        server: Server,
        #[command(subcommand)]
        cmd: ScepCmd,
    },
    /// EST (RFC 7030, RFC 8951).
    Est {
        #[command(flatten)]
        opts: est::EstOpts,
        #[command(subcommand)]
        cmd: est::EstCmd,
    },
    /// oneM2M Remote Security Provisioning (TS-0003 clause 8.3): Enrolee and Enrolment Target.
    Rspf {
        #[command(subcommand)]
        cmd: rspf::RspfCmd,
    },
    /// The device agent: provisioning profiles, automatic enrolment, renewal and revocation checks.
    Agent(agent::AgentArgs),
}

mod agent;
mod est;
mod rspf;

#[derive(Args)]
struct Server {
    /// SCEP URL, e.g. http://127.0.0.1:8080/scep
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080/scep")]
    url: String,
    /// The SHA-256 fingerprint (hex, colons allowed) of the CA certificate
    /// to trust (root or intermediate; or the RA's own): only certificates
    /// that chain to it are used, the RA must be signed by it as an RA, and
    /// issued certificates must chain to it. Without it, whatever CA the
    /// server sends is trusted (first use), with a warning.
    #[arg(long, global = true)]
    ca_fingerprint: Option<String>,
    /// Allow legacy algorithms: go on when GetCACaps fails (DES3, SHA-1,
    /// GET only), fall back to DES3 or SHA-1 when the server offers nothing
    /// better, accept SHA-1 certificate signatures. Off by default: an
    /// attacker can make GetCACaps fail.
    #[arg(long, global = true)]
    legacy: bool,
    /// Per-request timeout in seconds.
    #[arg(long, global = true, default_value_t = 30)]
    timeout: u64,
    /// Offer only this content encryption (default: AES-128, else DES3, as GetCACaps allows).
    #[arg(long, global = true, value_enum)]
    cipher: Option<CipherArg>,
}

#[derive(Clone, Copy, ValueEnum)]
enum CipherArg {
    Aes128,
    Des3,
}

#[derive(Clone, Copy, ValueEnum)]
enum KeyType {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    P256,
}

#[derive(Args)]
struct Output {
    /// Where to write the certificate.
    #[arg(long)]
    cert_out: PathBuf,
    /// Where to write the CA chain (CA and intermediates from GetCACert).
    #[arg(long)]
    chain_out: Option<PathBuf>,
    /// Write DER instead of PEM.
    #[arg(long)]
    der: bool,
}

#[derive(Args)]
struct Polling {
    /// Seconds between polls while PENDING.
    #[arg(long, default_value_t = 10)]
    poll_interval: u64,
    /// Give up after this many seconds of PENDING.
    #[arg(long, default_value_t = 3600)]
    poll_window: u64,
}

#[derive(Subcommand)]
enum ScepCmd {
    /// Print the server's capabilities.
    Getcaps,
    /// Fetch the CA/RA certificates and print their SHA-256 fingerprints.
    Getca {
        /// Also write them (PEM) here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// First enrolment: generate a key, send a PKCSReq with the challenge, poll while PENDING.
    Enrol {
        /// Requested subject, e.g. "CN=device-1,O=example".
        #[arg(long)]
        subject: String,
        /// DNS name for the subjectAltName (repeatable).
        #[arg(long)]
        dns: Vec<String>,
        /// Challenge password (prefer --challenge-file or ENROL_CHALLENGE: argv is visible to other users).
        #[arg(long, env = "ENROL_CHALLENGE", hide_env_values = true, allow_hyphen_values = true)]
        challenge: Option<String>,
        /// Read the challenge password from this file.
        #[arg(long)]
        challenge_file: Option<PathBuf>,
        /// Key type to generate.
        #[arg(long, value_enum, default_value = "rsa2048")]
        key_type: KeyType,
        /// Where the new private key goes: a file (mode 0600), or a
        /// `pkcs11:` URI with `object=<label>` to generate it inside the token.
        #[arg(long, value_parser = key_location)]
        key_out: KeyLocation,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        poll: Polling,
    },
    /// Renew: RenewalReq signed with the current key and certificate.
    Renew {
        /// Current key: a file or a `pkcs11:` URI.
        #[arg(long, value_parser = key_location)]
        key: KeyLocation,
        /// Current certificate.
        #[arg(long)]
        cert: PathBuf,
        /// Generate a new key (written to --key-out) instead of re-certifying the current one.
        #[arg(long)]
        new_key: bool,
        /// Where the new key goes (with --new-key): a file, or a `pkcs11:` URI
        /// with a new `object=<label>`.
        #[arg(long, value_parser = key_location)]
        key_out: Option<KeyLocation>,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        poll: Polling,
    },
    /// Poll once for a request made earlier with this key.
    Poll {
        /// The key the request was made with: a file or a `pkcs11:` URI.
        #[arg(long, value_parser = key_location)]
        key: KeyLocation,
        /// The subject requested.
        #[arg(long)]
        subject: String,
        /// For a renewal without a new key: the certificate it renews (its
        /// transactionID depends on it).
        #[arg(long)]
        renewing: Option<PathBuf>,
        #[command(flatten)]
        out: Output,
    },
    /// Load test: CLIENTS concurrent enrolments, TOTAL in all; keys and requests are made before the clock starts and every reply is checked after it stops.
    Bench {
        /// Shared (static) challenge the server accepts.
        #[arg(long, env = "ENROL_CHALLENGE", hide_env_values = true, allow_hyphen_values = true)]
        challenge: String,
        /// Concurrent clients.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Enrolments in all.
        #[arg(long, default_value_t = 200)]
        total: usize,
        /// Subject prefix: subjects are `CN=<prefix>-<n>` (unique per run: some servers refuse duplicate DNs).
        #[arg(long, default_value = "bench")]
        prefix: String,
    },
    /// GetCert: fetch a certificate by serial number.
    Getcert {
        /// Our key: a file or a `pkcs11:` URI.
        #[arg(long, value_parser = key_location)]
        key: KeyLocation,
        /// Our certificate.
        #[arg(long)]
        cert: PathBuf,
        /// Serial number (hex).
        #[arg(long)]
        serial: String,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
    /// GetCRL: fetch the CRL of our certificate's issuer.
    Getcrl {
        /// Our key: a file or a `pkcs11:` URI.
        #[arg(long, value_parser = key_location)]
        key: KeyLocation,
        /// Our certificate.
        #[arg(long)]
        cert: PathBuf,
        /// Where to write it (PEM).
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let proto = match Cli::parse().proto {
        Proto::Agent(args) => return agent::run(args),
        other => other,
    };
    match run(proto) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("enrol: {e}");
            ExitCode::FAILURE
        }
    }
}

type Res<T = ()> = Result<T, String>;

fn err(e: ClientError) -> String {
    e.to_string()
}

fn run(proto: Proto) -> Res {
    let (server, cmd) = match proto {
        Proto::Agent(_) => return Err("internal: agent handled in main".into()),
        Proto::Scep { server, cmd } => (server, cmd),
        Proto::Est { opts, cmd } => return est::run(&opts, cmd),
        Proto::Rspf { cmd } => return rspf::run(cmd),
    };
    let client = ScepClient::new(&server.url, Duration::from_secs(server.timeout))
        .map_err(err)?
        .legacy(server.legacy);
    let trust = Trust::pinned_or_first_use(server.ca_fingerprint.as_deref());
    let pin = &trust;
    let ciphers: &[ContentEncryption] = match server.cipher {
        None => &enrolkit_client::scep::CIPHERS,
        Some(CipherArg::Aes128) => &[ContentEncryption::Aes128Cbc],
        Some(CipherArg::Des3) => &[ContentEncryption::DesEde3Cbc],
    };
    match cmd {
        ScepCmd::Getcaps => {
            for c in client.caps().map_err(err)?.iter() {
                println!("{}", c.keyword());
            }
        }
        ScepCmd::Getca { out } => {
            let trusted = client.ca_certs(pin).map_err(err)?;
            dropped(&trusted.dropped);
            let ca = trusted.certificates;
            let mut all = vec![("CA", &ca.ca)];
            all.extend(ca.ra.iter().map(|c| ("RA", c)));
            all.extend(ca.chain.iter().map(|c| ("chain", c)));
            let mut pem = String::new();
            for (role, c) in &all {
                println!(
                    "{role:<5} {}  {}",
                    fingerprint_sha256(c).map_err(|e| e.to_string())?,
                    c.tbs_certificate.subject
                );
                pem.push_str(&c.to_pem(der::pem::LineEnding::LF).map_err(|e| e.to_string())?);
            }
            if let Some(p) = out {
                files::write_public(&p, pem.as_bytes())?;
            }
        }
        ScepCmd::Enrol {
            subject,
            dns,
            challenge,
            challenge_file,
            key_type,
            key_out,
            out,
            poll,
        } => {
            let challenge = match (challenge, challenge_file) {
                (_, Some(f)) => Some(files::read_secret_text(&f)?),
                (Some(c), None) => Some(Zeroizing::new(c)),
                (None, None) => None,
            };
            let session = open(client, pin, ciphers)?;
            let spec = match key_type {
                KeyType::Rsa2048 => KeySpec::Rsa2048,
                KeyType::Rsa3072 => KeySpec::Rsa3072,
                KeyType::Rsa4096 => KeySpec::Rsa4096,
                KeyType::P256 => KeySpec::EcP256,
            };
            // The key is stored before the request leaves, so a PENDING request can be polled later.
            let (key, at) = key_out.generate(spec).map_err(|e| e.to_string())?;
            if let KeyLocation::Token(_) = at {
                println!("key generated in the token: {at}");
            }
            let params = CsrParams {
                subject: Name::from_str(&subject).map_err(|e| format!("--subject: {e}"))?,
                challenge_password: challenge.as_deref().map(|s| s.as_str()),
                dns_names: dns,
                digest: session.digest,
            };
            let cert = session
                .enrol(key.as_ref(), &params, policy(&poll), &mut progress())
                .map_err(err)?;
            finish(&session, &cert, &out)?;
        }
        ScepCmd::Renew {
            key,
            cert,
            new_key,
            key_out,
            out,
            poll,
        } => {
            let session = open(client, pin, ciphers)?;
            let current_key = key.load().map_err(|e| e.to_string())?;
            let current = files::read_certificate(&cert)?;
            let next_key = if new_key {
                let at = key_out.as_ref().ok_or("--new-key needs --key-out")?;
                let (k, at) = at.generate(KeySpec::Rsa2048).map_err(|e| e.to_string())?;
                if let KeyLocation::Token(_) = at {
                    println!("new key generated in the token: {at}");
                }
                k
            } else {
                key.load().map_err(|e| e.to_string())?
            };
            let issued = session
                .renew(
                    current_key.as_ref(),
                    &current,
                    next_key.as_ref(),
                    policy(&poll),
                    &mut progress(),
                )
                .map_err(err)?;
            finish(&session, &issued, &out)?;
        }
        ScepCmd::Poll {
            key,
            subject,
            renewing,
            out,
        } => {
            let session = open(client, pin, ciphers)?;
            let k = key.load().map_err(|e| e.to_string())?;
            let name = Name::from_str(&subject).map_err(|e| format!("--subject: {e}"))?;
            let renewing = renewing.as_deref().map(files::read_certificate).transpose()?;
            match session.poll_once(k.as_ref(), &name, renewing.as_ref()).map_err(err)? {
                Some(cert) => finish(&session, &cert, &out)?,
                None => return Err("still pending".into()),
            }
        }
        ScepCmd::Bench {
            challenge,
            clients,
            total,
            prefix,
        } => {
            let session = std::sync::Arc::new(open(client, pin, ciphers)?);
            let r = enrolkit_client::bench::run(&session, &challenge, clients, total, &prefix).map_err(err)?;
            println!("{}", r.summary(&server.url, clients));
            if r.ok == 0 {
                return Err("no enrolment succeeded".into());
            }
        }
        ScepCmd::Getcert { key, cert, serial, out } => {
            let session = open(client, pin, ciphers)?;
            let serial = hex::decode(serial.trim_start_matches("0x")).map_err(|_| "--serial must be hex")?;
            let c = session
                .get_cert(
                    key.load().map_err(|e| e.to_string())?.as_ref(),
                    &files::read_certificate(&cert)?,
                    &serial,
                )
                .map_err(err)?;
            files::write_public(
                &out,
                c.to_pem(der::pem::LineEnding::LF)
                    .map_err(|e| e.to_string())?
                    .as_bytes(),
            )?;
            println!("wrote {}", out.display());
        }
        ScepCmd::Getcrl { key, cert, out } => {
            let session = open(client, pin, ciphers)?;
            let crl = session
                .get_crl(
                    key.load().map_err(|e| e.to_string())?.as_ref(),
                    &files::read_certificate(&cert)?,
                )
                .map_err(err)?;
            let der_bytes = crl.to_der().map_err(|e| e.to_string())?;
            let pem =
                der::pem::encode_string("X509 CRL", der::pem::LineEnding::LF, &der_bytes).map_err(|e| e.to_string())?;
            files::write_public(&out, pem.as_bytes())?;
            let n = crl.tbs_cert_list.revoked_certificates.map(|r| r.len()).unwrap_or(0);
            println!("wrote {} ({n} revoked)", out.display());
        }
    }
    Ok(())
}

/// GetCACaps, GetCACert and the trust decision; what was left out is said on stderr.
fn open(client: ScepClient, trust: &Trust, ciphers: &[ContentEncryption]) -> Res<ScepSession> {
    let session = ScepSession::open_with(client, trust, ciphers).map_err(err)?;
    dropped(&session.dropped);
    if trust.is_first_use() {
        // Said on stdout with the other progress lines: stderr is the one error line.
        println!(
            "no --ca-fingerprint: trusting on first use, unauthenticated, CA {} SHA-256 {}",
            session.ca.ca.tbs_certificate.subject,
            fingerprint_sha256(&session.ca.ca).map_err(|e| e.to_string())?
        );
    }
    Ok(session)
}

/// Say which served certificates are not trusted, and why.
fn dropped(left_out: &[(Certificate, enrolkit_pkix::PathError)]) {
    for (c, why) in left_out {
        eprintln!("enrol: not trusted, left out: {} ({why})", c.tbs_certificate.subject);
    }
}

/// `--key`/`--key-out`: a path, or a `pkcs11:` URI.
fn key_location(s: &str) -> Res<KeyLocation> {
    KeyLocation::parse(s).map_err(|e| e.to_string())
}

fn policy(p: &Polling) -> PollPolicy {
    PollPolicy {
        interval: Duration::from_secs(p.poll_interval),
        window: Duration::from_secs(p.poll_window),
    }
}

fn progress() -> impl FnMut(u32, Duration) {
    let tty = std::io::stderr().is_terminal();
    move |attempt, elapsed| {
        if tty {
            eprint!("\rpending: poll {attempt}, {}s elapsed   ", elapsed.as_secs());
        }
    }
}

fn encode(c: &Certificate, der_out: bool) -> Res<Vec<u8>> {
    if der_out {
        c.to_der().map_err(|e| e.to_string())
    } else {
        c.to_pem(der::pem::LineEnding::LF)
            .map(String::into_bytes)
            .map_err(|e| e.to_string())
    }
}

fn finish(session: &ScepSession, cert: &Certificate, out: &Output) -> Res {
    files::write_public(&out.cert_out, &encode(cert, out.der)?)?;
    if let Some(p) = &out.chain_out {
        let mut bytes = encode(&session.ca.ca, out.der)?;
        for c in &session.ca.chain {
            bytes.extend(encode(c, out.der)?);
        }
        files::write_public(p, &bytes)?;
    }
    println!(
        "issued {} serial {} (SHA-256 {}), written to {} [{:?}, {:?}]",
        cert.tbs_certificate.subject,
        hex::encode(cert.tbs_certificate.serial_number.as_bytes()),
        fingerprint_sha256(cert).map_err(|e| e.to_string())?,
        out.cert_out.display(),
        session.cipher,
        session.digest
    );
    Ok(())
}
