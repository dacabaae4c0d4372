"""Rendered conda recipes and their checks.

The recipe is rendered with ``CMFLEET_VERSION`` set to the version being built (``cmfleet.recipes``: Jinja with
the pins of ``conda_build_config.yaml``). Its ``requirements.run`` must list exactly the unit's declared
dependencies (``pyproject.toml`` is the single source of truth; python is implicit), every shared library the
code imports, ``foundry-compute-modules`` for modules, and each pin must admit the version being built.
"""

from __future__ import annotations

from pathlib import Path

from cmfleet.discovery import SDK_DISTRIBUTION, Repository, Unit, normalize
from cmfleet.recipes import RecipeError, RenderedRecipe, render_recipe

#: Marker environment of the image (linux/amd64 CPython); ``python_version`` is filled per build.
_MARKER_ENV = {
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


def target_requirements(requirements: list[str], python: str) -> list[str]:
    """The requirements that apply on the image's Python (markers evaluated), markers stripped."""
    from packaging.requirements import Requirement

    env = {**_MARKER_ENV, "python_version": python, "python_full_version": f"{python}.0"}
    kept = []
    for text in requirements:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        req.marker = None
        kept.append(str(req))
    return kept


#: PyPI distributions whose conda-forge package has another name (beyond PEP 503 normalisation, which every
#: comparison applies: ``prometheus-client`` and ``prometheus_client`` are one name). The recipe's run requirements
#: use the conda name. Add or override entries in the root pyproject: ``[tool.cmfleet.conda-names]``,
#: ``"pypi-name" = "conda-name"``.
CONDA_NAMES = {
    "torch": "pytorch",
    "tables": "pytables",
    "opencv-python": "opencv",
    "opencv-python-headless": "opencv",
    "msgpack": "msgpack-python",
    "prometheus-client": "prometheus_client",
}


def conda_names(repo: Repository) -> dict[str, str]:
    """The PyPI -> conda-forge name mapping (keys normalised, conda names as conda spells them):
    :data:`CONDA_NAMES` and the root's overrides."""
    overrides = repo.config.get("conda-names", {})
    return {normalize(k): str(v) for k, v in {**CONDA_NAMES, **overrides}.items()}


def image_python(repo: Repository) -> str:
    """The image's Python (``major.minor``): the ``python`` pin of ``conda_build_config.yaml``, else this one's."""
    import sys

    from cmfleet.recipes import load_build_config, pin_values

    pinned = pin_values(load_build_config(repo.root)).get("python")
    text = str(pinned).strip().lstrip("=") if pinned else f"{sys.version_info.major}.{sys.version_info.minor}"
    return ".".join(text.split(".")[:2])


def declared_run_entries(repo: Repository, unit: Unit, python: str) -> dict[str, str]:
    """The run requirements pyproject declares for the image's ``python`` (markers evaluated, extras dropped), as
    recipe entries keyed by normalised conda name: conda-forge's name (:func:`conda_names`), pinned by its
    ``conda_build_config.yaml`` variable when there is one (the SDK, each shared library), else by pyproject's
    specifier. ``python {{ python }}`` is not among them."""
    from packaging.requirements import Requirement

    from cmfleet.recipes import load_build_config

    names = conda_names(repo)
    pins = {normalize(k): k for k in load_build_config(repo.root)}
    entries: dict[str, str] = {}
    for text in target_requirements(unit.dependencies, python):
        req = Requirement(text)
        name = normalize(req.name)
        conda = names.get(name, req.name)  # conda keeps the spelling (ruamel.yaml, not ruamel-yaml)
        variable = pins.get(name)
        pin = f"{{{{ {variable} }}}}" if variable is not None else str(req.specifier)
        entries[normalize(conda)] = f"{conda} {pin}".rstrip()
    return entries


def run_requirement_drift(repo: Repository, unit: Unit, rendered: RenderedRecipe, python: str) -> str | None:
    """How the recipe's ``requirements.run`` differs from the unit's declared dependencies (pyproject.toml, the one
    source), with the entries to add; None when they agree."""
    declared = declared_run_entries(repo, unit, python)
    run = {normalize(r.split()[0]) for r in rendered.run_requirements()} - {"python"}
    missing = sorted(set(declared) - run)
    extra = sorted(run - set(declared))
    if not missing and not extra:
        return None
    parts = []
    if missing:
        lines = ", ".join(repr(f"- {declared[n]}") for n in missing)
        parts.append(f"missing {', '.join(missing)} (declared in {unit.rel}/pyproject.toml; add {lines})")
    if extra:
        parts.append(f"extra {', '.join(extra)} (not declared in {unit.rel}/pyproject.toml; drop it or declare it)")
    return (
        f"requirements.run must equal the declared dependencies: {'; '.join(parts)}; names differing on "
        "conda-forge go through [tool.cmfleet.conda-names]"
    )


def is_release_version(version: str) -> bool:
    """True for ``1.2.3`` (or ``1.2.3rc1``), false for dev and local versions."""
    from packaging.version import Version

    parsed = Version(version)
    return not parsed.is_devrelease and parsed.local is None


def _line_of(path: Path, needle: str) -> int:
    try:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip().startswith(needle):
                return number
    except OSError:  # pragma: no cover - the recipe rendered, so it exists
        pass
    return 1


def render_unit_recipe(repo: Repository, unit: Unit, version: str) -> RenderedRecipe:
    """Render ``unit``'s recipe for ``version``; errors name file:line."""
    return render_recipe(unit.recipe, repo.root, environ={"CMFLEET_VERSION": version})


def recipe_problems(
    repo: Repository, unit: Unit, rendered: RenderedRecipe, version: str, built: dict[str, str], python: str
) -> list[str]:
    """Every mismatch between the rendered recipe and the unit (``built`` maps in-repo units to versions)."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import Version

    where = rendered.path.relative_to(repo.root).as_posix()
    run_line = _line_of(rendered.path, "run:")
    problems = []
    package = rendered.data.get("package") or {}
    if str(package.get("version")) != version:
        problems.append(
            f"{where}:{_line_of(rendered.path, 'version:')}: package.version renders as {package.get('version')!r}, "
            f"expected {version!r}; use {{{{ environ.get('CMFLEET_VERSION') }}}} as the version"
        )
    if normalize(str(package.get("name", ""))) != unit.distribution:
        problems.append(f"{where}: package.name is {package.get('name')!r}, expected {unit.distribution!r}")
    run = {normalize(r.split()[0]): r for r in rendered.run_requirements()}
    run.pop("python", None)
    drift = run_requirement_drift(repo, unit, rendered, python)
    if drift:
        problems.append(f"{where}:{run_line}: {drift}")
    if unit.is_module and normalize(SDK_DISTRIBUTION) not in run:
        problems.append(f"{where}:{run_line}: requirements.run must list {SDK_DISTRIBUTION} (the SDK runs app.py)")
    for lib, ref in repo.imported_shared(unit):
        if lib.distribution not in run:
            problems.append(
                f"{where}:{run_line}: requirements.run must list {lib.distribution}, imported at "
                f"{ref.file.relative_to(repo.root).as_posix()}:{ref.line}"
            )
    for name, text in run.items():
        if name not in built:
            continue
        spec = " ".join(text.split()[1:]).replace(" ", "")
        try:
            allowed = SpecifierSet(spec) if spec else SpecifierSet()
        except InvalidSpecifier:
            continue
        # A dev build previews its next release: judge the pin by the release it leads to (1.2.4.dev3 -> 1.2.4).
        candidate = Version(built[name]).base_version if not is_release_version(built[name]) else built[name]
        if not allowed.contains(candidate, prereleases=True):
            problems.append(
                f"{where}:{run_line}: the pin {text!r} excludes the {name} {built[name]} being built; "
                "update conda_recipes/conda_build_config.yaml"
            )
    return problems


def recipe_or_problem(repo: Repository, unit: Unit, version: str) -> tuple[RenderedRecipe | None, list[str]]:
    """Render the recipe, turning a render error into a problem line."""
    try:
        return render_unit_recipe(repo, unit, version), []
    except RecipeError as exc:
        try:
            location = f"{exc.file.relative_to(repo.root).as_posix()}:{exc.line}"
        except ValueError:
            location = f"{exc.file}:{exc.line}"
        return None, [f"{location}: {exc.reason}"]
