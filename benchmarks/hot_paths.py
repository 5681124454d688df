"""The load generator's hot paths one at a time, in microseconds per item, in this process.

Per streamed chunk: reading it from a socket (``StampedSocket``, with gevent's waits, as a worker reads
200 streams; the writes of the other end are counted too), and the line parser (``_protocol``) on SSE
and NDJSON lines, for short and long answers.
Per request record: building it from an exchange (``RequestRecord.to_row``), shipping it to the master
(Locust's msgpack encoding of a ``RecordsMessage`` batch and its decoding), and on the master appending
it to ``requests.csv`` (``RecordStore``) and counting it in the live view (``LiveStats``). Multiply by a
run's chunks/s and requests/s to see what each costs a worker or the master; ``overhead.py`` measures the
whole worker under load.

    .venv/bin/python benchmarks/hot_paths.py [--scale 1.0]
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402 - after patching, as in a Locust worker
import socket  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import timeit  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
import harness  # noqa: E402
import msgpack  # noqa: E402

from analysis.schema import Api, ErrorClass, RequestRecord  # noqa: E402
from loadgen.run.live import LiveStats  # noqa: E402
from loadgen.run.messages import RecordsMessage  # noqa: E402
from loadgen.run.records import RecordStore  # noqa: E402
from loadgen.wire.client import SO_TIMESTAMPNS, StampedSocket  # noqa: E402
from loadgen.wire.protocol import OllamaStream, OpenAIStream  # noqa: E402

SSE = (b'data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1795316368,"model":"llama3.2:latest",'
       b'"system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"content":" much"},"finish_reason":null}]}\n')
NDJSON = (b'{"model":"llama3.2:latest","created_at":"2026-11-22T03:12:23.123456789Z","message":{"role":"assistant",'
          b'"content":" much"},"done":false}\n')  # fmt: skip
BATCH = 100  # records per shipped batch (about one second of a busy worker)


def per_item_us(fn: Callable[[], object], items: int, scale: float) -> float:
    """Best of 5 timings of ``fn`` (which handles ``items`` items), in microseconds per item."""
    number = max(1, round(20_000 * scale / items))
    return min(timeit.repeat(fn, number=number, repeat=5)) / number / items * 1e6


def socket_reads_us(streams: int, rounds: int) -> float:
    """CPU microseconds per chunk: ``streams`` greenlets each read ``rounds`` chunks, sent one round at a
    time once every reader has read the last one, as a server's lockstep decode steps send them."""
    listener = socket.create_server(("127.0.0.1", 0))
    readers, writers = [], []
    for _ in range(streams):
        reader = StampedSocket(socket.AF_INET, socket.SOCK_STREAM)
        reader.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        reader.settimeout(60)
        reader.connect(listener.getsockname())
        readers.append(reader)
        writers.append(listener.accept()[0])
    read_all = [gevent.event.Event() for _ in range(rounds)]
    count = [0]

    def read(sock: StampedSocket) -> None:
        for n in range(rounds):
            sock.recv(4096)
            count[0] += 1
            if count[0] == streams * (n + 1):
                read_all[n].set()

    greenlets = [gevent.spawn(read, r) for r in readers]
    gevent.sleep(0.01)
    started = time.process_time()
    for n in range(rounds):
        for w in writers:
            w.send(SSE)
        read_all[n].wait(60)
    used = time.process_time() - started
    gevent.joinall(greenlets, timeout=60)
    for sock in [*readers, *writers, listener]:
        sock.close()
    return used / (streams * rounds) * 1e6


def parse(stream: type[OpenAIStream] | type[OllamaStream], line: bytes, tokens: int) -> Callable[[], object]:
    separator = b"\n" if stream is OpenAIStream else None

    def run() -> object:
        parser = stream(True)
        for _ in range(tokens):
            parser.feed(line)
            if separator:
                parser.feed(separator)  # SSE: the blank line after every event
        return parser.finish()

    return run


def record(i: int = 0) -> RequestRecord:
    t = 1_795_316_368.123456 + i
    return RequestRecord(run_id="20261122-031200-bench", worker=1, user_id=17, session_id=f"1-17-{i}", step=0,
                         workload="stream", kind="chat", host="emu", api=Api.OPENAI, endpoint="/v1/chat/completions",
                         model="llama3.2:latest", stream=True, t_scheduled=None, t_start=t, t_first_token=t + 0.1031,
                         t_first_thinking=None, t_end=t + 4.0123, status=200, error=ErrorClass.NONE, error_detail="",
                         prompt_tokens=31, cached_tokens=None, output_tokens=40, thinking_tokens=None, tool_calls=0,
                         server_total_s=None, server_load_s=None, server_prompt_eval_s=None, server_eval_s=None,
                         num_predict=40, done_reason="length")  # fmt: skip


def message(rows: list[list[object]]) -> RecordsMessage:
    return RecordsMessage(run_id="20261122-031200-bench", worker=1, rows=rows, sent=len(rows), in_flight=0,
                          final=False, flush_token=0)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="work per timing (0.05 for a smoke run)")
    args = parser.parse_args()
    rows = [["read a chunk from its socket (200 streams)", "chunk",
             min(socket_reads_us(200, max(5, round(100 * args.scale))) for _ in range(3))]]
    for tokens in (40, 2000):
        rows.append([f"parse an SSE chunk (/v1 stream, {tokens}-token answers)", "chunk",
                     per_item_us(parse(OpenAIStream, SSE, tokens), tokens, args.scale)])  # fmt: skip
        rows.append([f"parse an NDJSON chunk (/api stream, {tokens}-token answers)", "chunk",
                     per_item_us(parse(OllamaStream, NDJSON, tokens), tokens, args.scale)])  # fmt: skip
    batch = [record(i).to_row() for i in range(BATCH)]
    packed = msgpack.packb(message(batch))
    rows.append(["build a record and its CSV row (worker)", "record",
                 per_item_us(lambda: [record(i).to_row() for i in range(BATCH)], BATCH, args.scale)])  # fmt: skip
    rows.append(["ship it: msgpack a batch (worker)", "record",
                 per_item_us(lambda: msgpack.packb(message(batch)), BATCH, args.scale)])  # fmt: skip
    rows.append(["receive it: unpack a batch (master)", "record",
                 per_item_us(lambda: msgpack.unpackb(packed), BATCH, args.scale)])  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-hot-") as tmp:
        store = RecordStore(Path(tmp) / "requests.csv", "20261122-031200-bench")
        rows.append(["append it to requests.csv (master)", "record",
                     per_item_us(lambda: store.write_batch(message(batch)), BATCH, args.scale)])  # fmt: skip
        store.close()
    live = LiveStats(1_795_316_368.0)
    rows.append(["count it in the live view (master)", "record", per_item_us(lambda: live.add_rows(batch), BATCH,
                                                                           args.scale)])  # fmt: skip
    print(harness.markdown_table(["hot path", "per", "µs"], [[name, per, f"{us:.2f}"] for name, per, us in rows]))


if __name__ == "__main__":
    main()
