"""Page benchmark: the list pages and list APIs under 10 concurrent clients.

Run: .venv/bin/python bench/bench_pages.py [--clients 10] [--seconds 10] [--quick]

What it does:

1. Seeds a throwaway PostgreSQL and Redis (tests/services.py, through bench_fanout's
   setup_django) with the issue's data: 50 members (one viewer following the other 49, each of
   whom follows 10 others), 500 ready voice tweets (100-bar waveforms, some replies and likes),
   30 spaces (20 live with a speaker and 5 listeners each, 10 scheduled; three per host) and 5
   ready replays. Runs one ``manage.py serve`` (real mode: ``DJANGO_DEBUG=0``) whose URLconf
   (bench/pages_urls.py) adds one plain Django view returning a constant: the baseline.
2. For each target (the baseline, ``/``, a profile, ``/spaces/``, the API feed, the API
   spaces), ``--clients`` threads each keep one HTTP/1.1 connection and send GETs back to back
   for ``--seconds`` (after a short warm-up), pages with the viewer's session cookie, API calls
   with its token. Every answer must be a 200.
3. Prints per target p50/p95 latency and requests/s (answers / wall time), and p50 over the
   baseline's p50.

Goal (issue #18): p50 <= 50 ms for each page under 10 clients. The client threads share the
machine with the server: on a small machine the baseline shows what that costs.
``--quick``: 2 s per target (proves the bench works; its figures are noise).
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shlex
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bench_fanout as fanout  # noqa: E402  (bench/ is on sys.path when run as a script)

MEMBERS = 50
VOICE_TWEETS = 500
LIVE_SPACES = 20
SCHEDULED_SPACES = 10
REPLAYS = 5


def seed() -> dict:
    """The data set; returns the viewer's session cookie and token and a profile to open."""
    import math
    import uuid
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.test import Client
    from django.utils import timezone

    from accounts.models import Follow
    from accounts.services import auth_token_issue
    from spaces.models import Participant, Replay, Space
    from voicetweets.models import Like, VoiceTweet

    rng = random.Random(18)
    user_model = get_user_model()
    members = user_model.objects.bulk_create(
        [
            user_model(
                username=f"member{index:02d}",
                display_name=f"Member {index}",
                password=make_password(None),
            )
            for index in range(MEMBERS)
        ]
    )
    viewer, others = members[0], members[1:]
    follows = [Follow(follower=viewer, followee=other) for other in others]
    for member in others:
        for followee in rng.sample([m for m in members if m != member], 10):
            follows.append(Follow(follower=member, followee=followee))
    Follow.objects.bulk_create(follows, ignore_conflicts=True)

    tweets = []
    for index in range(VOICE_TWEETS):
        phase = rng.uniform(2, 8)
        tweets.append(
            VoiceTweet(
                author=members[index % MEMBERS],
                text=f"Voice tweet {index}" if index % 3 else "",
                state=VoiceTweet.State.READY,
                duration_ms=rng.randint(3_000, 140_000),
                waveform=[round(0.1 + 0.85 * abs(math.sin(i / phase)), 3) for i in range(100)],
                audio="voicetweets/bench.ogg",
                like_count=index % 4,
            )
        )
    tweets = VoiceTweet.objects.bulk_create(tweets)
    replies = tweets[::10]
    for position, tweet in enumerate(replies[1:]):
        tweet.parent = replies[position]
    VoiceTweet.objects.bulk_update(replies[1:], ["parent"])
    Like.objects.bulk_create(
        [Like(user=viewer, voice_tweet=t) for t in tweets[::7]], ignore_conflicts=True
    )

    now = timezone.now()
    hosts = others[: (LIVE_SPACES + SCHEDULED_SPACES) // 3]
    spaces = []
    for index in range(LIVE_SPACES + SCHEDULED_SPACES):
        live = index < LIVE_SPACES
        spaces.append(
            Space(
                host=hosts[index % len(hosts)],
                title=f"Space {index}",
                state=Space.State.LIVE if live else Space.State.SCHEDULED,
                visibility=rng.choice(["open", "open", "followers"]),
                started_at=now - timedelta(minutes=index) if live else None,
                scheduled_start=None if live else now + timedelta(hours=index + 1),
            )
        )
    spaces = Space.objects.bulk_create(spaces)
    participants = []
    for space in spaces[:LIVE_SPACES]:
        crowd = rng.sample([m for m in others if m.pk != space.host_id], 6)
        participants.append(
            Participant(space=space, user=space.host, role=Participant.Role.HOST, last_seen=now)
        )
        participants.append(
            Participant(space=space, user=crowd[0], role=Participant.Role.SPEAKER, last_seen=now)
        )
        participants += [
            Participant(space=space, user=m, role=Participant.Role.LISTENER, last_seen=now)
            for m in crowd[1:]
        ]
    Participant.objects.bulk_create(participants)
    for index in range(REPLAYS):
        ended = Space.objects.create(
            host=hosts[index],
            title=f"Ended space {index}",
            state=Space.State.ENDED,
            started_at=now - timedelta(days=1),
            ended_at=now - timedelta(hours=20),
        )
        Replay.objects.create(
            space=ended,
            state=Replay.State.READY,
            directory=f"replays/{uuid.uuid4().hex}",
            duration_ms=3_600_000,
            waveform=[rng.randint(5, 95) for _ in range(200)],
        )
    client = Client()
    client.force_login(viewer)
    return {
        "session": client.cookies["sessionid"].value,
        "token": auth_token_issue(user=viewer).key,
        "profile": f"/u/{hosts[0].username}/",
    }


def targets(data: dict) -> list[tuple[str, str, dict]]:
    page = {"Cookie": f"sessionid={data['session']}"}
    api = {"Authorization": f"Token {data['token']}"}
    return [
        ("baseline (constant view)", "/bench/constant", page),
        ("/", "/", page),
        ("profile", data["profile"], page),
        ("/spaces/", "/spaces/", page),
        ("API feed", "/api/v1/voicetweets/feed/", api),
        ("API spaces", "/api/v1/spaces/", api),
    ]


def hammer(
    port: int, path: str, headers: dict, *, clients: int, seconds: float, warmup: float
) -> dict:
    """``clients`` threads, each GET after GET on its own connection, for ``seconds``."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    start_at = time.monotonic() + warmup
    stop_at = start_at + seconds

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        while True:
            began = time.monotonic()
            if began >= stop_at:
                break
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                status = type(error).__name__
            if status != 200:
                with lock:
                    failures.append(str(status))
            elif began >= start_at:
                mine.append(time.monotonic() - began)
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"latencies": latencies, "failures": failures, "seconds": seconds}


def report_line(name: str, result: dict, baseline_p50: float | None) -> str:
    values = result["latencies"]
    p50 = fanout.percentile(values, 0.5)
    p95 = fanout.percentile(values, 0.95)
    rate = len(values) / result["seconds"]
    ratio = f"{p50 / baseline_p50:6.1f}x" if baseline_p50 and p50 else "     -"
    failed = f"  {len(result['failures'])} failed: {sorted(set(result['failures']))}" * bool(
        result["failures"]
    )
    return (
        f"{name:<26} {fanout.ms(p50):>9} {fanout.ms(p95):>9} {rate:>9.1f}/s {ratio}"
        f"  ({len(values)} answers){failed}"
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0, help="per target")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--quick", action="store_true", help="2 s per target")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.warmup = 2.0, 0.5
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    print("Page benchmark (bench/bench_pages.py)")
    print(f"command: {shlex.join([Path(fanout.PYTHON).name, *sys.argv])}")
    print(
        f"machine: {os.cpu_count()} CPUs (nproc), Python {sys.version.split()[0]}, "
        f"{os.uname().sysname} {os.uname().release}"
    )
    print(
        f"data: {MEMBERS} members, {VOICE_TWEETS} voice tweets, "
        f"{LIVE_SPACES + SCHEDULED_SPACES} spaces, {REPLAYS} replays; {args.clients} clients, "
        f"{args.seconds:g} s per target"
    )

    def terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    from tests import services

    workdir = Path(tempfile.mkdtemp(prefix="salon-pages-"))
    lines = []
    try:
        fanout.setup_django(workdir)
        data = seed()
        port = fanout.free_port()
        log = workdir / "daphne.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "pages_settings",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), str(ROOT)]),
            "DJANGO_DEBUG": "0",
            "SALON_LOG_LEVEL": os.environ.get("SALON_LOG_LEVEL", "WARNING"),
        }
        server = fanout.spawn(
            [fanout.PYTHON, "manage.py", "serve", "--port", str(port)], log=log, env=env
        )
        fanout.wait_for_http(f"http://127.0.0.1:{port}/bench/constant", server, log)
        baseline_p50 = None
        for name, path, headers in targets(data):
            result = hammer(
                port,
                path,
                headers,
                clients=args.clients,
                seconds=args.seconds,
                warmup=args.warmup,
            )
            if baseline_p50 is None:
                baseline_p50 = fanout.percentile(result["latencies"], 0.5)
            lines.append(report_line(name, result, baseline_p50))
    except KeyboardInterrupt:
        print("interrupted: stopping everything", file=sys.stderr)
    finally:
        fanout.stop_children()
        services.stop()
    print(f"{'target':<26} {'p50':>9} {'p95':>9} {'rate':>11} {'/base':>6}")
    print("\n".join(lines))
    print("goal: p50 <= 50 ms per page under 10 clients")
    print(f"logs: {workdir}")


if __name__ == "__main__":
    main()
