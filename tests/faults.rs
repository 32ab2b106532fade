//! Issue 9 item 3 on the real Docker Engine: upgrades killed by SIGKILL right after each step
//! of the replacement (the hidden `DUO_SELFHOST_FAULT_KILL_AFTER` hook), followed by what an
//! administrator does next; and a host port that something else holds. Each test prints its
//! figures (`cargo test --test integration -- faults:: --nocapture`); RELIABILITY.md records them.
//! The daemon-restart rounds are in scripts/fault-inject, never here: they would disturb every
//! other test using the engine. No engine: these fail.

use crate::support;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use duo_selfhost::fault::{Step, KILL_AFTER_VAR};
use support::docker_fixtures::{self as fx, own_env};
use support::{
    container_id, install_args_with_extra_env, install_gateway, run, unique_name, upgrade_command,
    Run, Sandbox,
};

/// Rounds run at once: most of a round is waiting for health checks, and there are 2 cores.
const PARALLEL_ROUNDS: usize = 3;

/// What is promised after a kill at a step, for an upgrade from 17.5.0: the target, the
/// version answering before anyone runs anything (where one is promised), and what the next
/// run of the same `upgrade` command ends with.
struct Contract {
    target: &'static str,
    answers_after_kill: Option<&'static str>,
    next_exit: i32,
    answers_after_next: &'static str,
}

fn contract(step: Step) -> Contract {
    // 17.6.0 resolves to the registry's highest 17.6 patch, 17.6.1; 17.7.0 never gets healthy,
    // so the rollback steps are reached.
    let (target, answers_after_kill, next_exit, answers_after_next) = match step {
        Step::OldStopped | Step::OldRenamed | Step::NewCreated | Step::NewStarted => {
            ("17.6.0", None, 0, "17.6.1")
        }
        Step::NewHealthy | Step::OldRemoved => ("17.6.0", Some("17.6.1"), 0, "17.6.1"),
        Step::RestoreRemovedNew | Step::RestoreRenamedBack => ("17.7.0", None, 1, "17.5.0"),
        Step::RestoreStarted => ("17.7.0", Some("17.5.0"), 1, "17.5.0"),
    };
    Contract {
        target,
        answers_after_kill,
        next_exit,
        answers_after_next,
    }
}

/// The version a fixture gateway reports on /monitoring/healthz, waiting up to `within`.
fn answering_version(port: u16, within: Duration) -> Option<String> {
    let deadline = Instant::now() + within;
    loop {
        if let Some((200, body)) = fx::http_get(port, "/monitoring/healthz") {
            let json: serde_json::Value = serde_json::from_str(&body).ok()?;
            return json["version"].as_str().map(String::from);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A container's fixture version and state, such as `17.5.0 exited`, or `none`.
fn describe(name: &str) -> String {
    let Some(c) = fx::inspect(name) else {
        return "none".into();
    };
    let version = fx::env_of(&c)
        .into_iter()
        .find_map(|e| e.strip_prefix("FIXTURE_VERSION=").map(String::from))
        .unwrap_or_else(|| "?".into());
    let status = c["State"]["Status"].as_str().unwrap_or("?").to_string();
    match c["State"]["Health"]["Status"].as_str() {
        Some(health) if status == "running" => format!("{version} {status}/{health}"),
        _ => format!("{version} {status}"),
    }
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

/// One kill round's figures.
struct Row {
    step: Step,
    signal: Option<i32>,
    hook_fired: bool,
    left_behind: String,
    answered_after_kill: Option<String>,
    next: Run,
    answered_after_next: Option<String>,
    env_kept: bool,
    leftover_previous: bool,
    state_names_running_image: bool,
}

impl Row {
    /// Where the round broke its step's contract; empty when it kept it.
    fn broken(&self) -> Vec<String> {
        let want = contract(self.step);
        let mut broken = Vec::new();
        if self.signal != Some(libc::SIGKILL) || !self.hook_fired {
            broken.push(format!("not killed by the hook (signal {:?})", self.signal));
        }
        if let Some(version) = want.answers_after_kill {
            if self.answered_after_kill.as_deref() != Some(version) {
                broken.push(format!(
                    "{version} did not answer right after the kill: {:?}",
                    self.answered_after_kill
                ));
            }
        }
        if self.next.code != want.next_exit {
            broken.push(format!(
                "the next run exited {} (expected {}):\n{}",
                self.next.code, want.next_exit, self.next.stderr
            ));
        }
        if self.answered_after_next.as_deref() != Some(want.answers_after_next) {
            broken.push(format!(
                "after the next run {:?} answered, not {}",
                self.answered_after_next, want.answers_after_next
            ));
        }
        if !self.env_kept {
            broken.push("the env changed".into());
        }
        if self.leftover_previous {
            broken.push("a -previous container is left over".into());
        }
        if !self.state_names_running_image {
            broken.push("the state file does not name the running image".into());
        }
        broken
    }
}

/// Installs 17.5.0, upgrades with the hook armed at `step`, checks what is left, runs the same
/// upgrade again as an administrator would, and reads the outcome.
fn kill_round(step: Step) -> Row {
    let want = contract(step);
    let sandbox = Sandbox::new();
    let name = unique_name(&format!("duo-kill-{}", step.name()));
    let previous = format!("{name}-previous");
    let _cleanup = fx::Cleanup::new(&[&name]);
    let port = support::free_port();
    install_gateway(&sandbox, &name, port, "17.5.0");
    let env_before = own_env(&name);

    let killed = upgrade_command(&sandbox, &["--to-version", want.target])
        .env(KILL_AFTER_VAR, step.name())
        .output()
        .expect("run the binary");
    let hook_fired = String::from_utf8_lossy(&killed.stderr).contains(&format!(
        "fault injection: killing this process after step {}",
        step.name()
    ));
    let left_behind = format!(
        "current {}; previous {}",
        describe(&name),
        describe(&previous)
    );
    // A few seconds: a container just started needs a moment before it answers.
    let answered_after_kill = answering_version(port, Duration::from_secs(5));

    let next = run(&mut upgrade_command(
        &sandbox,
        &["--to-version", want.target],
    ));
    let answered_after_next = answering_version(port, Duration::from_secs(20));
    let running_image = fx::inspect(&name)
        .and_then(|c| c["Config"]["Image"].as_str().map(String::from))
        .unwrap_or_default();
    let state = std::fs::read_to_string(sandbox.state_file()).unwrap_or_default();
    Row {
        step,
        signal: killed.status.signal(),
        hook_fired,
        left_behind,
        answered_after_kill,
        next,
        answered_after_next,
        env_kept: fx::inspect(&name).is_some() && own_env(&name) == env_before,
        leftover_previous: fx::inspect(&previous).is_some(),
        state_names_running_image: !running_image.is_empty()
            && state.contains(&format!("image = \"{running_image}\"")),
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<21} {:<8} {:<58} {:<9} {:<6} {:<9} {:<8} {:<9} {:<6}",
        "killed after",
        "signal",
        "left behind",
        "answering",
        "next",
        "answering",
        "env kept",
        "leftover",
        "state"
    );
    for row in rows {
        println!(
            "{:<21} {:<8} {:<58} {:<9} {:<6} {:<9} {:<8} {:<9} {:<6}",
            row.step.name(),
            match row.signal {
                Some(libc::SIGKILL) => "SIGKILL".to_string(),
                other => format!("{other:?}"),
            },
            row.left_behind,
            row.answered_after_kill.as_deref().unwrap_or("no"),
            format!("exit {}", row.next.code),
            row.answered_after_next.as_deref().unwrap_or("no"),
            yes_no(row.env_kept),
            yes_no(row.leftover_previous),
            if row.state_names_running_image {
                "ok"
            } else {
                "stale"
            },
        );
    }
    let kept = rows.iter().filter(|r| r.broken().is_empty()).count();
    println!(
        "kill after each step: {kept}/{} rounds kept their step's contract",
        rows.len()
    );
}

#[test]
fn an_upgrade_killed_after_any_step_is_finished_or_undone_by_the_next_run() {
    fx::registry();
    let mut rows = Vec::new();
    for steps in Step::ALL.chunks(PARALLEL_ROUNDS) {
        std::thread::scope(|scope| {
            let rounds: Vec<_> = steps
                .iter()
                .map(|step| scope.spawn(move || kill_round(*step)))
                .collect();
            for round in rounds {
                rows.push(round.join().expect("a round's setup failed"));
            }
        });
    }
    print_table(&rows);
    let broken: Vec<String> = rows
        .iter()
        .flat_map(|row| {
            row.broken()
                .into_iter()
                .map(|b| format!("{}: {b}", row.step.name()))
        })
        .collect();
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn an_unknown_step_is_refused_with_the_list_of_steps() {
    let sandbox = Sandbox::new();
    let out = run(sandbox.command().env(KILL_AFTER_VAR, "stoped").args([
        "image-tag",
        "--gitlab-version",
        "17.5.0",
    ]))
    .expect_code(2);
    assert!(
        out.stderr
            .contains("names no step; the steps: old-stopped, old-renamed"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_install_killed_after_the_new_one_was_healthy_is_finished_by_the_next_install() {
    let sandbox = Sandbox::new();
    let name = unique_name("duo-kill-install");
    let _cleanup = fx::Cleanup::new(&[&name]);
    let port = support::free_port();
    install_gateway(&sandbox, &name, port, "17.5.0");
    let mut changed = install_args_with_extra_env(&sandbox, &name, port, "17.5.0");
    changed.extend(["--env".to_string(), "AIGW_LOGGING__LEVEL=info".to_string()]);

    let killed = sandbox
        .command()
        .env(KILL_AFTER_VAR, Step::NewHealthy.name())
        .args(&changed)
        .output()
        .unwrap();
    assert_eq!(killed.status.signal(), Some(libc::SIGKILL));
    let previous = format!("{name}-previous");
    assert!(fx::inspect(&previous).is_some(), "the old one is left over");
    let id = container_id(&name);

    let out = run(sandbox.command().args(&changed)).expect_code(0);
    assert!(
        out.stderr.contains("interrupted replacement"),
        "{}",
        out.stderr
    );
    assert!(fx::inspect(&previous).is_none());
    assert_eq!(container_id(&name), id, "the healthy new one is kept");
    assert!(own_env(&name).contains(&"AIGW_LOGGING__LEVEL=info".to_string()));
    assert_eq!(
        answering_version(port, Duration::from_secs(20)).as_deref(),
        Some("17.5.0")
    );
}

/// The figures of a port-taken case, printed as one line.
fn print_port_case(case: &str, out: &Run, port: u16, pairs: &[(&str, bool)]) {
    let named = out
        .stderr
        .contains(&format!("port {port} is already in use"));
    let fix = out.stderr.contains("hint: stop what listens there");
    let mut line = format!(
        "port taken: {case}: exit {}, names port {port}: {}, names the fix: {}",
        out.code,
        yes_no(named),
        yes_no(fix)
    );
    for (what, value) in pairs {
        line.push_str(&format!(", {what}: {}", yes_no(*value)));
    }
    println!("{line}");
}

#[test]
fn install_moving_the_gateway_to_a_taken_port_changes_nothing() {
    let sandbox = Sandbox::new();
    let name = unique_name("duo-port-reinstall");
    let _cleanup = fx::Cleanup::new(&[&name]);
    let port = support::free_port();
    install_gateway(&sandbox, &name, port, "17.5.0");
    let before = fx::inspect(&name).unwrap();
    let env_before = own_env(&name);
    let rb_before = std::fs::read_to_string(sandbox.gitlab_rb()).unwrap();
    let state_before = std::fs::read_to_string(sandbox.state_file()).unwrap();

    let taken = std::net::TcpListener::bind(("0.0.0.0", 0)).unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let args = install_args_with_extra_env(&sandbox, &name, taken_port, "17.5.0");
    let out = run(sandbox.command().args(&args));
    let after = fx::inspect(&name).unwrap();
    let untouched =
        after["Id"] == before["Id"] && after["State"]["StartedAt"] == before["State"]["StartedAt"];
    let answers = answering_version(port, Duration::from_secs(5)).as_deref() == Some("17.5.0");
    let env_kept = own_env(&name) == env_before;
    print_port_case(
        "install --gateway-port <taken> over a running gateway",
        &out,
        taken_port,
        &[
            ("old never stopped", untouched),
            ("old answers", answers),
            ("env unchanged", env_kept),
        ],
    );
    let out = out.expect_code(1);
    support::expect_taken_port(&out, taken_port);
    assert!(out.stderr.contains("nothing was changed"), "{}", out.stderr);
    assert!(untouched && answers && env_kept);
    assert_eq!(
        std::fs::read_to_string(sandbox.gitlab_rb()).unwrap(),
        rb_before
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.state_file()).unwrap(),
        state_before
    );
}

/// With the gateway down and its port held by another process, `upgrade` is refused naming
/// the port, and leaves the old container as `old_left` says; once the port is free, the next
/// `upgrade` answers with the env kept. `also_in_error`: more the refusal must say.
fn refused_while_taken_then_upgraded(
    case: &str,
    sandbox: &Sandbox,
    name: &str,
    port: u16,
    env_before: &[String],
    old_left: impl Fn() -> bool,
    also_in_error: &str,
) {
    let taken = std::net::TcpListener::bind(("0.0.0.0", port)).expect("the port is free");
    let out = run(&mut upgrade_command(sandbox, &["--to-version", "17.6.0"]));
    let left_as_it_was = old_left();
    let env_kept = own_env(name) == env_before;
    drop(taken);
    let next = run(&mut upgrade_command(sandbox, &["--to-version", "17.6.0"]));
    let answers = answering_version(port, Duration::from_secs(20)).as_deref() == Some("17.6.1");
    let env_kept_after = own_env(name) == env_before;
    print_port_case(
        case,
        &out,
        port,
        &[
            ("old left as it was", left_as_it_was),
            ("env unchanged", env_kept),
            (
                "port freed, next upgrade answers",
                next.code == 0 && answers,
            ),
            ("env kept by it", env_kept_after),
        ],
    );
    let out = out.expect_code(1);
    support::expect_taken_port(&out, port);
    assert!(out.stderr.contains(also_in_error), "{}", out.stderr);
    assert!(left_as_it_was && env_kept);
    next.expect_code(0);
    assert!(answers && env_kept_after);
}

#[test]
fn upgrading_a_stopped_gateway_whose_port_was_taken_is_refused_until_it_is_free() {
    let sandbox = Sandbox::new();
    let name = unique_name("duo-port-upgrade");
    let _cleanup = fx::Cleanup::new(&[&name]);
    let port = support::free_port();
    install_gateway(&sandbox, &name, port, "17.5.0");
    let id = container_id(&name);
    let env_before = own_env(&name);
    fx::docker(&["stop", &name]);
    refused_while_taken_then_upgraded(
        "upgrade of a stopped gateway whose port is held by another process",
        &sandbox,
        &name,
        port,
        &env_before,
        || container_id(&name) == id && describe(&name) == "17.5.0 exited",
        "nothing was changed",
    );
}

#[test]
fn a_port_taken_while_an_upgrade_was_killed_midway_is_named_by_the_next_run() {
    let sandbox = Sandbox::new();
    let name = unique_name("duo-port-midway");
    let _cleanup = fx::Cleanup::new(&[&name]);
    let port = support::free_port();
    install_gateway(&sandbox, &name, port, "17.5.0");
    let env_before = own_env(&name);
    let killed = upgrade_command(&sandbox, &["--to-version", "17.6.0"])
        .env(KILL_AFTER_VAR, Step::OldRenamed.name())
        .output()
        .unwrap();
    assert_eq!(killed.status.signal(), Some(libc::SIGKILL));
    // The gateway is down; something else takes its port before the next run puts it back.
    refused_while_taken_then_upgraded(
        "port taken while an upgrade killed after old-renamed left the gateway down",
        &sandbox,
        &name,
        port,
        &env_before,
        || describe(&name) == "17.5.0 exited" && fx::inspect(&format!("{name}-previous")).is_none(),
        &format!("docker start {name}"),
    );
}
