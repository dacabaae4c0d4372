"""cmfleet: a toolkit for a monorepo of Palantir Foundry compute modules.

The public names plugin authors need are re-exported here; everything else lives in its own module.
"""

from __future__ import annotations

from cmfleet.hookspecs import hookimpl

__all__ = ["__version__", "hookimpl"]

# What ``__version__`` says when cmfleet was never built or installed (a bare copy of the source folder).
_UNKNOWN_VERSION = "0+unknown"


def _installed_version() -> str:
    """The version cmfleet was built as: ``_version.py``, written by hatch-vcs at every build (wheel or
    editable), else the installed distribution's metadata, else ``0+unknown``."""
    try:
        from cmfleet._version import __version__ as built
    except ImportError:
        pass
    else:
        return built
    # importlib.metadata costs ~15 ms to import, so only a source tree without _version.py pays it.
    from importlib import metadata

    try:
        return metadata.version("cmfleet")
    except metadata.PackageNotFoundError:
        return _UNKNOWN_VERSION


def __getattr__(name: str) -> str:
    # ``__version__`` is resolved on first use, not at import: importing cmfleet (every module's app, the
    # container entrypoint, the pytest and tox plugins) must not pay for a version lookup it rarely needs.
    if name == "__version__":
        version = _installed_version()
        globals()["__version__"] = version
        return version
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
