"""Prompt-cache hits in the records, and how each was found.

A server that reports the prompt tokens it took from its cache (llama.cpp ``timings.cache_n`` and
``usage.prompt_tokens_details.cached_tokens``, the records' ``cached_tokens``) reports its hits:
``cached_tokens > 0``. Ollama reports none: since 0.1.49 its ``prompt_eval_count`` counts the cached
tokens too while ``prompt_eval_duration`` times only the evaluated ones, so a hit shows only as a prompt
evaluated far faster than the server evaluates prompts. Rates vary by tens of percent with prompt size and
batch; a mostly cached prompt evaluates 10-100x faster. So a request without ``cached_tokens`` whose
``prompt_tokens / server_prompt_eval_s`` is more than ``CACHE_HIT_FACTOR`` times the miss rate is taken for
a hit. The miss rate is the median rate of the prompts evaluated alone (all prompts when none was) below
the widest gap between two consecutive rates, sorted, when that gap is wider than ``CACHE_HIT_FACTOR``
(the hits lie above it, and they may be most prompts, as with a shared prefix); of all of them otherwise.
A hit evaluated beside other requests may stay unseen: its timer holds their work too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd

from analysis.busy import mean_level, steps
from analysis.latency import measured
from analysis.run import Run

#: A prompt evaluated more than this many times faster than the miss rate is taken for a hit.
CACHE_HIT_FACTOR: Final = 5.0
#: A prompt counts as evaluated alone when, over its evaluation, fewer than this many other requests were in
#: service (their prompt or decode) on average. A prompt that shares its engine steps with other work (it joined
#: a running batch, or other prompts joined with it) has a timer that holds that work too: four prompts evaluated
#: together each report the time of all four. Half a request leaves room for the millisecond by which the client's
#: clock and the server's timers disagree where one request ends and the next begins.
ALONE_COMPANY: Final = 0.5
#: How hits are found, for reports.
METHOD: Final = (
    f"reported: cached_tokens > 0 (llama.cpp's timings.cache_n); inferred where the server reports no cached tokens "
    f"(Ollama counts them in prompt_eval_count): prompt_tokens / server_prompt_eval_s above {CACHE_HIT_FACTOR:g}x the "
    "host and model's miss rate, the median rate of prompts evaluated alone below the widest gap (over "
    f"{CACHE_HIT_FACTOR:g}x) between consecutive sorted rates"
)


def evaluated_alone(records: pd.DataFrame, by: Sequence[str]) -> pd.Series:
    """Per request (successful, with server timers): whether its prompt was evaluated with no other request in
    service, by ``ALONE_COMPANY``. Service is ``[t_end - eval - prompt_eval, t_end]`` and the prompt its first
    ``prompt_eval`` seconds, compared within each group of ``by`` (a run; a host and model)."""
    prompt_s = records["server_prompt_eval_s"].astype(float)
    start = records["t_end"].astype(float) - records["server_eval_s"].astype(float).fillna(0.0) - prompt_s
    alone = pd.Series(False, index=records.index)
    for _, rows in records[prompt_s > 0].groupby(list(by), sort=False, observed=True):
        begin = start[rows.index].to_numpy()
        ends = rows["t_end"].to_numpy(dtype=float)
        company = mean_level(steps(begin, ends), begin, begin + prompt_s[rows.index].to_numpy()) - 1  # less itself
        alone[rows.index] = company < ALONE_COMPANY
    return alone


def miss_rate(rates: pd.Series) -> float:
    """The rate of prompts evaluated without a hit: the median of ``rates`` (finite, positive) below the widest
    gap between consecutive sorted rates when it is wider than ``CACHE_HIT_FACTOR``, else of all of them."""
    values = np.sort(rates[np.isfinite(rates) & (rates > 0)].to_numpy(dtype=float))
    if len(values) > 1:
        gaps = values[1:] / values[:-1]
        widest = int(np.argmax(gaps))
        if gaps[widest] > CACHE_HIT_FACTOR:
            values = values[: widest + 1]
    return float(np.median(values)) if len(values) else float("nan")


def inferred_hits(rates: pd.Series, reference: pd.Series) -> pd.Series:
    """Which ``rates`` are above ``CACHE_HIT_FACTOR`` times the miss rate of ``reference``."""
    return rates > CACHE_HIT_FACTOR * miss_rate(reference)


@dataclass(frozen=True)
class CacheHits:
    """Per judged request (successful, with ``cached_tokens`` or server timers): a hit or not, and how."""

    hit: pd.Series  # bool, on the index of the judged requests
    reported: pd.Series  # bool: the server said so (cached_tokens > 0)
    miss_rates: dict[tuple[str, str], float] = field(default_factory=dict)  # (host, model) -> tok/s

    @property
    def inferred(self) -> pd.Series:
        return self.hit & ~self.reported


def cache_hits(records: pd.DataFrame) -> CacheHits:
    """The hits among ``records`` (the run's records, derived columns included), by ``METHOD``."""
    r = records[records["ok"] & (records["prompt_tokens"] > 0)]
    cached = r["cached_tokens"].astype(float)
    prompt_s = r["server_prompt_eval_s"].astype(float)
    r = r[cached.notna() | prompt_s.notna()]
    cached, prompt_s = cached[r.index], prompt_s[r.index]
    reported = (cached > 0).fillna(False).astype(bool)
    hit = reported.copy()
    unreported = cached.isna()
    with np.errstate(divide="ignore"):
        rates = r["prompt_tokens"].astype(float) / prompt_s
    alone = evaluated_alone(r[unreported], ("host", "model"))
    miss_rates = {}
    for key, rows in r[unreported].groupby(["host", "model"], sort=True, observed=True):
        group = rates[rows.index]
        reference = group[alone[rows.index]] if alone[rows.index].any() else group
        miss_rates[(str(key[0]), str(key[1]))] = miss_rate(reference)
        hit[rows.index] = inferred_hits(group, reference)
    return CacheHits(hit, reported, miss_rates)


#: The columns of the per-workload table, empty or not.
COLUMNS: Final = ["workload", "host", "model", "requests", "hits", "reported", "inferred", "ttft_p50_hit_s",
                  "ttft_p95_hit_s", "ttft_p50_miss_s", "ttft_p95_miss_s"]


@dataclass(frozen=True)
class PromptCacheReport:
    """A run's prompt-cache section: its shared prefixes, its hits and TTFT with and without one."""

    prefixes: list[str]  # one line per workload with a shared prefix
    judged: int  # requests with cached_tokens or server timers (successful, outside warm-up)
    unjudged: int  # successful requests with neither
    hits: int
    reported: int
    inferred: int
    miss_rates: dict[tuple[str, str], float]
    table: pd.DataFrame  # COLUMNS

    def to_json(self) -> dict[str, Any]:
        """The section for ``summary.json`` (tables stay DataFrames, which ``summary.plain`` converts)."""
        rates = [{"host": host, "model": model, "tok_s": rate} for (host, model), rate in self.miss_rates.items()]
        return {"prefixes": self.prefixes, "judged": self.judged, "unjudged": self.unjudged, "hits": self.hits,
                "reported": self.reported, "inferred": self.inferred, "method": METHOD, "miss_rates": rates,
                "by_workload": self.table}


def prefix_lines(info: dict[str, Any]) -> list[str]:
    """The shared prefixes run.json lists, one line per workload."""
    lines = []
    for workload in info.get("workloads") or []:
        prefix = workload.get("prefix") if isinstance(workload, dict) else None
        if isinstance(prefix, dict):
            count = prefix.get("count", 1)
            lines.append(f"workload {workload.get('name')}: {count} prefix{'es' if count != 1 else ''} of "
                         f"{prefix.get('words')} words, one per session")
    return lines


def prompt_cache_report(run: Run) -> PromptCacheReport | None:
    """The section, when the run has shared prefixes or any prompt-cache hit; ``None`` otherwise."""
    prefixes = prefix_lines(run.info)
    records = measured(run, ["workload", "host", "model", "ok", "prompt_tokens", "cached_tokens",
                             "server_prompt_eval_s", "server_eval_s", "t_end", "ttft_s"])
    if records.empty:
        return None
    found = cache_hits(records)
    if not prefixes and not found.hit.any():
        return None
    judged = records.loc[found.hit.index].assign(hit=found.hit, reported=found.reported, inferred=found.inferred)
    rows = []
    for key, group in judged.groupby(["workload", "host", "model"], sort=True, observed=True):
        ttft = group["ttft_s"]
        hit, miss = ttft[group["hit"]].dropna(), ttft[~group["hit"]].dropna()
        rows.append([*map(str, key), len(group), int(group["hit"].sum()), int(group["reported"].sum()),
                     int(group["inferred"].sum()), _quantile(hit, 0.5), _quantile(hit, 0.95), _quantile(miss, 0.5),
                     _quantile(miss, 0.95)])
    return PromptCacheReport(prefixes, len(judged), int(records["ok"].sum()) - len(judged), int(found.hit.sum()),
                             int(found.reported.sum()), int(found.inferred.sum()), found.miss_rates,
                             pd.DataFrame(rows, columns=COLUMNS))


def _quantile(values: pd.Series, q: float) -> float:
    return float(values.quantile(q)) if len(values) else float("nan")
