"""Session-wide real servers for the shared-state tests (tests/servers.py starts and stops them by pid)."""

from __future__ import annotations

import pytest

from tests.servers import ServerMissing, start_postgres, start_redis


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
