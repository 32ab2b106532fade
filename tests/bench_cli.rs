//! CLI benchmarks, run by `scripts/bench-cli` and never by a plain `cargo test` (each is
//! `#[ignore]`): `--help` cold start, `gitlab-rb set` on the real omnibus template, and doctor
//! against the real chain (serve on SmolLM2, the fake GitLab, a gateway container on the Docker
//! Engine), all green and with one black-hole endpoint. Each prints min and median against its
//! target. Timing is hyperfine's when it is installed, else repeated runs timed here.
//!
//! These are figures, not pass/fail tests: a missed target is printed, never asserted. What is
//! asserted is that each command did what is timed (the edit applies, doctor is all green).

use crate::support;
use crate::support::stub_server;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use stub_server::StubServer;
use support::doctor_chain::{green_status, GreenChain, Serve};

const TOKEN: &str = "glpat-bench-cli-token";

/// The chain's model server threads: `$BENCH_CLI_SERVE_THREADS`, else one. llama.cpp's threads
/// wait for each other by spinning, so two threads on two cores shared with anything else slow
/// down by an order of magnitude (a 16-token completion took 2 to 11 s instead of 0.5 s while
/// builds ran), and doctor's figure would measure the neighbours.
fn serve_threads() -> u32 {
    std::env::var("BENCH_CLI_SERVE_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// The binary to time: `$DUO_SELFHOST_BENCH_BIN` when set (scripts/bench-cli sets it to a copy
/// of the build, since a target dir shared with other checkouts can have its
/// `release/duo-selfhost` replaced mid-run), else the one cargo built for this test.
fn bench_bin() -> PathBuf {
    std::env::var_os("DUO_SELFHOST_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(support::bin)
}

/// One command to time: the binary with `args`, in exactly `env`.
struct Bench {
    name: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// Run before each timed run (not timed), so that every run does the same work.
    prepare: Option<Vec<String>>,
    warmup: usize,
    runs: usize,
    /// The exit code every run must end with.
    exit_code: i32,
}

impl Bench {
    fn new(name: &str, args: &[String]) -> Self {
        Bench {
            name: name.to_string(),
            args: args.to_vec(),
            env: vec![
                ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
                ("HOME".into(), std::env::temp_dir().display().to_string()),
            ],
            prepare: None,
            warmup: 3,
            runs: 30,
            exit_code: 0,
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(bench_bin());
        cmd.args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs the command once, outside the timing, and returns its stdout after checking its
    /// exit code.
    fn run_once(&self) -> String {
        if let Some(prepare) = &self.prepare {
            run_prepare(prepare);
        }
        let out = self.command().output().expect("run duo-selfhost");
        assert_eq!(
            out.status.code(),
            Some(self.exit_code),
            "{}: unexpected exit\nstdout:\n{}\nstderr:\n{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn run_prepare(prepare: &[String]) {
    let status = Command::new(&prepare[0])
        .args(&prepare[1..])
        .status()
        .expect("run the prepare command");
    assert!(status.success(), "prepare {prepare:?} failed");
}

/// Wall-clock times of the runs, in seconds, and who took them.
struct Times {
    tool: &'static str,
    seconds: Vec<f64>,
}

impl Times {
    fn min(&self) -> f64 {
        self.seconds.iter().copied().fold(f64::INFINITY, f64::min)
    }

    fn median(&self) -> f64 {
        let mut sorted = self.seconds.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        }
    }
}

fn hyperfine_installed() -> bool {
    Command::new("hyperfine")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A word for a command line hyperfine splits without a shell (`-N`).
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,*".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn command_line(program: &Path, args: &[String]) -> String {
    std::iter::once(program.display().to_string())
        .chain(args.iter().cloned())
        .map(|w| shell_word(&w))
        .collect::<Vec<_>>()
        .join(" ")
}

fn measure(bench: &Bench) -> Times {
    if hyperfine_installed() {
        with_hyperfine(bench)
    } else {
        with_repeated_runs(bench)
    }
}

fn with_hyperfine(bench: &Bench) -> Times {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("hyperfine.json");
    // Found on this process's PATH: a case may give the benchmarked command a PATH without it.
    let hyperfine = duo_selfhost::programs::find_on_path("hyperfine").expect("hyperfine on PATH");
    let mut cmd = Command::new(hyperfine);
    cmd.env_clear()
        .envs(bench.env.iter().map(|(k, v)| (k, v)))
        .args(["-N", "--ignore-failure", "--style", "none"])
        .args(["--warmup", &bench.warmup.to_string()])
        .args(["--runs", &bench.runs.to_string()])
        .arg("--export-json")
        .arg(&export);
    if let Some(prepare) = &bench.prepare {
        cmd.args([
            "--prepare",
            &command_line(Path::new(&prepare[0]), &prepare[1..]),
        ]);
    }
    cmd.arg(command_line(&bench_bin(), &bench.args));
    let out = cmd.output().expect("run hyperfine");
    assert!(
        out.status.success(),
        "hyperfine failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&export).unwrap()).unwrap();
    let result = &report["results"][0];
    let codes: Vec<i64> = result["exit_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_i64().unwrap_or(-1))
        .collect();
    assert!(
        codes.iter().all(|c| *c == i64::from(bench.exit_code)),
        "{}: exit codes {codes:?} under hyperfine, expected {}",
        bench.name,
        bench.exit_code
    );
    let seconds = result["times"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_f64().unwrap())
        .collect();
    Times {
        tool: "hyperfine",
        seconds,
    }
}

fn with_repeated_runs(bench: &Bench) -> Times {
    let mut seconds = Vec::with_capacity(bench.runs);
    for round in 0..bench.warmup + bench.runs {
        if let Some(prepare) = &bench.prepare {
            run_prepare(prepare);
        }
        let mut cmd = bench.command();
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let start = Instant::now();
        let status = cmd.status().expect("run duo-selfhost");
        let elapsed = start.elapsed();
        assert_eq!(status.code(), Some(bench.exit_code), "{}", bench.name);
        if round >= bench.warmup {
            seconds.push(elapsed.as_secs_f64());
        }
    }
    Times {
        tool: "repeated runs",
        seconds,
    }
}

/// `12.3 ms`, `1.42 s`.
fn duration_text(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.1} ms", seconds * 1000.0)
    } else {
        format!("{seconds:.2} s")
    }
}

/// What a case is held to: below a target, or within a budget it must not overrun.
enum Goal {
    Below(Duration),
    Within(Duration, &'static str),
}

/// Prints one line (and appends it to `$BENCH_CLI_REPORT`, which scripts/bench-cli prints as
/// a table at the end): the case, runs, min, median, the goal and whether the median met it.
fn report(bench: &Bench, times: &Times, goal: Goal) {
    let median = times.median();
    let (goal_text, met) = match goal {
        Goal::Below(target) => (
            format!("< {}", duration_text(target.as_secs_f64())),
            median < target.as_secs_f64(),
        ),
        Goal::Within(budget, what) => (
            format!("<= {} ({what})", duration_text(budget.as_secs_f64())),
            median <= budget.as_secs_f64(),
        ),
    };
    let line = format!(
        "{:<60} {:>4} runs  min {:>9}  median {:>9}  target {goal_text}: {}  [{}]",
        bench.name,
        times.seconds.len(),
        duration_text(times.min()),
        duration_text(median),
        if met { "met" } else { "MISSED" },
        times.tool
    );
    println!("bench-cli: {line}");
    if let Some(path) = std::env::var_os("BENCH_CLI_REPORT") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open $BENCH_CLI_REPORT");
        writeln!(file, "{line}").unwrap();
    }
}

/// How many timed runs a case gets: `$BENCH_CLI_RUNS` scales the defaults down for a smoke run.
fn runs(default: usize) -> usize {
    std::env::var("BENCH_CLI_RUNS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map(|n| n.clamp(1, default))
        .unwrap_or(default)
}

#[test]
#[ignore = "benchmark: run scripts/bench-cli"]
fn help_cold_start() {
    for args in [vec!["--help"], vec!["serve", "--help"]] {
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        let mut bench = Bench::new(&format!("duo-selfhost {}", args.join(" ")), &args);
        bench.warmup = 5;
        bench.runs = runs(100);
        // clap names the program after argv[0], which a snapshot copy may rename.
        let help = bench.run_once();
        assert!(
            help.contains("Usage: ") && help.contains("Options:"),
            "{help}"
        );
        let times = measure(&bench);
        report(&bench, &times, Goal::Below(Duration::from_millis(15)));
    }
}

#[test]
#[ignore = "benchmark: run scripts/bench-cli"]
fn gitlab_rb_set_on_the_template() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gitlab.rb");
    // Each run starts from a fresh copy of the template, with no backups left from the run
    // before, so that every run makes the same edit and the same backup.
    let prepare = format!(
        "/bin/rm -f {dir}/gitlab.rb.duo-selfhost-*.bak && /bin/cp {template} {file}",
        dir = shell_word(dir.path().to_str().unwrap()),
        template = shell_word(support::omnibus_template().to_str().unwrap()),
        file = shell_word(file.to_str().unwrap())
    );
    let url = "AI_GATEWAY_URL=http://aigw.example.com:5052";
    let args: Vec<String> = ["--yes", "gitlab-rb", "set", url, "--file"]
        .into_iter()
        .map(String::from)
        .chain([file.display().to_string()])
        .collect();
    let ruby_on_path = Command::new("ruby").arg("--version").output().is_ok();
    // The whole edit with the Ruby syntax check, without it (no Ruby on the host), and the
    // read-plan-diff part alone (--dry-run), to show where the time goes.
    let cases = [
        ("with `ruby -c`", true, false),
        ("with no Ruby to run", false, false),
        ("--dry-run (no write)", true, true),
    ];
    for (label, with_path, dry_run) in cases {
        if with_path && !dry_run && !ruby_on_path {
            continue;
        }
        let mut args = args.clone();
        if dry_run {
            args.push("--dry-run".into());
        }
        let mut bench = Bench::new(
            &format!("duo-selfhost gitlab-rb set (template) {label}"),
            &args,
        );
        if !with_path {
            bench.env = vec![
                ("PATH".into(), "/nonexistent".into()),
                ("HOME".into(), std::env::temp_dir().display().to_string()),
            ];
        }
        bench.prepare = Some(vec!["/bin/sh".into(), "-c".into(), prepare.clone()]);
        bench.runs = runs(50);
        let diff = bench.run_once();
        assert!(
            diff.contains("+  'AI_GATEWAY_URL' => 'http://aigw.example.com:5052'"),
            "{diff}"
        );
        let written = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            written.contains("'AI_GATEWAY_URL' => 'http://aigw.example.com:5052'"),
            !dry_run
        );
        let times = measure(&bench);
        report(&bench, &times, Goal::Below(Duration::from_millis(5)));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), written);
    }
}

/// The ids and statuses of doctor's `--json` report, in its order, with each check's time.
fn checks_of(stdout: &str) -> Vec<(String, String, u64)> {
    let report: Value = serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("doctor printed no JSON report ({e}):\n{stdout}"));
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
                c["duration_ms"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Where one doctor run spent its time: every check's own elapsed time, longest first.
fn print_check_times(label: &str, checks: &[(String, String, u64)]) {
    let mut by_time: Vec<_> = checks.iter().collect();
    by_time.sort_by_key(|check| std::cmp::Reverse(check.2));
    println!("{label}: per-check elapsed (doctor --json duration_ms), longest first:");
    for (id, status, ms) in by_time {
        println!("  {ms:>6} ms  {status:<4}  {id}");
    }
}

fn doctor_bench(name: &str, chain: &GreenChain, args: Vec<String>) -> Bench {
    let mut bench = Bench::new(name, &args);
    bench.env = chain.doctor_env();
    bench.warmup = 1;
    bench
}

#[test]
#[ignore = "benchmark: run scripts/bench-cli"]
fn doctor_all_green() {
    let chain = GreenChain::start_with(Serve::start_with(&bench_bin(), serve_threads()), TOKEN);
    let mut bench = doctor_bench(
        &format!(
            "duo-selfhost doctor, all green (serve --threads {})",
            serve_threads()
        ),
        &chain,
        chain.doctor_args(),
    );
    bench.runs = runs(10);
    let assert_green = |stdout: &str| {
        let checks = checks_of(stdout);
        for (id, status, _) in &checks {
            assert_eq!(status, green_status(id), "{id} in:\n{stdout}");
        }
        assert!(!stdout.contains(TOKEN), "the token leaked");
        checks
    };
    // The first requests after serve starts pay the model's warm-up: this untimed run and the
    // warm-up run take it before the timed runs.
    let checks = assert_green(&bench.run_once());
    print_check_times("all green, first run after serve started", &checks);
    let times = measure(&bench);
    report(&bench, &times, Goal::Below(Duration::from_millis(1500)));
    // Still green after the timed runs: they measured a healthy chain, not a broken one.
    let checks = assert_green(&bench.run_once());
    print_check_times("all green, after the timed runs", &checks);
}

#[test]
#[ignore = "benchmark: run scripts/bench-cli"]
fn doctor_with_a_black_hole_model() {
    let chain = GreenChain::start_with(Serve::start_with(&bench_bin(), serve_threads()), TOKEN);
    let black_hole = StubServer::black_hole();
    let timeout = 2;
    let mut args = chain.doctor_args_with_model(&format!("{}/v1", black_hole.url()));
    args.extend(["--timeout".into(), timeout.to_string()]);
    let mut bench = doctor_bench(
        &format!("duo-selfhost doctor, black-hole model, --timeout {timeout}s"),
        &chain,
        args,
    );
    bench.exit_code = 1;
    bench.runs = runs(5);
    let stdout = bench.run_once();
    let checks = checks_of(&stdout);
    for (id, status, _) in &checks {
        let expected = match id.as_str() {
            "model.models" => "fail",
            "model.chat" | "model.fim" => "skip",
            _ => green_status(id),
        };
        assert_eq!(status, expected, "{id} in:\n{stdout}");
    }
    assert!(stdout.contains("did not answer within"), "{stdout}");
    print_check_times("black-hole model", &checks);
    let times = measure(&bench);
    // The run's hard bound: every check's deadline plus the runner's margin.
    let budget = Duration::from_secs(timeout) + duo_selfhost::doctor::RUN_MARGIN;
    report(
        &bench,
        &times,
        Goal::Within(budget, "--timeout + run margin"),
    );
}
