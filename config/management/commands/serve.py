import os

import daphne.server
from daphne.cli import CommandLineInterface
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config.http_server import BodyStreamingServer, BoundedHTTPFactory
from config.roles import ROLE_ENVIRONMENT, ROLES

# Close codes RFC 6455 lets an endpoint send besides 1000 and 3000-4999, which autobahn's
# sendClose refuses from an application: 1008 (policy violation), 1009 (message too big).
_PROTOCOL_CLOSE_CODES = {1001, 1003, 1007, 1008, 1009, 1011}


class ReasonedWebSocketProtocol(WebSocketProtocol):
    """Daphne's protocol, with three fixes for what Salon's consumers need:

    * ``websocket.close`` keeps its ``reason`` (daphne drops it);
    * a consumer may close with 1008 or 1009, as RFC 6455 allows (autobahn raises, and the
      client sees 1011 instead);
    * the websocket size limit applies to what clients send, not to what the server sends
      (autobahn checks both, so a large room's snapshot would fail to go out).
    """

    def handle_reply(self, message):
        if message.get("type") == "websocket.close" and self.state != self.STATE_CONNECTING:
            code = message.get("code") or 1000
            # Autobahn allows 123 bytes of UTF-8 for a reason.
            reason = (message.get("reason") or "").encode()[:123].decode(errors="ignore")
            if code in _PROTOCOL_CLOSE_CODES:
                self.sendCloseFrame(code=code, reasonUtf8=reason.encode() or None)
            else:
                self.sendClose(code=code, reason=reason or None)
            return
        super().handle_reply(message)

    def sendMessage(self, payload, isBinary=False, **options):
        # Single-threaded reactor: lifting the limit around one send affects nothing else.
        limit, self.maxMessagePayloadSize = self.maxMessagePayloadSize, 0
        try:
            super().sendMessage(payload, isBinary, **options)
        finally:
            self.maxMessagePayloadSize = limit


class ClosingWebSocketFactory(WebSocketFactory):
    """Daphne's factory, so that clients always learn why a socket closed.

    Autobahn fails by dropping TCP by default, so a client whose message was too large sees an
    abnormal closure (1006) instead of 1009 with a reason and cannot tell what it did wrong.
    """

    protocol = ReasonedWebSocketProtocol

    def setProtocolOptions(self, **options):
        super().setProtocolOptions(failByDrop=False, **options)


class BodyStreamingCommandLineInterface(CommandLineInterface):
    """Daphne's command line, running the server that streams request bodies from disk."""

    server_class = BodyStreamingServer


class Command(BaseCommand):
    help = "Serve Salon (HTTP and websockets) with daphne, with the websocket limits from settings."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--role",
            choices=ROLES,
            default="all",
            help=(
                "web: pages, the API, uploads and notifications; live: the space sockets "
                "(/ws/spaces/) and their audio; all (the default): everything "
                "(docs/deploy.md routes by path)."
            ),
        )
        parser.add_argument(
            "--proxy-headers",
            action="store_true",
            help=(
                "Salon runs behind a reverse proxy: refuse to start unless SALON_TRUSTED_PROXIES "
                "names it (X-Forwarded-For is read from those addresses only)."
            ),
        )

    def handle(self, *args, host: str, port: int, role: str, proxy_headers: bool, **options):
        # Read by config.asgi when daphne (or the collector tuning below) first imports it.
        os.environ[ROLE_ENVIRONMENT] = role
        # Twisted listens with a backlog of 50 by default, little for a wave of listeners
        # joining a big room while the event loop is busy.
        interface = host.strip("[]").replace(":", r"\:")
        endpoint = f"tcp:port={port}:interface={interface}:backlog={LISTEN_BACKLOG}"
        argv = [
            "--endpoint", endpoint,
            "--websocket-max-message-size", str(settings.SALON_WEBSOCKET_MAX_MESSAGE_SIZE),
            "--websocket-max-frame-size", str(settings.SALON_WEBSOCKET_MAX_FRAME_SIZE),
            # A handshake that does not finish in 30 s is dropped; pings find dead peers. In a
            # join wave a socket waits for its turn on the database threads before it is
            # accepted: with 10 s, 171 of 2,000 listeners were dropped while the queue drained.
            "--websocket_connect_timeout", "30",
            "--ping-interval", "20",
            "--ping-timeout", "30",
            "--application-close-timeout", "5",
        ]  # fmt: skip
        # Never daphne's own --proxy-headers: it takes X-Forwarded-For from any peer as the
        # client, and every limit keyed on an address could then be dodged with a new header
        # value per request. config.client_address reads it from trusted proxies only, and
        # Django reads X-Forwarded-Proto through SECURE_PROXY_SSL_HEADER.
        if proxy_headers and not settings.SALON_TRUSTED_PROXIES:
            raise CommandError(
                "--proxy-headers: set SALON_TRUSTED_PROXIES to the proxy's address (IPs or CIDR "
                "networks, comma-separated), or every client counts as the proxy"
            )
        argv.append("config.asgi:application")
        if settings.CELERY_TASK_ALWAYS_EAGER and role != "live":
            # No celery beat process in the embedded default: schedules run in this process
            # (in the web processes when the roles are split: a live one keeps to its rooms).
            from config.background import EmbeddedBeat

            EmbeddedBeat().start()
        if settings.EMBEDDED and role == "all" and os.environ.get("SALON_DEMO_BOT", "1") != "0":
            # The seeded demo space's host talks (config.demo); nothing without seed_demo.
            from config.demo import start_demo_bot

            start_demo_bot(host=host, port=port)
        _tune_the_garbage_collector()
        _share_the_interpreter_with_the_media_thread()
        stall = float(os.environ.get("SALON_LOOP_WATCHDOG_SECONDS") or 0)
        if stall > 0:
            _watch_the_event_loop(stall)
        _stop_the_media_plane_at_shutdown()
        run_daphne(argv)


def _stop_the_media_plane_at_shutdown() -> None:
    """On SIGTERM, stop the media and mixer threads before the reactor's loop goes, so no
    tick is handed to a closed loop and open recordings are finalized (spaces/live/media.py)."""
    from twisted.internet import reactor

    from spaces.live.media import discard_media_plane

    reactor.addSystemEventTrigger("before", "shutdown", discard_media_plane)


def run_daphne(argv: list[str]) -> None:
    """Daphne's command line with ``argv``, with Salon's websocket and HTTP classes."""
    # Server.run() builds its factories from these module globals.
    daphne.server.WebSocketFactory = ClosingWebSocketFactory
    daphne.server.HTTPFactory = BoundedHTTPFactory
    BodyStreamingCommandLineInterface().run(argv)


# Connections the kernel queues for the server to accept (Linux caps it at net.core.somaxconn).
LISTEN_BACKLOG = 2048

# Allocations between two young-generation collections (CPython's default is 700).
GC_YOUNG_THRESHOLD = 20_000


def _tune_the_garbage_collector() -> None:
    """Keep CPython's full collections short and rare: each one stops every thread, the mixer's
    and the event loop's, for as long as it takes to scan every tracked object. With a few
    hundred sockets open they took 100-190 ms, so a speaker's frames reached the mixer in a
    burst and the jitter buffers grew to absorb a delay the network never had
    (``bench/bench_fanout.py``). Objects alive once the application is loaded (Django, PyAV,
    Twisted: about 150,000) live as long as the process, so they are frozen out of every scan;
    a larger young generation makes all collections rarer."""
    import gc

    import config.asgi  # noqa: F401  (load the application before freezing)

    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


# How long a thread may keep the interpreter while another waits for it (CPython: 5 ms).
GIL_SWITCH_INTERVAL = 0.001


def _share_the_interpreter_with_the_media_thread() -> None:
    """The media thread writes every listener's frame with its own ``send()`` calls while
    daphne's loop may be busy in Python (a join wave). Each call gives the interpreter lock up
    for the system call, and if daphne's thread takes it meanwhile, the media thread waits
    until daphne's thread is made to give it back: up to the switch interval. With CPython's
    5 ms, 100 sends next to a busy thread took up to 36 ms on this machine, 6 ms with 1 ms
    (and 0.13 ms at the median either way)."""
    import sys

    sys.setswitchinterval(GIL_SWITCH_INTERVAL)


def _watch_the_event_loop(stall: float) -> None:
    """Diagnostics: if the event loop stops turning for ``stall`` seconds, print every thread's
    stack to stderr (faulthandler, from its own thread), so the log says what blocked it."""
    import faulthandler

    from twisted.internet import task

    def rearm() -> None:
        faulthandler.dump_traceback_later(stall, repeat=False)

    task.LoopingCall(rearm).start(0.1)
