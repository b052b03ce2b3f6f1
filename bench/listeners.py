"""Fan-out load generator: many cheap listener sockets on one space, a JSON summary on stdout.

Run: .venv/bin/python bench/listeners.py --url http://127.0.0.1:8000 --space 3 \\
        --tokens tokens.txt --processes 4 --ramp 200 --seconds 30 > summary.json

Who does what. The benchmark driver seeds the database (a live space, N members, one API token
each: ``accounts.services.auth_token_issue``), writes the tokens to a file (one per line, or a
JSON list) and starts this program next to a speaker (e.g. ``salon_client.client.SpaceClient``).
This program only listens: ``--connections`` sockets (default: one per token) authenticated with
``Authorization: Token <key>`` (a line ``ticket:<ticket>`` joins with that join ticket
instead), opened at ``--ramp`` per second, spread over ``--processes``
worker processes (each its own asyncio loop: at 2,000 sockets x 50 frames/s one Python process
would be the bottleneck, not the server). They stay ``--seconds`` after the last one opened.
Progress goes to stderr; the summary (below) is the only thing on stdout.

Cheap per connection: no Opus decoding, no JSON parsing after the snapshot. Each binary message
costs one header unpack (``spaces.audio.wire`` layout), a few integer operations and one
``time.time()``. Per connection: frames, bytes, sequence jumps (and the frames they skip),
frames out of order; per worker, per wall-clock second: frames delivered.

Loss. The server sends nothing while nobody in the room talks (room DTX, ``spaces/live/media.py``),
so a sequence jump is not by itself a loss. The summary therefore also counts, per tick (mix
sequence number), how many sockets received it, against how many were open when it was first
received anywhere: ``ticks.undelivered`` is the sum of the differences, over the steady window
(from 1 s after the last socket opened until 1 s before the end), and is immune to DTX.

Latency by marker. The driver's speaker sends silence, except a short loud burst once a second.
At the speech mode's mix settings (application "audio", 32 kb/s) Opus packets of the near-silent
room tone are 65-85 bytes; a loud frame takes 125-160. So on every socket the mix packet size
jumps when the burst comes through: a *marker* is the first packet of at least
``--marker-bytes`` (110) whose sequence is more than ``--quiet-frames`` (10)
after the previous large packet. A socket whose first packet comes within the quiet stretch after
it opened may have joined mid-burst: that packet only arms the detector (no false marker); one
that first waited longer (a silent room sends nothing) counts its first large packet. The
marker's wall-clock receive time (``time.time()``, the same clock as the driver's on this host;
across hosts both need NTP) is recorded per socket. The driver knows when it sent each burst
and takes, for each marker, the latest burst sent before the marker's first receive time:
latency = receive time - send time. The summary gives, per marker, the receive-time quantiles
over sockets; ``--raw-markers FILE`` writes every receive time (JSON lines
``{"sequence": s, "times": [...]}``) for exact pooled percentiles.

Faults (``bench/fault_run.py``). ``--reconnect`` reopens a socket the server dropped (any close
but a deliberate 4xxx), with backoff, until the end; ``--timeline FILE`` writes, per connection,
frames per wall-clock second, its closes and its returns, and with ``--watch TYPE`` when events
of that type arrived (a substring test on text frames: still no JSON parsing).

Summary (stdout, one JSON object)::

    {"url", "space", "processes",
     "connections": {"requested", "opened", "failed", "closed_early",
                     "errors": {"4409 the space is full": 3, ...},   # refusals and failures
                     "connect_seconds": {"p50", "p95", "max"},       # handshake + snapshot
                     "reconnected", "reconnects", "reconnect_failures",   # with --reconnect
                     "reconnect_seconds": {"p50", "p95", "max"}},    # dropped -> snapshot
     "window": {"start", "end", "seconds"},                          # the steady window
     "frames": {"received", "bytes", "jumps", "skipped", "out_of_order", "invalid",
                "per_connection": {"min", "p50", "max"},
                "longest_gap_seconds": {"p50", "p95", "max"}},  # per socket, steady window
     "ticks": {"seen", "expected", "delivered", "undelivered", "fully_delivered"},  # steady
     "per_second": [{"t": 1795000000, "frames": 99850, "open": 2000}, ...],
     "markers": [{"sequence", "receivers", "first", "p50", "p95", "p99", "last"}, ...],
     "settings": {"marker_bytes", "quiet_frames", "ramp", "seconds"}}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import random
import signal
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Imported after the path fix, so the benchmark runs without installing the project.
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from salon_client.client import space_socket_url
from spaces.audio.codec import FRAME_SECONDS
from spaces.audio.wire import (
    HEADER,
    HEADER_BYTES,
    UINT32_MODULO,
    FrameKind,
    WireError,
    unpack_bundle,
)

ROOM_MIX = int(FrameKind.ROOM_MIX)
ROOM_MIX_BUNDLE = int(FrameKind.ROOM_MIX_BUNDLE)
HALF_UINT32 = UINT32_MODULO // 2


@dataclass
class Settings:
    url: str
    space: int
    marker_bytes: int = 110
    quiet_frames: int = 10
    connect_timeout: float = 30.0
    # Open the socket again after the server dropped it, until the end of the run.
    reconnect: bool = False
    # Keep, per connection, frames per wall-clock second and when ``watch`` events arrived.
    timeline: bool = False
    # An event type (e.g. "recording.changed") whose arrival times are kept per connection.
    watch: str | None = None


@dataclass(slots=True)
class Connection:
    """One listener socket's counters."""

    frames: int = 0
    bytes: int = 0
    jumps: int = 0  # forward sequence jumps (DTX pauses or losses)
    skipped: int = 0  # the sequence numbers those jumps skipped
    out_of_order: int = 0  # a sequence at or before the previous one
    invalid: int = 0  # binary messages that are not room-mix frames
    last_sequence: int | None = None
    last_large: int | None = None
    opened_at: float = 0.0
    connect_seconds: float | None = None
    error: str | None = None  # why it never opened
    closed: str | None = None  # why the server closed it before the end (the last time)
    # With --reconnect: (closed at, open again at) for each return, and failed attempts.
    reconnects: list = field(default_factory=list)
    reconnect_failures: int = 0
    # With --timeline: frames per wall-clock second, closes (time, code), watched events' times.
    bins: dict = field(default_factory=dict)
    closes: list = field(default_factory=list)
    watched: list = field(default_factory=list)
    # When the last mix frame arrived, and (arrival time, seconds since the previous frame) of
    # every gap longer than GAP_SECONDS: a listener's longest silence, for the steady window.
    last_at: float | None = None
    gaps: list = field(default_factory=list)


@dataclass
class WorkerState:
    settings: Settings
    connections: list[Connection] = field(default_factory=list)
    per_second: defaultdict[int, int] = field(default_factory=lambda: defaultdict(int))
    # tick sequence → [receivers, first receive time]
    ticks: dict[int, list] = field(default_factory=dict)
    # marker sequence → receive times
    markers: defaultdict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    # (time, +1 opened / -1 closed): how many sockets were open when
    timeline: list[tuple[float, int]] = field(default_factory=list)

    def on_message(self, connection: Connection, message: bytes) -> None:
        """The hot path: one binary message on one socket (a mix frame, or a bundle)."""
        now = time.time()
        if message[0] == ROOM_MIX_BUNDLE:  # big rooms (spaces/live/fanout.py)
            try:
                frames = unpack_bundle(message)
            except WireError:
                connection.invalid += 1
                return
            for frame in frames:
                self.on_frame(connection, frame, now)
            return
        self.on_frame(connection, message, now)

    def on_frame(self, connection: Connection, message: bytes, now: float) -> None:
        kind, _flags, sequence, _timestamp = HEADER.unpack_from(message)
        if kind != ROOM_MIX:
            connection.invalid += 1
            return
        connection.frames += 1
        connection.bytes += len(message)
        if connection.last_at is not None and now - connection.last_at > GAP_SECONDS:
            connection.gaps.append((now, now - connection.last_at))
        connection.last_at = now
        second = int(now)
        self.per_second[second] += 1
        if self.settings.timeline:
            connection.bins[second] = connection.bins.get(second, 0) + 1
        tick = self.ticks.get(sequence)
        if tick is None:
            self.ticks[sequence] = [1, now]
        else:
            tick[0] += 1
        last = connection.last_sequence
        if last is None:
            if now - connection.opened_at <= self.settings.quiet_frames * FRAME_SECONDS:
                # The socket joined mid-stream, maybe mid-burst: this is no marker onset.
                connection.last_large = sequence
        else:
            step = (sequence - last) % UINT32_MODULO
            if step == 0 or step >= HALF_UINT32:
                connection.out_of_order += 1
                return
            if step > 1:
                connection.jumps += 1
                connection.skipped += step - 1
        connection.last_sequence = sequence
        if len(message) - HEADER_BYTES >= self.settings.marker_bytes:
            previous = connection.last_large
            if (
                previous is None
                or (sequence - previous) % UINT32_MODULO > self.settings.quiet_frames
            ):
                self.markers[sequence].append(now)
            connection.last_large = sequence


# Mix frames come every 20 ms (two at a time every 40 ms when bundled): a longer wait is a gap.
GAP_SECONDS = 0.045
RECONNECT_FIRST = 0.5
RECONNECT_MAX = 4.0


async def listen(state: WorkerState, token: str, open_at: float, end_at: float) -> None:
    settings = state.settings
    connection = Connection()
    state.connections.append(connection)
    await asyncio.sleep(max(0.0, open_at - time.time()))
    closed_at: float | None = None  # when the server last dropped it (reconnecting since)
    backoff = RECONNECT_FIRST
    while True:
        started = time.time()
        socket, error = await _open(settings, token)
        if socket is None:
            if closed_at is None:
                connection.error = error  # it never opened
                return
            connection.reconnect_failures += 1
            if time.time() + backoff >= end_at:
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RECONNECT_MAX)
            continue
        opened = time.time()
        if closed_at is None:
            connection.opened_at = opened
            connection.connect_seconds = opened - started
        else:
            connection.reconnects.append((closed_at, opened))
            connection.last_sequence = connection.last_large = None  # a new stream
        state.timeline.append((opened, 1))
        dropped = await _receive(state, connection, socket, end_at)
        if not (dropped and settings.reconnect and time.time() < end_at):
            return
        closed_at, backoff = time.time(), RECONNECT_FIRST
        # Spread the herd: every listener of a dead server comes back at once otherwise.
        await asyncio.sleep(random.uniform(0.0, RECONNECT_FIRST))


async def _open(settings: Settings, token: str):
    """(the socket after its snapshot, None) or (None, why it did not open)."""
    socket = None
    try:
        async with asyncio.timeout(settings.connect_timeout):
            url = space_socket_url(settings.url, settings.space)
            headers = {"Authorization": f"Token {token}"}
            if token.startswith("ticket:"):  # a join ticket (bench_fanout.ticket_files)
                url, headers = f"{url}?ticket={token.removeprefix('ticket:')}", {}
            socket = await connect(
                url,
                additional_headers=headers,
                compression=None,
                ping_interval=None,  # the server pings; answering is all a listener needs
                open_timeout=None,
                max_size=1 << 16,
            )
            await socket.recv()  # the snapshot; a refusal closes instead
    except ConnectionClosed as closed:
        code, reason = (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (1006, "")
        return None, f"{code} {reason}".strip()
    except Exception as error:  # refused handshakes, timeouts, resets: each is a result
        if socket is not None:
            await _close(socket)
        return None, f"{type(error).__name__}: {error}".strip(": ")
    return socket, None


async def _receive(state: WorkerState, connection: Connection, socket, end_at: float) -> bool:
    """Count frames until the end of the run (False) or until the server drops it (True)."""
    watch = f'"{state.settings.watch}"' if state.settings.watch else None
    try:
        async with asyncio.timeout(max(0.0, end_at - time.time())):
            async for message in socket:
                if type(message) is bytes:
                    state.on_message(connection, message)
                elif watch is not None and watch in message:
                    connection.watched.append(time.time())
        code, reason = socket.close_code, socket.close_reason or ""
    except ConnectionClosed:
        code, reason = socket.close_code, socket.close_reason or ""
    except TimeoutError:
        return False  # the end of the run
    finally:
        state.timeline.append((time.time(), -1))
        await _close(socket)
    connection.closed = f"{code} {reason}".strip()
    if state.settings.timeline:
        connection.closes.append((time.time(), code))
    # 4xxx: the server refused or ended the member on purpose (docs/protocol.md), as browsers
    # take it: no coming back. Anything else is an outage worth reconnecting after.
    return code is None or code < 4000


async def _close(socket) -> None:
    try:
        async with asyncio.timeout(5):
            await socket.close()
    except (TimeoutError, OSError):
        pass


async def worker_main(settings: Settings, jobs, end_at: float, stop) -> dict:
    state = WorkerState(settings)
    tasks = [asyncio.create_task(listen(state, token, at, end_at)) for token, at in jobs]
    everything = asyncio.gather(*tasks, return_exceptions=True)
    while not everything.done():
        if stop.is_set():
            for task in tasks:
                task.cancel()
        await asyncio.wait([everything], timeout=0.2)
    return {
        "connections": [
            {key: getattr(c, key) for key in Connection.__slots__} for c in state.connections
        ],
        "per_second": dict(state.per_second),
        "ticks": state.ticks,
        "markers": dict(state.markers),
        "timeline": state.timeline,
    }


def worker_process(settings: Settings, jobs, end_at: float, stop, pipe) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    raise_file_limit(len(jobs))
    pipe.send(asyncio.run(worker_main(settings, jobs, end_at, stop)))
    pipe.close()


def raise_file_limit(sockets: int) -> None:
    try:
        import resource
    except ImportError:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = sockets + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))


# --- the summary -------------------------------------------------------------------------------


def quantiles(values: list[float], *qs: float) -> list[float | None]:
    if not values:
        return [None for _ in qs]
    ordered = sorted(values)
    return [ordered[min(len(ordered) - 1, math.floor(q * len(ordered)))] for q in qs]


def open_count_at(timeline: list[tuple[float, int]], times: list[float]) -> list[int]:
    """How many sockets were open at each of ``times`` (sorted ascending)."""
    counts, open_now, index = [], 0, 0
    for at in times:
        while index < len(timeline) and timeline[index][0] <= at:
            open_now += timeline[index][1]
            index += 1
        counts.append(open_now)
    return counts


def summarize(settings: Settings, args, results: list[dict], started: float) -> dict:
    connections = [c for result in results for c in result["connections"]]
    timeline = sorted(event for result in results for event in result["timeline"])
    opened = [c for c in connections if c["error"] is None]
    errors: dict[str, int] = defaultdict(int)
    for c in connections:
        if c["error"] is not None:
            errors[c["error"]] += 1
    connect_times = [c["connect_seconds"] for c in opened]
    last_open = max((at for at, delta in timeline if delta > 0), default=started)
    end = max((at for at, _ in timeline), default=started)
    window_start, window_end = last_open + 1.0, end - 1.0

    ticks: dict[int, list] = {}
    for result in results:
        for sequence, (receivers, first) in result["ticks"].items():
            tick = ticks.setdefault(int(sequence), [0, first])
            tick[0] += receivers
            tick[1] = min(tick[1], first)
    steady = sorted(
        (first, receivers) for receivers, first in ticks.values()
        if window_start <= first <= window_end
    )  # fmt: skip
    expected = open_count_at(timeline, [first for first, _ in steady])
    delivered = sum(receivers for _, receivers in steady)

    per_second: dict[int, int] = defaultdict(int)
    for result in results:
        for second, frames in result["per_second"].items():
            per_second[int(second)] += frames
    seconds = sorted(per_second)
    open_per_second = open_count_at(timeline, [second + 1 for second in seconds])

    markers: dict[int, list[float]] = defaultdict(list)
    for result in results:
        for sequence, times in result["markers"].items():
            markers[int(sequence)].extend(times)
    if args.raw_markers:
        with open(args.raw_markers, "w") as raw:
            for sequence in sorted(markers, key=lambda s: min(markers[s])):
                raw.write(json.dumps({"sequence": sequence, "times": sorted(markers[sequence])}))
                raw.write("\n")

    frames = [c["frames"] for c in opened]
    # Each socket's longest gap between mix frames inside the steady window (0: none longer
    # than GAP_SECONDS).
    longest_gaps = [
        max((gap for at, gap in c["gaps"] if window_start <= at <= window_end), default=0.0)
        for c in opened
    ]
    g50, g95, gmax = quantiles(longest_gaps, 0.5, 0.95, 1.0)
    returns = [back - gone for c in opened for gone, back in c["reconnects"]]
    r50, r95, rmax = quantiles(returns, 0.5, 0.95, 1.0)
    p50, p95, cmax = quantiles(connect_times, 0.5, 0.95, 1.0)
    fmin, f50, fmax = quantiles(frames, 0.0, 0.5, 1.0)
    return {
        "url": settings.url,
        "space": settings.space,
        "processes": args.processes,
        "connections": {
            "requested": len(connections),
            "opened": len(opened),
            "failed": len(connections) - len(opened),
            "closed_early": sum(1 for c in opened if c["closed"] is not None),
            "errors": dict(errors),
            "closes": dict(_count(c["closed"] for c in opened if c["closed"] is not None)),
            "connect_seconds": {"p50": _round(p50), "p95": _round(p95), "max": _round(cmax)},
            "reconnected": sum(1 for c in opened if c["reconnects"]),
            "reconnects": len(returns),
            "reconnect_failures": sum(c["reconnect_failures"] for c in opened),
            "reconnect_seconds": {"p50": _round(r50), "p95": _round(r95), "max": _round(rmax)},
        },
        "window": {
            "start": window_start,
            "end": window_end,
            "seconds": round(max(0.0, window_end - window_start), 3),
        },
        "frames": {
            "received": sum(frames),
            "bytes": sum(c["bytes"] for c in opened),
            "jumps": sum(c["jumps"] for c in opened),
            "skipped": sum(c["skipped"] for c in opened),
            "out_of_order": sum(c["out_of_order"] for c in opened),
            "invalid": sum(c["invalid"] for c in opened),
            "per_connection": {"min": fmin, "p50": f50, "max": fmax},
            "longest_gap_seconds": {"p50": _round(g50), "p95": _round(g95), "max": _round(gmax)},
        },
        "ticks": {
            "seen": len(steady),
            "expected": sum(expected),
            "delivered": delivered,
            "undelivered": sum(max(0, e - r) for e, (_, r) in zip(expected, steady, strict=True)),
            "fully_delivered": sum(1 for e, (_, r) in zip(expected, steady, strict=True) if r >= e),
        },
        "per_second": [
            {"t": second, "frames": per_second[second], "open": open_now}
            for second, open_now in zip(seconds, open_per_second, strict=True)
        ],
        "markers": [
            {
                "sequence": sequence,
                "receivers": len(times),
                **dict(
                    zip(
                        ("first", "p50", "p95", "p99", "last"),
                        quantiles(times, 0.0, 0.5, 0.95, 0.99, 1.0),
                        strict=True,
                    )
                ),
            }
            for sequence, times in sorted(markers.items(), key=lambda item: min(item[1]))
        ],
        "settings": {
            "marker_bytes": settings.marker_bytes,
            "quiet_frames": settings.quiet_frames,
            "ramp": args.ramp,
            "seconds": args.seconds,
        },
    }


def _count(values) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for value in values:
        counts[value] += 1
    return counts


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


# --- command line ------------------------------------------------------------------------------


def read_tokens(path: str) -> list[str]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    if text.lstrip().startswith("["):
        return [str(token) for token in json.loads(text)]
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the Salon server")
    parser.add_argument("--space", type=int, required=True)
    parser.add_argument(
        "--tokens", required=True, help="file of API tokens, one per line or a JSON list; - = stdin"
    )
    parser.add_argument("--connections", type=int, help="default: one per token")
    parser.add_argument("--processes", type=int, help="default: one per 500 sockets, up to CPUs")
    parser.add_argument("--ramp", type=float, default=200.0, help="sockets opened per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="hold after the last opened")
    parser.add_argument(
        "--start-at", type=float, help="Unix time to start opening (default: in 1 s)"
    )
    parser.add_argument("--marker-bytes", type=int, default=110)
    parser.add_argument("--quiet-frames", type=int, default=10)
    parser.add_argument("--connect-timeout", type=float, default=30.0)
    parser.add_argument("--raw-markers", help="write every marker receive time (JSON lines)")
    parser.add_argument(
        "--reconnect", action="store_true", help="reopen sockets the server drops (not 4xxx)"
    )
    parser.add_argument(
        "--timeline",
        help="write each connection's frames per second, closes and returns (JSON list)",
    )
    parser.add_argument("--watch", help="with --timeline: keep when events of this type arrive")
    args = parser.parse_args(argv)
    tokens = read_tokens(args.tokens)
    args.connections = args.connections or len(tokens)
    if args.connections > len(tokens):
        parser.error(f"{args.connections} connections but only {len(tokens)} tokens")
    args.tokens = tokens[: args.connections]
    if args.processes is None:
        args.processes = max(1, min(os.cpu_count() or 1, math.ceil(args.connections / 500)))
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    settings = Settings(
        url=args.url,
        space=args.space,
        marker_bytes=args.marker_bytes,
        quiet_frames=args.quiet_frames,
        connect_timeout=args.connect_timeout,
        reconnect=args.reconnect,
        timeline=bool(args.timeline),
        watch=args.watch,
    )
    # Startup of the worker processes (imports) fits in the default second.
    start_at = args.start_at or time.time() + 1.0
    end_at = start_at + args.connections / args.ramp + args.seconds
    # Socket i opens at start + i / ramp; interleaved over workers, so the total ramp is even.
    jobs = [[] for _ in range(args.processes)]
    for index, token in enumerate(args.tokens):
        jobs[index % args.processes].append((token, start_at + index / args.ramp))
    context = multiprocessing.get_context("spawn")
    stop = context.Event()

    def request_stop(signum, frame):
        print("stopping: closing the sockets", file=sys.stderr)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    print(
        f"{args.connections} listeners on space {args.space} in {args.processes} processes, "
        f"{args.ramp:g}/s, holding until {time.strftime('%H:%M:%S', time.localtime(end_at))}",
        file=sys.stderr,
    )
    if args.processes == 1:
        raise_file_limit(args.connections)
        results = [asyncio.run(worker_main(settings, jobs[0], end_at, stop))]
    else:
        results = run_workers(context, settings, jobs, end_at, stop)
    summary = summarize(settings, args, results, start_at)
    if args.timeline:
        write_timeline(args.timeline, results)
    connections = summary["connections"]
    print(
        f"opened {connections['opened']}/{connections['requested']}, "
        f"{summary['frames']['received']} frames, {len(summary['markers'])} markers",
        file=sys.stderr,
    )
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")


def write_timeline(path: str, results: list[dict]) -> None:
    keys = ("opened_at", "error", "bins", "closes", "reconnects", "watched")
    with open(path, "w") as out:
        json.dump(
            [{key: c[key] for key in keys} for result in results for c in result["connections"]],
            out,
        )


def run_workers(context, settings, jobs, end_at, stop) -> list[dict]:
    workers = []
    for worker_jobs in jobs:
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=worker_process, args=(settings, worker_jobs, end_at, stop, sender)
        )
        process.start()
        sender.close()
        workers.append((process, receiver))
    results = []
    for process, receiver in workers:
        try:
            results.append(receiver.recv())
        except EOFError:
            print(f"worker {process.pid} died (exit {process.exitcode})", file=sys.stderr)
        process.join()
    return results


if __name__ == "__main__":
    main()
