//! `duo-selfhost doctor`: gather the inputs (flags, then the state file, then gitlab.rb), run
//! every selected check concurrently, print one line per check with a hint under anything not
//! ok, and exit 0 (warnings allowed), 1 (a failure) or 2 (doctor could not run).

use std::sync::Arc;
use std::time::Duration;

use crate::cli::DoctorArgs;
use crate::doctor::{self, inputs, CheckResult, Context, Status, Summary};
use crate::error::{ExitStatus, Problem};
use crate::output::{Mark, Printer};
use crate::secret::scrub;

pub fn run(args: DoctorArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let checks = doctor::checks::CHECKS;
    let selection = doctor::select(checks, &args.only, &args.skip).map_err(|message| {
        // Doctor cannot run what was asked: exit 2, like any other unusable command line.
        Problem::tool(message).hint("pass ids or prefixes such as gateway.* to --only and --skip")
    })?;
    if args.timeout == 0 {
        return Err(Problem::tool("--timeout must be at least 1 second")
            .hint("--timeout 10")
            .into());
    }
    let state_path = crate::state::resolve_path(args.state_file.as_deref());
    let state = crate::state::load(&state_path)?;
    let rb_values = read_gitlab_rb(&args.gitlab_rb, state.as_ref());
    let flags = inputs::Flags {
        gitlab_url: args.gitlab_url,
        gitlab_token: args.gitlab_token,
        gitlab_rb: args.gitlab_rb,
        envdir: Some(doctor::gitlab::envdir()),
        gateway_url: args.gateway_url,
        container: args.container,
        model_endpoint: args.model_endpoint,
        model_identifier: args.model_identifier,
        model_api_key: args.model_api_key,
        ca_cert: args.ca_cert,
    };
    let inputs = inputs::resolve(flags, state.as_ref(), rb_values.as_ref());
    let secrets: Vec<crate::secret::Secret> = inputs.secrets().into_iter().cloned().collect();
    let ctx = Arc::new(Context::new(inputs));
    let mut results = doctor::run_all(checks, &selection, ctx, Duration::from_secs(args.timeout))?;
    // Belt and braces: no token or key reaches the output, whatever a peer echoed back.
    // Very short values (a placeholder such as "x") would blot out ordinary words.
    let secret_refs: Vec<&crate::secret::Secret> =
        secrets.iter().filter(|s| s.expose().len() >= 6).collect();
    for result in &mut results {
        result.message = scrub(&result.message, &secret_refs);
        result.hint = result.hint.as_deref().map(|h| scrub(h, &secret_refs));
    }

    if printer.json {
        printer.json_document(&doctor::json_report(&results));
    } else {
        print_human(printer, &results);
    }
    let summary = Summary::of(&results);
    if !printer.json && summary.fail + summary.error > 0 {
        // GitLab's own scripts see the halves of the chain doctor cannot (Rails, the seat).
        printer.info("GitLab's own checks: sudo gitlab-rake \"gitlab:duo:verify_self_hosted_setup[<user>]\" on the GitLab host; docker exec -it <gateway container> poetry run troubleshoot in the gateway");
    }
    let failed = summary.fail + summary.error > 0 || (args.strict && summary.warn > 0);
    Ok(if failed {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

fn mark_of(status: Status) -> Mark {
    match status {
        Status::Ok => Mark::Ok,
        Status::Warn => Mark::Warn,
        Status::Fail => Mark::Fail,
        Status::Skip => Mark::Skip,
        Status::Error => Mark::Error,
    }
}

/// One line per check, `hint:` under anything not ok, then the summary.
fn print_human(printer: &Printer, results: &[CheckResult]) {
    let width = results.iter().map(|r| r.id.len()).max().unwrap_or(0);
    for result in results {
        printer.result(format!(
            "{} {:<width$}  {}",
            printer.mark(mark_of(result.status)),
            result.id,
            result.message
        ));
        if let Some(hint) = result
            .hint
            .as_deref()
            .filter(|_| result.status != Status::Ok)
        {
            printer.result(format!("  {:<width$}  hint: {hint}", ""));
        }
    }
    printer.result("");
    printer.result(Summary::of(results).line());
}

/// external_url and gitlab_rails['env'] from gitlab.rb, when it can be read; the
/// `gitlab_rb.*` checks report why when it cannot.
fn read_gitlab_rb(
    flag: &std::path::Path,
    state: Option<&crate::state::State>,
) -> Option<inputs::GitlabRbValues> {
    let (path, _) = inputs::gitlab_rb_path(flag, state);
    let text = std::fs::read_to_string(path).ok()?;
    Some(inputs::GitlabRbValues {
        external_url: crate::gitlab_rb::external_url(&text),
        env: crate::gitlab_rb::effective_env(&text)
            .map(|env| env.0.into_iter().collect())
            .unwrap_or_default(),
    })
}
