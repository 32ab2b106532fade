//! `doctor --bundle FILE.tar.gz`: what GitLab support asks for, gathered after the checks: the
//! report, versions, the gateway container's env and last log lines, gitlab.rb's env block and
//! the model server's `/v1/models` and `/metrics`. Every value that looks secret is redacted
//! and every known secret scrubbed before a byte is written; the archive appears atomically.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use super::Context;
use crate::docker;
use crate::error::Problem;
use crate::secret::{is_secret_name, scrub, Secret};

/// Gateway log lines a bundle keeps.
pub const LOG_LINES: usize = 500;

/// The folder every file of the archive sits in.
const ROOT: &str = "duo-selfhost-bundle";

/// Refuses a path that cannot become the archive, before any check runs.
pub fn check_target(path: &Path) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !(name.ends_with(".tar.gz") || name.ends_with(".tgz")) {
        return Err(Problem::user(format!(
            "--bundle {} is not a .tar.gz file name",
            path.display()
        ))
        .hint("--bundle duo-selfhost-bundle.tar.gz")
        .into());
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(Problem::user(format!(
            "the folder {} for --bundle does not exist",
            dir.display()
        ))
        .hint(format!("mkdir -p {}", dir.display()))
        .into());
    }
    Ok(())
}

/// A value with the user and password of any URL in it removed (`http://u:p@proxy` ->
/// `http://proxy`), for env values whose name does not look secret.
fn without_url_credentials(value: &str) -> String {
    value
        .split(',')
        .map(|part| {
            if part.contains("://") && part.contains('@') {
                super::gitlab::strip_credentials(part)
            } else {
                part.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `KEY=VALUE` lines, secret-looking names (`secret::is_secret_name`) as `****`
/// and credentials in URLs removed; the values taken out join `secrets`, so that no copy of
/// them elsewhere (a log line) survives either.
fn redacted_env<'a>(
    env: impl IntoIterator<Item = (&'a String, &'a String)>,
    secrets: &mut Vec<Secret>,
) -> String {
    let mut text = String::new();
    for (key, value) in env {
        let shown = if is_secret_name(key) {
            secrets.push(Secret::new(value.clone()));
            "****".to_string()
        } else {
            let clean = without_url_credentials(value);
            if let Ok(url) = url::Url::parse(value) {
                secrets.extend(url.password().map(|p| Secret::new(p.to_string())));
            }
            clean
        };
        text.push_str(&format!("{key}={shown}\n"));
    }
    text
}

async fn fetch_text(ctx: &Context, url: &str) -> String {
    let client = match ctx.http_client(false) {
        Ok(client) => client,
        Err(outcome) => return format!("could not fetch {url}: {}\n", outcome.message),
    };
    let mut request = client.get(url);
    if let Some(key) = &ctx.inputs.model_api_key {
        request = request.bearer_auth(key.expose());
    }
    match super::http::send(request, Duration::from_secs(10)).await {
        Ok(answer) => String::from_utf8_lossy(&answer.body).into_owned(),
        Err(failure) => format!("GET {url} {}\n", failure.describe()),
    }
}

/// Collects the bundle's files (name, content), every secret already scrubbed.
pub async fn collect(ctx: &Context, report: &serde_json::Value) -> Vec<(String, String)> {
    let facts = ctx.facts();
    let mut secrets: Vec<Secret> = ctx.inputs.secrets().into_iter().cloned().collect();
    let mut files: Vec<(String, String)> = Vec::new();
    files.push((
        "doctor.json".into(),
        serde_json::to_string_pretty(report).unwrap_or_default(),
    ));

    let engine = match (&facts.docker, &ctx.inputs.container) {
        (Some(docker), _) => Some(docker.clone()),
        (None, Some(_)) => docker::connect().await.ok(),
        (None, None) => None,
    };
    let engine_version = match &engine {
        Some(docker) => docker.version().await.ok().and_then(|v| v.version),
        None => None,
    };
    let mut gateway_image = None;
    match (&engine, &ctx.inputs.container) {
        (Some(docker), Some(name)) => match docker::inspect_container(docker, name).await {
            Ok(Some(container)) => {
                gateway_image = container.config.as_ref().and_then(|c| c.image.clone());
                let env = docker::env_of(&container);
                files.push(("gateway/env.txt".into(), redacted_env(&env, &mut secrets)));
                let mut logs = docker::last_log_lines(docker, name, LOG_LINES)
                    .await
                    .join("\n");
                logs.push('\n');
                files.push(("gateway/logs.txt".into(), logs));
            }
            Ok(None) => files.push((
                "gateway/missing.txt".into(),
                format!("there is no container named {name}\n"),
            )),
            Err(e) => files.push(("gateway/error.txt".into(), format!("{e:#}\n"))),
        },
        (None, Some(name)) => files.push((
            "gateway/error.txt".into(),
            format!("the Docker Engine could not be reached to read {name}\n"),
        )),
        (_, None) => files.push((
            "gateway/none.txt".into(),
            "no gateway container named (--container)\n".into(),
        )),
    }

    let rb_env: Option<BTreeMap<String, String>> = facts.gitlab_rb_env.clone().or_else(|| {
        let path = ctx.inputs.gitlab_rb.as_deref()?;
        let text = std::fs::read_to_string(path).ok()?;
        let env = crate::gitlab_rb::effective_env(&text).ok()?;
        Some(env.0.into_iter().collect())
    });
    files.push((
        "gitlab.rb-env.txt".into(),
        match &rb_env {
            Some(env) => redacted_env(env, &mut secrets),
            None => "gitlab.rb could not be read here\n".into(),
        },
    ));

    if let Some(endpoint) = &ctx.inputs.model_endpoint {
        let models = super::model::models_url(endpoint);
        let base = models.trim_end_matches("/v1/models").to_string();
        files.push((
            "serve/v1-models.json".into(),
            fetch_text(ctx, &models).await,
        ));
        files.push((
            "serve/metrics.txt".into(),
            fetch_text(ctx, &format!("{base}/metrics")).await,
        ));
    }

    let versions = serde_json::json!({
        "duo_selfhost": env!("CARGO_PKG_VERSION"),
        "gitlab": ctx.gitlab_version().map(|v| v.to_string()),
        "docker_engine": engine_version,
        "gateway_image": gateway_image,
        "served_models": facts.served_models,
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    });
    files.push((
        "versions.json".into(),
        serde_json::to_string_pretty(&versions).unwrap_or_default(),
    ));

    // Short values would blot out ordinary words; secrets are longer than that.
    let secrets: Vec<&Secret> = secrets.iter().filter(|s| s.expose().len() >= 6).collect();
    files
        .into_iter()
        .map(|(name, text)| (name, scrub(&text, &secrets)))
        .collect()
}

/// Writes the files as `path` (gzip'd tar under one folder), through a temporary file in the
/// same folder renamed into place, so that a reader never sees half an archive.
pub fn write(path: &Path, files: &[(String, String)]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| Problem::user(format!("cannot write in {}: {e}", dir.display())))?;
    let gz = flate2::write::GzEncoder::new(tmp.as_file(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for (name, text) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(now);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, format!("{ROOT}/{name}"), text.as_bytes())?;
    }
    let mut gz = tar.into_inner()?;
    gz.flush()?;
    gz.finish()?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .map_err(|e| Problem::user(format!("cannot write {}: {}", path.display(), e.error)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_redaction_hides_secret_names_and_url_passwords() {
        let env: BTreeMap<String, String> = [
            ("AIGW_SELF_SIGNED_JWT__SIGNING_KEY", "pem-secret-value"),
            (
                "HTTPS_PROXY",
                "http://alice:proxy-pass-123@proxy.example:3128",
            ),
            ("AIGW_GITLAB_URL", "https://gitlab.example.com"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut secrets = Vec::new();
        let text = redacted_env(&env, &mut secrets);
        assert!(text.contains("AIGW_SELF_SIGNED_JWT__SIGNING_KEY=****\n"));
        assert!(text.contains("AIGW_GITLAB_URL=https://gitlab.example.com\n"));
        assert!(!text.contains("pem-secret-value") && !text.contains("proxy-pass-123"));
        assert!(!text.contains("alice"), "{text}");
        let known: Vec<&str> = secrets.iter().map(|s| s.expose()).collect();
        assert!(known.contains(&"pem-secret-value") && known.contains(&"proxy-pass-123"));
    }

    #[test]
    fn targets_must_be_tar_gz_in_an_existing_folder() {
        assert!(check_target(Path::new("out.zip")).is_err());
        assert!(check_target(Path::new("/no/such/folder/b.tar.gz")).is_err());
        assert!(check_target(Path::new("b.tar.gz")).is_ok());
    }
}
