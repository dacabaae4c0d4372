"""cmfleet: a toolkit for a monorepo of Palantir Foundry compute modules.

The public names plugin authors need are re-exported here; everything else lives in its own module.
"""

from cmfleet.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl"]
