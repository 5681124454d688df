"""Soak: over a long distributed run, does the memory of the master and its workers stay flat?

Starts an emulator and ``locust --processes N`` (a master and N workers) running a chat scenario with
``--users`` users for ``--minutes``, samples the resident memory (RSS) of every process every
``--interval`` seconds, and prints a Markdown table and a verdict per process: flat when its RSS grew by
at most ``--max-growth-mb`` between the first and the last minute after the warm-up (the ramp, pools and
caches filling). It also checks that nothing was lost: run.json complete, requests sent = records.

Usage: ``python benchmarks/soak.py [--minutes 10] [--users 200] [--workers 2]``. Exit code 0 when every
process stayed flat and every record arrived, 1 otherwise. Loopback only; bounded by ``--minutes``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers import (  # noqa: E402
    LocustRun,
    forked_workers,
    kill_group,
    locust_command,
    processes_args,
    read_run,
    start_emulator,
)

MB = 1024 * 1024


@dataclass
class Series:
    """One process's RSS samples."""

    name: str
    pid: int
    times: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)

    def sample(self, t: float) -> None:
        try:
            rss = psutil.Process(self.pid).memory_info().rss / MB
        except psutil.NoSuchProcess:
            return
        self.times.append(t)
        self.rss_mb.append(rss)

    def growth(self, warmup_s: float, window_s: float = 60.0) -> tuple[float, float, float]:
        """Median RSS in the first minute after the warm-up, in the last minute, and the difference (MB)."""
        after = [(t, r) for t, r in zip(self.times, self.rss_mb, strict=True) if t >= warmup_s]
        if len(after) < 2:
            return float("nan"), float("nan"), float("nan")
        first = statistics.median(r for t, r in after if t <= after[0][0] + window_s)
        last = statistics.median(r for t, r in after if t >= after[-1][0] - window_s)
        return first, last, last - first


def scenario(url: str, users: int, minutes: float) -> dict:
    """A chat load that keeps ``users`` conversations going against the emulator at ``url``."""
    return {
        "name": "soak",
        "model": "llama3.2:latest",
        "hosts": [{"name": "emu", "url": url}],
        "options": {"num_predict": 16, "temperature": 0},
        "workloads": [{"name": "chat", "kind": "chat", "turns": {"min": 2, "max": 5},
                       "think_time": {"min": 1, "max": 3}}],
        "load": {"users": users, "spawn_rate": max(1, users // 10), "duration": f"{minutes * 60:.0f}s",
                 "stop_timeout": "60s"},
    }


def soak(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    emu = start_emulator(preset="fast", num_parallel=64)
    path = work / "soak.yaml"
    path.write_text(yaml.safe_dump(scenario(emu.url, args.users, args.minutes)))
    command = [*locust_command(path, work / "results", *processes_args(args.workers)), "--loglevel", "INFO"]
    log = (work / "locust.log").open("w")
    proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    print(f"soak: {args.users} users, {args.workers} workers, {args.minutes:g} min; files in {work}", flush=True)
    try:
        series = [Series("master", proc.pid)]
        workers = forked_workers(proc.pid, args.workers)
        series += [Series(f"worker {i + 1}", worker.pid) for i, worker in enumerate(workers)]
        series.append(Series("emulator", emu.proc.pid))
        start = time.monotonic()
        while proc.poll() is None:
            for s in series:
                s.sample(time.monotonic() - start)
            try:
                proc.wait(args.interval)
            except subprocess.TimeoutExpired:
                pass
        run = read_run(work / "results", proc.returncode, (work / "locust.log").read_text())
    finally:
        kill_group(proc)  # the master, and any worker it left behind
        log.close()
        emu.stop()
    return report(series, run, args)


def report(series: list[Series], run: LocustRun, args: argparse.Namespace) -> int:
    """Print the samples, the verdicts and the reconciliation; the exit code."""
    print("\n| t (s) | " + " | ".join(f"{s.name} RSS (MB)" for s in series) + " |")
    print("|---:|" + "---:|" * len(series))
    for i, t in enumerate(series[0].times):
        cells = [f"{s.rss_mb[i]:.1f}" if i < len(s.rss_mb) else "" for s in series]
        print(f"| {t:.0f} | " + " | ".join(cells) + " |")
    warmup_s = args.warmup_minutes * 60
    print(f"\nAfter the {args.warmup_minutes:g}-minute warm-up (median of the first and of the last minute):\n")
    print("| process | first MB | last MB | growth MB | verdict |\n|---|---:|---:|---:|---|")
    flat = True
    for s in series:
        first, last, growth = s.growth(warmup_s)
        ok = growth <= args.max_growth_mb
        if s.name != "emulator":  # the emulator is the target, shown for reference only
            flat = flat and ok
        print(f"| {s.name} | {first:.1f} | {last:.1f} | {growth:+.1f} | {'flat' if ok else 'GROWING'} |")
    workers = run.info["workers"]
    sent = sum(w["requests_sent"] for w in workers)
    received = sum(w["records_received"] for w in workers)
    whole = run.info["complete"] and sent == received == len(run.records)
    print(f"\nrequests: {len(run.records)} records, {sent} sent, {received} received, "
          f"{(run.records.error != '').sum()} failed; run.json complete: {run.info['complete']}")
    print(f"verdict: memory {'flat' if flat else 'GROWING'} (threshold {args.max_growth_mb:g} MB), "
          f"records {'all there' if whole else 'MISSING'}")
    return 0 if flat and whole else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--interval", type=float, default=10, help="seconds between RSS samples")
    parser.add_argument("--warmup-minutes", type=float, default=2, help="left out of the verdict")
    parser.add_argument("--max-growth-mb", type=float, default=15, help="growth after the warm-up still called flat")
    return soak(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
