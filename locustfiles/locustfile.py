"""The suite's locustfile: ``locust -f locustfiles --scenario scenarios/chat.yaml``.

The user classes that run are made from the scenario's workloads when it loads (one per workload);
``ScenarioUser`` stands for them until then, since Locust wants a user class in every locustfile.
"""

from loadgen.plugin import register
from loadgen.users import ScenarioUser

__all__ = ["ScenarioUser"]

register()
