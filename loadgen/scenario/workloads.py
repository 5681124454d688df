"""The three workload kinds, a tagged union on ``kind``: multi-turn chat, agent loops with tool calls,
and batches of documents fired at once.

As written, a workload's ``models``, ``options`` and ``slo`` are overrides; the scenario resolves them
(``Scenario`` in ``_scenario``), so a loaded workload carries its effective values.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StrictInt, ValidationInfo, field_validator, model_validator

from loadgen.scenario.conversations import Conversations
from loadgen.scenario.dists import Constant, Dist, DistIn, Normal, Uniform
from loadgen.scenario.errors import FieldProblem, show
from loadgen.scenario.hosts import Models
from loadgen.scenario.options import Options, Slo, check_json
from loadgen.scenario.prefix import Prefix
from loadgen.scenario.prompts import Prompts
from loadgen.scenario.spec import Name, Spec, check_model_name, positive_up_to, tagged_union, unique_names, within
from loadgen.scenario.units import DAY, HOUR

_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def models_from_sugar(data: Any) -> Any:
    """``model: x`` is written for ``models: [x]``."""
    if not isinstance(data, dict) or "model" not in data:
        return data
    if "models" in data:
        raise FieldProblem("set model (one) or models (a list), not both", "models")
    data = dict(data)
    model = data.pop("model")
    if not isinstance(model, str):
        hint = "; for several, write models: [a, b]" if isinstance(model, list) else ""
        raise FieldProblem(f"must be one model name, got {show(model)}{hint}", "model")
    try:
        check_model_name(model)
    except FieldProblem as problem:
        raise FieldProblem(problem.message, "model") from None
    data["models"] = [model]
    return data


def _check_tool_name(value: Any) -> Any:
    if isinstance(value, str) and not _TOOL_NAME.fullmatch(value):
        raise FieldProblem(f"must be 1-64 letters, digits, '_' or '-', got {show(value)}")
    return value


class ToolFunction(Spec):
    name: Annotated[str, Field(strict=True), BeforeValidator(_check_tool_name)]
    description: Annotated[str, Field(strict=True)] = ""
    parameters: dict[str, Any] = {"type": "object", "properties": {}}

    @field_validator("parameters")
    @classmethod
    def _check_parameters(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type") != "object":
            raise FieldProblem(f"must be a JSON Schema with type: object, got type {show(value.get('type'))}", "type")
        properties = value.get("properties", {})
        if not isinstance(properties, dict) or not all(isinstance(p, dict) for p in properties.values()):
            raise FieldProblem("must map each parameter name to its JSON Schema", "properties")
        required = value.get("required", [])
        if not isinstance(required, list):
            raise FieldProblem(f"must be a list of parameter names, got {show(required)}", "required")
        for index, name in enumerate(required):
            if not isinstance(name, str) or name not in properties:
                raise FieldProblem(f"names {show(name)}, which is not in properties", "required", index)
        check_json(value)
        return value


class Tool(Spec):
    """An OpenAI-style function tool, sent with every agent-loop request."""

    type: Literal["function"]
    function: ToolFunction


def _tool(name: str, description: str, **params: str) -> Tool:
    properties = {param: {"type": "string", "description": text} for param, text in params.items()}
    return Tool.model_validate(
        {
            "type": "function",
            "function": {
                "name": name,
                "description": description,
                "parameters": {"type": "object", "properties": properties, "required": list(params)},
            },
        }
    )


DEFAULT_TOOLS = (
    _tool("read_file", "Read a file from the repository.", path="Path of the file to read."),
    _tool("search", "Search the repository for text.", query="Text or regular expression to look for."),
    _tool("run_tests", "Run the test suite, or the tests under a path.", path="Test file or directory."),
)


class ToolResult(Spec):
    """The simulated tool: output size in words and time taken, per call."""

    words: Annotated[Dist, DistIn(lo=0, hi=100_000, integer=True)] = Normal(mean=80, sd=30, min=5)
    latency: Annotated[Dist, DistIn(lo=0, hi=HOUR, duration=True)] = Uniform(min=0.05, max=0.5)


class _Workload(Spec):
    """What every kind has. Exactly one of ``weight`` (share of users) and ``users`` (a fixed count)."""

    name: Name
    weight: Annotated[float, positive_up_to(1e6)] | None = None
    users: Annotated[StrictInt, within(1, 100_000)] | None = None
    models: Models | None = None  # None as written = the scenario's models
    endpoint: Literal["chat", "generate"] = "chat"
    options: Options = Options()
    slo: Slo = Slo()
    prefix: Prefix | None = None  # the same leading text on every request of a session
    if TYPE_CHECKING:  # every kind has prompts, with its own default
        prompts: Prompts

    _yaml_only = frozenset({"model"})

    @classmethod
    def _prepare(cls, data: Any, info: ValidationInfo) -> Any:
        data = models_from_sugar(data)
        if isinstance(data, dict) and data.get("weight") is None and data.get("users") is None:
            data = {**data, "weight": 1}
        return data

    @model_validator(mode="after")
    def _check(self) -> _Workload:
        if self.weight is not None and self.users is not None:
            raise FieldProblem("set weight (a share of the users) or users (a fixed count), not both", "users")
        if self.endpoint == "generate" and any(isinstance(item, tuple) for item in self.prompts.items):
            raise FieldProblem("prompts with chat messages need endpoint: chat", "prompts")
        return self


class ChatWorkload(_Workload):
    """Conversations: each user message waits for the reply, then the user thinks, then writes again."""

    kind: Literal["chat"] = "chat"
    prompts: Prompts = Prompts.model_validate({"synthetic": {"words": {"min": 8, "max": 40}}})
    system_prompt: Annotated[str, Field(strict=True)] | None = None
    turns: Annotated[Dist, DistIn(lo=1, hi=10_000, integer=True)] = Uniform(min=2, max=6)
    think_time: Annotated[Dist, DistIn(lo=0, hi=DAY, duration=True)] = Uniform(min=1, max=5)
    conversations: Conversations | None = None  # a dataset to replay instead of prompts and turns

    @classmethod
    def _prepare(cls, data: Any, info: ValidationInfo) -> Any:
        data = super()._prepare(data, info)
        if isinstance(data, dict) and data.get("conversations") is not None:
            for key in ("prompts", "turns"):
                if key in data:
                    raise FieldProblem(f"set {key} or conversations, not both: a conversation brings its own user "
                                       "turns", key)
        return data


class AgentLoopWorkload(_Workload):
    """Agent jobs: a task prompt, then steps of model call -> tool call -> tool result fed back."""

    kind: Literal["agent_loop"] = "agent_loop"
    prompts: Prompts = Prompts.model_validate({"synthetic": {"words": {"min": 15, "max": 60}}})
    steps: Annotated[Dist, DistIn(lo=1, hi=10_000, integer=True)] = Uniform(min=3, max=6)
    tools: Annotated[tuple[Tool, ...], Field(min_length=1)] = DEFAULT_TOOLS
    tool_result: ToolResult = ToolResult()

    @model_validator(mode="after")
    def _check_agent(self) -> AgentLoopWorkload:
        if self.endpoint != "chat":
            raise FieldProblem("agent loops send tools, which only the chat endpoint takes", "endpoint")
        unique_names([tool.function.name for tool in self.tools], "tools", "function", "name")
        return self


class BatchWorkload(_Workload):
    """Batches: ``batch_size`` documents sent at once, then a pause."""

    kind: Literal["batch"] = "batch"
    endpoint: Literal["chat", "generate"] = "generate"
    prompts: Prompts = Prompts.model_validate(
        {"synthetic": {"words": {"mean": 300, "sd": 100, "min": 50, "max": 1000}}}
    )
    batch_size: Annotated[StrictInt, within(1, 10_000)] = 4
    pause: Annotated[Dist, DistIn(lo=0, hi=DAY, duration=True)] = Constant(value=0)


KINDS: dict[str, type[_Workload]] = {"agent_loop": AgentLoopWorkload, "chat": ChatWorkload, "batch": BatchWorkload}
if TYPE_CHECKING:  # what a type checker sees; at run time, the tagged union of the same members validates
    Workload = AgentLoopWorkload | ChatWorkload | BatchWorkload
else:
    Workload = tagged_union("kind", KINDS, what="workload kind", infer=lambda data: None)
