"""docker/compose.yaml: its structure read with PyYAML, and the file as a real Compose tool resolves it.

The structural tests need nothing but PyYAML. The tool tests run ``config`` (which needs no Docker
engine) with ``docker compose`` or ``docker-compose`` when one is installed, and skip otherwise; they start
processes, so they are ``integration``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

DOCKER_DIR = Path(__file__).resolve().parents[2] / "docker"
COMPOSE_FILE = DOCKER_DIR / "compose.yaml"
GPU_FILE = DOCKER_DIR / "compose.gpu.yaml"
ENV_EXAMPLE = DOCKER_DIR / ".env.example"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}; `$$` is a literal dollar.
INTERPOLATION = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<default>[^}]*)\}")
INSTALL_HINT = "apt-get install -y --no-install-recommends docker-compose (Debian), or Docker's compose plugin"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """compose.yaml as PyYAML reads it (anchors and `<<` merges resolved, `${...}` left as written)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def env_example() -> dict[str, str]:
    """The NAME=value lines of .env.example."""
    lines = (line.strip() for line in ENV_EXAMPLE.read_text().splitlines())
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def aliases(service: dict[str, Any]) -> list[str]:
    return service.get("networks", {}).get("default", {}).get("aliases", [])


# -- structure, no tool needed -------------------------------------------------------------------------


def test_services_and_the_profile_that_picks_the_target(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {"ollama", "emulator", "master", "worker", "prometheus", "grafana"}
    assert services["ollama"]["profiles"] == ["ollama"]
    assert services["emulator"]["profiles"] == ["emulator"]
    # Master and workers run with either profile, so neither has one, and neither may depend on a
    # profiled service (Compose v2 rejects a dependency on a profile that is off).
    for name in ("master", "worker"):
        assert "profiles" not in services[name]
        assert "depends_on" not in services[name]


def test_both_backends_answer_as_llm_which_the_master_targets(services: dict[str, dict[str, Any]]) -> None:
    assert "llm" in aliases(services["ollama"])
    assert "llm" in aliases(services["emulator"])
    master_env = services["master"]["environment"]
    assert master_env["LOCUST_LLM_HOSTS"] == "${LLM_TARGET:-http://llm:11434}"
    # ...and the master holds its start until that target answers (it probes hosts once, at init).
    assert services["master"]["entrypoint"][:2] == ["wait-for-hosts", "locust"]
    assert services["master"]["command"] == ["--master"]
    # The emulator must listen beyond its container's loopback, on Ollama's port.
    assert services["emulator"]["environment"]["OLLAMA_HOST"] == "0.0.0.0:11434"


@pytest.mark.parametrize("name", ["ollama", "emulator"])
def test_backends_have_a_healthcheck_and_the_server_settings(services: dict[str, dict[str, Any]], name: str) -> None:
    service = services[name]
    assert service["healthcheck"]["test"][0] == "CMD"
    assert {"OLLAMA_NUM_PARALLEL": "${OLLAMA_NUM_PARALLEL:-1}", "OLLAMA_MAX_QUEUE": "${OLLAMA_MAX_QUEUE:-512}",
            "OLLAMA_KEEP_ALIVE": "${OLLAMA_KEEP_ALIVE:-5m}"}.items() <= service["environment"].items()


def test_ollama_is_pinned_pulls_a_model_and_keeps_it_in_a_volume(compose: dict[str, Any]) -> None:
    ollama = compose["services"]["ollama"]
    default_tag = INTERPOLATION.fullmatch(ollama["image"].removeprefix("ollama/ollama:"))
    assert default_tag and re.fullmatch(r"\d+\.\d+\.\d+", default_tag["default"]), "pin an Ollama release"
    assert ollama["environment"]["OLLAMA_MODEL"].startswith("${OLLAMA_MODEL:-")
    assert ollama["entrypoint"][-1] == "/usr/local/bin/ollama-entrypoint.sh"
    assert "./ollama-entrypoint.sh:/usr/local/bin/ollama-entrypoint.sh:ro" in ollama["volumes"]
    assert "ollama-models:/root/.ollama" in ollama["volumes"] and "ollama-models" in compose["volumes"]


def test_worker_scales(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    # `--scale worker=N` needs N distinct containers: no fixed name, no host ports to collide on.
    assert not {"container_name", "hostname", "ports"} & worker.keys()
    assert worker["command"] == ["--worker", "--master-host", "master"]
    # WORKERS sets both the replicas and the number a headless master waits for.
    assert worker["deploy"]["replicas"] == "${WORKERS:-1}"
    assert services["master"]["environment"]["LOCUST_EXPECT_WORKERS"] == "${WORKERS:-1}"


def test_master_publishes_the_web_ui_on_loopback_and_writes_results(services: dict[str, dict[str, Any]]) -> None:
    master = services["master"]
    assert "${UI_BIND:-127.0.0.1}:${UI_PORT:-8089}:8089" in master["ports"]
    assert "${MASTER_BIND:-127.0.0.1}:${MASTER_PORT:-5557}:5557" in master["ports"]
    assert "${RESULTS_DIR:-../results}:/app/results" in master["volumes"]
    assert master["environment"]["LOCUST_SCENARIO"] == "${LOCUST_SCENARIO:-scenarios/chat.yaml}"


def test_suite_services_share_one_image_built_from_the_repository(services: dict[str, dict[str, Any]]) -> None:
    for name in ("emulator", "master", "worker"):
        assert services[name]["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
        assert services[name]["image"] == "${SUITE_IMAGE:-ollama-loadtest:latest}"


def strings(node: Any) -> list[str]:
    """Every string in a parsed YAML document, keys included (comments are gone by now)."""
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in strings(k) + strings(v)]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return [node] if isinstance(node, str) else []


def test_every_variable_has_a_default_that_env_example_documents(compose: dict[str, Any]) -> None:
    uses = [m for s in strings(compose) for m in INTERPOLATION.finditer(s)]
    assert uses, "no ${...} found: has the interpolation syntax changed?"
    without = sorted({m["name"] for m in uses if m["op"] != ":-"})
    assert not without, f"give these a ${{NAME:-default}}: {without}"
    defaults = {m["name"]: m["default"] for m in uses}
    # The same variable may appear several times, always with the same default.
    for m in uses:
        assert m["default"] == defaults[m["name"]], f"{m['name']} has two defaults"
    documented = {k: v for k, v in env_example().items() if not k.startswith("COMPOSE_")}
    assert documented == defaults


def test_no_secret_is_written_into_the_files() -> None:
    # API keys come from the environment only: the example leaves them empty and compose passes them on.
    assert env_example()["LOCUST_LLM_API_KEY"] == ""
    assert "${LOCUST_LLM_API_KEY:-}" in COMPOSE_FILE.read_text()


# -- the real tool --------------------------------------------------------------------------------------


def find_compose() -> list[str] | None:
    """The command of an installed Compose implementation: `docker compose` (v2) or `docker-compose`."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.fixture(scope="module")
def compose_tool() -> list[str]:
    command = find_compose()
    if command is None:
        pytest.skip(f"no Compose implementation (`docker compose` or `docker-compose`); install: {INSTALL_HINT}")
    return command


@pytest.fixture(scope="module")
def major_version(compose_tool: list[str]) -> int:
    out = subprocess.run([*compose_tool, "version", "--short"], capture_output=True, text=True, check=True).stdout
    return int(out.strip().lstrip("v").split(".")[0])


@pytest.fixture(scope="module")
def run_compose(compose_tool: list[str], tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    """Run the tool on compose.yaml with no settings but ``env``: an empty --env-file (a developer's
    docker/.env must not leak in) and a bare process environment."""
    empty = tmp_path_factory.mktemp("compose") / "empty.env"
    empty.write_text("")

    def run(*args: str, files: tuple[Path, ...] = (COMPOSE_FILE,), env: dict[str, str] | None = None) -> str:
        flags = [arg for f in files for arg in ("-f", str(f))]
        bare = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **(env or {})}
        result = subprocess.run([*compose_tool, "--env-file", str(empty), *flags, *args],
                                capture_output=True, text=True, env=bare, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    return run


def published(ports: list[Any]) -> set[tuple[str, str, int]]:
    """(host IP, host port, container port) of each port; v1 prints short strings, v2 long mappings."""
    out = set()
    for port in ports:
        if isinstance(port, str):
            ip, host, container = port.removesuffix("/tcp").rsplit(":", 2)
            out.add((ip, host, int(container)))
        else:
            out.add((port.get("host_ip", ""), str(port["published"]), int(port["target"])))
    return out


@pytest.mark.integration
@pytest.mark.parametrize("profile", ["emulator", "ollama"])
def test_config_resolves_each_profile_with_its_defaults(run_compose: Callable[..., str], profile: str) -> None:
    config = yaml.safe_load(run_compose("--profile", profile, "config"))
    master = config["services"]["master"]
    assert master["environment"]["LOCUST_LLM_HOSTS"] == "http://llm:11434"
    assert master["environment"]["LOCUST_HEADLESS"] == "false"
    assert {("127.0.0.1", "8089", 8089), ("127.0.0.1", "5557", 5557)} == published(master["ports"])
    assert config["services"]["worker"]["deploy"]["replicas"] == 1
    assert profile in config["services"]


@pytest.mark.integration
def test_config_takes_settings_from_the_environment(run_compose: Callable[..., str]) -> None:
    settings = {"LLM_TARGET": "http://host.docker.internal:11434", "WORKERS": "4", "OLLAMA_NUM_PARALLEL": "4",
                "LOCUST_SCENARIO": "scenarios/batch.yaml"}
    out = run_compose("--profile", "ollama", "config", env=settings)
    services = yaml.safe_load(out)["services"]
    assert services["master"]["environment"]["LOCUST_LLM_HOSTS"] == "http://host.docker.internal:11434"
    assert services["master"]["environment"]["LOCUST_SCENARIO"] == "scenarios/batch.yaml"
    assert services["worker"]["deploy"]["replicas"] == 4
    assert str(services["ollama"]["environment"]["OLLAMA_NUM_PARALLEL"]) == "4"


@pytest.mark.integration
def test_gpu_override_merges_into_ollama(run_compose: Callable[..., str]) -> None:
    config = yaml.safe_load(run_compose("--profile", "ollama", "config", files=(COMPOSE_FILE, GPU_FILE)))
    ollama = config["services"]["ollama"]
    [device] = ollama["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"] and device["driver"] == "nvidia"
    assert ollama["image"] == "ollama/ollama:0.32.15"  # the base definition survives the merge


@pytest.mark.integration
def test_emulator_profile_leaves_ollama_out(run_compose: Callable[..., str], major_version: int) -> None:
    listed = set(run_compose("--profile", "emulator", "config", "--services").split())
    if major_version < 2:  # v1 validates profiles but lists every service here
        assert {"emulator", "master", "worker"} <= listed
    else:
        assert listed == {"emulator", "master", "worker"}


def test_monitoring_profile_scrapes_the_master_and_provisions_the_dashboard(
        services: dict[str, dict[str, Any]]) -> None:
    """Prometheus scrapes the port the master serves /metrics on; Grafana gets the datasource and the
    dashboard from files that exist; both only on loopback by default."""
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"]
        assert all(port.startswith("${MONITORING_BIND:-127.0.0.1}:") for port in services[name]["ports"])
        for volume in services[name]["volumes"]:
            assert (DOCKER_DIR / volume.split(":")[0]).exists(), volume
    config = yaml.safe_load((DOCKER_DIR / "monitoring/prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    assert job["static_configs"][0]["targets"] == [f"master:{services['master']['environment']['LOCUST_METRICS_PORT']}"]
    provisioning = DOCKER_DIR / "monitoring/grafana/provisioning"
    datasource = yaml.safe_load((provisioning / "datasources/prometheus.yaml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((provisioning / "dashboards/ollama-loadtest.yaml").read_text())
    mounted = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    assert (DOCKER_DIR / mounted[provider["providers"][0]["options"]["path"]] / "ollama-loadtest.json").exists()


@pytest.mark.integration
def test_config_resolves_the_monitoring_profile(run_compose: Callable[..., str]) -> None:
    config = yaml.safe_load(run_compose("--profile", "emulator", "--profile", "monitoring", "config"))
    assert {"prometheus", "grafana", "emulator", "master", "worker"} <= set(config["services"])
    assert ("127.0.0.1", "3000", 3000) in published(config["services"]["grafana"]["ports"])
    assert ("127.0.0.1", "9090", 9090) in published(config["services"]["prometheus"]["ports"])
