//! A string that must never be printed: tokens and API keys.
//!
//! `Debug` and `Display` both redact, so a secret cannot leak through `{:?}` in a log line or an
//! error message; the value is reachable only through [`Secret::expose`].

use std::fmt;

#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The real value, for the one place that sends it (a header, an env variable).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

/// Words that make an environment variable's value a secret wherever they appear in its name.
const SECRET_NAME_WORDS: [&str; 6] = ["TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL"];

/// Whether an environment variable's name says its value is a secret, so plans, dry runs and
/// logs show `NAME=****`. The one rule for the Docker and Helm targets and for upgrades. A name
/// ending in `AUTH` (`PROXY_AUTH`) is a credential; `AIGW_AUTH__BYPASS_EXTERNAL` is a switch an
/// admin must be able to read.
pub fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_uppercase();
    SECRET_NAME_WORDS.iter().any(|word| name.contains(word))
        || name.ends_with("AUTH")
        || name.ends_with("AUTHORIZATION")
}

/// `entries` (`NAME=value`) with secret values replaced by `****`.
pub fn mask_env_entries<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    entries
        .into_iter()
        .map(|(name, value)| {
            if is_secret_name(name) {
                format!("{name}=****")
            } else {
                format!("{name}={value}")
            }
        })
        .collect()
}

/// Replaces every occurrence of each non-empty secret in `text` with `****`.
pub fn scrub(text: &str, secrets: &[&Secret]) -> String {
    let mut out = text.to_string();
    for secret in secrets {
        if !secret.is_empty() {
            out = out.replace(secret.expose(), "****");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_masked_and_switches_are_not() {
        for name in [
            "HF_TOKEN",
            "AIGW_AUTH__SECRET_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "api_key",
            "DB_PASSWORD",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "PROXY_AUTH",
            "HTTP_AUTHORIZATION",
        ] {
            assert!(is_secret_name(name), "{name} is a secret");
        }
        for name in [
            "AIGW_AUTH__BYPASS_EXTERNAL",
            "AIGW_GITLAB_URL",
            "HF_HOME",
            "AUTHOR",
        ] {
            assert!(!is_secret_name(name), "{name} is not a secret");
        }
        assert_eq!(
            mask_env_entries([("HF_TOKEN", "hf_x"), ("AIGW_GITLAB_URL", "http://g")]),
            ["HF_TOKEN=****", "AIGW_GITLAB_URL=http://g"]
        );
    }

    #[test]
    fn debug_and_display_redact() {
        let s = Secret::new("glpat-abc");
        assert_eq!(format!("{s:?} {s}"), "Secret(****) ****");
        assert_eq!(s.expose(), "glpat-abc");
    }

    #[test]
    fn scrub_removes_every_occurrence() {
        let s = Secret::new("k3y");
        assert_eq!(scrub("a k3y b k3y", &[&s]), "a **** b ****");
    }
}
