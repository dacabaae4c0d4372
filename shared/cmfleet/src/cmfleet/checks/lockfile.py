"""Rule about a module's ``requirements.lock`` (``cmfleet lock``): when a module has one, it must still fit what
its image declares. Static: the declared specifiers are compared with the locked versions, no index is asked."""

from __future__ import annotations

from collections.abc import Iterator

from cmfleet.checks.base import CheckContext, Finding
from cmfleet.discovery import Unit


def lock_current(unit: Unit, ctx: CheckContext) -> Iterator[Finding]:
    """A module's requirements.lock, when it has one, pins what its image's declared requirements allow."""
    from cmfleet.artifacts import BuildError
    from cmfleet.artifacts.lock import lock_path, read_lock
    from cmfleet.artifacts.preflight import resolve_module
    from cmfleet.recipes import RecipeError

    path = lock_path(unit)
    if not path.exists():
        return
    rel = path.relative_to(ctx.repo.root).as_posix()
    fix = f"run `cmfleet lock {unit.name}` and commit {rel}"
    try:
        plan = resolve_module(ctx.repo, unit.name)
        lock, problems = read_lock(plan)
    except BuildError as exc:
        yield Finding(path, 1, f"cannot check the lock: {exc}", "fix the repository so the module resolves")
        return
    except RecipeError:
        return  # the image's Python comes from conda_build_config.yaml, whose errors the recipe rules report
    what = "is stale" if lock else "cannot be read"
    for problem in problems:
        yield Finding(problem.file, problem.line, f"{rel} {what}: {problem.message}", fix)
