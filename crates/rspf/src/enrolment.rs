//! The Enrolment Key and what is derived from it (TS-0003 clause 8.3.3.2 of
//! the seed change request, with the derivations of clause 10.3 of TS-0003
//! V3.18.0, the latest text that has them).
//!
//! ```text
//! X             = TLS-Exporter("EXPORTER-oneM2M-Bootstrap", no context, 48)   10.3.1
//! RelativeKeId  = X[0..16]    (the 16 most significant octets)                  10.3.1
//! Ke            = X[16..48]   (the 32 least significant octets)                 10.3.1
//! KeId          = hexBinary(RelativeKeId) "@" MEF-FQDN                          10.3.4
//! Kre           = HMAC-SHA-256(Ke, KRE_LABEL)                                   choice 2
//! RelativeKreId = HMAC-SHA-256(Ke, KRE_ID_LABEL)[0..16]                         choice 2
//! KreId         = hexBinary(RelativeKreId) "@" MEF-FQDN                         10.3.4
//! Kc            = HMAC-SHA-256(Ke, "oneM2M Enrolment Key to Master Credential
//!                              derivation" || MAF-FQDN)                         10.3.2
//! KcId          = hexBinary(HMAC-SHA-256(Ke, KC_ID_LABEL || MAF-FQDN)[0..16])
//!                 "@" MAF-FQDN                                                  choice 3
//! K(target)     = HMAC-SHA-256(Ke, "oneM2M Enrolment Key to Usage-Constrained
//!                              Symmetric Key derivation" || SUID ||
//!                              Enrolment-Target-ID)                             10.3.7
//! K(target)Id   = hexBinary(HMAC-SHA-256(Ke, TARGET_ID_LABEL || SUID ||
//!                              Enrolment-Target-ID)[0..16]) "@" MEF-FQDN        choice 5
//! ```
//!
//! SUID is a MEF-established Security Usage Identifier (21, 22, 23:
//! [`crate::suid`], 8.3.9.9.2) and Enrolment-Target-ID the target's FQDN
//! form ([`crate::target`], 10.3.7). The **change-request profile**
//! ([`EnrolmentKeys::target_key_change_request`]) keeps the derivation
//! enrolkit used before it followed V3.18: SUID 11/12/13 for the seed's
//! security types and the target identifier as given. It exists only so
//! that enrolments recorded before stay usable until they expire; nothing
//! new is derived with it.
//!
//! Where the text is silent or ambiguous we chose, and each choice is one
//! constant here:
//!
//! 1. **Export**: no context value (RFC 5705's "no context" form; in TLS 1.3
//!    the same as an empty one), because 10.3.1 names none. "Most
//!    significant" octets are the first octets of the exporter output.
//! 2. **Kre, RelativeKreId** (extension): 8.3.2.1 names an "Enrolment
//!    Re-authentication Key" derived "as described in 10.3.1", which defines
//!    no such output and no identifier. A longer export would change Ke
//!    under TLS 1.3 (HKDF-Expand-Label binds the length), so both are
//!    derived from Ke with HMAC-SHA-256 under their own labels: one-way,
//!    separated from every other derivation, and available to both ends.
//! 3. **Kc input and KcId**: 10.3.2 (where the key is called Km) takes the
//!    MAF-ID, which table 8.8.3.2-1 makes the MAF-FQDN. 10.6 has the MAF
//!    assign the Master Credential's identifier (`MAF_RELATIVE_KmID@MAF-FQDN`);
//!    our derived KcId is an extension, used only when the MAF assigns none:
//!    the relative part comes from Ke and the MAF's FQDN under its own label,
//!    so both ends can compute it and it does not reveal RelativeKeId. (10.3.5
//!    is not circular: its KcID, V3.18's Secure Connection Key identifier,
//!    comes from a second export, `EXPORTER-oneM2M-Connection`, which we do
//!    not use.)
//! 4. **SUID in the HMAC input**: 10.3.7 does not say how SUID is encoded. We
//!    write it as its two decimal digits in ASCII (every SUID of 8.3.9.9.2
//!    has two; TS-0004 writes them in decimal), like the other string inputs.
//! 5. **Target key identifier** (extension): the text says the MEF returns a
//!    key but not an identifier for it; ours follows the
//!    `Relative@Issuer-FQDN` shape of 10.5.
//! 6. **hexBinary letter case** (extension: V3.18 does not fix it) is upper
//!    case when written (the canonical form of XML Schema hexBinary, which
//!    the name refers to) and either case when read.
//! 7. **Identifiers**: the MAF-FQDN is an LDH name ([`Fqdn`]); the
//!    Enrolment-Target-ID is NFKC-normalised UTF-8 in FQDN form
//!    ([`TargetFqdn`]; the mapping from absolute CSE-/AE-IDs is an
//!    extension, see [`crate::target`]).

use crate::error::{Result, RspfError};
use crate::fqdn::Fqdn;
use crate::kdf::hmac_sha256;
use crate::secret::Key256;
use crate::suid::{KeyPurpose, KeySource, Suid};
use crate::target::TargetFqdn;
use zeroize::Zeroize;

/// The IANA-registered TLS exporter label for oneM2M bootstrap (10.3.1).
pub const EXPORTER_LABEL: &str = "EXPORTER-oneM2M-Bootstrap";
/// Octets exported (10.3.1).
pub const EXPORT_LEN: usize = 48;
/// Length of a relative key identifier.
pub const RELATIVE_ID_LEN: usize = 16;
/// Label of the Kre derivation (choice 2).
pub const KRE_LABEL: &[u8] = b"oneM2M Enrolment Key to Enrolment Re-authentication Key derivation";
/// Label of the RelativeKreId derivation (choice 2).
pub const KRE_ID_LABEL: &[u8] = b"oneM2M Enrolment Key to Enrolment Re-authentication Key Identifier derivation";
/// Label of the Master Credential derivation (10.3.2).
pub const KC_LABEL: &[u8] = b"oneM2M Enrolment Key to Master Credential derivation";
/// Label of the Master Credential identifier derivation (choice 3).
pub const KC_ID_LABEL: &[u8] = b"oneM2M Enrolment Key to Master Credential Identifier derivation";
/// Label of the Enrolment Target key derivation (10.3.7).
pub const TARGET_KEY_LABEL: &[u8] = b"oneM2M Enrolment Key to Usage-Constrained Symmetric Key derivation";
/// Label of the Enrolment Target key identifier derivation (choice 5).
pub const TARGET_ID_LABEL: &[u8] = b"oneM2M Enrolment Key to Usage-Constrained Symmetric Key Identifier derivation";
/// Longest CSE-ID / AE-ID accepted as an Enrolment Target identifier.
pub const MAX_TARGET_ID: usize = 255;

/// A 16-octet relative key identifier (RelativeKeId, RelativeKreId…).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RelativeId(pub [u8; RELATIVE_ID_LEN]);

impl RelativeId {
    /// Read 32 hexadecimal digits, either case.
    pub fn from_hex(s: &str) -> Result<Self> {
        let bad = |why| RspfError::InvalidIdentifier {
            what: "relative key identifier",
            why,
        };
        let b = s.as_bytes();
        if b.len() != 2 * RELATIVE_ID_LEN {
            return Err(bad("not 32 hexadecimal digits"));
        }
        let mut out = [0u8; RELATIVE_ID_LEN];
        for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
            let digit = |c: u8| -> Result<u8> {
                (c as char)
                    .to_digit(16)
                    .map(|d| d as u8)
                    .ok_or(bad("not a hexadecimal digit"))
            };
            let (hi, lo) = match pair {
                [h, l] => (digit(*h)?, digit(*l)?),
                _ => return Err(bad("odd length")),
            };
            *o = (hi << 4) | lo;
        }
        Ok(RelativeId(out))
    }
}

impl core::fmt::Display for RelativeId {
    /// hexBinary, upper case (choice 6).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

/// A key identifier `hexBinary(relative)@FQDN` (KeId, KreId, KcId, target key ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyId<'a> {
    /// The relative part.
    pub relative: RelativeId,
    /// The issuer's FQDN (the MEF's, or the MAF's for KcId).
    pub fqdn: Fqdn<'a>,
}

impl<'a> KeyId<'a> {
    /// Parse `hex@fqdn`.
    pub fn parse(s: &'a str) -> Result<Self> {
        let (rel, fqdn) = s.split_once('@').ok_or(RspfError::InvalidIdentifier {
            what: "key identifier",
            why: "no '@'",
        })?;
        Ok(KeyId {
            relative: RelativeId::from_hex(rel)?,
            fqdn: Fqdn::new("key identifier domain", fqdn)?,
        })
    }
}

impl core::fmt::Display for KeyId<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}@{}", self.relative, self.fqdn)
    }
}

/// The values of the Enrolment Key generation procedure, held by both the
/// Enrolee and the MEF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentKeys {
    /// Enrolment Key.
    pub ke: Key256,
    /// RelativeKeId.
    pub relative_ke_id: RelativeId,
    /// Enrolment Re-authentication Key.
    pub kre: Key256,
    /// RelativeKreId.
    pub relative_kre_id: RelativeId,
}

impl EnrolmentKeys {
    /// From the 48 octets the TLS stack exported with [`EXPORTER_LABEL`] and
    /// no context.
    pub fn from_export(exported: &[u8]) -> Result<Self> {
        let (rel, ke) = match (exported.get(..RELATIVE_ID_LEN), exported.get(RELATIVE_ID_LEN..)) {
            (Some(r), Some(k)) if exported.len() == EXPORT_LEN => (r, k),
            _ => {
                return Err(RspfError::ExportLength {
                    got: exported.len(),
                    want: EXPORT_LEN,
                })
            }
        };
        let mut rid = [0u8; RELATIVE_ID_LEN];
        rid.copy_from_slice(rel);
        let ke = Key256::from_slice(ke).ok_or(RspfError::ExportLength {
            got: exported.len(),
            want: EXPORT_LEN,
        })?;
        Self::from_ke(ke, RelativeId(rid))
    }

    /// From a Ke and RelativeKeId obtained otherwise (a stored record).
    pub fn from_ke(ke: Key256, relative_ke_id: RelativeId) -> Result<Self> {
        let kre = hmac_sha256(ke.expose(), &[KRE_LABEL])?;
        let mut keys = EnrolmentKeys {
            ke,
            relative_ke_id,
            kre,
            relative_kre_id: RelativeId([0; RELATIVE_ID_LEN]),
        };
        keys.relative_kre_id = keys.relative_id(&[KRE_ID_LABEL])?;
        Ok(keys)
    }

    /// KeId = hexBinary(RelativeKeId)@MEF-FQDN (10.3.4).
    pub fn ke_id<'a>(&self, mef: Fqdn<'a>) -> KeyId<'a> {
        KeyId {
            relative: self.relative_ke_id,
            fqdn: mef,
        }
    }

    /// KreId = hexBinary(RelativeKreId)@MEF-FQDN (10.3.4).
    pub fn kre_id<'a>(&self, mef: Fqdn<'a>) -> KeyId<'a> {
        KeyId {
            relative: self.relative_kre_id,
            fqdn: mef,
        }
    }

    /// The Master Credential Kc for the MAF at `maf` (10.3.2) and its KcId (choice 3).
    pub fn master_credential<'a>(&self, maf: Fqdn<'a>) -> Result<(Key256, KeyId<'a>)> {
        let kc = hmac_sha256(self.ke.expose(), &[KC_LABEL, maf.as_str().as_bytes()])?;
        let relative = self.relative_id(&[KC_ID_LABEL, maf.as_str().as_bytes()])?;
        Ok((kc, KeyId { relative, fqdn: maf }))
    }

    /// The first 16 octets of HMAC-SHA-256(Ke, parts).
    fn relative_id(&self, parts: &[&[u8]]) -> Result<RelativeId> {
        let mut full = hmac_sha256(self.ke.expose(), parts)?.expose().to_owned();
        let mut rid = [0u8; RELATIVE_ID_LEN];
        for (d, s) in rid.iter_mut().zip(full.iter()) {
            *d = *s;
        }
        full.zeroize();
        Ok(RelativeId(rid))
    }

    /// The usage-constrained symmetric key for the Enrolment Target
    /// `target` and the MEF-established `suid` (10.3.7), and its identifier
    /// under the MEF's FQDN (choice 5).
    pub fn target_key<'a>(&self, suid: Suid, target: &TargetFqdn, mef: Fqdn<'a>) -> Result<(Key256, KeyId<'a>)> {
        if suid.source != KeySource::MefEstablished {
            return Err(RspfError::InvalidIdentifier {
                what: "SUID",
                why: "only MEF-established SUIDs (21, 22, 23) name keys derived from Ke",
            });
        }
        self.usage_constrained(&suid.ascii(), target.as_str().as_bytes(), mef)
    }

    /// The change-request profile: SUID 11/12/13 for the seed's security
    /// types and the identifier as given (see the module docs). Only for
    /// enrolments recorded before enrolkit followed V3.18.
    pub fn target_key_change_request<'a>(
        &self,
        usage: CredentialUsage,
        target: TargetId<'_>,
        mef: Fqdn<'a>,
    ) -> Result<(Key256, KeyId<'a>)> {
        let s = usage.change_request_suid();
        self.usage_constrained(&[b'0' + s / 10, b'0' + s % 10], target.0.as_bytes(), mef)
    }

    fn usage_constrained<'a>(&self, suid: &[u8; 2], id: &[u8], mef: Fqdn<'a>) -> Result<(Key256, KeyId<'a>)> {
        let key = hmac_sha256(self.ke.expose(), &[TARGET_KEY_LABEL, suid, id])?;
        let relative = self.relative_id(&[TARGET_ID_LABEL, suid, id])?;
        Ok((key, KeyId { relative, fqdn: mef }))
    }
}

/// What a directly established symmetric key may be used for: the
/// communication security types of the change request's Enrolment
/// Exchange. V3.18 names keys by purpose instead ([`Suid`]); the mapping
/// (an enrolkit choice, since the two axes differ) is
///
/// | security type | V3.18 SUID | why |
/// |---|---|---|
/// | PSK-SAEF   | 22 registration    | the TLS-PSK association with the Registrar CSE, which TS-0022 6.2.2.2 links to the registration information |
/// | PSK-ESPrim | 23 data collection | end-to-end protection of what the AE reports (TS-0022 6.2.2.3) |
/// | PSK-ESData | 23 data collection | likewise |
///
/// ESPrim and ESData therefore get the same key for one target; the MEF
/// refuses to grant both for one target. 21 (MAF client registration) has
/// no security type of the change request and is only reached by its SUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialUsage {
    /// PSK-based Security Association Establishment (TLS-PSK with the target).
    PskSaef,
    /// End-to-End Security of Primitives.
    PskEsPrim,
    /// End-to-End Security of Data.
    PskEsData,
}

impl CredentialUsage {
    /// Every usage.
    pub const ALL: [CredentialUsage; 3] = [
        CredentialUsage::PskSaef,
        CredentialUsage::PskEsPrim,
        CredentialUsage::PskEsData,
    ];

    /// The V3.18 SUID of a key for this usage derived from Ke (see the table).
    pub fn suid(self) -> Suid {
        match self {
            CredentialUsage::PskSaef => Suid::mef(KeyPurpose::Registration),
            CredentialUsage::PskEsPrim | CredentialUsage::PskEsData => Suid::mef(KeyPurpose::DataCollection),
        }
    }

    /// The number the change request's profile used (11 SAEF, 12 ESPrim,
    /// 13 ESData); in V3.18 these values mean pre-provisioned keys.
    pub fn change_request_suid(self) -> u8 {
        match self {
            CredentialUsage::PskSaef => 11,
            CredentialUsage::PskEsPrim => 12,
            CredentialUsage::PskEsData => 13,
        }
    }

    /// The usage the change request's profile numbered `n` (11, 12, 13).
    pub fn from_change_request_suid(n: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.change_request_suid() == n)
    }

    /// The name used in the Enrolment Exchange and in configuration.
    pub fn name(self) -> &'static str {
        match self {
            CredentialUsage::PskSaef => "PSK-SAEF",
            CredentialUsage::PskEsPrim => "PSK-ESPrim",
            CredentialUsage::PskEsData => "PSK-ESData",
        }
    }

    /// From [`CredentialUsage::name`] (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.name().eq_ignore_ascii_case(s))
    }
}

/// An Enrolment Target identifier as the change-request profile derived
/// with it (absolute CSE-ID or AE-ID, or a MAF's FQDN, as given): 1 to 255
/// printable ASCII characters without spaces. V3.18 derivations use
/// [`TargetFqdn`]; this is also the syntax check of identifiers carried in
/// messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetId<'a>(&'a str);

impl<'a> TargetId<'a> {
    /// Validate a target identifier.
    pub fn new(id: &'a str) -> Result<Self> {
        let bad = |why| {
            Err(RspfError::InvalidIdentifier {
                what: "Enrolment Target identifier",
                why,
            })
        };
        if id.is_empty() {
            return bad("empty");
        }
        if id.len() > MAX_TARGET_ID {
            return bad("longer than 255 characters");
        }
        if !id.bytes().all(|b| b.is_ascii_graphic()) {
            return bad("only printable ASCII without spaces (NFKC is then the identity)");
        }
        Ok(TargetId(id))
    }

    /// The identifier as given.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}
