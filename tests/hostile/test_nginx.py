"""Debian's nginx, configured exactly as docs/deploy.md says, in front of ``manage.py serve`` with
the production settings: the space socket works through it, private audio goes out through the
internal redirect with Range, and nothing private can be fetched by its path.

The configuration is the one block of nginx in docs/deploy.md; only the host-specific values
(ports, folders, certificate) are replaced, and each must be found exactly once, so the
document and this test cannot drift apart silently.
"""

from __future__ import annotations

import asyncio
import datetime
import http.client
import ipaddress
import json
import re
import secrets
import socket
import ssl
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from websockets.asyncio.client import connect

from accounts.services import auth_token_issue
from tests.live import BASE_DIR, stop_process
from tests.services import free_port
from tests.spaces.factories import make_live_space, make_member, session_cookie
from tests.voicetweets.factories import ready_message

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

NGINX = Path("/usr/sbin/nginx")
DEPLOY_DOC = BASE_DIR / "docs" / "deploy.md"
# The server and this process sign sessions and audio links with the same key.
SECRET_KEY = "nginx-test-" + "k" * 60

# Around the documented site configuration: what Debian's nginx.conf provides, with every path
# nginx writes to inside the test's folder, in the foreground as one process.
MAIN_CONFIG = """
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/salon.conf;
}}
"""


def documented_site_config() -> str:
    blocks = re.findall(r"^```nginx\n(.*?)^```", DEPLOY_DOC.read_text(), re.DOTALL | re.MULTILINE)
    assert len(blocks) == 1, "docs/deploy.md must hold exactly one nginx block"
    return blocks[0]


def _replace(config: str, old: str, new: str) -> str:
    assert config.count(old) == 1, f"docs/deploy.md's nginx block no longer has {old!r} once"
    return config.replace(old, new)


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class Nginx:
    """nginx as a child process on free loopback ports, everything it writes under ``directory``."""

    def __init__(
        self,
        directory: Path,
        *,
        static_root: Path,
        upstream_port: int | None = None,
        web_port: int | None = None,
        live_port: int | None = None,
    ):
        """In front of one ``--role all`` process (``upstream_port``), or of a web and a live
        one (``web_port``, ``live_port``)."""
        self.directory = directory
        self.https_port, self.http_port = free_port(), free_port()
        cert, key = _self_signed_certificate(directory)
        config = documented_site_config()
        for old, new in [
            ("server 127.0.0.1:8001;", f"server 127.0.0.1:{web_port or upstream_port};"),
            ("server 127.0.0.1:8002;", ""),
            ("server 127.0.0.1:8101;", f"server 127.0.0.1:{live_port or upstream_port};"),
            ("server 127.0.0.1:8102;", ""),
            ("listen 80;", f"listen 127.0.0.1:{self.http_port};"),
            ("listen [::]:80;", ""),
            ("listen 443 ssl http2;", f"listen 127.0.0.1:{self.https_port} ssl http2;"),
            ("listen [::]:443 ssl http2;", ""),
            ("/etc/letsencrypt/live/salon.example.org/fullchain.pem", str(cert)),
            ("/etc/letsencrypt/live/salon.example.org/privkey.pem", str(key)),
            ("alias /srv/salon/var/static/;", f"alias {static_root}/;"),
            ("alias /srv/salon/var/media/;", f"alias {settings.MEDIA_ROOT}/;"),
            ("alias /srv/salon/var/private/;", f"alias {settings.SALON_PRIVATE_MEDIA_ROOT}/;"),
        ]:
            config = _replace(config, old, new)
        (directory / "salon.conf").write_text(config)
        (directory / "nginx.conf").write_text(MAIN_CONFIG.format(dir=directory))
        self.log = open(directory / "nginx.out", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [str(NGINX), "-p", str(directory), "-c", str(directory / "nginx.conf")],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_until_listening()
        except BaseException:
            self.stop()
            raise

    def _wait_until_listening(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited at start:\n{self.errors()}")
            try:
                socket.create_connection(("127.0.0.1", self.https_port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx not listening within {timeout} s:\n{self.errors()}")

    def errors(self) -> str:
        logs = [self.directory / "nginx.out", self.directory / "error.log"]
        return "\n".join(p.read_text(errors="replace") for p in logs if p.exists())

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()


def _tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the test's own self-signed certificate
    return context


def _get(port: int, path: str, *, tls: bool = True, **headers):
    """(status, headers, body) of one GET through nginx; redirects are not followed."""
    if tls:
        connection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=30, context=_tls_context()
        )
    else:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@pytest.fixture
def front(live_server_process, tmp_path, settings):
    """``manage.py serve --proxy-headers`` with config.settings_production behind nginx."""
    if not NGINX.exists():
        pytest.fail("Debian's nginx is missing: make test-deps installs it")
    settings.SECRET_KEY = SECRET_KEY
    static_root = tmp_path / "static"
    (static_root / "css").mkdir(parents=True)
    (static_root / "css" / "salon.css").write_text("body { color: black }")
    server = live_server_process(
        "--proxy-headers",
        DJANGO_SETTINGS_MODULE="config.settings_production",
        DJANGO_SECRET_KEY=SECRET_KEY,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        SALON_TRUSTED_PROXIES="127.0.0.1",
        # The test's health check reaches daphne directly over HTTP, which would be redirected.
        DJANGO_SECURE_SSL_REDIRECT="0",
    )
    directory = tmp_path / "nginx"
    directory.mkdir()
    nginx = Nginx(directory, upstream_port=server.port, static_root=static_root)
    yield nginx
    nginx.stop()


def test_the_documented_upload_cap_is_salons():
    """client_max_body_size is the largest body Salon accepts: nginx neither refuses an upload
    Salon would take nor spools more than Salon would."""
    (cap,) = re.findall(r"client_max_body_size (\d+)m;", documented_site_config())
    largest = max(settings.SALON_MAX_REQUEST_BYTES, *settings.SALON_REQUEST_BODY_LIMITS.values())
    assert int(cap) * 1024 * 1024 == largest


def test_nginx_as_documented_in_front_of_salon(front):
    """Through the documented nginx: plain HTTP is sent to HTTPS; a member joins a space over
    the socket and gets the snapshot; a voice message plays in ranges (206, the right bytes) for
    its recipient, by session and by the API's audio link, while a stranger gets 404; its file is
    404 at the internal prefix and under /media/, where avatars and static files are served."""
    alice, bob, stan = make_member("alice"), make_member("bob"), make_member("stan")
    space = make_live_space(make_member("hana", host=True))
    message = ready_message(alice, bob)
    audio = Path(message.audio.path)
    audio.write_bytes(secrets.token_bytes(50_000))
    avatar = Path(settings.MEDIA_ROOT) / "avatars" / "alice.webp"
    avatar.parent.mkdir(parents=True, exist_ok=True)
    avatar.write_bytes(b"RIFF-avatar")
    port = front.https_port
    bob_cookie = session_cookie(bob).decode()

    status, headers, _ = _get(front.http_port, "/spaces/", tls=False)
    assert status == 301 and headers["Location"].startswith("https://")

    async def join() -> dict:
        async with connect(
            f"wss://127.0.0.1:{port}/ws/spaces/{space.pk}/",
            ssl=_tls_context(),
            origin=f"https://127.0.0.1:{port}",
            additional_headers={"Cookie": bob_cookie},
        ) as socket_:
            async with asyncio.timeout(15):
                return json.loads(await socket_.recv())

    snapshot = asyncio.run(join())
    assert snapshot["type"] == "snapshot" and snapshot["you"]["user_id"] == bob.pk

    view = f"/voicemessages/{message.pk}/audio"
    status, headers, body = _get(port, view, Cookie=bob_cookie, Range="bytes=1000-2999")
    assert (status, body) == (206, audio.read_bytes()[1000:3000]), front.errors()
    assert headers["Content-Range"] == f"bytes 1000-2999/{audio.stat().st_size}"
    assert headers["Content-Type"] == "audio/ogg" and "X-Accel-Redirect" not in headers
    assert headers["Cache-Control"] == "private, max-age=3600"

    token = auth_token_issue(user=bob).key
    status, _, body = _get(
        port, f"/api/v1/voicemessages/{message.pk}/", Authorization=f"Token {token}"
    )
    link = urlsplit(json.loads(body)["audio_url"])
    assert (status, link.scheme, link.netloc) == (200, "https", f"127.0.0.1:{port}")
    status, _, body = _get(port, f"{link.path}?{link.query}", Range="bytes=-100")
    assert (status, body) == (206, audio.read_bytes()[-100:])

    assert _get(port, view, Cookie=session_cookie(stan).decode())[0] == 404
    for path in (f"/_private/{message.audio.name}", f"/media/{message.audio.name}"):
        assert _get(port, path)[0] == 404, path
        assert _get(port, path, Cookie=bob_cookie, Range="bytes=0-9")[0] == 404, path
    assert _get(port, "/media/avatars/alice.webp")[::2] == (200, b"RIFF-avatar")
    assert _get(port, "/static/css/salon.css")[::2] == (200, b"body { color: black }")
