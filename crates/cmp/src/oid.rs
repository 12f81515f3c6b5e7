//! Object identifiers CMP uses, each with where it is defined.
//!
//! Signature algorithm OIDs are `enrolkit_keys::oid` and
//! `enrolkit_keys::x509_oid`; they are not repeated here.

use const_oid::ObjectIdentifier as Oid;

/// id-PasswordBasedMac (RFC 4210 §5.1.3.1; RFC 9481 §6.1.1 "PasswordBasedMac").
pub const PASSWORD_BASED_MAC: Oid = Oid::new_unwrap("1.2.840.113533.7.66.13");
/// id-PBMAC1 (RFC 8018 §7.1, RFC 9481 §6.1.2).
pub const PBMAC1: Oid = Oid::new_unwrap("1.2.840.113549.1.5.14");
/// id-PBKDF2 (RFC 8018 §5.2, Appendix A.2).
pub const PBKDF2: Oid = Oid::new_unwrap("1.2.840.113549.1.5.12");

/// hmac-sha1 as OpenSSL writes it in PBMParameter.mac (RFC 2404 / RFC 9481 §6.2.1 "id-hmacWithSHA1" alias).
pub const HMAC_SHA1: Oid = Oid::new_unwrap("1.3.6.1.5.5.8.1.2");
/// id-hmacWithSHA1 (RFC 8018 Appendix B.1.1).
pub const HMAC_WITH_SHA1: Oid = Oid::new_unwrap("1.2.840.113549.2.7");
/// id-hmacWithSHA256 (RFC 4231, RFC 8018 Appendix B.1.2; RFC 9481 §6.2.1).
pub const HMAC_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.113549.2.9");
/// id-hmacWithSHA384.
pub const HMAC_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.113549.2.10");
/// id-hmacWithSHA512.
pub const HMAC_WITH_SHA512: Oid = Oid::new_unwrap("1.2.840.113549.2.11");

/// id-sha1 (the PasswordBasedMac owf of legacy peers).
pub const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
/// id-sha256.
pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
/// id-sha384.
pub const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
/// id-sha512.
pub const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");

/// id-it-signKeyPairTypes (RFC 4210 §5.3.19.2).
pub const IT_SIGN_KEY_PAIR_TYPES: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.4.2");
/// id-it-implicitConfirm (RFC 4210 §5.1.1.1): generalInfo, value NULL.
pub const IT_IMPLICIT_CONFIRM: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.4.13");
/// id-it-confirmWaitTime (RFC 4210 §5.1.1.2): generalInfo, GeneralizedTime.
pub const IT_CONFIRM_WAIT_TIME: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.4.14");
/// id-it-caCerts (RFC 9480 §2.14, RFC 9483 §4.3.1).
pub const IT_CA_CERTS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.4.17");
/// id-it-rootCaKeyUpdate (RFC 9480 §2.15, RFC 9483 §4.3.2).
pub const IT_ROOT_CA_KEY_UPDATE: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.4.18");
/// id-it-certReqTemplate (RFC 9480 §2.16, RFC 9483 §4.3.3).
pub const IT_CERT_REQ_TEMPLATE: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.4.19");
/// id-it-rootCaCert (RFC 9480 §2.15, RFC 9483 §4.3.2).
pub const IT_ROOT_CA_CERT: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.4.20");
/// id-it-certProfile (RFC 9480 §2.4).
pub const IT_CERT_PROFILE: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.4.21");

/// id-regCtrl-regToken (RFC 4211 §6.1).
pub const REG_CTRL_REG_TOKEN: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.5.1.1");
/// id-regCtrl-oldCertID (RFC 4211 §6.5): the certificate a kur replaces.
pub const REG_CTRL_OLD_CERT_ID: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.5.1.5");
/// id-regCtrl-algId (RFC 9480 §2.16): key algorithm in a certReqTemplate keySpec.
pub const REG_CTRL_ALG_ID: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.5.1.11");
/// id-regCtrl-rsaKeyLen (RFC 9480 §2.16): RSA key length in a certReqTemplate keySpec.
pub const REG_CTRL_RSA_KEY_LEN: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.5.1.12");

/// id-ce-cRLReasons (RFC 5280 §5.3.1), in RevDetails.crlEntryDetails.
pub const CE_CRL_REASONS: Oid = Oid::new_unwrap("2.5.29.21");
/// id-ce-subjectKeyIdentifier (RFC 5280 §4.2.1.2): senderKID of a signed message.
pub const CE_SUBJECT_KEY_IDENTIFIER: Oid = Oid::new_unwrap("2.5.29.14");
