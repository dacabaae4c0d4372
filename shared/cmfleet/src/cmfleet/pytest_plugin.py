"""pytest fixtures that invoke a module's functions exactly as the runtime does.

    def test_add(cm_invoke):
        assert cm_invoke("hello", "add", {"x": 10, "y": 20}) == 30

    def test_error(cm_module):
        outcome = cm_module("hello").invoke("add", {"x": 1})
        assert not outcome.ok and "KeyError" in outcome.error_message
        assert outcome.failure().error == "KeyError: 'y'"  # cmfleet.errors' shape: error, traceback, hint

Two targets run the same tests (``--cm-target``, or ``$CMFLEET_TEST_TARGET``):

* ``source`` (the default): in process, through the plugin registry: the SDK's payload conversion and context,
  every plugin's endpoints and middleware, and the SDK's JSON encoding of the result.
* ``artifact``: the module's built artifact, installed as its image installs it
  (``python -m cmfleet.artifacts.installed prepare MODULE``, which the tox env ``artifact-<module>`` runs): its
  ENTRYPOINT runs as the replica of a local runtime (the real runtime protocol) and every call goes through the
  runtime's gateway. The context is the runtime's (extra context values are not sent). A test that inspects the
  test process's own state (captured output, a library's in-memory registry) is marked ``cm_in_process`` and runs
  on the source target only; the run says how many it left out.

On the source target, when this interpreter lacks what a module declares (a third-party dependency the development
environment does not have), the module runs in its own env, the one ``cmfleet dev`` makes
(runtime/environments/select.py): each call is a ``cmfleet invoke --json`` there.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from cmfleet.discovery import Repository

TARGET_ENV = "CMFLEET_TEST_TARGET"
ARTIFACT_DIR_ENV = "CMFLEET_ARTIFACT_DIR"
TARGETS = ("source", "artifact")
IN_PROCESS_MARK = "cm_in_process"


class InvocationFailed(AssertionError):
    """A function returned an SDK error result where the test expected a value.

    Its message is the error in the shape every runner shows (``cmfleet.errors``): ``<module>.<function> failed:
    <Type: message>``, then the module's own frames; ``failure`` holds the fields."""

    def __init__(self, message: str, failure: Any = None) -> None:
        super().__init__(message)
        self.failure = failure


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cmfleet")
    group.addoption(
        "--cm-target",
        choices=TARGETS,
        default=None,
        help=f"what cm_invoke / cm_module call: the module's source in process, or its installed artifact "
        f"through a local runtime (default: ${TARGET_ENV}, else source)",
    )
    group.addoption(
        "--cm-artifacts",
        default=None,
        metavar="DIR",
        help=f"with --cm-target artifact: the folder `cmfleet.artifacts.installed prepare` installed into "
        f"(default: ${ARTIFACT_DIR_ENV}, else the tox env's tmp/artifact-<module>)",
    )


def _target(config: pytest.Config) -> str:
    value = config.getoption("--cm-target") or os.environ.get(TARGET_ENV) or "source"
    if value not in TARGETS:
        raise pytest.UsageError(f"${TARGET_ENV}={value!r}: choose one of {', '.join(TARGETS)}")
    return value


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{IN_PROCESS_MARK}: reads the test process's own state; runs on the source target only"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _target(config) != "artifact":
        return
    kept = [item for item in items if item.get_closest_marker(IN_PROCESS_MARK) is None]
    left = [item for item in items if item.get_closest_marker(IN_PROCESS_MARK) is not None]
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


def pytest_report_header(config: pytest.Config) -> str:
    return f"cmfleet: cm_invoke / cm_module target: {_target(config)}"


@pytest.fixture(scope="session")
def cm_repository(request: pytest.FixtureRequest) -> Repository:
    """The cmfleet repository under test (found from pytest's rootdir, or ``CMFLEET_ROOT``)."""
    from cmfleet.discovery import Repository, find_root

    return Repository.load(find_root(Path(str(request.config.rootpath))))


@pytest.fixture(scope="session")
def cm_module(request: pytest.FixtureRequest, cm_repository: Repository) -> Iterator[Callable[[str], Any]]:
    """``cm_module(name)`` -> the module's ``ModuleRegistry`` (loaded once per session), or on the artifact
    target an ``InstalledModule`` with the same ``invoke``, ``get``, ``names``, ``schemas`` and ``endpoints``."""
    if _target(request.config) == "artifact":
        served = _ArtifactModules(cm_repository.root, request.config.getoption("--cm-artifacts"))
        try:
            yield served.get
        finally:
            served.close()
        return
    from cmfleet.registry import load_registry

    cache: dict[str, Any] = {}

    def get(name: str) -> Any:  # a ModuleRegistry, or a ModuleInOwnEnv with the same methods
        if name not in cache:
            unit = cm_repository.module(name)
            python = _module_python(cm_repository, unit)
            cache[name] = load_registry(unit) if python is None else ModuleInOwnEnv(name, python, cm_repository.root)
        return cache[name]

    yield get


@pytest.fixture
def cm_invoke(cm_module: Callable[[str], Any]) -> Callable[..., Any]:
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


# -- the artifact target ----------------------------------------------------------------------------------------


@dataclass
class InstalledEndpoint:
    """A function of an installed module, as its SDK posted it."""

    name: str
    streaming: bool
    schema: dict[str, Any]


@dataclass
class InstalledModule:
    """An installed module served by a local runtime; calls go through the runtime's gateway."""

    name: str
    client: Any  # httpx.Client on the gateway
    endpoints: dict[str, InstalledEndpoint] = field(default_factory=dict)

    def names(self) -> list[str]:
        return list(self.endpoints)

    def get(self, name: str) -> InstalledEndpoint:
        from cmcore.registry import UnknownFunctionError

        try:
            return self.endpoints[name]
        except KeyError:
            raise UnknownFunctionError(self.name, name, self.names()) from None

    def schemas(self) -> list[dict[str, Any]]:
        """The schemas the installed module's SDK posted, in its order."""
        return [dict(e.schema) for e in self.endpoints.values()]

    def invoke(self, name: str, event: Any, *, job_id: str | None = None, context: dict[str, Any] | None = None) -> Any:
        """Call ``name`` through the gateway; the ``Outcome`` the in-process registry would give."""
        from cmcore.registry import UNKNOWN_QUERY_TYPE, Outcome

        endpoint = self.endpoints.get(name)
        if endpoint is None:
            return Outcome(False, dict(UNKNOWN_QUERY_TYPE), json.dumps(UNKNOWN_QUERY_TYPE).encode())
        url = f"/api/modules/{self.name}/functions/{name}"
        if endpoint.streaming:  # item by item as the replica sends them: the SDK posts each as its own chunk
            response = self.client.post(url, json=event, headers={"Accept": "application/x-ndjson"}, timeout=120)
            lines = [line for line in response.text.splitlines() if line.strip()]
            items = [json.loads(line) for line in lines]
            ended = items[-1] if items else None
            if response.status_code == 200 and not (isinstance(ended, dict) and {"error", "state"} <= set(ended)):
                return Outcome(True, items, "".join(lines).encode(), streamed=items)
        else:
            response = self.client.post(url, json=event, timeout=120)
            if response.status_code == 200:
                return Outcome(True, response.json(), response.content)
        try:
            body = response.json() if response.status_code != 200 else ended
        except ValueError:
            body = response.text
        message = body.get("error") if isinstance(body, dict) else str(body)
        failed = {"exception": f"HTTP {response.status_code}: {message}"}
        return Outcome(False, failed, response.content)


class _ArtifactModules:
    """One local runtime per installed module, started on first use, whose replica runs the image's ENTRYPOINT."""

    def __init__(self, root: Path, folder: str | None) -> None:
        from contextlib import ExitStack

        self.root, self.folder = root, folder or os.environ.get(ARTIFACT_DIR_ENV)
        self.served: dict[str, InstalledModule] = {}
        self._stack = ExitStack()

    def get(self, name: str) -> InstalledModule:
        if name not in self.served:
            self.served[name] = self._start(name)
        return self.served[name]

    def _start(self, name: str) -> InstalledModule:
        from cmfleet.artifacts import BuildError
        from cmfleet.artifacts.installed import Installation, default_folder, served

        folder = Path(self.folder) if self.folder else default_folder(name)
        try:
            installation = Installation.load(folder)
        except BuildError as exc:
            raise pytest.UsageError(str(exc)) from None
        if installation.module != name:
            raise pytest.UsageError(f"{folder} holds module {installation.module!r}, not {name!r}")
        client, functions = self._stack.enter_context(served(self.root, installation))
        module = InstalledModule(name, client)
        for function in functions:
            module.endpoints[function["name"]] = InstalledEndpoint(
                function["name"], bool(function["streaming"]), function["schema"]
            )
        return module

    def close(self) -> None:
        self._stack.close()


# -- the source target, in the module's own env -------------------------------------------------------


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
    shape: dict[str, Any] = field(default_factory=dict)  # error, traceback, hint (cmfleet.errors)

    def failure(self) -> Any:
        """The error in the one shape every runner shows, or None when the call succeeded."""
        from cmfleet.errors import FunctionError

        if self.ok:
            return None
        return FunctionError(
            self.shape.get("error") or str(self.error_message), self.shape.get("traceback"), self.shape.get("hint")
        )


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
        shape = {k: data[k] for k in ("error", "traceback", "hint") if data.get(k)}
        return EnvOutcome(bool(data["ok"]), data.get("result"), data.get("error"), data.get("job_id"), shape)
