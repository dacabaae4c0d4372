"""Pins of shared libraries: where they are (conda_build_config.yaml, dependents' pyproject), how they changed,
and how to rewrite them without losing comments or layout (ruamel.yaml round-trip, tomlkit)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cmfleet.discovery import normalize, requirement_name
from cmfleet.recipes import BUILD_CONFIG

if TYPE_CHECKING:
    from cmfleet.discovery import Repository, Unit

BUILD_CONFIG_PATH = BUILD_CONFIG.as_posix()


class PinError(Exception):
    """A pin file that cannot be read or rewritten; the message names the file and the fix."""


def parse_build_config(text: str | None, where: str) -> dict[str, Any]:
    """The mapping of a ``conda_build_config.yaml`` text (``{}`` for None)."""
    if text is None:
        return {}
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        data = YAML(typ="safe").load(text) or {}
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = (mark.line + 1) if mark else 1
        raise PinError(f"{where}:{line}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise PinError(f"{where}:1: expected a mapping of variable -> list of values")
    return data


def changed_keys(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Keys whose values differ (added and removed keys included): ``{key: (old, new)}``."""
    return {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new), key=str) if old.get(k) != new.get(k)}


def units_using_key(repo: Repository, key: str) -> list[Unit]:
    """Units whose recipe refers to ``key``: dependents of the shared lib of that name, and recipes using
    ``{{ key }}``."""
    found: dict[str, Unit] = {}
    lib = repo.by_distribution.get(normalize(key))
    if lib is not None:
        for unit in repo.units.values():
            if any(dep.name == lib.name for dep in repo.shared_deps(unit)):
                found[unit.name] = unit
    pattern = re.compile(r"\{\{[^}]*\b" + re.escape(str(key)) + r"\b[^}]*\}\}")
    for unit in repo.units.values():
        if unit.name in found:
            continue
        recipe = unit.recipe
        try:
            text = recipe.read_text(encoding="utf-8")
        except OSError:
            continue
        if pattern.search(text):
            found[unit.name] = unit
    return list(found.values())


def build_config_key(repo: Repository, lib: Unit) -> str | None:
    """The key of ``lib`` in conda_build_config.yaml (spelt with '_' or '-'), or None if it is not pinned there."""
    path = repo.root / BUILD_CONFIG
    if not path.exists():
        return None
    data = parse_build_config(path.read_text(encoding="utf-8"), str(path))
    for key in data:
        if normalize(str(key)) == lib.distribution:
            return str(key)
    return None


@dataclass
class FileEdit:
    """A file's new text, computed before anything is written."""

    path: Path
    old: str | None
    new: str
    summary: str


PIN_FORMAT = ">={version}"
"""The specifier a release writes for a shared library: dependents need at least the version just released."""


def edit_build_config(repo: Repository, lib: Unit, spec: str, text: str | None = None) -> FileEdit | None:
    """Set ``lib``'s pin in conda_build_config.yaml to ``[spec]``, keeping comments and layout (``text``: the
    file's text as earlier edits of the same release left it)."""
    import io

    from ruamel.yaml import YAML

    path = repo.root / BUILD_CONFIG
    key = build_config_key(repo, lib)
    if key is None:
        return None
    old = path.read_text(encoding="utf-8") if text is None else text
    yaml = YAML()  # round-trip: keeps comments, order and quoting style
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    data = yaml.load(old)
    values = data[key]
    if isinstance(values, list) and len(values) >= 1:
        item = values[0]
        # keep the quoting style of the value it replaces
        values[0] = type(item)(spec) if type(item).__name__.endswith("ScalarString") else spec
        del values[1:]
    else:
        data[key] = [spec]
    buf = io.StringIO()
    yaml.dump(data, buf)
    new = buf.getvalue()
    if new == old:
        return None
    return FileEdit(path, old, new, f"{key} -> {spec!r}")


def edit_pyproject_dependency(unit: Unit, lib: Unit, spec: str, text: str | None = None) -> FileEdit | None:
    """Rewrite ``unit``'s requirement on ``lib`` as ``<name><spec>`` (markers and extras kept), via tomlkit."""
    import tomlkit

    old = unit.pyproject.read_text(encoding="utf-8") if text is None else text
    doc = tomlkit.parse(old)
    deps = doc.get("project", {}).get("dependencies")
    if deps is None:
        return None
    changed = False
    for i, req in enumerate(list(deps)):
        text = str(req)
        try:
            if requirement_name(text) != lib.distribution:
                continue
        except Exception:  # noqa: BLE001 - not ours to judge here; `cmfleet check` reports bad requirements
            continue
        new_req = _replace_specifier(text, spec)
        if new_req != text:
            deps[i] = new_req
            changed = True
    if not changed:
        return None
    new = tomlkit.dumps(doc)
    return FileEdit(unit.pyproject, old, new, f"requires {lib.distribution}{spec}")


def pin_edits(repo: Repository, versions: dict[str, str], edits: list[FileEdit] | None = None) -> list[FileEdit]:
    """The edits moving every pin of the shared libraries in ``versions`` (name -> version just released) to
    ``>=version``: conda_build_config.yaml and each direct dependent's pyproject. Several libraries editing one
    file make one edit (each applied to the text the previous one left); ``edits`` given first are kept."""
    by_path: dict[Path, FileEdit] = {e.path: e for e in edits or []}

    def merge(edit: FileEdit | None) -> None:
        if edit is None:
            return
        earlier = by_path.get(edit.path)
        if earlier is None:
            by_path[edit.path] = edit
        else:
            by_path[edit.path] = FileEdit(edit.path, earlier.old, edit.new, f"{earlier.summary}; {edit.summary}")

    for name, version in versions.items():
        lib = repo.get(name)
        spec = PIN_FORMAT.format(version=version)
        config = by_path.get(repo.root / BUILD_CONFIG)
        merge(edit_build_config(repo, lib, spec, config.new if config else None))
        for unit in repo.units.values():
            if any(dep.name == lib.name for dep in repo.shared_deps(unit)):
                earlier = by_path.get(unit.pyproject)
                merge(edit_pyproject_dependency(unit, lib, spec, earlier.new if earlier else None))
    return list(by_path.values())


@dataclass(frozen=True)
class Pin:
    """One pin of a shared library: where it is written and the lowest version it admits."""

    lib: str
    file: Path
    line: int
    minimum: str  # the X.Y.Z of '>=X.Y.Z' or '==X.Y.Z'


_MINIMUM_RE = re.compile(r"(?:>=|==|~=)\s*([0-9][0-9A-Za-z.]*)")


def pins(repo: Repository) -> list[Pin]:
    """Every pin naming a version of an in-repo shared library: conda_build_config.yaml and the pyprojects."""
    found: list[Pin] = []
    path = repo.root / BUILD_CONFIG
    if path.exists():
        text = path.read_text(encoding="utf-8")
        data = parse_build_config(text, str(path))
        for key, values in data.items():
            lib = repo.by_distribution.get(normalize(str(key)))
            if lib is None:
                continue
            first = values[0] if isinstance(values, list) and values else values
            match = _MINIMUM_RE.search(str(first))
            if match:
                found.append(Pin(lib.name, path, _line(text, f"{key}:", after=True), match.group(1)))
    for unit in repo.units.values():
        for req in unit.dependencies:
            try:
                lib = repo.by_distribution.get(requirement_name(req))
            except Exception:  # noqa: BLE001 - `cmfleet check` reports malformed requirements
                continue
            if lib is None:
                continue
            match = _MINIMUM_RE.search(req.split(";")[0])
            if match:
                text = unit.pyproject.read_text(encoding="utf-8")
                found.append(Pin(lib.name, unit.pyproject, _line(text, f'"{req}'), match.group(1)))
    return found


def _line(text: str, needle: str, *, after: bool = False) -> int:
    """The line of ``needle`` in ``text`` (the next line with ``after``: a YAML key's first value)."""
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith(needle) or needle in line:
            return number + 1 if after else number
    return 1


_REQ_PARTS_RE = re.compile(r"^(?P<name>\s*[A-Za-z0-9][A-Za-z0-9._-]*\s*(?:\[[^\]]*\])?)(?P<spec>[^;@]*)(?P<rest>.*)$")


def _replace_specifier(requirement: str, spec: str) -> str:
    """``textkit>=1.0; python_version>'3'`` with ``>=1.2.0`` -> ``textkit>=1.2.0; python_version>'3'``."""
    match = _REQ_PARTS_RE.match(requirement)
    if not match:
        return requirement
    name, rest = match.group("name").strip(), match.group("rest").strip()
    if rest.startswith("@"):
        return requirement  # a direct reference (path or URL) has no version to bump
    return f"{name}{spec}{rest}"
