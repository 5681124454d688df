"""``POST /api/pull``: Ollama's ``PullHandler`` with a registry that has every model and a download
that takes no time. The model joins the catalog (``/api/tags`` lists it from then on); progress comes
as Ollama streams it (``pulling manifest``, one ``pulling <digest>`` per layer, ``verifying sha256
digest``, ``writing manifest``, ``success``), or as the last line alone with ``"stream": false``.
"""

from __future__ import annotations

from emulator.exchange import NDJSON_TYPE, Exchange, dumps
from emulator.interface import Emulator
from emulator.validation import ApiError, check_fields, decode_body

PULL_FIELDS = {"model": "string", "name": "string", "insecure": "bool", "stream": "bool", "username": "string",
               "password": "string"}


async def pull(app: Emulator, ex: Exchange) -> None:
    body = decode_body(ex.req.body, "PullRequest")
    check_fields(body, PULL_FIELDS, "PullRequest")
    name = str(body.get("model") or body.get("name") or "").strip()
    if not name or any(ch.isspace() for ch in name):
        raise ApiError(400, "invalid model name")
    model = app.catalog.pull(name)
    ex.model = model.name
    layer = model.digest[:12]
    progress = [
        {"status": "pulling manifest"},
        {"status": f"pulling {layer}", "digest": f"sha256:{model.digest}", "total": model.size,
         "completed": model.size},
        {"status": "verifying sha256 digest"},
        {"status": "writing manifest"},
        {"status": "success"},
    ]
    if body.get("stream") is False:
        ex.send_json(progress[-1])
    else:
        ex.send(200, b"".join(dumps(line) + b"\n" for line in progress), NDJSON_TYPE)
