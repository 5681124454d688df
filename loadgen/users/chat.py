"""``ChatUser``: people chatting: multi-turn conversations, the history growing turn by turn, think time."""

from __future__ import annotations

from typing import ClassVar

from analysis.schema import WorkloadKind
from loadgen.scenario.prompts import Prompt
from loadgen.scenario.workloads import ChatWorkload
from loadgen.users.base import LLMUser, as_messages
from loadgen.wire.protocol import Message


class ChatUser(LLMUser):
    """One task is one conversation: ``turns`` user messages, each waiting on the reply (appended to the
    history), ``think_time`` between turns and between conversations.

    Override ``next_message`` to write each turn in code, e.g. from the previous answer.
    """

    abstract = True
    kind: ClassVar[str] = WorkloadKind.CHAT
    workload: ClassVar[ChatWorkload]

    def between_sessions(self) -> float:
        return float(self.workload.think_time.sample(self.rng))

    def next_message(self, history: list[Message], turn: int) -> Prompt:
        """The user's message for ``turn`` (0-based), given the conversation so far (system prompt, earlier
        turns and replies): a string, or chat messages to append. Default: the workload's next prompt."""
        return self.next_prompt()

    def run_session(self, session_id: str, model: str) -> None:
        wl = self.workload
        history = [Message("system", wl.system_prompt)] if wl.system_prompt else []
        for turn in range(int(wl.turns.sample(self.rng))):
            if turn:
                self.sleep(float(wl.think_time.sample(self.rng)))
            history.extend(as_messages(self.next_message(list(history), turn)))
            reply = self.send(session_id, turn, model, messages=history)
            if reply is None:
                return  # the conversation broke; the user starts a new one
            history.append(reply.as_message())
            self.stop_if_stopping()
