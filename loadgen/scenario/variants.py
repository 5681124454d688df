"""A scenario's variants: runs of it with some hosts changed, compared afterwards.

Written as a list of named variants (``- {name: 4-slots, hosts: {llamacpp: {settings: {slots: 4}}}}``)
or as a sweep over host settings (``{sweep: {num_parallel: [1, 2, 4, 8]}}``), which ``expand`` turns
into one variant per value (per combination, for two settings or more), each remembering its values.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Discriminator, Field, StrictBool, StrictFloat, StrictInt, StrictStr, Tag, model_validator

from loadgen.scenario.errors import FieldProblem, did_you_mean, one_of, show
from loadgen.scenario.hosts import EMBEDDED_HOSTS, EmbeddedHost, Host, HostPatch
from loadgen.scenario.spec import Name, Spec

MAX_SWEEP_RUNS = 64

SettingValue = StrictBool | StrictInt | StrictFloat | StrictStr
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class Variant(Spec):
    """One run of the scenario with some hosts changed; ``swept`` holds a sweep's setting values."""

    name: Name
    hosts: Annotated[dict[str, HostPatch], Field(min_length=1)]
    swept: dict[str, SettingValue] = {}


class SettingSweep(Spec):
    """``{sweep: {setting: [values]}, hosts: [names]}``: one variant per value of a host setting, or per
    combination of values for two settings or more; it changes the named hosts, by default every
    embedded host that has the setting."""

    sweep: Annotated[
        dict[Name, Annotated[tuple[SettingValue, ...], Field(min_length=1, max_length=MAX_SWEEP_RUNS)]],
        Field(min_length=1, max_length=4),
    ]
    hosts: Annotated[tuple[Name, ...], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _check_values(self) -> SettingSweep:
        runs = 1
        for setting, values in self.sweep.items():
            repeated = next((value for index, value in enumerate(values) if value in values[:index]), None)
            if repeated is not None:
                raise FieldProblem(f"lists {show(repeated)} twice", "sweep", setting)
            runs *= len(values)
        if runs > MAX_SWEEP_RUNS:
            raise FieldProblem(f"makes {runs} runs; at most {MAX_SWEEP_RUNS} (sweep fewer values)", "sweep")
        return self

    def expand(self, hosts: Sequence[Host]) -> tuple[Variant, ...]:
        """One variant per combination of values, named like ``num_parallel-4``; raises ``FieldProblem``
        (below ``sweep``) when a setting has no host to change or a value does not fit a host."""
        targets = {setting: self._targets(setting, hosts) for setting in self.sweep}
        for setting, values in self.sweep.items():
            for index, value in enumerate(values):
                for host in targets[setting]:
                    try:
                        HostPatch(settings={setting: value}).apply(host)
                    except FieldProblem as problem:
                        raise FieldProblem(f"on host {host.name}: {problem.message}", "sweep", setting, index) from None
        variants = []
        for combination in itertools.product(*self.sweep.values()):
            swept = dict(zip(self.sweep, combination, strict=True))
            patches: dict[str, dict[str, Any]] = {}
            for setting, value in swept.items():
                for host in targets[setting]:
                    patches.setdefault(host.name, {})[setting] = value
            name = ".".join(f"{setting}-{_UNSAFE.sub('-', str(value).lower())}" for setting, value in swept.items())
            variants.append(Variant(name=name[:64], swept=swept,
                                    hosts={host: HostPatch(settings=settings) for host, settings in patches.items()}))
        return tuple(variants)

    def _targets(self, setting: str, hosts: Sequence[Host]) -> list[EmbeddedHost]:
        """The hosts a setting changes."""
        by_name = {host.name: host for host in hosts}
        for index, name in enumerate(self.hosts or ()):
            if name not in by_name:
                raise FieldProblem(f"no host named {name!r}; hosts are {one_of(by_name)}{did_you_mean(name, by_name)}",
                                   "hosts", index)
        chosen = [by_name[name] for name in self.hosts] if self.hosts else list(hosts)
        embedded = [host for host in chosen if isinstance(host, EMBEDDED_HOSTS)]
        if not embedded or len(embedded) < len(chosen) and self.hosts:
            raise FieldProblem("sweeps restart embedded hosts (embedded: emulator, llamacpp or ollama); a running "
                               "server (url:) cannot be restarted with other settings: vary the users instead",
                               "sweep", setting)
        targets = [host for host in embedded if setting in type(host.settings).model_fields]
        if not targets or (self.hosts and len(targets) < len(embedded)):
            fields = {host.embedded: list(type(host.settings).model_fields) for host in embedded}
            have = "; ".join(f"{kind} hosts have {one_of(names)}" for kind, names in fields.items())
            known = [name for names in fields.values() for name in names]
            raise FieldProblem(f"no host it changes has a setting {setting!r}{did_you_mean(setting, known)} ({have})",
                               "sweep", setting)
        return targets


def _form(value: Any) -> str:
    return "<sweep>" if isinstance(value, (dict, SettingSweep)) else "<list>"


if TYPE_CHECKING:
    Variants = tuple[Variant, ...] | SettingSweep
else:  # a list of named variants, or a mapping with a sweep: told apart by form, so errors name one of them
    Variants = Annotated[
        Annotated[tuple[Variant, ...], Tag("<list>")] | Annotated[SettingSweep, Tag("<sweep>")], Discriminator(_form)
    ]
