"""cmhealth: a cmfleet plugin that adds a ``health`` endpoint to every compute module that installs it."""

__all__: list[str] = []
