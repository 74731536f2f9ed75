"""Real Redis and PostgreSQL servers for the tests: 127.0.0.1, free ports, temporary folders, stopped by pid.

    redis = start_redis(tmp)         # .url "redis://127.0.0.1:PORT/0", .stop()
    pg = start_postgres(tmp)         # .url "postgresql://postgres@127.0.0.1:PORT/postgres", .stop()

`make test` installs the Debian packages (redis-server, postgresql) when missing; if a
binary is still missing, ServerMissing says which package to install.  PostgreSQL
refuses to run as root, so as root initdb and the server run as the `postgres` user
on a folder that user owns.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


class ServerMissing(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, what: str, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s")


@dataclass
class Server:
    url: str
    port: int
    proc: subprocess.Popen
    folder: Path

    stop_signal: int = signal.SIGTERM  # PostgreSQL: SIGINT, its "fast" shutdown (SIGTERM waits for clients)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, self.stop_signal)  # by pid: only the server this helper started
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def kill(self) -> None:
        """SIGKILL to the server's process group (its own session: PostgreSQL's backends die with it)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def start_redis(folder: Path) -> Server:
    binary = shutil.which("redis-server")
    if not binary:
        raise ServerMissing("redis-server is not installed: run `make test` (it installs the Debian package) or "
                            "`apt-get install redis-server`")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder / "redis.log"
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                             "--save", "", "--appendonly", "no", "--logfile", str(log)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    _wait_port(port, proc, "redis-server", log)
    return Server(f"redis://127.0.0.1:{port}/0", port, proc, folder)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    if shutil.which(name):
        return shutil.which(name)
    raise ServerMissing(f"PostgreSQL's {name} is not installed: run `make test` (it installs the Debian package "
                        "postgresql) or `apt-get install postgresql`")


def start_postgres(folder: Path) -> Server:
    initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
    folder.mkdir(parents=True, exist_ok=True)
    data, log = folder / "pgdata", folder / "postgres.log"
    as_user: dict = {}
    if os.geteuid() == 0:  # run as `postgres` itself (not through runuser), so proc.pid is the server's pid
        as_user = {"user": "postgres", "group": "postgres", "extra_groups": []}
        shutil.chown(folder, "postgres")
        folder.chmod(0o755)
        for parent in folder.parents:  # the postgres user must be able to walk into the folder
            if not parent.stat().st_mode & 0o001:
                parent.chmod(parent.stat().st_mode | 0o001)
    done = subprocess.run([initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=folder, **as_user)
    if done.returncode:
        raise RuntimeError(f"initdb failed ({done.returncode}): {done.stderr[-2000:]}")
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen([postgres, "-D", str(data), "-p", str(port), "-k", str(folder),
                                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                                stdout=out, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True, **as_user)
    _wait_port(port, proc, "postgres", log)
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    deadline = time.monotonic() + 30
    import psycopg

    while True:  # listening is not yet accepting: wait for a real connection
        try:
            psycopg.connect(url, connect_timeout=2).close()
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    return Server(url, port, proc, folder, signal.SIGINT)
