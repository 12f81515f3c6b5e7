//! The arguments of `enrol rspf`.

use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;

/// How this end authenticates the TLS session with the MEF.
#[derive(Args)]
pub struct Credentials {
    /// MEF: `https://host:port`.
    #[arg(long, default_value = "https://127.0.0.1:8444")]
    pub mef: String,
    /// Trust anchor (PEM) for the MEF's certificate (certificate sessions).
    #[arg(long)]
    pub mef_ca: Option<PathBuf>,
    /// Pre-provisioned symmetric key framework: KpmId …
    #[arg(long)]
    pub psk_identity: Option<String>,
    /// … and the file holding Kpm (hex or raw).
    #[arg(long)]
    pub psk_file: Option<PathBuf>,
    /// Certificate-based framework (or a target's TLS credential): certificate chain (PEM) …
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// … and its key.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// GBA-based framework: the UE's bootstrap (`mef rspf gba-stub bootstrap --out`).
    #[arg(long)]
    pub gba: Option<PathBuf>,
    /// Re-authenticate with Kre: the state directory of an earlier `enrol rspf enrol`.
    #[arg(long)]
    pub kre_state: Option<PathBuf>,
    /// The MEF's FQDN (GBA: part of NAF_Id; otherwise checked against the KeId).
    #[arg(long)]
    pub mef_fqdn: Option<String>,
    /// Use only this TLS version.
    #[arg(long, value_enum)]
    pub tls: Option<TlsArg>,
    /// Message format.
    #[arg(long, value_enum, default_value = "json")]
    pub format: FormatArg,
}

/// TLS version.
#[derive(Clone, Copy, ValueEnum)]
pub enum TlsArg {
    /// TLS 1.2.
    #[value(name = "1.2")]
    V12,
    /// TLS 1.3.
    #[value(name = "1.3")]
    V13,
}

/// Serialisation.
#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// application/json.
    Json,
    /// application/xml.
    Xml,
}

/// `enrol rspf` commands.
#[derive(Subcommand)]
pub enum RspfCmd {
    /// Run the Enrolment Exchange, then what it instructs: certificate
    /// enrolment over EST, MAF and direct keys; keep the state in --out.
    Enrol {
        #[command(flatten)]
        creds: Credentials,
        /// Enrolment-Token from the MEF's operator (may begin with '-').
        #[arg(long, allow_hyphen_values = true)]
        token: Option<String>,
        /// Say the Enrolee does not support certificate enrolment.
        #[arg(long)]
        no_certificate: bool,
        /// Say the Enrolee does not support MAF procedures.
        #[arg(long)]
        no_maf: bool,
        /// Subject of the certificate request (default: CN=the Enrolee-ID).
        #[arg(long)]
        subject: Option<String>,
        /// Enrolment Exchange message set, as the MEF is configured for this
        /// Enrolee: `change-request` (default) or `v3.18` (TS-0003 V3.18.0
        /// 8.3.2.1; needs --mef-fqdn and --enrolment-expiry, takes no --token).
        #[arg(long, default_value = "change-request")]
        wire_profile: String,
        /// V3.18: indicate Remote Management support.
        #[arg(long)]
        remote_management: bool,
        /// V3.18: the Enrolment Expiry this Enrolee is configured with (seconds).
        #[arg(long)]
        enrolment_expiry: Option<u64>,
        /// State directory: enrolment.toml (0600), and key.pem/cert.pem/ca.pem when a certificate is enrolled.
        #[arg(long)]
        out: PathBuf,
    },
    /// Derive a key from the stored Ke for a target and security type (the
    /// instructions must have authorised the pair); prints its identifier.
    Derive {
        /// State directory of `enrol rspf enrol`.
        #[arg(long)]
        state: PathBuf,
        /// Enrolee B's CSE-ID or AE-ID.
        #[arg(long)]
        target: String,
        /// SAEF, ESPrim or ESData.
        #[arg(long)]
        security_type: String,
        /// Write the key (hex) here (0600).
        #[arg(long)]
        out: PathBuf,
    },
    /// GBA with the MEF as the BSF (TS-0003 V3.18.0 8.3.2.3): Ks_NAF for a
    /// target NAF from the UE's bootstrap; prints the B-TID (the KeID) and
    /// the NAF's FQDN.
    GbaKey {
        /// The UE's bootstrap (`mef rspf gba-stub bootstrap --out`).
        #[arg(long)]
        gba: PathBuf,
        /// The Enrolment Target: absolute CSE-ID or AE-ID, or an FQDN (its FQDN form starts NAF_Id).
        #[arg(long)]
        target: String,
        /// The Ua security protocol identifier ending NAF_Id (ten hex digits; default 0100000007).
        #[arg(long)]
        ua: Option<String>,
        /// Write the key (hex) here (0600).
        #[arg(long)]
        out: PathBuf,
    },
    /// Enrolment Target: fetch the key for a KeId from the MEF (MEF Key Retrieval).
    Fetch {
        #[command(flatten)]
        creds: Credentials,
        /// The KeId the Enrolee presented (or, with the MEF as the GBA BSF,
        /// its B-TID: the answer is then Ks_NAF for this target as the NAF).
        #[arg(long)]
        ke_id: String,
        /// With a B-TID: the Ua security protocol identifier ending NAF_Id
        /// (ten hex digits; default 0100000007, shared-key TLS 1.3).
        #[arg(long)]
        ua: Option<String>,
        /// SUID (TS-0003 8.3.9.9.2): 22 for a PSK-SAEF key, 23 for PSK-ESPrim
        /// and PSK-ESData, 21 MAF client registration; none for a MAF's Master Credential.
        #[arg(long)]
        suid: Option<String>,
        /// Our identity (`X-M2M-Origin`): absolute CSE-ID or AE-ID, an FQDN, or the MAF FQDN.
        #[arg(long)]
        from: String,
        /// Write the key (hex) here (0600).
        #[arg(long)]
        out: PathBuf,
    },
}
