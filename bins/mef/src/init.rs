//! `mef init`.

use crate::KeyType;
use enrolkit_server::config::{DatabaseSslMode, Res};
use enrolkit_server::lifecycle::{self, InitOptions};
use std::path::PathBuf;

/// `mef init` options.
#[derive(clap::Args)]
pub(crate) struct InitArgs {
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
    /// TLS to PostgreSQL: disable, require (encrypted, the server's
    /// certificate unchecked) or verify-full (checked against
    /// --database-sslrootcert, and naming the URL's host).
    #[arg(long, requires = "database_url", value_parser = ssl_mode)]
    database_sslmode: Option<DatabaseSslMode>,
    /// PEM file of the CA(s) the PostgreSQL server's certificate must chain
    /// to (relative paths: to --dir); needed by verify-full.
    #[arg(long, requires = "database_url")]
    database_sslrootcert: Option<PathBuf>,
}

fn ssl_mode(s: &str) -> Result<DatabaseSslMode, String> {
    match s {
        "disable" => Ok(DatabaseSslMode::Disable),
        "require" => Ok(DatabaseSslMode::Require),
        "verify-full" => Ok(DatabaseSslMode::VerifyFull),
        other => Err(format!("{other}: expected disable, require or verify-full")),
    }
}

/// Make the PKI, keys and configuration.
pub(crate) fn run(a: &InitArgs) -> Res {
    lifecycle::init(&InitOptions {
        dir: a.dir.clone(),
        ca_key: a.ca_key.spec(),
        intermediate: a.intermediate,
        key_store: a.key_store.clone(),
        ca_name: a.ca_name.clone(),
        listen: a.listen.clone(),
        http_url: a.http_url.clone(),
        est_listen: a.est_listen.clone(),
        est_listen_openssl: a.est_listen_openssl.clone(),
        hostnames: a.hostnames.clone(),
        mef_fqdn: a.mef_fqdn.clone(),
        database_url: a.database_url.clone(),
        database_password_file: a.database_password_file.clone(),
        database_sslmode: a.database_sslmode,
        database_sslrootcert: a.database_sslrootcert.clone(),
    })
}
