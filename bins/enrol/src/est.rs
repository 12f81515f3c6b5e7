//! `enrol est …`: arguments into [`EstSettings`] and the flows' requests,
//! and output; the flows are `enrolkit_client::flow::est` and `::onem2m`.

use super::{err, issued, serial, tty, Res};
use enrolkit_client::est::{ders, EstServer};
use enrolkit_client::flow::est::{self as flow, EstSession, EstSettings, EstTrust, Wait};
use enrolkit_client::flow::onem2m::{self, OneM2mRequest};
use enrolkit_client::flow::Progress;
use enrolkit_client::ClientError;
use enrolkit_files as files;
use enrolkit_keys::KeySpec;
use enrolkit_pkcs11::KeyLocation;
use enrolkit_pkix::fingerprint::sha256 as fingerprint;
use enrolkit_pkix::pkcs10::RequestParams;
use enrolkit_tls::TlsVersion;
use std::str::FromStr;
use std::time::Duration;
use x509_cert::name::Name;

mod args;

pub use args::{EstCmd, EstOpts};
use args::{KeyType, Outputs, Request, TlsArg};

/// A flow's error as one line, in the words of these options.
fn say_err(e: ClientError) -> String {
    match e {
        ClientError::FingerprintMismatch { expected, actual } => {
            format!("no CA certificate from /cacerts has the fingerprint {expected} (got {actual})")
        }
        ClientError::NoPin => "not trusting these CA certificates: give --ca-fingerprint or --ta".into(),
        e => err(e),
    }
}

impl EstOpts {
    /// What the flows need: server, trust, credentials, waiting.
    fn settings(&self) -> Res<EstSettings> {
        let server = EstServer::parse(&self.server).map_err(err)?;
        let trust = match &self.ta {
            Some(ta) => EstTrust::Anchors(files::read_certificates(ta)?),
            None => EstTrust::Bootstrap {
                pin: self.ca_fingerprint.clone(),
            },
        };
        let psk = match (&self.psk_identity, &self.psk_file) {
            (Some(id), Some(f)) => Some((id.clone(), enrolkit_tls::PskKey::Fixed(files::read_secret(f)?))),
            (None, None) => None,
            _ => return Err("--psk-identity and --psk-file go together".into()),
        };
        let certificate = match (&self.cert, &self.key) {
            (Some(c), Some(k)) => Some((
                ders(&files::read_certificates(c)?).map_err(err)?,
                flow::client_key(&k.to_string_lossy()).map_err(err)?,
            )),
            _ => None,
        };
        let basic = match (&self.basic_user, &self.basic_password_file) {
            (Some(u), Some(f)) => Some((u.clone(), files::read_secret_text(f)?)),
            (None, None) => None,
            _ => return Err("--basic-user and --basic-password-file go together".into()),
        };
        Ok(EstSettings {
            server,
            trust,
            versions: match self.tls {
                Some(TlsArg::V12) => (TlsVersion::Tls12, TlsVersion::Tls12),
                Some(TlsArg::V13) => (TlsVersion::Tls13, TlsVersion::Tls13),
                None => (TlsVersion::Tls12, TlsVersion::Tls13),
            },
            psk,
            certificate,
            basic,
            wait: Wait {
                window: Duration::from_secs(self.wait_window),
                max_interval: Duration::from_secs(self.max_retry_interval),
            },
        })
    }
}

fn spec(k: KeyType) -> KeySpec {
    match k {
        KeyType::Rsa2048 => KeySpec::Rsa2048,
        KeyType::Rsa3072 => KeySpec::Rsa3072,
        KeyType::P256 => KeySpec::EcP256,
    }
}

fn csr_request(req: &Request) -> Res<RequestParams> {
    Ok(RequestParams {
        dns_names: req.dns.clone(),
        ip_addresses: req.ip.clone(),
        ..RequestParams::new(Name::from_str(&req.subject).map_err(|e| format!("--subject: {e}"))?)
    })
}

fn outputs(o: &Outputs) -> enrolkit_client::flow::Outputs {
    enrolkit_client::flow::Outputs {
        certificate: o.cert_out.clone(),
        chain: o.chain_out.clone(),
        der: o.der,
    }
}

/// What the EST flows report: the bootstrap's `/cacerts` and what it left
/// out, a key made in a token, 202 waits, the oneM2M steps.
fn say() -> impl FnMut(Progress<'_>) {
    let tty = tty();
    move |p| match p {
        Progress::Offered { certificate } => eprintln!(
            "/cacerts: {} SHA-256 {}",
            certificate.tbs_certificate.subject,
            fingerprint(certificate)
        ),
        Progress::Untrusted { certificate, why } => eprintln!(
            "/cacerts: {} not trusted, dropped: {why}",
            certificate.tbs_certificate.subject
        ),
        Progress::CsrAttrsUnusable { error } => {
            eprintln!("warning: /csrattrs unusable ({error}); enrolling with the profile's key type and names")
        }
        Progress::KeyInToken { at } => println!("key generated in the token: {at}"),
        Progress::KeyNotDestroyed { at, error } => eprintln!("warning: the key pair {at} was not destroyed: {error}"),
        Progress::Accepted { attempt, elapsed, wait } => {
            let line = format!(
                "202 accepted: attempt {attempt}, {}s elapsed, next in {}s",
                elapsed.as_secs(),
                wait.as_secs()
            );
            if tty {
                eprint!("\r{line}   ");
            } else {
                eprintln!("{line}");
            }
        }
        Progress::OneM2m(step) => eprintln!("[{:>2}] {step}", step.number()),
        _ => {}
    }
}

fn written(cert: &x509_cert::Certificate, out: &Outputs) {
    println!("issued {}, written to {}", issued(cert), out.cert_out.display());
}

/// Run one `enrol est` command.
pub fn run(opts: &EstOpts, cmd: EstCmd) -> Res {
    let settings = opts.settings()?;
    let say_ = &mut say();
    match cmd {
        EstCmd::Cacerts { out } => {
            for c in flow::cacerts(&settings, out.as_deref(), say_).map_err(say_err)? {
                println!("{}  SHA-256 {}", c.tbs_certificate.subject, fingerprint(&c));
            }
        }
        EstCmd::Csrattrs => {
            let attrs = EstSession::connect(&settings, say_)
                .and_then(|s| s.csrattrs())
                .map_err(say_err)?;
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
            let req = flow::EnrolRequest {
                csr: csr_request(&req)?,
                key_type: spec(key_type),
                key_out,
                outputs: outputs(&out),
            };
            written(&flow::enroll(&settings, &req, say_).map_err(say_err)?, &out);
        }
        EstCmd::Reenroll { key_out, out } => {
            let (Some(cert), Some(key)) = (&opts.cert, &opts.key) else {
                return Err("reenroll needs the current certificate and key: --cert and --key".into());
            };
            let req = flow::ReenrolRequest {
                current: files::read_certificate(cert)?,
                current_key: match key.to_str() {
                    Some(s) if s.starts_with("pkcs11:") => super::key_location(s)?,
                    _ => KeyLocation::File(key.clone()),
                },
                key_out,
                outputs: outputs(&out),
            };
            written(&flow::reenroll(&settings, &req, say_).map_err(say_err)?, &out);
        }
        EstCmd::Serverkeygen {
            req,
            key_out,
            csr_key,
            out,
        } => {
            let req = flow::ServerKeyGenRequest {
                csr: csr_request(&req)?,
                key_out,
                csr_key,
                outputs: outputs(&out),
            };
            written(&flow::serverkeygen(&settings, &req, say_).map_err(say_err)?, &out);
        }
        EstCmd::Onem2m { req, key_type, out_dir } => {
            let req = OneM2mRequest {
                csr: csr_request(&req)?,
                key_type: spec(key_type),
                out_dir,
            };
            let cert = onem2m::onem2m(&settings, &req, say_).map_err(say_err)?;
            println!(
                "issued {} serial {} into {}",
                cert.tbs_certificate.subject,
                serial(&cert),
                req.out_dir.display()
            );
        }
        EstCmd::Bench {
            clients,
            total,
            prefix,
            subject,
        } => {
            let subject = subject
                .map(|s| Name::from_str(&s).map_err(|e| format!("--subject {s:?}: {e}")))
                .transpose()?;
            let session = EstSession::connect(&settings, say_).map_err(say_err)?;
            let attrs = session.csrattrs().map_err(say_err)?;
            let r = enrolkit_client::bench::run_est(
                || session.client(true),
                &attrs,
                clients,
                total,
                &prefix,
                subject.as_ref(),
            )
            .map_err(err)?;
            println!("{}", r.summary(&opts.server, clients));
            if r.ok == 0 {
                return Err("no enrolment succeeded".into());
            }
        }
    }
    Ok(())
}
