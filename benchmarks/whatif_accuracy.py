"""What-if's accuracy: the twin's predictions against measured runs, side by side, in one run.

``--target llamacpp`` (the real server, the ``[real]`` extra) runs ``scenarios/real-sweep.yaml`` shortened as
``tests/real/test_llamacpp_sweep.py`` runs it (levels 1, 4, 8; 3 rounds; 24 tokens; 1 thread) with 1, 2 and 4
slots, then

- (a) fits the twin to the 1- and 4-slot runs, predicts 2 slots with ``ollama-loadtest whatif`` on the same
  scenario and sets each level beside the measured 2-slot run's: aggregate tok/s and p95 e2e;
- (b) fits it to the 1-slot run and a copy of the 4-slot run holding only its levels 1 and 4, predicts 4 slots
  at 8 users (twice the most it saw) and sets it beside the measured 4-slot level 8;

each beside the machine's own noise: the spread (max/min) of the measured rounds' aggregate tok/s and walls.

``--target emulator`` draws a preset the fitter has never seen from ``--seed``, serves it from the emulator
as a twin file, measures 1, 2 and 4 slots, fits the 1- and 4-slot runs, and prints each recovered parameter
against the truth, then the 2-slot prediction against the measured 2-slot run. The measured runs go as fast
as the truth's shortest modelled step allows (``MIN_STEP_S``) and are scaled back to its clock before the
fit, so the fitted rates are the truth's.

    python benchmarks/whatif_accuracy.py --target emulator --seed 1     # 1 min
    python benchmarks/whatif_accuracy.py --target llamacpp              # 3 min
    python benchmarks/whatif_accuracy.py --target llamacpp --runs DIR   # 1 min: predict from runs made before
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from analysis.curve import round_table  # noqa: E402
from analysis.load import load_run  # noqa: E402
from analysis.saturation import saturation_curve  # noqa: E402
from analysis.schema import REQUESTS_FILE, RUN_FILE, STAGES_FILE  # noqa: E402
from analysis.stages import CURVE_MODES, assign_stages, normalise_stages  # noqa: E402
from analysis.twin import Twin, fit_twin, write_twin  # noqa: E402
from analysis.twin.fit import INT_FIELDS, PRESET_ORDER  # noqa: E402
from benchmarks.harness import clean_env, machine, markdown_table  # noqa: E402
from emulator.preset_file import FORMAT  # noqa: E402
from emulator.presets import PRESETS  # noqa: E402
from emulator.prompt import generate_prompt  # noqa: E402
from loadgen.whatif.command import DEFAULT_SPEED  # noqa: E402
from loadgen.whatif.rescale import rescale_run  # noqa: E402
from tests.helpers import locust_command  # noqa: E402

RUN_TIMEOUT_S: Final = 900.0  # one locust run or one whatif; a busy machine is slow, not wrong

# --- the real server: scenarios/real-sweep.yaml as tests/real/test_llamacpp_sweep.py shortens it ---------------
REAL_SCENARIO: Final = REPO / "scenarios" / "real-sweep.yaml"
REAL_LEVELS: Final = (1, 4, 8)  # solo, four slots full, a queue of four
REAL_SLOTS: Final = (1, 2, 4)
REAL_ROUNDS: Final = 3
REAL_TOKENS: Final = 24
REAL_THREADS: Final = 1  # llama.cpp on 2 threads crawls when any other process holds a core (docs/performance.md)
FIT_SLOTS: Final = (1, 4)  # the runs the twin is fitted to; 2 slots is predicted
PREDICTED_SLOTS: Final = 2
SEEN_LEVELS: Final = (1, 4)  # (b): the 4-slot run's levels the twin sees
UNSEEN_LEVEL: Final = 8  # (b): the level it predicts, twice the most users it saw

# --- the emulator: a preset from a seed, unknown to the fitter --------------------------------------------------
EMULATOR_LEVELS: Final = (1, 2, 4)
EMULATOR_SLOTS: Final = (1, 2, 4)
EMULATOR_MODEL: Final = "llama3.2:latest"
TRUTH_BASE: Final = "m1"  # fills every field not drawn (load_s, fit_s, output range); jitter is set to 0
#: Ranges the truth is drawn from, log-uniform: a small model on a CPU or Apple silicon. Prefill is drawn as a
#: multiple of decode (prompt tokens are evaluated in parallel, 10-30x faster than tokens are generated).
SOLO_TPS: Final = (15.0, 45.0)
PREFILL_OVER_SOLO: Final = (10.0, 30.0)
PARALLEL_PENALTY: Final = (0.02, 0.1)
CONTENTION: Final = (0.15, 0.8)
DRAWN_DIGITS: Final = 3  # significant digits of a drawn value: the truth reads as a plain preset
#: The emulator reads a step's end from the clock after an asyncio sleep: 1-1.5 ms late on this machine, more on
#: a busy one. The measured runs are therefore accelerated at most so far that the shortest modelled step, one
#: prompt's prefill, still lasts this long in real time: a 1 ms lag is then at most 2% of it.
MIN_STEP_S: Final = 0.05
MAX_MEASURE_SPEED: Final = 10.0
#: Prompts of about 60 tokens by the emulator's count: a prefill long enough to time, short beside 32+ tokens
#: of decode (a prompt that joins a running batch stalls it for its prefill, which the fit counts as slowdown).
PROMPTS: Final = (
    "Explain how a hash table handles collisions, compare separate chaining with open addressing, and say "
    "which one you would choose for a cache that is read far more often than it is written, and why.",
    "Write a short poem about the sea at night, with the sound of the waves on the rocks, a lighthouse far "
    "away, the smell of salt in the cold air, and a boat that slowly comes back to the harbour.",
    "Summarize the causes of the French Revolution: the debts of the crown, the bad harvests and the price "
    "of bread, the ideas of the Enlightenment, and the quarrel over how the Estates General should vote.",
    "Describe how photosynthesis works in a green leaf, from the light that the chlorophyll absorbs to the "
    "water that is split, the oxygen that is released and the sugar that the plant builds from the air.",
)


# --- runs --------------------------------------------------------------------------------------------------------
def measure(spec: dict[str, Any], variants: Sequence[str], work: Path) -> dict[str, Path]:
    """One headless locust run of ``spec`` per variant (no report); each run's directory by variant."""
    path = work / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    results = work / "measured"
    runs = {}
    for variant in variants:
        run_id = f"{spec['name']}-{variant}"
        done = subprocess.run(locust_command(path, results, "--variant", variant, "--run-id", run_id), cwd=REPO,
                              env=clean_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        if done.returncode not in (0, 1) or not (results / run_id / REQUESTS_FILE).exists():
            raise SystemExit(f"the {variant} run failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
        runs[variant] = results / run_id
    return runs


def fit(runs: Sequence[Path], out: Path) -> Twin:
    """The twin of ``runs`` (``ollama-loadtest fit``), written to ``out`` with its report beside it."""
    twin = fit_twin([load_run(run) for run in runs])
    write_twin(twin, out)
    return twin


def whatif(twin_file: Path, scenario: Path, slots: int, work: Path, users: Sequence[int] = (),
           speed: float = DEFAULT_SPEED) -> Path:
    """``ollama-loadtest whatif`` of ``scenario`` on the twin with ``slots`` slots (at ``users``, else the
    scenario's levels): the predicted run's directory, on the server's clock."""
    results = work / f"whatif-{twin_file.stem}-{slots}"
    command = [sys.executable, "-m", "locustfiles", "whatif", "--preset-file", str(twin_file), str(scenario),
               "--num-parallel", str(slots), "--speed", f"{speed:g}", "--results-dir", str(results),
               *(["--users", ",".join(map(str, users))] if users else [])]
    done = subprocess.run(command, cwd=REPO, env=clean_env(), capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)
    predicted = list(results.glob(f"*-whatif/predicted/*-num_parallel-{slots}"))
    if done.returncode != 0 or len(predicted) != 1:
        raise SystemExit(f"whatif failed (exit {done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return predicted[0]


def keep_levels(run: Path, users: Sequence[int], out: Path) -> Path:
    """A copy of ``run`` holding only the requests of the levels with ``users`` users, placed in stages.csv's
    windows as the analysis places them (warm-up and drain left out); run.json as it was."""
    out.mkdir(parents=True)
    records = pd.read_csv(run / REQUESTS_FILE, keep_default_na=False, na_values=[""])
    stages = normalise_stages(pd.read_csv(run / STAGES_FILE))
    placed = assign_stages(records["t_start"], stages)
    wanted = stages["users"].isin(users) & stages["mode"].isin(CURVE_MODES)
    keep = placed["stage"].astype(str).isin(stages.loc[wanted, "stage"]) & ~placed["warmup"]
    records[keep].to_csv(out / REQUESTS_FILE, index=False)
    pd.read_csv(run / STAGES_FILE)[wanted].to_csv(out / STAGES_FILE, index=False)
    shutil.copy(run / RUN_FILE, out / RUN_FILE)
    return out


# --- predicted against measured ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Level:
    """One level (``users`` at once) of a measured run beside its prediction."""

    users: int
    predicted_agg_tok_s: float
    measured_agg_tok_s: float
    predicted_e2e_p95_s: float
    measured_e2e_p95_s: float
    rounds: int  # measured rounds at this level
    agg_spread: float  # max / min over the measured rounds of their aggregate tok/s
    wall_spread: float  # max / min over the measured rounds of their walls

    @property
    def agg_ratio(self) -> float:
        """Predicted / measured aggregate tok/s."""
        return self.predicted_agg_tok_s / self.measured_agg_tok_s

    @property
    def e2e_ratio(self) -> float:
        """Predicted / measured p95 e2e."""
        return self.predicted_e2e_p95_s / self.measured_e2e_p95_s

    @property
    def noise(self) -> float:
        """The measured rounds' larger spread, less 1: 0.1 is rounds 10% apart."""
        return max(self.agg_spread, self.wall_spread) - 1


def curve(run: Path) -> pd.DataFrame:
    """The run's level-by-level curve (``analysis.curve``), one target, indexed by users."""
    table = saturation_curve(load_run(run))
    return table.assign(x=table["x"].astype(int)).set_index("x")


def spreads(run: Path) -> dict[int, tuple[int, float, float]]:
    """Per level (users): its rounds, and max/min over them of aggregate tok/s and of wall."""
    rounds = round_table(load_run(run).records).assign(level=lambda t: t["level"].astype(str))
    users = curve(run).reset_index().set_index("level")["x"]
    out = {}
    for level, group in rounds.groupby("level"):
        agg, wall = group["agg_tok_s"], group["wall_s"]
        out[int(users[level])] = (len(group), float(agg.max() / agg.min()), float(wall.max() / wall.min()))
    return out


def levels(predicted: Path, measured: Path, users: Sequence[int] = ()) -> list[Level]:
    """Each level both runs have (only ``users`` if given): predicted beside measured."""
    ours, theirs, noise = curve(predicted), curve(measured), spreads(measured)
    shared = [x for x in theirs.index if x in ours.index and (not users or x in users)]
    return [Level(x, float(ours.at[x, "agg_tok_s"]), float(theirs.at[x, "agg_tok_s"]),
                  float(ours.at[x, "e2e_p95_s"]), float(theirs.at[x, "e2e_p95_s"]), *noise[x]) for x in shared]


def level_table(rows: Sequence[Level]) -> str:
    return markdown_table(
        ["users", "predicted agg tok/s", "measured agg tok/s", "agg ratio", "predicted e2e p95 s",
         "measured e2e p95 s", "e2e ratio", "measured rounds", "rounds' agg tok/s max/min", "rounds' wall max/min"],
        [(r.users, f"{r.predicted_agg_tok_s:.1f}", f"{r.measured_agg_tok_s:.1f}", f"{r.agg_ratio:.3f}",
          f"{r.predicted_e2e_p95_s:.3f}", f"{r.measured_e2e_p95_s:.3f}", f"{r.e2e_ratio:.3f}", r.rounds,
          f"{r.agg_spread:.3f}", f"{r.wall_spread:.3f}") for r in rows])


def twin_line(twin: Twin) -> str:
    """The fitted parameters on one line."""
    fitted = ", ".join(f"{p.name} {p.value:.4g}" for p in twin.parameters if p.value is not None)
    slowdown = ", ".join(f"f({row.b}) {row.f:.3f}" for row in twin.table if row.kind == "measured")
    return f"{fitted}; {slowdown}"


# --- the real server ---------------------------------------------------------------------------------------------
def real_sweep(levels: Sequence[int] = REAL_LEVELS, rounds: int = REAL_ROUNDS, tokens: int = REAL_TOKENS,
               slots: Sequence[int] = REAL_SLOTS) -> dict[str, Any]:
    """scenarios/real-sweep.yaml with ``levels`` x ``rounds``, ``tokens`` a request, one thread, ``slots`` swept."""
    spec: dict[str, Any] = yaml.safe_load(REAL_SCENARIO.read_text())
    spec["load"].update(levels=list(levels), rounds=rounds, warmup=1)
    spec["variants"] = {"sweep": {"slots": list(slots)}}
    spec["options"]["num_predict"] = tokens
    (host,) = spec["hosts"]
    host["settings"]["threads"] = REAL_THREADS
    return spec


@dataclass(frozen=True, slots=True)
class RealResult:
    setup: str  # what was measured: levels, rounds, tokens, slots
    two_slots: list[Level]  # (a)
    two_slots_twin: Twin
    unseen: list[Level]  # (b)
    unseen_twin: Twin
    noise: dict[int, dict[int, tuple[int, float, float]]]  # slots -> users -> (rounds, agg, wall spreads)


def predict_two_slots(runs: dict[int, Path], scenario: Path, work: Path,
                      speed: float = DEFAULT_SPEED) -> tuple[list[Level], Twin]:
    """(a): the twin of the 1- and 4-slot runs predicts 2 slots on ``scenario``; beside the measured 2-slot run."""
    twin = fit([runs[s] for s in FIT_SLOTS], work / "twin-slots-1-4.yaml")
    predicted = whatif(work / "twin-slots-1-4.yaml", scenario, PREDICTED_SLOTS, work, speed=speed)
    return levels(predicted, runs[PREDICTED_SLOTS]), twin


def predict_unseen_level(runs: dict[int, Path], scenario: Path, work: Path,
                         speed: float = DEFAULT_SPEED) -> tuple[list[Level], Twin]:
    """(b): the twin of the 1-slot run and the 4-slot run's levels 1 and 4 predicts 4 slots at 8 users."""
    seen = keep_levels(runs[4], SEEN_LEVELS, work / "slots-4-seen")
    twin = fit([runs[1], seen], work / "twin-seen.yaml")
    predicted = whatif(work / "twin-seen.yaml", scenario, 4, work, users=[UNSEEN_LEVEL], speed=speed)
    return levels(predicted, runs[4], users=[UNSEEN_LEVEL]), twin


def real_runs(folder: Path) -> dict[int, Path]:
    """The sweep's run directories in ``folder`` (``*-slots-N``), by slot count."""
    runs = {s: sorted(folder.glob(f"*-slots-{s}")) for s in REAL_SLOTS}
    missing = [s for s, found in runs.items() if len(found) != 1]
    if missing:
        raise SystemExit(f"{folder}: need exactly one *-slots-N run directory for N = {REAL_SLOTS}; "
                         f"none or several for {missing}")
    return {s: found[0] for s, found in runs.items()}


def llamacpp_accuracy(rounds: int, tokens: int, work: Path, speed: float = DEFAULT_SPEED,
                      measured: Path | None = None) -> RealResult:
    """Measure the real sweep here (or take its runs from ``measured``, e.g. the sweep test's), then predict (a)
    and (b) from its runs, on the scenario the runs ran."""
    if measured is None:
        spec = real_sweep(rounds=rounds, tokens=tokens)
        measure(spec, [f"slots-{s}" for s in REAL_SLOTS], work)
        measured = work / "measured"
    runs = real_runs(measured)
    scenario = runs[1] / "scenario.yaml"  # as run, the slots variant applied: whatif replaces host and variants
    ran = yaml.safe_load(scenario.read_text())
    setup = (f"{ran['options']['num_predict']} tokens a request; levels {', '.join(map(str, ran['load']['levels']))} "
             f"x {ran['load']['rounds']} rounds; slots {', '.join(map(str, REAL_SLOTS))} measured"
             + (f" (runs from {measured})" if measured != work / "measured" else ""))
    two, two_twin = predict_two_slots(runs, scenario, work, speed)
    unseen, unseen_twin = predict_unseen_level(runs, scenario, work, speed)
    return RealResult(setup, two, two_twin, unseen, unseen_twin, {s: spreads(run) for s, run in runs.items()})


def print_llamacpp(result: RealResult, speed: float) -> None:
    print(f"Target: llama.cpp + Gemma 3 270M ({REAL_THREADS} thread); {result.setup}; whatif --speed {speed:g}\n")
    print(f"(a) {PREDICTED_SLOTS} slots, predicted by the twin of slots-1 and slots-4 "
          f"({twin_line(result.two_slots_twin)}), against the measured slots-2 run:\n")
    print(level_table(result.two_slots))
    print(f"\n(b) 4 slots at {UNSEEN_LEVEL} users, predicted by the twin of slots-1 and slots-4's levels "
          f"{' and '.join(map(str, SEEN_LEVELS))} ({twin_line(result.unseen_twin)}), against the measured slots-4 "
          f"level {UNSEEN_LEVEL}:\n")
    print(level_table(result.unseen))
    print("\nThe machine's noise: each measured run's rounds, max/min per level:\n")
    print(markdown_table(["run", "users", "rounds", "agg tok/s max/min", "wall max/min"],
                         [(f"slots-{s}", users, n, f"{agg:.3f}", f"{wall:.3f}")
                          for s, by_users in result.noise.items() for users, (n, agg, wall) in by_users.items()]))


# --- the emulator ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Recovered:
    """One preset field: the truth and what the fit made of it."""

    name: str
    truth: float
    value: float | None  # None: undetermined
    why: str = ""  # why undetermined

    @property
    def ratio(self) -> float | None:
        """Recovered / truth."""
        return None if self.value is None or not self.truth else self.value / self.truth


@dataclass(frozen=True, slots=True)
class EmulatorResult:
    truth: dict[str, float]
    measure_speed: float
    parameters: list[Recovered]
    two_slots: list[Level]


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    value = math.exp(rng.uniform(math.log(low), math.log(high)))
    return float(f"{value:.{DRAWN_DIGITS}g}")


def random_preset(seed: int) -> dict[str, float]:
    """The truth: the drawn fields (``SOLO_TPS``...), jitter 0; the base ``TRUTH_BASE`` fills the rest."""
    rng = random.Random(seed)
    solo = _log_uniform(rng, *SOLO_TPS)
    return {"solo_tps": solo, "parallel_penalty": _log_uniform(rng, *PARALLEL_PENALTY),
            "contention": _log_uniform(rng, *CONTENTION),
            "prefill_tps": float(f"{solo * _log_uniform(rng, *PREFILL_OVER_SOLO):.{DRAWN_DIGITS}g}"), "jitter": 0.0}


def measure_speed(truth: dict[str, float]) -> float:
    """The fastest the measured runs may go: the shortest prompt's prefill lasts ``MIN_STEP_S`` (1 to 10)."""
    shortest = min(generate_prompt(p, "", "", False, (), (), PRESETS[TRUTH_BASE]).tokens for p in PROMPTS)
    return float(f"{min(MAX_MEASURE_SPEED, max(1.0, shortest / truth['prefill_tps'] / MIN_STEP_S)):.3g}")


def emulator_scenario(truth_file: Path, speed: float, rounds: int, tokens: int) -> dict[str, Any]:
    """The truth served by an embedded emulator at ``speed``, swept over its slots; rounds of batch requests
    of exactly ``tokens`` tokens (below the base's shortest natural output)."""
    return {
        "name": "twin-recovery", "api": "ollama", "model": EMULATOR_MODEL,
        "hosts": [{"name": "truth", "embedded": "emulator",
                   "settings": {"preset_file": str(truth_file), "num_parallel": 1, "speed": speed}}],
        "options": {"num_predict": tokens, "temperature": 0},
        "workloads": [{"name": "seed", "kind": "batch", "batch_size": 1, "endpoint": "generate",
                       "prompts": list(PROMPTS)}],
        "load": {"shape": "rounds", "levels": list(EMULATOR_LEVELS), "rounds": rounds, "warmup": 1},
        "variants": {"sweep": {"num_parallel": list(EMULATOR_SLOTS)}},
    }


def emulator_accuracy(seed: int, rounds: int, tokens: int, work: Path,
                      speed: float = DEFAULT_SPEED) -> EmulatorResult:
    """Measure the seed's truth at 1, 2 and 4 slots (scaled back to its clock), fit the 1- and 4-slot runs,
    and predict 2 slots with whatif at ``speed``."""
    truth = random_preset(seed)
    truth_file = work / "truth.yaml"
    truth_file.write_text(yaml.safe_dump({"format": FORMAT, "base": TRUTH_BASE, "preset": truth}))
    fast = measure_speed(truth)
    spec = emulator_scenario(truth_file, fast, rounds, tokens)
    measured = measure(spec, [f"num_parallel-{s}" for s in EMULATOR_SLOTS], work)
    note = f"measured on the emulator at speed {fast:g} and scaled back to its preset's clock"
    runs = {s: rescale_run(measured[f"num_parallel-{s}"], work / "scaled" / f"slots-{s}", fast, note)
            for s in EMULATOR_SLOTS}
    twin = fit([runs[s] for s in FIT_SLOTS], work / "twin.yaml")
    base = PRESETS[TRUTH_BASE]
    parameters = [Recovered(name, truth.get(name, getattr(base, name)), twin.parameter(name).value,
                            twin.parameter(name).why) for name in PRESET_ORDER]
    scenario = work / f"{spec['name']}.yaml"
    predicted = whatif(work / "twin.yaml", scenario, PREDICTED_SLOTS, work, speed=speed)
    return EmulatorResult(truth, fast, parameters, levels(predicted, runs[PREDICTED_SLOTS]))


def print_emulator(result: EmulatorResult, seed: int, rounds: int, tokens: int, speed: float) -> None:
    print(f"Target: emulator; truth drawn from --seed {seed} (base {TRUTH_BASE}, jitter 0), measured at speed "
          f"{result.measure_speed:g} and scaled back; {tokens} tokens a request; levels "
          f"{', '.join(map(str, EMULATOR_LEVELS))} x {rounds} rounds; slots {', '.join(map(str, EMULATOR_SLOTS))}; "
          f"twin fitted to slots {' and '.join(map(str, FIT_SLOTS))}; whatif --speed {speed:g}\n")

    def shown(name: str, value: float) -> str:
        return str(int(value)) if name in INT_FIELDS else f"{value:.4g}"

    rows = [(p.name, shown(p.name, p.truth), "undetermined" if p.value is None else shown(p.name, p.value),
             "n/a" if p.ratio is None else f"{p.ratio:.3f}") for p in result.parameters]
    print(markdown_table(["parameter", "truth", "recovered", "recovered / truth"], rows))
    for p in result.parameters:
        if p.value is None:
            print(f"- {p.name} undetermined: {p.why}")
    print(f"\n{PREDICTED_SLOTS} slots, predicted by the twin against a measured {PREDICTED_SLOTS}-slot run of the "
          "truth:\n")
    print(level_table(result.two_slots))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", choices=["emulator", "llamacpp"], default="emulator")
    parser.add_argument("--seed", type=int, default=1, help="emulator: the seed the truth is drawn from")
    parser.add_argument("--rounds", type=int, help=f"rounds per level (default: {REAL_ROUNDS} on llamacpp, 2 on "
                                                   "the emulator)")
    parser.add_argument("--tokens", type=int, help=f"tokens a request (default: {REAL_TOKENS} on llamacpp, 32 on the "
                                                   "emulator)")
    parser.add_argument("--speed", type=float, default=DEFAULT_SPEED, help="whatif's --speed")
    parser.add_argument("--keep", type=Path, help="keep the runs and twins in this folder (default: a temporary one)")
    parser.add_argument("--runs", type=Path, help="llamacpp: predict from the sweep's runs in this folder (*-slots-1, "
                                                  "-2, -4, e.g. the sweep test's) instead of measuring")
    args = parser.parse_args(argv)
    real = args.target == "llamacpp"
    rounds = args.rounds or (REAL_ROUNDS if real else 2)
    tokens = args.tokens or (REAL_TOKENS if real else 32)
    if not real and tokens >= PRESETS[TRUTH_BASE].min_output:
        parser.error(f"--tokens must be below {PRESETS[TRUTH_BASE].min_output}, the truth's shortest natural output")
    print(f"Machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M')}\n")
    with tempfile.TemporaryDirectory(prefix="whatif-accuracy-") as temporary:
        work = args.keep or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        if real:
            print_llamacpp(llamacpp_accuracy(rounds, tokens, work, args.speed, args.runs), args.speed)
        else:
            result = emulator_accuracy(args.seed, rounds, tokens, work, args.speed)
            print_emulator(result, args.seed, rounds, tokens, args.speed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
