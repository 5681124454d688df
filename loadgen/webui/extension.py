"""The suite in Locust's own web UI: an LLM tab, a live chart page, the start form and run downloads.

Hangs on the hooks Locust's React UI offers (``locust-notes.md`` §5): ``extended_tabs`` / ``extended_tables``
in the template arguments, ``extended_stats`` added to every ``/stats/requests`` answer, and links under
"Download Data" (``extended_csv_files``). The routes here live on a blueprint with Locust's own
``--web-base-path`` prefix and behind its login (``auth_required_if_enabled``); the page's links are
relative, so they work with and without a base path. The numbers come from the run's ``LiveStats``.

The start form: ``--scenario`` is a select of the listed scenarios (the repository's ``scenarios/*.yaml``
and the files beside the scenario locust started with); starting a test loads the picked scenario, its
variant and hosts override first, and refuses a bad one with the loader's message. The API key is a
masked field that the page always shows empty; a typed key is taken out of the submission before Locust
sees it (Locust would keep it in the options it sends every worker) and is used by this process only
(``docs/reliability.md``). Locust's own fields show the loaded scenario: its hosts in the Host field
(shown only: the hosts field overrides them) and its users; when the scenario's plan decides the users,
Locust's shape handling greys the user count, ramp-up and run time out.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import wraps
from html import escape
from pathlib import Path
from typing import Any, Final

from flask import Blueprint, Response, jsonify, make_response, request, send_file
from locust.env import Environment
from locust.runners import STATE_RUNNING, STATE_SPAWNING, MasterRunner
from werkzeug.datastructures import ImmutableMultiDict

from analysis.schema import REQUESTS_FILE, RUN_FILE, SERVER_METRICS_FILE, STAGES_FILE
from loadgen.run.capacity import CapacityShape
from loadgen.run.live import TABLE_COLUMNS
from loadgen.run.recorder import run_of
from loadgen.run.shape import ScenarioShape, plan
from loadgen.scenario.scenario import ScenarioError
from loadgen.servers import EmbeddedServerError
from loadgen.webui.controller import Controller

TAB: Final = "llm"
#: The capacity search's tab: one row per probe, the running one and the answer.
CAPACITY_TAB: Final = "llm_capacity"
CAPACITY_COLUMNS: Final = (("probe", "Probe"), ("level", "Load"), ("verdict", "Verdict"),
                           ("limiting", "Limiting SLO"), ("note", "Note"))
SCENARIOS_DIR: Final = Path(__file__).resolve().parents[2] / "scenarios"  # loadgen/webui/ -> the repository
RUN_FILES: Final = (REQUESTS_FILE, SERVER_METRICS_FILE, STAGES_FILE, RUN_FILE)
REPORT_TIMEOUT_S: Final = 300.0
#: The options a form submission may change that decide what the next run loads.
SCENARIO_OPTIONS: Final = ("scenario", "variant", "hosts")
#: What a scenario's load plan reads: the command line's values, never those a previous form left behind
#: (Locust writes the form's user count into the options after the run has been planned).
PLAN_OPTIONS: Final = ("num_users", "spawn_rate")
#: The start form's masked ``--api-key`` field.
KEY_FIELD: Final = "api_key"
#: Locust's Host field: it shows a scenario's hosts, but only ``--hosts`` changes them.
HOST_FIELD: Final = "host"


class ScenarioChoices(list[str]):
    """``--scenario``'s choices: the listed scenarios for the start form's select, while the command line
    still takes any path (argparse checks a value with ``in``)."""

    def __contains__(self, value: object) -> bool:
        return isinstance(value, str)


def _shown(path: Path) -> str:
    """A path as the form shows it: relative to the working directory when under it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def scenario_choices(*extra: str) -> ScenarioChoices:
    """The repository's ``scenarios/*.yaml``, then the YAML files beside each of ``extra`` and ``extra``
    themselves, each file once."""
    candidates = [_shown(p) for p in sorted(SCENARIOS_DIR.glob("*.yaml"))]
    for given in filter(None, extra):
        candidates += [str(Path(given).parent / p.name) for p in sorted(Path(given).parent.glob("*.yaml"))]
        candidates.append(given)
    seen: set[Path] = set()
    choices = ScenarioChoices()
    for candidate in candidates:
        resolved = Path(candidate).resolve()
        if resolved not in seen:
            seen.add(resolved)
            choices.append(candidate)
    return choices


def attach(environment: Environment, controller: Controller) -> None:
    """Add the LLM tab, its routes and the start-form handling to the master's (or local) web UI."""
    ui = environment.web_ui
    assert ui is not None and ui.app is not None
    app = ui.app
    start_scenario = controller.options.scenario
    plan_options = {name: getattr(controller.options, name) for name in PLAN_OPTIONS}
    own_key = controller.api_key
    ui.template_args.update(
        extended_tabs=[{"title": "LLM", "key": TAB}, {"title": "LLM capacity", "key": CAPACITY_TAB}],
        extended_tables=[{"key": TAB, "structure": [{"key": k, "title": t} for k, t in TABLE_COLUMNS]},
                         {"key": CAPACITY_TAB, "structure": [{"key": k, "title": t} for k, t in CAPACITY_COLUMNS]}],
        extended_csv_files=[
            {"href": "./llm/chart", "title": "LLM live chart (tok/s, busy sequences, slots)"},
            {"href": "./llm/run/requests.csv", "title": "LLM requests.csv of the current or last run"},
            {"href": "./llm/run/server_metrics.csv", "title": "LLM server_metrics.csv of the current or last run"},
            {"href": "./llm/report", "title": "LLM analysis report of the run so far"},
        ],
    )

    update_template_args = ui.update_template_args

    def update_start_form() -> None:
        update_template_args()
        form = ui.template_args["extra_options"]
        if KEY_FIELD in form:
            form[KEY_FIELD]["default_value"] = ""  # Locust fills it from the command line and environment
        if "scenario" in form:
            current = controller.options.scenario
            form["scenario"].update(choices=scenario_choices(start_scenario, current), default_value=current)
            if isinstance(environment.shape_class, ScenarioShape) and controller.scenario is not None:
                form["scenario"]["help_text"] = (f"loaded: {controller.scenario.name}, whose own plan decides the "
                                                 f"users, not the fields above: {environment.shape_class.describe()}")
        ui.template_args.update(_scenario_fields(environment, controller))

    ui.update_template_args = update_start_form  # type: ignore[method-assign]

    swarm = app.view_functions["locust.swarm"]

    @ui.auth_required_if_enabled
    @wraps(swarm)
    def swarm_with_scenario() -> Any:
        if controller.options.scenario:
            _take_field(HOST_FIELD)  # shown, not used: it would override other user classes' hosts
        return (
            _use_typed_api_key(environment, controller, own_key)
            or _load_picked_scenario(environment, controller, start_scenario, plan_options)
            or swarm()
        )

    app.view_functions["locust.swarm"] = swarm_with_scenario

    @app.after_request
    def add_llm_table(response: Response) -> Response:
        if request.endpoint == "locust.request_stats" and response.is_json:
            data = response.get_json()
            data["extended_stats"] = [{"key": TAB, "data": _table(environment)},
                                      {"key": CAPACITY_TAB, "data": _capacity_table(environment)}]
            response.set_data(json.dumps(data))
        return response

    app.register_blueprint(_routes(environment, ui.auth_required_if_enabled),
                              url_prefix=controller.options.web_base_path or None)


def _table(environment: Environment) -> list[dict[str, str]]:
    run = run_of(environment)
    return run.live.table(time.time()) if run is not None else []


def _capacity_table(environment: Environment) -> list[dict[str, str]]:
    shape = environment.shape_class
    return shape.progress() if isinstance(shape, CapacityShape) else []


def _scenario_fields(environment: Environment, controller: Controller) -> dict[str, Any]:
    """Locust's start-form fields as the loaded scenario fills them: its hosts (a ``--scenario`` run's; a
    locustfile's own classes keep Locust's ``-H``) and its users. A plan that decides the users itself has
    them greyed out, as Locust does for a load shape."""
    fields: dict[str, Any] = {}
    if controller.options.scenario and controller.host_urls:
        fields.update(host=",".join(controller.host_urls.values()), missing_host_warning=False,
                      override_host_warning=False)
    shape = environment.shape_class
    if isinstance(shape, ScenarioShape):
        fields.update(num_users=shape.peak_users, spawn_rate=shape.phases[0].spawn_rate, hide_common_options=True)
    elif controller.scenario is not None:  # a steady load that the form's users drive
        steady = plan(controller.scenario.load, controller.options.num_users, controller.options.spawn_rate)[-1]
        fields.update(num_users=steady.users, spawn_rate=steady.spawn_rate)
    return fields


def _take_field(name: str) -> str:
    """Take a field out of the form submission (Locust never sees it); its value, "" when absent."""
    value = request.form.get(name, "")
    request.form = ImmutableMultiDict([(k, v) for k, v in request.form.items(multi=True) if k != name])
    return value


def _refusal(environment: Environment, message: str) -> Response:
    """The answer Locust's start form shows as an error under the form."""
    return jsonify({"success": False, "message": message, "host": environment.host})


def _use_typed_api_key(environment: Environment, controller: Controller, own_key: str) -> Response | None:
    """Take the key typed in the form out of the submission and make it this process's key (an empty field
    goes back to ``own_key``, the one it started with). A master refuses a typed key: its workers send the
    requests, and each reads its own key from its environment."""
    typed = _take_field(KEY_FIELD)
    if typed and isinstance(environment.runner, MasterRunner):
        return _refusal(environment, "an API key typed here would reach only the master, not the workers that "
                                     "send the requests: set LOCUST_LLM_API_KEY (or the hosts' api_key_env) in "
                                     "each worker's environment")
    controller.api_key = typed or own_key
    return None


def _load_picked_scenario(environment: Environment, controller: Controller, start_scenario: str,
                          plan_options: dict[str, Any]) -> Response | None:
    """Before a test starts from the form: load the scenario, variant and hosts it names (planned with
    ``plan_options``); a refusal if they do not load. A submission while a test runs only changes its
    user count and is left alone."""
    assert environment.runner is not None  # the web UI starts after the runner
    if environment.runner.state in (STATE_SPAWNING, STATE_RUNNING):
        return None
    options = controller.options
    picked = {name: request.form.get(name, getattr(options, name)) for name in SCENARIO_OPTIONS}
    listed = {Path(c).resolve() for c in scenario_choices(start_scenario, options.scenario)}
    if Path(picked["scenario"]).resolve() not in listed:
        return _refusal(environment, f"{picked['scenario']}: not one of the listed scenarios; to run it, start "
                                     f"locust with --scenario {picked['scenario']}")
    before = {name: getattr(options, name) for name in (*SCENARIO_OPTIONS, *PLAN_OPTIONS)}
    vars(options).update(picked, **plan_options)
    try:
        controller.load()
        controller.start_hosts()
    except (ScenarioError, EmbeddedServerError) as e:
        vars(options).update(before)
        return _refusal(environment, str(e) if isinstance(e, ScenarioError) else f"{picked['scenario']}: hosts: {e}")
    return None


def _routes(environment: Environment, auth: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Blueprint:
    """The chart page, its SVGs, the run's files and the report."""
    routes = Blueprint("llm", __name__)

    def charts() -> dict[str, Callable[[float], str]]:
        run = run_of(environment)
        return {"tok_s": run.live.tok_s_chart, "busy": run.live.busy_chart} if run else {}

    @routes.route("/llm/chart")
    @auth
    def chart_page() -> Response:
        run, now = run_of(environment), time.time()
        drawn = {name: draw(now) for name, draw in charts().items()}
        return _html(chart_page_html(run.run_id if run else None, drawn))

    @routes.route("/llm/chart/<name>.svg")
    @auth
    def chart_svg(name: str) -> Response:
        draw = charts().get(name)
        if draw is None:
            return make_response("no such chart (or no run yet)", 404)
        response = make_response(draw(time.time()))
        response.headers.update({"Content-Type": "image/svg+xml", "Cache-Control": "no-store"})
        return response

    @routes.route("/llm/run/<name>")
    @auth
    def run_file(name: str) -> Response:
        run = run_of(environment)
        if run is None or name not in RUN_FILES or not (run.dir / name).exists():
            return make_response(f"{name}: not written (yet)", 404)
        return send_file(run.dir / name, as_attachment=True, download_name=f"{run.run_id}-{name}", max_age=0)

    @routes.route("/llm/report")
    @auth
    def report() -> Response:
        run = run_of(environment)
        if run is None:
            return make_response("no run yet: start a test first", 404)
        with tempfile.TemporaryDirectory(prefix="llm-report-") as out:
            result = subprocess.run([sys.executable, "-m", "analysis", "report", str(run.dir), "--out", out],
                                    capture_output=True, text=True, timeout=REPORT_TIMEOUT_S)
            page = Path(out) / "report.html"
            if result.returncode not in (0, 1) or not page.exists():  # 1: an SLO failed, the report is there
                reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
                return make_response(f"the analysis could not report on {run.run_id}: {reason}", 500)
            return _html(page.read_text(encoding="utf-8"))

    return routes


def _html(text: str) -> Response:
    response = make_response(text)
    response.headers.update({"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"})
    return response


def chart_page_html(run_id: str | None, charts: dict[str, str]) -> str:
    """The live chart page: the charts drawn in place, fetched again every 2 s by a few lines of script."""
    title = f"LLM live chart: {run_id}" if run_id else "LLM live chart: no run yet"
    boxes = "".join(f'<div class="chart" data-src="chart/{name}.svg">{svg}</div>' for name, svg in charts.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:16px;color:#222}} h1{{font-size:18px}}
.chart{{margin:12px 0;max-width:900px}} .chart svg{{width:100%;height:auto}}</style></head>
<body><h1>{escape(title)}</h1>
<p><a href="../">Back to Locust</a> · redrawn every 2 s<span id="redrawn"></span> ·
dashed lines: the slot count inferred so far</p>
{boxes}
<script>
async function redraw() {{
  for (const box of document.querySelectorAll(".chart")) {{
    const answer = await fetch(box.dataset.src, {{cache: "no-store"}});
    if (!answer.ok) return;
    box.innerHTML = await answer.text();
  }}
  document.getElementById("redrawn").textContent = ", last at " + new Date().toLocaleTimeString();
}}
setInterval(() => redraw().catch(() => {{}}), 2000);
</script></body></html>
"""
