#!/usr/bin/env bash
# Create (or reuse) the separate virtual environment that runs the CPU build of vLLM.
#   scripts/vllm_venv.sh          -> .venv-vllm in the repo root (override: VLLM_VENV=/path)
# Reused when `import vllm` works and the marker holds the hash of requirements-vllm.txt.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VLLM_VENV:-$ROOT/.venv-vllm}"
REQ="$ROOT/requirements-vllm.txt"
MARKER="$VENV/.requirements-vllm.sha256"

log() { echo "[vllm_venv] $*" >&2; }
die() { echo "[vllm_venv] ERROR: $*" >&2; exit 1; }

[ -f "$REQ" ] || die "missing $REQ"
WANT="$(sha256sum "$REQ" | cut -d' ' -f1)"

# Fast path: the venv exists, imports vllm and was built from these exact requirements.
if [ -x "$VENV/bin/python" ] && [ "$(cat "$MARKER" 2>/dev/null || true)" = "$WANT" ] \
   && "$VENV/bin/python" -c "import vllm" >/dev/null 2>&1; then
  log "reusing $VENV (vllm imports, requirements unchanged)"
  exit 0
fi

# Pick a Python 3.11 interpreter.
PY=""
for cand in python3.11 python3; do
  if command -v "$cand" >/dev/null 2>&1 \
     && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    PY="$cand"; break
  fi
done
[ -n "$PY" ] || die "Python 3.11 not found (need python3.11 or python3 == 3.11)"

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV with $PY"
  "$PY" -m venv "$VENV" || die "could not create venv $VENV"
fi
rm -f "$MARKER"

# Plain pip on purpose: torch==2.13.0+cpu comes from a wheel that pip finds via the
# machine's pip configuration (find-links); uv/poetry do not see it.
log "installing $(grep -v '^#' "$REQ" | xargs) (takes ~1-2 min, ~600 MB) ..."
"$VENV/bin/python" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || log "pip self-upgrade failed (continuing)"
PIPLOG="$VENV/pip-install.log"
if ! "$VENV/bin/python" -m pip install -r "$REQ" >"$PIPLOG" 2>&1; then
  grep -v 'is neither a file nor a directory' "$PIPLOG" | tail -n 30 >&2
  die "pip install -r $REQ failed (full log: $PIPLOG)"
fi

# The PyPI torchvision is a CUDA build that breaks transformers' import; torchcodec
# fails to load and vLLM does not catch that; triton is useless on CPU.
log "removing torchvision torchaudio torchcodec triton"
"$VENV/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec triton >/dev/null 2>&1 || true

log "checking: import vllm"
"$VENV/bin/python" -c "import vllm, transformers, tokenizers, torch; print('[vllm_venv] vllm', vllm.__version__, '| torch', torch.__version__, '| transformers', transformers.__version__)" >&2 \
  || die "vllm does not import in $VENV"

echo "$WANT" > "$MARKER"
log "ready: $VENV"
