"""pytest fixtures that invoke a module's functions exactly as ``cmfleet invoke`` does.

    def test_add(cm_invoke):
        assert cm_invoke("hello", "add", {"x": 10, "y": 20}) == 30

    def test_error(cm_module):
        outcome = cm_module("hello").invoke("add", {"x": 1})
        assert not outcome.ok and "KeyError" in outcome.error_message

Both go through the plugin registry: the SDK's payload conversion and context, every plugin's endpoints
and middleware, and the SDK's JSON encoding of the result. When this interpreter lacks what a module declares
(a third-party dependency the development environment does not have), the module runs in its own env, the one
``cmfleet dev`` makes (runtime/environments/select.py): each call is a ``cmfleet invoke --json`` there.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


class InvocationFailed(AssertionError):
    """A function returned an SDK error result where the test expected a value."""


@pytest.fixture(scope="session")
def cm_repository(request: pytest.FixtureRequest):
    """The cmfleet repository under test (found from pytest's rootdir, or ``CMFLEET_ROOT``)."""
    from cmfleet.discovery import Repository, find_root

    return Repository.load(find_root(Path(str(request.config.rootpath))))


@pytest.fixture(scope="session")
def cm_module(cm_repository) -> Callable[[str], Any]:
    """``cm_module(name)`` -> the module's ``ModuleRegistry`` (loaded once per session)."""
    from cmfleet.registry import load_registry

    cache: dict[str, Any] = {}

    def get(name: str):
        if name not in cache:
            unit = cm_repository.module(name)
            python = _module_python(cm_repository, unit)
            cache[name] = load_registry(unit) if python is None else ModuleInOwnEnv(name, python, cm_repository.root)
        return cache[name]

    return get


@pytest.fixture
def cm_invoke(cm_module) -> Callable[..., Any]:
    """``cm_invoke(module, function, event)`` -> the JSON result (a list of items when streaming).

    Raises ``InvocationFailed`` with the SDK's error message when the function fails.
    """

    def invoke(module: str, function: str, event: Any = None, **context: Any) -> Any:
        registry = cm_module(module)
        registry.get(function)  # unknown names fail with the list of known ones
        outcome = registry.invoke(function, {} if event is None else event, context=context or None)
        if not outcome.ok:
            raise InvocationFailed(f"{module}.{function} failed: {outcome.error_message}")
        return outcome.value

    return invoke


def _module_python(repo: Any, unit: Any) -> Path | None:
    """The Python of ``unit``'s own env when this one lacks what it declares (``None``: run it here)."""
    try:
        from cmfleet.runtime.environments.select import module_python
    except ImportError:  # pragma: no cover - cmfleet without its runtime extra
        return None
    return module_python(repo, unit)


@dataclass
class EnvOutcome:
    """The outcome of a call made in the module's own env (the fields of ``cmfleet invoke --json``)."""

    ok: bool
    value: Any
    error_message: str | None
    job_id: str | None = None


class ModuleInOwnEnv:
    """A module whose calls run in its own env: ``invoke`` as on a ``ModuleRegistry``, one process per call."""

    def __init__(self, name: str, python: Path, root: Path) -> None:
        self.name, self.python, self.root = name, python, root

    def get(self, function: str) -> None:
        """Unknown function names are reported by the call itself (``cmfleet invoke`` exits 2 listing them)."""

    def invoke(self, function: str, event: Any = None, context: dict[str, Any] | None = None, **_: Any) -> EnvOutcome:
        from cmfleet.runtime.environments.select import child_environment

        if context:
            raise TypeError(f"{self.name} runs in its own env, where a call takes no context ({sorted(context)})")
        argv = [str(self.python), "-m", "cmfleet", "invoke", self.name, function, "-", "--json"]
        done = subprocess.run(
            argv,
            input=json.dumps({} if event is None else event),
            cwd=self.root,
            env=child_environment(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        try:
            data = json.loads(done.stdout)
        except ValueError:
            raise InvocationFailed(
                f"{self.name}.{function} in the module's env ({self.python}) exited {done.returncode}: "
                f"{done.stderr.strip()}"
            ) from None
        return EnvOutcome(bool(data["ok"]), data.get("result"), data.get("error"), data.get("job_id"))
