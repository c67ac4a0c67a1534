//! The one place a [`Config`] becomes the objects the gateway runs with:
//! each source with its provider (reading secret files and certificates
//! then), the sealer of bodies at rest, and the admin token. `serve` and
//! every command build through here, so a config that `check-config`
//! accepts is one the gateway starts with.

use std::sync::Arc;

use secrecy::SecretString;

use crate::{
    config::{Config, ConfigError},
    providers::{Source, SourceTable},
    store::{
        sealing::{KeyError, Sealer},
        Store, StoreError,
    },
};

/// What a [`Config`] builds.
#[derive(Debug)]
pub struct Runtime {
    /// The configured sources, with their providers. Cheap to clone.
    pub sources: SourceTable,
    /// Seals raw bodies at rest (`[encryption] keys_env`); `None`: stored as received.
    pub sealer: Option<Arc<Sealer>>,
    /// The admin bearer token (`server.admin_token_env`); `None` disables the admin API.
    pub admin_token: Option<Arc<SecretString>>,
}

/// Why a config cannot be built. Each names the key at fault (exit code 2),
/// and none holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The config fails validation, or a source's table does not build its
    /// provider: an unknown provider or key, a missing or blank secret, an
    /// unreadable secret file or certificate.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The admin token variable is set to whitespace, which anyone could guess.
    #[error("server.admin_token_env: the environment variable {var} holds only whitespace")]
    BlankAdminToken {
        /// The variable.
        var: String,
    },
    /// A variable named by `[encryption] keys_env` is not set.
    #[error("encryption.keys_env: the environment variable {var} is not set")]
    UnsetKey {
        /// The variable.
        var: String,
    },
    /// A sealing key is malformed or its id is given twice.
    #[error("encryption.keys_env: {0}")]
    Key(KeyError),
}

impl Runtime {
    /// Builds what `config` describes, resolving its `*_env` keys against
    /// `config.env`.
    pub fn build(config: &Config) -> Result<Self, BuildError> {
        config.validate()?;
        let sources = config.source_settings().map(|(source, settings)| Source::configure(source, settings));
        let sources = SourceTable::new(sources.collect::<Result<_, _>>()?);
        Ok(Self { sources, sealer: sealer(config)?, admin_token: admin_token(config)? })
    }

    /// A store on `config`'s Redis that seals with this runtime's keys;
    /// `server.request_timeout_ms` bounds every command.
    pub fn store(&self, config: &Config) -> Result<Store, StoreError> {
        Store::open(config, self.sealer.clone(), config.server.request_timeout())
    }
}

/// The admin bearer token: unset or empty disables the admin API; a blank
/// one is refused, since anyone could guess it.
fn admin_token(config: &Config) -> Result<Option<Arc<SecretString>>, BuildError> {
    let var = &config.server.admin_token_env;
    match config.env.get(var) {
        Some(token) if token.trim().is_empty() => Err(BuildError::BlankAdminToken { var: var.clone() }),
        token => Ok(token.map(|t| Arc::new(SecretString::from(t)))),
    }
}

/// The sealing keys named by `[encryption] keys_env`; every variable must be set.
fn sealer(config: &Config) -> Result<Option<Arc<Sealer>>, BuildError> {
    let texts = config
        .encryption
        .keys_env
        .iter()
        .map(|var| config.env.get(var).ok_or_else(|| BuildError::UnsetKey { var: var.clone() }))
        .collect::<Result<Vec<_>, _>>()?;
    Sealer::new(texts).map(|sealer| sealer.map(Arc::new)).map_err(BuildError::Key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Env, MINIMAL};

    fn build(text: &str, env: &Env) -> Result<Runtime, String> {
        let config = Config::parse(text, env).map_err(|e| e.to_string())?;
        Runtime::build(&config).map_err(|e| e.to_string())
    }

    fn error(text: &str) -> String {
        build(text, &Env::default()).unwrap_err()
    }

    #[test]
    fn a_source_key_no_provider_reads_or_an_unknown_provider_is_named() {
        let typo = MINIMAL.replace("secrets =", "tolerence_secs = 3\nsecrets =");
        assert!(error(&typo).starts_with("sources[0].tolerence_secs: unknown key"), "{}", error(&typo));
        let nope = MINIMAL.replace("provider = \"stripe\"", "provider = \"nope\"");
        assert!(error(&nope).starts_with("sources[0].provider: unknown provider"), "{}", error(&nope));
    }

    #[test]
    fn a_config_changed_in_code_is_validated_before_it_is_built() {
        let mut config = Config::parse(MINIMAL, &Env::default()).unwrap();
        config.redis.key_prefix = "a:b".into();
        assert!(Runtime::build(&config).unwrap_err().to_string().starts_with("redis.key_prefix"));
    }

    #[test]
    fn secrets_can_come_from_files_whose_content_never_shows() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("stripe");
        std::fs::write(&file, "whsec_from_file\n").unwrap();
        let text = MINIMAL
            .replace("secrets = [\"whsec_test_secret\"]", &format!("secrets_file = [{:?}]", file.to_str().unwrap()));
        let runtime = build(&text, &Env::default()).unwrap();
        assert!(!format!("{runtime:?}").contains("whsec_from_file"));
        let missing = text.replace("stripe\"]", "nope\"]");
        let message = error(&missing);
        assert!(message.starts_with("sources[0].secrets_file: cannot read"), "{message}");
        std::fs::write(&file, "\n").unwrap();
        assert!(error(&text).contains("is empty"));
    }

    #[test]
    fn a_source_without_any_secret_is_refused_without_printing_env_values() {
        let text = MINIMAL.replace("secrets = [\"whsec_test_secret\"]", "secrets_env = [\"NOPE_UNSET\"]");
        let message = error(&text);
        assert!(message.starts_with("sources[0].secrets"), "{message}");
        assert!(message.contains("NOPE_UNSET"));
        let runtime = build(&text, &Env::from_pairs([("NOPE_UNSET", "whsec_from_env")])).unwrap();
        assert!(!format!("{runtime:?}").contains("whsec_from_env"));
    }

    #[test]
    fn an_empty_or_blank_secret_is_refused_however_it_is_given() {
        let slot = MINIMAL.replace("secrets = [\"whsec_test_secret\"]", "secrets = [\"\", \"whsec_test_secret\"]");
        assert!(error(&slot).starts_with("sources[0].secrets: secret #0 is empty"), "{}", error(&slot));
        let blank = MINIMAL.replace("whsec_test_secret", " \t");
        assert!(error(&blank).starts_with("sources[0].secrets"), "{}", error(&blank));
        let by_env = MINIMAL.replace("secrets = [\"whsec_test_secret\"]", "secrets_env = [\"S1\", \"S2\"]");
        for value in ["", "  "] {
            let message = build(&by_env, &Env::from_pairs([("S1", "whsec_ok"), ("S2", value)])).unwrap_err();
            assert!(message.starts_with("sources[0].secrets_env") && message.contains("S2"), "{message}");
        }
        // Unset is not empty: the previous secret of a rotation is usually unset.
        assert!(build(&by_env, &Env::from_pairs([("S1", "whsec_ok")])).is_ok());
    }

    #[test]
    fn a_secret_that_decodes_to_no_bytes_is_refused() {
        let sw = MINIMAL.replace("provider = \"stripe\"", "provider = \"standard-webhooks\"").replace(
            "secrets = [\"whsec_test_secret\"]",
            "secrets = [\"whsec_\"]\n[sources.mapping]\nevent_type = \"/t\"\nsucceeded_types = [\"p\"]\npayment_id = \"/p\"\namount = \"/a\"\ncurrency = \"/c\"",
        );
        let message = error(&sw);
        assert!(message.starts_with("sources[0].secrets: secret #0"), "{message}");
    }

    #[test]
    fn a_blank_single_credential_is_refused() {
        let braintree = r#"
            [[sources]]
            name = "bt"
            provider = "braintree"
            public_key = "pub"
            private_key_env = "BT_PRIVATE"
        "#;
        let message = build(braintree, &Env::from_pairs([("BT_PRIVATE", " ")])).unwrap_err();
        assert!(message.starts_with("sources[0].private_key_env"), "{message}");
        let inline = braintree.replace("private_key_env = \"BT_PRIVATE\"", "private_key = \"\"");
        assert!(error(&inline).starts_with("sources[0].private_key"), "{}", error(&inline));
    }

    #[test]
    fn a_blank_admin_token_is_refused_and_an_empty_one_disables_the_api() {
        let message = build(MINIMAL, &Env::from_pairs([("PAYHOOK_ADMIN_TOKEN", "   ")])).unwrap_err();
        assert!(message.starts_with("server.admin_token_env"), "{message}");
        let disabled = build(MINIMAL, &Env::from_pairs([("PAYHOOK_ADMIN_TOKEN", "")])).unwrap();
        assert!(disabled.admin_token.is_none());
        let enabled = build(MINIMAL, &Env::from_pairs([("PAYHOOK_ADMIN_TOKEN", "t0ken")])).unwrap();
        assert!(enabled.admin_token.is_some() && !format!("{enabled:?}").contains("t0ken"));
    }

    #[test]
    fn sealing_keys_must_be_set_and_well_formed() {
        let text = format!("[encryption]\nkeys_env = [\"BODY_KEY\"]\n{MINIMAL}");
        let message = error(&text);
        assert_eq!(message, "encryption.keys_env: the environment variable BODY_KEY is not set");
        let message = build(&text, &Env::from_pairs([("BODY_KEY", "k1:c2hvcnQ=")])).unwrap_err();
        assert!(message.starts_with("encryption.keys_env: must be") && !message.contains("c2hvcnQ"), "{message}");
        let key = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        assert!(build(&text, &Env::from_pairs([("BODY_KEY", key)])).unwrap().sealer.is_some());
        assert!(build(MINIMAL, &Env::default()).unwrap().sealer.is_none());
    }
}
