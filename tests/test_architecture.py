"""The project's import structure, read from the source with ``ast`` (nothing is imported or run).

Every import of a project module counts as a dependency: at module level, under ``if TYPE_CHECKING:``,
and inside functions. A lazy import inside a function does not fail at import time, but it is still a
dependency of the design, and a circle through one is still a circle: the modules cannot be understood,
tested or moved apart from each other. (Lazy imports of third-party modules, e.g. pandas kept out of
light commands, are untouched by this: only project modules form the graph.)

The rules:

- no import circle among the modules of ``analysis``, ``emulator``, ``loadgen`` and ``locustfiles``
  (an import of ``a.b.c`` is an edge to ``a.b.c`` alone: Python runs the packages ``a`` and ``a.b``
  first, but a package that re-exports its own submodules is no circle);
- the scenario schema (``loadgen.scenario``) and the wire protocol (``loadgen.wire.protocol``) are pure:
  they import neither locust nor gevent, even indirectly through other project modules;
- ``analysis`` reads run directories only: it imports nothing from ``loadgen``, ``emulator`` or locust;
- no module imports a ``_``-prefixed module of another package (``pkg._private`` is for ``pkg`` alone).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("analysis", "emulator", "loadgen", "locustfiles")


@dataclass(frozen=True)
class Import:
    """One import statement's target, as written (absolute) and where it stands."""

    module: str  # the imported module, or for ``from m import name`` the module ``m``
    names: tuple[str, ...]  # for ``from m import a, b``: a, b; for ``import m``: ()
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((REPO / package).rglob("*.py"))}


def imports_of(name: str, path: Path) -> Iterator[Import]:
    """Every import in the module, wherever it stands (module level, ``if TYPE_CHECKING:``, functions)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield Import(module, tuple(alias.name for alias in node.names), node.lineno)


def targets(imp: Import, modules: dict[str, Path]) -> list[str]:
    """The modules an import depends on: ``from pkg import sub`` names the submodule ``pkg.sub``."""
    found = [f"{imp.module}.{n}" for n in imp.names if f"{imp.module}.{n}" in modules]
    if len(found) < len(imp.names) or not imp.names:
        found.append(imp.module)
    return found


def graph() -> dict[str, dict[str, int]]:
    """module -> {imported module (project or third-party): first line}."""
    modules = project_modules()
    edges: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        out = edges.setdefault(name, {})
        for imp in imports_of(name, path):
            for target in targets(imp, modules):
                if target != name:
                    out.setdefault(target, imp.line)
    return edges


def project_edges(edges: dict[str, dict[str, int]]) -> dict[str, list[str]]:
    return {m: sorted(t for t in out if t in edges) for m, out in edges.items()}


def find_cycle(deps: dict[str, list[str]], within: set[str] | None = None) -> list[str] | None:
    """One import circle as a path ``[a, b, ..., a]`` (among ``within`` only, if given), or ``None``."""
    nodes = set(deps) if within is None else within
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in sorted(nodes):
        if root in state:
            continue
        path: list[str] = [root]
        stack: list[Iterator[str]] = [iter(deps[root])]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif nxt not in nodes:
                continue
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(deps[nxt]))
    return None


def tangles(deps: dict[str, list[str]]) -> list[set[str]]:
    """The groups of modules that import each other, directly or not (strongly connected, 2+ modules)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(module: str) -> None:
        order[module] = low[module] = len(order)
        stack.append(module)
        for nxt in deps[module]:
            if nxt not in order:
                visit(nxt)
                low[module] = min(low[module], low[nxt])
            elif nxt in stack:
                low[module] = min(low[module], order[nxt])
        if low[module] == order[module]:
            group = set()
            while not group or module not in group:
                group.add(stack.pop())
            if len(group) > 1 or module in deps[module]:
                groups.append(group)

    for module in sorted(deps):
        if module not in order:
            visit(module)
    return groups


def circles(deps: dict[str, list[str]]) -> list[list[str]]:
    """One circle through each tangle (fixing them all may need more than one cut per tangle)."""
    found = [find_cycle(deps, group) for group in tangles(deps)]
    return sorted(c for c in found if c is not None)


def reachable(start: str, deps: dict[str, list[str]]) -> dict[str, str | None]:
    """Every project module ``start`` depends on, directly or not: module -> the module that imports it."""
    seen: dict[str, str | None] = {start: None}
    todo = [start]
    while todo:
        module = todo.pop()
        for nxt in deps[module]:
            if nxt not in seen:
                seen[nxt] = module
                todo.append(nxt)
    return seen


def chain(module: str, parents: dict[str, str | None]) -> str:
    links = [module]
    while (parent := parents[links[-1]]) is not None:
        links.append(parent)
    return " <- ".join(links)


def top(module: str) -> str:
    return module.partition(".")[0]


MODULES = project_modules()
EDGES = graph()
DEPS = project_edges(EDGES)


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    """Module-level, TYPE_CHECKING-only, function-level and relative imports all count (a check that reads
    nothing would pass)."""
    package = tmp_path / "pkg"
    package.mkdir()
    source = package / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import analysis.slots\n"
        "from emulator import app, nothing_of_that_name\n"
        "from . import sibling\n"
        "from .sub.deep import thing\n"
        "if TYPE_CHECKING:\n"
        "    from loadgen.plugin import Controller\n"
        "def f():\n"
        "    import loadgen.cli\n",
        encoding="utf-8",
    )
    imports = list(imports_of("pkg.mod", source))
    modules = {name: Path() for name in ("analysis.slots", "emulator.app", "loadgen.plugin", "loadgen.cli")}
    found = {target for imp in imports for target in targets(imp, modules)}
    assert found == {
        "typing", "analysis.slots", "emulator.app", "emulator", "pkg", "pkg.sub.deep", "loadgen.plugin", "loadgen.cli"
    }
    # ... and in the project: loadgen/__init__.py imports loadgen.users for type checking only, and the
    # plugin inside a function.
    assert len(DEPS) > 50
    assert {"loadgen.users", "loadgen.plugin"} <= set(DEPS["loadgen"])
    assert "emulator.app" in DEPS["emulator.__main__"]


def test_cycle_finder() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["b"]}) == ["b", "c", "b"]
    assert find_cycle({"a": ["a"]}) == ["a", "a"]
    deps = {"a": ["b"], "b": ["a", "c"], "c": ["d"], "d": ["c"], "e": ["a"]}
    assert circles(deps) == [["a", "b", "a"], ["c", "d", "c"]]
    assert circles({"a": ["b"], "b": []}) == []


def test_no_import_circles() -> None:
    found = circles(DEPS)
    report = []
    for cycle in found:
        report.append(" -> ".join(cycle))
        report += [f"    {a} imports {b} (line {EDGES[a][b]})" for a, b in zip(cycle, cycle[1:], strict=False)]
    assert not found, "import circles:\n" + "\n".join(report)


@pytest.mark.parametrize("pure", ["loadgen.scenario", "loadgen.wire.protocol"])
def test_pure_modules_import_neither_locust_nor_gevent(pure: str) -> None:
    roots = [m for m in DEPS if m == pure or m.startswith(pure + ".")]
    assert roots
    problems = []
    for root in roots:
        parents = reachable(root, DEPS)
        for module in parents:
            problems += [
                f"{chain(module, parents)} imports {target} (line {line})"
                for target, line in EDGES[module].items()
                if top(target) in ("locust", "gevent", "geventhttpclient")
            ]
    assert not problems, "\n".join(sorted(set(problems)))


#: The one edge from analysis into the emulator: the twin is a fit of the emulator's speed model, whose fields
#: and base presets live in ``emulator.presets`` (stdlib only, importing nothing of the emulator's server).
TWIN_MODEL = ("analysis.twin.fit", "emulator.presets")


def test_analysis_imports_no_load_generator_emulator_or_locust() -> None:
    problems = [
        f"{module} imports {target} (line {line})"
        for module, out in EDGES.items()
        if top(module) == "analysis"
        for target, line in out.items()
        if top(target) in ("loadgen", "emulator", "locustfiles", "locust", "gevent", "geventhttpclient")
        and (module, target) != TWIN_MODEL
    ]
    assert set(reachable("emulator.presets", DEPS)) <= {"emulator.presets", "emulator.config"}
    assert not problems, "\n".join(problems)


def test_no_private_module_of_another_package() -> None:
    """``pkg._private`` (a module whose own name starts with ``_``, dunders aside) is imported only from
    within ``pkg`` (its modules and subpackages)."""
    problems = []
    for module, out in EDGES.items():
        home = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        for target, line in out.items():
            package, _, leaf = target.rpartition(".")
            if target in MODULES and leaf.startswith("_") and not leaf.startswith("__"):
                if home != package and not home.startswith(package + "."):
                    problems.append(f"{module} imports {target} (line {line})")
    assert not problems, "\n".join(problems)
