//! The end of a run in numbers and words: counts per status, the summary line, the `--json`
//! document, and how a status reads in a sentence.

use serde::Serialize;

use super::{CheckResult, Status, SCHEMA_VERSION};

/// Counts per status, in the `--json` summary's shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub ok: usize,
    pub warn: usize,
    pub fail: usize,
    pub skip: usize,
    pub error: usize,
}

impl Summary {
    pub fn of(results: &[CheckResult]) -> Self {
        let mut summary = Summary::default();
        for result in results {
            match result.status {
                Status::Ok => summary.ok += 1,
                Status::Warn => summary.warn += 1,
                Status::Fail => summary.fail += 1,
                Status::Skip => summary.skip += 1,
                Status::Error => summary.error += 1,
            }
        }
        summary
    }

    /// `12 passed, 1 warning, 2 failed, 3 skipped` (errors added when there are any).
    pub fn line(&self) -> String {
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut parts = vec![
            format!("{} passed", self.ok),
            plural(self.warn, "warning", "warnings"),
            format!("{} failed", self.fail),
            format!("{} skipped", self.skip),
        ];
        if self.error > 0 {
            parts.push(plural(self.error, "error", "errors"));
        }
        parts.join(", ")
    }
}

/// The `--json` document.
pub fn json_report(results: &[CheckResult]) -> serde_json::Value {
    serde_json::json!({
        "schema_version": SCHEMA_VERSION,
        "summary": Summary::of(results),
        "checks": results,
    })
}

pub fn status_word(status: Status) -> &'static str {
    match status {
        Status::Ok => "passed",
        Status::Warn => "warned",
        Status::Fail => "failed",
        Status::Skip => "was skipped",
        Status::Error => "broke",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line_counts_and_pluralises() {
        let summary = Summary {
            ok: 12,
            warn: 1,
            fail: 2,
            skip: 3,
            error: 0,
        };
        assert_eq!(summary.line(), "12 passed, 1 warning, 2 failed, 3 skipped");
        let summary = Summary {
            warn: 2,
            error: 1,
            ..summary
        };
        assert_eq!(
            summary.line(),
            "12 passed, 2 warnings, 2 failed, 3 skipped, 1 error"
        );
    }
}
