"""pytest fixtures that invoke a module's functions exactly as ``cmfleet invoke`` does.

    def test_add(cm_invoke):
        assert cm_invoke("hello", "add", {"x": 10, "y": 20}) == 30

    def test_error(cm_module):
        outcome = cm_module("hello").invoke("add", {"x": 1})
        assert not outcome.ok and "KeyError" in outcome.error_message
        assert outcome.failure().error == "KeyError: 'y'"  # cmfleet.errors' shape: error, traceback, hint

Both go through the plugin registry: the SDK's payload conversion and context, every plugin's endpoints
and middleware, and the SDK's JSON encoding of the result.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


class InvocationFailed(AssertionError):
    """A function returned an SDK error result where the test expected a value.

    Its message is the error in the shape every runner shows (``cmfleet.errors``): ``<module>.<function> failed:
    <Type: message>``, then the module's own frames; ``failure`` holds the fields."""

    def __init__(self, message: str, failure: Any = None) -> None:
        super().__init__(message)
        self.failure = failure


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
            cache[name] = load_registry(cm_repository.module(name))
        return cache[name]

    return get


@pytest.fixture
def cm_invoke(cm_module) -> Callable[..., Any]:
    """``cm_invoke(module, function, event)`` -> the JSON result (a list of items when streaming).

    Raises ``InvocationFailed`` with the error and the module's own frames when the function fails.
    """

    def invoke(module: str, function: str, event: Any = None, **context: Any) -> Any:
        __tracebackhide__ = True  # a failure's report shows the test's line and the module's frames, not this one
        registry = cm_module(module)
        registry.get(function)  # unknown names fail with the list of known ones
        outcome = registry.invoke(function, {} if event is None else event, context=context or None)
        if not outcome.ok:
            failure = outcome.failure()
            raise InvocationFailed(failure.report(f"{module}.{function}"), failure)
        return outcome.value

    return invoke
