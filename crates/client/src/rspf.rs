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
    Completion, CredentialResponse, EnrolmentInstructions, EnrolmentRequest, FetchRequest, Format, MafCredentialType,
    Message, Procedure, Refused,
};
use enrolkit_rspf::enrolment::{CredentialUsage, EnrolmentKeys, KeyId, TargetId, EXPORTER_LABEL, EXPORT_LEN};
use enrolkit_rspf::{Fqdn, Key256};
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
/// what the handshake negotiates (TLS 1.2 offers only the pinned suite,
/// [`enrolkit_rspf::gba::TLS12_CIPHER_SUITE`]). The identity to send is `btid`.
pub fn gba_psk(btid: &str, impi: &str, ks: Key256, mef_fqdn: &str) -> Result<enrolkit_tls::PskKey> {
    use enrolkit_rspf::gba::{naf_key, parse_btid, NafId, NafKey, UaProtocolId};
    Fqdn::new("MEF", mef_fqdn).map_err(unexpected)?;
    enrolkit_rspf::gba::check_impi(impi).map_err(unexpected)?;
    let (rand, _) = parse_btid(btid).map_err(unexpected)?;
    let (impi, mef) = (impi.to_owned(), mef_fqdn.to_owned());
    let derive = move |ctx: &enrolkit_tls::PskContext| {
        let protocol =
            UaProtocolId::for_tls_psk(ctx.version == Some(enrolkit_tls::TlsVersion::Tls12), ctx.cipher_suite);
        let naf = NafId {
            fqdn: Fqdn::new("MEF", &mef).ok()?,
            protocol,
        };
        let k = naf_key(NafKey::KsNaf, &ks, &rand, &impi, &naf).ok()?;
        Some(Zeroizing::new(k.expose().to_vec()))
    };
    Ok(enrolkit_tls::PskKey::Derived {
        tls12_ciphers: Some(enrolkit_rspf::gba::TLS12_CIPHER_OPENSSL.into()),
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
    /// What the MEF instructed.
    pub instructions: EnrolmentInstructions,
    /// The session it ran on.
    pub tls: TlsInfo,
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
        let target = TargetId::new(&d.target_id).map_err(unexpected)?;
        let (key, id) = e.keys.target_key(usage, target, mef).map_err(unexpected)?;
        out.push(Derived {
            target: d.target_id.clone(),
            usage: Some(usage),
            key,
            key_id: id.to_string(),
        });
    }
    Ok(out)
}

/// MEF Key Retrieval (clause 8.3.3.6) by the Enrolment Target `from`, over
/// a mutually authenticated `http` session: the key for `ke_id` (and
/// `usage`, when the path names one). A `Status=false` answer is returned as
/// [`CredentialResponse::Error`], not as an `Err`.
pub fn fetch(
    http: &TlsHttp,
    ke_id: &KeyId<'_>,
    usage: Option<CredentialUsage>,
    from: &str,
    format: Format,
) -> Result<(u16, CredentialResponse)> {
    let path = FetchRequest::path(&ke_id.relative, usage);
    let h = vec![
        ("accept", Zeroizing::new(format.media_type().to_owned())),
        ("from", Zeroizing::new(from.to_owned())),
    ];
    let x = http.request("GET", &path, &h, &mut |_| Ok(None))?;
    let r: CredentialResponse = decode_reply(&x).map_err(|e| match x.status {
        200 => e,
        s => refusal(s, x.content_type.as_deref(), &x.body),
    })?;
    Ok((x.status, r))
}
