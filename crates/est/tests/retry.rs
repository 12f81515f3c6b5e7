//! Retry-After in both forms.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use enrolkit_est::RetryAfter;
use std::time::{Duration, SystemTime};

#[test]
fn delta_seconds() {
    let r = RetryAfter::parse("3600").unwrap();
    assert_eq!(r, RetryAfter::Seconds(3600));
    assert_eq!(r.delay(SystemTime::now()), Duration::from_secs(3600));
    assert_eq!(r.to_string(), "3600");
    assert_eq!(RetryAfter::parse("0").unwrap().delay(SystemTime::now()), Duration::ZERO);
}

#[test]
fn http_date() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let later = RetryAfter::Date(now + Duration::from_secs(90));
    let text = later.to_string();
    assert!(text.ends_with(" GMT"), "{text}");
    let parsed = RetryAfter::parse(&text).unwrap();
    assert_eq!(parsed, later);
    assert_eq!(parsed.delay(now), Duration::from_secs(90));
    // In the past: no wait.
    assert_eq!(
        RetryAfter::Date(now - Duration::from_secs(90)).delay(now),
        Duration::ZERO
    );
    assert_eq!(
        RetryAfter::parse("Tue, 14 Nov 2023 22:13:20 GMT").unwrap(),
        RetryAfter::Date(now)
    );
}

#[test]
fn rejects() {
    for v in ["", "  ", "1.5", "-1", "tomorrow", "Tue, 14 Nov 2023", "12 s"] {
        assert!(RetryAfter::parse(v).is_err(), "{v:?}");
    }
    assert!(RetryAfter::parse(&format!("{:>100}", "5")).is_err());
}
