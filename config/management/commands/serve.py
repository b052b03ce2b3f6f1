from daphne.cli import CommandLineInterface
from django.conf import settings
from django.core.management.base import BaseCommand


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
        CommandLineInterface().run(argv)
