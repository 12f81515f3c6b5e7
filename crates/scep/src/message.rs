//! SCEP pkiMessages: requests (PKCSReq, RenewalReq, CertPoll, GetCert,
//! GetCRL) and the CertRep reply, built and opened on either side.

use crate::asn1::RawCertificate;
use crate::certificate::{same_certificate, subject_string};
use crate::codes::{FailInfo, MessageType, PkiStatus};
use crate::enveloped::{open_envelope, seal_envelope};
use crate::error::{Result, ScepError};
use crate::rejection::RejectionKey;
use crate::signed::{attribute, build_signed, parse_signed, SignerParts};
use crate::types::{oid, ContentEncryption, Nonce, TransactionId};
use cms::cert::IssuerAndSerialNumber;
use der::asn1::{OctetString, OctetStringRef, PrintableStringRef, Utf8StringRef};
use der::{Decode, Encode, Sequence, Tag, Tagged};
use enrolkit_keys::{Decryptor, DigestAlgorithm, SignatureAlgorithm, Signer};
use enrolkit_pkix::pkcs10::CertificationRequest;
use rand_core::{CryptoRng, RngCore};
use x509_cert::crl::CertificateList;
use x509_cert::name::Name;
use x509_cert::Certificate;

/// IssuerAndSubject, the CertPoll (GetCertInitial) content (RFC 8894 §3.3.3).
#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
pub struct IssuerAndSubject {
    /// The CA's name.
    pub issuer: Name,
    /// The requested subject.
    pub subject: Name,
}

/// What a request carries, by message type.
#[derive(Debug, Clone)]
pub enum RequestBody {
    /// PKCSReq: a PKCS#10 request, verified ([`CertificationRequest::parse`]).
    PkcsReq(CertificationRequest),
    /// RenewalReq: a PKCS#10 request signed by a key holding a current certificate.
    RenewalReq(CertificationRequest),
    /// CertPoll: which pending request to poll.
    CertPoll(IssuerAndSubject),
    /// GetCert: which certificate.
    GetCert(IssuerAndSerialNumber),
    /// GetCRL: the CRL of the issuer of this certificate.
    GetCrl(IssuerAndSerialNumber),
}

impl RequestBody {
    /// The message type that carries this body.
    pub fn message_type(&self) -> MessageType {
        match self {
            Self::PkcsReq(_) => MessageType::PkcsReq,
            Self::RenewalReq(_) => MessageType::RenewalReq,
            Self::CertPoll(_) => MessageType::CertPoll,
            Self::GetCert(_) => MessageType::GetCert,
            Self::GetCrl(_) => MessageType::GetCrl,
        }
    }
    fn to_der(&self) -> Result<Vec<u8>> {
        Ok(match self {
            Self::PkcsReq(c) | Self::RenewalReq(c) => c.der().to_vec(),
            Self::CertPoll(x) => x.to_der()?,
            Self::GetCert(x) | Self::GetCrl(x) => x.to_der()?,
        })
    }
    fn parse(mt: MessageType, der_bytes: &[u8]) -> Result<Self> {
        let bad = |what: &'static str| move |e: der::Error| ScepError::malformed(what, e);
        Ok(match mt {
            MessageType::PkcsReq => Self::PkcsReq(CertificationRequest::parse(der_bytes)?),
            MessageType::RenewalReq => Self::RenewalReq(CertificationRequest::parse(der_bytes)?),
            MessageType::CertPoll => {
                Self::CertPoll(IssuerAndSubject::from_der(der_bytes).map_err(bad("IssuerAndSubject"))?)
            }
            MessageType::GetCert => {
                Self::GetCert(IssuerAndSerialNumber::from_der(der_bytes).map_err(bad("IssuerAndSerialNumber"))?)
            }
            MessageType::GetCrl => {
                Self::GetCrl(IssuerAndSerialNumber::from_der(der_bytes).map_err(bad("IssuerAndSerialNumber"))?)
            }
            MessageType::CertRep => return Err(ScepError::UnexpectedMessageType(mt)),
        })
    }
}

/// The outer (signed) layer of any pkiMessage, parsed but not yet verified.
/// A responder reads the transactionID and nonce from here to answer even
/// when a later step fails.
#[derive(Debug, Clone)]
pub struct PkiMessage {
    /// messageType.
    pub message_type: MessageType,
    /// transactionID.
    pub transaction_id: TransactionId,
    /// senderNonce.
    pub sender_nonce: Nonce,
    /// recipientNonce (replies).
    pub recipient_nonce: Option<Nonce>,
    /// pkiStatus (replies).
    pub pki_status: Option<PkiStatus>,
    /// failInfo (FAILURE replies).
    pub fail_info: Option<FailInfo>,
    /// failInfoText (FAILURE replies, RFC 8894).
    pub fail_info_text: Option<String>,
    /// The signer's certificate, taken from the message (permissive profile:
    /// requesters' self-signed certificates need not follow RFC 5280).
    pub signer_certificate: RawCertificate,
    /// All certificates in the message.
    pub certificates: Vec<RawCertificate>,
    /// Digest of the signature.
    pub digest: DigestAlgorithm,
    /// Signature algorithm.
    pub signature_algorithm: SignatureAlgorithm,
    /// The signed content: the DER pkcsPKIEnvelope, if present.
    pub content: Option<Vec<u8>>,
    signer: SignerParts,
}

fn printable(signer: &SignerParts, o: const_oid::ObjectIdentifier, name: &'static str) -> Result<Option<String>> {
    let Some(v) = signer.attr(o, name)? else {
        return Ok(None);
    };
    match v.tag() {
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String => std::str::from_utf8(v.value())
            .map(|s| Some(s.to_owned()))
            .map_err(|_| ScepError::InvalidAttribute {
                name,
                reason: "not text".into(),
            }),
        t => Err(ScepError::InvalidAttribute {
            name,
            reason: format!("tag {t}, expected PrintableString"),
        }),
    }
}

fn nonce_attr(signer: &SignerParts, o: const_oid::ObjectIdentifier, name: &'static str) -> Result<Option<Nonce>> {
    let Some(v) = signer.attr(o, name)? else {
        return Ok(None);
    };
    let os = OctetStringRef::try_from(v).map_err(|_| ScepError::InvalidAttribute {
        name,
        reason: "not an OCTET STRING".into(),
    })?;
    Nonce::from_slice(os.as_bytes())
        .map(Some)
        .map_err(|_| ScepError::InvalidAttribute {
            name,
            reason: format!("{} bytes, expected 16", os.as_bytes().len()),
        })
}

impl PkiMessage {
    /// Parse a DER or BER request pkiMessage (bounded by [`crate::transport::MAX_MESSAGE`]).
    pub fn parse(input: &[u8]) -> Result<Self> {
        Self::parse_with_limit(input, crate::transport::MAX_MESSAGE)
    }

    /// Parse with an explicit size bound (clients use [`crate::transport::MAX_REPLY`]).
    pub fn parse_with_limit(input: &[u8], limit: usize) -> Result<Self> {
        let parts = parse_signed(input, true, limit)?;
        let signer = parts.signer.ok_or(ScepError::SignerCount(0))?;
        let message_type = MessageType::parse(
            &printable(&signer, oid::MESSAGE_TYPE, "messageType")?.ok_or(ScepError::MissingAttribute("messageType"))?,
        )?;
        let transaction_id = TransactionId::new(
            &printable(&signer, oid::TRANSACTION_ID, "transactionID")?
                .ok_or(ScepError::MissingAttribute("transactionID"))?,
        )?;
        let sender_nonce =
            nonce_attr(&signer, oid::SENDER_NONCE, "senderNonce")?.ok_or(ScepError::MissingAttribute("senderNonce"))?;
        let recipient_nonce = nonce_attr(&signer, oid::RECIPIENT_NONCE, "recipientNonce")?;
        let pki_status = printable(&signer, oid::PKI_STATUS, "pkiStatus")?
            .map(|s| PkiStatus::parse(&s))
            .transpose()?;
        let fail_info = printable(&signer, oid::FAIL_INFO, "failInfo")?
            .map(|s| FailInfo::parse(&s))
            .transpose()?;
        let fail_info_text = printable(&signer, oid::FAIL_INFO_TEXT, "failInfoText")?;
        Ok(PkiMessage {
            message_type,
            transaction_id,
            sender_nonce,
            recipient_nonce,
            pki_status,
            fail_info,
            fail_info_text,
            signer_certificate: signer.cert.clone(),
            certificates: parts.certificates,
            digest: signer.digest,
            signature_algorithm: signer.signature_algorithm,
            content: parts.content,
            signer,
        })
    }

    /// Verify the signature (with the signer certificate in the message) and the messageDigest.
    pub fn verify(&self) -> Result<()> {
        self.signer.verify(self.content.as_deref())
    }

    /// The cipher of the pkcsPKIEnvelope, read without decrypting it (see
    /// [`crate::envelope_cipher`]); an error when there is no envelope.
    pub fn content_encryption(&self) -> Result<ContentEncryption> {
        crate::enveloped::envelope_cipher(self.envelope()?)
    }

    /// The DER pkcsPKIEnvelope, which every request carries.
    fn envelope(&self) -> Result<&[u8]> {
        self.content
            .as_deref()
            .ok_or_else(|| ScepError::malformed("pkiMessage", "no pkcsPKIEnvelope"))
    }
}

/// A verified and decrypted request, as the responder sees it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The outer layer (attributes, signer certificate).
    pub message: PkiMessage,
    /// The decrypted content.
    pub body: RequestBody,
    /// The cipher the requester chose (the reply uses the same).
    pub content_encryption: ContentEncryption,
}

/// The responder's keys: its (RA or CA) certificate, a decryptor for the
/// envelope, a signer for replies, and the implicit-rejection secret.
pub struct Responder<'a> {
    /// The certificate requests are encrypted to and replies are signed with.
    pub certificate: &'a Certificate,
    /// The matching private key, for decryption.
    pub decryptor: &'a dyn Decryptor,
    /// The matching private key, for signing.
    pub signer: &'a dyn Signer,
    /// Secret for implicit rejection of bad key transports.
    pub rejection: &'a RejectionKey,
}

impl Responder<'_> {
    /// Parse, verify and decrypt a request in one call.
    pub fn open_request(&self, input: &[u8]) -> Result<Request> {
        let msg = PkiMessage::parse(input)?;
        msg.verify()?;
        self.open_verified(msg)
    }

    /// Decrypt the content of an already verified message.
    pub fn open_verified(&self, message: PkiMessage) -> Result<Request> {
        if message.message_type == MessageType::CertRep {
            return Err(ScepError::UnexpectedMessageType(MessageType::CertRep));
        }
        let (plain, content_encryption) =
            open_envelope(message.envelope()?, self.certificate, self.decryptor, self.rejection)?;
        // A plaintext that does not parse is reported like a decryption failure
        // (no padding oracle); a CSR whose own signature fails is reported as such.
        let body = match RequestBody::parse(message.message_type, &plain) {
            Ok(b) => b,
            Err(e @ (ScepError::BadSignature | ScepError::UnsupportedAlgorithm { .. })) => return Err(e),
            Err(ScepError::Malformed { .. } | ScepError::Encoding(_)) => return Err(ScepError::DecryptionFailed),
            Err(e) => return Err(e),
        };
        Ok(Request {
            message,
            body,
            content_encryption,
        })
    }

    /// Build the signed CertRep answering `to`.
    pub fn reply(&self, to: &ReplyTo, outcome: &Outcome, rng: &mut (impl RngCore + CryptoRng)) -> Result<Vec<u8>> {
        build_cert_rep(to, outcome, self.signer, self.certificate, rng)
    }
}

/// What a CertRep answers: copied from the request.
#[derive(Debug, Clone)]
pub struct ReplyTo {
    /// The request's transactionID.
    pub transaction_id: TransactionId,
    /// The request's senderNonce (becomes our recipientNonce).
    pub sender_nonce: Nonce,
    /// The requester's certificate: SUCCESS content is encrypted to it.
    pub requester_certificate: RawCertificate,
    /// Digest for our signature (the request's, so legacy clients can verify).
    pub digest: DigestAlgorithm,
    /// Cipher for the SUCCESS content (the request's).
    pub content_encryption: ContentEncryption,
}

impl ReplyTo {
    /// From a parsed request: the reply mirrors the request's digest and
    /// cipher, so a legacy client that only knows SHA-1 or DES can read it.
    /// A responder whose policy forbids SHA-1 signatures overrides `digest`.
    pub fn from_message(m: &PkiMessage, content_encryption: ContentEncryption) -> Self {
        let digest = m.digest;
        ReplyTo {
            transaction_id: m.transaction_id.clone(),
            sender_nonce: m.sender_nonce,
            requester_certificate: m.signer_certificate.clone(),
            digest,
            content_encryption,
        }
    }
}

/// The outcome a CertRep carries.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// SUCCESS: certificates and/or CRLs. DER sorts them: a reader finds its
    /// certificate by key, so send the issued certificate alone when clients
    /// may take the first one.
    Success {
        /// Certificates.
        certificates: Vec<Certificate>,
        /// CRLs (GetCRL).
        crls: Vec<CertificateList>,
    },
    /// PENDING: manual approval; the client polls.
    Pending,
    /// FAILURE with a reason.
    Failure {
        /// Machine-readable reason.
        fail_info: FailInfo,
        /// Human-readable reason (failInfoText), optional.
        text: Option<String>,
    },
}

/// Build a CertRep (usually through [`Responder::reply`]).
pub fn build_cert_rep(
    to: &ReplyTo,
    outcome: &Outcome,
    signer: &dyn Signer,
    signer_cert: &Certificate,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Vec<u8>> {
    let status = match outcome {
        Outcome::Success { .. } => PkiStatus::Success,
        Outcome::Pending => PkiStatus::Pending,
        Outcome::Failure { .. } => PkiStatus::Failure,
    };
    let mut attrs = vec![
        attribute(
            oid::MESSAGE_TYPE,
            &PrintableStringRef::new(&MessageType::CertRep.code().to_string())?,
        )?,
        attribute(
            oid::TRANSACTION_ID,
            &PrintableStringRef::new(to.transaction_id.as_str())?,
        )?,
        attribute(oid::SENDER_NONCE, &OctetString::new(Nonce::random(rng).0.to_vec())?)?,
        attribute(oid::RECIPIENT_NONCE, &OctetString::new(to.sender_nonce.0.to_vec())?)?,
        attribute(oid::PKI_STATUS, &PrintableStringRef::new(&status.code().to_string())?)?,
    ];
    let content = match outcome {
        Outcome::Success { certificates, crls } => {
            let degenerate = enrolkit_pkix::certs_only::encode(certificates, crls)?;
            Some(seal_envelope(
                &degenerate,
                &to.requester_certificate,
                to.content_encryption,
                rng,
            )?)
        }
        // PENDING and FAILURE "lack signed content" (RFC 8894 §3.2): we send an
        // empty eContent rather than none, as micromdm does, because OpenSSL's
        // PKCS7_verify (and so certmonger) refuses a SignedData without content.
        Outcome::Pending => Some(Vec::new()),
        Outcome::Failure { fail_info, text } => {
            attrs.push(attribute(
                oid::FAIL_INFO,
                &PrintableStringRef::new(&fail_info.code().to_string())?,
            )?);
            if let Some(t) = text {
                let t: String = t.chars().take(256).collect();
                attrs.push(attribute(oid::FAIL_INFO_TEXT, &Utf8StringRef::new(&t)?)?);
            }
            Some(Vec::new())
        }
    };
    build_signed(content.as_deref(), attrs, signer, signer_cert, to.digest)
}

// ------------------------------------------------------------------ client

/// The requester's identity: its key and the certificate it signs with (a
/// self-signed one for a first enrolment, the current one for renewal).
pub struct Requester<'a> {
    /// Signing key.
    pub signer: &'a dyn Signer,
    /// Decryption key (the same RSA key).
    pub decryptor: &'a dyn Decryptor,
    /// The certificate included as signer (and that the reply is encrypted to).
    pub certificate: &'a Certificate,
}

/// What a client remembers about a request it sent, to match the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRequest {
    /// messageType of the request.
    pub message_type: MessageType,
    /// transactionID.
    pub transaction_id: TransactionId,
    /// senderNonce.
    pub sender_nonce: Nonce,
}

/// Build a request pkiMessage encrypted to `recipient` (the RA, or the CA when it has no RA).
pub fn build_request(
    requester: &Requester<'_>,
    recipient: &Certificate,
    body: &RequestBody,
    transaction_id: &TransactionId,
    cipher: ContentEncryption,
    digest: DigestAlgorithm,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(Vec<u8>, SentRequest)> {
    let envelope = seal_envelope(&body.to_der()?, recipient, cipher, rng)?;
    let nonce = Nonce::random(rng);
    let mt = body.message_type();
    let attrs = vec![
        attribute(oid::MESSAGE_TYPE, &PrintableStringRef::new(&mt.code().to_string())?)?,
        attribute(oid::TRANSACTION_ID, &PrintableStringRef::new(transaction_id.as_str())?)?,
        attribute(oid::SENDER_NONCE, &OctetString::new(nonce.0.to_vec())?)?,
    ];
    let der_bytes = build_signed(Some(&envelope), attrs, requester.signer, requester.certificate, digest)?;
    Ok((
        der_bytes,
        SentRequest {
            message_type: mt,
            transaction_id: transaction_id.clone(),
            sender_nonce: nonce,
        },
    ))
}

/// An opened CertRep.
#[derive(Debug, Clone)]
pub enum CertRep {
    /// Granted, with the certificates and CRLs of the degenerate SignedData.
    Success {
        /// Certificates (in DER order; find ours with [`CertRep::certificate_for`]).
        certificates: Vec<Certificate>,
        /// CRLs (GetCRL).
        crls: Vec<CertificateList>,
    },
    /// Waiting for approval: poll with CertPoll.
    Pending,
    /// Refused.
    Failure {
        /// Reason.
        fail_info: FailInfo,
        /// failInfoText, if the server sent one.
        text: Option<String>,
    },
}

impl CertRep {
    /// The certificate for `spki` among the returned ones (the issued one).
    pub fn certificate_for(&self, spki: &spki::SubjectPublicKeyInfoOwned) -> Option<&Certificate> {
        match self {
            CertRep::Success { certificates, .. } => certificates
                .iter()
                .find(|c| c.tbs_certificate.subject_public_key_info == *spki),
            _ => None,
        }
    }
}

/// Open a CertRep: check it is signed by one of `trusted_signers` (the CA
/// or RA certificates from GetCACert), that the signature verifies, that the
/// transactionID and recipientNonce match `sent`, and decrypt a SUCCESS
/// reply with the requester's key.
pub fn open_cert_rep(
    input: &[u8],
    sent: &SentRequest,
    trusted_signers: &[Certificate],
    requester: &Requester<'_>,
) -> Result<CertRep> {
    let msg = PkiMessage::parse_with_limit(input, crate::transport::MAX_REPLY)?;
    if msg.message_type != MessageType::CertRep {
        return Err(ScepError::UnexpectedMessageType(msg.message_type));
    }
    if !trusted_signers
        .iter()
        .any(|t| same_certificate(t, &msg.signer_certificate))
    {
        return Err(ScepError::WrongSigner(subject_string(&msg.signer_certificate)));
    }
    msg.verify()?;
    if msg.transaction_id != sent.transaction_id {
        return Err(ScepError::TransactionIdMismatch {
            expected: sent.transaction_id.to_string(),
            found: msg.transaction_id.to_string(),
        });
    }
    match msg.recipient_nonce {
        Some(n) if n.ct_eq(&sent.sender_nonce) => {}
        Some(_) => return Err(ScepError::NonceMismatch),
        None => return Err(ScepError::MissingAttribute("recipientNonce")),
    }
    let status = msg.pki_status.ok_or(ScepError::MissingAttribute("pkiStatus"))?;
    match status {
        PkiStatus::Pending => Ok(CertRep::Pending),
        PkiStatus::Failure => Ok(CertRep::Failure {
            fail_info: msg.fail_info.ok_or(ScepError::MissingAttribute("failInfo"))?,
            text: msg.fail_info_text.clone(),
        }),
        PkiStatus::Success => {
            let env = msg
                .content
                .as_deref()
                .ok_or_else(|| ScepError::malformed("CertRep", "SUCCESS without content"))?;
            // The client decrypts only replies it asked for: no oracle to protect, but use
            // a throwaway rejection key so the code path is the same.
            let rk = RejectionKey::new([0x5a; 32]);
            let (plain, _) = open_envelope(env, requester.certificate, requester.decryptor, &rk)?;
            let degenerate = enrolkit_pkix::certs_only::decode(&plain).map_err(|_| ScepError::DecryptionFailed)?;
            Ok(CertRep::Success {
                certificates: degenerate.certificates,
                crls: degenerate.crls,
            })
        }
    }
}
