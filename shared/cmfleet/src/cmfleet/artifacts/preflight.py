"""What must hold before a module is built: a known name, release versions (or ``--dev``), a module that passes
``cmfleet check``, and self-contained code (absolute imports only, every imported shared library declared).

These checks read files and git only; they are also what ``cmfleet build --check`` runs, plus the rendered
recipes and the generated Dockerfile.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from cmfleet.artifacts import BuildError
from cmfleet.artifacts.versions import UnitVersion, describe_config_problems, unit_version
from cmfleet.discovery import IMAGE_RUNTIME, DiscoveryError, Repository, Unit, UnknownUnitError, rel_path

EXIT_FAILED, EXIT_USAGE = 1, 2


@dataclass
class ModulePlan:
    """One module to build and every in-repo unit that goes into its image."""

    repo: Repository
    module: Unit
    libs: list[Unit]  # the shared libraries the module needs, deepest first, cmcore (the entrypoint) included
    versions: dict[str, UnitVersion] = field(default_factory=dict)
    dev: bool = False

    @property
    def units(self) -> list[Unit]:
        """Every in-repo unit whose wheel goes into the context: the module and its libraries, cmcore (the
        image's entrypoint) among them; never the cmfleet toolkit."""
        return [*self.libs, self.module]

    @property
    def python(self) -> str:
        """The image's Python (``major.minor``): the ``python`` pin of ``conda_build_config.yaml``."""
        from cmfleet.artifacts.recipe import image_python

        return image_python(self.repo)

    @property
    def base_image_template(self) -> str:
        """``[tool.cmfleet.build] base-image`` of the root pyproject (``python:{python}-slim-bookworm`` by
        default)."""
        from cmfleet.artifacts.container import DEFAULT_BASE_IMAGE

        return str(self.repo.config.get("build", {}).get("base-image", DEFAULT_BASE_IMAGE))


def resolve_module(repo: Repository, name: str) -> ModulePlan:
    """The module ``name`` and every in-repo unit its image needs, versions not read (``cmfleet lock`` needs no
    tags). Raises BuildError with exit code 2 for an unknown name (listing the modules) or a missing cmcore."""
    try:
        module = repo.module(name)
        libs = repo.closure(module)
    except UnknownUnitError as exc:
        raise BuildError(str(exc), EXIT_USAGE) from None
    except DiscoveryError as exc:
        raise BuildError(str(exc), EXIT_FAILED) from None
    if not any(lib.name == IMAGE_RUNTIME for lib in libs):
        raise BuildError(
            f"no shared/{IMAGE_RUNTIME} in {repo.root}: the image's entrypoint comes from {IMAGE_RUNTIME}'s wheel "
            f"(python -m {IMAGE_RUNTIME}.entrypoint)",
            EXIT_USAGE,
        )
    return ModulePlan(repo, module, libs)


def untracked_files(plan: ModulePlan) -> list[str]:
    """Untracked, non-ignored files inside the units whose wheels go into the image."""
    from cmfleet.release.planner import untracked_in_units
    from cmfleet.repo.git import Git, GitError

    try:
        return untracked_in_units(plan.repo, Git(plan.repo.root), {u.name for u in plan.units})
    except GitError:
        return []  # not a git checkout: the version reading says so


def hidden_files(plan: ModulePlan) -> list[tuple[str, str]]:
    """Files inside the units whose wheels go into the image that differ from HEAD while ``git status`` shows
    nothing (this clone's own ignore rules, assume-unchanged and skip-worktree flags): ``(path, why)``."""
    from cmfleet.repo.git import Git, GitError

    try:
        return Git(plan.repo.root).hidden_differences([u.rel for u in plan.units])
    except GitError:
        return []  # not a git checkout: the version reading says so


def hidden_files_message(hidden: list[tuple[str, str]]) -> str:
    """The lines naming ``hidden`` (from :func:`hidden_files`) and how to clear each kind."""
    shown = "\n  ".join(f"{path}: {why}" for path, why in hidden)
    return (
        f"{shown}\nwhat is on disk would be packed although no commit holds it: move such a file out of the unit "
        "(or ignore it in a committed .gitignore); clear a flag with `git update-index --no-assume-unchanged PATH` "
        "(or `--no-skip-worktree`), then commit or restore the file"
    )


def plan_module(repo: Repository, name: str, *, dev: bool) -> ModulePlan:
    """Resolve ``name`` and the units it needs, and read their versions.

    Raises BuildError with exit code 2 for an unknown name or, without ``dev``, a unit without a release tag.
    """
    plan = resolve_module(repo, name)
    plan.dev = dev
    untracked = untracked_files(plan)
    if untracked:
        raise BuildError(
            f"{name}: untracked files inside units of its image ({', '.join(untracked)}): the wheels would hold "
            "files no commit has; `git add` and commit them, or ignore them in .gitignore",
            EXIT_FAILED,
        )
    hidden = hidden_files(plan)
    if hidden:
        raise BuildError(
            f"{name}: files of units in its image differ from the commit while `git status` shows nothing:\n  "
            + hidden_files_message(hidden),
            EXIT_FAILED,
        )
    plan.versions = {u.name: unit_version(repo, u) for u in plan.units}
    not_released = [v for v in plan.versions.values() if not v.is_release]
    if not_released and not dev:
        reasons = "\n  ".join(v.why_not_release() for v in not_released)
        raise BuildError(
            f"{name}: not a release build:\n  {reasons}\n"
            "Tag the release, or pass --dev to build dev versions (marked as such in the manifest).",
            EXIT_USAGE,
        )
    return plan


def undeclared_imports(repo: Repository, unit: Unit) -> list[str]:
    """Imports of shared libraries the unit does not declare (directly or through a declared library)."""
    needed = {lib.name for lib in repo.closure(unit)}
    problems = []
    for ref in unit.imports:
        if ref.level:
            continue
        lib = repo.by_import.get(ref.top)
        if lib is None or lib.name == unit.name or lib.name in needed:
            continue
        problems.append(
            f"{rel_path(repo.root, ref.file)}:{ref.line}: imports {ref.module!r} from the shared library {lib.name!r}, "
            f'which {unit.rel}/pyproject.toml does not declare; add "{lib.distribution}" to [project].dependencies '
            f"(and to {rel_path(repo.root, unit.recipe)})"
        )
    return problems


def relative_imports(repo: Repository, unit: Unit) -> list[str]:
    """Relative imports: app.py runs as a top-level script in Foundry, so they break there."""
    return [
        f"{rel_path(repo.root, ref.file)}:{ref.line}: relative import 'from {ref.module} import ...'; "
        f"import it absolutely ('from {ref.module.lstrip('.') or '<helper>'} import ...')"
        for ref in unit.imports
        if ref.level
    ]


def static_problems(plan: ModulePlan, shared: dict[str, Any] | None = None) -> list[str]:
    """``cmfleet check`` findings and self-containment problems of the module and the libraries it needs.
    ``shared``: the check facts several plans share (:func:`shared_check_facts`)."""
    from cmfleet.checks.base import run_checks

    repo = plan.repo
    units = [plan.module, *plan.libs]
    findings = run_checks(repo, units, shared=shared)
    problems = [f"{f.location(repo.root)}: [{f.rule}] {f.message} (fix: {f.fix})" for f in findings]
    for unit in units:
        # Reported here too (once per file:line), so a build fails on them even if a plugin blocks the rule.
        for line in [*relative_imports(repo, unit), *undeclared_imports(repo, unit)]:
            location = line.split(": ", 1)[0]
            if not any(p.startswith(location + ": ") for p in problems):
                problems.append(line)
    for unit in plan.units:
        problems += describe_config_problems(repo, unit)
    return problems


def shared_check_facts(plans: list[ModulePlan]) -> dict[str, Any]:
    """What the check runs of several plans share (``CheckContext.shared``), every module among them probed
    already, all at once."""
    from cmfleet.checks.live import probed

    if not plans:
        return {}
    return probed(plans[0].repo, [u for plan in plans for u in [plan.module, *plan.libs]])


def unprovided_imports(repo: Repository, unit: Unit, provided: set[str]) -> list[str]:
    """Imports that nothing in the image provides: not stdlib, not beside app.py, not in any context wheel."""
    problems = []
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    for ref in unit.imports:
        if ref.level or ref.top in stdlib or ref.top in unit.local_names or ref.top in provided:
            continue
        problems.append(
            f"{rel_path(repo.root, ref.file)}:{ref.line}: imports {ref.top!r}, which no wheel in the context provides; "
            f"declare the distribution that provides it in {unit.rel}/pyproject.toml"
        )
    return problems
