//! One TLS listener abstraction over two TLS stacks.
//!
//! EST needs things no single Rust TLS stack offers: rustls is the default
//! (memory-safe, TLS 1.2 and 1.3, certificates), but it has no external PSK
//! (rustls issue #174) and does not expose the TLS 1.2 Finished messages that
//! the `tls-unique` channel binding is made of. OpenSSL (through the `openssl`
//! crate and `tokio-openssl`) has both. [`Acceptor`] hides which one a
//! listener uses: either way a connection comes out as a [`ServerStream`] and
//! a [`TlsInfo`] saying what the handshake established — version, the client
//! certificate chain and whether it chains to the configured trust anchors,
//! the PSK identity, and the channel binding for RFC 7030 §3.5 linking
//! (`tls-unique` with TLS 1.2 where the stack exposes it, RFC 9266
//! `tls-exporter` with TLS 1.3).
//!
//! A client certificate is never required by the handshake: `/cacerts` is
//! open to all, and a certificate that does not chain to the trust anchors is
//! recorded in [`TlsInfo::peer_cert_error`] so the service answers with an
//! HTTP status and a reason the operator can read, instead of a bare alert.
//!
//! | module | what |
//! |---|---|
//! | [`server`] | the listener: [`ServerTlsConfig`], [`Acceptor`] (`server/rustls.rs`, `server/openssl.rs`) |
//! | [`client`] | the connector: [`ClientTlsConfig`], [`Connector`] (`client/rustls.rs`, `client/openssl.rs`) |
//! | [`info`] | what a handshake established: [`TlsInfo`], versions, exported keying material, channel binding extraction per stack |
//! | [`psk`] | external pre-shared keys (RFC 7030 §3.3.3, oneM2M Kpm, GBA Ks_NAF): [`PskStore`], [`PskKey`] |
//! | [`stream`] | a connection from either stack and the handshake timeout |
//! | [`error`] | set-up errors, and telling a TLS failure from a transport one |
//! | `ossl_ext` (private) | the crate's only `unsafe`: `SSL_get_pending_cipher` (the suite inside a TLS 1.2 PSK callback) and `SSL_CTX_use_psk_identity_hint` |

pub mod client;
pub mod error;
pub mod info;
mod ossl_ext;
pub mod psk;
pub mod server;
pub mod stream;

pub use client::{ClientCertificate, ClientKey, ClientStream, ClientTlsConfig, Connector, ServerTrust};
pub use error::{is_tls_failure, TlsSetupError};
pub use info::openssl::{channel_binding, openssl_info, psk_used};
pub use info::{tls12_suite_is_ephemeral, Backend, Exported, KeyingExport, TlsInfo, TlsVersion};
pub use psk::{PskContext, PskFn, PskKey, PskStore};
pub use server::{Acceptor, ServerStream, ServerTlsConfig};
pub use stream::{Stream, HANDSHAKE_TIMEOUT};
