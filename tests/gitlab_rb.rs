//! `duo-selfhost gitlab-rb` against the real omnibus template and user-style variants: only the
//! env hash changes, Ruby (ruby -c and a harness evaluating the whole file) reads back exactly
//! the intended hash, writes are atomic with backups, and refusals leave the file untouched.

use crate::support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use duo_selfhost::gitlab_rb::{self, EditOptions, EnvChange, WriteHooks};
use duo_selfhost::output::Printer;

fn template_path() -> PathBuf {
    support::omnibus_template()
}

fn harness() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ruby/eval_env.rb")
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the real binary in a private HOME with the given extra env (a PATH prefix for stand-in
/// tools); the file is named with --file, never through DUO_SELFHOST_GITLAB_RB.
fn duo(home: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Run {
    let mut cmd = support::duo_command(home);
    cmd.args(args).env_remove("DUO_SELFHOST_GITLAB_RB");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// What Ruby makes of the whole file: gitlab_rails['env'] after evaluating it top to bottom.
fn ruby_env(path: &Path) -> BTreeMap<String, String> {
    let out = Command::new("ruby")
        .arg(harness())
        .arg(path)
        .output()
        .expect("ruby must be installed (scripts/install-deps)");
    assert!(
        out.status.success(),
        "ruby harness failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ruby_syntax_ok(path: &Path) {
    let out = Command::new("ruby").arg("-c").arg(path).output().unwrap();
    assert!(
        out.status.success(),
        "ruby -c failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn backups(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .contains(".duo-selfhost-")
                && p.extension().is_some_and(|e| e == "bak")
        })
        .collect();
    found.sort();
    found
}

fn leftover_temp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

struct Setup {
    dir: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        Setup {
            dir: tempfile::tempdir().unwrap(),
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn file(&self, content: &str) -> PathBuf {
        let path = self.dir.path().join("gitlab.rb");
        fs::write(&path, content).unwrap();
        path
    }

    fn run(&self, args: &[&str]) -> Run {
        duo(self.home.path(), args, &[])
    }
}

const GATEWAY_SET: [&str; 3] = [
    "AI_GATEWAY_URL=http://aigw.example.com:5052",
    "GITLAB_LICENSE_MODE=production",
    "CUSTOMER_PORTAL_URL=https://customers.gitlab.com",
];

#[test]
fn template_gets_a_new_block_after_its_commented_example_and_nothing_else_changes() {
    let setup = Setup::new();
    let original = fs::read_to_string(template_path()).unwrap();
    let path = setup.file(&original);
    let file = path.to_str().unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let original_inode = fs::metadata(&path).unwrap().ino();

    let mut args = vec!["gitlab-rb", "set", "--file", file, "--yes"];
    args.extend(GATEWAY_SET);
    let run = setup.run(&args);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert!(
        run.stdout.contains("+gitlab_rails['env'] = {"),
        "diff on stdout: {}",
        run.stdout
    );

    let new = fs::read_to_string(&path).unwrap();
    let block = format!(
        "\n{}\ngitlab_rails['env'] = {{\n  'AI_GATEWAY_URL' => 'http://aigw.example.com:5052',\n  'GITLAB_LICENSE_MODE' => 'production',\n  'CUSTOMER_PORTAL_URL' => 'https://customers.gitlab.com'\n}}\n",
        gitlab_rb::ADDED_BLOCK_COMMENT
    );
    // The block sits right after the template's commented example (which stays commented)...
    let example_end = original
        .find("# gitlab_rails['env'] = {\n#   'BUNDLE_GEMFILE'")
        .map(|i| i + original[i..].find("# }\n").unwrap() + "# }\n".len())
        .unwrap();
    let expected = format!(
        "{}{}{}",
        &original[..example_end],
        block,
        &original[example_end..]
    );
    // ...and every other byte is unchanged.
    assert_eq!(new, expected);

    ruby_syntax_ok(&path);
    assert_eq!(
        ruby_env(&path),
        map(&[
            ("AI_GATEWAY_URL", "http://aigw.example.com:5052"),
            ("GITLAB_LICENSE_MODE", "production"),
            ("CUSTOMER_PORTAL_URL", "https://customers.gitlab.com"),
        ])
    );

    let backups_now = backups(setup.dir.path());
    assert_eq!(backups_now.len(), 1);
    assert_eq!(fs::read_to_string(&backups_now[0]).unwrap(), original);
    assert_eq!(fs::metadata(&backups_now[0]).unwrap().mode() & 0o777, 0o600);
    // The backup is the old file itself, kept by a hard link (no copy, no extra flush), and the
    // edited file is a new inode with the old file's mode.
    assert_eq!(fs::metadata(&backups_now[0]).unwrap().ino(), original_inode);
    assert_ne!(fs::metadata(&path).unwrap().ino(), original_inode);
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o640);

    // A second identical set changes nothing and writes no backup.
    let again = setup.run(&args);
    assert_eq!(again.code, 0, "stderr: {}", again.stderr);
    assert!(
        again.stderr.contains("nothing to change"),
        "{}",
        again.stderr
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), new);
    assert_eq!(backups(setup.dir.path()).len(), 1);

    // show reads it back, in text and JSON.
    let show = setup.run(&["gitlab-rb", "show", "--file", file]);
    assert_eq!(show.code, 0);
    assert_eq!(
        show.stdout,
        "AI_GATEWAY_URL=http://aigw.example.com:5052\nGITLAB_LICENSE_MODE=production\nCUSTOMER_PORTAL_URL=https://customers.gitlab.com\n"
    );
    let json = setup.run(&["gitlab-rb", "show", "--file", file, "--json"]);
    let value: BTreeMap<String, String> = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(value, ruby_env(&path));
}

#[test]
fn the_unmodified_template_has_an_empty_env() {
    let setup = Setup::new();
    let run = setup.run(&[
        "gitlab-rb",
        "show",
        "--file",
        template_path().to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "{}");
    assert!(ruby_env(&template_path()).is_empty());
    assert_eq!(
        gitlab_rb::external_url(&fs::read_to_string(template_path()).unwrap()),
        Some("GENERATED_EXTERNAL_URL".into())
    );
}

const USER_STYLE: &str = r#"external_url "https://gitlab.example.com"
registry['env'] = {
  'AI_GATEWAY_URL' => 'registry-must-not-change'
}

# Duo settings, by hand
gitlab_rails['env'] = {
    "GITLAB_LICENSE_MODE" => 'production',   # licence mode
    'CUSTOMER_PORTAL_URL' => "https://customers.gitlab.com",
    # 'AI_GATEWAY_URL' => 'http://commented.example:5052',
    'TZ' => "Europe/Berlin", # time zone, with a trailing comma
}
gitlab_workhorse['env'] = { 'http_proxy' => 'http://proxy:3128' }
"#;

#[test]
fn user_style_hash_keeps_quotes_comments_and_trailing_commas() {
    let setup = Setup::new();
    let path = setup.file(USER_STYLE);
    let file = path.to_str().unwrap();

    let run = setup.run(&[
        "gitlab-rb",
        "set",
        "--file",
        file,
        "--yes",
        "CUSTOMER_PORTAL_URL=https://customers.example.org/it's \"quoted\" #{not} \\path",
        "AI_GATEWAY_URL=http://aigw.example.com:5052",
    ]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let expected = USER_STYLE.replace(
        r#"    'CUSTOMER_PORTAL_URL' => "https://customers.gitlab.com","#,
        r#"    'CUSTOMER_PORTAL_URL' => "https://customers.example.org/it's \"quoted\" \#{not} \\path","#,
    )
    .replace(
        "    'TZ' => \"Europe/Berlin\", # time zone, with a trailing comma\n",
        "    'TZ' => \"Europe/Berlin\", # time zone, with a trailing comma\n    'AI_GATEWAY_URL' => \"http://aigw.example.com:5052\",\n",
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), expected);
    ruby_syntax_ok(&path);
    assert_eq!(
        ruby_env(&path),
        map(&[
            ("GITLAB_LICENSE_MODE", "production"),
            (
                "CUSTOMER_PORTAL_URL",
                "https://customers.example.org/it's \"quoted\" #{not} \\path"
            ),
            ("TZ", "Europe/Berlin"),
            ("AI_GATEWAY_URL", "http://aigw.example.com:5052"),
        ])
    );

    // Unset removes the entry's line and nothing else.
    let run = setup.run(&[
        "gitlab-rb",
        "unset",
        "--file",
        file,
        "--yes",
        "TZ",
        "NOT_THERE",
    ]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let after_unset = expected.replace(
        "    'TZ' => \"Europe/Berlin\", # time zone, with a trailing comma\n",
        "",
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), after_unset);
    ruby_syntax_ok(&path);
    assert!(!ruby_env(&path).contains_key("TZ"));
    assert_eq!(backups(setup.dir.path()).len(), 2);
}

#[test]
fn two_active_assignments_edit_the_later_one() {
    let setup = Setup::new();
    let text = "gitlab_rails['env'] = {\n  'EARLY' => 'dropped'\n}\n\ngitlab_rails['env'] = {\n  'LATE' => 'kept'\n}\n";
    let path = setup.file(text);
    assert_eq!(ruby_env(&path), map(&[("LATE", "kept")]));
    let run = setup.run(&[
        "gitlab-rb",
        "set",
        "--file",
        path.to_str().unwrap(),
        "-y",
        "AI_GATEWAY_URL=http://gw:5052",
    ]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "gitlab_rails['env'] = {\n  'EARLY' => 'dropped'\n}\n\ngitlab_rails['env'] = {\n  'LATE' => 'kept',\n  'AI_GATEWAY_URL' => 'http://gw:5052'\n}\n"
    );
    ruby_syntax_ok(&path);
    assert_eq!(
        ruby_env(&path),
        map(&[("LATE", "kept"), ("AI_GATEWAY_URL", "http://gw:5052")])
    );
}

#[test]
fn index_assignments_override_the_hash_and_are_edited_in_place() {
    let setup = Setup::new();
    let text = "gitlab_rails['env'] = { 'AI_GATEWAY_URL' => 'http://old:5052', 'A' => 'a' }\ngitlab_rails['env']['AI_GATEWAY_URL'] = \"http://override:5052\" # wins\ngitlab_rails['env']['B'] = 'b'\n";
    let path = setup.file(text);
    let file = path.to_str().unwrap();
    assert_eq!(
        ruby_env(&path),
        map(&[
            ("AI_GATEWAY_URL", "http://override:5052"),
            ("A", "a"),
            ("B", "b")
        ])
    );
    let run = setup.run(&[
        "gitlab-rb",
        "set",
        "--file",
        file,
        "-y",
        "AI_GATEWAY_URL=http://new:5052",
        "C=c",
    ]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "gitlab_rails['env'] = { 'AI_GATEWAY_URL' => 'http://old:5052', 'A' => 'a', 'C' => 'c' }\ngitlab_rails['env']['AI_GATEWAY_URL'] = \"http://new:5052\" # wins\ngitlab_rails['env']['B'] = 'b'\n"
    );
    ruby_syntax_ok(&path);
    assert_eq!(
        ruby_env(&path),
        map(&[
            ("AI_GATEWAY_URL", "http://new:5052"),
            ("A", "a"),
            ("B", "b"),
            ("C", "c")
        ])
    );

    let run = setup.run(&[
        "gitlab-rb",
        "unset",
        "--file",
        file,
        "-y",
        "AI_GATEWAY_URL",
        "B",
    ]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "gitlab_rails['env'] = { 'A' => 'a', 'C' => 'c' }\n"
    );
    assert_eq!(ruby_env(&path), map(&[("A", "a"), ("C", "c")]));
}

#[test]
fn index_assignments_alone_get_another_index_assignment() {
    let setup = Setup::new();
    let path = setup.file(
        "external_url 'http://g'\ngitlab_rails['env']['A'] = 'a'\n\nnginx['enable'] = true\n",
    );
    let run = setup.run(&[
        "gitlab-rb",
        "set",
        "--file",
        path.to_str().unwrap(),
        "-y",
        "AI_GATEWAY_URL=http://gw:5052",
    ]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "external_url 'http://g'\ngitlab_rails['env']['A'] = 'a'\ngitlab_rails['env']['AI_GATEWAY_URL'] = 'http://gw:5052'\n\nnginx['enable'] = true\n"
    );
    assert_eq!(
        ruby_env(&path),
        map(&[("A", "a"), ("AI_GATEWAY_URL", "http://gw:5052")])
    );
}

#[test]
fn crlf_line_endings_are_kept() {
    let setup = Setup::new();
    let text = "external_url 'http://g'\r\ngitlab_rails['env'] = {\r\n  'A' => 'a'\r\n}\r\n";
    let path = setup.file(text);
    let run = setup.run(&[
        "gitlab-rb",
        "set",
        "--file",
        path.to_str().unwrap(),
        "-y",
        "AI_GATEWAY_URL=http://gw:5052",
    ]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "external_url 'http://g'\r\ngitlab_rails['env'] = {\r\n  'A' => 'a',\r\n  'AI_GATEWAY_URL' => 'http://gw:5052'\r\n}\r\n"
    );
    ruby_syntax_ok(&path);
    assert_eq!(
        ruby_env(&path),
        map(&[("A", "a"), ("AI_GATEWAY_URL", "http://gw:5052")])
    );
}

#[test]
fn a_file_without_env_gets_a_block_at_the_end() {
    let setup = Setup::new();
    let text = "external_url 'http://g'\nnginx['listen_port'] = 80"; // no final newline
    let path = setup.file(text);
    let run = setup.run(&[
        "gitlab-rb",
        "set",
        "--file",
        path.to_str().unwrap(),
        "-y",
        "AI_GATEWAY_URL=http://gw:5052",
    ]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        format!(
            "{text}\n\n{}\ngitlab_rails['env'] = {{\n  'AI_GATEWAY_URL' => 'http://gw:5052'\n}}\n",
            gitlab_rb::ADDED_BLOCK_COMMENT
        )
    );
    ruby_syntax_ok(&path);
    assert_eq!(
        ruby_env(&path),
        map(&[("AI_GATEWAY_URL", "http://gw:5052")])
    );
}

#[test]
fn symlinked_file_with_mode_0600_keeps_link_mode_and_owner() {
    let setup = Setup::new();
    let real_dir = setup.dir.path().join("real");
    fs::create_dir(&real_dir).unwrap();
    let target = real_dir.join("gitlab.rb");
    fs::write(&target, "gitlab_rails['env'] = {\n  'A' => 'a'\n}\n").unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
    let owner_before = fs::metadata(&target).unwrap();
    let link = setup.dir.path().join("gitlab.rb");
    std::os::unix::fs::symlink(&target, &link).unwrap();

    let run = setup.run(&[
        "gitlab-rb",
        "set",
        "--file",
        link.to_str().unwrap(),
        "-y",
        "A=b",
    ]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_link(&link).unwrap(), target);
    let meta = fs::metadata(&target).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o600);
    assert_eq!(
        (meta.uid(), meta.gid()),
        (owner_before.uid(), owner_before.gid())
    );
    assert_eq!(
        fs::read_to_string(&target).unwrap(),
        "gitlab_rails['env'] = {\n  'A' => 'b'\n}\n"
    );
    // The backup sits beside the real file, not the link.
    assert_eq!(backups(&real_dir).len(), 1);
    assert!(backups(setup.dir.path()).is_empty());
}

#[test]
fn refusals_exit_1_name_the_line_and_leave_the_file_byte_identical() {
    let setup = Setup::new();
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "external_url 'x'\ngitlab_rails['env'] = base_env.merge('A' => 'b')\n",
            &["A=c"],
            "gitlab.rb:2:",
        ),
        (
            "gitlab_rails['env'] = {\n  'A' => \"#{ENV['HOME']}/x\"\n}\n",
            &["B=c"],
            "gitlab.rb:2:",
        ),
        (
            "gitlab_rails['env'] = { 'A' => 'a' }\ngitlab_rails['env'].merge!('B' => 'b')\n",
            &["B=c"],
            "gitlab.rb:2:",
        ),
        (
            "gitlab_rails['env'] = {}\n",
            &["A=line one\nline two"],
            "newline",
        ),
        (
            "gitlab_rails['env'] = {}\n",
            &["1BAD=x"],
            "not an environment variable name",
        ),
        (
            "gitlab_rails['env'] = {}\n",
            &["NO_EQUALS_SIGN"],
            "KEY=VALUE",
        ),
        (
            "gitlab_rails['env'] = { 'AI_GATEWAY_URL' => 'http://old:5052' }\n",
            &["TZ=UTC", "AI_GATEWAY_URL=aigw.example.com:5052"],
            "AI_GATEWAY_URL must be an http:// or https:// URL",
        ),
    ];
    for (text, assignments, expected_message) in cases {
        let path = setup.file(text);
        let mut args = vec![
            "gitlab-rb",
            "set",
            "--file",
            path.to_str().unwrap(),
            "--yes",
        ];
        args.extend_from_slice(assignments);
        let run = setup.run(&args);
        assert_eq!(run.code, 1, "{text:?}: stderr {}", run.stderr);
        assert!(
            run.stderr.contains(expected_message),
            "{text:?}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("hint:"), "{}", run.stderr);
        assert_eq!(fs::read_to_string(&path).unwrap(), *text);
        assert!(backups(setup.dir.path()).is_empty());
    }
    // A NUL byte cannot travel in argv; the library refuses it the same way.
    assert!(matches!(
        gitlab_rb::plan_edit("", &[EnvChange::set("A", "x\0y")]),
        Err(gitlab_rb::EnvError::BadChange(m)) if m.contains("NUL")
    ));
}

#[test]
fn dry_run_and_unanswered_prompt_write_nothing() {
    let setup = Setup::new();
    let text = "gitlab_rails['env'] = {\n  'A' => 'a'\n}\n";
    let path = setup.file(text);
    let file = path.to_str().unwrap();
    let run = setup.run(&["gitlab-rb", "set", "--file", file, "--dry-run", "A=b"]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert!(
        run.stdout.contains("-  'A' => 'a'\n+  'A' => 'b'"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.starts_with("--- "), "{}", run.stdout);
    assert_eq!(fs::read_to_string(&path).unwrap(), text);

    // No terminal and no --yes: the question cannot be answered, so nothing is written.
    let run = setup.run(&["gitlab-rb", "set", "--file", file, "A=b"]);
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    assert!(backups(setup.dir.path()).is_empty());
}

#[test]
fn a_failure_before_the_rename_leaves_the_original_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gitlab.rb");
    let text = "gitlab_rails['env'] = {\n  'A' => 'a'\n}\n";
    fs::write(&path, text).unwrap();
    let hooks = WriteHooks {
        before_rename: Some(Box::new(|temp: &Path| {
            // The new content is fully written and flushed at this point.
            assert!(fs::read_to_string(temp).unwrap().contains("'A' => 'b'"));
            Err(std::io::Error::other("injected failure before rename"))
        })),
    };
    let err = gitlab_rb::edit_with_hooks(
        &path,
        &[EnvChange::set("A", "b")],
        &EditOptions::default(),
        &Printer::plain(),
        &hooks,
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("injected failure"), "{err:#}");
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    assert!(leftover_temp_files(dir.path()).is_empty());
    assert!(backups(dir.path()).is_empty());
    assert_eq!(fs::metadata(&path).unwrap().nlink(), 1);
}

/// A directory with stand-in executables, put first on PATH.
fn stand_in_bin(dir: &Path, name: &str, script: &str) -> PathBuf {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let path = bin.join(name);
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn path_with(bin: &Path) -> String {
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn ruby_c_failure_refuses_the_write() {
    let setup = Setup::new();
    let text = "gitlab_rails['env'] = {\n  'A' => 'a'\n}\n";
    let path = setup.file(text);
    let tools = tempfile::tempdir().unwrap();
    let bin = stand_in_bin(
        tools.path(),
        "ruby",
        "#!/bin/sh\nfor file; do :; done\necho \"$file: syntax error, unexpected end-of-input\" >&2\nexit 1\n",
    );
    let run = duo(
        setup.home.path(),
        &[
            "gitlab-rb",
            "set",
            "--file",
            path.to_str().unwrap(),
            "-y",
            "A=b",
        ],
        &[("PATH", &path_with(&bin))],
    );
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("ruby -c"), "{}", run.stderr);
    assert!(
        run.stderr.contains("gitlab.rb: syntax error"),
        "{}",
        run.stderr
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    assert!(leftover_temp_files(setup.dir.path()).is_empty());
    // The backup link made before the check named the untouched original: it is gone too.
    assert!(backups(setup.dir.path()).is_empty());
    assert_eq!(fs::metadata(&path).unwrap().nlink(), 1);
}

#[test]
fn reconfigure_runs_gitlab_ctl_and_checks_the_rendered_env() {
    let setup = Setup::new();
    let path = setup.file(&fs::read_to_string(template_path()).unwrap());
    let tools = tempfile::tempdir().unwrap();
    let envdir = tools.path().join("env");
    // The stand-in renders the env from gitlab.rb with the Ruby harness, as omnibus would.
    let bin = stand_in_bin(
        tools.path(),
        "gitlab-ctl",
        &format!(
            "#!/bin/sh\n[ \"$1\" = reconfigure ] || exit 3\necho 'Running handlers complete'\nexec ruby {} {} {} >/dev/null\n",
            harness().display(),
            path.display(),
            envdir.display()
        ),
    );
    let env = [
        ("PATH", path_with(&bin)),
        ("DUO_SELFHOST_GITLAB_ENVDIR", envdir.display().to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = duo(
        setup.home.path(),
        &[
            "gitlab-rb",
            "set",
            "--file",
            path.to_str().unwrap(),
            "-y",
            "--reconfigure",
            "AI_GATEWAY_URL=http://gw:5052",
        ],
        &env,
    );
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    // gitlab-ctl's output is streamed (to stderr, so stdout keeps only the diff).
    assert!(
        run.stderr.contains("Running handlers complete"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("Running handlers complete"));
    assert_eq!(
        fs::read_to_string(envdir.join("AI_GATEWAY_URL")).unwrap(),
        "http://gw:5052"
    );

    // A reconfigure that renders something else is caught.
    let bad = stand_in_bin(tools.path(), "gitlab-ctl", "#!/bin/sh\nexit 0\n");
    fs::remove_file(envdir.join("AI_GATEWAY_URL")).unwrap();
    let env2 = [
        ("PATH", path_with(&bad)),
        ("DUO_SELFHOST_GITLAB_ENVDIR", envdir.display().to_string()),
    ];
    let env2: Vec<(&str, &str)> = env2.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = duo(
        setup.home.path(),
        &[
            "gitlab-rb",
            "set",
            "--file",
            path.to_str().unwrap(),
            "-y",
            "--reconfigure",
            "AI_GATEWAY_URL=http://gw2:5052",
        ],
        &env2,
    );
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(run.stderr.contains("AI_GATEWAY_URL"), "{}", run.stderr);
    assert!(run.stderr.contains("no such file"), "{}", run.stderr);
}

#[test]
fn reconfigure_without_gitlab_ctl_is_a_clear_error() {
    let setup = Setup::new();
    let path = setup.file("gitlab_rails['env'] = {}\n");
    let tools = tempfile::tempdir().unwrap();
    // A PATH with ruby's directory but no gitlab-ctl.
    let ruby_dir = Path::new("/usr/bin");
    let run = duo(
        setup.home.path(),
        &[
            "gitlab-rb",
            "set",
            "--file",
            path.to_str().unwrap(),
            "-y",
            "--reconfigure",
            "A=b",
        ],
        &[(
            "PATH",
            &format!("{}:{}", tools.path().display(), ruby_dir.display()),
        )],
    );
    if Path::new("/opt/gitlab/bin/gitlab-ctl").exists() {
        return; // A real omnibus host: the fallback path would be used.
    }
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("`gitlab-ctl` was not found"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
    // Found out before writing: the file is untouched.
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "gitlab_rails['env'] = {}\n"
    );
    assert!(backups(setup.dir.path()).is_empty());
}

#[test]
fn set_json_reports_the_outcome() {
    let setup = Setup::new();
    let path = setup.file("gitlab_rails['env'] = {}\n");
    let run = setup.run(&[
        "gitlab-rb",
        "set",
        "--file",
        path.to_str().unwrap(),
        "-y",
        "--json",
        "A=b",
    ]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["changed"], true);
    assert_eq!(doc["written"], true);
    assert!(doc["diff"]
        .as_str()
        .unwrap()
        .contains("+gitlab_rails['env'] = { 'A' => 'b' }"));
    assert!(Path::new(doc["backup"].as_str().unwrap()).is_file());
}

#[test]
fn heredocs_percent_literals_and_strings_that_look_like_env_hashes_are_not_active() {
    let setup = Setup::new();
    let text = r#"external_url 'https://gitlab.example.com'
gitlab_rails['ldap_servers'] = YAML.load <<-'EOS'
  main:
    label: 'LDAP'
    note: |
      gitlab_rails['env'] = { 'FROM_HEREDOC' => 'no' }
EOS
pgbouncer['admin_users'] = %w(gitlab-psql postgres)
nginx['custom_gitlab_server_config'] = "location /x { # gitlab_rails['env'] = { 'NO' => 'no' }\n}"
=begin
gitlab_rails['env'] = { 'FROM_BLOCK_COMMENT' => 'no' }
=end
gitlab_rails['env'] = {
  'REAL' => "yes #{'interpolation-free'.length rescue 0}".length.to_s
}
"#;
    // That hash value is an expression: refused, and the message says which line.
    let path = setup.file(text);
    let run = setup.run(&["gitlab-rb", "show", "--file", path.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("gitlab.rb:14:"), "{}", run.stderr);

    // With a literal value, only the real hash counts, and Ruby agrees.
    let text = text.replace(
        r#""yes #{'interpolation-free'.length rescue 0}".length.to_s"#,
        "'yes'",
    );
    let path = setup.file(&text);
    assert_eq!(ruby_env(&path), map(&[("REAL", "yes")]));
    let run = setup.run(&[
        "gitlab-rb",
        "set",
        "--file",
        path.to_str().unwrap(),
        "-y",
        "AI_GATEWAY_URL=http://gw:5052",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        text.replace(
            "  'REAL' => 'yes'\n",
            "  'REAL' => 'yes',\n  'AI_GATEWAY_URL' => 'http://gw:5052'\n"
        )
    );
    ruby_syntax_ok(&path);
    assert_eq!(
        ruby_env(&path),
        map(&[("REAL", "yes"), ("AI_GATEWAY_URL", "http://gw:5052")])
    );
}

mod values {
    use super::*;
    use proptest::prelude::*;

    /// Writes `value` with set into a hash of the given quote style and returns what Ruby reads.
    fn round_trip(value: &str, quote: char) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gitlab.rb");
        let text = format!(
            "gitlab_rails['env'] = {{\n  {q}A{q} => {q}a{q}\n}}\n",
            q = quote
        );
        let new = gitlab_rb::plan_edit(
            &text,
            &[EnvChange::set("A", value), EnvChange::set("B", value)],
        )
        .unwrap()
        .unwrap();
        fs::write(&path, new).unwrap();
        let env = ruby_env(&path);
        assert_eq!(
            env.get("A"),
            env.get("B"),
            "replaced and added entries agree"
        );
        env["A"].clone()
    }

    #[test]
    fn tricky_values_read_back_exactly_in_ruby() {
        for value in [
            r#"it's "quoted""#,
            r"C:\path\to\file\",
            r"\\server\share \' \n \t",
            "#{ENV['HOME']} #@ivar #$global \\#{x}",
            "tab\there, unicode é ✓",
            "",
            "   spaces   ",
            "'",
            "\"",
            "\\",
        ] {
            for quote in ['\'', '"'] {
                assert_eq!(round_trip(value, quote), value, "quote {quote}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn any_printable_value_reads_back_exactly(value in "[ -~\t\u{e9}\u{2713}]{0,40}", double in any::<bool>()) {
            let quote = if double { '"' } else { '\'' };
            prop_assert_eq!(round_trip(&value, quote), value);
        }
    }
}
