//! Test support for the interop tests: start a peer (OpenSSL `s_server`,
//! micromdm `scepserver`, …) on a free loopback port.
//!
//! Picking a port by binding port 0 and closing it leaves a window in which
//! another test can take the same port; the peer then fails to bind and a
//! readiness probe connects to the *other* process. [`Peer::spawn`] closes
//! that hole: it waits until the port answers *and* the peer is still running
//! a moment later (a peer that failed to bind has exited by then), and tries
//! a fresh port when the peer died.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A peer process listening on a loopback port; killed when dropped.
#[derive(Debug)]
pub struct Peer {
    /// The running process (its pipes are the caller's to read).
    pub child: Child,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
}

/// A port that was free a moment ago (the caller must cope with losing it).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Peer {
    /// Start `make(port)` on a free port and wait, up to `timeout` per attempt,
    /// until it accepts connections; retry on a new port (five attempts) when
    /// the process exits first, e.g. because the port was taken meanwhile.
    pub fn spawn(mut make: impl FnMut(u16) -> Command, timeout: Duration) -> io::Result<Peer> {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            let mut child = make(port).spawn()?;
            let started = Instant::now();
            loop {
                if let Some(status) = child.try_wait()? {
                    last = format!("peer exited with {status} before listening on {port}");
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    // Someone answers; make sure it is our peer.
                    std::thread::sleep(Duration::from_millis(150));
                    if child.try_wait()?.is_none() {
                        return Ok(Peer { child, port });
                    }
                    last = format!("port {port} answered but the peer exited");
                    break;
                }
                if started.elapsed() > timeout {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("peer did not listen on {port} within {timeout:?}"),
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Err(io::Error::other(last))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
