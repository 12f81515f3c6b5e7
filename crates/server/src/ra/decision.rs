//! What the authorisation core decides: issue (now, or after an operator's
//! approval) with the names it may carry, or a typed refusal that each
//! front end maps to its own wire error in one place (SCEP failInfo, EST
//! status; CMP's PKIFailureInfo later).

use x509_cert::name::Name;

/// The names a certificate is issued with: what the credential may obtain,
/// decided by the core (the CSR's names only where the rule allows them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueNames {
    /// Subject.
    pub subject: Name,
    /// DNS subjectAltNames.
    pub dns: Vec<String>,
    /// IP address subjectAltNames.
    pub ips: Vec<std::net::IpAddr>,
}

impl IssueNames {
    /// Stored form, kept with a held request so that approval issues what
    /// was decided: JSON with the subject's DER in hex (its string types kept).
    pub fn encode(&self) -> String {
        use der::Encode as _;
        serde_json::json!({
            "subject": hex::encode(self.subject.to_der().unwrap_or_default()),
            "dns": self.dns,
            "ips": self.ips.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
        })
        .to_string()
    }

    /// What an operator approving a held request is shown: the names, the
    /// EKUs and the key, one line (control characters are the printer's to
    /// escape).
    pub fn describe(&self, ekus: &[const_oid::ObjectIdentifier], key: &str) -> String {
        let mut out = format!("subject={}", self.subject);
        if !self.dns.is_empty() {
            out.push_str(&format!(" dns={}", self.dns.join(",")));
        }
        if !self.ips.is_empty() {
            let ips = self.ips.iter().map(|i| i.to_string()).collect::<Vec<_>>();
            out.push_str(&format!(" ip={}", ips.join(",")));
        }
        if !ekus.is_empty() {
            let e = ekus.iter().map(|o| o.to_string()).collect::<Vec<_>>();
            out.push_str(&format!(" eku={}", e.join(",")));
        }
        out.push_str(&format!(" key={key}"));
        out
    }

    /// From the stored form.
    pub fn decode(b: &[u8]) -> Result<Self, String> {
        use der::Decode;
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Stored {
            subject: String,
            dns: Vec<String>,
            ips: Vec<std::net::IpAddr>,
        }
        let s: Stored = serde_json::from_slice(b).map_err(|e| format!("held names: {e}"))?;
        let der = hex::decode(&s.subject).map_err(|e| format!("held subject: {e}"))?;
        Ok(IssueNames {
            subject: Name::from_der(&der).map_err(|e| format!("held subject: {e}"))?,
            dns: s.dns,
            ips: s.ips,
        })
    }
}

/// How a request was authorised: which rung of the ladder admitted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Basis {
    /// An RSPF Enrolee's certificate grant (TS-0003 8.3.3.1 step 8).
    EnroleeGrant(String),
    /// A certificate this CA issued, renewed or re-used for its own names.
    OwnCertificate(String),
    /// A certificate chaining to the configured vendor anchors (seed 004 §9.2.1).
    VendorCertificate(String),
    /// Proof of possession of a configured RA certificate (RA-POP, seed 004 option 2).
    RegistrationAuthority(String),
    /// A TLS client certificate from another trusted CA, for its own names.
    ForeignCertificate(String),
    /// A pre-shared key identity (RFC 7030 §3.3.3).
    Psk(String),
    /// HTTP Basic with a challenge as password.
    Basic(String),
    /// A one-time challenge, by its label.
    OneTimeChallenge(String),
    /// The shared static challenge.
    StaticChallenge,
    /// A pre-authorised subject CN.
    PreauthorisedCn(String),
    /// The operator's verifier hook.
    Verifier,
    /// A retry of a request recorded before (the same bytes): answered
    /// from storage, authorised when it was first received.
    Retry,
}

impl std::fmt::Display for Basis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Basis::EnroleeGrant(e) => write!(f, "rspf:{e}"),
            Basis::OwnCertificate(s) => write!(f, "cert:{s}"),
            Basis::VendorCertificate(s) => write!(f, "vendor:{s}"),
            Basis::RegistrationAuthority(s) => write!(f, "ra-pop:{s}"),
            Basis::ForeignCertificate(s) => write!(f, "cert:{s}"),
            Basis::Psk(id) => write!(f, "psk:{id}"),
            Basis::Basic(u) => write!(f, "basic:{u}"),
            Basis::OneTimeChallenge(l) => write!(f, "challenge:{l}"),
            Basis::StaticChallenge => f.write_str("static-challenge"),
            Basis::PreauthorisedCn(cn) => write!(f, "preauthorised-cn:{cn}"),
            Basis::Verifier => f.write_str("verifier"),
            Basis::Retry => f.write_str("retry"),
        }
    }
}

/// A request the core admits.
#[derive(Debug, Clone)]
pub struct Authorisation {
    /// Which rule admitted it (for the log and `mef … pending list`).
    pub basis: Basis,
    /// The names to issue.
    pub names: IssueNames,
    /// Keyed hash of the one-time challenge to consume together with the
    /// issuance (or the held record): one database transaction, or neither.
    pub consume: Option<Vec<u8>>,
    /// Serial (hex) of the certificate of ours this request renews.
    pub renews: Option<String>,
    /// Hold for an operator (`manual_approval`) instead of issuing now.
    pub hold: bool,
}

/// Why the core refused: typed, so each protocol maps it to its own error
/// and storage keeps it as a reason rather than a protocol's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// No credential that could authorise was presented.
    Unauthenticated,
    /// A credential was presented and is not valid (wrong challenge,
    /// untrusted certificate, unknown identity).
    BadCredential,
    /// The authorising certificate is revoked.
    CredentialRevoked,
    /// The authorising certificate has expired (or is not yet valid).
    CredentialExpired,
    /// Renewal asked for before the renewal window opened.
    TooEarly,
    /// The credential may not obtain a certificate with these names.
    NameNotAuthorised,
    /// A renewal does not repeat the names of the certificate it renews
    /// (RFC 7030 §4.2.2): a malformed renewal rather than a forbidden one.
    RenewalNamesDiffer,
    /// The public key is of a type or size policy refuses.
    KeyRefused,
    /// An RSPF grant does not allow this enrolment.
    GrantRefused,
    /// The operator's verifier hook said no.
    VerifierRefused,
    /// An operator rejected the held request.
    OperatorRejected,
    /// The upstream CA refused the request a proxy forwarded (SCEP
    /// FAILURE; its failInfo and text are in the refusal's words).
    UpstreamRefused,
    /// A proxy stopped polling upstream: the request was still PENDING
    /// when its polling window ran out (seed 004 §9.2.1).
    PollingWindowExceeded,
    /// The server failed (storage, hook could not run).
    Internal,
}

impl RefusalReason {
    /// Stable name, as stored and logged.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::Unauthenticated => "unauthenticated",
            RefusalReason::BadCredential => "bad-credential",
            RefusalReason::CredentialRevoked => "credential-revoked",
            RefusalReason::CredentialExpired => "credential-expired",
            RefusalReason::TooEarly => "too-early",
            RefusalReason::NameNotAuthorised => "name-not-authorised",
            RefusalReason::RenewalNamesDiffer => "renewal-names-differ",
            RefusalReason::KeyRefused => "key-refused",
            RefusalReason::GrantRefused => "grant-refused",
            RefusalReason::VerifierRefused => "verifier-refused",
            RefusalReason::OperatorRejected => "operator-rejected",
            RefusalReason::UpstreamRefused => "upstream-refused",
            RefusalReason::PollingWindowExceeded => "polling-window-exceeded",
            RefusalReason::Internal => "internal",
        }
    }

    /// The reason a stored name stands for; `None` for a name this build
    /// does not know.
    pub fn parse(s: &str) -> Option<Self> {
        use RefusalReason as R;
        [
            R::Unauthenticated,
            R::BadCredential,
            R::CredentialRevoked,
            R::CredentialExpired,
            R::TooEarly,
            R::NameNotAuthorised,
            R::RenewalNamesDiffer,
            R::KeyRefused,
            R::GrantRefused,
            R::VerifierRefused,
            R::OperatorRejected,
            R::UpstreamRefused,
            R::PollingWindowExceeded,
            R::Internal,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: the typed reason and a sentence for the requester and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Why, typed.
    pub reason: RefusalReason,
    /// What was wrong, in words (never a secret).
    pub detail: String,
}

impl Refusal {
    /// A refusal for `reason`.
    pub fn new(reason: RefusalReason, detail: impl Into<String>) -> Self {
        Refusal {
            reason,
            detail: detail.into(),
        }
    }

    /// An internal failure: logged in full, told as "internal error".
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Refusal::new(RefusalReason::Internal, "internal error")
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}
