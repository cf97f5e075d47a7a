//! Chains built by the operator, verified with webpki (the verifier rustls uses) against
//! the trust bundle, before, during and after a CA rotation.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use webpki::{ALL_VERIFICATION_ALGS, EndEntityCert, KeyUsage, anchor_from_trusted_cert};

use super::*;

const DAY: SignedDuration = SignedDuration::from_hours(24);

fn now() -> Timestamp {
    "2026-11-22T12:00:00Z".parse().unwrap()
}

fn der(pem: &str) -> CertificateDer<'static> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    CertificateDer::from(p.contents)
}

/// A CA generation: root and intermediate.
struct Ca {
    root: Issued,
    intermediate: Issued,
}

fn ca(ns: &str, at: Timestamp) -> Ca {
    let root = root_ca("bot root", at, DAY * 3650).unwrap();
    let intermediate = intermediate_ca(
        &Signer::of(&root).unwrap(),
        "bot intermediate",
        &permitted_dns(ns),
        at,
        DAY * 365,
    )
    .unwrap();
    Ca { root, intermediate }
}

fn serving(ca: &Ca, name: &str, ns: &str, at: Timestamp) -> Issued {
    serving_leaf(
        &Signer::of(&ca.intermediate).unwrap(),
        &service_dns_names(name, ns),
        at,
        DAY * 90,
    )
    .unwrap()
}

/// Verifies `leaf` (with `intermediate` as its chain) for `host` against `bundle` at `at`.
fn verify(
    leaf: &Issued,
    intermediate: &Issued,
    bundle: &[&Issued],
    host: &str,
    at: Timestamp,
) -> Result<(), String> {
    let roots: Vec<CertificateDer<'static>> = bundle.iter().map(|c| der(&c.cert_pem)).collect();
    let anchors: Vec<_> = roots
        .iter()
        .map(|r| anchor_from_trusted_cert(r).unwrap().to_owned())
        .collect();
    let leaf_der = der(&leaf.cert_pem);
    let ee = EndEntityCert::try_from(&leaf_der).map_err(|e| e.to_string())?;
    let chain = [der(&intermediate.cert_pem)];
    let time = UnixTime::since_unix_epoch(Duration::from_secs(at.as_second() as u64));
    ee.verify_for_usage(
        ALL_VERIFICATION_ALGS,
        &anchors,
        &chain,
        time,
        KeyUsage::server_auth(),
        None,
        None,
    )
    .map_err(|e| e.to_string())?;
    ee.verify_is_valid_for_subject_name(&ServerName::try_from(host.to_owned()).unwrap())
        .map_err(|e| e.to_string())
}

#[test]
fn a_leaf_verifies_against_the_bundle_and_its_name() {
    let ca = ca("bots", now());
    let leaf = serving(&ca, "support-bot", "bots", now());
    verify(
        &leaf,
        &ca.intermediate,
        &[&ca.root],
        "support-bot.bots.svc",
        now(),
    )
    .unwrap();
    assert!(
        verify(
            &leaf,
            &ca.intermediate,
            &[&ca.root],
            "evil.example.com",
            now()
        )
        .is_err()
    );
    let later = now().checked_add(DAY * 91).unwrap();
    assert!(
        verify(
            &leaf,
            &ca.intermediate,
            &[&ca.root],
            "support-bot.bots.svc",
            later
        )
        .is_err(),
        "expired"
    );
}

#[test]
fn the_intermediate_cannot_sign_outside_its_namespace() {
    let ca = ca("bots", now());
    let stray = serving(&ca, "bank", "payments", now());
    let err = verify(
        &stray,
        &ca.intermediate,
        &[&ca.root],
        "bank.payments.svc",
        now(),
    )
    .unwrap_err();
    assert!(err.to_lowercase().contains("name"), "{err}");
}

#[test]
fn leaves_keep_verifying_through_a_ca_rotation() {
    let t0 = now();
    let old = ca("bots", t0);
    let old_leaf = serving(&old, "bot", "bots", t0);
    let host = "bot.bots.svc";

    // Before: one root.
    verify(&old_leaf, &old.intermediate, &[&old.root], host, t0).unwrap();

    // Step 1, add: the new root joins the bundle; nothing is issued under it yet.
    let t1 = t0
        .checked_add(DAY * 2400)
        .unwrap()
        .checked_sub(DAY * 2330)
        .unwrap();
    let new = ca("bots", t1);
    let bundle = [&old.root, &new.root];
    verify(&old_leaf, &old.intermediate, &bundle, host, t1).unwrap();

    // Step 2, activate: leaves are re-issued under the new CA; during the overlap both the
    // old leaf (still held by a pod that has not reloaded) and the new one verify.
    let new_leaf = serving(&new, "bot", "bots", t1);
    verify(&old_leaf, &old.intermediate, &bundle, host, t1).unwrap();
    verify(&new_leaf, &new.intermediate, &bundle, host, t1).unwrap();

    // Step 3, retire: the old root leaves the bundle; new leaves verify, old ones do not.
    let t2 = t1.checked_add(DAY).unwrap();
    verify(&new_leaf, &new.intermediate, &[&new.root], host, t2).unwrap();
    assert!(verify(&old_leaf, &old.intermediate, &[&new.root], host, t2).is_err());
}

#[test]
fn an_intermediate_renewed_under_the_same_root_needs_no_trust_change() {
    let ca1 = ca("bots", now());
    let renewed = intermediate_ca(
        &Signer::of(&ca1.root).unwrap(),
        "bot intermediate 2",
        &permitted_dns("bots"),
        now(),
        DAY * 365,
    )
    .unwrap();
    let old_leaf = serving(&ca1, "bot", "bots", now());
    let new_leaf = serving_leaf(
        &Signer::of(&renewed).unwrap(),
        &service_dns_names("bot", "bots"),
        now(),
        DAY * 90,
    )
    .unwrap();
    verify(
        &old_leaf,
        &ca1.intermediate,
        &[&ca1.root],
        "bot.bots.svc",
        now(),
    )
    .unwrap();
    verify(&new_leaf, &renewed, &[&ca1.root], "bot.bots.svc", now()).unwrap();
}

#[test]
fn client_certificates_carry_the_database_user() {
    let ca = ca("bots", now());
    let c = client_leaf(
        &Signer::of(&ca.intermediate).unwrap(),
        "bot_app",
        now(),
        DAY * 90,
    )
    .unwrap();
    assert!(c.info.subject.contains("CN=bot_app"), "{}", c.info.subject);
    assert_eq!(c.info.issuer, ca.intermediate.info.subject);
}

#[test]
fn renewal_falls_at_two_thirds_with_a_little_jitter() {
    let ca = ca("bots", now());
    let leaf = serving(&ca, "bot", "bots", now());
    let life = leaf.info.not_after.duration_since(leaf.info.not_before);
    let at = leaf.info.renew_at(66, 0);
    assert_eq!(
        at.duration_since(leaf.info.not_before).as_secs(),
        life.as_secs() * 66 / 100
    );
    let jittered = leaf.info.renew_at(66, 255);
    assert!(jittered < at && at.duration_since(jittered).as_secs() <= life.as_secs() / 100);
}

#[test]
fn keys_never_show_in_debug_output() {
    let ca = ca("bots", now());
    let text = format!("{:?}", ca.root);
    assert!(!text.contains("PRIVATE KEY"), "{text}");
}
