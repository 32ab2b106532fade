//! `duo-selfhost generate-assets` (hidden): writes completions/ and man/ from the clap model,
//! or with `--check` reports which committed files are stale (a test runs the check); with
//! `--packaging` also the unit and example config the packages install (scripts/package).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, GenerateAssetsArgs};
use crate::error::{ExitStatus, Problem};
use crate::output::Printer;

const SHELLS: [(Shell, &str); 5] = [
    (Shell::Bash, "duo-selfhost.bash"),
    (Shell::Zsh, "_duo-selfhost"),
    (Shell::Fish, "duo-selfhost.fish"),
    (Shell::PowerShell, "_duo-selfhost.ps1"),
    (Shell::Elvish, "duo-selfhost.elv"),
];

/// Every generated file, as (path relative to the output dir, contents).
pub fn render_assets() -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files = Vec::new();
    for (shell, name) in SHELLS {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "duo-selfhost", &mut buf);
        files.push((Path::new("completions").join(name), buf));
    }
    let mut root = Cli::command();
    root.build();
    render_man_pages(&root, "duo-selfhost", &mut files)?;
    Ok(files)
}

/// One page for the tool, then one per (visible) subcommand, recursively.
fn render_man_pages(
    command: &clap::Command,
    page_name: &str,
    files: &mut Vec<(PathBuf, Vec<u8>)>,
) -> anyhow::Result<()> {
    let page = command.clone().name(page_name.to_string());
    let mut buf = Vec::new();
    clap_mangen::Man::new(page).render(&mut buf)?;
    files.push((Path::new("man").join(format!("{page_name}.1")), buf));
    for sub in command.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        render_man_pages(sub, &format!("{page_name}-{}", sub.get_name()), files)?;
    }
    Ok(())
}

/// What the packages add (scripts/package): the unit for `serve` and its example config.
fn render_packaging() -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
    let dir = Path::new("packaging");
    Ok(vec![
        (
            dir.join("duo-selfhost-serve.service"),
            super::install::packaged_unit()?.into_bytes(),
        ),
        (
            dir.join("serve.toml"),
            crate::serve_config::PACKAGED_EXAMPLE.as_bytes().to_vec(),
        ),
    ])
}

pub fn run(args: GenerateAssetsArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let mut files = render_assets()?;
    if args.packaging {
        files.extend(render_packaging()?);
    }
    if args.check {
        let stale: Vec<String> = files
            .iter()
            .filter(|(rel, contents)| {
                std::fs::read(args.out_dir.join(rel)).ok().as_deref() != Some(contents)
            })
            .map(|(rel, _)| rel.display().to_string())
            .collect();
        if stale.is_empty() {
            printer.info(format!("{} generated files are up to date", files.len()));
            return Ok(ExitStatus::Success);
        }
        return Err(
            Problem::user(format!("stale generated files: {}", stale.join(", ")))
                .hint("cargo run -- generate-assets")
                .into(),
        );
    }
    for (rel, contents) in &files {
        let path = args.out_dir.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    printer.info(format!(
        "wrote {} files under {}",
        files.len(),
        args.out_dir.display()
    ));
    Ok(ExitStatus::Success)
}
