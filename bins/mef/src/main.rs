//! `mef`: enrolkit's reference server. Thin: argument parsing, one module
//! per command family, printing; the configuration, its wiring and the CA
//! lifecycle are `enrolkit_server::{config, setup, lifecycle}`.

mod init;
mod pending;
mod proxy;
mod rspf;
mod secrets;
mod serve;

use clap::{Parser, Subcommand, ValueEnum};
use enrolkit_keys::KeySpec;
use enrolkit_server::config::load_config;
use enrolkit_server::lifecycle;
use enrolkit_server::ra::unix;
use enrolkit_server::setup::open_storage;
use init::InitArgs;
use pending::ScepCmd;
use rspf::RspfCmd;
use secrets::{ChallengeCmd, PskCmd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

#[derive(Parser)]
#[command(name = "mef", version, about = "enrolkit server: SCEP responder with an embedded CA")]
struct Cli {
    /// Configuration file written by `mef init`.
    #[arg(long, short, global = true, default_value = "mef/mef.toml")]
    config: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

/// Key types the CA commands make.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum KeyType {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    P256,
}

impl KeyType {
    /// The key to generate.
    pub(crate) fn spec(self) -> KeySpec {
        match self {
            KeyType::Rsa2048 => KeySpec::Rsa2048,
            KeyType::Rsa3072 => KeySpec::Rsa3072,
            KeyType::Rsa4096 => KeySpec::Rsa4096,
            KeyType::P256 => KeySpec::EcP256,
        }
    }
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
        /// Override the admin listen address (`/metrics`, `/healthz`; `[admin] listen`).
        #[arg(long)]
        admin_listen: Option<String>,
        /// Log format on stderr (`[log] format`): text or json.
        #[arg(long, value_enum)]
        log_format: Option<LogFormatArg>,
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

/// `--log-format`.
#[derive(Clone, Copy, ValueEnum)]
enum LogFormatArg {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand)]
pub(crate) enum CaCmd {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(log_format(&cli));
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mef: {e}");
            ExitCode::FAILURE
        }
    }
}

use enrolkit_server::config::{LogFormat, Res};

/// The log format: `serve --log-format`, else the configuration's `[log]
/// format` (when it can be read; if not, the command itself says why), else text.
fn log_format(cli: &Cli) -> LogFormat {
    match &cli.cmd {
        Cmd::Serve {
            log_format: Some(f), ..
        } => match f {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        },
        _ => load_config(&cli.config).map(|(c, _)| c.log.format).unwrap_or_default(),
    }
}

/// Log to stderr, filtered by `RUST_LOG` (default `info`): lines for a
/// person, or one JSON object per event (its fields flattened to the top
/// level) for a log shipper.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder.json().flatten_event(true).with_ansi(false).init(),
    }
}

fn run(cli: Cli) -> Res {
    match cli.cmd {
        Cmd::Init(a) => init::run(&a),
        Cmd::Psk { cmd } => secrets::psk(&cli.config, cmd),
        Cmd::Serve {
            listen,
            est_listen,
            est_listen_openssl,
            admin_listen,
            log_format: _,
        } => serve::serve(
            &cli.config,
            serve::Overrides {
                listen,
                est_listen,
                est_listen_openssl,
                admin_listen,
            },
        ),
        Cmd::Challenge { cmd } => secrets::challenge(&cli.config, cmd),
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
        } => lifecycle::ca_next(&cli.config, ca_key.spec()),
        Cmd::Ca { cmd: CaCmd::Rollover } => lifecycle::ca_rollover(&cli.config),
        Cmd::Scep {
            cmd: ScepCmd::Pending { cmd },
        }
        | Cmd::Est {
            cmd: ScepCmd::Pending { cmd },
        } => pending::pending(&cli.config, cmd),
        Cmd::Rspf { cmd } => rspf::rspf(&cli.config, cmd),
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

/// Text from a request or an operator, printed with control characters
/// escaped (a subject cannot rewrite the operator's terminal).
pub(crate) fn escape(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_text_cannot_drive_the_terminal() {
        assert_eq!(escape("CN=dev\u{1b}[2J\r\nO=x"), "CN=dev\\u{1b}[2J\\r\\nO=x");
        assert_eq!(escape("CN=plain, O=ünï"), "CN=plain, O=ünï");
    }
}
