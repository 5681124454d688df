"""The suite's locustfile: ``locust -f locustfiles --scenario scenarios/chat.yaml``.

The user classes that run are made from the scenario's workloads when it loads (one per workload);
the three kinds are imported here so that ``locust -f locustfiles --list`` names them.
"""

from locustfiles._plugin import register
from locustfiles._users import AgentLoopUser, BatchUser, ChatUser

__all__ = ["AgentLoopUser", "BatchUser", "ChatUser"]

register()
