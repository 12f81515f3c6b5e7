//! The arguments of `enrol scep`.

use clap::{Args, Subcommand, ValueEnum};
use enrolkit_pkcs11::KeyLocation;
use std::path::PathBuf;

#[derive(Args)]
pub struct Server {
    /// SCEP URL, e.g. http://127.0.0.1:8080/scep
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080/scep")]
    pub url: String,
    /// The SHA-256 fingerprint (hex, colons allowed) of the CA certificate
    /// to trust (root or intermediate; or the RA's own): only certificates
    /// that chain to it are used, the RA must be signed by it as an RA, and
    /// issued certificates must chain to it. Without it, whatever CA the
    /// server sends is trusted (first use), with a warning.
    #[arg(long, global = true)]
    pub ca_fingerprint: Option<String>,
    /// Allow legacy algorithms: go on when GetCACaps fails (DES3, SHA-1,
    /// GET only), fall back to DES3 or SHA-1 when the server offers nothing
    /// better, accept SHA-1 certificate signatures. Off by default: an
    /// attacker can make GetCACaps fail.
    #[arg(long, global = true)]
    pub legacy: bool,
    /// Per-request timeout in seconds.
    #[arg(long, global = true, default_value_t = 30)]
    pub timeout: u64,
    /// Offer only this content encryption (default: AES-128, else DES3, as GetCACaps allows).
    #[arg(long, global = true, value_enum)]
    pub cipher: Option<CipherArg>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum CipherArg {
    Aes128,
    Des3,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum KeyType {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    P256,
}

#[derive(Args)]
pub struct Output {
    /// Where to write the certificate.
    #[arg(long)]
    pub cert_out: PathBuf,
    /// Where to write the CA chain (CA and intermediates from GetCACert).
    #[arg(long)]
    pub chain_out: Option<PathBuf>,
    /// Write DER instead of PEM.
    #[arg(long)]
    pub der: bool,
}

#[derive(Args)]
pub struct Polling {
    /// Seconds between polls while PENDING.
    #[arg(long, default_value_t = 10)]
    pub poll_interval: u64,
    /// Give up after this many seconds of PENDING.
    #[arg(long, default_value_t = 3600)]
    pub poll_window: u64,
}

#[derive(Subcommand)]
pub enum ScepCmd {
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
        #[arg(long, value_parser = crate::key_location)]
        key_out: KeyLocation,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        poll: Polling,
    },
    /// Renew: RenewalReq signed with the current key and certificate.
    Renew {
        /// Current key: a file or a `pkcs11:` URI.
        #[arg(long, value_parser = crate::key_location)]
        key: KeyLocation,
        /// Current certificate.
        #[arg(long)]
        cert: PathBuf,
        /// Generate a new key (written to --key-out) instead of re-certifying the current one.
        #[arg(long)]
        new_key: bool,
        /// Where the new key goes (with --new-key): a file, or a `pkcs11:` URI
        /// with a new `object=<label>`.
        #[arg(long, value_parser = crate::key_location)]
        key_out: Option<KeyLocation>,
        /// Send the renewal as a PKCSReq signed by the current certificate
        /// (as sscep -O/-K does), for servers that do not know RenewalReq
        /// (EJBCA, Dogtag). Without it: RenewalReq when GetCACaps lists
        /// Renewal, else PKCSReq.
        #[arg(long, conflicts_with = "as_renewalreq")]
        as_pkcsreq: bool,
        /// Send a RenewalReq even when GetCACaps does not list Renewal.
        #[arg(long)]
        as_renewalreq: bool,
        #[command(flatten)]
        out: Output,
        #[command(flatten)]
        poll: Polling,
    },
    /// Poll once for a request made earlier with this key.
    Poll {
        /// The key the request was made with: a file or a `pkcs11:` URI.
        #[arg(long, value_parser = crate::key_location)]
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
        #[arg(long, value_parser = crate::key_location)]
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
        #[arg(long, value_parser = crate::key_location)]
        key: KeyLocation,
        /// Our certificate.
        #[arg(long)]
        cert: PathBuf,
        /// Where to write it (PEM).
        #[arg(long)]
        out: PathBuf,
    },
}
