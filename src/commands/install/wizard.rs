//! The questions only a person can answer, asked by `install` on a terminal when no flag
//! answered them: how the model is served, which model (sized to this host), and the GitLab
//! token (hidden, never echoed or stored). Without a terminal each has the old default.

use crate::catalog::{self, Model, Platform};
use crate::cli::ModelRuntime;
use crate::output::Printer;
use crate::secret::Secret;

/// Memory a model may use on this host: the GPUs' memory when nvidia-smi lists any, else RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostMemory {
    pub ram_bytes: Option<u64>,
    pub gpu_bytes: Option<u64>,
}

impl HostMemory {
    /// What this host has, read from /proc/meminfo and `nvidia-smi`.
    pub fn detect() -> Self {
        HostMemory {
            ram_bytes: ram_bytes(),
            gpu_bytes: gpu_bytes(),
        }
    }

    /// The memory a GGUF of `bytes` must fit in, with a fifth on top for its context.
    fn fits(&self, bytes: u64) -> bool {
        let budget = self.gpu_bytes.or(self.ram_bytes);
        budget.is_none_or(|budget| bytes.saturating_mul(6) / 5 <= budget)
    }

    fn describe(&self) -> String {
        let gib = |b: u64| format!("{:.0} GiB", b as f64 / (1u64 << 30) as f64);
        match (self.gpu_bytes, self.ram_bytes) {
            (Some(gpu), _) => format!("{} of GPU memory", gib(gpu)),
            (None, Some(ram)) => format!("{} of memory, no GPU", gib(ram)),
            (None, None) => "unknown memory".to_string(),
        }
    }
}

fn ram_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn gpu_bytes() -> Option<u64> {
    let out = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=memory.total", "--format=csv,noheader,nounits"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let mib: u64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .sum();
    (mib > 0).then_some(mib * 1024 * 1024)
}

/// The serving choices in the order the question lists them.
const RUNTIMES: &[(ModelRuntime, &str)] = &[
    (
        ModelRuntime::Embedded,
        "duo-selfhost serve on this host (llama.cpp, a GGUF from the catalog)",
    ),
    (
        ModelRuntime::Vllm,
        "a vLLM container on this host (needs an NVIDIA GPU)",
    ),
    (
        ModelRuntime::None,
        "an OpenAI-compatible endpoint that already exists",
    ),
];

/// How the model is served: the flag, else the question, else an existing endpoint.
pub fn model_runtime(
    flag: Option<ModelRuntime>,
    printer: &Printer,
) -> anyhow::Result<ModelRuntime> {
    if let Some(runtime) = flag {
        return Ok(runtime);
    }
    if !printer.interactive {
        return Ok(ModelRuntime::None);
    }
    let items: Vec<&str> = RUNTIMES.iter().map(|(_, text)| *text).collect();
    let chosen = dialoguer::Select::new()
        .with_prompt("How is the model served?")
        .items(&items)
        .default(0)
        .interact()?;
    Ok(RUNTIMES[chosen].0)
}

/// Catalog models `serve` can run that fit this host, largest first.
pub fn embedded_choices(memory: &HostMemory) -> Vec<&'static Model> {
    let mut fitting: Vec<(&'static Model, u64)> = catalog::MODELS
        .iter()
        .filter(|m| m.platforms.contains(&Platform::Local))
        .filter_map(|m| Some((m, catalog::estimated_gguf_bytes(m)?)))
        .filter(|(_, bytes)| memory.fits(*bytes))
        .collect();
    fitting.sort_by_key(|(_, bytes)| std::cmp::Reverse(*bytes));
    fitting.into_iter().map(|(m, _)| m).collect()
}

fn model_line(model: &Model) -> String {
    let serves: Vec<&str> = model
        .uses()
        .into_iter()
        .map(catalog::DuoUse::short)
        .collect();
    let size = catalog::estimated_gguf_bytes(model)
        .map(|b| format!(", ~{}", indicatif::HumanBytes(b)))
        .unwrap_or_default();
    format!("{} ({}{size})", model.name, serves.join(", "))
}

/// The model `serve` runs on this host: the flag, else a question over the catalog models that
/// fit this host's memory, else the demo model.
pub fn embedded_model(flag: Option<&str>, printer: &Printer) -> anyhow::Result<String> {
    if let Some(model) = flag {
        return Ok(model.to_string());
    }
    if !printer.interactive {
        return Ok(catalog::DEMO_MODEL.to_string());
    }
    let memory = HostMemory::detect();
    let choices = embedded_choices(&memory);
    if choices.is_empty() {
        return Ok(catalog::DEMO_MODEL.to_string());
    }
    let items: Vec<String> = choices.iter().map(|m| model_line(m)).collect();
    let chosen = dialoguer::Select::new()
        .with_prompt(format!(
            "Which model? (those that fit this host: {})",
            memory.describe()
        ))
        .items(&items)
        .default(0)
        .interact()?;
    Ok(choices[chosen].name.to_string())
}

/// The model vLLM serves: the flag, else a question over the catalog's vLLM models (or another
/// repository, typed in).
pub fn vllm_model(flag: Option<&str>, printer: &Printer) -> anyhow::Result<Option<String>> {
    if let Some(model) = flag {
        return Ok(Some(model.to_string()));
    }
    if !printer.interactive {
        return Ok(None);
    }
    let choices: Vec<&Model> = catalog::MODELS
        .iter()
        .filter(|m| m.vllm.is_some())
        .collect();
    let mut items: Vec<String> = choices.iter().map(|m| model_line(m)).collect();
    items.push("another Hugging Face repository (owner/name) or directory".to_string());
    let chosen = dialoguer::Select::new()
        .with_prompt("Which model does vLLM serve?")
        .items(&items)
        .default(0)
        .interact()?;
    if let Some(model) = choices.get(chosen) {
        return Ok(Some(model.name.to_string()));
    }
    let typed: String = dialoguer::Input::new()
        .with_prompt("Hugging Face repository or absolute directory")
        .interact_text()?;
    Ok(Some(typed.trim().to_string()))
}

/// The catalog model an existing endpoint serves, for registering it in GitLab; `None` when
/// it is not in the catalog (it is then not registered).
pub fn endpoint_model(flag: Option<&str>, printer: &Printer) -> anyhow::Result<Option<String>> {
    if let Some(model) = flag {
        return Ok(Some(model.to_string()));
    }
    if !printer.interactive {
        return Ok(None);
    }
    let mut items: Vec<String> = catalog::MODELS.iter().map(model_line).collect();
    items.push("another model (not registered in GitLab by install)".to_string());
    let chosen = dialoguer::Select::new()
        .with_prompt("Which model does the endpoint serve?")
        .items(&items)
        .default(0)
        .interact()?;
    Ok(catalog::MODELS.get(chosen).map(|m| m.name.to_string()))
}

/// The GitLab token, asked with hidden input when none was given; empty means "none".
pub fn gitlab_token(
    given: Option<Secret>,
    version: &semver::Version,
    printer: &Printer,
) -> anyhow::Result<Option<Secret>> {
    if given.as_ref().is_some_and(|t| !t.is_empty()) || !printer.interactive {
        return Ok(given.filter(|t| !t.is_empty()));
    }
    let what = if *version >= crate::gitlab_config::setting_version() {
        "to set the Local AI Gateway URL and register the model"
    } else {
        "to turn on ai_custom_model and register the model"
    };
    let token = dialoguer::Password::new()
        .with_prompt(format!(
            "GitLab administrator token (api scope) {what}; empty to do that by hand"
        ))
        .allow_empty_password(true)
        .interact()?;
    Ok(Some(Secret::new(token.trim().to_string())).filter(|t| !t.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_models_offered_fit_the_memory() {
        let small = HostMemory {
            ram_bytes: Some(1 << 30),
            gpu_bytes: None,
        };
        let names: Vec<&str> = embedded_choices(&small).iter().map(|m| m.name).collect();
        assert_eq!(names, vec!["smollm2-135m"]);
        let big = HostMemory {
            ram_bytes: Some(8 << 30),
            gpu_bytes: Some(24 << 30),
        };
        let names: Vec<&str> = embedded_choices(&big).iter().map(|m| m.name).collect();
        assert!(names.contains(&"codestral-22b"), "{names:?}");
        assert!(!names.contains(&"mixtral-8x22b-instruct"), "{names:?}");
        assert_eq!(names.last(), Some(&"smollm2-135m"));
    }
}
