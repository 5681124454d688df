"""``python -m locustfiles run SCENARIO``: kept for existing scripts; the same as ``ollama-loadtest run``."""

import sys

from loadgen.cli import main

sys.exit(main())
