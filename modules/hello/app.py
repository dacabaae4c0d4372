"""The Foundry template's module: ``add`` and a ``hello`` greeting."""

from compute_modules.annotations import function

from greeting import greet


@function
def add(context, event):
    """Add ``x`` and ``y`` (an untyped event, exactly as in Foundry's template)."""
    return event["x"] + event["y"]


@function
def hello(context, event):
    """Greet ``name`` (default: world)."""
    return greet(event.get("name", "world"))
