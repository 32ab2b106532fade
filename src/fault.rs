//! A hidden fault-injection hook for the reliability runs (RELIABILITY.md, issue 9 item 3):
//! with `DUO_SELFHOST_FAULT_KILL_AFTER=<step>` in the environment, the process kills itself
//! with SIGKILL right after that step of a container replacement, as `kill -9` or a power cut
//! would. It is no flag and not in `--help`: only tests and `scripts/fault-inject` set it, and
//! only a build with the `test-hooks` feature reads it.
//! The steps and their names live here, in one place; `docker` marks where each is reached.

use crate::error::Problem;

/// The environment variable that arms the hook.
pub const KILL_AFTER_VAR: &str = "DUO_SELFHOST_FAULT_KILL_AFTER";

/// The steps of `docker::replace_with_rollback` and of putting the previous container back,
/// in the order they happen. The names are stable: tests and scripts use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The old container is stopped.
    OldStopped,
    /// The old container is renamed to `<name>-previous`.
    OldRenamed,
    /// The new container is created under `<name>`, not started.
    NewCreated,
    /// The new container is started, not yet healthy.
    NewStarted,
    /// The new container is healthy; the old one is still there.
    NewHealthy,
    /// The old container is removed: the replacement is complete.
    OldRemoved,
    /// Putting the previous container back: whatever held `<name>` is removed.
    RestoreRemovedNew,
    /// Putting the previous container back: it is renamed back to `<name>`, not started.
    RestoreRenamedBack,
    /// Putting the previous container back: it is started again.
    RestoreStarted,
}

impl Step {
    pub const ALL: [Step; 9] = [
        Step::OldStopped,
        Step::OldRenamed,
        Step::NewCreated,
        Step::NewStarted,
        Step::NewHealthy,
        Step::OldRemoved,
        Step::RestoreRemovedNew,
        Step::RestoreRenamedBack,
        Step::RestoreStarted,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::OldStopped => "old-stopped",
            Step::OldRenamed => "old-renamed",
            Step::NewCreated => "new-created",
            Step::NewStarted => "new-started",
            Step::NewHealthy => "new-healthy",
            Step::OldRemoved => "old-removed",
            Step::RestoreRemovedNew => "restore-removed-new",
            Step::RestoreRenamedBack => "restore-renamed-back",
            Step::RestoreStarted => "restore-started",
        }
    }

    pub fn from_name(name: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|step| step.name() == name)
    }
}

/// The armed step's name. Only test builds (feature `test-hooks`, which the tests and
/// `scripts/fault-inject` build with) read it; a shipped binary is never armed.
fn armed_value() -> Option<String> {
    if !cfg!(feature = "test-hooks") {
        return None;
    }
    std::env::var(KILL_AFTER_VAR).ok().filter(|v| !v.is_empty())
}

/// Refuses a value that names no step (exit 2, listing the names), so that a typo cannot pass
/// for a run in which the fault simply never fired.
pub fn check_armed() -> Result<(), Problem> {
    match armed_value() {
        Some(value) if Step::from_name(&value).is_none() => {
            let names: Vec<&str> = Step::ALL.iter().map(|s| s.name()).collect();
            Err(Problem::tool(format!(
                "{KILL_AFTER_VAR}={value} names no step; the steps: {}",
                names.join(", ")
            ))
            .hint(format!(
                "unset {KILL_AFTER_VAR}, or set it to one of the steps"
            )))
        }
        _ => Ok(()),
    }
}

/// Marks `step` as done: when it is the armed one, the process dies here by SIGKILL, with no
/// cleanup of any kind.
pub fn reached(step: Step) {
    if armed_value().as_deref() != Some(step.name()) {
        return;
    }
    eprintln!(
        "fault injection: killing this process after step {}",
        step.name()
    );
    // SAFETY: kill(2) on our own pid with a constant signal; it does not return for SIGKILL.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_has_a_unique_name_that_reads_back() {
        for step in Step::ALL {
            assert_eq!(Step::from_name(step.name()), Some(step));
        }
        let mut names: Vec<&str> = Step::ALL.iter().map(|s| s.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Step::ALL.len());
        assert_eq!(Step::from_name("stopped"), None);
    }
}
