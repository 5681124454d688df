"""Effective parallel slots per host and model, by three independent estimators.

1. Overlap: the server busy intervals ``[t_end - prefill - decode, t_end]`` swept into a concurrency step
   function. The server can be serving m requests at once only if it has m slots, but network jitter
   makes brief false overlaps. So level m counts as reached when the server was busy with at least m
   requests for at least ``SUSTAINED`` of the time the clients had at least m requests in flight (the
   only time it could have been); the estimate is the highest such m. If that is also the highest m the
   clients offered long enough to judge, the server may have more slots: a lower bound.
2. Fit: Little's law per level gives mean requests in flight N, in service L and waiting Q. A server with
   k slots serves ``L = min(rho*N, k)`` and queues ``Q = max(0, rho*N - k)``, rho being the in-service share
   of a request's time at the lowest level; k is the integer of least squared error over the levels.
3. Server metrics: the most busy slots the server itself reported (llama.cpp ``/metrics``), a lower bound
   unless requests were queued at the time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.busy import steps, time_at_least

SUSTAINED = 0.25  # share of the clients' time at >= m in flight that the server must also be at >= m
SUPPORT_SHARE = 0.02  # a level needs this share of the clients' busy time (and one service time) to be judged


@dataclass(frozen=True, slots=True)
class Estimate:
    value: int | None
    lower_bound: bool = False  # the load never offered enough concurrency to find the ceiling

    def __str__(self) -> str:
        if self.value is None:
            return "n/a"
        return f">= {self.value}" if self.lower_bound else str(self.value)

    def agrees(self, other: Estimate) -> bool:
        """Both estimates are compatible: equal, or a lower bound at or below the other value."""
        if self.value is None or other.value is None:
            return True
        if self.lower_bound and other.lower_bound:
            return True
        if self.lower_bound:
            return self.value <= other.value
        if other.lower_bound:
            return other.value <= self.value
        return self.value == other.value


def overlap_levels(records: pd.DataFrame) -> pd.DataFrame:
    """Per level m: clients' time with >= m in flight, server time with >= m busy, their ratio, and the
    share of server busy time spent at exactly m. ``records`` are one target's successful requests."""
    r = records.dropna(subset=["busy_start"])
    if r.empty:
        return pd.DataFrame(columns=["m", "client_s", "server_s", "share", "supported", "occupancy"])
    client = time_at_least(steps(r["t_start"].to_numpy(), r["t_end"].to_numpy()))
    server = time_at_least(steps(r["busy_start"].to_numpy(), r["t_end"].to_numpy()))
    server = np.pad(server, (0, max(0, len(client) - len(server))))[: len(client)]
    m = np.arange(1, len(client))
    exact = server[m] - np.append(server[m[1:]], 0.0)
    floor = max(SUPPORT_SHARE * client[1], float(r["service_s"].median()))
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame(
            {
                "m": m,
                "client_s": client[m],
                "server_s": server[m],
                "share": server[m] / client[m],
                "supported": client[m] >= floor,
                "occupancy": exact / server[1] if server[1] > 0 else np.nan,
            }
        )


def overlap_estimate(levels: pd.DataFrame) -> Estimate:
    """Estimator 1 from ``overlap_levels``."""
    if levels.empty:  # no request with server timers or a client-side estimate of them
        return Estimate(None)
    judged = levels[levels["supported"]]
    reached = judged[judged["share"] >= SUSTAINED]
    if reached.empty:
        return Estimate(None)
    k = int(reached["m"].max())
    return Estimate(k, lower_bound=k == int(judged["m"].max()))


def fit_estimate(curve: pd.DataFrame) -> Estimate:
    """Estimator 2 from one target's saturation curve (``in_flight``, ``in_service``, ``waiting``)."""
    c = curve.dropna(subset=["in_flight", "in_service", "x"]).sort_values("x")
    c = c[c["in_flight"] > 0]
    if c.empty:
        return Estimate(None)
    rho = min(1.0, float(c["in_service"].iloc[0] / c["in_flight"].iloc[0]))
    offered = rho * c["in_flight"].to_numpy()
    served = c["in_service"].to_numpy()
    waiting = c["waiting"].to_numpy(dtype=float)
    known = ~np.isnan(waiting)
    candidates = np.arange(1, math.ceil(offered.max()) + 2)
    errors = [
        np.sum((served - np.minimum(offered, k)) ** 2)
        + np.sum((waiting[known] - np.maximum(0, offered[known] - k)) ** 2)
        for k in candidates
    ]
    k = int(candidates[int(np.argmin(errors))])
    return Estimate(k, lower_bound=offered.max() < k + 0.5)


def metrics_estimate(server_metrics: pd.DataFrame | None, host: str) -> tuple[Estimate, int | None]:
    """Estimator 3: the most busy slots ``host`` reported, and its reported total slots."""
    if server_metrics is None or "busy" not in server_metrics:
        return Estimate(None), None
    rows = server_metrics[server_metrics["host"].astype(str) == host]
    busy = pd.to_numeric(rows["busy"], errors="coerce")
    if busy.dropna().empty:
        return Estimate(None), None
    peak = int(busy.max())
    queued = pd.to_numeric(rows.get("queued"), errors="coerce") if "queued" in rows else pd.Series(dtype=float)
    saturated = bool(((busy == peak) & (queued.reindex(busy.index) > 0)).any())
    total = pd.to_numeric(rows.get("total_slots"), errors="coerce") if "total_slots" in rows else None
    configured = int(total.max()) if total is not None and total.notna().any() else None
    return Estimate(peak, lower_bound=not saturated), configured


def configured_slots(info: dict[str, Any], host: str) -> int | None:
    """The slot count run.json says the host was set up with (embedded settings), if it says."""
    for entry in info.get("hosts") or []:
        if isinstance(entry, dict) and entry.get("name") == host:
            settings = entry.get("settings") or {}
            for key in ("slots", "num_parallel", "parallel", "n_parallel", "OLLAMA_NUM_PARALLEL"):
                value = settings.get(key) if isinstance(settings, dict) else None
                if isinstance(value, int | float) and not isinstance(value, bool):
                    return int(value)
    return None
