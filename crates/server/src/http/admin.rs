//! The admin listener: `GET /metrics` (Prometheus text format) and
//! `GET /healthz` (whether the database answers), on an address of its own
//! (loopback by default) behind a gate of its own, so that a flood on the
//! protocol listeners neither fills its connection cap nor shows in its
//! counts.

use super::{accept_loop, reply, serve_http1, text, Req};
use crate::http::limits::{Gate, Limits};
use crate::metrics::Metrics;
use crate::scep::HttpResponse;
use crate::storage::Storage;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Response};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Path of the metrics.
pub const METRICS_PATH: &str = "/metrics";
/// Path of the health check.
pub const HEALTH_PATH: &str = "/healthz";
/// How long `/healthz` waits for the database before answering 503.
pub const HEALTH_DEADLINE: Duration = Duration::from_secs(2);
/// Connections the admin listener holds at once (scrapers and probes).
const MAX_ADMIN_CONNECTIONS: usize = 32;

/// What the admin listener serves.
#[derive(Clone)]
pub struct AdminServices {
    /// The registry `/metrics` shows.
    pub metrics: Arc<Metrics>,
    /// The storage `/healthz` asks.
    pub storage: Arc<dyn Storage>,
}

/// The admin listener's own limits: the protocol listeners' timeouts, a
/// small connection cap with no per-address share (it is for the host's
/// own scraper).
pub fn admin_limits() -> Limits {
    Limits {
        max_connections: MAX_ADMIN_CONNECTIONS,
        max_per_address: MAX_ADMIN_CONNECTIONS,
        ..Limits::default()
    }
}

/// `/healthz`: 200 `ok` when the storage answers a trivial query within
/// [`HEALTH_DEADLINE`], 503 with the reason otherwise.
async fn health(storage: Arc<dyn Storage>) -> HttpResponse {
    let asked = tokio::task::spawn_blocking(move || storage.ping());
    match tokio::time::timeout(HEALTH_DEADLINE, asked).await {
        Ok(Ok(Ok(()))) => text(200, "ok"),
        Ok(Ok(Err(e))) => {
            tracing::warn!(error = %e, "health check: the database did not answer");
            text(503, "database unavailable")
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "health check task failed");
            text(503, "health check failed")
        }
        Err(_) => {
            tracing::warn!(deadline = ?HEALTH_DEADLINE, "health check: the database did not answer in time");
            text(503, "database did not answer in time")
        }
    }
}

async fn handle(services: AdminServices, req: Req) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if req.method() != Method::GET {
        return reply(text(405, "only GET"));
    }
    let resp = match path {
        METRICS_PATH => match services.metrics.encode() {
            Ok(body) => HttpResponse {
                status: 200,
                content_type: crate::metrics::CONTENT_TYPE,
                body: body.into_bytes(),
            },
            Err(e) => {
                tracing::error!(error = %e, "cannot encode the metrics");
                text(500, "cannot encode the metrics")
            }
        },
        HEALTH_PATH => health(services.storage).await,
        _ => text(404, "not found"),
    };
    reply(resp)
}

/// Serve `/metrics` and `/healthz` on `listener` until the process ends.
pub async fn serve_admin(listener: TcpListener, services: AdminServices) -> std::io::Result<()> {
    let gate = Gate::new(admin_limits());
    let g = gate.clone();
    accept_loop(listener, gate, move |stream, peer| {
        let services = services.clone();
        serve_http1(stream, peer, g.clone(), move |req| handle(services.clone(), req))
    })
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;
    use crate::storage::{Backend, CommitObserver, SqliteStorage};
    use std::io::{Read, Write};

    /// A whole HTTP/1.1 exchange on a fresh connection: (status, body).
    fn get(port: u16, path: &str) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out.split(' ').nth(1).unwrap().parse().unwrap();
        let body = out.split_once("\r\n\r\n").unwrap().1.to_owned();
        (status, body)
    }

    #[test]
    fn metrics_and_health_are_served_and_a_broken_database_is_unhealthy() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("mef.db");
        let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&db).unwrap());
        let metrics = Arc::new(Metrics::new());
        metrics.committed(Backend::Sqlite, Duration::from_millis(1), true);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let services = AdminServices {
            metrics: metrics.clone(),
            storage: storage.clone(),
        };
        rt.spawn(serve_admin(listener, services));
        let (status, body) = std::thread::spawn(move || get(port, METRICS_PATH)).join().unwrap();
        assert_eq!(status, 200);
        assert!(
            body.contains("mef_db_commit_duration_seconds_count{backend=\"sqlite\"} 1"),
            "{body}"
        );
        assert_eq!(
            std::thread::spawn(move || get(port, HEALTH_PATH)).join().unwrap(),
            (200, "ok\n".into())
        );
        assert_eq!(std::thread::spawn(move || get(port, "/nothing")).join().unwrap().0, 404);
        // The database file replaced by something that is not one: the
        // trivial query fails, and the check says so.
        drop(storage);
        let broken: Arc<dyn Storage> = {
            let path = dir.path().join("broken.db");
            let s = SqliteStorage::open(&path).unwrap();
            std::fs::write(&path, vec![0x55u8; 8192]).unwrap();
            for ext in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(dir.path().join(format!("broken.db{ext}")));
            }
            Arc::new(s)
        };
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        rt.spawn(serve_admin(
            listener,
            AdminServices {
                metrics,
                storage: broken,
            },
        ));
        let (status, body) = std::thread::spawn(move || get(port, HEALTH_PATH)).join().unwrap();
        assert_eq!(status, 503, "{body}");
    }
}
