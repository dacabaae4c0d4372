"""Built-in plugin: the innermost ``cmfleet_invoke``, which calls the function itself."""

from __future__ import annotations

from typing import Any

from cmcore.hookspecs import hookimpl
from cmcore.registry import Call


@hookimpl(trylast=True)
def cmfleet_invoke(call: Call) -> Any:
    """Call the endpoint with the SDK's positional ``(context, event)``."""
    return call.endpoint.func(call.context, call.event)
