import daphne.server
from daphne.cli import CommandLineInterface
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from django.conf import settings
from django.core.management.base import BaseCommand


class ReasonedWebSocketProtocol(WebSocketProtocol):
    """Daphne's protocol, but ``websocket.close`` keeps its ``reason`` (daphne drops it)."""

    def handle_reply(self, message):
        if message.get("type") == "websocket.close" and self.state != self.STATE_CONNECTING:
            code = message.get("code") or 1000
            # Autobahn allows 123 bytes of UTF-8 for a reason.
            reason = (message.get("reason") or "").encode()[:123].decode(errors="ignore")
            self.sendClose(code=code, reason=reason or None)
            return
        super().handle_reply(message)


class ClosingWebSocketFactory(WebSocketFactory):
    """Daphne's factory, so that clients always learn why a socket closed.

    Autobahn fails by dropping TCP by default, so a client whose message was too large sees an
    abnormal closure (1006) instead of 1009 with a reason and cannot tell what it did wrong.
    """

    protocol = ReasonedWebSocketProtocol

    def setProtocolOptions(self, **options):
        super().setProtocolOptions(failByDrop=False, **options)


class Command(BaseCommand):
    help = "Serve Salon (HTTP and websockets) with daphne, with the websocket limits from settings."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--proxy-headers",
            action="store_true",
            help="Trust X-Forwarded-For/-Proto from a reverse proxy in front of Salon.",
        )

    def handle(self, *args, host: str, port: int, proxy_headers: bool, **options):
        argv = [
            "--bind", host,
            "--port", str(port),
            "--websocket-max-message-size", str(settings.SALON_WEBSOCKET_MAX_MESSAGE_SIZE),
            "--websocket-max-frame-size", str(settings.SALON_WEBSOCKET_MAX_FRAME_SIZE),
            # A handshake that does not finish in 10 s is dropped; pings find dead peers.
            "--websocket_connect_timeout", "10",
            "--ping-interval", "20",
            "--ping-timeout", "30",
            "--application-close-timeout", "5",
        ]  # fmt: skip
        if proxy_headers:
            argv.append("--proxy-headers")
        argv.append("config.asgi:application")
        if settings.CELERY_TASK_ALWAYS_EAGER:
            # No celery beat process in the embedded default: schedules run in this process.
            from config.background import EmbeddedBeat

            EmbeddedBeat().start()
        # Server.run() builds its factory from this module global.
        daphne.server.WebSocketFactory = ClosingWebSocketFactory
        CommandLineInterface().run(argv)
