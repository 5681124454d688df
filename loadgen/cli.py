"""``ollama-loadtest``: the suite's commands behind one entry point.

Each command keeps its own options and ``--help``; the work is done by the module that owns it, imported
only when its command runs (the emulator must not share a process with Locust's gevent patching).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import NamedTuple

PROG = "ollama-loadtest"


class Command(NamedTuple):
    summary: str
    run: Callable[[list[str]], int]


def _run(argv: list[str]) -> int:
    from loadgen.variants import main

    return main(argv, prog=f"{PROG} run")


def _whatif(argv: list[str]) -> int:
    from loadgen.whatif.command import main

    return main(argv, prog=f"{PROG} whatif")


def _check(argv: list[str]) -> int:
    import argparse

    from loadgen.scenario import check

    parser = argparse.ArgumentParser(prog=f"{PROG} check", description=COMMANDS["check"].summary)
    parser.add_argument("files", nargs="+", metavar="FILE", help="scenario YAML file")
    return max(check(file) for file in parser.parse_args(argv).files)


def _analysis(command: str) -> Callable[[list[str]], int]:
    def analyse(argv: list[str]) -> int:
        from analysis.cli import main

        return main([command, *argv], prog=PROG)

    return analyse


def _emulator(argv: list[str]) -> int:
    from emulator.__main__ import main

    return main(argv)


COMMANDS: dict[str, Command] = {
    "run": Command("run a scenario headless (once per variant), write each report, compare the variants", _run),
    "whatif": Command("predict a scenario on a measured server's twin for other settings", _whatif),
    "check": Command("check scenario files without running anything", _check),
    "report": Command("write report.html, report.md and summary.json for a run directory", _analysis("report")),
    "compare": Command("put runs side by side: compare.html, compare.md, compare.json", _analysis("compare")),
    "fit": Command("fit an emulator preset (the twin) to measured runs: twin.yaml and its report twin.md",
                   _analysis("fit")),
    "emulator": Command("serve the Ollama emulator (Ollama's API and scheduler, modelled speed)", _emulator),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"usage: {PROG} COMMAND [ARGS...]   ({PROG} COMMAND --help for a command's options)", "", "commands:"]
    lines += [f"  {name:<{width}}  {command.summary}" for name, command in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``argv`` (default: the process's arguments) to its command; the command's exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"{PROG}: error: unknown command {args[0]!r}\n{usage()}", file=sys.stderr)
        return 2
    return command.run(args[1:])
