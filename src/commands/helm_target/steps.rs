//! Running the plan: each step under a spinner, a failure turned into the tool's output and its
//! fix, and the values file helm reads (the user's `--values-out`, or a temporary one kept when a
//! step fails). What the steps are is `crate::helm::plan`.

use std::path::{Path, PathBuf};

use super::QUERY_DEADLINE;
use crate::error::Problem;
use crate::helm::exec::{self, Captured, Cmd, RunError, Show};
use crate::helm::{self, Step};
use crate::output::{Mark, Printer};

pub(super) fn query(cmd: &Cmd, printer: &Printer) -> anyhow::Result<Captured> {
    exec::query(cmd, QUERY_DEADLINE, printer).map_err(|e| run_error(e, None))
}

fn run_error(err: RunError, step: Option<&Step>) -> anyhow::Error {
    match err {
        RunError::NotFound { program } => Problem::user(format!("{program} is not on PATH"))
            .hint(format!("install {program} and run the command again"))
            .into(),
        RunError::Deadline { command, seconds } => {
            let fix = step.map(|s| s.fix.clone()).unwrap_or_else(|| {
                "check that the cluster answers: kubectl cluster-info".to_string()
            });
            Problem::user(format!(
                "`{command}` did not finish within {seconds} s; duo-selfhost stopped it"
            ))
            .hint(fix)
            .into()
        }
        other => anyhow::Error::new(other),
    }
}

/// Runs the steps; when one fails, a temporary values file is kept so the user can see what
/// helm was given (the error names its path).
pub(super) fn run_steps_keeping_values(
    steps: &[Step],
    values_file: ValuesFile,
    printer: &Printer,
) -> anyhow::Result<()> {
    match run_steps(steps, printer) {
        // A temporary values file is removed here, once helm is done with it.
        Ok(()) => {
            drop(values_file);
            Ok(())
        }
        Err(err) => {
            if let ValuesFile::Temporary(path) = values_file {
                if let Ok(kept) = path.keep() {
                    printer.warn(format!(
                        "kept the values file helm was given: {}",
                        kept.display()
                    ));
                }
            }
            Err(err)
        }
    }
}

/// Runs each step under a spinner; the first failure stops with the tool's output and the fix.
fn run_steps(steps: &[Step], printer: &Printer) -> anyhow::Result<()> {
    for step in steps {
        printer.detail(format!("$ {}", step.shell_line()));
        let spinner = printer.spinner(format!("{}…", step.title));
        let result = run_step(step, printer, &spinner);
        spinner.finish_and_clear();
        let (command, captured) = result?;
        if !captured.success() {
            let status = captured
                .code
                .map(|c| format!("status {c}"))
                .unwrap_or_else(|| "a signal".into());
            let output = captured.tail(15);
            return Err(Problem::user(format!(
                "could not {}: `{command}` exited with {status}:\n    {}",
                step.title,
                output.replace('\n', "\n    ")
            ))
            .hint(helm::fix_for_output(&output, &step.fix))
            .into());
        }
        printer.info(format!("{} {}", printer.mark(Mark::Ok), step.title));
    }
    Ok(())
}

/// Runs a step's command (and the command it pipes into); returns the one that decides.
fn run_step(
    step: &Step,
    printer: &Printer,
    spinner: &indicatif::ProgressBar,
) -> anyhow::Result<(Cmd, Captured)> {
    let Some(next) = &step.piped_into else {
        let out = exec::run(
            &step.command,
            None,
            step.deadline,
            Show::Stream,
            printer,
            Some(spinner),
        )
        .map_err(|e| run_error(e, Some(step)))?;
        return Ok((step.command.clone(), out));
    };
    // The first half prints a manifest (a Secret's holds the key): parsed, never shown.
    let show_first = if step.secret_output {
        Show::StderrOnly
    } else {
        Show::Nothing
    };
    let first = exec::run(
        &step.command,
        None,
        step.deadline,
        show_first,
        printer,
        Some(spinner),
    )
    .map_err(|e| run_error(e, Some(step)))?;
    if !first.success() {
        let scrubbed = Captured {
            stdout: String::new(),
            ..first
        };
        return Ok((step.command.clone(), scrubbed));
    }
    let second = exec::run(
        next,
        Some(first.stdout.as_bytes()),
        step.deadline,
        Show::Stream,
        printer,
        Some(spinner),
    )
    .map_err(|e| run_error(e, Some(step)))?;
    Ok((next.clone(), second))
}

/// The values file helm reads: the user's `--values-out` (kept) or a temporary one.
pub(super) enum ValuesFile {
    Kept(PathBuf),
    Temporary(tempfile::TempPath),
}

impl ValuesFile {
    pub(super) fn write(out: Option<&Path>, text: &str) -> anyhow::Result<ValuesFile> {
        use std::io::Write;
        let dir = out
            .and_then(Path::parent)
            .filter(|d| !d.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| match out {
                Some(_) => PathBuf::from("."),
                None => std::env::temp_dir(),
            });
        let mut file = tempfile::Builder::new()
            // Hidden while it is staged for --values-out; a temporary file may be kept for the user.
            .prefix(if out.is_some() {
                ".duo-selfhost-helm-values-"
            } else {
                "duo-selfhost-helm-values-"
            })
            .suffix(".yaml")
            .tempfile_in(&dir)
            .map_err(|e| {
                Problem::user(format!(
                    "cannot write the values file in {}: {e}",
                    dir.display()
                ))
                .hint("pass --values-out with a path in a writable directory")
            })?;
        file.write_all(text.as_bytes())?;
        file.as_file().sync_all()?;
        match out {
            // Written whole, then renamed: the kept file is never half-written.
            Some(path) => {
                file.persist(path).map_err(|e| {
                    Problem::user(format!("cannot write {}: {}", path.display(), e.error))
                        .hint("pass --values-out with a path in a writable directory")
                })?;
                Ok(ValuesFile::Kept(path.to_path_buf()))
            }
            None => Ok(ValuesFile::Temporary(file.into_temp_path())),
        }
    }

    pub(super) fn path(&self) -> &Path {
        match self {
            ValuesFile::Kept(path) => path,
            ValuesFile::Temporary(path) => path,
        }
    }
}
