//! The oneM2M Enrolee (TS-0003 clause 8.3, seed `001`) and the Enrolment
//! Target's side of MEF Key Retrieval.
//!
//! [`enrol`] runs the Enrolment Exchange on one TLS session with the MEF:
//! the session's exported keying material gives Ke and RelativeKeId
//! ([`EnrolmentKeys::from_export`]); the MEF's instructions carry the KeId it
//! derived, which must be ours (key confirmation: both ends exported the
//! same secret). What the instructions then authorise is derived locally by
//! [`derive()`]. [`fetch`] is what a MAF or an Enrolee B does with a KeId a
//! peer presented.

use crate::https::TlsHttp;
use crate::scep::{ClientError, Result};
use enrolkit_exchange::{
    Completion, CredentialResponse, EnrolmentInstructions, EnrolmentRequest, ExchangeRequest, ExchangeResponses,
    FetchRequest, Format, MafCredentialType, Message, Procedure, Refused,
};
use enrolkit_rspf::enrolment::{CredentialUsage, EnrolmentKeys, KeyId, EXPORTER_LABEL, EXPORT_LEN};
use enrolkit_rspf::{Fqdn, Key256};
use enrolkit_rspf::{Suid, TargetFqdn};
use enrolkit_tls::{KeyingExport, TlsInfo};
use zeroize::Zeroizing;

/// Path of the Enrolment Exchange on the MEF.
pub const ENROLMENT_PATH: &str = "/rspf/enrolment";
/// Path of the completion messages on the MEF.
pub const COMPLETION_PATH: &str = "/rspf/completion";

/// The keying export an Enrolee's TLS configuration needs (TS-0003 10.3.1).
pub fn keying_export() -> KeyingExport {
    KeyingExport {
        label: EXPORTER_LABEL.into(),
        context: None,
        len: EXPORT_LEN,
    }
}

/// The GBA-based framework's TLS-PSK key (TS-0003 8.3.2.3, TS 33.222): for
/// the B-TID `btid` of a bootstrap with `ks` (= CK || IK) and `impi`,
/// Ks_NAF with NAF_Id = the MEF's FQDN || the Ua protocol identifier of
/// what the handshake negotiates: TLS 1.3's, or TLS 1.2's with the suite
/// the server chose among the usual PSK suites (0x00AE included; the
/// callback reads it). The identity to send is
/// [`enrolkit_rspf::gba::psk_identity`]`(btid)`.
pub fn gba_psk(btid: &str, impi: &str, ks: Key256, mef_fqdn: &str) -> Result<enrolkit_tls::PskKey> {
    use enrolkit_rspf::gba::{naf_key, parse_btid, NafId, NafKey, UaProtocolId};
    Fqdn::new("MEF", mef_fqdn).map_err(unexpected)?;
    enrolkit_rspf::gba::check_impi(impi).map_err(unexpected)?;
    let (rand, _) = parse_btid(btid).map_err(unexpected)?;
    let (impi, mef) = (impi.to_owned(), mef_fqdn.to_owned());
    let derive = move |ctx: &enrolkit_tls::PskContext| {
        let protocol =
            UaProtocolId::for_tls_psk(ctx.version == Some(enrolkit_tls::TlsVersion::Tls12), ctx.cipher_suite)?;
        let naf = NafId {
            fqdn: Fqdn::new("MEF", &mef).ok()?,
            protocol,
        };
        let k = naf_key(NafKey::KsNaf, &ks, &rand, &impi, &naf).ok()?;
        Some(Zeroizing::new(k.expose().to_vec()))
    };
    Ok(enrolkit_tls::PskKey::Derived {
        tls12_ciphers: None,
        key: std::sync::Arc::new(derive),
    })
}

/// The outcome of an Enrolment Exchange.
#[derive(Debug)]
pub struct Enrolment {
    /// Ke, RelativeKeId, Kre, RelativeKreId.
    pub keys: EnrolmentKeys,
    /// The MEF's FQDN (from the confirmed KeId).
    pub mef_fqdn: String,
    /// What the MEF instructed (under the V3.18 profile, its responses read
    /// into the same shape: see [`enrol_v318`]).
    pub instructions: EnrolmentInstructions,
    /// The session it ran on.
    pub tls: TlsInfo,
    /// Under the V3.18 wire profile, the MEF's responses as received.
    pub v318: Option<ExchangeResponses>,
}

impl Enrolment {
    /// KeId.
    pub fn ke_id(&self) -> Result<String> {
        let f = Fqdn::new("MEF", &self.mef_fqdn).map_err(unexpected)?;
        Ok(self.keys.ke_id(f).to_string())
    }

    /// KreId (the PSK identity for re-authentication with Kre).
    pub fn kre_id(&self) -> Result<String> {
        let f = Fqdn::new("MEF", &self.mef_fqdn).map_err(unexpected)?;
        Ok(self.keys.kre_id(f).to_string())
    }
}

fn unexpected(e: impl std::fmt::Display) -> ClientError {
    ClientError::Unexpected(e.to_string())
}

fn headers(format: Format) -> Vec<(&'static str, Zeroizing<String>)> {
    vec![
        ("content-type", Zeroizing::new(format.media_type().to_owned())),
        ("accept", Zeroizing::new(format.media_type().to_owned())),
    ]
}

/// A refusal's reason, else the first line of the body.
fn refusal(status: u16, content_type: Option<&str>, body: &[u8]) -> ClientError {
    let reason = content_type
        .and_then(|c| Format::from_media_type(c).ok())
        .and_then(|f| enrolkit_exchange::decode::<Refused>(body, f).ok())
        .map(|r| r.reason)
        .unwrap_or_else(|| {
            String::from_utf8_lossy(body)
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(300)
                .collect()
        });
    ClientError::Http { status, body: reason }
}

fn decode_reply<M: Message>(x: &crate::https::Exchange) -> Result<M> {
    let ct = x.content_type.as_deref().unwrap_or("");
    let f = Format::from_media_type(ct).map_err(|e| unexpected(format!("answer: {e}")))?;
    enrolkit_exchange::decode(&x.body, f).map_err(|e| unexpected(format!("answer: {e}")))
}

/// Steps 1–5/7/9 of clause 8.3.3.1 on one TLS session: send `request`, take
/// Ke from the session, check the MEF's KeId is ours (and names
/// `expected_mef`, when given).
pub fn enrol(
    http: &TlsHttp,
    request: &EnrolmentRequest,
    format: Format,
    expected_mef: Option<&str>,
) -> Result<Enrolment> {
    let body = enrolkit_exchange::encode(request, format).map_err(unexpected)?;
    let x = http.request("POST", ENROLMENT_PATH, &headers(format), &mut |_| {
        Ok(Some(body.to_vec()))
    })?;
    if x.status != 200 {
        return Err(refusal(x.status, x.content_type.as_deref(), &x.body));
    }
    let instructions: EnrolmentInstructions = decode_reply(&x)?;
    let exported = x
        .tls
        .exported
        .as_ref()
        .ok_or_else(|| unexpected("the TLS session exported no keying material"))?;
    let keys = EnrolmentKeys::from_export(exported.expose()).map_err(unexpected)?;
    let theirs = KeyId::parse(&instructions.ke_id).map_err(unexpected)?;
    if theirs.relative != keys.relative_ke_id {
        return Err(unexpected(format!(
            "the MEF's KeId {} is not ours ({}): the two ends did not derive the same Enrolment Key",
            instructions.ke_id, keys.relative_ke_id
        )));
    }
    if let Some(m) = expected_mef {
        if theirs.fqdn.as_str() != m {
            return Err(unexpected(format!(
                "the KeId names MEF {}, expected {m}",
                theirs.fqdn.as_str()
            )));
        }
    }
    let mef_fqdn = theirs.fqdn.as_str().to_owned();
    Ok(Enrolment {
        keys,
        mef_fqdn,
        instructions,
        tls: x.tls,
        v318: None,
    })
}

/// The Enrolment Exchange in TS-0003 V3.18.0's wire profile
/// ([`enrolkit_exchange::v318`]) on one TLS session: send `request`
/// (table 8.3.2.1-1), read one response per instruction and the end of the
/// exchange, take Ke from the session. V3.18's messages carry no KeID, so
/// nothing confirms that both ends derived the same Ke here: the KeID is
/// ours, under `mef_fqdn` (which must therefore be known). The responses
/// are also read into [`EnrolmentInstructions`] so the rest of the flow is
/// shared: the certificate enrolment URI as the EST server, the MAF with
/// its FQDN from the key registration URI's host, the MAF lifetime (else
/// `expiry`, the Enrolment Expiry the Enrolee was configured with, table
/// 9.2.2.1-1) as the Enrolment Expiry; V3.18 grants no direct keys in the
/// exchange and names no Enrolee-ID or Registrar CSE.
pub fn enrol_v318(
    http: &TlsHttp,
    request: &ExchangeRequest,
    format: Format,
    mef_fqdn: &str,
    expiry: u64,
) -> Result<Enrolment> {
    use enrolkit_exchange::{CertificateEnrolment, InstructionType, MafEnrolment};
    let mef = Fqdn::new("MEF", mef_fqdn).map_err(unexpected)?;
    let body = enrolkit_exchange::encode(request, format).map_err(unexpected)?;
    let x = http.request("POST", ENROLMENT_PATH, &headers(format), &mut |_| {
        Ok(Some(body.to_vec()))
    })?;
    if x.status != 200 {
        return Err(refusal(x.status, x.content_type.as_deref(), &x.body));
    }
    let responses: ExchangeResponses = decode_reply(&x)?;
    let not_asked = |t: InstructionType| {
        unexpected(format!(
            "the MEF sent a {} response the Enrolee did not indicate",
            t.name()
        ))
    };
    for r in &responses.response {
        let asked = match r.instruction_type {
            InstructionType::CertificateEnrolment => request.certificate_enrolment,
            InstructionType::MafEnrolment => request.maf_enrolment,
            InstructionType::RemoteManagement => request.remote_management,
            InstructionType::EndOfExchange => true,
        };
        if !asked {
            return Err(not_asked(r.instruction_type));
        }
    }
    let exported = x
        .tls
        .exported
        .as_ref()
        .ok_or_else(|| unexpected("the TLS session exported no keying material"))?;
    let keys = EnrolmentKeys::from_export(exported.expose()).map_err(unexpected)?;
    let maf = responses.get(InstructionType::MafEnrolment);
    let instructions = EnrolmentInstructions {
        ke_id: keys.ke_id(mef).to_string(),
        enrolment_expiry: maf.and_then(|m| m.lifetime).unwrap_or(expiry),
        enrolee_id: None,
        certificate_enrolment: responses
            .get(InstructionType::CertificateEnrolment)
            .map(|c| CertificateEnrolment {
                security_type: Vec::new(),
                eku: Vec::new(),
                est_uri: c.uri.clone(),
            }),
        maf_enrolment: match maf {
            Some(m) => Some(MafEnrolment {
                credential_type: m
                    .credential_type
                    .ok_or_else(|| unexpected("the MAF response has no credential type"))?,
                maf_fqdn: m
                    .maf_fqdn()
                    .ok_or_else(|| unexpected("the MAF key registration URI names no MAF-FQDN"))?
                    .to_owned(),
                maf_uri: m.maf_key_registration_uri.clone(),
                security_type: Vec::new(),
            }),
            None => None,
        },
        direct_key: Vec::new(),
        registrar_cse: None,
    };
    instructions.validate().map_err(unexpected)?;
    Ok(Enrolment {
        keys,
        mef_fqdn: mef_fqdn.to_owned(),
        instructions,
        tls: x.tls,
        v318: Some(responses),
    })
}

/// Tell the MEF a procedure is complete (steps 6 and 8).
pub fn complete(http: &TlsHttp, ke_id: &str, procedure: Procedure, success: bool, format: Format) -> Result<()> {
    let c = Completion {
        ke_id: ke_id.to_owned(),
        procedure,
        success,
        reason: None,
    };
    let body = enrolkit_exchange::encode(&c, format).map_err(unexpected)?;
    let x = http.request("POST", COMPLETION_PATH, &headers(format), &mut |_| {
        Ok(Some(body.to_vec()))
    })?;
    match x.status {
        200 | 204 => Ok(()),
        s => Err(refusal(s, x.content_type.as_deref(), &x.body)),
    }
}

/// One symmetric credential the Enrolee derived.
pub struct Derived {
    /// The target: MAF FQDN, or Enrolee B's CSE-ID/AE-ID.
    pub target: String,
    /// `None` for the MAF's Master Credential, else the usage.
    pub usage: Option<CredentialUsage>,
    /// The key.
    pub key: Key256,
    /// Its identifier.
    pub key_id: String,
}

impl std::fmt::Debug for Derived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Derived")
            .field("target", &self.target)
            .field("usage", &self.usage)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Everything the instructions authorise the Enrolee to derive: Kc/KcId for
/// a symmetric-key MAF (clause 8.3.3.4 step 4), and a key per (Enrolee B,
/// security type) pair (clause 8.3.3.5 step 1).
pub fn derive(e: &Enrolment) -> Result<Vec<Derived>> {
    let mef = Fqdn::new("MEF", &e.mef_fqdn).map_err(unexpected)?;
    let mut out = Vec::new();
    if let Some(m) = e
        .instructions
        .maf_enrolment
        .as_ref()
        .filter(|m| m.credential_type == MafCredentialType::SymmetricKey)
    {
        let maf = Fqdn::new("MAF", &m.maf_fqdn).map_err(unexpected)?;
        let (key, id) = e.keys.master_credential(maf).map_err(unexpected)?;
        out.push(Derived {
            target: m.maf_fqdn.clone(),
            usage: None,
            key,
            key_id: id.to_string(),
        });
    }
    for d in &e.instructions.direct_key {
        let usage = d.security_type.credential_usage();
        // 10.3.7: the SUID of the usage and the target's FQDN form (NFKC).
        let target = TargetFqdn::from_id(&d.target_id).map_err(unexpected)?;
        let (key, id) = e.keys.target_key(usage.suid(), &target, mef).map_err(unexpected)?;
        out.push(Derived {
            target: d.target_id.clone(),
            usage: Some(usage),
            key,
            key_id: id.to_string(),
        });
    }
    Ok(out)
}

/// MEF Key Retrieval by the Enrolment Target `from`, over a mutually
/// authenticated `http` session, in TS-0003 V3.18.0's form (8.3.2.1 step
/// f): `GET /fetchCredentials/<KeID>/<SUID>` with the requestor in
/// `X-M2M-Origin` (no SUID for a MAF's Master Credential). A `Status=false`
/// answer is returned as [`CredentialResponse::Error`], not as an `Err`.
pub fn fetch(
    http: &TlsHttp,
    ke_id: &KeyId<'_>,
    suid: Option<Suid>,
    from: &str,
    format: Format,
) -> Result<(u16, CredentialResponse)> {
    let path = FetchRequest::path(ke_id, suid);
    let h = vec![
        ("accept", Zeroizing::new(format.media_type().to_owned())),
        ("x-m2m-origin", Zeroizing::new(from.to_owned())),
    ];
    let x = http.request("GET", &path, &h, &mut |_| Ok(None))?;
    let r: CredentialResponse = decode_reply(&x).map_err(|e| match x.status {
        200 => e,
        s => refusal(s, x.content_type.as_deref(), &x.body),
    })?;
    Ok((x.status, r))
}

/// Largest `enrolment.toml` or GBA bootstrap file read.
/// Key Retrieval of Ks_NAF by B-TID when the MEF is the BSF
/// ([`enrolkit_exchange::GbaFetchRequest`], an extension standing in for
/// Zn) by the NAF `from`, for the Ua protocol identifier `ua`.
pub fn fetch_gba(
    http: &TlsHttp,
    btid: &str,
    ua: [u8; 5],
    from: &str,
    format: Format,
) -> Result<(u16, CredentialResponse)> {
    let path = enrolkit_exchange::GbaFetchRequest::path(btid, ua);
    let h = vec![
        ("accept", Zeroizing::new(format.media_type().to_owned())),
        ("x-m2m-origin", Zeroizing::new(from.to_owned())),
    ];
    let x = http.request("GET", &path, &h, &mut |_| Ok(None))?;
    let r: CredentialResponse = decode_reply(&x).map_err(|e| match x.status {
        200 => e,
        s => refusal(s, x.content_type.as_deref(), &x.body),
    })?;
    Ok((x.status, r))
}

const MAX_STATE: u64 = 256 * 1024;

fn read_small(path: &std::path::Path) -> Result<Zeroizing<String>> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| unexpected(format!("{}: {e}", path.display())))?;
    // Sized up front: growing by reallocation would free copies of Ke unzeroized.
    let mut text = Zeroizing::new(String::with_capacity(MAX_STATE as usize + 1));
    f.take(MAX_STATE + 1)
        .read_to_string(&mut text)
        .map_err(|e| unexpected(format!("{}: {e}", path.display())))?;
    if text.len() as u64 > MAX_STATE {
        return Err(unexpected(format!("{}: larger than {MAX_STATE} bytes", path.display())));
    }
    Ok(text)
}

/// What an Enrolee keeps after an Enrolment Exchange (`enrolment.toml`,
/// mode 0600 since it holds Ke and the derived keys): enough to derive
/// further authorised keys later and to re-authenticate with Kre.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EnrolmentState {
    /// The MEF's FQDN.
    pub mef_fqdn: String,
    /// KeId (`HEX@mef-fqdn`).
    pub ke_id: String,
    /// KreId: the PSK identity of a re-authentication with Kre.
    pub kre_id: String,
    /// Ke, hex.
    pub ke: String,
    /// When the enrolment expires (Unix seconds).
    pub expires: u64,
    /// The Enrolee-ID the MEF assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrolee_id: Option<String>,
    /// The Registrar CSE the MEF named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registrar_cse: Option<String>,
    /// (target, security type) pairs the MEF authorised direct keys for.
    #[serde(default)]
    pub authorised: Vec<(String, String)>,
    /// `v3.18` when the enrolment ran in TS-0003 V3.18.0's wire profile,
    /// whose exchange names no targets: the Enrolee derives for any, and
    /// the MEF decides which targets may fetch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire_profile: Option<String>,
    /// The keys derived at enrolment.
    #[serde(default)]
    pub credential: Vec<StoredCredential>,
}

/// One derived key in [`EnrolmentState`].
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StoredCredential {
    /// MAF FQDN, or Enrolee B's CSE-ID/AE-ID.
    pub target: String,
    /// `MAF`, or the credential usage's name.
    pub usage: String,
    /// The key's identifier.
    pub key_id: String,
    /// The key, hex.
    pub key: String,
}

impl Drop for EnrolmentState {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.ke);
        for c in &mut self.credential {
            zeroize::Zeroize::zeroize(&mut c.key);
        }
    }
}

impl EnrolmentState {
    /// The state of enrolment `e`, whose derived keys are `derived`, made at `now` (Unix seconds).
    pub fn new(e: &Enrolment, derived: &[Derived], now: u64) -> Result<EnrolmentState> {
        Ok(EnrolmentState {
            mef_fqdn: e.mef_fqdn.clone(),
            ke_id: e.ke_id()?,
            kre_id: e.kre_id()?,
            ke: hex::encode(e.keys.ke.expose()),
            expires: now.saturating_add(e.instructions.enrolment_expiry),
            enrolee_id: e.instructions.enrolee_id.clone(),
            registrar_cse: e.instructions.registrar_cse.clone(),
            authorised: e
                .instructions
                .direct_key
                .iter()
                .map(|d| (d.target_id.clone(), d.security_type.name().to_owned()))
                .collect(),
            wire_profile: e.v318.as_ref().map(|_| "v3.18".to_owned()),
            credential: derived
                .iter()
                .map(|d| StoredCredential {
                    target: d.target.clone(),
                    usage: d.usage.map(|u| u.name()).unwrap_or("MAF").to_owned(),
                    key_id: d.key_id.clone(),
                    key: hex::encode(d.key.expose()),
                })
                .collect(),
        })
    }

    /// The TOML text (zeroized on drop: it holds keys).
    pub fn to_toml(&self) -> Result<Zeroizing<String>> {
        toml::to_string_pretty(self).map(Zeroizing::new).map_err(unexpected)
    }

    /// Read `path` and rebuild the Enrolment Keys from it.
    pub fn read(path: &std::path::Path) -> Result<(EnrolmentState, EnrolmentKeys)> {
        let text = read_small(path)?;
        Self::from_toml(&text).map_err(|e| unexpected(format!("{}: {e}", path.display())))
    }

    /// Parse the text of an `enrolment.toml` and rebuild the Enrolment Keys
    /// from it: Ke must be 32 bytes of hex, the KeId well formed, and the
    /// KreId the one Ke derives (a file edited by hand is refused, not used
    /// to authenticate as someone else).
    pub fn from_toml(text: &str) -> Result<(EnrolmentState, EnrolmentKeys)> {
        let mut s: EnrolmentState = toml::from_str(text).map_err(|e| unexpected(e.message()))?;
        let id = KeyId::parse(&s.ke_id).map_err(|e| unexpected(format!("ke-id: {e}")))?;
        let ke = Zeroizing::new(hex::decode(&s.ke).map_err(|_| unexpected("ke is not hex"))?);
        let ke = Key256::from_slice(&ke).ok_or_else(|| unexpected("ke is not 32 bytes"))?;
        let keys =
            EnrolmentKeys::from_ke(ke, enrolkit_rspf::enrolment::RelativeId(id.relative.0)).map_err(unexpected)?;
        let kre = KeyId::parse(&s.kre_id).map_err(|e| unexpected(format!("kre-id: {e}")))?;
        if kre.relative.0 != keys.relative_kre_id.0 || kre.fqdn.as_str() != id.fqdn.as_str() {
            return Err(unexpected("kre-id is not the one ke derives"));
        }
        // The letter case of a KeId's hex is not fixed (TS-0003 10.3.4): a
        // file edited by hand may hold lower case; kept in the one form
        // this side sends and writes.
        let (ke_id, kre_id) = (id.to_string(), kre.to_string());
        s.ke_id = ke_id;
        s.kre_id = kre_id;
        Ok((s, keys))
    }

    /// The re-authentication PSK: (KreId, Kre).
    pub fn kre_psk(&self, keys: &EnrolmentKeys) -> (String, enrolkit_tls::PskKey) {
        (
            self.kre_id.clone(),
            enrolkit_tls::PskKey::Fixed(Zeroizing::new(keys.kre.expose().to_vec())),
        )
    }
}

/// The UE side of a GBA bootstrap (`mef rspf gba-stub bootstrap --out`, or
/// what a UE's AKA run leaves): B-TID, IMPI, Ks and its expiry.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GbaBootstrap {
    /// B-TID: the PSK identity.
    pub btid: String,
    /// The subscriber's IMPI.
    pub impi: String,
    /// Ks = CK || IK, hex.
    pub ks: String,
    /// Expiry (Unix seconds).
    pub expires: i64,
}

impl Drop for GbaBootstrap {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.ks);
    }
}

impl GbaBootstrap {
    /// Read a bootstrap file.
    pub fn read(path: &std::path::Path) -> Result<GbaBootstrap> {
        let text = read_small(path)?;
        Self::from_toml(&text).map_err(|e| unexpected(format!("{}: {e}", path.display())))
    }

    /// Parse the text of a bootstrap file.
    pub fn from_toml(text: &str) -> Result<GbaBootstrap> {
        toml::from_str(text).map_err(|e| unexpected(e.message()))
    }

    /// TS-0003 V3.18.0 8.3.2.3 with the MEF as the BSF: Ks_NAF for the
    /// Enrolment Target `target` as the NAF (NAF_Id = its FQDN form and the
    /// Ua protocol identifier `ua`), and that FQDN; refuses an expired
    /// bootstrap (`now` in Unix seconds). The MEF gives the target the same
    /// key when it fetches by B-TID.
    pub fn naf_key(&self, target: &str, ua: [u8; 5], now: i64) -> Result<(Key256, String)> {
        use enrolkit_rspf::gba::{naf_key, parse_btid, NafId, NafKey, UaProtocolId};
        if self.expires <= now {
            return Err(unexpected("the GBA bootstrap has expired; bootstrap again"));
        }
        let ks = Zeroizing::new(hex::decode(&self.ks).map_err(|_| unexpected("ks is not hex"))?);
        let ks = Key256::from_slice(&ks).ok_or_else(|| unexpected("ks is not 32 bytes"))?;
        let (rand, _) = parse_btid(&self.btid).map_err(unexpected)?;
        let t = TargetFqdn::from_id(target).map_err(unexpected)?;
        let fqdn = Fqdn::new("NAF", t.as_str()).map_err(unexpected)?;
        let naf = NafId {
            fqdn,
            protocol: UaProtocolId(ua),
        };
        let key = naf_key(NafKey::KsNaf, &ks, &rand, &self.impi, &naf).map_err(unexpected)?;
        Ok((key, t.as_str().to_owned()))
    }

    /// The TLS-PSK (`3GPP-bootstrapping.` B-TID, Ks_NAF derivation) for the MEF `mef_fqdn`; refuses
    /// an expired bootstrap (`now` in Unix seconds).
    pub fn psk(&self, mef_fqdn: &str, now: i64) -> Result<(String, enrolkit_tls::PskKey)> {
        if self.expires <= now {
            return Err(unexpected("the GBA bootstrap has expired; bootstrap again"));
        }
        let ks = Zeroizing::new(hex::decode(&self.ks).map_err(|_| unexpected("ks is not hex"))?);
        let ks = Key256::from_slice(&ks).ok_or_else(|| unexpected("ks is not 32 bytes"))?;
        // TS 24.109's form of the identity; the MEF also reads the bare B-TID.
        let identity = enrolkit_rspf::gba::psk_identity(&self.btid);
        Ok((identity, gba_psk(&self.btid, &self.impi, ks, mef_fqdn)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use enrolkit_rspf::enrolment::RelativeId;

    fn state_text(kre_id: Option<&str>) -> String {
        let ke = [7u8; 32];
        let rel = RelativeId([0xab; 16]);
        let keys = EnrolmentKeys::from_ke(Key256::from_slice(&ke).unwrap(), rel).unwrap();
        let kre = kre_id
            .map(str::to_owned)
            .unwrap_or(format!("{}@mef.example.net", keys.relative_kre_id));
        format!(
            "mef-fqdn = \"mef.example.net\"\nke-id = \"{}@mef.example.net\"\nkre-id = \"{kre}\"\nke = \"{}\"\nexpires = 9\n",
            keys.relative_ke_id,
            hex::encode(ke)
        )
    }

    #[test]
    fn an_enrolment_state_reads_back_and_rebuilds_its_keys() {
        let (s, keys) = EnrolmentState::from_toml(&state_text(None)).unwrap();
        assert_eq!(keys.ke.expose(), &[7u8; 32]);
        assert_eq!(s.kre_id, format!("{}@mef.example.net", keys.relative_kre_id));
        let again = s.to_toml().unwrap();
        let (s2, _) = EnrolmentState::from_toml(&again).unwrap();
        assert_eq!((s2.ke_id.as_str(), s2.expires), (s.ke_id.as_str(), 9));
    }

    /// Found by `rspf_state` (fuzz/corpus): a KeId written in lower case
    /// loaded as written, so the state named its keys in another form than
    /// the one this side derives and sends.
    #[test]
    fn a_lower_case_ke_id_is_kept_in_the_one_form() {
        let text = state_text(None);
        let (canonical, keys) = EnrolmentState::from_toml(&text).unwrap();
        let relative = keys.relative_ke_id.to_string();
        let lower = text.replace(&relative, &relative.to_lowercase());
        assert_ne!(lower, text);
        let (s, k) = EnrolmentState::from_toml(&lower).unwrap();
        assert_eq!(s.ke_id, canonical.ke_id);
        assert!(s.ke_id.starts_with(&k.relative_ke_id.to_string()));
        assert!(s.to_toml().unwrap().contains(&canonical.ke_id));
    }

    #[test]
    fn an_edited_enrolment_state_is_refused() {
        let other = format!("{}@mef.example.net", RelativeId([1; 16]));
        let e = EnrolmentState::from_toml(&state_text(Some(&other))).err().unwrap();
        assert!(e.to_string().contains("kre-id"), "{e}");
        let foreign = state_text(None).replace("@mef.example.net\"\nke =", "@other.example.net\"\nke =");
        assert!(EnrolmentState::from_toml(&foreign).is_err());
        let short = state_text(None).replace(&hex::encode([7u8; 32]), "0707");
        assert!(EnrolmentState::from_toml(&short)
            .err()
            .unwrap()
            .to_string()
            .contains("32 bytes"));
        assert!(EnrolmentState::from_toml("ke = 1").is_err());
        assert!(EnrolmentState::from_toml(&format!("{}surprise = 1\n", state_text(None))).is_err());
    }

    #[test]
    fn a_gba_bootstrap_parses_and_refuses_when_expired() {
        let text = format!(
            "btid = \"{}@bsf.example.net\"\nimpi = \"001010000000001@ims.example.net\"\nks = \"{}\"\nexpires = 100\n",
            "QUJD",
            "11".repeat(32)
        );
        let b = GbaBootstrap::from_toml(&text).unwrap();
        assert!(b
            .psk("mef.example.net", 200)
            .err()
            .unwrap()
            .to_string()
            .contains("expired"));
        assert!(GbaBootstrap::from_toml("btid = 1").is_err());
    }
}
