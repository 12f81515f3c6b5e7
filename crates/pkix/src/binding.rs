//! TLS channel binding values: what links a message to the TLS session it
//! arrives over. EST carries them in a CSR's challengePassword (RFC 7030
//! §3.5); the TLS layer extracts them from its library.
//!
//! TLS 1.2 has `tls-unique` (RFC 5929 §3: the first Finished message of the
//! handshake). TLS 1.3 has none; RFC 9266 defines `tls-exporter`: 32 bytes
//! exported with label [`TLS_EXPORTER_LABEL`] and no context.

/// Exporter label of the tls-exporter channel binding (RFC 9266 §2).
pub const TLS_EXPORTER_LABEL: &str = "EXPORTER-Channel-Binding";
/// Length of the tls-exporter channel binding in bytes (RFC 9266 §2).
pub const TLS_EXPORTER_LEN: usize = 32;
/// Longest binding accepted (a tls-unique Finished is 12 bytes; SSLv3's 36).
pub const MAX_BINDING: usize = 64;

/// A binding value of the wrong size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} channel binding of {len} bytes ({expected})")]
pub struct BindingError {
    /// `tls-unique` or `tls-exporter`.
    pub kind: &'static str,
    /// Its length.
    pub len: usize,
    /// What was expected.
    pub expected: &'static str,
}

/// A TLS channel binding value.
#[derive(Clone, PartialEq, Eq)]
pub enum ChannelBinding {
    /// tls-unique (RFC 5929 §3): the first Finished message of a TLS 1.2 handshake.
    TlsUnique(Vec<u8>),
    /// tls-exporter (RFC 9266): 32 bytes of keying material exported under
    /// [`TLS_EXPORTER_LABEL`] with no context, for TLS 1.3.
    TlsExporter(Vec<u8>),
}

impl ChannelBinding {
    /// A tls-exporter binding, checking its length.
    pub fn tls_exporter(bytes: &[u8]) -> Result<ChannelBinding, BindingError> {
        if bytes.len() != TLS_EXPORTER_LEN {
            return Err(BindingError {
                kind: "tls-exporter",
                len: bytes.len(),
                expected: "32 expected",
            });
        }
        Ok(ChannelBinding::TlsExporter(bytes.to_vec()))
    }

    /// A tls-unique binding, checking its length.
    pub fn tls_unique(bytes: &[u8]) -> Result<ChannelBinding, BindingError> {
        if bytes.is_empty() || bytes.len() > MAX_BINDING {
            return Err(BindingError {
                kind: "tls-unique",
                len: bytes.len(),
                expected: "1 to 64 expected",
            });
        }
        Ok(ChannelBinding::TlsUnique(bytes.to_vec()))
    }

    /// The binding bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            ChannelBinding::TlsUnique(b) | ChannelBinding::TlsExporter(b) => b,
        }
    }

    /// The RFC 5056 name of the binding type.
    pub fn type_name(&self) -> &'static str {
        match self {
            ChannelBinding::TlsUnique(_) => "tls-unique",
            ChannelBinding::TlsExporter(_) => "tls-exporter",
        }
    }
}

impl std::fmt::Debug for ChannelBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.as_bytes();
        let prefix: String = b.iter().take(4).map(|x| format!("{x:02x}")).collect();
        write!(f, "{}({prefix}…, {} bytes)", self.type_name(), b.len())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lengths_are_checked() {
        assert!(ChannelBinding::tls_exporter(&[0; 12]).is_err());
        assert!(ChannelBinding::tls_exporter(&[0; 32]).is_ok());
        assert!(ChannelBinding::tls_unique(&[]).is_err());
        assert!(ChannelBinding::tls_unique(&[0; 65]).is_err());
        let u = ChannelBinding::tls_unique(&[1; 12]).unwrap();
        assert_eq!(format!("{u:?}"), "tls-unique(01010101…, 12 bytes)");
        assert_eq!(u.type_name(), "tls-unique");
    }
}
