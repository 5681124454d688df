"""The servers a scenario talks to: running ones (``url``) and ones the run starts (``embedded``).

A host is one of ``ExternalHost``, ``EmulatorHost``, ``LlamacppHost`` or ``OllamaHost`` (the user's own
``ollama serve``); the settings of embedded hosts are checked per server kind. Variants patch hosts by
name with ``HostPatch``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from emulator.config import ConfigError
from emulator.faults import parse_spec
from emulator.preset_file import load_preset_file
from emulator.presets import PRESETS, Preset
from loadgen.scenario.errors import FieldProblem, did_you_mean, first_problem, one_of, show
from loadgen.scenario.spec import (
    ModelName,
    Name,
    Spec,
    check_keys,
    context_value,
    from_payload,
    positive_up_to,
    tagged_union,
    within,
)
from loadgen.scenario.units import KeepAlive, PositiveDuration

EMBEDDED = ("emulator", "llamacpp", "ollama")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def _check_url(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if any(ch.isspace() for ch in value):
        raise FieldProblem(f"must not contain spaces, got {show(value)}")
    try:
        parts = urlsplit(value)
    except ValueError as e:  # e.g. an unclosed [ around an IPv6 address
        raise FieldProblem(f"is not a valid URL ({e}), got {show(value)}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FieldProblem(f"must be an http:// or https:// URL such as http://127.0.0.1:11434, got {show(value)}")
    if parts.username or parts.password:
        raise FieldProblem("must not carry credentials; put the token in an environment variable named by api_key_env")
    if not parts.hostname:
        raise FieldProblem(f"has no host name, got {show(value)}")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise FieldProblem(f"has a bad port (must be a number from 1 to 65535), got {show(value)}")
    if parts.query or parts.fragment:
        raise FieldProblem(f"must not have a query (?...) or fragment (#...), got {show(value)}")
    return value.rstrip("/")


def _check_env_name(value: Any) -> Any:
    if isinstance(value, str) and not _ENV_NAME.fullmatch(value):
        raise FieldProblem(
            "must be the NAME of an environment variable that holds the token (like OLLAMA_API_KEY), "
            "never the token itself"
        )
    return value


Url = Annotated[str, Field(strict=True), BeforeValidator(_check_url)]
EnvName = Annotated[str, Field(strict=True), BeforeValidator(_check_env_name)]
Models = Annotated[tuple[ModelName, ...], Field(min_length=1)]


class _Host(Spec):
    name: Name
    weight: Annotated[float, positive_up_to(1e6)] = 1.0  # share of requests under `routing: weighted`
    models: Models | None = None  # models this host serves; None = any
    api_key_env: EnvName | None = None  # environment variable holding a bearer token


class ExternalHost(_Host):
    """A server that is already running at ``url``."""

    url: Url


class EmulatorSettings(Spec):
    """Settings of the embedded Ollama emulator (``docs/emulator.md``); ``None`` leaves its default."""

    num_parallel: Annotated[StrictInt, within(1, 1024)] | None = None
    max_queue: Annotated[StrictInt, within(0, 1_000_000)] | None = None
    keep_alive: KeepAlive | None = None
    max_loaded_models: Annotated[StrictInt, within(1, 64)] | None = None
    context_length: Annotated[StrictInt, within(1, 10_000_000)] | None = None
    preset: Name | None = None  # m1, gpu, cpu, fast
    preset_file: Annotated[str, Field(strict=True, min_length=1)] | None = None  # a twin from `fit` (replaces preset)
    tune: dict[str, float] | None = None  # preset field -> value (e.g. solo_tps: 30)
    # a multiplier on every rate (divides every modelled time)
    speed: Annotated[float, positive_up_to(1000)] | None = None
    seed: StrictInt | None = None
    models: Models | None = None
    faults: Annotated[str, Field(strict=True)] | None = None  # the emulator's fault spec, e.g. "reset:p=0.1"
    trace_file: Annotated[str, Field(strict=True)] | None = None  # one JSON line per request, server-side times
    prompt_cache: StrictBool | None = None  # false: every prompt evaluated whole (Ollama's cache is always on)

    @field_validator("preset")
    @classmethod
    def _check_preset(cls, value: str | None) -> str | None:
        if value is not None and value not in PRESETS:
            expected = f"{one_of(PRESETS)}{did_you_mean(value, PRESETS)}"
            raise FieldProblem(f"unknown preset {show(value)}; expected {expected}")
        return value

    @model_validator(mode="after")
    def _one_preset(self) -> EmulatorSettings:
        if self.preset is not None and self.preset_file is not None:
            raise FieldProblem("set preset or preset_file (whose base preset it names), not both", "preset_file")
        return self

    @field_validator("preset_file")
    @classmethod
    def _check_preset_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        """The file, relative to the scenario's folder, must be a preset file the emulator can read."""
        if value is None or from_payload(info):
            return value
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = (context_value(info, "base_dir") or Path(".")) / path
        try:
            load_preset_file(str(path))
        except ConfigError as err:
            raise FieldProblem(str(err).removeprefix(f"--preset-file {path}: ")) from None
        return str(path.resolve())

    @field_validator("tune")
    @classmethod
    def _check_tune(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        fields = Preset.__dataclass_fields__
        for key in value or {}:
            if key not in fields:
                expected = f"{one_of(fields)}{did_you_mean(key, fields)}"
                raise FieldProblem(f"unknown preset field {show(key)}; expected {expected}", key)
        return value

    @field_validator("faults")
    @classmethod
    def _check_faults(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_spec(value)
            except ConfigError as err:
                raise FieldProblem(str(err)) from None
        return value


class EmulatorHost(_Host):
    """The Ollama emulator, started by the run on a free loopback port."""

    embedded: Literal["emulator"] = "emulator"
    settings: EmulatorSettings = EmulatorSettings()


class LlamacppSettings(Spec):
    """Settings of an embedded llama.cpp server; ``None`` leaves the run's default."""

    slots: Annotated[StrictInt, within(1, 256)] | None = None
    ctx_per_slot: Annotated[StrictInt, within(1, 10_000_000)] | None = None
    threads: Annotated[StrictInt, within(1, 1024)] | None = None
    model_alias: ModelName | None = None


class LlamacppHost(_Host):
    """A llama.cpp server (OpenAI API only), started by the run on a free loopback port."""

    embedded: Literal["llamacpp"] = "llamacpp"
    settings: LlamacppSettings = LlamacppSettings()


#: Each Ollama setting and the environment variable it sets (``envconfig/config.go``).
OLLAMA_ENVIRONMENT: dict[str, str] = {
    "num_parallel": "OLLAMA_NUM_PARALLEL",
    "max_queue": "OLLAMA_MAX_QUEUE",
    "keep_alive": "OLLAMA_KEEP_ALIVE",
    "max_loaded_models": "OLLAMA_MAX_LOADED_MODELS",
    "context_length": "OLLAMA_CONTEXT_LENGTH",
    "flash_attention": "OLLAMA_FLASH_ATTENTION",
    "kv_cache_type": "OLLAMA_KV_CACHE_TYPE",
}
EnvValue = StrictBool | StrictInt | StrictFloat | StrictStr


class OllamaSettings(Spec):
    """Settings of the user's own ``ollama serve``, started by the run: each named one sets its Ollama
    environment variable (``OLLAMA_ENVIRONMENT``), ``env`` sets any other; ``None`` leaves Ollama's default."""

    binary: Annotated[str, Field(strict=True, min_length=1)] | None = None  # default: `ollama` on PATH
    num_parallel: Annotated[StrictInt, within(1, 1024)] | None = None
    max_queue: Annotated[StrictInt, within(0, 1_000_000)] | None = None
    keep_alive: KeepAlive | None = None
    max_loaded_models: Annotated[StrictInt, within(1, 64)] | None = None
    context_length: Annotated[StrictInt, within(1, 10_000_000)] | None = None
    flash_attention: StrictBool | None = None
    kv_cache_type: Literal["f16", "q8_0", "q4_0"] | None = None
    env: dict[str, EnvValue] | None = None  # any other variable, e.g. OLLAMA_DEBUG: 1
    pull: StrictBool = False  # pull a model the store lacks, instead of stopping
    start_timeout: PositiveDuration = 60.0  # until /api/version answers

    @field_validator("env")
    @classmethod
    def _check_env(cls, value: dict[str, EnvValue] | None) -> dict[str, EnvValue] | None:
        by_variable = {variable: setting for setting, variable in OLLAMA_ENVIRONMENT.items()}
        for name in value or {}:
            if not _ENV_NAME.fullmatch(name):
                raise FieldProblem(f"{show(name)} is not an environment variable name", name)
            if name == "OLLAMA_HOST":
                raise FieldProblem("OLLAMA_HOST is the run's to set: it starts Ollama on a free loopback port", name)
            if name in by_variable:
                raise FieldProblem(f"set {name} with the setting {by_variable[name]}: (so sweeps and reports see it)",
                                   name)
        return value

    def environment(self) -> dict[str, str]:
        """The variables this sets, as Ollama reads them (booleans as ``true``/``false``)."""
        named = {variable: getattr(self, setting) for setting, variable in OLLAMA_ENVIRONMENT.items()}
        values = {**{k: v for k, v in named.items() if v is not None}, **(self.env or {})}
        return {name: _env_text(value) for name, value in values.items()}


def _env_text(value: object) -> str:
    if isinstance(value, KeepAlive):
        return str(value.wire)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class OllamaHost(_Host):
    """The user's own Ollama (``ollama serve``), started by the run on a free loopback port with the
    settings as its environment, the user's model store, and stopped at the run's end."""

    embedded: Literal["ollama"] = "ollama"
    settings: OllamaSettings = OllamaSettings()


EmbeddedHost = EmulatorHost | LlamacppHost | OllamaHost
EMBEDDED_HOSTS = (EmulatorHost, LlamacppHost, OllamaHost)
_MEMBERS: dict[str, type[_Host]] = {"external": ExternalHost, "emulator": EmulatorHost, "llamacpp": LlamacppHost,
                                    "ollama": OllamaHost}


def _check_host_form(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if "url" in value and "embedded" in value:
        raise FieldProblem("set url (a running server) or embedded (a server the run starts), not both", "embedded")
    if "embedded" in value and value["embedded"] not in EMBEDDED:
        got = value["embedded"]
        raise FieldProblem(
            f"unknown embedded server {show(got)}; expected {one_of(EMBEDDED)}{did_you_mean(got, EMBEDDED)}",
            "embedded",
        )
    if "url" in value and "settings" in value:
        raise FieldProblem(
            "settings apply only to embedded hosts; a running server is configured where it runs", "settings"
        )
    if "url" not in value and "embedded" not in value:
        check_keys(value, frozenset().union(*(member.yaml_keys() for member in _MEMBERS.values())))
        raise FieldProblem("needs url (a running server, e.g. http://127.0.0.1:11434) or embedded: "
                           "emulator|llamacpp|ollama")
    return value


if TYPE_CHECKING:  # what a type checker sees; at run time, the tagged union of the same members validates
    Host = ExternalHost | EmulatorHost | LlamacppHost | OllamaHost
else:
    Host = Annotated[
        tagged_union("embedded", _MEMBERS, what="embedded server", infer=lambda d: "external" if "url" in d else None),
        BeforeValidator(_check_host_form),
    ]
HOST: TypeAdapter[Host] = TypeAdapter(Host)


class HostPatch(Spec):
    """A variant's changes to one host: fields replace, ``settings`` merge key by key."""

    url: Url | None = None
    weight: Annotated[float, positive_up_to(1e6)] | None = None
    models: Models | None = None
    api_key_env: EnvName | None = None
    settings: dict[str, Any] | None = None

    def apply(self, host: _Host, *where: str | int) -> _Host:
        """``host`` with this patch applied, validated; problems are reported under ``where``."""
        fields = dict(host)
        fields.update({name: value for name, value in self if value is not None and name != "settings"})
        if self.settings is not None:
            base = dict(fields["settings"]) if "settings" in fields else {}
            fields["settings"] = {**{k: v for k, v in base.items() if v is not None}, **self.settings}
        try:
            return HOST.validate_python(fields)
        except ValidationError as err:
            raise first_problem(err, *where) from None
