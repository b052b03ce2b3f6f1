"""Daphne's HTTP side for ``manage.py serve``: request bodies capped before they are stored, kept
on disk, and handed to the application a chunk at a time.

Daphne alone lets Twisted collect the whole body, has Twisted parse a multipart body into memory
(``request.args``, which nobody reads), then copies every chunk into the application's queue at
once; the ASGI middleware's 413 came only after all of that. A 60 MB upload took the process
from 136 MB to 905 MB. Here:

* the cap (config.request_bodies.RequestBodyLimits) is checked once the headers are in: a body
  declared larger gets its 413 before one byte of it is read, and a chunked body is cut off as
  it streams past the cap. Either way the connection closes;
* the body goes to a temporary file as it arrives (Twisted's BytesIO only for small declared
  bodies);
* the application reads the body from that file as it asks for it (StreamingBodyQueue), so at
  most one chunk is in memory per request; Django spools it to its own file and the multipart
  parser streams the upload into a TemporaryUploadedFile.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
from functools import partial
from urllib.parse import unquote

import daphne.server  # before anything imports a reactor: it installs the asyncio one
from daphne.http_protocol import HTTPFactory, WebRequest

from config.request_bodies import RequestBodyLimits, too_large_body

# Bytes of body per ``http.request`` message (daphne's default is 8 KiB).
BODY_CHUNK_BYTES = 64 * 1024
# Declared bodies up to this size stay in memory while they arrive (Twisted's own threshold):
# forms and JSON, not worth a file each.
IN_MEMORY_BODY_BYTES = 100_000


class BoundedWebRequest(WebRequest):
    """Daphne's request, with the body cap and the body kept on disk (see the module)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Twisted would read a form or multipart body whole into memory to fill request.args.
        self._parsePOSTFormSubmission = False
        self.body_limit: int | None = None
        self.body_received = 0
        self.body_refused = False
        self.body_file = None

    def gotLength(self, length: int | None) -> None:
        """All headers are in; ``length`` is the declared Content-Length (None if chunked)."""
        headers = self.requestHeaders
        self.body_limit = self.channel.factory.body_limits.limit_for(
            self._target_path(),
            cookie=_last(headers.getRawHeaders(b"cookie")),
            authorization=_last(headers.getRawHeaders(b"authorization")),
        )
        if length is not None and length > self.body_limit:
            # Not "100 Continue" (the channel would send it next): the client must not send.
            headers.removeHeader(b"expect")
            self._refuse_body()
            return
        if length is None or length > IN_MEMORY_BODY_BYTES:
            self.content = tempfile.TemporaryFile()  # noqa: SIM115 - closed with the request
        else:
            self.content = io.BytesIO()

    def handleContentChunk(self, data: bytes) -> None:
        if self.body_refused:
            return  # already in the socket's buffer when the connection was closed
        self.body_received += len(data)
        if self.body_received > self.body_limit:
            self._refuse_body()
            return
        self.content.write(data)

    def requestReceived(self, command, path, version):
        if self.body_refused:
            return  # the end of a body we cut off was in the same read
        super().requestReceived(command, path, version)

    def process(self):
        # Daphne's process() copies self.content into the application's queue at once; give it
        # nothing to copy, and let the queue read the body from its file as the application asks.
        self.content.seek(0)
        self.body_file, self.content = self.content, io.BytesIO()
        return super().process()

    def connectionLost(self, reason):
        self._close_body_file()
        super().connectionLost(reason)

    def finish(self):
        self._close_body_file()
        super().finish()

    def _close_body_file(self) -> None:
        if self.body_file is not None:
            self.body_file.close()

    def _target_path(self) -> str:
        # The request line is parsed but Request.path is only set once the body is in; decode it
        # the way daphne does for the ASGI scope, so both layers match the same prefixes.
        target = getattr(self.channel, "_path", b"/").split(b"?", 1)[0]
        return unquote(target.decode("ascii", errors="replace"))

    def _refuse_body(self) -> None:
        """Answer 413 and close, reading no more of the body.

        Twisted does not consider the request received yet (and never will), so the answer goes
        to the transport directly, as Twisted's own 400s do.
        """
        self.body_refused = True
        accept = _last(self.requestHeaders.getRawHeaders(b"accept"))
        content_type, body = too_large_body(
            self.body_limit, path=self._target_path(), accept=accept
        )
        self.channel.transport.write(
            b"HTTP/1.1 413 Content Too Large\r\n"
            b"Content-Type: " + content_type + b"\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n"
            b"Connection: close\r\n\r\n" + body
        )
        self.channel.loseConnection()
        peer = self.client
        self.server.log_action(
            "http",
            "complete",
            {
                "path": self._target_path(),
                "status": 413,
                "method": getattr(self.channel, "_command", b"-").decode("ascii", "replace"),
                "client": f"{peer.host}:{peer.port}" if hasattr(peer, "host") else None,
                "time_taken": 0.0,
                "size": len(body),
            },
        )


class BoundedHTTPFactory(HTTPFactory):
    """Daphne's HTTP factory, building BoundedWebRequests with the caps from settings."""

    def __init__(self, server):
        from django.conf import settings

        super().__init__(server)
        self.body_limits = RequestBodyLimits.from_settings(settings)

    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = BoundedWebRequest
        return protocol


class StreamingBodyQueue(asyncio.Queue):
    """One HTTP request's ``receive`` queue: the body comes from its file, a chunk per ``get``,
    only as fast as the application reads; other messages (``http.disconnect``) queue as usual
    and go first."""

    def __init__(self, request: BoundedWebRequest):
        super().__init__()
        self._request = request
        self._body_done = False

    def put_nowait(self, message):
        if message["type"] == "http.request":
            return  # daphne's copy of the (emptied) content; the body comes from the file
        super().put_nowait(message)

    async def get(self):
        body_file = self._request.body_file
        if self._body_done or not self.empty() or body_file is None or body_file.closed:
            return await super().get()
        chunk = body_file.read(BODY_CHUNK_BYTES)
        more_body = len(chunk) == BODY_CHUNK_BYTES
        if not more_body:
            self._body_done = True
            body_file.close()
        return {"type": "http.request", "body": chunk, "more_body": more_body}


class BodyStreamingServer(daphne.server.Server):
    """Daphne's server, giving each BoundedWebRequest a StreamingBodyQueue."""

    def create_application(self, protocol, scope):
        if not isinstance(protocol, BoundedWebRequest) or scope["type"] != "http":
            return super().create_application(protocol, scope)
        # daphne.server.Server.create_application, with our queue.
        assert "application_instance" not in self.connections[protocol]  # noqa: S101
        input_queue = StreamingBodyQueue(protocol)
        scope.setdefault("asgi", {"version": "3.0"})
        application_instance = self.application(
            scope=scope, receive=input_queue.get, send=partial(self.handle_reply, protocol)
        )
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(
            application_instance, loop=asyncio.get_event_loop()
        )
        return input_queue


def _last(values: list[bytes] | None) -> bytes | None:
    return values[-1] if values else None
