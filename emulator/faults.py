"""Opt-in fault injection, for the suite's reliability tests.

Spec (``--faults`` or ``POST /_emulator/faults {"spec": "..."}``): faults separated by ``,``; each is
``KIND[:KEY=VALUE]...`` with keys ``p`` (probability, default 1), ``every`` (every Nth matching request),
``path`` (only this exact path; default: the inference endpoints), ``after`` (chunks written before a
mid-stream fault, default 1), ``seconds`` (``slow_first_byte`` delay, default 1) and ``message``.
Example: ``reset:p=0.1:after=5,http_503:every=10:path=/api/chat``. The first fault that fires for a
request is the one applied. JSON (a list of objects with the same keys plus ``kind``) is accepted too.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from emulator.config import ConfigError

KINDS: Final = ("reset", "error_line", "truncate", "slow_first_byte", "garbage", "http_500", "http_503")
INFERENCE_PATHS: Final = frozenset(
    {"/api/generate", "/api/chat", "/api/embed", "/api/embeddings", "/v1/chat/completions", "/v1/completions",
     "/v1/embeddings"}
)  # fmt: skip
RUNNER_CRASH: Final = (
    "model runner has unexpectedly stopped, this may be due to resource limitations or an internal error, "
    "check ollama server logs for details"
)
GARBAGE: Final = b"\x00\xffemulator-garbage{not json\n"


@dataclass(slots=True)
class Fault:
    """One fault rule."""

    kind: str
    p: float = 1.0
    every: int = 0
    path: str = ""
    after: int = 1
    seconds: float = 1.0
    message: str = RUNNER_CRASH
    seen: int = field(default=0, repr=False)  # matching requests so far, for ``every``

    def matches(self, path: str) -> bool:
        return path == self.path if self.path else path in INFERENCE_PATHS

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        del data["seen"]
        return data


def parse_spec(spec: str | list[Any]) -> list[Fault]:
    """Faults from a spec string or a JSON list; raises ``ConfigError`` naming the bad part."""
    if isinstance(spec, str) and spec.strip()[:1] in ("[", "{"):
        try:
            spec = json.loads(spec)
        except ValueError as exc:
            raise ConfigError(f"faults: invalid JSON: {exc}") from None
    if isinstance(spec, dict):
        spec = [spec]
    if isinstance(spec, list):
        return [_from_mapping(item) for item in spec]
    return [_from_text(part) for part in spec.split(",") if part.strip()]


def _from_text(text: str) -> Fault:
    kind, *pairs = text.strip().split(":")
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"faults: expected KEY=VALUE in {text!r}, got {pair!r}")
        values[key.strip()] = value.strip()
    return _from_mapping({"kind": kind.strip(), **values})


def _from_mapping(item: Any) -> Fault:
    if not isinstance(item, dict) or item.get("kind") not in KINDS:
        raise ConfigError(f"faults: each fault needs a kind out of {', '.join(KINDS)}; got {item!r}")
    converters = {"p": float, "every": int, "path": str, "after": int, "seconds": float, "message": str}
    values: dict[str, Any] = {"kind": item["kind"]}
    for key, value in item.items():
        if key == "kind":
            continue
        if key not in converters:
            raise ConfigError(f"faults: unknown key {key!r} in {item!r}")
        try:
            values[key] = converters[key](value)
        except ValueError:
            raise ConfigError(f"faults: bad value for {key}: {value!r}") from None
    fault = Fault(**values)
    if not 0 <= fault.p <= 1 or fault.every < 0 or fault.after < 0 or fault.seconds < 0:
        raise ConfigError(f"faults: out of range in {item!r} (0<=p<=1, every/after/seconds >= 0)")
    return fault


class FaultInjector:
    """The active faults; ``pick`` decides, per request, which one (if any) applies."""

    def __init__(self, spec: str, seed: int) -> None:
        self.faults = parse_spec(spec)
        self._rng = random.Random(seed)

    def replace(self, spec: str | list[Any]) -> None:
        """Swap in a new set of faults (counters restart)."""
        self.faults = parse_spec(spec)

    def pick(self, path: str) -> Fault | None:
        """The fault that fires for a request to ``path``, or ``None``."""
        for fault in self.faults:
            if not fault.matches(path):
                continue
            fault.seen += 1
            if fault.every and fault.seen % fault.every:
                continue
            if fault.p >= 1 or self._rng.random() < fault.p:
                return fault
        return None
