"""What a module's wheel holds, and whether it holds everything ``app.py`` imports from the module's folder.

The wheel's files come from hatchling's own file selection (``[tool.hatch.build.targets.wheel]``, ``.gitignore``
and hatchling's defaults), read without building, so ``cmfleet check`` sees exactly what ``cmfleet build`` packs.
The *local import closure* starts at ``app.py`` and follows every absolute import that names a file or package of
the module's folder (helper files, helper packages, their submodules), transitively; each must be in the wheel.
"""

from __future__ import annotations

import ast
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cmfleet.discovery import DiscoveryError, ImportRef, Unit, parse_python


@dataclass(frozen=True)
class LocalImport:
    """An import of a module-folder file: where it is written and the file(s) it needs (relative, posix)."""

    ref: ImportRef
    needs: tuple[str, ...]


def wheel_files(unit: Unit) -> set[str]:
    """The paths (relative to the module folder, posix) hatchling puts in the unit's wheel."""
    try:
        from hatchling.builders.wheel import WheelBuilder
    except ImportError:  # pragma: no cover - hatchling is a dependency of cmfleet
        raise DiscoveryError("hatchling is needed to read what a wheel holds (pip install hatchling)") from None
    try:
        builder = WheelBuilder(str(unit.path))
        return {Path(f.distribution_path).as_posix() for f in builder.recurse_included_files()}
    except Exception as exc:  # hatchling reports bad [tool.hatch.build] settings as various errors
        raise DiscoveryError(f"{unit.rel}/pyproject.toml: hatchling cannot select the wheel's files: {exc}") from None


def built_wheel_files(wheel: Path) -> set[str]:
    """The paths a built wheel installs (its ``.dist-info`` left out)."""
    with zipfile.ZipFile(wheel) as zf:
        return {n for n in zf.namelist() if not n.split("/", 1)[0].endswith((".dist-info", ".data"))}


def _candidates(parts: list[str]) -> Iterator[str]:
    """The files that could define the dotted module ``parts``: ``a/b.py`` or ``a/b/__init__.py``."""
    path = "/".join(parts)
    yield f"{path}.py"
    yield f"{path}/__init__.py"


def _resolve(folder: Path, dotted: str) -> list[str]:
    """The module-folder files an absolute import of ``dotted`` executes (each package on the way, then the
    module itself); empty when its top-level name is not a file or package of the folder."""
    parts = dotted.split(".")
    files: list[str] = []
    for depth in range(1, len(parts) + 1):
        found = next((c for c in _candidates(parts[:depth]) if (folder / c).is_file()), None)
        if found is None:
            if depth == 1 and (folder / parts[0]).is_dir():
                continue  # a namespace package folder: nothing to execute at this level
            break
        files.append(found)
    return files


def _imported_names(tree: ast.Module, file: Path) -> Iterator[tuple[ImportRef, list[str]]]:
    """Each absolute import with the dotted names it may load (``from a import b`` may load ``a.b``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield ImportRef(alias.name, file, node.lineno), [alias.name]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names if a.name != "*")]
            yield ImportRef(node.module, file, node.lineno), names


def local_import_closure(unit: Unit) -> list[LocalImport]:
    """Every import in ``app.py``'s closure that names a file of the module folder, with the files it needs."""
    folder = unit.path
    found: list[LocalImport] = []
    seen: set[str] = set()
    queue = ["app.py"] if unit.app.exists() else []
    while queue:
        rel = queue.pop(0)
        if rel in seen:
            continue
        seen.add(rel)
        file = folder / rel
        for ref, names in _imported_names(parse_python(file), file):
            needed: list[str] = []
            for dotted in names:
                needed += [f for f in _resolve(folder, dotted) if f not in needed]
            if needed:
                found.append(LocalImport(ref, tuple(needed)))
                queue.extend(needed)
    return found


def missing_from_wheel(unit: Unit, files: Iterable[str]) -> list[tuple[LocalImport, list[str]]]:
    """The local imports of ``app.py``'s closure whose files ``files`` (the wheel's) lack."""
    present = set(files)
    return [
        (imp, missing) for imp in local_import_closure(unit) if (missing := [f for f in imp.needs if f not in present])
    ]
