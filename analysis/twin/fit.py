"""Fit the emulator's speed model to one target's measured runs: ``fit_twin``.

The steps: choose the (host, model) (``select``), time each request's decode and its batch (``decode``),
combine the slowdown per batch size (``slowdown``), fit the slowdown's forms (``forms``) and the other
parameters (``params``). Runs that cannot support a fit raise ``InputError`` with one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import pandas as pd

from analysis.errors import InputError
from analysis.run import Run
from analysis.slots import configured_slots
from analysis.target import targets
from analysis.twin import params
from analysis.twin.decode import CLIENT, SERVER, decode_requests, succeeded
from analysis.twin.forms import FormFit, choose_form, fit_forms
from analysis.twin.params import Parameter
from analysis.twin.select import label, select_target
from analysis.twin.slowdown import MIN_REQUESTS, Point, Row, RunSpeeds, decode_table, measured_points
from emulator.presets import PRESETS

#: The preset whose values fill every field the fit leaves out, unless ``--base`` names another.
DEFAULT_BASE: Final = "m1"
#: The presets that can be a twin's base.
BASES: Final = tuple(sorted(PRESETS))
#: The preset fields, in the order the file and the report list them; min/max_output are whole tokens.
PRESET_ORDER: Final = ("solo_tps", "parallel_penalty", "contention", "prefill_tps", "load_s", "min_output",
                       "max_output")
INT_FIELDS: Final = frozenset({"min_output", "max_output"})
ONLY_SOLO: Final = ("cannot fit how speed falls with concurrency: the runs measured only batches of 1; run a sweep "
                    "(load: {shape: rounds, levels: [1, 2, 4]})")
NO_BASELINE: Final = ("cannot fit how speed falls with concurrency: no run measured batches of 1 beside larger ones, "
                      "so no slowdown has a baseline; include level 1 (load: {shape: rounds, levels: [1, 2, 4]})")
SPARSE: Final = ("cannot fit how speed falls with concurrency: each batch size above 1 was seen in fewer than "
                  f"{MIN_REQUESTS} requests of a run; measure each level longer (more rounds)")
NO_DECODE_TIME: Final = ("decode time unknown: the server reported no eval timers and no request was streamed; "
                         "stream the requests (options: {stream: true}) or measure a server that reports timers")


@dataclass(frozen=True, slots=True)
class RunSource:
    """One run the twin was fitted from."""

    name: str
    path: str
    slots: int | None  # configured, from run.json
    server: str
    version: str


@dataclass(frozen=True, slots=True)
class Twin:
    """The fitted preset, the decode table and everything the report says about how they were found."""

    host: str
    model: str
    base: str
    runs: tuple[RunSource, ...]
    decode_sources: dict[str, int]  # decode source -> requests timed by it
    parameters: tuple[Parameter, ...]  # in PRESET_ORDER
    points: tuple[Point, ...]  # measured f(b)
    forms: tuple[FormFit, ...]  # linear first
    form: FormFit  # the one the table is extended with
    form_reason: str
    table: tuple[Row, ...]
    notes: tuple[str, ...]

    @property
    def target(self) -> str:
        """``model@host``."""
        return label((self.host, self.model))

    def parameter(self, name: str) -> Parameter:
        return next(p for p in self.parameters if p.name == name)

    def preset(self) -> dict[str, float | int]:
        """The determined preset fields (the base preset fills the rest)."""
        return {p.name: int(p.value) if p.name in INT_FIELDS else p.value
                for p in self.parameters if p.value is not None}

    def base_value(self, name: str) -> float | int:
        """What the base preset gives ``name``."""
        value: float | int = getattr(PRESETS[self.base], name)
        return value


def fit_twin(runs: Sequence[Run], host: str | None = None, model: str | None = None,
             base: str = DEFAULT_BASE) -> Twin:
    """Fit the twin of the (host, model) the ``runs`` measured; ``InputError`` when they cannot support it."""
    if base not in PRESETS:
        raise InputError(f"unknown base preset {base!r}; choose one of {', '.join(PRESETS)}")
    target_host, target_model = select_target(runs, host, model)
    name = label((target_host, target_model))
    frames, speeds, sources = [], [], []
    for run in runs:
        assert run.records is not None  # select_target checked
        records = run.records
        mine = (records["host"].astype(str) == target_host) & (records["model"].astype(str) == target_model)
        frames.append(records[mine].assign(run=run.name))
        decoded = decode_requests(records)
        rows = decoded[(decoded["host"] == target_host) & (decoded["model"] == target_model)]
        speeds.append(RunSpeeds(run.name, configured_slots(run.info, target_host), rows))
        sources.append(_source(run, target_host))
    records = pd.concat(frames, ignore_index=True)  # one index over the runs, for the params to select by
    if not succeeded(records).any():
        raise InputError(f"every request to {name} failed: nothing to fit")
    decoded = pd.concat([s.rows for s in speeds])
    if decoded.empty:
        raise InputError(NO_DECODE_TIME)
    points = measured_points(speeds)
    if not points:
        sparse_only = any(run.solo is not None and run.sparse() for run in speeds)
        raise InputError(ONLY_SOLO if int(decoded["b"].max()) <= 1 else SPARSE if sparse_only else NO_BASELINE)
    forms = fit_forms([(p.b, p.f) for p in points])
    form, reason = choose_form(forms)
    penalty = params.parallel_penalty(speeds)
    parameters = (
        params.solo_tps(speeds, penalty),
        penalty,
        params.contention(points, forms[0].params["c"], forms[0].rms, speeds),
        params.prefill_tps(records),
        params.load_s(records, PRESETS[base].fit_s),
        *params.output_range(records),
    )
    counts = decoded["decode_source"].value_counts()
    decode_sources = {s: int(counts.get(s, 0)) for s in (SERVER, CLIENT) if counts.get(s, 0)}
    return Twin(target_host, target_model, base, tuple(sources), decode_sources, parameters, tuple(points),
                tuple(forms), form, reason, tuple(decode_table(points, form)),
                tuple(_notes(runs, records, decoded, target_host, target_model, sources, speeds)))


def _source(run: Run, host: str) -> RunSource:
    found = next((t for t in targets(run.info) if t.name == host), None)
    server = "" if found is None else ("emulator" if found.is_emulator else found.server)
    return RunSource(run.name, str(run.path or run.name), configured_slots(run.info, host), server,
                     "" if found is None else found.version)


def _notes(runs: Sequence[Run], records: pd.DataFrame, decoded: pd.DataFrame, host: str, model: str,
           sources: Sequence[RunSource], speeds: Sequence[RunSpeeds]) -> list[str]:
    notes = []
    sparse = [f"b = {b} in {run.name} ({n} request{'s' if n > 1 else ''})"
              for run in speeds for b, n in run.sparse().items()]
    if sparse:
        notes.append(f"batch sizes seen in fewer than {MIN_REQUESTS} requests of a run were left out of the slowdown "
                     "(a burst's edge, not a batch the engine held): " + "; ".join(sparse))
    ok = int((succeeded(records) & (records["output_tokens"] > 0)).sum())
    if ok > len(decoded):
        notes.append(f"{ok - len(decoded)} successful requests had no decode time (no server timer and not "
                     "streamed) and were left out of the speeds")
    others = set()
    for run in runs:
        assert run.records is not None
        on_host = run.records[run.records["host"].astype(str) == host]
        others |= set(on_host["model"].astype(str)) - {model}
    if others:
        notes.append(f"other models decoded on {host} in the same runs ({', '.join(sorted(others))}); their "
                     "sequences count in the batch sizes, as they share the hardware")
    versions = {f"{s.server} {s.version}".strip() for s in sources} - {""}
    if len(versions) > 1:
        notes.append("the runs measured different server versions: " + ", ".join(sorted(versions)))
    return notes
