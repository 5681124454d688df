"""Advice in plain words, derived only from the numbers the analysis found.

Rules (thresholds are the module constants):
- slots: the effective slot count per host and model, flagged when below the configured count;
- serial: requests were queued one at a time, not slowed;
- OLLAMA_NUM_PARALLEL: from per-request speed against busy slots, the smallest slot count reaching
  ``ENOUGH`` of the best aggregate tok/s, and whether the last measured slot still added throughput;
- interactive concurrency: the highest level whose per-request speed stays >= ``NEAR_SOLO`` of solo speed
  and whose TTFT p95 stays within ``TTFT_SLACK`` x solo + ``TTFT_MARGIN_S``;
- the highest level meeting the latency SLOs (p95 per level); in a capacity search, its answer instead
  (judged per probe with its uncertainty, it is the one answer to that question);
- queue limit: ``q = floor(k * (TTFT_SLO - prefill) / S)`` (or ``k * (E2E_SLO - S) / S`` without a TTFT SLO);
- OLLAMA_MAX_QUEUE does not bound waiters of a loaded model: enforce ``k + q`` in a gateway; 503 onset;
- routing: weights proportional to measured peak aggregate tok/s when hosts serving one model differ;
- reloads, thinking budgets, and whether the target was the emulator.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from analysis.curve import by_target, solo
from analysis.saturation import Saturation
from analysis.slo import Slo
from analysis.target import Target

ENOUGH = 0.95
GAINFUL_STEP = 1.1  # the last measured slot step "still adds throughput" above this aggregate ratio
NEAR_SOLO = 0.8
TTFT_SLACK = 1.5
TTFT_MARGIN_S = 0.25
UNEVEN_HOSTS = 1.2
FORCED_TO_ONE = ("embedding models", "mllama", "qwen3vl", "qwen3vlmoe", "qwen35", "qwen35moe", "qwen3next", "lfm2",
                 "nemotron_h")


@dataclass(frozen=True, slots=True)
class Advice:
    topic: str
    text: str
    host: str = ""
    model: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _threshold(slo_list: Sequence[Slo], key: str) -> float | None:
    values = [s.threshold for s in slo_list if s.key == key]
    return min(values) if values else None


def _pct(x: float) -> str:
    return f"{x * 100:.0f} %"


def advise(
    sat: Saturation, slo_list: Sequence[Slo], cold: pd.DataFrame, thinking: pd.DataFrame, hosts: Sequence[Target],
    capacity: str | None = None,
) -> list[Advice]:
    """All advice for one run, most important first within each host and model. ``capacity``: a capacity
    search's answer (``capacity_line``), which then stands for the highest level meeting the SLOs."""
    out = [Advice("target", h.describe()) for h in hosts if h.is_emulator]
    if capacity is not None:
        out.append(Advice("slo", f"the capacity search's answer, for the whole fleet within the SLOs: {capacity}"))
    curves = by_target(sat.curve) if not sat.curve.empty else {}
    speeds = by_target(sat.degradation) if not sat.degradation.empty else {}
    ollama = not hosts or any(h.is_ollama for h in hosts)
    for row in sat.targets.itertuples(index=False):
        key = (row.host, row.model)
        found = _target_advice(row, curves.get(key, pd.DataFrame()), speeds.get(key, pd.DataFrame()), slo_list, ollama)
        out += [Advice(topic, f"{row.model}@{row.host}: {text}", row.host, row.model) for topic, text in found
                if not (capacity is not None and topic == "slo")]
    out += _routing_advice(sat.targets)
    out += _reload_advice(cold)
    if not thinking.empty and thinking["length_no_content"].sum() > 0:
        for row in thinking[thinking["length_no_content"] > 0].itertuples(index=False):
            text = (f"{row.workload} ({row.model}): {int(row.length_no_content)} requests hit the output limit "
                    "while still thinking (no visible content): raise num_predict or lower the thinking budget")
            out.append(Advice("thinking", text, model=str(row.model)))
    return out


def _target_advice(
    row: Any, curve: pd.DataFrame, speed: pd.DataFrame, slo_list: Sequence[Slo], ollama: bool
) -> Iterator[tuple[str, str]]:
    """(topic, text) of each piece of advice for one host and model, most important first."""
    yield from _slot_advice(row)
    if row.slots is None:
        return
    if text := _parallel_advice(row, speed):
        yield "num_parallel", text
    if not curve.empty:
        if text := _interactive_advice(curve):
            yield "interactive", text
        if text := _slo_level_advice(curve, slo_list):
            yield "slo", text
    yield from _queue_advice(row, slo_list, ollama)


def _slot_advice(row: Any) -> list[tuple[str, str]]:
    r = row  # a targets row
    if r.slots is None:
        return [("slots", "no slot estimate (no busy intervals and no usable stage levels)")]
    sources = f"busy-interval overlap {r.overlap}, sweep fit {r.fit}"
    if r.server_metrics != "n/a":
        sources += f", server metrics {r.server_metrics}"
    if r.slots_lower_bound:
        text = (f"at least {r.slots} effective parallel slots ({sources}); the load never offered more than "
                f"{r.slots} concurrent requests for long enough: raise the top concurrency to find the ceiling")
    else:
        text = f"{r.slots} effective parallel slot{'s' if r.slots != 1 else ''} ({sources})"
    advice = [("slots", text)]
    if r.configured and not r.slots_lower_bound and r.slots < r.configured:
        advice.append(("slots", f"configured {int(r.configured)}, effective {r.slots}: check whether the model is one "
                       f"Ollama forces to one slot ({', '.join(FORCED_TO_ONE)}...), whether OLLAMA_NUM_PARALLEL "
                       "reached the server process (e.g. the systemd unit's environment), and memory"))
    if r.serial:
        advice.append(("serial", f"the server ran requests one at a time: aggregate tok/s stayed flat (x{r.gain:.2f}) "
                       "while time grew with concurrency and per-request speed stayed at solo speed - requests were "
                       "queued, not slowed. Only more slots (OLLAMA_NUM_PARALLEL > 1, memory permitting) or more "
                       "hosts serve them concurrently"))
    return advice


def _parallel_advice(row: Any, speed: pd.DataFrame) -> str | None:
    r = row
    speed = speed[speed["requests"] > 0] if not speed.empty else speed
    if len(speed) < 2:
        if r.serial or speed.empty:
            return None
        return (f"requests only ever ran {int(speed['m'].iloc[0])} at a time, so the slowdown per added slot is "
                "unmeasured; sweep across more concurrency levels to measure it")
    best = speed["aggregate_tok_s"].max()
    enough = int(speed.loc[speed["aggregate_tok_s"] >= ENOUGH * best, "m"].min())
    top, prev = speed.iloc[-1], speed.iloc[-2]
    step = top["aggregate_tok_s"] / prev["aggregate_tok_s"] if prev["aggregate_tok_s"] > 0 else math.nan
    low = speed.iloc[0]
    text = (f"per-request speed fell from {low['per_req_tok_s']:.1f} tok/s with {int(low['m'])} busy to "
            f"{top['per_req_tok_s']:.1f} tok/s with {int(top['m'])} busy ({_pct(top['relative_speed'])}), "
            f"aggregate {speed['aggregate_tok_s'].iloc[0]:.1f} -> {top['aggregate_tok_s']:.1f} tok/s. "
            f"OLLAMA_NUM_PARALLEL={enough} already gives {_pct(ENOUGH)} of the best aggregate throughput")
    if r.slots_lower_bound or step <= GAINFUL_STEP:
        if not r.slots_lower_bound and int(top["m"]) >= (r.slots or 0):
            text += (f"; going from {int(prev['m'])} to {int(top['m'])} busy slots added only {_pct(step - 1)}, so "
                     "raising it further would split the same throughput into slower streams")
        return text
    return text + (f"; the last step ({int(prev['m'])} -> {int(top['m'])} busy) still added {_pct(step - 1)} aggregate "
                   f"throughput, so raising OLLAMA_NUM_PARALLEL above {r.slots} may add more if memory allows "
                   "(KV cache grows with slots x num_ctx): measure it")


def _interactive_advice(curve: pd.DataFrame) -> str | None:
    c = curve.dropna(subset=["x", "per_req_tok_s"]).sort_values("x")
    if len(c) < 2:
        return None
    base = solo(c)
    ttft_limit = TTFT_SLACK * base["ttft_p95_s"] + TTFT_MARGIN_S if pd.notna(base["ttft_p95_s"]) else math.inf
    near = (c["per_req_tok_s"] >= NEAR_SOLO * base["per_req_tok_s"]) & ~(c["ttft_p95_s"] > ttft_limit)
    # The highest level before the first one that falls off solo speed.
    fine = c["x"][near.cumprod().astype(bool)]
    if fine.empty:
        return None
    return (f"the highest concurrency that keeps interactive latency near solo speed is {fine.max():g} "
            f"(per-request speed >= {_pct(NEAR_SOLO)} of {base['per_req_tok_s']:.1f} tok/s and TTFT p95 within "
            f"{TTFT_SLACK:g}x solo + {TTFT_MARGIN_S:g} s)")


def _slo_level_advice(curve: pd.DataFrame, slo_list: Sequence[Slo]) -> str | None:
    checks = {s.key: s.threshold for s in slo_list if s.key in curve.columns}
    if not checks:
        return None
    c = curve.dropna(subset=["x"]).sort_values("x")  # no level without stages.csv
    if c.empty:
        return None
    within = pd.Series(True, index=c.index)
    for key, threshold in checks.items():
        within &= ~(c[key] > threshold)
    passing = c["x"][within.cumprod().astype(bool)]
    keys = ", ".join(f"{k} <= {v:g}" for k, v in checks.items())
    if passing.empty:
        return f"no measured level meets {keys}, not even {c['x'].min():g}"
    return f"the highest measured concurrency meeting {keys} is {passing.max():g}"


def _queue_advice(row: Any, slo_list: Sequence[Slo], ollama: bool) -> list[tuple[str, str]]:
    r = row
    k, service, prefill = r.slots, r.service_s, r.prefill_s if pd.notna(r.prefill_s) else 0.0
    ttft, e2e = _threshold(slo_list, "ttft_p95_s"), _threshold(slo_list, "e2e_p95_s")
    out: list[tuple[str, str]] = []
    if not (service > 0):
        return out
    if ttft is not None:
        q = max(0, math.floor(k * (ttft - prefill) / service))
        formula = f"{k} x (TTFT SLO {ttft:g} s - prefill {prefill:.2f} s) / service {service:.2f} s"
    elif e2e is not None:
        q = max(0, math.floor(k * (e2e - service) / service))
        formula = f"{k} x (e2e SLO {e2e:g} s - service {service:.2f} s) / service {service:.2f} s"
    else:
        out.append(("queue", "no TTFT or e2e SLO given, so no queue limit is derived (python -m analysis report "
                    "--slo ttft_p95_s=...)"))
        q = None
    if q is not None:
        out.append(("queue", f"a queue limit of {q} waiting requests ({formula}) fails fast instead of queueing "
                    f"requests that would miss the SLO anyway: at most {k + q} in flight"))
    if ollama:
        limit = f"{k + q} concurrent requests" if q is not None else "the slot count plus a small queue"
        out.append(("max_queue", "OLLAMA_MAX_QUEUE does not bound requests waiting for a loaded model's slots (they "
                    "queue without limit; ollama/ollama#7758), so enforce " + limit + " per host in a gateway "
                    "(nginx limit_conn, LiteLLM max_parallel_requests, a proxy semaphore)"))
    if r.onset_503 is not None and not math.isnan(r.onset_503):
        out.append(("max_queue", f"503 (server busy) responses began at concurrency {r.onset_503:g}: the server's "
                    f"queue limit bit at about {max(0, r.onset_503 - k):g} waiting requests"))
    return out


def _routing_advice(targets: pd.DataFrame) -> list[Advice]:
    out: list[Advice] = []
    if targets.empty:
        return out
    for model, group in targets.dropna(subset=["peak_agg_tok_s"]).groupby("model"):
        if group["host"].nunique() < 2:
            continue
        capacity = group.set_index("host")["peak_agg_tok_s"]
        if capacity.max() < UNEVEN_HOSTS * capacity.min():
            continue
        weights = ", ".join(f"{h} {_pct(w)}" for h, w in (capacity / capacity.sum()).items())
        measured = ", ".join(f"{h} {v:.1f}" for h, v in capacity.items())
        text = (f"{model}: hosts differ in capacity; route by weights {weights} (proportional to measured peak "
                f"aggregate tok/s: {measured})")
        unsaturated = group.loc[group["slots_lower_bound"].eq(True), "host"].astype(str).tolist()
        if unsaturated:
            text += (f"; {', '.join(unsaturated)} never had all its slots busy, so its measured peak and share are "
                     "lower bounds: offer more concurrency to measure its capacity")
        out.append(Advice("routing", text, model=str(model)))
    return out


def _reload_advice(cold: pd.DataFrame) -> list[Advice]:
    out: list[Advice] = []
    if cold.empty:
        return out
    reloads = cold[cold["kind"] == "reload"]
    for (host, model), group in reloads.groupby(["host", "model"]):
        out.append(Advice("reload", f"{model}@{host}: {len(group)} reloads mid-run (load time up to "
                          f"{group['load_s'].max():.1f} s): check OLLAMA_KEEP_ALIVE, OLLAMA_MAX_LOADED_MODELS when "
                          "the scenario mixes models, and per-request options (num_ctx, num_batch) that differ "
                          "between clients", str(host), str(model)))
    return out
