//! The `serve --config` file: server-wide settings at the top and one `[[model]]` table per
//! model, under the names of `serve`'s flags (with underscores). Reading it names the line of
//! anything wrong; writing it is for `install --model-runtime embedded`. Merging it with the
//! flags (which win) is `commands::serve`'s.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Problem;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// A file holding the API key (its first line), so the key stays out of this file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<PathBuf>,
    /// CPU threads split across the models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<i32>,
    /// The memory the models' weights and KV caches may take together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<ByteSize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_queue: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reuse_min_run: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_timeout: Option<u64>,
    #[serde(default, rename = "model", skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<ModelEntry>,
}

/// One `[[model]]` table.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// A catalog name or alias, or a path to a .gguf file.
    pub model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub served_model_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n_gpu_layers: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fim_tokens: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fim_layout: Option<FimLayoutName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_template: Option<PathBuf>,
}

/// `fim_layout = "psm" | "spm"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FimLayoutName {
    Psm,
    Spm,
}

/// A size in bytes, written as a number of bytes or with a binary unit: `512M`, `8G`, `1.5G`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let split = trimmed
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(split);
        let scale: u64 = match unit.trim().to_ascii_uppercase().as_str() {
            "" | "B" => 1,
            "K" | "KB" | "KIB" => 1 << 10,
            "M" | "MB" | "MIB" => 1 << 20,
            "G" | "GB" | "GIB" => 1 << 30,
            "T" | "TB" | "TIB" => 1 << 40,
            _ => {
                return Err(format!(
                    "`{text}` is not a size: use bytes or a unit such as 512M or 8G"
                ))
            }
        };
        let value: f64 = number.parse().map_err(|_| {
            format!("`{text}` is not a size: use bytes or a unit such as 512M or 8G")
        })?;
        Ok(ByteSize((value * scale as f64) as u64))
    }
}

impl std::fmt::Display for ByteSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const MIB: f64 = (1u64 << 20) as f64;
        let mib = self.0 as f64 / MIB;
        if mib >= 1024.0 {
            write!(f, "{:.1} GiB", mib / 1024.0)
        } else {
            write!(f, "{mib:.0} MiB")
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Bytes(u64),
            Text(String),
        }
        match Written::deserialize(deserializer)? {
            Written::Bytes(n) => Ok(ByteSize(n)),
            Written::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// What is wrong with a config file's text, and on which line (1-based) when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: Option<usize>,
    pub message: String,
}

pub fn parse(text: &str) -> Result<ServeFile, ParseError> {
    toml::from_str(text).map_err(|e: toml::de::Error| ParseError {
        line: e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1),
        message: e.message().trim().to_string(),
    })
}

/// "did you mean `ctx_size`? " for serde's "unknown field `ctx_sise`, expected one of `a`,
/// `b`", whose backquoted words are the key written and then the keys allowed there.
fn unknown_key_guess(message: &str) -> String {
    if !message.starts_with("unknown field") {
        return String::new();
    }
    let mut quoted = message.split('`').skip(1).step_by(2);
    match quoted.next() {
        Some(written) => crate::suggest::did_you_mean(written, quoted),
        None => String::new(),
    }
}

/// Reads and checks the file; an error names the file, the line and the fix.
pub fn read(path: &Path) -> anyhow::Result<ServeFile> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Problem::user(format!(
            "cannot read the serve config {}: {e}",
            path.display()
        ))
        .hint("pass a readable TOML file to --config")
    })?;
    let file = parse(&text).map_err(|e| {
        let at = match e.line {
            Some(line) => format!("{} line {line}", path.display()),
            None => path.display().to_string(),
        };
        Problem::user(format!("{at}: {}", e.message)).hint(format!(
            "{}the keys are serve's flag names with underscores (ctx_size, served_model_name); per-model keys go in a [[model]] table",
            unknown_key_guess(&e.message)
        ))
    })?;
    if let Some(at) = file.models.iter().position(|m| m.model.trim().is_empty()) {
        return Err(Problem::user(format!(
            "{}: [[model]] number {} has an empty `model`",
            path.display(),
            at + 1
        ))
        .hint("set model = \"<catalog name or .gguf path>\"")
        .into());
    }
    Ok(file)
}

/// The commented example the packages install as `/etc/duo-selfhost/serve.toml`.
pub const PACKAGED_EXAMPLE: &str = include_str!("../templates/serve.toml");

/// The file's text, with a header saying who wrote it.
pub fn render(file: &ServeFile, written_by: &str) -> anyhow::Result<String> {
    let body = toml::to_string_pretty(file)?;
    Ok(format!(
        "# {written_by}\n# Read by `duo-selfhost serve --config`; flags given to serve override it.\n\n{body}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_two_models_and_server_settings_parses() {
        let file = parse(
            r#"
host = "0.0.0.0"
port = 9000
memory_limit = "2G"

[[model]]
model = "smollm2-135m"
served_model_name = "small"
ctx_size = 2048
parallel = 2
fim_layout = "psm"

[[model]]
model = "/models/gemma.gguf"
"#,
        )
        .unwrap();
        assert_eq!(file.port, Some(9000));
        assert_eq!(file.memory_limit, Some(ByteSize(2 << 30)));
        assert_eq!(file.models.len(), 2);
        assert_eq!(file.models[0].served_model_name.as_deref(), Some("small"));
        assert_eq!(file.models[0].fim_layout, Some(FimLayoutName::Psm));
        assert_eq!(file.models[1].ctx_size, None);
    }

    #[test]
    fn the_packaged_example_parses_and_so_does_every_setting_it_shows_commented_out() {
        let file = parse(PACKAGED_EXAMPLE).unwrap();
        assert_eq!(file.port, Some(8080));
        assert_eq!(file.models.len(), 1);
        assert_eq!(file.models[0].model, "codestral");
        // Uncomment every line that shows a setting or a table: the keys must be real ones.
        let setting = regex::Regex::new(r"^(\[\[model\]\]|[a-z_]+ = )").unwrap();
        let uncommented: Vec<&str> = PACKAGED_EXAMPLE
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest) if setting.is_match(rest) => rest,
                _ => line,
            })
            .collect();
        let all = parse(&uncommented.join("\n")).unwrap();
        assert_eq!(all.memory_limit, Some(ByteSize(24 << 30)));
        assert_eq!(all.threads, Some(8));
        assert_eq!(all.models.len(), 2);
        assert_eq!(all.models[0].fim_layout, Some(FimLayoutName::Spm));
        assert_eq!(all.models[1].served_model_name.as_deref(), Some("mistral"));
    }

    #[test]
    fn an_unknown_key_names_its_line() {
        let err = parse("port = 1\n\n[[model]]\nmodel = \"x\"\nctx_sise = 5\n").unwrap_err();
        assert_eq!(err.line, Some(5), "{err:?}");
        assert!(err.message.contains("ctx_sise"), "{err:?}");
        let err = parse("prot = 1\n").unwrap_err();
        assert_eq!(err.line, Some(1), "{err:?}");
    }

    #[test]
    fn a_bad_value_names_its_line() {
        let err = parse("port = 1\nmemory_limit = \"lots\"\n").unwrap_err();
        assert_eq!(err.line, Some(2), "{err:?}");
        assert!(err.message.contains("not a size"), "{err:?}");
        let err = parse("[[model]]\nmodel = \"x\"\nfim_layout = \"pms\"\n").unwrap_err();
        assert_eq!(err.line, Some(3), "{err:?}");
    }

    #[test]
    fn sizes_take_units() {
        assert_eq!("512M".parse::<ByteSize>(), Ok(ByteSize(512 << 20)));
        assert_eq!("1.5G".parse::<ByteSize>(), Ok(ByteSize(3 << 29)));
        assert_eq!("1000".parse::<ByteSize>(), Ok(ByteSize(1000)));
        assert!("8X".parse::<ByteSize>().is_err());
        assert!("".parse::<ByteSize>().is_err());
    }

    #[test]
    fn what_is_rendered_reads_back_the_same() {
        let file = ServeFile {
            port: Some(8080),
            host: Some("0.0.0.0".into()),
            models: vec![ModelEntry {
                model: "smollm2-135m".into(),
                served_model_name: Some("smollm2".into()),
                ..ModelEntry::default()
            }],
            ..ServeFile::default()
        };
        let text = render(&file, "written by a test").unwrap();
        assert!(text.contains("[[model]]"), "{text}");
        assert_eq!(parse(&text).unwrap(), file);
    }
}
