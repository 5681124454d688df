"""A preset from a file: the twin ``ollama-loadtest fit`` writes of a measured server.

```yaml
format: ollama-loadtest.twin/1
base: m1                       # the preset that fills every field not given below
preset: {solo_tps: 52.1, parallel_penalty: 0.03, contention: 0.41, prefill_tps: 900, load_s: 1.2}
batch_slowdown: {2: 1.37, 4: 2.61}   # r(1)/r(b) by sequences decoding together, measured
```

Other keys (``source``, ``fit``: where the numbers came from) are the fit's record and are not read.
"""

from __future__ import annotations

import math
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Final

from emulator.config import ConfigError
from emulator.presets import PRESETS, Preset

FORMAT: Final = "ollama-loadtest.twin/1"
_INT_FIELDS: Final = frozenset({"min_output", "max_output", "message_overhead", "prompt_overhead"})


def load_preset_file(path: str) -> tuple[str, Preset]:
    """(the base preset's name, the preset the file describes); raises ``ConfigError`` naming the file and field."""
    data = _read(Path(path))
    where = f"--preset-file {path}"
    if data.get("format") != FORMAT:
        raise ConfigError(f"{where}: format must be {FORMAT!r} (a file written by ollama-loadtest fit), "
                          f"got {data.get('format')!r}")
    base_name = data.get("base", "m1")
    if base_name not in PRESETS:
        raise ConfigError(f"{where}: base must be one of {', '.join(PRESETS)}, got {base_name!r}")
    values = data.get("preset") or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: preset must be a mapping of preset fields")
    known = {f.name for f in fields(Preset)} - {"batch_slowdown"}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}: preset.{key} is not a preset field; fields: {', '.join(sorted(known))}")
        changes[key] = int(_number(value, f"{where}: preset.{key}")) if key in _INT_FIELDS \
            else _number(value, f"{where}: preset.{key}")
    table = _table(data.get("batch_slowdown") or {}, f"{where}: batch_slowdown")
    return base_name, replace(PRESETS[base_name], **changes, batch_slowdown=table)


def _read(path: Path) -> dict[str, Any]:
    import yaml  # a project dependency, needed only for preset files

    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"--preset-file: cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--preset-file: {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--preset-file: {path} must hold a mapping (format, base, preset, batch_slowdown)")
    return data


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{where} must be a number >= 0, got {value!r}")
    return float(value)


def _table(raw: object, where: str) -> tuple[tuple[int, float], ...]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must map a batch size to a slowdown, e.g. {{2: 1.4, 4: 2.6}}")
    table = []
    for key, value in raw.items():
        if isinstance(key, bool) or not isinstance(key, int) or key < 2:
            raise ConfigError(f"{where}: batch sizes must be whole numbers >= 2, got {key!r}")
        slowdown = _number(value, f"{where}[{key}]")
        if slowdown < 1:
            raise ConfigError(f"{where}[{key}] must be >= 1 (each sequence decodes at most as fast as alone), "
                              f"got {value!r}")
        table.append((key, slowdown))
    return tuple(sorted(table))
