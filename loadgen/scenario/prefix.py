"""A shared prefix: the same leading text on every request of a workload, so the prompt cache is exercised.

Written ``prefix: {words: 800, count: 1, seed: 0}`` on any workload: ``count`` texts of ``words`` words of
synthetic prose (``prompts.prose``, the same for the same settings on every machine). Each session (a
conversation, an agent job, a batch) uses one, chosen by a hash of its session id, so which one a request
used follows from its ``session_id``. The users put it in front of each request: a leading system message
on the chat endpoint, the leading text of the prompt on the generate endpoint (``loadgen.users.base``).
"""

from __future__ import annotations

import random
import zlib
from functools import cached_property
from typing import Annotated

from pydantic import StrictInt, model_validator

from loadgen.scenario.errors import FieldProblem
from loadgen.scenario.prompts import MAX_SYNTHETIC_WORDS, prose
from loadgen.scenario.spec import Spec, within


class Prefix(Spec):
    """``count`` prefixes of ``words`` words, generated from ``seed``."""

    words: Annotated[StrictInt, within(1, 100_000)]
    count: Annotated[StrictInt, within(1, 10_000)] = 1
    seed: StrictInt = 0

    @model_validator(mode="after")
    def _check_size(self) -> Prefix:
        if self.words * self.count > MAX_SYNTHETIC_WORDS:
            raise FieldProblem(f"would generate {self.words * self.count} words in all, more than "
                               f"{MAX_SYNTHETIC_WORDS} (every worker makes a copy); lower count or words", "count")
        return self

    @cached_property
    def texts(self) -> tuple[str, ...]:
        """The prefixes."""
        rng = random.Random(self.seed)
        return tuple(prose(rng, self.words) for _ in range(self.count))

    def for_session(self, session_id: str) -> str:
        """The prefix of a session: ``texts[crc32(session_id) % count]``."""
        return self.texts[zlib.crc32(session_id.encode()) % self.count]
