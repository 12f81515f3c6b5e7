//! Two OpenSSL calls the `openssl` crate does not wrap, in one audited
//! module (the only `unsafe` in this crate):
//!
//! - `SSL_get_pending_cipher` (OpenSSL 1.1.1+): inside a TLS 1.2 PSK
//!   callback the suite is negotiated but not yet current
//!   (`SSL_get_current_cipher` is still null), and a GBA key depends on it
//!   (TS 33.220 Annex H: NAF_Id ends with the suite's code);
//! - `SSL_CTX_use_psk_identity_hint`: the server's TLS 1.2 PSK identity
//!   hint (TS 24.109 5.3.3.1.2 asks a GBA NAF for `3GPP-bootstrapping`).

#![allow(unsafe_code)]

use foreign_types::ForeignTypeRef;
use openssl::ssl::{SslCipherRef, SslContextBuilder, SslRef};
use std::ffi::CString;
use std::os::raw::{c_char, c_int};

extern "C" {
    fn SSL_get_pending_cipher(s: *const openssl_sys::SSL) -> *const openssl_sys::SSL_CIPHER;
    fn SSL_CTX_use_psk_identity_hint(ctx: *mut openssl_sys::SSL_CTX, hint: *const c_char) -> c_int;
}

/// The IANA number of the cipher suite `ssl` has negotiated, pending or
/// current; `None` before ServerHello.
pub(crate) fn negotiated_suite(ssl: &SslRef) -> Option<u16> {
    // SAFETY: `ssl.as_ptr()` is a live SSL for the borrow's duration.
    // SSL_get_pending_cipher only reads it and returns either null or a
    // pointer to a static SSL_CIPHER table entry (OpenSSL never frees those),
    // which SslCipherRef borrows no longer than `ssl`.
    let pending = unsafe {
        let c = SSL_get_pending_cipher(ssl.as_ptr());
        if c.is_null() {
            None
        } else {
            Some(SslCipherRef::from_ptr(c as *mut openssl_sys::SSL_CIPHER))
        }
    };
    pending
        .or_else(|| ssl.current_cipher())
        .map(|c| u16::from_be_bytes(c.protocol_id()))
}

/// Set the TLS 1.2 PSK identity hint the server sends in ServerKeyExchange.
pub(crate) fn set_psk_identity_hint(b: &mut SslContextBuilder, hint: &str) -> Result<(), openssl::error::ErrorStack> {
    let hint = CString::new(hint).map_err(|_| openssl::error::ErrorStack::get())?;
    // SAFETY: `b.as_ptr()` is the live SSL_CTX being built; OpenSSL copies
    // the NUL-terminated `hint` (which outlives the call) and returns 1 on
    // success, 0 if it is longer than PSK_MAX_IDENTITY_LEN or allocation fails.
    let ok = unsafe { SSL_CTX_use_psk_identity_hint(b.as_ptr(), hint.as_ptr()) };
    if ok == 1 {
        Ok(())
    } else {
        Err(openssl::error::ErrorStack::get())
    }
}
