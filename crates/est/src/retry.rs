//! Retry-After (RFC 9110 §10.2.3), sent with 202 Accepted while a request
//! waits for manual approval (RFC 7030 §4.2.3) and with 503.

use crate::error::{EstError, Result};
use std::time::{Duration, SystemTime};

/// Longest Retry-After value parsed.
pub const MAX_RETRY_AFTER: usize = 64;

/// Largest delta-seconds kept; bigger values are clamped to it, as RFC 9111
/// §1.2.2 prescribes for delta-seconds that overflow.
pub const MAX_DELTA_SECONDS: u64 = 1 << 31;

/// When to retry: after a number of seconds, or at a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// delta-seconds.
    Seconds(u64),
    /// HTTP-date.
    Date(SystemTime),
}

impl RetryAfter {
    /// Parse a Retry-After header value: delta-seconds or an HTTP-date in
    /// any of its three forms (IMF-fixdate, RFC 850, asctime).
    pub fn parse(value: &str) -> Result<RetryAfter> {
        if value.len() > MAX_RETRY_AFTER {
            return Err(EstError::TooLarge {
                what: "Retry-After",
                limit: MAX_RETRY_AFTER,
            });
        }
        let v = value.trim();
        if v.is_empty() {
            return Err(EstError::malformed("Retry-After", "empty"));
        }
        if v.bytes().all(|c| c.is_ascii_digit()) {
            let secs = v.parse::<u64>().unwrap_or(u64::MAX).min(MAX_DELTA_SECONDS);
            return Ok(RetryAfter::Seconds(secs));
        }
        httpdate::parse_http_date(v).map(RetryAfter::Date).map_err(|_| {
            EstError::malformed(
                "Retry-After",
                format!("{v:?} is neither delta-seconds nor an HTTP-date"),
            )
        })
    }

    /// How long to wait from `now` (a date in the past means no wait).
    pub fn delay(&self, now: SystemTime) -> Duration {
        match self {
            RetryAfter::Seconds(s) => Duration::from_secs(*s),
            RetryAfter::Date(t) => t.duration_since(now).unwrap_or(Duration::ZERO),
        }
    }
}

impl std::fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RetryAfter::Seconds(s) => write!(f, "{s}"),
            RetryAfter::Date(t) => f.write_str(&httpdate::fmt_http_date(*t)),
        }
    }
}

impl std::str::FromStr for RetryAfter {
    type Err = EstError;
    fn from_str(s: &str) -> Result<RetryAfter> {
        RetryAfter::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms() {
        assert_eq!(RetryAfter::parse(" 120 ").unwrap(), RetryAfter::Seconds(120));
        assert_eq!(
            RetryAfter::parse("99999999999999999999999").unwrap(),
            RetryAfter::Seconds(1 << 31)
        );
        let d = RetryAfter::parse("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(784111777);
        assert_eq!(d, RetryAfter::Date(t));
        assert_eq!(d.to_string(), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(RetryAfter::parse("Sunday, 06-Nov-94 08:49:37 GMT").unwrap(), d);
        assert_eq!(RetryAfter::parse("Sun Nov  6 08:49:37 1994").unwrap(), d);
        assert_eq!(d.delay(t + Duration::from_secs(5)), Duration::ZERO);
        assert_eq!(d.delay(t - Duration::from_secs(5)), Duration::from_secs(5));
        assert_eq!(RetryAfter::Seconds(7).delay(t), Duration::from_secs(7));
        assert_eq!(RetryAfter::Seconds(7).to_string(), "7");
        assert!(RetryAfter::parse("").is_err());
        assert!(RetryAfter::parse("-5").is_err());
        assert!(RetryAfter::parse("soon").is_err());
        assert!(matches!(
            RetryAfter::parse(&"1".repeat(65)),
            Err(EstError::TooLarge { .. })
        ));
    }
}
