# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_duo_selfhost_global_optspecs
    string join \n q/quiet v/verbose color= json y/yes no-progress h/help V/version
end

function __fish_duo_selfhost_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_duo_selfhost_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_duo_selfhost_using_subcommand
    set -l cmd (__fish_duo_selfhost_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c duo-selfhost -n "__fish_duo_selfhost_needs_command" -l color -d 'When to colour output (NO_COLOR is honoured under auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_needs_command" -s q -l quiet -d 'Print only results and errors'
complete -c duo-selfhost -n "__fish_duo_selfhost_needs_command" -s v -l verbose -d 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
complete -c duo-selfhost -n "__fish_duo_selfhost_needs_command" -l json -d 'Print one JSON document on stdout and nothing else'
complete -c duo-selfhost -n "__fish_duo_selfhost_needs_command" -s y -l yes -d 'Never prompt: take values from flags and defaults, answer yes to confirmations'
complete -c duo-selfhost -n "__fish_duo_selfhost_needs_command" -l no-progress -d 'Hide progress bars and spinners'
complete -c duo-selfhost -n "__fish_duo_selfhost_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c duo-selfhost -n "__fish_duo_selfhost_needs_command" -s V -l version -d 'Print version'
complete -c duo-selfhost -n "__fish_duo_selfhost_needs_command" -f -a "install" -d 'Install the AI Gateway (Docker or Helm), a model runtime, and point GitLab at the gateway'
complete -c duo-selfhost -n "__fish_duo_selfhost_needs_command" -f -a "upgrade" -d 'Upgrade the AI Gateway to the image matching the GitLab version, keeping its settings'
complete -c duo-selfhost -n "__fish_duo_selfhost_needs_command" -f -a "doctor" -d 'Check the whole chain (GitLab, gateway, model) and say how to fix what is broken'
complete -c duo-selfhost -n "__fish_duo_selfhost_needs_command" -f -a "serve" -d 'Serve a GGUF model on an OpenAI-compatible API with the embedded llama.cpp engine'
complete -c duo-selfhost -n "__fish_duo_selfhost_needs_command" -f -a "models" -d 'List, download and locate the models duo-selfhost knows'
complete -c duo-selfhost -n "__fish_duo_selfhost_needs_command" -f -a "gitlab-rb" -d 'Read and edit gitlab_rails[\'env\'] in /etc/gitlab/gitlab.rb safely'
complete -c duo-selfhost -n "__fish_duo_selfhost_needs_command" -f -a "image-tag" -d 'Print the AI Gateway image for a GitLab version'
complete -c duo-selfhost -n "__fish_duo_selfhost_needs_command" -f -a "bundle" -d 'Carry an install to a host without the internet: images, models and tag lists in one file'
complete -c duo-selfhost -n "__fish_duo_selfhost_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c duo-selfhost -n "__fish_duo_selfhost_needs_command" -f -a "generate-assets" -d 'Regenerate the committed completions/ and man/ files (for developers)'
complete -c duo-selfhost -n "__fish_duo_selfhost_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l target -d 'Where the gateway runs' -r -f -a "docker\t'A container on this host\'s Docker Engine'
helm\t'The AI Gateway Helm chart on a Kubernetes cluster'"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l gitlab-url -d 'GitLab\'s external URL [default: found on this host: the state file or gitlab.rb\'s external_url]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l gitlab-token -d 'A GitLab personal access token (admin, `api` scope); never printed' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l ca-cert -d 'A CA certificate (PEM) to trust for GitLab and the gateway, beside the system roots' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l gitlab-rb -d 'The gitlab.rb to read (and edit, for a command that changes it)' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l gitlab-version -d 'The GitLab version, such as 17.5.0 [default: detected from the API or the host]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l gateway-host -d 'The name GitLab reaches the gateway by (not localhost)' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l gateway-port -d 'The gateway\'s HTTP port' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l image -d 'Use this exact image reference instead of choosing one from the GitLab version' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l registry -d 'Image repository: gitlab, dockerhub, or a mirror as HOST/PATH' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l available-tags -d 'A file listing the available tags, one per line (air-gapped mirrors)' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l pull -d 'When to pull the image' -r -f -a "always\t''
missing\t''
never\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l container-name -d 'Name of the gateway container' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l log-dir -d 'Host directory for the gateway\'s logs, mounted into the container' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l env -d 'Extra environment variable for the gateway, KEY=VALUE (repeatable)' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l model-runtime -d 'What serves the model [default: asked on a terminal, else none]' -r -f -a "none\t'An endpoint that already exists (--model-endpoint)'
embedded\t'`duo-selfhost serve` on this host, as a systemd service'
vllm\t'A vLLM container on this host\'s Docker Engine (needs an NVIDIA GPU)'"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l model-api-key -d 'The model endpoint\'s API key (doctor\'s model checks send it, install registers it in GitLab); never printed' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l model-endpoint -d 'The model\'s OpenAI-compatible endpoint, ending in /v1 (with --model-runtime none)' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l model -d 'The model to run: a catalog name or alias; for vllm also a Hugging Face repository (owner/name) or an absolute directory. A Hugging Face token for gated repositories is read from HF_TOKEN (or HUGGING_FACE_HUB_TOKEN) and never printed' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l served-model-name -d 'Name the model is served under (the identifier is custom_openai/<name>) [default: the catalog name]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l gpus -d 'GPUs vLLM uses: its --tensor-parallel-size [default: every GPU `nvidia-smi -L` lists, else 1]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l ctx-size -d 'vLLM\'s context length in tokens (--max-model-len) [default: the model\'s own]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l vllm-image -d 'The vLLM image to run, such as the pinned one pushed to a site registry by `bundle load --push-to` [default: the pinned vllm/vllm-openai]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l health-timeout -d 'Seconds to wait for the gateway to become healthy' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l state-file -d 'State file written by install [default: /etc/duo-selfhost/state.toml as root, else the user config dir]' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l namespace -d 'Kubernetes namespace for the gateway' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l release -d 'Helm release name' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l chart-version -d 'AI Gateway chart version to install' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l values-out -d 'Where to keep the rendered Helm values file' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l tls-cert -d 'TLS certificate (PEM) for the gateway domain' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l tls-key -d 'TLS private key (PEM) matching --tls-cert' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l ingress-class -d 'Ingress class for the gateway' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l helm-timeout -d 'How long helm and kubectl may wait, in seconds' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l color -d 'When to colour output (NO_COLOR is honoured under auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l allow-localhost -d 'Allow a localhost gateway URL (a one-host lab only: GitLab must reach the gateway over the network)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l offline -d 'Use only what `bundle load` put on this host: no tag listing, no pull; anything missing is an error naming the bundle command that adds it'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l dry-run -d 'Print the plan (image, env with secrets masked, ports, volumes, gitlab.rb diff) and change nothing'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -s q -l quiet -d 'Print only results and errors'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -s v -l verbose -d 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l json -d 'Print one JSON document on stdout and nothing else'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -s y -l yes -d 'Never prompt: take values from flags and defaults, answer yes to confirmations'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -l no-progress -d 'Hide progress bars and spinners'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand install" -s V -l version -d 'Print version'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l target -d 'Where the gateway runs [default: from the state file, else docker]' -r -f -a "docker\t'A container on this host\'s Docker Engine'
helm\t'The AI Gateway Helm chart on a Kubernetes cluster'"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l to-version -d 'Upgrade for this GitLab version instead of the detected one' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l container-name -d 'Name of the gateway container [default: from the state file, else gitlab-aigw]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l image -d 'Use this exact image reference instead of choosing one from the GitLab version' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l registry -d 'Image repository: gitlab, dockerhub, or a mirror as HOST/PATH' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l available-tags -d 'A file listing the available tags, one per line (air-gapped mirrors)' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l pull -d 'When to pull the image' -r -f -a "always\t''
missing\t''
never\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l gitlab-url -d 'GitLab\'s external URL [default: found on this host: the state file or gitlab.rb\'s external_url]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l gitlab-token -d 'A GitLab personal access token (admin, `api` scope); never printed' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l ca-cert -d 'A CA certificate (PEM) to trust for GitLab and the gateway, beside the system roots' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l gitlab-rb -d 'The gitlab.rb to read (and edit, for a command that changes it)' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l health-timeout -d 'Seconds to wait for the new gateway to become healthy before rolling back' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l state-file -d 'State file written by install [default: /etc/duo-selfhost/state.toml as root, else the user config dir]' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l namespace -d 'Kubernetes namespace for the gateway' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l release -d 'Helm release name' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l chart-version -d 'AI Gateway chart version to install' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l values-out -d 'Where to keep the rendered Helm values file' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l tls-cert -d 'TLS certificate (PEM) for the gateway domain' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l tls-key -d 'TLS private key (PEM) matching --tls-cert' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l ingress-class -d 'Ingress class for the gateway' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l helm-timeout -d 'How long helm and kubectl may wait, in seconds' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l color -d 'When to colour output (NO_COLOR is honoured under auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l offline -d 'Use only what `bundle load` put on this host: no tag listing, no pull; anything missing is an error naming the bundle command that adds it'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l check -d 'Only check: exit 0 when up to date, 100 when an upgrade is available'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l dry-run -d 'Print what would change and change nothing'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -s q -l quiet -d 'Print only results and errors'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -s v -l verbose -d 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l json -d 'Print one JSON document on stdout and nothing else'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -s y -l yes -d 'Never prompt: take values from flags and defaults, answer yes to confirmations'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -l no-progress -d 'Hide progress bars and spinners'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand upgrade" -s V -l version -d 'Print version'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand doctor" -l gitlab-url -d 'GitLab\'s external URL [default: found on this host: the state file or gitlab.rb\'s external_url]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand doctor" -l gitlab-token -d 'A GitLab personal access token (admin, `api` scope); never printed' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand doctor" -l ca-cert -d 'A CA certificate (PEM) to trust for GitLab and the gateway, beside the system roots' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand doctor" -l gitlab-rb -d 'The gitlab.rb to read (and edit, for a command that changes it)' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand doctor" -l gateway-url -d 'The AI Gateway URL [default: state file, then gitlab.rb]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand doctor" -l container -d 'The gateway container on this host [default: state file]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand doctor" -l model-endpoint -d 'The model\'s OpenAI-compatible endpoint (ending in /v1)' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand doctor" -l model-identifier -d 'The model identifier configured in GitLab, such as custom_openai/codestral' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand doctor" -l model-api-key -d 'The model endpoint\'s API key (doctor\'s model checks send it, install registers it in GitLab); never printed' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand doctor" -l only -d 'Run only these checks (ids or prefixes such as gateway.*; repeatable)' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand doctor" -l skip -d 'Skip these checks (ids or prefixes; repeatable)' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand doctor" -l timeout -d 'Seconds each check may take' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand doctor" -l state-file -d 'State file written by install [default: /etc/duo-selfhost/state.toml as root, else the user config dir]' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand doctor" -l bundle -d 'Also write a support bundle: the report, versions, the gateway\'s env (redacted) and last 500 log lines, gitlab.rb\'s env (redacted), the model server\'s /v1/models and /metrics' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand doctor" -l color -d 'When to colour output (NO_COLOR is honoured under auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand doctor" -l strict -d 'Treat warnings as failures (exit 1)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand doctor" -l fix -d 'Offer to fix failures that have a safe mechanical fix (reconfigure, the feature flag, the gateway URL setting, the gateway\'s env or image), run each after asking (--yes skips the question), then re-run those checks'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand doctor" -s q -l quiet -d 'Print only results and errors'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand doctor" -s v -l verbose -d 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand doctor" -l json -d 'Print one JSON document on stdout and nothing else'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand doctor" -s y -l yes -d 'Never prompt: take values from flags and defaults, answer yes to confirmations'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand doctor" -l no-progress -d 'Hide progress bars and spinners'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -l config -d 'A TOML file of serve\'s settings: server-wide keys, and a [[model]] table per model (flags given here override it)' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -s m -l model -d 'Catalog name or alias (see `models list`), or a path to a .gguf file; repeat to serve several models [default: smollm2-135m]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -l served-model-name -d 'Name clients use for the model (GitLab\'s identifier is custom_openai/<name>); repeat in --model\'s order [default: the catalog name or file stem]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -l host -d 'Address to bind; binding beyond loopback without --api-key prints a warning [default: 127.0.0.1]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -l port -d 'Port to listen on [default: 8080]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -l ctx-size -d 'Context size in tokens, shared by the parallel sequences (each model\'s) [default: 8192]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -l parallel -d 'Sequences decoded together in one batch (each model\'s) [default: 4]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -l threads -d 'CPU threads for llama.cpp, split across the models [default: the number of cores]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -l memory-limit -d 'Memory the models\' weights and KV caches may take together, e.g. 6G [default: MemAvailable]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -l api-key -d 'Require this key as a bearer token on every /v1 route; never printed' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -l api-key-file -d 'Read the API key from the first line of this file' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -l max-queue -d 'Requests waiting beyond the busy slots; past it the server answers 503 with Retry-After [default: 64]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -l n-gpu-layers -d 'Layers to offload to the GPU (0: CPU only) [default: all when a GPU build finds a GPU, else 0]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -l fim-tokens -d 'Fill-in-the-middle tokens by their text, PRE,SUF,MID (PRE,SUF for the spm layout), for a GGUF whose metadata lacks them' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -l fim-layout -d 'How a fill is laid out: psm (PRE prefix SUF suffix MID) or spm (Mistral\'s SUF suffix PRE prefix) [default: spm for Mistral\'s [PREFIX]/[SUFFIX] tokens, psm otherwise]' -r -f -a "psm\t''
spm\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -l chat-template -d 'A Jinja chat template file to use instead of the GGUF\'s (needed for a GGUF that has none)' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -l seed -d 'Sampling seed for requests that give none, so the same request gets the same answer (doctor\'s probes, tests) [default: a random seed per request]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -l reuse-min-run -d 'Shortest run of cached tokens kept after an edit (moved to its new place instead of evaluated again); 0 keeps only the common prefix [default: 32]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -l max-body-bytes -d 'Largest request body accepted, in bytes (413 beyond) [default: 4194304]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -l body-timeout -d 'Seconds a request body may take to arrive (408 beyond); slow senders do not hold a slot [default: 30]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -l color -d 'When to colour output (NO_COLOR is honoured under auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -s q -l quiet -d 'Print only results and errors'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -s v -l verbose -d 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -l json -d 'Print one JSON document on stdout and nothing else'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -s y -l yes -d 'Never prompt: take values from flags and defaults, answer yes to confirmations'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -l no-progress -d 'Hide progress bars and spinners'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -s h -l help -d 'Print help'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand serve" -s V -l version -d 'Print version'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and not __fish_seen_subcommand_from list pull path register help" -l color -d 'When to colour output (NO_COLOR is honoured under auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and not __fish_seen_subcommand_from list pull path register help" -s q -l quiet -d 'Print only results and errors'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and not __fish_seen_subcommand_from list pull path register help" -s v -l verbose -d 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and not __fish_seen_subcommand_from list pull path register help" -l json -d 'Print one JSON document on stdout and nothing else'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and not __fish_seen_subcommand_from list pull path register help" -s y -l yes -d 'Never prompt: take values from flags and defaults, answer yes to confirmations'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and not __fish_seen_subcommand_from list pull path register help" -l no-progress -d 'Hide progress bars and spinners'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and not __fish_seen_subcommand_from list pull path register help" -s h -l help -d 'Print help'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and not __fish_seen_subcommand_from list pull path register help" -s V -l version -d 'Print version'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and not __fish_seen_subcommand_from list pull path register help" -f -a "list" -d 'List the catalog: GitLab-approved models, models under evaluation, and the demo model'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and not __fish_seen_subcommand_from list pull path register help" -f -a "pull" -d 'Download a model\'s GGUF from Hugging Face into the local cache (resumable, checksummed)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and not __fish_seen_subcommand_from list pull path register help" -f -a "path" -d 'Print where a model\'s GGUF is in the local cache'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and not __fish_seen_subcommand_from list pull path register help" -f -a "register" -d 'Register a model in GitLab as a self-hosted model, run GitLab\'s connection check, and point features at it'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and not __fish_seen_subcommand_from list pull path register help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from list" -l color -d 'When to colour output (NO_COLOR is honoured under auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print only results and errors'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from list" -s v -l verbose -d 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from list" -l json -d 'Print one JSON document on stdout and nothing else'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from list" -s y -l yes -d 'Never prompt: take values from flags and defaults, answer yes to confirmations'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from list" -l no-progress -d 'Hide progress bars and spinners'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from pull" -l color -d 'When to colour output (NO_COLOR is honoured under auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from pull" -s q -l quiet -d 'Print only results and errors'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from pull" -s v -l verbose -d 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from pull" -l json -d 'Print one JSON document on stdout and nothing else'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from pull" -s y -l yes -d 'Never prompt: take values from flags and defaults, answer yes to confirmations'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from pull" -l no-progress -d 'Hide progress bars and spinners'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from pull" -s h -l help -d 'Print help'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from pull" -s V -l version -d 'Print version'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from path" -l color -d 'When to colour output (NO_COLOR is honoured under auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from path" -s q -l quiet -d 'Print only results and errors'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from path" -s v -l verbose -d 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from path" -l json -d 'Print one JSON document on stdout and nothing else'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from path" -s y -l yes -d 'Never prompt: take values from flags and defaults, answer yes to confirmations'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from path" -l no-progress -d 'Hide progress bars and spinners'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from path" -s h -l help -d 'Print help'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from path" -s V -l version -d 'Print version'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from register" -l endpoint -d 'The model\'s OpenAI-compatible endpoint as GitLab\'s gateway reaches it, ending in /v1' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from register" -l served-model-name -d 'Name the endpoint serves the model under (the identifier is custom_openai/<name>, bedrock/<name> for Bedrock) [default: the catalog name]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from register" -l api-key -d 'The endpoint\'s API key, stored by GitLab as a secret; never printed' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from register" -l family -d 'GitLab\'s model family, such as CODESTRAL or GENERAL [default: the catalog\'s]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from register" -l features -d 'Features to point at the model, such as code_completions,duo_chat [default: those the catalog says it is fit for, unless another model serves them]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from register" -l gitlab-url -d 'GitLab\'s external URL [default: found on this host: the state file or gitlab.rb\'s external_url]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from register" -l gitlab-token -d 'A GitLab personal access token (admin, `api` scope); never printed' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from register" -l ca-cert -d 'A CA certificate (PEM) to trust for GitLab and the gateway, beside the system roots' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from register" -l gitlab-rb -d 'The gitlab.rb to read (and edit, for a command that changes it)' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from register" -l color -d 'When to colour output (NO_COLOR is honoured under auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from register" -l accept-beta -d 'Allow beta features (accepts GitLab\'s Testing Agreement for the instance)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from register" -s q -l quiet -d 'Print only results and errors'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from register" -s v -l verbose -d 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from register" -l json -d 'Print one JSON document on stdout and nothing else'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from register" -s y -l yes -d 'Never prompt: take values from flags and defaults, answer yes to confirmations'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from register" -l no-progress -d 'Hide progress bars and spinners'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from register" -s h -l help -d 'Print help'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from register" -s V -l version -d 'Print version'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the catalog: GitLab-approved models, models under evaluation, and the demo model'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from help" -f -a "pull" -d 'Download a model\'s GGUF from Hugging Face into the local cache (resumable, checksummed)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from help" -f -a "path" -d 'Print where a model\'s GGUF is in the local cache'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from help" -f -a "register" -d 'Register a model in GitLab as a self-hosted model, run GitLab\'s connection check, and point features at it'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand models; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and not __fish_seen_subcommand_from show set unset help" -l color -d 'When to colour output (NO_COLOR is honoured under auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and not __fish_seen_subcommand_from show set unset help" -s q -l quiet -d 'Print only results and errors'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and not __fish_seen_subcommand_from show set unset help" -s v -l verbose -d 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and not __fish_seen_subcommand_from show set unset help" -l json -d 'Print one JSON document on stdout and nothing else'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and not __fish_seen_subcommand_from show set unset help" -s y -l yes -d 'Never prompt: take values from flags and defaults, answer yes to confirmations'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and not __fish_seen_subcommand_from show set unset help" -l no-progress -d 'Hide progress bars and spinners'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and not __fish_seen_subcommand_from show set unset help" -s h -l help -d 'Print help'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and not __fish_seen_subcommand_from show set unset help" -s V -l version -d 'Print version'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and not __fish_seen_subcommand_from show set unset help" -f -a "show" -d 'Print the effective gitlab_rails[\'env\'] as omnibus sees it'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and not __fish_seen_subcommand_from show set unset help" -f -a "set" -d 'Set environment variables in gitlab_rails[\'env\'], KEY=VALUE'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and not __fish_seen_subcommand_from show set unset help" -f -a "unset" -d 'Remove environment variables from gitlab_rails[\'env\']'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and not __fish_seen_subcommand_from show set unset help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from show" -l file -d 'The gitlab.rb to read and edit' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from show" -l color -d 'When to colour output (NO_COLOR is honoured under auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Print only results and errors'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from show" -s v -l verbose -d 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from show" -l json -d 'Print one JSON document on stdout and nothing else'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from show" -s y -l yes -d 'Never prompt: take values from flags and defaults, answer yes to confirmations'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from show" -l no-progress -d 'Hide progress bars and spinners'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from set" -l file -d 'The gitlab.rb to read and edit' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from set" -l color -d 'When to colour output (NO_COLOR is honoured under auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from set" -l dry-run -d 'Show the diff and write nothing'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from set" -l reconfigure -d 'Run `gitlab-ctl reconfigure` afterwards and verify the rendered values'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from set" -s q -l quiet -d 'Print only results and errors'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from set" -s v -l verbose -d 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from set" -l json -d 'Print one JSON document on stdout and nothing else'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from set" -s y -l yes -d 'Never prompt: take values from flags and defaults, answer yes to confirmations'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from set" -l no-progress -d 'Hide progress bars and spinners'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from set" -s V -l version -d 'Print version'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from unset" -l file -d 'The gitlab.rb to read and edit' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from unset" -l color -d 'When to colour output (NO_COLOR is honoured under auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from unset" -l dry-run -d 'Show the diff and write nothing'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from unset" -l reconfigure -d 'Run `gitlab-ctl reconfigure` afterwards and verify the rendered values'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from unset" -s q -l quiet -d 'Print only results and errors'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from unset" -s v -l verbose -d 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from unset" -l json -d 'Print one JSON document on stdout and nothing else'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from unset" -s y -l yes -d 'Never prompt: take values from flags and defaults, answer yes to confirmations'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from unset" -l no-progress -d 'Hide progress bars and spinners'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from unset" -s h -l help -d 'Print help'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from unset" -s V -l version -d 'Print version'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from help" -f -a "show" -d 'Print the effective gitlab_rails[\'env\'] as omnibus sees it'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from help" -f -a "set" -d 'Set environment variables in gitlab_rails[\'env\'], KEY=VALUE'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from help" -f -a "unset" -d 'Remove environment variables from gitlab_rails[\'env\']'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand gitlab-rb; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand image-tag" -l gitlab-version -d 'The GitLab version: 17.5.0, v17.5.0-ee, 17.5.2-ee, 18.2.1' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand image-tag" -l registry -d 'Image repository: gitlab, dockerhub, or a mirror as HOST/PATH' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand image-tag" -l available-tags -d 'A file listing the available tags, one per line (air-gapped mirrors)' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand image-tag" -l color -d 'When to colour output (NO_COLOR is honoured under auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand image-tag" -l offline -d 'Do not ask the registry; use self-hosted-vX.Y.0-ee with a warning'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand image-tag" -s q -l quiet -d 'Print only results and errors'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand image-tag" -s v -l verbose -d 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand image-tag" -l json -d 'Print one JSON document on stdout and nothing else'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand image-tag" -s y -l yes -d 'Never prompt: take values from flags and defaults, answer yes to confirmations'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand image-tag" -l no-progress -d 'Hide progress bars and spinners'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand image-tag" -s h -l help -d 'Print help'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand image-tag" -s V -l version -d 'Print version'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and not __fish_seen_subcommand_from create verify load help" -l color -d 'When to colour output (NO_COLOR is honoured under auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and not __fish_seen_subcommand_from create verify load help" -s q -l quiet -d 'Print only results and errors'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and not __fish_seen_subcommand_from create verify load help" -s v -l verbose -d 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and not __fish_seen_subcommand_from create verify load help" -l json -d 'Print one JSON document on stdout and nothing else'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and not __fish_seen_subcommand_from create verify load help" -s y -l yes -d 'Never prompt: take values from flags and defaults, answer yes to confirmations'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and not __fish_seen_subcommand_from create verify load help" -l no-progress -d 'Hide progress bars and spinners'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and not __fish_seen_subcommand_from create verify load help" -s h -l help -d 'Print help'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and not __fish_seen_subcommand_from create verify load help" -s V -l version -d 'Print version'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and not __fish_seen_subcommand_from create verify load help" -f -a "create" -d 'On a connected machine: write the gateway images, the models (GGUFs, or vLLM\'s image and Hugging Face weights), the Helm chart and tag lists for GitLab versions into one file'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and not __fish_seen_subcommand_from create verify load help" -f -a "verify" -d 'Check every checksum of a bundle and its manifest, loading nothing'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and not __fish_seen_subcommand_from create verify load help" -f -a "load" -d 'On the air-gapped host: verify a bundle as it is read, then load its images, models, chart and tag lists'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and not __fish_seen_subcommand_from create verify load help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from create" -l gitlab-version -d 'GitLab version to bundle the gateway for (repeatable: images of several versions share their layers)' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from create" -l model -d 'Catalog model to carry (repeatable): its GGUF for the embedded runtime, pulled into the local cache first when missing; with --model-runtime vllm its Hugging Face repository\'s weights, downloaded from HF_ENDPOINT (HF_TOKEN for gated ones)' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from create" -l model-runtime -d 'What will serve the model on the air-gapped host' -r -f -a "embedded\t'`duo-selfhost serve`: the models\' GGUFs go into the bundle'
vllm\t'A vLLM container: the pinned vLLM image and each model\'s Hugging Face weights go into the bundle'"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from create" -l target -d 'Where the gateway will run: docker, or helm (the AI Gateway chart archive goes in too, fetched with `helm pull`)' -r -f -a "docker\t'A container on this host\'s Docker Engine'
helm\t'The AI Gateway Helm chart on a Kubernetes cluster'"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from create" -l chart-version -d 'With --target helm: the AI Gateway chart version, as `install --target helm --chart-version` takes it' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from create" -l chart-repo -d 'With --target helm: the chart repository to pull from (a mirror of GitLab\'s) [default: GitLab\'s AI Gateway chart repository]' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from create" -l registry -d 'Image repository: gitlab, dockerhub, or a mirror as HOST/PATH' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from create" -l available-tags -d 'A file listing the available tags, one per line, instead of the registry\'s listing' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from create" -l pull -d 'When to pull images (missing: an image already in the local engine is used as it is)' -r -f -a "always\t''
missing\t''
never\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from create" -s o -l output -d 'The bundle to write (written as FILE.partial and renamed when complete)' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from create" -l color -d 'When to colour output (NO_COLOR is honoured under auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Print only results and errors'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from create" -s v -l verbose -d 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from create" -l json -d 'Print one JSON document on stdout and nothing else'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from create" -s y -l yes -d 'Never prompt: take values from flags and defaults, answer yes to confirmations'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from create" -l no-progress -d 'Hide progress bars and spinners'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from verify" -l color -d 'When to colour output (NO_COLOR is honoured under auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from verify" -s q -l quiet -d 'Print only results and errors'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from verify" -s v -l verbose -d 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from verify" -l json -d 'Print one JSON document on stdout and nothing else'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from verify" -s y -l yes -d 'Never prompt: take values from flags and defaults, answer yes to confirmations'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from verify" -l no-progress -d 'Hide progress bars and spinners'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from verify" -s V -l version -d 'Print version'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from load" -l push-to -d 'Also tag and push every image of the bundle to this registry path, each as PATH/<its name>:<its tag> (PATH/model-gateway, PATH/vllm-openai); the printed install command then names them there (--registry, --vllm-image)' -r
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from load" -l color -d 'When to colour output (NO_COLOR is honoured under auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from load" -s q -l quiet -d 'Print only results and errors'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from load" -s v -l verbose -d 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from load" -l json -d 'Print one JSON document on stdout and nothing else'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from load" -s y -l yes -d 'Never prompt: take values from flags and defaults, answer yes to confirmations'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from load" -l no-progress -d 'Hide progress bars and spinners'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from load" -s h -l help -d 'Print help'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from load" -s V -l version -d 'Print version'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "create" -d 'On a connected machine: write the gateway images, the models (GGUFs, or vLLM\'s image and Hugging Face weights), the Helm chart and tag lists for GitLab versions into one file'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Check every checksum of a bundle and its manifest, loading nothing'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "load" -d 'On the air-gapped host: verify a bundle as it is read, then load its images, models, chart and tag lists'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand completions" -l color -d 'When to colour output (NO_COLOR is honoured under auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand completions" -s q -l quiet -d 'Print only results and errors'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand completions" -s v -l verbose -d 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand completions" -l json -d 'Print one JSON document on stdout and nothing else'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand completions" -s y -l yes -d 'Never prompt: take values from flags and defaults, answer yes to confirmations'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand completions" -l no-progress -d 'Hide progress bars and spinners'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand completions" -s h -l help -d 'Print help'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand completions" -s V -l version -d 'Print version'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand generate-assets" -l out-dir -d 'Directory holding completions/ and man/' -r -F
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand generate-assets" -l color -d 'When to colour output (NO_COLOR is honoured under auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand generate-assets" -l check -d 'Compare with the files on disk and fail when they differ, writing nothing'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand generate-assets" -l packaging -d 'Also write packaging/: the systemd unit and the example serve.toml the packages install (scripts/package)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand generate-assets" -s q -l quiet -d 'Print only results and errors'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand generate-assets" -s v -l verbose -d 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand generate-assets" -l json -d 'Print one JSON document on stdout and nothing else'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand generate-assets" -s y -l yes -d 'Never prompt: take values from flags and defaults, answer yes to confirmations'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand generate-assets" -l no-progress -d 'Hide progress bars and spinners'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand generate-assets" -s h -l help -d 'Print help'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand generate-assets" -s V -l version -d 'Print version'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand help; and not __fish_seen_subcommand_from install upgrade doctor serve models gitlab-rb image-tag bundle completions generate-assets help" -f -a "install" -d 'Install the AI Gateway (Docker or Helm), a model runtime, and point GitLab at the gateway'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand help; and not __fish_seen_subcommand_from install upgrade doctor serve models gitlab-rb image-tag bundle completions generate-assets help" -f -a "upgrade" -d 'Upgrade the AI Gateway to the image matching the GitLab version, keeping its settings'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand help; and not __fish_seen_subcommand_from install upgrade doctor serve models gitlab-rb image-tag bundle completions generate-assets help" -f -a "doctor" -d 'Check the whole chain (GitLab, gateway, model) and say how to fix what is broken'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand help; and not __fish_seen_subcommand_from install upgrade doctor serve models gitlab-rb image-tag bundle completions generate-assets help" -f -a "serve" -d 'Serve a GGUF model on an OpenAI-compatible API with the embedded llama.cpp engine'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand help; and not __fish_seen_subcommand_from install upgrade doctor serve models gitlab-rb image-tag bundle completions generate-assets help" -f -a "models" -d 'List, download and locate the models duo-selfhost knows'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand help; and not __fish_seen_subcommand_from install upgrade doctor serve models gitlab-rb image-tag bundle completions generate-assets help" -f -a "gitlab-rb" -d 'Read and edit gitlab_rails[\'env\'] in /etc/gitlab/gitlab.rb safely'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand help; and not __fish_seen_subcommand_from install upgrade doctor serve models gitlab-rb image-tag bundle completions generate-assets help" -f -a "image-tag" -d 'Print the AI Gateway image for a GitLab version'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand help; and not __fish_seen_subcommand_from install upgrade doctor serve models gitlab-rb image-tag bundle completions generate-assets help" -f -a "bundle" -d 'Carry an install to a host without the internet: images, models and tag lists in one file'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand help; and not __fish_seen_subcommand_from install upgrade doctor serve models gitlab-rb image-tag bundle completions generate-assets help" -f -a "completions" -d 'Print a shell completion script'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand help; and not __fish_seen_subcommand_from install upgrade doctor serve models gitlab-rb image-tag bundle completions generate-assets help" -f -a "generate-assets" -d 'Regenerate the committed completions/ and man/ files (for developers)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand help; and not __fish_seen_subcommand_from install upgrade doctor serve models gitlab-rb image-tag bundle completions generate-assets help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand help; and __fish_seen_subcommand_from models" -f -a "list" -d 'List the catalog: GitLab-approved models, models under evaluation, and the demo model'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand help; and __fish_seen_subcommand_from models" -f -a "pull" -d 'Download a model\'s GGUF from Hugging Face into the local cache (resumable, checksummed)'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand help; and __fish_seen_subcommand_from models" -f -a "path" -d 'Print where a model\'s GGUF is in the local cache'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand help; and __fish_seen_subcommand_from models" -f -a "register" -d 'Register a model in GitLab as a self-hosted model, run GitLab\'s connection check, and point features at it'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand help; and __fish_seen_subcommand_from gitlab-rb" -f -a "show" -d 'Print the effective gitlab_rails[\'env\'] as omnibus sees it'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand help; and __fish_seen_subcommand_from gitlab-rb" -f -a "set" -d 'Set environment variables in gitlab_rails[\'env\'], KEY=VALUE'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand help; and __fish_seen_subcommand_from gitlab-rb" -f -a "unset" -d 'Remove environment variables from gitlab_rails[\'env\']'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand help; and __fish_seen_subcommand_from bundle" -f -a "create" -d 'On a connected machine: write the gateway images, the models (GGUFs, or vLLM\'s image and Hugging Face weights), the Helm chart and tag lists for GitLab versions into one file'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand help; and __fish_seen_subcommand_from bundle" -f -a "verify" -d 'Check every checksum of a bundle and its manifest, loading nothing'
complete -c duo-selfhost -n "__fish_duo_selfhost_using_subcommand help; and __fish_seen_subcommand_from bundle" -f -a "load" -d 'On the air-gapped host: verify a bundle as it is read, then load its images, models, chart and tag lists'
