"""What every scenario model shares: frozen, no unknown keys (with a "did you mean"), no secrets, and
tagged unions that name their valid kinds.

Models are validated in one of two modes, chosen by the validation context:
- from YAML (the default): written forms and sugar are accepted (``_prepare``), and keys that only a
  loaded scenario carries (resolved prompt lists, the source hash) are refused;
- from a payload (``context={"payload": True}``): the canonical form ``model_dump`` produced, as is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, ClassVar, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    model_validator,
)

from loadgen.scenario.errors import FieldProblem, did_you_mean, one_of, show

#: Keys that would put a secret into the file. The message points to ``api_key_env``.
SECRET_KEYS = frozenset({"api_key", "apikey", "token", "bearer", "bearer_token", "password", "secret", "authorization"})

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def from_payload(info: ValidationInfo | None) -> bool:
    """Whether this validation reads a payload (canonical form) rather than a YAML file."""
    return bool(info and info.context and info.context.get("payload"))


def context_value(info: ValidationInfo | None, key: str) -> Any:
    """A value of the validation context (``base_dir`` in YAML mode), or ``None``."""
    return info.context.get(key) if info and info.context else None


def check_keys(data: Mapping[Any, Any], allowed: Iterable[str]) -> None:
    """Refuse the first key not in ``allowed``, suggesting the closest one; refuse secrets outright."""
    allowed = sorted(allowed)
    for key in data:
        if key in allowed:
            continue
        if str(key).lower() in SECRET_KEYS:
            raise FieldProblem(
                "secrets do not belong in a scenario file; put the token in an environment variable "
                "and name it with api_key_env (e.g. api_key_env: OLLAMA_API_KEY)",
                key,
            )
        hint = did_you_mean(key, allowed) or f"; valid keys: {one_of(allowed)}"
        raise FieldProblem(f"unknown key {key!r}{hint}", key)


class Spec(BaseModel):
    """A frozen scenario model that refuses unknown keys by name.

    Subclasses may accept extra written forms: ``_yaml_only`` lists keys accepted only in YAML (sugar,
    rewritten by ``_prepare``), ``_payload_only`` lists fields accepted only in payloads.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    _yaml_only: ClassVar[frozenset[str]] = frozenset()
    _payload_only: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def yaml_keys(cls) -> frozenset[str]:
        """The keys a scenario file may write for this model."""
        return (frozenset(cls.model_fields) - cls._payload_only) | cls._yaml_only

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, data: Any, info: ValidationInfo) -> Any:
        if from_payload(info) or isinstance(data, cls):
            return data
        if isinstance(data, dict):
            check_keys(data, cls.yaml_keys())
        return cls._prepare(data, info)

    @classmethod
    def _prepare(cls, data: Any, info: ValidationInfo) -> Any:
        """Rewrite a written form into the canonical one (YAML mode only). The default keeps it."""
        return data


def tagged_union(
    key: str,
    members: Mapping[str, type[Spec]],
    *,
    what: str,
    infer: Callable[[dict[str, Any]], str | None],
    missing: str | None = None,
) -> Any:
    """A union of models chosen by ``data[key]`` (or ``infer(data)`` when the key is absent).

    Errors name the valid choices; a missing key first gets the unknown-key check against every
    member's keys, so a typo in the key itself is reported as such; ``missing`` replaces the message
    for a value whose kind cannot be told. Tags appear in validation-error locations as ``<value>``,
    which never clashes with a key in the data.
    """

    def tag_of(value: Any) -> str | None:
        if isinstance(value, dict):
            tag = value.get(key, infer(value))
        else:
            tag = next((tag for tag, member in members.items() if type(value) is member), None)
        return f"<{tag}>" if isinstance(tag, str) and tag in members else None

    def check(value: Any, info: ValidationInfo) -> Any:
        if from_payload(info) or isinstance(value, tuple(members.values())):
            return value
        if not isinstance(value, dict):
            raise FieldProblem(f"must be a mapping (key: value), got {show(value)}")
        if key in value:
            tag = value[key]
            if not isinstance(tag, str):
                raise FieldProblem(f"must be one of {one_of(members)}, got {show(tag)}", key)
            if tag not in members:
                hint = did_you_mean(tag, members)
                raise FieldProblem(f"unknown {what} {show(tag)}; expected one of {one_of(members)}{hint}", key)
        else:
            tag = infer(value)
            if tag is None:
                check_keys(value, frozenset().union(*(member.yaml_keys() for member in members.values())))
                raise FieldProblem(missing or f"is required: one of {one_of(members)}", *(() if missing else (key,)))
        own = members[tag].yaml_keys()
        for name in value:
            owners = [] if name in own else [other for other, member in members.items() if name in member.yaml_keys()]
            if owners:
                raise FieldProblem(f"{name!r} applies to {key}: {' or '.join(owners)}, not {tag}", name)
        return value

    variants = tuple(Annotated[member, Tag(f"<{tag}>")] for tag, member in members.items())
    return Annotated[Union[variants], Discriminator(tag_of), BeforeValidator(check)]  # noqa: UP007


def _check_name(value: Any) -> Any:
    if isinstance(value, str) and not _NAME.fullmatch(value):
        raise FieldProblem(f"must be 1-64 letters, digits, '_', '.' or '-', got {show(value)}")
    return value


def check_model_name(value: Any) -> Any:
    """Refuse an empty model name or one with spaces."""
    if isinstance(value, str) and (not value.strip() or any(ch.isspace() for ch in value)):
        raise FieldProblem(f"must be a model name without spaces, got {show(value)}")
    return value


#: A name used in records, stats and file names: ``[A-Za-z0-9_.-]{1,64}``.
Name = Annotated[str, Field(strict=True), BeforeValidator(_check_name)]
#: A model name as the server knows it, e.g. ``llama3.2:latest``.
ModelName = Annotated[str, Field(strict=True, max_length=200), BeforeValidator(check_model_name)]


def within(lo: int, hi: int) -> Any:
    """Field metadata for a whole number in ``[lo, hi]``: ``Annotated[StrictInt, within(1, 1024)]``."""
    return Field(ge=lo, le=hi)


def positive_up_to(hi: float) -> Any:
    """Field metadata for a number in ``(0, hi]`` (whole numbers too): ``Annotated[float, positive_up_to(1e6)]``."""
    return Field(strict=True, gt=0, le=hi, allow_inf_nan=False)


def unique_names(names: Iterable[str], field: str, *tail: str) -> None:
    """Refuse a repeated name in a list, pointing at the repeat (``field[index].<tail>``)."""
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in seen:
            raise FieldProblem(f"duplicate name {name!r} (also {field}[{seen[name]}])", field, index, *tail)
        seen[name] = index
