//! `mef`: enrolkit's reference server. Thin: configuration, start-up and
//! operator commands; the protocol work is in `enrolkit-server`.

mod authorisation;

use clap::{Parser, Subcommand, ValueEnum};
use der::EncodePem;
use enrolkit_files as files;
use enrolkit_keys::{KeySpec, PrivateKey, Signer, SoftwareKey};
use enrolkit_pkcs11::KeyLocation;
use enrolkit_pki::{Authority, Profile, SanPolicy};
use enrolkit_server::ra::{challenge_hash, unix};
use enrolkit_server::{PgStorage, Policy, ScepService, ScepSetup, SqliteStorage, Storage};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use x509_cert::name::Name;
use x509_cert::Certificate;
use zeroize::Zeroizing;

#[derive(Parser)]
#[command(name = "mef", version, about = "enrolkit server: SCEP responder with an embedded CA")]
struct Cli {
    /// Configuration file written by `mef init`.
    #[arg(long, short, global = true, default_value = "mef/mef.toml")]
    config: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum KeyType {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    P256,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the PKI (root, optional issuing CA, SCEP RA), the configuration and the database.
    Init(InitArgs),
    /// Run the server.
    Serve {
        /// Override the listen address (port 0: choose one and print it).
        #[arg(long)]
        listen: Option<String>,
        /// Override the EST (rustls) listen address.
        #[arg(long)]
        est_listen: Option<String>,
        /// Override the EST (OpenSSL) listen address.
        #[arg(long)]
        est_listen_openssl: Option<String>,
    },
    /// One-time challenge passwords.
    Challenge {
        #[command(subcommand)]
        cmd: ChallengeCmd,
    },
    /// Revoke a certificate by serial (hex); `mef serve` lists it in the next CRL.
    Revoke {
        /// Serial number, hex as `mef` prints it.
        serial: String,
        /// CRLReason (RFC 5280 §5.3.1).
        #[arg(long, value_enum, default_value = "unspecified")]
        reason: Reason,
    },
    /// CA rollover: prepare the next CA (served by GetNextCACert), then switch to it.
    Ca {
        #[command(subcommand)]
        cmd: CaCmd,
    },
    /// Pre-shared keys for certificate-less EST (RFC 7030 §3.3.3; oneM2M KpmId/Kpm).
    Psk {
        #[command(subcommand)]
        cmd: PskCmd,
    },
    /// SCEP operator commands.
    Scep {
        #[command(subcommand)]
        cmd: ScepCmd,
    },
    /// EST operator commands (`pending` is the one queue `mef scep pending` shows).
    Est {
        #[command(subcommand)]
        cmd: ScepCmd,
    },
    /// oneM2M RSPF: Enrolment Tokens, enrolments, the GBA BSF stub.
    Rspf {
        #[command(subcommand)]
        cmd: RspfCmd,
    },
}

#[derive(Subcommand)]
enum RspfCmd {
    /// Enrolment Tokens (single use, bound to one enrolee).
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// List recorded enrolments (KeId, enrolee, expiry, completions; never keys).
    List,
    /// Withdraw an enrolment: nothing derived from its Ke can be fetched any more.
    Revoke {
        /// The KeId.
        ke_id: String,
    },
    /// GBA BSF stub — a TEST DOUBLE standing in for the operator's BSF.
    GbaStub {
        #[command(subcommand)]
        cmd: GbaStubCmd,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Issue a token for an enrolee; prints it once (only its keyed hash is stored).
    Add {
        /// Enrolee name (`[[rspf.enrolee]] name`).
        enrolee: String,
        /// Expire after this many seconds.
        #[arg(long)]
        expires_in: Option<u64>,
    },
    /// List tokens and their state.
    List,
    /// Revoke a token by id.
    Revoke {
        /// Id from `list`.
        id: i64,
    },
}

#[derive(Subcommand)]
enum GbaStubCmd {
    /// Simulate a GBA bootstrap (TS 33.220 4.5.2) for an IMPI: fresh Ks and
    /// RAND, kept (sealed) for the MEF's NAF role; the UE's side (B-TID, IMPI,
    /// Ks) is written to --out (0600) for `enrol rspf enrol --gba`.
    Bootstrap {
        /// The subscriber's IMPI.
        #[arg(long)]
        impi: String,
        /// The BSF's domain name (the B-TID ends in it).
        #[arg(long, default_value = "bsf.gba.example.net")]
        bsf_domain: String,
        /// Key lifetime, seconds.
        #[arg(long, default_value_t = 3600)]
        lifetime: u64,
        /// Where to write the UE's bootstrap (TOML).
        #[arg(long)]
        out: PathBuf,
    },
}

/// `mef init` options.
#[derive(clap::Args)]
struct InitArgs {
    /// Directory to create.
    #[arg(long, default_value = "mef")]
    dir: PathBuf,
    /// CA key type.
    #[arg(long, value_enum, default_value = "rsa2048")]
    ca_key: KeyType,
    /// Also create an issuing intermediate under the root.
    #[arg(long)]
    intermediate: bool,
    /// Generate the CA, root and RA keys inside this PKCS#11 token instead of
    /// in files: `pkcs11:token=<label>?module-path=<module.so>&pin-source=file:<pin file>`.
    /// They are made sensitive and non-extractable, labelled mef-ca, mef-root
    /// and mef-ra; mef.toml names them by URI. The EST server's TLS key stays a file.
    #[arg(long)]
    key_store: Option<String>,
    /// CA subject.
    #[arg(long, default_value = "CN=enrolkit MEF Root CA,O=enrolkit")]
    ca_name: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Base URL at which devices reach that listener: issued certificates name
    /// `<URL>/crl` as CRL distribution point and `<URL>/ocsp` as OCSP responder.
    /// Default: `http://` and `--listen` (with the first `--hostname` for an
    /// unspecified address such as 0.0.0.0).
    #[arg(long)]
    http_url: Option<String>,
    /// EST listener (rustls).
    #[arg(long, default_value = "127.0.0.1:8443")]
    est_listen: String,
    /// EST listener (OpenSSL: PSK and tls-unique).
    #[arg(long, default_value = "127.0.0.1:8444")]
    est_listen_openssl: String,
    /// Names for the EST server's TLS certificate (besides localhost and 127.0.0.1).
    #[arg(long = "hostname")]
    hostnames: Vec<String>,
    /// The MEF's FQDN for oneM2M RSPF (KeIds end in it).
    #[arg(long, default_value = "mef.enrolkit.test")]
    mef_fqdn: String,
    /// Keep the state in PostgreSQL (`postgresql://user@host:port/dbname`)
    /// instead of the SQLite file mef.db; the schema is created now.
    #[arg(long)]
    database_url: Option<String>,
    /// File holding the PostgreSQL password (relative paths: to --dir);
    /// without it, MEF_DATABASE_PASSWORD or the URL's.
    #[arg(long, requires = "database_url")]
    database_password_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum ChallengeCmd {
    /// Provision a challenge; prints it once (it is stored only as a keyed hash).
    Add {
        /// Label (device name) for `list`.
        #[arg(long, default_value = "")]
        label: String,
        /// Use this value instead of a generated one.
        #[arg(long)]
        value: Option<String>,
        /// Expire after this many seconds.
        #[arg(long)]
        expires_in: Option<u64>,
        /// Bind the challenge to this subject (RFC 4514, e.g. `CN=device-1`):
        /// it then authorises only a request for it (and --dns names).
        #[arg(long)]
        subject: Option<String>,
        /// A DNS name the bound request may carry (repeatable; needs --subject).
        #[arg(long, requires = "subject")]
        dns: Vec<String>,
        /// An IP address the bound request may carry (repeatable; needs --subject).
        #[arg(long, requires = "subject")]
        ip: Vec<std::net::IpAddr>,
    },
    /// List challenges and their state.
    List,
    /// Revoke a challenge by id.
    Revoke {
        /// Id from `list`.
        id: i64,
    },
}

#[derive(Subcommand)]
enum PskCmd {
    /// Provision a PSK identity. The key comes from --key-file (raw bytes, or
    /// hex) or is generated (32 bytes) and printed once in hex.
    Add {
        /// psk_identity (in oneM2M, the KpmId).
        identity: String,
        /// File holding the key.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Label (device name) for `list`.
        #[arg(long, default_value = "")]
        label: String,
        /// Bind the identity to this subject (RFC 4514); without it, the
        /// identity obtains only `CN=<identity>`.
        #[arg(long)]
        subject: Option<String>,
        /// A DNS name the bound identity may obtain (repeatable; needs --subject).
        #[arg(long, requires = "subject")]
        dns: Vec<String>,
        /// An IP address the bound identity may obtain (repeatable; needs --subject).
        #[arg(long, requires = "subject")]
        ip: Vec<std::net::IpAddr>,
    },
    /// List PSK identities (never the keys).
    List,
    /// Remove a PSK identity.
    Remove {
        /// psk_identity.
        identity: String,
    },
}

#[derive(Subcommand)]
enum CaCmd {
    /// Create the next CA key and certificate (same subject, new key): a new
    /// self-signed root, or, when the CA is an intermediate, a new one signed
    /// by the root. `mef serve` offers it by GetNextCACert from its next start.
    Next {
        /// Key type of the next CA.
        #[arg(long, value_enum, default_value = "rsa2048")]
        ca_key: KeyType,
    },
    /// Make the prepared next CA the current one (with a new RA certificate);
    /// the old CA files stay as they are. Restart `mef serve` afterwards.
    Rollover,
}

#[derive(Subcommand)]
enum ScepCmd {
    /// Requests waiting for approval.
    Pending {
        #[command(subcommand)]
        cmd: PendingCmd,
    },
}

#[derive(Subcommand)]
enum PendingCmd {
    /// List pending requests.
    List,
    /// Approve: issue the certificate; the client gets it on its next poll.
    Approve {
        /// Transaction ID.
        transaction: String,
        /// Key id (from `list`).
        key_id: String,
    },
    /// Reject: the client gets FAILURE on its next poll.
    Reject {
        /// Transaction ID.
        transaction: String,
        /// Key id (from `list`).
        key_id: String,
    },
}

/// The TOML configuration.
#[derive(Serialize, Deserialize)]
struct Config {
    listen: String,
    /// The SQLite database file; or, instead, `database_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    database: Option<PathBuf>,
    /// PostgreSQL instead of SQLite: `postgresql://user@host:port/dbname`
    /// (or libpq's `key=value` form); see `open_storage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
    /// File holding the PostgreSQL password (first line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    database_password_file: Option<PathBuf>,
    ca_certificate: PathBuf,
    ca_key: PathBuf,
    #[serde(default)]
    ca_chain: Vec<PathBuf>,
    ra_certificate: PathBuf,
    ra_key: PathBuf,
    challenge_key: PathBuf,
    #[serde(default)]
    next_ca_certificate: Option<PathBuf>,
    /// Key of the next CA (`mef ca next`), used by `mef ca rollover`.
    #[serde(default)]
    next_ca_key: Option<PathBuf>,
    /// Where `mef serve` keeps the current CRL (DER); also served at `/crl`.
    #[serde(default = "default_crl_file")]
    crl_file: PathBuf,
    scep: ScepConfig,
    profile: ProfileConfig,
    /// EST server; absent: SCEP only.
    #[serde(default)]
    est: Option<EstConfig>,
    /// oneM2M RSPF MEF on the EST listeners; absent: off.
    #[serde(default)]
    rspf: Option<RspfConfig>,
    /// Relaxations of the naming rules, vendor certificates, RA-POP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    authorisation: Option<authorisation::AuthorisationConfig>,
}

/// `[rspf]`: the oneM2M M2M Enrolment Function (TS-0003 clause 8.3).
#[derive(Serialize, Deserialize)]
struct RspfConfig {
    /// The MEF's FQDN (KeId = RelativeKeId@mef_fqdn; GBA NAF_Id).
    mef_fqdn: String,
    /// File with the 32-byte key (hex) sealing Enrolment Keys at rest: the operator's.
    storage_key: PathBuf,
    /// The Enrolees and what each is granted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    enrolee: Vec<RspfEnroleeConfig>,
    /// Enrolment Targets that fetch keys with a certificate, and how it is checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    target: Vec<RspfTargetConfig>,
}

/// `[[rspf.target]]`: an Enrolment Target's certificate credential.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RspfTargetConfig {
    /// Its CSE-ID, AE-ID or MAF FQDN, as it sends in `From`.
    id: String,
    /// SHA-256 of its certificate's SubjectPublicKeyInfo (hex).
    #[serde(default)]
    spki_sha256: Option<String>,
    /// PEM file of the CA(s) its certificate chains to (the certificate must then name `id`).
    #[serde(default)]
    trust_anchor: Option<PathBuf>,
}

/// `[[rspf.enrolee]]`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RspfEnroleeConfig {
    name: String,
    /// Table 9.2.2.3-1/-2 parameters (kebab-case keys).
    bootstrap: enrolkit_exchange::bootstrap::MefEnroleeConfig,
    /// What the exchange grants (kebab-case keys).
    grant: enrolkit_server::rspf::Grant,
}

/// `[est]`: the EST server (RFC 7030). Authorisation by challenge, CN list and
/// verifier hook is shared with `[scep]`.
#[derive(Serialize, Deserialize)]
struct EstConfig {
    /// rustls listener: TLS 1.2/1.3 with certificates (no PSK; channel binding only with TLS 1.3).
    #[serde(default)]
    listen: Option<String>,
    /// OpenSSL listener: adds PSK (if `psk`) and `tls-unique` with TLS 1.2.
    #[serde(default)]
    listen_openssl: Option<String>,
    /// TLS server certificate chain (PEM) and key.
    tls_certificate: PathBuf,
    tls_key: PathBuf,
    /// Trust anchors for TLS client certificates (PEM files); nothing else is trusted.
    client_trust_anchors: Vec<PathBuf>,
    #[serde(default = "default_min_tls")]
    min_tls: String,
    #[serde(default = "default_max_tls")]
    max_tls: String,
    /// Accept pre-shared keys (`mef psk add`) on the OpenSSL listener.
    #[serde(default)]
    psk: bool,
    /// Accept HTTP Basic with a one-time or the static challenge as password.
    #[serde(default)]
    basic: bool,
    /// Require the channel binding in the CSR's challengePassword (RFC 7030 §3.5).
    #[serde(default)]
    require_linking: bool,
    /// oneM2M profile (TS-0003 clause 8.3.3.3): Basic is refused.
    #[serde(default)]
    onem2m: bool,
    /// Hold enrolments for an operator (`mef scep pending approve`); clients get 202 + Retry-After.
    #[serde(default)]
    manual_approval: bool,
    #[serde(default = "default_retry_after")]
    retry_after_seconds: u64,
    /// EKU OIDs a CSR may request besides the profile's.
    #[serde(default)]
    allowed_ekus: Vec<String>,
    /// EKU OIDs `/csrattrs` asks for.
    #[serde(default)]
    requested_ekus: Vec<String>,
    /// RA override of the RFC 7030 §4.2.2 Subject/SAN check on `/simplereenroll`.
    #[serde(default)]
    reenroll_may_change_names: bool,
}

fn default_min_tls() -> String {
    "1.2".into()
}

fn default_max_tls() -> String {
    "1.3".into()
}

fn default_retry_after() -> u64 {
    60
}

fn tls_version(v: &str) -> Res<enrolkit_tls::TlsVersion> {
    match v {
        "1.2" => Ok(enrolkit_tls::TlsVersion::Tls12),
        "1.3" => Ok(enrolkit_tls::TlsVersion::Tls13),
        other => Err(format!("est: TLS version {other:?} (use \"1.2\" or \"1.3\")")),
    }
}

fn oids(what: &str, v: &[String]) -> Res<Vec<const_oid::ObjectIdentifier>> {
    v.iter()
        .map(|o| const_oid::ObjectIdentifier::new(o).map_err(|e| format!("est.{what}: {o:?}: {e}")))
        .collect()
}

#[derive(Serialize, Deserialize)]
pub(crate) struct ScepConfig {
    one_time_challenges: bool,
    #[serde(default)]
    static_challenge: Option<String>,
    #[serde(default)]
    preauthorized_cns: Vec<String>,
    renewal_window_days: u64,
    manual_approval: bool,
    crl_validity_hours: u64,
    /// nextUpdate − thisUpdate of OCSP answers (`/ocsp`): how long a client may
    /// rely on one. Answers are signed per request, so this bounds only how
    /// long a revocation can stay unseen by a client that caches them.
    #[serde(default = "default_ocsp_validity")]
    ocsp_validity_minutes: u64,
    /// How often `mef serve` checks whether the CRL must be re-signed (default:
    /// a quarter of `crl_validity_hours`, between 1 minute and 1 hour).
    #[serde(default)]
    crl_refresh_seconds: Option<u64>,
    /// External verifier: program and arguments; gets the CSR (PEM) on stdin, exit 0 authorises.
    #[serde(default)]
    verifier_command: Vec<String>,
    #[serde(default = "default_verifier_timeout")]
    verifier_timeout_seconds: u64,
    /// Content encryptions accepted: "aes", "des3", "des" (single DES, only
    /// for micromdm `scepclient`, which uses nothing else).
    #[serde(default = "default_ciphers")]
    ciphers: Vec<String>,
}

fn default_ocsp_validity() -> u64 {
    60
}

fn default_crl_file() -> PathBuf {
    "crl.der".into()
}

fn default_verifier_timeout() -> u64 {
    10
}

fn default_ciphers() -> Vec<String> {
    vec!["aes".into(), "des3".into()]
}

/// The `ciphers` setting, refusing unknown names.
fn ciphers(names: &[String]) -> Result<enrolkit_server::Ciphers, String> {
    let mut c = enrolkit_server::Ciphers {
        aes: false,
        des3: false,
        des: false,
    };
    for n in names {
        match n.to_ascii_lowercase().as_str() {
            "aes" => c.aes = true,
            "des3" => c.des3 = true,
            "des" => c.des = true,
            other => {
                return Err(format!(
                    "scep.ciphers: unknown cipher {other:?} (use \"aes\", \"des3\", \"des\")"
                ))
            }
        }
    }
    if !(c.aes || c.des3 || c.des) {
        return Err("scep.ciphers: at least one cipher is needed".into());
    }
    Ok(c)
}

#[derive(Serialize, Deserialize)]
struct ProfileConfig {
    validity_days: u64,
    /// Lifetime in seconds instead of days (short-lived certificates; overrides validity_days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    validity_seconds: Option<u64>,
    /// How far notBefore is set back, for devices whose clocks run slightly slow (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backdate_seconds: Option<u64>,
    /// CRL distribution point written into issued certificates (`mef init`: this server's `/crl`).
    #[serde(default)]
    crl_url: Option<String>,
    /// OCSP responder URL written into issued certificates' AIA (`mef init`: this server's `/ocsp`).
    #[serde(default)]
    ocsp_url: Option<String>,
    #[serde(default)]
    allowed_dns_suffixes: Vec<String>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mef: {e}");
            ExitCode::FAILURE
        }
    }
}

type Res<T = ()> = Result<T, String>;

fn run(cli: Cli) -> Res {
    match cli.cmd {
        Cmd::Init(a) => init(&a),
        Cmd::Psk { cmd } => psk(&cli.config, cmd),
        Cmd::Serve {
            listen,
            est_listen,
            est_listen_openssl,
        } => serve(&cli.config, listen, est_listen, est_listen_openssl),
        Cmd::Challenge { cmd } => challenge(&cli.config, cmd),
        Cmd::Revoke { serial, reason } => {
            let (cfg, base) = load_config(&cli.config)?;
            let st = open_storage(&cfg, &base)?;
            st.revoke(&serial.to_ascii_lowercase(), unix(SystemTime::now()), reason as u8)
                .map_err(|e| e.to_string())?;
            println!("revoked {serial}; /ocsp and /crl answer so from now on");
            Ok(())
        }
        Cmd::Ca {
            cmd: CaCmd::Next { ca_key },
        } => ca_next(&cli.config, ca_key),
        Cmd::Ca { cmd: CaCmd::Rollover } => ca_rollover(&cli.config),
        Cmd::Scep {
            cmd: ScepCmd::Pending { cmd },
        }
        | Cmd::Est {
            cmd: ScepCmd::Pending { cmd },
        } => pending(&cli.config, cmd),
        Cmd::Rspf { cmd } => rspf(&cli.config, cmd),
    }
}

/// CRLReason codes an operator states (RFC 5280 §5.3.1).
#[derive(Clone, Copy, clap::ValueEnum)]
#[repr(u8)]
enum Reason {
    Unspecified = 0,
    KeyCompromise = 1,
    CaCompromise = 2,
    AffiliationChanged = 3,
    Superseded = 4,
    CessationOfOperation = 5,
    CertificateHold = 6,
    PrivilegeWithdrawn = 9,
}

/// A configured key: a path (relative to the configuration's directory) or
/// a `pkcs11:` URI naming a key pair in a token.
fn load_key(base: &Path, named: &Path) -> Res<Box<dyn PrivateKey>> {
    let at = match named.to_str() {
        Some(s) if s.starts_with("pkcs11:") => KeyLocation::parse(s).map_err(|e| format!("{s}: {e}"))?,
        _ => KeyLocation::File(base.join(named)),
    };
    at.load().map_err(|e| format!("{at}: {e}"))
}

/// `mef init --key-store`: a token URI without object or id (init names the
/// keys) and with the PIN in a file, since mef.toml keeps the URI.
fn token_store(s: &str) -> Res<enrolkit_pkcs11::Pkcs11Uri> {
    let uri = enrolkit_pkcs11::Pkcs11Uri::parse(s).map_err(|e| format!("--key-store: {e}"))?;
    if uri.object.is_some() || uri.id.is_some() {
        return Err("--key-store names the token only: init labels the keys mef-root, mef-ca and mef-ra".into());
    }
    if uri.pin_source().is_none() {
        return Err("--key-store needs ?pin-source=file:<path>: mef.toml keeps the URI, never a PIN value".into());
    }
    Ok(uri)
}

fn spec(k: KeyType) -> KeySpec {
    match k {
        KeyType::Rsa2048 => KeySpec::Rsa2048,
        KeyType::Rsa3072 => KeySpec::Rsa3072,
        KeyType::Rsa4096 => KeySpec::Rsa4096,
        KeyType::P256 => KeySpec::EcP256,
    }
}

fn pem(c: &Certificate) -> Res<String> {
    c.to_pem(der::pem::LineEnding::LF).map_err(|e| e.to_string())
}

fn init(a: &InitArgs) -> Res {
    let (dir, ca_key, intermediate, ca_name, listen, hostnames, mef_fqdn) = (
        a.dir.as_path(),
        a.ca_key,
        a.intermediate,
        a.ca_name.as_str(),
        a.listen.as_str(),
        a.hostnames.as_slice(),
        a.mef_fqdn.as_str(),
    );
    let est_listen = (a.est_listen.as_str(), a.est_listen_openssl.as_str());
    let http_url = http_base_url(listen, hostnames, a.http_url.as_deref())?;
    enrolkit_rspf::Fqdn::new("MEF", mef_fqdn).map_err(|e| format!("--mef-fqdn: {e}"))?;
    if dir.join("mef.toml").exists() {
        return Err(format!(
            "{} already holds a configuration; refusing to overwrite it",
            dir.display()
        ));
    }
    files::create_private_dir(dir)?;
    let now = SystemTime::now();
    let year = Duration::from_secs(365 * 86400);
    let rng = &mut rand_core::OsRng;
    let name = Name::from_str(ca_name).map_err(|e| format!("--ca-name: {e}"))?;
    let store = a.key_store.as_deref().map(token_store).transpose()?;
    // Every CA-side key: a file written here (0600), or a pair made in the token.
    let new_key = |spec: KeySpec, file: &str, label: &str| -> Res<(Box<dyn PrivateKey>, String)> {
        let at = match &store {
            None => KeyLocation::File(dir.join(file)),
            Some(uri) => {
                let mut uri = uri.clone();
                uri.object = Some(label.into());
                KeyLocation::Token(Box::new(uri))
            }
        };
        let (key, at) = at.generate(spec).map_err(|e| format!("{label} key: {e}"))?;
        let named = match at {
            KeyLocation::File(_) => file.to_owned(),
            token => token.to_string(),
        };
        Ok((key, named))
    };
    let (root_key, root_named) = new_key(
        spec(ca_key),
        if intermediate { ROOT_KEY } else { "ca.key.pem" },
        "mef-root",
    )?;
    let root = Authority::new_root(root_key, name, now, year * 20, rng).map_err(|e| e.to_string())?;
    let mut chain = Vec::new();
    let (ca, ca_named) = if intermediate {
        let (k, named) = new_key(spec(ca_key), "ca.key.pem", "mef-ca")?;
        let int_name = Name::from_str("CN=enrolkit MEF Issuing CA,O=enrolkit").map_err(|e| e.to_string())?;
        let int = root
            .new_intermediate(k, int_name, now, year * 10, rng)
            .map_err(|e| e.to_string())?;
        files::write_public(&dir.join("root.pem"), pem(&root.certificate)?.as_bytes())?;
        chain.push(PathBuf::from("root.pem"));
        if store.is_some() {
            println!("root CA key (for `mef ca next`): {root_named}");
        }
        (int, named)
    } else {
        (root, root_named)
    };
    // SCEP key transport needs RSA for the RA whatever the CA key is.
    let (ra_key, ra_named) = new_key(KeySpec::Rsa2048, "ra.key.pem", "mef-ra")?;
    let ra_name = Name::from_str(RA_NAME).map_err(|e| e.to_string())?;
    let ra = ca
        .certify_ra(ra_key.spki(), ra_name, now, year * 2, rng)
        .map_err(|e| e.to_string())?;
    let mut secret = Zeroizing::new([0u8; 32]);
    rand_core::RngCore::fill_bytes(rng, &mut secret[..]);
    // The EST server's TLS certificate, from the same CA.
    let tls_key = SoftwareKey::generate(KeySpec::EcP256).map_err(|e| e.to_string())?;
    let mut dns_names = vec!["localhost".to_string()];
    dns_names.extend(
        hostnames
            .iter()
            .filter(|h| h.parse::<std::net::IpAddr>().is_err())
            .cloned(),
    );
    let mut ip_addresses: Vec<std::net::IpAddr> = vec![std::net::Ipv4Addr::LOCALHOST.into()];
    ip_addresses.extend(hostnames.iter().filter_map(|h| h.parse::<std::net::IpAddr>().ok()));
    let tls_cert = ca
        .issue(
            &enrolkit_pki::Request {
                subject: Name::from_str("CN=enrolkit MEF EST server,O=enrolkit").map_err(|e| e.to_string())?,
                public_key: tls_key.public_key().clone(),
                dns_names,
                ip_addresses,
            },
            &Profile {
                validity: year * 2,
                key_usage: vec![enrolkit_pki::KeyUsageBits::DigitalSignature],
                extended_key_usage: vec![const_oid::db::rfc5280::ID_KP_SERVER_AUTH],
                ..Profile::default()
            },
            now,
            rng,
        )
        .map_err(|e| e.to_string())?;
    let mut tls_chain_pem = pem(&tls_cert)?;
    if intermediate {
        tls_chain_pem.push_str(&pem(&ca.certificate)?);
    }
    files::write_private(
        &dir.join("est-server.key.pem"),
        tls_key.to_pkcs8_pem().map_err(|e| e.to_string())?.as_bytes(),
    )?;
    files::write_public(&dir.join("est-server.pem"), tls_chain_pem.as_bytes())?;

    files::write_public(&dir.join("ca.pem"), pem(&ca.certificate)?.as_bytes())?;
    files::write_public(&dir.join("ra.pem"), pem(&ra)?.as_bytes())?;
    files::write_private(
        &dir.join("challenge.key"),
        Zeroizing::new(hex::encode(&secret[..])).as_bytes(),
    )?;
    // The RSPF storage key: replace it with the operator's own before the first enrolment.
    let mut rspf_key = Zeroizing::new([0u8; 32]);
    rand_core::RngCore::fill_bytes(rng, &mut rspf_key[..]);
    files::write_private(
        &dir.join("rspf.key"),
        Zeroizing::new(hex::encode(&rspf_key[..])).as_bytes(),
    )?;
    let cfg = Config {
        listen: listen.into(),
        database: a.database_url.is_none().then(|| "mef.db".into()),
        database_url: a.database_url.clone(),
        database_password_file: a.database_password_file.clone(),
        ca_certificate: "ca.pem".into(),
        ca_key: ca_named.into(),
        ca_chain: chain,
        ra_certificate: "ra.pem".into(),
        ra_key: ra_named.into(),
        challenge_key: "challenge.key".into(),
        next_ca_certificate: None,
        next_ca_key: None,
        crl_file: default_crl_file(),
        scep: ScepConfig {
            one_time_challenges: true,
            static_challenge: None,
            preauthorized_cns: Vec::new(),
            renewal_window_days: 14,
            manual_approval: false,
            crl_validity_hours: 24,
            ocsp_validity_minutes: default_ocsp_validity(),
            crl_refresh_seconds: None,
            verifier_command: Vec::new(),
            verifier_timeout_seconds: default_verifier_timeout(),
            ciphers: default_ciphers(),
        },
        profile: ProfileConfig {
            validity_days: 365,
            validity_seconds: None,
            backdate_seconds: None,
            crl_url: Some(format!("{http_url}{}", enrolkit_server::http::CRL_PATH)),
            ocsp_url: Some(format!("{http_url}{}", enrolkit_server::ocsp::OCSP_PATH)),
            allowed_dns_suffixes: Vec::new(),
        },
        est: Some(EstConfig {
            listen: Some(est_listen.0.into()),
            listen_openssl: Some(est_listen.1.into()),
            tls_certificate: "est-server.pem".into(),
            tls_key: "est-server.key.pem".into(),
            client_trust_anchors: vec![if intermediate {
                "root.pem".into()
            } else {
                "ca.pem".into()
            }],
            min_tls: default_min_tls(),
            max_tls: default_max_tls(),
            psk: true,
            basic: false,
            require_linking: false,
            onem2m: false,
            manual_approval: false,
            retry_after_seconds: default_retry_after(),
            allowed_ekus: Vec::new(),
            requested_ekus: Vec::new(),
            reenroll_may_change_names: false,
        }),
        rspf: Some(RspfConfig {
            mef_fqdn: mef_fqdn.into(),
            storage_key: "rspf.key".into(),
            enrolee: Vec::new(),
            target: Vec::new(),
        }),
        authorisation: None,
    };
    open_storage(&cfg, dir)?;
    files::write_public(
        &dir.join("mef.toml"),
        toml::to_string_pretty(&cfg).map_err(|e| e.to_string())?.as_bytes(),
    )?;
    let fp = enrolkit_scep::fingerprint_sha256(&ca.certificate).map_err(|e| e.to_string())?;
    println!(
        "created {} (CA SHA-256 fingerprint {fp})",
        dir.join("mef.toml").display()
    );
    Ok(())
}

/// Where devices reach the plain-HTTP listener (SCEP, `/crl`, `/ocsp`), without
/// a trailing slash: `explicit` when given (http or https), else derived from
/// the listen address. An unspecified address (0.0.0.0, ::) is no place to
/// send a device: the first of `hostnames` stands in, or 127.0.0.1 with a
/// warning to set `[profile] crl_url` and `ocsp_url`.
fn http_base_url(listen: &str, hostnames: &[String], explicit: Option<&str>) -> Res<String> {
    if let Some(u) = explicit {
        let lower = u.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) || !u.is_ascii() {
            return Err(format!("--http-url: {u:?} is not an http:// or https:// URL"));
        }
        return Ok(u.trim_end_matches('/').to_owned());
    }
    let addr = match listen.parse::<std::net::SocketAddr>() {
        Ok(a) => a,
        // A host name and port, as given.
        Err(_) => return Ok(format!("http://{listen}")),
    };
    if !addr.ip().is_unspecified() {
        return Ok(format!("http://{addr}"));
    }
    let host = match hostnames.first() {
        Some(h) if h.parse::<std::net::Ipv6Addr>().is_ok() => format!("[{h}]"),
        Some(h) => h.clone(),
        None => {
            eprintln!(
                "mef: listening on {listen}; issued certificates will name http://127.0.0.1:{}/crl and /ocsp \
                 — pass --http-url or edit [profile] crl_url and ocsp_url",
                addr.port()
            );
            "127.0.0.1".into()
        }
    };
    Ok(format!("http://{host}:{}", addr.port()))
}

fn save_config(path: &Path, cfg: &Config) -> Res {
    files::write_public(path, toml::to_string_pretty(cfg).map_err(|e| e.to_string())?.as_bytes())
}

/// The root's key when `mef init --intermediate` made one (`mef ca next` signs with it).
const ROOT_KEY: &str = "root.key.pem";
const RA_NAME: &str = "CN=enrolkit MEF SCEP RA,O=enrolkit";
const YEAR: Duration = Duration::from_secs(365 * 86400);

/// The token URI of a key named in mef.toml, when it is in a token.
fn token_uri(named: &Path) -> Res<Option<enrolkit_pkcs11::Pkcs11Uri>> {
    match named.to_str() {
        Some(s) if s.starts_with("pkcs11:") => enrolkit_pkcs11::Pkcs11Uri::parse(s)
            .map(Some)
            .map_err(|e| format!("{s}: {e}")),
        _ => Ok(None),
    }
}

/// A new key beside `like`: in the same token under `label` when `like`
/// is a token URI (returned as its URI, the key never leaves the token),
/// else in memory, for the caller to write as a file (returned with its PEM).
fn key_beside(like: &Path, spec: KeySpec, label: &str) -> Res<(Box<dyn PrivateKey>, KeyMade)> {
    match token_uri(like)? {
        Some(mut uri) => {
            if uri.pin_source().is_none() {
                return Err(format!(
                    "{}: mef.toml names token keys with ?pin-source=file:<path>, never a PIN value",
                    like.display()
                ));
            }
            uri.object = Some(label.to_owned());
            uri.id = None;
            let (key, at) = KeyLocation::Token(Box::new(uri))
                .generate(spec)
                .map_err(|e| format!("{label} key: {e}"))?;
            Ok((key, KeyMade::Token(at)))
        }
        None => {
            let key = SoftwareKey::generate(spec).map_err(|e| e.to_string())?;
            let pem = key.to_pkcs8_pem().map_err(|e| e.to_string())?;
            Ok((Box::new(key), KeyMade::Pem(pem)))
        }
    }
}

/// Where [`key_beside`] put a key.
enum KeyMade {
    /// In a token (the URI names it by label and id).
    Token(KeyLocation),
    /// In memory: PKCS#8 PEM to be written to a 0600 file.
    Pem(Zeroizing<String>),
}

impl KeyMade {
    /// Write it (a file key) to `base/file`; the name mef.toml records.
    fn store(&self, base: &Path, file: &str) -> Res<PathBuf> {
        match self {
            KeyMade::Token(at) => Ok(PathBuf::from(at.to_string())),
            KeyMade::Pem(pem) => {
                files::write_private(&base.join(file), pem.as_bytes())?;
                Ok(PathBuf::from(file))
            }
        }
    }

    /// Destroy a token key that will not be used (a failed step).
    fn discard(&self) {
        if let KeyMade::Token(at) = self {
            if let Err(e) = at.remove() {
                eprintln!("warning: {at} was not destroyed: {e}");
            }
        }
    }
}

fn ca_next(config: &Path, key_type: KeyType) -> Res {
    let (mut cfg, base) = load_config(config)?;
    if cfg.next_ca_certificate.is_some() {
        return Err("a next CA is already prepared (next_ca_certificate in the configuration)".into());
    }
    let current = files::read_certificate(&base.join(&cfg.ca_certificate))?;
    let subject = current.tbs_certificate.subject.clone();
    let now = SystemTime::now();
    let rng = &mut rand_core::OsRng;
    // The root key of an intermediate CA: the file init wrote, or, when the
    // keys are in a token, the pair init labelled mef-root there.
    let root_key = match cfg.ca_chain.first() {
        None => None,
        Some(root_cert) => {
            let root_at = match token_uri(&cfg.ca_key)? {
                Some(mut uri) if !base.join(ROOT_KEY).exists() => {
                    uri.object = Some("mef-root".into());
                    uri.id = None;
                    PathBuf::from(uri.to_string())
                }
                _ => PathBuf::from(ROOT_KEY),
            };
            Some((
                files::read_certificate(&base.join(root_cert))?,
                load_key(&base, &root_at)?,
            ))
        }
    };
    let (key, made) = key_beside(&cfg.ca_key, spec(key_type), &format!("mef-ca-{}", unix(now)))?;
    let next = match root_key {
        // An intermediate: the next one is signed by the same root.
        Some((certificate, key_of_root)) => {
            let root = Authority {
                certificate,
                key: key_of_root,
                chain: Vec::new(),
            };
            root.new_intermediate(key, subject, now, YEAR * 10, rng)
        }
        None => Authority::new_root(key, subject, now, YEAR * 20, rng),
    }
    .map_err(|e| e.to_string());
    // Until the configuration names it, a pair made in the token is destroyed on any failure.
    let written = next.and_then(|next| {
        let next_key = made.store(&base, "next-ca.key.pem")?;
        files::write_public(&base.join("next-ca.pem"), pem(&next.certificate)?.as_bytes())?;
        cfg.next_ca_certificate = Some("next-ca.pem".into());
        cfg.next_ca_key = Some(next_key);
        save_config(config, &cfg)?;
        Ok(next)
    });
    let next = match written {
        Ok(n) => n,
        Err(e) => {
            made.discard();
            return Err(e);
        }
    };
    let fp = enrolkit_scep::fingerprint_sha256(&next.certificate).map_err(|e| e.to_string())?;
    if let KeyMade::Token(at) = &made {
        println!("next CA key generated in the token: {at}");
    }
    println!("next CA written to next-ca.pem (SHA-256 {fp}); GetNextCACert offers it once mef serve restarts");
    Ok(())
}

fn ca_rollover(config: &Path) -> Res {
    let (mut cfg, base) = load_config(config)?;
    let (Some(next_cert), Some(next_key)) = (cfg.next_ca_certificate.clone(), cfg.next_ca_key.clone()) else {
        return Err("no next CA prepared: run `mef ca next` first".into());
    };
    let cert = files::read_certificate(&base.join(&next_cert))?;
    let next_in_token = token_uri(&next_key)?.is_some();
    let ca = Authority {
        certificate: cert,
        key: load_key(&base, &next_key)?,
        chain: Vec::new(),
    };
    let rng = &mut rand_core::OsRng;
    let stamp = unix(SystemTime::now());
    // The new RA key goes where the current one is (a token, or a file).
    let (ra_key, ra_made) = key_beside(&cfg.ra_key, KeySpec::Rsa2048, &format!("mef-ra-{stamp}"))?;
    let ra = ca
        .certify_ra(
            ra_key.spki(),
            Name::from_str(RA_NAME).map_err(|e| e.to_string())?,
            SystemTime::now(),
            YEAR * 2,
            rng,
        )
        .map_err(|e| e.to_string());
    // New files under new names, then one atomic write of the configuration
    // switches to them: a crash before it leaves the old CA in charge, after
    // it the new one. The old files stay where they are (certificates the old
    // CA issued remain valid until they expire). Token keys keep their URIs.
    // Until the configuration names it, a new RA pair in the token is
    // destroyed on any failure.
    let switched = ra.and_then(|ra| {
        let (ca_pem, ra_pem) = (
            PathBuf::from(format!("ca-{stamp}.pem")),
            PathBuf::from(format!("ra-{stamp}.pem")),
        );
        let ca_key = if next_in_token {
            next_key.clone()
        } else {
            let key = files::read_key(&base.join(&next_key))?;
            let named = PathBuf::from(format!("ca-{stamp}.key.pem"));
            files::write_private(
                &base.join(&named),
                key.to_pkcs8_pem().map_err(|e| e.to_string())?.as_bytes(),
            )?;
            named
        };
        files::write_public(&base.join(&ca_pem), pem(&ca.certificate)?.as_bytes())?;
        let ra_key_named = ra_made.store(&base, &format!("ra-{stamp}.key.pem"))?;
        files::write_public(&base.join(&ra_pem), pem(&ra)?.as_bytes())?;
        let old = [cfg.ca_certificate.clone(), cfg.ra_certificate.clone()];
        cfg.ca_certificate = ca_pem;
        cfg.ca_key = ca_key;
        cfg.ra_certificate = ra_pem;
        cfg.ra_key = ra_key_named;
        cfg.next_ca_certificate = None;
        cfg.next_ca_key = None;
        save_config(config, &cfg)?;
        Ok(old)
    });
    let old = match switched {
        Ok(old) => old,
        Err(e) => {
            ra_made.discard();
            return Err(e);
        }
    };
    let _ = std::fs::remove_file(base.join(next_cert));
    if !next_in_token {
        let _ = std::fs::remove_file(base.join(next_key));
    }
    println!(
        "previous CA and RA certificates stay in {} and {}",
        old[0].display(),
        old[1].display()
    );
    let fp = enrolkit_scep::fingerprint_sha256(&ca.certificate).map_err(|e| e.to_string())?;
    println!("the next CA is now current (SHA-256 {fp}); restart mef serve");
    Ok(())
}

fn load_config(path: &Path) -> Res<(Config, PathBuf)> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let cfg: Config = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok((cfg, base))
}

/// Where the PostgreSQL password comes from, first found: `database_password_file`
/// (its first line), this environment variable, the URL.
const PASSWORD_ENV: &str = "MEF_DATABASE_PASSWORD";

/// The server's state, for every command: PostgreSQL when `database_url` is
/// set, else the SQLite file `database` (relative to the configuration's
/// directory). Errors never contain the password.
fn open_storage(cfg: &Config, base: &Path) -> Res<Arc<dyn Storage>> {
    match (&cfg.database_url, &cfg.database) {
        (Some(_), Some(_)) => Err("set database (a SQLite file) or database_url (PostgreSQL), not both".into()),
        (None, None) => Err("no database: set database (a SQLite file) or database_url (PostgreSQL)".into()),
        (None, Some(path)) => {
            let text = path.to_string_lossy().to_ascii_lowercase();
            if text.starts_with("postgres://") || text.starts_with("postgresql://") {
                return Err("database names a SQLite file: put a PostgreSQL URL in database_url".into());
            }
            Ok(Arc::new(
                SqliteStorage::open(&base.join(path)).map_err(|e| e.to_string())?,
            ))
        }
        (Some(url), None) => {
            let password: Option<Zeroizing<String>> = match &cfg.database_password_file {
                Some(f) => {
                    let f = base.join(f);
                    let text = Zeroizing::new(
                        std::fs::read_to_string(&f)
                            .map_err(|e| format!("database_password_file {}: {e}", f.display()))?,
                    );
                    Some(Zeroizing::new(text.lines().next().unwrap_or_default().to_owned()))
                }
                None => std::env::var(PASSWORD_ENV).ok().map(Zeroizing::new),
            };
            let st = PgStorage::open(url, password.as_ref().map(|p| p.as_bytes()))
                .map_err(|e| format!("database_url: {e}"))?;
            tracing::debug!(database = st.target(), "PostgreSQL storage");
            Ok(Arc::new(st))
        }
    }
}

/// What SCEP and EST share: the CA, the state, the authorisation policy, the profile.
struct Shared {
    ca: Arc<Authority>,
    challenge_key: Zeroizing<[u8; 32]>,
    storage: Arc<dyn Storage>,
    policy: Policy,
    profile: Profile,
}

fn build_service(cfg: &Config, base: &Path) -> Res<ScepService> {
    Ok(build_services(cfg, base)?.0)
}

fn build_services(cfg: &Config, base: &Path) -> Res<(ScepService, Shared)> {
    let ca_cert = files::read_certificate(&base.join(&cfg.ca_certificate))?;
    let ca_key = load_key(base, &cfg.ca_key)?;
    let chain = cfg
        .ca_chain
        .iter()
        .map(|p| files::read_certificate(&base.join(p)))
        .collect::<Res<Vec<_>>>()?;
    let ra_cert = files::read_certificate(&base.join(&cfg.ra_certificate))?;
    let ra_key = load_key(base, &cfg.ra_key)?;
    let challenge_key = read_key32(&base.join(&cfg.challenge_key))?;
    let storage = open_storage(cfg, base)?;
    let next_ca = cfg
        .next_ca_certificate
        .as_ref()
        .map(|p| files::read_certificate(&base.join(p)))
        .transpose()?;
    let profile = Profile {
        validity: Duration::from_secs(
            cfg.profile
                .validity_seconds
                .unwrap_or(cfg.profile.validity_days.saturating_mul(86400)),
        ),
        backdate: Duration::from_secs(cfg.profile.backdate_seconds.unwrap_or(300)),
        crl_url: cfg.profile.crl_url.clone(),
        ocsp_url: cfg.profile.ocsp_url.clone(),
        // The authorisation core decides the names (allowed_dns_suffixes is
        // its rule for credentials that bind none); the profile copies them.
        san: SanPolicy::Copy,
        ..Profile::default()
    };
    let policy = authorisation::policy(
        authorisation::Sources {
            scep: &cfg.scep,
            authorisation: cfg.authorisation.as_ref(),
            est_reenroll_may_change_names: cfg.est.as_ref().is_some_and(|e| e.reenroll_may_change_names),
            allowed_dns_suffixes: &cfg.profile.allowed_dns_suffixes,
            reserved_names: rspf_identifiers(cfg.rspf.as_ref()),
        },
        base,
    )?;
    let ca = Arc::new(Authority {
        certificate: ca_cert,
        key: ca_key,
        chain,
    });
    let shared = Shared {
        ca: ca.clone(),
        challenge_key: challenge_key.clone(),
        storage: storage.clone(),
        policy: policy.clone(),
        profile: profile.clone(),
    };
    let scep = ScepService::new(
        ScepSetup {
            ca,
            ra_cert,
            ra_key: Arc::from(ra_key),
            challenge_key,
            storage,
            policy,
            ciphers: ciphers(&cfg.scep.ciphers)?,
            profile,
            crl_validity: Duration::from_secs(cfg.scep.crl_validity_hours * 3600),
            next_ca,
        },
        &mut rand_core::OsRng,
    );
    Ok((scep, shared))
}

/// The names RSPF identifies Enrolees and targets by: issued only under a grant.
fn rspf_identifiers(r: Option<&RspfConfig>) -> Vec<String> {
    use enrolkit_exchange::bootstrap::EnroleeAuthentication as A;
    let Some(r) = r else { return Vec::new() };
    let mut names = Vec::new();
    for e in &r.enrolee {
        names.extend(e.bootstrap.enrolee_id.clone());
        if let Some(A::DeviceCertificate { device_id, .. }) = &e.bootstrap.authentication {
            names.push(device_id.clone());
        }
    }
    names.extend(r.target.iter().map(|t| t.id.clone()));
    names.sort();
    names.dedup();
    names
}

/// A 256-bit key kept as 64 hex digits in `path` (challenge key, RSPF storage key).
fn read_key32(path: &Path) -> Res<Zeroizing<[u8; 32]>> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?);
    let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| format!("{}: not hexadecimal", path.display()))?);
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(format!("{}: must hold 32 bytes (64 hex digits)", path.display()));
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// The MEF from `[rspf]`, sharing the database and the challenge key (which hashes tokens).
fn build_rspf(
    r: &RspfConfig,
    operator_psks: bool,
    base: &Path,
    shared: &Shared,
) -> Res<enrolkit_server::rspf::RspfService> {
    let mut enrolees = Vec::new();
    for e in &r.enrolee {
        use enrolkit_exchange::bootstrap::EnroleeAuthentication as A;
        let anchors = match &e.bootstrap.authentication {
            Some(A::DeviceCertificate { trust_anchor, .. }) | Some(A::EntityCertificate { trust_anchor }) => {
                files::read_certificates(&base.join(trust_anchor))?
                    .iter()
                    .map(|c| der::Encode::to_der(c).map_err(|e| e.to_string()))
                    .collect::<Res<Vec<_>>>()?
            }
            _ => Vec::new(),
        };
        enrolees.push(enrolkit_server::rspf::Enrolee {
            name: e.name.clone(),
            bootstrap: e.bootstrap.clone(),
            grant: e.grant.clone(),
            trust_anchors: anchors,
        });
    }
    let mut targets = Vec::new();
    for t in &r.target {
        let trust_anchors = match &t.trust_anchor {
            Some(p) => files::read_certificates(&base.join(p))?
                .iter()
                .map(|c| der::Encode::to_der(c).map_err(|e| e.to_string()))
                .collect::<Res<Vec<_>>>()?,
            None => Vec::new(),
        };
        targets.push(enrolkit_server::rspf::TargetAuth {
            id: t.id.clone(),
            spki_sha256: t.spki_sha256.clone(),
            trust_anchors,
        });
    }
    enrolkit_server::rspf::RspfService::new(enrolkit_server::rspf::RspfSetup {
        mef_fqdn: r.mef_fqdn.clone(),
        enrolees,
        storage: shared.storage.clone(),
        storage_key: read_key32(&base.join(&r.storage_key))?,
        token_key: shared.challenge_key.clone(),
        targets,
        ca_subject: shared.ca.certificate.tbs_certificate.subject.clone(),
        operator_psks,
    })
}

/// PSKs from the database, for the OpenSSL listener.
struct StoredPsks(Arc<dyn Storage>);

impl enrolkit_tls::PskStore for StoredPsks {
    fn psk(&self, identity: &str, _ctx: &enrolkit_tls::PskContext) -> Option<Zeroizing<Vec<u8>>> {
        match self.0.psk(identity) {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(error = %e, "PSK lookup failed");
                None
            }
        }
    }
}

/// What the TLS listeners serve, and the listeners (address, acceptor).
type EstServer = (
    enrolkit_server::http::TlsServices,
    Vec<(String, enrolkit_tls::Acceptor)>,
);

/// The EST service (with the RSPF MEF when `[rspf]` is there) and its TLS listeners' acceptors.
fn build_est(est: &EstConfig, rspf: Option<&RspfConfig>, base: &Path, shared: Shared) -> Res<EstServer> {
    let rspf = rspf
        .map(|r| build_rspf(r, est.psk, base, &shared).map(Arc::new))
        .transpose()
        .map_err(|e| format!("rspf: {e}"))?;
    let chain = files::read_certificates(&base.join(&est.tls_certificate))?
        .iter()
        .map(|c| der::Encode::to_der(c).map_err(|e| e.to_string()))
        .collect::<Res<Vec<_>>>()?;
    let key = files::read_key(&base.join(&est.tls_key))?;
    let mut anchors = Vec::new();
    for p in &est.client_trust_anchors {
        for c in files::read_certificates(&base.join(p))? {
            anchors.push(der::Encode::to_der(&c).map_err(|e| e.to_string())?);
        }
    }
    // A vendor certificate authenticates a base station's TLS handshake
    // too; what it may obtain is the authorisation core's vendor rule.
    if let Some(v) = &shared.policy.vendor {
        anchors.extend(v.anchors.iter().cloned());
    }
    let tls = enrolkit_tls::ServerTlsConfig {
        chain,
        key_pkcs8: key.to_pkcs8_der(),
        client_trust_anchors: anchors,
        min_version: tls_version(&est.min_tls)?,
        max_version: tls_version(&est.max_tls)?,
        // The Enrolment Key of every session (TS-0003 10.3.1), when the MEF is on.
        keying_export: rspf.as_ref().map(|_| enrolkit_tls::KeyingExport {
            label: enrolkit_rspf::enrolment::EXPORTER_LABEL.into(),
            context: None,
            len: enrolkit_rspf::enrolment::EXPORT_LEN,
        }),
    };
    let mut auth = shared.policy;
    auth.manual_approval = est.manual_approval;
    let policy = enrolkit_server::est::EstPolicy {
        auth,
        basic: est.basic,
        client_certificates_authorise: true,
        require_linking: est.require_linking,
        allowed_ekus: oids("allowed_ekus", &est.allowed_ekus)?,
        requested_ekus: oids("requested_ekus", &est.requested_ekus)?,
        retry_after: Duration::from_secs(est.retry_after_seconds),
        serverkeygen_key: KeySpec::EcP256,
        onem2m: est.onem2m,
    };
    let svc = enrolkit_server::est::EstService::new(enrolkit_server::est::EstSetup {
        ca: shared.ca,
        challenge_key: shared.challenge_key,
        storage: shared.storage.clone(),
        policy,
        profile: shared.profile,
    })
    .map_err(|e| format!("est: {e}"))?;
    let svc = match &rspf {
        Some(r) => svc.with_enrolee_grants(r.clone()),
        None => svc,
    };
    let mut listeners = Vec::new();
    if let Some(addr) = &est.listen {
        listeners.push((
            addr.clone(),
            enrolkit_tls::Acceptor::rustls(&tls).map_err(|e| format!("est.listen: {e}"))?,
        ));
    }
    if let Some(addr) = &est.listen_openssl {
        // The MEF's store answers KpmIds, KreIds and B-TIDs; without it, the provisioned PSKs.
        let psk: Option<Arc<dyn enrolkit_tls::PskStore>> = match (&rspf, est.psk) {
            (Some(r), _) => Some(r.clone()),
            (None, true) => Some(Arc::new(StoredPsks(shared.storage.clone()))),
            (None, false) => None,
        };
        listeners.push((
            addr.clone(),
            enrolkit_tls::Acceptor::openssl(&tls, psk).map_err(|e| format!("est.listen_openssl: {e}"))?,
        ));
    }
    Ok((
        enrolkit_server::http::TlsServices {
            est: Arc::new(svc),
            rspf,
        },
        listeners,
    ))
}

fn serve(config: &Path, listen: Option<String>, est_listen: Option<String>, est_listen_openssl: Option<String>) -> Res {
    let (mut cfg, base) = load_config(config)?;
    if let Some(e) = cfg.est.as_mut() {
        if est_listen.is_some() {
            e.listen = est_listen;
        }
        if est_listen_openssl.is_some() {
            e.listen_openssl = est_listen_openssl;
        }
    }
    // Bound before the services are built, so that profile URLs derived from
    // the configured address can follow a `--listen` override.
    let addr = listen.clone().unwrap_or(cfg.listen.clone());
    let http_listener = std::net::TcpListener::bind(&addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    http_listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    if listen.is_some() {
        let bound = http_listener.local_addr().map_err(|e| e.to_string())?;
        follow_listener(&mut cfg.profile, &cfg.listen, bound);
    }
    let (scep, shared) = build_services(&cfg, &base)?;
    let svc = Arc::new(scep);
    let ocsp = Arc::new(build_ocsp(&cfg, &shared)?);
    if cfg.rspf.is_some() && cfg.est.is_none() {
        return Err("[rspf] is served on the EST listeners: configure [est] too".into());
    }
    let est = cfg
        .est
        .as_ref()
        .map(|e| build_est(e, cfg.rspf.as_ref(), &base, shared))
        .transpose()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener =
            tokio::net::TcpListener::from_std(http_listener).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        announce(&format!("mef: listening on http://{local}/scep"));
        tracing::info!(%local, "serving SCEP, /crl and /ocsp");
        if let Some((est_svc, listeners)) = est {
            if let Some(r) = est_svc.rspf.clone() {
                tokio::spawn(purge_expired_enrolments(r));
            }
            for (addr, acceptor) in listeners {
                let l = tokio::net::TcpListener::bind(&addr)
                    .await
                    .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
                let local = l.local_addr().map_err(|e| e.to_string())?;
                announce(&format!(
                    "mef: EST ({}) on https://{local}/.well-known/est/",
                    acceptor.backend()
                ));
                tracing::info!(%local, backend = %acceptor.backend(), "serving EST");
                let s = est_svc.clone();
                tokio::spawn(async move {
                    if let Err(e) = enrolkit_server::http::serve_est(l, acceptor, s).await {
                        tracing::error!(error = %e, "EST listener stopped");
                    }
                });
            }
        }
        tokio::spawn(keep_crl_current(
            svc.clone(),
            base.join(&cfg.crl_file),
            crl_refresh(&cfg),
        ));
        tokio::select! {
            r = enrolkit_server::http::serve_http(
                listener,
                enrolkit_server::http::HttpServices { scep: svc, ocsp: Some(ocsp) },
            ) => r.map_err(|e| e.to_string()),
            _ = tokio::signal::ctrl_c() => { tracing::info!("shutting down"); Ok(()) }
        }
    })
}

/// `serve --listen` moves the plain-HTTP listener; profile URLs that `mef
/// init` derived from the configured `listen` (`http://<listen>/crl` and
/// `/ocsp`) move with it, so that issued certificates keep naming this
/// server. URLs set any other way stay as they are, and so do all of them
/// when the bound address is unspecified (0.0.0.0 is no place to send a device).
fn follow_listener(profile: &mut ProfileConfig, configured: &str, bound: std::net::SocketAddr) {
    if bound.ip().is_unspecified() {
        return;
    }
    let from = format!("http://{configured}/");
    for url in [&mut profile.crl_url, &mut profile.ocsp_url].into_iter().flatten() {
        let Some(path) = url.strip_prefix(&from) else {
            continue;
        };
        let moved = format!("http://{bound}/{path}");
        tracing::info!(from = %url, to = %moved, "profile URL follows --listen");
        *url = moved;
    }
}

/// The CA's OCSP responder on the plain-HTTP listener: answers from the
/// database at request time, signed by the CA key.
fn build_ocsp(cfg: &Config, shared: &Shared) -> Res<enrolkit_server::ocsp::OcspResponder> {
    if cfg.scep.ocsp_validity_minutes == 0 {
        return Err("scep.ocsp_validity_minutes must be at least 1".into());
    }
    enrolkit_server::ocsp::OcspResponder::new(enrolkit_server::ocsp::OcspSetup {
        ca: shared.ca.clone(),
        storage: shared.storage.clone(),
        validity: Duration::from_secs(cfg.scep.ocsp_validity_minutes.saturating_mul(60)),
    })
    .map_err(|e| format!("OCSP responder: {e}"))
}

/// Delete Enrolment Key records once their Enrolment Expiry has passed
/// (they are refused from that moment anyway), every ten minutes.
async fn purge_expired_enrolments(r: Arc<enrolkit_server::rspf::RspfService>) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        let r = r.clone();
        match tokio::task::spawn_blocking(move || r.storage().purge_enrolments(unix(SystemTime::now()))).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(purged = n, "expired Enrolment Keys deleted"),
            Ok(Err(e)) => tracing::error!(error = %e, "cannot purge expired Enrolment Keys"),
            Err(e) => tracing::error!(error = %e, "purge task failed"),
        }
    }
}

/// How often `mef serve` checks the CRL: the configured interval, else a
/// quarter of the CRL's validity (at most an hour), so a revocation reaches
/// the CRL file within that time and the CRL never goes stale.
fn crl_refresh(cfg: &Config) -> Duration {
    match cfg.scep.crl_refresh_seconds {
        Some(s) => Duration::from_secs(s.max(1)),
        None => Duration::from_secs((cfg.scep.crl_validity_hours * 3600 / 4).clamp(60, 3600)),
    }
}

/// Re-sign the CRL when revocations change or half its validity has passed,
/// and write it (DER) atomically to `path` for a web server or a file share.
async fn keep_crl_current(svc: Arc<ScepService>, path: PathBuf, every: Duration) {
    let mut written = None;
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let s = svc.clone();
        match tokio::task::spawn_blocking(move || s.current_crl(SystemTime::now())).await {
            Ok(Ok(c)) if written != Some(c.number) => match files::write_public(&path, &c.der) {
                Ok(()) => {
                    tracing::info!(crl_number = c.number, path = %path.display(), "CRL written");
                    written = Some(c.number);
                }
                Err(e) => tracing::error!(error = %e, path = %path.display(), "cannot write the CRL"),
            },
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot produce the CRL"),
            Err(e) => tracing::error!(error = %e, "CRL task failed"),
        }
    }
}

/// `--subject`/`--dns` as a binding, checked.
fn bound_names(
    subject: Option<&str>,
    dns: Vec<String>,
    ips: Vec<std::net::IpAddr>,
) -> Res<Option<enrolkit_server::ra::BoundNames>> {
    subject
        .map(|s| enrolkit_server::ra::BoundNames::new(s, dns, ips))
        .transpose()
}

/// A stored binding, as listed.
fn shown_names(stored: Option<&str>) -> String {
    match stored.map(enrolkit_server::ra::BoundNames::decode) {
        None => String::new(),
        Some(Ok(b)) => format!(" [{}]", escape(&b.to_string())),
        Some(Err(e)) => format!(" [{e}]"),
    }
}

/// Text from a request or an operator, printed with control characters
/// escaped (a subject cannot rewrite the operator's terminal).
fn escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

fn challenge(config: &Path, cmd: ChallengeCmd) -> Res {
    let (cfg, base) = load_config(config)?;
    let st = open_storage(&cfg, &base)?;
    let now = unix(SystemTime::now());
    match cmd {
        ChallengeCmd::Add {
            label,
            value,
            expires_in,
            subject,
            dns,
            ip,
        } => {
            let names = bound_names(subject.as_deref(), dns, ip)?;
            let key = read_key32(&base.join(&cfg.challenge_key))?;
            let value = Zeroizing::new(match value {
                Some(v) => v,
                None => {
                    let mut b = [0u8; 15];
                    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
                    hex::encode(b)
                }
            });
            let id = st
                .add_bound_challenge(
                    &challenge_hash(&key, &value),
                    &label,
                    names.as_ref().map(|n| n.encode()).as_deref(),
                    now,
                    expires_in.map(|s| now + s as i64),
                )
                .map_err(|e| e.to_string())?;
            println!("{}", value.as_str());
            eprintln!(
                "challenge {id} added{}",
                if label.is_empty() {
                    String::new()
                } else {
                    format!(" for {label}")
                }
            );
        }
        ChallengeCmd::List => {
            println!(
                "{:>4}  {:<10}  {:<20}  label [bound names]",
                "id", "state", "created (unix)"
            );
            for c in st.list_challenges().map_err(|e| e.to_string())? {
                println!(
                    "{:>4}  {:<10}  {:<20}  {}{}",
                    c.id,
                    c.state(now),
                    c.created,
                    escape(&c.label),
                    shown_names(c.names.as_deref())
                );
            }
        }
        ChallengeCmd::Revoke { id } => {
            st.revoke_challenge(id).map_err(|e| e.to_string())?;
            println!("challenge {id} revoked");
        }
    }
    Ok(())
}

fn pending(config: &Path, cmd: PendingCmd) -> Res {
    let (cfg, base) = load_config(config)?;
    match cmd {
        PendingCmd::List => {
            // What approval would issue, as each service decided it when it held the request.
            let (scep, shared) = build_services(&cfg, &base)?;
            let est = match &cfg.est {
                Some(e) => Some(build_est(e, cfg.rspf.as_ref(), &base, shared)?.0),
                None => None,
            };
            for tx in scep.storage().pending().map_err(|e| e.to_string())? {
                let terms = match (&est, tx.transaction_id.starts_with("est-")) {
                    (Some(svc), true) => svc.est.pending_terms(&tx),
                    _ => scep.pending_terms(&tx),
                };
                println!(
                    "{} {} {}",
                    escape(&tx.transaction_id),
                    tx.key_id,
                    escape(&terms.unwrap_or_else(|e| format!("(cannot tell: {e})")))
                );
            }
        }
        PendingCmd::Approve { transaction, key_id } => {
            // EST requests (`est-…`, `est-keygen-…`) are issued by the EST
            // service, on the terms it held them with (EKUs, an Enrolee's
            // grant, the key type to generate), not SCEP's.
            let serial = match (&cfg.est, transaction.starts_with("est-")) {
                (Some(est), true) => {
                    let (_, shared) = build_services(&cfg, &base)?;
                    let (svc, _) = build_est(est, cfg.rspf.as_ref(), &base, shared)?;
                    svc.est.approve(&transaction, &key_id, SystemTime::now())?
                }
                _ => build_service(&cfg, &base)?.approve(&transaction, &key_id, SystemTime::now())?,
            };
            println!("approved {transaction}: certificate {serial}");
        }
        PendingCmd::Reject { transaction, key_id } => {
            let st = open_storage(&cfg, &base)?;
            st.decide(
                &transaction,
                &key_id,
                &enrolkit_server::storage::TxState::Rejected(
                    enrolkit_server::ra::RefusalReason::OperatorRejected,
                    "rejected by the operator".into(),
                ),
                None,
                unix(SystemTime::now()),
            )
            .map_err(|e| e.to_string())?;
            // A key left (sealed) by an approval that did not complete goes with the rejection.
            if transaction.starts_with("est-keygen-") {
                if let Err(e) = st.take_generated_key(&transaction, &key_id) {
                    eprintln!("mef: warning: {transaction} is rejected, but a key stored for it was not deleted: {e}");
                }
            }
            println!("rejected {transaction}");
        }
    }
    Ok(())
}

fn psk(config: &Path, cmd: PskCmd) -> Res {
    let (cfg, base) = load_config(config)?;
    let st = open_storage(&cfg, &base)?;
    match cmd {
        PskCmd::Add {
            identity,
            key_file,
            label,
            subject,
            dns,
            ip,
        } => {
            let names = bound_names(subject.as_deref(), dns, ip)?;
            if identity.is_empty() || identity.len() > 128 {
                return Err("a PSK identity is 1 to 128 bytes".into());
            }
            let (key, generated) = match key_file {
                Some(f) => (files::read_secret(&f)?, false),
                None => {
                    let mut k = Zeroizing::new(vec![0u8; 32]);
                    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut k);
                    (k, true)
                }
            };
            if key.len() < 16 || key.len() > 64 {
                return Err(format!("a PSK is 16 to 64 bytes, this one is {}", key.len()));
            }
            st.add_bound_psk(
                &identity,
                &key,
                &label,
                names.as_ref().map(|n| n.encode()).as_deref(),
                unix(SystemTime::now()),
            )
            .map_err(|e| e.to_string())?;
            if generated {
                println!("{}", Zeroizing::new(hex::encode(&key[..])).as_str());
            }
            eprintln!("PSK identity {identity} added");
        }
        PskCmd::List => {
            for p in st.list_psks().map_err(|e| e.to_string())? {
                println!(
                    "{}  {}  {}{}",
                    escape(&p.identity),
                    p.created,
                    escape(&p.label),
                    shown_names(p.names.as_deref())
                );
            }
        }
        PskCmd::Remove { identity } => {
            st.remove_psk(&identity).map_err(|e| e.to_string())?;
            println!("PSK identity {identity} removed");
        }
    }
    Ok(())
}

fn rspf(config: &Path, cmd: RspfCmd) -> Res {
    let (cfg, base) = load_config(config)?;
    let r = cfg.rspf.as_ref().ok_or("no [rspf] section in the configuration")?;
    let (_, shared) = build_services(&cfg, &base)?;
    let svc = build_rspf(r, cfg.est.as_ref().is_some_and(|e| e.psk), &base, &shared)?;
    let st = shared.storage;
    let now = unix(SystemTime::now());
    match cmd {
        RspfCmd::Token {
            cmd: TokenCmd::Add { enrolee, expires_in },
        } => {
            let expires = expires_in.map(|s| now.saturating_add(i64::try_from(s).unwrap_or(i64::MAX)));
            let (id, token) = svc.add_token(&enrolee, now, expires)?;
            println!("{}", token.as_str());
            eprintln!("enrolment token {id} issued for {enrolee}");
        }
        RspfCmd::Token { cmd: TokenCmd::List } => {
            println!("{:>4}  {:<10}  {:<20}  enrolee", "id", "state", "created (unix)");
            for t in st.list_rspf_tokens().map_err(|e| e.to_string())? {
                println!("{:>4}  {:<10}  {:<20}  {}", t.id, t.state(now), t.created, t.label);
            }
        }
        RspfCmd::Token {
            cmd: TokenCmd::Revoke { id },
        } => {
            st.revoke_rspf_token(id).map_err(|e| e.to_string())?;
            println!("enrolment token {id} revoked");
        }
        RspfCmd::List => {
            for e in svc.enrolments(now)? {
                println!("{e}");
            }
        }
        RspfCmd::Revoke { ke_id } => {
            svc.revoke(&ke_id)?;
            println!("enrolment {ke_id} withdrawn");
        }
        RspfCmd::GbaStub {
            cmd:
                GbaStubCmd::Bootstrap {
                    impi,
                    bsf_domain,
                    lifetime,
                    out,
                },
        } => {
            let expires = now.saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX));
            let (btid, ks) = svc.gba_stub_bootstrap(&impi, &bsf_domain, expires)?;
            let mut t = toml::Table::new();
            t.insert("btid".into(), btid.clone().into());
            t.insert("impi".into(), impi.clone().into());
            t.insert("ks".into(), hex::encode(ks.expose()).into());
            t.insert("expires".into(), expires.into());
            let body = Zeroizing::new(toml::to_string(&t).map_err(|e| e.to_string())?);
            if let Some(toml::Value::String(k)) = t.get_mut("ks") {
                zeroize::Zeroize::zeroize(k);
            }
            let ue = Zeroizing::new(format!(
                "# GBA bootstrap from mef's BSF STUB (a test double, not a BSF)\n{}",
                body.as_str()
            ));
            files::write_private(&out, ue.as_bytes())?;
            println!("{btid}");
            eprintln!("GBA stub bootstrap for {impi} written to {} (0600)", out.display());
        }
    }
    Ok(())
}

/// A line on stdout for whoever started `mef serve`; a reader that has gone
/// away (closed pipe) must not take the server down with it.
fn announce(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn listed_text_cannot_drive_the_terminal() {
        assert_eq!(escape("CN=dev\u{1b}[2J\r\nO=x"), "CN=dev\\u{1b}[2J\\r\\nO=x");
        assert_eq!(escape("CN=plain, O=ünï"), "CN=plain, O=ünï");
    }

    #[test]
    fn revocation_urls_default_to_the_plain_http_listener() {
        let none: &[String] = &[];
        assert_eq!(
            http_base_url("127.0.0.1:8080", none, None).unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(http_base_url("[::1]:9000", none, None).unwrap(), "http://[::1]:9000");
        assert_eq!(
            http_base_url("mef.example:80", none, None).unwrap(),
            "http://mef.example:80"
        );
        let names = ["mef.example".to_string()];
        assert_eq!(
            http_base_url("0.0.0.0:8080", &names, None).unwrap(),
            "http://mef.example:8080"
        );
        assert_eq!(
            http_base_url("0.0.0.0:8080", &["2001:db8::1".to_string()], None).unwrap(),
            "http://[2001:db8::1]:8080"
        );
        assert_eq!(
            http_base_url("0.0.0.0:8080", none, None).unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            http_base_url("0.0.0.0:8080", none, Some("https://pki.example/mef/")).unwrap(),
            "https://pki.example/mef"
        );
        assert!(http_base_url("0.0.0.0:8080", none, Some("ldap://pki.example")).is_err());
    }

    #[test]
    fn init_derived_urls_follow_a_listen_override() {
        let mut p: ProfileConfig = toml::from_str(
            "validity_days = 1\ncrl_url = \"http://127.0.0.1:8080/crl\"\nocsp_url = \"http://127.0.0.1:8080/ocsp\"\n",
        )
        .unwrap();
        follow_listener(&mut p, "127.0.0.1:8080", "127.0.0.1:40123".parse().unwrap());
        assert_eq!(p.crl_url.as_deref(), Some("http://127.0.0.1:40123/crl"));
        assert_eq!(p.ocsp_url.as_deref(), Some("http://127.0.0.1:40123/ocsp"));
        // URLs the operator set (another host, another port) are left alone.
        p.crl_url = Some("http://pki.example/crl".into());
        p.ocsp_url = Some("http://127.0.0.1:80801/ocsp".into());
        follow_listener(&mut p, "127.0.0.1:8080", "127.0.0.1:40124".parse().unwrap());
        assert_eq!(p.crl_url.as_deref(), Some("http://pki.example/crl"));
        assert_eq!(p.ocsp_url.as_deref(), Some("http://127.0.0.1:80801/ocsp"));
        // Nor does anything follow an unspecified address.
        p.ocsp_url = Some("http://127.0.0.1:8080/ocsp".into());
        follow_listener(&mut p, "127.0.0.1:8080", "0.0.0.0:9".parse().unwrap());
        assert_eq!(p.ocsp_url.as_deref(), Some("http://127.0.0.1:8080/ocsp"));
    }

    #[test]
    fn a_configuration_from_before_ocsp_still_loads() {
        let old = r#"
listen = "127.0.0.1:8080"
database = "mef.db"
ca_certificate = "ca.pem"
ca_key = "ca.key.pem"
ra_certificate = "ra.pem"
ra_key = "ra.key.pem"
challenge_key = "challenge.key"
[scep]
one_time_challenges = true
renewal_window_days = 14
manual_approval = false
crl_validity_hours = 24
[profile]
validity_days = 365
"#;
        let cfg: Config = toml::from_str(old).unwrap();
        assert_eq!(cfg.profile.crl_url, None);
        assert_eq!(cfg.profile.ocsp_url, None);
        assert_eq!(cfg.scep.ocsp_validity_minutes, 60);
    }
}
