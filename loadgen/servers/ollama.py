"""The user's own Ollama, started by the run: ``ollama serve`` on a free loopback port, with the host's
settings as Ollama's environment variables and the user's model store.

Before the run measures anything the server must answer ``/api/version``, hold every model the
scenario asks of it (``/api/tags``; pulled only with ``pull: true``) and have loaded each once, so
the first requests do not pay for the load. Any failure is one line naming what to do. The process
group is stopped at the run's end; an Ollama already running elsewhere (say on 11434) is never
touched, since ours gets its own port through ``OLLAMA_HOST``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any, Final

import gevent

from analysis.schema import HostInfo
from emulator.catalog import normalize_name
from loadgen.scenario.hosts import OllamaHost
from loadgen.servers.llamacpp import free_port
from loadgen.servers.process import EmbeddedServerError, ServerProcess
from loadgen.wire.probe import HostUnreachable, get_json

log = logging.getLogger(__name__)

DOWNLOAD: Final = "https://ollama.com/download"
DEFAULT_STORE: Final = "~/.ollama/models"
READY_POLL_S: Final = 0.25
LOAD_TIMEOUT_S: Final = 900.0  # one model load; Ollama's own stall timeout (OLLAMA_LOAD_TIMEOUT) is 5 min
PULL_TIMEOUT_S: Final = 6 * 3600.0  # a pull is a download of gigabytes; each progress line resets urllib's timeout


def resolve_binary(binary: str | None) -> str:
    """The ``ollama`` executable to start: ``binary`` (a path, or a name on PATH), else ``ollama`` on
    PATH. Raises ``EmbeddedServerError`` with what to do when there is none."""
    if binary is None:
        found = shutil.which("ollama")
        if found is None:
            raise EmbeddedServerError(f"`ollama` is not on PATH: install Ollama ({DOWNLOAD}) or set settings.binary "
                                      "to its path")
        return found
    found = shutil.which(os.path.expanduser(binary))
    if found is None:
        why = "is not executable" if os.path.exists(os.path.expanduser(binary)) else "does not exist"
        raise EmbeddedServerError(f"settings.binary {binary!r} {why}: give the path of the ollama executable")
    return found


def model_key(name: str) -> str:
    """Ollama's match key for a model name: ``llama3.2`` and ``registry.ollama.ai/library/llama3.2:latest``
    are both ``llama3.2:latest`` (the emulator's catalog matches names the same way)."""
    return normalize_name(name).lower()


class OllamaServer:
    """One ``ollama serve`` process the run owns."""

    def __init__(self, host: OllamaHost, models: Sequence[str]) -> None:
        self.name = host.name
        self.settings = host.settings
        self.models = tuple(dict.fromkeys(models))
        self.binary = resolve_binary(host.settings.binary)
        self.environment = host.settings.environment()  # what the run sets, besides OLLAMA_HOST
        self.process: ServerProcess | None = None
        self.url: str | None = None

    @property
    def launch(self) -> tuple[object, ...]:
        """What decides whether a later run can reuse this process."""
        return (self.binary, sorted(self.environment.items()), self.models, self.settings.pull)

    @property
    def log_path(self) -> str | None:
        return self.process.log_path if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    def start(self) -> str:
        """Start ``ollama serve``, wait until it answers, check (or pull) and load the models; its URL.
        Raises ``EmbeddedServerError`` (the process stopped) when any step fails."""
        address = f"127.0.0.1:{free_port('127.0.0.1')}"
        environment = {**os.environ, **self.environment, "OLLAMA_HOST": address}
        self.process = ServerProcess(self.name, [self.binary, "serve"], environment)
        self.process.spawn(read_stdout=False)
        self.url = f"http://{address}"
        try:
            self._wait_ready(self.url)
            self._check_models(self.url)
            self._warm_up(self.url)
        except BaseException:
            self.stop()
            raise
        log.info("ollama %s listening on %s with %s (log: %s)", self.name, self.url,
                 " ".join(f"{k}={v}" for k, v in self.environment.items()) or "Ollama's defaults", self.log_path)
        return self.url

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def info(self) -> HostInfo:
        """What run.json records of this server beside the probe's version: binary and environment."""
        assert self.url is not None
        return HostInfo(binary=self.binary, environment={**self.environment, "OLLAMA_HOST": self.url.split("//")[1]},
                        models_dir=self._store())

    def _store(self) -> str:
        return self.environment.get("OLLAMA_MODELS") or os.environ.get("OLLAMA_MODELS") or DEFAULT_STORE

    def _fail(self, message: str) -> EmbeddedServerError:
        assert self.process is not None
        return EmbeddedServerError(f"{self.name}: {message}; its log ends: {self.process.tail(3)}")

    def _wait_ready(self, url: str) -> None:
        assert self.process is not None and self.process.proc is not None
        deadline = time.monotonic() + self.settings.start_timeout
        while True:
            code = self.process.proc.poll()
            if code is not None:
                raise self._fail(f"`{self.binary} serve` exited with code {code} before it answered")
            try:
                version = get_json(f"{url}/api/version", timeout=2.0)
            except HostUnreachable:
                version = None
            if isinstance(version, dict) and "version" in version:
                return
            if time.monotonic() > deadline:
                raise self._fail(f"`{self.binary} serve` did not answer {url}/api/version within "
                                 f"{self.settings.start_timeout:g} s (settings.start_timeout)")
            gevent.sleep(READY_POLL_S)

    def _check_models(self, url: str) -> None:
        tags = get_json(f"{url}/api/tags")
        entries = tags.get("models", []) if isinstance(tags, dict) else []
        have = {model_key(str(entry.get(key, ""))) for entry in entries for key in ("name", "model")}
        missing = [model for model in self.models if model_key(model) not in have]
        if missing and not self.settings.pull:
            pulls = " && ".join(f"ollama pull {model}" for model in missing)
            raise EmbeddedServerError(f"{self.name}: {', '.join(missing)} not in the model store {self._store()}: "
                                      f"run `{pulls}` (or set settings.pull: true)")
        for model in missing:
            self._pull(url, model)

    def _pull(self, url: str, model: str) -> None:
        log.info("ollama %s: pulling %s", self.name, model)
        shown = ""
        for update in _post_stream(f"{url}/api/pull", {"model": model}, PULL_TIMEOUT_S):
            if "error" in update:
                raise EmbeddedServerError(f"{self.name}: `ollama pull {model}` failed: {update['error']}")
            status = str(update.get("status", ""))
            if status != shown:
                shown = status
                log.info("ollama %s: %s: %s", self.name, model, status)

    def _warm_up(self, url: str) -> None:
        """Load each model once (an empty generate request; an embedding model takes an embed request)."""
        for model in self.models:
            started = time.monotonic()
            try:
                _post(f"{url}/api/generate", {"model": model}, LOAD_TIMEOUT_S)
            except _RequestRefused as refused:
                if "does not support generate" not in refused.error:
                    raise EmbeddedServerError(f"{self.name}: could not load {model}: {refused.error}") from None
                try:
                    _post(f"{url}/api/embed", {"model": model, "input": "warm-up"}, LOAD_TIMEOUT_S)
                except _RequestRefused as again:
                    raise EmbeddedServerError(f"{self.name}: could not load {model}: {again.error}") from None
            log.info("ollama %s: %s loaded in %.1f s (warm-up, not measured)", self.name, model,
                     time.monotonic() - started)


class _RequestRefused(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def _open(url: str, body: dict[str, Any], timeout: float) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        text = e.read().decode("utf-8", "replace")
        try:
            error = str(json.loads(text).get("error", text))
        except (ValueError, AttributeError):
            error = text.strip() or f"HTTP {e.code}"
        raise _RequestRefused(error) from None
    except (urllib.error.URLError, OSError) as e:
        raise EmbeddedServerError(f"{url} stopped answering: {getattr(e, 'reason', e)}") from None


def _post(url: str, body: dict[str, Any], timeout: float) -> None:
    with _open(url, {**body, "stream": False}, timeout) as response:
        response.read()


def _post_stream(url: str, body: dict[str, Any], timeout: float) -> Iterator[dict[str, Any]]:
    """The NDJSON lines of a streamed answer; an HTTP error comes as one ``{"error": ...}`` line."""
    try:
        response = _open(url, body, timeout)
    except _RequestRefused as refused:
        yield {"error": refused.error}
        return
    with response:
        for line in response:
            if line.strip():
                yield json.loads(line)
