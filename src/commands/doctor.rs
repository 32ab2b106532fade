//! `duo-selfhost doctor`: gather the inputs (flags, then the state file, then gitlab.rb), run
//! every selected check concurrently, print one line per check with a hint under anything not
//! ok, and exit 0 (warnings allowed), 1 (a failure) or 2 (doctor could not run).

use std::sync::Arc;
use std::time::Duration;

use crate::cli::DoctorArgs;
use crate::commands::upgrade;
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
    if let Some(path) = &args.bundle {
        doctor::bundle::check_target(path)?;
    }
    if let Some(url) = &args.gitlab.gitlab_url {
        // A mistyped flag is the user's to fix now, not seven failed checks later.
        crate::gitlab_api::gitlab_url(url)?;
    }
    let state_path = crate::state::resolve_path(args.state.state_file.as_deref());
    let state = crate::state::load(&state_path)?;
    let rb_values = read_gitlab_rb(&args.gitlab.gitlab_rb, state.as_ref());
    let flags = inputs::Flags {
        gitlab_url: args.gitlab.gitlab_url,
        gitlab_token: args.gitlab.gitlab_token,
        gitlab_rb: args.gitlab.gitlab_rb,
        envdir: Some(crate::gitlab_rb::rendered_envdir()),
        gateway_url: args.gateway_url,
        container: args.container,
        model_endpoint: args.model_endpoint,
        model_identifier: args.model_identifier,
        model_api_key: args.model_key.model_api_key,
        ca_cert: args.gitlab.ca_cert,
    };
    let inputs = inputs::resolve(flags, state.as_ref(), rb_values.as_ref());
    let secrets: Vec<crate::secret::Secret> = inputs.secrets().into_iter().cloned().collect();
    let per_check = Duration::from_secs(args.timeout);
    let ctx = Arc::new(Context::new(inputs.clone()));
    let results = run_checks(checks, &selection, ctx.clone(), per_check, &secrets)?;

    let mut report = doctor::json_report(&results);
    let mut final_results = results.clone();
    if args.fix {
        let fixes = doctor::fix::plan(&results, &ctx);
        if !printer.json {
            print_human(printer, &results);
        }
        let (done, after) = apply_fixes(
            &fixes,
            &results,
            &inputs,
            per_check,
            &secrets,
            &state_path,
            printer,
        )?;
        report["fixes"] = serde_json::to_value(&done)?;
        if let Some(after) = after {
            report["after"] = serde_json::to_value(&after)?;
            for result in after {
                if let Some(slot) = final_results.iter_mut().find(|r| r.id == result.id) {
                    *slot = result;
                }
            }
        }
        if printer.json {
            printer.json_document(&report);
        }
    } else if printer.json {
        printer.json_document(&report);
    } else {
        print_human(printer, &results);
    }
    if let Some(path) = &args.bundle {
        let files = crate::commands::runtime()?.block_on(doctor::bundle::collect(&ctx, &report));
        doctor::bundle::write(path, &files)?;
        printer.info(format!(
            "wrote the support bundle {} ({} files, secrets redacted)",
            path.display(),
            files.len()
        ));
    }
    let summary = Summary::of(&final_results);
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

/// Runs the selected checks, secrets scrubbed from what they say.
fn run_checks(
    checks: &[doctor::Check],
    selection: &doctor::Selection,
    ctx: Arc<Context>,
    per_check: Duration,
    secrets: &[crate::secret::Secret],
) -> anyhow::Result<Vec<CheckResult>> {
    let mut results = doctor::run_all(checks, selection, ctx, per_check)?;
    // Belt and braces: no token or key reaches the output, whatever a peer echoed back.
    // Very short values (a placeholder such as "x") would blot out ordinary words.
    let secret_refs: Vec<&crate::secret::Secret> =
        secrets.iter().filter(|s| s.expose().len() >= 6).collect();
    for result in &mut results {
        result.message = scrub(&result.message, &secret_refs);
        result.hint = result.hint.as_deref().map(|h| scrub(h, &secret_refs));
    }
    Ok(results)
}

/// What became of one fix, for the output and `--json`.
#[derive(Debug, serde::Serialize)]
struct FixDone {
    checks: Vec<&'static str>,
    command: String,
    /// applied, failed or declined.
    outcome: &'static str,
    error: Option<String>,
}

/// Offers each fix, runs the accepted ones, then re-runs the checks they repair and prints
/// them before and after. Without a terminal and without --yes nothing runs: that is an error
/// naming --yes.
fn apply_fixes(
    fixes: &[doctor::fix::Fix],
    before: &[CheckResult],
    inputs: &inputs::Inputs,
    per_check: Duration,
    secrets: &[crate::secret::Secret],
    state_path: &std::path::Path,
    printer: &Printer,
) -> anyhow::Result<(Vec<FixDone>, Option<Vec<CheckResult>>)> {
    let still_hints = before
        .iter()
        .filter(|r| matches!(r.status, Status::Fail | Status::Error))
        .filter(|r| !fixes.iter().any(|f| f.checks.contains(&r.id)))
        .count();
    if fixes.is_empty() {
        printer.info(if still_hints > 0 {
            "doctor --fix: none of these failures has a safe mechanical fix; the hints above say what to do"
        } else {
            "doctor --fix: nothing to fix"
        });
        return Ok((Vec::new(), None));
    }
    printer.info(format!(
        "doctor --fix: {} fix{} for the failures above:",
        fixes.len(),
        if fixes.len() == 1 { "" } else { "es" }
    ));
    for fix in fixes {
        printer.info(format!("  {}: {}", fix.checks.join(", "), fix.command));
    }
    if !printer.assume_yes && !printer.interactive {
        return Err(Problem::user(
            "doctor --fix asks before each fix, and there is no terminal to ask on",
        )
        .hint("re-run with --yes to run them: duo-selfhost --yes doctor --fix ...")
        .into());
    }
    let runtime = crate::commands::runtime()?;
    let mut done = Vec::new();
    for fix in fixes {
        let (outcome, error) = if printer.confirm(&format!("Run: {}?", fix.command))? {
            match runtime.block_on(apply_fix(fix, inputs, state_path, printer)) {
                Ok(()) => {
                    printer.info(format!("{} {}", printer.mark(Mark::Ok), fix.command));
                    ("applied", None)
                }
                Err(e) => {
                    let text = crate::error::error_lines(&e)
                        .into_iter()
                        .map(|(label, line)| format!("{label}: {line}"))
                        .collect::<Vec<_>>()
                        .join("; ");
                    let secret_refs: Vec<&crate::secret::Secret> = secrets.iter().collect();
                    let text = scrub(&text, &secret_refs);
                    printer.warn(format!(
                        "the fix for {} failed: {text}",
                        fix.checks.join(", ")
                    ));
                    ("failed", Some(text))
                }
            }
        } else {
            ("declined", None)
        };
        done.push(FixDone {
            checks: fix.checks.clone(),
            command: fix.command.clone(),
            outcome,
            error,
        });
    }
    let ids: Vec<String> = done
        .iter()
        .filter(|d| d.outcome == "applied")
        .flat_map(|d| d.checks.iter().map(|c| c.to_string()))
        .collect();
    if ids.is_empty() {
        return Ok((done, None));
    }
    let checks = doctor::checks::CHECKS;
    let selection = doctor::select(checks, &ids, &[]).map_err(Problem::tool)?;
    let ctx = Arc::new(Context::new(inputs.clone()));
    let after = run_checks(checks, &selection, ctx, per_check, secrets)?;
    if !printer.json {
        printer.result("");
        printer.result("after --fix:");
        let width = after.iter().map(|r| r.id.len()).max().unwrap_or(0);
        for result in &after {
            let was = before
                .iter()
                .find(|b| b.id == result.id)
                .map(|b| b.status)
                .unwrap_or(Status::Skip);
            printer.result(format!(
                "{} {:<width$}  {} -> {}  {}",
                printer.mark(mark_of(result.status)),
                result.id,
                status_name(was),
                status_name(result.status),
                result.message
            ));
        }
    }
    Ok((done, Some(after)))
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Warn => "warn",
        Status::Fail => "fail",
        Status::Skip => "skip",
        Status::Error => "error",
    }
}

/// Runs one fix with the code the other commands use for the same change.
async fn apply_fix(
    fix: &doctor::fix::Fix,
    inputs: &inputs::Inputs,
    state_path: &std::path::Path,
    printer: &Printer,
) -> anyhow::Result<()> {
    use doctor::fix::Action;
    let client = || -> anyhow::Result<crate::gitlab_api::GitlabClient> {
        let url = inputs.gitlab_url.as_deref().ok_or_else(|| {
            Problem::user("no GitLab URL to fix this through").hint("pass --gitlab-url URL")
        })?;
        crate::gitlab_api::GitlabClient::new(
            url,
            inputs.gitlab_token.clone(),
            inputs.ca_cert.as_deref(),
            Duration::from_secs(30),
        )
    };
    match &fix.action {
        Action::Reconfigure => crate::gitlab_rb::reconfigure(printer),
        Action::EnableFeatureFlag => client()?
            .enable_feature(crate::gitlab_config::CUSTOM_MODEL_FLAG)
            .await
            .map(|_| ()),
        Action::SetGatewaySetting { url } => {
            let client = client()?;
            let version = client.metadata().await?.semver().ok_or_else(|| {
                Problem::user("GitLab's version could not be read").hint("pass an admin token")
            })?;
            let request = crate::gitlab_config::PointRequest {
                gateway_url: url,
                gitlab_version: &version,
                gitlab_rb: None,
                client: Some(&client),
                allow_localhost: false,
                reconfigure: false,
                dry_run: false,
            };
            crate::gitlab_config::point_gitlab_at_gateway(&request, printer)
                .await
                .map(|_| ())
        }
        Action::GatewayEnv {
            container,
            set,
            remove,
        } => {
            let change = upgrade::GatewayChange {
                to_version: None,
                set_env: set.clone(),
                remove_env: remove.clone(),
            };
            upgrade::change_gateway(container, &change, state_path, printer)
                .await
                .map(|_| ())
        }
        Action::UpgradeImage { container, version } => {
            let change = upgrade::GatewayChange {
                to_version: Some(version.clone()),
                ..Default::default()
            };
            upgrade::change_gateway(container, &change, state_path, printer)
                .await
                .map(|_| ())
        }
    }
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
