//! The client side: build ir/cr/kur/p10cr/rr/genm/certConf/pollReq and
//! open the answers (RFC 9483 §4; RFC 4210 §5.3).
//!
//! A [`Requester`] holds who we are (sender, recipient) and how we protect
//! ([`Protect`]). Each request returns the DER message and a [`Sent`],
//! which [`Requester::open`] checks the answer against: protection (MAC
//! with the shared secret, or signature by a pinned or returned
//! certificate), transactionID, recipNonce, the body type that may answer,
//! certReqId, and that an issued certificate certifies the key we asked
//! for. Follow-ups (certConf, pollReq) continue the transaction from the
//! [`Sent`] updated by `open`.

use crate::body::{BodyType, PkiBody};
use crate::confirm::CertStatus;
use crate::general::{GenRequest, GenResponse};
use crate::header::PkiHeader;
use crate::poll::PollReq;
use crate::pop;
use crate::protection::mac::SharedSecret;
use crate::protection::{Claimed, Protect, ProtectionPolicy, Verified};
use crate::request::{cert_id_of, i64_to_int, CertReqMsg, CertRequest, CertTemplate};
use crate::revocation::{CrlReason, RevDetails};
use crate::status::PkiStatusInfo;
use crate::transaction::{fresh, Exchange};
use crate::{oid, CmpError, Limits, PkiMessage, Result};
use der::asn1::{GeneralizedTime, OctetString};
use der::Any;
use enrolkit_keys::{DigestAlgorithm, Signer};
use rand_core::{CryptoRng, RngCore};
use spki::SubjectPublicKeyInfoOwned;
use std::time::SystemTime;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::Extensions;
use x509_cert::name::Name;
use x509_cert::Certificate;

/// certReqId of the one CertReqMsg we send (RFC 9483 §4.1.1: 0).
pub const CERT_REQ_ID: i64 = 0;
/// certReqId answering a p10cr (RFC 4210 §5.3.4: -1).
pub const P10CR_CERT_REQ_ID: i64 = -1;

/// How an answer's protection is checked.
pub enum ResponseTrust<'a> {
    /// A MAC with this secret (the one the request was protected with).
    Mac(&'a SharedSecret),
    /// A signature by one of these certificates (pinned server certificates).
    PinnedSigner(&'a [Certificate]),
    /// A signature by the first extraCerts certificate, which the caller
    /// then validates (returned in [`Verified::Signature`]).
    SignerToValidate,
    /// A MAC with the secret, or a signature by a pinned certificate: a
    /// server that cannot check our MAC answers with a signed error
    /// (RFC 9483 §3.6.4), which this reads.
    MacOrPinnedSigner(&'a SharedSecret, &'a [Certificate]),
}

fn pinned_signature(message: &PkiMessage, pinned: &[Certificate], policy: &ProtectionPolicy) -> Result<Verified> {
    let v = message.verify_signature(policy)?;
    if let Verified::Signature { signer, .. } = &v {
        if !pinned.iter().any(|p| p == signer.as_ref()) {
            return Err(CmpError::ProtectionCertificate(format!(
                "{} is not a pinned server certificate",
                signer.tbs_certificate.subject
            )));
        }
    }
    Ok(v)
}

/// The client's identity and settings.
pub struct Requester<'a> {
    /// How requests are protected.
    pub protect: Protect<'a>,
    /// sender (NULL-DN: taken from the protection certificate, or the
    /// template subject for a MAC-protected ir, RFC 9483 §3.1).
    pub sender: GeneralName,
    /// recipient (the CA's name; NULL-DN when unknown).
    pub recipient: GeneralName,
    /// messageTime for the next message (the caller's clock; None: absent).
    pub message_time: Option<SystemTime>,
    /// Bounds on answers.
    pub limits: Limits,
    /// Protection policy for answers.
    pub policy: ProtectionPolicy,
}

/// What to ask a certificate for (ir, cr, kur).
pub struct CertificateRequest<'a> {
    /// The key to certify (signs the POP).
    pub key: &'a dyn Signer,
    /// Subject (required for ir/cr; for kur taken from `old_certificate` when None).
    pub subject: Option<Name>,
    /// Requested extensions (subjectAltName, …).
    pub extensions: Option<Extensions>,
    /// kur: the certificate being updated (oldCertID control, RFC 4211 §6.5).
    pub old_certificate: Option<&'a Certificate>,
    /// Digest for the POP signature.
    pub digest: DigestAlgorithm,
}

/// What a client remembers about a message it sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The body type sent.
    pub body_type: BodyType,
    /// transactionID and nonces.
    pub exchange: Exchange,
    /// certReqId of the request (certificate requests and polls).
    pub cert_req_id: Option<i64>,
    /// The public key asked for (the issued certificate must certify it).
    pub public_key: Option<SubjectPublicKeyInfoOwned>,
    /// Whether implicitConfirm was asked for.
    pub implicit_confirm: bool,
    /// The type of the certificate request this transaction started with.
    pub origin: BodyType,
}

/// An opened answer.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A certificate was issued (ip/cp/kup).
    Certificate {
        /// certReqId.
        cert_req_id: i64,
        /// The certificate.
        certificate: Box<Certificate>,
        /// caPubs.
        ca_pubs: Vec<Certificate>,
        /// Whether the server granted implicit confirmation (no certConf needed).
        implicit_confirm: bool,
        /// status (accepted or grantedWithMods).
        status: PkiStatusInfo,
    },
    /// waiting: poll with [`Requester::poll_req`].
    Waiting {
        /// certReqId to poll for.
        cert_req_id: i64,
        /// status.
        status: PkiStatusInfo,
    },
    /// pollRep: poll again later.
    PollAgain {
        /// certReqId.
        cert_req_id: i64,
        /// checkAfter.
        check_after: std::time::Duration,
    },
    /// A certificate request or revocation was refused (status rejection).
    Rejected(PkiStatusInfo),
    /// rp: the revocation status.
    Revocation(PkiStatusInfo),
    /// genp.
    General(Vec<GenResponse>),
    /// pkiConf.
    Confirmed,
    /// error.
    Error(crate::error_msg::ErrorMsgContent),
}

/// An answer with the message and how it was protected.
#[derive(Debug, Clone)]
pub struct Opened {
    /// What the answer says.
    pub answer: Answer,
    /// The protection that verified (for a signature: the signer, to validate).
    pub protection: Verified,
    /// The whole message (extraCerts, header).
    pub message: PkiMessage,
    /// The transaction state to continue from (certConf, pollReq).
    pub sent: Sent,
}

fn name_of(n: &GeneralName) -> Option<&Name> {
    match n {
        GeneralName::DirectoryName(n) if !n.0.is_empty() => Some(n),
        _ => None,
    }
}

impl Requester<'_> {
    fn header(&self, exchange: &Exchange, implicit_confirm: bool, subject: Option<&Name>) -> Result<PkiHeader> {
        let sender = match (&self.protect, name_of(&self.sender), subject) {
            (_, Some(_), _) => self.sender.clone(),
            (Protect::Mac { .. }, None, Some(s)) => GeneralName::DirectoryName(s.clone()),
            _ => self.sender.clone(),
        };
        let mut h = PkiHeader::new(sender, self.recipient.clone());
        h.transaction_id = Some(OctetString::new(exchange.transaction_id.clone())?);
        h.sender_nonce = Some(OctetString::new(exchange.our_nonce.clone())?);
        h.recip_nonce = exchange.peer_nonce.clone().map(OctetString::new).transpose()?;
        h.message_time = self.message_time.map(GeneralizedTime::from_system_time).transpose()?;
        if implicit_confirm {
            h.set_implicit_confirm()?;
        }
        Ok(h)
    }

    /// Build `body` in the transaction state `sent` (whose body_type is set here).
    fn send(&self, body: PkiBody, subject: Option<&Name>, mut sent: Sent) -> Result<(Vec<u8>, Sent)> {
        let header = self.header(&sent.exchange, sent.implicit_confirm, subject)?;
        sent.body_type = body.body_type();
        let der_bytes = PkiMessage::build(header, body, &self.protect, &[])?;
        Ok((der_bytes, sent))
    }

    fn start(rng: &mut (impl RngCore + CryptoRng)) -> Exchange {
        Exchange {
            transaction_id: fresh(rng),
            our_nonce: fresh(rng),
            peer_nonce: None,
        }
    }

    fn plain(t: BodyType, rng: &mut (impl RngCore + CryptoRng)) -> Sent {
        Sent {
            body_type: t,
            exchange: Self::start(rng),
            cert_req_id: None,
            public_key: None,
            implicit_confirm: false,
            origin: t,
        }
    }

    fn next(sent: &Sent, rng: &mut (impl RngCore + CryptoRng)) -> Exchange {
        Exchange {
            transaction_id: sent.exchange.transaction_id.clone(),
            our_nonce: fresh(rng),
            peer_nonce: sent.exchange.peer_nonce.clone(),
        }
    }

    /// ir, cr or kur with one CertReqMsg (certReqId 0) and a signature POP.
    pub fn certificate_request(
        &self,
        kind: BodyType,
        req: &CertificateRequest<'_>,
        implicit_confirm: bool,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(Vec<u8>, Sent)> {
        if !matches!(kind, BodyType::Ir | BodyType::Cr | BodyType::Kur) {
            return Err(CmpError::UnexpectedBody {
                expected: "ir, cr or kur",
                found: kind,
            });
        }
        let subject = req
            .subject
            .clone()
            .or_else(|| req.old_certificate.map(|c| c.tbs_certificate.subject.clone()))
            .ok_or(CmpError::BadCertTemplate("subject missing"))?;
        let public_key = req.key.public_key().clone();
        let controls = match (kind, req.old_certificate) {
            (BodyType::Kur, Some(old)) => Some(vec![AttributeTypeAndValue {
                oid: oid::REG_CTRL_OLD_CERT_ID,
                value: Any::encode_from(&cert_id_of(old))?,
            }]),
            (BodyType::Kur, None) => return Err(CmpError::BadCertTemplate("kur needs the old certificate")),
            _ => None,
        };
        let cert_req = CertRequest {
            cert_req_id: i64_to_int(CERT_REQ_ID)?,
            cert_template: CertTemplate {
                subject: Some(subject.clone()),
                public_key: Some(public_key.clone()),
                extensions: req.extensions.clone(),
                ..Default::default()
            },
            controls,
        };
        let popo = Some(pop::sign(&cert_req, req.key, req.digest)?);
        let msgs = vec![CertReqMsg {
            cert_req,
            popo,
            reg_info: None,
        }];
        let body = match kind {
            BodyType::Ir => PkiBody::Ir(msgs),
            BodyType::Cr => PkiBody::Cr(msgs),
            _ => PkiBody::Kur(msgs),
        };
        let sent = Sent {
            body_type: kind,
            exchange: Self::start(rng),
            cert_req_id: Some(CERT_REQ_ID),
            public_key: Some(public_key),
            implicit_confirm,
            origin: kind,
        };
        self.send(body, Some(&subject), sent)
    }

    /// p10cr carrying a PKCS#10 request (DER, e.g. from `enrolkit_pkix::pkcs10::RequestParams::build`).
    pub fn p10cr(
        &self,
        csr_der: &[u8],
        implicit_confirm: bool,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(Vec<u8>, Sent)> {
        let csr = enrolkit_pkix::pkcs10::CertificationRequest::parse(csr_der)?;
        let subject = csr.subject().clone();
        let key = csr.public_key().clone();
        let sent = Sent {
            body_type: BodyType::P10cr,
            exchange: Self::start(rng),
            cert_req_id: Some(P10CR_CERT_REQ_ID),
            public_key: Some(key),
            implicit_confirm,
            origin: BodyType::P10cr,
        };
        self.send(PkiBody::P10cr(Box::new(csr)), Some(&subject), sent)
    }

    /// rr for `cert` (issuer and serial) with an optional reason.
    pub fn rr(
        &self,
        cert: &Certificate,
        reason: Option<CrlReason>,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(Vec<u8>, Sent)> {
        let body = PkiBody::Rr(vec![RevDetails::for_certificate(cert, reason)?]);
        self.send(body, None, Self::plain(BodyType::Rr, rng))
    }

    /// genm asking for `requests`.
    pub fn genm(&self, requests: &[GenRequest], rng: &mut (impl RngCore + CryptoRng)) -> Result<(Vec<u8>, Sent)> {
        let itavs = requests.iter().map(GenRequest::to_itav).collect::<Result<Vec<_>>>()?;
        self.send(PkiBody::GenM(itavs), None, Self::plain(BodyType::GenM, rng))
    }

    /// certConf for the certificate an answer gave: accept, or reject with a reason.
    pub fn cert_conf(
        &self,
        opened: &Opened,
        reject: Option<PkiStatusInfo>,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(Vec<u8>, Sent)> {
        let Answer::Certificate {
            cert_req_id,
            certificate,
            ..
        } = &opened.answer
        else {
            return Err(CmpError::UnexpectedBody {
                expected: "an issued certificate to confirm",
                found: opened.message.body.body_type(),
            });
        };
        let status = CertStatus::new(*cert_req_id, certificate, reject)?;
        let sent = Sent {
            exchange: Self::next(&opened.sent, rng),
            cert_req_id: Some(*cert_req_id),
            implicit_confirm: false,
            ..opened.sent.clone()
        };
        self.send(PkiBody::CertConf(vec![status]), None, sent)
    }

    /// pollReq for a waiting request.
    pub fn poll_req(&self, opened: &Opened, rng: &mut (impl RngCore + CryptoRng)) -> Result<(Vec<u8>, Sent)> {
        let id = match &opened.answer {
            Answer::Waiting { cert_req_id, .. } | Answer::PollAgain { cert_req_id, .. } => *cert_req_id,
            _ => {
                return Err(CmpError::UnexpectedBody {
                    expected: "waiting or pollRep",
                    found: opened.message.body.body_type(),
                })
            }
        };
        let sent = Sent {
            exchange: Self::next(&opened.sent, rng),
            cert_req_id: Some(id),
            ..opened.sent.clone()
        };
        self.send(PkiBody::PollReq(vec![PollReq::new(id)?]), None, sent)
    }

    /// Open an answer to `sent`: verify its protection per `trust`, the
    /// transactionID and recipNonce, and that its body answers `sent`.
    pub fn open(&self, input: &[u8], sent: &Sent, trust: &ResponseTrust<'_>) -> Result<Opened> {
        let message = PkiMessage::parse(input, &self.limits)?;
        let protection = match trust {
            ResponseTrust::Mac(secret) => message.verify_mac(secret, &self.policy)?,
            ResponseTrust::PinnedSigner(pinned) => pinned_signature(&message, pinned, &self.policy)?,
            ResponseTrust::SignerToValidate => message.verify_signature(&self.policy)?,
            ResponseTrust::MacOrPinnedSigner(secret, pinned) => match message.claimed_protection(&self.policy)? {
                Claimed::Signature { .. } => pinned_signature(&message, pinned, &self.policy)?,
                _ => message.verify_mac(secret, &self.policy)?,
            },
        };
        sent.exchange.check_answer(&message.header)?;
        let mut next = sent.clone();
        next.exchange.peer_nonce = message.header.sender_nonce().map(<[u8]>::to_vec);
        let found = message.body.body_type();
        let expected_rep = match sent.origin {
            BodyType::Ir => BodyType::Ip,
            BodyType::Kur => BodyType::Kup,
            _ => BodyType::Cp,
        };
        let allowed: &[BodyType] = match sent.body_type {
            BodyType::Ir | BodyType::Cr | BodyType::Kur | BodyType::P10cr => &[expected_rep],
            BodyType::PollReq => &[expected_rep, BodyType::PollRep],
            BodyType::Rr => &[BodyType::Rp],
            BodyType::GenM => &[BodyType::GenP],
            BodyType::CertConf => &[BodyType::PkiConf],
            _ => &[],
        };
        if found != BodyType::Error && !allowed.contains(&found) {
            return Err(CmpError::UnexpectedBody {
                expected: "the answer to our request",
                found,
            });
        }
        let answer = match &message.body {
            PkiBody::Error(e) => Answer::Error(e.clone()),
            PkiBody::Ip(rep) | PkiBody::Cp(rep) | PkiBody::Kup(rep) => {
                let [resp] = rep.response.as_slice() else {
                    return Err(CmpError::malformed(
                        "CertRepMessage",
                        "expected exactly one CertResponse",
                    ));
                };
                let id = resp.id()?;
                if Some(id) != sent.cert_req_id {
                    return Err(CmpError::CertReqIdMismatch(id.to_string()));
                }
                match resp.status.status {
                    cmpv2::status::PkiStatus::Accepted | cmpv2::status::PkiStatus::GrantedWithMods => {
                        let cert = resp
                            .certificate()?
                            .ok_or_else(|| CmpError::malformed("CertResponse", "granted without a certificate"))?;
                        if let Some(k) = &sent.public_key {
                            if cert.tbs_certificate.subject_public_key_info != *k {
                                return Err(CmpError::BadCertTemplate(
                                    "the issued certificate does not certify the requested key",
                                ));
                            }
                        }
                        Answer::Certificate {
                            cert_req_id: id,
                            certificate: Box::new(cert.clone()),
                            ca_pubs: rep.ca_pubs.clone().unwrap_or_default(),
                            implicit_confirm: sent.implicit_confirm && message.header.implicit_confirm(),
                            status: resp.status.clone(),
                        }
                    }
                    cmpv2::status::PkiStatus::Waiting => Answer::Waiting {
                        cert_req_id: id,
                        status: resp.status.clone(),
                    },
                    _ => Answer::Rejected(resp.status.clone()),
                }
            }
            PkiBody::PollRep(reps) => {
                let [rep] = reps.as_slice() else {
                    return Err(CmpError::malformed("pollRep", "expected exactly one entry"));
                };
                let id = rep.id()?;
                if Some(id) != sent.cert_req_id {
                    return Err(CmpError::CertReqIdMismatch(id.to_string()));
                }
                Answer::PollAgain {
                    cert_req_id: id,
                    check_after: rep.check_after(),
                }
            }
            PkiBody::Rp(rp) => match rp.status.as_slice() {
                [s] => Answer::Revocation(s.clone()),
                _ => return Err(CmpError::malformed("rp", "expected exactly one status")),
            },
            PkiBody::GenP(itavs) => Answer::General(itavs.iter().map(GenResponse::from_itav).collect::<Result<_>>()?),
            PkiBody::PkiConf => Answer::Confirmed,
            _ => {
                return Err(CmpError::UnexpectedBody {
                    expected: "an answer",
                    found,
                })
            }
        };
        Ok(Opened {
            answer,
            protection,
            message,
            sent: next,
        })
    }
}
