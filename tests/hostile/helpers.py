"""Helpers for the hostile-input suite."""

from __future__ import annotations

import asyncio
import functools
import io
import itertools
import json

from spaces.audio import wire
from spaces.audio.codec import FRAME_SAMPLES
from spaces.protocol import validate_event
from tests.spaces.test_media import tone_frames

# Close codes docs/protocol.md lists: a hostile socket may end with one of these, never another.
# Not 1011 (the server failed): no input may make it fail.
DOCUMENTED_CLOSE_CODES = {1000, 1008, 1009, 4000, 4001, 4002, 4401, 4403, 4404, 4409, 4410}


def multipart(
    fields: dict[str, str],
    files: dict[str, tuple[str, bytes]],
    *,
    boundary: str = "hostile-boundary",
    file_content_type: str = "audio/wav",
) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type: ``fields`` as text parts, then
    ``files`` (field name -> (file name, bytes))."""
    body = io.BytesIO()
    for key, value in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'
        body.write(f"{head}{value}\r\n".encode())
    for key, (filename, data) in files.items():
        body.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"; '
            f'filename="{filename}"\r\nContent-Type: {file_content_type}\r\n\r\n'.encode()
        )
        body.write(data + b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
    return body.getvalue(), f"multipart/form-data; boundary={boundary}"


@functools.cache
def _tone_payloads(frequency: int) -> list[bytes]:
    # One second of a whole-hertz tone is a whole number of periods: it loops seamlessly.
    return [wire.unpack(frame).payload for frame in tone_frames(frequency, 50)]


def speaker_frames(frequency: int = 440, start: int = 0):
    """An endless tone as speaker frames (wire format), numbered from ``start``."""
    payloads = itertools.cycle(_tone_payloads(frequency))
    for sequence, payload in zip(itertools.count(start), payloads):
        yield wire.pack(
            wire.FrameKind.SPEAKER_AUDIO,
            sequence % wire.UINT32_MODULO,
            sequence * FRAME_SAMPLES % wire.UINT32_MODULO,
            payload,
        )


async def talk_forever(socket, frequency: int = 440) -> None:
    """A microphone playing a tone: one frame every 20 ms, until cancelled.

    It goes on after the server closed the socket, as a hostile client would.
    """
    loop = asyncio.get_running_loop()
    due = loop.time()
    for frame in speaker_frames(frequency):
        await socket.communicator.send_to(bytes_data=frame)
        due += 0.02
        # Behind (the loop was busy, or stopped between examples): start afresh rather than
        # send the backlog in a burst, which the frame rate limit would close the socket for.
        due = max(due, loop.time() - 0.04)
        await asyncio.sleep(max(0.0, due - loop.time()))


async def await_audio(socket, frames: int, *, timeout: float) -> None:
    """Read ``socket`` until ``frames`` audio frames sent from now on arrived (what the socket
    had already queued does not count)."""
    loop = asyncio.get_running_loop()
    while not socket.communicator.output_queue.empty():
        await socket._receive_one(timeout=10)
    target = len(socket.audio) + frames
    deadline = loop.time() + timeout
    while len(socket.audio) < target:
        try:
            # A receive that times out cancels the consumer (asgiref): only ever as a failure.
            await socket._receive_one(timeout=max(0.0, deadline - loop.time()))
        except TimeoutError:
            raise AssertionError(
                f"{target - len(socket.audio)} of {frames} audio frames missing after {timeout} s"
            ) from None


async def probe(socket, request_id: str, *, timeout: float = 10) -> dict:
    """Whether ``socket`` still answers: send an unknown message type and read until its error
    comes back, or until the server closes the socket.

    Returns ``{"answered": True, "events": [...]}`` or ``{"closed": code, "events": [...]}``,
    with every event received meanwhile (each checked against the protocol). A consumer that
    crashed raises its exception here.
    """
    await socket.communicator.send_json_to({"type": "probe.ping", "request_id": request_id})
    events = []
    # Audio keeps arriving whatever the consumer does: the whole exchange has a deadline.
    async with asyncio.timeout(timeout):
        return await _probe_answer(socket, request_id, events)


async def _probe_answer(socket, request_id: str, events: list) -> dict:
    while True:
        output = await socket.communicator.receive_output(timeout=60)
        if output["type"] == "websocket.close":
            return {"closed": output.get("code", 1000), "events": events}
        assert output["type"] == "websocket.send", output
        if output.get("bytes") is not None:
            continue  # the room's audio: this member is in the room too
        event = json.loads(output["text"])
        assert validate_event(event) == [], event
        if event["type"] == "error" and event["request_id"] == request_id:
            assert event["code"] == "unknown_type", event
            return {"answered": True, "events": events}
        events.append(event)


async def fresh_audio(socket, frames: int, *, timeout: float = 15) -> list[bytes]:
    """The next ``frames`` audio frames ``socket`` receives, sent from now on."""
    await await_audio(socket, 0, timeout=timeout)  # skip what was already queued
    start = len(socket.audio)
    await await_audio(socket, frames, timeout=timeout)
    return socket.audio[start:]
