"""Conda recipes: render ``meta.yaml`` (Jinja, with the pins of ``conda_build_config.yaml``) and parse it.

Rendering follows conda-build's conventions closely enough to check a recipe without conda: each key of
``conda_build_config.yaml`` is a variable holding its first value, ``environ`` is the process environment
(plus overrides), ``PYTHON`` is ``python``. Undefined variables are errors, so a missing pin is caught here.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUILD_CONFIG = Path("conda_recipes") / "conda_build_config.yaml"


class RecipeError(Exception):
    """A recipe that does not render or parse; the message names file:line."""

    def __init__(self, message: str, file: Path, line: int = 1) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file, self.line, self.reason = file, line, message


@dataclass
class RenderedRecipe:
    """A recipe after Jinja and YAML."""

    path: Path
    text: str
    data: dict[str, Any]

    def run_requirements(self) -> list[str]:
        """``requirements.run`` as rendered strings."""
        return [str(r) for r in (self.data.get("requirements") or {}).get("run") or []]

    def requirement_names(self, section: str = "run") -> list[str]:
        """The package names of a requirements section (``run`` by default)."""
        reqs = (self.data.get("requirements") or {}).get(section) or []
        return [str(r).split()[0] for r in reqs]


def load_build_config(root: Path) -> dict[str, Any]:
    """``conda_recipes/conda_build_config.yaml`` as a mapping of variable -> list of values."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    path = root / BUILD_CONFIG
    if not path.exists():
        return {}
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise RecipeError(f"invalid YAML: {exc}", path, (mark.line + 1) if mark else 1) from None
    return data


def pin_values(build_config: dict[str, Any]) -> dict[str, Any]:
    """The first value of each variable, as conda-build uses for a single variant."""
    return {k: (v[0] if isinstance(v, list) and v else v) for k, v in build_config.items()}


def _template_line(exc: BaseException) -> int:
    """The recipe line a rendering error came from: Jinja rewrites its traceback so that the template's frames
    carry the file name ``<template>`` and the template's own line numbers (the error itself has no line)."""
    line = 1
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render_recipe(path: Path, root: Path, environ: dict[str, str] | None = None) -> RenderedRecipe:
    """Render and parse the recipe at ``path``; errors raise RecipeError with file:line."""
    import jinja2
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    if not path.exists():
        raise RecipeError("recipe not found", path)
    source = path.read_text(encoding="utf-8")
    variables = pin_values(load_build_config(root))
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    context = {
        **variables,
        "environ": {**os.environ, **(environ or {})},
        "PYTHON": "python",
        "os": os,
    }
    try:
        text = env.from_string(source).render(**context)
    except jinja2.TemplateSyntaxError as exc:
        raise RecipeError(f"Jinja syntax error: {exc.message}", path, exc.lineno) from None
    except jinja2.UndefinedError as exc:
        raise RecipeError(
            f"{exc.message} (add the pin to {BUILD_CONFIG.as_posix()} or fix the variable name)",
            path,
            _template_line(exc),
        ) from None
    try:
        data = YAML(typ="safe").load(io.StringIO(text)) or {}
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise RecipeError(f"rendered recipe is not valid YAML: {exc}", path, (mark.line + 1) if mark else 1) from None
    if not isinstance(data, dict):
        raise RecipeError("rendered recipe is not a mapping", path)
    return RenderedRecipe(path, text, data)
