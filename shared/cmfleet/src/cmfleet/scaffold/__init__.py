"""Scaffolding: `cmfleet new` creates modules and shared libraries that pass `cmfleet check` at once."""
