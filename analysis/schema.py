"""The files a run leaves behind: the per-request record, the stage table and run metadata.

This module is the contract between the load generator (``locustfiles``, which writes these files) and
the analysis (which reads them). It is pure standard library so that load-generating workers can import
it without pulling in pandas. The columns follow the record contract in ``DESIGN.md``; ``docs/records.md``
explains each one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, Final, TypedDict

REQUESTS_FILE: Final = "requests.csv"
STAGES_FILE: Final = "stages.csv"
CAPACITY_FILE: Final = "capacity.json"
RUN_FILE: Final = "run.json"
SERVER_METRICS_FILE: Final = "server_metrics.csv"


class ErrorClass(StrEnum):
    """Why a request failed. A successful request has ``NONE`` (an empty ``error`` cell)."""

    NONE = ""
    CONNECT = "connect"  # connection refused, reset before a response, DNS failure
    TIMEOUT = "timeout"  # connect, first byte or whole-request deadline passed
    BUSY_503 = "busy_503"  # the server's queue is full ("server busy"), or any 503
    HTTP_4XX = "http_4xx"
    HTTP_5XX = "http_5xx"
    STREAM_BROKEN = "stream_broken"  # reset mid-stream, an {"error":...} line, EOF without done
    BAD_RESPONSE = "bad_response"  # unparseable body or a body missing required fields
    CANCELLED = "cancelled"  # the run stopped the request before it completed


class FirstTokenClock(StrEnum):
    """What timed a host's ``t_first_token`` and ``t_first_thinking`` (``run.json``: each host's
    ``first_token_clock``)."""

    KERNEL_RECEIVE = "kernel_receive"  # when the kernel received the bytes (SO_TIMESTAMPNS): plain HTTP on Linux
    CLIENT_READ = "client_read"  # when the client read them: TLS, or a system without SO_TIMESTAMPNS


#: llama.cpp's ``/props`` ``build_info`` of a build made without version information (xllamacpp's wheels):
#: build 0, commit unknown. Not a version.
LLAMACPP_UNKNOWN_BUILD: Final = "b0-unknown"


class WorkloadKind(StrEnum):
    AGENT_LOOP = "agent_loop"
    CHAT = "chat"
    BATCH = "batch"


class Api(StrEnum):
    OLLAMA = "ollama"  # native /api/chat and /api/generate
    OPENAI = "openai"  # /v1/chat/completions and /v1/completions (Ollama, llama.cpp, vLLM)


@dataclass(slots=True)
class RequestRecord:
    """One LLM request as the client saw it, plus the server's own timers.

    Times (``t_*``) are Unix epoch seconds from the client's clock; durations (``*_s``) are seconds.
    ``None`` is written as an empty cell. Derived metrics (TTFT, TPOT, slot wait...) are computed by
    the analysis, never stored here.
    """

    run_id: str
    worker: int  # Locust worker index (0 for a local run)
    user_id: int  # unique within the worker
    session_id: str  # one chat conversation / agent job / batch; unique within the run
    step: int  # the request's index within its session
    workload: str  # the scenario workload's name
    kind: str  # WorkloadKind
    host: str  # the scenario host's name (run.json maps names to URLs)
    api: str  # Api
    endpoint: str  # URL path, e.g. /api/chat
    model: str
    stream: bool
    t_scheduled: float | None  # open-loop arrivals: when the request was due to be sent
    t_start: float  # request sent
    t_first_token: float | None  # first visible content token received
    t_first_thinking: float | None  # first thinking token received (thinking models)
    t_end: float  # response complete, or failed
    status: int  # HTTP status, 0 when no response arrived
    error: str  # ErrorClass
    error_detail: str
    prompt_tokens: int | None  # server count: prompt_eval_count / usage.prompt_tokens
    cached_tokens: int | None  # prompt tokens served from the prompt cache, when reported
    output_tokens: int | None  # server count: eval_count / usage.completion_tokens
    thinking_tokens: int | None  # streamed chunks that carried thinking text
    tool_calls: int | None  # tool calls in the response
    server_total_s: float | None  # Ollama total_duration
    server_load_s: float | None  # Ollama load_duration (scheduler queue + model load)
    server_prompt_eval_s: float | None  # Ollama prompt_eval_duration, llama.cpp timings.prompt_ms
    server_eval_s: float | None  # Ollama eval_duration, llama.cpp timings.predicted_ms
    num_predict: int | None  # output length asked for
    done_reason: str  # stop, length, load, unload, tool_calls...; empty when unknown

    def to_row(self) -> list[Any]:
        """The record as one CSV row in ``RECORD_COLUMNS`` order (``None`` becomes an empty cell)."""
        return [_cell(getattr(self, name)) for name in RECORD_COLUMNS]


RECORD_COLUMNS: Final[tuple[str, ...]] = tuple(f.name for f in fields(RequestRecord))

#: Column groups by type, for readers that need dtypes (pandas) or validation.
INT_COLUMNS: Final = frozenset(
    {
        "worker",
        "user_id",
        "step",
        "status",
        "prompt_tokens",
        "cached_tokens",
        "output_tokens",
        "thinking_tokens",
        "tool_calls",
        "num_predict",
    }
)
FLOAT_COLUMNS: Final = frozenset(
    {
        "t_scheduled",
        "t_start",
        "t_first_token",
        "t_first_thinking",
        "t_end",
        "server_total_s",
        "server_load_s",
        "server_prompt_eval_s",
        "server_eval_s",
    }
)
BOOL_COLUMNS: Final = frozenset({"stream"})
STRING_COLUMNS: Final = frozenset(RECORD_COLUMNS) - INT_COLUMNS - FLOAT_COLUMNS - BOOL_COLUMNS


#: Each column's place in a record row (``RequestRecord.to_row``), for readers of rows as they travel.
COLUMN_INDEX: Final = {name: index for index, name in enumerate(RECORD_COLUMNS)}


def row_number(row: Sequence[Any], column: str) -> float | None:
    """A numeric cell of a record row as a float; ``None`` for an empty cell (``to_row``'s ``None``)."""
    cell = row[COLUMN_INDEX[column]]
    return None if cell == "" or cell is None else float(cell)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return round(value, 6)
    return value


#: ``stages.csv``: one row per load stage, written by the master (or local runner) as stages end.
#: ``rate`` is the open-loop arrival rate (requests/s) and empty for closed-loop stages; requests that
#: start within ``warmup_s`` of ``t_begin`` are warm-up and left out of the stage's statistics.
STAGE_COLUMNS: Final[tuple[str, ...]] = ("stage", "mode", "users", "rate", "t_begin", "t_end", "warmup_s")


#: ``server_metrics.csv``: the servers' own view of saturation, sampled during the run where a server
#: exposes it (llama.cpp ``/metrics``: requests_processing / requests_deferred; ``/slots`` count).
#: Empty cells where the server does not report a value (Ollama has no busy-slot endpoint).
SERVER_METRICS_COLUMNS: Final[tuple[str, ...]] = ("t", "host", "busy", "queued", "total_slots")


class LocustEntry(StrEnum):
    """``request_type`` of the entries the load generator puts into Locust's own statistics.

    Each entry's name is ``locust_entry_name(workload, model, host)``; response time is in ms and the
    response length of ``E2E`` entries is the request's output token count.
    """

    E2E = "E2E"  # whole request: send to last chunk
    TTFT = "TTFT"  # send to first content token
    JOB = "JOB"  # a whole agent job (all its steps and tool latencies)
    BATCH = "BATCH"  # a whole batch: first send to last response


def locust_entry_name(workload: str, model: str, host: str) -> str:
    """The Locust entry name for a workload's requests to one model on one host."""
    return f"{workload} {model}@{host}"


def parse_locust_entry_name(name: str) -> tuple[str, str, str] | None:
    """Split a name made by ``locust_entry_name`` into (workload, model, host); ``None`` if it is not one."""
    workload, sep, rest = name.partition(" ")
    model, at, host = rest.rpartition("@")
    if not (sep and at and workload and model and host):
        return None
    return workload, model, host


class HostInfo(TypedDict, total=False):
    name: str
    url: str
    api: str
    weight: float  # the host's share of requests under `routing: weighted`
    embedded: str  # "emulator", "llamacpp" or "ollama" when the run started it; absent for external hosts
    settings: dict[str, Any]  # embedded server settings (slots, preset...)
    binary: str  # embedded ollama: the executable started
    environment: dict[str, str]  # embedded ollama: the variables the run set (OLLAMA_NUM_PARALLEL...)
    models_dir: str  # embedded ollama: the model store it used (OLLAMA_MODELS)
    server: str  # "ollama", "llamacpp", "openai-compatible" as detected
    version: str  # /api/version (Ollama), /props build info (llama.cpp), "xllamacpp X" (embedded llama.cpp)
    first_token_clock: str  # FirstTokenClock: what timed the first tokens from this host
    ps: list[dict[str, Any]]  # /api/ps models at start (Ollama)


class WorkerInfo(TypedDict, total=False):
    index: int
    client_id: str
    hostname: str
    requests_sent: int  # the worker's own count of requests it started
    records_received: int  # records that reached the master from it
    vanished_at: float | None  # when the master marked it missing, if it did


class RunInfo(TypedDict, total=False):
    """``run.json``, written by the master (or local runner) at the start and rewritten at the end."""

    run_id: str
    scenario: dict[str, Any]  # name, description, file, sha256
    variant: str | None
    swept: dict[str, Any]  # a sweep's setting values for this run (num_parallel: 4); empty otherwise
    started_at: float
    ended_at: float | None
    complete: bool  # false until the run ended gracefully
    versions: dict[str, str]  # suite, locust, python
    hosts: list[HostInfo]
    workers: list[WorkerInfo]
    load: dict[str, Any]  # the resolved load plan
    slo: dict[str, float]  # e2e_p95_s, ttft_p95_s, slot_wait_p95_s, error_rate
    workloads: list[dict[str, Any]]  # name, kind, api, endpoint, model, num_predict
