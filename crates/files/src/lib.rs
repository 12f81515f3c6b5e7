//! Files written atomically: temporary file in the same directory, fsync,
//! rename, fsync of the directory, so a crash leaves the old file or the new
//! one, never half of either. Secrets get mode 0600 from creation on (never
//! a window with wider permissions).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Write `bytes` to `path` atomically with `mode`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| format!("{}: not a file name", path.display()))?;
    let tmp = dir.join(format!(".{}.tmp{}", name.to_string_lossy(), std::process::id()));
    let res = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res.map_err(|e| format!("{}: {e}", path.display()))
}

/// Write a secret (private key, challenge key): mode 0600.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    write_atomic(path, bytes, 0o600)
}

/// Write a public file (certificate, configuration): mode 0644.
pub fn write_public(path: &Path, bytes: &[u8]) -> Result<(), String> {
    write_atomic(path, bytes, 0o644)
}

/// Create the state directory, readable by its owner only.
pub fn create_private_dir(path: &Path) -> Result<(), String> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Read a certificate in PEM or DER.
pub fn read_certificate(path: &Path) -> Result<x509_cert::Certificate, String> {
    use der::{Decode, DecodePem};
    let b = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    x509_cert::Certificate::from_pem(&b)
        .or_else(|_| x509_cert::Certificate::from_der(&b))
        .map_err(|e| format!("{}: not a PEM or DER certificate ({e})", path.display()))
}

/// Largest secret file read (keys, passwords and tokens are a few bytes).
pub const MAX_SECRET: u64 = 64 * 1024;

fn read_bounded(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
    use std::io::Read;
    let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // Sized up front: growing by reallocation would free copies of the secret unzeroized.
    let mut raw = zeroize::Zeroizing::new(Vec::with_capacity(MAX_SECRET as usize + 1));
    f.take(MAX_SECRET + 1)
        .read_to_end(&mut raw)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if raw.len() as u64 > MAX_SECRET {
        return Err(format!("{}: larger than {MAX_SECRET} bytes", path.display()));
    }
    Ok(raw)
}

/// Read a secret key file: hex text if it is hex (surrounding whitespace
/// ignored), raw bytes otherwise. The buffers are zeroized.
pub fn read_secret(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
    let raw = read_bounded(path)?;
    let text = std::str::from_utf8(&raw).ok().map(str::trim).filter(|t| !t.is_empty());
    Ok(match text.and_then(|t| hex::decode(t).ok()) {
        Some(k) => zeroize::Zeroizing::new(k),
        None => raw,
    })
}

/// Read a secret that is text used as it is (a password, a challenge, an
/// Enrolment-Token; hex-looking ones too): UTF-8, without trailing CR/LF
/// characters (other whitespace is kept: it may be part of a password).
/// Zeroized.
pub fn read_secret_text(path: &Path) -> Result<zeroize::Zeroizing<String>, String> {
    let raw = read_bounded(path)?;
    let s = std::str::from_utf8(&raw).map_err(|_| format!("{}: not UTF-8 text", path.display()))?;
    Ok(zeroize::Zeroizing::new(s.trim_end_matches(['\r', '\n']).to_owned()))
}

/// Read every certificate of a PEM bundle (at least one), or one DER certificate.
pub fn read_certificates(path: &Path) -> Result<Vec<x509_cert::Certificate>, String> {
    use der::Decode;
    let b = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs = x509_cert::Certificate::load_pem_chain(&b)
        .or_else(|_| x509_cert::Certificate::from_der(&b).map(|c| vec![c]))
        .map_err(|e| format!("{}: not PEM or DER certificates ({e})", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", path.display()));
    }
    Ok(certs)
}

/// Read a private key (PEM: PKCS#8, PKCS#1 or SEC1); the text is zeroized after parsing.
pub fn read_key(path: &Path) -> Result<enrolkit_keys::SoftwareKey, String> {
    let bytes = read_secret(path)?;
    let key = match std::str::from_utf8(&bytes) {
        Ok(text) if text.trim_start().starts_with("-----") => enrolkit_keys::SoftwareKey::from_pem(text),
        _ => enrolkit_keys::SoftwareKey::from_der_any(&bytes),
    };
    key.map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_files_are_0600_and_replace_atomically() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k.pem");
        write_private(&p, b"one").unwrap();
        write_private(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        write_public(&d.path().join("c.pem"), b"c").unwrap();
        assert_eq!(
            std::fs::metadata(d.path().join("c.pem")).unwrap().permissions().mode() & 0o777,
            0o644
        );
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 2);
        assert!(write_private(&d.path().join("missing/dir/k"), b"x").is_err());
    }

    #[test]
    fn secret_text_is_taken_as_written_and_key_files_decode_hex() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s");
        // A hex challenge (what mef hands out) stays text; only the line break goes.
        std::fs::write(&p, "00ff1a2b\n").unwrap();
        assert_eq!(read_secret_text(&p).unwrap().as_str(), "00ff1a2b");
        assert_eq!(read_secret(&p).unwrap().as_slice(), &[0x00, 0xff, 0x1a, 0x2b]);
        std::fs::write(&p, " pass word \r\n").unwrap();
        assert_eq!(read_secret_text(&p).unwrap().as_str(), " pass word ");
        std::fs::write(&p, [0xffu8, 0xfe]).unwrap();
        assert!(read_secret_text(&p).unwrap_err().contains("not UTF-8"));
        // Bounded: a huge file is refused, not read whole.
        std::fs::write(&p, vec![b'a'; (MAX_SECRET + 1) as usize]).unwrap();
        assert!(read_secret_text(&p).unwrap_err().contains("larger than"));
        assert!(read_secret(&p).unwrap_err().contains("larger than"));
    }
}
