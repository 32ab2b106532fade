//! The command line as a user meets it: help for every command (insta snapshots), the
//! committed completions and man pages, global flags, exit codes.
//!
//! Every test runs the real binary in a private HOME with a cleared environment.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clap::CommandFactory;
use duo_selfhost::cli::Cli;

use crate::support;

/// The binary as a user meets it: the shared sandbox, without the variables that point the
/// state file and gitlab.rb into it (help would show their values), so both keep the defaults
/// a user has; the state file's default is under the sandbox's XDG_CONFIG_HOME.
fn duo(home: &Path) -> Command {
    let mut cmd = support::duo_command(home);
    cmd.env_remove("DUO_SELFHOST_STATE")
        .env_remove("DUO_SELFHOST_GITLAB_RB");
    cmd
}

fn run(args: &[&str]) -> (Output, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let output = duo(home.path()).args(args).output().unwrap();
    (output, home)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every visible command path below the root, nested ones included: ["models", "list"], ...
fn command_paths() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands() {
            if sub.is_hide_set() || sub.get_name() == "help" {
                continue;
            }
            let mut path = prefix.to_vec();
            path.push(sub.get_name().to_string());
            out.push(path.clone());
            walk(sub, &path, out);
        }
    }
    let mut root = Cli::command();
    root.build();
    let mut paths = Vec::new();
    walk(&root, &[], &mut paths);
    paths
}

#[test]
fn help_of_the_tool_and_every_subcommand_matches_its_snapshot() {
    let mut paths = vec![Vec::new()];
    paths.extend(command_paths());
    // The tree the issue asks for, so a dropped command cannot pass unnoticed.
    for expected in [
        "install",
        "upgrade",
        "doctor",
        "serve",
        "models",
        "models list",
        "models pull",
        "models path",
        "gitlab-rb",
        "gitlab-rb show",
        "gitlab-rb set",
        "gitlab-rb unset",
        "image-tag",
        "completions",
    ] {
        assert!(
            paths.iter().any(|p| p.join(" ") == expected),
            "`{expected}` is missing from the command tree"
        );
    }
    for path in paths {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let (output, home) = run(&args);
        assert!(output.status.success(), "{args:?}: {output:?}");
        assert!(output.stderr.is_empty(), "{args:?} wrote to stderr");
        let name = if path.is_empty() {
            "help".to_string()
        } else {
            format!("help-{}", path.join("-"))
        };
        support::snapshot_settings(home.path())
            .bind(|| insta::assert_snapshot!(name, text(&output.stdout)));
    }
}

/// Whole error outputs for mistakes users make, as they read them: the error, the cause, the
/// hint, each exit status. The private home's path is filtered out.
#[test]
fn error_outputs_as_users_see_them() {
    let home = tempfile::tempdir().unwrap();
    let missing_rb = home.path().join("no-such/gitlab.rb");
    let missing_rb = missing_rb.display().to_string();
    let template_rb = home.path().join("gitlab.rb");
    std::fs::copy(support::omnibus_template(), &template_rb).unwrap();
    let template_rb = template_rb.display().to_string();
    let serve_toml = home.path().join("serve.toml");
    std::fs::write(
        &serve_toml,
        "port = 8080\n[[model]]\nmodel = \"smollm2\"\nctx_sise = 2048\n",
    )
    .unwrap();
    let serve_toml = serve_toml.display().to_string();
    let missing_bundle = home.path().join("no-such-bundle.tar");
    let missing_bundle = missing_bundle.display().to_string();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "image-tag-ce",
            vec!["image-tag", "--gitlab-version", "17.5.0-ce"],
        ),
        (
            "image-tag-too-old",
            vec!["image-tag", "--gitlab-version", "16.11.0"],
        ),
        (
            "gitlab-rb-missing-file",
            vec!["gitlab-rb", "show", "--file", &missing_rb],
        ),
        (
            "models-path-unknown",
            vec!["models", "path", "no-such-model"],
        ),
        (
            "install-bad-env",
            vec![
                "--yes",
                "install",
                "--dry-run",
                "--gitlab-url",
                "https://gitlab.example.com",
                "--gitlab-version",
                "17.5.0",
                "--gateway-host",
                "aigw.example.com",
                "--env",
                "BAD NAME=s3cret",
            ],
        ),
        (
            "gitlab-rb-set-not-a-url",
            vec![
                "gitlab-rb",
                "set",
                "--file",
                &missing_rb,
                "AI_GATEWAY_URL=aigw.example.com:5052",
            ],
        ),
        (
            "gitlab-rb-set-no-terminal",
            vec![
                "gitlab-rb",
                "set",
                "--file",
                &template_rb,
                "AI_GATEWAY_URL=http://aigw.example.com:5052",
            ],
        ),
        (
            "serve-config-unknown-key",
            vec!["serve", "--config", &serve_toml],
        ),
        (
            "bundle-verify-missing",
            vec!["bundle", "verify", &missing_bundle],
        ),
        ("serve-model-typo", vec!["serve", "--model", "codestrl"]),
        ("doctor-only-typo", vec!["doctor", "--only", "gatway.*"]),
        (
            "doctor-gitlab-url-not-a-url",
            vec!["doctor", "--gitlab-url", "gitlab.example.com"],
        ),
        ("serve-model-not-pulled", vec!["serve"]),
        ("unknown-flag", vec!["doctor", "--no-such-flag"]),
    ];
    for (name, args) in cases {
        let output = duo(home.path()).args(&args).output().unwrap();
        let shown = format!(
            "exit status: {:?}\n--- stdout\n{}--- stderr\n{}",
            output.status.code(),
            text(&output.stdout),
            text(&output.stderr)
        );
        assert!(
            !shown.contains("s3cret"),
            "{name} printed a secret:\n{shown}"
        );
        support::snapshot_settings(home.path())
            .bind(|| insta::assert_snapshot!(format!("error-{name}"), shown));
    }
}

#[test]
fn every_flag_has_help_text() {
    fn check(cmd: &clap::Command, path: &str) {
        for arg in cmd.get_arguments() {
            if matches!(arg.get_id().as_str(), "help" | "version") {
                continue;
            }
            assert!(
                arg.get_help().is_some() || arg.get_long_help().is_some(),
                "`{path}` --{} has no help",
                arg.get_id()
            );
        }
        for sub in cmd.get_subcommands() {
            assert!(
                sub.get_about().is_some() || sub.get_name() == "help",
                "`{path} {}` has no about",
                sub.get_name()
            );
            check(sub, &format!("{path} {}", sub.get_name()));
        }
    }
    let mut root = Cli::command();
    root.build();
    check(&root, "duo-selfhost");
}

#[test]
fn committed_completions_and_man_pages_are_up_to_date() {
    let (output, _home) = run(&[
        "generate-assets",
        "--check",
        "--out-dir",
        env!("CARGO_MANIFEST_DIR"),
    ]);
    assert!(
        output.status.success(),
        "completions/ or man/ are stale; run `cargo run -- generate-assets`:\n{}",
        text(&output.stderr)
    );
    // One man page for the tool and one per visible subcommand, nested ones included.
    let man = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    assert!(man.join("duo-selfhost.1").is_file());
    for path in command_paths() {
        let page = man.join(format!("duo-selfhost-{}.1", path.join("-")));
        assert!(page.is_file(), "missing {}", page.display());
    }
}

#[test]
fn the_staleness_check_fails_on_a_stale_file() {
    let dir = tempfile::tempdir().unwrap();
    let (output, _home) = run(&["generate-assets", "--out-dir", dir.path().to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let bash = dir.path().join("completions/duo-selfhost.bash");
    std::fs::write(&bash, "# edited by hand\n").unwrap();
    let (output, _home) = run(&[
        "generate-assets",
        "--check",
        "--out-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("completions/duo-selfhost.bash"), "{stderr}");
    assert!(
        stderr.contains("hint: cargo run -- generate-assets"),
        "{stderr}"
    );
}

#[test]
fn completions_print_the_committed_script_for_every_shell() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("completions");
    for (shell, file) in [
        ("bash", "duo-selfhost.bash"),
        ("zsh", "_duo-selfhost"),
        ("fish", "duo-selfhost.fish"),
        ("powershell", "_duo-selfhost.ps1"),
        ("elvish", "duo-selfhost.elv"),
    ] {
        let (output, _home) = run(&["completions", shell]);
        assert!(output.status.success(), "{shell}: {output:?}");
        let committed = std::fs::read(dir.join(file)).unwrap();
        assert_eq!(
            output.stdout, committed,
            "{shell} differs from completions/{file}"
        );
        assert!(text(&output.stdout).contains("image-tag"), "{shell}");
    }
    let (output, _home) = run(&["completions", "tcsh"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn no_arguments_prints_help_and_exits_2() {
    let (output, _home) = run(&[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("Usage: duo-selfhost"));
}

#[test]
fn bad_flags_exit_2_and_name_the_flag() {
    let (output, _home) = run(&["image-tag", "--gitlab-version", "18.2.1", "--frobnicate"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("--frobnicate"));
    assert!(output.stdout.is_empty());

    let (output, _home) = run(&["-q", "-v", "image-tag", "--gitlab-version", "18.2.1"]);
    assert_eq!(output.status.code(), Some(2), "-q and -v conflict");

    let (output, _home) = run(&["--color", "sometimes", "completions", "bash"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("auto, always, never"));
}

#[test]
fn bogus_input_is_a_user_error_with_nothing_on_stdout() {
    let home = tempfile::tempdir().unwrap();
    let missing_rb = home.path().join("no-such/gitlab.rb");
    let probes: Vec<Vec<String>> = vec![
        vec!["models".into(), "path".into(), "no-such-model".into()],
        vec!["models".into(), "pull".into(), "no-such-model".into()],
        vec![
            "gitlab-rb".into(),
            "show".into(),
            "--file".into(),
            missing_rb.display().to_string(),
        ],
        vec![
            "gitlab-rb".into(),
            "unset".into(),
            "AI_GATEWAY_URL".into(),
            "--dry-run".into(),
            "--file".into(),
            missing_rb.display().to_string(),
        ],
    ];
    for probe in probes {
        let output = duo(home.path()).args(&probe).output().unwrap();
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{probe:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{probe:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{probe:?} printed on stdout");
    }
}

#[test]
fn errors_print_error_and_hint_lines_and_exit_1() {
    let (output, _home) = run(&["image-tag", "--gitlab-version", "17.5.0-ce"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = text(&output.stderr);
    let labels: Vec<&str> = stderr
        .lines()
        .map(|l| l.split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(labels, ["error", "hint"], "{stderr}");
}

#[test]
fn color_never_and_no_color_keep_escape_codes_out_even_on_a_terminal() {
    let esc = "\u{1b}[";
    // Not a terminal: plain unless --color always.
    let (output, _home) = run(&["--color", "always", "image-tag", "--gitlab-version", "x"]);
    assert!(text(&output.stderr).contains(esc), "--color always colours");
    let (output, _home) = run(&["--color", "never", "image-tag", "--gitlab-version", "x"]);
    assert!(!text(&output.stderr).contains(esc));
    let (output, _home) = run(&["image-tag", "--gitlab-version", "x"]);
    assert!(!text(&output.stderr).contains(esc), "auto off a terminal");

    // On a pseudo-terminal, auto colours unless NO_COLOR is set or --color never is given.
    let on_tty = |extra_env: Option<(&str, &str)>, args: &[&str]| -> String {
        let home = tempfile::tempdir().unwrap();
        let mut cmd = duo(home.path());
        cmd.env_remove("NO_COLOR");
        if let Some((k, v)) = extra_env {
            cmd.env(k, v);
        }
        cmd.args(args);
        let mut session =
            rexpect::session::spawn_command(support::on_terminal(cmd), Some(20_000)).unwrap();
        session.exp_eof().unwrap()
    };
    let bad = ["image-tag", "--gitlab-version", "x"];
    assert!(
        on_tty(None, &bad).contains(esc),
        "auto on a terminal colours"
    );
    assert!(
        !on_tty(Some(("NO_COLOR", "1")), &bad).contains(esc),
        "NO_COLOR"
    );
    let never = ["--color", "never", "image-tag", "--gitlab-version", "x"];
    assert!(!on_tty(None, &never).contains(esc), "--color never");
}

#[test]
fn json_prints_exactly_one_document_on_stdout() {
    let (output, _home) = run(&[
        "--json",
        "image-tag",
        "--gitlab-version",
        "18.2.1",
        "--offline",
    ]);
    assert!(output.status.success(), "{output:?}");
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["tag"], "self-hosted-v18.2.0-ee");
    // The warning is in the document and, for a person watching, on stderr.
    assert_eq!(doc["warnings"].as_array().unwrap().len(), 1);
    assert!(text(&output.stderr).contains("warning: "));
}

#[test]
fn quiet_keeps_results_and_warnings_but_drops_detail() {
    let (output, _home) = run(&["-q", "image-tag", "--gitlab-version", "18.2.1", "--offline"]);
    assert!(output.status.success());
    assert_eq!(
        text(&output.stdout).trim(),
        "registry.gitlab.com/gitlab-org/modelops/applied-ml/code-suggestions/ai-assist/model-gateway:self-hosted-v18.2.0-ee"
    );
    assert!(text(&output.stderr).starts_with("warning: "));

    let (output, _home) = run(&["-v", "image-tag", "--gitlab-version", "18.2.1", "--offline"]);
    assert!(text(&output.stderr).contains("GitLab 18.2.1: gateway tag self-hosted-v18.2.0-ee"));
}

#[test]
fn version_flag_prints_the_crate_version() {
    let (output, _home) = run(&["--version"]);
    assert!(output.status.success());
    assert_eq!(
        text(&output.stdout).trim(),
        format!("duo-selfhost {}", env!("CARGO_PKG_VERSION"))
    );
}

/// The README section that starts at `## {title}`, up to the next `## `.
fn readme_section(title: &str) -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("README has no `## {title}` section"));
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    rest[..end].to_string()
}

#[test]
fn readme_gives_every_subcommand_an_example() {
    let section = readme_section("Commands");
    let mut root = Cli::command();
    root.build();
    for path in command_paths() {
        let sub = path.iter().fold(&root, |cmd, name| {
            cmd.find_subcommand(name).expect("subcommand from the tree")
        });
        if sub.has_subcommands() {
            continue;
        }
        let example = format!("`duo-selfhost {}", path.join(" "));
        assert!(
            section.contains(&example),
            "README Commands lacks an example {example}`"
        );
    }
}

#[test]
fn readme_model_table_matches_the_catalog() {
    use duo_selfhost::catalog::{Status, MODELS};
    let section = readme_section("Models");
    for model in MODELS {
        let row = section
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", model.name)))
            .unwrap_or_else(|| panic!("README Models has no row for {}", model.name));
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let status = match model.status {
            Status::Approved => "approved",
            Status::Evaluation => "evaluation",
            Status::Demo => "demo",
        };
        assert_eq!(
            (cells[2], cells[3], cells[4]),
            (model.title, model.family, status),
            "{}",
            model.name
        );
        assert_eq!(
            [cells[5], cells[6], cells[7]],
            [
                yes_no(model.code_completion),
                yes_no(model.code_generation),
                yes_no(model.chat)
            ],
            "{}: marks",
            model.name
        );
        for alias in model.aliases {
            assert!(
                cells[1].contains(&format!("`{alias}`")),
                "{}: alias {alias}",
                model.name
            );
        }
        match &model.gguf {
            Some(gguf) => assert!(cells[9].contains(gguf.repo) && cells[9].contains(gguf.quant)),
            None => assert!(cells[9].starts_with("none")),
        }
        match &model.vllm {
            Some(vllm) => assert!(
                cells[10].starts_with(&format!("`{}`", vllm.repo)),
                "{}: vLLM repository",
                model.name
            ),
            None => assert_eq!(cells[10], "–", "{}: no vLLM", model.name),
        }
    }
}

/// On a CPU older than the engine's kernels (emulated: qemu's Nehalem has SSE4.2 but no AVX),
/// the admin commands still run and `serve` refuses by name with the way out, where it used to
/// die of SIGILL while loading the model. Needs `qemu-x86_64` (Debian's qemu-user) and the test
/// model (scripts/fetch-test-model).
#[test]
fn an_old_cpu_runs_the_admin_commands_and_serve_refuses_it_clearly() {
    let bin = support::bin();
    let qemu = [
        "/usr/bin/qemu-x86_64",
        "-cpu",
        "Nehalem",
        bin.to_str().unwrap(),
    ];
    let model = support::test_model();
    let home = tempfile::tempdir().unwrap();
    let emulated = |args: &[&str]| {
        let mut cmd = Command::new(qemu[0]);
        cmd.args(&qemu[1..]).args(args);
        for (key, value) in duo(home.path()).get_envs() {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        cmd.output()
            .expect("qemu-x86_64 (Debian's qemu-user, installed by scripts/install-deps)")
    };

    let version = emulated(&["--version"]);
    assert!(version.status.success(), "{}", text(&version.stderr));
    let tag = emulated(&["image-tag", "--gitlab-version", "18.2.1", "--offline"]);
    assert!(tag.status.success(), "{}", text(&tag.stderr));
    assert!(text(&tag.stdout).contains(":self-hosted-v18.2.0-ee"));

    let serve = emulated(&["serve", "--model", model.to_str().unwrap(), "--port", "0"]);
    let stderr = text(&serve.stderr);
    assert_eq!(
        serve.status.code(),
        Some(1),
        "serve on an old CPU: {stderr}"
    );
    assert!(
        stderr.contains("this CPU lacks avx, avx2, fma, f16c, bmi2"),
        "{stderr}"
    );
    assert!(stderr.contains("target-cpu=native"), "{stderr}");
}
