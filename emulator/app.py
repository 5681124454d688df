"""The emulator assembled: routes, the host-header guard, faults, the admin endpoints, the trace.

Routing follows Gin with ``HandleMethodNotAllowed``: an unknown path is ``404 page not found``, a known
path with the wrong method ``405 method not allowed``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from functools import lru_cache
from typing import Any, Final

from emulator import native_api, openai_api, pull
from emulator.catalog import load_catalog
from emulator.clock import monotonic
from emulator.config import Config, ConfigError, is_loopback_bind
from emulator.exchange import Exchange
from emulator.faults import Fault, FaultInjector
from emulator.gcpacer import pace_gc
from emulator.httpserver import Connection, HttpServer, Request
from emulator.inference import CONTEXT_CANCELED
from emulator.preset_file import load_preset_file
from emulator.presets import get_preset
from emulator.scheduler import BUSY_MESSAGE, Scheduler, SchedulerBusy
from emulator.tracing import TraceWriter
from emulator.validation import ApiError, decode_body

Route = Callable[["App", Exchange], Awaitable[None]]
TEXT_TYPE: Final = "text/plain; charset=utf-8"


async def _state(app: App, ex: Exchange) -> None:
    """``GET /_emulator/state``: what Ollama does not show — slots, waiters, the pending queue, loads."""
    models = {}
    for m in app.catalog.models:
        runner = app.scheduler.runners.get(m.name)
        entry: dict[str, Any] = {
            "loaded": runner is not None and not runner.loading and not runner.unloading,
            "loading": runner is not None and runner.loading,
            "busy_slots": runner.slots.busy if runner else 0,
            "waiting": runner.slots.waiting if runner else 0,
            "pending": app.scheduler.pending_for(m.name),
            "loads": app.scheduler.load_counts[m.name],
        }
        if runner is not None:
            entry.update(
                num_parallel=runner.num_parallel,
                context_length=runner.options.num_ctx,
                ref_count=runner.ref_count,
                generating=runner.engine.sequences if runner.engine else 0,
                steps=runner.engine.steps if runner.engine else 0,
            )
        models[m.name] = entry
    ex.send_json(
        {
            "models": models,
            "pending": app.scheduler.pending,
            "listening": app.server.listening if app.server else False,
            "preset": {"name": app.config.preset_file or app.config.preset, **asdict(app.preset)},
            "speed": app.config.speed,
        }
    )


async def _faults(app: App, ex: Exchange) -> None:
    """``GET /_emulator/faults`` lists the faults; ``POST`` replaces them.

    The body is ``{"spec": "SPEC"}`` or ``{"faults": [...]}``.
    """
    if ex.req.method == "POST":
        body = decode_body(ex.req.body, "FaultsRequest")
        spec = body.get("faults", body.get("spec", ""))
        try:
            app.faults.replace(spec)
        except ConfigError as exc:
            raise ApiError(400, str(exc)) from None
    ex.send_json({"faults": [f.public() for f in app.faults.faults]})


async def _refuse(app: App, ex: Exchange) -> None:
    """``POST /_emulator/refuse {"seconds": S}``: close the listening socket, reopen it S seconds later."""
    body = decode_body(ex.req.body, "RefuseRequest")
    seconds = body.get("seconds")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        raise ApiError(400, "seconds must be a number >= 0")
    ex.send_json({"refusing_for": seconds})
    app.spawn(app.server.refuse_for(seconds))  # type: ignore[union-attr]


# path -> {method: handler}; "OPENAI" paths answer errors in OpenAI's shape
ROUTES: Final[dict[str, dict[str, Route]]] = {
    "/": {"GET": native_api.root, "HEAD": native_api.root},
    "/api/version": {"GET": native_api.version, "HEAD": native_api.version},
    "/api/tags": {"GET": native_api.tags, "HEAD": native_api.tags},
    "/api/ps": {"GET": native_api.ps},
    "/api/show": {"POST": native_api.show},
    "/api/pull": {"POST": pull.pull},
    "/api/generate": {"POST": native_api.generate_route},
    "/api/chat": {"POST": native_api.chat_route},
    "/api/embed": {"POST": native_api.embed},
    "/api/embeddings": {"POST": native_api.embeddings_legacy},
    "/v1/chat/completions": {"POST": openai_api.chat_completions},
    "/v1/completions": {"POST": openai_api.completions},
    "/v1/embeddings": {"POST": openai_api.embeddings},
    "/v1/models": {"GET": openai_api.list_models},
    "/_emulator/state": {"GET": _state},
    "/_emulator/faults": {"GET": _faults, "POST": _faults},
    "/_emulator/refuse": {"POST": _refuse},
}
_MODEL_ROUTE: Final[dict[str, Route]] = {"GET": openai_api.retrieve_model}  # /v1/models/{model}


def _routes_for(path: str) -> dict[str, Route] | None:
    if path.startswith("/v1/models/") and len(path) > len("/v1/models/"):
        return _MODEL_ROUTE
    return ROUTES.get(path)


class App:
    """Everything one emulator process runs."""

    def __init__(self, config: Config) -> None:
        """Build from ``config``; raises ``ConfigError`` for a bad preset, catalog or fault spec."""
        self.config = config
        base = load_preset_file(config.preset_file)[1] if config.preset_file else None
        self.preset = get_preset(config.preset, dict(config.tune), base)
        self.catalog = load_catalog(config.models)
        self.faults = FaultInjector(config.faults, config.seed)
        self.rng = random.Random(config.seed)
        self._scheduler: Scheduler | None = None  # made by start(): it needs the running event loop
        self.tracer: TraceWriter | None = None
        self.server: HttpServer | None = None
        self._guard = is_loopback_bind(config.host)
        self._hostname = socket.gethostname().lower()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start the scheduler, the trace and the listener (``self.server.port`` is then the real port)."""
        self._scheduler = Scheduler(self.config, self.preset)
        if self.config.trace_file:
            self.tracer = TraceWriter(self.config.trace_file)
        self.server = HttpServer(self.handle, self.config.host, self.config.port)
        await self.server.start()
        self.spawn(pace_gc())

    @property
    def scheduler(self) -> Scheduler:
        """The scheduler, once ``start`` has run (requests are served only after it)."""
        if self._scheduler is None:
            raise RuntimeError("the emulator has not started")
        return self._scheduler

    def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self.server is not None:
            self.server.close()
        if self.tracer is not None:
            self.tracer.close()

    def spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def handle(self, req: Request, conn: Connection) -> None:
        """Serve one request: guard, route, fault, handler, error shapes, trace line."""
        if self._guard and not allowed_host(req.headers.get("host", ""), self._hostname):
            conn.send(403, b"", "")
            return
        if self._guard and req.method == "OPTIONS":
            conn.send(204, b"", "")
            return
        routes = _routes_for(req.path)
        if routes is None:
            conn.send(404, b"404 page not found", TEXT_TYPE)
            return
        route = routes.get(req.method)
        if route is None:
            conn.send(405, b"405 method not allowed", TEXT_TYPE, headers=(("Allow", ", ".join(routes)),))
            return
        admin = req.path.startswith("/_emulator/")
        fault = None if admin else self.faults.pick(req.path)
        ex = Exchange(req, conn, fault, openai=req.path.startswith("/v1/"))
        try:
            if fault is not None and await self._fault_first(fault, ex):
                return
            await route(self, ex)
        except ApiError as exc:
            ex.send_error(exc.status, exc.message)
        except SchedulerBusy:
            ex.send_error(503, BUSY_MESSAGE)
        except asyncio.CancelledError:  # the client went away; record what Ollama's log would show
            ex.status = ex.status or (500 if ex.stamps.cancelled == CONTEXT_CANCELED else 499)
            raise
        finally:
            if self.tracer is not None and not admin:
                self.tracer.record(ex.trace())

    async def _fault_first(self, fault: Fault, ex: Exchange) -> bool:
        """Faults that act before the handler; True when the request is answered."""
        if fault.kind == "slow_first_byte":  # a stall before the handler: outside Ollama's timers
            await asyncio.sleep(fault.seconds)
            ex.stamps.t_start = monotonic()
        elif fault.kind == "http_500":
            ex.send_error(500, fault.message)
            return True
        elif fault.kind == "http_503":
            ex.send_error(503, BUSY_MESSAGE)
            return True
        elif fault.kind == "reset" and fault.after == 0:
            ex.conn.abort()
            return True
        return False


@lru_cache(maxsize=1024)
def allowed_host(host_header: str, hostname: str) -> bool:
    """Ollama's ``allowedHostsMiddleware`` for a loopback bind (cached: clients repeat their Host)."""
    host = host_header
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    host = host.lower()
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        if ip.is_loopback or ip.is_private or ip.is_unspecified:
            return True
    if host in ("", "localhost", hostname):
        return True
    return host.endswith((".localhost", ".local", ".internal"))


async def serve(config: Config, ready: Callable[[str], None], stop: asyncio.Event) -> None:
    """Run until ``stop`` is set; ``ready`` gets the URL once listening."""
    app = App(config)
    await app.start()
    host = config.host or "0.0.0.0"
    shown = f"[{host}]" if ":" in host else host
    ready(f"http://{shown}:{app.server.port}")  # type: ignore[union-attr]
    try:
        await stop.wait()
    finally:
        app.stop()
