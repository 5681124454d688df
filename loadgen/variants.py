"""``ollama-loadtest run SCENARIO``: run a scenario headless, once per variant, and compare.

A scenario with ``variants:`` (say, a server with 1 slot and with 4, or a sweep over
``num_parallel``) needs one Locust run per variant and then one comparison; this does both with plain
``locust`` processes and ``python -m analysis``, and prints where the reports are. Arguments after
``--`` go to every ``locust`` run, e.g.
``ollama-loadtest run scenarios/seed-sweep.yaml -- --hosts http://127.0.0.1:11434``.
A headless ``locust --scenario FILE`` of a scenario with variants comes here too (``run_variants``).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import locustfiles
from loadgen.scenario import ScenarioError, load_scenario
from loadgen.servers.process import die_with_parent

LOCUSTFILES = Path(locustfiles.__file__).resolve().parent
INTERRUPTED = 130  # the shell's code for a run ended by Ctrl-C


def main(argv: list[str] | None = None, prog: str = "ollama-loadtest run") -> int:
    """Run every variant of a scenario headless, then compare them; the worst exit code of the runs."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0].split(": ", 1)[1],
                                     epilog="Arguments after -- go to every locust run.")
    parser.add_argument("scenario", help="scenario YAML file")
    parser.add_argument("--results-dir", default="results", type=Path,
                        help="where run directories go (default results/)")
    argv = sys.argv[1:] if argv is None else argv
    ours, extra = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    args = parser.parse_args(ours)
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILES), "--scenario", args.scenario, "--headless",
               "--results-dir", str(args.results_dir), *extra]
    return run_variants(scenario.name, [v.name for v in scenario.variant_list], command, args.results_dir)


def run_variants(name: str, variants: Sequence[str], command: list[str], results_dir: Path,
                 run_id: str | None = None) -> int:
    """Run ``command --variant V --run-id ID`` for each variant (just ``--run-id ID`` without variants),
    one after the other, then compare the runs; the worst exit code. Ctrl-C or SIGTERM is passed to the
    run going on, which stops and writes its files; no later variant starts (exit code 130)."""
    prefix = run_id or f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
    runs, failed = run_each(name, variants, command, results_dir, prefix)
    if failed is not None:
        return failed
    worst = max(codes for _, codes in runs)
    if len(runs) > 1:
        out = results_dir / f"{prefix}-compare"
        code = subprocess.call([sys.executable, "-m", "analysis", "compare", *(str(run) for run, _ in runs),
                                "--out", str(out)])
        if code not in (0, 1):
            return code
        worst = max(worst, code)
        print_comparison(out / "compare.json")
        print(f"\nComparison of {len(runs)} runs: {out / 'compare.html'} (and compare.md)")
    print("Reports:", *(f"  {run / 'report.html'}" for run, _ in runs), sep="\n")
    return worst


def run_each(name: str, variants: Sequence[str], command: list[str], results_dir: Path,
             prefix: str) -> tuple[list[tuple[Path, int]], int | None]:
    """Run ``command`` once per variant (run ids ``PREFIX-VARIANT``); (each run's directory and exit code,
    None), or the runs so far and the exit code to stop with when one failed or was interrupted."""
    runs: list[tuple[Path, int]] = []
    names: list[str | None] = [*variants] or [None]
    for variant in names:
        this_run = f"{prefix}-{variant}" if variant else prefix
        print(f"\n=== {name}{f' [{variant}]' if variant else ''}: {results_dir / this_run}", flush=True)
        code, stopped = _run_child([*command, *(["--variant", variant] if variant else []), "--run-id", this_run])
        if stopped:
            print(f"stopped: {len(runs)} of {len(names)} runs finished before the interrupt; the one going "
                  f"on wrote what it recorded to {results_dir / this_run}", file=sys.stderr)
            return runs, INTERRUPTED
        if code not in (0, 1) or not (results_dir / this_run / "requests.csv").exists():
            print(f"error: the {variant or name} run failed (exit code {code})", file=sys.stderr)
            return runs, code or 2
        runs.append((results_dir / this_run, code))
    return runs, None


def _run_child(command: list[str]) -> tuple[int, bool]:
    """Run one locust process in its own session, passing it SIGINT and SIGTERM (and SIGTERM if this process
    dies); (exit code, signalled)."""
    proc = subprocess.Popen(command, start_new_session=True, preexec_fn=die_with_parent)
    signalled: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        signalled.append(signum)
        proc.send_signal(signum)

    with _handlers(forward):
        while True:
            try:
                return proc.wait(timeout=0.5), bool(signalled)  # a short wait lets handlers run under gevent
            except subprocess.TimeoutExpired:
                continue


@contextmanager
def _handlers(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """``handler`` for SIGINT and SIGTERM meanwhile; Python's previous handlers back afterwards."""
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            if old is not None:  # None: a handler not set from Python (the run ends after this anyway)
                signal.signal(sig, old)


def print_comparison(path: Path) -> None:
    """The comparison's findings and its level-by-level table, on the console; for a setting sweep then the
    setting's curve (p95 e2e at each run's highest level, top x) and the recommendation."""
    summary = json.loads(path.read_text())
    print("\n" + "\n".join(f"- {finding}" for finding in summary["findings"]))
    width = max([12, *(len(row["run"]) for row in summary["curves"])])
    print(f"\n{'run':<{width}} {'N':>3} {'wall s':>8} {'aggregate tok/s':>16} {'per-request tok/s':>18}")
    for row in summary["curves"]:
        print(f"{row['run']:<{width}} {_cell(row['x'], 'g'):>3} {_cell(row['wall_s'], '.2f'):>8} "
              f"{_cell(row['agg_tok_s'], '.1f'):>16} {_cell(row['per_req_tok_s'], '.1f'):>18}")
    points = summary.get("setting_curve") or []
    if points:
        print_setting_curve(points)
    if summary.get("recommendation"):
        print(summary["recommendation"]["line"])


def print_setting_curve(points: list[dict[str, Any]]) -> None:
    """A sweep's table: per setting its peak, speeds, p95 e2e at its top level, SLO verdict and capacity."""
    several = len({(p["host"], p["model"]) for p in points}) > 1
    names = [", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in p["setting"].items())
             + (f" {p['model']}@{p['host']}" if several else "") for p in points]
    slos, searched = (any(p[key] is not None for p in points) for key in ("slo_passed", "capacity"))
    width = max(12, *map(len, names))
    print(f"\n{'setting':<{width}} {'peak tok/s':>10} {'at x':>5} {'per-request':>11} {'solo':>6} {'top x':>5} "
          f"{'e2e p95 s':>9}" + (f" {'SLOs':>4}" if slos else "") + (f" {'capacity':>12}" if searched else ""))
    for name, p in zip(names, points, strict=True):
        met = {True: "met", False: "miss", None: "-"}[p["slo_passed"]]
        capacity = f"{p['capacity']:g} {p['capacity_unit']}" if p["capacity"] is not None else "-"
        print(f"{name:<{width}} {_cell(p['peak_agg_tok_s'], '.1f'):>10} {_cell(p['peak_x'], 'g'):>5} "
              f"{_cell(p['peak_per_req_tok_s'], '.1f'):>11} {_cell(p['solo_tok_s'], '.1f'):>6} "
              f"{_cell(p['top_x'], 'g'):>5} {_cell(p['top_e2e_p95_s'], '.3g'):>9}"
              + (f" {met:>4}" if slos else "") + (f" {capacity:>12}" if searched else ""))


def _cell(value: float | None, spec: str) -> str:
    """A number for a console table; ``-`` for none (a level without server timers has no speed)."""
    return "-" if value is None else format(value, spec)
