//! The state machine on a simulated clock: one test per seed step and per
//! failure path. Certificates come from a real CA (`enrolkit-pki`) made at
//! the simulated time; nothing sleeps and nothing touches the network.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use super::machine::*;
use enrolkit_keys::{KeySpec, Signer, SoftwareKey};
use enrolkit_pki::{Authority, Profile as CertProfile, Request, Revocation};
use enrolkit_pkix::fingerprint::sha256 as fingerprint;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use x509_cert::name::Name;
use x509_cert::Certificate;

const DAY: Duration = Duration::from_secs(86400);

/// Step 14 with nothing to keep.
const CLEAN: Action = Action::Clean { keep_staged: false };

fn t0() -> SystemTime {
    // 2026-01-01T00:00:00Z
    UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

struct Pki {
    root: Authority,
    ica: Authority,
}

fn key() -> Box<dyn Signer> {
    Box::new(SoftwareKey::generate(KeySpec::EcP256).unwrap())
}

fn pki(name: &str) -> Pki {
    let rng = &mut rand_core::OsRng;
    let root = Authority::new_root(
        key(),
        Name::from_str(&format!("CN={name} Root")).unwrap(),
        t0(),
        3650 * DAY,
        rng,
    )
    .unwrap();
    let ica = root
        .new_intermediate(
            key(),
            Name::from_str(&format!("CN={name} Issuing")).unwrap(),
            t0(),
            1825 * DAY,
            rng,
        )
        .unwrap();
    Pki { root, ica }
}

const CRL_URL: &str = "http://ca.test/crl";
const OCSP_URL: &str = "http://ca.test/ocsp";

impl Pki {
    fn leaf_at(&self, k: &SoftwareKey, at: SystemTime, life: Duration) -> Certificate {
        let req = Request {
            subject: Name::from_str("CN=device-1").unwrap(),
            public_key: k.public_key().clone(),
            dns_names: vec![],
            ip_addresses: vec![],
        };
        let profile = CertProfile {
            validity: life,
            backdate: Duration::ZERO,
            crl_url: Some(CRL_URL.into()),
            ocsp_url: Some(OCSP_URL.into()),
            ..CertProfile::default()
        };
        self.ica.issue(&req, &profile, at, &mut rand_core::OsRng).unwrap()
    }
    fn served(&self) -> Vec<Certificate> {
        vec![self.ica.certificate.clone(), self.root.certificate.clone()]
    }
    fn pin(&self) -> String {
        fingerprint(&self.root.certificate)
    }
    fn crl(&self, revoked: &[&Certificate], at: SystemTime) -> Vec<u8> {
        let list: Vec<Revocation> = revoked
            .iter()
            .map(|c| Revocation {
                serial: c.tbs_certificate.serial_number.clone(),
                time: at,
                reason: None,
            })
            .collect();
        der::Encode::to_der(&self.ica.crl(&list, 1, at, DAY).unwrap()).unwrap()
    }
}

fn policy(p: &Pki) -> Policy {
    Policy {
        anchors: vec![p.pin()],
        threshold_percent: 50,
        jitter_percent: 0,
        retry_min: Duration::from_secs(60),
        retry_max: Duration::from_secs(3600),
        revocation: RevocationMode::None,
        revocation_interval: Duration::from_secs(3600),
        peer_anchors: vec![],
        generation: "g1".into(),
    }
}

fn machine(policy: Policy) -> Machine {
    Machine::new(policy, [7; 32])
}

/// Run from Tick through LoadStores (with `cred`) and FetchCaCerts (with `served`).
fn cycle(m: &mut Machine, cred: Option<Credential>, served: Vec<Certificate>, now: SystemTime) -> Action {
    assert_eq!(m.on(Event::Tick, now), Action::LoadStores);
    assert_eq!(m.on(Event::Loaded(cred), now), Action::FetchCaCerts);
    m.on(Event::CaCerts(served), now)
}

fn enrol_action(a: &Action) -> (EnrolKind, Reason) {
    match a {
        Action::Enrol { kind, reason, .. } => (*kind, *reason),
        other => panic!("expected Enrol, got {other:?}"),
    }
}

fn cred(p: &Pki, leaf: Certificate, gen: &str) -> Credential {
    Credential {
        chain: vec![leaf, p.ica.certificate.clone()],
        generation: Some(gen.into()),
    }
}

/// From Enrol through Install, Notify and Clean to Wait; returns the Install action.
fn complete(m: &mut Machine, certs: Vec<Certificate>, k: &SoftwareKey, now: SystemTime) -> Action {
    let install = m.on(
        Event::Issued {
            certificates: certs,
            public_key: k.public_key().clone(),
        },
        now,
    );
    assert!(matches!(install, Action::Install { .. }), "{install:?}");
    match m.on(Event::Done, now) {
        Action::Notify(Notice::Installed { .. }) => {}
        other => panic!("expected Notify(Installed), got {other:?}"),
    }
    assert_eq!(m.on(Event::Done, now), CLEAN);
    assert!(matches!(m.on(Event::Done, now), Action::Wait { .. }));
    install
}

// ---- steps 1–4: anchors --------------------------------------------------

#[test]
fn steps_1_to_4_a_pinned_root_and_its_intermediate_lead_to_a_first_enrolment() {
    let p = pki("A");
    let mut m = machine(policy(&p));
    let a = cycle(&mut m, None, p.served(), t0());
    assert_eq!(enrol_action(&a), (EnrolKind::Initial, Reason::FirstCertificate));
    let Action::Enrol { anchors, .. } = a else {
        unreachable!()
    };
    assert_eq!(anchors.anchor, p.root.certificate);
    assert_eq!(anchors.below, vec![p.ica.certificate.clone()]);
}

#[test]
fn steps_1_to_4_the_order_the_server_sends_does_not_matter() {
    let p = pki("A");
    let mut m = machine(policy(&p));
    let mut served = p.served();
    served.reverse();
    assert_eq!(
        enrol_action(&cycle(&mut m, None, served, t0())).1,
        Reason::FirstCertificate
    );
}

#[test]
fn step_2_failure_a_wrong_fingerprint_halts_and_nothing_is_asked_to_be_written() {
    let p = pki("A");
    let evil = pki("A");
    let mut m = machine(policy(&p));
    // Nothing but reading the stores and fetching is asked before the halt.
    let a = cycle(&mut m, None, evil.served(), t0());
    let Action::Halt { error } = a else { panic!("{a:?}") };
    assert!(error.contains("pinned trust anchor"), "{error}");
    assert!(error.contains(&evil.pin()), "names what was offered: {error}");
    assert_eq!(m.status().phase, "halted");
    assert!(m.status().last_error.unwrap().contains("pinned"));
    // A changed profile starts over at once.
    assert_eq!(m.on(Event::ProfileChanged(policy(&evil)), t0()), Action::LoadStores);
}

/// Answer a halt as the daemon does; returns the notice (if any) and the wait.
fn daemon_after_halt(m: &mut Machine, now: SystemTime) -> (Option<Notice>, SystemTime) {
    match m.on(Event::Tick, now) {
        Action::Notify(n) => {
            let Action::Wait { until } = m.on(Event::Done, now) else {
                panic!("a halt waits after its alert")
            };
            (Some(n), until)
        }
        Action::Wait { until } => (None, until),
        other => panic!("{other:?}"),
    }
}

#[test]
fn step_2_failure_in_the_daemon_a_halt_is_alerted_once_per_error_and_retried_with_back_off() {
    let p = pki("A");
    let evil = pki("A");
    let mitm = pki("A");
    let mut m = machine(policy(&p));
    let Action::Halt { error } = cycle(&mut m, None, evil.served(), t0()) else {
        panic!()
    };
    let (notice, until) = daemon_after_halt(&mut m, t0());
    assert_eq!(notice, Some(Notice::Halted { error: error.clone() }));
    let d = until.duration_since(t0()).unwrap();
    assert!(
        d >= Duration::from_secs(60) && d <= Duration::from_secs(66),
        "retry_min: {d:?}"
    );
    let s = m.status();
    assert_eq!((s.phase, s.next_wake, s.failures), ("halted", Some(until), 1));
    assert_eq!(s.last_error.as_deref(), Some(error.as_str()));
    // Before the back-off has passed, a tick changes nothing.
    assert_eq!(
        m.on(Event::Tick, t0() + Duration::from_secs(30)),
        Action::Wait { until }
    );

    // The same error again: retried with a doubled back-off, not alerted again.
    let a = cycle(&mut m, None, evil.served(), until);
    assert_eq!(a, Action::Halt { error: error.clone() });
    let (notice, until2) = daemon_after_halt(&mut m, until);
    assert_eq!(notice, None, "one alert per distinct error");
    let d = until2.duration_since(until).unwrap();
    assert!(d >= Duration::from_secs(120) && d <= Duration::from_secs(132), "{d:?}");

    // Another error is news.
    let served = vec![mitm.ica.certificate.clone(), p.root.certificate.clone()];
    let Action::Halt { error: other } = cycle(&mut m, None, served, until2) else {
        panic!()
    };
    assert_ne!(other, error);
    let (notice, until3) = daemon_after_halt(&mut m, until2);
    assert_eq!(notice, Some(Notice::Halted { error: other }));

    // The operator fixes the server: the next retry enrols, with no restart.
    let a = cycle(&mut m, None, p.served(), until3);
    assert_eq!(enrol_action(&a), (EnrolKind::Initial, Reason::FirstCertificate));
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    complete(&mut m, vec![p.leaf_at(&k, until3, 10 * DAY)], &k, until3);
    assert_eq!(m.status().failures, 0);

    // After good trust, the first error is alerted again; a directive retries at once.
    let mut m = machine(policy(&p));
    cycle(&mut m, None, evil.served(), t0());
    daemon_after_halt(&mut m, t0());
    assert_eq!(
        m.on(Event::Directive(Directive::RenewNow), t0() + Duration::from_secs(1)),
        Action::LoadStores
    );
}

#[test]
fn step_4_expired_certificates_off_the_path_to_the_anchor_are_ignored_not_a_halt() {
    let p = pki("A");
    let rng = &mut rand_core::OsRng;
    // An old root the server still sends, expired and not chaining to the pin.
    let old_root = Authority::new_root(
        key(),
        Name::from_str("CN=Old Root").unwrap(),
        t0() - 4000 * DAY,
        3650 * DAY,
        rng,
    )
    .unwrap();
    // The issuing CA's expired predecessor, superseded by the current one.
    let old_ica = p
        .root
        .new_intermediate(
            key(),
            Name::from_str("CN=A Issuing").unwrap(),
            t0() - 400 * DAY,
            365 * DAY,
            rng,
        )
        .unwrap();
    let mut served = p.served();
    served.push(old_root.certificate.clone());
    served.insert(0, old_ica.certificate.clone());
    let mut m = machine(policy(&p));
    let a = cycle(&mut m, None, served, t0());
    let Action::Enrol { anchors, reason, .. } = a else {
        panic!("{a:?}")
    };
    assert_eq!(reason, Reason::FirstCertificate);
    assert_eq!(anchors.below, vec![p.ica.certificate.clone()]);
    assert_eq!(anchors.ignored.len(), 2);
    assert!(anchors.ignored.contains(&old_root.certificate) && anchors.ignored.contains(&old_ica.certificate));
    // An unexpired stranger still halts.
    let stranger = pki("B");
    let mut served = p.served();
    served.push(stranger.root.certificate.clone());
    let mut m = machine(policy(&p));
    assert!(matches!(cycle(&mut m, None, served, t0()), Action::Halt { .. }));
}

#[test]
fn step_4_failure_an_ordinary_certificate_of_the_ca_offered_as_the_scep_ra_halts() {
    // Any device of the CA has a certificate it signed; a man in the middle
    // offering one as "the RA" would read our challenge password.
    let p = pki("A");
    let other_device = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let fake_ra = p.leaf_at(&other_device, t0(), 365 * DAY);
    let mut served = p.served();
    served.push(fake_ra.clone());
    let mut m = machine(policy(&p));
    let a = cycle(&mut m, None, served.clone(), t0());
    let Action::Halt { error } = a else { panic!("{a:?}") };
    assert!(error.contains("RA") && error.contains("device-1"), "{error}");

    // Pinned by the operator it is accepted; so is one marked id-kp-cmcRA.
    let mut pinned = policy(&p);
    pinned.anchors.push(fingerprint(&fake_ra));
    let mut m = machine(pinned);
    assert_eq!(
        enrol_action(&cycle(&mut m, None, served, t0())).1,
        Reason::FirstCertificate
    );
    let ra_key = SoftwareKey::generate(KeySpec::Rsa2048).unwrap();
    let ra = p
        .ica
        .certify_ra(
            ra_key.public_key(),
            Name::from_str("CN=A RA").unwrap(),
            t0(),
            365 * DAY,
            &mut rand_core::OsRng,
        )
        .unwrap();
    let mut served = p.served();
    served.push(ra.clone());
    let mut m = machine(policy(&p));
    let Action::Enrol { anchors, .. } = cycle(&mut m, None, served, t0()) else {
        panic!()
    };
    assert!(anchors.below.contains(&ra));
}

#[test]
fn step_4_failure_an_intermediate_not_signed_by_the_pinned_root_halts() {
    let p = pki("A");
    let mitm = pki("A"); // same names, other keys
    let mut m = machine(policy(&p));
    let a = cycle(
        &mut m,
        None,
        vec![mitm.ica.certificate.clone(), p.root.certificate.clone()],
        t0(),
    );
    let Action::Halt { error } = a else { panic!("{a:?}") };
    assert!(error.contains("A Issuing") && error.contains("not signed"), "{error}");
}

#[test]
fn step_4_failure_an_expired_intermediate_is_a_retryable_failure() {
    let p = pki("A");
    let mut m = machine(policy(&p));
    let a = cycle(&mut m, None, p.served(), t0() + 2000 * DAY);
    assert!(matches!(a, Action::Notify(Notice::Failed { .. })), "{a:?}");
    assert!(matches!(m.on(Event::Done, t0()), Action::Wait { .. }));
}

// ---- step 5: first enrolment ---------------------------------------------

#[test]
fn step_5_the_issued_chain_is_validated_installed_notified_and_cleaned_up() {
    let p = pki("A");
    let mut m = machine(policy(&p));
    cycle(&mut m, None, p.served(), t0());
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let leaf = p.leaf_at(&k, t0(), DAY);
    let install = m.on(
        Event::Issued {
            certificates: vec![leaf.clone()],
            public_key: k.public_key().clone(),
        },
        t0(),
    );
    assert_eq!(
        install,
        Action::Install {
            chain: vec![leaf.clone(), p.ica.certificate.clone()],
            anchor: p.root.certificate.clone(),
            generation: "g1".into(),
        }
    );
    assert!(
        m.credential().is_none(),
        "nothing counts as installed before the driver says so"
    );
    let Action::Notify(Notice::Installed { reason, not_after, .. }) = m.on(Event::Done, t0()) else {
        panic!()
    };
    assert_eq!(reason, Reason::FirstCertificate);
    assert_eq!(not_after, t0() + DAY);
    assert_eq!(m.on(Event::Done, t0()), CLEAN);
    // Sleeps until half the lifetime (threshold 50%, no jitter).
    assert_eq!(m.on(Event::Done, t0()), Action::Wait { until: t0() + DAY / 2 });
    let s = m.status();
    assert_eq!((s.phase, s.renew_at, s.failures), ("idle", Some(t0() + DAY / 2), 0));
    assert!(m.installed_any());
}

#[test]
fn step_5_failure_a_server_refusal_backs_off_and_notifies_once() {
    let p = pki("A");
    let mut m = machine(policy(&p));
    cycle(&mut m, None, p.served(), t0());
    let a = m.on(Event::Failed("the server refused the request: badRequest".into()), t0());
    assert_eq!(
        a,
        Action::Notify(Notice::Failed {
            error: "the server refused the request: badRequest".into(),
            failures: 1
        })
    );
    let Action::Wait { until } = m.on(Event::Done, t0()) else {
        panic!()
    };
    let d = until.duration_since(t0()).unwrap();
    assert!(d >= Duration::from_secs(60) && d <= Duration::from_secs(66), "{d:?}");
    assert_eq!(m.status().phase, "retrying");
}

// ---- step 7: renewal, jitter, back-off -----------------------------------

#[test]
fn step_7_nothing_happens_before_the_threshold_and_renewal_starts_after_it() {
    let p = pki("A");
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let leaf = p.leaf_at(&k, t0(), 10 * DAY);
    let mut m = machine(policy(&p));
    let a = cycle(&mut m, Some(cred(&p, leaf.clone(), "g1")), p.served(), t0() + 4 * DAY);
    assert_eq!(a, CLEAN);
    // Never asleep for more than a day: the CA certificates are fetched at least daily.
    assert_eq!(
        m.on(Event::Done, t0() + 4 * DAY),
        Action::Wait { until: t0() + 5 * DAY }
    );
    // A spurious tick before the time changes nothing.
    assert_eq!(
        m.on(Event::Tick, t0() + 4 * DAY),
        Action::Wait { until: t0() + 5 * DAY }
    );
    let a = cycle(&mut m, Some(cred(&p, leaf, "g1")), p.served(), t0() + 5 * DAY);
    assert_eq!(enrol_action(&a), (EnrolKind::Renew, Reason::RenewalDue));
}

#[test]
fn step_7_jitter_spreads_renewals_within_the_band_and_is_stable() {
    let p = pki("A");
    let mut pol = policy(&p);
    pol.jitter_percent = 20;
    let m = machine(pol);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..8 {
        let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
        let leaf = p.leaf_at(&k, t0(), 100 * DAY);
        let at = m.renew_at(&leaf);
        assert!(at >= t0() + 50 * DAY && at < t0() + 70 * DAY, "{at:?}");
        assert_eq!(at, m.renew_at(&leaf), "the same certificate renews at the same time");
        seen.insert(at);
    }
    assert!(seen.len() > 1, "eight devices should not all renew at the same second");
}

#[test]
fn step_7_failure_the_server_down_means_exponential_back_off_capped_and_the_credential_stays() {
    let p = pki("A");
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let leaf = p.leaf_at(&k, t0(), 10 * DAY);
    let c = cred(&p, leaf, "g1");
    let mut m = machine(policy(&p));
    let mut now = t0() + 6 * DAY;
    let mut delays = vec![];
    for round in 0..10 {
        let a = cycle(&mut m, Some(c.clone()), p.served(), now);
        assert_eq!(enrol_action(&a).1, Reason::RenewalDue);
        let mut a = m.on(
            Event::Failed("cannot reach http://ca/scep: connection refused".into()),
            now,
        );
        if round == 0 {
            assert!(matches!(a, Action::Notify(Notice::Failed { failures: 1, .. })));
            a = m.on(Event::Done, now);
        }
        let Action::Wait { until } = a else { panic!("{a:?}") };
        delays.push(until.duration_since(now).unwrap().as_secs());
        now = until;
    }
    for (i, d) in delays.iter().enumerate() {
        let base = (60u64 << i).min(3600);
        assert!(*d >= base && *d <= base + base / 10, "retry {i}: {d}s, base {base}s");
    }
    assert_eq!(m.credential(), Some(&c), "the old credential is still the one held");
    assert_eq!(m.status().failures, 10);
    // When the server is back, renewal succeeds and the failure count resets.
    let a = cycle(&mut m, Some(c), p.served(), now);
    assert_eq!(enrol_action(&a).0, EnrolKind::Renew);
    let k2 = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    complete(&mut m, vec![p.leaf_at(&k2, now, 10 * DAY)], &k2, now);
    assert_eq!(m.status().failures, 0);
    assert_eq!(m.status().last_error, None);
}

#[test]
fn expired_credentials_are_replaced_by_a_first_enrolment_not_a_renewal() {
    let p = pki("A");
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let leaf = p.leaf_at(&k, t0(), 10 * DAY);
    let mut m = machine(policy(&p));
    let a = cycle(&mut m, Some(cred(&p, leaf, "g1")), p.served(), t0() + 11 * DAY);
    assert_eq!(enrol_action(&a), (EnrolKind::Initial, Reason::Expired));
}

// ---- step 6: directives and changed profiles ------------------------------

#[test]
fn step_6_a_directive_renews_now_whatever_the_threshold() {
    let p = pki("A");
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let c = cred(&p, p.leaf_at(&k, t0(), 10 * DAY), "g1");
    let mut m = machine(policy(&p));
    cycle(&mut m, Some(c.clone()), p.served(), t0() + DAY);
    m.on(Event::Done, t0() + DAY);
    assert_eq!(
        m.on(Event::Directive(Directive::RenewNow), t0() + DAY),
        Action::LoadStores
    );
    assert_eq!(m.on(Event::Loaded(Some(c)), t0() + DAY), Action::FetchCaCerts);
    let a = m.on(Event::CaCerts(p.served()), t0() + DAY);
    assert_eq!(enrol_action(&a), (EnrolKind::Renew, Reason::Directive));
}

#[test]
fn step_6_a_changed_profile_re_enrols_and_the_new_policy_applies() {
    let p = pki("A");
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let c = cred(&p, p.leaf_at(&k, t0(), 10 * DAY), "g1");
    let mut m = machine(policy(&p));
    cycle(&mut m, Some(c.clone()), p.served(), t0() + DAY);
    let mut changed = policy(&p);
    changed.generation = "g2".into();
    assert_eq!(m.on(Event::ProfileChanged(changed), t0() + DAY), Action::LoadStores);
    assert_eq!(m.on(Event::Loaded(Some(c)), t0() + DAY), Action::FetchCaCerts);
    let a = m.on(Event::CaCerts(p.served()), t0() + DAY);
    assert_eq!(enrol_action(&a), (EnrolKind::Initial, Reason::ProfileChanged));
}

#[test]
fn step_6_moving_to_another_pki_re_enrols_against_it() {
    let old = pki("Old");
    let new = pki("New");
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let c = cred(&old, old.leaf_at(&k, t0(), 10 * DAY), "g1");
    let mut pol = policy(&new);
    pol.generation = "g1".into();
    let mut m = machine(pol);
    let a = cycle(&mut m, Some(c), new.served(), t0() + DAY);
    assert_eq!(enrol_action(&a), (EnrolKind::Initial, Reason::NewPki));
    let Action::Enrol { anchors, .. } = a else {
        unreachable!()
    };
    assert_eq!(anchors.anchor, new.root.certificate);
}

// ---- step 11: validate before replacing ----------------------------------

#[test]
fn step_11_failures_a_certificate_for_another_key_or_from_another_ca_is_never_installed() {
    let p = pki("A");
    let other = pki("A");
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let not_ours = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let cases = vec![
        (vec![p.leaf_at(&not_ours, t0(), DAY)], "no certificate for our key"),
        (vec![other.leaf_at(&k, t0(), DAY)], "not signed by the anchor"),
        (vec![p.leaf_at(&k, t0() - 10 * DAY, DAY)], "not valid now"),
    ];
    for (certs, why) in cases {
        let mut m = machine(policy(&p));
        cycle(&mut m, None, p.served(), t0());
        let a = m.on(
            Event::Issued {
                certificates: certs,
                public_key: k.public_key().clone(),
            },
            t0(),
        );
        let Action::Notify(Notice::Failed { error, .. }) = a else {
            panic!("{why}: {a:?}")
        };
        assert!(error.contains(why), "{error}");
        assert!(m.credential().is_none());
    }
}

#[test]
fn step_11_an_intermediate_sent_with_the_certificate_is_used_for_the_chain() {
    let p = pki("A");
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let mut m = machine(policy(&p));
    // Anchors served as the root alone; the issuing CA comes with the certificate.
    cycle(&mut m, None, vec![p.root.certificate.clone()], t0());
    let leaf = p.leaf_at(&k, t0(), DAY);
    let Action::Install { chain, .. } = complete(&mut m, vec![p.ica.certificate.clone(), leaf.clone()], &k, t0())
    else {
        unreachable!()
    };
    assert_eq!(chain, vec![leaf, p.ica.certificate.clone()]);
}

// ---- step 12: install failure --------------------------------------------

#[test]
fn step_12_failure_an_install_that_fails_keeps_the_old_credential() {
    let p = pki("A");
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let c = cred(&p, p.leaf_at(&k, t0(), 10 * DAY), "g1");
    let mut m = machine(policy(&p));
    cycle(&mut m, Some(c.clone()), p.served(), t0() + 6 * DAY);
    let k2 = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let a = m.on(
        Event::Issued {
            certificates: vec![p.leaf_at(&k2, t0() + 6 * DAY, 10 * DAY)],
            public_key: k2.public_key().clone(),
        },
        t0() + 6 * DAY,
    );
    assert!(matches!(a, Action::Install { .. }));
    let a = m.on(
        Event::Failed("/etc/app/cert.pem: No space left on device".into()),
        t0() + 6 * DAY,
    );
    assert!(matches!(a, Action::Notify(Notice::Failed { .. })));
    assert_eq!(m.credential(), Some(&c));
    assert!(!m.installed_any());
}

// ---- step 13: notification ------------------------------------------------

#[test]
fn step_13_a_failing_notification_hook_does_not_stop_the_cycle() {
    let p = pki("A");
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let mut m = machine(policy(&p));
    cycle(&mut m, None, p.served(), t0());
    m.on(
        Event::Issued {
            certificates: vec![p.leaf_at(&k, t0(), DAY)],
            public_key: k.public_key().clone(),
        },
        t0(),
    );
    assert!(matches!(m.on(Event::Done, t0()), Action::Notify(_)));
    assert_eq!(m.on(Event::Failed("hook exited with 1".into()), t0()), CLEAN);
}

// ---- step 14: clean-up ----------------------------------------------------

#[test]
fn step_14_every_cycle_ends_by_cleaning_and_a_failed_clean_still_waits() {
    let p = pki("A");
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let mut m = machine(policy(&p));
    let a = cycle(
        &mut m,
        Some(cred(&p, p.leaf_at(&k, t0(), 10 * DAY), "g1")),
        p.served(),
        t0(),
    );
    assert_eq!(a, CLEAN);
    assert!(matches!(
        m.on(Event::Failed("permission denied".into()), t0()),
        Action::Wait { .. }
    ));
}

// ---- steps 9–10: peers ----------------------------------------------------

#[test]
fn steps_9_and_10_peer_anchors_are_validated_against_their_own_pins_and_stored() {
    let p = pki("A");
    let peer = pki("Peer");
    let rogue = pki("Peer");
    let mut pol = policy(&p);
    pol.peer_anchors = vec![vec![peer.pin()], vec![peer.pin()]];
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let mut m = machine(pol);
    let a = cycle(
        &mut m,
        Some(cred(&p, p.leaf_at(&k, t0(), 10 * DAY), "g1")),
        p.served(),
        t0(),
    );
    assert_eq!(a, Action::FetchPeer { index: 0 });
    let a = m.on(Event::PeerCerts(peer.served()), t0());
    assert_eq!(
        a,
        Action::StorePeer {
            index: 0,
            certs: vec![peer.root.certificate.clone(), peer.ica.certificate.clone()]
        }
    );
    assert_eq!(m.on(Event::Done, t0()), Action::FetchPeer { index: 1 });
    // The second peer serves a look-alike: not stored, reported, the cycle goes on.
    assert_eq!(m.on(Event::PeerCerts(rogue.served()), t0()), CLEAN);
    assert!(m.status().last_error.unwrap().contains("peer 1"));
}

#[test]
fn steps_9_and_10_failure_an_unreachable_peer_is_reported_and_skipped() {
    let p = pki("A");
    let peer = pki("Peer");
    let mut pol = policy(&p);
    pol.peer_anchors = vec![vec![peer.pin()]];
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let mut m = machine(pol);
    cycle(
        &mut m,
        Some(cred(&p, p.leaf_at(&k, t0(), 10 * DAY), "g1")),
        p.served(),
        t0(),
    );
    assert_eq!(m.on(Event::Failed("cannot reach peer".into()), t0()), CLEAN);
}

// ---- step 8: revocation ----------------------------------------------------

fn revocation_policy(p: &Pki, mode: RevocationMode) -> Policy {
    Policy {
        revocation: mode,
        ..policy(p)
    }
}

#[test]
fn step_8_crl_a_good_certificate_is_kept_and_checked_again_after_the_interval() {
    let p = pki("A");
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let leaf = p.leaf_at(&k, t0(), 10 * DAY);
    let mut m = machine(revocation_policy(&p, RevocationMode::Crl));
    let a = cycle(&mut m, Some(cred(&p, leaf, "g1")), p.served(), t0());
    assert_eq!(a, Action::Fetch(Fetch::Crl { url: CRL_URL.into() }));
    assert_eq!(m.on(Event::Fetched(p.crl(&[], t0())), t0()), CLEAN);
    // The issuing CA names no CRL distribution point: said, not fatal.
    assert!(m.status().last_error.unwrap().contains("no CRL distribution point"));
    assert_eq!(
        m.on(Event::Done, t0()),
        Action::Wait {
            until: t0() + Duration::from_secs(3600)
        }
    );
    // Within the interval no check; after it, again.
    let held = m.credential().cloned();
    let a = cycle(&mut m, held, p.served(), t0() + Duration::from_secs(3600));
    assert!(matches!(a, Action::Fetch(Fetch::Crl { .. })), "{a:?}");
}

#[test]
fn step_8_crl_a_revoked_certificate_is_reported_and_re_enrolled() {
    let p = pki("A");
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let leaf = p.leaf_at(&k, t0(), 10 * DAY);
    let mut m = machine(revocation_policy(&p, RevocationMode::Crl));
    cycle(&mut m, Some(cred(&p, leaf.clone(), "g1")), p.served(), t0());
    let a = m.on(Event::Fetched(p.crl(&[&leaf], t0())), t0());
    assert_eq!(
        a,
        Action::Notify(Notice::Revoked {
            subject: "CN=device-1".into()
        })
    );
    let a = m.on(Event::Done, t0());
    assert_eq!(enrol_action(&a), (EnrolKind::Initial, Reason::Revoked));
}

#[test]
fn step_8_crl_failures_a_forged_or_stale_crl_revokes_nothing_and_is_retried_soon() {
    let p = pki("A");
    let forger = pki("A");
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let leaf = p.leaf_at(&k, t0(), 10 * DAY);
    for (crl, now) in [
        (forger.crl(&[&leaf], t0()), t0()),
        (p.crl(&[&leaf], t0()), t0() + 2 * DAY),
    ] {
        let mut m = machine(revocation_policy(&p, RevocationMode::Crl));
        let a = cycle(&mut m, Some(cred(&p, leaf.clone(), "g1")), p.served(), now);
        assert!(matches!(a, Action::Fetch(_)));
        assert_eq!(m.on(Event::Fetched(crl), now), CLEAN);
        assert!(m.status().last_error.unwrap().contains("rejected"));
        // Retried after retry_min, not after the full interval.
        assert_eq!(
            m.on(Event::Done, now),
            Action::Wait {
                until: now + Duration::from_secs(60)
            }
        );
    }
}

#[test]
fn step_8_failure_an_unreachable_distribution_point_keeps_the_credential() {
    let p = pki("A");
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let mut m = machine(revocation_policy(&p, RevocationMode::Crl));
    cycle(
        &mut m,
        Some(cred(&p, p.leaf_at(&k, t0(), 10 * DAY), "g1")),
        p.served(),
        t0(),
    );
    assert_eq!(m.on(Event::Failed("connection refused".into()), t0()), CLEAN);
    assert!(m.status().last_error.unwrap().contains("connection refused"));
    assert!(m.credential().is_some());
}

#[test]
fn step_8_ocsp_asks_the_responder_named_in_the_certificate_with_a_nonce() {
    let p = pki("A");
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let mut m = machine(revocation_policy(&p, RevocationMode::Both));
    let a = cycle(
        &mut m,
        Some(cred(&p, p.leaf_at(&k, t0(), 10 * DAY), "g1")),
        p.served(),
        t0(),
    );
    let Action::Fetch(Fetch::Ocsp { url, request }) = a else {
        panic!("{a:?}")
    };
    assert_eq!(url, OCSP_URL);
    assert!(!request.is_empty());
    // Then the CRL of the same certificate.
    assert_eq!(
        m.on(Event::Failed("down".into()), t0()),
        Action::Fetch(Fetch::Crl { url: CRL_URL.into() })
    );
}

// ---- robustness -------------------------------------------------------------

#[test]
fn an_event_the_state_does_not_expect_is_a_failure_not_a_panic() {
    let p = pki("A");
    let mut m = machine(policy(&p));
    assert_eq!(m.on(Event::Tick, t0()), Action::LoadStores);
    let a = m.on(Event::Fetched(vec![1, 2, 3]), t0());
    let Action::Notify(Notice::Failed { error, .. }) = a else {
        panic!("{a:?}")
    };
    assert!(error.starts_with("internal:"));
}

#[test]
fn step_7_a_certificate_issued_already_past_its_threshold_is_kept_without_an_enrolment_loop() {
    let p = pki("A");
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let mut m = machine(policy(&p));
    cycle(&mut m, None, p.served(), t0());
    // A CA that backdates: 60% of the lifetime is gone on arrival.
    let leaf = p.leaf_at(&k, t0() - 6 * DAY, 10 * DAY);
    let install = m.on(
        Event::Issued {
            certificates: vec![leaf.clone()],
            public_key: k.public_key().clone(),
        },
        t0(),
    );
    assert!(matches!(install, Action::Install { .. }));
    m.on(Event::Done, t0());
    m.on(Event::Done, t0());
    let Action::Wait { until } = m.on(Event::Done, t0()) else {
        panic!()
    };
    assert!(until >= t0() + Duration::from_secs(3600), "no renewal loop: {until:?}");
    assert!(m
        .status()
        .last_error
        .unwrap()
        .contains("already past the renewal threshold"));
    // An early tick does not enrol either.
    assert_eq!(
        m.on(Event::Tick, t0() + Duration::from_secs(10)),
        Action::Wait { until }
    );
    let held = m.credential().cloned();
    // After the hold, renewal is due again.
    let a = cycle(&mut m, held, p.served(), t0() + Duration::from_secs(3600));
    assert_eq!(enrol_action(&a), (EnrolKind::Renew, Reason::RenewalDue));
}

// ---- findings of the review: chain, staged keys, commit point, restarts ----

#[test]
fn step_8_a_credential_loaded_without_its_chain_is_checked_up_to_the_anchor() {
    // No chain file in the stores: the leaf alone is loaded.
    let p = pki("A");
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let leaf = p.leaf_at(&k, t0(), 10 * DAY);
    let alone = Credential {
        chain: vec![leaf.clone()],
        generation: Some("g1".into()),
    };
    let mut m = machine(revocation_policy(&p, RevocationMode::Crl));
    let a = cycle(&mut m, Some(alone), p.served(), t0());
    assert_eq!(a, Action::Fetch(Fetch::Crl { url: CRL_URL.into() }));
    assert_eq!(
        m.credential().unwrap().chain,
        vec![leaf.clone(), p.ica.certificate.clone()],
        "completed from the validated CA certificates"
    );
    // The leaf's CRL is checked against its real issuer, and the issuing
    // CA is checked too (here it names no distribution point: said).
    assert_eq!(m.on(Event::Fetched(p.crl(&[], t0())), t0()), CLEAN);
    let e = m.status().last_error.unwrap();
    assert!(
        e.contains("A Issuing") && e.contains("no CRL distribution point"),
        "{e}"
    );
    // Revoked by its issuer: noticed.
    let mut m = machine(revocation_policy(&p, RevocationMode::Crl));
    let alone = Credential {
        chain: vec![leaf.clone()],
        generation: Some("g1".into()),
    };
    cycle(&mut m, Some(alone), p.served(), t0());
    assert!(matches!(
        m.on(Event::Fetched(p.crl(&[&leaf], t0())), t0()),
        Action::Notify(Notice::Revoked { .. })
    ));
}

#[test]
fn step_14_the_staged_key_of_an_enrolment_under_way_is_kept_across_a_restart() {
    let p = pki("A");
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let c = cred(&p, p.leaf_at(&k, t0(), 10 * DAY), "g1");
    let now = t0() + DAY;
    let mut m = machine(policy(&p));
    assert_eq!(m.on(Event::Directive(Directive::RenewNow), now), Action::LoadStores);
    assert_eq!(m.on(Event::Loaded(Some(c.clone())), now), Action::FetchCaCerts);
    let a = m.on(Event::CaCerts(p.served()), now);
    assert_eq!(enrol_action(&a), (EnrolKind::Renew, Reason::Directive));
    // The CA holds the request (PENDING) beyond the polling window.
    let a = m.on(
        Event::Failed("still pending after 3600s and 120 polls (window exceeded)".into()),
        now,
    );
    assert!(matches!(a, Action::Notify(Notice::Failed { .. })));
    assert!(matches!(m.on(Event::Done, now), Action::Wait { .. }));
    let saved = m.saved();
    assert!(saved.directive, "the directive stands until carried out");
    assert_eq!(saved.enrolling, Some(Reason::Directive));

    // A restart (the directive file is gone by now) resumes the directive,
    // so the request is polled again with the staged key.
    let later = now + Duration::from_secs(600);
    let mut m = machine(policy(&p));
    m.restore(saved.clone(), later);
    let a = cycle(&mut m, Some(c.clone()), p.served(), later);
    assert_eq!(enrol_action(&a), (EnrolKind::Renew, Reason::Directive));

    // Whatever makes a cycle skip enrolment meanwhile, its clean-up keeps
    // the staged key while that enrolment has not been installed.
    let mut m = machine(policy(&p));
    m.restore(
        Saved {
            directive: false,
            ..saved
        },
        later,
    );
    assert_eq!(
        cycle(&mut m, Some(c), p.served(), later),
        Action::Clean { keep_staged: true }
    );
    // Once a certificate is installed, the staged key is spent.
    let mut m = machine(policy(&p));
    m.on(Event::Directive(Directive::RenewNow), later);
    m.on(Event::Loaded(None), later);
    m.on(Event::CaCerts(p.served()), later);
    let k2 = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    complete(&mut m, vec![p.leaf_at(&k2, later, 10 * DAY)], &k2, later);
    assert_eq!(m.saved().enrolling, None);
    assert!(!m.saved().directive);
}

#[test]
fn step_12_an_error_after_the_commit_point_is_a_warning_not_a_failed_install() {
    let p = pki("A");
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let c = cred(&p, p.leaf_at(&k, t0(), 10 * DAY), "g1");
    let now = t0() + 6 * DAY;
    let mut m = machine(policy(&p));
    cycle(&mut m, Some(c), p.served(), now);
    let k2 = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let new = p.leaf_at(&k2, now, 10 * DAY);
    let a = m.on(
        Event::Issued {
            certificates: vec![new.clone()],
            public_key: k2.public_key().clone(),
        },
        now,
    );
    assert!(matches!(a, Action::Install { .. }));
    let warning = "installed, but /state/install.journal: Input/output error".to_string();
    let a = m.on(Event::DoneWithWarning(warning.clone()), now);
    assert!(matches!(a, Action::Notify(Notice::Installed { .. })), "{a:?}");
    assert!(m.installed_any());
    assert_eq!(m.credential().unwrap().chain.first(), Some(&new));
    let s = m.status();
    assert_eq!((s.failures, s.last_error), (0, Some(warning)));
    // A failing hook is a warning too; then no enrolment again: idle
    // (a day at most, the renewal much later).
    assert_eq!(m.on(Event::Failed("hook exited with 1".into()), now), CLEAN);
    assert!(m.status().last_error.unwrap().contains("notification failed"));
    assert_eq!(m.on(Event::Done, now), Action::Wait { until: now + DAY });
    assert_eq!(m.status().renew_at, Some(now + 5 * DAY));
}

#[test]
fn step_7_the_renewal_hold_and_the_back_off_survive_a_restart() {
    let p = pki("A");
    // A certificate that arrives past its threshold is held from renewal…
    let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
    let mut m = machine(policy(&p));
    cycle(&mut m, None, p.served(), t0());
    let leaf = p.leaf_at(&k, t0() - 6 * DAY, 10 * DAY);
    complete(&mut m, vec![leaf.clone()], &k, t0());
    let saved = m.saved();
    assert_eq!(saved.hold_renewal_until, Some(t0() + Duration::from_secs(3600)));
    // … and a restart ten seconds later does not renew at once.
    let soon = t0() + Duration::from_secs(10);
    let mut m = machine(policy(&p));
    m.restore(saved, soon);
    assert_eq!(
        cycle(&mut m, Some(cred(&p, leaf.clone(), "g1")), p.served(), soon),
        CLEAN
    );
    assert_eq!(
        m.on(Event::Done, soon),
        Action::Wait {
            until: t0() + Duration::from_secs(3600)
        }
    );
    // (Without what was saved, it would have.)
    let mut m = machine(policy(&p));
    let a = cycle(&mut m, Some(cred(&p, leaf.clone(), "g1")), p.served(), soon);
    assert_eq!(enrol_action(&a).1, Reason::RenewalDue);

    // A back-off: two failures, then a restart in the middle of the wait.
    let mut m = machine(policy(&p));
    let now = t0() + 6 * DAY;
    let c = cred(&p, p.leaf_at(&k, t0(), 10 * DAY), "g1");
    cycle(&mut m, Some(c.clone()), p.served(), now);
    m.on(Event::Failed("connection refused".into()), now);
    let Action::Wait { until } = m.on(Event::Done, now) else {
        panic!()
    };
    cycle(&mut m, Some(c.clone()), p.served(), until);
    let Action::Wait { until } = m.on(Event::Failed("connection refused".into()), until) else {
        panic!()
    };
    let saved = m.saved();
    assert_eq!((saved.retry_at, saved.failures), (Some(until), 2));
    let mid = until - Duration::from_secs(30);
    let mut m = machine(policy(&p));
    m.restore(saved.clone(), mid);
    assert_eq!(m.on(Event::Tick, mid), Action::Wait { until });
    assert_eq!(m.status().phase, "retrying");
    // When it ends, the next failure backs off further and is not notified again.
    cycle(&mut m, Some(c.clone()), p.served(), until);
    let Action::Wait { until: next } = m.on(Event::Failed("connection refused".into()), until) else {
        panic!("the run of failures was notified before the restart")
    };
    let d = next.duration_since(until).unwrap();
    assert!(d >= Duration::from_secs(240) && d <= Duration::from_secs(264), "{d:?}");

    // A back-off saved under another generation (the profile changed while
    // the agent was stopped) is dropped; one from a clock far ahead is capped.
    let mut changed = policy(&p);
    changed.generation = "g2".into();
    let mut m = machine(changed);
    m.restore(saved.clone(), mid);
    assert_eq!(m.on(Event::Tick, mid), Action::LoadStores);
    let mut m = machine(policy(&p));
    m.restore(
        Saved {
            retry_at: Some(mid + 3650 * DAY),
            ..saved
        },
        mid,
    );
    let Action::Wait { until } = m.on(Event::Tick, mid) else {
        panic!()
    };
    assert!(until <= mid + Duration::from_secs(3600 + 361), "{until:?}");
}

// ---- the driver against real files (no network) ----------------------------

mod driver {
    use super::*;
    use crate::agent::driver::{run_once, Driver, Outcome};
    use crate::agent::profile::Profile;
    use crate::agent::store;
    use std::path::{Path, PathBuf};

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("enrolkit-driver-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A SCEP profile whose server is not there (port 9), writing under `dir/out`.
    fn driver(dir: &Path, outputs: &str) -> Driver {
        let text = format!(
            r#"
name = "dev"
protocol = "scep"
url = "http://127.0.0.1:9/scep"
[trust]
anchors = ["{}"]
[subject]
cn = "device-1"
[auth]
challenge = "secret"
[revocation]
check = "none"
[output]
certificate = "{d}/out/cert.pem"
key = "{d}/out/key.pem"
{outputs}
"#,
            "ab".repeat(32),
            d = dir.display()
        );
        let profile = Profile::from_toml(&text, "test.toml").unwrap();
        let mut d = Driver::new(profile, &dir.join("state")).unwrap();
        d.log = Box::new(|_| {});
        d
    }

    /// Stage a key as an enrolment would, and have `p` certify it.
    fn staged(d: &Driver, p: &Pki, at: SystemTime) -> (SoftwareKey, Certificate) {
        let k = SoftwareKey::generate(KeySpec::EcP256).unwrap();
        enrolkit_files::write_private(&d.dir.join("next-key.pem"), k.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
        let leaf = p.leaf_at(&k, at, 10 * DAY);
        (k, leaf)
    }

    fn install(d: &mut Driver, p: &Pki, leaf: &Certificate) -> Event {
        d.execute(
            &Action::Install {
                chain: vec![leaf.clone(), p.ica.certificate.clone()],
                anchor: p.root.certificate.clone(),
                generation: "g1".into(),
            },
            t0(),
        )
    }

    fn loaded(d: &mut Driver) -> Option<Credential> {
        match d.execute(&Action::LoadStores, t0()) {
            Event::Loaded(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn step_8_the_chain_is_kept_in_the_state_directory_whatever_the_outputs() {
        let dir = tmp("chain");
        let p = pki("A");
        let mut d = driver(&dir, "");
        let (_, leaf) = staged(&d, &p, t0());
        assert_eq!(install(&mut d, &p, &leaf), Event::Done);
        let c = loaded(&mut d).unwrap();
        assert_eq!(c.chain, vec![leaf, p.ica.certificate.clone()]);
        assert_eq!(c.generation.as_deref(), Some("g1"));
    }

    #[test]
    fn step_12_a_committed_install_that_cannot_be_completed_puts_the_whole_previous_credential_back() {
        let dir = tmp("undo");
        let p = pki("A");
        let outputs = format!(
            "chain = \"{0}/out/chain.pem\"\ntrust_anchor = \"{0}/out/ca.pem\"",
            dir.display()
        );
        let mut d = driver(&dir, &outputs);
        let (_, first) = staged(&d, &p, t0());
        assert_eq!(install(&mut d, &p, &first), Event::Done);
        let files = [
            "out/cert.pem",
            "out/key.pem",
            "out/chain.pem",
            "out/ca.pem",
            "state/dev/credential.toml",
        ];
        let before: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(dir.join(f)).unwrap()).collect();
        // The next install commits, then cannot rename (and neither can the
        // immediate retry): the stores hold the old files and the staged new ones.
        let (_, second) = staged(&d, &p, t0());
        store::FAULT.with(|f| f.set(Some("rename")));
        let e = install(&mut d, &p, &second);
        store::FAULT.with(|f| f.set(None));
        let Event::DoneWithWarning(w) = e else { panic!("{e:?}") };
        assert!(w.contains("next start completes the install"), "{w}");
        assert!(dir.join("state/dev/install.journal").exists());
        // Before the next start, the staged certificate is damaged.
        std::fs::write(dir.join("out/.cert.pem.enrol-new"), "damaged").unwrap();
        let c = loaded(&mut d).unwrap();
        assert_eq!(c.chain.first(), Some(&first), "the previous credential");
        for (f, b) in files.iter().zip(&before) {
            assert_eq!(&std::fs::read(dir.join(f)).unwrap(), b, "{f} is the previous one");
        }
        assert!(!dir.join("state/dev/install.journal").exists());
    }

    #[test]
    fn step_12_an_error_after_the_commit_point_is_reported_as_installed_with_a_warning() {
        let dir = tmp("after");
        let p = pki("A");
        let mut d = driver(&dir, "");
        let (_, first) = staged(&d, &p, t0());
        assert_eq!(install(&mut d, &p, &first), Event::Done);
        let (_, second) = staged(&d, &p, t0());
        store::FAULT.with(|f| f.set(Some("remove-journal")));
        let e = install(&mut d, &p, &second);
        store::FAULT.with(|f| f.set(None));
        let Event::DoneWithWarning(w) = e else { panic!("{e:?}") };
        assert!(w.starts_with("installed, but") && w.contains("injected"), "{w}");
        assert_eq!(loaded(&mut d).unwrap().chain.first(), Some(&second));
        assert!(!dir.join("state/dev/next-key.pem").exists());
    }

    #[test]
    fn step_14_clean_keeps_a_staged_key_an_enrolment_waits_on() {
        let dir = tmp("clean");
        let p = pki("A");
        let mut d = driver(&dir, "");
        let next = dir.join("state/dev/next-key.pem");
        staged(&d, &p, t0());
        assert_eq!(d.execute(&Action::Clean { keep_staged: true }, t0()), Event::Done);
        assert!(next.exists(), "a PENDING request may be waiting on it");
        assert_eq!(d.execute(&Action::Clean { keep_staged: false }, t0()), Event::Done);
        assert!(!next.exists());
        // A staged key that is the installed one is spent, whatever the flag.
        let (k, leaf) = staged(&d, &p, t0());
        assert_eq!(install(&mut d, &p, &leaf), Event::Done);
        enrolkit_files::write_private(&next, k.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
        assert_eq!(d.execute(&Action::Clean { keep_staged: true }, t0()), Event::Done);
        assert!(!next.exists());
    }

    #[test]
    fn step_6_a_directive_is_kept_until_carried_out_even_when_the_run_fails() {
        let dir = tmp("directive");
        let mut d = driver(&dir, "");
        std::fs::write(d.directive_path(), "renew\n").unwrap();
        let (outcome, _) = run_once(&mut d, [1; 32]);
        assert_eq!(outcome, Outcome::FailedWithout, "nothing listens on port 9");
        assert!(!d.directive_path().exists(), "the file is taken in");
        let saved = d.load_saved();
        assert!(saved.directive, "and the directive kept: {saved:?}");
        assert_eq!(saved.failures, 1);
        // The next run still has it.
        run_once(&mut d, [2; 32]);
        assert!(d.load_saved().directive);
        assert_eq!(d.load_saved().failures, 2);
    }

    #[test]
    fn the_saved_schedule_round_trips_and_a_damaged_one_is_ignored() {
        let dir = tmp("saved");
        let mut d = driver(&dir, "");
        let s = Saved {
            generation: "g1".into(),
            failures: 3,
            failure_notified: true,
            retry_at: Some(t0() + DAY),
            hold_renewal_until: Some(t0() + 2 * DAY),
            directive: true,
            enrolling: Some(Reason::Directive),
            alerted: Some("no CA certificate matches \"x\"".into()),
        };
        d.store_saved(&s);
        assert_eq!(d.load_saved(), s);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.saved_path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        for junk in [
            "",
            "\u{0}\u{1}",
            "failures = -4\nretry_at = \"soon\"\nenrolling = \"Why\"",
            "[[x",
        ] {
            std::fs::write(d.saved_path(), junk).unwrap();
            let got = d.load_saved();
            assert_eq!((got.failures, got.retry_at, got.enrolling), (0, None, None), "{junk:?}");
        }
    }
}
