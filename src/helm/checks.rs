//! Checks of what the user names (the gateway domain, the release, GitLab's URL, an image
//! reference) and parsers of what helm and kubectl say about their versions. Pure: nothing here
//! runs a tool.

use serde_json::Value;

use super::Release;
use crate::error::Problem;

/// Checks the gateway domain: a DNS name GitLab can reach, so not localhost, not an IP
/// address (an ingress host must be a name), no scheme or port.
pub fn check_domain(domain: &str) -> Result<String, Problem> {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let hint = "pass the DNS name GitLab will reach the gateway by, such as --gateway-host ai-gateway.example.com";
    if domain.is_empty() {
        return Err(Problem::user("the gateway domain is empty").hint(hint));
    }
    if domain.contains("://") || domain.contains('/') || domain.contains(':') {
        return Err(Problem::user(format!(
            "`{domain}` is not a bare domain name (no scheme, path or port)"
        ))
        .hint(hint));
    }
    if crate::net::is_loopback_host(&domain) {
        return Err(Problem::user(format!(
            "the gateway domain `{domain}` is localhost; GitLab and the ingress need a name they can resolve"
        ))
        .hint(hint));
    }
    if domain.parse::<std::net::IpAddr>().is_ok() {
        return Err(Problem::user(format!(
            "the gateway domain `{domain}` is an IP address; a Kubernetes ingress host must be a DNS name"
        ))
        .hint(hint));
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if domain.len() > 253 || !domain.split('.').all(label_ok) {
        return Err(Problem::user(format!("`{domain}` is not a valid DNS name")).hint(hint));
    }
    Ok(domain)
}

/// Checks the release and namespace names: Kubernetes DNS labels (helm allows 53 characters
/// for a release name, Kubernetes 63 for a namespace).
pub fn check_release(release: &Release) -> Result<(), Problem> {
    let label_ok = |name: &str, max: usize| {
        !name.is_empty()
            && name.len() <= max
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-')
            && !name.ends_with('-')
    };
    for (flag, name, max) in [
        ("--release", &release.name, 53),
        ("--namespace", &release.namespace, 63),
    ] {
        if !label_ok(name, max) {
            return Err(Problem::user(format!(
                "{flag} `{name}` is not a valid name: lowercase letters, digits and '-', at most {max} characters"
            ))
            .hint(format!("pass a name such as {flag} ai-gateway")));
        }
    }
    if release.chart_version.trim().is_empty()
        || release.chart_version.contains(char::is_whitespace)
    {
        return Err(Problem::user(format!(
            "--chart-version `{}` is not a chart version",
            release.chart_version
        ))
        .hint("pass a version such as --chart-version 0.5.0"));
    }
    Ok(())
}

/// Splits `repository:tag` (a registry port is not a tag).
pub fn split_image(image: &str) -> Option<(String, String)> {
    let slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    let colon = image[slash..].rfind(':')? + slash;
    let (repo, tag) = (&image[..colon], &image[colon + 1..]);
    (!repo.is_empty() && !tag.is_empty() && !tag.contains('@'))
        .then(|| (repo.to_string(), tag.to_string()))
}

/// The version in `helm version --short` (`v3.14.2+g1234`, or helm 2's `Client: v2.16.1+g…`).
pub fn parse_helm_version(text: &str) -> Option<semver::Version> {
    let re = regex::Regex::new(r"v(\d+)\.(\d+)\.(\d+)").ok()?;
    let caps = re.captures(text)?;
    Some(semver::Version::new(
        caps[1].parse().ok()?,
        caps[2].parse().ok()?,
        caps[3].parse().ok()?,
    ))
}

/// `gitVersion` of one side of `kubectl version -o json` ("clientVersion" or "serverVersion").
pub fn parse_kubectl_version(json: &str, side: &str) -> Option<String> {
    let value: Value = serde_json::from_str(json).ok()?;
    value
        .get(side)?
        .get("gitVersion")?
        .as_str()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_checks() {
        assert_eq!(check_domain("GW.Example.com.").unwrap(), "gw.example.com");
        for bad in [
            "",
            "localhost",
            "a.localhost",
            "127.0.0.1",
            "https://gw.example.com",
            "gw.example.com:443",
            "-x.example.com",
            "a..b",
        ] {
            assert!(check_domain(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn versions_parse() {
        assert_eq!(
            parse_helm_version("v3.14.2+gc309b6f"),
            Some(semver::Version::new(3, 14, 2))
        );
        assert_eq!(
            parse_helm_version("Client: v2.16.1+gbbdfe5e"),
            Some(semver::Version::new(2, 16, 1))
        );
        assert_eq!(parse_helm_version("nonsense"), None);
        let json = r#"{"clientVersion":{"gitVersion":"v1.29.1"},"serverVersion":{"gitVersion":"v1.28.3"}}"#;
        assert_eq!(
            parse_kubectl_version(json, "serverVersion").as_deref(),
            Some("v1.28.3")
        );
    }

    #[test]
    fn images_split_at_the_tag_not_the_port() {
        assert_eq!(
            split_image("reg:5000/a/b:tag"),
            Some(("reg:5000/a/b".into(), "tag".into()))
        );
        assert_eq!(split_image("reg:5000/a/b"), None);
    }
}
