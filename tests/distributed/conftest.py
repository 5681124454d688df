"""Fixtures for runs across real master and worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.distributed.cluster import Cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A master and workers the test starts; every one still running is killed at teardown."""
    nodes = Cluster(tmp_path)
    yield nodes
    nodes.kill()
