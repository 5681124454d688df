"""The models the emulator pretends to have pulled: names, details, capabilities, sizes.

``--models`` takes a comma list of names (known names take the built-in entry; others get a small
completion model's details, an embedding model's when the name contains ``embed``), or a JSON/YAML file
holding a list of objects with the fields of ``ModelInfo`` (only ``name`` is required).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final

from emulator.config import ConfigError

COMPLETION: Final = "completion"
TOOLS: Final = "tools"
THINKING: Final = "thinking"
EMBEDDING: Final = "embedding"
_CAPABILITIES: Final = frozenset({COMPLETION, TOOLS, THINKING, EMBEDDING, "vision", "insert"})
MODIFIED_AT: Final = "2026-08-01T12:00:00.000000000Z"
MODIFIED_AT_UNIX: Final = 1785585600


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model as ``/api/tags`` and ``/api/show`` describe it, plus its speed relative to the preset."""

    name: str  # normalized, always with a tag: "llama3.2:latest"
    family: str = "llama"
    parameter_size: str = "1B"
    quantization_level: str = "Q4_K_M"
    size: int = 1_000_000_000  # bytes on disk
    capabilities: tuple[str, ...] = (COMPLETION,)
    context_length: int = 131072  # training context; num_ctx is clamped to it
    embedding_length: int = 2048
    kv_bytes_per_token: int = 114_688  # KV cache per token of context, for /api/ps size
    speed: float = 1.0  # multiplies the preset's rates for this model

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.name.encode()).hexdigest()

    @property
    def is_embedding(self) -> bool:
        return COMPLETION not in self.capabilities

    @property
    def full_name(self) -> str:
        """Ollama's fully qualified name, as in ``registry.ollama.ai/library/gemma3:270m``."""
        namespace = "" if "/" in self.name else "library/"
        return f"registry.ollama.ai/{namespace}{self.name}"

    def details(self) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            "families": [self.family],
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization_level,
        }


BUILTIN: Final[tuple[ModelInfo, ...]] = (
    ModelInfo("llama3.2:latest", "llama", "3.2B", "Q4_K_M", 2_019_393_189, (COMPLETION, TOOLS), 131072, 3072, 114_688),
    ModelInfo(
        "qwen3:0.6b", "qwen3", "751.63M", "Q4_K_M", 522_653_767, (COMPLETION, TOOLS, THINKING), 40960, 1024, 114_688
    ),
    ModelInfo("gemma3:270m", "gemma3", "268.10M", "Q8_0", 291_554_930, (COMPLETION,), 32768, 640, 36_864),
    ModelInfo("nomic-embed-text:latest", "nomic-bert", "137M", "F16", 274_302_450, (EMBEDDING,), 2048, 768, 36_864),
)


def normalize_name(name: str) -> str:
    """Ollama's short name with a tag: ``llama3.2`` -> ``llama3.2:latest`` (case-insensitive match key)."""
    name = name.strip()
    for prefix in ("registry.ollama.ai/library/", "registry.ollama.ai/"):
        if name.lower().startswith(prefix):
            name = name[len(prefix) :]
    if ":" not in name.rpartition("/")[2]:
        name += ":latest"
    return name


class Catalog:
    """Lookup of models by any name Ollama accepts (``llama3.2``, ``llama3.2:latest``, case-insensitive)."""

    def __init__(self, models: tuple[ModelInfo, ...]) -> None:
        self.models = models  # may be empty: an Ollama with nothing pulled yet
        self._by_key = {m.name.lower(): m for m in models}

    def pull(self, name: str) -> ModelInfo:
        """Add ``name`` as if pulled from the registry (which, here, has every model); the model."""
        model = self.get(name)
        if model is None:
            model = _from_name(name)
            self.models = (*self.models, model)
            self._by_key[model.name.lower()] = model
        return model

    def get(self, name: str) -> ModelInfo | None:
        """The model called ``name``, or ``None``."""
        if not name:
            return None
        return self._by_key.get(normalize_name(name).lower())


def load_catalog(spec: str) -> Catalog:
    """The catalog from ``--models``: empty for the built-in one, a comma list of names, or a JSON/YAML file."""
    if not spec.strip():
        return Catalog(BUILTIN)
    path = Path(spec)
    if path.suffix.lower() in (".json", ".yaml", ".yml"):
        return Catalog(tuple(_from_mapping(item) for item in _read_file(path)))
    return Catalog(tuple(_from_name(n) for n in spec.split(",") if n.strip()))


def _from_name(name: str) -> ModelInfo:
    name = normalize_name(name)
    for model in BUILTIN:
        if model.name.lower() == name.lower():
            return model
    if "embed" in name.lower():
        return ModelInfo(name, family="bert", capabilities=(EMBEDDING,), context_length=2048, embedding_length=768)
    return ModelInfo(name)


def _read_file(path: Path) -> list[Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"--models: cannot read {path}: {exc}") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"--models: {path} is not valid JSON: {exc}") from None
    else:
        import yaml  # a project dependency, needed only for YAML catalogs

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--models: {path} is not valid YAML: {exc}") from None
    if isinstance(data, dict):
        data = data.get("models")
    if not isinstance(data, list):
        raise ConfigError(f"--models: {path} must hold a list of models (or {{models: [...]}})")
    return data


def _from_mapping(item: Any) -> ModelInfo:
    if isinstance(item, str):
        return _from_name(item)
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise ConfigError(f"--models: each model needs a name, got {item!r}")
    known = {f.name for f in fields(ModelInfo)}
    unknown = set(item) - known
    if unknown:
        raise ConfigError(f"--models: unknown field(s) {sorted(unknown)} in {item['name']!r}")
    values = dict(item)
    values["name"] = normalize_name(values["name"])
    if "capabilities" in values:
        caps = tuple(values["capabilities"])
        if not set(caps) <= _CAPABILITIES:
            raise ConfigError(
                f"--models: unknown capabilities in {item['name']!r}: {sorted(set(caps) - _CAPABILITIES)}"
            )
        values["capabilities"] = caps
    try:
        return ModelInfo(**values)
    except TypeError as exc:
        raise ConfigError(f"--models: {exc}") from None
