//! The vLLM container as GitLab's vLLM pages run it (reference 3.5): the repository a catalog
//! name resolves to, the family's flags, the tensor-parallel size from the GPUs, the context
//! length, the Hugging Face cache `models pull` fills, and the token for gated repositories.
//! It builds a [`ContainerSpec`]; it neither prints nor talks to Docker (`commands::install` does).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::catalog::{self, Model, VllmLoad};
use crate::docker::{self, ContainerSpec, Gpus, HttpProbe, PortMapping};
use crate::error::Problem;
use crate::secret::Secret;

/// The port vLLM serves on.
pub const PORT: u16 = 8000;
/// Where the host's Hugging Face cache is mounted inside the container (its `HF_HOME`).
const CONTAINER_HF_HOME: &str = "/root/.cache/huggingface";
/// The variable the token reaches vLLM (huggingface_hub) by inside the container.
const CONTAINER_TOKEN_VAR: &str = "HF_TOKEN";

/// The weights vLLM loads, as vLLM's `--model` takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VllmModel {
    /// A Hugging Face repository id, `owner/name`.
    Repository {
        repo: String,
        load: VllmLoad,
        catalog: Option<&'static Model>,
    },
    /// A directory on this host, mounted read-only at the same path.
    Directory(PathBuf),
}

impl VllmModel {
    /// What `--model` gets.
    pub fn argument(&self) -> String {
        match self {
            VllmModel::Repository { repo, .. } => repo.clone(),
            VllmModel::Directory(path) => path.display().to_string(),
        }
    }

    pub fn load(&self) -> VllmLoad {
        match self {
            VllmModel::Repository { load, .. } => *load,
            VllmModel::Directory(_) => VllmLoad::Default,
        }
    }

    pub fn catalog(&self) -> Option<&'static Model> {
        match self {
            VllmModel::Repository { catalog, .. } => *catalog,
            VllmModel::Directory(_) => None,
        }
    }

    /// The name served by default: the catalog name, else the last part, lowercased.
    pub fn default_served_name(&self) -> String {
        if let Some(model) = self.catalog() {
            return model.name.to_string();
        }
        catalog::short_name(&self.argument())
    }
}

/// A Hugging Face repository id: `owner/name`, each part letters, digits, `-`, `_`, `.`.
pub fn is_repository_id(text: &str) -> bool {
    let part_ok = |part: &str| {
        !part.is_empty()
            && !part.starts_with(['-', '.'])
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    matches!(text.split_once('/'), Some((owner, name)) if part_ok(owner) && part_ok(name))
}

/// A catalog name or alias, a repository id, or an absolute directory, as vLLM loads it.
/// A repository the catalog knows keeps the catalog's flags.
pub fn resolve_model(text: &str) -> Result<VllmModel, Problem> {
    let text = text.trim();
    if let Some(model) = catalog::find(text) {
        let source = model.vllm.as_ref().ok_or_else(|| {
            Problem::user(format!(
                "`{text}` ({}) is not served by vLLM: its catalog platforms are {}",
                model.title,
                model
                    .platforms
                    .iter()
                    .map(|p| format!("{p:?}").to_ascii_lowercase())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .hint("serve a GGUF with --model-runtime embedded, or give vLLM a Hugging Face repository such as --model mistralai/Mistral-7B-Instruct-v0.3")
        })?;
        return Ok(VllmModel::Repository {
            repo: source.repo.to_string(),
            load: source.load,
            catalog: Some(model),
        });
    }
    if text.starts_with('/') {
        let path = PathBuf::from(text);
        if !path.is_dir() {
            return Err(Problem::user(format!(
                "`{text}` is not a directory here: vLLM loads a model directory (config and weights)"
            ))
            .hint("give the directory that holds the model's config.json or params.json, or a Hugging Face repository id such as --model mistralai/Mistral-7B-Instruct-v0.3"));
        }
        return Ok(VllmModel::Directory(path));
    }
    if is_repository_id(text) {
        let known = catalog::MODELS.iter().find_map(|m| {
            m.vllm
                .as_ref()
                .filter(|v| v.repo.eq_ignore_ascii_case(text))
                .map(|v| (m, v))
        });
        return Ok(VllmModel::Repository {
            repo: text.to_string(),
            load: known.map_or(VllmLoad::Default, |(_, v)| v.load),
            catalog: known.map(|(m, _)| m),
        });
    }
    Err(Problem::user(format!(
        "`{text}` is not a catalog model, a Hugging Face repository id (owner/name) or an absolute directory, so vLLM could not load it"
    ))
    .hint("duo-selfhost models list shows the catalog's names; or give a repository, such as --model mistralai/Mistral-7B-Instruct-v0.3"))
}

/// The files of a repository vLLM needs for `load`, out of everything the repository holds (in
/// the order given): what a bundle carries. Repositories often ship the same weights twice or
/// three times (Hugging Face safetensors shards, Mistral's `consolidated` file, PyTorch `.bin`
/// or `.pth`, `original/`), and vLLM reads one set: with `--load_format mistral` the
/// `consolidated*.safetensors`, otherwise the other `*.safetensors` (falling back to `*.bin`
/// only when a repository has no safetensors, as vLLM's loader does). Configuration, tokenizer
/// and other small files all go along.
pub fn files_for_load<'a>(load: VllmLoad, files: &[&'a str]) -> Vec<&'a str> {
    let base = |f: &str| f.rsplit('/').next().unwrap_or(f).to_string();
    let is_consolidated =
        |f: &str| base(f).starts_with("consolidated") && f.ends_with(".safetensors");
    let has_safetensors = files
        .iter()
        .any(|f| f.ends_with(".safetensors") && !is_consolidated(f));
    files
        .iter()
        .copied()
        .filter(|f| {
            let name = base(f);
            if f.starts_with("original/") || f.starts_with('.') || name.starts_with('.') {
                return false;
            }
            // Weights vLLM never loads in these formats.
            let other_framework = [
                ".gguf", ".onnx", ".msgpack", ".h5", ".ot", ".tflite", ".mlmodel",
            ];
            if other_framework.iter().any(|ext| name.ends_with(ext)) {
                return false;
            }
            let pickled = name.ends_with(".bin") || name.ends_with(".pt") || name.ends_with(".pth");
            let pickled_index = name.ends_with(".bin.index.json");
            match load {
                VllmLoad::Mistral => {
                    !(pickled
                        || pickled_index
                        || (f.ends_with(".safetensors") && !is_consolidated(f))
                        || name == "model.safetensors.index.json")
                }
                VllmLoad::Default | VllmLoad::MixtralSafetensors => {
                    if is_consolidated(f) {
                        return false;
                    }
                    if pickled || pickled_index {
                        return !has_safetensors && load == VllmLoad::Default;
                    }
                    true
                }
            }
        })
        .collect()
}

/// Everything about the container besides the model.
#[derive(Debug, Clone)]
pub struct VllmOptions<'a> {
    pub served_model_name: &'a str,
    pub tensor_parallel_size: u32,
    pub gpus: Gpus,
    /// `--max-model-len`; `None` leaves the model's own.
    pub max_model_len: Option<u32>,
    /// The host's Hugging Face cache (`model_cache::hf_home`).
    pub hf_home: &'a Path,
    pub hf_token: Option<&'a Secret>,
    /// The image to run: [`docker::VLLM_IMAGE`], or the same image from a site registry.
    pub image: &'a str,
    /// Load the weights from the mounted cache only (`HF_HUB_OFFLINE=1`): an air-gapped host,
    /// where `bundle load` put them.
    pub offline: bool,
}

/// vLLM's arguments: the model, its served name, the GPUs, the context, the family's flags.
pub fn arguments(model: &VllmModel, options: &VllmOptions) -> Vec<String> {
    let mut args = vec![
        "--model".to_string(),
        model.argument(),
        "--served-model-name".to_string(),
        options.served_model_name.to_string(),
        "--tensor-parallel-size".to_string(),
        options.tensor_parallel_size.to_string(),
    ];
    if let Some(len) = options.max_model_len {
        args.extend(["--max-model-len".to_string(), len.to_string()]);
    }
    args.extend(model.load().flags().iter().map(|f| f.to_string()));
    args.extend([
        "--host".to_string(),
        "0.0.0.0".to_string(),
        "--port".to_string(),
        PORT.to_string(),
    ]);
    args
}

/// The vLLM container: the pinned image, the GPUs, the arguments, the Hugging Face cache as a
/// volume (and a model directory read-only), the token in its env, port 8000.
pub fn container_spec(model: &VllmModel, options: &VllmOptions) -> ContainerSpec {
    let mut env = BTreeMap::from([("HF_HOME".to_string(), CONTAINER_HF_HOME.to_string())]);
    if options.offline {
        // huggingface_hub then resolves the repository from refs/ and snapshots/ in the cache
        // and makes no request (transformers reads the same variable).
        env.insert("HF_HUB_OFFLINE".to_string(), "1".to_string());
    }
    if let Some(token) = options.hf_token.filter(|t| !t.is_empty()) {
        // The one place the token is exposed: the container's environment.
        env.insert(CONTAINER_TOKEN_VAR.to_string(), token.expose().to_string());
    }
    let mut binds = vec![format!("{}:{CONTAINER_HF_HOME}", options.hf_home.display())];
    if let VllmModel::Directory(dir) = model {
        binds.push(format!("{0}:{0}:ro", dir.display()));
    }
    ContainerSpec {
        image: options.image.to_string(),
        env,
        ports: vec![PortMapping {
            host_ip: String::new(),
            host_port: PORT,
            container_port: PORT,
        }],
        binds,
        cmd: arguments(model, options),
        labels: BTreeMap::from([(
            docker::LABEL_VERSION.to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        )]),
        health: Some(HttpProbe {
            port: PORT,
            path: "/health".to_string(),
        }),
        gpus: options.gpus,
    }
}

/// The NVIDIA GPUs this host shows, counted from `nvidia-smi -L` (one `GPU n: ...` line each);
/// `None` when nvidia-smi is missing, fails or lists none.
pub fn count_visible_gpus() -> Option<u32> {
    let out = std::process::Command::new("nvidia-smi")
        .arg("-L")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let count = count_gpu_lines(&String::from_utf8_lossy(&out.stdout));
    (count > 0).then_some(count)
}

fn count_gpu_lines(listing: &str) -> u32 {
    let count = listing
        .lines()
        .filter(|l| l.trim_start().starts_with("GPU "))
        .count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// The variable that, in builds with the `test-hooks` feature only, makes the vLLM container ask
/// for no GPU and skips the NVIDIA runtime check, so that tests can run the stand-in image on an
/// engine without GPUs. A shipped binary has no such hook.
pub const NO_GPU_HOOK_VAR: &str = "DUO_SELFHOST_TEST_VLLM_WITHOUT_GPU";

/// Whether the test hook above is armed (always false without the `test-hooks` feature).
pub fn without_gpu_for_tests() -> bool {
    cfg!(feature = "test-hooks") && std::env::var_os(NO_GPU_HOOK_VAR).is_some_and(|v| v == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options<'a>(hf_home: &'a Path, token: Option<&'a Secret>) -> VllmOptions<'a> {
        VllmOptions {
            served_model_name: "codestral",
            tensor_parallel_size: 2,
            gpus: Gpus::All,
            max_model_len: Some(16384),
            hf_home,
            hf_token: token,
            image: docker::VLLM_IMAGE,
            offline: false,
        }
    }

    #[test]
    fn a_bundle_takes_the_one_set_of_weights_vllm_loads() {
        let mistral_repo = [
            "config.json",
            "consolidated.safetensors",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "model.safetensors.index.json",
            "params.json",
            "tokenizer.json",
            "tokenizer.model.v3",
            ".gitattributes",
            "README.md",
        ];
        // Each load keeps the repository but for the other set of weights and the dot files.
        let all_but = |dropped: &[&str]| -> Vec<&str> {
            mistral_repo
                .iter()
                .copied()
                .filter(|f| !dropped.contains(f))
                .collect()
        };
        assert_eq!(
            files_for_load(VllmLoad::Mistral, &mistral_repo),
            all_but(&[
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors",
                "model.safetensors.index.json",
                ".gitattributes"
            ])
        );
        assert_eq!(
            files_for_load(VllmLoad::MixtralSafetensors, &mistral_repo),
            all_but(&["consolidated.safetensors", ".gitattributes"])
        );
        let gemma_repo = [
            "config.json",
            "model.safetensors",
            "pytorch_model.bin",
            "model.gguf",
            "original/params.json",
            "tokenizer.json",
        ];
        assert_eq!(
            files_for_load(VllmLoad::Default, &gemma_repo),
            ["config.json", "model.safetensors", "tokenizer.json"]
        );
        // Only pickled weights: vLLM loads those.
        assert_eq!(
            files_for_load(VllmLoad::Default, &["config.json", "pytorch_model.bin"]),
            ["config.json", "pytorch_model.bin"]
        );
    }

    #[test]
    fn offline_runs_set_hf_hub_offline_and_a_site_image() {
        let home = Path::new("/srv/hf");
        let model = resolve_model("codestral").unwrap();
        let mut opts = options(home, None);
        assert!(!container_spec(&model, &opts)
            .env
            .contains_key("HF_HUB_OFFLINE"));
        opts.offline = true;
        opts.image = "registry.example.com:5000/ai/vllm-openai:v0.10.1.1";
        let spec = container_spec(&model, &opts);
        assert_eq!(
            spec.env.get("HF_HUB_OFFLINE").map(String::as_str),
            Some("1")
        );
        assert_eq!(
            spec.image,
            "registry.example.com:5000/ai/vllm-openai:v0.10.1.1"
        );
    }

    #[test]
    fn catalog_names_resolve_to_the_repository_vllm_loads() {
        for (name, repo) in [
            ("codestral", "mistralai/Codestral-22B-v0.1"),
            ("mistral-7b", "mistralai/Mistral-7B-Instruct-v0.3"),
            ("MIXTRAL", "mistralai/Mixtral-8x7B-Instruct-v0.1"),
        ] {
            assert_eq!(resolve_model(name).unwrap().argument(), repo, "{name}");
        }
        let by_repo = resolve_model("mistralai/Mistral-7B-Instruct-v0.3").unwrap();
        assert_eq!(by_repo.load(), VllmLoad::Mistral, "the catalog's flags");
        assert_eq!(by_repo.default_served_name(), "mistral-7b-instruct");
        let other = resolve_model("Qwen/Qwen2.5-Coder-7B-Instruct").unwrap();
        assert_eq!(other.load(), VllmLoad::Default);
        assert_eq!(other.default_served_name(), "qwen2.5-coder-7b-instruct");
    }

    #[test]
    fn what_vllm_cannot_load_is_refused_with_the_fix() {
        for (text, says) in [
            ("mistral-8b", "not a catalog model"),
            ("a/b/c", "not a catalog model"),
            ("smollm2", "not served by vLLM"),
            ("claude", "not served by vLLM"),
            ("/no/such/dir", "not a directory here"),
        ] {
            let err = resolve_model(text).unwrap_err();
            assert!(err.to_string().contains(says), "{text}: {err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let model = resolve_model(dir.path().to_str().unwrap()).unwrap();
        assert_eq!(model, VllmModel::Directory(dir.path().to_path_buf()));
    }

    #[test]
    fn the_command_carries_the_documented_flags() {
        let model = resolve_model("mistral-7b").unwrap();
        let args = arguments(&model, &options(Path::new("/hf"), None)).join(" ");
        assert_eq!(
            args,
            "--model mistralai/Mistral-7B-Instruct-v0.3 --served-model-name codestral \
             --tensor-parallel-size 2 --max-model-len 16384 --tokenizer_mode mistral \
             --load_format mistral --config_format mistral --host 0.0.0.0 --port 8000"
        );
        let mixtral = arguments(
            &resolve_model("mixtral").unwrap(),
            &options(Path::new("/hf"), None),
        );
        assert!(mixtral.join(" ").contains("--load_format safetensors"));
        assert!(!mixtral.contains(&"--tokenizer_mode".to_string()));
    }

    #[test]
    fn the_spec_mounts_the_cache_and_carries_the_token_masked() {
        let token = Secret::new("hf_abcdefSECRET");
        let model = resolve_model("codestral").unwrap();
        let spec = container_spec(&model, &options(Path::new("/srv/hf"), Some(&token)));
        assert_eq!(spec.binds, ["/srv/hf:/root/.cache/huggingface"]);
        assert_eq!(spec.env["HF_TOKEN"], "hf_abcdefSECRET");
        assert_eq!(spec.env["HF_HOME"], "/root/.cache/huggingface");
        let shown = spec.masked_env().join(" ");
        assert!(
            shown.contains("HF_TOKEN=****") && !shown.contains("SECRET"),
            "{shown}"
        );
        assert_eq!(spec.gpus, Gpus::All);
        let dir = tempfile::tempdir().unwrap();
        let local = VllmModel::Directory(dir.path().to_path_buf());
        let spec = container_spec(&local, &options(Path::new("/srv/hf"), None));
        assert!(!spec.env.contains_key("HF_TOKEN"));
        assert_eq!(spec.binds[1], format!("{0}:{0}:ro", dir.path().display()));
    }

    #[test]
    fn gpus_are_counted_from_nvidia_smi_lines() {
        let listing = "GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-1)\nGPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-2)\n  MIG 1g.10gb Device 0: (UUID: MIG-3)\n";
        assert_eq!(count_gpu_lines(listing), 2);
        assert_eq!(count_gpu_lines(""), 0);
    }
}
