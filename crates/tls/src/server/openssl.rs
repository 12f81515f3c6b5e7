//! The OpenSSL listener: certificates, and certificate-less handshakes by
//! external pre-shared key (TLS 1.2 PSK suites, TLS 1.3 PSK with (EC)DHE);
//! `tls-unique` with TLS 1.2. No tickets or resumption.

use super::{Acceptor, ServerStream, ServerTlsConfig};
use crate::error::TlsSetupError;
use crate::info::openssl::{openssl_info, proto_version, psk_identity_index};
use crate::info::{export_len_ok, KeyingExport, TlsInfo};
use crate::psk::{PskContext, PskStore};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use tokio::net::TcpStream;

impl Acceptor {
    /// An OpenSSL listener; with `psk`, certificate-less handshakes by
    /// pre-shared key (TLS 1.2 PSK suites, and TLS 1.3 PSK with (EC)DHE).
    pub fn openssl(cfg: &ServerTlsConfig, psk: Option<Arc<dyn PskStore>>) -> Result<Self, TlsSetupError> {
        use openssl::ssl::{SslContext, SslMethod, SslOptions, SslVerifyMode};
        use openssl::x509::store::X509StoreBuilder;
        use openssl::x509::X509;
        let mut b = SslContext::builder(SslMethod::tls_server())?;
        b.set_min_proto_version(Some(proto_version(cfg.min_version)))?;
        b.set_max_proto_version(Some(proto_version(cfg.max_version)))?;
        // No tickets or resumption: every connection does a full handshake, so
        // tls-unique is always the client's Finished message.
        b.set_options(SslOptions::NO_TICKET | SslOptions::NO_RENEGOTIATION | SslOptions::CIPHER_SERVER_PREFERENCE);
        b.set_session_cache_mode(openssl::ssl::SslSessionCacheMode::OFF);
        // Needed with client certificates whenever a client offers a session (TLS 1.3 PSK).
        b.set_session_id_context(b"enrolkit-est")?;
        let mut ciphers = String::from("ECDHE+AESGCM:ECDHE+CHACHA20");
        if psk.is_some() {
            ciphers.push_str(":ECDHE-PSK-CHACHA20-POLY1305:ECDHE-PSK-AES256-CBC-SHA384:ECDHE-PSK-AES128-CBC-SHA256");
            ciphers
                .push_str(":PSK-AES256-GCM-SHA384:PSK-AES128-GCM-SHA256:PSK-CHACHA20-POLY1305:PSK-AES128-CBC-SHA256");
        }
        b.set_cipher_list(&ciphers)?;
        if psk.is_some() {
            // An external PSK from the callback is bound to SHA-256: offering
            // only SHA-256 suites lets TLS 1.3 PSK clients that also offer
            // AES-256 (OpenSSL's default) use it instead of falling back.
            b.set_ciphersuites("TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256")?;
        }
        let key = openssl::pkey::PKey::private_key_from_pkcs8(&cfg.key_pkcs8)?;
        b.set_private_key(&key)?;
        let (leaf, rest) = cfg
            .chain
            .split_first()
            .ok_or_else(|| TlsSetupError::Invalid("empty server certificate chain".into()))?;
        let leaf = X509::from_der(leaf)?;
        b.set_certificate(&leaf)?;
        for c in rest {
            b.add_extra_chain_cert(X509::from_der(c)?)?;
        }
        b.check_private_key()?;
        let mut store = X509StoreBuilder::new()?;
        for ta in &cfg.client_trust_anchors {
            store.add_cert(X509::from_der(ta)?)?;
        }
        b.set_cert_store(store.build());
        // Ask for a certificate but let the handshake finish whatever the
        // verdict; verify_result() says it afterwards.
        b.set_verify_callback(SslVerifyMode::PEER, |_ok, _ctx| true);
        if let Some(hint) = psk.as_ref().and_then(|s| s.identity_hint()) {
            crate::ossl_ext::set_psk_identity_hint(&mut b, &hint)?;
        }
        if let Some(store) = psk {
            let index = psk_identity_index()?;
            b.set_psk_server_callback(move |ssl, identity, out| {
                let Some(id) = identity.and_then(|i| std::str::from_utf8(i).ok()) else {
                    return Ok(0);
                };
                match store.psk(id, &PskContext::of(ssl)) {
                    Some(k) if !k.is_empty() && k.len() <= out.len() => match out.get_mut(..k.len()) {
                        Some(dst) => {
                            dst.copy_from_slice(&k);
                            // Kept on the connection (only for a known identity: a
                            // refused PSK lets TLS 1.3 fall back to a full handshake):
                            // OpenSSL does not report the identity of a TLS 1.3 PSK
                            // handshake made through this callback.
                            ssl.set_ex_data(index, id.to_owned());
                            Ok(k.len())
                        }
                        None => Ok(0),
                    },
                    _ => Ok(0),
                }
            });
        }
        if let Some(e) = &cfg.keying_export {
            export_len_ok(e)?;
        }
        Ok(Acceptor::OpenSsl(Arc::new(b.build()), cfg.keying_export.clone()))
    }
}

/// The handshake on an accepted TCP connection (the caller bounds its time).
pub(super) async fn accept(
    ctx: &openssl::ssl::SslContext,
    export: Option<&KeyingExport>,
    tcp: TcpStream,
) -> io::Result<(ServerStream, TlsInfo)> {
    let ssl = openssl::ssl::Ssl::new(ctx).map_err(io::Error::other)?;
    let mut s = tokio_openssl::SslStream::new(ssl, tcp).map_err(io::Error::other)?;
    Pin::new(&mut s).accept().await.map_err(io::Error::other)?;
    let info = openssl_info(s.ssl(), true, export);
    Ok((ServerStream::OpenSsl(Box::new(s)), info))
}
