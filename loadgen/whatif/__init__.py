"""What-if: a scenario run against a fitted twin of a measured server (``emulator --preset-file``), once per
setting, accelerated, with every time scaled back to the server's; see ``docs/whatif.md``."""
