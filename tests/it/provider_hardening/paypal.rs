//! Item 14: `PAYPAL-CERT-URL` is attacker input. Only PayPal's certificate
//! path on an allowlisted host is fetched, a failing URL is not fetched again
//! for a while, and only so many distinct URLs are fetched a minute.

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{RsaKeyPair, RSA_PKCS1_SHA256},
};
use base64::{engine::general_purpose::STANDARD, Engine};
use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};

use super::{
    paypal_host::{PayPalHost, CA_FILE, CERT_PATH, SIGNING_KEY},
    rejected_reasons,
};
use crate::harness::{config, source, Gateway, RedisServer};

const WEBHOOK_ID: &str = "1JE4291016473214C";

/// The PayPal host stand-in, and the real binary fetching from it.
async fn start() -> (PayPalHost, RedisServer, Gateway) {
    let host = PayPalHost::start().await;
    let redis = RedisServer::start();
    let mut config = config(&redis);
    config.sources.push(source(
        "paypal",
        "paypal",
        toml::toml! { webhook_id = WEBHOOK_ID cert_url_allowlist = ["api.paypal.com"] },
    ));
    let proxy = host.proxy_url();
    let env = [("HTTPS_PROXY", proxy.as_str()), ("SSL_CERT_FILE", CA_FILE), ("NO_PROXY", "")];
    let gateway = Gateway::start_with_env(config, &env).await;
    (host, redis, gateway)
}

/// A `PAYMENT.CAPTURE.COMPLETED` delivery naming `cert_url`, signed as PayPal
/// documents it (SHA256withRSA over `id|time|webhook_id|crc32(body)`) with
/// the key of the certificate the host serves.
fn delivery(cert_url: &str) -> (Vec<u8>, Vec<(String, String)>) {
    let capture = uuid::Uuid::new_v4().simple().to_string()[..17].to_ascii_uppercase();
    let body = serde_json::to_vec(&json!({
        "id": format!("WH-{capture}"), "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource_type": "capture",
        "create_time": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        "resource": {"id": capture, "status": "COMPLETED", "amount": {"currency_code": "USD", "value": "10.00"}}
    }))
    .unwrap();
    let (id, time) = (uuid::Uuid::new_v4().to_string(), Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true));
    let message = format!("{id}|{time}|{WEBHOOK_ID}|{}", crc32fast::hash(&body));
    let pem = std::fs::read(SIGNING_KEY).unwrap();
    let key = RsaKeyPair::from_pkcs8(&x509_cert::der::pem::decode_vec(&pem).unwrap().1).unwrap();
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message.as_bytes(), &mut signature).unwrap();
    let headers = [
        ("PAYPAL-TRANSMISSION-ID", id),
        ("PAYPAL-TRANSMISSION-TIME", time),
        ("PAYPAL-TRANSMISSION-SIG", STANDARD.encode(signature)),
        ("PAYPAL-CERT-URL", cert_url.to_owned()),
        ("PAYPAL-AUTH-ALGO", "SHA256withRSA".to_owned()),
    ];
    (body, headers.map(|(k, v)| (k.to_owned(), v)).to_vec())
}

/// A response: its status, its error code (if any), whether it carried
/// `Retry-After`.
type Answer = (u16, Option<String>, bool);

fn refused() -> Answer {
    (401, Some("invalid_signature".into()), false)
}

fn unavailable() -> Answer {
    (503, Some("unavailable".into()), true)
}

/// Posts a fresh delivery naming `cert_url`.
async fn post(gateway: &Gateway, cert_url: &str) -> Answer {
    let (body, headers) = delivery(cert_url);
    let mut request = reqwest::Client::new().post(format!("{}/webhooks/paypal", gateway.base)).body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    let (status, retry_after) = (response.status().as_u16(), response.headers().contains_key("retry-after"));
    let error = response.json::<Value>().await.ok().and_then(|v| v["error"].as_str().map(str::to_owned));
    (status, error, retry_after)
}

fn url(path: &str) -> String {
    format!("https://api.paypal.com{path}")
}

#[tokio::test]
async fn only_paypals_certificate_path_on_an_allowlisted_host_is_fetched() {
    // Arrange
    let (host, redis, gateway) = start().await;
    let off_path = [
        url("/v1/oauth2/token"),
        url("/CERT-payhook-test"),
        url("/v1/notifications/certs/"),
        url("/v1/notifications/certs/a/CERT-payhook-test"),
        url(&format!("{CERT_PATH}?next=/v1/oauth2/token")),
        format!("https://api.paypal.com:8443{CERT_PATH}"),
        format!("http://api.paypal.com{CERT_PATH}"),
        format!("https://evil.example{CERT_PATH}"),
    ];

    // Act
    let mut answers = Vec::new();
    for cert_url in &off_path {
        answers.push(post(&gateway, cert_url).await);
    }
    let genuine = [post(&gateway, &url(CERT_PATH)).await, post(&gateway, &url(CERT_PATH)).await];

    // Assert
    for (cert_url, answer) in off_path.iter().zip(&answers) {
        assert_eq!(answer, &refused(), "{cert_url}");
    }
    assert_eq!(rejected_reasons(&redis, off_path.len()).await, vec!["invalid_signature"; off_path.len()]);
    assert_eq!(genuine.map(|(status, ..)| status), [200, 200], "PayPal's own certificate URL still verifies");
    assert_eq!(host.fetched(), [CERT_PATH], "fetched once, then cached; nothing else fetched");
}

#[tokio::test]
async fn a_certificate_url_that_failed_is_not_fetched_again_for_a_while() {
    // Arrange
    let (host, _redis, gateway) = start().await;
    let failing = url("/v1/notifications/certs/CERT-unavailable");

    // Act
    let answers = [post(&gateway, &failing).await, post(&gateway, &failing).await, post(&gateway, &failing).await];

    // Assert: the provider is told to retry each time; the host is asked once.
    assert_eq!(answers, [unavailable(), unavailable(), unavailable()]);
    assert_eq!(host.fetched(), ["/v1/notifications/certs/CERT-unavailable"]);
}

#[tokio::test]
async fn an_attacker_churning_certificate_urls_gets_ten_fetches_a_minute_and_then_503() {
    // Arrange: PayPal's certificate is cached first.
    let (host, _redis, gateway) = start().await;
    assert_eq!(post(&gateway, &url(CERT_PATH)).await.0, 200);

    // Act: distinct URLs of the right shape, none of them a certificate.
    let mut answers = Vec::new();
    for i in 0..12 {
        answers.push(post(&gateway, &url(&format!("/v1/notifications/certs/CERT-churn-{i}"))).await);
    }
    let cached = post(&gateway, &url(CERT_PATH)).await;

    // Assert: nine more fetches fill the budget of ten; beyond it, 503
    // with Retry-After and no fetch. The cached certificate still verifies.
    assert_eq!(answers, [vec![refused(); 9], vec![unavailable(); 3]].concat());
    assert_eq!(host.fetched().len(), 10, "{:?}", host.fetched());
    assert_eq!(cached.0, 200);
}
