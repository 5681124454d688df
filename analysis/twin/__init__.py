"""Fit the emulator to a measured server: the twin preset file and its fit report.

``fit_twin(runs)`` reads how fast one sequence decodes alone, how each slows as more share the engine, how
fast prompts are evaluated, how long a load takes and how long outputs are, from runs of one host and
model; ``write_twin`` writes the preset file the emulator reads (``FORMAT``) and the Markdown report::

    from analysis import load_run
    from analysis.twin import fit_twin, write_twin
    twin = fit_twin([load_run("results/slots-1"), load_run("results/slots-4")])
    write_twin(twin, Path("twin.yaml"))
"""

from analysis.twin.fit import Twin, fit_twin
from analysis.twin.params import Parameter
from analysis.twin.twin_file import FORMAT, summary_lines, twin_document, twin_markdown, twin_yaml, write_twin

__all__ = ["FORMAT", "Parameter", "Twin", "fit_twin", "summary_lines", "twin_document", "twin_markdown",
           "twin_yaml", "write_twin"]
