//! GBA (3GPP TS 33.220) key derivation for both arrangements of the
//! GBA-based framework: the MEF as a GBA NAF (the seed: TLS-PSK with the
//! MEF keyed by Ks_NAF, the B-TID, in TS 24.109's `3GPP-bootstrapping.`
//! form or bare, as PSK identity) and the MEF as the BSF (TS-0003 V3.18.0
//! clause 8.3.2.3: Ke = Ks, KeID = B-TID, each Enrolment Target a NAF with
//! its own Ks_NAF).
//!
//! ```text
//! Ks_NAF     = KDF(Ks, "gba-me", RAND, IMPI, NAF_Id)   GBA_ME (4.5.2)
//! Ks_ext_NAF = KDF(Ks, "gba-me", RAND, IMPI, NAF_Id)   GBA_U  (5.3.2)
//! Ks_int_NAF = KDF(Ks, "gba-u",  RAND, IMPI, NAF_Id)   GBA_U  (5.3.2)
//! NAF_Id     = FQDN of the NAF || Ua security protocol identifier (Annex H)
//! Ks         = CK || IK
//! ```
//!
//! with the KDF of Annex B ([`crate::kdf`]), FC = 0x01.

use crate::error::{Result, RspfError};
use crate::fqdn::Fqdn;
use crate::kdf::{kdf, FC_GBA_NAF};
use crate::secret::Key256;

/// Length of RAND (the AKA challenge).
pub const RAND_LEN: usize = 16;
/// Longest IMPI accepted (an NAI, RFC 7542 §2.2 allows 253 octets).
pub const MAX_IMPI: usize = 253;

/// The five-octet Ua security protocol identifier of TS 33.220 Annex H:
/// one octet naming the organisation, four for the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UaProtocolId(pub [u8; 5]);

impl UaProtocolId {
    /// Shared-key TLS 1.3 (TS 33.222 clause 5.4.0.2): (0x01,0x00,0x00,0x00,0x07), Annex H.3.
    pub const TLS13_SHARED_KEY: UaProtocolId = UaProtocolId([0x01, 0x00, 0x00, 0x00, 0x07]);

    /// "TLS with shared keys" up to TLS 1.2 (TS 33.222 clause 5.3/5.4) with
    /// this cipher suite: (0x01,0x00,0x01,yy,zz), Annex H.3. No identifier is
    /// registered for oneM2M (Annex H.2 has no oneM2M organisation octet), so
    /// the MEF acting as a NAF for TLS-PSK uses these.
    pub fn tls_shared_key(cipher_suite: u16) -> UaProtocolId {
        let [hi, lo] = cipher_suite.to_be_bytes();
        UaProtocolId([0x01, 0x00, 0x01, hi, lo])
    }

    /// The identifier of a TLS-PSK handshake: with TLS 1.2 (`tls12`), the
    /// shared-key one of the negotiated cipher suite (`None` when the suite
    /// is not known: no key can be derived then); otherwise TLS 1.3's (a
    /// TLS 1.3 client computes its PSK before the version is settled).
    pub fn for_tls_psk(tls12: bool, cipher_suite: Option<u16>) -> Option<UaProtocolId> {
        if tls12 {
            cipher_suite.map(UaProtocolId::tls_shared_key)
        } else {
            Some(UaProtocolId::TLS13_SHARED_KEY)
        }
    }
}

/// TLS_PSK_WITH_AES_128_CBC_SHA256, which TS-0003 V3.18.0 10.2.2 makes
/// mandatory for TLS-PSK-based frameworks. GBA over TLS 1.2 takes it and
/// every other PSK suite the listener offers: both ends read the negotiated
/// suite inside the PSK callback and put it into NAF_Id.
pub const TLS_PSK_WITH_AES_128_CBC_SHA256: u16 = 0x00AE;

/// The PSK identity hint a GBA NAF sends with TLS 1.2 (TS 24.109 clause
/// 5.3.3.1.2 d; TS 36.508 table 4.7H-3).
pub const PSK_IDENTITY_HINT: &str = "3GPP-bootstrapping";

/// The PSK identity a GBA_ME UE sends (TS 24.109 clause 5.3.3.1.2 e: the
/// prefix `3GPP-bootstrapping` and the B-TID; TS 36.508 table 4.7H-5 spells
/// the concatenation out as `3GPP-bootstrapping`, `.`, B-TID).
pub fn psk_identity(btid: &str) -> String {
    format!("{PSK_IDENTITY_HINT}.{btid}")
}

/// The B-TID a PSK identity names: the 3GPP form ([`psk_identity`], also
/// read without the `.`, which no B-TID can begin with) or the seed's bare
/// B-TID; `None` for anything else. GBA_U's `3GPP-bootstrapping-uicc` and
/// GBA_Digest's `3GPP-bootstrapping-digest` prefixes are not read: the BSF
/// test double bootstraps GBA_ME only.
pub fn btid_of_identity(identity: &str) -> Option<&str> {
    let btid = match identity.strip_prefix(PSK_IDENTITY_HINT) {
        Some(rest) => rest.strip_prefix('.').unwrap_or(rest),
        None => identity,
    };
    parse_btid(btid).ok().map(|_| btid)
}

/// The NAF identifier: the NAF's FQDN followed by the Ua protocol identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NafId<'a> {
    /// The NAF's FQDN (here, the MEF's).
    pub fqdn: Fqdn<'a>,
    /// The Ua security protocol the key is for.
    pub protocol: UaProtocolId,
}

/// Which NAF-specific key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NafKey {
    /// Ks_NAF (GBA_ME): the key lives in the ME.
    KsNaf,
    /// Ks_ext_NAF (GBA_U): used in the ME, derived in the UICC.
    KsExtNaf,
    /// Ks_int_NAF (GBA_U): stays in the UICC.
    KsIntNaf,
}

impl NafKey {
    /// P0 of the derivation: "gba-me" or "gba-u".
    pub fn p0(self) -> &'static [u8] {
        match self {
            NafKey::KsNaf | NafKey::KsExtNaf => b"gba-me",
            NafKey::KsIntNaf => b"gba-u",
        }
    }
}

/// Check an IMPI: 1 to 253 printable ASCII characters (an NAI, TS 23.003 §2.2).
pub fn check_impi(impi: &str) -> Result<()> {
    let bad = |why| Err(RspfError::InvalidIdentifier { what: "IMPI", why });
    if impi.is_empty() {
        return bad("empty");
    }
    if impi.len() > MAX_IMPI {
        return bad("longer than 253 octets");
    }
    if !impi.bytes().all(|b| b.is_ascii_graphic()) {
        return bad("only printable ASCII without spaces");
    }
    Ok(())
}

/// Derive a NAF-specific key from `ks` (= CK || IK), RAND, the IMPI and the NAF_Id.
pub fn naf_key(which: NafKey, ks: &Key256, rand: &[u8; RAND_LEN], impi: &str, naf: &NafId<'_>) -> Result<Key256> {
    check_impi(impi)?;
    kdf(
        ks.expose(),
        FC_GBA_NAF,
        &[
            &[which.p0()],
            &[rand],
            &[impi.as_bytes()],
            &[naf.fqdn.as_str().as_bytes(), &naf.protocol.0],
        ],
    )
}

/// The B-TID (TS 33.220 clause 4.4.2): `base64(RAND)@BSF_servers_domain_name`,
/// written into `out` (at least 25 + the domain's length). Returns the text.
pub fn write_btid<'o>(rand: &[u8; RAND_LEN], bsf: &Fqdn<'_>, out: &'o mut [u8]) -> Result<&'o str> {
    use base64::Engine;
    let small = || RspfError::InvalidIdentifier {
        what: "B-TID buffer",
        why: "too small",
    };
    let domain = bsf.as_str().as_bytes();
    let need = 25 + domain.len();
    let dst = out.get_mut(..need).ok_or_else(small)?;
    let (b64, rest) = dst.split_at_mut(24);
    base64::engine::general_purpose::STANDARD
        .encode_slice(rand, b64)
        .map_err(|_| small())?;
    let (at, tail) = rest.split_first_mut().ok_or_else(small)?;
    *at = b'@';
    tail.copy_from_slice(domain);
    core::str::from_utf8(dst).map_err(|_| RspfError::InvalidIdentifier {
        what: "B-TID",
        why: "not UTF-8",
    })
}

/// Split a B-TID into its RAND and the BSF's domain name; the RAND must be
/// the canonical standard base64 of 16 octets.
pub fn parse_btid(btid: &str) -> Result<([u8; RAND_LEN], Fqdn<'_>)> {
    use base64::Engine;
    let bad = |why| RspfError::InvalidIdentifier { what: "B-TID", why };
    let (b64, domain) = btid.split_once('@').ok_or(bad("no '@'"))?;
    let fqdn = Fqdn::new("BSF domain of the B-TID", domain)?;
    if b64.len() != 24 {
        return Err(bad("RAND is not the base64 of 16 octets"));
    }
    let mut buf = [0u8; 18];
    let n = base64::engine::general_purpose::STANDARD
        .decode_slice(b64, &mut buf)
        .map_err(|_| bad("RAND is not canonical base64"))?;
    let rand: [u8; RAND_LEN] = buf
        .get(..n)
        .and_then(|b| b.try_into().ok())
        .ok_or(bad("RAND is not 16 octets"))?;
    Ok((rand, fqdn))
}
