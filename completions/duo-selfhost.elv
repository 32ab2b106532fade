
use builtin;
use str;

set edit:completion:arg-completer[duo-selfhost] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'duo-selfhost'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'duo-selfhost'= {
            cand --color 'When to colour output (NO_COLOR is honoured under auto)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --verbose 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --json 'Print one JSON document on stdout and nothing else'
            cand -y 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --yes 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --no-progress 'Hide progress bars and spinners'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand install 'Install the AI Gateway (Docker or Helm), a model runtime, and point GitLab at the gateway'
            cand upgrade 'Upgrade the AI Gateway to the image matching the GitLab version, keeping its settings'
            cand doctor 'Check the whole chain (GitLab, gateway, model) and say how to fix what is broken'
            cand serve 'Serve a GGUF model on an OpenAI-compatible API with the embedded llama.cpp engine'
            cand models 'List, download and locate the models duo-selfhost knows'
            cand gitlab-rb 'Read and edit gitlab_rails[''env''] in /etc/gitlab/gitlab.rb safely'
            cand image-tag 'Print the AI Gateway image for a GitLab version'
            cand bundle 'Carry an install to a host without the internet: images, models and tag lists in one file'
            cand completions 'Print a shell completion script'
            cand generate-assets 'Regenerate the committed completions/ and man/ files (for developers)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'duo-selfhost;install'= {
            cand --target 'Where the gateway runs'
            cand --gitlab-url 'GitLab''s external URL [default: found on this host: the state file or gitlab.rb''s external_url]'
            cand --gitlab-token 'A GitLab personal access token (admin, `api` scope); never printed'
            cand --ca-cert 'A CA certificate (PEM) to trust for GitLab and the gateway, beside the system roots'
            cand --gitlab-rb 'The gitlab.rb to read (and edit, for a command that changes it)'
            cand --gitlab-version 'The GitLab version, such as 17.5.0 [default: detected from the API or the host]'
            cand --gateway-host 'The name GitLab reaches the gateway by (not localhost)'
            cand --gateway-port 'The gateway''s HTTP port'
            cand --image 'Use this exact image reference instead of choosing one from the GitLab version'
            cand --registry 'Image repository: gitlab, dockerhub, or a mirror as HOST/PATH'
            cand --available-tags 'A file listing the available tags, one per line (air-gapped mirrors)'
            cand --pull 'When to pull the image'
            cand --container-name 'Name of the gateway container'
            cand --log-dir 'Host directory for the gateway''s logs, mounted into the container'
            cand --env 'Extra environment variable for the gateway, KEY=VALUE (repeatable)'
            cand --model-runtime 'What serves the model [default: asked on a terminal, else none]'
            cand --model-api-key 'The model endpoint''s API key (doctor''s model checks send it, install registers it in GitLab); never printed'
            cand --model-endpoint 'The model''s OpenAI-compatible endpoint, ending in /v1 (with --model-runtime none)'
            cand --model 'The model to run: a catalog name or alias; for vllm also a Hugging Face repository (owner/name) or an absolute directory. A Hugging Face token for gated repositories is read from HF_TOKEN (or HUGGING_FACE_HUB_TOKEN) and never printed'
            cand --served-model-name 'Name the model is served under (the identifier is custom_openai/<name>) [default: the catalog name]'
            cand --gpus 'GPUs vLLM uses: its --tensor-parallel-size [default: every GPU `nvidia-smi -L` lists, else 1]'
            cand --ctx-size 'vLLM''s context length in tokens (--max-model-len) [default: the model''s own]'
            cand --vllm-image 'The vLLM image to run, such as the pinned one pushed to a site registry by `bundle load --push-to` [default: the pinned vllm/vllm-openai]'
            cand --health-timeout 'Seconds to wait for the gateway to become healthy'
            cand --state-file 'State file written by install [default: /etc/duo-selfhost/state.toml as root, else the user config dir]'
            cand --namespace 'Kubernetes namespace for the gateway'
            cand --release 'Helm release name'
            cand --chart-version 'AI Gateway chart version to install'
            cand --values-out 'Where to keep the rendered Helm values file'
            cand --tls-cert 'TLS certificate (PEM) for the gateway domain'
            cand --tls-key 'TLS private key (PEM) matching --tls-cert'
            cand --ingress-class 'Ingress class for the gateway'
            cand --helm-timeout 'How long helm and kubectl may wait, in seconds'
            cand --color 'When to colour output (NO_COLOR is honoured under auto)'
            cand --allow-localhost 'Allow a localhost gateway URL (a one-host lab only: GitLab must reach the gateway over the network)'
            cand --offline 'Use only what `bundle load` put on this host: no tag listing, no pull; anything missing is an error naming the bundle command that adds it'
            cand --dry-run 'Print the plan (image, env with secrets masked, ports, volumes, gitlab.rb diff) and change nothing'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --verbose 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --json 'Print one JSON document on stdout and nothing else'
            cand -y 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --yes 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --no-progress 'Hide progress bars and spinners'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'duo-selfhost;upgrade'= {
            cand --target 'Where the gateway runs [default: from the state file, else docker]'
            cand --to-version 'Upgrade for this GitLab version instead of the detected one'
            cand --container-name 'Name of the gateway container [default: from the state file, else gitlab-aigw]'
            cand --image 'Use this exact image reference instead of choosing one from the GitLab version'
            cand --registry 'Image repository: gitlab, dockerhub, or a mirror as HOST/PATH'
            cand --available-tags 'A file listing the available tags, one per line (air-gapped mirrors)'
            cand --pull 'When to pull the image'
            cand --gitlab-url 'GitLab''s external URL [default: found on this host: the state file or gitlab.rb''s external_url]'
            cand --gitlab-token 'A GitLab personal access token (admin, `api` scope); never printed'
            cand --ca-cert 'A CA certificate (PEM) to trust for GitLab and the gateway, beside the system roots'
            cand --gitlab-rb 'The gitlab.rb to read (and edit, for a command that changes it)'
            cand --health-timeout 'Seconds to wait for the new gateway to become healthy before rolling back'
            cand --state-file 'State file written by install [default: /etc/duo-selfhost/state.toml as root, else the user config dir]'
            cand --namespace 'Kubernetes namespace for the gateway'
            cand --release 'Helm release name'
            cand --chart-version 'AI Gateway chart version to install'
            cand --values-out 'Where to keep the rendered Helm values file'
            cand --tls-cert 'TLS certificate (PEM) for the gateway domain'
            cand --tls-key 'TLS private key (PEM) matching --tls-cert'
            cand --ingress-class 'Ingress class for the gateway'
            cand --helm-timeout 'How long helm and kubectl may wait, in seconds'
            cand --color 'When to colour output (NO_COLOR is honoured under auto)'
            cand --offline 'Use only what `bundle load` put on this host: no tag listing, no pull; anything missing is an error naming the bundle command that adds it'
            cand --check 'Only check: exit 0 when up to date, 100 when an upgrade is available'
            cand --dry-run 'Print what would change and change nothing'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --verbose 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --json 'Print one JSON document on stdout and nothing else'
            cand -y 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --yes 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --no-progress 'Hide progress bars and spinners'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'duo-selfhost;doctor'= {
            cand --gitlab-url 'GitLab''s external URL [default: found on this host: the state file or gitlab.rb''s external_url]'
            cand --gitlab-token 'A GitLab personal access token (admin, `api` scope); never printed'
            cand --ca-cert 'A CA certificate (PEM) to trust for GitLab and the gateway, beside the system roots'
            cand --gitlab-rb 'The gitlab.rb to read (and edit, for a command that changes it)'
            cand --gateway-url 'The AI Gateway URL [default: state file, then gitlab.rb]'
            cand --container 'The gateway container on this host [default: state file]'
            cand --model-endpoint 'The model''s OpenAI-compatible endpoint (ending in /v1)'
            cand --model-identifier 'The model identifier configured in GitLab, such as custom_openai/codestral'
            cand --model-api-key 'The model endpoint''s API key (doctor''s model checks send it, install registers it in GitLab); never printed'
            cand --only 'Run only these checks (ids or prefixes such as gateway.*; repeatable)'
            cand --skip 'Skip these checks (ids or prefixes; repeatable)'
            cand --timeout 'Seconds each check may take'
            cand --state-file 'State file written by install [default: /etc/duo-selfhost/state.toml as root, else the user config dir]'
            cand --bundle 'Also write a support bundle: the report, versions, the gateway''s env (redacted) and last 500 log lines, gitlab.rb''s env (redacted), the model server''s /v1/models and /metrics'
            cand --color 'When to colour output (NO_COLOR is honoured under auto)'
            cand --strict 'Treat warnings as failures (exit 1)'
            cand --fix 'Offer to fix failures that have a safe mechanical fix (reconfigure, the feature flag, the gateway URL setting, the gateway''s env or image), run each after asking (--yes skips the question), then re-run those checks'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --verbose 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --json 'Print one JSON document on stdout and nothing else'
            cand -y 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --yes 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --no-progress 'Hide progress bars and spinners'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'duo-selfhost;serve'= {
            cand --config 'A TOML file of serve''s settings: server-wide keys, and a [[model]] table per model (flags given here override it)'
            cand -m 'Catalog name or alias (see `models list`), or a path to a .gguf file; repeat to serve several models [default: smollm2-135m]'
            cand --model 'Catalog name or alias (see `models list`), or a path to a .gguf file; repeat to serve several models [default: smollm2-135m]'
            cand --served-model-name 'Name clients use for the model (GitLab''s identifier is custom_openai/<name>); repeat in --model''s order [default: the catalog name or file stem]'
            cand --host 'Address to bind; binding beyond loopback without --api-key prints a warning [default: 127.0.0.1]'
            cand --port 'Port to listen on [default: 8080]'
            cand --ctx-size 'Context size in tokens, shared by the parallel sequences (each model''s) [default: 8192]'
            cand --parallel 'Sequences decoded together in one batch (each model''s) [default: 4]'
            cand --threads 'CPU threads for llama.cpp, split across the models [default: the number of cores]'
            cand --memory-limit 'Memory the models'' weights and KV caches may take together, e.g. 6G [default: MemAvailable]'
            cand --api-key 'Require this key as a bearer token on every /v1 route; never printed'
            cand --api-key-file 'Read the API key from the first line of this file'
            cand --max-queue 'Requests waiting beyond the busy slots; past it the server answers 503 with Retry-After [default: 64]'
            cand --n-gpu-layers 'Layers to offload to the GPU (0: CPU only) [default: all when a GPU build finds a GPU, else 0]'
            cand --fim-tokens 'Fill-in-the-middle tokens by their text, PRE,SUF,MID (PRE,SUF for the spm layout), for a GGUF whose metadata lacks them'
            cand --fim-layout 'How a fill is laid out: psm (PRE prefix SUF suffix MID) or spm (Mistral''s SUF suffix PRE prefix) [default: spm for Mistral''s [PREFIX]/[SUFFIX] tokens, psm otherwise]'
            cand --chat-template 'A Jinja chat template file to use instead of the GGUF''s (needed for a GGUF that has none)'
            cand --seed 'Sampling seed for requests that give none, so the same request gets the same answer (doctor''s probes, tests) [default: a random seed per request]'
            cand --reuse-min-run 'Shortest run of cached tokens kept after an edit (moved to its new place instead of evaluated again); 0 keeps only the common prefix [default: 32]'
            cand --max-body-bytes 'Largest request body accepted, in bytes (413 beyond) [default: 4194304]'
            cand --body-timeout 'Seconds a request body may take to arrive (408 beyond); slow senders do not hold a slot [default: 30]'
            cand --color 'When to colour output (NO_COLOR is honoured under auto)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --verbose 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --json 'Print one JSON document on stdout and nothing else'
            cand -y 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --yes 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --no-progress 'Hide progress bars and spinners'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'duo-selfhost;models'= {
            cand --color 'When to colour output (NO_COLOR is honoured under auto)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --verbose 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --json 'Print one JSON document on stdout and nothing else'
            cand -y 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --yes 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --no-progress 'Hide progress bars and spinners'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand list 'List the catalog: GitLab-approved models, models under evaluation, and the demo model'
            cand pull 'Download a model''s GGUF from Hugging Face into the local cache (resumable, checksummed)'
            cand path 'Print where a model''s GGUF is in the local cache'
            cand register 'Register a model in GitLab as a self-hosted model, run GitLab''s connection check, and point features at it'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'duo-selfhost;models;list'= {
            cand --color 'When to colour output (NO_COLOR is honoured under auto)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --verbose 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --json 'Print one JSON document on stdout and nothing else'
            cand -y 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --yes 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --no-progress 'Hide progress bars and spinners'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'duo-selfhost;models;pull'= {
            cand --color 'When to colour output (NO_COLOR is honoured under auto)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --verbose 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --json 'Print one JSON document on stdout and nothing else'
            cand -y 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --yes 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --no-progress 'Hide progress bars and spinners'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'duo-selfhost;models;path'= {
            cand --color 'When to colour output (NO_COLOR is honoured under auto)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --verbose 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --json 'Print one JSON document on stdout and nothing else'
            cand -y 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --yes 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --no-progress 'Hide progress bars and spinners'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'duo-selfhost;models;register'= {
            cand --endpoint 'The model''s OpenAI-compatible endpoint as GitLab''s gateway reaches it, ending in /v1'
            cand --served-model-name 'Name the endpoint serves the model under (the identifier is custom_openai/<name>, bedrock/<name> for Bedrock) [default: the catalog name]'
            cand --api-key 'The endpoint''s API key, stored by GitLab as a secret; never printed'
            cand --family 'GitLab''s model family, such as CODESTRAL or GENERAL [default: the catalog''s]'
            cand --features 'Features to point at the model, such as code_completions,duo_chat [default: those the catalog says it is fit for, unless another model serves them]'
            cand --gitlab-url 'GitLab''s external URL [default: found on this host: the state file or gitlab.rb''s external_url]'
            cand --gitlab-token 'A GitLab personal access token (admin, `api` scope); never printed'
            cand --ca-cert 'A CA certificate (PEM) to trust for GitLab and the gateway, beside the system roots'
            cand --gitlab-rb 'The gitlab.rb to read (and edit, for a command that changes it)'
            cand --color 'When to colour output (NO_COLOR is honoured under auto)'
            cand --accept-beta 'Allow beta features (accepts GitLab''s Testing Agreement for the instance)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --verbose 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --json 'Print one JSON document on stdout and nothing else'
            cand -y 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --yes 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --no-progress 'Hide progress bars and spinners'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'duo-selfhost;models;help'= {
            cand list 'List the catalog: GitLab-approved models, models under evaluation, and the demo model'
            cand pull 'Download a model''s GGUF from Hugging Face into the local cache (resumable, checksummed)'
            cand path 'Print where a model''s GGUF is in the local cache'
            cand register 'Register a model in GitLab as a self-hosted model, run GitLab''s connection check, and point features at it'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'duo-selfhost;models;help;list'= {
        }
        &'duo-selfhost;models;help;pull'= {
        }
        &'duo-selfhost;models;help;path'= {
        }
        &'duo-selfhost;models;help;register'= {
        }
        &'duo-selfhost;models;help;help'= {
        }
        &'duo-selfhost;gitlab-rb'= {
            cand --color 'When to colour output (NO_COLOR is honoured under auto)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --verbose 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --json 'Print one JSON document on stdout and nothing else'
            cand -y 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --yes 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --no-progress 'Hide progress bars and spinners'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand show 'Print the effective gitlab_rails[''env''] as omnibus sees it'
            cand set 'Set environment variables in gitlab_rails[''env''], KEY=VALUE'
            cand unset 'Remove environment variables from gitlab_rails[''env'']'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'duo-selfhost;gitlab-rb;show'= {
            cand --file 'The gitlab.rb to read and edit'
            cand --color 'When to colour output (NO_COLOR is honoured under auto)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --verbose 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --json 'Print one JSON document on stdout and nothing else'
            cand -y 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --yes 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --no-progress 'Hide progress bars and spinners'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'duo-selfhost;gitlab-rb;set'= {
            cand --file 'The gitlab.rb to read and edit'
            cand --color 'When to colour output (NO_COLOR is honoured under auto)'
            cand --dry-run 'Show the diff and write nothing'
            cand --reconfigure 'Run `gitlab-ctl reconfigure` afterwards and verify the rendered values'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --verbose 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --json 'Print one JSON document on stdout and nothing else'
            cand -y 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --yes 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --no-progress 'Hide progress bars and spinners'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'duo-selfhost;gitlab-rb;unset'= {
            cand --file 'The gitlab.rb to read and edit'
            cand --color 'When to colour output (NO_COLOR is honoured under auto)'
            cand --dry-run 'Show the diff and write nothing'
            cand --reconfigure 'Run `gitlab-ctl reconfigure` afterwards and verify the rendered values'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --verbose 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --json 'Print one JSON document on stdout and nothing else'
            cand -y 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --yes 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --no-progress 'Hide progress bars and spinners'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'duo-selfhost;gitlab-rb;help'= {
            cand show 'Print the effective gitlab_rails[''env''] as omnibus sees it'
            cand set 'Set environment variables in gitlab_rails[''env''], KEY=VALUE'
            cand unset 'Remove environment variables from gitlab_rails[''env'']'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'duo-selfhost;gitlab-rb;help;show'= {
        }
        &'duo-selfhost;gitlab-rb;help;set'= {
        }
        &'duo-selfhost;gitlab-rb;help;unset'= {
        }
        &'duo-selfhost;gitlab-rb;help;help'= {
        }
        &'duo-selfhost;image-tag'= {
            cand --gitlab-version 'The GitLab version: 17.5.0, v17.5.0-ee, 17.5.2-ee, 18.2.1'
            cand --registry 'Image repository: gitlab, dockerhub, or a mirror as HOST/PATH'
            cand --available-tags 'A file listing the available tags, one per line (air-gapped mirrors)'
            cand --color 'When to colour output (NO_COLOR is honoured under auto)'
            cand --offline 'Do not ask the registry; use self-hosted-vX.Y.0-ee with a warning'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --verbose 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --json 'Print one JSON document on stdout and nothing else'
            cand -y 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --yes 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --no-progress 'Hide progress bars and spinners'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'duo-selfhost;bundle'= {
            cand --color 'When to colour output (NO_COLOR is honoured under auto)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --verbose 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --json 'Print one JSON document on stdout and nothing else'
            cand -y 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --yes 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --no-progress 'Hide progress bars and spinners'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand create 'On a connected machine: write the gateway images, the models (GGUFs, or vLLM''s image and Hugging Face weights), the Helm chart and tag lists for GitLab versions into one file'
            cand verify 'Check every checksum of a bundle and its manifest, loading nothing'
            cand load 'On the air-gapped host: verify a bundle as it is read, then load its images, models, chart and tag lists'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'duo-selfhost;bundle;create'= {
            cand --gitlab-version 'GitLab version to bundle the gateway for (repeatable: images of several versions share their layers)'
            cand --model 'Catalog model to carry (repeatable): its GGUF for the embedded runtime, pulled into the local cache first when missing; with --model-runtime vllm its Hugging Face repository''s weights, downloaded from HF_ENDPOINT (HF_TOKEN for gated ones)'
            cand --model-runtime 'What will serve the model on the air-gapped host'
            cand --target 'Where the gateway will run: docker, or helm (the AI Gateway chart archive goes in too, fetched with `helm pull`)'
            cand --chart-version 'With --target helm: the AI Gateway chart version, as `install --target helm --chart-version` takes it'
            cand --chart-repo 'With --target helm: the chart repository to pull from (a mirror of GitLab''s) [default: GitLab''s AI Gateway chart repository]'
            cand --registry 'Image repository: gitlab, dockerhub, or a mirror as HOST/PATH'
            cand --available-tags 'A file listing the available tags, one per line, instead of the registry''s listing'
            cand --pull 'When to pull images (missing: an image already in the local engine is used as it is)'
            cand -o 'The bundle to write (written as FILE.partial and renamed when complete)'
            cand --output 'The bundle to write (written as FILE.partial and renamed when complete)'
            cand --color 'When to colour output (NO_COLOR is honoured under auto)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --verbose 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --json 'Print one JSON document on stdout and nothing else'
            cand -y 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --yes 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --no-progress 'Hide progress bars and spinners'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'duo-selfhost;bundle;verify'= {
            cand --color 'When to colour output (NO_COLOR is honoured under auto)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --verbose 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --json 'Print one JSON document on stdout and nothing else'
            cand -y 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --yes 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --no-progress 'Hide progress bars and spinners'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'duo-selfhost;bundle;load'= {
            cand --push-to 'Also tag and push every image of the bundle to this registry path, each as PATH/<its name>:<its tag> (PATH/model-gateway, PATH/vllm-openai); the printed install command then names them there (--registry, --vllm-image)'
            cand --color 'When to colour output (NO_COLOR is honoured under auto)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --verbose 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --json 'Print one JSON document on stdout and nothing else'
            cand -y 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --yes 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --no-progress 'Hide progress bars and spinners'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'duo-selfhost;bundle;help'= {
            cand create 'On a connected machine: write the gateway images, the models (GGUFs, or vLLM''s image and Hugging Face weights), the Helm chart and tag lists for GitLab versions into one file'
            cand verify 'Check every checksum of a bundle and its manifest, loading nothing'
            cand load 'On the air-gapped host: verify a bundle as it is read, then load its images, models, chart and tag lists'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'duo-selfhost;bundle;help;create'= {
        }
        &'duo-selfhost;bundle;help;verify'= {
        }
        &'duo-selfhost;bundle;help;load'= {
        }
        &'duo-selfhost;bundle;help;help'= {
        }
        &'duo-selfhost;completions'= {
            cand --color 'When to colour output (NO_COLOR is honoured under auto)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --verbose 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --json 'Print one JSON document on stdout and nothing else'
            cand -y 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --yes 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --no-progress 'Hide progress bars and spinners'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'duo-selfhost;generate-assets'= {
            cand --out-dir 'Directory holding completions/ and man/'
            cand --color 'When to colour output (NO_COLOR is honoured under auto)'
            cand --check 'Compare with the files on disk and fail when they differ, writing nothing'
            cand --packaging 'Also write packaging/: the systemd unit and the example serve.toml the packages install (scripts/package)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --verbose 'More detail on stderr; repeat for more (-vv debug, -vvv trace)'
            cand --json 'Print one JSON document on stdout and nothing else'
            cand -y 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --yes 'Never prompt: take values from flags and defaults, answer yes to confirmations'
            cand --no-progress 'Hide progress bars and spinners'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'duo-selfhost;help'= {
            cand install 'Install the AI Gateway (Docker or Helm), a model runtime, and point GitLab at the gateway'
            cand upgrade 'Upgrade the AI Gateway to the image matching the GitLab version, keeping its settings'
            cand doctor 'Check the whole chain (GitLab, gateway, model) and say how to fix what is broken'
            cand serve 'Serve a GGUF model on an OpenAI-compatible API with the embedded llama.cpp engine'
            cand models 'List, download and locate the models duo-selfhost knows'
            cand gitlab-rb 'Read and edit gitlab_rails[''env''] in /etc/gitlab/gitlab.rb safely'
            cand image-tag 'Print the AI Gateway image for a GitLab version'
            cand bundle 'Carry an install to a host without the internet: images, models and tag lists in one file'
            cand completions 'Print a shell completion script'
            cand generate-assets 'Regenerate the committed completions/ and man/ files (for developers)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'duo-selfhost;help;install'= {
        }
        &'duo-selfhost;help;upgrade'= {
        }
        &'duo-selfhost;help;doctor'= {
        }
        &'duo-selfhost;help;serve'= {
        }
        &'duo-selfhost;help;models'= {
            cand list 'List the catalog: GitLab-approved models, models under evaluation, and the demo model'
            cand pull 'Download a model''s GGUF from Hugging Face into the local cache (resumable, checksummed)'
            cand path 'Print where a model''s GGUF is in the local cache'
            cand register 'Register a model in GitLab as a self-hosted model, run GitLab''s connection check, and point features at it'
        }
        &'duo-selfhost;help;models;list'= {
        }
        &'duo-selfhost;help;models;pull'= {
        }
        &'duo-selfhost;help;models;path'= {
        }
        &'duo-selfhost;help;models;register'= {
        }
        &'duo-selfhost;help;gitlab-rb'= {
            cand show 'Print the effective gitlab_rails[''env''] as omnibus sees it'
            cand set 'Set environment variables in gitlab_rails[''env''], KEY=VALUE'
            cand unset 'Remove environment variables from gitlab_rails[''env'']'
        }
        &'duo-selfhost;help;gitlab-rb;show'= {
        }
        &'duo-selfhost;help;gitlab-rb;set'= {
        }
        &'duo-selfhost;help;gitlab-rb;unset'= {
        }
        &'duo-selfhost;help;image-tag'= {
        }
        &'duo-selfhost;help;bundle'= {
            cand create 'On a connected machine: write the gateway images, the models (GGUFs, or vLLM''s image and Hugging Face weights), the Helm chart and tag lists for GitLab versions into one file'
            cand verify 'Check every checksum of a bundle and its manifest, loading nothing'
            cand load 'On the air-gapped host: verify a bundle as it is read, then load its images, models, chart and tag lists'
        }
        &'duo-selfhost;help;bundle;create'= {
        }
        &'duo-selfhost;help;bundle;verify'= {
        }
        &'duo-selfhost;help;bundle;load'= {
        }
        &'duo-selfhost;help;completions'= {
        }
        &'duo-selfhost;help;generate-assets'= {
        }
        &'duo-selfhost;help;help'= {
        }
    ]
    $completions[$command]
}
