//! The egress guard against a real local server (the web-site stand-in): refused by default —
//! by address literal, by host name, before any connection — allowed when configured, and still
//! refused for metadata addresses, non-HTTP schemes, redirect loops and oversized bodies.

#![allow(clippy::unwrap_used)]

mod common;

use common::standins::site;
use dovie::config::EgressConfig;
use dovie::egress::{Egress, EgressError};

fn egress(allow_private: bool, max_body_bytes: u64) -> Egress {
    Egress::new(&EgressConfig {
        allow_private_addresses: allow_private,
        max_body_bytes,
        ..EgressConfig::default()
    })
    .unwrap()
}

fn refused<T: std::fmt::Debug>(r: Result<T, EgressError>) -> String {
    match r {
        Err(EgressError::Refused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[actix_rt::test]
async fn loopback_is_refused_by_default_and_never_reached() {
    let site = site::start();
    let guard = egress(false, 1024 * 1024);
    refused(guard.get(&site.url("/page")).await);
    let by_name = format!("http://localhost:{}/page", site.port);
    refused(guard.get(&by_name).await);
    let mapped = format!("http://[::ffff:127.0.0.1]:{}/page", site.port);
    refused(guard.get(&mapped).await);
    assert!(site.log.requests().is_empty(), "the guard connected anyway");
}

#[actix_rt::test]
async fn allowed_when_configured_and_capped() {
    let site = site::start();
    let guard = egress(true, 64 * 1024);
    let res = guard.get(&site.url("/page")).await.unwrap();
    assert_eq!(res.status(), 200);
    let body = guard.body(res).await.unwrap();
    assert_eq!(&body[..], site::PAGE.as_bytes());
    let seen = site.log.requests();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].header("user-agent").unwrap().starts_with("Dovie/"));
    // A body past the cap is refused, not read whole.
    let res = guard.get(&site.url("/big")).await.unwrap();
    assert_eq!(guard.body(res).await.unwrap_err(), EgressError::TooLarge);
}

#[actix_rt::test]
async fn redirects_are_checked_again() {
    let site = site::start();
    let guard = egress(true, 1024 * 1024);
    // To a metadata address: refused even with private addresses allowed.
    let to_metadata = site.url("/redirect?to=http%3A%2F%2F169.254.169.254%2Flatest%2Fmeta-data");
    let why = refused(guard.get(&to_metadata).await);
    assert!(why.contains("169.254.169.254"), "{why}");
    // To another scheme: never followed (the redirect itself is the answer).
    let res = guard
        .get(&site.url("/redirect?to=file%3A%2F%2F%2Fetc%2Fpasswd"))
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    // Round and round: stopped after the configured number of redirects.
    let why = refused(guard.get(&site.url("/loop")).await);
    assert!(why.contains("redirects"), "{why}");
    let loops = site
        .log
        .requests()
        .iter()
        .filter(|r| r.path == "/loop")
        .count();
    assert_eq!(loops, EgressConfig::default().max_redirects + 1);
    // Followed to an allowed place.
    let res = guard.get(&site.url("/redirect?to=%2Fpage")).await.unwrap();
    assert_eq!(res.status(), 200);
}

#[actix_rt::test]
async fn private_and_metadata_literals_are_refused_without_a_connection() {
    let site = site::start();
    let strict = egress(false, 1024 * 1024);
    refused(strict.get("http://10.0.0.1/").await);
    refused(strict.get("http://169.254.169.254/").await);
    refused(strict.get("http://[fe80::1]/").await);
    refused(strict.get("gopher://example.com/").await);
    assert!(site.log.requests().is_empty());
}
