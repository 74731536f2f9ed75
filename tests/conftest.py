"""Session-wide real servers: Redis and PostgreSQL for the shared-state tests (tests/servers.py), and one vLLM CPU
server for every test that needs a real model server (tests/vllm_server.py); all are stopped by pid."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers import ServerMissing, start_postgres, start_redis
from tests.vllm_server import start_vllm_server, stop_vllm_server

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    try:
        server = start_redis(tmp_path_factory.mktemp("redis"))
    except ServerMissing as err:
        pytest.fail(str(err))  # a test that cannot run here fails, saying why
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    try:
        server = start_postgres(tmp_path_factory.mktemp("postgres"))
    except ServerMissing as err:
        pytest.fail(str(err))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def vllm_server():
    """``(base_url, model)`` of one vLLM CPU server (tiny random-weight model), started once for the session:
    each start costs ~25 s and ~3 GB, and every test that uses it checks plumbing, never text."""
    try:
        base_url, model, proc = start_vllm_server(ROOT)
    except Exception as err:  # install or start failed: say why, never skip
        pytest.fail(f"the vLLM CPU server could not be started, so the integration test cannot run: {err}")
    yield base_url, model
    stop_vllm_server(proc)
    assert proc.poll() is not None, f"vLLM server pid {proc.pid} is still running after stop_vllm_server"
