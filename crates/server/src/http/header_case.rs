//! Response header names byte for byte as the RFCs spell them.
//!
//! HTTP header names are case-insensitive (RFC 9110 §5.1), but deployed
//! embedded EST and SCEP clients compare them byte for byte with their
//! canonical spelling: a `content-type` or `Www-Authenticate` is, to them,
//! no header at all (`GET /cacerts` "unsupported response", "No
//! WWW-Authenticate header found"). hyper writes names in lower case, or in
//! title case when asked, and title case is right for every name we send
//! except those with an all-capitals word: `WWW-Authenticate` (RFC 9110
//! §11.6.1), `ETag`, and oneM2M's `X-M2M-*` (TS-0009 §6.4).
//!
//! hyper's documented `preserve_header_case` writes a response's header
//! names from the case map in its extensions, the same private map it
//! records for a request. So the map is learnt once, by letting hyper parse
//! a request that carries every exception in its canonical spelling, and
//! the learnt extensions are attached to every response; every other name
//! comes out in title case.

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::http::Extensions;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::OnceCell;

/// Names whose canonical spelling title case gets wrong.
pub const EXCEPTIONS: &[&str] = &[
    "WWW-Authenticate",
    "ETag",
    "X-M2M-Origin",
    "X-M2M-RI",
    "X-M2M-RSC",
    "X-M2M-RVI",
    "X-M2M-OT",
    "X-M2M-RST",
];

/// How many values of one exception keep their spelling in one response
/// (hyper pairs each value with one recorded spelling, in order).
const REPEATS: usize = 4;

static CANONICAL: OnceCell<Option<Extensions>> = OnceCell::const_new();

/// Extensions that make hyper (with `title_case_headers` and
/// `preserve_header_case`) write every [`EXCEPTIONS`] name canonically;
/// `None` only if hyper could not parse our own request, in which case
/// responses fall back to title case and a warning is logged once.
pub async fn canonical() -> Option<&'static Extensions> {
    CANONICAL
        .get_or_init(|| async {
            let learnt = learn().await;
            if learnt.is_none() {
                tracing::warn!("cannot learn canonical header spellings: header names go out in title case");
            }
            learnt
        })
        .await
        .as_ref()
}

/// The request extensions hyper records for a request carrying every
/// exception [`REPEATS`] times.
async fn learn() -> Option<Extensions> {
    let (mut client, server) = tokio::io::duplex(16 * 1024);
    let (tx, rx) = tokio::sync::oneshot::channel::<Extensions>();
    let tx = std::sync::Mutex::new(Some(tx));
    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
        if let Some(tx) = tx.lock().ok().and_then(|mut t| t.take()) {
            let _ = tx.send(req.extensions().clone());
        }
        async { Ok::<_, std::convert::Infallible>(Response::new(Empty::<Bytes>::new())) }
    });
    let conn = http1::Builder::new()
        .preserve_header_case(true)
        .serve_connection(TokioIo::new(server), service);
    let mut request = String::from("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for name in EXCEPTIONS {
        for _ in 0..REPEATS {
            request.push_str(name);
            request.push_str(": x\r\n");
        }
    }
    request.push_str("\r\n");
    let talk = async move {
        client.write_all(request.as_bytes()).await.ok()?;
        let mut sink = Vec::new();
        client.read_to_end(&mut sink).await.ok()
    };
    let deadline = std::time::Duration::from_secs(5);
    let _ = tokio::time::timeout(deadline, async { tokio::join!(conn, talk) }).await;
    rx.await.ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use http_body_util::Full;

    /// The head hyper writes for `resp` with our builder settings.
    async fn head_of(resp: Response<Full<Bytes>>) -> String {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let resp = std::sync::Mutex::new(Some(resp));
        let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
            let r = resp.lock().unwrap().take().unwrap();
            async { Ok::<_, std::convert::Infallible>(r) }
        });
        let conn = http1::Builder::new()
            .title_case_headers(true)
            .preserve_header_case(true)
            .serve_connection(TokioIo::new(server), service);
        let talk = async move {
            client
                .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut out = Vec::new();
            client.read_to_end(&mut out).await.unwrap();
            String::from_utf8_lossy(&out).into_owned()
        };
        let (_, out) = tokio::join!(conn, talk);
        out.split("\r\n\r\n").next().unwrap().to_owned()
    }

    #[tokio::test]
    async fn every_exception_and_every_other_name_comes_out_canonical() {
        let ext = canonical().await.expect("learnt").clone();
        let mut resp = Response::new(Full::new(Bytes::from_static(b"body")));
        *resp.extensions_mut() = ext;
        let h = resp.headers_mut();
        h.append("www-authenticate", "Basic realm=\"a\"".parse().unwrap());
        h.append("www-authenticate", "Bearer".parse().unwrap());
        h.insert("content-type", "application/pkcs7-mime".parse().unwrap());
        h.insert("content-transfer-encoding", "base64".parse().unwrap());
        h.insert("retry-after", "5".parse().unwrap());
        h.insert("x-m2m-rsc", "2000".parse().unwrap());
        let head = head_of(resp).await;
        for line in [
            "\r\nWWW-Authenticate: Basic realm=\"a\"\r\n",
            "\r\nWWW-Authenticate: Bearer",
            "\r\nContent-Type: application/pkcs7-mime\r\n",
            "\r\nContent-Transfer-Encoding: base64\r\n",
            "\r\nRetry-After: 5\r\n",
            "\r\nX-M2M-RSC: 2000\r\n",
            "\r\nContent-Length: 4",
            "\r\nDate: ",
        ] {
            assert!(head.contains(line), "{line:?} missing from {head:?}");
        }
    }

    #[tokio::test]
    async fn without_the_learnt_map_hyper_gets_www_authenticate_wrong() {
        // The reason this module exists: title case alone is not enough.
        let mut resp = Response::new(Full::new(Bytes::new()));
        resp.headers_mut().insert("www-authenticate", "Basic".parse().unwrap());
        let head = head_of(resp).await;
        assert!(head.contains("\r\nWww-Authenticate: Basic"), "{head:?}");
    }
}
