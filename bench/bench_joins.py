"""Join-wave benchmark: N sockets opened at once on a room whose speaker is live.

Run: .venv/bin/python bench/bench_joins.py [--wave 500] [--probes 8] [--modes ticket,token]
                                           [--profile]

What it does:

1. Seeds a throwaway PostgreSQL and Redis (tests/services.py) through the services, as
   ``bench/bench_fanout.py`` does (its helpers are reused): a host, ``--wave`` + ``--probes``
   members with API tokens, a live open space. Runs one ``manage.py serve`` (real mode:
   PostgreSQL, Redis, ``DJANGO_DEBUG=0``).
2. The host speaks (bench_fanout.speak: room tone with a loud burst every 300 ms). ``--probes``
   listeners join first and stay: they time each burst's arrival (a mix packet of >= 110 bytes
   after >= 10 smaller ones), so server-added latency = arrival - the burst's send time, before
   and during the wave (bench_fanout's docstring says what it includes).
3. The wave: this file as ``--role wave`` in a process of its own opens every socket at once
   (``asyncio.gather``) and reports per socket the time from its connect call to the snapshot
   and to the first audio frame (TTFF). Mode ``ticket`` joins with join tickets
   (``spaces.live.tickets.ticket_issue``, issued just before the wave, as the page or the API would;
   the ticket request itself is not timed), mode ``token`` with ``Authorization: Token`` (the
   join through the database, as before tickets). Each mode gets a fresh server and space.
4. Joins/s = wave size / (last snapshot - wave start). CPU per join = the server process's
   utime + stime over the wave (from its start to the last snapshot + 1 s) / wave size; that
   includes the room's own work meanwhile (mixing, sending). "net" subtracts the server's CPU
   rate of the 3 s before the wave (the speaker and the probes only) over as long.
5. Baseline in the same run: bench_fanout's bare ``websockets`` broadcast server (a first "{}"
   message for the snapshot, then 20 ms frames of the same sizes and burst pattern), the same
   wave process and probes. Ratios Salon / bare are printed.

Targets (issue #17): >= 500 joins/s per live process (aim 1,000), TTFF p95 <= 1 s for a wave of
500, probes' server-added p95 <= 60 ms during the wave. ``--profile`` runs the server under
cProfile (slower: its figures are not comparable) and prints where the joins' time goes; a
wave that takes longer than a ticket lives (60 s) then sees its last tickets refused (4411), as
this wave does not ask for new ones.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bench_fanout as fanout  # noqa: E402  (bench/ is on sys.path when run as a script)

MARKER_BYTES = 110
QUIET_FRAMES = 10
HEADER_BYTES = 12


# --- the wave (its own process: --role wave) --------------------------------------------------


async def wave(url: str, space_id: int, credentials: list[str], mode: str, hold: float) -> dict:
    from websockets.asyncio.client import connect

    from salon_client.client import space_socket_url

    base = space_socket_url(url, space_id) if mode != "bare" else url.replace("http", "ws") + "/"
    snapshots: list[float] = []
    firsts: list[float] = []
    errors: dict[str, int] = {}
    start = time.time()

    async def one(credential: str) -> None:
        began = time.time()
        target, headers = base, {}
        if mode == "ticket":
            target = f"{base}?ticket={credential}"
        elif mode == "token":
            headers = {"Authorization": f"Token {credential}"}
        try:
            async with connect(
                target,
                additional_headers=headers,
                compression=None,
                max_size=1 << 20,
                open_timeout=60,
            ) as socket:
                first = await socket.recv()
                while isinstance(first, bytes):  # bare: the broadcast may come first
                    first = await socket.recv()
                snapshots.append(time.time() - began)
                while not isinstance(await socket.recv(), bytes):
                    pass
                firsts.append(time.time() - began)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, start + hold - time.time())):
                        async for _message in socket:
                            pass
        except Exception as error:  # counted, as a join that failed
            key = f"{type(error).__name__}: {error}"[:80]
            errors[key] = errors.get(key, 0) + 1

    await asyncio.gather(*(one(c) for c in credentials))
    return {"start": start, "snapshots": snapshots, "firsts": firsts, "errors": errors}


# --- probes (in the driver) -------------------------------------------------------------------


@dataclass
class Probe:
    arrivals: list[float]
    task: asyncio.Task


async def probe_listen(target: str, headers: dict, arrivals: list[float], ready) -> None:
    from websockets.asyncio.client import connect

    async with connect(target, additional_headers=headers, compression=None) as socket:
        quiet = 0
        async for message in socket:
            if not ready.done():
                ready.set_result(None)
            if not isinstance(message, bytes):
                continue
            now = time.time()
            if len(message) - HEADER_BYTES >= MARKER_BYTES:
                if quiet >= QUIET_FRAMES:
                    arrivals.append(now)
                quiet = 0
            else:
                quiet += 1


def latencies(arrivals: list[float], bursts: list[float], start: float, end: float) -> list:
    import bisect

    out = []
    for at in arrivals:
        if not start <= at <= end:
            continue
        index = bisect.bisect_right(bursts, at) - 1
        if index >= 0 and at - bursts[index] < 0.3:
            out.append(at - bursts[index])
    return out


def bare_bursts(marks: Path) -> list[float]:
    return [float(line) for line in marks.read_text().split()]


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Result:
    kind: str
    wave: int
    opened: int
    joins_per_second: float
    cpu_ms_per_join: float
    net_cpu_ms_per_join: float
    snapshot_p95: float | None
    ttff_p50: float | None
    ttff_p95: float | None
    probe_before_p95: float | None
    probe_wave_p95: float | None
    errors: dict


def p(values, q):
    return fanout.percentile(values, q / 100)


async def measure(
    kind: str,
    server: fanout.Server,
    *,
    space_id: int,
    credentials: list[str],
    probe_credentials: list[str],
    mode: str,
    host_token: str | None,
    host_id: int | None,
    workdir: Path,
    bare_marks: Path | None,
) -> Result:
    from salon_client.client import space_socket_url

    stop, ready = asyncio.Event(), asyncio.Event()
    report = fanout.SpeakerReport()
    speaker = None
    if host_token is not None:
        speaker = asyncio.create_task(
            fanout.speak(server.url, space_id, host_token, host_id, stop, ready, report)
        )
        await asyncio.wait_for(ready.wait(), 30)
    probes = []
    for credential in probe_credentials:
        arrivals: list[float] = []
        if mode == "bare":
            target, headers = server.url.replace("http", "ws") + "/", {}
        else:
            target = space_socket_url(server.url, space_id)
            headers = {"Authorization": f"Token {credential}"}
        joined = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(probe_listen(target, headers, arrivals, joined))
        await asyncio.wait_for(joined, 30)
        probes.append(Probe(arrivals, task))
    # The probes' steady latency and the server's steady CPU (the speaker's room) before it.
    before_start, before_cpu = time.time(), fanout.process_cpu_ticks(server.pid)
    await asyncio.sleep(3)
    path = workdir / f"wave-{kind}-{mode}.json"
    path.write_text(json.dumps(credentials))
    cpu0 = fanout.process_cpu_ticks(server.pid)
    args = [fanout.PYTHON, __file__, "--role", "wave", "--url", server.url]
    args += ["--space", str(space_id), "--credentials", str(path), "--mode", mode]
    process = await asyncio.create_subprocess_exec(
        *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    # CPU over the wave: sampled until a second after the last socket got its snapshot, which
    # the wave only reports at its end: sample every 0.1 s and pick afterwards.
    samples = []
    waiter = asyncio.create_task(process.communicate())
    while not waiter.done():
        samples.append((time.time(), fanout.process_cpu_ticks(server.pid)))
        await asyncio.sleep(0.1)
    out, _ = await waiter
    summary = json.loads(out)
    stop.set()
    for probe in probes:
        probe.task.cancel()
    if speaker is not None:
        with contextlib.suppress(Exception):
            await speaker
    start = summary["start"]
    last = start + max(summary["snapshots"], default=0.0)
    cpu_end = next((ticks for at, ticks in samples if at >= last + 1.0), samples[-1][1])
    cpu_seconds = (cpu_end - cpu0) / fanout.CLOCK_TICKS
    # What the room costs anyway (mixing, sending to the probes) over as long: not the joins'.
    steady = (cpu0 - before_cpu) / fanout.CLOCK_TICKS / max(start - before_start, 1e-9)
    cpu_window = next((at for at, _ in samples if at >= last + 1.0), samples[-1][0]) - start
    opened = len(summary["snapshots"])
    bursts = report.bursts if bare_marks is None else bare_bursts(bare_marks)
    arrivals = [at for probe in probes for at in probe.arrivals]
    return Result(
        kind=f"{kind}/{mode}" if kind != "bare" else "bare",
        wave=len(credentials),
        opened=opened,
        joins_per_second=opened / max(last - start, 1e-9),
        cpu_ms_per_join=1000 * cpu_seconds / max(opened, 1),
        net_cpu_ms_per_join=1000 * max(cpu_seconds - steady * cpu_window, 0) / max(opened, 1),
        snapshot_p95=p(summary["snapshots"], 95),
        ttff_p50=p(summary["firsts"], 50),
        ttff_p95=p(summary["firsts"], 95),
        probe_before_p95=p(latencies(arrivals, bursts, before_start, start), 95),
        probe_wave_p95=p(latencies(arrivals, bursts, start, last + 1.0), 95),
        errors=summary["errors"],
    )


def print_profile(server: fanout.Server) -> None:
    """Where the join goes: the functions of the join path by cumulative time."""
    import pstats

    if server.profile is None or not server.profile.exists():
        print(f"  (no profile written for {server.url})")
        return
    print(f"\n  cProfile of {server.url}: the join path, by cumulative time")
    stats = pstats.Stats(str(server.profile), stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(
        r"consumers|tickets|joins|selectors|presence|auth|websocket|protocol|layers|signing", 45
    )


def issue_tickets(space_id: int, user_ids: list[int]) -> list[str]:
    from django.contrib.auth import get_user_model

    from spaces.live.tickets import ticket_issue
    from spaces.models import Space

    space = Space.objects.select_related("host").get(pk=space_id)
    users = get_user_model().objects.in_bulk(user_ids)
    return [ticket_issue(space=space, user=users[uid])["ticket"] for uid in user_ids]


def run_all(args, workdir: Path) -> list[Result]:
    fanout.setup_django(workdir)
    from rest_framework.authtoken.models import Token

    members = fanout.seed_members(args.wave + args.probes)
    user_of = dict(Token.objects.values_list("key", "user_id"))
    wave_tokens = members.tokens[: args.wave]
    probe_tokens = members.tokens[args.wave :]
    results = []
    for mode in args.modes:
        server = fanout.start_salon(workdir, profile=args.profile)
        space_id = fanout.space_open(members.host_id, f"join bench {mode}")
        try:
            if mode == "ticket":
                credentials = issue_tickets(space_id, [user_of[t] for t in wave_tokens])
            else:
                credentials = wave_tokens
            print(f"  salon: a wave of {args.wave} ({mode}) ...", flush=True)
            results.append(
                asyncio.run(
                    measure(
                        "salon",
                        server,
                        space_id=space_id,
                        credentials=credentials,
                        probe_credentials=probe_tokens,
                        mode=mode,
                        host_token=members.host_token,
                        host_id=members.host_id,
                        workdir=workdir,
                        bare_marks=None,
                    )
                )
            )
        finally:
            fanout.space_close(space_id, members.host_id)
            fanout.stop_salon(server)
        if args.profile:
            print_profile(server)
    bare, marks = fanout.start_bare(workdir, seconds=120)
    try:
        print(f"  bare : a wave of {args.wave} ...", flush=True)
        results.append(
            asyncio.run(
                measure(
                    "bare",
                    bare,
                    space_id=0,
                    credentials=["-"] * args.wave,
                    probe_credentials=probe_tokens,
                    mode="bare",
                    host_token=None,
                    host_id=None,
                    workdir=workdir,
                    bare_marks=marks,
                )
            )
        )
    finally:
        fanout.stop_process(bare.process)
    return results


def report(results: list[Result]) -> None:
    bare = next(r for r in results if r.kind == "bare")
    ms = fanout.ms
    print(
        f"\n  {'server':<14} {'opened':>9} {'joins/s':>8} {'CPU ms/join':>11} {'net':>5} "
        f"{'snapshot p95':>12} {'TTFF p50':>9} {'TTFF p95':>9} "
        f"{'probe p95 before':>16} {'probe p95 wave':>14}"
    )
    for r in results:
        print(
            f"  {r.kind:<14} {r.opened:>4}/{r.wave:<4} {r.joins_per_second:>8.0f} "
            f"{r.cpu_ms_per_join:>11.2f} {r.net_cpu_ms_per_join:>5.2f} "
            f"{ms(r.snapshot_p95):>10} ms {ms(r.ttff_p50):>6} ms "
            f"{ms(r.ttff_p95):>6} ms {ms(r.probe_before_p95):>13} ms {ms(r.probe_wave_p95):>11} ms"
        )
        if r.errors:
            print(f"  {'':<14} failures: {r.errors}")
    print()
    for r in results:
        if r is bare:
            continue
        net = bare.net_cpu_ms_per_join
        ratio_cpu = r.net_cpu_ms_per_join / net if net else 0
        ttff = (r.ttff_p95 or 0) / bare.ttff_p95 if bare.ttff_p95 else 0
        print(
            f"  {r.kind} / bare: joins/s {r.joins_per_second / bare.joins_per_second:.2f}x, "
            f"net CPU per join {ratio_cpu:.1f}x, TTFF p95 {ttff:.1f}x"
        )
    for r in results:
        if r is bare:
            continue
        checks = [
            ("joins/s >= 500", r.joins_per_second >= 500),
            ("TTFF p95 <= 1 s", r.ttff_p95 is not None and r.ttff_p95 <= 1.0),
            (
                "probe p95 during the wave <= 60 ms",
                r.probe_wave_p95 is not None and r.probe_wave_p95 <= 0.060,
            ),
        ]
        line = ", ".join(f"{name}: {'yes' if ok else 'NO'}" for name, ok in checks)
        print(f"  targets, {r.kind}: {line}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["driver", "wave"], default="driver")
    parser.add_argument("--wave", type=int, default=500)
    parser.add_argument("--probes", type=int, default=8)
    parser.add_argument("--modes", default="ticket,token")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--quick", action="store_true", help="a wave of 40, tickets only")
    # --role wave
    parser.add_argument("--url")
    parser.add_argument("--space", type=int)
    parser.add_argument("--credentials")
    parser.add_argument("--mode")
    parser.add_argument("--hold", type=float, default=4.0, help="seconds a wave socket stays")
    args = parser.parse_args(argv)
    if args.quick and args.role == "driver":
        args.wave, args.probes, args.modes = 40, 2, "ticket"
    args.modes = [m for m in args.modes.split(",") if m]
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.role == "wave":
        credentials = json.loads(Path(args.credentials).read_text())
        summary = asyncio.run(wave(args.url, args.space, credentials, args.mode, args.hold))
        print(json.dumps(summary))
        return
    started = time.time()
    print(f"bench_joins: wave {args.wave}, probes {args.probes}, modes {args.modes}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="salon-joins-"))
    try:
        results = run_all(args, workdir)
    finally:
        fanout.stop_children()
        from tests import services

        with contextlib.suppress(Exception):
            services.stop()
    report(results)
    print(f"\n  ({time.time() - started:.0f} s, load {os.getloadavg()[0]:.2f}); logs: {workdir}")


if __name__ == "__main__":
    main()
