"""``python -m analysis report RUN`` and ``python -m analysis compare RUN...``.

Exit codes: 0 fine, 1 an SLO failed (so CI can gate on it; in a capacity search, whose probes beyond capacity
break the SLOs by design: the capacity fell short of its gate), 2 unusable input (one line on stderr), 3 the
analysis itself failed (a bug: its traceback on stderr; never Python's default 1, which would read as an SLO
failure).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analysis.analyze import Analysis, analyze
from analysis.compare import build_compare, compare_summary
from analysis.errors import InputError
from analysis.load import load_run
from analysis.render_html import render_html
from analysis.render_md import render_md
from analysis.report import build_report
from analysis.slo import valid_key
from analysis.summary import summary

EXIT_OK, EXIT_SLO, EXIT_INPUT, EXIT_BUG = 0, 1, 2, 3


def _slo(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = None
    if not sep or number is None or not valid_key(key):
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=SECONDS, KEY like e2e_p95_s, ttft_p99_s, "
                                         "slot_wait_p95_s, or error_rate=FRACTION")
    return key, number


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--slo", type=_slo, action="append", default=[], metavar="KEY=VALUE",
                        help="override an SLO threshold (repeatable), e.g. --slo ttft_p95_s=2")
    common.add_argument("--out", type=Path, help="directory for the outputs (default: the run directory; for "
                        "compare the current directory)")
    report = sub.add_parser("report", parents=[common], help="report.html, report.md and summary.json for one run")
    report.add_argument("run", help="a run directory, or a Locust --csv prefix / directory of Locust CSVs")
    report.add_argument("--window", type=float, help="seconds per window of the over-time percentiles")
    report.add_argument("--capacity-min", type=float, metavar="N", help="a capacity search must have found at "
                        "least N users (or req/s), else exit 1 (overrides capacity.json's min)")
    compare = sub.add_parser("compare", parents=[common], help="compare.html/.md/.json for runs side by side")
    compare.add_argument("runs", nargs="+", help="run directories")
    return parser


def _write(directory: Path, files: dict[str, str]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return [directory / name for name in files]


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, allow_nan=False) + "\n"


def _analyze(path: str, slo: dict[str, float], window: float | None = None,
             capacity_min: float | None = None) -> Analysis:
    return analyze(load_run(path), slo, window, capacity_min)


def _failure(a: Analysis) -> str:
    """Why ``a`` exits 1, in one line."""
    c = a.capacity
    if c is not None:
        return f"capacity below the gate in {a.run.name}: {c.value:g} {c.unit} < {c.min or 0:g}"
    fails = a.verdicts[a.verdicts["passed"] == False]  # noqa: E712
    return f"SLO failed in {a.run.name}: " + "; ".join(
        f"{r.workload} {r.slo} {r.observed:.3g} > {r.threshold:g}" for r in fails.itertuples())


def main(argv: Sequence[str] | None = None, prog: str = "python -m analysis") -> int:
    """``report`` or ``compare``; the exit code (see the module's docstring)."""
    args = _parser(prog).parse_args(argv)
    slo = dict(args.slo)
    try:
        if args.command == "report":
            a = _analyze(args.run, slo, args.window, args.capacity_min)
            doc = build_report(a)
            files = {"report.html": render_html(doc), "report.md": render_md(doc), "summary.json": _json(summary(a))}
            out = args.out or a.run.path
            assert out is not None  # a run read from a directory has its path
            paths = _write(out, files)
            failed = [a] if a.failed else []
            answers = [a.capacity.line] if a.capacity is not None else []
        else:
            analyses = [_analyze(run, slo) for run in args.runs]
            doc = build_compare(analyses)
            files = {"compare.html": render_html(doc), "compare.md": render_md(doc),
                     "compare.json": _json(compare_summary(analyses))}
            paths = _write(args.out or Path.cwd(), files)
            failed = [a for a in analyses if a.failed]
            answers = []
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_INPUT
    except Exception:
        traceback.print_exc()
        print("error: the analysis failed on this input (a bug; the traceback is above)", file=sys.stderr)
        return EXIT_BUG
    print("wrote " + ", ".join(str(p) for p in paths))
    for line in answers:
        print(line)
    for a in failed:
        print(_failure(a), file=sys.stderr)
    return EXIT_SLO if failed else EXIT_OK
