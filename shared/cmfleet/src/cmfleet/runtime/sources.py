"""Foundry sources for local replicas, from the git-ignored ``cmfleet.local.toml`` at the repository root.

    [sources.WeatherApi]
    secrets = { apiKey = "s3cr3t" }                 # context["sources"]["WeatherApi"]["apiKey"]
    url = "https://api.example.com"                 # optional: httpConnectionConfig.url (the SDK's get_source)
    auth-headers = { "X-Api-Key" = "s3cr3t" }       # optional: httpConnectionConfig.authHeaders
    modules = ["hello"]                             # optional: only these modules get the source (default: all)
    [sources.WeatherApi.configuration]              # optional: sourceConfiguration, passed through as is
    kind = "rest"

Each run writes ``SOURCE_CREDENTIALS`` and ``SOURCE_CONFIGURATIONS_PATH`` JSON files (the contract's §1 shapes)
per module into the runtime's private temporary folder, readable by the owner only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOCAL_CONFIG = "cmfleet.local.toml"
_KEYS = {"secrets", "url", "auth-headers", "query-parameters", "modules", "configuration"}


class SourcesError(ValueError):
    """``cmfleet.local.toml`` cannot be used; the message names the table and the fix."""


@dataclass
class Source:
    """One source as configured locally."""

    name: str
    secrets: dict[str, str]
    url: str | None = None
    auth_headers: dict[str, str] = field(default_factory=dict)
    query_parameters: dict[str, str] = field(default_factory=dict)
    modules: list[str] | None = None
    configuration: dict[str, Any] | None = None

    def mounted_config(self) -> dict[str, Any]:
        """The ``SOURCE_CONFIGURATIONS_PATH`` entry (``MountedSourceConfig`` shape)."""
        config: dict[str, Any] = {"secrets": dict(self.secrets), "sourceConfiguration": self.configuration or {}}
        if self.url:
            config["httpConnectionConfig"] = {
                "url": self.url,
                "authHeaders": dict(self.auth_headers),
                "queryParameters": dict(self.query_parameters),
            }
        return config


def load_sources(root: Path) -> list[Source]:
    """The sources of ``root/cmfleet.local.toml`` (none when the file does not exist)."""
    path = root / LOCAL_CONFIG
    if not path.exists():
        return []
    from cmfleet.discovery import DiscoveryError, read_toml

    try:
        data = read_toml(path)
    except DiscoveryError as exc:
        raise SourcesError(str(exc)) from None
    sources = []
    for name, table in (data.get("sources") or {}).items():
        where = f"{path} [sources.{name}]"
        if not isinstance(table, dict):
            raise SourcesError(f"{where} must be a table")
        unknown = set(table) - _KEYS
        if unknown:
            raise SourcesError(
                f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_KEYS))}"
            )
        secrets = table.get("secrets", {})
        if not isinstance(secrets, dict) or not all(isinstance(v, str) for v in secrets.values()):
            raise SourcesError(f'{where}.secrets must map names to strings, e.g. secrets = {{ apiKey = "..." }}')
        modules = table.get("modules")
        if modules is not None and (not isinstance(modules, list) or not all(isinstance(m, str) for m in modules)):
            raise SourcesError(f'{where}.modules must be a list of module names, e.g. ["hello"]')
        sources.append(
            Source(
                name,
                {str(k): v for k, v in secrets.items()},
                table.get("url"),
                {str(k): str(v) for k, v in (table.get("auth-headers") or {}).items()},
                {str(k): str(v) for k, v in (table.get("query-parameters") or {}).items()},
                modules,
                table.get("configuration"),
            )
        )
    return sources


def secret_values(sources: list[Source]) -> list[str]:
    """Every secret value (to redact from logs)."""
    values = [v for s in sources for v in s.secrets.values()]
    values += [v for s in sources for v in s.auth_headers.values()]
    return values


def write_private_json(path: Path, data: Any) -> None:
    """Write JSON readable by the owner only, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def write_module_sources(sources: list[Source], module: str, folder: Path) -> dict[str, str]:
    """Write the module's two source files into ``folder``; returns the environment variables naming them."""
    mine = [s for s in sources if s.modules is None or module in s.modules]
    credentials = folder / "source-credentials.json"
    configurations = folder / "source-configurations.json"
    write_private_json(credentials, {s.name: dict(s.secrets) for s in mine})
    write_private_json(configurations, {s.name: s.mounted_config() for s in mine})
    return {"SOURCE_CREDENTIALS": str(credentials), "SOURCE_CONFIGURATIONS_PATH": str(configurations)}
