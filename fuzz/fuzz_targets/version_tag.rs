//! The GitLab version and gateway tag parsers on arbitrary text: never panic, and what they
//! accept is consistent (a picked tag parses and matches the version's minor).
#![no_main]

use duo_selfhost_fuzz::image_tag::{
    image_reference_tag, offline_tag, parse_gateway_tag, parse_gitlab_version, pick_gateway_tag,
    split_reference, tag_matches_minor,
};
use duo_selfhost_fuzz::registry::parse_bearer_challenge;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let tags: Vec<&str> = text.lines().collect();
    // The two views of a reference agree: its tag, or latest when it has none.
    let (repository, tag) = split_reference(text);
    assert_eq!(image_reference_tag(text).unwrap_or("latest"), tag);
    assert!(text.starts_with(repository));
    let _ = parse_bearer_challenge(text);
    if let Some(v) = parse_gateway_tag(text) {
        assert!(text.starts_with("self-hosted-"));
        assert!(tag_matches_minor(text, &v));
    }
    if let Ok(version) = parse_gitlab_version(text) {
        assert!(parse_gateway_tag(&offline_tag(&version)).is_some());
        if let Some(tag) = pick_gateway_tag(tags.iter().copied(), &version) {
            assert!(
                tag_matches_minor(tag, &version),
                "picked {tag} for {version}"
            );
        }
    }
    if let Some(first) = tags.first() {
        if let Ok(version) = parse_gitlab_version(first) {
            if let Some(tag) = pick_gateway_tag(tags.iter().copied(), &version) {
                let picked = parse_gateway_tag(tag).unwrap();
                for other in tags.iter().filter_map(|t| parse_gateway_tag(t)) {
                    if other.major == version.major && other.minor == version.minor {
                        assert!(other <= picked);
                    }
                }
            }
        }
    }
});
