"""The endpoint registry lives in ``cmcore.registry`` (what the container runs); this module re-exports it and
adds what needs the repository: a module named inside it, loaded with the toolkit's plugin manager."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cmcore.registry import (
    APP_ORIGIN,
    OWN_ORIGINS,
    UNKNOWN_QUERY_TYPE,
    Call,
    Endpoint,
    EndpointRegistrar,
    ModuleDir,
    ModuleRef,
    ModuleRegistry,
    Outcome,
    RegistryError,
    UnknownFunctionError,
    describe_functions,
    format_user_error,
    origin_of,
)
from cmcore.registry import load_registry as _load_registry
from cmfleet.discovery import Unit

__all__ = [
    "APP_ORIGIN",
    "OWN_ORIGINS",
    "UNKNOWN_QUERY_TYPE",
    "Call",
    "DeclaredFunction",
    "Endpoint",
    "EndpointRegistrar",
    "ModuleDir",
    "ModuleRef",
    "ModuleRegistry",
    "Outcome",
    "RegistryError",
    "UnknownFunctionError",
    "declared_functions",
    "describe_functions",
    "endpoint_hooks",
    "foreign_plugins",
    "format_user_error",
    "load_registry",
    "module_unit",
    "origin_of",
    "plugin_scope",
]


def module_unit(target: Unit | Path | str, root: Path | None = None) -> Unit:
    """A Unit for a module given as a Unit, a folder path, or a name in the repository."""
    if isinstance(target, Unit):
        return target
    path = Path(target)
    if path.is_dir() and (path / "app.py").exists():
        path = path.resolve()
        return Unit(path.name, "module", path, path.parent)
    from cmfleet.discovery import Repository

    return Repository.load(root).module(str(target))


#: Repositories already read, by root, in a process that loads many modules of one repository and does not
#: outlive a change to it (``checks.probe --batch``, whose forked children share what it read); None elsewhere.
loaded_repositories: dict[Path, Any] | None = None


def _repository_of(unit: Unit) -> Any:
    """The repository ``unit`` is a module of, or None (a module folder on its own, as in an image)."""
    from cmfleet.discovery import MODULES_DIR, DiscoveryError, Repository

    for candidate in unit.path.resolve().parents:
        if (candidate / MODULES_DIR).is_dir() and (candidate / "pyproject.toml").is_file():
            try:
                known = loaded_repositories
                repo = known.get(candidate) if known is not None else None
                if repo is None:
                    repo = Repository.load(candidate)
                    if known is not None:
                        known[candidate] = repo
            except DiscoveryError:
                return None
            found = repo.units.get(unit.name)
            return repo if found is not None and found.path.resolve() == unit.path.resolve() else None
    return None


def plugin_scope(unit: Unit, repo: Any = None) -> set[str] | None:
    """The distributions whose plugins may add endpoints to ``unit``: what its image installs, its declared
    requirements and, transitively, its shared libraries and theirs. None (every installed plugin) for a module
    outside a repository: in an image, what is installed is what the module declared."""
    from cmfleet.discovery import DiscoveryError, normalize, requirement_name

    repo = repo if repo is not None else _repository_of(unit)
    if repo is None:
        return None
    try:
        unit = repo.module(unit.name)
        units = [unit, *repo.closure(unit)]
        return {normalize(u.distribution) for u in units} | {requirement_name(r) for u in units for r in u.dependencies}
    except (DiscoveryError, KeyError):
        return None


def foreign_plugins(pm: Any, unit: Unit, repo: Any = None) -> list[Any]:
    """The entry-point plugins installed here that ``unit``'s image would not have (their distribution is not
    among its dependencies, :func:`plugin_scope`): they add no endpoint to it, so every runner (invoke, tests,
    schema, list, the gateway, the deployed image) sees the same functions. (Their ``cmfleet_invoke`` middleware
    still wraps calls where they are installed: it observes calls, it adds no function.)"""
    from cmfleet.discovery import normalize

    scope = plugin_scope(unit, repo)
    if scope is None:
        return []
    return [
        plugin
        for plugin, dist in pm.list_plugin_distinfo()
        if dist is not None and normalize(dist.metadata["Name"]) not in scope
    ]


def endpoint_hooks(pm: Any, unit: Unit, repo: Any = None) -> list[Any]:
    """The ``cmfleet_register_endpoints`` implementations that apply to ``unit``, in registration order: the
    built-ins, directly registered plugins and the entry-point plugins of distributions the module depends on."""
    foreign = foreign_plugins(pm, unit, repo)
    return [impl for impl in pm.hook.cmfleet_register_endpoints.get_hookimpls() if impl.plugin not in foreign]


@dataclass(frozen=True)
class DeclaredFunction:
    """A function of a module as known without importing its code."""

    name: str
    streaming: bool
    origin: str  # "app.py" or the plugin's name


class _Recorder:
    """A ``register`` callback that only notes names (for :func:`declared_functions`)."""

    def __init__(self) -> None:
        self.plugin = "?"
        self.found: list[DeclaredFunction] = []

    def set_app(self, app: Any) -> None:  # pragma: no cover - only sdk_app calls it, and it is skipped
        pass

    def __call__(self, func: Callable[..., Any], *, name: str | None = None, streaming: bool = False, **_: Any) -> None:
        self.found.append(DeclaredFunction(name or func.__name__, streaming, self.plugin))


def declared_functions(unit: Unit, pm: Any = None, repo: Any = None) -> list[DeclaredFunction]:
    """A module's functions without importing its code: ``app.py``'s as read statically, then those of the plugins
    that apply to it (their hooks are called with a recorder; ``app.py`` is never imported). What ``list``, the
    gateway and the console show, and what :func:`load_registry` loads."""
    from cmfleet.plugins import get_plugin_manager

    pm = pm or get_plugin_manager()
    out = [DeclaredFunction(f.name, f.streaming, APP_ORIGIN) for f in unit.functions]
    recorder = _Recorder()
    for impl in endpoint_hooks(pm, unit, repo):
        if origin_of(impl.plugin_name) == APP_ORIGIN:
            continue
        recorder.plugin = impl.plugin_name
        kwargs = {"module": unit, "register": recorder}
        try:
            impl.function(**{k: kwargs[k] for k in impl.argnames})
        except Exception:  # noqa: BLE001 - a plugin that needs the live module says so when it is loaded
            continue
    seen = {f.name for f in out}
    return out + [f for f in recorder.found if f.name not in seen]


def load_registry(target: Unit | Path | str, pm: Any = None) -> ModuleRegistry:
    """Load a module (a Unit, a folder, or a name in the repository) and ask every plugin that applies to it
    (:func:`endpoint_hooks`), the toolkit's manager's by default, for its endpoints."""
    from cmfleet.plugins import get_plugin_manager

    unit = module_unit(target)
    pm = pm or get_plugin_manager()
    return _load_registry(unit, pm, endpoint_hooks(pm, unit))
