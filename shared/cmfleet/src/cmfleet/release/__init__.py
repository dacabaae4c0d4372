"""Releases: versions from per-unit tags, affected units, changelogs, tags and pin bumps."""
