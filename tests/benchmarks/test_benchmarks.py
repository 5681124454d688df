"""Smoke runs of the benchmark scripts with tiny parameters. Each runs to the end, and every check is one a
broken benchmark would fail: a row for each level asked for; counts that agree with each other (requests
sent in the window against requests completed in it, chunks against requests times their tokens); a
printed ratio that is the ratio of the two printed figures it divides; figures bounded by what the load
can produce (N closed-loop streams at a known decode rate); and numbers recomputed here, independently,
from the benchmark's own raw output (its trace, its run directory). Never an absolute time, except a
factor-of-ten comparison of one hot path with the same work timed here.

Printed figures are rounded: ``bounds`` turns a cell into the interval of values that print as it, and
ratios of printed figures are checked as intervals (``ratio``)."""

from __future__ import annotations

import json
import math
import re
import shutil
import statistics
import subprocess
import sys
import timeit
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"

pytestmark = pytest.mark.integration


def run(script: str, *args: str, timeout: float = 240) -> str:
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def tables(output: str) -> list[list[dict[str, str]]]:
    """Every Markdown table in ``output``, as rows keyed by the header."""
    found, lines = [], output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            header = cells(line)
            rows = []
            for body in lines[i + 2:]:
                if not body.startswith("|"):
                    break
                rows.append(dict(zip(header, cells(body), strict=True)))
            found.append(rows)
    return found


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def number(cell: str) -> float:
    """``12.3 ms``, ``45%`` or ``678`` as a float; ``n/a`` as NaN."""
    head = cell.split()[0].rstrip("%")
    return math.nan if head == "n/a" else float(head)


def bounds(cell: str) -> tuple[float, float]:
    """The values that print as ``cell``: ``4.80`` is [4.795, 4.805], ``181`` is [180.5, 181.5]."""
    head = cell.split()[0].rstrip("%")
    half = 0.5 * 10 ** -(len(head.partition(".")[2]))
    return float(head) - half, float(head) + half


def ratio(numerator: str, denominator: str) -> tuple[float, float]:
    """The interval of ``numerator / denominator`` over the values the two cells may have been."""
    (n_lo, n_hi), (d_lo, d_hi) = bounds(numerator), bounds(denominator)
    assert d_lo > 0, f"cannot divide by {denominator!r}"
    return n_lo / d_hi, n_hi / d_lo


def overlaps(interval: tuple[float, float], low: float, high: float) -> bool:
    return interval[0] <= high and interval[1] >= low


def cores(output: str) -> int:
    """The core count on the benchmark's ``machine: N cores (...)`` line."""
    line = next(line for line in output.splitlines() if line.startswith("machine: "))
    return int(line.split()[1])


# --- overhead.py ------------------------------------------------------------------------------------------
OVERHEAD_TPS = 50  # tok/s of every stream: answers of 30-50 tokens take 0.6-1 s, several per window
OVERHEAD_WINDOW = 2.5
ANSWER_TOKENS = (30, 50)  # harness.emulator_flags: min_output, max_output


def check_closed_loop_row(row: dict[str, str], window: float, tokens: tuple[int, int]) -> None:
    """The figures of one closed-loop level agree with each other and with the load that produced them."""
    users = int(row.get("users") or row["streams"])
    # each stream alternates sending and completing, so the requests sent in the window and those completed in it
    # (req/s x window) differ by at most one per stream; a broken join to the trace sends the first to 0
    completed = number(row["req/s"]) * window
    assert abs(number(row["requests sent in window"]) - completed) <= users + 1, row
    # tokens/s over req/s is the mean length of the answers completed in the window, which the emulator draws
    # from ``tokens``: a token count or a rate computed from the wrong requests or span falls outside
    tokens_s = row.get("tokens/s") or row["output tok/s"]
    per_request = ratio(tokens_s, row["req/s"])
    assert overlaps(per_request, *tokens), (per_request, row)


def check_ttft_error(row: dict[str, str]) -> None:
    """The client receives a chunk after the emulator writes it (both on this machine's clock, the emulator's
    stamp taken before its write): errors are not negative beyond clock resolution, and a request joined to
    another request's trace row would be off by a sizeable part of a request's duration."""
    assert number(row["TTFT error p50"]) >= -1.0, row
    assert number(row["TTFT error p99"]) < 1000.0, row


def test_overhead_measures_ttft_error_cpu_and_capacity() -> None:
    levels, capacity_levels = [1, 8], [12]
    output = run("overhead.py", "--levels", ",".join(map(str, levels)),
                 "--capacity-levels", ",".join(map(str, capacity_levels)), "--capacity-processes", "1",
                 "--tps", str(OVERHEAD_TPS), "--ramp", "1.5", "--window", str(OVERHEAD_WINDOW))  # fmt: skip
    overhead, exported, capacity = tables(output)
    assert [(r["users"], r["worker processes"]) for r in overhead] == [(str(n), "1") for n in levels]
    assert [(r["users"], r["worker processes"]) for r in exported] == [(str(n), "1") for n in levels]
    for row in exported:  # the exporters ran and their consumers got something every second or so
        scrapes, exports = (int(n) for n in re.findall(r"\d+", row["consumed"]))
        assert scrapes >= 1 and exports >= 1, row
    assert [(r["users"], r["worker processes"]) for r in capacity] == [(str(n), "1") for n in capacity_levels]
    machine = cores(output)
    for row in overhead + exported + capacity:
        users = int(row["users"])
        assert row["errors"] == "0"
        assert number(row["requests sent in window"]) > 0
        check_closed_loop_row(row, OVERHEAD_WINDOW, ANSWER_TOKENS)
        check_ttft_error(row)
        # closed loop without think time: every user holds a stream nearly all the time (all of them have spawned
        # within 0.5 s of the window's start), and never more than one
        assert 0.75 * users - 0.5 <= number(row["streams held"]) <= users + 0.5, row
        # the processes' CPU (% of one core) fits in what the whole machine used (% of all cores)
        processes = sum(number(row[c]) for c in ("busiest worker CPU", "master CPU", "emulator CPU"))
        assert processes <= number(row["machine CPU"]) * machine + 5, row
    # "within goal" is the rule the benchmark states, applied to the figures it prints (unless one sits on a limit)
    for row in capacity:
        cpu, p99 = bounds(row["busiest worker CPU"]), bounds(row["TTFT error p99"])
        if not (cpu[0] <= 80 <= cpu[1] or p99[0] <= 2 <= p99[1]):
            within = cpu[1] <= 80 and p99[1] <= 2 and number(row["requests sent in window"]) > 0
            assert row["within goal"] == ("yes" if within else "no"), row
    # the capacity is the last level of the leading run of levels within the goal
    best = 0
    for row in capacity:
        if row["within goal"] != "yes":
            break
        best = int(row["users"])
    tried = ", ".join(r["users"] for r in capacity)
    assert f"- capacity with 1 worker process(es): **{best} users** (tried {tried})" in output


# --- peer.py ----------------------------------------------------------------------------------------------
PEER_TOKENS = 40  # peer.py's default --tokens: max_tokens of every streamed request (ignore_eos)
PEER_WINDOW = 2.5


def test_peer_runs_ours_and_the_http_tools_and_says_what_it_skipped(tmp_path: Path) -> None:
    no_guidellm = tmp_path / "no-guidellm"
    output = run("peer.py", "--emulator-levels", "2", "--llamacpp-levels", "", "--ramp", "1",
                 "--window", str(PEER_WINDOW), "--raw-concurrency", "4", "--tps", "100",
                 "--guidellm", str(no_guidellm))  # fmt: skip
    streaming, explained, raw = tables(output)
    assert [(r["target"], r["streams"], r["tool"]) for r in streaming] == [("emulator", "2", "ours")]
    (ours,) = streaming
    # answers are the emulator's natural 30-50 tokens cut at max_tokens: 30 to 40
    check_closed_loop_row(ours, PEER_WINDOW, (ANSWER_TOKENS[0], PEER_TOKENS))
    check_ttft_error(ours)
    # the emulator writes the first chunk after it received the request: the error is part of the TTFT
    assert number(ours["TTFT error p50"]) <= number(ours["TTFT p50"]), ours
    assert f"GuideLLM skipped: {no_guidellm} not found" in output
    assert [(r["target"], r["streams"], r["tool"]) for r in explained] == [("emulator", "2", "ours")]
    check_explained_row(explained[0], 2)

    tools = {r["tool"]: r for r in raw}
    assert set(tools) == {"ours (1 worker process)", "hey", "wrk", "ab"}
    mine = tools["ours (1 worker process)"]
    assert number(mine["req/s"]) > 0 and number(mine["tool CPU (% of one core)"]) >= 1
    # requests per CPU-second is the rate over the CPU share it prints beside it
    per_cpu = ratio(mine["req/s"], mine["tool CPU (% of one core)"])
    assert overlaps((per_cpu[0] * 100, per_cpu[1] * 100), *bounds(mine["req per CPU-second"])), mine
    for name in ("hey", "wrk", "ab"):  # a tool that is installed ran; one that is not was skipped, and said so
        row = tools[name]
        if shutil.which(name):
            assert number(row["req/s"]) > 0 and row["note"] == "", row
        else:
            assert row["note"] == f"skipped: {name} not installed" and row["req/s"] == "n/a", row


@pytest.mark.skipif(not (BENCHMARKS / ".venv-guidellm" / "bin" / "guidellm").exists(),
                    reason="GuideLLM is not installed in benchmarks/.venv-guidellm")  # fmt: skip
def test_peer_runs_guidellm_side_by_side() -> None:
    output = run("peer.py", "--emulator-levels", "2", "--llamacpp-levels", "", "--ramp", "1", "--window", "4",
                 "--raw-concurrency", "2", "--tps", "100", timeout=400)  # fmt: skip
    streaming, explained = tables(output)[:2]
    assert [r["tool"] for r in streaming] == ["ours", "guidellm"]
    for row in streaming:  # both tools' rates come from their own records, over the same answers
        assert number(row["req/s"]) > 0, row
        assert overlaps(ratio(row["output tok/s"], row["req/s"]), ANSWER_TOKENS[0], PEER_TOKENS), row
    assert [r["tool"] for r in explained] == ["ours", "guidellm"]
    for row in explained:
        check_explained_row(row, 2)
    # the same prompt file: the emulator counts the same prompt tokens for both, within the prompts' spread
    ours, theirs = explained
    # a closed loop is only as closed as the time between a stream's end and its next send: ours sends the next
    # request in the same greenlet, the peer hands it over between processes (0.3 against 6-10 ms when measured)
    assert number(ours["idle between a stream's requests"]) <= number(theirs["idle between a stream's requests"])
    assert overlaps(ratio(theirs["prompt tokens"], ours["prompt tokens"]), 0.9, 1.1), explained
    # and the ratio line divides the figures printed in the table
    line = next(line for line in output.splitlines() if line.startswith("- emulator, 2 streams, GuideLLM / ours: "))
    printed = float(line.split("in flight / latency ")[1].split(",")[0])
    expected = ratio(theirs["in flight / latency (req/s)"], ours["in flight / latency (req/s)"])
    assert expected[0] - 0.005 <= printed <= expected[1] + 0.005, (line, explained)


def check_explained_row(row: dict[str, str], streams: int) -> None:
    """One row of what a tool sent and kept in flight against the emulator, checked against the load."""
    # the emulator's answers, cut at max_tokens
    assert overlaps(bounds(row["output tokens"]), ANSWER_TOKENS[0], PEER_TOKENS), row
    assert number(row["prompt tokens"]) > 0, row
    # a closed loop of N streams, all started before the window: never more than N in flight, nearly N all the time
    assert 0.75 * streams <= number(row["requests in flight"]) <= streams + 0.005, row
    assert number(row["idle between a stream's requests"]) >= 0, row
    # Little's law column: the ratio of the two figures printed beside it
    little = ratio(row["requests in flight"], row["latency"])
    assert overlaps(little, *bounds(row["in flight / latency (req/s)"])), row
    # no llama.cpp here: the server's figures are not made up
    for column in ("slots busy per step", "decode step", "prompt time per request", "decode time per request"):
        assert row[column] == "n/a", row


# --- hot_paths.py -----------------------------------------------------------------------------------------
HOT_PATHS = [
    ("read a chunk from its socket (200 streams)", "chunk"),
    ("parse an SSE chunk (/v1 stream, 40-token answers)", "chunk"),
    ("parse an NDJSON chunk (/api stream, 40-token answers)", "chunk"),
    ("parse an SSE chunk (/v1 stream, 2000-token answers)", "chunk"),
    ("parse an NDJSON chunk (/api stream, 2000-token answers)", "chunk"),
    ("build a record and its CSV row (worker)", "record"),
    ("ship it: msgpack a batch (worker)", "record"),
    ("receive it: unpack a batch (master)", "record"),
    ("append it to requests.csv (master)", "record"),
    ("count it in the live view (master)", "record"),
]


def ndjson_parse_us(tokens: int = 2000) -> float:
    """The NDJSON parser's cost per chunk, timed here (best of 5) on a line of the same shape as the benchmark's."""
    from loadgen.wire.protocol import OllamaStream

    line = (b'{"model":"llama3.2:latest","created_at":"2026-11-22T03:12:23.123456789Z","message":{"role":"assistant",'
            b'"content":" much"},"done":false}\n')  # fmt: skip

    def parse() -> None:
        parser = OllamaStream(True)
        for _ in range(tokens):
            parser.feed(line)
        parser.finish()

    return min(timeit.repeat(parse, number=1, repeat=5)) / tokens * 1e6


def test_hot_paths_times_each_path() -> None:
    rows = tables(run("hot_paths.py", "--scale", "0.02"))[0]
    assert [(r["hot path"], r["per"]) for r in rows] == HOT_PATHS
    assert all(0 < number(r["µs"]) < math.inf for r in rows)
    # per item, not per batch or per repetition: the same parsing timed here is within a factor of ten
    theirs = number(next(r["µs"] for r in rows if r["hot path"] == HOT_PATHS[4][0]))
    ours = ndjson_parse_us()
    assert ours / 10 <= theirs <= ours * 10, (theirs, ours)


# --- emulator_capacity.py ---------------------------------------------------------------------------------
def test_emulator_capacity_reports_its_timing_error(tmp_path: Path) -> None:
    levels, tps, tokens, duration, warmup = [10, 20], 50, 10, 4.0, 1.5
    prefix = tmp_path / "trace"
    output = run("emulator_capacity.py", "--levels", ",".join(map(str, levels)), "--duration", f"{duration:g}",
                 "--warmup", f"{warmup:g}", "--clients", "1", "--tps", str(tps), "--tokens", str(tokens),
                 "--keep-trace", str(prefix))  # fmt: skip
    rows = tables(output)[0]
    assert [int(r["concurrent streams"]) for r in rows] == levels
    window = duration - warmup
    least, most = tokens * 3 // 4, tokens * 5 // 4  # each request's num_predict: 7 to 12 tokens
    for streams, row in zip(levels, rows, strict=True):
        requests, chunks = number(row["requests in window"]), number(row["chunks/s"]) * window
        # a stream completes a request every 7/50 s at best, and at worst every 12/50 s plus its prefill, hand-over
        # and lag (0.1 s)
        assert streams * (window / (most / tps + 0.1) - 2) <= requests <= streams * window / (least / tps), row
        # every chunk of a request inside the window was counted, and nothing beyond the requests inside it and
        # the two a stream has across the window's edges
        assert least * requests - 1 <= chunks <= most * (requests + 2 * streams) + 1, row
        # and no stream decodes faster than --tps (+2 % jitter)
        assert number(row["chunks/s"]) <= streams * tps * 1.05, row
        # recomputed from the emulator's own trace: the median decode error over every streamed request (the
        # benchmark takes those inside the window, a subset, so the two agree within a tolerance)
        trace = [json.loads(line) for line in Path(f"{prefix}.{streams}.jsonl").read_text().splitlines()]
        streamed = [t for t in trace if t.get("model_decode_s")]
        assert len(streamed) >= requests
        assert sum(t["eval_count"] for t in streamed) >= chunks - 1  # no more chunks than the emulator wrote
        errors = [abs(t["eval_s"] - t["model_decode_s"]) / t["model_decode_s"] * 100 for t in streamed]
        recomputed = statistics.median(errors)
        printed = number(row["decode error p50 / p99"])
        assert abs(printed - recomputed) <= 0.1 + 0.5 * max(printed, recomputed), (printed, recomputed)


# --- analysis_1m.py ---------------------------------------------------------------------------------------
def test_analysis_1m_reports_time_and_memory(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    output = run("analysis_1m.py", "--records", "20000", "--dir", str(run_dir))
    summary = output.strip().splitlines()[-1]
    # 3 hosts x 2 models = 6 targets, levels 1+2+4+8+16+32 = 63 user lanes each: 20000 // (6 x 63) = 52 requests
    # a lane, 52 x 378 = 19656 records in all
    assert summary.startswith("report on 19656 records: ")
    assert sum(1 for _ in (run_dir / "requests.csv").open()) - 1 == 19656
    report = json.loads((run_dir / "summary.json").read_text())
    assert report["requests"]["total"] == 19656
    # the exit code is the report's SLO verdict: 1 when an SLO failed, 0 when all passed
    assert summary.endswith(f"exit {1 if report['slo']['failed'] else 0}")
    # peak RSS is in MB: the analysis imports pandas (tens of MB) and stays far below the 2 GB goal
    peak_mb = float(summary.split("peak RSS ")[1].split()[0])
    assert 30 <= peak_mb <= 2000, summary
    # the synthetic hosts have the slots the benchmark gives them: 4, 2 and 1, seen in the busy intervals
    overlap = {(t["host"], t["model"]): t["overlap"] for t in report["saturation"]["targets"]}
    hosts = {"gpu-a": "4", "gpu-b": "2", "cpu-c": "1"}
    assert overlap == {(h, m): k for h, k in hosts.items() for m in ("llama3.2:1b", "qwen3:4b")}
