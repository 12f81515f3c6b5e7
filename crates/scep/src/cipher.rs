//! The content-encryption ciphers of SCEP's EnvelopedData (RFC 8894
//! §3.5.2: AES-128/192/256-CBC, DES-EDE3-CBC, and single DES from legacy
//! clients), with PKCS#7 padding (RFC 5652 §6.3):
//!
//! ```text
//! ContentEncryptionAlgorithmIdentifier ::= AlgorithmIdentifier
//!   -- parameters: the IV, an OCTET STRING (RFC 3565 §4.1, RFC 3370 §5.1)
//! ```

use crate::error::{Result, ScepError};
use crate::types::ContentEncryption;
use cbc::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use zeroize::Zeroizing;

fn cbc_encrypt<C: BlockEncryptMut + KeyIvInit>(key: &[u8], iv: &[u8], pt: &[u8]) -> Result<Vec<u8>> {
    let c =
        C::new_from_slices(key, iv).map_err(|_| ScepError::Key(enrolkit_keys::KeyError::Operation("cipher setup")))?;
    Ok(c.encrypt_padded_vec_mut::<Pkcs7>(pt))
}

fn cbc_decrypt<C: BlockDecryptMut + KeyIvInit>(key: &[u8], iv: &[u8], ct: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let c = C::new_from_slices(key, iv).map_err(|_| ScepError::DecryptionFailed)?;
    c.decrypt_padded_vec_mut::<Pkcs7>(ct)
        .map(Zeroizing::new)
        .map_err(|_| ScepError::DecryptionFailed)
}

pub(crate) fn encrypt_content(cipher: ContentEncryption, key: &[u8], iv: &[u8], pt: &[u8]) -> Result<Vec<u8>> {
    match cipher {
        ContentEncryption::Aes128Cbc => cbc_encrypt::<cbc::Encryptor<aes::Aes128>>(key, iv, pt),
        ContentEncryption::Aes192Cbc => cbc_encrypt::<cbc::Encryptor<aes::Aes192>>(key, iv, pt),
        ContentEncryption::Aes256Cbc => cbc_encrypt::<cbc::Encryptor<aes::Aes256>>(key, iv, pt),
        ContentEncryption::DesEde3Cbc => cbc_encrypt::<cbc::Encryptor<des::TdesEde3>>(key, iv, pt),
        ContentEncryption::DesCbc => cbc_encrypt::<cbc::Encryptor<des::Des>>(key, iv, pt),
    }
}

pub(crate) fn decrypt_content(
    cipher: ContentEncryption,
    key: &[u8],
    iv: &[u8],
    ct: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    match cipher {
        ContentEncryption::Aes128Cbc => cbc_decrypt::<cbc::Decryptor<aes::Aes128>>(key, iv, ct),
        ContentEncryption::Aes192Cbc => cbc_decrypt::<cbc::Decryptor<aes::Aes192>>(key, iv, ct),
        ContentEncryption::Aes256Cbc => cbc_decrypt::<cbc::Decryptor<aes::Aes256>>(key, iv, ct),
        ContentEncryption::DesEde3Cbc => cbc_decrypt::<cbc::Decryptor<des::TdesEde3>>(key, iv, ct),
        ContentEncryption::DesCbc => cbc_decrypt::<cbc::Decryptor<des::Des>>(key, iv, ct),
    }
}
