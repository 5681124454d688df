"""The report names what a run measured: the engine's real version (never llama.cpp's ``b0-unknown``
placeholder) and, when the client's read time timed the first tokens, says so."""

from __future__ import annotations

from typing import Any

import pytest

from analysis.analyze import analyze
from analysis.report import overview
from analysis.target import targets
from tests.analysis.helpers import run_of, served

URL = "http://127.0.0.1:8080"


def described(**host: Any) -> str:
    (target,) = targets({"hosts": [{"name": "h1", "url": URL, **host}]})
    return target.describe()


@pytest.mark.parametrize(
    "host, text",
    [
        ({"embedded": "llamacpp", "server": "llamacpp", "version": "xllamacpp 2026.10.11549"},
         f"h1: an embedded llama.cpp server (xllamacpp 2026.10.11549) at {URL}, a real engine started by the run"),
        ({"embedded": "llamacpp", "server": "llamacpp", "version": "b0-unknown"},  # a run recorded before the fix
         f"h1: an embedded llama.cpp server (version unknown) at {URL}, a real engine started by the run"),
        ({"server": "llamacpp", "version": "b6123-1a2b3c4d"}, f"h1: llamacpp b6123-1a2b3c4d at {URL}"),
        ({"server": "llamacpp", "version": "b0-unknown"}, f"h1: llamacpp at {URL}"),
        ({"server": "ollama", "version": "0.12.3"}, f"h1: ollama 0.12.3 at {URL}"),
    ],
    ids=["embedded-wheel", "embedded-placeholder", "external-build", "external-placeholder", "ollama"],
)
def test_a_target_is_named_by_its_real_version(host: dict[str, Any], text: str):
    assert described(**host) == text


def test_the_report_says_when_the_client_clock_timed_first_tokens():
    host = {"server": "ollama", "version": "0.12.3"}
    assert described(**host, first_token_clock="kernel_receive") == f"h1: ollama 0.12.3 at {URL}"
    client_read = described(**host, first_token_clock="client_read")
    assert client_read.startswith(f"h1: ollama 0.12.3 at {URL}; its first tokens were timed when the client read")
    info = {"hosts": [{"name": "h1", "url": URL, **host, "first_token_clock": "client_read"}]}
    assert client_read in overview(analyze(run_of([served(0.0, 0.0, 0.1, 1.0)], info=info)))
