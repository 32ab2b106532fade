//! Property tests for the gitlab.rb editor (issue 9, item 2): random `set`/`unset` edits on the
//! real omnibus template and on generated user-style files (mixed quotes, trailing commas,
//! inline comments, CRLF, index assignments, heredocs and `=begin` blocks that mention the env)
//! never change a byte outside the env hash, and Ruby evaluating the whole file reads back
//! exactly the values set. Ruby runs once per case over every intermediate file.

use crate::support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use duo_selfhost::gitlab_rb::{effective_env, plan_edit, EnvChange};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError};

/// The omnibus template: `shared/fixtures/` in the first ancestor of the crate that has it.
fn template_text() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| fs::read_to_string(support::omnibus_template()).unwrap())
}

fn harness() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ruby/eval_env.rb")
}

type Env = BTreeMap<String, String>;

/// Evaluates every file with tests/ruby/eval_env.rb in one ruby process; one hash per file.
fn ruby_envs(files: &[PathBuf]) -> Result<Vec<Env>, TestCaseError> {
    const BATCH: &str = "h = ARGV.shift; ARGV.dup.each { |f| ARGV.replace([f]); load h }";
    let out = Command::new("ruby")
        .arg("-e")
        .arg(BATCH)
        .arg(harness())
        .args(files)
        .output()
        .expect("ruby must be installed (scripts/install-deps)");
    if !out.status.success() {
        return Err(TestCaseError::fail(format!(
            "ruby failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let stdout = String::from_utf8(out.stdout).unwrap();
    let envs: Vec<Env> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    prop_assert_eq!(envs.len(), files.len(), "one JSON line per file");
    Ok(envs)
}

// ---------------------------------------------------------------------------------------------
// Generators.

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        // A small pool, so edits often hit keys the file already has.
        prop::sample::select(vec![
            "AI_GATEWAY_URL",
            "TZ",
            "GITLAB_LICENSE_MODE",
            "A",
            "_x1",
            "DUO_WORKFLOW_URL",
        ])
        .prop_map(String::from),
        "[A-Za-z_][A-Za-z0-9_]{0,10}",
    ]
}

/// One-line values with the characters quoting gets wrong: quotes, backslashes, `#{`, `#$`,
/// `#@`, tabs and non-ASCII. Never a newline or NUL (the editor refuses those by design).
fn value() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            "[ -~]{1,4}",
            prop::sample::select(vec![
                "'", "\"", "\\", "\\\\", "\\'", "\\\"", "#{", "#{x}", "#$", "#@", "#", "}", "\t",
                "é", "日本", "🦀", "\u{200b}", " => ", ", ", "=begin",
            ])
            .prop_map(String::from),
        ],
        0..8,
    )
    .prop_map(|parts| parts.concat())
}

fn change() -> impl Strategy<Value = EnvChange> {
    prop_oneof![
        3 => (key(), value()).prop_map(|(k, v)| EnvChange::set(k, v)),
        1 => key().prop_map(EnvChange::unset),
    ]
}

/// Up to three successive runs of the editor, each with one to four changes.
fn edit_runs() -> impl Strategy<Value = Vec<Vec<EnvChange>>> {
    prop::collection::vec(prop::collection::vec(change(), 1..5), 1..4)
}

/// A Ruby literal written the way a person might (independent of the editor's own quoting).
fn literal(value: &str, double: bool) -> String {
    let mut out = String::new();
    if double {
        out.push('"');
        let mut chars = value.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '#' if matches!(chars.peek(), Some('{' | '$' | '@')) => out.push_str("\\#"),
                '\t' => out.push_str("\\t"),
                _ => out.push(c),
            }
        }
        out.push('"');
    } else {
        out.push('\'');
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                _ => out.push(c),
            }
        }
        out.push('\'');
    }
    out
}

/// Lines around the env statements: other settings, comments, and text that mentions the env
/// without assigning it (a commented example, a heredoc, an `=begin` block, another hash).
const OTHER_LINES: &[&str] = &[
    "external_url 'https://gitlab.example.com'",
    "",
    "### Duo settings",
    "# gitlab_rails['env'] = {",
    "#   'AI_GATEWAY_URL' => 'http://commented.example:5052'",
    "# }",
    "gitlab_workhorse['env'] = { 'http_proxy' => 'http://proxy:3128' }",
    "registry['env'] = {\n  'SSL_CERT_DIR' => '/opt/gitlab/embedded/ssl/certs/'\n}",
    "nginx['listen_port'] = 80 # plain HTTP behind the load balancer",
    "gitlab_rails['time_zone'] = \"Europe/Berlin\"",
    "gitlab_rails['motd'] = <<~EOS\n  gitlab_rails['env'] = { 'FAKE' => 'heredoc' }\nEOS",
    "=begin\ngitlab_rails['env'] = { 'FAKE' => 'begin block' }\n=end",
    "roles %w(application_role) # gitlab_rails['env'] = {}",
    "gitlab_rails['initial_root_password'] = 'p#{a}ss\\'word'",
];

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    value: String,
    double_key: bool,
    double_value: bool,
    comment: Option<&'static str>,
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        key(),
        value(),
        any::<bool>(),
        any::<bool>(),
        prop::option::weighted(
            0.3,
            prop::sample::select(vec!["note", "it's \"quoted\"", "#{x} }", "=> 'FAKE',"]),
        ),
    )
        .prop_map(|(key, value, double_key, double_value, comment)| Entry {
            key,
            value,
            double_key,
            double_value,
            comment,
        })
}

#[derive(Debug, Clone)]
enum Layout {
    /// No active env assignment at all.
    None,
    /// `gitlab_rails['env'] = { ... }` on one line.
    OneLine,
    /// One entry a line, with optional inline comments and trailing comma.
    Multiline { trailing_comma: bool, indent: usize },
    /// Only `gitlab_rails['env']['K'] = 'v'` lines.
    IndexOnly,
}

#[derive(Debug, Clone)]
struct UserFile {
    before: Vec<&'static str>,
    layout: Layout,
    entries: Vec<Entry>,
    /// Index assignments after the hash (override or add).
    index: Vec<Entry>,
    after: Vec<&'static str>,
    crlf: bool,
    final_newline: bool,
}

fn user_file() -> impl Strategy<Value = UserFile> {
    let lines = || prop::collection::vec(prop::sample::select(OTHER_LINES.to_vec()), 0..5);
    let layout = prop_oneof![
        1 => Just(Layout::None),
        2 => Just(Layout::OneLine),
        4 => (any::<bool>(), prop::sample::select(vec![2usize, 4])).prop_map(|(trailing_comma, indent)| Layout::Multiline { trailing_comma, indent }),
        1 => Just(Layout::IndexOnly),
    ];
    (
        lines(),
        layout,
        prop::collection::vec(entry(), 0..5),
        prop::collection::vec(entry(), 0..3),
        lines(),
        any::<bool>(),
        prop::bool::weighted(0.9),
    )
        .prop_map(
            |(before, layout, mut entries, index, after, crlf, final_newline)| {
                // A hash literal with a repeated key is legal Ruby but not what a person writes.
                let mut seen = std::collections::BTreeSet::new();
                entries.retain(|e| seen.insert(e.key.clone()));
                UserFile {
                    before,
                    layout,
                    entries,
                    index,
                    after,
                    crlf,
                    final_newline,
                }
            },
        )
}

impl UserFile {
    /// (text before the env statements, the env statements, text after them), all with the
    /// file's line endings, and the env Ruby should see.
    fn render(&self) -> (String, String, String, Env) {
        let mut expected = Env::new();
        let mut env = String::new();
        let hash_line = |e: &Entry| {
            format!(
                "{} => {}",
                literal(&e.key, e.double_key),
                literal(&e.value, e.double_value)
            )
        };
        match &self.layout {
            Layout::None => {}
            Layout::OneLine => {
                let parts: Vec<String> = self.entries.iter().map(hash_line).collect();
                if parts.is_empty() {
                    env.push_str("gitlab_rails['env'] = {}\n");
                } else {
                    env.push_str(&format!(
                        "gitlab_rails['env'] = {{ {} }}\n",
                        parts.join(", ")
                    ));
                }
            }
            Layout::Multiline {
                trailing_comma,
                indent,
            } => {
                env.push_str("gitlab_rails['env'] = {\n");
                for (i, e) in self.entries.iter().enumerate() {
                    let last = i + 1 == self.entries.len();
                    env.push_str(&" ".repeat(*indent));
                    env.push_str(&hash_line(e));
                    if !last || *trailing_comma {
                        env.push(',');
                    }
                    if let Some(comment) = e.comment {
                        env.push_str(" # ");
                        env.push_str(comment);
                    }
                    env.push('\n');
                }
                env.push_str("}\n");
            }
            Layout::IndexOnly => {}
        }
        if !matches!(self.layout, Layout::None | Layout::IndexOnly) {
            for e in &self.entries {
                expected.insert(e.key.clone(), e.value.clone());
            }
        }
        if !matches!(self.layout, Layout::None) {
            for e in &self.index {
                env.push_str(&format!(
                    "gitlab_rails['env'][{}] = {}",
                    literal(&e.key, e.double_key),
                    literal(&e.value, e.double_value)
                ));
                if let Some(comment) = e.comment {
                    env.push_str(" # ");
                    env.push_str(comment);
                }
                env.push('\n');
                expected.insert(e.key.clone(), e.value.clone());
            }
        }
        let join = |lines: &[&str]| {
            let mut s = String::new();
            for line in lines {
                s.push_str(line);
                s.push('\n');
            }
            s
        };
        let mut after = join(&self.after);
        if !self.final_newline && after.ends_with('\n') {
            after.pop();
        } else if !self.final_newline && after.is_empty() && env.ends_with('\n') {
            env.pop();
        }
        let eol = |s: String| {
            if self.crlf {
                s.replace('\n', "\r\n")
            } else {
                s
            }
        };
        (eol(join(&self.before)), eol(env), eol(after), expected)
    }
}

// ---------------------------------------------------------------------------------------------
// Checks.

fn apply(expected: &mut Env, changes: &[EnvChange]) {
    for change in changes {
        match change {
            EnvChange::Set { key, value } => {
                expected.insert(key.clone(), value.clone());
            }
            EnvChange::Unset { key } => {
                expected.remove(key);
            }
        }
    }
}

/// `new` is `old` with bytes inserted at one place and nothing else changed.
fn is_single_insertion(old: &str, new: &str) -> bool {
    let (old, new) = (old.as_bytes(), new.as_bytes());
    let prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let room = old.len().min(new.len()) - prefix;
    let suffix = old
        .iter()
        .rev()
        .zip(new.iter().rev())
        .take(room)
        .take_while(|(a, b)| a == b)
        .count();
    prefix + suffix >= old.len()
}

fn has_bare_lf(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes
        .iter()
        .enumerate()
        .any(|(i, b)| *b == b'\n' && (i == 0 || bytes[i - 1] != b'\r'))
}

/// Runs the edits one after another from `start`, checking `outside` after each, then has Ruby
/// read back every intermediate file and compares with the expected env.
fn check_runs(
    start: &str,
    start_env: Env,
    runs: &[Vec<EnvChange>],
    outside: impl Fn(&str) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut expectations = Vec::new();
    let mut text = start.to_string();
    let mut expected = start_env;

    // The unedited file first: the generator and the reader agree with Ruby.
    let path = dir.path().join("gitlab.rb.0");
    fs::write(&path, &text).unwrap();
    files.push(path);
    expectations.push(expected.clone());

    for (i, changes) in runs.iter().enumerate() {
        let planned = plan_edit(&text, changes)
            .map_err(|e| TestCaseError::fail(format!("plan_edit refused {changes:?}: {e}")))?;
        apply(&mut expected, changes);
        if let Some(new) = planned {
            text = new;
        }
        outside(&text)?;
        let ours: Env = effective_env(&text)
            .map_err(|e| TestCaseError::fail(format!("reader refused the edited file: {e}")))?
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        prop_assert_eq!(&ours, &expected, "our reader after run {}", i + 1);
        let path = dir.path().join(format!("gitlab.rb.{}", i + 1));
        fs::write(&path, &text).unwrap();
        files.push(path);
        expectations.push(expected.clone());
    }

    let envs = ruby_envs(&files)?;
    for (i, (got, want)) in envs.iter().zip(&expectations).enumerate() {
        prop_assert_eq!(
            got,
            want,
            "Ruby's env after run {} of {:?}; file:\n{}",
            i,
            runs,
            fs::read_to_string(&files[i]).unwrap()
        );
    }
    Ok(())
}

/// The case count: `default`, or PROPTEST_CASES for a longer run.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(Config { cases: cases(48), failure_persistence: None, ..Config::default() })]

    #[test]
    fn template_edits_only_insert_the_env_block(runs in edit_runs()) {
        let template = template_text();
        check_runs(template, Env::new(), &runs, |text| {
            prop_assert!(
                is_single_insertion(template, text),
                "the template's own bytes changed"
            );
            prop_assert!(!has_bare_lf(template) || has_bare_lf(text));
            Ok(())
        })?;
    }
}

proptest! {
    #![proptest_config(Config { cases: cases(160), failure_persistence: None, ..Config::default() })]

    #[test]
    fn user_style_edits_keep_every_byte_outside_the_env(file in user_file(), runs in edit_runs()) {
        let (before, env, after, start_env) = file.render();
        let start = format!("{before}{env}{after}");
        // A file with no line break at all has no line-ending style to keep.
        let crlf = file.crlf && start.contains("\r\n");
        let no_env = match file.layout {
            Layout::None => true,
            Layout::IndexOnly => file.index.is_empty(),
            _ => false,
        };
        check_runs(&start, start_env, &runs, |text| {
            if no_env {
                prop_assert!(is_single_insertion(&start, text), "bytes outside the new block changed:\n{}", text);
            } else {
                // Index assignments can all be unset, leaving no env at all; a later `set` then adds
                // a new block where a file without env gets one, which may be after `after`. Either
                // way every byte outside the env statements stays, in order.
                let env_in_place = text.starts_with(&before)
                    && text.ends_with(&after)
                    && text.len() >= before.len() + after.len();
                let without_env = format!("{before}{after}");
                prop_assert!(
                    env_in_place || is_single_insertion(&without_env, text),
                    "bytes outside the env changed:\n{}",
                    text
                );
            }
            if crlf {
                prop_assert!(!has_bare_lf(text), "a bare LF in a CRLF file:\n{:?}", text);
            }
            Ok(())
        })?;
    }
}
