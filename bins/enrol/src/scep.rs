//! `enrol scep …`: arguments and output; the flows are
//! `enrolkit_client::flow::scep` on a `ScepSession`.

use super::{err, issued, tty, Res};
use enrolkit_client::flow::scep::{self as flow, EnrolRequest, RenewRequest};
use enrolkit_client::flow::{Outputs, Progress};
use enrolkit_client::{PollPolicy, RenewalForm, ScepClient, ScepSession, Trust};
use enrolkit_files as files;
use enrolkit_keys::KeySpec;
use enrolkit_pkix::fingerprint::sha256 as fingerprint;
use enrolkit_scep::ContentEncryption;
use std::str::FromStr;
use std::time::Duration;
use x509_cert::name::Name;
use zeroize::Zeroizing;

mod args;

use args::{CipherArg, KeyType, Output, Polling};
pub use args::{ScepCmd, Server};

/// Run one `enrol scep` command.
pub fn run(server: &Server, cmd: ScepCmd) -> Res {
    let client = ScepClient::new(&server.url, Duration::from_secs(server.timeout))
        .map_err(err)?
        .legacy(server.legacy);
    let trust = Trust::pinned_or_first_use(server.ca_fingerprint.as_deref());
    let ciphers: &[ContentEncryption] = match server.cipher {
        None => &enrolkit_client::scep::CIPHERS,
        Some(CipherArg::Aes128) => &[ContentEncryption::Aes128Cbc],
        Some(CipherArg::Des3) => &[ContentEncryption::DesEde3Cbc],
    };
    let open = |client| flow::open(client, &trust, ciphers, &mut say("key")).map_err(err);
    match cmd {
        ScepCmd::Getcaps => {
            for c in client.caps().map_err(err)?.iter() {
                println!("{}", c.keyword());
            }
        }
        ScepCmd::Getca { out } => {
            let ca = flow::ca_certificates(&client, &trust, out.as_deref(), &mut say("key")).map_err(err)?;
            for (role, c) in flow::by_role(&ca) {
                println!("{role:<5} {}  {}", fingerprint(c), c.tbs_certificate.subject);
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
            let req = EnrolRequest {
                subject: subject_arg(&subject)?,
                dns_names: dns,
                challenge,
                key_type: match key_type {
                    KeyType::Rsa2048 => KeySpec::Rsa2048,
                    KeyType::Rsa3072 => KeySpec::Rsa3072,
                    KeyType::Rsa4096 => KeySpec::Rsa4096,
                    KeyType::P256 => KeySpec::EcP256,
                },
                key_out,
                poll: policy(&poll),
            };
            let session = open(client)?;
            let cert = flow::enrol(&session, &req, &outputs(&out), &mut say("key")).map_err(err)?;
            finished(&session, &cert, &out);
        }
        ScepCmd::Renew {
            key,
            cert,
            new_key,
            key_out,
            as_pkcsreq,
            as_renewalreq,
            out,
            poll,
        } => {
            let new_key = match (new_key, key_out) {
                (true, Some(at)) => Some(at),
                (true, None) => return Err("--new-key needs --key-out".into()),
                (false, _) => None,
            };
            let req = RenewRequest {
                key,
                current: files::read_certificate(&cert)?,
                new_key,
                form: match (as_pkcsreq, as_renewalreq) {
                    (true, _) => RenewalForm::PkcsReq,
                    (_, true) => RenewalForm::RenewalReq,
                    _ => RenewalForm::Auto,
                },
                poll: policy(&poll),
            };
            let session = open(client)?;
            let cert = flow::renew(&session, &req, &outputs(&out), &mut say("new key")).map_err(err)?;
            finished(&session, &cert, &out);
        }
        ScepCmd::Poll {
            key,
            subject,
            renewing,
            out,
        } => {
            let name = subject_arg(&subject)?;
            let renewing = renewing.as_deref().map(files::read_certificate).transpose()?;
            let session = open(client)?;
            match flow::poll(&session, &key, &name, renewing.as_ref(), &outputs(&out)).map_err(err)? {
                Some(cert) => finished(&session, &cert, &out),
                None => return Err("still pending".into()),
            }
        }
        ScepCmd::Bench {
            challenge,
            clients,
            total,
            prefix,
        } => {
            let session = std::sync::Arc::new(open(client)?);
            let r = enrolkit_client::bench::run(&session, &challenge, clients, total, &prefix).map_err(err)?;
            println!("{}", r.summary(&server.url, clients));
            if r.ok == 0 {
                return Err("no enrolment succeeded".into());
            }
        }
        ScepCmd::Getcert { key, cert, serial, out } => {
            let serial = hex::decode(serial.trim_start_matches("0x")).map_err(|_| "--serial must be hex")?;
            let cert = files::read_certificate(&cert)?;
            let session = open(client)?;
            flow::get_cert(&session, &key, &cert, &serial, &out).map_err(err)?;
            println!("wrote {}", out.display());
        }
        ScepCmd::Getcrl { key, cert, out } => {
            let cert = files::read_certificate(&cert)?;
            let session = open(client)?;
            let crl = flow::get_crl(&session, &key, &cert, &out).map_err(err)?;
            let n = crl.tbs_cert_list.revoked_certificates.map(|r| r.len()).unwrap_or(0);
            println!("wrote {} ({n} revoked)", out.display());
        }
    }
    Ok(())
}

fn subject_arg(s: &str) -> Res<Name> {
    Name::from_str(s).map_err(|e| format!("--subject: {e}"))
}

/// What the SCEP flows report: untrusted certificates and a trust on first
/// use, a key made in a token (`key`: which key), PENDING polls (on a terminal).
fn say(key: &'static str) -> impl FnMut(Progress<'_>) {
    let tty = tty();
    move |p| match p {
        Progress::Untrusted { certificate, why } => eprintln!(
            "enrol: not trusted, left out: {} ({why})",
            certificate.tbs_certificate.subject
        ),
        // Said on stdout with the other progress lines: stderr is the one error line.
        Progress::FirstUse { ca } => println!(
            "no --ca-fingerprint: trusting on first use, unauthenticated, CA {} SHA-256 {}",
            ca.tbs_certificate.subject,
            fingerprint(ca)
        ),
        Progress::KeyInToken { at } => println!("{key} generated in the token: {at}"),
        Progress::Pending { attempt, elapsed } if tty => {
            eprint!("\rpending: poll {attempt}, {}s elapsed   ", elapsed.as_secs())
        }
        _ => {}
    }
}

fn policy(p: &Polling) -> PollPolicy {
    PollPolicy {
        interval: Duration::from_secs(p.poll_interval),
        window: Duration::from_secs(p.poll_window),
    }
}

fn outputs(o: &Output) -> Outputs {
    Outputs {
        certificate: o.cert_out.clone(),
        chain: o.chain_out.clone(),
        der: o.der,
    }
}

fn finished(session: &ScepSession, cert: &x509_cert::Certificate, out: &Output) {
    println!(
        "issued {}, written to {} [{:?}, {:?}]",
        issued(cert),
        out.cert_out.display(),
        session.cipher,
        session.digest
    );
}
