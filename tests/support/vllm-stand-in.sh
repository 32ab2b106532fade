#!/bin/sh
# Stand-in for vllm/vllm-openai (there is no GPU here and no image can be pulled): it checks its
# arguments the way vLLM's argument parser does, then answers /health and /v1/models on --port.
#  - options are vLLM's, spelled with `-` or `_` (vLLM's FlexibleArgumentParser takes both),
#    as `--flag value` or `--flag=value`; an unknown one ends it like argparse (status 2);
#  - choices and numbers are checked like argparse's `choices=` and `type=int/float`;
#  - the model must be a Hugging Face repository id (owner/name) or a directory, else it fails
#    as vLLM does when it cannot find a config (status 1).
prog=api_server.py

usage() {
  echo "usage: $prog [-h] [--host HOST] [--port PORT] [--model MODEL] [--served-model-name SERVED_MODEL_NAME [SERVED_MODEL_NAME ...]] [--tokenizer TOKENIZER] [--tokenizer-mode {auto,custom,mistral,slow}] [--load-format LOAD_FORMAT] [--config-format {auto,hf,mistral}] [--tensor-parallel-size TENSOR_PARALLEL_SIZE] [--max-model-len MAX_MODEL_LEN] [--download-dir DOWNLOAD_DIR] [--chat-template CHAT_TEMPLATE] [--gpu-memory-utilization GPU_MEMORY_UTILIZATION] ..." >&2
}

fail() {
  usage
  echo "$prog: error: $*" >&2
  exit 2
}

choice() {
  flag=$1 value=$2
  shift 2
  for c in "$@"; do
    [ "$c" = "$value" ] && return 0
  done
  list=""
  for c in "$@"; do list="$list${list:+, }'$c'"; done
  fail "argument $flag: invalid choice: '$value' (choose from $list)"
}

int() {
  case "$2" in ''|*[!0-9]*) fail "argument $1: invalid int value: '$2'" ;; esac
}

float() {
  case "$2" in ''|.|*[!0-9.]*|*.*.*) fail "argument $1: invalid float value: '$2'" ;; esac
}

model="" served="" host=0.0.0.0 port=8000 accepted=""
while [ "$#" -gt 0 ]; do
  arg=$1
  shift
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --*=*) name=${arg%%=*}; set -- "${arg#*=}" "$@" ;;
    --*) name=$arg ;;
    *) fail "unrecognized arguments: $arg" ;;
  esac
  name=--$(echo "${name#--}" | tr _ -)
  case "$name" in
    --trust-remote-code|--enforce-eager|--disable-log-requests|--disable-log-stats|--enable-prefix-caching)
      accepted="$accepted $name"
      continue ;;
    --model|--served-model-name|--tokenizer|--tokenizer-mode|--load-format|--config-format|\
    --tensor-parallel-size|--pipeline-parallel-size|--max-model-len|--max-num-seqs|\
    --max-num-batched-tokens|--host|--port|--download-dir|--chat-template|--revision|\
    --tokenizer-revision|--gpu-memory-utilization|--swap-space|--dtype|--quantization|--seed|\
    --api-key) ;;
    *) fail "unrecognized arguments: $arg" ;;
  esac
  case "$1" in
    ''|--*) fail "argument $name: expected one argument" ;;
  esac
  value=$1
  shift
  case "$name" in
    --model) model=$value ;;
    --served-model-name) served=$value ;;
    --host) host=$value ;;
    --port) int "$name" "$value"; port=$value ;;
    --tokenizer-mode) choice "$name" "$value" auto custom mistral slow ;;
    --config-format) choice "$name" "$value" auto hf mistral ;;
    --load-format)
      choice "$name" "$value" auto pt safetensors npcache dummy tensorizer sharded_state gguf \
        bitsandbytes mistral runai_streamer runai_streamer_sharded fastsafetensors ;;
    --dtype) choice "$name" "$value" auto half float16 bfloat16 float float32 ;;
    --tensor-parallel-size|--pipeline-parallel-size|--max-model-len|--max-num-seqs|\
    --max-num-batched-tokens|--seed)
      int "$name" "$value" ;;
    --gpu-memory-utilization|--swap-space) float "$name" "$value" ;;
  esac
  if [ "$name" = --api-key ]; then value='****'; fi
  accepted="$accepted $name $value"
done

invalid_model() {
  echo "ValueError: Invalid repository ID or local directory specified: '$model'." >&2
  echo "Please verify: 1. a valid Hugging Face repository ID (owner/name); 2. a local directory with a recognised configuration file." >&2
  exit 1
}
[ -n "$model" ] || fail "the stand-in wants --model (vLLM would fall back to a default model)"
case "$model" in
  /*) [ -d "$model" ] || invalid_model ;;
  */*/*|*/|-*|.*) invalid_model ;;
  */*)
    owner=${model%%/*} repo=${model#*/}
    case "$owner/$repo" in *[!A-Za-z0-9._/-]*) invalid_model ;; esac
    [ -n "$owner" ] && [ -n "$repo" ] || invalid_model ;;
  *) invalid_model ;;
esac
[ -n "$served" ] || served=$model

echo "stand-in vLLM accepted:$accepted"
mkdir -p /www/v1
printf 'ok\n' > /www/health
printf '{"object":"list","data":[{"id":"%s","object":"model","owned_by":"vllm","root":"%s"}]}' \
  "$served" "$model" > /www/v1/models
echo "stand-in vLLM serving $model as $served on $host:$port"
httpd -f -p "$port" -h /www &
trap 'kill $!; exit 0' TERM INT
wait
