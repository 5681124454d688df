"""Our load generator side by side with a peer, GuideLLM, and with the plain HTTP tools (issue 9, item 3).

Streaming, per target and concurrency level, one tool after the other (never at once), each against a
freshly started server, with the same prompts (a JSONL file of distinct prompts), the same body
(``max_tokens``, ``ignore_eos``, ``cache_prompt: false``) and the same closed loop of c streams, all
started at once:

- the emulator's ``/v1/chat/completions`` (10 tok/s streams, ``--trace-file``): achieved request rate,
  output tokens/s, and the TTFT error against the emulator's own first-chunk time. Ours is joined on
  ``X-Request-Id``; GuideLLM sends no id, so its k-th request is paired with the k-th one received;
- the real llama.cpp server (Gemma 3 270M, 4 slots; needs the ``[real]`` extra): the same rates, and
  the mean TTFT minus the server's mean prompt time (``llamacpp:prompt_seconds_total`` from ``/metrics``
  over the tool's run, per request sent): no server stamps the first token's write, so this is the
  nearest server-side reference.

Rates and tokens/s are computed by this script from each tool's per-request records over the same
steady window (after ``--ramp`` seconds). A second table says what explains a difference in rate: what
each tool sent (the server's prompt and output token counts), what it kept in flight (from its records,
and the idle time between a stream's end and its next send), its own CPU, and against llama.cpp what the
server did over the window (``/metrics``: slots busy per decode step, time per step, prompt and decode
time per request); then GuideLLM's figures over ours, per target and level.

Then the raw, non-streamed request rate against the emulator (``max_tokens: 1``): ours, ``hey``, ``wrk``
and ``ab`` (Debian packages) at the same concurrency, with each tool's CPU from /proc. A tool that is
absent is skipped with a note in the table.

llama.cpp runs on 2 threads, one per core here. Then a decode step waits at a barrier whenever another
process holds one of the cores (another tool, another test): with one busy process on the machine a step
took 1.8 s instead of 0.08 s on 1 thread. On a busy machine, ``--llamacpp-threads 1`` keeps the server's
speed proportional to the CPU it gets, and the rates comparable.

    .venv/bin/python benchmarks/peer.py                                    # full run, about 10 minutes
    .venv/bin/python benchmarks/peer.py --emulator-levels 1,4 --llamacpp-levels "" --window 3 --ramp 2

GuideLLM is looked for in ``benchmarks/.venv-guidellm`` (``--guidellm PATH`` to override); set it up
as ``docs/performance.md`` says. Loopback only; every run is bounded by its duration.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness
import psutil

GUIDELLM = harness.REPO / "benchmarks" / ".venv-guidellm" / "bin" / "guidellm"
CHAT_PATH = "/v1/chat/completions"
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
#: Users started per second: every stream within a few milliseconds, as GuideLLM's concurrent profile starts
#: them. Streams started half a second apart reach llama.cpp in different decode steps and stay apart: each
#: prompt is then prefilled alongside the others' decoding, so TTFT is shorter and decode longer than with
#: the peer's streams, whose prompts share one step.
SPAWN_AT_ONCE = 1000
WORDS = ("queue slot token latency server client stream batch model prompt answer request worker "
         "window burst cache decode prefill memory thread socket").split()  # fmt: skip


@dataclass
class Result:
    """One tool at one concurrency level against one target."""

    target: str
    tool: str
    streams: int
    requests: int = 0
    req_s: float = float("nan")
    tokens_s: float = float("nan")
    ttft_ms: float = float("nan")  # p50
    error_p50_ms: float = float("nan")
    error_p99_ms: float = float("nan")
    note: str = ""
    explain: Explain | None = None


def write_prompts(path: Path, count: int, tokens: int) -> None:
    """Distinct prompts (no prompt-cache hits), as GuideLLM's ``json_file`` data and our prompt file."""
    with path.open("w", encoding="utf-8") as f:
        for i in range(count):
            words = " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(20))
            f.write(json.dumps({"prompt": f"{i}: {words}", "output_tokens_count": tokens}) + "\n")


def body_extra(tokens: int) -> dict[str, Any]:
    """What both tools add to every request body (GuideLLM's chat sends max_completion_tokens, which the
    emulator, like Ollama, ignores)."""
    return {"max_tokens": tokens, "ignore_eos": True, "cache_prompt": False}


# --- ours ---------------------------------------------------------------------------------------------
def ours(url: str, model: str, streams: int, prompts: dict[str, Any], args: argparse.Namespace,
         raw: bool = False) -> harness.LocustRun:  # fmt: skip
    """Our locust (one worker process) at ``streams`` closed-loop users, one request per session, prompts
    from a scenario prompt source (``{"file": ...}`` or ``{"inline": [...]}``). ``raw``: the body the HTTP
    tools send (not streamed, ``max_tokens: 1``, no extras)."""
    tokens = 1 if raw else args.tokens
    extra = {} if raw else {k: v for k, v in body_extra(tokens).items() if k != "max_tokens"}
    stream = not raw
    scenario = {
        "name": "bench-peer", "api": "openai", "model": model, "hosts": [{"name": "target", "url": url}],
        "options": {"num_predict": tokens, "stream": stream, "timeout": "120s", "extra": extra},
        "workloads": [{"name": "stream", "kind": "chat", "turns": 1, "think_time": 0, "prompts": prompts}],
        "load": {"shape": "steady", "users": streams, "spawn_rate": SPAWN_AT_ONCE, "stop_timeout": "1s"},
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as tmp:
        return harness.run_locust(scenario, 1, args.ramp, args.window, Path(tmp))


# --- GuideLLM -----------------------------------------------------------------------------------------
def guidellm(exe: Path, url: str, model: str, streams: int, prompts: Path,
             args: argparse.Namespace) -> tuple[list[harness.Request], float, float]:  # fmt: skip
    """GuideLLM 0.8 at ``streams`` concurrent streams: its per-request records and the steady window.

    Offline, on a JSONL prompt file (no tokenizer), with the data prefetch cut to 32 so that its loader
    does not take CPU inside the window (``shared/reference/guidellm-peer.md``, pitfalls 1 and 2).
    """
    backend = {"kind": "openai_http", "target": url, "model": model, "request_format": CHAT_PATH,
               "validate_backend": False, "extras": {"body": body_extra(args.tokens)}}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-guidellm-") as tmp:
        out = Path(tmp) / "gl.json"
        command = [str(exe), "run", "--backend", json.dumps(backend),
                   "--profile", json.dumps({"kind": "concurrent", "streams": [streams]}),
                   "--constraint", f"kind=max_duration,seconds={args.ramp + args.window:g}",
                   "--data", f"kind=json_file,path={prompts}", "--data-loader", "kind=pytorch,prefetch_factor=32",
                   "--output", f"kind=json,path={out}", "--disable-console-interactive"]  # fmt: skip
        env = {**os.environ, **OFFLINE}
        done = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode or not out.exists():
            raise RuntimeError(f"guidellm failed ({done.returncode}): {done.stdout[-600:]}{done.stderr[-600:]}")
        benchmark = json.loads(out.read_text())["benchmarks"][0]
    requests = []
    for kind in ("successful", "incomplete", "errored"):
        for r in benchmark["requests"][kind]:
            timings = r["info"]["timings"]
            if timings.get("request_start") is None:
                continue  # never sent
            requests.append(harness.Request(
                r["request_id"], timings["request_start"], timings.get("first_token_iteration"),
                timings.get("request_end") or timings.get("last_request_iteration") or benchmark["end_time"],
                (r.get("output_metrics") or {}).get("text_tokens") or 0, "" if kind == "successful" else kind,
                (r.get("input_metrics") or {}).get("text_tokens"),
            ))  # fmt: skip
    start = benchmark["start_time"]
    return requests, start + args.ramp, benchmark["end_time"]


# --- one streaming comparison -------------------------------------------------------------------------
def summarise(target: str, tool: str, streams: int, requests: list[harness.Request], begin: float, end: float,
              errors: list[float]) -> Result:  # fmt: skip
    sent = harness.first_tokens_in(requests, begin, end)
    _, req_s, tokens_s = harness.window_rates(requests, begin, end)
    ttft = [(r.t_first_token - r.t_start) * 1000 for r in sent if r.t_first_token is not None]
    return Result(target, tool, streams, len(sent), req_s, tokens_s, harness.pct(ttft, 50), harness.pct(errors, 50),
                  harness.pct(errors, 99))  # fmt: skip


# --- what explains a rate: the load each tool put on the server ----------------------------------------
WATCH_EVERY_S = 0.25


@dataclass
class Explain:
    """What one tool sent and kept in flight, and what the server did with it, over the steady window.
    Means over the requests completed in the window; the server's figures come from llama.cpp's /metrics."""

    prompt_tokens: float = float("nan")  # the server's count (usage), as the tool recorded it
    output_tokens: float = float("nan")
    latency_s: float = float("nan")  # send to end
    in_flight: float = float("nan")  # mean requests in flight, from the tool's own records
    idle_ms: float = float("nan")  # mean time between a stream's end and its next send (harness.idle_gaps)
    tool_cpu: float = float("nan")  # the tool's processes, % of one core
    slots_per_step: float = float("nan")  # llama.cpp: busy slots per decode step (llama_decode call)
    step_ms: float = float("nan")  # llama.cpp: wall time per decode step
    prompt_ms: float = float("nan")  # llama.cpp: prompt time per request (its timings' prompt_ms)
    decode_s: float = float("nan")  # llama.cpp: decode time per request (its timings' predicted_ms)

    @property
    def little_req_s(self) -> float:
        """Little's law: the request rate that this many requests in flight at this latency sustain. Unlike a
        count of completions in the window, it does not move by a whole wave when equal requests end together."""
        return self.in_flight / self.latency_s if self.latency_s else float("nan")


class Watch:
    """While a tool runs, samples every ``WATCH_EVERY_S`` in a thread: the CPU seconds of the tool's processes
    (this script's child processes but the server) and, with ``metrics``, llama.cpp's ``/metrics`` counters.
    ``explain`` reads them over the steady window."""

    def __init__(self, server: harness.Server, metrics: bool) -> None:
        self.server, self.metrics = server, metrics
        self.samples: list[tuple[float, dict[str, float], dict[int, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(WATCH_EVERY_S):
            try:
                counters = llamacpp_metrics(self.server.url) if self.metrics else {}
            except OSError:
                continue
            tool = [p.pid for p in me.children(recursive=True) if p.pid != self.server.proc.pid]
            self.samples.append((time.time(), counters, harness.cpu_seconds(tool)))

    def explain(self, streams: int, requests: list[harness.Request], begin: float, end: float) -> Explain:
        done = [r for r in requests if r.ok and begin <= r.t_end <= end]
        in_flight, _, _ = harness.window_rates(requests, begin, end)
        prompts = [r.prompt_tokens for r in done if r.prompt_tokens is not None]
        out = Explain(mean(prompts), mean([r.output_tokens for r in done]), mean([r.t_end - r.t_start for r in done]),
                      in_flight, mean(harness.idle_gaps(requests, streams, begin, end)) * 1000)  # fmt: skip
        inside = [s for s in self.samples if begin <= s[0] <= end]
        if len(inside) < 2:
            return out
        (t0, m0, cpu0), (t1, m1, cpu1) = inside[0], inside[-1]
        out.tool_cpu = sum(cpu - cpu0.get(pid, 0.0) for pid, cpu in cpu1.items()) / (t1 - t0) * 100
        if not m1:
            return out

        def delta(name: str) -> float:
            return m1[name] - m0[name]

        steps, steps0 = delta("n_decode_total"), m0["n_decode_total"]
        if steps > 0:  # llama.cpp publishes busy slots per step over its lifetime: times the steps, a total
            busy = m1["n_busy_slots_per_decode"] * m1["n_decode_total"] - m0["n_busy_slots_per_decode"] * steps0
            out.slots_per_step, out.step_ms = busy / steps, (t1 - t0) / steps * 1000
        if delta("prompt_tokens_total") > 0:  # the counters move as requests finish their prompt and their decode
            out.prompt_ms = delta("prompt_seconds_total") / delta("prompt_tokens_total") * out.prompt_tokens * 1000
        if delta("tokens_predicted_total") > 0:
            out.decode_s = delta("tokens_predicted_seconds_total") / delta("tokens_predicted_total") * out.output_tokens
        return out


def llamacpp_metrics(url: str) -> dict[str, float]:
    """llama.cpp's ``/metrics``, by name without the ``llamacpp:`` prefix."""
    text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^llamacpp:(\w+) (\S+)$", text, re.M)}


def mean(values: list[float] | list[int]) -> float:
    return sum(values) / len(values) if values else float("nan")


def on_emulator(tool: str, streams: int, prompts: Path, args: argparse.Namespace) -> Result:
    """One tool at one level against a fresh emulator with a trace file."""
    with tempfile.TemporaryDirectory(prefix="bench-peer-emu-") as tmp:
        trace = Path(tmp) / "trace.jsonl"
        emulator = harness.start_emulator(*harness.emulator_flags(streams, args.tps, trace))
        try:
            with Watch(emulator, metrics=False) as watch:
                if tool == "ours":
                    run = ours(emulator.url, "llama3.2:latest", streams, {"file": str(prompts)}, args)
                    requests, begin, end = run.requests, run.begin, run.end
                else:
                    requests, begin, end = guidellm(args.guidellm, emulator.url, "llama3.2:latest", streams, prompts,
                                                    args)  # fmt: skip
        finally:
            emulator.stop()
        rows = harness.read_trace(trace)
    joined = harness.trace_by_id(rows) if tool == "ours" else harness.trace_by_order(requests, rows, CHAT_PATH)
    errors = harness.ttft_errors_ms(harness.first_tokens_in(requests, begin, end), joined)
    result = summarise("emulator", tool, streams, requests, begin, end, errors)
    result.explain = watch.explain(streams, requests, begin, end)
    return result


def prompt_seconds(url: str) -> float:
    """llama.cpp's ``llamacpp:prompt_seconds_total`` counter."""
    text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    match = re.search(r"^llamacpp:prompt_seconds_total (\S+)$", text, re.M)
    return float(match.group(1)) if match else float("nan")


def on_llamacpp(tool: str, streams: int, prompts: Path, args: argparse.Namespace) -> Result:
    """One tool at one level against a fresh llama.cpp server (4 slots)."""
    server = harness.start_llamacpp(args.llamacpp_slots, args.llamacpp_threads)
    try:
        before = prompt_seconds(server.url)
        with Watch(server, metrics=True) as watch:
            if tool == "ours":
                run = ours(server.url, "gemma3-270m", streams, {"file": str(prompts)}, args)
                requests, begin, end = run.requests, run.begin, run.end
            else:
                requests, begin, end = guidellm(args.guidellm, server.url, "gemma3-270m", streams, prompts, args)
        prefill_s = (prompt_seconds(server.url) - before) / max(len(requests), 1)
    finally:
        server.stop()
    result = summarise("llama.cpp", tool, streams, requests, begin, end, [])
    result.explain = watch.explain(streams, requests, begin, end)
    sent = harness.first_tokens_in(requests, begin, end)
    ttft = [r.t_first_token - r.t_start for r in sent if r.t_first_token is not None]
    if ttft:
        result.error_p50_ms = (sum(ttft) / len(ttft) - prefill_s) * 1000  # mean, see the module docstring
    return result


# --- raw request rate ---------------------------------------------------------------------------------
@dataclass
class RawResult:
    tool: str
    req_s: float = float("nan")
    cpu: float = float("nan")  # the tool's processes, % of one core
    note: str = ""


def timed_tool(tool: str, command: list[str], pattern: str) -> RawResult:
    """Run a Debian HTTP tool to completion and read its requests/s, measuring its CPU from /proc."""
    if shutil.which(command[0]) is None:
        return RawResult(tool, note=f"skipped: {command[0]} not installed")
    before, started = os.times(), time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    after, elapsed = os.times(), time.monotonic() - started
    match = re.search(pattern, done.stdout)
    if not match:
        return RawResult(tool, note=f"no result (exit {done.returncode})")
    cpu = after.children_user + after.children_system - before.children_user - before.children_system
    return RawResult(tool, float(match.group(1)), cpu / elapsed * 100)


def raw_rates(args: argparse.Namespace) -> list[RawResult]:
    """Non-streamed requests of one output token at ``--raw-concurrency``: ours, hey, wrk, ab. ``ab`` speaks
    HTTP/1.0 and opens a connection per request (with ``-k`` it waits for a ``Keep-Alive`` header that the
    emulator, like Ollama, does not send); it also counts answers whose length differs as failed, so only
    its rate is read."""
    results = []
    prompt = "Say one word."  # the same body from every tool: the emulator's prefill time grows with the prompt
    body = {"model": "llama3.2:latest", "messages": [{"role": "user", "content": prompt}], "stream": False,
            "max_tokens": 1}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-raw-") as tmp:
        body_file, lua = Path(tmp) / "body.json", Path(tmp) / "post.lua"
        body_file.write_text(json.dumps(body))
        lua.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(json.dumps(body))}\n'
                       'wrk.headers["Content-Type"] = "application/json"\n')  # fmt: skip
        emulator = harness.start_emulator("--preset", "fast", "--num-parallel", str(args.raw_concurrency),
                                          "--keep-alive", "-1")  # fmt: skip
        url, c, seconds = emulator.url + CHAT_PATH, str(args.raw_concurrency), args.ramp + args.window
        try:
            run = ours(emulator.url, "llama3.2:latest", args.raw_concurrency, {"inline": [prompt]}, args, raw=True)
            _, req_s, _ = harness.window_rates(run.requests, run.begin, run.end)
            cpu = sum(run.cpu[p] for p in {*run.workers, run.master})
            results.append(RawResult("ours (1 worker process)", req_s, cpu))
            results.append(timed_tool("hey", ["hey", "-z", f"{seconds:g}s", "-c", c, "-m", "POST", "-T",
                                              "application/json", "-D", str(body_file), url],
                                      r"Requests/sec:\s+([\d.]+)"))  # fmt: skip
            # wrk takes whole seconds only ("-d 3.5s" is a usage error): round up
            results.append(timed_tool("wrk", ["wrk", "-t1", "-c", c, "-d", f"{math.ceil(seconds)}s", "-s", str(lua),
                                              url], r"Requests/sec:\s+([\d.]+)"))  # fmt: skip
            results.append(timed_tool("ab", ["ab", "-q", "-c", c, "-t", f"{seconds:g}", "-n", "10000000", "-p",
                                             str(body_file), "-T", "application/json", url],
                                      r"Requests per second:\s+([\d.]+)"))  # fmt: skip
        finally:
            emulator.stop()
    return results


# --- main ---------------------------------------------------------------------------------------------
def fmt(value: float, unit: str = "", digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}{unit}"


def error_p50_cell(r: Result) -> str:
    """The TTFT error's p50; against llama.cpp, a mean (its server prompt time comes from /metrics' sums)."""
    mean = r.target == "llama.cpp" and not math.isnan(r.error_p50_ms)
    return fmt(r.error_p50_ms, " ms", 2) + (" (mean)" if mean else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emulator-levels", default="1,10,50", help="concurrent streams against the emulator")
    parser.add_argument("--llamacpp-levels", default="1,4", help="concurrent streams against llama.cpp ('' skips)")
    parser.add_argument("--llamacpp-slots", type=int, default=4)
    parser.add_argument("--llamacpp-threads", type=int, default=2,
                        help="llama.cpp's CPU threads (1 on a busy machine: no barrier for a busy core to stall)")
    parser.add_argument("--tokens", type=int, default=40, help="output tokens asked of every streamed request")
    parser.add_argument("--tps", type=float, default=10.0, help="emulator decode tokens/s of every stream")
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds before each steady window")
    parser.add_argument("--window", type=float, default=20.0, help="seconds of steady window per tool and level")
    parser.add_argument("--raw-concurrency", type=int, default=16, help="connections for the raw request rate")
    parser.add_argument("--guidellm", type=Path, default=GUIDELLM, help="the guidellm executable")
    args = parser.parse_args()
    print(f"machine: {harness.machine()}", flush=True)
    tools = ["ours"]
    notes = []
    if args.guidellm.exists():
        tools.append("guidellm")
    else:
        notes.append(f"GuideLLM skipped: {args.guidellm} not found (see docs/performance.md to install it)")
    levels = [int(n) for n in args.emulator_levels.split(",") if n]
    llama_levels = [int(n) for n in args.llamacpp_levels.split(",") if n]
    if llama_levels and importlib.util.find_spec("xllamacpp") is None:
        notes.append("llama.cpp skipped: the [real] extra (xllamacpp) is not installed")
        llama_levels = []
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-prompts-") as tmp:
        prompts = Path(tmp) / "prompts.jsonl"
        write_prompts(prompts, 5000, args.tokens)
        targets = (("emulator", on_emulator, levels), ("llama.cpp", on_llamacpp, llama_levels))
        for target, run_one, target_levels in targets:
            for streams in target_levels:
                for tool in tools:
                    try:
                        results.append(run_one(tool, streams, prompts, args))
                    except RuntimeError as e:
                        results.append(Result(target, tool, streams, note=str(e).splitlines()[0][:120]))
                    r = results[-1]
                    print(f"  {target} {tool} c={streams}: {r.req_s:.2f} req/s, {r.tokens_s:.0f} tok/s, TTFT error "
                          f"p50 {r.error_p50_ms:.2f} ms", file=sys.stderr, flush=True)
    raw = raw_rates(args)
    print(f"\n{args.tokens} output tokens a request (ignore_eos), distinct prompts, cache_prompt false; emulator "
          f"streams at {args.tps:g} tok/s; window {args.window:g} s after {args.ramp:g} s per tool and level; one "
          "tool at a time\n")
    print("### Streaming: ours and GuideLLM against the same targets\n")
    print(harness.markdown_table(
        ["target", "streams", "tool", "requests sent in window", "req/s", "output tok/s", "TTFT p50",
         "TTFT error p50", "TTFT error p99", "note"],
        [[r.target, r.streams, r.tool, r.requests, fmt(r.req_s, "", 2), fmt(r.tokens_s, "", 0), fmt(r.ttft_ms, " ms"),
          error_p50_cell(r), fmt(r.error_p99_ms, " ms", 2), r.note] for r in results]))  # fmt: skip
    print("\nTTFT error: emulator, client first token - the emulator's first-chunk write; llama.cpp, mean client "
          "TTFT - mean server prompt time (/metrics).\n")
    explained = [(r, r.explain) for r in results if r.explain is not None]
    print("### What each tool sent, kept in flight and had the server do\n")
    print(harness.markdown_table(
        ["target", "streams", "tool", "prompt tokens", "output tokens", "latency", "requests in flight",
         "idle between a stream's requests", "in flight / latency (req/s)", "tool CPU (% of one core)",
         "slots busy per step", "decode step", "prompt time per request", "decode time per request"],
        [[r.target, r.streams, r.tool, fmt(e.prompt_tokens), fmt(e.output_tokens), fmt(e.latency_s, " s", 2),
          fmt(e.in_flight, "", 2), fmt(e.idle_ms, " ms", 2), fmt(e.little_req_s, "", 2), fmt(e.tool_cpu, "%"),
          fmt(e.slots_per_step, "", 2), fmt(e.step_ms, " ms"), fmt(e.prompt_ms, " ms", 0), fmt(e.decode_s, " s", 2)]
         for r, e in explained]))  # fmt: skip
    print("\nMeans over the requests completed in the window. Prompt and output tokens are the server's counts "
          "(usage); idle: from a request's end to its stream's next send; in flight / latency: the rate that "
          "load sustains (Little's law), which unlike the completions counted in a window does not move by a "
          "whole wave when equal requests end together. Server figures from llama.cpp's /metrics over the window: "
          "slots busy per decode step (the concurrency the server really had), wall time per step (its speed, "
          "which other processes on the machine change), prompt and decode time per request.\n")
    for line in ratios([r for r, _ in explained]):
        print(f"- {line}")
    print()
    print(f"### Raw non-streamed request rate against the emulator ({args.raw_concurrency} connections, "
          "max_tokens 1)\n")
    print(harness.markdown_table(["tool", "req/s", "tool CPU (% of one core)", "req per CPU-second", "note"],
                                 [[r.tool, fmt(r.req_s, "", 0), fmt(r.cpu, "%", 0),
                                   fmt(r.req_s / r.cpu * 100 if r.cpu else float("nan"), "", 0), r.note]
                                  for r in raw]))  # fmt: skip
    for note in notes:
        print(f"\n- {note}")


def ratios(results: list[Result]) -> list[str]:
    """Per target and level run by both tools: GuideLLM's figures over ours, the rate and what explains it.
    Requests per decode step (in flight / latency times the step's time) is the rate with the server's speed
    taken out: what is left is the load, the tool's doing."""
    lines = []
    by_level = {(r.target, r.streams, r.tool): r for r in results}
    for (target, streams, tool), mine in by_level.items():
        peer = by_level.get((target, streams, "guidellm"))
        if tool != "ours" or peer is None or peer.explain is None or mine.explain is None:
            continue
        a, b = peer.explain, mine.explain
        figures = [("req/s (completions in the window)", peer.req_s, mine.req_s),
                   ("in flight / latency", a.little_req_s, b.little_req_s),
                   ("requests in flight", a.in_flight, b.in_flight), ("latency", a.latency_s, b.latency_s),
                   ("prompt tokens", a.prompt_tokens, b.prompt_tokens),
                   ("output tokens", a.output_tokens, b.output_tokens),
                   ("slots busy per step", a.slots_per_step, b.slots_per_step), ("decode step", a.step_ms, b.step_ms),
                   ("requests per decode step", a.little_req_s * a.step_ms, b.little_req_s * b.step_ms)]
        shown = [f"{name} {theirs / own:.2f}" for name, theirs, own in figures
                 if own and not math.isnan(theirs) and not math.isnan(own)]  # fmt: skip
        lines.append(f"{target}, {streams} streams, GuideLLM / ours: " + ", ".join(shown))
    return lines


if __name__ == "__main__":
    main()
