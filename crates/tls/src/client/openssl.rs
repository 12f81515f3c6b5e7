//! The OpenSSL connector: certificates with a PKCS#8 key, external PSK
//! (certificate-less, PSK suites only), the RFC 7030 §4.1.1 bootstrap
//! (no verification during the handshake), `tls-unique` with TLS 1.2.

use super::{ClientKey, ClientStack, ClientStream, ClientTlsConfig, ServerTrust};
use crate::error::TlsSetupError;
use crate::info::openssl::{openssl_info, proto_version, psk_used};
use crate::info::{KeyingExport, TlsInfo};
use crate::psk::{PskContext, PskKey};
use crate::stream::HANDSHAKE_TIMEOUT;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use tokio::net::TcpStream;

/// The OpenSSL client context for `cfg` (whose key, if any, is PKCS#8).
pub(super) fn stack(cfg: &ClientTlsConfig) -> Result<ClientStack, TlsSetupError> {
    use openssl::ssl::{SslContext, SslMethod, SslOptions};
    use openssl::x509::store::X509StoreBuilder;
    use openssl::x509::X509;
    let mut b = SslContext::builder(SslMethod::tls_client())?;
    b.set_min_proto_version(Some(proto_version(cfg.min_version)))?;
    b.set_max_proto_version(Some(proto_version(cfg.max_version)))?;
    b.set_options(SslOptions::NO_TICKET | SslOptions::NO_RENEGOTIATION);
    b.set_session_cache_mode(openssl::ssl::SslSessionCacheMode::OFF);
    let mut store = X509StoreBuilder::new()?;
    let verify = match &cfg.trust {
        ServerTrust::Anchors(tas) => {
            if tas.is_empty() && cfg.psk.is_none() {
                return Err(TlsSetupError::Invalid("no trust anchors for the server".into()));
            }
            for ta in tas {
                store.add_cert(X509::from_der(ta)?)?;
            }
            cfg.psk.is_none()
        }
        ServerTrust::Bootstrap => false,
    };
    b.set_cert_store(store.build());
    if let Some((chain, key)) = &cfg.certificate {
        let (leaf, rest) = chain
            .split_first()
            .ok_or_else(|| TlsSetupError::Invalid("empty client certificate chain".into()))?;
        let leaf = X509::from_der(leaf)?;
        b.set_certificate(&leaf)?;
        for c in rest {
            b.add_extra_chain_cert(X509::from_der(c)?)?;
        }
        let ClientKey::Pkcs8(key) = key else {
            return Err(TlsSetupError::Invalid("unreachable: external keys use rustls".into()));
        };
        let key = openssl::pkey::PKey::private_key_from_pkcs8(key)?;
        b.set_private_key(&key)?;
        b.check_private_key()?;
    }
    if let Some((identity, key)) = &cfg.psk {
        let fixed_len_ok = match key {
            PskKey::Fixed(k) => !k.is_empty() && k.len() <= 64,
            PskKey::Derived { .. } => true,
        };
        if identity.is_empty() || identity.len() > 128 || !fixed_len_ok {
            return Err(TlsSetupError::Invalid(
                "PSK identity must be 1..=128 bytes and the key 1..=64 bytes".into(),
            ));
        }
        // Certificate-less: PSK suites only, so the server cannot fall back to a certificate handshake.
        match key {
            PskKey::Derived {
                tls12_ciphers: Some(c), ..
            } => b.set_cipher_list(c)?,
            _ => b.set_cipher_list("ECDHE-PSK-CHACHA20-POLY1305:ECDHE-PSK-AES256-CBC-SHA384:ECDHE-PSK-AES128-CBC-SHA256:PSK-AES256-GCM-SHA384:PSK-AES128-GCM-SHA256:PSK-CHACHA20-POLY1305:PSK-AES128-CBC-SHA256")?,
        }
        b.set_ciphersuites("TLS_AES_128_GCM_SHA256")?;
        let identity = identity.clone().into_bytes();
        let key = key.clone();
        b.set_psk_client_callback(move |ssl, _hint, id_out, key_out| {
            let Some(key) = key.key(&PskContext::of(ssl)).filter(|k| !k.is_empty() && k.len() <= 64) else {
                return Ok(0);
            };
            let (Some(id_dst), Some(key_dst)) = (id_out.get_mut(..=identity.len()), key_out.get_mut(..key.len()))
            else {
                return Ok(0);
            };
            let (id_body, nul) = id_dst.split_at_mut(identity.len());
            id_body.copy_from_slice(&identity);
            nul.fill(0);
            key_dst.copy_from_slice(&key);
            Ok(key.len())
        });
    }
    Ok(ClientStack::OpenSsl {
        ctx: Arc::new(b.build()),
        verify,
        psk: cfg.psk.is_some(),
    })
}

/// Handshake with `host` over `tcp`; `verify` checks the server's chain
/// and name, `psk` requires that the pre-shared key authenticated it.
pub(super) async fn connect(
    ctx: &openssl::ssl::SslContext,
    verify: bool,
    psk: bool,
    export: Option<&KeyingExport>,
    host: &str,
    tcp: TcpStream,
) -> io::Result<(ClientStream, TlsInfo)> {
    use openssl::ssl::SslVerifyMode;
    let mut ssl = openssl::ssl::Ssl::new(ctx).map_err(io::Error::other)?;
    if verify {
        ssl.set_verify(SslVerifyMode::PEER);
        match host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
        {
            Ok(ip) => ssl.param_mut().set_ip(ip).map_err(io::Error::other)?,
            Err(_) => {
                ssl.set_hostname(host).map_err(io::Error::other)?;
                ssl.param_mut().set_host(host).map_err(io::Error::other)?;
            }
        }
    } else {
        ssl.set_verify(SslVerifyMode::NONE);
        if host.parse::<std::net::IpAddr>().is_err() {
            ssl.set_hostname(host).map_err(io::Error::other)?;
        }
    }
    let mut s = tokio_openssl::SslStream::new(ssl, tcp).map_err(io::Error::other)?;
    let fut = Pin::new(&mut s).connect();
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, fut).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let detail = match s.ssl().verify_result() {
                openssl::x509::X509VerifyResult::OK => e.to_string(),
                r => format!("server certificate: {}", r.error_string()),
            };
            return Err(io::Error::other(detail));
        }
        Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")),
    }
    let info = openssl_info(s.ssl(), false, export);
    // The PSK is what authenticates the server here (its certificate is
    // not checked): a TLS 1.3 server that ignored it and sent a
    // certificate instead is not the one that holds the key.
    if psk && !psk_used(s.ssl(), info.version) {
        return Err(io::Error::other(
            "the server did not authenticate with the pre-shared key",
        ));
    }
    Ok((ClientStream::OpenSsl(Box::new(s)), info))
}
