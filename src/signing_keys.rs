//! The RSA keys the AI Gateway signs its own JWTs with on GitLab 18.x (Duo Chat and other
//! features) and, from 18.4, the Agent Platform's. They are generated with `openssl genrsa 2048`
//! as GitLab's docs do, and go only into the gateway container's environment: duo-selfhost never
//! prints or stores them, and upgrades carry them over with the rest of the environment.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use crate::programs::find_on_path_or_omnibus;
use crate::report::Report;

/// The environment variables that hold a signing key the gateway needs on `version`.
pub fn required(version: &semver::Version) -> Vec<&'static str> {
    let mut keys = Vec::new();
    if version.major >= 18 {
        keys.push("AIGW_SELF_SIGNED_JWT__SIGNING_KEY");
        keys.push("AIGW_SELF_SIGNED_JWT__VALIDATION_KEY");
    }
    if (version.major, version.minor) >= (18, 4) {
        keys.push("DUO_WORKFLOW_SELF_SIGNED_JWT__SIGNING_KEY");
    }
    keys
}

/// The keys `version` needs that `env` does not have (absent or empty).
pub fn missing(version: &semver::Version, env: &BTreeMap<String, String>) -> Vec<&'static str> {
    required(version)
        .into_iter()
        .filter(|key| env.get(*key).is_none_or(|v| v.trim().is_empty()))
        .collect()
}

/// Generates each key `version` needs and `env` lacks, a new one each, and adds it to `env`.
/// Returns the names added. A key the user passed is kept as it is.
pub fn add_missing(
    version: &semver::Version,
    env: &mut BTreeMap<String, String>,
) -> anyhow::Result<Vec<&'static str>> {
    let missing = missing(version, env);
    for key in &missing {
        env.insert(key.to_string(), generate_rsa_key()?);
    }
    Ok(missing)
}

/// `add_missing`, but a key that cannot be made is a warning, not a stop: the gateway runs
/// without it (code suggestions work; Duo Chat and the Agent Platform cannot sign their tokens),
/// and doctor's `gateway.container.jwt_keys` check keeps pointing at it.
pub fn add_missing_or_warn(
    version: &semver::Version,
    env: &mut BTreeMap<String, String>,
    report: &dyn Report,
) -> Vec<&'static str> {
    match add_missing(version, env) {
        Ok(added) => added,
        Err(e) => {
            report.warn(&format!(
                "the gateway's signing keys for GitLab {version} were not generated: {e}; \
                 pass them with --env NAME=\"$(cat key.pem)\" (openssl genrsa 2048 > key.pem) for {}",
                missing(version, env).join(", ")
            ));
            Vec::new()
        }
    }
}

/// A new 2048-bit RSA private key in PEM, from openssl (on PATH, else omnibus GitLab's own).
fn generate_rsa_key() -> anyhow::Result<String> {
    let openssl = find_on_path_or_omnibus("openssl", "/opt/gitlab/embedded/bin/openssl")
        .ok_or_else(|| anyhow::anyhow!("openssl, which makes them, was not found"))?;
    // The key leaves on stdout only; stderr holds openssl's progress dots, dropped.
    let out = Command::new(&openssl)
        .args(["genrsa", "2048"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| anyhow::anyhow!("could not run {}: {e}", openssl.display()))?;
    let pem = String::from_utf8(out.stdout).unwrap_or_default();
    if !out.status.success() || !pem.contains("-----BEGIN") {
        anyhow::bail!(
            "`{} genrsa 2048` did not make a key ({})",
            openssl.display(),
            out.status
        );
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> semver::Version {
        semver::Version::parse(text).unwrap()
    }

    #[test]
    fn keys_by_version() {
        assert!(required(&v("17.11.3")).is_empty());
        assert_eq!(
            required(&v("18.0.0")),
            [
                "AIGW_SELF_SIGNED_JWT__SIGNING_KEY",
                "AIGW_SELF_SIGNED_JWT__VALIDATION_KEY"
            ]
        );
        assert_eq!(required(&v("18.4.1")).len(), 3);
    }

    #[test]
    fn keys_passed_by_the_user_are_kept_and_the_rest_generated() {
        let mut env = BTreeMap::from([(
            "AIGW_SELF_SIGNED_JWT__SIGNING_KEY".to_string(),
            "mine".to_string(),
        )]);
        let added = add_missing(&v("18.4.0"), &mut env).unwrap();
        assert_eq!(
            added,
            [
                "AIGW_SELF_SIGNED_JWT__VALIDATION_KEY",
                "DUO_WORKFLOW_SELF_SIGNED_JWT__SIGNING_KEY"
            ]
        );
        assert_eq!(env["AIGW_SELF_SIGNED_JWT__SIGNING_KEY"], "mine");
        let (a, b) = (
            &env["AIGW_SELF_SIGNED_JWT__VALIDATION_KEY"],
            &env["DUO_WORKFLOW_SELF_SIGNED_JWT__SIGNING_KEY"],
        );
        assert!(
            a.starts_with("-----BEGIN PRIVATE KEY-----")
                || a.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
            "{a}"
        );
        assert_ne!(a, b, "every key is its own");
        assert!(missing(&v("18.4.0"), &env).is_empty());
    }
}
