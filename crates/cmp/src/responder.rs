//! The server side: parse a request, verify its protection, get a typed
//! [`Request`]; build ip/cp/kup, rp, genp, pollRep, pkiConf and error
//! answers (RFC 9483 §4, §5 for what a Lightweight CMP server accepts).
//!
//! ```text
//! let received = responder.parse(&body)?;              // bounded, typed, not yet trusted
//! let to = received.reply_to();                        // enough to answer with an error
//! let verified = match received.claimed() {
//!     Claimed::Mac { sender_kid, .. } => received.verify_mac(&secret_for(sender_kid)?)?,
//!     Claimed::Signature { .. } => received.verify_signature()?,   // then validate the signer's chain
//!     Claimed::None => return refuse(),
//! };
//! match verified.request { Request::Certificate { .. } => …, … }
//! ```
//!
//! Policy — which MAC secret, which signer may ask for what, whether
//! raVerified or PENDING — belongs to the server's authorisation core;
//! this module says what was asked and how it was protected, and writes
//! the answer.

use crate::body::{BodyType, PkiBody};
use crate::confirm::CertStatus;
use crate::error_msg::ErrorMsgContent;
use crate::general::{GenRequest, GenResponse};
use crate::header::{null_dn, PkiHeader};
use crate::poll::PollRep;
use crate::pop::{self, PopKind};
use crate::protection::mac::SharedSecret;
use crate::protection::{Claimed, Protect, ProtectionPolicy, Verified};
use crate::request::{CertId, CertReqMsg};
use crate::response::{CertRepMessage, CertResponse};
use crate::revocation::{RevDetails, RevRepContent};
use crate::status::{FailureInfoSet, PkiStatusInfo};
use crate::transaction::{check_fields, fresh, Exchange};
use crate::{CmpError, Limits, PkiMessage, Result};
use der::asn1::{GeneralizedTime, OctetString};
use enrolkit_pkix::pkcs10::CertificationRequest;
use rand_core::{CryptoRng, RngCore};
use std::time::SystemTime;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::Certificate;

/// The server's identity and settings.
pub struct Responder<'a> {
    /// How answers are protected (RFC 9483 §3.2: by signature, or by MAC
    /// with the request's secret).
    pub protect: Protect<'a>,
    /// sender (NULL-DN: the protection certificate's subject).
    pub sender: GeneralName,
    /// messageTime for the next answer (the caller's clock; None: absent).
    pub message_time: Option<SystemTime>,
    /// Bounds on requests.
    pub limits: Limits,
    /// Protection policy for requests.
    pub policy: ProtectionPolicy,
}

/// A parsed request whose protection is not yet checked.
#[derive(Debug, Clone)]
pub struct Received {
    message: PkiMessage,
    claimed: Claimed,
    policy: ProtectionPolicy,
}

/// A certificate request's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertRequestKind {
    /// ir: first enrolment.
    Ir,
    /// cr: a further certificate.
    Cr,
    /// kur: key update of an existing certificate.
    Kur,
}

/// What a verified request asks.
#[derive(Debug, Clone)]
pub enum Request {
    /// ir/cr/kur with its one CertReqMsg, proof of possession checked.
    Certificate {
        /// ir, cr or kur.
        kind: CertRequestKind,
        /// certReqId.
        cert_req_id: i64,
        /// The whole CertReqMsg (template: subject, publicKey, extensions, validity).
        msg: Box<CertReqMsg>,
        /// How possession was proved.
        pop: PopKind,
        /// kur: the oldCertID control (which certificate is updated).
        old_cert_id: Option<Box<CertId>>,
    },
    /// p10cr: the PKCS#10 request, its signature verified.
    P10cr(Box<CertificationRequest>),
    /// rr: one RevDetails (RFC 9483 §4.2).
    Revocation(Box<RevDetails>),
    /// genm.
    General(Vec<GenRequest>),
    /// certConf.
    CertConf(Vec<CertStatus>),
    /// pollReq for certReqId.
    Poll(i64),
}

/// A request whose protection verified.
#[derive(Debug, Clone)]
pub struct VerifiedRequest {
    /// What is asked.
    pub request: Request,
    /// How it was protected (MAC with senderKID, or signer + extraCerts).
    pub protection: Verified,
    /// Whether the client asked for implicit confirmation.
    pub implicit_confirm: bool,
    /// The message (header, extraCerts).
    pub message: PkiMessage,
}

/// What an answer copies from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTo {
    /// The request's transactionID.
    pub transaction_id: Vec<u8>,
    /// The request's senderNonce (our recipNonce).
    pub recip_nonce: Option<Vec<u8>>,
    /// The request's sender (our recipient).
    pub recipient: GeneralName,
    /// The request's body type.
    pub request_type: BodyType,
    /// For certConf/pollReq: the certificate request type the transaction began with (set by the server).
    pub origin: Option<BodyType>,
}

impl ReplyTo {
    /// For a message that could not be parsed: a fresh transactionID, no recipNonce.
    pub fn unparsed(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        ReplyTo {
            transaction_id: fresh(rng),
            recip_nonce: None,
            recipient: null_dn(),
            request_type: BodyType::Error,
            origin: None,
        }
    }
}

impl Received {
    /// The message, unverified.
    pub fn message(&self) -> &PkiMessage {
        &self.message
    }
    /// The protection it claims.
    pub fn claimed(&self) -> &Claimed {
        &self.claimed
    }
    /// senderKID, if any.
    pub fn sender_kid(&self) -> Option<&[u8]> {
        self.message.header.sender_kid()
    }
    /// Enough to answer, even with an error.
    pub fn reply_to(&self) -> ReplyTo {
        ReplyTo {
            transaction_id: self
                .message
                .header
                .transaction_id()
                .map(<[u8]>::to_vec)
                .unwrap_or_default(),
            recip_nonce: self.message.header.sender_nonce().map(<[u8]>::to_vec),
            recipient: self.message.header.sender.clone(),
            request_type: self.message.body.body_type(),
            origin: None,
        }
    }

    /// Verify a MAC protection with the secret for [`Received::sender_kid`].
    pub fn verify_mac(self, secret: &SharedSecret) -> Result<VerifiedRequest> {
        let protection = self.message.verify_mac(secret, &self.policy)?;
        self.finish(protection)
    }

    /// Verify a signature protection with the first extraCerts certificate.
    /// The caller validates [`Verified::Signature`]'s signer afterwards.
    pub fn verify_signature(self) -> Result<VerifiedRequest> {
        let protection = self.message.verify_signature(&self.policy)?;
        self.finish(protection)
    }

    fn finish(self, protection: Verified) -> Result<VerifiedRequest> {
        let allow_sha1 = self.policy.allow_sha1;
        let request = match &self.message.body {
            PkiBody::Ir(m) | PkiBody::Cr(m) | PkiBody::Kur(m) => {
                let kind = match self.message.body.body_type() {
                    BodyType::Ir => CertRequestKind::Ir,
                    BodyType::Cr => CertRequestKind::Cr,
                    _ => CertRequestKind::Kur,
                };
                let [msg] = m.as_slice() else {
                    return Err(CmpError::TooMany {
                        what: "CertReqMsgs (RFC 9483 §4.1.1: exactly one)",
                        limit: 1,
                        actual: m.len(),
                    });
                };
                let pop = pop::verify(msg, allow_sha1)?;
                let old_cert_id = msg.cert_req.old_cert_id()?.map(Box::new);
                if kind == CertRequestKind::Kur
                    && old_cert_id.is_none()
                    && !matches!(protection, Verified::Signature { .. })
                {
                    return Err(CmpError::BadCertTemplate(
                        "kur without oldCertID must be signature-protected",
                    ));
                }
                Request::Certificate {
                    kind,
                    cert_req_id: msg.cert_req.id()?,
                    msg: Box::new(msg.clone()),
                    pop,
                    old_cert_id,
                }
            }
            PkiBody::P10cr(c) => Request::P10cr(c.clone()),
            PkiBody::Rr(r) => match r.as_slice() {
                [d] => {
                    d.target()?;
                    Request::Revocation(Box::new(d.clone()))
                }
                _ => {
                    return Err(CmpError::TooMany {
                        what: "RevDetails (RFC 9483 §4.2: exactly one)",
                        limit: 1,
                        actual: r.len(),
                    })
                }
            },
            PkiBody::GenM(itavs) => Request::General(itavs.iter().map(GenRequest::from_itav).collect::<Result<_>>()?),
            PkiBody::CertConf(c) => Request::CertConf(c.clone()),
            PkiBody::PollReq(p) => match p.as_slice() {
                [one] => Request::Poll(one.id()?),
                _ => return Err(CmpError::malformed("pollReq", "expected exactly one entry")),
            },
            other => {
                return Err(CmpError::UnexpectedBody {
                    expected: "a request",
                    found: other.body_type(),
                })
            }
        };
        Ok(VerifiedRequest {
            request,
            protection,
            implicit_confirm: self.message.header.implicit_confirm(),
            message: self.message,
        })
    }
}

impl VerifiedRequest {
    /// Enough to answer.
    pub fn reply_to(&self) -> ReplyTo {
        ReplyTo {
            transaction_id: self
                .message
                .header
                .transaction_id()
                .map(<[u8]>::to_vec)
                .unwrap_or_default(),
            recip_nonce: self.message.header.sender_nonce().map(<[u8]>::to_vec),
            recipient: self.message.header.sender.clone(),
            request_type: self.message.body.body_type(),
            origin: None,
        }
    }
}

/// What a certificate answer says.
pub enum CertificateOutcome<'c> {
    /// Issued: the certificate, caPubs (e.g. the root, RFC 9483 §4.1.1) and
    /// the issuing chain for extraCerts.
    Issued {
        /// The new certificate.
        certificate: Box<Certificate>,
        /// caPubs (only in an ip; ignored otherwise).
        ca_pubs: Vec<Certificate>,
        /// The certificate's chain, added to extraCerts.
        chain: &'c [Certificate],
        /// Grant implicit confirmation (only when the client asked).
        implicit_confirm: bool,
    },
    /// waiting: the client should poll.
    Waiting(Option<String>),
    /// rejection.
    Rejected {
        /// failInfo.
        fail_info: FailureInfoSet,
        /// statusString.
        text: Option<String>,
    },
}

impl Responder<'_> {
    /// Parse a request within the limits; check transactionID and
    /// senderNonce are present and that the body is a request.
    pub fn parse(&self, input: &[u8]) -> Result<Received> {
        let message = PkiMessage::parse(input, &self.limits)?;
        check_fields(&message.header)?;
        let t = message.body.body_type();
        if !t.is_request() {
            return Err(CmpError::UnexpectedBody {
                expected: "a request",
                found: t,
            });
        }
        let claimed = message.claimed_protection(&self.policy)?;
        Ok(Received {
            message,
            claimed,
            policy: self.policy,
        })
    }

    /// Build an answer with `body` to `to`; returns the message and the
    /// transaction state for checking the client's follow-up (certConf, pollReq).
    pub fn answer(
        &self,
        to: &ReplyTo,
        body: PkiBody,
        implicit_confirm: bool,
        extra: &[Certificate],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(Vec<u8>, Exchange)> {
        let our_nonce = fresh(rng);
        let mut h = PkiHeader::new(self.sender.clone(), to.recipient.clone());
        h.transaction_id = Some(OctetString::new(to.transaction_id.clone())?);
        h.sender_nonce = Some(OctetString::new(our_nonce.clone())?);
        h.recip_nonce = to.recip_nonce.clone().map(OctetString::new).transpose()?;
        h.message_time = self.message_time.map(GeneralizedTime::from_system_time).transpose()?;
        if implicit_confirm {
            h.set_implicit_confirm()?;
        }
        let der_bytes = PkiMessage::build(h, body, &self.protect, extra)?;
        Ok((
            der_bytes,
            Exchange {
                transaction_id: to.transaction_id.clone(),
                our_nonce,
                peer_nonce: to.recip_nonce.clone(),
            },
        ))
    }

    /// ip/cp/kup (by the request type, or `to.origin` for a pollReq) for one certReqId.
    pub fn certificate_response(
        &self,
        to: &ReplyTo,
        cert_req_id: i64,
        outcome: CertificateOutcome<'_>,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(Vec<u8>, Exchange)> {
        let kind = match to.request_type {
            BodyType::PollReq | BodyType::CertConf => to.origin.unwrap_or(BodyType::Cr),
            t => t,
        };
        let (response, ca_pubs, chain, implicit) = match outcome {
            CertificateOutcome::Issued {
                certificate,
                ca_pubs,
                chain,
                implicit_confirm,
            } => (
                CertResponse::granted(cert_req_id, *certificate)?,
                (kind == BodyType::Ir && !ca_pubs.is_empty()).then_some(ca_pubs),
                chain,
                implicit_confirm,
            ),
            CertificateOutcome::Waiting(text) => (
                CertResponse::status_only(cert_req_id, PkiStatusInfo::waiting(text.as_deref()))?,
                None,
                &[][..],
                false,
            ),
            CertificateOutcome::Rejected { fail_info, text } => (
                CertResponse::status_only(cert_req_id, PkiStatusInfo::rejection(fail_info, text.as_deref()))?,
                None,
                &[][..],
                false,
            ),
        };
        let rep = CertRepMessage {
            ca_pubs,
            response: vec![response],
        };
        let body = match kind {
            BodyType::Ir => PkiBody::Ip(rep),
            BodyType::Kur => PkiBody::Kup(rep),
            BodyType::Cr | BodyType::P10cr => PkiBody::Cp(rep),
            other => {
                return Err(CmpError::UnexpectedBody {
                    expected: "ir, cr, kur or p10cr",
                    found: other,
                })
            }
        };
        self.answer(to, body, implicit, chain, rng)
    }

    /// rp with one status.
    pub fn revocation_response(
        &self,
        to: &ReplyTo,
        status: PkiStatusInfo,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(Vec<u8>, Exchange)> {
        let body = PkiBody::Rp(RevRepContent {
            status: vec![status],
            rev_certs: None,
            crls: None,
        });
        self.answer(to, body, false, &[], rng)
    }

    /// genp.
    pub fn general_response(
        &self,
        to: &ReplyTo,
        answers: &[GenResponse],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(Vec<u8>, Exchange)> {
        let itavs = answers.iter().map(GenResponse::to_itav).collect::<Result<Vec<_>>>()?;
        self.answer(to, PkiBody::GenP(itavs), false, &[], rng)
    }

    /// pollRep.
    pub fn poll_response(
        &self,
        to: &ReplyTo,
        cert_req_id: i64,
        check_after: u64,
        reason: Option<&str>,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(Vec<u8>, Exchange)> {
        let body = PkiBody::PollRep(vec![PollRep::new(cert_req_id, check_after, reason)?]);
        self.answer(to, body, false, &[], rng)
    }

    /// pkiConf.
    pub fn pki_conf(&self, to: &ReplyTo, rng: &mut (impl RngCore + CryptoRng)) -> Result<(Vec<u8>, Exchange)> {
        self.answer(to, PkiBody::PkiConf, false, &[], rng)
    }

    /// error with failInfo and a text.
    pub fn error(
        &self,
        to: &ReplyTo,
        fail_info: impl Into<FailureInfoSet>,
        text: &str,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(Vec<u8>, Exchange)> {
        self.answer(
            to,
            PkiBody::Error(ErrorMsgContent::rejection(fail_info, text)),
            false,
            &[],
            rng,
        )
    }

    /// error for a [`CmpError`], with its failInfo ([`CmpError::failure_info`]).
    pub fn error_for(
        &self,
        to: &ReplyTo,
        err: &CmpError,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(Vec<u8>, Exchange)> {
        self.error(to, err.failure_info(), &err.to_string(), rng)
    }
}
