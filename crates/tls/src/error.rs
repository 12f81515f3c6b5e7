//! Errors setting a listener or connector up, and [`is_tls_failure`],
//! which tells a TLS protocol failure from a transport one.

use std::io;

/// Errors setting a listener up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// rustls refused the configuration.
    #[error("rustls: {0}")]
    Rustls(String),
    /// OpenSSL refused the configuration.
    #[error("openssl: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    /// Something else is inconsistent.
    #[error("{0}")]
    Invalid(String),
}

/// Whether `e`, or an error it was caused by, comes from the TLS protocol
/// itself (an alert from the peer, a failed verification or decryption, in
/// either stack) rather than from the transport: a connection that merely
/// closed or was reset is not one. A client uses it to tell a server that
/// refused the session from one that may have taken the request.
pub fn is_tls_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<rustls::Error>() || err.is::<openssl::ssl::Error>() || err.is::<openssl::error::ErrorStack>() {
            return true;
        }
        // An io::Error's source() skips the error it wraps: look at that one too.
        if let Some(inner) = err.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            if is_tls_failure(inner) {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod failure_tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("connection error")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn alerts_are_tls_failures_and_closed_connections_are_not() {
        let alert = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired),
        );
        assert!(is_tls_failure(&alert));
        assert!(is_tls_failure(&Outer(alert)));
        let stack = openssl::error::ErrorStack::get();
        assert!(is_tls_failure(&Outer(io::Error::other(stack))));
        assert!(!is_tls_failure(&io::Error::from(io::ErrorKind::UnexpectedEof)));
        assert!(!is_tls_failure(&Outer(io::Error::from(io::ErrorKind::ConnectionReset))));
        assert!(!is_tls_failure(&Outer(io::Error::other(
            "closed before message completed"
        ))));
    }
}
