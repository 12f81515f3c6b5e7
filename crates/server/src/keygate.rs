//! A bound on the private-key work unauthenticated requests may start at
//! once.
//!
//! Anyone can send a SCEP PKIOperation (an RA decryption and an RA
//! signature before anything is known about the sender) or an OCSP request
//! (a CA signature when nothing kept answers it). With keys in a PKCS#11
//! token, every operation queues on the token; without a bound, a flood of
//! such requests would put issuance behind an unbounded queue. The gate
//! admits at most `permits` of that work at once; a request that finds no
//! permit within the wait is answered "busy" in its protocol's terms (HTTP
//! 503 for SCEP, `tryLater` for OCSP) instead of queueing. Issuance for an
//! already authenticated request (EST over a verified TLS session, an
//! operator's approval) does not pass the gate, so at the token it waits
//! behind at most `permits` operations.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Counts the unauthenticated private-key work in flight ([`KeyGate::enter`]).
#[derive(Debug)]
pub struct KeyGate {
    in_flight: Mutex<usize>,
    freed: Condvar,
    permits: usize,
    wait: Duration,
}

/// One admitted piece of work; its permit returns when this is dropped.
#[derive(Debug)]
#[must_use = "the permit is released when this is dropped"]
pub struct KeyPermit<'a> {
    gate: &'a KeyGate,
}

impl KeyGate {
    /// A gate admitting `permits` at once (0: unbounded), where a request
    /// waits at most `wait` for a permit.
    pub fn new(permits: usize, wait: Duration) -> Self {
        KeyGate {
            in_flight: Mutex::new(0),
            freed: Condvar::new(),
            permits,
            wait,
        }
    }

    /// A gate that admits everything (tests and tools that build a service
    /// without `[limits]`).
    pub fn unbounded() -> Self {
        Self::new(0, Duration::ZERO)
    }

    /// A permit, waiting at most the gate's wait for one; `None` when the
    /// gate stayed full (the caller answers "busy").
    pub fn enter(&self) -> Option<KeyPermit<'_>> {
        let deadline = Instant::now() + self.wait;
        let mut n = self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while self.permits != 0 && *n >= self.permits {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            n = self
                .freed
                .wait_timeout(n, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        *n += 1;
        Some(KeyPermit { gate: self })
    }

    /// Work admitted and not yet finished.
    pub fn in_flight(&self) -> usize {
        *self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for KeyPermit<'_> {
    fn drop(&mut self) {
        let mut n = self
            .gate
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *n = n.saturating_sub(1);
        drop(n);
        self.gate.freed.notify_one();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn admits_up_to_its_permits_and_refuses_after_the_wait() {
        let g = KeyGate::new(2, Duration::from_millis(50));
        let a = g.enter().expect("first");
        let _b = g.enter().expect("second");
        assert_eq!(g.in_flight(), 2);
        assert!(g.enter().is_none(), "a third waits out the wait and is refused");
        drop(a);
        assert!(g.enter().is_some(), "a returned permit admits again");
    }

    #[test]
    fn a_waiting_request_is_admitted_when_a_permit_returns() {
        let g = Arc::new(KeyGate::new(1, Duration::from_secs(30)));
        let held = g.enter().expect("first");
        let g2 = g.clone();
        let waiter = std::thread::spawn(move || g2.enter().map(drop).is_some());
        // Give the waiter time to block on the full gate (it is refused only
        // after 30 s, so it passes only if the returned permit wakes it).
        std::thread::sleep(Duration::from_millis(100));
        drop(held);
        assert!(waiter.join().unwrap());
        assert_eq!(g.in_flight(), 0);
    }

    #[test]
    fn zero_permits_is_unbounded() {
        let g = KeyGate::unbounded();
        let permits: Vec<_> = (0..100).map(|_| g.enter().expect("admitted")).collect();
        assert_eq!(g.in_flight(), 100);
        drop(permits);
        assert_eq!(g.in_flight(), 0);
    }
}
