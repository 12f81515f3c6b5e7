//! A TLS connection from either stack, read and written as one type, and
//! how long a handshake may take on either side.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How long a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// A TLS connection from either stack (`R`: rustls's, `O`: OpenSSL's).
pub enum Stream<R, O> {
    /// rustls.
    Rustls(Box<R>),
    /// OpenSSL.
    OpenSsl(Box<O>),
}

impl<R: AsyncRead + Unpin, O: AsyncRead + Unpin> AsyncRead for Stream<R, O> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Rustls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::OpenSsl(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<R: AsyncWrite + Unpin, O: AsyncWrite + Unpin> AsyncWrite for Stream<R, O> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Rustls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::OpenSsl(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Rustls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::OpenSsl(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Rustls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::OpenSsl(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
