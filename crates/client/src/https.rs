//! One HTTPS request per TLS connection, with the connection's
//! [`TlsInfo`] (channel binding, exported keying material) handed to the
//! caller: what EST (the CSR carries the binding) and the oneM2M Enrolment
//! Exchange (Ke comes from the session) both need.

use crate::scep::{ClientError, Result};
use enrolkit_tls::{ClientTlsConfig, Connector, TlsInfo};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use std::time::Duration;
use zeroize::Zeroizing;

/// Largest response body read.
pub const MAX_RESPONSE: usize = 1 << 20;

/// One HTTP exchange and the connection it went over.
#[derive(Debug)]
pub struct Exchange {
    /// HTTP status.
    pub status: u16,
    /// Content-Type.
    pub content_type: Option<String>,
    /// Retry-After.
    pub retry_after: Option<String>,
    /// Body.
    pub body: Vec<u8>,
    /// What the TLS handshake established.
    pub tls: TlsInfo,
}

/// A blocking HTTPS client for one server: a new TLS connection per request.
pub struct TlsHttp {
    host: String,
    port: u16,
    connector: Connector,
    timeout: Duration,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for TlsHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsHttp")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish()
    }
}

pub(crate) fn network(url: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::Network {
        url: url.to_owned(),
        reason: e.to_string(),
    }
}

fn tls_refused(url: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::Tls {
        url: url.to_owned(),
        reason: e.to_string(),
    }
}

/// An error and its sources on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

impl TlsHttp {
    /// A client for `host:port` with these TLS settings.
    pub fn new(host: &str, port: u16, tls: &ClientTlsConfig) -> Result<Self> {
        let connector = Connector::new(tls).map_err(|e| ClientError::Tls {
            url: format!("{host}:{port}"),
            reason: format!("setup: {e}"),
        })?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::Unexpected(format!("runtime: {e}")))?;
        Ok(TlsHttp {
            host: host.to_owned(),
            port,
            connector,
            timeout: Duration::from_secs(60),
            rt,
        })
    }

    /// Connect, let `body` see the handshake, send `method path` with
    /// `headers` and the body it returned, read the answer.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&'static str, Zeroizing<String>)],
        body: &mut dyn FnMut(&TlsInfo) -> Result<Option<Vec<u8>>>,
    ) -> Result<Exchange> {
        let url = format!("https://{}:{}{}", self.host, self.port, path);
        self.rt.block_on(async {
            let fut = async {
                let tcp = tokio::net::TcpStream::connect((self.host.trim_matches(['[', ']']), self.port))
                    .await
                    .map_err(|e| network(&url, e))?;
                // One small request per connection: do not let Nagle hold it.
                tcp.set_nodelay(true).map_err(|e| network(&url, e))?;
                let (stream, tls) = self
                    .connector
                    .connect(&self.host, tcp)
                    .await
                    .map_err(|e| tls_refused(&url, e))?;
                let payload = body(&tls)?;
                let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .map_err(|e| network(&url, e))?;
                let driver = tokio::spawn(conn);
                let host = if self.host.contains(':') && !self.host.starts_with('[') {
                    format!("[{}]:{}", self.host, self.port)
                } else {
                    format!("{}:{}", self.host, self.port)
                };
                let mut rb = hyper::Request::builder()
                    .method(method)
                    .uri(path)
                    .header(hyper::header::HOST, host);
                for (name, value) in headers {
                    rb = rb.header(*name, value.as_str());
                }
                let req = rb
                    .body(Full::new(Bytes::from(payload.unwrap_or_default())))
                    .map_err(|e| ClientError::Unexpected(e.to_string()))?;
                let resp = match sender.send_request(req).await {
                    Ok(r) => r,
                    Err(e) => {
                        // The request was cancelled because the connection
                        // failed: a TLS alert (say, a TLS 1.3 server refusing
                        // our certificate after the handshake) refused the
                        // session; a connection that just closed may have
                        // delivered the request, so it is a network error.
                        let (why, tls) = match driver.await {
                            Ok(Err(ce)) => (chain(&ce), enrolkit_tls::is_tls_failure(&ce)),
                            _ => (chain(&e), enrolkit_tls::is_tls_failure(&e)),
                        };
                        return Err(if tls {
                            tls_refused(&url, format!("the server ended the session: {why}"))
                        } else {
                            network(&url, format!("the connection closed before a response: {why}"))
                        });
                    }
                };
                let status = resp.status().as_u16();
                let header = |n: hyper::header::HeaderName| {
                    resp.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_owned)
                };
                let content_type = header(hyper::header::CONTENT_TYPE);
                let retry_after = header(hyper::header::RETRY_AFTER);
                let body = Limited::new(resp.into_body(), MAX_RESPONSE)
                    .collect()
                    .await
                    .map_err(|e| network(&url, format!("reading the body: {e}")))?
                    .to_bytes()
                    .to_vec();
                driver.abort();
                Ok(Exchange {
                    status,
                    content_type,
                    retry_after,
                    body,
                    tls,
                })
            };
            tokio::time::timeout(self.timeout, fut)
                .await
                .map_err(|_| network(&url, "timed out"))?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn client(port: u16) -> TlsHttp {
        let tls = ClientTlsConfig {
            trust: enrolkit_tls::ServerTrust::Bootstrap,
            certificate: None,
            psk: None,
            min_version: enrolkit_tls::TlsVersion::Tls12,
            max_version: enrolkit_tls::TlsVersion::Tls13,
            keying_export: None,
        };
        TlsHttp::new("127.0.0.1", port, &tls).unwrap()
    }

    fn get(c: &TlsHttp) -> ClientError {
        c.request("GET", "/", &[], &mut |_| Ok(None)).unwrap_err()
    }

    #[test]
    fn a_failed_handshake_is_a_refused_session() {
        // Something that answers, but not with TLS.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        });
        let e = get(&client(port));
        server.join().unwrap();
        assert!(matches!(e, ClientError::Tls { .. }), "{e:?}");
        assert!(e.session_refused());
        assert!(e.to_string().contains("TLS"), "{e}");
    }

    #[test]
    fn settings_that_cannot_make_a_session_are_a_refusal() {
        let tls = ClientTlsConfig {
            trust: enrolkit_tls::ServerTrust::Anchors(vec![]),
            certificate: None,
            psk: None,
            min_version: enrolkit_tls::TlsVersion::Tls12,
            max_version: enrolkit_tls::TlsVersion::Tls13,
            keying_export: None,
        };
        let e = TlsHttp::new("127.0.0.1", 1, &tls).unwrap_err();
        assert!(matches!(e, ClientError::Tls { .. }), "{e:?}");
        assert!(e.session_refused());
    }

    /// A TLS server (OpenSSL listener, self-signed P-256 certificate) that
    /// reads the request and closes the connection without answering.
    fn read_and_close() -> (u16, std::thread::JoinHandle<usize>) {
        let dir = tempfile::tempdir().unwrap();
        let (cert, pkcs8) = enrolkit_testkit::self_signed_p256(dir.path());
        let cfg = enrolkit_tls::ServerTlsConfig {
            chain: vec![cert],
            key_pkcs8: Zeroizing::new(pkcs8),
            client_trust_anchors: vec![],
            min_version: enrolkit_tls::TlsVersion::Tls12,
            max_version: enrolkit_tls::TlsVersion::Tls13,
            keying_export: None,
        };
        let acceptor = enrolkit_tls::Acceptor::openssl(&cfg, None).unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        l.set_nonblocking(true).unwrap();
        let server = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use tokio::io::AsyncReadExt;
                let l = tokio::net::TcpListener::from_std(l).unwrap();
                let (tcp, _) = l.accept().await.unwrap();
                let (mut s, _) = acceptor.accept(tcp).await.unwrap();
                let mut buf = vec![0u8; 4096];
                let mut got = 0;
                // Up to the end of the headers, then hang up.
                while !buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf[got..]).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    got += n;
                }
                got
            })
        });
        (port, server)
    }

    #[test]
    fn a_connection_closed_after_the_request_is_not_a_refusal() {
        // The server may have taken the request: another attempt with other
        // credentials could make it twice.
        let (port, server) = read_and_close();
        let e = get(&client(port));
        assert!(server.join().unwrap() > 0, "the request reached the server");
        assert!(matches!(e, ClientError::Network { .. }), "{e:?}");
        assert!(e.to_string().contains("closed before a response"), "{e}");
        assert!(!e.session_refused());
    }

    #[test]
    fn a_server_that_is_not_there_is_not_a_refusal() {
        // A port nobody listens on: retrying with other credentials cannot help.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = get(&client(port));
        assert!(matches!(e, ClientError::Network { .. }), "{e:?}");
        assert!(!e.session_refused());
    }

    #[test]
    fn only_authentication_statuses_are_refusals() {
        let http = |status| ClientError::Http {
            status,
            body: String::new(),
        };
        assert!(http(401).session_refused());
        assert!(http(403).session_refused());
        for status in [400, 404, 500, 503] {
            assert!(!http(status).session_refused(), "{status}");
        }
        assert!(!ClientError::Unexpected("the server answered without a certificate".into()).session_refused());
    }
}
