//! The embedded model runtime (`--model-runtime embedded`): the serve config and the systemd
//! unit that runs `duo-selfhost serve --config` (also the unit the packages ship), written only
//! when they differ, and the unit enabled where systemd runs. Not the server itself (`serve`).

use std::path::{Path, PathBuf};

use super::plan::served_name;
use super::settings::Settings;
use crate::error::Problem;
use crate::model_cache;
use crate::output::{Mark, Printer};
use crate::serve_config::{self, ModelEntry, ServeFile};

/// The port `duo-selfhost serve` listens on under the systemd unit.
pub(super) const EMBEDDED_PORT: u16 = 8080;
pub(super) const UNIT_NAME: &str = "duo-selfhost-serve.service";
/// Where the serve config goes on a systemd host (the unit's EnvironmentFile is there too).
const SYSTEM_CONFIG_DIR: &str = "/etc/duo-selfhost";
const SERVE_CONFIG_NAME: &str = "serve.toml";
const UNIT_TEMPLATE: &str = include_str!("../../../templates/duo-selfhost-serve.service");

/// The systemd unit for `duo-selfhost serve --config`, from templates/.
pub fn render_unit(unit: &ServeUnit) -> anyhow::Result<String> {
    let env = minijinja::Environment::new();
    Ok(env.render_str(
        UNIT_TEMPLATE,
        minijinja::context! {
            written_by => unit.written_by,
            exe => unit.exe.display().to_string(),
            config => unit.config.display().to_string(),
            models => unit.models,
            hf_home => unit.hf_home.map(|p| p.display().to_string()),
        },
    )?)
}

/// What the systemd unit for `duo-selfhost serve --config` is rendered from.
pub struct ServeUnit<'a> {
    /// Who wrote the unit and what rewrites it (its first comment line).
    pub written_by: &'a str,
    pub exe: &'a Path,
    pub config: &'a Path,
    /// The models served, for the unit's description.
    pub models: &'a str,
    /// The Hugging Face cache; `None` leaves the service user's own default.
    pub hf_home: Option<&'a Path>,
}

/// The unit the .deb/.rpm/tarball ship (`generate-assets --packaging`): the packaged binary
/// with the packaged config, root's own model cache, enabled by nobody until an admin is.
pub fn packaged_unit() -> anyhow::Result<String> {
    render_unit(&ServeUnit {
        written_by: "Installed by the duo-selfhost package. Override it with `systemctl edit duo-selfhost-serve`; `duo-selfhost install --model-runtime embedded` writes its own unit in /etc/systemd/system.",
        exe: Path::new("/usr/bin/duo-selfhost"),
        config: Path::new("/etc/duo-selfhost/serve.toml"),
        models: "the models in /etc/duo-selfhost/serve.toml",
        hf_home: None,
    })
}

/// The serve config the unit runs: the model under its served name, on every interface.
pub fn embedded_serve_config(model: &str, served_model_name: &str) -> anyhow::Result<String> {
    let file = ServeFile {
        host: Some("0.0.0.0".into()),
        port: Some(EMBEDDED_PORT),
        models: vec![ModelEntry {
            model: model.to_string(),
            served_model_name: Some(served_model_name.to_string()),
            ..ModelEntry::default()
        }],
        ..ServeFile::default()
    };
    serve_config::render(
        &file,
        "Written by `duo-selfhost install --model-runtime embedded`; a rerun of install rewrites it.",
    )
}

/// Writes the unit for `duo-selfhost serve` and starts it where systemd runs; elsewhere writes
/// it beside the state file and says how to run the server.
pub(super) fn install_embedded_unit(
    settings: &Settings,
    state_path: &Path,
    printer: &Printer,
) -> anyhow::Result<()> {
    let model = settings
        .model
        .clone()
        .unwrap_or_else(|| crate::catalog::DEMO_MODEL.to_string());
    let served = served_name(settings, &model);
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("duo-selfhost"));
    let systemd = Path::new("/run/systemd/system").is_dir();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let beside_state = state_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let config_dir = if systemd && root {
        Path::new(SYSTEM_CONFIG_DIR)
    } else {
        beside_state
    };
    let config_path = config_dir.join(SERVE_CONFIG_NAME);
    let hf_home = model_cache::hf_home();
    let unit = render_unit(&ServeUnit {
        written_by:
            "Written by `duo-selfhost install --model-runtime embedded`; `install` rewrites it.",
        exe: &exe,
        config: &config_path,
        models: &model,
        hf_home: Some(&hf_home),
    })?;
    // The config first: the unit names it.
    write_if_changed(&config_path, &embedded_serve_config(&model, &served)?)?;
    if systemd && root {
        let path = Path::new("/etc/systemd/system").join(UNIT_NAME);
        write_if_changed(&path, &unit)?;
        for args in [vec!["daemon-reload"], vec!["enable", "--now", UNIT_NAME]] {
            let status = std::process::Command::new("systemctl")
                .args(&args)
                .status()?;
            if !status.success() {
                return Err(Problem::user(format!(
                    "systemctl {} failed ({status})",
                    args.join(" ")
                ))
                .hint(format!("journalctl -u {UNIT_NAME} shows why"))
                .into());
            }
        }
        printer.info(format!(
            "{} {UNIT_NAME} is enabled and started",
            printer.mark(Mark::Ok)
        ));
    } else {
        let path = beside_state.join(UNIT_NAME);
        write_if_changed(&path, &unit)?;
        printer.warn(format!(
            "systemd is not running here{}, so the model server was not started. Run it with:\n  {} serve --config {}\n(the unit for a systemd host is in {})",
            if root { "" } else { " (or this is not root)" },
            exe.display(),
            config_path.display(),
            path.display()
        ));
    }
    Ok(())
}

fn write_if_changed(path: &Path, text: &str) -> anyhow::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())?;
    tmp.persist(path)
        .map_err(|e| anyhow::Error::new(e.error).context(format!("writing {}", path.display())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_runs_serve_with_its_config() {
        let unit = render_unit(&ServeUnit {
            written_by: "Written by a test.",
            exe: Path::new("/usr/local/bin/duo-selfhost"),
            config: Path::new("/etc/duo-selfhost/serve.toml"),
            models: "smollm2-135m",
            hf_home: Some(Path::new("/var/cache/hf")),
        })
        .unwrap();
        assert!(
            unit.contains(
                "ExecStart=/usr/local/bin/duo-selfhost serve --config /etc/duo-selfhost/serve.toml"
            ),
            "{unit}"
        );
        assert!(unit.contains("Environment=HF_HOME=/var/cache/hf"));
        assert!(unit.contains("WantedBy=multi-user.target"));
    }

    #[test]
    fn the_serve_config_holds_the_model_and_its_served_name() {
        let text = embedded_serve_config("smollm2-135m", "smollm2").unwrap();
        let file = serve_config::parse(&text).unwrap();
        assert_eq!(file.host.as_deref(), Some("0.0.0.0"));
        assert_eq!(file.port, Some(EMBEDDED_PORT));
        assert_eq!(file.models.len(), 1);
        assert_eq!(file.models[0].model, "smollm2-135m");
        assert_eq!(file.models[0].served_model_name.as_deref(), Some("smollm2"));
    }
}
