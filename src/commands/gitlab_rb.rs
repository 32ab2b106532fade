//! `duo-selfhost gitlab-rb show|set|unset`: read the effective gitlab_rails['env'], or change
//! it with a reviewed, backed-up, atomic edit.

use crate::cli::{GitlabRbCommand, GitlabRbEditArgs, GitlabRbSetArgs, GitlabRbUnsetArgs};
use crate::error::{ExitStatus, Problem};
use crate::gitlab_rb::{self, EditOptions, EnvChange};
use crate::output::Printer;

pub fn run(command: GitlabRbCommand, printer: &Printer) -> anyhow::Result<ExitStatus> {
    match command {
        GitlabRbCommand::Show(args) => show(&args.file.file, printer),
        GitlabRbCommand::Set(args) => set(args, printer),
        GitlabRbCommand::Unset(args) => unset(args, printer),
    }
}

fn show(path: &std::path::Path, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let env = gitlab_rb::read_effective_env(path)?;
    if printer.json {
        let object: serde_json::Map<String, serde_json::Value> = env
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
            .collect();
        printer.json_document(&serde_json::Value::Object(object));
        return Ok(ExitStatus::Success);
    }
    if env.is_empty() {
        printer.info(format!(
            "{}: no active gitlab_rails['env'] (omnibus uses its defaults)",
            path.display()
        ));
    }
    for (key, value) in env.iter() {
        printer.result(format!("{key}={value}"));
    }
    Ok(ExitStatus::Success)
}

fn parse_assignment(text: &str) -> anyhow::Result<EnvChange> {
    match text.split_once('=') {
        Some((key, value)) => Ok(EnvChange::set(key, value)),
        None => Err(Problem::user(format!("`{text}` is not KEY=VALUE"))
            .hint("write it as KEY=VALUE, for example AI_GATEWAY_URL=http://aigw.example.com:5052")
            .into()),
    }
}

fn options(edit: &GitlabRbEditArgs) -> EditOptions {
    EditOptions {
        dry_run: edit.dry_run,
        reconfigure: edit.reconfigure,
    }
}

fn set(args: GitlabRbSetArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let changes = args
        .assignments
        .iter()
        .map(|a| parse_assignment(a))
        .collect::<anyhow::Result<Vec<_>>>()?;
    apply(&args.file.file, &changes, &options(&args.edit), printer)
}

fn unset(args: GitlabRbUnsetArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let changes: Vec<EnvChange> = args.keys.iter().map(EnvChange::unset).collect();
    apply(&args.file.file, &changes, &options(&args.edit), printer)
}

fn apply(
    path: &std::path::Path,
    changes: &[EnvChange],
    options: &EditOptions,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let outcome = gitlab_rb::edit(path, changes, options, printer)?;
    if printer.json {
        printer.json_document(&serde_json::to_value(&outcome)?);
    }
    Ok(ExitStatus::Success)
}
