"""``ollama-loadtest whatif --preset-file twin.yaml SCENARIO --num-parallel 1,2,4,8``: run a scenario
against the twin of a measured server once per setting, accelerated, and predict what the server would do.

The twin is the emulator with the fitted preset (``ollama-loadtest fit``): Ollama's scheduler and queueing
with the measured speeds. Each setting's run goes ``--speed`` times faster (the emulator's rates and the
scenario's clock alike, ``accelerate``), and its records are scaled back (``rescale``), so a grid of
settings takes minutes. What acceleration cannot scale, the client's own time per request, is measured
in every run and reported as the prediction's error bound. Output: a comparison like ``compare`` (HTML,
Markdown, JSON, the setting's curve and the value to use) and ``whatif.json``/``whatif.md`` with per
workload p50/p95 TTFT and e2e, slot wait and tokens/s per setting, every number labelled predicted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

import pandas as pd
import yaml

from analysis.latency import latency_table
from analysis.load import load_run
from emulator.config import ConfigError
from emulator.preset_file import load_preset_file
from loadgen.scenario import ScenarioError, load_scenario
from loadgen.scenario.hosts import EmulatorHost, EmulatorSettings
from loadgen.scenario.load import Capacity, Rounds, Sweep
from loadgen.scenario.scenario import Scenario
from loadgen.scenario.variants import SettingSweep
from loadgen.variants import LOCUSTFILES, print_comparison, run_each
from loadgen.whatif.accelerate import accelerate
from loadgen.whatif.advice import advice
from loadgen.whatif.rescale import rescale_run

DEFAULT_SPEED: Final = 10.0
DEFAULT_LEVEL_S: Final = 60.0  # a --users level of a scenario whose load names no duration
#: The acceleration's error bound above which the console says to lower --speed (share of the predicted p95 e2e).
ERROR_WARN_SHARE: Final = 0.05
TWIN_HOST: Final = "twin"
#: Servers whose completions endpoint (/v1/completions) evaluates a prompt as sent; Ollama's (and the emulator's)
#: wraps it in the model's template first, as /api/generate does.
RAW_COMPLETION_SERVERS: Final = frozenset({"llamacpp", "openai-compatible"})
#: The preset fields that add a template's tokens to a prompt the emulator counts (``emulator.text``).
TEMPLATE_TOKENS: Final = ("message_overhead", "prompt_overhead")


def main(argv: list[str] | None = None, prog: str = "ollama-loadtest whatif") -> int:
    """Predict the scenario on the twin for each setting; 0, or 2 with one line for bad input."""
    args = _parser(prog).parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = _numbers(args.num_parallel, "--num-parallel")
        users = _numbers(args.users, "--users") if args.users else None
        scenario = load_scenario(args.scenario)
        load_preset_file(args.preset_file)
    except (ScenarioError, ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    source, source_runs, source_host, source_server = _fitted_from(Path(args.preset_file))
    twin = twin_scenario(scenario, Path(args.preset_file).resolve(), settings, users, args.hosts, args.speed,
                         source_server)
    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{scenario.name}-whatif"
    out = args.results_dir / stamp
    raw = out / "accelerated"
    raw.mkdir(parents=True)
    payload = out / "scenario.json"
    payload.write_text(json.dumps(twin.to_payload()))
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILES), "--scenario", str(payload), "--headless",
               "--results-dir", str(raw), "--no-report"]
    runs, failed = run_each(scenario.name, [v.name for v in twin.variant_list], command, raw, stamp)
    if failed is not None:
        return failed
    note = f"predicted from {source} by its twin {args.preset_file}, not measured"
    predicted = [rescale_run(run, out / "predicted" / run.name, args.speed, note) for run, _ in runs]
    code = subprocess.call([sys.executable, "-m", "analysis", "compare", *map(str, predicted),
                            "--out", str(out / "compare")])
    if code not in (0, 1):
        return code
    print_comparison(out / "compare" / "compare.json")
    table = predictions(predicted, args.speed, runs=[run for run, _ in runs])
    answer = advice(json.loads((out / "compare" / "compare.json").read_text()), source_runs, source_host)
    write_predictions(out, table, note, answer)
    print(f"\n{note}:\n{table.to_string(index=False)}")
    if answer:
        print(f"\n{answer}")
    _warn_if_inexact(table)
    print(f"\nPrediction: {out / 'compare' / 'compare.html'}, {out / 'whatif.md'} (and whatif.json)")
    return 0


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0].split(": ", 1)[1])
    parser.add_argument("scenario", help="scenario YAML file (its hosts are replaced by the twin)")
    parser.add_argument("--preset-file", required=True, help="the twin: a preset file from ollama-loadtest fit")
    parser.add_argument("--num-parallel", required=True, help="settings to predict, e.g. 1,2,4,8")
    parser.add_argument("--users", help="user counts to load each setting with, e.g. 2,4,8 (default: the "
                                        "scenario's own load)")
    parser.add_argument("--hosts", type=int, default=1, help="how many such servers (default 1)")
    parser.add_argument("--speed", type=float, default=DEFAULT_SPEED,
                        help=f"acceleration (default {DEFAULT_SPEED:g}); its error is measured and reported")
    parser.add_argument("--results-dir", type=Path, default=Path("results"), help="default results/")
    return parser


def _numbers(text: str, option: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{option} takes whole numbers separated by commas, e.g. 1,2,4,8; got {text!r}") from None
    if not values or min(values) < 1 or len(set(values)) < len(values):
        raise ValueError(f"{option} takes distinct whole numbers >= 1, e.g. 1,2,4,8; got {text!r}")
    return values


def _fitted_from(preset_file: Path) -> tuple[str, list[Path], str | None, str | None]:
    """The runs the twin was fitted from, as its file names them: (their names, their paths, the host, the server)."""
    source = (yaml.safe_load(preset_file.read_text()) or {}).get("source") or {}
    runs = [Path(str(run)) for run in source.get("runs") or []]
    return ", ".join(run.name for run in runs) or str(preset_file), runs, source.get("host"), source.get("server")


def raw_completions(scenario: Scenario, server: str | None) -> bool:
    """Whether the measured ``server`` would evaluate the scenario's prompts as sent: completions only (every
    workload on the generate endpoint) over the OpenAI API, to a server that applies no template to them."""
    return (scenario.api == "openai" and server in RAW_COMPLETION_SERVERS
            and all(w.endpoint == "generate" for w in scenario.workloads))


def twin_scenario(scenario: Scenario, preset_file: Path, settings: list[int], users: list[int] | None,
                  hosts: int, speed: float, server: str | None = None) -> Scenario:
    """``scenario`` against ``hosts`` twins (Ollama's API), swept over ``num_parallel``, accelerated ``speed`` times.
    The twin answers completions on /api/generate, which counts a template's tokens in the prompt; when the measured
    ``server`` evaluated them raw (``raw_completions``), the twin counts none."""
    models = tuple(dict.fromkeys(m for w in scenario.workloads for m in w.models or ()))
    tune = dict.fromkeys(TEMPLATE_TOKENS, 0.0) if raw_completions(scenario, server) else None
    twin_settings = EmulatorSettings(preset_file=str(preset_file), speed=speed, models=models, tune=tune)
    names = [TWIN_HOST] if hosts == 1 else [f"{TWIN_HOST}-{i + 1}" for i in range(hosts)]
    load: Any = scenario.load
    if users is not None:
        if isinstance(load, (Sweep, Rounds)):
            load = load.model_copy(update={"levels": tuple(users)})
        elif not isinstance(load, Capacity):
            duration = getattr(load, "duration", None) or DEFAULT_LEVEL_S
            load = Sweep(levels=tuple(users), level_duration=duration)
    twin = scenario.model_copy(update={
        "api": "ollama",  # the twin is an Ollama: its native API reports the timers the error bound needs
        "hosts": tuple(EmulatorHost(name=name, models=models, settings=twin_settings) for name in names),
        "variants": SettingSweep(sweep={"num_parallel": tuple(settings)}),
        "load": load,
    })
    return accelerate(twin, speed)


def predictions(predicted: list[Path], speed: float, runs: list[Path]) -> pd.DataFrame:
    """Per setting and workload: p50/p95 TTFT and e2e, p95 slot wait, median per-request tok/s, aggregate tok/s
    while its requests were in flight, and the error acceleration may add to a request's time (its client
    overhead, which is not accelerated, times ``speed - 1``; p95)."""
    rows = [row for path, raw in zip(predicted, runs, strict=True) for row in _rows(path, raw, speed)]
    return pd.DataFrame(rows).sort_values(["setting", "workload"], ignore_index=True)


def _rows(path: Path, raw: Path, speed: float) -> list[dict[str, Any]]:
    run = load_run(path)
    table = latency_table(run, by=["workload"]).set_index(["workload", "metric"])
    setting = json.loads((path / "run.json").read_text()).get("swept", {}).get("num_parallel")
    records = run.records if run.records is not None else pd.DataFrame(columns=["workload"])
    accelerated = load_run(raw).records
    rows = []
    for workload, group in records.groupby("workload", observed=True):
        ok = group[group["ok"] & ~group["warmup"]]
        busy = _busy_s(ok["t_start"], ok["t_end"])
        rows.append({
            "setting": setting, "workload": workload, "requests": len(ok),
            **{f"{name}_{stat}_s": _cell(table, workload, f"{name}_s", stat)
               for name in ("ttft", "e2e") for stat in ("p50", "p95")},
            "slot_wait_p95_s": _cell(table, workload, "slot_wait_s", "p95"),
            "per_request_tok_s": _cell(table, workload, "gen_tok_s", "p50"),
            "aggregate_tok_s": ok["output_tokens"].sum() / busy if busy > 0 else float("nan"),
            "acceleration_error_p95_s": _overhead(accelerated, str(workload)) * (speed - 1),
        })
    return rows


def _cell(table: pd.DataFrame, workload: object, metric: str, stat: str) -> float:
    key = (workload, metric)
    return float(table.loc[key, stat]) if key in table.index else float("nan")


def _busy_s(starts: pd.Series, ends: pd.Series) -> float:
    """How long at least one of the requests was in flight: the aggregate rate's denominator, without the
    pauses between a scenario's levels (which Locust's once-a-second shape ticks stretch when accelerated)."""
    busy, until = 0.0, float("-inf")
    for start, end in sorted(zip(starts, ends, strict=True)):
        if end > until:
            busy += end - max(start, until)
            until = end
    return busy


def _overhead(records: pd.DataFrame | None, workload: str) -> float:
    """p95 of what the client adds to a request beyond the server's own time (e2e - total_duration)."""
    if records is None or records.empty:
        return float("nan")
    mine = records[(records["workload"] == workload) & records["ok"] & ~records["warmup"]]
    overhead = (mine["t_end"] - mine["t_start"] - mine["server_total_s"]).dropna().clip(lower=0)
    return float(overhead.quantile(0.95)) if len(overhead) else float("nan")


def write_predictions(out: Path, table: pd.DataFrame, note: str, answer: str | None) -> None:
    """whatif.json and whatif.md: the table, labelled, and the advice."""
    rows = json.loads(table.to_json(orient="records"))
    (out / "whatif.json").write_text(json.dumps({"note": note, "advice": answer, "predictions": rows}, indent=2))
    lines = [f"# What-if: {note}", "", *([answer, ""] if answer else []), "| " + " | ".join(table.columns) + " |",
             "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(_fmt(value) for value in row) + " |" for row in table.itertuples(index=False)]
    (out / "whatif.md").write_text("\n".join(lines) + "\n")


def _fmt(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _warn_if_inexact(table: pd.DataFrame) -> None:
    share = (table["acceleration_error_p95_s"] / table["e2e_p95_s"]).max()
    if share > ERROR_WARN_SHARE:
        print(f"warning: acceleration may add up to {share:.0%} to a predicted p95 e2e; run with a lower --speed "
              "for a closer prediction", file=sys.stderr)
