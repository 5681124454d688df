"""``python -m loadgen COMMAND``: the same as ``ollama-loadtest COMMAND``."""

import sys

from loadgen.cli import main

sys.exit(main())
