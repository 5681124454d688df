"""On the wire: request bodies and response parsing per API, the streaming HTTP client, routing across hosts,
and the start-up probe that tells what a host is."""

from loadgen.wire.client import HostConnection, RequestCancelled, RequestOutcome, auth_headers, exchange
from loadgen.wire.probe import HostUnreachable, probe
from loadgen.wire.protocol import Message, Reply, Sampling, ToolCall
from loadgen.wire.routing import Policy, Router, Target

__all__ = [
    "HostConnection", "HostUnreachable", "Message", "Policy", "Reply", "RequestCancelled", "RequestOutcome", "Router",
    "Sampling", "Target", "ToolCall", "auth_headers", "exchange", "probe",
]
