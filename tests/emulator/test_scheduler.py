"""Scheduler semantics (reference §3) that a wrong implementation would fail: FIFO slots, where each
wait is accounted, loads and keep-alive, the bounded pending queue, reloads, eviction, disconnects.

No assertion rests on the machine being quiet: who waited for whom and when comes from the emulator's
trace and ``/_emulator/state``; a duration is compared with another one measured in the same test, or
held to a floor the emulator cannot undercut (a configured load is a sleep: never shorter). Where a test
needs something to last while it looks, the thing lasts a second or more, or until the test ends it.
"""

from __future__ import annotations

import json
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import pairwise
from typing import Any

import httpx
import pytest

from tests.emulator.conftest import HTTP, TRACE_EPS_S, EmulatorFactory, TracedEmulator, ndjson
from tests.helpers import poll

pytestmark = pytest.mark.integration

#: a generation that holds its slot until its client leaves (1000 s at ``slow()``'s 100 tok/s)
HOLD_TOKENS = 100_000
BUSY = "server busy, please try again.  maximum pending requests exceeded"

#: wait for a state of the emulator: looked for often enough to catch one that lasts a fraction of a second,
#: given up on after seconds (a state it reaches at all, it reaches in milliseconds)
until = partial(poll, timeout=10, interval=0.01)


def slow(*tune: str) -> dict[str, Any]:
    """Emulator flags: the fast preset made slow enough to observe (100 tok/s solo, no contention), its answers
    ended by ``num_predict`` alone (not by its natural 64-256 tokens), with more ``--tune`` settings."""
    return {"preset": "fast", "tune": ["solo_tps=100", "contention=0", "min_output=1000000", "max_output=1000000",
                                       *tune]}  # fmt: skip


def post_generate(url: str, prompt: str = "hi", n: int = 10, model: str = "llama3.2", **extra: Any) -> httpx.Response:
    """A non-streamed ``/api/generate`` of ``n`` tokens; its prompt is also its ``X-Request-Id`` in the trace."""
    body = {"model": model, "prompt": prompt, "stream": False, "options": {"num_predict": n}, **extra}
    return HTTP.post(url + "/api/generate", json=body, headers={"X-Request-Id": prompt})


def gen(url: str, prompt: str = "hi", n: int = 10, model: str = "llama3.2", **extra: Any) -> dict[str, Any]:
    """``post_generate``'s answer."""
    return post_generate(url, prompt, n, model, **extra).json()


def state(url: str, model: str = "llama3.2:latest") -> dict[str, Any]:
    """``/_emulator/state`` for one model."""
    return HTTP.get(url + "/_emulator/state").json()["models"][model]


def pending(url: str) -> int:
    """Requests in the scheduler's pending queue."""
    return HTTP.get(url + "/_emulator/state").json()["pending"]


def loaded_models(url: str) -> list[dict[str, Any]]:
    """``/api/ps``: the loaded models."""
    return HTTP.get(url + "/api/ps").json()["models"]


def gap_s(r: dict[str, Any]) -> float:
    """The slot wait as a client can compute it: total - load - prompt_eval - eval, in seconds."""
    accounted = r["load_duration"] + r.get("prompt_eval_duration", 0) + r.get("eval_duration", 0)
    return (r["total_duration"] - accounted) / 1e9


def open_stream(port: int, prompt: str, n: int | None = None) -> socket.socket:
    """A streamed ``/api/generate`` on a raw socket (closing it is the client leaving); ``n`` tokens, or the
    model's own length. The prompt is its ``X-Request-Id``."""
    body = {"model": "llama3.2", "prompt": prompt} | ({"options": {"num_predict": n}} if n is not None else {})
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"X-Request-Id: %s\r\nContent-Length: %d\r\n\r\n%s" % (prompt.encode(), len(data), data))  # fmt: skip
    return sock


def hold_slot(port: int, prompt: str) -> socket.socket:
    """A stream that has its slot and is generating, and keeps it until the socket is closed."""
    sock = open_stream(port, prompt, HOLD_TOKENS)
    assert b'"done":false' in sock.recv(4096)
    return sock


def test_waiters_get_the_slot_in_arrival_order(traced_emulator: TracedEmulator) -> None:
    emu, trace = traced_emulator(**slow())
    gen(emu.url, n=1)  # load
    waiters = ["b", "c", "d", "e", "f"]
    holder = hold_slot(emu.port, "holder")  # the slot stays taken however long the queue takes to form
    with ThreadPoolExecutor(len(waiters)) as pool:
        futures = []
        for name in waiters:
            futures.append(pool.submit(gen, emu.url, name, 2))
            until(lambda: state(emu.url)["waiting"] == len(futures), f"{name} queued for the slot")
        assert state(emu.url)["busy_slots"] == 1
        holder.close()  # the slot is free: the waiters take it one after another
        assert all(f.result()["done"] for f in futures)
    rows = trace.rows(*waiters)
    assert [r["request_id"] for r in sorted(rows, key=lambda r: r["slot_acquired"])] == waiters
    assert max(r["received"] for r in rows) < rows[0]["slot_acquired"]  # all were queued before the first got it
    for earlier, later in pairwise(rows):
        assert later["slot_acquired"] >= earlier["last_token"]  # each waited for the one before it to finish


def test_slot_wait_is_only_in_total_duration(traced_emulator: TracedEmulator) -> None:
    emu, trace = traced_emulator(**slow())
    gen(emu.url, n=1)
    with ThreadPoolExecutor(2) as pool:
        first_future = pool.submit(gen, emu.url, "long", 100)  # a second of decoding: "short" arrives during it
        until(lambda: state(emu.url)["busy_slots"] == 1, "the long request decoding")
        second = pool.submit(gen, emu.url, "short", 5).result()
        first = first_future.result()
    long_row, short_row = trace.rows("long", "short")
    # it arrived while the first decoded, and got the slot when the first had its last token...
    assert short_row["received"] < long_row["last_token"] <= short_row["slot_acquired"]
    # ...having had the loaded model all along: its wait was for the slot, and load_duration does not hold it
    assert short_row["runner_acquired"] < long_row["last_token"]
    runner_wait_s = short_row["runner_acquired"] - short_row["handler_start"]
    assert second["load_duration"] / 1e9 == pytest.approx(runner_wait_s, abs=TRACE_EPS_S)
    assert short_row["prefill_start"] >= short_row["slot_acquired"]  # prompt_eval and eval are timed after it...
    assert second["eval_duration"] / 1e9 == pytest.approx(short_row["eval_s"], abs=TRACE_EPS_S)
    slot_wait_s = short_row["slot_acquired"] - short_row["runner_acquired"]
    assert gap_s(second) >= slot_wait_s - TRACE_EPS_S  # ...so only total_duration shows it
    assert gap_s(first) < 0.1 * gap_s(second)  # the first found the slot free: no such gap


def test_load_time_counts_on_first_use_and_after_keep_alive_expiry(traced_emulator: TracedEmulator) -> None:
    load_s, keep_alive_s = 0.1 + 0.4, 1.0  # fit + load; a keep-alive long enough to look at /api/ps within it
    emu, trace = traced_emulator(**slow("load_s=0.4", "fit_s=0.1"))
    cold = gen(emu.url, "cold")
    warm = gen(emu.url, "warm", keep_alive=0)  # unload once idle
    assert cold["load_duration"] / 1e9 >= load_s  # a load is a sleep: never shorter than configured
    assert warm["load_duration"] < cold["load_duration"] / 10 and state(emu.url)["loads"] == 1  # no second load
    until(lambda: not loaded_models(emu.url), "the keep_alive 0 unload")
    reloaded = gen(emu.url, "reloaded", keep_alive=keep_alive_s)  # numbers are seconds
    (loaded,) = loaded_models(emu.url)
    expires = datetime.fromisoformat(loaded["expires_at"])
    assert expires - datetime.now(UTC) < timedelta(seconds=keep_alive_s)
    assert reloaded["load_duration"] / 1e9 >= load_s and state(emu.url)["loads"] == 2
    until(lambda: not loaded_models(emu.url), "the keep-alive to expire")
    assert gen(emu.url, "after expiry")["load_duration"] / 1e9 >= load_s
    assert state(emu.url)["loads"] == 3
    (reloaded_row,) = trace.rows("reloaded")
    # the keep-alive timer started when the model went idle, after the request's last token
    assert reloaded_row["last_token"] + keep_alive_s <= expires.timestamp() + TRACE_EPS_S


def test_full_pending_queue_answers_503_during_a_load(traced_emulator: TracedEmulator) -> None:
    # a long pre-flight: the scheduler is blocked in it while the queue fills and the rest are turned away
    emu, trace = traced_emulator(max_queue=2, **slow("fit_s=3.0", "load_s=0.2"))
    accepted, rejected = ["cold", "queued 1", "queued 2"], ["over 1", "over 2", "over 3"]
    with ThreadPoolExecutor(8) as pool:
        futures = {name: pool.submit(post_generate, emu.url, name, 2) for name in accepted[:2]}
        # one request is in the pre-flight and one waits: a request is dequeued within one turn of the
        # emulator's loop unless the scheduler is blocked, so a count that holds for two readings in a row
        # is not one in passing
        until(lambda: pending(emu.url) == 1 and pending(emu.url) == 1, "one request in the pre-flight, one queued")
        futures[accepted[2]] = pool.submit(post_generate, emu.url, accepted[2], 2)
        until(lambda: pending(emu.url) == 2, "the queue full")
        turned_away = [pool.submit(post_generate, emu.url, name, 2) for name in rejected]
        assert [f.result().status_code for f in turned_away] == [503, 503, 503]
        assert pending(emu.url) == 2  # the queue is as it was
        v1 = HTTP.post(emu.url + "/v1/chat/completions", json={"model": "llama3.2", "messages": [
            {"role": "user", "content": "x"}]}, headers={"X-Request-Id": "v1"})  # fmt: skip
        assert [futures[name].result().status_code for name in accepted] == [200, 200, 200]
    assert turned_away[0].result().text == '{"error":"' + BUSY + '"}'
    assert v1.status_code == 503
    assert v1.json() == {"error": {"message": BUSY, "type": "api_error", "param": None, "code": None}}
    ok, busy = trace.rows(*accepted), trace.rows(*rejected, "v1")
    loaded_at = min(r["runner_acquired"] for r in ok)
    assert all(r["last_chunk"] < loaded_at for r in busy)  # answered while the model was still loading
    assert state(emu.url)["loads"] == 1


def test_num_ctx_change_forces_a_reload(emulator_factory: EmulatorFactory) -> None:
    load_s = 0.3
    emu = emulator_factory(**slow(f"load_s={load_s}", "fit_s=0"))
    gen(emu.url)
    same = gen(emu.url, options={"num_predict": 5, "num_ctx": 4096})  # the default: no reload
    assert state(emu.url)["loads"] == 1
    bigger = gen(emu.url, options={"num_predict": 5, "num_ctx": 8192})
    assert state(emu.url)["loads"] == 2
    assert bigger["load_duration"] / 1e9 >= load_s  # the configured load, whole
    assert same["load_duration"] < bigger["load_duration"] / 10
    assert loaded_models(emu.url)[0]["context_length"] == 8192
    gen(emu.url)  # back to the default: thrash
    assert state(emu.url)["loads"] == 3


def test_eviction_waits_for_the_victims_requests(traced_emulator: TracedEmulator) -> None:
    load_s = 0.2
    emu, trace = traced_emulator(max_loaded_models=1, **slow(f"load_s={load_s}", "fit_s=0"))
    gen(emu.url, model="llama3.2", n=1)
    with ThreadPoolExecutor(2) as pool:
        victim = pool.submit(gen, emu.url, "victim", 100, "llama3.2")  # a second of decoding
        until(lambda: state(emu.url)["busy_slots"] == 1, "the victim decoding")
        other = pool.submit(gen, emu.url, "other", 5, "gemma3:270m").result()
        victim_done = victim.result()
    assert victim_done["eval_count"] == 100 and victim_done["done_reason"] == "length"  # not preempted
    victim_row, other_row = trace.rows("victim", "other")
    assert other_row["received"] < victim_row["last_token"]  # it arrived while the victim decoded...
    assert other_row["runner_acquired"] - victim_row["last_token"] >= load_s  # ...and loaded only after it ended
    waited_s = other_row["runner_acquired"] - other_row["handler_start"]
    assert other["load_duration"] / 1e9 == pytest.approx(waited_s, abs=TRACE_EPS_S)  # the whole wait is load time
    assert [m["name"] for m in loaded_models(emu.url)] == ["gemma3:270m"]


def test_client_disconnect_frees_the_slot_at_once(traced_emulator: TracedEmulator) -> None:
    emu, trace = traced_emulator(**slow())
    gen(emu.url, n=1)
    holder = hold_slot(emu.port, "holder")
    leaver = open_stream(emu.port, "leaver", 5)
    until(lambda: state(emu.url)["waiting"] == 1, "the leaver queued")
    leaver.close()  # a waiter that leaves is taken out of the queue, while the slot is still held
    until(lambda: (s := state(emu.url))["waiting"] == 0 and s["busy_slots"] == 1, "the leaver out of the queue")
    with ThreadPoolExecutor(1) as pool:
        behind = pool.submit(gen, emu.url, "behind", 5)
        until(lambda: state(emu.url)["waiting"] == 1, "the next waiter queued")
        holder.close()  # the generating client leaves: its slot goes to the waiter now, not in HOLD_TOKENS steps
        assert behind.result(timeout=10)["done"]
    holder_row, leaver_row, behind_row = trace.rows("holder", "leaver", "behind")
    assert (leaver_row["cancelled"], leaver_row["slot_acquired"]) == ("context canceled", None)
    assert holder_row["cancelled"] == "client disconnected while generating"
    assert holder_row["eval_count"] < HOLD_TOKENS
    assert behind_row["slot_acquired"] > holder_row["first_chunk"]  # it had waited for the holder's slot
    assert state(emu.url)["busy_slots"] == 0


def test_ps_sorts_by_remaining_keep_alive(emulator_factory: EmulatorFactory) -> None:
    emu = emulator_factory(**slow())
    gen(emu.url, model="gemma3:270m", n=1, keep_alive="10m")
    gen(emu.url, model="llama3.2", n=1, keep_alive=-1)
    gen(emu.url, model="qwen3:0.6b", n=1, keep_alive="1h")
    models = loaded_models(emu.url)
    assert [m["name"] for m in models] == ["llama3.2:latest", "qwen3:0.6b", "gemma3:270m"]
    now = datetime.now(UTC)
    forever, hour, ten = (datetime.fromisoformat(m["expires_at"]) - now for m in models)
    assert forever > timedelta(days=365 * 290)  # a negative keep-alive never expires
    assert hour == pytest.approx(timedelta(hours=1), abs=timedelta(seconds=5))
    assert ten == pytest.approx(timedelta(minutes=10), abs=timedelta(seconds=5))


def test_load_and_unload_forms(emulator_factory: EmulatorFactory) -> None:
    emu = emulator_factory(**slow())
    load = HTTP.post(emu.url + "/api/chat", json={"model": "gemma3:270m", "messages": []}).json()
    assert load["done_reason"] == "load" and "total_duration" not in load
    assert state(emu.url, "gemma3:270m")["loaded"]
    unload = HTTP.post(emu.url + "/api/generate", json={"model": "gemma3:270m", "keep_alive": 0}).json()
    assert unload["done_reason"] == "unload" and unload["response"] == ""
    until(lambda: not state(emu.url, "gemma3:270m")["loaded"], "the unload")
    chat = {"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], "options": {"num_predict": 3}}
    streamed = HTTP.post(emu.url + "/api/chat", json=chat)
    assert [c["done"] for c in ndjson(streamed)] == [False, False, False, True]


def test_client_leaving_during_its_load_aborts_it(traced_emulator: TracedEmulator) -> None:
    load_s = 1.0  # long enough to see the load under way
    emu, trace = traced_emulator(**slow(f"load_s={load_s}", "fit_s=0"))
    cold = open_stream(emu.port, "cold")
    until(lambda: state(emu.url)["loading"], "the load under way")
    cold.close()
    until(lambda: not state(emu.url)["loading"], "the load to end")
    # aborted: a load that ran to its end would have left the model loaded
    assert not state(emu.url)["loaded"] and state(emu.url)["loads"] == 1
    assert gen(emu.url, "next")["load_duration"] / 1e9 >= load_s  # the next request loads anew, the whole load
    assert state(emu.url)["loads"] == 2
    (cold_row,) = trace.rows("cold")
    assert (cold_row["cancelled"], cold_row["runner_acquired"]) == ("request canceled", None)
