"""``/api/pull``: a registry with every model; a pulled model is served from then on, as in Ollama."""

from __future__ import annotations

import json

import pytest

from tests.emulator.conftest import HTTP, ndjson
from tests.helpers import start_emulator

pytestmark = pytest.mark.integration


@pytest.fixture
def empty_emulator(tmp_path):
    """An emulator with nothing pulled, like a fresh Ollama."""
    catalog = tmp_path / "models.json"
    catalog.write_text("[]")
    emu = start_emulator(models=str(catalog))
    yield emu
    emu.stop()


def tags(emu) -> list[str]:
    return [model["name"] for model in HTTP.get(f"{emu.url}/api/tags").json()["models"]]


def test_a_fresh_store_is_empty_and_a_pulled_model_is_served(empty_emulator):
    emu = empty_emulator
    assert tags(emu) == []
    missing = HTTP.post(f"{emu.url}/api/generate", json={"model": "llama3.2", "prompt": "hi", "stream": False})
    assert (missing.status_code, missing.json()) == (404, {"error": "model 'llama3.2' not found"})

    pulled = HTTP.post(f"{emu.url}/api/pull", json={"model": "llama3.2"})
    assert pulled.status_code == 200 and pulled.headers["content-type"] == "application/x-ndjson"
    lines = ndjson(pulled)
    statuses = [line["status"] for line in lines]
    assert statuses[0] == "pulling manifest" and statuses[-3:] == ["verifying sha256 digest", "writing manifest",
                                                                    "success"]
    (layer,) = [line for line in lines if "digest" in line]
    assert layer["completed"] == layer["total"] > 0 and layer["status"] == f"pulling {layer['digest'][7:19]}"

    assert tags(emu) == ["llama3.2:latest"]
    answer = HTTP.post(f"{emu.url}/api/generate", json={"model": "llama3.2", "prompt": "hi", "stream": False,
                                                        "options": {"num_predict": 3}})
    assert answer.status_code == 200 and answer.json()["done"] is True


def test_pull_without_streaming_answers_success_once_and_twice_is_harmless(empty_emulator):
    emu = empty_emulator
    for _ in range(2):
        answer = HTTP.post(f"{emu.url}/api/pull", json={"name": "qwen3:0.6b", "stream": False})
        assert (answer.status_code, answer.json()) == (200, {"status": "success"})
    assert tags(emu) == ["qwen3:0.6b"]


@pytest.mark.parametrize("body, message", [
    ({}, "invalid model name"),
    ({"model": "two words"}, "invalid model name"),
    ({"model": 7}, "json: cannot unmarshal number into Go struct field PullRequest.model of type string"),
])
def test_a_bad_pull_is_refused_as_ollama_refuses_it(empty_emulator, body, message):
    answer = HTTP.post(f"{empty_emulator.url}/api/pull", content=json.dumps(body))
    assert (answer.status_code, answer.json()) == (400, {"error": message})
