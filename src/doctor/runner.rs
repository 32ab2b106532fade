//! Runs a selection of checks concurrently: each starts once what it waits for has started,
//! gets its own deadline within the run's, and ends as a result, whether it passes, fails,
//! panics, hangs or blocks its thread. What the checks are is `checks`; printing is the command's.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt, Shared};

use super::{
    status_word, Budget, Check, CheckResult, Context, Outcome, Selection, Status, RUN_MARGIN,
};
use crate::units::seconds_text;

type SharedResult = Shared<BoxFuture<'static, CheckResult>>;

/// Runs `checks` concurrently on the current tokio runtime and sends each result with its index
/// in `checks`. A check waits for those it names that are in `checks` (a cycle, which the list
/// does not have, would leave its members unsent and so abandoned). Each body gets at most
/// `per_check`, and no more than the run's deadline leaves it; a panic becomes an `error`.
///
/// The caller enforces the run's outer bound (see [`run_all`]), because a body that blocks a
/// thread cannot be cut off from inside the runtime.
pub fn spawn_checks(
    checks: &[Check],
    ctx: Arc<Context>,
    per_check: Duration,
    deadline: Instant,
    sink: std::sync::mpsc::Sender<(usize, CheckResult)>,
) {
    let mut started: HashMap<&'static str, SharedResult> = HashMap::new();
    let present: HashSet<&'static str> = checks.iter().map(|c| c.id).collect();
    // Start checks once what they wait for has started, whatever the printing order.
    let mut waiting: Vec<(usize, Check)> = checks.iter().copied().enumerate().collect();
    let mut ready: Vec<(usize, Check)> = Vec::new();
    let mut ordered: HashSet<&'static str> = HashSet::new();
    loop {
        let (now, later): (Vec<_>, Vec<_>) = waiting.into_iter().partition(|(_, check)| {
            check
                .needs
                .iter()
                .chain(check.after)
                .all(|dep| !present.contains(dep) || ordered.contains(dep))
        });
        waiting = later;
        if now.is_empty() {
            break;
        }
        ordered.extend(now.iter().map(|(_, c)| c.id));
        ready.extend(now);
    }
    for (index, check) in ready {
        let hard: Vec<(&'static str, SharedResult)> = check
            .needs
            .iter()
            .filter_map(|id| started.get(id).map(|f| (*id, f.clone())))
            .collect();
        let soft: Vec<SharedResult> = check
            .after
            .iter()
            .filter_map(|id| started.get(id).cloned())
            .collect();
        let ctx = ctx.clone();
        let body = async move {
            for (dep_id, dep) in hard {
                let dep_result = dep.await;
                if !dep_result.status.lets_dependents_run() {
                    return CheckResult {
                        id: check.id,
                        title: check.title,
                        status: Status::Skip,
                        // A skip passes its root reason on; a failure is printed above.
                        message: if dep_result.status == Status::Skip {
                            dep_result.message.clone()
                        } else {
                            format!("needs {dep_id}, which {}", status_word(dep_result.status))
                        },
                        hint: None,
                        duration_ms: 0,
                        details: None,
                    };
                }
            }
            for dep in soft {
                dep.await;
            }
            run_one(check, ctx, per_check, deadline).await
        }
        .boxed()
        .shared();
        started.insert(check.id, body.clone());
        let sink = sink.clone();
        tokio::spawn(async move {
            let result = body.await;
            let _ = sink.send((index, result));
        });
    }
}

async fn run_one(
    check: Check,
    ctx: Arc<Context>,
    per_check: Duration,
    run_deadline: Instant,
) -> CheckResult {
    let start = Instant::now();
    let deadline = (start + per_check).min(run_deadline);
    let budget = Budget { deadline };
    let body = AssertUnwindSafe(async move { (check.run)(ctx, budget).await }).catch_unwind();
    let outcome = match tokio::time::timeout_at(deadline.into(), body).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(panic)) => Outcome {
            status: Status::Error,
            message: format!("the check crashed: {}", panic_text(panic.as_ref())),
            hint: Some(
                "this is a bug in duo-selfhost: please report it with the output of `duo-selfhost doctor -v`"
                    .into(),
            ),
            details: None,
        },
        Err(_) => Outcome {
            status: Status::Error,
            message: format!(
                "the check did not finish within {}",
                seconds_text(deadline.saturating_duration_since(start))
            ),
            hint: Some("raise --timeout, or re-run with --skip for this check".into()),
            details: None,
        },
    };
    CheckResult {
        id: check.id,
        title: check.title,
        status: outcome.status,
        message: outcome.message,
        hint: outcome.hint,
        duration_ms: start.elapsed().as_millis() as u64,
        details: outcome.details,
    }
}

/// Runs the selected checks on their own runtime and returns every selected result in list
/// order, within `per_check` plus [`RUN_MARGIN`] whatever the checks do.
pub fn run_all(
    checks: &[Check],
    selection: &Selection,
    ctx: Arc<Context>,
    per_check: Duration,
) -> anyhow::Result<Vec<CheckResult>> {
    let to_run: Vec<Check> = checks
        .iter()
        .copied()
        .filter(|c| selection.run.contains(c.id))
        .collect();
    let runtime = crate::runtime::own_runtime()?;
    let start = Instant::now();
    let check_deadline = start + per_check;
    let outer_deadline = check_deadline + RUN_MARGIN;
    let (sink, results) = std::sync::mpsc::channel();
    {
        let _guard = runtime.enter();
        spawn_checks(&to_run, ctx, per_check, check_deadline, sink);
    }
    // Collected on this thread with a plain clock: a check that blocks every worker thread
    // cannot stop the run from ending on time.
    let mut finished: Vec<Option<CheckResult>> = vec![None; to_run.len()];
    let mut remaining = to_run.len();
    while remaining > 0 {
        let left = outer_deadline.saturating_duration_since(Instant::now());
        match results.recv_timeout(left) {
            Ok((index, result)) => {
                if finished[index].is_none() {
                    remaining -= 1;
                }
                finished[index] = Some(result);
            }
            Err(_) => break,
        }
    }
    runtime.shutdown_background();
    let elapsed = start.elapsed().as_millis() as u64;
    Ok(to_run
        .iter()
        .zip(finished)
        .filter(|(check, _)| selection.print.contains(check.id))
        .map(|(check, result)| {
            result.unwrap_or_else(|| CheckResult {
                id: check.id,
                title: check.title,
                status: Status::Error,
                message: format!(
                    "the check did not finish within the run's {} and was abandoned",
                    seconds_text(per_check + RUN_MARGIN)
                ),
                hint: Some("raise --timeout, or re-run with --skip for this check".into()),
                duration_ms: elapsed,
                details: None,
            })
        })
        .collect())
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".into()
    }
}

/// Small checks for the runner's and the selection's tests.
#[cfg(test)]
pub(super) mod test_checks {
    pub use super::super::{
        run_all, select, Budget, Check, CheckFuture, CheckResult, Context, Inputs, Outcome,
    };
    pub use std::sync::Arc;
    pub use std::time::Duration;

    pub fn ok_body(_: Arc<Context>, _: Budget) -> CheckFuture {
        Box::pin(async { Outcome::ok("fine") })
    }
    pub fn fail_body(_: Arc<Context>, _: Budget) -> CheckFuture {
        Box::pin(async { Outcome::fail("broken", "fix it") })
    }
    pub fn panic_body(_: Arc<Context>, _: Budget) -> CheckFuture {
        Box::pin(async { panic!("boom") })
    }
    pub fn hang_body(_: Arc<Context>, _: Budget) -> CheckFuture {
        Box::pin(std::future::pending())
    }
    pub fn block_body(_: Arc<Context>, _: Budget) -> CheckFuture {
        // Blocks its worker thread outright, as a careless synchronous call would.
        Box::pin(async {
            std::thread::sleep(Duration::from_secs(30));
            Outcome::ok("woke up")
        })
    }

    pub const fn check(
        id: &'static str,
        needs: &'static [&'static str],
        run: fn(Arc<Context>, Budget) -> CheckFuture,
    ) -> Check {
        Check {
            id,
            title: id,
            needs,
            after: &[],
            run,
        }
    }

    pub fn run(checks: &[Check], per_check: Duration) -> Vec<CheckResult> {
        let selection = select(checks, &[], &[]).unwrap();
        let ctx = Arc::new(Context::new(Inputs::default()));
        run_all(checks, &selection, ctx, per_check).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_checks::*;
    use super::*;

    #[test]
    fn panics_and_hangs_become_errors_within_the_budget() {
        let checks = [
            check("a.ok", &[], ok_body),
            check("a.panic", &[], panic_body),
            check("a.hang", &[], hang_body),
            check("a.block", &[], block_body),
            check("a.block2", &[], block_body),
            check("a.after_block", &["a.block"], ok_body),
        ];
        let start = Instant::now();
        let results = run(&checks, Duration::from_millis(800));
        assert!(
            start.elapsed() < Duration::from_millis(800) + RUN_MARGIN + Duration::from_millis(500)
        );
        let statuses: Vec<(&str, Status)> = results.iter().map(|r| (r.id, r.status)).collect();
        assert_eq!(
            statuses,
            vec![
                ("a.ok", Status::Ok),
                ("a.panic", Status::Error),
                ("a.hang", Status::Error),
                ("a.block", Status::Error),
                ("a.block2", Status::Error),
                ("a.after_block", Status::Error),
            ]
        );
        assert!(results[1].message.contains("boom"), "{:?}", results[1]);
        assert!(results[2].message.contains("did not finish"));
    }

    #[test]
    fn a_failed_dependency_skips_with_its_reason() {
        let checks = [
            check("x.base", &[], fail_body),
            check("x.next", &["x.base"], ok_body),
        ];
        let results = run(&checks, Duration::from_secs(2));
        assert_eq!(results[1].status, Status::Skip);
        assert_eq!(results[1].message, "needs x.base, which failed");
        // Printing order does not have to follow the dependencies.
        let checks = [
            check("x.next", &["x.base"], ok_body),
            check("x.base", &[], fail_body),
        ];
        let results = run(&checks, Duration::from_secs(2));
        assert_eq!(results[0].message, "needs x.base, which failed");
    }
}
