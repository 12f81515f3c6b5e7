//! General messages: InfoTypeAndValue, genm/genp contents (RFC 4210
//! §5.3.19, §5.3.20) and the RFC 9480 / RFC 9483 §4.3 info types a
//! Lightweight CMP server answers: CA certificates, root CA update and
//! certificate request template.
//!
//! ```text
//! InfoTypeAndValue ::= SEQUENCE {
//!     infoType    INFO-TYPE-AND-VALUE.&id({SupportedInfoSet}),
//!     infoValue   INFO-TYPE-AND-VALUE.&Type({SupportedInfoSet}{@infoType}) OPTIONAL }
//!
//! GenMsgContent ::= SEQUENCE OF InfoTypeAndValue
//! GenRepContent ::= SEQUENCE OF InfoTypeAndValue
//!
//! -- RFC 9480 §2.14, §2.15, §2.16
//! CaCertsValue ::= SEQUENCE SIZE (1..MAX) OF CMPCertificate
//! RootCaCertValue ::= CMPCertificate
//! RootCaKeyUpdateValue ::= RootCaKeyUpdateContent
//! RootCaKeyUpdateContent ::= SEQUENCE {
//!     newWithNew       CMPCertificate,
//!     newWithOld   [0] CMPCertificate OPTIONAL,
//!     oldWithNew   [1] CMPCertificate OPTIONAL }
//! CertReqTemplateValue ::= CertReqTemplateContent
//! CertReqTemplateContent ::= SEQUENCE {
//!     certTemplate  CertTemplate,
//!     keySpec       Controls OPTIONAL }
//! ```
//!
//! `InfoTypeAndValue` is `cmpv2`'s (infoValue as an `Any`); the typed
//! values are ours (`cmpv2` 0.2.0 predates RFC 9480).

use crate::request::{CertTemplate, Controls};
use crate::{oid, CmpError, Result};
use const_oid::ObjectIdentifier;
use der::{Any, Decode, Encode, Sequence};
use x509_cert::Certificate;

pub use cmpv2::gen::InfoTypeAndValue;

/// RootCaKeyUpdateContent (see the module docs).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct RootCaKeyUpdateContent {
    /// newWithNew: the new root, self-signed.
    pub new_with_new: Certificate,
    /// newWithOld: the new root's key certified by the old root.
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub new_with_old: Option<Certificate>,
    /// oldWithNew: the old root's key certified by the new root.
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub old_with_new: Option<Certificate>,
}

/// CertReqTemplateContent (see the module docs).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct CertReqTemplateContent {
    /// certTemplate: what the CA will fill in or accept.
    pub cert_template: CertTemplate,
    /// keySpec: id-regCtrl-algId / id-regCtrl-rsaKeyLen controls.
    pub key_spec: Option<Controls>,
}

/// What a genm asks for, by info type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GenRequest {
    /// id-it-caCerts, no value: the CA certificates (RFC 9483 §4.3.1).
    CaCerts,
    /// id-it-rootCaCert: a root CA update, from the old root if given (RFC 9483 §4.3.2).
    RootCaUpdate(Option<Box<Certificate>>),
    /// id-it-certReqTemplate, no value (RFC 9483 §4.3.3).
    CertReqTemplate,
    /// Any other info type, with its value.
    Other(InfoTypeAndValue),
}

impl GenRequest {
    /// Read one ITAV of a genm.
    pub fn from_itav(itav: &InfoTypeAndValue) -> Result<Self> {
        Ok(match itav.oid {
            oid::IT_CA_CERTS => GenRequest::CaCerts,
            oid::IT_CERT_REQ_TEMPLATE => GenRequest::CertReqTemplate,
            oid::IT_ROOT_CA_CERT => GenRequest::RootCaUpdate(match &itav.value {
                None => None,
                Some(v) => Some(Box::new(
                    v.decode_as::<Certificate>()
                        .map_err(|e| CmpError::malformed("rootCaCert", e))?,
                )),
            }),
            _ => GenRequest::Other(itav.clone()),
        })
    }

    /// The ITAV a genm carries for this request.
    pub fn to_itav(&self) -> Result<InfoTypeAndValue> {
        Ok(match self {
            GenRequest::CaCerts => itav(oid::IT_CA_CERTS, None::<&Any>)?,
            GenRequest::CertReqTemplate => itav(oid::IT_CERT_REQ_TEMPLATE, None::<&Any>)?,
            GenRequest::RootCaUpdate(old) => itav(oid::IT_ROOT_CA_CERT, old.as_deref())?,
            GenRequest::Other(i) => i.clone(),
        })
    }
}

/// What a genp answers, by info type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GenResponse {
    /// id-it-caCerts with the certificates (absent value when none).
    CaCerts(Vec<Certificate>),
    /// id-it-rootCaKeyUpdate: the update, or no value when there is none.
    RootCaKeyUpdate(Option<Box<RootCaKeyUpdateContent>>),
    /// id-it-certReqTemplate: the template, or no value when there is none.
    CertReqTemplate(Option<Box<CertReqTemplateContent>>),
    /// Any other info type.
    Other(InfoTypeAndValue),
}

impl GenResponse {
    /// The ITAV a genp carries.
    pub fn to_itav(&self) -> Result<InfoTypeAndValue> {
        match self {
            GenResponse::CaCerts(c) if c.is_empty() => itav(oid::IT_CA_CERTS, None::<&Any>),
            GenResponse::CaCerts(c) => itav(oid::IT_CA_CERTS, Some(c)),
            GenResponse::RootCaKeyUpdate(u) => itav(oid::IT_ROOT_CA_KEY_UPDATE, u.as_deref()),
            GenResponse::CertReqTemplate(t) => itav(oid::IT_CERT_REQ_TEMPLATE, t.as_deref()),
            GenResponse::Other(i) => Ok(i.clone()),
        }
    }

    /// Read one ITAV of a genp.
    pub fn from_itav(itav: &InfoTypeAndValue) -> Result<Self> {
        fn value<T: for<'a> Decode<'a>>(v: &Option<Any>, what: &'static str) -> Result<Option<T>> {
            v.as_ref()
                .map(|a| T::from_der(&a.to_der()?).map_err(|e| CmpError::malformed(what, e)))
                .transpose()
        }
        Ok(match itav.oid {
            oid::IT_CA_CERTS => {
                GenResponse::CaCerts(value::<Vec<Certificate>>(&itav.value, "caCerts")?.unwrap_or_default())
            }
            oid::IT_ROOT_CA_KEY_UPDATE => {
                GenResponse::RootCaKeyUpdate(value(&itav.value, "rootCaKeyUpdate")?.map(Box::new))
            }
            oid::IT_CERT_REQ_TEMPLATE => {
                GenResponse::CertReqTemplate(value(&itav.value, "certReqTemplate")?.map(Box::new))
            }
            _ => GenResponse::Other(itav.clone()),
        })
    }
}

/// An InfoTypeAndValue with an encoded value.
pub fn itav<T: Encode>(id: ObjectIdentifier, value: Option<&T>) -> Result<InfoTypeAndValue> {
    Ok(InfoTypeAndValue {
        oid: id,
        value: match value {
            None => None,
            Some(v) => Some(Any::from_der(&v.to_der()?)?),
        },
    })
}
