"""Built-in plugin: the innermost ``cmfleet_invoke``, which calls the function itself."""

from __future__ import annotations

from cmfleet.hookspecs import hookimpl


@hookimpl(trylast=True)
def cmfleet_invoke(call):
    """Call the endpoint with the SDK's positional ``(context, event)``."""
    return call.endpoint.func(call.context, call.event)
