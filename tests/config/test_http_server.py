"""Daphne's HTTP side as ``manage.py serve`` sets it up (config.http_server), in a process of its
own in front of an application that reports what body it received: every body arrives intact,
in bounded chunks, however it was sent. The caps: tests/hostile/test_request_bodies.py."""

import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from tests.live import BASE_DIR
from tests.services import free_port

pytestmark = pytest.mark.slow

SERVE = """
import sys

from config.management.commands.serve import run_daphne

run_daphne(["--port", sys.argv[1], "tests.config.body_echo:application"])
"""


@pytest.fixture
def echo_server():
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SALON_MAX_REQUEST_BYTES": str(8 * 1024 * 1024),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(port)], cwd=BASE_DIR, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("the echo server did not start") from None
            time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(timeout=10)


def test_bodies_arrive_intact_in_bounded_chunks_on_one_connection(echo_server):
    """A small body (kept in memory by Twisted), a large one (spooled to disk) and a chunked one,
    one after the other on a kept-alive connection: each reaches the application byte for byte,
    in chunks of at most 64 KiB."""
    bodies = {
        "small": os.urandom(1_000),
        "large": os.urandom(5 * 1024 * 1024 + 17),
        "chunked": os.urandom(3 * 1024 * 1024 + 5),
    }
    connection = http.client.HTTPConnection("127.0.0.1", echo_server, timeout=30)
    received = {}
    for name, body in bodies.items():
        if name == "chunked":
            pieces = (body[at : at + 100_000] for at in range(0, len(body), 100_000))
            connection.request(
                "POST", "/", body=pieces, headers={"Authorization": "Token x"}, encode_chunked=True
            )
        else:
            connection.request("POST", "/", body=body, headers={"Authorization": "Token x"})
        response = connection.getresponse()
        assert response.status == 200
        received[name] = json.loads(response.read())
    connection.close()

    for name, body in bodies.items():
        assert received[name]["sha256"] == hashlib.sha256(body).hexdigest(), name
        assert received[name]["length"] == len(body)
        assert received[name]["largest"] <= 64 * 1024
