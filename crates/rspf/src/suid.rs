//! Security Usage Identifiers (TS-0003 V3.18.0 clause 8.3.9.9.2; TS-0004
//! `m2m:suid`, an integer enumeration written in decimal).
//!
//! A SUID has two decimal digits. The first says where the key comes from,
//! the second what it is for:
//!
//! | first digit | key source            | second digit | purpose (parent resource)                 |
//! |-------------|-----------------------|--------------|-------------------------------------------|
//! | 1           | pre-provisioned       | 1            | MAF client registration (`[MAFClientRegCfg]`) |
//! | 2           | MEF-established       | 2            | registration (`[registration]`)           |
//! | 3           | MAF-established       | 3            | data collection (`[dataCollection]`)      |
//! | 4           | certificate           |              |                                           |
//!
//! A key the MEF and the Enrolee derive from Ke (10.3.7) is MEF-established,
//! so its SUID is 21, 22 or 23. The change request (seed `001`) numbered its
//! three communication security types 11/12/13 instead; see
//! [`crate::enrolment::CredentialUsage`] for how those map here.

use crate::error::{Result, RspfError};

/// Where a key comes from (the SUID's first digit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySource {
    /// 1: a pre-provisioned symmetric key.
    PreProvisioned = 1,
    /// 2: a symmetric key established by the MEF (derived from Ke).
    MefEstablished = 2,
    /// 3: a symmetric key established by a MAF.
    MafEstablished = 3,
    /// 4: a certificate.
    Certificate = 4,
}

/// What a key is for (the SUID's second digit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyPurpose {
    /// 1: MAF client registration.
    MafClientRegistration = 1,
    /// 2: registration with a Registrar CSE.
    Registration = 2,
    /// 3: data collection.
    DataCollection = 3,
}

/// A Security Usage Identifier: key source and purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Suid {
    /// Where the key comes from.
    pub source: KeySource,
    /// What it is for.
    pub purpose: KeyPurpose,
}

impl Suid {
    /// The MEF-established SUIDs (21, 22, 23): the only ones derived from Ke.
    pub const MEF_ESTABLISHED: [Suid; 3] = [
        Suid::mef(KeyPurpose::MafClientRegistration),
        Suid::mef(KeyPurpose::Registration),
        Suid::mef(KeyPurpose::DataCollection),
    ];

    /// The MEF-established SUID for `purpose`.
    pub const fn mef(purpose: KeyPurpose) -> Suid {
        Suid {
            source: KeySource::MefEstablished,
            purpose,
        }
    }

    /// From its value (11 to 43 with both digits defined).
    pub fn from_value(n: u8) -> Option<Suid> {
        let source = match n / 10 {
            1 => KeySource::PreProvisioned,
            2 => KeySource::MefEstablished,
            3 => KeySource::MafEstablished,
            4 => KeySource::Certificate,
            _ => return None,
        };
        let purpose = match n % 10 {
            1 => KeyPurpose::MafClientRegistration,
            2 => KeyPurpose::Registration,
            3 => KeyPurpose::DataCollection,
            _ => return None,
        };
        Some(Suid { source, purpose })
    }

    /// Read exactly two ASCII decimal digits (no sign, padding or spaces).
    pub fn parse(s: &str) -> Result<Suid> {
        let bad = |why| RspfError::InvalidIdentifier { what: "SUID", why };
        match s.as_bytes() {
            [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
                Suid::from_value((a - b'0') * 10 + (b - b'0')).ok_or(bad("not a SUID of TS-0003 8.3.9.9.2"))
            }
            _ => Err(bad("not two decimal digits")),
        }
    }

    /// The value (e.g. 22).
    pub fn value(self) -> u8 {
        self.source as u8 * 10 + self.purpose as u8
    }

    /// The two ASCII decimal digits that enter the 10.3.7 derivation.
    pub fn ascii(self) -> [u8; 2] {
        [b'0' + self.source as u8, b'0' + self.purpose as u8]
    }
}

impl core::fmt::Display for Suid {
    /// Two decimal digits, as in a Key Retrieval path.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_defined_value_round_trips_and_nothing_else_parses() {
        let mut n = 0;
        for v in 0..=99u8 {
            let text = format!("{v:02}");
            match Suid::from_value(v) {
                Some(s) => {
                    n += 1;
                    assert_eq!(s.value(), v);
                    assert_eq!(s.to_string(), text);
                    assert_eq!(Suid::parse(&text), Ok(s));
                    assert_eq!(&s.ascii(), text.as_bytes());
                }
                None => assert!(Suid::parse(&text).is_err(), "{text}"),
            }
        }
        assert_eq!(n, 12, "four sources times three purposes");
        for bad in ["", "2", "022", "+2", " 22", "2a", "٢٢"] {
            assert!(Suid::parse(bad).is_err(), "{bad:?}");
        }
        let values: Vec<u8> = Suid::MEF_ESTABLISHED.iter().map(|s| s.value()).collect();
        assert_eq!(values, [21, 22, 23]);
    }
}
