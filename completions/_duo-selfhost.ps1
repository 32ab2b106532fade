
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'duo-selfhost' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'duo-selfhost'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'duo-selfhost' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour output (NO_COLOR is honoured under auto)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout and nothing else')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Hide progress bars and spinners')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('install', 'install', [CompletionResultType]::ParameterValue, 'Install the AI Gateway (Docker or Helm), a model runtime, and point GitLab at the gateway')
            [CompletionResult]::new('upgrade', 'upgrade', [CompletionResultType]::ParameterValue, 'Upgrade the AI Gateway to the image matching the GitLab version, keeping its settings')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Check the whole chain (GitLab, gateway, model) and say how to fix what is broken')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Serve a GGUF model on an OpenAI-compatible API with the embedded llama.cpp engine')
            [CompletionResult]::new('models', 'models', [CompletionResultType]::ParameterValue, 'List, download and locate the models duo-selfhost knows')
            [CompletionResult]::new('gitlab-rb', 'gitlab-rb', [CompletionResultType]::ParameterValue, 'Read and edit gitlab_rails[''env''] in /etc/gitlab/gitlab.rb safely')
            [CompletionResult]::new('image-tag', 'image-tag', [CompletionResultType]::ParameterValue, 'Print the AI Gateway image for a GitLab version')
            [CompletionResult]::new('bundle', 'bundle', [CompletionResultType]::ParameterValue, 'Carry an install to a host without the internet: images, models and tag lists in one file')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('generate-assets', 'generate-assets', [CompletionResultType]::ParameterValue, 'Regenerate the committed completions/ and man/ files (for developers)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'duo-selfhost;install' {
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Where the gateway runs')
            [CompletionResult]::new('--gitlab-url', '--gitlab-url', [CompletionResultType]::ParameterName, 'GitLab''s external URL [default: found on this host: the state file or gitlab.rb''s external_url]')
            [CompletionResult]::new('--gitlab-token', '--gitlab-token', [CompletionResultType]::ParameterName, 'A GitLab personal access token (admin, `api` scope); never printed')
            [CompletionResult]::new('--ca-cert', '--ca-cert', [CompletionResultType]::ParameterName, 'A CA certificate (PEM) to trust for GitLab and the gateway, beside the system roots')
            [CompletionResult]::new('--gitlab-rb', '--gitlab-rb', [CompletionResultType]::ParameterName, 'The gitlab.rb to read (and edit, for a command that changes it)')
            [CompletionResult]::new('--gitlab-version', '--gitlab-version', [CompletionResultType]::ParameterName, 'The GitLab version, such as 17.5.0 [default: detected from the API or the host]')
            [CompletionResult]::new('--gateway-host', '--gateway-host', [CompletionResultType]::ParameterName, 'The name GitLab reaches the gateway by (not localhost)')
            [CompletionResult]::new('--gateway-port', '--gateway-port', [CompletionResultType]::ParameterName, 'The gateway''s HTTP port')
            [CompletionResult]::new('--image', '--image', [CompletionResultType]::ParameterName, 'Use this exact image reference instead of choosing one from the GitLab version')
            [CompletionResult]::new('--registry', '--registry', [CompletionResultType]::ParameterName, 'Image repository: gitlab, dockerhub, or a mirror as HOST/PATH')
            [CompletionResult]::new('--available-tags', '--available-tags', [CompletionResultType]::ParameterName, 'A file listing the available tags, one per line (air-gapped mirrors)')
            [CompletionResult]::new('--pull', '--pull', [CompletionResultType]::ParameterName, 'When to pull the image')
            [CompletionResult]::new('--container-name', '--container-name', [CompletionResultType]::ParameterName, 'Name of the gateway container')
            [CompletionResult]::new('--log-dir', '--log-dir', [CompletionResultType]::ParameterName, 'Host directory for the gateway''s logs, mounted into the container')
            [CompletionResult]::new('--env', '--env', [CompletionResultType]::ParameterName, 'Extra environment variable for the gateway, KEY=VALUE (repeatable)')
            [CompletionResult]::new('--model-runtime', '--model-runtime', [CompletionResultType]::ParameterName, 'What serves the model [default: asked on a terminal, else none]')
            [CompletionResult]::new('--model-api-key', '--model-api-key', [CompletionResultType]::ParameterName, 'The model endpoint''s API key (doctor''s model checks send it, install registers it in GitLab); never printed')
            [CompletionResult]::new('--model-endpoint', '--model-endpoint', [CompletionResultType]::ParameterName, 'The model''s OpenAI-compatible endpoint, ending in /v1 (with --model-runtime none)')
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'The model to run: a catalog name or alias; for vllm also a Hugging Face repository (owner/name) or an absolute directory. A Hugging Face token for gated repositories is read from HF_TOKEN (or HUGGING_FACE_HUB_TOKEN) and never printed')
            [CompletionResult]::new('--served-model-name', '--served-model-name', [CompletionResultType]::ParameterName, 'Name the model is served under (the identifier is custom_openai/<name>) [default: the catalog name]')
            [CompletionResult]::new('--gpus', '--gpus', [CompletionResultType]::ParameterName, 'GPUs vLLM uses: its --tensor-parallel-size [default: every GPU `nvidia-smi -L` lists, else 1]')
            [CompletionResult]::new('--ctx-size', '--ctx-size', [CompletionResultType]::ParameterName, 'vLLM''s context length in tokens (--max-model-len) [default: the model''s own]')
            [CompletionResult]::new('--vllm-image', '--vllm-image', [CompletionResultType]::ParameterName, 'The vLLM image to run, such as the pinned one pushed to a site registry by `bundle load --push-to` [default: the pinned vllm/vllm-openai]')
            [CompletionResult]::new('--health-timeout', '--health-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the gateway to become healthy')
            [CompletionResult]::new('--state-file', '--state-file', [CompletionResultType]::ParameterName, 'State file written by install [default: /etc/duo-selfhost/state.toml as root, else the user config dir]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Kubernetes namespace for the gateway')
            [CompletionResult]::new('--release', '--release', [CompletionResultType]::ParameterName, 'Helm release name')
            [CompletionResult]::new('--chart-version', '--chart-version', [CompletionResultType]::ParameterName, 'AI Gateway chart version to install')
            [CompletionResult]::new('--values-out', '--values-out', [CompletionResultType]::ParameterName, 'Where to keep the rendered Helm values file')
            [CompletionResult]::new('--tls-cert', '--tls-cert', [CompletionResultType]::ParameterName, 'TLS certificate (PEM) for the gateway domain')
            [CompletionResult]::new('--tls-key', '--tls-key', [CompletionResultType]::ParameterName, 'TLS private key (PEM) matching --tls-cert')
            [CompletionResult]::new('--ingress-class', '--ingress-class', [CompletionResultType]::ParameterName, 'Ingress class for the gateway')
            [CompletionResult]::new('--helm-timeout', '--helm-timeout', [CompletionResultType]::ParameterName, 'How long helm and kubectl may wait, in seconds')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour output (NO_COLOR is honoured under auto)')
            [CompletionResult]::new('--allow-localhost', '--allow-localhost', [CompletionResultType]::ParameterName, 'Allow a localhost gateway URL (a one-host lab only: GitLab must reach the gateway over the network)')
            [CompletionResult]::new('--offline', '--offline', [CompletionResultType]::ParameterName, 'Use only what `bundle load` put on this host: no tag listing, no pull; anything missing is an error naming the bundle command that adds it')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the plan (image, env with secrets masked, ports, volumes, gitlab.rb diff) and change nothing')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout and nothing else')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Hide progress bars and spinners')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'duo-selfhost;upgrade' {
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Where the gateway runs [default: from the state file, else docker]')
            [CompletionResult]::new('--to-version', '--to-version', [CompletionResultType]::ParameterName, 'Upgrade for this GitLab version instead of the detected one')
            [CompletionResult]::new('--container-name', '--container-name', [CompletionResultType]::ParameterName, 'Name of the gateway container [default: from the state file, else gitlab-aigw]')
            [CompletionResult]::new('--image', '--image', [CompletionResultType]::ParameterName, 'Use this exact image reference instead of choosing one from the GitLab version')
            [CompletionResult]::new('--registry', '--registry', [CompletionResultType]::ParameterName, 'Image repository: gitlab, dockerhub, or a mirror as HOST/PATH')
            [CompletionResult]::new('--available-tags', '--available-tags', [CompletionResultType]::ParameterName, 'A file listing the available tags, one per line (air-gapped mirrors)')
            [CompletionResult]::new('--pull', '--pull', [CompletionResultType]::ParameterName, 'When to pull the image')
            [CompletionResult]::new('--gitlab-url', '--gitlab-url', [CompletionResultType]::ParameterName, 'GitLab''s external URL [default: found on this host: the state file or gitlab.rb''s external_url]')
            [CompletionResult]::new('--gitlab-token', '--gitlab-token', [CompletionResultType]::ParameterName, 'A GitLab personal access token (admin, `api` scope); never printed')
            [CompletionResult]::new('--ca-cert', '--ca-cert', [CompletionResultType]::ParameterName, 'A CA certificate (PEM) to trust for GitLab and the gateway, beside the system roots')
            [CompletionResult]::new('--gitlab-rb', '--gitlab-rb', [CompletionResultType]::ParameterName, 'The gitlab.rb to read (and edit, for a command that changes it)')
            [CompletionResult]::new('--health-timeout', '--health-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the new gateway to become healthy before rolling back')
            [CompletionResult]::new('--state-file', '--state-file', [CompletionResultType]::ParameterName, 'State file written by install [default: /etc/duo-selfhost/state.toml as root, else the user config dir]')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Kubernetes namespace for the gateway')
            [CompletionResult]::new('--release', '--release', [CompletionResultType]::ParameterName, 'Helm release name')
            [CompletionResult]::new('--chart-version', '--chart-version', [CompletionResultType]::ParameterName, 'AI Gateway chart version to install')
            [CompletionResult]::new('--values-out', '--values-out', [CompletionResultType]::ParameterName, 'Where to keep the rendered Helm values file')
            [CompletionResult]::new('--tls-cert', '--tls-cert', [CompletionResultType]::ParameterName, 'TLS certificate (PEM) for the gateway domain')
            [CompletionResult]::new('--tls-key', '--tls-key', [CompletionResultType]::ParameterName, 'TLS private key (PEM) matching --tls-cert')
            [CompletionResult]::new('--ingress-class', '--ingress-class', [CompletionResultType]::ParameterName, 'Ingress class for the gateway')
            [CompletionResult]::new('--helm-timeout', '--helm-timeout', [CompletionResultType]::ParameterName, 'How long helm and kubectl may wait, in seconds')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour output (NO_COLOR is honoured under auto)')
            [CompletionResult]::new('--offline', '--offline', [CompletionResultType]::ParameterName, 'Use only what `bundle load` put on this host: no tag listing, no pull; anything missing is an error naming the bundle command that adds it')
            [CompletionResult]::new('--check', '--check', [CompletionResultType]::ParameterName, 'Only check: exit 0 when up to date, 100 when an upgrade is available')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print what would change and change nothing')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout and nothing else')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Hide progress bars and spinners')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'duo-selfhost;doctor' {
            [CompletionResult]::new('--gitlab-url', '--gitlab-url', [CompletionResultType]::ParameterName, 'GitLab''s external URL [default: found on this host: the state file or gitlab.rb''s external_url]')
            [CompletionResult]::new('--gitlab-token', '--gitlab-token', [CompletionResultType]::ParameterName, 'A GitLab personal access token (admin, `api` scope); never printed')
            [CompletionResult]::new('--ca-cert', '--ca-cert', [CompletionResultType]::ParameterName, 'A CA certificate (PEM) to trust for GitLab and the gateway, beside the system roots')
            [CompletionResult]::new('--gitlab-rb', '--gitlab-rb', [CompletionResultType]::ParameterName, 'The gitlab.rb to read (and edit, for a command that changes it)')
            [CompletionResult]::new('--gateway-url', '--gateway-url', [CompletionResultType]::ParameterName, 'The AI Gateway URL [default: state file, then gitlab.rb]')
            [CompletionResult]::new('--container', '--container', [CompletionResultType]::ParameterName, 'The gateway container on this host [default: state file]')
            [CompletionResult]::new('--model-endpoint', '--model-endpoint', [CompletionResultType]::ParameterName, 'The model''s OpenAI-compatible endpoint (ending in /v1)')
            [CompletionResult]::new('--model-identifier', '--model-identifier', [CompletionResultType]::ParameterName, 'The model identifier configured in GitLab, such as custom_openai/codestral')
            [CompletionResult]::new('--model-api-key', '--model-api-key', [CompletionResultType]::ParameterName, 'The model endpoint''s API key (doctor''s model checks send it, install registers it in GitLab); never printed')
            [CompletionResult]::new('--only', '--only', [CompletionResultType]::ParameterName, 'Run only these checks (ids or prefixes such as gateway.*; repeatable)')
            [CompletionResult]::new('--skip', '--skip', [CompletionResultType]::ParameterName, 'Skip these checks (ids or prefixes; repeatable)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds each check may take')
            [CompletionResult]::new('--state-file', '--state-file', [CompletionResultType]::ParameterName, 'State file written by install [default: /etc/duo-selfhost/state.toml as root, else the user config dir]')
            [CompletionResult]::new('--bundle', '--bundle', [CompletionResultType]::ParameterName, 'Also write a support bundle: the report, versions, the gateway''s env (redacted) and last 500 log lines, gitlab.rb''s env (redacted), the model server''s /v1/models and /metrics')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour output (NO_COLOR is honoured under auto)')
            [CompletionResult]::new('--strict', '--strict', [CompletionResultType]::ParameterName, 'Treat warnings as failures (exit 1)')
            [CompletionResult]::new('--fix', '--fix', [CompletionResultType]::ParameterName, 'Offer to fix failures that have a safe mechanical fix (reconfigure, the feature flag, the gateway URL setting, the gateway''s env or image), run each after asking (--yes skips the question), then re-run those checks')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout and nothing else')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Hide progress bars and spinners')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'duo-selfhost;serve' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A TOML file of serve''s settings: server-wide keys, and a [[model]] table per model (flags given here override it)')
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Catalog name or alias (see `models list`), or a path to a .gguf file; repeat to serve several models [default: smollm2-135m]')
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'Catalog name or alias (see `models list`), or a path to a .gguf file; repeat to serve several models [default: smollm2-135m]')
            [CompletionResult]::new('--served-model-name', '--served-model-name', [CompletionResultType]::ParameterName, 'Name clients use for the model (GitLab''s identifier is custom_openai/<name>); repeat in --model''s order [default: the catalog name or file stem]')
            [CompletionResult]::new('--host', '--host', [CompletionResultType]::ParameterName, 'Address to bind; binding beyond loopback without --api-key prints a warning [default: 127.0.0.1]')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Port to listen on [default: 8080]')
            [CompletionResult]::new('--ctx-size', '--ctx-size', [CompletionResultType]::ParameterName, 'Context size in tokens, shared by the parallel sequences (each model''s) [default: 8192]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Sequences decoded together in one batch (each model''s) [default: 4]')
            [CompletionResult]::new('--threads', '--threads', [CompletionResultType]::ParameterName, 'CPU threads for llama.cpp, split across the models [default: the number of cores]')
            [CompletionResult]::new('--memory-limit', '--memory-limit', [CompletionResultType]::ParameterName, 'Memory the models'' weights and KV caches may take together, e.g. 6G [default: MemAvailable]')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'Require this key as a bearer token on every /v1 route; never printed')
            [CompletionResult]::new('--api-key-file', '--api-key-file', [CompletionResultType]::ParameterName, 'Read the API key from the first line of this file')
            [CompletionResult]::new('--max-queue', '--max-queue', [CompletionResultType]::ParameterName, 'Requests waiting beyond the busy slots; past it the server answers 503 with Retry-After [default: 64]')
            [CompletionResult]::new('--n-gpu-layers', '--n-gpu-layers', [CompletionResultType]::ParameterName, 'Layers to offload to the GPU (0: CPU only) [default: all when a GPU build finds a GPU, else 0]')
            [CompletionResult]::new('--fim-tokens', '--fim-tokens', [CompletionResultType]::ParameterName, 'Fill-in-the-middle tokens by their text, PRE,SUF,MID (PRE,SUF for the spm layout), for a GGUF whose metadata lacks them')
            [CompletionResult]::new('--fim-layout', '--fim-layout', [CompletionResultType]::ParameterName, 'How a fill is laid out: psm (PRE prefix SUF suffix MID) or spm (Mistral''s SUF suffix PRE prefix) [default: spm for Mistral''s [PREFIX]/[SUFFIX] tokens, psm otherwise]')
            [CompletionResult]::new('--chat-template', '--chat-template', [CompletionResultType]::ParameterName, 'A Jinja chat template file to use instead of the GGUF''s (needed for a GGUF that has none)')
            [CompletionResult]::new('--seed', '--seed', [CompletionResultType]::ParameterName, 'Sampling seed for requests that give none, so the same request gets the same answer (doctor''s probes, tests) [default: a random seed per request]')
            [CompletionResult]::new('--reuse-min-run', '--reuse-min-run', [CompletionResultType]::ParameterName, 'Shortest run of cached tokens kept after an edit (moved to its new place instead of evaluated again); 0 keeps only the common prefix [default: 32]')
            [CompletionResult]::new('--max-body-bytes', '--max-body-bytes', [CompletionResultType]::ParameterName, 'Largest request body accepted, in bytes (413 beyond) [default: 4194304]')
            [CompletionResult]::new('--body-timeout', '--body-timeout', [CompletionResultType]::ParameterName, 'Seconds a request body may take to arrive (408 beyond); slow senders do not hold a slot [default: 30]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour output (NO_COLOR is honoured under auto)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout and nothing else')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Hide progress bars and spinners')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'duo-selfhost;models' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour output (NO_COLOR is honoured under auto)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout and nothing else')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Hide progress bars and spinners')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the catalog: GitLab-approved models, models under evaluation, and the demo model')
            [CompletionResult]::new('pull', 'pull', [CompletionResultType]::ParameterValue, 'Download a model''s GGUF from Hugging Face into the local cache (resumable, checksummed)')
            [CompletionResult]::new('path', 'path', [CompletionResultType]::ParameterValue, 'Print where a model''s GGUF is in the local cache')
            [CompletionResult]::new('register', 'register', [CompletionResultType]::ParameterValue, 'Register a model in GitLab as a self-hosted model, run GitLab''s connection check, and point features at it')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'duo-selfhost;models;list' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour output (NO_COLOR is honoured under auto)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout and nothing else')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Hide progress bars and spinners')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'duo-selfhost;models;pull' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour output (NO_COLOR is honoured under auto)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout and nothing else')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Hide progress bars and spinners')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'duo-selfhost;models;path' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour output (NO_COLOR is honoured under auto)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout and nothing else')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Hide progress bars and spinners')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'duo-selfhost;models;register' {
            [CompletionResult]::new('--endpoint', '--endpoint', [CompletionResultType]::ParameterName, 'The model''s OpenAI-compatible endpoint as GitLab''s gateway reaches it, ending in /v1')
            [CompletionResult]::new('--served-model-name', '--served-model-name', [CompletionResultType]::ParameterName, 'Name the endpoint serves the model under (the identifier is custom_openai/<name>, bedrock/<name> for Bedrock) [default: the catalog name]')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'The endpoint''s API key, stored by GitLab as a secret; never printed')
            [CompletionResult]::new('--family', '--family', [CompletionResultType]::ParameterName, 'GitLab''s model family, such as CODESTRAL or GENERAL [default: the catalog''s]')
            [CompletionResult]::new('--features', '--features', [CompletionResultType]::ParameterName, 'Features to point at the model, such as code_completions,duo_chat [default: those the catalog says it is fit for, unless another model serves them]')
            [CompletionResult]::new('--gitlab-url', '--gitlab-url', [CompletionResultType]::ParameterName, 'GitLab''s external URL [default: found on this host: the state file or gitlab.rb''s external_url]')
            [CompletionResult]::new('--gitlab-token', '--gitlab-token', [CompletionResultType]::ParameterName, 'A GitLab personal access token (admin, `api` scope); never printed')
            [CompletionResult]::new('--ca-cert', '--ca-cert', [CompletionResultType]::ParameterName, 'A CA certificate (PEM) to trust for GitLab and the gateway, beside the system roots')
            [CompletionResult]::new('--gitlab-rb', '--gitlab-rb', [CompletionResultType]::ParameterName, 'The gitlab.rb to read (and edit, for a command that changes it)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour output (NO_COLOR is honoured under auto)')
            [CompletionResult]::new('--accept-beta', '--accept-beta', [CompletionResultType]::ParameterName, 'Allow beta features (accepts GitLab''s Testing Agreement for the instance)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout and nothing else')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Hide progress bars and spinners')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'duo-selfhost;models;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the catalog: GitLab-approved models, models under evaluation, and the demo model')
            [CompletionResult]::new('pull', 'pull', [CompletionResultType]::ParameterValue, 'Download a model''s GGUF from Hugging Face into the local cache (resumable, checksummed)')
            [CompletionResult]::new('path', 'path', [CompletionResultType]::ParameterValue, 'Print where a model''s GGUF is in the local cache')
            [CompletionResult]::new('register', 'register', [CompletionResultType]::ParameterValue, 'Register a model in GitLab as a self-hosted model, run GitLab''s connection check, and point features at it')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'duo-selfhost;models;help;list' {
            break
        }
        'duo-selfhost;models;help;pull' {
            break
        }
        'duo-selfhost;models;help;path' {
            break
        }
        'duo-selfhost;models;help;register' {
            break
        }
        'duo-selfhost;models;help;help' {
            break
        }
        'duo-selfhost;gitlab-rb' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour output (NO_COLOR is honoured under auto)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout and nothing else')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Hide progress bars and spinners')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Print the effective gitlab_rails[''env''] as omnibus sees it')
            [CompletionResult]::new('set', 'set', [CompletionResultType]::ParameterValue, 'Set environment variables in gitlab_rails[''env''], KEY=VALUE')
            [CompletionResult]::new('unset', 'unset', [CompletionResultType]::ParameterValue, 'Remove environment variables from gitlab_rails[''env'']')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'duo-selfhost;gitlab-rb;show' {
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'The gitlab.rb to read and edit')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour output (NO_COLOR is honoured under auto)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout and nothing else')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Hide progress bars and spinners')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'duo-selfhost;gitlab-rb;set' {
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'The gitlab.rb to read and edit')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour output (NO_COLOR is honoured under auto)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show the diff and write nothing')
            [CompletionResult]::new('--reconfigure', '--reconfigure', [CompletionResultType]::ParameterName, 'Run `gitlab-ctl reconfigure` afterwards and verify the rendered values')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout and nothing else')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Hide progress bars and spinners')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'duo-selfhost;gitlab-rb;unset' {
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'The gitlab.rb to read and edit')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour output (NO_COLOR is honoured under auto)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show the diff and write nothing')
            [CompletionResult]::new('--reconfigure', '--reconfigure', [CompletionResultType]::ParameterName, 'Run `gitlab-ctl reconfigure` afterwards and verify the rendered values')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout and nothing else')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Hide progress bars and spinners')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'duo-selfhost;gitlab-rb;help' {
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Print the effective gitlab_rails[''env''] as omnibus sees it')
            [CompletionResult]::new('set', 'set', [CompletionResultType]::ParameterValue, 'Set environment variables in gitlab_rails[''env''], KEY=VALUE')
            [CompletionResult]::new('unset', 'unset', [CompletionResultType]::ParameterValue, 'Remove environment variables from gitlab_rails[''env'']')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'duo-selfhost;gitlab-rb;help;show' {
            break
        }
        'duo-selfhost;gitlab-rb;help;set' {
            break
        }
        'duo-selfhost;gitlab-rb;help;unset' {
            break
        }
        'duo-selfhost;gitlab-rb;help;help' {
            break
        }
        'duo-selfhost;image-tag' {
            [CompletionResult]::new('--gitlab-version', '--gitlab-version', [CompletionResultType]::ParameterName, 'The GitLab version: 17.5.0, v17.5.0-ee, 17.5.2-ee, 18.2.1')
            [CompletionResult]::new('--registry', '--registry', [CompletionResultType]::ParameterName, 'Image repository: gitlab, dockerhub, or a mirror as HOST/PATH')
            [CompletionResult]::new('--available-tags', '--available-tags', [CompletionResultType]::ParameterName, 'A file listing the available tags, one per line (air-gapped mirrors)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour output (NO_COLOR is honoured under auto)')
            [CompletionResult]::new('--offline', '--offline', [CompletionResultType]::ParameterName, 'Do not ask the registry; use self-hosted-vX.Y.0-ee with a warning')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout and nothing else')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Hide progress bars and spinners')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'duo-selfhost;bundle' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour output (NO_COLOR is honoured under auto)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout and nothing else')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Hide progress bars and spinners')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'On a connected machine: write the gateway images, the models (GGUFs, or vLLM''s image and Hugging Face weights), the Helm chart and tag lists for GitLab versions into one file')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check every checksum of a bundle and its manifest, loading nothing')
            [CompletionResult]::new('load', 'load', [CompletionResultType]::ParameterValue, 'On the air-gapped host: verify a bundle as it is read, then load its images, models, chart and tag lists')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'duo-selfhost;bundle;create' {
            [CompletionResult]::new('--gitlab-version', '--gitlab-version', [CompletionResultType]::ParameterName, 'GitLab version to bundle the gateway for (repeatable: images of several versions share their layers)')
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'Catalog model to carry (repeatable): its GGUF for the embedded runtime, pulled into the local cache first when missing; with --model-runtime vllm its Hugging Face repository''s weights, downloaded from HF_ENDPOINT (HF_TOKEN for gated ones)')
            [CompletionResult]::new('--model-runtime', '--model-runtime', [CompletionResultType]::ParameterName, 'What will serve the model on the air-gapped host')
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Where the gateway will run: docker, or helm (the AI Gateway chart archive goes in too, fetched with `helm pull`)')
            [CompletionResult]::new('--chart-version', '--chart-version', [CompletionResultType]::ParameterName, 'With --target helm: the AI Gateway chart version, as `install --target helm --chart-version` takes it')
            [CompletionResult]::new('--chart-repo', '--chart-repo', [CompletionResultType]::ParameterName, 'With --target helm: the chart repository to pull from (a mirror of GitLab''s) [default: GitLab''s AI Gateway chart repository]')
            [CompletionResult]::new('--registry', '--registry', [CompletionResultType]::ParameterName, 'Image repository: gitlab, dockerhub, or a mirror as HOST/PATH')
            [CompletionResult]::new('--available-tags', '--available-tags', [CompletionResultType]::ParameterName, 'A file listing the available tags, one per line, instead of the registry''s listing')
            [CompletionResult]::new('--pull', '--pull', [CompletionResultType]::ParameterName, 'When to pull images (missing: an image already in the local engine is used as it is)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'The bundle to write (written as FILE.partial and renamed when complete)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'The bundle to write (written as FILE.partial and renamed when complete)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour output (NO_COLOR is honoured under auto)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout and nothing else')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Hide progress bars and spinners')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'duo-selfhost;bundle;verify' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour output (NO_COLOR is honoured under auto)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout and nothing else')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Hide progress bars and spinners')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'duo-selfhost;bundle;load' {
            [CompletionResult]::new('--push-to', '--push-to', [CompletionResultType]::ParameterName, 'Also tag and push every image of the bundle to this registry path, each as PATH/<its name>:<its tag> (PATH/model-gateway, PATH/vllm-openai); the printed install command then names them there (--registry, --vllm-image)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour output (NO_COLOR is honoured under auto)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout and nothing else')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Hide progress bars and spinners')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'duo-selfhost;bundle;help' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'On a connected machine: write the gateway images, the models (GGUFs, or vLLM''s image and Hugging Face weights), the Helm chart and tag lists for GitLab versions into one file')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check every checksum of a bundle and its manifest, loading nothing')
            [CompletionResult]::new('load', 'load', [CompletionResultType]::ParameterValue, 'On the air-gapped host: verify a bundle as it is read, then load its images, models, chart and tag lists')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'duo-selfhost;bundle;help;create' {
            break
        }
        'duo-selfhost;bundle;help;verify' {
            break
        }
        'duo-selfhost;bundle;help;load' {
            break
        }
        'duo-selfhost;bundle;help;help' {
            break
        }
        'duo-selfhost;completions' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour output (NO_COLOR is honoured under auto)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout and nothing else')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Hide progress bars and spinners')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'duo-selfhost;generate-assets' {
            [CompletionResult]::new('--out-dir', '--out-dir', [CompletionResultType]::ParameterName, 'Directory holding completions/ and man/')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to colour output (NO_COLOR is honoured under auto)')
            [CompletionResult]::new('--check', '--check', [CompletionResultType]::ParameterName, 'Compare with the files on disk and fail when they differ, writing nothing')
            [CompletionResult]::new('--packaging', '--packaging', [CompletionResultType]::ParameterName, 'Also write packaging/: the systemd unit and the example serve.toml the packages install (scripts/package)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print only results and errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail on stderr; repeat for more (-vv debug, -vvv trace)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout and nothing else')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Never prompt: take values from flags and defaults, answer yes to confirmations')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Hide progress bars and spinners')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'duo-selfhost;help' {
            [CompletionResult]::new('install', 'install', [CompletionResultType]::ParameterValue, 'Install the AI Gateway (Docker or Helm), a model runtime, and point GitLab at the gateway')
            [CompletionResult]::new('upgrade', 'upgrade', [CompletionResultType]::ParameterValue, 'Upgrade the AI Gateway to the image matching the GitLab version, keeping its settings')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Check the whole chain (GitLab, gateway, model) and say how to fix what is broken')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Serve a GGUF model on an OpenAI-compatible API with the embedded llama.cpp engine')
            [CompletionResult]::new('models', 'models', [CompletionResultType]::ParameterValue, 'List, download and locate the models duo-selfhost knows')
            [CompletionResult]::new('gitlab-rb', 'gitlab-rb', [CompletionResultType]::ParameterValue, 'Read and edit gitlab_rails[''env''] in /etc/gitlab/gitlab.rb safely')
            [CompletionResult]::new('image-tag', 'image-tag', [CompletionResultType]::ParameterValue, 'Print the AI Gateway image for a GitLab version')
            [CompletionResult]::new('bundle', 'bundle', [CompletionResultType]::ParameterValue, 'Carry an install to a host without the internet: images, models and tag lists in one file')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('generate-assets', 'generate-assets', [CompletionResultType]::ParameterValue, 'Regenerate the committed completions/ and man/ files (for developers)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'duo-selfhost;help;install' {
            break
        }
        'duo-selfhost;help;upgrade' {
            break
        }
        'duo-selfhost;help;doctor' {
            break
        }
        'duo-selfhost;help;serve' {
            break
        }
        'duo-selfhost;help;models' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the catalog: GitLab-approved models, models under evaluation, and the demo model')
            [CompletionResult]::new('pull', 'pull', [CompletionResultType]::ParameterValue, 'Download a model''s GGUF from Hugging Face into the local cache (resumable, checksummed)')
            [CompletionResult]::new('path', 'path', [CompletionResultType]::ParameterValue, 'Print where a model''s GGUF is in the local cache')
            [CompletionResult]::new('register', 'register', [CompletionResultType]::ParameterValue, 'Register a model in GitLab as a self-hosted model, run GitLab''s connection check, and point features at it')
            break
        }
        'duo-selfhost;help;models;list' {
            break
        }
        'duo-selfhost;help;models;pull' {
            break
        }
        'duo-selfhost;help;models;path' {
            break
        }
        'duo-selfhost;help;models;register' {
            break
        }
        'duo-selfhost;help;gitlab-rb' {
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Print the effective gitlab_rails[''env''] as omnibus sees it')
            [CompletionResult]::new('set', 'set', [CompletionResultType]::ParameterValue, 'Set environment variables in gitlab_rails[''env''], KEY=VALUE')
            [CompletionResult]::new('unset', 'unset', [CompletionResultType]::ParameterValue, 'Remove environment variables from gitlab_rails[''env'']')
            break
        }
        'duo-selfhost;help;gitlab-rb;show' {
            break
        }
        'duo-selfhost;help;gitlab-rb;set' {
            break
        }
        'duo-selfhost;help;gitlab-rb;unset' {
            break
        }
        'duo-selfhost;help;image-tag' {
            break
        }
        'duo-selfhost;help;bundle' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'On a connected machine: write the gateway images, the models (GGUFs, or vLLM''s image and Hugging Face weights), the Helm chart and tag lists for GitLab versions into one file')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check every checksum of a bundle and its manifest, loading nothing')
            [CompletionResult]::new('load', 'load', [CompletionResultType]::ParameterValue, 'On the air-gapped host: verify a bundle as it is read, then load its images, models, chart and tag lists')
            break
        }
        'duo-selfhost;help;bundle;create' {
            break
        }
        'duo-selfhost;help;bundle;verify' {
            break
        }
        'duo-selfhost;help;bundle;load' {
            break
        }
        'duo-selfhost;help;completions' {
            break
        }
        'duo-selfhost;help;generate-assets' {
            break
        }
        'duo-selfhost;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
