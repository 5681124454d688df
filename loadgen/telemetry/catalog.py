"""Every metric the suite exports live: name, kind, unit and buckets, in one table.

The OpenTelemetry GenAI semantic conventions name what they define (``gen_ai.*``, Development status,
semconv v1.41 / semantic-conventions-genai); the rest is ours under ``ollama_loadtest.*``. Prometheus
sees each through the OTel mapping: dots become underscores, the unit ``s`` adds ``_seconds``, ``{…}``
units add nothing (``{request}/s`` adds ``_per_second``), a counter adds ``_total`` and a histogram
gives ``_bucket``/``_sum``/``_count``. Pure data: importable without the ``[otel]`` extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Kind = Literal["histogram", "counter", "gauge"]

#: The GenAI conventions' duration buckets (seconds).
DURATION_BUCKETS: Final = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
#: ``gen_ai.client.token.usage``: 1, 4, 16, ... 4**13.
TOKEN_BUCKETS: Final = tuple(float(4**i) for i in range(14))
SERVER_TTFT_BUCKETS: Final = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                              10.0)
SERVER_TPOT_BUCKETS: Final = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)

# -- attribute keys ---------------------------------------------------------------------------------
OPERATION: Final = "gen_ai.operation.name"  # chat, text_completion
PROVIDER: Final = "gen_ai.provider.name"  # the host's server: ollama, llamacpp, ...
MODEL: Final = "gen_ai.request.model"
TOKEN_TYPE: Final = "gen_ai.token.type"  # input, output
ADDRESS: Final = "server.address"
PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"  # the record's error class (timeout, busy_503, ...)
WORKLOAD: Final = "ollama_loadtest.workload"
HOST: Final = "ollama_loadtest.host"  # the scenario's name for the host
STAGE: Final = "ollama_loadtest.stage"  # the stage label, as in stages.csv (s2-u8, c4, probe-u6...)
STAGE_MODE: Final = "ollama_loadtest.stage.mode"
BOUND: Final = "ollama_loadtest.bound"  # exact, or at_least: the load never offered more


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    kind: Kind
    unit: str
    description: str
    buckets: tuple[float, ...] = ()


CLIENT_DURATION: Final = Metric(
    "gen_ai.client.operation.duration", "histogram", "s",
    "End-to-end time of each request as the client saw it, failed ones with error.type", DURATION_BUCKETS)
CLIENT_TOKENS: Final = Metric(
    "gen_ai.client.token.usage", "histogram", "{token}",
    "Prompt (input) and output tokens per successful request, as the server counted them", TOKEN_BUCKETS)
CLIENT_TTFT: Final = Metric(
    "gen_ai.client.operation.time_to_first_chunk", "histogram", "s",
    "Time to the first content token of each successful streamed request, on the client's clock",
    DURATION_BUCKETS)
SERVER_DURATION: Final = Metric(
    "gen_ai.server.request.duration", "histogram", "s",
    "The server's own total time per successful request (Ollama total_duration)", DURATION_BUCKETS)
SERVER_TTFT: Final = Metric(
    "gen_ai.server.time_to_first_token", "histogram", "s",
    "The server's time from receiving a request to its first token (Ollama total - eval duration: queue, "
    "load and prompt evaluation)", SERVER_TTFT_BUCKETS)
SERVER_TPOT: Final = Metric(
    "gen_ai.server.time_per_output_token", "histogram", "s",
    "The server's decode time per output token after the first (eval duration / (output tokens - 1))",
    SERVER_TPOT_BUCKETS)
SLOT_WAIT: Final = Metric(
    "ollama_loadtest.slot.wait", "histogram", "s",
    "Time a request waited for a parallel slot (Ollama total - load - prompt eval - eval duration)",
    DURATION_BUCKETS)
ERRORS: Final = Metric(
    "ollama_loadtest.errors", "counter", "{request}",
    "Failed requests by error.type; busy_503 is the server's queue overflowing")
IN_FLIGHT: Final = Metric(
    "ollama_loadtest.requests.in_flight", "gauge", "{request}",
    "Requests sent and not yet answered, summed over every load generator")
SERVER_BUSY: Final = Metric(
    "ollama_loadtest.server.slots.busy", "gauge", "{slot}", "Slots decoding now, as the server reports them")
SERVER_QUEUED: Final = Metric(
    "ollama_loadtest.server.queued", "gauge", "{request}", "Requests waiting for a slot, as the server reports them")
SERVER_SLOTS: Final = Metric(
    "ollama_loadtest.server.slots.total", "gauge", "{slot}", "Slots configured, as the server reports them")
SLOTS_INFERRED: Final = Metric(
    "ollama_loadtest.slots.inferred", "gauge", "{slot}",
    "Parallel slots inferred from the requests' overlap (ollama_loadtest.bound at_least: the load never offered "
    "more)")
STAGE_USERS: Final = Metric(
    "ollama_loadtest.stage.users", "gauge", "{user}",
    "Users of the stage, level or capacity probe going on, labelled with the stage")
STAGE_RATE: Final = Metric(
    "ollama_loadtest.stage.rate", "gauge", "{request}/s", "Open-loop arrival rate of the stage going on")

METRICS: Final = (CLIENT_DURATION, CLIENT_TOKENS, CLIENT_TTFT, SERVER_DURATION, SERVER_TTFT, SERVER_TPOT, SLOT_WAIT,
                  ERRORS, IN_FLIGHT, SERVER_BUSY, SERVER_QUEUED, SERVER_SLOTS, SLOTS_INFERRED, STAGE_USERS,
                  STAGE_RATE)
