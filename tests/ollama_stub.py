"""A tiny Ollama look-alike that writes down the ``Authorization`` header of every request it gets.

``python -m tests.ollama_stub LOG`` listens on a free loopback port, prints
``listening on http://127.0.0.1:PORT``, and appends ``{"path": ..., "request_id": ..., "authorization": ...}``
to LOG for each request. It answers ``/api/version``, ``/api/ps`` and streamed ``/api/chat`` / ``/api/generate``;
every ``ECHO_EVERY``-th inference request gets a 401 whose message quotes the header back, as careless
authenticating proxies do, so a test can check that no error message carries the token into the outputs.
"""

from __future__ import annotations

import itertools
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ECHO_EVERY = 4
_count = itertools.count(1)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the suite's client expects

    def do_GET(self) -> None:
        self._note()
        if self.path == "/api/version":
            self._send(200, json.dumps({"version": "0.0.0-stub"}).encode())
        elif self.path == "/api/ps":
            self._send(200, json.dumps({"models": []}).encode())
        else:
            self._send(404, b'{"error":"not found"}')

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        authorization = self._note()
        if self.path not in ("/api/chat", "/api/generate"):
            self._send(404, b'{"error":"not found"}')
        elif next(_count) % ECHO_EVERY == 0:
            self._send(401, json.dumps({"error": f"unauthorized: rejected {authorization!r}"}).encode())
        else:
            self._send(200, b"".join(json.dumps(chunk).encode() + b"\n" for chunk in _chunks(self.path, body)),
                       "application/x-ndjson")

    def _note(self) -> str:
        authorization = self.headers.get("Authorization", "")
        with open(sys.argv[1], "a", encoding="utf-8") as log:
            log.write(json.dumps({"path": self.path, "request_id": self.headers.get("X-Request-Id", ""),
                                  "authorization": authorization}) + "\n")
        return authorization

    def _send(self, status: int, payload: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet


def _chunks(path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    model = body.get("model", "")
    if path == "/api/chat":
        return [{"model": model, "message": {"role": "assistant", "content": "Hi"}, "done": False},
                {"model": model, "message": {"role": "assistant", "content": ""}, "done": True,
                 "done_reason": "stop", "eval_count": 1, "prompt_eval_count": 3}]
    return [{"model": model, "response": "Hi", "done": False},
            {"model": model, "response": "", "done": True, "done_reason": "stop", "eval_count": 1}]


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
