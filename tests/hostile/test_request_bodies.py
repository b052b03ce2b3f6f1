"""Large request bodies against a real ``manage.py serve``: refused before they are read, cut
off while they stream, and never held whole in the server's memory.

The cap per path and the anonymous cap come from config.request_bodies; the ASGI-level check
of the same rule: tests/config/test_request_bodies.py, tests/voicetweets/test_api.py.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings

from accounts.services import auth_token_issue
from tests.hostile.helpers import multipart
from tests.spaces.factories import make_member, session_cookie
from voicetweets.models import VoiceTweet

pytestmark = pytest.mark.slow

MB = 1024 * 1024
# What four concurrent uploads of the largest size may add to the server's peak RSS (README,
# "Request bodies"): measured at +6 to +12 MB; one body held whole per upload would be +112 MB.
PEAK_RSS_GROWTH_BOUND = 64 * MB
# Bytes a client gets into loopback socket buffers before the server's answer reaches it.
SOCKET_BUFFER_SLACK = 16 * MB


def _memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (the peak) of ``pid``, in bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


def _connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=15)
    sock.settimeout(15)
    return sock


def _head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (the test times out if it
    never does)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data  # closed while our body was still arriving: the answer came first
        if not chunk:
            return data
        data += chunk


def _send_until_answered(sock: socket.socket, pieces, *, limit: int) -> int:
    """Send ``pieces`` until the server answers, refuses more, or ``limit`` bytes went out;
    return how many bytes of body were sent."""
    sent = 0
    for piece in pieces:
        if sent >= limit or select.select([sock], [], [], 0)[0]:
            break
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(piece)
    return sent


def _status_and_body(response: bytes) -> tuple[int, bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _zeros(size: int = 64 * 1024):
    piece = b"\0" * size
    while True:
        yield piece


def _chunks(size: int = 64 * 1024):
    for piece in _zeros(size):
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"


def test_a_body_declared_over_the_cap_is_refused_before_it_is_sent(live_server_process):
    """Headers alone, declaring one byte over the member's upload cap: the 413 (JSON, saying
    the cap) comes at once, without the server waiting for a byte of body, and the connection
    closes."""
    token = auth_token_issue(user=make_member("uma")).key
    server = live_server_process()
    cap = settings.SALON_VOICETWEET_MAX_UPLOAD_BYTES

    with _connect(server) as sock:
        sock.sendall(
            _head(
                "/api/v1/voicetweets/",
                {
                    "Authorization": f"Token {token}",
                    "Content-Type": "multipart/form-data; boundary=x",
                    "Content-Length": str(cap + 1),
                    "Expect": "100-continue",
                },
            )
        )
        status, body = _status_and_body(_read_until_closed(sock))

    assert status == 413
    assert json.loads(body) == {"detail": "Request body too large: the limit here is 28 MB."}


def test_a_chunked_body_is_cut_off_as_it_passes_the_cap(live_server_process):
    """A chunked upload that never ends: the server answers 413 once the body passes the cap and
    closes; the client gets no further than the cap plus what socket buffers hold."""
    token = auth_token_issue(user=make_member("uma")).key
    server = live_server_process()
    cap = settings.SALON_VOICETWEET_MAX_UPLOAD_BYTES
    headers = {
        "Authorization": f"Token {token}",
        "Content-Type": "multipart/form-data; boundary=x",
        "Transfer-Encoding": "chunked",
    }

    with _connect(server) as sock:
        sock.sendall(_head("/api/v1/voicetweets/", headers))
        sent = _send_until_answered(sock, _chunks(), limit=3 * cap)
        status, body = _status_and_body(_read_until_closed(sock))

    print(f"chunked upload cut off after {sent / MB:.1f} MB (cap {cap / MB:.0f} MB)")
    assert status == 413
    assert "28 MB" in json.loads(body)["detail"]
    assert cap < sent < cap + SOCKET_BUFFER_SLACK


def test_an_anonymous_200_mb_post_to_login_is_refused_and_costs_no_memory(live_server_process):
    """No session cookie, no Authorization: the small anonymous cap applies. A 200 MB login
    POST gets its 413 (a page, for a browser's form) before the client got far, and the
    server's peak RSS barely moves."""
    server = live_server_process()
    before = _memory(server.process.pid)

    with _connect(server) as sock:
        sock.sendall(
            _head(
                "/accounts/login/",
                {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Content-Length": str(200 * MB),
                },
            )
        )
        sent = _send_until_answered(sock, _zeros(), limit=200 * MB)
        status, body = _status_and_body(_read_until_closed(sock))
    after = _memory(server.process.pid)

    growth = after["VmHWM"] - before["VmHWM"]
    print(f"anonymous 200 MB POST: 413 after {sent / MB:.1f} MB; peak RSS +{growth / MB:.1f} MB")
    assert status == 413
    assert b"256 kB" in body
    assert sent < SOCKET_BUFFER_SLACK
    assert growth < SOCKET_BUFFER_SLACK


def _wav(size: int) -> bytes:
    """A 48 kHz stereo 16-bit WAV of exactly ``size`` bytes: a tone, so it is not silence."""
    frames = (size - 44) // 4
    t = np.arange(frames) / 48_000
    mono = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
    data = np.repeat(mono, 2).tobytes() + b"\0" * ((size - 44) % 4)
    header = (
        b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 2, 48_000, 192_000, 4, 16)
        + b"data" + struct.pack("<I", len(data))
    )  # fmt: skip
    return header + data


def _multipart(fields: dict[str, str], audio: bytes) -> tuple[bytes, str]:
    return multipart(fields, {"audio": ("long.wav", audio)}, boundary="salon-upload-boundary")


def _largest_upload(fields: dict[str, str], cap: int) -> tuple[bytes, str]:
    """A multipart body of exactly ``cap`` bytes around a real WAV."""
    overhead = len(_multipart(fields, b"")[0])
    body, content_type = _multipart(fields, _wav(cap - overhead))
    assert len(body) == cap
    return body, content_type


def _post(server, path: str, body: bytes, headers: dict[str, str]) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _wait_until_processed(count: int, timeout: float = 300) -> list[VoiceTweet]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tweets = list(VoiceTweet.objects.filter(parent=None).order_by("pk"))
        if len(tweets) >= count and all(t.state != VoiceTweet.State.PROCESSING for t in tweets):
            return tweets
        time.sleep(0.5)
    raise AssertionError(f"voice tweets still processing after {timeout} s")


def test_four_concurrent_uploads_of_the_largest_size_stay_within_the_memory_bound(
    live_server_process,
):
    """Two uploads through the API and two through the HTML form, each a WAV filling the whole
    cap (posted as a thread), at once. All four become voice tweets, and daphne's peak RSS grows
    by less than the README's bound over a baseline taken after one small upload through each
    door (so what a first upload loads is not counted). The figure is daphne's process only:
    each upload is decoded in a child process of its own."""
    member = make_member("uma")
    token = auth_token_issue(user=member).key
    csrf = "c" * 32  # a CSRF secret of Django's length; the form field repeats it
    cookie = f"{session_cookie(member).decode()}; csrftoken={csrf}"
    api_fields = {"post_as_thread": "true"}
    form_fields = {"csrfmiddlewaretoken": csrf, "post_as_thread": "on", "next": "/"}
    server = live_server_process()

    def through_api(body, content_type):
        headers = {"Authorization": f"Token {token}", "Content-Type": content_type}
        return _post(server, "/api/v1/voicetweets/", body, headers)

    def through_form(body, content_type):
        headers = {"Cookie": cookie, "Content-Type": content_type}
        return _post(server, "/voicetweets/new", body, headers)

    small_wav = _wav(2 * 192_000)
    assert through_api(*_multipart(api_fields, small_wav)) == 202
    assert through_form(*_multipart(form_fields, small_wav)) == 302
    _wait_until_processed(2)
    baseline = _memory(server.process.pid)["VmHWM"]

    cap = settings.SALON_VOICETWEET_MAX_UPLOAD_BYTES
    api_upload = _largest_upload(api_fields, cap)
    form_upload = _largest_upload(form_fields, cap)
    statuses: list[int] = []

    def upload(send, body_and_type) -> None:
        statuses.append(send(*body_and_type))

    uploads = [
        threading.Thread(target=upload, args=pair)
        for pair in [(through_api, api_upload), (through_form, form_upload)] * 2
    ]
    for thread in uploads:
        thread.start()
    for thread in uploads:
        thread.join()
    assert sorted(statuses) == [202, 202, 302, 302]
    tweets = _wait_until_processed(6)
    peak = _memory(server.process.pid)["VmHWM"]

    growth = peak - baseline
    print(
        f"4 concurrent uploads of {cap / MB:.0f} MB: daphne's peak RSS {baseline / MB:.0f} MB"
        f" -> {peak / MB:.0f} MB, +{growth / MB:.1f} MB (bound +{PEAK_RSS_GROWTH_BOUND / MB:.0f})"
    )
    assert [t.state for t in tweets] == [VoiceTweet.State.READY] * 6
    assert all(t.replies.exists() for t in tweets[2:])  # longer than 140 s: threads
    assert growth < PEAK_RSS_GROWTH_BOUND
