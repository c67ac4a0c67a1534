//! A config is plain data (issue 9, part 3): a test builds it in code and
//! changes the fields it is about, and the same value runs the app in this
//! process and, written as TOML with its environment passed along, the real
//! binary. `*_env` keys are resolved against the config's own environment
//! snapshot when the app is built.

use chrono::Utc;
use payhook::app::Role;
use serde_json::json;

use crate::harness::{
    config, source, standard_webhooks_headers, with_admin_token, Gateway, RedisServer, Running, SW_SECRET,
};

const TOKEN: &str = "admin-token-for-tests";

async fn post(base: &str, body: &[u8], headers: &[(String, String)]) -> u16 {
    let mut request = reqwest::Client::new().post(format!("{base}/webhooks/acme")).body(body.to_vec());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await.expect("the gateway answers").status().as_u16()
}

#[tokio::test]
async fn a_config_changed_in_code_runs_the_same_in_process_and_as_the_binary() {
    // Arrange: a smaller body limit, a source whose secret comes from the
    // config's environment, and the admin API on.
    let redis = RedisServer::start();
    let mut config = config(&redis);
    config.server.max_body_bytes = 2048;
    let settings = toml::toml! {
        secrets_env = ["ACME_WEBHOOK_SECRET"]
        [mapping]
        event_type = "/type"
        succeeded_types = ["payment.succeeded"]
        payment_id = "/data/payment_id"
        amount = "/data/total_amount"
        currency = "/data/currency"
    };
    config.sources.push(source("acme", "standard-webhooks", settings));
    config.env.set("ACME_WEBHOOK_SECRET", SW_SECRET);
    with_admin_token(&mut config, TOKEN);

    // Act: the same value, in process and as the binary, on one Redis.
    let in_process = Running::start(config.clone(), Role::Ingress).await;
    let binary = Gateway::start(config).await;

    // Assert
    let payment =
        json!({"type": "payment.succeeded", "data": {"payment_id": "p1", "total_amount": 100, "currency": "EUR"}});
    let body = serde_json::to_vec(&payment).unwrap();
    let oversized = [b' '; 4096];
    for (gateway, base, admin) in
        [("in process", &in_process.base, &in_process.admin), ("binary", &binary.base, &binary.admin)]
    {
        let now = Utc::now().timestamp();
        let signed = standard_webhooks_headers("webhook", SW_SECRET, &format!("msg_{gateway}"), now, &body);
        assert_eq!(post(base, &body, &signed).await, 200, "{gateway}: the secret came from config.env");
        let signed = standard_webhooks_headers("webhook", SW_SECRET, "msg_big", now, &oversized);
        assert_eq!(post(base, &oversized, &signed).await, 413, "{gateway}: max_body_bytes is 2048");
        let stats = reqwest::Client::new().get(format!("{admin}/admin/stats")).bearer_auth(TOKEN).send().await;
        assert_eq!(stats.unwrap().status(), 200, "{gateway}: the admin token came from config.env");
    }
    assert_eq!(redis.entries("payhook:arrivals").await.len(), 2);
}
