"""What a host is before the load starts: Ollama (its version and loaded models), llama.cpp or another
OpenAI-compatible server, or unreachable. Behaviour differs between Ollama versions, so every run
records what it measured."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, Final

from analysis.schema import LLAMACPP_UNKNOWN_BUILD

PROBE_TIMEOUT_S: Final = 5.0


class HostUnreachable(ConnectionError):
    """The host did not answer at all; ``reason`` says why, in the operating system's words."""

    def __init__(self, url: str, reason: object) -> None:
        self.url = url
        self.reason = getattr(reason, "strerror", None) or str(reason)
        super().__init__(f"{url}: {self.reason}")


def get_json(url: str, headers: Mapping[str, str] = {}, timeout: float = PROBE_TIMEOUT_S) -> Any:
    """GET a JSON document; ``None`` for an HTTP error status, ``HostUnreachable`` if nothing answers."""
    request = urllib.request.Request(url, headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError:
        return None
    except (urllib.error.URLError, OSError) as e:
        raise HostUnreachable(url, getattr(e, "reason", e)) from e
    except ValueError:
        return None


def probe(url: str, headers: Mapping[str, str] = {}) -> dict[str, Any]:
    """Identify the server at ``url``: ``server``, ``version`` and, for Ollama, ``ps`` (loaded models)."""
    base = url.rstrip("/")
    version = get_json(f"{base}/api/version", headers)
    if isinstance(version, dict) and "version" in version:
        ps = get_json(f"{base}/api/ps", headers)
        return {"server": "ollama", "version": str(version["version"]),
                "ps": ps.get("models", []) if isinstance(ps, dict) else []}
    props = get_json(f"{base}/props", headers)
    if isinstance(props, dict) and ("total_slots" in props or "build_info" in props):
        return {"server": "llamacpp", "version": llamacpp_version(props.get("build_info")),
                "total_slots": props.get("total_slots")}
    models = get_json(f"{base}/v1/models", headers)
    if isinstance(models, dict) and "data" in models:
        return {"server": "openai-compatible", "version": "",
                "models": [m.get("id") for m in models["data"] if isinstance(m, dict)]}
    return {"server": "unknown", "version": ""}


def llamacpp_version(build_info: object) -> str:
    """llama.cpp's version from its ``/props`` ``build_info`` (``b6123-1a2b3c4d``); empty for a build that
    names none (``b0-unknown``: xllamacpp's wheels, whose version the run records instead)."""
    text = str(build_info or "")
    return "" if text == LLAMACPP_UNKNOWN_BUILD else text
