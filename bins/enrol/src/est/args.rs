//! The arguments of `enrol est`.

use clap::{Args, Subcommand, ValueEnum};
use enrolkit_pkcs11::KeyLocation;
use std::path::PathBuf;

/// Connection and authentication options shared by every `enrol est` command.
#[derive(Args)]
pub struct EstOpts {
    /// EST server: `https://host[:port][/label]`.
    #[arg(long, global = true, default_value = "https://127.0.0.1:8443")]
    pub server: String,
    /// Trust anchors for the server (PEM): nothing else is trusted.
    #[arg(long, global = true)]
    pub ta: Option<PathBuf>,
    /// Bootstrap (RFC 7030 §4.1.1): fetch /cacerts without trust, and go on
    /// only if one of them has this SHA-256 fingerprint.
    #[arg(long, global = true)]
    pub ca_fingerprint: Option<String>,
    /// TLS client certificate (PEM chain) …
    #[arg(long, global = true)]
    pub cert: Option<PathBuf>,
    /// … and its key: a file, or a `pkcs11:` URI (the token then signs the
    /// TLS handshake, over rustls: ECDSA with TLS 1.2/1.3, RSA with TLS 1.2).
    #[arg(long, global = true)]
    pub key: Option<PathBuf>,
    /// HTTP Basic user name.
    #[arg(long, global = true)]
    pub basic_user: Option<String>,
    /// File holding the HTTP Basic password.
    #[arg(long, global = true)]
    pub basic_password_file: Option<PathBuf>,
    /// Certificate-less TLS (RFC 7030 §3.3.3): PSK identity (oneM2M KpmId).
    #[arg(long, global = true)]
    pub psk_identity: Option<String>,
    /// File holding the PSK (hex text or raw bytes).
    #[arg(long, global = true)]
    pub psk_file: Option<PathBuf>,
    /// Use only this TLS version.
    #[arg(long, global = true, value_enum)]
    pub tls: Option<TlsArg>,
    /// Give up waiting on 202 Accepted after this many seconds.
    #[arg(long, global = true, default_value_t = 3600)]
    pub wait_window: u64,
    /// Wait at most this long between retries, whatever Retry-After says.
    #[arg(long, global = true, default_value_t = 300)]
    pub max_retry_interval: u64,
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
    pub subject: String,
    /// DNS names for the subjectAltName (repeatable).
    #[arg(long)]
    pub dns: Vec<String>,
    /// IP addresses for the subjectAltName (repeatable).
    #[arg(long)]
    pub ip: Vec<std::net::IpAddr>,
}

/// Where results go.
#[derive(Args)]
pub struct Outputs {
    /// Certificate.
    #[arg(long)]
    pub cert_out: PathBuf,
    /// CA certificates from /cacerts.
    #[arg(long)]
    pub chain_out: Option<PathBuf>,
    /// DER instead of PEM.
    #[arg(long)]
    pub der: bool,
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
        #[arg(long, value_parser = crate::key_location)]
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
