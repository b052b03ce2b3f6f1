"""HTTP helpers shared by the apps: byte-range file responses."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# What one read takes from the file: a response never holds more of it than this at once.
FILE_CHUNK_BYTES = 64 * 1024


def ranged_file_response(request: HttpRequest, path: Path, content_type: str) -> HttpResponse:
    """Stream ``path`` with HTTP Range support (206), which audio elements need to seek.

    Only single ranges are served; a multi-range or unsatisfiable request gets 416. The file is
    read a chunk at a time as the response goes out, never whole, under ASGI off the event loop.
    """
    size = os.path.getsize(path)
    header = request.headers.get("Range", "").strip()
    status, start, end = 200, 0, size - 1
    if header:
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
        status = 206
    # Django's ASGI handler would read a synchronous iterator into a list before sending it.
    chunks = _AsyncFileRange if isinstance(request, ASGIRequest) else _FileRange
    handle = open(path, "rb")  # noqa: SIM115 - the response closes it
    response = StreamingHttpResponse(
        chunks(handle, start, end - start + 1), status=status, content_type=content_type
    )
    response["Content-Length"] = str(end - start + 1)
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    return response


class _FileChunks:
    """``length`` bytes of an open file from ``start``, a chunk at a time. The response closes
    the file once sent, or when it is dropped unsent."""

    def __init__(self, handle, start: int, length: int):
        self.handle, self.start, self.length = handle, start, length

    def close(self) -> None:
        self.handle.close()

    def _read(self, remaining: int) -> bytes:
        return self.handle.read(min(FILE_CHUNK_BYTES, remaining))


class _FileRange(_FileChunks):
    def __iter__(self):
        self.handle.seek(self.start)
        remaining = self.length
        while remaining > 0 and (chunk := self._read(remaining)):
            remaining -= len(chunk)
            yield chunk


class _AsyncFileRange(_FileChunks):
    """For the ASGI handler: each read on a worker thread, so a slow disk never stops the event
    loop that also carries the live rooms. (No ``__iter__``: Django would take it instead.)"""

    async def __aiter__(self):
        await asyncio.to_thread(self.handle.seek, self.start)
        remaining = self.length
        while remaining > 0 and (chunk := await asyncio.to_thread(self._read, remaining)):
            remaining -= len(chunk)
            yield chunk


def _unsatisfiable(size: int) -> HttpResponse:
    response = HttpResponse(status=416)
    response["Content-Range"] = f"bytes */{size}"
    return response
