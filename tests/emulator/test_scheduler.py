"""Scheduler semantics (reference §3) that a wrong implementation would fail: FIFO slots, where each
wait is accounted, loads and keep-alive, the bounded pending queue, reloads, eviction, disconnects."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from tests.emulator.conftest import HTTP, ndjson

pytestmark = pytest.mark.integration

# the fast preset made slow enough to observe: 100 tok/s solo (10 ms a token), no jitter
SLOW = {"preset": "fast", "tune": ["solo_tps=100", "contention=0"]}
TOKEN_S = 1 / 100
#: "at once": a small share of the modelled time a wait would otherwise take
AT_ONCE = 0.1
BUSY = "server busy, please try again.  maximum pending requests exceeded"


def gen(url: str, prompt: str = "hi", n: int = 10, model: str = "llama3.2", **extra) -> dict:
    body = {"model": model, "prompt": prompt, "stream": False, "options": {"num_predict": n}, **extra}
    return HTTP.post(url + "/api/generate", json=body).json()


def state(url: str, model: str = "llama3.2:latest") -> dict:
    return HTTP.get(url + "/_emulator/state").json()["models"][model]


def gap_s(r: dict) -> float:
    """The slot wait: total - load - prompt_eval - eval, in seconds."""
    return (r["total_duration"] - r["load_duration"] - r["prompt_eval_duration"] - r["eval_duration"]) / 1e9


def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_waiters_get_the_slot_in_arrival_order(emulator_factory):
    emu = emulator_factory(**SLOW)
    gen(emu.url, n=1)  # load
    finished: list[str] = []
    lock = threading.Lock()

    def run(name: str, n: int) -> None:
        gen(emu.url, prompt=name, n=n)
        with lock:
            finished.append(name)

    with ThreadPoolExecutor(6) as pool:
        pool.submit(run, "first", 40)
        wait_until(lambda: state(emu.url)["busy_slots"] == 1)
        for i, name in enumerate(["b", "c", "d", "e", "f"]):
            pool.submit(run, name, 2)
            wait_until(lambda i=i: state(emu.url)["waiting"] == i + 1)
        assert state(emu.url)["waiting"] == 5 and state(emu.url)["busy_slots"] == 1
    assert finished == ["first", "b", "c", "d", "e", "f"]


def test_slot_wait_is_only_in_total_duration(emulator_factory):
    emu = emulator_factory(**SLOW)
    gen(emu.url, n=1)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(gen, emu.url, "long", 50)  # 0.5 s of decoding
        wait_until(lambda: state(emu.url)["busy_slots"] == 1)
        second = pool.submit(gen, emu.url, "short", 5).result()
    first_s = 50 * TOKEN_S
    assert second["load_duration"] / 1e9 < AT_ONCE * first_s  # a loaded model: the scheduler hands it over at once
    assert 0.6 * first_s < gap_s(second) < 1.2 * first_s  # it waited most of the first request, only total shows it
    assert second["eval_duration"] / 1e9 == pytest.approx(5 * TOKEN_S, rel=0.4)
    assert gap_s(first.result()) < AT_ONCE * first_s


def test_load_time_counts_on_first_use_and_after_keep_alive_expiry(emulator_factory):
    emu = emulator_factory(**{**SLOW, "tune": SLOW["tune"] + ["load_s=0.4", "fit_s=0.1"]})
    load_s = 0.1 + 0.4  # fit + load
    cold = gen(emu.url)
    warm = gen(emu.url, keep_alive=0)  # unload once idle
    assert cold["load_duration"] / 1e9 == pytest.approx(load_s, rel=0.2)
    assert warm["load_duration"] / 1e9 < AT_ONCE * load_s
    wait_until(lambda: not HTTP.get(emu.url + "/api/ps").json()["models"])
    reloaded = gen(emu.url, keep_alive=0.3)  # numbers are seconds
    assert reloaded["load_duration"] / 1e9 == pytest.approx(load_s, rel=0.2)
    (loaded,) = HTTP.get(emu.url + "/api/ps").json()["models"]
    expires = datetime.fromisoformat(loaded["expires_at"])
    assert expires - datetime.now(UTC) < timedelta(seconds=0.3)  # timer started when it went idle
    wait_until(lambda: not HTTP.get(emu.url + "/api/ps").json()["models"], timeout=2)
    assert gen(emu.url)["load_duration"] / 1e9 == pytest.approx(load_s, rel=0.2)
    assert state(emu.url)["loads"] == 3


def test_full_pending_queue_answers_503_during_a_load(emulator_factory):
    emu = emulator_factory(max_queue=2, **{**SLOW, "tune": SLOW["tune"] + ["fit_s=1.0", "load_s=0.2"]})
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(gen, emu.url, "cold start")
        wait_until(
            lambda: state(emu.url)["loads"] == 0 and HTTP.get(emu.url + "/_emulator/state").json()["pending"] == 0
        )
        time.sleep(0.1)  # the scheduler is now in the load's pre-flight, the model not yet registered
        burst = [pool.submit(HTTP.post, emu.url + "/api/generate", json={"model": "llama3.2", "prompt": f"p{i}",
                                                                          "stream": False})
                 for i in range(5)]  # fmt: skip
        wait_until(lambda: sum(f.done() for f in burst) == 3)  # three are turned away at once...
        assert HTTP.get(emu.url + "/_emulator/state").json()["pending"] == 2  # ...two wait in the queue
        v1 = HTTP.post(
            emu.url + "/v1/chat/completions", json={"model": "llama3.2", "messages": [{"role": "user", "content": "x"}]}
        )
        statuses = sorted(f.result().status_code for f in burst)
        assert first.result()["done"]
    assert statuses == [200, 200, 503, 503, 503]
    rejected = [f.result() for f in burst if f.result().status_code == 503][0]
    assert rejected.text == '{"error":"' + BUSY + '"}'
    assert v1.status_code == 503
    assert v1.json() == {"error": {"message": BUSY, "type": "api_error", "param": None, "code": None}}


def test_num_ctx_change_forces_a_reload(emulator_factory):
    emu = emulator_factory(**{**SLOW, "tune": SLOW["tune"] + ["load_s=0.3", "fit_s=0"]})
    gen(emu.url)
    same = gen(emu.url, options={"num_predict": 5, "num_ctx": 4096})  # the default: no reload
    bigger = gen(emu.url, options={"num_predict": 5, "num_ctx": 8192})
    assert same["load_duration"] / 1e9 < AT_ONCE * 0.3
    assert bigger["load_duration"] / 1e9 == pytest.approx(0.3, rel=0.3)  # the configured 0.3 s load
    assert HTTP.get(emu.url + "/api/ps").json()["models"][0]["context_length"] == 8192
    gen(emu.url)  # back to the default: thrash
    assert state(emu.url)["loads"] == 3


def test_eviction_waits_for_the_victims_requests(emulator_factory):
    emu = emulator_factory(max_loaded_models=1, **{**SLOW, "tune": SLOW["tune"] + ["load_s=0.2", "fit_s=0"]})
    gen(emu.url, model="llama3.2", n=1)
    with ThreadPoolExecutor(2) as pool:
        victim = pool.submit(gen, emu.url, "long", 60, "llama3.2")  # 0.6 s
        wait_until(lambda: state(emu.url)["busy_slots"] == 1)
        start = time.monotonic()
        other = pool.submit(gen, emu.url, "other", 5, "gemma3:270m").result()
        victim_done = victim.result()
    assert victim_done["eval_count"] == 60 and victim_done["done_reason"] == "length"  # not preempted
    waited = other["load_duration"] / 1e9
    assert waited >= 0.5 + 0.2 - 0.1  # the victim's remaining ~0.55 s, then unload and the 0.2 s load
    assert waited <= time.monotonic() - start
    names = [m["name"] for m in HTTP.get(emu.url + "/api/ps").json()["models"]]
    assert names == ["gemma3:270m"]


def _open_stream(port: int, body: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip
    return sock


def test_client_disconnect_frees_the_slot_at_once(emulator_factory):
    emu = emulator_factory(**SLOW)
    gen(emu.url, n=1)
    generating = _open_stream(emu.port, b'{"model":"llama3.2","prompt":"long","options":{"num_predict":300}}')
    assert b'"done":false' in generating.recv(4096)  # it is generating (3 s to go)
    waiting = _open_stream(emu.port, b'{"model":"llama3.2","prompt":"waiter","options":{"num_predict":300}}')
    wait_until(lambda: state(emu.url)["waiting"] == 1)
    waiting.close()  # a waiter that leaves is taken out of the queue
    wait_until(lambda: state(emu.url)["waiting"] == 0, timeout=1)
    with ThreadPoolExecutor(1) as pool:
        behind = pool.submit(gen, emu.url, "behind", 5)
        wait_until(lambda: state(emu.url)["waiting"] == 1)
        time.sleep(0.2)
        generating.close()  # the generating client leaves: its slot goes to the waiter now, not in 3 s
        closed_at = time.monotonic()
        result = behind.result()
    pause_s, left_s = 0.2, 300 * TOKEN_S  # the wait above; what the generating request had left
    assert time.monotonic() - closed_at < left_s / 6  # long before the generating request would have ended
    assert 0.75 * pause_s < gap_s(result) < 0.2 * left_s
    assert state(emu.url)["busy_slots"] == 0


def test_ps_sorts_by_remaining_keep_alive(emulator_factory):
    emu = emulator_factory(**SLOW)
    gen(emu.url, model="gemma3:270m", n=1, keep_alive="10m")
    gen(emu.url, model="llama3.2", n=1, keep_alive=-1)
    gen(emu.url, model="qwen3:0.6b", n=1, keep_alive="1h")
    models = HTTP.get(emu.url + "/api/ps").json()["models"]
    assert [m["name"] for m in models] == ["llama3.2:latest", "qwen3:0.6b", "gemma3:270m"]
    now = datetime.now(UTC)
    forever, hour, ten = (datetime.fromisoformat(m["expires_at"]) - now for m in models)
    assert forever > timedelta(days=365 * 290)  # a negative keep-alive never expires
    assert hour == pytest.approx(timedelta(hours=1), abs=timedelta(seconds=5))
    assert ten == pytest.approx(timedelta(minutes=10), abs=timedelta(seconds=5))


def test_load_and_unload_forms(emulator_factory):
    emu = emulator_factory(**SLOW)
    load = HTTP.post(emu.url + "/api/chat", json={"model": "gemma3:270m", "messages": []}).json()
    assert load["done_reason"] == "load" and "total_duration" not in load
    assert state(emu.url, "gemma3:270m")["loaded"]
    unload = HTTP.post(emu.url + "/api/generate", json={"model": "gemma3:270m", "keep_alive": 0}).json()
    assert unload["done_reason"] == "unload" and unload["response"] == ""
    wait_until(lambda: not state(emu.url, "gemma3:270m")["loaded"])
    chat = {"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], "options": {"num_predict": 3}}
    streamed = HTTP.post(emu.url + "/api/chat", json=chat)
    assert [c["done"] for c in ndjson(streamed)] == [False, False, False, True]


def test_client_leaving_during_its_load_aborts_it(emulator_factory):
    load_s = 0.6
    emu = emulator_factory(**{**SLOW, "tune": [*SLOW["tune"], f"load_s={load_s}", "fit_s=0"]})
    cold = _open_stream(emu.port, b'{"model":"llama3.2","prompt":"cold"}')
    wait_until(lambda: state(emu.url)["loading"])
    cold.close()
    wait_until(lambda: not state(emu.url)["loading"], timeout=0.5 * load_s)  # aborted at once, not after its load
    assert not state(emu.url)["loaded"] and state(emu.url)["loads"] == 1
    assert gen(emu.url)["load_duration"] / 1e9 == pytest.approx(load_s, abs=load_s / 6)  # the next request loads anew
    assert state(emu.url)["loads"] == 2
