"""Start/stop a real vLLM OpenAI-compatible server (CPU build, tiny random model) for tests.

    from tests.vllm_server import start_vllm_server, stop_vllm_server
    base_url, model, proc = start_vllm_server(repo_root)   # base_url = "http://127.0.0.1:PORT/v1"
    try: ...  # OpenAI client or plain HTTP against base_url, model name "tiny"
    finally: stop_vllm_server(proc)

First use installs .venv-vllm (~1-2 min, scripts/vllm_venv.sh); later starts take ~30 s.
The tiny model's text is noise: check structure and plumbing, never content.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections import deque
from pathlib import Path

LOG_DIR = Path(".cache") / "vllm-logs"


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 40) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(deque(f, maxlen=n))
    except OSError as e:
        return f"(no log: {e})"


def start_vllm_server(repo_root, port: int | None = None, timeout: float = 420):
    """Install/reuse .venv-vllm, start `scripts/serve_vllm.sh tiny PORT`, wait until ready.

    Returns (base_url, model_name, popen). Raises RuntimeError (with the last 40 log lines)
    when the install fails, the server exits, or it is not ready within `timeout` seconds.
    """
    root = Path(repo_root).resolve()
    host = "127.0.0.1"
    env = {**os.environ, "VLLM_HOST": host}

    # Blocking install/reuse of the separate venv (its own timeout is the caller's problem).
    setup = subprocess.run(
        ["bash", str(root / "scripts" / "vllm_venv.sh")],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    if setup.returncode != 0:
        last = "\n".join(setup.stdout.splitlines()[-40:])
        raise RuntimeError(f"scripts/vllm_venv.sh failed (exit {setup.returncode}):\n{last}")

    port = port or _free_port(host)
    log_dir = root / LOG_DIR
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"vllm-{port}-{int(time.time())}.log"
    log_file = open(log_path, "wb")
    proc = subprocess.Popen(
        ["bash", str(root / "scripts" / "serve_vllm.sh"), "tiny", str(port)],
        cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
        start_new_session=True,  # own process group: stop_vllm_server kills the whole tree
    )
    log_file.close()  # the child holds its own copy
    proc.log_path = log_path  # type: ignore[attr-defined]

    base_url = f"http://{host}:{port}/v1"
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"vLLM server exited with code {proc.returncode} before it was ready; "
                f"log {log_path}:\n{_tail(log_path)}"
            )
        try:
            with urllib.request.urlopen(base_url + "/models", timeout=5) as r:
                ids = [m["id"] for m in json.load(r).get("data", [])]
            if "tiny" in ids:
                return base_url, "tiny", proc
        except (OSError, ValueError):
            pass  # not listening yet
        if time.monotonic() > deadline:
            stop_vllm_server(proc)
            raise RuntimeError(
                f"vLLM server not ready after {timeout:.0f} s; log {log_path}:\n{_tail(log_path)}"
            )
        time.sleep(1)


def stop_vllm_server(popen, grace: float = 15) -> None:
    """SIGTERM the server's process group, SIGKILL it after `grace` seconds if still alive."""
    if popen is None:
        return

    def kill(sig) -> bool:  # the group (start_new_session made popen its leader), else the pid
        for target in (lambda: os.killpg(popen.pid, sig), lambda: os.kill(popen.pid, sig)):
            try:
                target()
                return True
            except ProcessLookupError:
                continue
        return False

    kill(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        popen.poll()
        if not kill(0):  # nothing left in the group
            break
        time.sleep(0.2)
    else:
        kill(signal.SIGKILL)  # engine core / workers that outlived the grace period
    try:
        popen.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
