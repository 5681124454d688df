"""Which user classes a run runs: a scenario's workloads, or the classes of a user's own locustfile.

A locustfile's concrete ``LLMUser`` subclasses declare their workload by class attributes named like the
scenario's workload fields (``model``, ``options``, ``prompts``, ``turns``, ``think_time``, ``steps``,
``tools``, ``batch_size``...), and Locust's own ``weight``, ``fixed_count`` and ``host``; they become a
scenario (validated like a YAML file, errors naming the class and attribute) so that a run of them gets
what a YAML workload gets. Their classes run as written: nothing of a user's locustfile is dropped.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from loadgen.scenario.errors import FieldProblem, Problem, ScenarioError, did_you_mean, format_path, problems_from
from loadgen.scenario.scenario import Scenario
from loadgen.scenario.workloads import KINDS
from loadgen.users.agent import AgentLoopUser
from loadgen.users.base import LLMUser
from loadgen.users.batch import BatchUser
from loadgen.users.chat import ChatUser

KIND_CLASSES: dict[str, type[LLMUser]] = {cls.kind: cls for cls in (AgentLoopUser, BatchUser, ChatUser)}

#: Fields a class may not set by attribute: Locust's own attributes stand for them.
_LOCUST_SET = frozenset({"name", "kind", "weight", "users"})
#: Class attributes that apply to the whole run rather than one workload.
RUN_ATTRIBUTES = ("host", "api")


class ScenarioUser(LLMUser):
    """Stands for the workloads of ``--scenario`` until it loads (they replace it); Locust needs a user
    class in the locustfile before any scenario is known."""

    abstract = False


def declared_classes(user_classes: Iterable[type[Any]]) -> list[type[LLMUser]]:
    """The ``LLMUser`` classes a user's locustfile defines (not the scenario's stand-in)."""
    return [c for c in user_classes if issubclass(c, LLMUser) and not issubclass(c, ScenarioUser)]


def workload_fields(cls: type[LLMUser]) -> dict[str, Any]:
    """The workload ``cls`` declares, as a scenario file would write it. A plain value whose name is close
    to a field's (``tunrs = 3``) is taken for a typo: ``FieldProblem``."""
    allowed = (set(KINDS[cls.kind].yaml_keys()) | {"model"}) - _LOCUST_SET
    written: dict[str, Any] = {}
    for klass in reversed(cls.__mro__[: cls.__mro__.index(KIND_CLASSES[cls.kind])]):
        for key, value in vars(klass).items():
            if key in allowed:
                written[key] = value
            elif _is_plain_value(key, value) and (hint := did_you_mean(key, allowed)):
                raise FieldProblem(f"is not a workload setting{hint}", key)
    count = {"users": cls.fixed_count} if cls.fixed_count else {"weight": cls.weight}
    return {"name": cls.__name__, "kind": cls.kind, **count, **written}


def scenario_of_classes(classes: Sequence[type[LLMUser]], host: str | None = None) -> Scenario:
    """The scenario a locustfile's classes declare: their workloads against ``host`` (``-H``), else the host
    the classes name, else the embedded emulator; a steady load that ``-u``, ``-r`` and ``-t`` size.
    Raises ``ScenarioError`` naming the class and attribute at fault."""
    file = _file_of(classes[0])
    workloads = []
    for cls in classes:
        try:
            workloads.append(workload_fields(cls))
        except FieldProblem as problem:
            where = format_path((cls.__name__, *problem.path))
            raise ScenarioError.single(_file_of(cls), problem.message, path=where) from None
    data: dict[str, Any] = {"name": Path(file).stem, "workloads": workloads}
    for attribute in RUN_ATTRIBUTES:
        values = {getattr(cls, attribute) for cls in classes if getattr(cls, attribute, None) is not None}
        if attribute == "host" and host:
            values = {host}
        if len(values) > 1:
            raise ScenarioError.single(file, f"the classes name different values ({', '.join(sorted(values))}); a "
                                       "run's workloads share its hosts and API: pass --hosts URL,URL to spread every "
                                       "class over several hosts", path=attribute)
        if values:
            value = values.pop()
            data.update(hosts=[{"name": "host", "url": value}] if attribute == "host" else {attribute: value})
    try:
        return Scenario.model_validate(data, context={"base_dir": Path(file).parent})
    except ValidationError as err:
        names = [cls.__name__ for cls in classes]
        raise ScenarioError([_on_class(problem, names) for problem in problems_from(err, file, None)]) from None


def classes_for(scenario: Scenario, declared: Sequence[type[LLMUser]] = ()) -> list[type[LLMUser]]:
    """The user classes that run ``scenario``: a declared class for each workload it declared (given the
    validated workload), a new subclass of the workload's kind for each other workload."""
    own = {cls.__name__: cls for cls in declared}
    classes = []
    for workload in scenario.workloads:
        cls = own.get(workload.name)
        if cls is not None:
            cls.workload = workload
        else:
            attrs: dict[str, object] = {"workload": workload, "abstract": False, "__module__": __name__}
            attrs.update({"fixed_count": workload.users} if workload.users else {"weight": workload.weight})
            cls = type(workload.name, (KIND_CLASSES[workload.kind],), attrs)
        classes.append(cls)
    return classes


def _is_plain_value(name: str, value: object) -> bool:
    return not name.startswith("_") and not callable(value) and not isinstance(value, (classmethod, staticmethod,
                                                                                       property))


def _file_of(cls: type[Any]) -> str:
    try:
        return inspect.getfile(cls)
    except TypeError:  # a class made at run time
        return f"<{cls.__module__}>"


def _on_class(problem: Problem, names: list[str]) -> Problem:
    """A problem at ``workloads[i].field`` restated as ``ClassName.field``."""
    prefix = "workloads["
    if not problem.path.startswith(prefix):
        return problem
    index, _, rest = problem.path[len(prefix):].partition("]")
    return Problem(problem.file, None, names[int(index)] + rest, problem.message)
