//! What an OpenSSL connection established, on either side: version, peer
//! chain and its verdict, PSK identity, `tls-unique` or `tls-exporter`
//! channel binding, exported keying material.

use super::{Backend, Exported, KeyingExport, TlsInfo, TlsVersion};
use enrolkit_pkix::binding::ChannelBinding;
use zeroize::Zeroizing;

/// What an OpenSSL handshake established; `server` says which side `ssl` is.
pub fn openssl_info(ssl: &openssl::ssl::SslRef, server: bool, export: Option<&KeyingExport>) -> TlsInfo {
    let version = match ssl.version2() {
        Some(openssl::ssl::SslVersion::TLS1_3) => TlsVersion::Tls13,
        _ => TlsVersion::Tls12,
    };
    let mut chain = Vec::new();
    if let Some(leaf) = ssl.peer_certificate() {
        chain.push(leaf.to_der().unwrap_or_default());
        // On the server side the peer chain excludes the leaf; on the client side it includes it.
        if let Some(stack) = ssl.peer_cert_chain() {
            for c in stack.iter().skip(usize::from(!server)) {
                chain.push(c.to_der().unwrap_or_default());
            }
        }
    }
    let peer_cert_error = if chain.is_empty() {
        None
    } else {
        let r = ssl.verify_result();
        (r != openssl::x509::X509VerifyResult::OK).then(|| r.error_string().to_owned())
    };
    // A PSK identity counts only when the handshake used the PSK: the
    // callback records the identity as soon as it hands OpenSSL a key, but a
    // TLS 1.3 server still drops that PSK (and goes on with a certificate
    // handshake) when the suite's hash differs or the binder is wrong.
    let psk_identity = psk_identity_index()
        .ok()
        .and_then(|i| ssl.ex_data(i).cloned())
        .filter(|_| chain.is_empty() && psk_used(ssl, version));
    let cipher_suite = ssl.current_cipher().map(|c| u16::from_be_bytes(c.protocol_id()));
    TlsInfo {
        backend: Backend::OpenSsl,
        version,
        peer_chain: chain,
        peer_cert_error,
        psk_identity,
        cipher_suite,
        channel_binding: channel_binding(ssl, version, server),
        exported: exported(ssl, export),
    }
}

/// Whether the finished handshake authenticated with a pre-shared key: a
/// TLS 1.3 handshake that accepted the PSK counts as resumed; a TLS 1.2 one
/// negotiated a PSK suite.
pub fn psk_used(ssl: &openssl::ssl::SslRef, version: TlsVersion) -> bool {
    match version {
        TlsVersion::Tls13 => ssl.session_reused(),
        TlsVersion::Tls12 => ssl.current_cipher().is_some_and(|c| c.name().contains("PSK")),
    }
}

/// The RFC 7030 §3.5 channel binding of an OpenSSL connection: tls-unique
/// (RFC 5929: the first Finished message) with TLS 1.2, tls-exporter
/// (RFC 9266) with TLS 1.3.
pub fn channel_binding(ssl: &openssl::ssl::SslRef, version: TlsVersion, server: bool) -> Option<ChannelBinding> {
    match version {
        TlsVersion::Tls13 => {
            let mut out = vec![0u8; enrolkit_pkix::binding::TLS_EXPORTER_LEN];
            ssl.export_keying_material(&mut out, enrolkit_pkix::binding::TLS_EXPORTER_LABEL, None)
                .is_ok()
                .then_some(ChannelBinding::TlsExporter(out))
        }
        TlsVersion::Tls12 => {
            // The first Finished: the client's in a full handshake, the
            // server's in an abbreviated (resumed) one.
            let client_first = !ssl.session_reused();
            let mut buf = [0u8; 64];
            let n = if client_first == server {
                ssl.peer_finished(&mut buf)
            } else {
                ssl.finished(&mut buf)
            };
            buf.get(..n)
                .filter(|b| !b.is_empty())
                .map(|b| ChannelBinding::TlsUnique(b.to_vec()))
        }
    }
}

/// The keying material `e` asks for, from an OpenSSL connection of either side.
pub(crate) fn exported(ssl: &openssl::ssl::SslRef, e: Option<&KeyingExport>) -> Option<Exported> {
    let e = e?;
    let mut out = Zeroizing::new(vec![0u8; e.len]);
    ssl.export_keying_material(&mut out, &e.label, e.context.as_deref())
        .ok()
        .map(|_| Exported(out))
}

/// The ex_data slot where the PSK callback leaves the identity it was asked for.
pub(crate) fn psk_identity_index(
) -> Result<openssl::ex_data::Index<openssl::ssl::Ssl, String>, openssl::error::ErrorStack> {
    static INDEX: std::sync::OnceLock<openssl::ex_data::Index<openssl::ssl::Ssl, String>> = std::sync::OnceLock::new();
    if let Some(i) = INDEX.get() {
        return Ok(*i);
    }
    let i = openssl::ssl::Ssl::new_ex_index::<String>()?;
    Ok(*INDEX.get_or_init(|| i))
}

/// OpenSSL's name for a protocol version.
pub(crate) fn proto_version(t: TlsVersion) -> openssl::ssl::SslVersion {
    match t {
        TlsVersion::Tls12 => openssl::ssl::SslVersion::TLS1_2,
        TlsVersion::Tls13 => openssl::ssl::SslVersion::TLS1_3,
    }
}
