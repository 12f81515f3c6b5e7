//! hyper glue: routes, body limits, one log line per request. The SCEP work
//! (RSA) runs on the blocking pool so the reactor keeps accepting. Every
//! response's header names go out in their canonical spelling
//! ([`header_case`]).

pub mod admin;
pub mod header_case;
pub mod limits;

use limits::{Gate, Rejection, Reserve};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::metrics::{self, Metrics, Protocol};
use crate::scep::{HttpRequest, HttpResponse, ScepService};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tokio::net::TcpListener;

/// Paths the SCEP responder answers on.
pub const SCEP_PATHS: [&str; 2] = ["/scep", "/cgi-bin/pkiclient.exe"];

/// Path of the current CRL (DER, `application/pkix-crl`, RFC 5280 §4.2.1.13):
/// point a profile's `crl_url` here.
pub const CRL_PATH: &str = "/crl";

async fn crl(svc: Arc<ScepService>, metrics: &Metrics, started: Instant) -> Response<Full<Bytes>> {
    let res = tokio::task::spawn_blocking(move || svc.current_crl(SystemTime::now())).await;
    let resp = match res {
        Ok(Ok(c)) => {
            tracing::info!(
                path = CRL_PATH,
                crl_number = c.number,
                status = 200,
                ms = started.elapsed().as_secs_f64() * 1000.0,
                "crl"
            );
            HttpResponse {
                status: 200,
                content_type: "application/pkix-crl",
                body: c.der.clone(),
            }
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot produce the CRL");
            text(500, "cannot produce the CRL")
        }
        Err(e) => {
            tracing::error!(error = %e, "CRL task failed");
            text(500, "internal error")
        }
    };
    counted(metrics, Protocol::Crl, "GET", started, reply(resp))
}

/// Count a response in `metrics` by its status class: every answer that
/// does not carry a protocol's own outcome (a refusal before the service
/// saw the request, a failed handler task, `/crl`).
fn counted(
    metrics: &Metrics,
    protocol: Protocol,
    operation: &'static str,
    started: Instant,
    resp: Response<Full<Bytes>>,
) -> Response<Full<Bytes>> {
    metrics.request(
        protocol,
        operation,
        metrics::status_class(resp.status().as_u16()),
        started.elapsed(),
    );
    resp
}

fn reply(r: HttpResponse) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(r.body)));
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = hyper::header::HeaderValue::from_str(r.content_type) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

/// The request body, at most `limit` bytes; otherwise the 413 to send.
async fn read_body(body: Full<Bytes>, limit: usize, path: &str) -> Result<Bytes, Response<Full<Bytes>>> {
    match Limited::new(body, limit).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(_) => {
            tracing::info!(%path, status = 413, "body too large or unreadable");
            Err(reply(text(413, "request body too large or unreadable")))
        }
    }
}

/// The answer when a handler's blocking task failed.
fn handler_failed(e: &tokio::task::JoinError) -> Response<Full<Bytes>> {
    tracing::error!(error = %e, "request handler failed");
    reply(text(500, "internal error"))
}

fn text(status: u16, msg: &str) -> HttpResponse {
    HttpResponse {
        status,
        content_type: "text/plain; charset=utf-8",
        body: format!("{msg}\n").into_bytes(),
    }
}

/// `/ocsp` (POST) and `/ocsp/<request>` (GET): one log line per request.
async fn ocsp(
    svc: Arc<crate::ocsp::OcspResponder>,
    metrics: &Metrics,
    req: Req,
    started: Instant,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let method = req.method().as_str().to_owned();
    let operation = metrics::ocsp_operation(&method);
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match read_body(req.into_body(), crate::ocsp::MAX_REQUEST, crate::ocsp::OCSP_PATH).await {
        Ok(b) => b,
        Err(r) => return counted(metrics, Protocol::Ocsp, operation, started, r),
    };
    let method2 = method.clone();
    let res = tokio::task::spawn_blocking(move || {
        let r = crate::ocsp::OcspHttpRequest {
            method: &method2,
            path: &path,
            content_type: content_type.as_deref(),
            body: &body,
        };
        svc.handle(&r, SystemTime::now())
    })
    .await;
    match res {
        Ok((resp, log)) => {
            tracing::info!(
                %method,
                path = crate::ocsp::OCSP_PATH,
                certs = %log.certs,
                nonce = log.nonce,
                outcome = %log.outcome,
                status = resp.status,
                ms = started.elapsed().as_secs_f64() * 1000.0,
                "ocsp"
            );
            counted(metrics, Protocol::Ocsp, operation, started, reply(resp))
        }
        Err(e) => counted(metrics, Protocol::Ocsp, operation, started, handler_failed(&e)),
    }
}

/// `/.well-known/cmp[/p/<label>]`: RFC 6712 transfer (POST,
/// `application/pkixcmp`), the work on the blocking pool, one log line.
async fn cmp(
    svc: Arc<crate::cmp::CmpService>,
    metrics: &Metrics,
    label: String,
    req: Req,
    started: Instant,
) -> Response<Full<Bytes>> {
    if req.method() != Method::POST {
        let r = reply(text(405, "CMP messages are POSTed (RFC 6712)"));
        return counted(metrics, Protocol::Cmp, "invalid", started, r);
    }
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    if content_type.as_deref() != Some(crate::cmp::CONTENT_TYPE) {
        let r = reply(text(415, "Content-Type must be application/pkixcmp (RFC 6712)"));
        return counted(metrics, Protocol::Cmp, "invalid", started, r);
    }
    let body = match read_body(
        req.into_body(),
        enrolkit_cmp::Limits::DEFAULT.max_message,
        crate::cmp::CMP_PATH,
    )
    .await
    {
        Ok(b) => b,
        Err(r) => return counted(metrics, Protocol::Cmp, "invalid", started, r),
    };
    let res = tokio::task::spawn_blocking(move || svc.handle(&body, SystemTime::now())).await;
    match res {
        Ok((resp, log)) => {
            tracing::info!(
                label = %label,
                body = log.body,
                transaction = %log.transaction_id,
                protection = %log.protection,
                outcome = %log.outcome,
                status = resp.status,
                ms = started.elapsed().as_secs_f64() * 1000.0,
                "cmp"
            );
            metrics.request(
                Protocol::Cmp,
                if log.body.is_empty() { "invalid" } else { log.body },
                if resp.status == 200 {
                    log.result
                } else {
                    metrics::status_class(resp.status)
                },
                started.elapsed(),
            );
            reply(HttpResponse {
                status: resp.status,
                content_type: resp.content_type,
                body: resp.body,
            })
        }
        Err(e) => counted(metrics, Protocol::Cmp, "invalid", started, handler_failed(&e)),
    }
}

/// What the plain-HTTP listener serves: SCEP and the CRL, and the CA's OCSP
/// responder when there is one.
#[derive(Clone)]
pub struct HttpServices {
    /// The SCEP responder (also the source of `/crl`).
    pub scep: Arc<ScepService>,
    /// The OCSP responder at [`crate::ocsp::OCSP_PATH`].
    pub ocsp: Option<Arc<crate::ocsp::OcspResponder>>,
    /// The CMP server at [`crate::cmp::CMP_PATH`], when `[cmp]` is configured.
    pub cmp: Option<Arc<crate::cmp::CmpService>>,
    /// Where every request is counted and timed.
    pub metrics: Arc<Metrics>,
}

async fn handle(services: HttpServices, req: Req) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let path = req.uri().path().to_owned();
    let m = &*services.metrics;
    if let Some(o) = services.ocsp.as_ref().filter(|_| crate::ocsp::is_ocsp_path(&path)) {
        return ocsp(o.clone(), m, req, started).await;
    }
    if let Some(label) = crate::cmp::path_label(&path) {
        return match &services.cmp {
            Some(c) => cmp(c.clone(), m, label.to_owned(), req, started).await,
            None => counted(m, Protocol::Other, "none", started, reply(text(404, "not found"))),
        };
    }
    let svc = services.scep;
    let query = req.uri().query().unwrap_or("").to_owned();
    let method = req.method().clone();
    if path == CRL_PATH && method == Method::GET {
        return crl(svc, m, started).await;
    }
    if !SCEP_PATHS.contains(&path.as_str()) {
        tracing::info!(%method, %path, status = 404, "not found");
        return counted(m, Protocol::Other, "none", started, reply(text(404, "not found")));
    }
    // The operation as the query names it, for what is refused before the responder sees it.
    let named = enrolkit_scep::Query::parse(&query).map_or("invalid", |q| q.operation.as_str());
    let post = match method {
        Method::GET => false,
        Method::POST => true,
        _ => return counted(m, Protocol::Scep, named, started, reply(text(405, "only GET and POST"))),
    };
    let body = if post {
        match read_body(req.into_body(), enrolkit_scep::transport::MAX_MESSAGE, &path).await {
            Ok(b) => b,
            Err(r) => return counted(m, Protocol::Scep, named, started, r),
        }
    } else {
        Bytes::new()
    };
    let svc2 = svc.clone();
    let res = tokio::task::spawn_blocking(move || {
        let r = HttpRequest {
            post,
            query: &query,
            body: &body,
        };
        svc2.handle(&r, SystemTime::now())
    })
    .await;
    match res {
        Ok((resp, log)) => {
            tracing::info!(
                operation = %log.operation,
                message_type = %log.message_type,
                transaction = %log.transaction_id,
                algorithms = %log.algorithms,
                outcome = %log.outcome,
                status = resp.status,
                ms = started.elapsed().as_secs_f64() * 1000.0,
                "scep"
            );
            m.request(
                Protocol::Scep,
                metrics::scep_operation(&log.operation),
                metrics::scep_outcome(resp.status, log.pki_status, log.fail_info),
                started.elapsed(),
            );
            reply(resp)
        }
        Err(e) => counted(m, Protocol::Scep, named, started, handler_failed(&e)),
    }
}

/// Accept on `listener` until the process ends, handing each connection
/// that `gate` admits to `conn` on its own task (over a cap it is closed at
/// once). Out of file descriptors, the reserve one is given up to accept
/// and close the waiting connection, so the loop never spins; any other
/// accept error waits a moment and goes on: the server keeps serving.
async fn accept_loop<F, Fut>(listener: TcpListener, gate: Arc<Gate>, conn: F) -> std::io::Result<()>
where
    F: Fn(tokio::net::TcpStream, std::net::SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut reserve = Reserve::new();
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let permit = match gate.admit(peer.ip()) {
                    Ok(p) => p,
                    Err(cause) => {
                        gate.reject(cause, Some(peer.ip()));
                        // Reset, not FIN: no TIME_WAIT entry per refused
                        // connection when a host reconnects in a loop.
                        let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                        drop(stream);
                        continue;
                    }
                };
                // Small TLS records (tickets, then the response) must not wait
                // for the peer's delayed ACK (Nagle): 40 ms per request otherwise.
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY");
                }
                let lifetime = gate.limits().connection_lifetime;
                let fut = conn(stream, peer);
                let gate = gate.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    if tokio::time::timeout(lifetime, fut).await.is_err() {
                        gate.reject(Rejection::Lifetime, Some(peer.ip()));
                    }
                });
            }
            Err(e) if limits::out_of_descriptors(&e) => {
                gate.reject(Rejection::OutOfDescriptors, None);
                reserve.release();
                if let Ok(Ok((s, _))) = tokio::time::timeout(Duration::from_millis(10), listener.accept()).await {
                    drop(s);
                }
                reserve.retake();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The largest request body any route accepts: the gate reads bodies up
/// to this (each route then applies its own limit).
const MAX_ANY_BODY: usize = max(
    max(enrolkit_scep::transport::MAX_MESSAGE, crate::est::MAX_REQUEST_BODY),
    max(
        max(enrolkit_exchange::MAX_MESSAGE, crate::ocsp::MAX_REQUEST),
        enrolkit_cmp::Limits::DEFAULT.max_message,
    ),
);

/// The larger of two sizes, in a constant.
const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// A request whose body has been read (within the body timeout and
/// [`MAX_ANY_BODY`]).
type Req = Request<Full<Bytes>>;

/// Read the body of `req` under the body timeout: the request with its body
/// in memory, or the response that ends the connection (408, 413).
async fn buffered(
    req: Request<Incoming>,
    gate: &Gate,
    peer: std::net::SocketAddr,
) -> Result<Req, Response<Full<Bytes>>> {
    let (parts, body) = req.into_parts();
    let closing = |status: u16, msg: &str| {
        let mut r = reply(text(status, msg));
        r.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
        r
    };
    match tokio::time::timeout(gate.limits().body_timeout, Limited::new(body, MAX_ANY_BODY).collect()).await {
        Ok(Ok(b)) => Ok(Request::from_parts(parts, Full::new(b.to_bytes()))),
        Ok(Err(_)) => {
            tracing::info!(path = %parts.uri.path(), status = 413, "body too large or unreadable");
            Err(closing(413, "request body too large or unreadable"))
        }
        Err(_) => {
            gate.reject(Rejection::BodyTimeout, Some(peer.ip()));
            Err(closing(408, "request body not received in time"))
        }
    }
}

/// Whether `req` starts an enrolment operation, the work an address is
/// rate-limited on ([`Gate::allow_enrolment`]): a SCEP PKIOperation (the RA
/// decrypts and signs for a sender nobody has authenticated yet) or an EST
/// enrolment (`simpleenroll`, `simplereenroll`, `serverkeygen`, `fullcmc`,
/// with or without a label).
fn is_enrolment<B>(req: &Request<B>) -> bool {
    let uri = req.uri();
    // Every CMP message may start a transaction (and costs a signature).
    if crate::cmp::path_label(uri.path()).is_some() {
        return true;
    }
    if uri.path().starts_with(EST_PREFIX) {
        return matches!(
            uri.path().rsplit('/').next(),
            Some("simpleenroll" | "simplereenroll" | "serverkeygen" | "fullcmc")
        );
    }
    uri.query().is_some_and(|q| {
        q.split('&')
            .any(|kv| kv.len() == "operation=PKIOperation".len() && kv.eq_ignore_ascii_case("operation=PKIOperation"))
    })
}

/// The 429 for an address over its enrolment rate; the body is not read
/// and the connection closes after it.
fn too_many_enrolments() -> Response<Full<Bytes>> {
    let mut r = reply(text(429, "too many enrolment requests from this address; retry later"));
    let h = r.headers_mut();
    h.insert(hyper::header::RETRY_AFTER, hyper::header::HeaderValue::from_static("1"));
    h.insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    r
}

/// HTTP/1.1 on one connection: the header (and keep-alive idle) timeout
/// and the request cap of `gate`'s limits, bodies read under the body
/// timeout before the handler sees them, header names in their canonical
/// spelling.
async fn serve_http1<I, H, Fut>(io: I, peer: std::net::SocketAddr, gate: Arc<Gate>, handler: H)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    H: Fn(Req) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let served = Arc::new(AtomicUsize::new(0));
    let max_requests = gate.limits().max_requests_per_connection;
    let header_timeout = gate.limits().header_timeout;
    let handler = Arc::new(handler);
    let g = gate.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let (handler, gate, served) = (handler.clone(), g.clone(), served.clone());
        async move {
            let mut resp = if is_enrolment(&req) && !gate.allow_enrolment(peer.ip()) {
                too_many_enrolments()
            } else {
                match buffered(req, &gate, peer).await {
                    Ok(req) => handler(req).await,
                    Err(r) => r,
                }
            };
            if served.fetch_add(1, Ordering::Relaxed) + 1 >= max_requests {
                resp.headers_mut().insert(
                    hyper::header::CONNECTION,
                    hyper::header::HeaderValue::from_static("close"),
                );
            }
            if let Some(ext) = header_case::canonical().await {
                *resp.extensions_mut() = ext.clone();
            }
            Ok::<_, std::convert::Infallible>(resp)
        }
    });
    if let Err(e) = http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .title_case_headers(true)
        .preserve_header_case(true)
        .serve_connection(TokioIo::new(io), service)
        .await
    {
        if e.is_timeout() {
            gate.reject(Rejection::HeaderTimeout, Some(peer.ip()));
        } else if e.is_parse() || e.is_parse_too_large() {
            gate.reject(Rejection::Malformed, Some(peer.ip()));
        }
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Serve SCEP (and `/crl`) on `listener` until the process ends, with the
/// default [`limits::Limits`].
pub async fn serve(listener: TcpListener, svc: Arc<ScepService>) -> std::io::Result<()> {
    let gate = Gate::new(limits::Limits::default());
    let services = HttpServices {
        scep: svc,
        ocsp: None,
        cmp: None,
        metrics: Arc::new(Metrics::new()),
    };
    serve_http(listener, services, gate).await
}

/// Serve SCEP, `/crl` and, when given, OCSP on `listener` until the process
/// ends; every connection passes `gate` (shared with the other listeners).
pub async fn serve_http(listener: TcpListener, services: HttpServices, gate: Arc<Gate>) -> std::io::Result<()> {
    let g = gate.clone();
    accept_loop(listener, gate, move |stream, peer| {
        let services = services.clone();
        serve_http1(stream, peer, g.clone(), move |req| handle(services.clone(), req))
    })
    .await
}

/// EST requests go under this prefix (RFC 7030 §3.2.2).
pub const EST_PREFIX: &str = "/.well-known/est/";

/// What the TLS listeners serve: EST, and the RSPF MEF when configured.
#[derive(Clone)]
pub struct TlsServices {
    /// The EST server.
    pub est: Arc<crate::est::EstService>,
    /// The MEF's Enrolment Exchange and Key Retrieval.
    pub rspf: Option<Arc<crate::rspf::RspfService>>,
    /// Where every request is counted and timed.
    pub metrics: Arc<Metrics>,
    /// The in-memory keys the OpenSSL listener's handshakes are answered
    /// from, for [`crate::handshake::keep_current`] to reload.
    pub handshake_keys: Vec<Arc<dyn crate::handshake::Refresh>>,
}

async fn handle_rspf(
    svc: Arc<crate::rspf::RspfService>,
    metrics: &Metrics,
    tls: Arc<enrolkit_tls::TlsInfo>,
    req: Req,
) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let path = req.uri().path().to_owned();
    let method = req.method().as_str().to_owned();
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let content_type = header("content-type");
    let accept = header("accept");
    let from = header("from");
    let origin = header("x-m2m-origin");
    let named = crate::rspf::operation_of(&path);
    let body = match read_body(req.into_body(), enrolkit_exchange::MAX_MESSAGE, &path).await {
        Ok(b) => b,
        Err(r) => return counted(metrics, Protocol::Rspf, named, started, r),
    };
    let tls2 = tls.clone();
    let res = tokio::task::spawn_blocking(move || {
        let r = crate::rspf::RspfRequest {
            method: &method,
            path: &path,
            content_type: content_type.as_deref(),
            accept: accept.as_deref(),
            from: from.as_deref(),
            origin: origin.as_deref(),
            body: &body,
            tls: &tls2,
        };
        svc.handle(&r, SystemTime::now())
    })
    .await;
    match res {
        Ok((resp, log)) => {
            tracing::info!(
                operation = log.operation,
                peer = %log.peer,
                ke_id = %log.ke_id,
                tls = %format_args!("{}/{}", tls.backend, tls.version),
                outcome = %log.outcome,
                status = resp.status,
                ms = started.elapsed().as_secs_f64() * 1000.0,
                "rspf"
            );
            counted(
                metrics,
                Protocol::Rspf,
                metrics::rspf_operation(log.operation),
                started,
                reply(resp),
            )
        }
        Err(e) => counted(metrics, Protocol::Rspf, named, started, handler_failed(&e)),
    }
}

async fn handle_tls(svc: TlsServices, tls: Arc<enrolkit_tls::TlsInfo>, req: Req) -> Response<Full<Bytes>> {
    match &svc.rspf {
        Some(r) if crate::rspf::is_rspf_path(req.uri().path()) => handle_rspf(r.clone(), &svc.metrics, tls, req).await,
        _ => handle_est(svc.est, &svc.metrics, tls, req).await,
    }
}

async fn handle_est(
    svc: Arc<crate::est::EstService>,
    metrics: &Metrics,
    tls: Arc<enrolkit_tls::TlsInfo>,
    req: Req,
) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let path = req.uri().path().to_owned();
    let method = req.method().as_str().to_owned();
    let header = |n: hyper::header::HeaderName| req.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let content_type = header(hyper::header::CONTENT_TYPE);
    let authorization = header(hyper::header::AUTHORIZATION);
    if !path.starts_with(EST_PREFIX) {
        tracing::info!(%method, %path, status = 404, "not found");
        let r = est_reply(crate::est::EstResponse {
            status: 404,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
            body: b"not found\n".to_vec(),
        });
        return counted(metrics, Protocol::Other, "none", started, r);
    }
    let named = path.rsplit('/').next().map_or("other", metrics::est_operation);
    let body = match read_body(req.into_body(), crate::est::MAX_REQUEST_BODY, &path).await {
        Ok(b) => b,
        Err(r) => return counted(metrics, Protocol::Est, named, started, r),
    };
    let tls2 = tls.clone();
    let res = tokio::task::spawn_blocking(move || {
        let r = crate::est::EstRequest {
            method: &method,
            path: &path,
            content_type: content_type.as_deref(),
            authorization: authorization.as_deref(),
            body: &body,
            tls: &tls2,
        };
        svc.handle(&r, SystemTime::now())
    })
    .await;
    match res {
        Ok((resp, log)) => {
            tracing::info!(
                operation = %log.operation,
                label = %log.label,
                tls = %format_args!("{}/{}", tls.backend, tls.version),
                auth = %log.auth,
                subject = %log.subject,
                outcome = %log.outcome,
                status = resp.status,
                ms = started.elapsed().as_secs_f64() * 1000.0,
                "est"
            );
            let operation = metrics::est_operation(&log.operation);
            counted(metrics, Protocol::Est, operation, started, est_reply(resp))
        }
        Err(e) => counted(metrics, Protocol::Est, named, started, handler_failed(&e)),
    }
}

fn est_reply(r: crate::est::EstResponse) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(r.body)));
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in r.headers {
        if let Ok(v) = hyper::header::HeaderValue::from_str(&value) {
            resp.headers_mut().append(name, v);
        }
    }
    resp
}

/// Serve EST (and the RSPF MEF, when configured) over TLS on `listener`
/// until the process ends. Each connection is handshaken by `acceptor`
/// (rustls or OpenSSL) on its own task.
pub async fn serve_est(
    listener: TcpListener,
    acceptor: enrolkit_tls::Acceptor,
    svc: TlsServices,
    gate: Arc<Gate>,
) -> std::io::Result<()> {
    let g = gate.clone();
    accept_loop(listener, gate, move |stream, peer| {
        let svc = svc.clone();
        let acceptor = acceptor.clone();
        let gate = g.clone();
        async move {
            let (tls_stream, info) = match acceptor.accept(stream).await {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(%peer, backend = %acceptor.backend(), error = %e, "TLS handshake failed");
                    gate.reject(Rejection::Handshake, Some(peer.ip()));
                    return;
                }
            };
            let info = Arc::new(info);
            serve_http1(tls_stream, peer, gate, move |req| {
                handle_tls(svc.clone(), info.clone(), req)
            })
            .await;
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn req(uri: &str) -> Request<()> {
        Request::builder().uri(uri).body(()).unwrap()
    }

    #[test]
    fn enrolment_operations_are_told_from_the_rest() {
        for yes in [
            "/scep?operation=PKIOperation",
            "/cgi-bin/pkiclient.exe?operation=pkioperation&message=MII",
            "/.well-known/est/simpleenroll",
            "/.well-known/est/arbitraryLabel1/simplereenroll",
            "/.well-known/est/serverkeygen",
            "/.well-known/est/fullcmc",
            "/.well-known/cmp",
            "/.well-known/cmp/p/bts",
        ] {
            assert!(is_enrolment(&req(yes)), "{yes}");
        }
        for no in [
            "/scep?operation=GetCACaps",
            "/scep?operation=GetCACert",
            "/scep?operation=PKIOperationX",
            "/.well-known/est/cacerts",
            "/.well-known/est/csrattrs",
            "/ocsp",
            "/crl",
            "/simpleenroll",
        ] {
            assert!(!is_enrolment(&req(no)), "{no}");
        }
    }
}
