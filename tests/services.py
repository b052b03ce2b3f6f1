"""Start a throwaway PostgreSQL cluster and Redis server for the test run.

``tests/conftest.py`` calls :func:`start` in ``pytest_configure``, before pytest-django sets Django
up: the settings then see ``DATABASE_URL`` and ``REDIS_URL`` and the whole suite runs in real
mode, on the production database and channel layer.

Both servers live in a temporary directory, listen on free loopback ports and are stopped when the
run ends. ``SALON_TEST_EXTERNAL_SERVICES=1`` skips all this and uses the environment's own URLs.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

_started: list[subprocess.Popen] = []
_cleanups: list = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _find_postgres_bin(name: str) -> str:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    found = candidates[0] if candidates else shutil.which(name)
    if not found:
        raise pytest.UsageError(
            f"PostgreSQL's {name} was not found: install Debian's 'postgresql' (make test does)"
        )
    return found


def _postgres_user() -> dict:
    # initdb and postgres refuse to run as root; drop to the postgres account Debian creates.
    return {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}


def _start_postgres(root: Path) -> str:
    data = root / "pgdata"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
    subprocess.run(
        [_find_postgres_bin("initdb"), "-D", str(data), "-U", "salon", "--auth=trust",
         "--encoding=UTF8", "--no-sync"],
        check=True,
        capture_output=True,
        **_postgres_user(),
    )  # fmt: skip
    port = free_port()
    proc = subprocess.Popen(
        [_find_postgres_bin("postgres"), "-D", str(data), "-p", str(port),
         "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={root}",
         "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
         "-c", "max_connections=300"],
        stdout=subprocess.DEVNULL,
        stderr=open(root / "postgres.log", "wb"),  # noqa: SIM115 - lives as long as the server
        **_postgres_user(),
    )  # fmt: skip
    _started.append(proc)
    _wait_for_port(port, proc, "PostgreSQL", root / "postgres.log")
    return f"postgres://salon@127.0.0.1:{port}/salon"


def _start_redis(root: Path, port: int | None = None) -> str:
    redis_server = shutil.which("redis-server")
    if not redis_server:
        raise pytest.UsageError("redis-server was not found: install Debian's 'redis-server'")
    port = port or free_port()
    proc = subprocess.Popen(
        [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(root), "--daemonize", "no"],
        stdout=open(root / "redis.log", "ab"),  # noqa: SIM115 - lives as long as the server
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    _started.append(proc)
    _redis.update(proc=proc, root=root, port=port)
    _wait_for_port(port, proc, "Redis", root / "redis.log")
    return f"redis://127.0.0.1:{port}/0"


# The Redis server start() started: the fault run (bench/fault_run.py) kills and restarts it.
_redis: dict = {}


def kill_redis() -> None:
    """Kill the Redis server (SIGKILL: a crash, its data gone, as it keeps none on disk)."""
    proc = _redis["proc"]
    proc.kill()
    proc.wait()
    _started.remove(proc)


def restart_redis() -> None:
    """Start Redis again on the port it had, empty, after :func:`kill_redis`."""
    _start_redis(_redis["root"], _redis["port"])


def _wait_for_port(port: int, proc: subprocess.Popen, name: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise pytest.UsageError(f"{name} exited at start: {log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise pytest.UsageError(f"{name} did not listen on port {port} within 30 s")


def _stop_all() -> None:
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            # SIGINT is PostgreSQL's "fast shutdown"; Redis exits on it too.
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    while _cleanups:
        _cleanups.pop()()


def start() -> None:
    """Start both servers and point the environment at them, unless that was already done."""
    if os.environ.get("SALON_TEST_EXTERNAL_SERVICES") == "1":
        return
    if os.environ.get("SALON_TEST_SERVICES_OWNER"):
        return  # a parent pytest process (e.g. an xdist controller) already started them
    root = Path(tempfile.mkdtemp(prefix="salon-test-"))
    os.chmod(root, 0o755)  # noqa: S103 - the postgres account must reach its data dir
    _cleanups.append(lambda: shutil.rmtree(root, ignore_errors=True))
    atexit.register(stop)
    os.environ["DATABASE_URL"] = _start_postgres(root)
    os.environ["REDIS_URL"] = _start_redis(root)
    os.environ["SALON_DATA_DIR"] = str(root / "data")
    os.environ["SALON_TEST_SERVICES_OWNER"] = str(os.getpid())


def stop() -> None:
    """Stop what :func:`start` started in this process; a no-op anywhere else."""
    if os.environ.get("SALON_TEST_SERVICES_OWNER") == str(os.getpid()):
        _stop_all()


def report_lines() -> list[str]:
    """Say in the run's header which database and Redis the suite runs against."""
    database_url = os.environ.get("DATABASE_URL")
    if database_url:
        import psycopg

        # The maintenance database: the test database is created later by pytest-django.
        url = database_url.replace("postgres://", "postgresql://", 1).rsplit("/", 1)[0]
        with psycopg.connect(url + "/postgres") as conn:
            database = conn.execute("SELECT version()").fetchone()[0]
    else:
        database = "SQLite (embedded default)"
    return [
        f"salon database: {database}",
        f"salon redis: {os.environ.get('REDIS_URL') or 'none (in-memory channel layer)'}",
    ]
