"""The emulator's settings: Ollama's environment variables, their command-line twins, and emulator-only flags.

Values are parsed the way Ollama parses them (``envconfig/config.go``): ``OLLAMA_HOST`` accepts
``host:port``, ``:port``, a bare host or IP, ``http://host:port`` and ``[::1]:port``; durations are Go
durations (``5m``, ``1h30m``) or integer seconds, and a negative duration means forever. A bad
environment value falls back to Ollama's default with a warning, as Ollama does; a bad flag is an error.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, NoReturn

DEFAULT_PORT: Final = 11434
DEFAULT_CONTEXT_LENGTH: Final = 4096  # Ollama's VRAM tier below 24 GiB, the only tier a CPU box reaches
FOREVER: Final = math.inf  # a keep-alive that never expires (Ollama: time.Duration(math.MaxInt64))
DEFAULT_VERSION: Final = "0.33.0-emulator"

_UNITS: Final = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


class ConfigError(ValueError):
    """A setting that cannot be parsed; the message names the setting and the value."""


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string (``"1h30m"``, ``"-5m"``, ``"0"``); raises ``ValueError`` like Go.

    The message is Go's: ``time: invalid duration "x"``.
    """
    s = text
    sign = 1.0
    if s[:1] in "+-" and s:
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    total, pos = 0.0, 0
    while pos < len(s):
        match = _DURATION_PART.match(s, pos)
        if match is None:
            if re.match(r"\d*\.?\d*$", s[pos:]):
                raise ValueError(f'time: missing unit in duration "{text}"')
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return sign * total


def keep_alive_seconds(value: float) -> float:
    """Ollama's mapping of a keep-alive: negative means forever."""
    return FOREVER if value < 0 else value


def parse_keep_alive_env(text: str) -> float:
    """``OLLAMA_KEEP_ALIVE``: a Go duration or integer seconds; negative is forever. Raises ``ConfigError``."""
    text = text.strip().strip("\"'")
    try:
        return keep_alive_seconds(parse_go_duration(text))
    except ValueError:
        pass
    if re.fullmatch(r"[+-]?\d+", text):
        return keep_alive_seconds(float(int(text)))
    raise ConfigError(f"invalid keep-alive {text!r}: expected a Go duration such as 5m or 1h30m, or integer seconds")


def parse_host(text: str) -> tuple[str, int]:
    """``OLLAMA_HOST`` forms to (bind host, port); the host is ``""`` for all interfaces (``:11434``)."""
    s = text.strip().strip("\"'")
    default_port = DEFAULT_PORT
    scheme, sep, hostport = s.partition("://")
    if not sep:
        hostport = s
    elif scheme == "http":
        default_port = 80
    elif scheme == "https":
        default_port = 443
    hostport = hostport.partition("/")[0]
    host, port_text = _split_host_port(hostport)
    if port_text is None:
        host, port_text = "127.0.0.1", str(default_port)
        bare = hostport.strip("[]")
        if bare:
            host = bare
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(f"invalid port in host {text!r}")
    return host, int(port_text)


def _split_host_port(hostport: str) -> tuple[str, str | None]:
    """Go's ``net.SplitHostPort``: ``("h", "p")``, or ``(hostport, None)`` when there is no port."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end > 0 and hostport[end + 1 : end + 2] == ":":
            return hostport[1:end], hostport[end + 2 :]
        return hostport, None
    if hostport.count(":") == 1:
        host, _, port = hostport.partition(":")
        return host, port
    return hostport, None


def is_loopback_bind(host: str) -> bool:
    """True when the bind address is a loopback IP or ``localhost`` (the host-header guard applies then)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the emulator is started with."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    num_parallel: int = 1
    max_queue: int = 512
    keep_alive: float = 300.0  # seconds; FOREVER for a negative setting; 0 unloads when idle
    max_loaded_models: int = 3  # Ollama's auto value on a CPU box: 3 x max(#GPUs, 1)
    context_length: int = DEFAULT_CONTEXT_LENGTH
    preset: str = "m1"
    preset_file: str = ""  # a fitted twin (preset_file.py); its base preset replaces ``preset``
    tune: Mapping[str, float] = field(default_factory=dict)
    speed: float = 1.0
    seed: int = 0
    models: str = ""
    version: str = DEFAULT_VERSION
    faults: str = ""
    trace_file: str = ""
    openai_legacy_stream: bool = False
    prompt_cache: bool = True  # each slot reuses the prefix its last prompt shares with the next, as Ollama's does


def _positive_int(name: str, minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(str(text).strip().strip("\"'"))
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {text!r}") from None
        if value < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {value}")
        return value

    return parse


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"--speed must be a number, got {text!r}") from None
    if not value > 0 or math.isinf(value):
        raise ConfigError(f"--speed must be a positive finite number, got {text!r}")
    return value


_SWITCH: Final = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}


def _switch(text: str) -> bool:
    value = text.strip().lower()
    if value not in _SWITCH:
        raise ConfigError(f"--prompt-cache must be on or off, got {text!r}")
    return _SWITCH[value]


def _tune(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    if not sep:
        raise ConfigError(f"--tune expects KEY=VALUE, got {text!r}")
    try:
        return key.strip(), float(value)
    except ValueError:
        raise ConfigError(f"--tune {key}: value must be a number, got {value!r}") from None


# Each Ollama setting: (flag, environment variable, parser, Config field).
_OLLAMA_SETTINGS: Final = (
    ("--host", "OLLAMA_HOST", parse_host, "host"),
    ("--num-parallel", "OLLAMA_NUM_PARALLEL", _positive_int("num-parallel", 0), "num_parallel"),
    ("--max-queue", "OLLAMA_MAX_QUEUE", _positive_int("max-queue", 0), "max_queue"),
    ("--keep-alive", "OLLAMA_KEEP_ALIVE", parse_keep_alive_env, "keep_alive"),
    ("--max-loaded-models", "OLLAMA_MAX_LOADED_MODELS", _positive_int("max-loaded-models", 0), "max_loaded_models"),
    ("--context-length", "OLLAMA_CONTEXT_LENGTH", _positive_int("context-length", 0), "context_length"),
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's default also exits 2; keep the message short and clear
        self.print_usage(sys.stderr)
        self.exit(2, f"ollama-emulator: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The command line; Ollama's settings default to their environment variables, flags win."""
    p = _Parser(
        prog="ollama-emulator", description="An Ollama API server with Ollama's scheduler and a modelled speed."
    )
    for flag, env, _, _ in _OLLAMA_SETTINGS:
        p.add_argument(flag, metavar="VALUE", help=f"overrides ${env}")
    p.add_argument("--preset", default="m1", help="throughput preset (see docs/emulator.md); default m1")
    p.add_argument("--preset-file", default="", metavar="FILE",
                   help="a preset file, e.g. a twin written by ollama-loadtest fit (replaces --preset)")
    p.add_argument("--tune", action="append", default=[], metavar="KEY=VALUE", help="override one preset field")
    p.add_argument("--speed", default="1", help="multiply every rate and divide every modelled time (default 1)")
    p.add_argument("--seed", default="0", help="seed for jitter and generated text (default 0)")
    p.add_argument("--models", default="", help="model catalog: comma list of names, or a JSON/YAML file")
    p.add_argument("--version", default=DEFAULT_VERSION, help=f"version reported by /api/version ({DEFAULT_VERSION})")
    p.add_argument("--faults", default="", help="fault-injection spec (see docs/emulator.md)")
    p.add_argument("--trace-file", default="", help="append one JSON line per finished request to this file")
    p.add_argument(
        "--openai-legacy-stream",
        action="store_true",
        help="stream /v1/chat/completions in the pre-0.32.6 format (role on every chunk, no finish chunk)",
    )
    p.add_argument("--prompt-cache", default="on", metavar="on|off",
                   help="reuse the prompt prefix each slot holds from its last request, as Ollama does (default on)")
    return p


def load_config(argv: Sequence[str], environ: Mapping[str, str]) -> Config:
    """Parse flags and environment into a ``Config``; exits 2 with a clear message on a bad flag."""
    parser = build_parser()
    args = parser.parse_args(list(argv))
    values: dict[str, object] = {}
    for flag, env, parse, name in _OLLAMA_SETTINGS:
        flag_value = getattr(args, flag[2:].replace("-", "_"))
        if flag_value is not None:
            try:
                values[name] = parse(flag_value)
            except ConfigError as exc:
                parser.error(f"{flag}: {exc}")
        elif environ.get(env, "").strip():
            try:
                values[name] = parse(environ[env])
            except ConfigError as exc:
                print(f"ollama-emulator: warning: ignoring {env}: {exc}", file=sys.stderr)
    if "host" in values:
        values["host"], values["port"] = values.pop("host")  # type: ignore[misc]
    for key in ("num_parallel", "max_loaded_models", "context_length"):
        if values.get(key) == 0:  # 0 means "auto" in Ollama
            values.pop(key)
    try:
        values["speed"] = _speed(args.speed)
        values["tune"] = dict(_tune(t) for t in args.tune)
        values["seed"] = int(args.seed)
        values["prompt_cache"] = _switch(args.prompt_cache)
    except ConfigError as exc:
        parser.error(str(exc))
    except ValueError:
        parser.error(f"--seed must be an integer, got {args.seed!r}")
    return Config(
        preset=args.preset,
        preset_file=args.preset_file,
        models=args.models,
        version=args.version,
        faults=args.faults,
        trace_file=args.trace_file,
        openai_legacy_stream=args.openai_legacy_stream,
        **values,  # type: ignore[arg-type]
    )
