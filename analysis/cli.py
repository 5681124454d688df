"""``python -m analysis report RUN``, ``python -m analysis compare RUN...`` and ``python -m analysis fit RUN...``.

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
from analysis.twin import fit_twin, summary_lines, write_twin
from analysis.twin.fit import BASES, DEFAULT_BASE

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
    fit = sub.add_parser("fit", help="fit an emulator preset (the twin) to runs of one host and model: the preset "
                         "file and its fit report", description="Fit the emulator's speed model to measured runs of "
                         "one host and model (e.g. a sweep over slot counts) and write the preset file the emulator "
                         "reads plus a fit report beside it (same name, .md). Exit 2 with one line when the runs "
                         "cannot support a fit.")
    fit.add_argument("runs", nargs="+", metavar="RUN", help="run directories of the same host and model")
    fit.add_argument("--out", type=Path, default=Path("twin.yaml"), help="the preset file to write (default: "
                     "twin.yaml in the current directory); the report goes beside it with the suffix .md")
    fit.add_argument("--host", help="the host to fit, by its scenario name (needed only when the runs measured "
                     "several)")
    fit.add_argument("--model", help="the model to fit (needed only when the runs measured several)")
    fit.add_argument("--base", default=DEFAULT_BASE, choices=BASES,
                     help=f"emulator preset that fills every field the fit leaves out (default: {DEFAULT_BASE})")
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


def _fit(args: argparse.Namespace) -> int:
    """``fit``: the twin of the runs' host and model, written, and a short summary printed."""
    twin = fit_twin([load_run(path) for path in args.runs], args.host, args.model, args.base)
    paths = write_twin(twin, args.out)
    print("\n".join(summary_lines(twin, paths)))
    return EXIT_OK


def main(argv: Sequence[str] | None = None, prog: str = "python -m analysis") -> int:
    """``report``, ``compare`` or ``fit``; the exit code (see the module's docstring)."""
    args = _parser(prog).parse_args(argv)
    try:
        if args.command == "fit":
            return _fit(args)
        slo = dict(args.slo)
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
