"""The hooks a compute module's container runs: endpoints and the middleware around every call.

A plugin is a Python module with functions named like the hooks below, decorated with ``cmcore.hookimpl``
(the same marker as ``cmfleet.hookimpl``: both belong to the pluggy project ``cmfleet``). A shared library adds
its plugin through the entry-point group ``cmfleet``::

    # shared/mylib/pyproject.toml
    [project]
    dependencies = ["cmcore"]

    [project.entry-points.cmfleet]
    mylib = "mylib.plugin"

Keep plugin modules import-light: import heavy libraries inside the hook functions. Every hook takes keyword
arguments only, and pluggy passes only those an implementation declares, so new arguments never break old
plugins. The toolkit's own hooks (commands, check rules, local replica environments) are in
``cmfleet.hookspecs``; the image ignores them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from cmcore.registry import Call, EndpointRegistrar, ModuleRef

#: The pluggy project every cmfleet hook belongs to (toolkit hooks included).
PROJECT = "cmfleet"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def cmfleet_register_endpoints(module: ModuleRef, register: EndpointRegistrar) -> None:
    """Register the endpoints (callable functions) of a compute module.

    Called once each time a module is loaded to run: by the container entrypoint, every local replica,
    ``cmfleet invoke``, the pytest fixtures and ``cmfleet schema``. ``module`` has the module's ``name`` and
    folder ``path``. The built-in plugin ``cmcore.builtin.sdk_app`` imports the module's unchanged ``app.py``
    and registers every function the official SDK collected from ``@function`` and ``add_function``; a shared
    library can register extra endpoints in every module. ``register(func, name=None, streaming=False,
    edits=None)`` takes a function with the SDK's signature ``(context, event)``; its type hints define its
    schema exactly as in the SDK.

    Example, a ``health`` endpoint in every module::

        from cmcore import hookimpl

        @hookimpl
        def cmfleet_register_endpoints(module, register):
            def health(context, event) -> dict[str, str]:
                return {"module": module.name, "status": "ok"}
            register(health)
    """


@hookspec(firstresult=True)
def cmfleet_invoke(call: Call) -> Any:
    """Run one invocation of an endpoint and return its result.

    The built-in implementation (``cmcore.builtin.invoke_call``) calls ``call.endpoint.func(call.context,
    call.event)`` after the SDK's payload conversion. Implement it with ``@hookimpl(wrapper=True)`` to wrap every
    call of every function of every module (timing, log context, validation, metrics): the same wrapper runs in
    the deployed container, in local replicas, in ``cmfleet invoke`` and in the pytest fixtures.

    Example, timing middleware::

        import time
        from cmcore import hookimpl

        @hookimpl(wrapper=True)
        def cmfleet_invoke(call):
            started = time.perf_counter()
            try:
                return (yield)
            finally:
                print(f"{call.module}.{call.name} took {time.perf_counter() - started:.3f}s")
    """
