"""``ollama-loadtest run SCENARIO``: run a scenario headless, once per variant, and compare.

A scenario with ``variants:`` (say, a server with 1 slot and with 4) needs one Locust run per variant
and then one comparison; this does both with plain ``locust`` processes and ``python -m analysis``,
and prints where the reports are. Arguments after ``--`` go to every ``locust`` run, e.g.
``ollama-loadtest run scenarios/seed-sweep.yaml -- --hosts http://127.0.0.1:11434``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import locustfiles
from loadgen.scenario import ScenarioError, load_scenario

LOCUSTFILES = Path(locustfiles.__file__).resolve().parent


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
    stamp = time.strftime("%Y%m%d-%H%M%S")
    variants: list[str | None] = [v.name for v in scenario.variant_list] or [None]
    runs: list[Path] = []
    worst = 0
    for variant in variants:
        run_id = "-".join(part for part in (stamp, scenario.name, variant) if part)
        print(f"\n=== {scenario.name}{f' [{variant}]' if variant else ''}: {args.results_dir / run_id}", flush=True)
        command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILES), "--scenario", args.scenario, "--headless",
                   "--results-dir", str(args.results_dir), "--run-id", run_id, *extra]
        if variant:
            command += ["--variant", variant]
        code = subprocess.call(command)
        if code not in (0, 1) or not (args.results_dir / run_id / "requests.csv").exists():
            print(f"error: the {variant or scenario.name} run failed (exit code {code})", file=sys.stderr)
            return code or 2
        worst = max(worst, code)
        runs.append(args.results_dir / run_id)
    if len(runs) > 1:
        out = args.results_dir / f"{stamp}-{scenario.name}-compare"
        code = subprocess.call([sys.executable, "-m", "analysis", "compare", *map(str, runs), "--out", str(out)])
        if code not in (0, 1):
            return code
        worst = max(worst, code)
        print_comparison(out / "compare.json")
        print(f"\nComparison of {len(runs)} runs: {out / 'compare.html'} (and compare.md)")
    print("Reports:", *(f"  {run / 'report.html'}" for run in runs), sep="\n")
    return worst


def print_comparison(path: Path) -> None:
    """The comparison's findings and its level-by-level table, on the console."""
    summary = json.loads(path.read_text())
    print("\n" + "\n".join(f"- {finding}" for finding in summary["findings"]))
    print(f"\n{'run':<12} {'N':>3} {'wall s':>8} {'aggregate tok/s':>16} {'per-request tok/s':>18}")
    for row in summary["curves"]:
        print(f"{row['run']:<12} {row['x']:>3} {row['wall_s']:>8.2f} {row['agg_tok_s']:>16.1f} "
              f"{row['per_req_tok_s']:>18.1f}")

