"""``manage.py space_client``: join a live space from the terminal, as a bot or a probe.

Examples::

    # listen for 30 s and keep what was heard
    manage.py space_client --username leo --space 3 --record heard.wav --seconds 30
    # raise a hand, and once brought on stage (or invited and auto-accepting), play a file
    manage.py space_client --username bot --space 3 --raise-hand --speak tone.wav --loop

The password comes from ``--password``, else ``$SALON_CLIENT_PASSWORD``, else a prompt;
``--token`` skips the login. Every event is printed as it arrives (``levels`` only with
``--levels``), stats every ``--stats-every`` seconds and at the end. A dropped connection is
opened again by itself (``--no-reconnect`` to stop instead): the member rejoins and, if it was
speaking, goes on streaming (docs/protocol.md, "Reconnecting").
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from salon_client.client import ClientClosed, ClientError, SpaceClient


class Command(BaseCommand):
    help = "Join a live space as a listener or a speaker: stream a file, record the room."
    # A network client: it needs neither the database nor the project's checks.
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the Salon server")
        parser.add_argument("--space", type=int, required=True, help="the space's id")
        parser.add_argument("--username", help="username or email to log in with")
        parser.add_argument("--password", help="default: $SALON_CLIENT_PASSWORD, else asked for")
        parser.add_argument("--token", help="an API token instead of logging in")
        parser.add_argument(
            "--speak",
            type=Path,
            metavar="FILE",
            help="stream this audio file (any format) once on stage and unmuted",
        )
        parser.add_argument("--loop", action="store_true", help="repeat the --speak file")
        parser.add_argument("--record", type=Path, metavar="OUT.wav", help="write what was heard")
        parser.add_argument(
            "--seconds", type=float, help="leave after this long (default: until the file ends "
            "when speaking without --loop, else until Ctrl-C or the server closes)"
        )  # fmt: skip
        parser.add_argument("--raise-hand", action="store_true", help="ask to speak on joining")
        parser.add_argument(
            "--no-accept-invite",
            dest="accept_invite",
            action="store_false",
            help="leave invitations to speak unanswered (by default they are accepted)",
        )
        parser.add_argument("--levels", action="store_true", help="print the 5 Hz level events")
        parser.add_argument(
            "--no-reconnect",
            dest="reconnect",
            action="store_false",
            help="end when the connection drops (by default the client reconnects)",
        )
        parser.add_argument(
            "--stats-every", type=float, default=10.0, help="seconds between stats; 0: only at end"
        )

    def handle(self, *args, **options):
        if not options["token"] and not options["username"]:
            raise CommandError("give --username (and a password) or --token")
        if options["loop"] and not options["speak"]:
            raise CommandError("--loop needs --speak FILE")
        if options["speak"] and not options["speak"].is_file():
            raise CommandError(f"{options['speak']}: no such file")
        if not options["token"] and not options["password"]:
            options["password"] = os.environ.get("SALON_CLIENT_PASSWORD") or getpass.getpass()
        self.started = time.monotonic()
        try:
            closed = asyncio.run(self.run(**options))
        except KeyboardInterrupt:
            return
        except ClientError as error:
            raise CommandError(str(error)) from None
        if closed is not None and not closed.normal:
            raise CommandError(f"the server closed the socket: {closed.code} {closed.reason}")

    async def run(self, **options) -> ClientClosed | None:
        url = options["url"]
        client_options = {"reconnect": options["reconnect"], "on_connection_change": self.say}
        if options["token"]:
            client = SpaceClient(url, token=options["token"], **client_options)
        else:
            client = await SpaceClient.login(
                url, options["username"], options["password"], **client_options
            )
            self.say(f"logged in as {options['username']}")
        snapshot = await client.connect(options["space"])
        space = snapshot["space"]
        self.say(
            f"joined {space['title']!r} (space {space['id']}, {space['state']}) as "
            f"{client.role}{' (muted)' if client.is_muted else ''}; "
            f"{len(snapshot['participants'])} participants"
        )
        tasks = [asyncio.create_task(self.print_events(client, options))]
        if options["stats_every"] > 0:
            tasks.append(asyncio.create_task(self.print_stats_every(client, options)))
        if options["raise_hand"] and not client.on_stage:
            await client.send_command("hand.raise")
            self.say("hand raised")
        main = (
            self.speak(client, options)
            if options["speak"]
            else client.wait_closed()  # a listener stays until the time is up or it is closed
        )
        try:
            async with asyncio.timeout(options["seconds"]):
                await main
        except TimeoutError:
            self.say(f"{options['seconds']:g} s elapsed")
        except ClientClosed:
            pass  # reported below
        finally:
            for task in tasks:
                task.cancel()
            await client.close()
            self.finish(client, options)
        return client.closed

    async def speak(self, client: SpaceClient, options) -> None:
        if not client.on_stage:
            self.say("waiting to be brought on stage…")
            await client.wait_on_stage()
        if client.is_muted:
            await client.send_command("mute.set", muted=False)
        await client.wait_publishing()
        self.say(f"speaking: streaming {options['speak']}{' in a loop' if options['loop'] else ''}")
        stats = await client.stream_wav(options["speak"], loop=options["loop"])
        self.say(f"{options['speak']} ended after {stats.frames} frames")

    async def print_events(self, client: SpaceClient, options) -> None:
        with contextlib.suppress(ClientClosed):
            while True:
                event = await client.next_event(timeout=None)
                kind = event["type"]
                mine = event.get("user_id") == client.user_id
                if kind == "speak.invited" and mine and options["accept_invite"]:
                    await client.send_command("speak.accept")
                    self.say("invited to speak: accepted")
                if kind == "levels" and not options["levels"]:
                    continue
                details = {key: value for key, value in event.items() if key != "type"}
                self.say(f"{kind} {json.dumps(details, ensure_ascii=False)}")

    async def print_stats_every(self, client: SpaceClient, options) -> None:
        while True:
            await asyncio.sleep(options["stats_every"])
            self.say(f"stats {json.dumps(client.stats())}")

    def finish(self, client: SpaceClient, options) -> None:
        if client.closed is not None and not client.closed.normal:
            self.say(f"closed by the server: {client.closed.code} {client.closed.reason}")
        if options["record"]:
            seconds = client.record_to(options["record"])
            self.say(f"recorded {seconds:.2f} s to {options['record']}")
        self.say(f"stats {json.dumps(client.stats(), indent=2)}")

    def say(self, line: str) -> None:
        self.stdout.write(f"[{time.monotonic() - self.started:7.2f}s] {line}")
