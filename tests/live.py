"""Real Salon server processes for tests that need daphne itself (websocket limits, browsers,
several processes behind Redis)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from tests.services import free_port

BASE_DIR = Path(__file__).resolve().parent.parent


class ServerProcess:
    """``manage.py serve`` in a child process, on the test database and the suite's Redis."""

    def __init__(
        self,
        *,
        database_name: str,
        log_dir: Path,
        extra_env: dict | None = None,
        serve_args: tuple[str, ...] = (),
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base_url = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
        env = {
            **os.environ,
            "DATABASE_URL": f"{base_url}/{database_name}",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PYTHONUNBUFFERED": "1",
            # Like the embedded default: queued work runs on the server's own background threads.
            "SALON_TASKS_SYNCHRONOUS": "0",
            **(extra_env or {}),
        }
        self.log_path = log_dir / f"daphne-{self.port}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(self.port), *serve_args],
            cwd=BASE_DIR,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_until_healthy()
        except BaseException:
            self.stop()  # a server that never became healthy must not outlive the test
            raise

    def _wait_until_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited at start:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server not healthy within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)
        self._log.close()


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    """Ask a child server to stop (SIGTERM); kill it if it has not within ``timeout``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class CuttableProxy:
    """A TCP proxy in front of a server, on its own thread, whose connections a test can cut
    as a network drop would: no close frame, the sockets just end. New connections go through
    again at once (the network came back)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.loop = asyncio.new_event_loop()
        self._writers: list = []
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> str:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._accept, "127.0.0.1", 0), self.loop
        )
        self._server = started.result(timeout=10)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self.url

    async def _accept(self, reader, writer) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port
        )
        self._writers += [writer, upstream_writer]
        await asyncio.gather(
            self._pump(reader, upstream_writer),
            self._pump(upstream_reader, writer),
            return_exceptions=True,
        )

    @staticmethod
    async def _pump(reader, writer) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    def cut(self) -> None:
        """Drop every connection through the proxy now (thread-safe)."""

        async def cut_all():
            for writer in self._writers:
                writer.transport.abort()
            self._writers.clear()

        asyncio.run_coroutine_threadsafe(cut_all(), self.loop).result(timeout=10)

    def stop(self) -> None:
        self.cut()
        self._server.close()

        async def finish() -> None:
            # The connections' tasks end on the aborted sockets; wait for them, so none is
            # destroyed pending when the loop stops.
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(finish(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


class ImpairingProxy(CuttableProxy):
    """A proxy in front of a server that impairs the room mix on its way to a listener's page,
    as a bad network would: each mix frame (a binary websocket message of kind 2 or 3, server to
    client) is dropped with probability ``drop``, or else held for a uniformly random 0 to
    ``jitter_ms`` ms, so a frame held long is overtaken by the next ones (reordering). Events,
    control frames and everything the client sends pass at once. Websocket compression is
    refused in the handshake so frames can be read as they pass."""

    def __init__(
        self, target_port: int, *, jitter_ms: float = 40.0, drop: float = 0.05, seed: int = 16
    ):
        super().__init__(target_port)
        import random

        self.jitter = jitter_ms / 1000
        self.drop = drop
        self.random = random.Random(seed)
        self.passed = 0
        self.dropped = 0
        # How long the proxy's own thread was held up (starved on a loaded machine: frames read
        # or delivered late), at worst, since the last reset: a network impairment the test did
        # not ask for.
        self.worst_overrun = 0.0

    def start(self) -> str:
        url = super().start()
        asyncio.run_coroutine_threadsafe(self._watch_stalls(), self.loop)
        return url

    async def _watch_stalls(self, period: float = 0.005) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(period)
            self.worst_overrun = max(self.worst_overrun, loop.time() - before - period)

    async def _accept(self, reader, writer) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port
        )
        self._writers += [writer, upstream_writer]
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            upstream_writer.close()
            return
        upgrade = b"upgrade: websocket" in head.lower()
        if upgrade:
            lines = head.split(b"\r\n")
            head = b"\r\n".join(
                line for line in lines if not line.lower().startswith(b"sec-websocket-extensions")
            )
        upstream_writer.write(head)
        await asyncio.gather(
            self._pump(reader, upstream_writer),
            self._downstream(upstream_reader, writer, upgrade),
            return_exceptions=True,
        )

    async def _downstream(self, reader, writer, upgrade: bool) -> None:
        if not upgrade:
            await self._pump(reader, writer)
            return
        head = await reader.readuntil(b"\r\n\r\n")
        writer.write(head)
        if not head.startswith(b"HTTP/1.1 101"):
            await self._pump(reader, writer)
            return
        loop = asyncio.get_running_loop()
        while True:
            header = await reader.readexactly(2)
            length = header[1] & 0x7F
            extended = b""
            if length == 126:
                extended = await reader.readexactly(2)
                length = int.from_bytes(extended, "big")
            elif length == 127:
                extended = await reader.readexactly(8)
                length = int.from_bytes(extended, "big")
            mask = await reader.readexactly(4) if header[1] & 0x80 else b""
            payload = await reader.readexactly(length)
            frame = header + extended + mask + payload
            final_binary = header[0] == 0x82  # FIN + binary opcode
            if not (final_binary and not mask and payload[:1] in (b"\x02", b"\x03")):
                writer.write(frame)
                await writer.drain()
                continue
            if self.random.random() < self.drop:
                self.dropped += 1
                continue
            self.passed += 1
            delay = self.random.uniform(0, self.jitter)
            loop.call_later(delay, self._deliver, writer, frame, loop.time() + delay)

    def _deliver(self, writer, frame: bytes, due: float) -> None:
        self.worst_overrun = max(self.worst_overrun, asyncio.get_running_loop().time() - due)
        if not writer.is_closing():
            writer.write(frame)
