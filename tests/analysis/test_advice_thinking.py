"""Thinking advice by hand: requests of a thinking model cut by the output limit before any visible content."""

from __future__ import annotations

from typing import Any

from tests.analysis.helpers import advice_on, record, run_of

HIT = ("{workload} (m): {n} requests hit the output limit while still thinking (no visible content): raise "
       "num_predict or lower the thinking budget")


def answer(done_reason: str, content: bool, **fields: Any) -> dict[str, Any]:
    """A thinking model's streamed answer: thinking from 0.2 s, visible content from 1.0 s when ``content``, the
    end at 2.0 s for ``done_reason``."""
    return record(t_start=0.0, t_first_thinking=0.2, t_first_token=1.0 if content else None, t_end=2.0,
                  thinking_tokens=50, done_reason=done_reason, **fields)


def test_thinking_cut_by_the_output_limit_is_counted_per_workload():
    rows = [
        answer("length", content=False),  # counted
        answer("length", content=False),  # counted
        answer("length", content=True),  # cut by the limit, but visible content had begun
        answer("stop", content=False),  # no content, but the model stopped by itself
        answer("length", content=False, status=0, error="timeout"),  # failed: not a budget problem
        answer("length", content=False, workload="agent"),  # counted, for agent
    ]
    # chat: 2 of its 5; agent: 1
    assert advice_on(run_of(rows), "thinking") == [HIT.format(workload="agent", n=1), HIT.format(workload="chat", n=2)]


def test_no_advice_when_thinking_always_reached_content():
    rows = [answer("stop", content=True), answer("length", content=True)]
    assert advice_on(run_of(rows), "thinking") == []
