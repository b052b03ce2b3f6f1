"""Noisy-neighbour bench: does a live room keep its audio while the rest of Salon is busy?

Run: .venv/bin/python bench/bench_noisy_neighbour.py [--quick] [--seconds 20] [--listeners 200]
                                                      [--layouts all,split]

One speaker and ``--listeners`` (200) listeners in a room, measured twice on the same fresh
servers, one after the other, in the same run:

* **quiet**: the room alone;
* **noisy**: the same room while, at the same time, 4 members each upload a maximum-size file
  (``SALON_VOICETWEET_MAX_UPLOAD_BYTES``, a WAV) to ``POST /api/v1/voicetweets/``, a wave of
  ``--wave`` (500) members joins the room at once, and 20 HTTP clients load the feed
  (``GET /api/v1/voicetweets/feed/``) in a loop. The neighbours start once the room's
  listeners are settled (``bench_fanout.SETTLE_SECONDS`` after the last one opened) and go on
  until the measurement ends.

Layouts (``--layouts``): ``all`` is one ``manage.py serve`` process (``--role all``, the
embedded default) carrying everything; ``split`` is a ``--role live`` process for the room
and its join wave and a ``--role web`` process for the uploads and the feed, as docs/deploy.md
routes them behind nginx (the bench talks to each process directly).

Printed per layout and phase: the listeners' longest gap between mix frames (per socket, over
the steady window: p95 and max over sockets; target <= 60 ms), server-added latency p95 (the
probes, see ``bench/bench_fanout.py``; target <= 60 ms), end-to-end p95, frames lost, whether
the honest speaker was closed, and what the neighbours got done (uploads answered, joins
opened, feed loads a second and their p95). Ratios are noisy / quiet of the same layout.

Uploads are never processed here: the servers run with queued tasks and no worker, so what
the neighbours cost the server is receiving 4 x 28 MiB bodies, validating them, the joins and
the feed queries, which is what stalled the room in issue #17.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import struct
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_fanout as fanout  # noqa: E402

UPLOADS = 4
FEED_CLIENTS = 20


@dataclass
class Neighbours:
    uploads: list[str] = field(default_factory=list)  # "201", "400 ...", errors
    feed_seconds: list[float] = field(default_factory=list)
    feed_errors: int = 0
    feed_window: float = 0.0
    joins: dict = field(default_factory=dict)


def wav_upload(size: int) -> bytes:
    """A WAV file of about ``size`` bytes: 48 kHz mono 16-bit noise (a real format; the server
    reads and checks it like any upload)."""
    samples = max(0, size - 44) // 2
    data = os.urandom(samples * 2)
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt "
    header += struct.pack("<IHHIIHH", 16, 1, 1, 48_000, 96_000, 2, 16)
    return header + b"data" + struct.pack("<I", len(data)) + data


def upload(url: str, token: str, body: bytes, results: list[str]) -> None:
    boundary = "salon-bench-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        connection.putrequest("POST", "/api/v1/voicetweets/")
        connection.putheader("Authorization", f"Token {token}")
        connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        connection.putheader("Content-Length", str(len(head) + len(body) + len(tail)))
        connection.endheaders()
        connection.send(head)
        for offset in range(0, len(body), 1 << 20):  # as a client on a fast link would
            connection.send(body[offset : offset + (1 << 20)])
        connection.send(tail)
        response = connection.getresponse()
        results.append(f"{response.status} {response.read()[:80]!r}")
    except Exception as error:  # a result, not a bench failure
        results.append(f"{type(error).__name__}: {error}")
    finally:
        connection.close()


def load_feed(url: str, token: str, until: float, report: Neighbours, lock: threading.Lock):
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{url}/api/v1/voicetweets/feed/", headers={"Authorization": f"Token {token}"}
    )
    while time.time() < until:
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                response.read()
            with lock:
                report.feed_seconds.append(time.perf_counter() - started)
        except Exception:
            with lock:
                report.feed_errors += 1


async def wait_for_sockets(url: str, count: int, timeout: float = 180) -> int:
    """Until the server's media plane counts ``count`` sockets (/healthz), or their number
    stopped growing for 5 s (some joins failed: the room is as full as it gets)."""
    deadline = time.monotonic() + timeout
    best, grown_at = 0, time.monotonic()
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:  # noqa: S310
                sockets = json.loads(response.read()).get("media", {}).get("sockets", 0)
        except Exception:
            sockets = 0
        if sockets >= count:
            return sockets
        if sockets > best:
            best, grown_at = sockets, time.monotonic()
        elif best and time.monotonic() - grown_at > 5.0:
            return best
        await asyncio.sleep(0.2)
    return best


async def neighbours(
    *,
    live_url: str,
    web_url: str,
    space_id: int,
    listeners: int,
    until: float,
    upload_tokens: list[str],
    wave_tokens: Path,
    feed_token: str,
    upload_body: bytes,
    workdir: Path,
    report: Neighbours,
) -> None:
    """Once the room is settled: uploads, the join wave and the feed load, all at once, the
    feed until the room's measurement ends (``until``)."""
    await wait_for_sockets(live_url, listeners + 1)  # the listeners and the speaker
    await asyncio.sleep(fanout.SETTLE_SECONDS + 1.0)
    # Slow joins (a loaded machine) may have eaten the room's time: still load it a while.
    until = max(until, time.time() + 5.0)
    lock = threading.Lock()
    threads = [
        threading.Thread(target=upload, args=(web_url, token, upload_body, report.uploads))
        for token in upload_tokens
    ] + [
        threading.Thread(target=load_feed, args=(web_url, feed_token, until, report, lock))
        for _ in range(FEED_CLIENTS)
    ]
    started = time.time()
    for thread in threads:
        thread.start()
    wave_out = workdir / f"wave-{started:.0f}.json"
    args = [
        fanout.PYTHON, str(ROOT / "bench" / "listeners.py"), "--url", live_url,
        "--space", str(space_id), "--tokens", str(wave_tokens), "--processes", "1",
        "--ramp", "5000", "--seconds", f"{max(5.0, until - time.time()):.0f}",
    ]  # fmt: skip
    with open(wave_out, "wb") as stdout:
        wave = fanout.spawn(args, log=workdir / "wave.log", stdout=stdout)
    while wave.poll() is None or any(t.is_alive() for t in threads):
        await asyncio.sleep(0.2)
    fanout._children.remove(wave)
    report.feed_window = time.time() - started
    try:
        report.joins = json.loads(wave_out.read_text())["connections"]
    except (OSError, ValueError, KeyError):
        report.joins = {"error": "the join wave wrote no summary (see wave.log)"}


@dataclass
class Phase:
    layout: str
    phase: str
    result: fanout.Result
    longest_gap: dict
    speaker_closed: str | None
    neighbours: Neighbours | None = None


def longest_gaps(workdir: Path, tag: str) -> dict:
    """The worst per-socket longest gap over the crowd's and the probes' listeners.py runs."""
    gaps = {"p95": 0.0, "max": 0.0}
    for path in workdir.glob(f"{tag}-*.json"):
        found = json.loads(path.read_text())["frames"]["longest_gap_seconds"]
        for key in gaps:
            gaps[key] = max(gaps[key], found[key] or 0.0)
    return gaps


async def measure_phase(layout, phase, live, web, *, space_id, members, args, workdir, files):
    crowd_files, probe_files, wave_tokens = files
    report = Neighbours() if phase == "noisy" else None
    # The room is held after its last listener opened for the settling and ``--seconds``; the
    # neighbours stop at about its end (its start is 2 s away, bench_fanout.run_listeners).
    # ``--join-slack``: on a loaded machine the room's own joins lag the ramp by many seconds.
    seconds = args.seconds + fanout.SETTLE_SECONDS + 1.0 + args.join_slack
    room_end = time.time() + 2.0 + 2 * args.listeners / args.ramp + seconds
    tasks = []
    if report is not None:
        body = wav_upload(args.upload_bytes)
        tasks.append(
            asyncio.create_task(
                neighbours(
                    live_url=live.url, web_url=web.url, space_id=space_id,
                    listeners=args.listeners, until=room_end,
                    upload_tokens=members.tokens[-UPLOADS:], wave_tokens=wave_tokens,
                    feed_token=members.tokens[-UPLOADS - 1], upload_body=body,
                    workdir=workdir, report=report,
                )
            )
        )  # fmt: skip
    result = await fanout.measure(
        "salon", [live], space_id=space_id, token_files=crowd_files, probe_files=probe_files,
        host_token=members.host_token, host_id=members.host_id, seconds=seconds,
        ramp=args.ramp, workdir=workdir, redis_pid=None, bare_marks=None, size=args.listeners,
    )  # fmt: skip
    for task in tasks:
        await task
    tag = f"salon-{args.listeners}-p1"
    gaps = longest_gaps(workdir, tag)
    for path in workdir.glob(f"{tag}-*"):  # the next phase writes the same names
        path.rename(path.with_name(f"{layout}-{phase}-{path.name}"))
    closed = next((note for note in result.notes if note.startswith("speaker:")), None)
    return Phase(layout, phase, result, gaps, closed, report)


def run_layout(layout: str, args, workdir: Path, members, phases: list[Phase]) -> None:
    size = args.listeners
    probes = min(8, size // 10)  # bench_fanout's default --probes
    tokens = members.tokens
    crowd_files = fanout.split(tokens[: size - probes], 1, workdir, f"{layout}-crowd")
    probe_files = fanout.split(tokens[size - probes : size], 1, workdir, f"{layout}-probes")
    wave_tokens = fanout.split(tokens[size : size + args.wave], 1, workdir, f"{layout}-wave")[0]
    for phase in ("quiet", "noisy"):
        if layout == "all":
            live = web = fanout.start_salon(workdir, profile=False, role="all")
            servers = [live]
        else:
            live = fanout.start_salon(workdir, profile=False, role="live")
            web = fanout.start_salon(workdir, profile=False, role="web")
            servers = [live, web]
        space_id = fanout.space_open(members.host_id, f"noisy neighbour {layout} {phase}")
        try:
            print(f"  {layout}: {phase}, {size} listeners, {args.seconds:g} s ...", flush=True)
            phases.append(
                asyncio.run(
                    measure_phase(
                        layout, phase, live, web, space_id=space_id, members=members,
                        args=args, workdir=workdir,
                        files=(crowd_files, probe_files, wave_tokens),
                    )
                )
            )  # fmt: skip
        finally:
            fanout.space_close(space_id, members.host_id)
            for server in servers:
                fanout.stop_salon(server)


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


def ratio(noisy: float | None, quiet: float | None) -> str:
    if not noisy or not quiet:
        return "-"
    return f"{noisy / quiet:.2f}x"


def report(phases: list[Phase], args, started: float) -> None:
    print()
    print(
        f"noisy-neighbour bench: {args.listeners} listeners, {args.seconds:g} s of neighbours "
        f"({UPLOADS} x {args.upload_bytes / 2**20:.0f} MiB uploads, a wave of {args.wave} "
        f"joins, {FEED_CLIENTS} feed clients); {os.cpu_count()} cores; "
        f"load {os.getloadavg()[0]:.2f}; {time.time() - started:.0f} s"
    )
    header = (
        f"{'layout':<6} {'phase':<6} {'longest gap p95':>15} {'max':>8} {'srv p95':>8} "
        f"{'e2e p95':>8} {'lost':>7} {'window':>7} {'markers':>7} {'speaker closed':<16}"
    )
    print(header)
    print("-" * len(header))
    by_key = {(p.layout, p.phase): p for p in phases}
    for p in phases:
        r = p.result
        print(
            f"{p.layout:<6} {p.phase:<6} {ms(p.longest_gap['p95']):>15} "
            f"{ms(p.longest_gap['max']):>8} {ms(r.srv_p95):>8} {ms(r.p95):>8} "
            f"{r.lost_share:>6.2%} {r.window:>6.1f}s {r.markers:>7} {p.speaker_closed or 'no':<16}"
        )
        for note in r.notes:
            if not note.startswith("connect seconds"):
                print(f"    note: {note}")
    print()
    for p in phases:
        if p.phase != "noisy":
            continue
        quiet = by_key.get((p.layout, "quiet"))
        n = p.neighbours
        feed = sorted(n.feed_seconds)
        feed_p95 = feed[min(len(feed) - 1, int(0.95 * len(feed)))] if feed else None
        joins = n.joins
        print(
            f"{p.layout}: noisy / quiet: longest gap max "
            f"{ratio(p.longest_gap['max'], quiet and quiet.longest_gap['max'])}, srv p95 "
            f"{ratio(p.result.srv_p95, quiet and quiet.result.srv_p95)}; uploads "
            f"{[u[:3] for u in n.uploads]}; joins opened {joins.get('opened')}/"
            f"{joins.get('requested')} (connect p95 {joins.get('connect_seconds', {}).get('p95')}"
            f" s); feed {len(feed) / max(n.feed_window, 1e-9):.0f}/s, p95 {ms(feed_p95)}, "
            f"{n.feed_errors} errors"
        )
    targets = [p for p in phases if p.phase == "noisy"]
    for p in targets:
        ok = (
            (p.longest_gap["max"] or 0) <= 0.060
            and (p.result.srv_p95 or 1) <= 0.060
            and p.speaker_closed is None
        )
        print(f"{p.layout}: targets (gap <= 60 ms, srv p95 <= 60 ms, no close): "
              f"{'met' if ok else 'NOT met'}")  # fmt: skip


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 s of neighbours")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--listeners", type=int, default=200)
    parser.add_argument("--wave", type=int, default=500)
    parser.add_argument("--ramp", type=float, default=50.0, help="the room's listeners/s")
    parser.add_argument("--layouts", default="all,split")
    parser.add_argument("--join-slack", type=float, default=10.0, help="seconds")
    parser.add_argument("--upload-bytes", type=int, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = min(args.seconds, 10.0)
    args.layouts = [layout for layout in args.layouts.split(",") if layout]
    if not set(args.layouts) <= {"all", "split"}:
        parser.error("--layouts: all, split")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    started = time.time()
    phases: list[Phase] = []
    workdir = Path(tempfile.mkdtemp(prefix="salon-noisy-"))
    if True:
        try:
            fanout.setup_django(workdir)
            from django.conf import settings

            if args.upload_bytes is None:
                # The whole body (multipart head and tail included) stays under the cap.
                args.upload_bytes = settings.SALON_VOICETWEET_MAX_UPLOAD_BYTES - 4096
            members = fanout.seed_members(args.listeners + args.wave + UPLOADS + 1)
            for layout in args.layouts:
                run_layout(layout, args, workdir, members, phases)
        finally:
            fanout.stop_children()
            from tests import services

            services.stop()
    report(phases, args, started)
    print(f"logs: {workdir}")


if __name__ == "__main__":
    main()
