"""Capacity benchmark: can the emulator hold thousands of concurrent streams on time?

Starts the emulator as a subprocess with enough slots for every stream, then drives it from separate
client processes (asyncio raw-socket clients, closed loop: each connection streams one ``/api/generate``
after another) at several concurrency levels. For each level it reports:

- chunks/s received by the clients, and the emulator's CPU% over the measurement window;
- decode timing error: the emulator's measured ``eval_duration`` against the modelled decode time
  (from ``--trace-file``), and the same for ``prompt_eval_duration`` against the modelled prefill;
- client e2e error: the client-observed stream duration against the reported ``total_duration``;
- first-chunk lag: client receipt of the first token chunk minus the emulator's write of it.

Usage: ``python benchmarks/emulator_capacity.py [--levels 500,1000,2000] [--duration 20]``
Prints a Markdown table. Loopback only; every loop is bounded by ``--duration``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import re
import socket
import tempfile
import time
import urllib.request
from pathlib import Path

import harness


def peak_rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]


# --- client processes ---------------------------------------------------------------------------------
class StreamClient(asyncio.Protocol):
    """One keep-alive connection streaming ``/api/generate`` requests back to back (closed loop).

    A protocol, not asyncio streams: the client reads ~8k chunks/s per process, and a coroutine
    wake-up per chunk would make the instrument, not the emulator, the bottleneck.
    """

    def __init__(self, name: str, tokens: int, stop_at: float, window, out: list, counter: list, done) -> None:
        self.name, self.tokens, self.stop_at, self.window = name, tokens, stop_at, window
        self.out, self.counter, self.done = out, counter, done
        self.rng = random.Random(name)
        self.n = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._send()

    def _send(self) -> None:
        if time.time() >= self.stop_at:
            self.transport.close()  # type: ignore[union-attr]
            return
        self.rid = f"{self.name}-{self.n}"
        self.n += 1
        num_predict = self.rng.randint(self.tokens * 3 // 4, self.tokens * 5 // 4)  # streams drift apart
        body = json.dumps({"model": "llama3.2", "prompt": f"benchmark {self.rid}: tell me about queues",
                           "raw": True, "options": {"num_predict": num_predict}}).encode()  # fmt: skip
        head = (f"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: {self.rid}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
        self.t_send = time.time()
        self.t_first: float | None = None
        self.tail = b""
        self.transport.write(head + body)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        now = time.time()
        got = data.count(b'"done":false')
        if got and self.t_first is None:
            self.t_first = now
        if self.window[0] <= now <= self.window[1]:
            self.counter[0] += got
        self.tail = (self.tail + data)[-8192:]
        if self.tail.endswith(b"0\r\n\r\n"):
            final = json.loads(self.tail[self.tail.rfind(b'{"model"') :].split(b"\n")[0])
            self.out.append([self.rid, self.t_send, self.t_first, now, final.get("total_duration", 0) / 1e9])
            self._send()

    def connection_lost(self, exc) -> None:  # type: ignore[override]
        if not self.done.done():
            self.done.set_result(None)


def client_process(proc_idx: int, conns: int, port: int, tokens: int, start_at: float, stop_at: float,
                   window: tuple[float, float], result_path: str) -> None:  # fmt: skip
    out: list[list] = []
    counter = [0]

    async def one(i: int) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, start_at + i / conns - time.time()))  # open them over a second
        done = loop.create_future()
        name = f"{proc_idx}.{i}"
        await loop.create_connection(lambda: StreamClient(name, tokens, stop_at, window, out, counter, done),
                                     "127.0.0.1", port)  # fmt: skip
        await done

    async def main() -> None:
        await asyncio.gather(*(one(i) for i in range(conns)), return_exceptions=True)

    asyncio.run(main())
    Path(result_path).write_text(json.dumps({"records": out, "chunks": counter[0]}))


# --- one level -----------------------------------------------------------------------------------------
def run_level(streams: int, args: argparse.Namespace) -> dict:
    trace = tempfile.NamedTemporaryFile(prefix="emulator-trace-", suffix=".jsonl", delete=False).name
    server = harness.start_emulator(
        "--preset", "fast", "--num-parallel", str(streams), "--trace-file", trace, "--seed", "1",
        "--tune", f"solo_tps={args.tps}", "--tune", "contention=0", "--tune", "prefill_tps=20000",
        "--tune", "jitter=0.02",
    )  # fmt: skip
    emu, port = server.proc, server.port
    try:
        load = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/generate", b'{"model":"llama3.2","prompt":""}', 30)
        assert b'"load"' in load.read()
        start_at = time.time() + 1.0
        window = (start_at + args.warmup, start_at + args.duration)
        stop_at = window[1]
        procs, paths = [], []
        per = [streams // args.clients + (i < streams % args.clients) for i in range(args.clients)]
        for i, conns in enumerate(per):
            path = tempfile.NamedTemporaryFile(prefix="emulator-client-", suffix=".json", delete=False).name
            p = mp.Process(target=client_process, args=(i, conns, port, args.tokens, start_at, stop_at, window, path))
            p.start()
            procs.append(p)
            paths.append(path)
        time.sleep(max(0.0, window[0] - time.time()))
        with harness.cpu_window([emu.pid]) as cpu:
            time.sleep(max(0.0, window[1] - time.time()))
        peak_rss_mb = peak_rss_kb(emu.pid) / 1024
        for p in procs:
            p.join(args.duration + args.tokens / args.tps + 60)
            if p.is_alive():
                p.kill()
    finally:
        server.stop()
    results = [json.loads(Path(p).read_text()) for p in paths if Path(p).stat().st_size]
    records = [r for res in results for r in res["records"]]
    chunks = sum(res["chunks"] for res in results)
    trace_rows = {}
    for line in Path(trace).read_text().splitlines():
        row = json.loads(line)
        trace_rows[row["request_id"]] = row
    in_window = [r for r in records if r[1] >= window[0] and r[3] <= window[1]]
    decode_err, prefill_err, e2e_err, lag_ms = [], [], [], []
    for rid, t_send, t_first, t_end, total_s in in_window:
        row = trace_rows.get(rid)
        if row is None or not row.get("model_decode_s"):
            continue
        decode_err.append(abs(row["eval_s"] - row["model_decode_s"]) / row["model_decode_s"] * 100)
        prefill_err.append(abs(row["prompt_eval_s"] - row["model_prefill_s"]) / row["model_prefill_s"] * 100)
        e2e_err.append(abs((t_end - t_send) - total_s) / total_s * 100)
        if t_first is not None and row.get("first_chunk"):
            lag_ms.append((t_first - row["first_chunk"]) * 1000)
    if args.keep_trace:
        os.replace(trace, f"{args.keep_trace}.{streams}.jsonl")
    for path in [trace, *paths]:
        if os.path.exists(path):
            os.unlink(path)
    return {
        "streams": streams,
        "requests": len(in_window),
        "chunks_s": chunks / (window[1] - window[0]),
        "cpu": cpu[emu.pid],
        "rss": peak_rss_mb,
        "decode": (harness.pct(decode_err, 50), harness.pct(decode_err, 99)),
        "prefill": (harness.pct(prefill_err, 50), harness.pct(prefill_err, 99)),
        "e2e": (harness.pct(e2e_err, 50), harness.pct(e2e_err, 99)),
        "lag": (harness.pct(lag_ms, 50), harness.pct(lag_ms, 99)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="500,1000,2000", help="concurrent streams per run (comma list)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per level")
    parser.add_argument("--warmup", type=float, default=6.0, help="seconds before the measurement window")
    parser.add_argument("--tokens", type=int, default=40, help="mean num_predict (each request: +-25%%, seeded)")
    parser.add_argument("--tps", type=float, default=10.0, help="solo decode tok/s of each stream")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--keep-trace", default="", help="keep each level's trace as PREFIX.<streams>.jsonl")
    args = parser.parse_args()
    rows = [run_level(int(level), args) for level in args.levels.split(",")]
    window = args.duration - args.warmup
    print(
        f"\nfast preset tuned: {args.tps:g} tok/s per stream, no contention, prefill 20000 tok/s, jitter 2%; "
        f"{args.tokens} +-25% tokens a request; {args.clients} client processes; window {window:g} s\n"
    )
    print(
        "| concurrent streams | requests in window | chunks/s | emulator CPU% | emulator peak RSS "
        "| decode error p50 / p99 | prefill error p50 / p99 | client e2e vs total_duration p50 / p99 "
        "| first-chunk lag p50 / p99 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['streams']} | {r['requests']} | {r['chunks_s']:.0f} | {r['cpu']:.0f}% | {r['rss']:.0f} MiB | "
            f"{r['decode'][0]:.2f}% / {r['decode'][1]:.2f}% | {r['prefill'][0]:.2f}% / {r['prefill'][1]:.2f}% | "
            f"{r['e2e'][0]:.2f}% / {r['e2e'][1]:.2f}% | {r['lag'][0]:.1f} ms / {r['lag'][1]:.1f} ms |"
        )


if __name__ == "__main__":
    main()
