//! Authorisation policy: what `mef.toml` configures. Every relaxation of the
//! default rules (see the table in [`super`]) is one field here.

use std::time::Duration;
use x509_cert::Certificate;
use zeroize::Zeroizing;

/// How requests are authorised, as the seeds list it, and the naming rules.
#[derive(Clone, Default)]
pub struct Policy {
    /// Accept one-time challenges provisioned with `mef challenge add`.
    pub one_time_challenges: bool,
    /// A shared static challenge (optional; weaker than one-time ones).
    pub static_challenge: Option<Zeroizing<String>>,
    /// Subject CNs authorised without a challenge.
    pub preauthorized_cns: Vec<String>,
    /// A renewal by a certificate of ours (SCEP RenewalReq, or a PKCSReq it
    /// signs) is accepted this long before that certificate expires.
    pub renewal_window: Duration,
    /// Hold every authorised request for an operator (`mef scep pending approve`).
    pub manual_approval: bool,
    /// An operator's own policy: a command that gets the CSR (PEM) on stdin
    /// and `ENROL_SUBJECT`/`ENROL_TRANSACTION_ID` in its environment, and
    /// authorises the request by exiting 0. Consulted when nothing above did.
    pub verifier: Option<Verifier>,
    /// DNS names a credential that binds no names may ask for: whole-label
    /// suffixes (`example.com` admits `a.example.com` and itself,
    /// `.example.com` only names below it). Empty: none.
    pub allowed_dns_suffixes: Vec<String>,
    /// RA override: a renewal may change Subject and subjectAltName
    /// (RFC 7030 §4.2.2 says it repeats them).
    pub reenroll_may_change_names: bool,
    /// Vendor-certificate initial enrolment (seed 004 §9.2.1), when configured.
    pub vendor: Option<VendorPolicy>,
    /// Registration authorities whose signature authorises a request
    /// (RA-POP, seed 004 option 2): a trusted proxy.
    pub registration_authorities: Vec<RaAuthority>,
    /// Names only an RSPF grant may put in a certificate: configured
    /// Enrolee-IDs and Enrolment Target IDs (RSPF identifies them by
    /// certificate names).
    pub reserved_names: Vec<String>,
}

/// Base stations hold a vendor certificate; the operator CA enrols them on
/// its strength and names the operator certificate from it.
#[derive(Debug, Clone)]
pub struct VendorPolicy {
    /// Vendor root (or intermediate) certificates (DER) a device
    /// certificate must chain to.
    pub anchors: Vec<Vec<u8>>,
    /// Subject of the operator certificate, RFC 4514 text with
    /// placeholders from the vendor certificate: `{serialNumber}` (subject
    /// serialNumber), `{CN}`, `{certSerial}`; e.g. `CN={serialNumber},O=Operator`.
    pub subject_template: String,
    /// DNS subjectAltNames, templates likewise (e.g. `{serialNumber}.ran.example.net`).
    pub dns_templates: Vec<String>,
}

/// A registration authority's certificate and the names it may request.
#[derive(Debug, Clone)]
pub struct RaAuthority {
    /// Its certificate: a request signed by (or a TLS session authenticated
    /// with) exactly this certificate is the RA's.
    pub certificate: Certificate,
    /// Patterns for the CN and DNS names it may request (`*.example.net`:
    /// names below example.net; anything else: that name).
    pub may_name: Vec<String>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("one_time_challenges", &self.one_time_challenges)
            .field("static_challenge", &self.static_challenge.as_ref().map(|_| "<set>"))
            .field("preauthorized_cns", &self.preauthorized_cns)
            .field("renewal_window", &self.renewal_window)
            .field("manual_approval", &self.manual_approval)
            .field("verifier", &self.verifier)
            .field("allowed_dns_suffixes", &self.allowed_dns_suffixes)
            .field("reenroll_may_change_names", &self.reenroll_may_change_names)
            .field("vendor", &self.vendor)
            .field("registration_authorities", &self.registration_authorities.len())
            .field("reserved_names", &self.reserved_names)
            .finish()
    }
}

/// The external verifier hook.
#[derive(Debug, Clone)]
pub struct Verifier {
    /// Program to run (no shell).
    pub command: std::path::PathBuf,
    /// Arguments.
    pub args: Vec<String>,
    /// Killed and counted as "no" after this long.
    pub timeout: Duration,
}

impl Verifier {
    /// Run the hook for `csr_der`; `Ok(true)` when it exits 0 in time.
    pub fn verify(&self, csr_der: &[u8], subject: &str, txid: &str) -> std::io::Result<bool> {
        use std::io::Write;
        let pem = der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, csr_der)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut child = std::process::Command::new(&self.command)
            .args(&self.args)
            .env("ENROL_SUBJECT", subject)
            .env("ENROL_TRANSACTION_ID", txid)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            // A hook that exits without reading stdin is not an error.
            let _ = stdin.write_all(pem.as_bytes());
        }
        let deadline = std::time::Instant::now() + self.timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status.success());
            }
            if std::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
