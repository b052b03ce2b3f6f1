"""HTTP helpers shared by the apps: byte-range file responses and the request body cap."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from django.http import FileResponse, HttpRequest, HttpResponse

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def ranged_file_response(request: HttpRequest, path: Path, content_type: str) -> HttpResponse:
    """Serve ``path`` with HTTP Range support (206), which audio elements need to seek.

    Only single ranges are served; a multi-range or unsatisfiable request gets 416.
    """
    size = os.path.getsize(path)
    header = request.headers.get("Range", "").strip()
    if not header:
        response = FileResponse(open(path, "rb"), content_type=content_type)  # noqa: SIM115
        response["Accept-Ranges"] = "bytes"
        return response
    match = _RANGE.match(header)
    if not match or match.group(1) == match.group(2) == "":
        return _unsatisfiable(size)
    first, last = match.groups()
    if first == "":  # suffix range: the last N bytes
        length = min(int(last), size)
        start, end = size - length, size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        return _unsatisfiable(size)
    with open(path, "rb") as handle:
        handle.seek(start)
        body = handle.read(end - start + 1)
    response = HttpResponse(body, status=206, content_type=content_type)
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    return response


def _unsatisfiable(size: int) -> HttpResponse:
    response = HttpResponse(status=416)
    response["Content-Range"] = f"bytes */{size}"
    return response


class RequestBodyLimitMiddleware:
    """ASGI middleware: refuse request bodies over a size cap before Django reads them.

    Django's ASGI handler reads the whole body (to memory, then disk) before any view runs, so a
    view cannot stop an oversized upload in time. This answers 413 from the Content-Length alone,
    and cuts off a body that grows past the cap without one (chunked) or beyond what it declared.
    ``limits`` maps path prefixes to byte caps; the longest matching prefix wins.
    """

    def __init__(self, app, *, default_limit: int, limits: dict[str, int]):
        self.app = app
        self.default_limit = default_limit
        self.limits = sorted(limits.items(), key=lambda item: len(item[0]), reverse=True)

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        return self.default_limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit_for(scope["path"])
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                declared_length = int(declared)
            except ValueError:
                return await _send_json(send, 400, "Content-Length is not a number.")
            if declared_length > limit:
                return await _send_json(send, 413, _too_large(limit))

        received = 0

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        try:
            return await self.app(scope, counting_receive, send)
        except BodyTooLarge:
            # Django had not answered yet: it answers only after reading the whole body.
            return await _send_json(send, 413, _too_large(limit))


class BodyTooLarge(Exception):
    pass


def _too_large(limit: int) -> str:
    return f"Request body too large: the limit here is {limit // (1024 * 1024)} MB."


async def _send_json(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
