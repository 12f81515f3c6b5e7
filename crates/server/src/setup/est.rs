//! The EST server and the MEF on its TLS listeners.

use super::{build_rspf, Shared};
use crate::config::{self, EstConfig, Res, RspfConfig};
use enrolkit_files as files;
use enrolkit_keys::KeySpec;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What the TLS listeners serve, and the listeners (address, acceptor).
pub type EstServer = (crate::http::TlsServices, Vec<(String, enrolkit_tls::Acceptor)>);

/// The EST service (with the RSPF MEF when `[rspf]` is there) and its TLS listeners' acceptors.
pub fn build_est(est: &EstConfig, rspf: Option<&RspfConfig>, base: &Path, shared: Shared) -> Res<EstServer> {
    let rspf = rspf
        .map(|r| build_rspf(r, est.psk, base, &shared).map(Arc::new))
        .transpose()
        .map_err(|e| format!("rspf: {e}"))?;
    let chain = files::read_certificates(&base.join(&est.tls_certificate))?
        .iter()
        .map(|c| der::Encode::to_der(c).map_err(|e| e.to_string()))
        .collect::<Res<Vec<_>>>()?;
    let key = files::read_key(&base.join(&est.tls_key))?;
    let mut anchors = Vec::new();
    for p in &est.client_trust_anchors {
        for c in files::read_certificates(&base.join(p))? {
            anchors.push(der::Encode::to_der(&c).map_err(|e| e.to_string())?);
        }
    }
    // A vendor certificate authenticates a base station's TLS handshake
    // too; what it may obtain is the authorisation core's vendor rule.
    if let Some(v) = &shared.policy.vendor {
        anchors.extend(v.anchors.iter().cloned());
    }
    let tls = enrolkit_tls::ServerTlsConfig {
        chain,
        key_pkcs8: key.to_pkcs8_der(),
        client_trust_anchors: anchors,
        min_version: config::tls_version(&est.min_tls)?,
        max_version: config::tls_version(&est.max_tls)?,
        // The Enrolment Key of every session (TS-0003 10.3.1), when the MEF is on.
        keying_export: rspf.as_ref().map(|_| enrolkit_tls::KeyingExport {
            label: enrolkit_rspf::enrolment::EXPORTER_LABEL.into(),
            context: None,
            len: enrolkit_rspf::enrolment::EXPORT_LEN,
        }),
    };
    let metrics = shared.metrics.clone();
    let psks = shared.psks.clone();
    // What keep_current reloads: the PSKs, and the MEF's Kre records and bootstraps.
    let mut handshake_keys: Vec<Arc<dyn crate::handshake::Refresh>> = vec![psks.clone()];
    if let Some(r) = &rspf {
        handshake_keys.push(r.clone());
    }
    let mut auth = shared.policy;
    auth.manual_approval = est.manual_approval;
    let policy = crate::est::EstPolicy {
        auth,
        basic: est.basic,
        client_certificates_authorise: true,
        require_linking: est.require_linking,
        allowed_ekus: config::oids("allowed_ekus", &est.allowed_ekus)?,
        requested_ekus: config::oids("requested_ekus", &est.requested_ekus)?,
        retry_after: Duration::from_secs(est.retry_after_seconds),
        serverkeygen_key: KeySpec::EcP256,
        onem2m: est.onem2m,
    };
    let svc = crate::est::EstService::new(crate::est::EstSetup {
        ca: shared.ca,
        challenge_key: shared.challenge_key,
        storage: shared.storage.clone(),
        policy,
        profile: shared.profile,
    })
    .map_err(|e| format!("est: {e}"))?
    .with_metrics(metrics.clone());
    let svc = match &rspf {
        Some(r) => svc.with_enrolee_grants(r.clone()),
        None => svc,
    };
    let mut listeners = Vec::new();
    if let Some(addr) = &est.listen {
        listeners.push((
            addr.clone(),
            enrolkit_tls::Acceptor::rustls(&tls).map_err(|e| format!("est.listen: {e}"))?,
        ));
    }
    if let Some(addr) = &est.listen_openssl {
        // The MEF's store answers KpmIds, KreIds and B-TIDs; without it, the provisioned PSKs.
        // Both answer from memory (crate::handshake), never the database.
        let psk: Option<Arc<dyn enrolkit_tls::PskStore>> = match (&rspf, est.psk) {
            (Some(r), _) => Some(r.clone()),
            (None, true) => Some(psks.clone()),
            (None, false) => None,
        };
        listeners.push((
            addr.clone(),
            enrolkit_tls::Acceptor::openssl(&tls, psk).map_err(|e| format!("est.listen_openssl: {e}"))?,
        ));
    }
    Ok((
        crate::http::TlsServices {
            est: Arc::new(svc),
            rspf,
            metrics: metrics.clone(),
            handshake_keys,
        },
        listeners,
    ))
}
