"""One request from arrival to its last byte: responses, error shapes, Ollama's timers, the trace line."""

from __future__ import annotations

import json
from typing import Any

from emulator.clock import monotonic, to_epoch
from emulator.engine import Sequence
from emulator.faults import GARBAGE, Fault
from emulator.httpserver import Connection, Request
from emulator.inference import MID_STREAM, Stamps, StreamSequence

JSON_TYPE = "application/json; charset=utf-8"  # Gin's c.JSON
NDJSON_TYPE = "application/x-ndjson"
SSE_TYPE = "text/event-stream"


def dumps(obj: Any) -> bytes:
    """Compact JSON as Go's ``json.Marshal`` writes it (UTF-8, no spaces)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


class Exchange:
    """A request being served, with what the trace needs to know about it."""

    def __init__(self, req: Request, conn: Connection, fault: Fault | None, openai: bool) -> None:
        self.req = req
        self.conn = conn
        self.fault = fault
        self.openai = openai  # errors in OpenAI's shape
        self.stamps = Stamps(req.t_received, req.t_received)
        self.status = 0
        self.error = ""
        self.model = ""
        self.stream = False
        self.done_reason = ""
        self.seq: Sequence | None = None
        self.t_first_write = 0.0
        self.t_last_write = 0.0

    # --- responses ----------------------------------------------------------------------------------
    def send_json(self, obj: Any, status: int = 200) -> None:
        """A whole JSON response (Gin's ``c.JSON``; the OpenAI middleware's encoder adds a newline)."""
        body = dumps(obj) + b"\n" if self.openai else dumps(obj)
        self.send(status, body, "application/json" if self.openai else JSON_TYPE)

    def send(self, status: int, body: bytes, content_type: str) -> None:
        """A whole response, with a mid-stream fault (if one was picked) applied to it instead."""
        self.status = status
        fault = self.fault
        if fault is not None and fault.kind in MID_STREAM and status == 200:
            self._inject(fault, body, content_type)
        else:
            self.conn.send(status, body, content_type)
        self.t_first_write = self.t_last_write = monotonic()

    def _inject(self, fault: Fault, body: bytes, content_type: str) -> None:
        if fault.kind == "reset":
            self.conn.abort()
        elif fault.kind == "truncate":  # promise the whole body, deliver half of it, hang up
            head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
            self.conn.write(head.encode() + body[: len(body) // 2])
            self.conn.close()
        elif fault.kind == "garbage":
            self.conn.send(200, GARBAGE, content_type)
        else:  # error_line: a non-streamed response reports the error with its status, as Ollama does
            self.status = 500
            self.conn.send(500, self.error_body(fault.message), "application/json" if self.openai else JSON_TYPE)

    def error_body(self, message: str) -> bytes:
        """``{"error": message}``, or OpenAI's error object on ``/v1``."""
        if not self.openai:
            return dumps({"error": message})
        kind = {400: "invalid_request_error", 404: "not_found_error"}.get(self.status, "api_error")
        return dumps({"error": {"message": message, "type": kind, "param": None, "code": None}}) + b"\n"

    def send_error(self, status: int, message: str) -> None:
        """An error response before any byte of the body went out."""
        self.status = status
        self.error = message
        self.conn.send(status, self.error_body(message), "application/json" if self.openai else JSON_TYPE)
        self.t_first_write = self.t_last_write = monotonic()

    def start_stream(self, seq: StreamSequence) -> None:
        self.stream = True
        self.seq = seq
        self.status = 200

    # --- timers -------------------------------------------------------------------------------------
    def timers(self) -> dict[str, int]:
        """``total_duration`` (handler entry to now) and ``load_duration`` (to the runner), in ns."""
        s = self.stamps
        return {"total_duration": _ns(monotonic() - s.t_start), "load_duration": _ns(s.t_runner - s.t_start)}

    def metrics(self, seq: Sequence) -> dict[str, int]:
        """Ollama's final-chunk metrics, measured now; zero fields are omitted (``omitempty``)."""
        values = {
            **self.timers(),
            "prompt_eval_count": seq.prompt_tokens,
            "prompt_eval_duration": _ns(seq.prompt_eval_s),
            "eval_count": seq.emitted,
            "eval_duration": _ns(seq.eval_s),
        }
        return {k: v for k, v in values.items() if v}

    def trace(self) -> dict[str, Any]:
        """The trace line: server-side epoch times and the modelled durations."""
        s, seq = self.stamps, self.seq
        first, last = self.t_first_write, self.t_last_write
        if isinstance(seq, StreamSequence):
            first, last = seq.t_first_write, seq.t_last_write

        def epoch(t: float) -> float | None:
            return round(to_epoch(t), 6) if t else None

        record: dict[str, Any] = {
            "request_id": self.req.headers.get("x-request-id", ""),
            "path": self.req.path,
            "model": self.model,
            "status": self.status,
            "stream": self.stream,
            "received": epoch(s.t_received),
            "handler_start": epoch(s.t_start),
            "runner_acquired": epoch(s.t_runner),
            "slot_acquired": epoch(s.t_slot),
            "first_chunk": epoch(first),
            "last_chunk": epoch(last),
            "done_reason": self.done_reason,
            "fault": self.fault.kind if self.fault else "",
            "cancelled": s.cancelled,
            "error": self.error,
        }
        if seq is not None:
            record.update(
                prefill_start=epoch(seq.t_prefill_start),
                prefill_end=epoch(seq.t_prefill_end),
                last_token=epoch(seq.t_last),
                prompt_tokens=seq.prompt_tokens,
                cached_tokens=seq.prompt_tokens - seq.prefill_tokens,
                cache_slot=seq.cache_slot,
                eval_count=seq.emitted,
                prompt_eval_s=round(seq.prompt_eval_s, 9),
                eval_s=round(seq.eval_s, 9),
                model_prefill_s=round(seq.model_prefill_s, 9),
                model_decode_s=round(seq.model_decode_s, 9),
            )
        return record
