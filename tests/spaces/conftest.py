"""Fixtures for the spaces tests (helpers live in factories.py: conftests load before Django)."""

import pytest


@pytest.fixture
async def sockets():
    """Open sockets as members (``await sockets.open(space, user)``); all closed after the test."""

    from asgiref.sync import sync_to_async
    from rest_framework.authtoken.models import Token

    from .factories import SpaceSocket

    class Sockets:
        def __init__(self):
            self.opened: list[SpaceSocket] = []

        async def open(self, space_id: int, user, *, expect_snapshot: bool = True):
            token = await sync_to_async(lambda: Token.objects.get_or_create(user=user)[0].key)()
            socket = SpaceSocket(space_id, user, token=token)
            self.opened.append(socket)
            await socket.connect()
            if expect_snapshot:
                socket.snapshot = await socket.receive_type("snapshot")
            return socket

    registry = Sockets()
    yield registry
    for socket in registry.opened:
        await socket.disconnect()
