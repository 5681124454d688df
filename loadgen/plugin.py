"""Everything the suite hangs on Locust's events: options, scenario loading, runs, records, the end.

Plain ``locust`` stays the interface: ``--scenario`` and friends are Locust options (also in the web
UI's start form); the master (or local runner) loads the scenario, starts embedded servers, sends the
resolved scenario to its workers at the start of every run and alone writes the run directory.
"""

from __future__ import annotations

import logging
import math
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import gevent
import locust.stats
from locust import events as locust_events
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment
from locust.event import Events
from locust.rpc import Message
from locust.runners import STATE_RUNNING, STATE_SPAWNING, LocalRunner, MasterRunner, WorkerRunner

from analysis.schema import HostInfo
from loadgen.locust_env import SuiteOptions, options_of, runner_of
from loadgen.run import messages
from loadgen.run.capacity import CapacityShape
from loadgen.run.recorder import ATTRIBUTE as RUN_ATTRIBUTE
from loadgen.run.recorder import RunRecorder, run_of
from loadgen.run.shape import ScenarioShape, plan
from loadgen.run.workers import hostname_of, unreachable_hosts_warning
from loadgen.scenario.hosts import EMBEDDED_HOSTS, EmbeddedHost
from loadgen.scenario.load import Capacity, Steady
from loadgen.scenario.scenario import HOSTS_OPTION, Scenario, ScenarioError, load_scenario
from loadgen.servers import EmbeddedServerError, Server, server_for
from loadgen.telemetry.export import Telemetry, TelemetryError, start_telemetry
from loadgen.users import LLMUser, classes_for, declared_classes, scenario_of_classes
from loadgen.users.node import ATTRIBUTE as NODE_ATTRIBUTE
from loadgen.users.node import Node, api_keys, build_node
from loadgen.users.pacing import ArrivalStream, RoundGate
from loadgen.users.replay import ReplayStream
from loadgen.variants import INTERRUPTED, run_variants
from loadgen.webui.extension import attach as attach_web_ui
from loadgen.webui.extension import scenario_choices
from loadgen.wire.client import auth_headers
from loadgen.wire.probe import HostUnreachable, probe

log = logging.getLogger(__name__)

CONTROLLER = "llm_controller"


def add_arguments(parser: LocustArgumentParser) -> None:
    # On the parser itself, not a group: only LocustArgumentParser.add_argument knows is_secret and
    # include_in_web_ui (the web UI's start form shows these options).
    group = parser
    group.add_argument("--scenario", default="", env_var="LOCUST_SCENARIO", choices=scenario_choices(), metavar="FILE",
                       help="YAML scenario file to run (any path; the web UI offers scenarios/*.yaml)")
    group.add_argument("--variant", default="", env_var="LOCUST_VARIANT",
                       help="Run this variant of the scenario (its 'variants:' section)")
    group.add_argument("--hosts", default="", env_var="LOCUST_LLM_HOSTS",
                       help="Override the scenario's hosts: 'URL[,URL...]' or 'name=URL[,name=URL...]' "
                            "(-H/--host cannot: Locust applies it to every user class)")
    group.add_argument("--model", default="", env_var="LOCUST_LLM_MODEL",
                       help="Ask every workload for this model instead of the scenario's (hosts' models lists are "
                            "dropped)")
    group.add_argument("--results-dir", default="results", env_var="LOCUST_RESULTS_DIR",
                       help="Where run directories are written (default: results/)")
    # A masked field in the web UI's start form, always shown empty (``_webui`` keeps the key out of the page
    # and out of the options Locust sends to workers).
    group.add_argument("--api-key", default="", env_var="LOCUST_LLM_API_KEY", is_secret=True,
                       help="Bearer token sent to every host (prefer api_key_env in the scenario); never recorded. "
                            "Typed in the web UI it is used by this process only: workers read their own")
    group.add_argument("--capacity-min", type=float, default=None, env_var="LOCUST_CAPACITY_MIN",
                       help="A capacity search must find at least this many users (or requests/s), else the run "
                            "exits 1 (overrides the scenario's capacity: {min: N})")
    group.add_argument("--run-id", default="", include_in_web_ui=False,
                       help="Name the run directory (default: a timestamp and the scenario's name)")
    group.add_argument("--no-report", action="store_true", default=False, include_in_web_ui=False,
                       help="Do not write the analysis report at the end of a headless run")
    group.add_argument("--metrics-port", type=int, default=0, env_var="LOCUST_METRICS_PORT", include_in_web_ui=False,
                       help="Serve live metrics for Prometheus at http://<--web-host>:PORT/metrics (the web UI also "
                            "serves them at /metrics; needs the [otel] extra). OTLP: Locust's --otel")


def bucket_response_time(response_time: float) -> int:
    """Locust's histogram key for a response time (ms), to three significant digits instead of Locust's
    two: LLM latencies run to tens of seconds, where two digits would put p95 on a 1-second grid."""
    if response_time < 1000:
        return round(response_time)
    return int(round(response_time, 2 - int(math.log10(response_time))))


def register(events: Events = locust_events) -> None:
    """Attach the suite to Locust's events, once per set of events (from a locustfile, on every node)."""
    if _on_init in events.init._handlers:
        return
    locust.stats.bucket_response_time = bucket_response_time  # a documented Locust knob, read per request
    events.init_command_line_parser.add_listener(add_arguments)
    events.init.add_listener(_on_init)
    events.test_start.add_listener(_on_test_start)
    events.test_stop.add_listener(_on_test_stop)
    events.quitting.add_listener(_on_quitting)


class Controller:
    """The suite's state in one Locust process (master, worker or local runner)."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.scenario: Scenario | None = None
        self.host_urls: dict[str, str] = {}
        self.host_info: list[HostInfo] = []
        self._servers: dict[str, Server] = {}
        self._warned_hostnames: set[str] = set()
        self.starting = False  # the hosts are being started (SIGTERM then stops that)
        self.telemetry: Telemetry | None = None  # the live metrics export (master or local runner)
        self.api_key = _take_api_key(environment)
        #: The LLM user classes of a user's own locustfile, and its other user classes: both always run.
        self.declared = declared_classes(environment.user_classes)
        self.others = [c for c in environment.user_classes if not issubclass(c, LLMUser)]

    @property
    def options(self) -> SuiteOptions:
        return options_of(self.environment)

    # -- master / local -----------------------------------------------------------------------------

    def load(self) -> Scenario:
        """Load the scenario named by the options, or the one the locustfile's classes declare; raises
        ``ScenarioError``."""
        opts = self.options
        if opts.scenario and self.declared:
            names = ", ".join(cls.__name__ for cls in self.declared)
            raise ScenarioError.single("--scenario", f"runs the scenario's workloads, but the locustfile declares its "
                                       f"own ({names}): run one or the other")
        if opts.scenario:
            scenario = load_scenario(opts.scenario)
        elif self.declared:
            scenario = scenario_of_classes(self.declared, self.environment.host)
        else:
            raise ScenarioError.single("--scenario", "no scenario: pass --scenario FILE (e.g. --scenario "
                                       "scenarios/chat.yaml), or subclass loadgen's user classes in a locustfile")
        if opts.variant:
            try:
                scenario = scenario.with_variant(opts.variant)
            except KeyError as e:
                raise ScenarioError.single("--variant", e.args[0]) from None
        if opts.hosts:
            scenario = scenario.with_hosts(opts.hosts)
        if opts.model:
            scenario = scenario.with_model(opts.model)
        self.use(scenario)
        return scenario

    def use(self, scenario: Scenario) -> None:
        """Make ``scenario`` the one the next run runs: its user classes, load shape and stop timeout."""
        env, opts = self.environment, self.options
        self.scenario = scenario
        env.user_classes[:] = [*classes_for(scenario, self.declared), *self.others]
        if isinstance(scenario.load, Steady) and not opts.headless and not scenario.load.duration:
            env.shape_class = None  # the web UI's own user count and spawn rate drive a steady load
        else:
            env.shape_class = (
                CapacityShape(scenario, gate=opts.capacity_min) if isinstance(scenario.load, Capacity)
                else ScenarioShape(plan(scenario.load, opts.num_users, opts.spawn_rate, opts.run_time or None))
            )
            env.shape_class.runner = env.runner  # Locust sets this only for a shape given at creation
            opts.run_time = None  # our shape ends the run gracefully; Locust's timer would cut it short
        if not opts.stop_timeout:
            env.stop_timeout = scenario.load.stop_timeout

    def start_hosts(self) -> None:
        """Start the scenario's embedded servers and identify every host; raises on failure."""
        assert self.scenario is not None
        wanted = {host.name for host in self.scenario.hosts if isinstance(host, EMBEDDED_HOSTS)}
        for name in set(self._servers) - wanted:
            self._servers.pop(name).stop()
        self.host_urls, self.host_info = {}, []
        keys = api_keys(self.scenario, self.api_key)
        for index, host in enumerate(self.scenario.hosts):
            info: HostInfo = {"name": host.name, "api": self.scenario.api, "weight": host.weight}
            if isinstance(host, EMBEDDED_HOSTS):
                server = self._start_server(host)
                assert server.url is not None
                url = server.url
                info.update(server.info())
                info["embedded"] = host.embedded
                info["settings"] = host.settings.model_dump(mode="json", exclude_none=True)
            else:
                url = host.url
            self.host_urls[host.name] = url
            info["url"] = url
            try:
                info.update(probe(url, auth_headers(keys.get(host.name, ""))))  # type: ignore[typeddict-item]
            except HostUnreachable as e:
                message = f"{url} does not answer ({e.reason}); is the server running?"
                raise self._host_problem(index, url, message) from None
            self.host_info.append(info)

    def _start_server(self, host: EmbeddedHost) -> Server:
        """The host's running server: the one already started when it was started the same way."""
        assert self.scenario is not None
        server = server_for(host, self.scenario.models_on(host))
        running = self._servers.get(host.name)
        if running is not None and running.launch == server.launch and running.running:
            return running
        if running is not None:
            running.stop()
        self._servers[host.name] = server
        server.start()
        return server

    def _host_problem(self, index: int, url: str, message: str) -> ScenarioError:
        """A host's startup problem, named where its URL was given: ``--hosts`` or the scenario's line."""
        assert self.scenario is not None
        if self.options.hosts and url in self.options.hosts:
            return ScenarioError.single(HOSTS_OPTION, message)
        return self.scenario.problem(message, "hosts", index, "url")

    def start_run(self) -> RunRecorder:
        """Open the run directory and tell every node what to run."""
        assert self.scenario is not None
        env = self.environment
        opts = self.options
        run = RunRecorder(env, self.scenario, self.host_info, Path(opts.results_dir), opts.variant or None,
                          opts.run_id or None, api_keys(self.scenario, self.api_key))
        opts.run_id = ""  # a name is for one run: the next (web UI) run gets its own
        setattr(env, RUN_ATTRIBUTE, run)
        if self.telemetry is not None:
            self.telemetry.metrics.watch(run)
        message = messages.ScenarioMessage(run_id=run.run_id, scenario=self.scenario.to_payload(),
                                           hosts=self.host_urls, classes=[cls.__name__ for cls in self.declared])
        if isinstance(env.runner, MasterRunner):
            for client_id in run.participants:
                self._check_reach(client_id)
            env.runner.send_message(messages.SCENARIO, message)  # type: ignore[arg-type]  # Locust: dict, not TypedDict
        else:
            self.start_node(message)
        log.info("run %s: writing %s", run.run_id, run.dir)
        return run

    def on_worker_connect(self, client_id: str) -> None:
        """Master: a worker joined (or rejoined). One that was not in the run going on cannot take part:
        Locust hands it users at once, before it could have the run's scenario, and it leaves."""
        self._check_reach(client_id)
        run = run_of(self.environment)
        if run is not None and not run.finished and client_id not in run.participants:
            log.warning("worker %s joined while run %s is going on: it cannot take part and will exit; its users "
                        "go back to the other workers once it is missed. Start workers before a run.",
                        client_id, run.run_id)

    def _check_reach(self, client_id: str) -> None:
        """Warn (once per machine) when a worker on another machine is sent loopback host URLs."""
        worker = hostname_of(client_id)
        warning = unreachable_hosts_warning(self.host_urls, socket.gethostname(), worker)
        if warning and worker not in self._warned_hostnames:
            self._warned_hostnames.add(worker)
            log.warning(warning)

    def finish_run(self) -> None:
        """Wait for the last records, close the run's files and (headless) write the report."""
        run = run_of(self.environment)
        if run is None or run.finished:
            return
        self.stop_node()
        drained = run.wait_drained()
        run.finish(drained)
        log.info("run %s: %d requests recorded in %s", run.run_id, run.store.received, run.dir)
        ended = time.monotonic()
        if self.options.headless and not self.options.no_report:
            self._write_report(run)
        if self.options.headless and self.telemetry is not None and self.telemetry.watch is not None:
            self.telemetry.watch.wait_for_scrape_after(ended)  # the process exits next: let Prometheus see the end

    def _write_report(self, run: RunRecorder) -> None:
        result = subprocess.run([sys.executable, "-m", "analysis", "report", str(run.dir)], capture_output=True,
                                text=True)
        for line in (result.stdout + result.stderr).strip().splitlines():
            log.info("analysis: %s", line)
        if result.returncode == 1:
            log.warning("an SLO of the scenario failed: exit code 1")
            self.environment.process_exit_code = 1
        elif result.returncode:
            log.error("the analysis report failed (exit code %d)", result.returncode)
        else:
            print(f"\nReport: {run.dir / 'report.html'}\n", flush=True)

    def stop_servers(self) -> None:
        for server in self._servers.values():
            server.stop()
        self._servers.clear()

    # -- every node ---------------------------------------------------------------------------------

    def start_node(self, message: messages.ScenarioMessage) -> Node:
        """Build this node's side of the run (workers: from the master's message)."""
        self.stop_node()
        env = self.environment
        if self.scenario is None or isinstance(env.runner, WorkerRunner):
            self.scenario = Scenario.from_payload(message["scenario"])
            if missing := set(message["classes"]) - {cls.__name__ for cls in self.declared}:
                _fail(f"this worker's locustfile has no user class {', '.join(sorted(missing))}: run the workers on "
                      "the master's locustfile (the same -f, or -f - to receive it from the master)")
            env.user_classes[:] = [*classes_for(self.scenario, self.declared), *self.others]
        node = build_node(env, message["run_id"], self.scenario, message["hosts"], self._ship, self.api_key)
        setattr(env, NODE_ATTRIBUTE, node)
        node.sink.start()
        return node

    def _ship(self, batch: messages.RecordsMessage) -> None:
        """Send a batch of records to the master (or to this local runner's own store). A worker's answer
        to a flush and its final batch first send Locust's statistics too, which are otherwise reported
        only every 3 s: one connection delivers both in order, so once the master has the batch, Locust's
        tables count the same requests."""
        runner = runner_of(self.environment)
        if isinstance(runner, WorkerRunner) and (batch["flush_token"] or batch["final"]):
            runner._send_stats()  # the periodic report of Locust's statistics, sent now (a private method)
        runner.send_message(messages.RECORDS, batch)

    def stop_node(self) -> None:
        """Ship this node's last records (it keeps no requests in flight by now)."""
        node: Node | None = getattr(self.environment, NODE_ATTRIBUTE, None)
        if node is not None:
            setattr(self.environment, NODE_ATTRIBUTE, None)
            node.close()


def controller_of(environment: Environment) -> Controller:
    controller = getattr(environment, CONTROLLER, None)
    if controller is None:
        controller = Controller(environment)
        setattr(environment, CONTROLLER, controller)
    return controller


def _take_api_key(environment: Environment) -> str:
    """This node's ``--api-key``, taken out of the parsed options: Locust sends the master's options to
    every worker that joins (unencrypted, to anyone who reaches its port), and each node uses its own."""
    options = options_of(environment)
    key = getattr(options, "api_key", "") or ""
    if key:
        options.api_key = ""
    return key


def _fail(message: str) -> None:
    """A configuration error before any load: one clear line, exit code 2, no traceback."""
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    sys.exit(2)


def _on_init(environment: Environment, **_kwargs: Any) -> None:
    controller = controller_of(environment)
    runner = runner_of(environment)
    gevent.signal_handler(signal.SIGINT, _interrupt_main_greenlet)
    node_messages = {messages.FLUSH: _on_flush_message, messages.ROUND: _on_round_message,
                     messages.ARRIVALS: _on_arrivals_message, messages.REPLAY: _on_replay_message}
    if isinstance(runner, WorkerRunner):
        runner.register_message(messages.SCENARIO, _on_scenario_message)
        for kind, handler in node_messages.items():
            runner.register_message(kind, handler)
        return
    runner.register_message(messages.RECORDS, _on_records_message)
    if isinstance(runner, LocalRunner):
        for kind, handler in node_messages.items():
            runner.register_message(kind, handler)
    else:
        environment.events.worker_connect.add_listener(controller.on_worker_connect)
    if options_of(environment).headless:
        # Locust installs its SIGTERM handler only after a headless shape run has ended; until then
        # SIGTERM would kill the process with the run's files half-written.
        gevent.signal_handler(signal.SIGTERM, _stop_now, environment)
    try:
        scenario = controller.load()
        if scenario.variant_list and not options_of(environment).variant:
            _run_each_variant(environment, scenario)
        controller.starting = True
        controller.start_hosts()
    except ScenarioError as e:
        controller.stop_servers()
        _fail(str(e))
    except EmbeddedServerError as e:
        controller.stop_servers()
        _fail(f"{options_of(environment).scenario}: hosts: {e}")
    except (KeyboardInterrupt, StopStarting):
        controller.stop_servers()
        sys.stderr.write("stopped while starting the hosts: no run was started, nothing was measured\n")
        sys.exit(INTERRUPTED)
    finally:
        controller.starting = False
    try:
        controller.telemetry = start_telemetry(environment, options_of(environment))
    except TelemetryError as e:
        controller.stop_servers()
        _fail(str(e))
    if environment.web_ui is not None:
        attach_web_ui(environment, controller)


def _run_each_variant(environment: Environment, scenario: Scenario) -> None:
    """A scenario with variants and no ``--variant``: a headless local run runs every variant, each in a
    locust process of its own (this command line plus ``--variant``), compares them and exits with their
    worst exit code, as ``ollama-loadtest run`` does. A master or the web UI runs the hosts as written."""
    opts = options_of(environment)
    names = [variant.name for variant in scenario.variant_list]
    if not opts.headless or not isinstance(environment.runner, LocalRunner):
        log.warning("%s has variants (%s); this run uses its hosts as written: pass --variant NAME to run one, or "
                    "run them all with ollama-loadtest run %s", opts.scenario or "the scenario", ", ".join(names),
                    opts.scenario or "SCENARIO")
        return
    command = [sys.executable, "-m", "locust", *sys.argv[1:]]
    sys.exit(run_variants(scenario.name, names, command, Path(opts.results_dir), opts.run_id or None))


def _on_test_start(environment: Environment, **_kwargs: Any) -> None:
    runner = environment.runner
    if runner is None or isinstance(runner, WorkerRunner):  # None: a worker still connecting
        if getattr(environment, NODE_ATTRIBUTE, None) is None:
            # The master sends the scenario ahead of the users of a run, so a worker that gets users without
            # it joined mid-run (Locust hands a newcomer users at once, even before its own init): it
            # leaves, and the master gives its users to the other workers once it is missed (~3 s).
            _fail("this worker was handed users of a run without the run's scenario: it joined while the "
                  "run was going on (start workers before a run), or the master's scenario could not be "
                  "read (see above)")
        return
    controller_of(environment).start_run()


def _on_test_stop(environment: Environment, **_kwargs: Any) -> None:
    controller = controller_of(environment)
    if isinstance(environment.runner, WorkerRunner):
        controller.stop_node()
    else:
        controller.finish_run()


def _interrupt_main_greenlet() -> None:
    """Ctrl-C: raise KeyboardInterrupt where Locust expects it, in the main greenlet. Python would raise
    it in whichever greenlet happened to run, often a user mid-request, and that request would be lost."""
    main = gevent.get_hub().parent  # the hub runs under the main greenlet
    assert main is not None
    main.throw(KeyboardInterrupt())


class StopStarting(BaseException):
    """SIGTERM while the hosts start (an Ollama loading its model can take minutes): stop starting them."""


def _stop_now(environment: Environment) -> None:
    """SIGTERM: stop at once. Requests in flight are recorded as cancelled, the run's files closed; while the
    hosts are still starting, stop starting them."""
    if controller_of(environment).starting:
        main = gevent.get_hub().parent
        assert main is not None
        main.throw(StopStarting())
        return
    log.info("SIGTERM: stopping now; requests in flight are recorded as cancelled")
    _stop_running_test(environment)
    runner_of(environment).quit()


def _stop_running_test(environment: Environment) -> None:
    """Stop a test that is still running, cancelling the requests in flight on this node, so that
    ``test_stop`` records them before anything is closed (a master waits for its workers instead)."""
    runner = runner_of(environment)
    if runner.state in (STATE_SPAWNING, STATE_RUNNING):
        if not isinstance(runner, MasterRunner):
            environment.stop_timeout = 0
        runner.stop()


def _on_quitting(environment: Environment, **_kwargs: Any) -> None:
    """Locust is shutting down (the end of a run, SIGTERM, a lost master): record what is in flight,
    finish the run's files, stop embedded servers."""
    controller = controller_of(environment)
    _stop_running_test(environment)
    if not isinstance(environment.runner, WorkerRunner):
        controller.finish_run()
    controller.stop_servers()


def _on_scenario_message(environment: Environment, msg: Message, **_kwargs: Any) -> None:
    controller_of(environment).start_node(msg.data)


def _on_records_message(environment: Environment, msg: Message, **_kwargs: Any) -> None:
    run = run_of(environment)
    if run is not None:
        run.on_records(msg.data)


def _on_flush_message(environment: Environment, msg: Message, **_kwargs: Any) -> None:
    node: Node | None = getattr(environment, NODE_ATTRIBUTE, None)
    if node is not None:
        node.sink.flush(token=msg.data["token"])


def _on_round_message(environment: Environment, msg: Message, **_kwargs: Any) -> None:
    node: Node | None = getattr(environment, NODE_ATTRIBUTE, None)
    if node is not None and isinstance(node.pacer, RoundGate):
        node.pacer.release(msg.data["round_id"], msg.data["open_all"])


def _on_arrivals_message(environment: Environment, msg: Message, **_kwargs: Any) -> None:
    node: Node | None = getattr(environment, NODE_ATTRIBUTE, None)
    if node is not None and isinstance(node.pacer, ArrivalStream):
        node.pacer.set_rate(msg.data["rate"])


def _on_replay_message(environment: Environment, msg: Message, **_kwargs: Any) -> None:
    node: Node | None = getattr(environment, NODE_ATTRIBUTE, None)
    if node is not None and isinstance(node.pacer, ReplayStream):
        node.pacer.start(msg.data["start"], msg.data["nodes"])
