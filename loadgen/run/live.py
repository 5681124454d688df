"""The LLM view of the run in progress, for the web UI: one table row per workload, host and model.

Fed the record rows the master receives (``RECORD_COLUMNS`` order, missing values as empty cells) and
the servers' own samples; memory stays bounded (per row: counters, the tokens of the last window, the
last ``RECENT`` successful requests; per host and model: the last ``INTERVALS`` successful requests for
the slot estimate and coarsening timelines for the chart). Adding a row is a few dict look-ups. The
slot estimate and the busy timeline come from the analysis' own formulas (``analysis.metrics.derive``,
``analysis.slots``), recomputed at most every ``ESTIMATE_EVERY_S`` seconds.

    tok/s       output tokens of the requests that ended in the last window / the window
    gen tok/s   median of output_tokens / server_eval_s (the server's decode rate per request)
    TTFT, e2e   exact percentiles of the requests that ended in the last window (at least the last
                ``MIN_RECENT`` requests), linear interpolation (as the report)
    slot wait   server_total_s - server_load_s - server_prompt_eval_s - server_eval_s (Ollama native)
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final, Literal

from analysis.schema import COLUMN_INDEX, RECORD_COLUMNS, ErrorClass, row_number
from analysis.svg import Rule, Series, chart
from loadgen.run.records import FLUSH_INTERVAL
from loadgen.run.sampler import Sample

if TYPE_CHECKING:
    from analysis.slots import Estimate

WINDOW_S: Final = 30.0
RECENT: Final = 2000  # successful requests kept per row for the percentiles
MIN_RECENT: Final = 20  # percentiles over at least this many requests, even if older than the window
INTERVALS: Final = 5000  # successful requests kept per host and model for the slot estimate
ESTIMATE_EVERY_S: Final = 5.0
STALE_S: Final = 5.0  # a server sample older than this no longer says what is busy "now"
TIMELINE_POINTS: Final = 900
SMOOTH_S: Final = 10.0  # the chart's tok/s is a trailing mean over this long
LAG_S: Final = FLUSH_INTERVAL + 1.0  # records reach the master up to a batch interval after they end
NO_VALUE: Final = "-"

#: What the slot estimate needs of a request: ``derive`` turns these into its busy interval.
TIMING_COLUMNS: Final = ("t_start", "t_first_token", "t_end", "output_tokens", "server_prompt_eval_s",
                         "server_eval_s")
TABLE_COLUMNS: Final = (
    ("workload", "Workload"), ("host", "Host"), ("model", "Model"), ("requests", "Requests"),
    ("failures", "Failures"), ("busy_503", "503s"), ("tok_s", f"Output tok/s ({WINDOW_S:g} s)"),
    ("gen_tok_s", "Gen tok/s per request"), ("ttft_p50", "TTFT p50"), ("ttft_p95", "TTFT p95"),
    ("e2e_p95", "E2E p95"), ("slot_wait_p95", "Slot wait p95"), ("busy", "Busy now"), ("slots", "Slots inferred"),
)

Key = tuple[str, str, str]  # workload, host, model
Target = tuple[str, str]  # host, model ("" in a server sample: the whole host)


def _difference(*terms: float | None) -> float | None:
    """``terms[0] - terms[1] - ...``, or ``None`` when any term is missing."""
    if any(t is None for t in terms):
        return None
    first, *rest = terms
    return first - sum(rest)  # type: ignore[operator, arg-type]


def slot_wait(row: Sequence[Any]) -> float | None:
    """A record row's slot wait: ``server_total_s - server_load_s - server_prompt_eval_s - server_eval_s``
    (Ollama's native timers); ``None`` when one is missing."""
    return _difference(*(row_number(row, c) for c in (
        "server_total_s", "server_load_s", "server_prompt_eval_s", "server_eval_s")))


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default, as the report); ``None`` when empty."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[round(q * 100) - 1]


def seconds(value: float | None) -> str:
    """A duration for humans: 0.0423 -> "42 ms", 1.234 -> "1.23 s", 12.34 -> "12.3 s"."""
    if value is None:
        return NO_VALUE
    if abs(value) < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s" if abs(value) < 10 else f"{value:.1f} s" if abs(value) < 100 else f"{value:.0f} s"


def rate(value: float | None) -> str:
    """A rate for humans: 0.25 -> "0.25", 12.34 -> "12.3", 1234.5 -> "1234"."""
    if value is None:
        return NO_VALUE
    return f"{value:.2f}" if value < 1 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def slots_text(estimate: Estimate | None) -> str:
    """"4", "≥ 4" (the load never offered more) or "-"."""
    if estimate is None or estimate.value is None:
        return NO_VALUE
    return f"≥ {estimate.value}" if estimate.lower_bound else str(estimate.value)


def more_informative(old: Estimate | None, new: Estimate) -> Estimate | None:
    """The estimate to show: ``new`` unless it says less than ``old`` (nothing, or a lower bound at or
    below an exact value), as when the recent load offered less concurrency than earlier."""
    if new.value is None:
        return old
    if old is not None and old.value is not None and not old.lower_bound and new.lower_bound \
            and new.value <= old.value:
        return old
    return new


class Timeline:
    """Values per time bucket since ``t0``; when ``capacity`` is reached, pairs of buckets merge and the
    width doubles, so a run of any length keeps at most ``capacity`` buckets."""

    def __init__(self, t0: float, combine: Literal["sum", "max"], width: float = 1.0,
                 capacity: int = TIMELINE_POINTS) -> None:
        self.t0 = t0
        self.width = width
        self.combine = combine
        self.capacity = capacity
        self.buckets: list[float | None] = []

    def add(self, t: float, value: float) -> None:
        """Sum ``value`` into (or take the maximum with) the bucket holding ``t``."""
        i = self._index(t)
        old = self.buckets[i]
        self.buckets[i] = value if old is None else old + value if self.combine == "sum" else max(old, value)

    def spread(self, start: float, end: float) -> None:
        """Add the time ``[start, end]`` covers to each bucket it overlaps (busy seconds per bucket)."""
        last = self._index(end)
        first = self._index(start)
        for i in range(first, last + 1):
            lo = self.t0 + i * self.width
            covered = min(end, lo + self.width) - max(start, lo)
            if covered > 0:
                self.buckets[i] = (self.buckets[i] or 0.0) + covered

    def points(self) -> tuple[list[float], list[float | None]]:
        """Bucket start times (seconds since ``t0``) and values; ``None`` where a ``max`` bucket got nothing."""
        return [i * self.width for i in range(len(self.buckets))], list(self.buckets)

    def _index(self, t: float) -> int:
        i = max(0, int((t - self.t0) // self.width))
        while i >= self.capacity:
            self._coarsen()
            i //= 2
        if i >= len(self.buckets):
            self.buckets.extend([0.0 if self.combine == "sum" else None] * (i + 1 - len(self.buckets)))
        return i

    def _coarsen(self) -> None:
        odd: list[float | None] = [None] if len(self.buckets) % 2 else []
        pairs = zip(self.buckets[::2], self.buckets[1::2] + odd, strict=True)
        merge = (lambda a, b: a + b) if self.combine == "sum" else max
        self.buckets = [a if b is None else b if a is None else merge(a, b) for a, b in pairs]
        self.width *= 2


@dataclass(slots=True)
class _Done:
    """One successful request, as the table needs it."""

    t_end: float
    ttft: float | None
    e2e: float
    slot_wait: float | None
    gen_tok_s: float | None


@dataclass(slots=True)
class _Row:
    """Counters and recent requests of one workload, host and model."""

    requests: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    n_503: int = 0
    # [second, output tokens of the requests that ended in it], in arrival order (nearly time order)
    tokens: deque[list[float]] = field(default_factory=deque)
    recent: deque[_Done] = field(default_factory=lambda: deque(maxlen=RECENT))


@dataclass(slots=True)
class _Target:
    """One host and model: what the slot estimate and the chart need."""

    tokens: Timeline
    busy: Timeline  # busy seconds per bucket, from the records' busy intervals
    intervals: deque[tuple[float | None, ...]] = field(default_factory=lambda: deque(maxlen=INTERVALS))
    unspread: int = 0  # intervals added since the busy timeline was last brought up to date
    estimate: Estimate | None = None


class LiveStats:
    """The live LLM table and chart of one run (master or local runner side)."""

    def __init__(self, started_at: float, window_s: float = WINDOW_S) -> None:
        self.started_at = started_at
        self.window_s = window_s
        self._rows: dict[Key, _Row] = {}
        self._targets: dict[Target, _Target] = {}
        self._samples: dict[Target, Sample] = {}
        self._server_busy: dict[Target, Timeline] = {}
        self._refreshed = -math.inf

    # -- input ----------------------------------------------------------------------------------------

    def add_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Count record rows (``RECORD_COLUMNS`` order, as ``RequestRecord.to_row`` makes them)."""
        for row in rows:
            self._add(row)

    def _add(self, row: Sequence[Any]) -> None:
        key = (str(row[COLUMN_INDEX["workload"]]), str(row[COLUMN_INDEX["host"]]), str(row[COLUMN_INDEX["model"]]))
        stats = self._rows.get(key)
        if stats is None:
            stats = self._rows[key] = _Row()
        stats.requests += 1
        error, status = row[COLUMN_INDEX["error"]], row[COLUMN_INDEX["status"]]
        if error == ErrorClass.BUSY_503 or status == 503:
            stats.n_503 += 1
            return
        if error:
            stats.failures[str(error)] += 1
            return
        value = {name: row_number(row, name) for name in TIMING_COLUMNS}
        t_start, t_end, output = value["t_start"], value["t_end"], value["output_tokens"]
        if t_start is None or t_end is None:  # not a record the contract allows; count it, time nothing
            return
        eval_s = value["server_eval_s"]
        stats.recent.append(_Done(
            t_end=t_end,
            ttft=_difference(value["t_first_token"], t_start),
            e2e=t_end - t_start,
            slot_wait=slot_wait(row),
            gen_tok_s=output / eval_s if output is not None and eval_s else None,
        ))
        target = self._target(key[1], key[2])
        target.intervals.append(tuple(value[c] for c in TIMING_COLUMNS))
        target.unspread += 1
        if output:
            second = math.floor(t_end)
            if stats.tokens and stats.tokens[-1][0] == second:
                stats.tokens[-1][1] += output
            else:
                stats.tokens.append([second, output])
            target.tokens.add(t_end, output)

    def add_samples(self, samples: Iterable[Sample]) -> None:
        """Keep the servers' latest counts (``Sample.model`` empty: the whole host) and their timeline."""
        for sample in samples:
            key = (sample.host, sample.model)
            self._samples[key] = sample
            timeline = self._server_busy.get(key)
            if timeline is None:
                timeline = self._server_busy[key] = Timeline(self.started_at, "max")
            timeline.add(sample.t, sample.busy)

    def _target(self, host: str, model: str) -> _Target:
        target = self._targets.get((host, model))
        if target is None:
            target = self._targets[(host, model)] = _Target(Timeline(self.started_at, "sum"),
                                                            Timeline(self.started_at, "sum"))
        return target

    def server_samples(self, since: float) -> list[Sample]:
        """Each server's (and model's) latest sample taken at ``since`` or later."""
        return [sample for sample in self._samples.values() if sample.t >= since]

    def slot_estimates(self) -> dict[Target, Estimate]:
        """The slot count inferred so far per host and model (as of the last ``refresh``)."""
        return {key: target.estimate for key, target in self._targets.items() if target.estimate is not None}

    # -- estimates ------------------------------------------------------------------------------------

    def refresh(self, now: float, force: bool = False) -> None:
        """Bring the slot estimates and busy timelines up to date, at most every ``ESTIMATE_EVERY_S``."""
        if not force and now - self._refreshed < ESTIMATE_EVERY_S:
            return
        self._refreshed = now
        # pandas is loaded here, on the master's first refresh, never on a load-generating worker
        import pandas as pd

        from analysis.metrics import derive
        from analysis.slots import overlap_estimate, overlap_levels

        for target in self._targets.values():
            if not target.intervals:
                continue
            raw = pd.DataFrame(list(target.intervals), columns=TIMING_COLUMNS, dtype=float)
            frame = derive(raw.reindex(columns=RECORD_COLUMNS))
            new = frame.tail(min(target.unspread, len(frame))).dropna(subset=["busy_start"])
            for start, end in zip(new["busy_start"], new["t_end"], strict=True):
                target.busy.spread(start, end)
            target.unspread = 0
            target.estimate = more_informative(target.estimate, overlap_estimate(overlap_levels(frame)))

    # -- output ---------------------------------------------------------------------------------------

    def table(self, now: float) -> list[dict[str, str]]:
        """One row of strings per workload, host and model (keys of ``TABLE_COLUMNS``)."""
        self.refresh(now)
        window = self._window(now)
        rows = []
        for (workload, host, model), stats in sorted(self._rows.items()):
            while stats.tokens and stats.tokens[0][0] <= now - self.window_s:
                stats.tokens.popleft()
            recent = [d for d in stats.recent if d.t_end > now - self.window_s]
            if len(recent) < MIN_RECENT:
                recent = list(stats.recent)[-MIN_RECENT:]
            ttft = sorted(d.ttft for d in recent if d.ttft is not None)
            e2e = sorted(d.e2e for d in recent)
            wait = sorted(d.slot_wait for d in recent if d.slot_wait is not None)
            speed = [d.gen_tok_s for d in recent if d.gen_tok_s is not None]
            target = self._targets.get((host, model))
            rows.append({
                "workload": workload, "host": host, "model": model,
                "requests": str(stats.requests),
                "failures": _failures(stats.failures),
                "busy_503": str(stats.n_503),
                "tok_s": rate(sum(n for second, n in stats.tokens if second > now - self.window_s) / window),
                "gen_tok_s": rate(statistics.median(speed) if speed else None),
                "ttft_p50": seconds(percentile(ttft, 0.5)),
                "ttft_p95": seconds(percentile(ttft, 0.95)),
                "e2e_p95": seconds(percentile(e2e, 0.95)),
                "slot_wait_p95": seconds(percentile(wait, 0.95)),
                "busy": self._busy_text(host, model, target, now),
                "slots": slots_text(target.estimate if target else None),
            })
        return rows

    def _window(self, now: float) -> float:
        """The tok/s window: ``window_s``, or the time since the run started when that is shorter."""
        return max(1.0, min(self.window_s, now - self.started_at))

    def _busy_text(self, host: str, model: str, target: _Target | None, now: float) -> str:
        sample = self._samples.get((host, model)) or self._samples.get((host, ""))
        if sample is not None and now - sample.t <= STALE_S:
            text = str(sample.busy) + (f" / {sample.total_slots}" if sample.total_slots else "")
            return text + (f" (+{sample.queued} queued)" if sample.queued else "")
        if target is None:
            return NO_VALUE
        times, busy = target.busy.points()
        since = now - self.window_s - target.busy.t0
        seconds_busy = sum(b or 0.0 for t, b in zip(times, busy, strict=True) if t >= since)
        return f"{seconds_busy / self._window(now):.1f} (avg {self.window_s:g} s)"

    def tok_s_chart(self, now: float) -> str:
        """Aggregate output tok/s over time per host and model (a trailing ``SMOOTH_S`` mean), as SVG.
        The last ``LAG_S`` are left out: their records may still be on their way."""
        self.refresh(now)
        series = []
        for (host, model), target in sorted(self._targets.items()):
            width = target.tokens.width
            complete = max(0, int((now - LAG_S - target.tokens.t0) // width))
            times, tokens = target.tokens.points()
            k = max(1, round(SMOOTH_S / width))
            values = [t or 0.0 for t in tokens[:complete]]
            smooth = [sum(values[max(0, i - k + 1): i + 1]) / (min(k, i + 1) * width) for i in range(len(values))]
            series.append(Series(f"{host} {model}", times[:complete], smooth, kind="step"))
        return chart(self._until(now, series), title=f"Aggregate output tok/s ({SMOOTH_S:g} s mean)",
                     x_label="seconds since the run started", y_label="tok/s")

    def busy_chart(self, now: float) -> str:
        """Busy sequences over time per host and model (the server's count where it gives one, else the
        records' busy intervals), with each inferred slot count as a dashed line, as SVG."""
        self.refresh(now)
        series, rules = [], []
        for key, timeline in sorted(self._server_busy.items()):
            times, busy = timeline.points()
            level = [math.nan if b is None else b for b in busy]  # a bucket without a sample breaks the line
            series.append(Series(f"{' '.join(filter(None, key))} (server)", times, level, kind="step"))
        for (host, model), target in sorted(self._targets.items()):
            if (host, model) not in self._server_busy and (host, "") not in self._server_busy:
                times, busy = target.busy.points()
                level = [(b or 0.0) / target.busy.width for b in busy]
                series.append(Series(f"{host} {model} (records)", times, level, kind="step"))
            if target.estimate is not None and target.estimate.value is not None:
                slots = "slot" if target.estimate.value == 1 else "slots"
                rules.append(Rule(float(target.estimate.value),
                                  f"{host} {model}: {slots_text(target.estimate)} {slots} inferred"))
        return chart(self._until(now, series), title="Busy sequences", x_label="seconds since the run started",
                     y_label="sequences", rules=rules)

    def _until(self, now: float, series: list[Series]) -> list[Series]:
        """``series`` with a missing value at ``now`` (drawn as nothing), so both charts span the run so far."""
        end = now - self.started_at
        return [replace(s, x=[*s.x, end], y=[*s.y, math.nan]) for s in series]


def _failures(failures: Counter[str]) -> str:
    """"0", or the total and its classes: "3 (timeout 2, http_5xx 1)"."""
    total = sum(failures.values())
    if not total:
        return "0"
    return f"{total} ({', '.join(f'{name} {n}' for name, n in failures.most_common())})"
