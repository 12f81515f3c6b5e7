//! MAC protection: PBMAC1 (RFC 9481 §6.1.2, RFC 8018 §7.1) and the legacy
//! PasswordBasedMac (RFC 4210 §5.1.3.1, RFC 9481 §6.1.1).
//!
//! ```text
//! -- RFC 4210 §5.1.3.1
//! id-PasswordBasedMac OBJECT IDENTIFIER ::= { 1 2 840 113533 7 66 13 }
//! PBMParameter ::= SEQUENCE {
//!     salt                OCTET STRING,
//!     owf                 AlgorithmIdentifier{DIGEST-ALGORITHM, {...}},
//!     iterationCount      INTEGER,
//!     mac                 AlgorithmIdentifier{MAC-ALGORITHM, {...}} }
//!
//! -- RFC 8018 §7.1, Appendix A.2, A.5
//! PBMAC1-params ::= SEQUENCE {
//!     keyDerivationFunc AlgorithmIdentifier {{PBMAC1-KDFs}},
//!     messageAuthScheme AlgorithmIdentifier {{PBMAC1-MACs}} }
//! PBKDF2-params ::= SEQUENCE {
//!     salt CHOICE { specified OCTET STRING, otherSource AlgorithmIdentifier },
//!     iterationCount INTEGER (1..MAX),
//!     keyLength INTEGER (1..MAX) OPTIONAL,
//!     prf AlgorithmIdentifier {{PBKDF2-PRFs}} DEFAULT algid-hmacWithSHA1 }
//! ```
//!
//! PasswordBasedMac: `BASEKEY = owf^iterationCount(secret ‖ salt)` — the
//! one-way function applied iterationCount times in all, the first time to
//! the secret followed by the salt — then `mac(BASEKEY, ProtectedPart)`.
//! PBMAC1: `key = PBKDF2(prf, secret, salt, iterationCount, keyLength)`,
//! then `messageAuthScheme(key, ProtectedPart)`.
//!
//! | choice where the RFCs leave room | value | why |
//! |---|---|---|
//! | PasswordBasedMac iterationCount accepted | [`MacLimits::DEFAULT`]: 100 ..= 100 000 | RFC 4210 "MUST be a minimum of 100"; the upper bound stops a peer from making us hash for seconds |
//! | PBKDF2 iterationCount accepted | 1 000 ..= 100 000 | RFC 8018 §4.2 recommends at least 1 000; same DoS bound |
//! | salt length accepted | 8 ..= 128 bytes | RFC 8018 §4.1: at least 64 bits |
//! | PBKDF2 keyLength accepted | 16 bytes ..= the PRF's output length (one PBKDF2 block); absent = the MAC's output length, within the same bounds | the work a sender can ask for is iterationCount × blocks; more blocks add nothing to a MAC key |
//! | what we send | PBMAC1, PBKDF2-HMAC-SHA256, 10 000 iterations, 16-byte salt, keyLength 32, HMAC-SHA256; or PasswordBasedMac with owf SHA-256, 10 000 iterations, HMAC-SHA256 for peers without PBMAC1 (OpenSSL 3.0) | RFC 9481 §6.1 |
//! | HMAC parameters | accepted absent or NULL; sent NULL in PBMAC1 (RFC 8018's `{NULL IDENTIFIED BY …}`), absent in PBMParameter (as OpenSSL writes it) | |
//!
//! The secret and every derived key live in zeroizing buffers; MACs are
//! compared in constant time.

use crate::{oid, CmpError, Result};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, OctetString};
use der::{Decode, Encode, Sequence, Tag, Tagged};
use hmac::{Hmac as HmacImpl, Mac};
use rand_core::{CryptoRng, RngCore};
use sha2::Digest;
use spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

pub use cmpv2::parameter::PbmParameter;

/// A shared secret (password or one-time challenge), zeroized on drop and never printed.
#[derive(Clone)]
pub struct SharedSecret(Zeroizing<Vec<u8>>);

impl SharedSecret {
    /// Wrap secret bytes.
    pub fn new(bytes: &[u8]) -> Self {
        SharedSecret(Zeroizing::new(bytes.to_vec()))
    }
    /// The secret.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSecret(<redacted>)")
    }
}

/// An HMAC (as PBMAC1 PRF and MAC scheme, and PasswordBasedMac mac).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HmacAlgorithm {
    /// HMAC-SHA1 (legacy; OpenSSL 3.0's default PasswordBasedMac mac).
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA384.
    Sha384,
    /// HMAC-SHA512.
    Sha512,
}

impl HmacAlgorithm {
    /// From hmac-sha1, id-hmacWithSHA1/256/384/512.
    pub fn from_oid(o: &ObjectIdentifier) -> Option<Self> {
        Some(match *o {
            oid::HMAC_SHA1 | oid::HMAC_WITH_SHA1 => Self::Sha1,
            oid::HMAC_WITH_SHA256 => Self::Sha256,
            oid::HMAC_WITH_SHA384 => Self::Sha384,
            oid::HMAC_WITH_SHA512 => Self::Sha512,
            _ => return None,
        })
    }
    /// The id-hmacWithSHA* OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha1 => oid::HMAC_WITH_SHA1,
            Self::Sha256 => oid::HMAC_WITH_SHA256,
            Self::Sha384 => oid::HMAC_WITH_SHA384,
            Self::Sha512 => oid::HMAC_WITH_SHA512,
        }
    }
    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
    /// HMAC of `data` under `key`.
    pub fn mac(self, key: &[u8], data: &[u8]) -> Result<Vec<u8>> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Result<Vec<u8>> {
            let mut m =
                <M as hmac::digest::KeyInit>::new_from_slice(key).map_err(|_| CmpError::UnsupportedAlgorithm {
                    kind: "mac",
                    oid: "key length".into(),
                })?;
            m.update(data);
            Ok(m.finalize().into_bytes().to_vec())
        }
        match self {
            Self::Sha1 => run::<HmacImpl<sha1::Sha1>>(key, data),
            Self::Sha256 => run::<HmacImpl<sha2::Sha256>>(key, data),
            Self::Sha384 => run::<HmacImpl<sha2::Sha384>>(key, data),
            Self::Sha512 => run::<HmacImpl<sha2::Sha512>>(key, data),
        }
    }
    fn pbkdf2(self, secret: &[u8], salt: &[u8], rounds: u32, out: &mut [u8]) {
        match self {
            Self::Sha1 => pbkdf2::pbkdf2_hmac::<sha1::Sha1>(secret, salt, rounds, out),
            Self::Sha256 => pbkdf2::pbkdf2_hmac::<sha2::Sha256>(secret, salt, rounds, out),
            Self::Sha384 => pbkdf2::pbkdf2_hmac::<sha2::Sha384>(secret, salt, rounds, out),
            Self::Sha512 => pbkdf2::pbkdf2_hmac::<sha2::Sha512>(secret, salt, rounds, out),
        }
    }
}

/// The one-way function of PasswordBasedMac.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owf {
    /// SHA-1 (RFC 4210's original MUST; legacy peers).
    Sha1,
    /// SHA-256 (RFC 9481 §6.1.1 MUST; OpenSSL's default).
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Owf {
    /// From a digest OID.
    pub fn from_oid(o: &ObjectIdentifier) -> Option<Self> {
        Some(match *o {
            oid::SHA1 => Self::Sha1,
            oid::SHA256 => Self::Sha256,
            oid::SHA384 => Self::Sha384,
            oid::SHA512 => Self::Sha512,
            _ => return None,
        })
    }
    /// The digest OID.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha1 => oid::SHA1,
            Self::Sha256 => oid::SHA256,
            Self::Sha384 => oid::SHA384,
            Self::Sha512 => oid::SHA512,
        }
    }
    fn digest(self, data: &[u8]) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(match self {
            Self::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(data).to_vec(),
        })
    }
}

/// Bounds on what a peer's MAC parameters may make us compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacLimits {
    /// Fewest PasswordBasedMac iterations (RFC 4210: 100).
    pub min_pbm_iterations: u32,
    /// Most PasswordBasedMac iterations.
    pub max_pbm_iterations: u32,
    /// Fewest PBKDF2 iterations.
    pub min_pbkdf2_iterations: u32,
    /// Most PBKDF2 iterations.
    pub max_pbkdf2_iterations: u32,
    /// Shortest salt, bytes.
    pub min_salt: usize,
    /// Longest salt, bytes.
    pub max_salt: usize,
}

impl MacLimits {
    /// The values in the module docs' table.
    pub const DEFAULT: MacLimits = MacLimits {
        min_pbm_iterations: 100,
        max_pbm_iterations: 100_000,
        min_pbkdf2_iterations: 1_000,
        max_pbkdf2_iterations: 100_000,
        min_salt: 8,
        max_salt: 128,
    };
}

impl Default for MacLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Iterations we use when we protect with a MAC.
pub const DEFAULT_ITERATIONS: u32 = 10_000;
/// Salt length we use.
pub const DEFAULT_SALT_LEN: usize = 16;

/// A MAC protection algorithm with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MacAlgorithm {
    /// id-PasswordBasedMac.
    PasswordBasedMac {
        /// salt.
        salt: Vec<u8>,
        /// owf.
        owf: Owf,
        /// iterationCount.
        iterations: u32,
        /// mac.
        mac: HmacAlgorithm,
    },
    /// id-PBMAC1 with PBKDF2.
    Pbmac1 {
        /// PBKDF2 salt (specified).
        salt: Vec<u8>,
        /// PBKDF2 iterationCount.
        iterations: u32,
        /// PBKDF2 keyLength, bytes.
        key_length: usize,
        /// PBKDF2 prf.
        prf: HmacAlgorithm,
        /// messageAuthScheme.
        mac: HmacAlgorithm,
    },
}

/// PBMAC1-params.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct Pbmac1Params {
    key_derivation_func: AlgorithmIdentifierOwned,
    message_auth_scheme: AlgorithmIdentifierOwned,
}

/// PBKDF2-params with the `specified` salt (otherSource is refused as malformed).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct Pbkdf2Params {
    salt: OctetString,
    iteration_count: u64,
    key_length: Option<u64>,
    prf: Option<AlgorithmIdentifierOwned>,
}

fn hmac_from(alg: &AlgorithmIdentifierOwned, kind: &'static str) -> Result<HmacAlgorithm> {
    null_or_absent(alg)?;
    HmacAlgorithm::from_oid(&alg.oid).ok_or_else(|| CmpError::UnsupportedAlgorithm {
        kind,
        oid: alg.oid.to_string(),
    })
}

fn null_or_absent(alg: &AlgorithmIdentifierOwned) -> Result<()> {
    match &alg.parameters {
        None => Ok(()),
        Some(p) if p.tag() == Tag::Null && p.value().is_empty() => Ok(()),
        Some(_) => Err(CmpError::malformed(
            "AlgorithmIdentifier",
            format!("{}: parameters must be absent or NULL", alg.oid),
        )),
    }
}

fn in_range(what: &'static str, v: u64, min: u64, max: u64) -> Result<u64> {
    if v < min || v > max {
        return Err(CmpError::OutOfRange {
            what,
            min,
            max,
            actual: v,
        });
    }
    Ok(v)
}

fn alg_id(o: ObjectIdentifier, params: Option<Any>) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: o,
        parameters: params,
    }
}

impl MacAlgorithm {
    /// PBMAC1 with our defaults and a fresh salt.
    pub fn pbmac1(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut salt = vec![0u8; DEFAULT_SALT_LEN];
        rng.fill_bytes(&mut salt);
        MacAlgorithm::Pbmac1 {
            salt,
            iterations: DEFAULT_ITERATIONS,
            key_length: 32,
            prf: HmacAlgorithm::Sha256,
            mac: HmacAlgorithm::Sha256,
        }
    }

    /// PasswordBasedMac (owf SHA-256, HMAC-SHA256) with a fresh salt, for peers without PBMAC1.
    pub fn password_based_mac(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut salt = vec![0u8; DEFAULT_SALT_LEN];
        rng.fill_bytes(&mut salt);
        MacAlgorithm::PasswordBasedMac {
            salt,
            owf: Owf::Sha256,
            iterations: DEFAULT_ITERATIONS,
            mac: HmacAlgorithm::Sha256,
        }
    }

    /// Whether `protection_alg` names a MAC algorithm this module knows.
    pub fn is_mac(protection_alg: &ObjectIdentifier) -> bool {
        *protection_alg == oid::PASSWORD_BASED_MAC || *protection_alg == oid::PBMAC1
    }

    /// The protectionAlg AlgorithmIdentifier.
    pub fn algorithm_identifier(&self) -> Result<AlgorithmIdentifierOwned> {
        match self {
            MacAlgorithm::PasswordBasedMac {
                salt,
                owf,
                iterations,
                mac,
            } => {
                let mac_oid = match mac {
                    HmacAlgorithm::Sha1 => oid::HMAC_SHA1, // as OpenSSL writes it
                    other => other.oid(),
                };
                let p = PbmParameter {
                    salt: OctetString::new(salt.clone())?,
                    owf: alg_id(owf.oid(), None),
                    iteration_count: u64::from(*iterations),
                    mac: alg_id(mac_oid, None),
                };
                Ok(alg_id(oid::PASSWORD_BASED_MAC, Some(Any::encode_from(&p)?)))
            }
            MacAlgorithm::Pbmac1 {
                salt,
                iterations,
                key_length,
                prf,
                mac,
            } => {
                let kdf = Pbkdf2Params {
                    salt: OctetString::new(salt.clone())?,
                    iteration_count: u64::from(*iterations),
                    key_length: Some(*key_length as u64),
                    // DEFAULT algid-hmacWithSHA1 is omitted in DER (X.690 §11.5).
                    prf: (*prf != HmacAlgorithm::Sha1).then(|| alg_id(prf.oid(), Some(Any::null()))),
                };
                let p = Pbmac1Params {
                    key_derivation_func: alg_id(oid::PBKDF2, Some(Any::encode_from(&kdf)?)),
                    message_auth_scheme: alg_id(mac.oid(), Some(Any::null())),
                };
                Ok(alg_id(oid::PBMAC1, Some(Any::encode_from(&p)?)))
            }
        }
    }

    /// Read a protectionAlg, refusing parameters outside `limits`.
    pub fn from_algorithm_identifier(alg: &AlgorithmIdentifierOwned, limits: &MacLimits) -> Result<Self> {
        let params = alg
            .parameters
            .as_ref()
            .ok_or_else(|| CmpError::malformed("protectionAlg", "MAC parameters missing"))?;
        let params_der = params.to_der()?;
        match alg.oid {
            oid::PASSWORD_BASED_MAC => {
                let p = PbmParameter::from_der(&params_der).map_err(|e| CmpError::malformed("PBMParameter", e))?;
                let salt = p.salt.as_bytes();
                in_range(
                    "salt length",
                    salt.len() as u64,
                    limits.min_salt as u64,
                    limits.max_salt as u64,
                )?;
                let iterations = in_range(
                    "PasswordBasedMac iterationCount",
                    p.iteration_count,
                    u64::from(limits.min_pbm_iterations),
                    u64::from(limits.max_pbm_iterations),
                )?;
                null_or_absent(&p.owf)?;
                let owf = Owf::from_oid(&p.owf.oid).ok_or_else(|| CmpError::UnsupportedAlgorithm {
                    kind: "owf",
                    oid: p.owf.oid.to_string(),
                })?;
                Ok(MacAlgorithm::PasswordBasedMac {
                    salt: salt.to_vec(),
                    owf,
                    iterations: u32::try_from(iterations).unwrap_or(u32::MAX),
                    mac: hmac_from(&p.mac, "mac")?,
                })
            }
            oid::PBMAC1 => {
                let p = Pbmac1Params::from_der(&params_der).map_err(|e| CmpError::malformed("PBMAC1-params", e))?;
                if p.key_derivation_func.oid != oid::PBKDF2 {
                    return Err(CmpError::UnsupportedAlgorithm {
                        kind: "key derivation",
                        oid: p.key_derivation_func.oid.to_string(),
                    });
                }
                let kdf_der = p
                    .key_derivation_func
                    .parameters
                    .as_ref()
                    .ok_or_else(|| CmpError::malformed("PBKDF2-params", "missing"))?
                    .to_der()?;
                let kdf = Pbkdf2Params::from_der(&kdf_der).map_err(|e| CmpError::malformed("PBKDF2-params", e))?;
                let salt = kdf.salt.as_bytes();
                in_range(
                    "salt length",
                    salt.len() as u64,
                    limits.min_salt as u64,
                    limits.max_salt as u64,
                )?;
                let iterations = in_range(
                    "PBKDF2 iterationCount",
                    kdf.iteration_count,
                    u64::from(limits.min_pbkdf2_iterations),
                    u64::from(limits.max_pbkdf2_iterations),
                )?;
                let prf = match &kdf.prf {
                    None => HmacAlgorithm::Sha1,
                    Some(a) => hmac_from(a, "prf")?,
                };
                let mac = hmac_from(&p.message_auth_scheme, "mac")?;
                // One PBKDF2 block at most: a longer key adds no strength
                // to the MAC and multiplies the work a sender can ask for.
                let key_length = in_range(
                    "PBKDF2 keyLength",
                    kdf.key_length.unwrap_or(mac.output_len() as u64),
                    16,
                    prf.output_len() as u64,
                )? as usize;
                Ok(MacAlgorithm::Pbmac1 {
                    salt: salt.to_vec(),
                    iterations: u32::try_from(iterations).unwrap_or(u32::MAX),
                    key_length,
                    prf,
                    mac,
                })
            }
            other => Err(CmpError::UnsupportedAlgorithm {
                kind: "MAC protection",
                oid: other.to_string(),
            }),
        }
    }

    /// The MAC of `data` (the DER ProtectedPart) under `secret`.
    pub fn compute(&self, secret: &SharedSecret, data: &[u8]) -> Result<Vec<u8>> {
        match self {
            MacAlgorithm::PasswordBasedMac {
                salt,
                owf,
                iterations,
                mac,
            } => {
                let mut input = Zeroizing::new(Vec::with_capacity(secret.expose().len() + salt.len()));
                input.extend_from_slice(secret.expose());
                input.extend_from_slice(salt);
                let mut key = owf.digest(&input);
                for _ in 1..*iterations {
                    key = owf.digest(&key);
                }
                mac.mac(&key, data)
            }
            MacAlgorithm::Pbmac1 {
                salt,
                iterations,
                key_length,
                prf,
                mac,
            } => {
                let mut key = Zeroizing::new(vec![0u8; *key_length]);
                prf.pbkdf2(secret.expose(), salt, (*iterations).max(1), &mut key);
                mac.mac(&key, data)
            }
        }
    }

    /// Check `mac` over `data` in constant time.
    pub fn verify(&self, secret: &SharedSecret, data: &[u8], mac: &[u8]) -> Result<()> {
        let want = self.compute(secret, data)?;
        if bool::from(subtle::ConstantTimeEq::ct_eq(&want[..], mac)) {
            Ok(())
        } else {
            Err(CmpError::BadProtection)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6070 test vector 2 (PBKDF2-HMAC-SHA1, "password"/"salt", 2 iterations).
    #[test]
    fn pbkdf2_matches_rfc6070() {
        let mut out = [0u8; 20];
        HmacAlgorithm::Sha1.pbkdf2(b"password", b"salt", 2, &mut out);
        assert_eq!(hex::encode(out), "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957");
    }

    #[test]
    fn parameters_round_trip_and_bounds_hold() {
        let mut rng = rand_core::OsRng;
        for alg in [
            MacAlgorithm::pbmac1(&mut rng),
            MacAlgorithm::password_based_mac(&mut rng),
        ] {
            let id = alg.algorithm_identifier().unwrap();
            assert_eq!(
                MacAlgorithm::from_algorithm_identifier(&id, &MacLimits::DEFAULT).unwrap(),
                alg
            );
        }
        let absurd = MacAlgorithm::PasswordBasedMac {
            salt: vec![1; 16],
            owf: Owf::Sha256,
            iterations: 1_000_000_000,
            mac: HmacAlgorithm::Sha1,
        };
        let id = absurd.algorithm_identifier().unwrap();
        assert!(matches!(
            MacAlgorithm::from_algorithm_identifier(&id, &MacLimits::DEFAULT),
            Err(CmpError::OutOfRange {
                actual: 1_000_000_000,
                ..
            })
        ));
        let weak = MacAlgorithm::PasswordBasedMac {
            salt: vec![1; 16],
            owf: Owf::Sha256,
            iterations: 99,
            mac: HmacAlgorithm::Sha1,
        };
        assert!(
            MacAlgorithm::from_algorithm_identifier(&weak.algorithm_identifier().unwrap(), &MacLimits::DEFAULT)
                .is_err()
        );
    }

    /// A sender may not make us run PBKDF2 for more than one block: a
    /// 64-byte key under HMAC-SHA1 would be four times the iterations.
    #[test]
    fn a_pbkdf2_key_longer_than_one_block_is_refused() {
        let long = |key_length, prf| MacAlgorithm::Pbmac1 {
            salt: vec![1; 16],
            iterations: 100_000,
            key_length,
            prf,
            mac: HmacAlgorithm::Sha256,
        };
        for (k, prf, ok) in [
            (64, HmacAlgorithm::Sha1, false),
            (21, HmacAlgorithm::Sha1, false),
            (20, HmacAlgorithm::Sha1, true),
            (33, HmacAlgorithm::Sha256, false),
            (32, HmacAlgorithm::Sha256, true),
            (64, HmacAlgorithm::Sha512, true),
        ] {
            let id = long(k, prf).algorithm_identifier().unwrap();
            let got = MacAlgorithm::from_algorithm_identifier(&id, &MacLimits::DEFAULT);
            assert_eq!(got.is_ok(), ok, "keyLength {k} with {prf:?}: {got:?}");
        }
    }

    #[test]
    fn password_based_mac_iterates_owf_over_secret_then_salt() {
        // Independent computation: SHA-256 applied 3 times to "s3cret" ‖ salt, then HMAC-SHA1.
        let alg = MacAlgorithm::PasswordBasedMac {
            salt: b"saltsalt".to_vec(),
            owf: Owf::Sha256,
            iterations: 3,
            mac: HmacAlgorithm::Sha1,
        };
        let k1 = sha2::Sha256::digest(b"s3cretsaltsalt");
        let k3 = sha2::Sha256::digest(sha2::Sha256::digest(k1));
        let want = HmacAlgorithm::Sha1.mac(&k3, b"data").unwrap();
        let secret = SharedSecret::new(b"s3cret");
        assert_eq!(alg.compute(&secret, b"data").unwrap(), want);
        alg.verify(&secret, b"data", &want).unwrap();
        assert!(matches!(
            alg.verify(&SharedSecret::new(b"s3creT"), b"data", &want),
            Err(CmpError::BadProtection)
        ));
        assert!(format!("{secret:?}").contains("redacted"));
    }
}
