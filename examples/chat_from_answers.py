"""A custom locustfile on the suite's user classes: chat users whose next message comes from the previous
answer, and agents whose tool calls run real Python code.

    locust -f examples/chat_from_answers.py --headless -u 4 -t 20s

No host set: the run starts the built-in Ollama emulator. ``-H http://127.0.0.1:11434`` (or a ``host``
attribute) points it at your Ollama, ``--model`` asks for another model (the emulator serves ``llama3.2``).
"""

from __future__ import annotations

import math

from loadgen import AgentLoopUser, ChatUser
from loadgen.wire import Message, ToolCall

CALCULATOR = {
    "type": "function",
    "function": {
        "name": "evaluate",
        "description": "Evaluate an arithmetic expression, e.g. 2 * (3 + 4) or sqrt(2).",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string", "description": "The expression."}},
            "required": ["expression"],
        },
    },
}


def evaluate(expression: str) -> str:
    """A real tool: arithmetic with the math module's functions and nothing else."""
    names = {name: getattr(math, name) for name in ("sqrt", "log", "exp", "sin", "cos", "pi", "e")}
    try:
        return str(eval(expression, {"__builtins__": {}}, names))  # noqa: S307 - no builtins, math names only
    except Exception as error:  # the model sees the error, as it would from any tool
        return f"error: {error}"


class FollowUpChat(ChatUser):
    """Each turn asks about the last sentence of the previous answer."""

    model = "llama3.2"
    options = {"num_predict": 48}
    turns = 3
    think_time = {"min": 0.2, "max": 1}
    weight = 3

    def next_message(self, history: list[Message], turn: int) -> str:
        if turn == 0:
            return "Tell me one surprising fact about octopuses."
        answer = history[-1].content.strip().rstrip(".")
        last_sentence = answer.rsplit(".", 1)[-1].strip() or answer
        return f"Why is that? You said: {last_sentence[:200]!r}"


class Calculator(AgentLoopUser):
    """An agent with one tool, run for real on every call the model makes."""

    model = "llama3.2"
    prompts = ["What is sqrt(2) * 10, rounded to two decimals?", "Compute (17 + 25) * 3 - 1."]
    tools = [CALCULATOR]
    steps = 3
    weight = 1

    def run_tool(self, call: ToolCall) -> str:
        if call.name != "evaluate":
            return f"error: no tool named {call.name!r}"
        return evaluate(str(call.arguments.get("expression", "")))
