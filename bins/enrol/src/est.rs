//! `enrol est …`: arguments, trust decisions and files; the protocol is in
//! `enrolkit-client::est` and `enrolkit-est`.

use super::{encode, Res};
use clap::{Args, Subcommand, ValueEnum};
use der::Encode;
use enrolkit_client::est::{fingerprint, normalise_fingerprint, EnrollReply, EstClient, EstServer};
use enrolkit_client::ClientError;
use enrolkit_est::{ChannelBinding, CsrAttrs, CsrRequest, Operation};
use enrolkit_files as files;
use enrolkit_keys::{DigestAlgorithm, KeySpec, PrivateKey, Signer, SoftwareKey};
use enrolkit_pkcs11::KeyLocation;
use enrolkit_tls::{ClientTlsConfig, ServerTrust, TlsVersion};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use x509_cert::name::Name;
use x509_cert::Certificate;
use zeroize::Zeroizing;

/// Connection and authentication options shared by every `enrol est` command.
#[derive(Args)]
pub struct EstOpts {
    /// EST server: `https://host[:port][/label]`.
    #[arg(long, global = true, default_value = "https://127.0.0.1:8443")]
    server: String,
    /// Trust anchors for the server (PEM): nothing else is trusted.
    #[arg(long, global = true)]
    ta: Option<PathBuf>,
    /// Bootstrap (RFC 7030 §4.1.1): fetch /cacerts without trust, and go on
    /// only if one of them has this SHA-256 fingerprint.
    #[arg(long, global = true)]
    ca_fingerprint: Option<String>,
    /// TLS client certificate (PEM chain) …
    #[arg(long, global = true)]
    cert: Option<PathBuf>,
    /// … and its key: a file, or a `pkcs11:` URI (the token then signs the
    /// TLS handshake, over rustls: ECDSA with TLS 1.2/1.3, RSA with TLS 1.2).
    #[arg(long, global = true)]
    key: Option<PathBuf>,
    /// HTTP Basic user name.
    #[arg(long, global = true)]
    basic_user: Option<String>,
    /// File holding the HTTP Basic password.
    #[arg(long, global = true)]
    basic_password_file: Option<PathBuf>,
    /// Certificate-less TLS (RFC 7030 §3.3.3): PSK identity (oneM2M KpmId).
    #[arg(long, global = true)]
    psk_identity: Option<String>,
    /// File holding the PSK (hex text or raw bytes).
    #[arg(long, global = true)]
    psk_file: Option<PathBuf>,
    /// Use only this TLS version.
    #[arg(long, global = true, value_enum)]
    tls: Option<TlsArg>,
    /// Give up waiting on 202 Accepted after this many seconds.
    #[arg(long, global = true, default_value_t = 3600)]
    wait_window: u64,
    /// Wait at most this long between retries, whatever Retry-After says.
    #[arg(long, global = true, default_value_t = 300)]
    max_retry_interval: u64,
}

/// TLS versions.
#[derive(Clone, Copy, ValueEnum)]
pub enum TlsArg {
    /// TLS 1.2 (tls-unique channel binding).
    #[value(name = "1.2")]
    V12,
    /// TLS 1.3 (tls-exporter channel binding).
    #[value(name = "1.3")]
    V13,
}

/// Key types.
#[derive(Clone, Copy, ValueEnum)]
pub enum KeyType {
    /// RSA 2048.
    Rsa2048,
    /// RSA 3072.
    Rsa3072,
    /// ECDSA P-256.
    P256,
}

/// What to request.
#[derive(Args)]
pub struct Request {
    /// Subject, e.g. "CN=device-1,O=example".
    #[arg(long)]
    subject: String,
    /// DNS names for the subjectAltName (repeatable).
    #[arg(long)]
    dns: Vec<String>,
    /// IP addresses for the subjectAltName (repeatable).
    #[arg(long)]
    ip: Vec<std::net::IpAddr>,
}

/// Where results go.
#[derive(Args)]
pub struct Outputs {
    /// Certificate.
    #[arg(long)]
    cert_out: PathBuf,
    /// CA certificates from /cacerts.
    #[arg(long)]
    chain_out: Option<PathBuf>,
    /// DER instead of PEM.
    #[arg(long)]
    der: bool,
}

/// `enrol est` commands.
#[derive(Subcommand)]
pub enum EstCmd {
    /// /cacerts: print the CA certificates' fingerprints (and write them).
    Cacerts {
        /// Write the CA certificates (PEM) here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// /csrattrs: print what the server wants in a CSR.
    Csrattrs,
    /// /simpleenroll: new key, CSR as /csrattrs asks, certificate.
    Enroll {
        #[command(flatten)]
        req: Request,
        /// Key type to generate (unless /csrattrs asks for another).
        #[arg(long, value_enum, default_value = "p256")]
        key_type: KeyType,
        /// Where the new private key goes: a file (0600, written once the
        /// certificate is validated), or a `pkcs11:` URI with
        /// `object=<label>` to generate it inside the token (destroyed again
        /// if no certificate comes back).
        #[arg(long, value_parser = super::key_location)]
        key_out: KeyLocation,
        #[command(flatten)]
        out: Outputs,
    },
    /// /simplereenroll, authenticated by the current certificate (--cert/--key).
    Reenroll {
        /// Generate a new key (rekey) written to --key-out; default: recertify the current key.
        #[arg(long)]
        key_out: Option<PathBuf>,
        #[command(flatten)]
        out: Outputs,
    },
    /// /serverkeygen: the server makes the key (waiting on 202 like enroll).
    Serverkeygen {
        #[command(flatten)]
        req: Request,
        /// Where to write the key the server made (0600).
        #[arg(long)]
        key_out: PathBuf,
        /// Sign the request with the key in this file (PEM; made, 0600, when
        /// missing) instead of a throw-away one: the server knows a request
        /// held for approval by this key, so a later run with the same file
        /// collects it.
        #[arg(long)]
        csr_key: Option<PathBuf>,
        #[command(flatten)]
        out: Outputs,
    },
    /// Load test of /simpleenroll: CLIENTS concurrent clients with these
    /// credentials (--cert/--key, --basic-*, or --psk-*), TOTAL enrolments,
    /// pre-generated P-256 keys, one TLS connection per enrolment.
    Bench {
        /// Concurrent clients.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Enrolments in all.
        #[arg(long, default_value_t = 200)]
        total: usize,
        /// Subjects are `CN=<prefix>-<n>`.
        #[arg(long, default_value = "est-bench")]
        prefix: String,
        /// Every enrolment for this one subject instead (e.g. the client
        /// certificate's own, which is all a certificate may obtain from mef).
        #[arg(long, conflicts_with = "prefix")]
        subject: Option<String>,
    },
    /// The oneM2M certificate enrolment flow (TS-0003 clause 8.3.3.3, seed 002):
    /// trust anchors, CSR attributes, key, CSR, enrol, validate, install.
    Onem2m {
        #[command(flatten)]
        req: Request,
        /// Key type when /csrattrs does not say.
        #[arg(long, value_enum, default_value = "p256")]
        key_type: KeyType,
        /// Directory to install key.pem (0600), cert.pem and ca.pem into.
        #[arg(long)]
        out_dir: PathBuf,
    },
}

fn err(e: ClientError) -> String {
    e.to_string()
}

fn ders(certs: &[Certificate]) -> Res<Vec<Vec<u8>>> {
    certs.iter().map(|c| c.to_der().map_err(|e| e.to_string())).collect()
}

/// A key named by `--key`: a file or a `pkcs11:` URI.
fn load_key(path: &Path) -> Res<Box<dyn PrivateKey>> {
    let at = match path.to_str() {
        Some(s) if s.starts_with("pkcs11:") => super::key_location(s)?,
        _ => KeyLocation::File(path.to_owned()),
    };
    at.load().map_err(|e| format!("{at}: {e}"))
}

/// The TLS client key: PKCS#8 for OpenSSL from a file, or the token's
/// signer (the handshake then runs on rustls).
fn client_key(path: &Path) -> Res<enrolkit_tls::ClientKey> {
    enrolkit_client::est::client_key(&path.to_string_lossy())
}

impl EstOpts {
    fn server(&self) -> Res<EstServer> {
        EstServer::parse(&self.server).map_err(err)
    }

    fn versions(&self) -> (TlsVersion, TlsVersion) {
        match self.tls {
            Some(TlsArg::V12) => (TlsVersion::Tls12, TlsVersion::Tls12),
            Some(TlsArg::V13) => (TlsVersion::Tls13, TlsVersion::Tls13),
            None => (TlsVersion::Tls12, TlsVersion::Tls13),
        }
    }

    fn tls(&self, trust: ServerTrust, client_cert: Option<(&Path, &Path)>) -> Res<ClientTlsConfig> {
        let (min_version, max_version) = self.versions();
        let certificate = match client_cert {
            Some((c, k)) => Some((ders(&files::read_certificates(c)?)?, client_key(k)?)),
            None => None,
        };
        let psk = match (&self.psk_identity, &self.psk_file) {
            (Some(id), Some(f)) => Some((id.clone(), enrolkit_tls::PskKey::Fixed(files::read_secret(f)?))),
            (None, None) => None,
            _ => return Err("--psk-identity and --psk-file go together".into()),
        };
        Ok(ClientTlsConfig {
            trust,
            certificate,
            psk,
            min_version,
            max_version,
            keying_export: None,
        })
    }

    fn basic(&self) -> Res<Option<(String, Zeroizing<String>)>> {
        match (&self.basic_user, &self.basic_password_file) {
            (Some(u), Some(f)) => Ok(Some((u.clone(), files::read_secret_text(f)?))),
            (None, None) => Ok(None),
            _ => Err("--basic-user and --basic-password-file go together".into()),
        }
    }

    fn own_cert(&self) -> Option<(&Path, &Path)> {
        match (&self.cert, &self.key) {
            (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
            _ => None,
        }
    }

    /// The CA certificates to trust: from --ta, or by bootstrap against --ca-fingerprint.
    /// Never silently: without either, the fingerprints are printed and the command fails.
    fn trust_anchors(&self) -> Res<Vec<Certificate>> {
        if let Some(ta) = &self.ta {
            return files::read_certificates(ta);
        }
        let server = self.server()?;
        let client = EstClient::new(server.clone(), &self.tls(ServerTrust::Bootstrap, None)?, None).map_err(err)?;
        let (certs, tls) = client.cacerts().map_err(err)?;
        for c in &certs {
            eprintln!(
                "/cacerts: {} SHA-256 {}",
                c.tbs_certificate.subject,
                fingerprint(&c.to_der().map_err(|e| e.to_string())?)
            );
        }
        let certs = self.pinned(&certs)?;
        // The bootstrap connection was not authenticated: check now that the
        // server's certificate chains to what we just pinned.
        if self.psk_identity.is_none() {
            enrolkit_tls::verify_chain(&tls.peer_chain, &ders(&certs)?, Some(&server.host))
                .map_err(|e| format!("the EST server's certificate does not chain to the pinned CA: {e}"))?;
        }
        Ok(certs)
    }

    /// Of `/cacerts` fetched for a bootstrap, the pinned certificate and
    /// those that chain to it (the client trust core decides); the rest is
    /// dropped, and said so on stderr.
    fn pinned(&self, certs: &[Certificate]) -> Res<Vec<Certificate>> {
        let Some(pin) = self.ca_fingerprint.as_deref().map(normalise_fingerprint) else {
            return Err("not trusting these CA certificates: give --ca-fingerprint or --ta".into());
        };
        let b = enrolkit_client::trust::est_bootstrap(certs, &[pin], std::time::SystemTime::now()).map_err(
            |e| match e {
                ClientError::FingerprintMismatch { expected, actual } => {
                    format!("no CA certificate from /cacerts has the fingerprint {expected} (got {actual})")
                }
                e => e.to_string(),
            },
        )?;
        for (c, why) in &b.dropped {
            eprintln!("/cacerts: {} not trusted, dropped: {why}", c.tbs_certificate.subject);
        }
        Ok(b.trusted)
    }

    /// Trust anchors, a client with our credentials, and the server's CSR attributes.
    fn session(&self) -> Res<(Vec<Certificate>, EstClient, CsrAttrs)> {
        let anchors = self.trust_anchors()?;
        let client = self.client(&anchors, self.own_cert())?;
        let attrs = client.csrattrs().map_err(err)?;
        Ok((anchors, client, attrs))
    }

    fn client(&self, anchors: &[Certificate], client_cert: Option<(&Path, &Path)>) -> Res<EstClient> {
        let tls = self.tls(ServerTrust::Anchors(ders(anchors)?), client_cert)?;
        EstClient::new(self.server()?, &tls, self.basic()?).map_err(err)
    }
}

fn spec(k: KeyType) -> KeySpec {
    match k {
        KeyType::Rsa2048 => KeySpec::Rsa2048,
        KeyType::Rsa3072 => KeySpec::Rsa3072,
        KeyType::P256 => KeySpec::EcP256,
    }
}

fn csr_request(req: &Request) -> Res<CsrRequest> {
    Ok(CsrRequest {
        subject: Name::from_str(&req.subject).map_err(|e| format!("--subject: {e}"))?,
        dns_names: req.dns.clone(),
        ip_addresses: req.ip.clone(),
        ekus: Vec::new(),
        challenge_password: None,
        digest: DigestAlgorithm::Sha256,
    })
}

/// A CSR builder for `EstClient::enroll`: satisfies `attrs` with the connection's binding.
fn csr_maker<'a>(
    signer: &'a dyn Signer,
    base: &'a CsrRequest,
    attrs: &'a CsrAttrs,
) -> impl FnMut(Option<&ChannelBinding>) -> enrolkit_client::scep::Result<Vec<u8>> + 'a {
    move |binding| {
        let mut r = base.clone();
        r.satisfy(attrs, binding)?;
        Ok(enrolkit_est::build_csr(signer, &r)?)
    }
}

fn progress() -> impl FnMut(u32, Duration, Duration) {
    let tty = std::io::stderr().is_terminal();
    move |attempt, elapsed, wait| {
        if tty {
            eprint!(
                "\r202 accepted: attempt {attempt}, {}s elapsed, next in {}s   ",
                elapsed.as_secs(),
                wait.as_secs()
            );
        } else {
            eprintln!(
                "202 accepted: attempt {attempt}, {}s elapsed, next in {}s",
                elapsed.as_secs(),
                wait.as_secs()
            );
        }
    }
}

fn wait_enroll(
    opts: &EstOpts,
    client: &EstClient,
    op: Operation,
    make: &mut dyn FnMut(Option<&ChannelBinding>) -> enrolkit_client::scep::Result<Vec<u8>>,
) -> Res<EnrollReply> {
    client
        .enroll_waiting(
            op,
            make,
            Duration::from_secs(opts.wait_window),
            Duration::from_secs(opts.max_retry_interval),
            &mut progress(),
        )
        .map_err(err)
}

fn validate(cert: &Certificate, public_key: &spki::SubjectPublicKeyInfoOwned, anchors: &[Certificate]) -> Res {
    enrolkit_client::est::validate_issued(cert, public_key, anchors).map_err(err)
}

fn key_for(attrs: &CsrAttrs, fallback: KeySpec) -> Res<KeySpec> {
    enrolkit_client::est::key_for(attrs, fallback).map_err(err)
}

fn write_outputs(cert: &Certificate, anchors: &[Certificate], out: &Outputs) -> Res {
    files::write_public(&out.cert_out, &encode(cert, out.der)?)?;
    if let Some(p) = &out.chain_out {
        let mut bytes = Vec::new();
        for c in anchors {
            bytes.extend(encode(c, out.der)?);
        }
        files::write_public(p, &bytes)?;
    }
    println!(
        "issued {} serial {} (SHA-256 {}), written to {}",
        cert.tbs_certificate.subject,
        hex::encode(cert.tbs_certificate.serial_number.as_bytes()),
        fingerprint(&cert.to_der().map_err(|e| e.to_string())?),
        out.cert_out.display()
    );
    Ok(())
}

fn issued(reply: EnrollReply) -> Res<Certificate> {
    match reply {
        EnrollReply::Issued(mut certs) if !certs.is_empty() => Ok(certs.remove(0)),
        EnrollReply::Issued(_) => Err("the reply holds no certificate".into()),
        EnrollReply::KeyAndCertificate(_) => Err("unexpected serverkeygen reply".into()),
        EnrollReply::Retry(_) => Err("still waiting".into()),
    }
}

/// Run one `enrol est` command.
pub fn run(opts: &EstOpts, cmd: EstCmd) -> Res {
    match cmd {
        EstCmd::Cacerts { out } => {
            let certs = opts.trust_anchors()?;
            let client = opts.client(&certs, None)?;
            // With --ta, fetch them over an authenticated connection; after a
            // bootstrap, keep only what chains to the pin.
            let (certs, _) = client.cacerts().map_err(err)?;
            let certs = match opts.ta {
                Some(_) => certs,
                None => opts.pinned(&certs)?,
            };
            for c in &certs {
                println!(
                    "{}  SHA-256 {}",
                    c.tbs_certificate.subject,
                    fingerprint(&c.to_der().map_err(|e| e.to_string())?)
                );
            }
            if let Some(p) = out {
                let mut bytes = Vec::new();
                for c in &certs {
                    bytes.extend(encode(c, false)?);
                }
                files::write_public(&p, &bytes)?;
            }
        }
        EstCmd::Csrattrs => {
            let anchors = opts.trust_anchors()?;
            let attrs = opts.client(&anchors, opts.own_cert())?.csrattrs().map_err(err)?;
            if attrs.items.is_empty() {
                println!("(none)");
            }
            println!("{}", enrolkit_client::est::describe_attrs(&attrs));
        }
        EstCmd::Enroll {
            req,
            key_type,
            key_out,
            out,
        } => {
            let (anchors, client, attrs) = opts.session()?;
            let spec = key_for(&attrs, spec(key_type))?;
            let base = csr_request(&req)?;
            let enroll = |key: &dyn PrivateKey| -> Res<Certificate> {
                let reply = wait_enroll(
                    opts,
                    &client,
                    Operation::SimpleEnroll,
                    &mut csr_maker(key.as_signer(), &base, &attrs),
                )?;
                let cert = issued(reply)?;
                validate(&cert, key.spki(), &anchors)?;
                Ok(cert)
            };
            match &key_out {
                KeyLocation::File(path) => {
                    // In memory until the certificate is validated: a failure
                    // never replaces a key file that was there before.
                    let key = SoftwareKey::generate(spec).map_err(|e| e.to_string())?;
                    let cert = enroll(&key)?;
                    files::write_private(path, key.to_pkcs8_pem().map_err(|e| e.to_string())?.as_bytes())?;
                    write_outputs(&cert, &anchors, &out)?;
                }
                KeyLocation::Token(_) => {
                    let (key, at) = key_out.generate(spec).map_err(|e| e.to_string())?;
                    println!("key generated in the token: {at}");
                    let outcome = enroll(key.as_ref()).and_then(|cert| write_outputs(&cert, &anchors, &out));
                    if outcome.is_err() {
                        // No certificate for it: the pair would only clutter the token.
                        if let Err(e) = at.remove() {
                            eprintln!("warning: the key pair {at} was not destroyed: {e}");
                        }
                    }
                    outcome?;
                }
            }
        }
        EstCmd::Reenroll { key_out, out } => {
            let (Some(cert_path), Some(key_path)) = (&opts.cert, &opts.key) else {
                return Err("reenroll needs the current certificate and key: --cert and --key".into());
            };
            let anchors = opts.trust_anchors()?;
            let current = files::read_certificate(cert_path)?;
            let current_key = load_key(key_path)?;
            let client = opts.client(&anchors, Some((cert_path, key_path)))?;
            let attrs = client.csrattrs().map_err(err)?;
            let new_key = match &key_out {
                Some(_) => Some(SoftwareKey::generate(key_for(&attrs, KeySpec::EcP256)?).map_err(|e| e.to_string())?),
                None => None,
            };
            let signer: &dyn Signer = new_key
                .as_ref()
                .map(|k| k as &dyn Signer)
                .unwrap_or(current_key.as_signer());
            // RFC 7030 §4.2.2: the same Subject and subjectAltName as the current
            // certificate (DNS names, then IP addresses: the order our CA and
            // enrolkit-est both encode them in).
            let san = current
                .tbs_certificate
                .extensions
                .iter()
                .flatten()
                .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME)
                .map(|e| <x509_cert::ext::pkix::SubjectAltName as der::Decode>::from_der(e.extn_value.as_bytes()))
                .transpose()
                .map_err(|e| format!("current certificate's subjectAltName: {e}"))?;
            let mut base = CsrRequest {
                subject: current.tbs_certificate.subject.clone(),
                dns_names: Vec::new(),
                ip_addresses: Vec::new(),
                ekus: Vec::new(),
                challenge_password: None,
                digest: DigestAlgorithm::Sha256,
            };
            for name in san.iter().flat_map(|s| s.0.iter()) {
                use x509_cert::ext::pkix::name::GeneralName;
                match name {
                    GeneralName::DnsName(d) => base.dns_names.push(d.to_string()),
                    GeneralName::IpAddress(o) => match enrolkit_pki::ip_from_octets(o.as_bytes()) {
                        Some(ip) => base.ip_addresses.push(ip),
                        None => return Err("current certificate has a malformed IP address".into()),
                    },
                    _ => return Err("current certificate has subjectAltName types enrol cannot repeat".into()),
                }
            }
            let reply = wait_enroll(
                opts,
                &client,
                Operation::SimpleReenroll,
                &mut csr_maker(signer, &base, &attrs),
            )?;
            let cert = issued(reply)?;
            validate(&cert, signer.public_key(), &anchors)?;
            if let (Some(p), Some(k)) = (&key_out, &new_key) {
                files::write_private(p, k.to_pkcs8_pem().map_err(|e| e.to_string())?.as_bytes())?;
            }
            write_outputs(&cert, &anchors, &out)?;
        }
        EstCmd::Serverkeygen {
            req,
            key_out,
            csr_key,
            out,
        } => {
            let (anchors, client, attrs) = opts.session()?;
            // The CSR is signed with a key of the type wanted, a throw-away
            // one unless --csr-key keeps it; the server makes the real one.
            let tmp = match &csr_key {
                Some(p) if p.exists() => files::read_key(p)?,
                kept => {
                    let k = SoftwareKey::generate(key_for(&attrs, KeySpec::EcP256)?).map_err(|e| e.to_string())?;
                    if let Some(p) = kept {
                        files::write_private(p, k.to_pkcs8_pem().map_err(|e| e.to_string())?.as_bytes())?;
                    }
                    k
                }
            };
            let base = csr_request(&req)?;
            let reply = wait_enroll(
                opts,
                &client,
                Operation::ServerKeyGen,
                &mut csr_maker(&tmp, &base, &attrs),
            )?;
            let EnrollReply::KeyAndCertificate(kc) = reply else {
                return Err("the server did not return a key and a certificate".into());
            };
            let cert = kc
                .certificates
                .first()
                .ok_or("the serverkeygen reply holds no certificate")?
                .clone();
            let key = SoftwareKey::from_pkcs8_der(&kc.private_key_pkcs8).map_err(|e| format!("server key: {e}"))?;
            validate(&cert, key.public_key(), &anchors)?;
            files::write_private(&key_out, key.to_pkcs8_pem().map_err(|e| e.to_string())?.as_bytes())?;
            write_outputs(&cert, &anchors, &out)?;
        }
        EstCmd::Onem2m { req, key_type, out_dir } => onem2m(opts, &req, key_type, &out_dir)?,
        EstCmd::Bench {
            clients,
            total,
            prefix,
            subject,
        } => {
            let subject = subject
                .map(|s| Name::from_str(&s).map_err(|e| format!("--subject {s:?}: {e}")))
                .transpose()?;
            let (anchors, _, attrs) = opts.session()?;
            let make = || opts.client(&anchors, opts.own_cert()).map_err(ClientError::Unexpected);
            let r = enrolkit_client::bench::run_est(make, &attrs, clients, total, &prefix, subject.as_ref())
                .map_err(err)?;
            println!("{}", r.summary(&opts.server, clients));
            if r.ok == 0 {
                return Err("no enrolment succeeded".into());
            }
        }
    }
    Ok(())
}

/// The seed 002 call flow, one step per line on stderr.
fn onem2m(opts: &EstOpts, req: &Request, key_type: KeyType, out_dir: &Path) -> Res {
    let mut step = |n: u32, what: &str| eprintln!("[{n:>2}] {what}");
    step(1, "trust anchors: /cacerts, pinned");
    let anchors = opts.trust_anchors()?;
    let client = opts.client(&anchors, opts.own_cert())?;
    let (key, cert) = enrolkit_client::est::onem2m_enrol(
        &client,
        &anchors,
        &csr_request(req)?,
        spec(key_type),
        enrolkit_client::est::Waiting {
            window: Duration::from_secs(opts.wait_window),
            max_interval: Duration::from_secs(opts.max_retry_interval),
            progress: &mut progress(),
            step: &mut step,
        },
    )
    .map_err(err)?;
    install(out_dir, &key, &cert, &anchors, &mut step)?;
    step(13, "done");
    println!(
        "issued {} serial {} into {}",
        cert.tbs_certificate.subject,
        hex::encode(cert.tbs_certificate.serial_number.as_bytes()),
        out_dir.display()
    );
    Ok(())
}

/// Install key.pem (0600), cert.pem and ca.pem into `out_dir`.
pub fn install(
    out_dir: &Path,
    key: &SoftwareKey,
    cert: &Certificate,
    anchors: &[Certificate],
    step: &mut dyn FnMut(u32, &str),
) -> Res {
    files::create_private_dir(out_dir)?;
    files::write_private(
        &out_dir.join("key.pem"),
        key.to_pkcs8_pem().map_err(|e| e.to_string())?.as_bytes(),
    )?;
    step(10, "key installed (0600)");
    files::write_public(&out_dir.join("cert.pem"), &encode(cert, false)?)?;
    step(11, "certificate installed");
    let mut bytes = Vec::new();
    for c in anchors {
        bytes.extend(encode(c, false)?);
    }
    files::write_public(&out_dir.join("ca.pem"), &bytes)?;
    step(12, "trust anchors installed");
    Ok(())
}
