//! Runs the external tools (helm, kubectl, openssl) as child processes: a command's output
//! streams under a spinner, a hard deadline backs up the tool's own timeout, and a failure keeps
//! the tool's stderr so the error can show it. Knows nothing about what the commands mean.

use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::report::Report;

/// One external command: a program found on PATH and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
}

impl Cmd {
    pub fn new<I, S>(program: &str, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd {
            program: program.to_string(),
            args: args.into_iter().map(Into::into).collect(),
        }
    }
}

impl fmt::Display for Cmd {
    /// The command as a user would type it in a POSIX shell.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shell_quote(&self.program))?;
        for arg in &self.args {
            write!(f, " {}", shell_quote(arg))?;
        }
        Ok(())
    }
}

/// Quotes a word for a POSIX shell only when it needs it.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '/' | ':' | '=' | ',' | '+' | '@' | '%')
        });
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// What a finished command left behind.
#[derive(Debug, Clone)]
pub struct Captured {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Captured {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The last lines of stderr (or stdout when stderr is empty), for an error message.
    pub fn tail(&self, lines: usize) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// Why a command did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("`{program}` was not found on PATH")]
    NotFound { program: String },
    #[error("`{command}` did not finish within {seconds} s and was stopped")]
    Deadline { command: String, seconds: u64 },
    #[error("could not run `{command}`: {source}")]
    Io {
        command: String,
        #[source]
        source: std::io::Error,
    },
}

/// How to show a command's output while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// Nothing: a quick query whose output is parsed.
    Nothing,
    /// Each line under the spinner and, with `-v`, on stderr.
    Stream,
    /// Only stderr: stdout carries something that must not be shown (a Secret manifest).
    StderrOnly,
}

/// Runs `cmd` to completion, feeding it `stdin`, stopping it (and anything it started) after
/// `deadline`. Output lines go to `spinner_message` as they arrive, per `show`.
pub fn run(
    cmd: &Cmd,
    stdin: Option<&[u8]>,
    deadline: Duration,
    show: Show,
    report: &dyn Report,
    spinner: Option<&indicatif::ProgressBar>,
) -> Result<Captured, RunError> {
    let command_text = cmd.to_string();
    let mut command = Command::new(&cmd.program);
    command
        .args(&cmd.args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a deadline stops helm's children too, not only helm.
        .process_group(0);
    let mut child = command.spawn().map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            RunError::NotFound {
                program: cmd.program.clone(),
            }
        } else {
            RunError::Io {
                command: command_text.clone(),
                source,
            }
        }
    })?;

    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let bytes = bytes.to_vec();
        // A writer thread: a large manifest must not deadlock against a full stdout pipe.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }

    let (tx, rx) = mpsc::channel::<(bool, String)>();
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .enumerate()
    .filter_map(|(i, pipe)| pipe.map(|p| (i == 1, p)))
    .map(|(is_stderr, pipe)| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).split(b'\n') {
                let Ok(line) = line else { break };
                let text = String::from_utf8_lossy(&line)
                    .trim_end_matches('\r')
                    .to_string();
                if tx.send((is_stderr, text)).is_err() {
                    break;
                }
            }
        })
    })
    .collect();
    drop(tx);

    let started = Instant::now();
    let mut stdout = String::new();
    let mut stderr = String::new();
    let mut stopped = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok((is_stderr, line)) => {
                let visible = match show {
                    Show::Nothing => false,
                    Show::Stream => true,
                    Show::StderrOnly => is_stderr,
                };
                if visible && !line.trim().is_empty() {
                    if let Some(spinner) = spinner {
                        spinner.set_message(last_line_message(&line));
                    }
                    report.detail(&format!("  {line}"));
                }
                let buffer = if is_stderr { &mut stderr } else { &mut stdout };
                buffer.push_str(&line);
                buffer.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if !stopped && started.elapsed() >= deadline {
                    stop_group(child.id());
                    stopped = true;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    for reader in readers {
        let _ = reader.join();
    }
    let status = child.wait().map_err(|source| RunError::Io {
        command: command_text.clone(),
        source,
    })?;
    if stopped {
        return Err(RunError::Deadline {
            command: command_text,
            seconds: deadline.as_secs(),
        });
    }
    Ok(Captured {
        code: status.code(),
        stdout,
        stderr,
    })
}

/// A short query: no output shown, a fixed deadline.
pub fn query(cmd: &Cmd, deadline: Duration, report: &dyn Report) -> Result<Captured, RunError> {
    run(cmd, None, deadline, Show::Nothing, report, None)
}

fn stop_group(pid: u32) {
    // SAFETY: kill has no memory-safety preconditions; a negative pid names the process group
    // the child leads (process_group(0) above), so helm's own children stop with it.
    unsafe {
        libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
    }
}

/// A line short enough for a spinner.
fn last_line_message(line: &str) -> String {
    let line = line.trim();
    let mut short: String = line.chars().take(100).collect();
    if short.len() < line.len() {
        short.push('…');
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_what_needs_it() {
        let cmd = Cmd::new(
            "helm",
            ["repo", "add", "x", "https://a/b%2fc", "--set=a b", "it's"],
        );
        assert_eq!(
            cmd.to_string(),
            r#"helm repo add x https://a/b%2fc '--set=a b' 'it'\''s'"#
        );
    }

    #[test]
    fn runs_and_captures_both_streams() {
        let cmd = Cmd::new("sh", ["-c", "cat; echo err >&2; exit 3"]);
        let out = run(
            &cmd,
            Some(b"in\n"),
            Duration::from_secs(10),
            Show::Nothing,
            &crate::report::Silent,
            None,
        )
        .unwrap();
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, "in\n");
        assert_eq!(out.tail(5), "err");
    }

    #[test]
    fn deadline_stops_the_whole_group() {
        let cmd = Cmd::new("sh", ["-c", "sleep 30 & sleep 30; wait"]);
        let started = Instant::now();
        let err = query(&cmd, Duration::from_millis(300), &crate::report::Silent).unwrap_err();
        assert!(matches!(err, RunError::Deadline { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn missing_program_is_named() {
        let cmd = Cmd::new("duo-selfhost-no-such-tool", Vec::<String>::new());
        let err = query(&cmd, Duration::from_secs(1), &crate::report::Silent).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`duo-selfhost-no-such-tool` was not found on PATH"
        );
    }
}
