"""``scenarios/shared-prefix.yaml`` end to end: a real Locust run against the emulator, shortened, whose report
finds the prompt-cache hits the emulator's trace says it served, and shows TTFT with a hit well below TTFT
without one."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from analysis.analyze import analyze
from analysis.load import load_run
from analysis.prompt_cache import cache_hits
from analysis.render_md import render_md
from analysis.report import build_report
from analysis.summary import summary
from tests.helpers import REPO, with_trace

pytestmark = pytest.mark.integration

SCENARIO = REPO / "scenarios" / "shared-prefix.yaml"
#: The manual and the documents, by the emulator's count: 800 and 600 words at 1.3 tokens a word at least.
PREFIX_TOKENS = {"support": 1040, "rag": 780}


@pytest.mark.timeout(400)
def test_the_report_finds_the_hits_the_emulator_served_and_their_shorter_ttft(run_locust, tmp_path: Path):
    scenario = yaml.safe_load(SCENARIO.read_text())
    trace_file = tmp_path / "trace.jsonl"
    scenario["hosts"][0]["settings"].update(speed=10, trace_file=str(trace_file))
    support, rag = scenario["workloads"]
    support.update(think_time={"min": 0.05, "max": 0.2}, prompts={"file": str(SCENARIO.parent / "prompts/chat.txt")})
    rag["pause"] = 1  # its misses, evaluated in one step, stall the chats that join it: seldom
    scenario["load"].update(duration="12s", stop_timeout="60s")
    run = run_locust(scenario, timeout=300)
    records = with_trace(run.records, trace_file)
    assert (records.error == "").all(), records.error_detail.unique()

    # every request led by its prefix, and the emulator served some from its cache and some not
    assert (records.prompt_tokens >= records.workload.map(PREFIX_TOKENS)).all()
    assert (records.cached_tokens_server > 0).any() and (records.cached_tokens_server == 0).any()

    analysis = analyze(load_run(run.dir))
    cache = analysis.prompt_cache
    assert cache is not None and cache.reported == 0  # Ollama's API reports no cached tokens: all inferred
    assert {line.split(":")[0] for line in cache.prefixes} == {"workload support", "workload rag"}
    # each judged request beside what the emulator did: the tokens it had cached, of how many
    found = cache_hits(analysis.run.records)  # no warm-up here: the requests the report judged
    assert (found.hit.sum(), len(found.hit)) == (cache.hits, cache.judged)
    served = records.set_index("request_id")
    judged = analysis.run.records.loc[found.hit.index]
    ids = judged.session_id.astype(str) + "/" + judged.step.astype(int).astype(str)  # the trace's request ids
    cached = served.cached_tokens_server[ids].to_numpy()
    hit = found.hit.to_numpy()
    # no request the emulator evaluated whole is taken for a hit; of the hits it served over most of their
    # prompt, the report finds at least half (one evaluated beside other prompts has a timer holding their work)
    substantial = cached >= served.prompt_tokens[ids].to_numpy() / 2
    assert not (hit & (cached == 0)).any()
    assert hit[substantial].mean() >= 0.5, (hit[substantial].sum(), substantial.sum())
    # TTFT with a hit is well below TTFT without one, in each workload that had both
    table = cache.table.set_index("workload")
    both = table.dropna(subset=["ttft_p50_hit_s", "ttft_p50_miss_s"])
    assert not both.empty, table
    assert (both.ttft_p50_hit_s < both.ttft_p50_miss_s / 3).all(), both
    # and the report says so, with how the hits were found
    markdown = render_md(build_report(analysis))
    assert "## Prompt cache" in markdown and "How hits are found" in markdown
    assert summary(analysis)["prompt_cache"]["hits"] == cache.hits
