//! The command line, as clap derive types and nothing else: man pages, completions and the
//! help snapshots are generated from this model, so no logic lives here. Long because it is
//! every command's flags, with their help text, in one place.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::registry::RegistryChoice;
use crate::secret::Secret;
use crate::serve_config::ByteSize;

#[derive(Debug, Parser)]
#[command(
    name = "duo-selfhost",
    version,
    about = "Set up and keep healthy a self-hosted GitLab Duo: model, GitLab configuration, AI Gateway",
    long_about = "duo-selfhost takes a GitLab administrator from \"GitLab is installed\" to \"GitLab Duo \
answers code completion, code generation and chat from a model running on our own hardware\": it serves \
GGUF models on an OpenAI-compatible API, configures GitLab, installs and upgrades the AI Gateway, and \
diagnoses the whole chain.\n\nExit status: 0 success, 1 the setup or input is wrong, 2 the tool could not run.",
    propagate_version = true,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Print only results and errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// More detail on stderr; repeat for more (-vv debug, -vvv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// When to colour output (NO_COLOR is honoured under auto)
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Print one JSON document on stdout and nothing else
    #[arg(long, global = true)]
    pub json: bool,

    /// Never prompt: take values from flags and defaults, answer yes to confirmations
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,

    /// Hide progress bars and spinners
    #[arg(long, global = true)]
    pub no_progress: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install the AI Gateway (Docker or Helm), a model runtime, and point GitLab at the gateway
    // Boxed: the largest set of flags by far, and clippy's large_enum_variant.
    Install(Box<InstallArgs>),
    /// Upgrade the AI Gateway to the image matching the GitLab version, keeping its settings
    Upgrade(UpgradeArgs),
    /// Check the whole chain (GitLab, gateway, model) and say how to fix what is broken
    Doctor(DoctorArgs),
    /// Serve a GGUF model on an OpenAI-compatible API with the embedded llama.cpp engine
    Serve(ServeArgs),
    /// List, download and locate the models duo-selfhost knows
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Read and edit gitlab_rails['env'] in /etc/gitlab/gitlab.rb safely
    #[command(name = "gitlab-rb", subcommand)]
    GitlabRb(GitlabRbCommand),
    /// Print the AI Gateway image for a GitLab version
    #[command(name = "image-tag")]
    ImageTag(ImageTagArgs),
    /// Carry an install to a host without the internet: images, models and tag lists in one file
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Print a shell completion script
    Completions(CompletionsArgs),
    /// Regenerate the committed completions/ and man/ files (for developers)
    #[command(name = "generate-assets", hide = true)]
    GenerateAssets(GenerateAssetsArgs),
}

/// Where the AI Gateway runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// A container on this host's Docker Engine
    Docker,
    /// The AI Gateway Helm chart on a Kubernetes cluster
    Helm,
}

/// When to pull the gateway image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PullPolicy {
    Always,
    Missing,
    Never,
}

/// What serves the model the gateway calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelRuntime {
    /// An endpoint that already exists (--model-endpoint)
    None,
    /// `duo-selfhost serve` on this host, as a systemd service
    Embedded,
    /// A vLLM container on this host's Docker Engine (needs an NVIDIA GPU)
    Vllm,
}

/// How to reach GitLab's API.
#[derive(Debug, Clone, Args)]
pub struct GitlabConnectionArgs {
    /// GitLab's external URL [default: found on this host: the state file or gitlab.rb's external_url]
    #[arg(long, value_name = "URL")]
    pub gitlab_url: Option<String>,

    /// A GitLab personal access token (admin, `api` scope); never printed
    #[arg(
        long,
        env = "GITLAB_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub gitlab_token: Option<Secret>,

    /// A CA certificate (PEM) to trust for GitLab and the gateway, beside the system roots
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,

    /// The gitlab.rb to read (and edit, for a command that changes it)
    #[arg(
        long,
        env = "DUO_SELFHOST_GITLAB_RB",
        default_value = "/etc/gitlab/gitlab.rb",
        value_name = "PATH"
    )]
    pub gitlab_rb: PathBuf,
}

/// Where install records what it did (image, GitLab version, model, how GitLab was pointed at
/// the gateway), which upgrade and doctor read.
#[derive(Debug, Clone, Args)]
pub struct StateFileArgs {
    /// State file written by install [default: /etc/duo-selfhost/state.toml as root, else the user config dir]
    #[arg(long, env = "DUO_SELFHOST_STATE", value_name = "FILE")]
    pub state_file: Option<PathBuf>,
}

/// The API key of the model's OpenAI-compatible endpoint.
#[derive(Debug, Clone, Args)]
pub struct ModelApiKeyArgs {
    /// The model endpoint's API key (doctor's model checks send it, install registers it in GitLab); never printed
    #[arg(
        long,
        env = "DUO_SELFHOST_MODEL_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub model_api_key: Option<Secret>,
}

/// Which gateway image to use.
#[derive(Debug, Clone, Args)]
pub struct ImageChoiceArgs {
    /// Use this exact image reference instead of choosing one from the GitLab version
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,

    /// Image repository: gitlab, dockerhub, or a mirror as HOST/PATH
    #[arg(long, value_name = "REGISTRY")]
    pub registry: Option<RegistryChoice>,

    /// A file listing the available tags, one per line (air-gapped mirrors)
    #[arg(long, value_name = "FILE")]
    pub available_tags: Option<PathBuf>,

    /// When to pull the image
    #[arg(long, value_enum, default_value_t = PullPolicy::Missing)]
    pub pull: PullPolicy,

    /// Use only what `bundle load` put on this host: no tag listing, no pull; anything missing is an error naming the bundle command that adds it
    #[arg(long)]
    pub offline: bool,
}

/// Settings for the Helm target.
#[derive(Debug, Clone, Args)]
pub struct HelmArgs {
    /// Kubernetes namespace for the gateway
    #[arg(long, default_value = "ai-gateway", value_name = "NAME")]
    pub namespace: String,

    /// Helm release name
    #[arg(long, default_value = "ai-gateway", value_name = "NAME")]
    pub release: String,

    /// AI Gateway chart version to install
    #[arg(long, default_value = crate::helm::DEFAULT_CHART_VERSION, value_name = "VERSION")]
    pub chart_version: String,

    /// Where to keep the rendered Helm values file
    #[arg(long, value_name = "FILE")]
    pub values_out: Option<PathBuf>,

    /// TLS certificate (PEM) for the gateway domain
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM) matching --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Ingress class for the gateway
    #[arg(long, default_value = "nginx", value_name = "CLASS")]
    pub ingress_class: String,

    /// How long helm and kubectl may wait, in seconds
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub helm_timeout: u64,
}

#[derive(Debug, Clone, Args)]
pub struct InstallArgs {
    /// Where the gateway runs
    #[arg(long, value_enum, default_value_t = Target::Docker)]
    pub target: Target,

    #[command(flatten)]
    pub gitlab: GitlabConnectionArgs,

    /// The GitLab version, such as 17.5.0 [default: detected from the API or the host]
    #[arg(long, value_name = "VERSION")]
    pub gitlab_version: Option<String>,

    /// The name GitLab reaches the gateway by (not localhost)
    #[arg(long, value_name = "HOST")]
    pub gateway_host: Option<String>,

    /// The gateway's HTTP port
    #[arg(long, default_value_t = 5052, value_name = "PORT")]
    pub gateway_port: u16,

    /// Allow a localhost gateway URL (a one-host lab only: GitLab must reach the gateway over the network)
    #[arg(long)]
    pub allow_localhost: bool,

    #[command(flatten)]
    pub image: ImageChoiceArgs,

    /// Name of the gateway container
    #[arg(long, default_value = "gitlab-aigw", value_name = "NAME")]
    pub container_name: String,

    /// Host directory for the gateway's logs, mounted into the container
    #[arg(long, default_value = "/srv/gitlab-agw", value_name = "DIR")]
    pub log_dir: PathBuf,

    /// Extra environment variable for the gateway, KEY=VALUE (repeatable)
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// What serves the model [default: asked on a terminal, else none]
    #[arg(long, value_enum)]
    pub model_runtime: Option<ModelRuntime>,

    #[command(flatten)]
    pub model_key: ModelApiKeyArgs,

    /// The model's OpenAI-compatible endpoint, ending in /v1 (with --model-runtime none)
    #[arg(long, value_name = "URL")]
    pub model_endpoint: Option<String>,

    /// The model to run: a catalog name or alias; for vllm also a Hugging Face repository (owner/name) or an absolute directory. A Hugging Face token for gated repositories is read from HF_TOKEN (or HUGGING_FACE_HUB_TOKEN) and never printed
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,

    /// Name the model is served under (the identifier is custom_openai/<name>) [default: the catalog name]
    #[arg(long, value_name = "NAME")]
    pub served_model_name: Option<String>,

    /// GPUs vLLM uses: its --tensor-parallel-size [default: every GPU `nvidia-smi -L` lists, else 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub gpus: Option<u32>,

    /// vLLM's context length in tokens (--max-model-len) [default: the model's own]
    #[arg(long, value_name = "TOKENS", value_parser = clap::value_parser!(u32).range(1..))]
    pub ctx_size: Option<u32>,

    /// The vLLM image to run, such as the pinned one pushed to a site registry by `bundle load --push-to` [default: the pinned vllm/vllm-openai]
    #[arg(long, value_name = "IMAGE")]
    pub vllm_image: Option<String>,

    /// Seconds to wait for the gateway to become healthy
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub health_timeout: u64,

    #[command(flatten)]
    pub state: StateFileArgs,

    /// Print the plan (image, env with secrets masked, ports, volumes, gitlab.rb diff) and change nothing
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub helm: HelmArgs,
}

#[derive(Debug, Clone, Args)]
pub struct UpgradeArgs {
    /// Where the gateway runs [default: from the state file, else docker]
    #[arg(long, value_enum)]
    pub target: Option<Target>,

    /// Upgrade for this GitLab version instead of the detected one
    #[arg(long, value_name = "VERSION")]
    pub to_version: Option<String>,

    /// Name of the gateway container [default: from the state file, else gitlab-aigw]
    #[arg(long, value_name = "NAME")]
    pub container_name: Option<String>,

    #[command(flatten)]
    pub image: ImageChoiceArgs,

    #[command(flatten)]
    pub gitlab: GitlabConnectionArgs,

    /// Only check: exit 0 when up to date, 100 when an upgrade is available
    #[arg(long)]
    pub check: bool,

    /// Print what would change and change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Seconds to wait for the new gateway to become healthy before rolling back
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub health_timeout: u64,

    #[command(flatten)]
    pub state: StateFileArgs,

    #[command(flatten)]
    pub helm: HelmArgs,
}

#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub gitlab: GitlabConnectionArgs,

    /// The AI Gateway URL [default: state file, then gitlab.rb]
    #[arg(long, value_name = "URL")]
    pub gateway_url: Option<String>,

    /// The gateway container on this host [default: state file]
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,

    /// The model's OpenAI-compatible endpoint (ending in /v1)
    #[arg(long, value_name = "URL")]
    pub model_endpoint: Option<String>,

    /// The model identifier configured in GitLab, such as custom_openai/codestral
    #[arg(long, value_name = "ID")]
    pub model_identifier: Option<String>,

    #[command(flatten)]
    pub model_key: ModelApiKeyArgs,

    /// Run only these checks (ids or prefixes such as gateway.*; repeatable)
    #[arg(long, value_name = "ID")]
    pub only: Vec<String>,

    /// Skip these checks (ids or prefixes; repeatable)
    #[arg(long, value_name = "ID")]
    pub skip: Vec<String>,

    /// Seconds each check may take
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub timeout: u64,

    /// Treat warnings as failures (exit 1)
    #[arg(long)]
    pub strict: bool,

    #[command(flatten)]
    pub state: StateFileArgs,

    /// Offer to fix failures that have a safe mechanical fix (reconfigure, the feature flag,
    /// the gateway URL setting, the gateway's env or image), run each after asking (--yes
    /// skips the question), then re-run those checks
    #[arg(long)]
    pub fix: bool,

    /// Also write a support bundle: the report, versions, the gateway's env (redacted) and
    /// last 500 log lines, gitlab.rb's env (redacted), the model server's /v1/models and
    /// /metrics
    #[arg(long, value_name = "FILE.tar.gz")]
    pub bundle: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// A TOML file of serve's settings: server-wide keys, and a [[model]] table per model (flags given here override it)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Catalog name or alias (see `models list`), or a path to a .gguf file; repeat to serve several models [default: smollm2-135m]
    #[arg(long, short = 'm', value_name = "NAME|PATH")]
    pub model: Vec<String>,

    /// Name clients use for the model (GitLab's identifier is custom_openai/<name>); repeat in --model's order [default: the catalog name or file stem]
    #[arg(long, value_name = "NAME")]
    pub served_model_name: Vec<String>,

    /// Address to bind; binding beyond loopback without --api-key prints a warning [default: 127.0.0.1]
    #[arg(long, value_name = "ADDR")]
    pub host: Option<String>,

    /// Port to listen on [default: 8080]
    #[arg(long)]
    pub port: Option<u16>,

    /// Context size in tokens, shared by the parallel sequences (each model's) [default: 8192]
    #[arg(long, value_name = "TOKENS")]
    pub ctx_size: Option<u32>,

    /// Sequences decoded together in one batch (each model's) [default: 4]
    #[arg(long, value_name = "N")]
    pub parallel: Option<u32>,

    /// CPU threads for llama.cpp, split across the models [default: the number of cores]
    #[arg(long, value_name = "N")]
    pub threads: Option<i32>,

    /// Memory the models' weights and KV caches may take together, e.g. 6G [default: MemAvailable]
    #[arg(long, value_name = "SIZE")]
    pub memory_limit: Option<ByteSize>,

    /// Require this key as a bearer token on every /v1 route; never printed
    #[arg(
        long,
        env = "DUO_SELFHOST_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<Secret>,

    /// Read the API key from the first line of this file
    #[arg(long, value_name = "FILE", conflicts_with = "api_key")]
    pub api_key_file: Option<PathBuf>,

    /// Requests waiting beyond the busy slots; past it the server answers 503 with Retry-After [default: 64]
    #[arg(long, value_name = "N")]
    pub max_queue: Option<usize>,

    /// Layers to offload to the GPU (0: CPU only) [default: all when a GPU build finds a GPU, else 0]
    #[arg(long, value_name = "N")]
    pub n_gpu_layers: Option<u32>,

    /// Fill-in-the-middle tokens by their text, PRE,SUF,MID (PRE,SUF for the spm layout), for a GGUF whose metadata lacks them
    #[arg(long, value_name = "PRE,SUF,MID")]
    pub fim_tokens: Option<String>,

    /// How a fill is laid out: psm (PRE prefix SUF suffix MID) or spm (Mistral's SUF suffix PRE prefix) [default: spm for Mistral's [PREFIX]/[SUFFIX] tokens, psm otherwise]
    #[arg(long, value_enum, value_name = "LAYOUT")]
    pub fim_layout: Option<FimLayoutArg>,

    /// A Jinja chat template file to use instead of the GGUF's (needed for a GGUF that has none)
    #[arg(long, value_name = "FILE")]
    pub chat_template: Option<PathBuf>,

    /// Sampling seed for requests that give none, so the same request gets the same answer (doctor's probes, tests) [default: a random seed per request]
    #[arg(long, value_name = "N")]
    pub seed: Option<u32>,

    /// Shortest run of cached tokens kept after an edit (moved to its new place instead of evaluated again); 0 keeps only the common prefix [default: 32]
    #[arg(long, value_name = "TOKENS")]
    pub reuse_min_run: Option<usize>,

    /// Largest request body accepted, in bytes (413 beyond) [default: 4194304]
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,

    /// Seconds a request body may take to arrive (408 beyond); slow senders do not hold a slot [default: 30]
    #[arg(long, value_name = "SECONDS")]
    pub body_timeout: Option<u64>,
}

/// `--fim-layout`: how a fill is laid out for the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FimLayoutArg {
    // Plain comments: a documented value would turn `serve --help` into its long form.
    // Prefix-suffix-middle: PRE prefix SUF suffix MID (CodeGemma, Code Llama, DeepSeek Coder, Qwen).
    Psm,
    // Suffix-prefix, Mistral's: SUF suffix PRE prefix (Codestral, Mistral, Mixtral).
    Spm,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List the catalog: GitLab-approved models, models under evaluation, and the demo model
    List(ModelsListArgs),
    /// Download a model's GGUF from Hugging Face into the local cache (resumable, checksummed)
    Pull(ModelsPullArgs),
    /// Print where a model's GGUF is in the local cache
    Path(ModelsPathArgs),
    /// Register a model in GitLab as a self-hosted model, run GitLab's connection check, and point features at it
    Register(Box<ModelsRegisterArgs>),
}

#[derive(Debug, Clone, Args)]
pub struct ModelsListArgs {}

#[derive(Debug, Clone, Args)]
pub struct ModelsPullArgs {
    /// Catalog name or alias
    #[arg(value_name = "NAME")]
    pub name: String,
}

#[derive(Debug, Clone, Args)]
pub struct ModelsPathArgs {
    /// Catalog name or alias
    #[arg(value_name = "NAME")]
    pub name: String,
}

#[derive(Debug, Clone, Args)]
pub struct ModelsRegisterArgs {
    /// Catalog name or alias; also the deployment name in GitLab (a rerun with the same name updates it)
    #[arg(value_name = "NAME")]
    pub name: String,

    /// The model's OpenAI-compatible endpoint as GitLab's gateway reaches it, ending in /v1
    #[arg(long, value_name = "URL")]
    pub endpoint: String,

    /// Name the endpoint serves the model under (the identifier is custom_openai/<name>, bedrock/<name> for Bedrock) [default: the catalog name]
    #[arg(long, value_name = "NAME")]
    pub served_model_name: Option<String>,

    /// The endpoint's API key, stored by GitLab as a secret; never printed
    #[arg(
        long,
        env = "DUO_SELFHOST_MODEL_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<Secret>,

    /// GitLab's model family, such as CODESTRAL or GENERAL [default: the catalog's]
    #[arg(long, value_name = "FAMILY")]
    pub family: Option<String>,

    /// Features to point at the model, such as code_completions,duo_chat [default: those the catalog says it is fit for, unless another model serves them]
    #[arg(long, value_name = "F,...", value_delimiter = ',', num_args = 0..)]
    pub features: Option<Vec<String>>,

    /// Allow beta features (accepts GitLab's Testing Agreement for the instance)
    #[arg(long)]
    pub accept_beta: bool,

    #[command(flatten)]
    pub gitlab: GitlabConnectionArgs,
}

#[derive(Debug, Subcommand)]
pub enum GitlabRbCommand {
    /// Print the effective gitlab_rails['env'] as omnibus sees it
    Show(GitlabRbShowArgs),
    /// Set environment variables in gitlab_rails['env'], KEY=VALUE
    Set(GitlabRbSetArgs),
    /// Remove environment variables from gitlab_rails['env']
    Unset(GitlabRbUnsetArgs),
}

#[derive(Debug, Clone, Args)]
pub struct GitlabRbFileArgs {
    /// The gitlab.rb to read and edit
    #[arg(
        long,
        env = "DUO_SELFHOST_GITLAB_RB",
        default_value = "/etc/gitlab/gitlab.rb",
        value_name = "PATH"
    )]
    pub file: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct GitlabRbEditArgs {
    /// Show the diff and write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Run `gitlab-ctl reconfigure` afterwards and verify the rendered values
    #[arg(long)]
    pub reconfigure: bool,
}

#[derive(Debug, Clone, Args)]
pub struct GitlabRbShowArgs {
    #[command(flatten)]
    pub file: GitlabRbFileArgs,
}

#[derive(Debug, Clone, Args)]
pub struct GitlabRbSetArgs {
    /// Variables to set, KEY=VALUE
    #[arg(value_name = "KEY=VALUE", required = true)]
    pub assignments: Vec<String>,

    #[command(flatten)]
    pub file: GitlabRbFileArgs,

    #[command(flatten)]
    pub edit: GitlabRbEditArgs,
}

#[derive(Debug, Clone, Args)]
pub struct GitlabRbUnsetArgs {
    /// Variables to remove
    #[arg(value_name = "KEY", required = true)]
    pub keys: Vec<String>,

    #[command(flatten)]
    pub file: GitlabRbFileArgs,

    #[command(flatten)]
    pub edit: GitlabRbEditArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ImageTagArgs {
    /// The GitLab version: 17.5.0, v17.5.0-ee, 17.5.2-ee, 18.2.1
    #[arg(long, value_name = "VERSION")]
    pub gitlab_version: String,

    /// Image repository: gitlab, dockerhub, or a mirror as HOST/PATH
    #[arg(long, default_value = "gitlab", value_name = "REGISTRY")]
    pub registry: RegistryChoice,

    /// A file listing the available tags, one per line (air-gapped mirrors)
    #[arg(long, value_name = "FILE")]
    pub available_tags: Option<PathBuf>,

    /// Do not ask the registry; use self-hosted-vX.Y.0-ee with a warning
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// On a connected machine: write the gateway images, the models (GGUFs, or vLLM's image and Hugging Face weights), the Helm chart and tag lists for GitLab versions into one file
    Create(BundleCreateArgs),
    /// Check every checksum of a bundle and its manifest, loading nothing
    Verify(BundleVerifyArgs),
    /// On the air-gapped host: verify a bundle as it is read, then load its images, models, chart and tag lists
    Load(BundleLoadArgs),
}

/// What will serve the bundled model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BundleRuntime {
    /// `duo-selfhost serve`: the models' GGUFs go into the bundle
    Embedded,
    /// A vLLM container: the pinned vLLM image and each model's Hugging Face weights go into the bundle
    Vllm,
}

#[derive(Debug, Clone, Args)]
pub struct BundleCreateArgs {
    /// GitLab version to bundle the gateway for (repeatable: images of several versions share their layers)
    #[arg(long = "gitlab-version", value_name = "VERSION", required = true)]
    pub gitlab_versions: Vec<String>,

    /// Catalog model to carry (repeatable): its GGUF for the embedded runtime, pulled into the local cache first when missing; with --model-runtime vllm its Hugging Face repository's weights, downloaded from HF_ENDPOINT (HF_TOKEN for gated ones)
    #[arg(long = "model", value_name = "NAME")]
    pub models: Vec<String>,

    /// What will serve the model on the air-gapped host
    #[arg(long, value_enum, default_value_t = BundleRuntime::Embedded)]
    pub model_runtime: BundleRuntime,

    /// Where the gateway will run: docker, or helm (the AI Gateway chart archive goes in too, fetched with `helm pull`)
    #[arg(long, value_enum, default_value_t = Target::Docker)]
    pub target: Target,

    /// With --target helm: the AI Gateway chart version, as `install --target helm --chart-version` takes it
    #[arg(long, default_value = crate::helm::DEFAULT_CHART_VERSION, value_name = "VERSION")]
    pub chart_version: String,

    /// With --target helm: the chart repository to pull from (a mirror of GitLab's) [default: GitLab's AI Gateway chart repository]
    #[arg(long, value_name = "URL")]
    pub chart_repo: Option<String>,

    /// Image repository: gitlab, dockerhub, or a mirror as HOST/PATH
    #[arg(long, default_value = "gitlab", value_name = "REGISTRY")]
    pub registry: RegistryChoice,

    /// A file listing the available tags, one per line, instead of the registry's listing
    #[arg(long, value_name = "FILE")]
    pub available_tags: Option<PathBuf>,

    /// When to pull images (missing: an image already in the local engine is used as it is)
    #[arg(long, value_enum, default_value_t = PullPolicy::Missing)]
    pub pull: PullPolicy,

    /// The bundle to write (written as FILE.partial and renamed when complete)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct BundleVerifyArgs {
    /// The bundle to check
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct BundleLoadArgs {
    /// The bundle to load
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Also tag and push every image of the bundle to this registry path, each as PATH/<its name>:<its tag> (PATH/model-gateway, PATH/vllm-openai); the printed install command then names them there (--registry, --vllm-image)
    #[arg(long, value_name = "HOST[:PORT]/PATH")]
    pub push_to: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to print the script for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Args)]
pub struct GenerateAssetsArgs {
    /// Directory holding completions/ and man/
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub out_dir: PathBuf,

    /// Compare with the files on disk and fail when they differ, writing nothing
    #[arg(long)]
    pub check: bool,

    /// Also write packaging/: the systemd unit and the example serve.toml the packages install
    /// (scripts/package)
    #[arg(long, conflicts_with = "check")]
    pub packaging: bool,
}
