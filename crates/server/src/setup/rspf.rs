//! The MEF of `[rspf]`.

use super::{read_key32, Shared};
use crate::config::{Res, RspfConfig};
use enrolkit_files as files;
use std::path::Path;

/// The MEF from `[rspf]`, sharing the database and the challenge key (which hashes tokens).
pub fn build_rspf(r: &RspfConfig, operator_psks: bool, base: &Path, shared: &Shared) -> Res<crate::rspf::RspfService> {
    let mut enrolees = Vec::new();
    for e in &r.enrolee {
        use enrolkit_exchange::bootstrap::EnroleeAuthentication as A;
        let anchors = match &e.bootstrap.authentication {
            Some(A::DeviceCertificate { trust_anchor, .. }) | Some(A::EntityCertificate { trust_anchor }) => {
                files::read_certificates(&base.join(trust_anchor))?
                    .iter()
                    .map(|c| der::Encode::to_der(c).map_err(|e| e.to_string()))
                    .collect::<Res<Vec<_>>>()?
            }
            _ => Vec::new(),
        };
        enrolees.push(crate::rspf::Enrolee {
            name: e.name.clone(),
            bootstrap: e.bootstrap.clone(),
            grant: e.grant.clone(),
            trust_anchors: anchors,
            forward_secrecy_exception: e.forward_secrecy_exception,
            wire_profile: e.wire_profile,
            gba_arrangement: e.gba_arrangement,
            maf_trust_anchors: match e.grant.maf.as_ref().and_then(|m| m.trust_anchor.as_ref()) {
                Some(p) => files::read_certificates(&base.join(p))?
                    .iter()
                    .map(|c| der::Encode::to_der(c).map_err(|e| e.to_string()))
                    .collect::<Res<Vec<_>>>()?,
                None => Vec::new(),
            },
        });
    }
    let mut targets = Vec::new();
    for t in &r.target {
        let trust_anchors = match &t.trust_anchor {
            Some(p) => files::read_certificates(&base.join(p))?
                .iter()
                .map(|c| der::Encode::to_der(c).map_err(|e| e.to_string()))
                .collect::<Res<Vec<_>>>()?,
            None => Vec::new(),
        };
        targets.push(crate::rspf::TargetAuth {
            id: t.id.clone(),
            spki_sha256: t.spki_sha256.clone(),
            trust_anchors,
        });
    }
    crate::rspf::RspfService::new(crate::rspf::RspfSetup {
        mef_fqdn: r.mef_fqdn.clone(),
        enrolees,
        storage: shared.storage.clone(),
        storage_key: read_key32(&base.join(&r.storage_key))?,
        token_key: shared.challenge_key.clone(),
        targets,
        ca_subject: shared.ca.certificate.tbs_certificate.subject.clone(),
        operator_psks,
        send_credential_id: r.send_credential_id,
        require_forward_secrecy: r.require_forward_secrecy,
        psks: shared.psks.clone(),
    })
    .map(|svc| svc.with_metrics(shared.metrics.clone()))
}
