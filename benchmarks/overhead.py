"""Measurement overhead and capacity of our load generator against the emulator (issue 9, items 1-2).

Each level runs the real ``locust -f locustfiles --headless --processes P`` with N closed-loop streaming
chat users (one request per session, no think time) against an emulator started with N slots, every
stream decoding at ``--tps`` tokens/s (answers of 30-50 tokens). Over a steady window after the ramp it
measures:

- **TTFT error**: the client's ``t_first_token`` minus the emulator's ``first_chunk`` (when it wrote the
  first content chunk), per request, joined on ``X-Request-Id``: what our client adds to TTFT;
- the CPU share of each worker process, the master and the emulator, from /proc (psutil);
- the streams actually held (request time inside the window / window) and the output tokens/s (one chunk per token).

Overhead: N = 1, 100, 500 on one worker process, each level twice side by side: without the live
exporters, and with them (``--metrics-port`` scraped every second and ``--otel`` exporting every second
to an OTLP sink; ``--exporters off`` skips the second). Capacity: for ``--processes`` 1 and 2, N grows along
``--capacity-levels`` until a worker's CPU exceeds 80% or the TTFT error p99 exceeds 2 ms; the capacity
is the last level within both. Every figure comes from this one run.

    .venv/bin/python benchmarks/overhead.py                       # full run, about 10 minutes
    .venv/bin/python benchmarks/overhead.py --levels 1,20 --capacity-levels 50 --window 3   # smoke

Loopback only; every run is bounded by its duration.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import harness

CPU_LIMIT = 80.0  # % of one core, per worker process
P99_LIMIT_MS = 2.0


@dataclass
class Level:
    """One locust run at one concurrency level, measured over its steady window."""

    users: int
    processes: int
    requests: int
    errors: int
    held: float  # streams in flight on average during the window
    req_s: float
    tokens_s: float
    p50_ms: float
    p99_ms: float
    worker_cpu: float  # the busiest worker process, % of one core
    master_cpu: float
    emulator_cpu: float
    box_cpu: float  # the whole machine, % of all cores
    consumed: str = ""  # with the exporters on: what reached their consumers ("12 scrapes, 11 OTLP exports")

    @property
    def within_goal(self) -> bool:
        return self.worker_cpu <= CPU_LIMIT and self.p99_ms <= P99_LIMIT_MS and self.requests > 0


def scenario(url: str, users: int, api: str) -> dict:
    """N closed-loop streaming users, one request per session, no think time, distinct prompts."""
    return {
        "name": "bench-overhead",
        "api": api,
        "model": "llama3.2:latest",
        "hosts": [{"name": "emu", "url": url}],
        "options": {"temperature": 0, "seed": "per_request", "timeout": "60s"},
        "workloads": [{"name": "stream", "kind": "chat", "turns": 1, "think_time": 0,
                       "prompts": {"synthetic": {"words": {"min": 20, "max": 40}, "count": 1000}}}],
        "load": {"shape": "steady", "users": users, "spawn_rate": max(users / 2, 1),
                 "stop_timeout": "1s"},
    }  # fmt: skip


def measure(users: int, processes: int, args: argparse.Namespace, exporters: bool = False) -> Level:
    """Run locust at ``users`` streams on ``processes`` worker processes and measure its steady window;
    ``exporters``: with the live metrics exported and consumed."""
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        extra, env, consumed = stack.enter_context(harness.metrics_consumers()) if exporters else ([], {}, None)
        trace = work / "trace.jsonl"
        emulator = harness.start_emulator(*harness.emulator_flags(max(users, 1), args.tps, trace))
        try:
            run = harness.run_locust(scenario(emulator.url, users, args.api), processes, args.ramp, args.window,
                                     work, watch=[emulator.proc.pid], extra=extra, env=env)  # fmt: skip
        finally:
            emulator.stop()  # flushes the trace
        sent = harness.first_tokens_in(run.requests, run.begin, run.end)
        errors = harness.ttft_errors_ms(sent, harness.trace_by_id(harness.read_trace(trace)))
    held, req_s, tokens_s = harness.window_rates(run.requests, run.begin, run.end)
    return Level(
        users=users,
        processes=processes,
        requests=len(errors),
        errors=sum(r.error not in ("", "cancelled") for r in run.requests),
        held=held,
        req_s=req_s,
        tokens_s=tokens_s,
        p50_ms=harness.pct(errors, 50),
        p99_ms=harness.pct(errors, 99),
        worker_cpu=max(run.cpu.get(pid, float("nan")) for pid in run.workers),
        master_cpu=run.cpu.get(run.master, float("nan")),
        emulator_cpu=run.cpu.get(emulator.proc.pid, float("nan")),
        box_cpu=run.machine_cpu,
        consumed=f"{consumed['scrapes']} scrapes, {consumed['exports']} OTLP exports" if consumed is not None else "",
    )


def row(level: Level) -> list[str]:
    return [str(level.users), str(level.processes), f"{level.held:.0f}", str(level.requests), f"{level.req_s:.1f}",
            f"{level.tokens_s:.0f}", f"{level.p50_ms:.2f} ms", f"{level.p99_ms:.2f} ms", f"{level.worker_cpu:.0f}%",
            f"{level.master_cpu:.0f}%", f"{level.emulator_cpu:.0f}%", f"{level.box_cpu:.0f}%",
            str(level.errors)]  # fmt: skip


HEADER = ["users", "worker processes", "streams held", "requests sent in window", "req/s", "tokens/s",
          "TTFT error p50", "TTFT error p99", "busiest worker CPU", "master CPU", "emulator CPU", "machine CPU",
          "errors"]  # fmt: skip


def capacity(processes: int, levels: list[int], args: argparse.Namespace) -> tuple[int, list[Level]]:
    """Raise the users until a worker passes 80% CPU or the p99 TTFT error passes 2 ms."""
    best, runs = 0, []
    for users in levels:
        level = measure(users, processes, args)
        runs.append(level)
        print(f"  capacity {processes}p {users} users: p99 {level.p99_ms:.2f} ms, worker CPU {level.worker_cpu:.0f}%",
              file=sys.stderr, flush=True)
        if not level.within_goal:
            break
        best = users
    return best, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,100,500", help="overhead: concurrent streams on one worker process")
    parser.add_argument("--capacity-levels", default="1000,1250,1500,1750,2000,2500,3000",
                        help="capacity: users tried in turn per worker process count (comma list)")
    parser.add_argument("--capacity-processes", default="1,2", help="worker process counts for the capacity search")
    parser.add_argument("--tps", type=float, default=10.0, help="decode tokens/s of every stream")
    parser.add_argument("--ramp", type=float, default=8.0, help="seconds from the run's start to the window")
    parser.add_argument("--window", type=float, default=15.0, help="seconds of steady measurement per level")
    parser.add_argument("--exporters", default="on", choices=["on", "off"],
                        help="on: measure each overhead level with the live metrics exporters too")
    parser.add_argument("--api", default="openai", choices=["openai", "ollama"],
                        help="openai: /v1/chat/completions SSE; ollama: /api/chat NDJSON")
    args = parser.parse_args()
    print(f"machine: {harness.machine()}", flush=True)
    overhead, exported = [], []
    for users in [int(n) for n in args.levels.split(",")]:
        overhead.append(measure(users, 1, args))
        print(f"  overhead {users} users: p99 {overhead[-1].p99_ms:.2f} ms", file=sys.stderr, flush=True)
        if args.exporters == "on":
            exported.append(measure(users, 1, args, exporters=True))
            print(f"  with exporters {users} users: p99 {exported[-1].p99_ms:.2f} ms", file=sys.stderr, flush=True)
    found: list[tuple[int, int, list[Level]]] = []
    for processes in [int(p) for p in args.capacity_processes.split(",") if p]:
        scale = [int(n) * processes for n in args.capacity_levels.split(",")]
        found.append((processes, *capacity(processes, scale, args)))
    print(f"\n{args.api} API, {args.tps:g} tok/s per stream, 30-50 tokens per answer, window {args.window:g} s "
          f"after {args.ramp:g} s ramp; TTFT error = client t_first_token - emulator first_chunk\n")
    print("### Measurement overhead (one worker process)\n")
    print(harness.markdown_table(HEADER, [row(level) for level in overhead]))
    if exported:
        print("\n### With the live exporters (--metrics-port scraped every 1 s, --otel exporting every 1 s)\n")
        print(harness.markdown_table(HEADER + ["consumed"], [row(level) + [level.consumed] for level in exported]))
    print(f"\n### Capacity (busiest worker <= {CPU_LIMIT:.0f}% CPU and TTFT error p99 <= {P99_LIMIT_MS:g} ms)\n")
    print(harness.markdown_table(HEADER + ["within goal"],
                                 [row(level) + ["yes" if level.within_goal else "no"]
                                  for _, _, runs in found for level in runs]))  # fmt: skip
    print()
    for processes, best, runs in found:
        tried = ", ".join(str(level.users) for level in runs)
        print(f"- capacity with {processes} worker process(es): **{best} users** (tried {tried})")


if __name__ == "__main__":
    main()
