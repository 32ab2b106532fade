//! The rules that tie the AI Gateway image to a GitLab version: GitLab version parsing, the
//! self-hosted-vX.Y.Z-ee tags (never latest or nightly) and which of them fits a version, and
//! how an image reference splits into repository and tag. Pure: where the tags come from (a tag
//! file, a bundle, the registry) is `gateway_image`'s, pulling and running the image `docker`'s.

use semver::Version;

use crate::error::Problem;

/// The first GitLab release with self-hosted models.
pub const MINIMUM_GITLAB: (u64, u64) = (17, 1);

const ACCEPTED_FORMS: &str = "17.5.0, v17.5.0-ee, 17.5.2-ee or 18.2.1";

fn garbage(text: &str) -> anyhow::Error {
    Problem::user(format!("`{text}` is not a GitLab version"))
        .hint(format!(
            "give the version as {ACCEPTED_FORMS}; GitLab shows it on its /help page and in `gitlab-rake gitlab:env:info`"
        ))
        .into()
}

/// Parses a GitLab version as users write it (17.5.0, v17.5.0-ee, 17.5.2-ee, 18.2.1).
///
/// Also takes the omnibus package spelling `17.5.0-ee.0`. Community Edition versions and
/// versions before 17.1 are refused, since self-hosted Duo needs Enterprise Edition 17.1+.
pub fn parse_gitlab_version(text: &str) -> anyhow::Result<Version> {
    let trimmed = text.trim();
    let bare = trimmed
        .strip_prefix('v')
        .or_else(|| trimmed.strip_prefix('V'))
        .unwrap_or(trimmed);
    let lower = bare.to_ascii_lowercase();
    let (number, edition) = match split_edition(&lower) {
        Some(parts) => parts,
        None => (lower.as_str(), None),
    };
    let version = Version::parse(number).map_err(|_| match major_minor_only(number) {
        Some((major, minor)) => Problem::user(format!(
            "`{trimmed}` lacks its patch number: the gateway image is chosen by GitLab's full version"
        ))
        .hint(format!(
            "give the exact version, such as {major}.{minor}.0 (written as {ACCEPTED_FORMS}; GitLab shows it on its /help page and in `gitlab-rake gitlab:env:info`)"
        ))
        .into(),
        None => garbage(trimmed),
    })?;
    if !version.pre.is_empty() || !version.build.is_empty() {
        return Err(garbage(trimmed));
    }
    if edition == Some("ce") {
        return Err(Problem::user(format!(
            "GitLab {version} Community Edition (`{trimmed}`) cannot use self-hosted GitLab Duo: it needs Enterprise Edition"
        ))
        .hint(format!(
            "upgrade the instance to GitLab EE (gitlab-ee {version}) with a Duo Enterprise licence, then run this again with --gitlab-version {version}-ee"
        ))
        .into());
    }
    let (min_major, min_minor) = MINIMUM_GITLAB;
    if (version.major, version.minor) < (min_major, min_minor) {
        return Err(Problem::user(format!(
            "GitLab {version} is too old for self-hosted GitLab Duo: the minimum is GitLab {min_major}.{min_minor}"
        ))
        .hint(format!(
            "upgrade GitLab to {min_major}.{min_minor} or later (the current release is best), then pass its version"
        ))
        .into());
    }
    Ok(version)
}

/// `18.1` as (18, 1): a version written without its patch number.
fn major_minor_only(number: &str) -> Option<(u64, u64)> {
    let (major, minor) = number.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Splits `17.5.0-ee` / `17.5.0-ee.0` / `17.5.0-ce` into the number and the edition.
fn split_edition(text: &str) -> Option<(&str, Option<&str>)> {
    for edition in ["ee", "ce"] {
        for (at, _) in text.match_indices(&format!("-{edition}")) {
            let rest = &text[at + 3..];
            let package_suffix = rest.is_empty()
                || rest
                    .strip_prefix('.')
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if package_suffix {
                return Some((&text[..at], Some(edition)));
            }
        }
    }
    None
}

/// The gateway version a `self-hosted-vX.Y.Z-ee` tag names, or `None` for any other tag
/// (latest, nightly, FIPS, legacy `gitlab-vX.Y`). Also takes the `self-hosted-X.Y.Z-ee`
/// spelling some GitLab pages use.
pub fn parse_gateway_tag(tag: &str) -> Option<Version> {
    let rest = tag.strip_prefix("self-hosted-")?;
    let rest = rest.strip_prefix('v').unwrap_or(rest);
    let number = rest.strip_suffix("-ee")?;
    let mut parts = number.split('.');
    let mut next = || -> Option<u64> {
        let part = parts.next()?;
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (major, minor, patch) = (next()?, next()?, next()?);
    if parts.next().is_some() {
        return None;
    }
    Some(Version::new(major, minor, patch))
}

/// Whether an image tag (or a whole image reference) is a gateway release for the GitLab
/// version's minor, e.g. `self-hosted-v18.2.2-ee` for GitLab 18.2.1.
pub fn tag_matches_minor(tag: &str, gitlab: &Version) -> bool {
    let tag = image_reference_tag(tag).unwrap_or(tag);
    parse_gateway_tag(tag).is_some_and(|v| v.major == gitlab.major && v.minor == gitlab.minor)
}

/// The tag of an image reference `repo[:port]/path:tag[@digest]`, if it has one.
pub fn image_reference_tag(reference: &str) -> Option<&str> {
    reference_parts(reference).1
}

/// `repository` and `tag` of an image reference (`host:port/path:tag`); tag defaults to latest.
pub fn split_reference(image: &str) -> (&str, &str) {
    let (repository, tag) = reference_parts(image);
    (repository, tag.unwrap_or("latest"))
}

/// A reference without its digest, split at the last `:` after the last `/` (a registry's
/// `host:port` is not a tag).
fn reference_parts(reference: &str) -> (&str, Option<&str>) {
    let image = reference.split('@').next().unwrap_or(reference);
    let last_slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[last_slash..].rfind(':') {
        Some(i) => (&image[..last_slash + i], Some(&image[last_slash + i + 1..])),
        None => (image, None),
    }
}

/// The tag the minor's first gateway release carries: what a GitLab minor release creates.
pub fn offline_tag(gitlab: &Version) -> String {
    format!("self-hosted-v{}.{}.0-ee", gitlab.major, gitlab.minor)
}

/// The highest `self-hosted-vX.Y.*-ee` among `tags` for the version's minor, as listed.
pub fn pick_gateway_tag<'a>(
    tags: impl IntoIterator<Item = &'a str>,
    gitlab: &Version,
) -> Option<&'a str> {
    tags.into_iter()
        .filter_map(|tag| parse_gateway_tag(tag).map(|v| (v, tag)))
        .filter(|(v, _)| v.major == gitlab.major && v.minor == gitlab.minor)
        // Prefer the canonical `v` spelling when both name the same release.
        .max_by_key(|(v, tag)| (v.clone(), tag.starts_with("self-hosted-v")))
        .map(|(_, tag)| tag)
}

/// The gateway minors present in `tags`, newest first, for telling the user what exists.
pub(crate) fn available_minors<'a>(tags: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut minors: Vec<(u64, u64)> = tags
        .into_iter()
        .filter_map(parse_gateway_tag)
        .map(|v| (v.major, v.minor))
        .collect();
    minors.sort_unstable_by(|a, b| b.cmp(a));
    minors.dedup();
    minors
        .into_iter()
        .map(|(major, minor)| format!("{major}.{minor}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_tags_parse_only_self_hosted_ee_releases() {
        assert_eq!(
            parse_gateway_tag("self-hosted-v18.2.2-ee"),
            Some(Version::new(18, 2, 2))
        );
        assert_eq!(
            parse_gateway_tag("self-hosted-17.4.0-ee"),
            Some(Version::new(17, 4, 0))
        );
        for other in [
            "latest",
            "nightly",
            "self-hosted-v18.2.2-ee-nightly",
            "self-hosted-v18.2-ee",
            "self-hosted-v18.2.2",
            "self-hosted-v18.2.2-ce",
            "gitlab-v18.2",
            "self-hosted-v18.2.x-ee",
            "self-hosted-v18.2.2.1-ee",
        ] {
            assert_eq!(parse_gateway_tag(other), None, "{other}");
        }
    }

    #[test]
    fn highest_patch_of_the_minor_wins_and_other_minors_never_do() {
        let v = Version::new(18, 2, 1);
        let tags = [
            "self-hosted-v18.2.0-ee",
            "self-hosted-v18.2.10-ee",
            "self-hosted-v18.2.2-ee",
            "self-hosted-v18.3.0-ee",
            "latest",
            "self-hosted-v18.1.9-ee",
        ];
        assert_eq!(pick_gateway_tag(tags, &v), Some("self-hosted-v18.2.10-ee"));
        assert_eq!(
            pick_gateway_tag(["latest", "self-hosted-v18.3.0-ee"], &v),
            None
        );
    }

    #[test]
    fn tag_matching_takes_tags_and_whole_references() {
        let v = Version::new(18, 2, 1);
        assert!(tag_matches_minor("self-hosted-v18.2.2-ee", &v));
        assert!(tag_matches_minor(
            "registry.example.com:5000/ai/model-gateway:self-hosted-v18.2.0-ee",
            &v
        ));
        assert!(!tag_matches_minor(
            "gitlab/model-gateway:self-hosted-v18.1.0-ee",
            &v
        ));
        assert!(!tag_matches_minor("gitlab/model-gateway:latest", &v));
        assert!(!tag_matches_minor("registry.example.com:5000/gw", &v));
    }

    #[test]
    fn versions_parse_in_every_accepted_form() {
        for (text, want) in [
            ("17.5.0", (17, 5, 0)),
            ("v17.5.0-ee", (17, 5, 0)),
            ("17.5.2-ee", (17, 5, 2)),
            ("18.2.1", (18, 2, 1)),
            ("  V18.2.1-EE ", (18, 2, 1)),
            ("17.5.0-ee.0", (17, 5, 0)),
            ("17.1.0", (17, 1, 0)),
        ] {
            let v = parse_gitlab_version(text).unwrap_or_else(|e| panic!("{text}: {e:#}"));
            assert_eq!((v.major, v.minor, v.patch), want, "{text}");
        }
    }

    #[test]
    fn ce_old_and_garbage_versions_are_user_errors() {
        use crate::error::{exit_status_of, ExitStatus};
        for (text, needle) in [
            ("17.5.0-ce", "Enterprise Edition"),
            ("v18.2.1-ce.0", "Enterprise Edition"),
            ("17.0.9", "17.1"),
            ("16.11.0-ee", "17.1"),
            ("seventeen", "is not a GitLab version"),
            ("17.5", "`17.5` lacks its patch number"),
            ("v18.1-ee", "lacks its patch number"),
            ("17.5.0-rc1", "is not a GitLab version"),
            ("", "is not a GitLab version"),
        ] {
            let err = parse_gitlab_version(text).expect_err(text);
            assert!(format!("{err:#}").contains(needle), "{text}: {err:#}");
            assert_eq!(exit_status_of(&err), ExitStatus::Failure, "{text}");
        }
    }

    #[test]
    fn references_split_at_the_tag_not_the_port() {
        assert_eq!(
            split_reference("127.0.0.1:5000/a/b:self-hosted-v17.5.0-ee"),
            ("127.0.0.1:5000/a/b", "self-hosted-v17.5.0-ee")
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/a/b"),
            ("127.0.0.1:5000/a/b", "latest")
        );
        assert_eq!(
            split_reference("vllm/vllm-openai:v1"),
            ("vllm/vllm-openai", "v1")
        );
    }
}
