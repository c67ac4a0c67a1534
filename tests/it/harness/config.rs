//! The test config as a typed value, after zero-to-production's `spawn_app`:
//! [`config`] is the gateway every test starts from, and a test changes the
//! fields it is about (`config.processing.max_attempts = …`,
//! `config.sources.push(…)`) before it builds the app, or writes it as TOML
//! ([`toml`]) for the binary.

use std::net::SocketAddr;

use payhook::{
    config::{Config, EncryptionConfig, Env, ProcessingConfig, RedisConfig, ServerConfig, SourceConfig},
    domain::SourceName,
};

use super::RedisServer;

pub const STRIPE_SECRET: &str = "whsec_test_secret";
pub const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The gateway against `redis`: listeners on any free port, two sources
/// (`stripe`, and `dodo`, a Standard Webhooks source), an empty environment.
pub fn config(redis: &RedisServer) -> Config {
    config_at(&redis.url())
}

/// [`config`] against a Redis no test runs, for commands that never reach it.
pub fn offline_config() -> Config {
    config_at("redis://127.0.0.1:1")
}

fn config_at(redis_url: &str) -> Config {
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    Config {
        server: ServerConfig {
            listen: any_port,
            admin_listen: any_port,
            request_timeout_ms: 2_000,
            ..ServerConfig::default()
        },
        redis: RedisConfig { url: Some(redis_url.to_owned()), ..RedisConfig::default() },
        processing: ProcessingConfig::default(),
        encryption: EncryptionConfig::default(),
        telemetry: Default::default(),
        sources: vec![
            source("stripe", "stripe", toml::toml! { secrets = [STRIPE_SECRET] tolerance_secs = 300 }),
            source(
                "dodo",
                "standard-webhooks",
                toml::toml! {
                    secrets = [SW_SECRET]
                    tolerance_secs = 300
                    livemode = true
                    [mapping]
                    event_type = "/type"
                    succeeded_types = ["payment.succeeded"]
                    payment_id = "/data/payment_id"
                    amount = "/data/total_amount"
                    currency = "/data/currency"
                    merchant_reference = "/data/metadata/order_id"
                },
            ),
        ],
        env: Env::default(),
    }
}

/// A source named `name` of `provider`, with the provider's `settings`.
pub fn source(name: &str, provider: &str, settings: toml::Table) -> SourceConfig {
    SourceConfig::new(SourceName::parse(name).expect("test source names are valid"), provider, settings)
}

/// Turns the admin API on with `token`, as the operator's environment would.
pub fn with_admin_token(config: &mut Config, token: &str) {
    let var = config.server.admin_token_env.clone();
    config.env.set(var, token);
}

/// The `[[sources]]` tables of a TOML text (SDK vector settings, fixtures).
pub fn sources(text: &str) -> Vec<SourceConfig> {
    let mut file: toml::Table = toml::from_str(text).expect("test sources are TOML");
    let Some(toml::Value::Array(tables)) = file.remove("sources") else { panic!("no [[sources]] in {text}") };
    tables
        .into_iter()
        .enumerate()
        .map(|(i, table)| {
            let toml::Value::Table(table) = table else { panic!("sources[{i}] is not a table") };
            SourceConfig::parse(i, table).expect("test sources have a valid name and a provider")
        })
        .collect()
}

/// `config` as the file the binary reads. (Its environment is not in the
/// file: [`super::Gateway`] passes it to the process.)
pub fn toml(config: &Config) -> String {
    toml::to_string(config).expect("a config serializes")
}

/// The environment variables `config/payhook.example.toml` reads its secrets from.
pub const EXAMPLE_SECRET_VARS: [&str; 15] = [
    "STRIPE_WEBHOOK_SECRET",
    "DODO_WEBHOOK_SECRET",
    "ADYEN_HMAC_KEY",
    "ADYEN_WEBHOOK_PASSWORD",
    "BRAINTREE_PRIVATE_KEY",
    "SQUARE_SIGNATURE_KEY",
    "RAZORPAY_WEBHOOK_SECRET",
    "PADDLE_WEBHOOK_SECRET",
    "CKO_SIGNATURE_KEY",
    "CKO_AUTHORIZATION_KEY",
    "PAYSTACK_SECRET_KEY",
    "LEMONSQUEEZY_SIGNING_SECRET",
    "SHOPIFY_CLIENT_SECRET",
    "COINBASE_COMMERCE_WEBHOOK_SECRET",
    "ACME_WEBHOOK_SECRET",
];
