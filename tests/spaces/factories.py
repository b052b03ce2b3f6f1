"""Helpers for the spaces tests: members, spaces built through services, checked sockets."""

from __future__ import annotations

import time

import numpy as np
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission

from spaces import services
from spaces.models import Participant
from spaces.protocol import validate_event
from spaces.selectors import HOSTS_GROUP


def make_member(username: str, *, host: bool = False):
    user = get_user_model().objects.create_user(username=username, password="x-pass-12345")
    if host:
        # The group comes from a data migration, which transactional tests flush away.
        group, _ = Group.objects.get_or_create(name=HOSTS_GROUP)
        group.permissions.add(Permission.objects.get(codename="host_space"))
        user.groups.add(group)
        user = get_user_model().objects.get(pk=user.pk)  # drop the permission cache
    return user


def make_live_space(host, *, visibility: str = "open", title: str = "Morning show"):
    return _beside_a_running_loop(
        services.space_create, host=host, title=title, visibility=visibility
    )


def _beside_a_running_loop(function, /, **kwargs):
    """Call a service; on a thread of its own when this one runs an event loop (Playwright's,
    in the browser tests): the events it sends on commit (the hallway, followers'
    notifications) go through async_to_sync, which refuses to run beside a running loop."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return function(**kwargs)

    def run():
        try:
            return function(**kwargs)
        finally:
            connection.close()  # the thread's own connection would outlive the test database

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


class SpaceSocket:
    """A WebsocketCommunicator on /ws/spaces/<id>/ that checks every frame against the protocol."""

    def __init__(self, space_id: int, user=None, *, token: str | None = None, path=None):
        from config.asgi import application

        headers = [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1")]
        if token:
            headers.append((b"authorization", f"Token {token}".encode()))
        self.user = user
        self.audio: list[bytes] = []
        self.communicator = WebsocketCommunicator(
            application, path or f"/ws/spaces/{space_id}/", headers=headers
        )

    async def connect(self):
        connected, _ = await self.communicator.connect()
        assert connected
        return self

    async def receive(self, timeout: float = 10) -> dict:
        """The next JSON event; binary audio frames in between are kept in ``self.audio``."""
        while True:
            event = await self._receive_one(timeout)
            if event is not None:
                return event

    async def _receive_one(self, timeout: float) -> dict | None:
        """The next frame: a JSON event, or None for audio (kept in ``self.audio``)."""
        import json

        output = await self.communicator.receive_output(timeout)
        assert output["type"] == "websocket.send", output
        if output.get("bytes") is not None:
            self.audio.append(output["bytes"])
            return None
        event = json.loads(output["text"])
        assert validate_event(event) == [], event
        return event

    async def receive_audio(self, timeout: float = 10) -> bytes:
        """The next audio frame; JSON events in between are checked and skipped."""
        while True:
            count = len(self.audio)
            await self._receive_one(timeout)
            if len(self.audio) > count:
                return self.audio[-1]

    async def receive_type(self, kind: str, timeout: float = 10, **match) -> dict:
        """Skip frames until one of ``kind`` (with the ``match`` fields) arrives."""
        while True:
            event = await self.receive(timeout)
            if event["type"] == kind and all(event.get(k) == v for k, v in match.items()):
                return event

    async def send(self, message: dict) -> None:
        await self.communicator.send_json_to(message)

    async def receive_close(self, timeout: float = 10) -> dict:
        """Skip frames until the server closes; returns the close message."""
        while True:
            output = await self.communicator.receive_output(timeout)
            if output["type"] == "websocket.close":
                return output
            if output.get("text"):
                import json

                assert validate_event(json.loads(output["text"])) == []

    async def drain(self, timeout: float = 0.3) -> list[dict]:
        """Every frame that arrives until the socket is quiet for ``timeout`` seconds."""
        events = []
        while not await self.communicator.receive_nothing(timeout):
            event = await self._receive_one(timeout=10)
            if event is not None:
                events.append(event)
        return events

    async def nothing(self, timeout: float = 0.3) -> bool:
        return await self.communicator.receive_nothing(timeout)

    async def disconnect(self) -> None:
        if self.communicator.future.done():
            # The consumer already finished: it closed the socket, or a receive that timed
            # out cancelled it (asgiref does). Sending to it would raise CancelledError, which
            # pytest does not catch in teardown: the database flush after it would be skipped.
            return
        await self.communicator.disconnect()


def session_cookie(user) -> bytes:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def cookie_socket(space_id: int, cookie: bytes) -> WebsocketCommunicator:
    from config.asgi import application

    headers = [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1"), (b"cookie", cookie)]
    return WebsocketCommunicator(application, f"/ws/spaces/{space_id}/", headers=headers)


def _wait_for_participant(space, user, timeout: float = 10.0) -> None:
    """A listener who joined with a ticket is written with the next batch (spaces/live/presence.py,
    ListenerBatch): wait for its row, as a host can only act on a listener it can see."""
    deadline = time.monotonic() + timeout
    while not Participant.objects.filter(space=space, user=user).exists():
        if time.monotonic() > deadline:
            return  # the service below says why
        time.sleep(0.02)


def put_on_stage(space, host, user, role: str) -> None:
    """Give a participant ``role`` through the same services the host would use."""
    if role == "listener":
        return
    _wait_for_participant(space, user)
    services.hand_raise(space=space, user=user)
    services.hand_approve(space=space, by=host, user_id=user.pk)
    if role == "cohost":
        services.cohost_add(space=space, by=host, user_id=user.pk)


def record_turns(path, turns) -> None:
    """What a room's owner writes while recorded: speakers taking turns, mixed, recorded.

    ``turns``: ``(speaker_id, seconds, frequency)``; each speaker says a tone, then their
    still open microphone sends a second of silence before the next turn.
    """
    from spaces.audio import OpusEncoder, RoomMixer
    from spaces.audio.recorder import MixRecorder

    from .audio.signals import sine, split_frames

    mixer = RoomMixer()
    recorder = MixRecorder(path)
    mixer.mix_observers.append(recorder.on_mix)
    mixer.levels_observers.append(recorder.on_levels)
    encoders: dict = {}
    tick = 0
    for speaker_id, seconds, frequency in turns:
        if speaker_id not in encoders:
            mixer.add_speaker(speaker_id)
            encoders[speaker_id] = [OpusEncoder(), 0]
        encoder = encoders[speaker_id]
        signal = np.concatenate(
            [sine(frequency, round(seconds * 50)), np.zeros(50 * 960, np.int16)]
        )
        for frame in split_frames(signal):
            mixer.push(speaker_id, encoder[1], encoder[0].encode(frame), tick * 0.02)
            encoder[1] += 1
            mixer.tick()
            tick += 1
    recorder.close()


def make_replay(host, *, visibility: str = "open", invite=(), seconds: float = 1.0, turns=None):
    """A space recorded from its start where the host said a tone (or ``turns``, see
    record_turns), ended, and its replay processed (ready). ``invite``: members invited while
    it was live."""
    from spaces.models import Replay

    space = services.space_create(
        host=host, title="Recorded show", visibility=visibility, is_recording=True
    )
    for member in invite:
        services.space_invite(space=space, by=host, username=member.username)
    turns = turns or [(host.pk, seconds, 440.0)]
    record_turns(services.replay_segment_start(space_id=space.pk), turns)
    services.space_end(space=space, by=host)
    replay = Replay.objects.get(space=space)
    services.replay_process(replay_id=replay.pk)
    replay.refresh_from_db()
    return replay
