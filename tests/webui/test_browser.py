"""Headless Chromium renders the LLM tab and the chart page of a running test; screenshots are kept.

``chromium --dump-dom`` prints the DOM after the page's scripts ran for a virtual-time budget (the React
UI polls ``/stats/requests``; the chart page redraws itself), so the assertions read what a browser shows.
Screenshots go to ``artifacts/webui/`` (git-ignored).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser

import pytest

from tests.helpers import REPO, poll
from tests.webui.conftest import WebUi, fast_scenario

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = REPO / "artifacts" / "webui"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"),
]


def chromium(url: str, *action: str, budget_ms: int = 6000, size: str = "1400,700") -> str:
    """Run headless Chromium on ``url`` (loopback only, nothing in the background); returns stdout."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        argv = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", f"--window-size={size}", f"--virtual-time-budget={budget_ms}",
                *action, url]
        return subprocess.run(argv, capture_output=True, text=True, timeout=90, check=True).stdout


class Tables(HTMLParser):
    """Every table of a page as rows of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.tables and self.tables[-1]:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def llm_table(dom: str) -> list[dict[str, str]]:
    """The LLM tab's table as rendered: one dict per body row, keyed by the column titles."""
    parser = Tables()
    parser.feed(dom)
    for header, *body in (t for t in parser.tables if t):
        if "Slots inferred" in header:
            return [dict(zip(header, row, strict=True)) for row in body]
    raise AssertionError("no LLM table in the rendered page")


def test_a_browser_shows_the_llm_tab_and_the_live_chart(web_ui):
    ui: WebUi = web_ui(fast_scenario())
    assert ui.swarm(6)["success"]
    poll(lambda: len(ui.llm_rows()) == 2 and all(r["slots"] != "-" for r in ui.llm_rows()), "the LLM rows", 40)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    rows = llm_table(chromium(ui.url("?tab=llm"), "--dump-dom"))
    assert sorted(r["Workload"] for r in rows) == ["agent", "chat"]
    for row in rows:
        assert float(row["Output tok/s (30 s)"]) > 0
        assert row["TTFT p95"].endswith("ms") or row["TTFT p95"].endswith(" s")
        assert row["Slots inferred"] == "2"
    chromium(ui.url("?tab=llm"), f"--screenshot={ARTIFACTS / 'llm-tab.png'}")

    chart = chromium(ui.url("llm/chart"), "--dump-dom", budget_ms=5000)
    assert chart.count("<svg") == 2 and "<polyline" in chart and "2 slots inferred" in chart
    assert 'id="redrawn">, last at ' in chart  # the page's script fetched and redrew the charts
    chromium(ui.url("llm/chart"), f"--screenshot={ARTIFACTS / 'llm-chart.png'}", size="1000,1100")
    print(f"\nscreenshots: {ARTIFACTS / 'llm-tab.png'} {ARTIFACTS / 'llm-chart.png'}")
    assert (ARTIFACTS / "llm-tab.png").stat().st_size > 10_000
    assert ui.post("stop").json()["success"]
