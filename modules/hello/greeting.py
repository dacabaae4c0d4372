"""A helper file beside app.py, imported absolutely as the Foundry template does."""


def greet(name: str) -> str:
    """The greeting for ``name``."""
    return f"Hello, {name}!"
