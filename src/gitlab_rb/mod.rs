//! Reads and edits gitlab_rails['env'] in gitlab.rb: the effective hash as omnibus sees it,
//! minimal edits that keep every other byte, a diff, and an atomic write with a backup.
//! It does not decide when to edit (commands and `gitlab_config` do) and never runs Rails.

mod env;
mod lexer;
mod parse;
mod plan;
mod write;

use std::path::{Path, PathBuf};

pub use env::{effective_env, external_url, has_env_assignment, EnvChange, EnvError, EnvHash};
pub use plan::{
    plan_edit, ruby_string_literal, validate_change, validate_known_value, ADDED_BLOCK_COMMENT,
};
pub use write::{
    backup_path_for, find_gitlab_ctl, reconfigure, rendered_envdir, ruby_syntax_check,
    unified_diff, verify_rendered_env, write_atomically, RubyCheck, WriteHook, WriteHooks,
    ENVDIR_OVERRIDE_VAR,
};

use crate::error::Problem;
use crate::report::Report;

/// Where omnibus keeps gitlab.rb.
pub const DEFAULT_PATH: &str = "/etc/gitlab/gitlab.rb";

/// Reads gitlab.rb, turning the usual failures into a message that names the file.
pub fn read_file(path: &Path) -> anyhow::Result<String> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| {
            Problem::user(format!("{} is not valid UTF-8 text", path.display()))
                .hint("fix the file's encoding; omnibus reads it as UTF-8 Ruby")
                .into()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Problem::user(format!("{} does not exist", path.display()))
                .hint("pass --file with the path of gitlab.rb, or run this on the GitLab host")
                .into())
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(Problem::user(format!(
            "cannot read {}: permission denied",
            path.display()
        ))
        .hint("run it as root: sudo duo-selfhost ...")
        .into()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot read {}", path.display()))),
    }
}

/// Turns an `EnvError` into a user problem naming the file (and line), with a hint.
pub fn problem_for(path: &Path, err: EnvError) -> anyhow::Error {
    match err {
        EnvError::Unsupported { line, message } => Problem::user(format!(
            "{}:{line}: {message}",
            path.display()
        ))
        .hint(
            "write gitlab_rails['env'] as a literal hash of quoted strings ('KEY' => 'value'), \
             or make this change by hand and run `gitlab-ctl reconfigure`",
        )
        .into(),
        EnvError::BadChange(message) => Problem::user(message)
            .hint("keys are environment variable names such as AI_GATEWAY_URL; values are one line of text")
            .into(),
        err @ EnvError::NotAUrl { example, .. } => Problem::user(err.to_string())
            .hint(format!(
                "give the full URL, scheme included, for example {example}; nothing was written"
            ))
            .into(),
        EnvError::Internal(message) => Problem::tool(format!(
            "refusing to edit {}: {message}",
            path.display()
        ))
        .hint("the file was not changed; please report this with the gitlab_rails['env'] part of the file")
        .into(),
    }
}

/// The effective env of the gitlab.rb at `path`.
pub fn read_effective_env(path: &Path) -> anyhow::Result<EnvHash> {
    let text = read_file(path)?;
    effective_env(&text).map_err(|e| problem_for(path, e))
}

/// How to carry out an edit.
#[derive(Debug, Clone, Default)]
pub struct EditOptions {
    /// Show the diff, write nothing.
    pub dry_run: bool,
    /// Run `gitlab-ctl reconfigure` afterwards and verify the rendered values.
    pub reconfigure: bool,
}

/// What an edit did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EditOutcome {
    /// The file written (a symlink's target).
    pub path: PathBuf,
    /// Whether the file's content had to change.
    pub changed: bool,
    /// Whether the new content was written (false for a dry run, a "no" or no change).
    pub written: bool,
    /// The unified diff, empty when nothing changed.
    pub diff: String,
    pub backup: Option<PathBuf>,
    /// Whether `gitlab-ctl reconfigure` ran and the rendered values matched.
    pub reconfigured: bool,
}

/// Plans, shows, confirms and writes an edit of gitlab_rails['env'], then optionally
/// reconfigures. Refusals leave the file untouched. The diff goes to stdout unless `--json`.
pub fn edit(
    path: &Path,
    changes: &[EnvChange],
    options: &EditOptions,
    report: &dyn Report,
) -> anyhow::Result<EditOutcome> {
    edit_with_hooks(path, changes, options, report, &WriteHooks::default())
}

/// [`edit`] with hooks into the write, so tests can fail it at any step.
pub fn edit_with_hooks(
    path: &Path,
    changes: &[EnvChange],
    options: &EditOptions,
    report: &dyn Report,
    hooks: &WriteHooks,
) -> anyhow::Result<EditOutcome> {
    for change in changes {
        validate_change(change)
            .and_then(|()| validate_known_value(change))
            .map_err(|e| problem_for(path, e))?;
    }
    if options.reconfigure && !options.dry_run {
        // Fail before writing anything when reconfigure could not run afterwards.
        find_gitlab_ctl()?;
    }
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let old = read_file(&target)?;
    let planned = plan_edit(&old, changes).map_err(|e| problem_for(path, e))?;
    let mut outcome = EditOutcome {
        path: target.clone(),
        changed: planned.is_some(),
        written: false,
        diff: String::new(),
        backup: None,
        reconfigured: false,
    };
    let Some(new) = planned else {
        report.info(&format!(
            "{}: nothing to change, gitlab_rails['env'] already matches",
            path.display()
        ));
        if options.reconfigure && !options.dry_run {
            reconfigure(report)?;
            verify_rendered_env(changes)?;
            outcome.reconfigured = true;
        }
        return Ok(outcome);
    };
    outcome.diff = unified_diff(&target.display().to_string(), &old, &new);
    report.show(outcome.diff.trim_end());
    if options.dry_run {
        report.info("dry run: nothing written");
        return Ok(outcome);
    }
    if !report.confirm(&format!("Write these changes to {}?", target.display()))? {
        report.info("nothing written");
        return Ok(outcome);
    }
    let written = write_atomically(&target, &old, &new, hooks)?;
    report.info(&format!(
        "wrote {} (backup: {})",
        target.display(),
        written.display()
    ));
    outcome.written = true;
    outcome.backup = Some(written);
    if options.reconfigure {
        reconfigure(report)?;
        verify_rendered_env(changes)?;
        outcome.reconfigured = true;
    } else {
        report.info("run `sudo gitlab-ctl reconfigure` for GitLab to pick up the change");
    }
    Ok(outcome)
}
