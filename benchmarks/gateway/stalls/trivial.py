"""A trivial ASGI app answering the mock's JSON body: a Python server on the same CPU as
the gateway, doing almost nothing per request (for run.sh)."""

import os
from pathlib import Path
from typing import Any

BODY = Path(os.environ["BODY_FILE"]).read_bytes()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})
