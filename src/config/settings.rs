//! One `[[sources]]` table, read key by key by the source's provider.

use secrecy::SecretString;

use super::{ConfigError, Env};

/// The keys of one `[[sources]]` table that are still to be read.
///
/// Each provider takes the keys it understands; [`SourceSettings::finish`]
/// then refuses whatever is left, so an unknown or misspelt key is an error
/// naming it (`sources[2].tolerence_secs: unknown key`).
pub struct SourceSettings<'env> {
    path: String,
    table: toml::Table,
    env: &'env Env,
}

impl<'env> SourceSettings<'env> {
    /// Settings of the table at `path` (e.g. `sources[0]`).
    pub fn new(path: String, table: toml::Table, env: &'env Env) -> Self {
        Self { path, table, env }
    }

    /// The dotted path of `key`, for error messages.
    pub fn key(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    /// Removes and returns a string value.
    pub fn string(&mut self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.table.remove(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ConfigError::invalid(self.key(key), "expected a string")),
        }
    }

    /// Removes and returns a required string value.
    pub fn required_string(&mut self, key: &str) -> Result<String, ConfigError> {
        self.string(key)?.ok_or_else(|| ConfigError::invalid(self.key(key), "is required"))
    }

    /// Removes a string that must be one of `options` (by name), else `default`.
    pub fn choice<T: Copy>(&mut self, key: &str, options: &[(&str, T)], default: T) -> Result<T, ConfigError> {
        let Some(name) = self.string(key)? else { return Ok(default) };
        let found = options.iter().find(|(option, _)| *option == name).map(|(_, value)| *value);
        found.ok_or_else(|| {
            let names: Vec<String> = options.iter().map(|(option, _)| format!("{option:?}")).collect();
            let (last, rest) = names.split_last().expect("a choice has options");
            ConfigError::invalid(self.key(key), format!("must be {} or {last}", rest.join(", ")))
        })
    }

    /// Removes a required string that must not be empty (`problem` says what it must be).
    pub fn nonempty_string(&mut self, key: &str, problem: &str) -> Result<String, ConfigError> {
        let value = self.required_string(key)?;
        if value.is_empty() {
            return Err(ConfigError::invalid(self.key(key), problem));
        }
        Ok(value)
    }

    /// Removes and returns a non-negative integer.
    pub fn u64(&mut self, key: &str) -> Result<Option<u64>, ConfigError> {
        match self.table.remove(key) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) => {
                u64::try_from(i).map(Some).map_err(|_| ConfigError::invalid(self.key(key), "must not be negative"))
            }
            Some(_) => Err(ConfigError::invalid(self.key(key), "expected an integer")),
        }
    }

    /// Removes and returns a boolean.
    pub fn bool(&mut self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.table.remove(key) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(b)),
            Some(_) => Err(ConfigError::invalid(self.key(key), "expected true or false")),
        }
    }

    /// Removes and returns a list of strings.
    pub fn strings(&mut self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        let Some(value) = self.table.remove(key) else { return Ok(None) };
        let wrong = || ConfigError::invalid(self.key(key), "expected a list of strings");
        let toml::Value::Array(items) = value else { return Err(wrong()) };
        items.into_iter().map(|v| v.as_str().map(str::to_owned).ok_or_else(wrong)).collect::<Result<_, _>>().map(Some)
    }

    /// Removes a sub-table (like `[sources.mapping]`) as settings of its own.
    pub fn table(&mut self, key: &str) -> Result<Option<SourceSettings<'env>>, ConfigError> {
        match self.table.remove(key) {
            None => Ok(None),
            Some(toml::Value::Table(table)) => Ok(Some(SourceSettings::new(self.key(key), table, self.env))),
            Some(_) => Err(ConfigError::invalid(self.key(key), "expected a table")),
        }
    }

    /// The accepted signing secrets: `secrets` inline, then every set variable
    /// named in `secrets_env`, then the content of every `secrets_file`
    /// (mounted secrets, e.g. Kubernetes or Docker), in that order. Unset variables are skipped (the
    /// "previous" secret of a rotation is usually unset), but at least one
    /// secret must result. An empty or blank secret, however given, is an
    /// error: it would be an HMAC key anyone can sign with. Values never
    /// appear in errors.
    pub fn secrets(&mut self) -> Result<Vec<SecretString>, ConfigError> {
        let inline = self.strings("secrets")?.unwrap_or_default();
        let vars = self.strings("secrets_env")?.unwrap_or_default();
        let files = self.strings("secrets_file")?.unwrap_or_default();
        for (i, secret) in inline.iter().enumerate() {
            self.not_blank(secret, "secrets", || format!("secret #{i}"))?;
        }
        let mut from_env = Vec::new();
        for var in &vars {
            if let Some(value) = self.env.raw(var) {
                self.not_blank(value, "secrets_env", || format!("the environment variable {var}"))?;
                from_env.push(value.to_owned());
            }
        }
        let from_files = files.iter().map(|path| self.read_secret_file(path)).collect::<Result<Vec<_>, _>>()?;
        let secrets: Vec<SecretString> =
            inline.into_iter().chain(from_env).chain(from_files).map(SecretString::from).collect();
        if secrets.is_empty() {
            let problem = if vars.is_empty() {
                "no secret: set `secrets`, `secrets_env` or `secrets_file`".to_owned()
            } else {
                format!("no secret: none of the environment variables {} is set", vars.join(", "))
            };
            return Err(ConfigError::invalid(self.key("secrets"), problem));
        }
        Ok(secrets)
    }

    /// Refuses an empty or whitespace-only secret given as `key`; `what`
    /// names it (its position, variable or file), never its value.
    fn not_blank(&self, secret: &str, key: &str, what: impl FnOnce() -> String) -> Result<(), ConfigError> {
        if secret.trim().is_empty() {
            return Err(ConfigError::invalid(
                self.key(key),
                format!("{} is empty: an empty key would let anyone sign", what()),
            ));
        }
        Ok(())
    }

    /// A secret file's content, without the trailing newline editors and
    /// secret managers add. Errors name the file, never its content.
    fn read_secret_file(&self, path: &str) -> Result<String, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::invalid(self.key("secrets_file"), format!("cannot read {path}: {}", e.kind())))?;
        let secret = text.trim_end_matches(['\n', '\r']).to_owned();
        self.not_blank(&secret, "secrets_file", || format!("the file {path}"))?;
        Ok(secret)
    }

    /// One secret given inline as `key` (development) or through the
    /// environment variable named by `{key}_env` (production). Setting both is
    /// an error, and so is naming a variable that is unset. The value never
    /// appears in errors.
    pub fn secret(&mut self, key: &str) -> Result<Option<SecretString>, ConfigError> {
        let env_key = format!("{key}_env");
        match (self.string(key)?, self.string(&env_key)?) {
            (Some(_), Some(_)) => {
                Err(ConfigError::invalid(self.key(key), format!("set `{key}` or `{env_key}`, not both")))
            }
            (Some(inline), None) => {
                self.not_blank(&inline, key, || format!("`{key}`"))?;
                Ok(Some(SecretString::from(inline)))
            }
            (None, Some(var)) => match self.env.raw(&var) {
                Some(value) => {
                    self.not_blank(value, &env_key, || format!("the environment variable {var}"))?;
                    Ok(Some(SecretString::from(value.to_owned())))
                }
                None => {
                    Err(ConfigError::invalid(self.key(&env_key), format!("the environment variable {var} is not set")))
                }
            },
            (None, None) => Ok(None),
        }
    }

    /// Refuses any key no one took.
    pub fn finish(self) -> Result<(), ConfigError> {
        match self.table.keys().next() {
            Some(key) => Err(ConfigError::invalid(self.key(key), "unknown key")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn settings<'e>(text: &str, env: &'e Env) -> SourceSettings<'e> {
        SourceSettings::new("sources[0]".into(), toml::from_str(text).unwrap(), env)
    }

    #[test]
    fn a_single_secret_comes_inline_or_from_the_named_variable() {
        let env = Env::from_pairs([("PASS", "from-env")]);
        let inline = settings(r#"pw = "inline""#, &env).secret("pw").unwrap().unwrap();
        assert_eq!(inline.expose_secret(), "inline");
        let from_env = settings(r#"pw_env = "PASS""#, &env).secret("pw").unwrap().unwrap();
        assert_eq!(from_env.expose_secret(), "from-env");
        assert!(settings("", &env).secret("pw").unwrap().is_none());
    }

    #[test]
    fn an_unset_secret_variable_is_an_error_naming_the_key() {
        let env = Env::default();
        let err = settings(r#"pw_env = "NOPE""#, &env).secret("pw").unwrap_err().to_string();
        assert!(err.starts_with("sources[0].pw_env"), "{err}");
    }
}
