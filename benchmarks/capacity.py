"""The capacity search against the exhaustive answer: a steady sweep over every user count in its range.

Both runs use the same scenario and target: closed-loop chat users (one request each, no think time)
against an embedded server, judged on one e2e p95 SLO. The sweep holds each user count from 1 to
``--max-users`` for ``--level`` seconds (the first ``--settle`` of each excluded); its answer is the
highest count whose p95 (exact, over the level's measured requests) is within the SLO, with every
count below it passing too. The search runs ``load: {shape: capacity}`` over the same range with the
same probe time. The table gives both answers and both wall times (each run's ``started_at`` to
``ended_at``), side by side in one run. Without ``--slo`` the threshold is ``--slo-factor`` times the
sweep's own one-user p95, so that the answer does not depend on how fast this machine is:

    python benchmarks/capacity.py                       # the emulator (M1 preset, 2 slots)
    python benchmarks/capacity.py --target llamacpp     # the real llama.cpp server (the [real] extra)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.harness import clean_env, machine, markdown_table  # noqa: E402
from tests.helpers import locust_command, read_records  # noqa: E402

TARGETS: dict[str, dict[str, Any]] = {
    "emulator": {"api": "ollama", "model": "llama3.2:latest", "num_predict": 24, "endpoint": "chat",
                 "host": {"name": "emu", "embedded": "emulator",
                          "settings": {"preset": "m1", "num_parallel": 2, "speed": 10}}},
    # The base model has no chat template: plain completions.
    "llamacpp": {"api": "openai", "model": "gemma3-270m", "num_predict": 16, "endpoint": "generate",
                 "host": {"name": "llamacpp", "embedded": "llamacpp", "settings": {"slots": 2, "threads": 1}}},
}


@dataclass
class Answer:
    capacity: int
    wall_s: float
    levels: int  # probes (search) or levels (sweep)
    detail: str
    level_s: float = 0.0
    settle_s: float = 0.0


def scenario(target: str, slo_s: float, load: dict[str, Any]) -> dict[str, Any]:
    spec = TARGETS[target]
    return {
        "name": f"capacity-{load['shape']}", "api": spec["api"], "model": spec["model"], "hosts": [spec["host"]],
        "options": {"num_predict": spec["num_predict"], "temperature": 0},
        "workloads": [{"name": "chat", "kind": "chat", "turns": 1, "think_time": 0, "endpoint": spec["endpoint"],
                       "prompts": ["Count from one to twenty in words."]}],
        "slo": {"e2e_p95": slo_s}, "load": {**load, "stop_timeout": "60s"},
    }


def run(spec: dict[str, Any], work: Path) -> Path:
    """One headless run of ``spec``; its run directory."""
    path = work / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    results = work / f"results-{spec['name']}"
    done = subprocess.run(locust_command(path, results), cwd=REPO, env=clean_env(), capture_output=True, text=True,
                          timeout=3600)
    runs = list(results.glob("*/run.json"))
    if done.returncode not in (0, 1) or not runs:
        raise SystemExit(f"the {spec['name']} run failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    return runs[0].parent


def wall_s(run_dir: Path) -> float:
    info = json.loads((run_dir / "run.json").read_text())
    return float(info["ended_at"] - info["started_at"])


def level_p95s(run_dir: Path) -> dict[int, float]:
    """Each sweep level's exact e2e p95 over its successful requests after its warm-up."""
    records = read_records(run_dir / "requests.csv")
    stages = pd.read_csv(run_dir / "stages.csv")
    p95s = {}
    for stage in stages[stages["mode"] == "level"].itertuples():
        measured = records[(records.t_start >= stage.t_begin + stage.warmup_s) & (records.t_start < stage.t_end)
                           & (records.error == "")]
        p95s[int(stage.users)] = float((measured.t_end - measured.t_start).quantile(0.95))
    return p95s


def sweep_answer(run_dir: Path, slo_s: float) -> Answer:
    """The highest user count whose measured e2e p95 is within ``slo_s``, every lower count passing too."""
    capacity, cells = 0, []
    for users, p95 in level_p95s(run_dir).items():
        passed = p95 <= slo_s
        cells.append(f"{users}:{p95:.3f}{'' if passed else '!'}")
        if passed and capacity == users - 1:
            capacity = users
    return Answer(capacity, wall_s(run_dir), len(cells), " ".join(cells))


def search_answer(run_dir: Path) -> Answer:
    summary = json.loads((run_dir / "capacity.json").read_text())
    probes = " ".join(f"{p['users']}:{p['verdict']}" for p in summary["probes"])
    return Answer(int(summary["value"]), wall_s(run_dir), len(summary["probes"]), probes)


def solo_e2e(target: str, work: Path) -> float:
    """The median e2e of one user's requests, from a short run: the unit the level times are made of."""
    run_dir = run({**scenario(target, 1.0, {"shape": "sweep", "levels": [1], "level_requests": 4}),
                   "name": "capacity-calibration"}, work)
    records = read_records(run_dir / "requests.csv")
    return float((records.t_end - records.t_start).iloc[1:].median())


def compare(target: str, max_users: int, slo_s: float | None, level_s: float | None, settle_s: float | None,
            work: Path, slo_factor: float = 4.0) -> tuple[Answer, Answer, float]:
    """The sweep's answer and the search's, from two runs made here, and the threshold both were judged on
    (``slo_s``, or ``slo_factor`` times the sweep's one-user p95). Without ``level_s`` each level lasts 12
    solo requests (at least 3 s) and settles for 2, measured first: a busy machine gets longer levels."""
    if level_s is None or settle_s is None:
        solo = solo_e2e(target, work)
        level_s, settle_s = level_s or max(3.0, 12 * solo), settle_s or max(0.5, 2 * solo)
    sweep = run(scenario(target, slo_s or 1.0, {"shape": "sweep", "levels": list(range(1, max_users + 1)),
                                                "level_duration": level_s, "settle": settle_s}), work)
    slo_s = slo_s or slo_factor * level_p95s(sweep)[1]
    search = run(scenario(target, slo_s, {"shape": "capacity", "max_users": max_users, "probe_duration": level_s,
                                          "settle": settle_s, "min_requests": 10}), work)
    answers = [replace(answer, level_s=level_s, settle_s=settle_s)
               for answer in (sweep_answer(sweep, slo_s), search_answer(search))]
    return answers[0], answers[1], slo_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", choices=sorted(TARGETS), default="emulator")
    parser.add_argument("--max-users", type=int, default=24)
    parser.add_argument("--slo", type=float, help="e2e p95 threshold, seconds (default: --slo-factor times the "
                        "sweep's one-user p95)")
    parser.add_argument("--slo-factor", type=float, default=4.0)
    parser.add_argument("--level", type=float, help="seconds per level and per probe (default: 12 solo requests)")
    parser.add_argument("--settle", type=float, help="warm-up seconds of each level and probe (default: 2 solo "
                        "requests)")
    args = parser.parse_args(argv)
    print(f"Machine: {machine()}\n")
    with tempfile.TemporaryDirectory(prefix="capacity-bench-") as work:
        sweep, search, slo_s = compare(args.target, args.max_users, args.slo, args.level, args.settle, Path(work),
                                       args.slo_factor)
    rows = [("exhaustive sweep", sweep.capacity, sweep.levels, f"{sweep.wall_s:.1f}", "1.00", sweep.detail),
            ("capacity search", search.capacity, search.levels, f"{search.wall_s:.1f}",
             f"{search.wall_s / sweep.wall_s:.2f}", search.detail)]
    print(f"Target: {args.target}; users 1-{args.max_users}; e2e p95 <= {slo_s:.3g} s; "
          f"{sweep.level_s:.3g} s per level ({sweep.settle_s:.3g} s warm-up)\n")
    print(markdown_table(["method", "capacity (users)", "levels run", "wall s", "time vs sweep",
                          "levels (users:p95 s, ! failed / users:verdict)"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
