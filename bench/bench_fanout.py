"""Fan-out benchmark: one room, one speaker, hundreds to thousands of websocket listeners.

Run: .venv/bin/python bench/bench_fanout.py [--quick] [--sizes 500,1000,2000] [--seconds 20]
                                            [--processes 1,2] [--lag-seconds 60] [--profile]

What it does, for each number of daphne processes and each room size:

1. Seeds a throwaway PostgreSQL (tests/services.py, with Redis) through the services: a host,
   N listener members with API tokens (``accounts.services.auth_token_issue``) and a live open
   space (``spaces.services.space_create``). With ``--join ticket`` (the default, as the page
   and ``SpaceClient`` join) each listener joins with a join ticket issued just before the run
   (a lite socket, spaces/live/relay.py); ``--join token`` with its token, as before.
2. Runs ``manage.py serve`` (real mode: PostgreSQL, Redis bus, ``DJANGO_DEBUG=0``) once per
   process; the host speaks on the first process, the listeners are split evenly over all.
3. The speaker (in this process) unmutes and streams room tone with a loud 40 ms burst every
   300 ms. The gap between bursts (260 ms) is shorter than the talk detector's 300 ms
   hangover, so the speaker never stops talking: the room never goes quiet (room DTX would
   send nothing) and every listener should get 50 frames a second, and the mix never drops to
   digital silence, a transient the speech mode's encoder (application "audio") codes in a
   packet as large as a burst's (with 400 ms it did, just before each burst, and the marker
   came one frame early). At the speech mode's mix settings the burst's Opus packets are
   125-160 bytes, the room tone's 65-85, which is what ``bench/listeners.py`` detects as a
   marker.
4. ``bench/listeners.py`` (its own processes) holds the listeners for ``--seconds`` plus the
   ramp's length again, so joins that fall behind still leave a steady window (it starts 1 s
   after the last socket opened); its JSON summary and raw
   marker times give delivered frames, per-tick losses and marker receive times. Latency =
   marker receive time - the send time of the latest burst before it (both ``time.time()`` on
   this host): it includes the speaker's jitter buffer (>= 1 frame), the wait for the next
   mixer tick, the encode, the Redis round trip and the write. Above 300 ms it would alias.
   It also includes the load generator's own queueing: one listeners.py process reads hundreds
   of sockets, and the last one it gets to may read a frame 15-20 ms after the first (the bare
   server's latency shows the same). So ``--probes`` (8) of the N listeners per server are
   *probes*: a listeners.py of their own, opening evenly through the ramp (so they sit all
   along the server's send order) and otherwise idle, so they read a frame as it lands. Their
   marker latency is the **server-added latency** the target is about; the crowd's is printed
   next to it as end-to-end latency. Both count from ``SETTLE_SECONDS`` (5) after the last
   socket opened: during a join wave the speaker's frames wait behind handshakes and database
   joins on the event loop, the jitter buffer grows to absorb that, and it gives the delay
   back within seconds of the wave's end; the wave's own latency is printed on its own line.
5. Server CPU is utime + stime of the daphne processes from /proc/<pid>/stat over the
   listeners' steady window. Listeners per CPU-core-second = delivered listener-frames per
   second / 50 / cores used.
6. Baseline in the same run: a bare ``websockets`` (asyncio) server per process (this file with
   ``--role bare-server``) that broadcasts 20 ms frames of the same sizes, with the same
   burst pattern, with ``websockets.broadcast()``, to the same listeners.py, measured the same
   way (its latency is receive time - the broadcast call of the burst's first frame).
7. Lag growth: marker latency per 10 s window, for every size; the largest runs ``--lag-seconds``
   (60).

Targets (issue 17, one live process): server-added (probe) p95 <= 20 ms at 500 listeners and
<= 40 ms at 1,000, flat per 10 s window over 60 s; no more lost than bare; listeners per
CPU-core-second >= 1.0 x the bare broadcast, unbundled; memory <= 25 KiB per listener (the
servers' resident memory at its highest with the listeners in, less before they came, per
socket opened), given back when they leave (the share of that growth gone once they have).

Everything listens on 127.0.0.1. Every process this bench starts is stopped when it ends, fails
or is interrupted. ``--profile`` runs each daphne under cProfile (it slows it down: its figures
are not comparable) and prints where the event loop thread spends its time.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import math
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Imported after the path fix, so the benchmark runs without installing the project.
from spaces.audio import FRAME_SAMPLES, FRAME_SECONDS, FrameKind, OpusEncoder, pack  # noqa: E402
from spaces.audio.wire import HEADER  # noqa: E402

FRAMES_PER_SECOND = round(1 / FRAME_SECONDS)
# One loud burst of BURST_FRAMES frames every BURST_PERIOD frames (see the module docstring).
BURST_PERIOD = 15
BURST_FRAMES = 2
# The bare server's payloads: what the mixer's encoder makes of room tone and of the burst.
BARE_QUIET_BYTES = 68
BARE_BURST_BYTES = 146
LATENCY_WINDOW = 10.0
# Latency is measured from this long after the last socket opened: a join wave (50 handshakes,
# database joins and snapshots a second) delays a speaker's frames on the event loop, the
# jitter buffer grows to absorb it and gives it back within seconds of the wave's end. The
# wave's own latency is printed on its own line.
SETTLE_SECONDS = 5.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PYTHON = sys.executable


# --- processes --------------------------------------------------------------------------------

_children: list[subprocess.Popen] = []


def spawn(args: list[str], *, log: Path, env: dict | None = None, stdout=None) -> subprocess.Popen:
    """A child process that :func:`stop_children` ends however the bench ends."""
    with open(log, "ab") as log_file:
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=stdout if stdout is not None else log_file,
            stderr=log_file,
        )
    _children.append(process)
    return process


def stop_process(process: subprocess.Popen, *, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stop_children() -> None:
    while _children:
        stop_process(_children.pop())


def free_port() -> int:
    from tests.services import free_port as port

    return port()


def wait_for_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited at start:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} not up within {timeout} s:\n{log.read_text(errors='replace')}")


@dataclass
class Server:
    kind: str  # "salon" or "bare"
    url: str
    process: subprocess.Popen
    log: Path
    profile: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid


def start_salon(
    workdir: Path,
    *,
    profile: bool,
    bundle_from: int = 0,
    port: int | None = None,
    role: str = "all",
) -> Server:
    port = port or free_port()
    log = workdir / f"daphne-{port}.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "0",
        "PYTHONUNBUFFERED": "1",
        "SALON_TASKS_SYNCHRONOUS": "0",
        "SALON_SPACE_CAPACITY": "100000",
        "SALON_AUDIO_BUNDLE_FROM": str(bundle_from),
        "SALON_LOG_LEVEL": os.environ.get("SALON_LOG_LEVEL", "WARNING"),
    }
    args = [PYTHON]
    profile_path = None
    if profile:
        profile_path = workdir / f"daphne-{port}.prof"
        args += ["-m", "cProfile", "-o", str(profile_path)]
    args += ["manage.py", "serve", "--port", str(port), "--role", role]
    process = spawn(args, log=log, env=env)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/healthz", process, log)
    return Server("salon", url, process, log, profile_path)


def start_bare(workdir: Path, *, seconds: float) -> tuple[Server, Path]:
    port = free_port()
    log = workdir / f"bare-{port}.log"
    marks = workdir / f"bare-{port}.marks"
    args = [PYTHON, __file__, "--role", "bare-server", "--port", str(port)]
    args += ["--seconds", str(seconds), "--marks", str(marks)]
    process = spawn(args, log=log)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/healthz", process, log)
    return Server("bare", url, process, log), marks


def stop_salon(server: Server) -> None:
    # SIGINT lets daphne stop its reactor and cProfile write its file; SIGTERM otherwise.
    stop_process(server.process, sig=signal.SIGINT if server.profile else signal.SIGTERM)
    with contextlib.suppress(ValueError):
        _children.remove(server.process)


# --- the bare websockets broadcast server (--role bare-server) ---------------------------------


async def bare_server(port: int, seconds: float, marks_path: Path) -> None:
    """Broadcast 20 ms frames to every socket; the burst pattern and sizes of the Salon run."""
    from websockets.asyncio.server import broadcast, serve

    clients: set = set()

    async def handler(socket) -> None:
        await socket.send("{}")  # listeners.py waits for a first message (Salon's snapshot)
        clients.add(socket)
        try:
            await socket.wait_closed()
        finally:
            clients.discard(socket)

    def health(connection, request):
        if request.path == "/healthz":
            return connection.respond(200, "ok\n")
        return None

    quiet, burst = bytes(BARE_QUIET_BYTES), bytes([0xFC]) * BARE_BURST_BYTES
    async with serve(
        handler,
        "127.0.0.1",
        port,
        compression=None,
        max_size=1 << 16,
        ping_interval=20,  # daphne's, as `manage.py serve` sets it
        ping_timeout=30,
        process_request=health,
    ):
        loop = asyncio.get_running_loop()
        start = loop.time()
        end = start + seconds
        tick = 0
        with open(marks_path, "w") as marks:
            while loop.time() < end:
                due = start + tick * FRAME_SECONDS
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -10 * FRAME_SECONDS:
                    # Like the mixer's clock: a stalled loop skips ticks rather than bursting.
                    tick = math.floor((loop.time() - start) / FRAME_SECONDS)
                phase = tick % BURST_PERIOD
                message = HEADER.pack(
                    int(FrameKind.ROOM_MIX), 0, tick, (tick * FRAME_SAMPLES) % (1 << 32)
                ) + (burst if phase < BURST_FRAMES else quiet)
                if phase == 0:
                    marks.write(f"{time.time()!r}\n")
                    marks.flush()
                broadcast(clients, message)
                tick += 1


# --- the speaker ------------------------------------------------------------------------------


def speaker_pcm(index: int, rng: np.random.Generator) -> np.ndarray:
    """Near-silent room tone (about -90 dBFS) or a loud noise burst. The talk detector's
    hangover (300 ms) outlasts the gap between bursts, so the mixer keeps summing the room
    tone; its packets must stay clearly smaller than the burst's for the marker detector."""
    if index % BURST_PERIOD < BURST_FRAMES:
        return np.clip(rng.normal(0, 8000, FRAME_SAMPLES), -32768, 32767).astype(np.int16)
    return rng.normal(0, 1, FRAME_SAMPLES).astype(np.int16)


@dataclass
class SpeakerReport:
    bursts: list[float] = field(default_factory=list)  # time.time() of each burst's first frame
    frames: int = 0
    stalls: int = 0
    max_lateness: float = 0.0
    error: str | None = None


async def speak(
    url: str,
    space_id: int,
    token: str,
    user_id: int,
    stop: asyncio.Event,
    ready: asyncio.Event,
    report: SpeakerReport,
) -> None:
    """Unmute the host and stream the burst pattern on 20 ms deadlines until ``stop``."""
    from websockets.asyncio.client import connect

    from salon_client.client import Pacer, space_socket_url

    async with connect(
        space_socket_url(url, space_id),
        additional_headers={"Authorization": f"Token {token}"},
        compression=None,
        max_size=1 << 20,
    ) as socket:
        await socket.recv()  # the snapshot
        await socket.send(json.dumps({"type": "mute.set", "muted": False}))
        async with asyncio.timeout(10):
            while True:
                message = await socket.recv()
                if isinstance(message, str):
                    event = json.loads(message)
                    if event.get("type") == "mute.changed" and event.get("user_id") == user_id:
                        break

        async def drain() -> None:  # the mix-minus and events must not fill the socket
            async for _message in socket:
                pass

        drainer = asyncio.create_task(drain())
        encoder, rng, pacer = OpusEncoder(), np.random.default_rng(7), Pacer()
        ready.set()
        index = 0
        try:
            while not stop.is_set():
                pcm = speaker_pcm(index, rng)
                payload = encoder.encode(pcm)
                message = pack(
                    FrameKind.SPEAKER_AUDIO,
                    index % (1 << 32),
                    (index * FRAME_SAMPLES) % (1 << 32),
                    payload,
                    voice_activity=index % BURST_PERIOD < BURST_FRAMES,
                )
                await pacer.wait()
                if index % BURST_PERIOD == 0:
                    report.bursts.append(time.time())
                await socket.send(message)
                index += 1
        finally:
            report.frames, report.stalls = index, pacer.stalls
            report.max_lateness = pacer.max_lateness
            drainer.cancel()


# --- measuring --------------------------------------------------------------------------------


def process_cpu_ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def process_rss_kib(pid: int) -> int:
    """Resident memory of a process, KiB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def find_pid(name: str, port: int) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if name in command and str(port) in command:
            return int(entry.name)
    return None


@dataclass
class CpuSampler:
    pids: dict[str, int]  # label → pid
    samples: list[tuple[float, dict[str, int], tuple[int, int]]] = field(default_factory=list)
    # Resident memory of the servers (not Redis), summed, KiB: the highest seen.
    rss_peak: int = 0

    def servers_rss(self) -> int:
        return sum(process_rss_kib(pid) for label, pid in self.pids.items() if label != "redis")

    def sample(self) -> None:
        ticks = {label: process_cpu_ticks(pid) or 0 for label, pid in self.pids.items()}
        self.samples.append((time.time(), ticks, machine_ticks()))
        self.rss_peak = max(self.rss_peak, self.servers_rss())

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
        self.sample()

    def _at(self, at: float, value) -> float:
        times = [t for t, _, _ in self.samples]
        index = min(max(bisect.bisect_left(times, at), 1), len(times) - 1)
        (t0, *a), (t1, *b) = self.samples[index - 1], self.samples[index]
        v0, v1 = value(*a), value(*b)
        return v0 + (v1 - v0) * min(max((at - t0) / max(t1 - t0, 1e-9), 0.0), 1.0)

    def cpu_seconds(self, labels, start: float, end: float) -> float:
        def value(ticks, _machine):
            return sum(ticks[label] for label in labels)

        return (self._at(end, value) - self._at(start, value)) / CLOCK_TICKS

    def machine_busy_cores(self, start: float, end: float) -> float:
        busy = self._at(end, lambda _t, m: m[0]) - self._at(start, lambda _t, m: m[0])
        total = self._at(end, lambda _t, m: m[1]) - self._at(start, lambda _t, m: m[1])
        return (os.cpu_count() or 1) * busy / total if total else 0.0


async def run_listeners(
    servers: list[Server],
    space_id: int,
    token_files: list[Path],
    probe_files: list[Path],
    seconds: float,
    ramp: float,
    workdir: Path,
    tag: str,
) -> list[dict]:
    """Per server, one listeners.py for the crowd and one for the probes, all ramping together
    and ending together; their JSON summaries and marker files (``probe`` says which)."""
    start_at = time.time() + 2.0
    cpus = os.cpu_count() or 1
    counts = [
        (len(crowd.read_text().split()), len(probes.read_text().split()))
        for crowd, probes in zip(token_files, probe_files, strict=True)
    ]
    ramp_seconds = sum(crowd + probes for crowd, probes in counts) / ramp
    # Hold for ``seconds`` plus the ramp's own length: joins that fall behind the ramp (a busy
    # server) still leave a steady window, which starts once the last socket is open.
    hold = seconds + ramp_seconds
    jobs = []
    for index, (server, (count, probes)) in enumerate(zip(servers, counts, strict=True)):
        workers = max(1, min(math.ceil(count / 500), cpus // len(servers) or 1))
        jobs.append((index, server, token_files[index], workers, count / ramp_seconds, False))
        if probes:
            jobs.append((index, server, probe_files[index], 1, probes / ramp_seconds, True))
    runs = []
    for index, server, tokens, workers, job_ramp, probe in jobs:
        name = f"{tag}-{index}" + ("-probes" if probe else "")
        raw = workdir / f"{name}.markers"
        args = [
            PYTHON,
            str(ROOT / "bench" / "listeners.py"),
            "--url",
            server.url,
            "--space",
            str(space_id),
            "--tokens",
            str(tokens),
            "--processes",
            str(workers),
            "--ramp",
            f"{job_ramp:g}",
            "--seconds",
            f"{hold:g}",
            "--start-at",
            repr(start_at),
            "--raw-markers",
            str(raw),
        ]
        log = workdir / f"{name}.listeners.log"
        out = workdir / f"{name}.json"
        with open(out, "wb") as stdout:
            process = spawn(args, log=log, stdout=stdout)
        runs.append((process, out, raw, log, index, probe))
    results = []
    for process, out, raw, log, index, probe in runs:
        while process.poll() is None:
            await asyncio.sleep(0.2)
        _children.remove(process)
        if process.returncode != 0:
            raise RuntimeError(f"listeners.py failed:\n{log.read_text(errors='replace')[-3000:]}")
        summary = json.loads(out.read_text())
        results.append({"summary": summary, "raw": raw, "server": index, "probe": probe})
    return results


@dataclass
class Result:
    kind: str
    size: int
    processes: int
    opened: int = 0
    failed: int = 0
    window: float = 0.0
    delivered_per_second: float = 0.0
    lost: int = 0
    lost_share: float = 0.0
    undelivered: int = 0
    server_cores: float = 0.0
    redis_cores: float = 0.0
    machine_cores: float = 0.0
    listeners_per_core: float = 0.0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    # The same from the probes only: server-added latency (module docstring, step 4).
    srv_p50: float | None = None
    srv_p95: float | None = None
    srv_p99: float | None = None
    # Server-added latency from the first socket's open until the settle (SETTLE_SECONDS).
    wave_seconds: float = 0.0
    wave_srv_p95: float | None = None
    wave_srv_max: float | None = None
    markers: int = 0
    mean_bytes: float = 0.0
    # Server memory (KiB, all its processes): before the listeners, at the highest while they
    # were in, and once they had all left.
    rss_before: int = 0
    rss_peak: int = 0
    rss_after: int = 0
    lag: list[tuple[float, float, float, int]] = field(default_factory=list)
    srv_lag: list[tuple[float, float, float, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.floor(q * len(ordered)))]


def analyse(
    result: Result,
    runs: list[tuple[dict, list[float]]],
    sampler: CpuSampler,
    server_labels: list[str],
) -> None:
    """Fill ``result`` from listeners.py runs, each with the burst send times of its server."""
    summaries = [run["summary"] for run, _ in runs]
    start = max(s["window"]["start"] for s in summaries)
    end = min(s["window"]["end"] for s in summaries)
    if end - start < 1.0:
        # Joins so slow that the last socket opened after the hold ended: nothing steady.
        result.notes.append("no steady window (sockets still opening at the end)")
        for s in summaries:
            result.opened += s["connections"]["opened"]
            result.notes.append(f"connect seconds {s['connections']['connect_seconds']}")
        return
    window = end - start
    result.window = window
    result.opened = sum(s["connections"]["opened"] for s in summaries)
    result.failed = sum(s["connections"]["failed"] for s in summaries)
    for s in summaries:
        for error, count in {**s["connections"]["errors"], **s["connections"]["closes"]}.items():
            result.notes.append(f"{count} x {error}")
        result.notes.append(f"connect seconds {s['connections']['connect_seconds']}")
    # Delivered per second over the common window, from the per-second counts (whole seconds).
    frames = 0
    for s in summaries:
        frames += sum(p["frames"] for p in s["per_second"] if start <= p["t"] and p["t"] + 1 <= end)
    whole_seconds = max(1, math.floor(end) - math.ceil(start))
    result.delivered_per_second = frames / whole_seconds
    expected = FRAMES_PER_SECOND * result.opened * whole_seconds
    result.lost = max(0, expected - frames)
    result.lost_share = result.lost / expected if expected else 0.0
    result.undelivered = sum(s["ticks"]["undelivered"] for s in summaries)
    received = sum(s["frames"]["received"] for s in summaries)
    result.mean_bytes = sum(s["frames"]["bytes"] for s in summaries) / max(received, 1)

    server_cpu = sampler.cpu_seconds(server_labels, start, end)
    result.server_cores = server_cpu / window
    if "redis" in sampler.pids:
        result.redis_cores = sampler.cpu_seconds(["redis"], start, end) / window
    result.machine_cores = sampler.machine_busy_cores(start, end)
    listeners_served = result.delivered_per_second / FRAMES_PER_SECOND
    result.listeners_per_core = listeners_served / result.server_cores if server_cpu else 0.0

    # Latency: every marker receive time against the latest burst its server sent before the
    # marker's first receive time (bare servers each keep their own clock).
    pooled: dict[bool, list[float]] = {False: [], True: []}
    by_window: dict[bool, dict[int, list[float]]] = {False: {}, True: {}}
    settled = start + SETTLE_SECONDS
    wave: list[float] = []
    first_sent = settled
    for run, bursts in runs:
        probe = run["probe"]
        with open(run["raw"]) as raw:
            for line in raw:
                times = json.loads(line)["times"]
                index = bisect.bisect_right(bursts, min(times)) - 1
                if index < 0 or bursts[index] > end:
                    continue
                sent = bursts[index]
                latencies = [t - sent for t in times]
                if sent < settled:
                    if probe:
                        wave.extend(latencies)
                        first_sent = min(first_sent, sent)
                    continue
                result.markers += not probe
                slot = int((sent - settled) // LATENCY_WINDOW)
                for everyone in {False, probe}:  # the crowd's figures include the probes
                    pooled[everyone].extend(latencies)
                    by_window[everyone].setdefault(slot, []).extend(latencies)
    if wave:
        result.wave_seconds = settled - first_sent
        result.wave_srv_p95, result.wave_srv_max = percentile(wave, 0.95), max(wave)
    quantiles = (0.5, 0.95, 0.99)
    result.p50, result.p95, result.p99 = (percentile(pooled[False], q) for q in quantiles)
    result.srv_p50, result.srv_p95, result.srv_p99 = (
        percentile(pooled[True], q) for q in quantiles
    )
    result.lag, result.srv_lag = (
        [
            (slot * LATENCY_WINDOW, percentile(v, 0.5), percentile(v, 0.95), len(v))
            for slot, v in sorted(by_window[probe].items())
        ]
        for probe in (False, True)
    )


# --- one measurement --------------------------------------------------------------------------


async def settled_rss(sampler: CpuSampler, *, quiet: float = 2.0, limit: float = 20.0) -> int:
    """The servers' memory once the listeners have gone: polled until it has not fallen for
    ``quiet`` seconds (the servers are still closing sockets and freeing them)."""
    lowest, since, deadline = sampler.servers_rss(), time.monotonic(), time.monotonic() + limit
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        now = sampler.servers_rss()
        if now < lowest - 256:
            lowest, since = now, time.monotonic()
        lowest = min(lowest, now)
    return lowest


async def measure(
    kind: str,
    servers: list[Server],
    *,
    space_id: int,
    token_files: list[Path],
    probe_files: list[Path],
    host_token: str | None,
    host_id: int | None,
    seconds: float,
    ramp: float,
    workdir: Path,
    redis_pid: int | None,
    bare_marks: list[Path] | None,
    size: int,
) -> Result:
    result = Result(kind, size, len(servers))
    pids = {f"server{i}": server.pid for i, server in enumerate(servers)}
    if redis_pid is not None and kind == "salon":
        pids["redis"] = redis_pid
    sampler = CpuSampler(pids)
    rss_before = sampler.servers_rss()
    stop, ready = asyncio.Event(), asyncio.Event()
    report = SpeakerReport()
    sampling = asyncio.create_task(sampler.run(stop))
    speaker = None
    try:
        if kind == "salon":
            speaker = asyncio.create_task(
                speak(servers[0].url, space_id, host_token, host_id, stop, ready, report)
            )
            ready_wait = asyncio.create_task(ready.wait())
            await asyncio.wait([speaker, ready_wait], return_when=asyncio.FIRST_COMPLETED)
            if not ready.is_set():
                ready_wait.cancel()
                await speaker  # raises the speaker's failure
        tag = f"{kind}-{size}-p{len(servers)}"
        if kind == "salon":
            rss_before = sampler.servers_rss()  # the speaker in, the room mixing
        runs = await run_listeners(
            servers, space_id, token_files, probe_files, seconds, ramp, workdir, tag
        )
        rss_after = await settled_rss(sampler)
    finally:
        stop.set()
        await sampling
        if speaker is not None:
            try:
                await asyncio.wait_for(speaker, 5)
            except Exception as error:  # the numbers may still be worth printing
                report.error = f"{type(error).__name__}: {error}"
    result.rss_before, result.rss_peak, result.rss_after = rss_before, sampler.rss_peak, rss_after
    labels = [label for label in pids if label != "redis"]
    if kind == "salon":  # kept with the logs, for a closer look at a run
        (workdir / f"salon-{size}-p{len(servers)}.bursts").write_text(
            "\n".join(repr(t) for t in report.bursts) + "\n"
        )
    if kind == "bare":
        marks = [sorted(float(x) for x in path.read_text().split()) for path in bare_marks or []]
        analyse(result, [(run, marks[run["server"]]) for run in runs], sampler, labels)
    else:
        analyse(result, [(run, report.bursts) for run in runs], sampler, labels)
        if report.stalls:
            result.notes.append(f"speaker fell behind {report.stalls} times")
        if report.error:
            result.notes.append(f"speaker: {report.error}")
    return result


# --- Django: seeding through the services -----------------------------------------------------


def setup_django(workdir: Path) -> None:
    import psycopg

    from tests import services

    os.environ["SALON_SPACES_HOSTING_OPEN"] = "1"
    services.start()
    maintenance = os.environ["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    with psycopg.connect(maintenance.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute("CREATE DATABASE salon")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ["SALON_DATA_DIR"] = str(workdir / "data")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


@dataclass
class Members:
    host_id: int
    host_token: str
    tokens: list[str]


def seed_members(count: int) -> Members:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from accounts.services import auth_token_issue

    user_model = get_user_model()
    host = user_model(username="bench-host")
    host.set_unusable_password()
    host.save()
    # Hashing thousands of passwords would take minutes; listeners log in by token anyway.
    listeners = user_model.objects.bulk_create(
        [
            user_model(username=f"bench-{index:05d}", password=make_password(None))
            for index in range(count)
        ]
    )
    tokens = [auth_token_issue(user=user).key for user in listeners]
    return Members(host.pk, auth_token_issue(user=host).key, tokens)


def ticket_files(space_id: int, token_file: Path) -> Path:
    """The members of ``token_file`` as join tickets for ``space_id`` (``ticket:<ticket>``
    lines, which bench/listeners.py opens with ``?ticket=``). Tickets live 60 s: a listener
    that must reconnect later is refused (4411), as listeners.py asks for no new one."""
    from rest_framework.authtoken.models import Token

    from spaces.live.tickets import ticket_issue
    from spaces.models import Space

    space = Space.objects.get(pk=space_id)
    keys = token_file.read_text().split()
    users = {t.key: t.user for t in Token.objects.filter(key__in=keys).select_related("user")}
    path = token_file.with_suffix(".tickets")
    lines = [f"ticket:{ticket_issue(space=space, user=users[key])['ticket']}" for key in keys]
    path.write_text("\n".join(lines) + "\n")
    return path


def space_open(host_id: int, title: str) -> int:
    from django.contrib.auth import get_user_model

    from spaces.services import space_create

    host = get_user_model().objects.get(pk=host_id)
    return space_create(host=host, title=title).pk


def space_close(space_id: int, host_id: int) -> None:
    from django.contrib.auth import get_user_model

    from spaces.models import Space
    from spaces.services import space_end

    space = Space.objects.get(pk=space_id)
    if space.state == Space.State.LIVE:
        space_end(space=space, by=get_user_model().objects.get(pk=host_id))


# --- the run ----------------------------------------------------------------------------------


def split(tokens: list[str], parts: int, workdir: Path, tag: str) -> list[Path]:
    paths = []
    for index in range(parts):
        path = workdir / f"{tag}-{index}.tokens"
        path.write_text("\n".join(tokens[index::parts]) + "\n")
        paths.append(path)
    return paths


def run_all(args, workdir: Path, results: list[Result]) -> None:
    setup_django(workdir)
    members = seed_members(max(args.sizes))
    redis_port = int(os.environ["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    redis_pid = find_pid("redis-server", redis_port)
    largest = max(args.sizes)
    for processes in args.processes:
        for size in args.sizes:
            seconds = args.lag_seconds if size == largest else args.seconds
            probes = min(args.probes * processes, size // 10)
            crowd = size - probes
            tokens = split(members.tokens[:crowd], processes, workdir, f"n{size}-p{processes}")
            probe_tokens = split(
                members.tokens[crowd:size], processes, workdir, f"n{size}-p{processes}-probes"
            )
            # Salon: fresh daphne processes per measurement, so no run inherits another's state.
            servers = [
                start_salon(workdir, profile=args.profile, bundle_from=args.bundle_from)
                for _ in range(processes)
            ]
            space_id = space_open(members.host_id, f"fan-out bench {size} x{processes}")
            if args.join == "ticket":
                # As the page and SpaceClient join: a listener's ticket (a lite socket).
                salon_tokens = [ticket_files(space_id, path) for path in tokens]
                salon_probes = [ticket_files(space_id, path) for path in probe_tokens]
            else:
                salon_tokens, salon_probes = tokens, probe_tokens
            try:
                print(
                    f"  salon: {size} listeners on {processes} process(es), {seconds:g} s ...",
                    flush=True,
                )
                results.append(
                    asyncio.run(
                        measure(
                            "salon",
                            servers,
                            space_id=space_id,
                            token_files=salon_tokens,
                            probe_files=salon_probes,
                            host_token=members.host_token,
                            host_id=members.host_id,
                            seconds=seconds,
                            ramp=args.ramp,
                            workdir=workdir,
                            redis_pid=redis_pid,
                            bare_marks=None,
                            size=size,
                        )
                    )
                )
            finally:
                space_close(space_id, members.host_id)
                for server in servers:
                    stop_salon(server)
            if args.profile:
                for server in servers:
                    print_profile(server)
            # Bare baseline on the same listeners, same split, as long as the listeners stay.
            bare_seconds = args.seconds + 2 * size / args.ramp + 10
            started = [start_bare(workdir, seconds=bare_seconds) for _ in range(processes)]
            try:
                print(
                    f"  bare : {size} listeners on {processes} process(es), {args.seconds:g} s ...",
                    flush=True,
                )
                results.append(
                    asyncio.run(
                        measure(
                            "bare",
                            [s for s, _ in started],
                            space_id=space_id,
                            token_files=tokens,
                            probe_files=probe_tokens,
                            host_token=None,
                            host_id=None,
                            seconds=args.seconds,
                            ramp=args.ramp,
                            workdir=workdir,
                            redis_pid=None,
                            bare_marks=[m for _, m in started],
                            size=size,
                        )
                    )
                )
            finally:
                for server, _ in started:
                    stop_process(server.process)
                    with contextlib.suppress(ValueError):
                        _children.remove(server.process)


def print_profile(server: Server) -> None:
    import pstats

    if server.profile is None or not server.profile.exists():
        print(f"  (no profile written for {server.url})")
        return
    print(f"\n  cProfile of {server.url} (event loop thread), top 25 by own time:")
    stats = pstats.Stats(str(server.profile), stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(25)


def kib_per_listener(r: Result) -> float:
    return (r.rss_peak - r.rss_before) / r.opened if r.opened else 0.0


def given_back(r: Result) -> float:
    grown = r.rss_peak - r.rss_before
    return (r.rss_peak - r.rss_after) / grown if grown > 0 else 1.0


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def report(args, results: list[Result], started: float) -> None:
    print()
    print("Fan-out: one room, one speaker; listeners on 127.0.0.1 (bench/listeners.py)")
    print(
        f"{'server':6} {'procs':>5} {'listeners':>9} {'opened':>6} {'window s':>8} "
        f"{'frames/s':>9} {'lost':>8} {'lost %':>7} {'srv cores':>9} {'redis':>6} "
        f"{'machine':>7} {'lst/core-s':>10} {'srv p50':>7} {'srv p95':>7} {'srv p99':>7} "
        f"{'e2e p50':>7} {'e2e p95':>7} {'e2e p99':>7} {'markers':>7} {'bytes':>5}"
    )
    for r in results:
        print(
            f"{r.kind:6} {r.processes:>5} {r.size:>9} {r.opened:>6} {r.window:>8.1f} "
            f"{r.delivered_per_second:>9.0f} {r.lost:>8} {r.lost_share * 100:>6.2f}% "
            f"{r.server_cores:>9.2f} {r.redis_cores:>6.2f} {r.machine_cores:>7.2f} "
            f"{r.listeners_per_core:>10.0f} {ms(r.srv_p50):>7} {ms(r.srv_p95):>7} "
            f"{ms(r.srv_p99):>7} {ms(r.p50):>7} {ms(r.p95):>7} {ms(r.p99):>7} "
            f"{r.markers:>7} {r.mean_bytes:>5.0f}"
        )
    print(
        "  frames/s: listener-frames delivered per second in the steady window (target 50 x "
        "opened); lost: 50/s x opened x whole seconds - delivered; srv cores: CPU of the "
        "daphne (or bare) processes / window; machine: all CPUs busy (listeners included); "
        "lst/core-s = frames/s / 50 / srv cores; latency in ms, burst sent (speaker; bare: "
        "its broadcast call) -> received: srv = server-added, by the probe sockets; e2e = "
        f"every socket, the load generator's own queueing included; both from {SETTLE_SECONDS:g} "
        "s after the last socket opened (the join wave's latency is given below)."
    )
    print()
    print(
        "Salon / bare, same listeners, same run "
        "(targets: capacity >= 1.0, server-added p95 <= 20 ms at 500 and <= 40 ms at 1,000, "
        "memory <= 25 KiB per listener and given back)"
    )
    by_key = {(r.kind, r.size, r.processes): r for r in results}
    for r in results:
        if r.kind != "salon":
            continue
        bare = by_key.get(("bare", r.size, r.processes))
        if bare is None:
            continue
        capacity = r.listeners_per_core / bare.listeners_per_core if bare.listeners_per_core else 0
        print(
            f"  {r.size:>5} listeners, {r.processes} proc: listeners per core-second "
            f"{r.listeners_per_core:.0f} vs {bare.listeners_per_core:.0f} = {capacity:.2f}x; "
            f"server-added p95 {ms(r.srv_p95)} vs {ms(bare.srv_p95)} ms, end to end "
            f"{ms(r.p95)} vs {ms(bare.p95)} ms; undelivered ticks {r.undelivered} vs "
            f"{bare.undelivered}"
        )
        print(
            f"        memory per listener {kib_per_listener(r):.1f} KiB vs "
            f"{kib_per_listener(bare):.1f} KiB bare (target <= 25); given back when they left: "
            f"{given_back(r):.0%} vs {given_back(bare):.0%} (MiB before/peak/after: "
            f"{r.rss_before / 1024:.0f}/{r.rss_peak / 1024:.0f}/{r.rss_after / 1024:.0f})"
        )
        print(
            f"        join wave (first {r.wave_seconds:.0f} s, until {SETTLE_SECONDS:g} s after "
            f"the last socket opened): server-added p95 {ms(r.wave_srv_p95)} ms, max "
            f"{ms(r.wave_srv_max)} ms"
        )
    print()
    print(
        f"Lag growth: marker latency per 10 s window from {SETTLE_SECONDS:g} s after the last "
        "socket opened (must be flat)"
    )
    for r in results:
        if r.kind != "salon" or not r.lag:
            continue
        print(f"  salon, {r.size} listeners, {r.processes} proc:")
        server_added = {offset: (p50, p95) for offset, p50, p95, _ in r.srv_lag}
        for offset, p50, p95, count in r.lag:
            srv_p50, srv_p95 = server_added.get(offset, (None, None))
            print(
                f"    {offset:>5.0f}-{offset + LATENCY_WINDOW:<3.0f}s  server-added p50 "
                f"{ms(srv_p50):>6} p95 {ms(srv_p95):>6} ms; end to end p50 {ms(p50):>6} "
                f"p95 {ms(p95):>6} ms  ({count} receptions)"
            )
        for label, lag in (("server-added", r.srv_lag), ("end to end", r.lag)):
            p95s = [p95 for _, _, p95, count in lag if p95 is not None and count]
            if len(p95s) >= 2:
                print(
                    f"    {label} p95 first -> last window: {ms(p95s[0])} -> {ms(p95s[-1])} "
                    f"ms; spread {ms(max(p95s) - min(p95s))} ms, median "
                    f"{ms(statistics.median(p95s))} ms"
                )
    notes = [(r, note) for r in results for note in r.notes]
    if notes:
        print()
        print("Notes")
        for r, note in notes:
            print(f"  {r.kind} {r.size} x{r.processes}: {note}")
    print()
    print(f"took {time.time() - started:.0f} s")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--sizes", default="500,1000,2000", help="listener counts")
    parser.add_argument(
        "--seconds",
        type=float,
        default=20.0,
        help="hold after the ramp (plus the ramp's length again, for joins that fall behind)",
    )
    parser.add_argument("--lag-seconds", type=float, default=60.0, help="for the largest size")
    parser.add_argument("--processes", default="1,2", help="daphne process counts")
    parser.add_argument("--ramp", type=float, default=50.0, help="listeners opened per second")
    parser.add_argument("--profile", action="store_true", help="cProfile each daphne")
    parser.add_argument(
        "--probes",
        type=int,
        default=8,
        help="listeners per server that are probes (their own idle process): they measure the "
        "server-added latency (at most a tenth of the listeners)",
    )
    parser.add_argument(
        "--bundle-from",
        type=int,
        default=0,
        help="SALON_AUDIO_BUNDLE_FROM for Salon: listeners get 2 frames per message from this "
        "many sockets per process (0, the default here: never, one frame per message as the "
        "bare server sends)",
    )
    parser.add_argument(
        "--join",
        default="ticket",
        choices=("ticket", "token"),
        help="how Salon's listeners join: a listener's ticket (lite socket) or an API token",
    )
    parser.add_argument("--role", default="driver", choices=("driver", "bare-server"))
    parser.add_argument("--port", type=int)
    parser.add_argument("--marks")
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in str(args.sizes).split(",")]
    args.processes = [int(p) for p in str(args.processes).split(",")]
    if args.quick:
        args.sizes, args.seconds, args.lag_seconds, args.processes = [100], 8.0, 12.0, [1]
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.role == "bare-server":
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver stops it with SIGTERM
        asyncio.run(bare_server(args.port, args.seconds, Path(args.marks)))
        return
    started = time.time()
    print("Fan-out benchmark (bench/bench_fanout.py)")
    print(f"command: {shlex.join([Path(PYTHON).name, *sys.argv])}")
    print(
        f"machine: {os.cpu_count()} CPUs (nproc), Python {sys.version.split()[0]}, "
        f"{os.uname().sysname} {os.uname().release}"
    )
    print(
        f"sizes {args.sizes}, processes {args.processes}, {args.seconds:g} s steady "
        f"({args.lag_seconds:g} s for {max(args.sizes)}), ramp {args.ramp:g}/s; burst every "
        f"{BURST_PERIOD * FRAME_SECONDS * 1000:.0f} ms; Salon bundles listeners' frames "
        + (f"2 per message from {args.bundle_from} sockets" if args.bundle_from else "never")
    )

    def terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    from tests import services

    workdir = Path(tempfile.mkdtemp(prefix="salon-fanout-"))
    results: list[Result] = []
    try:
        run_all(args, workdir, results)
    except KeyboardInterrupt:
        print("interrupted: stopping everything", file=sys.stderr)
    finally:
        stop_children()
        services.stop()
    if results:
        report(args, results, started)
    print(f"logs: {workdir}")


if __name__ == "__main__":
    main()
