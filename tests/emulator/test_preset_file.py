"""A preset from a file (a fitted twin): its fields over a base preset, and a measured decode table."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from emulator.config import ConfigError
from emulator.preset_file import FORMAT, load_preset_file
from emulator.presets import PRESETS
from tests.helpers import start_emulator


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "twin.yaml"
    path.write_text(text)
    return str(path)


def test_the_file_lays_its_fields_and_table_over_its_base(tmp_path):
    path = write(tmp_path, f"format: {FORMAT}\nbase: cpu\npreset: {{solo_tps: 40, min_output: 20.0}}\n"
                           "batch_slowdown: {4: 2.5, 2: 1.5}\nsource: {runs: [a]}\n")
    base, preset = load_preset_file(path)
    assert base == "cpu" and preset.solo_tps == 40.0 and preset.min_output == 20
    assert preset.prefill_tps == PRESETS["cpu"].prefill_tps  # from the base
    assert preset.batch_slowdown == ((2, 1.5), (4, 2.5))


def test_the_table_holds_where_it_reaches_and_the_contention_form_beyond(tmp_path):
    _, preset = load_preset_file(write(tmp_path, f"format: {FORMAT}\npreset: {{contention: 0.5}}\n"
                                                 "batch_slowdown: {2: 1.5, 4: 2.5}\n"))
    assert preset.slowdown(1) == 1.0
    assert preset.slowdown(2) == 1.5 and preset.slowdown(4) == 2.5
    assert preset.slowdown(3) == pytest.approx(2.0)  # halfway between 1.5 and 2.5
    assert preset.slowdown(5) == pytest.approx(1 + 0.5 * 4)  # beyond the table: 1 + contention (b - 1)
    assert PRESETS["m1"].slowdown(4) == pytest.approx(1 + PRESETS["m1"].contention * 3)  # no table


@pytest.mark.parametrize("text, message", [
    ("format: other/1\n", "format must be 'ollama-loadtest.twin/1'"),
    (f"format: {FORMAT}\nbase: tpu\n", "base must be one of m1, gpu, cpu, fast"),
    (f"format: {FORMAT}\npreset: {{solo_tsp: 3}}\n", "preset.solo_tsp is not a preset field"),
    (f"format: {FORMAT}\npreset: {{solo_tps: -3}}\n", "preset.solo_tps must be a number >= 0"),
    (f"format: {FORMAT}\nbatch_slowdown: {{1: 1.0}}\n", "batch sizes must be whole numbers >= 2"),
    (f"format: {FORMAT}\nbatch_slowdown: {{2: 0.5}}\n", "batch_slowdown[2] must be >= 1"),
    ("- a list\n", "must hold a mapping"),
])
def test_a_bad_file_is_one_line_naming_the_field(tmp_path, text, message):
    with pytest.raises(ConfigError) as caught:
        load_preset_file(write(tmp_path, text))
    assert message in str(caught.value)


@pytest.mark.integration
def test_the_emulator_decodes_at_the_tables_speed(tmp_path):
    # solo 100 tok/s, two sequences decoding together each at 100 / 4 = 25 tok/s (the emulator's own eval_duration).
    # Sent a moment d apart, the first decodes 100 d tokens alone, then the rest at 25: 200 tokens take
    # d + (200 - 100 d) / 25 = 8 - 3 d s, under 200 / 50 = 4 s (half the solo speed) for any d below 1.3 s.
    path = write(tmp_path, f"format: {FORMAT}\nbase: fast\npreset: {{solo_tps: 100, jitter: 0}}\n"
                           "batch_slowdown: {2: 4.0}\n")
    emu = start_emulator(preset_file=path, num_parallel=2)
    try:
        body = {"model": "llama3.2", "prompt": "hi", "stream": False, "options": {"num_predict": 200}}
        with httpx.Client(timeout=30) as client:
            alone = client.post(f"{emu.url}/api/generate", json=body).json()
            with httpx.Client(timeout=30) as other:
                answers: list[dict] = []
                threads = [threading.Thread(target=lambda c=c: answers.append(c.post(
                    f"{emu.url}/api/generate", json=body).json())) for c in (client, other)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
    finally:
        emu.stop()
    assert alone["eval_count"] / (alone["eval_duration"] / 1e9) == pytest.approx(100, rel=0.01)
    speeds = sorted(a["eval_count"] / (a["eval_duration"] / 1e9) for a in answers)
    assert 25 * 0.99 <= speeds[0] < 100 / 2
