"""Group sends to N channels: RedisChannelLayer against RedisPubSubChannelLayer, same run.

Control events (hands, mutes, reactions) reach every member of a space through a Channels
group, so the layer's cost per group message decides how large a room's control traffic can
get. Audio does not go this way (see docs/audio.md): this bench is why.

Run: .venv/bin/python bench/bench_channel_layers.py [--quick] [--sizes 100,500,1000]
It starts its own Redis (tests/services.py) and prints delivered messages per second and
Redis CPU per layer and room size, and the ratio between the layers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import services

LAYERS = {
    "RedisChannelLayer": "channels_redis.core.RedisChannelLayer",
    "RedisPubSubChannelLayer": "channels_redis.pubsub.RedisPubSubChannelLayer",
}


def redis_cpu_seconds(url: str) -> float:
    import redis

    info = redis.Redis.from_url(url).info("cpu")
    return info["used_cpu_sys"] + info["used_cpu_user"]


async def run_layer(path: str, url: str, *, members: int, messages: int) -> dict:
    module, name = path.rsplit(".", 1)
    layer_class = getattr(__import__(module, fromlist=[name]), name)
    layer = layer_class(hosts=[url], capacity=messages * 2, prefix=f"bench{time.time_ns()}")
    channels = [await layer.new_channel() for _ in range(members)]
    for channel in channels:
        await layer.group_add("room", channel)
    received = 0
    done = asyncio.Event()

    async def listen(channel: str) -> None:
        nonlocal received
        for _ in range(messages):
            await layer.receive(channel)
            received += 1
            if received == members * messages:
                done.set()

    listeners = [asyncio.create_task(listen(c)) for c in channels]
    await asyncio.sleep(0.5)  # subscriptions settle before timing starts
    cpu_before, started = redis_cpu_seconds(url), time.perf_counter()
    for n in range(messages):
        await layer.group_send("room", {"type": "space.reaction", "n": n})
    with contextlib.suppress(TimeoutError):  # an incomplete delivery shows in "complete"
        await asyncio.wait_for(done.wait(), timeout=120)
    elapsed = time.perf_counter() - started
    cpu = redis_cpu_seconds(url) - cpu_before
    for task in listeners:
        task.cancel()
    await asyncio.gather(*listeners, return_exceptions=True)
    if hasattr(layer, "flush"):
        await layer.flush()
    return {
        "delivered": received,
        "expected": members * messages,
        "seconds": elapsed,
        "per_second": received / elapsed,
        "redis_cpu": cpu,
    }


async def main(sizes: list[int], messages: int) -> None:
    url = os.environ["REDIS_URL"]
    print(f"machine: {os.cpu_count()} cores; {messages} group messages per room size\n")
    print(f"{'members':>8} {'layer':<24} {'delivered/s':>12} {'complete':>9} {'redis CPU s':>12}")
    for size in sizes:
        results = {}
        for label, path in LAYERS.items():
            result = await run_layer(path, url, members=size, messages=messages)
            results[label] = result
            complete = f"{result['delivered'] / result['expected']:.0%}"
            print(
                f"{size:>8} {label:<24} {result['per_second']:>12,.0f} {complete:>9} "
                f"{result['redis_cpu']:>12.2f}"
            )
        core, pubsub = results["RedisChannelLayer"], results["RedisPubSubChannelLayer"]
        speed = pubsub["per_second"] / core["per_second"]
        cpu = pubsub["redis_cpu"] / max(core["redis_cpu"], 1e-6)
        print(f"{'':>8} pub/sub ÷ core: {speed:.2f}× delivered/s, {cpu:.2f}× Redis CPU\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,500,1000")
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sizes = [100] if args.quick else [int(s) for s in args.sizes.split(",")]
    messages = 10 if args.quick else args.messages
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    services.start()
    try:
        asyncio.run(main(sizes, messages))
    finally:
        services.stop()
