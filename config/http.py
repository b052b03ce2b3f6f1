"""HTTP helpers shared by the apps: byte-range file responses."""

from __future__ import annotations

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
