//! What a rustls connection established, on either side, and the rustls
//! protocol versions a configuration offers.

use super::{Exported, KeyingExport, TlsVersion};
use crate::error::TlsSetupError;
use enrolkit_pkix::binding::ChannelBinding;
use zeroize::Zeroizing;

/// What either side of a rustls connection established: the version, the
/// peer's chain (DER) and the channel binding. rustls exposes no Finished
/// messages, so TLS 1.2 gets no binding here.
pub(crate) fn common<D>(conn: &rustls::ConnectionCommon<D>) -> (TlsVersion, Vec<Vec<u8>>, Option<ChannelBinding>) {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => TlsVersion::Tls13,
        _ => TlsVersion::Tls12,
    };
    let chain = conn
        .peer_certificates()
        .map(|c| c.iter().map(|d| d.as_ref().to_vec()).collect())
        .unwrap_or_default();
    let binding = match version {
        TlsVersion::Tls13 => {
            let mut out = vec![0u8; enrolkit_pkix::binding::TLS_EXPORTER_LEN];
            conn.export_keying_material(&mut out, enrolkit_pkix::binding::TLS_EXPORTER_LABEL.as_bytes(), None)
                .is_ok()
                .then_some(ChannelBinding::TlsExporter(out))
        }
        TlsVersion::Tls12 => None,
    };
    (version, chain, binding)
}

/// The keying material `export` asks for, from a rustls connection of either side.
pub(crate) fn exported<D>(conn: &rustls::ConnectionCommon<D>, export: Option<&KeyingExport>) -> Option<Exported> {
    export.and_then(|e| {
        let mut out = Zeroizing::new(vec![0u8; e.len]);
        let ok = conn
            .export_keying_material(&mut *out, e.label.as_bytes(), e.context.as_deref())
            .is_ok();
        ok.then_some(Exported(out))
    })
}

/// The rustls protocol versions between `min` and `max`.
pub(crate) fn versions(
    min: TlsVersion,
    max: TlsVersion,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsSetupError> {
    let mut v = Vec::new();
    if min <= TlsVersion::Tls12 && max >= TlsVersion::Tls12 {
        v.push(&rustls::version::TLS12);
    }
    if max >= TlsVersion::Tls13 {
        v.push(&rustls::version::TLS13);
    }
    if v.is_empty() {
        return Err(TlsSetupError::Invalid("no TLS version between min and max".into()));
    }
    Ok(v)
}
