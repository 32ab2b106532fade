//! `--env NAME=VALUE` as the gateway's targets take it: one rule for what a valid assignment
//! is, for Docker and Helm alike.

use crate::error::Problem;

/// One `NAME=VALUE`: the name a shell variable name (letters, digits, `_`, not starting with a
/// digit), the value everything after the first `=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvAssignment {
    pub name: String,
    pub value: String,
}

impl std::str::FromStr for EnvAssignment {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let valid_name = |name: &str| {
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        match text.split_once('=') {
            Some((name, value)) if valid_name(name) => Ok(EnvAssignment {
                name: name.to_string(),
                value: value.to_string(),
            }),
            _ => Err(format!(
                "`{}=…` is not NAME=VALUE with a valid variable name; write it as --env AIGW_LOGGING__LEVEL=debug",
                text.split('=').next().unwrap_or_default()
            )),
        }
    }
}

/// Every `--env` as (name, value) pairs, a later one for the same name replacing the earlier
/// one, in the order of their last mention; the first invalid one is a user error naming only
/// its name part (the value may be a secret). Parsed here, not by clap, because clap's errors
/// repeat the whole value.
pub fn parse_assignments(texts: &[String]) -> Result<Vec<(String, String)>, Problem> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for text in texts {
        let a: EnvAssignment = text.parse().map_err(|reason: String| {
            let (problem, fix) = reason.split_once("; ").unwrap_or((&reason, ""));
            Problem::user(format!("--env {problem}")).hint(fix.to_string())
        })?;
        pairs.retain(|(name, _)| name != &a.name);
        pairs.push((a.name, a.value));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_parse_and_last_wins() {
        let texts: Vec<String> = ["A=1", "B=x=y", "A=2"].map(String::from).to_vec();
        assert_eq!(
            parse_assignments(&texts).unwrap(),
            vec![("B".into(), "x=y".into()), ("A".into(), "2".into())]
        );
        let problem = parse_assignments(&["BAD NAME=s3cret".to_string()]).unwrap_err();
        assert_eq!(
            problem.message,
            "--env `BAD NAME=…` is not NAME=VALUE with a valid variable name"
        );
        assert_eq!(
            problem.hint.as_deref(),
            Some("write it as --env AIGW_LOGGING__LEVEL=debug")
        );
        for bad in ["=1", "1A=1", "NOEQUALS", "A-B=1"] {
            let err = bad.parse::<EnvAssignment>().unwrap_err();
            assert!(err.contains("not NAME=VALUE"), "{bad}: {err}");
        }
        // A secret value never shows in the error, only the name part.
        let err = "BAD NAME=s3cret".parse::<EnvAssignment>().unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
    }
}
