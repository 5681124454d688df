"""Which (host, model) the twin is fitted to, and the runs that cannot support one fit."""

from __future__ import annotations

from collections.abc import Sequence

from analysis.errors import InputError
from analysis.run import Run


def run_targets(run: Run) -> list[tuple[str, str]]:
    """The (host, model) pairs a run's records sent requests to, in order of first appearance."""
    if run.records is None or run.records.empty:
        raise InputError(f"{run.name}: no per-request records (requests.csv): the fit needs them")
    pairs = zip(run.records["host"].astype(str), run.records["model"].astype(str), strict=True)
    return list(dict.fromkeys(pairs))


def select_target(runs: Sequence[Run], host: str | None = None, model: str | None = None) -> tuple[str, str]:
    """The one (host, model) every run measured, narrowed by ``host`` and ``model`` when given; ``InputError``
    (one line) when the runs measured different targets or the choice is ambiguous."""
    found = {run.name: run_targets(run) for run in runs}
    wanted = {
        name: [t for t in pairs if (host is None or t[0] == host) and (model is None or t[1] == model)]
        for name, pairs in found.items()
    }
    union = list(dict.fromkeys(t for pairs in wanted.values() for t in pairs))
    named = " ".join(f"--{k} {v}" for k, v in (("host", host), ("model", model)) if v is not None)
    if not union:
        raise InputError(f"no requests to {named} in the runs; they measured " + _listing(found))
    if any(len(pairs) > 1 for pairs in wanted.values()):
        raise InputError(f"the runs measured several hosts/models ({', '.join(map(label, union))}): choose one "
                         "with --host NAME --model NAME")
    if len(union) > 1 or any(not pairs for pairs in wanted.values()):
        raise InputError("cannot fit one twin to runs of different hosts/models: " + _listing(found))
    return union[0]


def label(target: tuple[str, str]) -> str:
    """``model@host``, as Locust's entries name them."""
    return f"{target[1]}@{target[0]}"


def _listing(found: dict[str, list[tuple[str, str]]]) -> str:
    return "; ".join(f"{name}: " + ", ".join(map(label, pairs)) for name, pairs in found.items())
