//! `enrol`: enrolkit's reference client. Thin: it parses arguments, turns
//! them into the inputs of `enrolkit_client::flow` (or the agent), and
//! prints what the flows report and return. Every enrolment decision (key
//! choice and storage, waiting, validation, outputs) is the library's.

use clap::{Parser, Subcommand};
use enrolkit_client::ClientError;
use enrolkit_pkcs11::KeyLocation;
use std::process::ExitCode;
use x509_cert::Certificate;

mod agent;
mod cmp;
mod est;
mod rspf;
mod scep;

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
        server: scep::Server,
        #[command(subcommand)]
        cmd: scep::ScepCmd,
    },
    /// EST (RFC 7030, RFC 8951).
    Est {
        #[command(flatten)]
        opts: est::EstOpts,
        #[command(subcommand)]
        cmd: est::EstCmd,
    },
    /// CMPv2 (RFC 4210/9480, Lightweight CMP Profile RFC 9483) over HTTP (RFC 6712).
    Cmp {
        #[command(flatten)]
        opts: cmp::CmpOpts,
        #[command(subcommand)]
        cmd: cmp::CmpCmd,
    },
    /// oneM2M Remote Security Provisioning (TS-0003 clause 8.3): Enrolee and Enrolment Target.
    Rspf {
        #[command(subcommand)]
        cmd: rspf::RspfCmd,
    },
    /// The device agent: provisioning profiles, automatic enrolment, renewal and revocation checks.
    Agent(agent::AgentArgs),
}

fn main() -> ExitCode {
    let outcome = match Cli::parse().proto {
        Proto::Agent(args) => return agent::run(args),
        Proto::Scep { server, cmd } => scep::run(&server, cmd),
        Proto::Est { opts, cmd } => est::run(&opts, cmd),
        Proto::Cmp { opts, cmd } => cmp::run(&opts, cmd),
        Proto::Rspf { cmd } => rspf::run(cmd),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("enrol: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A command's outcome: the one error line is the `Err`.
type Res<T = ()> = Result<T, String>;

fn err(e: ClientError) -> String {
    e.to_string()
}

/// `--key`/`--key-out`: a path, or a `pkcs11:` URI.
fn key_location(s: &str) -> Res<KeyLocation> {
    KeyLocation::parse(s).map_err(|e| e.to_string())
}

/// An issued certificate as the `issued …` lines show it: subject, serial
/// (hex) and SHA-256 fingerprint.
fn issued(c: &Certificate) -> String {
    format!(
        "{} serial {} (SHA-256 {})",
        c.tbs_certificate.subject,
        serial(c),
        enrolkit_pkix::fingerprint::sha256(c)
    )
}

fn serial(c: &Certificate) -> String {
    hex::encode(c.tbs_certificate.serial_number.as_bytes())
}

/// Whether progress may redraw one line on stderr.
fn tty() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
}
