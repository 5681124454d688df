"""What a run measured: each host from run.json, as an embedded emulator, an embedded server or an
external one, with the server version it reported."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    url: str
    kind: str  # "emulator", "embedded llamacpp", "external", "unknown"
    server: str  # as detected: ollama, llamacpp, openai-compatible; empty when unknown
    version: str
    api: str

    @property
    def is_emulator(self) -> bool:
        return self.kind == "emulator"

    @property
    def is_ollama(self) -> bool:
        return self.server == "ollama" or self.is_emulator or (not self.server and self.api == "ollama")

    def describe(self) -> str:
        server = " ".join(p for p in (self.server, self.version) if p) or "server type unknown"
        where = f" at {self.url}" if self.url else ""
        if self.is_emulator:
            return (f"{self.name}: the embedded Ollama emulator{where} - a what-if from its throughput model, "
                    "not a measurement of hardware")
        if self.kind == "embedded llamacpp":
            return f"{self.name}: an embedded llama.cpp server ({server}){where}, a real engine started by the run"
        return f"{self.name}: {server}{where}"


def targets(info: dict[str, Any]) -> list[Target]:
    """The hosts run.json lists, in order; empty when it lists none."""
    out = []
    for host in info.get("hosts") or []:
        if not isinstance(host, dict):
            continue
        embedded = str(host.get("embedded") or "")
        kind = {"emulator": "emulator", "llamacpp": "embedded llamacpp"}.get(embedded, "external")
        out.append(Target(str(host.get("name", "?")), str(host.get("url", "")), kind, str(host.get("server", "")),
                          str(host.get("version", "")), str(host.get("api", ""))))
    return out
