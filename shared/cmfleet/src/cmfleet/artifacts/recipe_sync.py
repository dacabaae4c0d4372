"""The recipe's run requirements, written from ``pyproject.toml`` (the one place dependencies are declared).

``cmfleet sync-recipes`` rewrites the ``requirements: run:`` list of each unit's ``meta.yaml`` and nothing else
(the rest of the file, comments included, stays as written): ``python {{ python }}``, then every dependency
``[project].dependencies`` declares for the image's Python (markers evaluated, extras dropped), named as
conda-forge names it (``CONDA_NAMES`` and ``[tool.cmfleet.conda-names]``, see recipe.py), pinned by its
``conda_build_config.yaml`` variable when there is one (the SDK, every shared library), else by the specifier
pyproject gives. ``cmfleet check`` (rule ``recipe-requirements``) fails on any drift, so the recipe never
disagrees with pyproject in a release.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from cmfleet.discovery import Repository, Unit

_ITEM = re.compile(r"^(\s+)-\s")
_COMMENT = re.compile(r"^\s+#")


class RecipeSyncError(Exception):
    """A recipe whose run list cannot be found; the message names the file and the fix."""


def derived_run_lines(repo: Repository, unit: Unit) -> list[str]:
    """The run requirements of ``unit``'s recipe as pyproject declares them (without the leading ``- ``)."""
    from cmfleet.artifacts.recipe import declared_run_entries, image_python

    return ["python {{ python }}", *declared_run_entries(repo, unit, image_python(repo)).values()]


def synced_text(path: Path, lines: list[str]) -> str:
    """The recipe text at ``path`` with its ``requirements: run:`` list replaced by ``lines``."""
    text = path.read_text(encoding="utf-8")
    source = text.splitlines(keepends=True)
    in_requirements = False
    for i, line in enumerate(source):
        if re.match(r"^requirements:\s*(#.*)?$", line):
            in_requirements = True
            continue
        if in_requirements and re.match(r"^\S", line):
            break
        match = re.match(r"^(\s+)run:\s*(#.*)?$", line) if in_requirements else None
        if match is None:
            continue
        end = i + 1
        while end < len(source) and (_ITEM.match(source[end]) or _COMMENT.match(source[end])):
            end += 1
        items = [m.group(1) for m in map(_ITEM.match, source[i + 1 : end]) if m]
        indent = items[0] if items else match.group(1) + "  "
        kept = [c for c in source[i + 1 : end] if _COMMENT.match(c)]
        new = [f"{indent}- {entry}\n" for entry in lines]
        return "".join([*source[: i + 1], *kept, *new, *source[end:]])
    raise RecipeSyncError(f"{path}: no 'run:' list under 'requirements:'; add 'requirements:' with '  run:' to it")


def sync_recipe(repo: Repository, unit: Unit, write: bool = True) -> bool:
    """Bring ``unit``'s recipe run list in line with pyproject; True when it changed (written atomically)."""
    path = unit.recipe
    if not path.exists():
        raise RecipeSyncError(f"{path}: no recipe (cmfleet new writes one; copy another unit's otherwise)")
    old = path.read_text(encoding="utf-8")
    new = synced_text(path, derived_run_lines(repo, unit))
    if new == old:
        return False
    if write:
        fd, tmp = tempfile.mkstemp(prefix=".meta.", suffix=".yaml", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(new)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return True
