"""Time ``python -m analysis report`` on 1,000,000 synthetic records; report wall time and peak RSS.

    .venv/bin/python benchmarks/analysis_1m.py [--records 1000000] [--dir /tmp/analysis-1m] [--keep]

The run: 3 hosts (4, 2 and 1 slots), 2 models, 3 workloads, closed-loop steady stages at 1, 2, 4, 8, 16
and 32 users with 30 s warm-up, server timers on every request, a few 503s and cold starts. Each of a
host's min(c, k) slots serves requests back to back; with c users on k slots a request also waited about
``S * (c - k) / k`` for its slot before that.
Goal on the project machine (2 cores): < 15 s and < 2 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from analysis.schema import RECORD_COLUMNS  # noqa: E402

HOSTS = {"gpu-a": 4, "gpu-b": 2, "cpu-c": 1}
MODELS = {"llama3.2:1b": 40.0, "qwen3:4b": 18.0}  # solo decode tok/s
WORKLOADS = ["chat", "agent", "batch"]
LEVELS = [1, 2, 4, 8, 16, 32]


def synthesise(n: int, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    targets = [(h, k, m, v) for h, k in HOSTS.items() for m, v in MODELS.items()]
    per_cell = n // (len(targets) * sum(LEVELS))  # requests per user lane per stage
    frames, stages = [], []
    t = 1_760_000_000.0
    for users in LEVELS:
        begin = t
        longest = 0.0
        for host, slots, model, solo in targets:
            busy = min(users, slots)  # slot lanes serving back to back; the other users wait their turn
            count = users * per_cell
            tokens = rng.integers(60, 240, count)
            speed = solo / (1 + 0.35 * (busy - 1)) * rng.uniform(0.95, 1.05, count)
            decode = tokens / speed
            prefill = rng.uniform(0.05, 0.3, count)
            service = (prefill + decode).reshape(busy, -1)
            gaps = rng.uniform(0.0, 0.002, service.shape)  # slot idle between two requests
            t_end = (begin + np.cumsum(service + gaps, axis=1)).ravel()
            service = service.ravel()
            wait = service * max(0, users - slots) / slots * rng.uniform(0.8, 1.2, count)
            net = rng.uniform(0.002, 0.01, count)
            t_end = t_end + net / 2
            e2e = net + wait + service
            t_start = t_end - e2e
            load = np.where(rng.random(count) < 0.0005, rng.uniform(2, 8, count), rng.uniform(0.001, 0.004, count))
            frames.append(pd.DataFrame({
                "host": host, "model": model, "t_start": t_start - load, "t_end": t_end, "output_tokens": tokens,
                "server_total_s": load + wait + service, "server_load_s": load, "server_prompt_eval_s": prefill,
                "server_eval_s": decode, "t_first_token": t_end - decode, "user_id": np.arange(count) % users,
            }))
            longest = max(longest, float(t_end.max()))
        stages.append({"stage": f"c{users}", "mode": "steady", "users": users, "rate": None, "t_begin": begin,
                       "t_end": longest, "warmup_s": 30.0})
        t = longest + 1.0
    records = pd.concat(frames, ignore_index=True)
    size = len(records)
    busy = rng.random(size) < 0.002
    records["workload"] = np.array(WORKLOADS)[rng.integers(0, len(WORKLOADS), size)]
    records["kind"] = records["workload"].map({"chat": "chat", "agent": "agent_loop", "batch": "batch"})
    records["run_id"] = "bench"
    records["worker"] = rng.integers(0, 4, size)
    records["session_id"] = [f"s{i}" for i in rng.integers(0, size // 8, size)]
    records["step"] = rng.integers(0, 8, size)
    records["api"], records["endpoint"], records["stream"] = "ollama", "/api/chat", 1
    records["status"] = np.where(busy, 503, 200)
    records["error"] = np.where(busy, "busy_503", "")
    records["error_detail"] = ""
    for column in ("t_first_token", "server_total_s", "server_load_s", "server_prompt_eval_s", "server_eval_s",
                   "output_tokens"):
        records.loc[busy, column] = np.nan
    records["prompt_tokens"] = rng.integers(20, 2000, size)
    records["done_reason"] = np.where(busy, "", "stop")
    for column in set(RECORD_COLUMNS) - set(records.columns):
        records[column] = np.nan
    records = records.sort_values("t_end", kind="stable")  # requests.csv is in completion order
    return records[list(RECORD_COLUMNS)], pd.DataFrame(stages)


def write_run(directory: Path, n: int) -> None:
    records, stages = synthesise(n)
    directory.mkdir(parents=True, exist_ok=True)
    records.to_csv(directory / "requests.csv", index=False, float_format="%.6f")
    stages.to_csv(directory / "stages.csv", index=False)
    hosts = [{"name": h, "url": f"http://{h}:11434", "server": "ollama", "version": "0.30.1",
              "settings": {"num_parallel": k}} for h, k in HOSTS.items()]
    (directory / "run.json").write_text(json.dumps({"run_id": "bench", "hosts": hosts, "complete": True,
                                                    "slo": {"ttft_p95_s": 60.0, "e2e_p95_s": 600.0}}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/analysis-1m"))
    parser.add_argument("--keep", action="store_true", help="reuse the run directory if it exists")
    args = parser.parse_args()
    if not (args.keep and (args.dir / "requests.csv").exists()):
        shutil.rmtree(args.dir, ignore_errors=True)
        started = time.perf_counter()
        write_run(args.dir, args.records)
        print(f"synthesised {args.dir / 'requests.csv'} in {time.perf_counter() - started:.1f} s "
              f"({(args.dir / 'requests.csv').stat().st_size / 1e6:.0f} MB)")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "analysis", "report", str(args.dir)], capture_output=True,
                            text=True, cwd=Path(__file__).resolve().parents[1])
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(result.stdout.strip() or result.stderr.strip())
    rows = sum(1 for _ in (args.dir / "requests.csv").open()) - 1
    print(f"report on {rows} records: {elapsed:.1f} s wall, peak RSS {peak_mb:.0f} MB, exit {result.returncode}")


if __name__ == "__main__":
    main()
