"""Layer 6, the command line `bench`: the group and what every command shares (`common`), the commands
on suites and results (`commands`) and on plugins (`plugin_commands`). Importing this package
registers every command on :data:`main`."""

from harness.cli import commands, plugin_commands  # noqa: F401  (each registers its commands on main)
from harness.cli.common import main

__all__ = ["main"]
