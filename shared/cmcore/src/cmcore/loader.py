"""Import a module's unchanged ``app.py`` the way a container does, without starting the SDK's job loop.

The SDK registers functions in module-level dictionaries and starts polling at interpreter exit
(``atexit``). Loading sets the SDK's own ``DISABLE_STARTUP`` switch (the one its static inference uses), so
importing ``app.py`` only collects registrations. Each load starts from empty SDK registries and forgets the
helper modules of a previously loaded module, so one process can load several modules in turn.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cmcore.registry import Endpoint

_loaded_dirs: list[Path] = []


class ModuleLoadError(Exception):
    """``app.py`` (or a helper it imports) failed to import; the message names file:line and the cause."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.file, self.line = file, line


@dataclass
class LoadedApp:
    """The imported ``app.py`` and the endpoints the SDK registered while importing it."""

    module: Any
    path: Path
    endpoints: list[Endpoint] = field(default_factory=list)


def _sdk_registries() -> tuple[Any, ...]:
    """The SDK's module-level registries (functions, schemas, conversions, context typing, streaming)."""
    from compute_modules.function_registry import function_registry as reg

    return (
        reg.REGISTERED_FUNCTIONS,
        reg.FUNCTION_SCHEMAS,
        reg.FUNCTION_SCHEMA_CONVERSIONS,
        reg.IS_FUNCTION_CONTEXT_TYPED,
        reg.STREAMING,
    )


def clear_sdk_registries() -> None:
    """Empty the SDK's registries in place (the SDK's start-up reads them by reference)."""
    for registry in _sdk_registries():
        registry.clear()


def disable_sdk_startup(disabled: bool = True) -> None:
    """Switch the SDK's ``start_compute_module`` into a no-op (or back)."""
    from compute_modules import startup

    startup.DISABLE_STARTUP = disabled


def _forget_previous_modules() -> None:
    """Drop ``app`` and helper modules imported from previously loaded module folders."""
    if not _loaded_dirs:
        return
    for name, mod in list(sys.modules.items()):
        file = getattr(mod, "__file__", None)
        if not file:
            continue
        try:
            resolved = Path(file).resolve()
        except OSError:  # pragma: no cover - odd loaders
            continue
        if any(d == resolved.parent or d in resolved.parents for d in _loaded_dirs):
            del sys.modules[name]
    for d in _loaded_dirs:
        while str(d) in sys.path:
            sys.path.remove(str(d))
    _loaded_dirs.clear()


def _error_location(exc: BaseException, module_dir: Path) -> tuple[str | None, int | None]:
    if isinstance(exc, SyntaxError) and exc.filename:
        return exc.filename, exc.lineno
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        try:
            if module_dir in Path(frame.filename).resolve().parents:
                return frame.filename, frame.lineno
        except OSError:  # pragma: no cover
            continue
    if frames:
        return frames[-1].filename, frames[-1].lineno
    return None, None


def load_app(module_dir: Path) -> LoadedApp:
    """Import ``module_dir/app.py`` with the SDK's start-up disabled and return its registrations."""
    module_dir = module_dir.resolve()
    app_path = module_dir / "app.py"
    if not app_path.exists():
        raise ModuleLoadError(f"{app_path}: no app.py (a compute module's entry point is app.py)", str(app_path))
    disable_sdk_startup(True)
    _forget_previous_modules()
    clear_sdk_registries()
    sys.path.insert(0, str(module_dir))
    _loaded_dirs.append(module_dir)
    sys.modules.pop("app", None)
    spec = importlib.util.spec_from_file_location("app", app_path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # noqa: BLE001 - any import failure is reported, SystemExit included
        sys.modules.pop("app", None)
        file, line = _error_location(exc, module_dir)
        where = f"{file}:{line}" if file else str(app_path)
        raise ModuleLoadError(
            f"{where}: importing {app_path.name} failed: {type(exc).__name__}: {exc}", file, line
        ) from exc
    return LoadedApp(module, app_path, _collect(module))


def _collect(module: Any) -> list[Endpoint]:
    """The endpoints the SDK registered while ``module`` was imported, with the schemas it parsed."""
    functions, schemas, conversions, context_typed, streaming = _sdk_registries()
    schema_by_name = {s["functionName"]: s for s in schemas}
    out = []
    for name, func in functions.items():
        attr = getattr(module, name, None)
        out.append(
            Endpoint(
                name,
                func,
                streaming=bool(streaming.get(name, False)),
                edits=getattr(attr, "edits", None) or None,
                schema=dict(schema_by_name[name]),
                conversion=conversions.get(name),
                context_typed=bool(context_typed.get(name, False)),
            )
        )
    return out
