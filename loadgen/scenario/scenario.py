"""A load-test scenario: YAML in, typed and frozen objects out, checked once at the door.

``load_scenario(path)`` reads and validates a scenario file, resolves every default (each workload
carries its effective models, endpoint, options and SLO) and reads the prompt files, or raises one
``ScenarioError`` that names the file, line, column and field of each problem. ``to_payload`` /
``from_payload`` carry a loaded scenario to Locust workers as plain data, prompts included.

``ollama-loadtest check FILE...`` checks scenario files (exit status 2 on a problem).
The field-by-field reference is ``docs/scenarios.md``.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ModelWrapValidatorHandler, ValidationError, ValidationInfo, model_validator

from loadgen.scenario.errors import (
    FieldProblem,
    did_you_mean,
    first_problem,
    format_path,
    one_of,
    problems_from,
    show,
)
from loadgen.scenario.errors import (
    ScenarioError as ScenarioError,  # re-exported: the loader's callers import it from here
)
from loadgen.scenario.hosts import HOST, EmulatorHost, Host, LlamacppHost, Models
from loadgen.scenario.load import Capacity, LoadShape, Replay, Rounds, Steady, Sweep
from loadgen.scenario.options import DEFAULT_OPTIONS, Options, Slo
from loadgen.scenario.spec import Name, Spec, check_model_name, from_payload, positive_up_to, unique_names
from loadgen.scenario.variants import SettingSweep, SettingValue, Variant, Variants
from loadgen.scenario.workloads import Workload, models_from_sugar
from loadgen.scenario.yaml_source import Mark, YamlSyntaxError, parse_yaml

PAYLOAD_FORMAT = "ollama-loadtest.scenario/1"
PAYLOAD_FILE = "<payload>"
HOSTS_OPTION = "--hosts"
MODEL_OPTION = "--model"

Api = Literal["ollama", "openai"]
Routing = Literal["sticky", "round_robin", "weighted", "least_in_flight"]


class CapacityGate(Spec):
    """What a capacity search must find for the run to pass (exit code 1 otherwise): a CI gate."""

    min: Annotated[float, positive_up_to(1e6)]  # users (or requests/s, for a search over arrival rates)


class Source(Spec):
    """The file a scenario was loaded from, its text as read, and the SHA-256 of its bytes."""

    file: str
    sha256: str
    text: str


class Scenario(Spec):
    """A whole scenario. Top-level ``models``, ``options`` and ``slo`` are the defaults as written;
    read a workload's own fields for the values its requests use."""

    name: Name
    description: Annotated[str, Field(strict=True)] = ""
    api: Api = "ollama"
    models: Models | None = None
    hosts: Annotated[tuple[Host, ...], Field(min_length=1, max_length=1000)] = (EmulatorHost(name="emulator"),)
    routing: Routing = "sticky"
    options: Options = Options()
    workloads: Annotated[tuple[Workload, ...], Field(min_length=1, max_length=1000)]
    load: LoadShape = Steady()
    slo: Slo = Slo()
    capacity: CapacityGate | None = None
    variants: Variants = ()
    variant: Name | None = None  # set by with_variant
    swept: dict[str, SettingValue] = {}  # set by with_variant: a sweep's setting values for this run
    source: Source | None = None  # set by load_scenario

    _yaml_only = frozenset({"model"})
    _payload_only = frozenset({"variant", "swept", "source"})

    @property
    def variant_list(self) -> tuple[Variant, ...]:
        """Every variant, a sweep expanded into one per setting value (per combination of values)."""
        return self.variants.expand(self.hosts) if isinstance(self.variants, SettingSweep) else self.variants

    @property
    def sha256(self) -> str | None:
        """SHA-256 (hex) of the scenario file's bytes, when it was loaded from a file."""
        return self.source.sha256 if self.source else None

    @classmethod
    def _prepare(cls, data: Any, info: ValidationInfo) -> Any:
        data = models_from_sugar(data)
        hosts = data.get("hosts") if isinstance(data, dict) else None
        if isinstance(hosts, list):
            named = [
                {"name": f"host-{i + 1}", **host} if isinstance(host, dict) else host for i, host in enumerate(hosts)
            ]
            data = {**data, "hosts": named}
        return data

    @model_validator(mode="wrap")
    @classmethod
    def _resolve(cls, data: Any, handler: ModelWrapValidatorHandler[Scenario], info: ValidationInfo) -> Scenario:
        scenario = handler(data)
        if from_payload(info) or isinstance(data, Scenario):
            return scenario
        scenario._check_references()
        return scenario._with_defaults_resolved()

    def _check_references(self) -> None:
        unique_names((host.name for host in self.hosts), "hosts", "name")
        unique_names((workload.name for workload in self.workloads), "workloads", "name")
        for index, host in enumerate(self.hosts):
            if isinstance(host, LlamacppHost) and self.api != "openai":
                raise FieldProblem("llama.cpp speaks only the OpenAI API: set api: openai", "hosts", index, "embedded")
        for index, workload in enumerate(self.workloads):
            models = workload.models or self.models
            if models is None:
                raise FieldProblem("has no model: set model: on it, or a default model: at the top", "workloads", index)
            for model in models:
                if not any(host.models is None or model in host.models for host in self.hosts):
                    raise FieldProblem(
                        f"no host serves model {model!r} (check the hosts' models lists)", "workloads", index, "models"
                    )
        self._check_capacity()
        self._check_variants()

    def _check_variants(self) -> None:
        if isinstance(self.variants, SettingSweep):
            try:
                self.variants.expand(self.hosts)
            except FieldProblem as problem:
                raise FieldProblem(problem.message, "variants", *problem.path) from None
            return
        unique_names((variant.name for variant in self.variants), "variants", "name")
        hosts = {host.name: host for host in self.hosts}
        for index, variant in enumerate(self.variants):
            for name, patch in variant.hosts.items():
                where = ("variants", index, "hosts", name)
                if name not in hosts:
                    raise FieldProblem(
                        f"no host named {name!r}; hosts are {one_of(hosts)}{did_you_mean(name, hosts)}", *where
                    )
                patch.apply(hosts[name], *where)

    def _check_capacity(self) -> None:
        """A capacity search needs a threshold to hold; a capacity gate needs a search."""
        if not isinstance(self.load, Capacity):
            if self.capacity is not None:
                raise FieldProblem("a capacity gate needs a capacity search: load: {shape: capacity, ...}",
                                   "capacity")
            return
        if not any(slo.is_set for slo in (self.slo, *(workload.slo for workload in self.workloads))):
            raise FieldProblem("a capacity search needs an SLO to hold: add slo: {e2e_p95: 20s} (or ttft_p95, "
                               "slot_wait_p95, tpot_p95, error_rate) at the top or on a workload", "load", "shape")

    def _with_defaults_resolved(self) -> Scenario:
        options = DEFAULT_OPTIONS.merged(self.options)
        # A capacity search scales the whole mix: a workload's fixed users count as its weight.
        searched = isinstance(self.load, Capacity)
        workloads = tuple(
            workload.model_copy(
                update={
                    "models": workload.models or self.models,
                    "options": options.merged(workload.options),
                    "slo": self.slo.merged(workload.slo),
                    **({"weight": float(workload.users), "users": None} if searched and workload.users else {}),
                }
            )
            for workload in self.workloads
        )
        fixed = sum(workload.users or 0 for workload in workloads)
        weighted = sum(1 for workload in workloads if workload.weight is not None)
        load = self.load
        if isinstance(load, Steady) and load.users is None:
            load = load.model_copy(update={"users": fixed + weighted})
        _check_user_counts(load, fixed, weighted)
        return self.model_copy(update={"workloads": workloads, "load": load})

    def models_on(self, host: Host) -> tuple[str, ...]:
        """The models the workloads may ask of ``host``: theirs that the host serves (all, if it lists none)."""
        wanted = dict.fromkeys(model for workload in self.workloads for model in workload.models or ())
        return tuple(model for model in wanted if host.models is None or model in host.models)

    def with_variant(self, name: str) -> Scenario:
        """This scenario with variant ``name``'s host changes applied (``variant`` and ``swept`` set,
        ``variants`` cleared)."""
        variants = self.variant_list
        variant = next((variant for variant in variants if variant.name == name), None)
        if variant is None:
            raise KeyError(f"no variant {name!r}; variants are {one_of(v.name for v in variants) or 'none'}")
        hosts = tuple(
            variant.hosts[host.name].apply(host) if host.name in variant.hosts else host for host in self.hosts
        )
        return self.model_copy(update={"hosts": hosts, "variant": name, "swept": variant.swept, "variants": ()})

    def with_hosts(self, spec: str) -> Scenario:
        """This scenario re-pointed by a ``--hosts`` value. ``name=URL[,name=URL...]`` points those hosts
        at running servers; a plain ``URL[,URL...]`` with one URL per host does so in order (names and
        weights kept), otherwise it replaces the hosts with one per URL, named after its address.
        Raises ``ScenarioError`` naming ``--hosts``."""
        entries = [entry.strip() for entry in spec.split(",") if entry.strip()]
        if not entries:
            raise ScenarioError.single(HOSTS_OPTION, "is empty: give URL[,URL...] or name=URL[,name=URL...]")
        named = all("=" in entry and "://" not in entry.split("=", 1)[0] for entry in entries)
        pairs: list[tuple[str | None, str]] = (
            [(name, url) for name, _, url in (entry.partition("=") for entry in entries)]
            if named
            else [(None, entry) for entry in entries]
        )
        hosts = {host.name: host for host in self.hosts}
        if named:
            unknown = [name for name, _ in pairs if name not in hosts]
            if unknown:
                missing = unknown[0]
                raise ScenarioError.single(
                    HOSTS_OPTION, f"no host named {missing!r}; hosts are {one_of(hosts)}{did_you_mean(missing, hosts)}"
                )
            urls = dict(pairs)
            new = [_external(host, urls[host.name]) if host.name in urls else host for host in self.hosts]
        elif len(pairs) == len(self.hosts):
            new = [_external(host, url) for host, (_, url) in zip(self.hosts, pairs, strict=True)]
        else:
            new = [_external(None, url) for _, url in pairs]
        return self.model_copy(update={"hosts": tuple(new)})

    def with_model(self, model: str) -> Scenario:
        """This scenario with every workload asking for ``model`` (a ``--model`` value). The hosts'
        ``models`` lists named the models replaced, so they go: every host serves the one model.
        Raises ``ScenarioError`` naming ``--model``."""
        try:
            check_model_name(model)
        except FieldProblem as problem:
            raise ScenarioError.single(MODEL_OPTION, problem.message) from None
        models = (model,)
        return self.model_copy(update={
            "models": models,
            "workloads": tuple(workload.model_copy(update={"models": models}) for workload in self.workloads),
            "hosts": tuple(host.model_copy(update={"models": None}) for host in self.hosts),
        })

    def problem(self, message: str, *loc: str | int) -> ScenarioError:
        """A ``ScenarioError`` about the value at ``loc`` (e.g. ``"hosts", 0, "url"``), found after loading
        (a host that does not answer): it names the line where the scenario file writes that value."""
        if self.source is None:
            return ScenarioError.single(PAYLOAD_FILE, message, path=format_path(loc))
        mark, _ = parse_yaml(self.source.text).locate(loc)
        return ScenarioError.single(self.source.file, message, mark, format_path(loc))

    def to_payload(self) -> dict[str, Any]:
        """The scenario as plain JSON/msgpack data, prompts included, for workers without files."""
        return {"format": PAYLOAD_FORMAT, "scenario": self.model_dump(mode="json")}

    @classmethod
    def from_payload(cls, payload: Any) -> Scenario:
        """The scenario ``to_payload`` produced (equal to the original). Raises ``ScenarioError``."""
        if not isinstance(payload, dict) or payload.get("format") != PAYLOAD_FORMAT:
            got = payload.get("format") if isinstance(payload, dict) else payload
            raise ScenarioError.single(
                PAYLOAD_FILE,
                f"not a scenario payload of format {PAYLOAD_FORMAT!r} (got {show(got)}); "
                "do the master and the workers run the same version?",
            )
        try:
            return cls.model_validate(payload.get("scenario"), context={"payload": True})
        except ValidationError as err:
            raise ScenarioError(problems_from(err, PAYLOAD_FILE, None)) from None


def _external(host: Host | None, url: str) -> Host:
    """``host`` pointed at the running server at ``url`` (a new host named after the URL's address if None)."""
    if host:
        fields = {"name": host.name, "weight": host.weight, "models": host.models, "api_key_env": host.api_key_env}
    else:
        fields = {"name": urlsplit(url).netloc or url}
    try:
        return HOST.validate_python({**fields, "url": url})
    except ValidationError as err:
        raise ScenarioError.single(HOSTS_OPTION, f"{url!r}: {first_problem(err).message}") from None


def _check_user_counts(load: Any, fixed: int, weighted: int) -> None:
    """Closed-loop user counts must cover the workloads' fixed ``users`` (and leave one for weighted ones)."""
    if not fixed:
        return
    need = fixed + (1 if weighted else 0)
    why = f"{fixed} fixed user{'s' if fixed > 1 else ''}" + (" plus one for the weighted workloads" if weighted else "")
    if isinstance(load, Steady) and load.users is not None and load.users < need:
        raise FieldProblem(f"must be at least {need} ({why}), got {load.users}", "load", "users")
    if isinstance(load, (Sweep, Rounds)):
        for index, level in enumerate(load.levels):
            if level < need:
                raise FieldProblem(f"must be at least {need} ({why}), got {level}", "load", "levels", index)


def load_scenario(path: str | Path) -> Scenario:
    """Read, validate and resolve a scenario file (YAML, or the JSON of ``to_payload``: a resolved scenario as
    a program wrote it). Raises ``ScenarioError`` (all problems, one per line)."""
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ScenarioError.single(file, "no such scenario file") from None
    except IsADirectoryError:
        raise ScenarioError.single(file, "is a directory, not a scenario file") from None
    except OSError as err:
        raise ScenarioError.single(file, f"cannot read the scenario file: {err.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ScenarioError.single(file, f"is not UTF-8 text (byte {err.start})") from None
    try:
        source = parse_yaml(text)
    except YamlSyntaxError as err:
        raise ScenarioError.single(file, f"YAML syntax error: {err.message}", err.mark) from None
    if isinstance(source.data, dict) and source.data.get("format") == PAYLOAD_FORMAT:  # a resolved scenario (JSON)
        scenario = Scenario.from_payload(source.data)
        return scenario.model_copy(update={"source": Source(file=file, sha256=hashlib.sha256(raw).hexdigest(),
                                                            text=text)})
    if not isinstance(source.data, dict):
        got = "an empty file" if source.data is None else show(source.data)
        raise ScenarioError.single(
            file, f"a scenario must be a mapping with at least name: and workloads:, got {got}", Mark(1, 1)
        )
    try:
        scenario = Scenario.model_validate(source.data, context={"base_dir": Path(path).parent})
    except ValidationError as err:
        raise ScenarioError(problems_from(err, file, source)) from None
    return scenario.model_copy(update={"source": Source(file=file, sha256=hashlib.sha256(raw).hexdigest(), text=text)})


def check(path: str | Path) -> int:
    """Load one scenario file and say so: ``ok: <name> (N workloads)`` (and what a replay kept of its trace)
    on stdout and 0, or the error on stderr and 2."""
    try:
        scenario = load_scenario(path)
    except ScenarioError as err:
        print(err, file=sys.stderr)
        return 2
    count = len(scenario.workloads)
    replay = f"; replay: {scenario.load.summary}" if isinstance(scenario.load, Replay) else ""
    print(f"ok: {scenario.name} ({count} workload{'' if count == 1 else 's'}{replay})")
    return 0

