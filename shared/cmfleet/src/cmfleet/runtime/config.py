"""Settings of ``cmfleet dev``: defaults, ``[tool.cmfleet.dev]`` in the root pyproject, then the command line.

Root ``pyproject.toml``::

    [tool.cmfleet.dev]
    replicas = "1:2"          # MIN:MAX per module (MIN 0 = scale to zero when idle)
    concurrency = 1           # MAX_CONCURRENT_TASKS of each replica
    timeout = 60              # seconds a job may take, queue wait included (504 after)
    idle-timeout = 300        # seconds a replica above MIN may stay idle before it is stopped
    queue-limit = 1000        # jobs waiting per module before 429
    max-body = 1048576        # largest accepted event, bytes (413 above)
    environments = "module"   # each module's replicas in their own venv (.cmfleet/envs/<module>/), or "shared"
    pin-busy = true           # a busy replica's processes share CPUs of their own (Linux; runtime/placement.py)
    manual-grace = 10         # seconds a hand-started replica (--print-env) may have no connection, or send no
                              # request, before the runtime takes it as stopped (the jobs it held end as lost)
    # the edge of both ports (the gateway and the HTTPS runtime API), see runtime/http.py
    header-timeout = 10       # seconds a request head may take from its first byte (408 and closed after)
    keep-alive = 30           # seconds an idle keep-alive connection (or a stalled body) stays open
    max-header = 65536        # largest request head (request line and headers), bytes (431 above)
    max-connections = 1000    # open connections per port; more are answered 503 and closed
    max-json-depth = 64       # deepest nesting of arrays and objects accepted in an event (400 above)

    [tool.cmfleet.dev.modules.hello]
    replicas = "0:4"
    concurrency = 4
    python = "/opt/py311/bin/python"        # interpreter running `-m cmfleet.entrypoint <module dir>`
    # command = ["node", "dist/index.js"]   # or any command (another language's SDK), run in the module dir
    env = { FOUNDRY_URL = "localhost" }

    [tool.cmfleet.dev.modules.tsmodule]
    command = ["node", "index.js"]
    # functions the module serves without posting a schema for them (another SDK registers them by name only;
    # Foundry users define such functions by hand): callable through the gateway and listed in the console
    functions = ["stringify", { name = "hello", streaming = true }]
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_GATEWAY_PORT = 8940
DEFAULT_RUNTIME_PORT = 8945  # the port Palantir's docs show for the runtime


class ConfigError(ValueError):
    """A setting that cannot be used; the message names where it came from and the fix."""


def parse_replicas(text: str, where: str = "--replicas") -> tuple[int, int]:
    """``"MIN:MAX"`` (or ``"N"`` for MIN = MAX = N) as a pair; errors say what is expected."""
    parts = str(text).split(":")
    try:
        if len(parts) == 1:
            low = high = int(parts[0])
        elif len(parts) == 2:
            low, high = int(parts[0]), int(parts[1])
        else:
            raise ValueError
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not MIN:MAX (for example 1:2, or 0:4 to scale to zero)") from None
    if low < 0 or high < 1 or low > high:
        raise ConfigError(f"{where}: {text!r} needs 0 <= MIN <= MAX and MAX >= 1")
    return low, high


@dataclass(frozen=True)
class ModuleSettings:
    """How one module runs under ``cmfleet dev``."""

    min_replicas: int = 1
    max_replicas: int = 2
    concurrency: int = 1
    timeout: float = 60.0
    idle_timeout: float = 300.0
    queue_limit: int = 1000
    command: tuple[str, ...] | None = None  # replaces `python -m cmfleet.entrypoint <dir>`
    python: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    environments: str = "module"  # "module": a venv of its own (environments.py); "shared": the runtime's Python
    functions: tuple[tuple[str, bool], ...] = ()  # (name, streaming) served without a posted schema
    pin_busy: bool = True  # keep a busy replica's processes on CPUs of their own (runtime/placement.py)

    @property
    def own_environment(self) -> bool:
        """Whether replicas run in the module's own venv (not when ``python`` or ``command`` overrides it)."""
        return self.environments == "module" and not self.command and not self.python

    def replica_command(self, module_dir: Path, env_python: str | None = None) -> list[str]:
        """The argv of one replica process (``env_python``: the module's own venv, when it has one)."""
        if self.command:
            return list(self.command)
        return [self.python or env_python or sys.executable, "-m", "cmfleet.entrypoint", str(module_dir)]


@dataclass
class DevConfig:
    """Everything ``cmfleet dev`` needs, resolved."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_GATEWAY_PORT
    runtime_port: int = DEFAULT_RUNTIME_PORT
    reload: bool = True
    max_body: int = 1024 * 1024
    log_buffer: int = 5000
    job_history: int = 20000
    poll_hold: float = 5.0  # the GET job long-poll, as Palantir documents
    manual_grace: float = 10.0  # seconds without a connection before a hand-started replica counts as stopped
    terminal_logs: bool = True
    header_timeout: float = 10.0
    keep_alive: float = 30.0
    max_header: int = 64 * 1024
    max_connections: int = 1000
    max_json_depth: int = 64
    defaults: ModuleSettings = field(default_factory=ModuleSettings)
    modules: dict[str, ModuleSettings] = field(default_factory=dict)

    def http_limits(self) -> Any:
        """The limits of both ports' HTTP layer (``runtime/http.py``)."""
        from cmfleet.runtime.http import HttpLimits

        return HttpLimits(self.header_timeout, self.keep_alive, self.max_header, self.max_connections)

    def for_module(self, name: str) -> ModuleSettings:
        """The settings of ``name`` (its own section over the defaults)."""
        return self.modules.get(name, self.defaults)


_KEYS = {
    "replicas",
    "concurrency",
    "timeout",
    "idle-timeout",
    "queue-limit",
    "command",
    "python",
    "env",
    "environments",
    "pin-busy",
}


#: Settings of the whole runtime's HTTP edge: key -> (DevConfig field, type).
_EDGE_KEYS: dict[str, tuple[str, type]] = {
    "header-timeout": ("header_timeout", float),
    "keep-alive": ("keep_alive", float),
    "max-header": ("max_header", int),
    "max-connections": ("max_connections", int),
    "max-json-depth": ("max_json_depth", int),
}

#: Settings that only make sense for one module.
_MODULE_KEYS = {"functions"}


def _functions(value: Any, where: str) -> tuple[tuple[str, bool], ...]:
    """``["name", {name = "other", streaming = true}]`` as ``(name, streaming)`` pairs, names unique."""
    example = 'for example ["stringify", { name = "hello", streaming = true }]'
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list of function names or {{ name, streaming }} tables ({example})")
    out: list[tuple[str, bool]] = []
    for i, item in enumerate(value):
        if isinstance(item, dict):
            extra = set(item) - {"name", "streaming"}
            if extra:
                raise ConfigError(f"{where}[{i}]: unknown key(s) {', '.join(sorted(extra))}; known: name, streaming")
            name, streaming = item.get("name"), item.get("streaming", False)
            if not isinstance(streaming, bool):
                raise ConfigError(f"{where}[{i}].streaming must be true or false, got {streaming!r}")
        else:
            name, streaming = item, False
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise ConfigError(f"{where}[{i}]: {name!r} is not a function name ({example})")
        if any(name == seen for seen, _ in out):
            raise ConfigError(f"{where}[{i}]: {name!r} is listed twice")
        out.append((name, streaming))
    return tuple(out)


def _apply(base: ModuleSettings, table: dict[str, Any], where: str, *, module_table: bool = False) -> ModuleSettings:
    known = _KEYS | _MODULE_KEYS if module_table else _KEYS
    unknown = set(table) - known - {"modules", "max-body", "manual-grace", *_EDGE_KEYS}
    if unknown:
        misplaced = unknown & _MODULE_KEYS
        if misplaced:
            raise ConfigError(
                f"{where}: {', '.join(sorted(misplaced))} belongs to one module's own table, "
                f"[tool.cmfleet.dev.modules.<name>]"
            )
        raise ConfigError(
            f"{where}: unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
        )
    changes: dict[str, Any] = {}
    cli = where == "command line"
    try:
        if "replicas" in table:
            label = "--replicas" if cli else f"{where}.replicas"
            changes["min_replicas"], changes["max_replicas"] = parse_replicas(table["replicas"], label)
        if "concurrency" in table:
            changes["concurrency"] = int(table["concurrency"])
            if changes["concurrency"] < 1:
                raise ConfigError(f"{'--concurrency' if cli else where + '.concurrency'} must be >= 1")
        if "timeout" in table:
            changes["timeout"] = float(table["timeout"])
        if "idle-timeout" in table:
            changes["idle_timeout"] = float(table["idle-timeout"])
        if "queue-limit" in table:
            changes["queue_limit"] = int(table["queue-limit"])
        if "command" in table:
            cmd = table["command"]
            if not isinstance(cmd, list) or not cmd or not all(isinstance(c, str) for c in cmd):
                raise ConfigError(f'{where}.command must be a list of strings, e.g. ["node", "index.js"]')
            changes["command"] = tuple(cmd)
        if "python" in table:
            changes["python"] = str(table["python"])
        if "env" in table:
            if not isinstance(table["env"], dict):
                raise ConfigError(f"{where}.env must be a table of strings")
            changes["env"] = {str(k): str(v) for k, v in table["env"].items()}
        if "environments" in table:
            value = table["environments"]
            if value not in ("module", "shared"):
                label = "--env" if cli else f"{where}.environments"
                raise ConfigError(
                    f'{label}: {value!r} is not "module" (a venv per module with only what it declares) '
                    'or "shared" (every replica in the runtime\'s own Python)'
                )
            changes["environments"] = value
        if "pin-busy" in table:
            if not isinstance(table["pin-busy"], bool):
                raise ConfigError(f"{where}.pin-busy must be true or false, not {table['pin-busy']!r}")
            changes["pin_busy"] = table["pin-busy"]
        if "functions" in table:
            changes["functions"] = _functions(table["functions"], f"{where}.functions")
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where}: {exc}") from None
    return replace(base, **changes)


def load_config(tool_cmfleet: dict[str, Any], *, pyproject: str = "pyproject.toml", **overrides: Any) -> DevConfig:
    """Build the config from ``[tool.cmfleet]`` (as read by discovery) and command-line ``overrides``.

    Overrides: host, port, runtime_port, reload, replicas ("MIN:MAX"), concurrency, timeout, idle_timeout,
    queue_limit, environments ("module"|"shared"), manual_grace, max_body, terminal_logs. ``None`` values are
    ignored.
    Command-line values apply to every module.
    """
    dev = tool_cmfleet.get("dev", {}) or {}
    where = f"{pyproject} [tool.cmfleet.dev]"
    defaults = _apply(ModuleSettings(), {k: v for k, v in dev.items() if k != "modules"}, where)
    cli: dict[str, Any] = {}
    ov = {k: v for k, v in overrides.items() if v is not None}
    if "replicas" in ov:
        cli["replicas"] = ov.pop("replicas")
    for key in ("concurrency", "timeout", "idle_timeout", "queue_limit", "environments"):
        if key in ov:
            cli[key.replace("_", "-")] = ov.pop(key)
    defaults = _apply(defaults, cli, "command line")
    modules = {}
    for name, table in (dev.get("modules") or {}).items():
        settings = _apply(defaults, table, f"{where}.modules.{name}", module_table=True)
        modules[name] = _apply(settings, cli, "command line")
    config = DevConfig(defaults=defaults, modules=modules)
    if "max-body" in dev:
        config.max_body = int(dev["max-body"])
    if "manual-grace" in dev:
        config.manual_grace = _seconds(dev["manual-grace"], f"{where} manual-grace")
    for key, (name, kind) in _EDGE_KEYS.items():
        if key in dev:
            setattr(config, name, _positive(dev[key], kind, f"{where} {key}"))
    if "manual_grace" in ov:
        config.manual_grace = _seconds(ov.pop("manual_grace"), "--manual-grace")
    for key, value in ov.items():
        if not hasattr(config, key):
            raise TypeError(f"unknown override {key}")
        setattr(config, key, value)
    return config


def _seconds(value: Any, where: str) -> float:
    """A positive number of seconds, or a ConfigError naming ``where``."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if isinstance(value, bool) or not seconds > 0:
        raise ConfigError(f"{where}: {value!r} is not a number of seconds above 0 (for example 10)")
    return seconds


def _positive(value: Any, kind: type, where: str) -> Any:
    """A number above 0 of type ``kind`` (int or float), or a ConfigError naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise ConfigError(f"{where}: {value!r} is not {'a whole number' if kind is int else 'a number'} above 0")
    if not value > 0:
        raise ConfigError(f"{where}: {value!r} must be above 0")
    return kind(value)
