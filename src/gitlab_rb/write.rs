//! Writing gitlab.rb safely: a unified diff for review, a backup beside the file, a temporary
//! file in the same directory checked with `ruby -c`, then rename and directory fsync; and
//! `gitlab-ctl reconfigure` with a check of the values it rendered.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context;

use super::env::EnvChange;
use crate::error::Problem;
use crate::programs::find_on_path_or_omnibus;
use crate::report::Report;

/// Overrides `/opt/gitlab/etc/gitlab-rails/env` in test builds only (feature `test-hooks`).
pub const ENVDIR_OVERRIDE_VAR: &str = "DUO_SELFHOST_GITLAB_ENVDIR";
const DEFAULT_ENVDIR: &str = "/opt/gitlab/etc/gitlab-rails/env";

/// Where reconfigure renders `gitlab_rails['env']`, one file per variable. Test builds read a
/// stand-in directory from `DUO_SELFHOST_GITLAB_ENVDIR`; a shipped binary has no such hook.
pub fn rendered_envdir() -> PathBuf {
    #[cfg(feature = "test-hooks")]
    if let Some(dir) = std::env::var_os(ENVDIR_OVERRIDE_VAR) {
        return PathBuf::from(dir);
    }
    PathBuf::from(DEFAULT_ENVDIR)
}

const DIFF_CONTEXT: usize = 3;

/// A unified diff of gitlab.rb before and after, with three lines of context.
///
/// An edit changes one block of a file of thousands of lines, so only the lines between the
/// common head and the common tail (plus the context) go through the diff algorithm; the hunk
/// headers are then moved by the lines left out. The output is the same as diffing the whole
/// file, in a fraction of the time.
pub fn unified_diff(label: &str, old: &str, new: &str) -> String {
    let (skipped_lines, old_window, new_window) = changed_window(old, new, DIFF_CONTEXT);
    let diff = similar::TextDiff::from_lines(old_window, new_window)
        .unified_diff()
        .context_radius(DIFF_CONTEXT)
        .header(label, label)
        .to_string();
    if skipped_lines == 0 {
        return diff;
    }
    diff.split_inclusive('\n')
        .map(|line| match shift_hunk_header(line, skipped_lines) {
            Some(shifted) => shifted,
            None => line.to_string(),
        })
        .collect()
}

/// The part of `old` and `new` that differs, widened by `context` whole lines on each side,
/// and the number of lines before it (the same in both).
fn changed_window<'a>(old: &'a str, new: &'a str, context: usize) -> (usize, &'a str, &'a str) {
    let (a, b) = (old.as_bytes(), new.as_bytes());
    let head = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let room = a.len().min(b.len()) - head;
    let tail = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(room)
        .take_while(|(x, y)| x == y)
        .count();
    // Back to the start of the line holding the first difference, then `context` lines more.
    let mut start = a[..head]
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |i| i + 1);
    for _ in 0..context {
        if start == 0 {
            break;
        }
        start = a[..start - 1]
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |i| i + 1);
    }
    // Forward past the end of the line holding the last difference, then `context` lines more.
    let line_end = |text: &[u8], from: usize| {
        text[from..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(text.len(), |i| from + i + 1)
    };
    let (mut old_end, mut new_end) = (line_end(a, a.len() - tail), line_end(b, b.len() - tail));
    for _ in 0..context {
        old_end = line_end(a, old_end);
        new_end = line_end(b, new_end);
    }
    let skipped = a[..start].iter().filter(|&&c| c == b'\n').count();
    // Every cut is just after a newline (or at an end), so it is a char boundary.
    (skipped, &old[start..old_end], &new[start..new_end])
}

/// `@@ -a,b +c,d @@` with `lines` added to both starts; None for any other line.
fn shift_hunk_header(line: &str, lines: usize) -> Option<String> {
    let ranges = line.strip_prefix("@@ -")?.strip_suffix(" @@\n")?;
    let (old_range, new_range) = ranges.split_once(" +")?;
    let shift = |range: &str| -> Option<String> {
        let (start, len) = match range.split_once(',') {
            Some((start, len)) => (start, Some(len)),
            None => (range, None),
        };
        let start = start.parse::<usize>().ok()? + lines;
        Some(match len {
            Some(len) => format!("{start},{len}"),
            None => start.to_string(),
        })
    };
    Some(format!(
        "@@ -{} +{} @@\n",
        shift(old_range)?,
        shift(new_range)?
    ))
}

/// A step hook: gets the temporary file's path; an error aborts the write.
pub type WriteHook = Box<dyn Fn(&Path) -> io::Result<()>>;

/// Test hooks into [`write_atomically`]: each runs at its step and may fail it.
#[derive(Default)]
pub struct WriteHooks {
    /// Runs after the temporary file is written and checked, just before the rename.
    pub before_rename: Option<WriteHook>,
}

/// The result of `ruby -c` on the new content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RubyCheck {
    Passed,
    /// No Ruby: not on PATH, and no omnibus GitLab here.
    Skipped,
    Failed(String),
}

/// Runs `ruby -c FILE` when a Ruby is found (PATH, then omnibus GitLab's).
pub fn ruby_syntax_check(file: &Path) -> RubyCheck {
    RubySyntaxCheck::start(file).finish()
}

/// `ruby -c FILE` running beside the caller: Ruby's start-up takes longer than the rest of an
/// edit, so the write starts it as soon as the new content is on disk and collects the verdict
/// just before the rename. Dropped unfinished, the child is killed and reaped.
pub struct RubySyntaxCheck {
    child: Option<Child>,
    file: PathBuf,
    verdict: Option<RubyCheck>,
}

impl RubySyntaxCheck {
    pub fn start(file: &Path) -> Self {
        let mut check = RubySyntaxCheck {
            child: None,
            file: file.to_path_buf(),
            verdict: None,
        };
        let Some(ruby) = find_on_path_or_omnibus("ruby", "/opt/gitlab/embedded/bin/ruby") else {
            check.verdict = Some(RubyCheck::Skipped);
            return check;
        };
        // Without RubyGems Ruby starts in a fraction of the time; a syntax check needs no gems.
        match Command::new(ruby)
            .arg("--disable-gems")
            .arg("-c")
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(child) => check.child = Some(child),
            Err(e) => check.verdict = Some(RubyCheck::Failed(format!("could not run ruby: {e}"))),
        }
        check
    }

    /// Waits for ruby and returns its verdict.
    pub fn finish(mut self) -> RubyCheck {
        if let Some(verdict) = self.verdict.take() {
            return verdict;
        }
        let Some(child) = self.child.take() else {
            return RubyCheck::Skipped;
        };
        match child.wait_with_output() {
            Ok(out) if out.status.success() => RubyCheck::Passed,
            Ok(out) => RubyCheck::Failed(
                String::from_utf8_lossy(&out.stderr)
                    .replace(&self.file.display().to_string(), "gitlab.rb")
                    .trim()
                    .to_string(),
            ),
            Err(e) => RubyCheck::Failed(format!("could not run ruby: {e}")),
        }
    }
}

impl Drop for RubySyntaxCheck {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `gitlab.rb.duo-selfhost-<UTC timestamp>.bak` beside `target`.
pub fn backup_path_for(target: &Path, now: time::OffsetDateTime) -> PathBuf {
    let stamp = now
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_else(|_| "unknown-time".into());
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "gitlab.rb".into());
    target.with_file_name(format!("{name}.duo-selfhost-{stamp}.bak"))
}

fn io_problem(what: String, e: io::Error) -> anyhow::Error {
    if e.kind() == io::ErrorKind::PermissionDenied {
        Problem::user(format!("{what}: permission denied"))
            .hint("run it as root: sudo duo-selfhost ...")
            .into()
    } else {
        anyhow::Error::new(e).context(what)
    }
}

/// The saved copy of the file being replaced.
struct Backup {
    path: PathBuf,
    /// A hard link to the target's own inode rather than a copy: it becomes the backup only once
    /// the new file is renamed over the target, so it must be undone if the edit stops before.
    linked: bool,
}

impl Backup {
    /// Saves `target` (whose bytes are `content`) beside it under a name that never overwrites
    /// an existing file. A hard link costs no copy and no flush: the old inode is already on
    /// disk, and the directory fsync that makes the rename durable makes the link durable too.
    /// Where links are refused (some filesystems), it writes and flushes a copy instead.
    fn save(target: &Path, content: &[u8]) -> anyhow::Result<Backup> {
        let base = backup_path_for(target, time::OffsetDateTime::now_utc());
        let mut link_refused = false;
        for attempt in 0..100 {
            // Two writes in the same second get -1, -2... before the extension.
            let candidate = if attempt == 0 {
                base.clone()
            } else {
                let name = base.file_name().unwrap_or_default().to_string_lossy();
                let stem = name.strip_suffix(".bak").unwrap_or(&name);
                base.with_file_name(format!("{stem}-{attempt}.bak"))
            };
            if !link_refused {
                match fs::hard_link(target, &candidate) {
                    Ok(()) => {
                        return Ok(Backup {
                            path: candidate,
                            linked: true,
                        })
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(_) => link_refused = true,
                }
            }
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&candidate)
            {
                Ok(mut file) => {
                    file.write_all(content)
                        .and_then(|_| file.sync_all())
                        .map_err(|e| {
                            io_problem(format!("cannot write backup {}", candidate.display()), e)
                        })?;
                    return Ok(Backup {
                        path: candidate,
                        linked: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(io_problem(
                        format!("cannot create backup {}", candidate.display()),
                        e,
                    ))
                }
            }
        }
        anyhow::bail!("too many backups named {}*", base.display())
    }

    /// The edit stopped before the rename: a link still names the untouched original, so it
    /// goes (a copy stays, as a backup written before the attempt).
    fn abandon(&self) {
        if self.linked {
            let _ = fs::remove_file(&self.path);
        }
    }

    /// After the rename the backup is the only name of the old content, which may hold
    /// secrets: readable by its owner only, as a copied backup is.
    fn finish(self) -> PathBuf {
        if self.linked {
            let _ = fs::set_permissions(&self.path, fs::Permissions::from_mode(0o600));
        }
        self.path
    }
}

/// Replaces `target` (not a symlink: resolve it first) with `new`, atomically: checks the file
/// still holds `expected_old`, writes a temporary file in the same directory with the same mode
/// and owner, saves a backup while `ruby -c` checks the temporary file, renames it over the
/// target and fsyncs the directory. Returns the backup's path. On any failure the original is intact.
pub fn write_atomically(
    target: &Path,
    expected_old: &str,
    new: &str,
    hooks: &WriteHooks,
) -> anyhow::Result<PathBuf> {
    let current =
        fs::read(target).map_err(|e| io_problem(format!("cannot read {}", target.display()), e))?;
    if current != expected_old.as_bytes() {
        return Err(Problem::user(format!(
            "{} changed while duo-selfhost was editing it",
            target.display()
        ))
        .hint("run the command again")
        .into());
    }
    let meta = fs::metadata(target)
        .map_err(|e| io_problem(format!("cannot stat {}", target.display()), e))?;
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));

    let mut temp = tempfile::Builder::new()
        .prefix(".gitlab.rb.duo-selfhost-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| {
            io_problem(
                format!("cannot create a temporary file in {}", dir.display()),
                e,
            )
        })?;
    temp.write_all(new.as_bytes())
        .and_then(|_| {
            temp.as_file()
                .set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))
        })
        .map_err(|e| {
            io_problem(
                format!("cannot write a temporary file in {}", dir.display()),
                e,
            )
        })?;
    let temp_meta = temp.as_file().metadata()?;
    if temp_meta.uid() != meta.uid() || temp_meta.gid() != meta.gid() {
        fchown(temp.as_file(), meta.uid(), meta.gid()).map_err(|e| {
            io_problem(
                format!(
                    "cannot give the new {} its owner {}:{}",
                    target.display(),
                    meta.uid(),
                    meta.gid()
                ),
                e,
            )
        })?;
    }
    // The content is written: ruby can read it while the backup and the flushes go on.
    let syntax_check = RubySyntaxCheck::start(temp.path());
    let backup = Backup::save(target, &current)?;
    let replaced = (|| -> anyhow::Result<()> {
        temp.as_file()
            .sync_all()
            .with_context(|| format!("cannot flush a temporary file in {}", dir.display()))?;
        if let RubyCheck::Failed(message) = syntax_check.finish() {
            return Err(Problem::user(format!(
                "refusing to write {}: `ruby -c` rejects the edited file: {message}",
                target.display()
            ))
            .hint("the file was not changed; check the lines around gitlab_rails['env']")
            .into());
        }
        if let Some(hook) = &hooks.before_rename {
            hook(temp.path()).with_context(|| {
                format!(
                    "writing {} failed; the file was not changed",
                    target.display()
                )
            })?;
        }
        temp.persist(target).map_err(|e| {
            io_problem(
                format!(
                    "cannot replace {} (the file was not changed)",
                    target.display()
                ),
                e.error,
            )
        })?;
        Ok(())
    })();
    if let Err(e) = replaced {
        backup.abandon();
        return Err(e);
    }
    let backup = backup.finish();
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot flush directory {}", dir.display()))?;
    Ok(backup)
}

fn fchown(file: &File, uid: u32, gid: u32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: fchown on a file descriptor we own; no memory is shared with the call.
    let rc = unsafe { libc::fchown(file.as_raw_fd(), uid, gid) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Where `gitlab-ctl` is: on PATH, else omnibus's own bin directory.
pub fn find_gitlab_ctl() -> anyhow::Result<PathBuf> {
    find_on_path_or_omnibus("gitlab-ctl", "/opt/gitlab/bin/gitlab-ctl").ok_or_else(|| {
        Problem::user("`gitlab-ctl` was not found: this host does not look like an omnibus GitLab")
            .hint(
                "run `sudo gitlab-ctl reconfigure` on the GitLab host, or leave out --reconfigure",
            )
            .into()
    })
}

/// Runs `gitlab-ctl reconfigure`, its output streamed to stderr (stdout stays for results).
pub fn reconfigure(report: &dyn Report) -> anyhow::Result<()> {
    let gitlab_ctl = find_gitlab_ctl()?;
    report.info(&format!("running {} reconfigure", gitlab_ctl.display()));
    let stdout_to_stderr: Stdio = {
        use std::os::fd::AsFd;
        std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::inherit())
    };
    let status = Command::new(&gitlab_ctl)
        .arg("reconfigure")
        .stdin(Stdio::null())
        .stdout(stdout_to_stderr)
        .stderr(Stdio::inherit())
        .status()
        .with_context(|| format!("cannot run {}", gitlab_ctl.display()))?;
    if !status.success() {
        return Err(Problem::user(format!(
            "`gitlab-ctl reconfigure` failed ({status})"
        ))
        .hint("read its output above; `sudo gitlab-ctl reconfigure` runs it again, and the backup beside gitlab.rb holds the previous file")
        .into());
    }
    Ok(())
}

/// Checks the env files reconfigure rendered hold the values just set.
pub fn verify_rendered_env(changes: &[EnvChange]) -> anyhow::Result<()> {
    let dir = rendered_envdir();
    for change in changes {
        let EnvChange::Set { key, value } = change else {
            // Omnibus's own defaults may still render a removed key; nothing to check.
            continue;
        };
        let file = dir.join(key);
        let rendered = fs::read_to_string(&file);
        let matches = rendered
            .as_deref()
            .map(|r| r.strip_suffix('\n').unwrap_or(r) == value)
            .unwrap_or(false);
        if !matches {
            let found = match rendered {
                Ok(_) => "a different value".to_string(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => "no such file".to_string(),
                Err(e) => e.to_string(),
            };
            return Err(Problem::user(format!(
                "after reconfigure, {} does not hold the value set for {key} ({found})",
                file.display()
            ))
            .hint("check that gitlab.rb is the file omnibus reads (/etc/gitlab/gitlab.rb), then run `sudo gitlab-ctl reconfigure`")
            .into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn whole_file_diff(old: &str, new: &str) -> String {
        similar::TextDiff::from_lines(old, new)
            .unified_diff()
            .context_radius(DIFF_CONTEXT)
            .header("gitlab.rb", "gitlab.rb")
            .to_string()
    }

    /// Distinct lines: where a file repeats lines, the diff algorithm may pair them up
    /// differently in a window than in the whole file (both diffs right, the text not equal).
    fn lines(tag: &'static str) -> impl Strategy<Value = Vec<String>> {
        (0usize..40).prop_map(move |n| (0..n).map(|i| format!("{tag} {i}")).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn the_windowed_diff_equals_the_whole_file_diff(
            base in lines("line"),
            at in 0usize..45,
            removed in 0usize..6,
            added in lines("new"),
            old_newline in any::<bool>(),
            new_newline in any::<bool>(),
        ) {
            let at = at.min(base.len());
            let removed = removed.min(base.len() - at);
            let mut edited = base.clone();
            edited.splice(at..at + removed, added.into_iter().take(5));
            let join = |v: &[String], newline: bool| {
                let mut text = v.join("\n");
                if newline && !text.is_empty() {
                    text.push('\n');
                }
                text
            };
            let (old, new) = (join(&base, old_newline), join(&edited, new_newline));
            prop_assert_eq!(unified_diff("gitlab.rb", &old, &new), whole_file_diff(&old, &new));
        }
    }

    #[test]
    fn an_edit_of_the_omnibus_template_diffs_as_before() {
        let path = crate::test_support::shared_file("fixtures/gitlab.rb.template");
        let old = std::fs::read_to_string(path).unwrap();
        let new = crate::gitlab_rb::plan_edit(
            &old,
            &[EnvChange::set("AI_GATEWAY_URL", "http://aigw:5052")],
        )
        .unwrap()
        .expect("the template has no gateway URL yet");
        let diff = unified_diff("gitlab.rb", &old, &new);
        assert_eq!(diff, whole_file_diff(&old, &new));
        assert!(
            diff.contains("+  'AI_GATEWAY_URL' => 'http://aigw:5052'"),
            "{diff}"
        );
    }
}
