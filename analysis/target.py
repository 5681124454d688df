"""What a run measured: each host from run.json, as an embedded emulator, an embedded server or an
external one, with the server version it reported and the clock that timed its first tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysis.schema import LLAMACPP_UNKNOWN_BUILD, FirstTokenClock


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    url: str
    kind: str  # "emulator", "embedded llamacpp", "external", "unknown"
    server: str  # as detected: ollama, llamacpp, openai-compatible; empty when unknown
    version: str  # empty when unknown
    api: str
    first_token_clock: str = ""  # FirstTokenClock; empty in runs recorded before run.json said

    @property
    def is_emulator(self) -> bool:
        return self.kind == "emulator"

    @property
    def is_ollama(self) -> bool:
        return self.server == "ollama" or self.is_emulator or (not self.server and self.api == "ollama")

    def describe(self) -> str:
        return self._what() + self._clock_note()

    def _what(self) -> str:
        server = " ".join(p for p in (self.server, self.version) if p) or "server type unknown"
        where = f" at {self.url}" if self.url else ""
        if self.is_emulator:
            return (f"{self.name}: the embedded Ollama emulator{where} - a what-if from its throughput model, "
                    "not a measurement of hardware")
        if self.kind == "embedded llamacpp":
            engine = self.version or "version unknown"
            return f"{self.name}: an embedded llama.cpp server ({engine}){where}, a real engine started by the run"
        return f"{self.name}: {server}{where}"

    def _clock_note(self) -> str:
        if self.first_token_clock != FirstTokenClock.CLIENT_READ:
            return ""
        return ("; its first tokens were timed when the client read them (TLS, or no kernel receive time on "
                "the client's system), so a busy client makes its TTFT look longer")


def targets(info: dict[str, Any]) -> list[Target]:
    """The hosts run.json lists, in order; empty when it lists none."""
    out = []
    for host in info.get("hosts") or []:
        if not isinstance(host, dict):
            continue
        embedded = str(host.get("embedded") or "")
        kind = {"emulator": "emulator", "llamacpp": "embedded llamacpp"}.get(embedded, "external")
        version = str(host.get("version") or "")
        out.append(Target(str(host.get("name", "?")), str(host.get("url", "")), kind, str(host.get("server", "")),
                          "" if version == LLAMACPP_UNKNOWN_BUILD else version, str(host.get("api", "")),
                          str(host.get("first_token_clock") or "")))
    return out
