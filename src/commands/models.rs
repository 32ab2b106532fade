//! `duo-selfhost models list|pull|path|register`: the catalog as a table, downloads into the
//! Hugging Face cache, where a model's GGUF is, and (`register`) the model made known to
//! GitLab. The catalog data lives in `catalog`, the cache and the download in `model_cache`.

use indicatif::HumanBytes;
use serde_json::json;

use crate::catalog::{self, FimFormat, Platform};
use crate::cli::{ModelsCommand, ModelsPathArgs, ModelsPullArgs};
use crate::error::ExitStatus;
use crate::model_cache::{self, PullOutcome};
use crate::output::{self, Mark, Printer};

use super::progress::{PullBars, PullLook};

pub mod register;

pub fn run(command: ModelsCommand, printer: &Printer) -> anyhow::Result<ExitStatus> {
    match command {
        ModelsCommand::List(_) => list(printer),
        ModelsCommand::Pull(args) => pull(args, printer),
        ModelsCommand::Path(args) => path(args, printer),
        ModelsCommand::Register(args) => register::run(*args, printer),
    }
}

#[derive(tabled::Tabled)]
struct ModelRow {
    #[tabled(rename = "NAME")]
    name: String,
    #[tabled(rename = "ALIASES")]
    aliases: String,
    #[tabled(rename = "FAMILY")]
    family: String,
    #[tabled(rename = "STATUS")]
    status: String,
    #[tabled(rename = "COMPLETION")]
    code_completion: &'static str,
    #[tabled(rename = "GENERATION")]
    code_generation: &'static str,
    #[tabled(rename = "CHAT")]
    chat: &'static str,
    #[tabled(rename = "PLATFORMS")]
    platforms: String,
    #[tabled(rename = "GGUF")]
    gguf: String,
    #[tabled(rename = "FIM")]
    fim: String,
    #[tabled(rename = "CACHED")]
    cached: &'static str,
}

fn list(printer: &Printer) -> anyhow::Result<ExitStatus> {
    if printer.json {
        let models: Vec<serde_json::Value> = catalog::MODELS
            .iter()
            .map(|model| {
                let cached = model_cache::locate(model);
                let mut value = serde_json::to_value(model).unwrap_or_default();
                value["cached"] = json!(cached.is_some());
                value["path"] = json!(cached.map(|p| p.display().to_string()));
                value
            })
            .collect();
        printer.json_document(&serde_json::Value::Array(models));
        return Ok(ExitStatus::Success);
    }
    let rows = catalog::MODELS.iter().map(|model| ModelRow {
        name: model.name.to_string(),
        aliases: or_dash(model.aliases.join(", ")),
        family: model.family.to_string(),
        status: serde_plain(&model.status),
        code_completion: capability(model.code_completion),
        code_generation: capability(model.code_generation),
        chat: capability(model.chat),
        platforms: model
            .platforms
            .iter()
            .map(platform_name)
            .collect::<Vec<_>>()
            .join(", "),
        gguf: model
            .gguf
            .as_ref()
            .map(|g| match g.bytes {
                Some(bytes) => format!("{} {}", g.quant, HumanBytes(bytes)),
                None => g.quant.to_string(),
            })
            .unwrap_or_else(|| "-".to_string()),
        fim: match model.fim_format {
            FimFormat::None => "none (emulated)".to_string(),
            format => serde_plain(&format),
        },
        cached: if model_cache::locate(model).is_some() {
            Mark::Ok.glyph()
        } else {
            Mark::Skip.glyph()
        },
    });
    printer.result(output::table(rows));
    printer.info(format!(
        "cache: {}   download: duo-selfhost models pull NAME",
        model_cache::hf_home().join("hub").display()
    ));
    Ok(ExitStatus::Success)
}

fn capability(yes: bool) -> &'static str {
    if yes {
        Mark::Ok.glyph()
    } else {
        Mark::Skip.glyph()
    }
}

fn or_dash(text: String) -> String {
    if text.is_empty() {
        "-".to_string()
    } else {
        text
    }
}

fn platform_name(platform: &Platform) -> &'static str {
    match platform {
        Platform::Local => "local",
        Platform::Vllm => "vllm",
        Platform::Bedrock => "bedrock",
    }
}

/// A unit enum variant as its serde name (`approved`, `codestral`), the same word `--json` uses.
fn serde_plain(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "-".to_string(),
    }
}

fn pull(args: ModelsPullArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let model = model_cache::find_model(&args.name)?;
    let source = model_cache::local_source(model)?;
    let endpoint = model_cache::hf_endpoint();
    let token = model_cache::hf_token();
    let reporter = PullBars::new(printer, source.file, PullLook::OnItsOwn);
    let pulled = super::runtime()?.block_on(model_cache::pull(
        source,
        &endpoint,
        token.as_ref(),
        &reporter,
    ))?;

    if printer.json {
        let (status, resumed_from) = match pulled.outcome {
            PullOutcome::AlreadyCached => ("cached", 0),
            PullOutcome::Downloaded { resumed_from, .. } => ("downloaded", resumed_from),
        };
        printer.json_document(&json!({
            "name": model.name,
            "status": status,
            "path": pulled.path.display().to_string(),
            "bytes": pulled.bytes,
            "sha256": pulled.sha256,
            "resumed_from": resumed_from,
        }));
        return Ok(ExitStatus::Success);
    }
    let verified = match &pulled.sha256 {
        Some(_) => "size and sha256 verified",
        None => "size verified; the catalog pins no sha256",
    };
    match pulled.outcome {
        PullOutcome::AlreadyCached => printer.info(format!(
            "{} {} is already in the cache ({}, {verified})",
            printer.mark(Mark::Ok),
            model.name,
            HumanBytes(pulled.bytes)
        )),
        PullOutcome::Downloaded { resumed_from, .. } => {
            let resumed = if resumed_from > 0 {
                format!(", resumed at {}", HumanBytes(resumed_from))
            } else {
                String::new()
            };
            printer.info(format!(
                "{} downloaded {} ({}{resumed}, {verified})",
                printer.mark(Mark::Ok),
                model.name,
                HumanBytes(pulled.bytes)
            ));
        }
    }
    printer.result(pulled.path.display().to_string());
    Ok(ExitStatus::Success)
}

fn path(args: ModelsPathArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let model = model_cache::find_model(&args.name)?;
    model_cache::local_source(model)?;
    let path = model_cache::locate(model).ok_or_else(|| model_cache::not_cached(model))?;
    if printer.json {
        printer.json_document(&json!({
            "name": model.name,
            "path": path.display().to_string(),
        }));
    } else {
        printer.result(path.display().to_string());
    }
    Ok(ExitStatus::Success)
}
