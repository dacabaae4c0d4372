"""The endpoints of a module, as the hooks declare them: the one source for every runner.

``cmfleet invoke``, the pytest fixtures, ``cmfleet schema``, the container entrypoint and the local replicas
all call :func:`load_registry` and then either :meth:`ModuleRegistry.invoke` (in process, the SDK's own
payload conversion, context and serialisation) or :meth:`ModuleRegistry.register_with_sdk` (hand the
plugin-wrapped functions to the official SDK, which then runs them as Foundry does).
"""

from __future__ import annotations

import functools
import json
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cmfleet import errors
from cmfleet.discovery import Unit
from cmfleet.errors import FunctionError

UNKNOWN_QUERY_TYPE = {"error": "Unknown query type"}  # the SDK's own answer


class RegistryError(Exception):
    """An endpoint that cannot be registered (duplicate name, schema the SDK rejects)."""


@dataclass
class Endpoint:
    """One callable function of a module."""

    name: str
    func: Callable[..., Any]
    plugin: str
    streaming: bool = False
    edits: list[Any] | None = None
    schema: dict[str, Any] = field(default_factory=dict)
    conversion: Any = None
    context_typed: bool = False


@dataclass
class Call:
    """One invocation, as the ``cmfleet_invoke`` hook sees it.

    ``event`` is the payload after the SDK's conversion (a dataclass instance for a typed function);
    ``raw_event`` is the JSON value as received. ``state`` is scratch space for middleware.
    """

    module: str
    name: str
    endpoint: Endpoint
    context: Any
    event: Any
    raw_event: Any
    job_id: str
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """The result of an in-process invocation, in the shapes the SDK posts to the runtime."""

    ok: bool
    value: Any  # the function's return value, or the SDK's error object
    body: bytes  # exactly the bytes the SDK would POST as the result
    streamed: list[Any] | None = None  # the items of a streaming result
    exception: BaseException | None = None  # what the function raised, if it raised
    root: Path | None = None  # the module's folder: traceback paths are shown relative to it

    def failure(self) -> FunctionError | None:
        """The error in the one shape every runner shows (``cmfleet.errors``), or None when the call succeeded."""
        if self.ok:
            return None
        if self.exception is not None:
            return errors.from_exception(self.exception, self.root)
        return errors.from_result(self.value, self.root) or errors.FunctionError(str(self.error_message))

    def user_traceback(self) -> str:
        """The error for people: the module's own frames (no cmfleet, pluggy, SDK), the error line, a hint."""
        failure = self.failure()
        return failure.text() if failure is not None else ""

    @property
    def error_message(self) -> str | None:
        """The message of an SDK error result (``{"exception": ...}`` or ``{"error": ...}``)."""
        if self.ok:
            return None
        return str(self.value.get("exception") or self.value.get("error"))


def _parse(func: Callable[..., Any], name: str, edits: list[Any] | None) -> Any:
    from compute_modules.function_registry.function_schema_parser import parse_function_schema

    return parse_function_schema(func, name, edits=edits or [], api_name_type_id_mapping={})


class EndpointRegistrar:
    """The ``register`` callback handed to ``cmfleet_register_endpoints``."""

    def __init__(self, registry: ModuleRegistry) -> None:
        self._registry = registry
        self.plugin = "?"

    def set_app(self, app: Any) -> None:
        """Record the imported ``app.py`` module (used by the built-in ``sdk_app`` plugin)."""
        self._registry.app = app

    def __call__(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        streaming: bool = False,
        edits: list[Any] | None = None,
        _prepared: Any = None,
    ) -> None:
        """Register ``func`` (signature ``(context, event)``) under ``name`` (default ``func.__name__``)."""
        name = name or func.__name__
        existing = self._registry.endpoints.get(name)
        if existing is not None:
            raise RegistryError(
                f"function name {name!r} is registered twice in module {self._registry.module.name!r} "
                f"(by {existing.plugin} and by {self.plugin}); rename one of them"
            )
        if _prepared is not None:
            schema, conversion, context_typed = _prepared
        else:
            try:
                parsed = _parse(func, name, edits)
            except Exception as exc:  # the SDK raises ValueError/TypeError/KeyError for types it rejects
                raise RegistryError(f"the SDK rejects the signature of {name!r} (from {self.plugin}): {exc}") from exc
            schema, conversion, context_typed = (
                dict(parsed.function_schema),
                parsed.class_node,
                parsed.is_context_typed,
            )
        self._registry.endpoints[name] = Endpoint(
            name, func, self.plugin, streaming, edits, schema, conversion, context_typed
        )


@dataclass
class ModuleRegistry:
    """Every endpoint of one module, from every plugin."""

    module: Unit
    pm: Any
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    app: Any = None  # the imported app.py, set by the built-in sdk_app plugin

    def names(self) -> list[str]:
        return list(self.endpoints)

    def described(self) -> str:
        """The function names with where each comes from (``add, hello, health (from cmhealth)``)."""
        return describe_functions((e.name, origin_of(e.plugin)) for e in self.endpoints.values())

    def get(self, name: str) -> Endpoint:
        """The endpoint called ``name``; unknown names raise UnknownFunctionError listing the known ones."""
        try:
            return self.endpoints[name]
        except KeyError:
            raise UnknownFunctionError(self.module.name, name, self.names(), self.described()) from None

    def schemas(self) -> list[dict[str, Any]]:
        """The function schemas exactly as the SDK posts them, in registration order."""
        return [dict(e.schema) for e in self.endpoints.values()]

    # -- running ---------------------------------------------------------------------------------------

    def _context(self, job_id: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        from compute_modules.context import get_extra_context_parameters

        return {
            "jobId": job_id,
            "tempCredsAuthToken": "",
            "authHeader": "",
            "userId": "",
            **get_extra_context_parameters(),
            **(extra or {}),
        }

    def call(self, endpoint: Endpoint, context: Any, raw_event: Any) -> Any:
        """Convert the payload and context as the SDK does, then run the ``cmfleet_invoke`` hook chain."""
        from compute_modules.context import QueryContext
        from compute_modules.function_registry.function_payload_converter import convert_payload

        event = raw_event
        if endpoint.conversion is not None:
            event = convert_payload(raw_event, endpoint.conversion)
        if endpoint.context_typed and isinstance(context, dict):
            context = QueryContext(**context)
        job_id = context["jobId"] if isinstance(context, dict) else context.jobId
        call = Call(self.module.name, endpoint.name, endpoint, context, event, raw_event, job_id)
        return self.pm.hook.cmfleet_invoke(call=call)

    def invoke(
        self, name: str, event: Any, *, job_id: str | None = None, context: dict[str, Any] | None = None
    ) -> Outcome:
        """Run ``name`` with the JSON ``event`` in process, exactly as the SDK's ``handle_job`` does.

        Unknown names give the SDK's ``{"error": "Unknown query type"}``; an exception gives
        ``{"exception": "<message>: <traceback>"}``; a streaming function's items are collected.
        """
        outcome = self._invoke(name, event, job_id, context)
        outcome.root = self.module.path
        return outcome

    def _invoke(self, name: str, event: Any, job_id: str | None, context: dict[str, Any] | None) -> Outcome:
        from compute_modules.client.encoder import CustomJSONEncoder

        job_id = job_id or str(uuid.uuid4())
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            return Outcome(False, dict(UNKNOWN_QUERY_TYPE), json.dumps(UNKNOWN_QUERY_TYPE).encode())
        try:
            result = self.call(endpoint, self._context(job_id, context), event)
        except Exception as exc:  # noqa: BLE001 - the SDK turns every exception into an error result
            failed = {"exception": f"{exc}: {traceback.format_exc()}"}
            return Outcome(False, failed, json.dumps(failed).encode(), exception=exc)
        if endpoint.streaming and isinstance(result, Iterable) and not isinstance(result, dict):
            items: list[Any] = []
            chunks: list[bytes] = []
            try:
                for item in result:
                    chunks.append(json.dumps(item).encode("utf-8"))
                    items.append(item)
            except Exception as exc:  # noqa: BLE001
                failed = {"exception": f"{exc}: {traceback.format_exc()}"}
                return Outcome(False, failed, json.dumps(failed).encode(), streamed=items, exception=exc)
            return Outcome(True, items, b"".join(chunks), streamed=items)
        try:
            body = json.dumps(result, cls=CustomJSONEncoder).encode("utf-8")
        except Exception as exc:  # noqa: BLE001
            failed = {"exception": f"{exc}: {traceback.format_exc()}"}
            return Outcome(False, failed, json.dumps(failed).encode())
        if isinstance(result, dict) and set(result) in ({"exception"}, {"error"}):
            return Outcome(False, result, body)
        return Outcome(True, json.loads(body), body)

    def register_with_sdk(self) -> None:
        """Replace the SDK's registrations with this registry's endpoints, each wrapped by the hooks.

        The wrapper keeps the function's name and annotations (``functools.wraps``), so the SDK parses the
        same schema and performs the same payload conversion; the hook chain runs inside it.
        """
        from compute_modules import add_function

        from cmfleet.loader import clear_sdk_registries

        clear_sdk_registries()
        for endpoint in self.endpoints.values():
            add_function(self._sdk_wrapper(endpoint), streaming=endpoint.streaming, edits=endpoint.edits)

    def _sdk_wrapper(self, endpoint: Endpoint) -> Callable[..., Any]:
        registry = self

        @functools.wraps(endpoint.func)
        def run(context: Any, event: Any) -> Any:
            # The SDK has already converted the payload and context; only the hook chain is left.
            job_id = context["jobId"] if isinstance(context, dict) else context.jobId
            call = Call(registry.module.name, endpoint.name, endpoint, context, event, event, job_id)
            try:
                return registry.pm.hook.cmfleet_invoke(call=call)
            except Exception:
                # The caller gets the error with the module's frames only (cmfleet.errors); the replica's log
                # keeps the whole traceback (the SDK itself logs the message alone).
                _log_failure(endpoint.name)
                raise

        run.__name__ = endpoint.name
        return run


def _log_failure(name: str) -> None:
    """Log the traceback being handled through the SDK's logger (its lines carry the job id)."""
    from compute_modules.logging import get_logger

    get_logger("cmfleet").error(f"{name} failed:\n{traceback.format_exc().rstrip()}")


def format_user_error(exc: BaseException) -> str:
    """The module's frames of ``exc`` and its error line (kept for callers of the old name: ``cmfleet.errors``)."""
    return errors.from_exception(exc).text()


class UnknownFunctionError(KeyError):
    """A function name the module does not have."""

    def __init__(self, module: str, name: str, known: list[str], described: str | None = None) -> None:
        self.module, self.name, self.known = module, name, known
        shown = described or ", ".join(known) or "(none)"
        super().__init__(f"module {module!r} has no function {name!r}; known functions: {shown}")

    def __str__(self) -> str:
        return self.args[0]


def module_unit(target: Unit | Path | str, root: Path | None = None) -> Unit:
    """A Unit for a module given as a Unit, a folder path, or a name in the repository."""
    if isinstance(target, Unit):
        return target
    path = Path(target)
    if path.is_dir() and (path / "app.py").exists():
        path = path.resolve()
        return Unit(path.name, "module", path, path.parent)
    from cmfleet.discovery import Repository

    return Repository.load(root).module(str(target))


APP_ORIGIN = "app.py"  # where the functions of the built-in sdk_app plugin come from
_SDK_APP = "cmfleet.builtin.sdk_app"


def origin_of(plugin: str) -> str:
    """Where an endpoint comes from, for people: ``app.py``, or the name of the plugin that registered it."""
    return APP_ORIGIN if plugin == _SDK_APP else plugin


#: Origins that are the module's own code: app.py, or another SDK's functions (declared in its settings, or
#: posted by its replica).
OWN_ORIGINS = frozenset({APP_ORIGIN, "settings", "module"})


def describe_functions(functions: Iterable[tuple[str, str]]) -> str:
    """``add, hello, health (from cmhealth)``: names, with the plugin that adds a function when one does."""
    shown = [name if origin in OWN_ORIGINS else f"{name} (from {origin})" for name, origin in functions]
    return ", ".join(shown) or "(none)"


def _repository_of(unit: Unit) -> Any:
    """The repository ``unit`` is a module of, or None (a module folder on its own, as in an image)."""
    from cmfleet.discovery import MODULES_DIR, DiscoveryError, Repository

    for candidate in unit.path.resolve().parents:
        if (candidate / MODULES_DIR).is_dir() and (candidate / "pyproject.toml").is_file():
            try:
                repo = Repository.load(candidate)
            except DiscoveryError:
                return None
            found = repo.units.get(unit.name)
            return repo if found is not None and found.path.resolve() == unit.path.resolve() else None
    return None


def plugin_scope(unit: Unit, repo: Any = None) -> set[str] | None:
    """The distributions whose plugins may add endpoints to ``unit``: what its image installs, its declared
    requirements and, transitively, its shared libraries and theirs. None (every installed plugin) for a module
    outside a repository: in an image, what is installed is what the module declared."""
    from cmfleet.discovery import DiscoveryError, normalize, requirement_name

    repo = repo if repo is not None else _repository_of(unit)
    if repo is None:
        return None
    try:
        unit = repo.module(unit.name)
        units = [unit, *repo.closure(unit)]
        return {normalize(u.distribution) for u in units} | {requirement_name(r) for u in units for r in u.dependencies}
    except (DiscoveryError, KeyError):
        return None


def foreign_plugins(pm: Any, unit: Unit, repo: Any = None) -> list[Any]:
    """The entry-point plugins installed here that ``unit``'s image would not have (their distribution is not
    among its dependencies, :func:`plugin_scope`): they add no endpoint to it, so every runner (invoke, tests,
    schema, list, the gateway, the deployed image) sees the same functions. (Their ``cmfleet_invoke`` middleware
    still wraps calls where they are installed: it observes calls, it adds no function.)"""
    from cmfleet.discovery import normalize

    scope = plugin_scope(unit, repo)
    if scope is None:
        return []
    return [
        plugin
        for plugin, dist in pm.list_plugin_distinfo()
        if dist is not None and normalize(dist.metadata["Name"]) not in scope
    ]


def endpoint_hooks(pm: Any, unit: Unit, repo: Any = None) -> list[Any]:
    """The ``cmfleet_register_endpoints`` implementations that apply to ``unit``, in registration order: the
    built-ins, directly registered plugins and the entry-point plugins of distributions the module depends on."""
    foreign = foreign_plugins(pm, unit, repo)
    return [impl for impl in pm.hook.cmfleet_register_endpoints.get_hookimpls() if impl.plugin not in foreign]


@dataclass(frozen=True)
class DeclaredFunction:
    """A function of a module as known without importing its code."""

    name: str
    streaming: bool
    origin: str  # "app.py" or the plugin's name


class _Recorder:
    """A ``register`` callback that only notes names (for :func:`declared_functions`)."""

    def __init__(self) -> None:
        self.plugin = "?"
        self.found: list[DeclaredFunction] = []

    def set_app(self, app: Any) -> None:  # pragma: no cover - only sdk_app calls it, and it is skipped
        pass

    def __call__(self, func: Callable[..., Any], *, name: str | None = None, streaming: bool = False, **_: Any) -> None:
        self.found.append(DeclaredFunction(name or func.__name__, streaming, self.plugin))


def declared_functions(unit: Unit, pm: Any = None, repo: Any = None) -> list[DeclaredFunction]:
    """A module's functions without importing its code: ``app.py``'s as read statically, then those of the plugins
    that apply to it (their hooks are called with a recorder; ``app.py`` is never imported). What ``list``, the
    gateway and the console show, and what :func:`load_registry` loads."""
    from cmfleet.plugins import get_plugin_manager

    pm = pm or get_plugin_manager()
    out = [DeclaredFunction(f.name, f.streaming, APP_ORIGIN) for f in unit.functions]
    recorder = _Recorder()
    for impl in endpoint_hooks(pm, unit, repo):
        if impl.plugin_name == _SDK_APP:
            continue
        recorder.plugin = impl.plugin_name
        kwargs = {"module": unit, "register": recorder}
        try:
            impl.function(**{k: kwargs[k] for k in impl.argnames})
        except Exception:  # noqa: BLE001 - a plugin that needs the live module says so when it is loaded
            continue
    seen = {f.name for f in out}
    return out + [f for f in recorder.found if f.name not in seen]


def load_registry(target: Unit | Path | str, pm: Any = None) -> ModuleRegistry:
    """Load a module and ask every plugin that applies to it (:func:`endpoint_hooks`) for its endpoints."""
    from cmfleet.plugins import get_plugin_manager

    unit = module_unit(target)
    pm = pm or get_plugin_manager()
    registry = ModuleRegistry(unit, pm)
    registrar = EndpointRegistrar(registry)
    # One plugin at a time, in registration order (the module's own app.py first), so a duplicate name
    # can be blamed on the plugin that added it.
    for impl in endpoint_hooks(pm, unit):
        registrar.plugin = impl.plugin_name
        kwargs = {"module": unit, "register": registrar}
        impl.function(**{k: kwargs[k] for k in impl.argnames})
    return registry
