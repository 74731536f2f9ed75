#!/usr/bin/env bash
# Create (or reuse) .venv in the repo root and install the pinned requirements.txt and
# requirements-dev.txt into it. Reinstalls only when a requirements file changed.
# (requirements-vllm.txt is NOT installed here: vLLM lives in its own .venv-vllm.)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
cd "$ROOT"
PY=""
for cand in python3.11 python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    PY="$cand"; break
  fi
done
[ -n "$PY" ] || { echo "[venv] ERROR: Python 3.11 is required (python3.11 or python3 3.11 on PATH)" >&2; exit 1; }
WANT="$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)"
MARKER="$VENV/.requirements.sha256"
if [ -x "$VENV/bin/python" ] && [ "$(cat "$MARKER" 2>/dev/null || true)" = "$WANT" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || { echo "[venv] creating $VENV" >&2; "$PY" -m venv "$VENV"; }
echo "[venv] installing pinned requirements into $VENV (first time: a few minutes)" >&2
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
echo "$WANT" > "$MARKER"
