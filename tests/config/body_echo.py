"""An ASGI application that answers with what it received of the body (for
tests/config/test_http_server.py)."""

import hashlib
import json


async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        return
    digest, length, sizes = hashlib.sha256(), 0, []
    while True:
        message = await receive()
        assert message["type"] == "http.request"
        digest.update(message["body"])
        length += len(message["body"])
        sizes.append(len(message["body"]))
        if not message.get("more_body"):
            break
    body = json.dumps({"sha256": digest.hexdigest(), "length": length, "largest": max(sizes)})
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})
