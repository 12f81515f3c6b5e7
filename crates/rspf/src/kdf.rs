//! The generic key derivation function of 3GPP TS 33.220 Annex B.2:
//!
//! ```text
//! derived key = HMAC-SHA-256(Key, S)
//! S = FC || P0 || L0 || P1 || L1 || ... || Pn || Ln
//! ```
//!
//! where FC is one octet telling the derivations apart and Li is the
//! length of Pi in octets as two octets, most significant first (B.2.1).
//! Character strings are UTF-8 (B.2.1.1). Computed incrementally: no
//! allocation.

use crate::error::{Result, RspfError};
use crate::secret::Key256;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// FC of the GBA NAF key derivations (TS 33.220 B.3: Ks_NAF, Ks_ext_NAF, Ks_int_NAF).
pub const FC_GBA_NAF: u8 = 0x01;

/// `HMAC-SHA-256(key, FC || P0 || L0 || … || Pn || Ln)`. Each parameter is
/// given as the chunks it is the concatenation of (NAF_Id is the FQDN then
/// five octets), so nothing needs to be copied together; every Pi must fit a
/// two-octet length.
pub fn kdf(key: &[u8], fc: u8, params: &[&[&[u8]]]) -> Result<Key256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| RspfError::InvalidIdentifier {
        what: "KDF key",
        why: "rejected by HMAC",
    })?;
    mac.update(&[fc]);
    for (index, chunks) in params.iter().enumerate() {
        let total: usize = chunks.iter().map(|c| c.len()).sum();
        let len = u16::try_from(total).map_err(|_| RspfError::ParameterTooLong { index, len: total })?;
        for c in chunks.iter() {
            mac.update(c);
        }
        mac.update(&len.to_be_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&mac.finalize().into_bytes());
    let key = Key256::from_bytes(out);
    zeroize::Zeroize::zeroize(&mut out);
    Ok(key)
}

/// `HMAC-SHA-256(key, message)` as a [`Key256`] (the oneM2M derivations of
/// TS-0003 clause 10.3 are HMAC-SHA-256 over a string).
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Result<Key256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| RspfError::InvalidIdentifier {
        what: "HMAC key",
        why: "rejected by HMAC",
    })?;
    for p in parts {
        mac.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&mac.finalize().into_bytes());
    let key = Key256::from_bytes(out);
    zeroize::Zeroize::zeroize(&mut out);
    Ok(key)
}
