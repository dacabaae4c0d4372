"""The endpoints of a module, as the hooks declare them: the one source for every runner.

The container entrypoint, local replicas, ``cmfleet invoke``, the pytest fixtures and ``cmfleet schema`` all
call :func:`load_registry` and then either :meth:`ModuleRegistry.invoke` (in process, the SDK's own payload
conversion, context and serialisation) or :meth:`ModuleRegistry.register_with_sdk` (hand the plugin-wrapped
functions to the official SDK, which then runs them as Foundry does).

    >>> registry = load_registry(Path("modules/hello"))          # doctest: +SKIP
    >>> registry.invoke("add", {"x": 1, "y": 2}).value           # doctest: +SKIP
    3
"""

from __future__ import annotations

import dataclasses
import functools
import json
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pluggy

from cmcore import errors
from cmcore.errors import FunctionError
from cmcore.plugins import SDK_APP_PLUGIN

UNKNOWN_QUERY_TYPE = {"error": "Unknown query type"}  # the SDK's own answer


class ModuleRef(Protocol):
    """What the hooks know of a module: its name and its folder (the one holding ``app.py``).

    The toolkit passes its ``cmfleet.discovery.Unit``; the image a :class:`ModuleDir`.
    """

    @property
    def name(self) -> str: ...

    @property
    def path(self) -> Path: ...


@dataclass(frozen=True)
class ModuleDir:
    """A module known only by its folder, as in a container (``/app/<module>``)."""

    name: str
    path: Path

    @classmethod
    def of(cls, folder: Path | str) -> ModuleDir:
        """The module in ``folder`` (named after it)."""
        path = Path(folder).resolve()
        return cls(path.name, path)


class RegistryError(Exception):
    """An endpoint that cannot be registered (duplicate name, schema the SDK rejects)."""


@dataclass
class Endpoint:
    """One callable function of a module, with what the SDK derived from its signature.

    ``schema`` is the function schema exactly as the SDK posts it; ``conversion`` the SDK's payload conversion
    (``None`` for an untyped event); ``plugin`` the plugin that registered it.
    """

    name: str
    func: Callable[..., Any]
    plugin: str = ""
    streaming: bool = False
    edits: list[Any] | None = None
    schema: dict[str, Any] = field(default_factory=dict)
    conversion: Any = None
    context_typed: bool = False

    @classmethod
    def parse(
        cls, func: Callable[..., Any], name: str, *, streaming: bool = False, edits: list[Any] | None = None
    ) -> Endpoint:
        """An endpoint whose schema the SDK's own parser derives from ``func``'s type hints.

        Raises whatever the SDK raises for a signature it rejects (ValueError, TypeError, KeyError).
        """
        from compute_modules.function_registry.function_schema_parser import parse_function_schema

        parsed = parse_function_schema(func, name, edits=edits or [], api_name_type_id_mapping={})
        return cls(
            name,
            func,
            streaming=streaming,
            edits=edits,
            schema=dict(parsed.function_schema),
            conversion=parsed.class_node,
            context_typed=bool(parsed.is_context_typed),
        )


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
        """The error in the one shape every runner shows (``cmcore.errors``), or None when the call succeeded."""
        if self.ok:
            return None
        if self.exception is not None:
            return errors.from_exception(self.exception, self.root)
        return errors.from_result(self.value, self.root) or errors.FunctionError(str(self.error_message))

    def user_traceback(self) -> str:
        """The error for people: the module's own frames (no cmcore, pluggy, SDK), the error line, a hint."""
        failure = self.failure()
        return failure.text() if failure is not None else ""

    @property
    def error_message(self) -> str | None:
        """The message of an SDK error result (``{"exception": ...}`` or ``{"error": ...}``)."""
        if self.ok:
            return None
        return str(self.value.get("exception") or self.value.get("error"))


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
    ) -> None:
        """Register ``func`` (signature ``(context, event)``) under ``name`` (default ``func.__name__``)."""
        name = name or func.__name__
        self._refuse_duplicate(name)
        try:
            endpoint = Endpoint.parse(func, name, streaming=streaming, edits=edits)
        except Exception as exc:  # the SDK raises ValueError/TypeError/KeyError for types it rejects
            raise RegistryError(f"the SDK rejects the signature of {name!r} (from {self.plugin}): {exc}") from exc
        self.add(endpoint)

    def add(self, endpoint: Endpoint) -> None:
        """Register an endpoint whose schema is already parsed (the SDK's own registrations of ``app.py``)."""
        self._refuse_duplicate(endpoint.name)
        self._registry.endpoints[endpoint.name] = dataclasses.replace(endpoint, plugin=self.plugin)

    def _refuse_duplicate(self, name: str) -> None:
        existing = self._registry.endpoints.get(name)
        if existing is not None:
            raise RegistryError(
                f"function name {name!r} is registered twice in module {self._registry.module.name!r} "
                f"(by {existing.plugin} and by {self.plugin}); rename one of them"
            )


@dataclass
class ModuleRegistry:
    """Every endpoint of one module, from every plugin."""

    module: ModuleRef
    pm: pluggy.PluginManager
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    app: Any = None  # the imported app.py, set by the built-in sdk_app plugin

    def names(self) -> list[str]:
        """The endpoint names, in registration order."""
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
        return self._run_hooks(endpoint, context, event, raw_event)

    def _run_hooks(self, endpoint: Endpoint, context: Any, event: Any, raw_event: Any) -> Any:
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
            return _failed(exc)
        if endpoint.streaming and isinstance(result, Iterable) and not isinstance(result, dict):
            items: list[Any] = []
            chunks: list[bytes] = []
            try:
                for item in result:
                    chunks.append(json.dumps(item).encode("utf-8"))
                    items.append(item)
            except Exception as exc:  # noqa: BLE001
                return _failed(exc, streamed=items)
            return Outcome(True, items, b"".join(chunks), streamed=items)
        try:
            body = json.dumps(result, cls=CustomJSONEncoder).encode("utf-8")
        except Exception as exc:  # noqa: BLE001
            return _failed(exc, keep=False)
        if isinstance(result, dict) and set(result) in ({"exception"}, {"error"}):
            return Outcome(False, result, body)
        return Outcome(True, json.loads(body), body)

    def register_with_sdk(self) -> None:
        """Replace the SDK's registrations with this registry's endpoints, each wrapped by the hooks.

        The wrapper keeps the function's name and annotations (``functools.wraps``), so the SDK parses the
        same schema and performs the same payload conversion; the hook chain runs inside it.
        """
        from compute_modules import add_function

        from cmcore.loader import clear_sdk_registries

        clear_sdk_registries()
        for endpoint in self.endpoints.values():
            add_function(self._sdk_wrapper(endpoint), streaming=endpoint.streaming, edits=endpoint.edits)

    def _sdk_wrapper(self, endpoint: Endpoint) -> Callable[..., Any]:
        @functools.wraps(endpoint.func)
        def run(context: Any, event: Any) -> Any:
            # The SDK has already converted the payload and context; only the hook chain is left.
            try:
                return self._run_hooks(endpoint, context, event, event)
            except Exception:
                # The caller gets the error with the module's frames only (cmcore.errors); the replica's log
                # keeps the whole traceback (the SDK itself logs the message alone).
                _log_failure(endpoint.name)
                raise

        run.__name__ = endpoint.name
        return run


def _failed(exc: Exception, *, streamed: list[Any] | None = None, keep: bool = True) -> Outcome:
    """The SDK's error result for ``exc`` (``keep``: remember the exception for a user traceback)."""
    failed = {"exception": f"{exc}: {traceback.format_exc()}"}
    return Outcome(False, failed, json.dumps(failed).encode(), streamed=streamed, exception=exc if keep else None)


def _log_failure(name: str) -> None:
    """Log the traceback being handled through the SDK's logger (its lines carry the job id)."""
    from compute_modules.logging import get_logger

    get_logger("cmfleet").error(f"{name} failed:\n{traceback.format_exc().rstrip()}")


def format_user_error(exc: BaseException) -> str:
    """The module's frames of ``exc`` and its error line (kept for callers of the old name: ``cmcore.errors``)."""
    return errors.from_exception(exc).text()


APP_ORIGIN = "app.py"  # where the functions of the built-in sdk_app plugin come from

#: Origins that are the module's own code: app.py, or another SDK's functions (declared in its settings, or
#: posted by its replica).
OWN_ORIGINS = frozenset({APP_ORIGIN, "settings", "module"})


def origin_of(plugin: str) -> str:
    """Where an endpoint comes from, for people: ``app.py``, or the name of the plugin that registered it."""
    return APP_ORIGIN if plugin == SDK_APP_PLUGIN else plugin


def describe_functions(functions: Iterable[tuple[str, str]]) -> str:
    """``add, hello, health (from cmhealth)``: names, with the plugin that adds a function when one does."""
    shown = [name if origin in OWN_ORIGINS else f"{name} (from {origin})" for name, origin in functions]
    return ", ".join(shown) or "(none)"


class UnknownFunctionError(KeyError):
    """A function name the module does not have."""

    def __init__(self, module: str, name: str, known: list[str], described: str | None = None) -> None:
        self.module, self.name, self.known = module, name, known
        shown = described or ", ".join(known) or "(none)"
        super().__init__(f"module {module!r} has no function {name!r}; known functions: {shown}")

    def __str__(self) -> str:
        return str(self.args[0])


def load_registry(
    target: ModuleRef | Path | str, pm: pluggy.PluginManager | None = None, hooks: list[Any] | None = None
) -> ModuleRegistry:
    """Load a module (a :class:`ModuleRef`, or its folder) and ask every plugin for its endpoints.

    ``pm`` defaults to the image's plugin manager (:func:`cmcore.plugins.get_plugin_manager`); ``hooks``, the
    ``cmfleet_register_endpoints`` implementations to ask (default: all of ``pm``'s; an image asks every
    installed plugin, since what it installs is what the module declared).
    """
    from cmcore.plugins import get_plugin_manager

    module = ModuleDir.of(target) if isinstance(target, (str, Path)) else target
    pm = pm or get_plugin_manager()
    registry = ModuleRegistry(module, pm)
    registrar = EndpointRegistrar(registry)
    # One plugin at a time, in registration order (the module's own app.py first), so a duplicate name
    # can be blamed on the plugin that added it.
    for impl in pm.hook.cmfleet_register_endpoints.get_hookimpls() if hooks is None else hooks:
        registrar.plugin = impl.plugin_name
        kwargs: dict[str, Any] = {"module": module, "register": registrar}
        impl.function(**{k: kwargs[k] for k in impl.argnames})
    return registry
