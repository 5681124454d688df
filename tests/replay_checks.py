"""What every replay test checks in a run's records: each request of the schedule sent exactly once, due at
its recorded time, a session's turns in order and to one host, and no later than the replay can explain."""

from __future__ import annotations

import pandas as pd

from loadgen.scenario.load import Replay

#: Clock rounding: requests.csv keeps six decimals of epoch seconds.
ROUNDING_S = 2e-6


def schedule_frame(replay: Replay, begin: float) -> pd.DataFrame:
    """One row per request of the schedule: the session id and step its record carries (without the
    ``<worker>-`` prefix), its session index, the epoch time it was due, and whether it waits its turn."""
    return pd.DataFrame([
        {"key": replay.sessions[r.session].key, "step": r.step, "session": r.session, "due": begin + replay.due(i),
         "after": r.after}
        for i, r in enumerate(replay.requests)
    ])


def matched(records: pd.DataFrame, replay: Replay, begin: float) -> pd.DataFrame:
    """The records joined to the schedule; every scheduled request has exactly one record and every record
    a scheduled request."""
    sent = records.assign(key=records.session_id.str.split("-", n=1).str[1])
    joined = schedule_frame(replay, begin).merge(sent, on=["key", "step"], how="outer", indicator=True,
                                                 validate="one_to_one")
    assert (joined._merge == "both").all(), joined[joined._merge != "both"][["key", "step", "_merge"]]
    return joined.drop(columns="_merge")


def assert_sent_as_scheduled(sent: pd.DataFrame) -> pd.Series:
    """Each request (``matched`` rows) recorded with its due time, sent no earlier than it was due nor before
    the earlier requests of its session it waits for had ended, its session on one host. Returns each
    request's excess lag: how much later it went out than the schedule and its session's order allowed."""
    assert ((sent.t_scheduled - sent.due).abs() < ROUNDING_S).all(), sent[["key", "step", "t_scheduled", "due"]]
    assert sent.groupby("key").host.nunique().eq(1).all(), sent[["key", "step", "host"]]
    allowed = sent.due.copy()
    for index, request in sent[sent.after].iterrows():
        earlier = sent[(sent.key == request.key) & (sent.due < request.due)]
        allowed[index] = max(request.due, earlier.t_end.max())
    excess = sent.t_start - allowed
    assert (excess > -ROUNDING_S).all(), sent.assign(excess=excess)[["key", "step", "due", "t_start", "excess"]]
    return excess
