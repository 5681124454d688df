"""What the request handlers use of the running emulator.

The handlers (``native_api``, ``openai_api``, ``embeddings``, ``resolve``) type against ``Emulator``, not
``emulator.app.App``, so the app can import them without an import circle. ``App`` is the one
implementation; a test can hand the handlers any object with these attributes.
"""

from __future__ import annotations

import random
from typing import Protocol

from emulator.catalog import Catalog
from emulator.config import Config
from emulator.presets import Preset
from emulator.scheduler import Scheduler


class Emulator(Protocol):
    """The emulator as a handler sees it: settings, speed model, models, scheduler and randomness."""

    @property
    def config(self) -> Config: ...

    @property
    def preset(self) -> Preset: ...

    @property
    def catalog(self) -> Catalog: ...

    @property
    def scheduler(self) -> Scheduler:
        """The running scheduler (requests are served only once the emulator has started)."""
        ...

    @property
    def rng(self) -> random.Random:
        """The process's seeded generator (response ids)."""
        ...
