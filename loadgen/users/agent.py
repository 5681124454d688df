"""``AgentLoopUser``: agents: chains of tool-calling requests, each waiting on the last, the context growing."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from locust.env import Environment

from analysis.schema import LocustEntry, WorkloadKind
from loadgen.scenario.prompts import prose
from loadgen.scenario.workloads import AgentLoopWorkload
from loadgen.users.base import LLMUser, as_messages
from loadgen.wire.protocol import Message, ToolCall


class AgentLoopUser(LLMUser):
    """One task is one agent job: a task prompt, then ``steps`` requests with ``tools``; every tool call the
    model makes is run (``run_tool``) and its result appended, so the context grows; no human think time.
    A whole job is also one ``JOB`` entry in Locust's statistics.

    Override ``run_tool`` to run real code for the model's tool calls.
    """

    abstract = True
    kind: ClassVar[str] = WorkloadKind.AGENT_LOOP
    workload: ClassVar[AgentLoopWorkload]

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        #: The tools as sent with every request (OpenAI's function-tool JSON).
        self.tool_specs: tuple[dict[str, Any], ...] = tuple(t.model_dump(mode="json") for t in self.workload.tools)

    def run_tool(self, call: ToolCall) -> str:
        """The result of one tool call, sent back to the model. Default: a simulated tool that takes the
        workload's ``tool_result.latency`` and returns ``tool_result.words`` words of prose."""
        result = self.workload.tool_result
        self.sleep(float(result.latency.sample(self.rng)))
        return prose(self.rng, int(result.words.sample(self.rng)))

    def run_session(self, session_id: str, model: str) -> None:
        wl = self.workload
        history = as_messages(self.next_prompt())
        started, output_tokens, failed, host = time.perf_counter(), 0, False, ""
        for step in range(int(wl.steps.sample(self.rng))):
            if step:
                self.stop_if_stopping()
            reply = self.send(session_id, step, model, messages=history, tools=self.tool_specs)
            host = host or self.node.router.host_of(session_id)
            if reply is None:
                failed = True
                break
            output_tokens += reply.output_tokens or 0
            history.append(reply.as_message())
            for call in reply.tool_calls or [self._invented_call(step)]:
                result = self.run_tool(call)
                self.stop_if_stopping()
                history.append(Message("tool", result, tool_call_id=call.id, tool_name=call.name))
            if not reply.tool_calls:
                history.append(Message("user", "Continue with the next step."))
        self.report_session(LocustEntry.JOB, model, host, started, output_tokens, failed)

    def _invented_call(self, step: int) -> ToolCall:
        """When the model answered in text, the agent still runs its next tool (as scripted agents do)."""
        name = self.tool_specs[step % len(self.tool_specs)]["function"]["name"] if self.tool_specs else "tool"
        return ToolCall(f"call_local{step}", name, {})
