"""Fault and load run: a room of thousands across two daphne processes while things die.

Run: make fault-run   (or .venv/bin/python bench/fault_run.py [--listeners 2000] [--seconds 60])

What it sets up (everything throwaway, on 127.0.0.1, stopped however the run ends):

* PostgreSQL and Redis (``tests/services.py``), migrated; a live open space; a host and
  ``--listeners`` members with API tokens, seeded through the services.
* Two ``manage.py serve`` processes, A and B, on the same database and Redis; a real Celery
  worker (``celery -A config worker``) and Celery beat (presence sweeps, stalled-upload
  requeues), both in real mode.
* The host speaks on A (room tone with a loud burst every 300 ms, so the room never goes
  quiet: 50 frames a second to every listener). Before the host, one listener joins B, so B
  holds the room's mixer lease: killing B also kills the room's mixer.
* ``bench/listeners.py`` opens half the listeners on A and half on B (``--reconnect``: a dropped
  socket comes back, to the same address, with backoff) and records per listener frames per
  second, closes, returns and when ``recording.changed`` events arrived.

What happens once every listener is in (the driver waits until they have joined; H =
``--seconds``):

=========  ==================================================================================
0.03 H     the host turns recording on (control events reach everyone: the baseline)
0.06 H     ``--tweets`` voice tweets uploaded to A; as soon as they are accepted, the Celery
           worker's process group is SIGKILLed (with its transcoding children); restarted
           ``--down`` seconds later
0.12 H     daphne B is SIGKILLed (its listeners drop, and the room's mixer with it); restarted
           on the same port ``--down`` seconds later; its listeners come back to it, and the
           run waits until they have (up to ``--join-timeout``)
0.50 H     Redis is SIGKILLed (it keeps nothing on disk: leases, queues, groups are gone);
           started again, empty, ``--down`` seconds later
0.75 H     the host turns recording off (control events after Redis came back)
1.00 H     the listeners close; the run waits for beat's sweep and the voice tweets
=========  ==================================================================================

What it checks (PASS/FAIL each; the exit status is 1 if any fails) and the figures it prints:
listeners opened, frames delivered per second and frames lost in the steady window before the
faults; listeners on A keep hearing while B dies (longest silence each, with the mixer's
takeover); B's listeners come back (reconnect times); every listener hears again after Redis
returns (recovery times) and gets control events again; no voice tweet is left processing
(each ends ready or rejected); no participant row is left after the sweep. A tweet the killed
worker was processing is taken up again once its lease lapses (``SALON_WORK_LEASE_SECONDS``,
30 s). One whose task was lost before any worker started it (Redis restarts empty) is queued
again after ``SALON_VOICETWEET_STALLED_SECONDS=--stalled`` (default 20 s, 600 in production),
so that it too ends within the run.

Logs and the listeners' raw output stay in the work directory it prints.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_fanout as fanout  # after the path fix

PYTHON = sys.executable
ROOT = Path(__file__).resolve().parent.parent
FRAMES_PER_SECOND = fanout.FRAMES_PER_SECOND
# Mixer takeover: the lease lasts 3 s and is renewed every second (spaces/live/media.py).
TAKEOVER_ALLOWANCE = 8.0
RECOVERY_ALLOWANCE = 20.0


# --- processes ------------------------------------------------------------------------------


@dataclass
class Group:
    """A child started in its own session, so that killing it kills its children too."""

    name: str
    args: list[str]
    log: Path
    process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.args, cwd=ROOT, stdout=log, stderr=log, start_new_session=True
            )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


_groups: list[Group] = []


def celery(name: str, workdir: Path, *args: str) -> Group:
    group = Group(name, [PYTHON, "-m", "celery", "-A", "config", *args], workdir / f"{name}.log")
    _groups.append(group)
    group.start()
    return group


def start_worker(workdir: Path) -> Group:
    worker = celery(
        "worker", workdir, "worker", "--loglevel", "INFO", "--queues", "default,audio",
        "--concurrency", "2", "--hostname", f"fault-{uuid.uuid4().hex[:6]}@%h",
    )  # fmt: skip
    wait_for_log(worker.log, b" ready.", worker)
    return worker


def restart_worker(worker: Group) -> None:
    written = worker.log.stat().st_size
    worker.start()
    wait_for_log(worker.log, b" ready.", worker, skip=written)


def wait_for_log(path: Path, needle: bytes, group: Group, *, skip: int = 0, timeout=60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if group.process.poll() is not None:
            raise RuntimeError(f"{group.name} exited:\n{path.read_text(errors='replace')[-3000:]}")
        with open(path, "rb") as log:
            log.seek(skip)
            if needle in log.read():
                return
        time.sleep(0.2)
    raise RuntimeError(f"{group.name} not ready in {timeout} s:\n{path.read_text()[-3000:]}")


def start_daphne(workdir: Path, port: int, bundle_from: int) -> fanout.Server:
    return fanout.start_salon(workdir, profile=False, port=port, bundle_from=bundle_from)


def kill_daphne(server: fanout.Server) -> None:
    fanout.stop_process(server.process, sig=signal.SIGKILL)
    with contextlib.suppress(ValueError):
        fanout._children.remove(server.process)


def stop_everything() -> None:
    fanout.stop_children()
    while _groups:
        _groups.pop().kill(signal.SIGTERM)


# --- Django: seeding and reading through the services ----------------------------------------


def upload_voicetweets(url: str, token: str, count: int) -> list[int]:
    """``count`` 3 s WAV voice tweets over the API; their ids (each answered 202)."""
    from tests.voicetweets.factories import sine_wav

    ids = []
    for index in range(count):
        boundary = uuid.uuid4().hex
        audio = sine_wav(3, frequency=300 + 40 * index)
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="v.wav"\r\n'
            f"Content-Type: audio/wav\r\n\r\n".encode()
            + audio
            + f"\r\n--{boundary}--\r\n".encode()
        )
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{url}/api/v1/voicetweets/",
            data=body,
            method="POST",
            headers={
                "Authorization": f"Token {token}",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            if response.status != 202:
                raise RuntimeError(f"upload answered {response.status}")
            ids.append(json.loads(response.read())["id"])
    return ids


def set_recording(space_id: int, host_id: int, on: bool) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from spaces.models import Space
    from spaces.services import space_set_recording

    try:
        space_set_recording(
            space=Space.objects.get(pk=space_id),
            by=get_user_model().objects.get(pk=host_id),
            is_recording=on,
        )
    finally:
        connection.close()


def settle_state(space_id: int, tweet_ids: list[int]) -> tuple[int, dict[str, int]]:
    """(participants left in the space, voice tweets by state and by processing attempts)."""
    from django.db import connection
    from django.db.models import Count

    from spaces.models import Participant
    from voicetweets.models import VoiceTweet

    try:
        participants = Participant.objects.filter(space_id=space_id).count()
        tweets = VoiceTweet.objects.filter(pk__in=tweet_ids)
        states = dict(tweets.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
        for attempts, n in (
            tweets.values_list("processing_attempts")
            .annotate(n=Count("id"))
            .values_list("processing_attempts", "n")
        ):
            states[f"attempts={attempts}"] = n
        return participants, states
    finally:
        connection.close()


def listeners_in(space_id: int) -> int:
    from django.db import connection

    from spaces.models import Participant

    try:
        return Participant.objects.filter(space_id=space_id, role="listener").count()
    finally:
        connection.close()


def rejoined_since(tokens: list[str], moment: float) -> int:
    """How many of these members joined (or refreshed their presence) since ``moment``."""
    from datetime import UTC, datetime

    from django.db import connection

    from spaces.models import Participant

    try:
        return Participant.objects.filter(
            user__auth_token__key__in=tokens,
            last_seen__gte=datetime.fromtimestamp(moment, tz=UTC),
        ).count()
    finally:
        connection.close()


def mixer_pid(space_id: int) -> int | None:
    """The pid of the process holding the room's mixer lease (spaces/live/media.py)."""
    import redis

    holder = redis.Redis.from_url(os.environ["REDIS_URL"]).get(f"salon:media:lease:{space_id}")
    return int(holder.decode().split(":")[1]) if holder else None


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Events:
    """Wall-clock (time.time()) moments of the run."""

    all_open: float = 0.0
    end: float = 0.0
    recording_on: float = 0.0
    recording_off: float = 0.0
    worker_killed: float = 0.0
    worker_back: float = 0.0
    daphne_killed: float = 0.0
    daphne_back: float = 0.0
    b_rejoined: float = 0.0
    redis_killed: float = 0.0
    redis_back: float = 0.0
    listeners_done: float = 0.0
    tweets_settled: float | None = None
    participants_gone: float | None = None
    killed_mixer: bool = False
    tweet_ids: list[int] = field(default_factory=list)
    tweet_states: dict[str, int] = field(default_factory=dict)
    tweets_at_kill: dict[str, int] = field(default_factory=dict)
    participants_left: int = -1


# A wait for joins also ends when nobody more joined for this long: those left out failed
# (the listeners count them), and waiting on would push the next faults past the hold.
JOIN_STALL_SECONDS = 20.0


async def wait_for_joins(count, target: float, timeout: float) -> int:
    """Poll ``count()`` (in a thread) until it reaches ``target``, stalls, or ``timeout``."""
    deadline = time.time() + timeout
    best, best_at = -1, time.time()
    while True:
        joined = await asyncio.to_thread(count)
        now = time.time()
        if joined > best:
            best, best_at = joined, now
        if joined >= target or now >= deadline or now - best_at >= JOIN_STALL_SECONDS:
            return joined
        await asyncio.sleep(0.5)


async def at(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.time()))


async def pilot_on(url: str, space_id: int, token: str, stop: asyncio.Event) -> None:
    """One listener on B before anyone else: B takes the room's mixer lease."""
    from websockets.asyncio.client import connect

    from salon_client.client import space_socket_url

    with contextlib.suppress(Exception):  # it dies with B, on purpose
        async with connect(
            space_socket_url(url, space_id), additional_headers={"Authorization": f"Token {token}"}
        ) as socket:
            reader = asyncio.ensure_future(_drain(socket))
            await stop.wait()
            reader.cancel()


async def _drain(socket) -> None:
    async for _ in socket:
        pass


def start_listeners(server, space_id, tokens, args, workdir, tag, start_at, hold) -> tuple:
    path = workdir / f"{tag}.tokens"
    path.write_text("\n".join(tokens) + "\n")
    timeline, out = workdir / f"{tag}.timeline.json", workdir / f"{tag}.json"
    command = [
        PYTHON, str(ROOT / "bench" / "listeners.py"), "--url", server.url, "--space",
        str(space_id), "--tokens", str(path), "--processes", "1", "--ramp", f"{args.ramp / 2:g}",
        "--seconds", f"{hold:g}", "--start-at", repr(start_at), "--reconnect",
        "--timeline", str(timeline), "--watch", "recording.changed",
        # Joins queue up at a few dozen a second per process: a snapshot may take a while.
        "--connect-timeout", f"{args.join_timeout:g}",
    ]  # fmt: skip
    with open(out, "wb") as stdout:
        process = fanout.spawn(command, log=workdir / f"{tag}.log", stdout=stdout)
    return process, out, timeline


def prepare(args, workdir: Path) -> tuple[fanout.Members, int]:
    """Services, database, members and the live space (before any event loop: the ORM)."""
    os.environ["SALON_VOICETWEET_STALLED_SECONDS"] = str(args.stalled)
    os.environ.setdefault("SALON_LOG_LEVEL", "WARNING")
    fanout.setup_django(workdir)
    members = fanout.seed_members(args.listeners + 1)
    return members, fanout.space_open(members.host_id, "fault run")


async def run(args, workdir: Path, events: Events, members, space_id: int) -> dict:
    from tests import services

    pilot_token, tokens = members.tokens[0], members.tokens[1:]
    port_a, port_b = fanout.free_port(), fanout.free_port()
    server_a = await asyncio.to_thread(start_daphne, workdir, port_a, args.bundle_from)
    server_b = await asyncio.to_thread(start_daphne, workdir, port_b, args.bundle_from)
    worker = await asyncio.to_thread(start_worker, workdir)
    celery("beat", workdir, "beat", "--loglevel", "INFO", "--schedule", str(workdir / "beat"))
    print(f"  daphne A {server_a.url} (pid {server_a.pid}), B {server_b.url} (pid {server_b.pid})")

    stop = asyncio.Event()
    pilot = asyncio.create_task(pilot_on(server_b.url, space_id, pilot_token, stop))
    while await asyncio.to_thread(mixer_pid, space_id) is None:
        await asyncio.sleep(0.1)
    ready, report = asyncio.Event(), fanout.SpeakerReport()
    speaker = asyncio.create_task(
        fanout.speak(
            server_a.url, space_id, members.host_token, members.host_id, stop, ready, report
        )
    )
    await asyncio.wait_for(ready.wait(), 30)
    owner = await asyncio.to_thread(mixer_pid, space_id)
    events.killed_mixer = owner == server_b.pid
    print(f"  the room is mixed by {'B' if owner == server_b.pid else 'A'} (pid {owner})")

    start_at = time.time() + 3.0
    half = len(tokens) // 2
    # Held until the driver stops them (SIGINT): joining may take longer than the ramp.
    hold = args.seconds + args.listeners / args.ramp + args.join_timeout
    runs = [
        start_listeners(server_a, space_id, tokens[:half], args, workdir, "A", start_at, hold),
        start_listeners(server_b, space_id, tokens[half:], args, workdir, "B", start_at, hold),
    ]
    print(f"  {args.listeners} listeners opening at {args.ramp:g}/s ...")
    await at(start_at + args.listeners / args.ramp)
    joined = await wait_for_joins(
        lambda: listeners_in(space_id), 0.99 * args.listeners, args.join_timeout
    )
    events.all_open = time.time()
    events.end = events.all_open + args.seconds
    print(
        f"  {joined} joined {events.all_open - start_at:.0f} s after the first; {args.seconds:g} s"
    )
    span = args.seconds

    # Each fault starts on schedule, or a few seconds after the previous one settled.
    await at(events.all_open + 0.03 * span)
    events.recording_on = time.time()
    await asyncio.to_thread(set_recording, space_id, members.host_id, True)

    await at(events.all_open + 0.06 * span)
    events.tweet_ids = await asyncio.to_thread(
        upload_voicetweets, server_a.url, members.host_token, args.tweets
    )
    events.worker_killed = time.time()
    await asyncio.to_thread(worker.kill)
    _, events.tweets_at_kill = await asyncio.to_thread(settle_state, space_id, events.tweet_ids)
    print(f"  worker killed after {len(events.tweet_ids)} uploads: {events.tweets_at_kill}")
    await at(events.worker_killed + args.down)
    await asyncio.to_thread(restart_worker, worker)
    events.worker_back = time.time()

    await at(max(events.all_open + 0.12 * span, events.worker_back + 2))
    events.killed_mixer = await asyncio.to_thread(mixer_pid, space_id) == server_b.pid
    events.daphne_killed = time.time()
    # Who was in through B, so the wait below expects them and not those who never got in.
    b_tokens = tokens[half:]
    b_present = await asyncio.to_thread(rejoined_since, b_tokens, 0)
    await asyncio.to_thread(kill_daphne, server_b)
    print(f"  daphne B killed{' (it mixed the room)' if events.killed_mixer else ''}")
    await at(events.daphne_killed + args.down)
    server_b = await asyncio.to_thread(start_daphne, workdir, port_b, args.bundle_from)
    events.daphne_back = time.time()
    print(f"  daphne B back (pid {server_b.pid})")
    # Its listeners come back to it; the next fault waits for them (up to --join-timeout).
    await wait_for_joins(
        lambda: rejoined_since(b_tokens, events.daphne_back), 0.99 * b_present, args.join_timeout
    )
    events.b_rejoined = time.time()
    print(f"  B's listeners back {events.b_rejoined - events.daphne_back:.0f} s after B")

    await at(max(events.all_open + 0.5 * span, events.b_rejoined + 5))
    events.redis_killed = time.time()
    await asyncio.to_thread(services.kill_redis)
    print("  Redis killed")
    await at(events.redis_killed + args.down)
    await asyncio.to_thread(services.restart_redis)
    events.redis_back = time.time()
    print("  Redis back (empty)")

    # Pub/sub keeps nothing for a subscriber that is reconnecting: give them a moment.
    await at(max(events.all_open + 0.75 * span, events.redis_back + 6))
    events.recording_off = time.time()
    await asyncio.to_thread(set_recording, space_id, members.host_id, False)
    events.end = max(events.end, events.recording_off + 12)

    await at(events.end)
    results = []
    for process, _out, _timeline in runs:
        process.send_signal(signal.SIGINT)
    for process, out, timeline in runs:
        while process.poll() is None:
            await asyncio.sleep(0.2)
        with contextlib.suppress(ValueError):
            fanout._children.remove(process)
        results.append(
            {"summary": json.loads(out.read_text()), "timeline": json.loads(timeline.read_text())}
        )
    events.listeners_done = time.time()
    stop.set()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(speaker, 10)
    pilot.cancel()
    print("  listeners done; waiting for the sweep and the voice tweets")

    deadline = time.time() + args.settle
    while time.time() < deadline:
        left, states = await asyncio.to_thread(settle_state, space_id, events.tweet_ids)
        events.participants_left, events.tweet_states = left, states
        if left == 0 and events.participants_gone is None:
            events.participants_gone = time.time()
        if not states.get("processing") and events.tweets_settled is None:
            events.tweets_settled = time.time()
        if events.participants_gone and events.tweets_settled:
            break
        await asyncio.sleep(1)
    await asyncio.to_thread(fanout.space_close, space_id, members.host_id)
    crashes = sum(
        path.read_text(errors="replace").count("Exception inside application")
        for path in workdir.glob("daphne-*.log")
    )
    return {"listeners": results, "speaker": report, "crashes": crashes}


# --- analysis ---------------------------------------------------------------------------------


def frames_in(bins: dict, start: float, end: float) -> int:
    return sum(n for second, n in bins.items() if start <= int(second) < end)


def longest_silence(bins: dict, start: float, end: float) -> int:
    """The longest run of whole seconds in [start, end) in which no frame arrived."""
    longest = current = 0
    for second in range(int(start), int(end)):
        current = 0 if bins.get(str(second)) or bins.get(second) else current + 1
        longest = max(longest, current)
    return longest


def first_frame_after(bins: dict, moment: float) -> float | None:
    seconds = sorted(int(s) for s, n in bins.items() if n and int(s) >= int(moment))
    return seconds[0] - moment if seconds else None


def open_throughout(connection: dict, start: float, end: float) -> bool:
    """Open before ``start`` and never closed within [start, end)."""
    return (
        connection["error"] is None
        and connection["opened_at"] <= start
        and not any(start <= t < end for t, _code in connection["closes"])
    )


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def figure(values: list[float]) -> str:
    if not values:
        return "-"
    return (
        f"p50 {quantile(values, 0.5):.1f} s, p95 {quantile(values, 0.95):.1f} s, "
        f"max {max(values):.1f} s"
    )


def analyse(args, events: Events, outcome: dict) -> tuple[list[tuple[str, bool, str]], list[str]]:
    a_run, b_run = outcome["listeners"]
    a_conns, b_conns = a_run["timeline"], b_run["timeline"]
    everyone = a_conns + b_conns
    checks: list[tuple[str, bool, str]] = []
    figures: list[str] = []

    opened = [c for c in everyone if c["error"] is None]
    errors = {}
    for c in everyone:
        if c["error"] is not None:
            errors[c["error"]] = errors.get(c["error"], 0) + 1
    checks.append(
        (
            "listeners opened",
            len(opened) >= 0.99 * len(everyone),
            f"{len(opened)} of {len(everyone)}" + (f"; refused: {errors}" if errors else ""),
        )
    )

    # Steady window: everyone in, nothing killed yet (the worker is not on the audio path).
    start, end = events.all_open + 1, events.daphne_killed - 1
    steady = [c for c in opened if open_throughout(c, start, end)]
    delivered = sum(frames_in(c["bins"], start, end) for c in steady)
    seconds = max(1, int(end) - int(start))
    expected = FRAMES_PER_SECOND * len(steady) * seconds
    figures.append(
        f"steady window {seconds} s, {len(steady)} listeners: "
        f"{delivered / seconds:,.0f} frames/s delivered of {expected / seconds:,.0f} "
        f"({100 * delivered / expected if expected else 0:.1f} %), frames lost "
        f"{max(0, expected - delivered):,}"
    )

    # Listeners on A while B (and, if it held it, the room's mixer) dies.
    window = (events.daphne_killed - 1, min(events.daphne_back + 10, events.end - 1))
    survivors = [c for c in a_conns if open_throughout(c, *window)]
    silences = [longest_silence(c["bins"], *window) for c in survivors]
    heard_after = [frames_in(c["bins"], events.daphne_killed + 1, window[1]) > 0 for c in survivors]
    allowance = TAKEOVER_ALLOWANCE if events.killed_mixer else 2.0
    checks.append(
        (
            "A's listeners keep hearing while B is killed"
            + (" (with the room's mixer)" if events.killed_mixer else ""),
            bool(survivors) and all(heard_after) and max(silences) <= allowance,
            f"{len(survivors)} listeners on A, all hearing after the kill: {all(heard_after)}; "
            f"longest silence p50 {statistics.median(silences) if silences else '-'} s, "
            f"max {max(silences) if silences else '-'} s (allowed {allowance:g} s)",
        )
    )
    lost_a = sum(
        max(0, FRAMES_PER_SECOND * int(window[1] - window[0]) - frames_in(c["bins"], *window))
        for c in survivors
    )
    figures.append(f"frames lost by A's listeners around B's kill: {lost_a:,}")

    # B's listeners: dropped with B, back once B is.
    dropped = [
        c
        for c in b_conns
        if c["error"] is None
        and any(events.daphne_killed <= t < events.daphne_back for t, _ in c["closes"])
    ]
    returns = [
        back - gone
        for c in dropped
        for gone, back in c["reconnects"]
        if events.daphne_killed <= gone < events.daphne_back
    ]
    came_back = [
        any(events.daphne_killed <= gone < events.daphne_back for gone, _ in c["reconnects"])
        for c in dropped
    ]
    hearing = [frames_in(c["bins"], events.daphne_back, events.redis_killed) > 0 for c in dropped]
    checks.append(
        (
            "B's listeners reconnect and hear again",
            bool(dropped) and all(came_back) and all(hearing),
            f"{sum(came_back)} of {len(dropped)} dropped came back, "
            f"{sum(hearing)} hear again; reconnect {figure(returns)} "
            f"(B was down {events.daphne_back - events.daphne_killed:.1f} s; all back "
            f"{events.b_rejoined - events.daphne_back:.0f} s after it was)",
        )
    )

    # Redis killed and restarted empty.
    redis_window = (events.redis_killed - 1, events.end - 1)
    through = [c for c in opened if open_throughout(c, *redis_window)]
    recovery = [first_frame_after(c["bins"], events.redis_back) for c in through]
    recovered = [r for r in recovery if r is not None]
    checks.append(
        (
            "every listener hears again after Redis returns",
            bool(through)
            and len(recovered) == len(through)
            and max(recovered) <= RECOVERY_ALLOWANCE,
            f"{len(recovered)} of {len(through)} listeners; first frame after Redis is back: "
            f"{figure(recovered)}",
        )
    )
    on_window = (events.recording_on - 1, events.recording_on + 5)
    before = [c for c in opened if open_throughout(c, *on_window)]
    got_on = [
        any(events.recording_on <= t < events.recording_on + 10 for t in c["watched"])
        for c in before
    ]
    after = [c for c in through if open_throughout(c, events.recording_off - 1, events.end - 1)]
    got_off = [
        any(events.recording_off <= t < events.recording_off + 10 for t in c["watched"])
        for c in after
    ]
    checks.append(
        (
            "control events reach everyone, before the faults and after Redis",
            bool(before) and all(got_on) and bool(after) and all(got_off),
            f"before: {sum(got_on)} of {len(before)}; after Redis: {sum(got_off)} of {len(after)}",
        )
    )

    # Voice tweets uploaded just before the worker was killed.
    states = events.tweet_states
    settled_in = (
        f"{events.tweets_settled - events.worker_back:.0f} s after the worker's restart"
        if events.tweets_settled
        else "not within the wait"
    )
    checks.append(
        (
            "no voice tweet left processing after the worker's kill",
            len(events.tweet_ids) == args.tweets and not states.get("processing"),
            f"{len(events.tweet_ids)} uploaded; when the worker was killed: "
            f"{events.tweets_at_kill}; in the end: {states}; settled {settled_in}",
        )
    )

    gone_in = (
        f"{events.participants_gone - events.listeners_done:.0f} s after the listeners left"
        if events.participants_gone
        else "not within the wait"
    )
    checks.append(
        (
            "no participant left after the sweep",
            events.participants_left == 0,
            f"{events.participants_left} rows left; empty {gone_in}",
        )
    )

    summaries = [run["summary"]["connections"] for run in outcome["listeners"]]
    figures.append(
        "connect: "
        + "; ".join(
            f"{name} p50 {s['connect_seconds']['p50']} s p95 {s['connect_seconds']['p95']} s"
            for name, s in zip("AB", summaries, strict=True)
        )
    )
    figures.append(f"'Exception inside application' in daphne logs: {outcome['crashes']}")
    speaker = outcome["speaker"]
    figures.append(
        f"speaker: {speaker.frames:,} frames sent, fell behind {speaker.stalls} times"
        + (f", ended with {speaker.error}" if speaker.error else "")
    )
    return checks, figures


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=60.0, help="hold once all are in")
    parser.add_argument(
        "--ramp",
        type=float,
        default=40.0,
        help="listeners opened per second (40: a 2,000 room fills in 50 s)",
    )
    parser.add_argument("--tweets", type=int, default=6, help="uploaded before the worker dies")
    parser.add_argument("--down", type=float, default=4.0, help="seconds each victim stays down")
    parser.add_argument(
        "--stalled",
        type=int,
        default=20,
        help="SALON_VOICETWEET_STALLED_SECONDS (a tweet queued but never started)",
    )
    parser.add_argument("--settle", type=float, default=240.0, help="max wait after the run")
    parser.add_argument(
        "--join-timeout", type=float, default=180.0, help="max wait for everyone to join"
    )
    parser.add_argument(
        "--bundle-from",
        type=int,
        default=500,
        help="SALON_AUDIO_BUNDLE_FROM for both processes (default 500: each holds about 1,000 "
        "listeners, right at Salon's default of 1,000; 0: never)",
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.seconds < 30:
        print("--seconds must be at least 30: the faults need room", file=sys.stderr)
        return 2
    started = time.time()
    print("Fault run (bench/fault_run.py)")
    print(
        f"{args.listeners} listeners over 2 daphne processes, {args.seconds:g} s; worker, daphne B "
        f"and Redis each killed for {args.down:g} s; {os.cpu_count()} CPUs"
    )

    def terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    from tests import services

    workdir = Path(tempfile.mkdtemp(prefix="salon-faults-"))
    events = Events()
    try:
        members, space_id = prepare(args, workdir)
        outcome = asyncio.run(run(args, workdir, events, members, space_id))
    except KeyboardInterrupt:
        print("interrupted: stopping everything", file=sys.stderr)
        return 130
    finally:
        stop_everything()
        services.stop()
        print(f"logs: {workdir}")
    checks, figures = analyse(args, events, outcome)
    print()
    for name, passed, detail in checks:
        print(f"{'PASS' if passed else 'FAIL'}  {name}: {detail}")
    print()
    for line in figures:
        print(f"  {line}")
    failed = sum(1 for _, passed, _ in checks if not passed)
    print(f"\n{len(checks) - failed} passed, {failed} failed in {time.time() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
