//! Hostile clients get bounded resources and clear answers; accepted arrivals
//! are never lost to them.

use std::time::{Duration, Instant};

use payhook::{app::Role, config::SourceConfig};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::harness::{metric, source, stripe_payment_intent, TestApp, STRIPE_SECRET};

fn addr(base: &str) -> String {
    base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (or `limit` passes).
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            _ => {}
        }
    }
    false
}

#[tokio::test]
async fn a_slowloris_client_is_cut_off_and_does_not_starve_others() {
    let app = TestApp::spawn_with(Role::Ingress, |c| c.server.header_read_timeout_ms = 500).await;
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(addr(&app.base)).await.unwrap();
        stream.write_all(b"POST /webhooks/stripe HTTP/1.1\r\nHost: payhook\r\nX-Slow: ").await.unwrap();
        slow.push(stream);
    }
    // While fifty connections trickle their headers, a real delivery goes through.
    let body = serde_json::to_vec(&stripe_payment_intent("evt_l", "pi_l", 100, "eur")).unwrap();
    assert_eq!(app.post_stripe(&body).await.status(), 200);
    let started = Instant::now();
    for stream in &mut slow {
        stream.write_all(b"a").await.ok();
    }
    for stream in &mut slow {
        assert!(closed_within(stream, Duration::from_secs(3)).await, "a slow head is cut off");
    }
    assert!(started.elapsed() < Duration::from_secs(4));
    // A connection that never sends anything is closed too.
    let mut idle = TcpStream::connect(addr(&app.base)).await.unwrap();
    assert!(closed_within(&mut idle, Duration::from_secs(3)).await, "an idle connection is cut off");
    // So is a kept-alive one that goes quiet after its request.
    let mut kept = TcpStream::connect(addr(&app.base)).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: payhook\r\n\r\n").await.unwrap();
    let mut first = [0u8; 12];
    kept.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    assert!(closed_within(&mut kept, Duration::from_secs(3)).await, "a quiet kept-alive connection is cut off");
}

#[tokio::test]
async fn oversized_or_overfull_heads_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn_with(Role::Ingress, |c| c.server.max_headers = 16).await;
    let body = serde_json::to_vec(&stripe_payment_intent("evt_h", "pi_h", 100, "eur")).unwrap();
    let mut many = app.http.post(format!("{}/webhooks/stripe", app.base)).body(body.clone());
    for i in 0..40 {
        many = many.header(format!("x-filler-{i}"), "1");
    }
    let status = many.send().await.map(|r| r.status().as_u16()).unwrap_or(0);
    assert!(status == 431 || status == 0, "too many headers: {status}");
    let huge = app.http.post(format!("{}/webhooks/stripe", app.base)).header("x-big", "a".repeat(64 * 1024)).body(body);
    let status = huge.send().await.map(|r| r.status().as_u16()).unwrap_or(0);
    assert!(status == 431 || status == 0, "a 64 KiB header: {status}");
    assert!(app.entries("payhook:arrivals").await.is_empty());
}

#[tokio::test]
async fn a_flood_beyond_the_concurrency_limit_is_shed_with_503_and_every_200_is_stored() {
    let app = TestApp::spawn_with(Role::Ingress, |c| {
        c.server.max_concurrent_requests = 4;
        c.server.request_timeout_ms = 2_000;
    })
    .await;
    // Four requests hold every slot by sending their bodies slowly.
    let mut holders = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(addr(&app.base)).await.unwrap();
        let head = "POST /webhooks/stripe HTTP/1.1\r\nHost: payhook\r\nStripe-Signature: t=1,v1=00\r\nContent-Length: 100\r\n\r\n{";
        stream.write_all(head.as_bytes()).await.unwrap();
        holders.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let body = serde_json::to_vec(&stripe_payment_intent("evt_f", "pi_f", 100, "eur")).unwrap();
    let shed = app.post_stripe(&body).await;
    assert_eq!(shed.status(), 503);
    assert!(shed.headers().contains_key("retry-after"));
    assert!(started.elapsed() < Duration::from_millis(1500), "shed at once, not queued until the 2 s deadline");
    assert_eq!(shed.json::<serde_json::Value>().await.unwrap()["error"], "overloaded");

    // The holders time out (408); then deliveries flow again and are stored.
    drop(holders);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let response = app.post_stripe(&body).await;
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-payhook-arrival-id"].to_str().unwrap().to_owned();
    assert!(app.entries("payhook:arrivals").await.iter().any(|e| e.id == id));
    assert!(metric(&app.metrics().await, "payhook_arrivals_total{source=\"\",outcome=\"overloaded\"}") >= 1.0);
}

#[tokio::test]
async fn an_exact_replay_is_answered_but_not_stored_while_a_fresh_signature_is() {
    let app = TestApp::ingress().await;
    let body = serde_json::to_vec(&stripe_payment_intent("evt_r", "pi_r", 100, "eur")).unwrap();
    let now = chrono::Utc::now().timestamp();
    let captured =
        vec![("Stripe-Signature".to_owned(), crate::harness::stripe_header(crate::harness::STRIPE_SECRET, now, &body))];
    let first = app.post("stripe", &body, &captured).await;
    let first_id = first.headers()["x-payhook-arrival-id"].to_str().unwrap().to_owned();
    for _ in 0..20 {
        let replay = app.post("stripe", &body, &captured).await;
        assert_eq!(replay.status(), 200);
        assert_eq!(replay.headers()["x-payhook-arrival-id"], first_id.as_str());
    }
    assert_eq!(app.entries("payhook:arrivals").await.len(), 1, "a captured request cannot flood the stream");
    // A genuine retry is signed afresh (new timestamp): stored as usual.
    let retry = vec![(
        "Stripe-Signature".to_owned(),
        crate::harness::stripe_header(crate::harness::STRIPE_SECRET, now - 1, &body),
    )];
    assert_eq!(app.post("stripe", &body, &retry).await.status(), 200);
    assert_eq!(app.entries("payhook:arrivals").await.len(), 2);
    let text = app.metrics().await;
    assert_eq!(metric(&text, "payhook_arrivals_total{source=\"stripe\",outcome=\"replayed\"}"), 20.0);
}

#[tokio::test]
async fn a_rate_limited_source_answers_429_with_retry_after_and_others_are_unaffected() {
    let limited = SourceConfig {
        rate_limit_per_sec: std::num::NonZeroU32::new(5),
        ..source("limited", "stripe", toml::toml! { secrets = [STRIPE_SECRET] })
    };
    let app = TestApp::spawn_with(Role::Ingress, |c| c.sources.push(limited)).await;
    // Twenty deliveries at once: about one second of burst (5) gets through.
    let sends = (0..20).map(|i| {
        let body = serde_json::to_vec(&stripe_payment_intent(&format!("evt_rl{i}"), &format!("pi_rl{i}"), 100, "eur"))
            .unwrap();
        let header =
            crate::harness::stripe_header(crate::harness::STRIPE_SECRET, chrono::Utc::now().timestamp(), &body);
        let app = &app;
        async move {
            let response = app.post("limited", &body, &[("Stripe-Signature".into(), header)]).await;
            (response.status().as_u16(), response.headers().contains_key("retry-after"))
        }
    });
    let answers = futures::future::join_all(sends).await;
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    let accepted = statuses.iter().filter(|s| **s == 200).count();
    assert!((5..20).contains(&accepted), "the burst passes, the rest is limited: {statuses:?}");
    assert!(answers.iter().all(|(s, retry)| *s == 200 || (*s == 429 && *retry)), "{statuses:?}");
    assert_eq!(app.entries("payhook:arrivals").await.len(), accepted, "every 200 was stored");
    let body = serde_json::to_vec(&stripe_payment_intent("evt_other", "pi_other", 100, "eur")).unwrap();
    assert_eq!(app.post_stripe(&body).await.status(), 200, "other sources are not limited");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let body = serde_json::to_vec(&stripe_payment_intent("evt_rl_late", "pi_rl_late", 100, "eur")).unwrap();
    let header = crate::harness::stripe_header(crate::harness::STRIPE_SECRET, chrono::Utc::now().timestamp(), &body);
    assert_eq!(
        app.post("limited", &body, &[("Stripe-Signature".into(), header)]).await.status(),
        200,
        "the bucket refills"
    );
}
