//! The certificate plan driven by a clock: first issuance, renewal, and a forced CA
//! rotation step by step, with the bot's chain verified by webpki against the trust
//! bundle at every step (old leaves too, during the overlap), and crashes between the
//! writes of one plan.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Secret;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use webpki::{ALL_VERIFICATION_ALGS, EndEntityCert, KeyUsage, anchor_from_trusted_cert};

use super::*;
use crate::fixtures::mk_gb;
use crate::rotation::triggers::FORCE_ANNOTATION;

fn start() -> Timestamp {
    "2026-11-22T12:00:00Z".parse().unwrap()
}

fn policy() -> CertPolicy {
    CertPolicy::of(&mk_gb("bot"), SignedDuration::from_secs(120))
}

/// Applies writes as the API server would store them.
fn store(secrets: &mut CertSecrets, writes: &Writes, upto: usize) {
    for w in writes.iter().take(upto) {
        let mut s = Secret::default();
        s.metadata.name = Some(w.name.clone());
        s.metadata.annotations = Some(w.annotations.clone());
        s.data = Some(w.data.clone());
        let slot = if w.name.ends_with("-ca-root") {
            &mut secrets.root
        } else if w.name.ends_with("-ca") {
            &mut secrets.ca
        } else {
            &mut secrets.tls
        };
        *slot = Some(s);
    }
}

fn text(s: &Option<Secret>, key: &str) -> String {
    file(s, key).unwrap()
}

fn pems(bundle: &str) -> Vec<CertificateDer<'static>> {
    x509_parser::pem::Pem::iter_from_buffer(bundle.as_bytes())
        .map(|p| CertificateDer::from(p.unwrap().contents))
        .collect()
}

/// The bot's serving chain (as mounted: leaf then intermediate) verified against `bundle`.
fn verify(chain_pem: &str, bundle_pem: &str, at: Timestamp) -> Result<(), String> {
    let chain = pems(chain_pem);
    let roots = pems(bundle_pem);
    let anchors: Vec<_> = roots
        .iter()
        .map(|r| anchor_from_trusted_cert(r).unwrap().to_owned())
        .collect();
    let ee = EndEntityCert::try_from(&chain[0]).map_err(|e| e.to_string())?;
    let time = UnixTime::since_unix_epoch(Duration::from_secs(at.as_second() as u64));
    ee.verify_for_usage(
        ALL_VERIFICATION_ALGS,
        &anchors,
        &chain[1..],
        time,
        KeyUsage::server_auth(),
        None,
        None,
    )
    .map_err(|e| e.to_string())?;
    ee.verify_is_valid_for_subject_name(&ServerName::try_from("bot.bots.svc").unwrap())
        .map_err(|e| e.to_string())
}

fn converge(gb: &GeneralBot, secrets: &mut CertSecrets, now: Timestamp) -> CertPlan {
    let plan = plan(gb, secrets, &policy(), now, true).unwrap();
    store(secrets, &plan.writes, usize::MAX);
    plan
}

#[test]
fn first_issuance_builds_a_verifying_chain_and_then_rests() {
    let gb = mk_gb("bot");
    let mut s = CertSecrets::default();
    assert!(needs_work(&gb, &s, start()));
    let p = converge(&gb, &mut s, start());
    assert_eq!(p.writes.len(), 3, "root, intermediate, leaves");
    verify(&text(&s.tls, "tls.crt"), &text(&s.tls, "ca.crt"), start()).unwrap();
    assert!(!needs_work(&gb, &s, start()), "nothing to do once issued");
    let again = plan(&gb, &s, &policy(), start(), true).unwrap();
    assert!(again.writes.is_empty(), "{:?}", again.done);
    let st = status(&gb, &s);
    assert_eq!(
        st.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["root", "intermediate", "serving"]
    );
    let root_key = text(&s.root, "tls.key");
    assert!(!text(&s.ca, "tls.crt").is_empty());
    assert!(
        file(&s.ca, "tls.key").unwrap() != root_key,
        "the root key stays in its own Secret"
    );
    assert!(!format!("{p:?}").contains("PRIVATE KEY"));
}

#[test]
fn leaves_renew_at_two_thirds_of_their_life() {
    let gb = mk_gb("bot");
    let mut s = CertSecrets::default();
    converge(&gb, &mut s, start());
    let serial = annotation(&s.tls, SERIAL);
    let day = SignedDuration::from_hours(24);
    let before = start().checked_add(day * 58).unwrap();
    assert!(!needs_work(&gb, &s, before));
    let after = start().checked_add(day * 60).unwrap();
    assert!(needs_work(&gb, &s, after));
    converge(&gb, &mut s, after);
    assert_ne!(annotation(&s.tls, SERIAL), serial);
    verify(&text(&s.tls, "tls.crt"), &text(&s.tls, "ca.crt"), after).unwrap();
}

#[test]
fn a_forced_ca_rotation_never_breaks_the_chain() {
    let mut gb = mk_gb("bot");
    let mut s = CertSecrets::default();
    let mut now = start();
    converge(&gb, &mut s, now);
    let old_chain = text(&s.tls, "tls.crt");
    let old_root = annotation(&s.root, SERIAL);

    gb.metadata.annotations = Some(BTreeMap::from([(
        FORCE_ANNOTATION.to_owned(),
        "ca@1".to_owned(),
    )]));
    let mut steps = Vec::new();
    for _ in 0..20 {
        if !needs_work(&gb, &s, now) {
            break;
        }
        let p = converge(&gb, &mut s, now);
        steps.extend(p.done);
        // Every pod holds either the old leaf or the current one; both must verify
        // against the bundle it mounts, until the old root is retired.
        let bundle = text(&s.tls, "ca.crt");
        verify(&text(&s.tls, "tls.crt"), &bundle, now).unwrap();
        let retired = steps.iter().any(|d| d.contains("retired"));
        if !retired {
            verify(&old_chain, &bundle, now).unwrap();
        }
        now = now.checked_add(SignedDuration::from_secs(150)).unwrap();
    }
    let text_steps = steps.join("\n");
    for expected in [
        "added root",
        "now signs",
        "issued intermediate",
        "issued serving",
        "retired the previous root",
    ] {
        assert!(
            text_steps.contains(expected),
            "missing {expected:?} in:\n{text_steps}"
        );
    }
    assert_ne!(annotation(&s.root, SERIAL), old_root);
    assert!(
        verify(&old_chain, &text(&s.tls, "ca.crt"), now).is_err(),
        "the old root is gone"
    );
    assert!(
        !needs_work(&gb, &s, now),
        "the same force value is honoured once"
    );
}

#[test]
fn a_crash_between_the_writes_of_one_plan_converges() {
    let gb = mk_gb("bot");
    for upto in 0..3 {
        let mut s = CertSecrets::default();
        let p = plan(&gb, &s, &policy(), start(), true).unwrap();
        store(&mut s, &p.writes, upto); // the process died after `upto` writes
        converge(&gb, &mut s, start());
        verify(&text(&s.tls, "tls.crt"), &text(&s.tls, "ca.crt"), start()).unwrap();
        assert!(
            !needs_work(&gb, &s, start()),
            "after a crash at write {upto}"
        );
    }
}
