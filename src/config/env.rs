//! The environment as config sees it: a snapshot, plain data.

use std::{collections::HashMap, fmt};

/// A snapshot of the environment variables config may read: the overrides
/// and every `*_env` key. [`Config`](super::Config) keeps it so that building
/// resolves `*_env` keys against the same values the file was read with.
/// Tests build one from pairs instead of mutating the process environment.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Env(HashMap<String, String>);

impl Env {
    /// The process environment.
    pub fn from_process() -> Self {
        Self(std::env::vars().collect())
    }

    /// An environment holding exactly `pairs`.
    pub fn from_pairs<const N: usize>(pairs: [(&str, &str); N]) -> Self {
        Self(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    /// Sets `name` to `value`.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }

    /// The value of `name`, if set and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.raw(name).filter(|v| !v.is_empty())
    }

    /// The value of `name` exactly as set, empty included: a secret variable
    /// that is set but empty is a mistake to report, not an unset one to skip.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Every variable, to hand the snapshot to a child process.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Names only: the values include secrets.
impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.0.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_tuple("Env").field(&names).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_names_never_values() {
        let env = Env::from_pairs([("STRIPE_SECRET", "whsec_do_not_show")]);
        let debug = format!("{env:?}");
        assert!(debug.contains("STRIPE_SECRET") && !debug.contains("whsec_do_not_show"), "{debug}");
    }
}
