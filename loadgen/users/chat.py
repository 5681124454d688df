"""``ChatUser``: people chatting: multi-turn conversations, the history growing turn by turn, think time."""

from __future__ import annotations

from typing import ClassVar

from analysis.schema import WorkloadKind
from loadgen.scenario.conversations import Conversations
from loadgen.scenario.prompts import Prompt
from loadgen.scenario.workloads import ChatWorkload
from loadgen.users.base import LLMUser, as_messages
from loadgen.wire.protocol import Message


class ChatUser(LLMUser):
    """One task is one conversation: ``turns`` user messages (or a dataset conversation's user turns), each
    waiting on the reply (appended to the history), ``think_time`` between turns and between conversations.

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
        if wl.conversations is not None:
            self.replay(session_id, model, wl.conversations)
            return
        history = [Message("system", wl.system_prompt)] if wl.system_prompt else []
        for turn in range(int(wl.turns.sample(self.rng))):
            self.think(turn)
            history.extend(as_messages(self.next_message(list(history), turn)))
            reply = self.send(session_id, turn, model, messages=history)
            if reply is None:
                return  # the conversation broke; the user starts a new one
            history.append(reply.as_message())
            self.stop_if_stopping()

    def replay(self, session_id: str, model: str, dataset: Conversations) -> None:
        """The dataset's next conversation: its user turns in order, with the model's answers (or, for
        ``history: recorded``, the dataset's) as history; its system turn, else the workload's, first."""
        conversation = self.node.next_conversation(self.workload.name, dataset)
        system = conversation.system or self.workload.system_prompt
        history = [Message("system", system)] if system else []
        for turn, exchange in enumerate(conversation.exchanges):
            self.think(turn)
            history.append(Message("user", exchange.user))
            reply = self.send(session_id, turn, model, messages=history, num_predict=dataset.num_predict_for(exchange))
            if reply is None:
                return
            recorded = exchange.answer if dataset.history == "recorded" else None
            history.append(reply.as_message() if recorded is None else Message("assistant", recorded))
            self.stop_if_stopping()

    def think(self, turn: int) -> None:
        """The user's think time before every turn but the first."""
        if turn:
            self.sleep(float(self.workload.think_time.sample(self.rng)))
