//! The EST client (RFC 7030, RFC 8951).
//!
//! One TLS connection per operation, so the CSR of `/simpleenroll` can carry
//! the channel binding of the very connection it is sent on (RFC 7030 §3.5).
//! TLS is OpenSSL through `enrolkit-tls` (external PSK and `tls-unique` are
//! not available in rustls); HTTP/1.1 is hyper; bodies are `enrolkit-est`.

use crate::scep::{ClientError, Result};
use enrolkit_est::{ChannelBinding, CsrAttrs, EstPath, Label, MediaType, Operation, RetryAfter, ServerKeyGenResponse};
use enrolkit_tls::{ClientTlsConfig, Connector, TlsInfo};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use std::time::{Duration, Instant, SystemTime};
use x509_cert::Certificate;
use zeroize::Zeroizing;

/// Largest response body read.
pub const MAX_RESPONSE: usize = 1 << 20;

/// Where the EST server is: `https://host[:port][/label]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EstServer {
    /// Host name or IP address (as used for name verification).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Optional CA label (RFC 7030 §3.2.2).
    pub label: Option<Label>,
}

impl EstServer {
    /// Parse `https://host[:port][/label]`; a full `/.well-known/est/...` path is accepted too.
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |why: &str| ClientError::Unexpected(format!("server URL {url}: {why}"));
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| bad("must start with https://"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed IPv6 literal"))?;
            let port = after.strip_prefix(':').map(str::parse::<u16>).transpose();
            (h.to_owned(), port.map_err(|_| bad("bad port"))?)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p.parse::<u16>().map_err(|_| bad("bad port"))?)),
                None => (authority.to_owned(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let path = path.trim_matches('/');
        let path = path
            .strip_prefix(".well-known/est")
            .map(|p| p.trim_start_matches('/'))
            .unwrap_or(path);
        let label = if path.is_empty() {
            None
        } else {
            Some(Label::new(path).map_err(|e| bad(&e.to_string()))?)
        };
        Ok(EstServer {
            host,
            port: port.unwrap_or(443),
            label,
        })
    }

    fn path(&self, op: Operation) -> String {
        EstPath {
            label: self.label.clone(),
            operation: op,
        }
        .to_string()
    }
}

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

/// Outcome of `/simpleenroll`, `/simplereenroll` or `/serverkeygen`.
#[derive(Debug)]
pub enum EnrollReply {
    /// The certificate(s) (`/simple(re)enroll`).
    Issued(Vec<Certificate>),
    /// Key and certificate made by the server.
    KeyAndCertificate(ServerKeyGenResponse),
    /// 202: ask again after this long.
    Retry(Duration),
}

/// An EST client for one server and one set of credentials.
pub struct EstClient {
    server: EstServer,
    connector: Connector,
    basic: Option<(String, Zeroizing<String>)>,
    timeout: Duration,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for EstClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EstClient")
            .field("server", &self.server)
            .field("basic", &self.basic.as_ref().map(|(u, _)| u))
            .finish()
    }
}

fn network(url: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::Network {
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

fn first_line(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

impl EstClient {
    /// A client; `basic` adds HTTP Basic credentials to enrolment requests.
    pub fn new(server: EstServer, tls: &ClientTlsConfig, basic: Option<(String, Zeroizing<String>)>) -> Result<Self> {
        let connector = Connector::new(tls).map_err(|e| ClientError::Unexpected(format!("TLS setup: {e}")))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::Unexpected(format!("runtime: {e}")))?;
        Ok(EstClient {
            server,
            connector,
            basic,
            timeout: Duration::from_secs(60),
            rt,
        })
    }

    /// The server.
    pub fn server(&self) -> &EstServer {
        &self.server
    }

    /// Connect, let `body` see the handshake (for the channel binding), send, read the answer.
    pub fn exchange(
        &self,
        op: Operation,
        body: &mut dyn FnMut(&TlsInfo) -> Result<Option<Vec<u8>>>,
    ) -> Result<Exchange> {
        let path = self.server.path(op);
        let url = format!("https://{}:{}{}", self.server.host, self.server.port, path);
        self.rt.block_on(async {
            let fut = async {
                let tcp = tokio::net::TcpStream::connect((self.server.host.trim_matches(['[', ']']), self.server.port))
                    .await
                    .map_err(|e| network(&url, e))?;
                // One small request per connection: do not let Nagle hold it.
                tcp.set_nodelay(true).map_err(|e| network(&url, e))?;
                let (stream, tls) = self
                    .connector
                    .connect(&self.server.host, tcp)
                    .await
                    .map_err(|e| network(&url, format!("TLS: {e}")))?;
                let payload = body(&tls)?;
                let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .map_err(|e| network(&url, e))?;
                let driver = tokio::spawn(conn);
                let host = if self.server.host.contains(':') && !self.server.host.starts_with('[') {
                    format!("[{}]:{}", self.server.host, self.server.port)
                } else {
                    format!("{}:{}", self.server.host, self.server.port)
                };
                let mut rb = hyper::Request::builder()
                    .method(op.method())
                    .uri(path.as_str())
                    .header(hyper::header::HOST, host);
                if let Some(media) = op.request_media() {
                    rb = rb.header(hyper::header::CONTENT_TYPE, media.as_str()).header(
                        enrolkit_est::media::CONTENT_TRANSFER_ENCODING,
                        enrolkit_est::media::BASE64,
                    );
                }
                if let (Some((user, pw)), Some(_)) = (&self.basic, op.request_media()) {
                    use base64::Engine;
                    let creds = Zeroizing::new(format!("{user}:{}", pw.as_str()));
                    let value = Zeroizing::new(format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(creds.as_bytes())
                    ));
                    rb = rb.header(hyper::header::AUTHORIZATION, value.as_str());
                }
                let req = rb
                    .body(Full::new(Bytes::from(payload.unwrap_or_default())))
                    .map_err(|e| ClientError::Unexpected(e.to_string()))?;
                let resp = match sender.send_request(req).await {
                    Ok(r) => r,
                    Err(e) => {
                        // The request was cancelled because the connection
                        // failed (say, a TLS 1.3 server refusing our certificate
                        // after the handshake): report why it failed.
                        let why = match driver.await {
                            Ok(Err(ce)) => chain(&ce),
                            _ => chain(&e),
                        };
                        return Err(network(&url, why));
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

    fn expect(&self, x: &Exchange, media: MediaType) -> Result<Vec<u8>> {
        if x.status != 200 {
            return Err(ClientError::Http {
                status: x.status,
                body: first_line(&x.body),
            });
        }
        let ct = x.content_type.as_deref().unwrap_or("");
        match MediaType::parse(ct) {
            Ok(m) if m == media => {}
            _ => {
                return Err(ClientError::Unexpected(format!(
                    "expected Content-Type {}, got {ct:?}",
                    media.as_str()
                )))
            }
        }
        // RFC 8951: base64 whatever Content-Transfer-Encoding says.
        enrolkit_est::body::decode_base64(&x.body, MAX_RESPONSE).map_err(ClientError::from)
    }

    /// `/cacerts`: the CA certificates, and the handshake (whose server chain
    /// a bootstrapping caller must check against them).
    pub fn cacerts(&self) -> Result<(Vec<Certificate>, TlsInfo)> {
        let x = self.exchange(Operation::CaCerts, &mut |_| Ok(None))?;
        let der = self.expect(&x, MediaType::CertsOnly)?;
        let certs = enrolkit_est::decode_certs_only(&der)?;
        if certs.is_empty() {
            return Err(ClientError::Unexpected("/cacerts returned no certificate".into()));
        }
        Ok((certs, x.tls))
    }

    /// `/csrattrs`: what the server wants in a CSR (empty on 204 or 404, RFC 7030 §4.5.2).
    pub fn csrattrs(&self) -> Result<CsrAttrs> {
        let x = self.exchange(Operation::CsrAttrs, &mut |_| Ok(None))?;
        if x.status == 204 || x.status == 404 {
            return Ok(CsrAttrs::new());
        }
        let der = self.expect(&x, MediaType::CsrAttrs)?;
        Ok(CsrAttrs::from_der(&der)?)
    }

    /// One enrolment request; `make_csr` builds the DER CSR for the
    /// connection's channel binding (`None` when the connection has none).
    pub fn enroll(
        &self,
        op: Operation,
        make_csr: &mut dyn FnMut(Option<&ChannelBinding>) -> Result<Vec<u8>>,
    ) -> Result<EnrollReply> {
        if !matches!(
            op,
            Operation::SimpleEnroll | Operation::SimpleReenroll | Operation::ServerKeyGen
        ) {
            return Err(ClientError::Unexpected(format!("{} is not an enrolment", op.name())));
        }
        let x = self.exchange(op, &mut |tls| {
            let der = make_csr(tls.channel_binding.as_ref())?;
            Ok(Some(enrolkit_est::body::encode_base64(&der).into_bytes()))
        })?;
        if x.status == 202 {
            let wait = match x.retry_after.as_deref().map(RetryAfter::parse) {
                Some(Ok(r)) => r.delay(SystemTime::now()),
                Some(Err(e)) => return Err(ClientError::Unexpected(format!("202 with a bad Retry-After: {e}"))),
                None => Duration::from_secs(60),
            };
            return Ok(EnrollReply::Retry(wait));
        }
        if op == Operation::ServerKeyGen {
            if x.status != 200 {
                return Err(ClientError::Http {
                    status: x.status,
                    body: first_line(&x.body),
                });
            }
            let ct = x.content_type.as_deref().unwrap_or("");
            return Ok(EnrollReply::KeyAndCertificate(
                enrolkit_est::keygen::parse_serverkeygen_response(ct, &x.body)?,
            ));
        }
        let der = self.expect(&x, MediaType::CertsOnly)?;
        let certs = enrolkit_est::decode_certs_only(&der)?;
        if certs.is_empty() {
            return Err(ClientError::Unexpected("the reply holds no certificate".into()));
        }
        Ok(EnrollReply::Issued(certs))
    }

    /// [`EstClient::enroll`], honouring 202 + Retry-After until `window` has
    /// passed; `progress(attempt, elapsed, next_wait)` is told before each wait.
    /// Each wait is at least one second and at most `max_interval`.
    pub fn enroll_waiting(
        &self,
        op: Operation,
        make_csr: &mut dyn FnMut(Option<&ChannelBinding>) -> Result<Vec<u8>>,
        window: Duration,
        max_interval: Duration,
        progress: &mut dyn FnMut(u32, Duration, Duration),
    ) -> Result<EnrollReply> {
        let started = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            match self.enroll(op, make_csr)? {
                EnrollReply::Retry(wait) => {
                    let wait = wait.clamp(Duration::from_secs(1), max_interval.max(Duration::from_secs(1)));
                    let elapsed = started.elapsed();
                    if elapsed + wait > window {
                        return Err(ClientError::WindowExceeded { elapsed, attempts });
                    }
                    progress(attempts, elapsed, wait);
                    std::thread::sleep(wait);
                }
                done => return Ok(done),
            }
        }
    }
}

/// SHA-256 fingerprint (lowercase hex) of a certificate's DER.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(enrolkit_keys::DigestAlgorithm::Sha256.digest(der))
}

/// Normalise a fingerprint as people write it (colons, spaces, upper case).
pub fn normalise_fingerprint(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_hexdigit())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}
