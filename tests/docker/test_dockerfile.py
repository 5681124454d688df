"""docker/Dockerfile and .dockerignore, read as text: no Docker engine runs here."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n(\s*#.*\n)*", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            pairs.append((keyword.upper(), args.strip()))
    return pairs


def args_of(keyword: str) -> list[str]:
    return [args for kw, args in instructions() if kw == keyword]


def copy_sources() -> list[str]:
    """The build-context paths that COPY reads (flags such as --chown skipped)."""
    return [src for args in args_of("COPY") for src in [a for a in args.split() if not a.startswith("--")][:-1]]


def test_base_image_is_an_official_python_image_pinned_to_a_release() -> None:
    [default] = [a.split("=", 1)[1] for a in args_of("ARG") if a.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"python:3\.1[1-9]\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", default), default
    assert args_of("FROM") == ["${PYTHON_IMAGE}"]


def test_installs_the_package_and_its_dependencies() -> None:
    runs = " ".join(args_of("RUN"))
    assert "pip install -r /tmp/requirements.txt" in runs  # the dependencies, in a layer of their own
    assert re.search(r"pip install (--\S+ )*\.( |$)", runs), "the package itself: pip install ."
    assert {"pyproject.toml", "README.md", "analysis/", "emulator/", "loadgen/", "locustfiles/"} <= set(copy_sources())


def test_runs_locust_as_a_user_from_the_directory_with_locustfiles_and_scenarios() -> None:
    assert json.loads(args_of("ENTRYPOINT")[-1]) == ["locust"]
    user = args_of("USER")[-1]
    assert user not in {"root", "0"} and not user.startswith("0:")
    assert args_of("WORKDIR") == ["/app"]
    copied = copy_sources()
    assert "locustfiles/" in copied and "scenarios/" in copied
    env = " ".join(args_of("ENV"))
    assert "LOCUST_LOCUSTFILE=locustfiles" in env  # so `docker run IMAGE --worker ...` needs no -f


def test_exposes_the_web_ui_and_master_ports_and_a_results_volume() -> None:
    assert {port for args in args_of("EXPOSE") for port in args.split()} == {"8089", "5557"}
    assert json.loads(args_of("VOLUME")[-1]) == ["/app/results"]


def test_every_copy_source_exists_and_reaches_the_build_context() -> None:
    patterns = [p.strip().rstrip("/") for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    assert {".git", ".venv", "results", "benchmarks"} <= set(patterns)
    for src in copy_sources():
        assert not any(fnmatch.fnmatch(src.rstrip("/"), p) for p in patterns), f".dockerignore drops {src}"
    missing = [src for src in copy_sources() if not (ROOT / src).exists()]
    assert not missing, f"COPY sources missing from the repository: {missing}"
