"""One run as the master (or local runner) keeps it: records gathered from every node, the run directory, the load
shape that drives it, the servers' sampled state and the live view; the messages between master and workers."""

from loadgen.run.recorder import RunRecorder, run_of
from loadgen.run.shape import ScenarioShape, plan

__all__ = ["RunRecorder", "ScenarioShape", "plan", "run_of"]
